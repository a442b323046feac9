"""codegen.floatfmt against ml_dtypes, bit for bit, through JIT-compiled conversion loops.

Every conversion is checked three ways: in a scalar loop that LLVM vectorizes at O3, in the
same loop compiled without vectorization (scalar machine code), and in a loop that calls the
helpers on `<8 x float>` values directly. The run over all 2**32 f32 inputs is marked
`exhaustive` and runs only with QOPT_EXHAUSTIVE=1 (4 to 6 minutes on 2 cores, most of it
numpy's float16 cast).
"""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import llvmlite.binding as llvm
import ml_dtypes
import numpy as np
import pytest
from llvmlite import ir

from qopt.codegen import floatfmt

DTYPES: dict[str, type] = {
    "f8E4M3FN": ml_dtypes.float8_e4m3fn,
    "f8E5M2": ml_dtypes.float8_e5m2,
    "f4E2M1FN": ml_dtypes.float4_e2m1fn,
    "f8E8M0FNU": ml_dtypes.float8_e8m0fnu,
    "bf16": ml_dtypes.bfloat16,
    "f16": np.float16,
}
FORMATS = sorted(DTYPES)
VECTOR_LANES = 8

Kernel = Callable[[np.ndarray], np.ndarray]


def _codes_dtype(fmt: str) -> type:
    return np.uint16 if fmt in ("bf16", "f16") else np.uint8


