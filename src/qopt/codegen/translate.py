"""Translate the lowered IR (func/arith/math/linalg/tensor on tensors) to LLVM IR.

`codegen` compiles exactly what ``qopt --lower-quant`` prints (docs/design.md section 1):
xDSL 0.74 has no conversion of these dialects to LLVM, so codegen owns the translator, in
the style of `xdsl/backend/llvm/convert_op.py`: a type table (`types`), an op-dispatch table
(`scalar_ops`), and a `TranslationError` that names the op and its location for anything
outside the set.

This module is the entry of the first stage of `stages` (lowered IR -> LLVM IR). Per
`func.func` it runs, in order:

1. `schedule.schedule_function`: bufferization (`bufferize`) and the grouping of loop nests
   into phases and row plans, as plain data (a `schedule.Schedule`);
2. `emit_function`: the dense constants as internal globals, each phase through a
   `loops.PhaseEmitter` whose ABI entry maps the outer loop onto threads by a
   `mapping.LoopMapping` (CPU chunks, or a GPU grid-stride loop), and, for the CPU, the
   ``f__serial`` entry; the result is the function's `abi.KernelSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from qopt.codegen.abi import (
    I8,
    SERIAL_FN_TYPE,
    BufferSpec,
    KernelSpec,
    PhaseSpec,
    c_strides,
)
from qopt.codegen.affine import const
from qopt.codegen.bufferize import ConstantBuffer
from qopt.codegen.errors import TranslationError
from qopt.codegen.extents import emit_extent, symbols
from qopt.codegen.loops import PhaseEmitter, load_sym
from qopt.codegen.mapping import LoopMapping, mapping_for
from qopt.codegen.parsing import lowered_context, parse_lowered
from qopt.codegen.schedule import Schedule, schedule_function
from qopt.codegen.target import TargetConfig, host_config, with_data_layout
from qopt.codegen.types import ElementType, element_type

__all__ = [
    "BufferSpec",
    "ElementType",
    "KernelSpec",
    "PhaseSpec",
    "Translation",
    "TranslationError",
    "c_strides",
    "element_type",
    "emit_function",
    "lowered_context",
    "parse_lowered",
    "translate_module",
]


@dataclass(frozen=True)
class Translation:
    """The LLVM module of a whole `builtin.module` and the spec of each of its functions."""

    llvm_module: ir.Module
    kernels: dict[str, KernelSpec]


def _constant_global(module: ir.Module, name: str, constant: ConstantBuffer) -> ir.GlobalVariable:
    size = len(constant.data)
    var = ir.GlobalVariable(module, ir.ArrayType(I8, size), name)
    var.global_constant = True
    var.linkage = "internal"
    var.unnamed_addr = True
    var.align = constant.align
    var.initializer = ir.Constant(ir.ArrayType(I8, size), bytearray(constant.data))
    return var


def emit_function(schedule: Schedule, module: ir.Module, mapping: LoopMapping) -> KernelSpec:
    """Emit the LLVM functions of one scheduled `func.func` into `module`."""
    constants = {
        c: _constant_global(module, f"{schedule.name}__const{len(module.globals)}", c)
        for c in schedule.constants
    }
    for phase in schedule.phases:
        PhaseEmitter(module, phase, schedule, constants, mapping).emit()
    entry = ""
    if mapping.serial_entry:
        entry = _serial_entry(module, f"{schedule.name}__serial", schedule).name
    return schedule.kernel_spec(entry)


def _serial_entry(module: ir.Module, name: str, schedule: Schedule) -> ir.Function:
    """One call that runs every phase on its whole range (the single-threaded fast path);
    a dynamic range is computed from the argument extents in the layout rows."""
    fn = ir.Function(module, SERIAL_FN_TYPE, name)
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ranks = [len(buffer.shape) for buffer in schedule.buffers]
    for phase in (p.spec for p in schedule.phases):
        syms = {s: load_sym(b, fn.args[1], s, ranks[s.arg]) for s in symbols(phase.extent)}
        extent = emit_extent(b, phase.extent, syms)
        b.call(module.get_global(phase.function), [*fn.args, const(0), extent])
    b.ret_void()
    return fn


def translate_module(
    module: ModuleOp,
    config: TargetConfig | None = None,
    *,
    mapping: LoopMapping | None = None,
) -> Translation:
    """Translate a lowered `builtin.module` into one LLVM module plus a spec per function.

    `mapping` is the loop-to-thread mapping of the phases; by default the one of `config`'s
    triple (`mapping.mapping_for`: the GPU grid-stride loop for nvptx, else the CPU one)."""
    config = with_data_layout(config or host_config())
    mapping = mapping or mapping_for(config.triple)
    llvm_module = ir.Module(name="qopt")
    llvm_module.triple = config.triple
    llvm_module.data_layout = config.data_layout
    kernels: dict[str, KernelSpec] = {}
    for op in module.ops:  # function by function: the first error in the text is reported
        if not isinstance(op, func.FuncOp):
            raise TranslationError(
                f"unsupported op '{op.name}' at module level (expected func.func)", op
            )
        kernels[op.sym_name.data] = emit_function(schedule_function(op), llvm_module, mapping)
    return Translation(llvm_module, kernels)
