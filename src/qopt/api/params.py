"""Parameter arguments checked in the precision the kernel uses, and the granularity.

Scales are Python or numpy numbers, or arrays of any real dtype: f32 / f16 / bf16 /
f8E4M3FN / f8E8M0FNU arrays keep their format; anything else (float64, integers, a Python
float) is rounded to the nearest float32, like ``np.float32(s)``, and a scale that is then
not finite and > 0 (``1e40`` becomes inf, ``1e-50`` becomes 0) is rejected naming the
argument. Zero points are integers or integer-valued numbers or arrays of any width,
range-checked against the storage type; a scalar zero point broadcasts to the scale's
shape. ``eps`` and ``double_quant_scale`` are checked as float32 values too. Option values
(rounding modes, zero-point domains) come from the dialect's tables (qdialect/ops.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qopt.api.arrays import as_numpy
from qopt.api.dtypes import F32, SCALE_NAMES, bit_width, integer_range, is_real_dtype
from qopt.qdialect import formats
from qopt.qdialect.attrs import BlockAttr, GranularityAttr, PerAxisAttr, PerBlockAttr
from qopt.qdialect.ops import ROUNDING_MODES, SCALE_ROUNDING_MODES, ZERO_POINT_DOMAINS
from qopt.qdialect.verifiers import ZERO_POINT_ORDERS


def as_bool(value: Any, argument: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{argument} must be a bool, got {value!r}")
    return bool(value)


def as_int(value: Any, argument: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{argument} must be an int, got {value!r}")
    return int(value)


def as_axis(axis: Any, rank: int, argument: str = "axis") -> int:
    a = as_int(axis, argument)
    if not -rank <= a < rank:
        raise ValueError(f"{argument} {a} is out of range for an array of rank {rank}")
    return a % rank


def as_ints(values: Any, argument: str) -> list[int]:
    """A sequence of ints (``block_shape``, ``shape``): a float entry is a TypeError."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(f"{argument} must be a sequence of ints, got {values!r}")
    return [as_int(v, f"{argument}[{k}]") for k, v in enumerate(values)]


