// RUN: qopt %s --split-input-file --fold-quant | filecheck %s
// RUN: qopt %s --split-input-file --fold-quant --print-debuginfo | filecheck %s --check-prefix=LOC
// RUN: qopt %s --split-input-file -p 'fold-quant{lossy=true}' -o %t 2>&1 | filecheck %s --check-prefix=REMARK
// RUN: filecheck %s --input-file %t --check-prefix=LOSSY

// Every fold of fold-quant (docs/semantics.md section 6) with a negative case next to it. The exactness
// proofs enumerate every storage code at compile time; tests/test_fold_quant.py checks the
// same folds against the oracle on every code.

// =======================================================================================
// quantize(dequantize(%q)) -> %q where that is the identity on every code.

// CHECK-LABEL: func.func @quantize_of_dequantize_identity
// CHECK-SAME:    (%[[Q:.*]]: tensor<16xi8>)
// CHECK-NOT:     quant.
// CHECK:         func.return %[[Q]] : tensor<16xi8>
func.func @quantize_of_dequantize_identity(%q: tensor<16xi8>) -> tensor<16xi8> {
  %d = quant.dequantize %q scale(0.1) zero_point(3) : tensor<16xi8> -> tensor<16xf32>
  %r = quant.quantize %d scale(0.1) zero_point(3) : tensor<16xf32> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}

// -----

// toward_zero: 15 * 0.3 / 0.3 is 14.999999 in f32 and truncates to 14. Not the identity;
// the pair still becomes one requantize (its definition).
// CHECK-LABEL: func.func @quantize_of_dequantize_toward_zero
// CHECK-SAME:    (%[[Q:.*]]: tensor<16xi8>)
// CHECK:         %[[R:.*]] = quant.requantize %[[Q]] in(scale(3.000000e-01)) out(scale(3.000000e-01)) rounding(toward_zero) : tensor<16xi8> -> tensor<16xi8>
// CHECK:         func.return %[[R]]
func.func @quantize_of_dequantize_toward_zero(%q: tensor<16xi8>) -> tensor<16xi8> {
  %d = quant.dequantize %q scale(0.3) : tensor<16xi8> -> tensor<16xf32>
  %r = quant.quantize %d scale(0.3) rounding(toward_zero) : tensor<16xf32> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}

// -----

// 127 * 3e38 overflows to inf, which saturates: not the identity.
// CHECK-LABEL: func.func @quantize_of_dequantize_overflowing_scale
// CHECK:         quant.requantize
func.func @quantize_of_dequantize_overflowing_scale(%q: tensor<16xi8>) -> tensor<16xi8> {
  %d = quant.dequantize %q scale(3.0e38) : tensor<16xi8> -> tensor<16xf32>
  %r = quant.quantize %d scale(3.0e38) : tensor<16xf32> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}

// -----

// A runtime scale may be huge, zero or NaN: left alone (only fused).
// CHECK-LABEL: func.func @quantize_of_dequantize_runtime_scale
// CHECK-SAME:    (%[[Q:.*]]: tensor<16xi8>, %[[S:.*]]: tensor<f32>)
// CHECK:         quant.requantize %[[Q]] in(scale(%[[S]] : tensor<f32>)) out(scale(%[[S]] : tensor<f32>))
func.func @quantize_of_dequantize_runtime_scale(%q: tensor<16xi8>, %s: tensor<f32>) -> tensor<16xi8> {
  %d = quant.dequantize %q scale(%s : tensor<f32>) : tensor<16xi8> -> tensor<16xf32>
  %r = quant.quantize %d scale(%s : tensor<f32>) : tensor<16xf32> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}

// -----

