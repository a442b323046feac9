// NVFP4 activation quantization (TensorRT): blocks of 16 along the last axis, e4m3 block
// scales, a runtime double-quant (per-tensor) scale; the data is divided by the ROUNDED
// block scale times dq. Lowered to a row-parallel amax reduction, a scale generic and a
// data generic, which codegen runs as one phase per row. The packed result comes from
// quant.pack (two e2m1 codes per byte).
//   qopt examples/nvfp4_dynamic_quant.mlir --lower-quant
func.func @nvfp4_dynamic_quant(%x: tensor<128x256xbf16>, %dq: tensor<f32>) -> (tensor<16384xui8>, tensor<128x16xf8E4M3FN>) {
  %data, %scale = quant.dynamic_quantize %x per_block(1, 16) double_quant(%dq : tensor<f32>) : tensor<128x256xbf16> -> tensor<128x256xf4E2M1FN>, tensor<128x16xf8E4M3FN>
  %packed = quant.pack %data : tensor<128x256xf4E2M1FN> -> tensor<16384xui8>
  func.return %packed, %scale : tensor<16384xui8>, tensor<128x16xf8E4M3FN>
}
