"""The ``qopt`` subcommands: whole-file jobs beside the mlir-opt style driver.

``qopt SUBCOMMAND ARGS...`` runs ``SUBCOMMANDS[SUBCOMMAND]``'s ``main(argv, prog)``; any
other first argument goes to the opt driver (:mod:`qopt.cli`). Each entry names the module
that implements it, imported only when that subcommand runs, so ``qopt --help`` and the opt
driver load none of them. A subcommand's ``main`` returns the exit code and prints its own
errors (``qopt SUBCOMMAND: error: ...`` naming the file, tensor or node); the driver's last
line of defence turns anything that escapes into one line, never a traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Subcommand:
    """Where a subcommand lives (``module:function``) and its one-line summary."""

    entry: str
    summary: str

    def run(self, argv: Sequence[str], prog: str) -> int:
        module_name, function_name = self.entry.split(":")
        function = getattr(importlib.import_module(module_name), function_name)
        return int(function(list(argv), prog=prog))


SUBCOMMANDS: dict[str, Subcommand] = {
    "quantize-onnx": Subcommand(
        "qopt.onnx_quantize.cli:main",
        "quantize an ONNX model's MatMul/Gemm weights (DequantizeLinear; int4-g128, int8, fp8)",
    ),
    "quantize-checkpoint": Subcommand(
        "qopt.checkpoint.cli:quantize_main",
        "quantize a Hugging Face safetensors checkpoint (compressed-tensors, ...)",
    ),
    "verify-checkpoint": Subcommand(
        "qopt.checkpoint.cli:verify_main",
        "check a quantized checkpoint's names, dtypes, shapes, config and error",
    ),
    "import-onnx": Subcommand(
        "qopt.onnx.cli:import_main", "ONNX model -> quant-dialect IR (Q/DQ nodes as quant ops)"
    ),
    "onnx-simplify": Subcommand(
        "qopt.onnx.cli:simplify_main", "fold-quant's exact rewrites on an ONNX model's Q/DQ chains"
    ),
    "onnx-check": Subcommand(
        "qopt.onnx.cli:check_main",
        "where onnxruntime's default optimizations change the bits of Q/DQ subgraphs",
    ),
}
"""Subcommand name -> where it lives; ``qopt --help`` lists them."""


def subcommand_help() -> str:
    """The subcommand list for ``qopt --help``."""
    if not SUBCOMMANDS:
        return ""
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [f"  qopt {name:<{width}}  {sub.summary}" for name, sub in SUBCOMMANDS.items()]
    return "subcommands (qopt SUBCOMMAND --help for each):\n" + "\n".join(lines)
