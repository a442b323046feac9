"""Parsing MLIR text exactly, with a source location on every op.

xDSL's parser leaves ``loc(unknown)`` on ops parsed from the custom form; the driver and
the tests need every op to know where it came from, so :class:`LocatingParser` records a
``FileLineColLoc`` for each op it parses. Every input a user can write ends in a located
:class:`~qopt.ir.diagnostics.Diagnostic`, never in a Python exception:
:func:`scan_source` rejects what xDSL's lexer handles badly (an unterminated string
literal makes its string regex backtrack exponentially; Python refuses to convert integer
literals of more than 4300 digits), and :class:`ExactParser` (the base of
:class:`LocatingParser`; codegen reads lowered IR with it too) turns the exceptions xDSL
raises while building attributes (``OverflowError``, ``VerifyException``, ...) into
located parse errors, refuses literals beyond their type and huge ``dense<...>`` splats,
and reads hexadecimal float literals in ``dense<...>`` as bit patterns (xDSL converts
``0x4B000000`` to the number 1258291200). Nothing here knows a dialect: the caller passes
the context.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import (
    AnyFloat,
    FileLineColLoc,
    FloatAttr,
    FusedLoc,
    IntAttr,
    ModuleOp,
    StringAttr,
)
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError
from xdsl.utils.lexer import Span

from qopt.ir.diagnostics import BUILD_FAILURES, Diagnostic, failure_message

# --------------------------------------------------------------------------------------
# Before the lexer

_ESCAPE_HEX = re.compile(r"[0-9A-Fa-f]{2}")
_LONG_DIGITS = re.compile(r"(?<![\w$.])\d+")


def _int_digit_limit() -> int:
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    return limit or sys.maxsize


def _scan_line(line: str, limit: int) -> tuple[int, str] | None:
    """(0-based column, message) of the first thing on `line` xDSL's lexer cannot take."""
    code = list(line)  # the line with string contents blanked and the comment cut
    i = 0
    while i < len(line):
        if line.startswith("//", i):
            del code[i:]
            break
        if line[i] != '"':
            i += 1
            continue
        # Mirrors xDSL's string regex: no line break, \v or \f inside; escapes are
        # \" \n \t \\ or two hex digits.
        j = i + 1
        while True:
            if j >= len(line) or line[j] in "\v\f":
                return i, "unterminated string literal (a string ends on its line)"
            if line[j] == '"':
                break
            if line[j] == "\\":
                if line[j + 1 : j + 2] in ('"', "n", "t", "\\"):
                    j += 2
                    continue
                if _ESCAPE_HEX.match(line, j + 1):
                    j += 3
                    continue
                return j, "invalid escape sequence in string literal"
            j += 1
        code[i + 1 : j] = " " * (j - i - 1)
        i = j + 1
    for match in _LONG_DIGITS.finditer("".join(code)):
        if len(match.group()) > limit:
            digits = len(match.group())
            return (
                match.start(),
                f"number literal with {digits} digits is too long (at most {limit})",
            )
    return None


def scan_source(text: str, filename: str, line_offset: int = 0) -> None:
    """Reject, with a located error, text that xDSL's lexer would take minutes over or
    fail on with a Python exception (see the module docstring)."""
    limit = _int_digit_limit()
    for number, line in enumerate(text.split("\n"), start=1):
        if '"' not in line and not (len(line) > limit and any(c.isdigit() for c in line)):
            continue
        if (found := _scan_line(line, limit)) is not None:
            column, message = found
            raise Diagnostic(f"{filename}:{number + line_offset}:{column + 1}", message)


# --------------------------------------------------------------------------------------
# The parser


@dataclass
class _HexTensorElement(Parser._TensorLiteralElement):
    """A ``0x...`` element of a dense literal: for a float type it is a bit pattern, as
    xDSL's printer writes it (``dense<[0x4B000000]>``) and MLIR reads it."""

    def to_type(self, parser, type):
        if not isinstance(type, AnyFloat):
            return super().to_type(parser, type)
        return float_from_bits(parser, self.value, type, self.span, self.is_negative)


def float_from_bits(
    parser: Parser, bits: object, type: AnyFloat, span: object, negative: bool = False
) -> float:
    """The value of the hexadecimal float literal `bits` of `type`, or a located error."""
    size = type.compile_time_size
    if negative:
        parser.raise_error("a hexadecimal float literal takes no leading minus", span)
    if not isinstance(bits, int) or not 0 <= bits < 1 << (8 * size):
        parser.raise_error(
            f"hexadecimal float literal does not fit the {8 * size} bits of {type}", span
        )
    return next(iter(type.iter_unpack(bits.to_bytes(size, "little"))))


