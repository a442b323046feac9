// RUN: qopt %s --split-input-file --convert-quant-types | filecheck %s
// RUN: qopt %s --split-input-file --convert-quant-types --fold-quant --lower-quant | filecheck %s --check-prefix=LOWER

// qcast: the type's parameters become constants; the zero point is added before
// rounding (zero_point_order(before_rounding)); the function returns plain storage.
// CHECK-LABEL: func.func @qcast_per_layer
// CHECK-SAME: (%[[X:.*]]: tensor<4xf32>) -> tensor<4xi8>
// CHECK: %[[Q:.*]] = quant.quantize %[[X]] scale(5.000000e-01) zero_point(3) zero_point_order(before_rounding) : tensor<4xf32> -> tensor<4xi8>
// CHECK: func.return %[[Q]] : tensor<4xi8>
// LOWER-LABEL: func.func @qcast_per_layer
// LOWER: linalg.generic
// LOWER: arith.addf
// LOWER-NEXT: math.roundeven
!q = !quant.uniform<i8:f32, 0.5:3>
func.func @qcast_per_layer(%x: tensor<4xf32>) -> tensor<4x!q> {
  %0 = quant.qcast %x : tensor<4xf32> to tensor<4x!q>
  func.return %0 : tensor<4x!q>
}

// -----

// No zero point: the two orders agree, so none is named.
// CHECK-LABEL: func.func @qcast_no_zero_point
// CHECK: quant.quantize %{{.*}} scale(2.500000e-01) : tensor<4xf32> -> tensor<4xi8>
!q = !quant.uniform<i8:f32, 0.25>
func.func @qcast_no_zero_point(%x: tensor<4xf32>) -> tensor<4x!q> {
  %0 = quant.qcast %x : tensor<4xf32> to tensor<4x!q>
  func.return %0 : tensor<4x!q>
}

// -----

// Unsigned storage (u8 and ui8 alike) is qopt's ui8; a narrow range becomes range(...).
// CHECK-LABEL: func.func @qcast_unsigned_narrow
// CHECK: quant.quantize %{{.*}} scale(1.000000e+00) zero_point(128) zero_point_order(before_rounding) range(1, 255) : tensor<2x3xf32> -> tensor<2x3xui8>
// CHECK: quant.quantize %{{.*}} scale(1.000000e+00) zero_point(7) zero_point_order(before_rounding) : tensor<2x3xf32> -> tensor<2x3xui8>
func.func @qcast_unsigned_narrow(%x: tensor<2x3xf32>) -> (tensor<2x3x!quant.uniform<u8<1:255>:f32, 1.0:128>>, tensor<2x3x!quant.uniform<ui8:f32, 1.0:7>>) {
  %0 = quant.qcast %x : tensor<2x3xf32> to tensor<2x3x!quant.uniform<u8<1:255>:f32, 1.0:128>>
  %1 = quant.qcast %x : tensor<2x3xf32> to tensor<2x3x!quant.uniform<ui8:f32, 1.0:7>>
  func.return %0, %1 : tensor<2x3x!quant.uniform<u8<1:255>:f32, 1.0:128>>, tensor<2x3x!quant.uniform<ui8:f32, 1.0:7>>
}

// -----

// Per axis: per_axis(a) with dense scale and zero point constants.
// CHECK-LABEL: func.func @per_axis
// CHECK: %[[Q:.*]] = quant.quantize %{{.*}} scale(dense<[5.000000e-01, 2.500000e-01, 1.000000e+00]> : tensor<3xf32>) zero_point(dense<[3, -7, 0]> : tensor<3xi8>) per_axis(1) zero_point_order(before_rounding) : tensor<2x3xf32> -> tensor<2x3xi8>
// CHECK: quant.dequantize %[[Q]] scale(dense<[5.000000e-01, 2.500000e-01, 1.000000e+00]> : tensor<3xf32>) zero_point(dense<[3, -7, 0]> : tensor<3xi8>) per_axis(1) : tensor<2x3xi8> -> tensor<2x3xf32>
!q = !quant.uniform<i8:f32:1, {0.5:3, 0.25:-7, 1.0}>
func.func @per_axis(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = quant.qcast %x : tensor<2x3xf32> to tensor<2x3x!q>
  %1 = quant.dcast %0 : tensor<2x3x!q> to tensor<2x3xf32>
  func.return %1 : tensor<2x3xf32>
}

