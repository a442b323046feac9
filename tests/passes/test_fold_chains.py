"""fold-quant coverage: distinct parameter tuples, closed forms, whole chains, f16 pairs,
the proof cache, dynamic shapes, and a sample of the generated chains.

Every fold is checked as in test_fold_quant.py: the IR before and after the pass is run by
the oracle (quant_eval) on every code of the input storage type, in every channel.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import FileLineColLoc, FusedLoc, IntegerType

from qopt.passes import fold_eval, fold_params, fold_proofs, fold_quant
from qopt.passes.fold_closed_forms import round_trip_rows
from qopt.passes.fold_params import Params, Side, Step
from qopt.qdialect import formats
from qopt.qdialect.attrs import PerTensorAttr
from qopt.qdialect.context import make_context
from tests.passes.test_fold_quant import EXTREME_SCALES, ROUNDINGS, quant_ops, run, run_pass
from tests.support import fold_chains
from tests.support.fold_chains import every_code


def per_axis_round_trip(storage: str, channels: int, scale: str, zp: int, opts: str = "",
                        extent: str | None = None, expressed: str = "f32") -> str:  # fmt: skip
    n = every_code(storage).size if extent is None else extent
    t, x = f"tensor<{n}x{channels}x{storage}>", f"tensor<{n}x{channels}x{expressed}>"
    params = f"scale({scale}) zero_point(dense<{zp}> : tensor<{channels}xi32>) per_axis(1)"
    return f"""func.func @f(%q: {t}) -> {t} {{
  %d = quant.dequantize %q {params} : {t} -> {x}
  %r = quant.quantize %d {params} {opts} : {x} -> {t}
  func.return %r : {t}
}}
"""


def columns(storage: str, channels: int) -> np.ndarray:
    return np.repeat(every_code(storage)[:, None], channels, axis=1)


def assert_folds_exactly(text: str, data: np.ndarray, remaining: int = 0) -> None:
    before, after = run_pass(text)
    assert len(quant_ops(after)) == remaining, quant_ops(after)
    assert np.array_equal(
        np.asarray(run(after, data)).astype(np.int64),
        np.asarray(run(before, data)).astype(np.int64),
    )


# ---------------------------------------------------------------------------------------
# distinct tuples and closed forms
# ---------------------------------------------------------------------------------------


def test_round_trip_i16_per_axis_beyond_64_channels_folds():
    """One shared scale over 65 i16 channels (the old limit was 64): one tuple, and the
    closed form (no enumeration at all) settles it."""
    scale = "dense<0.0123> : tensor<65xf32>"
    assert_folds_exactly(per_axis_round_trip("i16", 65, scale, -5), columns("i16", 65))


def test_round_trip_i8_per_axis_20000_channels_folds():
    scale = "dense<3.5e-3> : tensor<20000xf32>"
    assert_folds_exactly(per_axis_round_trip("i8", 20000, scale, 7), columns("i8", 20000))


def test_round_trip_counts_distinct_tuples_not_channels(monkeypatch):
    """toward_zero needs enumeration: 100 channels with 2 distinct scales are 2 tuples
    (within a budget of 2 i16 domains); 100 channels of 50 distinct scales are not."""
    monkeypatch.setattr(fold_proofs, "ENUMERATION_BUDGET", 2 * 65536)
    two = ", ".join(["0.5", "0.25"] * 50)
    text = per_axis_round_trip(
        "i16", 100, f"dense<[{two}]> : tensor<100xf32>", 3, "rounding(toward_zero)"
    )
    assert_folds_exactly(text, columns("i16", 100))
    many = ", ".join(repr(float(np.float32(2.0 ** -(k % 50)))) for k in range(100))
    text = per_axis_round_trip(
        "i16", 100, f"dense<[{many}]> : tensor<100xf32>", 3, "rounding(toward_zero)"
    )
    _, after = run_pass(text)
    assert len(quant_ops(after)) == 1  # over the budget: fused only, not removed


def test_round_trip_one_bad_channel_stays():
    """The closed form holds for every channel but one whose products overflow; that one
    is enumerated and fails: the pair stays (fused into a requantize)."""
    values = ", ".join(["0.1"] * 99 + ["3.0e38"])
    text = per_axis_round_trip("i8", 100, f"dense<[{values}]> : tensor<100xf32>", 0)
    before, after = run_pass(text)
    assert quant_ops(after) == ["quant.requantize"]
    data = columns("i8", 100)
    assert np.array_equal(run(after, data), run(before, data))


def test_round_trip_dynamic_extent_folds_by_entries():
    """A dynamic data extent: the tuples are read entry by entry (one granularity), so the
    per-axis round trip still folds; the oracle runs it on a concrete tensor."""
    scale = "dense<0.07> : tensor<70xf32>"
    text = per_axis_round_trip("i16", 70, scale, 11, extent="?")
    assert_folds_exactly(text, columns("i16", 70))


STORAGE_INTS = ["i8", "ui8", "i16", "ui16", "i4", "ui4", "i2", "ui2"]


@settings(max_examples=200, deadline=None)
@given(
    storage=st.sampled_from(STORAGE_INTS),
    scale=st.one_of(
        st.sampled_from(EXTREME_SCALES),
        st.floats(min_value=2.0**-149, max_value=float(np.finfo(np.float32).max), width=32),
    ),
    zp_at=st.floats(0, 1),
    rounding=st.sampled_from(ROUNDINGS),
)
def test_round_trip_closed_form_is_sound(storage, scale, zp_at, rounding):
    """Wherever the closed form says "identity", every code comes back (fold_eval, the
    lowering's own math, on the whole storage domain)."""
    element = formats.parse_type_name(storage)
    assert isinstance(element, IntegerType)
    lo, hi = formats.integer_range(element)
    zp = int(lo + round(zp_at * (hi - lo)))
    side = Side(element, None, None, PerTensorAttr())
    step = Step(side, side, fold_params.f32, rounding, True, (lo, hi))
    params = Params(np.array([[scale]], np.float32), np.array([[zp]], np.int64))
    if not round_trip_rows(step, params, params)[0, 0]:
        return
    codes = fold_eval.storage_domain(element)
    with np.errstate(all="ignore"):
        x = fold_eval.dequantize(codes, element, params.scale, params.zero_point)
        out = fold_eval.quantize(
            x, params.scale, params.zero_point, element, rounding, True, (lo, hi)
        )
    assert np.array_equal(out[0], codes)


# ---------------------------------------------------------------------------------------
# f16 / bf16 intermediates
# ---------------------------------------------------------------------------------------


def f16_pair(expressed: str, s_in: str, s_out: str, a: str = "i8", b: str = "i16") -> str:
    n = every_code(a).size
    return f"""func.func @f(%q: tensor<{n}x{a}>) -> tensor<{n}x{b}> {{
  %d = quant.dequantize %q scale({s_in}) zero_point(3) : tensor<{n}x{a}> -> tensor<{n}x{expressed}>
  %r = quant.quantize %d scale({s_out}) zero_point(-7) : tensor<{n}x{expressed}> -> tensor<{n}x{b}>
  func.return %r : tensor<{n}x{b}>
}}
"""


@pytest.mark.parametrize("expressed", ["f16", "bf16"])
def test_f16_pair_fused_where_its_rounding_changes_no_code(expressed):
    """0.5 * (q - 3) is exact in f16 and bf16: the pair is one requantize."""
    before, after = run_pass(f16_pair(expressed, "0.5", "0.25"))
    assert quant_ops(after) == ["quant.requantize"]
    codes = every_code("i8")
    assert np.array_equal(run(after, codes), run(before, codes))


@pytest.mark.parametrize("expressed", ["f16", "bf16"])
def test_f16_pair_that_rounds_stays(expressed):
    """0.1 * (q - 3) rounds in f16 / bf16 to values a finer output grid tells apart."""
    _, after = run_pass(f16_pair(expressed, "0.1", "1.0e-3"))
    assert quant_ops(after) == ["quant.dequantize", "quant.quantize"]


# ---------------------------------------------------------------------------------------
# whole chains
# ---------------------------------------------------------------------------------------

WHOLE_CHAIN = """func.func @f(%q: tensor<256xi8>) -> tensor<256xOUT> {
  %m0 = quant.requantize %q in(scale(4.0)) out(scale(1.0)) : tensor<256xi8> -> tensor<256xui8> loc("w.mlir":2:3)
  %m1 = quant.requantize %m0 in(scale(1.0)) out(scale(4.0)) : tensor<256xui8> -> tensor<256xi8> loc("w.mlir":3:3)
  %v = quant.requantize %m1 in(scale(4.0)) out(scale(4.0)) rounding(half_up) : tensor<256xi8> -> tensor<256xOUT> loc("w.mlir":4:3)
  func.return %v : tensor<256xOUT>
}
"""


def test_whole_chain_folds_where_no_pair_does():
    """i8 -> ui8 (x4, clamps negatives) -> i8 (/4) -> ui2 (half_up): neither pair is
    exact alone, the whole chain equals one requantize i8 -> ui2 (the final clamp to
    [0, 3] hides both earlier clamps and the double rounding)."""
    text = WHOLE_CHAIN.replace("OUT", "ui2")
    before, after = run_pass(text)
    assert quant_ops(after) == ["quant.requantize"]
    codes = every_code("i8")
    assert np.array_equal(run(after, codes), run(before, codes))
    (op,) = [op for op in after.walk() if op.name == "quant.requantize"]
    assert isinstance(op.location, FusedLoc)
    lines = [loc.line.data for loc in op.location.locations.data if isinstance(loc, FileLineColLoc)]
    assert lines == [2, 3, 4]


def test_whole_chain_that_is_not_exact_stays():
    """The same chain into ui8: the first clamp to [0, 255] shows; nothing folds."""
    _, after = run_pass(WHOLE_CHAIN.replace("OUT", "ui8"))
    assert len(quant_ops(after)) == 3


def test_four_step_chain_through_pairs_folds_whole():
    """The same chain written as dequantize / quantize pairs (fused first) plus a
    round trip at the end: four steps, one requantize."""
    text = """func.func @f(%q: tensor<256xi8>) -> tensor<256xui2> {
  %x0 = quant.dequantize %q scale(4.0) : tensor<256xi8> -> tensor<256xf32>
  %m0 = quant.quantize %x0 scale(1.0) : tensor<256xf32> -> tensor<256xui8>
  %x1 = quant.dequantize %m0 scale(1.0) : tensor<256xui8> -> tensor<256xf32>
  %m1 = quant.quantize %x1 scale(4.0) : tensor<256xf32> -> tensor<256xi8>
  %m2 = quant.requantize %m1 in(scale(4.0)) out(scale(2.0)) rounding(toward_zero) : tensor<256xi8> -> tensor<256xi16>
  %v = quant.requantize %m2 in(scale(2.0)) out(scale(4.0)) rounding(half_up) : tensor<256xi16> -> tensor<256xui2>
  func.return %v : tensor<256xui2>
}
"""
    assert_folds_exactly(text, every_code("i8"), remaining=1)


# ---------------------------------------------------------------------------------------
# the proof cache
# ---------------------------------------------------------------------------------------


def test_failed_proofs_are_not_redone_on_later_sweeps(monkeypatch):
    """A chain that cannot fold next to pairs that fuse (each fusion starts another
    sweep): its proof runs once."""
    calls = []
    original = fold_quant.compare_steps

    def counting(steps, folded, shape, **options):
        calls.append(tuple(steps))
        return original(steps, folded, shape, **options)

    monkeypatch.setattr(fold_quant, "compare_steps", counting)
    text = """func.func @f(%q: tensor<256xi8>, %p: tensor<256xi8>) -> (tensor<256xi8>, tensor<256xi8>) {
  %a = quant.requantize %q in(scale(1.0)) out(scale(3.0)) : tensor<256xi8> -> tensor<256xi8>
  %b = quant.requantize %a in(scale(3.0)) out(scale(0.7)) : tensor<256xi8> -> tensor<256xi8>
  %x0 = quant.dequantize %p scale(1.0) : tensor<256xi8> -> tensor<256xf32>
  %y0 = quant.quantize %x0 scale(2.0) : tensor<256xf32> -> tensor<256xi8>
  %x1 = quant.dequantize %y0 scale(2.0) : tensor<256xi8> -> tensor<256xf32>
  %y1 = quant.quantize %x1 scale(5.0) : tensor<256xf32> -> tensor<256xi8>
  func.return %b, %y1 : tensor<256xi8>, tensor<256xi8>
}
"""
    _, after = run_pass(text)
    assert len(calls) == len(set(calls))
    assert len(quant_ops(after)) == 4


# ---------------------------------------------------------------------------------------
# generated chains
# ---------------------------------------------------------------------------------------


def test_generated_chains_never_fold_inexactly():
    """A sample of benchmarks/fold_coverage.py's chains: no fold changes a bit, and every
    exactly foldable round trip and requantize chain folds."""
    ctx = make_context()
    for chain in fold_chains.generate(20, seed=3):
        verdict = fold_chains.judge(chain, ctx, fold_quant.FoldQuantPass)
        assert verdict.exact, chain.text
        if chain.family in ("round_trip", "chain") and verdict.foldable:
            assert verdict.folded, chain.text


def test_ops_with_properties_the_proofs_do_not_model_are_left_alone():
    """A property the dialect may gain later may change the meaning of the op: until the
    proofs model it, the round trip and the chain stay as they are."""
    from xdsl.dialects.builtin import StringAttr

    from qopt.qdialect.context import parse_module

    text = """func.func @f(%q: tensor<16xi8>) -> (tensor<16xi8>, tensor<16xi8>) {
  %d = quant.dequantize %q scale(0.5) zero_point(3) : tensor<16xi8> -> tensor<16xf32>
  %r = quant.quantize %d scale(0.5) zero_point(3) : tensor<16xf32> -> tensor<16xi8>
  %a = quant.requantize %q in(scale(1.0)) out(scale(0.5)) : tensor<16xi8> -> tensor<16xi16>
  %b = quant.requantize %a in(scale(0.5)) out(scale(1.0)) : tensor<16xi16> -> tensor<16xi8>
  func.return %r, %b : tensor<16xi8>, tensor<16xi8>
}
"""
    ctx = make_context()
    module = parse_module(text, "f.mlir", ctx)
    for op in module.walk():
        if op.name in ("quant.quantize", "quant.requantize"):
            op.properties["some_future_option"] = StringAttr("on")
    fold_quant.FoldQuantPass().apply(ctx, module)
    assert len(quant_ops(module)) == 4
    _, after = run_pass(text)
    assert quant_ops(after) == []  # without it: %r folds, the chain folds to an identity


THROUGH_BF16 = """func.func @f(%q: tensor<16xui4>) -> tensor<16xui16> {
  %x0 = quant.dequantize %q scale(0.0013654488138854504) zero_point(15) : tensor<16xui4> -> tensor<16xbf16>
  %m0 = quant.quantize %x0 scale(0.004096346441656351) zero_point(15) : tensor<16xbf16> -> tensor<16xui16>
  %x1 = quant.dequantize %m0 scale(0.004096346441656351) zero_point(15) : tensor<16xui16> -> tensor<16xbf16>
  %v = quant.quantize %x1 scale(OUT) zero_point(13178) : tensor<16xbf16> -> tensor<16xui16>
  func.return %v : tensor<16xui16>
}
"""


def test_chain_through_a_bf16_pair_folds_whole():
    """The second pair alone is not an f32 requantize (bf16 rounds ui16 codes), but after
    the first step only 16 codes reach it, which it maps as one requantize would."""
    text = THROUGH_BF16.replace("OUT", "0.01228903979063034")
    second = "\n".join(
        line.replace("%m0", "%q").replace("tensor<16xui4>", "tensor<16xui16>")
        for line in text.splitlines()
        if "%x0" not in line
    )
    _, alone = run_pass(second)
    assert quant_ops(alone) == ["quant.dequantize", "quant.quantize"]
    assert_folds_exactly(text, every_code("ui4"), remaining=1)


def test_chain_through_a_bf16_pair_that_rounds_stays():
    """A finer output scale tells the bf16 rounding apart: the pair stays."""
    _, after = run_pass(THROUGH_BF16.replace("OUT", "1.0e-6"))
    assert quant_ops(after) == ["quant.requantize", "quant.dequantize", "quant.quantize"]


# ---------------------------------------------------------------------------------------
# zero point added before rounding (upstream MLIR, StableHLO)
# ---------------------------------------------------------------------------------------

BEFORE = "zero_point_order(before_rounding)"


@settings(max_examples=30, deadline=None)
@given(
    storage=st.sampled_from(["i8", "ui8", "i4", "ui4"]),
    scale=st.sampled_from([0.5, 0.3, 1 / 3, 1e-30, 3.0e38, 2.0**-126, 7.0]),
    zp_at=st.floats(0, 1),
    rounding=st.sampled_from(ROUNDINGS),
    ratio=st.sampled_from([1.0, 2.0, 0.5, 3.0]),
    orders=st.sampled_from([(BEFORE, ""), ("", BEFORE), (BEFORE, BEFORE)]),
)
def test_zero_point_before_rounding_folds_only_when_exact(
    storage, scale, zp_at, rounding, ratio, orders
):
    """Round trips and two-step chains with ops that add the zero point before rounding:
    the proofs evaluate that order, so every fold keeps every code's bits."""
    element = formats.parse_type_name(storage)
    lo, hi = formats.integer_range(element)
    zp = int(lo + round(zp_at * (hi - lo)))
    n = every_code(storage).size
    t = f"tensor<{n}x{storage}>"
    s = repr(float(np.float32(scale)))
    s2 = repr(float(np.float32(min(scale * ratio, 3.0e38))))
    text = f"""func.func @f(%q: {t}) -> ({t}, {t}) {{
  %d = quant.dequantize %q scale({s}) zero_point({zp}) : {t} -> tensor<{n}xf32>
  %r = quant.quantize %d scale({s}) zero_point({zp}) rounding({rounding}) {orders[0]} : tensor<{n}xf32> -> {t}
  %a = quant.requantize %q in(scale({s}) zero_point({zp})) out(scale({s2}) zero_point({zp})) {orders[0]} : {t} -> tensor<{n}xi16>
  %b = quant.requantize %a in(scale({s2}) zero_point({zp})) out(scale({s}) zero_point({zp})) rounding({rounding}) {orders[1]} : tensor<{n}xi16> -> {t}
  func.return %r, %b : {t}, {t}
}}
"""
    before, after = run_pass(text)
    codes = every_code(storage)
    from tests.support.quant_eval import evaluate, find_function

    want = evaluate(find_function(before, "f"), codes)
    got = evaluate(find_function(after, "f"), codes)
    for w, g in zip(want, got):
        assert np.array_equal(np.asarray(w).astype(np.int64), np.asarray(g).astype(np.int64))


def test_zero_point_before_rounding_round_trip_folds():
    """The closed form holds in either order: 0.3 with zero point 3 (odd, where the
    orders differ on ties) comes back on every i8 code."""
    text = f"""func.func @f(%q: tensor<256xi8>) -> tensor<256xi8> {{
  %d = quant.dequantize %q scale(0.3) zero_point(3) : tensor<256xi8> -> tensor<256xf32>
  %r = quant.quantize %d scale(0.3) zero_point(3) {BEFORE} : tensor<256xf32> -> tensor<256xi8>
  func.return %r : tensor<256xi8>
}}
"""
    assert_folds_exactly(text, every_code("i8"))
