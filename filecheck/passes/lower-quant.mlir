// RUN: qopt %s --lower-quant | filecheck %s
// RUN: qopt %s --lower-quant | filecheck %s --check-prefix=NOQUANT
// RUN: qopt %s --lower-quant | grep -B1 -E 'fpto[su]i' | grep -v -E 'fpto[su]i|^--$' | sed -E 's/.*= (arith\.[a-z]+) .*/\1/' | sort -u | paste -sd, | filecheck %s --check-prefix=CLAMP

// lower-quant turns every quant op into linalg.generic on tensors with scalar arith/math
// bodies (docs/design.md section 1). Ops without a `lowering` annotation get the
// choose-quant-lowering default first; annotated ones below pick their form.

// NOQUANT-NOT: quant.

// The op right before every float-to-integer conversion is the upper clamp, minimumf
// (the set of ops found there, joined by commas, is exactly that one):
// CLAMP: {{^arith.minimumf$}}

// ---------------------------------------------------------------------------------------
// quantize
// ---------------------------------------------------------------------------------------

// CHECK-LABEL: func.func @quantize_per_tensor_i8(
// CHECK-SAME:      %[[X:[a-z0-9_]+]]: tensor<4x8xf32>
// CHECK:         %[[E:.*]] = tensor.empty() : tensor<4x8xi8>
// CHECK:         %[[R:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%[[X]] : tensor<4x8xf32>) outs(%[[E]] : tensor<4x8xi8>) {
// CHECK-NEXT:    ^bb0(%[[IN:[0-9]+]]: f32, %{{[0-9]+}}: i8):
// CHECK-NEXT:      %[[S:.*]] = arith.constant 1.250000e-01 : f32
// CHECK-NEXT:      %[[ZP:.*]] = arith.constant 3.000000e+00 : f32
// CHECK-NEXT:      %[[V:.*]] = arith.divf %[[IN]], %[[S]] : f32
// CHECK-NEXT:      %[[RND:.*]] = math.roundeven %[[V]] : f32
// CHECK-NEXT:      %[[T:.*]] = arith.addf %[[RND]], %[[ZP]] : f32
// CHECK-NEXT:      %[[NAN:.*]] = arith.cmpf uno, %[[T]], %[[T]] : f32
// CHECK-NEXT:      %[[T1:.*]] = arith.select %[[NAN]], %[[ZP]], %[[T]] : f32
// CHECK-NEXT:      %[[LO:.*]] = arith.constant -1.280000e+02 : f32
// CHECK-NEXT:      %[[T2:.*]] = arith.maximumf %[[T1]], %[[LO]] : f32
// CHECK-NEXT:      %[[HI:.*]] = arith.constant 1.270000e+02 : f32
// CHECK-NEXT:      %[[T3:.*]] = arith.minimumf %[[T2]], %[[HI]] : f32
// CHECK-NEXT:      %[[I:.*]] = arith.fptosi %[[T3]] : f32 to i32
// CHECK-NEXT:      %[[Q:.*]] = arith.trunci %[[I]] : i32 to i8
// CHECK-NEXT:      linalg.yield %[[Q]] : i8
// CHECK-NEXT:    } -> tensor<4x8xi8>
// CHECK-NEXT:    func.return %[[R]] : tensor<4x8xi8>
func.func @quantize_per_tensor_i8(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  %q = quant.quantize %x scale(1.250000e-01) zero_point(3) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}

// Per-axis parameters are read through (d0, d1) -> (d1); a ui8 zero point by uitofp.
// CHECK-LABEL: func.func @quantize_per_axis_ui8(
// CHECK-SAME:      %[[X:[a-z0-9_]+]]: tensor<4x8xf32>, %[[S:[a-z0-9_]+]]: tensor<8xf32>, %[[Z:[a-z0-9_]+]]: tensor<8xui8>
// CHECK:         linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%[[X]], %[[S]], %[[Z]] : tensor<4x8xf32>, tensor<8xf32>, tensor<8xui8>)
// CHECK-NEXT:    ^bb0(%[[IN:[0-9]+]]: f32, %[[SC:[0-9]+]]: f32, %[[ZP:[0-9]+]]: ui8, %{{[0-9]+}}: ui8):
// CHECK-NEXT:      %[[ZF:.*]] = arith.uitofp %[[ZP]] : ui8 to f32
// CHECK-NEXT:      %[[V:.*]] = arith.divf %[[IN]], %[[SC]] : f32
// CHECK-NEXT:      %[[RND:.*]] = math.roundeven %[[V]] : f32
// CHECK-NEXT:      arith.addf %[[RND]], %[[ZF]] : f32
// CHECK:           arith.constant 0.000000e+00 : f32
// CHECK:           arith.constant 2.550000e+02 : f32
// CHECK-NEXT:      %[[C:.*]] = arith.minimumf
// CHECK-NEXT:      %[[I:.*]] = arith.fptosi %[[C]] : f32 to i32
// CHECK-NEXT:      arith.trunci %[[I]] : i32 to ui8
func.func @quantize_per_axis_ui8(%x: tensor<4x8xf32>, %s: tensor<8xf32>, %z: tensor<8xui8>) -> tensor<4x8xui8> {
  %q = quant.quantize %x scale(%s : tensor<8xf32>) zero_point(%z : tensor<8xui8>) per_axis(1) : tensor<4x8xf32> -> tensor<4x8xui8>
  func.return %q : tensor<4x8xui8>
}

// Blocks of 32 along axis 1: (d0, d1) -> (d0, d1 floordiv 32); i4 is a real i4 in the IR.
// CHECK-LABEL: func.func @quantize_per_block_i4(
// CHECK:         linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, (d1 floordiv 32))>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
// CHECK-SAME:      outs(%{{.*}} : tensor<4x64xi4>)
// CHECK-DAG:       arith.constant -8.000000e+00 : f32
// CHECK-DAG:       arith.constant 7.000000e+00 : f32
// CHECK:           %[[C:.*]] = arith.minimumf
// CHECK-NEXT:      %[[I:.*]] = arith.fptosi %[[C]] : f32 to i32
// CHECK-NEXT:      %[[Q:.*]] = arith.trunci %[[I]] : i32 to i4
// CHECK-NEXT:      linalg.yield %[[Q]] : i4
func.func @quantize_per_block_i4(%x: tensor<4x64xf32>, %s: tensor<4x2xf32>) -> tensor<4x64xi4> {
  %q = quant.quantize %x scale(%s : tensor<4x2xf32>) per_block(1, 32) : tensor<4x64xf32> -> tensor<4x64xi4>
  func.return %q : tensor<4x64xi4>
}

// 128x128 weight tiles; float storage: clip to +-448 (NaN propagates), a NaN made the
// quiet NaN with the sign of x (docs/semantics.md), then truncf.
// CHECK-LABEL: func.func @quantize_block_e4m3(
// CHECK:         linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> ((d0 floordiv 128), (d1 floordiv 128))>, affine_map<(d0, d1) -> (d0, d1)>]
// CHECK-NEXT:    ^bb0(%[[IN:[0-9]+]]: f32, %[[SC:[0-9]+]]: f32, %{{[0-9]+}}: f8E4M3FN):
// CHECK-NEXT:      %[[V:.*]] = arith.divf %[[IN]], %[[SC]] : f32
// CHECK-NEXT:      %[[LO:.*]] = arith.constant -4.480000e+02 : f32
// CHECK-NEXT:      %[[V1:.*]] = arith.maximumf %[[V]], %[[LO]] : f32
// CHECK-NEXT:      %[[HI:.*]] = arith.constant 4.480000e+02 : f32
// CHECK-NEXT:      %[[V2:.*]] = arith.minimumf %[[V1]], %[[HI]] : f32
// CHECK-NEXT:      %[[ISNAN:.*]] = arith.cmpf uno, %[[V2]], %[[V2]] : f32
// CHECK-NEXT:      %[[NAN:.*]] = arith.constant 0x7fc00000 : f32
// CHECK-NEXT:      %[[SNAN:.*]] = math.copysign %[[NAN]], %[[IN]] : f32
// CHECK-NEXT:      %[[V3:.*]] = arith.select %[[ISNAN]], %[[SNAN]], %[[V2]] : f32
// CHECK-NEXT:      %[[Q:.*]] = arith.truncf %[[V3]] : f32 to f8E4M3FN
// CHECK-NEXT:      linalg.yield %[[Q]] : f8E4M3FN
func.func @quantize_block_e4m3(%x: tensor<256x256xf32>, %s: tensor<2x2xf32>) -> tensor<256x256xf8E4M3FN> {
  %q = quant.quantize %x scale(%s : tensor<2x2xf32>) block([128, 128]) : tensor<256x256xf32> -> tensor<256x256xf8E4M3FN>
  func.return %q : tensor<256x256xf8E4M3FN>
}

