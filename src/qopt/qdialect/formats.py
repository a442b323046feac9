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


_NUMPY_NAMES: dict[str, str] = {
    "f32": "float32", "f16": "float16", "f64": "float64", "i1": "bool",
    "i8": "int8", "ui8": "uint8", "i16": "int16", "ui16": "uint16",
    "i32": "int32", "ui32": "uint32", "i64": "int64", "ui64": "uint64", "index": "int64",
}  # fmt: skip
"""Element types numpy holds itself: no ml_dtypes import for them."""

_ML_DTYPES_NAMES: dict[str, str] = {
    "bf16": "bfloat16", "i2": "int2", "ui2": "uint2", "i4": "int4", "ui4": "uint4",
    "f8E4M3FN": "float8_e4m3fn", "f8E5M2": "float8_e5m2", "f4E2M1FN": "float4_e2m1fn",
    "f8E8M0FNU": "float8_e8m0fnu",
}  # fmt: skip
"""Element types of ml_dtypes: imported only when one of them is asked for, since
importing ml_dtypes costs most of a fresh process's first call (about 0.6 s)."""


@functools.cache
def numpy_dtype(t: Attribute | str):
    """The numpy / ml_dtypes dtype holding one element of a type (one byte per sub-byte code)."""
    import numpy as np

    name = t if isinstance(t, str) else type_name(t)
    if name in _NUMPY_NAMES:
        return np.dtype(_NUMPY_NAMES[name])
    if name in _ML_DTYPES_NAMES:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, _ML_DTYPES_NAMES[name]))
    raise ValueError(f"no numpy dtype for element type '{name}'")


_NAMES_OF_NUMPY = {v: k for k, v in _NUMPY_NAMES.items() if k not in ("i1", "index", "ui64")}
_NAMES_OF_ML_DTYPES = {v: k for k, v in _ML_DTYPES_NAMES.items()}


def name_of_numpy_dtype(dtype) -> str:
    """The MLIR spelling of a numpy / ml_dtypes dtype (inverse of :func:`numpy_dtype`).

    An ml_dtypes dtype is recognised by its name and checked by identity, without importing
    ml_dtypes for the dtypes numpy holds itself."""
    import numpy as np

    dtype = np.dtype(dtype)
    if dtype.isbuiltin == 2:  # a user-defined type, as ml_dtypes' are
        name = _NAMES_OF_ML_DTYPES.get(dtype.name)
    else:
        name = _NAMES_OF_NUMPY.get(dtype.name)
    if name is not None and numpy_dtype(name) != dtype:  # byte order, another package's type
        name = None
    if name is None:
        raise ValueError(f"no MLIR element type for numpy dtype {dtype}")
    return name
