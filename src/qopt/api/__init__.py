"""qopt's Python API: one path from quant IR to machine code.

Each entry point (``quantize``, ``dequantize``, ``requantize``, ``dynamic_quantize``,
``fake_quantize``) validates its arguments, builds a one-op quant-dialect function for the
request with the ops' typed constructors, runs the same pipeline as ``qopt --lower-quant``,
JIT-compiles the lowered module (codegen.jit, cached) and calls the kernel. There is no
numpy fallback: numpy only holds the arrays.

Inputs. Arrays are numpy arrays, torch tensors, or any other DLPack / ``__array__``
producer on the CPU; they are read in place. Results come back as the kind of the first
argument (arrays.py). Dtypes are MLIR spellings, numpy / ml_dtypes dtypes or their names,
or torch dtypes (dtypes.py). Parameters are checked in the precision the kernel uses
(params.py).

Errors (qopt/errors.py): a ``TypeError`` or ``ValueError`` naming the argument for misuse;
:class:`qopt.errors.QuantError` (a ``ValueError`` with a ``location``) for IR that does not
parse, verify, lower or translate. Nothing else escapes on bad input.

Parameters are always runtime operands of the kernel (a Python number becomes a 0-d
array), so one compiled kernel serves every scale and zero point of a given signature;
kernels are memoized by that signature in a bounded LRU table (kernel_cache.py).

The modules, each with one responsibility:

    arrays.py        numpy / torch / DLPack inputs and results
    dtypes.py        dtype arguments -> MLIR spellings (the dialect's format table)
    params.py        scale, zero point, option and granularity checks
    building.py      the request's signature and its one-op function (typed constructors)
    kernel_cache.py  the bounded kernel table
    compiling.py     lowering and codegen; ``compile`` for user IR
    entry.py         the five entry points
    rescale.py       fixed-point rescale and the scale <-> (multiplier, shift) conversions
"""

from __future__ import annotations

from qopt.api.compiling import compile
from qopt.api.entry import dequantize, dynamic_quantize, fake_quantize, quantize, requantize
from qopt.api.kernel_cache import (
    DEFAULT_KERNEL_CACHE_SIZE,
    clear_kernel_cache,
    kernel_cache_size,
    set_kernel_cache_size,
)
from qopt.api.rescale import multiplier_to_scale, quantize_multiplier, rescale
from qopt.errors import QuantError

__all__ = [
    "DEFAULT_KERNEL_CACHE_SIZE",
    "QuantError",
    "clear_kernel_cache",
    "compile",
    "dequantize",
    "dynamic_quantize",
    "fake_quantize",
    "kernel_cache_size",
    "multiplier_to_scale",
    "quantize",
    "quantize_multiplier",
    "requantize",
    "rescale",
    "set_kernel_cache_size",
]
