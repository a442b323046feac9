"""compressed-tensors: what vLLM, SGLang and transformers load, as llm-compressor writes it.

Per quantized Linear ``M`` (``M.weight`` in the input):

| scheme | tensors (dtype, shape for an ``N x K`` weight of dtype ``T``) |
|---|---|
| W8A16, W4A16 | ``M.weight_packed`` int32 ``N x K*bits/32`` (codes ``q + 2^(bits-1)``, first in the low bits), ``M.weight_scale`` T ``N x K/G``, ``M.weight_shape`` int64 ``[N, K]`` |
| W4A16_ASYM | the same plus ``M.weight_zero_point`` int32 ``N/8 x K/G`` (zero points packed along the rows) |
| FP8_DYNAMIC, FP8_BLOCK | ``M.weight`` float8_e4m3fn ``N x K``, ``M.weight_scale`` T ``N x 1`` / ``ceil(N/128) x ceil(K/128)`` |
| NVFP4A16 | ``M.weight_packed`` uint8 ``N x K/2`` (e2m1 codes, first in the low nibble), ``M.weight_scale`` float8_e4m3fn ``N x K/16``, ``M.weight_global_scale`` float32 ``[1]`` (shared by q/k/v and by gate/up) |
| MXFP8A16 | ``M.weight`` float8_e4m3fn ``N x K``, ``M.weight_scale`` uint8 (E8M0 codes) ``N x K/32`` |
| MXFP4A16 | ``M.weight_packed`` uint8 ``N x K/2``, ``M.weight_scale`` uint8 ``N x K/32`` |

``config.json`` gains ``quantization_config`` (``config_groups`` keyed by the scheme name,
``format``, ``ignore``, ``quant_method``, ``quantization_status: compressed``, ``version``)
and is written with sorted keys and an indent of 2, as llm-compressor's ``model_free_ptq``
writes it. The numerics are :mod:`qopt.checkpoint.recipes`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import ml_dtypes
import numpy as np

from qopt.checkpoint import recipes
from qopt.checkpoint.formats import CheckpointFormat
from qopt.checkpoint.io import DTYPES, CheckpointError, OutputSpec
from qopt.checkpoint.plan import Plan, TensorEntry
from qopt.checkpoint.schemes import Scheme

CT_VERSION = "0.19.0"
"""The compressed-tensors release whose layout and arithmetic this module reproduces."""

E4M3 = np.dtype(ml_dtypes.float8_e4m3fn)

FORMAT_NAMES = {
    "int": "pack-quantized",
    "fp8": "float-quantized",
    "nvfp4": "nvfp4-pack-quantized",
    "mxfp8": "mxfp8-quantized",
    "mxfp4": "mxfp4-pack-quantized",
}


def _args(**fields: object) -> dict:
    base = {
        "actorder": None,
        "block_structure": None,
        "dynamic": False,
        "group_size": None,
        "num_bits": 8,
        "observer": None,
        "observer_kwargs": {},
        "scale_dtype": None,
        "strategy": "group",
        "symmetric": True,
        "type": "int",
        "zp_dtype": None,
    }
    base.update(fields)
    return base


def config_group(scheme: Scheme) -> dict:
    """The ``config_groups`` entry compressed-tensors writes for ``scheme``."""
    inputs = None
    if scheme.kind == "int":
        weights = _args(
            group_size=scheme.group_size,
            num_bits=scheme.bits,
            strategy="group" if scheme.group_size else "channel",
            symmetric=scheme.symmetric,
            zp_dtype=None if scheme.symmetric else "torch.int8",
        )
    elif scheme.kind == "fp8":
        block = scheme.block is not None
        weights = _args(
            type="float",
            strategy="block" if block else "channel",
            block_structure=list(scheme.block) if block else None,
        )
        inputs = _args(
            type="float",
            dynamic=True,
            strategy="group" if block else "token",
            group_size=128 if block else None,
        )
    elif scheme.kind == "nvfp4":
        weights = _args(
            type="float",
            num_bits=4,
            group_size=16,
            strategy="tensor_group",
            scale_dtype="torch.float8_e4m3fn",
        )
    else:
        weights = _args(
            type="float",
            num_bits=4 if scheme.kind == "mxfp4" else 8,
            group_size=32,
            scale_dtype="torch.uint8",
        )
    return {
        "format": FORMAT_NAMES[scheme.kind],
        "input_activations": inputs,
        "output_activations": None,
        "targets": ["Linear"],
        "weights": weights,
    }


class CompressedTensors(CheckpointFormat):
    """The compressed-tensors format (see the module docstring)."""

    name = "compressed-tensors"
    schemes = (
        "W8A16",
        "W4A16",
        "W4A16_ASYM",
        "FP8_DYNAMIC",
        "FP8_BLOCK",
        "NVFP4A16",
        "MXFP8A16",
        "MXFP4A16",
    )

    def scheme(self, name: str) -> Scheme:
        return super().scheme(name.split("@", 1)[0])

    def output_specs(self, entry: TensorEntry, scheme: Scheme) -> list[OutputSpec]:
        n, k = entry.shape
        self._check_shape(entry, scheme)
        t = DTYPES[entry.dtype]
        m = entry.module
        pshape = recipes.param_shape(scheme, (n, k))
        if scheme.kind == "int":
            specs = [
                OutputSpec(f"{m}.weight_packed", np.dtype(np.int32), (n, k * scheme.bits // 32)),
                OutputSpec(f"{m}.weight_scale", t, pshape),
                OutputSpec(f"{m}.weight_shape", np.dtype(np.int64), (2,)),
            ]
            if not scheme.symmetric:
                zp_rows = -(-n * scheme.bits // 32)
                specs.append(
                    OutputSpec(f"{m}.weight_zero_point", np.dtype(np.int32), (zp_rows, pshape[1]))
                )
            return specs
        if scheme.kind == "fp8":
            return [
                OutputSpec(f"{m}.weight", E4M3, (n, k)),
                OutputSpec(f"{m}.weight_scale", t, pshape),
            ]
        if scheme.kind == "nvfp4":
            return [
                OutputSpec(f"{m}.weight_packed", np.dtype(np.uint8), (n, k // 2)),
                OutputSpec(f"{m}.weight_scale", E4M3, pshape),
                OutputSpec(f"{m}.weight_global_scale", np.dtype(np.float32), (1,)),
            ]
        data = (
            OutputSpec(f"{m}.weight_packed", np.dtype(np.uint8), (n, k // 2))
            if scheme.kind == "mxfp4"
            else OutputSpec(f"{m}.weight", E4M3, (n, k))
        )
        return [data, OutputSpec(f"{m}.weight_scale", np.dtype(np.uint8), pshape)]

    @staticmethod
    def _check_shape(entry: TensorEntry, scheme: Scheme) -> None:
        n, k = entry.shape
        group = scheme.group_size
        if group is not None and k % group:
            raise CheckpointError(
                f"tensor {entry.name}: {k} input columns are not a multiple of {scheme.name}'s "
                f"group size {group} (ignore it with --ignore or choose --group-size)"
            )
        if scheme.bits == 4 and scheme.kind == "int" and k % 8:
            raise CheckpointError(f"tensor {entry.name}: int4 packing needs K % 8 == 0, K = {k}")
        if scheme.bits == 4 and not scheme.symmetric and n % 8:
            raise CheckpointError(
                f"tensor {entry.name}: zero-point packing needs N % 8 == 0, N = {n}"
            )

    def quantize(
        self,
        entry: TensorEntry,
        weight: np.ndarray,
        scheme: Scheme,
        group_amax: float | None,
    ) -> dict[str, np.ndarray]:
        n, k = entry.shape
        m = entry.module
        kernel = recipes.kernel(scheme, weight.dtype.name, (n, k))
        if scheme.kind == "nvfp4":
            if group_amax is None:
                group_amax = weight_amax(weight)
            data, scale, gscale = kernel(weight, np.array([group_amax], np.float32))
            return {
                f"{m}.weight_packed": data.reshape(n, k // 2),
                f"{m}.weight_scale": scale,
                f"{m}.weight_global_scale": gscale,
            }
        results = kernel(weight)
        if scheme.kind == "int":
            out = {
                f"{m}.weight_packed": results[0].reshape(-1).view(np.int32).reshape(n, -1),
                f"{m}.weight_scale": results[1],
                f"{m}.weight_shape": np.array([n, k], np.int64),
            }
            if not scheme.symmetric:
                out[f"{m}.weight_zero_point"] = pack_rows(results[2], scheme.bits)
            return out
        if scheme.kind == "mxfp4":
            return {
                f"{m}.weight_packed": results[0].reshape(n, k // 2),
                f"{m}.weight_scale": results[1],
            }
        return {f"{m}.weight": results[0], f"{m}.weight_scale": results[1]}

    def dequantize(
        self, module: str, tensors: Mapping[str, np.ndarray], scheme: Scheme
    ) -> np.ndarray:
        from qopt.checkpoint import decode

        return decode.dequantize(scheme, tensors)

    def write_config(self, plan: Plan, input_config: dict | None, out_dir: Path) -> None:
        groups = {
            name: config_group(plan.scheme(name)) for name in sorted(s.name for s in plan.schemes)
        }
        formats = {g["format"] for g in groups.values()}
        qconfig = {
            "version": CT_VERSION,
            "quant_method": "compressed-tensors",
            "transform_config": {},
            "config_groups": groups,
            "format": formats.pop() if len(formats) == 1 else "mixed-precision",
            "global_compression_ratio": None,
            "ignore": [f"re:{p}" for p in plan.ignore],
            "kv_cache_scheme": None,
            "quantization_status": "compressed",
        }
        config = dict(input_config or {})
        config["quantization_config"] = qconfig
        (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))

    def read_config(self, out_dir: Path) -> object:
        path = out_dir / "config.json"
        try:
            qconfig = json.loads(path.read_text())["quantization_config"]
            groups = qconfig["config_groups"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(
                f"{path}: no compressed-tensors quantization_config ({e})"
            ) from None
        if qconfig.get("quant_method") != "compressed-tensors":
            raise CheckpointError(f"{path}: quant_method is not compressed-tensors")
        return groups

    def scheme_of(self, config: object, module: str, local_names: Sequence[str]) -> Scheme | None:
        names = set(local_names)
        if "weight_scale" not in names:
            return None
        candidates = []
        for group in config.values():
            for name in self.schemes:
                scheme = self.scheme(name)
                if config_group(scheme)["weights"]["num_bits"] != group["weights"]["num_bits"]:
                    continue
                if scheme.kind == "int" and group["weights"].get("group_size") != scheme.group_size:
                    scheme = dataclasses.replace(scheme, group_size=group["weights"]["group_size"])
                if config_group(scheme) == group:
                    candidates.append(scheme)
        for scheme in candidates:
            expected = {
                s.name.rsplit(".", 1)[1]
                for s in self.output_specs(
                    TensorEntry(module + ".weight", "F32", (8, 8 * 128)), scheme
                )
            }
            if expected == names:
                return scheme
        raise CheckpointError(
            f"module {module}: tensors {sorted(names)} match no config group of config.json"
        )


def weight_amax(weight: np.ndarray) -> float:
    """The largest |x| of a weight, through qopt's amax recipe."""
    return float(recipes.amax_kernel(weight.dtype.name, weight.shape)(weight)[0, 0])


def pack_rows(values: np.ndarray, bits: int) -> np.ndarray:
    """Small integers (``N x G``) packed along the rows into int32 words (``N*bits/32 x
    G``), codes ``v + 2^(bits-1)`` with the first row in the low bits, as
    compressed-tensors' ``pack_to_int32(..., packed_dim=0)``."""
    per_word = 32 // bits
    codes = (values.astype(np.int64) + (1 << (bits - 1))).T  # G x N
    rows = -(-codes.shape[1] // per_word) * per_word
    codes = np.pad(codes, ((0, 0), (0, rows - codes.shape[1]))).reshape(
        codes.shape[0], -1, per_word
    )
    words = np.zeros(codes.shape[:2], np.uint64)
    for i in range(per_word):
        words |= codes[:, :, i].astype(np.uint64) << np.uint64(bits * i)
    return np.ascontiguousarray(words.astype(np.uint32).view(np.int32).T)
