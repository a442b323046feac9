"""CPU benchmark: qopt against a memory copy, onnxruntime, torch and numpy, same arrays.

    python -m benchmarks.bench_cpu [--size 4096] [--repeat 20] [--threads 2]
                                   [--suite static|dynamic|rescale|compile|all]

Prints one row per case: GB/s (bytes read + written) of qopt, with its spread over the
rounds (slowest round's time / fastest's), of a multi-threaded memory copy of the same
bytes, and qopt's ratio to the copy, onnxruntime (io_binding, `--threads` intra-op
threads), torch and numpy where they can express the op; then the row's goal (issue 12)
and whether this run meets it. qopt, the copy and onnxruntime take turns in every round,
and their ratios are taken within each round (the median and the lowest are printed): on
a shared machine the bandwidth moves by 2x from one second to the next. The compile suite prints what
compiling costs: cold processes (import, first quantize, with an empty and with a warm
``QOPT_CACHE_DIR``) and, in this process, a new kind, a new shape of a compiled kind and
a warm call, as median and min-max over the repetitions. Missing packages
(`pip install .[bench]` installs onnxruntime and torch) leave their columns empty.
This is a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import ml_dtypes
import numpy as np

import qopt


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    return best_of_interleaved([fn], repeat)[0]


def best_of_interleaved(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    return [min(times) for times in rounds_interleaved(fns, repeat)]


def rounds_interleaved(fns: list[Callable[[], object]], repeat: int) -> list[list[float]]:
    """Every round's time of each function over `repeat` rounds, the functions taking turns
    in every round, so that a ratio between them compares runs made under the same machine
    load (on a shared VM the load, the copy's bandwidth included, drifts by 1.5x in
    seconds)."""
    for fn in fns:
        fn()  # warm: compile, first-touch pages
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return times


def parallel_copy(src: np.ndarray, dst: np.ndarray, threads: int) -> Callable[[], None]:
    """A memory copy of ``src`` into ``dst`` split over ``threads`` threads (numpy releases
    the GIL for large copies): the bandwidth ceiling for a streaming kernel."""
    a, b = src.reshape(-1).view(np.uint8), dst.reshape(-1).view(np.uint8)
    bounds = np.linspace(0, a.size, threads + 1).astype(int)

    def copy() -> None:
        workers = [
            threading.Thread(target=np.copyto, args=(b[lo:hi], a[lo:hi]))
            for lo, hi in zip(bounds[:-1], bounds[1:])
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    return copy


# --- onnxruntime -----------------------------------------------------------------------


def ort_bytes(v: np.ndarray) -> np.ndarray:
    """The bytes onnxruntime holds for ``v``: 4-bit types two per byte, low nibble first."""
    flat = np.ascontiguousarray(v).reshape(-1)
    if v.dtype in (np.dtype(ml_dtypes.int4), np.dtype(ml_dtypes.uint4)):
        codes = flat.view(np.uint8) & 0x0F
        if codes.size % 2:
            codes = np.append(codes, np.uint8(0))
        return (codes[0::2] | (codes[1::2] << 4)).astype(np.uint8)
    return flat.view(np.uint8)


def ort_runner(
    node_op: str, inputs: dict[str, np.ndarray], output_type: int, attrs: dict, threads: int
) -> Callable[[], None] | None:
    """An io_binding runner of a one-node ONNX model, or None if onnxruntime is missing
    or cannot run that node."""
    try:
        import onnxruntime as ort
        from onnx import helper
    except ImportError:
        return None
    names = list(inputs)
    node = helper.make_node(node_op, names, ["y"], **attrs)
    x = inputs[names[0]]
    graph = helper.make_graph(
        [node],
        "bench",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for n, v in inputs.items()
        ],
        [helper.make_tensor_value_info("y", output_type, x.shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception:
        return None
    binding = session.io_binding()
    keep = []
    for n, v in inputs.items():
        # OrtValues of the ONNX element type: ml_dtypes arrays (float8, int4) cannot be bound
        # directly, so their bytes are copied into an OrtValue once, outside the timing.
        value = ort.OrtValue.ortvalue_from_shape_and_type(
            list(v.shape), helper.np_dtype_to_tensor_dtype(v.dtype), "cpu"
        )
        raw = ort_bytes(v)
        ctypes.memmove(value.data_ptr(), raw.ctypes.data, raw.nbytes)
        binding.bind_ortvalue_input(n, value)
        keep.append(value)
    out = ort.OrtValue.ortvalue_from_shape_and_type(list(x.shape), output_type, "cpu")
    binding.bind_ortvalue_output("y", out)
    keep.append(out)

    def run() -> None:
        session.run_with_iobinding(binding)

    return run


# --- the cases -------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    qopt: Callable[[], object]
    bytes_moved: int
    src: np.ndarray
    ort: Callable[[], object] | None = None
    torch: Callable[[], object] | None = None
    numpy: Callable[[], object] | None = None
    goal_copy: float | None = None
    """The "x copy" this row should reach (issue 12)."""
    goal_ort: float | None = None
    """The "x ort" this row should reach."""
    beats: str | None = None
    """The row whose "x copy" this one should reach (packed NVFP4 >= unpacked)."""


def make_cases(n: int, threads: int) -> list[Case]:
    from onnx import TensorProto

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n), dtype=np.float32)
    s_tensor = np.float32(0.02)
    s_axis0 = (rng.random(n, dtype=np.float32) + 0.5) * 0.02
    s_axis1 = (rng.random(n, dtype=np.float32) + 0.5) * 0.02
    q8 = rng.integers(-128, 128, (n, n), dtype=np.int8)
    f8 = (x * 10).astype(ml_dtypes.float8_e4m3fn)
    q4 = rng.integers(-8, 8, (n, n)).astype(ml_dtypes.int4)
    s_block = (rng.random((n, n // 32), dtype=np.float32) + 0.5) * 0.1
    size = n * n
    cases: list[Case] = []
    # Preallocated outputs, as onnxruntime's io_binding has: the timing is the kernel's,
    # not the first-touch page faults of a fresh result array.
    out_i8 = np.empty((n, n), np.int8)
    out_f32 = np.empty((n, n), np.float32)
    out_f8 = np.empty((n, n), ml_dtypes.float8_e4m3fn)
    out_i4 = np.empty((n, n), ml_dtypes.int4)

    def torch_q(axis_scales: np.ndarray | None, axis: int) -> Callable[[], object] | None:
        try:
            import torch
        except ImportError:
            return None
        torch.set_num_threads(threads)
        tx = torch.from_numpy(x)
        if axis_scales is None:
            return lambda: torch.quantize_per_tensor(tx, 0.02, 0, torch.qint8)
        ts = torch.from_numpy(axis_scales.astype(np.float64))
        tz = torch.zeros(n, dtype=torch.int64)
        return lambda: torch.quantize_per_channel(tx, ts, tz, axis, torch.qint8)

    def np_quant(scale: np.ndarray | np.float32) -> Callable[[], object]:
        return lambda: np.clip(np.rint(x / scale), -128, 127).astype(np.int8)

    zp8 = np.int8(0)
    cases.append(
        Case(
            "Q f32->i8 per-tensor",
            lambda: qopt.quantize(x, s_tensor, zp8, dtype="i8", out=out_i8),
            size * 5,
            x,
            ort_runner(
                "QuantizeLinear",
                {"x": x, "s": np.array(s_tensor), "z": np.array(zp8)},
                TensorProto.INT8,
                {},
                threads,
            ),
            torch_q(None, 0),
            np_quant(s_tensor),
        )
    )
    z0 = np.zeros(n, np.int8)
    cases.append(
        Case(
            "Q f32->i8 per-axis 0",
            lambda: qopt.quantize(x, s_axis0, z0, dtype="i8", axis=0, out=out_i8),
            size * 5,
            x,
            ort_runner(
                "QuantizeLinear",
                {"x": x, "s": s_axis0, "z": z0},
                TensorProto.INT8,
                {"axis": 0},
                threads,
            ),
            torch_q(s_axis0, 0),
            np_quant(s_axis0[:, None]),
        )
    )
    cases.append(
        Case(
            "Q f32->i8 per-axis last",
            lambda: qopt.quantize(x, s_axis1, z0, dtype="i8", axis=1, out=out_i8),
            size * 5,
            x,
            ort_runner(
                "QuantizeLinear",
                {"x": x, "s": s_axis1, "z": z0},
                TensorProto.INT8,
                {"axis": 1},
                threads,
            ),
            torch_q(s_axis1, 1),
            np_quant(s_axis1),
        )
    )
    cases.append(
        Case(
            "DQ i8->f32 per-tensor",
            lambda: qopt.dequantize(q8, s_tensor, zp8, out=out_f32),
            size * 5,
            q8,
            ort_runner(
                "DequantizeLinear",
                {"x": q8, "s": np.array(s_tensor), "z": np.array(zp8)},
                TensorProto.FLOAT,
                {},
                threads,
            ),
            None,
            lambda: (q8.astype(np.float32) - np.float32(0)) * s_tensor,
        )
    )
    cases.append(
        Case(
            "DQ i8->f32 per-axis last",
            lambda: qopt.dequantize(q8, s_axis1, z0, axis=1, out=out_f32),
            size * 5,
            q8,
            ort_runner(
                "DequantizeLinear",
                {"x": q8, "s": s_axis1, "z": z0},
                TensorProto.FLOAT,
                {"axis": 1},
                threads,
            ),
            None,
            lambda: q8.astype(np.float32) * s_axis1,
        )
    )
    cases.append(
        Case(
            "Q f32->f8E4M3FN",
            lambda: qopt.quantize(x, s_tensor, dtype="f8E4M3FN", out=out_f8),
            size * 5,
            x,
            ort_runner(
                "QuantizeLinear",
                {"x": x, "s": np.array(s_tensor), "z": np.array(0, dtype=ml_dtypes.float8_e4m3fn)},
                TensorProto.FLOAT8E4M3FN,
                {},
                threads,
            ),
            None,
            lambda: np.clip(x / s_tensor, -448, 448).astype(ml_dtypes.float8_e4m3fn),
        )
    )
    cases.append(
        Case(
            "DQ f8E4M3FN->f32",
            lambda: qopt.dequantize(f8, s_tensor, out=out_f32),
            size * 5,
            f8,
            ort_runner(
                "DequantizeLinear",
                {"x": f8, "s": np.array(s_tensor), "z": np.array(0, dtype=ml_dtypes.float8_e4m3fn)},
                TensorProto.FLOAT,
                {},
                threads,
            ),
            None,
            lambda: f8.astype(np.float32) * s_tensor,
        )
    )
    cases.append(
        Case(
            "Q f32->i4 block 32",
            lambda: qopt.quantize(x, s_block, dtype="i4", axis=1, block_size=32, out=out_i4),
            size * 5,
            x,
            ort_runner(
                "QuantizeLinear",
                {"x": x, "s": s_block, "z": np.zeros(s_block.shape, ml_dtypes.int4)},
                TensorProto.INT4,
                {"axis": 1, "block_size": 32},
                threads,
            ),
            None,
            lambda: np.clip(np.rint(x / np.repeat(s_block, 32, axis=1)), -8, 7).astype(
                ml_dtypes.int4
            ),
        )
    )
    cases.append(
        Case(
            "DQ i4->f32 block 32",
            lambda: qopt.dequantize(q4, s_block, axis=1, block_size=32, out=out_f32),
            size * 5,
            q4,
            ort_runner(
                "DequantizeLinear",
                {"x": q4, "s": s_block, "z": np.zeros(s_block.shape, ml_dtypes.int4)},
                TensorProto.FLOAT,
                {"axis": 1, "block_size": 32},
                threads,
            ),
            None,
            lambda: q4.astype(np.float32) * np.repeat(s_block, 32, axis=1),
        )
    )
    s_out = (rng.random(n, dtype=np.float32) + 0.5) * 0.03
    cases.append(
        Case(
            "RQ i8->i8 per-axis",
            lambda: qopt.requantize(q8, s_axis1, z0, s_out, z0, axis=1, out=out_i8),
            size * 2,
            q8,
            None,
            None,
            lambda: np.clip(np.rint((q8.astype(np.float32) * s_axis1) / s_out), -128, 127).astype(
                np.int8
            ),
            goal_copy=0.7,
        )
    )
    for case in cases[:-1]:  # the quantize / dequantize rows
        case.goal_copy, case.goal_ort = 0.8, 1.0
    return cases


def make_dynamic_cases(n: int, threads: int) -> list[Case]:
    """Dynamic / microscaling rows (issue 5): against the numpy oracle, and in the torch
    column torch (per-token rows) or torchao's CPU path (packed NVFP4, MXFP8)."""
    from tests.support import oracle  # run from the repository root: python -m benchmarks.bench_cpu

    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, n), dtype=np.float32)
    size = n * n
    nvfp4 = {"dtype": "f4E2M1FN", "scale_dtype": "f8E4M3FN", "block_size": 16,
             "double_quant_scale": np.float32(1.0)}  # fmt: skip
    mxfp8 = {"dtype": "f8E4M3FN", "scale_dtype": "f8E8M0FNU", "block_size": 32}
    tiles = {"dtype": "f8E4M3FN", "block_shape": [128, 128]}
    token = {"dtype": "i8", "block_shape": [1, -1]}
    fake = {"dtype": "i8", "per_token": True}

    def torch_token(fake_quant: bool) -> Callable[[], object] | None:
        try:
            import torch
        except ImportError:
            return None
        torch.set_num_threads(threads)
        tx = torch.from_numpy(x)

        def run() -> object:
            s = tx.abs().amax(dim=1, keepdim=True) / 127
            q = torch.clamp(torch.round(tx / s), -128, 127)
            return q * s if fake_quant else q.to(torch.int8)

        return run

    def torchao_runner(kind: str) -> Callable[[], object] | None:
        """torchao's CPU reference of the same format (the torch column of these rows)."""
        try:
            import logging
            import warnings

            import torch

            logging.disable(logging.WARNING)  # torchao reports its missing GPU kernels
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from torchao.prototype.mx_formats.mx_tensor import to_mx
                from torchao.prototype.mx_formats.nvfp4_tensor import nvfp4_quantize
        except ImportError:
            return None
        finally:
            logging.disable(logging.NOTSET)
        torch.set_num_threads(threads)
        tx, one = torch.from_numpy(x), torch.tensor(1.0)
        if kind == "nvfp4":  # packed e2m1 bytes + e4m3 block scales
            return lambda: nvfp4_quantize(tx, block_size=16, per_tensor_scale=one)
        return lambda: to_mx(tx, torch.float8_e4m3fn, 32)

    def dyn(form: dict, packed: bool = False) -> Callable[[], object]:
        # into preallocated results, as the static rows and onnxruntime's io_binding do
        out = tuple(np.empty_like(r) for r in qopt.dynamic_quantize(x, packed=packed, **form))
        return lambda: qopt.dynamic_quantize(x, packed=packed, out=out, **form)

    fake_out = np.empty_like(x)

    return [
        Case("dyn NVFP4 b16", dyn(nvfp4), size * 5 + size // 16, x,
             numpy=lambda: oracle.dynamic_quantize(x, **nvfp4), goal_copy=0.6),
        Case("dyn NVFP4 b16 packed", dyn(nvfp4, True), size * 4 + size // 2 + size // 16, x,
             torch=torchao_runner("nvfp4"),
             numpy=lambda: oracle.pack(oracle.dynamic_quantize(x, **nvfp4)[0]),
             beats="dyn NVFP4 b16"),
        Case("dyn MXFP8 b32", dyn(mxfp8), size * 5 + size // 32, x, torch=torchao_runner("mx"),
             numpy=lambda: oracle.dynamic_quantize(x, **mxfp8), goal_copy=0.6),
        Case("dyn FP8 128x128 f32 scale", dyn(tiles), size * 5, x,
             numpy=lambda: oracle.dynamic_quantize(x, **tiles), goal_copy=0.6),
        Case("dyn int8 per-token", dyn(token), size * 5, x, torch=torch_token(False),
             numpy=lambda: oracle.dynamic_quantize(x, **token)),
        Case("fake-quant int8 per-token", lambda: qopt.fake_quantize(x, **fake, out=fake_out), size * 8, x,
             torch=torch_token(True), numpy=lambda: oracle.fake_quantize(x, **fake)),
    ]  # fmt: skip


