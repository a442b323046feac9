"""Element types: how each scalar type of the lowered IR lives in memory and in registers.

Element storage follows design.md section 1: sub-byte integers one per byte (loads keep the
low N bits, stores write them zero-extended), small float formats in the integer / `half`
type of `floatfmt.storage_type`, converted by `floatfmt` in `truncf` / `extf`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float4E2M1FNType,
    Float8E4M3FNType,
    Float8E5M2Type,
    Float8E8M0FNUType,
    Float16Type,
    Float32Type,
    Float64Type,
    IndexType,
    IntegerType,
    Signedness,
    TensorType,
)
from xdsl.ir import Attribute, Operation

from qopt.codegen import floatfmt
from qopt.codegen.abi import I8, I64
from qopt.codegen.errors import TranslationError

__all__ = [
    "ElementType",
    "constant_bits",
    "element_type",
    "load_element",
    "storage_value",
    "store_element",
    "tensor_type",
]


@dataclass(frozen=True)
class ElementType:
    """How one element type lives in memory (`storage`) and in registers (`value`)."""

    name: str
    dtype: np.dtype
    value: ir.Type
    storage: ir.Type
    float_format: str | None = None  # the floatfmt format of a small float type

    @property
    def is_float(self) -> bool:
        """Whether LLVM float arithmetic applies to the register value."""
        return isinstance(self.value, ir.HalfType | ir.FloatType | ir.DoubleType)


_NATIVE_FLOATS: dict[type[Attribute], ElementType] = {
    Float32Type: ElementType("f32", np.dtype(np.float32), ir.FloatType(), ir.FloatType()),
    Float64Type: ElementType("f64", np.dtype(np.float64), ir.DoubleType(), ir.DoubleType()),
}

# Types numpy lacks are ml_dtypes' (named as strings here): importing ml_dtypes costs
# about 0.6 s, so it happens only when a kernel has an element of one of them.
_SMALL_FLOATS: dict[type[Attribute], tuple[str, str]] = {
    Float16Type: ("f16", "float16"),
    BFloat16Type: ("bf16", "bfloat16"),
    Float8E4M3FNType: ("f8E4M3FN", "float8_e4m3fn"),
    Float8E5M2Type: ("f8E5M2", "float8_e5m2"),
    Float4E2M1FNType: ("f4E2M1FN", "float4_e2m1fn"),
    Float8E8M0FNUType: ("f8E8M0FNU", "float8_e8m0fnu"),
}

# (width, unsigned) -> numpy dtype name; signless and signed integers are signed storage.
_INTEGER_DTYPES: dict[tuple[int, bool], str] = {
    (1, False): "bool",
    (1, True): "bool",
    (2, False): "int2",
    (2, True): "uint2",
    (4, False): "int4",
    (4, True): "uint4",
    (8, False): "int8",
    (8, True): "uint8",
    (16, False): "int16",
    (16, True): "uint16",
    (32, False): "int32",
    (32, True): "uint32",
    (64, False): "int64",
    (64, True): "uint64",
}


_ML_DTYPES = frozenset(
    {"bfloat16", "int2", "uint2", "int4", "uint4", "float8_e4m3fn", "float8_e5m2",
     "float4_e2m1fn", "float8_e8m0fnu"}
)  # fmt: skip


def _dtype(name: str) -> np.dtype:
    """The numpy dtype of that name, or ml_dtypes' (imported only for those)."""
    if name not in _ML_DTYPES:
        return np.dtype(name)
    import ml_dtypes

    return np.dtype(getattr(ml_dtypes, name))


def _integer_element(attr: IntegerType) -> ElementType | None:
    width = attr.width.data
    unsigned = attr.signedness.data == Signedness.UNSIGNED
    dtype = _INTEGER_DTYPES.get((width, unsigned))
    if dtype is None:
        return None
    value = ir.IntType(width)
    return ElementType(str(attr), _dtype(dtype), value, I8 if width < 8 else value)


def _small_float_element(attr: Attribute) -> ElementType:
    fmt, dtype = _SMALL_FLOATS[type(attr)]
    storage = floatfmt.storage_type(fmt)
    return ElementType(fmt, _dtype(dtype), storage, storage, fmt)


@functools.cache
def _element_or_none(attr: Attribute) -> ElementType | None:
    match attr:
        case IntegerType():
            return _integer_element(attr)
        case IndexType():
            return ElementType("index", np.dtype(np.int64), I64, I64)
        case _ if type(attr) in _NATIVE_FLOATS:
            return _NATIVE_FLOATS[type(attr)]
        case _ if type(attr) in _SMALL_FLOATS:
            return _small_float_element(attr)
        case _:
            return None


def element_type(attr: Attribute, op: Operation | None = None) -> ElementType:
    """The `ElementType` of a scalar type; `TranslationError` (located at `op`) if none."""
    element = _element_or_none(attr)
    if element is None:
        raise TranslationError(f"unsupported element type {attr}", op)
    return element


def tensor_type(attr: Attribute, op: Operation, what: str, *, static: bool = False) -> TensorType:
    """`attr` as a ranked tensor type (of static shape if `static`) of a supported element
    type, else a `TranslationError` naming `what` it is."""
    if not isinstance(attr, TensorType):
        raise TranslationError(f"{what} must be a ranked tensor, got {attr}", op)
    if static and any(d < 0 for d in attr.get_shape()):
        raise TranslationError(f"{what} must have a static shape, got {attr}", op)
    element_type(attr.get_element_type(), op)
    return attr


def constant_bits(values: Iterable[int | float], element: ElementType) -> np.ndarray:
    """The values as the bytes one element each occupies in memory."""
    if isinstance(element.value, ir.IntType) and element.float_format is None:
        width = element.value.width
        raw = [int(v) & ((1 << width) - 1) for v in values]
        return np.array(raw, dtype=np.uint64).astype(f"<u{element.dtype.itemsize}")
    return np.array(list(values), dtype=np.float64).astype(element.dtype)


def load_element(b: ir.IRBuilder, ptr: ir.Value, element: ElementType) -> ir.Value:
    """The register value of the element stored at `ptr`."""
    value = b.load(ptr, typ=element.storage)
    return b.trunc(value, element.value) if element.storage != element.value else value


def storage_value(b: ir.IRBuilder, value: ir.Value, element: ElementType) -> ir.Value:
    """A register value in the element's storage type (low N bits, upper bits zero)."""
    return b.zext(value, element.storage) if element.storage != element.value else value


def store_element(b: ir.IRBuilder, value: ir.Value, ptr: ir.Value, element: ElementType) -> None:
    """Store a register value at `ptr` in the element's storage type."""
    b.store(storage_value(b, value, element), ptr)
