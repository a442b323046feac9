"""fold-quant's proofs: when a fold changes no result bits (docs/semantics.md section 6).

Each proof resolves the constant parameters per *cell* and evaluates the steps on every
input code with ``fold_eval.py`` (the lowering's own element math), or, for the one
closed-form case, checks a rule (:func:`inner_step_lossless_by_rule`). The reasoning is
in fold_quant.py's docstring; the patterns there call :func:`is_identity`,
:func:`inner_step_lossless` and :func:`compare_chain`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    TensorType,
    f32,
)
from xdsl.ir import Attribute, SSAValue

from qopt.passes.fold_eval import (
    DIFFERENCE_TYPE,
    bits,
    dequantize,
    difference_domain,
    quantize,
    storage_domain,
    worst_error,
)
from qopt.qdialect import formats
from qopt.qdialect.attrs import GranularityAttr, PerAxisAttr, PerTensorAttr
from qopt.qdialect.ops import ROUNDING_MODES, DequantizeOp, QuantizeOp, QuantOp, RequantizeOp

ENUMERATION_BUDGET = 1 << 22
"""Most element evaluations (parameter cells x storage codes) one enumeration may spend;
beyond it the fold is not attempted (the IR stays as it is)."""

RULE_CELL_LIMIT = 1 << 22
"""Most parameter cells the closed-form chain rule checks (no enumeration of codes)."""

_CHUNK = 1 << 20
"""Elements evaluated per numpy call (bounds the memory of a proof)."""

_NEAREST_MODES = frozenset(ROUNDING_MODES) - {"toward_zero"}
"""The rounding modes of the dialect that return the nearest integer."""


# ---------------------------------------------------------------------------------------
# Constant parameters, resolved per cell.
#
# A cell is one distinct combination of parameter indices over the data: along each
# dimension, data indices that read the same parameter entry of every granularity
# involved are equivalent, so the cells are the product over dimensions of those classes
# (one cell for per-tensor, n for per_axis over n channels, ...).
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One quantized representation: storage type, scale, zero point, granularity."""

    storage: Attribute
    scale: SSAValue | Attribute | None
    zero_point: SSAValue | Attribute | None
    granularity: GranularityAttr

    @staticmethod
    def of(op: QuantOp, prefix: str, storage: Attribute) -> Side:
        return Side(
            storage,
            op.param(f"{prefix}scale"),
            op.param(f"{prefix}zero_point"),
            op.granularity_of(f"{prefix}granularity"),
        )

    @property
    def runtime_zero_point(self) -> bool:
        return isinstance(self.zero_point, SSAValue)


@dataclass(frozen=True)
class Step:
    """``quantize(dequantize(q, input) as expressed, output)``: a requantize or a q/dq pair."""

    input: Side
    output: Side
    expressed: Attribute
    rounding: str
    saturate: bool
    bounds: tuple[int, int] | None
    """Output clamp range of integer storage (the narrow range when given)."""


def requantize_step(op: RequantizeOp) -> Step:
    out_storage = element_of(op.result)
    return Step(
        Side.of(op, "in_", element_of(op.input)),
        Side.of(op, "out_", out_storage),
        f32,
        op.rounding_mode,
        op.saturate_flag,
        op.storage_bounds(out_storage),
    )


def pair_step(dq: DequantizeOp, q: QuantizeOp) -> Step:
    out_storage = element_of(q.result)
    return Step(
        Side.of(dq, "", element_of(dq.input)),
        Side.of(q, "", out_storage),
        element_of(dq.result),
        q.rounding_mode,
        q.saturate_flag,
        q.storage_bounds(out_storage),
    )


def element_of(value: SSAValue) -> Attribute:
    assert isinstance(value.type, TensorType)
    return value.type.element_type


