"""ONNX Q/DQ nodes as quant ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear
(opsets 10 to the newest the installed onnx knows) and TensorRT's custom Q/DQ ops as
nvidia-modelopt exports them.

The mapping (docs/onnx.md):

* ``QuantizeLinear(x, s, zp)`` -> ``quant.quantize``: ONNX's order ``round(x / s) + zp``
  is qopt's; the storage type is zp's type, else ``output_dtype``, else uint8; a 1-D scale
  of the axis' length is ``per_axis(axis)``, ``block_size`` is ``per_block(axis, B)``, a
  scalar or one-element scale per-tensor; ``saturate`` applies to float storage. A float
  zero point must be 0 and is dropped (qopt's float storage has no zero point).
* ``DequantizeLinear(q, s, zp)`` -> ``quant.dequantize``, the result in ``output_dtype``
  or the scale's type.
* ``DynamicQuantizeLinear(x)`` -> ``quant.dynamic_quantize`` to ui8, asymmetric.
* ``trt::TRT_FP8QuantizeLinear`` / ``TRT_FP8DequantizeLinear``: e4m3 Q/DQ without a zero
  point, saturating (ModelOpt rewrites them to exactly that); ``TRT_INT4QuantizeLinear`` /
  ``TRT_INT4DequantizeLinear``: the standard ops' semantics; ``TRT_MXFP8DynamicQuantize``:
  MXFP8 with E8M0 scales rounded up (``rceil``: ModelOpt's ``2^ceil(log2(amax / 448))``),
  the scale codes as uint8; ``TRT_MXFP8DequantizeLinear`` reads them back;
  ``TRT_FP4DynamicQuantize``: NVFP4 (e2m1 data, e4m3 block scales, the double-quant scalar
  as its second input). ``TRT_FP4QDQ`` is a placeholder that ModelOpt replaces after
  export, with no defined numerics: it stays opaque.

Constant parameters (initializers, Constant nodes, constant subgraphs) become constant
properties; parameters that are graph inputs or outputs of another Q/DQ op become operands.
What qopt does not compute (division in f16, int32 data, float6, a zero scale, a
parameter computed at runtime by another op) raises :class:`Unsupported`; what ONNX does
not allow (a scale of the wrong rank or length, a missing scale) raises :class:`OnnxError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import TensorProto
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, TensorType, f32, i32
from xdsl.ir import Attribute, Operation, SSAValue

from qopt.onnx.model import OnnxError, Unsupported, qopt_type, type_label
from qopt.qdialect import formats
from qopt.qdialect.attrs import GranularityAttr, PerAxisAttr, PerBlockAttr
from qopt.qdialect.ops import DequantizeOp, DynamicQuantizeOp, QuantizeOp

_EXPRESSED = ("f32", "f16", "bf16")


@dataclass
class Param:
    """One input of a Q/DQ node: its constant value or its SSA value."""

    name: str
    elem_type: int
    shape: tuple[int | None, ...] | None
    const: np.ndarray | None = None
    value: SSAValue | None = None


@dataclass
class NodeInputs:
    """What a translation may ask about the node being imported."""

    label: str
    """``node 'q1' (QuantizeLinear)``, for messages."""
    attrs: dict[str, Any]
    since: int
    """The opset version that defined this op's semantics (0 for custom ops)."""
    params: list[Param | None]
    """One per input position; None where the input is absent."""
    operand_positions: list[int]
    """Filled by the translation: the input positions used as operands, in operand order."""

    def param(self, i: int, what: str, required: bool = True) -> Param | None:
        p = self.params[i] if i < len(self.params) else None
        if p is None and required:
            raise OnnxError(f"{self.label}: has no {what} input")
        return p

    def data(self, i: int, what: str) -> tuple[SSAValue, str, tuple[int, ...]]:
        """The data input as an SSA value, its qopt element type and static shape."""
        p = self.param(i, what)
        assert p is not None
        if p.value is None:
            raise Unsupported(f"{what} '{p.name}' is a constant; qopt imports Q/DQ of graph values")
        spelling = qopt_type(p.elem_type)
        if p.shape is None:
            raise Unsupported(f"the rank of {what} '{p.name}' is unknown")
        self.operand_positions.append(i)
        return (
            p.value,
            spelling or type_label(p.elem_type),
            tuple(-1 if d is None else d for d in p.shape),
        )


