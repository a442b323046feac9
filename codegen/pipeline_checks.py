"""Checks the driver runs before a stage that cannot take a module, with located errors.

Codegen translates the lowered IR only (arith / math / linalg / tensor in ``func.func``
definitions of static shape); lower-quant handles static shapes only. Rather than let
those stages fail inside (``TranslationError: unsupported op 'quant.quantize' at function
level``), the driver asks here first and names what to do:

    model.mlir:3:8: error: quant.quantize must be lowered before -t llvm (add --lower-quant)
    model.mlir:1:1: error: dynamic shapes are not supported yet: tensor<?x64xf32>
"""

from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Attribute, Operation

from qdialect.diagnostics import QuantDiagnostic, locate_op

LOWERING_FLAG = "--lower-quant"


def _dynamic_type(types: list[Attribute]) -> Attribute | None:
    for t in types:
        if isinstance(t, TensorType) and any(d < 0 for d in t.get_shape()):
            return t
    return None


def check_static_shapes(module: Operation) -> None:
    """Every tensor type in `module` has a static shape (dynamic shapes come later)."""
    for op in module.walk():
        types = [v.type for v in (*op.operands, *op.results)]
        types += [a.type for r in op.regions for b in r.blocks for a in b.args]
        if isinstance(op, func.FuncOp):
            types += [*op.function_type.inputs.data, *op.function_type.outputs.data]
        if (dynamic := _dynamic_type(types)) is not None:
            raise QuantDiagnostic(locate_op(op), f"dynamic shapes are not supported yet: {dynamic}")


def check_translatable(module: ModuleOp, target: str) -> None:
    """`module` is lowered IR that `-t target` can compile (see the module docstring)."""
    for op in module.walk():
        if op.name.startswith("quant."):
            raise QuantDiagnostic(
                locate_op(op),
                f"{op.name} must be lowered before -t {target} (add {LOWERING_FLAG})",
            )
    for op in module.ops:
        if not isinstance(op, func.FuncOp):
            continue
        name = op.sym_name.data
        if not op.body.blocks:
            raise QuantDiagnostic(
                locate_op(op),
                f"function @{name} has no body: -t {target} compiles function definitions",
            )
        last = op.body.blocks[-1].last_op
        if not isinstance(last, func.ReturnOp):
            raise QuantDiagnostic(
                locate_op(last or op), f"function @{name} does not end with func.return"
            )
    check_static_shapes(module)
