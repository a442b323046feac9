"""Quant-dialect module (as imported, then rewritten) -> ONNX model.

The model is the imported one with its node list rebuilt from the function body:

* an ``onnx.node`` is its stored node, inputs renamed to the values now feeding it;
* a quant op the passes left alone is its original Q/DQ node (inputs renamed);
* a new ``quant.requantize`` (a dequantize -> quantize pair, or a folded chain of them) is
  written as ``DequantizeLinear -> QuantizeLinear``. Its location names the nodes it was
  made from: where the first DequantizeLinear among them has the requantize's input
  parameters and the last QuantizeLinear its output parameters (what fold-quant's folds
  give), those two nodes are reused, so the parameters keep their initializers and
  attributes; otherwise new nodes and initializers are made from the op's parameters.
* a graph output whose value now comes from elsewhere (a removed Q -> DQ pair at the end
  of the graph) is given by an ``Identity``.

Constant nodes and initializers that only removed Q/DQ nodes used are dropped; everything
else (opsets, metadata, functions, value_info of the names that remain) is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, FileLineColLoc, FusedLoc
from xdsl.ir import Attribute, Operation, SSAValue

from qopt.onnx.importer import Imported, opaque_node
from qopt.onnx.model import OnnxError, iter_subgraph_names
from qopt.qdialect import formats
from qopt.qdialect.attrs import PerAxisAttr, PerBlockAttr, PerTensorAttr
from qopt.qdialect.onnx_node import NodeOp
from qopt.qdialect.ops import DequantizeOp, QuantizeOp, QuantOp, RequantizeOp


def export_model(imported: Imported) -> onnx.ModelProto:
    """The ONNX model of ``imported.module`` (see the module docstring)."""
    return _Exporter(imported).run()


def node_indices(loc: Attribute) -> list[int]:
    """The graph positions (0-based) of the nodes an op's location names."""
    inner = loc.locations.data if isinstance(loc, FusedLoc) else (loc,)
    return [item.line.data - 1 for item in inner if isinstance(item, FileLineColLoc)]


