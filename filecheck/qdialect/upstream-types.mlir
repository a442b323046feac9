// RUN: qopt %s --split-input-file | filecheck %s
// RUN: qopt %s --split-input-file | qopt - --split-input-file | filecheck %s

// Upstream MLIR's quant types (mlir/test/Dialect/Quant/parse-uniform.mlir and the
// any / calibrated forms): each is accepted, and printed as upstream prints it
// (tests/interop/test_upstream_oracle.py checks the same list against upstream's parser).

// CHECK-LABEL: func.func @all_per_layer_params
// CHECK-SAME: !quant.uniform<i8<-8:7>:f32, 9.987200e-01:127>
!qalias = !quant.uniform<i8<-8:7>:f32, 0.99872:127>
func.func @all_per_layer_params(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @trailing_whitespace
// CHECK-SAME: !quant.uniform<i8<-8:7>:f32, 9.987200e-01:127>
!qalias = !quant.uniform<i8<-8:7>:f32, 0.99872:127  >
func.func @trailing_whitespace(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @required_params_only
// CHECK-SAME: !quant.uniform<u8:f32, 9.987200e-01>
!qalias = !quant.uniform<u8:f32, 0.99872>
func.func @required_params_only(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @exponent_minus
// CHECK-SAME: !quant.uniform<u8:f32, 2.000000e-02>
!qalias = !quant.uniform<u8:f32, 2.0e-2>
func.func @exponent_minus(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @exponent_plus
// CHECK-SAME: !quant.uniform<u8:f32, 2.000000e+02>
!qalias = !quant.uniform<u8:f32, 2.0e+2>
func.func @exponent_plus(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @storage_i16
// CHECK-SAME: !quant.uniform<i16:f32, 2.000000e+02>
!qalias = !quant.uniform<i16:f32, 2.0e+2>
func.func @storage_i16(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @storage_u16
// CHECK-SAME: !quant.uniform<u16:f32, 2.000000e+02>
!qalias = !quant.uniform<u16:f32, 2.0e+2>
func.func @storage_u16(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @storage_i32
// CHECK-SAME: !quant.uniform<i32:f32, 2.000000e+02>
!qalias = !quant.uniform<i32:f32, 2.0e+2>
func.func @storage_i32(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @storage_u32
// CHECK-SAME: !quant.uniform<u32:f32, 2.000000e+02>
!qalias = !quant.uniform<u32:f32, 2.0e+2>
func.func @storage_u32(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @storage_i1
// CHECK-SAME: !quant.uniform<i1:f32, 5.000000e-01>
!qalias = !quant.uniform<i1:f32, 0.5>
func.func @storage_i1(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @storage_u4_range
// CHECK-SAME: !quant.uniform<u4<1:15>:f32, 5.000000e-01:8>
!qalias = !quant.uniform<u4<1:15>:f32, 0.5:8>
func.func @storage_u4_range(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @hex_scale
// CHECK-SAME: !quant.uniform<u8:f32, 0x41646ABBA0000000:128>
!qalias = !quant.uniform<u8:f32, 0x41646ABBA0000000:128>
func.func @hex_scale(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @expressed_f16
// CHECK-SAME: !quant.uniform<u8:f16, 2.000000e+02>
!qalias = !quant.uniform<u8:f16, 2.0e+2>
func.func @expressed_f16(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @expressed_f64
// CHECK-SAME: !quant.uniform<u8:f64, 2.000000e+02>
!qalias = !quant.uniform<u8:f64, 2.0e+2>
func.func @expressed_f64(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @expressed_bf16
// CHECK-SAME: !quant.uniform<u8:bf16, 2.000000e+02>
!qalias = !quant.uniform<u8:bf16, 2.0e+2>
func.func @expressed_bf16(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @explicit_unsigned
// CHECK-SAME: !quant.uniform<ui8:f32, 1.000000e+00>
!qalias = !quant.uniform<ui8:f32, 1.0>
func.func @explicit_unsigned(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @explicit_signed
// CHECK-SAME: !quant.uniform<si8:f32, 1.000000e+00>
!qalias = !quant.uniform<si8:f32, 1.0>
func.func @explicit_signed(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @zero_point_outside_range
// CHECK-SAME: !quant.uniform<i8<-4:3>:f32, 1.000000e+00:-100>
!qalias = !quant.uniform<i8<-4:3>:f32, 1.0:-100>
func.func @zero_point_outside_range(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @smallest_f32_scale
// CHECK-SAME: !quant.uniform<i8:f32, 1.500000e-45>
!qalias = !quant.uniform<i8:f32, 1.5e-45>
func.func @smallest_f32_scale(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @per_axis_affine
// CHECK-SAME: !quant.uniform<u8:f32:1, {2.000000e+02:-120,9.987200e-01:127}>
!qalias = !quant.uniform<u8:f32:1, {2.0e+2:-120,0.99872:127}>
func.func @per_axis_affine(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @per_axis_fixedpoint
// CHECK-SAME: !quant.uniform<i8:f32:1, {2.000000e+02,9.987200e-01}>
!qalias = !quant.uniform<i8:f32:1, {2.0e+2,0.99872}>
func.func @per_axis_fixedpoint(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @per_axis_mixed
// CHECK-SAME: !quant.uniform<i8:f32:0, {2.000000e+02,9.987200e-01:120}>
!qalias = !quant.uniform<i8:f32:0, {2.0e+2,0.99872:120}>
func.func @per_axis_mixed(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @per_axis_one_scale
// CHECK-SAME: !quant.uniform<i8:f32:3, {5.000000e-01:1}>
!qalias = !quant.uniform<i8:f32:3, {0.5:1}>
func.func @per_axis_one_scale(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @sub_channel_mixed
// CHECK-SAME: !quant.uniform<u8:f32:{0:1, 1:2}, {{[{][{]}}2.000000e+00:120, 3.000000e+00:127}, {4.000000e+00, 5.000000e+00}}>
!qalias = !quant.uniform<u8:f32:{0:1, 1:2}, {{2.0:120,3.0:127}, {4.0,5.0}}>
func.func @sub_channel_mixed(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @sub_channel_empty_blocks
// CHECK-SAME: !quant.uniform<u8:f32:{}, {{[{][{]}}2.000000e+00:120, 3.000000e+00:127}, {4.000000e+00, 5.000000e+00}}>
!qalias = !quant.uniform<u8:f32:{}, {{2.0:120,3.0:127}, {4.0,5.0}}>
func.func @sub_channel_empty_blocks(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @sub_channel_three_dims
// CHECK-SAME: !quant.uniform<i8:f32:{2:4}, {{[{][{][{]}}5.000000e-01}}, {{[{][{]}}2.500000e-01:-3}}}>
!qalias = !quant.uniform<i8:f32:{2:4}, {{{0.5}}, {{0.25:-3}}}>
func.func @sub_channel_three_dims(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @sub_channel_unsigned_zero_point_bits
// CHECK-SAME: !quant.uniform<u8:f32:{1:3}, {{[{][{]}}5.000000e-01:-125}}>
!qalias = !quant.uniform<u8:f32:{1:3}, {{0.5:131}}>
func.func @sub_channel_unsigned_zero_point_bits(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @f8e5m2_default_range
// CHECK-SAME: !quant.uniform<f8E5M2:f32, 9.987200e-01:127>
!qalias = !quant.uniform<f8E5M2<-57344:57344>:f32, 0.99872:127  >
func.func @f8e5m2_default_range(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @f8e5m2
// CHECK-SAME: !quant.uniform<f8E5M2:f32, 2.000000e+02>
!qalias = !quant.uniform<f8E5M2:f32, 2.0e+2>
func.func @f8e5m2(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @f8e5m2_narrow
// CHECK-SAME: !quant.uniform<f8E5M2<-100:100>:f32, 2.000000e+02>
!qalias = !quant.uniform<f8E5M2<-100:100>:f32, 2.0e+2>
func.func @f8e5m2_narrow(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @f8e4m3fn_default_range
// CHECK-SAME: !quant.uniform<f8E4M3FN:f32, 9.987200e-01:127>
!qalias = !quant.uniform<f8E4M3FN<-448:448>:f32, 0.99872:127  >
func.func @f8e4m3fn_default_range(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @f8e4m3fn
// CHECK-SAME: !quant.uniform<f8E4M3FN:f32, 2.000000e+02>
!qalias = !quant.uniform<f8E4M3FN:f32, 2.0e+2>
func.func @f8e4m3fn(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @f4e2m1fn_default_range
// CHECK-SAME: !quant.uniform<f4E2M1FN:f32, 9.987200e-01:127>
!qalias = !quant.uniform<f4E2M1FN<-6:6>:f32, 0.99872:127  >
func.func @f4e2m1fn_default_range(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @f4e2m1fn
// CHECK-SAME: !quant.uniform<f4E2M1FN:f32, 2.000000e+02>
!qalias = !quant.uniform<f4E2M1FN:f32, 2.0e+2>
func.func @f4e2m1fn(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @expressed_f8
// CHECK-SAME: !quant.uniform<i8:f8E4M3FN, 1.000000e+00>
!qalias = !quant.uniform<i8:f8E4M3FN, 1.0>
func.func @expressed_f8(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @any_storage_only
// CHECK-SAME: !quant.any<i8>
!qalias = !quant.any<i8>
func.func @any_storage_only(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @any_unsigned
// CHECK-SAME: !quant.any<u4>
!qalias = !quant.any<u4>
func.func @any_unsigned(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @any_expressed
// CHECK-SAME: !quant.any<i8:f32>
!qalias = !quant.any<i8:f32>
func.func @any_expressed(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @any_range
// CHECK-SAME: !quant.any<i8<-8:7>:f32>
!qalias = !quant.any<i8<-8:7>:f32>
func.func @any_range(%arg0: !qalias) {
  func.return
}

// -----

// CHECK-LABEL: func.func @calibrated
// CHECK-SAME: !quant.calibrated<f32<-5.000000e-01:1.232100e+00>>
!qalias = !quant.calibrated<f32<-0.5:1.2321>>
func.func @calibrated(%arg0: !qalias) {
  func.return
}
