"""fold-quant's compile-time evaluator against the numpy oracle, on every input code.

The evaluator (``qopt.passes.fold_eval``) runs the lowering's own element bodies through
``qopt.passes.evaluate_lowered``; the oracle (tests/support/oracle.py) is the independent
numpy reference of docs/semantics.md sections 3-5. They must agree bit for bit on every code of every
storage format, for every rounding mode, at ordinary and extreme scales.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from xdsl.dialects.builtin import bf16, f16, f32

from qopt.passes import fold_eval
from qopt.qdialect import formats
from qopt.qdialect.ops import ROUNDING_MODES
from tests.support import oracle

INT_STORAGES = ["i2", "ui2", "i4", "ui4", "i8", "ui8", "i16", "ui16"]
FLOAT_STORAGES = ["f8E4M3FN", "f8E5M2", "f4E2M1FN"]
STORAGES = INT_STORAGES + FLOAT_STORAGES
EXPRESSED = {"f32": f32, "f16": f16, "bf16": bf16}

TINY = float(np.finfo(np.float32).tiny)
HUGE = float(np.finfo(np.float32).max)
SCALES = [
    float(np.float32(s))
    for s in (2.0**-149, 1e-40, TINY, 1e-7, 0.1, 1 / 3, 0.37, 1.0, 3.0, 1000.0, 1e30, HUGE)
]
OUT_SCALES = [float(np.float32(s)) for s in (2.0**-149, 1e-3, 0.37, 0.5, 1.0, 2.0, 7.0, 1e30)]


def every_code(name: str) -> np.ndarray:
    dtype = oracle.storage_dtype(name)
    if name in FLOAT_STORAGES:
        return np.arange(
            1 << formats.bit_width(formats.parse_type_name(name)), dtype=np.uint8
        ).view(dtype)
    info = ml_dtypes.iinfo(dtype)
    return np.arange(int(info.min), int(info.max) + 1).astype(dtype)


def zero_points(name: str) -> list[int | None]:
    if name in FLOAT_STORAGES:
        return [None]
    lo, hi = oracle.int_range(oracle.storage_dtype(name))
    return [None, lo, (lo + hi + 1) // 2, hi]


def bits(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype in {oracle.storage_dtype(n) for n in FLOAT_STORAGES}:
        return a.view(np.uint8)
    if a.dtype.kind == "f" or a.dtype == ml_dtypes.bfloat16:
        return a.astype(np.float32).view(np.uint32)
    return a.astype(np.int64)


def as_codes(values: np.ndarray, name: str) -> np.ndarray:
    """The evaluator's codes (int64 values / float formats) in the oracle's dtype."""
    return np.asarray(values).astype(oracle.storage_dtype(name))


def evaluator_requantize(codes, name, s_in, zp_in, s_out, zp_out, out, rounding, saturate):
    t_in, t_out = formats.parse_type_name(name), formats.parse_type_name(out)
    bounds = None if out in FLOAT_STORAGES else oracle.int_range(oracle.storage_dtype(out))
    values = codes if name in FLOAT_STORAGES else codes.astype(np.int64)
    x = fold_eval.dequantize(values, t_in, np.float32(s_in), np.int64(zp_in or 0))
    q = fold_eval.quantize(
        x, np.float32(s_out), np.int64(zp_out or 0), t_out, rounding, saturate, bounds
    )
    return as_codes(q, out)


@pytest.mark.parametrize("rounding", list(ROUNDING_MODES))
@pytest.mark.parametrize("storage", STORAGES)
def test_requantize_matches_oracle_on_every_code(storage, rounding):
    """dequantize then quantize, same storage: every code, scales from the smallest
    subnormal to the largest finite, zero points at both ends and the middle."""
    if storage in FLOAT_STORAGES and rounding != "nearest_even":
        pytest.skip("float storage rounds to nearest even only (the verifier's rule)")
    codes = every_code(storage)
    for zp in zero_points(storage):
        for s_in in SCALES[:: 2 if storage.endswith("16") else 1]:
            for s_out in OUT_SCALES[:: 2 if storage.endswith("16") else 1]:
                for saturate in (True, False) if storage in FLOAT_STORAGES else (True,):
                    expected = oracle.requantize(
                        codes, s_in, zp, s_out, zp, rounding=rounding, saturate=saturate
                    )
                    got = evaluator_requantize(
                        codes, storage, s_in, zp, s_out, zp, storage, rounding, saturate
                    )
                    assert np.array_equal(bits(got), bits(expected)), (zp, s_in, s_out, saturate)


@pytest.mark.parametrize(
    "storage, out",
    [("i8", "i4"), ("ui8", "i16"), ("i4", "f8E4M3FN"), ("f8E4M3FN", "i8"), ("f8E5M2", "f4E2M1FN")],
)
@pytest.mark.parametrize("rounding", list(ROUNDING_MODES))
def test_requantize_between_formats_matches_oracle(storage, out, rounding):
    if out in FLOAT_STORAGES and rounding != "nearest_even":
        pytest.skip("float storage rounds to nearest even only (the verifier's rule)")
    codes = every_code(storage)
    for s_in in SCALES:
        for s_out in OUT_SCALES:
            zp_in = zero_points(storage)[-1]
            zp_out = zero_points(out)[1] if out in INT_STORAGES else None
            expected = oracle.requantize(
                codes,
                s_in,
                zp_in,
                s_out,
                zp_out,
                dtype=oracle.storage_dtype(out),
                rounding=rounding,
            )
            got = evaluator_requantize(
                codes, storage, s_in, zp_in, s_out, zp_out, out, rounding, True
            )
            assert np.array_equal(bits(got), bits(expected)), (s_in, s_out)


@pytest.mark.parametrize("expressed", list(EXPRESSED))
@pytest.mark.parametrize("storage", STORAGES)
def test_dequantize_matches_oracle_on_every_code(storage, expressed):
    codes = every_code(storage)
    for zp in zero_points(storage):
        for scale in SCALES:
            expected = oracle.dequantize(codes, scale, zp, dtype=expressed)
            values = codes if storage in FLOAT_STORAGES else codes.astype(np.int64)
            got = fold_eval.dequantize(
                values,
                formats.parse_type_name(storage),
                np.float32(scale),
                np.int64(zp or 0),
                EXPRESSED[expressed],
            )
            assert np.array_equal(
                got.view(np.uint32), expected.astype(np.float32).view(np.uint32)
            ), (zp, scale)


def test_quantize_matches_oracle_on_ties_and_specials():
    """Quantize of f32 values that are ties, near ties, huge, +-0, +-inf and NaN."""
    halves = np.arange(-40, 41, dtype=np.float32) / np.float32(2)
    special = np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 0.49999997, -0.49999997, 3e38, -3e38],
        np.float32,
    )
    x = np.concatenate([halves, np.nextafter(halves, np.float32(np.inf)), special])
    for storage in STORAGES:
        t = formats.parse_type_name(storage)
        bounds = (
            None if storage in FLOAT_STORAGES else oracle.int_range(oracle.storage_dtype(storage))
        )
        modes = ["nearest_even"] if storage in FLOAT_STORAGES else ROUNDING_MODES
        for rounding in modes:
            for zp in zero_points(storage):
                for scale in (1.0, 0.5, 3.0):
                    expected = oracle.quantize(
                        x, scale, zp, dtype=oracle.storage_dtype(storage), rounding=rounding
                    )
                    got = fold_eval.quantize(
                        x, np.float32(scale), np.int64(zp or 0), t, rounding, True, bounds
                    )
                    assert np.array_equal(bits(as_codes(got, storage)), bits(expected)), (
                        storage,
                        rounding,
                        zp,
                        scale,
                    )
