// RUN: qopt %s --split-input-file --verify-diagnostics --convert-quant-types | filecheck %s

// What qopt cannot compute is an error at the op that holds the type, never a silent change.

func.func @storage_i32(%x: tensor<4xf32>) {
  // CHECK: convert-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: qopt cannot compute storage i32 of !quant.uniform<i32:f32, 5.000000e-01>: it computes i2, i4, i8, i16 (signed or unsigned), f8E4M3FN, f8E5M2 and f4E2M1FN
  %0 = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<i32:f32, 0.5>>
  func.return
}

// -----

func.func @storage_u3(%x: tensor<4xf32>) {
  // CHECK: convert-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: qopt cannot compute storage u3
  %0 = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<u3:f32, 0.5>>
  func.return
}

// -----

func.func @expressed_f64(%x: tensor<4xf64>) {
  // CHECK: convert-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: qopt cannot compute expressed type f64
  %0 = quant.qcast %x : tensor<4xf64> to tensor<4x!quant.uniform<i8:f64, 0.5>>
  func.return
}

// -----

func.func @any_type(%x: tensor<4x!quant.any<i8:f32>>) {
  // CHECK: convert-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: !quant.any<i8:f32> has no scale or zero point to compute with
  %0 = quant.dcast %x : tensor<4x!quant.any<i8:f32>> to tensor<4xf32>
  func.return
}

// -----

func.func @scalar(%x: f32) {
  // CHECK: convert-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: qopt converts ranked tensors only, got f32
  %0 = quant.qcast %x : f32 to !quant.uniform<i8:f32, 0.5>
  func.return
}

// -----

func.func @unranked(%x: tensor<*xf32>) {
  // CHECK: convert-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: qopt converts ranked tensors only
  %0 = quant.qcast %x : tensor<*xf32> to tensor<*x!quant.uniform<i8:f32, 0.5>>
  func.return
}

// -----

func.func @float_storage_zero_point(%x: tensor<4xf32>) {
  // CHECK: convert-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: float storage takes no zero point and no storage range
  %0 = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<f8E5M2:f32, 0.5:3>>
  func.return
}

// -----

func.func @float_storage_range(%x: tensor<4xf32>) {
  // CHECK: convert-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: float storage takes no zero point and no storage range
  %0 = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<f8E5M2<-100:100>:f32, 0.5>>
  func.return
}

// -----

func.func @zero_point_beyond_storage(%x: tensor<4xf32>) {
  // CHECK: convert-quant-types-invalid.mlir:[[# @LINE + 1]]:3: error: zero point -200 of !quant.uniform<i8<-4:3>:f32, 5.000000e-01:-200> is not a value of its storage type [-128, 127]
  %0 = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<i8<-4:3>:f32, 0.5:-200>>
  func.return
}
