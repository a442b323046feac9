// RUN: qopt %s --split-input-file --verify-diagnostics --export-quant-types | filecheck %s

// What upstream's types and ops cannot say is an error at the op, with the reason.

func.func @onnx_order_zero_point(%x: tensor<4xf32>) -> tensor<4xi8> {
  // CHECK: export-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: not expressible in upstream MLIR: this quantize rounds, then adds the zero point (ONNX order); quant.qcast adds it before rounding
  %q = quant.quantize %x scale(0.5) zero_point(3) : tensor<4xf32> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}

// -----

func.func @runtime_scale(%x: tensor<4xf32>, %s: tensor<f32>) -> tensor<4xi8> {
  // CHECK: export-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: not expressible in upstream MLIR: scale is a runtime value; upstream types hold constants
  %q = quant.quantize %x scale(%s : tensor<f32>) : tensor<4xf32> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}

// -----

func.func @rounding_mode(%x: tensor<4xf32>) -> tensor<4xi8> {
  // CHECK: export-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: not expressible in upstream MLIR: rounding(half_up)
  %q = quant.quantize %x scale(0.5) rounding(half_up) : tensor<4xf32> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}

// -----

func.func @minval_form(%x: tensor<4xf32>) -> tensor<4xui8> {
  // CHECK: export-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: not expressible in upstream MLIR: the minval form has no upstream type
  %q = quant.quantize %x scale(0.5) minval(-1.0) : tensor<4xf32> -> tensor<4xui8>
  func.return %q : tensor<4xui8>
}

// -----

func.func @partial_block(%x: tensor<5xf32>) -> tensor<5xi8> {
  // CHECK: export-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: not expressible in upstream MLIR: blocks [3] must divide the shape [5] upstream
  %q = quant.quantize %x scale(dense<[0.5, 0.25]> : tensor<2xf32>) per_block(0, 3) : tensor<5xf32> -> tensor<5xi8>
  func.return %q : tensor<5xi8>
}

// -----

func.func @unsigned_result_used_elsewhere(%x: tensor<4xf32>) -> tensor<4xui8> {
  // CHECK: export-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: not expressible in upstream MLIR: its tensor<4xui8> result has unsigned storage
  %q = quant.quantize %x scale(0.5) : tensor<4xf32> -> tensor<4xui8>
  %p = quant.requantize %q in(scale(0.5)) out(scale(0.5)) rounding(half_up) : tensor<4xui8> -> tensor<4xui8>
  func.return %p : tensor<4xui8>
}

// -----

func.func @dynamic_quantize(%x: tensor<4xf32>) -> tensor<4xi8> {
  // CHECK: export-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: not expressible in upstream MLIR: quant.dynamic_quantize has no upstream equivalent
  %q, %s = quant.dynamic_quantize %x : tensor<4xf32> -> tensor<4xi8>, tensor<f32>
  func.return %q : tensor<4xi8>
}

// -----

func.func @f16_scale_not_exact(%x: tensor<4xf16>) -> tensor<4xi8> {
  // CHECK: export-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: not expressible in upstream MLIR: a scale is not exact in the expressed type f16
  %q = quant.quantize %x scale(0.1) : tensor<4xf16> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}
