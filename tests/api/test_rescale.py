"""qopt.rescale (quant.rescale, docs/semantics.md section 12) against the exact-integer oracle,
every rounding mode and the edge cases; the TFLite and TVM transcriptions as second oracles."""

import itertools

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import qopt
from tests.support.rescale_oracle import (
    MLIR_DTYPES,
    ROUNDING_MODES,
    rescale,
    tflite_multiply_by_quantized_multiplier,
    tvm_fixed_point_multiply,
)

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
EDGE_I32 = np.array(
    [
        I32_MIN,
        I32_MIN + 1,
        -(2**30),
        -65536,
        -129,
        -128,
        -1,
        0,
        1,
        127,
        128,
        65535,
        2**30,
        I32_MAX - 1,
        I32_MAX,
    ],
    dtype=np.int32,
)
SHIFTS = [0, 1, 2, 14, 15, 30, 31, 32, 33, 47, 61, 62]
MULTIPLIERS_32 = [0, 1, 2, 3, 2**15 - 1, 2**30 - 1, 2**30, 2**30 + 1, 1518500250, 2**31 - 1]
MULTIPLIERS_16 = [0, 1, 2, 2**14 - 1, 2**14, 2**14 + 1, 2**15 - 1]


def _check(x, multiplier, shift, **kwargs):
    got = qopt.rescale(x, multiplier, shift, **kwargs)
    oracle_kwargs = dict(kwargs)
    oracle_kwargs.pop("multiplier_bits", None)
    want = rescale(x, multiplier, shift, **oracle_kwargs)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    return got


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_every_mode_shift_multiplier_and_i32_extremes(mode):
    # All multipliers x shifts on every extreme input, as one per-channel call per mode.
    pairs = list(itertools.product(MULTIPLIERS_32, SHIFTS))
    m = np.array([p[0] for p in pairs], np.int32)
    s = np.array([p[1] for p in pairs], np.int8)
    x = np.repeat(EDGE_I32[:, None], len(pairs), axis=1)
    for dtype in ("i8", "i16", "i32"):
        _check(x, m, s, axis=1, rounding=mode, dtype=dtype)


@pytest.mark.parametrize("mode", [m for m in ROUNDING_MODES if m != "double_round"])
def test_16_bit_multiplier(mode):
    pairs = list(itertools.product(MULTIPLIERS_16, SHIFTS))
    m = np.array([p[0] for p in pairs], np.int16)
    s = np.array([p[1] for p in pairs], np.int8)
    x = np.repeat(EDGE_I32[:, None], len(pairs), axis=1)
    _check(x, m, s, axis=1, rounding=mode, dtype="i16")
    _check(x.astype(np.int16), m, s, axis=1, rounding=mode, dtype="i32")


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_ties_of_every_mode(mode):
    # v * m / 2^s = k + 1/2 exactly, for k from -4 to 3: the modes differ only here.
    x = np.arange(-9, 9, dtype=np.int32)
    got = qopt.rescale(x, 1, 1, rounding=mode, dtype="i32")
    half_up = np.floor((x + 1) / 2).astype(np.int32)
    away = np.where(x < 0, -np.floor((-x + 1) / 2), np.floor((x + 1) / 2)).astype(np.int32)
    np.testing.assert_array_equal(got, away if mode == "tonearest" else half_up)


def test_double_round_differs_only_above_shift_31():
    rng = np.random.default_rng(3)
    x = rng.integers(I32_MIN, I32_MAX, 4096, dtype=np.int64).astype(np.int32)
    for shift in range(2, 63):
        m = (1 << 30) + 12345
        single = qopt.rescale(x, m, shift, dtype="i32")
        double = qopt.rescale(x, m, shift, dtype="i32", rounding="double_round")
        if shift <= 31:
            np.testing.assert_array_equal(single, double)
        np.testing.assert_array_equal(
            double, rescale(x, m, shift, dtype=np.int32, rounding="double_round")
        )


@pytest.mark.parametrize("in_dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32])
@pytest.mark.parametrize("out_dtype", ["i8", "ui8", "i16", "ui16", "i32", "ui32"])
def test_zero_points_at_the_range_ends(in_dtype, out_dtype):
    info = np.iinfo(in_dtype)
    x = np.array([info.min, info.min + 1, 0, 1, info.max - 1, info.max], in_dtype)
    out_info = np.iinfo(MLIR_DTYPES[out_dtype])
    for zi, zo in itertools.product((info.min, 0, info.max), (out_info.min, 0, out_info.max)):
        for m, s in ((2**30, 30), (2**31 - 1, 31), (1518500250, 40)):
            _check(x, m, s, in_zero_point=int(zi), out_zero_point=int(zo), dtype=out_dtype)


def test_unsigned_flags_and_signed_bit_pattern_zero_points():
    x = np.arange(-128, 128, dtype=np.int8)
    # input_unsigned: the bytes are 0..255; zero point 200 written as -56 or 200
    a = _check(x, 2**30, 30, input_unsigned=True, in_zero_point=-56, dtype="i16")
    b = _check(x, 2**30, 30, input_unsigned=True, in_zero_point=200, dtype="i16")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, x.view(np.uint8).astype(np.int16) - 200)
    # output_unsigned on a signless output: results are u8 bit patterns in an int8 array
    c = _check(x, 2**30, 30, output_unsigned=True, out_zero_point=-128, dtype="i8")
    np.testing.assert_array_equal(c.view(np.uint8), np.clip(x.astype(int) + 128, 0, 255))
    # uint16 with TOSA's zero point 32768, written as -32768
    u = np.array([0, 1, 32767, 32768, 65535], np.uint16)
    _check(u, 2**30, 30, in_zero_point=-32768, dtype="i16")
    _check(u.view(np.int16), 2**30, 30, in_zero_point=32768, input_unsigned=True, dtype="i16")


