"""``zero_point_order``: ONNX's ``round(x / s) + zp`` and upstream MLIR / StableHLO's
``round(f32(x / s) + zp)`` (docs/semantics.md section 3), bit for bit against the oracle.

The two differ on ties with an odd zero point, where the f32 sum itself rounds, and on
NaN (the zero point, or 0); both are checked, and that they do differ on such inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import qopt
from tests.support import oracle
from tests.support.bits import assert_same_bits

F32 = np.float32
ORDERS = ("after_rounding", "before_rounding")
TIES = np.array(
    [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.25, 0.75, np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0]
    + [1e9, -1e9, 126.5, -127.5, 8388607.5, 16777215.0, 3.4e38, 1e-45],
    dtype=F32,
)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", ["i8", "ui8", "i4", "ui4", "i16", "ui16", "i2"])
@pytest.mark.parametrize("zp_pick", ["odd", "even", "low", "high"])
def test_quantize_orders_match_oracle(order, dtype, zp_pick):
    lo, hi = oracle.int_range(oracle.storage_dtype(dtype))
    zp = {"odd": lo + 1 if (lo + 1) % 2 else lo + 2, "even": lo + 2 - (lo % 2), "low": lo}.get(
        zp_pick, hi
    )
    x = np.concatenate([TIES, TIES * F32(0.5), np.linspace(-300, 300, 997, dtype=F32)])
    for scale in (F32(1.0), F32(0.5), F32(0.1), F32(3.0e-3)):
        got = qopt.quantize(x, scale, zp, dtype=dtype, zero_point_order=order)
        want = oracle.quantize(x, scale, zp, dtype=dtype, zero_point_order=order)
        assert_same_bits(got, want)


def test_orders_differ_on_odd_zero_point_ties_and_nan():
    x = np.array([0.25, 0.75, -0.25, np.nan], F32)
    after = qopt.quantize(x, F32(0.5), 3, dtype="i8")
    before = qopt.quantize(x, F32(0.5), 3, dtype="i8", zero_point_order="before_rounding")
    # 0.5 + 3 = 3.5 -> 4 but rne(0.5) + 3 = 3; 1.5 + 3 = 4.5 -> 4 but 2 + 3 = 5; NaN -> 0 / zp
    assert after.tolist() == [3, 5, 3, 3]
    assert before.tolist() == [4, 4, 2, 0]


def test_f32_sum_rounds_before_rounding():
    # x / s = 2^24 - 1 + 0.5 is not representable; 8388607.5 + 1 = 8388608.5 -> rounds in f32
    x = np.array([8388607.5, 4194303.75], F32)
    got = qopt.quantize(x, F32(1.0), 1, dtype="i16", zero_point_order="before_rounding")
    assert_same_bits(
        got, oracle.quantize(x, F32(1.0), 1, dtype="i16", zero_point_order="before_rounding")
    )


@pytest.mark.parametrize("order", ORDERS)
def test_per_axis_and_narrow_range(order):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((5, 6)) * 40).astype(F32)
    x[0, :] = [0.5, 1.5, -0.5, np.nan, np.inf, -np.inf]
    scale = np.array([0.5, 1.0, 0.25, 2.0, 0.1, 1.5], F32)
    zp = np.array([-3, 1, 5, 0, 7, -127], np.int8)
    got = qopt.quantize(x, scale, zp, dtype="i8", axis=1, zero_point_order=order)
    assert_same_bits(got, oracle.quantize(x, scale, zp, dtype="i8", axis=1, zero_point_order=order))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("lowering", ["fused", "composite", "lut"])
def test_requantize_orders(order, lowering):
    q = np.arange(-128, 128, dtype=np.int8)
    for s_in, zp_in, s_out, zp_out in ((0.5, 1, 1.0, 3), (0.25, -7, 0.5, -5), (1.0, 0, 2.0, 1)):
        got = qopt.requantize(
            q, F32(s_in), zp_in, F32(s_out), zp_out, lowering=lowering, zero_point_order=order
        )
        want = oracle.requantize(q, F32(s_in), zp_in, F32(s_out), zp_out, zero_point_order=order)
        assert_same_bits(got, want)


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(np.float32, st.integers(1, 40), elements=st.floats(width=32, allow_nan=True)),
    scale=st.floats(0.0009765625, 1024.0, width=32),
    zp=st.integers(-128, 127),
)
def test_before_rounding_property(x, scale, zp):
    got = qopt.quantize(x, F32(scale), zp, dtype="i8", zero_point_order="before_rounding")
    want = oracle.quantize(x, F32(scale), zp, dtype="i8", zero_point_order="before_rounding")
    assert_same_bits(got, want)


def test_api_rejects_bad_orders():
    x = np.zeros(4, F32)
    with pytest.raises(ValueError, match="zero_point_order"):
        qopt.quantize(x, F32(1.0), dtype="i8", zero_point_order="sideways")
    with pytest.raises(ValueError, match="integer storage"):
        qopt.quantize(x, F32(1.0), dtype="f8E4M3FN", zero_point_order="before_rounding")
