"""The qopt driver: round trips, pass flags, targets, located errors, no tracebacks."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qopt.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.mlir"))

VALID = """func.func @f(%x: tensor<4x8xf32>) -> tensor<4x8xi8> {
  %q = quant.quantize %x scale(1.250000e-01) zero_point(3) : tensor<4x8xf32> -> tensor<4x8xi8>
  func.return %q : tensor<4x8xi8>
}
"""


def qopt(*args: str, stdin: str | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "qopt.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_help_lists_every_pass():
    from qopt.passes import PASSES

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
            "import qopt.qdialect as d, qopt.cli as q, sys;"
            "print(d.__file__); sys.exit(q.main(['-']))",
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


# --------------------------------------------------------------------------------------
# Hardening (issue 10): every input a user can write ends in a located error or success.

LOWERED_DYNAMIC = """func.func @d(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  func.return %x : tensor<?x64xf32>
}
"""
LOCATED_LINE = re.compile(r"^\S+:\d+:\d+: error: ", re.MULTILINE)


def run_main(tmp_path: Path, text: str | bytes, *args: str) -> tuple[int, str, str]:
    """The driver in-process on `text` written to input.mlir: (exit code, stdout, stderr)."""
    path = tmp_path / "input.mlir"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(path), *args])
    assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue()
    return code, out.getvalue(), err.getvalue()


def assert_located(result: tuple[int, str, str], where: str, message: str) -> None:
    code, _, stderr = result
    assert code == 1, stderr
    assert LOCATED_LINE.search(stderr), stderr
    assert f"input.mlir:{where}: error: " in stderr, stderr
    assert message in stderr, stderr


@pytest.mark.parametrize("target", ["llvm", "asm", "ptx"])
def test_codegen_target_on_unlowered_ir_names_the_op_and_the_flag(tmp_path, target):
    result = run_main(tmp_path, VALID, "-t", target)
    assert_located(result, "2:3", f"quant.quantize must be lowered before -t {target}")
    assert "(add --lower-quant)" in result[2]


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        (VALID.replace("4x8x", "?x8x"), ("--lower-quant",), "tensor.empty(%dim) : tensor<?x8xi8>"),
        (
            VALID.replace("4x8x", "?x8x"),
            ("--lower-quant", "-t", "llvm"),
            'define void @"f__serial"',
        ),
        (VALID.replace("4x8x", "?x8x"), ("--lower-quant", "-t", "asm"), "f__serial:"),
        (VALID.replace("4x8x", "?x8x"), ("--fold-quant", "--lower-quant"), "tensor.dim %x"),
        (LOWERED_DYNAMIC, ("-t", "llvm"), 'define void @"d__serial"'),
    ],
)
def test_dynamic_shapes_lower_and_translate(tmp_path, text, args, expected):
    code, out, err = run_main(tmp_path, text, *args)
    assert code == 0, err
    assert expected in out


def test_dynamic_shape_mismatch_prints_question_marks(tmp_path):
    """Static extents are checked where both sides have one; ``?`` matches any."""
    text = (
        VALID.replace("%x: tensor<4x8xf32>", "%x: tensor<?x8xf32>")
        .replace(
            "%x scale(1.250000e-01) zero_point(3) : tensor<4x8xf32> -> tensor<4x8xi8>",
            "%x scale(1.250000e-01) zero_point(3) : tensor<?x8xf32> -> tensor<4x9xi8>",
        )
        .replace("-> tensor<4x8xi8> {", "-> tensor<4x9xi8> {")
        .replace("func.return %q : tensor<4x8xi8>", "func.return %q : tensor<4x9xi8>")
    )
    result = run_main(tmp_path, text)
    assert_located(result, "2:3", "result shape [4, 9] does not match the input shape [?, 8]")


def test_help_offers_only_qopt_targets():
    result = qopt("--help")
    assert result.returncode == 0
    help_text = " ".join(result.stdout.split())
    for name in ("llvm", "asm", "ptx"):
        assert name in help_text
    for xdsl_only in ("x86-asm", "riscv-asm", "arm-asm", "wgsl", "csl", "wat", "mps"):
        assert xdsl_only not in help_text
    rejected = qopt("-", "-t", "x86-asm", stdin=VALID)
    assert rejected.returncode != 0
    assert "invalid choice: 'x86-asm'" in rejected.stderr
    assert "Traceback" not in rejected.stderr


def test_output_into_a_missing_directory_is_a_clean_error(tmp_path):
    target = tmp_path / "x" / "y.mlir"
    code, _, stderr = run_main(tmp_path, VALID, "-o", str(target))
    assert code == 1
    assert stderr.strip() == f"qopt: cannot open '{target}': No such file or directory"


class ClosedPipe(io.TextIOBase):
    """A stdout whose reader went away (``qopt ... | head -1``): writing raises EPIPE."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        return self.write_end

    def close_fds(self) -> None:
        os.close(self.read_end)
        os.close(self.write_end)


