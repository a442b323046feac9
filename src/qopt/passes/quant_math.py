"""The scalar math of the quant lowering: what one element of every quant op computes.

This module is the numerics of SPEC.md section 3 written as IR. Everything here appends
scalar ``arith`` / ``math`` ops to the body block of a ``linalg.generic`` that the
patterns of ``lower_quant.py`` are building; nothing here knows about tensors, shapes or
granularity. It is layered like MLIR's ``LowerQuantOps.cpp``:

1. helpers: :class:`BodyBuilder` (constants, one method per scalar op, every op at the
   quant op's location), the element-type queries and the exact conversions to and from
   f32 (:func:`to_f32`, :func:`from_f32`);
2. the math: :func:`round_integral` (one function per rounding mode), :func:`clamp`,
   :func:`quantize_value` / :func:`dequantize_value` (and their parts), and the scale
   computations of ``dynamic_quantize`` / ``fake_quantize`` (:func:`dynamic_params`,
   :func:`fake_params`), shared by the fused and composite lowerings so that every
   lowering choice computes the same bits.

All arithmetic is f32 (f16 / bf16 / small float values are ``arith.extf``'d first, which is
exact); ``x / s`` is always ``arith.divf`` (never a multiply by a reciprocal); every
float-to-integer conversion sees a value already clamped to the storage range, with NaN
replaced by an explicit ``cmpf uno`` + ``select`` (``maximumf`` would keep the NaN and
``maxnumf(NaN, lo)`` would silently give ``lo``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TypeVar

from xdsl.dialects import arith, math
from xdsl.dialects.builtin import (
    FloatAttr,
    IntegerAttr,
    IntegerType,
    Signedness,
    f32,
    i8,
    i32,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue

from qopt.qdialect import formats

_Op = TypeVar("_Op", bound=Operation)

# ---------------------------------------------------------------------------------------
# 1. helpers
# ---------------------------------------------------------------------------------------


def f32_bits(value: float) -> int:
    """The IEEE binary32 bit pattern of ``value`` rounded to f32 (for exact comparisons)."""
    return struct.unpack("<I", struct.pack("<f", value))[0]


def round_to_f32(value: float) -> float:
    """``value`` rounded (rne) to the nearest f32, as a Python float."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def is_unsigned(t: Attribute) -> bool:
    return isinstance(t, IntegerType) and t.signedness.data == Signedness.UNSIGNED


@dataclass(frozen=True)
class Storage:
    """A storage type and what quantizing into it means.

    Integer storage has the (possibly narrow) range ``[qmin, qmax]``; float storage has
    its format (largest finite value, NaN / inf behaviour).
    """

    type: Attribute
    qmin: int = 0
    qmax: int = 0

    @staticmethod
    def of(t: Attribute, bounds: tuple[int, int] | None = None) -> Storage:
        if isinstance(t, IntegerType):
            qmin, qmax = bounds if bounds is not None else formats.integer_range(t)
            return Storage(t, qmin, qmax)
        return Storage(t)

    @property
    def is_float(self) -> bool:
        return not isinstance(self.type, IntegerType)

    @property
    def float_max(self) -> float:
        return formats.float_format(self.type).max_value


