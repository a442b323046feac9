// RUN: qopt %s --lower-quant -t 'ptx{arch=sm_90}' | filecheck %s

// codegen.ptx: each phase is a `.entry` kernel with the CPU ABI (data, strides, lo, hi)
// and a grid-stride loop over the outer dimension (tid.x + ctaid.x * ntid.x, step
// ntid.x * nctaid.x). The float ops keep their IEEE-rounded `.rn` forms (no fma
// contraction), roundeven is `cvt.rni`, and there is no libcall (`.extern .func`).

// CHECK:       .version {{[0-9]+}}.{{[0-9]+}}
// CHECK:       .target sm_90
// CHECK:       .address_size 64
// CHECK-NOT:   .extern .func
// CHECK-LABEL: .visible .entry quantize__phase0(
// CHECK-DAG:     mov.u32 %r{{[0-9]+}}, %tid.x;
// CHECK-DAG:     mov.u32 %r{{[0-9]+}}, %ntid.x;
// CHECK-DAG:     mov.u32 %r{{[0-9]+}}, %ctaid.x;
// CHECK-DAG:     mov.u32 %r{{[0-9]+}}, %nctaid.x;
// CHECK:         div.rn.f32
// CHECK:         cvt.rni.f32.f32
// CHECK:         max.NaN.f32
// CHECK:         min.NaN.f32
// CHECK:         cvt.rzi.s32.f32
// CHECK:         st.b8
// CHECK:         ret;
// CHECK-NOT:   .extern .func
func.func @quantize(%x: tensor<16x64xf32>, %s: tensor<64xf32>, %z: tensor<64xi8>) -> tensor<16x64xi8> {
  %q = quant.quantize %x scale(%s : tensor<64xf32>) zero_point(%z : tensor<64xi8>) per_axis(1) : tensor<16x64xf32> -> tensor<16x64xi8>
  func.return %q : tensor<16x64xi8>
}
