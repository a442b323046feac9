"""JIT-compile lowered IR for the host CPU (MCJIT) and call it on numpy arrays.

    compiled = compile_module(module_or_text)          # cached (see cache.py)
    y = compiled["quantize"](x, scale)                  # numpy in, numpy out

`compile_module` runs the stage chain of `stages.py` - translate to LLVM IR, optimise for the
configured target - and loads the optimized module into an MCJIT engine. The engine, with the private LLVM
context of its module, is owned by an `_Engine` that the `CompiledModule` and each of its
`Kernel`s reference (nothing references back, so there is no cycle to wait for the garbage
collector): the engine is closed as soon as the last of them is gone. The memory cache
holds compiled modules, not engines; once it evicts or `clear_cache` drops a module that no
caller still holds, its machine code is freed at once, while a `Kernel` a caller kept stays
callable. `live_engines()` counts the engines not yet freed; `compile_count()` counts every
engine made (never decreasing), the hook behind `qopt.compile_stats()`. A `Kernel`
implements the runtime half of the kernel ABI of docs/design.md section 2:

* arguments are checked against the `KernelSpec` (dtype -> TypeError, shape -> ValueError,
  both naming the argument); strided and negative-stride views are passed as they are,
  with element strides = byte strides // itemsize;
* a kernel with dynamic (`?`) dimensions takes any shapes that fit: the first call with
  new argument shapes evaluates `KernelSpec.plan` (the shape checks, the result, scratch
  and phase extents, a ValueError when they do not fit) and keeps it per shapes, so a
  later call with the same shapes costs a dict lookup; the extents travel in the layout
  rows next to the strides (abi.py);
* results (unless `out=` is given) and scratch buffers are fresh C-contiguous arrays;
* the `data` / `strides` pointer arrays are preallocated per kernel and thread, so a warm
  call only writes a few pointers (small kernels are dominated by this overhead);
* a parallel phase with at least `parallel_threshold` loop iterations is split into
  contiguous `[lo, hi)` chunks run on a persistent thread pool (ctypes releases the GIL
  during the foreign call); anything smaller runs in one call of the serial entry.
"""

from __future__ import annotations

import ctypes
import os
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import llvmlite.binding as llvm
import numpy as np
from xdsl.dialects.builtin import ModuleOp

from qopt.codegen import cache
from qopt.codegen.abi import BufferSpec, KernelSpec, ShapePlan, c_strides
from qopt.codegen.stages import LLVMStage, optimized_module, to_llvm
from qopt.codegen.target import TargetConfig, create_target_machine, host_config

__all__ = [
    "CompiledModule",
    "Kernel",
    "clear_cache",
    "compile_count",
    "compile_module",
    "live_engines",
]

THRESHOLD_ENV = "QOPT_PARALLEL_THRESHOLD"
THREADS_ENV = "QOPT_NUM_THREADS"
DEFAULT_PARALLEL_THRESHOLD = 1 << 18  # loop iterations; below this threads cost more than they save

_PHASE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
_SERIAL_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


@dataclass(frozen=True)
class _PhaseCall:
    function: _PHASE_FN  # type: ignore[valid-type]
    chunks: tuple[tuple[int, int], ...]


