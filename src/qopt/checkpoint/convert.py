"""The conversion driver: plan -> (global amax pass) -> shard jobs -> index, config, files.

``run_shard(job)`` is the per-shard job: a pure function of a :class:`ShardJob` (plain
data), run by any executor (:mod:`qopt.checkpoint.executors`). It maps the input shard,
computes the output header from the format's ``output_specs``, streams each tensor (the
quantized ones through the format, the rest copied) into a temporary file in the staging
directory and renames it into place: a shard file in the staging directory is always
complete, so ``--resume`` keeps the ones whose header matches the plan and redoes the rest.
When every shard is done the index, the config and the other files are written and the
staging directory is renamed to the output directory: there is never a half-written
output directory.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qopt.checkpoint.executors import run_jobs
from qopt.checkpoint.formats import get_format
from qopt.checkpoint.io import (
    CheckpointError,
    OutputSpec,
    SafetensorsReader,
    SafetensorsWriter,
    atomic_file,
    publish_directory,
    read_header,
    staging_directory,
)
from qopt.checkpoint.plan import INDEX_NAME, Plan
from qopt.checkpoint.stats import TensorStats, tensor_stats


@dataclass(frozen=True)
class ShardJob:
    plan: Plan
    shard: int
    staging: str
    group_amax: tuple[tuple[str, float], ...] = ()
    stats: bool = True
    resume: bool = False


@dataclass
class ShardResult:
    output: str
    weight_map: dict[str, str]
    total_size: int
    bytes_read: int
    tensors: int
    stats: list[TensorStats] = field(default_factory=list)
    resumed: bool = False


def shard_specs(plan: Plan, index: int) -> list[OutputSpec]:
    """Every output tensor of shard ``index``, in input order."""
    fmt = get_format(plan.format)
    specs = []
    for entry in plan.shards[index].tensors:
        if entry.scheme is None:
            from qopt.checkpoint.io import DTYPES

            specs.append(OutputSpec(entry.name, DTYPES[entry.dtype], entry.shape))
        else:
            specs.extend(fmt.output_specs(entry, plan.scheme(entry.scheme)))
    return specs


def _matches(path: Path, specs: list[OutputSpec]) -> bool:
    try:
        tensors, _, _ = read_header(path)
    except CheckpointError:
        return False
    want = {s.name: (np.dtype(s.dtype), tuple(s.shape)) for s in specs}
    have = {n: (t.numpy_dtype, t.shape) for n, t in tensors.items()}
    return want == have


def shard_amax(args: tuple[Plan, int]) -> dict[str, float]:
    """The amax of every fused-group member in shard ``index`` (first pass)."""
    plan, index = args
    from qopt.checkpoint.formats.compressed_tensors import weight_amax

    shard = plan.shards[index]
    out = {}
    with SafetensorsReader(Path(plan.input_dir) / shard.input) as reader:
        for entry in shard.tensors:
            if entry.group is not None:
                out[entry.name] = weight_amax(read_entry(reader, entry))
    return out


def read_entry(reader: SafetensorsReader, entry) -> np.ndarray:
    """The tensor an entry names: the tensor itself, or one expert's slice of a stack."""
    if entry.source is None:
        return reader[entry.name]
    start, stop = entry.rows
    return reader[entry.source][entry.expert, start:stop]


def run_shard(job: ShardJob, on_tensor: Callable[[str, int], None] | None = None) -> ShardResult:
    """Converts one shard (see the module docstring). ``on_tensor(name, bytes)`` is called
    after each tensor when the job runs in this process (the progress bar)."""
    plan = job.plan
    shard = plan.shards[job.shard]
    fmt = get_format(plan.format)
    specs = shard_specs(plan, job.shard)
    target = Path(job.staging) / shard.output
    weight_map = dict.fromkeys((s.name for s in specs), shard.output)
    total = sum(s.nbytes for s in specs)
    source = Path(plan.input_dir) / shard.input
    if job.resume and target.exists() and _matches(target, specs):
        return ShardResult(shard.output, weight_map, total, 0, len(shard.tensors), resumed=True)
    group_amax = dict(job.group_amax)
    rows: list[TensorStats] = []
    read = 0
    with (
        SafetensorsReader(source) as reader,
        atomic_file(target) as tmp,
        SafetensorsWriter(tmp, specs) as writer,
    ):
        local_groups: dict[str, float] = {}
        for entry in shard.tensors:
            if entry.group is not None and entry.group not in group_amax:
                from qopt.checkpoint.formats.compressed_tensors import weight_amax

                amax = weight_amax(read_entry(reader, entry))
                local_groups[entry.group] = max(local_groups.get(entry.group, 0.0), amax)
        group_amax.update(local_groups)
        for entry in shard.tensors:
            array = read_entry(reader, entry)
            read += array.nbytes
            if entry.scheme is None:
                writer.write(entry.name, array)
                if on_tensor is not None:
                    on_tensor(entry.name, array.nbytes)
                continue
            scheme = plan.scheme(entry.scheme)
            amax = group_amax.get(entry.group) if entry.group is not None else None
            try:
                outputs = fmt.quantize(entry, array, scheme, amax)
            except CheckpointError as e:
                raise CheckpointError(f"{source}: {e}") from None
            for name, value in outputs.items():
                writer.write(name, value)
            if job.stats:
                prefix = entry.module + "."
                local = {n[len(prefix) :]: v for n, v in outputs.items()}
                decoded = fmt.dequantize(entry.module, local, scheme)
                rows.append(tensor_stats(entry.name, scheme.name, array, decoded))
            if on_tensor is not None:
                on_tensor(entry.name, array.nbytes)
    return ShardResult(shard.output, weight_map, total, read, len(shard.tensors), rows)


