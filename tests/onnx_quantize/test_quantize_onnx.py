"""``quantize_onnx`` and ``qopt quantize-onnx`` on synthetic models: the rewritten graph,
that onnxruntime runs it and computes ``x @ dequantize(W)``, mixed precision, and errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from qopt.onnx_quantize.graph import OnnxQuantizeError, find_targets
from qopt.onnx_quantize.quantize import parse_precision, quantize_onnx
from qopt.onnx_quantize.recipes import FP8, INT8, int4
from tests.onnx_quantize import models

F32 = np.float32


def qopt_cmd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qopt", *args], capture_output=True, text=True, timeout=300
    )


def _inits(model):
    return {i.name: i for i in model.graph.initializer}


def _dq_nodes(model):
    return {n.name: n for n in model.graph.node if n.op_type == "DequantizeLinear"}


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


@pytest.mark.parametrize(
    ("recipe", "codes_type", "w1_attrs", "w2_attrs"),
    [
        (int4(128), "INT4", {"axis": 0, "block_size": 128}, {"axis": 1, "block_size": 128}),
        (int4(32), "INT4", {"axis": 0, "block_size": 32}, {"axis": 1, "block_size": 32}),
        (INT8, "INT8", {"axis": 1}, {"axis": 0}),
        (FP8, "FLOAT8E4M3FN", {}, {}),
    ],
)
def test_rewritten_graph(recipe, codes_type, w1_attrs, w2_attrs):
    model = models.mlp(opset=17)
    result = quantize_onnx(model, recipe)
    q = result.model
    onnx.checker.check_model(q, full_check=True)
    inits = _inits(q)
    assert "W1" not in inits and "W2" not in inits and "b" in inits
    suffix = "_f8" if recipe is FP8 else "_i4"
    for name, attrs in [("W1", w1_attrs), ("W2", w2_attrs)]:
        codes = inits[name + suffix]
        assert onnx.TensorProto.DataType.Name(codes.data_type) == codes_type
        assert list(codes.dims) == list(_inits(model)[name].dims)
        node = _dq_nodes(q)[name + "_DequantizeLinear"]
        assert list(node.input) == [name + suffix, name + "_scale"]
        assert _attrs(node) == attrs
    consumers = {n.name: list(n.input) for n in q.graph.node}
    assert consumers["mm1"] == ["x", "W1_DequantizeLinear_Output"]
    assert consumers["gemm"] == ["r", "W2_DequantizeLinear_Output", "b"]
    opset = next(o.version for o in q.opset_import if o.domain == "")
    assert opset == recipe.min_opset and q.ir_version >= 10
    assert [w.target.initializer for w in result.weights] == ["W1", "W2"]
    assert all(w.stats.sqnr_db > 15 for w in result.weights)


def _dequantized_model_outputs(q, x):
    """The quantized model through onnx.reference: DequantizeLinear then the float graph."""
    return ReferenceEvaluator(q).run(None, {"x": x})[0]


@pytest.mark.parametrize("recipe", [int4(128), int4(16), INT8, FP8])
def test_onnxruntime_runs_it_as_reference_does(recipe):
    ort = pytest.importorskip("onnxruntime")
    q = quantize_onnx(models.mlp(), recipe).model
    x = np.random.default_rng(2).standard_normal((5, 256)).astype(F32)
    sess = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x})[0]
    want = _dequantized_model_outputs(q, x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_dequantize_linear_gives_qopt_dequantized_weight():
    """The DQ node of the written model computes exactly what the statistics measured."""
    from qopt.onnx_quantize.evaluate import dequantized_weight

    result = quantize_onnx(models.mlp(), int4(128))
    w1 = next(w for w in result.weights if w.target.initializer == "W1")
    node = _dq_nodes(result.model)["W1_DequantizeLinear"]
    sub = onnx.helper.make_model(
        onnx.helper.make_graph(
            [node],
            "dq",
            [],
            [onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)],
            [i for i in result.model.graph.initializer if i.name in node.input],
        ),
        opset_imports=[onnx.helper.make_opsetid("", 21)],
    )
    want = ReferenceEvaluator(sub).run(None, {})[0]
    got = dequantized_weight(w1.weight, "i4", np.dtype(F32))
    assert np.array_equal(got.view(np.uint32), want.astype(F32).view(np.uint32))


def test_shared_weights_and_candidates_left_alone():
    model = models.shared_and_odd()
    targets, skipped = find_targets(model)
    assert [(t.initializer, t.k_axis) for t in targets] == [("W", 0)]
    assert len(targets[0].readers) == 2
    assert any(s.startswith("W3: rank 3") for s in skipped)
    assert any(s.startswith("Win: also a graph input") for s in skipped)
    q = quantize_onnx(model, int4(16)).model
    readers = [list(n.input) for n in q.graph.node if n.name in ("first", "second", "add_w")]
    assert all("W_DequantizeLinear_Output" in r for r in readers)
    onnx.checker.check_model(q)


def test_exclude_and_precision_mix():
    model = models.mlp()
    r = quantize_onnx(model, int4(128), exclude=["gemm"])
    assert [w.target.initializer for w in r.weights] == ["W1"]
    assert any("excluded Gemm node 'gemm'" in s for s in r.skipped)
    precision = parse_precision({"W1": 8, "W2": {"precision": 4, "block_size": 32}}, "p.json")
    r = quantize_onnx(model, int4(128), precision=precision)
    got = {
        w.target.initializer: (w.recipe.name, w.weight.axis, w.weight.block_size) for w in r.weights
    }
    assert got == {"W1": ("int8", 1, None), "W2": ("int4-g32", 1, 32)}
    types = {i.name: i.data_type for i in r.model.graph.initializer}
    assert types["W1_i4"] == onnx.TensorProto.INT8 and types["W2_i4"] == onnx.TensorProto.INT4


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([4], "JSON object"),
        ({"W1": 3}, "bits must be 4 or 8"),
        ({"W1": True}, "bits must be 4 or 8"),
        ({"W1": {"precision": 4, "block_size": "x"}}, "block_size must be an integer"),
    ],
)
def test_bad_precision_files(data, match):
    with pytest.raises(OnnxQuantizeError, match=match):
        parse_precision(data, "p.json")


def test_precision_naming_a_non_weight_is_an_error():
    with pytest.raises(OnnxQuantizeError, match="'b', which is not a quantized"):
        quantize_onnx(models.mlp(), int4(128), precision={"b": (8, None)})
    with pytest.raises(OnnxQuantizeError, match="precision of 'W1'.*per channel"):
        quantize_onnx(models.mlp(), int4(128), precision={"W1": (8, 64)})


def test_non_finite_weight_names_the_initializer():
    model = models.mlp()
    w1 = numpy_helper.to_array(model.graph.initializer[0]).copy()
    w1[3, 4] = np.nan
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w1, "W1"))
    with pytest.raises(OnnxQuantizeError, match=r"'W1' \(read by MatMul node 'mm1'\) holds 1 NaN"):
        quantize_onnx(model, int4(128))


def test_name_clash_is_an_error():
    model = models.mlp()
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(1, F32), "W1_scale"))
    with pytest.raises(OnnxQuantizeError, match="already has 'W1_scale'"):
        quantize_onnx(model, int4(128))


def test_cli_end_to_end(tmp_path):
    src = models.save(models.mlp(opset=13), tmp_path / "m.onnx")
    bits = tmp_path / "bits.json"
    bits.write_text(json.dumps({"W2": 8}))
    report = tmp_path / "r.json"
    out = tmp_path / "q.onnx"
    args = [src, "-o", str(out), "--scheme", "int4-g128", "--bits-file", str(bits)]
    proc = qopt_cmd("quantize-onnx", *args, "--input-shape", "x=4x256", "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    assert "W1      int4-g128  256x96" in proc.stdout
    onnx.checker.check_model(str(out))
    data = json.loads(report.read_text())
    assert [(w["name"], w["bits"]) for w in data["weights"]] == [("W1", 4), ("W2", 8)]
    if data["outputs"] is not None:  # onnxruntime installed
        assert data["outputs"][0]["name"] == "y" and data["outputs"][0]["sqnr_db"] > 10
        assert "model outputs vs the unquantized model" in proc.stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("none", ["missing.onnx"], "missing.onnx: no such file"),
        ("garbage", ["m.onnx"], "m.onnx: not a valid ONNX model"),
        ("model", ["m.onnx", "--scheme", "int3"], "unknown scheme 'int3'"),
        ("model", ["m.onnx", "--bits-file", "nope.json"], "nope.json: cannot read"),
        ("model", ["m.onnx", "--input-shape", "x=ax3"], "--input-shape 'x=ax3'"),
        ("model", ["m.onnx", "--input-shape", "z=1x256"], "names 'z', not a model input"),
        ("nan", ["m.onnx"], "'W1' (read by MatMul node 'mm1') holds"),
    ],
)
def test_cli_errors(tmp_path, setup, args, message):
    path = tmp_path / "m.onnx"
    if setup == "garbage":
        path.write_bytes(b"\x08\x07garbage that is not a protobuf model \xff\xff")
    elif setup in ("model", "nan"):
        model = models.mlp()
        if setup == "nan":
            w1 = numpy_helper.to_array(model.graph.initializer[0]).copy()
            w1[0, 0] = np.inf
            model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w1, "W1"))
        models.save(model, path)
    full = [str(tmp_path / a) if a.endswith((".onnx", ".json")) else a for a in args]
    if "--scheme" not in full:
        full += ["--scheme", "int4-g128"]
    out = tmp_path / "out" / "q.onnx" if setup == "none" else tmp_path / "q.onnx"
    proc = qopt_cmd("quantize-onnx", *full, "-o", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("qopt quantize-onnx: error: "), proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_cli_output_into_missing_directory(tmp_path):
    src = models.save(models.mlp(), tmp_path / "m.onnx")
    proc = qopt_cmd("quantize-onnx", src, "-o", str(tmp_path / "no" / "q.onnx"), "--scheme", "fp8")
    assert proc.returncode == 1 and "does not exist" in proc.stderr


def test_cli_usage_and_help_listing():
    proc = qopt_cmd("quantize-onnx", "m.onnx")
    assert proc.returncode == 2 and "-o/--output" in proc.stderr
    proc = qopt_cmd("--help")
    assert "quantize-onnx" in proc.stdout
