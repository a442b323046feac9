"""qopt code generation: lowered IR -> LLVM IR -> CPU machine code (JIT) or PTX.

The Python API of SPEC.md section 5 lives here (imported lazily, so ``qopt --help`` and
``import codegen.qopt`` load neither llvmlite nor the JIT):

    codegen.quantize(x, scale, zero_point=None, *, dtype, axis=None, block_size=None,
                     block_shape=None, saturate=True, rounding="nearest_even")
    codegen.dequantize(q, scale, zero_point=None, *, axis=None, block_size=None,
                       block_shape=None, dtype="f32")
    codegen.requantize(q, in_scale, in_zero_point, out_scale, out_zero_point, *,
                       axis=None, dtype=None)
    codegen.dynamic_quantize(x, *, dtype, scale_dtype="f32", axis=-1, block_size=None,
                             block_shape=None, double_quant_scale=None, symmetric=True,
                             scale_rounding="floor", eps=None)
    codegen.fake_quantize(x, scale=None, zero_point=None, *, dtype, ...)
    codegen.compile(module_or_text, *, target="cpu", arch=None)
"""

from typing import Any

_API_NAMES = frozenset(
    {"quantize", "dequantize", "requantize", "dynamic_quantize", "fake_quantize", "compile"}
)


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        from codegen import api

        return getattr(api, name)
    raise AttributeError(f"module 'codegen' has no attribute '{name}'")


__all__ = sorted(_API_NAMES)