@dataclass
class Summary:
    shards: int
    tensors: int
    quantized: int
    bytes_read: int
    seconds: float
    stats: list[TensorStats]
    resumed: int = 0


def convert(
    plan: Plan,
    out_dir: str | os.PathLike,
    *,
    executor: str = "process",
    workers: int = 1,
    address: str | None = None,
    resume: bool = False,
    stats: bool = True,
    progress: Callable[[ShardResult], None] | None = None,
    on_tensor: Callable[[str, int], None] | None = None,
) -> Summary:
    """Runs ``plan`` into ``out_dir`` (which must not exist). ``progress(result)`` after
    each shard; ``on_tensor(name, bytes)`` after each tensor when the shards run in this
    process (one job at a time, the process executor)."""
    out = Path(out_dir)
    if out.exists():
        raise CheckpointError(f"{out}: already exists (remove it or choose another -o)")
    if not out.parent.is_dir():
        raise CheckpointError(f"{out.parent}: no such directory")
    staging = staging_directory(out)
    if staging.exists() and not resume:
        shutil.rmtree(staging)
    staging.mkdir(exist_ok=True)
    start = time.perf_counter()
    fmt = get_format(plan.format)
    group_amax: dict[str, float] = {}
    cross = [g for g in plan.groups if len(g.shards) > 1]
    if cross:
        needed = sorted({plan_shard_index(plan, s) for g in cross for s in g.shards})
        member_amax: dict[str, float] = {}
        for result in run_jobs(
            shard_amax,
            [(plan, i) for i in needed],
            executor=executor,
            workers=workers,
            address=address,
        ):
            member_amax.update(result)
        for g in cross:
            group_amax[g.key] = max(member_amax[m] for m in g.members)
    jobs = [
        ShardJob(plan, i, str(staging), tuple(sorted(group_amax.items())), stats, resume)
        for i in range(len(plan.shards))
    ]
    results = []
    inline = executor == "process" and (workers <= 1 or len(jobs) <= 1)
    job_fn = (
        functools.partial(run_shard, on_tensor=on_tensor) if inline and on_tensor else run_shard
    )
    for result in run_jobs(job_fn, jobs, executor=executor, workers=workers, address=address):
        results.append(result)
        if progress is not None:
            progress(result)
    weight_map: dict[str, str] = {}
    total = 0
    for result in results:
        weight_map.update(result.weight_map)
        total += result.total_size
    if plan.indexed:
        import json

        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (staging / INDEX_NAME).write_text(json.dumps(index, indent=2))
    input_dir = Path(plan.input_dir)
    input_config = None
    for name in plan.files:
        if name == "config.json":
            import json

            try:
                input_config = json.loads((input_dir / name).read_text())
            except ValueError as e:
                raise CheckpointError(f"{input_dir / name}: not JSON ({e})") from None
            continue
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(input_dir / name, staging / name)
    fmt.write_config(plan, input_config, staging)
    publish_directory(staging, out)
    rows = [row for r in results for row in r.stats]
    return Summary(
        shards=len(results),
        tensors=sum(r.tensors for r in results),
        quantized=sum(len(s.quantized) for s in plan.shards),
        bytes_read=sum(r.bytes_read for r in results),
        seconds=time.perf_counter() - start,
        stats=rows,
        resumed=sum(r.resumed for r in results),
    )


def plan_shard_index(plan: Plan, name: str) -> int:
    for i, shard in enumerate(plan.shards):
        if shard.input == name:
            return i
    raise KeyError(name)
