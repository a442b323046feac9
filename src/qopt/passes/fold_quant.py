"""fold-quant: folds of quant op pairs and quant chains that change no result bits.

docs/semantics.md section 6 allows a rewrite only where it provably changes the bits of no output.
Each pattern below proves that before it rewrites, and otherwise leaves the IR alone:

    quantize(dequantize(%q))             -> %q               (FoldQuantizeOfDequantize)
    quantize(dequantize(%q))             -> requantize(%q)   (FuseDequantizeQuantize)
    requantize(%q) with in == out        -> %q               (RemoveIdentityRequantize)
    requantize(...requantize(%q))        -> requantize(%q)   (FoldRequantizeChain)
    rescale(%x) with m == 2^s            -> %x               (RemoveIdentityRescale)
    rescale(rescale(%x))                 -> rescale(%x)      (FoldRescaleChain)

* dequantize -> quantize is a requantize by definition (docs/semantics.md sections 3-5:
  requantize means ``quantize(dequantize(q) as f32)``), so with an f32 intermediate that
  fusion needs no proof; an f16 / bf16 one rounds in between, which requantize cannot
  express, so that pair is fused only where enumeration shows the rounding changes no code.
* ``(q - zp) * s / s`` is NOT always ``q - zp`` in f32: it is one f32 ulp off for a good
  share of (d, s) pairs (d = q - zp; e.g. 15 * 0.3 / 0.3 = 14.999999). For ``|d| <= 2**17``
  and ``d * s`` finite and normal the error is below ``|d| * 2**-22.99 < 0.02``, so every
  *nearest* rounding mode gives ``d`` back (fold_closed_forms.py, the rule of SPEC section
  4), but ``toward_zero`` does not (14.999999 -> 14), and an overflowing product breaks it
  too. The identity folds check that rule per distinct parameter tuple and evaluate the
  tuples it does not settle on every code of the storage type (at most 2**16),
  bit-exactly as the compiled code computes it (the lowering's own element bodies,
  evaluated by fold_eval.py), folding exactly when every code comes back. (The
  enumeration shows the rule is sufficient, not necessary: a subnormal scale keeps integer
  codes exact.) Runtime scales are left alone: a runtime scale may be 0, inf, NaN or
  huge, and no rule holds for all of those. A runtime zero point is accepted when it is
  the same SSA value on both sides: then only ``d`` matters and every ``d`` of the
  storage's difference range ``[qmin - qmax, qmax - qmin]`` is covered (rule or
  enumeration).
* A requantize chain ``Rn(...R1(q))`` folds to ``requantize(q, in = R1.in, out = Rn.out)``.
  The longest chain ending at an op (at most MAX_CHAIN steps) is tried first, as one
  proof: with every parameter constant, the chain and the single requantize agree on
  every input code (enumeration; this finds double roundings that agree, e.g.
  ``rne(rne(d / 2) / 2) == rne(d / 4)``, and clamps that a later, narrower clamp hides,
  which no pair of the chain shows). Then shorter chains down to the pair ``R2(R1(q))``,
  which also folds when the inner step is lossless as the outer step sees it:
  dequantizing R1's result with R2's input parameters gives the f32 bits ``dequantize(q)``
  with R1's input parameters gives, for every q. Then the outer quantize sees the same
  f32 values, whatever R2's output parameters are (they may be runtime values). Proven by
  rule where that is closed-form (integer storages, ``s_in = k * s_mid`` for an integer
  ``k``, same mid parameters on both sides, nearest rounding, no clamp, no overflow /
  underflow: the intermediate then holds ``k * d + zp_mid`` exactly), else by
  enumeration. With ``lossy=true`` a pair that is not exact but enumerable is folded too,
  and its worst-case error (max |folded - chained| over the domain, in output units) is
  reported as a remark on stderr. Nothing lossy happens without the option.
* Ops that add the zero point before rounding (``zero_point_order(before_rounding)``)
  are proven in that order (the steps carry it, fold_eval evaluates it, and the closed
  forms hold in both orders); only the identity over runtime zero points, which needs the
  zero point added last, is refused for them.
* rescale (fixed point, exact integers) folds by closed forms only: fold_rescale.py.
* ``dequantize(quantize(x))`` is never removed, not even with ``lossy=true``: its error
  depends on the float input, which cannot be enumerated, so no worst case can be reported.

Every proof works per *distinct parameter tuple* (fold_params.py): channels that share
their parameters are one evaluation, so a per-axis tensor of 100,000 channels with one
scale costs what a per-tensor one does. An enumeration costs at most
``fold_proofs.ENUMERATION_BUDGET`` element evaluations (tuples x codes); beyond that the
fold is not attempted. A proof's answer is kept for the run of the pass (fold_cache.py),
so the walker's later sweeps do not redo failed proofs. Comparisons are on bits: float
storage codes as bytes (NaN payloads included: e5m2 NaN codes 0x7D / 0x7F come back as
0x7E, so an e5m2 round trip never folds), integer codes as values. Every op the pass
creates carries a ``FusedLoc`` of the locations of the ops it merges.

Public entry points (used by other passes and importers): :class:`FoldQuantPass` and its
option ``lossy``; the pattern classes above, each constructible without arguments.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, f32
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from qopt.ir.diagnostics import describe_location
from qopt.passes.fold_cache import ProofCache
from qopt.passes.fold_params import (
    Step,
    composed,
    element_of,
    fused_location,
    pair_step,
    requantize_step,
    shape_of,
    understood,
    with_expressed,
)
from qopt.passes.fold_proofs import (
    ChainComparison,
    compare_steps,
    inner_step_lossless,
    is_identity,
)
from qopt.passes.fold_rescale import FoldRescaleChain, RemoveIdentityRescale
from qopt.qdialect import formats
from qopt.qdialect.ops import DequantizeOp, QuantizeOp, QuantOp, RequantizeOp

MAX_CHAIN = 8
"""Most requantize steps one whole-chain proof composes (longer chains fold by parts)."""

# ---------------------------------------------------------------------------------------
# Building the replacement ops
# ---------------------------------------------------------------------------------------


def _side_parts(
    op: QuantOp, prefix: str, new_prefix: str
) -> tuple[dict[str, SSAValue], dict[str, Attribute]]:
    """The parameter operands and properties of one side, renamed to ``new_prefix``."""
    operands: dict[str, SSAValue] = {}
    properties: dict[str, Attribute] = {}
    for name in ("scale", "zero_point"):
        operand = getattr(op, f"{prefix}{name}")
        if operand is not None:
            operands[f"{new_prefix}{name}"] = operand
        const = op.properties.get(f"{prefix}{name}_const")
        if const is not None:
            properties[f"{new_prefix}{name}_const"] = const
    granularity = op.properties.get(f"{prefix}granularity")
    if granularity is not None:
        properties[f"{new_prefix}granularity"] = granularity
    return operands, properties


def _copy_properties(op: Operation, names: dict[str, str]) -> dict[str, Attribute]:
    return {new: op.properties[old] for old, new in names.items() if old in op.properties}


def _build_requantize(
    input: SSAValue,
    *,
    in_op: QuantOp,
    in_prefix: str,
    in_range: dict[str, str],
    out_op: QuantOp,
    out_prefix: str,
    merged: Sequence[Operation] = (),
) -> RequantizeOp:
    """A requantize of ``input`` taking its in parameters (and in range, renamed by
    ``in_range``) from ``in_op`` and its out parameters, rounding, saturation and range
    from ``out_op``; located at the fused locations of both (and of the ``merged`` ops
    between them)."""
    in_operands, in_props = _side_parts(in_op, in_prefix, "in_")
    out_operands, out_props = _side_parts(out_op, out_prefix, "out_")
    operands = in_operands | out_operands
    properties = (
        in_props
        | out_props
        | _copy_properties(in_op, in_range)
        | _copy_properties(out_op, _OUTPUT_PROPERTIES)
    )
    parameters = [[operands[n]] if n in operands else [] for n in RequantizeOp.OPERAND_ORDER]
    op = RequantizeOp.build(
        operands=[input, *parameters],
        result_types=[out_op.results[0].type],
        properties=properties,
    )
    op.location = fused_location(in_op, *merged, out_op)
    return op


_OUTPUT_PROPERTIES = {
    n: n for n in ("storage_min", "storage_max", "rounding", "saturate", "zero_point_order")
}
_DEQUANTIZE_RANGE = {"storage_min": "in_storage_min", "storage_max": "in_storage_max"}
_REQUANTIZE_IN_RANGE = {"in_storage_min": "in_storage_min", "in_storage_max": "in_storage_max"}


def _plain_dequantize(op: Operation | Block) -> DequantizeOp | None:
    """The op as a dequantize without the minval form or a double-quant scale."""
    if not isinstance(op, DequantizeOp) or not understood(op):
        return None
    if op.param("minval") is not None or op.param("double_quant") is not None:
        return None
    return op


def _erase_if_dead(op: Operation, rewriter: PatternRewriter) -> None:
    if all(not result.uses for result in op.results):
        rewriter.erase(op)


# ---------------------------------------------------------------------------------------
# Patterns
# ---------------------------------------------------------------------------------------


@dataclass
class FoldQuantizeOfDequantize(RewritePattern):
    """``quantize(dequantize(%q))`` -> ``%q`` where that is the identity on every code.

    Same storage type on both ends, constant scales (or one runtime zero point used by
    both), proven by rule or by enumerating the storage codes per distinct parameter
    tuple; any expressed type in between (its rounding is part of the evaluation).
    """

    cache: ProofCache = field(default_factory=ProofCache)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: QuantizeOp, rewriter: PatternRewriter) -> None:
        dq = _plain_dequantize(op.input.owner)
        if dq is None or op.param("minval") is not None or not understood(op):
            return
        if dq.input.type != op.result.type:
            return
        step, shape = pair_step(dq, op), shape_of(op.result)
        if not self.cache.answer(("identity", step, shape), lambda: is_identity(step, shape)):
            return
        rewriter.replace(op, [], [dq.input])
        _erase_if_dead(dq, rewriter)


@dataclass
class FuseDequantizeQuantize(RewritePattern):
    """``quantize(dequantize(%q))`` -> ``requantize(%q)``: the definition of requantize.

    Only when the dequantized values are an intermediate (every user is a quantize, so the
    dequantize goes away). With an f32 intermediate this is requantize's definition; an
    f16 / bf16 one rounds in between, which requantize (f32 in between) cannot express,
    so that pair is fused only where the rounding provably changes no code (enumerated).
    """

    cache: ProofCache = field(default_factory=ProofCache)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: QuantizeOp, rewriter: PatternRewriter) -> None:
        dq = _plain_dequantize(op.input.owner)
        if dq is None or op.param("minval") is not None or not understood(op):
            return
        if not all(isinstance(use.operation, QuantizeOp) for use in dq.result.uses):
            return
        if formats.type_name(element_of(dq.result)) != "f32":
            step, shape = pair_step(dq, op), shape_of(op.result)
            if not self.cache.answer(("f32", step, shape), lambda: _f32_equivalent(step, shape)):
                return
        requantize = _build_requantize(
            dq.input, in_op=dq, in_prefix="", in_range=_DEQUANTIZE_RANGE, out_op=op, out_prefix=""
        )
        rewriter.replace(op, requantize)
        _erase_if_dead(dq, rewriter)


def _f32_equivalent(step: Step, shape: tuple[int, ...]) -> bool:
    """The step gives the same codes with an f32 intermediate, on every input code."""
    comparison = compare_steps([step], with_expressed(step, f32), shape, exact_only=True)
    return comparison is not None and comparison.exact


@dataclass
class RemoveIdentityRequantize(RewritePattern):
    """``requantize(%q)`` -> ``%q`` where it returns every code unchanged (rule or
    enumeration)."""

    cache: ProofCache = field(default_factory=ProofCache)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: RequantizeOp, rewriter: PatternRewriter) -> None:
        if op.input.type != op.result.type or not understood(op):
            return
        step, shape = requantize_step(op), shape_of(op.result)
        if not self.cache.answer(("identity", step, shape), lambda: is_identity(step, shape)):
            return
        rewriter.replace(op, [], [op.input])


@dataclass(frozen=True)
class _Link:
    """One step of a chain: a requantize, or a dequantize -> quantize pair that is not
    fused (an f16 / bf16 intermediate whose rounding matters on its own)."""

    ops: tuple[Operation, ...]
    step: Step
    input: SSAValue
    in_op: QuantOp
    in_prefix: str
    in_range: dict[str, str]
    out_op: QuantOp
    out_prefix: str


def _link_of(op: Operation | Block) -> _Link | None:
    if isinstance(op, RequantizeOp):
        if not understood(op):
            return None
        return _Link(
            (op,), requantize_step(op), op.input, op, "in_", _REQUANTIZE_IN_RANGE, op, "out_"
        )
    if not isinstance(op, QuantizeOp) or not understood(op):
        return None
    dq = _plain_dequantize(op.input.owner)
    if dq is None or op.param("minval") is not None:
        return None
    if not all(isinstance(use.operation, QuantizeOp) for use in dq.result.uses):
        return None
    return _Link((dq, op), pair_step(dq, op), dq.input, dq, "", _DEQUANTIZE_RANGE, op, "")


def _chain_ending_at(op: Operation) -> list[_Link]:
    """The links feeding ``op`` one into the next, ending at ``op``'s (at most MAX_CHAIN;
    none when ``op`` is no link, e.g. it carries a property the proofs do not model)."""
    last = _link_of(op)
    if last is None:
        return []
    chain = [last]
    while len(chain) < MAX_CHAIN:
        inner = _link_of(chain[0].input.owner)
        if inner is None:
            break
        chain.insert(0, inner)
    return chain


@dataclass
class FoldRequantizeChain(RewritePattern):
    """A chain of requantizes (and dequantize -> quantize pairs that stayed apart) -> one
    requantize (in: the first step's, out: the last's).

    The longest chain ending at this op (at most MAX_CHAIN steps) is tried first, as a
    whole: its composition must agree with the single step on every code (so a chain
    whose parts do not fold pairwise can still fold whole, through f16 / bf16 pairs too);
    then shorter ones, down to two steps. Two requantizes also fold when the inner step is
    lossless for the outer one (rule or enumeration; the outer parameters may then be
    runtime values), and with ``lossy`` whenever they are enumerable, reporting the
    worst-case error as a remark.
    """

    lossy: bool = False
    cache: ProofCache = field(default_factory=ProofCache)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, RequantizeOp | QuantizeOp):
            return
        chain = _chain_ending_at(op)
        if len(chain) < 2:
            return
        shape = shape_of(op.results[0])
        steps = [link.step for link in chain]
        two_requantizes = all(len(link.ops) == 1 for link in chain[-2:])
        for start in range(len(chain) - (2 if two_requantizes else 1)):
            comparison = self._compare(steps[start:], shape)
            if comparison is not None and comparison.exact:
                self._fold(chain[start:], rewriter, None)
                return
        if not two_requantizes:
            return
        inner_step, outer_step = steps[-2], steps[-1]
        comparison = None
        lossless = self.cache.answer(
            ("lossless", inner_step, outer_step.input, shape),
            lambda: inner_step_lossless(inner_step, outer_step.input, shape),
        )
        if not lossless:
            comparison = self._compare(steps[-2:], shape, exact_only=not self.lossy)
            if comparison is None or not (comparison.exact or self.lossy):
                return
        self._fold(chain[-2:], rewriter, comparison)

    def _compare(
        self, steps: list[Step], shape: tuple[int, ...], exact_only: bool = True
    ) -> ChainComparison | None:
        folded = composed(steps[0], steps[-1])
        return self.cache.answer(
            ("chain", tuple(steps), shape, exact_only),
            lambda: compare_steps(steps, folded, shape, exact_only=exact_only),
        )

    @staticmethod
    def _fold(
        chain: list[_Link], rewriter: PatternRewriter, comparison: ChainComparison | None
    ) -> None:
        first, last = chain[0], chain[-1]
        ops = [op for link in chain for op in link.ops]
        folded = _build_requantize(
            first.input,
            in_op=first.in_op,
            in_prefix=first.in_prefix,
            in_range=first.in_range,
            out_op=last.out_op,
            out_prefix=last.out_prefix,
            merged=[op for op in ops if op is not first.in_op and op is not last.out_op],
        )
        if comparison is not None and not comparison.exact:
            error = _number(comparison.worst_error)
            _remark(
                last.out_op,
                f"lossy fold of requantize chain: worst-case error {error} output units",
            )
        rewriter.replace(last.out_op, folded)
        for op in reversed(ops[:-1]):
            _erase_if_dead(op, rewriter)


def _number(value: float) -> str:
    return str(int(value)) if math.isfinite(value) and value == int(value) else f"{value:g}"


def _remark(op: Operation, message: str) -> None:
    """An mlir-opt style remark on stderr: ``file:line:col: remark: message``."""
    print(f"{describe_location(op.location)}: remark: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------------------
# The pass
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoldQuantPass(ModulePass):
    """Exact folds of q/dq pairs and requantize chains (docs/semantics.md section 6).

    ``lossy=true`` also folds requantize chains that are not exact but can be enumerated,
    reporting each one's worst-case error in output units as a remark on stderr.
    """

    name = "fold-quant"

    lossy: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        cache = ProofCache()  # failed proofs are met again on every sweep
        patterns: list[RewritePattern] = [
            FoldQuantizeOfDequantize(cache),
            FuseDequantizeQuantize(cache),
            RemoveIdentityRequantize(cache),
            FoldRequantizeChain(self.lossy, cache),
            RemoveIdentityRescale(),
            FoldRescaleChain(),
        ]
        # No blanket dead-code elimination: the patterns erase exactly the producers
        # their rewrite made dead, and leave the user's other ops alone.
        applier = GreedyRewritePatternApplier(patterns, dce_enabled=False)
        PatternRewriteWalker(applier).rewrite_module(op)
