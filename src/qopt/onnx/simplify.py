"""``qopt onnx-simplify in.onnx -o out.onnx``: fold-quant's exact rewrites on an ONNX model.

The model is imported (Q/DQ nodes qopt does not compute stay as they are), fold-quant
runs unchanged (its patterns and proofs, qopt.passes.fold_quant), and the result is
written back (exporter.py) and checked with ``onnx.checker.check_model(full_check=True)``.
What changes: ``DequantizeLinear -> QuantizeLinear`` pairs that give every code back are
removed, and chains of them that fold exactly become one pair. Nothing lossy is done:
``QuantizeLinear -> DequantizeLinear`` (float in, float out) is never touched.

Each fold fold-quant refused is reported with its worst-case error, evaluated on every
input code by fold-quant's own comparison (``qopt.passes.fold_proofs.compare_steps``):

* a requantize chain (DQ -> Q -> DQ -> Q) that does not fold: max |one step - two steps|
  over the input codes, in output units;
* the middle DQ -> Q pair of ``Q -> DQ -> Q -> DQ`` (same storage type) where it is not
  the identity (what onnxruntime's double-QDQ remover drops): max |pair(q) - q| over the
  codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from qopt.onnx.exporter import export_model, node_indices
from qopt.onnx.importer import Imported, import_model
from qopt.onnx.model import OnnxError
from qopt.qdialect.context import make_context
from qopt.qdialect.ops import DynamicQuantizeOp, QuantizeOp, RequantizeOp


@dataclass(frozen=True)
class Refusal:
    """A fold fold-quant did not make, and the error it would have made."""

    nodes: str
    """The nodes involved, by label."""
    kind: str
    worst_error: float | None
    """max |folded - kept| over the input codes, in output units; None if not enumerable."""

    def describe(self) -> str:
        error = "not enumerable" if self.worst_error is None else f"{self.worst_error:g}"
        return f"refused: {self.kind}: {self.nodes}: worst-case error {error} (output units)"


@dataclass
class Simplified:
    model: onnx.ModelProto
    removed: list[str] = field(default_factory=list)
    """Labels of the Q/DQ nodes the folds removed."""
    refused: list[Refusal] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    """Q/DQ nodes qopt does not compute, with the reason (left as they are)."""


def simplify_model(model: onnx.ModelProto, path: str = "<model>") -> Simplified:
    """The simplified model and the report (see the module docstring)."""
    from qopt.passes.fold_quant import FoldQuantPass

    imported = import_model(model, path, keep_unsupported=True)
    FoldQuantPass().apply(make_context(), imported.module)
    refused = _refusals(imported, imported.module)
    out = export_model(imported)
    try:
        onnx.checker.check_model(out, full_check=True)
    except Exception as error:
        message = str(error).strip().replace("\n", " ")
        raise OnnxError(
            f"{path}: the simplified model does not pass onnx's checker: {message}"
        ) from None
    names = {n.name for n in out.graph.node if n.name}
    removed = [
        imported.label(i)
        for i in sorted(imported.quant_nodes)
        if not _still_there(model.graph.node[i], names, out)
    ]
    kept = [f"{imported.label(i)}: {why}" for i, why in sorted(imported.kept.items())]
    return Simplified(out, removed, refused, kept)


def _still_there(node: onnx.NodeProto, names: set[str], out: onnx.ModelProto) -> bool:
    """Whether the output model still has ``node`` (by name; an unnamed node by its kind
    and parameter inputs)."""
    if node.name:
        return node.name in names
    return any(n.op_type == node.op_type and n.input[1:] == node.input[1:] for n in out.graph.node)


def _labels(imported: Imported, op: Operation) -> str:
    return ", ".join(imported.label(i) for i in node_indices(op.location)) or op.name


def _refusals(imported: Imported, module: ModuleOp) -> list[Refusal]:
    out = []
    for op in module.walk():
        if not isinstance(op, RequantizeOp):
            continue
        inner = op.input.owner
        if isinstance(inner, RequantizeOp):
            error = _chain_error(inner, op)
            out.append(Refusal(_labels(imported, op), "requantize chain not folded", error))
        elif op.input.type == op.result.type and isinstance(inner, QuantizeOp | DynamicQuantizeOp):
            error = _identity_error(op)
            out.append(Refusal(_labels(imported, op), "DQ -> Q pair is not the identity", error))
    return out


def _chain_error(inner: RequantizeOp, outer: RequantizeOp) -> float | None:
    """fold-quant's own comparison of the chain with the one requantize it would become."""
    from qopt.passes import fold_params, fold_proofs

    try:
        steps = [fold_params.requantize_step(inner), fold_params.requantize_step(outer)]
        folded = fold_params.composed(steps[0], steps[-1])
        shape = fold_params.shape_of(outer.result)
        comparison = fold_proofs.compare_steps(steps, folded, shape)
    except Exception:  # a proof the pass could not run is not an error of the model
        return None
    return None if comparison is None else comparison.worst_error


def _identity_error(op: RequantizeOp) -> float | None:
    """max |R(q) - q|: fold-quant's comparison of ``R`` with the step that reads and
    writes with R's input parameters, which is proven to be the identity first."""
    from qopt.passes import fold_params, fold_proofs

    try:
        step = fold_params.requantize_step(op)
        shape = fold_params.shape_of(op.result)
        source = step.input
        same = fold_params.Side(
            step.output.storage, source.scale, source.zero_point, source.granularity
        )
        identity = fold_params.Step(source, same, step.expressed, "nearest_even", True, step.bounds)
        if not fold_proofs.is_identity(identity, shape):
            return None
        comparison = fold_proofs.compare_steps([step], identity, shape)
    except Exception:  # a proof the pass could not run is not an error of the model
        return None
    return None if comparison is None else comparison.worst_error
