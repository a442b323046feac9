"""codegen.jit end to end: hand-written lowered IR, compiled and run on numpy arrays.

Each case is a lowered-IR snippet of the kind `--lower-quant` prints, run through
`compile_module` on random inputs (shapes with 0-size dims, one element, lengths that are
not multiples of the vector width; contiguous, strided, transposed, reversed and broadcast
views) and compared with numpy evaluating the same formula. These test the translator and
the runtime, not quantization semantics (the oracle tests do that).
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qopt.codegen import cache, jit
from qopt.codegen.cache import CACHE_DIR_ENV, MemoryCache, disk_cache
from qopt.codegen.jit import compile_module
from qopt.codegen.parsing import parse_lowered

ROWS = st.sampled_from([0, 1, 3, 16, 31])
COLS = st.sampled_from([0, 1, 17, 32, 33, 100])
LAYOUTS = st.sampled_from(["contiguous", "strided", "transposed", "reversed", "broadcast"])
SEEDS = st.integers(0, 2**32 - 1)
FEW = settings(max_examples=25, deadline=None)

ID2 = "affine_map<(d0, d1) -> (d0, d1)>"
SCALAR2 = "affine_map<(d0, d1) -> ()>"


def generic(
    maps: list[str],
    iterators: list[str],
    ins: list[tuple[str, str]],
    outs: list[tuple[str, str]],
    body: str,
    results: str,
) -> str:
    """A `linalg.generic` in the generic-op syntax xDSL prints."""
    args = ", ".join(f"{name}_in: {element_of(t)}" for name, t in ins + outs)
    ins_text = (
        f" ins({', '.join(v for v, _ in ins)} : {', '.join(t for _, t in ins)})" if ins else ""
    )
    outs_text = f"outs({', '.join(v for v, _ in outs)} : {', '.join(t for _, t in outs)})"
    return textwrap.dedent(f"""\
        linalg.generic {{indexing_maps = [{", ".join(maps)}], iterator_types = [{", ".join(f'"{i}"' for i in iterators)}]}}{ins_text} {outs_text} {{
        ^bb0({args}):
        {textwrap.indent(textwrap.dedent(body), "  ")}
        }} -> {results}""")


def element_of(tensor_type: str) -> str:
    match = re.fullmatch(r"tensor<(?:\d+x)*(\w+)>", tensor_type)
    assert match, tensor_type
    return match.group(1)


def tensor(shape: tuple[int, ...], element: str) -> str:
    return f"tensor<{'x'.join(map(str, shape))}{'x' if shape else ''}{element}>"


QUANTIZE_BODY = """\
    %d = arith.divf %x_in, %s_in : f32
    %r = math.roundeven %d : f32
    %zf = arith.sitofp %z_in : i32 to f32
    %v = arith.addf %r, %zf : f32
    %lo = arith.constant -128.0 : f32
    %hi = arith.constant 127.0 : f32
    %c = arith.maxnumf %v, %lo : f32
    %c2 = arith.minnumf %c, %hi : f32
    %nan = arith.cmpf uno, %v, %v : f32
    %zero = arith.constant 0.0 : f32
    %q = arith.select %nan, %zero, %c2 : f32
    %i = arith.fptosi %q : f32 to i32
    %t = arith.trunci %i : i32 to i8
    linalg.yield %t : i8"""


def identity(rank: int) -> str:
    dims = ", ".join(f"d{k}" for k in range(rank))
    return f"affine_map<({dims}) -> ({dims})>"


def quantize_ir(shape: tuple[int, ...], param_shape: tuple[int, ...], param_map: str) -> str:
    """x / scale -> round half even -> + zero point -> clamp to i8, NaN -> 0."""
    x, s, z, q = (
        tensor(shape, "f32"),
        tensor(param_shape, "f32"),
        tensor(param_shape, "i32"),
        tensor(shape, "i8"),
    )
    body = generic(
        [identity(len(shape)), param_map, param_map, identity(len(shape))],
        ["parallel"] * len(shape),
        [("%x", x), ("%s", s), ("%z", z)],
        [("%e", q)],
        QUANTIZE_BODY,
        q,
    )
    return f"""\
func.func @quantize(%x: {x}, %s: {s}, %z: {z}) -> {q} {{
  %e = tensor.empty() : {q}
  %q = {body}
  func.return %q : {q}
}}
"""


def quantize_ref(x: np.ndarray, s: np.ndarray, z: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        v = np.round(x / s) + z.astype(np.float32)
        return np.where(np.isnan(v), 0, np.clip(v, -128, 127)).astype(np.int8)


def view(rng: np.random.Generator, shape: tuple[int, ...], layout: str, make) -> np.ndarray:
    """An array of `shape` in the given memory layout, filled by `make(rng, shape)`."""
    rows, cols = shape
    match layout:
        case "contiguous":
            return make(rng, shape)
        case "strided":
            return make(rng, (rows, 2 * cols + 1))[:, 1::2]
        case "transposed":
            return make(rng, (cols, rows)).T
        case "reversed":
            return make(rng, shape)[::-1, ::-1]
        case "broadcast":
            return np.broadcast_to(make(rng, (1, cols)), shape)
    raise AssertionError(layout)


def floats(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Normal values of varied magnitude with NaN, infinities, zeros and halfway points."""
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-2, 4, shape)).astype(np.float32)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 2.5, -3.5, 1e30], np.float32)
    mask = rng.random(shape) < 0.05
    x[mask] = rng.choice(specials, size=int(mask.sum()))
    return x


def scales(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.random(shape) * 2 + 0.01).astype(np.float32)


def zero_points(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-10, 10, shape).astype(np.int32)


def check_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_array_equal(
        np.ascontiguousarray(actual).view(np.uint8), np.ascontiguousarray(expected).view(np.uint8)
    )


# --------------------------------------------------------------------------------------
# Elementwise quantize: per tensor, per axis, per block


