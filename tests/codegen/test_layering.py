"""codegen's imports: only itself, the base layer `qopt.ir` and third-party packages, and
no cycle among its modules (function-local imports included)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import qopt.codegen

CODEGEN = Path(qopt.codegen.__file__).parent
ALLOWED_QOPT = ("qopt.codegen", "qopt.ir")
MAX_LINES = 700


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (`from a import b` counts as a and a.b)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules() -> dict[str, Path]:
    return {f"qopt.codegen.{p.stem}": p for p in sorted(CODEGEN.glob("*.py"))}


def test_codegen_imports_only_itself_and_the_base_layer() -> None:
    bad = {
        (name, imported)
        for name, path in modules().items()
        for imported in imports_of(path)
        if (imported == "qopt" or imported.startswith("qopt."))
        and not imported.startswith(ALLOWED_QOPT)
    }
    assert not bad


def test_no_import_cycle_within_codegen() -> None:
    names = modules()
    graph = {
        name: {m for m in imports_of(path) if m in names and m != name}
        for name, path in names.items()
    }
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError on a cycle


def test_modules_are_small() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert all(n <= MAX_LINES for n in sizes.values()), sizes
