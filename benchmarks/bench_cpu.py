"""CPU benchmark: qopt against a memory copy, onnxruntime, torch and numpy, same arrays.

    python benchmarks/bench_cpu.py [--size 4096] [--repeat 20] [--threads 2]

Prints one row per case: GB/s (bytes read + written) of qopt, of a multi-threaded memory
copy of the same bytes, of onnxruntime (io_binding, `--threads` intra-op threads), torch
and numpy where they can express the op, and qopt's ratio to each. Missing packages
(`pip install .[bench]` installs onnxruntime and torch) leave their columns empty.
This is a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import ml_dtypes
import numpy as np

import codegen


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm: compile, first-touch pages
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


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


def ort_runner(
    node_op: str, inputs: dict[str, np.ndarray], output_type: int, attrs: dict, threads: int
) -> Callable[[], None] | None:
    """An io_binding runner of a one-node ONNX model, or None if onnxruntime is missing
    or cannot run that node."""
    try:
        import onnx
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
    for n, v in inputs.items():
        binding.bind_cpu_input(n, v)
    out_dtype = onnx.helper.tensor_dtype_to_np_dtype(output_type)
    out = np.empty(x.shape, dtype=out_dtype)
    binding.bind_output(
        "y", "cpu", element_type=out_dtype, shape=out.shape, buffer_ptr=out.ctypes.data
    )

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
            lambda: codegen.quantize(x, s_tensor, zp8, dtype="i8"),
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
            lambda: codegen.quantize(x, s_axis0, z0, dtype="i8", axis=0),
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
            lambda: codegen.quantize(x, s_axis1, z0, dtype="i8", axis=1),
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
            lambda: codegen.dequantize(q8, s_tensor, zp8),
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
            lambda: codegen.dequantize(q8, s_axis1, z0, axis=1),
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
            lambda: codegen.quantize(x, s_tensor, dtype="f8E4M3FN"),
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
            lambda: codegen.dequantize(f8, s_tensor),
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
            lambda: codegen.quantize(x, s_block, dtype="i4", axis=1, block_size=32),
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
            lambda: codegen.dequantize(q4, s_block, axis=1, block_size=32),
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
            lambda: codegen.requantize(q8, s_axis1, z0, s_out, z0, axis=1),
            size * 2,
            q8,
            None,
            None,
            lambda: np.clip(np.rint((q8.astype(np.float32) * s_axis1) / s_out), -128, 127).astype(
                np.int8
            ),
        )
    )
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    cases = make_cases(args.size, args.threads)
    header = (
        f"{'case':26} {'qopt GB/s':>10} {'copy GB/s':>10} {'x copy':>7} "
        f"{'ort GB/s':>9} {'x ort':>7} {'torch GB/s':>10} {'x torch':>8} "
        f"{'numpy GB/s':>10} {'x numpy':>8}"
    )
    print(f"{args.size}x{args.size}, {args.threads} threads, best of {args.repeat}")
    print(header)
    print("-" * len(header))
    for case in cases:
        gbs = case.bytes_moved / 1e9
        t_qopt = best_seconds(case.qopt, args.repeat)
        half = case.bytes_moved // 2
        src = np.empty(half, np.uint8)
        dst = np.empty(half, np.uint8)
        t_copy = best_seconds(parallel_copy(src, dst, args.threads), args.repeat)
        row = [
            f"{case.name:26}",
            f"{gbs / t_qopt:10.2f}",
            f"{gbs / t_copy:10.2f}",
            f"{t_copy / t_qopt:7.2f}",
        ]
        for other, width in ((case.ort, 9), (case.torch, 10), (case.numpy, 10)):
            if other is None:
                row += [f"{'-':>{width}}", f"{'-':>{7 if width == 9 else 8}}"]
                continue
            t = best_seconds(other, max(3, args.repeat // 4))
            row += [f"{gbs / t:{width}.2f}", f"{t / t_qopt:{7 if width == 9 else 8}.1f}"]
        print(" ".join(row), flush=True)


if __name__ == "__main__":
    main()
