"""The numpy + ml_dtypes oracle of docs/semantics.md sections 3-5: the reference semantics of every op.

Written for clarity and exactness, not speed (but vectorized: a 4096x4096 tensor takes
seconds). Every public function mirrors qopt's Python API, so a test can
call the oracle and ``qopt`` the same way and compare bits.

Conventions shared by every function
------------------------------------
* All arithmetic is IEEE binary32: every operand is converted to ``np.float32`` first
  (exactly from f16 / bf16 / f8 / f4 / e8m0 / small integers; float64 inputs are rounded
  to nearest even once, on entry) and no float64 intermediate is ever formed.
  ``x / s`` is a correctly rounded f32 *division*, never a multiplication by a reciprocal.
* Formats (section 1) are numpy / ml_dtypes dtypes, one element per byte; the MLIR
  spellings (``'i8'``, ``'f8E4M3FN'``, ...) are accepted wherever a dtype is.
  Beyond the formats of docs/semantics.md section 1 the stretch formats ``f6E2M3FN``, ``f6E3M2FN``,
  ``f8E4M3FNUZ`` and ``f8E5M2FNUZ`` are accepted as float storage.
* Every float-format conversion is ml_dtypes' ``astype`` from f32 (round to nearest even,
  the format's own overflow behaviour).
* Granularity (section 2) is one general form: a block shape ``B``; the parameter of data
  index ``i`` is at ``i_k // B_k``. The keywords pick it (``param_block_shape``):
  ``block_shape`` (``-1`` = whole extent) > ``block_size`` along ``axis`` (``axis`` None
  means the last axis) > ``axis`` alone (per-axis; the parameter is 1-D with
  ``shape[axis]`` entries) > nothing (per-tensor). A parameter with exactly one element is
  per-tensor even when ``axis`` is given (the ONNX convention: a scalar or a ``[1]`` scale
  ignores ``axis``). Partial last blocks are allowed everywhere; statistics use only the
  elements that exist.
* IEEE overflow / underflow / invalid results of the arithmetic on user data (``x / s``
  overflowing to inf and then saturating, ``inf / inf``, ``(q - zp) * s`` overflowing) are
  part of the semantics, so numpy's floating-point warnings for them are silenced
  (``_ieee``). ``quantize`` rejects a zero / NaN scale unless it is a runtime one (then it
  divides like the kernels, IEEE); the dynamic forms never divide by a zero scale.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

F32 = np.float32

__all__ = [
    "dequantize",
    "dynamic_quantize",
    "expand_param",
    "fake_quantize",
    "float_max",
    "int_range",
    "is_float_format",
    "pack",
    "param_block_shape",
    "quantize",
    "requantize",
    "storage_dtype",
    "unpack",
]

# ---------------------------------------------------------------------------------------
# formats
# ---------------------------------------------------------------------------------------

_MLIR_NAMES = {
    "i8": np.int8,
    "ui8": np.uint8,
    "i16": np.int16,
    "ui16": np.uint16,
    "i4": ml_dtypes.int4,
    "ui4": ml_dtypes.uint4,
    "i2": ml_dtypes.int2,
    "ui2": ml_dtypes.uint2,
    "f8E4M3FN": ml_dtypes.float8_e4m3fn,
    "f8E5M2": ml_dtypes.float8_e5m2,
    "f4E2M1FN": ml_dtypes.float4_e2m1fn,
    "f8E8M0FNU": ml_dtypes.float8_e8m0fnu,
    "f32": np.float32,
    "f16": np.float16,
    "bf16": ml_dtypes.bfloat16,
    # stretch formats of docs/semantics.md section 1
    "f6E2M3FN": ml_dtypes.float6_e2m3fn,
    "f6E3M2FN": ml_dtypes.float6_e3m2fn,
    "f8E4M3FNUZ": ml_dtypes.float8_e4m3fnuz,
    "f8E5M2FNUZ": ml_dtypes.float8_e5m2fnuz,
}
_INT_STORAGE = frozenset(
    np.dtype(t)
    for t in (
        np.int8,
        np.uint8,
        np.int16,
        np.uint16,
        ml_dtypes.int4,
        ml_dtypes.uint4,
        ml_dtypes.int2,
        ml_dtypes.uint2,
    )
)
_FLOAT_STORAGE = frozenset(
    np.dtype(t)
    for t in (
        ml_dtypes.float8_e4m3fn,
        ml_dtypes.float8_e5m2,
        ml_dtypes.float4_e2m1fn,
        ml_dtypes.float6_e2m3fn,
        ml_dtypes.float6_e3m2fn,
        ml_dtypes.float8_e4m3fnuz,
        ml_dtypes.float8_e5m2fnuz,
    )
)
_EXPRESSED = frozenset(np.dtype(t) for t in (np.float32, np.float16, ml_dtypes.bfloat16))
_E4M3 = np.dtype(ml_dtypes.float8_e4m3fn)
_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)
_SUPPORTED = _INT_STORAGE | _FLOAT_STORAGE | _EXPRESSED | {_E8M0}
_SUBBYTE_BITS = {
    np.dtype(ml_dtypes.int4): 4,
    np.dtype(ml_dtypes.uint4): 4,
    np.dtype(ml_dtypes.float4_e2m1fn): 4,
    np.dtype(ml_dtypes.int2): 2,
    np.dtype(ml_dtypes.uint2): 2,
}
_ROUNDING = ("nearest_even", "nearest_away", "half_up", "toward_zero")


def storage_dtype(name_or_dtype) -> np.dtype:
    """The numpy / ml_dtypes dtype of a format given by MLIR spelling or dtype.

    Accepts the spellings of docs/semantics.md section 1 (``'i8' 'ui8' 'i16' 'ui16' 'i4' 'ui4' 'i2'
    'ui2' 'f8E4M3FN' 'f8E5M2' 'f4E2M1FN' 'f8E8M0FNU' 'f32' 'f16' 'bf16'``, plus the
    stretch ``'f6E2M3FN' 'f6E3M2FN' 'f8E4M3FNUZ' 'f8E5M2FNUZ'``) and any numpy / ml_dtypes
    dtype, type or dtype name of one of those formats. Anything else: ``ValueError``.
    """
    if isinstance(name_or_dtype, str) and name_or_dtype in _MLIR_NAMES:
        return np.dtype(_MLIR_NAMES[name_or_dtype])
    try:
        dt = np.dtype(name_or_dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"dtype: expected an element format of docs/semantics.md section 1, got {name_or_dtype!r}"
        ) from e
    if name_or_dtype is None or dt not in _SUPPORTED:
        raise ValueError(
            f"dtype: expected an element format of docs/semantics.md section 1, got {name_or_dtype!r}"
        )
    return dt


def is_float_format(dtype) -> bool:
    """True for every floating format (f8 / f6 / f4 storage, e8m0, f16, bf16, f32)."""
    dt = storage_dtype(dtype)
    return dt not in _INT_STORAGE


def int_range(dtype) -> tuple[int, int]:
    """``(qmin, qmax)`` of an integer storage format; ``ValueError`` for any other."""
    dt = storage_dtype(dtype)
    if dt not in _INT_STORAGE:
        raise ValueError(f"dtype: expected an integer storage format, got {dt}")
    info = ml_dtypes.iinfo(dt)
    return int(info.min), int(info.max)


def float_max(dtype) -> float:
    """Largest finite value of a floating format (448, 57344, 6, 7.5, 28, 65504, ...)."""
    dt = storage_dtype(dtype)
    if dt in _INT_STORAGE:
        raise ValueError(f"dtype: expected a floating format, got {dt}")
    return float(ml_dtypes.finfo(dt).max)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _ieee():
    """IEEE results of the f32 arithmetic are the semantics; do not warn about them."""
    return np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore")


def _as_f32(a, name: str) -> np.ndarray:
    """Convert to an f32 array (exact from every format of section 1; f64 rounds once)."""
    arr = np.asarray(a)
    if arr.dtype == object or arr.dtype.kind in "bSUMm":
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.dtype.kind == "c":
        raise TypeError(f"{name}: complex values are not supported")
    with _ieee():
        return arr.astype(F32)


def _as_int(a, name: str) -> np.ndarray:
    """Integer-valued parameter (zero point) as an int64 array."""
    arr = np.asarray(a)
    if arr.dtype == object or arr.dtype.kind in "bSUMmc":
        raise TypeError(f"{name}: expected integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" or (arr.dtype.kind == "V" and arr.dtype not in _INT_STORAGE):
        f = arr.astype(np.float64)
        if not np.all(np.isfinite(f)) or np.any(f != np.round(f)):
            raise ValueError(f"{name}: expected integer values, got {arr!r}")
        return f.astype(np.int64)
    return arr.astype(np.int64)


def _norm_axis(axis, rank: int, name: str = "axis") -> int:
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"{name}: expected an int, got {axis!r}")
    if not -rank <= axis < rank:
        raise ValueError(f"{name}: {axis} is out of range for a tensor of rank {rank}")
    return int(axis) % rank


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _param_shape(shape, blocks) -> tuple[int, ...]:
    return tuple(_ceil_div(s, b) for s, b in zip(shape, blocks))


def param_block_shape(
    data_shape, *, axis=None, block_size=None, block_shape=None, param_shape=None
) -> tuple[int, ...]:
    """Block shape ``B`` (one int >= 1 per data dimension) of a granularity (docs/semantics.md section 2).

    * ``block_shape`` given: that N-D block, ``-1`` meaning the whole extent (``axis`` is
      ignored; ``block_size`` must be None);
    * ``block_size`` given: per-block along ``axis`` (``axis`` None = last axis);
    * ``axis`` given: per-axis (1 on ``axis``, whole extent elsewhere), except when
      ``param_shape`` says the parameter has a single element, which is per-tensor
      (ONNX: a scalar or ``[1]`` scale ignores ``axis``);
    * nothing: per-tensor.

    A whole extent of 0 counts as 1. With ``param_shape`` the parameter's shape is
    checked against the granularity (``ValueError`` when it cannot be its parameter).
    """
    shape = tuple(int(d) for d in data_shape)
    rank = len(shape)
    whole = tuple(max(d, 1) for d in shape)
    if block_shape is not None:
        if block_size is not None:
            raise ValueError("block_shape and block_size are mutually exclusive")
        bs = tuple(block_shape)
        if len(bs) != rank:
            raise ValueError(
                f"block_shape: expected {rank} entries for data of shape {shape}, got {bs}"
            )
        blocks = []
        for k, b in enumerate(bs):
            if isinstance(b, bool) or not isinstance(b, int | np.integer) or (b < 1 and b != -1):
                raise ValueError(f"block_shape: entry {k} must be a positive int or -1, got {b!r}")
            blocks.append(whole[k] if b == -1 else int(b))
        blocks = tuple(blocks)
    elif block_size is not None:
        if (
            isinstance(block_size, bool)
            or not isinstance(block_size, int | np.integer)
            or block_size < 1
        ):
            raise ValueError(f"block_size: expected a positive int, got {block_size!r}")
        if rank == 0:
            raise ValueError("block_size: a 0-d tensor has no axis to block")
        a = _norm_axis(-1 if axis is None else axis, rank)
        blocks = tuple(int(block_size) if k == a else 1 for k in range(rank))
    elif axis is not None and not (param_shape is not None and math.prod(param_shape) == 1):
        a = _norm_axis(axis, rank)
        blocks = tuple(1 if k == a else whole[k] for k in range(rank))
        if param_shape is not None and tuple(param_shape) == (shape[a],):
            return blocks  # the 1-D per-axis parameter (ONNX convention)
    else:
        blocks = whole
    if param_shape is not None:
        _check_param_shape(tuple(param_shape), shape, blocks)
    return blocks


def _check_param_shape(pshape, shape, blocks) -> None:
    expected = _param_shape(shape, blocks)
    if pshape == expected:
        return
    n = math.prod(expected)
    whole = tuple(max(d, 1) for d in shape)
    if len(pshape) == 1 and any(
        pshape[0] == shape[k] and all(blocks[j] == whole[j] for j in range(len(shape)) if j != k)
        for k in range(len(shape))
        if blocks[k] == 1
    ):
        return  # 1-D per-axis parameter (ONNX convention), also over empty data
    if math.prod(pshape) == 1 and (n == 1 or tuple(blocks) == tuple(max(d, 1) for d in shape)):
        return  # any single-element parameter is per-tensor (also over empty data)
    if len(pshape) == 1 and pshape[0] == n and (n == 0 or sum(1 for p in expected if p != 1) <= 1):
        return  # 1-D per-axis parameter (ONNX convention)
    raise ValueError(
        f"parameter of shape {pshape} does not match data of shape {shape} with block "
        f"shape {blocks} (expected {expected})"
    )


def _expand_blocks(p: np.ndarray, shape, blocks) -> np.ndarray:
    """Broadcast a parameter to the data shape: element i reads p[i_k // B_k]."""
    pshape = _param_shape(shape, blocks)
    p = np.asarray(p)
    _check_param_shape(p.shape, tuple(shape), blocks)
    if math.prod(shape) == 0:
        return np.empty(shape, p.dtype)
    if p.ndim == 1 and len(shape) > 1 and p.shape != pshape:
        p = p.reshape(tuple(n if b == 1 else 1 for n, b in zip(pshape, blocks)))
    else:
        p = p.reshape(pshape)
    if not shape:
        return p
    idx = np.ix_(*[np.arange(s) // b for s, b in zip(shape, blocks)])
    return p[idx]


def expand_param(param, data_shape, *, axis=None, block_size=None, block_shape=None) -> np.ndarray:
    """Broadcast a scale / zero point / minval to ``data_shape`` (keeps the param's dtype).

    Element ``i`` of the result is the parameter at ``i_k // B_k`` (``B`` from
    ``param_block_shape``). Per-axis parameters are 1-D with ``shape[axis]`` entries;
    per-block parameters have the data's rank with ``ceil(shape_k / B_k)`` entries.
    """
    p = np.asarray(param)
    shape = tuple(int(d) for d in data_shape)
    blocks = param_block_shape(
        shape, axis=axis, block_size=block_size, block_shape=block_shape, param_shape=p.shape
    )
    return _expand_blocks(p, shape, blocks)


def _block_reduce(a: np.ndarray, blocks, func, pad) -> np.ndarray:
    """Reduce every block with ``func`` (partial blocks padded with the neutral ``pad``)."""
    shape = a.shape
    pshape = _param_shape(shape, blocks)
    pads = [(0, p * b - s) for s, p, b in zip(shape, pshape, blocks)]
    if any(hi for _, hi in pads):
        a = np.pad(a, pads, constant_values=pad)
    inter = [d for p, b in zip(pshape, blocks) for d in (p, b)]
    return func(a.reshape(inter), axis=tuple(range(1, 2 * len(shape), 2)))


def _round(v: np.ndarray, mode: str) -> np.ndarray:
    """Round f32 values to integral f32 values; NaN and +-inf pass through. Exact."""
    if mode == "nearest_even":
        return np.rint(v)
    if mode == "toward_zero":
        return np.trunc(v)
    finite = np.isfinite(v)
    w = np.where(finite, v, F32(0))
    half = F32(0.5)
    one = F32(1)
    if mode == "half_up":  # floor(v + 0.5), computed without the inexact addition
        fl = np.floor(w)
        r = np.where(w - fl >= half, fl + one, fl)  # w - floor(w) is exact in f32
    elif mode == "nearest_away":
        a = np.abs(w)
        fl = np.floor(a)
        r = np.copysign(np.where(a - fl >= half, fl + one, fl), w)
    else:
        raise ValueError(f"rounding: expected one of {_ROUNDING}, got {mode!r}")
    return np.where(finite, r, v).astype(F32)


def _quantize_int(v, zp, qmin: int, qmax: int, rounding: str, out_dtype) -> np.ndarray:
    """clamp(round(v) + zp, qmin, qmax); NaN -> clamp(zp), +-inf saturate. v: f32."""
    zp = np.asarray(zp, dtype=np.int64)
    r = _round(v, rounding)
    r = np.where(np.isnan(r), F32(0), r)
    # clamp before the float -> int conversion: the bounds qmin - zp, qmax - zp are small
    # integers, exact in f32, so no conversion ever sees an out-of-range value
    lo = (qmin - zp).astype(F32)
    hi = (qmax - zp).astype(F32)
    r = np.minimum(np.maximum(r, lo), hi)
    return (r.astype(np.int64) + zp).astype(out_dtype)


def _cast_float(v, dt, saturate: bool, source) -> np.ndarray:
    """cast_rne of f32 values to a float storage format; with saturate clip to +-max first.
    ``v`` was computed from the elements ``source``, whose signs a NaN takes (``nan_sign``)."""
    if saturate:
        m = F32(float_max(dt))
        v = np.clip(v, -m, m)  # NaN stays NaN, +-inf become +-max
    return nan_sign(v, source).astype(dt)


def nan_sign(v, source) -> np.ndarray:
    """f32 ``v`` with every NaN replaced by the quiet NaN 0x7FC00000 carrying the sign of the
    data element it was computed from (``source``): the NaN rule (docs/semantics.md). The
    sign of a NaN that arithmetic makes is not specified, so it is never used."""
    v = np.asarray(v, dtype=F32)
    src = np.broadcast_to(np.asarray(source, dtype=F32), v.shape)
    return np.where(np.isnan(v), np.copysign(F32(np.nan), src), v).astype(F32)


def canonical_nan(v) -> np.ndarray:
    """f32 ``v`` with every NaN replaced by the positive quiet NaN (scales: no sign)."""
    v = np.asarray(v, dtype=F32)
    return np.where(np.isnan(v), F32(np.nan), v)


def _qrange(dt, qmin, qmax) -> tuple[int, int]:
    lo, hi = int_range(dt)
    qmin = lo if qmin is None else int(qmin)
    qmax = hi if qmax is None else int(qmax)
    if not lo <= qmin <= qmax <= hi:
        raise ValueError(f"qmin/qmax: [{qmin}, {qmax}] is not a sub-range of {dt} [{lo}, {hi}]")
    return qmin, qmax


def _out_expressed(dtype, name="dtype") -> np.dtype:
    dt = storage_dtype(dtype)
    if dt not in _EXPRESSED:
        raise ValueError(f"{name}: expected f32, f16 or bf16, got {dt}")
    return dt


# ---------------------------------------------------------------------------------------
# static ops
# ---------------------------------------------------------------------------------------


def quantize(
    x,
    scale,
    zero_point=None,
    *,
    dtype,
    axis=None,
    block_size=None,
    block_shape=None,
    saturate=True,
    rounding="nearest_even",
    minval=None,
    qmin=None,
    qmax=None,
    runtime_scale=False,
    zero_point_order="after_rounding",
) -> np.ndarray:
    """quantize (docs/semantics.md): f32 ``x`` to storage ``dtype``.

    ``zero_point_order="before_rounding"`` (upstream MLIR qcast, StableHLO
    uniform_quantize; integer storage): ``q = clamp(round(f32(x / s) + f32(zp)), qmin,
    qmax)`` with the sum an f32 addition, and NaN gives 0 (even outside a narrow range).

    * integer storage: ``q = clamp(round(x / s) + zp, qmin, qmax)`` (round first, then add
      the zero point, ONNX order); ``rounding`` is ``nearest_even`` (default),
      ``nearest_away``, ``half_up`` (``floor(v + 0.5)``) or ``toward_zero``; +-inf saturate
      to qmax / qmin; NaN gives ``zp`` (clamped to ``[qmin, qmax]``). ``qmin`` / ``qmax``
      narrow the range (e.g. i8 -127..127). ``zero_point`` None means 0.
    * float storage: ``q = cast_rne(x / s)``; with ``saturate`` values beyond the format's
      max become +-max (clip, then cast), without it overflow follows the format (NaN for
      e4m3fn, inf for e5m2, ml_dtypes' result for formats without inf/NaN). NaN stays NaN
      where the format has one; f4E2M1FN has no NaN and NaN becomes what ml_dtypes gives
      (-0). A float storage type takes no zero point and only ``nearest_even``.
    * ``minval`` form (coremltools, integer storage, no zero point):
      ``q = clamp(round((x - minval) / s) + qmin, qmin, qmax)``.

    The scale must be nonzero and not NaN (``ValueError``), unless ``runtime_scale``: a
    scale only known when the kernel runs (requantize's, always) of 0, +-inf or NaN is then
    divided by like any other (IEEE f32), as the kernels do: ``x / 0``
    is +-inf (saturates), ``0 / 0`` and ``x / NaN`` are NaN (integer storage: the zero
    point; float storage: the format's NaN with the sign of x, see ``nan_sign``).
    """
    dt = storage_dtype(dtype)
    if dt not in _INT_STORAGE and dt not in _FLOAT_STORAGE:
        raise ValueError(f"dtype: expected an integer or float storage format, got {dt}")
    if rounding not in _ROUNDING:
        raise ValueError(f"rounding: expected one of {_ROUNDING}, got {rounding!r}")
    if zero_point_order not in ("after_rounding", "before_rounding"):
        raise ValueError(f"zero_point_order: unknown order {zero_point_order!r}")
    xf = _as_f32(x, "x")
    shape = xf.shape
    gran = {"axis": axis, "block_size": block_size, "block_shape": block_shape}
    s = expand_param(_as_f32(scale, "scale"), shape, **gran)
    if not runtime_scale and (np.any(np.isnan(s)) or np.any(s == 0)):
        raise ValueError("scale: must be nonzero and not NaN (quantize divides by it)")
    with _ieee():
        if dt in _FLOAT_STORAGE:
            if zero_point is not None:
                raise ValueError(f"zero_point: float storage {dt} takes no zero point")
            if minval is not None:
                raise ValueError(f"minval: the minval form needs integer storage, got {dt}")
            if qmin is not None or qmax is not None:
                raise ValueError(f"qmin/qmax: only for integer storage, got {dt}")
            if rounding != "nearest_even":
                raise ValueError(f"rounding: float storage {dt} rounds to nearest even only")
            if zero_point_order != "after_rounding":
                raise ValueError(f"zero_point_order: float storage {dt} has no zero point")
            return _cast_float(xf / s, dt, saturate, xf)
        lo, hi = _qrange(dt, qmin, qmax)
        if minval is not None:
            if zero_point is not None:
                raise ValueError("zero_point: the minval form takes no zero point")
            m = expand_param(_as_f32(minval, "minval"), shape, **gran)
            return _quantize_int((xf - m) / s, lo, lo, hi, rounding, dt)
        zp = (
            0
            if zero_point is None
            else expand_param(_as_int(zero_point, "zero_point"), shape, **gran)
        )
        if zero_point_order == "before_rounding":
            return _quantize_int_zp_first(xf / s, zp, lo, hi, rounding, dt)
        return _quantize_int(xf / s, zp, lo, hi, rounding, dt)


def _quantize_int_zp_first(v, zp, qmin: int, qmax: int, rounding: str, out_dtype) -> np.ndarray:
    """clamp(round(f32(v + zp)), qmin, qmax); NaN -> 0, even outside a narrow range
    (StableHLO's reference interpreter)."""
    t = (v + np.asarray(zp, dtype=np.int64).astype(F32)).astype(F32)
    r = np.minimum(np.maximum(_round(t, rounding), F32(qmin)), F32(qmax))
    return np.where(np.isnan(r), F32(0), r).astype(np.int64).astype(out_dtype)


def dequantize(
    q,
    scale,
    zero_point=None,
    *,
    axis=None,
    block_size=None,
    block_shape=None,
    dtype="f32",
    minval=None,
    qmin=None,
) -> np.ndarray:
    """dequantize (docs/semantics.md): ``x = (f32(q) - f32(zp)) * s`` in f32, then rne to ``dtype``.

    ``dtype`` is f32 (default), f16 or bf16. Float storage takes no zero point.
    ``minval`` form: ``x = s * (f32(q) - f32(qmin)) + minval`` (two f32 roundings, no fma);
    ``qmin`` defaults to the storage type's minimum.
    """
    out = _out_expressed(dtype)
    qa = np.asarray(q)
    if qa.dtype == object or qa.dtype.kind in "bSUMmc":
        raise TypeError(f"q: expected quantized storage, got dtype {qa.dtype}")
    shape = qa.shape
    gran = {"axis": axis, "block_size": block_size, "block_shape": block_shape}
    qf = qa.astype(F32)
    s = expand_param(_as_f32(scale, "scale"), shape, **gran)
    floaty = qa.dtype in _FLOAT_STORAGE or qa.dtype.kind == "f"
    with _ieee():
        if minval is not None:
            if floaty:
                raise ValueError(f"minval: the minval form needs integer storage, got {qa.dtype}")
            if zero_point is not None:
                raise ValueError("zero_point: the minval form takes no zero point")
            if qmin is None:
                if qa.dtype not in _INT_STORAGE:
                    raise ValueError("qmin: required when q is not a storage integer type")
                qmin = int_range(qa.dtype)[0]
            m = expand_param(_as_f32(minval, "minval"), shape, **gran)
            x = s * (qf - F32(qmin)) + m
        else:
            if zero_point is not None:
                if floaty:
                    raise ValueError(f"zero_point: float storage {qa.dtype} takes no zero point")
                zf = expand_param(_as_int(zero_point, "zero_point"), shape, **gran).astype(F32)
                qf = qf - zf
            x = qf * s
        return nan_sign(x, qa.astype(F32)).astype(out)


def requantize(
    q,
    in_scale,
    in_zero_point,
    out_scale,
    out_zero_point,
    *,
    axis=None,
    dtype=None,
    rounding="nearest_even",
    saturate=True,
    qmin=None,
    qmax=None,
    zero_point_order="after_rounding",
) -> np.ndarray:
    """requantize (docs/semantics.md): exactly ``quantize(dequantize(q, in_s, in_zp) as f32, out_s, out_zp)``.

    ``dtype`` None keeps q's storage type. Each parameter picks its own granularity: one
    element = per-tensor, 1-D with ``shape[axis]`` entries = per-axis on ``axis`` (so input
    and output granularities are independent). ``rounding`` / ``saturate`` / ``qmin`` /
    ``qmax`` apply to the output quantize. Zero points may be None (float storage).
    """
    qa = np.asarray(q)
    out = qa.dtype if dtype is None else storage_dtype(dtype)
    mid = dequantize(qa, in_scale, in_zero_point, axis=axis, dtype="f32")
    return quantize(
        mid,
        out_scale,
        out_zero_point,
        dtype=out,
        axis=axis,
        rounding=rounding,
        saturate=saturate,
        qmin=qmin,
        qmax=qmax,
        runtime_scale=True,
        zero_point_order=zero_point_order,
    )


# ---------------------------------------------------------------------------------------
# dynamic quantization
# ---------------------------------------------------------------------------------------


def _dynamic_blocks(shape, axis, block_size, block_shape):
    """Granularity of the dynamic ops: ``block_shape`` -> N-D blocks; ``block_size`` ->
    blocks along ``axis`` (default the last); ``axis`` alone -> per channel (one 1-D
    parameter per index of ``axis``, as quantize's per-axis form); neither -> per tensor."""
    if block_shape is not None or block_size is not None:
        axis = -1 if axis is None else axis
        blocks = param_block_shape(shape, axis=axis, block_size=block_size, block_shape=block_shape)
        return blocks, _param_shape(shape, blocks)
    if axis is not None:
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"axis {axis} is out of range for rank {len(shape)}")
        a = axis % len(shape)
        return tuple(1 if k == a else max(d, 1) for k, d in enumerate(shape)), (shape[a],)
    return tuple(max(d, 1) for d in shape), ()


def _round_scale(s: np.ndarray, sdt) -> np.ndarray:
    """The f32 scale stored in f32 / f16 / bf16 (rne; a NaN as the positive NaN)."""
    return canonical_nan(s).astype(sdt)


def _mx_exponent(amax: np.ndarray, fmax: float, scale_rounding: str) -> np.ndarray:
    """Shared exponent e (int32, clamped to [-127, 127]) of MX blocks; exact.

    ``amax = ma * 2**ea`` and ``fmax = mf * 2**ef`` with mantissas in [0.5, 1) (frexp):
    floor: ``e = floor(log2 amax) - emax_elem = (ea - 1) - (ef - 1)``;
    rceil: the smallest e with ``amax / 2**e <= fmax``, ``e = ea - ef + (ma > mf)``.
    amax 0 -> -127, amax +inf -> 127 (clamped); NaN is handled by the caller.
    """
    mf, ef = np.frexp(F32(fmax))
    ok = np.isfinite(amax) & (amax > 0)
    ma, ea = np.frexp(np.where(ok, amax, F32(1)))
    ea = ea.astype(np.int64)
    if scale_rounding == "floor":
        e = ea - int(ef)
    else:
        e = ea - int(ef) + (ma > mf).astype(np.int64)
    e = np.where(amax == 0, -127, e)
    e = np.where(np.isposinf(amax), 127, e)
    return np.clip(e, -127, 127).astype(np.int32)


def dynamic_quantize(
    x,
    *,
    dtype,
    scale_dtype="f32",
    axis=None,
    block_size=None,
    block_shape=None,
    double_quant_scale=None,
    symmetric=True,
    scale_rounding="floor",
    eps=None,
) -> tuple:
    """dynamic_quantize (docs/semantics.md): per-block statistics, then quantize with the computed scale.

    Granularity: ``block_shape`` -> N-D block, ``block_size`` -> per-block along ``axis``
    (default the last axis), ``axis`` alone -> per channel (a 1-D scale of
    ``shape[axis]`` entries); with none of them the whole tensor is one block and the
    scale is 0-d (per-tensor). Returns ``(data, scale)`` or, for asymmetric
    integer quantization, ``(data, scale, zero_point)``; scale and zero point have the
    parameter shape of section 2 (``ceil(shape_k / B_k)``, 0-d for per-tensor).

    Forms (``amax`` = max |x| over the block; ``max`` = the data format's largest value):

    * integer data, f32 / f16 / bf16 scale: symmetric ``s = amax / qmax``, zp = 0;
      asymmetric ``s = (max(xmax, 0) - min(xmin, 0)) / (qmax - qmin)``; then
      ``s = max(s, eps)`` when ``eps`` is given; the scale is rounded (rne) to
      ``scale_dtype``; a scale that is 0 (amax 0, or underflow) is stored as 1.0; the
      asymmetric zero point is ``clamp(rne(f32(qmin) - xmin / s), qmin, qmax)`` with the
      stored scale (ONNX DynamicQuantizeLinear); ``data = clamp(rne(x / s) + zp)``.
    * float data, f32 / f16 / bf16 scale: ``s = amax / max`` (unrounded in f32; ``eps`` and
      the rounding to ``scale_dtype`` and the 0 -> 1.0 rule as above);
      ``data = cast_rne(clip(x / s, -max, max))``.
    * float data, f8E4M3FN scale (NVFP4 for f4E2M1FN data; ``dq`` = ``double_quant_scale``,
      default 1): ``sq = e4m3_rne(clip((amax / max) / dq, 0, 448))`` (``eps`` applies to
      ``amax / max``); ``data = cast_rne(clip(x / (f32(sq) * dq), -max, max))``; a block whose
      divisor ``f32(sq) * dq`` is 0 gets data +-0 with the sign of x (no division).
    * float data, f8E8M0FNU scale (MX): ``scale_rounding='floor'`` (OCP:
      ``e = floor(log2 amax) - emax_elem``, emax_elem = floor(log2 max): 8 e4m3, 15 e5m2,
      2 e2m1) or ``'rceil'`` (smallest e with ``amax / 2**e <= max``); e clamped to
      [-127, 127] (amax 0 -> -127, amax inf -> 127); scale code ``e + 127``;
      ``data = cast_rne(clip(x / 2**e, -max, max))``.

    NaN: the block statistics propagate NaN like ``torch.amax`` (one NaN element makes the
    block's amax / xmax / xmin NaN), so the block's scale is NaN (f32/f16/bf16 NaN, e4m3
    NaN, e8m0 code 255) and its data follows the arithmetic: ``x / NaN`` is NaN, which
    integer storage maps to the zero point and float storage to NaN (e2m1: ml_dtypes'
    result). An asymmetric zero point whose formula gives NaN is ``clamp(0, qmin, qmax)``.
    An infinite element makes amax inf: scale inf (e8m0: e = 127) and the data follow IEEE.
    No division by zero happens anywhere.
    """
    xf = _as_f32(x, "x")
    dt = storage_dtype(dtype)
    sdt = storage_dtype(scale_dtype)
    if scale_rounding not in ("floor", "rceil"):
        raise ValueError(f"scale_rounding: expected 'floor' or 'rceil', got {scale_rounding!r}")
    blocks, out_pshape = _dynamic_blocks(xf.shape, axis, block_size, block_shape)
    if double_quant_scale is not None and sdt != _E4M3:
        raise ValueError("double_quant_scale: only for an f8E4M3FN scale (NVFP4)")
    eps32 = None if eps is None else F32(eps)
    if eps32 is not None and not (np.isfinite(eps32) and eps32 >= 0):
        raise ValueError(f"eps: expected a finite value >= 0, got {eps!r}")
    shape = xf.shape
    if xf.size == 0 and math.prod(out_pshape) == 1:
        # One block over no elements: its statistics are those of a zero block.
        outs = dynamic_quantize(
            np.zeros((1,) * xf.ndim, F32), dtype=dtype, scale_dtype=scale_dtype,
            double_quant_scale=double_quant_scale, symmetric=symmetric,
            scale_rounding=scale_rounding, eps=eps,
        )  # fmt: skip
        data = np.empty(shape, outs[0].dtype)
        return (data, *(o.reshape(out_pshape) for o in outs[1:]))
    per_channel = axis is not None and block_size is None and block_shape is None
    if xf.size == 0 and per_channel and shape[axis % xf.ndim]:
        # Channels over no elements: each one's statistics are those of a zero block.
        a = axis % xf.ndim
        ones = tuple(n if k == a else 1 for k, n in enumerate(shape))
        outs = dynamic_quantize(
            np.zeros(ones, F32), dtype=dtype, scale_dtype=scale_dtype, axis=axis,
            double_quant_scale=double_quant_scale, symmetric=symmetric,
            scale_rounding=scale_rounding, eps=eps,
        )  # fmt: skip
        return (np.empty(shape, outs[0].dtype), *outs[1:])

    def expand(p):
        return _expand_blocks(p, shape, blocks)

    def shaped(p):
        return np.asarray(p).reshape(out_pshape)

    with _ieee():
        if dt in _INT_STORAGE:
            if sdt not in _EXPRESSED:
                raise ValueError(
                    f"scale_dtype: integer data takes an f32/f16/bf16 scale, got {sdt}"
                )
            qmin, qmax = int_range(dt)
            if symmetric:
                amax = _block_reduce(np.abs(xf), blocks, np.max, 0)
                s = amax / F32(qmax)
            else:
                xmax = np.maximum(_block_reduce(xf, blocks, np.max, 0), F32(0))
                xmin = np.minimum(_block_reduce(xf, blocks, np.min, 0), F32(0))
                s = (xmax - xmin) / F32(qmax - qmin)
            if eps32 is not None:
                s = np.maximum(s, eps32)
            stored = _round_scale(s, sdt)
            stored = np.where(stored == 0, np.ones((), sdt), stored).astype(sdt)
            sf = stored.astype(F32)
            if symmetric:
                data = _quantize_int(xf / expand(sf), 0, qmin, qmax, "nearest_even", dt)
                return data, shaped(stored)
            z = F32(qmin) - xmin / sf
            z = np.where(np.isnan(z), F32(0), z)
            zp = np.rint(np.clip(z, F32(qmin), F32(qmax))).astype(np.int64)
            data = _quantize_int(xf / expand(sf), expand(zp), qmin, qmax, "nearest_even", dt)
            return data, shaped(stored), shaped(zp.astype(dt))

        if dt not in _FLOAT_STORAGE:
            raise ValueError(f"dtype: expected an integer or float storage format, got {dt}")
        if not symmetric:
            raise ValueError(f"symmetric: float storage {dt} is quantized symmetrically only")
        fmax = F32(float_max(dt))
        amax = _block_reduce(np.abs(xf), blocks, np.max, 0)

        if sdt in _EXPRESSED:
            s = amax / fmax
            if eps32 is not None:
                s = np.maximum(s, eps32)
            stored = _round_scale(s, sdt)
            stored = np.where(stored == 0, np.ones((), sdt), stored).astype(sdt)
            data = _cast_float(xf / expand(stored.astype(F32)), dt, True, xf)
            return data, shaped(stored)

        if sdt == _E4M3:
            dq = (
                F32(1)
                if double_quant_scale is None
                else _as_f32(double_quant_scale, "double_quant_scale")
            )
            if dq.ndim != 0 or not (np.isfinite(dq) and dq > 0):
                raise ValueError("double_quant_scale: expected a positive finite scalar")
            s = amax / fmax
            if eps32 is not None:
                s = np.maximum(s, eps32)
            sq = canonical_nan(np.clip(s / dq, F32(0), F32(float_max(_E4M3)))).astype(_E4M3)
            div = expand(sq.astype(F32) * dq)
            zero = div == 0
            v = np.where(zero, np.copysign(F32(0), xf), xf / np.where(zero, F32(1), div))
            return _cast_float(v, dt, True, xf), shaped(sq)

        if sdt == _E8M0:
            if eps32 is not None:
                raise ValueError("eps: not defined for an f8E8M0FNU (MX) scale")
            e = _mx_exponent(amax, float(fmax), scale_rounding)
            nan = np.isnan(amax)
            code = np.where(nan, 255, e + 127).astype(np.uint8)
            p2 = np.where(nan, F32(np.nan), np.ldexp(F32(1), e)).astype(F32)
            data = _cast_float(xf / expand(p2), dt, True, xf)
            return data, shaped(code.view(_E8M0))

        raise ValueError(f"scale_dtype: expected f32, f16, bf16, f8E4M3FN or f8E8M0FNU, got {sdt}")


# ---------------------------------------------------------------------------------------
# fake quantization
# ---------------------------------------------------------------------------------------


def _fq_blocks(shape, axis, block_size, block_shape, per_token):
    rank = len(shape)
    if per_token:
        if block_size is not None or block_shape is not None:
            raise ValueError("per_token: exclusive with block_size / block_shape")
        if rank == 0:
            raise ValueError("per_token: needs a tensor of rank >= 1")
        block_shape = (1,) * (rank - 1) + (-1,)
    if block_shape is not None or block_size is not None:
        return param_block_shape(shape, axis=axis, block_size=block_size, block_shape=block_shape)
    if axis is not None:
        return param_block_shape(shape, axis=axis)
    return tuple(max(d, 1) for d in shape)


def _static_scale(scale) -> np.ndarray:
    s = _as_f32(scale, "scale")
    if np.any(np.isnan(s)) or np.any(s == 0):
        raise ValueError("scale: must be nonzero and not NaN (quantize divides by it)")
    return s


def _cast_param(p: np.ndarray, dt) -> np.ndarray:
    """torch ``.to(dtype)``: rne for floating dtypes, truncation toward zero for integers."""
    dt = np.dtype(dt)
    if dt.kind in "iu":
        return np.trunc(p).astype(dt)
    return np.asarray(p, dtype=F32).astype(dt)


def fake_quantize(
    x,
    scale=None,
    zero_point=None,
    *,
    dtype,
    axis=None,
    block_size=None,
    block_shape=None,
    per_token=False,
    symmetric=True,
    scale_dtype="f32",
    zero_point_dtype=None,
    zero_point_domain="int",
    eps=None,
    rounding="nearest_even",
) -> np.ndarray:
    """fake_quantize (docs/semantics.md): ``dequantize(quantize(x))`` in one pass, in f32.

    Returns f32, or x's dtype when x is f16 / bf16 (rne of the f32 result).

    Granularity (torchao ``FakeQuantizeConfig``): ``per_token`` = ``block([1,..,1,-1])``;
    ``block_shape``; ``block_size`` = per-group along ``axis`` (default the last axis);
    ``axis`` alone = per-channel (per-axis); nothing = per-tensor. Static when ``scale`` is
    given (``scale_dtype`` / ``zero_point_dtype`` / ``eps`` / ``symmetric`` are then
    ignored; the parameters have the section 2 shapes), dynamic otherwise.

    Dynamic parameters follow torchao ``quant_primitives.choose_qparams_affine`` (integer
    storage, ``qmin``/``qmax`` of ``dtype``), computed in f32 on the block statistics
    ``min_neg = min(xmin, 0)``, ``max_pos = max(xmax, 0)``:

    * symmetric: ``s = max(-min_neg, max_pos) / ((qmax - qmin) / 2)`` (torchao, e.g.
      amax / 127.5 for i8), zero point ``int((qmax + qmin + 1) / 2)`` (0 for signed
      storage, 128 for ui8) in the ``'int'`` domain, none in the ``'none'`` domain
      (``'float'`` is rejected, as torchao does);
    * asymmetric ``'int'`` domain: ``s = (max_pos - min_neg) / (qmax - qmin)``,
      ``zp = clamp(qmin - rne(min_neg / s), qmin, qmax)`` (torchao order: round, then
      subtract; ``dynamic_quantize`` follows ONNX instead);
    * asymmetric ``'float'`` domain (torchao ``_choose_qparams_affine_tinygemm``, zero not
      preserved, so the raw ``xmin`` / ``xmax`` are used): ``s = (xmax - xmin) / (qmax -
      qmin)``, ``zp = xmin + s * mid`` with ``mid = (qmax + qmin + 1) / 2``;
    * ``s = max(s, eps)`` before the zero point, ``eps`` defaulting to ``finfo(x.dtype).eps``
      (torchao); then the scale is rounded (rne) to ``scale_dtype`` and the zero point cast
      to ``zero_point_dtype`` (default: integer for ``'int'``, x's dtype for ``'float'``;
      an integer dtype truncates like torch ``.to``).

    Float storage ``dtype`` (e4m3 / e5m2 / e2m1 ...): symmetric only, ``s = amax / max``
    (``max(s, eps)`` only when ``eps`` is given; a zero scale is 1.0 as in
    ``dynamic_quantize``), then ``x' = f32(cast_rne(clip(x / s, -max, max))) * s``.

    The fake-quantize formulas (docs/semantics.md: an f32 division ``x / s``, where torchao multiplies
    by ``1 / s``; arithmetic in f32 where torchao uses x's dtype):

    * ``'int'`` / ``'none'`` domain: ``q = clamp(round(x / s) + zp, qmin, qmax)``,
      ``x' = (f32(q) - f32(zp)) * s`` (zp = 0 for ``'none'``);
    * ``'float'`` domain (torchao ``_quantize_affine_tinygemm`` /
      ``_dequantize_affine_tinygemm``): ``min_val = zp - s * mid``,
      ``q = clamp(round((x - min_val) / s), qmin, qmax)``, ``x' = (q - mid) * s + zp``.

    NaN is quantized like +0 in both domains (docs/semantics.md: NaN gives the zero point), so it fakes
    to the value 0 maps to; +-inf saturate.
    """
    xa = np.asarray(x)
    out = (
        xa.dtype
        if xa.dtype in (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))
        else np.dtype(F32)
    )
    xf = _as_f32(xa, "x")
    dt = storage_dtype(dtype)
    if zero_point_domain not in ("int", "float", "none"):
        raise ValueError(
            f"zero_point_domain: expected 'int', 'float' or 'none', got {zero_point_domain!r}"
        )
    if rounding not in _ROUNDING:
        raise ValueError(f"rounding: expected one of {_ROUNDING}, got {rounding!r}")
    shape = xf.shape
    blocks = _fq_blocks(shape, axis, block_size, block_shape, per_token)

    def expand(p):
        return _expand_blocks(np.asarray(p), shape, blocks)

    with _ieee():
        if dt in _FLOAT_STORAGE:
            if zero_point is not None or zero_point_domain == "float":
                raise ValueError(f"zero_point: float storage {dt} takes no zero point")
            if scale is None:
                if not symmetric:
                    raise ValueError(f"symmetric: float storage {dt} is symmetric only")
                sdt = _out_expressed(scale_dtype, "scale_dtype")
                s = _block_reduce(np.abs(xf), blocks, np.max, 0) / F32(float_max(dt))
                if eps is not None:
                    s = np.maximum(s, F32(eps))
                s = _round_scale(s, sdt)
                s = np.where(s == 0, np.ones((), sdt), s).astype(F32)
            else:
                s = _static_scale(scale)
            S = expand(s)
            q = _cast_float(xf / S, dt, True, xf).astype(F32)
            return nan_sign(q * S, q).astype(out)

        if dt not in _INT_STORAGE:
            raise ValueError(f"dtype: expected an integer or float storage format, got {dt}")
        qmin, qmax = int_range(dt)
        mid = F32((qmax + qmin + 1) / 2)
        if scale is None:
            sdt = _out_expressed(scale_dtype, "scale_dtype")
            if symmetric and zero_point_domain == "float":
                raise ValueError(
                    "zero_point_domain: 'float' is not supported for symmetric quantization"
                )
            if not symmetric and zero_point_domain == "none":
                raise ValueError("zero_point_domain: 'none' needs symmetric quantization")
            eps32 = F32(ml_dtypes.finfo(out).eps if eps is None else eps)
            if zero_point_domain == "float":
                xmax = _block_reduce(xf, blocks, np.max, -np.inf)
                xmin = _block_reduce(xf, blocks, np.min, np.inf)
            else:
                xmax = np.maximum(_block_reduce(xf, blocks, np.max, 0), F32(0))
                xmin = np.minimum(_block_reduce(xf, blocks, np.min, 0), F32(0))
            if symmetric:
                s = np.maximum(-xmin, xmax) / F32((qmax - qmin) / 2)
                s = np.maximum(s, eps32)
                zp = (
                    None
                    if zero_point_domain == "none"
                    else np.full(s.shape, int((qmax + qmin + 1) / 2))
                )
            else:
                s = np.maximum((xmax - xmin) / F32(qmax - qmin), eps32)
                if zero_point_domain == "int":
                    r = np.rint(xmin / s)
                    zp = np.clip(F32(qmin) - np.where(np.isnan(r), F32(0), r), qmin, qmax)
                else:
                    zp = xmin + s * mid
            if zp is not None:
                zdt = zero_point_dtype
                if zdt is None:
                    zdt = np.int64 if zero_point_domain == "int" else out
                zp = _cast_param(np.asarray(zp), zdt).astype(F32)
            s = _round_scale(s, sdt).astype(F32)
            s = np.where(s == 0, F32(1), s)  # only with eps=0: no division by zero
        else:
            s = _static_scale(scale)
            if zero_point_domain == "none" and zero_point is not None:
                raise ValueError("zero_point: must be None in the 'none' domain")
            if zero_point is None:
                zp = None if zero_point_domain != "float" else F32(0)
            elif zero_point_domain == "int":
                zp = _as_int(zero_point, "zero_point").astype(F32)
            else:
                zp = _as_f32(zero_point, "zero_point")
        S = expand(s)
        Z = F32(0) if zp is None else expand(zp).astype(F32)
        if zero_point_domain == "float":
            min_val = Z - S * mid
            v = (xf - min_val) / S
            v = np.where(np.isnan(xf), (F32(0) - min_val) / S, v)  # NaN quantizes like +0
            r = _round(v, rounding)
            q = np.clip(np.where(np.isnan(r), F32(0), r), F32(qmin), F32(qmax))
            y = nan_sign((q - mid) * S + Z, q)
        else:
            q = _quantize_int(xf / S, Z.astype(np.int64), qmin, qmax, rounding, np.int64)
            y = nan_sign((q.astype(F32) - Z) * S, q)
        return np.asarray(y, dtype=F32).astype(out)


# ---------------------------------------------------------------------------------------
# packing of sub-byte storage
# ---------------------------------------------------------------------------------------


def pack(q: np.ndarray) -> np.ndarray:
    """Pack 4-bit (i4, ui4, f4E2M1FN) or 2-bit (i2, ui2) storage into a flat uint8 array.

    Consecutive elements in C order, the first in the low bits; an odd tail is padded with
    zero bits. Output length ``ceil(n * bits / 8)``.
    """
    qa = np.asarray(q)
    bits = _SUBBYTE_BITS.get(qa.dtype)
    if bits is None:
        raise ValueError(
            f"q: expected 4-bit or 2-bit storage (i4 ui4 f4E2M1FN i2 ui2), got {qa.dtype}"
        )
    per = 8 // bits
    codes = np.ascontiguousarray(qa).reshape(-1).view(np.uint8) & np.uint8((1 << bits) - 1)
    n = codes.size
    nbytes = _ceil_div(n, per)
    padded = np.zeros(nbytes * per, np.uint8)
    padded[:n] = codes
    padded = padded.reshape(nbytes, per)
    out = np.zeros(nbytes, np.uint8)
    for j in range(per):
        out |= padded[:, j] << np.uint8(bits * j)
    return out


def unpack(packed, *, dtype, shape) -> np.ndarray:
    """Inverse of ``pack``: ``ceil(n * bits / 8)`` bytes to an array of ``dtype`` and ``shape``.

    Padding bits are ignored. ``ValueError`` when the byte count does not match.
    """
    dt = storage_dtype(dtype)
    bits = _SUBBYTE_BITS.get(dt)
    if bits is None:
        raise ValueError(
            f"dtype: expected 4-bit or 2-bit storage (i4 ui4 f4E2M1FN i2 ui2), got {dt}"
        )
    p = np.asarray(packed)
    if p.dtype != np.uint8:
        raise TypeError(f"packed: expected uint8 bytes, got {p.dtype}")
    shape = tuple(int(d) for d in shape)
    n = math.prod(shape)
    per = 8 // bits
    if p.size != _ceil_div(n, per):
        raise ValueError(
            f"packed: expected {_ceil_div(n, per)} bytes for shape {shape}, got {p.size}"
        )
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    codes = (p.reshape(-1, 1) >> shifts) & np.uint8((1 << bits) - 1)
    # ml_dtypes keeps a sub-byte value in the low bits of its byte (int4(-1) is 0x0F)
    return np.ascontiguousarray(codes.reshape(-1)[:n]).view(dt).reshape(shape)
