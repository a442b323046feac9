// RUN: qopt %s | filecheck %s
// RUN: qopt %s | qopt - | filecheck %s
// RUN: qopt %s --print-op-generic | qopt - | filecheck %s

// Round trip of every quant op and every attribute, in custom and generic form.

// CHECK-LABEL: func.func @quantize_per_tensor
// CHECK: quant.quantize %{{.*}} scale(1.250000e-01) zero_point(3) : tensor<4x8xf32> -> tensor<4x8xi8>
func.func @quantize_per_tensor(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  %q = quant.quantize %x scale(0.125) zero_point(3) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// CHECK-LABEL: func.func @quantize_per_axis_operands
// CHECK: quant.quantize %[[X:.*]] scale(%[[S:.*]] : tensor<8xf32>) zero_point(%[[Z:.*]] : tensor<8xui8>) per_axis(1) : tensor<4x8xf32> -> tensor<4x8xui8>
func.func @quantize_per_axis_operands(%x: tensor<4x8xf32>, %s: tensor<8xf32>, %z: tensor<8xui8>) -> tensor<4x8xui8> {
  %q = quant.quantize %x scale(%s : tensor<8xf32>) zero_point(%z : tensor<8xui8>) per_axis(1) : tensor<4x8xf32> -> tensor<4x8xui8>
  func.return %q : tensor<4x8xui8>
}

// CHECK-LABEL: func.func @quantize_options
// CHECK: quant.quantize %{{.*}} scale(5.000000e-01) rounding(nearest_away) range(-127, 127) : tensor<16xf16> -> tensor<16xi8>
// CHECK: quant.quantize %{{.*}} scale(5.000000e-01) rounding(half_up) : tensor<16xf16> -> tensor<16xi4>
// CHECK: quant.quantize %{{.*}} scale(5.000000e-01) rounding(toward_zero) : tensor<16xf16> -> tensor<16xui4>
// CHECK: quant.quantize %{{.*}} scale(5.000000e-01) saturate(false) : tensor<16xf16> -> tensor<16xf8E5M2>
func.func @quantize_options(%x: tensor<16xf16>) -> (tensor<16xi8>, tensor<16xi4>, tensor<16xui4>, tensor<16xf8E5M2>) {
  %a = quant.quantize %x scale(0.5) rounding(nearest_away) range(-127, 127) : tensor<16xf16> -> tensor<16xi8>
  %b = quant.quantize %x scale(0.5) rounding(half_up) : tensor<16xf16> -> tensor<16xi4>
  %c = quant.quantize %x scale(0.5) rounding(toward_zero) : tensor<16xf16> -> tensor<16xui4>
  %d = quant.quantize %x scale(0.5) saturate(false) : tensor<16xf16> -> tensor<16xf8E5M2>
  func.return %a, %b, %c, %d : tensor<16xi8>, tensor<16xi4>, tensor<16xui4>, tensor<16xf8E5M2>
}

// CHECK-LABEL: func.func @quantize_blocks
// CHECK: quant.quantize %{{.*}} scale(%{{.*}} : tensor<4x2xf32>) per_block(1, 32) : tensor<4x64xbf16> -> tensor<4x64xi2>
// CHECK: quant.quantize %{{.*}} scale(%{{.*}} : tensor<1x1xf32>) block([128, -1]) : tensor<4x64xbf16> -> tensor<4x64xf8E4M3FN>
// CHECK: quant.quantize %{{.*}} scale(%{{.*}} : tensor<4x1xf32>) per_token : tensor<4x64xbf16> -> tensor<4x64xf4E2M1FN>
// CHECK: quant.quantize %{{.*}} scale(%{{.*}} : tensor<f32>) minval(%{{.*}} : tensor<f32>) : tensor<4x64xbf16> -> tensor<4x64xui2>
func.func @quantize_blocks(%x: tensor<4x64xbf16>, %s: tensor<4x2xf32>, %t: tensor<1x1xf32>, %u: tensor<4x1xf32>, %v: tensor<f32>) -> (tensor<4x64xi2>, tensor<4x64xf8E4M3FN>, tensor<4x64xf4E2M1FN>, tensor<4x64xui2>) {
  %a = quant.quantize %x scale(%s : tensor<4x2xf32>) per_block(1, 32) : tensor<4x64xbf16> -> tensor<4x64xi2>
  %b = quant.quantize %x scale(%t : tensor<1x1xf32>) block([128, -1]) : tensor<4x64xbf16> -> tensor<4x64xf8E4M3FN>
  %c = quant.quantize %x scale(%u : tensor<4x1xf32>) per_token : tensor<4x64xbf16> -> tensor<4x64xf4E2M1FN>
  %d = quant.quantize %x minval(%v : tensor<f32>) scale(%v : tensor<f32>) : tensor<4x64xbf16> -> tensor<4x64xui2>
  func.return %a, %b, %c, %d : tensor<4x64xi2>, tensor<4x64xf8E4M3FN>, tensor<4x64xf4E2M1FN>, tensor<4x64xui2>
}

// CHECK-LABEL: func.func @quantize_dense_constants
// CHECK: quant.quantize %{{.*}} scale(dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>) zero_point(dense<[1, -2]> : tensor<2xi16>) per_axis(0) : tensor<2x3xf32> -> tensor<2x3xi16>
func.func @quantize_dense_constants(%x: tensor<2x3xf32>) -> tensor<2x3xi16> {
  %q = quant.quantize %x scale(dense<[1.0, 2.0]> : tensor<2xf32>) zero_point(dense<[1, -2]> : tensor<2xi16>) per_axis(0) : tensor<2x3xf32> -> tensor<2x3xi16>
  func.return %q : tensor<2x3xi16>
}

// CHECK-LABEL: func.func @dequantize
// CHECK: quant.dequantize %{{.*}} scale(2.500000e-01) zero_point(-3) : tensor<8xi8> -> tensor<8xf32>
// CHECK: quant.dequantize %{{.*}} scale(%{{.*}} : tensor<8xf32>) per_axis(0) : tensor<8xui16> -> tensor<8xbf16>
// CHECK: quant.dequantize %{{.*}} scale(%{{.*}} : tensor<1xf8E4M3FN>) double_quant(%{{.*}} : tensor<f32>) per_block(0, 16) : tensor<8xf4E2M1FN> -> tensor<8xf16>
// CHECK: quant.dequantize %{{.*}} scale(%{{.*}} : tensor<1xf8E8M0FNU>) per_block(0, 32) range(0, 10) : tensor<8xui8> -> tensor<8xf32>
func.func @dequantize(%a: tensor<8xi8>, %b: tensor<8xui16>, %c: tensor<8xf4E2M1FN>, %d: tensor<8xui8>, %s: tensor<8xf32>, %t: tensor<1xf8E4M3FN>, %dq: tensor<f32>, %e: tensor<1xf8E8M0FNU>) -> (tensor<8xf32>, tensor<8xbf16>, tensor<8xf16>, tensor<8xf32>) {
  %0 = quant.dequantize %a scale(0.25) zero_point(-3) : tensor<8xi8> -> tensor<8xf32>
  %1 = quant.dequantize %b scale(%s : tensor<8xf32>) per_axis(0) : tensor<8xui16> -> tensor<8xbf16>
  %2 = quant.dequantize %c scale(%t : tensor<1xf8E4M3FN>) double_quant(%dq : tensor<f32>) per_block(0, 16) : tensor<8xf4E2M1FN> -> tensor<8xf16>
  %3 = quant.dequantize %d scale(%e : tensor<1xf8E8M0FNU>) per_block(0, 32) range(0, 10) : tensor<8xui8> -> tensor<8xf32>
  func.return %0, %1, %2, %3 : tensor<8xf32>, tensor<8xbf16>, tensor<8xf16>, tensor<8xf32>
}

// CHECK-LABEL: func.func @requantize
// CHECK: quant.requantize %{{.*}} in(scale(%{{.*}} : tensor<8xf32>) zero_point(%{{.*}} : tensor<8xi8>) per_axis(1)) out(scale(5.000000e-01) zero_point(-1)) rounding(nearest_away) range(-127, 127) saturate(false) : tensor<4x8xi8> -> tensor<4x8xi8>
// CHECK: quant.requantize %{{.*}} in(scale(2.000000e+00)) out(scale(%{{.*}} : tensor<4xf32>) per_axis(0)) : tensor<4x8xi8> -> tensor<4x8xui4>
// CHECK: quant.requantize %{{.*}} in(scale(2.000000e+00)) out(scale(1.000000e+00)) {lowering = "lut"} : tensor<4x8xi8> -> tensor<4x8xf8E4M3FN>
func.func @requantize(%q: tensor<4x8xi8>, %s: tensor<8xf32>, %z: tensor<8xi8>, %o: tensor<4xf32>) -> (tensor<4x8xi8>, tensor<4x8xui4>, tensor<4x8xf8E4M3FN>) {
  %a = quant.requantize %q in(scale(%s : tensor<8xf32>) zero_point(%z : tensor<8xi8>) per_axis(1)) out(scale(0.5) zero_point(-1)) rounding(nearest_away) range(-127, 127) saturate(false) : tensor<4x8xi8> -> tensor<4x8xi8>
  %b = quant.requantize %q in(scale(2.0)) out(per_axis(0) scale(%o : tensor<4xf32>)) : tensor<4x8xi8> -> tensor<4x8xui4>
  %c = quant.requantize %q in(scale(2.0)) out(scale(1.0)) {lowering = "lut"} : tensor<4x8xi8> -> tensor<4x8xf8E4M3FN>
  func.return %a, %b, %c : tensor<4x8xi8>, tensor<4x8xui4>, tensor<4x8xf8E4M3FN>
}

// CHECK-LABEL: func.func @dynamic_quantize
// CHECK: %{{.*}}, %{{.*}} = quant.dynamic_quantize %{{.*}} per_block(1, 16) double_quant(%{{.*}} : tensor<f32>) : tensor<4x64xf32> -> tensor<4x64xf4E2M1FN>, tensor<4x4xf8E4M3FN>
// CHECK: quant.dynamic_quantize %{{.*}} per_block(1, 32) scale_rounding(rceil) : tensor<4x64xf32> -> tensor<4x64xf8E5M2>, tensor<4x2xf8E8M0FNU>
// CHECK: quant.dynamic_quantize %{{.*}} block([128, 128]) : tensor<4x64xf32> -> tensor<4x64xf8E4M3FN>, tensor<1x1xf32>
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = quant.dynamic_quantize %{{.*}} per_token symmetric(false) eps(1.000000e-05) : tensor<4x64xf32> -> tensor<4x64xui8>, tensor<4x1xf32>, tensor<4x1xui8>
// CHECK: quant.dynamic_quantize %{{.*}} per_block(1, 16) double_quant(5.000000e-01) : tensor<4x64xf32> -> tensor<4x64xf4E2M1FN>, tensor<4x4xf8E4M3FN>
// CHECK: quant.dynamic_quantize %{{.*}} range(-127, 127) : tensor<4x64xf32> -> tensor<4x64xi8>, tensor<f32>
func.func @dynamic_quantize(%x: tensor<4x64xf32>, %dq: tensor<f32>) {
  %d0, %s0 = quant.dynamic_quantize %x per_block(1, 16) double_quant(%dq : tensor<f32>) : tensor<4x64xf32> -> tensor<4x64xf4E2M1FN>, tensor<4x4xf8E4M3FN>
  %d1, %s1 = quant.dynamic_quantize %x per_block(1, 32) scale_rounding(rceil) : tensor<4x64xf32> -> tensor<4x64xf8E5M2>, tensor<4x2xf8E8M0FNU>
  %d2, %s2 = quant.dynamic_quantize %x block([128, 128]) : tensor<4x64xf32> -> tensor<4x64xf8E4M3FN>, tensor<1x1xf32>
  %d3, %s3, %z3 = quant.dynamic_quantize %x per_token symmetric(false) eps(1.0e-5) : tensor<4x64xf32> -> tensor<4x64xui8>, tensor<4x1xf32>, tensor<4x1xui8>
  %d4, %s4 = quant.dynamic_quantize %x double_quant(0.5) per_block(1, 16) : tensor<4x64xf32> -> tensor<4x64xf4E2M1FN>, tensor<4x4xf8E4M3FN>
  %d5, %s5 = quant.dynamic_quantize %x range(-127, 127) : tensor<4x64xf32> -> tensor<4x64xi8>, tensor<f32>
  func.return
}

// CHECK-LABEL: func.func @fake_quantize
// CHECK: quant.fake_quantize %{{.*}} storage(i8) per_token symmetric(false) scale_type(f16) zero_point_domain(float) : tensor<4x64xf32> -> tensor<4x64xf32>
// CHECK: quant.fake_quantize %{{.*}} storage(i4) per_block(1, 32) eps(1.000000e-03) : tensor<4x64xf32> -> tensor<4x64xf32>
// CHECK: quant.fake_quantize %{{.*}} storage(ui8) scale(1.000000e-01) zero_point(128) : tensor<4x64xbf16> -> tensor<4x64xbf16>
func.func @fake_quantize(%x: tensor<4x64xf32>, %y: tensor<4x64xbf16>) {
  %a = quant.fake_quantize %x storage(i8) per_token symmetric(false) scale_type(f16) zero_point_domain(float) : tensor<4x64xf32> -> tensor<4x64xf32>
  %b = quant.fake_quantize %x storage(i4) per_block(1, 32) eps(0.001) : tensor<4x64xf32> -> tensor<4x64xf32>
  %c = quant.fake_quantize %y storage(ui8) scale(0.1) zero_point(128) : tensor<4x64xbf16> -> tensor<4x64xbf16>
  func.return
}

// CHECK-LABEL: func.func @pack_unpack
// CHECK: quant.pack %{{.*}} : tensor<7xi4> -> tensor<4xui8>
// CHECK: quant.unpack %{{.*}} : tensor<4xui8> -> tensor<7xi4>
// CHECK: quant.pack %{{.*}} : tensor<3x3xui2> -> tensor<3xui8>
// CHECK: quant.unpack %{{.*}} : tensor<2x4xui8> -> tensor<2x8xf4E2M1FN>
func.func @pack_unpack(%a: tensor<7xi4>, %b: tensor<3x3xui2>, %c: tensor<2x4xui8>) {
  %p = quant.pack %a : tensor<7xi4> -> tensor<4xui8>
  %u = quant.unpack %p : tensor<4xui8> -> tensor<7xi4>
  %p2 = quant.pack %b : tensor<3x3xui2> -> tensor<3xui8>
  %u2 = quant.unpack %c : tensor<2x4xui8> -> tensor<2x8xf4E2M1FN>
  func.return
}

// CHECK-LABEL: func.func @granularity_attributes
// CHECK-SAME: quant.g0 = #quant.per_tensor
// CHECK-SAME: quant.g1 = #quant.per_axis<2>
// CHECK-SAME: quant.g2 = #quant.per_block<0, 64>
// CHECK-SAME: quant.g3 = #quant.block<[128, -1]>
// CHECK-SAME: quant.g4 = #quant.per_token
func.func @granularity_attributes() attributes {quant.g0 = #quant.per_tensor, quant.g1 = #quant.per_axis<2>, quant.g2 = #quant.per_block<0, 64>, quant.g3 = #quant.block<[128, -1]>, quant.g4 = #quant.per_token} {
  func.return
}

// An f32 of 7-9 integer digits prints as its bits and reads back as the same f32 (the
// three RUN lines above re-read it), in a scalar, a dense list and a splat.
// CHECK-LABEL: func.func @integer_valued_scales
// CHECK: quant.quantize %{{.*}} scale(0x4B000000) : tensor<2xf32> -> tensor<2xi8>
// CHECK: quant.quantize %{{.*}} scale(dense<[0x4996B438, 0x49742410]> : tensor<2xf32>) per_axis(0)
// CHECK: quant.dequantize %{{.*}} scale(dense<0x4B7FFFFF> : tensor<2xf32>) per_axis(0)
func.func @integer_valued_scales(%x: tensor<2xf32>, %q: tensor<2xi8>) -> tensor<2xi8> {
  %a = quant.quantize %x scale(8388608.0) : tensor<2xf32> -> tensor<2xi8>
  %b = quant.quantize %x scale(dense<[1234567.0, 1000001.0]> : tensor<2xf32>) per_axis(0) : tensor<2xf32> -> tensor<2xi8>
  %c = quant.dequantize %q scale(dense<16777215.0> : tensor<2xf32>) per_axis(0) : tensor<2xi8> -> tensor<2xf32>
  func.return %a : tensor<2xi8>
}
