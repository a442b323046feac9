"""The xDSL context of every dialect qopt reads or writes, and parsing with it.

``quant``, a minimal ``stablehlo`` (uniform_quantize / uniform_dequantize only), ``onnx``
(the opaque ``onnx.node`` that ``qopt import-onnx`` keeps other ONNX nodes in) and the
dialects of the lowered IR (``builtin``, ``func``, ``arith``, ``math``, ``linalg``,
``tensor``, ``scf``) are registered as lazy factories, so a context costs nothing until a
dialect is used.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, linalg, math, scf, tensor
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Dialect

from qopt.ir import parsing


def _quant_dialect() -> Dialect:
    from qopt.qdialect import Quant

    return Quant


def _onnx_dialect() -> Dialect:
    from qopt.qdialect.onnx_node import Onnx

    return Onnx


def _stablehlo_dialect() -> Dialect:
    from qopt.qdialect.stablehlo import StableHLO

    return StableHLO


DIALECT_FACTORIES: dict[str, Callable[[], Dialect]] = {
    "builtin": lambda: builtin.Builtin,
    "func": lambda: func.Func,
    "arith": lambda: arith.Arith,
    "math": lambda: math.Math,
    "linalg": lambda: linalg.Linalg,
    "tensor": lambda: tensor.Tensor,
    "scf": lambda: scf.Scf,
    "quant": _quant_dialect,
    "onnx": _onnx_dialect,
    "stablehlo": _stablehlo_dialect,
}


def make_context() -> Context:
    """A context with every dialect qopt reads or writes, loaded lazily."""
    ctx = Context()
    for name, factory in DIALECT_FACTORIES.items():
        ctx.register_dialect(name, factory)
    return ctx


def parse_module(
    text: str, filename: str = "<input>", ctx: Context | None = None, line_offset: int = 0
) -> ModuleOp:
    """Parse (not verify) MLIR text with every qopt dialect (or the dialects of `ctx`); a
    syntax error raises a located :class:`~qopt.ir.diagnostics.Diagnostic`."""
    return parsing.parse_module(text, filename, ctx or make_context(), line_offset)
