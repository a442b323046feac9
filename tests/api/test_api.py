"""The Python API through the JIT, bit for bit against the numpy oracle.

Every call here builds quant IR, lowers it with lower-quant and runs compiled code; the
oracle (tests/oracle.py) is the reference. Hypothesis draws shapes (0-size, 1 element,
non-multiples of the vector width), strided / transposed / negative-stride views, values
(ties, +-0, +-inf, NaN, subnormals, overflow) and parameters.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qopt
from tests.support import oracle
from tests.support.bits import assert_same_bits

F32 = np.float32
INT_STORAGE = ["i8", "ui8", "i16", "ui16", "i4", "ui4", "i2", "ui2"]
FLOAT_STORAGE = ["f8E4M3FN", "f8E5M2", "f4E2M1FN"]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def special_values(draw, shape, scale: float) -> np.ndarray:
    """f32 data mixing normal values, exact ties of x / scale, and IEEE specials."""
    n = int(np.prod(shape))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 40 * scale).astype(F32)
    ties = ((rng.integers(-300, 300, n) + 0.5) * scale).astype(F32)
    specials = np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 3e38, -3e38, 1e-45], F32
    )
    pick = rng.integers(0, 3, n)
    x = np.where(pick == 1, ties, x)
    x = np.where(pick == 2, specials[rng.integers(0, len(specials), n)], x)
    return x.reshape(shape)


@st.composite
def layouts(draw, rank_min: int = 1):
    """A shape and a view kind applied to the data before the call."""
    rank = draw(st.integers(rank_min, 3))
    shape = tuple(draw(st.lists(st.integers(0, 37), min_size=rank, max_size=rank)))
    view = draw(st.sampled_from(["contiguous", "strided", "transposed", "reversed"]))
    return shape, view


def make_view(x: np.ndarray, view: str) -> np.ndarray:
    """The same values as ``x`` seen through a non-contiguous view."""
    if view == "strided":
        wide = np.empty(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    if view == "transposed":
        return np.ascontiguousarray(x.T).T
    if view == "reversed":
        return np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    return x


def granularity_kwargs(draw, shape, allow_blocks=True):
    """Keyword arguments and the parameter shape of one granularity for ``shape``."""
    kinds = ["per_tensor", "per_axis"] + (["per_block", "block"] if allow_blocks else [])
    kind = draw(st.sampled_from(kinds))
    rank = len(shape)
    if kind == "per_tensor":
        return {}, ()
    axis = draw(st.integers(0, rank - 1))
    if kind == "per_axis":
        return {"axis": axis}, (shape[axis],)
    if kind == "per_block":
        b = draw(st.integers(1, 9))
        pshape = tuple(-(-n // b) if k == axis else n for k, n in enumerate(shape))
        return {"axis": axis, "block_size": b}, pshape
    blocks = [draw(st.sampled_from([-1, 1, 2, 3, 8])) for _ in shape]
    pshape = tuple(-(-n // (max(n, 1) if b == -1 else b)) for n, b in zip(shape, blocks))
    return {"block_shape": blocks}, pshape


def positive_scales(draw, pshape) -> np.ndarray:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return (2.0 ** rng.uniform(-8, 4, pshape)).astype(F32)


@SETTINGS
@given(layout=layouts(), storage=st.sampled_from(INT_STORAGE + FLOAT_STORAGE), data=st.data())
def test_quantize_matches_oracle(layout, storage, data):
    shape, view = layout
    kwargs, pshape = granularity_kwargs(data.draw, shape)
    scale = positive_scales(data.draw, pshape)
    x = special_values(data.draw, shape, float(scale.reshape(-1)[0]) if scale.size else 1.0)
    zp = None
    if storage in INT_STORAGE and data.draw(st.booleans()):
        lo, hi = oracle.int_range(storage)
        zp = (
            np.random.default_rng(1)
            .integers(lo, hi + 1, pshape)
            .astype(oracle.storage_dtype(storage))
        )
    rounding = (
        data.draw(st.sampled_from(["nearest_even", "nearest_away", "half_up", "toward_zero"]))
        if storage in INT_STORAGE
        else "nearest_even"
    )
    saturate = data.draw(st.booleans()) if storage in FLOAT_STORAGE else True
    got = qopt.quantize(
        make_view(x, view),
        scale,
        zp,
        dtype=storage,
        rounding=rounding,
        saturate=saturate,
        **kwargs,
    )
    want = oracle.quantize(
        x, scale, zp, dtype=storage, rounding=rounding, saturate=saturate, **kwargs
    )
    assert_same_bits(got, want)


@SETTINGS
@given(
    layout=layouts(),
    storage=st.sampled_from(INT_STORAGE + FLOAT_STORAGE),
    out=st.sampled_from(["f32", "f16", "bf16"]),
    data=st.data(),
)
def test_dequantize_matches_oracle(layout, storage, out, data):
    shape, view = layout
    kwargs, pshape = granularity_kwargs(data.draw, shape)
    scale = positive_scales(data.draw, pshape)
    dtype = oracle.storage_dtype(storage)
    codes = np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, 256, shape)
    if storage in INT_STORAGE:
        lo, hi = oracle.int_range(storage)
        q = np.clip(codes - 128, lo, hi).astype(dtype)
        zp = np.zeros(pshape, dtype) if data.draw(st.booleans()) else None
    else:
        bits = codes.astype(np.uint8) & (0x0F if storage == "f4E2M1FN" else 0xFF)
        q = bits.view(dtype)
        zp = None
    got = qopt.dequantize(make_view(q, view), scale, zp, dtype=out, **kwargs)
    want = oracle.dequantize(q, scale, zp, dtype=out, **kwargs)
    assert_same_bits(got, want)


@pytest.mark.parametrize("lowering", [None, "fused", "composite", "lut"])
@pytest.mark.parametrize(
    ("storage", "out"),
    [("i8", "i8"), ("ui8", "i8"), ("i4", "ui4"), ("i8", "f8E4M3FN"), ("i16", "i8")],
)
def test_requantize_every_input_value(storage, out, lowering):
    """Every input code of the storage type, per-axis in, per-tensor out, all lowerings."""
    lo, hi = oracle.int_range(storage)
    codes = np.arange(lo, hi + 1)
    if storage == "i16":
        codes = codes[::7]
    channels = 3
    q = np.stack([codes] * channels, axis=1).astype(oracle.storage_dtype(storage))
    in_scale = np.array([0.37, 1.5, 2.0**-6], F32)
    in_zp = (
        np.array([0, 3, -2], oracle.storage_dtype(storage))
        if lo < 0
        else np.array([0, 3, 200 % (hi + 1)], oracle.storage_dtype(storage))
    )
    out_zp = None if out.startswith("f8") else np.array(1, oracle.storage_dtype(out))
    if lowering == "lut" and storage == "i16":
        pytest.skip("lookup tables are for inputs of at most 8 bits")
    got = qopt.requantize(
        q, in_scale, in_zp, F32(0.71), out_zp, axis=1, dtype=out, lowering=lowering
    )
    want = oracle.dequantize(q, in_scale, in_zp, axis=1)
    want = oracle.quantize(want, F32(0.71), out_zp, dtype=out)
    assert_same_bits(got, want)


DYNAMIC_FORMS = [
    pytest.param(
        {
            "dtype": "f4E2M1FN",
            "scale_dtype": "f8E4M3FN",
            "block_size": 16,
            "double_quant_scale": F32(0.5),
        },
        id="nvfp4",
    ),
    pytest.param(
        {"dtype": "f4E2M1FN", "scale_dtype": "f8E4M3FN", "block_size": 16}, id="nvfp4-nodq"
    ),
    pytest.param({"dtype": "f8E4M3FN", "scale_dtype": "f8E8M0FNU", "block_size": 32}, id="mxfp8"),
    pytest.param(
        {
            "dtype": "f8E5M2",
            "scale_dtype": "f8E8M0FNU",
            "block_size": 32,
            "scale_rounding": "rceil",
        },
        id="mxfp8-e5m2-rceil",
    ),
    pytest.param({"dtype": "f4E2M1FN", "scale_dtype": "f8E8M0FNU", "block_size": 32}, id="mxfp4"),
    pytest.param({"dtype": "f8E4M3FN", "block_shape": [128, 128]}, id="fp8-128x128"),
    pytest.param({"dtype": "f8E4M3FN", "block_shape": [1, 128]}, id="fp8-1x128"),
    pytest.param({"dtype": "i8", "block_shape": [1, -1]}, id="int8-per-token"),
    pytest.param({"dtype": "ui8", "symmetric": False}, id="onnx-dynamic-ui8"),
    pytest.param(
        {"dtype": "i4", "block_size": 32, "symmetric": False, "eps": 1e-5}, id="int4-asym-block"
    ),
    pytest.param({"dtype": "i8", "block_size": 32, "scale_dtype": "f16"}, id="int8-f16-scale"),
]


@pytest.mark.parametrize("form", DYNAMIC_FORMS)
@pytest.mark.parametrize("shape", [(3, 70), (130, 200), (1, 1), (0, 32)])
def test_dynamic_quantize_matches_oracle(form, shape):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 3).astype(F32)
    if x.size > 40:
        x.reshape(-1)[:32] = 0.0  # an all-zero block
        x.reshape(-1)[40] = np.float32(1e-42)
    got = qopt.dynamic_quantize(x, **form)
    want = oracle.dynamic_quantize(x, **form)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_same_bits(g, w, f"result {i}")


BLOCK_FORMS = [p for p in DYNAMIC_FORMS if "block_size" in p.values[0]]


@pytest.mark.parametrize("form", BLOCK_FORMS)
@pytest.mark.parametrize(
    ("shape", "view"),
    [
        ((5, 1000), None),  # full tiles of 16 blocks, then a tail tile with a partial block
        ((2, 3, 600), None),  # an outer dimension inside the rows
        ((7, 1100), "reversed"),  # negative strides: the strided loops of every tile
        ((1030, 6), "transposed"),  # rows of 1030 elements 6 apart
    ],
)
def test_dynamic_quantize_tiles_of_blocks(form, shape, view):
    """Rows longer than a tile (codegen runs statistic, parameters and data tile by tile):
    every tile path, against the oracle."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(shape) * 3).astype(F32)
    x.reshape(-1)[64:96] = 0.0  # all-zero blocks
    x.reshape(-1)[200] = np.float32(1e-42)
    if view == "reversed":
        x = x[:, ::-1]
    elif view == "transposed":
        x = x.T
    got = qopt.dynamic_quantize(x, **form)
    want = oracle.dynamic_quantize(np.ascontiguousarray(x), **form)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_same_bits(g, w, f"result {i}")


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda x: qopt.quantize(x.tolist(), 1.0, dtype="i8"), TypeError, "x must be"),
        (lambda x: qopt.quantize(x, 1.0, dtype="i3"), ValueError, "dtype must be"),
        (lambda x: qopt.quantize(x, 0.0, dtype="i8"), ValueError, "scale must be"),
        (
            lambda x: qopt.quantize(x, np.ones(3, F32), dtype="i8", axis=1),
            ValueError,
            "scale has shape",
        ),
        (lambda x: qopt.quantize(x, 1.0, 300, dtype="i8"), ValueError, "zero_point"),
        (lambda x: qopt.quantize(x, 1.0, 1, dtype="f8E4M3FN"), ValueError, "zero_point"),
        (lambda x: qopt.quantize(x, 1.0, dtype="i8", axis=5), ValueError, "axis"),
        (lambda x: qopt.quantize(x, 1.0, dtype="i8", rounding="up"), ValueError, "rounding"),
        (lambda x: qopt.quantize(x, 1.0, dtype="i8", block_size=0), ValueError, "block_size"),
        (lambda x: qopt.quantize(x.astype(np.int32), 1.0, dtype="i8"), ValueError, "x.dtype"),
        (lambda x: qopt.dequantize(x, 1.0), ValueError, "q.dtype"),
        (
            lambda x: qopt.dynamic_quantize(x, dtype="i8", scale_rounding="up"),
            ValueError,
            "scale_rounding",
        ),
        (lambda x: qopt.compile(42), TypeError, "module_or_text"),
        (lambda x: qopt.compile("func.func @f(", target="cpu"), ValueError, "error"),
        (lambda x: qopt.compile("", target="tpu"), ValueError, "target"),
    ],
)
def test_bad_arguments_name_the_argument(call, error, words):
    x = np.ones((4, 8), F32)
    with pytest.raises(error, match=words):
        call(x)


