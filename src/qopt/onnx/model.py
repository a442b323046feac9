"""ONNX files as qopt reads them: loading with errors that name the file, the element-type
table between ONNX and qopt, and the facts of a graph (constants, tensor types, producers)
that the importer, the exporter and onnx-check share.

Needs the ``onnx`` package (``pip install 'qopt[onnx]'``).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})
"""The standard (``ai.onnx``) quantization ops qopt computes."""

TRT_DOMAIN = "trt"
TRT_OPS = frozenset(
    {
        "TRT_FP8QuantizeLinear",
        "TRT_FP8DequantizeLinear",
        "TRT_INT4QuantizeLinear",
        "TRT_INT4DequantizeLinear",
        "TRT_MXFP8DynamicQuantize",
        "TRT_MXFP8DequantizeLinear",
        "TRT_FP4DynamicQuantize",
        "TRT_FP4QDQ",
    }
)
"""TensorRT's custom Q/DQ ops as nvidia-modelopt exports them (domain ``trt``)."""


class OnnxError(Exception):
    """A model qopt cannot read: the message names the file and the node or tensor."""


class Unsupported(Exception):
    """A valid Q/DQ node that qopt does not compute (kept as an opaque node on request)."""


# ONNX TensorProto element type -> qopt (MLIR) element spelling.
_QOPT_TYPES: dict[int, str] = {
    TensorProto.FLOAT: "f32",
    TensorProto.FLOAT16: "f16",
    TensorProto.BFLOAT16: "bf16",
    TensorProto.DOUBLE: "f64",
    TensorProto.INT8: "i8",
    TensorProto.UINT8: "ui8",
    TensorProto.INT16: "i16",
    TensorProto.UINT16: "ui16",
    TensorProto.INT32: "i32",
    TensorProto.UINT32: "ui32",
    TensorProto.INT64: "i64",
    TensorProto.UINT64: "ui64",
    TensorProto.BOOL: "i1",
    TensorProto.INT4: "i4",
    TensorProto.UINT4: "ui4",
    TensorProto.FLOAT8E4M3FN: "f8E4M3FN",
    TensorProto.FLOAT8E5M2: "f8E5M2",
    TensorProto.FLOAT4E2M1: "f4E2M1FN",
}
for _name, _spelling in (("INT2", "i2"), ("UINT2", "ui2"), ("FLOAT8E8M0", "f8E8M0FNU")):
    if hasattr(TensorProto, _name):  # newer onnx releases
        _QOPT_TYPES[getattr(TensorProto, _name)] = _spelling

ONNX_TYPES: dict[str, int] = {spelling: code for code, spelling in _QOPT_TYPES.items()}
"""qopt element spelling -> ONNX TensorProto element type."""


def qopt_type(elem_type: int) -> str | None:
    """The qopt spelling of an ONNX element type, or None where qopt has none."""
    return _QOPT_TYPES.get(elem_type)


def type_label(elem_type: int) -> str:
    """A readable name of an ONNX element type (``FLOAT8E4M3FNUZ``)."""
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"element type {elem_type}"


@dataclass(frozen=True)
class TensorInfo:
    """What is known statically about one tensor: element type and shape (None: unknown
    rank; a None dimension is dynamic)."""

    elem_type: int
    shape: tuple[int | None, ...] | None


def load(path: str | os.PathLike) -> onnx.ModelProto:
    """Read an ONNX file; a missing or unreadable file raises OnnxError naming it."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise OnnxError(f"{name}: no such file")
    try:
        return onnx.load(name)
    except Exception as error:  # protobuf's DecodeError and friends
        raise OnnxError(f"{name}: not an ONNX model ({type(error).__name__}: {error})") from None


def node_label(node: onnx.NodeProto, index: int) -> str:
    """``node 'name' (QuantizeLinear)``; an unnamed node is named by its index."""
    name = node.name or f"#{index}"
    op = f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
    return f"node '{name}' ({op})"


def attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def opset_version(model: onnx.ModelProto, domain: str = "") -> int | None:
    for entry in model.opset_import:
        if entry.domain in (domain, "ai.onnx" if domain == "" else domain):
            return entry.version
    return None


def newest_opset() -> int:
    return onnx.defs.onnx_opset_version()


def _info_of(value: onnx.ValueInfoProto) -> TensorInfo | None:
    if not value.type.HasField("tensor_type"):
        return None
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return TensorInfo(tensor.elem_type, None)
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    return TensorInfo(tensor.elem_type, dims)


@dataclass
class Graph:
    """The facts of a model's main graph that the importer and exporter need."""

    model: onnx.ModelProto
    path: str
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    constant_nodes: dict[str, int] = field(default_factory=dict)
    """Output name -> index of the Constant node that makes it."""
    producers: dict[str, int] = field(default_factory=dict)
    """Tensor name -> index of the node that produces it."""
    infos: dict[str, TensorInfo] = field(default_factory=dict)

    @property
    def nodes(self) -> list[onnx.NodeProto]:
        return list(self.model.graph.node)

    @property
    def input_names(self) -> list[str]:
        return [v.name for v in self.model.graph.input if v.name not in self.initializers]

    def info(self, name: str) -> TensorInfo | None:
        if name in self.initializers:
            array = self.initializers[name]
            return TensorInfo(_elem_type_of(self.model, name), tuple(array.shape))
        return self.infos.get(name)


