"""qopt against upstream MLIR itself (optional: ``pip install qopt[mlir-oracle]``, the
torch-mlir wheel; skipped without it).

* StableHLO's reference interpreter (``eval_module`` of torch-mlir's StableHLO bindings)
  runs ``stablehlo.uniform_quantize`` / ``uniform_dequantize`` / requantize; qopt
  compiles the same program (convert-quant-types, lower-quant, the CPU JIT): same bits on
  ties with odd zero points, values where the f32 sum rounds, saturation, per-axis
  parameters and narrow storage ranges. NaN input is compared too (the interpreter gives 0;
  the specification leaves the conversion of NaN to an integer undefined).
* upstream's parser (``torch-mlir-opt``) reads what ``--export-quant-types`` writes, and
  prints types that qopt reads back the same.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch_mlir")
from torch_mlir import ir
from torch_mlir._mlir_libs import _stablehlo as stablehlo

import qopt

F32 = np.float32
SPECIAL = np.array(
    [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.25, 0.75, -0.25, np.inf, -np.inf, 0.0, -0.0, 1e9, -1e9]
    + [126.5, -127.5, 8388607.5, 4194303.75, 1e-45, 3.4e38, -3.4e38, 63.5, -64.5],
    F32,
)


def interpret(text: str, *inputs: np.ndarray) -> list[np.ndarray]:
    """Run ``@main`` of a StableHLO module in the reference interpreter."""
    ctx = ir.Context()
    stablehlo.register_dialect(ctx)
    with ctx:
        module = ir.Module.parse(text)
        args = [ir.DenseElementsAttr.get(np.ascontiguousarray(a)) for a in inputs]
        return [np.array(r) for r in stablehlo.eval_module(module, args)]


def _storage_np(t: str):
    return {"i8": np.int8, "ui8": np.uint8, "i16": np.int16, "ui16": np.uint16}[t]


def quantize_both(x: np.ndarray, qtype: str, storage: str) -> tuple[np.ndarray, np.ndarray]:
    shape = "x".join(map(str, x.shape))
    q = f"tensor<{shape}x!quant.uniform<{qtype}>>"
    sl = f"tensor<{shape}x{storage}>"
    ft = f"tensor<{shape}xf32>"
    hlo = (
        f"func.func @main(%x: {ft}) -> {sl} {{\n"
        f'  %q = "stablehlo.uniform_quantize"(%x) : ({ft}) -> {q}\n'
        f'  %i = "stablehlo.bitcast_convert"(%q) : ({q}) -> {sl}\n'
        f"  return %i : {sl}\n}}\n"
    )
    want = interpret(hlo, x)[0].view(_storage_np(storage))
    ours = (
        f"func.func @main(%x: {ft}) -> {q} {{\n"
        f'  %q = "stablehlo.uniform_quantize"(%x) : ({ft}) -> {q}\n'
        f"  func.return %q : {q}\n}}\n"
    )
    got = np.asarray(qopt.compile(ours)(x))
    return got.view(_storage_np(storage)), want


CASES = [
    ("i8:f32, 0.5:3", "i8"),
    ("i8:f32, 0.5:-7", "i8"),
    ("i8:f32, 1.0:127", "i8"),
    ("i8:f32, 0.1:1", "i8"),
    ("i8<-127:127>:f32, 0.25:5", "i8"),
    ("ui8:f32, 0.5:129", "ui8"),
    ("ui8<1:255>:f32, 0.03:3", "ui8"),
    ("i16:f32, 0.5:-32767", "i16"),
    ("i16:f32, 1.0:1", "i16"),
    ("ui16:f32, 0.0078125:3", "ui16"),
]


@pytest.mark.parametrize("qtype,storage", CASES)
def test_uniform_quantize_matches_interpreter(qtype, storage):
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            SPECIAL,
            (rng.standard_normal(2000) * 100).astype(F32),
            np.arange(-300, 300, 0.5, dtype=F32),
        ]
    )
    got, want = quantize_both(x, qtype, storage)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "qtype,storage", [("i8:f32, 0.5:3", "i8"), ("ui8<1:255>:f32, 0.5:3", "ui8")]
)
def test_uniform_quantize_nan_matches_interpreter(qtype, storage):
    # NaN -> 0, even below a narrow range's minimum (the interpreter's choice; qopt's too)
    x = np.array([np.nan, -np.nan, 1.0], F32)
    got, want = quantize_both(x, qtype, storage)
    np.testing.assert_array_equal(got, want)
    assert got.tolist() == [0, 0, 5]


def test_interpreter_mismatch_on_u8_keyword_storage():
    """A recorded mismatch, not qopt's bug: upstream's ``u8`` storage (signless i8 with the
    unsigned flag) has the range 0..255, which qopt computes; StableHLO's interpreter
    clamps it at 127. (StableHLO's spec spells unsigned storage ``ui8``.)"""
    x = np.array([0.5, 100.0], F32)
    q = "tensor<2x!quant.uniform<u8:f32, 0.5:129>>"
    hlo = (
        "func.func @main(%x: tensor<2xf32>) -> tensor<2xi8> {\n"
        f'  %q = "stablehlo.uniform_quantize"(%x) : (tensor<2xf32>) -> {q}\n'
        f'  %i = "stablehlo.bitcast_convert"(%q) : ({q}) -> tensor<2xi8>\n'
        "  return %i : tensor<2xi8>\n}\n"
    )
    assert interpret(hlo, x)[0].view(np.uint8).tolist() == [127, 127]
    ours = f"func.func @main(%x: tensor<2xf32>) -> {q} {{\n" + (
        f'  %q = "stablehlo.uniform_quantize"(%x) : (tensor<2xf32>) -> {q}\n'
        f"  func.return %q : {q}\n}}\n"
    )
    assert np.asarray(qopt.compile(ours)(x)).tolist() == [130, 255]


def test_per_axis_quantize_matches_interpreter():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((64, 3)) * 50).astype(F32)
    x[:8, :] = SPECIAL[:24].reshape(8, 3)
    got, want = quantize_both(x, "i8:f32:1, {0.5:3, 0.25:-1, 2.0:7}", "i8")
    np.testing.assert_array_equal(got, want)


