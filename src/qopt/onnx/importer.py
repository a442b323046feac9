"""ONNX model -> quant-dialect module: ``qopt import-onnx model.onnx -o model.mlir``.

The main graph becomes ``func.func @main``: graph inputs are its arguments, graph outputs
its results. Each Q/DQ node (qdq.py) becomes a quant op located at
``loc("model.onnx":N:1)``, N being the node's position in the graph (1-based); every other
node becomes an ``onnx.node`` that carries the serialized node (qopt.qdialect.onnx_node),
so the exporter can write the model back unchanged except for the Q/DQ chains.

Errors name the file and the node: a model onnx's checker rejects, an opset the installed
onnx does not know, a missing initializer, a scale of the wrong rank. A valid Q/DQ node
that qopt does not compute (``Unsupported``) is an error too unless ``keep_unsupported``,
which keeps it as an ``onnx.node`` and records why in :attr:`Imported.kept`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    FileLineColLoc,
    IntAttr,
    ModuleOp,
    NoneType,
    StringAttr,
    TensorType,
    UnrankedTensorType,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.utils.exceptions import VerifyException

from qopt.onnx import qdq
from qopt.onnx.model import (
    Graph,
    OnnxError,
    TensorInfo,
    Unsupported,
    analyse,
    attributes,
    constant_value,
    load,
    newest_opset,
    node_label,
    opset_version,
    qopt_type,
    schema_since,
)
from qopt.qdialect import formats
from qopt.qdialect.onnx_node import NodeOp


@dataclass
class QuantNode:
    """A Q/DQ node imported as a quant op."""

    op: Operation
    operand_positions: tuple[int, ...]
    """The node's input positions that are the op's operands, in operand order."""
    properties: dict[str, Attribute]
    """The op's properties as imported (the exporter reuses the node while they hold)."""
    params: tuple[SSAValue, ...]
    """The op's runtime parameter operands as imported (every operand but the data)."""


@dataclass
class Imported:
    graph: Graph
    module: ModuleOp
    quant_nodes: dict[int, QuantNode] = field(default_factory=dict)
    """Node index -> its quant op."""
    kept: dict[int, str] = field(default_factory=dict)
    """Node index of a Q/DQ node kept as ``onnx.node`` -> why."""

    @property
    def function(self) -> func.FuncOp:
        op = self.module.body.block.first_op
        assert isinstance(op, func.FuncOp)
        return op

    def label(self, index: int) -> str:
        return node_label(self.graph.model.graph.node[index], index)


def import_file(path: str, *, keep_unsupported: bool = False) -> Imported:
    """Read and import an ONNX file (see the module docstring)."""
    return import_model(load(path), path, keep_unsupported=keep_unsupported)


def import_model(
    model: onnx.ModelProto, path: str = "<model>", *, keep_unsupported: bool = False
) -> Imported:
    _check(model, path)
    graph = analyse(model, path)
    return _Importer(graph, keep_unsupported).run()


def _check(model: onnx.ModelProto, path: str) -> None:
    version = opset_version(model)
    newest = newest_opset()
    if version is not None and not 1 <= version <= newest:
        raise OnnxError(
            f"{path}: opset {version} of the default domain is not known to the installed "
            f"onnx {onnx.__version__} (opsets 1 to {newest})"
        )
    try:
        onnx.checker.check_model(model)
    except Exception as error:
        message = str(error).strip().replace("\n", " ")
        raise OnnxError(f"{path}: not a valid ONNX model: {message}") from None


def element_of(elem_type: int) -> Attribute:
    spelling = qopt_type(elem_type)
    if spelling is None:
        return NoneType()
    try:
        return formats.parse_type_name(spelling)
    except Exception:
        return NoneType()


def tensor_type(info: TensorInfo | None) -> Attribute:
    """The IR type of an ONNX tensor (unranked where the rank is unknown)."""
    if info is None:
        return UnrankedTensorType(NoneType())
    element = element_of(info.elem_type)
    if info.shape is None:
        return UnrankedTensorType(element)
    return TensorType(element, [-1 if d is None else d for d in info.shape])


def _elem_type_of_array(array: np.ndarray) -> int:
    return helper.np_dtype_to_tensor_dtype(array.dtype)


