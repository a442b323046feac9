"""Scalar IR for the body of a ``linalg.generic``: the builder and the exact conversions.

:class:`BodyBuilder` appends scalar ``arith`` / ``math`` ops (constants once per body, every
op at the quant op's location); :func:`to_f32` / :func:`from_f32` and the storage-integer
conversions move one element exactly between its type and f32 / i32. Nothing here knows
what quantization means: that is ``quant_math.py`` (static) and ``dynamic_math.py``
(block statistics, dynamic and fake quantization), built on these helpers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TypeVar

from xdsl.dialects import arith, math
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, IntegerType, Signedness, f32, i32, i64
from xdsl.ir import Attribute, Block, Operation, SSAValue

from qopt.qdialect import formats

_Op = TypeVar("_Op", bound=Operation)


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

    def i64(self, value: int) -> SSAValue:
        """``arith.constant <value> : i64``."""
        key = ("i64", value)
        if key not in self._constants:
            self._constants[key] = self.value(arith.ConstantOp(IntegerAttr(value, i64)))
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

    def shrsi(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.ShRSIOp(a, b))

    def muli(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.value(arith.MuliOp(a, b))

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
