"""A roofline per benchmark row: what the hot loop costs per element, against the bytes it moves.

    python -m benchmarks.roofline [--size 4096] [--mcpu icelake-server] [KIND ...]

Builds each row's kernel the way the API does (4096x4096 by default), compiles it to host
assembly (``qopt FILE --lower-quant -t asm``), takes its hottest loop (the self-looping
block that stores the most bytes per iteration), and asks ``llvm-mca`` what one iteration
costs on ``--mcpu`` (icelake-server by default: the llvm-mca of LLVM 14 has no Zen 4
model, and Zen 4 runs each 512-bit operation as two 256-bit halves, so its costs are
up to twice these for the vector arithmetic). Prints per row: the bytes one element moves (read + written), the
loop's instructions and mca cycles per element, the compute-bound throughput of two cores
at the host's clock (``/proc/cpuinfo``), and whether the loop writes with streaming stores.
For the dynamic rows this is the data loop only (the statistics loop reads the same
tile again, from the cache).
A row whose compute bound sits near or below the copy's bandwidth (20-55 GB/s on the
project's VM) is compute-bound there; one far above it is memory-bound. Needs
``llvm-mca`` on PATH; a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from collections.abc import Callable

import numpy as np

# (kind, bytes per element moved, output bytes per element, how the API is called)
Call = Callable[[int], object]


def _calls() -> dict[str, tuple[float, int, Call]]:
    import ml_dtypes

    import qopt

    def rng(n: int) -> np.random.Generator:
        return np.random.default_rng(n)

    def x(n: int) -> np.ndarray:
        return rng(n).standard_normal((n, n), dtype=np.float32)

    def axis(n: int) -> np.ndarray:
        return np.full(n, 0.02, np.float32)

    def q8(n: int) -> np.ndarray:
        return rng(n).integers(-128, 128, (n, n), dtype=np.int8)

    z0 = np.int8(0)
    nvfp4 = {"dtype": "f4E2M1FN", "scale_dtype": "f8E4M3FN", "block_size": 16,
             "double_quant_scale": np.float32(1.0)}  # fmt: skip
    return {
        "Q i8 per-tensor": (5, 1, lambda n: qopt.quantize(x(n), 0.02, z0, dtype="i8")),
        "Q i8 per-axis 0": (5, 1, lambda n: qopt.quantize(x(n), axis(n), dtype="i8", axis=0)),
        "Q i8 per-axis last": (5, 1, lambda n: qopt.quantize(x(n), axis(n), dtype="i8", axis=1)),
        "DQ i8 per-tensor": (5, 4, lambda n: qopt.dequantize(q8(n), 0.02, z0)),
        "DQ i8 per-axis last": (5, 4, lambda n: qopt.dequantize(q8(n), axis(n), axis=1)),
        "Q f8E4M3FN": (5, 1, lambda n: qopt.quantize(x(n), 0.02, dtype="f8E4M3FN")),
        "DQ f8E4M3FN": (
            5,
            4,
            lambda n: qopt.dequantize(x(n).astype(ml_dtypes.float8_e4m3fn), 0.02),
        ),
        "Q i4 block 32": (
            5,
            1,
            lambda n: qopt.quantize(
                x(n), np.full((n, n // 32), 0.1, np.float32), dtype="i4", axis=1, block_size=32
            ),
        ),
        "DQ i4 block 32": (
            5,
            4,
            lambda n: qopt.dequantize(
                q8(n).clip(-8, 7).astype(ml_dtypes.int4),
                np.full((n, n // 32), 0.1, np.float32),
                axis=1,
                block_size=32,
            ),
        ),
        "RQ i8 per-axis": (
            2,
            1,
            lambda n: qopt.requantize(q8(n), axis(n), None, axis(n) * 1.5, None, axis=1),
        ),
        "dyn NVFP4 b16": (5, 1, lambda n: qopt.dynamic_quantize(x(n), **nvfp4)),
        "dyn NVFP4 packed": (4.5, 1, lambda n: qopt.dynamic_quantize(x(n), packed=True, **nvfp4)),
        "dyn MXFP8 b32": (
            5,
            1,
            lambda n: qopt.dynamic_quantize(
                x(n), dtype="f8E4M3FN", scale_dtype="f8E8M0FNU", block_size=32
            ),
        ),
        "dyn int8 per-token": (
            5,
            1,
            lambda n: qopt.dynamic_quantize(x(n), dtype="i8", block_shape=[1, -1]),
        ),
    }


def built_module(call: Call, n: int):
    """The one-op module the API builds for ``call`` (captured before it is compiled)."""
    from qopt.api import building

    captured = []
    compile_kernel = building.compile_kernel

    def capture(module):
        captured.append(module.clone())
        return compile_kernel(module)

    building.compile_kernel = capture
    try:
        from qopt.api.kernel_cache import KERNELS

        KERNELS.clear()
        call(n)
    finally:
        building.compile_kernel = compile_kernel
    return captured[0]


_STORE = re.compile(
    r"^\s*(v?movnt\w*|vmov\w*|vpmov\w*|mov\w*)\s+(%[xyz]mm\d+|%\w+),\s*(-?\d*\(.*)$"
)
_WIDTH = {"x": 16, "y": 32, "z": 64}


def _store_bytes(line: str) -> int:
    match = _STORE.match(line)
    if not match:
        return 0
    register = match.group(2)
    if register[1] in _WIDTH and register[2:4] == "mm":
        if match.group(1).startswith("vpmov") and match.group(1) not in ("vpmovdqu",):
            return _WIDTH[register[1]] // 4  # a truncating store (vpmovdb: a quarter)
        return _WIDTH[register[1]]
    return 0


def hot_loop(asm: str) -> tuple[list[str], int]:
    """The self-looping block storing the most bytes per iteration, and those bytes (a
    streaming loop first: the plain one next to it only runs for a misaligned output)."""
    best: tuple[list[str], int] = ([], 0)
    rank = (False, 0)
    label, body = None, []
    for line in asm.splitlines():
        if re.match(r"^\.LBB\d+_\d+:", line):
            label, body = line[:-1], []
            continue
        if label is None or line.strip().startswith((".", "#")):
            continue
        body.append(line)
        jump = re.match(r"^\s*j\w+\s+(\.LBB\d+_\d+)", line)
        if jump:
            if jump.group(1) == label:
                stored = sum(_store_bytes(b) for b in body)
                key = (any("movnt" in b for b in body), stored)
                if stored and key > rank:
                    best, rank = (list(body), stored), key
            label = None
    return best


def mca_cycles(loop: list[str], mcpu: str) -> float:
    done = subprocess.run(
        ["llvm-mca", f"-mcpu={mcpu}", "-iterations=200"],
        input="\n".join(loop) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Total Cycles:\s+(\d+)", done.stdout)
    return int(match.group(1)) / 200 if match else float("nan")


def clock_ghz() -> float:
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(m) for m in re.findall(r"cpu MHz\s*:\s*([\d.]+)", f.read())]
        return max(mhz) / 1000 if mhz else 3.0
    except OSError:
        return 3.0


def main() -> None:
    from qopt.codegen.stages import emit
    from qopt.pipeline import lower

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--mcpu", default="icelake-server")
    parser.add_argument("kinds", nargs="*")
    args = parser.parse_args()
    if shutil.which("llvm-mca") is None:
        raise SystemExit("llvm-mca is not on PATH")
    ghz = clock_ghz()
    header = (
        f"{'row':20} {'B/elem':>6} {'instr/elem':>10} {'cyc/elem':>8} "
        f"{'compute GB/s':>12} {'streaming':>9}"
    )
    print(f"hot loop per row, llvm-mca -mcpu={args.mcpu}, 2 cores at {ghz:.2f} GHz")
    print(header)
    print("-" * len(header))
    for name, (bytes_per, out_bytes, call) in _calls().items():
        if args.kinds and name not in args.kinds:
            continue
        asm = emit(lower(built_module(call, args.size)), "asm")
        loop, stored = hot_loop(asm)
        if not loop:
            print(f"{name:20} (no vector loop found)")
            continue
        elements = stored / out_bytes
        instructions = sum(1 for line in loop if line.strip())
        cycles = mca_cycles(loop, args.mcpu)
        per_elem = cycles / elements
        gbs = 2 * ghz * bytes_per / per_elem
        streaming = "yes" if any("movnt" in line for line in loop) else "no"
        print(
            f"{name:20} {bytes_per:6.1f} {instructions / elements:10.2f} {per_elem:8.3f} "
            f"{gbs:12.1f} {streaming:>9}",
            flush=True,
        )


if __name__ == "__main__":
    main()
