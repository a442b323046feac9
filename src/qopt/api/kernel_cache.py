"""The API's compiled kernels by request signature: a bounded, thread-safe LRU table.

Parameters are always runtime operands of a kernel, so one compiled kernel serves every
scale and zero point of a given signature. The table holds :data:`DEFAULT_KERNEL_CACHE_SIZE`
kernels (``QOPT_API_CACHE_SIZE`` or :func:`set_kernel_cache_size` to change it); evicting
one only drops this table's reference, so codegen.jit's own LRU of compiled modules decides
when the engine itself is freed. :func:`clear_kernel_cache` forgets every compiled kernel.

:func:`compile_stats` counts what compiling happened since :func:`reset_compile_stats` (or
since the start of the process): the API's kernel builds (table misses that compiled), its
table hits, and the modules codegen.jit compiled to machine code. Tests use it to show that
a call compiled, or did not, without timing anything::

    qopt.reset_compile_stats()
    qopt.quantize(x, 0.1, dtype="i8")
    assert qopt.compile_stats().kernel_builds == 1
"""

from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qopt.api.params import as_int

DEFAULT_KERNEL_CACHE_SIZE = 128
"""Compiled kernels the API keeps (about 1 MB each); ``QOPT_API_CACHE_SIZE`` overrides it."""

KERNEL_CACHE_SIZE_ENV = "QOPT_API_CACHE_SIZE"


class KernelTable:
    """The compiled kernels by request signature, least recently used first."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple, Callable[..., Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity: int | None = None  # read from the environment at first use
        self.hits = 0  # lookups that found a kernel, since the process started

    @property
    def capacity(self) -> int:
        if self._capacity is None:
            text = os.environ.get(KERNEL_CACHE_SIZE_ENV)
            if text is None:
                self._capacity = DEFAULT_KERNEL_CACHE_SIZE
            else:
                try:
                    self._capacity = _cache_size(int(text), KERNEL_CACHE_SIZE_ENV)
                except ValueError:
                    raise ValueError(
                        f"{KERNEL_CACHE_SIZE_ENV} must be an int >= 0, got {text!r}"
                    ) from None
        return self._capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        with self._lock:
            self._capacity = value
            self._trim()

    def get(self, key: tuple) -> Callable[..., Any] | None:
        with self._lock:
            kernel = self._entries.get(key)
            if kernel is not None:
                self._entries.move_to_end(key)
                self.hits += 1
            return kernel

    def __setitem__(self, key: tuple, kernel: Callable[..., Any]) -> None:
        capacity = self.capacity
        with self._lock:
            if capacity:
                self._entries[key] = kernel
                self._entries.move_to_end(key)
            self._trim()

    def _trim(self) -> None:
        while len(self._entries) > (self._capacity or 0):
            self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


KERNELS = KernelTable()


def _cache_size(value: Any, argument: str) -> int:
    size = as_int(value, argument)
    if size < 0:
        raise ValueError(f"{argument} must be an int >= 0, got {value!r}")
    return size


def set_kernel_cache_size(size: int) -> None:
    """Keep at most ``size`` compiled API kernels (0: keep none); the least recently used
    ones beyond it are dropped now."""
    KERNELS.capacity = _cache_size(size, "size")


def kernel_cache_size() -> tuple[int, int]:
    """``(kernels held, bound)`` of the API's kernel table."""
    return len(KERNELS), KERNELS.capacity


def clear_kernel_cache() -> None:
    """Forget every compiled kernel: the API's table and codegen.jit's compiled modules."""
    from qopt.codegen.jit import clear_cache

    KERNELS.clear()
    clear_cache()


@dataclass(frozen=True)
class CompileStats:
    """What compiling happened since :func:`reset_compile_stats` (or the process start)."""

    kernel_builds: int
    """API calls that missed the kernel table and built a kernel (lowered, translated)."""
    kernel_hits: int
    """API calls that found their kernel in the table: nothing was compiled."""
    jit_compiles: int
    """Modules codegen.jit compiled to machine code (one MCJIT engine each), from the API or
    ``qopt.compile``; one loaded from the ``QOPT_CACHE_DIR`` object cache counts too."""


_builds = 0  # kernels compile_kernel built, since the process started
_builds_lock = threading.Lock()
_baseline = CompileStats(0, 0, 0)


def record_kernel_build() -> None:
    """Count one kernel built for a table miss (called by compiling.compile_kernel)."""
    global _builds
    with _builds_lock:
        _builds += 1


def _totals() -> CompileStats:
    # Read codegen.jit's counter only once it is imported: asking must not load llvmlite.
    jit = sys.modules.get("qopt.codegen.jit")
    return CompileStats(_builds, KERNELS.hits, jit.compile_count() if jit is not None else 0)


def compile_stats() -> CompileStats:
    """Kernel builds, kernel table hits and JIT compiles since :func:`reset_compile_stats`."""
    totals = _totals()
    return CompileStats(
        totals.kernel_builds - _baseline.kernel_builds,
        totals.kernel_hits - _baseline.kernel_hits,
        totals.jit_compiles - _baseline.jit_compiles,
    )


def reset_compile_stats() -> None:
    """Count :func:`compile_stats` from zero again (the compiled kernels stay cached)."""
    global _baseline
    _baseline = _totals()