// Every e4m3 code (NaN 0x7F / 0xFF included) comes back: folded.
// CHECK-LABEL: func.func @quantize_of_dequantize_e4m3
// CHECK-SAME:    (%[[Q:.*]]: tensor<16xf8E4M3FN>)
// CHECK-NOT:     quant.
// CHECK:         func.return %[[Q]]
func.func @quantize_of_dequantize_e4m3(%q: tensor<16xf8E4M3FN>) -> tensor<16xf8E4M3FN> {
  %d = quant.dequantize %q scale(0.37) : tensor<16xf8E4M3FN> -> tensor<16xf32>
  %r = quant.quantize %d scale(0.37) : tensor<16xf32> -> tensor<16xf8E4M3FN>
  func.return %r : tensor<16xf8E4M3FN>
}

// -----

// e5m2: inf saturates to 57344, NaN payload codes 0x7D / 0x7F come back as 0x7E.
// CHECK-LABEL: func.func @quantize_of_dequantize_e5m2
// CHECK:         quant.requantize
func.func @quantize_of_dequantize_e5m2(%q: tensor<16xf8E5M2>) -> tensor<16xf8E5M2> {
  %d = quant.dequantize %q scale(0.37) : tensor<16xf8E5M2> -> tensor<16xf32>
  %r = quant.quantize %d scale(0.37) : tensor<16xf32> -> tensor<16xf8E5M2>
  func.return %r : tensor<16xf8E5M2>
}

// -----

// Through f16: i8 codes times 0.5 are exact in f16, so the round trip is the identity.
// CHECK-LABEL: func.func @quantize_of_dequantize_f16_exact
// CHECK-SAME:    (%[[Q:.*]]: tensor<16xi8>)
// CHECK-NOT:     quant.
// CHECK:         func.return %[[Q]]
func.func @quantize_of_dequantize_f16_exact(%q: tensor<16xi8>) -> tensor<16xi8> {
  %d = quant.dequantize %q scale(0.5) zero_point(-7) : tensor<16xi8> -> tensor<16xf16>
  %r = quant.quantize %d scale(0.5) zero_point(-7) : tensor<16xf16> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}

// -----

// Through f16, i16 codes need 16 significant bits and f16 has 11: neither removed nor
// fused (requantize has an f32 intermediate).
// CHECK-LABEL: func.func @quantize_of_dequantize_f16_rounds
// CHECK:         quant.dequantize %{{.*}} : tensor<16xi16> -> tensor<16xf16>
// CHECK:         quant.quantize %{{.*}} : tensor<16xf16> -> tensor<16xi16>
func.func @quantize_of_dequantize_f16_rounds(%q: tensor<16xi16>) -> tensor<16xi16> {
  %d = quant.dequantize %q scale(0.5) : tensor<16xi16> -> tensor<16xf16>
  %r = quant.quantize %d scale(0.5) : tensor<16xf16> -> tensor<16xi16>
  func.return %r : tensor<16xi16>
}

// -----

// =======================================================================================
// dequantize -> quantize (f32 in between) -> one requantize: parameters, granularities,
// rounding, range and saturation carry over; the location is fused.

// CHECK-LABEL: func.func @fuse_dequantize_quantize
// CHECK-SAME:    (%[[Q:.*]]: tensor<4x8xi8>, %[[S:.*]]: tensor<8xf32>, %[[Z:.*]]: tensor<8xi8>)
// CHECK-NOT:     quant.dequantize
// CHECK:         %[[R:.*]] = quant.requantize %[[Q]] in(scale(%[[S]] : tensor<8xf32>) zero_point(%[[Z]] : tensor<8xi8>) per_axis(1)) out(scale(2.500000e-01) zero_point(7)) rounding(half_up) range(1, 14) : tensor<4x8xi8> -> tensor<4x8xui4>
// CHECK-NOT:     quant.quantize
// CHECK:         func.return %[[R]]
// LOC-LABEL:   func.func @fuse_dequantize_quantize
// LOC:           quant.requantize {{.*}} loc(fused["{{.*}}fold-quant.mlir":[[# @LINE + 3]]:3, "{{.*}}fold-quant.mlir":[[# @LINE + 5]]:3])
func.func @fuse_dequantize_quantize(%q: tensor<4x8xi8>, %s: tensor<8xf32>, %z: tensor<8xi8>)
    -> tensor<4x8xui4> {
  %d = quant.dequantize %q scale(%s : tensor<8xf32>) zero_point(%z : tensor<8xi8>) per_axis(1)
         : tensor<4x8xi8> -> tensor<4x8xf32>
  %r = quant.quantize %d scale(0.25) zero_point(7) rounding(half_up) range(1, 14)
         : tensor<4x8xf32> -> tensor<4x8xui4>
  func.return %r : tensor<4x8xui4>
}

