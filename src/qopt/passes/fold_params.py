"""fold-quant's view of a chain: its steps, and their constant parameters as distinct tuples.

A proof of fold-quant (fold_proofs.py) evaluates a chain of steps on every input code once
per *distinct parameter tuple*: the combination of every side's scale and zero point that
some data element sees. Data elements that see the same tuple compute the same function
of their code, so one evaluation covers them all, however many channels or blocks share
it (a per-axis i16 tensor of 100,000 channels with one repeated scale is one tuple).

The tuples are found in one of two ways:

* every side has the same granularity: element ``i`` reads entry ``idx(i)`` of every
  parameter tensor, so the tuples are among the rows of the parameter tensors read
  entry by entry (broadcast against each other). No data shape is needed, so this also
  holds for dynamic dimensions;
* otherwise *cells*: along each dimension, data indices that read the same entry of every
  granularity are equivalent; the cells are the product of those classes, each parameter
  is read at a representative of every cell, and the distinct rows are kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    FusedLoc,
    IntegerAttr,
    NoneAttr,
    TensorType,
    UnknownLoc,
    f32,
)
from xdsl.ir import Attribute, Operation, SSAValue

from qopt.qdialect.attrs import GranularityAttr, PerAxisAttr, PerTensorAttr
from qopt.qdialect.ops import DequantizeOp, QuantizeOp, QuantOp, RequantizeOp
from qopt.qdialect.rescale import RescaleOp

CELL_LIMIT = 1 << 22
"""Most cells (index classes of mixed granularities) read to find the distinct tuples."""


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

    @property
    def constant(self) -> bool:
        return not isinstance(self.scale, SSAValue) and not self.runtime_zero_point


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
    zero_point_order: str = "after_rounding"
    """Where the quantize adds the zero point (docs/semantics.md section 3)."""


def requantize_step(op: RequantizeOp) -> Step:
    out_storage = element_of(op.result)
    return Step(
        Side.of(op, "in_", element_of(op.input)),
        Side.of(op, "out_", out_storage),
        f32,
        op.rounding_mode,
        op.saturate_flag,
        op.storage_bounds(out_storage),
        op.zp_order,
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
        q.zp_order,
    )


def with_expressed(step: Step, expressed: Attribute) -> Step:
    """The same step with another expressed type in between (f32: a requantize)."""
    return Step(
        step.input,
        step.output,
        expressed,
        step.rounding,
        step.saturate,
        step.bounds,
        step.zero_point_order,
    )


def composed(first: Step, last: Step) -> Step:
    """The one requantize a chain from ``first`` to ``last`` folds into."""
    return Step(
        first.input,
        last.output,
        f32,
        last.rounding,
        last.saturate,
        last.bounds,
        last.zero_point_order,
    )


def element_of(value: SSAValue) -> Attribute:
    assert isinstance(value.type, TensorType)
    return value.type.element_type


def shape_of(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


def fused_location(*ops: Operation) -> Attribute:
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


_KNOWN_PROPERTIES = {
    QuantizeOp: frozenset(
        ("granularity", "minval_const", "rounding", "saturate", "scale_const", "storage_max",
         "storage_min", "zero_point_const", "zero_point_order")
    ),
    DequantizeOp: frozenset(
        ("double_quant_const", "granularity", "minval_const", "scale_const", "storage_max",
         "storage_min", "zero_point_const")
    ),
    RequantizeOp: frozenset(
        ("in_granularity", "in_scale_const", "in_storage_max", "in_storage_min",
         "in_zero_point_const", "out_granularity", "out_scale_const", "out_zero_point_const",
         "rounding", "saturate", "storage_max", "storage_min", "zero_point_order")
    ),
    RescaleOp: frozenset(
        ("granularity", "in_zero_point_const", "input_unsigned", "multiplier_const",
         "out_zero_point_const", "output_unsigned", "rounding", "saturate", "shift_const",
         "storage_max", "storage_min")
    ),
}  # fmt: skip
"""The properties whose meaning the proofs model. An op carrying another one (a property
added to the dialect later, e.g. a zero-point order) is left alone until the proofs and
fold_eval learn it: folding it could drop or misread it."""


def understood(op: Operation) -> bool:
    """The op carries only properties the proofs model (segment sizes aside)."""
    known = _KNOWN_PROPERTIES.get(type(op))
    names = set(op.properties) - {"operandSegmentSizes"}
    return known is not None and names <= known


# ---------------------------------------------------------------------------------------
# Distinct parameter tuples
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """A side's constant scale (f32) and zero point (int64), one row per tuple: (n, 1)."""

    scale: np.ndarray
    zero_point: np.ndarray

    def take(self, rows: slice | np.ndarray) -> Params:
        return Params(self.scale[rows], self.zero_point[rows])


def const_array(attr: Attribute) -> np.ndarray | None:
    """The value of a constant parameter attribute (None for anything else)."""
    if isinstance(attr, FloatAttr | IntegerAttr):
        return np.array(attr.value.data)
    if isinstance(attr, DenseIntOrFPElementsAttr):
        shape = attr.get_shape() or ()
        fmt = getattr(attr.get_element_type(), "format", None)
        if isinstance(fmt, str):  # the packed bytes as they are: no Python list per value
            values = np.frombuffer(attr.data.data, dtype=np.dtype(fmt))
            if values.size == math.prod(shape):
                return values.reshape(shape)
        return np.array(attr.get_values()).reshape(shape)
    return None


