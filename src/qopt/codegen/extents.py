"""Symbolic extents: the size of a dimension that is only known when the kernel is called.

A tensor dimension written ``?`` in the lowered IR has an `Extent` that is either an ``int``
(static), a `Sym` (dimension ``dim`` of function argument ``arg``, read from the argument's
array at call time) or an `ExtentOp` over those (``tensor.empty`` sizes computed with
``arith.ceildivui`` & co. from ``tensor.dim`` at function level). Extents are plain,
hashable data: the schedule compares them structurally (two nests share a phase when their
outer extents are the same expression), the runtime evaluates them in Python once per
argument shape (`evaluate`), and the loop emitter evaluates them in LLVM from the symbols'
values (`emit_extent`).

`ShapeCheck`s are what codegen cannot prove at compile time for dynamic extents: that two
dimensions a loop runs over are the same size, and that every access stays in bounds. The
runtime evaluates them (with the extents) before the first call with a new shape, so a
mismatch is a ValueError, never an out-of-bounds access.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

from llvmlite import ir
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
)

from qopt.codegen.affine import I64, expr_range

__all__ = [
    "Extent",
    "ExtentOp",
    "ShapeCheck",
    "Sym",
    "ceil_div",
    "describe",
    "emit_extent",
    "evaluate",
    "is_static",
    "product",
    "python_expr",
    "symbols",
    "total",
]


@dataclass(frozen=True)
class Sym:
    """Dimension `dim` of function argument `arg`, known when the kernel is called."""

    arg: int
    dim: int


# The integer operations on extents (arith ops on `index` at function level), in Python.
_EVAL = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "floordiv": lambda a, b: a // b,
    "ceildiv": lambda a, b: -(-a // b),
    "min": min,
    "max": max,
}


@dataclass(frozen=True)
class ExtentOp:
    """``lhs <kind> rhs`` (kinds: the keys of ``_EVAL``; divisions by a positive value)."""

    kind: str
    lhs: Extent
    rhs: Extent


Extent = Union[int, Sym, ExtentOp]  # noqa: UP007 (a runtime alias used in isinstance-free code)


def is_static(extent: Extent) -> bool:
    return isinstance(extent, int)


def op(kind: str, lhs: Extent, rhs: Extent) -> Extent:
    """``lhs <kind> rhs``, folded when both are static (and for the neutral ``* 1``,
    ``ceildiv 1``, ``+ 0``), so equal computations give structurally equal extents."""
    if isinstance(lhs, int) and isinstance(rhs, int):
        return _EVAL[kind](lhs, rhs)
    if kind in ("mul", "ceildiv", "floordiv") and rhs == 1:
        return lhs
    if kind == "mul" and lhs == 1:
        return rhs
    if kind in ("add", "sub") and rhs == 0:
        return lhs
    if kind == "add" and lhs == 0:
        return rhs
    return ExtentOp(kind, lhs, rhs)


def ceil_div(extent: Extent, c: int) -> Extent:
    return op("ceildiv", extent, c)


def product(extents: Sequence[Extent]) -> Extent:
    result: Extent = 1
    for e in extents:
        if e == 0:
            return 0
        result = op("mul", result, e)
    return result


def total(extents: Sequence[Extent]) -> Extent:
    result: Extent = 0
    for e in extents:
        result = op("add", result, e)
    return result


def symbols(extent: Extent) -> set[Sym]:
    match extent:
        case Sym():
            return {extent}
        case ExtentOp():
            return symbols(extent.lhs) | symbols(extent.rhs)
    return set()


def evaluate(extent: Extent, arg_shapes: Sequence[Sequence[int]]) -> int:
    """The value of `extent` for arguments of `arg_shapes`."""
    match extent:
        case int():
            return extent
        case Sym(arg=a, dim=d):
            return arg_shapes[a][d]
        case ExtentOp(kind=kind, lhs=lhs, rhs=rhs):
            return _EVAL[kind](evaluate(lhs, arg_shapes), evaluate(rhs, arg_shapes))
    raise AssertionError(f"not an extent: {extent!r}")


def describe(extent: Extent) -> str:
    """``dim 1 of argument 0``, ``ceildiv(dim 1 of argument 0, 16)``, ``64``."""
    match extent:
        case Sym(arg=a, dim=d):
            return f"dim {d} of argument {a}"
        case ExtentOp(kind=kind, lhs=lhs, rhs=rhs):
            return f"{kind}({describe(lhs)}, {describe(rhs)})"
    return str(extent)


_PY_OPS = {"add": "+", "sub": "-", "mul": "*", "floordiv": "//"}


def python_expr(extent: Extent) -> str:
    """`extent` as a Python expression over ``a``, the argument shapes (``a[0][1]``):
    the runtime compiles a kernel's shape plan from these (abi.KernelSpec.plan)."""
    match extent:
        case int():
            return str(extent)
        case Sym(arg=arg, dim=dim):
            return f"a[{arg}][{dim}]"
        case ExtentOp(kind=kind, lhs=lhs, rhs=rhs):
            x, y = python_expr(lhs), python_expr(rhs)
            if kind in _PY_OPS:
                return f"({x} {_PY_OPS[kind]} {y})"
            if kind == "ceildiv":
                return f"(-(-{x} // {y}))"
            return f"{kind}({x}, {y})"
    raise AssertionError(f"not an extent: {extent!r}")


