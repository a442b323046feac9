// A blocked int4 weight (block 32 along the input dimension, f16 scales and i4 zero
// points per block), stored packed two codes per byte, dequantized to bf16.
// quant.unpack and quant.dequantize lower to ONE linalg.generic: each element reads its
// byte (f floordiv 2), shifts by 4 * (f mod 2) and dequantizes with the block's
// parameters at (d0, d1 floordiv 32).
//   qopt examples/int4_block_dequant.mlir --lower-quant
func.func @int4_block_dequant(%packed: tensor<4096xui8>, %scale: tensor<64x4xf16>, %zp: tensor<64x4xi4>) -> tensor<64x128xbf16> {
  %codes = quant.unpack %packed : tensor<4096xui8> -> tensor<64x128xi4>
  %w = quant.dequantize %codes scale(%scale : tensor<64x4xf16>) zero_point(%zp : tensor<64x4xi4>) per_block(1, 32) : tensor<64x128xi4> -> tensor<64x128xbf16>
  func.return %w : tensor<64x128xbf16>
}
