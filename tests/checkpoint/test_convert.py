"""quantize-checkpoint / verify-checkpoint end to end on synthetic checkpoints: every
scheme, the CLI, corrupt inputs (a clear error, no output directory), --resume, and the
Ray / Dask executors (skipped without them)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from qopt.checkpoint.cli import quantize_main, verify_main
from qopt.checkpoint.convert import convert
from qopt.checkpoint.io import SafetensorsReader, staging_directory
from qopt.checkpoint.plan import make_plan
from qopt.checkpoint.schemes import SCHEMES, scheme_named

from .synthetic import write_checkpoint

SMALL = {"hidden": 128, "intermediate": 256, "layers": 1}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("m") / "bf16", "bfloat16", **SMALL)


def _plan(path, scheme):
    s = scheme_named(scheme)
    return make_plan(path, format="compressed-tensors", schemes=[s], scheme_for=lambda e: s.name)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_scheme_quantizes_and_verifies(model, tmp_path, scheme, capsys):
    out = tmp_path / "out"
    assert (
        quantize_main(
            [
                str(model),
                "-o",
                str(out),
                "--scheme",
                scheme,
                "-q",
                "-j",
                "1",
                "--report",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    qconfig = config["quantization_config"]
    assert list(qconfig["config_groups"]) == [scheme]
    assert qconfig["ignore"] == [
        r"re:.*embed_tokens$",
        r"re:.*lm_head$",
        r"re:.*norm$",
        r"re:.*\.bias$",
    ]
    assert (out / "generation_config.json").read_text() == '{"do_sample": false}'
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["tensors"]) == 7
    assert min(r["sqnr_db"] for r in report["tensors"]) > (10 if "4" in scheme else 20)
    assert verify_main([str(out), "--against", str(model), "-q"]) == 0
    # everything not quantized is copied byte for byte
    index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    with SafetensorsReader(out / index["model.norm.weight"]) as r:
        assert np.all(np.asarray(r["model.norm.weight"], np.float32) == 1)


def test_verify_flags_a_wrong_tensor(model, tmp_path, capsys):
    out = tmp_path / "out"
    assert quantize_main([str(model), "-o", str(out), "--scheme", "W4A16", "-q", "-j", "1"]) == 0
    index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    # drop a tensor from the index and its file: verify reports it
    name = "model.layers.0.mlp.up_proj.weight_shape"
    index.pop(name)
    (out / "model.safetensors.index.json").write_text(json.dumps({"weight_map": index}))
    assert verify_main([str(out), "-q"]) == 1
    assert "tensors differ from the index" in capsys.readouterr().err


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", r"tensor model.norm.weight: data ends .*\(truncated\)"),
        (
            "index_extra",
            r"tensor model.extra.weight is named in model.safetensors.index.json but absent",
        ),
        ("index_missing", r"tensor model.norm.weight is not in model.safetensors.index.json"),
    ],
)
def test_corrupt_input_names_file_and_tensor_and_leaves_no_output(
    model, tmp_path, capsys, damage, message
):
    bad = tmp_path / "bad"
    shutil.copytree(model, bad)
    index_path = bad / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    shard = bad / index["weight_map"]["model.norm.weight"]
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:-100])
    elif damage == "index_extra":
        index["weight_map"]["model.extra.weight"] = shard.name
        index_path.write_text(json.dumps(index))
    else:
        del index["weight_map"]["model.norm.weight"]
        index_path.write_text(json.dumps(index))
    out = tmp_path / "out"
    assert quantize_main([str(bad), "-o", str(out), "--scheme", "W8A16", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("qopt quantize-checkpoint: error: ")
    assert shard.name in err or "model.safetensors.index.json" in err
    import re

    assert re.search(message, err), err
    assert not out.exists() and not staging_directory(out).exists()


def test_bad_options_are_errors(model, tmp_path, capsys):
    out = tmp_path / "o"
    assert quantize_main([str(model), "-o", str(out), "--scheme", "W9"]) == 1
    assert "unknown scheme 'W9'" in capsys.readouterr().err
    assert (
        quantize_main([str(model), "-o", str(out), "--scheme", "FP8_BLOCK", "--group-size", "64"])
        == 1
    )
    assert "--group-size applies to per-group schemes" in capsys.readouterr().err
    assert quantize_main([str(model), "-o", str(out), "--scheme", "W4A16", "--format", "onnx"]) == 1
    assert "unknown format 'onnx'" in capsys.readouterr().err
    assert quantize_main([str(model), "-o", str(model), "--scheme", "W4A16"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_resume_keeps_finished_shards(model, tmp_path):
    plan = _plan(model, "NVFP4A16")
    first = tmp_path / "first"
    convert(plan, first, stats=False)
    # a stopped run: one finished shard in the staging directory, the other cut short
    out = tmp_path / "out"
    staging = staging_directory(out)
    staging.mkdir()
    shards = [s.output for s in plan.shards]
    shutil.copy(first / shards[0], staging / shards[0])
    (staging / shards[1]).write_bytes((first / shards[1]).read_bytes()[:1000])
    summary = convert(plan, out, resume=True, stats=False)
    assert summary.resumed == 1
    for name in shards:
        assert (out / name).read_bytes() == (first / name).read_bytes()


@pytest.mark.parametrize("executor", ["ray", "dask"])
def test_distributed_executors(model, tmp_path, executor):
    pytest.importorskip("ray" if executor == "ray" else "distributed")
    plan = _plan(model, "W4A16")
    convert(plan, tmp_path / "local", stats=False)
    convert(plan, tmp_path / "remote", executor=executor, workers=2, stats=False)
    for shard in plan.shards:
        assert (tmp_path / "remote" / shard.output).read_bytes() == (
            tmp_path / "local" / shard.output
        ).read_bytes()


def test_expert_stacks_are_split_per_expert(tmp_path):
    from .synthetic import llama_tensors, with_experts

    tensors = with_experts(llama_tensors(**SMALL))
    src = write_checkpoint(tmp_path / "moe", "bfloat16", tensors=tensors, **SMALL)
    out = tmp_path / "out"
    assert quantize_main([str(src), "-o", str(out), "--scheme", "W4A16", "-q"]) == 0
    index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    prefix = "model.layers.0.mlp.experts."
    assert prefix + "gate_up_proj" not in index
    for e in range(4):
        for part in ("gate_proj", "up_proj", "down_proj"):
            assert f"{prefix}{e}.{part}.weight_packed" in index
    with SafetensorsReader(out / index[prefix + "3.up_proj.weight_shape"]) as r:
        assert list(r[prefix + "3.up_proj.weight_shape"]) == [128, 128]
    assert verify_main([str(out), "--against", str(src), "-q"]) == 0
