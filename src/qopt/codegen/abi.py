"""The kernel ABI of docs/design.md section 2: the LLVM signatures of the functions codegen
emits and the Python metadata (`KernelSpec`) a runtime needs to call them.

Per `func.func @f`:

    void f__phaseK(i8** data, i64** strides, i64 lo, i64 hi)     one per phase
    void f__serial(i8** data, i64** strides)                       every phase, whole range

`data[i]` / `strides[i]` are the base pointer of buffer i and its layout row: the element
strides of its `rank` dimensions followed by its `rank` extents. Buffers are numbered
arguments first, then results, then scratch (`KernelSpec.buffers`). The code reads the
extents of the arguments' dynamic (`?`) dimensions from the rows (`extents.Sym`); the
runtime evaluates every other shape from them once per argument shape (`KernelSpec.plan`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from llvmlite import ir

from qopt.codegen.extents import Extent, ShapeCheck, evaluate, is_static, python_expr

__all__ = [
    "I8",
    "I64",
    "PHASE_FN_TYPE",
    "PTR",
    "SERIAL_FN_TYPE",
    "BufferSpec",
    "KernelSpec",
    "PhaseSpec",
    "ShapePlan",
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
    shape: tuple[Extent, ...]  # ints, or symbolic extents for `?` dimensions
    dtype: np.dtype
    element_type: str  # MLIR spelling: f32, i4, ui4, f8E4M3FN, ...

    @property
    def static(self) -> bool:
        return all(is_static(n) for n in self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def c_strides(self) -> tuple[int, ...]:
        """Element strides of the C-contiguous layout (results and scratch have it)."""
        return c_strides(self.shape)  # type: ignore[arg-type]

    def spelled(self) -> str:
        """``f32[4, ?]``: the shape with `?` for dynamic dimensions."""
        dims = ", ".join(str(n) if is_static(n) else "?" for n in self.shape)
        return f"{self.element_type}[{dims}]"


@dataclass(frozen=True)
class PhaseSpec:
    """A run of fused loop nests under one outer loop `[0, extent)` (design.md section 2)."""

    function: str  # LLVM symbol: void (ptr data, ptr strides, i64 lo, i64 hi)
    extent: Extent  # range of the outer loop (1 for a 0-d nest)
    parallel: bool  # [lo, hi) chunks may run on different threads
    work: Extent  # loop iterations of all fused nests together, for the threading threshold
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
    # what the argument shapes must meet that only a call can tell (dynamic extents)
    checks: tuple[ShapeCheck, ...] = ()

    @property
    def buffers(self) -> tuple[BufferSpec, ...]:
        """In ABI order: arguments, results, scratch."""
        return self.args + self.results + self.scratch

    @property
    def static(self) -> bool:
        """No `?` dimension anywhere: one shape plan serves every call."""
        return all(b.static for b in self.buffers)

    def plan(self, arg_shapes: Sequence[Sequence[int]]) -> ShapePlan:
        """The shapes of every buffer and the extent and work of every phase for a call
        with arguments of `arg_shapes`; a ValueError (naming the argument, or the op and
        operand of a failed `ShapeCheck`) when the shapes do not fit the kernel.

        Compiled once per spec into one Python function (the checks and extents inlined,
        a few microseconds a call); the function answers None when the shapes do not
        fit, and the slow path below then says why."""
        planner = self.__dict__.get("_planner")
        if planner is None:
            planner = _compile_planner(self)
            object.__setattr__(self, "_planner", planner)
        fast = planner(arg_shapes)
        if fast is not None:
            return ShapePlan(tuple(map(tuple, arg_shapes)) + fast[0], fast[1], fast[2])
        return self._checked_plan(arg_shapes)

    def _checked_plan(self, arg_shapes: Sequence[Sequence[int]]) -> ShapePlan:
        """`plan` the slow way, every rule in turn: raises the first one broken."""
        for k, (shape, buffer) in enumerate(zip(arg_shapes, self.args)):
            if len(shape) != len(buffer.shape) or any(
                is_static(n) and n != m for n, m in zip(buffer.shape, shape)
            ):
                raise ValueError(
                    f"@{self.name}: argument {k} ({buffer.name!r}) must have shape "
                    f"{buffer.spelled()}, got {tuple(shape)}"
                )
        for check in self.checks:
            if (reason := check.failure(arg_shapes)) is not None:
                raise ValueError(f"@{self.name}: {reason}")
        shapes = [tuple(shape) for shape in arg_shapes]
        for buffer in self.results + self.scratch:
            shape = tuple(evaluate(n, arg_shapes) for n in buffer.shape)
            if any(n < 0 for n in shape):
                raise ValueError(f"@{self.name}: {buffer.name} would have shape {shape}")
            shapes.append(shape)
        return ShapePlan(
            tuple(shapes),
            tuple(evaluate(p.extent, arg_shapes) for p in self.phases),
            tuple(evaluate(p.work, arg_shapes) for p in self.phases),
        )


@dataclass(frozen=True)
class ShapePlan:
    """`KernelSpec.plan` for one set of argument shapes: concrete shapes and extents."""

    shapes: tuple[tuple[int, ...], ...]  # every buffer, in ABI order
    extents: tuple[int, ...]  # per phase
    work: tuple[int, ...]  # per phase


def c_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Element strides of a C-contiguous array of `shape` (as numpy lays out `np.empty`)."""
    strides, step = [], 1
    for extent in reversed(shape):
        strides.append(step)
        step *= max(extent, 1)
    return tuple(reversed(strides))


def _compile_planner(spec: KernelSpec) -> Callable[[Sequence[Sequence[int]]], tuple | None]:
    """`KernelSpec.plan`'s fast path as one generated Python function of ``a``, the
    argument shapes: None when a rule fails, else (result and scratch shapes, phase
    extents, phase work)."""
    lines = ["def plan(a):"]
    for k, buffer in enumerate(spec.args):
        static = [f"a[{k}][{j}] != {n}" for j, n in enumerate(buffer.shape) if is_static(n)]
        lines.append(f"    if len(a[{k}]) != {len(buffer.shape)}: return None")
        if static:
            lines.append(f"    if {' or '.join(static)}: return None")
    lines += [f"    if not ({check.python_condition()}): return None" for check in spec.checks]
    shapes = []
    for buffer in spec.results + spec.scratch:
        dims = [python_expr(n) for n in buffer.shape]
        shapes.append("(" + "".join(f"{d}, " for d in dims) + ")")
        lines += [
            f"    if {d} < 0: return None" for n, d in zip(buffer.shape, dims) if not is_static(n)
        ]
    extents = [python_expr(p.extent) for p in spec.phases]
    work = [python_expr(p.work) for p in spec.phases]

    def tup(items: list[str]) -> str:
        return "(" + "".join(f"{item}, " for item in items) + ")"

    lines.append(f"    return {tup(shapes)}, {tup(extents)}, {tup(work)}")
    namespace: dict = {}
    exec(compile("\n".join(lines), f"<plan of @{spec.name}>", "exec"), namespace)
    return namespace["plan"]