def _python_range(expr: AffineExpr, box: Sequence[str]) -> tuple[str, str] | None:
    """Python expressions of the smallest and largest value of `expr` over the loop box
    (`expr_range` unrolled), or None for the forms left to `expr_range` (mod)."""
    match expr:
        case AffineDimExpr(position=k):
            return "0", f"({box[k]} - 1)"
        case AffineConstantExpr(value=v):
            return str(v), str(v)
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Add):
            lhs, rhs = _python_range(expr.lhs, box), _python_range(expr.rhs, box)
            if lhs is None or rhs is None:
                return None
            return f"({lhs[0]} + {rhs[0]})", f"({lhs[1]} + {rhs[1]})"
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Mul):
            const, other = (expr.rhs, expr.lhs)
            if not isinstance(const, AffineConstantExpr):
                const, other = expr.lhs, expr.rhs
            inner = _python_range(other, box)
            if not isinstance(const, AffineConstantExpr) or inner is None:
                return None
            c = const.value
            lo, hi = inner if c >= 0 else inner[::-1]
            return f"({lo} * {c})", f"({hi} * {c})"
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.FloorDiv, rhs=AffineConstantExpr(value=c)):
            inner = _python_range(expr.lhs, box)
            if inner is None:
                return None
            return f"({inner[0]} // {c})", f"({inner[1]} // {c})"
    return None


def _llvm_div(b: ir.IRBuilder, kind: str, x: ir.Value, y: ir.Value) -> ir.Value:
    """Division of non-negative extents by a positive one (sizes are never negative)."""
    if kind == "ceildiv":
        x = b.add(x, b.sub(y, ir.Constant(I64, 1)))
    return b.sdiv(x, y)


def emit_extent(b: ir.IRBuilder, extent: Extent, syms: Mapping[Sym, ir.Value]) -> ir.Value:
    """`extent` in LLVM at `b` (i64), from the values of its symbols."""
    match extent:
        case int():
            return ir.Constant(I64, extent)
        case Sym():
            return syms[extent]
        case ExtentOp(kind=kind, lhs=lhs, rhs=rhs):
            x, y = emit_extent(b, lhs, syms), emit_extent(b, rhs, syms)
            match kind:
                case "add":
                    return b.add(x, y, flags=["nsw"])
                case "sub":
                    return b.sub(x, y, flags=["nsw"])
                case "mul":
                    return b.mul(x, y, flags=["nsw"])
                case "floordiv" | "ceildiv":
                    return _llvm_div(b, kind, x, y)
                case "min" | "max":
                    pick = b.icmp_signed("<" if kind == "min" else ">", x, y)
                    return b.select(pick, x, y)
    raise AssertionError(f"not an extent: {extent!r}")


@dataclass(frozen=True)
class ShapeCheck:
    """A condition on the argument shapes that a call must meet (see the module doc).

    ``equal``: ``lhs == rhs``. ``bounds``: over the loop box ``extents`` (all > 0; an
    empty box reads nothing), ``index`` (an affine expression of the loop dims) stays in
    ``[0, rhs)``. ``what`` names the op and operand for the error message.
    """

    kind: str  # "equal" | "bounds"
    lhs: Extent
    rhs: Extent
    what: str
    index: AffineExpr | None = None
    extents: tuple[Extent, ...] = ()

    def python_condition(self) -> str:
        """A Python expression over ``a`` (the argument shapes) that holds when the check
        passes (`failure` then has nothing to say)."""
        rhs = python_expr(self.rhs)
        if self.kind == "equal":
            return f"{python_expr(self.lhs)} == {rhs}"
        assert self.index is not None
        box = [python_expr(e) for e in self.extents]
        bounds = _python_range(self.index, box)
        if bounds is None:
            return "False"  # the general form: `failure` decides
        empty = " or ".join(f"{n} == 0" for n in box) or "False"
        return f"({empty}) or ({bounds[0]} >= 0 and {bounds[1]} < {rhs})"

    def failure(self, arg_shapes: Sequence[Sequence[int]]) -> str | None:
        """Why `arg_shapes` break this check, or None when they meet it."""
        rhs = evaluate(self.rhs, arg_shapes)
        if self.kind == "equal":
            lhs = evaluate(self.lhs, arg_shapes)
            if lhs == rhs:
                return None
            return (
                f"{self.what}: {describe(self.lhs)} is {lhs} but {describe(self.rhs)} "
                f"is {rhs}; they must be equal"
            )
        box = [evaluate(e, arg_shapes) for e in self.extents]
        if 0 in box:
            return None
        assert self.index is not None
        lo, hi = expr_range(self.index, box)
        if lo >= 0 and hi < rhs:
            return None
        return (
            f"{self.what}: index {self.index} ranges over [{lo}, {hi}] for loop extents "
            f"{tuple(box)}, outside [0, {rhs}) ({describe(self.rhs)})"
        )