def test_compile_runs_quant_ir_and_lowered_ir():
    text = """func.func @k(%x: tensor<4x8xf32>, %s: tensor<8xf32>) -> tensor<4x8xi8> {
  %q = quant.quantize %x scale(%s : tensor<8xf32>) per_axis(1) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}"""
    kernel = qopt.compile(text)
    x = np.linspace(-20, 20, 32, dtype=F32).reshape(4, 8)
    s = np.linspace(0.1, 0.8, 8, dtype=F32)
    assert_same_bits(kernel(x, s), oracle.quantize(x, s, dtype="i8", axis=1))


def test_results_are_ml_dtypes_arrays():
    x = np.linspace(-3, 3, 10, dtype=F32)
    assert qopt.quantize(x, 0.5, dtype="i4").dtype == ml_dtypes.int4
    assert qopt.quantize(x, 0.5, dtype=ml_dtypes.float8_e4m3fn).dtype == ml_dtypes.float8_e4m3fn
    assert qopt.dequantize(qopt.quantize(x, 0.5, dtype="i8"), 0.5, dtype="bf16").dtype == (
        ml_dtypes.bfloat16
    )


FAKE_FORMS = [
    pytest.param({"dtype": "i8", "per_token": True}, id="int8-per-token"),
    pytest.param({"dtype": "i8", "per_token": True, "symmetric": False}, id="int8-asym-token"),
    pytest.param(
        {"dtype": "i4", "block_size": 32, "symmetric": False, "zero_point_domain": "float"},
        id="int4-group-float-zp",
    ),
    pytest.param(
        {"dtype": "ui8", "axis": 0, "scale_dtype": "bf16", "eps": 1e-4},
        id="uint8-channel-bf16-scale",
    ),
    pytest.param({"dtype": "i8", "block_size": 16, "zero_point_domain": "none"}, id="none-zp"),
    pytest.param({"dtype": "f8E4M3FN", "per_token": True}, id="fp8-token"),
    pytest.param({"dtype": "i8"}, id="int8-tensor"),
]


