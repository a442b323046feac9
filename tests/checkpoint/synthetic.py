"""Small Llama-shaped checkpoints the tests make (no downloads): config.json, two shards
and their index, weights in f32 / f16 / bf16, written with qopt's own safetensors writer."""

from __future__ import annotations

import json
from pathlib import Path

import ml_dtypes
import numpy as np

from qopt.checkpoint.io import OutputSpec, SafetensorsWriter

DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def llama_tensors(
    hidden: int = 256,
    intermediate: int = 512,
    layers: int = 2,
    vocab: int = 128,
    seed: int = 0,
    edges: bool = False,
) -> dict[str, np.ndarray]:
    """Float32 tensors named as transformers' LlamaForCausalLM names them. ``edges``: some
    blocks all zero, some tiny (near the bottom of f16), some with one huge outlier, and
    values on the e2m1 / int grids' rounding ties."""
    rng = np.random.default_rng(seed)
    kv = hidden // 2
    tensors = {
        "model.embed_tokens.weight": rng.standard_normal((vocab, hidden)),
        "model.norm.weight": np.ones(hidden),
        "lm_head.weight": rng.standard_normal((vocab, hidden)),
    }
    shapes = {
        "self_attn.q_proj": (hidden, hidden),
        "self_attn.k_proj": (kv, hidden),
        "self_attn.v_proj": (kv, hidden),
        "self_attn.o_proj": (hidden, hidden),
        "mlp.gate_proj": (intermediate, hidden),
        "mlp.up_proj": (intermediate, hidden),
        "mlp.down_proj": (hidden, intermediate),
    }
    for layer in range(layers):
        prefix = f"model.layers.{layer}."
        for name, shape in shapes.items():
            # a few layers get outliers, so scales differ from block to block
            w = rng.standard_normal(shape) * 0.02
            w[::7, ::13] *= 9.0
            if edges:
                w[0, :128] = 0.0  # an all-zero group / block row
                w[1, :64] = rng.standard_normal(64) * 1e-7  # tiny amax
                w[2, 5] = 40.0  # one outlier owns its groups
                w[3, :32] = np.arange(32) * 0.25 - 4.0  # ties of every grid
                w[4, :16] = [6, 5, 3.5, 2.5, 1.75, 1.25, 0.75, 0.25] * 2
            tensors[prefix + name + ".weight"] = w
        tensors[prefix + "input_layernorm.weight"] = np.ones(hidden)
        tensors[prefix + "post_attention_layernorm.weight"] = np.ones(hidden)
    return {k: v.astype(np.float32) for k, v in tensors.items()}


def llama_config(hidden=256, intermediate=512, layers=2, vocab=128, dtype="float32") -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": hidden // 4,
        "vocab_size": vocab,
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-5,
        "torch_dtype": dtype,
        "tie_word_embeddings": False,
    }


def write_checkpoint(
    directory: Path,
    dtype: str = "float32",
    shards: int = 2,
    tensors: dict[str, np.ndarray] | None = None,
    edges: bool = False,
    **shape,
) -> Path:
    """Writes a checkpoint into ``directory`` (created) and returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = llama_tensors(edges=edges, **shape) if tensors is None else tensors
    tensors = {k: v.astype(DTYPES[dtype]) for k, v in tensors.items()}
    (directory / "config.json").write_text(json.dumps(llama_config(dtype=dtype, **shape)))
    (directory / "generation_config.json").write_text('{"do_sample": false}')
    names = sorted(tensors)
    files = (
        [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
        if shards > 1
        else ["model.safetensors"]
    )
    weight_map = {}
    for i, file in enumerate(files):
        part = names[i::shards]
        specs = [OutputSpec(n, tensors[n].dtype, tensors[n].shape) for n in part]
        with SafetensorsWriter(directory / file, specs, {"format": "pt"}) as writer:
            for n in part:
                writer.write(n, tensors[n])
        weight_map.update(dict.fromkeys(part, file))
    if shards > 1:
        index = {
            "metadata": {"total_size": sum(t.nbytes for t in tensors.values())},
            "weight_map": dict(sorted(weight_map.items())),
        }
        (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return directory


def with_experts(tensors: dict[str, np.ndarray], experts: int = 4, seed: int = 1) -> dict:
    """Adds 3-D MoE expert stacks (``E x 2I x H`` gate_up_proj, ``E x H x I`` down_proj)
    to layer 0, as transformers' fused-experts checkpoints hold them."""
    rng = np.random.default_rng(seed)
    hidden = tensors["model.norm.weight"].shape[0]
    inter = 128
    out = dict(tensors)
    prefix = "model.layers.0.mlp.experts."
    out[prefix + "gate_up_proj"] = (
        rng.standard_normal((experts, 2 * inter, hidden)) * 0.02
    ).astype(np.float32)
    out[prefix + "down_proj"] = (rng.standard_normal((experts, hidden, inter)) * 0.02).astype(
        np.float32
    )
    return out
