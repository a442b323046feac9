"""Passes over the quant dialect: exact folding, lowering choice, lowering to arith/linalg.

The registry maps each pass name to a lazy factory, so ``qopt --help`` imports no pass
module; pass name = module name = FileCheck test name (``lower-quant`` <->
``lower_quant.py`` <-> ``filecheck/passes/lower-quant.mlir``).

The other modules are the layers beneath the passes, each imported in one direction:
``scalar_ir`` (body builder) <- ``quant_math`` / ``dynamic_math`` (the numerics, once) <-
``lowering_ir`` / ``lowering_choice`` <- ``lowering_packing`` <- ``lowering_static`` /
``lowering_dynamic`` (one pattern per op) <- ``lower_quant``; ``choose_quant_lowering``
writes what ``lowering_choice`` decides; ``lowering_rescale`` lowers ``quant.rescale`` and
``requantize_to_rescale`` (opt-in, changes results) makes it from float requantizes; ``evaluate_lowered`` <- ``fold_eval`` (the
lowering's element bodies evaluated on every code) <- ``fold_proofs`` <- ``fold_quant``.
"""

from collections.abc import Callable

from xdsl.passes import ModulePass


def _fold_quant() -> type[ModulePass]:
    from qopt.passes.fold_quant import FoldQuantPass

    return FoldQuantPass


def _choose_quant_lowering() -> type[ModulePass]:
    from qopt.passes.choose_quant_lowering import ChooseQuantLoweringPass

    return ChooseQuantLoweringPass


def _lower_quant() -> type[ModulePass]:
    from qopt.passes.lower_quant import LowerQuantPass

    return LowerQuantPass


def _requantize_to_rescale() -> type[ModulePass]:
    from qopt.passes.requantize_to_rescale import RequantizeToRescalePass

    return RequantizeToRescalePass


def _convert_quant_types() -> type[ModulePass]:
    from qopt.passes.convert_quant_types import ConvertQuantTypesPass

    return ConvertQuantTypesPass


def _export_quant_types() -> type[ModulePass]:
    from qopt.passes.export_quant_types import ExportQuantTypesPass

    return ExportQuantTypesPass


def _canonicalize() -> type[ModulePass]:
    from xdsl.transforms.canonicalize import CanonicalizePass

    return CanonicalizePass


def _cse() -> type[ModulePass]:
    from xdsl.transforms.common_subexpression_elimination import (
        CommonSubexpressionElimination,
    )

    return CommonSubexpressionElimination


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "fold-quant": _fold_quant,
    "choose-quant-lowering": _choose_quant_lowering,
    "lower-quant": _lower_quant,
    "requantize-to-rescale": _requantize_to_rescale,
    "convert-quant-types": _convert_quant_types,
    "export-quant-types": _export_quant_types,
    "canonicalize": _canonicalize,
    "cse": _cse,
}

PASS_SUMMARIES: dict[str, str] = {
    "fold-quant": "exact folds of q/dq pairs and requantize chains (docs/semantics.md section 6)",
    "choose-quant-lowering": "annotate each op with its lowering: fused, composite or lut",
    "lower-quant": "lower every quant op to func/arith/math/linalg/tensor",
    "requantize-to-rescale": "float requantizes with constant parameters to fixed-point "
    "quant.rescale (CHANGES results: docs/semantics.md section 12)",
    "convert-quant-types": "upstream quant.qcast/dcast/scast and stablehlo.uniform_* on "
    "!quant.uniform types -> qopt's quantize/dequantize/requantize on storage types",
    "export-quant-types": "qopt's quantize/dequantize/requantize -> upstream quant.qcast/"
    "dcast/scast on !quant.uniform types, where expressible (an error says where not)",
    "canonicalize": "xDSL's canonicalization patterns",
    "cse": "common subexpression elimination",
}

PASS_OPTIONS: dict[str, dict[str, str]] = {
    "fold-quant": {
        "lossy": "false|true: also merge inexact chains, each reported with its worst-case error"
    },
    "choose-quant-lowering": {
        "mode": "auto|fused|composite: the lowering of every op (auto: the cost model's)",
        "allow_lut": "false|true: let auto pick lookup tables (inputs of at most 8 bits)",
    },
    "requantize-to-rescale": {
        "bits": "32|16: the multiplier width",
        "convention": "tosa|tflite: how a scale ratio becomes (multiplier, shift)",
        "rounding": "single_round|double_round|inexact_round|upward|tonearest",
    },
}
"""Each pass's options (the fields of its dataclass; a test holds them equal), for
``qopt --help``: ``--fold-quant='lossy=true'`` or ``-p 'fold-quant{lossy=true}'``."""
