"""The IR-building layer of lower-quant: shapes, indexing maps, generics, parameters.

Element / shape queries and indexing-map builders (each shows the map it makes),
:class:`GenericBuilder` (operands, maps and body of one ``linalg.generic``), :class:`Emitter`
(the function-level ops replacing one quant op, all at its location), and the granularity
dispatch: :func:`param_map` (the general block form of docs/semantics.md section 2) and
:class:`ParamSource` / :class:`OpParams` (a parameter as a tensor operand, a dense constant
table or a scalar ``arith.constant``). No numerics here: those are ``quant_math.py`` and
``dynamic_math.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from xdsl.dialects import arith, tensor
from xdsl.dialects.builtin import (
    AffineMapAttr,
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    FusedLoc,
    IndexType,
    IntegerAttr,
    IntegerType,
    NoneAttr,
    TensorType,
    UnknownLoc,
    f32,
)
from xdsl.dialects.linalg.attrs import IteratorType, IteratorTypeAttr
from xdsl.dialects.linalg.ops import GenericOp, YieldOp
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineExpr, AffineMap

from qopt.ir.diagnostics import Diagnostic, describe_location
from qopt.passes.quant_math import (
    DequantizeParams,
    QuantizeParams,
)
from qopt.passes.scalar_ir import (
    BodyBuilder,
    Storage,
    round_to_f32,
    to_f32,
)
from qopt.qdialect import formats
from qopt.qdialect.attrs import GranularityAttr, PerAxisAttr, PerTensorAttr
from qopt.qdialect.ops import (
    PackingOp,
    PackOp,
    QuantOp,
    RequantizeOp,
)


def shape_of(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


def element_of(value: SSAValue) -> Attribute:
    assert isinstance(value.type, TensorType)
    return value.type.element_type


def tensor_type(shape: Sequence[int], element: Attribute) -> TensorType:
    return TensorType(element, list(shape))


def dim(k: int) -> AffineExpr:
    return AffineExpr.dimension(k)


def identity_map(rank: int) -> AffineMap:
    """``(d0, d1) -> (d0, d1)``."""
    return AffineMap.identity(rank)


def scalar_map(num_dims: int) -> AffineMap:
    """``(d0, d1) -> ()``: a 0-d tensor read at every iteration."""
    return AffineMap(num_dims, 0, ())


def param_map(granularity: GranularityAttr, shape: Sequence[int]) -> AffineMap:
    """Data index -> parameter index (docs/semantics.md section 2), one result per parameter dim:

    per_tensor        (d0, d1) -> ()                      tensor<f32>
    per_axis(1)       (d0, d1) -> (d1)                    tensor<8xf32>
    per_block(1, 32)  (d0, d1) -> (d0, d1 floordiv 32)    tensor<4x2xf32>
    block([2, -1])    (d0, d1) -> (d0 floordiv 2, 0)      tensor<2x1xf32>
    per_token         (d0, d1) -> (d0, 0)                 tensor<4x1xf32>
    """
    rank = len(shape)
    match granularity:
        case PerTensorAttr():
            return scalar_map(rank)
        case PerAxisAttr():
            return AffineMap(rank, 0, (dim(granularity.axis),))
    blocks, pshape = granularity.block_shape(shape), granularity.param_shape(shape)
    raw = granularity.raw_block_shape(rank)
    results: list[AffineExpr] = []
    for k, (block, extent) in enumerate(zip(blocks, pshape)):
        if extent == 1 or raw[k] == -1:  # one block along k (or none, when empty)
            results.append(AffineExpr.constant(0))
        elif block == 1:
            results.append(dim(k))
        else:
            results.append(dim(k) // block)
    return AffineMap(rank, 0, tuple(results))


def reduction_iterators(amap: AffineMap) -> list[str]:
    """Iterators of a generic reducing into a tensor read by ``amap``: ``dK`` is parallel
    exactly when some result of the map is ``dK`` itself (one output element per index).

        (d0, d1) -> (d0, d1 floordiv 32)    ["parallel", "reduction"]
    """
    exact = {r.position for r in amap.results if isinstance(r, AffineDimExpr)}
    return ["parallel" if k in exact else "reduction" for k in range(amap.num_dims)]


def c_strides(shape: Sequence[int]) -> list[int]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return strides[::-1]


def floordiv(e: AffineExpr, c: int) -> AffineExpr:
    """``e floordiv c``, or ``e`` itself when ``c`` is 1."""
    return e if c == 1 else e // c


def mod(e: AffineExpr, c: int) -> AffineExpr:
    """``e mod c``, or 0 when ``c`` is 1."""
    return AffineExpr.constant(0) if c == 1 else e % c


def linearize(dims: Sequence[AffineExpr], shape: Sequence[int]) -> AffineExpr:
    """The C-order flat index: ``(d0, d1)`` over 4x8 -> ``d0 * 8 + d1``."""
    flat = AffineExpr.constant(0)
    for d, stride, n in zip(dims, c_strides(shape), shape):
        if n != 1:
            flat = flat + d * stride
    return flat


def delinearize(flat: AffineExpr, shape: Sequence[int]) -> tuple[AffineExpr, ...]:
    """A flat C-order index back to indices: ``f`` over 4x8 -> ``(f floordiv 8, f mod 8)``.

    The first index takes no ``mod`` (``f`` is in bounds), a unit stride no ``floordiv``.
    """
    results: list[AffineExpr] = []
    for k, (stride, n) in enumerate(zip(c_strides(shape), shape)):
        if n == 1:
            results.append(AffineExpr.constant(0))
            continue
        index = floordiv(flat, stride)
        results.append(index if k == 0 else mod(index, n))
    return tuple(results)


class GenericBuilder:
    """The operands, indexing maps and body of one ``linalg.generic`` being built.

        %r = linalg.generic {indexing_maps = [#map, #map1, #map],
                             iterator_types = ["parallel", "parallel"]}
               ins(%x, %s : tensor<4x8xf32>, tensor<8xf32>) outs(%e : tensor<4x8xi8>) {
        ^bb0(%in: f32, %in_0: f32, %out: i8):
          ...                                  (BodyBuilder ops)
          linalg.yield %q : i8
        } -> tensor<4x8xi8>

    Inputs are deduplicated by (value, map), so a parameter read twice is one operand.
    """

    def __init__(self, iterators: Sequence[str], location: Attribute):
        self.iterators = list(iterators)
        self.location = location
        self.block = Block()
        self.body = BodyBuilder(self.block, location)
        self.inputs: list[tuple[SSAValue, AffineMap]] = []
        self.outputs: list[tuple[SSAValue, AffineMap]] = []

    @property
    def num_dims(self) -> int:
        return len(self.iterators)

    def input(self, value: SSAValue, amap: AffineMap) -> BlockArgument:
        """The body argument of ``value`` read through ``amap`` (added if new)."""
        assert amap.num_dims == self.num_dims, (amap, self.iterators)
        for index, known in enumerate(self.inputs):
            if known[0] is value and known[1] == amap:
                return self.block.args[index]
        self.inputs.append((value, amap))
        return self.block.insert_arg(element_of(value), len(self.inputs) - 1, self.location)

    def output(self, init: SSAValue, amap: AffineMap) -> BlockArgument:
        """An ``outs`` operand; its body argument is the accumulator of a reduction."""
        assert amap.num_dims == self.num_dims
        self.outputs.append((init, amap))
        return self.block.insert_arg(element_of(init), len(self.block.args), self.location)

    def build(self, yielded: Sequence[SSAValue]) -> GenericOp:
        """Yield ``yielded``, drop body ops nothing uses, make the op (one result each
        output; xDSL prints several results in a form it cannot parse back, so the
        lowering never makes more than one)."""
        yield_op = self.body.emit(YieldOp(*yielded))
        for op in reversed(list(self.block.ops)):
            if op is not yield_op and not any(r.uses for r in op.results):
                self.block.erase_op(op)
        assert len(self.outputs) == 1
        operands = self.inputs + self.outputs
        return GenericOp(
            [v for v, _ in self.inputs],
            [v for v, _ in self.outputs],
            Region(self.block),
            [AffineMapAttr(m) for _, m in operands],
            [IteratorTypeAttr(IteratorType(t)) for t in self.iterators],
            [v.type for v, _ in self.outputs],
        )


Sizes = SSAValue | Sequence[SSAValue] | None
"""The sizes of a new tensor: None (static), a tensor of the same shape, or one ``index``
value per dimension (:meth:`Emitter.param_sizes`)."""


def is_dynamic(shape: Sequence[int]) -> bool:
    return any(n < 0 for n in shape)


@dataclass
class Emitter:
    """The function-level ops that replace one quant op, in order, all at its location.

    Tensors with dynamic (``?``) dimensions get their sizes from ``tensor.dim`` of the op's
    operands and ``index`` arithmetic, made once per emitter (docs/design.md section 1)."""

    location: Attribute
    ops: list[Operation] = field(default_factory=list[Operation])
    _indices: dict[object, SSAValue] = field(default_factory=dict[object, SSAValue])

    def add(self, op: Operation) -> Operation:
        op.location = self.location
        self.ops.append(op)
        return op

    def index(self, n: int) -> SSAValue:
        """``%c4 = arith.constant 4 : index``."""
        if n not in self._indices:
            op = self.add(arith.ConstantOp(IntegerAttr(n, IndexType())))
            op.results[0].name_hint = f"c{n}"
            self._indices[n] = op.results[0]
        return self._indices[n]

    def dim(self, value: SSAValue, k: int) -> SSAValue:
        """Extent ``k`` of ``value``: ``%d = tensor.dim %x, %c1`` (a constant if static).

        The extent of a quant op's result is taken from its input (the op may be lowered
        away with this one, fused): every size goes back to the tensors the quant ops
        start from, usually the function's arguments."""
        n = shape_of(value)[k]
        if n >= 0:
            return self.index(n)
        key = (value, k)
        if key not in self._indices:
            self._indices[key] = self._dynamic_dim(value, k)
        return self._indices[key]

    def _dynamic_dim(self, value: SSAValue, k: int) -> SSAValue:
        owner = value.owner
        last = k == len(shape_of(value)) - 1
        if isinstance(owner, PackingOp) and len(shape_of(owner.input)) == len(shape_of(value)):
            per = 8 // formats.bit_width(
                element_of(owner.input if isinstance(owner, PackOp) else value)
            )
            inner = self.dim(owner.input, k)
            if not last:
                return inner
            kind = arith.CeilDivUIOp if isinstance(owner, PackOp) else arith.MuliOp
            return self._index_op(kind, inner, per)
        if (
            isinstance(owner, QuantOp)
            and value is owner.results[0]
            and not isinstance(owner, PackingOp)
        ):
            return self.dim(owner.operands[0], k)
        op = self.add(tensor.DimOp(value, self.index(k)))
        op.results[0].name_hint = "dim"
        return op.results[0]

    def _index_op(self, kind: type[Operation], a: SSAValue, n: int) -> SSAValue:
        key = (kind, a, n)
        if key not in self._indices:
            self._indices[key] = self.add(kind(a, self.index(n))).results[0]  # type: ignore[call-arg]
        return self._indices[key]

    def param_sizes(self, x: SSAValue, granularity: GranularityAttr) -> list[SSAValue]:
        """The extents of the parameter tensor of data ``x`` (docs/semantics.md section 2):
        ``ceildiv(n, B)`` per block of ``B``, ``n`` per block of 1, and for a block of the
        whole extent ``min(n, 1)`` (one block, none when the dimension is empty)."""
        rank = len(shape_of(x))
        if isinstance(granularity, PerTensorAttr):
            return []
        if isinstance(granularity, PerAxisAttr):
            return [self.dim(x, granularity.axis)]
        sizes = []
        for k, block in enumerate(granularity.raw_block_shape(rank)):
            n = shape_of(x)[k]
            if n >= 0:
                sizes.append(self.index(granularity.param_shape(shape_of(x))[k]))
            elif block == 1:
                sizes.append(self.dim(x, k))
            elif block == -1:
                sizes.append(self._index_op(arith.MinUIOp, self.dim(x, k), 1))
            else:
                sizes.append(self._index_op(arith.CeilDivUIOp, self.dim(x, k), block))
        return sizes

    def empty(self, t: Attribute, sizes: Sizes = None) -> SSAValue:
        """``%e = tensor.empty() : tensor<4x8xi8>``; with dynamic dimensions
        ``tensor.empty(%d0) : tensor<?x8xi8>``, the sizes taken from ``sizes``."""
        assert isinstance(t, TensorType)
        dynamic = []
        for k, n in enumerate(t.get_shape()):
            if n >= 0:
                continue
            assert sizes is not None, f"no sizes for {t}"
            if isinstance(sizes, SSAValue):
                dynamic.append(self.dim(sizes, k))
            else:
                dynamic.append(sizes[k])
        return self.add(tensor.EmptyOp(dynamic, t)).results[0]

    def fill(self, t: TensorType, value: int | float, sizes: Sizes) -> SSAValue:
        """A tensor of ``value``: the splat ``arith.constant dense<value>`` when static,
        else a generic writing it into ``tensor.empty`` (a dense constant has a static
        shape)."""
        if not is_dynamic(t.get_shape()):
            return self.dense(t, [value])  # type: ignore[list-item]
        rank = len(t.get_shape())
        g = self.parallel(rank)
        element = t.element_type
        g.output(self.empty(t, sizes), identity_map(rank))
        if isinstance(element, IntegerType):
            constant = g.body.value(arith.ConstantOp(IntegerAttr(int(value), element)))
        else:
            constant = g.body.f32(float(value))
        return self.finish(g, [constant])[0]

    def dense(self, t: TensorType, values: Sequence[int] | Sequence[float]) -> SSAValue:
        """``%cst = arith.constant dense<[...]> : tensor<8xf32>`` (one value: a splat)."""
        attr = DenseIntOrFPElementsAttr.from_list(t, values)  # pyright: ignore[reportArgumentType]
        return self.add(arith.ConstantOp(attr)).results[0]

    def generic(self, iterators: Sequence[str]) -> GenericBuilder:
        return GenericBuilder(iterators, self.location)

    def parallel(self, rank: int) -> GenericBuilder:
        return self.generic(["parallel"] * rank)

    def finish(self, g: GenericBuilder, yielded: Sequence[SSAValue]) -> list[SSAValue]:
        """Close the body with ``linalg.yield`` and add the generic; its results."""
        return list(self.add(g.build(yielded)).results)


