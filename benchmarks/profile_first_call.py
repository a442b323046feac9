"""Where the first call of a new kind goes: imports, building, passes, LLVM, code generation.

    python -m benchmarks.profile_first_call [--repeat 5] [--dtype i8]

Runs each repetition in a fresh interpreter (no ``QOPT_CACHE_DIR``: nothing comes from
disk) that times ``import qopt``, the imports the first call pulls in, and each stage of
that first ``qopt.quantize`` on a 64x64 array: building the one-op module, verifying it,
lowering it (lower-quant), printing it (the cache key), translating it to LLVM IR, parsing
and verifying the LLVM IR, the LLVM optimisation pipeline, MCJIT's code generation, and
the call itself. Prints each stage's median and min-max over the repetitions. A
benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

# The child: wraps each stage's function with a timer, then makes the first call.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
t_numpy = time.perf_counter()
import qopt
t_qopt = time.perf_counter()
stages = {}

def timed(module, name, label):
    fn = getattr(module, name)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            stages[label] = stages.get(label, 0.0) + time.perf_counter() - start
    setattr(module, name, wrapper)

before_api = set(sys.modules)
import qopt.api, qopt.api.building as building, qopt.api.compiling as compiling
t_api = time.perf_counter()
heavy = sorted({m.split(".")[0] for m in set(sys.modules) - before_api})
import qopt.pipeline as pipeline
import qopt.passes.lower_quant
import qopt.codegen.jit as jit, qopt.codegen.stages as stages_mod
import qopt.codegen.target as target
t_compiler = time.perf_counter()
timed(building.OpCall, "build", "build module")
timed(compiling, "verify_module", "verify")
timed(pipeline, "lower", "lower-quant (+verify)")
timed(stages_mod, "print_ir", "print IR (cache key)")
timed(stages_mod, "translate_module", "translate to LLVM IR")
timed(stages_mod, "parse_llvm_ir", "LLVM parse + verify")
timed(stages_mod, "optimize", "LLVM optimise (O3)")
timed(jit.llvm, "create_mcjit_compiler", "MCJIT engine")
timed(jit._Engine, "function_address", "function address")
timed(jit.llvm.ExecutionEngine, "finalize_object", "MCJIT code generation")
timed(target, "_config", "host target config")
x = np.ones((64, 64), np.float32)
start = time.perf_counter()
qopt.quantize(x, 0.5, dtype=sys.argv[1])
t_first = time.perf_counter() - start
start = time.perf_counter()
qopt.quantize(x, 0.5, dtype=sys.argv[1])
t_warm = time.perf_counter() - start
rows = {
    "import numpy": t_numpy - t0,
    "import qopt": t_qopt - t_numpy,
    "import qopt.api (xdsl, the dialect)": t_api - t_qopt,
    "import passes + codegen (llvmlite)": t_compiler - t_api,
}
rows.update(("  first call: " + k, v) for k, v in stages.items())
rows["  first call: total"] = t_first
rows["total: imports + first call"] = t_first + t_compiler - t0
rows["warm call"] = t_warm
rows["ml_dtypes imported"] = float("ml_dtypes" in sys.modules)
print(json.dumps({"rows": rows, "imported_by_api": heavy}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dtype", default="i8")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "QOPT_CACHE_DIR"}
    runs = []
    for _ in range(args.repeat):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, args.dtype],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(done.stdout.splitlines()[-1]))
    print(f"first qopt.quantize(64x64 f32 -> {args.dtype}) in a fresh process, {args.repeat} runs")
    header = f"{'stage':52} {'median':>9} {'min':>9} {'max':>9}"
    print(header)
    print("-" * len(header))
    for name in runs[0]["rows"]:
        values = [r["rows"].get(name, 0.0) for r in runs]
        if name == "ml_dtypes imported":
            print(f"{name:52} {'yes' if values[0] else 'no':>9}")
            continue
        med, lo, hi = (1e3 * v for v in (statistics.median(values), min(values), max(values)))
        print(f"{name:52} {med:7.1f}ms {lo:7.1f}ms {hi:7.1f}ms")
    print("top-level packages import qopt.api adds:", ", ".join(runs[0]["imported_by_api"]))


if __name__ == "__main__":
    main()
