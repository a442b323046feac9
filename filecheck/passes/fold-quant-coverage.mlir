// RUN: qopt %s --split-input-file --fold-quant | filecheck %s
// RUN: qopt %s --split-input-file --fold-quant --print-debuginfo | filecheck %s --check-prefix=LOC

// fold-quant's coverage folds (docs/semantics.md section 6), each with its negative case:
// proofs per distinct parameter tuple (not per channel), the closed-form round trip,
// f16 / bf16 intermediates, whole chains. tests/passes/test_fold_chains.py checks the same
// folds against the oracle on every code.

// =======================================================================================
// quantize(dequantize(%q)) over 200 i16 channels sharing one scale: one tuple, settled by
// the closed form (normal scale, (q - zp) * s finite, nearest rounding); no enumeration.

// CHECK-LABEL: func.func @round_trip_i16_many_channels
// CHECK-SAME:    (%[[Q:.*]]: tensor<4x200xi16>)
// CHECK-NOT:     quant.
// CHECK:         func.return %[[Q]]
func.func @round_trip_i16_many_channels(%q: tensor<4x200xi16>) -> tensor<4x200xi16> {
  %d = quant.dequantize %q scale(dense<0.0123> : tensor<200xf32>) zero_point(dense<-5> : tensor<200xi32>) per_axis(1) : tensor<4x200xi16> -> tensor<4x200xf32>
  %r = quant.quantize %d scale(dense<0.0123> : tensor<200xf32>) zero_point(dense<-5> : tensor<200xi32>) per_axis(1) : tensor<4x200xf32> -> tensor<4x200xi16>
  func.return %r : tensor<4x200xi16>
}

// -----

// One channel of three has products that overflow (32767 * 3e38): not the identity
// there, so the pair is only fused.
// CHECK-LABEL: func.func @round_trip_i16_one_channel_overflows
// CHECK:         quant.requantize
func.func @round_trip_i16_one_channel_overflows(%q: tensor<4x3xi16>) -> tensor<4x3xi16> {
  %d = quant.dequantize %q scale(dense<[0.0123, 3.0e38, 0.0123]> : tensor<3xf32>) per_axis(1) : tensor<4x3xi16> -> tensor<4x3xf32>
  %r = quant.quantize %d scale(dense<[0.0123, 3.0e38, 0.0123]> : tensor<3xf32>) per_axis(1) : tensor<4x3xf32> -> tensor<4x3xi16>
  func.return %r : tensor<4x3xi16>
}

// -----

// A dynamic extent: the parameters are read entry by entry, no data shape needed.
// CHECK-LABEL: func.func @round_trip_dynamic_extent
// CHECK-SAME:    (%[[Q:.*]]: tensor<?x70xi16>)
// CHECK-NOT:     quant.
// CHECK:         func.return %[[Q]]
func.func @round_trip_dynamic_extent(%q: tensor<?x70xi16>) -> tensor<?x70xi16> {
  %d = quant.dequantize %q scale(dense<0.07> : tensor<70xf32>) zero_point(dense<11> : tensor<70xi32>) per_axis(1) : tensor<?x70xi16> -> tensor<?x70xf32>
  %r = quant.quantize %d scale(dense<0.07> : tensor<70xf32>) zero_point(dense<11> : tensor<70xi32>) per_axis(1) : tensor<?x70xf32> -> tensor<?x70xi16>
  func.return %r : tensor<?x70xi16>
}

// -----

// toward_zero: 15 * 0.3 / 0.3 truncates to 14, on a dynamic extent too: only fused.
// CHECK-LABEL: func.func @round_trip_dynamic_extent_toward_zero
// CHECK:         quant.requantize %{{.*}} rounding(toward_zero) : tensor<?x70xi16> -> tensor<?x70xi16>
func.func @round_trip_dynamic_extent_toward_zero(%q: tensor<?x70xi16>) -> tensor<?x70xi16> {
  %d = quant.dequantize %q scale(dense<0.3> : tensor<70xf32>) per_axis(1) : tensor<?x70xi16> -> tensor<?x70xf32>
  %r = quant.quantize %d scale(dense<0.3> : tensor<70xf32>) per_axis(1) rounding(toward_zero) : tensor<?x70xf32> -> tensor<?x70xi16>
  func.return %r : tensor<?x70xi16>
}

