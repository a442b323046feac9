// MXFP8 (OCP Microscaling): e4m3 data, one e8m0 scale per block of 32 along the last
// axis, exponent by the NVIDIA rceil rule (smallest power of two with amax / 2^e <= 448,
// computed from the bits of amax), clamped to [-127, 127].
//   qopt examples/mxfp8_dynamic_quant.mlir --lower-quant
func.func @mxfp8_dynamic_quant(%x: tensor<64x1024xf32>) -> (tensor<64x1024xf8E4M3FN>, tensor<64x32xf8E8M0FNU>) {
  %data, %scale = quant.dynamic_quantize %x per_block(1, 32) scale_rounding(rceil) : tensor<64x1024xf32> -> tensor<64x1024xf8E4M3FN>, tensor<64x32xf8E8M0FNU>
  func.return %data, %scale : tensor<64x1024xf8E4M3FN>, tensor<64x32xf8E8M0FNU>
}
