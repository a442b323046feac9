"""fold-quant's folds of ``quant.rescale`` (docs/semantics.md section 12): exact ones only.

A rescale computes on exact integers, ``q = clamp(floor((v * m + r) / 2^s) + zo)`` with
``v = x - zi`` and a rounding constant ``0 <= r < 2^s`` (every mode; the lowering's
``threshold`` is at least 1), so two closed forms settle its folds without enumeration,
for any input width (i32 accumulators included):

* **identity**: ``m == 2^s`` in every channel: ``p = v * 2^s`` has no remainder, so
  ``t = v`` and ``o = x - zi + zo``; with ``zi == zo`` (read alike), the same type and
  signedness on both ends and ``x`` inside the output range, ``q = x``
  (:class:`RemoveIdentityRescale`);
* **an exact inner step**: ``m1 == k * 2^s1`` for an integer ``k >= 0`` in every channel
  makes the inner rescale ``o1 = v * k + zo1`` exactly; when that never leaves the inner
  output range (checked at both ends of the input range) and the outer step reads ``o1``
  with ``zi2 == zo1`` (same signedness), the outer product is ``v * (k * m2)``, the very
  product of one rescale with multiplier ``k * m2``, shift ``s2``, the inner input and the
  outer output: the same rounding, zero point and clamp follow
  (:class:`FoldRescaleChain`). The folded multiplier keeps the outer width when it fits
  there, else becomes i32; a product beyond ``2^31 - 1`` is not folded.

Anything else (a rounding inner step, runtime multipliers or shifts, runtime zero points
the conditions need) is left alone: a rescale fold is never attempted by enumeration.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    IntegerType,
    TensorType,
)
from xdsl.ir import Attribute, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from qopt.passes.fold_params import const_array, element_of, fused_location, understood
from qopt.qdialect.attrs import GranularityAttr, PerAxisAttr, PerTensorAttr
from qopt.qdialect.rescale import MULTIPLIER_MAX, RescaleOp, value_range, zero_point_value


def _ints(op: RescaleOp, name: str) -> np.ndarray | None:
    """A constant multiplier or shift as int64 values (None: a runtime operand)."""
    const = op.param(name)
    if const is None or isinstance(const, SSAValue):
        return None
    values = const_array(const)
    return None if values is None else values.astype(np.int64).reshape(-1)


def _zero_point(op: RescaleOp, name: str, storage: Attribute, unsigned: bool) -> int | None:
    """A constant zero point's value (0 when absent; None: a runtime operand)."""
    const = op.param(name)
    if const is None:
        return 0
    if not isinstance(const, IntegerAttr) or not isinstance(storage, IntegerType):
        return None
    return zero_point_value(int(const.value.data), storage.width.data, unsigned)


def _input_range(op: RescaleOp) -> tuple[int, int]:
    storage = element_of(op.input)
    assert isinstance(storage, IntegerType)
    return value_range(storage.width.data, op.is_input_unsigned)


def _exact_factor(op: RescaleOp) -> np.ndarray | None:
    """``k = m / 2^s`` per channel when every multiplier is an integer multiple of its
    ``2^s`` (the step multiplies exactly); None otherwise."""
    m, s = _ints(op, "multiplier"), _ints(op, "shift")
    if m is None or s is None:
        return None
    m, s = np.broadcast_arrays(m, s)
    power = np.left_shift(np.int64(1), s)
    if np.any(m % power != 0):
        return None
    return m // power


