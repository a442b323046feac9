// RUN: qopt %s --split-input-file --verify-diagnostics | filecheck %s

// Upstream MLIR's invalid quant types (parse-uniform-invalid.mlir, parse-any-invalid.mlir,
// parse-calibrated-invalid.mlir and the sub-channel rules): each is rejected with a
// located error of the same meaning (tests/interop/test_upstream_oracle.py checks that
// upstream's parser rejects each one too).

// unknown_type
// CHECK: upstream-types-invalid.mlir:{{[0-9]+}}:{{[0-9]+}}: error: {{.*}}quant.foobar
!qalias = !quant.foobar

// -----

// trailing_token
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}'>'
!qalias = !quant.uniform<i8<-4:3>:f32, 0.99872:127 23>

// -----

// storage_range_without_max
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}':'
!qalias = !quant.uniform<i8<16>:f32, 0.99872:127>

// -----

// missing_type_colon
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}':'
!qalias = !quant.uniform<i8<-4:3>f32, 0.99872:127>

// -----

// missing_comma
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}','
!qalias = !quant.uniform<i8<-4:3>:f32 0.99872:127>

// -----

// storage_prefix_int
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type prefix
!qalias = !quant.uniform<int8<-4:3>:f32, 0.99872:127>

// -----

// storage_without_width
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type prefix
!qalias = !quant.uniform<i<-4:3>:f32, 0.99872:127>

// -----

// storage_too_wide
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type size: 33
!qalias = !quant.uniform<i33:f32, 0.99872:127>

// -----

// storage_u0
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type size: 0
!qalias = !quant.uniform<u0:f32, 0.99872:127>

// -----

// storage_negative_width
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type prefix
!qalias = !quant.uniform<i-1<-4:3>:f32, 0.99872:127>

// -----

// storage_huge_width
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type size
!qalias = !quant.uniform<i123123123120<-4:3>:f32, 0.99872:127>

// -----

// storage_float_fnuz
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}quantized storage is
!qalias = !quant.uniform<f8E4M3FNUZ:f32, 1.0>

// -----

// storage_bf16
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}quantized storage is
!qalias = !quant.uniform<bf16:f32, 1.0>

// -----

// range_decreasing
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage min and storage max: (2:1)
!qalias = !quant.uniform<i8<2:1>:f32, 0.99872:127>

// -----

// range_empty
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage min and storage max: (1:1)
!qalias = !quant.uniform<i8<1:1>:f32, 0.99872:127>

// -----

// range_above_type
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type maximum: 9
!qalias = !quant.uniform<i4<-1:9>:f32, 0.99872:127>

// -----

// range_below_type
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type minimum: -9
!qalias = !quant.uniform<i4<-9:1>:f32, 0.99872:127>

// -----

// range_unsigned_negative
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type minimum: -1
!qalias = !quant.uniform<u8<-1:3>:f32, 1.0>

// -----

// range_beyond_float_max
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type minimum: -60000
!qalias = !quant.uniform<f8E5M2<-60000:57344>:f32, 1.0>

// -----

// scale_not_a_number
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}floating point literal
!qalias = !quant.uniform<i8<-4:3>:f32, abc:127>

// -----

// zero_point_separator
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}'>'
!qalias = !quant.uniform<i8<-4:3>:f32, 0.1abc>

// -----

// zero_point_missing
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}integer
!qalias = !quant.uniform<i8<-4:3>:f32, 0.1:>

// -----

// zero_point_not_integer
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}integer
!qalias = !quant.uniform<i8<-4:3>:f32, 0.1:abc>

// -----

// scale_decimal_integer
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}unexpected decimal integer literal for a floating point value
!qalias = !quant.uniform<i8:f32, 1:2>

// -----

// expressed_f33
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}expected a float expressed type
!qalias = !quant.uniform<i8<-4:3>:f33, 0.99872:127>

// -----

// scale_negative
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}out of expressed type range
!qalias = !quant.uniform<i8<-4:3>:f32, -1.0:127>

// -----

// scale_zero
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}out of expressed type range
!qalias = !quant.uniform<i8:f32, 0.0>