REQUANT_CASES = [
    ("i8:f32, 0.5:3", "i8:f32, 0.25:-1"),
    ("i8:f32, 0.3:1", "i8:f32, 0.7:3"),
    ("i8:f32, 0.0625:-128", "i8:f32, 1.5:5"),
    ("i8:f32, 2.0:0", "i8<-127:127>:f32, 0.5:9"),
]


def _requantize_programs(qin: str, qout: str) -> tuple[str, str, str]:
    """(fused interpreter program, two-step interpreter program, qopt's program)."""
    a = f"tensor<2x128x!quant.uniform<{qin}>>"
    b = f"tensor<2x128x!quant.uniform<{qout}>>"
    f = "tensor<2x128xf32>"
    head = "func.func @main(%c: tensor<2x128xi8>) -> (tensor<2x128xi8>, tensor<2x128xf32>) {\n"
    cast_in = f'  %q = "stablehlo.bitcast_convert"(%c) : (tensor<2x128xi8>) -> {a}\n'
    tail = (
        f'  %d = "stablehlo.uniform_dequantize"(%q) : ({a}) -> {f}\n'
        f'  %i = "stablehlo.bitcast_convert"(%r) : ({b}) -> tensor<2x128xi8>\n'
        f"  return %i, %d : tensor<2x128xi8>, {f}\n}}\n"
    )
    fused = head + cast_in + f'  %r = "stablehlo.uniform_quantize"(%q) : ({a}) -> {b}\n' + tail
    two_step = (
        head
        + cast_in
        + f'  %x = "stablehlo.uniform_dequantize"(%q) : ({a}) -> {f}\n'
        + f'  %r = "stablehlo.uniform_quantize"(%x) : ({f}) -> {b}\n'
        + tail
    )
    ours = (
        f"func.func @main(%q: {a}) -> ({b}, {f}) {{\n"
        f'  %r = "stablehlo.uniform_quantize"(%q) : ({a}) -> {b}\n'
        f'  %d = "stablehlo.uniform_dequantize"(%q) : ({a}) -> {f}\n'
        f"  func.return %r, %d : {b}, {f}\n}}\n"
    )
    return fused, two_step, ours


@pytest.mark.parametrize("qin,qout", REQUANT_CASES)
def test_requantize_and_dequantize_match_interpreter(qin, qout):
    """uniform_quantize of a quantized tensor is, by StableHLO's specification,
    quantize(dequantize(q)): the interpreter's two ops give qopt's bits exactly, and its
    uniform_dequantize too. (Per-tensor only: the interpreter cannot run a per-axis
    uniform_dequantize, its lowering leaves a chlo.broadcast_multiply.)"""
    codes = np.arange(-128, 128, dtype=np.int8).reshape(2, 128)
    _, two_step, ours = _requantize_programs(qin, qout)
    want_r, want_d = interpret(two_step, codes)
    got_r, got_d = qopt.compile(ours)(codes)
    np.testing.assert_array_equal(np.asarray(got_r), want_r)
    np.testing.assert_array_equal(np.asarray(got_d).view(np.uint32), want_d.view(np.uint32))


def test_interpreter_fused_requantize_differs_from_its_specification():
    """A recorded mismatch of the interpreter, not of qopt: its one-op quantized ->
    quantized uniform_quantize differs from its own dequantize-then-quantize on a tie
    (0.75 / 1.5 + 5 = 5.5 -> 6 by the specification; it gives 5), by one code."""
    codes = np.arange(-128, 128, dtype=np.int8).reshape(2, 128)
    fused, two_step, _ = _requantize_programs("i8:f32, 0.0625:-128", "i8:f32, 1.5:5")
    by_op, by_spec = interpret(fused, codes)[0], interpret(two_step, codes)[0]
    differ = by_op != by_spec
    assert 0 < differ.sum() <= 4
    assert np.all(np.abs(by_op.astype(int) - by_spec.astype(int)) <= 1)


