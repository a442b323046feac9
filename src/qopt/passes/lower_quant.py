"""lower-quant: every quant op to ``linalg.generic`` on tensors with scalar arith/math bodies.

The output is exactly the op set of docs/design.md section 1 (func, tensor.empty,
arith.constant, linalg.generic/yield and the scalar arith/math ops, plus ``tensor.extract``
/ ``arith.index_cast`` in the gather of a ``lut`` requantize), which codegen compiles; no
quant op survives. Layered like MLIR's ``LowerQuantOps.cpp``:

1. helpers (this file): element/shape queries, indexing-map builders (each shows the map
   it makes), :class:`GenericBuilder` (operands, maps and body of one ``linalg.generic``)
   and :class:`Emitter` (the function-level ops replacing one quant op, all at its
   location);
2. the math: ``quant_math.py`` (``quantize_value``, ``dequantize_value``, rounding,
   clamping, scale computations) - the only place numerics live;
3. granularity dispatch: :func:`param_map` (the general block form of SPEC section 2) and
   :class:`ParamSource` (a parameter as a tensor operand, a dense constant table or a
   scalar ``arith.constant``);
4. one lowering function and one ``RewritePattern`` per op, choosing among the forms
   ``choose-quant-lowering`` annotated (``lowering = "fused" | "composite" | "lut"``);
5. :class:`LowerQuantPass`, which first annotates unannotated ops with the default choice.

Pack / unpack (SPEC section 1: C order, first element in the low bits, odd tail padded with
0) are generics over the *bytes* resp. the *codes*, flattening with affine maps only
(``floordiv`` / ``mod`` by constants), so any shape on either side works:

* pack: one iteration per output byte, the ``8 / bits`` lanes unrolled; lane ``l`` of byte
  ``b`` reads code ``b * per + l`` delinearized over the codes' shape (when a row holds
  whole bytes: ``(b floordiv (n / per), (b mod (n / per)) * per + l)``). Where the last
  byte is partial, the lane index is taken ``mod count`` (an in-bounds read) and a
  constant mask table ``[2^bits - 1, 0, ..]`` indexed by ``(b * per + l) floordiv count``
  zeroes the padding;
* unpack, the mirror image: one iteration per code; it reads byte ``f floordiv per`` (``f``
  the flat code index; ``d0 * n / per + d1 floordiv per`` for whole-byte rows) and the
  shift ``bits * (f mod per)`` from a constant table, then ``trunci((byte >> shift) : i32)``
  to the code type.
``pack(quantize(x))`` lowers to one generic (the quantize inlined per lane) and
``dequantize(unpack(p))`` to one generic (unpack inlined) when the intermediate has no other
user and the consumer's lowering is ``fused``.

Dynamic quantize / fake quantize lower to a statistics ``reduction`` generic (amax as the
max of ``bits(|x|)`` as i32, or xmin/xmax with ``minimumf`` / ``maximumf``; NaN propagates
into the scale like ``torch.amax``), a parameter generic over the scale's shape and a data
generic. ``fused`` data generics read the statistics and recompute the block's parameters
inline (no parameter tensor is read back); ``composite`` ones read the stored scale / zero
point. Both call the same math (``dynamic_params``), and every stored scale is exactly the
f32 value the fused form divides by, so the two give the same bits. For blocks that do not
span dimension 0 all generics are parallel in d0 with d0 only in their first map result,
so codegen runs them as one phase, row by row (design.md section 2); blocks spanning rows
(``block([128, 128])``) need the whole statistic first: separate phases.
"""

from __future__ import annotations

import math as pymath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xdsl.context import Context
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
    ModuleOp,
    NoneAttr,
    StringAttr,
    TensorType,
    UnknownLoc,
    f32,
    i32,
)
from xdsl.dialects.linalg.attrs import IteratorType, IteratorTypeAttr
from xdsl.dialects.linalg.ops import GenericOp, YieldOp
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineExpr, AffineMap
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from qopt.ir.diagnostics import Diagnostic, describe_location
from qopt.passes.quant_math import (
    BodyBuilder,
    DequantizeParams,
    DynamicForm,
    DynamicParams,
    FakeForm,
    FakeParams,
    QuantizeParams,
    Stats,
    Storage,
    amax_step,
    dequantize_f32,
    dequantize_value,
    dynamic_data,
    dynamic_params,
    fake_params,
    fake_value,
    from_f32,
    int_of_storage,
    is_unsigned,
    nan_sign,
    quantize_float_value,
    quantize_int_value,
    quantize_integral,
    quantize_value,
    round_to_f32,
    storage_of_int,
    to_f32,
    to_storage_int,
)
from qopt.qdialect import formats
from qopt.qdialect.attrs import GranularityAttr, PerAxisAttr, PerTensorAttr
from qopt.qdialect.ops import (
    QUANT_OPS,
    DequantizeOp,
    DynamicQuantizeOp,
    FakeQuantizeOp,
    PackOp,
    QuantizeOp,
    QuantOp,
    RequantizeOp,
    UnpackOp,
)

LOWERING_ATTR = "lowering"
"""The discardable attribute ``choose-quant-lowering`` sets on each quant op."""