@pytest.mark.parametrize("form", FAKE_FORMS)
@pytest.mark.parametrize("shape", [(33, 70), (1, 1), (0, 16)])
def test_fake_quantize_dynamic_matches_oracle(form, shape):
    x = special_values(_fixed_draw, shape, 0.05)
    x = np.where(np.isfinite(x), x, 1.0).astype(F32)
    got = qopt.fake_quantize(x, **form)
    assert_same_bits(got, oracle.fake_quantize(x, **form))


def _fixed_draw(strategy):
    return 12345


@pytest.mark.parametrize("dtype", ["i8", "ui8", "i4"])
def test_fake_quantize_static_matches_oracle(dtype):
    x = special_values(_fixed_draw, (17, 40), 0.05)
    s = np.linspace(0.01, 0.2, 40, dtype=F32)
    zp = np.full(40, 3, oracle.storage_dtype(dtype))
    got = qopt.fake_quantize(x, s, zp, dtype=dtype, axis=1)
    assert_same_bits(got, oracle.fake_quantize(x, s, zp, dtype=dtype, axis=1))


@pytest.mark.parametrize("storage", ["i4", "ui4", "i2", "ui2", "f4E2M1FN"])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 64), (0,)])
def test_packed_quantize_and_dequantize(storage, shape):
    x = special_values(_fixed_draw, shape, 0.5)
    packed = qopt.quantize(x, F32(0.5), dtype=storage, packed=True)
    codes = oracle.quantize(x, F32(0.5), dtype=storage)
    assert_same_bits(packed, oracle.pack(codes))
    restored = qopt.dequantize(packed, F32(0.5), storage_dtype=storage, shape=shape)
    assert_same_bits(restored, oracle.dequantize(codes, F32(0.5)))


