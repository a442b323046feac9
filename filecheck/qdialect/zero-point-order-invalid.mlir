// RUN: qopt %s --split-input-file --verify-diagnostics | filecheck %s

func.func @unknown_order(%x: tensor<4xf32>) -> tensor<4xi8> {
  // CHECK: zero-point-order-invalid.mlir:[[# @LINE + 1]]:3: error: zero_point_order must be one of after_rounding, before_rounding, got 'sideways'
  %q = quant.quantize %x scale(1.0) zero_point_order(sideways) : tensor<4xf32> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}

// -----

func.func @float_storage(%x: tensor<4xf32>) -> tensor<4xf8E4M3FN> {
  // CHECK: error: zero_point_order(before_rounding) applies to integer storage only, not to f8E4M3FN
  %q = quant.quantize %x scale(1.0) zero_point_order(before_rounding) : tensor<4xf32> -> tensor<4xf8E4M3FN>
  func.return %q : tensor<4xf8E4M3FN>
}

// -----

func.func @minval_form(%x: tensor<4xf32>) -> tensor<4xui8> {
  // CHECK: error: zero_point_order(before_rounding) does not apply to the minval form
  %q = quant.quantize %x scale(1.0) minval(-2.0) zero_point_order(before_rounding) : tensor<4xf32> -> tensor<4xui8>
  func.return %q : tensor<4xui8>
}

// -----

func.func @requantize_float_output(%q: tensor<4xi8>) -> tensor<4xf8E5M2> {
  // CHECK: error: zero_point_order(before_rounding) applies to integer storage only, not to f8E5M2
  %r = quant.requantize %q in(scale(1.0)) out(scale(1.0)) zero_point_order(before_rounding) : tensor<4xi8> -> tensor<4xf8E5M2>
  func.return %r : tensor<4xf8E5M2>
}