def _num_threads() -> int:
    return max(1, int(os.environ.get(THREADS_ENV, 0)) or os.cpu_count() or 1)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _thread_pool() -> ThreadPoolExecutor:
    """The persistent pool that runs all but the first chunk of a split phase."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, _num_threads() - 1), thread_name_prefix="qopt")
        return _pool


def _chunks(extent: int, parts: int) -> tuple[tuple[int, int], ...]:
    """`[0, extent)` cut into `parts` contiguous, nearly equal, non-empty ranges."""
    parts = max(1, min(parts, extent))
    bounds = [extent * k // parts for k in range(parts + 1)]
    return tuple(zip(bounds[:-1], bounds[1:]))


_live = 0  # engines created and not yet closed
_live_lock = threading.Lock()
_compiled = 0  # engines created, ever (incremented under _compile_lock)


def live_engines() -> int:
    """How many MCJIT engines this process holds (compiled modules whose code is not freed)."""
    return _live


def compile_count() -> int:
    """How many modules this process compiled to machine code (memory cache misses; one
    loaded from the disk cache counts too). Never decreases: compare two readings."""
    return _compiled


def _close_engine(engine: llvm.ExecutionEngine, context: llvm.ContextRef) -> None:
    """Free the machine code, then the context of the module (the engine owns the module,
    which must go before its context)."""
    global _live
    engine.close()
    context.close()
    with _live_lock:
        _live -= 1


class _Engine:
    """Owns one MCJIT engine and the LLVM context of its module; both are freed when the
    last object holding this one (a `CompiledModule`, a `Kernel`) is gone."""

    def __init__(self, engine: llvm.ExecutionEngine, context: llvm.ContextRef) -> None:
        global _live
        self.engine = engine
        with _live_lock:
            _live += 1
        finalizer = weakref.finalize(self, _close_engine, engine, context)
        # At interpreter exit the pool threads may still be inside the code; the OS frees it.
        finalizer.atexit = False

    def function_address(self, symbol: str) -> int:
        address = self.engine.get_function_address(symbol)
        if not address:  # MCJIT answers 0 instead of raising
            raise RuntimeError(f"JIT has no code for symbol {symbol!r}")
        return address


class _Frame:
    """The preallocated `data` and `strides` arrays of one kernel for one thread: per
    buffer a layout row of its strides, then its extents (abi.py)."""

    def __init__(self, buffers: Sequence[BufferSpec], nargs: int) -> None:
        n = max(len(buffers), 1)
        self.nargs = nargs
        self.data = (ctypes.c_void_p * n)()
        self.strides = (ctypes.c_void_p * n)()
        self.stride_rows = [(ctypes.c_int64 * max(2 * len(b.shape), 1))() for b in buffers]
        for k, row in enumerate(self.stride_rows):
            self.strides[k] = ctypes.addressof(row)
        self.arg_byte_strides: list[tuple[int, ...] | None] = [None] * len(buffers)
        self.shapes: tuple[tuple[int, ...], ...] | None = None
        self.data_address = ctypes.addressof(self.data)
        self.strides_address = ctypes.addressof(self.strides)

    def set_shapes(self, shapes: tuple[tuple[int, ...], ...]) -> None:
        """Write the extents of every buffer and the C strides of results and scratch."""
        for k, (shape, row) in enumerate(zip(shapes, self.stride_rows)):
            rank = len(shape)
            row[rank : 2 * rank] = shape
            if k >= self.nargs:  # results and scratch are C-contiguous
                row[:rank] = c_strides(shape)
        self.shapes = shapes


@dataclass(frozen=True)
class _CallPlan:
    """What a call with one set of argument shapes runs: shapes, and the phase calls."""

    shapes: ShapePlan
    results: tuple[tuple[int, ...], ...]
    scratch: tuple[tuple[int, ...], ...]
    chunks: tuple[tuple[tuple[int, int], ...], ...]
    phases: list[_PhaseCall] | None  # None: one call of the serial entry


class Kernel:
    """One compiled `func.func`: call it with numpy arrays, get numpy arrays back."""

    def __init__(self, spec: KernelSpec, engine: _Engine) -> None:
        self.spec = spec
        self._engine = engine  # keeps the code alive while this kernel can be called
        self._serial = _SERIAL_FN(engine.function_address(spec.entry))
        self._phases = [_PHASE_FN(engine.function_address(p.function)) for p in spec.phases]
        self._args = spec.args
        self._nargs = len(spec.args)
        self._alignments = [a.dtype.alignment for a in spec.args]
        self._local = threading.local()
        self._threshold = int(os.environ.get(THRESHOLD_ENV, DEFAULT_PARALLEL_THRESHOLD))
        self._threads = _num_threads()
        self._static = spec.static
        self._plans: dict[tuple[tuple[int, ...], ...], _CallPlan] = {}
        self._replan()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def parallel_threshold(self) -> int:
        """Loop iterations from which a parallel phase is split across threads."""
        return self._threshold

    @parallel_threshold.setter
    def parallel_threshold(self, value: int) -> None:
        self._threshold = value
        self._replan()

    @property
    def num_threads(self) -> int:
        """How many chunks a split phase is cut into (``QOPT_NUM_THREADS`` or the CPU count)."""
        return self._threads

    @num_threads.setter
    def num_threads(self, value: int) -> None:
        self._threads = max(1, value)
        self._replan()

    @property
    def chunks(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Per phase, the `[lo, hi)` ranges one call runs it in (of the last call's
        shapes, for a kernel with dynamic dimensions)."""
        return self._last.chunks

    def _replan(self) -> None:
        """Forget the call plans (the threading settings changed)."""
        self._plans.clear()
        if self._static:
            self._last = self._call_plan(tuple(b.shape for b in self._args))  # type: ignore[misc]
        else:
            self._last = _CallPlan(ShapePlan((), (), ()), (), (), (), None)

    def _call_plan(self, shapes: tuple[tuple[int, ...], ...]) -> _CallPlan:
        """The plan of a call with arguments of `shapes` (ValueError when they do not fit)."""
        plan = self._plans.get(shapes)
        if plan is not None:
            return plan
        spec = self.spec
        shape_plan = spec.plan(shapes)
        chunks = tuple(
            _chunks(extent, self._threads)
            if p.parallel and work >= self._threshold and self._threads > 1
            else ((0, extent),)
            for p, extent, work in zip(spec.phases, shape_plan.extents, shape_plan.work)
        )
        calls = [_PhaseCall(fn, c) for fn, c in zip(self._phases, chunks)]
        nres = len(spec.results)
        own = shape_plan.shapes[self._nargs :]
        plan = _CallPlan(
            shape_plan,
            own[:nres],
            own[nres:],
            chunks,
            # None: nothing to split, one call of the serial entry runs every phase.
            calls if any(len(c) > 1 for c in chunks) else None,
        )
        if len(self._plans) >= 4096:  # bounded: a stream of shapes must not grow it
            self._plans.clear()
        self._plans[shapes] = plan
        return plan

    def __repr__(self) -> str:
        args = ", ".join(f"{b.name}: {b.spelled()}" for b in self._args)
        results = ", ".join(b.spelled() for b in self.spec.results)
        return f"<Kernel @{self.name}({args}) -> ({results})>"

    # -- calling ------------------------------------------------------------------------

    def __call__(self, *inputs: np.ndarray, out: np.ndarray | Sequence[np.ndarray] | None = None):
        if len(inputs) != self._nargs:
            names = ", ".join(b.name for b in self._args)
            raise TypeError(
                f"@{self.name}() takes {self._nargs} arguments ({names}), got {len(inputs)}"
            )
        frame = self._frame()
        # Every array whose address is handed over stays referenced until the call returns
        # (numpy scalars become 0-d arrays here, misaligned inputs aligned copies).
        arrays = [self._bind_arg(frame, k, array) for k, array in enumerate(inputs)]
        if self._static:
            plan = self._last
        else:
            plan = self._call_plan(tuple([a.shape for a in arrays]))
            self._last = plan
        if frame.shapes is not plan.shapes.shapes:
            frame.set_shapes(plan.shapes.shapes)
        outputs = self._outputs_for(out, arrays, plan)
        data = frame.data
        for k, array in enumerate(outputs, self._nargs):
            data[k] = array.ctypes.data
        self._run(frame, plan)
        results = outputs[: len(self.spec.results)]
        return results[0] if len(results) == 1 else tuple(results)

    def _frame(self) -> _Frame:
        frame = getattr(self._local, "frame", None)
        if frame is None:
            frame = self._local.frame = _Frame(self.spec.buffers, self._nargs)
        return frame

    def _bind_arg(self, frame: _Frame, k: int, array: object) -> np.ndarray:
        """Check argument `k` and write its address (and strides, when they changed)."""
        array = self._check_arg(k, array, self._args[k])
        address = array.ctypes.data
        if address % self._alignments[k]:
            array = np.array(array, copy=True)
            address = array.ctypes.data
        if array.strides != frame.arg_byte_strides[k]:
            array = self._set_arg_strides(frame, k, array)
            address = array.ctypes.data
        frame.data[k] = address
        return array

    def _check_arg(self, k: int, array: object, spec: BufferSpec) -> np.ndarray:
        if not isinstance(array, np.ndarray):
            if not isinstance(array, np.generic):
                raise TypeError(
                    f"@{self.name}: argument {k} ({spec.name!r}) must be a numpy array of "
                    f"dtype {spec.dtype}, got {type(array).__name__}"
                )
            array = np.asarray(array)
        if array.dtype != spec.dtype:
            raise TypeError(
                f"@{self.name}: argument {k} ({spec.name!r}) must have dtype {spec.dtype}, "
                f"got {array.dtype}"
            )
        if self._static and array.shape != spec.shape:
            raise ValueError(
                f"@{self.name}: argument {k} ({spec.name!r}) must have shape {spec.shape}, "
                f"got {array.shape}"
            )
        return array

    @staticmethod
    def _set_arg_strides(frame: _Frame, k: int, array: np.ndarray) -> np.ndarray:
        """Record the element strides of argument `k`; an array whose byte strides are not
        a multiple of its item size (a field of a record array) is passed as a copy."""
        itemsize = array.itemsize
        if any(s % itemsize for s in array.strides):
            array = np.array(array, copy=True)
        row = frame.stride_rows[k]
        for j, s in enumerate(array.strides):
            row[j] = s // itemsize
        frame.arg_byte_strides[k] = array.strides
        return array

    def _outputs_for(
        self, out: object, inputs: Sequence[np.ndarray], plan: _CallPlan
    ) -> list[np.ndarray]:
        scratch = [np.empty(n, b.dtype) for n, b in zip(plan.scratch, self.spec.scratch)]
        if out is None:
            return [np.empty(n, b.dtype) for n, b in zip(plan.results, self.spec.results)] + scratch
        given = [out] if isinstance(out, np.ndarray) else list(out)  # type: ignore[arg-type]
        if len(given) != len(self.spec.results):
            raise ValueError(
                f"@{self.name}: out must hold {len(self.spec.results)} arrays, got {len(given)}"
            )
        for k, (array, spec, shape) in enumerate(zip(given, self.spec.results, plan.results)):
            self._check_out(k, array, spec, shape, [*inputs, *given[:k]])
        return given + scratch

    def _check_out(
        self,
        k: int,
        array: object,
        spec: BufferSpec,
        shape: tuple[int, ...],
        others: Sequence[np.ndarray],
    ) -> None:
        what = f"@{self.name}: out[{k}] ({spec.name!r})"
        if not isinstance(array, np.ndarray) or array.dtype != spec.dtype:
            raise TypeError(f"{what} must be a numpy array of dtype {spec.dtype}")
        if array.shape != shape:
            raise ValueError(f"{what} must have shape {shape}, got {array.shape}")
        if not (array.flags.c_contiguous and array.flags.writeable):
            raise ValueError(f"{what} must be C-contiguous and writeable")
        if any(np.may_share_memory(array, other) for other in others):
            raise ValueError(f"{what} must not overlap an input or another output")

    def _run(self, frame: _Frame, call_plan: _CallPlan) -> None:
        data, strides = frame.data_address, frame.strides_address
        plan = call_plan.phases
        if plan is None:
            self._serial(data, strides)
            return
        pool = _thread_pool()
        for call in plan:
            (lo, hi), *rest = call.chunks
            futures = [pool.submit(call.function, data, strides, a, b) for a, b in rest]
            call.function(data, strides, lo, hi)
            for future in futures:
                future.result()


