// RUN: qopt %s --lower-quant -t llvm | filecheck %s

// A per-block statistic and what consumes it run as one loop nest (issue 5, design.md
// section 2): inside the row loop, tiles of 16 blocks; per tile the amax of each block
// (`d1.block`), the block scales and divisors (16 blocks: one vector), then the data of
// the tile, still in L1. One phase, so x is read from memory once.

// CHECK-LABEL: define internal void @"nvfp4__phase0.loops"
// CHECK:       d0.body:
// CHECK:       d1.tile.header:
// CHECK:       d1.block.header:
// CHECK-NOT:   define
// CHECK:         fdiv float %{{.*}}, 0x4018000000000000
// CHECK-NOT:   define
// CHECK:         fmul float
// CHECK-NOT:   define
// CHECK:         fdiv float
// CHECK-LABEL: define void @"nvfp4__phase0"
// CHECK-NOT:   nvfp4__phase1
// CHECK-LABEL: define void @"nvfp4__serial"
func.func @nvfp4(%x: tensor<64x1000xf32>, %dq: tensor<f32>) -> (tensor<64x1000xf4E2M1FN>, tensor<64x63xf8E4M3FN>) {
  %d, %s = quant.dynamic_quantize %x per_block(1, 16) double_quant(%dq : tensor<f32>) : tensor<64x1000xf32> -> tensor<64x1000xf4E2M1FN>, tensor<64x63xf8E4M3FN>
  func.return %d, %s : tensor<64x1000xf4E2M1FN>, tensor<64x63xf8E4M3FN>
}

// 128x128 blocks reduce over rows too: the statistic is its own phase before the data's.
// CHECK-LABEL: define internal void @"tiles__phase0.loops"
// CHECK-NOT:   d1.tile.header:
// CHECK-LABEL: define void @"tiles__phase0"
// CHECK:       define void @"tiles__phase1"
func.func @tiles(%x: tensor<256x256xf32>) -> (tensor<256x256xf8E4M3FN>, tensor<2x2xf32>) {
  %d, %s = quant.dynamic_quantize %x block([128, 128]) : tensor<256x256xf32> -> tensor<256x256xf8E4M3FN>, tensor<2x2xf32>
  func.return %d, %s : tensor<256x256xf8E4M3FN>, tensor<2x2xf32>
}
