"""codegen.ptx: every op x format family lowered by lower-quant, compiled to PTX.

Without a GPU: the PTX has a ``.entry`` per phase and no ``.extern .func`` (libcall), and
``ptxas`` (skipped when absent) assembles it for sm_80 and sm_90. With a GPU and a CUDA
backend (cuda-python or CuPy): every case runs on the GPU and on the CPU JIT and the
results agree bit for bit (any NaN equals any NaN).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp

from qopt.codegen import ptx
from qopt.ir.diagnostics import verify_module
from qopt.passes.lower_quant import LowerQuantPass
from qopt.qdialect.context import make_context, parse_module

ROOT = Path(__file__).resolve().parents[2]
ARCHS = ("sm_80", "sm_90")

needs_ptxas = pytest.mark.skipif(
    shutil.which("ptxas") is None, reason="ptxas (CUDA toolkit) is not on PATH"
)


def _gpu_reason() -> str:
    try:
        from qopt.codegen import gpu_runner
    except ImportError as err:  # pragma: no cover
        return f"codegen.gpu_runner cannot be imported: {err}"
    if not gpu_runner.available():
        return "no GPU or no CUDA backend (cuda-python / CuPy)"
    return ""


def f(args: str, results: str, body: str, returned: str) -> str:
    """A one-function module ``@f``."""
    return f"func.func @f({args}) -> ({results}) {{\n{body}\n  func.return {returned} : {results}\n}}\n"


X = "%x: tensor<8x64xf32>"
XT = "tensor<8x64xf32>"


def quantize(storage: str, gran: str, pshape: str, zp: bool) -> str:
    s = f"tensor<{pshape}f32>"
    z = f"tensor<{pshape}{storage}>"
    args = f"{X}, %s: {s}" + (f", %z: {z}" if zp else "")
    clauses = f"scale(%s : {s})" + (f" zero_point(%z : {z})" if zp else "") + f" {gran}"
    rt = f"tensor<8x64x{storage}>"
    return f(args, rt, f"  %q = quant.quantize %x {clauses} : {XT} -> {rt}", "%q")


def dequantize(storage: str, gran: str, pshape: str, scale_type: str = "f32") -> str:
    s = f"tensor<{pshape}{scale_type}>"
    qt = f"tensor<8x64x{storage}>"
    return f(
        f"%q: {qt}, %s: {s}",
        XT,
        f"  %d = quant.dequantize %q scale(%s : {s}) {gran} : {qt} -> {XT}",
        "%d",
    )


def requantize(lowering: str) -> str:
    qt = "tensor<8x64xi8>"
    return f(
        f"%q: {qt}, %a: tensor<64xf32>",
        qt,
        "  %r = quant.requantize %q in(scale(%a : tensor<64xf32>) per_axis(1)) "
        f'out(scale(0.5) zero_point(-3)) {{lowering = "{lowering}"}} : {qt} -> {qt}',
        "%r",
    )


def dynamic(storage: str, gran: str, pshape: str, scale_type: str = "f32", extra: str = "") -> str:
    rts = f"tensor<8x64x{storage}>, tensor<{pshape}{scale_type}>"
    return f(
        X,
        rts,
        f"  %d, %s = quant.dynamic_quantize %x {gran} {extra} : {XT} -> {rts}",
        "%d, %s",
    )


GENERATED = {
    "quantize_i8_per_tensor": quantize("i8", "", "", True),
    "quantize_ui8_per_axis": quantize("ui8", "per_axis(1)", "64x", True),
    "quantize_i4_per_block": quantize("i4", "per_block(1, 16)", "8x4x", False),
    "quantize_f8E4M3FN": quantize("f8E4M3FN", "per_axis(0)", "8x", False),
    "quantize_f8E5M2": quantize("f8E5M2", "", "", False),
    "quantize_f4E2M1FN_per_block": quantize("f4E2M1FN", "per_block(1, 32)", "8x2x", False),
    "dequantize_i8_per_axis": dequantize("i8", "per_axis(1)", "64x"),
    "dequantize_i4_per_block": dequantize("i4", "per_block(1, 16)", "8x4x"),
    "dequantize_f8E4M3FN": dequantize("f8E4M3FN", "", ""),
    "dequantize_nvfp4": dequantize("f4E2M1FN", "per_block(1, 16)", "8x4x", "f8E4M3FN"),
    "requantize_fused": requantize("fused"),
    "requantize_composite": requantize("composite"),
    "requantize_lut": requantize("lut"),
    "dynamic_i8_per_token": dynamic("i8", "per_token", "8x1x"),
    "dynamic_i8_per_tensor": dynamic("i8", "", ""),
    "dynamic_mxfp4": dynamic("f4E2M1FN", "per_block(1, 32)", "8x2x", "f8E8M0FNU"),
    "dynamic_nvfp4": dynamic(
        "f4E2M1FN", "per_block(1, 16)", "8x4x", "f8E4M3FN", "double_quant(2.0)"
    ),
    "fake_quantize_per_token": f(
        X, XT, f"  %y = quant.fake_quantize %x storage(i8) per_token : {XT} -> {XT}", "%y"
    ),
    "fake_quantize_static": f(
        X,
        XT,
        f"  %y = quant.fake_quantize %x storage(f8E4M3FN) scale(0.25) : {XT} -> {XT}",
        "%y",
    ),
    "pack_unpack_i4": f(
        "%q: tensor<8x64xi4>",
        "tensor<256xui8>, tensor<8x64xi4>",
        "  %p = quant.pack %q : tensor<8x64xi4> -> tensor<256xui8>\n"
        "  %u = quant.unpack %p : tensor<256xui8> -> tensor<8x64xi4>",
        "%p, %u",
    ),
}
EXAMPLES = {p.stem: p.read_text() for p in sorted((ROOT / "examples").glob("*.mlir"))}
CASES = {**GENERATED, **EXAMPLES}


def lowered(name: str) -> ModuleOp:
    module = parse_module(CASES[name], f"{name}.mlir")
    verify_module(module)
    LowerQuantPass().apply(make_context(), module)
    verify_module(module)
    return module


@pytest.mark.parametrize("name", list(CASES))
def test_ptx_structure_and_ptxas(name: str) -> None:
    """One ``.entry`` per phase with the thread-index registers, no libcalls, ptxas accepts
    it for every arch in ARCHS."""
    module = lowered(name)
    for arch in ARCHS:
        compiled = ptx.compile_ptx(module, arch=arch)
        text = compiled.ptx
        assert f".target {arch}" in text
        assert re.search(r"^\.version \d+\.\d+", text, re.MULTILINE)
        assert ".extern .func" not in text
        phases = [p.function for k in compiled.kernels.values() for p in k.phases]
        for phase in phases:
            assert re.search(rf"\.visible \.entry {re.escape(phase)}\(", text), phase
        assert text.count(".entry") == len(phases)
        assert "%tid.x" in text and "%ctaid.x" in text
        if shutil.which("ptxas") is not None:
            assert ptx.assemble(text, arch)[:4] == b"\x7fELF"


def test_serial_phase_is_guarded() -> None:
    """A per-tensor reduction is not parallel: it runs on thread 0 of block 0 only."""
    compiled = ptx.compile_ptx(lowered("dynamic_i8_per_tensor"))
    (kernel,) = compiled.kernels.values()
    assert not all(p.parallel for p in kernel.phases)
    assert any(p.parallel for p in kernel.phases)


def test_no_fma_contraction() -> None:
    """Rounded float ops keep their ``.rn`` form, which ptxas may not fuse into fma."""
    text = ptx.emit_ptx(lowered("quantize_i8_per_tensor"))
    assert "div.rn.f32" in text and "cvt.rni.f32.f32" in text
    assert "fma" not in text and not re.search(r"\b(mul|add)\.f32", text)


def test_bad_arch() -> None:
    with pytest.raises(ValueError, match="sm_90"):
        ptx.ptx_config("compute_90")


@needs_ptxas
def test_assemble_reports_ptxas_message() -> None:
    with pytest.raises(ptx.PtxasError, match="ptxas -arch=sm_90 failed"):
        ptx.assemble(".version 7.8\n.target sm_90\n.address_size 64\nnot ptx\n", "sm_90")


# ---------------------------------------------------------------------------------------
# On a GPU: bit for bit against the CPU JIT


def _is_float(dtype: np.dtype) -> bool:
    try:
        ml_dtypes.finfo(dtype)
    except (TypeError, ValueError):
        return False
    return True


def _random(name: str, shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator):
    if _is_float(dtype):
        if name in ("s", "a", "scale", "scales"):
            values = rng.uniform(0.01, 0.2, shape)
        else:
            values = rng.normal(0.0, 2.0, shape)
            if values.size > 3:
                values.flat[:3] = [0.0, -0.0, np.inf]
        return values.astype(dtype)
    info = ml_dtypes.iinfo(dtype)
    return rng.integers(int(info.min), int(info.max) + 1, shape).astype(dtype)


@pytest.mark.parametrize("name", list(CASES))
def test_gpu_matches_cpu(name: str) -> None:
    reason = _gpu_reason()
    if reason:
        pytest.skip(reason)
    from qopt.codegen.jit import compile_module

    module = lowered(name)
    cpu = compile_module(module)
    gpu = ptx.compile_ptx(module)
    rng = np.random.default_rng(0)
    for fname in cpu:
        args = [_random(s.name, s.shape, s.dtype, rng) for s in cpu[fname].spec.args]
        want = cpu[fname](*args)
        got = gpu[fname](*args)
        want = want if isinstance(want, tuple | list) else (want,)
        got = got if isinstance(got, tuple | list) else (got,)
        for k, (g, w) in enumerate(zip(got, want)):
            _assert_same_bits(np.asarray(g), np.asarray(w), f"{name} @{fname} result {k}")


def _assert_same_bits(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, what
    g = np.ascontiguousarray(got).view(f"u{got.dtype.itemsize}")
    w = np.ascontiguousarray(want).view(f"u{want.dtype.itemsize}")
    same = g == w
    if _is_float(got.dtype):
        with np.errstate(invalid="ignore"):
            same |= np.isnan(got.astype(np.float32)) & np.isnan(want.astype(np.float32))
    assert same.all(), f"{what}: {int((~same).sum())} elements differ"
