"""Random Q/DQ chains through ``onnx-simplify``: whatever fold-quant folds must give the
same bits in onnxruntime (no graph optimizations) as the original model, on every input
code and on float inputs that hit ties. fold-quant proves its folds under qopt's
semantics; this holds them against an independent implementation of ONNX's."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from qopt.onnx.simplify import simplify_model
from tests.onnx.test_simplify import inputs_for, run_plain, same_bits

STORAGES = {
    "i8": (np.int8, T.INT8),
    "u8": (np.uint8, T.UINT8),
    "i16": (np.int16, T.INT16),
    "i4": (ml_dtypes.int4, T.INT4),
    "u4": (ml_dtypes.uint4, T.UINT4),
}
SCALES = st.one_of(
    st.sampled_from([2.0**k for k in range(-8, 4)]),
    st.sampled_from([0.05, 0.1, 0.3, 1 / 3, 0.0123]),
    st.floats(2.0**-10, 10.0, width=32),
)


@st.composite
def chains(draw):
    """c0 (codes) or x -> Q -> c0, then [DQ -> Q] x n, then DQ -> y."""
    n = draw(st.integers(1, 3))
    from_float = draw(st.booleans())
    kinds = [draw(st.sampled_from(sorted(STORAGES))) for _ in range(n + 1)]
    if not from_float and kinds[0] in ("i4", "u4"):
        kinds[0] = "i8"  # onnxruntime takes no 4-bit numpy inputs
    nodes, inits = [], []
    for k, kind in enumerate(kinds):
        dtype, _ = STORAGES[kind]
        info = (
            ml_dtypes.iinfo(dtype)
            if dtype in (ml_dtypes.int4, ml_dtypes.uint4)
            else np.iinfo(dtype)
        )
        scale = draw(SCALES)
        zp = draw(st.integers(int(info.min), int(info.max)))
        # a repeated parameter set makes identity pairs, as real double-QDQ graphs have
        if k and draw(st.booleans()):
            scale, zp, kinds[k] = inits[-2][1], inits[-1][1], kinds[k - 1]
            dtype = STORAGES[kinds[k]][0]
        inits += [(f"s{k}", scale), (f"z{k}", zp)]
    tensors = [
        numpy_helper.from_array(np.asarray(v, np.float32), name)
        if name.startswith("s")
        else numpy_helper.from_array(np.asarray(v).astype(STORAGES[kinds[int(name[1:])]][0]), name)
        for name, v in inits
    ]
    shape = [4, 64]
    if from_float:
        nodes.append(helper.make_node("QuantizeLinear", ["x", "s0", "z0"], ["c0"], name="q0"))
        inputs = [helper.make_tensor_value_info("x", T.FLOAT, shape)]
    else:
        inputs = [helper.make_tensor_value_info("c0", STORAGES[kinds[0]][1], shape)]
    for k in range(1, n + 1):
        nodes.append(
            helper.make_node(
                "DequantizeLinear",
                [f"c{k - 1}", f"s{k - 1}", f"z{k - 1}"],
                [f"f{k}"],
                name=f"dq{k}",
            )
        )
        nodes.append(
            helper.make_node("QuantizeLinear", [f"f{k}", f"s{k}", f"z{k}"], [f"c{k}"], name=f"q{k}")
        )
    # onnxruntime hands no 4-bit tensors to numpy: the chain ends in a DequantizeLinear
    nodes.append(
        helper.make_node("DequantizeLinear", [f"c{n}", f"s{n}", f"z{n}"], ["y"], name="dq_out")
    )
    outputs = [helper.make_tensor_value_info("y", T.FLOAT, shape)]
    graph = helper.make_graph(nodes, "chain", inputs, outputs, tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(model=chains(), seed=st.integers(0, 2**16))
def test_random_chains_keep_every_bit_in_onnxruntime(model, seed):
    result = simplify_model(model, "chain")
    event(f"removed {len(result.removed)} node(s)")
    onnx.checker.check_model(result.model, full_check=True)
    feeds = inputs_for(model, seed)
    want, got = run_plain(model, feeds), run_plain(result.model, feeds)
    for w, g in zip(want, got):
        assert same_bits(g, w), (
            f"removed {result.removed}\n{onnx.helper.printable_graph(result.model.graph)}"
        )