// f16 input extended first; per_token reads (d0, 0); saturate(false): no clamp.
// CHECK-LABEL: func.func @quantize_per_token_e5m2_no_saturate(
// CHECK:         affine_map<(d0, d1) -> (d0, 0)>
// CHECK-NEXT:    ^bb0(%[[IN:[0-9]+]]: f16, %[[SC:[0-9]+]]: f32, %{{[0-9]+}}: f8E5M2):
// CHECK-NEXT:      %[[XF:.*]] = arith.extf %[[IN]] : f16 to f32
// CHECK-NEXT:      %[[V:.*]] = arith.divf %[[XF]], %[[SC]] : f32
// CHECK-NEXT:      %[[ISNAN:.*]] = arith.cmpf uno, %[[V]], %[[V]] : f32
// CHECK-NEXT:      %[[NAN:.*]] = arith.constant 0x7fc00000 : f32
// CHECK-NEXT:      %[[SNAN:.*]] = math.copysign %[[NAN]], %[[XF]] : f32
// CHECK-NEXT:      %[[V1:.*]] = arith.select %[[ISNAN]], %[[SNAN]], %[[V]] : f32
// CHECK-NEXT:      %[[Q:.*]] = arith.truncf %[[V1]] : f32 to f8E5M2
// CHECK-NEXT:      linalg.yield %[[Q]] : f8E5M2
func.func @quantize_per_token_e5m2_no_saturate(%x: tensor<4x8xf16>, %s: tensor<4x1xf32>) -> tensor<4x8xf8E5M2> {
  %q = quant.quantize %x scale(%s : tensor<4x1xf32>) per_token saturate(false) : tensor<4x8xf16> -> tensor<4x8xf8E5M2>
  func.return %q : tensor<4x8xf8E5M2>
}

// A dense constant scale becomes an f32 table read like an operand.
// CHECK-LABEL: func.func @quantize_dense_const_e2m1(
// CHECK-SAME:      %[[X:[a-z0-9_]+]]: tensor<2x4xbf16>
// CHECK:         %[[T:.*]] = arith.constant dense<[1.000000e+00, 2.000000e+00, 5.000000e-01, 2.500000e-01]> : tensor<4xf32>
// CHECK:         linalg.generic {{.*}} ins(%[[X]], %[[T]] : tensor<2x4xbf16>, tensor<4xf32>)
// CHECK:           arith.extf %{{.*}} : bf16 to f32
// CHECK:           arith.constant -6.000000e+00 : f32
// CHECK:           arith.constant 6.000000e+00 : f32
// CHECK:           arith.truncf %{{.*}} : f32 to f4E2M1FN
func.func @quantize_dense_const_e2m1(%x: tensor<2x4xbf16>) -> tensor<2x4xf4E2M1FN> {
  %q = quant.quantize %x scale(dense<[1.0, 2.0, 0.5, 0.25]> : tensor<4xf32>) per_axis(1) : tensor<2x4xbf16> -> tensor<2x4xf4E2M1FN>
  func.return %q : tensor<2x4xf4E2M1FN>
}

// CHECK-LABEL: func.func @quantize_nearest_away(
// CHECK:         %[[V:.*]] = arith.divf
// CHECK-NEXT:    %[[R:.*]] = math.round %[[V]] : f32
// CHECK:         arith.cmpf uno, %[[R]], %[[R]] : f32
func.func @quantize_nearest_away(%x: tensor<8xf32>) -> tensor<8xi8> {
  %q = quant.quantize %x scale(1.0) rounding(nearest_away) : tensor<8xf32> -> tensor<8xi8>
  func.return %q : tensor<8xi8>
}

// half_up is floor(v + 0.5) computed exactly: floor(v) + (v - floor(v) >= 0.5).
// CHECK-LABEL: func.func @quantize_half_up(
// CHECK:         %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:    %[[V:.*]] = arith.divf %{{.*}}, %[[ONE]] : f32
// CHECK-NEXT:    %[[FL:.*]] = math.floor %[[V]] : f32
// CHECK-NEXT:    %[[FR:.*]] = arith.subf %[[V]], %[[FL]] : f32
// CHECK-NEXT:    %[[HALF:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-NEXT:    %[[UP:.*]] = arith.cmpf oge, %[[FR]], %[[HALF]] : f32
// CHECK-NEXT:    %[[FL1:.*]] = arith.addf %[[FL]], %[[ONE]] : f32
// CHECK-NEXT:    %[[R:.*]] = arith.select %[[UP]], %[[FL1]], %[[FL]] : f32
// CHECK-NOT:     arith.addf %[[V]]
// CHECK:         arith.cmpf uno, %[[R]], %[[R]] : f32
func.func @quantize_half_up(%x: tensor<8xf32>) -> tensor<8xi8> {
  %q = quant.quantize %x scale(1.0) rounding(half_up) : tensor<8xf32> -> tensor<8xi8>
  func.return %q : tensor<8xi8>
}

// toward_zero is math.trunc; a narrow range clamps to [-127, 127].
// CHECK-LABEL: func.func @quantize_toward_zero_narrow(
// CHECK:         math.trunc %{{.*}} : f32
// CHECK:         arith.constant -1.270000e+02 : f32
// CHECK:         arith.constant 1.270000e+02 : f32
// CHECK-NEXT:    %[[C:.*]] = arith.minimumf
// CHECK-NEXT:    arith.fptosi %[[C]] : f32 to i32
func.func @quantize_toward_zero_narrow(%x: tensor<8xf32>) -> tensor<8xi8> {
  %q = quant.quantize %x scale(1.0) rounding(toward_zero) range(-127, 127) : tensor<8xf32> -> tensor<8xi8>
  func.return %q : tensor<8xi8>
}

// minval form: (x - minval) / s, rounded, + qmin.
// CHECK-LABEL: func.func @quantize_minval_ui4(
// CHECK:         ^bb0(%[[IN:[0-9]+]]: f32, %{{[0-9]+}}: ui4):
// CHECK-DAG:       %[[S:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-DAG:       %[[M:.*]] = arith.constant -3.000000e+00 : f32
// CHECK:           %[[D:.*]] = arith.subf %[[IN]], %[[M]] : f32
// CHECK-NEXT:      %[[V:.*]] = arith.divf %[[D]], %[[S]] : f32
// CHECK:           arith.constant 1.500000e+01 : f32
// CHECK:           arith.trunci %{{.*}} : i32 to ui4
func.func @quantize_minval_ui4(%x: tensor<8xf32>) -> tensor<8xui4> {
  %q = quant.quantize %x scale(0.5) minval(-3.0) : tensor<8xf32> -> tensor<8xui4>
  func.return %q : tensor<8xui4>
}

// CHECK-LABEL: func.func @quantize_i16_ui2(
// CHECK:         arith.constant -3.276800e+04 : f32
// CHECK:         arith.constant 3.276700e+04 : f32
// CHECK:         arith.trunci %{{.*}} : i32 to i16
// CHECK:         arith.constant 3.000000e+00 : f32
// CHECK:         arith.trunci %{{.*}} : i32 to ui2
func.func @quantize_i16_ui2(%x: tensor<8xf32>) -> (tensor<8xi16>, tensor<8xui2>) {
  %a = quant.quantize %x scale(0.5) : tensor<8xf32> -> tensor<8xi16>
  %b = quant.quantize %x scale(0.5) : tensor<8xf32> -> tensor<8xui2>
  func.return %a, %b : tensor<8xi16>, tensor<8xui2>
}

