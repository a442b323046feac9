"""Shape-generic kernels against shape-specialised ones: the same API calls, same arrays.

    python -m benchmarks.bench_generic [--size 4096] [--repeat 15] [--threads 2]

Every case of ``bench_cpu``'s static and dynamic suites runs twice, the two taking turns
in every round (``rounds_interleaved``): once through the API's shape-generic kernel (its
IR has every extent dynamic, the default) and once through a kernel compiled for the exact
shape (the API's ``OpCall`` with ``generic`` off, as it was before shape-generic kernels).
The last column is generic / static throughput: where it stays below 1 by more than the
spread, a static specialisation would pay (docs/design.md section 5 says where the API
specialises). A benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from benchmarks.bench_cpu import make_cases, make_dynamic_cases, rounds_interleaved
from qopt.api import building


@contextmanager
def specialised() -> Iterator[None]:
    """API calls in this block build (and look up) kernels for their exact shapes."""
    init = building.OpCall.__init__

    def static_init(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        self.generic = False

    building.OpCall.__init__ = static_init  # type: ignore[method-assign]
    try:
        yield
    finally:
        building.OpCall.__init__ = init  # type: ignore[method-assign]


def static_version(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with specialised():
            return fn()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    os.environ.setdefault("QOPT_NUM_THREADS", str(args.threads))
    header = f"{'case':32} {'generic GB/s':>13} {'static GB/s':>12} {'generic/static':>15}"
    print(header)
    print("-" * len(header))
    cases = make_cases(args.size, args.threads) + make_dynamic_cases(args.size, args.threads)
    for case in cases:
        generic, static = rounds_interleaved([case.qopt, static_version(case.qopt)], args.repeat)
        g, s = min(generic), min(static)
        print(
            f"{case.name:32} {case.bytes_moved / g / 1e9:13.1f} "
            f"{case.bytes_moved / s / 1e9:12.1f} {s / g:15.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