class BodyBuilder:
    """Appends scalar ops to a ``linalg.generic`` body, each at the quant op's location.

    Scalar constants are emitted once per body (at their first use) and reused:

        %cst = arith.constant 1.270000e+02 : f32
        %c0_i32 = arith.constant 0 : i32
    """

    def __init__(self, block: Block, location: Attribute):
        self.block = block
        self.location = location
        self._constants: dict[tuple[str, int], SSAValue] = {}

    def emit(self, op: _Op) -> _Op:
        op.location = self.location
        self.block.add_op(op)
        return op

    def value(self, op: Operation) -> SSAValue:
        return self.emit(op).results[0]

    # constants ---------------------------------------------------------------------

    def f32(self, value: float) -> SSAValue:
        """``arith.constant <value rounded to f32> : f32`` (keyed by bits: -0.0 != 0.0)."""
        key = ("f32", f32_bits(value))
        if key not in self._constants:
            const = arith.ConstantOp(FloatAttr(round_to_f32(value), f32))
            self._constants[key] = self.value(const)
        return self._constants[key]

    def i32(self, value: int) -> SSAValue:
        """``arith.constant <value> : i32``."""
        key = ("i32", value)
        if key not in self._constants:
            self._constants[key] = self.value(arith.ConstantOp(IntegerAttr(value, i32)))
        return self._constants[key]

    # float arithmetic (f32) --------------------------------------------------------

    def addf(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.AddfOp(a, b))

    def subf(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.SubfOp(a, b))

    def mulf(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.MulfOp(a, b))

    def divf(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.DivfOp(a, b))

    def maximumf(self, a: SSAValue, b: SSAValue) -> SSAValue:
        """IEEE 754-2019 maximum: NaN-propagating (unlike maxnumf)."""
        return self.value(arith.MaximumfOp(a, b))

    def minimumf(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.MinimumfOp(a, b))

    def cmpf(self, predicate: str, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.CmpfOp(a, b, predicate))

    def is_nan(self, a: SSAValue) -> SSAValue:
        """``%nan = arith.cmpf uno, %a, %a : f32``."""
        return self.cmpf("uno", a, a)

    def select(self, cond: SSAValue, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.SelectOp(cond, a, b))

    def unary(self, op_type: type[Operation], a: SSAValue) -> SSAValue:
        """A one-operand ``math`` op (``math.roundeven``, ``math.floor``, ...)."""
        return self.value(op_type(a))  # pyright: ignore[reportCallIssue]

    def copysign(self, a: SSAValue, sign: SSAValue) -> SSAValue:
        return self.value(math.CopySignOp(a, sign))

    # integer arithmetic --------------------------------------------------------------

    def cmpi(self, predicate: str, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.CmpiOp(a, b, predicate))

    def addi(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.AddiOp(a, b))

    def subi(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.SubiOp(a, b))

    def andi(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.AndIOp(a, b))

    def ori(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.OrIOp(a, b))

    def shli(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.ShLIOp(a, b))

    def shrui(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.ShRUIOp(a, b))

    def maxsi(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.MaxSIOp(a, b))

    def minsi(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.MinSIOp(a, b))

    # conversions ---------------------------------------------------------------------

    def bitcast(self, a: SSAValue, t: Attribute) -> SSAValue:
        return self.value(arith.BitcastOp(a, t))

    def extf(self, a: SSAValue, t: Attribute | None = None) -> SSAValue:
        """``arith.extf`` (exact), to f32 unless told otherwise."""
        return self.value(arith.ExtFOp(a, f32 if t is None else t))

    def truncf(self, a: SSAValue, t: Attribute) -> SSAValue:
        return self.value(arith.TruncFOp(a, t))

    def trunci(self, a: SSAValue, t: IntegerType) -> SSAValue:
        return self.value(arith.TruncIOp(a, t))

    def extui(self, a: SSAValue, t: IntegerType) -> SSAValue:
        return self.value(arith.ExtUIOp(a, t))

    def extsi(self, a: SSAValue, t: IntegerType) -> SSAValue:
        return self.value(arith.ExtSIOp(a, t))


def to_f32(b: BodyBuilder, value: SSAValue) -> SSAValue:
    """Exact conversion of one element to f32:

    %f = arith.extf %h : f16 to f32           (f16, bf16, f8E4M3FN, f4E2M1FN, f8E8M0FNU, ...)
    %f = arith.sitofp %q : i8 to f32          (signless = signed storage, any width)
    %f = arith.uitofp %q : ui4 to f32
    """
    t = value.type
    if t == f32:
        return value
    if isinstance(t, IntegerType):
        if is_unsigned(t):
            return b.value(arith.UIToFPOp(value, f32))
        return b.value(arith.SIToFPOp(value, f32))
    return b.extf(value)


def from_f32(b: BodyBuilder, value: SSAValue, t: Attribute) -> SSAValue:
    """An f32 result in an expressed type: ``arith.truncf %v : f32 to f16`` (rne) or as is."""
    return value if t == f32 else b.truncf(value, t)


