"""The stage chain every codegen output goes through, CPU and GPU alike (Triton's habit):

    lowered IR --translate--> LLVM IR --optimize--> optimized LLVM IR --codegen--> asm | PTX
                                                                         \\--MCJIT--> object code

Each stage is a function here, and each result can be dumped (`emit`: ``qopt -t llvm``,
``-t llvm`` with optimisation, ``-t asm``, ``-t ptx``). The target (`TargetConfig`) selects
everything target-specific: the triple picks the loop-to-thread mapping (`mapping`), the
target machine turns optimized IR into host assembly or PTX. Every stage is cached in
the one compilation cache (`cache`), keyed by the exact text of its input: ``llvm`` (the
translation, by the lowered IR) and ``asm`` (assembly or PTX text, memory and disk) here,
``jit`` / ``obj`` by `codegen.jit`, which runs the same chain and hands the optimized
module to MCJIT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import llvmlite.binding as llvm
from xdsl.dialects.builtin import ModuleOp

from qopt.codegen import cache
from qopt.codegen.abi import KernelSpec
from qopt.codegen.parsing import parse_lowered
from qopt.codegen.target import (
    TargetConfig,
    create_target_machine,
    host_config,
    optimize,
    parse_llvm_ir,
    with_data_layout,
)
from qopt.codegen.translate import translate_module
from qopt.ir.printing import print_ir

__all__ = [
    "STAGES",
    "LLVMStage",
    "Stage",
    "assembly",
    "emit",
    "optimized_module",
    "to_llvm",
]

Stage = Literal["llvm", "llvm-opt", "asm"]
STAGES: tuple[Stage, ...] = ("llvm", "llvm-opt", "asm")


@dataclass(frozen=True)
class LLVMStage:
    """The first stage's result: LLVM IR text, the spec of each function, the target."""

    llvm_ir: str
    kernels: dict[str, KernelSpec]
    config: TargetConfig

    def key(self, kind: str) -> cache.CacheKey:
        """The cache key of this module's artifact of `kind` (see `cache.KINDS`)."""
        return cache.cache_key(kind, self.llvm_ir, self.config)


def to_llvm(module: ModuleOp | str, config: TargetConfig | None = None) -> LLVMStage:
    """Stage 1: lowered IR (a module or its text) -> LLVM IR for `config` (the host's by
    default), with the loop-to-thread mapping of its triple. Cached (kind ``llvm``) by the
    exact text of the lowered IR."""
    config = with_data_layout(config or host_config())
    key = cache.cache_key("llvm", module if isinstance(module, str) else print_ir(module), config)
    lowered = cache.MEMORY_CACHE.get(key)
    if isinstance(lowered, LLVMStage):
        return lowered
    parsed = parse_lowered(module) if isinstance(module, str) else module
    translation = translate_module(parsed, config)
    lowered = LLVMStage(str(translation.llvm_module), translation.kernels, config)
    cache.MEMORY_CACHE.put(key, lowered)
    return lowered


def optimized_module(
    stage: LLVMStage, context: llvm.ContextRef | None = None, *, run_passes: bool = True
) -> llvm.ModuleRef:
    """Stage 2: the LLVM IR parsed (into `context`, a fresh one by default), verified and,
    unless `run_passes` is False, optimized at the target's opt level."""
    module = parse_llvm_ir(stage.llvm_ir, context or llvm.create_context())
    return optimize(module, stage.config) if run_passes else module


def assembly(stage: LLVMStage) -> str:
    """Stage 3: target assembly (host assembly, or PTX for an nvptx target), cached."""
    key = stage.key("asm")
    text = cache.MEMORY_CACHE.get(key)
    if isinstance(text, str):
        return text
    disk = cache.disk_cache()
    digest = cache.key_digest(key)
    stored = disk.load(digest) if disk is not None else None
    if stored is not None:
        text = stored.decode()
    else:
        # A private context: freed with the module, safe next to a JIT compile in a thread.
        text = create_target_machine(stage.config).emit_assembly(optimized_module(stage))
        if disk is not None:
            disk.store(digest, text.encode())
    cache.MEMORY_CACHE.put(key, text)
    return text


def emit(module: ModuleOp | str, stage: Stage, config: TargetConfig | None = None) -> str:
    """The text of one stage of `module` for `config` (the host's by default): ``llvm``
    (``qopt -t llvm``), ``llvm-opt`` (after the optimisation pipeline), ``asm`` (``qopt -t
    asm``; PTX for an nvptx `config`, as ``qopt -t ptx`` prints through `codegen.ptx`)."""
    lowered = to_llvm(module, config)
    match stage:
        case "llvm":
            return lowered.llvm_ir
        case "llvm-opt":
            return str(optimized_module(lowered))
        case "asm":
            return assembly(lowered)
    raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
