"""The qopt driver on mutated inputs: a located error or success, nothing else.

Seeded mutants of the example and FileCheck inputs, one function of a seed file each (a
deleted or replaced token, a truncation, two swapped characters, a duplicated or deleted
line, an extreme number such as 1.0e39, 2**70 or 4400 digits, an element type or a
dimension changed throughout, an unterminated string, deep nesting, bytes that are not
UTF-8) go through the driver twice:
``--fold-quant --lower-quant`` and ``--lower-quant -t llvm``. Each run must exit 0, or
exit 1 with a ``file:line:col: error:`` line; never a traceback, ``internal error``, an
abort or a hang. The mutants run in-process through :func:`qopt.cli.main` (fast, with
an alarm for hangs); a sample also runs as real processes, where an abort or a hang would
show as a signal or a timeout.
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from qopt.cli import main

ROOT = Path(__file__).resolve().parents[2]
SEEDS = sorted(
    [*(ROOT / "examples").glob("*.mlir"), *(ROOT / "filecheck").rglob("*.mlir")],
    key=lambda p: p.relative_to(ROOT).as_posix(),
)
MUTANTS_PER_SEED = 40
RUNS = (("--fold-quant", "--lower-quant"), ("--lower-quant", "-t", "llvm"))
SECONDS_PER_RUN = 10
LOCATED = re.compile(r"^[^\n:]+:\d+:\d+: error: ", re.MULTILINE)

# --------------------------------------------------------------------------------------
# Mutations: each takes the text and a seeded generator and returns the mutant's bytes.

TOKEN = re.compile(r"%[\w.$-]+|@[\w.$-]+|[A-Za-z_][\w.$]*|-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\S")
NUMBER = re.compile(r"(?<![\w%@#.<])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\dx])")
ELEMENT_TYPE = re.compile(
    r"\b(?:f32|f16|bf16|u?i(?:1|2|4|8|16|32|64)|f8E4M3FN|f8E5M2|f4E2M1FN|f8E8M0FNU)\b"
)
DIMENSION = re.compile(r"(?<=[<x])\d+(?=x)")
EXTREMES = (
    "1.0e39",
    "3.5e38",
    "-3.5e38",
    "1.0e-50",
    str(2**70),
    str(2**64),
    str(-(2**63) - 1),
    "9" * 4400,
    "0x7FC00000",
    "0x7F800000",
    "0x1FFFFFFFFF",
    "-0x3F800000",
    "0",
    "-0.0",
    "-1",
)
NAMES = (
    "f32",
    "f16",
    "bf16",
    "i8",
    "ui8",
    "i4",
    "i64",
    "i1",
    "f8E4M3FN",
    "f8E8M0FNU",
    "f4E2M1FN",
    "index",
    "?",
    "0",
    "tensor<f32>",
    "per_axis(7)",
    "per_block(0, 0)",
    "block([-1])",
    "quant.quantize",
    "arith.trunci",
    "linalg.yield",
    "func.return",
)


def _spans(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(text)]


def delete_token(text: str, rng: random.Random) -> str:
    spans = _spans(TOKEN, text)
    start, end = rng.choice(spans)
    return text[:start] + text[end:]


def replace_token(text: str, rng: random.Random) -> str:
    start, end = rng.choice(_spans(TOKEN, text))
    return text[:start] + rng.choice(NAMES) + text[end:]


def extreme_number(text: str, rng: random.Random) -> str:
    spans = _spans(NUMBER, text) or _spans(TOKEN, text)
    start, end = rng.choice(spans)
    return text[:start] + rng.choice(EXTREMES) + text[end:]


def retype(text: str, rng: random.Random) -> str:
    """Every use of one element type becomes another: usually still well-formed IR."""
    present = sorted(set(ELEMENT_TYPE.findall(text)))
    if not present:
        return delete_token(text, rng)
    old = rng.choice(present)
    new = rng.choice(
        [
            "f32",
            "f16",
            "bf16",
            "i8",
            "ui8",
            "i4",
            "i2",
            "i16",
            "i32",
            "i64",
            "f8E4M3FN",
            "f8E5M2",
            "f4E2M1FN",
            "f8E8M0FNU",
            "i1",
        ]
    )
    return re.sub(rf"\b{old}\b", new, text)


def resize(text: str, rng: random.Random) -> str:
    """Every use of one dimension becomes another (0, 1, odd, large)."""
    present = sorted(set(DIMENSION.findall(text)))
    if not present:
        return extreme_number(text, rng)
    old = rng.choice(present)
    new = str(rng.choice([0, 1, 3, 17, 4099]))
    return re.sub(rf"(?<=[<x]){old}(?=x)", new, text)


def truncate(text: str, rng: random.Random) -> str:
    return text[: rng.randrange(len(text))]


def swap_characters(text: str, rng: random.Random) -> str:
    k = rng.randrange(len(text) - 1)
    return text[:k] + text[k + 1] + text[k] + text[k + 2 :]


def duplicate_line(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    k = rng.randrange(len(lines))
    return "".join(lines[: k + 1] + lines[k:])


def delete_line(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    k = rng.randrange(len(lines))
    return "".join(lines[:k] + lines[k + 1 :])


def unterminated_string(text: str, rng: random.Random) -> str:
    k = rng.randrange(len(text))
    filler = rng.choice(["a" * 40, "b" * 28 + "\\q", "x" * 30 + "\v"])
    return text[:k] + '"' + filler + text[k:]


def deep_nesting(text: str, rng: random.Random) -> str:
    depth = rng.choice([60, 400, 3000])
    spans = [m.span() for m in re.finditer(r"\bf32\b|\bi8\b", text)] or _spans(TOKEN, text)
    start, end = rng.choice(spans)
    opener, closer = rng.choice([("tensor<", ">"), ("(", ")"), ("[", "]"), ("{", "}")])
    return text[:start] + opener * depth + text[start:end] + closer * depth + text[end:]


def invalid_bytes(text: str, rng: random.Random) -> bytes:
    k = rng.randrange(len(text))
    junk = rng.choice([b"\xff\xfe", b"\x00", b"\x01", b"\xc3"])
    data = text.encode()
    return data[:k] + junk + data[k:]


MUTATIONS: tuple[Callable[[str, random.Random], str | bytes], ...] = (
    delete_token,
    delete_token,
    replace_token,
    replace_token,
    extreme_number,
    extreme_number,
    retype,
    retype,
    resize,
    truncate,
    swap_characters,
    duplicate_line,
    delete_line,
    unterminated_string,
    deep_nesting,
    invalid_bytes,
)


@dataclass(frozen=True)
class Mutant:
    name: str
    data: bytes


def units(text: str) -> list[str]:
    """The cases of a seed file: its ``// -----`` chunks, each cut before a top-level
    ``func.func`` (a mutant of one case runs much faster than one of a whole file)."""
    found = []
    for chunk in text.split("// -----"):
        pieces = re.split(r"(?m)^(?=func\.func)", chunk)
        found += [p for p in pieces if re.search(r"(?m)^\s*func\.func", p)]
    return found or [text]


def mutants() -> list[Mutant]:
    """Every seed file's mutants, the same on every run."""
    found: list[Mutant] = []
    for seed in SEEDS:
        cases = units(seed.read_text())
        stem = seed.relative_to(ROOT).as_posix()
        rng = random.Random(f"qopt-fuzz:{stem}")
        for k in range(MUTANTS_PER_SEED):
            mutation = MUTATIONS[k % len(MUTATIONS)]
            text = rng.choice(cases)
            out = mutation(text, rng)
            data = out if isinstance(out, bytes) else out.encode()
            found.append(Mutant(f"{stem}#{k}:{mutation.__name__}", data))
    return found


