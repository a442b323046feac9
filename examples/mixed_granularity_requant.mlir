// Per-tensor input parameters, per-channel (axis 1) output parameters (the ttnn case):
// the two granularities are independent; lower-quant reads the input scale as a scalar
// constant and the output scale / zero point through (d0, d1) -> (d1).
//   qopt examples/mixed_granularity_requant.mlir --lower-quant
//   qopt examples/mixed_granularity_requant.mlir -p 'choose-quant-lowering{mode=composite},lower-quant'
func.func @mixed_granularity_requant(%q: tensor<32x8xui8>, %s_out: tensor<8xf32>, %z_out: tensor<8xi8>) -> tensor<32x8xi8> {
  %r = quant.requantize %q in(scale(2.500000e-02) zero_point(128)) out(scale(%s_out : tensor<8xf32>) zero_point(%z_out : tensor<8xi8>) per_axis(1)) : tensor<32x8xui8> -> tensor<32x8xi8>
  func.return %r : tensor<32x8xi8>
}
