"""lower-quant's patterns for pack and unpack (docs/semantics.md section 1).

C order, first element in the low bits, odd tail padded with 0; generics over the
*bytes* (pack) resp. the *codes* (unpack) that flatten with affine maps only (see
lower_quant.py's docstring). A pack lowers its producing quantize in the same generic when
``lowering_choice.pack_fusing`` says so; :func:`unpack_code` is also the first step of a
fused ``dequantize(unpack(p))``.
"""

from __future__ import annotations

import math as pymath
from collections.abc import Callable, Sequence

from xdsl.dialects.builtin import (
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
    pack_fusing,
    unpack_fusing,
)
from qopt.passes.lowering_ir import (
    Emitter,
    GenericBuilder,
    OpParams,
    c_strides,
    delinearize,
    dim,
    element_of,
    fail,
    floordiv,
    fused_loc,
    identity_map,
    is_dynamic,
    linearize,
    mod,
    shape_of,
    storage_of,
    tensor_type,
)
from qopt.passes.quant_math import (
    quantize_value,
)
from qopt.passes.scalar_ir import (
    int_of_storage,
    storage_of_int,
    to_f32,
)
from qopt.qdialect import formats
from qopt.qdialect.ops import (
    DequantizeOp,
    PackOp,
    QuantizeOp,
    UnpackOp,
)


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
    rank = len(bytes_shape)
    if is_dynamic(codes_shape) or is_dynamic(bytes_shape):
        # dynamic: always the row form, the sizes checked when the kernel is called
        outer = [dim(k) for k in range(rank - 1)]
        return [
            (AffineMap(rank, 0, (*outer, dim(rank - 1) * per + lane)), None) for lane in range(per)
        ]
    count = pymath.prod(codes_shape)
    nbytes = pymath.prod(bytes_shape)
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
    _check_dynamic_packing(op, codes_shape, bytes_shape)
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
                zero_point_order=quantize.zp_order,
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
    g.output(e.empty(op.result.type, op.result), identity_map(len(bytes_shape)))
    byte = b.trunci(packed, element_of(op.result))  # pyright: ignore[reportArgumentType]
    return e.finish(g, [byte])[0]


class LowerPack(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: PackOp, rewriter: PatternRewriter) -> None:
        producer = op.input.owner
        quantize = (
            producer if isinstance(producer, QuantizeOp) and pack_fusing(producer) is op else None
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
    _check_dynamic_packing(op, codes_shape, bytes_shape)
    if is_dynamic(codes_shape) or is_dynamic(bytes_shape):
        # the row form: (.., d) -> (.., d floordiv per), lane d mod per
        byte_map = AffineMap(rank, 0, (*dims[:-1], dims[-1] // per))
        byte = g.input(op.input, byte_map)
        lane = dims[-1] % per
        b = g.body
        shifts = e.dense(tensor_type([per], i32), [k * bits for k in range(per)])
        word = b.shrui(int_of_storage(b, byte), g.input(shifts, AffineMap(rank, 0, (lane,))))
        return storage_of_int(b, word, code_type)
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
    g.output(e.empty(op.result.type, op.result), identity_map(rank))
    return e.finish(g, [code])[0]


def _check_dynamic_packing(
    op: PackOp | UnpackOp, codes_shape: Sequence[int], bytes_shape: Sequence[int]
) -> None:
    """Dynamic shapes pack row by row: codes and bytes of the same rank, the last
    dimension packed (``tensor<?x?xi4> <-> tensor<?x?xui8>``); the flat form with a
    partial byte across rows needs static shapes."""
    if not (is_dynamic(codes_shape) or is_dynamic(bytes_shape)):
        return
    if len(codes_shape) != len(bytes_shape) or not codes_shape:
        raise fail(
            op,
            f"{op.name} with dynamic shapes packs the last dimension of each row: codes and "
            f"bytes need the same rank (>= 1), got {len(codes_shape)} and {len(bytes_shape)}",
        )


class LowerUnpack(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: UnpackOp, rewriter: PatternRewriter) -> None:
        users = [use.operation for use in op.result.uses]
        fusing = len(users) == 1 and isinstance(users[0], DequantizeOp)
        if fusing and unpack_fusing(users[0]) is op:
            return  # the dequantize pattern lowers both as one generic
        e = Emitter(op.location)
        result = lower_unpack(op, e)
        rewriter.replace(op, e.ops, [result])
