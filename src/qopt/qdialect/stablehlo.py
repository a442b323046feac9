"""A minimal ``stablehlo`` dialect: ``uniform_quantize`` and ``uniform_dequantize`` only,
in generic form, on upstream's ``!quant.uniform`` types (upstream_types.py):

    %q = "stablehlo.uniform_quantize"(%x) : (tensor<4xf32>) -> tensor<4x!quant.uniform<i8:f32, 0.5:3>>
    %r = "stablehlo.uniform_quantize"(%q) : (tensor<4x!quant.uniform<i8:f32, 0.5:3>>)
           -> tensor<4x!quant.uniform<i8:f32, 0.25:-1>>          (a requantize)
    %x = "stablehlo.uniform_dequantize"(%q) : (tensor<4x!quant.uniform<i8:f32, 0.5:3>>) -> tensor<4xf32>

StableHLO's semantics (its specification): quantize is ``clamp(round_nearest_even(x /
scale + zero_point))`` in the expressed type, dequantize ``(q - zero_point) * scale``, and
a quantized operand of uniform_quantize is dequantized first. ``--convert-quant-types``
rewrites them into qopt's ops; the verifiers state the spec's constraints (same shape,
matching expressed types, per-tensor or per-axis parameters on ranked tensors).
"""

from __future__ import annotations

from xdsl.dialects.builtin import AnyFloat, TensorType
from xdsl.ir import Attribute, Dialect
from xdsl.irdl import IRDLOperation, irdl_op_definition, operand_def, result_def, traits_def
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from qopt.qdialect.upstream_ops import check_layout, element_of, uniform_of


def _check_tensors(op: IRDLOperation) -> None:
    a, r = op.operands[0].type, op.results[0].type
    if not isinstance(a, TensorType) or not isinstance(r, TensorType):
        raise VerifyException(f"operand and result must be ranked tensors, got {a} and {r}")
    if a.get_shape() != r.get_shape():
        raise VerifyException(f"operand and result must have the same shape, got {a} and {r}")


def _check_uniform(t: Attribute, role: str) -> None:
    spec = uniform_of(t)
    if spec is None:
        raise VerifyException(f"{role} must be a tensor of !quant.uniform, got {t}")
    if spec.layout == "sub_channel":
        raise VerifyException(f"{role}: StableHLO takes per-tensor or per-axis parameters only")
    if spec.storage is not None and spec.storage.spelling.startswith("si"):
        raise VerifyException(
            f"{role}: StableHLO's quantized storage is signless or unsigned, not "
            f"{spec.storage.spelling}"
        )
    check_layout(spec, t)


@irdl_op_definition
class UniformQuantizeOp(IRDLOperation):
    """Float -> quantized, or quantized -> quantized (dequantize, then quantize)."""

    name = "stablehlo.uniform_quantize"
    operand = operand_def(Attribute)
    result = result_def(Attribute)
    traits = traits_def(Pure())

    def verify_(self) -> None:
        _check_tensors(self)
        _check_uniform(self.result.type, "result")
        expressed = uniform_of(self.result.type).expressed
        if uniform_of(self.operand.type) is not None:
            _check_uniform(self.operand.type, "operand")
            source = uniform_of(self.operand.type).expressed
        elif isinstance(element_of(self.operand.type), AnyFloat):
            source = element_of(self.operand.type)
        else:
            raise VerifyException(
                f"operand must be a tensor of floats or of !quant.uniform, got {self.operand.type}"
            )
        if source != expressed:
            raise VerifyException(
                f"expressed type {expressed} of the result must match the operand's {source}"
            )


@irdl_op_definition
class UniformDequantizeOp(IRDLOperation):
    """Quantized -> its expressed float type."""

    name = "stablehlo.uniform_dequantize"
    operand = operand_def(Attribute)
    result = result_def(Attribute)
    traits = traits_def(Pure())

    def verify_(self) -> None:
        _check_tensors(self)
        _check_uniform(self.operand.type, "operand")
        expressed = uniform_of(self.operand.type).expressed
        if element_of(self.result.type) != expressed:
            raise VerifyException(
                f"result element type {element_of(self.result.type)} must be the operand's "
                f"expressed type {expressed}"
            )


StableHLO = Dialect("stablehlo", [UniformQuantizeOp, UniformDequantizeOp], [])
