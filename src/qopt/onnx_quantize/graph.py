"""The ONNX side of ``qopt quantize-onnx``: which initializers are weights, and the rewrite.

A weight is a 2-D float initializer feeding input B (index 1) of a ``MatMul``
(``y = x @ W``, ``W: [K, N]``, reduction axis 0) or of a ``Gemm`` (``transB=1`` makes it
``[N, K]``, reduction axis 1). The rewrite follows ModelOpt's DQ-only INT4 flow
(``qdq_utils.insert_dq_nodes``): the initializer ``W`` is replaced by ``W_i4`` (quantized
codes; ``W_f8`` for FP8), ``W_scale`` and a node ``W_DequantizeLinear`` whose output
``W_DequantizeLinear_Output`` every former reader of ``W`` now reads. The default-domain
opset is raised to what the new nodes need (blocked INT4: 21) with onnx's version
converter, as ModelOpt does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from qopt.onnx_quantize.recipes import QuantizedWeight, Recipe

FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16}
MIN_IR_VERSION = 10  # what opset 21 needs; ModelOpt sets the same


class OnnxQuantizeError(ValueError):
    """A model that cannot be quantized; the message names the node or initializer."""


@dataclass(frozen=True)
class Target:
    """One weight initializer to quantize: its reduction axis and the nodes that read it."""

    initializer: str
    k_axis: int
    readers: tuple[str, ...]


def _node_label(node: onnx.NodeProto) -> str:
    return f"{node.op_type} node {node.name!r}" if node.name else f"unnamed {node.op_type} node"


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node, subgraphs (If / Loop / Scan bodies) included."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _all_nodes(sub)


def _weight_k_axis(node: onnx.NodeProto) -> int | None:
    if node.op_type == "MatMul":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 1 if trans_b else 0
    return None


def find_targets(
    model: onnx.ModelProto, exclude: Sequence[str] = ()
) -> tuple[list[Target], list[str]]:
    """The weights to quantize and, for each candidate left alone, a sentence saying why.

    ``exclude``: regular expressions matched (``re.match``, as ModelOpt's
    ``nodes_to_exclude``) against node names; a weight read by an excluded node is kept.
    """
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    graph_io = {v.name for v in graph.input} | {v.name for v in graph.output}
    patterns = [re.compile(p) for p in exclude]
    axes: dict[str, set[int]] = {}
    readers: dict[str, list[str]] = {}
    excluded: dict[str, str] = {}
    for node in graph.node:
        k_axis = _weight_k_axis(node)
        if k_axis is None or len(node.input) < 2 or node.input[1] not in inits:
            continue
        name = node.input[1]
        if any(p.match(node.name) for p in patterns):
            excluded[name] = f"{name}: read by excluded {_node_label(node)}"
        axes.setdefault(name, set()).add(k_axis)
        readers.setdefault(name, []).append(_node_label(node))
    targets, skipped = [], []
    for name, k_axes in axes.items():
        init = inits[name]
        why = None
        if name in excluded:
            why = excluded[name]
        elif name in graph_io:
            why = f"{name}: also a graph input or output, so it cannot be replaced"
        elif init.data_type not in FLOAT_TYPES:
            kind = TensorProto.DataType.Name(init.data_type)
            why = f"{name}: {kind} initializer, not f32/f16/bf16"
        elif len(init.dims) != 2:
            why = f"{name}: rank {len(init.dims)} (shape {list(init.dims)}), only 2-D weights"
        elif len(k_axes) > 1:
            why = f"{name}: read as B by MatMul and by Gemm with transB=1 (two reduction axes)"
        if why:
            skipped.append(why)
        else:
            targets.append(Target(name, next(iter(k_axes)), tuple(readers[name])))
    return targets, skipped


def weight_array(model: onnx.ModelProto, target: Target) -> np.ndarray:
    """The initializer's values; non-finite ones are an error naming it and its readers."""
    init = next(i for i in model.graph.initializer if i.name == target.initializer)
    try:
        w = numpy_helper.to_array(init)
    except Exception as exc:  # onnx raises several kinds for inconsistent tensors
        raise OnnxQuantizeError(
            f"initializer {target.initializer!r} (read by {', '.join(target.readers)}) "
            f"cannot be read: {exc}"
        ) from None
    if w.size and not np.isfinite(w.astype(np.float32)).all():
        bad = int(np.count_nonzero(~np.isfinite(w.astype(np.float32))))
        raise OnnxQuantizeError(
            f"initializer {target.initializer!r} (read by {', '.join(target.readers)}) holds "
            f"{bad} NaN/inf values; a quantized weight cannot represent them"
        )
    return w


def quantized_names(name: str, recipe: Recipe) -> tuple[str, str, str, str]:
    """ModelOpt's names: codes, scale, DequantizeLinear node and its output."""
    codes = f"{name}_f8" if recipe.storage.startswith("f8") else f"{name}_i4"
    return codes, f"{name}_scale", f"{name}_DequantizeLinear", f"{name}_DequantizeLinear_Output"


def _codes_tensor(name: str, qw: QuantizedWeight, recipe: Recipe) -> TensorProto:
    tensor = TensorProto(name=name, data_type=getattr(TensorProto, recipe.onnx_type))
    tensor.dims.extend(qw.shape)
    tensor.raw_data = np.ascontiguousarray(qw.data).view(np.uint8).tobytes()
    return tensor


def rewrite(
    model: onnx.ModelProto, quantized: dict[str, tuple[Target, Recipe, QuantizedWeight]]
) -> onnx.ModelProto:
    """A new model whose weights in ``quantized`` are codes + scale + DequantizeLinear."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    # the opset first: the converter must not see blocked DequantizeLinear nodes
    out = _with_opset(out, max((r.min_opset for _, r, _ in quantized.values()), default=1))
    graph = out.graph
    taken = {i.name for i in graph.initializer} | {o for n in graph.node for o in n.output}
    taken |= {n.name for n in graph.node} | {v.name for v in graph.input}
    new_inits, new_nodes, renamed = [], [], {}
    for name, (_target, recipe, qw) in quantized.items():
        codes, scale, node_name, output = quantized_names(name, recipe)
        clash = sorted({codes, scale, node_name, output} & taken)
        if clash:
            raise OnnxQuantizeError(
                f"initializer {name!r}: the model already has {clash[0]!r}, the name its "
                f"quantized form needs"
            )
        new_inits += [_codes_tensor(codes, qw, recipe), numpy_helper.from_array(qw.scale, scale)]
        attrs = {} if qw.axis is None else {"axis": qw.axis}
        if qw.block_size is not None:
            attrs["block_size"] = qw.block_size
        new_nodes.append(
            helper.make_node("DequantizeLinear", [codes, scale], [output], node_name, **attrs)
        )
        renamed[name] = output
    kept = [i for i in graph.initializer if i.name not in renamed]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    for node in _all_nodes(graph):
        for index, value in enumerate(node.input):
            if value in renamed:
                node.input[index] = renamed[value]
    old_nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes + old_nodes)
    return out


def _default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def _with_opset(model: onnx.ModelProto, needed: int) -> onnx.ModelProto:
    """Raise the default-domain opset to ``needed`` (onnx's version converter)."""
    if _default_opset(model) < needed:
        from onnx import version_converter

        try:
            model = version_converter.convert_version(model, needed)
        except Exception as exc:
            raise OnnxQuantizeError(
                f"the model's opset {_default_opset(model)} cannot be converted to opset "
                f"{needed}, which the quantized weights' DequantizeLinear needs: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
            ) from None
    model.ir_version = max(model.ir_version, MIN_IR_VERSION)
    return model
