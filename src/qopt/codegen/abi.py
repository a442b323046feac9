"""The kernel ABI of docs/design.md section 2: the LLVM signatures of the functions codegen
emits and the Python metadata (`KernelSpec`) a runtime needs to call them.

Per `func.func @f`:

    void f__phaseK(i8** data, i64** strides, i64 lo, i64 hi)     one per phase
    void f__serial(i8** data, i64** strides)                       every phase, whole range

`data[i]` / `strides[i]` are the base pointer and element strides of buffer i, numbered
arguments first, then results, then scratch (`KernelSpec.buffers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from llvmlite import ir

__all__ = [
    "I8",
    "I64",
    "PHASE_FN_TYPE",
    "PTR",
    "SERIAL_FN_TYPE",
    "BufferSpec",
    "KernelSpec",
    "PhaseSpec",
    "c_strides",
]

I8 = ir.IntType(8)
I64 = ir.IntType(64)
PTR = ir.PointerType()
PHASE_FN_TYPE = ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, I64])
SERIAL_FN_TYPE = ir.FunctionType(ir.VoidType(), [PTR, PTR])


@dataclass(frozen=True)
class BufferSpec:
    """One numbered buffer of the kernel ABI (`data[i]`, `strides[i]`)."""

    name: str
    kind: Literal["arg", "result", "scratch"]
    shape: tuple[int, ...]
    dtype: np.dtype
    element_type: str  # MLIR spelling: f32, i4, ui4, f8E4M3FN, ...

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def c_strides(self) -> tuple[int, ...]:
        """Element strides of the C-contiguous layout (results and scratch have it)."""
        return c_strides(self.shape)


@dataclass(frozen=True)
class PhaseSpec:
    """A run of fused loop nests under one outer loop `[0, extent)` (design.md section 2)."""

    function: str  # LLVM symbol: void (ptr data, ptr strides, i64 lo, i64 hi)
    extent: int  # range of the outer loop (1 for a 0-d nest)
    parallel: bool  # [lo, hi) chunks may run on different threads
    work: int  # loop iterations of all fused nests together, for the threading threshold
    ops: tuple[str, ...]  # what was fused, e.g. ("linalg.generic", "copy")
    # block size of each block group (a statistic with its consumers) run tile by tile
    tiled: tuple[int, ...] = ()


@dataclass(frozen=True)
class KernelSpec:
    """Everything the runtime needs to call the code of one `func.func`."""

    name: str
    entry: str  # LLVM symbol running every phase on its whole range: void (ptr, ptr); "" if none
    args: tuple[BufferSpec, ...]
    results: tuple[BufferSpec, ...]
    scratch: tuple[BufferSpec, ...]
    phases: tuple[PhaseSpec, ...]

    @property
    def buffers(self) -> tuple[BufferSpec, ...]:
        """In ABI order: arguments, results, scratch."""
        return self.args + self.results + self.scratch


def c_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Element strides of a C-contiguous array of `shape` (as numpy lays out `np.empty`)."""
    strides, step = [], 1
    for extent in reversed(shape):
        strides.append(step)
        step *= max(extent, 1)
    return tuple(reversed(strides))