// -----

// CHECK-LABEL: func.func @fuse_float_storage_without_saturation
// CHECK:         quant.requantize %{{.*}} in(scale(5.000000e-01)) out(scale(2.000000e+00)) saturate(false) : tensor<16xf8E4M3FN> -> tensor<16xf8E5M2>
func.func @fuse_float_storage_without_saturation(%q: tensor<16xf8E4M3FN>) -> tensor<16xf8E5M2> {
  %d = quant.dequantize %q scale(0.5) : tensor<16xf8E4M3FN> -> tensor<16xf32>
  %r = quant.quantize %d scale(2.0) saturate(false) : tensor<16xf32> -> tensor<16xf8E5M2>
  func.return %r : tensor<16xf8E5M2>
}

// -----

// A bf16 intermediate rounds between the two ops: requantize cannot express it.
// CHECK-LABEL: func.func @no_fuse_bf16_intermediate
// CHECK:         quant.dequantize %{{.*}} : tensor<16xi8> -> tensor<16xbf16>
// CHECK:         quant.quantize %{{.*}} : tensor<16xbf16> -> tensor<16xui8>
// CHECK-NOT:     quant.requantize
func.func @no_fuse_bf16_intermediate(%q: tensor<16xi8>) -> tensor<16xui8> {
  %d = quant.dequantize %q scale(0.37) : tensor<16xi8> -> tensor<16xbf16>
  %r = quant.quantize %d scale(0.5) zero_point(128) : tensor<16xbf16> -> tensor<16xui8>
  func.return %r : tensor<16xui8>
}

// -----

// The dequantized values are a result too, not only an intermediate: the pair stays.
// CHECK-LABEL: func.func @no_fuse_dequantize_with_other_user
// CHECK:         %[[D:.*]] = quant.dequantize
// CHECK:         %[[R:.*]] = quant.quantize %[[D]]
// CHECK:         func.return %[[R]], %[[D]]
func.func @no_fuse_dequantize_with_other_user(%q: tensor<16xi8>) -> (tensor<16xui8>, tensor<16xf32>) {
  %d = quant.dequantize %q scale(0.37) : tensor<16xi8> -> tensor<16xf32>
  %r = quant.quantize %d scale(0.5) zero_point(128) : tensor<16xf32> -> tensor<16xui8>
  func.return %r, %d : tensor<16xui8>, tensor<16xf32>
}

// -----

// NVFP4 dequantize (double-quant scale): data * (sq * dq) is not a requantize input.
// CHECK-LABEL: func.func @no_fuse_double_quant
// CHECK:         quant.dequantize
// CHECK:         quant.quantize
func.func @no_fuse_double_quant(%q: tensor<16xf4E2M1FN>) -> tensor<16xf8E4M3FN> {
  %d = quant.dequantize %q scale(0.5) double_quant(3.0) : tensor<16xf4E2M1FN> -> tensor<16xf32>
  %r = quant.quantize %d scale(0.25) : tensor<16xf32> -> tensor<16xf8E4M3FN>
  func.return %r : tensor<16xf8E4M3FN>
}

// -----

// =======================================================================================
// Identity requantize: removed where it returns every code.

