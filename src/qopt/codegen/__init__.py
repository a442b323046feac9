"""qopt code generation: lowered IR -> LLVM IR -> CPU machine code (JIT) or PTX.

Dialect-agnostic: it knows loops, vectors and element types of the lowered IR (``func``,
``arith``, ``math``, ``linalg.generic``, ``tensor``), not quantization. It imports only
itself and the base layer ``qopt.ir`` - nothing from ``qopt.qdialect``, ``qopt.passes`` or
the top-level modules (``tests/codegen/test_layering.py``). Entry points: ``stages`` (the
stage chain, each stage dumpable), ``jit`` (CPU), ``ptx`` (NVIDIA GPUs); the modules and
their jobs are listed in docs/design.md section 2.1. The user-facing API over it is ``qopt``.
"""
