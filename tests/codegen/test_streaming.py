"""Streaming (non-temporal) stores: the loop form that writes a large output a cache line at
a time gives the same bits as the plain loops, for every row length, output alignment and
layout, and is chosen only where it applies (loops.PhaseEmitter._streamed_output).

With the mapping's threshold lowered to 0 every eligible output streams, so small arrays
cover the head / body / tail split; two API calls at the real threshold (outputs of a
little over 8 MiB) check the path end to end against the numpy oracle.
"""

from __future__ import annotations

import numpy as np
import pytest

from qopt.codegen import cache
from qopt.codegen.jit import compile_module
from qopt.codegen.mapping import CpuMapping
from qopt.codegen.stages import emit
from tests.codegen.test_jit import QUANTIZE_BODY, generic, identity, tensor
from tests.support import oracle
from tests.support.bits import assert_same_bits

SCALAR2 = "affine_map<(d0, d1) -> ()>"
COLS = [0, 1, 15, 16, 17, 63, 64, 65, 100, 130, 257]


@pytest.fixture
def stream_everything(monkeypatch: pytest.MonkeyPatch):
    """Every eligible output streams; no compiled artifact of another threshold is reused."""
    monkeypatch.delenv(cache.CACHE_DIR_ENV, raising=False)
    monkeypatch.setattr(CpuMapping, "streaming_store_bytes", 0)
    cache.MEMORY_CACHE.clear()
    yield
    cache.MEMORY_CACHE.clear()


def dequantize_ir(shape: tuple[int, int], out: str) -> str:
    """i8 codes -> `out` (f32, f16 or i16 by a cast of the product): a one-output map."""
    q, s, r = tensor(shape, "i8"), tensor((), "f32"), tensor(shape, out)
    cast = {
        "f32": "%r = arith.addf %m, %m0 : f32",
        "f16": "%r0 = arith.addf %m, %m0 : f32\n%r = arith.truncf %r0 : f32 to f16",
        "i16": "%r0 = arith.fptosi %m : f32 to i32\n%r = arith.trunci %r0 : i32 to i16",
    }[out]
    body = f"""\
%f = arith.sitofp %q_in : i8 to f32
%m = arith.mulf %f, %s_in : f32
%m0 = arith.constant 0.0 : f32
{cast}
linalg.yield %r : {out}"""
    nest = generic(
        [identity(2), SCALAR2, identity(2)],
        ["parallel", "parallel"],
        [("%q", q), ("%s", s)],
        [("%e", r)],
        body,
        r,
    )
    return f"""\
func.func @dq(%q: {q}, %s: {s}) -> {r} {{
  %e = tensor.empty() : {r}
  %r = {nest}
  func.return %r : {r}
}}
"""


def quantize_tensor_ir(shape: tuple[int, int]) -> str:
    x, s, z, q = tensor(shape, "f32"), tensor((), "f32"), tensor((), "i32"), tensor(shape, "i8")
    nest = generic(
        [identity(2), SCALAR2, SCALAR2, identity(2)],
        ["parallel", "parallel"],
        [("%x", x), ("%s", s), ("%z", z)],
        [("%e", q)],
        QUANTIZE_BODY,
        q,
    )
    return f"""\
func.func @q(%x: {x}, %s: {s}, %z: {z}) -> {q} {{
  %e = tensor.empty() : {q}
  %q = {nest}
  func.return %q : {q}
}}
"""


def offset_out(shape: tuple[int, int], dtype, offset: int) -> np.ndarray:
    """A C-contiguous result array starting `offset` elements into an allocation."""
    size = shape[0] * shape[1]
    return np.empty(size + offset, dtype)[offset:].reshape(shape)


@pytest.mark.parametrize("out", ["f32", "f16", "i16"])
@pytest.mark.parametrize("cols", COLS)
def test_streamed_dequantize_matches_plain_formula(stream_everything, out: str, cols: int) -> None:
    shape = (3, cols)
    kernel = compile_module(dequantize_ir(shape, out))["dq"]
    rng = np.random.default_rng(cols)
    q = rng.integers(-128, 128, shape, dtype=np.int8)
    s = np.array(0.37, np.float32)
    product = q.astype(np.float32) * s
    want = {"f32": product, "f16": product.astype(np.float16), "i16": product.astype(np.int16)}[out]
    for offset in range(0, 17, 3):
        got = offset_out(shape, want.dtype, offset)
        kernel(q, s, out=got)
        assert_same_bits(got, want, f"offset {offset}")
    if want.dtype.itemsize > 1:  # not even element-aligned: plain loops
        raw = np.zeros(want.nbytes + 1, np.uint8)
        misaligned = raw[1:].view(want.dtype).reshape(shape)
        kernel(q, s, out=misaligned)
        assert_same_bits(misaligned, want, "misaligned out")
    strided = np.empty((3, 2 * cols + 1), np.int8)[:, 1::2]  # not unit-stride: plain loops
    strided[...] = q
    assert_same_bits(kernel(strided, s), want, "strided input")
    assert_same_bits(kernel(q, s), want, "fresh result")


@pytest.mark.parametrize("cols", COLS)
def test_streamed_quantize_matches_plain_formula(stream_everything, cols: int) -> None:
    shape = (2, cols)
    kernel = compile_module(quantize_tensor_ir(shape))["q"]
    rng = np.random.default_rng(cols)
    x = (rng.standard_normal(shape, dtype=np.float32) * 300).astype(np.float32)
    if x.size:
        x.flat[0] = np.nan
    s, z = np.array(0.75, np.float32), np.array(3, np.int32)
    with np.errstate(all="ignore"):
        v = np.round(x / s) + np.float32(3)
        want = np.where(np.isnan(v), 0, np.clip(v, -128, 127)).astype(np.int8)
    for offset in (0, 1, 5, 63):
        got = offset_out(shape, np.int8, offset)
        kernel(x, s, z, out=got)
        assert_same_bits(got, want, f"offset {offset}")


def test_streaming_is_emitted_only_where_it_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cache.CACHE_DIR_ENV, raising=False)
    cache.MEMORY_CACHE.clear()
    small, large = dequantize_ir((4, 64), "f32"), dequantize_ir((2048, 1024), "f32")
    assert "!nontemporal" not in emit(small, "llvm")  # 1 KiB: stays in the cache
    text = emit(large, "llvm")  # 8 MiB
    assert "!nontemporal" in text and "llvm.x86.sse.sfence" in text
    assert "movnt" in emit(large, "asm")
    cache.MEMORY_CACHE.clear()


def test_large_api_results_match_the_oracle() -> None:
    """Outputs just above the threshold, through the API, with an offset `out=`."""
    import qopt

    rng = np.random.default_rng(7)
    q = rng.integers(-128, 128, (1024, 2051), dtype=np.int8)
    scale = (rng.random(2051, dtype=np.float32) + 0.5) * 0.01
    out = offset_out(q.shape, np.float32, 5)
    qopt.dequantize(q, scale, np.int8(-3), axis=1, out=out)
    assert_same_bits(out, oracle.dequantize(q, scale, np.int8(-3), axis=1))
    x = rng.standard_normal((2048, 4099), dtype=np.float32) * 40
    codes = offset_out(x.shape, np.int8, 1)
    qopt.quantize(x, np.float32(0.3), np.int8(2), dtype="i8", out=codes)
    assert_same_bits(codes, oracle.quantize(x, np.float32(0.3), np.int8(2), dtype="i8"))
