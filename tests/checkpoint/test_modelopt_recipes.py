"""ModelOpt's weight recipes (qopt.checkpoint.modelopt_recipes), byte for byte.

Always: against ModelOpt 0.47's export arithmetic transcribed into numpy / ml_dtypes below
(every rounding where torch makes it). With torch and nvidia-modelopt installed (the
``modelopt`` extra): against ModelOpt's own functions, a max-calibrated ``TensorQuantizer``
on the same weight followed by ``get_scaling_factor`` / ``NVFP4QTensor`` /
``to_quantized_weight``, as ``unified_export_hf._export_quantized_weight`` calls them.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from qopt.checkpoint import modelopt_recipes as mr

F32 = np.float32
BF16 = np.dtype(ml_dtypes.bfloat16)
E4M3 = np.dtype(ml_dtypes.float8_e4m3fn)
E2M1 = np.dtype(ml_dtypes.float4_e2m1fn)
DTYPES = [np.dtype(F32), np.dtype(np.float16), BF16]


def weights(shape, dtype, seed):
    """Normal weights with the awkward cases: a zero row, a zero block, -0.0, exact ties of
    the 4-bit grids, a tiny block."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape).astype(F32)
    w[0] = 0.0
    w[1, :16] = 0.0
    w[2, :8] = [-0.0, 0.0, -0.0, 3.5, -2.5, 0.25, 0.75, -5.0]
    w[3, 16:32] *= 1e-6
    return w.astype(dtype)


def bits_of(a):
    a = np.ascontiguousarray(a)
    return a.view({1: np.uint8, 2: np.uint16, 4: np.uint32}[a.dtype.itemsize])


def assert_bytes(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    bad = np.flatnonzero(bits_of(got) != bits_of(want))
    assert bad.size == 0, f"{what}: {bad.size} bytes differ, first at {bad[0]}"


# --- ModelOpt's arithmetic in numpy ----------------------------------------------------------


def ref_amax(w, axis=None, block=None):
    a = np.abs(w.astype(F32))
    if block:
        return a.reshape(w.shape[0], -1, block).max(-1)
    return a.max() if axis is None else a.max(axis=1)


def ref_int(w, bits, block=None):
    qmax = 2 ** (bits - 1) - 1
    amax = ref_amax(w, axis=1, block=block)
    amax = np.where(amax == 0, F32(qmax), amax)  # _sanitize_export_amax: 0 -> maxbound
    s = (amax / F32(qmax)).astype(F32)
    rep = np.repeat(s, block, axis=1) if block else s[:, None]
    q = np.clip(np.rint(w.astype(F32) / rep), -qmax - 1, qmax).astype(np.int8)
    if bits == 8:
        return q, s
    pairs = q.T.reshape(w.shape[1], -1, 2)
    packed = ((pairs[..., 0] & 0x0F) | ((pairs[..., 1] & 0x0F) << 4)).astype(np.uint8)
    return np.ascontiguousarray(packed.T), s


def ref_fp8_channel(w):
    amax = ref_amax(w, axis=1)
    s = (np.where(amax == 0, F32(448), amax) / F32(448)).astype(F32)
    return (w.astype(F32) / s[:, None]).astype(E4M3), s


def ref_fp8_tensor(w, amax):
    s = F32(F32(amax) / F32(448))
    return (w.astype(F32) / s).astype(w.dtype).astype(E4M3), np.asarray(s, F32)


def ref_nvfp4(w, amax):
    s2 = F32(F32(amax) / F32(2688))
    r1 = F32(F32(6) * s2)
    v = (ref_amax(w, block=16) / r1).astype(F32)
    v[v == 0] = 1.0
    sq = np.clip(v, F32(2.0**-9), F32(448)).astype(E4M3)
    div = (sq.astype(F32) * s2).astype(F32)
    x = w.astype(F32) / np.repeat(div, 16, axis=1)
    codes = np.clip(x, -6, 6).astype(E2M1).view(np.uint8)
    codes = np.where((x == 0) & ~(w.astype(F32) < 0), 0, codes).astype(np.uint8)  # -0 -> +0
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)
    return packed, sq, np.asarray(s2, F32)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(8, 256), (6, 128), (4, 384)])
def test_int_recipes(dtype, shape):
    w = weights(shape, dtype, 1)
    for got, want, what in [
        (mr.int8_wo(w), ref_int(w, 8), "int8_wo"),
        (mr.int4_awq(w), ref_int(w, 4, 128), "int4_awq"),
        (mr.fp8_per_channel(w), ref_fp8_channel(w), "fp8_pc_pt"),
    ]:
        assert_bytes(got[0], want[0], f"{what} data")
        assert_bytes(got[1], want[1], f"{what} scale")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(8, 256), (5, 32), (1, 16)])
@pytest.mark.parametrize("shared", [None, 7.75])
def test_fp8_tensor_and_nvfp4(dtype, shape, shared):
    w = weights((max(shape[0], 4), shape[1]), dtype, 2)
    amax = float(ref_amax(w)) if shared is None else shared
    data, scale = mr.fp8_per_tensor(w, shared)
    want = ref_fp8_tensor(w, amax)
    assert_bytes(data, want[0], "fp8 data")
    assert_bytes(scale, want[1], "fp8 scale")
    got = mr.nvfp4(w, shared)
    for g, x, what in zip(got, ref_nvfp4(w, amax), ["packed", "scale", "scale_2"]):
        assert_bytes(g, x, f"nvfp4 {what}")


