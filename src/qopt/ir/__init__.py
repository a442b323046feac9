"""Generic IR text utilities beneath every other layer of qopt.

Exact parsing (:mod:`qopt.ir.parsing`) and printing (:mod:`qopt.ir.printing`) of MLIR
text, and located diagnostics and verification (:mod:`qopt.ir.diagnostics`). Nothing here
knows a dialect: ``qopt.qdialect``, ``qopt.passes`` and ``qopt.codegen`` all build on it.
"""
