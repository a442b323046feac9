"""No kernel writes outside its result: every op writes into `out=` views of a larger buffer
filled with a guard pattern, and the bytes around each view must stay untouched while the
view holds the oracle's bits.

The row lengths sit around the block sizes and the vector widths (1, 5, 13, 17, 35 elements),
so every kernel has a partial last block and a loop tail shorter than a vector: the case
where LLVM's masked tail store was 1-3 elements too wide (src/qopt/codegen/loops.py,
VECTOR_STEP). Each case runs single-threaded and with the rows split across threads, where
a write past a row lands in another thread's row. The data is finite (no NaN: the NaN
rules have their own tests), so the comparison is on raw bytes.
"""

from __future__ import annotations

import itertools

import ml_dtypes
import numpy as np
import pytest

import qopt
from qopt.api import building
from qopt.api.kernel_cache import KernelTable
from tests.support import oracle

F32 = np.float32
GUARD = 64  # bytes before and after each view (keeps the view 64-byte aligned)
PATTERN = 0xA5
EXPRESSED = {
    "f32": np.dtype(F32),
    "f16": np.dtype(np.float16),
    "bf16": np.dtype(ml_dtypes.bfloat16),
}
INT_STORAGE = ("i8", "ui4", "i4")
FLOAT_STORAGE = ("f8E4M3FN", "f4E2M1FN")
STORAGE = (*INT_STORAGE, *FLOAT_STORAGE)
COLUMNS = (1, 5, 13, 17, 35)
ROWS = 3


@pytest.fixture(params=["serial", "threads"])
def threads(request, monkeypatch):
    """Kernels built in this test run their rows on 1 thread, or split across 3 threads."""
    monkeypatch.setattr(building, "KERNELS", KernelTable())
    if request.param == "threads":
        monkeypatch.setenv("QOPT_PARALLEL_THRESHOLD", "1")
        monkeypatch.setenv("QOPT_NUM_THREADS", "3")
    else:
        monkeypatch.setenv("QOPT_NUM_THREADS", "1")
    return request.param