// -----

// scale_negative_zero
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}out of expressed type range
!qalias = !quant.uniform<i8:f32, -0.0>

// -----

// scale_below_f32_subnormal
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}out of expressed type range
!qalias = !quant.uniform<i8:f32, 1.0e-46>

// -----

// scale_infinite
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}out of expressed type range
!qalias = !quant.uniform<i8:f32, 0x7FF0000000000000>

// -----

// scale_f16_underflow
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}out of expressed type range
!qalias = !quant.uniform<i8:f16, 5.8e-8>

// -----

// scale_f16_overflow
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}out of expressed type range
!qalias = !quant.uniform<i8:f16, 6.6e4>

// -----

// scale_f16_underflow_per_axis
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}out of expressed type range
!qalias = !quant.uniform<i8:f16:1, {2.0,5.8e-8}>

// -----

// scale_f16_overflow_per_axis
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}out of expressed type range
!qalias = !quant.uniform<i8:f16:1, {2.0,6.6e4}>

// -----

// axis_missing
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}integer
!qalias = !quant.uniform<i8<-4:3>:f32:, {2.000000e+02:-19.987200e-01:1}>

// -----

// list_without_axis
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}floating point literal
!qalias = !quant.uniform<i8<-4:3>:f32, {2.000000e+02,-19.987200e-01:1}>

// -----

// axis_negative
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal quantized dimension: -1
!qalias = !quant.uniform<i8:f32:-1, {2.0,3.0:1}>

// -----

// per_axis_empty
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}floating point literal
!qalias = !quant.uniform<i8:f32:1, {}>

// -----

// block_size_zero
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal block size: 0
!qalias = !quant.uniform<i8:f32:{0:0}, {1.0}>

// -----

// block_axis_negative
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal quantized dimension: -1
!qalias = !quant.uniform<i8:f32:{-1:2}, {1.0}>

// -----

// sub_channel_ragged
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}ranks are not consistent between elements
!qalias = !quant.uniform<i8:f32:{0:2,1:2}, {{1.0},{2.0, 3.0}}>

// -----

// any_range_without_max
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}':'
!qalias = !quant.any<i8<16>:f32>

// -----

// any_missing_type_colon
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}'>'
!qalias = !quant.any<i8<-4:3>f32>

// -----

// any_storage_prefix
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type prefix
!qalias = !quant.any<int8<-4:3>:f32>

// -----

// any_storage_without_width
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type prefix
!qalias = !quant.any<i<-4:3>:f32>

// -----

// any_storage_too_wide
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type size: 33
!qalias = !quant.any<i33:f32>

// -----

// any_storage_1024
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type size: 1024
!qalias = !quant.any<i1024<-4:3>:f32>

// -----

// any_range_decreasing
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage min and storage max: (2:1)
!qalias = !quant.any<i8<2:1>:f32>

// -----

// any_range_empty
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage min and storage max: (1:1)
!qalias = !quant.any<i8<1:1>:f32>

// -----

// any_range_above_type
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type maximum: 9
!qalias = !quant.any<i4<-1:9>:f32>

// -----

// any_range_below_type
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal storage type minimum: -9
!qalias = !quant.any<i4<-9:1>:f32>

// -----

// any_integer_expressed
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}expected a float expressed type
!qalias = !quant.any<i8:i32>

// -----

// any_with_scale
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}'>'
!qalias = !quant.any<i8:f32, 1.0>

// -----

// calibrated_without_max
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}':'
!qalias = !quant.calibrated<f32<-0.998>>

// -----

// calibrated_integer_expressed
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}expected a float expressed type
!qalias = !quant.calibrated<i8<-4:3>>

// -----

// calibrated_decreasing
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal min and max: (1.000000e+00:-1.000000e+00)
!qalias = !quant.calibrated<f32<1.0:-1.0>>

// -----

// calibrated_empty
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}illegal min and max: (1.000000e+00:1.000000e+00)
!qalias = !quant.calibrated<f32<1.0:1.0>>

// -----

// calibrated_without_range
// CHECK: upstream-types-invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}'<'
!qalias = !quant.calibrated<f32>
