"""Numpy references of ``quant.rescale`` (docs/semantics.md section 12), in exact integers.

Three independent transcriptions, each of its source's own arithmetic, on Python integers
(object arrays: no width can overflow), so tests can hold them against each other and
against qopt's kernels:

* :func:`rescale`: the TOSA specification's RESCALE pseudocode with ``apply_scale_32`` /
  ``apply_scale_16`` (``round = 1 << (shift - 1)``, ``+-(1 << 30)`` for double rounding
  above a shift of 31), extended to every input the op accepts (shift 0 and 1, any zero
  point, saturation or wrap, a narrow range) and TVM QNN's ``TONEAREST``;
* :func:`tflite_multiply_by_quantized_multiplier`: TFLite's
  ``MultiplyByQuantizedMultiplier`` in both forms (gemmlowp's
  ``SaturatingRoundingDoublingHighMul`` + ``RoundingDivideByPOT``, and
  ``TFLITE_SINGLE_ROUNDING``), with TFLite's left-shift exponent;
* :func:`tvm_fixed_point_multiply`: TVM QNN's ``FixedPointMultiply`` (``UPWARD`` /
  ``TONEAREST``), with TVM's shift convention.

Plus the two conversions of a real scale to (multiplier, shift): TFLite's
``QuantizeMultiplier`` and TOSA's ``computeMultiplierAndShift``.
"""

from __future__ import annotations

import math

import numpy as np

MLIR_DTYPES = {
    name: np.dtype(f"{'u' if name.startswith('u') else ''}int{name.lstrip('ui')}")
    for name in ("i8", "ui8", "i16", "ui16", "i32", "ui32")
}
"""MLIR spellings of the integer storage types (``np.dtype("i8")`` would be int64)."""

ROUNDING_MODES = ("single_round", "double_round", "inexact_round", "upward", "tonearest")


def _as_ints(a) -> np.ndarray:
    return np.asarray(a).astype(object)


def _broadcast_param(param, shape: tuple[int, ...], axis: int | None) -> np.ndarray:
    """A per-tensor (scalar) or per-axis (1-D along ``axis``) parameter, as data-shaped ints."""
    p = _as_ints(param)
    if p.ndim == 0 or axis is None:
        return np.broadcast_to(p.reshape(()), shape)
    view = [1] * len(shape)
    view[axis] = p.shape[0]
    return np.broadcast_to(p.reshape(view), shape)