class Test_Quantize:
    @FEW
    @given(rows=ROWS, cols=COLS, layout=LAYOUTS, seed=SEEDS)
    def test_per_tensor(self, rows: int, cols: int, layout: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        kernel = compile_module(quantize_ir((rows, cols), (), SCALAR2))["quantize"]
        x = view(rng, (rows, cols), layout, floats)
        s, z = scales(rng, ()), zero_points(rng, ())
        check_equal(kernel(x, s, z), quantize_ref(x, s, z))

    @FEW
    @given(rows=ROWS, cols=COLS, layout=LAYOUTS, seed=SEEDS)
    def test_per_axis(self, rows: int, cols: int, layout: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        ir = quantize_ir((rows, cols), (cols,), "affine_map<(d0, d1) -> (d1)>")
        kernel = compile_module(ir)["quantize"]
        x = view(rng, (rows, cols), layout, floats)
        s, z = scales(rng, (cols,))[::-1], zero_points(rng, (cols,))
        check_equal(kernel(x, s, z), quantize_ref(x, s, z))

    @FEW
    @given(rows=ROWS, cols=COLS, layout=LAYOUTS, seed=SEEDS)
    def test_per_block(self, rows: int, cols: int, layout: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        blocks = -(-cols // 32)
        ir = quantize_ir(
            (rows, cols), (rows, blocks), "affine_map<(d0, d1) -> (d0, d1 floordiv 32)>"
        )
        kernel = compile_module(ir)["quantize"]
        x = view(rng, (rows, cols), layout, floats)
        s, z = scales(rng, (rows, blocks)), zero_points(rng, (rows, blocks))
        expand = np.arange(cols) // 32
        check_equal(kernel(x, s, z), quantize_ref(x, s[:, expand], z[:, expand]))

    @FEW
    @given(seed=SEEDS, order=st.permutations([0, 1, 2]), step=st.sampled_from([1, -1, 2]))
    def test_3d_per_axis(self, seed: int, order: list[int], step: int) -> None:
        """Axis 1 of a 3-D tensor, given as an arbitrarily transposed, strided view."""
        rng = np.random.default_rng(seed)
        shape = (3, 5, 17)
        kernel = compile_module(quantize_ir(shape, (5,), "affine_map<(d0, d1, d2) -> (d1)>"))[
            "quantize"
        ]
        big = (3, 5, 17 * abs(step))
        base = floats(rng, tuple(big[k] for k in order))  # memory order: logical axes `order`
        x = base.transpose(np.argsort(order))[:, :, ::step]
        s, z = scales(rng, (5,)), zero_points(rng, (5,))
        check_equal(kernel(x, s, z), quantize_ref(x, s[:, None], z[:, None]))

    def test_concurrent_callers(self) -> None:
        """Python threads calling one kernel at once each get their own pointer arrays."""
        kernel = compile_module(quantize_ir((9, 33), (33,), "affine_map<(d0, d1) -> (d1)>"))[
            "quantize"
        ]
        rng = np.random.default_rng(3)
        cases = [
            (view(rng, (9, 33), layout, floats), scales(rng, (33,)), zero_points(rng, (33,)))
            for layout in ["contiguous", "strided", "transposed", "reversed"] * 2
        ]

        def work(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> bool:
            return all(np.array_equal(kernel(*case), quantize_ref(*case)) for _ in range(50))

        with ThreadPoolExecutor(4) as pool:
            assert all(pool.map(work, cases))

    def test_threaded_matches_serial(self) -> None:
        """Big enough to be split across threads by default; equal to a one-call run."""
        rng = np.random.default_rng(0)
        shape = (512, 1024)
        kernel = compile_module(quantize_ir(shape, (), SCALAR2))["quantize"]
        assert any(len(c) > 1 for c in kernel.chunks) == (jit._num_threads() > 1)
        x, s, z = floats(rng, shape), scales(rng, ()), zero_points(rng, ())
        check_equal(kernel(x, s, z), quantize_ref(x, s, z))
        check_equal(kernel(x[::-1, ::-1], s, z), quantize_ref(x[::-1, ::-1], s, z))

    @FEW
    @given(rows=ROWS, cols=COLS, layout=LAYOUTS, seed=SEEDS)
    def test_forced_threading_on_small_shapes(
        self, rows: int, cols: int, layout: str, seed: int
    ) -> None:
        """Every row range split in 3 chunks, including 0 and 1 rows, gives the same answer."""
        rng = np.random.default_rng(seed)
        ir = quantize_ir((rows, cols), (cols,), "affine_map<(d0, d1) -> (d1)>")
        kernel = compile_module(ir)["quantize"]
        threshold, threads = kernel.parallel_threshold, kernel.num_threads
        try:
            kernel.parallel_threshold, kernel.num_threads = 0, 3
            assert kernel.chunks == (jit._chunks(rows, 3),)
            x = view(rng, (rows, cols), layout, floats)
            s, z = scales(rng, (cols,)), zero_points(rng, (cols,))
            check_equal(kernel(x, s, z), quantize_ref(x, s, z))
        finally:
            kernel.parallel_threshold, kernel.num_threads = threshold, threads


# --------------------------------------------------------------------------------------
# Reductions fused with their consumer


def dynamic_quantize_ir(shape: tuple[int, int], block: int | None) -> str:
    """amax |x| per row (block=None) or per `block` columns, scale = amax / 127, then
    quantize with that scale; returns (q, scale)."""
    rows, cols = shape
    amax_shape = (rows,) if block is None else (rows, -(-cols // block))
    red_map, row_map = (
        ("affine_map<(d0, d1) -> (d0)>", "affine_map<(d0) -> (d0)>")
        if block is None
        else (f"affine_map<(d0, d1) -> (d0, d1 floordiv {block})>", ID2)
    )
    rank = len(amax_shape)
    par = ["parallel"] * rank
    x, a, q = tensor(shape, "f32"), tensor(amax_shape, "f32"), tensor(shape, "i8")
    init = generic(
        [row_map],
        par,
        [],
        [("%e0", a)],
        """\
        %zero = arith.constant 0.0 : f32
        linalg.yield %zero : f32""",
        a,
    )
    amax = generic(
        [ID2, red_map],
        ["parallel", "reduction"],
        [("%x", x)],
        [("%init", a)],
        """\
        %abs = math.absf %x_in : f32
        %m = arith.maximumf %init_in, %abs : f32
        linalg.yield %m : f32""",
        a,
    )
    scale = generic(
        [row_map, row_map],
        par,
        [("%amax", a)],
        [("%e1", a)],
        """\
        %c = arith.constant 127.0 : f32
        %d = arith.divf %amax_in, %c : f32
        linalg.yield %d : f32""",
        a,
    )
    quant = generic(
        [ID2, red_map, ID2],
        ["parallel", "parallel"],
        [("%x", x), ("%scale", a)],
        [("%e2", q)],
        """\
        %d = arith.divf %x_in, %scale_in : f32
        %r = math.roundeven %d : f32
        %lo = arith.constant -127.0 : f32
        %hi = arith.constant 127.0 : f32
        %c = arith.maxnumf %r, %lo : f32
        %c2 = arith.minnumf %c, %hi : f32
        %nan = arith.cmpf uno, %r, %r : f32
        %zero = arith.constant 0.0 : f32
        %v = arith.select %nan, %zero, %c2 : f32
        %i = arith.fptosi %v : f32 to i8
        linalg.yield %i : i8""",
        q,
    )
    return f"""\
func.func @dynamic(%x: {x}) -> ({q}, {a}) {{
  %e0 = tensor.empty() : {a}
  %e1 = tensor.empty() : {a}
  %e2 = tensor.empty() : {q}
  %init = {init}
  %amax = {amax}
  %scale = {scale}
  %q = {quant}
  func.return %q, %scale : {q}, {a}
}}
"""


def dynamic_quantize_ref(x: np.ndarray, block: int | None) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = x.shape
    if block is None:
        amax = np.max(np.abs(x), axis=1, initial=0.0)
        per_element = amax[:, None]
    else:
        blocks = -(-cols // block)
        padded = np.zeros((rows, blocks * block), np.float32)
        padded[:, :cols] = np.abs(x)
        amax = padded.reshape(rows, blocks, block).max(axis=2, initial=0.0)
        per_element = np.repeat(amax, block, axis=1)[:, :cols]
    with np.errstate(all="ignore"):
        r = np.round(x / (per_element / np.float32(127)))
        q = np.where(np.isnan(r), 0, np.clip(r, -127, 127)).astype(np.int8)
    return q, amax / np.float32(127)


class Test_Reductions:
    @FEW
    @given(rows=ROWS, cols=COLS, layout=LAYOUTS, seed=SEEDS, block=st.sampled_from([None, 32]))
    def test_amax_then_quantize(
        self, rows: int, cols: int, layout: str, seed: int, block: int | None
    ) -> None:
        rng = np.random.default_rng(seed)
        compiled = compile_module(dynamic_quantize_ir((rows, cols), block))
        kernel = compiled["dynamic"]
        x = view(rng, (rows, cols), layout, floats)
        q, scale = kernel(x)
        q_ref, scale_ref = dynamic_quantize_ref(x, block)
        check_equal(q, q_ref)
        check_equal(scale, scale_ref)

    @pytest.mark.parametrize("block", [None, 32])
    def test_row_reduction_and_consumer_fuse_into_one_phase(self, block: int | None) -> None:
        spec = compile_module(dynamic_quantize_ir((8, 64), block))["dynamic"].spec
        assert len(spec.phases) == 1
        (phase,) = spec.phases
        assert phase.parallel and phase.extent == 8
        assert phase.ops == ("linalg.generic",) * 4
        assert [b.kind for b in spec.buffers] == ["arg", "result", "result", "scratch"]


def block_amax_1d_ir(n: int, block: int) -> str:
    """amax |x| per `block` elements of a 1-D tensor: d0 is the reduction dimension."""
    a, x = tensor((-(-n // block),), "f32"), tensor((n,), "f32")
    init = generic(
        ["affine_map<(d0) -> (d0)>"],
        ["parallel"],
        [],
        [("%e", a)],
        """\
        %zero = arith.constant 0.0 : f32
        linalg.yield %zero : f32""",
        a,
    )
    amax = generic(
        ["affine_map<(d0) -> (d0)>", f"affine_map<(d0) -> (d0 floordiv {block})>"],
        ["reduction"],
        [("%x", x)],
        [("%init", a)],
        """\
        %abs = math.absf %x_in : f32
        %m = arith.maximumf %init_in, %abs : f32
        linalg.yield %m : f32""",
        a,
    )
    return f"""\
func.func @amax(%x: {x}) -> {a} {{
  %e = tensor.empty() : {a}
  %init = {init}
  %r = {amax}
  func.return %r : {a}
}}
"""


def run_split(compiled: jit.CompiledModule, name: str, inputs, cuts: list[int]):
    """Run every phase through the kernel ABI as consecutive calls on [lo, hi) ranges cut
    at `cuts` (scaled to each phase's extent): any split must give the one-call answer."""
    kernel = compiled[name]
    spec = kernel.spec
    outputs = [np.empty(b.shape, b.dtype) for b in spec.results + spec.scratch]
    arrays = list(inputs) + outputs
    data = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
    rows = [
        (ctypes.c_int64 * max(a.ndim, 1))(*[s // a.itemsize for s in a.strides]) for a in arrays
    ]
    strides = (ctypes.c_void_p * len(arrays))(*[ctypes.addressof(r) for r in rows])
    for phase in spec.phases:
        fn = jit._PHASE_FN(compiled.function_address(phase.function))
        bounds = sorted({0, phase.extent, *(c % (phase.extent + 1) for c in cuts)})
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            fn(ctypes.addressof(data), ctypes.addressof(strides), lo, hi)
    return outputs[: len(spec.results)]


class Test_BlockReduction1D:
    @FEW
    @given(
        n=st.sampled_from([0, 1, 31, 32, 33, 100, 200]),
        block=st.sampled_from([32, 3]),
        seed=SEEDS,
        cuts=st.lists(st.integers(0, 300), max_size=4),
    )
    def test_block_amax(self, n: int, block: int, seed: int, cuts: list[int]) -> None:
        rng = np.random.default_rng(seed)
        compiled = compile_module(block_amax_1d_ir(n, block))
        x = floats(rng, (2 * n,))[::-2]
        blocks = -(-n // block)
        padded = np.zeros(blocks * block, np.float32)
        padded[:n] = np.abs(x)
        expected = padded.reshape(blocks, block).max(axis=1, initial=0.0)
        check_equal(compiled["amax"](x), expected)
        (split,) = run_split(compiled, "amax", [x], cuts)
        check_equal(split, expected)

    def test_any_split_of_a_fused_phase(self) -> None:
        compiled = compile_module(dynamic_quantize_ir((37, 70), 32))
        x = floats(np.random.default_rng(1), (37, 70))
        q, scale = compiled["dynamic"](x)
        q_split, scale_split = run_split(compiled, "dynamic", [x], [5, 6, 30])
        check_equal(q_split, q)
        check_equal(scale_split, scale)


# --------------------------------------------------------------------------------------
# Dequantize from i8 / i4 / ui4


def dequantize_ir(shape: tuple[int, int], element: str, extend: str) -> str:
    q, s, y = tensor(shape, element), tensor((), "f32"), tensor(shape, "f32")
    body = generic(
        [ID2, SCALAR2, ID2],
        ["parallel", "parallel"],
        [("%q", q), ("%s", s)],
        [("%e", y)],
        f"""\
        %w = {extend} %q_in : {element} to i32
        %f = arith.sitofp %w : i32 to f32
        %v = arith.mulf %f, %s_in : f32
        linalg.yield %v : f32""",
        y,
    )
    return f"""\
func.func @dequantize(%q: {q}, %s: {s}) -> {y} {{
  %e = tensor.empty() : {y}
  %y = {body}
  func.return %y : {y}
}}
"""


DEQUANT_TYPES = {
    "i8": (np.int8, "arith.extsi"),
    "i4": (ml_dtypes.int4, "arith.extsi"),
    "ui4": (ml_dtypes.uint4, "arith.extui"),
    "ui8": (np.uint8, "arith.extui"),
}


class Test_Dequantize:
    @FEW
    @given(
        rows=ROWS,
        cols=COLS,
        layout=LAYOUTS,
        seed=SEEDS,
        element=st.sampled_from(sorted(DEQUANT_TYPES)),
    )
    def test_dequantize(self, rows: int, cols: int, layout: str, seed: int, element: str) -> None:
        dtype, extend = DEQUANT_TYPES[element]
        info = ml_dtypes.iinfo(dtype)
        rng = np.random.default_rng(seed)
        kernel = compile_module(dequantize_ir((rows, cols), element, extend))["dequantize"]

        def make(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
            return rng.integers(int(info.min), int(info.max) + 1, shape).astype(dtype)

        q, s = view(rng, (rows, cols), layout, make), scales(rng, ())
        check_equal(kernel(q, s), q.astype(np.int32).astype(np.float32) * s)

    def test_sub_byte_stores_keep_upper_bits_zero(self) -> None:
        """int4(-1) is the byte 0x0F, as ml_dtypes stores it."""
        ir = f"""\
func.func @narrow(%x: tensor<16xi32>) -> (tensor<16xi4>, tensor<16xui4>) {{
  %e = tensor.empty() : tensor<16xi4>
  %u = tensor.empty() : tensor<16xui4>
  %r:2 = linalg.generic {{indexing_maps = [{", ".join(["affine_map<(d0) -> (d0)>"] * 3)}], iterator_types = ["parallel"]}} ins(%x : tensor<16xi32>) outs(%e, %u : tensor<16xi4>, tensor<16xui4>) {{
  ^bb0(%a: i32, %o: i4, %p: ui4):
    %t = arith.trunci %a : i32 to i4
    %v = arith.trunci %a : i32 to ui4
    linalg.yield %t, %v : i4, ui4
  }} -> tensor<16xi4>, tensor<16xui4>
  func.return %r#0, %r#1 : tensor<16xi4>, tensor<16xui4>
}}
"""
        x = np.arange(-8, 8, dtype=np.int32)
        signed, unsigned = compile_module(ir)["narrow"](x)
        check_equal(signed, x.astype(ml_dtypes.int4))
        np.testing.assert_array_equal(signed.view(np.uint8), x & 0xF)
        np.testing.assert_array_equal(unsigned.view(np.uint8), x & 0xF)


# --------------------------------------------------------------------------------------
# Parameters: 0-d tensors, dense constant tables; small float results


CONSTANT_TABLE_IR = """\
func.func @table(%x: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %s = arith.constant dense<[0.5, 2.0, -1.0, 4.0]> : tensor<4xf32>
  %b = arith.constant dense<1.5> : tensor<3x4xf32>
  %z = arith.constant dense<[[1], [2], [3]]> : tensor<3x1xi8>
  %e = tensor.empty() : tensor<3x4xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, 0)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x, %s, %b, %z : tensor<3x4xf32>, tensor<4xf32>, tensor<3x4xf32>, tensor<3x1xi8>) outs(%e : tensor<3x4xf32>) {
  ^bb0(%a: f32, %sc: f32, %bias: f32, %zp: i8, %o: f32):
    %m = arith.mulf %a, %sc : f32
    %p = arith.addf %m, %bias : f32
    %zf = arith.sitofp %zp : i8 to f32
    %v = arith.subf %p, %zf : f32
    linalg.yield %v : f32
  } -> tensor<3x4xf32>
  func.return %r : tensor<3x4xf32>
}
"""


SMALL_FLOAT_IR = """\
func.func @narrow(%x: tensor<7x9xf32>) -> (tensor<7x9xf16>, tensor<7x9xbf16>, tensor<7x9xf8E4M3FN>, tensor<7x9xf32>) {
  %e0 = tensor.empty() : tensor<7x9xf16>
  %e1 = tensor.empty() : tensor<7x9xbf16>
  %e2 = tensor.empty() : tensor<7x9xf8E4M3FN>
  %e3 = tensor.empty() : tensor<7x9xf32>
  %r:4 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<7x9xf32>) outs(%e0, %e1, %e2, %e3 : tensor<7x9xf16>, tensor<7x9xbf16>, tensor<7x9xf8E4M3FN>, tensor<7x9xf32>) {
  ^bb0(%a: f32, %o0: f16, %o1: bf16, %o2: f8E4M3FN, %o3: f32):
    %h = arith.truncf %a : f32 to f16
    %b = arith.truncf %a : f32 to bf16
    %f8 = arith.truncf %a : f32 to f8E4M3FN
    %bits = arith.bitcast %f8 : f8E4M3FN to i8
    %back = arith.bitcast %bits : i8 to f8E4M3FN
    %w = arith.extf %back : f8E4M3FN to f32
    linalg.yield %h, %b, %back, %w : f16, bf16, f8E4M3FN, f32
  } -> tensor<7x9xf16>, tensor<7x9xbf16>, tensor<7x9xf8E4M3FN>, tensor<7x9xf32>
  func.return %r#0, %r#1, %r#2, %r#3 : tensor<7x9xf16>, tensor<7x9xbf16>, tensor<7x9xf8E4M3FN>, tensor<7x9xf32>
}
"""


class Test_Parameters:
    def test_dense_constant_tables(self) -> None:
        x = np.arange(12, dtype=np.float32).reshape(3, 4)
        expected = (
            x * np.array([0.5, 2.0, -1.0, 4.0], np.float32)
            + np.float32(1.5)
            - np.array([[1], [2], [3]], np.float32)
        )
        check_equal(compile_module(CONSTANT_TABLE_IR)["table"](x), expected)

    @FEW
    @given(layout=LAYOUTS, seed=SEEDS)
    def test_small_float_results(self, layout: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        x = view(rng, (7, 9), layout, floats)
        h, b, f8, back = compile_module(SMALL_FLOAT_IR)["narrow"](x)
        with np.errstate(over="ignore"):
            check_equal(h, x.astype(np.float16))
        check_equal(b, x.astype(ml_dtypes.bfloat16))
        check_equal(f8, x.astype(ml_dtypes.float8_e4m3fn))
        check_equal(back, x.astype(ml_dtypes.float8_e4m3fn).astype(np.float32))

    def test_zero_d_everything(self) -> None:
        ir = """\
func.func @scalar(%x: tensor<f32>, %s: tensor<f32>) -> tensor<f32> {
  %e = tensor.empty() : tensor<f32>
  %r = linalg.generic {indexing_maps = [affine_map<() -> ()>, affine_map<() -> ()>, affine_map<() -> ()>], iterator_types = []} ins(%x, %s : tensor<f32>, tensor<f32>) outs(%e : tensor<f32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<f32>
  func.return %r : tensor<f32>
}
"""
        kernel = compile_module(ir)["scalar"]
        assert kernel.spec.phases[0].extent == 1 and not kernel.spec.phases[0].parallel
        out = kernel(np.array(3.0, np.float32), np.float32(0.5))
        assert out.shape == () and out == np.float32(1.5)


# --------------------------------------------------------------------------------------
# Bufferization corner cases


class Test_Buffers:
    def test_outs_argument_is_copied_not_overwritten(self) -> None:
        ir = """\
func.func @accumulate(%x: tensor<4x5xf32>, %acc: tensor<4xf32>) -> (tensor<4xf32>, tensor<4x5xf32>) {
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<4x5xf32>) outs(%acc : tensor<4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %o, %a : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  func.return %r, %x : tensor<4xf32>, tensor<4x5xf32>
}
"""
        x = np.arange(20, dtype=np.float32).reshape(4, 5)
        acc = np.array([1, 2, 3, 4], np.float32)
        kernel = compile_module(ir)["accumulate"]
        total, x_copy = kernel(x, acc[::-1])
        np.testing.assert_array_equal(acc, [1, 2, 3, 4])  # the argument is untouched
        np.testing.assert_array_equal(total, x.sum(axis=1) + acc[::-1])
        np.testing.assert_array_equal(x_copy, x)
        assert not np.shares_memory(x_copy, x)

    def test_value_returned_twice_and_constant_returned(self) -> None:
        ir = """\
func.func @twice(%x: tensor<3xi8>) -> (tensor<3xi8>, tensor<3xi8>, tensor<2xi8>) {
  %c = arith.constant dense<[7, -7]> : tensor<2xi8>
  %e = tensor.empty() : tensor<3xi8>
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%x : tensor<3xi8>) outs(%e : tensor<3xi8>) {
  ^bb0(%a: i8, %o: i8):
    %n = arith.subi %o, %a : i8
    %z = arith.constant 0 : i8
    %m = arith.subi %z, %a : i8
    linalg.yield %m : i8
  } -> tensor<3xi8>
  func.return %r, %r, %c : tensor<3xi8>, tensor<3xi8>, tensor<2xi8>
}
"""
        a, b, c = compile_module(ir)["twice"](np.array([1, -2, 3], np.int8))
        np.testing.assert_array_equal(a, [-1, 2, -3])
        np.testing.assert_array_equal(b, [-1, 2, -3])
        np.testing.assert_array_equal(c, [7, -7])

    def test_out_argument(self) -> None:
        kernel = compile_module(quantize_ir((2, 3), (), SCALAR2))["quantize"]
        x = np.ones((2, 3), np.float32)
        out = np.zeros((2, 3), np.int8)
        result = kernel(x, np.float32(0.5), np.int32(1), out=out)
        assert result is out
        np.testing.assert_array_equal(out, 3)


# --------------------------------------------------------------------------------------
# Calling errors


class Test_CallErrors:
    @staticmethod
    def kernel() -> jit.Kernel:
        ir = quantize_ir((2, 3), (3,), "affine_map<(d0, d1) -> (d1)>")
        return compile_module(ir)["quantize"]

    def test_wrong_shape_names_the_argument(self) -> None:
        with pytest.raises(ValueError, match=r"argument 1 \('s'\).*shape \(3,\).*\(4,\)"):
            self.kernel()(np.ones((2, 3), np.float32), np.ones(4, np.float32), np.ones(3, np.int32))

    def test_wrong_dtype_names_the_argument(self) -> None:
        with pytest.raises(TypeError, match=r"argument 0 \('x'\).*float32.*float64"):
            self.kernel()(np.ones((2, 3)), np.ones(3, np.float32), np.ones(3, np.int32))

    def test_not_an_array(self) -> None:
        with pytest.raises(TypeError, match=r"argument 2 \('z'\).*list"):
            self.kernel()(np.ones((2, 3), np.float32), np.ones(3, np.float32), [0, 0, 0])

    def test_wrong_argument_count(self) -> None:
        with pytest.raises(TypeError, match=r"takes 3 arguments \(x, s, z\), got 1"):
            self.kernel()(np.ones((2, 3), np.float32))

    def test_bad_out(self) -> None:
        x = np.ones((2, 3), np.float32)
        args = (x, np.ones(3, np.float32), np.ones(3, np.int32))
        with pytest.raises(ValueError, match="C-contiguous"):
            self.kernel()(*args, out=np.zeros((3, 2), np.int8).T)
        with pytest.raises(TypeError, match="dtype int8"):
            self.kernel()(*args, out=np.zeros((2, 3), np.int32))

    def test_unknown_function(self) -> None:
        with pytest.raises(KeyError, match="no function @nope"):
            compile_module(quantize_ir((2, 3), (), SCALAR2))["nope"]


# --------------------------------------------------------------------------------------
# Caches


def add_constant_ir(k: int) -> str:
    """A tiny kernel ``@add``: x + k over 4 floats (a distinct module for every k)."""
    t = "tensor<4xf32>"
    body = generic(
        [identity(1), identity(1)],
        ["parallel"],
        [("%x", t)],
        [("%e", t)],
        f"""\
            %c = arith.constant {k}.0 : f32
            %r = arith.addf %x_in, %c : f32
            linalg.yield %r : f32""",
        t,
    )
    return f"""\
func.func @add(%x: {t}) -> {t} {{
  %e = tensor.empty() : {t}
  %y = {body}
  func.return %y : {t}
}}
"""


SIGNED_ZERO_IR = """\
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %c = arith.constant dense<CONST> : tensor<2xf32>
  %e = tensor.empty() : tensor<2xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%x, %c : tensor<2xf32>, tensor<2xf32>) outs(%e : tensor<2xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  } -> tensor<2xf32>
  func.return %y : tensor<2xf32>
}
"""


@pytest.fixture
def small_memory_cache(monkeypatch: pytest.MonkeyPatch):
    """The JIT's memory cache with room for 8 modules, and the garbage collector off: the
    engines must be freed by reference counting, at once, not by a later gc pass."""
    monkeypatch.setattr(cache, "MEMORY_CACHE", MemoryCache(capacity=8))
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    enabled = gc.isenabled()
    gc.disable()
    yield cache.MEMORY_CACHE
    if enabled:
        gc.enable()


class Test_Cache:
    def test_memory_cache_returns_the_same_module(self) -> None:
        ir = quantize_ir((5, 5), (), SCALAR2)
        assert compile_module(ir) is compile_module(ir)

    def test_modules_differing_only_in_a_negative_zero_do_not_share_an_entry(self) -> None:
        """xDSL prints dense<[0.0, -0.0]> as the splat dense<0.0>: the key is the translated
        LLVM IR, which keeps the sign, so each module gets its own code."""
        text = SIGNED_ZERO_IR
        mixed = parse_lowered(text.replace("CONST", "[0.0, -0.0]"))
        splat = parse_lowered(text.replace("CONST", "0.0"))
        x = np.full(2, -0.0, np.float32)  # -0.0 + 0.0 = 0.0, -0.0 + -0.0 = -0.0
        np.testing.assert_array_equal(np.signbit(compile_module(mixed)["f"](x)), [False, True])
        np.testing.assert_array_equal(np.signbit(compile_module(splat)["f"](x)), [False, False])
        np.testing.assert_array_equal(np.signbit(compile_module(mixed)["f"](x)), [False, True])

    def test_evicted_engines_are_freed(self, small_memory_cache: MemoryCache) -> None:
        """300 distinct modules through an LRU of 8: never more than 8 engines alive."""
        base = jit.live_engines()
        x = np.zeros(4, np.float32)
        for k in range(300):
            compiled = compile_module(add_constant_ir(10_000 + k))
            if k % 50 == 0:
                np.testing.assert_array_equal(compiled["add"](x), 10_000 + k)
            del compiled
            assert small_memory_cache.count("jit") <= 8
            assert jit.live_engines() - base <= 8, k
        assert jit.live_engines() - base == 8

    def test_held_kernel_outlives_eviction(self, small_memory_cache: MemoryCache) -> None:
        """A kernel the caller keeps keeps its engine (and stays callable) after the cache
        dropped its module; the engine goes with the kernel."""
        base = jit.live_engines()
        kept = compile_module(add_constant_ir(20_000))["add"]
        for k in range(1, 20):
            compile_module(add_constant_ir(20_000 + k))
        assert jit.live_engines() - base == 9  # 8 cached + the held one
        np.testing.assert_array_equal(kept(np.ones(4, np.float32)), 20_001)
        del kept
        assert jit.live_engines() - base == 8

    def test_clear_cache_frees_engines(self, small_memory_cache: MemoryCache) -> None:
        base = jit.live_engines()
        modules = [compile_module(add_constant_ir(30_000 + k)) for k in range(6)]
        kernel = modules[0]["add"]
        assert jit.live_engines() - base == 6
        jit.clear_cache()
        assert jit.live_engines() - base == 6  # the caller still holds all six
        del modules
        assert jit.live_engines() - base == 1  # only the held kernel's
        np.testing.assert_array_equal(kernel(np.zeros(4, np.float32)), 30_000)
        del kernel
        assert jit.live_engines() == base

    def test_disk_cache_serves_a_fresh_engine(
        self, tmp_path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
        jit.clear_cache()
        ir = quantize_ir((6, 7), (), SCALAR2) + "// disk cache test\n"
        cache = disk_cache()
        assert cache is not None
        compile_module(ir)
        assert cache.writes == 1 and len(list(tmp_path.glob("*.qobj"))) == 1
        jit.clear_cache()
        kernel = compile_module(ir)["quantize"]
        assert cache.hits == 1 and cache.writes == 1
        x = np.full((6, 7), 3.0, np.float32)
        np.testing.assert_array_equal(kernel(x, np.float32(2.0), np.int32(0)), 2)

    def test_disk_cache_reused_by_another_process(self, tmp_path) -> None:
        script = textwrap.dedent("""\
            import numpy as np
            from qopt.codegen.cache import disk_cache
            from qopt.codegen.jit import compile_module
            from tests.codegen.test_jit import quantize_ir, SCALAR2
            k = compile_module(quantize_ir((4, 9), (), SCALAR2))["quantize"]
            assert (k(np.full((4, 9), 5.0, np.float32), np.float32(1.0), np.int32(1)) == 6).all()
            c = disk_cache()
            print(c.hits, c.writes)
            """)
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, CACHE_DIR_ENV: str(tmp_path)}
        env["PYTHONPATH"] = str(root)

        def run() -> list[str]:
            done = subprocess.run(
                [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
            )
            return done.stdout.split()

        assert run() == ["0", "1"]
        assert run() == ["1", "0"]


# --------------------------------------------------------------------------------------
# Every scalar op of the lowered-IR set, one elementwise kernel each


def binary_ir(body: str, element: str, result: str) -> str:
    """r[i] = body(a[i], b[i]); `body` defines %r."""
    t_in, t_out = tensor((64,), element), tensor((64,), result)
    text = generic(
        ["affine_map<(d0) -> (d0)>"] * 3,
        ["parallel"],
        [("%a", t_in), ("%b", t_in)],
        [("%e", t_out)],
        f"{body}\nlinalg.yield %r : {result}",
        t_out,
    )
    return f"""\
func.func @op(%a: {t_in}, %b: {t_in}) -> {t_out} {{
  %e = tensor.empty() : {t_out}
  %r = {text}
  func.return %r : {t_out}
}}
"""


def _ints(dtype, lo: int, hi: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.integers(lo, hi, 64).astype(dtype)


def _f32(rng: np.random.Generator) -> np.ndarray:
    return floats(rng, (64,))


def _finite(rng: np.random.Generator) -> np.ndarray:
    return (rng.standard_normal(64) * 100).astype(np.float32)


def _c_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.abs(a) // np.abs(b) * np.sign(a) * np.sign(b)).astype(a.dtype)


def _round_half_away(a: np.ndarray) -> np.ndarray:
    return (np.sign(a) * np.floor(np.abs(a.astype(np.float64)) + 0.5)).astype(np.float32)


I32, U8 = _ints(np.int32, -1000, 1000), _ints(np.uint8, 0, 256)
NONZERO = _ints(np.int32, 1, 50)
SHIFT = _ints(np.int32, 0, 32)

# name: (body, element, result, a, b, numpy reference, exact)
SCALAR_CASES: dict[str, tuple] = {
    "addf": ("%r = arith.addf %a_in, %b_in : f32", "f32", "f32", _f32, _f32, np.add, True),
    "subf": ("%r = arith.subf %a_in, %b_in : f32", "f32", "f32", _f32, _f32, np.subtract, True),
    "mulf": ("%r = arith.mulf %a_in, %b_in : f32", "f32", "f32", _f32, _f32, np.multiply, True),
    "divf": ("%r = arith.divf %a_in, %b_in : f32", "f32", "f32", _f32, _f32, np.divide, True),
    "negf": ("%r = arith.negf %a_in : f32", "f32", "f32", _f32, _f32, lambda a, b: -a, True),
    "maximumf": ("%r = arith.maximumf %a_in, %b_in : f32", "f32", "f32", _finite, _f32, np.maximum, False),
    "minimumf": ("%r = arith.minimumf %a_in, %b_in : f32", "f32", "f32", _finite, _f32, np.minimum, False),
    "maxnumf": ("%r = arith.maxnumf %a_in, %b_in : f32", "f32", "f32", _finite, _f32, np.fmax, False),
    "minnumf": ("%r = arith.minnumf %a_in, %b_in : f32", "f32", "f32", _finite, _f32, np.fmin, False),
    "cmpf_olt": ("%r = arith.cmpf olt, %a_in, %b_in : f32", "f32", "i1", _f32, _f32, np.less, True),
    "cmpf_une": ("%r = arith.cmpf une, %a_in, %b_in : f32", "f32", "i1", _f32, _f32, np.not_equal, True),
    "select": (
        "%c = arith.cmpf ogt, %a_in, %b_in : f32\n%r = arith.select %c, %a_in, %b_in : f32",
        "f32", "f32", _finite, _finite, np.maximum, True,
    ),
    "addi": ("%r = arith.addi %a_in, %b_in : i32", "i32", "i32", I32, I32, np.add, True),
    "subi": ("%r = arith.subi %a_in, %b_in : i32", "i32", "i32", I32, I32, np.subtract, True),
    "muli": ("%r = arith.muli %a_in, %b_in : i32", "i32", "i32", I32, I32, np.multiply, True),
    "divsi": ("%r = arith.divsi %a_in, %b_in : i32", "i32", "i32", I32, NONZERO, _c_div, True),
    "divui": ("%r = arith.divui %a_in, %b_in : ui8", "ui8", "ui8", U8, _ints(np.uint8, 1, 256), np.floor_divide, True),
    "remsi": ("%r = arith.remsi %a_in, %b_in : i32", "i32", "i32", I32, NONZERO, np.fmod, True),
    "andi": ("%r = arith.andi %a_in, %b_in : i32", "i32", "i32", I32, I32, np.bitwise_and, True),
    "ori": ("%r = arith.ori %a_in, %b_in : i32", "i32", "i32", I32, I32, np.bitwise_or, True),
    "xori": ("%r = arith.xori %a_in, %b_in : i32", "i32", "i32", I32, I32, np.bitwise_xor, True),
    "shli": ("%r = arith.shli %a_in, %b_in : i32", "i32", "i32", I32, SHIFT, np.left_shift, True),
    "shrsi": ("%r = arith.shrsi %a_in, %b_in : i32", "i32", "i32", I32, SHIFT, np.right_shift, True),
    "shrui": (
        "%r = arith.shrui %a_in, %b_in : ui8", "ui8", "ui8", U8, _ints(np.uint8, 0, 8), np.right_shift, True,
    ),
    "maxsi": ("%r = arith.maxsi %a_in, %b_in : i32", "i32", "i32", I32, I32, np.maximum, True),
    "minsi": ("%r = arith.minsi %a_in, %b_in : i32", "i32", "i32", I32, I32, np.minimum, True),
    "maxui": ("%r = arith.maxui %a_in, %b_in : ui8", "ui8", "ui8", U8, U8, np.maximum, True),
    "minui": ("%r = arith.minui %a_in, %b_in : ui8", "ui8", "ui8", U8, U8, np.minimum, True),
    "cmpi_ult": ("%r = arith.cmpi ult, %a_in, %b_in : ui8", "ui8", "i1", U8, U8, np.less, True),
    "cmpi_sge": ("%r = arith.cmpi sge, %a_in, %b_in : i32", "i32", "i1", I32, I32, np.greater_equal, True),
    "extsi_trunci": (
        "%w = arith.extsi %a_in : i8 to i64\n%r = arith.trunci %w : i64 to i16",
        "i8", "i16", _ints(np.int8, -128, 128), _ints(np.int8, 0, 1), lambda a, b: a.astype(np.int16), True,
    ),
    "extui": (
        "%r = arith.extui %a_in : ui8 to i32", "ui8", "i32", U8, U8, lambda a, b: a.astype(np.int32), True,
    ),
    "sitofp_fptosi": (
        "%f = arith.sitofp %a_in : i32 to f64\n%h = arith.mulf %f, %f : f64\n%r = arith.fptosi %h : f64 to i32",
        "i32", "i32", I32, I32, lambda a, b: a * a, True,
    ),
    "uitofp_fptoui": (
        "%f = arith.uitofp %a_in : ui8 to f32\n%r = arith.fptoui %f : f32 to ui8",
        "ui8", "ui8", U8, U8, lambda a, b: a, True,
    ),
    "extf_truncf_f64": (
        "%w = arith.extf %a_in : f32 to f64\n%r = arith.truncf %w : f64 to f32",
        "f32", "f32", _f32, _f32, lambda a, b: a, True,
    ),
    "f16_roundtrip": (
        "%h = arith.truncf %a_in : f32 to f16\n%r = arith.extf %h : f16 to f32",
        "f32", "f32", _f32, _f32, lambda a, b: a.astype(np.float16).astype(np.float32), True,
    ),
    "bitcast_index_cast": (
        "%i = arith.bitcast %a_in : f32 to i32\n%r = arith.index_cast %i : i32 to index",
        "f32", "index", _f32, _f32, lambda a, b: a.view(np.int32).astype(np.int64), True,
    ),
    "roundeven": ("%r = math.roundeven %a_in : f32", "f32", "f32", _f32, _f32, lambda a, b: np.round(a), True),
    "round": ("%r = math.round %a_in : f32", "f32", "f32", _finite, _f32, lambda a, b: _round_half_away(a), True),
    "floor": ("%r = math.floor %a_in : f32", "f32", "f32", _f32, _f32, lambda a, b: np.floor(a), True),
    "ceil": ("%r = math.ceil %a_in : f32", "f32", "f32", _f32, _f32, lambda a, b: np.ceil(a), True),
    "trunc": ("%r = math.trunc %a_in : f32", "f32", "f32", _f32, _f32, lambda a, b: np.trunc(a), True),
    "absf": ("%r = math.absf %a_in : f32", "f32", "f32", _f32, _f32, lambda a, b: np.abs(a), True),
    "copysign": ("%r = math.copysign %a_in, %b_in : f32", "f32", "f32", _f32, _f32, np.copysign, True),
    "fma": (
        "%r = math.fma %a_in, %b_in, %a_in : f32", "f32", "f32", _finite, _finite,
        lambda a, b: (a.astype(np.float64) * b + a).astype(np.float32), False,
    ),
    "log2": ("%r = math.log2 %a_in : f32", "f32", "f32", _f32, _f32, lambda a, b: np.log2(a), False),
    "exp2": (
        "%t = arith.constant 0.1 : f32\n%s = arith.mulf %a_in, %t : f32\n%r = math.exp2 %s : f32",
        "f32", "f32", _finite, _f32, lambda a, b: np.exp2(a * np.float32(0.1)), False,
    ),
}  # fmt: skip


class Test_ScalarOps:
    @pytest.mark.parametrize("name", sorted(SCALAR_CASES))
    def test_op(self, name: str) -> None:
        body, element, result, make_a, make_b, reference, exact = SCALAR_CASES[name]
        rng = np.random.default_rng(len(name))
        a, b = make_a(rng), make_b(rng)
        compiled = compile_module(binary_ir(body, element, result))
        actual = compiled["op"](a, b)
        with np.errstate(all="ignore"):
            expected = np.asarray(reference(a, b)).astype(actual.dtype)
        if exact:
            check_equal(actual, expected)
        else:
            np.testing.assert_allclose(actual, expected, rtol=2e-7, atol=0)
        (split,) = run_split(compiled, "op", [a, b], [7, 8, 40])  # [lo, hi) of a 1-D phase
        check_equal(split, actual)


# --------------------------------------------------------------------------------------
# Gathers: tensor.extract of a function-level tensor inside a body (the "lut" lowering)

LUT_IR = """\
func.func @lut(%q: tensor<4x6xi8>, %p: tensor<3x256xf32>) -> tensor<4x6xf32> {
  %e0 = tensor.empty() : tensor<4x256xf32>
  %t = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%p : tensor<3x256xf32>) outs(%e0 : tensor<4x256xf32>) {
  ^bb0(%v: f32, %o: f32):
    %two = arith.constant 2.0 : f32
    %d = arith.mulf %v, %two : f32
    linalg.yield %d : f32
  } -> tensor<4x256xf32>
  %e = tensor.empty() : tensor<4x6xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%q : tensor<4x6xi8>) outs(%e : tensor<4x6xf32>) {
  ^bb0(%a: i8, %o: f32):
    %w = arith.extsi %a : i8 to i32
    %off = arith.constant 128 : i32
    %k = arith.addi %w, %off : i32
    %i = arith.index_cast %k : i32 to index
    %row = arith.constant 2 : index
    %x = tensor.extract %t[%row, %i] : tensor<4x256xf32>
    %y = tensor.extract %p[%row, %i] : tensor<3x256xf32>
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<4x6xf32>
  func.return %r : tensor<4x6xf32>
}
"""

# %a is gathered after %b was computed from it: %b must not overwrite %a's buffer.
GATHER_AFTER_OVERWRITE_IR = """\
func.func @g(%x: tensor<8xf32>, %idx: tensor<8xi32>) -> (tensor<8xf32>, tensor<8xf32>) {
  %e = tensor.empty() : tensor<8xf32>
  %a = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%x : tensor<8xf32>) outs(%e : tensor<8xf32>) {
  ^bb0(%v: f32, %o: f32):
    %n = arith.negf %v : f32
    linalg.yield %n : f32
  } -> tensor<8xf32>
  %b = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} outs(%a : tensor<8xf32>) {
  ^bb0(%o: f32):
    %z = arith.constant 0.0 : f32
    linalg.yield %z : f32
  } -> tensor<8xf32>
  %e2 = tensor.empty() : tensor<8xf32>
  %c = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%idx : tensor<8xi32>) outs(%e2 : tensor<8xf32>) {
  ^bb0(%k: i32, %o: f32):
    %i = arith.index_cast %k : i32 to index
    %v = tensor.extract %a[%i] : tensor<8xf32>
    linalg.yield %v : f32
  } -> tensor<8xf32>
  func.return %b, %c : tensor<8xf32>, tensor<8xf32>
}
"""


class Test_Gather:
    def test_table_lookup(self) -> None:
        rng = np.random.default_rng(0)
        kernel = compile_module(LUT_IR)["lut"]
        # the table written in the same row range is read at any row: not fused
        assert len(kernel.spec.phases) == 2
        q = rng.integers(-128, 128, (4, 6)).astype(np.int8)
        p = rng.standard_normal((3, 256)).astype(np.float32)
        expected = p[0, q.astype(np.int32) + 128] * np.float32(2) + p[2, q.astype(np.int32) + 128]
        check_equal(kernel(q, p[:, ::-1].copy()[:, ::-1]), expected)

    def test_gathered_value_is_not_overwritten_in_place(self) -> None:
        x = np.arange(8, dtype=np.float32)
        idx = np.array([7, 0, 3, 3, 1, 2, 6, 5], np.int32)
        b, c = compile_module(GATHER_AFTER_OVERWRITE_IR)["g"](x, idx)
        np.testing.assert_array_equal(b, np.zeros(8, np.float32))
        np.testing.assert_array_equal(c, -x[idx])
