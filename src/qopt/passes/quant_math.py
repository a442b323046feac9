"""The scalar math of the quant lowering: what one element of a static quant op computes.

This module is the numerics of docs/semantics.md sections 3-5 written as IR: every function appends
scalar ``arith`` / ``math`` ops to the body of a ``linalg.generic`` that the lowering
patterns are building (through :class:`~qopt.passes.scalar_ir.BodyBuilder`); nothing here
knows about tensors, shapes or granularity. Layered like MLIR's ``LowerQuantOps.cpp``:
:func:`round_integral` (one rounder per mode of the dialect's ``ROUNDING_MODES``),
:func:`clamp`, then :func:`quantize_value` / :func:`dequantize_value` and their parts. The
dynamic scales and fake quantization build on these in ``dynamic_math.py``; fold-quant
evaluates exactly these ops at compile time (``evaluate_lowered.py``).

All arithmetic is f32 (f16 / bf16 / small float values are ``arith.extf``'d first, which is
exact); ``x / s`` is always ``arith.divf`` (never a multiply by a reciprocal); every
float-to-integer conversion sees a value already clamped to the storage range, with NaN
replaced by an explicit ``cmpf uno`` + ``select`` (``maximumf`` would keep the NaN and
``maxnumf(NaN, lo)`` would silently give ``lo``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.dialects import math
from xdsl.dialects.builtin import IntegerType
from xdsl.ir import SSAValue

from qopt.passes.scalar_ir import BodyBuilder, Storage, to_f32, to_storage_int
from qopt.qdialect.ops import ROUNDING_MODES
from qopt.qdialect.verifiers import ZERO_POINT_ORDERS

AFTER_ROUNDING, BEFORE_ROUNDING = ZERO_POINT_ORDERS


def _half_up(b: BodyBuilder, v: SSAValue) -> SSAValue:
    floor = b.unary(math.FloorOp, v)
    up = b.cmpf("oge", b.subf(v, floor), b.f32(0.5))
    return b.select(up, b.addf(floor, b.f32(1.0)), floor)


_ROUNDERS: dict[str, Callable[[BodyBuilder, SSAValue], SSAValue]] = {
    "nearest_even": lambda b, v: b.unary(math.RoundEvenOp, v),
    "nearest_away": lambda b, v: b.unary(math.RoundOp, v),
    "toward_zero": lambda b, v: b.unary(math.TruncOp, v),
    "half_up": _half_up,
}
assert set(_ROUNDERS) == set(ROUNDING_MODES), "one rounder per mode of the dialect"


def round_integral(b: BodyBuilder, v: SSAValue, mode: str) -> SSAValue:
    """Round an f32 to an integral f32 by ``mode`` (NaN and +-inf pass through):

    nearest_even  %r = math.roundeven %v : f32
    nearest_away  %r = math.round %v : f32         (half away from zero)
    toward_zero   %r = math.trunc %v : f32
    half_up       %fl = math.floor %v : f32         floor(v + 0.5), but exact: v + 0.5
                  %fr = arith.subf %v, %fl          rounds in f32 for |v| >= 2^23, while
                  %up = arith.cmpf oge, %fr, 0.5    v - floor(v) is always exact
                  %r1 = arith.addf %fl, 1.0
                  %r = arith.select %up, %r1, %fl
    """
    rounder = _ROUNDERS.get(mode)
    if rounder is None:
        raise ValueError(f"unknown rounding mode '{mode}'")
    return rounder(b, v)


def clamp(b: BodyBuilder, v: SSAValue, lo: float, hi: float) -> SSAValue:
    """``minimumf(maximumf(v, lo), hi)``: NaN stays NaN, +-inf become the bounds.

    %0 = arith.maximumf %v, %lo : f32
    %1 = arith.minimumf %0, %hi : f32
    """
    return b.minimumf(b.maximumf(v, b.f32(lo)), b.f32(hi))


def quantize_int_value(
    b: BodyBuilder,
    v: SSAValue,
    zp: SSAValue | None,
    storage: Storage,
    rounding: str,
    zero_point_order: str = AFTER_ROUNDING,
) -> SSAValue:
    """``clamp(round(v) + zp, qmin, qmax)`` as an integral f32; NaN gives clamp(zp).

        %r = math.roundeven %v : f32
        %t = arith.addf %r, %zp : f32
        %nan = arith.cmpf uno, %t, %t : f32
        %t1 = arith.select %nan, %zp, %t : f32
        %lo = arith.maximumf %t1, %qmin : f32
        %c = arith.minimumf %lo, %qmax : f32

    ``round(v) + zp`` is exact while ``|round(v)| < 2^24``; beyond that the sum is far
    outside every storage range (at most 16 bits) and clamps to the same bound.

    ``before_rounding`` (upstream MLIR, StableHLO) adds first, in f32, clamps, and a NaN
    gives 0 (not clamped to a narrow range), as StableHLO's reference interpreter does:

        %t = arith.addf %v, %zp : f32
        %r = math.roundeven %t : f32
        ... clamp ...                              (NaN stays NaN)
        %nan = arith.cmpf uno, %c, %c : f32
        %q = arith.select %nan, 0.0, %c : f32
    """
    if zero_point_order == BEFORE_ROUNDING:
        t = round_integral(b, v if zp is None else b.addf(v, zp), rounding)
        c = clamp(b, t, storage.qmin, storage.qmax)
        return b.select(b.is_nan(c), b.f32(0.0), c)
    t = round_integral(b, v, rounding)
    zero_point = zp if zp is not None else b.f32(0.0)
    if zp is not None:
        t = b.addf(t, zp)
    t = b.select(b.is_nan(t), zero_point, t)
    return clamp(b, t, storage.qmin, storage.qmax)


def quantize_float_value(
    b: BodyBuilder, v: SSAValue, storage: Storage, saturate: bool, source: SSAValue
) -> SSAValue:
    """``cast_rne(v)`` to a float storage format, clipped to +-max first with ``saturate``;
    ``v`` was computed from the element ``source`` (``x / s``), whose sign a NaN takes:

    %0 = arith.maximumf %v, %neg_max : f32       (saturate only; NaN propagates)
    %1 = arith.minimumf %0, %max : f32
    ... nan_sign ...                             (a NaN is +-0x7FC00000, sign of %x)
    %q = arith.truncf %2 : f32 to f8E4M3FN       (rne, the format's own overflow)
    """
    if saturate:
        v = clamp(b, v, -storage.float_max, storage.float_max)
    return b.truncf(nan_sign(b, v, source), storage.type)


def nan_sign(b: BodyBuilder, v: SSAValue, source: SSAValue) -> SSAValue:
    """``v``, or when it is NaN, the quiet NaN 0x7FC00000 with the sign of ``source`` (the
    data element it was computed from): the NaN rule of docs/semantics.md.

    %n = arith.cmpf uno, %v, %v : f32
    %c = math.copysign 0x7FC00000, %source : f32
    %r = arith.select %n, %c, %v : f32

    The sign of a NaN that arithmetic makes is not specified (IEEE 754 6.3): x86 returns
    the first NaN operand, LLVM may commute an `fmul`, an invalid operation gives a
    negative NaN on x86 and a positive one on NVIDIA GPUs. So the fused and the composite
    requantize stored different NaN codes until every NaN result got this one."""
    return b.select(b.is_nan(v), b.copysign(b.f32(float("nan")), source), v)


def canonical_nan(b: BodyBuilder, v: SSAValue) -> SSAValue:
    """``v`` with a NaN replaced by the positive quiet NaN (a scale: it has no sign)."""
    return b.select(b.is_nan(v), b.f32(float("nan")), v)


@dataclass(frozen=True)
class QuantizeParams:
    """The f32 parameters one element is quantized with (None = absent)."""

    scale: SSAValue
    zero_point: SSAValue | None = None
    minval: SSAValue | None = None


def quantize_value(
    b: BodyBuilder,
    x: SSAValue,
    params: QuantizeParams,
    storage: Storage,
    *,
    rounding: str = "nearest_even",
    saturate: bool = True,
    zero_point_order: str = AFTER_ROUNDING,
) -> SSAValue:
    """The quantize of one f32 element into ``storage`` (``quantizeValue`` upstream).

    %v = arith.divf %x, %scale : f32                          (x - minval first)
    ... quantize_int_value ...; %i = arith.fptosi; %q = arith.trunci   (integers)
    ... quantize_float_value ...                                        (floats)
    """
    if storage.is_float:
        return quantize_float_value(b, b.divf(x, params.scale), storage, saturate, x)
    assert isinstance(storage.type, IntegerType)
    q = quantize_integral(b, x, params, storage, rounding, zero_point_order)
    return to_storage_int(b, q, storage.type)


def quantize_integral(
    b: BodyBuilder,
    x: SSAValue,
    params: QuantizeParams,
    storage: Storage,
    rounding: str,
    zero_point_order: str = AFTER_ROUNDING,
) -> SSAValue:
    """Integer quantize up to the clamped integral f32 (shared with fake_quantize)."""
    if params.minval is not None:
        v = b.divf(b.subf(x, params.minval), params.scale)
        return quantize_int_value(b, v, b.f32(storage.qmin), storage, rounding)
    v = b.divf(x, params.scale)
    return quantize_int_value(b, v, params.zero_point, storage, rounding, zero_point_order)


@dataclass(frozen=True)
class DequantizeParams:
    """The f32 parameters one element is dequantized with (None = absent)."""

    scale: SSAValue
    zero_point: SSAValue | None = None
    minval: SSAValue | None = None
    double_quant: SSAValue | None = None


def dequantize_f32(
    b: BodyBuilder,
    qf: SSAValue,
    params: DequantizeParams,
    qmin: int = 0,
    nan_rule: bool = True,
) -> SSAValue:
    """The dequantize of a code already converted (exactly) to f32:

        %d = arith.subf %qf, %zp : f32          (with a zero point)
        %s2 = arith.mulf %s, %dq : f32          (with a double-quant scale: q * (s * dq))
        %x = arith.mulf %d, %s2 : f32
    minval form: ``s * (qf - qmin) + minval`` (two roundings, no fma). A NaN result takes
    the sign of ``qf`` (:func:`nan_sign`), unless ``nan_rule`` is False: for a caller that
    quantizes the value to integer storage right away, where every NaN is the zero point.
    """
    scale = params.scale
    if params.double_quant is not None:
        scale = b.mulf(scale, params.double_quant)
    if params.minval is not None:
        x = b.addf(b.mulf(scale, b.subf(qf, b.f32(qmin))), params.minval)
    elif params.zero_point is not None:
        x = b.mulf(b.subf(qf, params.zero_point), scale)
    else:
        x = b.mulf(qf, scale)
    return nan_sign(b, x, qf) if nan_rule else x


def dequantize_value(
    b: BodyBuilder, q: SSAValue, params: DequantizeParams, qmin: int = 0, nan_rule: bool = True
) -> SSAValue:
    """The dequantize of one storage element to f32 (``dequantizeValue`` upstream)."""
    return dequantize_f32(b, to_f32(b, q), params, qmin, nan_rule)
