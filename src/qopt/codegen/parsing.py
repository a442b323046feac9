"""Reading lowered IR text: the dialects it may use, parsed exactly and verified."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, linalg, math, tensor
from xdsl.dialects.builtin import ModuleOp

from qopt.ir.parsing import ExactParser

__all__ = ["lowered_context", "parse_lowered"]


def lowered_context() -> Context:
    """An xDSL context with the dialects of the lowered IR loaded."""
    ctx = Context()
    for dialect in (
        builtin.Builtin,
        func.Func,
        arith.Arith,
        math.Math,
        linalg.Linalg,
        tensor.Tensor,
    ):
        ctx.load_dialect(dialect)
    return ctx


def parse_lowered(text: str, name: str = "<lowered>") -> ModuleOp:
    """Parse and verify lowered IR text."""
    # The exact parser: xDSL's reads a hex float in dense<[0x4B000000]> as an integer.
    module = ExactParser(lowered_context(), text, name).parse_module()
    module.verify()
    return module