class _Exporter:
    def __init__(self, imported: Imported):
        self.imported = imported
        self.graph = imported.graph
        self.original = imported.graph.model.graph
        self.names: dict[SSAValue, str] = {}
        self.used: set[str] = set(self.graph.initializers)
        self.nodes: list[onnx.NodeProto] = []
        self.new_initializers: list[onnx.TensorProto] = []
        self.emitted: dict[int, str] = {}
        """Original node index -> output name, for Q/DQ nodes already written."""
        self.shared: dict[tuple[int, str], object] = {}
        """(DQ node index, input name) -> the value of a DQ written for a requantize."""
        self.by_op = {id(q.op): (i, q) for i, q in imported.quant_nodes.items()}
        self.counter = 0

    def fresh(self, base: str) -> str:
        name = base
        while name in self.used:
            self.counter += 1
            name = f"{base}_qopt{self.counter}"
        self.used.add(name)
        return name

    def run(self) -> onnx.ModelProto:
        function = self.imported.function
        for name, arg in zip(self.graph.input_names, function.body.block.args):
            self.names[arg] = name
            self.used.add(name)
        for op in function.body.block.ops:
            if isinstance(op, func.ReturnOp):
                self._outputs(op.operands)
            elif isinstance(op, NodeOp):
                self._opaque(op)
            elif isinstance(op, QuantOp):
                self._quant(op)
            else:
                raise OnnxError(f"{self.graph.path}: cannot write {op.name} back as ONNX")
        return self._model()

    # -----------------------------------------------------------------------------------

    def _renamed(self, node: onnx.NodeProto, positions: Sequence[int], operands) -> onnx.NodeProto:
        out = onnx.NodeProto()
        out.CopyFrom(node)
        for position, operand in zip(positions, operands):
            out.input[position] = self.names[operand]
        return out

    def _opaque(self, op: NodeOp) -> None:
        node = opaque_node(op)
        positions = [
            i for i, name in enumerate(node.input) if name and name not in self.graph.initializers
        ]
        node = self._renamed(node, positions, op.operands)
        for name, result in zip(node.output, op.results):
            if name:
                self.names[result] = name
                self.used.add(name)
        self.nodes.append(node)

    def _quant(self, op: QuantOp) -> None:
        found = self.by_op.get(id(op))
        if found is not None and found[1].properties == dict(op.properties):
            index, quant = found
            node = self.original.node[index]
            self._emit(index, node, quant.operand_positions, op.operands, op.results)
            return
        if isinstance(op, RequantizeOp):
            self._requantize(op)
            return
        raise OnnxError(
            f"{self.graph.path}: cannot write back the {op.name} made by a pass "
            f"(only requantize is written as DequantizeLinear -> QuantizeLinear)"
        )

    def _emit(self, index, node, positions, operands, results, output_name=None) -> None:
        node = self._renamed(node, positions, operands)
        for k, result in enumerate(results):
            name = node.output[k]
            if k == 0 and output_name is not None:
                name = output_name
            elif name in self.used:
                name = self.fresh(name)
            else:
                self.used.add(name)
            node.output[k] = name
            self.names[result] = name
        self.emitted[index] = node.output[0]
        self.nodes.append(node)

    def _requantize(self, op: RequantizeOp) -> None:
        indices = node_indices(op.location)
        quants = self.imported.quant_nodes
        dq = next((i for i in indices if isinstance(quants.get(i, _NONE).op, DequantizeOp)), None)
        q = next(
            (i for i in reversed(indices) if isinstance(quants.get(i, _NONE).op, QuantizeOp)), None
        )
        if dq is not None and q is not None and self._reusable(op, dq, q):
            self._reuse_pair(op, dq, q)
        else:
            self._new_pair(op)

    def _reusable(self, op: RequantizeOp, dq: int, q: int) -> bool:
        dq_props = self.imported.quant_nodes[dq].properties
        q_props = self.imported.quant_nodes[q].properties
        dq_op = self.imported.quant_nodes[dq].op
        if any(dq_props.get(n) != op.properties.get(f"in_{n}") for n in _PARAMS):
            return False
        if any(q_props.get(n) != op.properties.get(f"out_{n}") for n in (*_PARAMS, *_OUTPUT)):
            return False
        if formats.type_name(dq_op.results[0].type.element_type) != "f32":  # pyright: ignore
            return False
        runtime_in = [p for p in (op.in_scale, op.in_zero_point) if p is not None]
        runtime_out = [p for p in (op.out_scale, op.out_zero_point) if p is not None]
        dq_params = list(self.imported.quant_nodes[dq].params)
        q_params = list(self.imported.quant_nodes[q].params)
        return runtime_in == dq_params and runtime_out == q_params

    def _reuse_pair(self, op: RequantizeOp, dq: int, q: int) -> None:
        dq_quant, q_quant = self.imported.quant_nodes[dq], self.imported.quant_nodes[q]
        runtime_in = [p for p in (op.in_scale, op.in_zero_point) if p is not None]
        runtime_out = [p for p in (op.out_scale, op.out_zero_point) if p is not None]
        dq_node = self.original.node[dq]
        key = (dq, self.names[op.input])
        middle: object = self.shared.get(key)
        if middle is None:
            middle = _Value()
            self._emit(dq, dq_node, dq_quant.operand_positions, [op.input, *runtime_in], [middle])
            self.shared[key] = middle
        q_node = self.original.node[q]
        self._emit(q, q_node, q_quant.operand_positions, [middle, *runtime_out], op.results)

    # -----------------------------------------------------------------------------------
    # new Q/DQ nodes from a requantize's parameters

    def _new_pair(self, op: RequantizeOp) -> None:
        base = "qopt_requantize"
        middle = self.fresh(f"{base}_f32")
        storage_in = op.input.type.element_type  # pyright: ignore[reportAttributeAccessIssue]
        storage_out = op.result.type.element_type  # pyright: ignore[reportAttributeAccessIssue]
        if any(op.properties.get(n) is not None for n in _NO_ONNX_FORM):
            raise OnnxError(
                f"{self.graph.path}: a requantize with a rounding mode, narrow range or zero "
                f"point order has no ONNX form"
            )
        dq_inputs, dq_attrs = self._params(op, "in_", storage_in)
        q_inputs, q_attrs = self._params(op, "out_", storage_out)
        output = self.fresh(f"{base}_out")
        self.nodes.append(
            helper.make_node(
                "DequantizeLinear",
                [self.names[op.input], *dq_inputs],
                [middle],
                name=self.fresh(f"{base}_dq"),
                **dq_attrs,
            )
        )
        saturate = op.properties.get("saturate")
        if saturate is not None:
            q_attrs["saturate"] = int(op.saturate_flag)
        self.nodes.append(
            helper.make_node(
                "QuantizeLinear",
                [middle, *q_inputs],
                [output],
                name=self.fresh(f"{base}_q"),
                **q_attrs,
            )
        )
        self.names[op.result] = output

    def _params(self, op: RequantizeOp, prefix: str, storage: Attribute) -> tuple[list[str], dict]:
        granularity = op.properties.get(f"{prefix}granularity") or PerTensorAttr()
        attrs: dict = {}
        if isinstance(granularity, PerAxisAttr):
            attrs["axis"] = granularity.axis.data
        elif isinstance(granularity, PerBlockAttr):
            attrs["axis"], attrs["block_size"] = granularity.axis.data, granularity.block_size.data
        elif not isinstance(granularity, PerTensorAttr):
            raise OnnxError(f"{self.graph.path}: granularity {granularity} has no ONNX form")
        scale = self._param_name(op, f"{prefix}scale", np.float32)
        zp_dtype = formats.numpy_dtype(storage)
        zp = self._param_name(op, f"{prefix}zero_point", zp_dtype)
        if zp is None:
            zp = self._initializer(np.zeros((), zp_dtype), "qopt_zero_point")
        return [scale, zp], attrs

    def _param_name(self, op: Operation, name: str, dtype) -> str | None:
        operand = getattr(op, name, None)
        if operand is not None:
            return self.names[operand]
        const = op.properties.get(f"{name}_const")
        if const is None:
            return None
        if isinstance(const, DenseIntOrFPElementsAttr):
            values = np.asarray(const.get_values()).reshape(tuple(const.get_shape() or ()))
        else:
            values = np.asarray(const.value.data)  # pyright: ignore[reportAttributeAccessIssue]
        return self._initializer(values.astype(dtype), f"qopt_{name}")

    def _initializer(self, values: np.ndarray, base: str) -> str:
        for existing, array in self.graph.initializers.items():
            if (
                array.dtype == values.dtype
                and array.shape == values.shape
                and np.array_equal(array.view(np.uint8), values.view(np.uint8))
            ):
                return existing
        name = self.fresh(base)
        self.new_initializers.append(numpy_helper.from_array(values, name))
        return name

    # -----------------------------------------------------------------------------------

    def _outputs(self, operands: Sequence[SSAValue]) -> None:
        for out, value in zip(self.original.output, operands):
            name = self.names[value]
            if name != out.name:
                if out.name in self.used:
                    raise OnnxError(f"{self.graph.path}: graph output '{out.name}' is taken")
                self.nodes.append(helper.make_node("Identity", [name], [out.name]))
                self.used.add(out.name)

    def _model(self) -> onnx.ModelProto:
        model = onnx.ModelProto()
        model.CopyFrom(self.graph.model)
        graph = model.graph
        nodes = _drop_dead_constants(self.nodes, self.original)
        referenced = _referenced(nodes, graph)
        originally = _referenced(list(self.original.node), self.original)
        kept = [t for t in graph.initializer if t.name in referenced or t.name not in originally]
        del graph.initializer[:]
        graph.initializer.extend(kept + self.new_initializers)
        del graph.node[:]
        graph.node.extend(nodes)
        names = referenced | {o for n in nodes for o in n.output}
        value_info = [v for v in graph.value_info if v.name in names]
        del graph.value_info[:]
        graph.value_info.extend(value_info)
        return model


class _Value:
    """A placeholder SSA value for the f32 tensor between a written-back DQ and Q."""


_NONE = type("_NoQuant", (), {"op": None})()
_PARAMS = ("scale_const", "zero_point_const", "granularity", "storage_min", "storage_max")
_OUTPUT = ("rounding", "saturate", "zero_point_order")
_NO_ONNX_FORM = ("rounding", "storage_min", "storage_max", "in_storage_min", "zero_point_order")


def _referenced(nodes: list[onnx.NodeProto], graph: onnx.GraphProto) -> set[str]:
    names = {o.name for o in graph.output}
    for node in nodes:
        names.update(node.input)
        names.update(iter_subgraph_names(node))
    return names


def _drop_dead_constants(
    nodes: list[onnx.NodeProto], original: onnx.GraphProto
) -> list[onnx.NodeProto]:
    """Drop Constant nodes whose outputs were used in the original graph and no more."""
    originally = _referenced(list(original.node), original)
    while True:
        referenced = _referenced(nodes, original)
        dead = [
            n
            for n in nodes
            if n.op_type == "Constant"
            and n.output[0] not in referenced
            and n.output[0] in originally
        ]
        if not dead:
            return nodes
        nodes = [n for n in nodes if all(n is not d for d in dead)]