// -----

// =======================================================================================
// dequantize -> quantize through f16 / bf16: fused where the rounding in between changes
// no code (enumerated over every input code).

// 0.5 * (q - 3) is exact in f16: one requantize.
// CHECK-LABEL: func.func @fuse_through_f16_exact
// CHECK-SAME:    (%[[Q:.*]]: tensor<16xi8>)
// CHECK:         %[[R:.*]] = quant.requantize %[[Q]] in(scale(5.000000e-01) zero_point(3)) out(scale(2.500000e-01) zero_point(-7)) : tensor<16xi8> -> tensor<16xi16>
// CHECK-NEXT:    func.return %[[R]]
func.func @fuse_through_f16_exact(%q: tensor<16xi8>) -> tensor<16xi16> {
  %d = quant.dequantize %q scale(0.5) zero_point(3) : tensor<16xi8> -> tensor<16xf16>
  %r = quant.quantize %d scale(0.25) zero_point(-7) : tensor<16xf16> -> tensor<16xi16>
  func.return %r : tensor<16xi16>
}

// -----

// 0.1 * (q - 3) rounds in bf16, and the finer output grid tells the roundings apart.
// CHECK-LABEL: func.func @no_fuse_through_bf16_rounding
// CHECK:         quant.dequantize %{{.*}} : tensor<16xi8> -> tensor<16xbf16>
// CHECK:         quant.quantize %{{.*}} : tensor<16xbf16> -> tensor<16xi16>
func.func @no_fuse_through_bf16_rounding(%q: tensor<16xi8>) -> tensor<16xi16> {
  %d = quant.dequantize %q scale(0.1) zero_point(3) : tensor<16xi8> -> tensor<16xbf16>
  %r = quant.quantize %d scale(1.0e-3) zero_point(-7) : tensor<16xbf16> -> tensor<16xi16>
  func.return %r : tensor<16xi16>
}

// -----

// =======================================================================================
// Whole chains: i8 -> ui8 (x4: negatives clamp to 0) -> i8 (/4) -> ui2 (half_up). No
// pair is exact alone; the whole chain equals one requantize i8 -> ui2, whose clamp to
// [0, 3] hides both earlier clamps and the double rounding. One proof for the chain.

// CHECK-LABEL: func.func @whole_chain
// CHECK-SAME:    (%[[Q:.*]]: tensor<16xi8>)
// CHECK:         %[[R:.*]] = quant.requantize %[[Q]] in(scale(4.000000e+00)) out(scale(4.000000e+00)) rounding(half_up) : tensor<16xi8> -> tensor<16xui2>
// CHECK-NEXT:    func.return %[[R]]
// LOC-LABEL:   func.func @whole_chain
// LOC:           quant.requantize {{.*}} loc(fused["{{.*}}":[[# @LINE + 2]]:3, "{{.*}}":[[# @LINE + 3]]:3, "{{.*}}":[[# @LINE + 4]]:3])
func.func @whole_chain(%q: tensor<16xi8>) -> tensor<16xui2> {
  %a = quant.requantize %q in(scale(4.0)) out(scale(1.0)) : tensor<16xi8> -> tensor<16xui8>
  %b = quant.requantize %a in(scale(1.0)) out(scale(4.0)) : tensor<16xui8> -> tensor<16xi8>
  %c = quant.requantize %b in(scale(4.0)) out(scale(4.0)) rounding(half_up) : tensor<16xi8> -> tensor<16xui2>
  func.return %c : tensor<16xui2>
}

// -----

// Into ui8 the first clamp shows (q = 127 gives 64): nothing folds.
// CHECK-LABEL: func.func @whole_chain_not_exact
// CHECK-COUNT-3: quant.requantize
func.func @whole_chain_not_exact(%q: tensor<16xi8>) -> tensor<16xui8> {
  %a = quant.requantize %q in(scale(4.0)) out(scale(1.0)) : tensor<16xi8> -> tensor<16xui8>
  %b = quant.requantize %a in(scale(1.0)) out(scale(4.0)) : tensor<16xui8> -> tensor<16xi8>
  %c = quant.requantize %b in(scale(4.0)) out(scale(4.0)) rounding(half_up) : tensor<16xi8> -> tensor<16xui8>
  func.return %c : tensor<16xui8>
}

