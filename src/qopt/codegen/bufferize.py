"""Bufferization: the buffers and loop nests of one `func.func` (design.md section 2, step 1).

Trivial, destination passing: function arguments, results and scratch tensors become
numbered buffers; a `linalg.generic` writes into the buffer of its `outs` operand. A
`tensor.empty` destination gets a fresh buffer (the function's result buffer when the value
it turns into is returned), an `outs` value that is still needed afterwards or is not
writable (argument, constant) is first copied into a fresh buffer, and dense
`arith.constant` tensors become `ConstantBuffer`s (LLVM globals once emitted).

Dynamic (`?`) dimensions have symbolic extents (`extents.Extent`): an argument's are its
own `Sym`s, a `tensor.empty`'s come from its size operands, computed at function level by
`tensor.dim` and `arith` ops on `index` (constant, addi, subi, muli, divui, floordivsi,
ceildivui, ceildivsi, minui, maxui, minsi, maxsi). Whatever the loop extents leave open
is collected as `ShapeCheck`s that the runtime evaluates per argument shape.

Everything here is plain data: the result (`FunctionPlan`) holds no LLVM object, so the
schedule built on it can be checked without creating an LLVM module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from xdsl.dialects import arith, func, tensor
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    TensorType,
)
from xdsl.dialects.linalg.attrs import IteratorType
from xdsl.dialects.linalg.ops import GenericOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineMap

from qopt.codegen.abi import BufferSpec, c_strides
from qopt.codegen.affine import expr_range, is_dim, unsupported_expr
from qopt.codegen.errors import TranslationError
from qopt.codegen.extents import Extent, ShapeCheck, Sym, is_static, product
from qopt.codegen.extents import op as extent_op
from qopt.codegen.scalar_ops import check_body
from qopt.codegen.types import ElementType, constant_bits, element_type, tensor_type
from qopt.ir.diagnostics import locate_op

__all__ = [
    "Access",
    "Bufferizer",
    "ConstantBuffer",
    "FunctionPlan",
    "Nest",
    "Storage",
]


@dataclass(frozen=True, eq=False)
class ConstantBuffer:
    """A dense constant tensor: its bytes (one element only for a splat) and compile-time
    strides (all 0 for a splat). The loop emitter makes it an internal LLVM global."""

    data: bytes
    align: int
    strides: tuple[int, ...]


Storage = int | ConstantBuffer  # a buffer number, or a constant


@dataclass(frozen=True)
class Access:
    """One operand of a loop nest: where its elements live and how the loop indexes them."""

    storage: Storage
    map: AffineMap
    element: ElementType
    shape: tuple[Extent, ...]

    def row_local(self) -> bool:
        """Index 0 is exactly `d0` and `d0` appears nowhere else."""
        results = self.map.results
        return (
            bool(results)
            and is_dim(results[0], 0)
            and all(0 not in r.used_dims() for r in results[1:])
        )


@dataclass(frozen=True)
class Nest:
    """A `linalg.generic` (or a copy the bufferization needs) as a loop nest on buffers."""

    origin: Operation
    extents: tuple[Extent, ...]
    reductions: tuple[bool, ...]  # per dimension: is it a reduction dimension
    inputs: tuple[Access, ...]
    outputs: tuple[Access, ...]
    block: Block | None  # None: a copy, outputs[i] = inputs[i]
    # tensors read by `tensor.extract` in the body, at indices computed there (a gather)
    gathers: Mapping[SSAValue, Access] = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return len(self.extents)

    @property
    def accesses(self) -> tuple[Access, ...]:
        return self.inputs + self.outputs

    @property
    def kind(self) -> str:
        return "copy" if self.block is None else self.origin.name

    @property
    def work(self) -> Extent:
        return product(self.extents)

    def splittable(self) -> bool:
        """Chunks of dimension 0 write disjoint elements, so they may run concurrently."""
        return (
            self.rank >= 1
            and not self.reductions[0]
            and all(any(is_dim(r, 0) for r in o.map.results) for o in self.outputs)
        )


def _identity_copy(origin: Operation, src: Access, dst: Access) -> Nest:
    rank = len(dst.shape)
    identity = AffineMap.identity(rank)
    return Nest(
        origin,
        dst.shape,
        (False,) * rank,
        (Access(src.storage, identity, src.element, src.shape),),
        (Access(dst.storage, identity, dst.element, dst.shape),),
        None,
    )


@dataclass
class FunctionPlan:
    """What `Bufferizer.plan` makes of one function: plain data, no LLVM."""

    name: str
    buffers: list[BufferSpec]
    nests: list[Nest]
    scalars: dict[SSAValue, arith.ConstantOp]  # function-level scalar constants
    constants: list[ConstantBuffer]  # dense constant tensors, in order of definition
    checks: list[ShapeCheck] = field(default_factory=list[ShapeCheck])


# function-level integer ops on `index` values (extents) -> their `extents.ExtentOp` kind
_INDEX_OPS: dict[type[Operation], str] = {
    arith.AddiOp: "add",
    arith.SubiOp: "sub",
    arith.MuliOp: "mul",
    arith.DivUIOp: "floordiv",
    arith.FloorDivSIOp: "floordiv",
    arith.CeilDivUIOp: "ceildiv",
    arith.CeilDivSIOp: "ceildiv",
    arith.MinUIOp: "min",
    arith.MaxUIOp: "max",
    arith.MinSIOp: "min",
    arith.MaxSIOp: "max",
}


class Bufferizer:
    """Walks one `func.func` and turns it into buffers and loop nests (design.md section 2)."""

    def __init__(self, fn: func.FuncOp) -> None:
        self.fn = fn
        self.name = fn.sym_name.data
        self.ops = list(fn.body.block.ops)
        self.buffers: list[BufferSpec] = []
        self.storage: dict[SSAValue, Storage] = {}
        self.nests: list[Nest] = []
        self.scalars: dict[SSAValue, arith.ConstantOp] = {}
        self.constants: list[ConstantBuffer] = []
        self.empties: set[SSAValue] = set()
        self.shapes: dict[SSAValue, tuple[Extent, ...]] = {}  # of every tensor value
        self.indices: dict[SSAValue, Extent] = {}  # function-level `index` values
        self.checks: list[ShapeCheck] = []
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

    def _add_buffer(
        self, name: str, kind: str, type_: TensorType, op: Operation, shape: tuple[Extent, ...]
    ) -> int:
        element = element_type(type_.get_element_type(), op)
        self.buffers.append(BufferSpec(name, kind, shape, element.dtype, element.name))  # type: ignore[arg-type]
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
            tensor_type(value.type, op, "a scratch tensor"),
            op,
            self._shape(value, op),
        )

    def _shape(self, value: SSAValue, op: Operation) -> tuple[Extent, ...]:
        if value not in self.shapes:
            raise TranslationError(f"operand {value.name_hint or ''} is not a tensor buffer", op)
        return self.shapes[value]

    def _read_storage(self, value: SSAValue, op: Operation) -> Storage:
        if value in self.empties:  # reading an empty tensor: any contents will do
            self.storage[value] = self._destination(value, op)
            self.empties.discard(value)
        if value not in self.storage:
            raise TranslationError(f"operand {value.name_hint or ''} is not a tensor buffer", op)
        return self.storage[value]

    def _access(self, value: SSAValue, storage: Storage, amap: AffineMap, op: Operation) -> Access:
        type_ = tensor_type(value.type, op, "a linalg.generic operand")
        return Access(
            storage, amap, element_type(type_.get_element_type(), op), self._shape(value, op)
        )

    def _value_access(self, value: SSAValue, op: Operation) -> Access:
        rank = len(tensor_type(value.type, op, "a tensor").get_shape())
        return self._access(value, self._read_storage(value, op), AffineMap.identity(rank), op)

    # -- the walk -----------------------------------------------------------------------

    def plan(self) -> FunctionPlan:
        fn = self.fn
        for k, (arg, type_) in enumerate(zip(fn.args, fn.function_type.inputs.data)):
            arg_type = tensor_type(type_, fn, f"argument {k}")
            shape = tuple(n if n >= 0 else Sym(k, j) for j, n in enumerate(arg_type.get_shape()))
            self.shapes[arg] = shape
            name = arg.name_hint or f"arg{k}"
            self.storage[arg] = self._add_buffer(name, "arg", arg_type, fn, shape)
        results = self._result_shapes()
        for k, (type_, shape) in enumerate(zip(fn.function_type.outputs.data, results)):
            type_ = tensor_type(type_, fn, f"result {k}")
            shape = self._declared_shape(k, type_, shape)
            self._add_buffer(f"result{k}", "result", type_, fn, shape)
            self.unclaimed_results.add(k)
        for index, op in enumerate(self.ops):
            self._plan_op(op, index)
        return FunctionPlan(
            self.name, self.buffers, self.nests, self.scalars, self.constants, self.checks
        )

    def _declared_shape(
        self, k: int, type_: TensorType, shape: tuple[Extent, ...]
    ) -> tuple[Extent, ...]:
        """Result `k`'s shape: the returned value's, where the function type says `?`;
        a static size in the type is checked against it at run time."""
        declared = []
        for j, (n, extent) in enumerate(zip(type_.get_shape(), shape)):
            if n >= 0 and extent != n:
                what = f"{locate_op(self.fn)}: result {k} dim {j}"
                self.checks.append(ShapeCheck("equal", extent, n, what))
            declared.append(n if n >= 0 else extent)
        return tuple(declared) if len(shape) == len(declared) else tuple(type_.get_shape())

    def _result_shapes(self) -> list[tuple[Extent, ...]]:
        """The shape of each returned value, from a first walk of the function-level
        shape computations (a result buffer exists before the op that writes it)."""
        probe = Bufferizer.__new__(Bufferizer)
        probe.shapes, probe.indices = dict(self.shapes), {}
        for op in self.ops:
            probe._shape_op(op)
        ret = self.ops[-1]
        return [probe.shapes.get(v, ()) for v in ret.operands]

    def _shape_op(self, op: Operation) -> None:
        """Record the shapes / index values `op` defines at function level."""
        match op:
            case tensor.EmptyOp():
                self.shapes[op.tensor] = self._empty_shape(op)
            case tensor.DimOp():
                self._plan_dim(op)
            case arith.ConstantOp() if isinstance(op.value, IntegerAttr) and isinstance(
                op.result.type, IndexType
            ):
                self.indices[op.result] = op.value.value.data
            case arith.ConstantOp() if isinstance(op.result.type, TensorType):
                self.shapes[op.result] = tuple(op.result.type.get_shape())
            case GenericOp():
                for out, result in zip(op.outputs, op.results):
                    if out in self.shapes:
                        self.shapes[result] = self.shapes[out]
            case _ if type(op) in _INDEX_OPS:
                lhs, rhs = (self._index(v, op) for v in op.operands)
                self.indices[op.results[0]] = extent_op(_INDEX_OPS[type(op)], lhs, rhs)

    def _index(self, value: SSAValue, op: Operation) -> Extent:
        if value not in self.indices:
            raise TranslationError(
                "a tensor size must be computed at function level from tensor.dim and "
                "index constants",
                op,
            )
        return self.indices[value]

    def _empty_shape(self, op: tensor.EmptyOp) -> tuple[Extent, ...]:
        type_ = tensor_type(op.tensor.type, op, "tensor.empty")
        sizes = iter(op.dynamic_sizes)
        shape = []
        for n in type_.get_shape():
            if n >= 0:
                shape.append(n)
                continue
            size = next(sizes, None)
            if size is None:
                raise TranslationError("tensor.empty needs one size per dynamic dimension", op)
            shape.append(self._index(size, op))
        return tuple(shape)

    def _plan_dim(self, op: tensor.DimOp) -> None:
        index = self._index(op.index, op)
        shape = self.shapes.get(op.source)
        if not isinstance(index, int) or shape is None or not 0 <= index < len(shape):
            raise TranslationError(
                "tensor.dim needs a tensor and a constant dimension in its rank", op
            )
        self.indices[op.result] = shape[index]

    def _plan_op(self, op: Operation, index: int) -> None:
        match op:
            case tensor.EmptyOp():
                self._shape_op(op)
                self.empties.add(op.tensor)
            case arith.ConstantOp():
                self._shape_op(op)
                self._plan_constant(op)
            case GenericOp():
                self._shape_op(op)
                self._plan_generic(op, index)
            case func.ReturnOp():
                self._plan_return(op)
            case tensor.DimOp():
                self._shape_op(op)
            case _ if type(op) in _INDEX_OPS:
                self._shape_op(op)
            case _:
                raise TranslationError(
                    f"unsupported op '{op.name}' at function level (expected tensor.empty, "
                    "tensor.dim, arith.constant, index arithmetic, linalg.generic, "
                    "func.return)",
                    op,
                )

    def _plan_constant(self, op: arith.ConstantOp) -> None:
        if isinstance(op.value, IntegerAttr | FloatAttr):
            element_type(op.result.type, op)
            self.scalars[op.result] = op
            return
        if not isinstance(op.value, DenseIntOrFPElementsAttr):
            raise TranslationError(f"unsupported constant attribute {op.value}", op)
        type_ = tensor_type(op.result.type, op, "a dense constant", static=True)
        element = element_type(type_.get_element_type(), op)
        constant = _dense_constant(op.value, element, type_)
        self.constants.append(constant)
        self.storage[op.result] = constant

    def _plan_return(self, op: func.ReturnOp) -> None:
        nargs = len(self.fn.args)
        for k, value in enumerate(op.arguments):
            if self.storage.get(value) == nargs + k:
                continue
            dst = Access(
                nargs + k,
                AffineMap.identity(len(self.buffers[nargs + k].shape)),
                element_type(tensor_type(value.type, op, "a result").get_element_type(), op),
                self.buffers[nargs + k].shape,
            )
            self.nests.append(_identity_copy(op, self._value_access(value, op), dst))

    def _plan_generic(self, op: GenericOp, index: int) -> None:
        maps = [m.data for m in op.indexing_maps.data]
        reductions = tuple(it.data == IteratorType.REDUCTION for it in op.iterator_types.data)
        operands = list(op.inputs) + list(op.outputs)
        _check_maps(op, maps, operands, len(reductions))
        shapes = [self._shape(v, op) for v in operands]
        extents = _loop_extents(op, maps, shapes, len(reductions))
        self.checks += _check_bounds(op, maps, shapes, extents)

        block = op.body.block
        check_body(block, self.scalars, set(self.storage) | self.empties)
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
        self.nests.append(Nest(op, extents, reductions, inputs, tuple(outputs), block, gathers))

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
        type_ = tensor_type(value.type, op, f"linalg.generic operand {k}")
        if amap.num_dims != rank or amap.num_symbols:
            raise TranslationError(
                f"indexing map {k} {amap} must have {rank} dims and no symbols", op
            )
        if len(amap.results) != len(type_.get_shape()):
            raise TranslationError(f"indexing map {k} {amap} does not match {type_}", op)
        for expr in amap.results:
            if (reason := unsupported_expr(expr)) is not None:
                raise TranslationError(f"indexing map {k} {amap}: {reason}", op)
    block = op.regions[0].block
    if len(block.args) != len(operands):
        raise TranslationError("linalg.generic body needs one argument per operand", op)


def _loop_extents(
    op: Operation, maps: list[AffineMap], shapes: list[tuple[Extent, ...]], rank: int
) -> tuple[Extent, ...]:
    """Extent of each dK: the first operand dimension whose map result is exactly dK
    (a static one if there is one)."""
    extents = []
    for k in range(rank):
        found = [
            shape[j]
            for amap, shape in zip(maps, shapes)
            for j, expr in enumerate(amap.results)
            if is_dim(expr, k)
        ]
        if not found:
            raise TranslationError(f"no operand dimension is indexed by exactly d{k}", op)
        extents.append(next((n for n in found if is_static(n)), found[0]))
    return tuple(extents)


def _check_bounds(
    op: Operation,
    maps: list[AffineMap],
    shapes: list[tuple[Extent, ...]],
    extents: Sequence[Extent],
) -> list[ShapeCheck]:
    """Every access in bounds over the loop box: proved here when the extents involved
    are static, else the `ShapeCheck`s a call must pass (with, for dynamic extents, that
    every operand dimension indexed by exactly dK has dK's extent)."""
    checks: list[ShapeCheck] = []
    static_box = all(is_static(n) for n in extents)
    if static_box and 0 in extents:
        return checks
    where = f"{locate_op(op)}: {op.name}"
    for k, (amap, shape) in enumerate(zip(maps, shapes)):
        for j, (expr, size) in enumerate(zip(amap.results, shape)):
            what = f"{where} operand {k} dim {j}"
            if isinstance(expr, AffineDimExpr):
                extent = extents[expr.position]
                if not (is_static(extent) and is_static(size)):
                    if extent != size:
                        checks.append(ShapeCheck("equal", size, extent, what))
                    continue
            if not (static_box and is_static(size)):
                checks.append(
                    ShapeCheck("bounds", 0, size, what, index=expr, extents=tuple(extents))
                )
                continue
            lo, hi = expr_range(expr, extents)  # type: ignore[arg-type]
            if lo < 0 or hi >= size:  # type: ignore[operator]
                raise TranslationError(
                    f"operand {k} index {j} ({expr}) ranges over [{lo}, {hi}] "
                    f"outside [0, {size}) for loop extents {tuple(extents)}",
                    op,
                )
    return checks


def _dense_constant(
    attr: DenseIntOrFPElementsAttr, element: ElementType, type_: TensorType
) -> ConstantBuffer:
    shape: tuple[int, ...] = tuple(type_.get_shape())
    data = constant_bits(attr.get_values(), element).tobytes()
    size = element.dtype.itemsize
    splat = len(data) > size and data == data[:size] * (len(data) // size)
    if splat:
        data = data[:size]
    strides = (0,) * len(shape) if splat else c_strides(shape)
    return ConstantBuffer(data, max(size, 16), strides)
