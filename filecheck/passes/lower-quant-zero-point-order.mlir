// RUN: qopt %s --lower-quant | filecheck %s

// before_rounding adds the zero point in f32, rounds, clamps; NaN gives 0 (after the clamp).
// CHECK-LABEL: func.func @quantize_before_rounding
// CHECK: %[[V:.*]] = arith.divf
// CHECK-NEXT: %[[T:.*]] = arith.addf %[[V]], %{{.*}} : f32
// CHECK-NEXT: %[[R:.*]] = math.roundeven %[[T]] : f32
// CHECK: %[[LO:.*]] = arith.maximumf %[[R]], %{{.*}} : f32
// CHECK: %[[C:.*]] = arith.minimumf %[[LO]], %{{.*}} : f32
// CHECK-NEXT: %[[N:.*]] = arith.cmpf uno, %[[C]], %[[C]] : f32
// CHECK-NEXT: %[[Z:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT: arith.select %[[N]], %[[Z]], %[[C]] : f32
func.func @quantize_before_rounding(%x: tensor<4xf32>) -> tensor<4xi8> {
  %q = quant.quantize %x scale(0.5) zero_point(3) zero_point_order(before_rounding) : tensor<4xf32> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}

// The default rounds first, then adds the zero point; NaN gives the zero point.
// CHECK-LABEL: func.func @quantize_after_rounding
// CHECK: %[[V:.*]] = arith.divf
// CHECK-NEXT: %[[R:.*]] = math.roundeven %[[V]] : f32
// CHECK-NEXT: %[[T:.*]] = arith.addf %[[R]], %{{.*}} : f32
func.func @quantize_after_rounding(%x: tensor<4xf32>) -> tensor<4xi8> {
  %q = quant.quantize %x scale(0.5) zero_point(3) : tensor<4xf32> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}

// fold-quant carries the order into the requantize it makes of dq -> q.
// RUN: qopt %s --fold-quant | filecheck %s --check-prefix=FOLD
// FOLD-LABEL: func.func @fuse_keeps_order
// FOLD: quant.requantize %{{.*}} in(scale(2.500000e-01)) out(scale(5.000000e-01) zero_point(3)) zero_point_order(before_rounding)
func.func @fuse_keeps_order(%q: tensor<4xi8>) -> tensor<4xi8> {
  %x = quant.dequantize %q scale(0.25) : tensor<4xi8> -> tensor<4xf32>
  %r = quant.quantize %x scale(0.5) zero_point(3) zero_point_order(before_rounding) : tensor<4xf32> -> tensor<4xi8>
  func.return %r : tensor<4xi8>
}
