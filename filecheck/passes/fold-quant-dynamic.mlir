// RUN: qopt %s --split-input-file --fold-quant | filecheck %s

// fold-quant on dynamic (`?`) shapes: the folds depend on the parameters and the storage
// types only, never on the extents, so they apply as on static shapes and keep the
// dynamic types (a negative case next to each positive one).

// CHECK-LABEL: func.func @quantize_of_dequantize_identity
// CHECK-SAME:    (%[[Q:.*]]: tensor<?x16xi8>)
// CHECK-NOT:     quant.
// CHECK:         func.return %[[Q]] : tensor<?x16xi8>
func.func @quantize_of_dequantize_identity(%q: tensor<?x16xi8>) -> tensor<?x16xi8> {
  %d = quant.dequantize %q scale(0.1) zero_point(3) : tensor<?x16xi8> -> tensor<?x16xf32>
  %r = quant.quantize %d scale(0.1) zero_point(3) : tensor<?x16xf32> -> tensor<?x16xi8>
  func.return %r : tensor<?x16xi8>
}

// -----

// CHECK-LABEL: func.func @dequantize_quantize_becomes_requantize
// CHECK-SAME:    (%[[Q:.*]]: tensor<?x?xi8>, %[[S:.*]]: tensor<?xf32>)
// CHECK-NEXT:    %[[R:.*]] = quant.requantize %[[Q]] in(scale(%[[S]] : tensor<?xf32>) per_axis(1)) out(scale(5.000000e-01)) : tensor<?x?xi8> -> tensor<?x?xi8>
// CHECK-NEXT:    func.return %[[R]] : tensor<?x?xi8>
func.func @dequantize_quantize_becomes_requantize(%q: tensor<?x?xi8>, %s: tensor<?xf32>) -> tensor<?x?xi8> {
  %d = quant.dequantize %q scale(%s : tensor<?xf32>) per_axis(1) : tensor<?x?xi8> -> tensor<?x?xf32>
  %r = quant.quantize %d scale(0.5) : tensor<?x?xf32> -> tensor<?x?xi8>
  func.return %r : tensor<?x?xi8>
}

// -----

// An exact chain (the inner step only moves the zero point into a wider type) merges.
// CHECK-LABEL: func.func @exact_chain_merges
// CHECK-NEXT:    %[[R:.*]] = quant.requantize %{{.*}} in(scale(5.000000e-02) zero_point(3)) out(scale(1.000000e-01) zero_point(-2)) : tensor<?x?xi8> -> tensor<?x?xi8>
// CHECK-NEXT:    func.return %[[R]]
func.func @exact_chain_merges(%q: tensor<?x?xi8>) -> tensor<?x?xi8> {
  %mid = quant.requantize %q in(scale(5.000000e-02) zero_point(3)) out(scale(5.000000e-02) zero_point(1000)) : tensor<?x?xi8> -> tensor<?x?xi16>
  %out = quant.requantize %mid in(scale(5.000000e-02) zero_point(1000)) out(scale(1.000000e-01) zero_point(-2)) : tensor<?x?xi16> -> tensor<?x?xi8>
  func.return %out : tensor<?x?xi8>
}

// -----

// The inner step rounds: the chain stays.
// CHECK-LABEL: func.func @rounding_chain_stays
// CHECK:         quant.requantize {{.*}} : tensor<?x?xi8> -> tensor<?x?xi8>
// CHECK:         quant.requantize {{.*}} : tensor<?x?xi8> -> tensor<?x?xi8>
func.func @rounding_chain_stays(%q: tensor<?x?xi8>) -> tensor<?x?xi8> {
  %mid = quant.requantize %q in(scale(0.1)) out(scale(0.3)) : tensor<?x?xi8> -> tensor<?x?xi8>
  %out = quant.requantize %mid in(scale(0.3)) out(scale(0.1)) : tensor<?x?xi8> -> tensor<?x?xi8>
  func.return %out : tensor<?x?xi8>
}

// -----

// CHECK-LABEL: func.func @identity_requantize_disappears
// CHECK-SAME:    (%[[Q:.*]]: tensor<?xi8>)
// CHECK-NEXT:    func.return %[[Q]] : tensor<?xi8>
func.func @identity_requantize_disappears(%q: tensor<?xi8>) -> tensor<?xi8> {
  %r = quant.requantize %q in(scale(0.25) zero_point(1)) out(scale(0.25) zero_point(1)) : tensor<?xi8> -> tensor<?xi8>
  func.return %r : tensor<?xi8>
}

// -----

// CHECK-LABEL: func.func @other_zero_point_stays
// CHECK:         quant.requantize
func.func @other_zero_point_stays(%q: tensor<?xi8>) -> tensor<?xi8> {
  %r = quant.requantize %q in(scale(0.25) zero_point(1)) out(scale(0.25) zero_point(2)) : tensor<?xi8> -> tensor<?xi8>
  func.return %r : tensor<?xi8>
}
