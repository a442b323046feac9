"""Synthetic Q/DQ models for the ONNX tests: chains, branches, shared scales, per-axis,
blocked, fp8 and int4, each with the number of Q/DQ nodes exact folding removes."""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper


@dataclass(frozen=True)
class Case:
    model: onnx.ModelProto
    removed: int
    """Q/DQ nodes onnx-simplify removes."""
    refused: int
    """Folds it reports as refused."""


def f32(name, value):
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def typed(name, value, dtype):
    return numpy_helper.from_array(np.asarray(value).astype(dtype), name)


def make(nodes, inits, inputs, outputs, opset=21) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def q(x, s, z, y, name, **attrs):
    return helper.make_node("QuantizeLinear", [x, s, z], [y], name=name, **attrs)


def dq(x, s, z, y, name, **attrs):
    return helper.make_node("DequantizeLinear", [x, s, z], [y], name=name, **attrs)


SHAPE = [4, 64]


def double_qdq(s2: float, zp_dtype=np.int8, elem=T.INT8) -> onnx.ModelProto:
    """x -> Q1 -> DQ1 -> Q2 -> DQ2 -> y (onnxruntime's double-QDQ pattern)."""
    return make(
        [
            q("x", "s1", "z", "q1", "q1"),
            dq("q1", "s1", "z", "d1", "dq1"),
            q("d1", "s2", "z", "q2", "q2"),
            dq("q2", "s2", "z", "y", "dq2"),
        ],
        [f32("s1", 0.05), f32("s2", s2), typed("z", 3, zp_dtype)],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.FLOAT, SHAPE)],
    )


def requant_chain(exact: bool) -> onnx.ModelProto:
    """q (int8 input) -> DQ -> Q (i16 or i8) -> DQ -> Q (i8) -> y: a requantize chain."""
    mid_type, mid_zp = (np.int16, 1000) if exact else (np.int8, 1)
    mid_scale = 0.05 if exact else 0.07
    return make(
        [
            dq("q", "s_in", "z_in", "a", "dq1"),
            q("a", "s_mid", "z_mid", "m", "q1"),
            dq("m", "s_mid", "z_mid", "b", "dq2"),
            q("b", "s_out", "z_out", "y", "q2"),
        ],
        [
            f32("s_in", 0.05),
            typed("z_in", 3, np.int8),
            f32("s_mid", mid_scale),
            typed("z_mid", mid_zp, mid_type),
            f32("s_out", 0.1),
            typed("z_out", -2, np.int8),
        ],
        [("q", T.INT8, SHAPE)],
        [("y", T.INT8, SHAPE)],
    )


def branches() -> onnx.ModelProto:
    """One DQ feeding an identity Q, a rescaling Q and a Relu; a second output mid-chain."""
    return make(
        [
            q("x", "s", "z", "q1", "q1"),
            dq("q1", "s", "z", "d1", "dq1"),
            q("d1", "s", "z", "qa", "qa"),
            dq("qa", "s", "z", "ya", "dqa"),
            q("d1", "s2", "z", "qb", "qb"),
            dq("qb", "s2", "z", "yb", "dqb"),
            helper.make_node("Relu", ["d1"], ["yc"], name="relu"),
        ],
        [f32("s", 0.05), f32("s2", 0.2), typed("z", 3, np.int8)],
        [("x", T.FLOAT, SHAPE)],
        [
            ("ya", T.FLOAT, SHAPE),
            ("yb", T.FLOAT, SHAPE),
            ("yc", T.FLOAT, SHAPE),
            ("q1", T.INT8, SHAPE),
        ],
    )