LOWERINGS = ("fused", "composite", "lut")

# ---------------------------------------------------------------------------------------
# 1. helpers: types, shapes, indexing maps, builders
# ---------------------------------------------------------------------------------------


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
    """Data index -> parameter index (SPEC section 2), one result per parameter dim:

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
    results: list[AffineExpr] = []
    for k, (block, extent) in enumerate(zip(blocks, pshape)):
        if extent == 1:
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


@dataclass
class Emitter:
    """The function-level ops that replace one quant op, in order, all at its location."""

    location: Attribute
    ops: list[Operation] = field(default_factory=list[Operation])

    def add(self, op: Operation) -> Operation:
        op.location = self.location
        self.ops.append(op)
        return op

    def empty(self, t: Attribute) -> SSAValue:
        """``%e = tensor.empty() : tensor<4x8xi8>``."""
        return self.add(tensor.EmptyOp([], t)).results[0]

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


# ---------------------------------------------------------------------------------------
# 3. granularity dispatch: where a generic reads each parameter
# ---------------------------------------------------------------------------------------


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


def lowering_of(op: Operation) -> str:
    """The op's ``lowering`` annotation, or choose-quant-lowering's ``auto`` choice."""
    attr = op.attributes.get(LOWERING_ATTR)
    if isinstance(attr, StringAttr):
        return attr.data
    from qopt.passes.choose_quant_lowering import ChooseQuantLoweringPass

    return ChooseQuantLoweringPass().choose(op)


def _fail(op: Operation, message: str) -> Diagnostic:
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


# ---------------------------------------------------------------------------------------
# 4. the lowerings, one per op, and their patterns
# ---------------------------------------------------------------------------------------


def storage_of(op: QuantOp, t: Attribute, bounds_of_input: bool = False) -> Storage:
    if bounds_of_input and isinstance(op, RequantizeOp):
        return Storage.of(t, op.storage_bounds_in(t))
    return Storage.of(t, op.storage_bounds(t))


# --- quantize -------------------------------------------------------------------------


def lower_quantize(op: QuantizeOp, e: Emitter) -> SSAValue:
    """One parallel generic: ``quantize_value(extf(x), scale, zp)`` per element."""
    shape = shape_of(op.input)
    ident = identity_map(len(shape))
    params = OpParams.of(e, op, shape)
    g = e.parallel(len(shape))
    x = to_f32(g.body, g.input(op.input, ident))
    quant = params.quantize(g)
    g.output(e.empty(op.result.type), ident)
    storage = storage_of(op, element_of(op.result))
    q = quantize_value(
        g.body, x, quant, storage, rounding=op.rounding_mode, saturate=op.saturate_flag
    )
    return e.finish(g, [q])[0]


class LowerQuantize(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: QuantizeOp, rewriter: PatternRewriter) -> None:
        if _pack_fusing(op) is not None:
            return  # the pack pattern lowers both as one generic
        e = Emitter(op.location)
        result = lower_quantize(op, e)
        rewriter.replace(op, e.ops, [result])


# --- dequantize -----------------------------------------------------------------------


def lower_dequantize(op: DequantizeOp, e: Emitter, unpack: UnpackOp | None = None) -> SSAValue:
    """One parallel generic: ``dequantize_value(q, scale, zp)``, truncf to f16/bf16.

    With ``unpack`` (fused ``dequantize(unpack(p))``) the code is taken from its byte:
    ``trunci(extui(byte) >> shift)`` (see :func:`unpack_code`).
    """
    shape = shape_of(op.input)
    ident = identity_map(len(shape))
    params = OpParams.of(e, op, shape)
    g = e.parallel(len(shape))
    if unpack is None:
        q = g.input(op.input, ident)
    else:
        q = unpack_code(e, g, unpack)
    deq = params.dequantize(g)
    g.output(e.empty(op.result.type), ident)
    storage = storage_of(op, element_of(op.input))
    x = dequantize_value(g.body, q, deq, storage.qmin)
    return e.finish(g, [from_f32(g.body, x, element_of(op.result))])[0]


def _unpack_fusing(op: DequantizeOp) -> UnpackOp | None:
    """The unpack a fused dequantize absorbs: its producer, used by nothing else."""
    unpack = op.input.owner
    if lowering_of(op) != "fused" or not isinstance(unpack, UnpackOp):
        return None
    return unpack if unpack.result.has_one_use() else None


class LowerDequantize(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: DequantizeOp, rewriter: PatternRewriter) -> None:
        unpack = _unpack_fusing(op)
        e = Emitter(fused_loc(unpack, op) if unpack else op.location)
        result = lower_dequantize(op, e, unpack)
        rewriter.replace(op, e.ops, [result])
        if unpack is not None:
            rewriter.erase(unpack)


# --- requantize -----------------------------------------------------------------------


def lower_requantize_fused(op: RequantizeOp, e: Emitter) -> SSAValue:
    """One generic: exactly ``quantize(dequantize(q, in), out)`` per element."""
    shape = shape_of(op.input)
    ident = identity_map(len(shape))
    in_params = OpParams.of(e, op, shape, "in_")
    out_params = OpParams.of(e, op, shape, "out_")
    g = e.parallel(len(shape))
    q = g.input(op.input, ident)
    deq, quant = in_params.dequantize(g), out_params.quantize(g)
    g.output(e.empty(op.result.type), ident)
    b = g.body
    in_storage = storage_of(op, element_of(op.input), bounds_of_input=True)
    out_storage = storage_of(op, element_of(op.result))
    x = dequantize_value(b, q, deq, in_storage.qmin, nan_rule=out_storage.is_float)
    r = quantize_value(
        b, x, quant, out_storage, rounding=op.rounding_mode, saturate=op.saturate_flag
    )
    return e.finish(g, [r])[0]


def lower_requantize_composite(op: RequantizeOp, e: Emitter) -> SSAValue:
    """Two generics and a materialized f32 intermediate: dequantize, then quantize."""
    shape = shape_of(op.input)
    ident = identity_map(len(shape))
    in_params = OpParams.of(e, op, shape, "in_")
    out_params = OpParams.of(e, op, shape, "out_")
    g = e.parallel(len(shape))
    q = g.input(op.input, ident)
    deq = in_params.dequantize(g)
    g.output(e.empty(tensor_type(shape, f32)), ident)
    in_storage = storage_of(op, element_of(op.input), bounds_of_input=True)
    mid = e.finish(g, [dequantize_value(g.body, q, deq, in_storage.qmin)])[0]
    g = e.parallel(len(shape))
    x = g.input(mid, ident)
    quant = out_params.quantize(g)
    g.output(e.empty(op.result.type), ident)
    out_storage = storage_of(op, element_of(op.result))
    r = quantize_value(
        g.body, x, quant, out_storage, rounding=op.rounding_mode, saturate=op.saturate_flag
    )
    return e.finish(g, [r])[0]


@dataclass(frozen=True)
class LutShape:
    """How a lookup table implements a requantize: ``channels`` tables (one per index of
    ``axis``, or one table when ``axis`` is None) of ``entries`` = 2^bits codes each."""

    axis: int | None
    channels: int
    entries: int


def lut_shape(op: RequantizeOp) -> LutShape | None:
    """The table layout of a requantize, or None where a table does not apply: input
    wider than 8 bits or float, blocked parameters, or per-axis on two different axes."""
    in_type = element_of(op.input)
    if not isinstance(in_type, IntegerType) or in_type.width.data > 8:
        return None
    axes: set[int] = set()
    for prefix in ("in_", "out_"):
        granularity = op.granularity_of(f"{prefix}granularity")
        match granularity:
            case PerTensorAttr():
                pass
            case PerAxisAttr():
                axes.add(granularity.axis)
            case _:
                return None
    if len(axes) > 1:
        return None
    axis = next(iter(axes), None)
    channels = 1 if axis is None else shape_of(op.input)[axis]
    return LutShape(axis, channels, 1 << in_type.width.data)


def lower_requantize_lut(op: RequantizeOp, e: Emitter) -> SSAValue:
    """A table of all ``2^bits`` input codes per channel, then a gather.

        %dom = arith.constant dense<[-1.28e+02, ..., 1.27e+02]> : tensor<256xf32>
        %t = linalg.generic (c, k) -> table[c, k] = requantize(dom[k]) with channel c's
               parameters (the fused math, run once over the input domain)
        %r = linalg.generic (d0, d1): %i = extsi q - qmin; %v = tensor.extract %t[%c, %i]

    The gather reads the table, a function-level tensor, with ``tensor.extract`` at an
    index computed in the body: the one op beyond the list of design.md section 1 (codegen
    translates it as a load from the table's buffer).
    """
    shape = shape_of(op.input)
    rank = len(shape)
    layout = lut_shape(op)
    assert layout is not None
    axis, channels, n = layout.axis, layout.channels, layout.entries
    in_type = element_of(op.input)
    assert isinstance(in_type, IntegerType)
    type_min, type_max = formats.integer_range(in_type)
    domain = e.dense(tensor_type([n], f32), [float(v) for v in range(type_min, type_max + 1)])
    g = e.parallel(2)
    qf = g.input(domain, AffineMap(2, 0, (dim(1),)))
    in_params = OpParams.of(e, op, shape, "in_")
    out_params = OpParams.of(e, op, shape, "out_")

    # the parameters of channel c, read through the data's maps: (c, k) -> (0, .., c, .., 0)
    lane = AffineMap(
        2, 0, tuple(dim(0) if k == axis else AffineExpr.constant(0) for k in range(rank))
    )
    deq, quant = in_params.dequantize(g, lane), out_params.quantize(g, lane)
    table_type = tensor_type([channels, n], element_of(op.result))
    g.output(e.empty(table_type), identity_map(2))
    b = g.body
    x = dequantize_f32(b, qf, deq)
    out_storage = storage_of(op, element_of(op.result))
    r = quantize_value(
        b, x, quant, out_storage, rounding=op.rounding_mode, saturate=op.saturate_flag
    )
    table = e.finish(g, [r])[0]

    ident = identity_map(rank)
    g = e.parallel(rank)
    q = g.input(op.input, ident)
    if axis is not None:
        iota = e.dense(tensor_type([channels], i32), list(range(channels)))
        channel = g.input(iota, AffineMap(rank, 0, (dim(axis),)))
    g.output(e.empty(op.result.type), ident)
    b = g.body
    word = b.extui(q, i32) if is_unsigned(in_type) else b.extsi(q, i32)
    offset = b.subi(word, b.i32(type_min))
    index = b.value(arith.IndexCastOp(offset, IndexType()))
    if axis is not None:
        c = b.value(arith.IndexCastOp(channel, IndexType()))
    else:
        c = b.value(arith.ConstantOp(IntegerAttr(0, IndexType())))
    value = b.value(tensor.ExtractOp(table, [c, index], element_of(op.result)))
    return e.finish(g, [value])[0]


class LowerRequantize(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: RequantizeOp, rewriter: PatternRewriter) -> None:
        e = Emitter(op.location)
        match lowering_of(op):
            case "fused":
                result = lower_requantize_fused(op, e)
            case "composite":
                result = lower_requantize_composite(op, e)
            case "lut":
                if lut_shape(op) is None:
                    raise _fail(
                        op,
                        "lowering 'lut' needs an integer input of at most 8 bits and "
                        "per-tensor or per-axis (same axis) parameters",
                    )
                result = lower_requantize_lut(op, e)
            case other:
                raise _fail(op, f"unknown lowering '{other}' for quant.requantize")
        rewriter.replace(op, e.ops, [result])


# --- block statistics (dynamic_quantize, fake_quantize) ------------------------------


@dataclass(frozen=True)
class StatTensors:
    """The per-block statistics tensors (parameter shape) and how data reads them."""

    map: AffineMap
    amax_bits: SSAValue | None = None
    xmin: SSAValue | None = None
    xmax: SSAValue | None = None

    def read(self, g: GenericBuilder, amap: AffineMap) -> Stats:
        return Stats(
            g.input(self.amax_bits, amap) if self.amax_bits else None,
            g.input(self.xmin, amap) if self.xmin else None,
            g.input(self.xmax, amap) if self.xmax else None,
        )


def emit_stats(
    e: Emitter,
    x: SSAValue,
    granularity: GranularityAttr,
    *,
    minmax: bool,
    raw: bool = False,
) -> StatTensors:
    """A ``reduction`` generic over the data into the parameter-shaped statistics.

    amax (``minmax`` false), accumulated on the bits of |x| as i32 from 0:

        %init = arith.constant dense<0> : tensor<4x2xi32>
        %amax = linalg.generic {(d0, d1) -> (d0, d1), (d0, d1) -> (d0, d1 floordiv 32);
                                ["parallel", "reduction"]} ins(%x) outs(%init) {
          %bits = arith.bitcast %in : f32 to i32; %abs = arith.andi ...; arith.maxsi ...
        }

    xmin / xmax (``minmax``) with ``minimumf`` / ``maximumf`` from 0.0 (which is SPEC's
    ``min(xmin, 0)`` / ``max(xmax, 0)``), or from +inf / -inf when ``raw``.
    """
    shape = shape_of(x)
    pmap = param_map(granularity, shape)
    pshape = granularity.param_shape(shape)
    g = e.generic(reduction_iterators(pmap))
    xv = to_f32(g.body, g.input(x, identity_map(len(shape))))
    b = g.body
    if not minmax:
        acc = g.output(e.dense(tensor_type(pshape, i32), [0]), pmap)
        return StatTensors(pmap, amax_bits=e.finish(g, [amax_step(b, xv, acc)])[0])
    # two generics, not one with two results: xDSL cannot parse back the printed form of
    # a multi-result linalg.generic; codegen runs both in one phase for row blocks
    lo = g.output(e.dense(tensor_type(pshape, f32), [float("inf") if raw else 0.0]), pmap)
    xmin = e.finish(g, [b.minimumf(lo, xv)])[0]
    g = e.generic(reduction_iterators(pmap))
    xv = to_f32(g.body, g.input(x, identity_map(len(shape))))
    hi = g.output(e.dense(tensor_type(pshape, f32), [float("-inf") if raw else 0.0]), pmap)
    xmax = e.finish(g, [g.body.maximumf(hi, xv)])[0]
    return StatTensors(pmap, xmin=xmin, xmax=xmax)


def _dynamic_form(op: DynamicQuantizeOp) -> DynamicForm:
    storage = storage_of(op, element_of(op.data))
    return DynamicForm(
        storage,
        element_of(op.scale),
        op.is_symmetric,
        op.prop_float("eps"),
        op.prop_str("scale_rounding", "floor"),
    )


def lower_dynamic_quantize(
    op: DynamicQuantizeOp, e: Emitter, fused: bool, pack: PackOp | None = None
) -> list[SSAValue]:
    """Statistics, then the stored parameters, then the data (see the module docstring).

    ``fused``: the data generic reads the statistics and recomputes its block's
    parameters inline; otherwise it reads the stored scale (and zero point). With ``pack``
    (the only user of the data) the data loop is the pack's loop over bytes, each lane
    quantizing its element, and the first result is the packed bytes.
    """
    shape = shape_of(op.input)
    rank = len(shape)
    granularity = op.granularity_of()
    pshape = granularity.param_shape(shape)
    form = _dynamic_form(op)
    double_quant = param_source(e, op, "double_quant", PerTensorAttr(), shape)
    stats = emit_stats(e, op.input, granularity, minmax=not form.symmetric)

    # the stored parameters: a generic over the parameter shape per result
    prank = len(pshape)
    stored: list[SSAValue] = []
    for result in (op.scale, op.zero_point):
        if result is None:
            continue
        g = e.parallel(prank)
        dq = _read_double_quant(g, double_quant)
        p = dynamic_params(g.body, stats.read(g, identity_map(prank)), form, dq)
        g.output(e.empty(result.type), identity_map(prank))
        value = p.scale if result is op.scale else p.zero_point_stored
        assert value is not None
        stored.extend(e.finish(g, [value]))

    # The f32 divisor of each block (scale widened, times dq), once per block rather than
    # once per element, when the data would otherwise compute it from the stored scale.
    divisor: SSAValue | None = None
    if not fused and (double_quant is not None or stored[0].type.element_type != f32):
        g = e.parallel(prank)
        d = to_f32(g.body, g.input(stored[0], identity_map(prank)))
        dq = _read_double_quant(g, double_quant)
        if dq is not None:
            d = g.body.mulf(d, dq)
        g.output(e.empty(tensor_type(pshape, f32)), identity_map(prank))
        divisor = e.finish(g, [d])[0]

    def data_code(g: GenericBuilder, element: AffineMap) -> SSAValue:
        """The data code of the element that ``element`` reads, in generic ``g``."""
        x = to_f32(g.body, g.input(op.input, element))
        block = stats.map.compose(element)
        if fused:
            dq = _read_double_quant(g, double_quant)
            params = dynamic_params(g.body, stats.read(g, block), form, dq)
        else:
            params = _stored_dynamic_params(g, stored, divisor, block)
        return dynamic_data(g.body, x, params, form)

    if pack is not None:
        return [lower_pack(pack, e, code_of=data_code), *stored]
    ident = identity_map(rank)
    g = e.parallel(rank)
    code = data_code(g, ident)
    g.output(e.empty(op.data.type), ident)
    data = e.finish(g, [code])[0]
    return [data, *stored]


def _dynamic_pack_fusing(op: DynamicQuantizeOp) -> PackOp | None:
    """The pack that absorbs this op's data: its only user, with lowering ``fused``."""
    if not op.data.has_one_use():
        return None
    user = next(iter(op.data.uses)).operation
    if isinstance(user, PackOp) and lowering_of(user) == "fused":
        return user
    return None


def _read_double_quant(g: GenericBuilder, source: ParamSource | None) -> SSAValue | None:
    """The 0-d double-quant scale in ``g`` (``() `` map over g's dims) or its constant."""
    if source is None:
        return None
    if source.scalar is not None:
        return g.body.f32(source.scalar)
    assert source.tensor is not None
    return to_f32(g.body, g.input(source.tensor, scalar_map(g.num_dims)))


def _stored_dynamic_params(
    g: GenericBuilder, stored: Sequence[SSAValue], divisor: SSAValue | None, pmap: AffineMap
) -> DynamicParams:
    """The data's divisor and zero point from the stored results (exactly the fused ones:
    every stored scale is the f32 value of the fused form rounded without loss): the
    per-block ``divisor`` tensor, or the stored scale itself when it is f32 without dq."""
    # The data never reads the stored scale element itself, only the f32 divisor, so the
    # one input serves as both fields (DynamicParams.scale is what the scale generic stores).
    value = g.input(stored[0] if divisor is None else divisor, pmap)
    zero_point = to_f32(g.body, g.input(stored[1], pmap)) if len(stored) > 1 else None
    return DynamicParams(value, value, zero_point)


class LowerDynamicQuantize(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: DynamicQuantizeOp, rewriter: PatternRewriter) -> None:
        lowering = lowering_of(op)
        if lowering not in ("fused", "composite"):
            raise _fail(op, f"unknown lowering '{lowering}' for quant.dynamic_quantize")
        pack = _dynamic_pack_fusing(op)
        if pack is None:
            e = Emitter(op.location)
            rewriter.replace(op, e.ops, lower_dynamic_quantize(op, e, lowering == "fused"))
            return
        # Fused with its pack: every new op goes before this op (the scale may be used
        # before the pack), the pack's bytes replace the pack, and the data dies with it.
        e = Emitter(fused_loc(op, pack))
        packed, *stored = lower_dynamic_quantize(op, e, lowering == "fused", pack)
        rewriter.insert(e.ops, InsertPoint.before(op))
        rewriter.replace(pack, [], [packed])
        rewriter.replace(op, [], [None, *stored])


# --- fake_quantize --------------------------------------------------------------------


def _fake_form(op: FakeQuantizeOp) -> FakeForm:
    storage = storage_of(op, op.storage_type)
    scale_type = op.scale_type if op.scale_type is not None else f32
    return FakeForm(
        storage,
        scale_type,
        op.prop_bool("symmetric", True),
        op.prop_float("eps"),
        op.prop_str("zero_point_domain", "int"),
        element_of(op.input),
        op.rounding_mode,
    )


def _check_fake_form(op: FakeQuantizeOp, form: FakeForm) -> None:
    if not op.is_dynamic or form.storage.is_float:
        return
    if form.symmetric and form.domain == "float":
        raise _fail(op, "zero_point_domain 'float' needs asymmetric fake quantization")
    if not form.symmetric and form.domain == "none":
        raise _fail(op, "zero_point_domain 'none' needs symmetric fake quantization")


def lower_fake_quantize(op: FakeQuantizeOp, e: Emitter, fused: bool) -> SSAValue:
    """``dequantize(quantize(x))`` per element, result in the input's type.

    Static: one generic (``fused``) or quantize into a storage tensor then dequantize
    (``composite``). Dynamic: statistics, then one generic recomputing the parameters
    inline (``fused``), or a parameter generic into f32 scale / zero-point tensors read by
    the fake generic (``composite``).
    """
    form = _fake_form(op)
    _check_fake_form(op, form)
    shape = shape_of(op.input)
    rank = len(shape)
    ident = identity_map(rank)
    out_type = element_of(op.result)
    if not op.is_dynamic:
        params = OpParams.of(e, op, shape)
        if not fused:
            return _fake_static_composite(op, e, params, form)
        g = e.parallel(rank)
        x = to_f32(g.body, g.input(op.input, ident))
        fp = FakeParams(
            params.scale.read(g), params.zero_point.read(g) if params.zero_point else None
        )
        if form.domain == "none":
            fp = FakeParams(fp.scale)
        g.output(e.empty(op.result.type), ident)
        y = fake_value(g.body, x, fp, form)
        return e.finish(g, [from_f32(g.body, y, out_type)])[0]

    granularity = op.granularity_of()
    needs_minmax = not form.storage.is_float and not form.symmetric
    stats = emit_stats(e, op.input, granularity, minmax=needs_minmax, raw=form.domain == "float")
    if fused:
        g = e.parallel(rank)
        x = to_f32(g.body, g.input(op.input, ident))
        fp = fake_params(g.body, stats.read(g, stats.map), form)
    else:
        pshape = granularity.param_shape(shape)
        prank = len(pshape)
        stored: list[SSAValue] = []
        for which in ("scale", "zero_point"):
            pg = e.parallel(prank)
            p = fake_params(pg.body, stats.read(pg, identity_map(prank)), form)
            value = p.scale if which == "scale" else p.zero_point
            if value is None:
                continue
            pg.output(e.empty(tensor_type(pshape, f32)), identity_map(prank))
            stored.extend(e.finish(pg, [value]))
        g = e.parallel(rank)
        x = to_f32(g.body, g.input(op.input, ident))
        fp = FakeParams(
            g.input(stored[0], stats.map),
            g.input(stored[1], stats.map) if len(stored) > 1 else None,
        )
    g.output(e.empty(op.result.type), ident)
    y = fake_value(g.body, x, fp, form)
    return e.finish(g, [from_f32(g.body, y, out_type)])[0]


def _fake_static_composite(
    op: FakeQuantizeOp, e: Emitter, params: OpParams, form: FakeForm
) -> SSAValue:
    """Static fake quantize as quantize into a storage tensor, then dequantize."""
    shape = shape_of(op.input)
    ident = identity_map(len(shape))
    storage = form.storage
    zp = params.zero_point if form.domain != "none" else None
    g = e.parallel(len(shape))
    x = to_f32(g.body, g.input(op.input, ident))
    s = params.scale.read(g)
    b = g.body
    if storage.is_float:
        code = quantize_float_value(b, b.divf(x, s), storage, saturate=True, source=x)
    elif form.domain == "float":
        # torchao tinygemm: the code is clamp(round((x - min_val) / s)) without zp
        zero_point = zp.read(g) if zp else b.f32(0.0)
        min_val = b.subf(zero_point, b.mulf(s, b.f32(form.mid)))
        x0 = b.select(b.is_nan(x), b.f32(0.0), x)
        v = b.divf(b.subf(x0, min_val), s)
        t = quantize_int_value(b, v, b.f32(0.0), storage, form.rounding)
        assert isinstance(storage.type, IntegerType)
        code = to_storage_int(b, t, storage.type)
    else:
        zero_point = zp.read(g) if zp else b.f32(0.0)
        assert isinstance(storage.type, IntegerType)
        t = quantize_integral(b, x, QuantizeParams(s, zero_point), storage, form.rounding)
        code = to_storage_int(b, t, storage.type)
    g.output(e.empty(tensor_type(shape, storage.type)), ident)
    codes = e.finish(g, [code])[0]

    g = e.parallel(len(shape))
    q = g.input(codes, ident)
    s = params.scale.read(g)
    b = g.body
    qf = to_f32(b, q)
    if storage.is_float:
        y = dequantize_f32(b, qf, DequantizeParams(s))
    elif form.domain == "float":
        zero_point = zp.read(g) if zp else b.f32(0.0)
        y = nan_sign(b, b.addf(b.mulf(b.subf(qf, b.f32(form.mid)), s), zero_point), qf)
    else:
        zero_point = zp.read(g) if zp else b.f32(0.0)
        y = dequantize_f32(b, qf, DequantizeParams(s, zero_point))
    g.output(e.empty(op.result.type), ident)
    return e.finish(g, [from_f32(b, y, element_of(op.result))])[0]


class LowerFakeQuantize(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: FakeQuantizeOp, rewriter: PatternRewriter) -> None:
        lowering = lowering_of(op)
        if lowering not in ("fused", "composite"):
            raise _fail(op, f"unknown lowering '{lowering}' for quant.fake_quantize")
        e = Emitter(op.location)
        result = lower_fake_quantize(op, e, fused=lowering == "fused")
        rewriter.replace(op, e.ops, [result])


# --- pack / unpack --------------------------------------------------------------------


def _lane_maps(
    bytes_shape: Sequence[int], codes_shape: Sequence[int], per: int
) -> list[tuple[AffineMap, AffineMap | None]]:
    """Per lane: (byte index -> code index, byte index -> mask-table index or None).

        tensor<4x8xi4> -> tensor<16xui8>, lane 1:  (d0) -> (d0 floordiv 4, (d0 mod 4) * 2 + 1)
        tensor<3x5xi4> -> tensor<8xui8>, lane 1:   (d0) -> (((d0 * 2 + 1) mod 15) floordiv 5,
                                                           ((d0 * 2 + 1) mod 15) mod 5),
                                                   mask (d0) -> ((d0 * 2 + 1) floordiv 15)
    When every row holds whole bytes no byte straddles rows (the first form). Otherwise a
    lane that can run past the last code reads ``mod count`` (in bounds) and is masked by
    the table ``[2^bits - 1, 0, ...]`` at ``flat floordiv count`` (0 while in bounds).
    """
    count = pymath.prod(codes_shape)
    nbytes = pymath.prod(bytes_shape)
    rank = len(bytes_shape)
    byte = linearize([dim(k) for k in range(rank)], bytes_shape)
    maps: list[tuple[AffineMap, AffineMap | None]] = []
    if (
        rank > 1
        and tuple(bytes_shape[:-1]) == tuple(codes_shape[:-1])
        and codes_shape[-1] == bytes_shape[-1] * per
    ):
        # bytes shaped like the codes with the last dimension packed: (.., b) -> (.., b * per + l)
        # (no index math on the outer dims, so the byte loop joins the rows' phase)
        outer = [dim(k) for k in range(rank - 1)]
        return [
            (AffineMap(rank, 0, (*outer, dim(rank - 1) * per + lane)), None) for lane in range(per)
        ]
    if codes_shape and codes_shape[-1] % per == 0:
        # whole bytes per row: the lanes of byte b are codes (.., (b mod n/per) * per + l)
        strides = c_strides(codes_shape)
        for lane in range(per):
            results: list[AffineExpr] = []
            for k, (stride, n) in enumerate(zip(strides, codes_shape)):
                last = k == len(codes_shape) - 1
                index = floordiv(byte, 1 if last else stride // per)
                if last:
                    index = (byte if k == 0 else mod(byte, n // per)) * per + lane
                elif k:
                    index = mod(index, n)
                results.append(AffineExpr.constant(0) if n == 1 else index)
            maps.append((AffineMap(rank, 0, tuple(results)), None))
        return maps
    for lane in range(per):
        flat = byte * per + lane
        if (nbytes - 1) * per + lane < count:
            maps.append((AffineMap(rank, 0, delinearize(flat, codes_shape)), None))
            continue
        code_map = AffineMap(rank, 0, delinearize(flat % count, codes_shape))
        maps.append((code_map, AffineMap(rank, 0, (flat // count,))))
    return maps


def _pack_fusing(op: QuantizeOp) -> PackOp | None:
    """The pack that absorbs this quantize: its only user, with lowering ``fused``."""
    if not op.result.has_one_use():
        return None
    user = next(iter(op.result.uses)).operation
    if isinstance(user, PackOp) and lowering_of(user) == "fused":
        return user
    return None


CodeOf = Callable[["GenericBuilder", AffineMap], SSAValue]
"""Emits, in a pack generic, the code of the data element that ``code_map`` reads."""


def lower_pack(
    op: PackOp, e: Emitter, quantize: QuantizeOp | None = None, code_of: CodeOf | None = None
) -> SSAValue:
    """One parallel generic over the bytes; each lane's code shifted into place:

        %w1 = arith.extui %c1 : i4 to i32
        %s1 = arith.shli %w1, %c4_i32 : i32
        %b = arith.ori %w0, %s1 : i32
        %byte = arith.trunci %b : i32 to ui8
    With ``quantize`` each lane's code is ``quantize_value`` of its input element; with
    ``code_of`` (a fused producer such as dynamic_quantize) the callback computes it.
    """
    codes_shape = shape_of(op.input)
    bytes_shape = shape_of(op.result)
    code_type = element_of(op.input)
    bits = formats.bit_width(code_type)
    per = 8 // bits
    count = pymath.prod(codes_shape)
    nbytes = pymath.prod(bytes_shape)
    lanes = _lane_maps(bytes_shape, codes_shape, per)
    mask_table = None
    if any(mask for _, mask in lanes):
        entries = (nbytes * per - 1) // count + 1
        mask_table = e.dense(tensor_type([entries], i32), [(1 << bits) - 1] + [0] * (entries - 1))
    params = OpParams.of(e, quantize, codes_shape) if quantize is not None else None
    g = e.parallel(len(bytes_shape))
    b = g.body
    words: list[SSAValue] = []
    for lane, (code_map, mask_map) in enumerate(lanes):
        if code_of is not None:
            code = code_of(g, code_map)
        elif quantize is None or params is None:
            code = g.input(op.input, code_map)
        else:
            x = to_f32(b, g.input(quantize.input, code_map))
            code = quantize_value(
                b,
                x,
                params.quantize(g, code_map),
                storage_of(quantize, code_type),
                rounding=quantize.rounding_mode,
                saturate=quantize.saturate_flag,
            )
        word = int_of_storage(b, code)
        if mask_map is not None and mask_table is not None:
            word = b.andi(word, g.input(mask_table, mask_map))
        if lane:
            word = b.shli(word, b.i32(lane * bits))
        words.append(word)
    packed = words[0]
    for word in words[1:]:
        packed = b.ori(packed, word)
    g.output(e.empty(op.result.type), identity_map(len(bytes_shape)))
    byte = b.trunci(packed, element_of(op.result))  # pyright: ignore[reportArgumentType]
    return e.finish(g, [byte])[0]


class LowerPack(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: PackOp, rewriter: PatternRewriter) -> None:
        producer = op.input.owner
        quantize = (
            producer if isinstance(producer, QuantizeOp) and _pack_fusing(producer) is op else None
        )
        e = Emitter(fused_loc(quantize, op) if quantize else op.location)
        result = lower_pack(op, e, quantize)
        rewriter.replace(op, e.ops, [result])
        if quantize is not None:
            rewriter.erase(quantize)


def unpack_code(e: Emitter, g: GenericBuilder, op: UnpackOp) -> SSAValue:
    """The code of ``g``'s iteration (over the codes' shape) from its byte:

    %w = arith.extui %byte : ui8 to i32
    %s = arith.shrui %w, %shift : i32          (%shift from dense<[0, 4]> at f mod 2)
    %c = arith.trunci %s : i32 to i4
    """
    codes_shape = shape_of(op.result)
    bytes_shape = shape_of(op.input)
    code_type = element_of(op.result)
    bits = formats.bit_width(code_type)
    per = 8 // bits
    rank = len(codes_shape)
    dims = [dim(k) for k in range(rank)]
    flat = linearize(dims, codes_shape)
    byte_index, lane = flat // per, flat % per
    if codes_shape and codes_shape[-1] % per == 0:
        # whole bytes per row: (d0, d1) -> (d0 * n1/per + d1 floordiv per), lane d1 mod per
        outer = linearize(dims[:-1], codes_shape[:-1]) * (codes_shape[-1] // per)
        byte_index, lane = outer + dims[-1] // per, dims[-1] % per
    byte = g.input(op.input, AffineMap(rank, 0, delinearize(byte_index, bytes_shape)))
    b = g.body
    word = int_of_storage(b, byte)
    shifts = e.dense(tensor_type([per], i32), [k * bits for k in range(per)])
    word = b.shrui(word, g.input(shifts, AffineMap(rank, 0, (lane,))))
    return storage_of_int(b, word, code_type)


def lower_unpack(op: UnpackOp, e: Emitter) -> SSAValue:
    """One parallel generic over the codes (see :func:`unpack_code`)."""
    rank = len(shape_of(op.result))
    g = e.parallel(rank)
    code = unpack_code(e, g, op)
    g.output(e.empty(op.result.type), identity_map(rank))
    return e.finish(g, [code])[0]


class LowerUnpack(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: UnpackOp, rewriter: PatternRewriter) -> None:
        users = [use.operation for use in op.result.uses]
        fusing = len(users) == 1 and isinstance(users[0], DequantizeOp)
        if fusing and _unpack_fusing(users[0]) is op:
            return  # the dequantize pattern lowers both as one generic
        e = Emitter(op.location)
        result = lower_unpack(op, e)
        rewriter.replace(op, e.ops, [result])


# ---------------------------------------------------------------------------------------
# 5. the pass
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LowerQuantPass(ModulePass):
    """Lower every quant op (SPEC.md section 3) to the op set of docs/design.md section 1.

    Ops without a ``lowering`` annotation first get the ``auto`` choice of
    ``choose-quant-lowering``, so ``qopt FILE --lower-quant`` always works.
    """

    name = "lower-quant"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from qopt.passes.choose_quant_lowering import ChooseQuantLoweringPass

        ChooseQuantLoweringPass().apply(ctx, op)
        PatternRewriteWalker(
            GreedyRewritePatternApplier(
                [
                    LowerPack(),
                    LowerQuantize(),
                    LowerDequantize(),
                    LowerUnpack(),
                    LowerRequantize(),
                    LowerDynamicQuantize(),
                    LowerFakeQuantize(),
                ]
            ),
            apply_recursively=False,
        ).rewrite_module(op)
        for inner in op.walk():
            if isinstance(inner, QUANT_OPS):
                raise _fail(inner, f"'{inner.name}' was not lowered")
