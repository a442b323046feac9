"""fold-quant: folds of quant op pairs and requantize chains that change no result bits.

SPEC.md section 4 allows a rewrite only where it provably changes the bits of no output.
Each pattern below proves that before it rewrites, and otherwise leaves the IR alone:

    quantize(dequantize(%q))             -> %q               (FoldQuantizeOfDequantize)
    quantize(dequantize(%q) : f32)       -> requantize(%q)   (FuseDequantizeQuantize)
    requantize(%q) with in == out        -> %q               (RemoveIdentityRequantize)
    requantize(requantize(%q))           -> requantize(%q)   (FoldRequantizeChain)

* dequantize -> quantize is a requantize by definition (SPEC section 3: requantize means
  ``quantize(dequantize(q) as f32)``), so that fusion needs no proof beyond an f32
  intermediate: an f16 / bf16 one rounds in between, which requantize cannot express.
* ``(q - zp) * s / s`` is NOT always ``q - zp`` in f32: it is one f32 ulp off for a good
  share of (d, s) pairs (d = q - zp; e.g. 15 * 0.3 / 0.3 = 14.999999). For ``|d| <= 2**16``
  and ``d * s`` finite and normal the error is below ``|d| * 2**-22.99 < 0.01``, so every
  *nearest* rounding mode gives ``d`` back, but ``toward_zero`` does not (14.999999 -> 14),
  and an overflowing product breaks it too. Rather than trust a rule, the identity folds
  evaluate the op on every code of the storage type (at most 2**16) for every distinct
  constant parameter at compile time, bit-exactly with the SPEC semantics (the evaluator
  section below), and fold exactly when every code comes back. (The enumeration also
  shows the SPEC condition is sufficient, not necessary: a subnormal scale keeps integer
  codes exact.) Runtime scales are left alone: a runtime scale may be 0, inf, NaN or
  huge, and no rule holds for all of those. A runtime zero point is accepted when it is
  the same SSA value on both sides: then only ``d`` matters and every ``d`` of the
  storage's difference range ``[qmin - qmax, qmax - qmin]`` is enumerated.
* A requantize chain ``R2(R1(q))`` folds to ``requantize(q, in = R1.in, out = R2.out)``
  when either
  (a) the inner step is lossless as the outer step sees it: dequantizing R1's result with
  R2's input parameters gives the f32 bits ``dequantize(q)`` with R1's input parameters
  gives, for every q. Then the outer quantize sees the same f32 values, whatever R2's
  output parameters are (they may be runtime values). Proven by rule where that is
  closed-form (integer storages, ``s_in = k * s_mid`` for an integer ``k``, same mid
  parameters on both sides, nearest rounding, no clamp, no overflow / underflow: the
  intermediate then holds ``k * d + zp_mid`` exactly), else by enumeration;
  (b) or, with every parameter constant, the chain and the single requantize agree on
  every input code (enumeration; this also finds double roundings that agree, e.g.
  ``rne(rne(d / 2) / 2) == rne(d / 4)``).
  With ``lossy=true`` a chain that is not exact but enumerable is folded too, and its
  worst-case error (max |folded - chained| over the domain, in output units) is reported
  as a remark on stderr. Nothing lossy happens without the option.
* ``dequantize(quantize(x))`` is never removed, not even with ``lossy=true``: its error
  depends on the float input, which cannot be enumerated, so no worst case can be reported.

Every op the pass creates carries a ``FusedLoc`` of the locations of the ops it merges.
An enumeration costs at most ENUMERATION_BUDGET element evaluations (cells x codes);
beyond that the fold is not attempted. Comparisons are on bits: float storage codes as bytes (NaN payloads included: e5m2 NaN
codes 0x7D / 0x7F come back as 0x7E, so an e5m2 round trip never folds), integer codes as
values.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ml_dtypes
import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    FusedLoc,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    NoneAttr,
    TensorType,
    UnknownLoc,
)
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
from qopt.qdialect import formats
from qopt.qdialect.attrs import GranularityAttr, PerAxisAttr, PerTensorAttr
from qopt.qdialect.ops import DequantizeOp, QuantizeOp, QuantOp, RequantizeOp

ENUMERATION_BUDGET = 1 << 22
"""Most element evaluations (parameter cells x storage codes) one enumeration may spend;
beyond it the fold is not attempted (the IR stays as it is)."""

RULE_CELL_LIMIT = 1 << 22
"""Most parameter cells the closed-form chain rule checks (no enumeration of codes)."""

_CHUNK = 1 << 20
"""Elements evaluated per numpy call (bounds the memory of a proof)."""

# ---------------------------------------------------------------------------------------
# The compile-time exact evaluator: SPEC section 3 in numpy, for constant parameters.
#
# Arrays are (cells, codes): one row per distinct parameter combination, one column per
# storage code. All arithmetic is IEEE f32 like the oracle (tests/oracle.py) and the
# lowering; rounding of the f32 quotient is done in f64, where floor(t + 0.5) is exact.
# ---------------------------------------------------------------------------------------

_FLOAT_DTYPES: dict[str, np.dtype] = {
    "f8E4M3FN": np.dtype(ml_dtypes.float8_e4m3fn),
    "f8E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "f4E2M1FN": np.dtype(ml_dtypes.float4_e2m1fn),
    "f32": np.dtype(np.float32),
    "f16": np.dtype(np.float16),
    "bf16": np.dtype(ml_dtypes.bfloat16),
}

_FLOAT_STORAGE_DTYPES = frozenset(_FLOAT_DTYPES[name] for name in formats.FLOAT_STORAGE_NAMES)


_ROUNDERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "nearest_even": np.rint,
    "nearest_away": lambda t: np.copysign(np.floor(np.abs(t) + 0.5), t),
    "half_up": lambda t: np.floor(t + 0.5),
    "toward_zero": np.trunc,
}

_NEAREST_MODES = frozenset({"nearest_even", "nearest_away", "half_up"})


def _storage_domain(storage: Attribute) -> np.ndarray:
    """Every code of a storage type: int64 values, or the float format's codes."""
    if isinstance(storage, IntegerType):
        lo, hi = formats.integer_range(storage)
        return np.arange(lo, hi + 1, dtype=np.int64)
    dtype = _FLOAT_DTYPES[formats.type_name(storage)]
    return np.arange(1 << formats.bit_width(storage), dtype=np.uint8).view(dtype)


