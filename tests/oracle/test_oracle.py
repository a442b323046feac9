"""Unit tests of the oracle's own edge cases (tests/oracle.py, docs/semantics.md sections 3-5).

Worked examples are computed by hand in the comments; the ONNX proof is in
test_oracle_onnx.py.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from tests.support import oracle
from tests.support.oracle import (
    dequantize,
    dynamic_quantize,
    expand_param,
    fake_quantize,
    float_max,
    int_range,
    is_float_format,
    pack,
    param_block_shape,
    quantize,
    requantize,
    storage_dtype,
    unpack,
)

F32 = np.float32
E4M3 = np.dtype(ml_dtypes.float8_e4m3fn)
E5M2 = np.dtype(ml_dtypes.float8_e5m2)
E2M1 = np.dtype(ml_dtypes.float4_e2m1fn)
E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)
BF16 = np.dtype(ml_dtypes.bfloat16)


@pytest.fixture(autouse=True)
def _strict_numpy():
    """No numpy floating-point warning may escape the oracle (no division by zero)."""
    with np.errstate(all="raise"):
        yield


def f32s(*v):
    return np.array(v, dtype=F32)


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    u = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return np.array_equal(np.ascontiguousarray(a).view(u), np.ascontiguousarray(b).view(u))


def codes(a) -> list[int]:
    return np.asarray(a).reshape(-1).view(np.uint8).tolist()


# ---------------------------------------------------------------------------------------
# formats
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("i8", np.int8),
        ("ui8", np.uint8),
        ("i16", np.int16),
        ("ui16", np.uint16),
        ("i4", ml_dtypes.int4),
        ("ui4", ml_dtypes.uint4),
        ("i2", ml_dtypes.int2),
        ("ui2", ml_dtypes.uint2),
        ("f8E4M3FN", ml_dtypes.float8_e4m3fn),
        ("f8E5M2", ml_dtypes.float8_e5m2),
        ("f4E2M1FN", ml_dtypes.float4_e2m1fn),
        ("f8E8M0FNU", ml_dtypes.float8_e8m0fnu),
        ("f32", np.float32),
        ("f16", np.float16),
        ("bf16", ml_dtypes.bfloat16),
    ],
)
def test_storage_dtype_spellings(name, dtype):
    dt = np.dtype(dtype)
    assert storage_dtype(name) == dt
    assert storage_dtype(dtype) == dt
    assert storage_dtype(dt) == dt
    assert storage_dtype(dt.name) == dt


@pytest.mark.parametrize(
    "bad", ["i32", "f64", "int32", "float64", "i8<-127:127>", "x", None, np.int32, 3]
)
def test_storage_dtype_rejects(bad):
    with pytest.raises(ValueError):
        storage_dtype(bad)


def test_ranges_and_maxima():
    assert int_range("i8") == (-128, 127)
    assert int_range("ui8") == (0, 255)
    assert int_range("i16") == (-32768, 32767)
    assert int_range("ui16") == (0, 65535)
    assert int_range("i4") == (-8, 7)
    assert int_range("ui4") == (0, 15)
    assert int_range("i2") == (-2, 1)
    assert int_range("ui2") == (0, 3)
    assert float_max("f8E4M3FN") == 448.0
    assert float_max("f8E5M2") == 57344.0
    assert float_max("f4E2M1FN") == 6.0
    assert float_max("f8E8M0FNU") == 2.0**127
    assert float_max("f16") == 65504.0
    assert float_max("f6E2M3FN") == 7.5
    assert float_max("f6E3M2FN") == 28.0
    with pytest.raises(ValueError):
        int_range("f8E4M3FN")
    with pytest.raises(ValueError):
        float_max("i8")
    assert is_float_format("f8E4M3FN") and is_float_format("bf16") and is_float_format(E8M0)
    assert not is_float_format("ui4") and not is_float_format(np.int16)


# ---------------------------------------------------------------------------------------
# granularity
# ---------------------------------------------------------------------------------------


def test_param_block_shape_forms():
    shp = (4, 6)
    assert param_block_shape(shp) == (4, 6)
    assert param_block_shape(shp, axis=0) == (1, 6)
    assert param_block_shape(shp, axis=-1) == (4, 1)
    assert param_block_shape(shp, axis=1, block_size=4) == (1, 4)
    assert param_block_shape(shp, block_size=4) == (1, 4)  # axis None: last axis
    assert param_block_shape(shp, axis=0, block_size=3) == (3, 1)
    assert param_block_shape(shp, block_shape=[2, -1]) == (2, 6)
    assert param_block_shape(shp, block_shape=[-1, 1], axis=0) == (4, 1)  # axis ignored
    # one-element parameter: per-tensor even with an axis (ONNX)
    assert param_block_shape(shp, axis=1, param_shape=(1,)) == (4, 6)
    assert param_block_shape(shp, axis=1, param_shape=()) == (4, 6)
    assert param_block_shape((0, 3)) == (1, 3)
    with pytest.raises(ValueError):
        param_block_shape(shp, axis=2)
    with pytest.raises(ValueError):
        param_block_shape(shp, block_size=0)
    with pytest.raises(ValueError):
        param_block_shape(shp, block_shape=[2])
    with pytest.raises(ValueError):
        param_block_shape(shp, block_shape=[0, 2])
    with pytest.raises(ValueError):
        param_block_shape(shp, block_size=2, block_shape=[1, 2])
    with pytest.raises(ValueError):
        param_block_shape(shp, axis=0, param_shape=(6,))


def test_expand_param_forms():
    shape = (2, 5)
    # per-axis: 1-D with shape[axis] entries
    assert np.array_equal(expand_param([10, 20], shape, axis=0), [[10] * 5, [20] * 5])
    assert np.array_equal(expand_param(np.arange(5), shape, axis=1), [list(range(5))] * 2)
    # per-block on axis 1, B = 2, partial last block: parameter shape (2, 3)
    p = np.array([[1, 2, 3], [4, 5, 6]])
    assert np.array_equal(
        expand_param(p, shape, axis=1, block_size=2), [[1, 1, 2, 2, 3], [4, 4, 5, 5, 6]]
    )
    # per-tensor
    assert np.array_equal(expand_param(7, shape), np.full(shape, 7))
    assert np.array_equal(expand_param([7], shape, axis=1), np.full(shape, 7))
    # per-token = block([1, -1])
    assert np.array_equal(expand_param([[1], [2]], shape, block_shape=[1, -1]), [[1] * 5, [2] * 5])
    for bad in ([1, 2, 3], np.ones((2, 2))):
        with pytest.raises(ValueError):
            expand_param(bad, shape, axis=1, block_size=2)
    with pytest.raises(ValueError):
        expand_param([1, 2], shape)  # two values need a granularity


def test_expand_param_2d_tiles_with_partial_tiles():
    shape = (300, 200)
    p = np.arange(6).reshape(3, 2)  # ceil(300/128) x ceil(200/128)
    e = expand_param(p, shape, block_shape=[128, 128])
    assert e.shape == shape
    for i, j in [(0, 0), (127, 127), (128, 127), (127, 128), (255, 199), (256, 0), (299, 199)]:
        assert e[i, j] == p[i // 128, j // 128]


# ---------------------------------------------------------------------------------------
# quantize
# ---------------------------------------------------------------------------------------

TIES = f32s(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("nearest_even", [-2, -2, 0, 0, 2, 2]),
        ("nearest_away", [-3, -2, -1, 1, 2, 3]),
        ("half_up", [-2, -1, 0, 1, 2, 3]),  # floor(v + 0.5)
        ("toward_zero", [-2, -1, 0, 0, 1, 2]),
    ],
)
def test_rounding_modes_at_ties(mode, expected):
    assert quantize(TIES, 1.0, dtype="i8", rounding=mode).tolist() == expected
    # non-ties round to nearest in every mode but toward_zero
    near = f32s(-2.4999998, -0.5000001, 0.4999999, 1.5000001)
    want = [-2, 0, 0, 1] if mode == "toward_zero" else [-2, -1, 0, 2]
    assert quantize(near, 1.0, dtype="i8", rounding=mode).tolist() == want


def test_rounding_is_exact_for_large_values():
    # a naive floor(v + 0.5) in f32 gets 0.49999997 (-> 1) and 2^23 + 1 (-> 2^23 + 2) wrong
    big = 2.0**23
    v = f32s(0.49999997, big - 0.5, -big + 0.5, big + 1, 2.0**24 + 2)
    assert oracle._round(v, "half_up").tolist() == [0, big, -big + 1, big + 1, 2.0**24 + 2]
    assert oracle._round(v, "nearest_away").tolist() == [0, big, -big, big + 1, 2.0**24 + 2]
    assert oracle._round(v, "nearest_even").tolist() == [0, big, -big, big + 1, 2.0**24 + 2]
    inf = f32s(np.inf, -np.inf, np.nan)
    for mode in ("half_up", "nearest_away"):
        r = oracle._round(inf, mode)
        assert r[0] == np.inf and r[1] == -np.inf and np.isnan(r[2])


def test_round_first_then_add_zero_point():
    # x / s = 0.5, zp = 1: rne(0.5) + 1 = 1 (rounding 0.5 + 1 = 1.5 would give 2)
    assert quantize(f32s(0.5, -1.5, 2.5), 1.0, 1, dtype="i8").tolist() == [1, -1, 3]


def test_division_not_reciprocal_multiplication():
    x = np.array([3188934487], np.uint32).view(F32)  # -0.14382683
    s = np.array([997512110], np.uint32).view(F32)[0]  # 0.0037357616
    assert x[0] / s == F32(-38.5)  # correctly rounded division: an exact tie
    assert np.rint(x[0] * (F32(1) / s)) == -39  # the reciprocal form misses it
    assert quantize(x, s, dtype="i8").tolist() == [-38]


def test_integer_saturation_inf_nan():
    x = f32s(np.inf, -np.inf, np.nan, 1e30, -1e30, 3.0e38)
    assert quantize(x, 1.0, 5, dtype="i8").tolist() == [127, -128, 5, 127, -128, 127]
    assert quantize(x, 1.0, 5, dtype="i8", qmin=-127).tolist() == [127, -127, 5, 127, -127, 127]
    assert quantize(x, 1.0, 3, dtype="ui4").tolist() == [15, 0, 3, 15, 0, 15]
    # a subnormal scale: x / s overflows to inf and saturates
    assert quantize(f32s(1.0, -1.0), F32(1e-45), dtype="i16").tolist() == [32767, -32768]


def test_narrow_range_and_subbyte_outputs():
    x = f32s(-1000, -127.5, 127.5, 1000)
    assert quantize(x, 1.0, dtype="i8", qmin=-127, qmax=127).tolist() == [-127, -127, 127, 127]
    q = quantize(f32s(7.5, -8.5, 100, -0.6), 1.0, dtype="i4")
    assert q.dtype == np.dtype(ml_dtypes.int4) and q.tolist() == [7, -8, 7, -1]
    q = quantize(f32s(1.5, -3, 2.5), 1.0, 1, dtype="i2")
    assert q.dtype == np.dtype(ml_dtypes.int2) and q.tolist() == [1, -2, 1]
    q = quantize(f32s(2.5, -1, 9), 1.0, dtype="ui2")
    assert q.dtype == np.dtype(ml_dtypes.uint2) and q.tolist() == [2, 0, 3]
    with pytest.raises(ValueError):
        quantize(x, 1.0, dtype="i8", qmin=-129)


def test_float_storage_saturation_and_overflow():
    x = f32s(448, 464, 480, 1e6, -np.inf, np.nan, -0.0)
    sat = quantize(x, 1.0, dtype="f8E4M3FN").astype(F32)
    assert sat[:5].tolist() == [448, 448, 448, 448, -448] and np.isnan(sat[5])
    assert np.signbit(sat[6])
    raw = quantize(x, 1.0, dtype="f8E4M3FN", saturate=False).astype(F32)
    # 464 is the tie 448 / 480 and rounds to even 448; beyond: NaN (e4m3fn has no inf)
    assert raw[:2].tolist() == [448, 448] and np.all(np.isnan(raw[2:6]))
    y = quantize(f32s(61439, 61440, np.inf, 1e6), 1.0, dtype="f8E5M2", saturate=False).astype(F32)
    assert y.tolist() == [57344, np.inf, np.inf, np.inf]
    y = quantize(f32s(61439, 61440, np.inf, 1e6), 1.0, dtype="f8E5M2").astype(F32)
    assert y.tolist() == [57344] * 4
    # e2m1 has no NaN / inf: overflow is 6 either way, NaN is whatever ml_dtypes gives
    for saturate in (True, False):
        y = quantize(f32s(100, -7, np.nan, 5.0, 0.25), 1.0, dtype="f4E2M1FN", saturate=saturate)
        assert y.astype(F32)[[0, 1, 3, 4]].tolist() == [6, -6, 4, 0]
        assert codes(y)[2] == codes(f32s(np.nan).astype(E2M1))[0]


def test_float_storage_rejections():
    with pytest.raises(ValueError):
        quantize(f32s(1), 1.0, 0, dtype="f8E4M3FN")
    with pytest.raises(ValueError):
        quantize(f32s(1), 1.0, dtype="f8E4M3FN", rounding="half_up")
    with pytest.raises(ValueError):
        quantize(f32s(1), 1.0, dtype="f8E4M3FN", qmin=0)
    with pytest.raises(ValueError):
        quantize(f32s(1), 1.0, dtype="f32")
    with pytest.raises(ValueError):
        dequantize(f32s(1).astype(E4M3), 1.0, 0)
    for s in (0.0, -0.0, np.nan):
        with pytest.raises(ValueError):
            quantize(f32s(1), s, dtype="i8")
    with pytest.raises(ValueError):
        quantize(f32s(1), 1.0, 0.5, dtype="i8")  # non-integer zero point


def test_minval_forms():
    x = f32s(-1, 0, 0.5, 2, 10)
    q = quantize(x, 0.25, dtype="ui4", minval=-1.0)
    assert q.tolist() == [0, 4, 6, 12, 15]  # (x + 1) / 0.25, clamped
    q = quantize(x, 0.25, dtype="i4", minval=-1.0)
    assert q.tolist() == [-8, -4, -2, 4, 7]  # + qmin
    assert dequantize(q, 0.25, minval=-1.0).tolist() == [-1, 0, 0.5, 2, 2.75]
    with pytest.raises(ValueError):
        quantize(x, 0.25, 1, dtype="i4", minval=-1.0)


def test_quantize_granularities():
    x = np.arange(12, dtype=F32).reshape(3, 4)
    q = quantize(x, f32s(1, 2, 4), [0, 1, 2], dtype="i8", axis=0)
    assert q.tolist() == [[0, 1, 2, 3], [3, 3, 4, 5], [4, 4, 4, 5]]  # 2.5 -> 2, 3.5 -> 4
    q = quantize(x, f32s([1, 2], [1, 2], [1, 2]), dtype="i8", axis=1, block_size=2)
    assert q.tolist() == [[0, 1, 1, 2], [4, 5, 3, 4], [8, 9, 5, 6]]
    q = quantize(x, f32s([1], [4]), dtype="i8", block_shape=[2, -1])
    assert q.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [2, 2, 2, 3]]


# ---------------------------------------------------------------------------------------
# dequantize / requantize
# ---------------------------------------------------------------------------------------


def test_dequantize_f32_then_rne_to_f16_bf16():
    q = np.array([1, 3, 0, -1], np.int16)
    s = F32(1 + 2.0**-11)  # q * s = 1 + 2^-11: the f16 tie between 1 and 1 + 2^-10
    y = dequantize(q, s, dtype="f16")
    assert y.dtype == np.float16 and y[0] == np.float16(1.0)
    assert same_bits(y, (q.astype(F32) * s).astype(np.float16))
    s = F32(1 + 2.0**-8)  # the bf16 tie between 1 and 1 + 2^-7: even is 1
    y = dequantize(q, s, dtype="bf16")
    assert y.dtype == BF16 and float(y[0]) == 1.0
    y = dequantize(q, F32(1 + 3 * 2.0**-9), dtype="bf16")
    assert float(y[0]) == 1 + 2.0**-7
    # zero point subtracted in f32, then one multiplication
    y = dequantize(np.array([0, 255], np.uint8), F32(0.1), 128)
    assert same_bits(y, f32s(-128, 127) * F32(0.1))
    assert np.signbit(dequantize(np.array([3], np.int8), F32(-2.0), 3))[0]  # (3 - 3) * -2 = -0


def test_dequantize_float_storage_and_overflow():
    q = f32s(448, -0.0, np.nan, 2.0**-9).astype(E4M3)
    y = dequantize(q, F32(2.0))
    assert y[[0, 3]].tolist() == [896, 2.0**-8] and np.signbit(y[1]) and np.isnan(y[2])
    y = dequantize(np.array([127], np.int8), F32(3e38))
    assert y[0] == np.inf  # IEEE overflow, no warning escapes


def test_requantize_is_the_composition_not_the_shortcut():
    q = np.arange(-128, 128).astype(np.int8)
    si, so = F32(0.1), F32(0.2)
    r = requantize(q, si, 0, so, 0)
    comp = quantize(dequantize(q, si, 0), so, 0, dtype="i8")
    assert same_bits(r, comp)
    ratio = si / so
    shortcut = np.clip(np.rint(q.astype(F32) * ratio), -128, 127).astype(np.int8)
    assert np.count_nonzero(r != shortcut) > 0  # the tt-metal / TVM mismatch


def test_requantize_independent_granularities():
    q = np.arange(-6, 6).astype(np.int8).reshape(3, 4)
    s_ax = f32s(0.5, 0.25, 0.125)
    z_ax = np.array([1, 2, 0], np.uint8)
    # per-tensor -> per-axis
    r = requantize(q, F32(0.3), 2, s_ax, z_ax, axis=0, dtype="ui8")
    assert r.dtype == np.uint8
    assert same_bits(r, quantize(dequantize(q, F32(0.3), 2), s_ax, z_ax, dtype="ui8", axis=0))
    # per-axis -> per-tensor, mixed scalar zero point with per-axis scale
    r = requantize(q, s_ax, 0, F32(0.2), 3, axis=0)
    assert same_bits(r, quantize(dequantize(q, s_ax, 0, axis=0), F32(0.2), 3, dtype="i8"))
    # per-axis -> per-axis (other scales), to float storage
    s4 = f32s(1, 2, 3, 4)
    r = requantize(
        q, s4, np.zeros(4, np.int8), f32s(0.5, 1, 2, 0.3), None, axis=1, dtype="f8E4M3FN"
    )
    assert r.dtype == E4M3
    mid = dequantize(q, s4, np.zeros(4, np.int8), axis=1)
    assert same_bits(r, quantize(mid, f32s(0.5, 1, 2, 0.3), dtype="f8E4M3FN", axis=1))
    with pytest.raises(ValueError):
        requantize(q, s4, 0, f32s(0.5, 1, 2), 0, axis=1)  # 3 output scales on a 4-wide axis


# ---------------------------------------------------------------------------------------
# dynamic_quantize
# ---------------------------------------------------------------------------------------


def test_dynamic_integer_symmetric_and_asymmetric():
    x = f32s(1, -2, 3, 0.5)
    d, s = dynamic_quantize(x, dtype="i8")
    assert s.shape == () and s == F32(3) / F32(127)
    assert d.tolist() == [42, -85, 127, 21]  # 42.33, -84.67, 127, 21.17
    x = f32s(-1, 2, 3, 0)
    d, s, zp = dynamic_quantize(x, dtype="ui8", symmetric=False)
    assert s == F32(4) / F32(255) and zp.dtype == np.uint8 and zp == 64  # rne(63.75)
    assert d.tolist() == [0, 191, 255, 64]  # 2 / s = 127.49999 -> 127
    d, s, zp = dynamic_quantize(f32s(1, 2), dtype="i8", symmetric=False)  # xmin clamps to 0
    # 1 / f32(2 / 255) = 127.49999 -> 127, minus 128
    assert zp == -128 and s == F32(2) / F32(255) and d.tolist() == [-1, 127]


def test_dynamic_eps_and_scale_dtype():
    d, s = dynamic_quantize(np.zeros(4, F32), dtype="i8", eps=1e-3)
    assert s == F32(1e-3) and not np.any(d)
    x = f32s(0.1, -0.7, 0.33)
    d, s = dynamic_quantize(x, dtype="i8", scale_dtype="f16")
    assert s.dtype == np.float16 and s == np.float16(F32(0.7) / F32(127))
    # the data is divided by the stored (rounded) scale
    assert same_bits(d, quantize(x, s.astype(F32), dtype="i8"))
    d, s = dynamic_quantize(x, dtype="f8E4M3FN", scale_dtype="bf16")
    assert s.dtype == BF16 and same_bits(d, quantize(x, s.astype(F32), dtype="f8E4M3FN"))


def test_dynamic_zero_blocks():
    x = np.zeros((2, 4), F32)
    x[0, 1] = -0.0
    x[1] = [1, -2, 3, 0.5]
    d, s = dynamic_quantize(x, dtype="i8", block_size=4)
    assert s.tolist() == [[1.0], [F32(3) / F32(127)]] and d[0].tolist() == [0] * 4
    d, s = dynamic_quantize(x, dtype="i8", scale_dtype="f16", block_size=4)
    assert s.dtype == np.float16 and s[0, 0] == 1.0
    d, s, zp = dynamic_quantize(x, dtype="i8", block_size=4, symmetric=False)
    # s = 0 -> 1.0, zp = clamp(rne(-128 - 0 / 1)) = -128: every code is the zero point
    assert s[0, 0] == 1.0 and zp[0, 0] == -128 and d[0].tolist() == [-128] * 4
    assert not np.any(dequantize(d, s, zp, axis=1, block_size=4)[0])
    d, s = dynamic_quantize(x, dtype="f8E4M3FN", block_size=4)
    assert s[0, 0] == 1.0 and codes(d[0]) == [0, 0x80, 0, 0]  # +-0 kept
    d, s = dynamic_quantize(x, dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=4)
    assert codes(s)[0] == 0 and codes(d[0]) == [0, 0x8, 0, 0]  # e4m3 scale 0, data +-0
    d, s = dynamic_quantize(x, dtype="f8E4M3FN", scale_dtype="f8E8M0FNU", block_size=4)
    assert codes(s)[0] == 0 and codes(d[0]) == [0, 0x80, 0, 0]  # e8m0 code 0 (2^-127)


def test_dynamic_scale_underflow_never_divides_by_zero():
    x = f32s(1e-45, -1e-45)  # amax / 127 underflows to 0 in f32
    d, s = dynamic_quantize(x, dtype="i8")
    assert s == 1.0 and d.tolist() == [0, 0]
    # NVFP4: (amax / 6) / dq rounds to an e4m3 0 although amax > 0: data +-0
    d, s = dynamic_quantize(
        f32s(1e-3, -1e-3), dtype="f4E2M1FN", scale_dtype="f8E4M3FN", double_quant_scale=100.0
    )
    assert codes(s) == [0] and codes(d) == [0, 0x8]


def test_nvfp4_worked_example():
    x = f32s(12, 5, -3.1, 0.7, 1.4, 2.0, -6.0, 0.0, 0.2, 4.5, -9.0, 3.0, 1.0, -0.5, 7.0, 10.0)
    d, s = dynamic_quantize(x, dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16)
    # amax 12: sq = e4m3(12 / 6) = 2; data = e2m1_rne(x / 2):
    # 6, 2.5->2 (tie, even), -1.55->-1.5, 0.35->0.5, 0.7->0.5, 1, -3, 0, 0.1->0, 2.25->2,
    # -4.5->-4, 1.5, 0.5, -0.25->-0 (tie, even), 3.5->4 (tie, even), 5->4 (tie, even)
    assert s.dtype == E4M3 and s.tolist() == [2.0]
    assert d.astype(F32).tolist() == [6, 2, -1.5, 0.5, 0.5, 1, -3, 0, 0, 2, -4, 1.5, 0.5, 0, 4, 4]
    assert codes(d)[13] == 0x8  # -0
    # double quantization: amax 10, dq 0.5: sq = e4m3((10 / 6) / 0.5 = 3.33) = 3.25;
    # the data is divided by f32(sq) * dq = 1.625 (the rounded scale): 4.1 / 1.625 = 2.52
    # -> 3, where the unrounded 10 / 6 = 1.667 would give 2.46 -> 2
    x = f32s(10, 2.4375, -0.8125, 0.40625, 4.1)
    d, s = dynamic_quantize(
        x, dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16, double_quant_scale=0.5
    )
    assert s.tolist() == [3.25]
    assert d.astype(F32).tolist() == [6, 1.5, -0.5, 0, 3]
    # clipping of the scale: amax / 6 / dq beyond 448
    d, s = dynamic_quantize(
        f32s(6000, 1), dtype="f4E2M1FN", scale_dtype="f8E4M3FN", double_quant_scale=2.0
    )
    assert s.tolist() == 448.0 and d.astype(F32).tolist() == [6, 0]


def test_nvfp4_partial_block_uses_existing_elements():
    x = np.ones((2, 20), F32)
    x[:, 16:] = [[0.6, 0.3, -0.6, 0.0], [60, 1, 2, 3]]
    d, s = dynamic_quantize(x, dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16)
    assert s.shape == (2, 2)
    # e4m3(1 / 6) = 0.171875, e4m3(0.6 / 6) = 0.1015625, e4m3(60 / 6) = 10
    assert s.astype(F32).tolist() == [[0.171875, 0.1015625], [0.171875, 10.0]]
    for r in range(2):
        d2, s2 = dynamic_quantize(x[r, 16:], dtype="f4E2M1FN", scale_dtype="f8E4M3FN")
        assert same_bits(s2, s[r, 1]) and same_bits(d2, d[r, 16:])


@pytest.mark.parametrize(
    ("dtype", "amax", "floor", "rceil"),
    [
        # (format, amax, (e_floor, data of amax), (e_rceil, data of amax))
        ("f8E4M3FN", 449.0, (0, 448.0), (1, 224.0)),  # floor saturates, rceil never does
        ("f8E4M3FN", 448.0, (0, 448.0), (0, 448.0)),
        ("f8E4M3FN", 1.0, (-8, 256.0), (-8, 256.0)),  # 1 / 2^-8 = 256
        ("f8E4M3FN", 3.0, (-7, 384.0), (-7, 384.0)),  # 2^1 - 8; 3 * 128 = 384 <= 448
        ("f8E4M3FN", 3.5, (-7, 448.0), (-7, 448.0)),
        ("f8E4M3FN", 3.6, (-7, 448.0), (-6, 224.0)),  # 460.8 saturates / rounds to 448
        ("f8E5M2", 1.0, (-15, 32768.0), (-15, 32768.0)),
        ("f8E5M2", 1.9, (-15, 57344.0), (-14, 32768.0)),  # 62259 saturates under floor
        ("f4E2M1FN", 7.0, (0, 6.0), (1, 4.0)),  # 3.5 -> 4 (tie, even)
        ("f4E2M1FN", 6.0, (0, 6.0), (0, 6.0)),
        ("f4E2M1FN", 0.75, (-3, 6.0), (-3, 6.0)),  # floor(log2 .75) = -1, -1 - 2 = -3
        ("f4E2M1FN", 2.0**-140, (-127, 0.0), (-127, 0.0)),  # exponent clamps at -127
        ("f4E2M1FN", 3.0e38, (125, 6.0), (126, 4.0)),  # 7.05 saturates; 3.53 -> 4
    ],
)
def test_mx_worked_examples(dtype, amax, floor, rceil):
    x = f32s(amax, -amax / 2, 0.0)
    for rounding, (e, top) in (("floor", floor), ("rceil", rceil)):
        d, s = dynamic_quantize(
            x, dtype=dtype, scale_dtype="f8E8M0FNU", block_size=32, scale_rounding=rounding
        )
        assert s.dtype == E8M0 and codes(s) == [e + 127], rounding
        assert float(d[0]) == top, rounding
        assert float(d[2]) == 0.0


def test_mx_exponent_is_exact_against_brute_force():
    rng = np.random.default_rng(1)
    mant = rng.uniform(0.5, 1.0, 1000).astype(F32)
    mant[:100] = 0.875  # exactly the mantissa of 448 / 57344 (rceil boundary)
    mant[100:200] = 0.75  # the mantissa of 6
    with np.errstate(under="ignore"):
        amax = np.ldexp(mant, rng.integers(-150, 129, mant.size).astype(np.int32)).astype(F32)
    amax = amax[np.isfinite(amax) & (amax > 0)]
    amax = np.concatenate([amax, f32s(448, 57344, 6, 2.0**-149, 1.0, 3.4028235e38)])
    for dtype in ("f8E4M3FN", "f8E5M2", "f4E2M1FN"):
        fmax = float_max(dtype)
        emax_elem = math.frexp(fmax)[1] - 1
        for rounding in ("floor", "rceil"):
            _, s = dynamic_quantize(
                amax, dtype=dtype, scale_dtype="f8E8M0FNU", block_size=1, scale_rounding=rounding
            )
            got = np.asarray(codes(s)) - 127
            for a, e in zip(amax.tolist(), got.tolist()):
                if rounding == "floor":
                    want = math.frexp(a)[1] - 1 - emax_elem
                else:  # smallest e with a / 2^e <= fmax, by search (exact in Python floats)
                    want = math.frexp(a)[1] - math.frexp(fmax)[1] - 2
                    assert a / 2.0**want > fmax
                    while a / 2.0**want > fmax:
                        want += 1
                assert e == max(-127, min(127, want)), (dtype, rounding, a)


def test_dynamic_2d_tiles_with_partial_tiles():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((300, 200)) * rng.uniform(0.01, 100, (300, 1))).astype(F32)
    for dtype in ("f8E4M3FN", "i8"):
        d, s = dynamic_quantize(x, dtype=dtype, block_shape=[128, 128])
        assert s.shape == (3, 2)
        for i in range(3):
            for j in range(2):
                tile = x[i * 128 : (i + 1) * 128, j * 128 : (j + 1) * 128]
                dt, st = dynamic_quantize(tile, dtype=dtype)  # per-tensor on the tile
                assert same_bits(st, s[i, j]) and same_bits(
                    dt, d[i * 128 : (i + 1) * 128, j * 128 : (j + 1) * 128]
                )


def test_dynamic_granularity_keywords():
    x = np.arange(24, dtype=F32).reshape(4, 6) - 11
    _, s = dynamic_quantize(x, dtype="i8")  # no keyword: per-tensor
    assert s.shape == ()
    _, s = dynamic_quantize(x, dtype="i8", axis=0)  # axis without block: per-channel
    assert s.shape == (4,) and s.tolist() == [F32(v) / F32(127) for v in (11, 5, 6, 12)]
    _, s = dynamic_quantize(x, dtype="i8", axis=1)
    assert s.shape == (6,) and s.tolist() == [F32(v) / F32(127) for v in (11, 10, 9, 10, 11, 12)]
    _, s = dynamic_quantize(x, dtype="i8", block_shape=[1, -1])  # per-token
    assert s.shape == (4, 1) and s[:, 0].tolist() == [F32(v) / F32(127) for v in (11, 5, 6, 12)]
    _, s = dynamic_quantize(x, dtype="i8", axis=0, block_size=3)
    assert s.shape == (2, 6)
    _, s = dynamic_quantize(x, dtype="i8", block_size=4)  # default axis -1, partial block
    assert s.shape == (4, 2)


def test_dynamic_nan_and_inf_policy():
    x = f32s(1, np.nan, 2, 3, 4, 5, 6, 7).reshape(2, 4)
    d, s = dynamic_quantize(x, dtype="i8", block_size=4)
    assert np.isnan(s[0, 0]) and d[0].tolist() == [0] * 4  # x / NaN -> zero point
    assert s[1, 0] == F32(7) / F32(127) and d[1].tolist() == [73, 91, 109, 127]
    d, s, zp = dynamic_quantize(x, dtype="ui8", block_size=4, symmetric=False)
    assert np.isnan(s[0, 0]) and zp[0, 0] == 0 and d[0].tolist() == [0] * 4
    d, s = dynamic_quantize(x, dtype="f8E4M3FN", scale_dtype="f8E8M0FNU", block_size=4)
    assert codes(s) == [255, 127 + 2 - 8] and np.all(np.isnan(d[0].astype(F32)))
    d, s = dynamic_quantize(x, dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=4)
    assert np.isnan(float(s[0, 0])) and not np.isnan(float(s[1, 0]))
    # inf: amax inf -> f32 scale inf, e8m0 exponent clamps to 127
    y = f32s(np.inf, 1.0)
    d, s = dynamic_quantize(y, dtype="f8E4M3FN")
    assert s == np.inf and np.isnan(float(d[0])) and float(d[1]) == 0.0
    d, s = dynamic_quantize(y, dtype="f8E4M3FN", scale_dtype="f8E8M0FNU")
    assert codes(s) == [254] and float(d[0]) == 448.0


def test_dynamic_rejections():
    x = f32s(1, 2)
    with pytest.raises(ValueError):
        dynamic_quantize(x, dtype="f8E4M3FN", symmetric=False)
    with pytest.raises(ValueError):
        dynamic_quantize(x, dtype="i8", scale_dtype="f8E4M3FN")
    with pytest.raises(ValueError):
        dynamic_quantize(x, dtype="f8E4M3FN", double_quant_scale=2.0)
    with pytest.raises(ValueError):
        dynamic_quantize(x, dtype="f8E4M3FN", scale_dtype="f8E8M0FNU", eps=1e-3)
    with pytest.raises(ValueError):
        dynamic_quantize(x, dtype="f8E4M3FN", scale_dtype="f8E8M0FNU", scale_rounding="ceil")
    with pytest.raises(ValueError):
        dynamic_quantize(x, dtype="f4E2M1FN", scale_dtype="f8E4M3FN", double_quant_scale=0.0)


# ---------------------------------------------------------------------------------------
# fake_quantize
# ---------------------------------------------------------------------------------------


def test_fake_quantize_static_is_dequantize_of_quantize():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 8)).astype(F32)
    s, z = f32s(0.01, 0.02, 0.05), np.array([1, -3, 0], np.int8)
    y = fake_quantize(x, s, z, dtype="i8", axis=0)
    assert same_bits(y, dequantize(quantize(x, s, z, dtype="i8", axis=0), s, z, axis=0))
    y = fake_quantize(x.astype(np.float16), s, z, dtype="i8", axis=0)
    assert y.dtype == np.float16
    ref = dequantize(
        quantize(x.astype(np.float16), s, z, dtype="i8", axis=0), s, z, axis=0, dtype="f16"
    )
    assert same_bits(y, ref)
    y = fake_quantize(x, F32(0.1), dtype="f8E4M3FN")
    assert same_bits(y, dequantize(quantize(x, F32(0.1), dtype="f8E4M3FN"), F32(0.1)))
    y = fake_quantize(f32s(np.nan, np.inf), F32(0.5), 3, dtype="i8")
    assert y.tolist() == [0.0, F32(124) * F32(0.5)]  # NaN -> zero point -> 0


def test_fake_quantize_dynamic_symmetric_torchao():
    # torchao SYMMETRIC: s = amax / ((qmax - qmin) / 2) = 2 / 127.5
    x = f32s(-1, 0.5, 2)
    s = F32(2) / F32(127.5)
    q = [-64, 32, 127]  # -63.75, 31.875, 127.5 -> 128 clamps to 127
    assert same_bits(fake_quantize(x, dtype="i8"), np.array(q, F32) * s)
    # unsigned storage: zero point int((255 + 0 + 1) / 2) = 128
    y = fake_quantize(x, dtype="ui8")
    assert same_bits(y, (np.clip(np.rint(x / s) + 128, 0, 255).astype(F32) - 128) * s)
    # default eps = finfo(x.dtype).eps: an all-zero tensor gets scale eps, not a division by 0
    assert not np.any(fake_quantize(np.zeros(3, F32), dtype="i4"))
    y = fake_quantize(np.zeros(3, ml_dtypes.bfloat16), dtype="i4")
    assert y.dtype == BF16 and not np.any(y.astype(F32))


def test_fake_quantize_dynamic_asymmetric_int_domain():
    x = f32s(-1, 0.2, 3)
    s = F32(4) / F32(15)  # ui4: (3 - (-1)) / 15
    zp = 0 - np.rint(F32(-1) / s)  # torchao: qmin - rne(min_neg / s) = 4 (3.75 -> 4)
    assert zp == 4
    q = np.clip(np.rint(x / s) + zp, 0, 15)
    y = fake_quantize(x, dtype="ui4", symmetric=False)
    assert same_bits(y, ((q - zp) * s).astype(F32))


def test_fake_quantize_float_domain_worked_example():
    # ui4, per-tensor, float domain (tinygemm): xmin 0, xmax 3.75 -> s = 3.75 / 15 = 0.25,
    # mid = (15 + 0 + 1) / 2 = 8, zp = xmin + s * mid = 2, min_val = zp - s * mid = 0,
    # q = rne((x - 0) / 0.25) = [0, 6, 15, 1 (0.3/0.25 = 1.2)], x' = (q - 8) * 0.25 + 2
    x = f32s(0, 1.5, 3.75, 0.3)
    y = fake_quantize(x, dtype="ui4", symmetric=False, zero_point_domain="float")
    assert y.tolist() == [0, 1.5, 3.75, 0.25]
    # static: the same parameters given explicitly; NaN fakes to the image of 0
    y = fake_quantize(
        f32s(0.3, np.nan, 100), F32(0.25), F32(2.0), dtype="ui4", zero_point_domain="float"
    )
    assert y.tolist() == [0.25, 0.0, 3.75]
    # the float domain does not preserve zero: xmin / xmax are not clamped to 0
    y = fake_quantize(f32s(1, 2.5, 4.75), dtype="ui4", symmetric=False, zero_point_domain="float")
    assert y.tolist() == [1, 2.5, 4.75]
    with pytest.raises(ValueError):
        fake_quantize(x, dtype="i4", zero_point_domain="float")  # symmetric + float domain


def test_fake_quantize_granularities():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 64)).astype(F32)
    a = fake_quantize(x, dtype="i8", per_token=True, symmetric=False)
    b = fake_quantize(x, dtype="i8", block_shape=[1, -1], symmetric=False)
    c = np.stack([fake_quantize(r, dtype="i8", symmetric=False) for r in x])
    assert same_bits(a, b) and same_bits(a, c)
    a = fake_quantize(x, dtype="i4", block_size=32)  # per-group on the last axis
    c = np.concatenate(
        [fake_quantize(x[:, k : k + 32], dtype="i4", per_token=True) for k in (0, 32)], axis=1
    )
    assert same_bits(a, c)
    a = fake_quantize(x, dtype="i8", axis=0)  # per-channel
    assert same_bits(a, fake_quantize(x, dtype="i8", per_token=True))
    y = fake_quantize(x, dtype="f8E4M3FN", block_size=16)
    _, s = dynamic_quantize(x, dtype="f8E4M3FN", block_size=16)
    ref = dequantize(quantize(x, s, dtype="f8E4M3FN", block_size=16), s, block_size=16)
    assert same_bits(y, ref)


def test_fake_quantize_scale_and_zero_point_precision():
    x = f32s(-0.3, 0.1, 0.77)
    y = fake_quantize(x, dtype="i8", scale_dtype="bf16")
    s = F32(F32(0.77) / F32(127.5)).astype(BF16).astype(F32)
    assert same_bits(y, (np.clip(np.rint(x / s), -128, 127) * s).astype(F32))
    # float domain zero point cast to an integer dtype truncates (torch .to)
    y1 = fake_quantize(
        x, dtype="ui4", symmetric=False, zero_point_domain="float", zero_point_dtype=np.int32
    )
    y2 = fake_quantize(x, dtype="ui4", symmetric=False, zero_point_domain="float")
    assert not same_bits(y1, y2)


# ---------------------------------------------------------------------------------------
# pack / unpack
# ---------------------------------------------------------------------------------------

SUBBYTE = ["i4", "ui4", "f4E2M1FN", "i2", "ui2"]


@pytest.mark.parametrize("dtype", SUBBYTE)
@pytest.mark.parametrize(
    "shape", [(0,), (1,), (2,), (3,), (5,), (7,), (8,), (9,), (3, 5), (2, 3, 3)]
)
def test_pack_unpack_round_trip(dtype, shape):
    dt = storage_dtype(dtype)
    bits = 2 if dtype.endswith("2") else 4
    n = math.prod(shape)
    c = (np.arange(n) * 5 + 3) % (1 << bits)
    q = c.astype(np.uint8).view(dt).reshape(shape)
    p = pack(q)
    assert p.dtype == np.uint8 and p.shape == (-(-n * bits // 8),)
    u = unpack(p, dtype=dtype, shape=shape)
    assert u.dtype == dt and u.shape == shape and same_bits(u, q)
    # first element in the low bits, odd tail padded with zeros
    flat = np.zeros(p.size * (8 // bits), np.int64)
    flat[:n] = c
    want = sum(flat.reshape(-1, 8 // bits)[:, j] << (bits * j) for j in range(8 // bits))
    assert p.tolist() == np.asarray(want).reshape(-1).tolist()


def test_pack_explicit_bytes():
    assert pack(np.array([1, -1, 7], ml_dtypes.int4)).tolist() == [0xF1, 0x07]
    assert pack(np.array([-8, 0], ml_dtypes.int4)).tolist() == [0x08]
    assert pack(np.array([1, 2, 3, 0, 1], ml_dtypes.uint2)).tolist() == [0x39, 0x01]
    assert pack(np.array([-2, -1, 0, 1], ml_dtypes.int2)).tolist() == [0b01001110]
    assert pack(f32s(0.5, -6, 3).astype(E2M1)).tolist() == [0xF1, 0x05]
    assert unpack(np.array([0xF1, 0x07], np.uint8), dtype="i4", shape=(3,)).tolist() == [1, -1, 7]
    # C order of a 2-D array, padding bits ignored by unpack
    q = np.array([[1, 2, 3], [4, 5, 6]], ml_dtypes.uint4)
    assert pack(q).tolist() == [0x21, 0x43, 0x65]
    assert pack(np.asfortranarray(q)).tolist() == [0x21, 0x43, 0x65]
    assert unpack(np.array([0xF1], np.uint8), dtype="ui4", shape=(1,)).tolist() == [1]


def test_pack_unpack_rejections():
    with pytest.raises(ValueError):
        pack(np.array([1, 2], np.int8))
    with pytest.raises(ValueError):
        unpack(np.array([1, 2], np.uint8), dtype="i4", shape=(5,))
    with pytest.raises(ValueError):
        unpack(np.array([1], np.uint8), dtype="i8", shape=(1,))
    with pytest.raises(TypeError):
        unpack(np.array([1], np.int8), dtype="i4", shape=(2,))
