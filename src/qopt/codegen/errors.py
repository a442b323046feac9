"""The error codegen raises for lowered IR it does not translate."""

from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import UnknownLoc
from xdsl.ir import Operation

__all__ = ["TranslationError"]


class TranslationError(Exception):
    """The lowered IR holds something codegen does not translate.

    The message names the op, its location (``loc(...)``, or ``loc(unknown)`` followed by
    the op's first printed line) and the function it is in. `op` is the offending op.
    """

    def __init__(self, message: str, op: Operation | None = None) -> None:
        self.op = op
        self.reason = message
        super().__init__(f"{message}{_where(op)}" if op is not None else message)


def _where(op: Operation) -> str:
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, func.FuncOp):
        parent = parent.parent_op()
    in_func = f" in @{parent.sym_name.data}" if parent is not None else ""
    if not isinstance(op.location, UnknownLoc):
        return f" at {op.location}{in_func}"
    text = str(op).strip().splitlines()[0]
    return f" at {op.location}{in_func}: {text}"