# ---------------------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------------------


def _granularity(
    inputs: NodeInputs, data_shape: tuple[int, ...], scale: Param, axis: int, block: int
) -> tuple[GranularityAttr | None, tuple[int, ...]]:
    """The granularity and the parameter shape qopt expects, from ONNX's rules."""
    rank = len(data_shape)
    if scale.shape is None:
        raise Unsupported(f"the shape of scale '{scale.name}' is unknown")
    shape = tuple(-1 if d is None else d for d in scale.shape)
    if not block and (len(shape) == 0 or (len(shape) == 1 and shape[0] == 1)):
        return None, ()  # per-tensor: the axis is not used
    if not -rank <= axis < rank:
        raise OnnxError(f"{inputs.label}: axis {axis} is out of range for input of rank {rank}")
    a = axis % rank
    if block:
        if block < 0:
            raise OnnxError(f"{inputs.label}: block_size {block} is negative")
        want = tuple(-(-d // block) if k == a and d >= 0 else d for k, d in enumerate(data_shape))
        if len(shape) != rank or any(w >= 0 and s != w for s, w in zip(shape, want)):
            raise OnnxError(
                f"{inputs.label}: scale '{scale.name}' has shape {list(shape)}; blocks of "
                f"{block} along axis {axis} of input shape {list(data_shape)} need {list(want)}"
            )
        return PerBlockAttr(a, block), want
    if len(shape) == 1 and (shape[0] == data_shape[a] or data_shape[a] < 0):
        return PerAxisAttr(a), shape
    if len(shape) == 1:
        raise OnnxError(
            f"{inputs.label}: scale '{scale.name}' has {shape[0]} elements; axis {axis} of "
            f"input shape {list(data_shape)} has {data_shape[a]}"
        )
    raise OnnxError(
        f"{inputs.label}: scale '{scale.name}' has rank {len(shape)}; without block_size a "
        f"scale is a scalar, [1] or 1-D along the axis (input shape {list(data_shape)})"
    )


def _dense(values: np.ndarray, element: Attribute) -> DenseIntOrFPElementsAttr:
    return DenseIntOrFPElementsAttr.from_list(
        TensorType(element, values.shape),  # pyright: ignore[reportArgumentType]
        values.ravel().tolist(),
    )


def _scale_arg(
    inputs: NodeInputs, p: Param, position: int, param_shape: tuple[int, ...]
) -> SSAValue | Attribute | float:
    if p.const is None:
        return _runtime_param(inputs, p, position, param_shape, "scale")
    with np.errstate(all="ignore"):
        values = np.asarray(p.const).astype(np.float32)
    bad = values[~(np.isfinite(values) & (values > 0))]
    if bad.size:
        raise Unsupported(
            f"constant scale '{p.name}' holds {bad.ravel()[0]}; qopt takes finite scales > 0"
        )
    values = values.reshape(param_shape)
    return float(values) if values.ndim == 0 else _dense(values, f32)


def _zero_point_arg(
    inputs: NodeInputs,
    p: Param | None,
    position: int,
    storage: str,
    param_shape: tuple[int, ...],
) -> SSAValue | Attribute | int | None:
    if p is None:
        return None
    if qopt_type(p.elem_type) != storage:
        raise OnnxError(
            f"{inputs.label}: zero point '{p.name}' is {type_label(p.elem_type)}, "
            f"the data is {storage}"
        )
    if storage in formats.FLOAT_STORAGE_NAMES:
        if p.const is None:
            raise Unsupported(f"float zero point '{p.name}' is a runtime value; it must be 0")
        if np.any(np.asarray(p.const).astype(np.float32) != 0):
            raise Unsupported(f"float zero point '{p.name}' is not 0")
        return None  # ONNX: a float zero point only names the type
    if p.const is None:
        return _runtime_param(inputs, p, position, param_shape, "zero point")
    values = np.asarray(p.const).astype(np.int64)
    if values.size != math.prod(param_shape):
        raise OnnxError(
            f"{inputs.label}: zero point '{p.name}' has shape {list(values.shape)}, "
            f"the scale {list(param_shape)}"
        )
    values = values.reshape(param_shape)
    return int(values) if values.ndim == 0 else _dense(values, i32)


def _runtime_param(
    inputs: NodeInputs, p: Param, position: int, param_shape: tuple[int, ...], what: str
) -> SSAValue:
    assert p.value is not None
    shape = tuple(-1 if d is None else d for d in (p.shape or ()))
    if shape != param_shape:
        raise Unsupported(
            f"runtime {what} '{p.name}' has shape {list(shape)}; qopt takes "
            f"{list(param_shape)} here (a [1] runtime parameter is not read as a scalar)"
        )
    inputs.operand_positions.append(position)
    return p.value


def _storage(inputs: NodeInputs, elem_type: int, what: str) -> str:
    spelling = qopt_type(elem_type)
    if spelling is None or not formats.is_storage(formats.parse_type_name(spelling)):
        raise Unsupported(
            f"{what} type {type_label(elem_type)} is not a storage type qopt computes"
        )
    return spelling


# ---------------------------------------------------------------------------------------
# the ops
# ---------------------------------------------------------------------------------------


def _division_precision(inputs: NodeInputs, x_type: str, scale: Param) -> None:
    """qopt divides in f32: the node must too."""
    precision = inputs.attrs.get("precision", 0)
    scale_type = qopt_type(scale.elem_type)
    if precision:
        if precision != TensorProto.FLOAT:
            raise Unsupported(f"precision={type_label(precision)}: qopt divides x / scale in f32")
        return
    if x_type != "f32" or scale_type not in ("f32", "f8E8M0FNU"):
        raise Unsupported(
            f"x is {x_type} and the scale {scale_type}: this node divides in "
            f"{'the scale' if inputs.since >= 25 else 'their'} precision, qopt in f32"
        )


def quantize_linear(inputs: NodeInputs, *, storage: str | None = None) -> Operation:
    x, x_type, shape = inputs.data(0, "input")
    if x_type not in _EXPRESSED:
        raise Unsupported(f"input type {x_type} is not f32, f16 or bf16")
    scale = inputs.param(1, "scale")
    assert scale is not None
    zp = inputs.param(2, "zero point", required=False)
    _division_precision(inputs, x_type, scale)
    if storage is None:
        if zp is not None:
            storage = _storage(inputs, zp.elem_type, "zero point")
        else:
            storage = _storage(
                inputs, inputs.attrs.get("output_dtype") or TensorProto.UINT8, "output"
            )
    axis, block = inputs.attrs.get("axis", 1), inputs.attrs.get("block_size", 0)
    granularity, param_shape = _granularity(inputs, shape, scale, axis, block)
    scale_arg = _scale_arg(inputs, scale, 1, param_shape)
    zp_arg = _zero_point_arg(inputs, zp, 2, storage, param_shape)
    float_storage = storage in formats.FLOAT_STORAGE_NAMES
    saturate = None if not float_storage or inputs.attrs.get("saturate", 1) else False
    if saturate is False and storage == "f4E2M1FN":
        saturate = None  # ONNX: no effect for float4e2m1 (it has no inf)
    return QuantizeOp(
        x,
        TensorType(formats.parse_type_name(storage), shape),
        scale=scale_arg,
        zero_point=zp_arg,
        granularity=granularity,
        saturate=saturate,
    )


def dequantize_linear(inputs: NodeInputs, *, storage: str | None = None) -> Operation:
    q, q_type, shape = inputs.data(0, "input")
    if storage is not None and q_type != storage:
        raise Unsupported(
            f"input type {q_type} is not {storage} (bytes are read as codes only "
            f"from the TRT quantize op)"
        )
    storage = storage or q_type
    if not formats.is_storage(_parse(storage)):
        raise Unsupported(f"input type {q_type} is not a storage type qopt computes")
    scale = inputs.param(1, "scale")
    assert scale is not None
    zp = inputs.param(2, "zero point", required=False)
    out = inputs.attrs.get("output_dtype") or scale.elem_type
    out_type = qopt_type(out)
    if out_type not in _EXPRESSED:
        raise Unsupported(f"output type {type_label(out)} is not f32, f16 or bf16")
    axis, block = inputs.attrs.get("axis", 1), inputs.attrs.get("block_size", 0)
    granularity, param_shape = _granularity(inputs, shape, scale, axis, block)
    scale_arg = _scale_arg(inputs, scale, 1, param_shape)
    zp_arg = _zero_point_arg(inputs, zp, 2, storage, param_shape)
    return DequantizeOp(
        q,
        TensorType(formats.parse_type_name(out_type), shape),
        scale=scale_arg,
        zero_point=zp_arg,
        granularity=granularity,
    )


def _parse(spelling: str) -> Attribute:
    try:
        return formats.parse_type_name(spelling)
    except Exception:
        raise Unsupported(f"element type {spelling} is not one qopt computes") from None


def dynamic_quantize_linear(inputs: NodeInputs) -> Operation:
    x, x_type, shape = inputs.data(0, "input")
    if x_type != "f32":
        raise Unsupported(f"input type {x_type} is not f32")
    ui8 = formats.parse_type_name("ui8")
    return DynamicQuantizeOp(
        x,
        TensorType(ui8, shape),
        TensorType(f32, ()),
        TensorType(ui8, ()),
        symmetric=False,
    )


def _block_of(inputs: NodeInputs, shape: tuple[int, ...], default_block: int) -> PerBlockAttr:
    axis = inputs.attrs.get("axis", -1)
    block = inputs.attrs.get("block_size", default_block)
    rank = len(shape)
    if not rank or not -rank <= axis < rank or block <= 0:
        raise OnnxError(f"{inputs.label}: axis {axis} / block_size {block} do not fit rank {rank}")
    return PerBlockAttr(axis % rank, block)


def _param_shape(shape: tuple[int, ...], granularity: PerBlockAttr) -> tuple[int, ...]:
    return tuple(granularity.param_shape(shape))


def mxfp8_dynamic_quantize(inputs: NodeInputs) -> Operation:
    x, x_type, shape = inputs.data(0, "input")
    if x_type not in _EXPRESSED:
        raise Unsupported(f"input type {x_type} is not f32, f16 or bf16")
    out = inputs.attrs.get("output_dtype", TensorProto.FLOAT8E4M3FN)
    if out != TensorProto.FLOAT8E4M3FN:
        raise Unsupported(f"output_dtype {type_label(out)}: ModelOpt's MXFP8 is e4m3")
    granularity = _block_of(inputs, shape, 32)
    return DynamicQuantizeOp(
        x,
        TensorType(formats.parse_type_name("f8E4M3FN"), shape),
        TensorType(formats.parse_type_name("f8E8M0FNU"), _param_shape(shape, granularity)),
        granularity=granularity,
        scale_rounding="rceil",
    )


def mxfp8_dequantize(inputs: NodeInputs) -> Operation:
    q, q_type, shape = inputs.data(0, "input")
    if q_type != "f8E4M3FN":
        raise Unsupported(f"input type {q_type} is not f8E4M3FN")
    granularity = _block_of(inputs, shape, 32)
    scale = inputs.param(1, "scale")
    assert scale is not None
    out = qopt_type(inputs.attrs.get("output_dtype", TensorProto.FLOAT16))
    if out not in _EXPRESSED:
        raise Unsupported(f"output_dtype {out} is not f32, f16 or bf16")
    param_shape = _param_shape(shape, granularity)
    if scale.const is not None:
        codes = np.asarray(scale.const).astype(np.uint8).reshape(param_shape)
        if np.any(codes == 255):
            raise Unsupported(f"constant E8M0 scale '{scale.name}' holds the NaN code 255")
        values = np.ldexp(np.float32(1), codes.astype(np.int32) - 127).astype(np.float32)
        scale_arg: Any = _dense(values, f32)
    else:
        scale_arg = _runtime_param(inputs, scale, 1, param_shape, "scale")
        element = scale_arg.type.element_type  # pyright: ignore[reportAttributeAccessIssue]
        if formats.type_name(element) != "f8E8M0FNU":
            raise Unsupported(
                f"runtime scale '{scale.name}' is not the E8M0 result of TRT_MXFP8DynamicQuantize"
            )
    return DequantizeOp(
        q,
        TensorType(formats.parse_type_name(out), shape),
        scale=scale_arg,
        granularity=granularity,
    )


def fp4_dynamic_quantize(inputs: NodeInputs) -> Operation:
    x, x_type, shape = inputs.data(0, "input")
    if x_type not in _EXPRESSED:
        raise Unsupported(f"input type {x_type} is not f32, f16 or bf16")
    scale_type = inputs.attrs.get("scale_type", TensorProto.FLOAT8E4M3FN)
    if scale_type != TensorProto.FLOAT8E4M3FN:
        raise Unsupported(f"scale_type {type_label(scale_type)}: NVFP4 block scales are e4m3")
    granularity = _block_of(inputs, shape, 16)
    dq = inputs.param(1, "double-quant scale")
    assert dq is not None
    if dq.const is not None:
        value = np.asarray(dq.const).astype(np.float32)
        if value.size != 1 or not (np.isfinite(value).all() and (value > 0).all()):
            raise Unsupported(f"double-quant scale '{dq.name}' is not one finite number > 0")
        dq_arg: Any = float(value.ravel()[0])
    else:
        dq_arg = _runtime_param(inputs, dq, 1, (), "double-quant scale")
    return DynamicQuantizeOp(
        x,
        TensorType(formats.parse_type_name("f4E2M1FN"), shape),
        TensorType(formats.parse_type_name("f8E4M3FN"), _param_shape(shape, granularity)),
        granularity=granularity,
        double_quant=dq_arg,
    )


def _placeholder(inputs: NodeInputs) -> Operation:
    raise Unsupported("TRT_FP4QDQ is a ModelOpt export placeholder with no defined numerics")


Translation = Callable[[NodeInputs], Operation]

TRANSLATIONS: dict[tuple[str, str], Translation] = {
    ("", "QuantizeLinear"): quantize_linear,
    ("", "DequantizeLinear"): dequantize_linear,
    ("", "DynamicQuantizeLinear"): dynamic_quantize_linear,
    ("trt", "TRT_FP8QuantizeLinear"): lambda i: quantize_linear(i, storage="f8E4M3FN"),
    ("trt", "TRT_FP8DequantizeLinear"): lambda i: dequantize_linear(i, storage="f8E4M3FN"),
    ("trt", "TRT_INT4QuantizeLinear"): quantize_linear,
    ("trt", "TRT_INT4DequantizeLinear"): dequantize_linear,
    ("trt", "TRT_MXFP8DynamicQuantize"): mxfp8_dynamic_quantize,
    ("trt", "TRT_MXFP8DequantizeLinear"): mxfp8_dequantize,
    ("trt", "TRT_FP4DynamicQuantize"): fp4_dynamic_quantize,
    ("trt", "TRT_FP4QDQ"): _placeholder,
}
"""(domain, op_type) -> translation; ``ai.onnx`` is spelled ``""``."""
