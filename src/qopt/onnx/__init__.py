"""ONNX in and out: ``qopt import-onnx`` (importer.py: Q/DQ nodes as quant ops, other
nodes as ``onnx.node``), ``qopt onnx-simplify`` (simplify.py: fold-quant's exact rewrites,
written back by exporter.py) and ``qopt onnx-check`` (check.py: onnxruntime's default
optimizations against none, and qopt, on every Q/DQ subgraph). Needs the ``onnx`` package
(``pip install 'qopt[onnx]'``); docs/onnx.md describes the mapping.
"""
