"""The quant dialect: construction, granularity shapes, round trips, verifier errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    bf16,
    f4E2M1FN,
    f8E4M3FN,
    f8E8M0FNU,
    f32,
    i8,
    i32,
)
from xdsl.ir import Block, Region

from qopt.ir.diagnostics import Diagnostic, verify_module
from qopt.ir.printing import ExactPrinter
from qopt.qdialect import (
    BlockAttr,
    DequantizeOp,
    DynamicQuantizeOp,
    FakeQuantizeOp,
    PackOp,
    PerAxisAttr,
    PerBlockAttr,
    PerTensorAttr,
    PerTokenAttr,
    QuantizeOp,
    RequantizeOp,
    UnpackOp,
)
from qopt.qdialect.context import parse_module
from qopt.qdialect.formats import parse_type_name
from qopt.qdialect.ops import QUANT_OPS


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


def _t(shape: list[int], element: str) -> TensorType:
    return TensorType(parse_type_name(element), shape)


_X, _Q, _S = _t([4, 8], "f32"), _t([4, 8], "i8"), _t([8], "f32")
_Z, _DQ, _X64 = _t([8], "i8"), _t([], "f32"), _t([4, 64], "f32")

# name: (arguments, the op's text, its result types, the constructor call on the arguments)
_CONSTRUCTED = {
    "quantize": (
        {"x": _X},
        "quant.quantize %x scale(1.250000e-01) zero_point(3) : tensor<4x8xf32> -> tensor<4x8xi8>",
        lambda a: QuantizeOp(a["x"], _Q, scale=0.125, zero_point=3),
    ),
    "quantize_per_axis": (
        {"x": _X, "s": _S, "z": _Z},
        "quant.quantize %x scale(%s : tensor<8xf32>) zero_point(%z : tensor<8xi8>) per_axis(1) "
        "rounding(nearest_away) range(-127, 127) : tensor<4x8xf32> -> tensor<4x8xi8>",
        lambda a: QuantizeOp(
            a["x"],
            _Q,
            scale=a["s"],
            zero_point=a["z"],
            granularity=PerAxisAttr(1),
            rounding="nearest_away",
            storage_range=(-127, 127),
        ),
    ),
    "quantize_float": (
        {"x": _X},
        "quant.quantize %x scale(2.000000e+00) saturate(false) "
        ": tensor<4x8xf32> -> tensor<4x8xf8E4M3FN>",
        lambda a: QuantizeOp(a["x"], TensorType(f8E4M3FN, [4, 8]), scale=2.0, saturate=False),
    ),
    "quantize_minval": (
        {"x": _X},
        "quant.quantize %x scale(5.000000e-01) minval(-1.000000e+00) "
        ": tensor<4x8xf32> -> tensor<4x8xui4>",
        lambda a: QuantizeOp(a["x"], _t([4, 8], "ui4"), scale=0.5, minval=-1.0),
    ),
    "dequantize": (
        {"q": _Q, "s": _S, "dq": _DQ},
        "quant.dequantize %q scale(%s : tensor<8xf32>) double_quant(%dq : tensor<f32>) "
        "per_axis(1) : tensor<4x8xi8> -> tensor<4x8xbf16>",
        lambda a: DequantizeOp(
            a["q"],
            TensorType(bf16, [4, 8]),
            scale=a["s"],
            double_quant=a["dq"],
            granularity=PerAxisAttr(1),
        ),
    ),
    "dequantize_dense": (
        {"q": _Q},
        "quant.dequantize %q scale(dense<[[1.000000e+00, 2.500000e-01]]> : tensor<1x2xf32>) "
        "double_quant(3.000000e+00) block([4, 4]) range(-8, 7) "
        ": tensor<4x8xi8> -> tensor<4x8xf32>",
        lambda a: DequantizeOp(
            a["q"],
            _X,
            scale=DenseIntOrFPElementsAttr.from_list(_t([1, 2], "f32"), [1.0, 0.25]),
            double_quant=3.0,
            granularity=BlockAttr([4, 4]),
            storage_range=(-8, 7),
        ),
    ),
    "requantize": (
        {"q": _Q, "s": _S, "z": _Z},
        "quant.requantize %q in(scale(%s : tensor<8xf32>) zero_point(%z : tensor<8xi8>) "
        "per_axis(1)) out(scale(5.000000e-01) zero_point(-2)) rounding(half_up) "
        '{lowering = "fused"} : tensor<4x8xi8> -> tensor<4x8xi8>',
        lambda a: RequantizeOp(
            a["q"],
            _Q,
            in_scale=a["s"],
            in_zero_point=a["z"],
            in_granularity=PerAxisAttr(1),
            out_scale=0.5,
            out_zero_point=-2,
            rounding="half_up",
            attributes={"lowering": StringAttr("fused")},
        ),
    ),
    "dynamic_quantize_nvfp4": (
        {"x": _X64, "dq": _DQ},
        "quant.dynamic_quantize %x per_block(1, 16) double_quant(%dq : tensor<f32>) "
        ": tensor<4x64xf32> -> tensor<4x64xf4E2M1FN>, tensor<4x4xf8E4M3FN>",
        lambda a: DynamicQuantizeOp(
            a["x"],
            TensorType(f4E2M1FN, [4, 64]),
            TensorType(f8E4M3FN, [4, 4]),
            granularity=PerBlockAttr(1, 16),
            double_quant=a["dq"],
        ),
    ),
    "dynamic_quantize_mx": (
        {"x": _X64},
        "quant.dynamic_quantize %x per_block(1, 32) scale_rounding(rceil) "
        ": tensor<4x64xf32> -> tensor<4x64xf8E4M3FN>, tensor<4x2xf8E8M0FNU>",
        lambda a: DynamicQuantizeOp(
            a["x"],
            TensorType(f8E4M3FN, [4, 64]),
            TensorType(f8E8M0FNU, [4, 2]),
            granularity=PerBlockAttr(1, 32),
            scale_rounding="rceil",
        ),
    ),
    "dynamic_quantize_asymmetric": (
        {"x": _X},
        "quant.dynamic_quantize %x per_token symmetric(false) eps(9.999999740e-06) "
        "range(0, 15) : tensor<4x8xf32> -> tensor<4x8xui4>, tensor<4x1xf32>, tensor<4x1xui4>",
        lambda a: DynamicQuantizeOp(
            a["x"],
            _t([4, 8], "ui4"),
            _t([4, 1], "f32"),
            _t([4, 1], "ui4"),
            granularity=PerTokenAttr(),
            eps=1e-5,
            storage_range=(0, 15),
        ),
    ),
    "fake_quantize_dynamic": (
        {"x": _X},
        "quant.fake_quantize %x storage(i8) per_token symmetric(false) eps(9.999999740e-06) "
        "scale_type(bf16) zero_point_domain(float) : tensor<4x8xf32> -> tensor<4x8xf32>",
        lambda a: FakeQuantizeOp(
            a["x"],
            i8,
            granularity=PerTokenAttr(),
            symmetric=False,
            eps=1e-5,
            scale_type=bf16,
            zero_point_domain="float",
        ),
    ),
    "fake_quantize_static": (
        {"x": _X, "s": _S},
        "quant.fake_quantize %x storage(i4) scale(%s : tensor<8xf32>) per_axis(1) "
        "rounding(toward_zero) : tensor<4x8xf32> -> tensor<4x8xf32>",
        lambda a: FakeQuantizeOp(
            a["x"],
            parse_type_name("i4"),
            scale=a["s"],
            granularity=PerAxisAttr(1),
            rounding="toward_zero",
        ),
    ),
    "pack": (
        {"c": _t([7], "i4")},
        "quant.pack %c : tensor<7xi4> -> tensor<4xui8>",
        lambda a: PackOp(a["c"], _t([4], "ui8")),
    ),
    "unpack": (
        {"b": _t([2], "ui8")},
        "quant.unpack %b : tensor<2xui8> -> tensor<7xi2>",
        lambda a: UnpackOp(a["b"], _t([7], "i2")),
    ),
}


def _function_text(arguments: dict, op_text: str, result_types: list) -> str:
    args = ", ".join(f"%{name}: {t}" for name, t in arguments.items())
    names = ", ".join(f"%r{k}" for k in range(len(result_types)))
    types = ", ".join(str(t) for t in result_types)
    return (
        f"func.func @f({args}) -> ({types}) {{\n  {names} = {op_text}\n"
        f"  func.return {names} : {types}\n}}\n"
    )


@pytest.mark.parametrize("case", sorted(_CONSTRUCTED))
def test_constructor_builds_the_parsed_op(case: str) -> None:
    """Each typed constructor builds the op its text form parses to: the same custom and
    generic print (properties in parse order), and it verifies."""
    arguments, op_text, build = _CONSTRUCTED[case]
    block = Block(arg_types=list(arguments.values()))
    values = dict(zip(arguments, block.args))
    for name, arg in values.items():
        arg.name_hint = name
    op = build(values)
    for k, result in enumerate(op.results):
        result.name_hint = f"r{k}"
    block.add_ops([op, func.ReturnOp(*op.results)])
    built = func.FuncOp("f", (list(arguments.values()), list(op.result_types)), Region(block))
    verify_module(built)
    parsed = parse_module(_function_text(arguments, op_text, list(op.result_types)))
    verify_module(parsed)
    parsed_func = parsed.body.block.first_op
    assert _print(built) == _print(parsed_func)
    assert _print(built, generic=True) == _print(parsed_func, generic=True)


def test_every_quant_op_has_a_constructor_case() -> None:
    names = {text.split()[0] for _, text, _ in _CONSTRUCTED.values()}
    assert names == {op.name for op in QUANT_OPS}


def test_constructor_parameters_accept_numpy_numbers() -> None:
    """numpy scalars are constants like Python numbers; a bool is no parameter."""
    x = Block(arg_types=[_X]).args[0]
    op = QuantizeOp(x, _Q, scale=np.float32(0.125), zero_point=np.int64(3))
    assert op.param("scale") == FloatAttr(0.125, f32)
    assert op.param("zero_point") == IntegerAttr(3, i32)
    with pytest.raises(TypeError, match="zero_point must be"):
        QuantizeOp(x, _Q, scale=0.5, zero_point=True)