// CHECK-LABEL: func.func @identity_requantize
// CHECK-SAME:    (%[[Q:.*]]: tensor<4x3xui8>)
// CHECK-NEXT:    func.return %[[Q]]
func.func @identity_requantize(%q: tensor<4x3xui8>) -> tensor<4x3xui8> {
  %r = quant.requantize %q in(scale(dense<[1.0e-30, 0.37, 1.0e30]> : tensor<3xf32>) zero_point(dense<[0, 128, 255]> : tensor<3xi32>) per_axis(1))
                           out(scale(dense<[1.0e-30, 0.37, 1.0e30]> : tensor<3xf32>) zero_point(dense<[0, 128, 255]> : tensor<3xi32>) per_axis(1))
         : tensor<4x3xui8> -> tensor<4x3xui8>
  func.return %r : tensor<4x3xui8>
}

// -----

// One runtime zero point on both sides: round(d * s / s) == d for every d = q - zp.
// CHECK-LABEL: func.func @identity_requantize_runtime_zero_point
// CHECK-SAME:    (%[[Q:.*]]: tensor<16xi8>, %{{.*}}: tensor<i8>)
// CHECK-NEXT:    func.return %[[Q]]
func.func @identity_requantize_runtime_zero_point(%q: tensor<16xi8>, %z: tensor<i8>) -> tensor<16xi8> {
  %r = quant.requantize %q in(scale(0.37) zero_point(%z : tensor<i8>)) out(scale(0.37) zero_point(%z : tensor<i8>))
         : tensor<16xi8> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}

// -----

// CHECK-LABEL: func.func @identity_requantize_runtime_scale
// CHECK:         quant.requantize
func.func @identity_requantize_runtime_scale(%q: tensor<16xi8>, %s: tensor<f32>) -> tensor<16xi8> {
  %r = quant.requantize %q in(scale(%s : tensor<f32>)) out(scale(%s : tensor<f32>)) : tensor<16xi8> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}

// -----

// The narrow output range clamps -128 to -127: not the identity.
// CHECK-LABEL: func.func @identity_requantize_narrow_range
// CHECK:         quant.requantize {{.*}} range(-127, 127)
func.func @identity_requantize_narrow_range(%q: tensor<16xi8>) -> tensor<16xi8> {
  %r = quant.requantize %q in(scale(0.5)) out(scale(0.5)) range(-127, 127) : tensor<16xi8> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}

// -----

// A subnormal scale is fine for integer codes (d * k * 2**-149 is exact while it fits in
// 24 bits, and rounds back otherwise): proven by enumeration, removed.
// CHECK-LABEL: func.func @identity_requantize_subnormal_scale
// CHECK-SAME:    (%[[Q:.*]]: tensor<16xi8>)
// CHECK-NEXT:    func.return %[[Q]]
func.func @identity_requantize_subnormal_scale(%q: tensor<16xi8>) -> tensor<16xi8> {
  %r = quant.requantize %q in(scale(1.0e-40)) out(scale(1.0e-40)) : tensor<16xi8> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}

// -----

// ... but not for e4m3 codes: 2**-9 * 1e-44 underflows to 0.
// CHECK-LABEL: func.func @identity_requantize_e4m3_underflow
// CHECK:         quant.requantize
func.func @identity_requantize_e4m3_underflow(%q: tensor<16xf8E4M3FN>) -> tensor<16xf8E4M3FN> {
  %r = quant.requantize %q in(scale(1.0e-44)) out(scale(1.0e-44)) : tensor<16xf8E4M3FN> -> tensor<16xf8E4M3FN>
  func.return %r : tensor<16xf8E4M3FN>
}

// -----

// =======================================================================================
// requantize(requantize(%q)) -> one requantize where exact.

