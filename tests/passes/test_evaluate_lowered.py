"""The evaluator of lowered scalar ops: LLVM's semantics where numpy's differ.

Signed zeros in ``maximumf`` / ``minimumf``, NaN in comparisons, ``math.round``'s ties,
integer wrap-around and the bit casts of sub-byte float formats; plus a whole body the
lowering builds (the dynamic per-token int8 scale) against the oracle.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from xdsl.dialects import math
from xdsl.dialects.builtin import (
    IntegerType,
    Signedness,
    UnknownLoc,
    f4E2M1FN,
    f8E4M3FN,
    f32,
    i8,
    i32,
)
from xdsl.dialects.linalg.ops import YieldOp
from xdsl.ir import Block

from qopt.passes.dynamic_math import DynamicForm, Stats, dynamic_data, dynamic_params
from qopt.passes.evaluate_lowered import evaluate_block
from qopt.passes.scalar_ir import BodyBuilder, Storage
from tests.support import oracle


def run(arg_types, build, *args):
    """Build a body with ``build(b, *block_args) -> results`` and evaluate it."""
    block = Block(arg_types=arg_types)
    b = BodyBuilder(block, UnknownLoc())
    results = build(b, *block.args)
    b.emit(YieldOp(*results))
    return evaluate_block(block, args)


def f32_bits(a) -> np.ndarray:
    return np.asarray(a, np.float32).view(np.uint32)


def test_maximumf_minimumf_order_signed_zeros_and_propagate_nan():
    a = np.array([-0.0, 0.0, -0.0, 0.0, np.nan, 1.0, -np.inf], np.float32)
    c = np.array([0.0, -0.0, -0.0, 0.0, 1.0, np.nan, 3.0], np.float32)
    hi, lo = run([f32, f32], lambda b, x, y: [b.maximumf(x, y), b.minimumf(x, y)], a, c)
    assert np.array_equal(f32_bits(hi[:4]), f32_bits([0.0, 0.0, -0.0, 0.0]))
    assert np.array_equal(f32_bits(lo[:4]), f32_bits([-0.0, -0.0, -0.0, 0.0]))
    assert np.isnan(hi[4:6]).all() and np.isnan(lo[4:6]).all()
    assert hi[6] == 3.0 and lo[6] == -np.inf


@pytest.mark.parametrize(
    "predicate, expected",
    [
        ("oeq", [False, True, False]),
        ("une", [True, False, True]),
        ("uno", [False, False, True]),
        ("oge", [False, True, False]),
        ("ult", [True, False, True]),
    ],
)
def test_cmpf_predicates_with_nan(predicate, expected):
    a = np.array([1.0, 2.0, np.nan], np.float32)
    c = np.array([2.0, 2.0, 1.0], np.float32)
    (got,) = run([f32, f32], lambda b, x, y: [b.cmpf(predicate, x, y)], a, c)
    assert got.tolist() == expected


def test_rounding_ops_ties_and_near_ties():
    v = np.array([-2.5, -1.5, -0.5, 0.49999997, 0.5, 1.5, 2.5, -0.49999997, 3e38], np.float32)
    away, even, trunc, floor = run(
        [f32],
        lambda b, x: [
            b.unary(math.RoundOp, x),
            b.unary(math.RoundEvenOp, x),
            b.unary(math.TruncOp, x),
            b.unary(math.FloorOp, x),
        ],
        v,
    )
    assert away.tolist() == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, -0.0, np.float32(3e38)]
    assert even.tolist() == [-2.0, -2.0, -0.0, 0.0, 0.0, 2.0, 2.0, -0.0, np.float32(3e38)]
    assert np.array_equal(trunc, np.trunc(v)) and np.array_equal(floor, np.floor(v))


def test_integer_ops_wrap_to_their_type():
    ui8 = IntegerType(8, Signedness.UNSIGNED)
    x = np.array([0, 127, -128, -1], np.int64)
    wide, zext, back, shifted = run(
        [i8],
        lambda b, q: [
            b.extsi(q, i32),
            b.extui(q, i32),
            b.trunci(b.addi(b.extsi(q, i32), b.i32(200)), ui8),
            b.shrui(b.shli(b.extui(q, i32), b.i32(28)), b.i32(28)),
        ],
        x,
    )
    assert wide.tolist() == [0, 127, -128, -1]
    assert zext.tolist() == [0, 127, 128, 255]
    assert back.tolist() == [200, (127 + 200) % 256, 72, 199]
    assert shifted.tolist() == [0, 15, 0, 15]


def test_bitcasts_and_float_conversions_of_small_formats():
    codes = np.arange(16, dtype=np.uint8).view(ml_dtypes.float4_e2m1fn)
    bits, back, wide = run(
        [f4E2M1FN],
        lambda b, c: [
            b.extui(b.bitcast(c, IntegerType(4)), i32),
            b.bitcast(
                b.trunci(b.extui(b.bitcast(c, IntegerType(4)), i32), IntegerType(4)), f4E2M1FN
            ),
            b.extf(c),
        ],
        codes,
    )
    assert bits.tolist() == list(range(16))
    assert np.array_equal(back.view(np.uint8), codes.view(np.uint8))
    assert np.array_equal(wide, codes.astype(np.float32))
    x = np.array([448.0, 464.0, 1000.0, -0.0, np.nan], np.float32)
    (q,) = run([f32], lambda b, v: [b.truncf(v, f8E4M3FN)], x)
    assert np.array_equal(q.view(np.uint8), x.astype(ml_dtypes.float8_e4m3fn).view(np.uint8))


def test_a_dynamic_quantize_body_matches_the_oracle():
    """The per-token symmetric int8 scale and data, as lower-quant builds them, evaluated
    on a row of data with its amax: the oracle's scale and codes."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((8, 64)) * 3).astype(np.float32)
    x[3, 5] = np.nan
    amax = np.abs(x).max(axis=1, keepdims=True).view(np.int32).astype(np.int64)
    amax[3] = 0x7FC00000
    form = DynamicForm(Storage.of(i8), f32)

    def build(b, xv, amax_bits):
        params = dynamic_params(b, Stats(amax_bits=amax_bits), form, None)
        return [dynamic_data(b, xv, params, form), params.scale]

    codes, scale = run([f32, i32], build, x, amax)
    expected_codes, expected_scale = oracle.dynamic_quantize(
        x, dtype="i8", scale_dtype="f32", block_shape=(1, -1)
    )
    assert np.array_equal(codes, expected_codes.astype(np.int64))
    assert np.array_equal(f32_bits(scale[:, :1]), f32_bits(expected_scale))
