"""NVIDIA ModelOpt's weight export arithmetic (``modelopt.torch.export``), on qopt's kernels.

What ModelOpt 0.47's unified Hugging Face export writes for a Linear weight ``W`` (``N x K``,
dtype ``T`` = f32 / f16 / bf16) whose weight quantizer saw ``W`` itself (max calibration;
the data-free case), step by step from ``unified_export_hf._export_quantized_weight``,
``quant_utils.to_quantized_weight`` and ``NVFP4QTensor``:

* ``W8A16`` (``int8_wo``): ``s = amax(row) / 127`` (f32; a zero row: 1.0, the quantizer's
  ``maxbound`` substitute), ``q = clamp(rne(W / s), -128, 127)``: int8 ``N x K``.
* ``W4A16_AWQ`` (``int4_awq``, no smoothing): ``s = amax(block of G along K) / 7`` (f32
  ``N x K/G``), ``q = clamp(rne(W / s), -8, 7)`` packed two rows per byte:
  ``byte[r, k] = q[2r, k] & 0xF | q[2r + 1, k] << 4`` (uint8 ``N/2 x K``).
* ``FP8_PER_CHANNEL_PER_TOKEN`` (``fp8_pc_pt``): ``s = amax(row) / 448`` (f32 ``N``),
  ``q = e4m3(W / s)``.
  These three are exactly ``qopt.dynamic_quantize`` (quant dialect ops).
* ``FP8`` (per tensor): ``s = amax / 448`` (f32, 0-d; a fused q/k/v or gate/up group shares
  the amax), ``q = e4m3(T(W / s))``: torch divides a ``T`` tensor by a 0-d f32 tensor in
  ``T``, so the quotient is rounded to ``T`` before the e4m3 cast (a double rounding for
  f16 / bf16 weights).
* ``NVFP4`` / ``W4A16_NVFP4``: ``s2 = amax / 2688`` (f32, 0-d, shared by the fused group),
  per block of 16: ``v = amax_b / f32(6 * s2)``, ``v == 0 -> 1``,
  ``sq = e4m3(clamp(v, 2^-9, 448))``; ``q = e2m1(W / f32(f32(sq) * s2))`` rounded to
  nearest even and saturated, except that ``-0.0`` becomes ``+0`` (ModelOpt's ``_cast_fp4``
  takes the sign from ``W < 0``); packed two per byte along ``K`` (uint8 ``N x K/2``).
  It multiplies by ``fp8 * scale_2`` where compressed-tensors divides by ``fp8 / global``.

The last two are not the quant ops' one-rounding semantics, so they are written as
``linalg.generic`` IR (statistic, parameters, elements; ``quant.pack`` for the 4-bit codes)
that qopt's pipeline lowers, fuses and JIT-compiles (:func:`nvfp4_ir`, :func:`fp8_tensor_ir`).
The recipes are in docs/checkpoint-recipes.md.
"""

from __future__ import annotations

import functools
from typing import Any

import ml_dtypes
import numpy as np

TYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}
E4M3 = np.dtype(ml_dtypes.float8_e4m3fn)
NVFP4_BLOCK = 16


class RecipeError(ValueError):
    """A weight the ModelOpt recipe cannot quantize (the message says why)."""


def _type(weight: np.ndarray) -> str:
    name = np.dtype(weight.dtype).name
    if name not in TYPES:
        raise RecipeError(f"weights must be float32, float16 or bfloat16, got {name}")
    return TYPES[name]


def _check_2d(weight: np.ndarray) -> tuple[int, int]:
    if weight.ndim != 2:
        raise RecipeError(f"a Linear weight is 2-D, got shape {weight.shape}")
    return weight.shape


# --- the recipes that are quant dialect ops ------------------------------------------------


