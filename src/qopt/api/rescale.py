"""The fixed-point entry points: ``rescale`` (``quant.rescale``) and the scale <-> (multiplier,
shift) conversions (docs/semantics.md section 12).

``rescale`` passes the multiplier, the shift and the zero points as runtime operands, like
the other entry points, so one kernel serves every value of a signature; they are checked
here first (the kernel clamps a shift, it does not reject it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qopt.api.arrays import as_numpy, returns_like_input
from qopt.api.building import OpCall
from qopt.api.dtypes import dtype_name, typed_array
from qopt.api.params import as_axis, as_bool
from qopt.qdialect import fixed_point
from qopt.qdialect.attrs import PerAxisAttr
from qopt.qdialect.rescale import (
    MAX_SHIFT,
    MULTIPLIER_MAX,
    RESCALE_ROUNDING_MODES,
    RescaleOp,
    value_range,
)

RESCALE_STORAGE = ("i32", "ui32", "i16", "ui16", "i8", "ui8")
"""Input and output storage of ``rescale`` (MLIR spellings)."""


def _int_array(value: Any, argument: str, lo: int, hi: int, dtype: np.dtype) -> np.ndarray:
    """An integer scalar or 1-D array within ``[lo, hi]``, as ``dtype``."""
    array = as_numpy(value, argument) if not isinstance(value, int | np.integer) else None
    if array is None:
        if isinstance(value, bool | np.bool_):
            raise TypeError(f"{argument} must be an int or an integer array, got {value!r}")
        array = np.asarray(int(value), dtype=object)
    elif array.dtype.kind not in "iu":
        raise TypeError(f"{argument} must hold integers, got dtype {array.dtype}")
    if array.ndim > 1:
        raise ValueError(f"{argument} must be a scalar or 1-D, got shape {array.shape}")
    ints = [int(v) for v in array.reshape(-1)]
    bad = [v for v in ints if not lo <= v <= hi]
    if bad:
        raise ValueError(f"{argument} {bad[0]} is outside [{lo}, {hi}]")
    return np.asarray(ints, dtype=dtype).reshape(array.shape)


def _zero_point(value: Any, argument: str, storage: str, unsigned: bool) -> np.ndarray:
    """A 0-d array of the storage dtype; an unsigned value is stored as its bit pattern."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{argument} must be an int, got {value!r}")
    width = int(storage.removeprefix("u").removeprefix("i"))
    lo, hi = value_range(width, unsigned)
    if unsigned:
        lo = -(1 << (width - 1))  # the signed bit pattern is accepted too (TOSA's form)
    zp = int(value)
    if not lo <= zp <= hi:
        raise ValueError(f"{argument} {zp} is outside [{lo}, {hi}] for {storage} storage")
    bits = zp % (1 << width)
    dtype = np.dtype(f"{'u' if storage.startswith('u') else 'i'}{width // 8}")
    word = bits - (1 << width) if dtype.kind == "i" and bits >> (width - 1) else bits
    return np.asarray(word, dtype=dtype)