// Only the zero point moves, into a wide intermediate: lossless for any outer parameters,
// here runtime ones.
// CHECK-LABEL: func.func @chain_zero_point_move
// CHECK-SAME:    (%[[Q:.*]]: tensor<16xi8>, %[[S:.*]]: tensor<f32>)
// CHECK:         %[[R:.*]] = quant.requantize %[[Q]] in(scale(1.000000e-01) zero_point(-3)) out(scale(%[[S]] : tensor<f32>) zero_point(9)) rounding(half_up) : tensor<16xi8> -> tensor<16xi8>
// CHECK-NEXT:    func.return %[[R]]
// LOC-LABEL:   func.func @chain_zero_point_move
// LOC:           quant.requantize {{.*}} loc(fused["{{.*}}fold-quant.mlir":[[# @LINE + 2]]:3, "{{.*}}fold-quant.mlir":[[# @LINE + 3]]:3])
func.func @chain_zero_point_move(%q: tensor<16xi8>, %s: tensor<f32>) -> tensor<16xi8> {
  %a = quant.requantize %q in(scale(0.1) zero_point(-3)) out(scale(0.1) zero_point(1000)) : tensor<16xi8> -> tensor<16xi16>
  %b = quant.requantize %a in(scale(0.1) zero_point(1000)) out(scale(%s : tensor<f32>) zero_point(9)) rounding(half_up) : tensor<16xi16> -> tensor<16xi8>
  func.return %b : tensor<16xi8>
}

// -----

// Three steps fold into one; the location fuses all three.
// CHECK-LABEL: func.func @chain_of_three
// CHECK:         quant.requantize %{{.*}} in(scale(5.000000e-01)) out(scale(1.500000e+00)) : tensor<16xi8> -> tensor<16xi8>
// CHECK-NOT:     quant.requantize
// LOC-LABEL:   func.func @chain_of_three
// LOC:           loc(fused["{{.*}}":[[# @LINE + 2]]:3, "{{.*}}":[[# @LINE + 3]]:3, "{{.*}}":[[# @LINE + 4]]:3])
func.func @chain_of_three(%q: tensor<16xi8>) -> tensor<16xi8> {
  %a = quant.requantize %q in(scale(0.5)) out(scale(0.25) zero_point(10)) : tensor<16xi8> -> tensor<16xi16>
  %b = quant.requantize %a in(scale(0.25) zero_point(10)) out(scale(0.125) zero_point(-7)) : tensor<16xi16> -> tensor<16xi16>
  %c = quant.requantize %b in(scale(0.125) zero_point(-7)) out(scale(1.5)) : tensor<16xi16> -> tensor<16xi8>
  func.return %c : tensor<16xi8>
}

// -----

// rne(rne(d / 2) / 2) == rne(d / 4) for every i8 d: found by enumeration.
// CHECK-LABEL: func.func @chain_double_rounding_agrees
// CHECK:         quant.requantize %{{.*}} in(scale(1.000000e+00)) out(scale(4.000000e+00)) : tensor<16xi8> -> tensor<16xi8>
// CHECK-NOT:     quant.requantize
func.func @chain_double_rounding_agrees(%q: tensor<16xi8>) -> tensor<16xi8> {
  %a = quant.requantize %q in(scale(1.0)) out(scale(2.0)) : tensor<16xi8> -> tensor<16xi8>
  %b = quant.requantize %a in(scale(2.0)) out(scale(4.0)) : tensor<16xi8> -> tensor<16xi8>
  func.return %b : tensor<16xi8>
}

// -----

