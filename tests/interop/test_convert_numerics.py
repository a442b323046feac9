"""Upstream quant IR through qopt, bit for bit against a numpy reference of upstream's
semantics (``qcast``: ``clamp(rne(f32(x / s) + zp))``, NaN -> 0; ``dcast``:
``(q - zp) * s``; oracle.py with ``zero_point_order="before_rounding"``).

``qopt.compile`` converts the types (convert-quant-types), lowers and runs the JIT; the
cases cover odd zero points with ties, NaN, saturation, narrow ranges, per-axis and
sub-channel parameters (incl. unsigned and sub-byte storage) and an f16 expressed type.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import qopt
from tests.support import oracle
from tests.support.bits import assert_same_bits

F32 = np.float32
SPECIAL = np.array(
    [0.5, 1.5, 2.5, -0.5, -1.5, 0.25, 0.75, -0.25, np.nan, -np.nan, np.inf, -np.inf, 0.0]
    + [-0.0, 1e9, -1e9, 8388607.5, 4194303.75, 1e-45, 63.5, -64.5, 127.5, -128.5, 3.5],
    F32,
)


def qcast_dcast(shape: tuple[int, ...], qtype: str, expressed: str = "f32"):
    dims = "x".join(map(str, shape))
    t, q = f"tensor<{dims}x{expressed}>", f"tensor<{dims}x!quant.uniform<{qtype}>>"
    text = (
        f"func.func @main(%x: {t}) -> ({q}, {t}) {{\n"
        f"  %q = quant.qcast %x : {t} to {q}\n"
        f"  %d = quant.dcast %q : {q} to {t}\n"
        f"  func.return %q, %d : {q}, {t}\n}}\n"
    )
    return qopt.compile(text)


def data(shape, seed=0, scale=40.0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(F32)
    flat = x.reshape(-1)
    n = min(flat.size, SPECIAL.size)
    flat[:n] = SPECIAL[:n]
    return x


def check(x, got, want_q, want_scale, want_zp, **gran):
    q, d = (np.asarray(a) for a in got)
    assert_same_bits(q, want_q)
    want_d = oracle.dequantize(want_q, want_scale, want_zp, dtype="f32", **gran)
    assert_same_bits(d, want_d)


PER_LAYER = [
    ("i8:f32, 0.5:3", "i8", 0.5, 3, None),
    ("i8:f32, 0.1:-7", "i8", 0.1, -7, None),
    ("i8<-127:127>:f32, 0.25:1", "i8", 0.25, 1, (-127, 127)),
    ("u8:f32, 0.5:129", "ui8", 0.5, 129, None),
    ("ui8<1:255>:f32, 0.03:3", "ui8", 0.03, 3, (1, 255)),
    ("i4:f32, 0.5:1", "i4", 0.5, 1, None),
    ("u4<0:9>:f32, 1.5:3", "ui4", 1.5, 3, (0, 9)),
    ("i2:f32, 1.0:-1", "i2", 1.0, -1, None),
    ("i16:f32, 0.0078125:-32767", "i16", 0.0078125, -32767, None),
    ("u16:f32, 1.0:1", "ui16", 1.0, 1, None),
]


@pytest.mark.parametrize("qtype,dtype,scale,zp,narrow", PER_LAYER)
def test_per_layer(qtype, dtype, scale, zp, narrow):
    x = data((4, 37))
    lo, hi = narrow or (None, None)
    want = oracle.quantize(
        x, F32(scale), zp, dtype=dtype, qmin=lo, qmax=hi, zero_point_order="before_rounding"
    )
    check(x, qcast_dcast(x.shape, qtype)(x), want, F32(scale), zp)


def test_nan_gives_zero_even_below_a_narrow_range():
    x = np.array([np.nan, 1.0], F32)
    q, _ = qcast_dcast(x.shape, "ui8<1:255>:f32, 0.5:3")(x)
    assert np.asarray(q).tolist() == [0, 5]


def test_per_axis():
    x = data((5, 6), seed=2)
    scale = np.array([0.5, 1.0, 0.25, 2.0, 0.1, 1.5], F32)
    zp = np.array([-3, 1, 5, 0, 7, -127], np.int8)
    params = ", ".join(f"{float(s)}:{int(z)}" for s, z in zip(scale, zp, strict=True))
    got = qcast_dcast(x.shape, f"i8:f32:1, {{{params}}}")(x)
    want = oracle.quantize(x, scale, zp, dtype="i8", axis=1, zero_point_order="before_rounding")
    check(x, got, want, scale, zp, axis=1)


@pytest.mark.parametrize(
    "dtype,storage,blocks",
    [("i8", "i8", {0: 2, 1: 4}), ("ui8", "u8", {1: 3}), ("i4", "i4", {0: 1, 1: 6})],
)
def test_sub_channel(dtype, storage, blocks):
    shape = (4, 12)
    x = data(shape, seed=3, scale=10.0)
    block = tuple(blocks.get(k, n) for k, n in enumerate(shape))
    pshape = tuple(n // b for n, b in zip(shape, block, strict=True))
    rng = np.random.default_rng(5)
    scale = rng.choice(np.array([0.5, 0.25, 1.0, 0.3, 2.0], F32), pshape)
    lo, hi = oracle.int_range(oracle.storage_dtype(dtype))
    zp = rng.integers(lo, hi + 1, pshape).astype(oracle.storage_dtype(dtype))

    def nest(s, z):
        if s.ndim == 0:
            return f"{float(s)}:{int(z)}"
        return "{" + ", ".join(nest(a, b) for a, b in zip(s, z, strict=True)) + "}"

    info = ", ".join(f"{a}:{b}" for a, b in blocks.items())
    got = qcast_dcast(shape, f"{storage}:f32:{{{info}}}, {nest(scale, zp)}")(x)
    want = oracle.quantize(
        x, scale, zp, dtype=dtype, block_shape=block, zero_point_order="before_rounding"
    )
    check(x, got, want, scale, zp, block_shape=block)


def test_f16_expressed_scale_rounds_to_f16_then_f32_math():
    """The scale is held in the expressed type (0.1 -> f16 0.0999755859375); qopt
    computes in f32, where upstream's own lowering computes in f16 (docs/semantics.md)."""
    x = data((64,), seed=4, scale=5.0)
    x[np.abs(x) > 6e4] = 0
    x = x.astype(np.float16)
    q, d = qcast_dcast(x.shape, "i8:f16, 0.1:3", "f16")(x)
    s16 = F32(np.float16(0.1))
    want = oracle.quantize(x.astype(F32), s16, 3, dtype="i8", zero_point_order="before_rounding")
    assert_same_bits(np.asarray(q), want)
    assert_same_bits(np.asarray(d), oracle.dequantize(want, s16, 3, dtype="f16"))


