// RUN: qopt %s --split-input-file --fold-quant | filecheck %s

// fold-quant on quant.rescale (fixed point, docs/semantics.md section 12): closed forms
// only, each fold next to its negative case. tests/passes/test_fold_rescale.py checks
// them against the rescale oracle on every input code.

// m == 2^s and equal zero points: v * 2^s has no remainder in any rounding mode.
// CHECK-LABEL: func.func @identity_rescale
// CHECK-SAME:    (%[[X:.*]]: tensor<16xi32>)
// CHECK-NEXT:    func.return %[[X]]
func.func @identity_rescale(%x: tensor<16xi32>) -> tensor<16xi32> {
  %r = quant.rescale %x multiplier(1073741824) shift(30) rounding(double_round) : tensor<16xi32> -> tensor<16xi32>
  func.return %r : tensor<16xi32>
}

// -----

// m = 2^s + 1 multiplies by 1 + 2^-30: not the identity for large inputs.
// CHECK-LABEL: func.func @almost_identity_rescale
// CHECK:         quant.rescale
func.func @almost_identity_rescale(%x: tensor<16xi32>) -> tensor<16xi32> {
  %r = quant.rescale %x multiplier(1073741825) shift(30) : tensor<16xi32> -> tensor<16xi32>
  func.return %r : tensor<16xi32>
}

// -----

// The inner step multiplies exactly by 3 (48 = 3 * 2^4) into i16 without clamping, and
// the outer one reads the zero point it wrote: one rescale with m = 3 * 600000000.
// CHECK-LABEL: func.func @rescale_chain
// CHECK-SAME:    (%[[X:.*]]: tensor<16xi8>)
// CHECK:         %[[R:.*]] = quant.rescale %[[X]] multiplier(1800000000) shift(35) in_zero_point(-5) out_zero_point(-7) rounding(tonearest) : tensor<16xi8> -> tensor<16xi8>
// CHECK-NEXT:    func.return %[[R]]
func.func @rescale_chain(%x: tensor<16xi8>) -> tensor<16xi8> {
  %m = quant.rescale %x multiplier(48) shift(4) in_zero_point(-5) out_zero_point(10) : tensor<16xi8> -> tensor<16xi16>
  %r = quant.rescale %m multiplier(600000000) shift(35) in_zero_point(10) out_zero_point(-7) rounding(tonearest) : tensor<16xi16> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}

// -----

// The inner step rounds (50 is not a multiple of 2^4): the chain stays.
// CHECK-LABEL: func.func @rescale_chain_inner_rounds
// CHECK-COUNT-2: quant.rescale
func.func @rescale_chain_inner_rounds(%x: tensor<16xi8>) -> tensor<16xi8> {
  %m = quant.rescale %x multiplier(50) shift(4) : tensor<16xi8> -> tensor<16xi16>
  %r = quant.rescale %m multiplier(600000000) shift(35) : tensor<16xi16> -> tensor<16xi8>
  func.return %r : tensor<16xi8>
}
