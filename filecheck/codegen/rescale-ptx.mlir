// RUN: qopt %s --lower-quant -t 'ptx{arch=sm_80}' | filecheck %s
// RUN: %if ptxas %{ qopt %s --lower-quant -t 'ptx{arch=sm_80}' -o %t.ptx && ptxas -arch=sm_80 %t.ptx -o %t.cubin %}

// quant.rescale for an NVIDIA GPU: the i64 arithmetic of the lowering as 64-bit integer
// PTX (the i32 x i32 product as mul.wide.s32, shr.s64 by the per-channel shift), assembled by ptxas when present.

// CHECK:       .target sm_80
// CHECK-NOT:   .extern .func
// CHECK-LABEL: .visible .entry rescale__phase0(
// CHECK:         mul.wide.s32
// CHECK:         shr.s64
// CHECK:         st.b8
func.func @rescale(%x: tensor<64x256xi32>, %m: tensor<256xi32>, %s: tensor<256xi8>) -> tensor<64x256xi8> {
  %r = quant.rescale %x multiplier(%m : tensor<256xi32>) shift(%s : tensor<256xi8>) per_axis(1) out_zero_point(-3) rounding(double_round) : tensor<64x256xi32> -> tensor<64x256xi8>
  func.return %r : tensor<64x256xi8>
}
