"""``qopt quantize-onnx MODEL -o OUT --scheme int4-g128|int8|fp8``: the command line.

Loads and checks the model (onnx.checker), quantizes its MatMul / Gemm weights
(:func:`qopt.onnx_quantize.quantize.quantize_onnx`), checks and writes the result (through
a temporary file renamed over ``OUT``, so a failed run never leaves a half-written model),
then prints per-weight error statistics and, when onnxruntime is installed, the error of
every model output against the unquantized model on seeded random inputs. Errors print
``PROG: error: ...`` naming the file, node or initializer, and exit 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

EXTERNAL_DATA_THRESHOLD = 1 << 30  # protobuf's 2 GiB limit, with room for the graph


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, as argparse, our prefix
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser(prog: str) -> argparse.ArgumentParser:
    from qopt.onnx_quantize.recipes import SCHEME_NAMES

    parser = _Parser(
        prog=prog,
        description="Quantize an ONNX model's MatMul/Gemm weight initializers into quantized "
        "initializers plus DequantizeLinear nodes (ModelOpt's weight-only recipes, computed "
        "by qopt's kernels), and report the error against the original model.",
    )
    parser.add_argument("model", help="the ONNX model (.onnx; external data beside it)")
    parser.add_argument("-o", "--output", required=True, help="where to write the result")
    parser.add_argument("--scheme", required=True, help=f"one of: {', '.join(SCHEME_NAMES)}")
    parser.add_argument(
        "--bits-file",
        "--precision-file",
        dest="bits_file",
        help="JSON: tensor name -> bits (4 or 8), ModelOpt's precision_info, or -> "
        '{"precision": 4, "block_size": 64} (its layer_info)',
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="REGEX",
        help="keep the weights of nodes whose name matches (re.match); repeatable",
    )
    parser.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=D0xD1...",
        help="shape of a model input for the comparison run (symbolic dimensions are 1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument(
        "--no-eval", action="store_true", help="skip the onnxruntime comparison of outputs"
    )
    parser.add_argument("--report", help="also write the statistics as JSON to this file")
    return parser


def _input_shapes(specs: Sequence[str]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for spec in specs:
        name, sep, dims = spec.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.split("x")) if dims else ()
        except ValueError:
            shape = None
        if not sep or not name or shape is None or any(d < 0 for d in shape):
            raise ValueError(f"--input-shape {spec!r}: expected NAME=D0xD1..., e.g. x=1x128")
        shapes[name] = shape
    return shapes


def _load(path: str):
    import onnx
    from google.protobuf.message import DecodeError

    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    try:
        onnx.checker.check_model(path)
        return onnx.load(path)
    except (DecodeError, onnx.checker.ValidationError, OSError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()
        raise ValueError(
            f"{path}: not a valid ONNX model: {detail[0] if detail else type(exc).__name__}"
        ) from None


def _save(model, path: str) -> None:
    """Check, then write through a temporary file in the same directory, renamed over ``path``."""
    import onnx

    target = Path(path)
    if not target.parent.is_dir():
        raise ValueError(f"-o {path}: directory {str(target.parent)!r} does not exist")
    external = model.ByteSize() > EXTERNAL_DATA_THRESHOLD
    if not external:
        onnx.checker.check_model(model)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        # external data (large models) goes straight to OUT.data; the graph is renamed last
        onnx.save(model, tmp, save_as_external_data=external, location=f"{target.name}.data")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([title, line(header), *(line(r) for r in rows)])


def _report(result, outputs, skipped_eval: str | None) -> str:
    weights = [
        (
            w.target.initializer,
            w.recipe.name,
            "x".join(map(str, w.weight.shape)),
            _fmt(w.stats.max_abs),
            _fmt(w.stats.rms),
            _fmt(w.stats.sqnr_db),
        )
        for w in result.weights
    ]
    head = ("weight", "recipe", "shape", "max_abs", "rms", "sqnr_db")
    parts = [_table(f"quantized {len(weights)} weights", weights, head)]
    parts += [f"kept {why}" for why in result.skipped]
    if outputs is not None:
        rows = [(s.name, _fmt(s.max_abs), _fmt(s.rms), _fmt(s.sqnr_db)) for s in outputs]
        head = ("output", "max_abs", "rms", "sqnr_db")
        parts.append(_table("model outputs vs the unquantized model (onnxruntime)", rows, head))
    else:
        parts.append(f"model outputs not compared: {skipped_eval}")
    return "\n".join(parts)


def _json_report(result, outputs) -> dict:
    return {
        "weights": [
            {
                **w.stats.as_dict(),
                "recipe": w.recipe.name,
                "bits": w.recipe.bits,
                "shape": list(w.weight.shape),
                "axis": w.weight.axis,
                "block_size": w.weight.block_size,
            }
            for w in result.weights
        ],
        "skipped": result.skipped,
        "outputs": None if outputs is None else [s.as_dict() for s in outputs],
    }


def run(args: argparse.Namespace) -> str:
    """The job behind the arguments; returns the report, raises ValueError on bad input."""
    import importlib.util

    from qopt.onnx_quantize.evaluate import output_stats, random_feeds
    from qopt.onnx_quantize.quantize import parse_precision, quantize_onnx
    from qopt.onnx_quantize.recipes import parse_scheme

    recipe = parse_scheme(args.scheme)
    shapes = _input_shapes(args.input_shape)
    precision = None
    if args.bits_file:
        try:
            data = json.loads(Path(args.bits_file).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{args.bits_file}: cannot read a JSON object: {exc}") from None
        precision = parse_precision(data, args.bits_file)
    model = _load(args.model)
    feeds = random_feeds(model, args.seed, shapes)  # checks --input-shape before any write
    result = quantize_onnx(model, recipe, precision=precision, exclude=args.exclude)
    _save(result.model, args.output)
    outputs, why = None, None
    if args.no_eval:
        why = "--no-eval"
    elif importlib.util.find_spec("onnxruntime") is None:
        why = "onnxruntime is not installed"
    else:
        outputs = output_stats(args.model, args.output, feeds)
    if args.report:
        Path(args.report).write_text(json.dumps(_json_report(result, outputs), indent=2))
    return _report(result, outputs, why)


def main(argv: Sequence[str], prog: str = "qopt quantize-onnx") -> int:
    args = _parser(prog).parse_args(list(argv))
    try:
        print(run(args))
    except (ValueError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0
