"""The quant dialect: construction, granularity shapes, round trips, verifier errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, TensorType, f32, i8, i32

from qopt.ir.diagnostics import Diagnostic, verify_module
from qopt.ir.printing import ExactPrinter
from qopt.qdialect import (
    BlockAttr,
    DequantizeOp,
    PerAxisAttr,
    PerBlockAttr,
    PerTensorAttr,
    PerTokenAttr,
    QuantizeOp,
)
from qopt.qdialect.context import parse_module


def _print(op, generic: bool = False) -> str:
    out = io.StringIO()
    ExactPrinter(stream=out, print_generic_format=generic).print_op(op)
    return out.getvalue()


def _roundtrip(text: str) -> str:
    module = parse_module(text)
    verify_module(module)
    printed = _print(module)
    again = parse_module(printed)
    verify_module(again)
    assert _print(again) == printed
    generic = parse_module(_print(again, generic=True))
    verify_module(generic)
    assert _print(generic) == printed
    return printed


@pytest.mark.parametrize(
    ("granularity", "shape", "block", "param"),
    [
        (PerTensorAttr(), (4, 70), (4, 70), ()),
        (PerAxisAttr(1), (4, 70), (4, 1), (70,)),
        (PerBlockAttr(1, 32), (4, 70), (1, 32), (4, 3)),
        (BlockAttr([128, -1]), (300, 70), (128, 70), (3, 1)),
        (BlockAttr([2, 2]), (5, 5), (2, 2), (3, 3)),
        (PerTokenAttr(), (2, 3, 8), (1, 1, 8), (2, 3, 1)),
    ],
)
def test_granularity_shapes(granularity, shape, block, param):
    assert granularity.block_shape(shape) == block
    assert granularity.param_shape(shape) == param


def test_build_quantize_programmatically():
    x_type = TensorType(f32, [4, 8])
    from xdsl.dialects.func import FuncOp, ReturnOp
    from xdsl.ir import Block, Region

    block = Block(arg_types=[x_type])
    op = QuantizeOp.build(
        operands=[block.args[0], [], [], []],
        result_types=[TensorType(i8, [4, 8])],
        properties={
            "scale_const": FloatAttr(0.5, f32),
            "zero_point_const": IntegerAttr(-3, i32),
            "granularity": PerTensorAttr(),
        },
    )
    block.add_ops([op, ReturnOp(op.result)])
    func = FuncOp("f", ([x_type], [op.result.type]), Region(block))
    func.verify()
    text = _print(func)
    assert "quant.quantize %0 scale(5.000000e-01) zero_point(-3)" in text
    assert op.param("scale") == FloatAttr(0.5, f32)
    assert op.rounding_mode == "nearest_even" and op.saturate_flag


_STORAGE = ["i8", "ui8", "i16", "ui16", "i4", "ui4", "i2", "ui2", "f8E4M3FN", "f8E5M2", "f4E2M1FN"]


@settings(max_examples=60, deadline=None)
@given(
    storage=st.sampled_from(_STORAGE),
    expressed=st.sampled_from(["f32", "f16", "bf16"]),
    dims=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    data=st.data(),
)
def test_roundtrip_generated(storage, expressed, dims, data):
    """Random but valid quantize / dequantize ops round-trip in custom and generic form."""
    shape = "x".join(map(str, dims))
    axis = data.draw(st.integers(0, len(dims) - 1))
    kind = data.draw(st.sampled_from(["per_tensor", "per_axis", "per_block"]))
    scale = data.draw(st.floats(2.0**-60, 2.0**60, width=32))
    if kind == "per_tensor":
        gran, scale_clause = "", f"scale({scale!r})"
    elif kind == "per_axis":
        gran = f" per_axis({axis})"
        values = ", ".join(repr(scale) for _ in range(dims[axis]))
        scale_clause = f"scale(dense<[{values}]> : tensor<{dims[axis]}xf32>)"
    else:
        block = data.draw(st.integers(1, 4))
        pshape = list(dims)
        pshape[axis] = -(-dims[axis] // block)
        gran = f" per_block({axis}, {block})"
        scale_clause = f"scale(dense<{scale!r}> : tensor<{'x'.join(map(str, pshape))}xf32>)"
    text = f"""
func.func @f(%x: tensor<{shape}x{expressed}>) -> tensor<{shape}xf32> {{
  %q = quant.quantize %x {scale_clause}{gran} : tensor<{shape}x{expressed}> -> tensor<{shape}x{storage}>
  %d = quant.dequantize %q {scale_clause}{gran} : tensor<{shape}x{storage}> -> tensor<{shape}xf32>
  func.return %d : tensor<{shape}xf32>
}}"""
    printed = _roundtrip(text)
    assert "quant.quantize" in printed and "quant.dequantize" in printed


@pytest.mark.parametrize("scale", [8388608.0, 1234567.0, 1000001.0, 16777215.0, 3.4028235e38])
@pytest.mark.parametrize("form", ["scalar", "dense", "splat"])
def test_roundtrip_integer_valued_scale(scale, form):
    """The case test_roundtrip_generated found: xDSL prints these scales as hex bits
    (``scale(0x4B000000)``), which qopt read back as the integer 1258291200."""
    clause = {
        "scalar": f"scale({scale!r})",
        "dense": f"scale(dense<[{scale!r}, 1.0]> : tensor<2xf32>) per_axis(0)",
        "splat": f"scale(dense<{scale!r}> : tensor<2xf32>) per_axis(0)",
    }[form]
    text = f"""func.func @f(%x: tensor<2xf32>) -> tensor<2xi8> {{
  %q = quant.quantize %x {clause} : tensor<2xf32> -> tensor<2xi8>
  func.return %q : tensor<2xi8>
}}"""
    printed = _roundtrip(text)
    assert "0x" in printed or scale == 3.4028235e38
    op = next(o for o in parse_module(printed).walk() if isinstance(o, QuantizeOp))
    const = op.param("scale")
    value = const.value.data if isinstance(const, FloatAttr) else const.get_values()[0]
    assert value == float(np.float32(scale))


def test_verifier_error_is_located():
    text = """func.func @f(%q: tensor<8xi8>) -> tensor<8xf32> {
  %x = quant.dequantize %q scale(1.0) per_axis(3) : tensor<8xi8> -> tensor<8xf32>
  func.return %x : tensor<8xf32>
}"""
    with pytest.raises(Diagnostic) as info:
        verify_module(parse_module(text, "model.mlir"))
    assert str(info.value) == "model.mlir:2:3: error: axis 3 is out of range for data of rank 1"


def test_dequantize_accessors():
    text = """func.func @f(%q: tensor<8xi8>, %s: tensor<8xf32>) -> tensor<8xf32> {
  %x = quant.dequantize %q scale(%s : tensor<8xf32>) zero_point(2) per_axis(0) : tensor<8xi8> -> tensor<8xf32>
  func.return %x : tensor<8xf32>
}"""
    module = parse_module(text)
    op = next(o for o in module.walk() if isinstance(o, DequantizeOp))
    assert op.param("scale") is op.scale
    assert op.param("zero_point") == IntegerAttr(2, i32)
    assert op.granularity_of() == PerAxisAttr(0)
