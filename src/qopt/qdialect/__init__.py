"""The quant dialect: formats, granularity attributes and the quant ops (docs/semantics.md)."""

from xdsl.ir import Dialect

from qopt.qdialect.attrs import (
    GRANULARITY_ATTRS,
    BlockAttr,
    GranularityAttr,
    PerAxisAttr,
    PerBlockAttr,
    PerTensorAttr,
    PerTokenAttr,
)
from qopt.qdialect.ops import (
    QUANT_OPS,
    DequantizeOp,
    DynamicQuantizeOp,
    FakeQuantizeOp,
    PackOp,
    QuantizeOp,
    QuantOp,
    RequantizeOp,
    UnpackOp,
)
from qopt.qdialect.rescale import RescaleOp
from qopt.qdialect.upstream_ops import UPSTREAM_OPS
from qopt.qdialect.upstream_types import UPSTREAM_TYPES

Quant = Dialect(
    "quant", [*QUANT_OPS, RescaleOp, *UPSTREAM_OPS], [*GRANULARITY_ATTRS, *UPSTREAM_TYPES]
)
"""qopt's quant ops, plus upstream MLIR's quant types and qcast / dcast / scast
(upstream_types.py, upstream_ops.py), so that upstream IR parses as it is."""

__all__ = [
    "BlockAttr",
    "DequantizeOp",
    "DynamicQuantizeOp",
    "FakeQuantizeOp",
    "GranularityAttr",
    "PackOp",
    "PerAxisAttr",
    "PerBlockAttr",
    "PerTensorAttr",
    "PerTokenAttr",
    "Quant",
    "QuantOp",
    "QuantizeOp",
    "RequantizeOp",
    "RescaleOp",
    "UnpackOp",
]
