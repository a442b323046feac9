"""Evaluate a body of lowered scalar ``arith`` / ``math`` ops over numpy arrays.

fold-quant proves a fold by evaluating the op on every input code at compile time. It
does not carry a second copy of the numerics: it builds the body the lowering builds
(the same ``quant_math`` functions on a :class:`~qopt.passes.scalar_ir.BodyBuilder`) and
runs it here, element-wise on whole arrays (one element per storage code and parameter
cell, broadcast like numpy).

Values are numpy arrays: a float type as its numpy / ml_dtypes dtype (f32 as float32, so
every operation rounds like the compiled code), an integer type as int64 holding the value
as that type reads it (signless and signed: two's complement, unsigned: zero-extended),
``i1`` as bool. Each op has one handler in :data:`HANDLERS`; an op without one raises
``NotImplementedError``. Semantics are LLVM's: ``maximumf`` / ``minimumf`` propagate NaN
and order -0.0 below +0.0, ``math.round`` rounds half away from zero, ``truncf`` rounds to
nearest even (with the format's own overflow), and ``fptosi`` of a value out of range
(poison in LLVM) does not occur in a lowered body, whose conversions all see clamped values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.dialects import arith, math
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, IntegerType, Signedness
from xdsl.dialects.linalg.ops import YieldOp
from xdsl.ir import Attribute, Block, Operation, SSAValue

from qopt.qdialect import formats

Env = dict[SSAValue, np.ndarray]


def evaluate_block(block: Block, args: Sequence[Any]) -> list[np.ndarray]:
    """Run ``block`` with ``args`` bound to its arguments; the values its terminator
    (``linalg.yield``) yields."""
    if len(args) != len(block.args):
        raise ValueError(f"the block takes {len(block.args)} arguments, got {len(args)}")
    env: Env = {arg: _as_value(value, arg.type) for arg, value in zip(block.args, args)}
    with np.errstate(all="ignore"):
        for op in block.ops:
            if isinstance(op, YieldOp):
                return [env[v] for v in op.operands]
            handler = HANDLERS.get(type(op))
            if handler is None:
                raise NotImplementedError(f"evaluate_lowered cannot evaluate {op.name}")
            env[op.results[0]] = handler(op, [env[v] for v in op.operands])
    raise ValueError("the block has no linalg.yield")


# ---------------------------------------------------------------------------------------
# value representation
# ---------------------------------------------------------------------------------------


def _width(t: Attribute) -> int:
    assert isinstance(t, IntegerType), t
    return t.width.data


def _is_unsigned(t: Attribute) -> bool:
    return isinstance(t, IntegerType) and t.signedness.data == Signedness.UNSIGNED


def _as_type(bits: np.ndarray, t: Attribute) -> np.ndarray:
    """Integer ``bits`` (any int array) as the value type ``t`` reads from its low bits."""
    width = _width(t)
    if width == 1:
        return (np.asarray(bits) & 1).astype(bool)
    v = np.asarray(bits).astype(np.int64, copy=False)
    lo, hi = (
        (0, (1 << width) - 1) if _is_unsigned(t) else (-(1 << (width - 1)), (1 << (width - 1)) - 1)
    )
    if v.size == 0 or (v.min() >= lo and v.max() <= hi):
        return v  # already a value of t (the common case: clamped codes)
    low = v & ((1 << width) - 1)
    if _is_unsigned(t):
        return low
    return np.where(low >= 1 << (width - 1), low - (1 << width), low)


def _unsigned(v: np.ndarray, t: Attribute) -> np.ndarray:
    """The bits of an integer value as an unsigned number."""
    return np.asarray(v).astype(np.int64) & ((1 << _width(t)) - 1)


def _signed(v: np.ndarray, t: Attribute) -> np.ndarray:
    """The bits of an integer value read as two's complement."""
    return _as_type(v, IntegerType(_width(t)))


def _float_dtype(t: Attribute) -> np.dtype:
    return formats.numpy_dtype(t)


def _as_value(value: Any, t: Attribute) -> np.ndarray:
    """An argument in the representation of its type."""
    if isinstance(t, IntegerType):
        return _as_type(np.asarray(value).astype(np.int64), t)
    return np.asarray(value).astype(_float_dtype(t))


def _float_bits(v: np.ndarray) -> np.ndarray:
    """The bit pattern of a float array as int64 (sub-byte formats: their low bits)."""
    unsigned = {1: np.uint8, 2: np.uint16, 4: np.uint32}[v.dtype.itemsize]
    return v.view(unsigned).astype(np.int64)


