"""How each quant op is lowered: the choice ``choose-quant-lowering`` makes, as data.

``choose-quant-lowering`` writes the choice into the discardable attribute ``lowering`` on
every quant op; ``lower-quant`` reads it back with :func:`lowering_of` (and annotates an
unannotated module with :func:`annotate_lowerings` first). Both passes import this module
and neither imports the other. The cost model itself is explained in
choose_quant_lowering.py's docstring; here are its rules (:func:`choose_lowering`), the
table layout a ``lut`` requantize needs (:func:`lut_shape`), and the fusions of a producer
into its only user that a ``fused`` lowering makes (:func:`pack_fusing`,
:func:`unpack_fusing`, :func:`dynamic_pack_fusing`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.dialects.builtin import IntegerType, ModuleOp, StringAttr, TensorType
from xdsl.ir import Operation

from qopt.qdialect.attrs import PerAxisAttr, PerTensorAttr
from qopt.qdialect.ops import (
    QUANT_OPS,
    DequantizeOp,
    DynamicQuantizeOp,
    FakeQuantizeOp,
    PackOp,
    QuantizeOp,
    RequantizeOp,
    UnpackOp,
)

LOWERING_ATTR = "lowering"
"""The discardable attribute ``choose-quant-lowering`` sets on each quant op."""

LOWERINGS = ("fused", "composite", "lut")
"""The values of the ``lowering`` attribute."""

MODES = ("auto", "fused", "composite")
"""The values of choose-quant-lowering's ``mode`` option."""

LUT_MIN_RATIO = 16
"""A lookup table pays off when the tensor has this many elements per table entry."""


@dataclass(frozen=True)
class LutShape:
    """How a lookup table implements a requantize: ``channels`` tables (one per index of
    ``axis``, or one table when ``axis`` is None) of ``entries`` = 2^bits codes each."""

    axis: int | None
    channels: int
    entries: int


def lut_shape(op: RequantizeOp) -> LutShape | None:
    """The table layout of a requantize, or None where a table does not apply: input
    wider than 8 bits or float, blocked parameters, or per-axis on two different axes."""
    assert isinstance(op.input.type, TensorType)
    in_type = op.input.type.element_type
    if not isinstance(in_type, IntegerType) or in_type.width.data > 8:
        return None
    axes: set[int] = set()
    for prefix in ("in_", "out_"):
        granularity = op.granularity_of(f"{prefix}granularity")
        match granularity:
            case PerTensorAttr():
                pass
            case PerAxisAttr():
                axes.add(granularity.axis)
            case _:
                return None
    if len(axes) > 1:
        return None
    axis = next(iter(axes), None)
    channels = 1 if axis is None else op.input.type.get_shape()[axis]
    if channels < 0:
        return None  # a table per channel of a dynamic number of channels
    return LutShape(axis, channels, 1 << in_type.width.data)


def lut_pays_off(op: RequantizeOp) -> bool:
    """``N >= LUT_MIN_RATIO * T`` for a requantize a table can implement."""
    layout = lut_shape(op)
    if layout is None:
        return False
    assert isinstance(op.input.type, TensorType)
    if any(n < 0 for n in op.input.type.get_shape()):
        return False  # unknown size: the fused form, which is never much slower
    elements = math.prod(op.input.type.get_shape())
    return elements >= LUT_MIN_RATIO * layout.channels * layout.entries


def pack_can_fuse(op: PackOp) -> bool:
    """The pack's codes come from a quantize or dynamic_quantize used by nothing else."""
    producer = op.input.owner
    if isinstance(producer, QuantizeOp):
        return producer.result.has_one_use()
    return isinstance(producer, DynamicQuantizeOp) and producer.data.has_one_use()


def choose_lowering(op: Operation, mode: str = "auto", allow_lut: bool = False) -> str:
    """The lowering of one quant op under ``mode`` (see choose_quant_lowering.py)."""
    match op:
        case RequantizeOp():
            if mode != "auto":
                return mode
            return "lut" if allow_lut and lut_pays_off(op) else "fused"
        case DynamicQuantizeOp():
            return "composite" if mode == "auto" else mode
        case FakeQuantizeOp():
            return "fused" if mode == "auto" else mode
        case PackOp():
            if mode != "auto":
                return mode
            return "fused" if pack_can_fuse(op) else "composite"
        case DequantizeOp():
            return "composite" if mode == "composite" else "fused"
        case _:
            return "fused"


def annotate_lowerings(module: ModuleOp, mode: str = "auto", allow_lut: bool = False) -> None:
    """Set ``lowering`` on every quant op that has none (an existing one is an override)."""
    for inner in module.walk():
        if isinstance(inner, QUANT_OPS) and LOWERING_ATTR not in inner.attributes:
            inner.attributes[LOWERING_ATTR] = StringAttr(choose_lowering(inner, mode, allow_lut))


def lowering_of(op: Operation) -> str:
    """The op's ``lowering`` annotation, or the ``auto`` choice."""
    attr = op.attributes.get(LOWERING_ATTR)
    if isinstance(attr, StringAttr):
        return attr.data
    return choose_lowering(op)


def pack_fusing(op: QuantizeOp) -> PackOp | None:
    """The pack that absorbs this quantize: its only user, with lowering ``fused``."""
    if not op.result.has_one_use():
        return None
    user = next(iter(op.result.uses)).operation
    if isinstance(user, PackOp) and lowering_of(user) == "fused":
        return user
    return None


def unpack_fusing(op: DequantizeOp) -> UnpackOp | None:
    """The unpack a fused dequantize absorbs: its producer, used by nothing else."""
    unpack = op.input.owner
    if lowering_of(op) != "fused" or not isinstance(unpack, UnpackOp):
        return None
    return unpack if unpack.result.has_one_use() else None


def dynamic_pack_fusing(op: DynamicQuantizeOp) -> PackOp | None:
    """The pack that absorbs this op's data: its only user, with lowering ``fused``."""
    if not op.data.has_one_use():
        return None
    user = next(iter(op.data.uses)).operation
    if isinstance(user, PackOp) and lowering_of(user) == "fused":
        return user
    return None