@dataclass(frozen=True)
class ParamSource:
    """One quantization parameter: a scalar constant, or a tensor read through a map.

    Scalars become ``arith.constant`` in the body; a dense constant becomes an f32 table
    ``arith.constant dense<...>`` at function level read like an operand.
    """

    scalar: float | None = None
    tensor: SSAValue | None = None
    map: AffineMap | None = None

    def read(self, g: GenericBuilder, lane: AffineMap | None = None) -> SSAValue:
        """The parameter as an f32 in ``g``'s body; ``lane`` maps ``g``'s iteration space
        into the data's (the pack lanes), composed with the parameter's map."""
        if self.scalar is not None:
            return g.body.f32(self.scalar)
        assert self.tensor is not None and self.map is not None
        amap = self.map if lane is None else self.map.compose(lane)
        if not amap.results:
            amap = scalar_map(g.num_dims)
        return to_f32(g.body, g.input(self.tensor, amap))


def _const_values(const: Attribute) -> list[float]:
    if isinstance(const, FloatAttr | IntegerAttr):
        return [float(const.value.data)]
    assert isinstance(const, DenseIntOrFPElementsAttr)
    return [float(v) for v in const.get_values()]


def param_source(
    e: Emitter,
    op: QuantOp,
    name: str,
    granularity: GranularityAttr,
    shape: Sequence[int],
) -> ParamSource | None:
    """Where the parameter ``name`` (operand or ``name_const``) of ``op`` comes from."""
    operand = getattr(op, name, None)
    if isinstance(operand, SSAValue):
        return ParamSource(tensor=operand, map=param_map(granularity, shape))
    const = op.properties.get(f"{name}_const")
    if const is None:
        return None
    values = [round_to_f32(v) for v in _const_values(const)]
    if len(values) == 1 or isinstance(granularity, PerTensorAttr):
        return ParamSource(scalar=values[0])
    pshape = granularity.param_shape(shape)
    if is_dynamic(pshape):  # the verifier checked what it could; codegen checks the rest
        assert isinstance(const, DenseIntOrFPElementsAttr)
        pshape = tuple(const.get_shape() or ())
    table = e.dense(tensor_type(pshape, f32), values)
    return ParamSource(tensor=table, map=param_map(granularity, shape))


