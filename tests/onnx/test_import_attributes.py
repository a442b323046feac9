"""Q/DQ attributes and types the node suite does not cover, imported and JIT-compiled
against onnx's reference evaluator bit for bit: E8M0 scales with ``output_dtype``,
``precision``, ``saturate=0``, f16 / bf16 scales and outputs, per-axis with a negative
axis, DynamicQuantizeLinear feeding a DequantizeLinear (runtime parameters), and what is
refused (f16 division, int32 data) with the node named."""

from __future__ import annotations

import warnings

import ml_dtypes
import numpy as np
import pytest

pytest.importorskip("onnx")

from onnx import TensorProto as T
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import qopt
from qopt.onnx.importer import import_model
from qopt.onnx.model import OnnxError
from tests.support.bits import assert_same_bits

SHAPE = [4, 32]


def single(node, inits, x_type, y_types, opset=25):
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", x_type, SHAPE)],
        [helper.make_tensor_value_info(n, t, SHAPE) for n, t in y_types],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=11)


def floats(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(SHAPE) * rng.choice([0.5, 8, 300], SHAPE)
    t = rng.integers(-40, 40, SHAPE) + 0.5
    x = np.where(rng.random(SHAPE) < 0.3, t * 0.25, x)
    x.ravel()[:4] = [0.0, -0.0, 3e4, -3e4]  # finite in f16: the reference casts inf undefined
    return x.astype(dtype)


def compare(model, *args):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        want = ReferenceEvaluator(model).run(None, {"x": args[0]})
    got = qopt.compile(import_model(model, "m.onnx").module)(*args)
    got = got if isinstance(got, tuple) else (got,)
    for k, (g, w) in enumerate(zip(got, want)):
        assert_same_bits(g, np.asarray(w), f"output {k}")


def test_dequantize_e8m0_scale_with_output_dtype():
    codes = np.asarray([120, 127, 130, 133], np.uint8).view(ml_dtypes.float8_e8m0fnu)
    node = helper.make_node(
        "DequantizeLinear", ["x", "s"], ["y"], axis=0, output_dtype=T.FLOAT, name="dq"
    )
    model = single(node, [numpy_helper.from_array(codes, "s")], T.FLOAT8E4M3FN, [("y", T.FLOAT)])
    x = np.arange(128, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn).reshape(SHAPE)
    compare(model, x)


@pytest.mark.parametrize("out", [T.FLOAT16, T.BFLOAT16])
def test_dequantize_to_f16_bf16(out):
    dtype = helper.tensor_dtype_to_np_dtype(out)
    node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=-1, name="dq")
    scales = np.linspace(0.01, 3, 32).astype(dtype)
    model = single(
        node,
        [
            numpy_helper.from_array(scales, "s"),
            numpy_helper.from_array(np.full(32, 5, np.int8), "z"),
        ],
        T.INT8,
        [("y", out)],
    )
    x = (np.arange(128) - 64).astype(np.int8).reshape(SHAPE)
    compare(model, x)


@pytest.mark.parametrize("storage", [T.FLOAT8E4M3FN, T.FLOAT8E5M2])
def test_quantize_without_saturation(storage):
    node = helper.make_node(
        "QuantizeLinear", ["x", "s"], ["y"], saturate=0, output_dtype=storage, name="q"
    )
    model = single(
        node, [numpy_helper.from_array(np.asarray(0.5, np.float32), "s")], T.FLOAT, [("y", storage)]
    )
    compare(model, floats(1) * 1000)


def test_quantize_with_precision_float_of_f16_input():
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], precision=T.FLOAT, name="q")
    model = single(
        node,
        [
            numpy_helper.from_array(np.asarray(0.3, np.float16), "s"),
            numpy_helper.from_array(np.asarray(-3, np.int8), "z"),
        ],
        T.FLOAT16,
        [("y", T.INT8)],
    )
    compare(model, floats(2, np.float16))


def test_dynamic_quantize_feeding_dequantize():
    graph = helper.make_graph(
        [
            helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"], name="dyn"),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq"),
        ],
        "g",
        [helper.make_tensor_value_info("x", T.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", T.FLOAT, SHAPE)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    compare(model, floats(3))


def test_f16_division_is_refused_with_the_node_named():
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q_half")
    model = single(
        node,
        [
            numpy_helper.from_array(np.asarray(0.3, np.float16), "s"),
            numpy_helper.from_array(np.asarray(0, np.int8), "z"),
        ],
        T.FLOAT16,
        [("y", T.INT8)],
    )
    with pytest.raises(OnnxError, match="m.onnx: node 'q_half' .*f16"):
        import_model(model, "m.onnx")
    assert list(import_model(model, "m.onnx", keep_unsupported=True).kept) == [0]


def test_int32_dequantize_is_refused():
    node = helper.make_node("DequantizeLinear", ["x", "s"], ["y"], name="dq_i32")
    model = single(
        node, [numpy_helper.from_array(np.asarray(0.5, np.float32), "s")], T.INT32, [("y", T.FLOAT)]
    )
    with pytest.raises(OnnxError, match="dq_i32.*i32"):
        import_model(model, "m.onnx")
