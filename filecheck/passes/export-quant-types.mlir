// RUN: qopt %s --split-input-file --export-quant-types | filecheck %s
// RUN: qopt %s --split-input-file --export-quant-types --convert-quant-types | filecheck %s --check-prefix=BACK

// A quantize adding the zero point before rounding is a qcast; its signless storage
// result is an scast of it.
// CHECK-LABEL: func.func @quantize
// CHECK: %[[C:.*]] = quant.qcast %{{.*}} : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 5.000000e-01:3>>
// CHECK: %[[S:.*]] = quant.scast %[[C]] : tensor<4x!quant.uniform<i8:f32, 5.000000e-01:3>> to tensor<4xi8>
// CHECK: func.return %[[S]] : tensor<4xi8>
// BACK-LABEL: func.func @quantize
// BACK: quant.quantize %{{.*}} scale(5.000000e-01) zero_point(3) zero_point_order(before_rounding) : tensor<4xf32> -> tensor<4xi8>
func.func @quantize(%x: tensor<4xf32>) -> tensor<4xi8> {
  %q = quant.quantize %x scale(0.5) zero_point(3) zero_point_order(before_rounding) : tensor<4xf32> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}

// -----

// Without a zero point the orders agree: the default quantize is expressible.
// CHECK-LABEL: func.func @quantize_no_zero_point
// CHECK: quant.qcast %{{.*}} : tensor<4xf32> to tensor<4x!quant.uniform<i8<-127:127>:f32, 2.500000e-01>>
func.func @quantize_no_zero_point(%x: tensor<4xf32>) -> tensor<4xi8> {
  %q = quant.quantize %x scale(0.25) range(-127, 127) : tensor<4xf32> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}

// -----

// An unsigned argument used only by dequantizes takes the quantized type (quant.scast
// takes signless integers only); per-axis parameters.
// CHECK-LABEL: func.func @dequantize_unsigned_argument
// CHECK-SAME: (%[[A:.*]]: tensor<2x3x!quant.uniform<u8:f32:1, {5.000000e-01:3,2.500000e-01:7,1.000000e+00}>>) -> tensor<2x3xf32>
// CHECK: quant.dcast %[[A]] : tensor<2x3x!quant.uniform<u8:f32:1, {5.000000e-01:3,2.500000e-01:7,1.000000e+00}>> to tensor<2x3xf32>
// BACK-LABEL: func.func @dequantize_unsigned_argument
// BACK-SAME: (%{{.*}}: tensor<2x3xui8>) -> tensor<2x3xf32>
func.func @dequantize_unsigned_argument(%q: tensor<2x3xui8>) -> tensor<2x3xf32> {
  %x = quant.dequantize %q scale(dense<[0.5, 0.25, 1.0]> : tensor<3xf32>) zero_point(dense<[3, 7, 0]> : tensor<3xui8>) per_axis(1) : tensor<2x3xui8> -> tensor<2x3xf32>
  func.return %x : tensor<2x3xf32>
}

// -----

// quantize -> dequantize of the same type: the dcast reads the qcast; block parameters
// are sub-channel ones.
// CHECK-LABEL: func.func @round_trip_blocks
// CHECK: %[[C:.*]] = quant.qcast %{{.*}} : tensor<4x6xf32> to tensor<4x6x!quant.uniform<i8:f32:{1:3}, {{\{\{}}5.000000e-01:1, 2.500000e-01}}>>
// CHECK-NEXT: quant.dcast %[[C]]
func.func @round_trip_blocks(%x: tensor<4x6xf32>) -> tensor<4x6xf32> {
  %q = quant.quantize %x scale(dense<[[0.5, 0.25]]> : tensor<1x2xf32>) zero_point(dense<[[1, 0]]> : tensor<1x2xi8>) block([4, 3]) zero_point_order(before_rounding) : tensor<4x6xf32> -> tensor<4x6xi8>
  %d = quant.dequantize %q scale(dense<[[0.5, 0.25]]> : tensor<1x2xf32>) zero_point(dense<[[1, 0]]> : tensor<1x2xi8>) block([4, 3]) : tensor<4x6xi8> -> tensor<4x6xf32>
  func.return %d : tensor<4x6xf32>
}

// -----

// A requantize is dcast then qcast (its definition: f32 in between).
// CHECK-LABEL: func.func @requantize
// CHECK: %[[S:.*]] = quant.scast %{{.*}} : tensor<4xi8> to tensor<4x!quant.uniform<i8:f32, 5.000000e-01:3>>
// CHECK: %[[D:.*]] = quant.dcast %[[S]] : tensor<4x!quant.uniform<i8:f32, 5.000000e-01:3>> to tensor<4xf32>
// CHECK: %[[C:.*]] = quant.qcast %[[D]] : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 2.500000e-01:-1>>
// CHECK: quant.scast %[[C]] : tensor<4x!quant.uniform<i8:f32, 2.500000e-01:-1>> to tensor<4xi8>
func.func @requantize(%q: tensor<4xi8>) -> tensor<4xi8> {
  %r = quant.requantize %q in(scale(0.5) zero_point(3)) out(scale(0.25) zero_point(-1)) zero_point_order(before_rounding) : tensor<4xi8> -> tensor<4xi8>
  func.return %r : tensor<4xi8>
}
