"""lower-quant and choose-quant-lowering: structure of the lowered IR, and its numerics.

Structural tests check that no quant op survives, that the output re-parses and verifies,
that only the op set of docs/design.md section 1 appears and that every new op carries
the quant op's location. Numeric tests compile the lowered IR with the JIT
(``codegen.jit.compile_module``) and compare the results with the numpy oracle
(``tests/oracle.py``) bit for bit (NaN-aware), for every op x granularity x format and
for every lowering choice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import FileLineColLoc, FusedLoc, ModuleOp

from qopt.ir.diagnostics import Diagnostic, verify_module
from qopt.passes import PASSES
from qopt.passes.choose_quant_lowering import ChooseQuantLoweringPass
from qopt.passes.lower_quant import LowerQuantPass
from qopt.qdialect import formats
from qopt.qdialect.context import make_context, parse_module
from tests.support import oracle

try:
    from qopt.codegen.jit import compile_module
except ImportError as err:  # pragma: no cover - only while codegen is being written
    compile_module = None
    JIT_REASON = f"codegen.jit cannot be imported: {err}"
else:
    JIT_REASON = ""

needs_jit = pytest.mark.skipif(compile_module is None, reason=JIT_REASON or "no jit")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.mlir"))

LOWERED_OPS = {
    "builtin.module",
    "func.func",
    "func.return",
    "tensor.empty",
    "arith.constant",
    "linalg.generic",
    "linalg.yield",
}
LOWERED_PREFIXES = ("arith.", "math.")


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def tt(shape: Sequence[int], element: str) -> str:
    """``tensor<4x8xf32>``."""
    return "tensor<" + "".join(f"{n}x" for n in shape) + element + ">"


def lower(text: str, mode: str | None = None, allow_lut: bool = False) -> ModuleOp:
    module = parse_module(text, "test.mlir")
    verify_module(module)
    ctx = make_context()
    if mode is not None:
        ChooseQuantLoweringPass(mode=mode, allow_lut=allow_lut).apply(ctx, module)
    LowerQuantPass().apply(ctx, module)
    verify_module(module)
    return module


def check_structure(module: ModuleOp) -> None:
    """No quant op, only the lowered op set, every float-to-integer conversion right after
    the upper clamp (``minimumf``), and the printed form parses back."""
    for op in module.walk():
        assert not op.name.startswith("quant."), op.name
        lut_gather = op.name in ("tensor.extract", "arith.index_cast")
        assert op.name in LOWERED_OPS or op.name.startswith(LOWERED_PREFIXES) or lut_gather, op.name
        if op.name in ("arith.fptosi", "arith.fptoui"):
            assert op.operands[0].owner.name == "arith.minimumf", op
    reparsed = parse_module(str(module), "lowered.mlir")
    verify_module(reparsed)


def run(text: str, *args: np.ndarray, mode: str | None = None, allow_lut: bool = False):
    """Lower ``text`` (one function ``@f``), compile it and call it on ``args``."""
    module = lower(text, mode, allow_lut)
    check_structure(module)
    assert compile_module is not None
    result = compile_module(module)["f"](*args)
    return result


def bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def assert_same_bits(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    """Equal dtype, shape and bits, except that any NaN equals any NaN."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    same = bits(got) == bits(want)
    if got.dtype.kind == "f" or got.dtype in FLOAT_DTYPES:
        with np.errstate(invalid="ignore"):
            g, w = got.astype(np.float32), want.astype(np.float32)
        same |= np.isnan(g) & np.isnan(w)
    if not same.all():
        bad = np.argwhere(~same)[:5]
        detail = [(tuple(i), got[tuple(i)], want[tuple(i)]) for i in bad]
        raise AssertionError(f"{what}: {int((~same).sum())} elements differ, e.g. {detail}")


FLOAT_DTYPES = {
    np.dtype(t)
    for t in (
        ml_dtypes.float8_e4m3fn,
        ml_dtypes.float8_e5m2,
        ml_dtypes.float4_e2m1fn,
        ml_dtypes.float8_e8m0fnu,
        ml_dtypes.bfloat16,
    )
}

RNG = np.random.default_rng(20240607)


def special_values() -> np.ndarray:
    return np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-40, -1e-40, 1e-45, 3.4e38, -3.4e38],
        np.float32,
    )


