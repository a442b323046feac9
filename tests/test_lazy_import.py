"""``import qopt`` and ``import qopt.cli`` stay light: heavy packages load on first use.

Each check runs in a fresh interpreter, since the test process has imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("xdsl", "llvmlite", "ml_dtypes", "torch", "onnx")


def imported_after(code: str) -> list[str]:
    """The heavy top-level packages a fresh interpreter holds after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_import_qopt_loads_nothing_heavy() -> None:
    assert imported_after("import qopt") == []


def test_import_qopt_lists_its_api_without_loading_it() -> None:
    assert imported_after("import qopt; dir(qopt); qopt.__version__") == []


@pytest.mark.parametrize("package", ["llvmlite", "torch", "onnx"])
def test_import_qopt_cli_loads_no_codegen_backend(package: str) -> None:
    assert package not in imported_after("import qopt.cli")


def test_compile_stats_does_not_load_llvmlite() -> None:
    assert "llvmlite" not in imported_after("import qopt; qopt.compile_stats()")


def test_integer_quantize_does_not_load_ml_dtypes() -> None:
    """ml_dtypes (about 0.6 s to import) loads only when a call has one of its formats."""
    code = (
        "import numpy as np, qopt\n"
        "q = qopt.quantize(np.ones((4, 8), np.float32), 0.5, 1, dtype='i8', axis=None)\n"
        "qopt.dequantize(q, np.full(8, 0.5, np.float32), axis=1)\n"
        "qopt.dynamic_quantize(np.ones((4, 8), np.float32), dtype='int8', axis=0)"
    )
    assert "ml_dtypes" not in imported_after(code)
    assert "ml_dtypes" in imported_after(
        code + "\nqopt.quantize(np.ones(4, np.float32), 1.0, dtype='i4')"
    )