class RemoveIdentityRescale(RewritePattern):
    """``rescale(%x)`` -> ``%x`` where ``m == 2^s`` everywhere and nothing else changes a
    value (module docstring)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: RescaleOp, rewriter: PatternRewriter) -> None:
        if op.input.type != op.result.type or op.is_input_unsigned != op.is_output_unsigned:
            return
        if not understood(op):
            return
        k = _exact_factor(op)
        if k is None or np.any(k != 1):
            return
        storage = element_of(op.input)
        zi = _zero_point(op, "in_zero_point", storage, op.is_input_unsigned)
        zo = _zero_point(op, "out_zero_point", storage, op.is_output_unsigned)
        if zi is None or zi != zo:
            return
        lo, hi = op.output_bounds()
        in_lo, in_hi = _input_range(op)
        if lo > in_lo or hi < in_hi:
            return
        rewriter.replace(op, [], [op.input])


class FoldRescaleChain(RewritePattern):
    """``rescale(rescale(%x))`` -> one rescale where the inner step multiplies exactly
    (module docstring)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: RescaleOp, rewriter: PatternRewriter) -> None:
        inner = op.input.owner
        if not isinstance(inner, RescaleOp) or not understood(inner) or not understood(op):
            return
        if inner.is_output_unsigned != op.is_input_unsigned:
            return
        granularity = _common_granularity(inner.granularity_of(), op.granularity_of())
        k, m2, s2 = _exact_factor(inner), _ints(op, "multiplier"), _ints(op, "shift")
        if granularity is None or k is None or m2 is None or s2 is None:
            return
        mid = element_of(inner.result)
        zi1 = _zero_point(inner, "in_zero_point", element_of(inner.input), inner.is_input_unsigned)
        zo1 = _zero_point(inner, "out_zero_point", mid, inner.is_output_unsigned)
        zi2 = _zero_point(op, "in_zero_point", mid, op.is_input_unsigned)
        if zi1 is None or zo1 is None or zi2 is None or zo1 != zi2:
            return
        in_lo, in_hi = _input_range(inner)
        lo, hi = inner.output_bounds()
        ends = np.array([in_lo - zi1, in_hi - zi1], dtype=object)
        reached = [int(v) * int(f) + zo1 for v in ends for f in np.unique(k)]
        if min(reached) < lo or max(reached) > hi:
            return
        k, m2, s2 = np.broadcast_arrays(k, m2, s2)
        multiplier = k * m2  # k, m2 < 2^31: exact in int64
        width = _multiplier_width(op, int(multiplier.max(initial=0)))
        if width is None:
            return
        per_tensor = bool(np.all(multiplier == multiplier.flat[0]) and np.all(s2 == s2.flat[0]))
        folded = RescaleOp(
            inner.input,
            op.result.type,
            multiplier=_param_attr(multiplier, width, per_tensor),
            shift=_param_attr(s2, _shift_width(op), per_tensor),
            granularity=None if per_tensor else granularity,
            in_zero_point=inner.param("in_zero_point"),
            out_zero_point=op.param("out_zero_point"),
            attributes=None,
        )
        for name in ("rounding", "output_unsigned", "storage_min", "storage_max", "saturate"):
            if name in op.properties:
                folded.properties[name] = op.properties[name]
        if "input_unsigned" in inner.properties:
            folded.properties["input_unsigned"] = inner.properties["input_unsigned"]
        folded.location = fused_location(inner, op)
        rewriter.replace(op, folded)
        if not inner.result.uses:
            rewriter.erase(inner)


def _common_granularity(a: GranularityAttr, b: GranularityAttr) -> GranularityAttr | None:
    """The granularity of the folded parameters: per-tensor unless either step is per
    axis (both per axis: the same axis)."""
    if isinstance(a, PerTensorAttr):
        return b
    if isinstance(b, PerTensorAttr) or a == b:
        return a if isinstance(a, PerAxisAttr) else None
    return None


def _multiplier_width(op: RescaleOp, largest: int) -> int | None:
    width = op.multiplier_width
    if largest <= MULTIPLIER_MAX[width]:
        return width
    return 32 if largest <= MULTIPLIER_MAX[32] else None


def _shift_width(op: RescaleOp) -> int:
    const = op.param("shift")
    t = const.get_element_type() if isinstance(const, DenseIntOrFPElementsAttr) else None
    if isinstance(const, IntegerAttr):
        t = const.type
    return t.width.data if isinstance(t, IntegerType) else 8


def _param_attr(values: np.ndarray, width: int, per_tensor: bool) -> Attribute:
    """One constant (per tensor), else one value per channel."""
    element = IntegerType(width)
    flat = values.reshape(-1)
    if per_tensor:
        return IntegerAttr(int(flat[0]), element)
    return DenseIntOrFPElementsAttr.from_list(
        TensorType(element, [flat.size]), [int(v) for v in flat]
    )
