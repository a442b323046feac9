"""The entry points of the Python API: quantize, dequantize, requantize,
dynamic_quantize and fake_quantize.

Each checks its arguments (dtypes.py, params.py), describes the one-op function of the
request to an :class:`~qopt.api.building.OpCall` and runs its kernel, compiled once per
signature. Array arguments and results follow arrays.py (torch in, torch out).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qopt.api.arrays import returns_like_input
from qopt.api.building import OpCall
from qopt.api.dtypes import (
    EXPRESSED_NAMES,
    SCALE_NAMES,
    STORAGE_NAMES,
    bit_width,
    dtype_name,
    is_float_storage,
    typed_array,
)
from qopt.api.params import (
    as_bool,
    as_ints,
    double_quant,
    granularity,
    packed_size,
    packing,
    param_array,
    positive_f32,
    rounding_mode,
    scale_rounding_mode,
    zero_point_order_option,
)
from qopt.api.params import zero_point_domain as check_zero_point_domain
from qopt.qdialect.ops import (
    DequantizeOp,
    DynamicQuantizeOp,
    FakeQuantizeOp,
    QuantizeOp,
    RequantizeOp,
)


@returns_like_input
def quantize(
    x: np.ndarray,
    scale: Any,
    zero_point: Any = None,
    *,
    dtype: Any,
    axis: int | None = None,
    block_size: int | None = None,
    block_shape: Sequence[int] | None = None,
    saturate: bool = True,
    rounding: str = "nearest_even",
    packed: bool = False,
    out: np.ndarray | None = None,
    zero_point_order: str = "after_rounding",
) -> np.ndarray:
    """``q = clamp(round(x / scale) + zero_point, qmin, qmax)``; float storage
    ``cast_rne(x / scale)`` (docs/semantics.md sections 3-5). Returns an array of ``dtype``, or with
    ``packed=True`` (4-bit and 2-bit types) the flat uint8 bytes of the codes.
    ``zero_point_order="before_rounding"`` adds the zero point before rounding, in f32, as
    upstream MLIR's ``quant.qcast`` and StableHLO's ``uniform_quantize`` do:
    ``clamp(round(x / scale + zero_point))`` (NaN gives 0 there, as StableHLO's reference interpreter does).

    Granularity: ``block_shape`` -> N-D block; ``block_size`` -> per-block along ``axis``
    (default the last); ``axis`` and a 1-D scale -> per-axis (one scale per index of
    ``axis``); otherwise per-tensor. ``saturate=False`` applies to float storage only.
    """
    x, x_type = typed_array(x, "x", EXPRESSED_NAMES)
    storage = dtype_name(dtype, "dtype", STORAGE_NAMES)
    scale = param_array(scale, "scale")
    gran = granularity(
        x.shape,
        axis=axis,
        block_size=block_size,
        block_shape=block_shape,
        per_axis=scale.ndim == 1,
    )
    saturate = as_bool(saturate, "saturate")
    if not saturate and not is_float_storage(storage):
        raise ValueError(f"saturate=False applies to float storage only, dtype is {storage}")
    call = OpCall(QuantizeOp, x, x_type)
    call.parameters(scale, zero_point, gran, storage)
    call.option("granularity", gran)
    call.option("rounding", rounding_mode(rounding))
    call.option("zero_point_order", zero_point_order_option(zero_point_order, storage))
    call.option("saturate", None if saturate else False)
    return call.run([(x.shape, storage)], packing(packed, x.shape, storage), out=out)


@returns_like_input
def dequantize(
    q: np.ndarray,
    scale: Any,
    zero_point: Any = None,
    *,
    axis: int | None = None,
    block_size: int | None = None,
    block_shape: Sequence[int] | None = None,
    dtype: Any = "f32",
    double_quant_scale: Any = None,
    storage_dtype: Any = None,
    shape: Sequence[int] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``x = (q - zero_point) * scale`` in f32, rounded to ``dtype`` (f32, f16, bf16).

    Granularity as for :func:`quantize`.
    ``double_quant_scale`` multiplies the (e.g. NVFP4 e4m3) block scale: ``q * (s * dq)``.
    Packed input: ``q`` is the uint8 bytes of 4-bit / 2-bit codes, ``storage_dtype`` their
    type and ``shape`` the shape of the codes; the unpacking fuses into the kernel.
    """
    packed_input = None
    if storage_dtype is not None or shape is not None:
        if storage_dtype is None or shape is None:
            raise ValueError("packed input needs both storage_dtype and shape")
        storage = dtype_name(storage_dtype, "storage_dtype", STORAGE_NAMES)
        if bit_width(storage) not in (2, 4):
            raise ValueError(f"storage_dtype must be a 4-bit or 2-bit type, got {storage}")
        q, _ = typed_array(q, "q", ("ui8",))
        codes_shape = tuple(as_ints(shape, "shape"))
        if any(n < 0 for n in codes_shape):
            raise ValueError(f"shape must have sizes >= 0, got {codes_shape}")
        if q.ndim != 1 or q.size != packed_size(codes_shape, storage):
            raise ValueError(
                f"q must hold {packed_size(codes_shape, storage)} packed bytes as a 1-D "
                f"array for shape {codes_shape}, got shape {q.shape}"
            )
        packed_input = (codes_shape, storage)
    else:
        q, storage = typed_array(q, "q", STORAGE_NAMES)
        codes_shape = q.shape
    return _dequantize(
        q, packed_input, storage, codes_shape, scale, zero_point, axis, block_size,
        block_shape, dtype, double_quant_scale, out,
    )  # fmt: skip


def _dequantize(
    q: np.ndarray,
    packed_input: tuple | None,
    storage: str,
    codes_shape: tuple[int, ...],
    scale: Any,
    zero_point: Any,
    axis: Any,
    block_size: Any,
    block_shape: Any,
    dtype: Any,
    double_quant_scale: Any,
    out: np.ndarray | None,
) -> np.ndarray:
    """The body of :func:`dequantize` once the input form (plain or packed) is known."""
    expressed = dtype_name(dtype, "dtype", EXPRESSED_NAMES)
    scale = param_array(scale, "scale")
    gran = granularity(
        codes_shape,
        axis=axis,
        block_size=block_size,
        block_shape=block_shape,
        per_axis=scale.ndim == 1,
    )
    call = OpCall(DequantizeOp, q, storage, packed_input)
    call.parameters(scale, zero_point, gran, storage)
    if double_quant_scale is not None:
        call.operand("double_quant", double_quant(double_quant_scale))
    call.option("granularity", gran)
    return call.run([(codes_shape, expressed)], out=out)


@returns_like_input
def requantize(
    q: np.ndarray,
    in_scale: Any,
    in_zero_point: Any,
    out_scale: Any,
    out_zero_point: Any,
    *,
    axis: int | None = None,
    dtype: Any = None,
    rounding: str = "nearest_even",
    lowering: str | None = None,
    out: np.ndarray | None = None,
    zero_point_order: str = "after_rounding",
) -> np.ndarray:
    """``quantize(dequantize(q, in_*) as f32, out_*)`` bit for bit, in one kernel
    (``zero_point_order`` as in :func:`quantize`, for the output side).

    Each side is per-tensor (scalar scale) or per-axis on ``axis`` (1-D scale),
    independently; a scalar zero point broadcasts to its side's scale. ``lowering`` forces
    ``fused``, ``composite`` or ``lut``; all give the same bits (the default lets
    choose-quant-lowering decide).
    """
    q, storage = typed_array(q, "q", STORAGE_NAMES)
    out_storage = storage if dtype is None else dtype_name(dtype, "dtype", STORAGE_NAMES)
    if lowering not in (None, "fused", "composite", "lut"):
        raise ValueError(f"lowering must be None, fused, composite or lut, got {lowering!r}")
    call = OpCall(RequantizeOp, q, storage)
    for side, scale, zp, side_storage in (
        ("in", in_scale, in_zero_point, storage),
        ("out", out_scale, out_zero_point, out_storage),
    ):
        scale = param_array(scale, f"{side}_scale")
        gran = granularity(
            q.shape, axis=axis, block_size=None, block_shape=None, per_axis=scale.ndim == 1
        )
        call.parameters(scale, zp, gran, side_storage, f"{side}_")
        call.option(f"{side}_granularity", gran)
    call.option("rounding", rounding_mode(rounding))
    call.option("zero_point_order", zero_point_order_option(zero_point_order, out_storage))
    if lowering is not None:
        call.attribute("lowering", lowering)
    return call.run([(q.shape, out_storage)], out=out)


@returns_like_input
def dynamic_quantize(
    x: np.ndarray,
    *,
    dtype: Any,
    scale_dtype: Any = "f32",
    axis: int | None = None,
    block_size: int | None = None,
    block_shape: Sequence[int] | None = None,
    double_quant_scale: Any = None,
    symmetric: bool = True,
    scale_rounding: str = "floor",
    eps: float | None = None,
    packed: bool = False,
    out: Sequence[np.ndarray] | None = None,
) -> tuple[np.ndarray, ...]:
    """Per-block statistics, then quantize with the computed scale (docs/semantics.md sections 3-5).

    Returns ``(data, scale)``, or ``(data, scale, zero_point)`` when not symmetric.
    Granularity: ``block_shape`` -> N-D block; ``block_size`` -> per-block along ``axis``
    (default the last axis); ``axis`` alone -> per-channel: one scale per index of
    ``axis`` (statistics over every other dimension, a 1-D scale of ``x.shape[axis]``
    entries, the per-axis form ``quantize`` and ``dequantize`` take back); none of
    them -> per-tensor (a 0-d scale).
    NVFP4: ``dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16`` (``double_quant_scale``
    applies to f8E4M3FN scales only); MX: ``scale_dtype="f8E8M0FNU", block_size=32`` with
    ``scale_rounding`` floor or rceil (rceil applies to f8E8M0FNU scales only).
    ``symmetric=False`` needs integer storage. ``eps`` (the smallest scale) must be finite
    and > 0 as a float32.
    ``packed=True`` returns the data of 4-bit / 2-bit types as flat uint8 bytes.
    ``out``: preallocated C-contiguous arrays for all the results, written in place.
    """
    if out is not None and not isinstance(out, tuple | list):
        raise TypeError(f"out must be a tuple of arrays, one per result, got {type(out).__name__}")
    x, x_type = typed_array(x, "x", EXPRESSED_NAMES)
    storage = dtype_name(dtype, "dtype", STORAGE_NAMES)
    scale_type = dtype_name(scale_dtype, "scale_dtype", SCALE_NAMES)
    scale_rounding = scale_rounding_mode(scale_rounding, scale_type)
    if scale_type in ("f8E4M3FN", "f8E8M0FNU") and not is_float_storage(storage):
        raise ValueError(f"scale_dtype {scale_type} needs float storage, dtype is {storage}")
    if double_quant_scale is not None and scale_type != "f8E4M3FN":
        raise ValueError(
            f"double_quant_scale applies to f8E4M3FN scales (NVFP4) only, scale_dtype is "
            f"{scale_type}"
        )
    symmetric = as_bool(symmetric, "symmetric")
    if not symmetric and is_float_storage(storage):
        raise ValueError(f"symmetric=False needs integer storage, dtype is {storage}")
    gran = granularity(
        x.shape, axis=axis, block_size=block_size, block_shape=block_shape, per_axis=True
    )
    call = OpCall(DynamicQuantizeOp, x, x_type)
    call.option("granularity", gran)
    if double_quant_scale is not None:
        call.operand("double_quant", double_quant(double_quant_scale))
    call.option("scale_rounding", scale_rounding)
    call.option("symmetric", None if symmetric else False)
    call.option("eps", None if eps is None else positive_f32(eps, "eps"))
    results = [(x.shape, storage), (gran.param_shape, scale_type)]
    if not symmetric:
        results.append((gran.param_shape, storage))
    return tuple(call.run(results, packing(packed, x.shape, storage), out=out))


@returns_like_input
def fake_quantize(
    x: np.ndarray,
    scale: Any = None,
    zero_point: Any = None,
    *,
    dtype: Any,
    axis: int | None = None,
    block_size: int | None = None,
    block_shape: Sequence[int] | None = None,
    per_token: bool = False,
    symmetric: bool = True,
    scale_dtype: Any = "f32",
    zero_point_domain: str = "int",
    eps: float | None = None,
    rounding: str = "nearest_even",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``dequantize(quantize(x))`` in one fused kernel, in ``x``'s dtype.

    Static when ``scale`` is given (``zero_point`` optional; granularity as for
    :func:`quantize`). Otherwise dynamic, with torchao ``FakeQuantizeConfig`` semantics:
    ``dtype`` the storage type, granularity ``per_token=True`` / per-channel ``axis`` /
    per-group ``block_size`` (on ``axis``, default the last) / ``block_shape``,
    ``symmetric``, ``scale_dtype`` (the precision the scale is rounded to: f32, f16, bf16),
    ``zero_point_domain`` ``"int"``, ``"float"`` or ``"none"``, and ``eps`` (the smallest
    scale). Those dynamic options are rejected with a static scale.
    """
    x, x_type = typed_array(x, "x", EXPRESSED_NAMES)
    storage = dtype_name(dtype, "dtype", STORAGE_NAMES)
    scale_type = dtype_name(scale_dtype, "scale_dtype", EXPRESSED_NAMES)
    zero_point_domain = check_zero_point_domain(zero_point_domain)
    symmetric = as_bool(symmetric, "symmetric")
    if as_bool(per_token, "per_token"):
        if block_size is not None or block_shape is not None or axis is not None:
            raise ValueError("per_token excludes axis, block_size and block_shape")
        if x.ndim == 0:
            raise ValueError("per_token needs an array of rank >= 1")
        block_shape = [1] * (x.ndim - 1) + [-1]
    dynamic = scale is None
    if dynamic and zero_point is not None:
        raise ValueError("zero_point needs a scale (dynamic fake quantization computes both)")
    if not dynamic:
        for name, value, default in (
            ("eps", eps, None),
            ("symmetric", symmetric, True),
            ("scale_dtype", scale_type, "f32"),
            ("zero_point_domain", zero_point_domain, "int"),
        ):
            if value != default:
                raise ValueError(f"{name} applies to dynamic fake quantization (scale=None) only")
        scale = param_array(scale, "scale")
    gran = granularity(
        x.shape,
        axis=axis,
        block_size=block_size,
        block_shape=block_shape,
        per_axis=dynamic or scale.ndim == 1,
    )
    call = OpCall(FakeQuantizeOp, x, x_type)
    call.option("storage_type", storage)
    if not dynamic:
        call.parameters(scale, zero_point, gran, storage)
    call.option("granularity", gran)
    call.option("rounding", rounding_mode(rounding))
    call.option("symmetric", None if symmetric else False)
    call.option("eps", None if eps is None else positive_f32(eps, "eps"))
    call.option("scale_type", None if scale_type == "f32" else scale_type)
    call.option("zero_point_domain", None if zero_point_domain == "int" else zero_point_domain)
    return call.run([], out=out)