// ---------------------------------------------------------------------------------------
// dequantize
// ---------------------------------------------------------------------------------------

// (f32(q) - f32(zp)) * s, a NaN with the sign of q (docs/semantics.md), then truncf to f16.
// CHECK-LABEL: func.func @dequantize_per_tensor_i8_f16(
// CHECK:         ^bb0(%[[IN:[0-9]+]]: i8, %{{[0-9]+}}: f16):
// CHECK-NEXT:      %[[S:.*]] = arith.constant 2.000000e+00 : f32
// CHECK-NEXT:      %[[ZP:.*]] = arith.constant -3.000000e+00 : f32
// CHECK-NEXT:      %[[QF:.*]] = arith.sitofp %[[IN]] : i8 to f32
// CHECK-NEXT:      %[[D:.*]] = arith.subf %[[QF]], %[[ZP]] : f32
// CHECK-NEXT:      %[[X:.*]] = arith.mulf %[[D]], %[[S]] : f32
// CHECK-NEXT:      %[[ISNAN:.*]] = arith.cmpf uno, %[[X]], %[[X]] : f32
// CHECK-NEXT:      %[[NAN:.*]] = arith.constant 0x7fc00000 : f32
// CHECK-NEXT:      %[[SNAN:.*]] = math.copysign %[[NAN]], %[[QF]] : f32
// CHECK-NEXT:      %[[X1:.*]] = arith.select %[[ISNAN]], %[[SNAN]], %[[X]] : f32
// CHECK-NEXT:      %[[H:.*]] = arith.truncf %[[X1]] : f32 to f16
// CHECK-NEXT:      linalg.yield %[[H]] : f16
func.func @dequantize_per_tensor_i8_f16(%q: tensor<4x8xi8>) -> tensor<4x8xf16> {
  %x = quant.dequantize %q scale(2.0) zero_point(-3) : tensor<4x8xi8> -> tensor<4x8xf16>
  func.return %x : tensor<4x8xf16>
}

// CHECK-LABEL: func.func @dequantize_per_axis_ui4(
// CHECK:         affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0)>
// CHECK:         ^bb0(%[[IN:[0-9]+]]: ui4, %[[S:[0-9]+]]: f32, %[[Z:[0-9]+]]: ui4, %{{[0-9]+}}: f32):
// CHECK-NEXT:      %[[ZF:.*]] = arith.uitofp %[[Z]] : ui4 to f32
// CHECK-NEXT:      %[[QF:.*]] = arith.uitofp %[[IN]] : ui4 to f32
// CHECK-NEXT:      %[[D:.*]] = arith.subf %[[QF]], %[[ZF]] : f32
// CHECK-NEXT:      arith.mulf %[[D]], %[[S]] : f32
func.func @dequantize_per_axis_ui4(%q: tensor<4x8xui4>, %s: tensor<4xf32>, %z: tensor<4xui4>) -> tensor<4x8xf32> {
  %x = quant.dequantize %q scale(%s : tensor<4xf32>) zero_point(%z : tensor<4xui4>) per_axis(0) : tensor<4x8xui4> -> tensor<4x8xf32>
  func.return %x : tensor<4x8xf32>
}

// NVFP4: q * (f32(e4m3 scale) * dq), the 0-d dq read through (d0, d1) -> ().
// CHECK-LABEL: func.func @dequantize_nvfp4_double_quant(
// CHECK:         affine_map<(d0, d1) -> (d0, (d1 floordiv 16))>, affine_map<(d0, d1) -> ()>
// CHECK:         ^bb0(%[[IN:[0-9]+]]: f4E2M1FN, %[[S:[0-9]+]]: f8E4M3FN, %[[DQ:[0-9]+]]: f32, %{{[0-9]+}}: bf16):
// CHECK-NEXT:      %[[SF:.*]] = arith.extf %[[S]] : f8E4M3FN to f32
// CHECK-NEXT:      %[[QF:.*]] = arith.extf %[[IN]] : f4E2M1FN to f32
// CHECK-NEXT:      %[[S2:.*]] = arith.mulf %[[SF]], %[[DQ]] : f32
// CHECK-NEXT:      %[[X:.*]] = arith.mulf %[[QF]], %[[S2]] : f32
// CHECK-NEXT:      %[[ISNAN:.*]] = arith.cmpf uno, %[[X]], %[[X]] : f32
// CHECK-NEXT:      %[[NAN:.*]] = arith.constant 0x7fc00000 : f32
// CHECK-NEXT:      %[[SNAN:.*]] = math.copysign %[[NAN]], %[[QF]] : f32
// CHECK-NEXT:      %[[X1:.*]] = arith.select %[[ISNAN]], %[[SNAN]], %[[X]] : f32
// CHECK-NEXT:      arith.truncf %[[X1]] : f32 to bf16
func.func @dequantize_nvfp4_double_quant(%q: tensor<4x32xf4E2M1FN>, %s: tensor<4x2xf8E4M3FN>, %dq: tensor<f32>) -> tensor<4x32xbf16> {
  %x = quant.dequantize %q scale(%s : tensor<4x2xf8E4M3FN>) per_block(1, 16) double_quant(%dq : tensor<f32>) : tensor<4x32xf4E2M1FN> -> tensor<4x32xbf16>
  func.return %x : tensor<4x32xbf16>
}

// CHECK-LABEL: func.func @dequantize_mx_e5m2(
// CHECK:         arith.extf %{{.*}} : f8E8M0FNU to f32
// CHECK-NEXT:    arith.extf %{{.*}} : f8E5M2 to f32
// CHECK-NEXT:    arith.mulf
func.func @dequantize_mx_e5m2(%q: tensor<4x64xf8E5M2>, %s: tensor<4x2xf8E8M0FNU>) -> tensor<4x64xf32> {
  %x = quant.dequantize %q scale(%s : tensor<4x2xf8E8M0FNU>) per_block(1, 32) : tensor<4x64xf8E5M2> -> tensor<4x64xf32>
  func.return %x : tensor<4x64xf32>
}

// CHECK-LABEL: func.func @dequantize_block_per_token(
// CHECK:         affine_map<(d0, d1) -> ((d0 floordiv 2), 0)>
// CHECK:         affine_map<(d0, d1) -> (d0, 0)>
func.func @dequantize_block_per_token(%q: tensor<4x8xi8>, %s: tensor<2x1xf32>, %t: tensor<4x1xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %a = quant.dequantize %q scale(%s : tensor<2x1xf32>) block([2, -1]) : tensor<4x8xi8> -> tensor<4x8xf32>
  %b = quant.dequantize %q scale(%t : tensor<4x1xf32>) per_token : tensor<4x8xi8> -> tensor<4x8xf32>
  func.return %a, %b : tensor<4x8xf32>, tensor<4x8xf32>
}

// minval form: s * (q - qmin) + minval.
// CHECK-LABEL: func.func @dequantize_minval(
// CHECK:         %[[QF:.*]] = arith.uitofp %{{.*}} : ui8 to f32
// CHECK-NEXT:    %[[QMIN:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:    %[[D:.*]] = arith.subf %[[QF]], %[[QMIN]] : f32
// CHECK-NEXT:    %[[P:.*]] = arith.mulf %{{.*}}, %[[D]] : f32
// CHECK-NEXT:    arith.addf %[[P]], %{{.*}} : f32
func.func @dequantize_minval(%q: tensor<8xui8>) -> tensor<8xf32> {
  %x = quant.dequantize %q scale(0.5) minval(-3.0) : tensor<8xui8> -> tensor<8xf32>
  func.return %x : tensor<8xf32>
}

// ---------------------------------------------------------------------------------------
// requantize: exactly dequantize then quantize, in each of its three forms
// ---------------------------------------------------------------------------------------

