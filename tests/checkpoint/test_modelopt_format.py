"""``--format modelopt`` (qopt.checkpoint.formats.modelopt) on synthetic Llama checkpoints:
tensor names / dtypes / shapes as ``output_specs`` promises them, the fused group's shared
scales, dequantization, ``hf_quant_config.json`` / ``config.json`` (single and mixed
precision, and, when nvidia-modelopt is installed, equal to what its own config functions
make), and reading the config back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qopt.checkpoint import modelopt_config
from qopt.checkpoint.formats import FORMATS, get_format
from qopt.checkpoint.formats.modelopt import FP8_PER_TENSOR, ModelOpt
from qopt.checkpoint.io import CheckpointError
from qopt.checkpoint.plan import TensorEntry, make_plan
from qopt.checkpoint.schemes import scheme_named
from tests.checkpoint.synthetic import llama_tensors, write_checkpoint

FMT = ModelOpt()
SCHEMES = ["W8A16", "W4A16", "FP8_DYNAMIC", "NVFP4A16", "FP8_PER_TENSOR"]


def _scheme(name):
    return FP8_PER_TENSOR if name == "FP8_PER_TENSOR" else scheme_named(name)


def test_registered():
    assert FORMATS["modelopt"] == "qopt.checkpoint.formats.modelopt:ModelOpt"
    assert isinstance(get_format("modelopt"), ModelOpt)
    assert FMT.scheme("FP8_PER_TENSOR") is FP8_PER_TENSOR
    with pytest.raises(CheckpointError, match="does not write scheme MXFP4A16"):
        FMT.scheme("MXFP4A16")


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_outputs_match_specs_and_dequantize(name, dtype):
    import ml_dtypes

    scheme = _scheme(name)
    w = (
        np.random.default_rng(0)
        .standard_normal((64, 256))
        .astype(np.float32 if dtype == "float32" else ml_dtypes.bfloat16)
    )
    entry = TensorEntry("model.layers.0.mlp.down_proj.weight", dtype.upper(), w.shape, name)
    specs = FMT.output_specs(entry, scheme)
    out = FMT.quantize(entry, w, scheme, None)
    assert list(out) == [s.name for s in specs]
    for spec in specs:
        assert out[spec.name].dtype == spec.dtype, spec.name
        assert out[spec.name].shape == spec.shape, spec.name
    local = {k.rsplit(".", 1)[1]: v for k, v in out.items()}
    back = FMT.dequantize(entry.module, local, scheme)
    ref = w.astype(np.float32)
    err = np.sqrt(np.mean((back - ref) ** 2)) / np.sqrt(np.mean(ref**2))
    assert back.shape == w.shape and err < {4: 0.2, 8: 0.08}[scheme.bits]


def test_shared_amax_gives_one_scale_per_group():
    assert FMT.shares_global_scale(scheme_named("NVFP4A16"))
    assert FMT.shares_global_scale(FP8_PER_TENSOR)
    assert not FMT.shares_global_scale(scheme_named("FP8_DYNAMIC"))
    w = np.random.default_rng(1).standard_normal((32, 64)).astype(np.float32)
    entry = TensorEntry("m.q_proj.weight", "F32", w.shape, "NVFP4A16", "g")
    out = FMT.quantize(entry, w, scheme_named("NVFP4A16"), 10.0)
    assert out["m.q_proj.weight_scale_2"] == np.float32(10.0) / np.float32(2688)


@pytest.mark.parametrize(
    ("name", "shape", "match"),
    [
        ("W4A16", (3, 128), "even N"),
        ("W4A16", (4, 100), "multiple"),
        ("NVFP4A16", (4, 24), "K % 16"),
        ("W4A16_ASYM", (4, 128), "no zero points"),
        ("FP8_BLOCK", (4, 128), "does not write scheme FP8_BLOCK"),
    ],
)
def test_shapes_and_schemes_it_rejects(name, shape, match):
    entry = TensorEntry("m.weight", "F32", shape, name)
    with pytest.raises(CheckpointError, match=match):
        FMT.output_specs(entry, scheme_named(name))


def test_all_zero_weight_is_an_error_naming_the_tensor():
    entry = TensorEntry("m.up_proj.weight", "F32", (4, 32), "NVFP4A16")
    with pytest.raises(CheckpointError, match="tensor m.up_proj.weight: the weight's amax is 0"):
        FMT.quantize(entry, np.zeros((4, 32), np.float32), scheme_named("NVFP4A16"), None)


def _plan(path, scheme_for, schemes):
    return make_plan(
        path,
        format="modelopt",
        schemes=schemes,
        scheme_for=scheme_for,
        share_global_scale=FMT.shares_global_scale,
    )


def test_config_single_scheme(tmp_path):
    src = write_checkpoint(tmp_path / "in", shards=2)
    s = scheme_named("NVFP4A16")
    plan = _plan(src, lambda e: s.name, [s])
    out = tmp_path / "out"
    out.mkdir()
    FMT.write_config(plan, json.loads((src / "config.json").read_text()), out)
    hf = json.loads((out / "hf_quant_config.json").read_text())
    assert hf == {
        "producer": {"name": "modelopt", "version": "0.47.0"},
        "quantization": {
            "quant_algo": "W4A16_NVFP4",
            "kv_cache_quant_algo": None,
            "group_size": 16,
            "exclude_modules": ["lm_head"],
        },
    }
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert config["quantization_config"] == {
        "config_groups": {
            "group_0": {
                "weights": {"dynamic": False, "num_bits": 4, "type": "float", "group_size": 16},
                "targets": ["Linear"],
            }
        },
        "ignore": ["lm_head"],
        "quant_algo": "W4A16_NVFP4",
        "producer": {"name": "modelopt", "version": "0.47.0"},
        "quant_method": "modelopt",
    }
    q = FMT.read_config(out)
    assert FMT.scheme_of(q, "lm_head", ["weight"]) is None
    mod = "model.layers.0.self_attn.q_proj"
    assert FMT.scheme_of(q, mod, ["weight", "weight_scale", "weight_scale_2"]) == s
    with pytest.raises(CheckpointError, match="needs tensors"):
        FMT.scheme_of(q, mod, ["weight", "weight_scale"])


def test_config_mixed_precision(tmp_path):
    src = write_checkpoint(tmp_path / "in", shards=1)
    int8, int4 = scheme_named("W8A16"), scheme_named("W4A16")

    def scheme_for(entry):
        return int8.name if "down_proj" in entry.name else int4.name

    plan = _plan(src, scheme_for, [int8, int4])
    out = tmp_path / "out"
    out.mkdir()
    FMT.write_config(plan, None, out)
    q = json.loads((out / "hf_quant_config.json").read_text())["quantization"]
    assert q["quant_algo"] == "MIXED_PRECISION" and "exclude_modules" not in q
    layers = q["quantized_layers"]
    assert layers["model.layers.1.mlp.down_proj"] == {"quant_algo": "W8A16"}
    assert layers["model.layers.0.self_attn.q_proj"] == {
        "quant_algo": "W4A16_AWQ",
        "group_size": 128,
        "has_zero_point": False,
        "pre_quant_scale": True,
    }
    assert "lm_head" not in layers
    qc = json.loads((out / "config.json").read_text())["quantization_config"]
    groups = {g["weights"]["num_bits"]: g["targets"] for g in qc["config_groups"].values()}
    assert groups[8] == ["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"]
    assert len(groups[4]) == 12 and qc["quantized_layers"] == layers
    config = FMT.read_config(out)
    assert FMT.scheme_of(config, "model.layers.1.mlp.down_proj", ["weight", "weight_scale"]) == int8
    assert FMT.scheme_of(config, "lm_head", ["weight"]) is None


def test_read_config_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not a ModelOpt hf_quant_config"):
        FMT.read_config(tmp_path)
    (tmp_path / "hf_quant_config.json").write_text(
        '{"producer": {"name": "x"}, "quantization": {"quant_algo": "FP8"}}'
    )
    with pytest.raises(CheckpointError, match="producer is not modelopt"):
        FMT.read_config(tmp_path)


def test_exclude_summary_examples():
    summary = modelopt_config.summarize_exclude_modules(
        ["lm_head", "model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"],
        ["model.layers.0.mlp.up_proj", "model.layers.1.mlp.up_proj"],
    )
    assert summary == {"lm_head", "model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"}
    assert modelopt_config.summarize_exclude_modules(["a.b.c", "a.b.d"], ["x.y"]) == {"a*"}


def test_configs_match_modelopt_functions():
    pytest.importorskip("modelopt.torch.export")
    from modelopt.torch.export.convert_hf_config import convert_hf_quant_config_format
    from modelopt.torch.export.quant_utils import (
        _prefix_wildcard_summarize_exclude_modules,
        process_layer_quant_config,
    )

    names = sorted(llama_tensors())
    linear = [n.rsplit(".", 1)[0] for n in names if n.endswith("proj.weight")] + ["lm_head"]
    for mix in ({"int4_awq"}, {"nvfp4"}, {"int8_wo", "w4a16_nvfp4"}, {"fp8", "fp8_pc_pt"}):
        mix = sorted(mix)
        ours_layers, theirs = {}, {}
        for i, module in enumerate(linear):
            fmt = None if module == "lm_head" else mix[i % len(mix)]
            fmt = "w4a16_nvfp4" if fmt == "nvfp4" else fmt
            theirs[module + ".quantization"] = fmt
            block = {"int4_awq": 128, "w4a16_nvfp4": 16}.get(fmt, 0)
            theirs[module + ".awq_block_size"] = block
            algo = {
                "int4_awq": "W4A16_AWQ", "w4a16_nvfp4": "W4A16_NVFP4", "int8_wo": "W8A16",
                "fp8": "FP8", "fp8_pc_pt": "FP8_PER_CHANNEL_PER_TOKEN",
            }.get(fmt)  # fmt: skip
            ours_layers[module] = (
                None if algo is None else modelopt_config.layer_config(algo, block)
            )
        want = {"quant_algo": None, "kv_cache_quant_algo": None}
        want.update(process_layer_quant_config(theirs))
        ours = modelopt_config.hf_quant_config(ours_layers)
        assert ours["quantization"] == want
        assert json.dumps(ours["quantization"]) == json.dumps(want)  # key order too
        full = {"producer": ours["producer"], "quantization": want}
        assert modelopt_config.quantization_config(ours) == convert_hf_quant_config_format(full)
    for unq, q in [(["a.b.c", "a.b.d", "lm_head"], ["a.x"]), (["m.l.0.o", "m.l.1.o"], ["m.l.0.p"])]:
        assert modelopt_config.summarize_exclude_modules(unq, q) == (
            _prefix_wildcard_summarize_exclude_modules(unq, q)
        )


def _run(*args):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "qopt", *map(str, args)], capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("scheme", ["NVFP4", "W4A16", "W8A16", "FP8_DYNAMIC"])
def test_cli_quantize_and_verify(tmp_path, scheme):
    src = write_checkpoint(tmp_path / "in", dtype="bfloat16", shards=2)
    out = tmp_path / "out"
    proc = _run(
        "quantize-checkpoint", src, "-o", out, "--scheme", scheme, "--format", "modelopt", "-q"
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "hf_quant_config.json").exists()
    proc = _run("verify-checkpoint", out, "--format", "modelopt", "--against", src, "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_bits_file_mixed_precision(tmp_path):
    src = write_checkpoint(tmp_path / "in", shards=2)
    bits = tmp_path / "precision.json"
    bits.write_text(
        json.dumps(
            {
                "model.layers.0.mlp.down_proj.weight": 8,
                "model.layers.1.mlp.down_proj": {"precision": 8, "block_size": -1},
                "model.layers.0.self_attn.q_proj": 16,
                "model.layers.1.self_attn.o_proj": "FP8_PER_TENSOR",
            }
        )
    )
    out = tmp_path / "out"
    args = ["quantize-checkpoint", src, "-o", out, "--scheme", "W4A16", "--format", "modelopt"]
    proc = _run(*args, "-q", "--bits-file", bits)
    assert proc.returncode == 0, proc.stderr
    q = json.loads((out / "hf_quant_config.json").read_text())["quantization"]
    layers = q["quantized_layers"]
    assert q["quant_algo"] == "MIXED_PRECISION"
    assert layers["model.layers.0.mlp.down_proj"] == {"quant_algo": "W8A16"}
    assert layers["model.layers.1.self_attn.o_proj"] == {"quant_algo": "FP8"}
    assert layers["model.layers.0.mlp.up_proj"]["quant_algo"] == "W4A16_AWQ"
    assert "model.layers.0.self_attn.q_proj" not in layers
    proc = _run("verify-checkpoint", out, "--format", "modelopt", "--against", src, "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"model.layers.0.mlp.nope": 8}', "'model.layers.0.mlp.nope' is not a Linear weight"),
        ('{"lm_head": 8}', "'lm_head' is not a Linear weight"),
        ('{"model.layers.0.mlp.up_proj": 3}', "bits must be 4, 8 or 16"),
        ('{"model.layers.0.mlp.up_proj": "MXFP4"}', "does not write scheme MXFP4"),
        ('{"model.layers.0.mlp.up_proj": {"precision": 8, "block_size": 64}}', "per channel"),
        ('{"a": {"precision": 4, "block_size": 64}}', "W4A16 with two group sizes"),
        ("[1, 2]", "expected a JSON object"),
        ("{", "cannot read a JSON object"),
    ],
)
def test_cli_bad_bits_files(tmp_path, content, message):
    src = write_checkpoint(tmp_path / "in", shards=1)
    bits = tmp_path / "p.json"
    bits.write_text(content)
    out = tmp_path / "out"
    proc = _run("quantize-checkpoint", src, "-o", out, "--scheme", "W4A16", "--format", "modelopt",
                "-q", "--bits-file", bits)  # fmt: skip
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
