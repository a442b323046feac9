"""Run the PTX of `codegen.ptx` on an NVIDIA GPU (the runtime half of the kernel ABI).

    module = codegen.compile(text, target="ptx")      # a codegen.ptx.GpuModule
    y = module["f"](x, scale)                          # numpy or CUDA arrays in, numpy out

Backends, tried in this order (the optional ``gpu`` extra installs one):
``cuda-python`` (``from cuda.bindings import driver``, or the older ``from cuda import
cuda``) and CuPy. Every import happens on the first call, so this module imports without
CUDA.

A call follows design.md section 2: the buffers are the arguments (host numpy arrays are
copied to the device C-contiguous; device arrays - anything with
``__cuda_array_interface__``, e.g. CuPy or torch tensors, or a DLPack CUDA array when CuPy
is installed - are used in place with their own strides), the results and the scratch
buffers (fresh device allocations). Two device tables hold the buffer pointers and the
pointers to each buffer's layout row (element strides, then extents); the shapes of a
kernel with dynamic (`?`) dimensions are `KernelSpec.plan` of the arguments' (a ValueError
when they do not fit). Each phase is launched in order on the default
stream as ``f__phaseK(data, strides, 0, extent)``: a parallel phase with one thread per
outer iteration (a grid-stride loop covers extents past the grid), a serial phase with a
single thread. The results come back as numpy arrays.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from qopt.codegen.abi import BufferSpec, KernelSpec, c_strides

__all__ = ["GpuError", "GpuKernel", "PreparedCall", "available", "load"]

BLOCK = 256  # threads per block
MAX_BLOCKS = 1 << 16  # beyond this the grid-stride loop takes over


class GpuError(RuntimeError):
    """No usable CUDA backend, or a CUDA call failed (the message names the call)."""


# --------------------------------------------------------------------------------------
# Backends: allocate, copy, load PTX, launch


class _CudaPython:
    """The CUDA driver API through cuda-python."""

    def __init__(self) -> None:
        try:
            from cuda.bindings import driver
        except ImportError:
            from cuda import cuda as driver  # cuda-python < 12.6
        self.cu = driver
        self._check(driver.cuInit(0), "cuInit")
        device = self._check(driver.cuDeviceGet(0), "cuDeviceGet")
        context = self._check(driver.cuDevicePrimaryCtxRetain(device), "cuDevicePrimaryCtxRetain")
        self._check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")

    def _check(self, result: Any, call: str) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if err != self.cu.CUresult.CUDA_SUCCESS:
            _, name = self.cu.cuGetErrorName(err)
            raise GpuError(f"{call} failed: {name.decode() if name else err}")
        return rest[0] if len(rest) == 1 else rest

    def alloc(self, nbytes: int) -> tuple[int, Any]:
        ptr = self._check(self.cu.cuMemAlloc(max(nbytes, 1)), "cuMemAlloc")
        return int(ptr), _Freed(lambda: self.cu.cuMemFree(ptr))

    def to_device(self, dst: int, host: np.ndarray) -> None:
        if host.nbytes:
            self._check(self.cu.cuMemcpyHtoD(dst, host.ctypes.data, host.nbytes), "cuMemcpyHtoD")

    def to_host(self, host: np.ndarray, src: int) -> None:
        if host.nbytes:
            self._check(self.cu.cuMemcpyDtoH(host.ctypes.data, src, host.nbytes), "cuMemcpyDtoH")

    def load(self, ptx: str) -> Any:
        return self._check(self.cu.cuModuleLoadData(ptx.encode() + b"\0"), "cuModuleLoadData")

    def function(self, module: Any, name: str) -> Any:
        return self._check(self.cu.cuModuleGetFunction(module, name.encode()), name)

    def launch(self, fn: Any, grid: int, block: int, args: Sequence[int]) -> None:
        values = [ctypes.c_uint64(a & ((1 << 64) - 1)) for a in args]
        params = (ctypes.c_void_p * len(values))(*(ctypes.addressof(v) for v in values))
        self._check(
            self.cu.cuLaunchKernel(fn, grid, 1, 1, block, 1, 1, 0, 0, ctypes.addressof(params), 0),
            "cuLaunchKernel",
        )

    def synchronize(self) -> None:
        self._check(self.cu.cuCtxSynchronize(), "cuCtxSynchronize")


class _CuPy:
    """CuPy's memory pool and module loader."""

    def __init__(self) -> None:
        import cupy

        self.cupy = cupy

    def alloc(self, nbytes: int) -> tuple[int, Any]:
        memory = self.cupy.cuda.alloc(max(nbytes, 1))
        return int(memory.ptr), memory

    def to_device(self, dst: int, host: np.ndarray) -> None:
        if host.nbytes:
            self.cupy.cuda.runtime.memcpy(dst, host.ctypes.data, host.nbytes, 1)  # HtoD

    def to_host(self, host: np.ndarray, src: int) -> None:
        if host.nbytes:
            self.cupy.cuda.runtime.memcpy(host.ctypes.data, src, host.nbytes, 2)  # DtoH

    def load(self, ptx: str) -> Any:
        module = self.cupy.cuda.function.Module()
        module.load(ptx.encode())
        return module

    def function(self, module: Any, name: str) -> Any:
        return module.get_function(name)

    def launch(self, fn: Any, grid: int, block: int, args: Sequence[int]) -> None:
        fn((grid,), (block,), tuple(np.uint64(a & ((1 << 64) - 1)) for a in args))

    def synchronize(self) -> None:
        self.cupy.cuda.runtime.deviceSynchronize()


