// RUN: qopt %s | filecheck %s
// RUN: qopt %s | qopt - | filecheck %s

// The minimal stablehlo dialect: uniform_quantize (of floats, of a quantized tensor)
// and uniform_dequantize, in generic form, per tensor and per axis.
// CHECK-LABEL: func.func @uniform_ops
// CHECK: %[[Q:.*]] = "stablehlo.uniform_quantize"(%{{.*}}) : (tensor<2x3xf32>) -> tensor<2x3x!quant.uniform<i8:f32:1, {5.000000e-01:3,2.500000e-01,1.000000e+00:-1}>>
// CHECK: %[[R:.*]] = "stablehlo.uniform_quantize"(%[[Q]]) : (tensor<2x3x!quant.uniform<i8:f32:1, {5.000000e-01:3,2.500000e-01,1.000000e+00:-1}>>) -> tensor<2x3x!quant.uniform<ui8:f32, 2.500000e-01:128>>
// CHECK: "stablehlo.uniform_dequantize"(%[[R]]) : (tensor<2x3x!quant.uniform<ui8:f32, 2.500000e-01:128>>) -> tensor<2x3xf32>
!a = !quant.uniform<i8:f32:1, {0.5:3, 0.25, 1.0:-1}>
!b = !quant.uniform<ui8:f32, 0.25:128>
func.func @uniform_ops(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = "stablehlo.uniform_quantize"(%x) : (tensor<2x3xf32>) -> tensor<2x3x!a>
  %1 = "stablehlo.uniform_quantize"(%0) : (tensor<2x3x!a>) -> tensor<2x3x!b>
  %2 = "stablehlo.uniform_dequantize"(%1) : (tensor<2x3x!b>) -> tensor<2x3xf32>
  func.return %2 : tensor<2x3xf32>
}