// -----

// A chain through bf16 pairs: the first pair is an f32 requantize (fused on its own);
// the second is not (bf16 rounds ui16 codes), but only the 16 codes the first step
// writes reach it, and on those the whole chain is one requantize.
// CHECK-LABEL: func.func @chain_through_bf16
// CHECK-SAME:    (%[[Q:.*]]: tensor<16xui4>)
// CHECK:         %[[R:.*]] = quant.requantize %[[Q]] in(scale({{.*}}) zero_point(15)) out(scale({{.*}}) zero_point(13178)) : tensor<16xui4> -> tensor<16xui16>
// CHECK-NEXT:    func.return %[[R]]
func.func @chain_through_bf16(%q: tensor<16xui4>) -> tensor<16xui16> {
  %x0 = quant.dequantize %q scale(0.0013654488138854504) zero_point(15) : tensor<16xui4> -> tensor<16xbf16>
  %m0 = quant.quantize %x0 scale(0.004096346441656351) zero_point(15) : tensor<16xbf16> -> tensor<16xui16>
  %x1 = quant.dequantize %m0 scale(0.004096346441656351) zero_point(15) : tensor<16xui16> -> tensor<16xbf16>
  %v = quant.quantize %x1 scale(0.01228903979063034) zero_point(13178) : tensor<16xbf16> -> tensor<16xui16>
  func.return %v : tensor<16xui16>
}

// -----

// With a finer output scale the bf16 rounding shows: the pair stays.
// CHECK-LABEL: func.func @chain_through_bf16_rounds
// CHECK:         quant.requantize
// CHECK:         quant.dequantize %{{.*}} : tensor<16xui16> -> tensor<16xbf16>
// CHECK:         quant.quantize
func.func @chain_through_bf16_rounds(%q: tensor<16xui4>) -> tensor<16xui16> {
  %x0 = quant.dequantize %q scale(0.0013654488138854504) zero_point(15) : tensor<16xui4> -> tensor<16xbf16>
  %m0 = quant.quantize %x0 scale(0.004096346441656351) zero_point(15) : tensor<16xbf16> -> tensor<16xui16>
  %x1 = quant.dequantize %m0 scale(0.004096346441656351) zero_point(15) : tensor<16xui16> -> tensor<16xbf16>
  %v = quant.quantize %x1 scale(1.0e-6) zero_point(13178) : tensor<16xbf16> -> tensor<16xui16>
  func.return %v : tensor<16xui16>
}

// -----

// =======================================================================================
// Zero point added before rounding (upstream MLIR, StableHLO): the proofs evaluate that
// order; the closed-form round trip holds in both orders.

// CHECK-LABEL: func.func @round_trip_zero_point_before_rounding
// CHECK-SAME:    (%[[Q:.*]]: tensor<16xi8>)
// CHECK-NEXT:    func.return %[[Q]]
func.func @round_trip_zero_point_before_rounding(%q: tensor<16xi8>) -> tensor<16xi8> {
  %d = quant.dequantize %q scale(0.3) zero_point(3) : tensor<16xi8> -> tensor<16xf32>
  %r = quant.quantize %d scale(0.3) zero_point(3) zero_point_order(before_rounding) : tensor<16xf32> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}

// -----

// A runtime zero point added before rounding: the result is no function of q - zp alone,
// so the identity proof over differences does not apply, and the requantize stays
// (conservatively: with this scale it is in fact the identity).
// CHECK-LABEL: func.func @identity_runtime_zero_point_before_rounding
// CHECK:         quant.requantize
func.func @identity_runtime_zero_point_before_rounding(%q: tensor<16xi8>, %z: tensor<i8>) -> tensor<16xi8> {
  %r = quant.requantize %q in(scale(0.5) zero_point(%z : tensor<i8>)) out(scale(0.5) zero_point(%z : tensor<i8>)) zero_point_order(before_rounding) : tensor<16xi8> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}
