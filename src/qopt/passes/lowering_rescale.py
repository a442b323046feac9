"""lower-quant's pattern for ``quant.rescale``: fixed-point requantization in i64 arithmetic.

One parallel generic; per element (docs/semantics.md section 12):

    %a = arith.extsi %x : i32 to i64                  (extui when read as unsigned)
    %v = arith.subi %a, %zi : i64                     (|v| < 2^33; no op for zi = 0)
    %p = arith.muli %v, %m : i64                      (|m| <= 2^31: |p| < 2^63, exact)
    %r = (1 << s) >> 1                                the rounding constant (per mode)
    %t = arith.shrsi (%p + %r), %s : i64              floor((p + r) / 2^s)
    %o = arith.addi %t, %zo : i64
    %q = arith.trunci (clamp(%o, lo, hi)) : i64 to i8

Where ``|p| + r`` is known to stay below 2^63 (from the input type, the zero points and
the multiplier's constants or type: every i32 input whose zero point is 0, every input of
16 bits or less) ``t`` is the direct ``(p + r) >> s``. Otherwise (i32 / ui32 input whose
``x - in_zp`` needs 33 bits) ``floor((p + r) / 2^s)`` is computed as
``(p >> s) + (p mod 2^s >= 2^s - r)``: the same integer (``0 <= r < 2^s``) without forming
``p + r``. The rounding constant ``r`` is ``2^(s-1)`` (``single_round``,
``inexact_round``, ``upward``; 0 for a shift of 0), ``2^(s-1) +- 2^30`` by the sign of
``v`` when ``s > 31`` (``double_round``), ``2^(s-1) - 1`` for a negative product
(``tonearest``). A shift that is an operand is clamped to [0, 62] (never an LLVM shift
past the width); where ``t + zo`` could overflow (a shift of 0 with a product near 2^63)
and the result saturates, ``t`` is first clamped to ``+-2^62``.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, IntegerAttr, IntegerType, i1, i64
from xdsl.ir import SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from qopt.passes.lowering_ir import (
    Emitter,
    GenericBuilder,
    element_of,
    identity_map,
    param_map,
    scalar_map,
    shape_of,
    tensor_type,
)
from qopt.passes.scalar_ir import BodyBuilder
from qopt.qdialect.attrs import GranularityAttr, PerTensorAttr
from qopt.qdialect.rescale import MAX_SHIFT, RescaleOp, value_range, zero_point_value

_T_BOUND = 1 << 62
"""``|floor(p / 2^s)|`` for ``s >= 1``; the clamp applied to it when ``s`` can be 0."""


_I64_LIMIT = 1 << 63


def _rounding_constant(
    b: BodyBuilder, rounding: str, value: SSAValue, product: SSAValue, shift: SSAValue
) -> SSAValue:
    """``r`` of the mode (module docstring) as i64, for the direct form ``(p + r) >> s``."""
    power = b.shli(b.i64(1), shift)
    match rounding:
        case "double_round":
            wide = b.cmpi("sgt", shift, b.i64(31))
            adjust = b.select(wide, b.i64(1 << 30), b.i64(0))
            half = b.shrui(power, b.i64(1))
            non_negative = b.cmpi("sge", value, b.i64(0))
            return b.select(non_negative, b.addi(half, adjust), b.subi(half, adjust))
        case "tonearest":
            # (2^s - 1) >> 1 = 2^(s-1) - 1 for a negative product (0 for s = 0)
            sign = b.shrsi(product, b.i64(63))  # -1 or 0
            return b.shrui(b.addi(power, sign), b.i64(1))
        case _:  # single_round, inexact_round (computed exactly), upward
            return b.shrui(power, b.i64(1))


def _rounded_split(
    b: BodyBuilder, rounding: str, value: SSAValue, product: SSAValue, shift: SSAValue
) -> SSAValue:
    """``floor((p + r) / 2^s)`` as ``(p >> s) + (p mod 2^s >= 2^s - r)``: never forms
    ``p + r`` (for products too close to 2^63)."""
    floor = b.shrsi(product, shift)
    power = b.shli(b.i64(1), shift)
    remainder = b.andi(product, b.subi(power, b.i64(1)))
    threshold = b.subi(power, b.shrui(power, b.i64(1)))  # 2^s - 2^(s-1) (1 for s = 0)
    zero = b.i64(0)
    match rounding:
        case "double_round":
            wide = b.cmpi("sgt", shift, b.i64(31))
            adjust = b.select(wide, b.i64(1 << 30), zero)
            non_negative = b.cmpi("sge", value, zero)
            threshold = b.select(non_negative, b.subi(threshold, adjust), b.addi(threshold, adjust))
        case "tonearest":
            negative = b.cmpi("slt", product, zero)
            threshold = b.select(negative, b.addi(threshold, b.i64(1)), threshold)
        case _:
            pass
    carry = b.extui(b.cmpi("sge", remainder, threshold), i64)
    return b.addi(floor, carry)


def rescale_value(
    b: BodyBuilder,
    value: SSAValue,
    multiplier: SSAValue,
    shift: SSAValue,
    out_zero_point: SSAValue,
    *,
    rounding: str,
    bounds: tuple[int, int] | None,
    product_bound: int,
    out_zero_point_bound: int,
) -> SSAValue:
    """``floor((v * m + r) / 2^s) + zo``, saturated to ``bounds`` (None: wrapping), as i64.

    ``value`` is ``x - in_zp`` as i64; the parameters are i64, ``shift`` in [0, 62];
    ``product_bound`` bounds ``|v * m|`` and ``out_zero_point_bound`` bounds ``|zo|``.
    Where ``p + r`` cannot overflow (``r < 2^61 + 2^31``: every i32 input with a zero
    input zero point, every input of 16 bits or less) the direct ``(p + r) >> s`` is used;
    otherwise the split form. Where ``t + zo`` could overflow (only with a shift of 0 and
    a product near 2^63), ``t`` is clamped to ``+-2^62`` first when saturating.
    """
    product = b.muli(value, multiplier)
    if product_bound + (1 << 61) + (1 << 31) < _I64_LIMIT:
        r = _rounding_constant(b, rounding, value, product, shift)
        rounded = b.shrsi(b.addi(product, r), shift)
    else:
        rounded = _rounded_split(b, rounding, value, product, shift)
    if bounds is None:
        return b.addi(rounded, out_zero_point)
    if product_bound + out_zero_point_bound >= _I64_LIMIT:
        rounded = b.minsi(b.maxsi(rounded, b.i64(-_T_BOUND)), b.i64(_T_BOUND))
    result = b.addi(rounded, out_zero_point)
    return b.minsi(b.maxsi(result, b.i64(bounds[0])), b.i64(bounds[1]))


def _widen(b: BodyBuilder, value: SSAValue, unsigned: bool) -> SSAValue:
    """An integer element as i64: ``arith.extsi`` (``arith.extui`` when unsigned)."""
    t = value.type
    assert isinstance(t, IntegerType)
    if t.width.data == 64:
        return value
    return b.extui(value, i64) if unsigned else b.extsi(value, i64)


def _const_ints(const) -> list[int]:
    if isinstance(const, IntegerAttr):
        return [int(const.value.data)]
    assert isinstance(const, DenseIntOrFPElementsAttr)
    return [int(v) for v in const.get_values()]


def _read_param(
    e: Emitter,
    g: GenericBuilder,
    op: RescaleOp,
    name: str,
    granularity: GranularityAttr,
    shape: Sequence[int],
) -> tuple[SSAValue, list[int] | None]:
    """The multiplier or shift of the element as i64, and its constant values (None when
    it is an operand). A per-axis constant becomes an i64 table read along the axis."""
    operand = getattr(op, name)
    amap = param_map(granularity, shape)
    if not amap.results:
        amap = scalar_map(len(shape))
    if isinstance(operand, SSAValue):
        return _widen(g.body, g.input(operand, amap), unsigned=False), None
    values = _const_ints(op.properties[f"{name}_const"])
    if len(set(values)) == 1 or (values and isinstance(granularity, PerTensorAttr)):
        return g.body.i64(values[0]), values
    pshape = granularity.param_shape(shape)
    if any(n < 0 for n in pshape):  # a dynamic extent: the table's own (checked per call)
        pshape = tuple(op.properties[f"{name}_const"].get_shape() or ())  # type: ignore[union-attr]
    table = e.dense(tensor_type(pshape, i64), values)
    return g.input(table, amap), values


def _zero_point(
    g: GenericBuilder, op: RescaleOp, name: str, unsigned: bool, rank: int
) -> tuple[SSAValue, int | None]:
    operand = getattr(op, name)
    if isinstance(operand, SSAValue):
        return _widen(g.body, g.input(operand, scalar_map(rank)), unsigned), None
    const = op.properties.get(f"{name}_const")
    if const is None:
        return g.body.i64(0), 0
    assert isinstance(const, IntegerAttr)
    storage = element_of(op.input if name == "in_zero_point" else op.result)
    assert isinstance(storage, IntegerType)
    zp = zero_point_value(int(const.value.data), storage.width.data, unsigned)
    return g.body.i64(zp), zp


def _value_bound(op: RescaleOp, in_zero_point: int | None) -> int:
    """``max |x - in_zp|`` over the input's values (and the zero point's, at runtime)."""
    t = element_of(op.input)
    assert isinstance(t, IntegerType)
    lo, hi = value_range(t.width.data, op.is_input_unsigned)
    if in_zero_point is None:
        return hi - lo
    return max(abs(lo - in_zero_point), abs(hi - in_zero_point))


def _multiplier_bound(op: RescaleOp, multipliers: list[int] | None) -> int:
    """``max |m|``: of the constants, else of the multiplier's type."""
    if multipliers is not None:
        return max((abs(m) for m in multipliers), default=0)
    return 1 << (op.multiplier_width - 1)


