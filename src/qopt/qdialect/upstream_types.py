"""Upstream MLIR's quant types in qopt's ``quant`` dialect: ``!quant.uniform``,
``!quant.any`` and ``!quant.calibrated``, with upstream's grammar and invariants.

    !quant.uniform<i8:f32, 0.1:3>                       per layer (zero point optional)
    !quant.uniform<u8<1:255>:f32:1, {0.1:3, 0.2}>       per axis, with a storage range
    !quant.uniform<i8:f32:{0:1, 1:4}, {{0.1, 0.2}}>     sub-channel (axis:block, ...)
    !quant.any<i8<-8:7>:f32>    !quant.calibrated<f32<-1.0:1.0>>

Storage is ``iN`` / ``siN`` (signed), ``uiN`` or the keyword ``uN`` (unsigned), N in
1..32, or ``f8E4M3FN`` / ``f8E5M2`` / ``f4E2M1FN``; scales are doubles (a hexadecimal
literal is the bit pattern), within the expressed type's range. Upstream's rules are in
``mlir/lib/Dialect/Quant/IR/TypeParser.cpp`` and ``QuantTypes.cpp``; the messages here
state the same rules in qopt's words. Which of these types qopt can *compute* is decided
by ``--convert-quant-types`` (passes/convert_quant_types.py), not here: the parser
accepts what upstream accepts, so that IR round-trips.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from xdsl.dialects.builtin import AnyFloat, IntegerType, Signedness
from xdsl.ir import Attribute, Data, TypeAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.lexer import Position

from qopt.qdialect import formats

MAX_STORAGE_BITS = 32
"""Upstream's ``QuantizedType::MaxStorageBits``."""

FLOAT_STORAGE_MAX = {"f8E4M3FN": 448, "f8E5M2": 57344, "f4E2M1FN": 6}
"""The float storage types upstream's quant types take, and their default ranges."""

_EXPRESSED_LIMITS = {
    "f16": (2.0**-24, 65504.0),
    "bf16": (2.0**-133, 3.3895313892515355e38),
    "f32": (2.0**-149, 3.4028234663852886e38),
}
"""(smallest subnormal, largest finite) of an expressed type; others: f64's."""


@dataclass(frozen=True)
class Storage:
    """A storage type as upstream spells it: ``i8``, ``si8``, ``ui8``, ``u8``, ``f8E5M2``."""

    spelling: str
    signed: bool
    width: int
    is_float: bool = False

    @property
    def default_range(self) -> tuple[int, int]:
        if self.is_float:
            m = FLOAT_STORAGE_MAX[self.spelling]
            return -m, m
        if self.signed:
            return -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
        return 0, (1 << self.width) - 1

    @property
    def qopt_name(self) -> str:
        """qopt's spelling of this storage (signed integers are signless ``iN``)."""
        if self.is_float:
            return self.spelling
        return f"i{self.width}" if self.signed else f"ui{self.width}"


@dataclass(frozen=True)
class QuantSpec:
    """One upstream quantized type. ``kind``: ``uniform`` / ``any`` / ``calibrated``;
    uniform ``layout``: ``layer``, ``axis`` or ``sub_channel``."""

    kind: str
    storage: Storage | None = None
    storage_min: int = 0
    storage_max: int = 0
    expressed: Attribute | None = None
    layout: str = "layer"
    axes: tuple[int, ...] = ()
    block_sizes: tuple[int, ...] = ()
    shape: tuple[int, ...] = ()
    """The parameter tensor's shape: () per layer, (n,) per axis, sub-channel's nesting."""
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    calibrated: tuple[float, float] = (0.0, 0.0)

    @property
    def has_range(self) -> bool:
        assert self.storage is not None
        return (self.storage_min, self.storage_max) != self.storage.default_range


# --- parsing ----------------------------------------------------------------------------