def distinct_tuples(
    sides: Sequence[Side], shape: tuple[int, ...], zero_points: Sequence[bool] | None = None
) -> list[Params] | None:
    """Every side's parameters, one row per distinct tuple (the same rows for all sides).

    ``zero_points[k]`` False reads side k's zero point as 0 (a runtime zero point whose
    differences are enumerated instead). None when a parameter is a runtime value or the
    tuples cannot be found within CELL_LIMIT cells.
    """
    wanted = list(zero_points) if zero_points is not None else [True] * len(sides)
    raw: list[tuple[np.ndarray, np.ndarray]] = []
    for side, want_zp in zip(sides, wanted):
        scale = _param_values(side.scale, 1.0, np.float32)
        zp = _param_values(side.zero_point if want_zp else None, 0, np.int64)
        if scale is None or zp is None:
            return None
        raw.append((scale, zp))
    columns = _entrywise(raw) if len({s.granularity for s in sides}) == 1 else None
    if columns is None:
        columns = _by_cells(sides, raw, shape)
    if columns is None:
        return None
    rows = _distinct_rows(columns)
    return [
        Params(
            np.ascontiguousarray(columns[2 * k][rows, None]).astype(np.float32),
            np.ascontiguousarray(columns[2 * k + 1][rows, None]).astype(np.int64),
        )
        for k in range(len(sides))
    ]


def _distinct_rows(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Indices of the first row of every distinct row of the columns, compared on bits
    (``-0.0`` is not ``0.0``, NaN payloads differ). A row's label is built column by column
    from 1-D uniques, much faster than ``np.unique(axis=0)`` on many rows."""
    label = np.zeros(columns[0].size, dtype=np.int64)
    for column in columns:
        keys = np.ascontiguousarray(column)
        if keys.dtype == np.float32:
            keys = keys.view(np.uint32)
        keys = keys.astype(np.int64)
        if keys.size and np.all(keys == keys[0]):
            continue
        _, inverse = np.unique(keys, return_inverse=True)
        _, label = np.unique(label * (int(inverse.max()) + 1) + inverse, return_inverse=True)
    _, first = np.unique(label, return_index=True)
    return np.sort(first)


def _param_values(
    param: SSAValue | Attribute | None, default: float, dtype: type
) -> np.ndarray | None:
    if param is None:
        return np.array(default, dtype=dtype)
    if isinstance(param, SSAValue):
        return None
    values = const_array(param)
    return None if values is None else values.astype(dtype)


def _entrywise(raw: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray] | None:
    """One granularity for all: the parameter tensors broadcast against each other."""
    arrays = [a for pair in raw for a in pair]
    if all(a.size == 1 for a in arrays):
        return [a.reshape(1) for a in arrays]
    non_scalar = [a for a in arrays if a.size != 1]
    if any(a.shape != non_scalar[0].shape for a in non_scalar):
        return None
    return [np.broadcast_to(a.reshape(()) if a.size == 1 else a, non_scalar[0].shape).ravel()
            for a in arrays]  # fmt: skip


def _by_cells(
    sides: Sequence[Side], raw: list[tuple[np.ndarray, np.ndarray]], shape: tuple[int, ...]
) -> list[np.ndarray] | None:
    coords = _cell_coordinates(shape, [s.granularity for s in sides])
    if coords is None:
        return None
    columns: list[np.ndarray] = []
    for side, (scale, zp) in zip(sides, raw):
        for values in (scale, zp):
            picked = _at(values, side.granularity, shape, coords)
            if picked is None:
                return None
            columns.append(picked)
    return columns


def _cell_coordinates(
    shape: tuple[int, ...], granularities: Sequence[GranularityAttr]
) -> tuple[np.ndarray, ...] | None:
    """A representative data index of every cell (one flat array per dimension); None for
    a dynamic dimension that some granularity splits, or more than CELL_LIMIT cells."""
    representatives: list[np.ndarray] = []
    for k, extent in enumerate(shape):
        blocks = [g.raw_block_shape(len(shape))[k] for g in granularities]
        if extent < 0:
            if any(b != -1 for b in blocks):
                return None
            representatives.append(np.zeros(1, dtype=np.int64))
            continue
        index = np.arange(extent, dtype=np.int64)
        keys = np.stack([index // (max(extent, 1) if b == -1 else b) for b in blocks], axis=1)
        _, first = np.unique(keys, axis=0, return_index=True)
        representatives.append(index[np.sort(first)])
    if math.prod(len(r) for r in representatives) > CELL_LIMIT:
        return None
    if not shape:
        return ()
    grid = np.meshgrid(*representatives, indexing="ij")
    return tuple(g.ravel() for g in grid)


def _at(
    values: np.ndarray,
    granularity: GranularityAttr,
    shape: tuple[int, ...],
    coords: tuple[np.ndarray, ...],
) -> np.ndarray | None:
    count = coords[0].size if coords else 1
    if isinstance(granularity, PerTensorAttr) or values.size == 1:
        return np.broadcast_to(values.reshape(()), (count,))
    if isinstance(granularity, PerAxisAttr):
        return values[coords[granularity.axis]]
    blocks = granularity.block_shape(shape)
    return values[tuple(c // b for c, b in zip(coords, blocks))]
