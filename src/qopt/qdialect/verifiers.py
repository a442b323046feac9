"""Verification rules shared by the quant ops.

Each function checks one rule and raises ``VerifyException`` with a sentence that states
the rule and the offending value, e.g. ``zero point 300 is outside the storage range
[-128, 127] of i8``. filecheck/qdialect/invalid.mlir has one case per message.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    Signedness,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute, SSAValue
from xdsl.utils.exceptions import VerifyException

from qopt.qdialect import formats
from qopt.qdialect.attrs import GranularityAttr

ROUNDING_MODES = ("nearest_even", "nearest_away", "half_up", "toward_zero")
ZERO_POINT_ORDERS = ("after_rounding", "before_rounding")
"""Where integer quantize adds the zero point, the default first: ``after_rounding`` is
``round(x / s) + zp`` (ONNX), ``before_rounding`` is ``round(f32(x / s) + zp)`` (upstream
MLIR ``quant.qcast``, StableHLO ``uniform_quantize``); docs/semantics.md section 3."""


def shape_of(t: Attribute) -> tuple[int, ...]:
    if not isinstance(t, TensorType):
        raise VerifyException(f"expected a ranked tensor type, got {t}")
    return tuple(t.get_shape())


def element_type(t: Attribute) -> Attribute:
    if not isinstance(t, TensorType):
        raise VerifyException(f"expected a ranked tensor type, got {t}")
    return t.element_type


def check_storage(t: Attribute, role: str = "storage") -> None:
    if formats.type_name(t) == "f8E8M0FNU":
        raise VerifyException(f"f8E8M0FNU is only allowed as a scale format, not as {role} type")
    if not formats.is_storage(t):
        raise VerifyException(
            f"{role} type must be an integer i2/i4/i8/i16 (signless or unsigned) or one of "
            f"f8E4M3FN, f8E5M2, f4E2M1FN, got {t}"
        )


def check_expressed(t: Attribute, role: str = "expressed") -> None:
    if formats.type_name(t) == "f8E8M0FNU":
        raise VerifyException(f"f8E8M0FNU is only allowed as a scale format, not as {role} type")
    if not formats.is_expressed(t):
        raise VerifyException(f"{role} type must be f32, f16 or bf16, got {t}")


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join("?" if n < 0 else str(n) for n in shape) + "]"


def compatible(a: Sequence[int], b: Sequence[int]) -> bool:
    """Same rank, and equal extents wherever both are static: a dynamic (``?``) extent
    is checked when the kernel is called (docs/semantics.md section 2.1)."""
    return len(a) == len(b) and all(m == n or m < 0 or n < 0 for m, n in zip(a, b))


def check_same_shape(input_type: Attribute, result_type: Attribute) -> None:
    if not compatible(shape_of(input_type), shape_of(result_type)):
        raise VerifyException(
            f"result shape {_shape_text(shape_of(result_type))} does not match the input "
            f"shape {_shape_text(shape_of(input_type))}"
        )


def check_storage_range(storage: Attribute, lo: Attribute | None, hi: Attribute | None) -> None:
    if lo is None and hi is None:
        return
    if not isinstance(storage, IntegerType):
        raise VerifyException(f"a storage range applies to integer storage only, not to {storage}")
    assert isinstance(lo, IntegerAttr) and isinstance(hi, IntegerAttr)
    tmin, tmax = formats.integer_range(storage)
    qmin, qmax = lo.value.data, hi.value.data
    if not tmin <= qmin <= qmax <= tmax:
        raise VerifyException(
            f"storage range [{qmin}, {qmax}] must be a non-empty part of the range "
            f"[{tmin}, {tmax}] of {formats.type_name(storage)}"
        )


def storage_bounds(
    storage: Attribute, lo: Attribute | None = None, hi: Attribute | None = None
) -> tuple[int, int]:
    """``(qmin, qmax)``: the narrow range when given, else the type's range."""
    if isinstance(lo, IntegerAttr) and isinstance(hi, IntegerAttr):
        return lo.value.data, hi.value.data
    assert isinstance(storage, IntegerType)
    return formats.integer_range(storage)


