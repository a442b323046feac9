"""qopt: a compiler toolkit for quantization.

The quant dialect (``qopt.qdialect``), its passes (``qopt.passes``) and a code generator
for the lowered IR (``qopt.codegen``), behind one Python API and the ``qopt`` command.
What every op computes, bit for bit, is in docs/semantics.md. The API (imported lazily, so
``import qopt`` and ``qopt --help`` load neither xDSL's passes nor llvmlite):

    qopt.quantize(x, scale, zero_point=None, *, dtype, axis=None, block_size=None,
                  block_shape=None, saturate=True, rounding="nearest_even",
                  zero_point_order="after_rounding")
    qopt.dequantize(q, scale, zero_point=None, *, axis=None, block_size=None,
                    block_shape=None, dtype="f32")
    qopt.requantize(q, in_scale, in_zero_point, out_scale, out_zero_point, *,
                    axis=None, dtype=None)
    qopt.dynamic_quantize(x, *, dtype, scale_dtype="f32", axis=None, block_size=None,
                          block_shape=None, double_quant_scale=None, symmetric=True,
                          scale_rounding="floor", eps=None)
    qopt.fake_quantize(x, scale=None, zero_point=None, *, dtype, ...)
    qopt.rescale(x, multiplier, shift, *, in_zero_point=0, out_zero_point=0, dtype="i8",
                 axis=None, rounding="single_round", ...)      # fixed point (TOSA RESCALE)
    qopt.quantize_multiplier(scale, *, bits=32, convention="tosa"), qopt.multiplier_to_scale(m, s)
    qopt.compile(module_or_text, *, target="cpu", arch=None)
    qopt.compile_stats(), qopt.reset_compile_stats()   # what compiled (api/kernel_cache.py)

Arrays may be numpy arrays, torch tensors or other DLPack / ``__array__`` producers (torch
in, torch out). Errors: ``TypeError`` / ``ValueError`` naming the argument for misuse, and
``qopt.QuantError`` (a ``ValueError`` with a ``location``) for IR that does not parse,
verify or translate.
"""

from __future__ import annotations

import functools
from typing import Any

_API_NAMES = (
    "quantize",
    "dequantize",
    "requantize",
    "dynamic_quantize",
    "fake_quantize",
    "rescale",
    "quantize_multiplier",
    "multiplier_to_scale",
    "compile",
    "set_kernel_cache_size",
    "kernel_cache_size",
    "clear_kernel_cache",
)
_STATS_NAMES = ("compile_stats", "reset_compile_stats")

__all__ = [*_API_NAMES, *_STATS_NAMES, "QuantError", "__version__"]


@functools.cache
def _version() -> str:
    """The installed distribution's version, read on first use (importlib.metadata scans
    the installed packages: a good part of a bare ``import qopt``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qopt")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return _version()
    if name in _API_NAMES:
        from qopt import api

        return getattr(api, name)
    if name in _STATS_NAMES:
        from qopt.api import kernel_cache

        return getattr(kernel_cache, name)
    if name == "QuantError":
        from qopt.errors import QuantError

        return QuantError
    raise AttributeError(f"module 'qopt' has no attribute '{name}'")


_SUBPACKAGES = ("qdialect", "passes", "codegen", "api", "cli", "pipeline", "errors")


def __dir__() -> list[str]:
    return sorted([*__all__, *_SUBPACKAGES])