@pytest.mark.parametrize("storage", ["f8E4M3FN", "f8E5M2", "f4E2M1FN"])
def test_float_storage(storage):
    x = data((3, 20), seed=6, scale=100.0)
    q, d = qcast_dcast(x.shape, f"{storage}:f32, 0.5")(x)
    want = oracle.quantize(x, F32(0.5), dtype=storage)
    assert_same_bits(np.asarray(q), want)
    assert_same_bits(np.asarray(d), oracle.dequantize(want, F32(0.5), dtype="f32"))


@pytest.mark.parametrize(
    "qtype,message",
    [
        ("i32:f32, 0.5", "qopt cannot compute storage i32"),
        ("i3:f32, 0.5", "qopt cannot compute storage i3"),
        ("i8:f64, 0.5", "expressed type f64"),
        ("f8E5M2:f32, 0.5:3", "float storage takes no zero point"),
        ("i8:f32, 0x7FF8000000000000", "illegal scale: nan"),
        ("i8:f32, 0.5:-200", "zero point -200 .* is not a value of its storage type"),
        ("u8<2:9>:f32, 0.5:300", "zero point 300"),
    ],
)
def test_what_qopt_cannot_compute_is_a_located_error(qtype, message):
    expressed = "f64" if "f64" in qtype else "f32"
    with pytest.raises(qopt.QuantError, match=message) as info:
        qcast_dcast((4,), qtype, expressed)
    assert re.match(r"<compile>:\d+:\d+: error: ", str(info.value))
