"""qopt code generation: lowered IR -> LLVM IR -> CPU machine code (JIT) or PTX.

The Python API of SPEC.md section 5 lives here (imported lazily, so ``qopt --help`` and
``import codegen.qopt`` load neither llvmlite nor the JIT):

    codegen.quantize(x, scale, zero_point=None, *, dtype, axis=None, block_size=None,
                     block_shape=None, saturate=True, rounding="nearest_even")
    codegen.dequantize(q, scale, zero_point=None, *, axis=None, block_size=None,
                       block_shape=None, dtype="f32")
    codegen.requantize(q, in_scale, in_zero_point, out_scale, out_zero_point, *,
                       axis=None, dtype=None)
    codegen.dynamic_quantize(x, *, dtype, scale_dtype="f32", axis=None, block_size=None,
                             block_shape=None, double_quant_scale=None, symmetric=True,
                             scale_rounding="floor", eps=None)
    codegen.fake_quantize(x, scale=None, zero_point=None, *, dtype, ...)
    codegen.compile(module_or_text, *, target="cpu", arch=None)

Arrays may be numpy arrays, torch tensors or other DLPack / ``__array__`` producers (torch
in, torch out). Errors: ``TypeError`` / ``ValueError`` naming the argument for misuse, and
``codegen.QuantError`` (a ``ValueError`` with a ``location``) for IR that does not parse,
verify, lower or translate. The API's kernel table is a bounded LRU:
``codegen.set_kernel_cache_size(n)``, ``codegen.kernel_cache_size()``,
``codegen.clear_kernel_cache()``.
"""

from typing import Any

_API_NAMES = frozenset(
    {
        "quantize",
        "dequantize",
        "requantize",
        "dynamic_quantize",
        "fake_quantize",
        "compile",
        "set_kernel_cache_size",
        "kernel_cache_size",
        "clear_kernel_cache",
    }
)


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        from codegen import api

        return getattr(api, name)
    if name == "QuantError":
        from codegen.errors import QuantError

        return QuantError
    raise AttributeError(f"module 'codegen' has no attribute '{name}'")


__all__ = sorted(_API_NAMES | {"QuantError"})