# --------------------------------------------------------------------------------------
# Running the driver


class Hang(BaseException):
    """Raised by the alarm; a BaseException, so the driver's catch-all cannot take it."""


@contextlib.contextmanager
def alarm(seconds: int) -> Iterator[None]:
    def ring(signum: int, frame: object) -> None:
        raise Hang

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_in_process(path: Path, args: tuple[str, ...]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with alarm(SECONDS_PER_RUN), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(path), *args])
    return code, err.getvalue()


def judge(code: int, stderr: str) -> str:
    """'ok', 'located', or what went wrong."""
    if "Traceback" in stderr or "internal error" in stderr:
        return f"crash: {stderr.strip().splitlines()[-1] if stderr.strip() else code}"
    if code == 0:
        return "ok"
    if code == 1 and LOCATED.search(stderr):
        return "located"
    return f"exit {code} without a located error: {stderr.strip()[:300]!r}"


ALL = mutants()


def test_mutant_count() -> None:
    assert len(ALL) >= 300
    assert len({m.data for m in ALL}) > 0.9 * len(ALL)


def test_mutants_give_located_errors_or_success(tmp_path: Path) -> None:
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    for index, mutant in enumerate(ALL):
        path = tmp_path / f"m{index}.mlir"
        path.write_bytes(mutant.data)
        for args in RUNS:
            try:
                code, stderr = run_in_process(path, args)
            except Hang:
                failures.append(f"{mutant.name} {' '.join(args)}: no answer in {SECONDS_PER_RUN}s")
                continue
            verdict = judge(code, stderr)
            outcomes[verdict if verdict in ("ok", "located") else "bad"] += 1
            if verdict not in ("ok", "located"):
                failures.append(f"{mutant.name} {' '.join(args)}: {verdict}")
    print(f"\n{len(ALL)} mutants, {sum(outcomes.values())} runs: {dict(outcomes)}")
    assert not failures, "\n".join(failures[:20])
    assert outcomes["located"] > 0 and outcomes["ok"] > 0


SUBPROCESS_SAMPLE = random.Random("qopt-fuzz:processes").sample(
    [
        m
        for m in ALL
        if m.name.endswith(("unterminated_string", "deep_nesting", "invalid_bytes", "truncate"))
    ],
    16,
)


def test_mutants_in_real_processes(tmp_path: Path) -> None:
    """No abort, no signal, no hang where the in-process runs cannot see them: a sample
    of the mutants as real ``qopt`` processes, all started at once."""
    processes = []
    for index, mutant in enumerate(SUBPROCESS_SAMPLE):
        path = tmp_path / f"m{index}.mlir"
        path.write_bytes(mutant.data)
        command = [sys.executable, "-m", "qopt.cli", str(path), *RUNS[1]]
        processes.append(
            (
                mutant,
                subprocess.Popen(
                    command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
                ),
            )
        )
    failures = []
    for mutant, process in processes:
        try:
            _, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            failures.append(f"{mutant.name}: no answer in 120 s")
            continue
        verdict = judge(process.returncode, stderr.decode(errors="replace"))
        if process.returncode not in (0, 1) or verdict not in ("ok", "located"):
            failures.append(f"{mutant.name}: exit {process.returncode}: {verdict}")
    assert len(SUBPROCESS_SAMPLE) >= 8
    assert not failures, "\n".join(failures)
