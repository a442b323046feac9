// RUN: qopt %s -t llvm | filecheck %s
// RUN: qopt %s -t llvm | filecheck %s --check-prefix=SERIAL

// Dynamic (`?`) extents in codegen (docs/design.md section 2): each buffer's layout row
// `strides[i]` holds its strides, then its extents. An argument's `?` extent is read from
// its row at `rank + dim` (here x's dim 1 at index 2 + 1 = 3, and the outer loop's extent
// for the serial entry at 2 + 0 = 2) and passed to the loop nest after the strides (the
// rows too: whether the output is large enough for streaming stores is decided per call). What
// only a call can tell (that scale's length is x's dim 1) is a ShapeCheck the runtime
// evaluates per argument shape.

// CHECK-LABEL: define internal void @"scale_columns__phase0.loops"
// CHECK-SAME:    (ptr noalias %".1", ptr noalias %".2", ptr noalias %".3", i64 %".4", i64 %".5", i64 %".6", i64 %".7", i64 %".8", i64 %[[ROWS:".9"]], i64 %[[N:".10"]], i64 %[[LO:".11"]], i64 %[[HI:".12"]])
// CHECK:       d0.header:
// CHECK:         %"d0" = phi  i64 [%[[LO]], %"start"]
// CHECK:         icmp slt i64 %"d0", %[[HI]]
// CHECK:       d0.body:
// CHECK:         %[[LEN:.*]] = sub nsw i64 %[[N]], 0
// CHECK:         and i64 %[[LEN]], -16
// CHECK:       d1.unit.rest.header:
// CHECK:         icmp slt i64 %"d1.unit.rest", %[[N]]

// CHECK-LABEL: define void @"scale_columns__phase0"(ptr %".1", ptr %".2", i64 %".3", i64 %".4")
// CHECK:         %[[AT:.*]] = getelementptr i64, ptr %{{.*}}, i64 3
// CHECK:         %[[SYM:.*]] = load i64, ptr %[[AT]]
// CHECK:         call void @"scale_columns__phase0.loops"({{.*}}, i64 %[[SYM]], i64 %".3", i64 %".4")

// SERIAL-LABEL: define void @"scale_columns__serial"(ptr %".1", ptr %".2")
// SERIAL:         %[[AT:.*]] = getelementptr i64, ptr %{{.*}}, i64 2
// SERIAL:         %[[ROWS:.*]] = load i64, ptr %[[AT]]
// SERIAL:         call void @"scale_columns__phase0"(ptr %".1", ptr %".2", i64 0, i64 %[[ROWS]])
#map = affine_map<(d0, d1) -> (d0, d1)>
#map1 = affine_map<(d0, d1) -> (d1)>
func.func @scale_columns(%x: tensor<?x?xf32>, %s: tensor<?xf32>) -> tensor<?x?xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %d0 = tensor.dim %x, %c0 : tensor<?x?xf32>
  %d1 = tensor.dim %x, %c1 : tensor<?x?xf32>
  %e = tensor.empty(%d0, %d1) : tensor<?x?xf32>
  %r = linalg.generic {indexing_maps = [#map, #map1, #map], iterator_types = ["parallel", "parallel"]} ins(%x, %s : tensor<?x?xf32>, tensor<?xf32>) outs(%e : tensor<?x?xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<?x?xf32>
  func.return %r : tensor<?x?xf32>
}

// A block group over a dynamic row: full tiles of 16 blocks (x's dim 1 sdiv 256), then
// a tail tile whose block count is computed at run time.
// CHECK-LABEL: define internal void @"row_amax__phase0.loops"
// CHECK:         sdiv i64 %{{.*}}, 256
// CHECK:       d1.tile.header:
// CHECK:       d1.tile.exit:
// CHECK:         mul nsw i64 %{{.*}}, 256
// CHECK:         icmp slt i64
func.func @row_amax(%x: tensor<?x?xf32>) -> (tensor<?x?xf8E4M3FN>, tensor<?x?xf8E4M3FN>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %d0 = tensor.dim %x, %c0 : tensor<?x?xf32>
  %d1 = tensor.dim %x, %c1 : tensor<?x?xf32>
  %nb = arith.ceildivui %d1, %c16 : index
  %e0 = tensor.empty(%d0, %nb) : tensor<?x?xf32>
  %z = linalg.generic {indexing_maps = [#map], iterator_types = ["parallel", "parallel"]} outs(%e0 : tensor<?x?xf32>) {
  ^bb0(%o: f32):
    %zero = arith.constant 0.0 : f32
    linalg.yield %zero : f32
  } -> tensor<?x?xf32>
  %amax = linalg.generic {indexing_maps = [#map, affine_map<(d0, d1) -> (d0, d1 floordiv 16)>], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<?x?xf32>) outs(%z : tensor<?x?xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %abs = math.absf %a : f32
    %m = arith.maximumf %acc, %abs : f32
    linalg.yield %m : f32
  } -> tensor<?x?xf32>
  %e1 = tensor.empty(%d0, %nb) : tensor<?x?xf8E4M3FN>
  %s = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%amax : tensor<?x?xf32>) outs(%e1 : tensor<?x?xf8E4M3FN>) {
  ^bb0(%a: f32, %o: f8E4M3FN):
    %t = arith.truncf %a : f32 to f8E4M3FN
    linalg.yield %t : f8E4M3FN
  } -> tensor<?x?xf8E4M3FN>
  %e2 = tensor.empty(%d0, %d1) : tensor<?x?xf8E4M3FN>
  %d = linalg.generic {indexing_maps = [#map, affine_map<(d0, d1) -> (d0, d1 floordiv 16)>, #map], iterator_types = ["parallel", "parallel"]} ins(%x, %amax : tensor<?x?xf32>, tensor<?x?xf32>) outs(%e2 : tensor<?x?xf8E4M3FN>) {
  ^bb0(%a: f32, %m: f32, %o: f8E4M3FN):
    %q = arith.divf %a, %m : f32
    %t = arith.truncf %q : f32 to f8E4M3FN
    linalg.yield %t : f8E4M3FN
  } -> tensor<?x?xf8E4M3FN>
  func.return %d, %s : tensor<?x?xf8E4M3FN>, tensor<?x?xf8E4M3FN>
}