def is_real_number(value: Any) -> bool:
    """A Python int / float or a real numpy / ml_dtypes scalar (not a bool)."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, np.generic) and is_real_dtype(value.dtype)


def param_array(value: Any, argument: str) -> np.ndarray:
    """A scale / zero-point argument as a numpy array (a number becomes a 0-d array)."""
    if is_real_number(value):
        if isinstance(value, int) and not isinstance(value, np.generic):
            return np.asarray(value, dtype=object) if abs(value) >= 2**63 else np.asarray(value)
        return np.asarray(value)
    if isinstance(value, bool | np.bool_) or value is None or isinstance(value, str | bytes):
        raise TypeError(f"{argument} must be a number or an array, got {value!r}")
    try:
        array = as_numpy(value, argument)
    except TypeError:
        raise TypeError(f"{argument} must be a number or an array, got {value!r}") from None
    if not is_real_dtype(array.dtype):
        raise TypeError(f"{argument} must hold real numbers, got dtype {array.dtype}")
    return array


def _first_bad(array: np.ndarray, good: np.ndarray) -> Any:
    index = np.argwhere(~good)[0] if array.ndim else ()
    return array[tuple(index)]


def scale_array(
    value: Any, argument: str, shape: tuple[int, ...] | None, keep: bool = True
) -> np.ndarray:
    """A scale as the kernel reads it: f32 / f16 / bf16 / f8E4M3FN / f8E8M0FNU arrays keep
    their format (``keep``), anything else is rounded to the nearest float32; the result
    must be finite and > 0 in that format. ``shape`` None: any shape."""
    original = param_array(value, argument)
    if original.dtype == object:
        original = original.astype(np.float64)
    array = original
    name = formats.name_of_numpy_dtype(array.dtype) if is_real_dtype(array.dtype) else None
    if not (keep and name in SCALE_NAMES):
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            array = array.astype(F32, order="C")
    if array.size == 1 and shape == () and array.shape != ():
        array, original = array.reshape(()), original.reshape(())
    if shape is not None and array.shape != shape:
        raise ValueError(f"{argument} has shape {array.shape}, expected {shape}")
    wide = array.astype(np.float64)
    good = np.isfinite(wide) & (wide > 0)
    if not np.all(good):
        bad = _first_bad(original, good)
        was = float(np.asarray(bad).astype(np.float64))
        if math.isfinite(was) and was > 0:
            became = "inf" if wide[~good].flat[0] > 0 else "0"
            raise ValueError(
                f"{argument} {was!r} is not a usable scale: it becomes {became} in "
                f"{array.dtype.name}, the precision the kernel uses (finite and > 0 needed)"
            )
        raise ValueError(f"{argument} must be finite and > 0, got {was!r}")
    return array


def zero_point_array(value: Any, argument: str, shape: tuple[int, ...], storage: str) -> np.ndarray:
    """A zero point as an array of the storage type: integer-valued numbers of any width,
    range-checked; a 0-d zero point broadcasts to ``shape`` (the scale's shape)."""
    array = param_array(value, argument)
    lo, hi = integer_range(storage)
    if array.size:
        if array.dtype.kind in "iuO":
            smallest, largest = int(array.min()), int(array.max())
        else:
            wide = array.astype(np.float64)
            if not (np.all(np.isfinite(wide)) and np.all(np.round(wide) == wide)):
                raise ValueError(f"{argument} values must be integers, got {array!r}")
            smallest, largest = float(wide.min()), float(wide.max())
        if smallest < lo or largest > hi:
            bad = smallest if smallest < lo else largest
            raise ValueError(
                f"{argument} values must be integers in [{lo}, {hi}] for {storage}, got {bad}"
            )
    target = formats.numpy_dtype(storage)
    if array.dtype != target:
        if array.dtype.kind not in "iu":
            array = array.astype(np.float64)
        array = array.astype(target, order="C")
    if array.ndim == 0 and shape != ():
        array = np.broadcast_to(array, shape).copy()
    elif array.size == 1 and shape == ():
        array = array.reshape(())
    if array.shape != shape:
        raise ValueError(f"{argument} has shape {array.shape}, expected {shape}")
    return array


def positive_f32(value: Any, argument: str) -> float:
    """A scalar option (``eps``, ``double_quant_scale``) as the float32 the kernel uses:
    a real number or a 0-d array (numpy, torch, ...), finite and > 0 as a float32."""
    try:
        array = param_array(value, argument)
    except TypeError:
        raise TypeError(f"{argument} must be a real number, got {value!r}") from None
    if array.size != 1:
        raise ValueError(f"{argument} must be a single number, got shape {array.shape}")
    return float(scale_array(array.reshape(()), argument, (), keep=False))


@dataclass(frozen=True)
class Granularity:
    """A granularity request: the op's property (None for per-tensor, which the custom
    form leaves out), the parameter shape it implies, and a cheap key for the kernel table."""

    key: tuple
    param_shape: tuple[int, ...]
    attr: GranularityAttr | None = field(default=None, compare=False)


_PER_TENSOR = Granularity((), ())


def granularity(
    shape: tuple[int, ...],
    *,
    axis: Any,
    block_size: Any,
    block_shape: Any,
    per_axis: bool,
) -> Granularity:
    """Granularity from the keywords (README, "The Python API"): block_shape -> N-D block;
    block_size -> per-block along axis (default the last); ``per_axis`` (the caller's rule: axis and a 1-D parameter, or axis alone for
    the dynamic ops) -> per-axis; none -> per-tensor. ``axis`` is range-checked always."""
    rank = len(shape)
    if block_shape is not None:
        if block_size is not None:
            raise ValueError("give block_shape or block_size, not both")
        if axis is not None:
            raise ValueError("axis does not apply with block_shape (it names every dimension)")
        blocks = as_ints(block_shape, "block_shape")
        if len(blocks) != rank or any(b < 1 and b != -1 for b in blocks):
            raise ValueError(
                f"block_shape must have one entry >= 1 or -1 per dimension ({rank}), got {blocks}"
            )
        attr = BlockAttr(blocks)
        return Granularity(("block", *blocks), attr.param_shape(shape), attr)
    if block_size is not None:
        size = as_int(block_size, "block_size")
        if size < 1:
            raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")
        if rank == 0:
            raise ValueError("block_size needs an array of rank >= 1")
        a = as_axis(-1 if axis is None else axis, rank)
        attr = PerBlockAttr(a, size)
        return Granularity(("per_block", a, size), attr.param_shape(shape), attr)
    if axis is None:
        return _PER_TENSOR
    a = as_axis(axis, rank)
    if per_axis:
        attr = PerAxisAttr(a)
        return Granularity(("per_axis", a), attr.param_shape(shape), attr)
    return _PER_TENSOR


def rounding_mode(rounding: Any) -> str | None:
    """The ``rounding`` option: None for the default (the custom form leaves it out)."""
    if rounding not in ROUNDING_MODES:
        modes = ", ".join(ROUNDING_MODES)
        raise ValueError(f"rounding must be one of {modes}, got {rounding!r}")
    return None if rounding == ROUNDING_MODES[0] else rounding


def zero_point_order_option(order: Any, storage: str) -> str | None:
    """The ``zero_point_order`` option: None for the default (``after_rounding``, ONNX);
    ``before_rounding`` (upstream MLIR, StableHLO) applies to integer storage only."""
    if order not in ZERO_POINT_ORDERS:
        orders = ", ".join(ZERO_POINT_ORDERS)
        raise ValueError(f"zero_point_order must be one of {orders}, got {order!r}")
    if order == ZERO_POINT_ORDERS[0]:
        return None
    if storage in formats.FLOAT_STORAGE_NAMES:
        raise ValueError(
            f"zero_point_order={order!r} applies to integer storage only, not {storage}"
        )
    return order


def scale_rounding_mode(scale_rounding: Any, scale_type: str) -> str | None:
    """dynamic_quantize's ``scale_rounding``: None for the default."""
    if scale_rounding not in SCALE_ROUNDING_MODES:
        modes = " or ".join(SCALE_ROUNDING_MODES)
        raise ValueError(f"scale_rounding must be {modes}, got {scale_rounding!r}")
    if scale_rounding == SCALE_ROUNDING_MODES[0]:
        return None
    if scale_type != "f8E8M0FNU":
        raise ValueError(
            f"scale_rounding={scale_rounding!r} applies to f8E8M0FNU scales only, "
            f"scale_dtype is {scale_type}"
        )
    return scale_rounding


def zero_point_domain(domain: Any) -> str:
    if domain not in ZERO_POINT_DOMAINS:
        raise ValueError(f"zero_point_domain must be int, float or none, got {domain!r}")
    return domain


def double_quant(value: Any) -> np.ndarray:
    """The double-quant scalar as the f32 0-d operand the kernel reads."""
    return np.asarray(positive_f32(value, "double_quant_scale"), dtype=F32)


def packed_size(shape: Sequence[int], element: str) -> int:
    """Bytes holding ``shape`` codes of a 4-bit or 2-bit type (docs/semantics.md section 1)."""
    per_byte = 8 // bit_width(element)
    return -(-math.prod(shape) // per_byte)


def packing(packed: Any, shape: tuple[int, ...], storage: str) -> tuple | None:
    """The codes to return packed for a ``packed=`` keyword: ``(shape, storage)`` or None."""
    if not as_bool(packed, "packed"):
        return None
    if bit_width(storage) not in (2, 4):
        raise ValueError(f"packed=True needs a 4-bit or 2-bit dtype, got {storage}")
    return shape, storage
