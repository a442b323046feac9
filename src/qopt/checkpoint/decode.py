"""Decoding compressed-tensors weights back to float32 (verification and error statistics).

The inverse of :mod:`qopt.checkpoint.recipes`: unpack the codes, then ``qopt.dequantize``
with the stored scales (and zero points), per group, block or channel, as the format's
loaders do (vLLM multiplies codes by the scale; NVFP4 by ``scale / global_scale``).
"""

from __future__ import annotations

from collections.abc import Mapping

import ml_dtypes
import numpy as np

from qopt.checkpoint.io import CheckpointError
from qopt.checkpoint.schemes import Scheme


def unpack_int32(words: np.ndarray, bits: int, columns: int) -> np.ndarray:
    """int32 words (codes ``q + 2^(bits-1)``, first in the low bits) -> int8 values."""
    if bits in (4, 8) and words.flags.c_contiguous:
        # little-endian words: the bytes are the codes in order (two nibbles per byte for 4)
        data = words.view(np.uint8).reshape(*words.shape[:-1], -1)
        if bits == 4:
            data = np.stack([data & 0x0F, data >> 4], axis=-1).reshape(*words.shape[:-1], -1)
        return (data[..., :columns].astype(np.int16) - (1 << (bits - 1))).astype(np.int8)
    per = 32 // bits
    w = words.astype(np.int64) & 0xFFFFFFFF
    shifts = np.arange(per, dtype=np.int64) * bits
    codes = (w[..., None] >> shifts) & ((1 << bits) - 1)
    codes = codes.reshape(*words.shape[:-1], -1)[..., :columns]
    return (codes - (1 << (bits - 1))).astype(np.int8)


def unpack_fp4(packed: np.ndarray) -> np.ndarray:
    """Bytes of two e2m1 codes (first in the low nibble) -> float4_e2m1fn values."""
    lo, hi = packed & 0x0F, packed >> 4
    codes = np.stack([lo, hi], axis=-1).reshape(*packed.shape[:-1], -1)
    return codes.view(ml_dtypes.float4_e2m1fn)


def dequantize(scheme: Scheme, tensors: Mapping[str, np.ndarray]) -> np.ndarray:
    """The float32 weight of one module from its local tensors (``weight_packed``...)."""
    import qopt

    try:
        scale = tensors["weight_scale"]
        if scheme.kind == "int":
            n, k = (int(d) for d in tensors["weight_shape"])
            q = unpack_int32(tensors["weight_packed"], scheme.bits, k)
            zp = None
            if not scheme.symmetric:
                zp = unpack_int32(tensors["weight_zero_point"].T, scheme.bits, n).T
            return qopt.dequantize(q, scale, zp, axis=1, block_size=scheme.group_size)
        if scheme.kind == "fp8":
            q = tensors["weight"]
            if scheme.block is not None:
                return qopt.dequantize(q, scale, block_shape=list(scheme.block))
            return qopt.dequantize(q, scale.reshape(-1), axis=0)
        if scheme.kind == "nvfp4":
            q = unpack_fp4(tensors["weight_packed"])
            s = scale.astype(np.float32) / tensors["weight_global_scale"].astype(np.float32)[0]
            return qopt.dequantize(q, s, axis=1, block_size=scheme.group_size)
        q = unpack_fp4(tensors["weight_packed"]) if scheme.kind == "mxfp4" else tensors["weight"]
        return qopt.dequantize(
            q, scale.view(ml_dtypes.float8_e8m0fnu), axis=1, block_size=scheme.group_size
        )
    except KeyError as e:
        raise CheckpointError(f"missing tensor {e.args[0]} for scheme {scheme.name}") from None