def _oracle_truncate(x: np.ndarray, fmt: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        return x.astype(DTYPES[fmt]).view(_codes_dtype(fmt))


def _oracle_extend(codes: np.ndarray, fmt: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        return codes.view(DTYPES[fmt]).astype(np.float32)


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).view(np.uint32 if x.dtype == np.float32 else x.dtype)


def _f32(bits: list[int] | np.ndarray) -> np.ndarray:
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


# --- a small JIT: test boilerplate only, the real one lives in codegen ---------------------


class _Jit:
    """Compiles llvmlite modules for the host CPU at O3 into one MCJIT engine.

    The engine owns the target machine (llvmlite hands it over), so there is one engine and
    modules are added to it; their functions need distinct names.
    """

    def __init__(self) -> None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.features = llvm.get_host_cpu_features()
        self.tm = llvm.Target.from_default_triple().create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=self.features.flatten(), opt=3
        )
        empty = llvm.parse_assembly(f'target triple = "{self.tm.triple}"')
        self.engine = llvm.create_mcjit_compiler(empty, self.tm)

    def optimize(self, module: ir.Module, vectorize: bool = True) -> llvm.ModuleRef:
        module.triple = self.tm.triple
        module.data_layout = str(self.tm.target_data)
        ref = llvm.parse_assembly(str(module))
        ref.verify()
        pto = llvm.PipelineTuningOptions(speed_level=3)
        pto.loop_vectorization = vectorize
        pto.slp_vectorization = vectorize
        pb = llvm.create_pass_builder(self.tm, pto)
        pb.getModulePassManager().run(ref, pb)
        ref.verify()
        return ref

    def kernel(
        self, module: ir.Module, name: str, out_dtype: type, lanes: int, vectorize: bool = True
    ) -> Kernel:
        self.engine.add_module(self.optimize(module, vectorize))
        self.engine.finalize_object()
        address = self.engine.get_function_address(name)
        assert address != 0, f"MCJIT did not find {name}"
        proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
        fn = proto(address)

        def run(src: np.ndarray) -> np.ndarray:
            src = np.ascontiguousarray(src)
            if src.size % lanes:
                raise ValueError(f"length {src.size} is not a multiple of {lanes} lanes")
            dst = np.empty(src.shape, out_dtype)
            fn(src.ctypes.data, dst.ctypes.data, src.size // lanes)
            return dst

        run.keep_alive = fn  # type: ignore[attr-defined]
        return run


def _kernel_name(fmt: str, direction: str, lanes: int, vectorize: bool = True) -> str:
    return f"{direction}_{fmt}_x{lanes}" + ("" if vectorize else "_novec")


def _loop_module(fmt: str, direction: str, lanes: int, vectorize: bool = True) -> ir.Module:
    """`void <name>(src, dst, n)`: dst[i] = convert(src[i]) for n elements of `lanes` lanes.

    lanes == 1 is a scalar loop for the loop vectorizer; lanes > 1 hands `<lanes x ...>`
    values to the helpers directly.
    """
    scalar_in, scalar_out = ir.FloatType(), floatfmt.storage_type(fmt)
    if direction == "extend":
        scalar_in, scalar_out = scalar_out, scalar_in
    t_in = ir.VectorType(scalar_in, lanes) if lanes > 1 else scalar_in
    t_out = ir.VectorType(scalar_out, lanes) if lanes > 1 else scalar_out
    i64, ptr = ir.IntType(64), ir.PointerType()

    module = ir.Module(name=f"{direction}_{fmt}")
    fn = ir.Function(
        module,
        ir.FunctionType(ir.VoidType(), [ptr, ptr, i64]),
        _kernel_name(fmt, direction, lanes, vectorize),
    )
    src, dst, n = fn.args
    for arg in (src, dst):
        arg.add_attribute("noalias")
    entry, loop, done = (fn.append_basic_block(s) for s in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", n, ir.Constant(i64, 0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(i64)
    i.add_incoming(ir.Constant(i64, 0), entry)
    # Element alignment only: numpy does not align arrays to the vector width.
    x = b.load(b.gep(src, [i], inbounds=True, source_etype=t_in), typ=t_in, align=1)
    convert = floatfmt.truncate if direction == "truncate" else floatfmt.extend
    b.store(convert(b, x, fmt), b.gep(dst, [i], inbounds=True, source_etype=t_out), align=1)
    i_next = b.add(i, ir.Constant(i64, 1), flags=["nuw", "nsw"])
    i.add_incoming(i_next, loop)
    b.cbranch(b.icmp_signed("<", i_next, n), loop, done)
    b.position_at_end(done)
    b.ret_void()
    return module


@pytest.fixture(scope="module")
def jit() -> _Jit:
    return _Jit()


@pytest.fixture(scope="module")
def kernels(jit: _Jit) -> Callable[[str, str], list[Kernel]]:
    """(fmt, direction) -> the kernels to compare, compiled once each: the scalar loop
    vectorized by LLVM, the same loop compiled without vectorization, a <8 x ...> loop."""
    cache: dict[tuple[str, str], list[Kernel]] = {}

    def get(fmt: str, direction: str) -> list[Kernel]:
        if (fmt, direction) not in cache:
            out = _codes_dtype(fmt) if direction == "truncate" else np.float32
            cache[fmt, direction] = [
                jit.kernel(
                    _loop_module(fmt, direction, lanes, vectorize),
                    _kernel_name(fmt, direction, lanes, vectorize),
                    out,
                    lanes,
                    vectorize,
                )
                for lanes, vectorize in ((1, True), (1, False), (VECTOR_LANES, True))
            ]
        return cache[fmt, direction]

    return get


def _pad(x: np.ndarray) -> np.ndarray:
    """Pad to a multiple of the vector kernel's lanes (repeating the first element)."""
    extra = -x.size % VECTOR_LANES
    return np.concatenate([x, np.repeat(x[:1], extra)]) if extra else x


def _check_truncate(kernels: Callable[[str, str], list[Kernel]], fmt: str, x: np.ndarray):
    x = _pad(np.ascontiguousarray(x, np.float32).ravel())
    want = _oracle_truncate(x, fmt)
    for kernel in kernels(fmt, "truncate"):
        got = kernel(x).view(_codes_dtype(fmt))
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, f"{fmt}: {bad.size} of {x.size} differ, e.g. " + ", ".join(
            f"{_bits(x)[j]:#010x} -> {int(got[j]):#x} (ml_dtypes {int(want[j]):#x})"
            for j in bad[:5]
        )


# --- interface ----------------------------------------------------------------------------


def test_formats_and_storage_types():
    assert frozenset(DTYPES) == floatfmt.SMALL_FLOAT_FORMATS
    assert floatfmt.storage_type("f16") == ir.HalfType()
    assert floatfmt.storage_type("bf16") == ir.IntType(16)
    for fmt in ("f8E4M3FN", "f8E5M2", "f4E2M1FN", "f8E8M0FNU"):
        assert floatfmt.storage_type(fmt) == ir.IntType(8)
    with pytest.raises(ValueError, match="unknown small float format 'f6E3M2FN'"):
        floatfmt.storage_type("f6E3M2FN")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("lanes", [1, 16])
def test_straight_line_code_without_calls_loads_or_branches(fmt: str, lanes: int):
    f32 = ir.FloatType() if lanes == 1 else ir.VectorType(ir.FloatType(), lanes)
    storage = floatfmt.storage_type(fmt)
    storage = storage if lanes == 1 else ir.VectorType(storage, lanes)
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(f32, [f32]), "round_trip")
    b = ir.IRBuilder(fn.append_basic_block())
    narrow = floatfmt.truncate(b, fn.args[0], fmt)
    assert narrow.type == storage
    wide = floatfmt.extend(b, narrow, fmt)
    assert wide.type == f32
    b.ret(wide)
    text = str(fn)
    assert len(fn.blocks) == 1
    assert not re.search(r"\b(call|load|br|switch|getelementptr|phi)\b", text), text
    llvm.parse_assembly(str(module)).verify()


def test_rejects_wrong_operand_types():
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.DoubleType()]), "f")
    b = ir.IRBuilder(fn.append_basic_block())
    with pytest.raises(TypeError, match="expects float or <N x float>"):
        floatfmt.truncate(b, fn.args[0], "bf16")
    with pytest.raises(TypeError, match="expects i16"):
        floatfmt.extend(b, fn.args[0], "bf16")