@dataclass(frozen=True)
class OpParams:
    """The parameters of one quantize / dequantize step (a prefix of requantize)."""

    scale: ParamSource
    zero_point: ParamSource | None = None
    minval: ParamSource | None = None
    double_quant: ParamSource | None = None

    @staticmethod
    def of(e: Emitter, op: QuantOp, shape: Sequence[int], prefix: str = "") -> OpParams:
        granularity = op.granularity_of(f"{prefix}granularity")
        scale = param_source(e, op, f"{prefix}scale", granularity, shape)
        assert scale is not None, "the verifier requires a scale"
        return OpParams(
            scale,
            param_source(e, op, f"{prefix}zero_point", granularity, shape),
            param_source(e, op, f"{prefix}minval", granularity, shape),
            param_source(e, op, f"{prefix}double_quant", PerTensorAttr(), shape),
        )

    def quantize(self, g: GenericBuilder, lane: AffineMap | None = None) -> QuantizeParams:
        return QuantizeParams(
            self.scale.read(g, lane),
            self.zero_point.read(g, lane) if self.zero_point else None,
            self.minval.read(g, lane) if self.minval else None,
        )

    def dequantize(self, g: GenericBuilder, lane: AffineMap | None = None) -> DequantizeParams:
        return DequantizeParams(
            self.scale.read(g, lane),
            self.zero_point.read(g, lane) if self.zero_point else None,
            self.minval.read(g, lane) if self.minval else None,
            self.double_quant.read(g, lane) if self.double_quant else None,
        )


def fail(op: Operation, message: str) -> Diagnostic:
    """A diagnostic at ``op``'s location (a lowering that cannot be done)."""
    return Diagnostic(describe_location(op.location), message)


def fused_loc(*ops: Operation) -> Attribute:
    """The location of ops merged into one: a ``FusedLoc`` of their known locations."""
    locations = []
    for op in ops:
        if not isinstance(op.location, UnknownLoc) and op.location not in locations:
            locations.append(op.location)
    if len(locations) == 1:
        return locations[0]
    if not locations:
        return UnknownLoc()
    return FusedLoc(ArrayAttr(locations), NoneAttr())


def storage_of(op: QuantOp, t: Attribute, bounds_of_input: bool = False) -> Storage:
    if bounds_of_input and isinstance(op, RequantizeOp):
        return Storage.of(t, op.storage_bounds_in(t))
    return Storage.of(t, op.storage_bounds(t))
