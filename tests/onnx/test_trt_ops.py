"""TensorRT's custom Q/DQ ops as nvidia-modelopt exports them (domain ``trt``; names and
attributes from modelopt/torch/quantization/export_onnx.py and the exporters that rewrite
them into standard ops), imported and JIT-compiled, against the numpy oracle of the
semantics ModelOpt gives them. TensorRT itself is not here to run them."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

pytest.importorskip("onnx")

from onnx import TensorProto as T
from onnx import helper, numpy_helper

import qopt
from qopt.onnx.importer import import_model
from qopt.onnx.model import OnnxError
from tests.support import oracle
from tests.support.bits import assert_same_bits

SHAPE = [8, 64]


def trt_model(nodes, inits, inputs, outputs):
    graph = helper.make_graph(
        nodes,
        "trt",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        inits,
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("trt", 1)],
        ir_version=9,
    )


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(SHAPE) * rng.choice([0.01, 1, 30, 1000], SHAPE)).astype(np.float32)
    x.ravel()[:6] = [0.0, -0.0, 448.0, -449.0, 1e30, 2.0**-140]
    return x


def run(model, *args):
    kernel = qopt.compile(import_model(model, "trt.onnx").module)
    out = kernel(*args)
    return out if isinstance(out, tuple) else (out,)


def test_fp8_quantize_dequantize():
    scale = np.float32(0.37)
    model = trt_model(
        [
            helper.make_node("TRT_FP8QuantizeLinear", ["x", "s"], ["q"], domain="trt", name="q"),
            helper.make_node("TRT_FP8DequantizeLinear", ["q", "s"], ["y"], domain="trt", name="dq"),
        ],
        [numpy_helper.from_array(np.asarray(scale), "s")],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.FLOAT, SHAPE)],
    )
    x = data()
    (y,) = run(model, x)
    q = oracle.quantize(x, scale, dtype=ml_dtypes.float8_e4m3fn, saturate=True)
    assert_same_bits(y, oracle.dequantize(q, scale))


def test_int4_quantize_dequantize_blocked():
    rng = np.random.default_rng(1)
    scales = rng.uniform(0.01, 0.2, (8, 4)).astype(np.float32)
    zps = np.zeros((8, 4), ml_dtypes.int4)
    attrs = {"axis": 1, "block_size": 16}
    model = trt_model(
        [
            helper.make_node(
                "TRT_INT4QuantizeLinear", ["x", "s", "z"], ["q"], domain="trt", name="q", **attrs
            ),
            helper.make_node(
                "TRT_INT4DequantizeLinear", ["q", "s", "z"], ["y"], domain="trt", name="dq", **attrs
            ),
        ],
        [numpy_helper.from_array(scales, "s"), numpy_helper.from_array(zps, "z")],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.FLOAT, SHAPE)],
    )
    x = data(2)
    (y,) = run(model, x)
    q = oracle.quantize(x, scales, zps, dtype=ml_dtypes.int4, **attrs)
    assert_same_bits(y, oracle.dequantize(q, scales, zps, **attrs))


def test_mxfp8_dynamic_quantize_and_dequantize():
    model = trt_model(
        [
            helper.make_node(
                "TRT_MXFP8DynamicQuantize",
                ["x"],
                ["q", "sx"],
                domain="trt",
                name="mx",
                axis=-1,
                block_size=32,
                output_dtype=T.FLOAT8E4M3FN,
            ),
            helper.make_node(
                "TRT_MXFP8DequantizeLinear",
                ["q", "sx"],
                ["y"],
                domain="trt",
                name="mx_dq",
                axis=-1,
                block_size=32,
                output_dtype=T.FLOAT,
            ),
        ],
        [],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.FLOAT, SHAPE)],
    )
    x = data(3)
    (y,) = run(model, x)
    q, s = oracle.dynamic_quantize(
        x,
        dtype=ml_dtypes.float8_e4m3fn,
        scale_dtype=ml_dtypes.float8_e8m0fnu,
        axis=1,
        block_size=32,
        scale_rounding="rceil",
    )
    assert_same_bits(y, oracle.dequantize(q, s, axis=1, block_size=32))


def test_fp4_dynamic_quantize():
    double_quant = np.float32(30.0 / 6 / 448)
    model = trt_model(
        [
            helper.make_node(
                "TRT_FP4DynamicQuantize",
                ["x", "dq"],
                ["q", "sx"],
                domain="trt",
                name="fp4",
                axis=-1,
                block_size=16,
                scale_type=T.FLOAT8E4M3FN,
            )
        ],
        [numpy_helper.from_array(np.asarray(double_quant), "dq")],
        [("x", T.FLOAT, SHAPE)],
        [("q", T.FLOAT4E2M1, SHAPE), ("sx", T.FLOAT8E4M3FN, [8, 4])],
    )
    x = data(4)
    q, s = run(model, x)
    want_q, want_s = oracle.dynamic_quantize(
        x,
        dtype=ml_dtypes.float4_e2m1fn,
        scale_dtype=ml_dtypes.float8_e4m3fn,
        axis=1,
        block_size=16,
        double_quant_scale=double_quant,
    )
    assert_same_bits(q, want_q)
    assert_same_bits(s, want_s)


def test_fp4_qdq_placeholder_is_not_computed():
    model = trt_model(
        [helper.make_node("TRT_FP4QDQ", ["x"], ["y"], domain="trt", name="ph", block_size=16)],
        [],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.FLOAT, SHAPE)],
    )
    with pytest.raises(OnnxError, match="'ph'.*placeholder"):
        import_model(model, "trt.onnx")
    kept = import_model(model, "trt.onnx", keep_unsupported=True)
    assert list(kept.kept) == [0]
