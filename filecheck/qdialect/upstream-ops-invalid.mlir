// RUN: qopt %s --split-input-file --verify-diagnostics | filecheck %s

// Upstream MLIR's verifier rules of quant.qcast / dcast / scast (mlir/test/Dialect/Quant/
// invalid.mlir, plus sub-channel): one case per rule, a located error of the same meaning
// (tests/interop/test_upstream_oracle.py checks that upstream rejects each one too).

func.func @dcast_input_not_quantized(%arg0: f32) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input must be a quantized scalar or tensor
  %0 = quant.dcast %arg0 : f32 to f32
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @dcast_result_not_float(%arg0: !qalias) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: result must be a float scalar or a tensor of floats
  %0 = quant.dcast %arg0 : !qalias to !qalias
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @dcast_scalar_to_tensor(%arg0: !qalias) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input and result must be both scalars or both tensors of the same shape
  %0 = quant.dcast %arg0 : !qalias to tensor<f32>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @dcast_ranked_to_unranked(%arg0: tensor<!qalias>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input and result must be both scalars or both tensors of the same shape
  %0 = quant.dcast %arg0 : tensor<!qalias> to tensor<*xf32>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @dcast_static_to_dynamic(%arg0: tensor<2x3x!qalias>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input and result must be both scalars or both tensors of the same shape
  %0 = quant.dcast %arg0 : tensor<2x3x!qalias> to tensor<?x3xf32>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @dcast_float_mismatch(%arg0: !qalias) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: expressed type f32 of the quantized type must match the float type f64
  %0 = quant.dcast %arg0 : !qalias to f64
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0}>
func.func @dcast_per_axis_scalar(%arg0: !qalias) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: scalar types may not use per-axis quantization
  %0 = quant.dcast %arg0 : !qalias to f32
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0}>
func.func @dcast_per_axis_rank(%arg0: tensor<2x3x!qalias>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: quantized dimension 2 must be less than the tensor rank 2
  %0 = quant.dcast %arg0 : tensor<2x3x!qalias> to tensor<2x3xf32>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>
func.func @dcast_per_axis_size(%arg0: tensor<2x3x4x!qalias>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: quantized dimension size 4 does not match the number of scales 3
  %0 = quant.dcast %arg0 : tensor<2x3x4x!qalias> to tensor<2x3x4xf32>
  func.return
}

// -----

func.func @qcast_result_not_quantized(%arg0: f32) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: result must be a quantized scalar or tensor
  %0 = quant.qcast %arg0 : f32 to f32
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @qcast_input_not_float(%arg0: !qalias) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input must be a float scalar or a tensor of floats
  %0 = quant.qcast %arg0 : !qalias to !qalias
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @qcast_tensor_to_scalar(%arg0: tensor<f32>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input and result must be both scalars or both tensors of the same shape
  %0 = quant.qcast %arg0 : tensor<f32> to !qalias
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @qcast_ranked_to_unranked(%arg0: tensor<f32>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input and result must be both scalars or both tensors of the same shape
  %0 = quant.qcast %arg0 : tensor<f32> to tensor<*x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @qcast_static_to_dynamic(%arg0: tensor<2x3xf32>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input and result must be both scalars or both tensors of the same shape
  %0 = quant.qcast %arg0 : tensor<2x3xf32> to tensor<?x3x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @qcast_float_mismatch(%arg0: f64) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: expressed type f32 of the quantized type must match the float type f64
  %0 = quant.qcast %arg0 : f64 to !qalias
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0}>
func.func @qcast_per_axis_scalar(%arg0: f32) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: scalar types may not use per-axis quantization
  %0 = quant.qcast %arg0 : f32 to !qalias
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0}>
func.func @qcast_per_axis_rank(%arg0: tensor<2x3xf32>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: quantized dimension 2 must be less than the tensor rank 2
  %0 = quant.qcast %arg0 : tensor<2x3xf32> to tensor<2x3x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>
func.func @qcast_per_axis_size(%arg0: tensor<2x3x4xf32>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: quantized dimension size 4 does not match the number of scales 3
  %0 = quant.qcast %arg0 : tensor<2x3x4xf32> to tensor<2x3x4x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @scast_signed_input(%arg0: si32) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input must be a signless integer or a quantized type
  %0 = quant.scast %arg0 : si32 to !qalias
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @scast_signed_result(%arg0: !qalias) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: result must be a signless integer or a quantized type
  %0 = quant.scast %arg0 : !qalias to si32
  func.return
}

// -----

func.func @scast_both_integers(%arg0: i8) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input must be integer and result quantized, or the other way round
  %0 = quant.scast %arg0 : i8 to i8
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @scast_both_quantized(%arg0: !qalias) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input must be integer and result quantized, or the other way round
  %0 = quant.scast %arg0 : !qalias to !qalias
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @scast_tensor_to_scalar(%arg0: tensor<i8>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input and result must be both scalars or both tensors of the same shape
  %0 = quant.scast %arg0 : tensor<i8> to !qalias
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @scast_ranked_to_unranked(%arg0: tensor<i8>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input and result must be both scalars or both tensors of the same shape
  %0 = quant.scast %arg0 : tensor<i8> to tensor<*x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @scast_static_to_dynamic(%arg0: tensor<2x3xi8>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: input and result must be both scalars or both tensors of the same shape
  %0 = quant.scast %arg0 : tensor<2x3xi8> to tensor<?x3x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32, 1.0>
func.func @scast_storage_mismatch(%arg0: i32) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: storage type of !quant.uniform<i8:f32, 1.000000e+00> must match the integer type i32
  %0 = quant.scast %arg0 : i32 to !qalias
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0}>
func.func @scast_per_axis_scalar(%arg0: i8) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: scalar types may not use per-axis quantization
  %0 = quant.scast %arg0 : i8 to !qalias
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0}>
func.func @scast_per_axis_rank(%arg0: tensor<2x3xi8>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: quantized dimension 2 must be less than the tensor rank 2
  %0 = quant.scast %arg0 : tensor<2x3xi8> to tensor<2x3x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>
func.func @scast_per_axis_size(%arg0: tensor<2x3x4xi8>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: quantized dimension size 4 does not match the number of scales 3
  %0 = quant.scast %arg0 : tensor<2x3x4xi8> to tensor<2x3x4x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<ui8:f32, 1.0>
func.func @scast_explicit_unsigned_storage(%arg0: tensor<4xi8>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: storage type of {{.*}} must match the integer type i8
  %0 = quant.scast %arg0 : tensor<4xi8> to tensor<4x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:{1:2}, {{1.0, 2.0}}>
func.func @sub_channel_scalar(%arg0: f32) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: scalar types may not use sub-channel quantization
  %0 = quant.qcast %arg0 : f32 to !qalias
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:{1:2}, {{1.0, 2.0}}>
func.func @sub_channel_unranked(%arg0: tensor<*xf32>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: a tensor of a sub-channel quantized type must be ranked
  %0 = quant.qcast %arg0 : tensor<*xf32> to tensor<*x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:{1:2}, {{1.0, 2.0}}>
func.func @sub_channel_not_divisible(%arg0: tensor<3x5xf32>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: tensor dimension size 5 at axis 1 must be divisible by the block size 2
  %0 = quant.qcast %arg0 : tensor<3x5xf32> to tensor<3x5x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:{1:2}, {{1.0, 2.0}}>
func.func @sub_channel_rank(%arg0: tensor<3x4x2xf32>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: rank 2 of the scales must match the rank 3 of the tensor
  %0 = quant.qcast %arg0 : tensor<3x4x2xf32> to tensor<3x4x2x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:{1:2}, {{1.0, 2.0}}>
func.func @sub_channel_scale_count(%arg0: tensor<3x8xf32>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: dimension size 2 of the scales at axis 1 must be the tensor's dimension 8 divided by the block size 2, 4
  %0 = quant.qcast %arg0 : tensor<3x8xf32> to tensor<3x8x!qalias>
  func.return
}

// -----

!qalias = !quant.uniform<i8:f32:{2:2}, {{1.0}}>
func.func @sub_channel_axis_beyond_rank(%arg0: tensor<3x4xf32>) {
  // CHECK: upstream-ops-invalid.mlir:[[# @LINE + 1]]:3: error: quantized dimension 2 must be less than the tensor rank 2
  %0 = quant.qcast %arg0 : tensor<3x4xf32> to tensor<3x4x!qalias>
  func.return
}
