"""lower-quant's patterns for the static ops: quantize, dequantize, requantize.

One lowering function and one ``RewritePattern`` per op; requantize has three forms
(``fused``, ``composite``, ``lut``) as ``choose-quant-lowering`` annotated them. The
per-element math is ``quant_math.py``; a quantize absorbed by its pack and an unpack
absorbed by its dequantize are decided in ``lowering_choice.py``.
"""

from __future__ import annotations

from xdsl.dialects import arith, tensor
from xdsl.dialects.builtin import (
    IndexType,
    IntegerAttr,
    IntegerType,
    f32,
    i32,
)
from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap
from xdsl.pattern_rewriter import (
    PatternRewriter,
    RewritePattern,
    op_type_rewrite_pattern,
)

from qopt.passes.lowering_choice import (
    lowering_of,
    lut_shape,
    pack_fusing,
    unpack_fusing,
)
from qopt.passes.lowering_ir import (
    Emitter,
    OpParams,
    dim,
    element_of,
    fail,
    fused_loc,
    identity_map,
    shape_of,
    storage_of,
    tensor_type,
)
from qopt.passes.lowering_packing import unpack_code
from qopt.passes.quant_math import (
    QuantizeParams,
    dequantize_f32,
    dequantize_value,
    quantize_value,
)
from qopt.passes.scalar_ir import (
    BodyBuilder,
    Storage,
    from_f32,
    is_unsigned,
    to_f32,
)
from qopt.qdialect import formats
from qopt.qdialect.ops import (
    DequantizeOp,
    QuantizeOp,
    RequantizeOp,
    UnpackOp,
)

# --- quantize -------------------------------------------------------------------------


def quantize_as_op(
    op: QuantizeOp | RequantizeOp,
    b: BodyBuilder,
    x: SSAValue,
    quant: QuantizeParams,
    storage: Storage,
) -> SSAValue:
    """``quantize_value`` with the rounding, saturation and zero-point order `op` names."""
    return quantize_value(
        b,
        x,
        quant,
        storage,
        rounding=op.rounding_mode,
        saturate=op.saturate_flag,
        zero_point_order=op.zp_order,
    )


def lower_quantize(op: QuantizeOp, e: Emitter) -> SSAValue:
    """One parallel generic: ``quantize_value(extf(x), scale, zp)`` per element."""
    shape = shape_of(op.input)
    ident = identity_map(len(shape))
    params = OpParams.of(e, op, shape)
    g = e.parallel(len(shape))
    x = to_f32(g.body, g.input(op.input, ident))
    quant = params.quantize(g)
    g.output(e.empty(op.result.type, op.input), ident)
    storage = storage_of(op, element_of(op.result))
    q = quantize_as_op(op, g.body, x, quant, storage)
    return e.finish(g, [q])[0]


class LowerQuantize(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: QuantizeOp, rewriter: PatternRewriter) -> None:
        if pack_fusing(op) is not None:
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
    g.output(e.empty(op.result.type, op.input), ident)
    storage = storage_of(op, element_of(op.input))
    x = dequantize_value(g.body, q, deq, storage.qmin)
    return e.finish(g, [from_f32(g.body, x, element_of(op.result))])[0]


class LowerDequantize(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: DequantizeOp, rewriter: PatternRewriter) -> None:
        unpack = unpack_fusing(op)
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
    g.output(e.empty(op.result.type, op.input), ident)
    b = g.body
    in_storage = storage_of(op, element_of(op.input), bounds_of_input=True)
    out_storage = storage_of(op, element_of(op.result))
    x = dequantize_value(b, q, deq, in_storage.qmin, nan_rule=out_storage.is_float)
    r = quantize_as_op(op, b, x, quant, out_storage)
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
    g.output(e.empty(tensor_type(shape, f32), op.input), ident)
    in_storage = storage_of(op, element_of(op.input), bounds_of_input=True)
    mid = e.finish(g, [dequantize_value(g.body, q, deq, in_storage.qmin)])[0]
    g = e.parallel(len(shape))
    x = g.input(mid, ident)
    quant = out_params.quantize(g)
    g.output(e.empty(op.result.type, op.input), ident)
    out_storage = storage_of(op, element_of(op.result))
    r = quantize_as_op(op, g.body, x, quant, out_storage)
    return e.finish(g, [r])[0]


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
    r = quantize_as_op(op, b, x, quant, out_storage)
    table = e.finish(g, [r])[0]

    ident = identity_map(rank)
    g = e.parallel(rank)
    q = g.input(op.input, ident)
    if axis is not None:
        iota = e.dense(tensor_type([channels], i32), list(range(channels)))
        channel = g.input(iota, AffineMap(rank, 0, (dim(axis),)))
    g.output(e.empty(op.result.type, op.input), ident)
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
                    raise fail(
                        op,
                        "lowering 'lut' needs an integer input of at most 8 bits and "
                        "per-tensor or per-axis (same axis) parameters",
                    )
                result = lower_requantize_lut(op, e)
            case other:
                raise fail(op, f"unknown lowering '{other}' for quant.requantize")
        rewriter.replace(op, e.ops, [result])