// fused: one generic; the input parameters are per-tensor constants, the output ones per-axis.
// CHECK-LABEL: func.func @requantize_fused_mixed(
// CHECK-COUNT-1: linalg.generic
// CHECK-SAME:      affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d1)>
// CHECK:           %[[QF:.*]] = arith.sitofp %{{.*}} : i8 to f32
// CHECK-NEXT:      %[[D:.*]] = arith.subf %[[QF]], %{{.*}} : f32
// CHECK-NEXT:      %[[X:.*]] = arith.mulf %[[D]], %{{.*}} : f32
// CHECK-NEXT:      %[[V:.*]] = arith.divf %[[X]], %{{.*}} : f32
// CHECK-NEXT:      math.roundeven %[[V]] : f32
// CHECK:           arith.trunci %{{.*}} : i32 to ui8
// CHECK-NOT:     linalg.generic
// CHECK:         func.return
func.func @requantize_fused_mixed(%q: tensor<4x8xi8>, %s: tensor<8xf32>, %z: tensor<8xui8>) -> tensor<4x8xui8> {
  %r = quant.requantize %q in(scale(2.5e-02) zero_point(-1)) out(scale(%s : tensor<8xf32>) zero_point(%z : tensor<8xui8>) per_axis(1)) : tensor<4x8xi8> -> tensor<4x8xui8>
  func.return %r : tensor<4x8xui8>
}

// composite: a materialized f32 intermediate between a dequantize and a quantize generic.
// CHECK-LABEL: func.func @requantize_composite(
// CHECK:         %[[E:.*]] = tensor.empty() : tensor<4x8xf32>
// CHECK:         %[[MID:.*]] = linalg.generic {{.*}} outs(%[[E]] : tensor<4x8xf32>)
// CHECK:           arith.mulf
// CHECK:         } -> tensor<4x8xf32>
// CHECK:         linalg.generic {{.*}} ins(%[[MID]] : tensor<4x8xf32>)
// CHECK:           arith.divf
// CHECK:           arith.trunci %{{.*}} : i32 to i4
func.func @requantize_composite(%q: tensor<4x8xi8>, %s: tensor<4xf32>) -> tensor<4x8xi4> {
  %r = quant.requantize %q in(scale(%s : tensor<4xf32>) per_axis(0)) out(scale(0.5)) {lowering = "composite"} : tensor<4x8xi8> -> tensor<4x8xi4>
  func.return %r : tensor<4x8xi4>
}

// lut: the fused math over all 256 input codes per channel into a 4x256 table, then a gather.
// CHECK-LABEL: func.func @requantize_lut(
// CHECK-SAME:      %[[Q:[a-z0-9_]+]]: tensor<4x8xui8>
// CHECK:         %[[DOM:.*]] = arith.constant dense<"0x{{[0-9A-F]+}}"> : tensor<256xf32>
// CHECK:         %[[ZP:.*]] = arith.constant dense<[1.280000e+02, 1.270000e+02, 1.260000e+02, 1.250000e+02]> : tensor<4xf32>
// CHECK:         %[[TE:.*]] = tensor.empty() : tensor<4x256xi8>
// CHECK:         %[[TABLE:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%[[DOM]], %{{.*}}, %[[ZP]] : tensor<256xf32>, tensor<4xf32>, tensor<4xf32>) outs(%[[TE]] : tensor<4x256xi8>)
// CHECK:         %[[CH:.*]] = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
// CHECK:         linalg.generic {{.*}} ins(%[[Q]], %[[CH]] : tensor<4x8xui8>, tensor<4xi32>)
// CHECK:           %[[W:.*]] = arith.extui %{{.*}} : ui8 to i32
// CHECK:           %[[K:.*]] = arith.index_cast %{{.*}} : i32 to index
// CHECK-NEXT:      %[[C:.*]] = arith.index_cast %{{.*}} : i32 to index
// CHECK-NEXT:      %[[V:.*]] = tensor.extract %[[TABLE]][%[[C]], %[[K]]] : tensor<4x256xi8>
// CHECK-NEXT:      linalg.yield %[[V]] : i8
func.func @requantize_lut(%q: tensor<4x8xui8>, %s: tensor<4xf32>) -> tensor<4x8xi8> {
  %r = quant.requantize %q in(scale(%s : tensor<4xf32>) zero_point(dense<[128, 127, 126, 125]> : tensor<4xui8>) per_axis(0)) out(scale(0.5)) {lowering = "lut"} : tensor<4x8xui8> -> tensor<4x8xi8>
  func.return %r : tensor<4x8xi8>
}

// CHECK-LABEL: func.func @requantize_to_e4m3(
// CHECK:         arith.sitofp
// CHECK:         arith.divf
// CHECK:         arith.constant 4.480000e+02 : f32
// CHECK-NEXT:    %[[C:.*]] = arith.minimumf
// CHECK-NEXT:    %[[N:.*]] = arith.cmpf uno, %[[C]], %[[C]] : f32
// CHECK-NEXT:    %[[SNAN:.*]] = math.copysign %{{.*}}, %{{.*}} : f32
// CHECK-NEXT:    %[[C1:.*]] = arith.select %[[N]], %[[SNAN]], %[[C]] : f32
// CHECK-NEXT:    arith.truncf %[[C1]] : f32 to f8E4M3FN
func.func @requantize_to_e4m3(%q: tensor<4x8xi8>) -> tensor<4x8xf8E4M3FN> {
  %r = quant.requantize %q in(scale(0.1)) out(scale(2.0e-03)) : tensor<4x8xi8> -> tensor<4x8xf8E4M3FN>
  func.return %r : tensor<4x8xf8E4M3FN>
}

// ---------------------------------------------------------------------------------------
// dynamic_quantize: amax reduction, a scale generic, a data generic
// ---------------------------------------------------------------------------------------

// amax on the bits of |x| as i32 (exact, NaN-propagating), row-parallel; s = amax / 127,
// a zero scale stored as 1.0; the data generic reads the stored scale (composite, the default).
// CHECK-LABEL: func.func @dynamic_int_per_token(
// CHECK-SAME:      %[[X:[a-z0-9_]+]]: tensor<4x64xf32>
// CHECK:         %[[INIT:.*]] = arith.constant dense<0> : tensor<4x1xi32>
// CHECK:         %[[AMAX:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, 0)>], iterator_types = ["parallel", "reduction"]} ins(%[[X]] : tensor<4x64xf32>) outs(%[[INIT]] : tensor<4x1xi32>)
// CHECK-NEXT:    ^bb0(%[[IN:[0-9]+]]: f32, %[[ACC:[0-9]+]]: i32):
// CHECK-NEXT:      %[[B:.*]] = arith.bitcast %[[IN]] : f32 to i32
// CHECK-NEXT:      %[[M:.*]] = arith.constant 2147483647 : i32
// CHECK-NEXT:      %[[A:.*]] = arith.andi %[[B]], %[[M]] : i32
// CHECK-NEXT:      %[[MX:.*]] = arith.maxsi %[[ACC]], %[[A]] : i32
// CHECK-NEXT:      linalg.yield %[[MX]] : i32
// CHECK:         %[[S:.*]] = linalg.generic {{.*}} ins(%[[AMAX]] : tensor<4x1xi32>)
// CHECK:           %[[AF:.*]] = arith.bitcast %{{.*}} : i32 to f32
// CHECK-NEXT:      %[[QMAX:.*]] = arith.constant 1.270000e+02 : f32
// CHECK-NEXT:      %[[SC0:.*]] = arith.divf %[[AF]], %[[QMAX]] : f32
// CHECK-NEXT:      %[[ISNAN:.*]] = arith.cmpf uno, %[[SC0]], %[[SC0]] : f32
// CHECK-NEXT:      %[[NAN:.*]] = arith.constant 0x7fc00000 : f32
// CHECK-NEXT:      %[[SC:.*]] = arith.select %[[ISNAN]], %[[NAN]], %[[SC0]] : f32
// CHECK-NEXT:      %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:      %[[ISZ:.*]] = arith.cmpf oeq, %[[SC]], %[[ZERO]] : f32
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      arith.select %[[ISZ]], %[[ONE]], %[[SC]] : f32
// CHECK:         %[[D:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, 0)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%[[X]], %[[S]] : tensor<4x64xf32>, tensor<4x1xf32>)
// CHECK:           arith.divf
// CHECK:           arith.trunci %{{.*}} : i32 to i8
// CHECK:         func.return %[[D]], %[[S]]
func.func @dynamic_int_per_token(%x: tensor<4x64xf32>) -> (tensor<4x64xi8>, tensor<4x1xf32>) {
  %d, %s = quant.dynamic_quantize %x per_token : tensor<4x64xf32> -> tensor<4x64xi8>, tensor<4x1xf32>
  func.return %d, %s : tensor<4x64xi8>, tensor<4x1xf32>
}

