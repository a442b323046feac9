// RUN: qopt %s --choose-quant-lowering | filecheck %s --check-prefix=AUTO
// RUN: qopt %s -p 'choose-quant-lowering{mode=fused}' | filecheck %s --check-prefix=FUSED
// RUN: qopt %s -p 'choose-quant-lowering{mode=composite}' | filecheck %s --check-prefix=COMP
// RUN: qopt %s -p 'choose-quant-lowering{allow_lut=true}' | filecheck %s --check-prefix=LUT
// RUN: not qopt %s -p 'choose-quant-lowering{mode=fastest}' 2>&1 | filecheck %s --check-prefix=BAD
// RUN: qopt %s -p 'choose-quant-lowering{mode=composite},lower-quant' | filecheck %s --check-prefix=LOWERED

// choose-quant-lowering sets `lowering` on every quant op that has none; an annotation
// already there is a per-op override and survives every mode.

// BAD: choose-quant-lowering: option 'mode' must be one of auto, fused, composite, got 'fastest'

// LOWERED-NOT: quant.

// AUTO-LABEL:  func.func @requantize_small
// AUTO:          quant.requantize {{.*}} {lowering = "fused"}
// FUSED-LABEL: func.func @requantize_small
// FUSED:         quant.requantize {{.*}} {lowering = "fused"}
// COMP-LABEL:  func.func @requantize_small
// COMP:          quant.requantize {{.*}} {lowering = "composite"}
// LUT-LABEL:   func.func @requantize_small
// LUT:           quant.requantize {{.*}} {lowering = "fused"}
func.func @requantize_small(%q: tensor<4x8xi8>) -> tensor<4x8xi8> {
  %r = quant.requantize %q in(scale(2.0)) out(scale(0.5)) : tensor<4x8xi8> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// 65536 elements, one 256-entry table: a table pays off only with allow_lut.
// AUTO-LABEL:  func.func @requantize_large
// AUTO:          quant.requantize {{.*}} {lowering = "fused"}
// LUT-LABEL:   func.func @requantize_large
// LUT:           quant.requantize {{.*}} {lowering = "lut"}
func.func @requantize_large(%q: tensor<256x256xi8>) -> tensor<256x256xi8> {
  %r = quant.requantize %q in(scale(2.0)) out(scale(0.5) zero_point(3)) : tensor<256x256xi8> -> tensor<256x256xi8>
  func.return %r : tensor<256x256xi8>
}

// Blocked parameters cannot use a table (not per-tensor / per-axis).
// LUT-LABEL:   func.func @requantize_blocked
// LUT:           quant.requantize {{.*}} {lowering = "fused"}
func.func @requantize_blocked(%q: tensor<256x256xi8>, %s: tensor<256x8xf32>) -> tensor<256x256xi8> {
  %r = quant.requantize %q in(scale(%s : tensor<256x8xf32>) per_block(1, 32)) out(scale(0.5)) : tensor<256x256xi8> -> tensor<256x256xi8>
  func.return %r : tensor<256x256xi8>
}

// A user annotation is left alone by every mode.
// AUTO-LABEL:  func.func @requantize_annotated
// AUTO:          quant.requantize {{.*}} {lowering = "composite"}
// FUSED-LABEL: func.func @requantize_annotated
// FUSED:         quant.requantize {{.*}} {lowering = "composite"}
// COMP-LABEL:  func.func @requantize_annotated
// COMP:          quant.requantize {{.*}} {lowering = "composite"}
func.func @requantize_annotated(%q: tensor<4x8xi8>) -> tensor<4x8xi8> {
  %r = quant.requantize %q in(scale(2.0)) out(scale(0.5)) {lowering = "composite"} : tensor<4x8xi8> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// Dynamic quantize: composite by default (reading the stored scale is cheaper than
// recomputing it per element); fused on request.
// AUTO-LABEL:  func.func @dynamic
// AUTO:          quant.dynamic_quantize {{.*}} {lowering = "composite"}
// AUTO:          quant.dynamic_quantize {{.*}} {lowering = "composite"}
// FUSED-LABEL: func.func @dynamic
// FUSED:         quant.dynamic_quantize {{.*}} {lowering = "fused"}
// FUSED:         quant.dynamic_quantize {{.*}} {lowering = "fused"}
func.func @dynamic(%x: tensor<16x64xf32>) -> (tensor<16x64xi8>, tensor<16x1xf32>, tensor<16x64xf8E4M3FN>, tensor<16x2xf8E8M0FNU>) {
  %d, %s = quant.dynamic_quantize %x per_token : tensor<16x64xf32> -> tensor<16x64xi8>, tensor<16x1xf32>
  %m, %e = quant.dynamic_quantize %x per_block(1, 32) : tensor<16x64xf32> -> tensor<16x64xf8E4M3FN>, tensor<16x2xf8E8M0FNU>
  func.return %d, %s, %m, %e : tensor<16x64xi8>, tensor<16x1xf32>, tensor<16x64xf8E4M3FN>, tensor<16x2xf8E8M0FNU>
}

// Fake quantize: fused by default, static or dynamic.
// AUTO-LABEL:  func.func @fake
// AUTO:          quant.fake_quantize {{.*}} {lowering = "fused"}
// AUTO:          quant.fake_quantize {{.*}} {lowering = "fused"}
// COMP-LABEL:  func.func @fake
// COMP:          quant.fake_quantize {{.*}} {lowering = "composite"}
// COMP:          quant.fake_quantize {{.*}} {lowering = "composite"}
func.func @fake(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %a = quant.fake_quantize %x storage(i8) scale(0.5) : tensor<4x8xf32> -> tensor<4x8xf32>
  %b = quant.fake_quantize %x storage(i4) per_token : tensor<4x8xf32> -> tensor<4x8xf32>
  func.return %a, %b : tensor<4x8xf32>, tensor<4x8xf32>
}

// pack fuses its producing quantize only when the codes have no other user.
// AUTO-LABEL:  func.func @pack_single_user
// AUTO:          quant.quantize {{.*}} {lowering = "fused"}
// AUTO:          quant.pack {{.*}} {lowering = "fused"}
// COMP-LABEL:  func.func @pack_single_user
// COMP:          quant.quantize {{.*}} {lowering = "fused"}
// COMP:          quant.pack {{.*}} {lowering = "composite"}
func.func @pack_single_user(%x: tensor<4x8xf32>) -> tensor<16xui8> {
  %q = quant.quantize %x scale(0.5) : tensor<4x8xf32> -> tensor<4x8xi4>
  %p = quant.pack %q : tensor<4x8xi4> -> tensor<16xui8>
  func.return %p : tensor<16xui8>
}

// AUTO-LABEL:  func.func @pack_shared_codes
// AUTO:          quant.pack {{.*}} {lowering = "composite"}
func.func @pack_shared_codes(%x: tensor<4x8xf32>) -> (tensor<16xui8>, tensor<4x8xi4>) {
  %q = quant.quantize %x scale(0.5) : tensor<4x8xf32> -> tensor<4x8xi4>
  %p = quant.pack %q : tensor<4x8xi4> -> tensor<16xui8>
  func.return %p, %q : tensor<16xui8>, tensor<4x8xi4>
}

// dequantize absorbs an unpack (fused); composite keeps the unpack on its own.
// AUTO-LABEL:  func.func @unpack_dequantize
// AUTO:          quant.unpack {{.*}} {lowering = "fused"}
// AUTO:          quant.dequantize {{.*}} {lowering = "fused"}
// COMP-LABEL:  func.func @unpack_dequantize
// COMP:          quant.unpack {{.*}} {lowering = "fused"}
// COMP:          quant.dequantize {{.*}} {lowering = "composite"}
func.func @unpack_dequantize(%p: tensor<16xui8>) -> tensor<4x8xf32> {
  %u = quant.unpack %p : tensor<16xui8> -> tensor<4x8xi4>
  %d = quant.dequantize %u scale(0.25) : tensor<4x8xi4> -> tensor<4x8xf32>
  func.return %d : tensor<4x8xf32>
}
