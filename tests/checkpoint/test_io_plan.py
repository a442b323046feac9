"""safetensors reading / writing (qopt.checkpoint.io) and planning (qopt.checkpoint.plan):
headers checked against the file, BF16 / F8 through ml_dtypes, the same bytes as the
safetensors library, and corrupt checkpoints named by file and tensor."""

from __future__ import annotations

import json
import struct

import ml_dtypes
import numpy as np
import pytest

from qopt.checkpoint.io import (
    CheckpointError,
    OutputSpec,
    SafetensorsReader,
    SafetensorsWriter,
    read_header,
)
from qopt.checkpoint.plan import make_plan
from qopt.checkpoint.schemes import SCHEMES, scheme_named

from .synthetic import write_checkpoint

ARRAYS = {
    "a.f32": np.arange(12, dtype=np.float32).reshape(3, 4),
    "b.bf16": np.linspace(-2, 2, 10).astype(ml_dtypes.bfloat16),
    "c.e4m3": np.linspace(-448, 448, 7).astype(ml_dtypes.float8_e4m3fn),
    "d.i32": np.array([1, -2, 3], np.int32),
    "e.u8": np.array([[1, 2], [3, 4]], np.uint8),
    "f.empty": np.zeros((0, 3), np.float16),
    "g.i64": np.array([5, 7], np.int64),
}


def _write(path, arrays, metadata=None):
    specs = [OutputSpec(n, a.dtype, a.shape) for n, a in arrays.items()]
    with SafetensorsWriter(path, specs, metadata) as w:
        for n, a in reversed(arrays.items()):
            w.write(n, a)


def test_round_trip_every_dtype(tmp_path):
    _write(tmp_path / "x.safetensors", ARRAYS, {"format": "pt"})
    with SafetensorsReader(tmp_path / "x.safetensors") as r:
        assert r.metadata == {"format": "pt"}
        for name, a in ARRAYS.items():
            got = r[name]
            assert got.dtype == a.dtype and got.shape == a.shape
            assert got.tobytes() == a.tobytes()


def test_same_file_as_the_safetensors_library(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    arrays = {k: v for k, v in ARRAYS.items() if k not in ("e.u8", "f.empty")}
    tensors = {
        n: torch.from_numpy(a.view(np.uint8).copy()).view(getattr(torch, str_)).reshape(a.shape)
        for (n, a), str_ in zip(
            arrays.items(),
            ["float32", "bfloat16", "float8_e4m3fn", "int32", "int64"],
        )
    }
    st.save_file(tensors, tmp_path / "lib.safetensors", metadata={"format": "pt"})
    _write(tmp_path / "ours.safetensors", arrays, {"format": "pt"})
    assert (tmp_path / "ours.safetensors").read_bytes() == (
        tmp_path / "lib.safetensors"
    ).read_bytes()
    st.save_file(tensors, tmp_path / "lib2.safetensors")
    _write(tmp_path / "ours2.safetensors", arrays)
    assert (tmp_path / "ours2.safetensors").read_bytes() == (
        tmp_path / "lib2.safetensors"
    ).read_bytes()


def test_truncated_file_names_file_and_tensor(tmp_path):
    path = tmp_path / "x.safetensors"
    _write(path, ARRAYS)
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    with pytest.raises(CheckpointError, match=r"x\.safetensors: tensor .*truncated"):
        read_header(path)
    path.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="x.safetensors: not a safetensors file"):
        read_header(path)
    path.write_bytes(struct.pack("<Q", 4) + b"{no}")
    with pytest.raises(CheckpointError, match="header is not valid JSON"):
        read_header(path)