def test_broken_pipe_exits_quietly(tmp_path):
    """The reader goes away: no traceback, no message, the exit code of a SIGPIPE death."""
    path = tmp_path / "input.mlir"
    path.write_text(VALID)
    stdout, err = ClosedPipe(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(err):
            code = main([str(path)])
    finally:
        stdout.close_fds()
    assert code == 141
    assert err.getvalue() == ""


@pytest.mark.parametrize(
    ("text", "args", "where", "message"),
    [
        (
            "func.func private @f(%x: tensor<4xf32>) -> tensor<4xf32>\n",
            ("-t", "llvm"),
            "1:1",
            "function @f has no body",
        ),
        (
            "func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n}\n",
            ("-t", "llvm"),
            "1:1",
            "function @f does not end with func.return",
        ),
        (
            "func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
            "  %e = tensor.empty() : tensor<4xf32>\n}\n",
            ("-t", "llvm"),
            "2:3",
            "Operation tensor.empty terminates block",
        ),
    ],
)
def test_llvm_on_a_function_without_body_or_return(tmp_path, text, args, where, message):
    assert_located(run_main(tmp_path, text, *args), where, message)


USE_BEFORE_DEF = """func.func @f(%x: tensor<4xf32>) -> tensor<4xi8> {
  %q = quant.quantize %y scale(1.250000e-01) : tensor<4xf32> -> tensor<4xi8>
  %y = quant.dequantize %q scale(1.250000e-01) : tensor<4xi8> -> tensor<4xf32>
  func.return %q : tensor<4xi8>
}
"""


@pytest.mark.parametrize("args", [(), ("--lower-quant",), ("--lower-quant", "-t", "llvm")])
def test_value_used_before_its_definition(tmp_path, args):
    result = run_main(tmp_path, USE_BEFORE_DEF, *args)
    assert_located(result, "2:3", "operand %y of quant.quantize is used before its definition")


def test_unterminated_string_literal_is_located_at_once():
    """xDSL's string regex backtracks exponentially without a closing quote (28 chars:
    10 s); qopt rejects the line before xDSL's lexer sees it."""
    text = 'func.func @f() {\n  %x = "' + "a" * 60 + "\n}\n"
    result = subprocess.run(
        [sys.executable, "-m", "qopt.cli", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "<stdin>:2:8: error: unterminated string literal" in result.stderr


def test_invalid_escape_in_string_literal_is_located(tmp_path):
    text = 'func.func @f() {\n  %x = "' + "a" * 40 + '\\q"\n}\n'
    assert_located(run_main(tmp_path, text), "2:49", "invalid escape sequence")


def test_deep_type_nesting_is_located(tmp_path):
    depth = 3000
    text = f"func.func @f(%x: {'tensor<' * depth}f32{'>' * depth}) {{\n  func.return\n}}\n"
    code, _, stderr = run_main(tmp_path, text)
    assert code == 1
    assert "input.mlir:1:" in stderr and "error: the input is nested too deeply" in stderr


ARITH_CONSTANT = """func.func @f() -> f32 {
  %c = arith.constant 3.5e38 : f32
  func.return %c : f32
}
"""


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (VALID.replace("zero_point(3)", f"zero_point({2**64})"), "2:57", "does not fit i32"),
        (VALID.replace("zero_point(3)", f"range(0, {2**64})"), "2:55", "does not fit i64"),
        (VALID.replace("zero_point(3)", f"range({-(2**64)}, 0)"), "2:52", "does not fit i64"),
        (VALID.replace("zero_point(3)", "zero_point(3.5e38)"), "2:3", "zero point must be an"),
        (VALID.replace("zero_point(3)", "zero_point(3.5)"), "2:3", "zero point must be an"),
        (ARITH_CONSTANT, "2:23", "number 3.5e38 is out of range for f32"),
        (ARITH_CONSTANT.replace("3.5e38", "1.0e400"), "2:23", "number 1.0e400 is out of range"),
        (ARITH_CONSTANT.replace("3.5e38", "-0x3F800000"), "2:23", "takes no leading minus"),
        (
            VALID.replace("zero_point(3)", f"zero_point({'9' * 4400})"),
            "2:57",
            "number literal with 4400 digits is too long",
        ),
        (
            VALID.replace(
                "zero_point(3)", "zero_point(dense<[300, 1, 2, 3]> : tensor<4xi8>) per_axis(0)"
            ),
            "2:62",
            "invalid dense literal: Integer value 300 is out of range for type i8",
        ),
        (
            ARITH_CONSTANT.replace("3.5e38 : f32", "dense<1.0e10> : tensor<2xf16>"),
            "2:28",
            "invalid dense literal: a value is out of range for tensor<2xf16>",
        ),
    ],
)
def test_out_of_range_literals_are_located(tmp_path, text, where, message):
    assert_located(run_main(tmp_path, text), where, message)


@pytest.mark.parametrize("count", [10**8, 10**14])
def test_huge_dense_splat_is_located_not_expanded(tmp_path, count):
    """xDSL expands a splat into a Python list: 1e8 elements took minutes, 1e14 ran out
    of memory (``internal error: MemoryError``)."""
    text = ARITH_CONSTANT.replace("3.5e38 : f32", f"dense<1.0> : tensor<{count}xf32>")
    assert_located(run_main(tmp_path, text), "2:36", f"(this one has {count})")


def test_long_digit_runs_inside_strings_and_comments_are_not_numbers(tmp_path):
    digits = "1" * 5000
    text = VALID.replace("func.return", f'// {digits} "\n  func.return').replace(
        "zero_point(3)", f'zero_point(3) {{note = "a\\"{digits}"}}'
    )
    code, out, _ = run_main(tmp_path, text)
    assert code == 0 and digits in out


def test_trunci_from_an_f8_type_is_located(tmp_path):
    text = """func.func @f(%x: f8E4M3FN) -> i4 {
  %t = arith.trunci %x : f8E4M3FN to i4
  func.return %t : i4
}
"""
    result = run_main(tmp_path, text, "--lower-quant", "-t", "llvm")
    assert_located(result, "2:3", "f8E4M3FN should be of base attribute integer_type")


@pytest.mark.parametrize(("first", "column"), [("\x01", 1), ("\x7f", 1), ("`", 1)])
def test_invalid_first_character_is_located(tmp_path, first, column):
    code, _, stderr = run_main(tmp_path, first + VALID)
    assert code == 1
    assert f"input.mlir:1:{column}: error: " in stderr


def test_input_that_is_not_utf8_is_located(tmp_path):
    data = VALID.encode().replace(b"%q = ", b"%q\xff = ")
    assert_located(run_main(tmp_path, data), "2:5", "the input is not UTF-8 text")


def test_duplicate_function_names_are_located_at_the_second(tmp_path):
    assert_located(run_main(tmp_path, VALID + VALID), "5:1", "redefinition of symbol 'f'")


def test_fake_quantize_with_three_result_types_is_located(tmp_path):
    text = """func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %a = quant.fake_quantize %x storage(i8) : tensor<4xf32> -> tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
  func.return %a : tensor<4xf32>
}
"""
    assert_located(
        run_main(tmp_path, text), "2:62", "quant.fake_quantize takes 1 result type, got 3"
    )


def test_ptx_unknown_arch_is_a_clean_error(tmp_path):
    code, _, stderr = run_main(tmp_path, VALID, "--lower-quant", "-t", "ptx{arch=sm_999}")
    assert code == 1
    assert stderr.startswith("qopt: -t ptx: ") and "sm_999" in stderr
    assert "sm_90" in stderr  # names the architectures it knows


@pytest.mark.parametrize(
    "args", [("-t", "llvm{"), ("-p", "lower-quant{"), ("--lower-quant={",), ("-p", ",")]
)
def test_malformed_pipeline_or_target_spec_is_a_clean_error(tmp_path, args):
    code, _, stderr = run_main(tmp_path, VALID, *args)
    assert code == 1
    assert stderr.startswith("qopt: ")


@pytest.mark.parametrize("scale", ["8388608.0", "1234567.0", "1000001.0"])
def test_fold_to_file_then_compile_keeps_integer_valued_scales(tmp_path, scale):
    """``qopt f.mlir --fold-quant -o x.mlir`` prints the scale as hex bits; compiling
    x.mlir gives the LLVM IR that compiling f.mlir gives."""
    text = VALID.replace("1.250000e-01", scale)
    source = tmp_path / "f.mlir"
    source.write_text(text)
    folded = tmp_path / "x.mlir"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([str(source), "--fold-quant", "-o", str(folded)]) == 0
    assert "scale(0x" in folded.read_text()

    def compile_file(path: Path) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main([str(path), "--lower-quant", "-t", "llvm"]) == 0
        return out.getvalue()

    assert compile_file(folded) == compile_file(source)


@pytest.mark.parametrize("args", [("--fold-quant",), ("--fold-quant", "--lower-quant")])
def test_tensors_beyond_2_to_the_40_elements_are_located(tmp_path, args):
    """fold-quant allocated tables along such dimensions (MemoryError: 745 GiB)."""
    text = VALID.replace("4x8x", "100000000000x100000000000x")
    assert_located(run_main(tmp_path, text, *args), "1:1", "qopt compiles tensors of at most 2^40")


def test_fold_quant_keeps_dynamic_shapes(tmp_path):
    """fold-quant keeps dynamic shapes as they are."""
    code, out, _ = run_main(tmp_path, VALID.replace("4x8x", "?x8x"), "--fold-quant")
    assert code == 0 and "tensor<?x8xi8>" in out


def test_lower_to_file_then_compile_keeps_hex_constants(tmp_path):
    """The lowered IR holds ``arith.constant dense<[0x4B000000, ...]>``: compiling the
    printed lowered IR gives the LLVM IR of compiling in one go."""
    text = """func.func @f(%x: tensor<4x2xf32>) -> tensor<4x2xi16> {
  %q = quant.quantize %x scale(dense<[8388608.0, 1234567.0]> : tensor<2xf32>) per_axis(1) : tensor<4x2xf32> -> tensor<4x2xi16>
  func.return %q : tensor<4x2xi16>
}
"""
    source = tmp_path / "f.mlir"
    source.write_text(text)
    lowered = tmp_path / "low.mlir"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([str(source), "--lower-quant", "-o", str(lowered)]) == 0
    assert "0x4B000000" in lowered.read_text()
    outputs = []
    for args in ([str(lowered), "-t", "llvm"], [str(source), "--lower-quant", "-t", "llvm"]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(args) == 0
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]
    assert 'c"\\00\\00\\00K8\\b4\\96I"' in outputs[0]  # 0x4B000000, 0x4996B438 (little-endian)


# --------------------------------------------------------------------------------------
# What the driver says about itself (issue "one qopt package")


def test_version_names_qopt_xdsl_and_llvmlite(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == (
        f"qopt {version('qopt')} (xdsl {version('xdsl')}, llvmlite {version('llvmlite')})"
    )


def test_help_lists_every_pass_with_its_options(capsys):
    import dataclasses

    from qopt.passes import PASS_OPTIONS, PASSES

    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, factory in PASSES.items():
        assert f"--{name} [OPTIONS]" in text
        fields = {f.name for f in dataclasses.fields(factory())}
        assert set(PASS_OPTIONS.get(name, {})) == fields, name
        for option in fields:
            assert f"{option}=" in text, (name, option)
    assert "docs/semantics.md" in text


def test_pass_flag_takes_options(tmp_path: Path):
    text = (ROOT / "examples" / "requant_chain_stays.mlir").read_text()
    code, plain, _ = run_main(tmp_path, text, "--fold-quant")
    assert code == 0
    code, lossy, _ = run_main(tmp_path, text, "--fold-quant=lossy=true")
    assert code == 0
    assert plain.count("quant.requantize") == 2
    assert lossy.count("quant.requantize") == 1


def test_dir_of_qopt_shows_the_api():
    import qopt

    names = set(dir(qopt))
    for name in ("quantize", "dequantize", "requantize", "dynamic_quantize", "fake_quantize"):
        assert name in names and callable(getattr(qopt, name))
    assert {"compile", "QuantError", "__version__"} <= names
    assert not any(n.startswith("_") and n != "__version__" for n in names)
