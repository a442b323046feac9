"""The ONNX subcommands from the command line: outputs, exit codes, and malformed models
(missing initializer, wrong rank of scale, unknown opset, non-constant scale, not an
ONNX file) giving one ``error:`` line naming the file and node, never a traceback."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")

import onnx
from onnx import TensorProto as T
from onnx import helper

from tests.onnx.qdq_models import CASES, SHAPE, dq, f32, make, q, typed


def qopt_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qopt", *args], capture_output=True, text=True, timeout=600
    )


def qopt(*args: str) -> subprocess.CompletedProcess:
    """``qopt ARGS`` in this process (the driver's main), as a finished process."""
    from qopt.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def save(tmp_path, model: onnx.ModelProto, name: str = "m.onnx") -> str:
    path = str(tmp_path / name)
    onnx.save(model, path)
    return path


def assert_clean_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_import_prints_quant_ops_and_opaque_nodes(tmp_path):
    model = make(
        [
            q("x", "s", "z", "q1", "q1"),
            dq("q1", "s", "z", "d1", "dq1"),
            helper.make_node("Relu", ["d1"], ["y"], name="relu"),
        ],
        [f32("s", 0.05), typed("z", 3, np.int8)],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.FLOAT, SHAPE)],
    )
    out = tmp_path / "m.mlir"
    result = qopt("import-onnx", save(tmp_path, model), "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "quant.quantize %0 scale(5.000000e-02) zero_point(3)" in text
    assert "quant.dequantize" in text and '"onnx.node"' in text and 'op_type = "Relu"' in text
    # the printed IR reads back and fold-quant / the verifier accept it
    again = qopt(str(out), "--fold-quant")
    assert again.returncode == 0, again.stderr


def test_simplify_writes_a_valid_model_and_reports(tmp_path):
    src = save(tmp_path, CASES["double_qdq_rescale"]().model)
    dst = str(tmp_path / "out.onnx")
    result = qopt("onnx-simplify", src, "-o", dst)
    assert result.returncode == 0, result.stderr
    assert "refused: DQ -> Q pair is not the identity" in result.stderr
    assert "worst-case error" in result.stderr
    onnx.checker.check_model(onnx.load(dst), full_check=True)
    result = qopt("onnx-simplify", save(tmp_path, CASES["double_qdq_same"]().model), "-o", dst)
    assert "removed 2 Q/DQ node(s)" in result.stderr


def test_check_reports_onnxruntime_rewrites(tmp_path):
    pytest.importorskip("onnxruntime")
    changed = qopt("onnx-check", save(tmp_path, CASES["double_qdq_rescale"]().model))
    assert changed.returncode == 2, changed.stdout + changed.stderr
    assert "CHANGED BITS" in changed.stdout
    assert "onnxruntime default vs no optimization: y:" in changed.stdout
    same = qopt("onnx-check", save(tmp_path, CASES["requant_chain_exact"]().model, "r.onnx"))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "qopt agrees with onnxruntime (no optimization)" in same.stdout
    nan = qopt("onnx-check", save(tmp_path, CASES["per_axis"]().model, "p.onnx"))
    assert nan.returncode == 0, nan.stdout + nan.stderr
    assert "qopt vs onnxruntime without optimization: y:" in nan.stdout
    assert "the inputs hold NaN" in nan.stdout


def test_missing_initializer(tmp_path):
    model = make(
        [q("x", "s", "z", "y", "quant_x")],
        [typed("z", 3, np.int8)],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.INT8, SHAPE)],
    )
    assert_clean_error(qopt("import-onnx", save(tmp_path, model)), "m.onnx", "quant_x", "'s'")


def test_wrong_rank_of_scale(tmp_path):
    model = make(
        [q("x", "s", "z", "y", "quant_x")],
        [f32("s", np.full((4, 64), 0.1)), typed("z", np.zeros((4, 64)), np.int8)],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.INT8, SHAPE)],
    )
    assert_clean_error(qopt("import-onnx", save(tmp_path, model)), "m.onnx", "quant_x", "rank 2")


def test_wrong_length_of_scale(tmp_path):
    model = make(
        [q("x", "s", "z", "y", "quant_x", axis=1)],
        [f32("s", np.full(5, 0.1)), typed("z", np.zeros(5), np.int8)],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.INT8, SHAPE)],
    )
    assert_clean_error(qopt("import-onnx", save(tmp_path, model)), "quant_x", "5 elements")


def test_unknown_opset(tmp_path):
    model = make(
        [q("x", "s", "z", "y", "quant_x")],
        [f32("s", 0.1), typed("z", 0, np.int8)],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.INT8, SHAPE)],
        opset=99,
    )
    assert_clean_error(qopt("import-onnx", save(tmp_path, model)), "m.onnx", "opset 99")


def test_non_constant_scale(tmp_path):
    model = make(
        [
            helper.make_node("Abs", ["s_in"], ["s"], name="abs_scale"),
            q("x", "s", "z", "y", "quant_x"),
        ],
        [typed("z", 0, np.int8)],
        [("x", T.FLOAT, SHAPE), ("s_in", T.FLOAT, [])],
        [("y", T.INT8, SHAPE)],
    )
    path = save(tmp_path, model)
    assert_clean_error(qopt("import-onnx", path), "quant_x", "abs_scale", "computed at runtime")
    kept = qopt("import-onnx", path, "--keep-unsupported")
    assert kept.returncode == 0 and "note:" in kept.stderr and "quant_x" in kept.stderr


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "x.onnx"
    path.write_bytes(b"\xff\xfe not protobuf \x00\x01")
    assert_clean_error(qopt_process("import-onnx", str(path)), "x.onnx")
    assert_clean_error(qopt("onnx-simplify", str(tmp_path / "missing.onnx"), "-o", "o.onnx"))
    assert_clean_error(qopt("onnx-check", str(tmp_path / "missing.onnx")), "missing.onnx")


def test_invalid_model_is_named(tmp_path):
    model = make(
        [q("x", "s", "z", "y", "quant_x", no_such_attribute=3)],
        [f32("s", 0.1), typed("z", 0, np.int8)],
        [("x", T.FLOAT, SHAPE)],
        [("y", T.INT8, SHAPE)],
    )
    assert_clean_error(qopt("import-onnx", save(tmp_path, model)), "m.onnx", "not a valid ONNX")


def test_usage_errors_exit_1_and_help_0():
    """onnx-check keeps exit code 2 for changed bits; a usage error is 1, as in all of qopt."""
    for sub in ("import-onnx", "onnx-simplify", "onnx-check"):
        assert qopt(sub).returncode == 1
        assert qopt(sub, "--help").returncode == 0
