// RUN: qopt %s --split-input-file | filecheck %s
// RUN: qopt %s --split-input-file | qopt - --split-input-file | filecheck %s
// RUN: qopt %s --split-input-file --print-op-generic | qopt - --split-input-file | filecheck %s

// Upstream MLIR's quant.qcast / dcast / scast (mlir/test/Dialect/Quant/ops.mlir, plus
// sub-channel): scalars, ranked static and dynamic, unranked, per-axis, sub-channel.

// CHECK-LABEL: func.func @dcast_scalar
// CHECK: quant.dcast %arg0 :
!qalias = !quant.uniform<i8:f32, 1.0>
func.func @dcast_scalar(%arg0: !qalias) {
  %0 = quant.dcast %arg0 : !qalias to f32
  func.return
}

// -----

// CHECK-LABEL: func.func @dcast_ranked
// CHECK: quant.dcast %arg0 :
!qalias = !quant.uniform<i8:f32, 1.0>
func.func @dcast_ranked(%arg0: tensor<2x?x4x!qalias>) {
  %0 = quant.dcast %arg0 : tensor<2x?x4x!qalias> to tensor<2x?x4xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @dcast_unranked
// CHECK: quant.dcast %arg0 :
!qalias = !quant.uniform<i8:f32, 1.0>
func.func @dcast_unranked(%arg0: tensor<*x!qalias>) {
  %0 = quant.dcast %arg0 : tensor<*x!qalias> to tensor<*xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @dcast_per_axis_static
// CHECK: quant.dcast %arg0 :
!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>
func.func @dcast_per_axis_static(%arg0: tensor<1x2x3x!qalias>) {
  %0 = quant.dcast %arg0 : tensor<1x2x3x!qalias> to tensor<1x2x3xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @dcast_per_axis_dynamic
// CHECK: quant.dcast %arg0 :
!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>
func.func @dcast_per_axis_dynamic(%arg0: tensor<?x?x?x!qalias>) {
  %0 = quant.dcast %arg0 : tensor<?x?x?x!qalias> to tensor<?x?x?xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @dcast_per_axis_unranked
// CHECK: quant.dcast %arg0 :
!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>
func.func @dcast_per_axis_unranked(%arg0: tensor<*x!qalias>) {
  %0 = quant.dcast %arg0 : tensor<*x!qalias> to tensor<*xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @dcast_sub_channel
// CHECK: quant.dcast %arg0 :
!qalias = !quant.uniform<i8:f32:{1:2}, {{1.0, 2.0}}>
func.func @dcast_sub_channel(%arg0: tensor<3x4x!qalias>) {
  %0 = quant.dcast %arg0 : tensor<3x4x!qalias> to tensor<3x4xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @qcast_scalar
// CHECK: quant.qcast %arg0 :
!qalias = !quant.uniform<i8:f32, 1.0>
func.func @qcast_scalar(%arg0: f32) {
  %0 = quant.qcast %arg0 : f32 to !qalias
  func.return
}

// -----

// CHECK-LABEL: func.func @qcast_ranked
// CHECK: quant.qcast %arg0 :
!qalias = !quant.uniform<i8:f32, 1.0>
func.func @qcast_ranked(%arg0: tensor<2x?x4xf32>) {
  %0 = quant.qcast %arg0 : tensor<2x?x4xf32> to tensor<2x?x4x!qalias>
  func.return
}

// -----

// CHECK-LABEL: func.func @qcast_unranked
// CHECK: quant.qcast %arg0 :
!qalias = !quant.uniform<i8:f32, 1.0>
func.func @qcast_unranked(%arg0: tensor<*xf32>) {
  %0 = quant.qcast %arg0 : tensor<*xf32> to tensor<*x!qalias>
  func.return
}

// -----

// CHECK-LABEL: func.func @qcast_per_axis_static
// CHECK: quant.qcast %arg0 :
!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>
func.func @qcast_per_axis_static(%arg0: tensor<1x2x3xf32>) {
  %0 = quant.qcast %arg0 : tensor<1x2x3xf32> to tensor<1x2x3x!qalias>
  func.return
}

// -----

// CHECK-LABEL: func.func @qcast_per_axis_dynamic
// CHECK: quant.qcast %arg0 :
!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>
func.func @qcast_per_axis_dynamic(%arg0: tensor<?x?x?xf32>) {
  %0 = quant.qcast %arg0 : tensor<?x?x?xf32> to tensor<?x?x?x!qalias>
  func.return
}

// -----

// CHECK-LABEL: func.func @qcast_per_axis_unranked
// CHECK: quant.qcast %arg0 :
!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>
func.func @qcast_per_axis_unranked(%arg0: tensor<*xf32>) {
  %0 = quant.qcast %arg0 : tensor<*xf32> to tensor<*x!qalias>
  func.return
}

// -----

// CHECK-LABEL: func.func @qcast_sub_channel
// CHECK: quant.qcast %arg0 :
!qalias = !quant.uniform<i8:f32:{1:2}, {{1.0, 2.0}}>
func.func @qcast_sub_channel(%arg0: tensor<5x4xf32>) {
  %0 = quant.qcast %arg0 : tensor<5x4xf32> to tensor<5x4x!qalias>
  func.return
}

// -----

// CHECK-LABEL: func.func @scast_scalar
// CHECK: quant.scast %arg0 :
!qalias = !quant.uniform<i8:f32, 1.0>
func.func @scast_scalar(%arg0: i8) {
  %0 = quant.scast %arg0 : i8 to !qalias
  %1 = quant.scast %0 : !qalias to i8
  func.return
}

// -----

// CHECK-LABEL: func.func @scast_ranked
// CHECK: quant.scast %arg0 :
!qalias = !quant.uniform<i8:f32, 1.0>
func.func @scast_ranked(%arg0: tensor<2x?x4xi8>) {
  %0 = quant.scast %arg0 : tensor<2x?x4xi8> to tensor<2x?x4x!qalias>
  %1 = quant.scast %0 : tensor<2x?x4x!qalias> to tensor<2x?x4xi8>
  func.return
}

// -----

// CHECK-LABEL: func.func @scast_unranked
// CHECK: quant.scast %arg0 :
!qalias = !quant.uniform<i8:f32, 1.0>
func.func @scast_unranked(%arg0: tensor<*xi8>) {
  %0 = quant.scast %arg0 : tensor<*xi8> to tensor<*x!qalias>
  %1 = quant.scast %0 : tensor<*x!qalias> to tensor<*xi8>
  func.return
}

// -----

// CHECK-LABEL: func.func @scast_per_axis_static
// CHECK: quant.scast %arg0 :
!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>
func.func @scast_per_axis_static(%arg0: tensor<1x2x3xi8>) {
  %0 = quant.scast %arg0 : tensor<1x2x3xi8> to tensor<1x2x3x!qalias>
  %1 = quant.scast %0 : tensor<1x2x3x!qalias> to tensor<1x2x3xi8>
  func.return
}

// -----

// CHECK-LABEL: func.func @scast_per_axis_dynamic
// CHECK: quant.scast %arg0 :
!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>
func.func @scast_per_axis_dynamic(%arg0: tensor<?x?x?xi8>) {
  %0 = quant.scast %arg0 : tensor<?x?x?xi8> to tensor<?x?x?x!qalias>
  %1 = quant.scast %0 : tensor<?x?x?x!qalias> to tensor<?x?x?xi8>
  func.return
}

// -----

// CHECK-LABEL: func.func @scast_per_axis_unranked
// CHECK: quant.scast %arg0 :
!qalias = !quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>
func.func @scast_per_axis_unranked(%arg0: tensor<*xi8>) {
  %0 = quant.scast %arg0 : tensor<*xi8> to tensor<*x!qalias>
  %1 = quant.scast %0 : tensor<*x!qalias> to tensor<*xi8>
  func.return
}

// -----

// CHECK-LABEL: func.func @scast_unsigned_keyword
// CHECK: quant.scast %arg0 :
!qalias = !quant.uniform<u8:f32, 1.0:128>
func.func @scast_unsigned_keyword(%arg0: tensor<4xi8>) {
  %0 = quant.scast %arg0 : tensor<4xi8> to tensor<4x!qalias>
  func.return
}
