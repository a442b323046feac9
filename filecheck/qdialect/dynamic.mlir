// RUN: qopt %s --split-input-file --verify-diagnostics | filecheck %s

// The verifiers on dynamic (`?`) extents (docs/semantics.md section 2.1): a rule is
// checked wherever both sides have a static extent; a `?` matches any extent here and is
// checked when the kernel is called.

// CHECK-LABEL: func.func @compatible_shapes
// CHECK:         quant.quantize %{{.*}} : tensor<?x8xf32> -> tensor<4x8xi8>
// CHECK:         quant.dequantize %{{.*}} per_block(1, 16) : tensor<?x?xi8> -> tensor<?x?xf32>
// CHECK:         quant.pack %{{.*}} : tensor<?x?xi4> -> tensor<?x?xui8>
func.func @compatible_shapes(%x: tensor<?x8xf32>, %q: tensor<?x?xi8>, %s: tensor<?x3xf32>, %c: tensor<?x?xi4>) -> (tensor<4x8xi8>, tensor<?x?xf32>, tensor<?x?xui8>) {
  %a = quant.quantize %x scale(0.5) : tensor<?x8xf32> -> tensor<4x8xi8>
  %b = quant.dequantize %q scale(%s : tensor<?x3xf32>) per_block(1, 16) : tensor<?x?xi8> -> tensor<?x?xf32>
  %p = quant.pack %c : tensor<?x?xi4> -> tensor<?x?xui8>
  func.return %a, %b, %p : tensor<4x8xi8>, tensor<?x?xf32>, tensor<?x?xui8>
}

// -----

func.func @static_extent_conflict(%x: tensor<?x8xf32>) -> tensor<?x9xi8> {
  // CHECK: dynamic.mlir:[[# @LINE + 1]]:3: error: result shape [?, 9] does not match the input shape [?, 8]
  %q = quant.quantize %x scale(0.5) : tensor<?x8xf32> -> tensor<?x9xi8>
  func.return %q : tensor<?x9xi8>
}

// -----

func.func @static_block_count_conflict(%q: tensor<?x64xi8>, %s: tensor<?x3xf32>) -> tensor<?x64xf32> {
  // CHECK: error: scale shape [?, 3] does not match the granularity per_block: expected [?, 4] for data of shape [?, 64]
  %x = quant.dequantize %q scale(%s : tensor<?x3xf32>) per_block(1, 16) : tensor<?x64xi8> -> tensor<?x64xf32>
  func.return %x : tensor<?x64xf32>
}

// -----

func.func @rank_conflict(%x: tensor<?x?xf32>, %s: tensor<?xf32>) -> tensor<?x?xi8> {
  // CHECK: error: scale shape [?] does not match the granularity per_block
  %q = quant.quantize %x scale(%s : tensor<?xf32>) per_block(1, 16) : tensor<?x?xf32> -> tensor<?x?xi8>
  func.return %q : tensor<?x?xi8>
}
