"""The ``onnx`` dialect: one op, ``onnx.node``, that carries an ONNX node qopt does not
compute, so an imported model can be written back unchanged except for its Q/DQ chains.

    %y = "onnx.node"(%x, %w) <{op_type = "Conv", domain = "", node = "CgF4EgF3..."}>
           : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32>

``node`` is the serialized ``NodeProto`` (base64), so attributes, subgraphs and names come
back byte for byte; ``op_type`` and ``domain`` repeat its kind for readers of the IR. The
operands are the node's inputs in order (an omitted optional input is left out and its
position is in the stored node), the results its outputs. Passes treat it as an opaque op
with unknown effects; lower-quant and codegen do not take it.
"""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Attribute, Dialect
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    prop_def,
    var_operand_def,
    var_result_def,
)


@irdl_op_definition
class NodeOp(IRDLOperation):
    """An ONNX node kept as it is (see the module docstring)."""

    name = "onnx.node"
    inputs = var_operand_def(Attribute)
    outputs = var_result_def(Attribute)
    op_type = prop_def(StringAttr)
    domain = prop_def(StringAttr)
    node = prop_def(StringAttr)


Onnx = Dialect("onnx", [NodeOp], [])
