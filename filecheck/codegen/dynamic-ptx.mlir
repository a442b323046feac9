// REQUIRES: ptxas
// RUN: qopt %s --lower-quant -t 'ptx{arch=sm_90}' -o %t.ptx
// RUN: ptxas -arch=sm_90 %t.ptx -o %t.cubin
// RUN: filecheck %s --input-file %t.ptx

// PTX of dynamic shapes: the same kernels, the extents read from the layout rows, and
// ptxas assembles them (as for static shapes).

// CHECK: .visible .entry nvfp4__phase0(
// CHECK: .visible .entry dequantize_packed__phase0(
func.func @nvfp4(%x: tensor<?x?xf32>) -> (tensor<?x?xf4E2M1FN>, tensor<?x?xf8E4M3FN>) {
  %d, %s = quant.dynamic_quantize %x per_block(1, 16) : tensor<?x?xf32> -> tensor<?x?xf4E2M1FN>, tensor<?x?xf8E4M3FN>
  func.return %d, %s : tensor<?x?xf4E2M1FN>, tensor<?x?xf8E4M3FN>
}

func.func @dequantize_packed(%p: tensor<?x?xui8>, %s: tensor<?x?xf32>) -> tensor<?x?xf32> {
  %q = quant.unpack %p : tensor<?x?xui8> -> tensor<?x?xi4>
  %x = quant.dequantize %q scale(%s : tensor<?x?xf32>) per_block(1, 32) : tensor<?x?xi4> -> tensor<?x?xf32>
  func.return %x : tensor<?x?xf32>
}
