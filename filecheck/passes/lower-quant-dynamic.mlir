// RUN: qopt %s --lower-quant | filecheck %s
// RUN: qopt %s --lower-quant | filecheck %s --check-prefix=NOQUANT
// RUN: qopt %s --lower-quant -t llvm | filecheck %s --check-prefix=LLVM

// lower-quant on dynamic (`?`) dimensions (docs/design.md section 1): every size of a new
// tensor comes from `tensor.dim` of the tensors the quant ops start from and `index`
// arithmetic at function level (`arith.ceildivui` for blocks, `arith.minui %n, %c1` for a
// block of the whole extent); the indexing maps are the static ones. The sizes a kernel
// cannot know are checked when it is called (codegen/extents.py).

// NOQUANT-NOT: quant.
// LLVM: define void @"quantize_per_axis__serial"

// CHECK-LABEL: func.func @quantize_per_axis(
// CHECK-SAME:      %[[X:[a-z0-9_]+]]: tensor<?x?xf32>, %[[S:[a-z0-9_]+]]: tensor<?xf32>
// CHECK-DAG:     %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG:     %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG:     %[[D0:.*]] = tensor.dim %[[X]], %[[C0]] : tensor<?x?xf32>
// CHECK-DAG:     %[[D1:.*]] = tensor.dim %[[X]], %[[C1]] : tensor<?x?xf32>
// CHECK:         %[[E:.*]] = tensor.empty(%[[D0]], %[[D1]]) : tensor<?x?xi8>
// CHECK:         linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%[[X]], %[[S]] : tensor<?x?xf32>, tensor<?xf32>) outs(%[[E]] : tensor<?x?xi8>)
func.func @quantize_per_axis(%x: tensor<?x?xf32>, %s: tensor<?xf32>) -> tensor<?x?xi8> {
  %q = quant.quantize %x scale(%s : tensor<?xf32>) per_axis(1) : tensor<?x?xf32> -> tensor<?x?xi8>
  func.return %q : tensor<?x?xi8>
}

// Static dimensions stay static; only the `?` one gets a size.
// CHECK-LABEL: func.func @dequantize_block(
// CHECK-SAME:      %[[Q:[a-z0-9_]+]]: tensor<?x64xi4>, %[[S:[a-z0-9_]+]]: tensor<?x2xf32>
// CHECK:         %[[D0:.*]] = tensor.dim %[[Q]], %{{.*}} : tensor<?x64xi4>
// CHECK:         %[[E:.*]] = tensor.empty(%[[D0]]) : tensor<?x64xf32>
// CHECK:         linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, (d1 floordiv 32))>, affine_map<(d0, d1) -> (d0, d1)>]
func.func @dequantize_block(%q: tensor<?x64xi4>, %s: tensor<?x2xf32>) -> tensor<?x64xf32> {
  %x = quant.dequantize %q scale(%s : tensor<?x2xf32>) per_block(1, 32) : tensor<?x64xi4> -> tensor<?x64xf32>
  func.return %x : tensor<?x64xf32>
}

// requantize: the same sizes, the same maps (a lookup table needs a static channel count,
// so a dynamic requantize is never lowered to one).
// CHECK-LABEL: func.func @requantize_per_axis(
// CHECK-NOT:     tensor.extract
// CHECK:         tensor.empty(%{{.*}}, %{{.*}}) : tensor<?x?xi8>
// CHECK-NOT:     tensor.extract
// CHECK:         func.return
func.func @requantize_per_axis(%q: tensor<?x?xi8>, %s: tensor<?xf32>) -> tensor<?x?xi8> {
  %r = quant.requantize %q in(scale(0.125) zero_point(3)) out(scale(%s : tensor<?xf32>) per_axis(1)) : tensor<?x?xi8> -> tensor<?x?xi8>
  func.return %r : tensor<?x?xi8>
}

// NVFP4 on any shape: the statistics start from a generic filling a tensor of the
// parameter shape (ceildiv(n, 16) blocks), as a dense constant needs a static shape.
// CHECK-LABEL: func.func @nvfp4(
// CHECK-SAME:      %[[X:[a-z0-9_]+]]: tensor<?x?xf32>
// CHECK-DAG:     %[[D0:.*]] = tensor.dim %[[X]], %{{.*}} : tensor<?x?xf32>
// CHECK-DAG:     %[[D1:.*]] = tensor.dim %[[X]], %{{.*}} : tensor<?x?xf32>
// CHECK-DAG:     %[[C16:.*]] = arith.constant 16 : index
// CHECK:         %[[NB:.*]] = arith.ceildivui %[[D1]], %[[C16]] : index
// CHECK:         %[[E:.*]] = tensor.empty(%[[D0]], %[[NB]]) : tensor<?x?xi32>
// CHECK:         %[[INIT:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} outs(%[[E]] : tensor<?x?xi32>)
// CHECK:         linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, (d1 floordiv 16))>], iterator_types = ["parallel", "reduction"]} ins(%[[X]] : tensor<?x?xf32>) outs(%[[INIT]] : tensor<?x?xi32>)
// CHECK:         tensor.empty(%[[D0]], %[[NB]]) : tensor<?x?xf8E4M3FN>
// CHECK:         tensor.empty(%[[D0]], %[[D1]]) : tensor<?x?xf4E2M1FN>
func.func @nvfp4(%x: tensor<?x?xf32>) -> (tensor<?x?xf4E2M1FN>, tensor<?x?xf8E4M3FN>) {
  %d, %s = quant.dynamic_quantize %x per_block(1, 16) : tensor<?x?xf32> -> tensor<?x?xf4E2M1FN>, tensor<?x?xf8E4M3FN>
  func.return %d, %s : tensor<?x?xf4E2M1FN>, tensor<?x?xf8E4M3FN>
}