// Asymmetric (ONNX DynamicQuantizeLinear): xmin / xmax reductions from 0.0 (= min(xmin, 0),
// max(xmax, 0)), eps, f16 scale rounded via truncf/extf, zp = clamp(rne(qmin - xmin / s)).
// CHECK-LABEL: func.func @dynamic_asym_ui8(
// CHECK:         %[[I0:.*]] = arith.constant dense<0.000000e+00> : tensor<f32>
// CHECK:         %[[XMIN:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> ()>], iterator_types = ["reduction", "reduction"]} {{.*}} outs(%[[I0]] : tensor<f32>)
// CHECK:           arith.minimumf
// CHECK:         %[[XMAX:.*]] = linalg.generic {{.*}} iterator_types = ["reduction", "reduction"]
// CHECK:           arith.maximumf
// CHECK:         %[[S:.*]] = linalg.generic {indexing_maps = [affine_map<() -> ()>, affine_map<() -> ()>, affine_map<() -> ()>], iterator_types = []} ins(%[[XMIN]], %[[XMAX]] : tensor<f32>, tensor<f32>)
// CHECK:           arith.constant 2.550000e+02 : f32
// CHECK:           arith.constant 1.000000e-05 : f32
// CHECK:           arith.truncf %{{.*}} : f32 to f16
// CHECK:         %[[Z:.*]] = linalg.generic
// CHECK:           %[[ZR:.*]] = math.roundeven
// CHECK-NEXT:      arith.maximumf %[[ZR]]
// CHECK-NEXT:      %[[ZC:.*]] = arith.minimumf
// CHECK-NEXT:      arith.fptosi %[[ZC]] : f32 to i32
// The f16 scale is widened once per block into an f32 divisor the data generic reads.
// CHECK:         %[[DV:.*]] = linalg.generic {{.*}} ins(%[[S]] : tensor<f16>)
// CHECK:           arith.extf %{{.*}} : f16 to f32
// CHECK:         } -> tensor<f32>
// CHECK:         linalg.generic {{.*}} ins(%{{.*}}, %[[DV]], %[[Z]] : tensor<4x64xf32>, tensor<f32>, tensor<ui8>)
// CHECK:           arith.uitofp %{{.*}} : ui8 to f32
func.func @dynamic_asym_ui8(%x: tensor<4x64xf32>) -> (tensor<4x64xui8>, tensor<f16>, tensor<ui8>) {
  %d, %s, %z = quant.dynamic_quantize %x symmetric(false) eps(1.0e-05) : tensor<4x64xf32> -> tensor<4x64xui8>, tensor<f16>, tensor<ui8>
  func.return %d, %s, %z : tensor<4x64xui8>, tensor<f16>, tensor<ui8>
}

// NVFP4: sq = e4m3(clamp((amax / 6) / dq, 0, 448)); data = e2m1(clamp(x / (f32(sq) * dq)));
// a zero divisor gives copysign(0, x) and is never divided by.
// CHECK-LABEL: func.func @dynamic_nvfp4(
// CHECK:         affine_map<(d0, d1) -> (d0, (d1 floordiv 16))>], iterator_types = ["parallel", "reduction"]
// CHECK:           arith.extf %{{.*}} : bf16 to f32
// CHECK:         %[[S:.*]] = linalg.generic
// CHECK:           %[[DQ:.*]] = arith.constant 5.000000e-01 : f32
// CHECK:           %[[A:.*]] = arith.bitcast %{{.*}} : i32 to f32
// CHECK-NEXT:      %[[SIX:.*]] = arith.constant 6.000000e+00 : f32
// CHECK-NEXT:      %[[S0:.*]] = arith.divf %[[A]], %[[SIX]] : f32
// CHECK-NEXT:      %[[S1:.*]] = arith.divf %[[S0]], %[[DQ]] : f32
// CHECK:           arith.constant 4.480000e+02 : f32
// CHECK-NEXT:      %[[S2:.*]] = arith.minimumf
// CHECK-NEXT:      %[[N2:.*]] = arith.cmpf uno, %[[S2]], %[[S2]] : f32
// CHECK-NEXT:      %[[NAN2:.*]] = arith.constant 0x7fc00000 : f32
// CHECK-NEXT:      %[[S3:.*]] = arith.select %[[N2]], %[[NAN2]], %[[S2]] : f32
// CHECK-NEXT:      arith.truncf %[[S3]] : f32 to f8E4M3FN
// The divisor f32(sq) * dq, once per block (a generic over the scale shape):
// CHECK:         %[[DV:.*]] = linalg.generic {{.*}} ins(%[[S]] : tensor<4x4xf8E4M3FN>)
// CHECK:           %[[SF:.*]] = arith.extf %{{.*}} : f8E4M3FN to f32
// CHECK-NEXT:      %[[DQ2:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-NEXT:      %[[DVV:.*]] = arith.mulf %[[SF]], %[[DQ2]] : f32
// CHECK-NEXT:      linalg.yield %[[DVV]] : f32
// CHECK:         } -> tensor<4x4xf32>
// CHECK:         linalg.generic {{.*}} ins(%{{.*}}, %[[DV]] : tensor<4x64xbf16>, tensor<4x4xf32>)
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: bf16, %[[DIV:.*]]: f32, %{{.*}}: f4E2M1FN):
// CHECK:           %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:      %[[ISZ:.*]] = arith.cmpf oeq, %[[DIV]], %[[ZERO]] : f32
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      %[[SAFE:.*]] = arith.select %[[ISZ]], %[[ONE]], %[[DIV]] : f32
// CHECK-NEXT:      %[[SZ:.*]] = math.copysign %[[ZERO]], %[[XF:.*]] : f32
// CHECK-NEXT:      %[[V:.*]] = arith.divf %[[XF]], %[[SAFE]] : f32
// CHECK-NEXT:      arith.select %[[ISZ]], %[[SZ]], %[[V]] : f32
// CHECK:           arith.truncf %{{.*}} : f32 to f4E2M1FN
func.func @dynamic_nvfp4(%x: tensor<4x64xbf16>) -> (tensor<4x64xf4E2M1FN>, tensor<4x4xf8E4M3FN>) {
  %d, %s = quant.dynamic_quantize %x per_block(1, 16) double_quant(0.5) : tensor<4x64xbf16> -> tensor<4x64xf4E2M1FN>, tensor<4x4xf8E4M3FN>
  func.return %d, %s : tensor<4x64xf4E2M1FN>, tensor<4x4xf8E4M3FN>
}

