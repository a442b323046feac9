"""NVIDIA ModelOpt's unified Hugging Face checkpoint (what TensorRT-LLM, vLLM and SGLang load
with ``quant_method: modelopt``), as ModelOpt 0.47's ``export_hf_checkpoint`` writes it.

Per quantized Linear ``M`` (``M.weight`` ``N x K`` of dtype ``T`` in the input):

| scheme | ModelOpt ``quant_algo`` | tensors |
|---|---|---|
| W8A16 | ``W8A16`` (int8_wo) | ``M.weight`` int8 ``N x K``, ``M.weight_scale`` f32 ``N`` |
| W4A16 (``--group-size G``) | ``W4A16_AWQ`` | ``M.weight`` uint8 ``N/2 x K`` (two rows per byte), ``M.weight_scale`` f32 ``N x K/G`` |
| FP8_DYNAMIC | ``FP8_PER_CHANNEL_PER_TOKEN`` | ``M.weight`` float8_e4m3fn ``N x K``, ``M.weight_scale`` f32 ``N`` |
| FP8_PER_TENSOR | ``FP8`` | ``M.weight`` float8_e4m3fn ``N x K``, ``M.weight_scale`` f32 ``[]`` (shared by q/k/v, gate/up) |
| NVFP4A16 | ``W4A16_NVFP4`` | ``M.weight`` uint8 ``N x K/2``, ``M.weight_scale`` float8_e4m3fn ``N x K/16``, ``M.weight_scale_2`` f32 ``[]`` (shared by q/k/v, gate/up) |

The numerics are :mod:`qopt.checkpoint.modelopt_recipes` (byte-exact with ModelOpt's own
quantizer and export functions). ``input_scale`` is what ModelOpt writes for quantized
*activations* (``FP8``, ``NVFP4``), from calibration data; this data-free tool writes the
weight-only algorithms and no ``input_scale``. ``hf_quant_config.json`` (``producer``,
``quantization``: one ``quant_algo`` with ``exclude_modules``, or ``MIXED_PRECISION`` with
``quantized_layers`` when ``--bits-file`` mixes schemes) and ``config.json``'s
``quantization_config`` are :mod:`qopt.checkpoint.modelopt_config`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

import ml_dtypes
import numpy as np

from qopt.checkpoint import modelopt_config, modelopt_recipes
from qopt.checkpoint.formats import CheckpointFormat
from qopt.checkpoint.io import CheckpointError, OutputSpec
from qopt.checkpoint.plan import Plan, TensorEntry, is_linear_weight
from qopt.checkpoint.schemes import Scheme

E4M3 = np.dtype(ml_dtypes.float8_e4m3fn)
F32 = np.dtype(np.float32)

FP8_PER_TENSOR = Scheme("FP8_PER_TENSOR", "fp8", 8, block=(-1, -1))
"""ModelOpt's ``FP8`` weight: one scale per tensor (``block`` = the whole tensor)."""

QUANT_ALGOS = {
    "W8A16": "W8A16",
    "W4A16": "W4A16_AWQ",
    "FP8_DYNAMIC": "FP8_PER_CHANNEL_PER_TOKEN",
    "FP8_PER_TENSOR": "FP8",
    "NVFP4A16": "W4A16_NVFP4",
}
"""qopt scheme name -> ModelOpt's ``quant_algo``."""


def _is_per_tensor(scheme: Scheme) -> bool:
    return scheme.kind == "fp8" and scheme.block == (-1, -1)