class Guarded:
    """An array of `shape` and `dtype` inside a buffer with guard bytes on both sides."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        self.buffer = np.full(self.nbytes + 2 * GUARD, PATTERN, np.uint8)
        self.view = self.buffer[GUARD : GUARD + self.nbytes].view(dtype).reshape(shape)

    def check(self, want: np.ndarray, what: str) -> None:
        head, tail = self.buffer[:GUARD], self.buffer[GUARD + self.nbytes :]
        assert np.all(head == PATTERN), f"{what}: bytes before the result overwritten: {head}"
        assert np.all(tail == PATTERN), f"{what}: bytes after the result overwritten: {tail}"
        got = self.buffer[GUARD : GUARD + self.nbytes]
        want_bytes = np.ascontiguousarray(np.asarray(want, self.view.dtype)).view(np.uint8)
        bad = np.nonzero(got != want_bytes.reshape(-1))[0]
        assert not bad.size, f"{what}: {bad.size} bytes differ from the oracle, first at {bad[0]}"


def data(shape: tuple[int, ...], dtype: np.dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 3).astype(F32).astype(dtype)


def codes(shape: tuple[int, ...], storage: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = oracle.storage_dtype(storage)
    if storage in INT_STORAGE:
        lo, hi = oracle.int_range(dt)
        return rng.integers(lo, hi + 1, shape).astype(dt)
    return (rng.standard_normal(shape) * 2).astype(F32).astype(dt)


# granularity name -> (api/oracle keywords for a (ROWS, n) tensor, parameter shape)
def granularity(name: str, n: int) -> tuple[dict, tuple[int, ...]]:
    match name:
        case "tensor":
            return {}, ()
        case "axis":
            return {"axis": 1}, (n,)
        case "block4":
            return {"axis": 1, "block_size": 4}, (ROWS, -(-n // 4))
        case "block8":
            return {"axis": 1, "block_size": 8}, (ROWS, -(-n // 8))
        case "block2d":
            return {"block_shape": [2, 4]}, (-(-ROWS // 2), -(-n // 4))
    raise AssertionError(name)


def parameters(pshape, storage: str | None, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.05, 0.5, pshape).astype(F32)
    if storage is None or storage not in INT_STORAGE:
        return scale, None
    lo, hi = oracle.int_range(oracle.storage_dtype(storage))
    return scale, rng.integers(lo, hi + 1, pshape).astype(oracle.storage_dtype(storage))


def cases(granularities, storages, with_zp=(True, False)):
    """A sweep in which every granularity meets every storage format, every expressed type
    and every row length, without the full product (each case compiles a kernel)."""
    expressed = itertools.cycle(EXPRESSED)
    columns = itertools.cycle(COLUMNS)
    for gran, storage, zp in itertools.product(granularities, storages, with_zp):
        if zp and storage not in INT_STORAGE:
            continue
        yield pytest.param(gran, storage, zp, next(expressed), next(columns),
                           id=f"{gran}-{storage}-{'zp' if zp else 'nozp'}")  # fmt: skip


GRANS = ("tensor", "axis", "block4", "block8", "block2d")


@pytest.mark.parametrize(("gran", "storage", "zp", "xt", "n"), list(cases(GRANS, STORAGE)))
def test_quantize_stays_in_its_result(threads, gran, storage, zp, xt, n):
    kw, pshape = granularity(gran, n)
    x = data((ROWS, n), EXPRESSED[xt], n)
    scale, zero = parameters(pshape, storage if zp else None, n + 1)
    out = Guarded((ROWS, n), oracle.storage_dtype(storage))
    qopt.quantize(x, scale, zero, dtype=storage, out=out.view, **kw)
    out.check(oracle.quantize(x, scale, zero, dtype=storage, **kw), f"quantize {xt}->{storage}")


@pytest.mark.parametrize("n", COLUMNS)
@pytest.mark.parametrize("storage", ("ui4", "i4", "f4E2M1FN"))
def test_packed_quantize_stays_in_its_result(threads, storage, n):
    kw, pshape = granularity("block4", n)
    x = data((ROWS, n), EXPRESSED["f16"], n)
    scale, zero = parameters(pshape, storage, 7)
    out = Guarded((-(-ROWS * n // 2),), np.dtype(np.uint8))
    qopt.quantize(x, scale, zero, dtype=storage, packed=True, out=out.view, **kw)
    want = oracle.pack(oracle.quantize(x, scale, zero, dtype=storage, **kw))
    out.check(want, f"packed quantize -> {storage}")


@pytest.mark.parametrize(("gran", "storage", "zp", "xt", "n"), list(cases(GRANS, STORAGE)))
def test_dequantize_stays_in_its_result(threads, gran, storage, zp, xt, n):
    kw, pshape = granularity(gran, n)
    q = codes((ROWS, n), storage, n)
    scale, zero = parameters(pshape, storage if zp else None, n + 2)
    out = Guarded((ROWS, n), EXPRESSED[xt])
    qopt.dequantize(q, scale, zero, dtype=xt, out=out.view, **kw)
    want = oracle.dequantize(q, scale, zero, dtype=xt, **kw)
    out.check(want, f"dequantize {storage}->{xt}")


@pytest.mark.parametrize("n", COLUMNS)
@pytest.mark.parametrize("xt", ("f16", "bf16"))
def test_packed_dequantize_stays_in_its_result(threads, xt, n):
    kw, pshape = granularity("block8", n)
    q = codes((ROWS, n), "ui4", n)
    scale, zero = parameters(pshape, "ui4", 3)
    out = Guarded((ROWS, n), EXPRESSED[xt])
    packed = oracle.pack(q)
    qopt.dequantize(packed, scale, zero, storage_dtype="ui4", shape=q.shape, dtype=xt,
                       out=out.view, **kw)  # fmt: skip
    out.check(oracle.dequantize(q, scale, zero, dtype=xt, **kw), f"packed dequantize -> {xt}")


@pytest.mark.parametrize("n", (5, 13, 17))
@pytest.mark.parametrize(("storage", "out_storage", "lowering"), [
    (s, o, lowering)
    for s, o in (("i8", "ui4"), ("ui4", "i8"), ("f8E4M3FN", "f8E4M3FN"))
    for lowering in ("fused", "composite", "lut")
    if lowering != "lut" or s in INT_STORAGE
])  # fmt: skip
def test_requantize_stays_in_its_result(threads, storage, out_storage, lowering, n):
    q = codes((ROWS, n), storage, n)
    s_in, zp_in = parameters((n,), storage, 1)
    s_out, zp_out = parameters((), out_storage, 2)
    out = Guarded((ROWS, n), oracle.storage_dtype(out_storage))
    qopt.requantize(q, s_in, zp_in, s_out, zp_out, axis=1, dtype=out_storage,
                       lowering=lowering, out=out.view)  # fmt: skip
    want = oracle.requantize(q, s_in, zp_in, s_out, zp_out, axis=1, dtype=out_storage)
    out.check(want, f"requantize {storage}->{out_storage} ({lowering})")


DYNAMIC = {
    "i8-sym": {"dtype": "i8"},
    "ui4-asym": {"dtype": "ui4", "symmetric": False},
    "i4-f16scale": {"dtype": "i4", "scale_dtype": "f16"},
    "e4m3-bf16scale": {"dtype": "f8E4M3FN", "scale_dtype": "bf16"},
    "nvfp4": {"dtype": "f4E2M1FN", "scale_dtype": "f8E4M3FN", "double_quant_scale": 0.5},
    "mx-e4m3": {"dtype": "f8E4M3FN", "scale_dtype": "f8E8M0FNU"},
}
DYNAMIC_GRANS = {
    "tensor": {},
    "block4": {"block_size": 4},
    "block16": {"block_size": 16},
    "block2d": {"block_shape": [2, 8]},
    "token": {"block_shape": [1, -1]},
}


def _dynamic_cases():
    columns = itertools.cycle(COLUMNS)
    expressed = itertools.cycle(EXPRESSED)
    for form, gran in itertools.product(DYNAMIC, DYNAMIC_GRANS):
        xt, n = next(expressed), next(columns)
        yield pytest.param(form, gran, xt, n, False, id=f"{form}-{gran}")
        if DYNAMIC[form]["dtype"] in ("ui4", "i4", "f4E2M1FN"):
            yield pytest.param(form, gran, xt, n, True, id=f"{form}-{gran}-packed")


@pytest.mark.parametrize(("form", "gran", "xt", "n", "packed"), list(_dynamic_cases()))
def test_dynamic_quantize_stays_in_its_results(threads, form, gran, xt, n, packed):
    kw = {**DYNAMIC[form], **DYNAMIC_GRANS[gran]}
    x = data((ROWS, n), EXPRESSED[xt], n)
    want = oracle.dynamic_quantize(x, **kw)
    if packed:
        want = (oracle.pack(want[0]), *want[1:])
    outs = [Guarded(w.shape, w.dtype) for w in want]
    qopt.dynamic_quantize(x, packed=packed, out=tuple(o.view for o in outs), **kw)
    for k, (o, w) in enumerate(zip(outs, want)):
        o.check(w, f"dynamic_quantize {xt} {form} {gran} result {k}")


FAKE = {
    "static-ui4-block4": ({"dtype": "ui4", "block_size": 4}, "zp"),
    "static-i8-axis": ({"dtype": "i8", "axis": 1}, "zp"),
    "static-e2m1-block8": ({"dtype": "f4E2M1FN", "block_size": 8}, None),
    "dynamic-i4-group4": ({"dtype": "i4", "block_size": 4, "symmetric": False}, "dynamic"),
    "dynamic-ui4-token": (
        {"dtype": "ui4", "per_token": True, "symmetric": False, "scale_dtype": "f16"},
        "dynamic",
    ),  # fmt: skip
    "dynamic-i8-tensor": ({"dtype": "i8"}, "dynamic"),
}


@pytest.mark.parametrize("n", COLUMNS)
@pytest.mark.parametrize("form", FAKE)
def test_fake_quantize_stays_in_its_result(threads, form, n):
    kw, params = FAKE[form]
    xt = ("f16", "bf16", "f32")[n % 3]
    x = data((ROWS, n), EXPRESSED[xt], n)
    args = ()
    if params != "dynamic":
        gran = {k: v for k, v in kw.items() if k in ("axis", "block_size")}
        pshape = granularity("axis" if "axis" in gran else "block8", n)[1]
        if "block_size" in gran:
            gran["axis"] = 1
            pshape = (ROWS, -(-n // gran["block_size"]))
        scale, zero = parameters(pshape, kw["dtype"] if params else None, n)
        args, kw = (scale, zero), {"dtype": kw["dtype"], **gran}
    out = Guarded((ROWS, n), EXPRESSED[xt])
    qopt.fake_quantize(x, *args, out=out.view, **kw)
    out.check(oracle.fake_quantize(x, *args, **kw), f"fake_quantize {xt} {form}")


def test_many_rows_across_threads_keep_their_neighbours(monkeypatch):
    """The reported race: 13-element f16 rows, block 4, random zero points, rows split
    across threads; a row's tail store used to overwrite the next row's first elements."""
    monkeypatch.setattr(building, "KERNELS", KernelTable())
    monkeypatch.setenv("QOPT_PARALLEL_THRESHOLD", "1")
    monkeypatch.setenv("QOPT_NUM_THREADS", "4")
    rows, n = 20_000, 13
    x = data((rows, n), EXPRESSED["f16"], 5)
    scale, zero = parameters((rows, 4), "i8", 6)
    out = Guarded((rows, n), np.dtype(np.int8))
    qopt.quantize(x, scale, zero, dtype="i8", axis=1, block_size=4, out=out.view)
    want = oracle.quantize(x, scale, zero, dtype="i8", axis=1, block_size=4)
    out.check(want, "quantize 20000x13 f16 -> i8 per block")


@pytest.mark.parametrize("n", (5, 9, 13))
def test_reported_partial_block_tails(threads, n):
    """The reported cases: a 2-byte float side, per-block parameters with zero points and a
    partial last block (quantize f16 -> i8 block 4, dequantize -> f16 block 8, fake_quantize
    through ui4 block 4)."""
    x = data((1, n), EXPRESSED["f16"], n)
    scale, zero = parameters((1, -(-n // 4)), "i8", 1)
    out = Guarded((1, n), np.dtype(np.int8))
    qopt.quantize(x, scale, zero, dtype="i8", axis=1, block_size=4, out=out.view)
    out.check(oracle.quantize(x, scale, zero, dtype="i8", axis=1, block_size=4), "quantize")

    q = codes((1, n), "i8", n)
    scale, zero = parameters((1, -(-n // 8)), "i8", 2)
    out = Guarded((1, n), EXPRESSED["f16"])
    qopt.dequantize(q, scale, zero, axis=1, block_size=8, dtype="f16", out=out.view)
    want = oracle.dequantize(q, scale, zero, axis=1, block_size=8, dtype="f16")
    out.check(want, "dequantize")

    scale, zero = parameters((1, -(-n // 4)), "ui4", 3)
    out = Guarded((1, n), EXPRESSED["f16"])
    qopt.fake_quantize(x, scale, zero, dtype="ui4", axis=1, block_size=4, out=out.view)
    want = oracle.fake_quantize(x, scale, zero, dtype="ui4", axis=1, block_size=4)
    out.check(want, "fake_quantize")
