"""``hf_quant_config.json`` and ``config.json``'s ``quantization_config`` as ModelOpt writes them.

A port of ModelOpt 0.47's ``export/quant_utils.py`` ``process_layer_quant_config`` (one
``quant_algo`` for the model, or ``MIXED_PRECISION`` with ``quantized_layers``),
``_prefix_wildcard_summarize_exclude_modules`` (``exclude_modules`` as prefix wildcards)
and ``export/convert_hf_config.py`` ``convert_hf_quant_config_format`` (the
compressed-tensors-style ``quantization_config`` it embeds in ``config.json``), for the
algorithms qopt writes. Pure functions of plain data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

MODELOPT_VERSION = "0.47.0"
"""The ModelOpt release whose export this reproduces (its ``producer.version``)."""


def layer_config(quant_algo: str, group_size: int) -> dict[str, Any]:
    """The per-layer entry ``process_layer_quant_config`` makes for ``quant_algo``."""
    if quant_algo == "W4A16_AWQ":
        return {
            "quant_algo": "W4A16_AWQ",
            "group_size": group_size,
            "has_zero_point": False,
            "pre_quant_scale": True,
        }
    if quant_algo in ("NVFP4", "W4A16_NVFP4", "MXFP8"):
        return {"quant_algo": quant_algo, "group_size": group_size}
    return {"quant_algo": quant_algo}


def _prefix_wildcards(name: str) -> set[str]:
    return {name} | {name[:i] + "*" for i in range(len(name) + 1)}


def _formatted_wildcards(name: str) -> Iterator[list[str]]:
    for i, char in enumerate(name):
        if char == ".":
            yield [name[:i] + "*"]
            yield [name[:i], name[:i] + ".*"]
    yield [name]


def summarize_exclude_modules(unquantized: Sequence[str], quantized: Sequence[str]) -> set[str]:
    """ModelOpt's ``_prefix_wildcard_summarize_exclude_modules``: the fewest prefix
    wildcards (at dots) that match every unquantized module and no quantized one."""
    negative = set()
    for layer in quantized:
        negative |= _prefix_wildcards(layer)
    summary: set[str] = set()
    for layer in unquantized:
        candidate: list[str] = []
        for wildcards in _formatted_wildcards(layer):
            if any(w in negative for w in wildcards):
                continue
            if all(w in summary for w in wildcards):
                candidate = []
                break
            candidate = wildcards
            break
        if len(candidate) == 2:
            a, b = sorted(candidate, key=len)
            summary.update([b] if b == a + ".*" else candidate)
        else:
            summary.update(candidate)
    return summary


def hf_quant_config(
    layers: Mapping[str, dict[str, Any] | None], version: str = MODELOPT_VERSION
) -> dict[str, Any]:
    """``hf_quant_config.json`` for ``layers``: Linear module name -> its
    :func:`layer_config`, or None for a Linear left unquantized (in module order)."""
    quantization: dict[str, Any] = {"quant_algo": None, "kv_cache_quant_algo": None}
    quantized = {name: cfg for name, cfg in layers.items() if cfg is not None}
    formats = {str(cfg) for cfg in quantized.values()}
    if len(formats) > 1:
        quantization["quant_algo"] = "MIXED_PRECISION"
        quantization["quantized_layers"] = quantized
    elif len(formats) == 1:
        quantization.update(next(iter(quantized.values())))
        unquantized = [name for name, cfg in layers.items() if cfg is None]
        quantization["exclude_modules"] = sorted(summarize_exclude_modules(unquantized, quantized))
    else:
        quantization["quantized_layers"] = {}
    return {"producer": {"name": "modelopt", "version": version}, "quantization": quantization}


def _group_details(quant_algo: str, group_size: int | None) -> dict[str, Any]:
    """``_quant_algo_to_group_config`` for the algorithms qopt writes."""
    float_weights = {"dynamic": False, "num_bits": 8, "type": "float"}
    if quant_algo == "FP8":
        return {"input_activations": dict(float_weights), "weights": float_weights}
    if quant_algo == "FP8_PER_CHANNEL_PER_TOKEN":
        return {
            "input_activations": dict(float_weights),
            "weights": {**float_weights, "strategy": "channel"},
        }
    if quant_algo == "W4A16_AWQ":
        gs = group_size or 128
        return {"weights": {"dynamic": False, "num_bits": 4, "type": "int", "group_size": gs}}
    if quant_algo == "W4A16_NVFP4":
        gs = group_size or 16
        return {"weights": {"dynamic": False, "num_bits": 4, "type": "float", "group_size": gs}}
    if quant_algo == "W8A16":
        return {"weights": {"dynamic": False, "num_bits": 8, "type": "int"}}
    return {"quant_algo": quant_algo}


def quantization_config(hf_config: Mapping[str, Any]) -> dict[str, Any]:
    """``convert_hf_quant_config_format``: what ModelOpt puts under ``config.json``'s
    ``quantization_config``."""
    details = hf_config.get("quantization", {})
    algo = details.get("quant_algo")
    out: dict[str, Any] = {}
    if algo == "FP8":
        out["config_groups"] = {"group_0": {**_group_details("FP8", None), "targets": ["Linear"]}}
    elif algo == "W4A16_NVFP4":
        gs = details.get("group_size", 16)
        out["config_groups"] = {
            "group_0": {**_group_details("W4A16_NVFP4", gs), "targets": ["Linear"]}
        }
    elif algo == "MIXED_PRECISION":
        layers = details.get("quantized_layers", {})
        by_algo: dict[tuple, list[str]] = defaultdict(list)
        for name, cfg in layers.items():
            by_algo[tuple(sorted(cfg.items()))].append(name)
        groups = {}
        for index, (key, names) in enumerate(by_algo.items()):
            cfg = dict(key)
            group = _group_details(cfg.get("quant_algo", ""), cfg.get("group_size"))
            group["targets"] = sorted(names)
            groups[f"group_{index}"] = group
        out["config_groups"] = groups
        out["quantized_layers"] = layers
    excluded = details.get("exclude_modules")
    out["ignore"] = excluded if excluded is not None else []
    if algo:
        out["quant_algo"] = algo
    if details.get("kv_cache_quant_algo"):
        out["kv_cache_scheme"] = details["kv_cache_quant_algo"]
    if hf_config.get("producer"):
        out["producer"] = hf_config["producer"]
    out["quant_method"] = "modelopt"
    return out