def test_weight_amax_and_errors():
    w = weights((4, 32), BF16, 3)
    assert mr.weight_amax(w) == ref_amax(w)
    with pytest.raises(mr.RecipeError, match="amax is 0.0"):
        mr.nvfp4(np.zeros((2, 16), F32))
    with pytest.raises(mr.RecipeError, match="amax is 0.0"):
        mr.fp8_per_tensor(np.zeros((2, 16), F32))
    with pytest.raises(mr.RecipeError, match="multiple of 16"):
        mr.nvfp4(np.ones((2, 24), F32))
    with pytest.raises(mr.RecipeError, match="rows is odd"):
        mr.int4_awq(np.ones((3, 128), F32))
    with pytest.raises(mr.RecipeError, match="multiple of 128"):
        mr.int4_awq(np.ones((2, 100), F32))
    with pytest.raises(mr.RecipeError, match="2-D"):
        mr.int8_wo(np.ones(4, F32))
    with pytest.raises(mr.RecipeError, match="float32, float16 or bfloat16"):
        mr.int8_wo(np.ones((2, 2), np.float64))


def test_recipes_are_ir_the_pipeline_compiles():
    """The two IR recipes parse, lower (quant.pack included) and verify as qopt IR."""
    from qopt import pipeline

    for text in (mr.nvfp4_ir("bfloat16", (4, 32)), mr.fp8_tensor_ir("float16", (4, 32))):
        module = pipeline.load(text, "<recipe>")
        pipeline.lower(module)


# --- against ModelOpt itself (optional) ------------------------------------------------------


def _modelopt():
    torch = pytest.importorskip("torch")
    pytest.importorskip("modelopt.torch.quantization")
    import warnings

    from modelopt.torch.export import quant_utils as qu
    from modelopt.torch.quantization.config import QuantizerAttributeConfig
    from modelopt.torch.quantization.nn import TensorQuantizer
    from modelopt.torch.quantization.qtensor import NVFP4QTensor

    def calibrated(w, **cfg):
        q = TensorQuantizer(QuantizerAttributeConfig(**cfg))
        q.enable_calib()
        q.disable_quant()
        q(w)
        q.load_calib_amax()
        q.enable_quant()
        q.disable_calib()
        return q

    warnings.simplefilter("ignore")
    return torch, qu, calibrated, NVFP4QTensor


def _torch_dtype(torch, dtype):
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[
        np.dtype(dtype).name
    ]


def _np(t):
    import torch

    if t.dtype == torch.float8_e4m3fn:
        return t.view(torch.uint8).numpy().view(E4M3)
    return t.numpy()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_bytes_match_modelopt(dtype):
    torch, qu, calibrated, nvfp4_tensor = _modelopt()
    for seed, shape in [(4, (8, 256)), (5, (64, 384))]:
        w = weights(shape, dtype, seed)
        tw = torch.from_numpy(w.astype(F32)).to(_torch_dtype(torch, dtype))

        q = calibrated(tw, num_bits=8, axis=0)
        s = qu.get_scaling_factor(q)
        assert_bytes(mr.int8_wo(w)[1], _np(s), "W8A16 weight_scale")
        assert_bytes(mr.int8_wo(w)[0], _np(qu.to_quantized_weight(tw, s, "int8_wo")), "W8A16")

        q = calibrated(tw, num_bits=4, block_sizes={-1: 128})
        s = qu.get_scaling_factor(q)
        data = qu.to_quantized_weight(tw, s, "int4_awq", block_size=128)
        got = mr.int4_awq(w)
        assert_bytes(got[1], _np(s), "W4A16_AWQ weight_scale")
        assert_bytes(got[0], _np(data), "W4A16_AWQ weight")

        q = calibrated(tw, num_bits=(4, 3), axis=0)
        s = qu.get_scaling_factor(q)
        got = mr.fp8_per_channel(w)
        assert_bytes(got[1], _np(s), "FP8_PC_PT weight_scale")
        assert_bytes(got[0], _np(qu.to_quantized_weight(tw, s, "fp8_pc_pt")), "FP8_PC_PT")

        # FP8 per tensor, as _export_quantized_weight computes it (amax to f32, then / 448)
        q = calibrated(tw, num_bits=(4, 3), axis=None)
        s = torch.tensor(q.amax.to(torch.float32) / q.maxbound)
        got = mr.fp8_per_tensor(w)
        assert_bytes(got[1], _np(s), "FP8 weight_scale")
        assert_bytes(got[0], _np(qu.to_quantized_weight(tw, s, "fp8")), "FP8 weight")

        cfg = {"num_bits": (2, 1), "block_sizes": {-1: 16, "type": "dynamic", "scale_bits": (4, 3)}}
        for shared in (None, 9.5):
            q = calibrated(tw, **cfg)
            if shared is not None:  # preprocess_linear_fusion: the group's max amax
                q.amax = torch.tensor(shared)
            s2 = nvfp4_tensor.get_weights_scaling_factor_2_from_quantizer(q)
            s = nvfp4_tensor.get_weights_scaling_factor(tw, 16, s2)[0]
            data = qu.to_quantized_weight(tw, s, "nvfp4", s2, 16)
            got = mr.nvfp4(w, shared)
            assert_bytes(got[2], _np(s2.squeeze()), "NVFP4 weight_scale_2")
            assert_bytes(got[1], _np(s), "NVFP4 weight_scale")
            assert_bytes(got[0], _np(data), "NVFP4 weight")
