"""The package's layering, read from the AST of every module (no imports executed).

Layers point down only: ``qopt.ir`` (generic IR text utilities) <- ``qopt.qdialect`` <-
``qopt.passes`` <- ``qopt.codegen`` (dialect-agnostic: it knows loops, vectors and types,
not quantization) <- the user-facing top (``qopt.api``, ``qopt.cli``, ``qopt.pipeline``).
Function-local imports count: a cycle hidden inside a function is still a cycle.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path

import pytest

PACKAGE_DIR = Path(importlib.util.find_spec("qopt").origin).parent
MAX_LINES = 700

# Which top-level subpackages each layer may import (besides itself).
LAYERS = {
    "ir": set(),
    "qdialect": {"ir"},
    "passes": {"ir", "qdialect"},
    "codegen": {"ir"},
}
"""Which subpackages each layer may import besides itself; the top-level modules
(``qopt.api``, ``qopt.cli``, ``qopt.pipeline``, ``qopt.errors``) may import any layer, and
no layer may import them."""


@functools.cache
def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Every qopt module `name` imports, at any depth of the file (function bodies too)."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "qopt"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports (qopt uses none, but read them right)
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "qopt":
                continue
            for alias in node.names:
                child = f"{target}.{alias.name}"
                # `from package import module` depends on the module; `from module import
                # name` on the module.
                out.add(child if child in _modules() else target)
    # A module's own ancestor packages run first in any case: no edge of responsibility.
    ancestors = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
    return {m for m in out if m in _modules() and m != name and m not in ancestors}


def test_the_package_has_modules():
    assert len(_modules()) > 20


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_is_at_most_700_lines(name: str):
    lines = _modules()[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES})"


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_only_point_down(layer: str):
    bad = []
    for name, path in _modules().items():
        parts = name.split(".")
        if len(parts) < 2 or parts[1] != layer:
            continue
        for target in _imports(name, path):
            tparts = target.split(".")
            if len(tparts) < 2 or (tparts[1] != layer and tparts[1] not in LAYERS[layer]):
                bad.append(f"{name} imports {target}")
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(name, path) for name, path in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            pytest.fail("import cycle: " + " -> ".join(cycle))
