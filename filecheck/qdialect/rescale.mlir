// RUN: qopt %s | filecheck %s
// RUN: qopt %s | qopt - | filecheck %s
// RUN: qopt %s --print-op-generic | qopt - | filecheck %s

// Round trip of quant.rescale (docs/semantics.md section 12) in custom and generic form:
// every clause, constant and operand parameters, both multiplier widths.

// CHECK-LABEL: func.func @per_tensor_i32
// CHECK: quant.rescale %{{.*}} multiplier(1518500250) shift(38) out_zero_point(-3) : tensor<4x8xi32> -> tensor<4x8xi8>
func.func @per_tensor_i32(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  %r = quant.rescale %x multiplier(1518500250) shift(38) out_zero_point(-3) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// CHECK-LABEL: func.func @per_axis_operands
// CHECK: quant.rescale %{{.*}} multiplier(%{{.*}} : tensor<8xi32>) shift(%{{.*}} : tensor<8xi8>) per_axis(1) out_zero_point(%{{.*}} : tensor<i8>) rounding(double_round) : tensor<4x8xi32> -> tensor<4x8xi8>
func.func @per_axis_operands(%x: tensor<4x8xi32>, %m: tensor<8xi32>, %s: tensor<8xi8>, %z: tensor<i8>) -> tensor<4x8xi8> {
  %r = quant.rescale %x multiplier(%m : tensor<8xi32>) shift(%s : tensor<8xi8>) per_axis(1) out_zero_point(%z : tensor<i8>) rounding(double_round) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// CHECK-LABEL: func.func @per_axis_0_i16_unsigned_input
// CHECK: quant.rescale %{{.*}} multiplier(dense<[16384, 24576, 1, 32767]> : tensor<4xi16>) shift(dense<14> : tensor<4xi8>) per_axis(0) in_zero_point(-128) input_unsigned(true) saturate(false) : tensor<4x8xi8> -> tensor<4x8xi16>
func.func @per_axis_0_i16_unsigned_input(%x: tensor<4x8xi8>) -> tensor<4x8xi16> {
  %r = quant.rescale %x multiplier(dense<[16384, 24576, 1, 32767]> : tensor<4xi16>) shift(dense<14> : tensor<4xi8>) per_axis(0) in_zero_point(-128) input_unsigned(true) saturate(false) : tensor<4x8xi8> -> tensor<4x8xi16>
  func.return %r : tensor<4x8xi16>
}

// CHECK-LABEL: func.func @scale16_scalar
// CHECK: quant.rescale %{{.*}} multiplier(16384 : i16) shift(14) rounding(tonearest) range(-100, 100) : tensor<4x8xi32> -> tensor<4x8xi8>
func.func @scale16_scalar(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  %r = quant.rescale %x multiplier(16384 : i16) shift(14) rounding(tonearest) range(-100, 100) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// CHECK-LABEL: func.func @unsigned_types_and_flags
// CHECK: quant.rescale %{{.*}} multiplier(1073741824) shift(30) in_zero_point(200) out_zero_point(-1) rounding(upward) output_unsigned(true) : tensor<16xui8> -> tensor<16xi8>
// CHECK: quant.rescale %{{.*}} multiplier(1) shift(0) rounding(inexact_round) : tensor<16xi16> -> tensor<16xui32>
func.func @unsigned_types_and_flags(%x: tensor<16xui8>, %y: tensor<16xi16>) -> (tensor<16xi8>, tensor<16xui32>) {
  %a = quant.rescale %x multiplier(1073741824) shift(30) in_zero_point(200) out_zero_point(-1) rounding(upward) output_unsigned(true) : tensor<16xui8> -> tensor<16xi8>
  %b = quant.rescale %y multiplier(1) shift(0) rounding(inexact_round) : tensor<16xi16> -> tensor<16xui32>
  func.return %a, %b : tensor<16xi8>, tensor<16xui32>
}

// CHECK-LABEL: func.func @default_clauses_are_not_printed
// CHECK: quant.rescale %{{.*}} multiplier(1) shift(2) : tensor<i32> -> tensor<i8>
func.func @default_clauses_are_not_printed(%x: tensor<i32>) -> tensor<i8> {
  %r = quant.rescale %x multiplier(1) shift(2) per_tensor rounding(single_round) saturate(true) : tensor<i32> -> tensor<i8>
  func.return %r : tensor<i8>
}
