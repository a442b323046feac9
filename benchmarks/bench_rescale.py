"""Rows of bench_cpu for fixed-point rescale (quant.rescale): i32 accumulators -> i8 per channel.

    python -m benchmarks.bench_cpu --suite rescale

numpy column: the same integer arithmetic in int64 (per channel, single rounding, one
expression); ort column: onnxruntime's nearest equivalent, which has no integer rescale:
``DequantizeLinear`` (int32, per-axis f32 scale ``m * 2^-s``) then ``QuantizeLinear``
(f32 -> int8, scale 1, the output zero point), two nodes in one session with io_binding.
That chain rounds in f32 (half to even) and so is not bit-identical to the rescale; it is
what an ONNX runtime does for the same job.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np

import qopt


def _ort_dq_q(
    acc: np.ndarray, scale: np.ndarray, axis: int, zero_point: int, threads: int
) -> Callable[[], None] | None:
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "s"], ["f"], axis=axis),
        helper.make_node("QuantizeLinear", ["f", "one", "zo"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "rescale",
        [helper.make_tensor_value_info("x", TensorProto.INT32, acc.shape)],
        [helper.make_tensor_value_info("y", TensorProto.INT8, acc.shape)],
        initializer=[
            numpy_helper.from_array(scale.astype(np.float32), "s"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
            numpy_helper.from_array(np.array(zero_point, np.int8), "zo"),
        ],
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
    x = ort.OrtValue.ortvalue_from_shape_and_type(list(acc.shape), TensorProto.INT32, "cpu")
    ctypes.memmove(x.data_ptr(), acc.ctypes.data, acc.nbytes)
    y = ort.OrtValue.ortvalue_from_shape_and_type(list(acc.shape), TensorProto.INT8, "cpu")
    binding.bind_ortvalue_input("x", x)
    binding.bind_ortvalue_output("y", y)
    keep = (x, y)

    def run() -> None:
        assert keep
        session.run_with_iobinding(binding)

    return run


def make_rescale_cases(n: int, threads: int, case_type: type) -> list:
    """``Case`` rows (bench_cpu's dataclass, passed in to keep one definition)."""
    rng = np.random.default_rng(0)
    acc = rng.integers(-(2**20), 2**20, (n, n), dtype=np.int32)
    scales = (rng.random(n) + 0.5) * 2.0**-14  # accumulator scale / output scale, per channel
    m, s = qopt.quantize_multiplier(scales)
    out = np.empty((n, n), np.int8)
    zo = -3
    cases = []
    for axis, rounding in ((1, "single_round"), (0, "single_round"), (1, "double_round")):
        view = [1, 1]
        view[axis] = n
        m64 = m.astype(np.int64).reshape(view)
        s64 = s.astype(np.int64).reshape(view)
        half = (np.int64(1) << (s64 - 1)).astype(np.int64)

        def numpy_rescale(m64=m64, s64=s64, half=half) -> np.ndarray:
            t = ((acc.astype(np.int64) * m64 + half) >> s64) + zo
            return np.clip(t, -128, 127).astype(np.int8)

        def run(axis=axis, rounding=rounding) -> np.ndarray:
            return qopt.rescale(acc, m, s, axis=axis, out_zero_point=zo, rounding=rounding, out=out)

        name = f"RS i32->i8 ch axis {axis}" + (" dbl" if rounding == "double_round" else "")
        ort = _ort_dq_q(acc, qopt.multiplier_to_scale(m, s), axis, zo, threads)
        numpy = numpy_rescale if rounding == "single_round" else None
        cases.append(case_type(name, run, n * n * 5, acc, ort, None, numpy))
    return cases
