"""Checks the driver runs before a stage that cannot take a module, with located errors.

Codegen translates the lowered IR only (arith / math / linalg / tensor in ``func.func``
definitions of static shape); lower-quant handles static shapes only, and no pass
tensors beyond MAX_ELEMENTS. Rather than let
those stages fail inside (``TranslationError: unsupported op 'quant.quantize' at function
level``), the driver asks here first and names what to do:

    model.mlir:3:8: error: quant.quantize must be lowered before -t llvm (add --lower-quant)
    model.mlir:1:1: error: dynamic shapes are not supported yet: tensor<?x64xf32>
"""

from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Attribute, Operation

from qopt.ir.diagnostics import Diagnostic, locate_op

LOWERING_FLAG = "--lower-quant"
MAX_ELEMENTS = 1 << 40
"""The most elements a tensor may have: its offsets must fit codegen's i64 index
arithmetic, and the passes build tables along each dimension."""


def _types_of(op: Operation) -> list[Attribute]:
    types = [v.type for v in (*op.operands, *op.results)]
    types += [a.type for r in op.regions for b in r.blocks for a in b.args]
    if isinstance(op, func.FuncOp):
        types += [*op.function_type.inputs.data, *op.function_type.outputs.data]
    return types


def _element_count(t: TensorType) -> int:
    count = 1
    for n in t.get_shape():
        count *= n
    return count


def check_sizes(module: Operation, *, static: bool) -> None:
    """Every tensor type in `module` has at most MAX_ELEMENTS elements and, if `static`,
    a static shape (lower-quant and codegen take static shapes only, for now)."""
    for op in module.walk():
        for t in _types_of(op):
            if not isinstance(t, TensorType):
                continue
            if any(d < 0 for d in t.get_shape()):
                if static:
                    raise Diagnostic(
                        locate_op(op), f"dynamic shapes are not supported yet: {t}"
                    )
                continue
            if (count := _element_count(t)) > MAX_ELEMENTS:
                raise Diagnostic(
                    locate_op(op),
                    f"{t} has {count} elements; qopt compiles tensors of at most "
                    f"2^40 = {MAX_ELEMENTS}",
                )


def check_translatable(module: ModuleOp, target: str) -> None:
    """`module` is lowered IR that `-t target` can compile (see the module docstring)."""
    for op in module.walk():
        if op.name.startswith("quant."):
            raise Diagnostic(
                locate_op(op),
                f"{op.name} must be lowered before -t {target} (add {LOWERING_FLAG})",
            )
    for op in module.ops:
        if not isinstance(op, func.FuncOp):
            continue
        name = op.sym_name.data
        if not op.body.blocks:
            raise Diagnostic(
                locate_op(op),
                f"function @{name} has no body: -t {target} compiles function definitions",
            )
        last = op.body.blocks[-1].last_op
        if not isinstance(last, func.ReturnOp):
            raise Diagnostic(
                locate_op(last or op), f"function @{name} does not end with func.return"
            )
    check_sizes(module, static=True)
