"""The ONNX subcommands: ``qopt import-onnx``, ``qopt onnx-simplify``, ``qopt onnx-check``.

Each ``main(argv, prog)`` returns the exit code and prints its own errors as
``qopt SUBCOMMAND: error: ...`` naming the file and node (never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

_NEEDS_ONNX = "needs the onnx package: pip install 'qopt[onnx]'"


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=description)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code of ``--help`` (0) or a usage error (1, as
    every qopt command-line problem; onnx-check keeps 2 for changed bits)."""
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exit:
        return 0 if exit.code in (0, None) else 1


def _run(prog: str, body: Callable[[], int]) -> int:
    """Run a subcommand body; known failures become one ``error:`` line and exit 1."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        print(f"{prog}: error: {_NEEDS_ONNX}", file=sys.stderr)
        return 1
    from qopt.onnx.model import OnnxError

    try:
        return body()
    except OnnxError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"{prog}: error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return 1


def _write_text(path: str | None, text: str) -> None:
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    with open(path, "w") as f:
        f.write(text)


def import_main(argv: Sequence[str], prog: str = "qopt import-onnx") -> int:
    parser = _parser(
        prog,
        "Import an ONNX model's Q/DQ nodes as quant-dialect IR (other nodes as onnx.node).",
    )
    parser.add_argument("model", help="the .onnx file")
    parser.add_argument("-o", "--output", help="the .mlir file to write (default: stdout)")
    parser.add_argument(
        "--keep-unsupported",
        action="store_true",
        help="keep Q/DQ nodes qopt does not compute as onnx.node (with a note) instead of failing",
    )
    parser.add_argument("--generic", action="store_true", help="print the generic op form")
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args

    def body() -> int:
        from qopt.ir.printing import print_ir
        from qopt.onnx.importer import import_file

        imported = import_file(args.model, keep_unsupported=args.keep_unsupported)
        for index, why in sorted(imported.kept.items()):
            print(
                f"{prog}: note: {imported.label(index)} kept as onnx.node: {why}", file=sys.stderr
            )
        _write_text(args.output, print_ir(imported.module, generic=args.generic) + "\n")
        return 0

    return _run(prog, body)


def simplify_main(argv: Sequence[str], prog: str = "qopt onnx-simplify") -> int:
    parser = _parser(
        prog,
        "Apply fold-quant's exact rewrites to an ONNX model's Q/DQ chains; report every "
        "refused fold with its worst-case error.",
    )
    parser.add_argument("model", help="the .onnx file")
    parser.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    parser.add_argument("-q", "--quiet", action="store_true", help="no report on stderr")
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args

    def body() -> int:
        import onnx

        from qopt.onnx.model import load
        from qopt.onnx.simplify import simplify_model

        result = simplify_model(load(args.model), args.model)
        directory = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(directory):
            print(f"{prog}: error: {args.output}: no such directory", file=sys.stderr)
            return 1
        onnx.save(result.model, args.output)
        if not args.quiet:
            report = sys.stderr
            print(f"{args.model}: removed {len(result.removed)} Q/DQ node(s)", file=report)
            for label in result.removed:
                print(f"  removed: {label}", file=report)
            for refusal in result.refused:
                print(f"  {refusal.describe()}", file=report)
            for note in result.kept:
                print(f"  not computed by qopt, left as it is: {note}", file=report)
        return 0

    return _run(prog, body)


def check_main(argv: Sequence[str], prog: str = "qopt onnx-check") -> int:
    parser = _parser(
        prog,
        "Run the model's Q/DQ subgraphs through qopt and through onnxruntime with its "
        "default optimizations and with none; report every place where onnxruntime's "
        "rewrites change bits. Exit 0: none; 1: an error; 2: changed bits found.",
    )
    parser.add_argument("model", help="the .onnx file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args

    def body() -> int:
        from qopt.onnx.check import check_file

        report = check_file(args.model, seed=args.seed)
        sys.stdout.write(report.text())
        return 2 if report.changed else 0

    return _run(prog, body)
