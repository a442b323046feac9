"""The ONNX weight recipes, bit for bit: against ModelOpt's arithmetic (its ``find_scales`` /
``rtn`` written out in numpy) and against ``onnx.reference``'s QuantizeLinear with the same
scale, over shapes with partial, zero, tiny and tied blocks, for both reduction axes."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from qopt.onnx_quantize.recipes import (
    FP8,
    INT8,
    int4,
    parse_scheme,
    quantize_weight,
    recipe_for_bits,
)
from tests.support.bits import assert_same_bits

F32 = np.float32


def modelopt_find_scales_rtn(w: np.ndarray, block: int, bits: int):
    """ModelOpt 0.47 ``quant_utils.find_scales`` + ``rtn`` (axis 0, symmetric, alpha 1),
    transcribed: pad K to the block, amax per block, ``clip(amax * 1.0 / qmax, 1e-5)``,
    ``clip(rint(w / s), qmin, qmax)``."""
    k = w.shape[0]
    pad = -k % block
    wp = np.pad(w, [(0, pad), (0, 0)]).T
    qmax = 2 ** (bits - 1) - 1
    amax = np.abs(wp.reshape(-1, block)).max(axis=-1)
    s = np.clip((amax * 1.0) / qmax, 1e-5, None).reshape(wp.shape[0], -1).T
    q = np.rint(np.pad(w, [(0, pad), (0, 0)]) / s.repeat(block, axis=0)).clip(-qmax - 1, qmax)
    return q[:k].astype(np.int8), s


def unpack_int4(packed: np.ndarray, shape) -> np.ndarray:
    lo = (packed & 0x0F).astype(np.int8)
    hi = (packed >> 4).astype(np.int8)
    n = np.stack([lo, hi], axis=1).ravel()[: int(np.prod(shape))]
    return np.where(n > 7, n - 16, n).astype(np.int8).reshape(shape)


def weights(draw_shape, rng):
    w = rng.standard_normal(draw_shape).astype(F32)
    return w


SPECIAL = {
    "zero-block": lambda w: w.__setitem__((slice(0, 128), 0), 0.0),
    "tiny-block": lambda w: w.__setitem__((slice(0, 128), 1), 1e-6),
    "ties": lambda w: w.__setitem__(
        (slice(0, 8), 2), np.array([7, -7, 0.5, 1.5, 2.5, -2.5, 3.5, -0.5], F32)
    ),
    "neg-zero": lambda w: w.__setitem__((slice(0, 4), 3), -0.0),
    "subnormal": lambda w: w.__setitem__((slice(0, 4), 4), 1e-40),
}


@pytest.mark.parametrize("k_axis", [0, 1])
@pytest.mark.parametrize("shape", [(256, 16), (300, 5), (128, 8), (1, 1), (7, 3), (129, 2)])
@pytest.mark.parametrize("block", [128, 32, 16])
def test_int4_matches_modelopt(shape, block, k_axis):
    rng = np.random.default_rng(hash((shape, block)) % 2**32)
    w = rng.standard_normal(shape).astype(F32)
    for mutate in SPECIAL.values():
        if w.shape[0] >= 128 and w.shape[1] >= 5:
            mutate(w)
    view = w if k_axis == 0 else np.ascontiguousarray(w.T)
    qw = quantize_weight(view, int4(block), k_axis=k_axis)
    want_q, want_s = modelopt_find_scales_rtn(w, block, 4)
    if k_axis == 1:
        want_q, want_s = want_q.T, want_s.T
    assert (qw.axis, qw.block_size) == (k_axis, block)
    assert_same_bits(qw.scale, want_s.astype(F32), "scale")
    assert_same_bits(unpack_int4(qw.data, view.shape), np.ascontiguousarray(want_q), "codes")


@pytest.mark.parametrize("k_axis", [0, 1])
@pytest.mark.parametrize("shape", [(256, 16), (300, 5), (1, 1), (3, 7)])
def test_int8_matches_modelopt(shape, k_axis):
    rng = np.random.default_rng(7)
    w = rng.standard_normal(shape).astype(F32)
    w[:, 0] = 0.0  # a zero column gets ModelOpt's 1e-5
    view = w if k_axis == 0 else np.ascontiguousarray(w.T)
    qw = quantize_weight(view, INT8, k_axis=k_axis)
    want_q, want_s = modelopt_find_scales_rtn(w, shape[0], 8)
    want_q, want_s = (want_q, want_s.reshape(-1)) if k_axis == 0 else (want_q.T, want_s.T)
    assert qw.axis == 1 - k_axis and qw.block_size is None
    assert_same_bits(qw.scale, want_s.reshape(-1).astype(F32), "scale")
    assert_same_bits(qw.data.astype(np.int8), np.ascontiguousarray(want_q), "codes")


def test_fp8_is_per_tensor_amax_over_448():
    w = np.random.default_rng(3).standard_normal((64, 32)).astype(F32)
    qw = quantize_weight(w, FP8)
    s = np.max(np.abs(w)) / F32(448)
    assert_same_bits(qw.scale, np.asarray(s, F32), "scale")
    want = np.clip(w / s, -448, 448).astype(ml_dtypes.float8_e4m3fn)
    assert_same_bits(qw.data, want, "codes")


def _reference_quantize(w, scale, storage, axis, block):
    """onnx.reference's QuantizeLinear (opset 21) of ``w`` with the given scale."""
    elem = {"i4": TensorProto.INT4, "i8": TensorProto.INT8, "f8E4M3FN": TensorProto.FLOAT8E4M3FN}
    attrs = {"output_dtype": elem[storage]}
    if axis is not None:
        attrs["axis"] = axis
    if block is not None:
        attrs["block_size"] = block
    node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, w.shape)],
        [helper.make_tensor_value_info("y", elem[storage], w.shape)],
        [numpy_helper.from_array(np.asarray(scale, F32), "s")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return ReferenceEvaluator(model).run(None, {"x": w})[0]


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 300),
    n=st.integers(1, 6),
    scheme=st.sampled_from(["int4-g128", "int4-g16", "int4-g7", "int8", "fp8"]),
    k_axis=st.sampled_from([0, 1]),
    seed=st.integers(0, 2**16),
    magnitude=st.sampled_from([1.0, 1e-4, 1e30, 1e-38]),
)
@example(k=1, n=1, scheme="int4-g128", k_axis=0, seed=0, magnitude=1.0)
@example(k=300, n=2, scheme="int4-g128", k_axis=1, seed=1, magnitude=1e-4)
def test_codes_match_onnx_reference(k, n, scheme, k_axis, seed, magnitude):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((k, n)) * magnitude).astype(F32)
    w.ravel()[:: max(1, w.size // 3)] = 0.0
    view = w if k_axis == 0 else np.ascontiguousarray(w.T)
    recipe = parse_scheme(scheme)
    qw = quantize_weight(view, recipe, k_axis=k_axis)
    want = _reference_quantize(view, qw.scale, recipe.storage, qw.axis, qw.block_size)
    got = unpack_int4(qw.data, view.shape) if recipe.storage == "i4" else qw.data
    want = np.asarray(want)
    if recipe.storage == "i4":
        want = want.astype(np.int8)
    assert_same_bits(np.asarray(got), want, "codes")


def test_parse_scheme_and_bits():
    assert parse_scheme("int4-g128").block_size == 128
    assert parse_scheme("int4-g64").block_size == 64
    assert parse_scheme("int8") is INT8 and parse_scheme("fp8") is FP8
    for bad in ["int4", "int4-g1", "int4-g", "int5", "nvfp4", ""]:
        with pytest.raises(ValueError, match="unknown scheme"):
            parse_scheme(bad)
    assert recipe_for_bits(int4(64), 4).block_size == 64
    assert recipe_for_bits(FP8, 4).block_size == 128
    assert recipe_for_bits(int4(64), 4, 32).block_size == 32
    assert recipe_for_bits(int4(64), 4, -1).per_channel
    assert recipe_for_bits(int4(64), 8) is INT8
    with pytest.raises(ValueError, match="bits must be 4 or 8"):
        recipe_for_bits(INT8, 3)
    with pytest.raises(ValueError, match="per channel"):
        recipe_for_bits(INT8, 8, 64)
    with pytest.raises(ValueError, match="block_size"):
        recipe_for_bits(INT8, 4, 0)


def test_per_channel_int4_matches_modelopt_block_minus_one():
    w = np.random.default_rng(5).standard_normal((40, 6)).astype(F32)
    qw = quantize_weight(w, recipe_for_bits(INT8, 4, -1))
    want_q, want_s = modelopt_find_scales_rtn(w, 40, 4)
    assert qw.axis == 1 and qw.block_size is None
    assert_same_bits(qw.scale, want_s.reshape(-1).astype(F32), "scale")
    assert_same_bits(unpack_int4(qw.data, w.shape), want_q, "codes")
