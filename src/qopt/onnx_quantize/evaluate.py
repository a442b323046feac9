"""Error statistics of ``qopt quantize-onnx``: per weight, and per model output.

Per weight: the dequantized weight (``qopt.dequantize`` of the codes, what DequantizeLinear
computes) against the original. Per output: onnxruntime runs the original and the quantized
model on the same seeded random inputs (standard normal floats, small non-negative
integers, symbolic dimensions 1 unless ``--input-shape`` names them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from qopt.onnx_quantize.recipes import QuantizedWeight


@dataclass(frozen=True)
class ErrorStats:
    """Max abs error, RMS error and SQNR (dB; inf when exact) of ``got`` against ``ref``."""

    name: str
    max_abs: float
    rms: float
    sqnr_db: float

    def as_dict(self) -> dict:
        return asdict(self)


def error_stats(name: str, ref: np.ndarray, got: np.ndarray) -> ErrorStats:
    ref64 = np.asarray(ref, dtype=np.float64).ravel()
    err = np.asarray(got, dtype=np.float64).ravel() - ref64
    if err.size == 0:
        return ErrorStats(name, 0.0, 0.0, math.inf)
    noise = float(np.sum(err * err))
    signal = float(np.sum(ref64 * ref64))
    if noise == 0.0:
        sqnr = math.inf
    elif signal == 0.0:
        sqnr = -math.inf
    else:
        sqnr = 10.0 * math.log10(signal / noise)
    return ErrorStats(name, float(np.max(np.abs(err))), math.sqrt(noise / err.size), sqnr)


def dequantized_weight(qw: QuantizedWeight, storage: str, dtype: np.dtype) -> np.ndarray:
    """What DequantizeLinear gives for ``qw``, through ``qopt.dequantize``."""
    import qopt

    data = qw.data
    kwargs = {"axis": qw.axis, "block_size": qw.block_size, "dtype": dtype}
    if storage == "i4":
        kwargs.update(storage_dtype="i4", shape=qw.shape)
    return qopt.dequantize(data, qw.scale, **kwargs)


def _dims(value: onnx.ValueInfoProto, shapes: Mapping[str, tuple[int, ...]]) -> tuple[int, ...]:
    if value.name in shapes:
        return shapes[value.name]
    dims = value.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in dims)


def random_feeds(
    model: onnx.ModelProto, seed: int, shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """Seeded inputs for every graph input that is not an initializer."""
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    unknown = set(shapes) - {v.name for v in model.graph.input}
    if unknown:
        raise ValueError(f"--input-shape names {sorted(unknown)[0]!r}, not a model input")
    feeds = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        elem = value.type.tensor_type.elem_type
        if not value.type.HasField("tensor_type") or elem == TensorProto.UNDEFINED:
            raise ValueError(f"input {value.name!r} is not a tensor; cannot make random data")
        dtype = helper.tensor_dtype_to_np_dtype(elem)
        dims = _dims(value, shapes)
        if np.issubdtype(dtype, np.floating) or elem == TensorProto.BFLOAT16:
            feeds[value.name] = rng.standard_normal(dims).astype(dtype)
        elif dtype == np.bool_:
            feeds[value.name] = rng.integers(0, 2, dims).astype(np.bool_)
        else:
            feeds[value.name] = rng.integers(0, 4, dims).astype(dtype)
    return feeds


def output_stats(
    original: str | bytes, quantized: str | bytes, feeds: Mapping[str, np.ndarray]
) -> list[ErrorStats]:
    """Run both models (paths or serialized bytes) on ``feeds`` with onnxruntime (CPU) and
    compare their outputs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    results = []
    for source in (original, quantized):
        session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        results.append(dict(zip(names, session.run(names, dict(feeds)), strict=True)))
    ref, got = results
    return [error_stats(name, ref[name], got[name]) for name in ref]
