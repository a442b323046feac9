"""The API package's public names and the IR it builds (module sizes and layering:
tests/test_architecture.py)."""

from __future__ import annotations

import numpy as np

import qopt
import qopt.api
from qopt.api.building import OpCall
from qopt.api.params import granularity
from qopt.ir.diagnostics import verify_module
from qopt.ir.printing import print_ir
from qopt.qdialect.context import parse_module
from qopt.qdialect.ops import DynamicQuantizeOp, QuantizeOp, RequantizeOp


def test_api_exposes_the_public_names():
    for name in (*qopt._API_NAMES, "DEFAULT_KERNEL_CACHE_SIZE", "QuantError"):
        assert callable(getattr(qopt.api, name)) or name == "DEFAULT_KERNEL_CACHE_SIZE"
        assert name in qopt.api.__all__


def _same_as_parsed(module, text: str) -> None:
    verify_module(module)
    assert print_ir(module) == print_ir(parse_module(text))
    assert print_ir(module, generic=True) == print_ir(parse_module(text), generic=True)


def test_a_call_builds_the_function_qopt_parses():
    x = np.zeros((4, 8), np.float32)
    call = OpCall(QuantizeOp, x, "f32")
    gran = granularity(x.shape, axis=1, block_size=None, block_shape=None, per_axis=True)
    call.parameters(np.full(8, 0.5, np.float32), 3, gran, "i4")
    call.option("granularity", gran)
    call.option("rounding", "half_up")
    text = """func.func @main(%x: tensor<4x8xf32>, %a1: tensor<8xf32>, %a2: tensor<8xi4>) -> tensor<4x4xui8> {
  %r0 = quant.quantize %x scale(%a1 : tensor<8xf32>) zero_point(%a2 : tensor<8xi4>) per_axis(1) rounding(half_up) : tensor<4x8xf32> -> tensor<4x8xi4>
  %p = quant.pack %r0 : tensor<4x8xi4> -> tensor<4x4xui8>
  func.return %p : tensor<4x4xui8>
}"""
    module = call.build([((4, 8), "i4")], bytes_shape=(4, 4))
    _same_as_parsed(module, text)


def test_packed_input_and_attributes_build_as_parsed():
    q = np.zeros(16, np.uint8)
    call = OpCall(RequantizeOp, q, "i4", packed_input=((4, 8), "i4"))
    call.operand("in_scale", np.asarray(0.5, np.float32))
    call.operand("out_scale", np.asarray(0.25, np.float32))
    call.attribute("lowering", "lut")
    text = """func.func @main(%x: tensor<16xui8>, %a1: tensor<f32>, %a2: tensor<f32>) -> tensor<4x8xi8> {
  %u = quant.unpack %x : tensor<16xui8> -> tensor<4x8xi4>
  %r0 = quant.requantize %u in(scale(%a1 : tensor<f32>)) out(scale(%a2 : tensor<f32>)) {lowering = "lut"} : tensor<4x8xi4> -> tensor<4x8xi8>
  func.return %r0 : tensor<4x8xi8>
}"""
    _same_as_parsed(call.build([((4, 8), "i8")]), text)


def test_dynamic_quantize_results_build_as_parsed():
    x = np.zeros((2, 64), np.float32)
    call = OpCall(DynamicQuantizeOp, x, "f32")
    gran = granularity(x.shape, axis=None, block_size=32, block_shape=None, per_axis=True)
    call.option("granularity", gran)
    call.option("symmetric", False)
    call.option("eps", 1e-5)
    text = """func.func @main(%x: tensor<2x64xf32>) -> (tensor<2x64xui8>, tensor<2x2xf32>, tensor<2x2xui8>) {
  %r0, %r1, %r2 = quant.dynamic_quantize %x per_block(1, 32) symmetric(false) eps(1.0e-05) : tensor<2x64xf32> -> tensor<2x64xui8>, tensor<2x2xf32>, tensor<2x2xui8>
  func.return %r0, %r1, %r2 : tensor<2x64xui8>, tensor<2x2xf32>, tensor<2x2xui8>
}"""
    results = [((2, 64), "ui8"), ((2, 2), "f32"), ((2, 2), "ui8")]
    _same_as_parsed(call.build(results), text)
