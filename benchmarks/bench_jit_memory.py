"""JIT memory: resident set size while compiling many distinct modules.

    python -m benchmarks.bench_jit_memory [--compiles 2000] [--every 500]

Compiles `--compiles` distinct one-kernel modules (x + k over 4 floats) with
`codegen.jit.compile_module` and prints, every `--every` compiles, the RSS, how many modules
the memory cache holds (an LRU of 512) and how many MCJIT engines are alive; then the same
after `clear_cache()`, and after `malloc_trim` (freed memory glibc had not returned to the
OS). This is a benchmark, not a test: nothing here asserts (tests/test_jit.py does).
"""

from __future__ import annotations

import argparse
import ctypes
import time

from qopt.codegen import cache, jit


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def add_constant(k: int) -> str:
    m = "affine_map<(d0) -> (d0)>"
    return f"""\
func.func @add(%x: tensor<4xf32>) -> tensor<4xf32> {{
  %e = tensor.empty() : tensor<4xf32>
  %y = linalg.generic {{indexing_maps = [{m}, {m}], iterator_types = ["parallel"]}} ins(%x : tensor<4xf32>) outs(%e : tensor<4xf32>) {{
  ^bb0(%a: f32, %b: f32):
    %c = arith.constant {k}.0 : f32
    %r = arith.addf %a, %c : f32
    linalg.yield %r : f32
  }} -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compiles", type=int, default=2000)
    parser.add_argument("--every", type=int, default=500)
    args = parser.parse_args()

    jit.compile_module(add_constant(-1))  # imports, target machine, first-use allocations
    jit.clear_cache()
    start = time.perf_counter()
    print(f"{'compiles':>9} {'RSS MB':>8} {'cached':>7} {'engines':>8} {'seconds':>8}")

    def row(label: str) -> None:
        seconds = time.perf_counter() - start
        cached, engines = cache.MEMORY_CACHE.count("jit"), jit.live_engines()
        print(f"{label:>9} {rss_mb():8.1f} {cached:7d} {engines:8d} {seconds:8.1f}", flush=True)

    row("0")
    for k in range(1, args.compiles + 1):
        jit.compile_module(add_constant(k))
        if k % args.every == 0 or k == args.compiles:
            row(str(k))
    jit.clear_cache()
    row("cleared")
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        return
    row("trimmed")


if __name__ == "__main__":
    main()
