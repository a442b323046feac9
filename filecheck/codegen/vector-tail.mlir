// RUN: qopt %s --lower-quant -t llvm | filecheck %s

// Every innermost loop is two loops: a multiple of 16 iterations that LLVM vectorizes, and
// the rest, marked scalar. A 13-element row with a 2-byte side is the case where LLVM's
// own masked tail became a 4-byte store past the row (codegen/loops.py, VECTOR_STEP).

// CHECK-LABEL: define internal void @"main__phase0.loops"
// CHECK:         and i64 %{{.*}}, -16
// CHECK:       d1.unit.body:
// CHECK:         store i8
// CHECK:         br label %"d1.unit.header"{{$}}
// CHECK:       d1.unit.rest.body:
// CHECK:         store i8
// CHECK:         br label %"d1.unit.rest.header", !llvm.loop ![[REST:[0-9]+]]
// CHECK:       d1.strided.rest.body:
// CHECK:       ![[NOVEC:[0-9]+]] = !{ !"llvm.loop.vectorize.enable", i1 false }
// CHECK:       ![[REST]] = distinct !{ ![[REST]], ![[NOVEC]] }
func.func @main(%x: tensor<2x13xf16>, %s: tensor<2x4xf32>, %z: tensor<2x4xi8>) -> tensor<2x13xi8> {
  %r = quant.quantize %x scale(%s : tensor<2x4xf32>) zero_point(%z : tensor<2x4xi8>) per_block(1, 4) : tensor<2x13xf16> -> tensor<2x13xi8>
  func.return %r : tensor<2x13xi8>
}
