"""Printed IR re-reads bit for bit: every f32 constant, custom and generic form.

xDSL prints an f32 that needs 7-9 significant digits and has no fractional part
(``8388608.0``, ``1234567.0``) as its bit pattern, ``0x4B000000``, and NaN / inf as
their bits too. qopt's readers (the quant clauses, ``dense<...>`` through
:class:`qopt.ir.parsing.ExactParser`, codegen's ``parse_lowered``) take that hex
as bits. One limit is xDSL's, not qopt's: a float attribute holds a Python float, so a
signaling NaN reads as the quiet NaN with the same payload (the bit 0x00400000 set);
from then on it round-trips bit for bit as well. The IR is printed the way qopt prints it
(:mod:`qdialect.printing`: xDSL alone writes ``dense<[0.0, -0.0]>`` as a splat of 0.0).
"""

from __future__ import annotations

import struct

import ml_dtypes
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, FloatAttr
from xdsl.ir import Operation

from qopt.codegen.translate import parse_lowered
from qopt.ir.diagnostics import Diagnostic, verify_module
from qopt.ir.printing import print_ir
from qopt.qdialect.context import parse_module

# --------------------------------------------------------------------------------------
# f32 bit patterns by class


def f32_bits(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def bits_value(bits: int) -> float:
    return float(np.uint32(bits).view(np.float32))


def read_back(bits: int) -> int:
    """The bits a float attribute can hold: a signaling NaN becomes quiet (xDSL)."""
    is_nan = bits & 0x7F800000 == 0x7F800000 and bits & 0x007FFFFF
    return bits | 0x00400000 if is_nan else bits


SIGN = st.sampled_from([0, 0x80000000])
NORMAL = st.integers(0x00800000, 0x7F7FFFFF)
SUBNORMAL = st.integers(1, 0x007FFFFF)
POWER_OF_TWO = st.integers(1, 254).map(lambda e: e << 23)
SPECIAL = st.sampled_from(
    [
        0x00000000,  # +0
        0x7F7FFFFF,  # max finite
        0x00800000,  # min normal
        0x00000001,  # min subnormal
        0x7F800000,  # inf
        0x7FC00000,  # quiet NaN
        0x7FC12345,  # quiet NaN with a payload
        0x7F800001,  # signaling NaN
        0x4B000000,  # 8388608.0, the report's case
        0x4996B438,  # 1234567.0
        0x49742410,  # 1000001.0
        0x4B7FFFFF,  # 16777215.0
    ]
)


def _integer_valued(n: int, k: int) -> int:
    """``n * 2**k`` as f32 bits: integer-valued floats of every digit count (1 to 39)."""
    value = float(np.float32(float(n) * 2.0**k))
    return f32_bits(value) if np.isfinite(value) else 0x7F7FFFFF


INTEGER_VALUED = st.builds(_integer_valued, st.integers(1, 2**24), st.integers(0, 104))
F32_BITS = st.one_of(
    st.integers(0, 2**32 - 1),
    st.builds(lambda s, b: s | b, SIGN, NORMAL),
    st.builds(lambda s, b: s | b, SIGN, SUBNORMAL),
    st.builds(lambda s, b: s | b, SIGN, POWER_OF_TWO),
    st.builds(lambda s, b: s | b, SIGN, INTEGER_VALUED),
    st.builds(lambda s, b: s | b, SIGN, SPECIAL),
)


# --------------------------------------------------------------------------------------
# Print, parse, compare


def print_op(op: Operation, generic: bool = False) -> str:
    return print_ir(op, generic=generic)


def constant_bits(module: Operation) -> list[int]:
    """The bits of every f32 constant in `module`, in walk order (attributes, then
    properties of each op by name)."""
    found: list[int] = []
    for op in module.walk():
        for _, attr in sorted({**op.attributes, **op.properties}.items()):
            if isinstance(attr, FloatAttr) and attr.type.name == "f32":
                found.append(f32_bits(attr.value.data))
            elif isinstance(attr, DenseIntOrFPElementsAttr) and str(attr.get_element_type()) == (
                "f32"
            ):
                found.extend(int(b) for b in np.frombuffer(attr.data.data, dtype="<u4"))
    return found


def assert_rereads(text: str, expected: list[int], reader=parse_module) -> None:
    """`text` reads as `expected`, and its custom and generic prints read back the same."""
    module = reader(text)
    assert constant_bits(module) == expected
    printed = print_op(module)
    again = reader(printed)
    assert constant_bits(again) == expected, printed
    assert print_op(again) == printed
    generic = reader(print_op(module, generic=True))
    assert constant_bits(generic) == expected
    assert print_op(generic) == printed


def decimal(value: float) -> str:
    """Python's shortest repr, with the '.' an MLIR float literal needs (``1e+16``)."""
    text = repr(value)
    return text if "." in text else text.replace("e", ".0e")


def hex_literal(bits: int) -> str:
    return f"0x{bits:08X}"


def quant_text(a: int, b: int, c: int) -> str:
    """A scalar and a dense scale, a double-quant scale and an eps: every f32 clause."""
    return f"""func.func @f(%x: tensor<3xf32>, %q: tensor<3xi8>) -> tensor<3xi8> {{
  %a = quant.quantize %x scale({hex_literal(a)}) : tensor<3xf32> -> tensor<3xi8>
  %b = quant.quantize %x scale(dense<[{", ".join(map(hex_literal, (a, b, c)))}]> : tensor<3xf32>) per_axis(0) : tensor<3xf32> -> tensor<3xi8>
  %c = quant.dequantize %q scale({hex_literal(b)}) double_quant({hex_literal(c)}) : tensor<3xi8> -> tensor<3xf32>
  %d = quant.fake_quantize %x storage(i8) eps({hex_literal(a)}) : tensor<3xf32> -> tensor<3xf32>
  func.return %a : tensor<3xi8>
}}"""


def lowered_text(a: int, b: int, c: int) -> str:
    return f"""func.func @f() -> tensor<3xf32> {{
  %s = arith.constant {hex_literal(a)} : f32
  %d = arith.constant dense<[{", ".join(map(hex_literal, (a, b, c)))}]> : tensor<3xf32>
  %e = arith.constant dense<{hex_literal(b)}> : tensor<3xf32>
  func.return %d : tensor<3xf32>
}}"""


@settings(max_examples=120, deadline=None)
@given(a=F32_BITS, b=F32_BITS, c=F32_BITS)
@example(a=0x4B000000, b=0x4996B438, c=0x49742410)
@example(a=0x7FC00000, b=0x7F800000, c=0xFF800000)
@example(a=0x7F7FFFFF, b=0x00000001, c=0x80000000)
def test_quant_ir_f32_constants_reread_bit_for_bit(a: int, b: int, c: int) -> None:
    a_, b_, c_ = map(read_back, (a, b, c))
    # Properties in walk order, by name: quantize scale_const; quantize scale_const
    # (dense); dequantize double_quant_const, scale_const; fake_quantize eps.
    assert_rereads(quant_text(a, b, c), [a_, a_, b_, c_, c_, b_, a_])


@settings(max_examples=120, deadline=None)
@given(a=F32_BITS, b=F32_BITS, c=F32_BITS)
@example(a=0x4B000000, b=0x4996B438, c=0x49742410)
@example(a=0x7FC00000, b=0x7F800001, c=0xFFFFFFFF)
def test_lowered_ir_f32_constants_reread_bit_for_bit(a: int, b: int, c: int) -> None:
    a_, b_, c_ = map(read_back, (a, b, c))
    expected = [a_, a_, b_, c_, b_, b_, b_]
    assert_rereads(lowered_text(a, b, c), expected)
    assert_rereads(lowered_text(a, b, c), expected, reader=parse_lowered)


@settings(max_examples=100, deadline=None)
@given(bits=F32_BITS)
def test_decimal_scale_prints_and_rereads_exactly(bits: int) -> None:
    """A scale written in decimal (as a user writes it) prints in whatever form xDSL picks
    (decimal or hex) and reads back to the same f32."""
    value = bits_value(bits)
    if not np.isfinite(value):
        return
    text = quant_text(0x3F800000, 0x3F800000, 0x3F800000).replace(
        "scale(0x3F800000) :", f"scale({decimal(value)}) :", 1
    )
    expected = [bits, 0x3F800000, 0x3F800000, 0x3F800000, 0x3F800000, 0x3F800000, 0x3F800000]
    assert_rereads(text, expected)


@pytest.mark.parametrize("value", ["8388608.0", "1234567.0", "1000001.0", "16777216.0"])
def test_integer_valued_scale_survives_qopt_twice(value: str) -> None:
    """``qopt f.mlir | qopt -`` keeps a scale of 7-9 integer digits (printed as hex)."""
    text = quant_text(0x3F800000, 0x3F800000, 0x3F800000).replace(
        "scale(0x3F800000) :", f"scale({value}) :", 1
    )
    module = parse_module(text)
    verify_module(module)
    printed = print_op(module)
    assert "scale(0x" in printed
    again = parse_module(printed)
    verify_module(again)
    assert constant_bits(again)[0] == f32_bits(float(value))


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("0x7FC00000", "constant scale must be finite and > 0, got nan"),
        ("0x7F800000", "constant scale must be finite and > 0, got inf"),
        ("0xFF800000", "constant scale must be finite and > 0, got -inf"),
        ("dense<[0x7FC00000, 1.0, 2.0]> : tensor<3xf32>", "got nan"),
    ],
)
def test_nan_and_inf_scales_are_rejected_with_a_location(literal: str, message: str) -> None:
    granularity = " per_axis(0)" if "dense" in literal else ""
    text = f"""func.func @f(%x: tensor<3xf32>) -> tensor<3xi8> {{
  %q = quant.quantize %x scale({literal}){granularity} : tensor<3xf32> -> tensor<3xi8>
  func.return %q : tensor<3xi8>
}}"""
    with pytest.raises(Diagnostic) as info:
        verify_module(parse_module(text, "s.mlir"))
    assert str(info.value).startswith("s.mlir:2:3: error: ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("0x1FFFFFFFF", "does not fit the 32 bits of f32"),
        ("-0x3F800000", "takes no leading minus"),
    ],
)
def test_bad_hex_float_literals_are_located(literal: str, message: str) -> None:
    for text in (
        f"func.func @f() {{\n  %c = arith.constant dense<[{literal}]> : tensor<1xf32>\n"
        "  func.return\n}",
        f"func.func @f(%x: tensor<1xf32>) -> tensor<1xi8> {{\n  %q = quant.quantize %x "
        f"scale({literal}) : tensor<1xf32> -> tensor<1xi8>\n  func.return %q : tensor<1xi8>\n}}",
    ):
        with pytest.raises(Diagnostic) as info:
            parse_module(text, "h.mlir")
        assert str(info.value).startswith("h.mlir:2:")
        assert message in str(info.value)