class CompiledModule(Mapping[str, Kernel]):
    """The MCJIT engine of one compiled `builtin.module` and a `Kernel` per function."""

    def __init__(
        self,
        engine: _Engine,
        specs: Mapping[str, KernelSpec],
        llvm_ir: str,
        config: TargetConfig,
    ) -> None:
        self._engine = engine
        self.llvm_ir = llvm_ir
        self.config = config
        self.kernels = {name: Kernel(spec, engine) for name, spec in specs.items()}

    def with_specs(self, specs: Mapping[str, KernelSpec]) -> CompiledModule:
        """This module's machine code behind ``specs``: the same LLVM IR can come from
        lowered IR whose element types differ only in signedness (``ui16`` against
        ``i16`` read as unsigned), and the kernels must check the caller's dtypes."""
        if {name: kernel.spec for name, kernel in self.kernels.items()} == dict(specs):
            return self
        return CompiledModule(self._engine, specs, self.llvm_ir, self.config)

    @property
    def engine(self) -> llvm.ExecutionEngine:
        return self._engine.engine

    def function_address(self, symbol: str) -> int:
        return self._engine.function_address(symbol)

    def __getitem__(self, name: str) -> Kernel:
        try:
            return self.kernels[name]
        except KeyError:
            raise KeyError(
                f"no function @{name} in the compiled module (has {sorted(self.kernels)})"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.kernels)

    def __len__(self) -> int:
        return len(self.kernels)