def lower_rescale(op: RescaleOp, e: Emitter) -> SSAValue:
    """One parallel generic: ``rescale_value`` per element, then the output's integer."""
    shape = shape_of(op.input)
    rank = len(shape)
    ident = identity_map(rank)
    granularity = op.granularity_of()
    g = e.parallel(rank)
    x = g.input(op.input, ident)
    multiplier, multipliers = _read_param(e, g, op, "multiplier", granularity, shape)
    shift, shifts = _read_param(e, g, op, "shift", granularity, shape)
    in_zp, in_zp_value = _zero_point(g, op, "in_zero_point", op.is_input_unsigned, rank)
    out_zp, out_zp_value = _zero_point(g, op, "out_zero_point", op.is_output_unsigned, rank)
    g.output(e.empty(op.result.type, op.input), ident)
    b = g.body
    if shifts is None:  # a runtime shift: clamped into the op's domain
        shift = b.minsi(b.maxsi(shift, b.i64(0)), b.i64(MAX_SHIFT))
    value = _widen(b, x, op.is_input_unsigned)
    if in_zp_value != 0:
        value = b.subi(value, in_zp)
    result = rescale_value(
        b,
        value,
        multiplier,
        shift,
        out_zp,
        rounding=op.rounding_mode,
        bounds=op.output_bounds() if op.saturate_flag else None,
        product_bound=_value_bound(op, in_zp_value) * _multiplier_bound(op, multipliers),
        out_zero_point_bound=1 << 32 if out_zp_value is None else abs(out_zp_value),
    )
    out_type = element_of(op.result)
    assert isinstance(out_type, IntegerType) and out_type != i1
    return e.finish(g, [b.trunci(result, out_type)])[0]


class LowerRescale(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: RescaleOp, rewriter: PatternRewriter) -> None:
        e = Emitter(op.location)
        rewriter.replace(op, e.ops, [lower_rescale(op, e)])
