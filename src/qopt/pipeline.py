"""The one pipeline from quant IR to machine code: parse -> verify -> passes -> lower ->
translate. The ``qopt`` driver runs its stages one by one (each printable); the Python API
runs them all through :func:`load`, :func:`lower` and :func:`compile_lowered`.

Before a stage that cannot take a module, the checks here give a located error that says
what to do, rather than letting the stage fail inside. Codegen translates the lowered IR
only (arith / math / linalg / tensor in ``func.func`` definitions), and no pass takes
tensors of static shape beyond MAX_ELEMENTS (dynamic ``?`` dimensions are checked by the
kernel when it is called):

    model.mlir:3:8: error: quant.quantize must be lowered before -t llvm (add --lower-quant)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Attribute, Operation

from qopt.ir.diagnostics import Diagnostic, locate_op, verify_module
from qopt.qdialect.context import make_context, parse_module

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


def check_sizes(module: Operation) -> None:
    """Every tensor type of static shape in `module` has at most MAX_ELEMENTS elements."""
    for op in module.walk():
        for t in _types_of(op):
            if not isinstance(t, TensorType):
                continue
            if any(d < 0 for d in t.get_shape()):
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
    check_sizes(module)


# --------------------------------------------------------------------------------------
# The stages, for the API


def load(text: str, filename: str = "<input>") -> ModuleOp:
    """Parse and verify quant IR text; errors are located Diagnostics."""
    module = parse_module(text, filename)
    verify_module(module)
    return module


def lower(module: ModuleOp, target: str = "cpu") -> ModuleOp:
    """`module` lowered in place by lower-quant (which chooses each op's lowering as
    choose-quant-lowering's default does), verified and checked for codegen; upstream
    MLIR / StableHLO quant ops are converted first (convert-quant-types)."""
    from qopt.passes.convert_quant_types import ConvertQuantTypesPass
    from qopt.passes.lower_quant import LowerQuantPass

    ConvertQuantTypesPass().apply(make_context(), module)
    check_sizes(module)
    LowerQuantPass().apply(make_context(), module)
    verify_module(module)
    check_translatable(module, target)
    return module


@contextlib.contextmanager
def translation_diagnostics() -> Iterator[None]:
    """Codegen's TranslationError names the op it stopped at: a Diagnostic located there
    (for every stage after lowering, in the driver and the API alike)."""
    from qopt.codegen.errors import TranslationError

    try:
        yield
    except TranslationError as err:
        where = locate_op(err.op) if err.op is not None else "<unknown>"
        raise Diagnostic(where, err.reason) from None


def compile_lowered(module: ModuleOp, *, target: str = "cpu", arch: str | None = None) -> Any:
    """Machine code for lowered IR: the CPU JIT's compiled module (kernels by function
    name), or the PTX module for ``target="ptx"``. A translation error is a Diagnostic."""
    with translation_diagnostics():
        if target == "ptx":
            from qopt.codegen.ptx import compile_ptx

            return compile_ptx(module, arch=arch or "sm_90")
        from qopt.codegen.jit import compile_module

        return compile_module(module)