class ExactParser(Parser):
    """xDSL's parser, reading hexadecimal float elements of dense literals as bit patterns
    and reporting what xDSL fails to build as a ParseError (see the module docstring)."""

    def parse_operation(self) -> Operation:
        start = self._current_token.span
        try:
            return super().parse_operation()
        except BUILD_FAILURES as err:
            raise ParseError(start, failure_message(err)) from None

    def parse_optional_builtin_int_or_float_attr(self):
        start = self._current_token.span
        try:
            attr = super().parse_optional_builtin_int_or_float_attr()
        except BUILD_FAILURES as err:
            raise ParseError(start, _literal_message(err, self._text_since(start))) from None
        if not isinstance(attr, FloatAttr):
            return attr
        text = self._text_since(start)
        if re.match(r"-\s*0[xX]", text):
            # xDSL reads -0x3F800000 as the integer -1065353216 converted to float.
            raise ParseError(start, "a hexadecimal float literal takes no leading minus")
        if _isinf(attr.value.data) and not _is_hex(start):
            # A decimal literal beyond f64 (1.0e400): xDSL makes it inf, MLIR rejects it.
            raise ParseError(start, _literal_message(OverflowError(), text))
        return attr

    def parse_dense_int_or_fp_elements_attr(self, type):
        start = self._current_token.span
        if type is not None:
            _check_dense_size(type.get_shape(), start)
        try:
            return super().parse_dense_int_or_fp_elements_attr(type)
        except BUILD_FAILURES as err:
            message = _literal_message(err)
            if isinstance(err, OverflowError):
                type_name = self._text_since(start).rpartition(":")[2].strip()
                message = f"a value is out of range for {type_name}"
            raise ParseError(start, f"invalid dense literal: {message}") from None

    def _parse_dense_literal_type(self):
        start = self._current_token.span
        type = super()._parse_dense_literal_type()
        _check_dense_size(type.get_shape(), start)
        return type

    def _parse_tensor_literal_element(self) -> Parser._TensorLiteralElement:
        element = super()._parse_tensor_literal_element()
        if isinstance(element.value, float) and _isinf(element.value):
            raise ParseError(element.span, "number out of range (beyond f64)")
        is_int = isinstance(element.value, int) and not isinstance(element.value, bool)
        if is_int and _is_hex(element.span):
            return _HexTensorElement(element.is_negative, element.value, element.span)
        return element

    def _text_since(self, start: Span) -> str:
        return str(start.input.content[start.start : self.pos])


MAX_DENSE_ELEMENTS = 1 << 24
"""The largest ``dense<...>`` constant read (xDSL expands a splat into a Python list:
``dense<1.0> : tensor<100000000xf32>`` would take minutes, a larger one all memory)."""


class LocatingParser(ExactParser):
    """An :class:`ExactParser` that attaches ``FileLineColLoc`` to every op without an
    explicit ``loc``."""

    def parse_operation(self) -> Operation:
        start = self._current_token.span
        op = super().parse_operation()
        if not isinstance(op.location, FileLineColLoc | FusedLoc):
            where = start.get_location()
            op.location = FileLineColLoc(
                StringAttr(where.file), IntAttr(where.line), IntAttr(where.col)
            )
        return op


def _check_dense_size(shape: Sequence[int], where: Span) -> None:
    count = 1
    for n in shape:
        count *= max(n, 0)
    if count > MAX_DENSE_ELEMENTS:
        raise ParseError(
            where,
            f"dense constants of more than {MAX_DENSE_ELEMENTS} elements are not supported "
            f"(this one has {count})",
        )


def _isinf(value: float) -> bool:
    return value in (float("inf"), float("-inf"))


def _is_hex(span: Span) -> bool:
    return span.text.lstrip("-").lstrip()[:2] in ("0x", "0X")


def _literal_message(err: Exception, text: str = "") -> str:
    """The message for a literal xDSL could not build; `text` is the literal as written
    (``3.5e38 : f32``) when known."""
    if isinstance(err, OverflowError):
        literal, _, type_name = text.rpartition(":")
        if literal.strip() and type_name.strip():
            return f"number {literal.strip()} is out of range for {type_name.strip()}"
        return "number out of range for its type"
    return failure_message(err)


def parse_module(
    text: str, filename: str = "<input>", ctx: Context | None = None, line_offset: int = 0
) -> ModuleOp:
    """Parse (not verify) MLIR text; raise Diagnostic for a syntax error."""
    scan_source(text, filename, line_offset)
    parser: LocatingParser | None = None
    try:
        parser = LocatingParser(ctx, text, filename)
        module = parser.parse_module()
    except ParseError as err:
        where = err.span.get_location()
        raise Diagnostic(f"{where.file}:{where.line + line_offset}:{where.col}", err.msg) from None
    except RecursionError:
        where = parser._current_token.span.get_location() if parser is not None else None
        location = (
            f"{where.file}:{where.line + line_offset}:{where.col}"
            if where is not None
            else f"{filename}:{1 + line_offset}:1"
        )
        raise Diagnostic(location, "the input is nested too deeply") from None
    if not isinstance(module.location, FileLineColLoc | FusedLoc):
        module.location = FileLineColLoc(StringAttr(filename), IntAttr(1), IntAttr(1))
    if line_offset:
        for op in module.walk():
            loc = op.location
            if isinstance(loc, FileLineColLoc):
                op.location = FileLineColLoc(
                    loc.filename, IntAttr(loc.line.data + line_offset), loc.column
                )
    return module
