"""lower-quant's patterns for dynamic_quantize and fake_quantize.

Both start with a statistics ``reduction`` generic (:func:`emit_stats`); ``fused`` data
generics read the statistics and recompute the block's parameters inline, ``composite``
ones read the stored parameters. The math is ``dynamic_math.py`` (shared by both forms,
so they give the same bits); see lower_quant.py's docstring for the loop structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import (
    IntegerType,
    f32,
    i32,
)
from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineMap
from xdsl.pattern_rewriter import (
    PatternRewriter,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from qopt.passes.dynamic_math import (
    DynamicForm,
    DynamicParams,
    FakeForm,
    FakeParams,
    Stats,
    amax_step,
    dynamic_data,
    dynamic_params,
    fake_code,
    fake_dequantize,
    fake_params,
    fake_value,
)
from qopt.passes.lowering_choice import dynamic_pack_fusing, lowering_of
from qopt.passes.lowering_ir import (
    Emitter,
    GenericBuilder,
    OpParams,
    ParamSource,
    element_of,
    fail,
    fused_loc,
    identity_map,
    param_map,
    param_source,
    reduction_iterators,
    scalar_map,
    shape_of,
    storage_of,
    tensor_type,
)
from qopt.passes.lowering_packing import lower_pack
from qopt.passes.scalar_ir import (
    from_f32,
    to_f32,
    to_storage_int,
)
from qopt.qdialect.attrs import GranularityAttr, PerTensorAttr
from qopt.qdialect.ops import (
    DynamicQuantizeOp,
    FakeQuantizeOp,
    PackOp,
)

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

    xmin / xmax (``minmax``) with ``minimumf`` / ``maximumf`` from 0.0 (which is the semantics'
    ``min(xmin, 0)`` / ``max(xmax, 0)``), or from +inf / -inf when ``raw``.
    """
    shape = shape_of(x)
    pmap = param_map(granularity, shape)
    pshape = granularity.param_shape(shape)
    sizes = e.param_sizes(x, granularity)
    g = e.generic(reduction_iterators(pmap))
    xv = to_f32(g.body, g.input(x, identity_map(len(shape))))
    b = g.body
    if not minmax:
        acc = g.output(e.fill(tensor_type(pshape, i32), 0, sizes), pmap)
        return StatTensors(pmap, amax_bits=e.finish(g, [amax_step(b, xv, acc)])[0])
    # two generics, not one with two results: xDSL cannot parse back the printed form of
    # a multi-result linalg.generic; codegen runs both in one phase for row blocks
    lo = g.output(e.fill(tensor_type(pshape, f32), float("inf") if raw else 0.0, sizes), pmap)
    xmin = e.finish(g, [b.minimumf(lo, xv)])[0]
    g = e.generic(reduction_iterators(pmap))
    xv = to_f32(g.body, g.input(x, identity_map(len(shape))))
    hi = g.output(e.fill(tensor_type(pshape, f32), float("-inf") if raw else 0.0, sizes), pmap)
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
        g.output(e.empty(result.type, e.param_sizes(op.input, granularity)), identity_map(prank))
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
        g.output(
            e.empty(tensor_type(pshape, f32), e.param_sizes(op.input, granularity)),
            identity_map(prank),
        )
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
    g.output(e.empty(op.data.type, op.input), ident)
    data = e.finish(g, [code])[0]
    return [data, *stored]


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
            raise fail(op, f"unknown lowering '{lowering}' for quant.dynamic_quantize")
        pack = dynamic_pack_fusing(op)
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
        raise fail(op, "zero_point_domain 'float' needs asymmetric fake quantization")
    if not form.symmetric and form.domain == "none":
        raise fail(op, "zero_point_domain 'none' needs symmetric fake quantization")


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
        g.output(e.empty(op.result.type, op.input), ident)
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
            sizes = e.param_sizes(op.input, granularity)
            pg.output(e.empty(tensor_type(pshape, f32), sizes), identity_map(prank))
            stored.extend(e.finish(pg, [value]))
        g = e.parallel(rank)
        x = to_f32(g.body, g.input(op.input, ident))
        fp = FakeParams(
            g.input(stored[0], stats.map),
            g.input(stored[1], stats.map) if len(stored) > 1 else None,
        )
    g.output(e.empty(op.result.type, op.input), ident)
    y = fake_value(g.body, x, fp, form)
    return e.finish(g, [from_f32(g.body, y, out_type)])[0]


def _fake_static_composite(
    op: FakeQuantizeOp, e: Emitter, params: OpParams, form: FakeForm
) -> SSAValue:
    """Static fake quantize as quantize into a storage tensor, then dequantize: the two
    halves of ``fake_value`` (:func:`fake_code`, :func:`fake_dequantize`) in two generics."""
    shape = shape_of(op.input)
    ident = identity_map(len(shape))
    storage = form.storage
    zp = params.zero_point if form.domain != "none" else None
    g = e.parallel(len(shape))
    x = to_f32(g.body, g.input(op.input, ident))
    s = params.scale.read(g)
    code = fake_code(g.body, x, FakeParams(s, zp.read(g) if zp else None), form)
    if not storage.is_float:
        assert isinstance(storage.type, IntegerType)
        code = to_storage_int(g.body, code, storage.type)
    g.output(e.empty(tensor_type(shape, storage.type), op.input), ident)
    codes = e.finish(g, [code])[0]

    g = e.parallel(len(shape))
    q = g.input(codes, ident)
    s = params.scale.read(g)
    qf = to_f32(g.body, q)
    y = fake_dequantize(g.body, qf, FakeParams(s, zp.read(g) if zp else None), form)
    g.output(e.empty(op.result.type, op.input), ident)
    return e.finish(g, [from_f32(g.body, y, element_of(op.result))])[0]


class LowerFakeQuantize(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: FakeQuantizeOp, rewriter: PatternRewriter) -> None:
        lowering = lowering_of(op)
        if lowering not in ("fused", "composite"):
            raise fail(op, f"unknown lowering '{lowering}' for quant.fake_quantize")
        e = Emitter(op.location)
        result = lower_fake_quantize(op, e, fused=lowering == "fused")
        rewriter.replace(op, e.ops, [result])