def _parse_storage(parser: AttrParser) -> Storage:
    pos = parser.pos
    try:
        storage_type = parser.parse_optional_type()
    except Exception as error:  # e.g. i123123123120: xDSL's own width check
        parser.raise_error(f"invalid integer width: {error}", pos)
    if isinstance(storage_type, IntegerType):
        width = storage_type.width.data
        unsigned = storage_type.signedness.data == Signedness.UNSIGNED
        storage = Storage(str(storage_type), not unsigned, width)
    elif storage_type is not None and formats.type_name(storage_type) in FLOAT_STORAGE_MAX:
        name = formats.type_name(storage_type)
        storage = Storage(name, True, 4 if name == "f4E2M1FN" else 8, True)
    elif storage_type is not None:
        parser.raise_error(
            f"illegal storage type {storage_type}: quantized storage is iN, siN, uiN, uN, "
            f"f8E4M3FN, f8E5M2 or f4E2M1FN",
            pos,
        )
    else:
        word = parser.parse_optional_identifier()
        if word is None or not word.startswith("u") or not word[1:].isdigit():
            parser.raise_error(
                "illegal storage type prefix: quantized storage is iN, siN, uiN, uN, "
                "f8E4M3FN, f8E5M2 or f4E2M1FN",
                pos,
            )
        storage = Storage(word, False, int(word[1:]))
    if not 0 < storage.width <= MAX_STORAGE_BITS:
        parser.raise_error(
            f"illegal storage type size: {storage.width} (1 to {MAX_STORAGE_BITS} bits)", pos
        )
    return storage


def _parse_storage_range(parser: AttrParser, storage: Storage) -> tuple[int, int]:
    lo, hi = storage.default_range
    if parser.parse_optional_punctuation("<") is None:
        return lo, hi
    min_pos = parser.pos
    qmin = parser.parse_integer(allow_boolean=False)
    parser.parse_punctuation(":")
    max_pos = parser.pos
    qmax = parser.parse_integer(allow_boolean=False)
    parser.parse_punctuation(">")
    if qmin < lo:
        parser.raise_error(f"illegal storage type minimum: {qmin} is below {lo}", min_pos)
    if qmax > hi:
        parser.raise_error(f"illegal storage type maximum: {qmax} is above {hi}", max_pos)
    if qmax - qmin <= 0:
        parser.raise_error(
            f"illegal storage min and storage max: ({qmin}:{qmax}) must be an increasing range",
            min_pos,
        )
    return qmin, qmax


def _parse_float_type(parser: AttrParser, what: str) -> Attribute:
    pos = parser.pos
    t = parser.parse_optional_type()
    if not isinstance(t, AnyFloat):
        parser.raise_error(f"expected a float {what} type", pos)
    return t


def _parse_double(parser: AttrParser) -> float:
    """A float literal, or a hexadecimal integer literal holding a double's bits."""
    pos = parser.pos
    value = parser.parse_optional_float()
    if value is not None:
        return value
    text = parser._current_token.text  # to tell hex from decimal
    integer = parser.parse_optional_integer(allow_boolean=False, allow_negative=False)
    if integer is None:
        parser.raise_error("expected a floating point literal", pos)
    if not text.lower().startswith("0x"):
        parser.raise_error("unexpected decimal integer literal for a floating point value", pos)
    return struct.unpack("<d", struct.pack("<Q", integer & (2**64 - 1)))[0]


def _check_scale(parser: AttrParser, scale: float, expressed: Attribute, pos: Position) -> None:
    if math.isnan(scale):
        parser.raise_error("illegal scale: nan (a scale is finite and > 0)", pos)
    lo, hi = _EXPRESSED_LIMITS.get(formats.type_name(expressed), (5e-324, 1.7976931348623157e308))
    if scale < lo or scale > hi:
        parser.raise_error(
            f"scale {scale:e} out of expressed type range [{lo:e}, {hi:e}] of {expressed}", pos
        )


def _parse_scale_zero(parser: AttrParser, expressed: Attribute) -> tuple[float, int]:
    pos = parser.pos
    scale = _parse_double(parser)
    _check_scale(parser, scale, expressed, pos)
    if parser.parse_optional_punctuation(":") is None:
        return scale, 0
    return scale, parser.parse_integer(allow_boolean=False)


