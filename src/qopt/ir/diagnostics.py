"""Errors tied to a source location, and the verification that reports them.

Every error qopt reports about an input is a :class:`Diagnostic`, whose ``str()`` is the
mlir-opt style line

    input.mlir:3:8: error: axis 2 is out of range for data of rank 2

:func:`verify_module` runs every op's verifier and turns the first failure into one, and
adds the checks xDSL's verifier leaves out (a value used before its definition, a symbol
defined twice). Nothing here knows a dialect.
"""

from __future__ import annotations

from xdsl.dialects.builtin import FileLineColLoc, FusedLoc, StringAttr
from xdsl.ir import Attribute, Block, BlockArgument, Operation, OpResult
from xdsl.traits import SymbolTable
from xdsl.utils.exceptions import VerifyException


class Diagnostic(Exception):
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


def locate_op(op: Operation) -> str:
    """``file:line:col`` of `op`, else of its nearest located ancestor or first located
    descendant (the implicit module, ops a rewrite built without a location)."""
    parent: Operation | None = op
    while parent is not None:
        if text := describe_location(parent.location, ""):
            return text
        parent = parent.parent_op()
    for inner in op.walk():
        if text := describe_location(inner.location, ""):
            return text
    return "<unknown>"


BUILD_FAILURES = (
    VerifyException,
    ValueError,
    OverflowError,
    TypeError,
    IndexError,
    KeyError,
    NotImplementedError,
    AssertionError,
)
"""What xDSL raises, instead of a ParseError, when it builds an attribute or an op from
a well-formed but meaningless text (an i8 of 300, an f32 of 3.5e38, a wrong arity)."""


def failure_message(err: Exception) -> str:
    text = str(err.args[0]) if err.args else ""
    text = text.removeprefix("Operation does not verify: ")
    return text or type(err).__name__


# --------------------------------------------------------------------------------------
# Verification

_VERIFY_FAILURES = (VerifyException, *BUILD_FAILURES)


def verify_module(module: Operation) -> None:
    """Verify every op; the first failure becomes a located Diagnostic."""
    positions = _block_positions(module)
    for op in module.walk():
        _check_symbols(op)
        try:
            op.verify(verify_nested_ops=False)
        except _VERIFY_FAILURES as err:
            raise Diagnostic(locate_op(op), failure_message(err)) from None
        _check_uses(op, positions)


def _block_positions(module: Operation) -> dict[Operation, int]:
    positions: dict[Operation, int] = {}
    for op in module.walk():
        for region in op.regions:
            for block in region.blocks:
                for index, inner in enumerate(block.ops):
                    positions[inner] = index
    return positions


def _ancestor_in(block: Block, op: Operation) -> Operation | None:
    """`op` or the ancestor of `op` that sits directly in `block`."""
    current: Operation | None = op
    while current is not None and current.parent_block() is not block:
        current = current.parent_op()
    return current


def _defined_before(value: object, op: Operation, positions: dict[Operation, int]) -> bool:
    if isinstance(value, BlockArgument):
        return _ancestor_in(value.block, op) is not None
    if not isinstance(value, OpResult) or (block := value.op.parent_block()) is None:
        return True
    user = _ancestor_in(block, op)
    if user is None:
        # Another block of the same region: dominance across blocks is not checked here.
        region = block.parent
        ancestor: Operation | None = op
        while ancestor is not None:
            if ancestor.parent_region() is region:
                return True
            ancestor = ancestor.parent_op()
        return False
    return positions.get(user, 0) > positions.get(value.op, 0)


def _check_uses(op: Operation, positions: dict[Operation, int]) -> None:
    """Every operand is defined before its use (xDSL does not check dominance)."""
    for index, value in enumerate(op.operands):
        if _defined_before(value, op, positions):
            continue
        name = f"%{value.name_hint}" if value.name_hint else f"#{index}"
        raise Diagnostic(
            locate_op(op),
            f"operand {name} of {op.name} is used before its definition "
            "(its definition does not dominate this use)",
        )


def _check_symbols(op: Operation) -> None:
    """No two ops of one symbol table share a name (xDSL reports it at the module)."""
    if not op.regions or len(op.regions[0].blocks) != 1:
        return
    if not op.has_trait(SymbolTable):
        return
    seen: set[str] = set()
    for inner in op.regions[0].blocks[0].ops:
        name = inner.properties.get("sym_name") or inner.attributes.get("sym_name")
        if not isinstance(name, StringAttr):
            continue
        if name.data in seen:
            raise Diagnostic(locate_op(inner), f"redefinition of symbol '{name.data}'")
        seen.add(name.data)
