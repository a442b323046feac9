"""Translate the lowered IR (func/arith/math/linalg/tensor on tensors) to LLVM IR.

`codegen` compiles exactly what ``qopt --lower-quant`` prints (docs/design.md section 1):
xDSL 0.74 has no conversion of these dialects to LLVM, so this module is the translator,
in the style of `xdsl/backend/llvm/convert_op.py`: a type table, an op-dispatch table, and
a `TranslationError` that names the op and its location for anything outside the set.

Per `func.func @f` it produces LLVM functions with the kernel ABI of design.md section 2,

    void f__phaseK(i8** data, i64** strides, i64 lo, i64 hi)     one per phase
    void f__serial(i8** data, i64** strides)                       every phase, whole range

and a `KernelSpec` (the Python metadata the JIT needs). The steps:

1. *Bufferization* (trivial, destination passing): function arguments, results and
   scratch tensors become numbered buffers; a `linalg.generic` writes into the buffer of
   its `outs` operand. A `tensor.empty` destination gets a fresh buffer (the function's
   result buffer when the value it turns into is returned), an `outs` value that is still
   needed afterwards or is not writable (argument, constant) is first copied into a fresh
   buffer, and dense `arith.constant` tensors become LLVM global constants.
2. *Phases*: consecutive loop nests with the same extent in a parallel dimension 0, that
   touch the buffers they share only row by row, are fused under one outer loop, so a
   per-row reduction and its consumer see the row while it is in L1.
3. *Loops*: each nest becomes a loop nest; accesses are `base + sum(index_k * stride_k)`
   with the affine maps' results as indices. The innermost loop is emitted twice - a
   unit-stride version (chosen once, outside the loop) that LLVM vectorizes, and the
   general strided one. A reduction whose output does not move with the innermost loop
   keeps its accumulator in a register across it; a per-block reduction (output indexed
   by `d floordiv c`) is looped over blocks of c so that the same holds within a block.
4. *Bodies*: the scalar ops are translated one by one through `_SCALAR_OPS`. Beyond
   design.md's list, `tensor.extract` of a function-level tensor at indices computed in
   the body is accepted (the gather of the "lut" requantize lowering).

Element storage follows design.md section 1: sub-byte integers one per byte (loads keep
the low N bits, stores write them zero-extended), small float formats in the integer /
`half` type of `floatfmt.storage_type`, converted by `floatfmt` in `truncf` / `extf`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import llvmlite.binding as llvm
import ml_dtypes
import numpy as np
from llvmlite import ir
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, linalg, math, tensor
from xdsl.dialects.builtin import (
    BFloat16Type,
    DenseIntOrFPElementsAttr,
    Float4E2M1FNType,
    Float8E4M3FNType,
    Float8E5M2Type,
    Float8E8M0FNUType,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    Signedness,
    TensorType,
    UnknownLoc,
)
from xdsl.dialects.linalg.attrs import IteratorType
from xdsl.dialects.linalg.ops import GenericOp, YieldOp
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
    AffineMap,
)

from qopt.codegen import floatfmt
from qopt.codegen.target import (
    TargetConfig,
    create_target_machine,
    host_config,
    parse_llvm_ir,
    with_data_layout,
)
from qopt.codegen.target import optimize as optimize_module
from qopt.ir.parsing import ExactParser

__all__ = [
    "BufferSpec",
    "ElementType",
    "KernelSpec",
    "PhaseSpec",
    "Translation",
    "TranslationError",
    "c_strides",
    "element_type",
    "emit_assembly",
    "lowered_context",
    "parse_lowered",
    "translate_module",
    "translate_to_llvm_ir",
]

I8 = ir.IntType(8)
I64 = ir.IntType(64)
PTR = ir.PointerType()
PHASE_FN_TYPE = ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, I64])
SERIAL_FN_TYPE = ir.FunctionType(ir.VoidType(), [PTR, PTR])


class TranslationError(Exception):
    """The lowered IR holds something codegen does not translate.

    The message names the op, its location (``loc(...)``, or ``loc(unknown)`` followed by
    the op's first printed line) and the function it is in. `op` is the offending op.
    """

    def __init__(self, message: str, op: Operation | None = None) -> None:
        self.op = op
        self.reason = message
        super().__init__(f"{message}{_where(op)}" if op is not None else message)


def _where(op: Operation) -> str:
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, func.FuncOp):
        parent = parent.parent_op()
    in_func = f" in @{parent.sym_name.data}" if parent is not None else ""
    if not isinstance(op.location, UnknownLoc):
        return f" at {op.location}{in_func}"
    text = str(op).strip().splitlines()[0]
    return f" at {op.location}{in_func}: {text}"


# --------------------------------------------------------------------------------------
# Public metadata


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


@dataclass(frozen=True)
class Translation:
    """The LLVM module of a whole `builtin.module` and the spec of each of its functions."""

    llvm_module: ir.Module
    kernels: dict[str, KernelSpec]


# --------------------------------------------------------------------------------------
# Element types


@dataclass(frozen=True)
class ElementType:
    """How one element type lives in memory (`storage`) and in registers (`value`)."""

    name: str
    dtype: np.dtype
    value: ir.Type
    storage: ir.Type
    float_format: str | None = None  # the floatfmt format of a small float type

    @property
    def is_float(self) -> bool:
        """Whether LLVM float arithmetic applies to the register value."""
        return isinstance(self.value, ir.HalfType | ir.FloatType | ir.DoubleType)


_NATIVE_FLOATS: dict[type[Attribute], ElementType] = {
    Float32Type: ElementType("f32", np.dtype(np.float32), ir.FloatType(), ir.FloatType()),
    Float64Type: ElementType("f64", np.dtype(np.float64), ir.DoubleType(), ir.DoubleType()),
}

_SMALL_FLOATS: dict[type[Attribute], tuple[str, np.dtype]] = {
    Float16Type: ("f16", np.dtype(np.float16)),
    BFloat16Type: ("bf16", np.dtype(ml_dtypes.bfloat16)),
    Float8E4M3FNType: ("f8E4M3FN", np.dtype(ml_dtypes.float8_e4m3fn)),
    Float8E5M2Type: ("f8E5M2", np.dtype(ml_dtypes.float8_e5m2)),
    Float4E2M1FNType: ("f4E2M1FN", np.dtype(ml_dtypes.float4_e2m1fn)),
    Float8E8M0FNUType: ("f8E8M0FNU", np.dtype(ml_dtypes.float8_e8m0fnu)),
}

# (width, unsigned) -> numpy dtype; signless and signed integers are signed storage.
_INTEGER_DTYPES: dict[tuple[int, bool], np.dtype] = {
    (1, False): np.dtype(np.bool_),
    (1, True): np.dtype(np.bool_),
    (2, False): np.dtype(ml_dtypes.int2),
    (2, True): np.dtype(ml_dtypes.uint2),
    (4, False): np.dtype(ml_dtypes.int4),
    (4, True): np.dtype(ml_dtypes.uint4),
    (8, False): np.dtype(np.int8),
    (8, True): np.dtype(np.uint8),
    (16, False): np.dtype(np.int16),
    (16, True): np.dtype(np.uint16),
    (32, False): np.dtype(np.int32),
    (32, True): np.dtype(np.uint32),
    (64, False): np.dtype(np.int64),
    (64, True): np.dtype(np.uint64),
}


def _integer_element(attr: IntegerType) -> ElementType | None:
    width = attr.width.data
    unsigned = attr.signedness.data == Signedness.UNSIGNED
    dtype = _INTEGER_DTYPES.get((width, unsigned))
    if dtype is None:
        return None
    value = ir.IntType(width)
    return ElementType(str(attr), dtype, value, I8 if width < 8 else value)


def _small_float_element(attr: Attribute) -> ElementType:
    fmt, dtype = _SMALL_FLOATS[type(attr)]
    storage = floatfmt.storage_type(fmt)
    return ElementType(fmt, dtype, storage, storage, fmt)


@functools.cache
def _element_or_none(attr: Attribute) -> ElementType | None:
    match attr:
        case IntegerType():
            return _integer_element(attr)
        case IndexType():
            return ElementType("index", np.dtype(np.int64), I64, I64)
        case _ if type(attr) in _NATIVE_FLOATS:
            return _NATIVE_FLOATS[type(attr)]
        case _ if type(attr) in _SMALL_FLOATS:
            return _small_float_element(attr)
        case _:
            return None


def element_type(attr: Attribute, op: Operation | None = None) -> ElementType:
    """The `ElementType` of a scalar type; `TranslationError` (located at `op`) if none."""
    element = _element_or_none(attr)
    if element is None:
        raise TranslationError(f"unsupported element type {attr}", op)
    return element


def _tensor_type(attr: Attribute, op: Operation, what: str) -> TensorType:
    if not isinstance(attr, TensorType):
        raise TranslationError(f"{what} must be a ranked tensor, got {attr}", op)
    if any(d < 0 for d in attr.get_shape()):
        raise TranslationError(f"{what} must have a static shape, got {attr}", op)
    element_type(attr.get_element_type(), op)
    return attr


def c_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Element strides of a C-contiguous array of `shape` (as numpy lays out `np.empty`)."""
    strides, step = [], 1
    for extent in reversed(shape):
        strides.append(step)
        step *= max(extent, 1)
    return tuple(reversed(strides))


# --------------------------------------------------------------------------------------
# Affine maps: what is supported, their value range, and their evaluation in LLVM


def _unsupported_expr(expr: AffineExpr) -> str | None:
    """Why `expr` is outside dims, constants, +, * constant, floordiv / mod positive constant."""
    match expr:
        case AffineDimExpr() | AffineConstantExpr():
            return None
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Add):
            return _unsupported_expr(expr.lhs) or _unsupported_expr(expr.rhs)
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Mul):
            if not isinstance(expr.lhs, AffineConstantExpr) and not isinstance(
                expr.rhs, AffineConstantExpr
            ):
                return f"'{expr}' multiplies two non-constant expressions"
            return _unsupported_expr(expr.lhs) or _unsupported_expr(expr.rhs)
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.FloorDiv | AffineBinaryOpKind.Mod):
            if not isinstance(expr.rhs, AffineConstantExpr) or expr.rhs.value <= 0:
                return f"'{expr}' divides by something other than a positive constant"
            return _unsupported_expr(expr.lhs)
        case _:
            return f"'{expr}' is not supported (dims, constants, +, *, floordiv, mod only)"


