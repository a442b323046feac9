// RUN: qopt %s --requantize-to-rescale | filecheck %s
// RUN: qopt %s -p 'requantize-to-rescale{bits=16 rounding=tonearest}' | filecheck %s --check-prefix=B16

// requantize-to-rescale (opt-in; it changes results, docs/semantics.md section 12): a float
// requantize with constant parameters becomes a quant.rescale whose multiplier and shift
// are TOSA's computeMultiplierAndShift of s_in / s_out. Each converted case sits next to
// one that is left alone.

// 0.05 / 0.1 is exactly 0.5 in f32: 2^30 * 2^-31.
// CHECK-LABEL: func.func @per_tensor
// CHECK: quant.rescale %{{.*}} multiplier(1073741824) shift(31) in_zero_point(3) out_zero_point(-2) : tensor<4x8xi8> -> tensor<4x8xi8>
// B16-LABEL: func.func @per_tensor
// B16: quant.rescale %{{.*}} multiplier(16384 : i16) shift(15) in_zero_point(3) out_zero_point(-2) rounding(tonearest) : tensor<4x8xi8> -> tensor<4x8xi8>
func.func @per_tensor(%q: tensor<4x8xi8>) -> tensor<4x8xi8> {
  %r = quant.requantize %q in(scale(0.05) zero_point(3)) out(scale(0.1) zero_point(-2)) : tensor<4x8xi8> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// A per-axis input scale and a per-tensor output scale: one (multiplier, shift) per
// channel; the narrow range is kept.
// CHECK-LABEL: func.func @per_axis_in
// CHECK: quant.rescale %{{.*}} multiplier(dense<[1431655730, 1073741824, 1789569636, 1252698724]> : tensor<4xi32>) shift(dense<[32, 30, 30, 29]> : tensor<4xi8>) per_axis(0) out_zero_point(128) range(0, 200) : tensor<4x8xi8> -> tensor<4x8xui8>
func.func @per_axis_in(%q: tensor<4x8xi8>) -> tensor<4x8xui8> {
  %r = quant.requantize %q in(scale(dense<[0.1, 0.3, 0.5, 0.7]> : tensor<4xf32>) per_axis(0)) out(scale(0.3) zero_point(128)) range(0, 200) : tensor<4x8xi8> -> tensor<4x8xui8>
  func.return %r : tensor<4x8xui8>
}

// Negative cases, left alone: runtime scales, sub-byte storage, per-channel zero points
// that differ, a ratio of 2^31 or more.
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: quant.rescale
// CHECK-COUNT-4: quant.requantize
// CHECK-NOT: quant.rescale
func.func @left_alone(%q: tensor<4x8xi8>, %s: tensor<8xf32>) -> (tensor<4x8xi8>, tensor<4x8xi4>, tensor<4x8xi8>, tensor<4x8xi16>) {
  %a = quant.requantize %q in(scale(%s : tensor<8xf32>) per_axis(1)) out(scale(0.1)) : tensor<4x8xi8> -> tensor<4x8xi8>
  %b = quant.requantize %q in(scale(0.05)) out(scale(0.1)) : tensor<4x8xi8> -> tensor<4x8xi4>
  %c = quant.requantize %q in(scale(dense<0.05> : tensor<4xf32>) zero_point(dense<[1, 2, 3, 4]> : tensor<4xi8>) per_axis(0)) out(scale(0.1)) : tensor<4x8xi8> -> tensor<4x8xi8>
  %d = quant.requantize %q in(scale(1.0e10)) out(scale(1.0)) : tensor<4x8xi8> -> tensor<4x8xi16>
  func.return %a, %b, %c, %d : tensor<4x8xi8>, tensor<4x8xi4>, tensor<4x8xi8>, tensor<4x8xi16>
}
