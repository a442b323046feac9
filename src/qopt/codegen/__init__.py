"""qopt code generation: lowered IR -> LLVM IR -> CPU machine code (JIT) or PTX.

Dialect-agnostic: it knows loops, vectors and element types of the lowered IR (``func``,
``arith``, ``math``, ``linalg.generic``, ``tensor``), not quantization, and imports nothing
from ``qopt.qdialect`` or ``qopt.passes``. The user-facing API over it is ``qopt``.
"""