def _expr_range(expr: AffineExpr, extents: Sequence[int]) -> tuple[int, int]:
    """Smallest and largest value of `expr` over the iteration box (all extents > 0)."""
    match expr:
        case AffineDimExpr(position=k):
            return 0, extents[k] - 1
        case AffineConstantExpr(value=v):
            return v, v
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Add):
            (a, b), (c, d) = _expr_range(expr.lhs, extents), _expr_range(expr.rhs, extents)
            return a + c, b + d
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Mul):
            (a, b), (c, d) = _expr_range(expr.lhs, extents), _expr_range(expr.rhs, extents)
            products = (a * c, a * d, b * c, b * d)
            return min(products), max(products)
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.FloorDiv):
            a, b = _expr_range(expr.lhs, extents)
            return a // expr.rhs.value, b // expr.rhs.value
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Mod):
            a, b = _expr_range(expr.lhs, extents)
            m = expr.rhs.value
            return (a % m, b % m) if b - a < m and a % m <= b % m else (0, m - 1)
    raise AssertionError(f"unchecked affine expression {expr}")


def _is_dim(expr: AffineExpr, k: int) -> bool:
    return isinstance(expr, AffineDimExpr) and expr.position == k


def _const(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


def _floor_div(b: ir.IRBuilder, x: ir.Value, d: int) -> ir.Value:
    if d & (d - 1) == 0:
        return b.ashr(x, _const(d.bit_length() - 1))  # exact floor, negatives too
    q = b.sdiv(x, _const(d))
    # sdiv truncates toward zero; floor needs one less when x < 0 and d does not divide x.
    inexact_negative = b.and_(
        b.icmp_signed("<", x, _const(0)), b.icmp_signed("!=", b.mul(q, _const(d)), x)
    )
    return b.sub(q, b.zext(inexact_negative, I64))


def _floor_mod(b: ir.IRBuilder, x: ir.Value, d: int) -> ir.Value:
    if d & (d - 1) == 0:
        return b.and_(x, _const(d - 1))
    r = b.srem(x, _const(d))
    return b.select(b.icmp_signed("<", r, _const(0)), b.add(r, _const(d)), r)


def _emit_expr(
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
            return _const(v)
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Add):
            lhs, rhs = _emit_expr(b, expr.lhs, dims, known), _emit_expr(b, expr.rhs, dims, known)
            return b.add(lhs, rhs, flags=["nsw"])
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Mul):
            lhs, rhs = _emit_expr(b, expr.lhs, dims, known), _emit_expr(b, expr.rhs, dims, known)
            return b.mul(lhs, rhs, flags=["nsw"])
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.FloorDiv):
            return _floor_div(b, _emit_expr(b, expr.lhs, dims, known), expr.rhs.value)
        case AffineBinaryOpExpr(kind=AffineBinaryOpKind.Mod):
            return _floor_mod(b, _emit_expr(b, expr.lhs, dims, known), expr.rhs.value)
    raise AssertionError(f"unchecked affine expression {expr}")


def _moves(expr: AffineExpr, dim: int, known: Mapping[AffineExpr, ir.Value]) -> bool:
    """Whether `expr` changes with `dim` once the `known` subexpressions are fixed."""
    if expr in known:
        return False
    match expr:
        case AffineDimExpr(position=k):
            return k == dim
        case AffineBinaryOpExpr():
            return _moves(expr.lhs, dim, known) or _moves(expr.rhs, dim, known)
    return False


def _block_of(expr: AffineExpr, dim: int) -> int | None:
    """c when `expr` is `d<dim> floordiv c`."""
    match expr:
        case AffineBinaryOpExpr(
            kind=AffineBinaryOpKind.FloorDiv,
            lhs=AffineDimExpr(position=k),
            rhs=AffineConstantExpr(value=c),
        ) if k == dim:
            return c
    return None


def _reduction_block(nest: _Nest, dim: int) -> int | None:
    """c when `dim` is a reduction dimension that the outputs see only as `d floordiv c`
    (a per-block reduction): looping over blocks of c makes each output element invariant
    in the inner loop, so it can be accumulated in a register and the loop vectorized."""
    if nest.block is None or not nest.reductions[dim]:
        return None
    blocks = {
        _block_of(r, dim) for out in nest.outputs for r in out.map.results if dim in r.used_dims()
    }
    if len(blocks) != 1 or None in blocks:
        return None
    (c,) = blocks
    return c if c < nest.extents[dim] else None


# --------------------------------------------------------------------------------------
# Bufferization: the loop nests of a function and the buffers they read and write


@dataclass(frozen=True, eq=False)
class _Global:
    """A dense constant tensor, emitted as an LLVM global with compile-time strides."""

    var: ir.GlobalVariable
    strides: tuple[int, ...]


_Storage = int | _Global  # a buffer number, or a global constant


@dataclass(frozen=True)
class _Access:
    """One operand of a loop nest: where its elements live and how the loop indexes them."""

    storage: _Storage
    map: AffineMap
    element: ElementType
    shape: tuple[int, ...]

    def row_local(self) -> bool:
        """Index 0 is exactly `d0` and `d0` appears nowhere else."""
        results = self.map.results
        return (
            bool(results)
            and _is_dim(results[0], 0)
            and all(0 not in r.used_dims() for r in results[1:])
        )


@dataclass(frozen=True)
class _Nest:
    """A `linalg.generic` (or a copy the bufferization needs) as a loop nest on buffers."""

    origin: Operation
    extents: tuple[int, ...]
    reductions: tuple[bool, ...]  # per dimension: is it a reduction dimension
    inputs: tuple[_Access, ...]
    outputs: tuple[_Access, ...]
    block: Block | None  # None: a copy, outputs[i] = inputs[i]
    # tensors read by `tensor.extract` in the body, at indices computed there (a gather)
    gathers: Mapping[SSAValue, _Access] = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return len(self.extents)

    @property
    def accesses(self) -> tuple[_Access, ...]:
        return self.inputs + self.outputs

    @property
    def kind(self) -> str:
        return "copy" if self.block is None else self.origin.name

    @property
    def work(self) -> int:
        return int(np.prod(self.extents, dtype=np.int64))

    def splittable(self) -> bool:
        """Chunks of dimension 0 write disjoint elements, so they may run concurrently."""
        return (
            self.rank >= 1
            and not self.reductions[0]
            and all(any(_is_dim(r, 0) for r in o.map.results) for o in self.outputs)
        )


def _identity_copy(origin: Operation, src: _Access, dst: _Access) -> _Nest:
    rank = len(dst.shape)
    identity = AffineMap.identity(rank)
    return _Nest(
        origin,
        dst.shape,
        (False,) * rank,
        (_Access(src.storage, identity, src.element, src.shape),),
        (_Access(dst.storage, identity, dst.element, dst.shape),),
        None,
    )


