"""Parsing with source locations, verification, and ``file:line:col: error:`` messages.

xDSL's parser leaves ``loc(unknown)`` on ops parsed from the custom form; the driver and
the tests need every op to know where it came from, so :class:`LocatingParser` records a
``FileLineColLoc`` for each op it parses. :func:`verify_module` then turns the first
verifier failure into a :class:`QuantDiagnostic` that prints like mlir-opt does:

    input.mlir:3:8: error: axis 2 is out of range for data of rank 2
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, linalg, math, scf, tensor
from xdsl.dialects.builtin import FileLineColLoc, FusedLoc, IntAttr, ModuleOp, StringAttr
from xdsl.ir import Attribute, Dialect, Operation
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError, VerifyException

DIALECT_FACTORIES: dict[str, Callable[[], Dialect]] = {
    "builtin": lambda: builtin.Builtin,
    "func": lambda: func.Func,
    "arith": lambda: arith.Arith,
    "math": lambda: math.Math,
    "linalg": lambda: linalg.Linalg,
    "tensor": lambda: tensor.Tensor,
    "scf": lambda: scf.Scf,
}


def _quant_dialect() -> Dialect:
    from qdialect import Quant

    return Quant


DIALECT_FACTORIES["quant"] = _quant_dialect


def make_context() -> Context:
    """A context with every dialect qopt reads or writes, loaded lazily."""
    ctx = Context()
    for name, factory in DIALECT_FACTORIES.items():
        ctx.register_dialect(name, factory)
    return ctx


class QuantDiagnostic(Exception):
    """An error tied to a source location; ``str()`` is the mlir-opt style line."""

    def __init__(self, location: str, message: str):
        super().__init__(f"{location}: error: {message}")
        self.location = location
        self.message = message


def describe_location(loc: Attribute | None, fallback: str = "<unknown>") -> str:
    """``file:line:col`` of a location attribute (the first file location of a fused one)."""
    if isinstance(loc, FileLineColLoc):
        return f"{loc.filename.data}:{loc.line.data}:{loc.column.data}"
    if isinstance(loc, FusedLoc):
        for inner in loc.locations.data:
            text = describe_location(inner, "")
            if text:
                return text
    return fallback


class LocatingParser(Parser):
    """A parser that attaches ``FileLineColLoc`` to every op without an explicit ``loc``."""

    def parse_operation(self) -> Operation:
        start = self._current_token.span
        op = super().parse_operation()
        if not isinstance(op.location, FileLineColLoc | FusedLoc):
            where = start.get_location()
            op.location = FileLineColLoc(
                StringAttr(where.file), IntAttr(where.line), IntAttr(where.col)
            )
        return op


def parse_module(
    text: str, filename: str = "<input>", ctx: Context | None = None, line_offset: int = 0
) -> ModuleOp:
    """Parse (not verify) MLIR text; raise QuantDiagnostic for a syntax error."""
    parser = LocatingParser(ctx or make_context(), text, filename)
    try:
        module = parser.parse_module()
    except ParseError as err:
        where = err.span.get_location()
        raise QuantDiagnostic(
            f"{where.file}:{where.line + line_offset}:{where.col}", err.msg
        ) from None
    if line_offset:
        for op in module.walk():
            loc = op.location
            if isinstance(loc, FileLineColLoc):
                op.location = FileLineColLoc(
                    loc.filename, IntAttr(loc.line.data + line_offset), loc.column
                )
    return module


def verify_module(module: Operation) -> None:
    """Verify every op; the first failure becomes a located QuantDiagnostic."""
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except VerifyException as err:
            message = str(err.args[0]) if err.args else str(err)
            message = message.removeprefix("Operation does not verify: ")
            raise QuantDiagnostic(describe_location(op.location), message) from None