def _elem_type_of(model: onnx.ModelProto, name: str) -> int:
    for tensor in model.graph.initializer:
        if tensor.name == name:
            return tensor.data_type
    return TensorProto.UNDEFINED


def tensor_array(tensor: TensorProto) -> np.ndarray:
    """An initializer or Constant value as a numpy / ml_dtypes array."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return numpy_helper.to_array(tensor)


def analyse(model: onnx.ModelProto, path: str) -> Graph:
    """Initializers, Constant nodes, producers and (inferred) tensor types of the graph."""
    graph = Graph(model, path)
    for tensor in model.graph.initializer:
        try:
            graph.initializers[tensor.name] = tensor_array(tensor)
        except Exception as error:
            raise OnnxError(
                f"{path}: initializer '{tensor.name}' cannot be read: {error}"
            ) from None
    for index, node in enumerate(model.graph.node):
        for out in node.output:
            if out:
                graph.producers[out] = index
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
            graph.constant_nodes[node.output[0]] = index
    inferred = _inferred(model)
    for value in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        info = _info_of(value)
        if info is not None:
            graph.infos[value.name] = info
    for value in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        info = _info_of(value)
        if info is not None and value.name not in graph.infos:
            graph.infos[value.name] = info
    return graph


def _inferred(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with inferred shapes; the model itself where inference fails (custom
    domains, malformed nodes: the importer reports those with their node)."""
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:
        return model


def constant_value(graph: Graph, name: str) -> np.ndarray | None:
    """The value of a tensor known when the model is built: an initializer, a Constant
    node's output, or a node whose inputs are all such values (a Cast or Reshape of a
    constant, as exporters leave them), evaluated with onnx's reference evaluator."""
    return _constant_value(graph, name, 0)


def _constant_value(graph: Graph, name: str, depth: int) -> np.ndarray | None:
    if name in graph.initializers:
        return graph.initializers[name]
    index = graph.producers.get(name)
    if index is None or depth > 8:
        return None
    node = graph.model.graph.node[index]
    if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
        return _constant_node_value(node)
    if node.domain not in ("", "ai.onnx") or node.op_type in QDQ_OPS:
        return None
    feeds = {}
    for inp in node.input:
        if not inp:
            continue
        value = _constant_value(graph, inp, depth + 1)
        if value is None:
            return None
        feeds[inp] = value
    return _evaluate(graph, index, name, feeds)


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.name == "value":
            return tensor_array(attr.t)
        value = helper.get_attribute_value(attr)
        if attr.name in ("value_float", "value_int"):
            return np.asarray(value, np.float32 if attr.name == "value_float" else np.int64)
        if attr.name in ("value_floats", "value_ints"):
            return np.asarray(value, np.float32 if attr.name == "value_floats" else np.int64)
    return None


def _evaluate(graph: Graph, index: int, name: str, feeds: dict) -> np.ndarray | None:
    from onnx.reference import ReferenceEvaluator

    node = graph.model.graph.node[index]
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            results = ReferenceEvaluator(node).run(None, feeds)
    except Exception:
        return None
    outputs = list(node.output)
    return np.asarray(results[outputs.index(name)]) if name in outputs else None


@functools.cache
def schema_since(op_type: str, version: int, domain: str = "") -> int | None:
    """The opset version that defined ``op_type`` as of opset ``version`` (None: unknown)."""
    try:
        return onnx.defs.get_schema(op_type, version, domain).since_version
    except Exception:
        return None


def iter_subgraph_names(node: onnx.NodeProto) -> Iterator[str]:
    """Every tensor name a node's subgraphs (If / Loop / Scan bodies) mention."""
    for attr in node.attribute:
        graphs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
        for sub in graphs:
            for inner in sub.node:
                yield from inner.input
                yield from iter_subgraph_names(inner)
            for out in sub.output:
                yield out.name