class _Importer:
    def __init__(self, graph: Graph, keep_unsupported: bool):
        self.graph = graph
        self.keep_unsupported = keep_unsupported
        self.values: dict[str, SSAValue] = {}
        self.opaque_producers: dict[str, int] = {}

    def run(self) -> Imported:
        graph = self.graph
        inputs = graph.input_names
        arg_types = [tensor_type(graph.info(name)) for name in inputs]
        block = Block(arg_types=arg_types)
        for name, arg in zip(inputs, block.args):
            self.values[name] = arg
        module = ModuleOp([])
        imported = Imported(graph, module)
        for index, node in enumerate(graph.model.graph.node):
            op = self._node(imported, index, node)
            op.location = FileLineColLoc(StringAttr(graph.path), IntAttr(index + 1), IntAttr(1))
            block.add_op(op)
            for name, result in zip(node.output, op.results):
                if name:
                    self.values[name] = result
        results = []
        for out in graph.model.graph.output:
            if out.name not in self.values:
                raise OnnxError(
                    f"{graph.path}: graph output '{out.name}' is not computed by the graph "
                    f"(an initializer or graph input as output is not supported)"
                )
            results.append(self.values[out.name])
        block.add_op(func.ReturnOp(*results))
        function = func.FuncOp("main", (arg_types, [r.type for r in results]), Region(block))
        module.body.block.add_op(function)
        return imported

    # -----------------------------------------------------------------------------------

    def _node(self, imported: Imported, index: int, node: onnx.NodeProto) -> Operation:
        domain = "" if node.domain == "ai.onnx" else node.domain
        translation = qdq.TRANSLATIONS.get((domain, node.op_type))
        label = node_label(node, index)
        if translation is not None:
            try:
                op, positions = self._quant(translation, node, label, domain)
            except Unsupported as why:
                if not self.keep_unsupported:
                    raise OnnxError(
                        f"{self.graph.path}: {label}: {why} (--keep-unsupported keeps it as "
                        f"an opaque onnx.node)"
                    ) from None
                imported.kept[index] = str(why)
            else:
                imported.quant_nodes[index] = QuantNode(
                    op, positions, dict(op.properties), tuple(op.operands[1:])
                )
                return op
        return self._opaque(node, index)

    def _quant(
        self, translation: qdq.Translation, node: onnx.NodeProto, label: str, domain: str
    ) -> tuple[Operation, tuple[int, ...]]:
        path = self.graph.path
        since = 0
        if domain == "":
            version = opset_version(self.graph.model) or newest_opset()
            found = schema_since(node.op_type, version)
            if found is None:
                raise OnnxError(
                    f"{path}: {label}: {node.op_type} does not exist in opset {version}"
                )
            since = found
        params = [self._param(label, i, name) for i, name in enumerate(node.input)]
        inputs = qdq.NodeInputs(label, attributes(node), since, params, [])
        try:
            op = translation(inputs)
        except OnnxError as error:
            raise OnnxError(f"{path}: {error}") from None
        try:
            op.verify()
        except VerifyException as error:
            raise Unsupported(f"qopt's verifier: {error}") from None
        return op, tuple(inputs.operand_positions)

    def _param(self, label: str, position: int, name: str) -> qdq.Param | None:
        if not name:
            return None
        graph = self.graph
        value = self.values.get(name)
        if value is not None and position == 0:
            return qdq.Param(name, _elem_of_value(value), _shape_of_value(value), value=value)
        const = constant_value(graph, name)
        if const is not None:
            info = graph.info(name)
            elem = info.elem_type if info and info.elem_type else _elem_type_of_array(const)
            return qdq.Param(name, elem, tuple(const.shape), const=const)
        if value is None:
            raise OnnxError(
                f"{graph.path}: {label}: input '{name}' is not an initializer, a graph input or "
                f"the output of an earlier node (a missing initializer?)"
            )
        producer = self.opaque_producers.get(name)
        if producer is not None:
            raise Unsupported(
                f"'{name}' (input {position}) is computed at runtime by "
                f"{node_label(graph.model.graph.node[producer], producer)}; qopt reads Q/DQ "
                f"parameters from initializers, Constant nodes, constant subgraphs, graph "
                f"inputs and quantize ops"
            )
        return qdq.Param(name, _elem_of_value(value), _shape_of_value(value), value=value)

    def _opaque(self, node: onnx.NodeProto, index: int) -> Operation:
        operands = []
        for name in node.input:
            if name and name in self.values:
                operands.append(self.values[name])
            elif name and name not in self.graph.initializers:
                raise OnnxError(
                    f"{self.graph.path}: {node_label(node, index)}: input '{name}' is not an "
                    f"initializer, a graph input or the output of an earlier node"
                )
        result_types = [
            tensor_type(self.graph.info(out)) if out else NoneType() for out in node.output
        ]
        for out in node.output:
            if out:
                self.opaque_producers[out] = index
        return NodeOp.build(
            operands=[operands],
            result_types=[result_types],
            properties={
                "op_type": StringAttr(node.op_type),
                "domain": StringAttr(node.domain),
                "node": StringAttr(base64.b64encode(node.SerializeToString()).decode()),
            },
        )


def _elem_of_value(value: SSAValue) -> int:
    from qopt.onnx.model import ONNX_TYPES

    t = value.type
    element = getattr(t, "element_type", None)
    if element is None or isinstance(element, NoneType):
        return 0
    return ONNX_TYPES.get(formats.type_name(element), 0)


def _shape_of_value(value: SSAValue) -> tuple[int | None, ...] | None:
    t = value.type
    if not isinstance(t, TensorType):
        return None
    return tuple(None if d < 0 else d for d in t.get_shape())


def opaque_node(op: NodeOp) -> onnx.NodeProto:
    """The ONNX node an ``onnx.node`` op carries."""
    node = onnx.NodeProto()
    node.ParseFromString(base64.b64decode(op.node.data))
    return node
