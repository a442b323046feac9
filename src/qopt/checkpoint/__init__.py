"""Whole checkpoints: ``qopt quantize-checkpoint`` and ``qopt verify-checkpoint``.

A Hugging Face style directory (config.json, safetensors shards, their index) is planned
(:mod:`~qopt.checkpoint.plan`: plain data), read memory-mapped and written shard by shard
(:mod:`~qopt.checkpoint.io`), its Linear weights quantized through qopt's kernels into a
serving format (:mod:`~qopt.checkpoint.formats`: compressed-tensors, ModelOpt) with the
schemes of :mod:`~qopt.checkpoint.schemes`, shard jobs run by a standard executor
(:mod:`~qopt.checkpoint.executors`) and the error of every tensor measured
(:mod:`~qopt.checkpoint.stats`). Nothing here is imported by ``import qopt``.
"""