def _floor_shift(n: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``floor(n / 2^s)`` on Python ints (``>>`` is an arithmetic shift on them)."""
    return np.frompyfunc(lambda a, b: a >> b, 2, 1)(n, s)


def _read(values: np.ndarray, width: int, unsigned: bool) -> np.ndarray:
    """Storage words (of a signed or unsigned numpy dtype) as their signed/unsigned value."""
    ints = _as_ints(values)
    mask = (1 << width) - 1
    bits = np.frompyfunc(lambda a: a & mask, 1, 1)(ints)
    if unsigned:
        return bits
    return np.frompyfunc(lambda b: b - (1 << width) if b >> (width - 1) else b, 1, 1)(bits)


def rescale(
    x: np.ndarray,
    multiplier,
    shift,
    *,
    in_zero_point: int = 0,
    out_zero_point: int = 0,
    dtype=np.int8,
    axis: int | None = None,
    rounding: str = "single_round",
    input_unsigned: bool = False,
    output_unsigned: bool = False,
    saturate: bool = True,
    storage_range: tuple[int, int] | None = None,
) -> np.ndarray:
    """TOSA RESCALE (and TVM's TONEAREST) on exact integers; the result in ``dtype``.

    ``x`` is an integer array; it is read as unsigned when its dtype is unsigned or
    ``input_unsigned``. The output is written as ``dtype`` (unsigned results of a signed
    ``dtype`` with ``output_unsigned``: their bit pattern). Zero points are values or, for
    unsigned storage, signed bit patterns (both mean the zero-extended value).
    """
    x = np.asarray(x)
    dtype = (
        MLIR_DTYPES.get(dtype)
        if isinstance(dtype, str) and dtype in MLIR_DTYPES
        else np.dtype(dtype)
    )
    in_width, out_width = x.dtype.itemsize * 8, dtype.itemsize * 8
    in_unsigned = input_unsigned or x.dtype.kind == "u"
    out_unsigned = output_unsigned or dtype.kind == "u"
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {ROUNDING_MODES}, got {rounding!r}")
    shape = x.shape
    m = _broadcast_param(multiplier, shape, axis)
    s = _broadcast_param(shift, shape, axis)
    zi = in_zero_point % (1 << in_width) if in_unsigned else in_zero_point
    zo = out_zero_point % (1 << out_width) if out_unsigned else out_zero_point
    value = _read(x, in_width, in_unsigned) - zi
    product = value * m
    half = np.frompyfunc(lambda k: (1 << (k - 1)) if k > 0 else 0, 1, 1)(s)
    if rounding == "double_round":
        # apply_scale_32(double_round=true): +-(1 << 30) when the shift exceeds 31,
        # by the sign of the value.
        adjust = np.frompyfunc(
            lambda k, val: 0 if k <= 31 else ((1 << 30) if val >= 0 else -(1 << 30)), 2, 1
        )(s, value)
        round_ = half + adjust
    elif rounding == "tonearest":
        # TVM: 2^(s-1) for a non-negative product, 2^(s-1) - 1 for a negative one.
        round_ = np.frompyfunc(lambda h, p, k: h - 1 if (p < 0 and k > 0) else h, 3, 1)(
            half, product, s
        )
    else:
        round_ = half
    result = _floor_shift(product + round_, s) + zo
    if saturate:
        if storage_range is not None:
            lo, hi = storage_range
        elif out_unsigned:
            lo, hi = 0, (1 << out_width) - 1
        else:
            lo, hi = -(1 << (out_width - 1)), (1 << (out_width - 1)) - 1
        result = np.minimum(np.maximum(result, lo), hi)
    mask = (1 << out_width) - 1
    bits = np.frompyfunc(lambda a: a & mask, 1, 1)(result)
    words = np.asarray(bits, dtype=np.uint64).astype(f"u{dtype.itemsize}")
    return words.view(dtype).reshape(shape)


# --- TFLite -----------------------------------------------------------------------------


def _c_div(a: int, b: int) -> int:
    """C integer division: truncation toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _c_div(ab + nudge, 1 << 31)


def _rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT on int32 (a half rounds away from zero)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def tflite_multiply_by_quantized_multiplier(
    x: int, quantized_multiplier: int, shift: int, *, single_rounding: bool = False
) -> int:
    """TFLite ``MultiplyByQuantizedMultiplier(int32 x, int32 m, int shift)`` (``shift`` is
    TFLite's left-shift exponent: the scale is ``m * 2^(shift - 31)``)."""
    if single_rounding:
        total_shift = 31 - shift
        round_ = 1 << (total_shift - 1)
        return (x * quantized_multiplier + round_) >> total_shift
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    shifted = x * (1 << left_shift)
    # gemmlowp's int32 arithmetic: the caller keeps x << left_shift within int32.
    assert -(1 << 31) <= shifted < (1 << 31)
    return _rounding_divide_by_pot(_srdhm(shifted, quantized_multiplier), right_shift)


def tflite_quantize_multiplier(real: float, *, single_rounding: bool = False) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``(quantized_multiplier, shift)``, TFLite's shift."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(_round_half_away(q * (1 << 31)))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if single_rounding and shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return q_fixed, shift


def _round_half_away(v: float) -> float:
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


# --- TOSA's conversion ------------------------------------------------------------------


def tosa_compute_multiplier_and_shift(scale: float, bits: int = 32) -> tuple[int, int]:
    """MLIR's ``tosa::computeMultiplierAndShift`` (scale width 32 or 16): the TOSA
    ``(multiplier, shift)`` with ``shift`` a right shift capped at 62."""
    scale_bits = 31 if bits == 32 else 15
    mantissa, exponent = math.frexp(scale)
    shifted = _round_half_away(mantissa * (1 << scale_bits))
    assert shifted <= (1 << scale_bits)
    if shifted == (1 << scale_bits):
        shifted /= 2
        exponent += 1
    shift = -exponent + scale_bits
    multiplier = int(shifted)
    if shift > 62:
        multiplier >>= min(31, shift - 62)
        shift = 62
    return multiplier, shift


# --- TVM ------------------------------------------------------------------------------


def tvm_fixed_point_multiply(x: int, multiplier: int, shift: int, rounding: str) -> int:
    """TVM QNN ``FixedPointMultiply(x, multiplier, shift, rounding)`` on int64 (``shift``
    is TVM's: positive = left shift before the multiply, the total right shift is
    ``31 - shift`` when negative... exactly as ``src/relay/qnn/utils.cc`` computes it)."""
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    tensor = x << left_shift
    tensor = tensor * multiplier
    total_right_shift = right_shift + 31
    pos = 1 << (total_right_shift - 1)
    if rounding == "UPWARD":
        round_ = pos
    elif rounding == "TONEAREST":
        round_ = pos if tensor >= 0 else pos - 1
    else:
        raise ValueError(rounding)
    return (tensor + round_) >> total_right_shift
