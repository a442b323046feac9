"""A real scale ratio <-> the (multiplier, shift) of ``quant.rescale`` (docs/semantics.md section 12).

Two conventions, each exactly as its source computes it in double precision:

* ``tosa``: MLIR's ``tosa::computeMultiplierAndShift`` (``scaleWidth`` 32 or 16):
  ``frexp`` gives ``scale = mantissa * 2^exponent`` with the mantissa in [0.5, 1); the
  mantissa times ``2^31`` (``2^15``) is rounded half away from zero (``std::round``); a
  result of exactly ``2^31`` is halved and the exponent raised; the right shift is
  ``31 - exponent`` (``15 - exponent``); a shift above 62 is capped at 62 by shifting
  the multiplier right (by at most 31 bits).
* ``tflite``: TFLite's ``QuantizeMultiplier`` (32-bit only): the same mantissa rounding;
  a scale below about ``2^-31`` flushes to ``(0, 0)``; TFLite's left-shift exponent
  ``e`` is returned as this op's right shift ``31 - e``.

The scale of a pair is ``multiplier * 2^-shift``, exact in f64 (a 31-bit integer times a
power of two).
"""

from __future__ import annotations

import math

CONVENTIONS = ("tosa", "tflite")
MULTIPLIER_BITS = (32, 16)


def _round_half_away(value: float) -> int:
    """``std::round``: a half rounds away from zero (exact for the doubles used here)."""
    floor = math.floor(abs(value))
    magnitude = floor + (1 if abs(value) - floor >= 0.5 else 0)
    return magnitude if value >= 0 else -magnitude


def quantize_multiplier(scale: float, bits: int = 32, convention: str = "tosa") -> tuple[int, int]:
    """``(multiplier, shift)`` with ``multiplier * 2^-shift`` approximating ``scale``.

    ``scale`` is a finite number >= 0 (a ratio of scales, e.g. ``s_in / s_out``);
    ``bits`` 32 or 16 is the multiplier's width. Raises ValueError for a scale the
    convention cannot represent (a shift below 0: scales of ``2^31`` (``2^15``) and more).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    if bits not in MULTIPLIER_BITS:
        raise ValueError(f"bits must be 32 or 16, got {bits!r}")
    if convention == "tflite" and bits != 32:
        raise ValueError("convention 'tflite' has 32-bit multipliers only")
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"scale must be finite and >= 0, got {scale!r}")
    if scale == 0:
        return 0, 0
    fraction_bits = bits - 1
    mantissa, exponent = math.frexp(scale)
    multiplier = _round_half_away(mantissa * (1 << fraction_bits))
    if multiplier == 1 << fraction_bits:
        multiplier //= 2
        exponent += 1
    if convention == "tflite":
        if exponent < -31:
            return 0, 0
        shift = 31 - exponent
    else:
        shift = fraction_bits - exponent
        if shift > 62:
            multiplier >>= min(31, shift - 62)
            shift = 62
    if shift < 0:
        raise ValueError(
            f"scale {scale!r} is too large for a {bits}-bit multiplier and a right shift "
            f">= 0 (the largest is below 2^{fraction_bits})"
        )
    return multiplier, shift


def multiplier_to_scale(multiplier: int, shift: int) -> float:
    """The real scale of a ``(multiplier, shift)`` pair: ``multiplier * 2^-shift``, exact."""
    return math.ldexp(float(multiplier), -int(shift))