// Rounding half away twice differs from once (d = 1: 0.5 -> 1 -> 0.5 -> 1, but
// 0.25 -> 0): kept by default; lossy=true folds it and reports the worst-case error.
// CHECK-LABEL: func.func @chain_double_rounding_differs
// CHECK:         %[[A:.*]] = quant.requantize
// CHECK:         quant.requantize %[[A]]
// LOSSY-LABEL: func.func @chain_double_rounding_differs
// LOSSY:         quant.requantize %{{.*}} in(scale(1.000000e+00)) out(scale(4.000000e+00)) rounding(nearest_away)
// LOSSY-NOT:     quant.requantize
// REMARK:      fold-quant.mlir:[[# @LINE + 3]]:3: remark: lossy fold of requantize chain: worst-case error 1 output units
func.func @chain_double_rounding_differs(%q: tensor<16xi8>) -> tensor<16xi8> {
  %a = quant.requantize %q in(scale(1.0)) out(scale(2.0)) rounding(nearest_away) : tensor<16xi8> -> tensor<16xi8>
  %b = quant.requantize %a in(scale(2.0)) out(scale(4.0)) rounding(nearest_away) : tensor<16xi8> -> tensor<16xi8>
  func.return %b : tensor<16xi8>
}

// -----

// An i4 intermediate clamps: kept. Under lossy=true the worst error is at q = 127: the
// chain gives 7 - 8 = -1, the single step 127 - 8 = 119.
// CHECK-LABEL: func.func @chain_clamping_intermediate
// CHECK:         %[[A:.*]] = quant.requantize %{{.*}} : tensor<16xi8> -> tensor<16xi4>
// CHECK:         quant.requantize %[[A]]
// LOSSY-LABEL: func.func @chain_clamping_intermediate
// LOSSY:         quant.requantize %{{.*}} in(scale(1.000000e+00)) out(scale(1.000000e+00) zero_point(-8)) : tensor<16xi8> -> tensor<16xi8>
// REMARK:      fold-quant.mlir:[[# @LINE + 3]]:3: remark: lossy fold of requantize chain: worst-case error 120 output units
func.func @chain_clamping_intermediate(%q: tensor<16xi8>) -> tensor<16xi8> {
  %a = quant.requantize %q in(scale(1.0)) out(scale(1.0)) : tensor<16xi8> -> tensor<16xi4>
  %b = quant.requantize %a in(scale(1.0)) out(scale(1.0) zero_point(-8)) : tensor<16xi4> -> tensor<16xi8>
  func.return %b : tensor<16xi8>
}

// -----

// A runtime intermediate scale: no proof possible, kept (even under lossy=true, since
// nothing can be enumerated).
// CHECK-LABEL: func.func @chain_runtime_intermediate_scale
// CHECK:         %[[A:.*]] = quant.requantize
// CHECK:         quant.requantize %[[A]]
// LOSSY-LABEL: func.func @chain_runtime_intermediate_scale
// LOSSY:         %[[A:.*]] = quant.requantize
// LOSSY:         quant.requantize %[[A]]
func.func @chain_runtime_intermediate_scale(%q: tensor<16xi8>, %s: tensor<f32>) -> tensor<16xi8> {
  %a = quant.requantize %q in(scale(0.5)) out(scale(%s : tensor<f32>)) : tensor<16xi8> -> tensor<16xi16>
  %b = quant.requantize %a in(scale(%s : tensor<f32>)) out(scale(1.5)) : tensor<16xi16> -> tensor<16xi8>
  func.return %b : tensor<16xi8>
}

// -----

// =======================================================================================
// dequantize(quantize(%x)) loses information: never removed, not even under lossy=true.

// CHECK-LABEL: func.func @dequantize_of_quantize_stays
// CHECK:         %[[Q:.*]] = quant.quantize
// CHECK:         quant.dequantize %[[Q]]
// LOSSY-LABEL: func.func @dequantize_of_quantize_stays
// LOSSY:         %[[Q:.*]] = quant.quantize
// LOSSY:         quant.dequantize %[[Q]]
func.func @dequantize_of_quantize_stays(%x: tensor<16xf32>) -> tensor<16xf32> {
  %q = quant.quantize %x scale(0.5) zero_point(1) : tensor<16xf32> -> tensor<16xi8>
  %d = quant.dequantize %q scale(0.5) zero_point(1) : tensor<16xi8> -> tensor<16xf32>
  func.return %d : tensor<16xf32>
}
