"""``quantize_onnx``: a whole ONNX model's MatMul / Gemm weights, as a function.

Finds the weights (:mod:`.graph`), quantizes each with its recipe (:mod:`.recipes`, the
scheme's or the one its bit width in ``precision`` names) and rewrites the model; the
per-weight error statistics come with the result. The command line (:mod:`.cli`) adds
loading, saving and the onnxruntime comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import onnx

from qopt.onnx_quantize.evaluate import ErrorStats, dequantized_weight, error_stats
from qopt.onnx_quantize.graph import (
    OnnxQuantizeError,
    Target,
    find_targets,
    rewrite,
    weight_array,
)
from qopt.onnx_quantize.recipes import QuantizedWeight, Recipe, quantize_weight, recipe_for_bits


@dataclass(frozen=True)
class WeightResult:
    """One quantized weight: what was done and its error against the original."""

    target: Target
    recipe: Recipe
    weight: QuantizedWeight
    stats: ErrorStats


@dataclass(frozen=True)
class OnnxQuantizeResult:
    model: onnx.ModelProto
    weights: list[WeightResult]
    skipped: list[str]


def parse_precision(data: object, source: str) -> dict[str, tuple[int, int | None]]:
    """ModelOpt's per-tensor precision from JSON: ``{"W": 8}`` (``precision_info``) or
    ``{"W": {"precision": 4, "block_size": 64, "axis": 0}}`` (``layer_info``); returns
    tensor name -> (bits, block size or None)."""
    if not isinstance(data, dict):
        raise OnnxQuantizeError(f"{source}: expected a JSON object of tensor name -> bits")
    out = {}
    for name, entry in data.items():
        block = None
        if isinstance(entry, dict):
            bits, block = entry.get("precision"), entry.get("block_size")
            if block is not None and (not isinstance(block, int) or isinstance(block, bool)):
                raise OnnxQuantizeError(f"{source}: {name!r}: block_size must be an integer")
        else:
            bits = entry
        if bits not in (4, 8) or isinstance(bits, bool):
            raise OnnxQuantizeError(f"{source}: {name!r}: bits must be 4 or 8, got {bits!r}")
        out[name] = (bits, block)
    return out


def quantize_onnx(
    model: onnx.ModelProto,
    recipe: Recipe,
    *,
    precision: Mapping[str, tuple[int, int | None]] | None = None,
    exclude: Sequence[str] = (),
) -> OnnxQuantizeResult:
    """Quantize ``model``'s MatMul / Gemm weights; ``precision`` overrides the recipe per
    initializer name (a name that is not a quantizable weight is an error)."""
    targets, skipped = find_targets(model, exclude)
    precision = dict(precision or {})
    unknown = sorted(set(precision) - {t.initializer for t in targets})
    if unknown:
        raise OnnxQuantizeError(
            f"precision names {unknown[0]!r}, which is not a quantized MatMul/Gemm weight "
            f"of this model"
        )
    quantized, results = {}, []
    for target in targets:
        chosen = recipe
        if target.initializer in precision:
            bits, block = precision[target.initializer]
            try:
                chosen = recipe_for_bits(recipe, bits, block)
            except ValueError as exc:
                raise OnnxQuantizeError(f"precision of {target.initializer!r}: {exc}") from None
        w = weight_array(model, target)
        qw = quantize_weight(w, chosen, target.k_axis)
        back = dequantized_weight(qw, chosen.storage, w.dtype)
        stats = error_stats(target.initializer, w, back)
        quantized[target.initializer] = (target, chosen, qw)
        results.append(WeightResult(target, chosen, qw, stats))
    return OnnxQuantizeResult(rewrite(model, quantized), results, skipped)
