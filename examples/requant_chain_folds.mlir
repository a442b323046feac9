// A requantize chain that folds exactly (docs/semantics.md section 6): the inner step only moves the
// zero point (same scale, i8 -> i16 is wide enough: no rounding, no clamp), so
//   requantize(requantize(q, in=(0.05, 3), out=(0.05, 1000)), in=(0.05, 1000), out=(0.1, -2))
// is requantize(q, in=(0.05, 3), out=(0.1, -2)) for every input code.
//   qopt examples/requant_chain_folds.mlir --fold-quant --lower-quant
func.func @requant_chain_folds(%q: tensor<16x64xi8>) -> tensor<16x64xi8> {
  %mid = quant.requantize %q in(scale(5.000000e-02) zero_point(3)) out(scale(5.000000e-02) zero_point(1000)) : tensor<16x64xi8> -> tensor<16x64xi16>
  %out = quant.requantize %mid in(scale(5.000000e-02) zero_point(1000)) out(scale(1.000000e-01) zero_point(-2)) : tensor<16x64xi16> -> tensor<16x64xi8>
  func.return %out : tensor<16x64xi8>
}