def _difference_domain(storage: IntegerType) -> np.ndarray:
    """Every ``q - zp`` of a storage type when the zero point is a runtime value."""
    lo, hi = formats.integer_range(storage)
    return np.arange(lo - hi, hi - lo + 1, dtype=np.int64)


def _dequantize(
    codes: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, expressed: str
) -> np.ndarray:
    """``(f32(q) - f32(zp)) * s`` in f32 (float storage: ``f32(q) * s``), then rounded to
    ``expressed`` (f32, f16 or bf16)."""
    if _is_float_codes(codes):
        x = codes.astype(np.float32) * scale
    else:
        x = (codes.astype(np.float32) - zero_point.astype(np.float32)) * scale
    if expressed != "f32":
        x = x.astype(_FLOAT_DTYPES[expressed])
    return x


def _quantize(
    x: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray,
    storage: Attribute,
    rounding: str,
    saturate: bool,
    bounds: tuple[float, float] | None,
) -> np.ndarray:
    """``clamp(round(x / s) + zp)`` (NaN -> zp) or ``cast_rne(clip(x / s))``; f32 divide.

    ``bounds`` None means no clamp (used when the codes are differences ``q - zp``).
    """
    t = x.astype(np.float32) / scale
    if not isinstance(storage, IntegerType):
        name = formats.type_name(storage)
        if saturate:
            limit = np.float32(formats.FLOAT_FORMATS[name].max_value)
            t = np.clip(t, -limit, limit)
        return t.astype(_FLOAT_DTYPES[name])
    r = _ROUNDERS[rounding](t.astype(np.float64))
    r = np.where(np.isnan(r), 0.0, r) + zero_point
    if bounds is not None:
        r = np.clip(r, bounds[0], bounds[1])
    return r


def _is_float_codes(codes: np.ndarray) -> bool:
    # not dtype.kind: ml_dtypes gives float8_e5m2 kind 'f' but float8_e4m3fn kind 'V'
    return codes.dtype in _FLOAT_STORAGE_DTYPES


def _bits(codes: np.ndarray) -> np.ndarray:
    """Comparable bits of codes: float storage as its bytes, integer codes as values."""
    return codes.view(np.uint8) if _is_float_codes(codes) else codes