@dataclass
class _FunctionPlan:
    name: str
    buffers: list[BufferSpec]
    nests: list[_Nest]
    scalars: dict[SSAValue, arith.ConstantOp]  # function-level scalar constants


class _Bufferizer:
    """Walks one `func.func` and turns it into buffers and loop nests (design.md section 2)."""

    def __init__(self, fn: func.FuncOp, module: ir.Module) -> None:
        self.fn = fn
        self.name = fn.sym_name.data
        self.module = module
        self.ops = list(fn.body.block.ops)
        self.buffers: list[BufferSpec] = []
        self.storage: dict[SSAValue, _Storage] = {}
        self.nests: list[_Nest] = []
        self.scalars: dict[SSAValue, arith.ConstantOp] = {}
        self.empties: set[SSAValue] = set()
        self.last_use = self._last_uses()
        self.returned = self._returned_positions()
        self.unclaimed_results: set[int] = set()
        self.successor = self._in_place_successors()

    # -- analysis ---------------------------------------------------------------------

    def _last_uses(self) -> dict[SSAValue, int]:
        """value -> index of the last top-level op using it (uses in bodies included)."""
        last: dict[SSAValue, int] = {}
        for index, op in enumerate(self.ops):
            for nested in op.walk():
                for operand in nested.operands:
                    last[operand] = index
        return last

    def _returned_positions(self) -> dict[SSAValue, list[int]]:
        ret = self.ops[-1] if self.ops else None
        if not isinstance(ret, func.ReturnOp):
            raise TranslationError("function body must end with func.return", self.fn)
        positions: dict[SSAValue, list[int]] = {}
        for k, value in enumerate(ret.arguments):
            positions.setdefault(value, []).append(k)
        return positions

    def _reusable(self, value: SSAValue, generic: GenericOp, index: int) -> bool:
        """An `outs` value whose buffer the generic may overwrite in place."""
        owner = value.owner
        if not isinstance(owner, GenericOp) or self.last_use.get(value) != index:
            return False
        uses = sum(list(nested.operands).count(value) for nested in generic.walk())
        return uses == 1

    def _in_place_successors(self) -> dict[SSAValue, SSAValue]:
        """value -> the generic result written into the same buffer (chains of in-place)."""
        successor: dict[SSAValue, SSAValue] = {}
        for index, op in enumerate(self.ops):
            if isinstance(op, GenericOp):
                for out, result in zip(op.outputs, op.results):
                    if self._reusable(out, op, index):
                        successor[out] = result
        return successor

    # -- buffers ------------------------------------------------------------------------

    def _add_buffer(self, name: str, kind: str, type_: TensorType, op: Operation) -> int:
        element = element_type(type_.get_element_type(), op)
        self.buffers.append(
            BufferSpec(name, kind, tuple(type_.get_shape()), element.dtype, element.name)  # type: ignore[arg-type]
        )
        return len(self.buffers) - 1

    def _destination(self, value: SSAValue, op: Operation) -> int:
        """A fresh buffer for `value`: a result buffer if the value it becomes is returned."""
        end = value
        while end in self.successor:
            end = self.successor[end]
        for k in self.returned.get(end, ()):
            if k in self.unclaimed_results:
                self.unclaimed_results.discard(k)
                return len(self.fn.args) + k
        return self._add_buffer(
            f"scratch{sum(b.kind == 'scratch' for b in self.buffers)}",
            "scratch",
            _tensor_type(value.type, op, "a scratch tensor"),
            op,
        )

    def _read_storage(self, value: SSAValue, op: Operation) -> _Storage:
        if value in self.empties:  # reading an empty tensor: any contents will do
            self.storage[value] = self._destination(value, op)
            self.empties.discard(value)
        if value not in self.storage:
            raise TranslationError(f"operand {value.name_hint or ''} is not a tensor buffer", op)
        return self.storage[value]

    def _access(
        self, value: SSAValue, storage: _Storage, amap: AffineMap, op: Operation
    ) -> _Access:
        type_ = _tensor_type(value.type, op, "a linalg.generic operand")
        return _Access(
            storage, amap, element_type(type_.get_element_type(), op), tuple(type_.get_shape())
        )

    def _value_access(self, value: SSAValue, op: Operation) -> _Access:
        rank = len(_tensor_type(value.type, op, "a tensor").get_shape())
        return self._access(value, self._read_storage(value, op), AffineMap.identity(rank), op)

    # -- the walk -----------------------------------------------------------------------

    def plan(self) -> _FunctionPlan:
        fn = self.fn
        for k, (arg, type_) in enumerate(zip(fn.args, fn.function_type.inputs.data)):
            tensor_type = _tensor_type(type_, fn, f"argument {k}")
            self.storage[arg] = self._add_buffer(arg.name_hint or f"arg{k}", "arg", tensor_type, fn)
        for k, type_ in enumerate(fn.function_type.outputs.data):
            self._add_buffer(f"result{k}", "result", _tensor_type(type_, fn, f"result {k}"), fn)
            self.unclaimed_results.add(k)
        for index, op in enumerate(self.ops):
            self._plan_op(op, index)
        return _FunctionPlan(self.name, self.buffers, self.nests, self.scalars)

    def _plan_op(self, op: Operation, index: int) -> None:
        match op:
            case tensor.EmptyOp():
                _tensor_type(op.tensor.type, op, "tensor.empty")
                self.empties.add(op.tensor)
            case arith.ConstantOp():
                self._plan_constant(op)
            case GenericOp():
                self._plan_generic(op, index)
            case func.ReturnOp():
                self._plan_return(op)
            case _:
                raise TranslationError(
                    f"unsupported op '{op.name}' at function level (expected tensor.empty, "
                    "arith.constant, linalg.generic, func.return)",
                    op,
                )

    def _plan_constant(self, op: arith.ConstantOp) -> None:
        if isinstance(op.value, IntegerAttr | FloatAttr):
            element_type(op.result.type, op)
            self.scalars[op.result] = op
            return
        if not isinstance(op.value, DenseIntOrFPElementsAttr):
            raise TranslationError(f"unsupported constant attribute {op.value}", op)
        type_ = _tensor_type(op.result.type, op, "a dense constant")
        element = element_type(type_.get_element_type(), op)
        self.storage[op.result] = _dense_global(
            self.module, f"{self.name}__const{len(self.module.globals)}", op.value, element, type_
        )

    def _plan_return(self, op: func.ReturnOp) -> None:
        nargs = len(self.fn.args)
        for k, value in enumerate(op.arguments):
            if self.storage.get(value) == nargs + k:
                continue
            dst = _Access(
                nargs + k,
                AffineMap.identity(len(self.buffers[nargs + k].shape)),
                element_type(_tensor_type(value.type, op, "a result").get_element_type(), op),
                self.buffers[nargs + k].shape,
            )
            self.nests.append(_identity_copy(op, self._value_access(value, op), dst))

    def _plan_generic(self, op: GenericOp, index: int) -> None:
        maps = [m.data for m in op.indexing_maps.data]
        reductions = tuple(it.data == IteratorType.REDUCTION for it in op.iterator_types.data)
        operands = list(op.inputs) + list(op.outputs)
        _check_maps(op, maps, operands, len(reductions))
        extents = _loop_extents(op, maps, operands, len(reductions))
        _check_bounds(op, maps, operands, extents)

        block = op.body.block
        _check_body(block, self.scalars, set(self.storage) | self.empties)
        gathers = {
            x.tensor: self._value_access(x.tensor, x)
            for x in block.ops
            if isinstance(x, tensor.ExtractOp)
        }
        inputs = tuple(
            self._access(v, self._read_storage(v, op), m, op) for v, m in zip(op.inputs, maps)
        )
        outputs = []
        for out, result, amap in zip(op.outputs, op.results, maps[len(op.inputs) :]):
            buffer = self._output_buffer(op, index, out, result)
            self.storage[result] = buffer
            outputs.append(self._access(out, buffer, amap, op))
        self.nests.append(_Nest(op, extents, reductions, inputs, tuple(outputs), block, gathers))

    def _output_buffer(self, op: GenericOp, index: int, out: SSAValue, result: SSAValue) -> int:
        if out in self.empties:  # tensor.empty: nothing to keep, any fresh buffer
            return self._destination(result, op)
        storage = self._read_storage(out, op)
        if isinstance(storage, int) and self._reusable(out, op, index):
            return storage
        buffer = self._destination(result, op)
        dst = self._access(out, buffer, AffineMap.identity(len(self.buffers[buffer].shape)), op)
        self.nests.append(_identity_copy(op, self._value_access(out, op), dst))
        return buffer