@pytest.mark.parametrize("mode", ROUNDING_MODES)
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_per_channel_on_every_axis(mode, axis):
    rng = np.random.default_rng(axis + 7)
    shape = (5, 6, 7)
    x = rng.integers(I32_MIN, I32_MAX, shape, dtype=np.int64).astype(np.int32)
    n = shape[axis]
    m = rng.integers(0, 2**31, n).astype(np.int32)
    s = rng.integers(20, 63, n).astype(np.int8)
    _check(x, m, s, axis=axis, rounding=mode, out_zero_point=-7)
    # a scalar shift broadcasts to the channels of a per-channel multiplier
    _check(x, m, 40, axis=axis, rounding=mode, dtype="i16")


@pytest.mark.parametrize("shape", [(0,), (0, 5), (3, 0), (), (1,), (1, 1)])
def test_empty_and_one_element(shape):
    x = np.full(shape, -(2**31) + 5, np.int32)
    got = _check(x, 2**31 - 1, 31, out_zero_point=3)
    assert got.shape == shape
    if len(shape) >= 1 and shape[-1]:
        n = shape[-1]
        _check(x, np.full(n, 2**30, np.int32), np.full(n, 30, np.int8), axis=-1)


def test_saturate_false_keeps_the_low_bits():
    x = np.array([I32_MIN, -1000, -129, 128, 1000, I32_MAX], np.int32)
    got = _check(x, 2**30, 30, saturate=False, out_zero_point=5)
    np.testing.assert_array_equal(got, (x.astype(np.int64) + 5).astype(np.int8))


def test_inexact_round_is_within_the_tosa_error_band():
    rng = np.random.default_rng(5)
    x = rng.integers(-(2**20), 2**20, 2000, dtype=np.int64).astype(np.int32)
    m, s, zo = 1518500250, 40, 9
    got = qopt.rescale(x, m, s, out_zero_point=zo, rounding="inexact_round").astype(np.float64)
    out_ref = x.astype(np.float64) * m * 2.0**-s
    err = 0.5 + (3 * abs(out_ref) + abs(out_ref + zo)) * 2.0**-24
    lo = np.clip(np.ceil(out_ref - err + zo), -128, 127)
    hi = np.clip(np.floor(out_ref + err + zo), -128, 127)
    assert ((lo <= got) & (got <= hi)).all()


# --- second oracles: TFLite and TVM, each in its own arithmetic ----------------------------


@pytest.mark.parametrize("single", [False, True])
def test_tflite_multiply_by_quantized_multiplier_is_rescale(single):
    rng = np.random.default_rng(11)
    x = np.concatenate(
        [EDGE_I32, rng.integers(I32_MIN, I32_MAX, 400, dtype=np.int64).astype(np.int32)]
    )
    mode = "single_round" if single else "double_round"
    for m, tshift in [
        (2**30, 0),
        (1518500250, -7),
        (2**31 - 1, -20),
        (1 << 30, -31),
        (1900000000, 0),
    ]:
        want = [
            tflite_multiply_by_quantized_multiplier(int(v), m, tshift, single_rounding=single)
            for v in x
        ]
        got = qopt.rescale(x, m, 31 - tshift, dtype="i32", rounding=mode)
        np.testing.assert_array_equal(got, np.clip(want, I32_MIN, I32_MAX))
    # a left shift (TFLite shift > 0) on inputs that stay within int32 after it
    small = (x >> 4).astype(np.int32)
    for m, tshift in [(2**30, 3), (1518500250, 1)]:
        want = [
            tflite_multiply_by_quantized_multiplier(int(v), m, tshift, single_rounding=single)
            for v in small
        ]
        got = qopt.rescale(small, m, 31 - tshift, dtype="i32", rounding=mode)
        np.testing.assert_array_equal(got, np.clip(want, I32_MIN, I32_MAX))


@pytest.mark.parametrize("rounding", ["UPWARD", "TONEAREST"])
def test_tvm_fixed_point_multiply_is_rescale(rounding):
    rng = np.random.default_rng(13)
    x = np.concatenate(
        [EDGE_I32, rng.integers(I32_MIN, I32_MAX, 400, dtype=np.int64).astype(np.int32)]
    )
    for m, shift in [(2**30, 0), (1518500250, -5), (2**31 - 1, -30), (1234567890, 2)]:
        want = [tvm_fixed_point_multiply(int(v), m, shift, rounding) for v in x]
        got = qopt.rescale(x, m, 31 - shift, dtype="i32", rounding=rounding.lower())
        np.testing.assert_array_equal(got, np.clip(want, I32_MIN, I32_MAX))