# --- compile cost ----------------------------------------------------------------------

QUANTIZE_64 = (
    "import numpy as np, qopt; qopt.quantize(np.ones((64, 64), np.float32), 0.5, dtype='i8')"
)


def fmt_seconds(t: float) -> str:
    return f"{t * 1e6:.0f} us" if t < 1e-3 else f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def process_seconds(code: str, cache_dir: str) -> float:
    """Wall time of a fresh interpreter running ``code`` with ``QOPT_CACHE_DIR=cache_dir``."""
    env = dict(os.environ, QOPT_CACHE_DIR=cache_dir)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - start


def compile_rows(repeat: int) -> list[tuple[str, list[float]]]:
    """(what, seconds of each repetition) of the compile-cost table."""
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:

        def cold(code: str) -> list[float]:  # an empty disk cache for every process
            return [process_seconds(code, tempfile.mkdtemp(dir=tmp)) for _ in range(repeat)]

        rows.append(("process: import qopt", cold("import qopt")))
        rows.append(("process: import + quantize 64x64, empty cache", cold(QUANTIZE_64)))
        warm_dir = tempfile.mkdtemp(dir=tmp)
        process_seconds(QUANTIZE_64, warm_dir)  # fills the disk cache
        warm = [process_seconds(QUANTIZE_64, warm_dir) for _ in range(repeat)]
        rows.append(("process: import + quantize 64x64, warm cache", warm))

    # In this process, without the disk cache: every kind below is compiled from scratch.
    saved = os.environ.pop("QOPT_CACHE_DIR", None)
    try:
        x = np.ones((64, 64), np.float32)
        qopt.quantize(x, 0.5, dtype="i8")  # one-off start-up of the compiler, not timed
        dtypes = ["i16", "ui16", "ui8", "i4", "ui4", "i2", "ui2", "f8E4M3FN", "f8E5M2", "f4E2M1FN"]
        kinds = [(dt, axis) for axis in (None, 0, 1) for dt in dtypes][:repeat]
        scales = {None: np.float32(0.5), 0: np.full(64, 0.5, np.float32)}
        scales[1] = scales[0]

        def timed(fn: Callable[[], object]) -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start

        new_kind = [
            timed(lambda dt=dt, axis=axis: qopt.quantize(x, scales[axis], dtype=dt, axis=axis))
            for dt, axis in kinds
        ]
        rows.append(("in-process: first call of a new kind (64x64)", new_kind))
        new_shape = [
            timed(lambda k=k: qopt.quantize(np.ones((64, 65 + k), np.float32), 0.5, dtype="i8"))
            for k in range(repeat)
        ]
        rows.append(("in-process: new shape of a compiled kind", new_shape))
        small = np.ones((32, 32), np.float32)
        out = np.empty((32, 32), np.int8)
        qopt.quantize(small, 0.5, dtype="i8", out=out)
        warm_call = [
            timed(lambda: qopt.quantize(small, 0.5, dtype="i8", out=out))
            for _ in range(max(repeat, 100))
        ]
        rows.append(("in-process: warm call, 1K elements", warm_call))
    finally:
        if saved is not None:
            os.environ["QOPT_CACHE_DIR"] = saved
    return rows


