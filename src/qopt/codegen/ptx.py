"""PTX for NVIDIA GPUs: the same lowered IR, translated for nvptx64 (``qopt -t ptx``).

Everything but the target is shared with the CPU: the stage chain of `codegen.stages`
(translate -> optimize -> assembly, cached in the one compilation cache), bufferization,
phases, loop nests, the body op table, element types and the `floatfmt` conversions. The
target is ``nvptx64-nvidia-cuda``, cpu = the SM architecture, a PTX ISA feature ``+ptxNN``
(see `PTX_ARCHS`); its triple selects `mapping.GridStrideMapping`, which makes every phase
a ``ptx_kernel`` with the CPU ABI

    .entry f__phaseK(i8** data, i64** strides, i64 lo, i64 hi)

(`data` and `strides` are device pointers to the tables of design.md section 2): a
grid-stride loop over the outer dimension of a parallel phase, thread 0 of block 0 for the
others (see `codegen.mapping`).

No libcalls: every intrinsic of the body table (roundeven, min/max, fabs, copysign, fma,
floor, ...) has an NVPTX instruction, and `emit_ptx` refuses PTX with an ``.extern .func``.
`llvm.log2` / `llvm.exp2` would lower to approximate ``lg2`` / ``ex2`` instructions; the
lowering does not emit them. Float conversions to f8/f4/bf16 use `floatfmt`'s integer
path on every architecture (bit-identical to the CPU; no ``cvt.satfinite`` hardware path).
Without fast-math flags the NVPTX backend emits ``mul.rn`` / ``add.rn`` / ``div.rn``, which
``ptxas`` may not contract to ``fma``, so results match the CPU bit for bit.

`emit_ptx` needs only llvmlite; `assemble` needs ``ptxas``; `compile_ptx` returns a
`GpuModule` that loads the PTX through the CUDA driver (`codegen.gpu_runner`) on first call.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from xdsl.dialects.builtin import ModuleOp

from qopt.codegen.abi import KernelSpec
from qopt.codegen.stages import assembly, to_llvm
from qopt.codegen.target import TargetConfig, with_data_layout

__all__ = [
    "PTX_ARCHS",
    "PTX_TRIPLE",
    "PTX_VERSIONS",
    "GpuModule",
    "PtxasError",
    "assemble",
    "check_arch",
    "compile_ptx",
    "emit_ptx",
    "ptx_config",
    "translate_ptx",
]

PTX_TRIPLE = "nvptx64-nvidia-cuda"
DEFAULT_ARCH = "sm_90"


class PtxasError(RuntimeError):
    """``ptxas`` rejected the PTX (the message is ptxas's own) or is not installed."""


# The GPU architectures PTX is emitted for, each with the lowest PTX ISA version (x10) that
# LLVM 22's NVPTX backend (llvmlite 0.50) accepts for it. LLVM aborts the process ("LLVM
# ERROR: PTX version 7.8 does not support target 'sm_90a'") when a target machine is made
# with a lower `+ptxNN`, and emits PTX for an unknown `sm_NNN` it only warns about, so both
# are checked here before LLVM is called. The version emitted is this minimum: the PTX then
# loads on the oldest driver that knows the architecture. `ptxas` of CUDA 13 accepts all of
# them but sm_70 / sm_72 (Volta, dropped in CUDA 13; CUDA 12's ptxas takes them); sm_101*
# is left out (renamed sm_110 in CUDA 13). `a` = architecture-specific features (PTX only
# for that exact GPU), `f` = family-portable features (CUDA 12.9+).
PTX_ARCHS: Mapping[str, int] = MappingProxyType(
    {
        "sm_70": 60,
        "sm_72": 61,
        "sm_75": 63,
        "sm_80": 70,
        "sm_86": 71,
        "sm_87": 74,
        "sm_88": 90,
        "sm_89": 78,
        "sm_90": 78,
        "sm_90a": 80,
        "sm_100": 86,
        "sm_100a": 86,
        "sm_100f": 88,
        "sm_103": 88,
        "sm_103a": 88,
        "sm_103f": 88,
        "sm_110": 90,
        "sm_110a": 90,
        "sm_110f": 90,
        "sm_120": 87,
        "sm_120a": 87,
        "sm_120f": 88,
        "sm_121": 88,
        "sm_121a": 88,
        "sm_121f": 88,
    }
)
# The PTX ISA versions LLVM 22 knows (from 6.0, the first with a listed architecture);
# `+ptxNN` outside this set is ignored by LLVM with a warning.
PTX_VERSIONS = frozenset(
    (60, 61, 62, 63, 64, 65, 70, 71, 72, 73, 74, 75, 76, 77, 78)
    + (80, 81, 82, 83, 84, 85, 86, 87, 88, 90)
)


def check_arch(arch: str) -> str:
    """`arch` if it is in `PTX_ARCHS`, else a ValueError that names the supported ones."""
    if arch not in PTX_ARCHS:
        raise ValueError(f"unknown GPU architecture {arch!r}; supported: {', '.join(PTX_ARCHS)}")
    return arch


def ptx_config(arch: str = DEFAULT_ARCH, features: str | None = None) -> TargetConfig:
    """The NVPTX target for `arch` (a key of `PTX_ARCHS`: ``sm_80``, ``sm_90a``, ...).

    `features` defaults to ``+ptxNN``, the lowest PTX ISA version `arch` needs; a given one
    must be a single ``+ptxNN`` that LLVM knows and that is at least that version.
    """
    minimum = PTX_ARCHS[check_arch(arch)]
    if features is None:
        features = f"+ptx{minimum}"
    match = re.fullmatch(r"\+ptx(\d+)", features)
    if match is None or int(match[1]) not in PTX_VERSIONS:
        known = ", ".join(f"+ptx{v}" for v in sorted(PTX_VERSIONS))
        raise ValueError(f"PTX features must be one of {known}; got {features!r}")
    if int(match[1]) < minimum:
        raise ValueError(
            f"{arch} needs PTX ISA {minimum // 10}.{minimum % 10} or later (+ptx{minimum}); "
            f"got {features!r}"
        )
    return with_data_layout(TargetConfig(PTX_TRIPLE, arch, features))


# --------------------------------------------------------------------------------------
# Module -> LLVM IR -> PTX -> cubin


def translate_ptx(
    module: ModuleOp | str, arch: str = DEFAULT_ARCH
) -> tuple[str, dict[str, KernelSpec]]:
    """The (unoptimized) NVPTX LLVM IR of lowered IR, and the spec of each function."""
    lowered = to_llvm(module, ptx_config(arch))
    return lowered.llvm_ir, lowered.kernels


_EXTERN_FUNC = re.compile(r"^\s*\.extern\s+\.func\b.*$", re.MULTILINE)


def _emit(module: ModuleOp | str, arch: str) -> tuple[str, dict[str, KernelSpec]]:
    lowered = to_llvm(module, ptx_config(arch))
    ptx = assembly(lowered)
    libcalls = _EXTERN_FUNC.findall(ptx)
    if libcalls:
        raise RuntimeError(
            "the PTX calls functions that do not exist on the GPU: "
            + "; ".join(line.strip() for line in libcalls)
        )
    return ptx, lowered.kernels


def emit_ptx(module: ModuleOp | str, arch: str = DEFAULT_ARCH) -> str:
    """PTX text of lowered IR for `arch`: one ``.entry`` per phase of every function."""
    return _emit(module, arch)[0]


def assemble(ptx: str, arch: str = DEFAULT_ARCH) -> bytes:
    """Assemble PTX with ``ptxas -arch=<arch>`` and return the cubin.

    `PtxasError` carries ptxas's message when it rejects the PTX or is not installed;
    an `arch` not in `PTX_ARCHS` is a ValueError.
    """
    check_arch(arch)
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        raise PtxasError("ptxas is not on PATH (it comes with the CUDA toolkit)")
    with tempfile.TemporaryDirectory(prefix="qopt-ptx-") as tmp:
        source, cubin = os.path.join(tmp, "kernel.ptx"), os.path.join(tmp, "kernel.cubin")
        with open(source, "w") as f:
            f.write(ptx)
        proc = subprocess.run(
            [ptxas, f"-arch={arch}", "-o", cubin, source],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            message = (proc.stderr or proc.stdout).strip()
            raise PtxasError(f"ptxas -arch={arch} failed (exit {proc.returncode}):\n{message}")
        with open(cubin, "rb") as f:
            return f.read()


class GpuModule(Mapping[str, Any]):
    """The PTX of a lowered module and its kernel specs; ``module[name](*arrays)`` runs a
    function on the GPU (CUDA driver via `codegen.gpu_runner`, loaded on first call)."""

    def __init__(self, ptx: str, kernels: Mapping[str, KernelSpec], arch: str) -> None:
        self.ptx = ptx
        self.kernels = dict(kernels)
        self.arch = arch
        self._loaded: Any = None

    def cubin(self) -> bytes:
        """The PTX assembled by ``ptxas`` (for inspection; the driver JIT-compiles the PTX)."""
        return assemble(self.ptx, self.arch)

    def _runtime(self) -> Any:
        if self._loaded is None:
            from qopt.codegen.gpu_runner import load

            self._loaded = load(self.ptx)
        return self._loaded

    def __getitem__(self, name: str) -> Any:
        if name not in self.kernels:
            raise KeyError(f"no function @{name} (have: {', '.join(self.kernels)})")
        from qopt.codegen.gpu_runner import GpuKernel

        return GpuKernel(self.kernels[name], self._runtime)

    def __call__(self, *arrays: Any, **kwargs: Any) -> Any:
        """Call the only function of a one-function module."""
        if len(self.kernels) != 1:
            raise TypeError(f"the module has {len(self.kernels)} functions; index it by name")
        return self[next(iter(self.kernels))](*arrays, **kwargs)

    def __iter__(self) -> Iterator[str]:
        return iter(self.kernels)

    def __len__(self) -> int:
        return len(self.kernels)

    def __repr__(self) -> str:
        return f"GpuModule({', '.join(self.kernels)}; {self.arch})"


def compile_ptx(module: ModuleOp | str, arch: str = DEFAULT_ARCH) -> GpuModule:
    """PTX for `arch` wrapped in a `GpuModule`; nothing CUDA is touched until a call."""
    ptx, kernels = _emit(module, arch)
    return GpuModule(ptx, kernels, arch)