// MX floor for e5m2 (emax 15): e = (bits >> 23) - 127 - 15, +inf -> 127, clamp, NaN -> 255.
// CHECK-LABEL: func.func @dynamic_mx_floor(
// CHECK:         %[[S:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<4x2xf8E8M0FNU>)
// CHECK:           %[[SH:.*]] = arith.constant 23 : i32
// CHECK-NEXT:      %[[E:.*]] = arith.shrui %[[BITS:[0-9]+]], %[[SH]] : i32
// CHECK-NEXT:      %[[BIAS:.*]] = arith.constant 142 : i32
// CHECK-NEXT:      %[[E1:.*]] = arith.subi %[[E]], %[[BIAS]] : i32
// CHECK-NEXT:      %[[INF:.*]] = arith.constant 2139095040 : i32
// CHECK-NEXT:      %[[ISINF:.*]] = arith.cmpi eq, %[[BITS]], %[[INF]] : i32
// CHECK:           arith.maxsi
// CHECK:           arith.minsi
// CHECK:           %[[ISNAN:.*]] = arith.cmpi sgt, %[[BITS]], %[[INF]] : i32
// CHECK:           %[[CODE:.*]] = arith.select %[[ISNAN]]
// CHECK-NEXT:      %[[C8:.*]] = arith.trunci %[[CODE]] : i32 to i8
// CHECK-NEXT:      %[[SC:.*]] = arith.bitcast %[[C8]] : i8 to f8E8M0FNU
// CHECK-NEXT:      linalg.yield %[[SC]] : f8E8M0FNU
// CHECK:         %[[DV:.*]] = linalg.generic {{.*}} ins(%[[S]] : tensor<4x2xf8E8M0FNU>)
// CHECK:           %[[P2:.*]] = arith.extf %{{.*}} : f8E8M0FNU to f32
// CHECK-NEXT:      linalg.yield %[[P2]] : f32
// CHECK:         linalg.generic {{.*}} ins(%{{.*}}, %[[DV]] : tensor<4x64xf32>, tensor<4x2xf32>)
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: f32, %[[D2:.*]]: f32, %{{.*}}: f8E5M2):
// CHECK:           arith.divf %{{.*}}, %[[D2]] : f32
// CHECK:           arith.constant 5.734400e+04 : f32
// CHECK:           arith.truncf %{{.*}} : f32 to f8E5M2
func.func @dynamic_mx_floor(%x: tensor<4x64xf32>) -> (tensor<4x64xf8E5M2>, tensor<4x2xf8E8M0FNU>) {
  %d, %s = quant.dynamic_quantize %x per_block(1, 32) : tensor<4x64xf32> -> tensor<4x64xf8E5M2>, tensor<4x2xf8E8M0FNU>
  func.return %d, %s : tensor<4x64xf8E5M2>, tensor<4x2xf8E8M0FNU>
}

// MX rceil for e4m3 (max 1.75 * 2^8): +1 where the mantissa of amax exceeds 0x600000;
// fused: the data generic reads the amax bits and recomputes the exponent inline.
// CHECK-LABEL: func.func @dynamic_mx_rceil_fused(
// CHECK:         %[[AMAX:.*]] = linalg.generic
// CHECK:         linalg.generic
// CHECK:           arith.constant 135 : i32
// CHECK:           arith.constant 8388607 : i32
// CHECK:           %[[MANT:.*]] = arith.andi
// CHECK-NEXT:      %[[MF:.*]] = arith.constant 6291456 : i32
// CHECK-NEXT:      %[[GT:.*]] = arith.cmpi sgt, %[[MANT]], %[[MF]] : i32
// CHECK-NEXT:      %[[ONE:.*]] = arith.extui %[[GT]] : i1 to i32
// CHECK-NEXT:      arith.addi %{{.*}}, %[[ONE]] : i32
// CHECK:         linalg.generic {{.*}} ins(%{{.*}}, %[[AMAX]] : tensor<4x64xf32>, tensor<4x2xi32>)
// CHECK:           arith.bitcast %{{.*}} : i8 to f8E8M0FNU
// CHECK-NEXT:      %[[P2:.*]] = arith.extf %{{.*}} : f8E8M0FNU to f32
// CHECK-NEXT:      arith.divf %{{.*}}, %[[P2]] : f32
func.func @dynamic_mx_rceil_fused(%x: tensor<4x64xf32>) -> (tensor<4x64xf8E4M3FN>, tensor<4x2xf8E8M0FNU>) {
  %d, %s = quant.dynamic_quantize %x per_block(1, 32) scale_rounding(rceil) {lowering = "fused"} : tensor<4x64xf32> -> tensor<4x64xf8E4M3FN>, tensor<4x2xf8E8M0FNU>
  func.return %d, %s : tensor<4x64xf8E4M3FN>, tensor<4x2xf8E8M0FNU>
}

// 128x128 tiles: both dimensions reduce; s = amax / 448 unrounded in f32.
// CHECK-LABEL: func.func @dynamic_block_2d(
// CHECK:         affine_map<(d0, d1) -> ((d0 floordiv 128), (d1 floordiv 128))>], iterator_types = ["reduction", "reduction"]
// CHECK:           arith.extf %{{.*}} : f16 to f32
// CHECK:         linalg.generic
// CHECK:           arith.constant 4.480000e+02 : f32
// CHECK:         linalg.generic {{.*}} affine_map<(d0, d1) -> ((d0 floordiv 128), (d1 floordiv 128))>
// CHECK:           arith.truncf %{{.*}} : f32 to f8E4M3FN
func.func @dynamic_block_2d(%x: tensor<256x256xf16>) -> (tensor<256x256xf8E4M3FN>, tensor<2x2xf32>) {
  %d, %s = quant.dynamic_quantize %x block([128, 128]) : tensor<256x256xf16> -> tensor<256x256xf8E4M3FN>, tensor<2x2xf32>
  func.return %d, %s : tensor<256x256xf8E4M3FN>, tensor<2x2xf32>
}

// ---------------------------------------------------------------------------------------
// fake_quantize
// ---------------------------------------------------------------------------------------

// Static, one generic: (clamp(rne(x / s) + 0, qmin, qmax) - 0) * s; no integer conversion.
// CHECK-LABEL: func.func @fake_static(
// CHECK:         ^bb0(%[[IN:[0-9]+]]: f32, %[[S:[0-9]+]]: f32, %{{[0-9]+}}: f32):
// CHECK:           %[[V:.*]] = arith.divf %[[IN]], %[[S]] : f32
// CHECK:           %[[C:.*]] = arith.minimumf
// CHECK-NEXT:      %[[D:.*]] = arith.subf %[[C]], %{{.*}} : f32
// CHECK-NEXT:      %[[Y:.*]] = arith.mulf %[[D]], %[[S]] : f32
// CHECK-NEXT:      %[[YN:.*]] = arith.cmpf uno, %[[Y]], %[[Y]] : f32
// CHECK:      %[[Y1:.*]] = arith.select %[[YN]], %{{.*}}, %[[Y]] : f32
// CHECK-NEXT:      linalg.yield %[[Y1]] : f32
func.func @fake_static(%x: tensor<4x8xf32>, %s: tensor<8xf32>) -> tensor<4x8xf32> {
  %y = quant.fake_quantize %x storage(i8) scale(%s : tensor<8xf32>) per_axis(1) : tensor<4x8xf32> -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}

// Static composite: quantize into an e4m3 tensor, then dequantize back to f16.
// CHECK-LABEL: func.func @fake_static_composite(
// CHECK:         %[[Q:.*]] = linalg.generic
// CHECK:           arith.truncf %{{.*}} : f32 to f8E4M3FN
// CHECK:         } -> tensor<4x8xf8E4M3FN>
// CHECK:         linalg.generic {{.*}} ins(%[[Q]] : tensor<4x8xf8E4M3FN>)
// CHECK:           arith.extf %{{.*}} : f8E4M3FN to f32
// CHECK:           arith.truncf %{{.*}} : f32 to f16
func.func @fake_static_composite(%x: tensor<4x8xf16>) -> tensor<4x8xf16> {
  %y = quant.fake_quantize %x storage(f8E4M3FN) scale(0.5) {lowering = "composite"} : tensor<4x8xf16> -> tensor<4x8xf16>
  func.return %y : tensor<4x8xf16>
}

