"""Element formats of docs/semantics.md section 1: what each storage / expressed / scale type is.

This module is the single table the dialect, the passes and the Python API consult to ask
"what range does i4 cover", "what is the largest finite e4m3 value", "may f8E8M0FNU be a
data type". Types are xDSL builtin types; MLIR spellings (``"f8E4M3FN"``) map to them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from xdsl.dialects import builtin
from xdsl.dialects.builtin import IntegerType, Signedness
from xdsl.ir import Attribute


@dataclass(frozen=True)
class FloatFormat:
    """A small float storage or scale format: its MLIR name and largest finite value."""

    name: str
    max_value: float
    has_nan: bool
    has_inf: bool
    emax: int
    """Exponent of the largest normal binade (OCP MX ``emax_elem``)."""


FLOAT_FORMATS: dict[str, FloatFormat] = {
    "f8E4M3FN": FloatFormat("f8E4M3FN", 448.0, True, False, 8),
    "f8E5M2": FloatFormat("f8E5M2", 57344.0, True, True, 15),
    "f4E2M1FN": FloatFormat("f4E2M1FN", 6.0, False, False, 2),
    "f8E8M0FNU": FloatFormat("f8E8M0FNU", 2.0**127, True, False, 127),
    "f16": FloatFormat("f16", 65504.0, True, True, 15),
    "bf16": FloatFormat("bf16", 3.3895313892515355e38, True, True, 127),
    "f32": FloatFormat("f32", 3.4028234663852886e38, True, True, 127),
}

FLOAT_STORAGE_NAMES = frozenset({"f8E4M3FN", "f8E5M2", "f4E2M1FN"})
"""Float formats that may hold quantized data."""

EXPRESSED_NAMES = frozenset({"f32", "f16", "bf16"})
"""Formats of real (expressed) values; arithmetic is always done in f32."""

SCALE_NAMES = frozenset({"f32", "f16", "bf16", "f8E4M3FN", "f8E8M0FNU"})
"""Formats a scale tensor may have."""

INTEGER_STORAGE_WIDTHS = frozenset({2, 4, 8, 16})

_FLOAT_TYPES: dict[str, Attribute] = {
    "f32": builtin.f32,
    "f16": builtin.f16,
    "bf16": builtin.bf16,
    "f8E4M3FN": builtin.f8E4M3FN,
    "f8E5M2": builtin.f8E5M2,
    "f4E2M1FN": builtin.f4E2M1FN,
    "f8E8M0FNU": builtin.f8E8M0FNU,
}


def type_name(t: Attribute) -> str:
    """The MLIR spelling of an element type (``i8``, ``ui4``, ``f8E4M3FN``)."""
    if isinstance(t, IntegerType):
        prefix = "ui" if t.signedness.data == Signedness.UNSIGNED else "i"
        return f"{prefix}{t.width.data}"
    for name, ft in _FLOAT_TYPES.items():
        if ft == t:
            return name
    return str(t)


def parse_type_name(name: str) -> Attribute:
    """The xDSL type of an MLIR element-type spelling; ``ValueError`` for unknown names."""
    if name in _FLOAT_TYPES:
        return _FLOAT_TYPES[name]
    for prefix, signedness in (("ui", Signedness.UNSIGNED), ("i", Signedness.SIGNLESS)):
        digits = name[len(prefix) :]
        if name.startswith(prefix) and digits.isdigit():
            return IntegerType(int(digits), signedness)
    raise ValueError(f"unknown element type '{name}'")


def is_integer_storage(t: Attribute) -> bool:
    """Integer storage: signless (= signed) or unsigned iN for N in 2, 4, 8, 16."""
    return (
        isinstance(t, IntegerType)
        and t.width.data in INTEGER_STORAGE_WIDTHS
        and t.signedness.data != Signedness.SIGNED
    )


def is_float_storage(t: Attribute) -> bool:
    return type_name(t) in FLOAT_STORAGE_NAMES


def is_storage(t: Attribute) -> bool:
    return is_integer_storage(t) or is_float_storage(t)


def is_expressed(t: Attribute) -> bool:
    return type_name(t) in EXPRESSED_NAMES


def is_scale(t: Attribute) -> bool:
    return type_name(t) in SCALE_NAMES


def integer_range(t: IntegerType) -> tuple[int, int]:
    """``(qmin, qmax)`` of an integer storage type (signless means signed)."""
    width = t.width.data
    if t.signedness.data == Signedness.UNSIGNED:
        return 0, (1 << width) - 1
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def float_format(t: Attribute) -> FloatFormat:
    return FLOAT_FORMATS[type_name(t)]


def bit_width(t: Attribute) -> int:
    """Bits of one element of a storage or expressed type."""
    if isinstance(t, IntegerType):
        return t.width.data
    name = type_name(t)
    return {"f32": 32, "f16": 16, "bf16": 16, "f4E2M1FN": 4}.get(name, 8)


@functools.cache
def _numpy_dtype_table() -> dict:
    import ml_dtypes
    import numpy as np

    table = {
        "f32": np.float32,
        "f16": np.float16,
        "bf16": ml_dtypes.bfloat16,
        "f64": np.float64,
        "i1": np.bool_,
        "i2": ml_dtypes.int2,
        "ui2": ml_dtypes.uint2,
        "i4": ml_dtypes.int4,
        "ui4": ml_dtypes.uint4,
        "i8": np.int8,
        "ui8": np.uint8,
        "i16": np.int16,
        "ui16": np.uint16,
        "i32": np.int32,
        "ui32": np.uint32,
        "i64": np.int64,
        "ui64": np.uint64,
        "index": np.int64,
        "f8E4M3FN": ml_dtypes.float8_e4m3fn,
        "f8E5M2": ml_dtypes.float8_e5m2,
        "f4E2M1FN": ml_dtypes.float4_e2m1fn,
        "f8E8M0FNU": ml_dtypes.float8_e8m0fnu,
    }
    return {name: np.dtype(dtype) for name, dtype in table.items()}


def numpy_dtype(t: Attribute | str):
    """The numpy / ml_dtypes dtype holding one element of a type (one byte per sub-byte code)."""
    name = t if isinstance(t, str) else type_name(t)
    table = _numpy_dtype_table()
    if name not in table:
        raise ValueError(f"no numpy dtype for element type '{name}'")
    return table[name]


@functools.cache
def _name_table() -> dict:
    names = (
        "f32", "f16", "bf16", "i2", "ui2", "i4", "ui4", "i8", "ui8", "i16", "ui16",
        "f8E4M3FN", "f8E5M2", "f4E2M1FN", "f8E8M0FNU", "i32", "ui32", "i64", "f64",
    )  # fmt: skip
    return {numpy_dtype(name): name for name in names}


def name_of_numpy_dtype(dtype) -> str:
    """The MLIR spelling of a numpy / ml_dtypes dtype (inverse of :func:`numpy_dtype`)."""
    import numpy as np

    name = _name_table().get(np.dtype(dtype))
    if name is None:
        raise ValueError(f"no MLIR element type for numpy dtype {dtype}")
    return name
