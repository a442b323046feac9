"""The custom assembly form shared by the quant ops: a list of keyword clauses.

Every quant op prints as

    quant.OP %input CLAUSE* attr-dict : INPUT-TYPE -> RESULT-TYPE (, RESULT-TYPE)*

where each clause is a keyword with parenthesized arguments, printed only when it differs
from its default, and parsed in any order:

    scale(%s : tensor<8xf32>)        a parameter given as an operand ...
    scale(1.250000e-01)              ... or as a constant (f32 scalar or dense tensor)
    zero_point(3)
    per_axis(1)                      the granularity (attrs.py), per_tensor by default
    rounding(nearest_away)           an enumerated string property
    range(-127, 127)                 a narrow storage range
    saturate(false)                  a boolean property
    storage(i8)                      a type property
    eps(1.000000e-05)                a float property
    in(scale(...) zero_point(...) per_axis(0))   a group with prefixed names (requantize)

The declarative ``assembly_format`` of xDSL cannot express optional operand-or-attribute
parameters, hence this table-driven parser/printer: each op lists its clauses once and
gets parse and print from :class:`ClauseOp`.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from io import StringIO
from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    BoolAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    f32,
    i32,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import IRDLOperation
from xdsl.parser import Parser, UnresolvedOperand
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.lexer import Position

from qopt.qdialect.attrs import GranularityAttr, PerTensorAttr


def f32_attr(number: float) -> FloatAttr:
    """An f32 FloatAttr of a parsed literal, rounded to f32 (overflow becomes inf)."""
    with np.errstate(over="ignore"):
        return FloatAttr(float(np.float32(number)), f32)


def _is_hex_literal(parser: Parser) -> bool:
    text = parser._current_token.text
    return text[:2] in ("0x", "0X")


def parse_optional_f32(parser: Parser) -> FloatAttr | None:
    """An f32 literal: a decimal number rounded to f32, or a hexadecimal bit pattern.

    xDSL's printer writes an f32 that needs more than 6 significant digits and has no
    fractional part (``8388608.0``, ``1234567.0``) as its bits, ``0x4B000000``, like
    MLIR; reading that as the integer 1258291200 would change the value silently.
    """
    start = parser.pos
    if _is_hex_literal(parser):
        bits = parser.parse_integer(allow_boolean=False, allow_negative=False)
        if not 0 <= bits <= 0xFFFFFFFF:
            parser.raise_error("hexadecimal float literal does not fit the 32 bits of f32", start)
        return FloatAttr(float(np.uint32(bits).view(np.float32)), f32)
    negative = parser.parse_optional_punctuation("-") is not None
    if negative and _is_hex_literal(parser):
        parser.raise_error("a hexadecimal float literal takes no leading minus", start)
    number = parser.parse_optional_number()
    if number is None:
        if negative:
            parser.raise_error("expected a number after '-'", start)
        return None
    return _float_attr(parser, -number if negative else number, start)


def _float_attr(parser: Parser, number: float, start: Position) -> FloatAttr:
    try:
        return f32_attr(number)
    except OverflowError:  # an integer too large for a float (f32 overflow gives inf)
        parser.raise_error("number is out of range for f32", start)


def _integer_attr(parser: Parser, value: int, width: int, start: Position) -> IntegerAttr:
    try:
        return IntegerAttr(value, width)
    except VerifyException:
        text = str(value) if abs(value) < 10**30 else f"with {len(str(abs(value)))} digits"
        parser.raise_error(f"integer {text} does not fit i{width}", start)


@dataclass
class ParseState:
    """What the clauses of one op have parsed so far."""

    properties: dict[str, Attribute] = field(default_factory=dict)
    operands: dict[str, tuple[UnresolvedOperand, Attribute]] = field(default_factory=dict)


class Clause(ABC):
    """One keyword clause of the custom form."""

    keyword: str

    @abstractmethod
    def print(self, op: IRDLOperation, printer: Printer) -> None:
        """Print ``' keyword(...)'`` if the op carries a non-default value."""

    @abstractmethod
    def parse(self, parser: Parser, state: ParseState) -> None:
        """Parse what follows the keyword (already consumed)."""


@dataclass
class ParamClause(Clause):
    """A quantization parameter: operand ``name`` or constant property ``name_const``."""

    keyword: str
    name: str
    integer: bool = False
    """Integer-valued (zero points): bare numbers become i32 constants, else f32."""

    @property
    def const_name(self) -> str:
        return f"{self.name}_const"

    def print(self, op: IRDLOperation, printer: Printer) -> None:
        operand = getattr(op, self.name)
        const = op.properties.get(self.const_name)
        if operand is None and const is None:
            return
        printer.print_string(f" {self.keyword}(")
        if operand is not None:
            printer.print_operand(operand)
            printer.print_string(" : ")
            printer.print_attribute(operand.type)
        elif isinstance(const, FloatAttr) and const.type == f32 and self.integer:
            # An (invalid) float zero point: a hex form would read back as an integer.
            value = const.value.data
            if math.isfinite(value):
                text = repr(value)
                printer.print_string(text if "." in text else text.replace("e", ".0e"))
            else:
                printer.print_float(value, f32)
        elif isinstance(const, FloatAttr) and const.type == f32:
            printer.print_float(const.value.data, f32)
        elif isinstance(const, IntegerAttr) and const.type == i32:
            printer.print_string(str(const.value.data))
        else:
            printer.print_attribute(const)
        printer.print_string(")")

    def parse(self, parser: Parser, state: ParseState) -> None:
        parser.parse_punctuation("(")
        start = parser.pos
        if (operand := parser.parse_optional_unresolved_operand()) is not None:
            parser.parse_punctuation(":")
            state.operands[self.name] = (operand, parser.parse_type())
        elif self.integer and (number := parser.parse_optional_number()) is not None:
            # A zero point: an integer (a float one is kept for the verifier to reject);
            # `16384 : i16` gives the integer a type other than i32 (rescale multipliers).
            if isinstance(number, int) and parser.parse_optional_punctuation(":") is not None:
                type_start = parser.pos
                int_type = parser.parse_type()
                if not isinstance(int_type, IntegerType):
                    parser.raise_error(f"expected an integer type, got {int_type}", type_start)
                half = 1 << (int_type.width.data - 1)
                if not -half <= number < half:
                    parser.raise_error(f"integer {number} does not fit signed {int_type}", start)
                state.properties[self.const_name] = IntegerAttr(number, int_type)
            else:
                state.properties[self.const_name] = (
                    _integer_attr(parser, number, 32, start)
                    if isinstance(number, int)
                    else _float_attr(parser, number, start)
                )
        elif (number := parse_optional_f32(parser)) is not None:
            state.properties[self.const_name] = number
        else:
            state.properties[self.const_name] = parser.parse_attribute()
        parser.parse_punctuation(")")


@dataclass
class GranularityClause(Clause):
    """The granularity, spelled by its own keyword (``per_axis(1)``); default per-tensor."""

    name: str = "granularity"
    keyword: str = ""

    def print(self, op: IRDLOperation, printer: Printer) -> None:
        granularity = op.properties.get(self.name)
        if isinstance(granularity, GranularityAttr) and not isinstance(granularity, PerTensorAttr):
            printer.print_string(" ")
            granularity.print_inline(printer)

    def parse(self, parser: Parser, state: ParseState) -> None:
        raise AssertionError("granularity clauses are parsed by their own keywords")


@dataclass
class StringClause(Clause):
    """An enumerated string property: ``rounding(nearest_away)``."""

    keyword: str
    name: str
    default: str

    def print(self, op: IRDLOperation, printer: Printer) -> None:
        value = op.properties.get(self.name)
        if isinstance(value, StringAttr) and value.data != self.default:
            printer.print_string(f" {self.keyword}({value.data})")

    def parse(self, parser: Parser, state: ParseState) -> None:
        parser.parse_punctuation("(")
        state.properties[self.name] = StringAttr(parser.parse_identifier())
        parser.parse_punctuation(")")


@dataclass
class BoolClause(Clause):
    """A boolean property printed only when it differs from its default."""

    keyword: str
    name: str
    default: bool

    def print(self, op: IRDLOperation, printer: Printer) -> None:
        value = op.properties.get(self.name)
        if isinstance(value, IntegerAttr) and bool(value.value.data) != self.default:
            printer.print_string(f" {self.keyword}({'true' if value.value.data else 'false'})")

    def parse(self, parser: Parser, state: ParseState) -> None:
        parser.parse_punctuation("(")
        state.properties[self.name] = BoolAttr.from_bool(parser.parse_boolean())
        parser.parse_punctuation(")")


@dataclass
class RangeClause(Clause):
    """A narrow storage range: ``range(-127, 127)`` sets ``storage_min``/``storage_max``."""

    keyword: str = "range"

    def print(self, op: IRDLOperation, printer: Printer) -> None:
        lo, hi = op.properties.get("storage_min"), op.properties.get("storage_max")
        if isinstance(lo, IntegerAttr) and isinstance(hi, IntegerAttr):
            printer.print_string(f" range({lo.value.data}, {hi.value.data})")

    def parse(self, parser: Parser, state: ParseState) -> None:
        parser.parse_punctuation("(")
        lo_start = parser.pos
        lo = parser.parse_integer()
        parser.parse_punctuation(",")
        hi_start = parser.pos
        hi = parser.parse_integer()
        parser.parse_punctuation(")")
        state.properties["storage_min"] = _integer_attr(parser, lo, 64, lo_start)
        state.properties["storage_max"] = _integer_attr(parser, hi, 64, hi_start)


@dataclass
class TypeClause(Clause):
    """A type-valued property: ``storage(i8)``, ``scale_type(f16)``."""

    keyword: str
    name: str

    def print(self, op: IRDLOperation, printer: Printer) -> None:
        value = op.properties.get(self.name)
        if value is not None:
            printer.print_string(f" {self.keyword}(")
            printer.print_attribute(value)
            printer.print_string(")")

    def parse(self, parser: Parser, state: ParseState) -> None:
        parser.parse_punctuation("(")
        state.properties[self.name] = parser.parse_type()
        parser.parse_punctuation(")")


@dataclass
class FloatClause(Clause):
    """An f32 property: ``eps(1.000000e-05)``."""

    keyword: str
    name: str

    def print(self, op: IRDLOperation, printer: Printer) -> None:
        value = op.properties.get(self.name)
        if isinstance(value, FloatAttr):
            printer.print_string(f" {self.keyword}(")
            printer.print_float(value.value.data, f32)
            printer.print_string(")")

    def parse(self, parser: Parser, state: ParseState) -> None:
        parser.parse_punctuation("(")
        start = parser.pos
        value = parse_optional_f32(parser)
        if value is None:
            parser.raise_error(f"expected an f32 number in {self.keyword}(...)", start)
        state.properties[self.name] = value
        parser.parse_punctuation(")")


@dataclass
class GroupClause(Clause):
    """``in(...)`` / ``out(...)``: inner clauses whose names carry a prefix."""

    keyword: str
    prefix: str
    clauses: tuple[Clause, ...]

    def print(self, op: IRDLOperation, printer: Printer) -> None:
        # The inner clauses each print a leading space; capture them to drop the first.
        outer, inner = printer.stream, StringIO()
        printer.stream = inner
        try:
            for clause in self.clauses:
                clause.print(op, printer)
        finally:
            printer.stream = outer
        printer.print_string(f" {self.keyword}({inner.getvalue().lstrip()})")

    def parse(self, parser: Parser, state: ParseState) -> None:
        parser.parse_punctuation("(")
        _parse_clauses(parser, self.clauses, state, granularity_name=f"{self.prefix}granularity")
        parser.parse_punctuation(")")


def prefixed(prefix: str, clauses: Sequence[Clause]) -> tuple[Clause, ...]:
    """The parameter and granularity clauses of a group, renamed with ``prefix``."""
    renamed: list[Clause] = []
    for clause in clauses:
        match clause:
            case ParamClause():
                renamed.append(ParamClause(clause.keyword, prefix + clause.name, clause.integer))
            case GranularityClause():
                renamed.append(GranularityClause(prefix + clause.name))
            case _:
                renamed.append(clause)
    return tuple(renamed)


def _parse_clauses(
    parser: Parser, clauses: Sequence[Clause], state: ParseState, granularity_name: str | None
) -> None:
    by_keyword = {c.keyword: c for c in clauses if c.keyword}
    while True:
        if granularity_name is not None:
            granularity = GranularityAttr.parse_inline(parser)
            if granularity is not None:
                state.properties[granularity_name] = granularity
                continue
        keyword = parser.parse_optional_keyword_in(by_keyword)
        if keyword is None:
            return
        by_keyword[keyword].parse(parser, state)


ParamArg = SSAValue | Operation | float | Attribute | None
"""A parameter given to an op constructor: an SSA value, a number or a constant attribute."""


@dataclass
class ClauseFields:
    """Operands and properties for a quant op constructor, set as the clause parser sets them.

    Each method mirrors one clause's ``parse``: a value of None leaves the property out,
    as an absent clause does. Call them in the op's clause order so that the properties
    appear in the order a parse of the printed op gives (the generic form shows it).
    """

    operands: dict[str, SSAValue] = field(default_factory=dict)
    properties: dict[str, Attribute] = field(default_factory=dict)

    def param(self, name: str, value: ParamArg, *, integer: bool = False) -> None:
        """Operand ``name`` or constant ``name_const`` (as :class:`ParamClause`)."""
        match value:
            case None:
                return
            case SSAValue() | Operation():
                self.operands[name] = SSAValue.get(value)
            case Attribute():
                self.properties[f"{name}_const"] = value
            case bool():
                raise TypeError(f"{name} must be a value, a number or an attribute, got {value}")
            case numbers.Integral() if integer:  # int and numpy integers
                self.properties[f"{name}_const"] = IntegerAttr(int(value), 32)
            case numbers.Real():
                self.properties[f"{name}_const"] = f32_attr(float(value))
            case _:
                raise TypeError(f"{name} must be a value, a number or an attribute, got {value!r}")

    def granularity(self, name: str, value: GranularityAttr | None) -> None:
        if value is not None:
            self.properties[name] = value

    def string(self, name: str, value: str | None) -> None:
        if value is not None:
            self.properties[name] = StringAttr(value)

    def boolean(self, name: str, value: bool | None) -> None:
        if value is not None:
            self.properties[name] = BoolAttr.from_bool(value)

    def f32(self, name: str, value: float | None) -> None:
        if value is not None:
            self.properties[name] = f32_attr(value)

    def type(self, name: str, value: Attribute | None) -> None:
        if value is not None:
            self.properties[name] = value

    def range(self, value: tuple[int, int] | None, prefix: str = "") -> None:
        """``range(lo, hi)``: i64 ``storage_min`` / ``storage_max``."""
        if value is not None:
            lo, hi = value
            self.properties[f"{prefix}storage_min"] = IntegerAttr(lo, 64)
            self.properties[f"{prefix}storage_max"] = IntegerAttr(hi, 64)


class ClauseOp(IRDLOperation):
    """Base of the quant ops that use the clause syntax of this module."""

    CLAUSES: ClassVar[tuple[Clause, ...]] = ()
    OPERAND_ORDER: ClassVar[tuple[str, ...]] = ()
    """Names of the optional parameter operands, in definition order after ``input``."""
    RESULT_COUNTS: ClassVar[tuple[int, ...]] = (1,)
    """How many result types the custom form may list."""

    @classmethod
    def parse(cls, parser: Parser) -> ClauseOp:
        input_operand = parser.parse_unresolved_operand()
        state = ParseState()
        has_granularity = any(isinstance(c, GranularityClause) for c in cls.CLAUSES)
        _parse_clauses(parser, cls.CLAUSES, state, "granularity" if has_granularity else None)
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        input_type = parser.parse_type()
        parser.parse_punctuation("->")
        types_start = parser.pos
        result_types = [parser.parse_type()]
        while parser.parse_optional_punctuation(",") is not None:
            result_types.append(parser.parse_type())
        if len(result_types) not in cls.RESULT_COUNTS:
            counts = " or ".join(map(str, cls.RESULT_COUNTS))
            noun = "type" if cls.RESULT_COUNTS == (1,) else "types"
            parser.raise_error(
                f"{cls.name} takes {counts} result {noun}, got {len(result_types)}", types_start
            )
        operands: list[SSAValue | list[SSAValue]] = [
            parser.resolve_operand(input_operand, input_type)
        ]
        for name in cls.OPERAND_ORDER:
            if name in state.operands:
                unresolved, operand_type = state.operands[name]
                operands.append([parser.resolve_operand(unresolved, operand_type)])
            else:
                operands.append([])
        op = cls.build(
            operands=operands,
            result_types=cls.shape_result_types(result_types),
            properties=state.properties,
            attributes=attributes,
        )
        return op

    def init_fields(
        self,
        input: SSAValue | Operation,
        result_types: Sequence[Attribute | Sequence[Attribute]],
        fields: ClauseFields,
        attributes: Mapping[str, Attribute] | None = None,
    ) -> None:
        """The constructors' common end: operands in :attr:`OPERAND_ORDER`, as ``parse``."""
        operands: list[SSAValue | Operation | list[SSAValue]] = [input]
        for name in self.OPERAND_ORDER:
            operand = fields.operands.get(name)
            operands.append([] if operand is None else [operand])
        IRDLOperation.__init__(
            self,
            operands=operands,
            result_types=result_types,
            properties=fields.properties,
            attributes=attributes,
        )

    @classmethod
    def shape_result_types(cls, types: list[Attribute]) -> list[Attribute | list[Attribute]]:
        """Distribute parsed result types over the result definitions (override for optional)."""
        return list(types)

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.operands[0])
        for clause in self.CLAUSES:
            clause.print(self, printer)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.operands[0].type)
        printer.print_string(" -> ")
        printer.print_list(self.result_types, printer.print_attribute)
