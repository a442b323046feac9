"""codegen.ptx.PTX_ARCHS: every listed GPU architecture emits PTX and ``ptxas`` takes it.

LLVM aborts the process when the PTX ISA feature is too old for the architecture, so the
PTX of every architecture is emitted in one subprocess (an abort fails the fixture with
LLVM's message instead of killing pytest). Unknown architectures and PTX features are
refused with a ValueError before LLVM is called.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import pytest

from qopt.codegen import ptx

ROOT = Path(__file__).resolve().parents[2]
# Reductions on thread 0, per-block float formats, a lookup table (a global), min/max, casts.
CASES = ("dynamic_i8_per_tensor", "dynamic_nvfp4", "requantize_lut", "quantize_f8E4M3FN")


@cache
def _ptxas_archs() -> frozenset[str]:
    """The ``-arch`` values the installed ptxas lists in its help."""
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        return frozenset()
    text = subprocess.run([ptxas, "--help"], capture_output=True, text=True, check=False).stdout
    return frozenset(re.findall(r"'(sm_\w+)'", text))


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<case>.<arch>.ptx`` for every case x arch, written by one subprocess."""
    out = tmp_path_factory.mktemp("ptx-archs")
    script = textwrap.dedent(f"""\
        from pathlib import Path
        from qopt.codegen import ptx
        from tests.codegen.test_ptx import lowered
        out = Path({str(out)!r})
        for case in {CASES!r}:
            module = lowered(case)
            for arch in ptx.PTX_ARCHS:
                (out / f"{{case}}.{{arch}}.ptx").write_text(ptx.emit_ptx(module, arch))
        """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"PTX emission died (exit {done.returncode}):\n{done.stderr}"
    assert "LLVM ERROR" not in done.stderr and "not a recognized" not in done.stderr
    return out


@pytest.mark.parametrize("arch", list(ptx.PTX_ARCHS))
def test_every_listed_arch_emits_its_ptx_version(emitted: Path, arch: str) -> None:
    version = ptx.PTX_ARCHS[arch]
    for case in CASES:
        text = (emitted / f"{case}.{arch}.ptx").read_text()
        assert re.search(rf"^\.target {arch}$", text, re.MULTILINE), case
        assert re.search(rf"^\.version {version // 10}\.{version % 10}$", text, re.MULTILINE)
        assert ".extern .func" not in text


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas (CUDA toolkit) is not on PATH")
@pytest.mark.parametrize("arch", list(ptx.PTX_ARCHS))
def test_every_listed_arch_assembles_with_ptxas(emitted: Path, arch: str) -> None:
    if arch not in _ptxas_archs():
        pytest.skip(f"this ptxas does not know {arch} (CUDA 13 dropped Volta)")
    for case in CASES:
        cubin = ptx.assemble((emitted / f"{case}.{arch}.ptx").read_text(), arch)
        assert cubin[:4] == b"\x7fELF", case


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas (CUDA toolkit) is not on PATH")
def test_only_volta_is_missing_from_cuda13_ptxas() -> None:
    """Every listed arch but sm_70 / sm_72 is one the installed ptxas (CUDA 13) assembles."""
    missing = set(ptx.PTX_ARCHS) - _ptxas_archs()
    assert missing <= {"sm_70", "sm_72"}, missing


@pytest.mark.parametrize("arch", ["sm_999", "sm_101", "sm_60", "compute_90", "sm_90x", "SM_90", ""])
def test_unknown_arch_is_a_value_error_naming_the_allowed(arch: str) -> None:
    with pytest.raises(ValueError, match=r"unknown GPU architecture .*supported: sm_70, .*sm_90a"):
        ptx.ptx_config(arch)
    with pytest.raises(ValueError, match="unknown GPU architecture"):
        ptx.emit_ptx("func.func @f() {\n  func.return\n}\n", arch)
    with pytest.raises(ValueError, match="unknown GPU architecture"):
        ptx.assemble(".version 7.8\n", arch)


def test_unknown_arch_through_the_api() -> None:
    from qopt import api

    text = textwrap.dedent("""\
        func.func @f(%x: tensor<8xf32>) -> tensor<8xi8> {
          %q = quant.quantize %x scale(0.5) : tensor<8xf32> -> tensor<8xi8>
          func.return %q : tensor<8xi8>
        }
        """)
    with pytest.raises(ValueError, match="unknown GPU architecture 'sm_999'"):
        api.compile(text, target="ptx", arch="sm_999")


def test_ptx_feature_below_the_arch_minimum_is_refused() -> None:
    """``+ptx78`` with sm_90a was an LLVM abort; now a ValueError naming the minimum."""
    with pytest.raises(ValueError, match=r"sm_90a needs PTX ISA 8\.0 or later \(\+ptx80\)"):
        ptx.ptx_config("sm_90a", "+ptx78")
    with pytest.raises(ValueError, match=r"sm_120 needs PTX ISA 8\.7"):
        ptx.ptx_config("sm_120", "+ptx86")


@pytest.mark.parametrize("features", ["+ptx99", "+ptx89", "ptx80", "+ptx80,+ptx86", "+sm_90"])
def test_unknown_ptx_feature_is_refused(features: str) -> None:
    with pytest.raises(ValueError, match="PTX features must be one of"):
        ptx.ptx_config("sm_90", features)


def test_higher_ptx_feature_is_accepted() -> None:
    assert ptx.ptx_config("sm_80", "+ptx86").features == "+ptx86"
    assert ptx.ptx_config("sm_90a").features == "+ptx80"