def _worst_error(folded: np.ndarray, chained: np.ndarray) -> float:
    """max |folded - chained| in output units (code values); NaN against NaN is 0, NaN
    against a number is inf."""
    a, b = folded.astype(np.float64), chained.astype(np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff = np.where(same, 0.0, np.abs(a - b))
    return float(np.max(np.where(np.isnan(diff), np.inf, diff), initial=0.0))


# ---------------------------------------------------------------------------------------
# Constant parameters, resolved per cell.
#
# A cell is one distinct combination of parameter indices over the data: along each
# dimension, data indices that read the same parameter entry of every granularity
# involved are equivalent, so the cells are the product over dimensions of those classes
# (one cell for per-tensor, n for per_axis over n channels, ...).
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Side:
    """One quantized representation: storage type, scale, zero point, granularity."""

    storage: Attribute
    scale: SSAValue | Attribute | None
    zero_point: SSAValue | Attribute | None
    granularity: GranularityAttr

    @staticmethod
    def of(op: QuantOp, prefix: str, storage: Attribute) -> _Side:
        return _Side(
            storage,
            op.param(f"{prefix}scale"),
            op.param(f"{prefix}zero_point"),
            op.granularity_of(f"{prefix}granularity"),
        )

    @property
    def runtime_zero_point(self) -> bool:
        return isinstance(self.zero_point, SSAValue)


@dataclass(frozen=True)
class _Step:
    """``quantize(dequantize(q, input) as expressed, output)``: a requantize or a q/dq pair."""

    input: _Side
    output: _Side
    expressed: str
    rounding: str
    saturate: bool
    bounds: tuple[int, int] | None
    """Output clamp range of integer storage (the narrow range when given)."""


def _requantize_step(op: RequantizeOp) -> _Step:
    out_storage = _element(op.result)
    return _Step(
        _Side.of(op, "in_", _element(op.input)),
        _Side.of(op, "out_", out_storage),
        "f32",
        op.rounding_mode,
        op.saturate_flag,
        op.storage_bounds(out_storage),
    )


def _pair_step(dq: DequantizeOp, q: QuantizeOp) -> _Step:
    out_storage = _element(q.result)
    return _Step(
        _Side.of(dq, "", _element(dq.input)),
        _Side.of(q, "", out_storage),
        formats.type_name(_element(dq.result)),
        q.rounding_mode,
        q.saturate_flag,
        q.storage_bounds(out_storage),
    )


def _element(value: SSAValue) -> Attribute:
    assert isinstance(value.type, TensorType)
    return value.type.element_type


def _shape(value: SSAValue) -> tuple[int, ...]:
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


def _resolve(side: _Side, cells: _Cells, *, zero_point: bool = True) -> _Params | None:
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


def _is_identity(step: _Step, shape: tuple[int, ...]) -> bool:
    """True when ``step`` returns every input code unchanged (same storage type)."""
    if step.input.storage != step.output.storage:
        return False
    if step.input.runtime_zero_point or step.output.runtime_zero_point:
        return _is_identity_for_every_zero_point(step, shape)
    codes = _storage_domain(step.input.storage)
    cells = _enumeration_cells(shape, [step.input.granularity, step.output.granularity], codes.size)
    if cells is None:
        return False
    source, target = _resolve(step.input, cells), _resolve(step.output, cells)
    if source is None or target is None:
        return False
    with np.errstate(all="ignore"):
        for rows in _chunks(cells, codes.size):
            src, dst = _take(source, rows), _take(target, rows)
            x = _dequantize(codes, src.scale, src.zero_point, step.expressed)
            out = _quantize(
                x,
                dst.scale,
                dst.zero_point,
                step.output.storage,
                step.rounding,
                step.saturate,
                step.bounds,
            )
            if not np.array_equal(_bits(out), np.broadcast_to(_bits(codes), out.shape)):
                return False
    return True


def _is_identity_for_every_zero_point(step: _Step, shape: tuple[int, ...]) -> bool:
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
    diffs = _difference_domain(storage)
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
            x = _dequantize(diffs, src.scale, src.zero_point, step.expressed)
            r = _quantize(x, dst.scale, dst.zero_point, storage, step.rounding, True, None)
            exact = (r == diffs) | ((diffs == hi - lo) & (r >= diffs))
            exact |= (diffs == lo - hi) & (r <= diffs)
            if not np.all(exact):
                return False
    return True


def _input_domain(side: _Side) -> tuple[np.ndarray, bool]:
    """Codes to enumerate for an input side, and whether they are differences ``q - zp``."""
    if side.runtime_zero_point and isinstance(side.storage, IntegerType):
        return _difference_domain(side.storage), True
    return _storage_domain(side.storage), False


def _through_inner(
    codes: np.ndarray, inner: _Step, src, mid, view
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, x2)``: the codes dequantized with the inner step's input parameters ``src``,
    and what the outer step sees after the inner requantize (to ``mid``, read back with
    the outer input parameters ``view``), both in f32."""
    x = _dequantize(codes, src.scale, src.zero_point, "f32")
    r1 = _quantize(
        x, mid.scale, mid.zero_point, inner.output.storage, inner.rounding, inner.saturate,
        inner.bounds,
    )  # fmt: skip
    return x, _dequantize(r1, view.scale, view.zero_point, "f32")


def _inner_step_lossless(inner: _Step, outer_input: _Side, shape: tuple[int, ...]) -> bool:
    """dequantize(inner(q), outer_input) == dequantize(q, inner.input), bit for bit."""
    if _inner_step_lossless_by_rule(inner, outer_input, shape):
        return True
    codes, differences = _input_domain(inner.input)
    granularities = [inner.input.granularity, inner.output.granularity, outer_input.granularity]
    cells = _enumeration_cells(shape, granularities, codes.size)
    if cells is None:
        return False
    source = _resolve(inner.input, cells, zero_point=not differences)
    middle = _resolve(inner.output, cells)
    seen = _resolve(outer_input, cells)
    if source is None or middle is None or seen is None:
        return False
    with np.errstate(all="ignore"):
        for rows in _chunks(cells, codes.size):
            src, mid, view = _take(source, rows), _take(middle, rows), _take(seen, rows)
            x, x2 = _through_inner(codes, inner, src, mid, view)
            if not np.array_equal(x.view(np.uint32), x2.view(np.uint32)):
                return False
    return True


def _inner_step_lossless_by_rule(inner: _Step, outer_input: _Side, shape: tuple[int, ...]) -> bool:
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
class _ChainComparison:
    """The chain against the single requantize over every input code."""

    exact: bool
    """Same bits everywhere."""
    worst_error: float
    """max |folded - chained| in output units (0 when only NaN payloads differ)."""


def _compare_chain(
    inner: _Step, outer: _Step, folded: _Step, shape: tuple[int, ...]
) -> _ChainComparison | None:
    """Evaluate ``outer(inner(q))`` and ``folded(q)`` on every code; None if not enumerable
    (a runtime parameter, a dynamic blocked dimension, or over the budget)."""
    codes = _storage_domain(inner.input.storage)
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
            x, x2 = _through_inner(codes, inner, src, mid, view)
            chained = _quantize(
                x2,
                dst.scale,
                dst.zero_point,
                outer.output.storage,
                outer.rounding,
                outer.saturate,
                outer.bounds,
            )
            direct = _quantize(
                x,
                dst.scale,
                dst.zero_point,
                folded.output.storage,
                folded.rounding,
                folded.saturate,
                folded.bounds,
            )
            if not np.array_equal(_bits(direct), _bits(chained)):
                exact = False
                worst = max(worst, _worst_error(direct, chained))
    return _ChainComparison(exact, worst)


# ---------------------------------------------------------------------------------------
# Building the replacement ops
# ---------------------------------------------------------------------------------------


def _fused_location(*ops: Operation) -> Attribute:
    """``loc(fused[...])`` of the ops' locations (nested fused locations flattened)."""
    locations: list[Attribute] = []
    for op in ops:
        loc = op.location
        inner = loc.locations.data if isinstance(loc, FusedLoc) else (loc,)
        for item in inner:
            if not isinstance(item, UnknownLoc) and item not in locations:
                locations.append(item)
    if not locations:
        return UnknownLoc()
    if len(locations) == 1:
        return locations[0]
    return FusedLoc(locations, NoneAttr())


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
) -> RequantizeOp:
    """A requantize of ``input`` taking its in parameters (and in range, renamed by
    ``in_range``) from ``in_op`` and its out parameters, rounding, saturation and range
    from ``out_op``; located at the fused locations of both."""
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
    op.location = _fused_location(in_op, out_op)
    return op