def data(shape: Sequence[int], scale: float = 1.0, specials: bool = True) -> np.ndarray:
    """Normal values of several magnitudes, exact ties of the scale, and the specials."""
    n = math.prod(shape)
    x = RNG.standard_normal(n).astype(np.float32) * np.float32(scale)
    x *= RNG.choice(np.array([1, 4, 30, 300, 1e-3], np.float32), n)
    ties = (RNG.integers(-300, 300, n) + 0.5).astype(np.float32) * np.float32(scale)
    x = np.where(RNG.random(n) < 0.3, ties, x).astype(np.float32)
    if specials and n >= 16:
        sv = special_values()
        pos = RNG.choice(n, size=min(len(sv), n // 4), replace=False)
        x[pos] = sv[: len(pos)]
    return x.reshape(shape)


def granularity_kwargs(gran: str, shape: Sequence[int]) -> dict:
    """The oracle's keywords for a granularity spelled the way the IR spells it."""
    if gran == "per_tensor":
        return {}
    if gran.startswith("per_axis"):
        return {"axis": int(gran[len("per_axis(") : -1])}
    if gran.startswith("per_block"):
        axis, size = (int(v) for v in gran[len("per_block(") : -1].split(","))
        return {"axis": axis, "block_size": size}
    if gran.startswith("block"):
        inner = gran[len("block([") : -2]
        return {"block_shape": tuple(int(v) for v in inner.split(","))}
    if gran == "per_token":
        return {"block_shape": (1,) * (len(shape) - 1) + (-1,)}
    raise ValueError(gran)


def param_shape(gran: str, shape: Sequence[int]) -> tuple[int, ...]:
    kw = granularity_kwargs(gran, shape)
    if not kw:
        return ()
    if set(kw) == {"axis"}:
        return (shape[kw["axis"]],)
    blocks = oracle.param_block_shape(shape, **kw)
    return tuple(-(-n // b) for n, b in zip(shape, blocks))


def gran_clause(gran: str) -> str:
    return "" if gran == "per_tensor" else gran


def np_dtype(name: str) -> np.dtype:
    return oracle.storage_dtype(name)


INT_STORAGE = ["i8", "ui8", "i16", "ui16", "i4", "ui4", "i2", "ui2"]
FLOAT_STORAGE = ["f8E4M3FN", "f8E5M2", "f4E2M1FN"]
GRANULARITIES = [
    "per_tensor",
    "per_axis(0)",
    "per_axis(1)",
    "per_block(1, 16)",
    "block([2, 16])",
    "per_token",
]
SHAPE = (5, 37)  # partial blocks on both axes


def scales_for(storage: str, pshape: Sequence[int]) -> np.ndarray:
    """Positive scales spanning a few binades (some exotic), f32."""
    s = np.exp2(RNG.integers(-6, 4, size=pshape)).astype(np.float32)
    s *= RNG.choice(np.array([1.0, 0.75, 1.1, 0.3], np.float32), size=pshape)
    if oracle.is_float_format(storage):
        s *= np.float32(0.05)
    return np.asarray(s, np.float32)


def zero_points_for(storage: str, pshape: Sequence[int]) -> np.ndarray:
    lo, hi = oracle.int_range(storage)
    span = max(1, (hi - lo) // 4)
    mid = (lo + hi) // 2
    z = RNG.integers(mid - span, mid + span + 1, size=pshape)
    return np.clip(z, lo, hi).astype(np_dtype(storage))


# ---------------------------------------------------------------------------------------
# structure
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
@pytest.mark.parametrize("mode", [None, "fused", "composite"])
def test_examples_lower_completely(path: Path, mode: str | None) -> None:
    module = lower(path.read_text(), mode)
    check_structure(module)


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    for required in (
        "requant_chain_folds.mlir",
        "requant_chain_stays.mlir",
        "mixed_granularity_requant.mlir",
        "int4_block_dequant.mlir",
        "nvfp4_dynamic_quant.mlir",
        "mxfp8_dynamic_quant.mlir",
    ):
        assert required in names


def example_inputs(f: func.FuncOp) -> list[np.ndarray]:
    """Random arguments for an example function: data with the special values, positive
    scales for arguments named like a scale, any code for integer / packed arguments."""
    inputs = []
    for arg in f.body.block.args:
        shape = tuple(arg.type.get_shape())
        name = formats.type_name(arg.type.element_type)
        hint = arg.name_hint or ""
        if name in ("f32", "f16", "bf16") and (hint.startswith("s") or hint == "dq"):
            value = scales_for("f32", shape).astype(np_dtype(name))
        elif name in ("f32", "f16", "bf16"):
            with np.errstate(over="ignore"):
                value = data(shape, scale=0.5).astype(np_dtype(name))
        else:
            value = random_codes(name, shape)
        inputs.append(value)
    return inputs


@needs_jit
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_match_the_oracle(path: Path) -> None:
    """Every example, in every lowering (and after fold-quant), against the quant-dialect
    interpreter on the oracle (tests/quant_eval.py)."""
    from tests.support.quant_eval import evaluate, find_function

    text = path.read_text()
    source = parse_module(text)
    f = next(op for op in source.walk() if isinstance(op, func.FuncOp))
    inputs = example_inputs(f)
    want = evaluate(find_function(source, f.sym_name.data), *inputs)
    variants = {mode: lower(text, mode) for mode in (None, "fused", "composite")}
    folded = parse_module(text)
    PASSES["fold-quant"]()().apply(make_context(), folded)
    LowerQuantPass().apply(make_context(), folded)
    variants["fold-quant"] = folded
    for label, module in variants.items():
        check_structure(module)
        assert compile_module is not None
        got = compile_module(module)[f.sym_name.data](*inputs)
        got = got if isinstance(got, tuple | list) else [got]
        for k, (g, w) in enumerate(zip(got, want)):
            assert_same_bits(g, np.asarray(w).reshape(g.shape), f"{path.name} {label} #{k}")


STRUCTURE_OPS = {
    "quantize": "%r = quant.quantize %x scale(%s : tensor<8xf32>) per_axis(1) : "
    "tensor<4x8xf32> -> tensor<4x8xi8>",
    "dequantize": "%r = quant.dequantize %q scale(2.0) zero_point(3) : "
    "tensor<4x8xi8> -> tensor<4x8xf16>",
    "requantize": "%r = quant.requantize %q in(scale(%s : tensor<8xf32>) per_axis(1)) "
    "out(scale(0.5) zero_point(-1)) : tensor<4x8xi8> -> tensor<4x8xi8>",
    "dynamic": "%r, %rs = quant.dynamic_quantize %x per_block(1, 4) double_quant(2.0) : "
    "tensor<4x8xf32> -> tensor<4x8xf4E2M1FN>, tensor<4x2xf8E4M3FN>",
    "fake": "%r = quant.fake_quantize %x storage(i8) per_token symmetric(false) : "
    "tensor<4x8xf32> -> tensor<4x8xf32>",
    "pack": "%r = quant.pack %p4 : tensor<4x8xi4> -> tensor<16xui8>",
    "unpack": "%r = quant.unpack %b : tensor<16xui8> -> tensor<4x8xi4>",
}


def _structure_module(line: str) -> str:
    result = line.split("=")[0].split(",")[0].strip()
    result_type = line.rsplit("->", 1)[1].split(",")[0].strip()
    return (
        "func.func @f(%x: tensor<4x8xf32>, %s: tensor<8xf32>, %q: tensor<4x8xi8>, "
        "%p4: tensor<4x8xi4>, %b: tensor<16xui8>) -> " + result_type + " {\n"
        f"  {line}\n  func.return {result} : {result_type}\n}}\n"
    )


@pytest.mark.parametrize("name", list(STRUCTURE_OPS))
@pytest.mark.parametrize("mode", [None, "fused", "composite"])
def test_locations_preserved(name: str, mode: str | None) -> None:
    """Every op the lowering makes (bodies included) has the quant op's location."""
    module = lower(_structure_module(STRUCTURE_OPS[name]), mode)
    check_structure(module)
    seen = 0
    for op in module.walk():
        if op.name in ("builtin.module", "func.func", "func.return"):
            continue
        assert isinstance(op.location, FileLineColLoc | FusedLoc), (op.name, op.location)
        assert op.location.line.data == 2, (op.name, op.location)  # the quant op's line
        seen += 1
    assert seen > 3


def test_fused_pack_has_fused_location() -> None:
    text = (
        "func.func @f(%x: tensor<4x8xf32>) -> tensor<16xui8> {\n"
        "  %q = quant.quantize %x scale(0.5) : tensor<4x8xf32> -> tensor<4x8xi4>\n"
        "  %p = quant.pack %q : tensor<4x8xi4> -> tensor<16xui8>\n"
        "  func.return %p : tensor<16xui8>\n}\n"
    )
    module = lower(text)
    generics = [op for op in module.walk() if op.name == "linalg.generic"]
    assert len(generics) == 1
    loc = generics[0].location
    assert isinstance(loc, FusedLoc)
    assert [inner.line.data for inner in loc.locations.data] == [2, 3]


def test_unpack_dequantize_fuse_into_one_generic() -> None:
    text = (
        "func.func @f(%b: tensor<16xui8>, %s: tensor<4x1xf32>) -> tensor<4x8xf32> {\n"
        "  %u = quant.unpack %b : tensor<16xui8> -> tensor<4x8xi4>\n"
        "  %d = quant.dequantize %u scale(%s : tensor<4x1xf32>) per_block(1, 8)"
        " : tensor<4x8xi4> -> tensor<4x8xf32>\n"
        "  func.return %d : tensor<4x8xf32>\n}\n"
    )
    assert sum(op.name == "linalg.generic" for op in lower(text).walk()) == 1
    assert sum(op.name == "linalg.generic" for op in lower(text, "composite").walk()) == 2


def test_pack_not_fused_when_codes_have_other_users() -> None:
    text = (
        "func.func @f(%x: tensor<7xf32>) -> (tensor<4xui8>, tensor<7xi4>) {\n"
        "  %q = quant.quantize %x scale(0.5) : tensor<7xf32> -> tensor<7xi4>\n"
        "  %p = quant.pack %q : tensor<7xi4> -> tensor<4xui8>\n"
        "  func.return %p, %q : tensor<4xui8>, tensor<7xi4>\n}\n"
    )
    module = lower(text)
    assert sum(op.name == "linalg.generic" for op in module.walk()) == 2


def test_annotations_are_overrides() -> None:
    text = (
        "func.func @f(%q: tensor<4x8xi8>) -> (tensor<4x8xi8>, tensor<4x8xi8>) {\n"
        '  %a = quant.requantize %q in(scale(2.0)) out(scale(0.5)) {lowering = "composite"}'
        " : tensor<4x8xi8> -> tensor<4x8xi8>\n"
        "  %b = quant.requantize %q in(scale(2.0)) out(scale(0.5))"
        " : tensor<4x8xi8> -> tensor<4x8xi8>\n"
        "  func.return %a, %b : tensor<4x8xi8>, tensor<4x8xi8>\n}\n"
    )
    module = parse_module(text)
    ChooseQuantLoweringPass(mode="fused").apply(make_context(), module)
    chosen = [
        op.attributes["lowering"].data for op in module.walk() if op.name.startswith("quant.")
    ]
    assert chosen == ["composite", "fused"]


def test_invalid_mode_names_the_option() -> None:
    with pytest.raises(ValueError, match="mode"):
        ChooseQuantLoweringPass(mode="fastest")


def test_lut_on_wide_input_is_an_error() -> None:
    text = (
        "func.func @f(%q: tensor<4x8xi16>) -> tensor<4x8xi16> {\n"
        '  %a = quant.requantize %q in(scale(2.0)) out(scale(0.5)) {lowering = "lut"}'
        " : tensor<4x8xi16> -> tensor<4x8xi16>\n"
        "  func.return %a : tensor<4x8xi16>\n}\n"
    )
    with pytest.raises(Diagnostic, match="lut"):
        lower(text)


def test_auto_choices() -> None:
    text = (
        "func.func @f(%x: tensor<64x64xf32>, %q: tensor<64x64xi8>) -> (tensor<64x64xi8>,"
        " tensor<64x64xi8>, tensor<64x1xf32>, tensor<64x64xi8>, tensor<64x4xf32>) {\n"
        "  %r = quant.requantize %q in(scale(2.0)) out(scale(0.5))"
        " : tensor<64x64xi8> -> tensor<64x64xi8>\n"
        "  %d, %s = quant.dynamic_quantize %x per_token"
        " : tensor<64x64xf32> -> tensor<64x64xi8>, tensor<64x1xf32>\n"
        "  %d2, %s2 = quant.dynamic_quantize %x per_block(1, 16)"
        " : tensor<64x64xf32> -> tensor<64x64xi8>, tensor<64x4xf32>\n"
        "  func.return %r, %d, %s, %d2, %s2 : tensor<64x64xi8>, tensor<64x64xi8>,"
        " tensor<64x1xf32>, tensor<64x64xi8>, tensor<64x4xf32>\n}\n"
    )
    module = parse_module(text)
    ChooseQuantLoweringPass().apply(make_context(), module)
    chosen = [
        op.attributes["lowering"].data for op in module.walk() if op.name.startswith("quant.")
    ]
    assert chosen == ["fused", "composite", "composite"]
    module = parse_module(text)
    ChooseQuantLoweringPass(allow_lut=True).apply(make_context(), module)
    chosen = [
        op.attributes["lowering"].data for op in module.walk() if op.name.startswith("quant.")
    ]
    assert chosen[0] == "lut"


def test_every_fptosi_sees_a_clamped_value() -> None:
    """Each fptosi's operand is a minimumf (the upper clamp) in every lowering."""
    for path in EXAMPLES:
        for mode in (None, "fused", "composite"):
            module = lower(path.read_text(), mode)
            for op in module.walk():
                if op.name in ("arith.fptosi", "arith.fptoui"):
                    assert op.operands[0].owner.name == "arith.minimumf", path.name


# ---------------------------------------------------------------------------------------
# numerics: quantize
# ---------------------------------------------------------------------------------------


def quantize_ir(
    shape, x_type, storage, gran, *, zp: bool, rounding="nearest_even", saturate=True, extra=""
) -> tuple[str, tuple[int, ...]]:
    pshape = param_shape(gran, shape)
    args = [f"%x: {tt(shape, x_type)}", f"%s: {tt(pshape, 'f32')}"]
    clauses = [f"scale(%s : {tt(pshape, 'f32')})"]
    if zp:
        args.append(f"%z: {tt(pshape, storage)}")
        clauses.append(f"zero_point(%z : {tt(pshape, storage)})")
    clauses.append(gran_clause(gran))
    if rounding != "nearest_even":
        clauses.append(f"rounding({rounding})")
    if not saturate:
        clauses.append("saturate(false)")
    clauses.append(extra)
    rt = tt(shape, storage)
    text = (
        f"func.func @f({', '.join(args)}) -> {rt} {{\n"
        f"  %q = quant.quantize %x {' '.join(c for c in clauses if c)} : {tt(shape, x_type)} -> {rt}\n"
        f"  func.return %q : {rt}\n}}\n"
    )
    return text, pshape


@needs_jit
@pytest.mark.parametrize("gran", GRANULARITIES)
@pytest.mark.parametrize("storage", INT_STORAGE + FLOAT_STORAGE)
def test_quantize_matches_oracle(storage: str, gran: str) -> None:
    is_int = not oracle.is_float_format(storage)
    text, pshape = quantize_ir(SHAPE, "f32", storage, gran, zp=is_int)
    s = scales_for(storage, pshape)
    x = data(SHAPE, scale=float(np.max(s)) if s.size else 1.0)
    args = [x, s]
    kw = granularity_kwargs(gran, SHAPE)
    if is_int:
        z = zero_points_for(storage, pshape)
        args.append(z)
        want = oracle.quantize(x, s, z, dtype=storage, **kw)
    else:
        want = oracle.quantize(x, s, dtype=storage, **kw)
    assert_same_bits(run(text, *args), want, f"quantize {storage} {gran}")


@needs_jit
@pytest.mark.parametrize("rounding", ["nearest_even", "nearest_away", "half_up", "toward_zero"])
@pytest.mark.parametrize("storage", ["i8", "ui8", "i4"])
def test_quantize_rounding_modes(storage: str, rounding: str) -> None:
    text, pshape = quantize_ir(SHAPE, "f32", storage, "per_axis(0)", zp=True, rounding=rounding)
    s = scales_for(storage, pshape)
    x = data(SHAPE, scale=float(np.max(s)))
    # exact ties, and values beyond 2^23 where v + 0.5 rounds in f32
    x.ravel()[:40] = (np.arange(-20, 20) + 0.5).astype(np.float32) * s[0]
    x.ravel()[40:44] = np.float32([8388609.0, -8388609.0, 8388608.5, 16777215.0]) * s[1]
    z = zero_points_for(storage, pshape)
    want = oracle.quantize(x, s, z, dtype=storage, axis=0, rounding=rounding)
    assert_same_bits(run(text, x, s, z), want, rounding)


@needs_jit
@pytest.mark.parametrize("rounding", ["nearest_even", "nearest_away", "half_up", "toward_zero"])
def test_quantize_rounding_edges(rounding: str) -> None:
    """Values next to the ties, where ``floor(v + 0.5)`` or ``floor(|v| + 0.5)`` would round
    the sum in f32 (``0.49999997 + 0.5`` is ``1.0``), with a power-of-two scale."""
    below_half = np.nextafter(np.float32(0.5), np.float32(0))
    base = np.float32([0.5, 1.5, 2.5, 3.5, 0.0, 1.0, 126.5, 127.5, 200.0])
    edges = np.concatenate(
        [base, np.nextafter(base, np.float32(np.inf)), np.nextafter(base, np.float32(0)),
         [below_half, np.nextafter(below_half, np.float32(0))]]
    ).astype(np.float32)  # fmt: skip
    x = np.concatenate([edges, -edges]).astype(np.float32) * np.float32(0.25)
    n = x.size
    text = (
        f"func.func @f(%x: tensor<{n}xf32>) -> tensor<{n}xi8> {{\n"
        f"  %q = quant.quantize %x scale(2.500000e-01) zero_point(-3) rounding({rounding})"
        f" : tensor<{n}xf32> -> tensor<{n}xi8>\n"
        f"  func.return %q : tensor<{n}xi8>\n}}\n"
    )
    want = oracle.quantize(x, np.float32(0.25), -3, dtype="i8", rounding=rounding)
    assert_same_bits(run(text, x), want, rounding)


@needs_jit
@pytest.mark.parametrize("x_type", ["f16", "bf16"])
@pytest.mark.parametrize("storage", ["i8", "f8E4M3FN", "f4E2M1FN"])
def test_quantize_half_inputs(x_type: str, storage: str) -> None:
    text, pshape = quantize_ir(SHAPE, x_type, storage, "per_token", zp=False)
    s = scales_for(storage, pshape)
    with np.errstate(over="ignore"):
        x = data(SHAPE, scale=float(np.max(s))).astype(np_dtype(x_type))
    want = oracle.quantize(x, s, dtype=storage, block_shape=(1, -1))
    assert_same_bits(run(text, x, s), want)


@needs_jit
@pytest.mark.parametrize("storage", FLOAT_STORAGE)
def test_quantize_float_without_saturation(storage: str) -> None:
    text, pshape = quantize_ir(SHAPE, "f32", storage, "per_tensor", zp=False, saturate=False)
    s = np.float32(0.01)
    x = data(SHAPE, scale=100.0)
    want = oracle.quantize(x, s, dtype=storage, saturate=False)
    assert_same_bits(run(text, x, np.asarray(s)), want)


@needs_jit
def test_quantize_narrow_range_and_constants() -> None:
    shape = (4, 8)
    text = (
        "func.func @f(%x: tensor<4x8xf32>) -> (tensor<4x8xi8>, tensor<4x8xui4>) {\n"
        "  %a = quant.quantize %x scale(dense<[0.5, 0.25, 1.0, 2.0, 0.125, 3.0, 0.75, 1.5]>"
        " : tensor<8xf32>) zero_point(dense<[0, 1, -1, 2, 3, -5, 7, 0]> : tensor<8xi8>)"
        " per_axis(1) range(-127, 127) : tensor<4x8xf32> -> tensor<4x8xi8>\n"
        "  %b = quant.quantize %x scale(1.000000e-01) zero_point(8) rounding(half_up)"
        " : tensor<4x8xf32> -> tensor<4x8xui4>\n"
        "  func.return %a, %b : tensor<4x8xi8>, tensor<4x8xui4>\n}\n"
    )
    x = data(shape, scale=30.0)
    a, b = run(text, x)
    s = np.float32([0.5, 0.25, 1.0, 2.0, 0.125, 3.0, 0.75, 1.5])
    z = np.int8([0, 1, -1, 2, 3, -5, 7, 0])
    assert_same_bits(a, oracle.quantize(x, s, z, dtype="i8", axis=1, qmin=-127, qmax=127))
    want_b = oracle.quantize(x, np.float32(0.1), 8, dtype="ui4", rounding="half_up")
    assert_same_bits(b, want_b)


@needs_jit
def test_quantize_minval_form() -> None:
    text = (
        "func.func @f(%x: tensor<4x8xf32>, %s: tensor<8xf32>, %m: tensor<8xf32>)"
        " -> (tensor<4x8xui8>, tensor<4x8xf32>) {\n"
        "  %q = quant.quantize %x scale(%s : tensor<8xf32>) minval(%m : tensor<8xf32>)"
        " per_axis(1) : tensor<4x8xf32> -> tensor<4x8xui8>\n"
        "  %d = quant.dequantize %q scale(%s : tensor<8xf32>) minval(%m : tensor<8xf32>)"
        " per_axis(1) : tensor<4x8xui8> -> tensor<4x8xf32>\n"
        "  func.return %q, %d : tensor<4x8xui8>, tensor<4x8xf32>\n}\n"
    )
    x = data((4, 8), scale=3.0)
    s = scales_for("ui8", (8,))
    m = (RNG.standard_normal(8) * 10).astype(np.float32)
    q, d = run(text, x, s, m)
    want_q = oracle.quantize(x, s, dtype="ui8", axis=1, minval=m)
    assert_same_bits(q, want_q)
    assert_same_bits(d, oracle.dequantize(want_q, s, axis=1, minval=m))


# ---------------------------------------------------------------------------------------
# numerics: dequantize
# ---------------------------------------------------------------------------------------


def random_codes(storage: str, shape: Sequence[int]) -> np.ndarray:
    dt = np_dtype(storage)
    if oracle.is_float_format(storage):
        raw = RNG.integers(0, 256 if storage != "f4E2M1FN" else 16, size=shape, dtype=np.uint8)
        return raw.view(dt)
    lo, hi = oracle.int_range(storage)
    return RNG.integers(lo, hi + 1, size=shape).astype(dt)


@needs_jit
@pytest.mark.parametrize("gran", GRANULARITIES)
@pytest.mark.parametrize("storage", INT_STORAGE + FLOAT_STORAGE)
def test_dequantize_matches_oracle(storage: str, gran: str) -> None:
    is_int = not oracle.is_float_format(storage)
    pshape = param_shape(gran, SHAPE)
    args = [f"%q: {tt(SHAPE, storage)}", f"%s: {tt(pshape, 'f32')}"]
    clauses = [f"scale(%s : {tt(pshape, 'f32')})"]
    if is_int:
        args.append(f"%z: {tt(pshape, storage)}")
        clauses.append(f"zero_point(%z : {tt(pshape, storage)})")
    clauses.append(gran_clause(gran))
    rt = tt(SHAPE, "f32")
    text = (
        f"func.func @f({', '.join(args)}) -> {rt} {{\n"
        f"  %d = quant.dequantize %q {' '.join(clauses)} : {tt(SHAPE, storage)} -> {rt}\n"
        f"  func.return %d : {rt}\n}}\n"
    )
    q = random_codes(storage, SHAPE)
    s = scales_for(storage, pshape)
    kw = granularity_kwargs(gran, SHAPE)
    if is_int:
        z = zero_points_for(storage, pshape)
        got, want = run(text, q, s, z), oracle.dequantize(q, s, z, **kw)
    else:
        got, want = run(text, q, s), oracle.dequantize(q, s, **kw)
    assert_same_bits(got, want, f"dequantize {storage} {gran}")


@needs_jit
@pytest.mark.parametrize("out", ["f16", "bf16"])
@pytest.mark.parametrize("scale_type", ["f32", "f16", "bf16", "f8E4M3FN", "f8E8M0FNU"])
def test_dequantize_scale_formats_and_half_results(scale_type: str, out: str) -> None:
    shape, pshape = (4, 64), (4, 2)
    text = (
        f"func.func @f(%q: {tt(shape, 'f4E2M1FN')}, %s: {tt(pshape, scale_type)}) -> "
        f"{tt(shape, out)} {{\n"
        f"  %d = quant.dequantize %q scale(%s : {tt(pshape, scale_type)}) per_block(1, 32)"
        f" : {tt(shape, 'f4E2M1FN')} -> {tt(shape, out)}\n"
        f"  func.return %d : {tt(shape, out)}\n}}\n"
    )
    q = random_codes("f4E2M1FN", shape)
    s = scales_for("f32", pshape).astype(np_dtype(scale_type))
    want = oracle.dequantize(q, s.astype(np.float32), block_size=32, axis=1, dtype=out)
    assert_same_bits(run(text, q, s), want)


@needs_jit
def test_dequantize_double_quant_nvfp4() -> None:
    """NVFP4 dequantize: ``data * (f32(sq) * dq)``."""
    shape, pshape = (4, 64), (4, 4)
    text = (
        f"func.func @f(%q: {tt(shape, 'f4E2M1FN')}, %s: {tt(pshape, 'f8E4M3FN')},"
        f" %dq: tensor<f32>) -> {tt(shape, 'f32')} {{\n"
        f"  %d = quant.dequantize %q scale(%s : {tt(pshape, 'f8E4M3FN')}) per_block(1, 16)"
        f" double_quant(%dq : tensor<f32>) : {tt(shape, 'f4E2M1FN')} -> {tt(shape, 'f32')}\n"
        f"  func.return %d : {tt(shape, 'f32')}\n}}\n"
    )
    q = random_codes("f4E2M1FN", shape)
    s = RNG.integers(0, 0x7F, size=pshape, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn)
    dq = np.float32(0.37)
    want = q.astype(np.float32) * oracle.expand_param(
        s.astype(np.float32) * dq, shape, axis=1, block_size=16
    )
    assert_same_bits(run(text, q, s, np.asarray(dq)), want.astype(np.float32))


# ---------------------------------------------------------------------------------------
# numerics: requantize
# ---------------------------------------------------------------------------------------

REQUANT_CASES = [
    # (in storage, out storage, in granularity, out granularity)
    ("i8", "i8", "per_tensor", "per_tensor"),
    ("i8", "ui8", "per_tensor", "per_axis(1)"),
    ("ui8", "i8", "per_axis(1)", "per_tensor"),
    ("i8", "i8", "per_axis(1)", "per_axis(1)"),
    ("ui8", "ui8", "per_axis(0)", "per_axis(0)"),
    ("i4", "i8", "per_tensor", "per_axis(1)"),
    ("ui4", "i4", "per_axis(1)", "per_tensor"),
    ("i2", "ui8", "per_tensor", "per_tensor"),
    ("i16", "i8", "per_axis(1)", "per_tensor"),
    ("i8", "f8E4M3FN", "per_tensor", "per_axis(1)"),
    ("f8E4M3FN", "i8", "per_axis(1)", "per_tensor"),
    ("i8", "i16", "per_block(1, 16)", "per_tensor"),
]


def requant_ir(shape, in_t, out_t, in_g, out_g, attrs="") -> tuple[str, list[np.ndarray]]:
    in_p, out_p = param_shape(in_g, shape), param_shape(out_g, shape)
    args = [f"%q: {tt(shape, in_t)}", f"%a: {tt(in_p, 'f32')}", f"%b: {tt(out_p, 'f32')}"]
    arrays: list[np.ndarray] = [scales_for("f32", in_p) * 4, scales_for("f32", out_p) * 4]
    in_c = [f"scale(%a : {tt(in_p, 'f32')})"]
    out_c = [f"scale(%b : {tt(out_p, 'f32')})"]
    if not oracle.is_float_format(in_t):
        args.append(f"%za: {tt(in_p, in_t)}")
        in_c.append(f"zero_point(%za : {tt(in_p, in_t)})")
        arrays.append(zero_points_for(in_t, in_p))
    if not oracle.is_float_format(out_t):
        args.append(f"%zb: {tt(out_p, out_t)}")
        out_c.append(f"zero_point(%zb : {tt(out_p, out_t)})")
        arrays.append(zero_points_for(out_t, out_p))
    in_c.append(gran_clause(in_g))
    out_c.append(gran_clause(out_g))
    rt = tt(shape, out_t)
    text = (
        f"func.func @f({', '.join(args)}) -> {rt} {{\n"
        f"  %r = quant.requantize %q in({' '.join(c for c in in_c if c)})"
        f" out({' '.join(c for c in out_c if c)}) {attrs} : {tt(shape, in_t)} -> {rt}\n"
        f"  func.return %r : {rt}\n}}\n"
    )
    return text, arrays


def requant_oracle(q, in_t, out_t, in_g, out_g, arrays, shape):
    s_in, s_out = arrays[0], arrays[1]
    rest = arrays[2:]
    z_in = rest.pop(0) if not oracle.is_float_format(in_t) else None
    z_out = rest.pop(0) if not oracle.is_float_format(out_t) else None
    mid = oracle.dequantize(q, s_in, z_in, **granularity_kwargs(in_g, shape))
    return oracle.quantize(mid, s_out, z_out, dtype=out_t, **granularity_kwargs(out_g, shape))


@needs_jit
@pytest.mark.parametrize("mode", ["fused", "composite"])
@pytest.mark.parametrize("case", REQUANT_CASES, ids=["-".join(c) for c in REQUANT_CASES])
def test_requantize_matches_oracle(case, mode: str) -> None:
    in_t, out_t, in_g, out_g = case
    shape = (3, 48)
    text, arrays = requant_ir(shape, in_t, out_t, in_g, out_g)
    q = random_codes(in_t, shape)
    want = requant_oracle(q, in_t, out_t, in_g, out_g, list(arrays), shape)
    assert_same_bits(run(text, q, *arrays, mode=mode), want, f"{case} {mode}")


def _whole_domain(storage: str, channels: int) -> np.ndarray:
    lo, hi = oracle.int_range(storage)
    codes = np.arange(lo, hi + 1)
    return np.tile(codes, (channels, 1)).astype(np_dtype(storage))


LUT_CASES = [
    ("i8", "i8", "per_tensor", "per_tensor"),
    ("ui8", "ui8", "per_axis(0)", "per_tensor"),
    ("i8", "ui8", "per_axis(0)", "per_axis(0)"),
    ("i4", "i8", "per_tensor", "per_axis(0)"),
    ("ui4", "ui4", "per_axis(0)", "per_axis(0)"),
]


@needs_jit
@pytest.mark.parametrize("case", LUT_CASES, ids=["-".join(c) for c in LUT_CASES])
def test_requantize_every_code_all_lowerings_agree(case) -> None:
    """Every input code of each channel: fused, composite and lut give the same bits."""
    in_t, out_t, in_g, out_g = case
    q = _whole_domain(in_t, 5)
    shape = q.shape
    text, arrays = requant_ir(shape, in_t, out_t, in_g, out_g)
    want = requant_oracle(q, in_t, out_t, in_g, out_g, list(arrays), shape)
    fused = run(text, q, *arrays, mode="fused")
    composite = run(text, q, *arrays, mode="composite")
    assert_same_bits(fused, want, "fused")
    assert_same_bits(composite, want, "composite")
    lut_text, _ = requant_ir(shape, in_t, out_t, in_g, out_g, '{lowering = "lut"}')
    lut_module = lower(lut_text)
    assert any(op.name == "tensor.extract" for op in lut_module.walk())
    check_structure(lut_module)
    assert compile_module is not None
    assert_same_bits(compile_module(lut_module)["f"](q, *arrays), want, "lut")


# ---------------------------------------------------------------------------------------
# numerics: dynamic_quantize
# ---------------------------------------------------------------------------------------

DYN_GRANULARITIES = ["per_tensor", "per_token", "per_block(1, 16)", "block([2, 16])", "per_axis(0)"]


def dynamic_ir(shape, x_type, storage, scale_type, gran, *, symmetric=True, extra=""):
    pshape = param_shape(gran, shape)
    results = [tt(shape, storage), tt(pshape, scale_type)]
    if not symmetric:
        results.append(tt(pshape, storage))
    names = ["%d", "%s", "%z"][: len(results)]
    clauses = [gran_clause(gran), "" if symmetric else "symmetric(false)", extra]
    text = (
        f"func.func @f(%x: {tt(shape, x_type)}) -> ({', '.join(results)}) {{\n"
        f"  {', '.join(names)} = quant.dynamic_quantize %x {' '.join(c for c in clauses if c)}"
        f" : {tt(shape, x_type)} -> {', '.join(results)}\n"
        f"  func.return {', '.join(names)} : {', '.join(results)}\n}}\n"
    )
    return text


def dyn_oracle_kwargs(gran: str, shape) -> dict:
    kw = granularity_kwargs(gran, shape)
    if set(kw) == {"axis"}:  # per-axis: blocks of 1 on the axis, the whole extent elsewhere
        axis = kw["axis"]
        return {"block_shape": tuple(1 if k == axis else -1 for k in range(len(shape)))}
    return kw


def check_dynamic(text, x, want, mode) -> None:
    got = run(text, x, mode=mode)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        w = np.asarray(w)
        if g.shape != w.shape and g.size == w.size:  # per-axis scale: 1-D parameter
            w = w.reshape(g.shape)
        assert_same_bits(g, w, f"result {k} ({mode})")


DYN_INT_CASES = [
    ("i8", "f32", True, None),
    ("ui8", "f32", False, None),
    ("i8", "f16", True, 1e-3),
    ("i4", "bf16", False, 1e-5),
    ("ui4", "f32", False, None),
    ("i16", "f32", True, None),
]


@needs_jit
@pytest.mark.parametrize("mode", ["fused", "composite"])
@pytest.mark.parametrize("gran", DYN_GRANULARITIES)
@pytest.mark.parametrize("case", DYN_INT_CASES, ids=["-".join(map(str, c)) for c in DYN_INT_CASES])
def test_dynamic_quantize_integer(case, gran: str, mode: str) -> None:
    storage, scale_type, symmetric, eps = case
    shape = (6, 40)
    extra = f"eps({eps:e})" if eps else ""
    text = dynamic_ir(shape, "f32", storage, scale_type, gran, symmetric=symmetric, extra=extra)
    x = data(shape, scale=0.1)
    x[3] = 0.0  # an all-zero row: zero blocks in every row-wise granularity
    x[4, :20] = np.float32(7e-42)  # subnormal amax
    want = oracle.dynamic_quantize(
        x,
        dtype=storage,
        scale_dtype=scale_type,
        symmetric=symmetric,
        eps=eps,
        **dyn_oracle_kwargs(gran, shape),
    )
    check_dynamic(text, x, want, mode)


@needs_jit
@pytest.mark.parametrize("mode", ["fused", "composite"])
@pytest.mark.parametrize("gran", DYN_GRANULARITIES)
@pytest.mark.parametrize("storage", FLOAT_STORAGE)
def test_dynamic_quantize_float_f32_scale(storage: str, gran: str, mode: str) -> None:
    shape = (6, 40)
    text = dynamic_ir(shape, "f32", storage, "f32", gran)
    x = data(shape, scale=3.0, specials=False)
    x[2] = 0.0
    want = oracle.dynamic_quantize(x, dtype=storage, **dyn_oracle_kwargs(gran, shape))
    check_dynamic(text, x, want, mode)


@needs_jit
@pytest.mark.parametrize("mode", ["fused", "composite"])
@pytest.mark.parametrize("dq", [None, 0.03125, 3.7])
@pytest.mark.parametrize("x_type", ["f32", "bf16", "f16"])
def test_dynamic_quantize_nvfp4(x_type: str, dq, mode: str) -> None:
    shape = (8, 80)  # 5 blocks of 16 per row
    extra = "" if dq is None else f"double_quant({dq})"
    text = dynamic_ir(shape, x_type, "f4E2M1FN", "f8E4M3FN", "per_block(1, 16)", extra=extra)
    x = data(shape, scale=2.0, specials=False)
    x[1] = 0.0
    x[2, :16] = np.float32(1e-9)  # the e4m3 scale underflows to 0: data +-0
    x[2, 3] = np.float32(-1e-9)
    x[3, 16:32] = np.float32(1e5)  # the scale saturates at 448 (f16: the data is inf)
    with np.errstate(over="ignore"):
        x = x.astype(np_dtype(x_type))
    want = oracle.dynamic_quantize(
        x, dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16, axis=1,
        double_quant_scale=None if dq is None else np.float32(dq),
    )  # fmt: skip
    check_dynamic(text, x, want, mode)


@needs_jit
def test_dynamic_quantize_nvfp4_runtime_double_quant() -> None:
    shape = (4, 32)
    text = (
        f"func.func @f(%x: {tt(shape, 'f32')}, %dq: tensor<f32>) -> ({tt(shape, 'f4E2M1FN')},"
        f" {tt((4, 2), 'f8E4M3FN')}) {{\n"
        f"  %d, %s = quant.dynamic_quantize %x per_block(1, 16) double_quant(%dq : tensor<f32>)"
        f" : {tt(shape, 'f32')} -> {tt(shape, 'f4E2M1FN')}, {tt((4, 2), 'f8E4M3FN')}\n"
        f"  func.return %d, %s : {tt(shape, 'f4E2M1FN')}, {tt((4, 2), 'f8E4M3FN')}\n}}\n"
    )
    x = data(shape, specials=False)
    dq = np.asarray(np.float32(0.125))
    got = run(text, x, dq)
    want = oracle.dynamic_quantize(
        x, dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16, double_quant_scale=dq
    )
    for g, w in zip(got, want):
        assert_same_bits(g, w)


@needs_jit
@pytest.mark.parametrize("mode", ["fused", "composite"])
@pytest.mark.parametrize("rounding", ["floor", "rceil"])
@pytest.mark.parametrize("storage", FLOAT_STORAGE)
@pytest.mark.parametrize("gran", ["per_block(1, 32)", "block([2, 32])", "per_tensor"])
def test_dynamic_quantize_mx(storage: str, rounding: str, gran: str, mode: str) -> None:
    shape = (6, 72)  # a partial block of 8 at the end of every row
    extra = "" if rounding == "floor" else "scale_rounding(rceil)"
    text = dynamic_ir(shape, "f32", storage, "f8E8M0FNU", gran, extra=extra)
    x = data(shape, scale=1.0, specials=False)
    x[0, :32] = 0.0
    x[1, :32] *= np.float32(1e-38)  # subnormal / tiny amax: exponent clamped to -127
    x[1, 32:64] = np.float32(448.0) * np.exp2(np.float32(RNG.integers(-3, 3)))
    with np.errstate(over="ignore"):
        x[2, :32] *= np.float32(3e37)  # amax near the top of f32; some elements overflow
    x[3, 5] = np.inf
    x[4, 40] = np.nan
    want = oracle.dynamic_quantize(
        x, dtype=storage, scale_dtype="f8E8M0FNU", scale_rounding=rounding,
        **dyn_oracle_kwargs(gran, shape),
    )  # fmt: skip
    check_dynamic(text, x, want, mode)


@needs_jit
@pytest.mark.parametrize("mode", ["fused", "composite"])
def test_dynamic_quantize_nan_propagates_into_the_scale(mode: str) -> None:
    shape = (4, 32)
    text = dynamic_ir(shape, "f32", "i8", "f32", "per_token")
    x = data(shape, specials=False)
    x[1, 7] = np.nan
    x[2, 3] = np.inf
    want = oracle.dynamic_quantize(x, dtype="i8", block_shape=(1, -1))
    check_dynamic(text, x, want, mode)
    got = run(text, x, mode=mode)
    assert np.isnan(got[1][1, 0])


@needs_jit
def test_dynamic_quantize_nd_block_partial_and_3d() -> None:
    shape = (5, 3, 37)
    text = dynamic_ir(shape, "f32", "f8E4M3FN", "f32", "block([2, 2, 16])")
    x = data(shape, specials=False)
    want = oracle.dynamic_quantize(x, dtype="f8E4M3FN", block_shape=(2, 2, 16))
    for mode in ("fused", "composite"):
        check_dynamic(text, x, want, mode)


# ---------------------------------------------------------------------------------------
# numerics: fake_quantize
# ---------------------------------------------------------------------------------------

FAKE_DYN_CASES = [
    # storage, symmetric, domain, scale_type, eps
    ("i8", True, "int", "f32", None),
    ("i8", True, "none", "f32", None),
    ("ui8", True, "int", "f32", None),
    ("ui8", False, "int", "f32", None),
    ("i4", False, "int", "f16", 1e-4),
    ("ui4", False, "float", "f32", None),
    ("i8", False, "float", "bf16", None),
    ("f8E4M3FN", True, "int", "f32", None),
    ("f4E2M1FN", True, "int", "f16", 1e-3),
]


@needs_jit
@pytest.mark.parametrize("mode", ["fused", "composite"])
@pytest.mark.parametrize("gran", ["per_token", "per_block(1, 16)", "per_axis(1)", "per_tensor"])
@pytest.mark.parametrize("x_type", ["f32", "f16"])
@pytest.mark.parametrize(
    "case", FAKE_DYN_CASES, ids=["-".join(map(str, c)) for c in FAKE_DYN_CASES]
)
def test_fake_quantize_dynamic(case, x_type: str, gran: str, mode: str) -> None:
    storage, symmetric, domain, scale_type, eps = case
    shape = (6, 40)
    clauses = [
        f"storage({storage})",
        gran_clause(gran),
        "" if symmetric else "symmetric(false)",
        "" if domain == "int" else f"zero_point_domain({domain})",
        "" if scale_type == "f32" else f"scale_type({scale_type})",
        "" if eps is None else f"eps({eps:e})",
    ]
    t = tt(shape, x_type)
    text = (
        f"func.func @f(%x: {t}) -> {t} {{\n"
        f"  %y = quant.fake_quantize %x {' '.join(c for c in clauses if c)} : {t} -> {t}\n"
        f"  func.return %y : {t}\n}}\n"
    )
    x = data(shape, scale=0.5, specials=False)
    x[2] = 0.0
    x[3, 5] = np.nan
    x = x.astype(np_dtype(x_type))
    kw = granularity_kwargs(gran, shape)
    if gran == "per_token":
        kw = {"per_token": True}
    want = oracle.fake_quantize(
        x, dtype=storage, symmetric=symmetric, zero_point_domain=domain,
        scale_dtype=scale_type, eps=eps, **kw,
    )  # fmt: skip
    assert_same_bits(run(text, x, mode=mode), want, f"{case} {gran}")


@needs_jit
@pytest.mark.parametrize("mode", ["fused", "composite"])
@pytest.mark.parametrize(
    "storage, domain", [("i8", "int"), ("ui4", "int"), ("i8", "none"), ("ui8", "float"),
                        ("f8E4M3FN", "int"), ("f4E2M1FN", "int")]
)  # fmt: skip
def test_fake_quantize_static(storage: str, domain: str, mode: str) -> None:
    shape = (4, 24)
    is_int = not oracle.is_float_format(storage)
    zp_clause = f"zero_point(%z : {tt((24,), storage)})" if is_int and domain != "none" else ""
    args = [f"%x: {tt(shape, 'f32')}", f"%s: {tt((24,), 'f32')}"]
    if zp_clause:
        args.append(f"%z: {tt((24,), storage)}")
    dom = "" if domain == "int" else f"zero_point_domain({domain})"
    t = tt(shape, "f32")
    text = (
        f"func.func @f({', '.join(args)}) -> {t} {{\n"
        f"  %y = quant.fake_quantize %x storage({storage}) scale(%s : {tt((24,), 'f32')})"
        f" {zp_clause} per_axis(1) {dom} : {t} -> {t}\n  func.return %y : {t}\n}}\n"
    )
    s = scales_for(storage, (24,))
    x = data(shape, scale=float(np.max(s)))
    arrays = [x, s]
    z = None
    if zp_clause:
        z = zero_points_for(storage, (24,))
        arrays.append(z)
    want = oracle.fake_quantize(x, s, z, dtype=storage, axis=1, zero_point_domain=domain)
    assert_same_bits(run(text, *arrays, mode=mode), want)


# ---------------------------------------------------------------------------------------
# numerics: pack / unpack
# ---------------------------------------------------------------------------------------

PACK_CASES = [
    ("i4", (7,)),
    ("ui4", (4, 8)),
    ("f4E2M1FN", (3, 5)),
    ("i2", (11,)),
    ("ui2", (3, 2, 3)),
    ("i4", (1,)),
    ("i2", (2, 3, 8)),
    ("i4", (3, 4, 6)),
    ("f4E2M1FN", (2, 1, 4)),
]


@needs_jit
@pytest.mark.parametrize("case", PACK_CASES, ids=[f"{c[0]}-{c[1]}" for c in PACK_CASES])
def test_pack_unpack_roundtrip(case) -> None:
    storage, shape = case
    per = 8 // (4 if "4" in storage else 2)
    nbytes = -(-math.prod(shape) // per)
    text = (
        f"func.func @f(%q: {tt(shape, storage)}) -> ({tt((nbytes,), 'ui8')}, {tt(shape, storage)}) {{\n"
        f"  %p = quant.pack %q : {tt(shape, storage)} -> {tt((nbytes,), 'ui8')}\n"
        f"  %u = quant.unpack %p : {tt((nbytes,), 'ui8')} -> {tt(shape, storage)}\n"
        f"  func.return %p, %u : {tt((nbytes,), 'ui8')}, {tt(shape, storage)}\n}}\n"
    )
    q = random_codes(storage, shape)
    packed, unpacked = run(text, q)
    assert_same_bits(packed, oracle.pack(q))
    assert_same_bits(unpacked, q)


@needs_jit
@pytest.mark.parametrize("mode", ["fused", "composite"])
@pytest.mark.parametrize("storage", ["i4", "ui4", "f4E2M1FN", "ui2"])
def test_quantize_pack_and_unpack_dequantize(storage: str, mode: str) -> None:
    shape = (5, 33)  # odd: a padded tail
    per = 8 // (2 if storage == "ui2" else 4)
    nbytes = -(-math.prod(shape) // per)
    is_int = not oracle.is_float_format(storage)
    pshape = (5, 3)
    zp = f" zero_point(%z : {tt(pshape, storage)})" if is_int else ""
    args = f"%x: {tt(shape, 'f32')}, %s: {tt(pshape, 'f32')}" + (
        f", %z: {tt(pshape, storage)}" if is_int else ""
    )
    bt = tt((nbytes,), "ui8")
    text = (
        f"func.func @f({args}) -> ({bt}, {tt(shape, 'f32')}) {{\n"
        f"  %q = quant.quantize %x scale(%s : {tt(pshape, 'f32')}){zp} per_block(1, 16)"
        f" : {tt(shape, 'f32')} -> {tt(shape, storage)}\n"
        f"  %p = quant.pack %q : {tt(shape, storage)} -> {bt}\n"
        f"  %u = quant.unpack %p : {bt} -> {tt(shape, storage)}\n"
        f"  %d = quant.dequantize %u scale(%s : {tt(pshape, 'f32')}){zp} per_block(1, 16)"
        f" : {tt(shape, storage)} -> {tt(shape, 'f32')}\n"
        f"  func.return %p, %d : {bt}, {tt(shape, 'f32')}\n}}\n"
    )
    s = scales_for(storage, pshape)
    x = data(shape, scale=float(np.max(s)))
    arrays = [x, s]
    z = None
    if is_int:
        z = zero_points_for(storage, pshape)
        arrays.append(z)
    module = lower(text, mode)
    generics = sum(op.name == "linalg.generic" for op in module.walk())
    assert generics == (2 if mode == "fused" else 4)
    q = oracle.quantize(x, s, z, dtype=storage, axis=1, block_size=16)
    packed, deq = run(text, *arrays, mode=mode)
    assert_same_bits(packed, oracle.pack(q))
    assert_same_bits(deq, oracle.dequantize(q, s, z, axis=1, block_size=16))


# --- dynamic_quantize rules (docs/semantics.md section 4) --------------------------------


def _dynamic_kernel(shape: tuple[int, int], x_type: str, data: str, scale: str, extra: str = ""):
    t = f"tensor<{shape[0]}x{shape[1]}x{x_type}>"
    d = f"tensor<{shape[0]}x{shape[1]}x{data}>"
    s = f"tensor<{shape[0]}x{shape[1] // 16}x{scale}>"
    text = (
        f"func.func @main(%x: {t}) -> ({d}, {s}) {{\n"
        f"  %d, %s = quant.dynamic_quantize %x per_block(1, 16) {extra} : {t} -> {d}, {s}\n"
        f"  func.return %d, %s : {d}, {s}\n}}\n"
    )
    module = parse_module(text, "<dynamic>")
    LowerQuantPass().apply(make_context(), module)
    return compile_module(module)["main"]


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view({1: np.uint8, 2: np.uint16, 4: np.uint32}[a.dtype.itemsize])


@needs_jit
@pytest.mark.parametrize("scale", ["f16", "bf16"])
@pytest.mark.parametrize("data", ["i8", "f8E4M3FN"])
def test_dynamic_f16_bf16_scale_is_used_as_stored(scale: str, data: str) -> None:
    """(a) The data is divided by the scale rounded to its own type, not by the f32 one."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((64, 32)) * rng.uniform(0.1, 9, (64, 1))).astype(np.float32)
    got_data, got_scale = _dynamic_kernel(x.shape, "f32", data, scale)(x)
    want_data, want_scale = oracle.dynamic_quantize(x, dtype=data, scale_dtype=scale, block_size=16)
    assert np.array_equal(_bits(got_scale), _bits(want_scale))
    assert np.array_equal(_bits(got_data), _bits(want_data))
    stored = np.repeat(got_scale.astype(np.float32), 16, axis=1)
    assert np.array_equal(
        _bits(got_data), _bits(oracle.quantize(x, stored, dtype=data, block_shape=[1, 1]))
    )
    # the rule is observable: dividing by the unrounded f32 scale differs somewhere
    bound = 127.0 if data == "i8" else 448.0
    unrounded = np.repeat(np.abs(x).reshape(64, 2, 16).max(-1) / np.float32(bound), 16, axis=1)
    other = oracle.quantize(x, unrounded.astype(np.float32), dtype=data, block_shape=[1, 1])
    assert not np.array_equal(_bits(got_data), _bits(other))


@needs_jit
@pytest.mark.parametrize("x_type", ["f32", "bf16"])
def test_nvfp4_underflowing_block_scale_is_positive_zero(x_type: str) -> None:
    """(b) amax > 0 whose e4m3 scale rounds to 0: code 0x00, data +-0 with x's sign."""
    dtype = {"f32": np.float32, "bf16": ml_dtypes.bfloat16}[x_type]
    x = np.full((2, 32), 1e-5, np.float32)
    x[:, 1::2] = -1e-5
    x[1, 16:] = np.linspace(-1, 1, 16)  # an ordinary block next to it
    x = x.astype(dtype)
    for extra, dq in (("", None), ("double_quant(4.0)", 4.0)):
        data, scale = _dynamic_kernel((2, 32), x_type, "f4E2M1FN", "f8E4M3FN", extra)(x)
        want_data, want_scale = oracle.dynamic_quantize(
            x, dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16, double_quant_scale=dq
        )
        codes = _bits(scale)
        assert codes[0, 0] == 0x00 and codes[0, 1] == 0x00 and codes[1, 0] == 0x00
        assert codes[1, 1] != 0x00
        signs = np.signbit(data[0].astype(np.float32))
        assert np.all(data[0].astype(np.float32) == 0)
        assert np.array_equal(signs, np.signbit(x[0].astype(np.float32)))
        assert np.array_equal(codes, _bits(want_scale))
        assert np.array_equal(_bits(data), _bits(want_data))


@needs_jit
@pytest.mark.parametrize(
    ("data", "scale"),
    [("i8", "f32"), ("i8", "f16"), ("f8E4M3FN", "bf16"), ("f4E2M1FN", "f8E4M3FN"),
     ("f8E5M2", "f8E8M0FNU")],
)  # fmt: skip
def test_dynamic_block_with_nan_or_inf_statistics(data: str, scale: str) -> None:
    """(c) One NaN makes the block's scale NaN (the positive one); +-inf makes amax inf."""
    x = np.tile(np.linspace(-2, 2, 16, dtype=np.float32), (4, 2))
    x[0, 3] = np.nan
    x[1, 4] = -np.nan
    x[2, 5] = np.inf
    x[3, 6] = -np.inf
    x[3, 20] = np.nan
    got_data, got_scale = _dynamic_kernel(x.shape, "f32", data, scale)(x)
    want_data, want_scale = oracle.dynamic_quantize(x, dtype=data, scale_dtype=scale, block_size=16)
    assert np.array_equal(_bits(got_scale), _bits(want_scale))
    assert np.array_equal(_bits(got_data), _bits(want_data))
    positive_nan = {"f32": 0x7FC00000, "f16": 0x7E00, "bf16": 0x7FC0, "f8E4M3FN": 0x7F,
                    "f8E8M0FNU": 0xFF}[scale]  # fmt: skip
    codes = _bits(got_scale)
    assert codes[0, 0] == codes[1, 0] == codes[3, 1] == positive_nan
    inf_scale = got_scale[2, 0].astype(np.float32)
    if scale in ("f32", "f16", "bf16"):
        assert inf_scale == np.inf
    elif scale == "f8E4M3FN":
        assert inf_scale == 448.0  # (inf / 6) clipped to the largest e4m3 scale
    else:
        assert codes[2, 0] == 254  # e8m0: exponent clamped to 127
    if data == "i8":
        assert np.all(got_data[0, :16] == 0) and np.all(got_data[1, :16] == 0)  # zp