def to_storage_int(b: BodyBuilder, clamped: SSAValue, t: IntegerType) -> SSAValue:
    """An integral f32 already clamped to the storage range, as the storage integer:

    %i = arith.fptosi %clamped : f32 to i32
    %q = arith.trunci %i : i32 to i4
    """
    i = b.value(arith.FPToSIOp(clamped, i32))
    return i if t.width.data == 32 and not is_unsigned(t) else b.trunci(i, t)


def int_of_storage(b: BodyBuilder, value: SSAValue) -> SSAValue:
    """A storage element's code as i32 (zero-extended; bit-cast first for f4/f8):

    %bits = arith.bitcast %c : f4E2M1FN to i4
    %w = arith.extui %bits : i4 to i32
    """
    t = value.type
    if not isinstance(t, IntegerType):
        value = b.bitcast(value, IntegerType(formats.bit_width(t)))
        t = value.type
    assert isinstance(t, IntegerType)
    if t.width.data == 32:
        return value
    return b.extui(value, i32)


def storage_of_int(b: BodyBuilder, word: SSAValue, t: Attribute) -> SSAValue:
    """The low bits of an i32 as a storage element (the inverse of :func:`int_of_storage`):

    %c = arith.trunci %w : i32 to i4
    %q = arith.bitcast %c : i4 to f4E2M1FN        (float storage only)
    """
    width = formats.bit_width(t)
    if isinstance(t, IntegerType):
        return b.trunci(word, t)
    return b.bitcast(b.trunci(word, IntegerType(width)), t)


# ---------------------------------------------------------------------------------------
# 2. the math
# ---------------------------------------------------------------------------------------


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
    match mode:
        case "nearest_even":
            return b.unary(math.RoundEvenOp, v)
        case "nearest_away":
            return b.unary(math.RoundOp, v)
        case "toward_zero":
            return b.unary(math.TruncOp, v)
        case "half_up":
            floor = b.unary(math.FloorOp, v)
            up = b.cmpf("oge", b.subf(v, floor), b.f32(0.5))
            return b.select(up, b.addf(floor, b.f32(1.0)), floor)
    raise ValueError(f"unknown rounding mode '{mode}'")


def clamp(b: BodyBuilder, v: SSAValue, lo: float, hi: float) -> SSAValue:
    """``minimumf(maximumf(v, lo), hi)``: NaN stays NaN, +-inf become the bounds.

    %0 = arith.maximumf %v, %lo : f32
    %1 = arith.minimumf %0, %hi : f32
    """
    return b.minimumf(b.maximumf(v, b.f32(lo)), b.f32(hi))