// -----

// Sub-channel: block([...]); an axis without a block size is one block.
// CHECK-LABEL: func.func @sub_channel
// CHECK: quant.quantize %{{.*}} scale(dense<{{\[\[}}5.000000e-01, 2.500000e-01]]> : tensor<1x2xf32>) zero_point(dense<{{\[\[}}1, 0]]> : tensor<1x2xi4>) block([4, 3]) zero_point_order(before_rounding) : tensor<4x6xf32> -> tensor<4x6xi4>
!q = !quant.uniform<i4:f32:{1:3}, {{0.5:1, 0.25}}>
func.func @sub_channel(%x: tensor<4x6xf32>) -> tensor<4x6x!q> {
  %0 = quant.qcast %x : tensor<4x6xf32> to tensor<4x6x!q>
  func.return %0 : tensor<4x6x!q>
}

// -----

// scast disappears; arguments and results of a quantized type take its storage type
// (upstream's strip-func-quant-types).
// CHECK-LABEL: func.func @scast_and_signature
// CHECK-SAME: (%[[A:.*]]: tensor<4xi8>, %[[B:.*]]: tensor<4xi8>) -> (tensor<4xi8>, tensor<4xf32>)
// CHECK: %[[D:.*]] = quant.dequantize %[[B]] scale(5.000000e-01) zero_point(3) : tensor<4xi8> -> tensor<4xf32>
// CHECK: func.return %[[A]], %[[D]]
!q = !quant.uniform<i8:f32, 0.5:3>
func.func @scast_and_signature(%a: tensor<4xi8>, %b: tensor<4x!q>) -> (tensor<4x!q>, tensor<4xf32>) {
  %0 = quant.scast %a : tensor<4xi8> to tensor<4x!q>
  %1 = quant.dcast %b : tensor<4x!q> to tensor<4xf32>
  func.return %0, %1 : tensor<4x!q>, tensor<4xf32>
}

// -----

// Float storage: qopt's float quantize (no zero point).
// CHECK-LABEL: func.func @float_storage
// CHECK: quant.quantize %{{.*}} scale(2.000000e+00) : tensor<4xf32> -> tensor<4xf8E4M3FN>
func.func @float_storage(%x: tensor<4xf32>) -> tensor<4x!quant.uniform<f8E4M3FN:f32, 2.0>> {
  %0 = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<f8E4M3FN:f32, 2.0>>
  func.return %0 : tensor<4x!quant.uniform<f8E4M3FN:f32, 2.0>>
}

// -----

// StableHLO: uniform_quantize of floats, of a quantized tensor (a requantize), and
// uniform_dequantize.
// CHECK-LABEL: func.func @stablehlo
// CHECK: %[[Q:.*]] = quant.quantize %{{.*}} scale(5.000000e-01) zero_point(3) zero_point_order(before_rounding) : tensor<4xf32> -> tensor<4xi8>
// CHECK: %[[R:.*]] = quant.requantize %[[Q]] in(scale(5.000000e-01) zero_point(3)) out(scale(2.500000e-01) zero_point(-1)) zero_point_order(before_rounding) : tensor<4xi8> -> tensor<4xi8>
// CHECK: quant.dequantize %[[R]] scale(2.500000e-01) zero_point(-1) : tensor<4xi8> -> tensor<4xf32>
// LOWER-LABEL: func.func @stablehlo
// LOWER-NOT: stablehlo
!a = !quant.uniform<i8:f32, 0.5:3>
!b = !quant.uniform<i8:f32, 0.25:-1>
func.func @stablehlo(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "stablehlo.uniform_quantize"(%x) : (tensor<4xf32>) -> tensor<4x!a>
  %1 = "stablehlo.uniform_quantize"(%0) : (tensor<4x!a>) -> tensor<4x!b>
  %2 = "stablehlo.uniform_dequantize"(%1) : (tensor<4x!b>) -> tensor<4xf32>
  func.return %2 : tensor<4xf32>
}
