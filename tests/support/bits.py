"""Bit-for-bit comparison of arrays, for every test that checks results against the oracle."""

from __future__ import annotations

import numpy as np

from tests.support import oracle

F32 = np.float32


def assert_same_bits(got, want, what="output"):
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    g = got.reshape(-1)
    w = want.reshape(-1)
    if is_float(got.dtype):
        gn = np.isnan(g.astype(F32))
        wn = np.isnan(w.astype(F32))
        assert np.array_equal(gn, wn), f"{what}: NaN positions differ\n{got}\n{want}"
        g, w = g[~gn], w[~wn]
    ubits = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[got.dtype.itemsize]
    gb = np.ascontiguousarray(g).view(ubits)
    wb = np.ascontiguousarray(w).view(ubits)
    bad = np.nonzero(gb != wb)[0]
    assert bad.size == 0, (
        f"{what}: {bad.size} elements differ, first at {bad[0]}: {g[bad[0]]!r} != {w[bad[0]]!r}"
    )


def is_float(dt) -> bool:
    try:
        return oracle.is_float_format(dt)
    except ValueError:
        return np.dtype(dt).kind == "f"