def _check_maps(op: Operation, maps: list[AffineMap], operands: list[SSAValue], rank: int) -> None:
    for k, (amap, value) in enumerate(zip(maps, operands)):
        type_ = _tensor_type(value.type, op, f"linalg.generic operand {k}")
        if amap.num_dims != rank or amap.num_symbols:
            raise TranslationError(
                f"indexing map {k} {amap} must have {rank} dims and no symbols", op
            )
        if len(amap.results) != len(type_.get_shape()):
            raise TranslationError(f"indexing map {k} {amap} does not match {type_}", op)
        for expr in amap.results:
            if (reason := _unsupported_expr(expr)) is not None:
                raise TranslationError(f"indexing map {k} {amap}: {reason}", op)
    block = op.regions[0].block
    if len(block.args) != len(operands):
        raise TranslationError("linalg.generic body needs one argument per operand", op)


def _loop_extents(
    op: Operation, maps: list[AffineMap], operands: list[SSAValue], rank: int
) -> tuple[int, ...]:
    """Extent of each dK: the first operand dimension whose map result is exactly dK."""
    extents = []
    for k in range(rank):
        found = next(
            (
                value.type.get_shape()[j]
                for amap, value in zip(maps, operands)
                for j, expr in enumerate(amap.results)
                if _is_dim(expr, k)
            ),
            None,
        )
        if found is None:
            raise TranslationError(f"no operand dimension is indexed by exactly d{k}", op)
        extents.append(found)
    return tuple(extents)


def _check_bounds(
    op: Operation, maps: list[AffineMap], operands: list[SSAValue], extents: Sequence[int]
) -> None:
    if 0 in extents:
        return
    for k, (amap, value) in enumerate(zip(maps, operands)):
        for j, (expr, size) in enumerate(zip(amap.results, value.type.get_shape())):
            lo, hi = _expr_range(expr, extents)
            if lo < 0 or hi >= size:
                raise TranslationError(
                    f"operand {k} index {j} ({expr}) ranges over [{lo}, {hi}] "
                    f"outside [0, {size}) for loop extents {tuple(extents)}",
                    op,
                )


def _constant_bits(values: Iterable[int | float], element: ElementType) -> np.ndarray:
    """The values as the bytes one element each occupies in memory."""
    if isinstance(element.value, ir.IntType) and element.float_format is None:
        width = element.value.width
        raw = [int(v) & ((1 << width) - 1) for v in values]
        return np.array(raw, dtype=np.uint64).astype(f"<u{element.dtype.itemsize}")
    return np.array(list(values), dtype=np.float64).astype(element.dtype)


