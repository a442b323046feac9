"""Granularity attributes: which scale / zero point applies to which data element.

docs/semantics.md section 2 has one general form: a block shape ``B`` over the data, the parameter of
data index ``i`` sitting at ``i_k floordiv B_k``. The IR carries the named forms, which read
well, and every consumer goes through :meth:`GranularityAttr.block_shape`:

    #quant.per_tensor            block = the whole tensor, parameters are scalars (0-d)
    #quant.per_axis<1>           block = 1 on axis 1, whole extent elsewhere; 1-D parameters
    #quant.per_block<1, 32>      block = 32 on axis 1, 1 elsewhere; parameters of data rank
    #quant.block<[128, 128]>     any N-D block, -1 = whole extent; parameters of data rank
    #quant.per_token             block = [1, ..., 1, -1]; parameters of data rank

In the custom form of the quant ops the ``#quant.`` prefix is dropped: ``per_axis(1)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import ArrayAttr, IntAttr
from xdsl.ir import Attribute, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class GranularityAttr(ParametrizedAttribute, ABC):
    """Base of the granularity attributes; see the module docstring."""

    KEYWORD: ClassVar[str] = ""

    @abstractmethod
    def raw_block_shape(self, rank: int) -> tuple[int, ...]:
        """Block extents, ``-1`` meaning the whole extent of that dimension."""

    def verify_for(self, shape: Sequence[int]) -> None:
        """Raise ``VerifyException`` when this granularity cannot apply to ``shape``."""

    def block_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """Block extents resolved against the data shape (``-1`` -> the extent)."""
        raw = self.raw_block_shape(len(shape))
        return tuple(max(n, 1) if b == -1 else b for b, n in zip(raw, shape))

    def param_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """Shape of the scale / zero-point tensor for data of ``shape`` (docs/semantics.md
        section 2); a dynamic (negative) data extent gives a dynamic parameter extent."""
        blocks = self.block_shape(shape)
        return tuple(n if n < 0 else _ceil_div(n, b) for n, b in zip(shape, blocks))

    def print_inline(self, printer: Printer) -> None:
        """The custom-form spelling, e.g. ``per_axis(1)``."""
        printer.print_string(self.KEYWORD)

    @classmethod
    def parse_inline(cls, parser: Parser | AttrParser) -> GranularityAttr | None:
        """Parse one of the custom-form spellings, or return None if none is next."""
        keyword = parser.parse_optional_keyword_in(GRANULARITY_KEYWORDS)
        if keyword is None:
            return None
        return GRANULARITY_KEYWORDS[keyword].parse_arguments(parser)

    @classmethod
    @abstractmethod
    def parse_arguments(cls, parser: Parser | AttrParser) -> GranularityAttr: ...

    def print_parameters(self, printer: Printer) -> None:
        return

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        return []


def _check_axis(axis: int, rank: int) -> None:
    if not 0 <= axis < rank:
        raise VerifyException(f"axis {axis} is out of range for data of rank {rank}")


@irdl_attr_definition
class PerTensorAttr(GranularityAttr):
    """One scale / zero point for the whole tensor."""

    name = "quant.per_tensor"
    KEYWORD: ClassVar[str] = "per_tensor"

    def raw_block_shape(self, rank: int) -> tuple[int, ...]:
        return (-1,) * rank

    def param_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        return ()

    @classmethod
    def parse_arguments(cls, parser: Parser | AttrParser) -> GranularityAttr:
        return PerTensorAttr()


@irdl_attr_definition
class PerAxisAttr(GranularityAttr):
    """One parameter per index of ``axis`` (per channel); 1-D parameter tensors."""

    name = "quant.per_axis"
    KEYWORD: ClassVar[str] = "per_axis"
    axis_attr: IntAttr

    def __init__(self, axis: int | IntAttr):
        super().__init__(IntAttr(axis) if isinstance(axis, int) else axis)

    @property
    def axis(self) -> int:
        return self.axis_attr.data

    def raw_block_shape(self, rank: int) -> tuple[int, ...]:
        return tuple(1 if k == self.axis else -1 for k in range(rank))

    def verify_for(self, shape: Sequence[int]) -> None:
        _check_axis(self.axis, len(shape))

    def param_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        return (shape[self.axis],)

    def print_inline(self, printer: Printer) -> None:
        printer.print_string(f"per_axis({self.axis})")

    @classmethod
    def parse_arguments(cls, parser: Parser | AttrParser) -> GranularityAttr:
        parser.parse_punctuation("(")
        axis = parser.parse_integer()
        parser.parse_punctuation(")")
        return PerAxisAttr(axis)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.axis}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            return [IntAttr(parser.parse_integer())]


@irdl_attr_definition
class PerBlockAttr(GranularityAttr):
    """Blocks of ``block_size`` consecutive elements along ``axis`` (per group)."""

    name = "quant.per_block"
    KEYWORD: ClassVar[str] = "per_block"
    axis_attr: IntAttr
    size_attr: IntAttr

    def __init__(self, axis: int | IntAttr, block_size: int | IntAttr):
        super().__init__(
            IntAttr(axis) if isinstance(axis, int) else axis,
            IntAttr(block_size) if isinstance(block_size, int) else block_size,
        )

    @property
    def axis(self) -> int:
        return self.axis_attr.data

    @property
    def block_size(self) -> int:
        return self.size_attr.data

    def raw_block_shape(self, rank: int) -> tuple[int, ...]:
        return tuple(self.block_size if k == self.axis else 1 for k in range(rank))

    def verify_for(self, shape: Sequence[int]) -> None:
        _check_axis(self.axis, len(shape))
        if self.block_size < 1:
            raise VerifyException(f"block size must be >= 1, got {self.block_size}")

    def print_inline(self, printer: Printer) -> None:
        printer.print_string(f"per_block({self.axis}, {self.block_size})")

    @classmethod
    def parse_arguments(cls, parser: Parser | AttrParser) -> GranularityAttr:
        parser.parse_punctuation("(")
        axis = parser.parse_integer()
        parser.parse_punctuation(",")
        size = parser.parse_integer()
        parser.parse_punctuation(")")
        return PerBlockAttr(axis, size)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.axis}, {self.block_size}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            axis = parser.parse_integer()
            parser.parse_punctuation(",")
            size = parser.parse_integer()
        return [IntAttr(axis), IntAttr(size)]


@irdl_attr_definition
class BlockAttr(GranularityAttr):
    """Any N-D block (TensorRT ``block_shape``); ``-1`` is the whole extent."""

    name = "quant.block"
    KEYWORD: ClassVar[str] = "block"
    shape_attr: ArrayAttr[IntAttr]

    def __init__(self, shape: Sequence[int] | ArrayAttr[IntAttr]):
        if not isinstance(shape, ArrayAttr):
            shape = ArrayAttr(IntAttr(b) for b in shape)
        super().__init__(shape)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(b.data for b in self.shape_attr.data)

    def raw_block_shape(self, rank: int) -> tuple[int, ...]:
        return self.shape

    def verify_for(self, shape: Sequence[int]) -> None:
        if len(self.shape) != len(shape):
            raise VerifyException(
                f"block shape {list(self.shape)} has rank {len(self.shape)}, "
                f"but the data has rank {len(shape)}"
            )
        for b in self.shape:
            if b < 1 and b != -1:
                raise VerifyException(f"block size must be >= 1 or -1, got {b}")

    def _spelling(self) -> str:
        return "[" + ", ".join(str(b) for b in self.shape) + "]"

    def print_inline(self, printer: Printer) -> None:
        printer.print_string(f"block({self._spelling()})")

    @classmethod
    def _parse_shape(cls, parser: Parser | AttrParser) -> list[int]:
        return parser.parse_comma_separated_list(parser.Delimiter.SQUARE, parser.parse_integer)

    @classmethod
    def parse_arguments(cls, parser: Parser | AttrParser) -> GranularityAttr:
        parser.parse_punctuation("(")
        shape = cls._parse_shape(parser)
        parser.parse_punctuation(")")
        return BlockAttr(shape)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self._spelling()}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            shape = cls._parse_shape(parser)
        return [ArrayAttr(IntAttr(b) for b in shape)]


@irdl_attr_definition
class PerTokenAttr(GranularityAttr):
    """One parameter per row of the last axis: ``block([1, ..., 1, -1])``."""

    name = "quant.per_token"
    KEYWORD: ClassVar[str] = "per_token"

    def raw_block_shape(self, rank: int) -> tuple[int, ...]:
        return (1,) * (rank - 1) + (-1,) if rank else ()

    @classmethod
    def parse_arguments(cls, parser: Parser | AttrParser) -> GranularityAttr:
        return PerTokenAttr()


GRANULARITY_KEYWORDS: dict[str, type[GranularityAttr]] = {
    cls.KEYWORD: cls for cls in (PerTensorAttr, PerAxisAttr, PerBlockAttr, BlockAttr, PerTokenAttr)
}

GRANULARITY_ATTRS = tuple(GRANULARITY_KEYWORDS.values())