class ModelOpt(CheckpointFormat):
    """``--format modelopt`` (see the module docstring)."""

    name = "modelopt"
    schemes = ("W8A16", "W4A16", "FP8_DYNAMIC", "NVFP4A16")
    extra_schemes = (FP8_PER_TENSOR,)

    def shares_global_scale(self, scheme: Scheme) -> bool:
        # preprocess_linear_fusion unifies every per-tensor weight amax of a fused group
        return scheme.kind == "nvfp4" or _is_per_tensor(scheme)

    @staticmethod
    def quant_algo(scheme: Scheme) -> str:
        if scheme.kind == "int" and not scheme.symmetric:
            raise CheckpointError(f"format modelopt writes no zero points (scheme {scheme.name})")
        name = "W4A16" if scheme.kind == "int" and scheme.bits == 4 else scheme.name
        if name not in QUANT_ALGOS or (
            scheme.kind == "fp8" and scheme.block not in (None, (-1, -1))
        ):
            raise CheckpointError(
                f"format modelopt does not write scheme {scheme.name} (it writes "
                f"{', '.join(QUANT_ALGOS)})"
            )
        return QUANT_ALGOS[name]

    def _check(self, entry: TensorEntry, scheme: Scheme) -> tuple[int, int]:
        self.quant_algo(scheme)
        if len(entry.shape) != 2:
            raise CheckpointError(f"tensor {entry.name}: shape {entry.shape} is not 2-D")
        n, k = entry.shape
        int4 = scheme.kind == "int" and scheme.bits == 4
        if int4 and (n % 2 or k % (scheme.group_size or 128)):
            raise CheckpointError(
                f"tensor {entry.name}: ModelOpt's int4 needs an even N and K a multiple "
                f"of {scheme.group_size}, shape is {entry.shape}"
            )
        if scheme.kind == "nvfp4" and k % 16:
            raise CheckpointError(f"tensor {entry.name}: NVFP4 needs K % 16 == 0, K = {k}")
        return n, k

    def output_specs(self, entry: TensorEntry, scheme: Scheme) -> list[OutputSpec]:
        n, k = self._check(entry, scheme)
        m = entry.module
        if scheme.kind == "int" and scheme.bits == 8:
            return [OutputSpec(f"{m}.weight", np.dtype(np.int8), (n, k)),
                    OutputSpec(f"{m}.weight_scale", F32, (n,))]  # fmt: skip
        if scheme.kind == "int":
            g = scheme.group_size or 128
            return [OutputSpec(f"{m}.weight", np.dtype(np.uint8), (n // 2, k)),
                    OutputSpec(f"{m}.weight_scale", F32, (n, k // g))]  # fmt: skip
        if scheme.kind == "fp8":
            shape = () if _is_per_tensor(scheme) else (n,)
            return [OutputSpec(f"{m}.weight", E4M3, (n, k)),
                    OutputSpec(f"{m}.weight_scale", F32, shape)]  # fmt: skip
        return [OutputSpec(f"{m}.weight", np.dtype(np.uint8), (n, k // 2)),
                OutputSpec(f"{m}.weight_scale", E4M3, (n, k // 16)),
                OutputSpec(f"{m}.weight_scale_2", F32, ())]  # fmt: skip

    def quantize(
        self, entry: TensorEntry, weight: np.ndarray, scheme: Scheme, group_amax: float | None
    ) -> dict[str, np.ndarray]:
        self._check(entry, scheme)
        names = [spec.name for spec in self.output_specs(entry, scheme)]
        try:
            if scheme.kind == "int" and scheme.bits == 8:
                arrays = modelopt_recipes.int8_wo(weight)
            elif scheme.kind == "int":
                arrays = modelopt_recipes.int4_awq(weight, scheme.group_size or 128)
            elif _is_per_tensor(scheme):
                arrays = modelopt_recipes.fp8_per_tensor(weight, group_amax)
            elif scheme.kind == "fp8":
                arrays = modelopt_recipes.fp8_per_channel(weight)
            else:
                arrays = modelopt_recipes.nvfp4(weight, group_amax)
        except modelopt_recipes.RecipeError as exc:
            raise CheckpointError(f"tensor {entry.name}: {exc}") from None
        return dict(zip(names, arrays, strict=True))

    def dequantize(
        self, module: str, tensors: Mapping[str, np.ndarray], scheme: Scheme
    ) -> np.ndarray:
        import qopt

        w, s = tensors["weight"], tensors["weight_scale"]
        if scheme.kind == "int" and scheme.bits == 8:
            return qopt.dequantize(w, s, axis=0)
        if scheme.kind == "int":
            lo = (w & 0x0F).astype(np.int8)
            hi = (w >> 4).astype(np.int8)
            rows = np.stack([lo, hi], axis=1).reshape(w.shape[0] * 2, w.shape[1])
            q = np.where(rows > 7, rows - 16, rows).astype(ml_dtypes.int4)
            return qopt.dequantize(q, s, axis=1, block_size=w.shape[1] // s.shape[1])
        if scheme.kind == "fp8":
            return qopt.dequantize(w, s) if s.ndim == 0 else qopt.dequantize(w, s, axis=0)
        n, half = w.shape
        return qopt.dequantize(
            w.reshape(-1), s, axis=1, block_size=16, storage_dtype="f4E2M1FN",
            shape=(n, half * 2), double_quant_scale=tensors["weight_scale_2"],
        )  # fmt: skip

    def weight_shape(
        self, tensors: Mapping[str, np.ndarray], scheme: Scheme
    ) -> tuple[int, ...] | None:
        n, k = tensors["weight"].shape
        if scheme.kind == "int" and scheme.bits == 4:
            return (n * 2, k)  # two rows per byte
        if scheme.kind == "nvfp4":
            return (n, k * 2)  # two columns per byte
        return (n, k)

    def write_config(self, plan: Plan, input_config: dict | None, out_dir: Path) -> None:
        layers: dict[str, dict | None] = {}
        for shard in plan.shards:
            for entry in shard.tensors:
                if not is_linear_weight(entry.name, entry.shape) or "embed" in entry.module:
                    continue  # ModelOpt lists Linear modules only (embeddings have no quantizer)
                if entry.scheme is None:
                    layers[entry.module] = None
                else:
                    scheme = plan.scheme(entry.scheme)
                    layers[entry.module] = modelopt_config.layer_config(
                        self.quant_algo(scheme), scheme.group_size or 0
                    )
        hf = modelopt_config.hf_quant_config(layers)
        (out_dir / "hf_quant_config.json").write_text(json.dumps(hf, indent=4))
        config = dict(input_config or {})
        config["quantization_config"] = modelopt_config.quantization_config(hf)
        (out_dir / "config.json").write_text(json.dumps(config, indent=4))

    def read_config(self, out_dir: Path) -> object:
        path = out_dir / "hf_quant_config.json"
        try:
            config = json.loads(path.read_text())
            quantization = config["quantization"]
            algo = quantization["quant_algo"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: not a ModelOpt hf_quant_config ({exc})") from None
        if config.get("producer", {}).get("name") != "modelopt":
            raise CheckpointError(f"{path}: producer is not modelopt")
        if algo == "MIXED_PRECISION" and not isinstance(quantization.get("quantized_layers"), dict):
            raise CheckpointError(f"{path}: MIXED_PRECISION without quantized_layers")
        return quantization

    def scheme_of(self, config: object, module: str, local_names: Sequence[str]) -> Scheme | None:
        assert isinstance(config, dict)
        if config["quant_algo"] == "MIXED_PRECISION":
            layer = config["quantized_layers"].get(module)
        elif any(fnmatchcase(module, p) for p in config.get("exclude_modules") or ()):
            layer = None
        else:
            layer = {k: v for k, v in config.items() if k != "kv_cache_quant_algo"}
        names = set(local_names)
        scaled = bool(names & {"weight_scale", "weight_scale_2"})
        if layer is None or layer.get("quant_algo") is None:
            if scaled:
                raise CheckpointError(
                    f"module {module}: has scales but the config leaves it unquantized"
                )
            return None
        if not scaled and config["quant_algo"] != "MIXED_PRECISION":
            return None  # not a Linear (norms, embeddings): loaders quantize Linear modules only
        scheme = self._scheme_for_algo(layer, module)
        want = {"weight", "weight_scale"} | (
            {"weight_scale_2"} if scheme.kind == "nvfp4" else set()
        )
        if not want <= names:
            raise CheckpointError(
                f"module {module}: {layer['quant_algo']} needs tensors {sorted(want)}, found {sorted(names)}"
            )
        return scheme

    def _scheme_for_algo(self, layer: dict, module: str) -> Scheme:
        from qopt.checkpoint.schemes import SCHEMES, scheme_named

        algo = layer["quant_algo"]
        by_algo = {v: k for k, v in QUANT_ALGOS.items()}
        if algo not in by_algo:
            raise CheckpointError(f"module {module}: quant_algo {algo} is not one qopt reads")
        name = by_algo[algo]
        if name == "FP8_PER_TENSOR":
            return FP8_PER_TENSOR
        if name == "W4A16":
            return scheme_named("W4A16", layer.get("group_size") or 128)
        return SCHEMES[name]