# --- extend: every code -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_extend_every_code(kernels, fmt: str):
    count = {"f4E2M1FN": 16, "bf16": 1 << 16, "f16": 1 << 16}.get(fmt, 256)
    codes = np.arange(count, dtype=_codes_dtype(fmt))
    want = _bits(_oracle_extend(codes, fmt))
    for kernel in kernels(fmt, "extend"):
        got = _bits(kernel(codes.view(np.float16) if fmt == "f16" else codes))
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, [(hex(codes[j]), hex(got[j]), hex(want[j])) for j in bad[:5]]


# --- truncate -----------------------------------------------------------------------------


def _representable(fmt: str) -> np.ndarray:
    """Finite non-negative values of `fmt` (float64, sorted), with 0 and the value one
    step past the largest (where the overflow boundary lies)."""
    count = 16 if fmt == "f4E2M1FN" else 1 << (8 * np.dtype(_codes_dtype(fmt)).itemsize)
    values = _oracle_extend(np.arange(count, dtype=_codes_dtype(fmt)), fmt)
    values = values[np.isfinite(values)].astype(np.float64)  # f32 -> f64 of an sNaN warns
    values = np.unique(np.append(values[np.isfinite(values) & (values >= 0)], 0.0))
    top = values[-1]
    man_bits = floatfmt.FORMATS[fmt].man_bits
    return np.append(values, top + 2.0 ** (np.floor(np.log2(top)) - man_bits))


def _f32_finite(x: np.ndarray) -> np.ndarray:
    """`x` as f32, without the values that f32 cannot hold (2**128 past bf16 / e8m0)."""
    return x[x < 2.0**128].astype(np.float32)


