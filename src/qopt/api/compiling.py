"""Compiling IR to kernels through the stages of qopt.pipeline (load, lower, compile_lowered).

:func:`compile` takes IR from the user (text, a file, a module); :func:`compile_kernel`
takes the one-op module the entry points build. Both run the driver's pipeline and turn
diagnostics into :class:`qopt.errors.QuantError`. Passes and codegen are imported on first
use, so ``import qopt.api`` loads neither llvmlite nor the lowering.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from xdsl.dialects.builtin import ModuleOp

from qopt import pipeline
from qopt.api.kernel_cache import record_kernel_build
from qopt.errors import QuantError
from qopt.ir.diagnostics import Diagnostic, verify_module


def compile_kernel(module: ModuleOp) -> Callable[..., Any]:
    """The JIT kernel of a built module's ``@main`` (verified, lowered, compiled)."""
    try:
        verify_module(module)
        kernel = pipeline.compile_lowered(pipeline.lower(module))["main"]
    except Diagnostic as diagnostic:  # the built module has no source location to name
        raise QuantError(diagnostic.message) from None
    record_kernel_build()
    return kernel


def compile(module_or_text: Any, *, target: str = "cpu", arch: str | None = None) -> Any:
    """Compile quant-dialect (or already lowered) IR; returns the kernel of its function.

    ``module_or_text`` is MLIR text, a path (``os.PathLike``, or a one-line ``str`` naming
    an existing file or ending in ``.mlir``) to a file of it, or an xDSL ``ModuleOp``.
    Quant ops are lowered with the pipeline of ``qopt --lower-quant``. ``target="cpu"``
    JIT-compiles for this host; ``target="ptx"`` builds PTX for ``arch`` (default sm_90)
    and returns a GPU kernel. With several functions, the compiled module is returned
    (index it by name). IR that does not parse, verify, lower or translate raises
    :class:`QuantError` with its location (``file:line:col``).
    """
    from xdsl.utils.exceptions import DiagnosticException, ParseError

    if target not in ("cpu", "ptx"):
        raise ValueError(f"target must be 'cpu' or 'ptx', got {target!r}")
    if arch is not None and target != "ptx":
        raise ValueError("arch applies to target='ptx' only")
    try:
        if isinstance(module_or_text, ModuleOp):
            module = module_or_text.clone()
            verify_module(module)
        else:
            module = pipeline.load(*_ir_text(module_or_text))
        compiled = pipeline.compile_lowered(
            pipeline.lower(module, target), target=target, arch=arch
        )
        if target == "ptx":
            return compiled
    except Diagnostic as diagnostic:
        where = None if diagnostic.location == "<unknown>" else diagnostic.location
        raise QuantError(diagnostic.message, where) from None
    except (DiagnosticException, ParseError) as err:  # xDSL errors not located by qopt
        raise QuantError(str(err)) from None
    names = list(compiled)
    if not names:
        raise ValueError("module_or_text holds no func.func to compile")
    return compiled[names[0]] if len(names) == 1 else compiled


def _ir_text(source: Any) -> tuple[str, str]:
    """The IR text of ``compile``'s argument and the file name its locations use."""
    if isinstance(source, str):
        one_line = "\n" not in source
        if not (one_line and (source.endswith(".mlir") or os.path.isfile(source))):
            return source, "<compile>"
        path = source
    elif isinstance(source, os.PathLike):
        path = os.fspath(source)
        if not isinstance(path, str):
            path = os.fsdecode(path)
    else:
        raise TypeError(
            f"module_or_text must be MLIR text, a path to a .mlir file or an xDSL ModuleOp, "
            f"got {type(source).__name__}"
        )
    try:
        with open(path, encoding="utf-8") as file:
            return file.read(), path
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"module_or_text: cannot read the file {path!r} ({err})") from None