// A block of the whole extent: one block, or none when the dimension is empty (min(n, 1)).
// CHECK-LABEL: func.func @per_token(
// CHECK:         %[[C1:.*]] = arith.constant 1 : index
// CHECK-NEXT:    %[[D1:.*]] = tensor.dim %{{.*}}, %[[C1]] : tensor<?x?xf32>
// CHECK:         %{{.*}} = arith.minui %[[D1]], %[[C1]] : index
// CHECK:         affine_map<(d0, d1) -> (d0, 0)>
func.func @per_token(%x: tensor<?x?xf32>) -> (tensor<?x?xi8>, tensor<?x1xf32>) {
  %d, %s = quant.dynamic_quantize %x per_token : tensor<?x?xf32> -> tensor<?x?xi8>, tensor<?x1xf32>
  func.return %d, %s : tensor<?x?xi8>, tensor<?x1xf32>
}

// fake_quantize, dynamic statistics: the same fill, then one fused generic.
// CHECK-LABEL: func.func @fake_blocked(
// CHECK:         %[[NB:.*]] = arith.ceildivui %{{.*}}, %{{.*}} : index
// CHECK:         tensor.empty(%{{.*}}, %[[NB]]) : tensor<?x?xi32>
// CHECK:         iterator_types = ["parallel", "reduction"]
// CHECK:         tensor.empty(%{{.*}}, %{{.*}}) : tensor<?x?xf32>
// CHECK:         func.return
func.func @fake_blocked(%x: tensor<?x?xf32>) -> tensor<?x?xf32> {
  %y = quant.fake_quantize %x storage(i4) per_block(1, 32) : tensor<?x?xf32> -> tensor<?x?xf32>
  func.return %y : tensor<?x?xf32>
}

// Packing with dynamic shapes is row by row (the last dimension packed): a byte reads
// codes (d0, d1 * 2 + lane); the byte count is ceildiv(n, 2), and an odd n is refused
// when the kernel is called (the last lane would read past the row).
// CHECK-LABEL: func.func @pack_rows(
// CHECK-SAME:      %[[X:[a-z0-9_]+]]: tensor<?x?xf32>
// CHECK:         %[[C1:.*]] = arith.constant 1 : index
// CHECK-NEXT:    %[[D1:.*]] = tensor.dim %[[X]], %[[C1]] : tensor<?x?xf32>
// CHECK:         %[[C2:.*]] = arith.constant 2 : index
// CHECK:         %[[NB:.*]] = arith.ceildivui %[[D1]], %[[C2]] : index
// CHECK:         tensor.empty(%{{.*}}, %[[NB]]) : tensor<?x?xui8>
// CHECK:         linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, (d1 * 2))>, affine_map<(d0, d1) -> (d0, ((d1 * 2) + 1))>, affine_map<(d0, d1) -> (d0, d1)>]
func.func @pack_rows(%x: tensor<?x?xf32>) -> tensor<?x?xui8> {
  %q = quant.quantize %x scale(0.5) : tensor<?x?xf32> -> tensor<?x?xi4>
  %p = quant.pack %q : tensor<?x?xi4> -> tensor<?x?xui8>
  func.return %p : tensor<?x?xui8>
}

// unpack fused into dequantize: the codes' extent is the bytes' times 2.
// CHECK-LABEL: func.func @unpack_dequantize(
// CHECK-SAME:      %[[P:[a-z0-9_]+]]: tensor<?x?xui8>
// CHECK:         %[[C1:.*]] = arith.constant 1 : index
// CHECK-NEXT:    %[[D1:.*]] = tensor.dim %[[P]], %[[C1]] : tensor<?x?xui8>
// CHECK:         %[[N:.*]] = arith.muli %[[D1]], %{{.*}} : index
// CHECK:         tensor.empty(%{{.*}}, %[[N]]) : tensor<?x?xf32>
// CHECK:         affine_map<(d0, d1) -> (d0, (d1 floordiv 2))>, affine_map<(d0, d1) -> ((d1 mod 2))>
func.func @unpack_dequantize(%p: tensor<?x?xui8>) -> tensor<?x?xf32> {
  %q = quant.unpack %p : tensor<?x?xui8> -> tensor<?x?xi4>
  %x = quant.dequantize %q scale(0.5) : tensor<?x?xi4> -> tensor<?x?xf32>
  func.return %x : tensor<?x?xf32>
}
