"""The ``qopt`` command-line driver (mlir-opt habits, on xDSL's opt machinery).

    qopt FILE.mlir                      parse, verify, print
    qopt FILE.mlir --lower-quant        run a pass (every registered pass has a flag)
    qopt FILE.mlir -p 'fold-quant,choose-quant-lowering{mode=fused},lower-quant'
    qopt FILE.mlir --lower-quant -t llvm | -t asm | -t 'ptx{arch=sm_80}'
    qopt - < FILE.mlir                  read stdin
    -o OUT, --split-input-file, --verify-diagnostics

Errors in the input are printed as ``file:line:col: error: message`` with exit code 1;
errors of the command line (a file that cannot be opened, an unknown target) as
``qopt: ...`` with exit code 1; never as a Python traceback. Output cut off by a closed
pipe (``qopt ... | head``) ends quietly with exit code 141, as if killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import PassPipeline
from xdsl.targets.mlir import MLIRTarget
from xdsl.utils.arg_spec import parse_spec
from xdsl.utils.exceptions import ArgSpecParseError, PassFailedException
from xdsl.utils.target import Target
from xdsl.xdsl_opt_main import xDSLOptMain

from qopt.commands import SUBCOMMANDS, subcommand_help
from qopt.ir.diagnostics import Diagnostic, verify_module
from qopt.ir.printing import ExactPrinter
from qopt.passes import PASS_OPTIONS, PASS_SUMMARIES, PASSES
from qopt.pipeline import check_sizes, check_translatable, translation_diagnostics
from qopt.qdialect.context import DIALECT_FACTORIES, parse_module


class CommandLineError(Exception):
    """A problem with the command line, not the input: printed as ``qopt: message``."""


@dataclass(frozen=True)
class IRTarget(MLIRTarget):
    """``-t mlir`` (the default): the IR, printed so that it reads back bit for bit."""

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        if self.syntax_highlight:
            super().emit(ctx, module, output)
            return
        printer = ExactPrinter(
            stream=output,
            print_generic_format=self.print_generic_format,
            print_properties_as_attributes=self.print_properties_as_attributes,
            print_debuginfo=self.print_debuginfo,
        )
        printer.print_op(module)
        printer.print_metadata(ctx.loaded_dialects)
        print("\n", file=output)


@dataclass(frozen=True)
class LLVMTarget(Target):
    """``-t llvm``: the LLVM IR codegen compiles (optimized for the host)."""

    name = "llvm"
    optimize: bool = False

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        from qopt.codegen.stages import emit

        with translation_diagnostics():
            output.write(emit(module, "llvm-opt" if self.optimize else "llvm"))


@dataclass(frozen=True)
class AsmTarget(Target):
    """``-t asm``: host assembly of the optimized module."""

    name = "asm"

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        from qopt.codegen.stages import emit

        with translation_diagnostics():
            output.write(emit(module, "asm"))


@dataclass(frozen=True)
class PTXTarget(Target):
    """``-t ptx{arch=sm_90}``: PTX for NVIDIA GPUs (nvptx64)."""

    name = "ptx"
    arch: str = "sm_90"

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        from qopt.codegen.ptx import emit_ptx  # stages.assembly for nvptx, libcalls refused

        with translation_diagnostics():
            try:
                text = emit_ptx(module, arch=self.arch)
            except ValueError as err:  # an unknown arch: codegen.ptx names the known ones
                raise CommandLineError(f"-t ptx: {err}") from None
        output.write(text)


TARGETS: dict[str, type[Target]] = {t.name: t for t in (LLVMTarget, AsmTarget, PTXTarget)}
"""The codegen targets; ``mlir`` (print the IR) is the default and xDSL's others
(``x86-asm``, ``riscv-asm``, ...) are not offered: they do not take qopt's IR."""

TARGET_HELP = (
    "output: the IR (mlir, the default), llvm (LLVM IR), asm (host assembly) or "
    "ptx{arch=sm_90} (PTX); llvm, asm and ptx need lowered IR (--lower-quant)"
)


def _factory(target: type[Target]) -> Callable[[], type[Target]]:
    """A zero-argument target factory (xDSL calls factories with parameters old-style)."""
    return lambda: target


class _PassFlag(argparse.Action):
    """``--PASS-NAME[=OPTIONS]``: appends the pass to the pipeline in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        flags = list(getattr(namespace, "pass_flags", None) or [])
        options = values.strip() if isinstance(values, str) else ""
        pass_name = (option_string or self.option_strings[0]).removeprefix("--")
        flags.append(f"{pass_name}{{{options}}}" if options else pass_name)
        namespace.pass_flags = flags


def version_text() -> str:
    """``qopt --version``: qopt's version and those of the libraries it builds on."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return f"qopt {of('qopt')} (xdsl {of('xdsl')}, llvmlite {of('llvmlite')})"