@pytest.mark.parametrize("packed", [False, True])
def test_dynamic_quantize_into_preallocated_out(packed):
    x = np.random.default_rng(3).standard_normal((6, 64)).astype(F32)
    form = {"dtype": "f4E2M1FN", "scale_dtype": "f8E4M3FN", "block_size": 16}
    want = qopt.dynamic_quantize(x, packed=packed, **form)
    out = tuple(np.empty_like(w) for w in want)
    got = qopt.dynamic_quantize(x, packed=packed, out=out, **form)
    for g, o, w in zip(got, out, want):
        assert g is o or np.shares_memory(g, o)
        assert_same_bits(o, w)


@pytest.mark.parametrize(
    ("out", "error", "words"),
    [
        (np.empty((6, 64), np.uint8), TypeError, "out must be a tuple"),
        ((np.empty(7, np.uint8), np.empty((6, 4), ml_dtypes.float8_e4m3fn)), ValueError, "out"),
        ((np.empty(384, np.uint8)[::2], np.empty((6, 4), ml_dtypes.float8_e4m3fn)), ValueError,
         "C-contiguous"),
        ((np.empty(192, np.uint8),), ValueError, "out must hold 2 arrays"),
    ],
)  # fmt: skip
def test_dynamic_quantize_rejects_bad_out(out, error, words):
    x = np.zeros((6, 64), F32)
    form = {"dtype": "f4E2M1FN", "scale_dtype": "f8E4M3FN", "block_size": 16}
    with pytest.raises(error, match=words):
        qopt.dynamic_quantize(x, packed=True, out=out, **form)


def test_packed_nvfp4_dynamic_quantize():
    x = special_values(_fixed_draw, (9, 48), 0.3)
    x = np.where(np.isfinite(x), x, 2.0).astype(F32)
    form = {"dtype": "f4E2M1FN", "scale_dtype": "f8E4M3FN", "block_size": 16}
    data, scale = qopt.dynamic_quantize(x, packed=True, **form)
    want_data, want_scale = oracle.dynamic_quantize(x, **form)
    assert_same_bits(data, oracle.pack(want_data))
    assert_same_bits(scale, want_scale)