def _around(points: np.ndarray, ulps: int = 2) -> np.ndarray:
    """The f32 points and their neighbours within `ulps` f32 ulps, both signs."""
    bits = _bits(_f32_finite(points)).astype(np.int64)
    near = (bits[:, None] + np.arange(-ulps, ulps + 1)).ravel()
    near = np.clip(near, 0, 0x7F800000).astype(np.uint32)
    return _f32(np.concatenate([near, near | 0x80000000]))


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncate_representable_values_and_midpoints(kernels, fmt: str):
    values = _representable(fmt)
    midpoints = (values[:-1] + values[1:]) / 2
    assert np.array_equal(midpoints.astype(np.float32), midpoints)  # exact in f32 (< 2**128)
    _check_truncate(kernels, fmt, _around(np.concatenate([values, midpoints])))


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncate_every_exponent_dense_mantissas(kernels, fmt: str):
    rng = np.random.default_rng(sum(map(ord, fmt)))
    per_band = 1 << 15
    exponent = np.repeat(np.arange(256, dtype=np.uint32), 2 * per_band)
    sign = np.tile(np.repeat(np.array([0, 1], np.uint32), per_band), 256)
    mantissa = rng.integers(0, 1 << 23, exponent.size, dtype=np.uint32)
    mantissa[:: per_band // 4] = 0  # powers of two (and inf) in every band
    _check_truncate(kernels, fmt, _f32((sign << 31) | (exponent << 23) | mantissa))


SPECIAL_BITS = [
    0x00000000,  # +0
    0x7F800000,  # inf
    0x7F800001,  # signalling NaNs, payloads that vanish or survive narrowing
    0x7F801FFF,
    0x7F802000,
    0x7F812345,
    0x7FA00000,
    0x7FBFFFFF,
    0x7FC00000,  # quiet NaNs
    0x7FC00001,
    0x7FC12345,
    0x7FD23456,
    0x7FFFFFFF,
    0x00000001,  # f32 subnormals
    0x00000002,
    0x000FFFFF,
    0x00200000,
    0x003FFFFF,
    0x00400000,
    0x00400001,
    0x005FFFFF,
    0x00600000,
    0x007FFFFF,
    0x00800000,  # smallest normal
    0x7F7FFFFF,  # largest finite
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncate_specials(kernels, fmt: str):
    bits = np.asarray(SPECIAL_BITS, np.uint32)
    top = float(ml_dtypes.finfo(DTYPES[fmt]).max)
    beyond = _f32_finite(np.array([top * 1.0001, top * 1.5, top * 2, top * 1e3, 1e30, 3e38]))
    x = np.concatenate([_f32(bits), _f32(bits | 0x80000000), beyond, -beyond])
    _check_truncate(kernels, fmt, x)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncate_then_extend_round_trips_every_code(kernels, fmt: str):
    count = 16 if fmt == "f4E2M1FN" else 1 << (8 * np.dtype(_codes_dtype(fmt)).itemsize)
    codes = np.arange(count, dtype=_codes_dtype(fmt))
    wide = _oracle_extend(codes, fmt)
    _check_truncate(kernels, fmt, wide[~np.isnan(wide)])


# --- vectorization ------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["truncate", "extend"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_conversion_loop_vectorizes(jit: _Jit, fmt: str, direction: str):
    if not jit.features.get("avx2", False):
        pytest.skip("host has no AVX2")
    assembly = jit.tm.emit_assembly(jit.optimize(_loop_module(fmt, direction, lanes=1)))
    vector_ops = re.findall(r"^\s+v\w+\s.*%[yz]mm\d+", assembly, re.MULTILINE)
    assert len(vector_ops) >= 5, assembly
    assert not re.search(r"\bcall", assembly), assembly


# --- all 2**32 inputs (QOPT_EXHAUSTIVE=1) ----------------------------------------------------


@pytest.mark.exhaustive
@pytest.mark.skipif(os.environ.get("QOPT_EXHAUSTIVE") != "1", reason="set QOPT_EXHAUSTIVE=1")
@pytest.mark.parametrize("fmt", FORMATS)
def test_truncate_all_f32_inputs(kernels, fmt: str):
    vectorized, scalar = kernels(fmt, "truncate")[:2]
    chunk = 1 << 24

    def mismatches(start: int) -> list[str]:
        x = _f32(np.arange(start, start + chunk, dtype=np.uint32))
        want = _oracle_truncate(x, fmt)
        found = []
        for kernel in (vectorized, scalar):
            got = kernel(x).view(_codes_dtype(fmt))
            bad = np.flatnonzero(got != want)
            found += [f"{start + j:#010x} -> {got[j]:#x} (ml_dtypes {want[j]:#x})" for j in bad[:3]]
        return found

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        bad = [m for ms in pool.map(mismatches, range(0, 1 << 32, chunk)) for m in ms]
    assert not bad, bad[:10]
