"""GPU throughput of the PTX kernels: GB/s per op on a 256 MB f32 tensor, next to a
device-to-device copy and the torch CUDA equivalents.

    python -m benchmarks.bench_gpu [--mb 256] [--repeat 20] [--arch sm_90]

GB/s counts the bytes each op must move (input + output + parameters), as for the copy
(read + write). Needs a GPU, a CUDA backend for `codegen.gpu_runner` (cuda-python or
CuPy) and CuPy or torch for device arrays; prints why and exits 0 when something is
missing. Per-tensor dynamic quantization is left out: its amax reduction runs on one
GPU thread (codegen.ptx maps only parallel outer dimensions to threads).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

COLS = 4096


def cases(rows: int) -> dict[str, tuple[str, int]]:
    """name -> (quant IR of @f taking %x: rows x COLS f32 [and scales], bytes moved)."""
    x = f"tensor<{rows}x{COLS}xf32>"
    n = rows * COLS

    def q(storage: str, out_bytes: float) -> tuple[str, int]:
        rt = f"tensor<{rows}x{COLS}x{storage}>"
        text = (
            f"func.func @f(%x: {x}) -> {rt} {{\n"
            f"  %q = quant.quantize %x scale(0.05) : {x} -> {rt}\n"
            f"  func.return %q : {rt}\n}}\n"
        )
        return text, int(n * (4 + out_bytes))

    def dyn(storage: str, gran: str, pshape: str, scale: str) -> tuple[str, int]:
        rts = f"tensor<{rows}x{COLS}x{storage}>, tensor<{pshape}{scale}>"
        text = (
            f"func.func @f(%x: {x}) -> ({rts}) {{\n"
            f"  %d, %s = quant.dynamic_quantize %x {gran} : {x} -> {rts}\n"
            f"  func.return %d, %s : {rts}\n}}\n"
        )
        return text, n * 5

    return {
        "quantize f32->i8": q("i8", 1),
        "quantize f32->f8E4M3FN": q("f8E4M3FN", 1),
        "quantize f32->f4E2M1FN": q("f4E2M1FN", 1),
        "dynamic i8 per_token": dyn("i8", "per_token", f"{rows}x1x", "f32"),
        "dynamic mxfp8 (1, 32)": dyn(
            "f8E4M3FN", "per_block(1, 32)", f"{rows}x{COLS // 32}x", "f8E8M0FNU"
        ),
    }


def timed(run: Callable[[], object], sync: Callable[[], object], repeat: int) -> float:
    """Best seconds per call over `repeat` calls (after one warm-up)."""
    run()
    sync()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="f32 input size in MB")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--arch", default="sm_90")
    args = parser.parse_args()

    from qopt.codegen import gpu_runner, ptx

    if not gpu_runner.available():
        print("bench_gpu: skipped - no GPU or no CUDA backend (pip install cuda-python or cupy)")
        return 0
    try:
        import torch

        if not torch.cuda.is_available():
            torch = None
    except ImportError:
        torch = None
    try:
        import cupy
    except ImportError:
        cupy = None
    if torch is None and cupy is None:
        print("bench_gpu: skipped - needs CuPy or torch (CUDA) for device arrays")
        return 0

    rows = args.mb * (1 << 20) // (4 * COLS)
    host = np.random.default_rng(0).normal(0.0, 2.0, (rows, COLS)).astype(np.float32)
    if torch is not None:
        x = torch.from_numpy(host).cuda()
        sync = torch.cuda.synchronize
    else:
        x = cupy.asarray(host)
        sync = cupy.cuda.runtime.deviceSynchronize
    nbytes = host.nbytes
    table: list[tuple[str, float]] = []

    if torch is not None:
        y = torch.empty_like(x)
        table.append(
            ("copy D2D (torch)", 2 * nbytes / timed(lambda: y.copy_(x), sync, args.repeat))
        )
    else:
        y = cupy.empty_like(x)
        copy = lambda: cupy.cuda.runtime.memcpy(y.data.ptr, x.data.ptr, nbytes, 3)  # noqa: E731
        table.append(("copy D2D (cupy)", 2 * nbytes / timed(copy, sync, args.repeat)))

    from qopt.ir.diagnostics import verify_module
    from qopt.passes.lower_quant import LowerQuantPass
    from qopt.qdialect.context import make_context, parse_module

    for name, (text, moved) in cases(rows).items():
        module = parse_module(text, name)
        verify_module(module)
        LowerQuantPass().apply(make_context(), module)
        call = ptx.compile_ptx(module, arch=args.arch)["f"].prepare(x)
        table.append((f"qopt {name}", moved / timed(call.launch, call.synchronize, args.repeat)))

    if torch is not None:
        fp8 = lambda: x.to(torch.float8_e4m3fn)  # noqa: E731
        table.append(("torch .to(float8_e4m3fn)", nbytes * 1.25 / timed(fp8, sync, args.repeat)))
        try:
            qpt = lambda: torch.quantize_per_tensor(x, 0.05, 0, torch.qint8)  # noqa: E731
            table.append(
                ("torch quantize_per_tensor", nbytes * 1.25 / timed(qpt, sync, args.repeat))
            )
        except (RuntimeError, NotImplementedError) as err:
            print(f"torch.quantize_per_tensor on CUDA: {err}", file=sys.stderr)

    print(f"{args.mb} MB f32 input ({rows} x {COLS}), best of {args.repeat}, arch {args.arch}")
    print(f"{'op':<34} {'GB/s':>8}")
    for name, rate in table:
        print(f"{name:<34} {rate / 1e9:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
