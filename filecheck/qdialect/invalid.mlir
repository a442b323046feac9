// RUN: qopt %s --split-input-file --verify-diagnostics | filecheck %s

// One case per verifier message: each states the rule and the offending value.

func.func @axis_out_of_range(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:3: error: axis 2 is out of range for data of rank 2
  %q = quant.quantize %x scale(1.0) per_axis(2) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @block_size_zero(%x: tensor<4x8xf32>, %s: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: block size must be >= 1, got 0
  %q = quant.quantize %x scale(%s : tensor<4x8xf32>) per_block(1, 0) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @nd_block_size(%x: tensor<4x8xf32>, %s: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: block size must be >= 1 or -1, got -3
  %q = quant.quantize %x scale(%s : tensor<4x8xf32>) block([1, -3]) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @nd_block_rank(%x: tensor<4x8xf32>, %s: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: block shape [2] has rank 1, but the data has rank 2
  %q = quant.quantize %x scale(%s : tensor<4x8xf32>) block([2]) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @per_axis_param_shape(%x: tensor<4x8xf32>, %s: tensor<4xf32>) -> tensor<4x8xi8> {
  // CHECK: error: scale shape [4] does not match the granularity per_axis: expected [8] for data of shape [4, 8]
  %q = quant.quantize %x scale(%s : tensor<4xf32>) per_axis(1) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @per_block_param_shape(%x: tensor<4x70xi8>, %s: tensor<4x2xf32>) -> tensor<4x70xf32> {
  // CHECK: error: scale shape [4, 2] does not match the granularity per_block: expected [4, 3] for data of shape [4, 70]
  %q = quant.dequantize %x scale(%s : tensor<4x2xf32>) per_block(1, 32) : tensor<4x70xi8> -> tensor<4x70xf32>
  func.return %q : tensor<4x70xf32>
}

// -----

func.func @zero_point_param_shape(%x: tensor<4x8xf32>, %z: tensor<8xi8>) -> tensor<4x8xi8> {
  // CHECK: error: zero point shape [8] does not match the granularity per_tensor: expected [] for data of shape [4, 8]
  %q = quant.quantize %x scale(1.0) zero_point(%z : tensor<8xi8>) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @zero_point_out_of_range(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: zero point 300 is outside the storage range [-128, 127] of i8
  %q = quant.quantize %x scale(1.0) zero_point(300) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @zero_point_outside_narrow_range(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: zero point -128 is outside the storage range [-127, 127] of i8
  %q = quant.quantize %x scale(1.0) zero_point(-128) range(-127, 127) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @zero_point_for_float_storage(%x: tensor<4x8xf32>) -> tensor<4x8xf8E4M3FN> {
  // CHECK: error: zero point given for float storage format f8E4M3FN: float storage takes no zero point
  %q = quant.quantize %x scale(1.0) zero_point(1) : tensor<4x8xf32> -> tensor<4x8xf8E4M3FN>
  func.return %q : tensor<4x8xf8E4M3FN>
}

// -----

func.func @zero_point_type(%x: tensor<4x8xf32>, %z: tensor<i16>) -> tensor<4x8xi8> {
  // CHECK: error: zero point element type i16 does not match the storage type i8
  %q = quant.quantize %x scale(1.0) zero_point(%z : tensor<i16>) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @scale_not_positive(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: constant scale must be finite and > 0, got 0.0
  %q = quant.quantize %x scale(0.0) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @scale_not_finite(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: constant scale must be finite and > 0, got inf
  %q = quant.quantize %x scale(1.0e39) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @scale_missing(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: scale is required
  %q = quant.quantize %x : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @scale_twice(%x: tensor<4x8xf32>, %s: tensor<f32>) -> tensor<4x8xi8> {
  // CHECK: error: scale is given both as an operand and as a constant
  %q = "quant.quantize"(%x, %s) <{scale_const = 1.0 : f32, operandSegmentSizes = array<i32: 1, 1, 0, 0>}> : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @scale_format(%x: tensor<4x8xf32>, %s: tensor<f8E5M2>) -> tensor<4x8xi8> {
  // CHECK: error: scale element type must be one of f32, f16, bf16, f8E4M3FN, f8E8M0FNU, got f8E5M2
  %q = quant.quantize %x scale(%s : tensor<f8E5M2>) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @e8m0_as_storage(%x: tensor<4x8xf32>) -> tensor<4x8xf8E8M0FNU> {
  // CHECK: error: f8E8M0FNU is only allowed as a scale format, not as result type
  %q = quant.quantize %x scale(1.0) : tensor<4x8xf32> -> tensor<4x8xf8E8M0FNU>
  func.return %q : tensor<4x8xf8E8M0FNU>
}

// -----

func.func @storage_type(%x: tensor<4x8xf32>) -> tensor<4x8xi32> {
  // CHECK: error: result type must be an integer i2/i4/i8/i16 (signless or unsigned) or one of f8E4M3FN, f8E5M2, f4E2M1FN, got i32
  %q = quant.quantize %x scale(1.0) : tensor<4x8xf32> -> tensor<4x8xi32>
  func.return %q : tensor<4x8xi32>
}

// -----

func.func @expressed_type(%x: tensor<4x8xf64>) -> tensor<4x8xi8> {
  // CHECK: error: input type must be f32, f16 or bf16, got f64
  %q = quant.quantize %x scale(1.0) : tensor<4x8xf64> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @result_shape(%x: tensor<4x8xf32>) -> tensor<8x4xi8> {
  // CHECK: error: result shape [8, 4] does not match the input shape [4, 8]
  %q = quant.quantize %x scale(1.0) : tensor<4x8xf32> -> tensor<8x4xi8>
  func.return %q : tensor<8x4xi8>
}

// -----

func.func @storage_range(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: storage range [-200, 127] must be a non-empty part of the range [-128, 127] of i8
  %q = quant.quantize %x scale(1.0) range(-200, 127) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @storage_range_float(%x: tensor<4x8xf32>) -> tensor<4x8xf8E4M3FN> {
  // CHECK: error: a storage range applies to integer storage only, not to f8E4M3FN
  %q = quant.quantize %x scale(1.0) range(-1, 1) : tensor<4x8xf32> -> tensor<4x8xf8E4M3FN>
  func.return %q : tensor<4x8xf8E4M3FN>
}

// -----

func.func @rounding_unknown(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: rounding mode must be one of nearest_even, nearest_away, half_up, toward_zero, got 'stochastic'
  %q = quant.quantize %x scale(1.0) rounding(stochastic) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @rounding_float(%x: tensor<4x8xf32>) -> tensor<4x8xf8E5M2> {
  // CHECK: error: rounding mode 'half_up' applies to integer storage only; f8E5M2 always rounds to nearest even
  %q = quant.quantize %x scale(1.0) rounding(half_up) : tensor<4x8xf32> -> tensor<4x8xf8E5M2>
  func.return %q : tensor<4x8xf8E5M2>
}

// -----

func.func @minval_with_zero_point(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: the minval form takes no zero point
  %q = quant.quantize %x scale(1.0) zero_point(1) minval(-3.0) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @minval_float(%x: tensor<4x8xf32>) -> tensor<4x8xf8E4M3FN> {
  // CHECK: error: the minval form needs integer storage
  %q = quant.quantize %x scale(1.0) minval(-3.0) : tensor<4x8xf32> -> tensor<4x8xf8E4M3FN>
  func.return %q : tensor<4x8xf8E4M3FN>
}

// -----

func.func @dequantize_result(%q: tensor<4x8xi8>) -> tensor<4x8xi32> {
  // CHECK: error: result type must be f32, f16 or bf16, got i32
  %x = quant.dequantize %q scale(1.0) : tensor<4x8xi8> -> tensor<4x8xi32>
  func.return %x : tensor<4x8xi32>
}

// -----

func.func @double_quant_type(%q: tensor<16xf4E2M1FN>, %s: tensor<1xf8E4M3FN>, %dq: tensor<1xf32>) -> tensor<16xf32> {
  // CHECK: error: double quant scale must be a tensor<f32>, got tensor<1xf32>
  %x = quant.dequantize %q scale(%s : tensor<1xf8E4M3FN>) double_quant(%dq : tensor<1xf32>) per_block(0, 16) : tensor<16xf4E2M1FN> -> tensor<16xf32>
  func.return %x : tensor<16xf32>
}

// -----

func.func @requantize_in_scale(%q: tensor<4x8xi8>) -> tensor<4x8xi8> {
  // CHECK: error: in scale is required
  %r = quant.requantize %q in(zero_point(1)) out(scale(1.0)) : tensor<4x8xi8> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @requantize_out_shape(%q: tensor<4x8xi8>, %s: tensor<4xf32>) -> tensor<4x8xi8> {
  // CHECK: error: out scale shape [4] does not match the granularity per_axis: expected [8] for data of shape [4, 8]
  %r = quant.requantize %q in(scale(1.0)) out(scale(%s : tensor<4xf32>) per_axis(1)) : tensor<4x8xi8> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// -----

func.func @dynamic_scale_format(%x: tensor<4x32xf32>) {
  // CHECK: error: scale format f8E8M0FNU needs float data storage, got i8
  %d, %s = quant.dynamic_quantize %x per_block(1, 32) : tensor<4x32xf32> -> tensor<4x32xi8>, tensor<4x1xf8E8M0FNU>
  func.return
}

// -----

func.func @dynamic_scale_type(%x: tensor<4x32xf32>) {
  // CHECK: error: scale element type must be one of f32, f16, bf16, f8E4M3FN, f8E8M0FNU, got f8E5M2
  %d, %s = quant.dynamic_quantize %x per_block(1, 32) : tensor<4x32xf32> -> tensor<4x32xf8E4M3FN>, tensor<4x1xf8E5M2>
  func.return
}

// -----

func.func @dynamic_scale_shape(%x: tensor<4x32xf32>) {
  // CHECK: error: scale shape [4, 2] does not match the granularity per_block: expected [4, 1] for data of shape [4, 32]
  %d, %s = quant.dynamic_quantize %x per_block(1, 32) : tensor<4x32xf32> -> tensor<4x32xf8E4M3FN>, tensor<4x2xf32>
  func.return
}

// -----

func.func @dynamic_scale_rounding(%x: tensor<4x32xf32>) {
  // CHECK: error: scale_rounding must be floor or rceil, got 'ceil'
  %d, %s = quant.dynamic_quantize %x per_block(1, 32) scale_rounding(ceil) : tensor<4x32xf32> -> tensor<4x32xf8E4M3FN>, tensor<4x1xf8E8M0FNU>
  func.return
}

// -----

func.func @dynamic_scale_rounding_needs_e8m0(%x: tensor<4x32xf32>) {
  // CHECK: error: scale_rounding applies to f8E8M0FNU scales only, the scale is f32
  %d, %s = quant.dynamic_quantize %x per_block(1, 32) scale_rounding(rceil) : tensor<4x32xf32> -> tensor<4x32xf8E4M3FN>, tensor<4x1xf32>
  func.return
}

// -----

func.func @dynamic_double_quant(%x: tensor<4x32xf32>) {
  // CHECK: error: a double quant scale needs f8E4M3FN block scales, the scale is f32
  %d, %s = quant.dynamic_quantize %x per_block(1, 16) double_quant(2.0) : tensor<4x32xf32> -> tensor<4x32xf4E2M1FN>, tensor<4x2xf32>
  func.return
}

// -----

func.func @dynamic_eps(%x: tensor<4x32xf32>) {
  // CHECK: error: eps must be finite and > 0, got -1.0
  %d, %s = quant.dynamic_quantize %x per_token eps(-1.0) : tensor<4x32xf32> -> tensor<4x32xi8>, tensor<4x1xf32>
  func.return
}

// -----

func.func @dynamic_asymmetric_float(%x: tensor<4x32xf32>) {
  // CHECK: error: asymmetric dynamic quantization needs integer storage, got f8E4M3FN
  %d, %s = quant.dynamic_quantize %x per_token symmetric(false) : tensor<4x32xf32> -> tensor<4x32xf8E4M3FN>, tensor<4x1xf32>
  func.return
}

// -----

func.func @dynamic_zero_point_result(%x: tensor<4x32xf32>) {
  // CHECK: error: asymmetric dynamic quantization has a zero point result and symmetric has none; symmetric=False with 2 results
  %d, %s = quant.dynamic_quantize %x per_token symmetric(false) : tensor<4x32xf32> -> tensor<4x32xi8>, tensor<4x1xf32>
  func.return
}

// -----

func.func @dynamic_zero_point_type(%x: tensor<4x32xf32>) {
  // CHECK: error: zero point element type i8 does not match the storage type ui8
  %d, %s, %z = quant.dynamic_quantize %x per_token symmetric(false) : tensor<4x32xf32> -> tensor<4x32xui8>, tensor<4x1xf32>, tensor<4x1xi8>
  func.return
}

// -----

func.func @fake_quantize_result(%x: tensor<4x32xf32>) -> tensor<4x32xf16> {
  // CHECK: error: result type tensor<4x32xf16> must equal the input type tensor<4x32xf32>
  %y = quant.fake_quantize %x storage(i8) per_token : tensor<4x32xf32> -> tensor<4x32xf16>
  func.return %y : tensor<4x32xf16>
}

// -----

func.func @fake_quantize_domain(%x: tensor<4x32xf32>) -> tensor<4x32xf32> {
  // CHECK: error: zero_point_domain must be int, float or none, got 'double'
  %y = quant.fake_quantize %x storage(i8) per_token zero_point_domain(double) : tensor<4x32xf32> -> tensor<4x32xf32>
  func.return %y : tensor<4x32xf32>
}

// -----

func.func @fake_quantize_scale_type(%x: tensor<4x32xf32>) -> tensor<4x32xf32> {
  // CHECK: error: scale_type must be f32, f16 or bf16, got f8E4M3FN
  %y = quant.fake_quantize %x storage(i8) per_token scale_type(f8E4M3FN) : tensor<4x32xf32> -> tensor<4x32xf32>
  func.return %y : tensor<4x32xf32>
}

// -----

func.func @fake_quantize_asymmetric_float(%x: tensor<4x32xf32>) -> tensor<4x32xf32> {
  // CHECK: error: asymmetric fake quantization needs integer storage, got f8E4M3FN
  %y = quant.fake_quantize %x storage(f8E4M3FN) per_token symmetric(false) : tensor<4x32xf32> -> tensor<4x32xf32>
  func.return %y : tensor<4x32xf32>
}

// -----

func.func @pack_width(%q: tensor<8xi8>) -> tensor<4xui8> {
  // CHECK: error: packing needs a 4-bit or 2-bit element type, got i8 (8 bits)
  %p = quant.pack %q : tensor<8xi8> -> tensor<4xui8>
  func.return %p : tensor<4xui8>
}

// -----

func.func @pack_bytes_type(%q: tensor<8xi4>) -> tensor<4xi8> {
  // CHECK: error: packed bytes must be ui8, got i8
  %p = quant.pack %q : tensor<8xi4> -> tensor<4xi8>
  func.return %p : tensor<4xi8>
}

// -----

func.func @pack_count(%p: tensor<3xui8>) -> tensor<7xi4> {
  // CHECK: error: 7 i4 codes pack into 4 bytes, but the packed tensor has 3
  %q = quant.unpack %p : tensor<3xui8> -> tensor<7xi4>
  func.return %q : tensor<7xi4>
}

// -----

func.func @parse_error(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: {{.*}}
  %q = quant.quantize %x scale(1.0) per_axis(one) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @scale_nan_bits(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:3: error: constant scale must be finite and > 0, got nan
  %q = quant.quantize %x scale(0x7FC00000) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @scale_hex_too_wide(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:32: error: hexadecimal float literal does not fit the 32 bits of f32
  %q = quant.quantize %x scale(0x1FFFFFFFF) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @scale_negative_hex(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: a hexadecimal float literal takes no leading minus
  %q = quant.quantize %x scale(-0x3F800000) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @zero_point_not_an_integer(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: zero point must be an integer, got 2.5
  %q = quant.quantize %x scale(1.0) zero_point(2.5) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @zero_point_beyond_i32(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: error: integer 18446744073709551616 does not fit i32
  %q = quant.quantize %x scale(1.0) zero_point(18446744073709551616) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @fake_quantize_eps_nan(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // CHECK: error: eps must be finite and > 0, got nan
  %y = quant.fake_quantize %x storage(i8) eps(0x7FC00000) : tensor<4x8xf32> -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}

// -----

func.func @fake_quantize_three_results(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // CHECK: error: quant.fake_quantize takes 1 result type, got 3
  %a, %b, %c = quant.fake_quantize %x storage(i8) : tensor<4x8xf32> -> tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}

// -----

func.func @used_before_defined(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:3: error: operand %y of quant.quantize is used before its definition
  %q = quant.quantize %y scale(1.0) : tensor<4x8xf32> -> tensor<4x8xi8>
  %y = quant.dequantize %q scale(1.0) : tensor<4x8xi8> -> tensor<4x8xf32>
  func.return %q : tensor<4x8xi8>
}

// -----

func.func @twice(%x: tensor<4x8xf32>) {
  func.return
}
// CHECK: invalid.mlir:[[# @LINE + 1]]:1: error: redefinition of symbol 'twice'
func.func @twice(%x: tensor<4x8xf32>) {
  func.return
}
