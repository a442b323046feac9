"""fold-quant coverage on generated chains with constant parameters: a table, not a test.

For every chain of tests/support/fold_chains.py (round trips, f16 / bf16 pairs, requantize
chains of 2-4 steps, chains of dequantize / quantize pairs) it decides by brute force over
every input code of every channel whether the chain is exactly foldable, runs fold-quant,
and prints per family: chains, exactly foldable, folded (of those), inexact folds (must be
0), and the pass time per chain (mean, 95th percentile, max).

    python -m benchmarks.fold_coverage                 # 1000 chains, seed 0
    python -m benchmarks.fold_coverage --count 3000 --seed 1 --misses 5

Run it from the repository root (it imports ``tests.support``). To measure another
version of the pass, point ``PYTHONPATH`` at that version's ``src``.
"""

from __future__ import annotations

import argparse
import collections
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fold_coverage")
    parser.add_argument("--count", type=int, default=1000, help="chains to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--misses", type=int, default=0, help="print this many missed chains")
    args = parser.parse_args(argv)

    import qopt
    from qopt.passes.fold_quant import FoldQuantPass
    from qopt.qdialect.context import make_context
    from tests.support import fold_chains

    ctx = make_context()
    chains = fold_chains.generate(args.count, args.seed)
    rows: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    times: dict[str, list[float]] = collections.defaultdict(list)
    misses: list[fold_chains.Chain] = []
    for chain in chains:
        verdict = fold_chains.judge(chain, ctx, FoldQuantPass)
        for family in (chain.family, "all"):
            row = rows[family]
            row["chains"] += 1
            row["foldable"] += verdict.foldable
            row["folded"] += verdict.foldable and verdict.folded
            row["inexact"] += not verdict.exact
            times[family].append(verdict.seconds)
        if verdict.foldable and not verdict.folded:
            misses.append(chain)

    print(f"fold-quant coverage: {args.count} chains, seed {args.seed}, qopt at {qopt.__file__}")
    header = ("family", "chains", "foldable", "folded", "folded %", "inexact", "ms mean", "ms p95",
              "ms max")  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for family in sorted(rows, key=lambda f: (f == "all", f)):
        row, t = rows[family], np.array(times[family]) * 1000
        share = 100.0 * row["folded"] / row["foldable"] if row["foldable"] else 100.0
        cells = [family, row["chains"], row["foldable"], row["folded"], f"{share:.1f}",
                 row["inexact"], f"{t.mean():.1f}", f"{np.percentile(t, 95):.1f}",
                 f"{t.max():.1f}"]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |")
    for chain in misses[: args.misses]:
        print(f"\nmissed ({chain.family}, {chain.channels} channels):\n{chain.text[:2000]}")
    return 1 if rows["all"]["inexact"] else 0


if __name__ == "__main__":
    sys.exit(main())
