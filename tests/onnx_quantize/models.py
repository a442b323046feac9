"""Small synthetic ONNX models for the quantize-onnx tests (made here, nothing downloaded)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32 = np.float32


def mlp(
    opset: int = 17,
    k: int = 256,
    hidden: int = 96,
    out: int = 48,
    dtype: type = F32,
    seed: int = 0,
) -> onnx.ModelProto:
    """``y = Gemm(relu(x @ W1), W2, b, transB=1)``, a symbolic batch; W1 ``[k, hidden]``
    (MatMul, K axis 0), W2 ``[out, hidden]`` (Gemm transB=1, K axis 1)."""
    rng = np.random.default_rng(seed)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    inits = [
        numpy_helper.from_array(rng.standard_normal((k, hidden)).astype(dtype), "W1"),
        numpy_helper.from_array((rng.standard_normal((out, hidden)) * 0.1).astype(dtype), "W2"),
        numpy_helper.from_array(rng.standard_normal(out).astype(dtype), "b"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"], "mm1"),
        helper.make_node("Relu", ["h"], ["r"], "relu"),
        helper.make_node("Gemm", ["r", "W2", "b"], ["y"], "gemm", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", elem, ["batch", k])],
        [helper.make_tensor_value_info("y", elem, ["batch", out])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def shared_and_odd(opset: int = 21) -> onnx.ModelProto:
    """A weight read by two MatMuls and an Add, a 3-D MatMul weight (kept), an int64
    initializer as B (kept), and a weight that is a graph input as well (kept)."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((32, 32)).astype(F32)
    w3 = rng.standard_normal((2, 32, 8)).astype(F32)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["a"], "first"),
        helper.make_node("MatMul", ["a", "W"], ["b"], "second"),
        helper.make_node("Add", ["b", "W"], ["c"], "add_w"),
        helper.make_node("MatMul", ["c", "W3"], ["d"], "batched"),
        helper.make_node("MatMul", ["x", "Win"], ["e"], "overridable"),
    ]
    graph = helper.make_graph(
        nodes,
        "odd",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [32, 32]),
            helper.make_tensor_value_info("Win", TensorProto.FLOAT, [32, 4]),
        ],
        [
            helper.make_tensor_value_info("d", TensorProto.FLOAT, [2, 32, 8]),
            helper.make_tensor_value_info("e", TensorProto.FLOAT, [32, 4]),
        ],
        [
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(w3, "W3"),
            numpy_helper.from_array(rng.standard_normal((32, 4)).astype(F32), "Win"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)