def per_axis() -> onnx.ModelProto:
    scales = np.linspace(0.01, 0.5, 64).astype(np.float32)
    zps = (np.arange(64) % 7 - 3).astype(np.int8)
    return make(
        [
            q("x", "s", "z", "q1", "q1", axis=1),
            dq("q1", "s", "z", "d1", "dq1", axis=1),
            q("d1", "s", "z", "q2", "q2", axis=1),
            dq("q2", "s", "z", "y", "dq2", axis=1),
        ],
        [f32("s", scales), typed("z", zps, np.int8)],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.FLOAT, SHAPE)],
    )


def blocked() -> onnx.ModelProto:
    scales = np.linspace(0.02, 0.3, 4 * 4).reshape(4, 4).astype(np.float32)
    zps = np.zeros((4, 4), np.int8)
    return make(
        [
            q("x", "s", "z", "q1", "q1", axis=1, block_size=16),
            dq("q1", "s", "z", "d1", "dq1", axis=1, block_size=16),
            q("d1", "s", "z", "q2", "q2", axis=1, block_size=16),
            dq("q2", "s", "z", "y", "dq2", axis=1, block_size=16),
        ],
        [f32("s", scales), typed("z", zps, np.int8)],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.FLOAT, SHAPE)],
    )


def fp8() -> onnx.ModelProto:
    z = numpy_helper.from_array(np.zeros(1, ml_dtypes.float8_e4m3fn), "z")
    return make(
        [
            q("x", "s", "z", "q1", "q1"),
            dq("q1", "s", "z", "d1", "dq1"),
            q("d1", "s", "z", "q2", "q2"),
            dq("q2", "s", "z", "y", "dq2"),
        ],
        [f32("s", 0.125), z],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.FLOAT, SHAPE)],
    )


def int4() -> onnx.ModelProto:
    z = numpy_helper.from_array(np.asarray(-2, ml_dtypes.int4), "z")
    return make(
        [
            q("x", "s", "z", "q1", "q1"),
            dq("q1", "s", "z", "d1", "dq1"),
            q("d1", "s", "z", "q2", "q2"),
            dq("q2", "s", "z", "y", "dq2"),
        ],
        [f32("s", 0.25), z],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.FLOAT, SHAPE)],
    )


def shared_scales() -> onnx.ModelProto:
    """Two independent double-QDQ chains sharing one scale and zero point initializer, and a
    Constant-node scale."""
    return make(
        [
            helper.make_node("Constant", [], ["sc"], name="const_scale", value=f32("v", 0.05)),
            q("x", "s", "z", "q1", "q1"),
            dq("q1", "s", "z", "d1", "dq1"),
            q("d1", "sc", "z", "q2", "q2"),
            dq("q2", "sc", "z", "y", "dq2"),
            q("x2", "s", "z", "q3", "q3"),
            dq("q3", "s", "z", "y2", "dq3"),
        ],
        [f32("s", 0.05), typed("z", 0, np.uint8)],
        [("x", T.FLOAT, SHAPE), ("x2", T.FLOAT, SHAPE)],
        [("y", T.FLOAT, SHAPE), ("y2", T.FLOAT, SHAPE)],
    )


CASES = {
    "double_qdq_same": lambda: Case(double_qdq(0.05), removed=2, refused=0),
    "double_qdq_rescale": lambda: Case(double_qdq(0.1), removed=0, refused=1),
    "double_qdq_uint8": lambda: Case(double_qdq(0.05, np.uint8, T.UINT8), removed=2, refused=0),
    "requant_chain_exact": lambda: Case(requant_chain(True), removed=2, refused=0),
    "requant_chain_inexact": lambda: Case(requant_chain(False), removed=0, refused=1),
    "branches": lambda: Case(branches(), removed=1, refused=0),
    "per_axis": lambda: Case(per_axis(), removed=2, refused=0),
    "blocked": lambda: Case(blocked(), removed=2, refused=0),
    "fp8": lambda: Case(fp8(), removed=2, refused=0),
    "int4": lambda: Case(int4(), removed=2, refused=0),
    "shared_scales": lambda: Case(shared_scales(), removed=2, refused=0),
}
