"""Byte-for-byte against llm-compressor's ``model_free_ptq`` (the compressed-tensors
producer) on the same synthetic checkpoint, every scheme it supports, f32 / f16 / bf16
weights; and the output loaded by transformers + compressed-tensors for a forward pass.
Needs the ``checkpoint-oracles`` extra; skipped without it."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from qopt.checkpoint.convert import convert
from qopt.checkpoint.io import SafetensorsReader
from qopt.checkpoint.plan import make_plan, shard_files
from qopt.checkpoint.schemes import SCHEMES, scheme_named

from .synthetic import write_checkpoint

pytest.importorskip("llmcompressor")
pytest.importorskip("compressed_tensors")
torch = pytest.importorskip("torch")

SMALL = {"hidden": 256, "intermediate": 512, "layers": 2}
IGNORE = [".*lm_head", ".*embed_tokens"]


def tensors_of(directory):
    _, shards = shard_files(directory)
    out = {}
    for shard in shards:
        with SafetensorsReader(directory / shard) as r:
            for name in r.tensors:
                a = r[name]
                out[name] = (a.dtype, a.shape, a.tobytes())
    return out


def run_both(tmp_path, dtype, scheme, edges=False, tensors=None):
    from llmcompressor import model_free_ptq

    logging.getLogger().setLevel(logging.WARNING)
    source = write_checkpoint(
        tmp_path / f"src_{dtype}", dtype, edges=edges, tensors=tensors, **SMALL
    )
    theirs = tmp_path / f"ct_{dtype}_{scheme}"
    model_free_ptq(
        str(source), str(theirs), scheme=scheme, ignore=[f"re:{p}" for p in IGNORE], device="cpu"
    )
    s = scheme_named(scheme)
    plan = make_plan(
        source, format="compressed-tensors", schemes=[s], scheme_for=lambda e: s.name, ignore=IGNORE
    )
    ours = tmp_path / f"qopt_{dtype}_{scheme}"
    convert(plan, ours, stats=False)
    return source, ours, theirs


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("edges", [False, True], ids=["normal", "edges"])
def test_same_bytes_as_model_free_ptq(tmp_path, dtype, scheme, edges):
    _, ours, theirs = run_both(tmp_path, dtype, scheme, edges)
    a, b = tensors_of(ours), tensors_of(theirs)
    assert sorted(a) == sorted(b)
    different = [n for n in a if a[n] != b[n]]
    assert not different, f"{len(different)} of {len(a)} tensors differ: {different[:5]}"
    assert (ours / "config.json").read_bytes() == (theirs / "config.json").read_bytes()


@pytest.mark.parametrize("scheme", ["W4A16", "NVFP4A16", "FP8_BLOCK"])
def test_expert_stacks_same_bytes_as_model_free_ptq(tmp_path, scheme):
    from .synthetic import llama_tensors, with_experts

    tensors = with_experts(llama_tensors(**SMALL))
    _, ours, theirs = run_both(tmp_path, "bfloat16", scheme, tensors=tensors)
    a, b = tensors_of(ours), tensors_of(theirs)
    assert sorted(a) == sorted(b)
    assert "model.layers.0.mlp.experts.2.up_proj.weight_scale" in a
    assert [n for n in a if a[n] != b[n]] == []


def test_loads_in_transformers_and_runs(tmp_path):
    transformers = pytest.importorskip("transformers")
    source, ours, _ = run_both(tmp_path, "bfloat16", "W4A16")
    config = transformers.CompressedTensorsConfig(run_compressed=False)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(ours), quantization_config=config, torch_dtype=torch.bfloat16
    )
    reference = transformers.AutoModelForCausalLM.from_pretrained(
        str(source), torch_dtype=torch.bfloat16
    )
    ids = torch.arange(16).reshape(1, 16)
    with torch.no_grad():
        got = model(ids).logits.float().numpy()
        want = reference(ids).logits.float().numpy()
    assert np.all(np.isfinite(got))
    # the decompressed weights are the quantized ones: close to, not equal to, the original
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.95
    json.loads((ours / "config.json").read_text())
