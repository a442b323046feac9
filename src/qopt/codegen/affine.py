"""Affine maps of `linalg.generic`: which expressions codegen supports, the range of their
values over an iteration box, and their evaluation in LLVM IR.

Supported: dims, constants, `+`, `*` by a constant, `floordiv` / `mod` by a positive
constant (design.md section 1). The range check lets the bufferization prove every access in
bounds before any code is emitted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llvmlite import ir
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
)

I64 = ir.IntType(64)  # indices, strides, extents (the kernel ABI's i64)

__all__ = [
    "block_of",
    "const",
    "emit_expr",
    "expr_range",
    "floor_div",
    "floor_mod",
    "is_dim",
    "moves",
    "unsupported_expr",
]


def unsupported_expr(expr: AffineExpr) -> str | None:
    """Why `expr` is outside dims, constants, +, * constant, floordiv / mod positive constant."""
    match expr:
        case AffineDimExpr() | AffineConstantExpr():
            return None
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Add):
            return unsupported_expr(expr.lhs) or unsupported_expr(expr.rhs)
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Mul):
            if not isinstance(expr.lhs, AffineConstantExpr) and not isinstance(
                expr.rhs, AffineConstantExpr
            ):
                return f"'{expr}' multiplies two non-constant expressions"
            return unsupported_expr(expr.lhs) or unsupported_expr(expr.rhs)
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.FloorDiv | AffineBinaryOpKind.Mod):
            if not isinstance(expr.rhs, AffineConstantExpr) or expr.rhs.value <= 0:
                return f"'{expr}' divides by something other than a positive constant"
            return unsupported_expr(expr.lhs)
        case _:
            return f"'{expr}' is not supported (dims, constants, +, *, floordiv, mod only)"


def expr_range(expr: AffineExpr, extents: Sequence[int]) -> tuple[int, int]:
    """Smallest and largest value of `expr` over the iteration box (all extents > 0)."""
    match expr:
        case AffineDimExpr(position=k):
            return 0, extents[k] - 1
        case AffineConstantExpr(value=v):
            return v, v
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Add):
            (a, b), (c, d) = expr_range(expr.lhs, extents), expr_range(expr.rhs, extents)
            return a + c, b + d
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Mul):
            (a, b), (c, d) = expr_range(expr.lhs, extents), expr_range(expr.rhs, extents)
            products = (a * c, a * d, b * c, b * d)
            return min(products), max(products)
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.FloorDiv):
            a, b = expr_range(expr.lhs, extents)
            return a // expr.rhs.value, b // expr.rhs.value
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Mod):
            a, b = expr_range(expr.lhs, extents)
            m = expr.rhs.value
            return (a % m, b % m) if b - a < m and a % m <= b % m else (0, m - 1)
    raise AssertionError(f"unchecked affine expression {expr}")


def is_dim(expr: AffineExpr, k: int) -> bool:
    """Whether `expr` is exactly `d<k>`."""
    return isinstance(expr, AffineDimExpr) and expr.position == k


def const(value: int) -> ir.Constant:
    """An i64 constant (indices, strides, extents)."""
    return ir.Constant(I64, value)


def floor_div(b: ir.IRBuilder, x: ir.Value, d: int) -> ir.Value:
    """`x floordiv d` for a positive constant `d`."""
    if d & (d - 1) == 0:
        return b.ashr(x, const(d.bit_length() - 1))  # exact floor, negatives too
    q = b.sdiv(x, const(d))
    # sdiv truncates toward zero; floor needs one less when x < 0 and d does not divide x.
    inexact_negative = b.and_(
        b.icmp_signed("<", x, const(0)), b.icmp_signed("!=", b.mul(q, const(d)), x)
    )
    return b.sub(q, b.zext(inexact_negative, I64))


def floor_mod(b: ir.IRBuilder, x: ir.Value, d: int) -> ir.Value:
    """`x mod d` (in [0, d)) for a positive constant `d`."""
    if d & (d - 1) == 0:
        return b.and_(x, const(d - 1))
    r = b.srem(x, const(d))
    return b.select(b.icmp_signed("<", r, const(0)), b.add(r, const(d)), r)


def emit_expr(
    b: ir.IRBuilder,
    expr: AffineExpr,
    dims: Sequence[ir.Value],
    known: Mapping[AffineExpr, ir.Value],
) -> ir.Value:
    """`expr` at the point `dims`; subexpressions in `known` already have a value."""
    if expr in known:
        return known[expr]
    match expr:
        case AffineDimExpr(position=k):
            return dims[k]
        case AffineConstantExpr(value=v):
            return const(v)
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Add):
            lhs, rhs = emit_expr(b, expr.lhs, dims, known), emit_expr(b, expr.rhs, dims, known)
            return b.add(lhs, rhs, flags=["nsw"])
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Mul):
            lhs, rhs = emit_expr(b, expr.lhs, dims, known), emit_expr(b, expr.rhs, dims, known)
            return b.mul(lhs, rhs, flags=["nsw"])
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.FloorDiv):
            return floor_div(b, emit_expr(b, expr.lhs, dims, known), expr.rhs.value)
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Mod):
            return floor_mod(b, emit_expr(b, expr.lhs, dims, known), expr.rhs.value)
    raise AssertionError(f"unchecked affine expression {expr}")


def moves(expr: AffineExpr, dim: int, known: Mapping[AffineExpr, ir.Value]) -> bool:
    """Whether `expr` changes with `dim` once the `known` subexpressions are fixed."""
    if expr in known:
        return False
    match expr:
        case AffineDimExpr(position=k):
            return k == dim
        case AffineBinaryOpExpr():
            return moves(expr.lhs, dim, known) or moves(expr.rhs, dim, known)
    return False


def block_of(expr: AffineExpr, dim: int) -> int | None:
    """c when `expr` is `d<dim> floordiv c`."""
    match expr:
        case AffineBinaryOpExpr(
            kind=AffineBinaryOpKind.FloorDiv,
            lhs=AffineDimExpr(position=k),
            rhs=AffineConstantExpr(value=c),
        ) if k == dim:
            return c
    return None