_OUTPUT_PROPERTIES = {n: n for n in ("storage_min", "storage_max", "rounding", "saturate")}
_DEQUANTIZE_RANGE = {"storage_min": "in_storage_min", "storage_max": "in_storage_max"}
_REQUANTIZE_IN_RANGE = {"in_storage_min": "in_storage_min", "in_storage_max": "in_storage_max"}


def _plain_dequantize(op: Operation | Block) -> DequantizeOp | None:
    """The op as a dequantize without the minval form or a double-quant scale."""
    if not isinstance(op, DequantizeOp):
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


class FoldQuantizeOfDequantize(RewritePattern):
    """``quantize(dequantize(%q))`` -> ``%q`` where that is the identity on every code.

    Same storage type on both ends, constant scales (or one runtime zero point used by
    both), proven by enumerating the storage codes per parameter cell; any expressed type
    in between (its rounding is part of the evaluation).
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: QuantizeOp, rewriter: PatternRewriter) -> None:
        dq = _plain_dequantize(op.input.owner)
        if dq is None or op.param("minval") is not None:
            return
        if dq.input.type != op.result.type:
            return
        if not _is_identity(_pair_step(dq, op), _shape(op.result)):
            return
        rewriter.replace(op, [], [dq.input])
        _erase_if_dead(dq, rewriter)


class FuseDequantizeQuantize(RewritePattern):
    """``quantize(dequantize(%q) : f32)`` -> ``requantize(%q)``: the definition of requantize.

    Only when the dequantized f32 values are an intermediate (every user is a quantize,
    so the dequantize goes away); an f16 / bf16 intermediate rounds, which requantize
    (f32 in between) cannot express.
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: QuantizeOp, rewriter: PatternRewriter) -> None:
        dq = _plain_dequantize(op.input.owner)
        if dq is None or op.param("minval") is not None:
            return
        if formats.type_name(_element(dq.result)) != "f32":
            return
        if not all(isinstance(use.operation, QuantizeOp) for use in dq.result.uses):
            return
        requantize = _build_requantize(
            dq.input, in_op=dq, in_prefix="", in_range=_DEQUANTIZE_RANGE, out_op=op, out_prefix=""
        )
        rewriter.replace(op, requantize)
        _erase_if_dead(dq, rewriter)