@returns_like_input
def rescale(
    x: np.ndarray,
    multiplier: Any,
    shift: Any,
    *,
    in_zero_point: int = 0,
    out_zero_point: int = 0,
    dtype: Any = "i8",
    axis: int | None = None,
    rounding: str = "single_round",
    multiplier_bits: int | None = None,
    input_unsigned: bool = False,
    output_unsigned: bool = False,
    saturate: bool = True,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Fixed-point requantize ``x`` (an integer array: i8..i32, ui8..ui32), TOSA RESCALE:
    ``sat(floor(((x - in_zp) * multiplier + r) / 2^shift) + out_zp)`` in exact integers.

    ``multiplier`` and ``shift`` are ints (per tensor) or 1-D arrays along ``axis`` (per
    channel, any axis); ``multiplier_bits`` 32 (``apply_scale_32``) or 16 is taken from an
    int16 multiplier array, else 32. ``rounding``: ``single_round`` (a half toward
    +infinity), ``double_round`` (TFLite's), ``inexact_round``, ``upward``, ``tonearest``
    (TVM QNN). ``input_unsigned`` / ``output_unsigned`` read a signed dtype as unsigned
    (TOSA's flags); unsigned zero points are values or signed bit patterns.
    """
    x, storage = typed_array(x, "x", RESCALE_STORAGE)
    out_storage = dtype_name(dtype, "dtype", RESCALE_STORAGE)
    mode = rounding.lower() if isinstance(rounding, str) else rounding
    if mode not in RESCALE_ROUNDING_MODES:
        raise ValueError(
            f"rounding must be one of {', '.join(RESCALE_ROUNDING_MODES)}, got {rounding!r}"
        )
    if multiplier_bits is None:
        is16 = isinstance(multiplier, np.ndarray) and multiplier.dtype == np.int16
        multiplier_bits = 16 if is16 else 32
    if multiplier_bits not in (16, 32):
        raise ValueError(f"multiplier_bits must be 16 or 32, got {multiplier_bits!r}")
    if mode == "double_round" and multiplier_bits != 32:
        raise ValueError("rounding 'double_round' needs a 32-bit multiplier (multiplier_bits=32)")
    m = _int_array(
        multiplier,
        "multiplier",
        0,
        MULTIPLIER_MAX[multiplier_bits],
        np.dtype(f"i{multiplier_bits // 8}"),
    )
    s = _int_array(shift, "shift", 0, MAX_SHIFT, np.dtype(np.int8))
    in_unsigned = as_bool(input_unsigned, "input_unsigned") or storage.startswith("u")
    out_unsigned = as_bool(output_unsigned, "output_unsigned") or out_storage.startswith("u")
    call = OpCall(RescaleOp, x, storage)
    if axis is None:
        if m.ndim or s.ndim:
            raise ValueError("per-channel multiplier or shift (1-D) needs axis")
    else:
        a = as_axis(axis, x.ndim)
        n = x.shape[a]
        m, s = (np.broadcast_to(p, (n,)) if p.ndim == 0 else p for p in (m, s))
        for name, p in (("multiplier", m), ("shift", s)):
            if p.shape != (n,):
                raise ValueError(f"{name} must have {n} entries (x.shape[{a}]), got {p.shape[0]}")
        m, s = np.ascontiguousarray(m), np.ascontiguousarray(s)
        call.option("granularity", PerAxisAttr(a))
    call.operand("multiplier", m)
    call.operand("shift", s)
    zi = _zero_point(in_zero_point, "in_zero_point", storage, in_unsigned)
    if int(zi) != 0:  # a zero input zero point is left out: i32 input then takes the
        call.operand("in_zero_point", zi)  # direct (p + r) >> s of lowering_rescale.py
    call.operand(
        "out_zero_point", _zero_point(out_zero_point, "out_zero_point", out_storage, out_unsigned)
    )
    call.option("rounding", None if mode == "single_round" else mode)
    if input_unsigned:
        call.option("input_unsigned", True)
    if output_unsigned:
        call.option("output_unsigned", True)
    if not as_bool(saturate, "saturate"):
        call.option("saturate", False)
    return call.run([(x.shape, out_storage)], out=out)


def quantize_multiplier(scale: Any, *, bits: int = 32, convention: str = "tosa") -> tuple[Any, Any]:
    """``(multiplier, shift)`` of a real scale ratio (``s_in / s_out``), as TOSA's
    ``computeMultiplierAndShift`` (``convention="tosa"``, 32 or 16 bits) or TFLite's
    ``QuantizeMultiplier`` (``"tflite"``, returned as a right shift) compute it.

    A float gives two ints; an array of scales gives an int32 (int16) multiplier array
    and an int8 shift array of its shape.
    """
    if isinstance(scale, bool | np.bool_):
        raise TypeError(f"scale must be a number or an array of them, got {scale!r}")
    if isinstance(scale, int | float | np.floating | np.integer):
        return fixed_point.quantize_multiplier(float(scale), bits, convention)
    array = np.asarray(as_numpy(scale, "scale"), dtype=np.float64)
    pairs = [fixed_point.quantize_multiplier(float(v), bits, convention) for v in array.flat]
    multipliers = np.array([p[0] for p in pairs], dtype=f"i{bits // 8}").reshape(array.shape)
    shifts = np.array([p[1] for p in pairs], dtype=np.int8).reshape(array.shape)
    return multipliers, shifts


def multiplier_to_scale(multiplier: Any, shift: Any) -> Any:
    """The real scale ``multiplier * 2^-shift`` (exact, float64) of a pair or of arrays."""
    if isinstance(multiplier, int | np.integer) and isinstance(shift, int | np.integer):
        return fixed_point.multiplier_to_scale(int(multiplier), int(shift))
    m = np.asarray(
        as_numpy(multiplier, "multiplier") if not np.isscalar(multiplier) else multiplier
    )
    s = np.asarray(as_numpy(shift, "shift") if not np.isscalar(shift) else shift)
    if m.dtype.kind not in "iu" or s.dtype.kind not in "iu":
        raise TypeError("multiplier and shift must be integers")
    return np.ldexp(m.astype(np.float64), -s.astype(np.int64))
