"""``verify-checkpoint``: names, dtypes, shapes and config as the loaders read them, then
every quantized tensor decoded and compared with the original.

Checks: the index names exactly the tensors of each shard; each quantized module's
tensors are exactly what its config group's compressor writes, with the dtypes and shapes
it writes for that weight shape; the decoded weight is finite; with ``--against`` every
copied tensor is identical and every quantized one is measured (max abs, RMS, SQNR).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qopt.checkpoint.formats import get_format
from qopt.checkpoint.io import CheckpointError, SafetensorsReader
from qopt.checkpoint.plan import TensorEntry, shard_files
from qopt.checkpoint.stats import TensorStats, tensor_stats


def verify(
    checkpoint: str, against: str | None, format_name: str = "compressed-tensors"
) -> tuple[list[str], list[TensorStats]]:
    """``(problems, statistics)``; an unreadable checkpoint raises CheckpointError."""
    out = Path(checkpoint)
    fmt = get_format(format_name)
    config = fmt.read_config(out)
    index, shards = shard_files(out)
    problems: list[str] = []
    readers = {s: SafetensorsReader(out / s) for s in shards}
    if index is not None:
        for shard, names in index.items():
            if set(names) != set(readers[shard].tensors):
                problems.append(f"{out / shard}: tensors differ from the index")
    where = {n: s for s, r in readers.items() for n in r.tensors}
    modules: dict[str, set[str]] = {}
    for name in where:
        module, _, local = name.rpartition(".")
        modules.setdefault(module, set()).add(local)
    originals = {}
    if against is not None:
        _, in_shards = shard_files(Path(against))
        originals = {s: SafetensorsReader(Path(against) / s) for s in in_shards}
    original_of = {n: r for r in originals.values() for n in r.tensors}
    rows = []
    for module, locals_ in sorted(modules.items()):
        try:
            scheme = fmt.scheme_of(config, module, sorted(locals_))
        except CheckpointError as e:
            problems.append(str(e))
            continue
        if scheme is None:
            for local in locals_:
                name = f"{module}.{local}"
                ref = original_of.get(name)
                if ref is not None and ref[name].tobytes() != readers[where[name]][name].tobytes():
                    problems.append(f"tensor {name}: differs from {against}")
            continue
        tensors = {
            local: readers[where[f"{module}.{local}"]][f"{module}.{local}"] for local in locals_
        }
        shape = fmt.weight_shape(tensors, scheme) or _weight_shape(module, tensors, original_of)
        if shape is None:
            problems.append(f"module {module}: cannot tell the weight's shape")
            continue
        t = "F32"
        scale = tensors.get("weight_scale")
        if scale is not None and scale.dtype.name in ("bfloat16", "float16"):
            t = {"bfloat16": "BF16", "float16": "F16"}[scale.dtype.name]
        try:
            specs = fmt.output_specs(TensorEntry(module + ".weight", t, shape), scheme)
        except CheckpointError as e:
            problems.append(str(e))
            continue
        for spec in specs:
            local = spec.name.rsplit(".", 1)[1]
            got = tensors.get(local)
            if got is None:
                problems.append(f"tensor {spec.name}: missing")
            elif got.dtype != np.dtype(spec.dtype) and local != "weight_scale":
                problems.append(
                    f"tensor {spec.name}: dtype {got.dtype}, expected {np.dtype(spec.dtype)}"
                )
            elif tuple(got.shape) != tuple(spec.shape):
                problems.append(
                    f"tensor {spec.name}: shape {list(got.shape)}, expected {list(spec.shape)}"
                )
        if any(p.startswith(f"tensor {module}.") for p in problems):
            continue
        decoded = fmt.dequantize(module, tensors, scheme)
        if not np.all(np.isfinite(decoded)):
            problems.append(f"module {module}: decodes to non-finite values")
        ref = original_of.get(module + ".weight")
        reference = ref[module + ".weight"] if ref is not None else decoded
        rows.append(tensor_stats(module + ".weight", scheme.name, reference, decoded))
    return problems, rows


def _weight_shape(module, tensors, original_of) -> tuple[int, int] | None:
    if "weight_shape" in tensors:
        return tuple(int(d) for d in tensors["weight_shape"])
    if "weight" in tensors:
        return tuple(tensors["weight"].shape)
    ref = original_of.get(module + ".weight")
    if ref is not None:
        return tuple(ref[module + ".weight"].shape)
    if "weight_packed" in tensors:
        n, half = tensors["weight_packed"].shape
        return (n, half * 2)
    raise CheckpointError(f"module {module}: no weight tensor")
