"""The qopt driver: round trips, pass flags, targets, located errors, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.mlir"))

VALID = """func.func @f(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  %q = quant.quantize %x scale(1.250000e-01) zero_point(3) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}
"""


def qopt(*args: str, stdin: str | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "codegen.qopt", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_help_lists_every_pass():
    from passes import PASSES

    result = qopt("--help")
    assert result.returncode == 0
    for name in PASSES:
        assert f"--{name}" in result.stdout


def test_stdin_and_output_file(tmp_path):
    out = tmp_path / "out.mlir"
    result = qopt("-", "-o", str(out), stdin=VALID)
    assert result.returncode == 0, result.stderr
    assert "quant.quantize %x scale(1.250000e-01) zero_point(3)" in out.read_text()


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_examples_roundtrip(example):
    first = qopt(str(example))
    assert first.returncode == 0, first.stderr
    second = qopt("-", stdin=first.stdout)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "func.func @f() {\n  %x = quant.bogus\n}\n",
            "error: Operation quant.bogus is not registered",
        ),
        (
            VALID.replace("zero_point(3)", "zero_point(999)"),
            "input.mlir:2:3: error: zero point 999",
        ),
        ("func.func @f(", "input.mlir:1:"),
        ("\x00\x01garbage", "input.mlir:1:"),
    ],
)
def test_bad_input_gives_located_error(tmp_path, text, message):
    path = tmp_path / "input.mlir"
    path.write_text(text)
    result = qopt(str(path), cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_pass_and_missing_file_exit_nonzero(tmp_path):
    for args in (["-p", "no-such-pass", "-"], [str(tmp_path / "missing.mlir")]):
        result = qopt(*args, stdin=VALID)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr


def test_split_input_file_and_verify_diagnostics():
    text = VALID + "// -----\n" + VALID.replace("zero_point(3)", "zero_point(999)")
    result = qopt("-", "--split-input-file", "--verify-diagnostics", stdin=text)
    assert result.returncode == 0
    assert "<stdin>:7:3: error: zero point 999 is outside the storage range" in result.stdout


def test_works_from_an_installed_copy(tmp_path):
    """A non-editable install into a fresh directory works away from the repository."""
    target = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        pytest.skip(f"pip cannot build here: {install.stderr[-300:]}")
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import qdialect, passes, codegen, codegen.qopt as q, sys;"
            "print(qdialect.__file__); sys.exit(q.main(['-']))",
        ],
        input=VALID,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert probe.returncode == 0, probe.stderr
    assert str(target) in probe.stdout.splitlines()[0]
    assert "quant.quantize" in probe.stdout