def int8_wo(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``W8A16``: (int8 ``N x K``, f32 scale ``N``)."""
    import qopt

    _check_2d(weight)
    _type(weight)
    data, scale = qopt.dynamic_quantize(weight, dtype="i8", axis=0)
    return data, scale


def int4_awq(weight: np.ndarray, group_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """``W4A16_AWQ`` without smoothing: (uint8 ``N/2 x K``, f32 scale ``N x K/G``)."""
    import qopt

    n, k = _check_2d(weight)
    _type(weight)
    if n % 2:
        raise RecipeError(f"ModelOpt packs int4 rows in pairs: {n} rows is odd")
    if k % group_size:
        raise RecipeError(f"ModelOpt's int4 needs K ({k}) to be a multiple of {group_size}")
    # Quantize W^T (a strided view, no copy): its C order pairs consecutive rows of W,
    # which is ModelOpt's packing; the kernel writes the bytes of a K x N/2 array.
    packed, scale_t = qopt.dynamic_quantize(
        weight.T, dtype="i4", axis=0, block_size=group_size, packed=True
    )
    return np.ascontiguousarray(packed.reshape(k, n // 2).T), np.ascontiguousarray(scale_t.T)


def fp8_per_channel(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``FP8_PER_CHANNEL_PER_TOKEN``: (float8_e4m3fn ``N x K``, f32 scale ``N``)."""
    import qopt

    _check_2d(weight)
    _type(weight)
    return qopt.dynamic_quantize(weight, dtype="f8E4M3FN", axis=0)


# --- the recipes written as linalg IR ------------------------------------------------------


def _amax_generic(t: str, shape: tuple[int, int], out_shape: str, out_map: str, its: str) -> str:
    """A reduction generic: the largest |x| per output element, as f32 bits in i32 (NaN,
    whose bits are above inf's, propagates, as torch's amax)."""
    n, k = shape
    ext, xf = _load(t)
    return f"""
  %amax_init = arith.constant dense<0> : tensor<{out_shape}xi32>
  %amax = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
      affine_map<(d0, d1) -> ({out_map})>], iterator_types = [{its}]}}
      ins(%w : tensor<{n}x{k}x{t}>) outs(%amax_init : tensor<{out_shape}xi32>) {{
  ^bb0(%x: {t}, %acc: i32):{ext}
    %bits = arith.bitcast {xf} : f32 to i32
    %mask = arith.constant 2147483647 : i32
    %abs = arith.andi %bits, %mask : i32
    %m = arith.maxsi %acc, %abs : i32
    linalg.yield %m : i32
  }} -> tensor<{out_shape}xi32>"""


def _load(t: str) -> tuple[str, str]:
    """The line that widens a body's ``%x`` of type ``t`` to f32 (none for f32), and the
    f32 value's name."""
    if t == "f32":
        return "", "%x"
    return f"\n    %xf = arith.extf %x : {t} to f32", "%xf"


def amax_ir(dtype: str, shape: tuple[int, int]) -> str:
    """``@main(W) -> amax`` (f32, one element): a whole weight's largest |x|."""
    t, (n, k) = TYPES[dtype], shape
    return f"""func.func @main(%w: tensor<{n}x{k}x{t}>) -> tensor<1xf32> {{
{_amax_generic(t, shape, "1", "0", '"reduction", "reduction"')}
  %e = tensor.empty() : tensor<1xf32>
  %out = linalg.generic {{indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
      iterator_types = ["parallel"]}} ins(%amax : tensor<1xi32>) outs(%e : tensor<1xf32>) {{
  ^bb0(%a: i32, %o: f32):
    %f = arith.bitcast %a : i32 to f32
    linalg.yield %f : f32
  }} -> tensor<1xf32>
  func.return %out : tensor<1xf32>
}}
"""


def fp8_tensor_ir(dtype: str, shape: tuple[int, int]) -> str:
    """``@main(W, amax[1]) -> (e4m3 N x K, scale[1])``: ModelOpt's per-tensor FP8."""
    t, (n, k) = TYPES[dtype], shape
    round_t = (
        ""
        if t == "f32"
        else f"""
    %vt = arith.truncf %v0 : f32 to {t}
    %v = arith.extf %vt : {t} to f32"""
    )
    v = "%v0" if t == "f32" else "%v"
    ext, xf = _load(t)
    return f"""func.func @main(%w: tensor<{n}x{k}x{t}>, %amax: tensor<1xf32>)
    -> (tensor<{n}x{k}xf8E4M3FN>, tensor<1xf32>) {{
  %se = tensor.empty() : tensor<1xf32>
  %s = linalg.generic {{indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
      iterator_types = ["parallel"]}} ins(%amax : tensor<1xf32>) outs(%se : tensor<1xf32>) {{
  ^bb0(%a: f32, %o: f32):
    %c448 = arith.constant 4.480000e+02 : f32
    %q = arith.divf %a, %c448 : f32
    linalg.yield %q : f32
  }} -> tensor<1xf32>
  %de = tensor.empty() : tensor<{n}x{k}xf8E4M3FN>
  %d = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
      affine_map<(d0, d1) -> (0)>, affine_map<(d0, d1) -> (d0, d1)>],
      iterator_types = ["parallel", "parallel"]}}
      ins(%w, %s : tensor<{n}x{k}x{t}>, tensor<1xf32>) outs(%de : tensor<{n}x{k}xf8E4M3FN>) {{
  ^bb0(%x: {t}, %sc: f32, %o: f8E4M3FN):{ext}
    %v0 = arith.divf {xf}, %sc : f32{round_t}
    %lo = arith.constant -4.480000e+02 : f32
    %hi = arith.constant 4.480000e+02 : f32
    %c0 = arith.maximumf {v}, %lo : f32
    %c1 = arith.minimumf %c0, %hi : f32
    %r = arith.truncf %c1 : f32 to f8E4M3FN
    linalg.yield %r : f8E4M3FN
  }} -> tensor<{n}x{k}xf8E4M3FN>
  func.return %d, %s : tensor<{n}x{k}xf8E4M3FN>, tensor<1xf32>
}}
"""


def nvfp4_ir(dtype: str, shape: tuple[int, int]) -> str:
    """``@main(W, amax[1]) -> (packed N*K/2, e4m3 N x K/16, scale_2[1])``: ModelOpt's NVFP4."""
    t, (n, k) = TYPES[dtype], shape
    b = k // NVFP4_BLOCK
    ext, xf = _load(t)
    stat = _amax_generic(
        t, shape, f"{n}x{b}", f"d0, d1 floordiv {NVFP4_BLOCK}", '"parallel", "reduction"'
    )
    return f"""func.func @main(%w: tensor<{n}x{k}x{t}>, %gamax: tensor<1xf32>)
    -> (tensor<{n * k // 2}xui8>, tensor<{n}x{b}xf8E4M3FN>, tensor<1xf32>) {{
  %s2e = tensor.empty() : tensor<1xf32>
  %s2 = linalg.generic {{indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
      iterator_types = ["parallel"]}} ins(%gamax : tensor<1xf32>) outs(%s2e : tensor<1xf32>) {{
  ^bb0(%a: f32, %o: f32):
    %c = arith.constant 2.688000e+03 : f32
    %q = arith.divf %a, %c : f32
    linalg.yield %q : f32
  }} -> tensor<1xf32>
{stat}
  %sqe = tensor.empty() : tensor<{n}x{b}xf8E4M3FN>
  %sq = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
      affine_map<(d0, d1) -> (0)>, affine_map<(d0, d1) -> (d0, d1)>],
      iterator_types = ["parallel", "parallel"]}}
      ins(%amax, %s2 : tensor<{n}x{b}xi32>, tensor<1xf32>) outs(%sqe : tensor<{n}x{b}xf8E4M3FN>) {{
  ^bb0(%a: i32, %g: f32, %o: f8E4M3FN):
    %ab = arith.bitcast %a : i32 to f32
    %six = arith.constant 6.000000e+00 : f32
    %r1 = arith.mulf %g, %six : f32
    %v = arith.divf %ab, %r1 : f32
    %zero = arith.constant 0.000000e+00 : f32
    %one = arith.constant 1.000000e+00 : f32
    %isz = arith.cmpf oeq, %v, %zero : f32
    %v1 = arith.select %isz, %one, %v : f32
    %lo = arith.constant 0.001953125 : f32
    %hi = arith.constant 4.480000e+02 : f32
    %c0 = arith.maximumf %v1, %lo : f32
    %c1 = arith.minimumf %c0, %hi : f32
    %r = arith.truncf %c1 : f32 to f8E4M3FN
    linalg.yield %r : f8E4M3FN
  }} -> tensor<{n}x{b}xf8E4M3FN>
  %de = tensor.empty() : tensor<{n}x{k}xf4E2M1FN>
  %d = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
      affine_map<(d0, d1) -> (d0, d1 floordiv {NVFP4_BLOCK})>, affine_map<(d0, d1) -> (0)>,
      affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}}
      ins(%w, %sq, %s2 : tensor<{n}x{k}x{t}>, tensor<{n}x{b}xf8E4M3FN>, tensor<1xf32>)
      outs(%de : tensor<{n}x{k}xf4E2M1FN>) {{
  ^bb0(%x: {t}, %s: f8E4M3FN, %g: f32, %o: f4E2M1FN):{ext}
    %sf = arith.extf %s : f8E4M3FN to f32
    %div = arith.mulf %sf, %g : f32
    %v = arith.divf {xf}, %div : f32
    %zero = arith.constant 0.000000e+00 : f32
    %v0 = arith.addf %v, %zero : f32
    %lo = arith.constant -6.000000e+00 : f32
    %hi = arith.constant 6.000000e+00 : f32
    %c0 = arith.maximumf %v0, %lo : f32
    %c1 = arith.minimumf %c0, %hi : f32
    %r = arith.truncf %c1 : f32 to f4E2M1FN
    linalg.yield %r : f4E2M1FN
  }} -> tensor<{n}x{k}xf4E2M1FN>
  %p = quant.pack %d : tensor<{n}x{k}xf4E2M1FN> -> tensor<{n * k // 2}xui8>
  func.return %p, %sq, %s2 : tensor<{n * k // 2}xui8>, tensor<{n}x{b}xf8E4M3FN>, tensor<1xf32>
}}
"""


@functools.lru_cache(maxsize=256)
def _kernel(kind: str, dtype: str, shape: tuple[int, int]) -> Any:
    import qopt

    build = {"amax": amax_ir, "fp8_tensor": fp8_tensor_ir, "nvfp4": nvfp4_ir}[kind]
    return qopt.compile(build(dtype, shape))


def weight_amax(weight: np.ndarray) -> np.float32:
    """The largest |x| of a 2-D weight (f32), what the fused group's shared scale uses."""
    n, k = _check_2d(weight)
    _type(weight)
    if weight.size == 0:
        return np.float32(0.0)
    (amax,) = _outputs(_kernel("amax", weight.dtype.name, (n, k))(np.ascontiguousarray(weight)))
    return np.float32(amax[0])


def _outputs(result: Any) -> tuple:
    return result if isinstance(result, tuple) else (result,)


def _amax_arg(weight: np.ndarray, amax: float | None) -> np.ndarray:
    value = weight_amax(weight) if amax is None else np.float32(amax)
    if not np.isfinite(value) or value <= 0:
        raise RecipeError(
            f"the weight's amax is {float(value)}: ModelOpt's per-tensor scale would be "
            f"{'0' if value == 0 else 'not finite'} and its export NaN"
        )
    return np.array([value], np.float32)


def fp8_per_tensor(weight: np.ndarray, amax: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``FP8`` per tensor: (float8_e4m3fn ``N x K``, f32 0-d scale); ``amax``: the fused
    group's (default: the weight's own)."""
    n, k = _check_2d(weight)
    _type(weight)
    kernel = _kernel("fp8_tensor", weight.dtype.name, (n, k))
    data, scale = _outputs(kernel(np.ascontiguousarray(weight), _amax_arg(weight, amax)))
    return data, scale.reshape(())


def nvfp4(
    weight: np.ndarray, amax: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``NVFP4``: (uint8 ``N x K/2``, float8_e4m3fn ``N x K/16``, f32 0-d ``weight_scale_2``)."""
    n, k = _check_2d(weight)
    _type(weight)
    if k % NVFP4_BLOCK:
        raise RecipeError(f"ModelOpt's NVFP4 needs K ({k}) to be a multiple of {NVFP4_BLOCK}")
    kernel = _kernel("nvfp4", weight.dtype.name, (n, k))
    packed, scale, scale_2 = _outputs(kernel(np.ascontiguousarray(weight), _amax_arg(weight, amax)))
    return packed.reshape(n, k // 2), scale, scale_2.reshape(())