// Dynamic asymmetric (torchao): s = max((xmax - xmin) / 15, eps = 2^-23), zp from the
// unrounded s, then s rounded to f16; fused: all in the fake generic.
// CHECK-LABEL: func.func @fake_dynamic_asym(
// CHECK:         %[[XMIN:.*]] = linalg.generic
// CHECK:         %[[XMAX:.*]] = linalg.generic
// CHECK:         linalg.generic {{.*}} ins(%{{.*}}, %[[XMIN]], %[[XMAX]] : tensor<4x8xf32>, tensor<4x1xf32>, tensor<4x1xf32>)
// CHECK:           %[[EPS:.*]] = arith.constant 1.1920929e-07 : f32
// CHECK:           %[[S0:.*]] = arith.divf
// CHECK-NEXT:      %[[S1:.*]] = arith.maximumf %[[S0]], %[[EPS]] : f32
// CHECK:           %[[N:.*]] = arith.cmpf uno, %[[S1]], %[[S1]] : f32
// CHECK:           %[[S2:.*]] = arith.select %[[N]], %{{.*}}, %[[S1]] : f32
// CHECK:           arith.truncf %[[S2]] : f32 to f16
func.func @fake_dynamic_asym(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y = quant.fake_quantize %x storage(ui4) per_token symmetric(false) scale_type(f16) : tensor<4x8xf32> -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}

// Float zero-point domain (tinygemm): raw xmin / xmax from +inf / -inf; composite stores
// the f32 scale and zero point.
// CHECK-LABEL: func.func @fake_dynamic_float_domain(
// CHECK:         %[[PINF:.*]] = arith.constant dense<0x7f800000> : tensor<4x2xf32>
// CHECK:         %[[XMIN:.*]] = linalg.generic {{.*}} outs(%[[PINF]] : tensor<4x2xf32>)
// CHECK:           arith.minimumf
// CHECK:         %[[NINF:.*]] = arith.constant dense<0xff800000> : tensor<4x2xf32>
// CHECK:         %[[XMAX:.*]] = linalg.generic {{.*}} outs(%[[NINF]] : tensor<4x2xf32>)
// CHECK:           arith.maximumf
// CHECK:         %[[S:.*]] = linalg.generic {{.*}} ins(%[[XMIN]], %[[XMAX]] : tensor<4x2xf32>, tensor<4x2xf32>)
// CHECK:         } -> tensor<4x2xf32>
// CHECK:         %[[Z:.*]] = linalg.generic
// CHECK:           arith.constant 8.000000e+00 : f32
// CHECK:         } -> tensor<4x2xf32>
// CHECK:         linalg.generic {{.*}} ins(%{{.*}}, %[[S]], %[[Z]] : tensor<4x64xf32>, tensor<4x2xf32>, tensor<4x2xf32>)
func.func @fake_dynamic_float_domain(%x: tensor<4x64xf32>) -> tensor<4x64xf32> {
  %y = quant.fake_quantize %x storage(ui4) per_block(1, 32) symmetric(false) zero_point_domain(float) {lowering = "composite"} : tensor<4x64xf32> -> tensor<4x64xf32>
  func.return %y : tensor<4x64xf32>
}

// ---------------------------------------------------------------------------------------
// pack / unpack
// ---------------------------------------------------------------------------------------

// 7 codes in 4 bytes: lane 1 of the last byte reads (2 * d0 + 1) mod 7 (in bounds) and is
// masked by the table [15, 0] at (2 * d0 + 1) floordiv 7.
// CHECK-LABEL: func.func @pack_i4_odd(
// CHECK-SAME:      %[[Q:[a-z0-9_]+]]: tensor<7xi4>
// CHECK:         %[[MASK:.*]] = arith.constant dense<[15, 0]> : tensor<2xi32>
// CHECK:         linalg.generic {indexing_maps = [affine_map<(d0) -> ((d0 * 2))>, affine_map<(d0) -> ((((d0 * 2) + 1) mod 7))>, affine_map<(d0) -> ((((d0 * 2) + 1) floordiv 7))>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%[[Q]], %[[Q]], %[[MASK]] : tensor<7xi4>, tensor<7xi4>, tensor<2xi32>)
// CHECK-NEXT:    ^bb0(%[[L0:[0-9]+]]: i4, %[[L1:[0-9]+]]: i4, %[[M:[0-9]+]]: i32, %{{[0-9]+}}: ui8):
// CHECK-NEXT:      %[[W0:.*]] = arith.extui %[[L0]] : i4 to i32
// CHECK-NEXT:      %[[W1:.*]] = arith.extui %[[L1]] : i4 to i32
// CHECK-NEXT:      %[[W1M:.*]] = arith.andi %[[W1]], %[[M]] : i32
// CHECK-NEXT:      %[[FOUR:.*]] = arith.constant 4 : i32
// CHECK-NEXT:      %[[W1S:.*]] = arith.shli %[[W1M]], %[[FOUR]] : i32
// CHECK-NEXT:      %[[B:.*]] = arith.ori %[[W0]], %[[W1S]] : i32
// CHECK-NEXT:      %[[BYTE:.*]] = arith.trunci %[[B]] : i32 to ui8
// CHECK-NEXT:      linalg.yield %[[BYTE]] : ui8
func.func @pack_i4_odd(%q: tensor<7xi4>) -> tensor<4xui8> {
  %p = quant.pack %q : tensor<7xi4> -> tensor<4xui8>
  func.return %p : tensor<4xui8>
}

// Four 2-bit lanes of whole rows: byte d0 holds row d0.
// CHECK-LABEL: func.func @pack_ui2_2d(
// CHECK:         indexing_maps = [affine_map<(d0) -> (d0, 0)>, affine_map<(d0) -> (d0, 1)>, affine_map<(d0) -> (d0, 2)>, affine_map<(d0) -> (d0, 3)>, affine_map<(d0) -> (d0)>]
// CHECK-DAG:       arith.constant 2 : i32
// CHECK-DAG:       arith.constant 4 : i32
// CHECK-DAG:       arith.constant 6 : i32
// CHECK:           arith.trunci %{{.*}} : i32 to ui8
func.func @pack_ui2_2d(%q: tensor<2x4xui2>) -> tensor<2xui8> {
  %p = quant.pack %q : tensor<2x4xui2> -> tensor<2xui8>
  func.return %p : tensor<2xui8>
}

// One iteration per code: byte (d0 * 2 + d1 floordiv 2), shift [0, 4] at d1 mod 2.
// CHECK-LABEL: func.func @unpack_e2m1(
// CHECK:         %[[SH:.*]] = arith.constant dense<[0, 4]> : tensor<2xi32>
// CHECK:         linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (((d0 * 2) + (d1 floordiv 2)))>, affine_map<(d0, d1) -> ((d1 mod 2))>, affine_map<(d0, d1) -> (d0, d1)>]
// CHECK-NEXT:    ^bb0(%[[B:[0-9]+]]: ui8, %[[S:[0-9]+]]: i32, %{{[0-9]+}}: f4E2M1FN):
// CHECK-NEXT:      %[[W:.*]] = arith.extui %[[B]] : ui8 to i32
// CHECK-NEXT:      %[[W1:.*]] = arith.shrui %[[W]], %[[S]] : i32
// CHECK-NEXT:      %[[C:.*]] = arith.trunci %[[W1]] : i32 to i4
// CHECK-NEXT:      %[[F:.*]] = arith.bitcast %[[C]] : i4 to f4E2M1FN
// CHECK-NEXT:      linalg.yield %[[F]] : f4E2M1FN
func.func @unpack_e2m1(%p: tensor<6xui8>) -> tensor<3x4xf4E2M1FN> {
  %u = quant.unpack %p : tensor<6xui8> -> tensor<3x4xf4E2M1FN>
  func.return %u : tensor<3x4xf4E2M1FN>
}

// pack(quantize(x)) is one generic: the quantize inlined for each lane.
// CHECK-LABEL: func.func @quantize_pack_fused(
// CHECK-SAME:      %[[X:[a-z0-9_]+]]: tensor<4x8xf32>
// CHECK:         linalg.generic {indexing_maps = [affine_map<(d0) -> ((d0 floordiv 4), ((d0 mod 4) * 2))>, affine_map<(d0) -> ((d0 floordiv 4), (((d0 mod 4) * 2) + 1))>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%[[X]], %[[X]] : tensor<4x8xf32>, tensor<4x8xf32>) outs(%{{.*}} : tensor<16xui8>)
// CHECK-COUNT-2:   arith.trunci %{{.*}} : i32 to ui4
// CHECK:           arith.shli
// CHECK:           arith.trunci %{{.*}} : i32 to ui8
// CHECK-NOT:     linalg.generic
// CHECK:         func.return
func.func @quantize_pack_fused(%x: tensor<4x8xf32>) -> tensor<16xui8> {
  %q = quant.quantize %x scale(0.5) : tensor<4x8xf32> -> tensor<4x8xui4>
  %p = quant.pack %q : tensor<4x8xui4> -> tensor<16xui8>
  func.return %p : tensor<16xui8>
}