# --- properties ---------------------------------------------------------------------------

_STORAGE = ["i8", "ui8", "i16", "ui16", "i32", "ui32"]


@st.composite
def _cases(draw):
    in_name = draw(st.sampled_from(_STORAGE))
    out_name = draw(st.sampled_from(_STORAGE))
    dtype = MLIR_DTYPES[in_name]
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    info = np.iinfo(dtype)
    x = draw(
        st.lists(
            st.integers(int(info.min), int(info.max)),
            min_size=int(np.prod(shape)),
            max_size=int(np.prod(shape)),
        )
    )
    mode = draw(st.sampled_from(ROUNDING_MODES))
    bits = 32 if mode == "double_round" else draw(st.sampled_from([32, 16]))
    axis = draw(st.one_of(st.none(), st.integers(0, rank - 1)))
    n = 1 if axis is None else shape[axis]
    top = 2**31 - 1 if bits == 32 else 2**15 - 1
    m = draw(st.lists(st.integers(0, top), min_size=n, max_size=n))
    s = draw(st.lists(st.integers(0, 62), min_size=n, max_size=n))
    out_dtype = MLIR_DTYPES[out_name]
    zi = draw(st.integers(int(info.min), int(info.max)))
    zo = draw(st.integers(int(np.iinfo(out_dtype).min), int(np.iinfo(out_dtype).max)))
    saturate = draw(st.booleans())
    return dict(
        x=np.array(x, dtype).reshape(shape),
        multiplier=np.array(m, f"i{bits // 8}") if axis is not None else m[0],
        shift=np.array(s, np.int8) if axis is not None else s[0],
        axis=axis,
        rounding=mode,
        multiplier_bits=bits,
        in_zero_point=zi,
        out_zero_point=zo,
        dtype=out_name,
        saturate=saturate,
    )


@settings(max_examples=150, deadline=None)
@given(_cases())
@example(
    dict(
        x=np.array([I32_MIN, I32_MAX], np.int32),
        multiplier=2**31 - 1,
        shift=0,
        axis=None,
        rounding="tonearest",
        multiplier_bits=32,
        in_zero_point=I32_MAX,
        out_zero_point=I32_MIN,
        dtype="i32",
        saturate=True,
    )
)
def test_property_rescale_equals_the_oracle(case):
    kwargs = dict(case)
    x = kwargs.pop("x")
    m, s = kwargs.pop("multiplier"), kwargs.pop("shift")
    out_dtype = MLIR_DTYPES[kwargs["dtype"]]
    got = qopt.rescale(x, m, s, **kwargs)
    kwargs.pop("multiplier_bits")
    kwargs["dtype"] = out_dtype
    np.testing.assert_array_equal(got, rescale(x, m, s, **kwargs))


# --- misuse ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(multiplier=-1), ValueError, "multiplier -1 is outside"),
        (dict(multiplier=2**31), ValueError, "multiplier 2147483648 is outside"),
        (dict(multiplier=2**15, multiplier_bits=16), ValueError, "multiplier 32768 is outside"),
        (dict(shift=63), ValueError, "shift 63 is outside"),
        (dict(shift=-1), ValueError, "shift -1 is outside"),
        (dict(shift=1.5), TypeError, "shift"),
        (dict(multiplier=True), TypeError, "multiplier"),
        (dict(rounding="nearest_even"), ValueError, "rounding must be one of"),
        (dict(rounding="double_round", multiplier_bits=16), ValueError, "32-bit multiplier"),
        (dict(multiplier_bits=8), ValueError, "multiplier_bits"),
        (dict(multiplier=np.ones(8, np.int32)), ValueError, "needs axis"),
        (dict(multiplier=np.ones(3, np.int32), axis=1), ValueError, "must have 8 entries"),
        (dict(axis=2), ValueError, "axis 2 is out of range"),
        (dict(in_zero_point=2**31), ValueError, "in_zero_point"),
        (dict(out_zero_point=128), ValueError, "out_zero_point 128 is outside"),
        (dict(out_zero_point=0.5), TypeError, "out_zero_point"),
        (dict(dtype="f32"), ValueError, "dtype must be one of"),
        (dict(saturate=1), TypeError, "saturate"),
    ],
)
def test_misuse_names_the_argument(kwargs, error, match):
    args = dict(multiplier=2**30, shift=30)
    args.update(kwargs)
    x = np.zeros((4, 8), np.int32)
    with pytest.raises(error, match=match):
        qopt.rescale(x, args.pop("multiplier"), args.pop("shift"), **args)


def test_float_input_is_rejected():
    with pytest.raises(ValueError, match="x.dtype must be one of"):
        qopt.rescale(np.zeros(4, np.float32), 1, 1)
