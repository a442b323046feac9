"""PTX for NVIDIA GPUs: the same lowered IR, translated for nvptx64 (``qopt -t ptx``).

Everything but the loop-to-thread mapping is `codegen.translate`'s: bufferization, phases,
loop nests, the body op table, element types and the `floatfmt` conversions. The
differences are the target (``nvptx64-nvidia-cuda``, cpu = the SM architecture, a PTX ISA
feature ``+ptxNN``: see `PTX_ARCHS`) and `_KernelEmitter`, which makes every phase a ``ptx_kernel`` with the CPU ABI

    .entry f__phaseK(i8** data, i64** strides, i64 lo, i64 hi)

(`data` and `strides` are device pointers to the tables of design.md section 2). Mapping:

* a parallel phase (`PhaseSpec.parallel`) runs a grid-stride loop over its outer dimension,
  ``for i = lo + ctaid.x * ntid.x + tid.x; i < hi; i += ntid.x * nctaid.x``, each thread
  running the CPU loop nest for the chunk ``[i, i + 1)``: one row (with its inner loops and
  per-row / per-block reductions, kept in registers) or one element of a 1-d phase;
* a phase that is not parallel (a reduction over dimension 0: per-tensor amax, the 0-d
  nests) runs its whole ``[lo, hi)`` range on thread 0 of block 0; the other threads exit.

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

import llvmlite
import llvmlite.binding as llvm
from llvmlite import ir
from xdsl.dialects.builtin import ModuleOp

from qopt.codegen.cache import MemoryCache
from qopt.codegen.target import (
    TargetConfig,
    create_target_machine,
    optimize,
    parse_llvm_ir,
    with_data_layout,
)
from qopt.codegen.translate import (
    I64,
    PHASE_FN_TYPE,
    KernelSpec,
    _const,
    _PhaseEmitter,
    parse_lowered,
    translate_module,
)

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
I32 = ir.IntType(32)


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
# The loop-to-thread mapping


def _sreg(b: ir.IRBuilder, name: str) -> ir.Value:
    """A special register (``%tid.x``, ...) zero-extended to i64."""
    symbol = f"llvm.nvvm.read.ptx.sreg.{name}"
    try:
        fn = b.module.get_global(symbol)
    except KeyError:
        fn = ir.Function(b.module, ir.FunctionType(I32, []), symbol)
    return b.zext(b.call(fn, []), I64)


class _KernelEmitter(_PhaseEmitter):
    """A phase as a ``ptx_kernel``: a grid-stride loop over dimension 0 (see module doc)."""

    serial_entry = False

    def emit(self) -> ir.Function:
        body = self._body_function()
        kernel = ir.Function(self.module, PHASE_FN_TYPE, self.name)
        kernel.calling_convention = "ptx_kernel"
        kernel.attributes.add("nounwind")
        data, strides, lo, hi = kernel.args
        b = ir.IRBuilder(kernel.append_basic_block("entry"))
        params = self._unpack_abi(b, data, strides)
        tid, ntid = _sreg(b, "tid.x"), _sreg(b, "ntid.x")
        ctaid, nctaid = _sreg(b, "ctaid.x"), _sreg(b, "nctaid.x")
        first = b.add(b.mul(ctaid, ntid), tid)
        if all(n.splittable() for n in self.members):
            step, start = b.mul(ntid, nctaid), b.add(lo, first)
            preheader = b.block
            header = b.append_basic_block("grid.header")
            loop = b.append_basic_block("grid.body")
            done = b.append_basic_block("grid.exit")
            b.branch(header)
            b.position_at_end(header)
            i = b.phi(I64, name="i")
            i.add_incoming(start, preheader)
            b.cbranch(b.icmp_signed("<", i, hi), loop, done)
            b.position_at_end(loop)
            b.call(body, [*params, i, b.add(i, _const(1))])
            i.add_incoming(b.add(i, step), b.block)
            b.branch(header)
            b.position_at_end(done)
        else:
            with b.if_then(b.icmp_unsigned("==", first, _const(0))):
                b.call(body, [*params, lo, hi])
        b.ret_void()
        return kernel


# --------------------------------------------------------------------------------------
# Module -> LLVM IR -> PTX -> cubin


def _as_module(module: ModuleOp | str) -> ModuleOp:
    return parse_lowered(module) if isinstance(module, str) else module


def translate_ptx(
    module: ModuleOp | str, arch: str = DEFAULT_ARCH
) -> tuple[str, dict[str, KernelSpec]]:
    """The (unoptimized) NVPTX LLVM IR of lowered IR, and the spec of each function."""
    translation = translate_module(
        _as_module(module), ptx_config(arch), phase_emitter=_KernelEmitter
    )
    return str(translation.llvm_module), translation.kernels


_EXTERN_FUNC = re.compile(r"^\s*\.extern\s+\.func\b.*$", re.MULTILINE)
_PTX_CACHE: MemoryCache[tuple[str, dict[str, KernelSpec]]] = MemoryCache(capacity=256)


def _emit(module: ModuleOp | str, arch: str) -> tuple[str, dict[str, KernelSpec]]:
    parsed = _as_module(module)
    config = ptx_config(arch)
    key = (str(parsed), *config.cache_key, llvmlite.__version__)
    cached = _PTX_CACHE.get(key)
    if cached is not None:
        return cached
    text, kernels = translate_ptx(parsed, arch)
    # A private context: freed with the module, and safe next to a JIT compile in another thread.
    llvm_module = optimize(parse_llvm_ir(text, llvm.create_context()), config)
    ptx = create_target_machine(config).emit_assembly(llvm_module)
    libcalls = _EXTERN_FUNC.findall(ptx)
    if libcalls:
        raise RuntimeError(
            "the PTX calls functions that do not exist on the GPU: "
            + "; ".join(line.strip() for line in libcalls)
        )
    _PTX_CACHE.put(key, (ptx, kernels))
    return ptx, kernels


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