def _parse_param_list(
    parser: AttrParser, expressed: Attribute, scales: list[float], zero_points: list[int]
) -> tuple[int, ...]:
    """``a, b, {..}`` after a ``{``, through its ``}``; returns the nested shape."""
    inner: tuple[int, ...] | None = None
    count = 0
    while True:
        pos = parser.pos
        if parser.parse_optional_punctuation("{") is not None:
            shape = _parse_param_list(parser, expressed, scales, zero_points)
        else:
            scale, zp = _parse_scale_zero(parser, expressed)
            scales.append(scale)
            zero_points.append(zp)
            shape = ()
        if inner is not None and shape != inner:
            parser.raise_error(
                "tensor literal is invalid; ranks are not consistent between elements", pos
            )
        inner = shape
        count += 1
        if parser.parse_optional_punctuation(",") is None:
            break
    parser.parse_punctuation("}")
    return (count, *(inner or ()))


def _parse_block_info(parser: AttrParser) -> tuple[tuple[int, ...], tuple[int, ...]]:
    axes: list[int] = []
    blocks: list[int] = []
    if parser.parse_optional_punctuation("}") is not None:
        return (), ()
    while True:
        pos = parser.pos
        axis = parser.parse_integer(allow_boolean=False)
        if axis < 0:
            parser.raise_error(f"illegal quantized dimension: {axis} (must be >= 0)", pos)
        parser.parse_punctuation(":")
        pos = parser.pos
        block = parser.parse_integer(allow_boolean=False)
        if block <= 0:
            parser.raise_error(f"illegal block size: {block} (must be positive)", pos)
        axes.append(axis)
        blocks.append(block)
        if parser.parse_optional_punctuation(",") is None:
            break
    parser.parse_punctuation("}")
    return tuple(axes), tuple(blocks)


def wrap_zero_point(value: int, storage: Storage) -> int:
    """A sub-channel zero point as upstream stores it: an APInt of the storage width."""
    if storage.is_float:
        return value
    value &= (1 << storage.width) - 1
    return value - (1 << storage.width) if value >> (storage.width - 1) else value


def parse_uniform(parser: AttrParser) -> QuantSpec:
    parser.parse_punctuation("<")
    storage = _parse_storage(parser)
    qmin, qmax = _parse_storage_range(parser, storage)
    parser.parse_punctuation(":")
    expressed = _parse_float_type(parser, "expressed")
    layout, axes, blocks = "layer", (), ()
    if parser.parse_optional_punctuation(":") is not None:
        if parser.parse_optional_punctuation("{") is not None:
            layout = "sub_channel"
            axes, blocks = _parse_block_info(parser)
        else:
            layout = "axis"
            pos = parser.pos
            axes = (parser.parse_integer(allow_boolean=False),)
            if axes[0] < 0:
                parser.raise_error(f"illegal quantized dimension: {axes[0]} (must be >= 0)", pos)
    parser.parse_punctuation(",")
    scales: list[float] = []
    zero_points: list[int] = []
    if layout == "layer":
        scale, zp = _parse_scale_zero(parser, expressed)
        scales, zero_points, shape = [scale], [zp], ()
    else:
        parser.parse_punctuation("{")
        shape = _parse_param_list(parser, expressed, scales, zero_points)
    parser.parse_punctuation(">")
    if layout == "axis" and len(shape) != 1:
        parser.raise_error("per-axis quantization takes a flat list of scales")
    if layout == "sub_channel":
        zero_points = [wrap_zero_point(z, storage) for z in zero_points]
    return QuantSpec(
        "uniform",
        storage,
        qmin,
        qmax,
        expressed,
        layout,
        axes,
        blocks,
        shape,
        tuple(scales),
        tuple(zero_points),
    )


def parse_any(parser: AttrParser) -> QuantSpec:
    parser.parse_punctuation("<")
    storage = _parse_storage(parser)
    qmin, qmax = _parse_storage_range(parser, storage)
    expressed = None
    if parser.parse_optional_punctuation(":") is not None:
        expressed = _parse_float_type(parser, "expressed")
    parser.parse_punctuation(">")
    return QuantSpec("any", storage, qmin, qmax, expressed)


def parse_calibrated(parser: AttrParser) -> QuantSpec:
    parser.parse_punctuation("<")
    expressed = _parse_float_type(parser, "expressed")
    pos = parser.pos
    parser.parse_punctuation("<", " (calibrated values must be present)")
    lo = _parse_double(parser)
    parser.parse_punctuation(":")
    hi = _parse_double(parser)
    parser.parse_punctuation(">")
    parser.parse_punctuation(">")
    if hi <= lo:
        parser.raise_error(f"illegal min and max: ({lo:e}:{hi:e}), min must be below max", pos)
    return QuantSpec("calibrated", expressed=expressed, calibrated=(lo, hi))


