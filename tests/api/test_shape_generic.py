"""One kernel per kind, not per shape (issue 12): for every op kind of the API, calls
over hypothesis-drawn shapes of one rank (empty, one-element, partial blocks included)
compile exactly once - counted through ``qopt.compile_stats()``, never timed - and every
result is bit-exact against the numpy oracle.

A kind is what the kernel is compiled for: the op, element types, granularity kind and
block sizes, rank and options. Each example starts from empty kernel tables, so its one
compile is the kind's (it may come from the disk cache; it still counts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import qopt
from tests.support import oracle
from tests.support.bits import assert_same_bits

F32 = np.float32


@dataclass(frozen=True)
class Kind:
    """One API kind: its rank, the multiple the last extent must be (packed rows), and
    a function running the API and the oracle on data of a shape."""

    rank: int
    run: Callable[[tuple[int, ...], np.random.Generator], list[tuple[Any, Any]]]
    last_multiple: int = 1


def data(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    x = (rng.standard_normal(shape) * 4).astype(F32)
    if x.size:  # ties, signed zeros, saturation and NaN among the values
        flat = x.reshape(-1)
        specials = np.array([0.5, -0.0, 1e9, np.nan, -2.5, np.inf], F32)
        flat[: min(flat.size, 6)] = specials[: min(flat.size, 6)]
    return x


def scales(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.05, 0.5, shape).astype(F32)


def param_shape(shape: tuple[int, ...], block: int) -> tuple[int, ...]:
    return (*shape[:-1], -(-shape[-1] // block))


def quantize_per_tensor(shape, rng):
    x = data(shape, rng)
    got = qopt.quantize(x, 0.25, 3, dtype="i8")
    return [(got, oracle.quantize(x, 0.25, 3, dtype="i8"))]


def quantize_per_axis(shape, rng):
    x, s = data(shape, rng), scales((shape[1],), rng)
    got = qopt.quantize(x, s, dtype="ui8", axis=1)
    return [(got, oracle.quantize(x, s, dtype="ui8", axis=1))]


def quantize_blocked_i4_packed(shape, rng):
    x, s = data(shape, rng), scales(param_shape(shape, 32), rng)
    got = qopt.quantize(x, s, dtype="i4", block_size=32, packed=True)
    want = oracle.quantize(x, s, dtype="i4", block_size=32)
    return [(got, oracle.pack(want))]


def dequantize_per_axis(shape, rng):
    q = rng.integers(-128, 128, shape).astype(np.int8)
    s = scales((shape[0],), rng)
    got = qopt.dequantize(q, s, 5, axis=0)
    return [(got, oracle.dequantize(q, s, 5, axis=0))]


def dequantize_packed_fp4(shape, rng):
    codes = oracle.quantize(data(shape, rng), 0.5, dtype="f4E2M1FN")
    s = scales(param_shape(shape, 16), rng)
    packed = oracle.pack(codes)
    got = qopt.dequantize(packed, s, block_size=16, storage_dtype="f4E2M1FN", shape=shape)
    return [(got, oracle.dequantize(codes, s, block_size=16))]


def requantize_per_axis(shape, rng):
    q = rng.integers(-128, 128, shape).astype(np.int8)
    s_in, s_out = scales((shape[1],), rng), scales((shape[1],), rng)
    got = qopt.requantize(q, s_in, 1, s_out, -2, axis=1)
    return [(got, oracle.requantize(q, s_in, 1, s_out, -2, axis=1))]


def dynamic_nvfp4(shape, rng):
    x = data(shape, rng)
    form = dict(dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16, double_quant_scale=0.5)
    got_d, got_s = qopt.dynamic_quantize(x, **form)
    want_d, want_s = oracle.dynamic_quantize(x, **form)
    return [(got_d, want_d), (got_s, want_s)]


def dynamic_nvfp4_packed(shape, rng):
    x = data(shape, rng)
    form = dict(dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16)
    got_d, got_s = qopt.dynamic_quantize(x, packed=True, **form)
    want_d, want_s = oracle.dynamic_quantize(x, **form)
    return [(got_d, oracle.pack(want_d)), (got_s, want_s)]


def dynamic_mxfp8(shape, rng):
    x = data(shape, rng)
    form = dict(dtype="f8E4M3FN", scale_dtype="f8E8M0FNU", block_size=32, scale_rounding="rceil")
    got_d, got_s = qopt.dynamic_quantize(x, **form)
    want_d, want_s = oracle.dynamic_quantize(x, **form)
    return [(got_d, want_d), (got_s, want_s)]


def dynamic_block_128(shape, rng):
    x = data(shape, rng)
    form = dict(dtype="f8E4M3FN", block_shape=[128, 128])
    got_d, got_s = qopt.dynamic_quantize(x, **form)
    want_d, want_s = oracle.dynamic_quantize(x, **form)
    return [(got_d, want_d), (got_s, want_s)]


def dynamic_per_channel_asymmetric(shape, rng):
    x = data(shape, rng)
    form = dict(dtype="ui8", axis=0, symmetric=False)
    got = qopt.dynamic_quantize(x, **form)
    return list(zip(got, oracle.dynamic_quantize(x, **form)))


def fake_per_token(shape, rng):
    x = data(shape, rng)
    form = dict(dtype="i8", per_token=True, symmetric=False)
    return [(qopt.fake_quantize(x, **form), oracle.fake_quantize(x, **form))]


def fake_static_blocked(shape, rng):
    x, s = data(shape, rng), scales(param_shape(shape, 8), rng)
    got = qopt.fake_quantize(x, s, dtype="i4", block_size=8)
    return [(got, oracle.fake_quantize(x, s, dtype="i4", block_size=8))]


KINDS = {
    "quantize per-tensor i8 (1-d)": Kind(1, quantize_per_tensor),
    "quantize per-tensor i8 (3-d)": Kind(3, quantize_per_tensor),
    "quantize per-axis ui8": Kind(2, quantize_per_axis),
    "quantize blocked i4 packed": Kind(2, quantize_blocked_i4_packed, last_multiple=2),
    "dequantize per-axis i8": Kind(2, dequantize_per_axis),
    "dequantize packed fp4 blocked": Kind(2, dequantize_packed_fp4, last_multiple=2),
    "requantize per-axis i8": Kind(2, requantize_per_axis),
    "dynamic NVFP4 (double quant)": Kind(2, dynamic_nvfp4),
    "dynamic NVFP4 packed": Kind(2, dynamic_nvfp4_packed, last_multiple=2),
    "dynamic MXFP8 rceil": Kind(2, dynamic_mxfp8),
    "dynamic 128x128 fp8": Kind(2, dynamic_block_128),
    "dynamic per-channel asymmetric ui8": Kind(2, dynamic_per_channel_asymmetric),
    "fake per-token asymmetric i8": Kind(2, fake_per_token),
    "fake static blocked i4": Kind(2, fake_static_blocked),
}


def shape_lists(kind: Kind) -> st.SearchStrategy[list[tuple[int, ...]]]:
    extent = st.integers(0, 70)
    last = st.integers(0, 70 // kind.last_multiple).map(lambda n: n * kind.last_multiple)
    shape = st.tuples(*([extent] * (kind.rank - 1)), last)
    return st.lists(shape, min_size=2, max_size=4)


def cold() -> None:
    qopt.clear_kernel_cache()
    qopt.reset_compile_stats()


def check(kind: Kind, shapes: list[tuple[int, ...]]) -> None:
    cold()
    rng = np.random.default_rng(len(shapes))
    for shape in shapes:
        for k, (got, want) in enumerate(kind.run(shape, rng)):
            assert_same_bits(got, want, f"result {k} for shape {shape}")
    stats = qopt.compile_stats()
    assert (stats.kernel_builds, stats.jit_compiles) == (1, 1), (shapes, stats)
    assert stats.kernel_hits == len(shapes) - 1


@pytest.mark.parametrize("name", list(KINDS))
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_compile_per_kind_over_drawn_shapes(name: str, data: st.DataObject) -> None:
    kind = KINDS[name]
    check(kind, data.draw(shape_lists(kind)))


@pytest.mark.parametrize("name", list(KINDS))
def test_edge_shapes_share_the_kinds_kernel(name: str) -> None:
    """Empty, one-element and partial-block shapes, in one list: still one compile."""
    kind = KINDS[name]
    m = kind.last_multiple
    edge = [(0,) * kind.rank, (1,) * (kind.rank - 1) + (m,), (3,) * (kind.rank - 1) + (0,)]
    edge += [(5,) * (kind.rank - 1) + (34 * m,), (130,) * (kind.rank - 1) + (m * 67,)]
    check(kind, edge)


@example(shape=(2, 40))
@settings(max_examples=10, deadline=None)
@given(shape=st.tuples(st.integers(0, 9), st.integers(0, 9).map(lambda n: 2 * n + 1)))
def test_packed_partial_bytes_stay_exact(shape: tuple[int, ...]) -> None:
    """The shape-specialised packing (rows of partial bytes) against the oracle."""
    x = data(shape, np.random.default_rng(0))
    got = qopt.quantize(x, 0.5, dtype="i4", packed=True)
    assert_same_bits(got, oracle.pack(oracle.quantize(x, 0.5, dtype="i4")))
