"""Optional: ``quantize_onnx`` against NVIDIA ModelOpt's own INT4 ONNX flow (``rtn_dq``),
byte for byte on the MatMul weights (codes, scales, DequantizeLinear attributes and names).

Skips without ``nvidia-modelopt[onnx]`` (the ``modelopt`` extra). ModelOpt blocks every
constant B along axis 0, also a ``Gemm`` with ``transB=1`` whose reduction axis is 1; qopt
blocks the reduction axis there, so Gemm weights with ``transB=1`` are compared only for
shape, not bytes.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from qopt.onnx_quantize.quantize import quantize_onnx
from qopt.onnx_quantize.recipes import INT8, int4
from tests.onnx_quantize import models

int4_flow = pytest.importorskip("modelopt.onnx.quantization.int4")


def _modelopt(model, block, **kwargs):
    return int4_flow.quantize(
        model,
        calibration_method="rtn_dq",
        block_size=block,
        nodes_to_exclude=[],
        log_level="ERROR",
        **kwargs,
    )


def _by_name(model):
    inits = {i.name: i for i in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return inits, nodes


def _assert_same_weight(ours, theirs, name):
    (oi, on), (ti, tn) = _by_name(ours), _by_name(theirs)
    for tensor in (f"{name}_i4", f"{name}_scale"):
        a, b = oi[tensor], ti[tensor]
        assert a.data_type == b.data_type, tensor
        assert list(a.dims) == list(b.dims), tensor
        assert a.raw_data == b.raw_data, f"{tensor}: bytes differ"
    node = f"{name}_DequantizeLinear"
    assert on[node].input == tn[node].input and on[node].output == tn[node].output
    assert {a.name: onnx.helper.get_attribute_value(a) for a in on[node].attribute} == {
        a.name: onnx.helper.get_attribute_value(a) for a in tn[node].attribute
    }


@pytest.mark.parametrize(("k", "block"), [(256, 128), (300, 128), (96, 32), (64, 128)])
def test_int4_bytes_match_modelopt(k, block):
    model = models.mlp(k=k, seed=k)
    w1 = onnx.numpy_helper.to_array(model.graph.initializer[0]).copy()
    w1[:block, 0] = 0.0  # a zero block: ModelOpt's 1e-5 scale
    w1[:block, 1] *= 1e-7  # a clipped scale
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(w1, "W1"))
    ours = quantize_onnx(model, int4(block)).model
    theirs = _modelopt(model, block)
    _assert_same_weight(ours, theirs, "W1")


def test_int8_layers_bytes_match_modelopt():
    model = models.mlp(seed=9)
    ours = quantize_onnx(model, int4(128), precision={"W1": (8, None)}).model
    theirs = _modelopt(model, 128, layers_8bit="mm1")
    _assert_same_weight(ours, theirs, "W1")
    codes = _by_name(ours)[0]["W1_i4"]
    assert onnx.TensorProto.DataType.Name(codes.data_type) == INT8.onnx_type


def test_modelopt_blocks_gemm_transb_on_axis_0():
    """Documents the one deliberate difference (see the module docstring)."""
    model = models.mlp()
    (oi, on), (ti, tn) = (
        _by_name(quantize_onnx(model, int4(128)).model),
        _by_name(_modelopt(model, 128)),
    )
    ours = {a.name: a.i for a in on["W2_DequantizeLinear"].attribute}
    theirs = {a.name: a.i for a in tn["W2_DequantizeLinear"].attribute}
    assert ours["axis"] == 1 and theirs["axis"] == 0
    assert list(oi["W2_scale"].dims) == [48, 1] and list(ti["W2_scale"].dims) == [1, 96]
    assert np.asarray(oi["W2_i4"].dims).tolist() == np.asarray(ti["W2_i4"].dims).tolist()