def _torch_mlir_opt() -> str:
    tool = shutil.which("torch-mlir-opt") or str(Path(sys.executable).parent / "torch-mlir-opt")
    if not Path(tool).exists():
        pytest.skip("torch-mlir-opt is not installed")
    return tool


EXPORTED = """
!q = !quant.uniform<i8:f32, 0.5:3>
!p = !quant.uniform<u8<1:255>:f32:1, {0.5:3, 0.25:7, 1.0}>
!s = !quant.uniform<i8:f32:{0:2, 1:2}, {{0.5:1, 0.25}, {1.0, 2.0:-3}}>
func.func @f(%x: tensor<4xf32>, %y: tensor<2x3xf32>, %z: tensor<4x4xf32>)
    -> (tensor<4x!q>, tensor<2x3xf32>, tensor<4x4xf32>) {
  %0 = quant.qcast %x : tensor<4xf32> to tensor<4x!q>
  %1 = quant.qcast %y : tensor<2x3xf32> to tensor<2x3x!p>
  %2 = quant.dcast %1 : tensor<2x3x!p> to tensor<2x3xf32>
  %3 = quant.qcast %z : tensor<4x4xf32> to tensor<4x4x!s>
  %4 = quant.dcast %3 : tensor<4x4x!s> to tensor<4x4xf32>
  return %0, %2, %4 : tensor<4x!q>, tensor<2x3xf32>, tensor<4x4xf32>
}
"""


def _qopt(*args: str, stdin: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "qopt", "-", *args], input=stdin, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_export_is_read_by_upstream_parser():
    tool = _torch_mlir_opt()
    exported = _qopt("--convert-quant-types", "--export-quant-types", stdin=EXPORTED)
    done = subprocess.run([tool], input=exported, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # what upstream prints, qopt converts and exports back to what upstream prints again
    again = _qopt("--convert-quant-types", "--export-quant-types", stdin=done.stdout)
    redone = subprocess.run([tool], input=again, capture_output=True, text=True, check=True)
    assert redone.stdout == done.stdout


def test_types_print_as_upstream_prints_them():
    tool = _torch_mlir_opt()
    types = [
        "!quant.uniform<i8<-8:7>:f32, 0.99872:127>",
        "!quant.uniform<u8:f32, 0x41646ABBA0000000:128>",
        "!quant.uniform<ui8:f32, 1.0>",
        "!quant.uniform<si8:f32, 1.0>",
        "!quant.uniform<u8:f32:1, {2.0e+2:-120,0.99872:127}>",
        "!quant.uniform<u8:f32:{0:1, 1:2}, {{2.0:120,3.0:127}, {4.0,5.0}}>",
        "!quant.uniform<f8E5M2<-57344:57344>:f32, 0.99872:127>",
        "!quant.uniform<f4E2M1FN:f32, 2.0e+2>",
        "!quant.uniform<i8:f16, 0.1>",
        "!quant.any<i8<-8:7>:f32>",
        "!quant.any<u4>",
        "!quant.calibrated<f32<-1.5:1.2321>>",
    ]
    args = ", ".join(f"%a{i}: {t}" for i, t in enumerate(types))
    text = f"func.func @f({args}) {{\n  return\n}}\n"
    theirs = subprocess.run([tool], input=text, capture_output=True, text=True, check=True).stdout
    ours = _qopt(stdin=text)
    head = lambda s: s[s.index("(") : s.index(")")]  # noqa: E731
    assert head(ours).replace("%a", "%arg") == head(theirs)


SUITES = Path(__file__).resolve().parents[2] / "filecheck" / "qdialect"


@pytest.mark.parametrize(
    "name,accepted",
    [
        ("upstream-types.mlir", True),
        ("upstream-types-invalid.mlir", False),
        ("upstream-ops.mlir", True),
        ("upstream-ops-invalid.mlir", False),
    ],
)
def test_upstream_parser_agrees_on_every_conformance_case(name, accepted):
    """Accept / reject parity: each ``// -----`` case of qopt's conformance suites is
    accepted (or rejected) by upstream's own parser and verifier as by qopt."""
    tool = _torch_mlir_opt()
    cases = (SUITES / name).read_text().split("// -----")
    verdicts = [
        subprocess.run([tool], input=case, capture_output=True, text=True).returncode == 0
        for case in cases
    ]
    assert [i for i, ok in enumerate(verdicts) if ok != accepted] == []


def test_nan_scale_is_a_known_mismatch():
    """Upstream (this torch-mlir's LLVM) accepts a NaN scale written in hexadecimal, which
    older upstream versions rejected ("illegal scale"); qopt rejects it: a NaN scale has no
    meaning, and a type holding one would not even equal itself."""
    tool = _torch_mlir_opt()
    text = "!q = !quant.uniform<i8:f32, 0x7FF8000000000000>\nfunc.func @f(%a: !q) {\n  return\n}\n"
    assert subprocess.run([tool], input=text, capture_output=True, text=True).returncode == 0
    done = subprocess.run(
        [sys.executable, "-m", "qopt", "-"], input=text, capture_output=True, text=True
    )
    assert done.returncode != 0 and "illegal scale: nan" in done.stderr
