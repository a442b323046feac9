"""fold-quant's proofs: when a fold changes no result bits (docs/semantics.md section 6).

Each proof finds the distinct constant parameter tuples of the steps involved
(fold_params.py), settles what it can by a closed-form rule (fold_closed_forms.py), and
evaluates the remaining tuples on every input code with ``fold_eval.py`` (the lowering's
own element math). The reasoning is in fold_quant.py's docstring; the patterns there call
:func:`is_identity`, :func:`inner_step_lossless` and :func:`compare_steps`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import IntegerType
from xdsl.ir import Attribute

from qopt.passes.fold_closed_forms import (
    inner_step_lossless_by_rule,
    round_trip_of_differences,
    round_trip_rows,
)
from qopt.passes.fold_eval import (
    AFTER_ROUNDING,
    DIFFERENCE_TYPE,
    bits,
    dequantize,
    difference_domain,
    quantize,
    storage_domain,
    worst_error,
)
from qopt.passes.fold_params import Params, Side, Step, distinct_tuples
from qopt.qdialect import formats

ENUMERATION_BUDGET = 1 << 22
"""Most element evaluations (distinct parameter tuples x input codes) one enumeration may
spend; beyond it the fold is not attempted (the IR stays as it is)."""

_CHUNK = 1 << 20
"""Elements evaluated per numpy call (bounds the memory of a proof)."""

_SAMPLE = 512
"""Codes of the first, cheap pass of a proof that only needs to know whether it holds."""


def _chunks(count: int, width: int) -> Iterator[slice]:
    rows = max(1, _CHUNK // max(width, 1))
    for i in range(0, count, rows):
        yield slice(i, min(i + rows, count))


def _within_budget(tuples: int, width: int) -> bool:
    return tuples * width <= ENUMERATION_BUDGET


# ---------------------------------------------------------------------------------------
# Identities
# ---------------------------------------------------------------------------------------


def is_identity(step: Step, shape: tuple[int, ...]) -> bool:
    """True when ``step`` returns every input code unchanged (same storage type)."""
    if step.input.storage != step.output.storage:
        return False
    if step.input.runtime_zero_point or step.output.runtime_zero_point:
        return _is_identity_for_every_zero_point(step, shape)
    tuples = distinct_tuples([step.input, step.output], shape)
    if tuples is None:
        return False
    source, target = tuples
    open_rows = ~round_trip_rows(step, source, target)[:, 0]
    if not open_rows.any():
        return True
    source, target = source.take(open_rows), target.take(open_rows)
    codes = storage_domain(step.input.storage)
    if not _within_budget(source.scale.shape[0], codes.size):
        return False
    domains = [codes[:: codes.size // _SAMPLE], codes] if codes.size > _SAMPLE else [codes]
    with np.errstate(all="ignore"):
        for domain in domains:  # a sample first: most non-identities show there
            for rows in _chunks(source.scale.shape[0], domain.size):
                src, dst = source.take(rows), target.take(rows)
                x = dequantize(
                    domain, step.input.storage, src.scale, src.zero_point, step.expressed
                )
                out = _quantize(step, x, dst)
                if not np.array_equal(bits(out), np.broadcast_to(bits(domain), out.shape)):
                    return False
    return True


def _is_identity_for_every_zero_point(step: Step, shape: tuple[int, ...]) -> bool:
    """Identity with one runtime zero point on both sides, for every (q, zp) pair.

    The result is ``clamp(r(d) + zp)`` with ``d = q - zp`` and ``r(d) = round(d * s / s')``;
    it is ``q`` for every valid pair exactly when ``r(d) == d`` for every difference ``d``
    of the storage's range, except at the two extreme differences ``d = +-(qmax - qmin)``,
    reached only by ``q = qmax, zp = qmin`` (and the mirror), where a saturating ``r(d)``
    clamps back to ``q``. The output range must be the storage type's whole range.
    """
    storage = step.input.storage
    if (
        not isinstance(storage, IntegerType)
        or step.zero_point_order != AFTER_ROUNDING  # r(d) + zp needs the zp added last
        or step.input.zero_point is not step.output.zero_point
        or step.input.granularity != step.output.granularity
        or step.bounds != formats.integer_range(storage)
    ):
        return False
    lo, hi = step.bounds
    tuples = distinct_tuples([step.input, step.output], shape, zero_points=[False, False])
    if tuples is None:
        return False
    source, target = tuples
    if round_trip_of_differences(step, source, target):
        return True
    diffs = difference_domain(storage)
    if not _within_budget(source.scale.shape[0], diffs.size):
        return False
    with np.errstate(all="ignore"):
        for rows in _chunks(source.scale.shape[0], diffs.size):
            src, dst = source.take(rows), target.take(rows)
            x = dequantize(diffs, DIFFERENCE_TYPE, src.scale, src.zero_point, step.expressed)
            r = quantize(x, dst.scale, dst.zero_point, storage, step.rounding, True, None)
            exact = (r == diffs) | ((diffs == hi - lo) & (r >= diffs))
            exact |= (diffs == lo - hi) & (r <= diffs)
            if not np.all(exact):
                return False
    return True


# ---------------------------------------------------------------------------------------
# Chains
# ---------------------------------------------------------------------------------------


def _input_domain(side: Side) -> tuple[np.ndarray, Attribute]:
    """Codes to enumerate for an input side and their type: the differences ``q - zp``
    (of DIFFERENCE_TYPE) for a runtime zero point, else the storage codes."""
    if side.runtime_zero_point and isinstance(side.storage, IntegerType):
        return difference_domain(side.storage), DIFFERENCE_TYPE
    return storage_domain(side.storage), side.storage


def _apply(step: Step, codes: np.ndarray, code_type: Attribute, src: Params, dst: Params):
    """``step`` on ``codes``: the output codes."""
    x = dequantize(codes, code_type, src.scale, src.zero_point, step.expressed)
    return _quantize(step, x, dst)


def _quantize(step: Step, x: np.ndarray, dst: Params) -> np.ndarray:
    """The output half of ``step`` on f32 values ``x``, in the step's zero-point order."""
    return quantize(
        x,
        dst.scale,
        dst.zero_point,
        step.output.storage,
        step.rounding,
        step.saturate,
        step.bounds,
        step.zero_point_order,
    )


def inner_step_lossless(inner: Step, outer_input: Side, shape: tuple[int, ...]) -> bool:
    """dequantize(inner(q), outer_input) == dequantize(q, inner.input), bit for bit."""
    if inner_step_lossless_by_rule(inner, outer_input, shape):
        return True
    if formats.type_name(inner.expressed) != "f32":
        return False
    codes, code_type = _input_domain(inner.input)
    tuples = distinct_tuples(
        [inner.input, inner.output, outer_input],
        shape,
        zero_points=[code_type is not DIFFERENCE_TYPE, True, True],
    )
    if tuples is None:
        return False
    source, middle, seen = tuples
    if not _within_budget(source.scale.shape[0], codes.size):
        return False
    with np.errstate(all="ignore"):
        for rows in _chunks(source.scale.shape[0], codes.size):
            src, mid, view = source.take(rows), middle.take(rows), seen.take(rows)
            x = dequantize(codes, code_type, src.scale, src.zero_point)
            r1 = _apply(inner, codes, code_type, src, mid)
            x2 = dequantize(r1, inner.output.storage, view.scale, view.zero_point)
            if not np.array_equal(x.view(np.uint32), x2.view(np.uint32)):
                return False
    return True


@dataclass(frozen=True)
class ChainComparison:
    """The chain against the single step over every input code."""

    exact: bool
    """Same bits everywhere."""
    worst_error: float
    """max |folded - chained| in output units (0 when only NaN payloads differ)."""


def compare_steps(
    steps: Sequence[Step], folded: Step, shape: tuple[int, ...], *, exact_only: bool = False
) -> ChainComparison | None:
    """Evaluate the chain ``steps[-1](...steps[0](q))`` and ``folded(q)`` on every code of
    the first input; None if not enumerable (a runtime parameter, cells that cannot be
    resolved, or over the budget). ``folded`` reads with ``steps[0].input`` and writes
    ``steps[-1].output``; the whole chain is one proof, whatever its length.

    ``exact_only``: only whether it is exact matters (``worst_error`` is then NaN when it
    is not): a sample of the codes is tried first, where most chains that are not exact
    show it at a fraction of the cost."""
    codes = storage_domain(steps[0].input.storage)
    sides = [side for step in steps for side in (step.input, step.output)]
    tuples = distinct_tuples([*sides, folded.input, folded.output], shape)
    if tuples is None:
        return None
    count = tuples[0].scale.shape[0]
    if not _within_budget(count, codes.size):
        return None
    domains = [codes]
    if exact_only and codes.size > _SAMPLE:
        domains.insert(0, codes[:: codes.size // _SAMPLE])
    exact, worst = True, 0.0
    with np.errstate(all="ignore"):
        for domain in domains:
            for rows in _chunks(count, domain.size):
                params = [p.take(rows) for p in tuples]
                chained, code_type = domain, steps[0].input.storage
                for k, step in enumerate(steps):
                    chained = _apply(step, chained, code_type, params[2 * k], params[2 * k + 1])
                    code_type = step.output.storage
                direct = _apply(folded, domain, steps[0].input.storage, params[-2], params[-1])
                if np.array_equal(bits(direct), bits(chained)):
                    continue
                if exact_only:
                    return ChainComparison(False, float("nan"))
                exact = False
                worst = max(worst, worst_error(direct, chained))
    return ChainComparison(exact, worst)