def check_rounding(mode: str, storage: Attribute) -> None:
    if mode not in ROUNDING_MODES:
        raise VerifyException(
            f"rounding mode must be one of {', '.join(ROUNDING_MODES)}, got '{mode}'"
        )
    if mode != "nearest_even" and not isinstance(storage, IntegerType):
        raise VerifyException(
            f"rounding mode '{mode}' applies to integer storage only; "
            f"{formats.type_name(storage)} always rounds to nearest even"
        )


def check_zero_point_order(order: str, storage: Attribute, minval: object = None) -> None:
    if order not in ZERO_POINT_ORDERS:
        raise VerifyException(
            f"zero_point_order must be one of {', '.join(ZERO_POINT_ORDERS)}, got '{order}'"
        )
    if order == ZERO_POINT_ORDERS[0]:
        return
    if not isinstance(storage, IntegerType):
        raise VerifyException(
            f"zero_point_order({order}) applies to integer storage only, not to "
            f"{formats.type_name(storage)}"
        )
    if minval is not None:
        raise VerifyException(f"zero_point_order({order}) does not apply to the minval form")


def zero_point_bounds(op, storage: Attribute) -> tuple[int, int] | None:
    """The range a zero point of an op's output side must lie in: the narrow storage range,
    or with ``before_rounding`` the storage type's (the zero point is added before the
    clamp there, so one outside a narrow range still means something, as upstream allows)."""
    if not isinstance(storage, IntegerType):
        return None
    if op.zp_order == ZERO_POINT_ORDERS[1]:
        return formats.integer_range(storage)
    return op.storage_bounds(storage)


def check_granularity(granularity: GranularityAttr, data_shape: Sequence[int]) -> None:
    granularity.verify_for(data_shape)


def _param_shape(
    name: str, operand: SSAValue | None, const: Attribute | None
) -> tuple[int, ...] | None:
    if operand is not None and const is not None:
        raise VerifyException(f"{name} is given both as an operand and as a constant")
    if operand is not None:
        return shape_of(operand.type)
    if isinstance(const, DenseIntOrFPElementsAttr):
        return tuple(const.get_shape() or ())
    if const is not None:
        return ()
    return None


def check_param_shape(
    name: str,
    operand: SSAValue | None,
    const: Attribute | None,
    granularity: GranularityAttr,
    data_shape: Sequence[int],
) -> None:
    """The parameter tensor has the shape of docs/semantics.md section 2 for this granularity."""
    shape = _param_shape(name, operand, const)
    if shape is None:
        return
    expected = granularity.param_shape(data_shape)
    if not compatible(shape, expected):
        raise VerifyException(
            f"{name} shape {_shape_text(shape)} does not match the granularity "
            f"{granularity.KEYWORD}: expected {_shape_text(expected)} for data of shape "
            f"{_shape_text(data_shape)}"
        )


def const_values(const: Attribute) -> list[float]:
    if isinstance(const, FloatAttr | IntegerAttr):
        return [const.value.data]
    if isinstance(const, DenseIntOrFPElementsAttr):
        return [float(v) for v in const.get_values()]
    raise VerifyException(f"expected a number or a dense tensor constant, got {const}")


def check_scale(name: str, operand: SSAValue | None, const: Attribute | None) -> None:
    """A scale is a tensor of a scale format; a constant scale is finite and > 0."""
    if operand is None and const is None:
        raise VerifyException(f"{name} is required")
    if operand is not None:
        scale_type = element_type(operand.type)
        if not formats.is_scale(scale_type):
            raise VerifyException(
                f"{name} element type must be one of f32, f16, bf16, f8E4M3FN, f8E8M0FNU, "
                f"got {scale_type}"
            )
        return
    assert const is not None
    for value in const_values(const):
        if not (math.isfinite(value) and value > 0):
            raise VerifyException(f"constant {name} must be finite and > 0, got {value}")


