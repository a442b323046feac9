// RUN: qopt %s --split-input-file --verify-diagnostics | filecheck %s

// quant.rescale: one case per verifier message, each at the op's location.

func.func @input_type(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: rescale-invalid.mlir:[[# @LINE + 1]]:3: error: rescale input type must be an integer of 8, 16 or 32 bits (signless or unsigned), got f32
  %r = quant.rescale %x multiplier(1) shift(2) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @input_i4(%x: tensor<4x8xi4>) -> tensor<4x8xi8> {
  // CHECK: error: rescale input type must be an integer of 8, 16 or 32 bits (signless or unsigned), got i4
  %r = quant.rescale %x multiplier(1) shift(2) : tensor<4x8xi4> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @result_type(%x: tensor<4x8xi32>) -> tensor<4x8xsi8> {
  // CHECK: error: rescale result type must be an integer of 8, 16 or 32 bits (signless or unsigned), got si8
  %r = quant.rescale %x multiplier(1) shift(2) : tensor<4x8xi32> -> tensor<4x8xsi8>
  func.return %r : tensor<4x8xsi8>
}

// -----

func.func @shape(%x: tensor<4x8xi32>) -> tensor<4x4xi8> {
  // CHECK: error: result shape [4, 4] does not match the input shape [4, 8]
  %r = quant.rescale %x multiplier(1) shift(2) : tensor<4x8xi32> -> tensor<4x4xi8>
  func.return %r : tensor<4x4xi8>
}

// -----

func.func @per_block(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: rescale parameters are per_tensor or per_axis, got per_block
  %r = quant.rescale %x multiplier(dense<1> : tensor<4x2xi32>) shift(2) per_block(1, 4) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @axis(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: axis 2 is out of range for data of rank 2
  %r = quant.rescale %x multiplier(1) shift(2) per_axis(2) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @rounding(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: rescale rounding mode must be one of single_round, double_round, inexact_round, upward, tonearest, got 'nearest_even'
  %r = quant.rescale %x multiplier(1) shift(2) rounding(nearest_even) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @no_multiplier(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: multiplier is required
  %r = quant.rescale %x shift(2) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @multiplier_shape(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: multiplier shape [4] does not match the granularity per_axis: expected [8] for data of shape [4, 8]
  %r = quant.rescale %x multiplier(dense<1> : tensor<4xi32>) shift(2) per_axis(1) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @multiplier_type(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: multiplier must be i32 (apply_scale_32) or i16 (apply_scale_16), got i8
  %r = quant.rescale %x multiplier(1 : i8) shift(2) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @multiplier_negative(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: 32-bit multiplier -1 is outside [0, 2147483647]
  %r = quant.rescale %x multiplier(-1) shift(2) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @multiplier16_range(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: 16-bit multiplier -32768 is outside [0, 32767]
  %r = quant.rescale %x multiplier(dense<[1, 2, 3, 4, 5, 6, 7, -32768]> : tensor<8xi16>) shift(2) per_axis(1) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @no_shift(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: shift is required
  %r = quant.rescale %x multiplier(1) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @shift_shape(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: shift shape [8] does not match the granularity per_tensor: expected [] for data of shape [4, 8]
  %r = quant.rescale %x multiplier(1) shift(dense<2> : tensor<8xi8>) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @shift_type(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: shift must be a signless i8, i16 or i32, got i64
  %r = quant.rescale %x multiplier(1) shift(2 : i64) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @shift_high(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: shift 63 is outside [0, 62]
  %r = quant.rescale %x multiplier(1) shift(63) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @shift_negative(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: shift -1 is outside [0, 62]
  %r = quant.rescale %x multiplier(dense<1> : tensor<4xi32>) shift(dense<[1, 2, 3, -1]> : tensor<4xi8>) per_axis(0) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @double_round_16(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: rounding mode 'double_round' needs a 32-bit (i32) multiplier
  %r = quant.rescale %x multiplier(1 : i16) shift(2) rounding(double_round) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @in_zp_signed(%x: tensor<4x8xi8>) -> tensor<4x8xi8> {
  // CHECK: error: in zero point 128 is outside [-128, 127] for signed 8-bit storage
  %r = quant.rescale %x multiplier(1) shift(2) in_zero_point(128) : tensor<4x8xi8> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @out_zp_unsigned(%x: tensor<4x8xi32>) -> tensor<4x8xui8> {
  // CHECK: error: out zero point 256 is outside [-128, 255] for unsigned 8-bit storage
  %r = quant.rescale %x multiplier(1) shift(2) out_zero_point(256) : tensor<4x8xi32> -> tensor<4x8xui8>
  func.return %r : tensor<4x8xui8>
}

// -----

func.func @out_zp_unsigned_flag(%x: tensor<4x8xi32>) -> tensor<4x8xi16> {
  // CHECK: error: out zero point -32769 is outside [-32768, 65535] for unsigned 16-bit storage
  %r = quant.rescale %x multiplier(1) shift(2) out_zero_point(-32769) output_unsigned(true) : tensor<4x8xi32> -> tensor<4x8xi16>
  func.return %r : tensor<4x8xi16>
}

// -----

func.func @zp_list(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: out zero point must be one integer, got dense<1> : tensor<8xi8>
  %r = quant.rescale %x multiplier(1) shift(2) out_zero_point(dense<1> : tensor<8xi8>) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @range(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: storage range [-200, 0] must be a non-empty part of the output range [-128, 127]
  %r = quant.rescale %x multiplier(1) shift(2) range(-200, 0) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @range_unsigned(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: storage range [-1, 0] must be a non-empty part of the output range [0, 255]
  %r = quant.rescale %x multiplier(1) shift(2) output_unsigned(true) range(-1, 0) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @range_wrap(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: a narrow output range needs saturate(true)
  %r = quant.rescale %x multiplier(1) shift(2) range(-1, 0) saturate(false) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @zp_operand_type(%x: tensor<4x8xi32>, %z: tensor<i16>) -> tensor<4x8xi8> {
  // CHECK: error: out zero point operand must be a 0-d tensor of the storage type, tensor<i8>, got tensor<i16>
  %r = quant.rescale %x multiplier(1) shift(2) out_zero_point(%z : tensor<i16>) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @multiplier_operand_type(%x: tensor<4x8xi32>, %m: tensor<8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: multiplier must be i32 (apply_scale_32) or i16 (apply_scale_16), got f32
  %r = quant.rescale %x multiplier(%m : tensor<8xf32>) shift(2) per_axis(1) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @multiplier_literal_too_wide(%x: tensor<4x8xi32>) -> tensor<4x8xi8> {
  // CHECK: error: integer 40000 does not fit signed i16
  %r = quant.rescale %x multiplier(40000 : i16) shift(2) : tensor<4x8xi32> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}
