"""Quickstart: the main job of qopt on a bundled example.

Reads examples/nvfp4_dynamic_quant.mlir (NVFP4 dynamic quantization of a bf16 activation,
packed two codes per byte), lowers it with the pipeline of `qopt --lower-quant`, JIT-compiles
it for this CPU, runs it on random data and reports what came out: the e4m3 block scales,
the packed e2m1 codes and the round-trip error after dequantizing them again through the
Python API.

    python3 examples/quickstart.py
"""

from __future__ import annotations

import time
from pathlib import Path

import ml_dtypes
import numpy as np

import qopt

EXAMPLE = Path(__file__).with_name("nvfp4_dynamic_quant.mlir")


def unpack_e2m1(packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Two e2m1 codes per byte, first element in the low nibble (docs/semantics.md section 1)."""
    codes = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(-1)[: np.prod(shape)]
    return codes.astype(np.uint8).view(ml_dtypes.float4_e2m1fn).reshape(shape)


def main() -> None:
    start = time.perf_counter()
    kernel = qopt.compile(EXAMPLE.read_text())
    compiled_in = time.perf_counter() - start

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((128, 256)) * 3).astype(ml_dtypes.bfloat16)
    dq = np.array(0.25, dtype=np.float32)
    packed, scale = kernel(x, dq)

    data = unpack_e2m1(packed, x.shape)
    restored = qopt.dequantize(
        data, scale, axis=1, block_size=16, double_quant_scale=dq, dtype="f32"
    )
    error = np.abs(restored - x.astype(np.float32))
    relative = error.sum() / np.abs(x.astype(np.float32)).sum()

    print(f"example          {EXAMPLE.name}")
    print(f"compiled in      {compiled_in * 1e3:.0f} ms (parse, lower-quant, LLVM, JIT)")
    print(f"input            {x.shape} {x.dtype}")
    print(f"packed e2m1      {packed.shape} {packed.dtype}, first bytes {packed[:8].tolist()}")
    print(f"e4m3 scales      {scale.shape}, row 0: {scale[0, :6].astype(np.float32).tolist()}")
    print(f"round trip       mean |error| {error.mean():.4f}, relative L1 error {relative:.3f}")


if __name__ == "__main__":
    main()
