"""``qopt quantize-onnx``: weight-only quantization of ONNX models (ModelOpt's INT4 ONNX flow).

MatMul / Gemm weight initializers become quantized initializers plus DequantizeLinear nodes
(blocked INT4 with ``axis`` / ``block_size``, opset 21; INT8 per channel; FP8 per tensor)
that onnxruntime runs. The numbers come from qopt's kernels (:mod:`.recipes`), the graph
surgery is :mod:`.graph`, the error statistics :mod:`.evaluate`, the whole-model function
:mod:`.quantize` and the command line :mod:`.cli`. Separate from ``qopt.onnx`` (import and
checks of ONNX graphs), which this package does not need.
"""