class _Freed:
    """Runs `free` when garbage-collected (device memory lives as long as its owner)."""

    def __init__(self, free: Callable[[], object]) -> None:
        self._free = free

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at shutdown the context may be gone already
            self._free()


_BACKEND: Any = None


def _backend() -> Any:
    global _BACKEND
    if _BACKEND is None:
        errors = []
        for backend in (_CudaPython, _CuPy):
            try:
                _BACKEND = backend()
                break
            except Exception as err:  # ImportError, or no driver / device
                errors.append(f"{backend.__name__.strip('_')}: {err}")
        else:
            raise GpuError("no usable CUDA backend (" + "; ".join(errors) + ")")
    return _BACKEND


def available() -> bool:
    """Whether a CUDA backend and a GPU can be used."""
    try:
        _backend()
    except GpuError:
        return False
    return True


class LoadedModule:
    """PTX loaded into the current CUDA context; kernels looked up by name once."""

    def __init__(self, ptx: str) -> None:
        self.backend = _backend()
        self.module = self.backend.load(ptx)
        self._functions: dict[str, Any] = {}

    def function(self, name: str) -> Any:
        if name not in self._functions:
            self._functions[name] = self.backend.function(self.module, name)
        return self._functions[name]


def load(ptx: str) -> LoadedModule:
    """Load PTX through the CUDA driver (it JIT-compiles for the device)."""
    return LoadedModule(ptx)


# --------------------------------------------------------------------------------------
# Calls


def _device_array(obj: Any) -> dict | None:
    """The ``__cuda_array_interface__`` of a device array (DLPack through CuPy), or None."""
    interface = getattr(obj, "__cuda_array_interface__", None)
    if interface is not None:
        return interface
    device = getattr(obj, "__dlpack_device__", None)
    if device is not None and device()[0] == 2:  # kDLCUDA
        import cupy

        return cupy.from_dlpack(obj).__cuda_array_interface__
    return None