def shape_of(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


@dataclass(frozen=True)
class _Cells:
    """Representative data coordinates of every cell (one array per dimension)."""

    shape: tuple[int, ...]
    coords: tuple[np.ndarray, ...]
    count: int


def _cells(
    shape: tuple[int, ...], granularities: Sequence[GranularityAttr], max_cells: int
) -> _Cells | None:
    """The cells of ``granularities`` over ``shape``; None for a dynamic blocked dimension
    or more than ``max_cells`` cells."""
    representatives: list[np.ndarray] = []
    for k, extent in enumerate(shape):
        raw = [g.raw_block_shape(len(shape))[k] for g in granularities]
        if extent < 0:
            if any(b != -1 for b in raw):
                return None
            representatives.append(np.zeros(1, dtype=np.int64))
            continue
        index = np.arange(extent, dtype=np.int64)
        keys = np.stack([index // (max(extent, 1) if b == -1 else b) for b in raw], axis=1)
        _, first = np.unique(keys, axis=0, return_index=True)
        representatives.append(index[np.sort(first)])
    count = math.prod(len(r) for r in representatives)
    if count > max_cells:
        return None
    if not shape:
        return _Cells(shape, (), 1)
    grid = np.meshgrid(*representatives, indexing="ij")
    return _Cells(shape, tuple(g.ravel() for g in grid), count)


def _const_array(attr: Attribute) -> np.ndarray | None:
    if isinstance(attr, FloatAttr | IntegerAttr):
        return np.array(attr.value.data)
    if isinstance(attr, DenseIntOrFPElementsAttr):
        return np.array(attr.get_values()).reshape(attr.get_shape() or ())
    return None


def _at_cells(
    param: SSAValue | Attribute | None,
    granularity: GranularityAttr,
    cells: _Cells,
    dtype: type,
    default: float,
) -> np.ndarray | None:
    """A constant parameter's value in every cell, as a (cells, 1) column; None if runtime."""
    if param is None:
        return np.full((cells.count, 1), default, dtype=dtype)
    if isinstance(param, SSAValue):
        return None
    values = _const_array(param)
    if values is None:
        return None
    values = values.astype(dtype)
    if isinstance(granularity, PerTensorAttr) or values.size == 1:
        picked = np.broadcast_to(values.reshape(()), (cells.count,))
    elif isinstance(granularity, PerAxisAttr):
        picked = values[cells.coords[granularity.axis]]
    else:
        blocks = granularity.block_shape(cells.shape)
        picked = values[tuple(c // b for c, b in zip(cells.coords, blocks))]
    return np.ascontiguousarray(picked).reshape(cells.count, 1)


@dataclass(frozen=True)
class _Params:
    """A side's constant scale (f32) and zero point (int64) per cell."""

    scale: np.ndarray
    zero_point: np.ndarray


def _resolve(side: Side, cells: _Cells, *, zero_point: bool = True) -> _Params | None:
    """Constant parameters of ``side`` per cell; ``zero_point=False`` treats it as 0."""
    scale = _at_cells(side.scale, side.granularity, cells, np.float32, 1.0)
    zp_param = side.zero_point if zero_point else None
    zp = _at_cells(zp_param, side.granularity, cells, np.int64, 0)
    if scale is None or zp is None:
        return None
    return _Params(scale, zp)


def _chunks(cells: _Cells, width: int) -> list[slice]:
    rows = max(1, _CHUNK // max(width, 1))
    return [slice(i, min(i + rows, cells.count)) for i in range(0, cells.count, rows)]


def _enumeration_cells(
    shape: tuple[int, ...], granularities: Sequence[GranularityAttr], width: int
) -> _Cells | None:
    """Cells for enumerating ``width`` codes in each, within ENUMERATION_BUDGET."""
    return _cells(shape, granularities, ENUMERATION_BUDGET // max(width, 1))


def _take(params: _Params, rows: slice) -> _Params:
    return _Params(params.scale[rows], params.zero_point[rows])


# ---------------------------------------------------------------------------------------
# Proofs
# ---------------------------------------------------------------------------------------


def is_identity(step: Step, shape: tuple[int, ...]) -> bool:
    """True when ``step`` returns every input code unchanged (same storage type)."""
    if step.input.storage != step.output.storage:
        return False
    if step.input.runtime_zero_point or step.output.runtime_zero_point:
        return _is_identity_for_every_zero_point(step, shape)
    codes = storage_domain(step.input.storage)
    cells = _enumeration_cells(shape, [step.input.granularity, step.output.granularity], codes.size)
    if cells is None:
        return False
    source, target = _resolve(step.input, cells), _resolve(step.output, cells)
    if source is None or target is None:
        return False
    with np.errstate(all="ignore"):
        for rows in _chunks(cells, codes.size):
            src, dst = _take(source, rows), _take(target, rows)
            x = dequantize(codes, step.input.storage, src.scale, src.zero_point, step.expressed)
            out = quantize(
                x,
                dst.scale,
                dst.zero_point,
                step.output.storage,
                step.rounding,
                step.saturate,
                step.bounds,
            )
            if not np.array_equal(bits(out), np.broadcast_to(bits(codes), out.shape)):
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
        or step.input.zero_point is not step.output.zero_point
        or step.input.granularity != step.output.granularity
        or step.bounds != formats.integer_range(storage)
    ):
        return False
    lo, hi = step.bounds
    diffs = difference_domain(storage)
    cells = _enumeration_cells(shape, [step.input.granularity], diffs.size)
    if cells is None:
        return False
    source = _resolve(step.input, cells, zero_point=False)
    target = _resolve(step.output, cells, zero_point=False)
    if source is None or target is None:
        return False
    with np.errstate(all="ignore"):
        for rows in _chunks(cells, diffs.size):
            src, dst = _take(source, rows), _take(target, rows)
            x = dequantize(diffs, DIFFERENCE_TYPE, src.scale, src.zero_point, step.expressed)
            r = quantize(x, dst.scale, dst.zero_point, storage, step.rounding, True, None)
            exact = (r == diffs) | ((diffs == hi - lo) & (r >= diffs))
            exact |= (diffs == lo - hi) & (r <= diffs)
            if not np.all(exact):
                return False
    return True


def _input_domain(side: Side) -> tuple[np.ndarray, Attribute]:
    """Codes to enumerate for an input side and their type: the differences ``q - zp``
    (of DIFFERENCE_TYPE) for a runtime zero point, else the storage codes."""
    if side.runtime_zero_point and isinstance(side.storage, IntegerType):
        return difference_domain(side.storage), DIFFERENCE_TYPE
    return storage_domain(side.storage), side.storage


def _through_inner(
    codes: np.ndarray, code_type: Attribute, inner: Step, src, mid, view
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, x2)``: the codes dequantized with the inner step's input parameters ``src``,
    and what the outer step sees after the inner requantize (to ``mid``, read back with
    the outer input parameters ``view``), both in f32."""
    x = dequantize(codes, code_type, src.scale, src.zero_point)
    r1 = quantize(
        x, mid.scale, mid.zero_point, inner.output.storage, inner.rounding, inner.saturate,
        inner.bounds,
    )  # fmt: skip
    return x, dequantize(r1, inner.output.storage, view.scale, view.zero_point)


def inner_step_lossless(inner: Step, outer_input: Side, shape: tuple[int, ...]) -> bool:
    """dequantize(inner(q), outer_input) == dequantize(q, inner.input), bit for bit."""
    if inner_step_lossless_by_rule(inner, outer_input, shape):
        return True
    codes, code_type = _input_domain(inner.input)
    granularities = [inner.input.granularity, inner.output.granularity, outer_input.granularity]
    cells = _enumeration_cells(shape, granularities, codes.size)
    if cells is None:
        return False
    source = _resolve(inner.input, cells, zero_point=code_type is not DIFFERENCE_TYPE)
    middle = _resolve(inner.output, cells)
    seen = _resolve(outer_input, cells)
    if source is None or middle is None or seen is None:
        return False
    with np.errstate(all="ignore"):
        for rows in _chunks(cells, codes.size):
            src, mid, view = _take(source, rows), _take(middle, rows), _take(seen, rows)
            x, x2 = _through_inner(codes, code_type, inner, src, mid, view)
            if not np.array_equal(x.view(np.uint32), x2.view(np.uint32)):
                return False
    return True


def inner_step_lossless_by_rule(inner: Step, outer_input: Side, shape: tuple[int, ...]) -> bool:
    """The closed-form case: integer storages, ``s_in = k * s_mid``, nothing rounds or clamps.

    With d = q - zp_in, ``fl(d * s_in) = fl(k d * s_mid)`` (the same real number);
    dividing by ``s_mid`` gives ``k d`` within ``|k d| * 2**-22.99 < 0.01`` (``|k d| <=
    2**16``, products normal), which any nearest rounding returns exactly; ``k d + zp_mid``
    inside the mid range is stored unclamped, and the outer dequantize with the same mid
    parameters computes ``fl(k d * s_mid)`` again.
    """
    a, b = inner.input, inner.output
    if not (isinstance(a.storage, IntegerType) and isinstance(b.storage, IntegerType)):
        return False
    if inner.rounding not in _NEAREST_MODES or inner.bounds is None:
        return False
    cells = _cells(shape, [a.granularity, b.granularity, outer_input.granularity], RULE_CELL_LIMIT)
    if cells is None:
        return False
    source = _resolve(a, cells, zero_point=not a.runtime_zero_point)
    middle, seen = _resolve(b, cells), _resolve(outer_input, cells)
    if source is None or middle is None or seen is None:
        return False
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
    widest = np.maximum(np.abs(d_lo), np.abs(d_hi)).astype(np.float32)
    with np.errstate(all="ignore"):
        finite = np.isfinite(widest * source.scale)
    tiny = np.float32(np.finfo(np.float32).tiny)
    return bool(
        np.all(k >= 1)
        and np.all(k * s_mid == s_in)
        and np.all(source.scale >= tiny)
        and np.all(finite)
        and np.all(d_lo * k + middle.zero_point >= inner.bounds[0])
        and np.all(d_hi * k + middle.zero_point <= inner.bounds[1])
    )


@dataclass(frozen=True)
class ChainComparison:
    """The chain against the single requantize over every input code."""

    exact: bool
    """Same bits everywhere."""
    worst_error: float
    """max |folded - chained| in output units (0 when only NaN payloads differ)."""


def compare_chain(
    inner: Step, outer: Step, folded: Step, shape: tuple[int, ...]
) -> ChainComparison | None:
    """Evaluate ``outer(inner(q))`` and ``folded(q)`` on every code; None if not enumerable
    (a runtime parameter, a dynamic blocked dimension, or over the budget)."""
    codes = storage_domain(inner.input.storage)
    sides = [inner.input, inner.output, outer.input, outer.output]
    cells = _enumeration_cells(shape, [s.granularity for s in sides], codes.size)
    if cells is None:
        return None
    resolved = [_resolve(s, cells) for s in sides]
    if any(p is None for p in resolved):
        return None
    source, middle, seen, target = (p for p in resolved if p is not None)
    exact, worst = True, 0.0
    with np.errstate(all="ignore"):
        for rows in _chunks(cells, codes.size):
            src, mid = _take(source, rows), _take(middle, rows)
            view, dst = _take(seen, rows), _take(target, rows)
            x, x2 = _through_inner(codes, inner.input.storage, inner, src, mid, view)
            chained = quantize(
                x2,
                dst.scale,
                dst.zero_point,
                outer.output.storage,
                outer.rounding,
                outer.saturate,
                outer.bounds,
            )
            direct = quantize(
                x,
                dst.scale,
                dst.zero_point,
                folded.output.storage,
                folded.rounding,
                folded.saturate,
                folded.bounds,
            )
            if not np.array_equal(bits(direct), bits(chained)):
                exact = False
                worst = max(worst, worst_error(direct, chained))
    return ChainComparison(exact, worst)