_compile_lock = threading.RLock()


def clear_cache() -> None:
    """Forget the compiled modules of this process (the disk cache stays).

    The engine of every module no caller holds (directly or through one of its kernels) is
    freed here; the others are freed when their last holder is.
    """
    cache.MEMORY_CACHE.clear("jit")


def compile_module(module: ModuleOp | str, *, config: TargetConfig | None = None) -> CompiledModule:
    """Compile lowered IR (a module or its text) for the host, or `config`'s target.

    Cached in memory (kind ``jit``) by (translated LLVM IR, target, llvmlite version); with
    ``QOPT_CACHE_DIR`` set the object code is also cached on disk (kind ``obj``) and reused
    by other processes.
    """
    global _compiled
    lowered = to_llvm(module, config or host_config())
    key = lowered.key("jit")
    compiled = cache.MEMORY_CACHE.get(key)
    if not isinstance(compiled, CompiledModule):
        with _compile_lock:
            compiled = cache.MEMORY_CACHE.get(key)
            if not isinstance(compiled, CompiledModule):
                compiled = _compile(lowered)
                cache.MEMORY_CACHE.put(key, compiled)
                _compiled += 1
    return compiled.with_specs(lowered.kernels)


def _compile(lowered: LLVMStage) -> CompiledModule:
    context = llvm.create_context()
    disk, digest = cache.disk_cache(), cache.key_digest(lowered.key("obj"))
    # Loaded (and verified) before the engine exists: a stored object makes the IR irrelevant.
    cached_object = disk.load(digest) if disk is not None else None
    llvm_module = optimized_module(lowered, context, run_passes=cached_object is None)
    config = lowered.config
    engine = llvm.create_mcjit_compiler(llvm_module, create_target_machine(config, jit=True))
    owner = _Engine(engine, context)
    if disk is not None:
        disk.attach(engine, digest, cached_object)
    engine.finalize_object()
    return CompiledModule(owner, lowered.kernels, lowered.llvm_ir, config)
