// RUN: qopt %s -t llvm | filecheck %s

// The kernel ABI of docs/design.md section 2: one function per phase, the loop nest it
// calls (noalias buffers + strides), the innermost loop twice (unit stride, strided).

// CHECK-LABEL: define internal void @"quantize__phase0.loops"
// CHECK-SAME:    (ptr noalias %".1", ptr noalias %".2", ptr noalias %".3",
// CHECK:       d0.header:
// CHECK:       d1.unit.body:
// CHECK:         getelementptr inbounds float
// CHECK:         fdiv float
// CHECK:         call float @"llvm.roundeven.f32"
// CHECK:         call float @"llvm.maxnum.f32"
// CHECK:         call float @"llvm.minnum.f32"
// CHECK:         fcmp uno float
// CHECK:         fptosi float %{{.*}} to i32
// CHECK:         trunc i32 %{{.*}} to i8
// CHECK:         store i8
// CHECK:       d1.strided.body:
// CHECK-DAG:   declare float @"llvm.maxnum.f32"(float %".1", float %".2")
// CHECK-LABEL: define void @"quantize__phase0"(ptr %".1", ptr %".2", i64 %".3", i64 %".4")
// CHECK:         call void @"quantize__phase0.loops"
// CHECK-LABEL: define void @"quantize__serial"(ptr %".1", ptr %".2")
// CHECK-NEXT:  {
// CHECK-NEXT:  entry:
// CHECK-NEXT:    call void @"quantize__phase0"(ptr %".1", ptr %".2", i64 0, i64 64)
func.func @quantize(%x: tensor<64x1000xf32>, %s: tensor<f32>) -> tensor<64x1000xi8> {
  %e = tensor.empty() : tensor<64x1000xi8>
  %lo = arith.constant -128.0 : f32
  %hi = arith.constant 127.0 : f32
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> ()>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x, %s : tensor<64x1000xf32>, tensor<f32>) outs(%e : tensor<64x1000xi8>) {
  ^bb0(%a: f32, %sc: f32, %o: i8):
    %d = arith.divf %a, %sc : f32
    %rr = math.roundeven %d : f32
    %m = arith.maxnumf %rr, %lo : f32
    %m2 = arith.minnumf %m, %hi : f32
    %nan = arith.cmpf uno, %d, %d : f32
    %z = arith.constant 0.0 : f32
    %v = arith.select %nan, %z, %m2 : f32
    %t = arith.fptosi %v : f32 to i32
    %t8 = arith.trunci %t : i32 to i8
    linalg.yield %t8 : i8
  } -> tensor<64x1000xi8>
  func.return %r : tensor<64x1000xi8>
}
