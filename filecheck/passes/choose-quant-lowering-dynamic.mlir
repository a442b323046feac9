// RUN: qopt %s --choose-quant-lowering | filecheck %s --check-prefix=AUTO
// RUN: qopt %s -p 'choose-quant-lowering{allow_lut=true}' | filecheck %s --check-prefix=LUT
// RUN: qopt %s -p 'choose-quant-lowering{mode=composite}' | filecheck %s --check-prefix=COMP
// RUN: qopt %s -p 'choose-quant-lowering{mode=composite},lower-quant' | filecheck %s --check-prefix=LOWERED

// choose-quant-lowering on dynamic (`?`) shapes. A lookup table pays off by the element
// count, which is unknown here, so `allow_lut` never picks it (the fused form is never
// much slower); a `lut` annotation of one's own works when the channel count is static.

// AUTO-LABEL: func.func @requantize_unknown_size
// AUTO:         lowering = "fused"
// LUT-LABEL: func.func @requantize_unknown_size
// LUT:         lowering = "fused"
// COMP-LABEL: func.func @requantize_unknown_size
// COMP:         lowering = "composite"
// LOWERED-LABEL: func.func @requantize_unknown_size
// LOWERED:       tensor.empty(%{{.*}}, %{{.*}}) : tensor<?x?xf32>
// LOWERED:       tensor.empty(%{{.*}}, %{{.*}}) : tensor<?x?xi8>
func.func @requantize_unknown_size(%q: tensor<?x?xi8>) -> tensor<?x?xi8> {
  %r = quant.requantize %q in(scale(0.1)) out(scale(0.3)) : tensor<?x?xi8> -> tensor<?x?xi8>
  func.return %r : tensor<?x?xi8>
}

// AUTO-LABEL: func.func @lut_kept_on_static_channels
// AUTO:         lowering = "lut"
// LOWERED-LABEL: func.func @lut_kept_on_static_channels
// LOWERED:       tensor.empty() : tensor<4x256xi8>
// LOWERED:       tensor.extract
func.func @lut_kept_on_static_channels(%q: tensor<?x4xi8>) -> tensor<?x4xi8> {
  %r = quant.requantize %q in(scale(dense<[0.1, 0.2, 0.3, 0.4]> : tensor<4xf32>) per_axis(1)) out(scale(0.5)) {lowering = "lut"} : tensor<?x4xi8> -> tensor<?x4xi8>
  func.return %r : tensor<?x4xi8>
}

// The choice for dynamic_quantize does not depend on the extents (the same as static).
// AUTO-LABEL: func.func @dynamic_quantize_any_shape
// AUTO:         lowering = "composite"
// LOWERED-LABEL: func.func @dynamic_quantize_any_shape
// LOWERED:       arith.ceildivui
func.func @dynamic_quantize_any_shape(%x: tensor<?x?xf32>) -> (tensor<?x?xf8E4M3FN>, tensor<?x?xf8E8M0FNU>) {
  %d, %s = quant.dynamic_quantize %x per_block(1, 32) : tensor<?x?xf32> -> tensor<?x?xf8E4M3FN>, tensor<?x?xf8E8M0FNU>
  func.return %d, %s : tensor<?x?xf8E4M3FN>, tensor<?x?xf8E8M0FNU>
}