def _from_bits(bits: np.ndarray, t: Attribute) -> np.ndarray:
    dtype = _float_dtype(t)
    unsigned = {1: np.uint8, 2: np.uint16, 4: np.uint32}[dtype.itemsize]
    return np.ascontiguousarray(np.asarray(bits).astype(unsigned)).view(dtype)


# ---------------------------------------------------------------------------------------
# handlers: one per op
# ---------------------------------------------------------------------------------------


def _constant(op: arith.ConstantOp, _: list[np.ndarray]) -> np.ndarray:
    value, t = op.value, op.result.type
    if isinstance(value, FloatAttr):
        return np.array(value.value.data, dtype=_float_dtype(t))
    if isinstance(value, IntegerAttr):
        return _as_type(np.array(value.value.data, dtype=np.int64), t)
    raise NotImplementedError(f"evaluate_lowered cannot evaluate the constant {value}")


def _signed_zeros(a: np.ndarray, b: np.ndarray, r: np.ndarray, pick_negative: bool) -> np.ndarray:
    """``r`` where ``a`` and ``b`` are both zero: the negative one (minimum) or the
    positive one (maximum) of -0.0 and +0.0, as IEEE 754-2019 orders them."""
    zeros = (a == 0) & (b == 0)
    if not zeros.any():
        return r
    negative = np.signbit(a) if pick_negative else ~np.signbit(a)
    return np.where(zeros, np.where(negative, a, b), r)