class QoptMain(xDSLOptMain):
    """xDSL's opt driver with qopt's dialects, passes, targets and diagnostics."""

    def __init__(self, args: Sequence[str] | None = None):
        super().__init__(
            description="qopt: the quantization compiler driver. What each quant op computes, "
            "bit for bit, is in docs/semantics.md.",
            args=args,
        )

    def register_all_dialects(self) -> None:
        for name, factory in DIALECT_FACTORIES.items():
            self.ctx.register_dialect(name, factory)

    def register_all_passes(self) -> None:
        for name, factory in PASSES.items():
            self.register_pass(name, factory)

    def register_all_targets(self) -> None:
        self.available_targets["mlir"] = _factory(IRTarget)
        for name, target in TARGETS.items():
            self.available_targets[name] = _factory(target)

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        arg_parser.epilog = subcommand_help() or None
        arg_parser.formatter_class = argparse.RawDescriptionHelpFormatter
        for action in arg_parser._actions:
            if action.dest == "target":
                action.help = TARGET_HELP
            if action.dest == "version":
                action.version_format = version_text().replace("{", "{{").replace("}", "}}")
                action.help = "print qopt's version (and xDSL's, llvmlite's) and exit"
        group = arg_parser.add_argument_group(
            "passes (run in command-line order, after -p; options as --PASS='a=1 b=2' or "
            "-p 'PASS{a=1 b=2}')"
        )
        for name in PASSES:
            options = PASS_OPTIONS.get(name, {})
            help_text = PASS_SUMMARIES.get(name, "")
            if options:
                help_text += "; options: " + "; ".join(f"{k}={v}" for k, v in options.items())
            group.add_argument(
                f"--{name}",
                action=_PassFlag,
                nargs="?",
                const="",
                metavar="OPTIONS",
                dest="pass_flags",
                help=help_text,
            )

    def setup_pipeline(self) -> None:
        specs = [s for s in (self.args.passes, *(self.args.pass_flags or [])) if s]
        self.pipeline = PassPipeline.parse_spec(
            self.available_passes, ",".join(specs), self._after_each_pass
        )

    def _after_each_pass(self, previous: Any, module: ModuleOp, following: Any) -> None:
        if previous is not None and not self.args.disable_verify:
            verify_module(module)
        if following is not None:
            check_sizes(module)

    def run(self) -> None:
        filename = self.args.input_file or "-"
        display_name = "<stdin>" if filename == "-" else filename
        text = _read_text(filename, display_name)
        target = parse_spec(self.args.target).name
        chunks = [(text, 0)]
        if self.args.split_input_file:
            chunks, offset = [], 0
            for chunk in text.split("// -----"):
                chunks.append((chunk, offset))
                offset += chunk.count("\n")
        output = (
            sys.stdout if self.args.output_file is None else _open_output(self.args.output_file)
        )
        try:
            for index, (chunk, offset) in enumerate(chunks):
                if index:
                    output.write("// -----\n")
                try:
                    module = parse_module(chunk, display_name, self.ctx, line_offset=offset)
                    if not self.args.disable_verify:
                        verify_module(module)
                    self.apply_passes(module)
                    if target in TARGETS:
                        check_translatable(module, target)
                    output.write(self.output_resulting_program(module))
                except Diagnostic as diagnostic:
                    if not self.args.verify_diagnostics:
                        raise
                    output.write(f"{diagnostic}\n")
        finally:
            if output is not sys.stdout:
                output.close()


def _read_text(filename: str, display_name: str) -> str:
    """The input as text; bytes that are not UTF-8 are an error at their position."""
    try:
        if filename == "-":
            stdin = sys.stdin
            data = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode()
        else:
            with open(filename, "rb") as f:
                data = f.read()
    except OSError as err:
        raise CommandLineError(f"cannot open '{filename}': {err.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise Diagnostic(f"{display_name}:{line}:{column}", "the input is not UTF-8 text") from None


def _open_output(filename: str) -> IO[str]:
    try:
        return open(filename, "w", encoding="utf-8")
    except OSError as err:
        raise CommandLineError(f"cannot open '{filename}': {err.strerror}") from None


def _quiet_broken_pipe() -> int:
    """The reader went away (``| head``): drop what is left, exit as SIGPIPE would."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 141


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit code.

    ``qopt SUBCOMMAND ...`` (see :mod:`qopt.commands`) runs that subcommand; anything else
    is the opt driver's command line.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if args and args[0] in SUBCOMMANDS:
            status = SUBCOMMANDS[args[0]].run(args[1:], prog=f"qopt {args[0]}")
            sys.stdout.flush()
            return status
        QoptMain(args).run()
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except Diagnostic as diagnostic:
        print(diagnostic, file=sys.stderr)
        return 1
    except CommandLineError as err:
        print(f"qopt: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except MemoryError as err:  # a pass sized a table by a huge (but allowed) tensor
        print(f"qopt: error: out of memory ({err or 'no detail'})", file=sys.stderr)
        return 1
    except ArgSpecParseError as err:  # a BaseException in xDSL: a bad -p / -t / --PASS spec
        print(f"qopt: {err}", file=sys.stderr)
        return 1
    except PassFailedException as err:
        print(f"qopt: error: {err}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, NotImplementedError) as err:
        print(f"qopt: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # last line of defence: no traceback reaches a user
        print(f"qopt: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
