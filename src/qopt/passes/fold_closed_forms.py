"""fold-quant's closed-form proofs: conditions on the parameters that make a fold exact.

Where the algebra settles a fold, fold_proofs.py checks these conditions on every distinct
parameter tuple (fold_params.py) and enumerates codes only for the tuples that fail them,
so the enumeration budget bounds only what truly needs enumerating. Each condition is
sufficient, never necessary: a tuple that fails it is enumerated, not refused.

Both rules rest on one bound. For an integer ``d`` with ``|d| <= 2**17`` and an f32 scale
``s`` that is a normal number with ``fl(d * s)`` finite, ``p = fl(d * s) = d s (1 + e1)``
is normal (``|p| >= s``) and ``fl(p / s) = d (1 + e1)(1 + e2)``, ``|e1|, |e2| <= 2**-24``:
within ``|d| * 2**-22.99 <= 2**-5.99`` of ``d``, so every *nearest* rounding mode returns
``d`` (no tie can occur). Adding the zero point after rounding (qopt's order) is exact;
adding it before rounding as an f32 sum (``rne(p / s + zp)``, upstream MLIR's order, for
``|d + zp| <= 2**16``) adds at most ``2**-8`` more, still far from a tie, so the rules hold
for both orders.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import IntegerType

from qopt.passes.fold_params import Params, Side, Step, distinct_tuples
from qopt.qdialect import formats
from qopt.qdialect.ops import ROUNDING_MODES

NEAREST_MODES = frozenset(ROUNDING_MODES) - {"toward_zero"}
"""The rounding modes of the dialect that return the nearest integer."""

_DIFFERENCE_LIMIT = 1 << 17
"""Largest ``|q - zp|`` the bound of the module docstring covers."""

_TINY = np.float32(np.finfo(np.float32).tiny)


def _is_f32(step: Step) -> bool:
    return formats.type_name(step.expressed) == "f32"


def _scale_keeps_integers(scale: np.ndarray, widest: np.ndarray) -> np.ndarray:
    """Per tuple: ``scale`` is normal and ``fl(widest * scale)`` is finite."""
    with np.errstate(all="ignore"):
        finite = np.isfinite(widest.astype(np.float32) * scale)
    return (scale >= _TINY) & np.isfinite(scale) & finite & (widest <= _DIFFERENCE_LIMIT)


def round_trip_rows(step: Step, source: Params, target: Params) -> np.ndarray:
    """Per tuple (an (n, 1) mask): ``step`` returns every code unchanged by rule.

    ``quantize(dequantize(q, s, zp), s, zp) == q`` for integer storage with an f32
    intermediate, the same scale and zero point on both sides, a nearest rounding mode, an
    output range that is the storage's whole range, and the bound of the module docstring
    for every difference ``q - zp`` of the storage range (docs/semantics.md section 6: "a
    normal scale with ``(q - zp) * s`` finite and normal").
    """
    none = np.zeros(source.scale.shape, dtype=bool)
    storage = step.input.storage
    if not (isinstance(storage, IntegerType) and storage == step.output.storage):
        return none
    if not _is_f32(step) or step.rounding not in NEAREST_MODES:
        return none
    lo, hi = formats.integer_range(storage)
    if step.bounds != (lo, hi):
        return none
    widest = np.maximum(np.abs(lo - source.zero_point), np.abs(hi - source.zero_point))
    return (
        (source.scale == target.scale)
        & (source.zero_point == target.zero_point)
        & _scale_keeps_integers(source.scale, widest)
    )


def round_trip_of_differences(step: Step, source: Params, target: Params) -> bool:
    """The rule of :func:`round_trip_rows` for a runtime zero point (the same value on both
    sides): every difference ``d`` of ``[lo - hi, hi - lo]`` comes back from
    ``round(fl(d * s) / s)``, so ``clamp(d + zp) = q`` (the zero point added after
    rounding; the other order is not a function of ``d`` alone)."""
    storage = step.input.storage
    if not isinstance(storage, IntegerType) or not _is_f32(step):
        return False
    if step.rounding not in NEAREST_MODES or step.zero_point_order != "after_rounding":
        return False
    lo, hi = formats.integer_range(storage)
    widest = np.full(source.scale.shape, hi - lo, dtype=np.int64)
    return bool(
        np.all(source.scale == target.scale) and np.all(_scale_keeps_integers(source.scale, widest))
    )


def inner_step_lossless_by_rule(inner: Step, outer_input: Side, shape: tuple[int, ...]) -> bool:
    """The chain rule: integer storages, ``s_in = k * s_mid``, nothing rounds or clamps.

    With d = q - zp, ``fl(d * s_in) = fl(k d * s_mid)`` (the same real number);
    dividing by ``s_mid`` gives ``k d`` by the bound of the module docstring, which any
    nearest rounding returns exactly; ``k d + zp_mid`` inside the mid range is stored
    unclamped, and the outer dequantize with the same mid parameters computes
    ``fl(k d * s_mid)`` again: the outer quantize sees the bits the single step sees.
    """
    a, b = inner.input, inner.output
    if not (isinstance(a.storage, IntegerType) and isinstance(b.storage, IntegerType)):
        return False
    if inner.rounding not in NEAREST_MODES or inner.bounds is None or not _is_f32(inner):
        return False
    tuples = distinct_tuples(
        [a, b, outer_input], shape, zero_points=[not a.runtime_zero_point, True, True]
    )
    if tuples is None:
        return False
    source, middle, seen = tuples
    if not (
        np.array_equal(middle.scale, seen.scale)
        and np.array_equal(middle.zero_point, seen.zero_point)
    ):
        return False
    s_in = source.scale.astype(np.float64)
    s_mid = middle.scale.astype(np.float64)
    k = np.rint(s_in / s_mid)
    lo, hi = formats.integer_range(a.storage)
    if a.runtime_zero_point:
        d_lo, d_hi = np.full_like(k, lo - hi), np.full_like(k, hi - lo)
    else:
        d_lo, d_hi = lo - source.zero_point, hi - source.zero_point
    widest = np.maximum(np.abs(d_lo), np.abs(d_hi))
    return bool(
        np.all(k >= 1)
        and np.all(k * s_mid == s_in)
        and np.all(_scale_keeps_integers(source.scale, widest))
        and np.all(k * widest <= _DIFFERENCE_LIMIT)
        and np.all(d_lo * k + middle.zero_point >= inner.bounds[0])
        and np.all(d_hi * k + middle.zero_point <= inner.bounds[1])
    )