class GpuKernel:
    """One function of a `GpuModule`: ``kernel(*arrays) -> result(s)`` as numpy arrays."""

    def __init__(self, spec: KernelSpec, runtime: Callable[[], LoadedModule]) -> None:
        self.spec = spec
        self._runtime = runtime

    def __repr__(self) -> str:
        return f"GpuKernel(@{self.spec.name}, {len(self.spec.phases)} phases)"

    def __call__(self, *inputs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        call = self.prepare(*inputs)
        call.launch()
        return call.results()

    def prepare(self, *inputs: Any) -> PreparedCall:
        """Bind the arguments (copying host arrays) and allocate results, scratch and the
        ABI tables; `PreparedCall.launch` then only launches (what benchmarks time)."""
        spec = self.spec
        if len(inputs) != len(spec.args):
            raise TypeError(f"@{spec.name} takes {len(spec.args)} arrays, got {len(inputs)}")
        loaded = self._runtime()
        backend = loaded.backend
        keep: list[Any] = []  # device memory (and device arrays) alive as long as the call

        def fresh(nbytes: int) -> int:
            ptr, owner = backend.alloc(nbytes)
            keep.append(owner)
            return ptr

        pointers: list[int] = []
        strides: list[tuple[int, ...]] = []
        arg_shapes: list[tuple[int, ...]] = []
        for k, (obj, buffer) in enumerate(zip(inputs, spec.args)):
            ptr, element_strides, shape = self._bind_arg(k, obj, buffer, fresh, backend, keep)
            pointers.append(ptr)
            strides.append(element_strides)
            arg_shapes.append(shape)
        plan = spec.plan(arg_shapes)
        nargs = len(spec.args)
        for buffer, shape in zip(spec.results + spec.scratch, plan.shapes[nargs:]):
            pointers.append(fresh(max(int(np.prod(shape)), 1) * buffer.dtype.itemsize))
            strides.append(c_strides(shape))
        strides = [(*row, *shape) for row, shape in zip(strides, plan.shapes)]

        flat = np.array([s for row in strides for s in row] or [0], dtype=np.int64)
        strides_dev = fresh(flat.nbytes)
        backend.to_device(strides_dev, flat)
        rows, offset = [], 0
        for row in strides:
            rows.append(strides_dev + 8 * offset)
            offset += len(row)
        table = np.array(pointers + rows, dtype=np.uint64)
        table_dev = fresh(table.nbytes)
        backend.to_device(table_dev, table)
        launches = []
        for phase, extent in zip(spec.phases, plan.extents):
            if extent == 0:
                continue
            grid, block = (
                (min(-(-extent // BLOCK), MAX_BLOCKS), BLOCK) if phase.parallel else (1, 1)
            )
            args = (table_dev, table_dev + 8 * len(pointers), 0, extent)
            launches.append((loaded.function(phase.function), grid, block, args))
        result_pointers = pointers[nargs : nargs + len(spec.results)]
        result_shapes = plan.shapes[nargs : nargs + len(spec.results)]
        return PreparedCall(backend, launches, spec.results, result_pointers, keep, result_shapes)

    def _bind_arg(
        self,
        k: int,
        obj: Any,
        buffer: BufferSpec,
        fresh: Callable[[int], int],
        backend: Any,
        keep: list[Any],
    ) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        """Device pointer, element strides and shape of argument `k`."""
        interface = _device_array(obj)
        if interface is not None:
            shape = tuple(interface["shape"])
            itemsize = np.dtype(interface["typestr"]).itemsize
            if itemsize != buffer.dtype.itemsize:
                raise TypeError(
                    f"argument {k} ({buffer.name}) must hold {buffer.dtype} elements, "
                    f"got {interface['typestr']}"
                )
            self._check_shape(k, shape, buffer)
            byte_strides = interface.get("strides")
            element_strides = (
                c_strides(shape)
                if byte_strides is None
                else tuple(s // itemsize for s in byte_strides)
            )
            keep.append(obj)
            return int(interface["data"][0]), element_strides, shape
        array = np.asarray(obj)
        if array.dtype != buffer.dtype:
            raise TypeError(
                f"argument {k} ({buffer.name}) must have dtype {buffer.dtype}, got {array.dtype}"
            )
        self._check_shape(k, array.shape, buffer)
        array = np.ascontiguousarray(array)
        ptr = fresh(array.nbytes)
        backend.to_device(ptr, array)
        return ptr, c_strides(array.shape), array.shape

    def _check_shape(self, k: int, shape: tuple[int, ...], buffer: BufferSpec) -> None:
        """The rank and the static extents (`KernelSpec.plan` checks the dynamic ones)."""
        if len(shape) != len(buffer.shape) or any(
            isinstance(n, int) and n != m for n, m in zip(buffer.shape, shape)
        ):
            raise ValueError(
                f"argument {k} ({buffer.name}) must have shape {buffer.spelled()}, "
                f"got {tuple(shape)}"
            )


class PreparedCall:
    """A bound call: the phase launches in order, and the copy of the results to host."""

    def __init__(
        self,
        backend: Any,
        launches: list[tuple[Any, int, int, tuple[int, ...]]],
        results: Sequence[BufferSpec],
        result_pointers: Sequence[int],
        keep: list[Any],
        result_shapes: Sequence[tuple[int, ...]],
    ) -> None:
        self.backend = backend
        self.launches = launches
        self.result_specs = tuple(results)
        self.result_pointers = tuple(result_pointers)
        self.result_shapes = tuple(result_shapes)
        self._keep = keep

    def launch(self) -> None:
        """Launch every phase on the default stream (asynchronous; see `synchronize`)."""
        for fn, grid, block, args in self.launches:
            self.backend.launch(fn, grid, block, args)

    def synchronize(self) -> None:
        self.backend.synchronize()

    def results(self) -> np.ndarray | tuple[np.ndarray, ...]:
        """Wait for the launches and copy the results to numpy arrays."""
        self.backend.synchronize()
        out = []
        for buffer, ptr, shape in zip(self.result_specs, self.result_pointers, self.result_shapes):
            host = np.empty(shape, dtype=buffer.dtype)
            self.backend.to_host(host, ptr)
            out.append(host)
        return out[0] if len(out) == 1 else tuple(out)