def _dense_global(
    module: ir.Module,
    name: str,
    attr: DenseIntOrFPElementsAttr,
    element: ElementType,
    type_: TensorType,
) -> _Global:
    shape = tuple(type_.get_shape())
    data = _constant_bits(attr.get_values(), element).tobytes()
    size = element.dtype.itemsize
    splat = len(data) > size and data == data[:size] * (len(data) // size)
    if splat:
        data = data[:size]
    var = ir.GlobalVariable(module, ir.ArrayType(I8, len(data)), name)
    var.global_constant = True
    var.linkage = "internal"
    var.unnamed_addr = True
    var.align = max(size, 16)
    var.initializer = ir.Constant(ir.ArrayType(I8, len(data)), bytearray(data))
    strides = (0,) * len(shape) if splat else c_strides(shape)
    return _Global(var, strides)


# --------------------------------------------------------------------------------------
# Phases: fusing consecutive nests under one outer loop


def _fusable(nests: Sequence[_Nest]) -> bool:
    """design.md section 2: same extent, d0 parallel, every map uses d0 only in its first
    result; and every buffer written in the phase is accessed row by row (index 0 = d0)."""
    if any(n.rank == 0 or n.reductions[0] for n in nests):
        return False
    if len({n.extents[0] for n in nests}) != 1:
        return False
    accesses = [a for n in nests for a in n.accesses]
    if any(0 in r.used_dims() for a in accesses for r in a.map.results[1:]):
        return False
    written = {o.storage for n in nests for o in n.outputs}
    if any(g.storage in written for n in nests for g in n.gathers.values()):
        return False  # read at computed indices: any row
    return all(a.row_local() for a in accesses if a.storage in written)


def _group_phases(nests: Sequence[_Nest]) -> list[list[_Nest]]:
    phases: list[list[_Nest]] = []
    for nest in nests:
        if phases and _fusable([*phases[-1], nest]):
            phases[-1].append(nest)
        else:
            phases.append([nest])
    return phases


@dataclass(frozen=True)
class _BlockGroup:
    """Consecutive nests of one phase that run block by block along the last dimension.

    A per-block statistic (a reduction whose outputs see the last dimension only as
    `d floordiv size`), the nests that turn it into per-block parameters, and the nests
    that consume them element by element are interleaved tile by tile: for each tile of
    `BLOCKS_PER_TILE` blocks, the statistics of its blocks, then their parameters, then
    its elements. The tile is still in L1 when it is quantized, however long the row
    (design.md section 2). A tile, not a single block: the parameter arithmetic is then a
    loop over 16 blocks that vectorizes, where one block at a time it is a chain of scalar
    divisions and conversions the core cannot overlap (measured: 2x slower for NVFP4).
    """

    nests: tuple[_Nest, ...]
    per_block: tuple[bool, ...]  # runs once per block (parameter-shaped), else per element
    size: int
    extent: int  # elements along the last dimension

    @property
    def rank(self) -> int:
        return self.nests[0].rank

    @property
    def tile(self) -> int:
        """Elements per tile along the last dimension."""
        return self.size * BLOCKS_PER_TILE


BLOCKS_PER_TILE = 16  # one AVX-512 vector of per-block f32 parameters


def _block_role(nest: _Nest, size: int, outer: tuple[int, ...], extent: int) -> bool | None:
    """How `nest` fits a block group of `size` along the last dimension: True when it runs
    once per block (extent ceil(extent / size), maps see the dimension as itself), False
    when it runs over the block's elements (maps see it as itself or `d floordiv size`,
    a reduction only as a per-block one), None when it does not fit."""
    last = len(outer)
    blocks = -(-extent // size)
    if nest.rank != last + 1 or nest.extents[:last] != outer or nest.gathers:
        return None
    if any(nest.reductions[:last]):
        return None
    if nest.extents[last] == blocks and not any(nest.reductions):
        per_block = True
    elif nest.extents[last] == extent:
        if nest.reductions[last] and _reduction_block(nest, last) != size:
            return None
        per_block = False
    else:
        return None
    for access in nest.accesses:
        for r in access.map.results:
            if last not in r.used_dims() or _is_dim(r, last):
                continue
            if per_block or _block_of(r, last) != size:
                return None
    return per_block


def _block_group_at(nests: Sequence[_Nest], start: int) -> _BlockGroup | None:
    """The block group that begins at `nests[start]`, if any: per-block nests, then a
    per-block reduction that fixes the block size, then nests that fit (`_block_role`),
    with every buffer written in the group read back only inside the same block."""
    first = nests[start]
    if first.rank < 2:
        return None
    last = first.rank - 1
    outer = first.extents[:last]
    statistic = next(
        (
            k
            for k in range(start, len(nests))
            if nests[k].rank == first.rank and _reduction_block(nests[k], last) is not None
        ),
        None,
    )
    if statistic is None:
        return None
    size = _reduction_block(nests[statistic], last)
    assert size is not None
    extent = nests[statistic].extents[last]
    roles: list[bool] = []
    for nest in nests[start:]:
        role = _block_role(nest, size, outer, extent)
        if role is None:
            break
        roles.append(role)
    members = nests[start : start + len(roles)]
    if len(roles) <= statistic - start or not any(
        not role and not any(n.reductions) for n, role in zip(members, roles)
    ):
        return None  # the statistic does not fit, or nothing consumes it per element
    # A buffer written in the group is indexed (d0, .., d<last-1>, x) everywhere in it, x
    # being always the element (`d<last>` in per-element nests) or always the block
    # (`d<last>` in per-block nests, `d<last> floordiv size` in per-element ones), so a
    # block only ever reads what the same block wrote.
    written = {o.storage for n in members for o in n.outputs}
    indexed_by: dict[_Storage, str] = {}
    for n, per_block in zip(members, roles):
        for a in n.accesses:
            if a.storage not in written:
                continue
            results = a.map.results
            if len(results) != last + 1 or not all(
                _is_dim(r, j) for j, r in enumerate(results[:last])
            ):
                return None
            by = "element" if _is_dim(results[last], last) and not per_block else "block"
            if indexed_by.setdefault(a.storage, by) != by:
                return None
    return _BlockGroup(tuple(members), tuple(roles), size, extent)


def _row_plan(members: Sequence[_Nest]) -> list[_Nest | _BlockGroup]:
    """What one row of a phase runs, in order: single nests and block groups."""
    plan: list[_Nest | _BlockGroup] = []
    k = 0
    while k < len(members):
        group = _block_group_at(members, k)
        plan.append(members[k] if group is None else group)
        k += 1 if group is None else len(group.nests)
    return plan


def _phase_spec(name: str, members: Sequence[_Nest]) -> PhaseSpec:
    extent = members[0].extents[0] if members[0].rank else 1
    return PhaseSpec(
        name,
        extent,
        all(n.splittable() for n in members),
        sum(n.work for n in members),
        tuple(n.kind for n in members),
        tuple(step.size for step in _row_plan(members) if isinstance(step, _BlockGroup)),
    )


# --------------------------------------------------------------------------------------
# Scalar ops inside bodies


def _intrinsic(b: ir.IRBuilder, name: str, args: Sequence[ir.Value]) -> ir.Value:
    """Call `name.<type>` declared with an explicit function type (see STYLE: declare_intrinsic)."""
    fnty = ir.FunctionType(args[0].type, [a.type for a in args])
    return b.call(b.module.declare_intrinsic(name, [args[0].type], fnty), list(args))


def _scalar_constant(attr: Attribute, type_: Attribute, op: Operation) -> ir.Constant:
    element = element_type(type_, op)
    match attr:
        case IntegerAttr() if isinstance(element.value, ir.IntType):
            width = element.value.width
            bits = attr.value.data & ((1 << width) - 1)
            return ir.Constant(element.value, bits - (1 << width) if bits >> (width - 1) else bits)
        case FloatAttr() if element.float_format is not None and element.float_format != "f16":
            bits = _constant_bits([attr.value.data], element).view(f"<u{element.dtype.itemsize}")
            return ir.Constant(element.value, int(bits[0]))
        case FloatAttr():
            return ir.Constant(element.value, attr.value.data)
    raise TranslationError(f"unsupported constant {attr}", op)


_CMPF_PREDICATES = (
    "false", "oeq", "ogt", "oge", "olt", "ole", "one", "ord",
    "ueq", "ugt", "uge", "ult", "ule", "une", "uno", "true",
)  # fmt: skip
_CMPI_PREDICATES = (
    ("==", True), ("!=", True), ("<", True), ("<=", True), (">", True), (">=", True),
    ("<", False), ("<=", False), (">", False), (">=", False),
)  # fmt: skip


def _cmpf(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
    return b.fcmp_ordered(_CMPF_PREDICATES[op.predicate.value.data], *args)


def _cmpi(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
    pred, signed = _CMPI_PREDICATES[op.predicate.value.data]
    return (b.icmp_signed if signed else b.icmp_unsigned)(pred, *args)


def _result_llvm_type(op: Operation) -> ir.Type:
    return element_type(op.results[0].type, op).value


def _cast(method: str) -> Callable[[ir.IRBuilder, Operation, list[ir.Value]], ir.Value]:
    def convert(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
        result = element_type(op.results[0].type, op)
        if method in ("sitofp", "uitofp") and not result.is_float:
            raise TranslationError(
                f"'{op.name}' to {result.name} is not supported; convert to f32 and arith.truncf",
                op,
            )
        return getattr(b, method)(args[0], result.value)

    return convert


def _index_cast(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
    src, dst = args[0].type.width, _result_llvm_type(op)
    if src == dst.width:
        return args[0]
    return b.sext(args[0], dst) if src < dst.width else b.trunc(args[0], dst)


def _bitcast(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
    """Same bits, other type; a no-op when both types share their LLVM carrier."""
    value, dst = args[0], _result_llvm_type(op)
    if value.type == dst:
        return value
    if isinstance(value.type, ir.IntType) and isinstance(dst, ir.IntType):
        # f4E2M1FN is carried in i8: to/from i4 is a truncation / zero extension.
        return b.trunc(value, dst) if value.type.width > dst.width else b.zext(value, dst)
    return b.bitcast(value, dst)


def _float_convert(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
    """arith.extf / arith.truncf: native LLVM casts, or floatfmt for small float formats."""
    src = element_type(op.operands[0].type, op)
    dst = element_type(op.results[0].type, op)
    value = args[0]
    if src.float_format is not None:
        value = floatfmt.extend(b, value, src.float_format)  # exact, to f32
    if dst.float_format is not None:
        if value.type != ir.FloatType():
            raise TranslationError(
                f"{op.name} from {src.name} to {dst.name} would round twice (only f32 and "
                "small float sources are supported)",
                op,
            )
        return floatfmt.truncate(b, value, dst.float_format)
    if value.type == dst.value:
        return value
    wider = isinstance(dst.value, ir.DoubleType)
    return b.fpext(value, dst.value) if wider else b.fptrunc(value, dst.value)


def _float_only(
    emit: Callable[[ir.IRBuilder, Operation, list[ir.Value]], ir.Value],
) -> Callable[[ir.IRBuilder, Operation, list[ir.Value]], ir.Value]:
    """Reject float arithmetic on small formats carried as integers (bf16, f8, f4)."""

    def checked(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
        for value in op.operands:
            element = element_type(value.type, op)
            if not element.is_float:
                raise TranslationError(
                    f"'{op.name}' on {element.name} values is not supported; "
                    "arith.extf them to f32 first",
                    op,
                )
        return emit(b, op, args)

    return checked


def _binary(method: str) -> Callable[[ir.IRBuilder, Operation, list[ir.Value]], ir.Value]:
    return lambda b, op, args: getattr(b, method)(args[0], args[1])


def _call(name: str) -> Callable[[ir.IRBuilder, Operation, list[ir.Value]], ir.Value]:
    return lambda b, op, args: _intrinsic(b, name, args)


_ScalarEmitter = Callable[[ir.IRBuilder, Operation, list[ir.Value]], ir.Value]

# The body op set of design.md section 1 (arith.constant is handled by the body walker).
_SCALAR_OPS: dict[str, _ScalarEmitter] = {
    "arith.addf": _float_only(_binary("fadd")),
    "arith.subf": _float_only(_binary("fsub")),
    "arith.mulf": _float_only(_binary("fmul")),
    "arith.divf": _float_only(_binary("fdiv")),
    "arith.negf": _float_only(lambda b, op, args: b.fneg(args[0])),
    "arith.maximumf": _float_only(_call("llvm.maximum")),
    "arith.minimumf": _float_only(_call("llvm.minimum")),
    "arith.maxnumf": _float_only(_call("llvm.maxnum")),
    "arith.minnumf": _float_only(_call("llvm.minnum")),
    "arith.cmpf": _float_only(_cmpf),
    "arith.cmpi": _cmpi,
    "arith.select": lambda b, op, args: b.select(*args),
    "arith.addi": _binary("add"),
    "arith.subi": _binary("sub"),
    "arith.muli": _binary("mul"),
    "arith.divsi": _binary("sdiv"),
    "arith.divui": _binary("udiv"),
    "arith.remsi": _binary("srem"),
    "arith.andi": _binary("and_"),
    "arith.ori": _binary("or_"),
    "arith.xori": _binary("xor"),
    "arith.shli": _binary("shl"),
    "arith.shrui": _binary("lshr"),
    "arith.shrsi": _binary("ashr"),
    "arith.maxsi": _call("llvm.smax"),
    "arith.minsi": _call("llvm.smin"),
    "arith.maxui": _call("llvm.umax"),
    "arith.minui": _call("llvm.umin"),
    "arith.extsi": _cast("sext"),
    "arith.extui": _cast("zext"),
    "arith.trunci": _cast("trunc"),
    "arith.sitofp": _cast("sitofp"),
    "arith.uitofp": _cast("uitofp"),
    "arith.fptosi": _float_only(_cast("fptosi")),
    "arith.fptoui": _float_only(_cast("fptoui")),
    "arith.extf": _float_convert,
    "arith.truncf": _float_convert,
    "arith.bitcast": _bitcast,
    "arith.index_cast": _index_cast,
    "math.roundeven": _float_only(_call("llvm.roundeven")),
    "math.round": _float_only(_call("llvm.round")),
    "math.floor": _float_only(_call("llvm.floor")),
    "math.ceil": _float_only(_call("llvm.ceil")),
    "math.trunc": _float_only(_call("llvm.trunc")),
    "math.absf": _float_only(_call("llvm.fabs")),
    "math.copysign": _float_only(_call("llvm.copysign")),
    "math.fma": _float_only(_call("llvm.fma")),
    "math.log2": _float_only(_call("llvm.log2")),
    "math.exp2": _float_only(_call("llvm.exp2")),
}


def _check_body(
    block: Block, scalars: Mapping[SSAValue, arith.ConstantOp], tensors: set[SSAValue]
) -> None:
    """Fail before emitting anything: every op translatable, every value available (block
    arguments, earlier results, function-level scalar constants, and for `tensor.extract`
    a function-level tensor)."""
    available = set(block.args) | set(scalars)
    for op in block.ops:
        if op.regions or (op.name not in _SCALAR_OPS and op.name not in _BODY_SPECIAL):
            raise TranslationError(
                f"unsupported op '{op.name}' in a linalg.generic body (not in the lowered-IR op set)",
                op,
            )
        operands = list(op.operands)
        if isinstance(op, tensor.ExtractOp):
            if op.tensor not in tensors:
                raise TranslationError("tensor.extract must read a function-level tensor", op)
            operands = list(op.indices)
        for value in operands:
            if value not in available:
                raise TranslationError(
                    "operand defined outside the body is not a scalar arith.constant", op
                )
        for result in op.results:
            element_type(result.type, op)
        available.update(op.results)
    if not isinstance(block.last_op, YieldOp):
        raise TranslationError("linalg.generic body must end with linalg.yield", block.parent_op())


_BODY_SPECIAL = frozenset({"arith.constant", "linalg.yield", "tensor.extract"})

_Gather = Callable[[tensor.ExtractOp, list[ir.Value]], ir.Value]


def _emit_body(
    b: ir.IRBuilder,
    block: Block,
    args: Sequence[ir.Value | None],
    scalars: Mapping[SSAValue, arith.ConstantOp],
    gather: _Gather,
) -> list[ir.Value]:
    """Translate the body ops in order; return the `linalg.yield`ed values."""
    values: dict[SSAValue, ir.Value] = {a: v for a, v in zip(block.args, args) if v is not None}

    def get(value: SSAValue) -> ir.Value:
        if value not in values:  # a function-level constant
            const = scalars[value]
            values[value] = _scalar_constant(const.value, const.result.type, const)
        return values[value]

    for op in block.ops:
        match op:
            case YieldOp():
                return [get(v) for v in op.operands]
            case arith.ConstantOp():
                values[op.result] = _scalar_constant(op.value, op.result.type, op)
            case tensor.ExtractOp():
                values[op.result] = gather(op, [get(v) for v in op.indices])
            case _:
                values[op.results[0]] = _SCALAR_OPS[op.name](b, op, [get(v) for v in op.operands])
    raise AssertionError("checked body without linalg.yield")


# --------------------------------------------------------------------------------------
# Loop nests


class _LoopID(ir.values.MDValue):
    """`distinct !{self, hints...}`, the self-referencing `llvm.loop` node llvmlite lacks."""

    def descr(self, buf: list[str]) -> None:
        refs = [self.get_reference(), *(op.get_reference() for op in self.operands)]
        buf += (f"distinct !{{ {', '.join(refs)} }}", "\n")


def _loop_id(module: ir.Module, hints: Sequence[str]) -> _LoopID:
    """`hints` are property names (`llvm.loop.unroll.disable`) or `name=false` for an
    `i1 false` property (`llvm.loop.vectorize.enable=false`)."""
    properties = []
    for hint in hints:
        name, _, value = hint.partition("=")
        operands: list[ir.Value] = [ir.MetaDataString(module, name)]
        if value:
            operands.append(ir.Constant(ir.IntType(1), value == "true"))
        properties.append(module.add_metadata(operands))
    return _LoopID(module, properties, name=str(len(module.metadata)))


# Every innermost loop is split into a part of a multiple of VECTOR_STEP iterations, which
# LLVM vectorizes, and a remainder of fewer, which it must not vectorize. The reason: for
# a loop whose trip count it knows to be below 16 (its "tiny trip count" threshold: a
# 13-element row, a partial block), LLVM's loop vectorizer folds the tail by masking, and
# once the loop is unrolled, the last masked store has a constant one-lane mask, which the
# X86 backend (LLVM 22, AVX-512) turns into a plain scalar store of the *untruncated*
# lane: `vmovss` (4 bytes) for an i8 or f16 element, 1-3 elements past the row's end.
# A trip count of 0 or >= 16 never takes that path (the vectorizer keeps a scalar
# epilogue), and the remainder loop is marked scalar, so no masked store is ever emitted.
VECTOR_STEP = 16
_SCALAR_LOOP = ("llvm.loop.vectorize.enable=false",)


def _load(b: ir.IRBuilder, ptr: ir.Value, element: ElementType) -> ir.Value:
    value = b.load(ptr, typ=element.storage)
    return b.trunc(value, element.value) if element.storage != element.value else value


def _store(b: ir.IRBuilder, value: ir.Value, ptr: ir.Value, element: ElementType) -> None:
    if element.storage != element.value:
        value = b.zext(value, element.storage)  # low N bits, upper bits zero
    b.store(value, ptr)


class _PhaseEmitter:
    """Emits one phase: the ABI wrapper and the loop nest it calls.

    The loop nest is an internal function taking one `noalias` pointer per buffer plus its
    strides, so LLVM knows buffers do not overlap (hoisting parameter loads, no runtime
    alias checks in front of vector loops) once it inlines it into the wrapper.

    `emit` is the loop-to-thread mapping (here: the caller's `[lo, hi)` chunk); another
    target overrides it (`codegen.ptx`: a grid-stride loop) and may set `serial_entry`
    False to leave out the `f__serial` function.
    """

    serial_entry = True

    def __init__(
        self,
        module: ir.Module,
        name: str,
        members: Sequence[_Nest],
        buffers: Sequence[BufferSpec],
        scalars: dict[SSAValue, arith.ConstantOp],
    ) -> None:
        self.module = module
        self.name = name
        self.members = members
        self.scalars = scalars
        used = sorted(
            {
                a.storage
                for n in members
                for a in (*n.accesses, *n.gathers.values())
                if isinstance(a.storage, int)
            }
        )
        self.used = {buffer: len(buffers[buffer].shape) for buffer in used}

    def emit(self) -> ir.Function:
        body = self._body_function()
        wrapper = ir.Function(self.module, PHASE_FN_TYPE, self.name)
        wrapper.attributes.add("nounwind")
        data, strides, lo, hi = wrapper.args
        b = ir.IRBuilder(wrapper.append_basic_block("entry"))
        b.call(body, [*self._unpack_abi(b, data, strides), lo, hi])
        b.ret_void()
        return wrapper

    def _unpack_abi(self, b: ir.IRBuilder, data: ir.Value, strides: ir.Value) -> list[ir.Value]:
        """The loop-nest function's parameters from the ABI's `data` and `strides` arrays:
        the base pointer of each used buffer, then the strides of each."""
        params: list[ir.Value] = []
        for buffer in self.used:
            params.append(b.load(b.gep(data, [_const(buffer)], source_etype=PTR), typ=PTR))
        for buffer, rank in self.used.items():
            if not rank:
                continue
            row = b.load(b.gep(strides, [_const(buffer)], source_etype=PTR), typ=PTR)
            params += [
                b.load(b.gep(row, [_const(k)], source_etype=I64), typ=I64) for k in range(rank)
            ]
        return params

    # -- function and parameters --------------------------------------------------------

    def _body_function(self) -> ir.Function:
        nstrides = sum(self.used.values())
        fnty = ir.FunctionType(ir.VoidType(), [PTR] * len(self.used) + [I64] * (nstrides + 2))
        fn = ir.Function(self.module, fnty, f"{self.name}.loops")
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        fn.attributes.add("alwaysinline")
        self.bases: dict[int, ir.Value] = {}
        self.strides: dict[int, list[ir.Value]] = {}
        params = iter(fn.args)
        for buffer in self.used:
            arg = next(params)
            arg.add_attribute("noalias")
            self.bases[buffer] = arg
        for buffer, rank in self.used.items():
            self.strides[buffer] = [next(params) for _ in range(rank)]
        lo, hi = next(params), next(params)
        self.known: dict[AffineExpr, ir.Value] = {}
        self.entry = fn.append_basic_block("entry")
        self.b = ir.IRBuilder(fn.append_basic_block("start"))
        self._emit_phase(lo, hi)
        self.b.ret_void()
        ir.IRBuilder(self.entry).branch(fn.blocks[1])
        return fn

    # -- structure ----------------------------------------------------------------------

    def _emit_phase(self, lo: ir.Value, hi: ir.Value) -> None:
        ranks = {n.rank for n in self.members}
        if ranks == {0}:
            self._if(
                self.b.icmp_signed("<", lo, hi),
                lambda: self._emit_point(self.members[0], [], None, {}),
            )
        elif ranks == {1}:
            self._emit_inner_dim(self.members, [], lo, hi)
        else:
            self._loop(lo, hi, "d0", lambda iv: self._emit_rows(iv))

    def _emit_rows(self, iv0: ir.Value) -> None:
        for step in _row_plan(self.members):
            if isinstance(step, _BlockGroup):
                self._emit_block_group(step, [iv0])
            elif step.rank == 1:
                self._emit_point(step, [iv0], None, {})
            else:
                self._emit_dims(step, [iv0])

    def _emit_block_group(self, group: _BlockGroup, outer: list[ir.Value]) -> None:
        """The outer dimensions of `group`, then its tiles along the last one: the full
        tiles in a loop, a partial tail tile after it."""
        dim = len(outer)
        if dim < group.rank - 1:
            self._loop(
                _const(0),
                _const(group.nests[0].extents[dim]),
                f"d{dim}",
                lambda iv: self._emit_block_group(group, [*outer, iv]),
            )
            return
        b, tile = self.b, group.tile

        def run(t: ir.Value, start: ir.Value, end: ir.Value, blocks: int) -> None:
            first_block = b.mul(t, _const(BLOCKS_PER_TILE), flags=["nsw"])
            end_block = b.add(first_block, _const(blocks), flags=["nsw"])
            for nest, per_block in zip(group.nests, group.per_block):
                if per_block:
                    self._emit_innermost([nest], outer, first_block, end_block)
                elif nest.reductions[dim]:
                    self._emit_blocks(nest, outer, group.size, start, end)
                else:
                    self._emit_innermost([nest], outer, start, end)

        def full(t: ir.Value) -> None:
            start = b.mul(t, _const(tile), flags=["nsw"])
            run(t, start, b.add(start, _const(tile), flags=["nsw"]), BLOCKS_PER_TILE)

        full_tiles, rest = divmod(group.extent, tile)
        self._loop(_const(0), _const(full_tiles), f"d{dim}.tile", full)
        if rest:
            start = full_tiles * tile
            run(_const(full_tiles), _const(start), _const(group.extent), -(-rest // group.size))

    def _emit_dims(self, nest: _Nest, outer: list[ir.Value]) -> None:
        dim = len(outer)
        if dim == nest.rank - 1:
            self._emit_inner_dim([nest], outer, _const(0), _const(nest.extents[dim]))
            return
        self._loop(
            _const(0),
            _const(nest.extents[dim]),
            f"d{dim}",
            lambda iv: self._emit_dims(nest, [*outer, iv]),
        )

    def _emit_inner_dim(
        self, nests: Sequence[_Nest], outer: list[ir.Value], lo: ir.Value, hi: ir.Value
    ) -> None:
        """The innermost dimension over [lo, hi): one loop, or blocks of a block reduction."""
        size = _reduction_block(nests[0], len(outer)) if len(nests) == 1 else None
        if size is None:
            self._emit_innermost(nests, outer, lo, hi)
        else:
            self._emit_blocks(nests[0], outer, size, lo, hi)

    def _emit_blocks(
        self, nest: _Nest, outer: list[ir.Value], size: int, lo: ir.Value, hi: ir.Value
    ) -> None:
        """[lo, hi) as blocks of `size` (see `_reduction_block`): a partial head block, the
        full blocks with a constant trip count, a partial tail block. `d floordiv size` is
        the block number throughout each, so the outputs stay put in the inner loop."""
        b, dim = self.b, len(outer)
        key = AffineBinaryOpExpr(
            AffineBinaryOpKind.FloorDiv, AffineDimExpr(dim), AffineConstantExpr(size)
        )

        def part(q: ir.Value, start: ir.Value, end: ir.Value, hints: Sequence[str] = ()) -> None:
            self.known[key] = q
            self._emit_innermost([nest], outer, start, end, hints)
            del self.known[key]

        def full(q: ir.Value) -> None:
            start = b.mul(q, _const(size), flags=["nsw"])
            # Not unrolled: fully unrolling the short block loop first would leave LLVM to
            # vectorize across blocks, with gathers, instead of along the block.
            end = b.add(start, _const(size), flags=["nsw"])
            part(q, start, end, ("llvm.loop.unroll.disable",))

        first = _floor_div(b, b.add(lo, _const(size - 1)), size)  # first block inside
        last = _floor_div(b, hi, size)  # the block hi falls in
        head_end = _intrinsic(b, "llvm.smin", [hi, b.mul(first, _const(size))])
        tail_start = _intrinsic(b, "llvm.smax", [b.mul(last, _const(size)), head_end])
        self._if(
            b.icmp_signed("<", lo, head_end),
            lambda: part(_floor_div(b, lo, size), lo, head_end),
        )
        self._loop(first, last, f"d{dim}.block", full)
        self._if(b.icmp_signed("<", tail_start, hi), lambda: part(last, tail_start, hi))

    def _emit_innermost(
        self,
        nests: Sequence[_Nest],
        outer: list[ir.Value],
        lo: ir.Value,
        hi: ir.Value,
        hints: Sequence[str] = (),
    ) -> None:
        """The innermost loop over dimension len(outer), in a unit-stride and a strided version."""
        dim = len(outer)
        accumulators = [self._open_accumulators(n, outer) for n in nests]

        # The vector part runs a multiple of VECTOR_STEP iterations, the rest a scalar loop
        # (see VECTOR_STEP): LLVM never gets to fold a short tail into masked stores.
        length = self.b.sub(hi, lo, flags=["nsw"])
        mid = self.b.add(lo, self.b.and_(length, _const(-VECTOR_STEP)), flags=["nsw"])

        def version(unit: bool) -> Callable[[], None]:
            name = f"d{dim}.{'unit' if unit else 'strided'}"

            def point(iv: ir.Value) -> None:
                for n, acc in zip(nests, accumulators):
                    self._emit_point(n, [*outer, iv], dim if unit else None, acc)

            def loop() -> None:
                self._loop(lo, mid, name, point, hints)
                self._loop(mid, hi, f"{name}.rest", point, (*hints, *_SCALAR_LOOP))

            return loop

        unit_stride = self._unit_stride_condition(nests, dim)
        if unit_stride is None:
            version(False)()
        else:
            self._if_else(unit_stride, version(True), version(False))
        for nest, acc in zip(nests, accumulators):
            self._close_accumulators(nest, outer, acc)

    def _unit_stride_condition(self, nests: Sequence[_Nest], dim: int) -> ir.Value | None:
        """All runtime strides that move with `dim` are 1 (None when there are none)."""
        strides = {
            (a.storage, j)
            for n in nests
            for a in n.accesses
            if isinstance(a.storage, int)
            for j, r in enumerate(a.map.results)
            if _moves(r, dim, self.known)
        }
        condition = None
        for buffer, j in sorted(strides):
            is_one = self.b.icmp_signed("==", self.strides[buffer][j], _const(1))
            condition = is_one if condition is None else self.b.and_(condition, is_one)
        return condition

    # -- accumulators -------------------------------------------------------------------

    def _open_accumulators(
        self, nest: _Nest, outer: list[ir.Value]
    ) -> dict[int, tuple[ir.Value, ir.Value]]:
        """output number -> (register slot, address) for the outputs that stay put while the
        innermost (reduction) loop runs; loaded before it, stored after it."""
        dim = len(outer)
        if nest.block is None or not nest.reductions[dim]:
            return {}
        read = {a.storage for a in nest.inputs}
        slots = {}
        for j, out in enumerate(nest.outputs):
            arg = nest.block.args[len(nest.inputs) + j]
            moves = any(_moves(r, dim, self.known) for r in out.map.results)
            if moves or out.storage in read or not arg.uses:
                continue
            ptr = self._address(out, [*outer, _const(0)], None)
            slot = ir.IRBuilder(self.entry).alloca(out.element.value)
            self.b.store(_load(self.b, ptr, out.element), slot)
            slots[j] = (slot, ptr)
        return slots

    def _close_accumulators(
        self, nest: _Nest, outer: list[ir.Value], slots: dict[int, tuple[ir.Value, ir.Value]]
    ) -> None:
        for j, (slot, ptr) in slots.items():
            _store(
                self.b,
                self.b.load(slot, typ=nest.outputs[j].element.value),
                ptr,
                nest.outputs[j].element,
            )

    # -- one iteration ------------------------------------------------------------------

    def _pointer(
        self, access: _Access, indices: Sequence[tuple[ir.Value, bool] | None]
    ) -> ir.Value:
        """&element at `indices` (index value, stride known to be 1; None: contributes 0)."""
        b = self.b
        if isinstance(access.storage, _Global):
            base, strides = access.storage.var, [_const(s) for s in access.storage.strides]
        else:
            base, strides = self.bases[access.storage], self.strides[access.storage]
        offset = None
        for (index, unit), stride in ((i, s) for i, s in zip(indices, strides) if i is not None):
            term = index if unit else b.mul(index, stride, flags=["nsw"])
            offset = term if offset is None else b.add(offset, term, flags=["nsw"])
        if offset is None:
            return base
        return b.gep(base, [offset], inbounds=True, source_etype=access.element.storage)

    def _address(self, access: _Access, dims: Sequence[ir.Value], unit_dim: int | None) -> ir.Value:
        """&element the map of `access` selects at `dims`; in the unit-stride version
        (`unit_dim` set) the strides that move with it are known to be 1."""
        runtime = isinstance(access.storage, int)
        indices = [
            None
            if not runtime and access.storage.strides[j] == 0
            else (
                _emit_expr(self.b, expr, dims, self.known),
                runtime and unit_dim is not None and _moves(expr, unit_dim, self.known),
            )
            for j, expr in enumerate(access.map.results)
        ]
        return self._pointer(access, indices)

    def _gather(self, nest: _Nest, op: tensor.ExtractOp, indices: list[ir.Value]) -> ir.Value:
        access = nest.gathers[op.tensor]
        return _load(self.b, self._pointer(access, [(i, False) for i in indices]), access.element)

    def _emit_point(
        self,
        nest: _Nest,
        dims: list[ir.Value],
        unit_dim: int | None,
        accumulators: dict[int, tuple[ir.Value, ir.Value]],
    ) -> None:
        b = self.b
        block = nest.block
        used = [True] * len(nest.accesses) if block is None else [bool(a.uses) for a in block.args]
        args: list[ir.Value | None] = [
            _load(b, self._address(a, dims, unit_dim), a.element) if use else None
            for a, use in zip(nest.inputs, used)
        ]
        out_ptrs: list[ir.Value | None] = []
        for j, (out, use) in enumerate(zip(nest.outputs, used[len(nest.inputs) :])):
            if j in accumulators:
                slot = accumulators[j][0]
                args.append(b.load(slot, typ=out.element.value))
                out_ptrs.append(None)
                continue
            ptr = self._address(out, dims, unit_dim)
            args.append(_load(b, ptr, out.element) if use else None)
            out_ptrs.append(ptr)
        if block is None:
            yields = args[: len(nest.inputs)]
        else:
            yields = _emit_body(
                b, block, args, self.scalars, lambda op, idx: self._gather(nest, op, idx)
            )
        for j, (value, out) in enumerate(zip(yields, nest.outputs)):
            if j in accumulators:
                b.store(value, accumulators[j][0])
            else:
                _store(b, value, out_ptrs[j], out.element)

    # -- control flow -------------------------------------------------------------------

    def _loop(
        self,
        lo: ir.Value,
        hi: ir.Value,
        name: str,
        body: Callable[[ir.Value], object],
        hints: Sequence[str] = (),
    ) -> None:
        """for iv in [lo, hi): body(iv); `hints` become the loop's `llvm.loop` metadata."""
        b = self.b
        preheader = b.block
        header = b.append_basic_block(f"{name}.header")
        loop_body = b.append_basic_block(f"{name}.body")
        exit_block = b.append_basic_block(f"{name}.exit")
        b.branch(header)
        b.position_at_end(header)
        iv = b.phi(I64, name=name)
        iv.add_incoming(lo, preheader)
        b.cbranch(b.icmp_signed("<", iv, hi), loop_body, exit_block)
        b.position_at_end(loop_body)
        body(iv)
        iv.add_incoming(b.add(iv, _const(1), flags=["nsw"]), b.block)
        latch = b.branch(header)
        if hints:
            latch.set_metadata("llvm.loop", _loop_id(self.module, hints))
        b.position_at_end(exit_block)

    def _if(self, condition: ir.Value, then: Callable[[], object]) -> None:
        with self.b.if_then(condition):
            then()

    def _if_else(
        self, condition: ir.Value, then: Callable[[], object], otherwise: Callable[[], object]
    ) -> None:
        with self.b.if_else(condition) as (then_block, else_block):
            with then_block:
                then()
            with else_block:
                otherwise()


# --------------------------------------------------------------------------------------
# Module translation


def _translate_function(
    fn: func.FuncOp, module: ir.Module, emitter: type[_PhaseEmitter] = _PhaseEmitter
) -> KernelSpec:
    if not fn.body.blocks:
        raise TranslationError("function declarations (no body) are not supported", fn)
    plan = _Bufferizer(fn, module).plan()
    phases = []
    for k, members in enumerate(_group_phases(plan.nests)):
        name = f"{plan.name}__phase{k}"
        emitter(module, name, members, plan.buffers, plan.scalars).emit()
        phases.append(_phase_spec(name, members))
    entry = ""
    if emitter.serial_entry:
        entry = _serial_entry(module, f"{plan.name}__serial", phases).name
    by_kind = {
        kind: tuple(b for b in plan.buffers if b.kind == kind)
        for kind in ("arg", "result", "scratch")
    }
    return KernelSpec(
        plan.name, entry, by_kind["arg"], by_kind["result"], by_kind["scratch"], tuple(phases)
    )


def _serial_entry(module: ir.Module, name: str, phases: Sequence[PhaseSpec]) -> ir.Function:
    """One call that runs every phase on its whole range (the single-threaded fast path)."""
    fn = ir.Function(module, SERIAL_FN_TYPE, name)
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    for phase in phases:
        b.call(module.get_global(phase.function), [*fn.args, _const(0), _const(phase.extent)])
    b.ret_void()
    return fn


def translate_module(
    module: ModuleOp,
    config: TargetConfig | None = None,
    *,
    phase_emitter: type[_PhaseEmitter] = _PhaseEmitter,
) -> Translation:
    """Translate a lowered `builtin.module` into one LLVM module plus a spec per function.

    `phase_emitter` selects the loop-to-thread mapping of the phases (the CPU one by
    default; `codegen.ptx` passes its GPU kernel emitter)."""
    config = with_data_layout(config or host_config())
    llvm_module = ir.Module(name="qopt")
    llvm_module.triple = config.triple
    llvm_module.data_layout = config.data_layout
    kernels: dict[str, KernelSpec] = {}
    for op in module.ops:
        if not isinstance(op, func.FuncOp):
            raise TranslationError(
                f"unsupported op '{op.name}' at module level (expected func.func)", op
            )
        kernels[op.sym_name.data] = _translate_function(op, llvm_module, phase_emitter)
    return Translation(llvm_module, kernels)


def translate_to_llvm_ir(
    module: ModuleOp, *, optimize: bool = False, config: TargetConfig | None = None
) -> str:
    """The LLVM IR text of `module` (``qopt -t llvm``), optionally after the O3 pipeline."""
    config = config or host_config()
    text = str(translate_module(module, config).llvm_module)
    if not optimize:
        return text
    return str(_optimize_text(text, config))


def _optimize_text(text: str, config: TargetConfig) -> llvm.ModuleRef:
    return optimize_module(parse_llvm_ir(text), config)


def emit_assembly(module: ModuleOp, *, config: TargetConfig | None = None) -> str:
    """Host assembly of the optimized module (``qopt -t asm``)."""
    config = config or host_config()
    llvm_module = _optimize_text(str(translate_module(module, config).llvm_module), config)
    return create_target_machine(config).emit_assembly(llvm_module)


# --------------------------------------------------------------------------------------
# Parsing lowered IR


def lowered_context() -> Context:
    """An xDSL context with the dialects of the lowered IR loaded."""
    ctx = Context()
    for dialect in (
        builtin.Builtin,
        func.Func,
        arith.Arith,
        math.Math,
        linalg.Linalg,
        tensor.Tensor,
    ):
        ctx.load_dialect(dialect)
    return ctx


def parse_lowered(text: str, name: str = "<lowered>") -> ModuleOp:
    """Parse and verify lowered IR text."""
    # qdialect's parser: xDSL's reads a hex float in dense<[0x4B000000]> as an integer.
    module = ExactParser(lowered_context(), text, name).parse_module()
    module.verify()
    return module
