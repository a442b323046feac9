"""convert-quant-types: upstream MLIR / StableHLO quant IR -> qopt's quant ops.

    %q = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.5:3>>
  becomes
    %q = quant.quantize %x scale(5.000000e-01) zero_point(3) zero_point_order(before_rounding)
           : tensor<4xf32> -> tensor<4xi8>

* ``quant.qcast`` and ``stablehlo.uniform_quantize`` of floats -> ``quant.quantize`` with
  the type's parameters as constants and ``zero_point_order(before_rounding)`` (both add
  the zero point before rounding; docs/semantics.md section 3);
* ``quant.dcast`` and ``stablehlo.uniform_dequantize`` -> ``quant.dequantize``;
* ``stablehlo.uniform_quantize`` of a quantized tensor -> ``quant.requantize``;
* ``quant.scast`` disappears and every other value, function argument and result of a
  quantized type gets its storage type (upstream's ``strip-func-quant-types``), so that
  fold-quant, choose-quant-lowering, lower-quant and the JIT apply.

Per-axis parameters become ``per_axis(a)``, sub-channel ones ``block([...])`` (the block
of an axis without a block size is the whole extent, as upstream). Scales are rounded to
the expressed type, then computed in f32 (exact for f16 / bf16). What qopt cannot compute
is an error at the op (or argument) that holds the type, never a silent change: storage
other than i2/i4/i8/i16 (signed or unsigned), f8E4M3FN, f8E5M2, f4E2M1FN; an expressed
type other than f32 / f16 / bf16; ``!quant.any`` / ``!quant.calibrated`` (no parameters);
a zero point outside the storage range; a zero point or a range on float storage; scalars
(qopt's ops take tensors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FunctionType,
    ModuleOp,
    TensorType,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from qopt.ir.diagnostics import Diagnostic, describe_location
from qopt.qdialect import formats
from qopt.qdialect.attrs import BlockAttr, GranularityAttr, PerAxisAttr
from qopt.qdialect.ops import DequantizeOp, QuantizeOp, RequantizeOp
from qopt.qdialect.stablehlo import UniformDequantizeOp, UniformQuantizeOp
from qopt.qdialect.upstream_ops import (
    DequantizeCastOp,
    QuantizeCastOp,
    StorageCastOp,
    element_of,
)
from qopt.qdialect.upstream_types import UPSTREAM_TYPES, QuantSpec, spec_text

COMPUTABLE_WIDTHS = (2, 4, 8, 16)
EXPRESSED = ("f32", "f16", "bf16")
BEFORE_ROUNDING = "before_rounding"


def _fail(where: Operation | SSAValue, message: str) -> Diagnostic:
    loc = where.location if isinstance(where, Operation) else _value_location(where)
    return Diagnostic(describe_location(loc), message)


def _value_location(value: SSAValue) -> Attribute | None:
    owner = value.owner
    if isinstance(owner, Operation):
        return owner.location
    parent = owner.parent_op() if owner is not None else None
    return parent.location if parent is not None else None


@dataclass(frozen=True)
class Params:
    """A uniform type's parameters as qopt's quant ops take them."""

    storage: Attribute
    expressed: Attribute
    scale: Attribute | float
    zero_point: Attribute | int | None
    granularity: GranularityAttr | None
    storage_range: tuple[int, int] | None
    before_rounding: bool


def _rounded_scales(spec: QuantSpec) -> np.ndarray:
    """The scales rounded (rne) to the expressed type, as f32 (exact)."""
    dtype = formats.numpy_dtype(formats.type_name(spec.expressed))
    return np.asarray(spec.scales, np.float64).astype(dtype).astype(np.float32)


def params_of(spec: QuantSpec, shape: tuple[int, ...], where: Operation | SSAValue) -> Params:
    """qopt's parameters of ``spec`` on a tensor of ``shape``; a Diagnostic at ``where``
    for what qopt cannot compute."""
    text = f"!quant.{spec_text(spec)}"
    if spec.kind != "uniform":
        raise _fail(where, f"{text} has no scale or zero point to compute with")
    storage = spec.storage
    assert storage is not None and spec.expressed is not None
    if not storage.is_float and storage.width not in COMPUTABLE_WIDTHS:
        raise _fail(
            where,
            f"qopt cannot compute storage {storage.spelling} of {text}: it computes i2, i4, "
            "i8, i16 (signed or unsigned), f8E4M3FN, f8E5M2 and f4E2M1FN",
        )
    expressed = formats.type_name(spec.expressed)
    if expressed not in EXPRESSED:
        raise _fail(
            where, f"qopt cannot compute expressed type {expressed} of {text}: f32, f16 or bf16"
        )
    scales = _rounded_scales(spec)
    if not np.all(np.isfinite(scales) & (scales > 0)):
        raise _fail(where, f"the scales of {text} must be finite and > 0 in {expressed}")
    zero_points = np.asarray(spec.zero_points, np.int64)
    if spec.layout == "sub_channel" and not storage.is_float and not storage.signed:
        zero_points %= 1 << storage.width  # held as bits of the storage width, as upstream
    if storage.is_float and (spec.has_range or np.any(zero_points)):
        raise _fail(where, f"float storage takes no zero point and no storage range: {text}")
    qmin, qmax = storage.default_range
    if np.any((zero_points < qmin) | (zero_points > qmax)):
        bad = int(zero_points[(zero_points < qmin) | (zero_points > qmax)][0])
        raise _fail(
            where,
            f"zero point {bad} of {text} is not a value of its storage type "
            f"[{qmin}, {qmax}]; qopt holds zero points in the storage type",
        )
    storage_type = formats.parse_type_name(storage.qopt_name)
    granularity, param_shape = _granularity(spec, shape, where)
    has_zp = bool(np.any(zero_points))
    if param_shape == ():
        scale: Attribute | float = float(scales[0])
        zero_point: Attribute | int | None = int(zero_points[0]) if has_zp else None
    else:
        scale = DenseIntOrFPElementsAttr.from_list(
            TensorType(formats.parse_type_name("f32"), param_shape), scales.tolist()
        )
        zero_point = (
            DenseIntOrFPElementsAttr.from_list(
                TensorType(storage_type, param_shape), zero_points.tolist()
            )
            if has_zp
            else None
        )
    return Params(
        storage_type,
        spec.expressed,
        scale,
        zero_point,
        granularity,
        (spec.storage_min, spec.storage_max) if spec.has_range and not storage.is_float else None,
        has_zp,
    )


def _granularity(
    spec: QuantSpec, shape: tuple[int, ...], where: Operation | SSAValue
) -> tuple[GranularityAttr | None, tuple[int, ...]]:
    if spec.layout == "layer":
        return None, ()
    if spec.layout == "axis":
        return PerAxisAttr(spec.axes[0]), (len(spec.scales),)
    if any(n < 0 for n in shape):
        raise _fail(where, "sub-channel parameters need a tensor of static shape")
    blocks = dict(zip(spec.axes, spec.block_sizes, strict=True))
    return BlockAttr([blocks.get(k, n) for k, n in enumerate(shape)]), spec.shape


def _tensor_shape(value: SSAValue, op: Operation) -> tuple[int, ...]:
    if not isinstance(value.type, TensorType):
        raise _fail(op, f"qopt converts ranked tensors only, got {value.type}")
    return tuple(value.type.get_shape())


def storage_type_of(t: Attribute) -> Attribute:
    """``t`` with a quantized element type replaced by its qopt storage type (else ``t``)."""
    e = element_of(t)
    if not isinstance(e, UPSTREAM_TYPES) or e.data.storage is None:
        return t
    storage = formats.parse_type_name(e.data.storage.qopt_name)
    return TensorType(storage, t.get_shape()) if isinstance(t, TensorType) else storage


def _quantize(op: Operation, source: SSAValue, result: SSAValue) -> Operation:
    shape = _tensor_shape(source, op)
    p = params_of(element_of(result.type).data, shape, op)
    return QuantizeOp(
        source,
        TensorType(p.storage, shape),
        scale=p.scale,
        zero_point=p.zero_point,
        granularity=p.granularity,
        storage_range=p.storage_range,
        zero_point_order=BEFORE_ROUNDING if p.before_rounding else None,
    )


def _dequantize(op: Operation, source: SSAValue, result: SSAValue) -> Operation:
    shape = _tensor_shape(source, op)
    p = params_of(element_of(source.type).data, shape, op)
    return DequantizeOp(
        source,
        TensorType(p.expressed, shape),
        scale=p.scale,
        zero_point=p.zero_point,
        granularity=p.granularity,
    )  # no storage range: dequantize does not clamp, and upstream's zero point may lie outside


def _requantize(op: Operation, source: SSAValue, result: SSAValue) -> Operation:
    shape = _tensor_shape(source, op)
    i = params_of(element_of(source.type).data, shape, op)
    o = params_of(element_of(result.type).data, shape, op)
    return RequantizeOp(
        source,
        TensorType(o.storage, shape),
        in_scale=i.scale,
        in_zero_point=i.zero_point,
        in_granularity=i.granularity,
        out_scale=o.scale,
        out_zero_point=o.zero_point,
        out_granularity=o.granularity,
        storage_range=o.storage_range,
        zero_point_order=BEFORE_ROUNDING if o.before_rounding else None,
    )


def _convert_op(op: Operation) -> Operation | None:
    """The qopt op that replaces ``op`` (built on its original operand), or None."""
    match op:
        case QuantizeCastOp():
            return _quantize(op, op.input, op.result)
        case DequantizeCastOp() | UniformDequantizeOp():
            return _dequantize(op, op.operands[0], op.results[0])
        case UniformQuantizeOp() if isinstance(element_of(op.operand.type), UPSTREAM_TYPES):
            return _requantize(op, op.operand, op.result)
        case UniformQuantizeOp():
            return _quantize(op, op.operand, op.result)
        case _:
            return None


def _retype(value: SSAValue) -> None:
    new = storage_type_of(value.type)
    if new is not value.type:
        Rewriter.replace_value_with_new_type(value, new)


@dataclass(frozen=True)
class ConvertQuantTypesPass(ModulePass):
    """Upstream ``quant.qcast`` / ``dcast`` / ``scast`` and StableHLO's uniform ops ->
    qopt's quantize / dequantize / requantize on plain storage types."""

    name = "convert-quant-types"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        # built from the original types first: a replacement retypes its uses
        replacements = [(inner, _convert_op(inner)) for inner in op.walk()]
        for inner, new in replacements:
            if new is not None:
                new.location = inner.location
                Rewriter.replace_op(inner, new)
        for inner in list(op.walk()):
            if isinstance(inner, StorageCastOp):
                inner.result.replace_all_uses_with(inner.input)
                Rewriter.erase_op(inner)
        for inner in list(op.walk()):
            for region in inner.regions:
                for block in region.blocks:
                    for arg in list(block.args):
                        _retype(arg)
            for result in list(inner.results):
                _retype(result)
            if isinstance(inner, func.FuncOp):
                ft = inner.function_type
                inner.function_type = FunctionType.from_lists(
                    [storage_type_of(t) for t in ft.inputs.data],
                    [storage_type_of(t) for t in ft.outputs.data],
                )
