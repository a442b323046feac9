// RUN: qopt %s | filecheck %s
// RUN: qopt %s | qopt - | filecheck %s
// RUN: qopt %s --print-op-generic | qopt - | filecheck %s

// zero_point_order: the default (after_rounding, ONNX) prints nothing; before_rounding
// (upstream MLIR qcast, StableHLO uniform_quantize) round-trips on quantize and requantize.

// CHECK-LABEL: func.func @quantize_default_order
// CHECK: quant.quantize %{{.*}} scale(5.000000e-01) zero_point(3) : tensor<4xf32> -> tensor<4xi8>
func.func @quantize_default_order(%x: tensor<4xf32>) -> tensor<4xi8> {
  %q = quant.quantize %x scale(0.5) zero_point(3) zero_point_order(after_rounding) : tensor<4xf32> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}

// CHECK-LABEL: func.func @quantize_before_rounding
// CHECK: quant.quantize %{{.*}} scale(5.000000e-01) zero_point(3) zero_point_order(before_rounding) : tensor<4xf32> -> tensor<4xi8>
func.func @quantize_before_rounding(%x: tensor<4xf32>) -> tensor<4xi8> {
  %q = quant.quantize %x scale(0.5) zero_point(3) zero_point_order(before_rounding) : tensor<4xf32> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}

// CHECK-LABEL: func.func @requantize_before_rounding
// CHECK: quant.requantize %{{.*}} in(scale(2.500000e-01) zero_point(1)) out(scale(5.000000e-01) zero_point(-3)) zero_point_order(before_rounding) : tensor<4xi8> -> tensor<4xi8>
func.func @requantize_before_rounding(%q: tensor<4xi8>) -> tensor<4xi8> {
  %r = quant.requantize %q in(scale(0.25) zero_point(1)) out(scale(0.5) zero_point(-3)) zero_point_order(before_rounding) : tensor<4xi8> -> tensor<4xi8>
  func.return %r : tensor<4xi8>
}
