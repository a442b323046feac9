"""Scale <-> (multiplier, shift): qopt.quantize_multiplier against transcriptions of TOSA's
computeMultiplierAndShift and TFLite's QuantizeMultiplier; requantize-to-rescale, which
changes results, against the rescale oracle, with its differences from the float op
counted."""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import qopt
from tests.support.rescale_oracle import (
    rescale,
    tflite_quantize_multiplier,
    tosa_compute_multiplier_and_shift,
)

_SCALES = st.floats(min_value=2.0**-70, max_value=2.0**29, allow_nan=False, allow_infinity=False)


@settings(max_examples=400, deadline=None)
@given(_SCALES, st.sampled_from([32, 16]))
@example(1.0, 32)
@example(0.5 - 2.0**-34, 32)  # the mantissa rounds up to 2^31: halved, exponent + 1
@example(1 - 2.0**-17, 16)
@example(2.0**-40, 32)  # shift above 62: the multiplier is shifted right
@example(2.0**-70, 16)
def test_tosa_convention_matches_compute_multiplier_and_shift(scale, bits):
    want = tosa_compute_multiplier_and_shift(scale, bits)
    if want[1] < 0:
        with pytest.raises(ValueError, match="too large"):
            qopt.quantize_multiplier(scale, bits=bits)
        return
    assert qopt.quantize_multiplier(scale, bits=bits) == want


@settings(max_examples=400, deadline=None)
@given(st.floats(min_value=2.0**-40, max_value=2.0**30, allow_nan=False))
@example(2.0**-32)  # below 2^-31: flushed to (0, 0)
@example(0.5 - 2.0**-34)
def test_tflite_convention_matches_quantize_multiplier(scale):
    multiplier, tflite_shift = tflite_quantize_multiplier(scale)
    if 31 - tflite_shift < 0:
        with pytest.raises(ValueError):
            qopt.quantize_multiplier(scale, convention="tflite")
        return
    want = (multiplier, 31 - tflite_shift) if multiplier else (0, 0)
    assert qopt.quantize_multiplier(scale, convention="tflite") == want


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0**-30, max_value=2.0**20, allow_nan=False))
def test_round_trip_error(scale):
    m, s = qopt.quantize_multiplier(scale)
    back = qopt.multiplier_to_scale(m, s)
    assert abs(back - scale) <= scale * 2.0**-30  # half a unit of a 31-bit mantissa
    if scale >= 2.0**14:
        return
    m16, s16 = qopt.quantize_multiplier(scale, bits=16)
    assert abs(qopt.multiplier_to_scale(m16, s16) - scale) <= scale * 2.0**-14


def test_arrays_and_exact_inverse():
    scales = np.array([[0.25, 1e-3], [3.0, 1e-9]])
    m, s = qopt.quantize_multiplier(scales)
    assert m.dtype == np.int32 and s.dtype == np.int8 and m.shape == (2, 2)
    assert qopt.multiplier_to_scale(m, s)[0, 0] == 0.25
    assert qopt.multiplier_to_scale(1518500250, 31) == math.ldexp(1518500250, -31)
    m16, _ = qopt.quantize_multiplier(scales, bits=16)
    assert m16.dtype == np.int16


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((-1.0,), {}, "scale must be finite and >= 0"),
        ((math.inf,), {}, "scale must be finite"),
        ((1.0,), {"bits": 8}, "bits must be 32 or 16"),
        ((1.0,), {"convention": "gemmlowp"}, "convention must be one of"),
        ((1.0,), {"convention": "tflite", "bits": 16}, "32-bit multipliers only"),
        ((2.0**31,), {}, "too large"),
    ],
)
def test_conversion_misuse(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        qopt.quantize_multiplier(*args, **kwargs)


# --- requantize-to-rescale -----------------------------------------------------------------

_REQUANT = """func.func @f(%q: tensor<64x16xi8>) -> tensor<64x16xi8> {{
  %r = quant.requantize %q in(scale(dense<{s_in}> : tensor<16xf32>) zero_point(dense<3> : tensor<16xi8>) per_axis(1))
         out(scale({s_out}) zero_point(-4)) : tensor<64x16xi8> -> tensor<64x16xi8>
  func.return %r : tensor<64x16xi8>
}}"""


def test_requantize_to_rescale_computes_the_rescale_and_differs_by_at_most_one():
    from qopt.ir.printing import print_ir
    from qopt.passes.requantize_to_rescale import RequantizeToRescalePass
    from qopt.qdialect.context import make_context, parse_module

    rng = np.random.default_rng(21)
    s_in = rng.uniform(0.01, 0.2, 16).astype(np.float32)
    s_out = np.float32(0.07)
    text = _REQUANT.format(
        s_in="[" + ", ".join(repr(float(v)) for v in s_in) + "]", s_out=float(s_out)
    )
    module = parse_module(text)
    RequantizeToRescalePass().apply(make_context(), module)
    converted = print_ir(module)
    assert "quant.rescale" in converted and "quant.requantize" not in converted
    q = np.arange(-128, 128, dtype=np.int8).reshape(64, 4).repeat(4, axis=1)
    fixed = qopt.compile(converted)(q)
    floating = qopt.compile(text)(q)
    m, s = qopt.quantize_multiplier(s_in.astype(np.float64) / np.float64(s_out))
    want = rescale(q, m, s, in_zero_point=3, out_zero_point=-4, axis=1)
    np.testing.assert_array_equal(fixed, want)
    diff = np.abs(fixed.astype(int) - floating.astype(int))
    assert diff.max() <= 1  # what the pass changes: ties and the rounded ratio, one code