# --- printing ---------------------------------------------------------------------------


def format_double(value: float) -> str:
    """A double as MLIR prints it: ``%e`` with 6 digits when that reads back exactly, else
    the shortest form with a ``.``, else the bit pattern in hexadecimal."""
    if math.isfinite(value):
        text = f"{value:.6e}"
        if float(text) == value:
            return text
        text = repr(value)
        if "." in text and value != int(value):
            return text
    return "0x" + format(struct.unpack("<Q", struct.pack("<d", value))[0], "016X")


def _scale_zero(scale: float, zp: int) -> str:
    return format_double(scale) + (f":{zp}" if zp else "")


def _storage_text(spec: QuantSpec) -> str:
    assert spec.storage is not None
    text = spec.storage.spelling
    if spec.has_range:
        text += f"<{spec.storage_min}:{spec.storage_max}>"
    return text


def _nested(spec: QuantSpec) -> str:
    items = [_scale_zero(s, z) for s, z in zip(spec.scales, spec.zero_points, strict=True)]

    def nest(flat: list[str], shape: tuple[int, ...]) -> str:
        if len(shape) <= 1:
            return "{" + ", ".join(flat) + "}"
        step = len(flat) // shape[0] if shape[0] else 0
        parts = [nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]
        return "{" + ", ".join(parts) + "}"

    return nest(items, spec.shape)


def spec_text(spec: QuantSpec) -> str:
    """The body of the type after ``!quant.``, as upstream prints it."""
    if spec.kind == "calibrated":
        lo, hi = spec.calibrated
        return f"calibrated<{spec.expressed}<{format_double(lo)}:{format_double(hi)}>>"
    if spec.kind == "any":
        expressed = f":{spec.expressed}" if spec.expressed is not None else ""
        return f"any<{_storage_text(spec)}{expressed}>"
    head = f"uniform<{_storage_text(spec)}:{spec.expressed}"
    if spec.layout == "layer":
        return f"{head}, {_scale_zero(spec.scales[0], spec.zero_points[0])}>"
    if spec.layout == "axis":
        params = ",".join(
            _scale_zero(s, z) for s, z in zip(spec.scales, spec.zero_points, strict=True)
        )
        return f"{head}:{spec.axes[0]}, {{{params}}}>"
    blocks = ", ".join(f"{a}:{b}" for a, b in zip(spec.axes, spec.block_sizes, strict=True))
    return f"{head}:{{{blocks}}}, {_nested(spec)}>"


class _QuantType(Data[QuantSpec], TypeAttribute):
    """Shared printing of the three upstream quant types."""

    def print_parameter(self, printer: Printer) -> None:
        body = spec_text(self.data)
        printer.print_string(body[body.index("<") :])

    @property
    def spec(self) -> QuantSpec:
        return self.data


@irdl_attr_definition
class UniformQuantType(_QuantType):
    """``!quant.uniform<...>``: per layer, per axis or sub-channel."""

    name = "quant.uniform"

    @classmethod
    def parse_parameter(cls, parser: AttrParser) -> QuantSpec:
        return parse_uniform(parser)


@irdl_attr_definition
class AnyQuantType(_QuantType):
    """``!quant.any<storage[:expressed]>``: a storage type, parameters not yet chosen."""

    name = "quant.any"

    @classmethod
    def parse_parameter(cls, parser: AttrParser) -> QuantSpec:
        return parse_any(parser)


@irdl_attr_definition
class CalibratedQuantType(_QuantType):
    """``!quant.calibrated<f32<min:max>>``: a calibrated range, no storage yet."""

    name = "quant.calibrated"

    @classmethod
    def parse_parameter(cls, parser: AttrParser) -> QuantSpec:
        return parse_calibrated(parser)


UPSTREAM_TYPES = (UniformQuantType, AnyQuantType, CalibratedQuantType)
QuantType = UniformQuantType | AnyQuantType | CalibratedQuantType


def expressed_of(t: Attribute) -> Attribute | None:
    return t.data.expressed if isinstance(t, _QuantType) else None
