"""The one place where the machine codegen compiles for is configured.

Everything target-specific lives here: llvmlite initialisation, the host triple / CPU /
feature string (overridable with ``QOPT_CPU`` and ``QOPT_FEATURES`` so that, say, AVX2-only
code can be produced and run on an AVX-512 host), the `TargetMachine` built from them, and
the LLVM optimisation pipeline (new pass manager, O3 with loop and SLP vectorisation).

A `TargetConfig` is a plain frozen value: it is part of every cache key (see `cache.py`), so
two configurations that would produce different machine code never share an entry.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field

import llvmlite
import llvmlite.binding as llvm

__all__ = [
    "TargetConfig",
    "create_target_machine",
    "host_config",
    "initialize_all",
    "initialize_native",
    "optimize",
    "parse_llvm_ir",
    "with_data_layout",
]

CPU_ENV = "QOPT_CPU"
FEATURES_ENV = "QOPT_FEATURES"
DEFAULT_OPT_LEVEL = 3


@functools.cache
def initialize_native() -> None:
    """Initialise the host target once (`llvm.initialize()` raises in llvmlite 0.50)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@functools.cache
def initialize_all() -> None:
    """Initialise every target in the wheel (NVPTX for PTX output); only when asked for."""
    initialize_native()
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()


@dataclass(frozen=True)
class TargetConfig:
    """What machine code is generated for: triple, CPU, feature string and opt level.

    `data_layout` is derived from the other fields (it is what the target machine reports)
    and is left out of equality and hashing.
    """

    triple: str
    cpu: str
    features: str
    opt_level: int = DEFAULT_OPT_LEVEL
    data_layout: str = field(default="", compare=False)

    @property
    def cache_key(self) -> tuple[str, str, str, int, str]:
        """The target half of a compilation cache key (llvmlite version included)."""
        return (self.triple, self.cpu, self.features, self.opt_level, llvmlite.__version__)


def _host_features() -> str:
    return llvm.get_host_cpu_features().flatten()


def _with_wide_vectors(features: str) -> str:
    """Let the vectorizer use 512-bit registers where the CPU has them.

    Several AVX-512 CPUs carry the tuning flag `prefer-256-bit`, under which loops are
    vectorised with ymm registers only. The kernels are streaming loops with no frequency
    penalty to fear, so the flag is switched off; a feature string that mentions it keeps
    its own choice.
    """
    if "prefer-256-bit" in features:
        return features
    return f"{features},-prefer-256-bit" if features else "-prefer-256-bit"


def host_config(opt_level: int = DEFAULT_OPT_LEVEL) -> TargetConfig:
    """The host machine, or the CPU / features named by ``QOPT_CPU`` / ``QOPT_FEATURES``.

    ``QOPT_CPU`` alone selects that CPU with its default features; ``QOPT_FEATURES`` alone
    keeps the host CPU name and uses the given feature string verbatim (for example
    ``-avx512f`` to forbid AVX-512 on an AVX-512 host).
    """
    return _config(os.environ.get(CPU_ENV), os.environ.get(FEATURES_ENV), opt_level)


@functools.cache
def _config(cpu: str | None, features: str | None, opt_level: int) -> TargetConfig:
    initialize_native()
    triple = llvm.get_process_triple()
    if cpu is None:
        cpu = llvm.get_host_cpu_name()
        if features is None:
            features = _host_features()
    features = _with_wide_vectors(features or "")
    return with_data_layout(TargetConfig(triple, cpu, features, opt_level))


def with_data_layout(config: TargetConfig) -> TargetConfig:
    """`config` with `data_layout` filled in from its target machine (if it was empty)."""
    if config.data_layout:
        return config
    layout = str(create_target_machine(config).target_data)
    return dataclasses.replace(config, data_layout=layout)


def create_target_machine(config: TargetConfig, *, jit: bool = False) -> llvm.TargetMachine:
    """A fresh `TargetMachine` for `config` (an MCJIT engine takes ownership of its own)."""
    if config.triple.startswith("nvptx"):
        initialize_all()
    else:
        initialize_native()
    target = llvm.Target.from_triple(config.triple)
    return target.create_target_machine(
        cpu=config.cpu,
        features=config.features,
        opt=config.opt_level,
        reloc="default",
        codemodel="jitdefault",
        jit=jit,
    )


def parse_llvm_ir(text: str, context: llvm.ContextRef | None = None) -> llvm.ModuleRef:
    """Parse LLVM IR text and verify it (the pass manager crashes on an invalid module).

    With `context` (``llvm.create_context()``) the module's types and constants live in that
    context and are freed with it; the global context keeps them for the life of the process
    and is not safe to use from two threads at once.
    """
    initialize_native()
    module = llvm.parse_assembly(text, context=context)
    module.verify()
    return module


def optimize(module: llvm.ModuleRef, config: TargetConfig) -> llvm.ModuleRef:
    """Run the O`opt_level` pipeline (loop + SLP vectorisation on) over `module` in place."""
    tm = create_target_machine(config)
    pto = llvm.create_pipeline_tuning_options(speed_level=config.opt_level)
    pto.loop_vectorization = config.opt_level >= 2
    pto.slp_vectorization = config.opt_level >= 2
    pto.loop_interleaving = config.opt_level >= 2
    pto.loop_unrolling = config.opt_level >= 2
    pass_builder = llvm.create_pass_builder(tm, pto)
    pass_builder.getModulePassManager().run(module, pass_builder)
    return module