@pytest.mark.parametrize(
    ("type_name", "dtype"),
    [("f16", np.float16), ("bf16", ml_dtypes.bfloat16), ("f8E4M3FN", ml_dtypes.float8_e4m3fn)],
)
def test_hex_dense_elements_of_narrow_float_types_are_bits(type_name: str, dtype) -> None:
    width = np.dtype(dtype).itemsize * 8
    codes = [0x1, 0x3C, (1 << (width - 1)) - 2] if width == 8 else [0x1, 0x3C00, 0x4B00]
    literals = ", ".join(f"0x{c:X}" for c in codes)
    text = (
        f"func.func @f() {{\n  %c = arith.constant dense<[{literals}]> : "
        f"tensor<3x{type_name}>\n  func.return\n}}"
    )
    for reader in (parse_module, parse_lowered):
        (const,) = [op for op in reader(text).walk() if op.name == "arith.constant"]
        got = np.frombuffer(const.value.data.data, dtype=f"<u{width // 8}")
        want = np.array(codes, dtype=f"<u{width // 8}")
        assert got.tolist() == want.tolist(), type_name


@pytest.mark.parametrize("count", [3, 101])
def test_signed_zeros_are_not_a_splat(count: int) -> None:
    """xDSL prints equal-comparing elements as one splat: -0.0 would become +0.0."""
    values = ", ".join(["0.0"] * (count - 1) + ["-0.0"])
    text = (
        f"func.func @f() -> tensor<{count}xf32> {{\n  %c = arith.constant dense<[{values}]> : "
        f"tensor<{count}xf32>\n  func.return %c : tensor<{count}xf32>\n}}"
    )
    assert_rereads(text, [0] * (count - 1) + [0x80000000])


@pytest.mark.parametrize("value", ["8388608.0", "2.5", "1.0e16", "-3.5"])
def test_float_zero_point_rereads_as_the_same_float(value: str) -> None:
    """An (invalid) float zero point prints in decimal: the hex bits a float scale may
    print as would read back as an integer zero point."""
    text = (
        "func.func @f(%x: tensor<2xf32>) -> tensor<2xi8> {\n  %q = quant.quantize %x "
        f"scale(1.0) zero_point({value}) : tensor<2xf32> -> tensor<2xi8>\n"
        "  func.return %q : tensor<2xi8>\n}"
    )
    # Properties by name: scale_const, then zero_point_const.
    assert_rereads(text, [f32_bits(1.0), f32_bits(float(np.float32(float(value))))])