def print_compile(repeat: int) -> None:
    header = f"{'compile cost':48} {'median':>10} {'min':>10} {'max':>10} {'n':>4}"
    print(header)
    print("-" * len(header))
    for what, times in compile_rows(repeat):
        print(
            f"{what:48} {fmt_seconds(statistics.median(times)):>10} "
            f"{fmt_seconds(min(times)):>10} {fmt_seconds(max(times)):>10} {len(times):>4}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--suite", choices=["static", "dynamic", "rescale", "compile", "all"], default="all"
    )
    args = parser.parse_args()
    cases = []
    if args.suite in ("static", "all"):
        cases += make_cases(args.size, args.threads)
    if args.suite in ("dynamic", "all"):
        cases += make_dynamic_cases(args.size, args.threads)
    if args.suite in ("rescale", "all"):
        from benchmarks.bench_rescale import make_rescale_cases

        cases += make_rescale_cases(args.size, args.threads, Case)
    if args.suite in ("compile", "all"):
        print_compile(min(args.repeat, 10))
        if not cases:
            return
        print()
    print_throughput(cases, args.size, args.threads, args.repeat)


# --- the throughput table ---------------------------------------------------------------

SLOW_PEER_SECONDS = 0.05
"""A peer slower than this per call is timed apart (best of a few), not in every round."""


