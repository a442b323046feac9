"""fold-quant on quant.rescale: identities and chains fold only where exact.

The IR before and after the pass is evaluated with the rescale oracle
(tests/support/rescale_oracle.py) on every input code of 8- and 16-bit inputs, and on the
extremes plus a random sample of i32 inputs.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerAttr, IntegerType, ModuleOp, Signedness

from qopt.passes.fold_params import const_array, element_of
from qopt.qdialect.rescale import RescaleOp
from tests.passes.test_fold_quant import quant_ops, run_pass
from tests.support import rescale_oracle

_DTYPES = {("i", 8): np.int8, ("i", 16): np.int16, ("i", 32): np.int32}
_DTYPES |= {("ui", 8): np.uint8, ("ui", 16): np.uint16, ("ui", 32): np.uint32}


def dtype_of(t) -> np.dtype:
    assert isinstance(t, IntegerType)
    kind = "ui" if t.signedness.data == Signedness.UNSIGNED else "i"
    return np.dtype(_DTYPES[(kind, t.width.data)])


def _int_param(op: RescaleOp, name: str):
    const = op.param(name)
    if const is None:
        return 0
    values = const_array(const)
    return values.astype(np.int64) if values.ndim else int(values)


def evaluate(module: ModuleOp, x: np.ndarray) -> np.ndarray:
    """Run ``@f`` (rescale ops and a return) with the oracle."""
    (function,) = [op for op in module.walk() if isinstance(op, func.FuncOp)]
    env = {function.body.block.args[0]: x}
    for op in function.body.block.ops:
        if isinstance(op, func.ReturnOp):
            return env[op.arguments[0]]
        assert isinstance(op, RescaleOp), op.name
        g = op.granularity_of()
        bounds = op.properties.get("storage_min"), op.properties.get("storage_max")
        storage_range = None
        if all(isinstance(b, IntegerAttr) for b in bounds):
            storage_range = (bounds[0].value.data, bounds[1].value.data)
        env[op.result] = rescale_oracle.rescale(
            env[op.input],
            _int_param(op, "multiplier"),
            _int_param(op, "shift"),
            in_zero_point=_int_param(op, "in_zero_point"),
            out_zero_point=_int_param(op, "out_zero_point"),
            dtype=dtype_of(element_of(op.result)),
            axis=getattr(g, "axis", None),
            rounding=op.rounding_mode,
            input_unsigned=op.prop_bool("input_unsigned", False),
            output_unsigned=op.prop_bool("output_unsigned", False),
            saturate=op.saturate_flag,
            storage_range=storage_range,
        )
    raise AssertionError("no return")


def codes(dtype, channels: int = 0) -> np.ndarray:
    info = np.iinfo(dtype)
    if info.bits <= 16:
        values = np.arange(int(info.min), int(info.max) + 1)
    else:
        rng = np.random.default_rng(0)
        edges = [info.min, info.min + 1, -1, 0, 1, info.max - 1, info.max]
        values = np.concatenate([np.array(edges), rng.integers(info.min, info.max, 4096)])
        values = values[(values >= info.min) & (values <= info.max)]
    values = values.astype(dtype)
    return values if not channels else np.repeat(values[:, None], channels, axis=1)


def function(t_in: str, t_out: str, body: str) -> str:
    return f"func.func @f(%x: {t_in}) -> {t_out} {{\n{body}\n  func.return %v : {t_out}\n}}\n"


def check(text: str, data: np.ndarray, remaining: int) -> None:
    before, after = run_pass(text)
    assert len(quant_ops(after)) == remaining, quant_ops(after)
    assert np.array_equal(evaluate(after, data), evaluate(before, data))


# ---------------------------------------------------------------------------------------
# identities
# ---------------------------------------------------------------------------------------


def test_identity_rescale_removed():
    text = function(
        "tensor<256xi8>",
        "tensor<256xi8>",
        "  %v = quant.rescale %x multiplier(1024) shift(10) in_zero_point(-3) out_zero_point(-3)"
        " rounding(double_round) : tensor<256xi8> -> tensor<256xi8>",
    )
    check(text, codes(np.int8), 0)


def test_identity_rescale_per_axis_i32_removed():
    body = (
        "  %v = quant.rescale %x multiplier(dense<[1, 4, 1073741824]> : tensor<3xi32>)"
        " shift(dense<[0, 2, 30]> : tensor<3xi8>) per_axis(1) : tensor<7x3xi32> -> tensor<7x3xi32>"
    )
    text = function("tensor<7x3xi32>", "tensor<7x3xi32>", body)
    data = codes(np.int32)[:7]
    check(text, np.repeat(data[:, None], 3, axis=1), 0)


def test_not_quite_identity_rescales_stay():
    """m = 2^s + 1; different zero points; a narrow range; unsigned output flag."""
    cases = [
        "multiplier(1025) shift(10)",
        "multiplier(1024) shift(10) in_zero_point(-3) out_zero_point(2)",
        "multiplier(1024) shift(10) range(-100, 100)",
        "multiplier(1024) shift(10) output_unsigned(true)",
    ]
    for clauses in cases:
        body = f"  %v = quant.rescale %x {clauses} : tensor<256xi8> -> tensor<256xi8>"
        check(function("tensor<256xi8>", "tensor<256xi8>", body), codes(np.int8), 1)


# ---------------------------------------------------------------------------------------
# chains
# ---------------------------------------------------------------------------------------


def chain(inner: str, outer: str, a: str = "i8", b: str = "i16", c: str = "i8", n=256) -> str:
    ta, tb, tc = (f"tensor<{n}x{t}>" for t in (a, b, c))
    body = (
        f"  %m = quant.rescale %x {inner} : {ta} -> {tb}\n"
        f"  %v = quant.rescale %m {outer} : {tb} -> {tc}"
    )
    return function(ta, tc, body)


def test_exact_inner_step_folds():
    """i8 -> i16 times 3 (m = 3 * 2^4, s = 4) with zero point 10, then i16 -> i8 reading
    zero point 10: one rescale with m = 3 * m2."""
    text = chain(
        "multiplier(48) shift(4) in_zero_point(-5) out_zero_point(10)",
        "multiplier(600000000) shift(35) in_zero_point(10) out_zero_point(-7) rounding(tonearest)",
    )
    check(text, codes(np.int8), 1)
    _, after = run_pass(text)
    (op,) = [op for op in after.walk() if isinstance(op, RescaleOp)]
    assert int(op.param("multiplier").value.data) == 1800000000


def test_exact_inner_step_per_axis_folds():
    inner = (
        "multiplier(dense<[16, 32, 48]> : tensor<3xi32>) shift(dense<4> : tensor<3xi8>) per_axis(1)"
    )
    text = chain(inner, "multiplier(600000000) shift(35)", n="256x3")
    check(text, codes(np.int8, 3), 1)


def test_inexact_chains_stay():
    cases = [
        # the inner step rounds (m1 is not a multiple of 2^s1)
        ("multiplier(50) shift(4)", "multiplier(600000000) shift(35)"),
        # the inner step clamps: 127 * 300 leaves i16
        ("multiplier(4800) shift(4)", "multiplier(600000) shift(35)"),
        # the outer step reads another zero point than the inner one wrote
        ("multiplier(48) shift(4) out_zero_point(10)", "multiplier(600000000) shift(35)"),
        # the folded multiplier would not fit 31 bits
        ("multiplier(48) shift(4)", "multiplier(1518500250) shift(38)"),
    ]
    for inner, outer in cases:
        check(chain(inner, outer), codes(np.int8), 2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(0, 300),
    s1=st.integers(0, 20),
    inexact=st.booleans(),
    zi=st.integers(-128, 127),
    zo=st.integers(-1000, 1000),
    m2=st.one_of(st.integers(0, 1 << 20), st.integers(0, (1 << 31) - 1)),
    s2=st.integers(0, 62),
    rounding=st.sampled_from(["single_round", "double_round", "tonearest", "upward"]),
    a=st.sampled_from(["i8", "ui8"]),
)
def test_rescale_chains_fold_only_when_exact(k, s1, inexact, zi, zo, m2, s2, rounding, a):
    m1 = min(k << s1, (1 << 31) - 1) + (1 if inexact else 0)
    m1 = min(m1, (1 << 31) - 1)
    in_zp = zi % 256 if a == "ui8" else zi
    text = chain(
        f"multiplier({m1}) shift({s1}) in_zero_point({in_zp}) out_zero_point({zo})",
        f"multiplier({m2}) shift({s2}) in_zero_point({zo}) out_zero_point(3) rounding({rounding})",
        a=a,
    )
    before, after = run_pass(text)
    data = codes(np.uint8 if a == "ui8" else np.int8)
    assert np.array_equal(evaluate(after, data), evaluate(before, data))
