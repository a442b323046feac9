// RUN: qopt %s --split-input-file --verify-diagnostics | filecheck %s

// StableHLO's constraints on uniform_quantize / uniform_dequantize, one case each.

func.func @shape_mismatch(%x: tensor<4xf32>) {
  // CHECK: stablehlo-invalid.mlir:[[# @LINE + 1]]:3: error: operand and result must have the same shape
  %0 = "stablehlo.uniform_quantize"(%x) : (tensor<4xf32>) -> tensor<5x!quant.uniform<i8:f32, 0.5>>
  func.return
}

// -----

func.func @result_not_quantized(%x: tensor<4xf32>) {
  // CHECK: error: result must be a tensor of !quant.uniform, got tensor<4xi8>
  %0 = "stablehlo.uniform_quantize"(%x) : (tensor<4xf32>) -> tensor<4xi8>
  func.return
}

// -----

func.func @expressed_mismatch(%x: tensor<4xf16>) {
  // CHECK: error: expressed type f32 of the result must match the operand's f16
  %0 = "stablehlo.uniform_quantize"(%x) : (tensor<4xf16>) -> tensor<4x!quant.uniform<i8:f32, 0.5>>
  func.return
}

// -----

func.func @sub_channel(%x: tensor<4xf32>) {
  // CHECK: error: result: StableHLO takes per-tensor or per-axis parameters only
  %0 = "stablehlo.uniform_quantize"(%x) : (tensor<4xf32>) -> tensor<4x!quant.uniform<i8:f32:{0:2}, {0.5, 0.5}>>
  func.return
}

// -----

func.func @dequantize_result(%q: tensor<4x!quant.uniform<i8:f32, 0.5>>) {
  // CHECK: error: result element type f16 must be the operand's expressed type f32
  %0 = "stablehlo.uniform_dequantize"(%q) : (tensor<4x!quant.uniform<i8:f32, 0.5>>) -> tensor<4xf16>
  func.return
}

// -----

func.func @unranked(%q: tensor<*x!quant.uniform<i8:f32, 0.5>>) {
  // CHECK: error: operand and result must be ranked tensors
  %0 = "stablehlo.uniform_dequantize"(%q) : (tensor<*x!quant.uniform<i8:f32, 0.5>>) -> tensor<*xf32>
  func.return
}

// -----

func.func @signed_storage(%x: tensor<4xf32>) {
  // CHECK: error: result: StableHLO's quantized storage is signless or unsigned, not si8
  %0 = "stablehlo.uniform_quantize"(%x) : (tensor<4xf32>) -> tensor<4x!quant.uniform<si8:f32, 0.5>>
  func.return
}
