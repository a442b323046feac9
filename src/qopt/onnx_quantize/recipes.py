"""Weight recipes of ``qopt quantize-onnx``: ModelOpt's ONNX weight-only arithmetic on qopt kernels.

NVIDIA ModelOpt's INT4 ONNX flow (``modelopt/onnx/quantization/int4.py`` ``quantize_rtn`` with
``quant_utils.find_scales`` / ``rtn``) quantizes a MatMul weight ``W`` of shape ``[K, N]``
(``y = x @ W``) along ``K``, the reduction axis:

* INT4, block ``B`` (default 128) on the ``K`` axis:
  ``s = max(amax(block) / 7, 1e-5)`` (``CLIP_MIN``; a zero block gets ``1e-5``),
  ``q = clip(rne(w / s), -8, 7)``; a partial last block uses only the elements that exist
  (ModelOpt pads it with zeros, which cannot raise an absolute maximum);
* INT8 (ModelOpt's 8-bit layers: ``block_size = -1``): one scale per output column,
  ``s = max(amax(column) / 127, 1e-5)``, ``q = clip(rne(w / s), -128, 127)``, DequantizeLinear
  ``axis = 1`` with a 1-D scale;
* FP8 (ModelOpt's FP8 weight recipe, per tensor): ``s = amax / 448``,
  ``q = e4m3_rne(clip(w / s, -448, 448))``.

Each is one ``qopt.dynamic_quantize`` call (``eps`` is ModelOpt's clip), so the bytes come
from the kernel compiled from the quant dialect's IR; ``w / s`` is the same IEEE division
as ONNX QuantizeLinear's, which makes the data bit-exact with ``onnx.reference`` for the
same scale. Per-tensor bit widths (ModelOpt's ``precision_info`` / ``layer_info``) pick a
recipe per initializer (:func:`recipe_for_bits`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

MODELOPT_CLIP_MIN = 1e-5
"""ModelOpt's ``quant_utils.CLIP_MIN``: the smallest integer-weight scale."""


@dataclass(frozen=True)
class Recipe:
    """How one weight is quantized: storage, granularity on the ``[K, N]`` view, scale clip.

    ``block_size`` set: blocks along ``K`` (ONNX blocked DequantizeLinear); ``per_channel``:
    one scale per column ``N``; neither: one scale for the tensor.
    """

    name: str
    storage: str  # qopt / MLIR spelling: "i4", "i8", "f8E4M3FN"
    onnx_type: str  # onnx.TensorProto data type name
    block_size: int | None = None
    per_channel: bool = False
    eps: float | None = None
    min_opset: int = 21

    @property
    def bits(self) -> int:
        return 4 if self.storage == "i4" else 8


INT8 = Recipe("int8", "i8", "INT8", per_channel=True, eps=MODELOPT_CLIP_MIN)
FP8 = Recipe("fp8", "f8E4M3FN", "FLOAT8E4M3FN", min_opset=19)


def int4(block_size: int) -> Recipe:
    return Recipe(f"int4-g{block_size}", "i4", "INT4", block_size=block_size, eps=MODELOPT_CLIP_MIN)


SCHEME_NAMES = ("int4-g128", "int4-gN (N >= 2)", "int8", "fp8")


def parse_scheme(text: str) -> Recipe:
    """``int4-g128`` (any group size ``int4-gN``), ``int8`` or ``fp8``; ValueError otherwise."""
    if text == "int8":
        return INT8
    if text == "fp8":
        return FP8
    match = re.fullmatch(r"int4-g(\d+)", text)
    if match and int(match.group(1)) >= 2:
        return int4(int(match.group(1)))
    raise ValueError(f"unknown scheme {text!r}; expected one of: {', '.join(SCHEME_NAMES)}")


def recipe_for_bits(default: Recipe, bits: int, block_size: int | None = None) -> Recipe:
    """ModelOpt's per-tensor precision (``precision_info`` / ``layer_info``): 8 -> INT8 per
    channel (ModelOpt always makes 8-bit layers per channel); 4 -> INT4 blocks of
    ``block_size`` (default: the scheme's group size, else 128; -1 means per channel)."""
    if bits == 8:
        if block_size not in (None, -1):
            raise ValueError(f"8-bit tensors are per channel (block_size -1), got {block_size}")
        return INT8
    if bits == 4:
        size = block_size if block_size is not None else (default.block_size or 128)
        if size == -1:
            return replace(int4(128), name="int4-channel", block_size=None, per_channel=True)
        if size < 2:
            raise ValueError(f"block_size must be -1 or at least 2, got {size}")
        return int4(size)
    raise ValueError(f"bits must be 4 or 8 (ModelOpt's precision_info), got {bits}")


@dataclass(frozen=True)
class QuantizedWeight:
    """One quantized weight: data (packed bytes for int4), scale and the DequantizeLinear axes."""

    data: np.ndarray  # int4: flat uint8, two codes per byte; else one element per byte
    scale: np.ndarray
    shape: tuple[int, ...]
    axis: int | None
    block_size: int | None


def quantize_weight(w: np.ndarray, recipe: Recipe, k_axis: int = 0) -> QuantizedWeight:
    """Quantize a 2-D weight whose reduction axis (``K``) is ``k_axis`` (0 for MatMul's
    ``[K, N]``, 1 for Gemm's ``transB=1`` ``[N, K]``) with ``recipe``; the scale has the
    weight's dtype (ModelOpt: the model's I/O type)."""
    import qopt

    if w.ndim != 2:
        raise ValueError(f"weight must be 2-D, got shape {w.shape}")
    channel_axis = 1 - k_axis
    kwargs: dict = {"dtype": recipe.storage, "scale_dtype": w.dtype, "eps": recipe.eps}
    if recipe.block_size is not None:
        axis, block = k_axis, recipe.block_size
        kwargs.update(axis=axis, block_size=block, packed=recipe.storage == "i4")
    elif recipe.per_channel:
        axis, block = channel_axis, None
        kwargs.update(axis=axis, packed=recipe.storage == "i4")
    else:
        axis, block = None, None
    data, scale = qopt.dynamic_quantize(w, **kwargs)
    return QuantizedWeight(data, scale, tuple(w.shape), axis, block)