def quantize_int_value(
    b: BodyBuilder, v: SSAValue, zp: SSAValue | None, storage: Storage, rounding: str
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
    """
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
) -> SSAValue:
    """SPEC quantize of one f32 element into ``storage`` (``quantizeValue`` upstream).

    %v = arith.divf %x, %scale : f32                          (x - minval first)
    ... quantize_int_value ...; %i = arith.fptosi; %q = arith.trunci   (integers)
    ... quantize_float_value ...                                        (floats)
    """
    if storage.is_float:
        return quantize_float_value(b, b.divf(x, params.scale), storage, saturate, x)
    assert isinstance(storage.type, IntegerType)
    return to_storage_int(b, quantize_integral(b, x, params, storage, rounding), storage.type)


def quantize_integral(
    b: BodyBuilder, x: SSAValue, params: QuantizeParams, storage: Storage, rounding: str
) -> SSAValue:
    """Integer quantize up to the clamped integral f32 (shared with fake_quantize)."""
    if params.minval is not None:
        v = b.divf(b.subf(x, params.minval), params.scale)
        return quantize_int_value(b, v, b.f32(storage.qmin), storage, rounding)
    return quantize_int_value(b, b.divf(x, params.scale), params.zero_point, storage, rounding)


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
    """SPEC dequantize of a code already converted (exactly) to f32:

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
    """SPEC dequantize of one storage element to f32 (``dequantizeValue`` upstream)."""
    return dequantize_f32(b, to_f32(b, q), params, qmin, nan_rule)


# --- dynamic statistics and scales ------------------------------------------------------

ABS_MASK = 0x7FFFFFFF
F32_INF_BITS = 0x7F800000
MANTISSA_MASK = 0x007FFFFF


def amax_step(b: BodyBuilder, x: SSAValue, acc: SSAValue) -> SSAValue:
    """One step of the block amax, on the bit pattern of |x| as i32 (exact, vectorizes,
    and NaN-propagating: every NaN pattern is above +inf's 0x7f800000):

        %bits = arith.bitcast %x : f32 to i32
        %abs = arith.andi %bits, %c2147483647_i32 : i32
        %m = arith.maxsi %acc, %abs : i32
    """
    return b.maxsi(acc, b.andi(b.bitcast(x, i32), b.i32(ABS_MASK)))


@dataclass(frozen=True)
class Stats:
    """Block statistics as read inside a body: amax bits (i32) or clamped xmin / xmax."""

    amax_bits: SSAValue | None = None
    xmin: SSAValue | None = None
    xmax: SSAValue | None = None

    def amax(self, b: BodyBuilder) -> SSAValue:
        assert self.amax_bits is not None
        return b.bitcast(self.amax_bits, f32)


@dataclass(frozen=True)
class DynamicParams:
    """What a block's statistics give: stored results, and the f32 values data uses."""

    scale: SSAValue
    """The scale result element, in the scale format."""
    divisor: SSAValue
    """The f32 value ``x`` is divided by (the stored scale, exactly, times dq)."""
    zero_point: SSAValue | None = None
    """The zero point as an integral f32 (asymmetric integer only)."""
    zero_point_stored: SSAValue | None = None
    """The zero point result element, in the storage type."""


@dataclass(frozen=True)
class DynamicForm:
    """The constant facts of one dynamic_quantize op."""

    storage: Storage
    scale_type: Attribute
    symmetric: bool = True
    eps: float | None = None
    scale_rounding: str = "floor"


def store_expressed_scale(b: BodyBuilder, s: SSAValue, scale_type: Attribute) -> SSAValue:
    """Round an f32 scale to its format and replace 0 by 1.0; returns it back in f32.

    %n = arith.cmpf uno, %s, %s : f32
    %s1 = arith.select %n, 0x7FC00000, %s : f32  (a NaN scale is the positive NaN)
    %h = arith.truncf %s1 : f32 to f16
    %r = arith.extf %h : f16 to f32
    %zero = arith.cmpf oeq, %r, 0.0 : f32
    %sf = arith.select %zero, 1.0, %r : f32      (a block whose scale is 0 stores 1.0)
    """
    rounded = to_f32(b, from_f32(b, canonical_nan(b, s), scale_type))
    return b.select(b.cmpf("oeq", rounded, b.f32(0.0)), b.f32(1.0), rounded)


def mx_scale_code(b: BodyBuilder, amax_bits: SSAValue, form: DynamicForm) -> SSAValue:
    """The e8m0 code (i32, 0..255) of an MX block from the bits of its amax, exactly.

    With ``amax = 1.M * 2^(E-127)`` and the format's ``max = 1.Mf * 2^emax``:
    floor: ``e = (E - 127) - emax``; rceil: ``e = (E - 127) - emax + (M > Mf)`` (the
    smallest e with ``amax / 2^e <= max``). Zero and subnormal amax give ``e < -127``,
    +inf gives 127 (clamped), NaN gives code 255. Then ``e`` is clamped to [-127, 127]:

        %E = arith.shrui %bits, %c23_i32 : i32
        %e = arith.subi %E, %c135_i32 : i32                 (127 + emax, e.g. 8 for e4m3)
        %M = arith.andi %bits, %c8388607_i32 : i32           (rceil only)
        %gt = arith.cmpi sgt, %M, %c6291456_i32 : i32
        %one = arith.extui %gt : i1 to i32
        %e1 = arith.addi %e, %one : i32
        %inf = arith.cmpi eq, %bits, %c2139095040_i32 : i32
        %e2 = arith.select %inf, %c127_i32, %e1 : i32
        %lo = arith.maxsi %e2, %c-127_i32 : i32
        %ec = arith.minsi %lo, %c127_i32 : i32
        %code = arith.addi %ec, %c127_i32 : i32
        %nan = arith.cmpi sgt, %bits, %c2139095040_i32 : i32
        %code1 = arith.select %nan, %c255_i32, %code : i32
    """
    fmax_bits = f32_bits(form.storage.float_max)
    emax = (fmax_bits >> 23) - 127
    e = b.subi(b.shrui(amax_bits, b.i32(23)), b.i32(127 + emax))
    if form.scale_rounding == "rceil":
        mantissa = b.andi(amax_bits, b.i32(MANTISSA_MASK))
        above = b.cmpi("sgt", mantissa, b.i32(fmax_bits & MANTISSA_MASK))
        e = b.addi(e, b.extui(above, i32))
    e = b.select(b.cmpi("eq", amax_bits, b.i32(F32_INF_BITS)), b.i32(127), e)
    e = b.minsi(b.maxsi(e, b.i32(-127)), b.i32(127))
    code = b.addi(e, b.i32(127))
    return b.select(b.cmpi("sgt", amax_bits, b.i32(F32_INF_BITS)), b.i32(255), code)


def dynamic_params(
    b: BodyBuilder, stats: Stats, form: DynamicForm, double_quant: SSAValue | None
) -> DynamicParams:
    """The scale (and zero point) of one block of ``dynamic_quantize`` (SPEC section 3).

    * integer / float data with an f32/f16/bf16 scale: ``s = amax / qmax`` (float data:
      ``amax / max``; asymmetric: ``(max(xmax,0) - min(xmin,0)) / (qmax - qmin)``),
      ``max(s, eps)``, rounded to the scale format, 0 stored as 1.0; the asymmetric zero
      point is ``roundeven(clamp(qmin - xmin / s, qmin, qmax))`` with NaN as 0 (ONNX
      DynamicQuantizeLinear, with the stored scale);
    * f8E4M3FN scale (NVFP4): ``sq = e4m3_rne(clamp((amax / max) / dq, 0, 448))``, data
      divided by the rounded ``f32(sq) * dq``;
    * f8E8M0FNU scale (MX): :func:`mx_scale_code`, data divided by ``2^e = extf(code)``.

    NaN in a block propagates into its scale (like ``torch.amax``); no division by zero:
    a zero divisor only happens for NVFP4, where the data generic selects a safe one.
    """
    storage, scale_name = form.storage, formats.type_name(form.scale_type)
    if scale_name == "f8E8M0FNU":
        assert stats.amax_bits is not None
        code = mx_scale_code(b, stats.amax_bits, form)
        scale = b.bitcast(b.trunci(code, i8), form.scale_type)
        return DynamicParams(scale, b.extf(scale))
    if not form.symmetric:
        assert stats.xmin is not None and stats.xmax is not None
        span = b.subf(stats.xmax, stats.xmin)
        s = b.divf(span, b.f32(storage.qmax - storage.qmin))
    else:
        bound = storage.float_max if storage.is_float else storage.qmax
        s = b.divf(stats.amax(b), b.f32(bound))
    if form.eps is not None:
        s = b.maximumf(s, b.f32(form.eps))
    if scale_name == "f8E4M3FN":
        if double_quant is not None:
            s = b.divf(s, double_quant)
        scale = b.truncf(
            canonical_nan(b, clamp(b, s, 0.0, formats.float_format(form.scale_type).max_value)),
            form.scale_type,
        )
        divisor = b.extf(scale)
        if double_quant is not None:
            divisor = b.mulf(divisor, double_quant)
        return DynamicParams(scale, divisor)
    sf = store_expressed_scale(b, s, form.scale_type)
    scale = from_f32(b, sf, form.scale_type)
    if form.symmetric:
        return DynamicParams(scale, sf)
    assert stats.xmin is not None and isinstance(storage.type, IntegerType)
    z = b.subf(b.f32(storage.qmin), b.divf(stats.xmin, sf))
    z = b.select(b.is_nan(z), b.f32(0.0), z)
    # rne then clamp (the same as clamp then rne for integer bounds): the clamp stays
    # right before the conversion
    zp = clamp(b, b.unary(math.RoundEvenOp, z), storage.qmin, storage.qmax)
    return DynamicParams(scale, sf, zp, to_storage_int(b, zp, storage.type))


def dynamic_data(b: BodyBuilder, x: SSAValue, params: DynamicParams, form: DynamicForm) -> SSAValue:
    """One data element of ``dynamic_quantize`` from its block's parameters.

    Float data: ``cast_rne(clamp(x / divisor, -max, max))``; an NVFP4 block whose divisor
    is 0 gets ``copysign(0, x)`` without dividing:

        %zero = arith.cmpf oeq, %div, 0.0 : f32
        %safe = arith.select %zero, 1.0, %div : f32
        %v = arith.divf %x, %safe : f32
        %z = math.copysign 0.0, %x : f32
        %v1 = arith.select %zero, %z, %v : f32
    Integer data: ``clamp(rne(x / s) + zp, qmin, qmax)``.
    """
    storage = form.storage
    if storage.is_float:
        if formats.type_name(form.scale_type) == "f8E4M3FN":
            zero = b.cmpf("oeq", params.divisor, b.f32(0.0))
            safe = b.select(zero, b.f32(1.0), params.divisor)
            v = b.select(zero, b.copysign(b.f32(0.0), x), b.divf(x, safe))
        else:
            v = b.divf(x, params.divisor)
        return quantize_float_value(b, v, storage, saturate=True, source=x)
    quant = QuantizeParams(params.divisor, params.zero_point)
    return quantize_value(b, x, quant, storage)


# --- fake quantize ---------------------------------------------------------------------


@dataclass(frozen=True)
class FakeForm:
    """The constant facts of one fake_quantize op."""

    storage: Storage
    scale_type: Attribute = f32
    symmetric: bool = True
    eps: float | None = None
    domain: str = "int"
    expressed: Attribute = f32
    rounding: str = "nearest_even"

    @property
    def mid(self) -> float:
        """torchao's mid point ``(qmax + qmin + 1) / 2``."""
        return (self.storage.qmax + self.storage.qmin + 1) / 2

    @property
    def default_eps(self) -> float:
        """torchao: ``eps`` defaults to ``finfo(x.dtype).eps``."""
        return {"f32": 2.0**-23, "f16": 2.0**-10, "bf16": 2.0**-7}[
            formats.type_name(self.expressed)
        ]


@dataclass(frozen=True)
class FakeParams:
    """The f32 scale and zero point fake quantization uses for one block."""

    scale: SSAValue
    zero_point: SSAValue | None = None


def fake_params(b: BodyBuilder, stats: Stats, form: FakeForm) -> FakeParams:
    """Dynamic fake-quantize parameters of one block (torchao ``choose_qparams_affine``).

    Integer storage (``min_neg = min(xmin, 0)``, ``max_pos = max(xmax, 0)``; the raw
    xmin / xmax in the ``float`` domain), ``eps`` defaulting to the input type's epsilon:
    * symmetric: ``s = max(amax / ((qmax - qmin) / 2), eps)``, zp = ``int(mid)`` (``int``
      domain) or none;
    * asymmetric ``int``: ``s = max((max_pos - min_neg) / (qmax - qmin), eps)``,
      ``zp = clamp(qmin - rne(min_neg / s), qmin, qmax)`` (NaN as 0; unrounded s);
    * asymmetric ``float``: ``s`` likewise from the raw xmin / xmax, ``zp = xmin + s * mid``
      rounded to the input type.
    Then s is rounded to ``scale_type`` (0 becomes 1.0). Float storage: ``s = amax / max``
    (``max(s, eps)`` only with an explicit eps), rounded, 0 becomes 1.0.
    """
    storage = form.storage
    if storage.is_float:
        s = b.divf(stats.amax(b), b.f32(storage.float_max))
        if form.eps is not None:
            s = b.maximumf(s, b.f32(form.eps))
        return FakeParams(store_expressed_scale(b, s, form.scale_type))
    eps = b.f32(form.default_eps if form.eps is None else form.eps)
    zp: SSAValue | None = None
    if form.symmetric:
        half_range = (storage.qmax - storage.qmin) / 2
        s = b.maximumf(b.divf(stats.amax(b), b.f32(half_range)), eps)
        if form.domain == "int":
            zp = b.f32(float(int(form.mid)))
    else:
        assert stats.xmin is not None and stats.xmax is not None
        span = b.subf(stats.xmax, stats.xmin)
        s = b.maximumf(b.divf(span, b.f32(storage.qmax - storage.qmin)), eps)
        if form.domain == "int":
            r = b.unary(math.RoundEvenOp, b.divf(stats.xmin, s))
            r = b.select(b.is_nan(r), b.f32(0.0), r)
            zp = clamp(b, b.subf(b.f32(storage.qmin), r), storage.qmin, storage.qmax)
        else:
            zp = b.addf(stats.xmin, b.mulf(s, b.f32(form.mid)))
            zp = to_f32(b, from_f32(b, zp, form.expressed))
    return FakeParams(store_expressed_scale(b, s, form.scale_type), zp)


def fake_value(b: BodyBuilder, x: SSAValue, params: FakeParams, form: FakeForm) -> SSAValue:
    """One element of ``dequantize(quantize(x))`` in f32.

    * float storage: ``f32(cast_rne(clamp(x / s, -max, max))) * s``;
    * ``int`` / ``none`` domain: ``(clamp(round(x / s) + zp, qmin, qmax) - zp) * s``
      (the clamped integral f32 is the code exactly: no conversion to integer needed);
    * ``float`` domain (torchao tinygemm): ``min_val = zp - s * mid``,
      ``q = clamp(round((x - min_val) / s), qmin, qmax)`` (NaN x as +0, NaN q as 0),
      ``(q - mid) * s + zp``.
    """
    storage, s, zp = form.storage, params.scale, params.zero_point
    if storage.is_float:
        q = quantize_float_value(b, b.divf(x, s), storage, saturate=True, source=x)
        return dequantize_f32(b, b.extf(q), DequantizeParams(s))
    if form.domain == "float":
        zero_point = zp if zp is not None else b.f32(0.0)
        mid = b.f32(form.mid)
        min_val = b.subf(zero_point, b.mulf(s, mid))
        x0 = b.select(b.is_nan(x), b.f32(0.0), x)
        r = round_integral(b, b.divf(b.subf(x0, min_val), s), form.rounding)
        r = b.select(b.is_nan(r), b.f32(0.0), r)
        q = clamp(b, r, storage.qmin, storage.qmax)
        return nan_sign(b, b.addf(b.mulf(b.subf(q, mid), s), zero_point), q)
    # zp 0 is added and subtracted explicitly: the code of -0.3 is +0, not -0.0
    zero_point = zp if zp is not None else b.f32(0.0)
    t = quantize_int_value(b, b.divf(x, s), zero_point, storage, form.rounding)
    return dequantize_f32(b, t, DequantizeParams(s, zero_point))


__all__ = [
    "BodyBuilder",
    "DequantizeParams",
    "DynamicForm",
    "DynamicParams",
    "FakeForm",
    "FakeParams",
    "QuantizeParams",
    "Stats",
    "Storage",
    "amax_step",
    "clamp",
    "dequantize_f32",
    "dequantize_value",
    "dynamic_data",
    "dynamic_params",
    "fake_params",
    "fake_value",
    "from_f32",
    "int_of_storage",
    "mx_scale_code",
    "quantize_float_value",
    "nan_sign",
    "quantize_int_value",
    "quantize_value",
    "round_integral",
    "storage_of_int",
    "to_f32",
    "to_storage_int",
]