def print_throughput(cases: list[Case], n: int, threads: int, repeat: int) -> None:
    """One row per case: qopt, the copy and onnxruntime take turns in every round, so each
    ratio is taken within a round (the same machine load) and summarised over the rounds
    by its median and its lowest value; torch and numpy are timed apart (best of a few)."""
    header = (
        f"{'case':26} {'qopt GB/s':>9} {'spread':>6} {'copy GB/s':>9} {'x copy':>6} "
        f"{'(min)':>5} {'x ort':>6} {'(min)':>5} {'x torch':>8} {'x numpy':>8}  "
        f"{'goal':20} {'met':>3}"
    )
    print(
        f"{n}x{n}, {threads} threads, {repeat} rounds; GB/s: best round; x copy / x ort: "
        "median (and lowest) of the per-round ratios; spread: qopt's slowest round / fastest"
    )
    print(header)
    print("-" * len(header))
    x_copy: dict[str, float] = {}
    for case in cases:
        gbs = case.bytes_moved / 1e9
        half = case.bytes_moved // 2
        src = np.empty(half, np.uint8)
        dst = np.empty(half, np.uint8)
        fns = [case.qopt, parallel_copy(src, dst, threads)]
        ort_in_rounds = case.ort is not None and best_seconds(case.ort, 1) < SLOW_PEER_SECONDS
        if ort_in_rounds:
            fns.append(case.ort)
        rounds = rounds_interleaved(fns, repeat)
        r_qopt, r_copy = rounds[0], rounds[1]
        t_qopt = min(r_qopt)
        copy_ratios = [c / q for q, c in zip(r_qopt, r_copy)]
        x_copy[case.name] = statistics.median(copy_ratios)
        row = [
            f"{case.name:26}",
            f"{gbs / t_qopt:9.2f}",
            f"{max(r_qopt) / t_qopt:5.2f}x",
            f"{gbs / min(r_copy):9.2f}",
            f"{x_copy[case.name]:6.2f}",
            f"{min(copy_ratios):5.2f}",
        ]
        ort_ratio = ort_min = None
        if ort_in_rounds:
            ort_ratios = [o / q for q, o in zip(r_qopt, rounds[2])]
            ort_ratio, ort_min = statistics.median(ort_ratios), min(ort_ratios)
        elif case.ort is not None:
            ort_ratio = ort_min = best_seconds(case.ort, 3) / t_qopt
        row += [f"{'-':>6} {'-':>5}" if ort_ratio is None else f"{ort_ratio:6.2f} {ort_min:5.2f}"]
        for other in (case.torch, case.numpy):
            if other is None:
                row.append(f"{'-':>8}")
                continue
            row.append(f"{best_seconds(other, max(3, repeat // 4)) / t_qopt:8.1f}")
        goal, met = goal_and_verdict(case, x_copy, ort_ratio)
        row += [f" {goal:20}", f"{met:>3}"]
        print(" ".join(row), flush=True)


def goal_and_verdict(
    case: Case, x_copy: dict[str, float], ort_ratio: float | None
) -> tuple[str, str]:
    """The row's goal as text, and whether this run's median ratios meet it."""
    goals, met = [], True
    if case.goal_copy is not None:
        goals.append(f"copy>={case.goal_copy:g}")
        met &= x_copy[case.name] >= case.goal_copy
    if case.goal_ort is not None and ort_ratio is not None:
        goals.append(f"ort>={case.goal_ort:g}")
        met &= ort_ratio >= case.goal_ort
    if case.beats is not None and case.beats in x_copy:
        goals.append("copy>=unpacked")
        met &= x_copy[case.name] >= x_copy[case.beats]
    if not goals:
        return "-", "-"
    return " ".join(goals), "yes" if met else "no"


if __name__ == "__main__":
    main()