// dequantize(unpack(p)) is one generic: the unpack inlined.
// CHECK-LABEL: func.func @unpack_dequantize_fused(
// CHECK:         linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (((d0 * 4) + (d1 floordiv 2)))>, affine_map<(d0, d1) -> ((d1 mod 2))>, affine_map<(d0, d1) -> (d0, 0)>, affine_map<(d0, d1) -> (d0, d1)>]
// CHECK:           arith.shrui
// CHECK-NEXT:      %[[C:.*]] = arith.trunci %{{.*}} : i32 to i4
// CHECK-NEXT:      %[[F:.*]] = arith.sitofp %[[C]] : i4 to f32
// CHECK-NEXT:      arith.mulf %[[F]], %{{.*}} : f32
// CHECK-NOT:     linalg.generic
// CHECK:         func.return
func.func @unpack_dequantize_fused(%p: tensor<16xui8>, %s: tensor<4x1xf32>) -> tensor<4x8xf32> {
  %u = quant.unpack %p : tensor<16xui8> -> tensor<4x8xi4>
  %d = quant.dequantize %u scale(%s : tensor<4x1xf32>) per_token : tensor<4x8xi4> -> tensor<4x8xf32>
  func.return %d : tensor<4x8xf32>
}

// ---------------------------------------------------------------------------------------
// more formats and granularities
// ---------------------------------------------------------------------------------------

// CHECK-LABEL: func.func @dequantize_i2_per_token(
// CHECK:         affine_map<(d0, d1) -> (d0, 0)>, affine_map<(d0, d1) -> (d0, 0)>
// CHECK:         ^bb0(%[[IN:[0-9]+]]: i2, %[[S:[0-9]+]]: f32, %[[Z:[0-9]+]]: i2, %{{[0-9]+}}: f32):
// CHECK-NEXT:      %[[ZF:.*]] = arith.sitofp %[[Z]] : i2 to f32
// CHECK-NEXT:      %[[QF:.*]] = arith.sitofp %[[IN]] : i2 to f32
// CHECK-NEXT:      %[[D:.*]] = arith.subf %[[QF]], %[[ZF]] : f32
// CHECK-NEXT:      arith.mulf %[[D]], %[[S]] : f32
func.func @dequantize_i2_per_token(%q: tensor<4x8xi2>, %s: tensor<4x1xf32>, %z: tensor<4x1xi2>) -> tensor<4x8xf32> {
  %x = quant.dequantize %q scale(%s : tensor<4x1xf32>) zero_point(%z : tensor<4x1xi2>) per_token : tensor<4x8xi2> -> tensor<4x8xf32>
  func.return %x : tensor<4x8xf32>
}

// Per-axis statistics: axis 1 parallel, axis 0 reduced; fused: the data generic reads
// the amax bits and recomputes s = amax / 7 (a zero scale is 1.0).
// CHECK-LABEL: func.func @dynamic_i4_per_axis_fused(
// CHECK:         %[[INIT:.*]] = arith.constant dense<0> : tensor<16xi32>
// CHECK:         %[[AMAX:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>], iterator_types = ["reduction", "parallel"]} {{.*}} outs(%[[INIT]] : tensor<16xi32>)
// CHECK:         %[[S:.*]] = linalg.generic {{.*}} ins(%[[AMAX]] : tensor<16xi32>) outs(%{{.*}} : tensor<16xf32>)
// CHECK:         linalg.generic {{.*}} ins(%{{.*}}, %[[AMAX]] : tensor<8x16xf32>, tensor<16xi32>)
// CHECK:           %[[A:.*]] = arith.bitcast %{{.*}} : i32 to f32
// CHECK-NEXT:      %[[QMAX:.*]] = arith.constant 7.000000e+00 : f32
// CHECK-NEXT:      arith.divf %[[A]], %[[QMAX]] : f32
// CHECK:           %[[C:.*]] = arith.minimumf
// CHECK-NEXT:      %[[I:.*]] = arith.fptosi %[[C]] : f32 to i32
// CHECK-NEXT:      arith.trunci %[[I]] : i32 to i4
func.func @dynamic_i4_per_axis_fused(%x: tensor<8x16xf32>) -> (tensor<8x16xi4>, tensor<16xf32>) {
  %d, %s = quant.dynamic_quantize %x per_axis(1) {lowering = "fused"} : tensor<8x16xf32> -> tensor<8x16xi4>, tensor<16xf32>
  func.return %d, %s : tensor<8x16xi4>, tensor<16xf32>
}

// Dynamic fake quantize to e4m3: s = amax / 448, x' = f32(e4m3(clip(x / s))) * s, bf16.
// CHECK-LABEL: func.func @fake_dynamic_e4m3(
// CHECK:         arith.extf %{{.*}} : bf16 to f32
// CHECK:         linalg.generic
// CHECK:           %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      %[[S:.*]] = arith.select %{{.*}}, %[[ONE]], %{{.*}} : f32
// CHECK-NEXT:      %[[V:.*]] = arith.divf %{{.*}}, %[[S]] : f32
// CHECK:           %[[Q:.*]] = arith.truncf %{{.*}} : f32 to f8E4M3FN
// CHECK-NEXT:      %[[QF:.*]] = arith.extf %[[Q]] : f8E4M3FN to f32
// CHECK-NEXT:      %[[Y:.*]] = arith.mulf %[[QF]], %[[S]] : f32
// CHECK-NEXT:      %[[YN:.*]] = arith.cmpf uno, %[[Y]], %[[Y]] : f32
// CHECK:      %[[Y1:.*]] = arith.select %[[YN]], %{{.*}}, %[[Y]] : f32
// CHECK-NEXT:      arith.truncf %[[Y1]] : f32 to bf16
func.func @fake_dynamic_e4m3(%x: tensor<4x32xbf16>) -> tensor<4x32xbf16> {
  %y = quant.fake_quantize %x storage(f8E4M3FN) per_token : tensor<4x32xbf16> -> tensor<4x32xbf16>
  func.return %y : tensor<4x32xbf16>
}

// dynamic_quantize whose data only feeds a pack: the pack's loop over bytes quantizes each
// lane itself (NVFP4 here), so no f4E2M1FN tensor is ever materialized.
// CHECK-LABEL: func.func @dynamic_quantize_packed
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK: } -> tensor<2x2xi32>
// CHECK: %[[SCALE:.*]] = linalg.generic
// CHECK: } -> tensor<2x2xf8E4M3FN>
// CHECK-NOT: tensor<2x32xf4E2M1FN>
// CHECK: arith.extf %{{.*}} : f8E4M3FN to f32
// CHECK: } -> tensor<2x2xf32>
// CHECK: %[[BYTES:.*]] = linalg.generic
// CHECK: arith.truncf %{{.*}} : f32 to f4E2M1FN
// CHECK: arith.truncf %{{.*}} : f32 to f4E2M1FN
// CHECK: arith.ori
// CHECK: } -> tensor<32xui8>
// CHECK: func.return %[[BYTES]], %[[SCALE]]
func.func @dynamic_quantize_packed(%x: tensor<2x32xf32>) -> (tensor<32xui8>, tensor<2x2xf8E4M3FN>) {
  %d, %s = quant.dynamic_quantize %x per_block(1, 16) : tensor<2x32xf32> -> tensor<2x32xf4E2M1FN>, tensor<2x2xf8E4M3FN>
  %p = quant.pack %d : tensor<2x32xf4E2M1FN> -> tensor<32xui8>
  func.return %p, %s : tensor<32xui8>, tensor<2x2xf8E4M3FN>
}
