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

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import StringIO
from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    BoolAttr,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    f32,
    i32,
)
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import IRDLOperation
from xdsl.parser import Parser, UnresolvedOperand
from xdsl.printer import Printer

from qdialect.attrs import GranularityAttr, PerTensorAttr


def f32_attr(number: float) -> FloatAttr:
    """An f32 FloatAttr of a parsed literal, rounded to f32 (overflow becomes inf)."""
    with np.errstate(over="ignore"):
        return FloatAttr(float(np.float32(number)), f32)


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
        elif isinstance(const, FloatAttr) and const.type == f32:
            printer.print_float(const.value.data, f32)
        elif isinstance(const, IntegerAttr) and const.type == i32:
            printer.print_string(str(const.value.data))
        else:
            printer.print_attribute(const)
        printer.print_string(")")

    def parse(self, parser: Parser, state: ParseState) -> None:
        parser.parse_punctuation("(")
        if (operand := parser.parse_optional_unresolved_operand()) is not None:
            parser.parse_punctuation(":")
            state.operands[self.name] = (operand, parser.parse_type())
        elif (number := parser.parse_optional_number()) is not None:
            state.properties[self.const_name] = (
                IntegerAttr(int(number), i32)
                if self.integer and isinstance(number, int)
                else f32_attr(number)
            )
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
        lo = parser.parse_integer()
        parser.parse_punctuation(",")
        hi = parser.parse_integer()
        parser.parse_punctuation(")")
        state.properties["storage_min"] = IntegerAttr(lo, 64)
        state.properties["storage_max"] = IntegerAttr(hi, 64)


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
        state.properties[self.name] = f32_attr(parser.parse_number())
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


class ClauseOp(IRDLOperation):
    """Base of the quant ops that use the clause syntax of this module."""

    CLAUSES: ClassVar[tuple[Clause, ...]] = ()
    OPERAND_ORDER: ClassVar[tuple[str, ...]] = ()
    """Names of the optional parameter operands, in definition order after ``input``."""

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
        result_types = [parser.parse_type()]
        while parser.parse_optional_punctuation(",") is not None:
            result_types.append(parser.parse_type())
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
