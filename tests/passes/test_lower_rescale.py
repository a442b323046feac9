"""lower-quant of quant.rescale: compiled kernels against the numpy oracle (exact integers)."""

import numpy as np
import pytest

import qopt
from tests.support.rescale_oracle import ROUNDING_MODES, rescale


def _kernel(shape, axis, mode, in_type="i32", out_type="i8", mul_type="i32", extra=""):
    n = shape[axis]
    dims = "x".join(map(str, shape))
    text = f"""func.func @f(%x: tensor<{dims}x{in_type}>, %m: tensor<{n}x{mul_type}>,
        %s: tensor<{n}xi8>) -> tensor<{dims}x{out_type}> {{
  %r = quant.rescale %x multiplier(%m : tensor<{n}x{mul_type}>) shift(%s : tensor<{n}xi8>)
         per_axis({axis}) rounding({mode}) {extra} : tensor<{dims}x{in_type}> -> tensor<{dims}x{out_type}>
  func.return %r : tensor<{dims}x{out_type}>
}}"""
    return qopt.compile(text)


@pytest.mark.parametrize("mode", ROUNDING_MODES)
@pytest.mark.parametrize("axis", [0, 1])
def test_runtime_per_axis_parameters_i32_extremes(mode, axis):
    rng = np.random.default_rng(1)
    shape = (48, 40)
    x = rng.integers(-(2**31), 2**31, shape, dtype=np.int64).astype(np.int32)
    x[0], x[1], x[2] = -(2**31), 2**31 - 1, 0
    x[:, 3] = -(2**31)
    n = shape[axis]
    m = rng.integers(0, 2**31, n).astype(np.int32)
    s = rng.integers(0, 63, n).astype(np.int8)
    m[:4] = [2**31 - 1, 0, 1, 2**30]
    s[:4] = [62, 0, 32, 31]
    got = _kernel(shape, axis, mode, extra="out_zero_point(-5)")(x, m, s)
    want = rescale(x, m, s, out_zero_point=-5, dtype=np.int8, axis=axis, rounding=mode)
    np.testing.assert_array_equal(got, want)


def test_runtime_shift_outside_the_domain_is_clamped():
    x = np.arange(-8, 8, dtype=np.int32).reshape(2, 8) * 1000
    m = np.full(8, 1 << 30, np.int32)
    s = np.array([-1, -128, 63, 127, 0, 62, 30, 2], np.int8)
    got = _kernel((2, 8), 1, "single_round", out_type="i32")(x, m, s)
    want = rescale(x, m, np.clip(s, 0, 62), dtype=np.int32, axis=1)
    np.testing.assert_array_equal(got, want)


def test_empty_per_axis_constant_tables():
    text = """func.func @f(%x: tensor<0x8xi32>) -> tensor<0x8xi8> {
  %r = quant.rescale %x multiplier(dense<> : tensor<0xi32>) shift(dense<> : tensor<0xi8>)
         per_axis(0) : tensor<0x8xi32> -> tensor<0x8xi8>
  func.return %r : tensor<0x8xi8>
}"""
    assert qopt.compile(text)(np.zeros((0, 8), np.int32)).shape == (0, 8)
