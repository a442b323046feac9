"""Upstream MLIR's quant ops in qopt's ``quant`` dialect, with upstream's syntax and
verifier rules (``mlir/lib/Dialect/Quant/IR/QuantOps.cpp``):

    %q = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.1:3>>
    %x = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 0.1:3>> to tensor<4xf32>
    %i = quant.scast %q : tensor<4x!quant.uniform<i8:f32, 0.1:3>> to tensor<4xi8>

Their meaning (upstream's op docs): ``qcast`` is ``clamp(convert(x / scale + zero_point))``
with the zero point added before rounding, ``dcast`` is ``(convert(q) - zero_point) *
scale``, ``scast`` reinterprets storage bits. ``--convert-quant-types`` rewrites them into
qopt's quantize / dequantize (docs/semantics.md section 3); the messages here state
upstream's rules in qopt's words.
"""

from __future__ import annotations

from xdsl.dialects.builtin import (
    AnyFloat,
    IntegerType,
    Signedness,
    TensorType,
    UnrankedTensorType,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import IRDLOperation, irdl_op_definition, operand_def, result_def, traits_def
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from qopt.qdialect.upstream_types import UPSTREAM_TYPES, QuantSpec, UniformQuantType


def element_of(t: Attribute) -> Attribute:
    """The element type of a tensor (ranked or not), or the type itself (a scalar)."""
    return t.element_type if isinstance(t, TensorType | UnrankedTensorType) else t


def is_quantized(t: Attribute) -> bool:
    return isinstance(element_of(t), UPSTREAM_TYPES)


def _is_tensor(t: Attribute) -> bool:
    return isinstance(t, TensorType | UnrankedTensorType)


def _shape_key(t: Attribute) -> object:
    """What must match between input and result: scalar, unranked or the exact shape."""
    if isinstance(t, TensorType):
        return tuple(t.get_shape())
    return "unranked" if _is_tensor(t) else "scalar"


def _check_same_shape(input: Attribute, result: Attribute) -> None:
    if _shape_key(input) != _shape_key(result):
        raise VerifyException(
            "input and result must be both scalars or both tensors of the same shape, got "
            f"{input} and {result}"
        )


def check_layout(spec: QuantSpec, container: Attribute) -> None:
    """Per-axis and sub-channel parameters against the tensor that holds the type."""
    if spec.kind != "uniform" or spec.layout == "layer":
        return
    name = "per-axis" if spec.layout == "axis" else "sub-channel"
    if not _is_tensor(container):
        raise VerifyException(f"scalar types may not use {name} quantization")
    if not isinstance(container, TensorType):
        if spec.layout == "axis":
            return
        raise VerifyException("a tensor of a sub-channel quantized type must be ranked")
    shape = tuple(container.get_shape())
    if spec.layout == "axis":
        axis = spec.axes[0]
        if axis >= len(shape):
            raise VerifyException(
                f"quantized dimension {axis} must be less than the tensor rank {len(shape)}"
            )
        if shape[axis] >= 0 and shape[axis] != len(spec.scales):
            raise VerifyException(
                f"quantized dimension size {shape[axis]} does not match the number of "
                f"scales {len(spec.scales)}"
            )
        return
    blocks = dict(zip(spec.axes, spec.block_sizes, strict=True))
    for axis, block in blocks.items():
        if axis >= len(shape):
            raise VerifyException(
                f"quantized dimension {axis} must be less than the tensor rank {len(shape)}"
            )
        if shape[axis] >= 0 and shape[axis] % block:
            raise VerifyException(
                f"tensor dimension size {shape[axis]} at axis {axis} must be divisible by "
                f"the block size {block}"
            )
    if len(spec.shape) != len(shape):
        raise VerifyException(
            f"rank {len(spec.shape)} of the scales must match the rank {len(shape)} of the tensor"
        )
    for axis, (n, k) in enumerate(zip(shape, spec.shape, strict=True)):
        expected = n // blocks.get(axis, n) if n >= 0 else k
        if k != expected:
            raise VerifyException(
                f"dimension size {k} of the scales at axis {axis} must be the tensor's "
                f"dimension {n} divided by the block size {blocks.get(axis, n)}, {expected}"
            )


class _CastOp(IRDLOperation):
    """Shared syntax: ``%r = quant.qcast %x : f32 to !quant.uniform<...>``."""

    input = operand_def(Attribute)
    result = result_def(Attribute)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `to` type($result)"

    def __init__(self, input: SSAValue | Operation, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])


