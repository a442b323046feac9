"""``qopt quantize-checkpoint`` and ``qopt verify-checkpoint`` (argparse, as Hugging Face tools).

Both print ``qopt SUBCOMMAND: error: ...`` naming the file and tensor and exit 1 on a bad
input; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from qopt.checkpoint.io import CheckpointError


def _quantize_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Quantize the Linear weights of a Hugging Face safetensors checkpoint "
        "into a serving format, bit for bit as the format's own producer writes them.",
    )
    p.add_argument("input", help="model directory (config.json, *.safetensors, index)")
    p.add_argument("-o", "--output", required=True, help="output directory (must not exist)")
    p.add_argument(
        "--scheme",
        required=True,
        help="W8A16, W4A16, W4A16_ASYM, FP8_DYNAMIC, "
        "FP8_BLOCK, NVFP4A16, MXFP8A16, MXFP4A16 (compressed-tensors preset names)",
    )
    p.add_argument("--format", default="compressed-tensors", help="output format")
    p.add_argument(
        "--ignore",
        action="append",
        metavar="REGEX",
        help="modules left unquantized (re.match on the module name; repeatable; "
        "default: embeddings, lm_head, norms, biases)",
    )
    p.add_argument("--group-size", type=int, help="group size of a per-group integer scheme")
    p.add_argument(
        "--bits-file",
        metavar="precision.json",
        help="per-tensor precision (ModelOpt's precision_info): weight or module name -> "
        "4, 8, 16 (unquantized) or a scheme name",
    )
    p.add_argument("--executor", default="process", choices=("process", "ray", "dask"))
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        help="shard jobs run at once (default 1: each kernel already uses every core; more "
        "jobs overlap reading with computing, at one compile per shape per worker)",
    )
    p.add_argument("--address", help="Ray / Dask scheduler address of an existing cluster")
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the finished shards of a stopped run and do the rest",
    )
    p.add_argument("--report", metavar="FILE.json", help="write per-tensor error statistics")
    p.add_argument("--no-stats", action="store_true", help="skip the error statistics")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no table")
    return p


def quantize_main(argv: Sequence[str], prog: str = "qopt quantize-checkpoint") -> int:
    args = _quantize_parser(prog).parse_args(list(argv))
    try:
        return _quantize(args)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1


def _quantize(args: argparse.Namespace) -> int:
    import numpy as np

    from qopt.checkpoint.convert import convert
    from qopt.checkpoint.formats import get_format
    from qopt.checkpoint.io import DTYPES
    from qopt.checkpoint.plan import DEFAULT_IGNORE, make_plan
    from qopt.checkpoint.schemes import scheme_named
    from qopt.checkpoint.stats import format_table, write_report

    if args.address and args.executor == "process":
        raise ValueError("--address applies to --executor ray or dask")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
    fmt = get_format(args.format)
    try:
        scheme = scheme_named(args.scheme, args.group_size)
    except ValueError:
        if args.group_size is not None:
            raise
        try:  # one of the format's own schemes
            scheme = fmt.scheme(args.scheme.upper())
        except CheckpointError:
            raise ValueError(
                f"unknown scheme {args.scheme!r} (format {fmt.name} writes "
                f"{', '.join(fmt.schemes + tuple(s.name for s in fmt.extra_schemes))})"
            ) from None
    fmt.scheme(scheme.name)  # the format writes it
    schemes, scheme_for, check = [scheme], (lambda entry: scheme.name), (lambda: None)
    if args.bits_file:
        from qopt.checkpoint.precision import load_bits_file

        schemes, scheme_for, check = load_bits_file(args.bits_file, scheme, fmt)
    plan = make_plan(
        args.input,
        format=fmt.name,
        schemes=schemes,
        scheme_for=scheme_for,
        ignore=args.ignore if args.ignore is not None else DEFAULT_IGNORE,
        share_global_scale=fmt.shares_global_scale,
    )
    check()
    if Path(args.output).exists():
        raise CheckpointError(f"{args.output}: already exists (remove it or choose another -o)")
    sizes = {
        t.name: int(np.prod(t.shape, dtype=np.int64)) * DTYPES[t.dtype].itemsize
        for s in plan.shards
        for t in s.tensors
    }
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(
            total=sum(sizes.values()), unit="B", unit_scale=True, desc="quantize", file=sys.stderr
        )
    seen = {"tensors": 0}

    def on_tensor(name: str, nbytes: int) -> None:
        if bar is not None:
            seen["tensors"] += 1
            bar.update(nbytes)
            bar.set_postfix(tensors=f"{seen['tensors']}/{len(sizes)}", refresh=False)

    def progress(result) -> None:
        # shards run in worker processes report once, when done
        if bar is not None and (args.jobs > 1 or args.executor != "process"):
            seen["tensors"] += result.tensors
            bar.update(result.bytes_read)
            bar.set_postfix(tensors=f"{seen['tensors']}/{len(sizes)}", refresh=False)

    summary = convert(
        plan,
        args.output,
        executor=args.executor,
        workers=args.jobs,
        address=args.address,
        resume=args.resume,
        stats=not args.no_stats,
        progress=progress,
        on_tensor=on_tensor,
    )
    if bar is not None:
        bar.close()
    rate = summary.bytes_read / max(summary.seconds, 1e-9) / 1e9
    if not args.quiet:
        if not args.no_stats:
            print(format_table(summary.stats))
        print(
            f"{summary.quantized} of {summary.tensors} tensors quantized ({scheme.name}, "
            f"{fmt.name}) in {summary.shards} shards, {summary.seconds:.2f} s, {rate:.2f} GB/s"
            + (f", {summary.resumed} shards resumed" if summary.resumed else "")
        )
    if args.report:
        write_report(
            args.report,
            summary.stats,
            {
                "scheme": scheme.name,
                "format": fmt.name,
                "seconds": summary.seconds,
                "bytes_read": summary.bytes_read,
            },
        )
    return 0


def verify_main(argv: Sequence[str], prog: str = "qopt verify-checkpoint") -> int:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Check a quantized checkpoint against what its format's loaders read; "
        "decompress every tensor and report the error against the original (--against).",
    )
    p.add_argument("checkpoint", help="quantized model directory")
    p.add_argument("--against", help="the unquantized model directory")
    p.add_argument("--format", default="compressed-tensors")
    p.add_argument("--report", metavar="FILE.json")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(list(argv))
    try:
        from qopt.checkpoint.verify import verify

        problems, rows = verify(args.checkpoint, args.against, args.format)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    from qopt.checkpoint.stats import format_table, write_report

    if not args.quiet and rows:
        print(format_table(rows))
    if args.report:
        write_report(args.report, rows, {"problems": problems})
    for problem in problems:
        print(f"{prog}: error: {problem}", file=sys.stderr)
    if not args.quiet and not problems:
        print(f"{args.checkpoint}: consistent")
    return 1 if problems else 0