class RemoveIdentityRequantize(RewritePattern):
    """``requantize(%q)`` -> ``%q`` where it returns every code unchanged (enumerated)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: RequantizeOp, rewriter: PatternRewriter) -> None:
        if op.input.type != op.result.type:
            return
        if not _is_identity(_requantize_step(op), _shape(op.result)):
            return
        rewriter.replace(op, [], [op.input])


@dataclass
class FoldRequantizeChain(RewritePattern):
    """``requantize(requantize(%q))`` -> one requantize (in: the inner's, out: the outer's).

    Exact when the inner step is lossless for the outer one (rule or enumeration) or the
    two agree with the single step on every code; with ``lossy`` any enumerable chain,
    reporting the worst-case error as a remark.
    """

    lossy: bool = False

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: RequantizeOp, rewriter: PatternRewriter) -> None:
        inner = op.input.owner
        if not isinstance(inner, RequantizeOp):
            return
        inner_step, outer_step = _requantize_step(inner), _requantize_step(op)
        folded_step = _Step(
            inner_step.input,
            outer_step.output,
            "f32",
            outer_step.rounding,
            outer_step.saturate,
            outer_step.bounds,
        )
        shape = _shape(op.result)
        comparison = None
        if not _inner_step_lossless(inner_step, outer_step.input, shape):
            comparison = _compare_chain(inner_step, outer_step, folded_step, shape)
            if comparison is None or not (comparison.exact or self.lossy):
                return
        folded = _build_requantize(
            inner.input,
            in_op=inner,
            in_prefix="in_",
            in_range=_REQUANTIZE_IN_RANGE,
            out_op=op,
            out_prefix="out_",
        )
        if comparison is not None and not comparison.exact:
            error = _number(comparison.worst_error)
            _remark(op, f"lossy fold of requantize chain: worst-case error {error} output units")
        rewriter.replace(op, folded)
        _erase_if_dead(inner, rewriter)


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
    """Exact folds of q/dq pairs and requantize chains (SPEC section 4).

    ``lossy=true`` also folds requantize chains that are not exact but can be enumerated,
    reporting each one's worst-case error in output units as a remark on stderr.
    """

    name = "fold-quant"

    lossy: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns: list[RewritePattern] = [
            FoldQuantizeOfDequantize(),
            FuseDequantizeQuantize(),
            RemoveIdentityRequantize(),
            FoldRequantizeChain(self.lossy),
        ]
        # No blanket dead-code elimination: the patterns erase exactly the producers
        # their rewrite made dead, and leave the user's other ops alone.
        applier = GreedyRewritePatternApplier(patterns, dce_enabled=False)
        PatternRewriteWalker(applier).rewrite_module(op)
