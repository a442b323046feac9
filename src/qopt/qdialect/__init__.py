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

Quant = Dialect("quant", [*QUANT_OPS, RescaleOp], list(GRANULARITY_ATTRS))

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