def test_bad_header_entries(tmp_path):
    path = tmp_path / "x.safetensors"
    for entry, message in [
        ({"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}, "unsupported dtype 'Q7'"),
        (
            {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]},
            r"data_offsets \[0, 4\] do not hold a F32",
        ),
        ({"dtype": "F32"}, "malformed header entry"),
    ]:
        header = json.dumps({"t": entry}).encode()
        path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
        with pytest.raises(CheckpointError, match=f"tensor t: {message}"):
            read_header(path)


def test_writer_rejects_wrong_dtype_shape_and_missing_tensors(tmp_path):
    spec = [OutputSpec("t", np.dtype(np.float32), (2,))]
    writer = SafetensorsWriter(tmp_path / "x.safetensors", spec)
    with pytest.raises(CheckpointError, match="tensor t: got float16"), writer as w:
        w.write("t", np.zeros(2, np.float16))
    assert not (tmp_path / "x.safetensors").exists()
    w = SafetensorsWriter(tmp_path / "y.safetensors", spec)
    with pytest.raises(CheckpointError, match="never written"):
        w.close()


def _plan(path, scheme="W8A16", **kw):
    s = scheme_named(scheme)
    return make_plan(
        path, format="compressed-tensors", schemes=[s], scheme_for=lambda e: s.name, **kw
    )


def test_plan_of_a_sharded_checkpoint(tmp_path):
    write_checkpoint(tmp_path / "m")
    plan = _plan(tmp_path / "m", "NVFP4A16")
    assert [s.input for s in plan.shards] == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]
    quantized = {t.name for s in plan.shards for t in s.quantized}
    assert "model.layers.0.mlp.down_proj.weight" in quantized
    assert not any(("norm" in n or "embed" in n or "lm_head" in n) for n in quantized)
    assert len(quantized) == 14
    groups = {g.key: g.members for g in plan.groups}
    assert groups["model.layers.0.self_attn.q_proj+k_proj+v_proj"] == tuple(
        f"model.layers.0.self_attn.{p}_proj.weight" for p in "kqv"
    )
    assert groups["model.layers.1.mlp.gate_proj+up_proj"] == (
        "model.layers.1.mlp.gate_proj.weight",
        "model.layers.1.mlp.up_proj.weight",
    )
    assert plan.files == ("config.json", "generation_config.json")
    assert plan.schemes == (SCHEMES["NVFP4A16"],)
    # no global scale: no groups
    assert _plan(tmp_path / "m").groups == ()


def test_plan_single_file_and_ignore(tmp_path):
    write_checkpoint(tmp_path / "m", shards=1)
    plan = _plan(tmp_path / "m", ignore=[r".*mlp.*", r".*lm_head$", r".*embed_tokens$"])
    assert not plan.indexed
    quantized = sorted(t.name for s in plan.shards for t in s.quantized)
    assert len(quantized) == 8 and all("self_attn" in n for n in quantized)
    with pytest.raises(CheckpointError, match="not a regular expression"):
        _plan(tmp_path / "m", ignore=["("])


def test_plan_rejects_inconsistent_index(tmp_path):
    m = write_checkpoint(tmp_path / "m")
    index_path = m / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    shard = index["weight_map"]["model.norm.weight"]
    index["weight_map"]["model.extra.weight"] = shard
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=f"{shard}: tensor model.extra.weight is named in"):
        _plan(m)
    del index["weight_map"]["model.extra.weight"]
    del index["weight_map"]["model.norm.weight"]
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="tensor model.norm.weight is not in .*missing index"):
        _plan(m)


def test_plan_rejects_a_weight_of_the_wrong_dtype(tmp_path):
    from .synthetic import llama_tensors

    tensors = llama_tensors()
    m = write_checkpoint(tmp_path / "m", shards=1, tensors=tensors)
    # rewrite one Linear weight as int32
    with SafetensorsReader(m / "model.safetensors") as r:
        arrays = {n: np.array(r[n]) for n in r.tensors}
    arrays["model.layers.1.mlp.up_proj.weight"] = np.zeros((512, 256), np.int32)
    _write(m / "model.safetensors", arrays)
    with pytest.raises(
        CheckpointError,
        match="model.safetensors: tensor model.layers.1.mlp.up_proj.weight: dtype I32",
    ):
        _plan(m)