def _maximumf(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IEEE 754-2019 maximum: NaN if either is NaN (numpy's too); +0.0 above -0.0."""
    return _signed_zeros(a, b, np.maximum(a, b), pick_negative=False)


def _minimumf(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IEEE 754-2019 minimum: NaN if either is NaN (numpy's too); -0.0 below +0.0."""
    return _signed_zeros(a, b, np.minimum(a, b), pick_negative=True)


def _round_away(v: np.ndarray) -> np.ndarray:
    """``math.round``: half away from zero, exactly (``v - trunc(v)`` is exact)."""
    t = np.trunc(v)
    away = np.abs(v - t) >= v.dtype.type(0.5)
    return np.where(away, t + np.copysign(v.dtype.type(1.0), v), t).astype(v.dtype)


_CMPF: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "false": lambda a, b: np.zeros(np.broadcast(a, b).shape, bool),
    "oeq": np.equal,
    "ogt": np.greater,
    "oge": np.greater_equal,
    "olt": np.less,
    "ole": np.less_equal,
    "one": lambda a, b: (a != b) & ~np.isnan(a) & ~np.isnan(b),
    "ord": lambda a, b: ~np.isnan(a) & ~np.isnan(b),
    "ueq": lambda a, b: (a == b) | np.isnan(a) | np.isnan(b),
    "ugt": lambda a, b: ~(a <= b),
    "uge": lambda a, b: ~(a < b),
    "ult": lambda a, b: ~(a >= b),
    "ule": lambda a, b: ~(a > b),
    "une": np.not_equal,
    "uno": lambda a, b: np.isnan(a) | np.isnan(b),
    "true": lambda a, b: np.ones(np.broadcast(a, b).shape, bool),
}

_CMPI: dict[str, tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], bool]] = {
    "eq": (np.equal, False),
    "ne": (np.not_equal, False),
    "slt": (np.less, False),
    "sle": (np.less_equal, False),
    "sgt": (np.greater, False),
    "sge": (np.greater_equal, False),
    "ult": (np.less, True),
    "ule": (np.less_equal, True),
    "ugt": (np.greater, True),
    "uge": (np.greater_equal, True),
}


def _cmpf(op: arith.CmpfOp, args: list[np.ndarray]) -> np.ndarray:
    predicate = arith.CMPF_COMPARISON_OPERATIONS[op.predicate.value.data]
    return np.asarray(_CMPF[predicate](*args))


def _cmpi(op: arith.CmpiOp, args: list[np.ndarray]) -> np.ndarray:
    compare, unsigned = _CMPI[arith.CMPI_COMPARISON_OPERATIONS[op.predicate.value.data]]
    t = op.operands[0].type
    read = _unsigned if unsigned else _signed
    return np.asarray(compare(read(args[0], t), read(args[1], t)))


def _integer(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    """A two-operand integer op on the operands' bits, wrapped to the result type."""

    def handler(op: Operation, args: list[np.ndarray]) -> np.ndarray:
        t = op.results[0].type
        return _as_type(fn(_unsigned(args[0], t), _unsigned(args[1], t)), t)

    return handler


def _signed_pick(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def handler(op: Operation, args: list[np.ndarray]) -> np.ndarray:
        t = op.results[0].type
        return _as_type(fn(_signed(args[0], t), _signed(args[1], t)), t)

    return handler


def _float(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """A float op computed in the operands' dtype (f32: IEEE single, rounding once)."""

    def handler(op: Operation, args: list[np.ndarray]) -> np.ndarray:
        return np.asarray(fn(*args)).astype(_float_dtype(op.results[0].type), copy=False)

    return handler


def _select(op: arith.SelectOp, args: list[np.ndarray]) -> np.ndarray:
    cond, a, b = args
    return np.where(cond, a, b).astype(a.dtype, copy=False)


def _bitcast(op: arith.BitcastOp, args: list[np.ndarray]) -> np.ndarray:
    source, t = op.input.type, op.result.type
    bits = _unsigned(args[0], source) if isinstance(source, IntegerType) else _float_bits(args[0])
    return _as_type(bits, t) if isinstance(t, IntegerType) else _from_bits(bits, t)


def _convert(op: Operation, args: list[np.ndarray]) -> np.ndarray:
    """``extf`` / ``truncf``: to the result's dtype (exact, resp. round to nearest even)."""
    return args[0].astype(_float_dtype(op.results[0].type))


def _trunci(op: arith.TruncIOp, args: list[np.ndarray]) -> np.ndarray:
    return _as_type(args[0], op.result.type)


def _extui(op: arith.ExtUIOp, args: list[np.ndarray]) -> np.ndarray:
    return _as_type(_unsigned(args[0], op.input.type), op.result.type)


def _extsi(op: arith.ExtSIOp, args: list[np.ndarray]) -> np.ndarray:
    return _as_type(_signed(args[0], op.input.type), op.result.type)


def _fptosi(op: arith.FPToSIOp, args: list[np.ndarray]) -> np.ndarray:
    v = np.trunc(args[0])
    if not np.isfinite(v).all():  # poison in LLVM; a lowered body never converts these
        v = np.where(np.isfinite(v), v, 0)
    return _as_type(v.astype(np.int64), op.result.type)


def _sitofp(op: arith.SIToFPOp, args: list[np.ndarray]) -> np.ndarray:
    return _signed(args[0], op.input.type).astype(_float_dtype(op.result.type))


def _uitofp(op: arith.UIToFPOp, args: list[np.ndarray]) -> np.ndarray:
    return _unsigned(args[0], op.input.type).astype(_float_dtype(op.result.type))


HANDLERS: dict[type[Operation], Callable[[Any, list[np.ndarray]], np.ndarray]] = {
    arith.ConstantOp: _constant,
    arith.AddfOp: _float(np.add),
    arith.SubfOp: _float(np.subtract),
    arith.MulfOp: _float(np.multiply),
    arith.DivfOp: _float(np.divide),
    arith.MaximumfOp: _float(_maximumf),
    arith.MinimumfOp: _float(_minimumf),
    arith.CmpfOp: _cmpf,
    arith.SelectOp: _select,
    math.RoundEvenOp: _float(np.rint),
    math.RoundOp: _float(_round_away),
    math.TruncOp: _float(np.trunc),
    math.FloorOp: _float(np.floor),
    math.CopySignOp: _float(np.copysign),
    arith.CmpiOp: _cmpi,
    arith.AddiOp: _integer(np.add),
    arith.SubiOp: _integer(np.subtract),
    arith.AndIOp: _integer(np.bitwise_and),
    arith.OrIOp: _integer(np.bitwise_or),
    arith.ShLIOp: _integer(np.left_shift),
    arith.ShRUIOp: _integer(np.right_shift),
    arith.MaxSIOp: _signed_pick(np.maximum),
    arith.MinSIOp: _signed_pick(np.minimum),
    arith.BitcastOp: _bitcast,
    arith.ExtFOp: _convert,
    arith.TruncFOp: _convert,
    arith.TruncIOp: _trunci,
    arith.ExtUIOp: _extui,
    arith.ExtSIOp: _extsi,
    arith.FPToSIOp: _fptosi,
    arith.SIToFPOp: _sitofp,
    arith.UIToFPOp: _uitofp,
}
