"""quantize-checkpoint against llm-compressor's ``model_free_ptq`` and the disk.

    python -m benchmarks.bench_checkpoint [--hidden 2048] [--intermediate 5632]
        [--layers 4] [--dtype bfloat16] [--schemes NVFP4A16,W4A16] [--jobs N] [--no-oracle]

Writes a synthetic Llama-shaped checkpoint (two shards) into a temporary directory, then
per scheme: qopt (process pool, no error statistics, then with them) and model_free_ptq
(CPU, one worker: its default) on the same files and the same ignore list, each after
evicting the input from the page cache (``posix_fadvise(DONTNEED)``: a cold-ish read).
Prints params/s, GB/s of input read, and qopt's speed-up; and the disk's sequential read
bandwidth measured the same way on a fresh file. A benchmark, not a test: it asserts
nothing. model_free_ptq needs the ``checkpoint-oracles`` extra (skipped without it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def evict(path: Path) -> None:
    """Drops the file's pages from the page cache (best effort)."""
    files = [path] if path.is_file() else sorted(path.glob("*.safetensors"))
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def disk_read_bandwidth(directory: Path, size: int = 1 << 30) -> float:
    """GB/s of a sequential read of a fresh file evicted from the page cache."""
    path = directory / "disk-probe.bin"
    block = np.random.default_rng(0).integers(0, 255, 1 << 24, dtype=np.uint8).tobytes()
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
    evict(path)
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 24):
            pass
    seconds = time.perf_counter() - start
    path.unlink()
    return size / seconds / 1e9


def run_qopt(source: Path, out: Path, scheme: str, jobs: int, stats: bool) -> float:
    from qopt.checkpoint.convert import convert
    from qopt.checkpoint.plan import make_plan
    from qopt.checkpoint.schemes import scheme_named

    s = scheme_named(scheme)
    plan = make_plan(
        source,
        format="compressed-tensors",
        schemes=[s],
        scheme_for=lambda e: s.name,
        ignore=[".*lm_head", ".*embed_tokens"],
    )
    shutil.rmtree(out, ignore_errors=True)
    evict(source)
    start = time.perf_counter()
    convert(plan, out, workers=jobs, stats=stats)
    return time.perf_counter() - start


def run_model_free_ptq(source: Path, out: Path, scheme: str) -> float | None:
    try:
        import logging

        from llmcompressor import model_free_ptq
    except ImportError:
        return None
    logging.getLogger().setLevel(logging.WARNING)
    shutil.rmtree(out, ignore_errors=True)
    evict(source)
    start = time.perf_counter()
    model_free_ptq(
        str(source),
        str(out),
        scheme=scheme,
        ignore=["re:.*lm_head", "re:.*embed_tokens"],
        device="cpu",
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--intermediate", type=int, default=5632)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--schemes", default="NVFP4A16,W4A16")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--no-oracle", action="store_true", help="skip model_free_ptq")
    p.add_argument("--dir", help="where to write (default: a temporary directory)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.checkpoint.synthetic import write_checkpoint

    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-ckpt-"))
    source = write_checkpoint(
        work / "src",
        args.dtype,
        hidden=args.hidden,
        intermediate=args.intermediate,
        layers=args.layers,
    )
    size = sum(f.stat().st_size for f in source.glob("*.safetensors"))
    from qopt.checkpoint.io import SafetensorsReader

    params = 0
    quantized = 0
    for f in source.glob("*.safetensors"):
        with SafetensorsReader(f) as r:
            for name, t in r.tensors.items():
                params += int(np.prod(t.shape))
                if len(t.shape) == 2 and "embed" not in name and "lm_head" not in name:
                    quantized += int(np.prod(t.shape))
    disk = disk_read_bandwidth(work)
    print(
        f"checkpoint: {params / 1e6:.1f} M params ({quantized / 1e6:.1f} M quantized), "
        f"{size / 1e9:.2f} GB {args.dtype}, 2 shards; disk sequential read (cold-ish): "
        f"{disk:.2f} GB/s; {args.jobs} jobs"
    )
    # warm the kernel cache once (compiles are paid once per shape and cached on disk)
    for scheme in args.schemes.split(","):
        run_qopt(source, work / "warm", scheme, 1, False)
    print(
        f"{'scheme':<10} {'tool':<22} {'seconds':>8} {'Mparams/s':>10} {'GB/s':>6} {'vs mfptq':>9}"
    )
    for scheme in args.schemes.split(","):
        rows = [
            ("qopt", run_qopt(source, work / "q", scheme, args.jobs, False)),
            ("qopt (+error stats)", run_qopt(source, work / "q", scheme, args.jobs, True)),
        ]
        oracle = None if args.no_oracle else run_model_free_ptq(source, work / "m", scheme)
        if oracle is not None:
            rows.append(("model_free_ptq", oracle))
        for tool, seconds in rows:
            ratio = f"{oracle / seconds:8.1f}x" if oracle else "       -"
            print(
                f"{scheme:<10} {tool:<22} {seconds:8.2f} {quantized / seconds / 1e6:10.1f} "
                f"{size / seconds / 1e9:6.2f} {ratio:>9}"
            )
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
