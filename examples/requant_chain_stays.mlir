// A requantize chain that must NOT fold: the inner step rounds (scale 0.05 -> 0.3 loses
// information) and then the outer step rounds again (0.3 -> 0.7); the double rounding
// differs from one rounding 0.05 -> 0.7 for some codes, so fold-quant keeps both ops.
//   qopt examples/requant_chain_stays.mlir --fold-quant --lower-quant
func.func @requant_chain_stays(%q: tensor<16x64xi8>) -> tensor<16x64xi8> {
  %mid = quant.requantize %q in(scale(5.000000e-02)) out(scale(3.000000e-01) zero_point(-5)) : tensor<16x64xi8> -> tensor<16x64xi8>
  %out = quant.requantize %mid in(scale(3.000000e-01) zero_point(-5)) out(scale(7.000000e-01)) : tensor<16x64xi8> -> tensor<16x64xi8>
  func.return %out : tensor<16x64xi8>
}
