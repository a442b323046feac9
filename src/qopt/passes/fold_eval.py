"""fold-quant's compile-time evaluator: the lowering's own element math on every code.

fold-quant proves a fold by evaluating quantize / dequantize on every storage code for
every constant parameter (docs/semantics.md section 6). It does not carry its own copy of the
numerics: :func:`dequantize` and :func:`quantize` build the scalar body the lowering
builds for one element (``quant_math.dequantize_value`` / ``quantize_value`` on a
:class:`~qopt.passes.scalar_ir.BodyBuilder`, once per distinct signature) and evaluate it
on numpy arrays with ``evaluate_lowered.py``. Arrays are (cells, codes): one row per
distinct parameter combination, one column per code, broadcast like numpy.

Integer codes are int64 values, float codes arrays of the format's ml_dtypes dtype.
"""

from __future__ import annotations

import functools

import numpy as np
from xdsl.dialects.builtin import IntegerType, UnknownLoc, f32, i32
from xdsl.dialects.linalg.ops import YieldOp
from xdsl.ir import Attribute, Block

from qopt.passes.evaluate_lowered import evaluate_block
from qopt.passes.quant_math import (
    DequantizeParams,
    QuantizeParams,
    dequantize_value,
    quantize_value,
)
from qopt.passes.scalar_ir import BodyBuilder, Storage, from_f32
from qopt.qdialect import formats
from qopt.qdialect.verifiers import ZERO_POINT_ORDERS

AFTER_ROUNDING = ZERO_POINT_ORDERS[0]

DIFFERENCE_TYPE = i32
"""The code type of differences ``q - zp`` (runtime zero points): wide enough for all."""

_UNCLAMPED = 1 << 24
"""The clamp bound of an unclamped quantize: beyond every difference, exact in f32."""


def storage_domain(storage: Attribute) -> np.ndarray:
    """Every code of a storage type: int64 values, or the float format's codes."""
    if isinstance(storage, IntegerType):
        lo, hi = formats.integer_range(storage)
        return np.arange(lo, hi + 1, dtype=np.int64)
    codes = np.arange(1 << formats.bit_width(storage), dtype=np.uint8)
    return codes.view(formats.numpy_dtype(storage))


def difference_domain(storage: IntegerType) -> np.ndarray:
    """Every ``q - zp`` of a storage type when the zero point is a runtime value (their
    type is :data:`DIFFERENCE_TYPE`)."""
    lo, hi = formats.integer_range(storage)
    return np.arange(lo - hi, hi - lo + 1, dtype=np.int64)


@functools.cache
def _dequantize_body(code_type: Attribute, expressed: Attribute) -> Block:
    """``(q, s, zp) -> dequantize_value`` rounded to ``expressed``, as lower-quant emits it
    for a ``quant.dequantize`` (float storage: no zero point)."""
    block = Block(arg_types=[code_type, f32, f32])
    q, s, zp = block.args
    b = BodyBuilder(block, UnknownLoc())
    zero_point = None if Storage.of(code_type).is_float else zp
    x = dequantize_value(b, q, DequantizeParams(s, zero_point))
    b.emit(YieldOp(from_f32(b, x, expressed)))
    return block


@functools.cache
def _quantize_body(
    code_type: Attribute,
    bounds: tuple[int, int],
    rounding: str,
    saturate: bool,
    zero_point_order: str = AFTER_ROUNDING,
) -> Block:
    """``(x, s, zp) -> quantize_value`` of an expressed value, as lower-quant emits it."""
    block = Block(arg_types=[f32, f32, f32])
    x, s, zp = block.args
    b = BodyBuilder(block, UnknownLoc())
    storage = (
        Storage(code_type, *bounds) if isinstance(code_type, IntegerType) else Storage(code_type)
    )
    zero_point = None if storage.is_float else zp
    q = quantize_value(
        b,
        x,
        QuantizeParams(s, zero_point),
        storage,
        rounding=rounding,
        saturate=saturate,
        zero_point_order=zero_point_order,
    )
    b.emit(YieldOp(q))
    return block


def dequantize(
    codes: np.ndarray,
    code_type: Attribute,
    scale: np.ndarray,
    zero_point: np.ndarray,
    expressed: Attribute = f32,
) -> np.ndarray:
    """The dequantized values of ``codes`` (of ``code_type``), rounded to ``expressed``
    and returned as f32."""
    block = _dequantize_body(code_type, expressed)
    (x,) = evaluate_block(block, [codes, scale, np.asarray(zero_point).astype(np.float32)])
    return x.astype(np.float32)


def quantize(
    x: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray,
    storage: Attribute,
    rounding: str,
    saturate: bool,
    bounds: tuple[int, int] | None,
    zero_point_order: str = AFTER_ROUNDING,
) -> np.ndarray:
    """The codes of f32 values ``x`` in ``storage``: integer storage clamped to ``bounds``
    (None: not clamped, for differences, computed in :data:`DIFFERENCE_TYPE`), with the
    zero point added after or before rounding (``zero_point_order``)."""
    order = zero_point_order
    if not isinstance(storage, IntegerType):
        block = _quantize_body(storage, (0, 0), rounding, saturate)
    elif bounds is None:
        unclamped = (-_UNCLAMPED, _UNCLAMPED)
        block = _quantize_body(DIFFERENCE_TYPE, unclamped, rounding, saturate, order)
    else:
        block = _quantize_body(storage, bounds, rounding, saturate, order)
    (q,) = evaluate_block(block, [x, scale, np.asarray(zero_point).astype(np.float32)])
    return q


def is_float_codes(codes: np.ndarray) -> bool:
    # not dtype.kind: ml_dtypes gives float8_e5m2 kind 'f' but float8_e4m3fn kind 'V'
    return codes.dtype in _FLOAT_STORAGE_DTYPES


_FLOAT_STORAGE_DTYPES = frozenset(formats.numpy_dtype(n) for n in formats.FLOAT_STORAGE_NAMES)


def bits(codes: np.ndarray) -> np.ndarray:
    """Comparable bits of codes: float storage as its bytes, integer codes as values."""
    return codes.view(np.uint8) if is_float_codes(codes) else codes


def worst_error(folded: np.ndarray, chained: np.ndarray) -> float:
    """max |folded - chained| in output units (code values); NaN against NaN is 0, NaN
    against a number is inf."""
    a, b = folded.astype(np.float64), chained.astype(np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff = np.where(same, 0.0, np.abs(a - b))
    return float(np.max(np.where(np.isnan(diff), np.inf, diff), initial=0.0))
