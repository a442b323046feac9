"""One NaN rule for every lowering (docs/semantics.md, "NaN").

Every input code of every storage format goes through requantize with runtime scales and
zero points that are NaN, +-inf, +-0 or ordinary, in each lowering (fused, composite, lookup
table where it applies); the result must be the oracle's in every bit, NaN codes included.
The rule that makes that possible: a NaN result is the quiet NaN with the sign of the data
element it was computed from (x, or the code q), never the sign the arithmetic gave it
(that is not specified, so it differed between the fused loop and the composite one, and
`--fold-quant`, which fuses dq -> q, changed it).
"""

from __future__ import annotations

import itertools

import ml_dtypes
import numpy as np
import pytest

import qopt
from tests.support import oracle

F32 = np.float32
SPECIAL_SCALES = (np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 0.75)
INT_STORAGE = ("i8", "ui8", "i4", "ui4", "i2", "ui2", "i16")
FLOAT_STORAGE = ("f8E4M3FN", "f8E5M2", "f4E2M1FN")


def every_code(storage: str) -> np.ndarray:
    """All codes of a format (a sample of 4096 for 16 bits), as a (n, 2) tensor."""
    dt = oracle.storage_dtype(storage)
    if storage in FLOAT_STORAGE:
        bits = 4 if storage == "f4E2M1FN" else 8
        codes = np.arange(2**bits, dtype=np.uint8).view(dt)
    else:
        lo, hi = oracle.int_range(dt)
        codes = np.arange(lo, hi + 1, max(1, (hi - lo + 1) // 4096), dtype=np.int64)
        codes = np.concatenate([codes, [hi]]).astype(dt)
    return np.stack([codes, codes[::-1]], axis=1)


def requantize_kernel(shape, storage: str, out_storage: str, lowering: str, zp: bool):
    t = f"tensor<{shape[0]}x{shape[1]}x{storage}>"
    to = f"tensor<{shape[0]}x{shape[1]}x{out_storage}>"
    args = [f"%q: {t}", "%si: tensor<f32>", "%so: tensor<f32>"]
    ins, outs = "scale(%si : tensor<f32>)", "scale(%so : tensor<f32>)"
    if zp:
        args += [f"%zi: tensor<{storage}>", f"%zo: tensor<{out_storage}>"]
        ins += f" zero_point(%zi : tensor<{storage}>)"
        outs += f" zero_point(%zo : tensor<{out_storage}>)"
    text = (
        f"func.func @main({', '.join(args)}) -> {to} {{\n"
        f"  %r = quant.requantize %q in({ins}) out({outs}) "
        f'{{lowering = "{lowering}"}} : {t} -> {to}\n'
        f"  func.return %r : {to}\n}}\n"
    )
    return qopt.compile(text)


def same_bits(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Indices where the bytes differ (NaN codes compared as bits too)."""
    g = np.ascontiguousarray(got).view(np.uint8 if got.dtype.itemsize == 1 else np.uint16)
    w = np.ascontiguousarray(want).view(g.dtype)
    return np.argwhere(g != w)


def zero_points(storage: str) -> list[int]:
    if storage in FLOAT_STORAGE:
        return [0]
    lo, hi = oracle.int_range(oracle.storage_dtype(storage))
    return sorted({lo, 0, hi})


def requantize_cases():
    for storage in (*INT_STORAGE, *FLOAT_STORAGE):
        out_storage = {"i16": "i8", "f4E2M1FN": "f8E4M3FN"}.get(storage, storage)
        for lowering in ("fused", "composite", "lut"):
            if lowering == "lut" and (storage in FLOAT_STORAGE or storage == "i16"):
                continue  # the table needs integer input of at most 8 bits
            yield pytest.param(storage, out_storage, lowering, id=f"{storage}-{lowering}")
    # float storage in, integer out and back: NaN meets a zero point
    yield pytest.param("f8E4M3FN", "i8", "fused", id="f8E4M3FN-i8-fused")
    yield pytest.param("i8", "f8E5M2", "composite", id="i8-f8E5M2-composite")


@pytest.mark.parametrize(("storage", "out_storage", "lowering"), list(requantize_cases()))
def test_requantize_nan_inf_zero_scales_agree_with_the_oracle_in_every_lowering(
    storage, out_storage, lowering
):
    q = every_code(storage)
    zp = storage in INT_STORAGE and out_storage in INT_STORAGE
    kernel = requantize_kernel(q.shape, storage, out_storage, lowering, zp)
    zps = list(itertools.product(zero_points(storage), zero_points(out_storage))) if zp else [()]
    for s_in, s_out, z in itertools.product(SPECIAL_SCALES, SPECIAL_SCALES, zps):
        si, so = np.array(s_in, F32), np.array(s_out, F32)
        if zp:
            zi = np.array(z[0], oracle.storage_dtype(storage))
            zo = np.array(z[1], oracle.storage_dtype(out_storage))
            got = kernel(q, si, so, zi, zo)
            want = oracle.requantize(q, si, zi, so, zo, dtype=out_storage)
        else:
            got = kernel(q, si, so)
            want = oracle.requantize(q, si, None, so, None, dtype=out_storage)
        bad = same_bits(got, want)
        assert not bad.size, (
            f"requantize {storage}->{out_storage} ({lowering}) in_scale={s_in} "
            f"out_scale={s_out} zp={z}: {len(bad)} codes differ, first q={q[tuple(bad[0])]!r} "
            f"got {got[tuple(bad[0])]!r} want {want[tuple(bad[0])]!r}"
        )


@pytest.mark.parametrize("storage", FLOAT_STORAGE)
def test_quantize_stores_one_nan_code(storage):
    """NaN data, NaN scales and 0 / 0, inf / inf: the format's NaN with the sign of x."""
    x = np.array([np.nan, -np.nan, 0.0, -0.0, np.inf, -np.inf, 1.0, -1.0], F32)
    t = f"tensor<8x{storage}>"
    kernel = qopt.compile(
        f"func.func @main(%x: tensor<8xf32>, %s: tensor<f32>) -> {t} {{\n"
        f"  %r = quant.quantize %x scale(%s : tensor<f32>) : tensor<8xf32> -> {t}\n"
        f"  func.return %r : {t}\n}}\n"
    )
    for s in SPECIAL_SCALES:
        got = kernel(x, np.array(s, F32))
        want = oracle.quantize(x, np.array(s, F32), dtype=storage, runtime_scale=True)
        assert not same_bits(got, want).size, f"quantize to {storage}, scale {s}: {got} != {want}"
    if storage == "f8E4M3FN":
        # the NaN takes the sign of x: NaN data, and any x divided by a NaN scale
        assert list(kernel(x, np.array(1.0, F32)).view(np.uint8)[:2]) == [0x7F, 0xFF]
        got = kernel(x, np.array(np.nan, F32)).view(np.uint8)
        assert list(got) == [0x7F, 0xFF, 0x7F, 0xFF, 0x7F, 0xFF, 0x7F, 0xFF]


def test_fold_quant_keeps_the_nan_code():
    """dequantize -> quantize and the requantize `--fold-quant` makes of it: same bits."""
    e4m3 = ml_dtypes.float8_e4m3fn
    q = np.arange(256, dtype=np.uint8).view(e4m3).reshape(256, 1).repeat(4, 1)
    t = "tensor<256x4xf8E4M3FN>"
    text = (
        f"func.func @main(%q: {t}, %si: tensor<f32>, %so: tensor<f32>) -> {t} {{\n"
        f"  %x = quant.dequantize %q scale(%si : tensor<f32>) : {t} -> tensor<256x4xf32>\n"
        f"  %r = quant.quantize %x scale(%so : tensor<f32>) : tensor<256x4xf32> -> {t}\n"
        f"  func.return %r : {t}\n}}\n"
    )
    from xdsl.parser import Parser

    from qopt.passes.fold_quant import FoldQuantPass
    from qopt.qdialect.context import make_context

    ctx = make_context()
    folded = Parser(ctx, text).parse_module()
    FoldQuantPass().apply(ctx, folded)
    assert "quant.requantize" in str(folded)
    composite, fused = qopt.compile(text), qopt.compile(folded)
    nan = np.array(np.nan, F32)
    for si, so in ((nan, np.array(1.0, F32)), (np.array(1.0, F32), nan)):
        want = oracle.requantize(q, si, None, so, None)
        assert not same_bits(composite(q, si, so), want).size
        assert not same_bits(fused(q, si, so), want).size
