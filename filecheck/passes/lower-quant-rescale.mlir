// RUN: qopt %s --lower-quant | filecheck %s

// lower-quant of quant.rescale (passes/lowering_rescale.py): one generic of i64 arithmetic,
// (p + r) >> s where p + r provably fits i64, else (p >> s) + (p mod 2^s >= 2^s - r); then
// the zero point and the clamp. Constant parameters are body constants; per-axis
// constants an i64 table.

// i32 input, zero point 0: |p| <= 2^62, the direct form.
// CHECK-LABEL: func.func @per_tensor_single_round
// CHECK: linalg.generic
// CHECK-DAG: %[[M:.*]] = arith.constant 1518500250 : i64
// CHECK-DAG: %[[S:.*]] = arith.constant 38 : i64
// CHECK: %[[X:.*]] = arith.extsi %{{.*}} : i32 to i64
// CHECK: %[[P:.*]] = arith.muli %[[X]], %[[M]] : i64
// CHECK: %[[POW:.*]] = arith.shli %{{.*}}, %[[S]] : i64
// CHECK: %[[HALF:.*]] = arith.shrui %[[POW]], %{{.*}} : i64
// CHECK: %[[SUM:.*]] = arith.addi %[[P]], %[[HALF]] : i64
// CHECK: %[[T:.*]] = arith.shrsi %[[SUM]], %[[S]] : i64
// CHECK: arith.addi %[[T]], %{{.*}} : i64
// CHECK: arith.maxsi
// CHECK: arith.minsi
// CHECK: arith.trunci %{{.*}} : i64 to i8
// CHECK-NOT: quant.
func.func @per_tensor_single_round(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  %r = quant.rescale %x multiplier(1518500250) shift(38) out_zero_point(-3) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// i32 input minus a nonzero zero point needs 33 bits: p + r could overflow i64, so the
// split form, which never adds r to p.
// CHECK-LABEL: func.func @i32_with_zero_point_split_form
// CHECK: %[[P:.*]] = arith.muli %{{.*}}, %{{.*}} : i64
// CHECK: %[[T:.*]] = arith.shrsi %[[P]], %{{.*}} : i64
// CHECK: %[[REM:.*]] = arith.andi %[[P]], %{{.*}} : i64
// CHECK: %[[C:.*]] = arith.cmpi sge, %[[REM]], %{{.*}} : i64
// CHECK: %[[INC:.*]] = arith.extui %[[C]] : i1 to i64
// CHECK: arith.addi %[[T]], %[[INC]] : i64
func.func @i32_with_zero_point_split_form(%x: tensor<4x8xi32>, %zi: tensor<i32>) -> tensor<4x8xi8> {
  %r = quant.rescale %x multiplier(2147483647) shift(62) in_zero_point(%zi : tensor<i32>) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// A runtime shift is clamped to [0, 62]. double_round: +-2^30 when the shift exceeds 31.
// CHECK-LABEL: func.func @per_axis_operands_double_round
// CHECK: linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>]
// CHECK: %[[S0:.*]] = arith.extsi %{{.*}} : i8 to i64
// CHECK: %[[S1:.*]] = arith.maxsi %[[S0]], %{{.*}} : i64
// CHECK: arith.minsi %[[S1]], %{{.*}} : i64
// CHECK: arith.cmpi sgt, %{{.*}}, %{{.*}} : i64
// CHECK: arith.constant 1073741824 : i64
func.func @per_axis_operands_double_round(%x: tensor<4x8xi32>, %m: tensor<8xi32>, %s: tensor<8xi8>) -> tensor<4x8xi8> {
  %r = quant.rescale %x multiplier(%m : tensor<8xi32>) shift(%s : tensor<8xi8>) per_axis(1) rounding(double_round) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// Unsigned input: zero-extended, the zero point's bit pattern (-128 of u8) is 128; a
// per-axis constant multiplier is an i64 table read along axis 0; saturate(false) wraps.
// CHECK-LABEL: func.func @unsigned_per_axis_0_wrap
// CHECK: %[[TABLE:.*]] = arith.constant dense<[16384, 24576, 1, 2]> : tensor<4xi64>
// CHECK: linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0, d1)>]
// CHECK-DAG: %[[ZP:.*]] = arith.constant 128 : i64
// CHECK: %[[A:.*]] = arith.extui %{{.*}} : i8 to i64
// CHECK: arith.subi %[[A]], %[[ZP]] : i64
// CHECK-NOT: arith.maxsi
// CHECK: arith.trunci %{{.*}} : i64 to i16
func.func @unsigned_per_axis_0_wrap(%x: tensor<4x8xi8>) -> tensor<4x8xi16> {
  %r = quant.rescale %x multiplier(dense<[16384, 24576, 1, 2]> : tensor<4xi16>) shift(dense<14> : tensor<4xi8>) per_axis(0) in_zero_point(-128) input_unsigned(true) saturate(false) : tensor<4x8xi8> -> tensor<4x8xi16>
  func.return %r : tensor<4x8xi16>
}

// tonearest: r = (2^s + sign(p)) >> 1, one less for a negative product.
// CHECK-LABEL: func.func @tonearest
// CHECK: %[[P:.*]] = arith.muli
// CHECK: %[[SIGN:.*]] = arith.shrsi %[[P]], %{{.*}} : i64
// CHECK: %[[R:.*]] = arith.addi %{{.*}}, %[[SIGN]] : i64
// CHECK: arith.shrui %[[R]], %{{.*}} : i64
func.func @tonearest(%x: tensor<16xi16>) -> tensor<16xui8> {
  %r = quant.rescale %x multiplier(16384 : i16) shift(14) rounding(tonearest) : tensor<16xi16> -> tensor<16xui8>
  func.return %r : tensor<16xui8>
}
