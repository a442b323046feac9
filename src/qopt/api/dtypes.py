"""Dtype arguments: MLIR spellings, numpy / ml_dtypes dtypes and names, torch dtypes.

A dtype argument may be an MLIR spelling (``"i8"``, ``"f8E4M3FN"``), a numpy / ml_dtypes
dtype or its name (``"int8"``, ``"float8_e4m3fn"``, ``"bfloat16"``), or a torch dtype
(``torch.int8``, ``torch.float8_e4m3fn``); it becomes the MLIR spelling. Which spellings
each argument allows comes from the dialect's format table (qdialect/formats.py).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
from xdsl.ir import Attribute

from qopt.api.arrays import as_numpy
from qopt.qdialect import formats


def is_float_storage(name: str) -> bool:
    return name in formats.FLOAT_STORAGE_NAMES


@functools.cache
def element_type(name: str) -> Attribute:
    """The xDSL type of a spelling, built once (a warm call builds no attribute)."""
    return formats.parse_type_name(name)


@functools.cache
def bit_width(name: str) -> int:
    return formats.bit_width(element_type(name))


@functools.cache
def integer_range(name: str) -> tuple[int, int]:
    """``(qmin, qmax)`` of an integer storage spelling."""
    return formats.integer_range(element_type(name))


def _ordered(names: Collection[str]) -> tuple[str, ...]:
    """Spellings in a stable order for messages: the widest first."""
    return tuple(sorted(names, key=lambda n: (-bit_width(n), n)))


STORAGE_NAMES = _ordered(
    [f"{sign}{width}" for width in formats.INTEGER_STORAGE_WIDTHS for sign in ("i", "ui")]
    + list(formats.FLOAT_STORAGE_NAMES)
)
EXPRESSED_NAMES = _ordered(formats.EXPRESSED_NAMES)
SCALE_NAMES = _ordered(formats.SCALE_NAMES)
F32 = np.dtype(np.float32)


def dtype_name(value: Any, argument: str, allowed: Sequence[str]) -> str:
    """The MLIR spelling of a dtype given as an MLIR spelling, a numpy / ml_dtypes dtype or
    its name (``"int8"``, ``"bfloat16"``), or a torch dtype."""
    name = None
    if isinstance(value, str):
        name = value if value in allowed else _name_of_numpy_name(value)
    elif type(value).__module__ == "torch" and type(value).__name__ == "dtype":
        name = _name_of_numpy_name(str(value).removeprefix("torch."))
    else:
        try:
            name = formats.name_of_numpy_dtype(np.dtype(value))
        except (TypeError, ValueError):
            raise TypeError(
                f"{argument} must be a dtype or one of {', '.join(allowed)}, got {value!r}"
            ) from None
    if name not in allowed:
        hint = (
            " (packed pairs: give the element type and packed=True)" if "_x2" in str(value) else ""
        )
        raise ValueError(
            f"{argument} must be one of {', '.join(allowed)} (or the numpy / ml_dtypes / "
            f"torch dtype of one), got {value!r}{hint}"
        )
    return name


def _name_of_numpy_name(text: str) -> str | None:
    """The MLIR spelling of a numpy / ml_dtypes dtype *name* (not a char code like "i8")."""
    try:
        dtype = np.dtype(text)
    except TypeError:
        return None
    if dtype.name != text:
        return None
    try:
        return formats.name_of_numpy_dtype(dtype)
    except ValueError:
        return None


def typed_array(value: Any, argument: str, allowed: Sequence[str]) -> tuple[np.ndarray, str]:
    """An array argument and the MLIR spelling of its dtype, one of ``allowed``."""
    array = as_numpy(value, argument)
    return array, dtype_name(array.dtype, f"{argument}.dtype", allowed)


def is_real_dtype(dtype: np.dtype) -> bool:
    if dtype.kind in "iuf":
        return True
    try:
        return formats.name_of_numpy_dtype(dtype) is not None  # ml_dtypes formats
    except ValueError:
        return False