def _check_float_quantized(op: _CastOp, float_type: Attribute, quantized: Attribute) -> None:
    spec = element_of(quantized)
    assert isinstance(spec, UPSTREAM_TYPES)
    if spec.data.expressed != element_of(float_type):
        raise VerifyException(
            f"expressed type {spec.data.expressed} of the quantized type must match the "
            f"float type {element_of(float_type)}"
        )
    _check_same_shape(op.input.type, op.result.type)
    check_layout(spec.data, op.input.type)


@irdl_op_definition
class QuantizeCastOp(_CastOp):
    """``quant.qcast``: float -> quantized, ``clamp(convert(x / scale + zero_point))``."""

    name = "quant.qcast"

    def verify_(self) -> None:
        if not isinstance(element_of(self.input.type), AnyFloat):
            raise VerifyException(
                f"input must be a float scalar or a tensor of floats, got {self.input.type}"
            )
        if not is_quantized(self.result.type):
            raise VerifyException(
                f"result must be a quantized scalar or tensor of a quantized type, got "
                f"{self.result.type}"
            )
        _check_float_quantized(self, self.input.type, self.result.type)


@irdl_op_definition
class DequantizeCastOp(_CastOp):
    """``quant.dcast``: quantized -> float, ``(convert(q) - zero_point) * scale``."""

    name = "quant.dcast"

    def verify_(self) -> None:
        if not is_quantized(self.input.type):
            raise VerifyException(
                f"input must be a quantized scalar or tensor of a quantized type, got "
                f"{self.input.type}"
            )
        if not isinstance(element_of(self.result.type), AnyFloat):
            raise VerifyException(
                f"result must be a float scalar or a tensor of floats, got {self.result.type}"
            )
        _check_float_quantized(self, self.result.type, self.input.type)


def _signless_or_quantized(t: Attribute) -> bool:
    e = element_of(t)
    if isinstance(e, IntegerType):
        return e.signedness.data == Signedness.SIGNLESS
    return isinstance(e, UPSTREAM_TYPES)


@irdl_op_definition
class StorageCastOp(_CastOp):
    """``quant.scast``: quantized <-> its signless integer storage, bits unchanged."""

    name = "quant.scast"

    def verify_(self) -> None:
        for role, t in (("input", self.input.type), ("result", self.result.type)):
            if not _signless_or_quantized(t):
                raise VerifyException(
                    f"{role} must be a signless integer or a quantized type (scalar or "
                    f"tensor), got {t}"
                )
        if is_quantized(self.input.type) == is_quantized(self.result.type):
            raise VerifyException(
                "input must be integer and result quantized, or the other way round"
            )
        _check_same_shape(self.input.type, self.result.type)
        quantized, integer = (
            (self.input.type, self.result.type)
            if is_quantized(self.input.type)
            else (self.result.type, self.input.type)
        )
        spec = element_of(quantized).data
        storage = spec.storage
        # upstream's storage type of si8 / ui8 is signed / unsigned, never signless
        signless = storage is not None and storage.spelling[:2] not in ("si", "ui")
        if not signless or storage.is_float or element_of(integer) != IntegerType(storage.width):
            raise VerifyException(
                f"storage type of {element_of(quantized)} must match the integer type "
                f"{element_of(integer)}"
            )
        check_layout(spec, self.input.type)


UPSTREAM_OPS = (QuantizeCastOp, DequantizeCastOp, StorageCastOp)


def uniform_of(t: Attribute) -> QuantSpec | None:
    """The spec of a ``!quant.uniform`` element type (of a tensor or a scalar), or None."""
    e = element_of(t)
    return e.data if isinstance(e, UniformQuantType) else None