def check_eps(eps: float | None) -> None:
    """The optional lower bound of computed scales is a finite number > 0."""
    if eps is not None and not (math.isfinite(eps) and eps > 0):
        raise VerifyException(f"eps must be finite and > 0, got {eps}")


def check_zero_point(
    name: str,
    operand: SSAValue | None,
    const: Attribute | None,
    storage: Attribute,
    bounds: tuple[int, int] | None,
) -> None:
    """Zero points are integers of the storage type, inside its range; none for floats."""
    if operand is None and const is None:
        return
    if not isinstance(storage, IntegerType):
        raise VerifyException(
            f"{name} given for float storage format {formats.type_name(storage)}: "
            f"float storage takes no zero point"
        )
    if operand is not None:
        zp_type = element_type(operand.type)
        if zp_type != storage:
            raise VerifyException(
                f"{name} element type {zp_type} does not match the storage type {storage}"
            )
        return
    assert const is not None and bounds is not None
    for value in const_values(const):
        if not math.isfinite(value) or value != int(value):
            raise VerifyException(f"{name} must be an integer, got {value:g}")
        if not bounds[0] <= value <= bounds[1]:
            raise VerifyException(
                f"{name} {value:g} is outside the storage range [{bounds[0]}, {bounds[1]}] "
                f"of {formats.type_name(storage)}"
            )


SCALE_ROUNDING_MODES = ("floor", "rceil")
"""The values of dynamic_quantize's ``scale_rounding(...)``, the default first."""


def check_dynamic_scale(
    scale_type: Attribute,
    storage: Attribute,
    scale_rounding: StringAttr | None,
    has_double_quant: bool,
) -> None:
    """The scale format of dynamic_quantize and the options that depend on it."""
    scale_name = formats.type_name(scale_type)
    if not formats.is_scale(scale_type):
        raise VerifyException(
            "scale element type must be one of f32, f16, bf16, f8E4M3FN, f8E8M0FNU, "
            f"got {scale_type}"
        )
    if scale_name in ("f8E4M3FN", "f8E8M0FNU") and not formats.is_float_storage(storage):
        raise VerifyException(f"scale format {scale_name} needs float data storage, got {storage}")
    rounding = SCALE_ROUNDING_MODES[0] if scale_rounding is None else scale_rounding.data
    if rounding not in SCALE_ROUNDING_MODES:
        raise VerifyException(f"scale_rounding must be floor or rceil, got '{rounding}'")
    if scale_rounding is not None and scale_name != "f8E8M0FNU":
        raise VerifyException(
            f"scale_rounding applies to f8E8M0FNU scales only, the scale is {scale_name}"
        )
    if has_double_quant and scale_name != "f8E4M3FN":
        raise VerifyException(
            f"a double quant scale needs f8E4M3FN block scales, the scale is {scale_name}"
        )


def check_packed_pair(codes_type: Attribute, bytes_type: Attribute) -> None:
    """pack / unpack: 4-bit or 2-bit codes and the ui8 bytes that hold them (docs/semantics.md section 1)."""
    element = element_type(codes_type)
    check_storage(element, "packed element")
    width = formats.bit_width(element)
    if width not in (2, 4):
        raise VerifyException(
            f"packing needs a 4-bit or 2-bit element type, got {element} ({width} bits)"
        )
    packed = element_type(bytes_type)
    if packed != IntegerType(8, Signedness.UNSIGNED):
        raise VerifyException(f"packed bytes must be ui8, got {packed}")
    if any(n < 0 for n in (*shape_of(codes_type), *shape_of(bytes_type))):
        return  # the byte count is checked when the kernel is called
    count = math.prod(shape_of(codes_type))
    expected = -(-count // (8 // width))
    have = math.prod(shape_of(bytes_type))
    if have != expected:
        raise VerifyException(
            f"{count} {formats.type_name(element)} codes pack into {expected} bytes, "
            f"but the packed tensor has {have}"
        )
