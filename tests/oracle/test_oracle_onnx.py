"""Proof of the oracle (tests/oracle.py) against ONNX, bit for bit.

1. Every ONNX backend node test of QuantizeLinear, DequantizeLinear and
   DynamicQuantizeLinear that the installed onnx generates (including the ``_expanded``
   function tests) is mapped to an oracle call: one pytest case each.
2. Hypothesis cross-checks against ``onnx.reference.ReferenceEvaluator`` on random
   inputs: per-tensor / per-axis / blocked, integer and float storage, ties, +-0, +-inf,
   NaN, subnormals and saturation.

Where the ONNX *reference implementation* has no defined result (integer QuantizeLinear
of NaN / +-inf / |x/s| >= 2^30 goes through an undefined ``float -> int32`` cast) the
elements are checked against the project's rule (docs/semantics.md) instead (NaN -> zero point, saturation).
"""

from __future__ import annotations

import warnings

import ml_dtypes
import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import helper
from onnx.reference import ReferenceEvaluator

from tests.support import oracle
from tests.support.bits import assert_same_bits
from tests.support.onnx_cases import CASES, OPS, as_array, oracle_for_case

F32 = np.float32


@pytest.fixture(autouse=True)
def _strict_numpy():
    """The oracle must not trip any numpy floating-point check it does not silence itself."""
    with np.errstate(all="raise"):
        yield


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _run_onnx(node, feeds):
    """Run one node in the ONNX reference evaluator (its numpy warnings are its own)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return ReferenceEvaluator(node).run(None, feeds)


@pytest.mark.parametrize("name", sorted(CASES))
def test_onnx_node_case(name):
    tc, node = CASES[name]
    assert node is not None, f"{name}: a Q/DQ graph that is not one of the mapped node tests"
    assert len(tc.data_sets) >= 1
    for inputs, outputs in tc.data_sets:
        names = [i.name for i in tc.model.graph.input]
        feeds = dict(zip(names, (as_array(a) for a in inputs), strict=True))
        want = [as_array(a) for a in outputs]
        got = oracle_for_case(node, feeds)
        assert len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_bits(g, w, f"{name} output {i}")


def test_collection_is_complete():
    """The mapped cases are exactly the Q/DQ/DynQ node tests of load_node_model_tests()."""
    from onnx.backend.test.loader import load_node_model_tests

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        every = load_node_model_tests()
    related = {
        tc.name
        for tc in every
        if any(n.op_type in OPS for n in tc.model.graph.node)
        or tc.name.split("_expanded")[0] in CASES
    }
    assert related == set(CASES)
    assert len(CASES) >= 33


def test_expanded_function_models_agree():
    """The ``_expanded`` graphs compute what the op does (sanity of the mapping)."""
    for name, (tc, _node) in CASES.items():
        if "_expanded" not in name:
            continue
        inputs, outputs = tc.data_sets[0]
        names = [i.name for i in tc.model.graph.input]
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = ReferenceEvaluator(tc.model).run(None, dict(zip(names, map(as_array, inputs))))
        for r, w in zip(res, outputs):
            assert_same_bits(r, as_array(w), name)


# ---------------------------------------------------------------------------------------
# 2. hypothesis cross-checks against onnx.reference
# ---------------------------------------------------------------------------------------

INT_TYPES = [
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    ml_dtypes.int4,
    ml_dtypes.uint4,
    ml_dtypes.int2,
    ml_dtypes.uint2,
]
FLOAT_TYPES = [ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2, ml_dtypes.float4_e2m1fn]

_POW2 = [2.0**k for k in range(-12, 13)]


def _f32(v: float) -> float:
    """The nearest f32 value (hypothesis wants elements exactly representable)."""
    with np.errstate(all="ignore"):
        return float(np.float32(v))


_SCALES = st.one_of(
    st.sampled_from(_POW2),  # exact ties x / s = k + 0.5
    st.floats(2.0**-13, 2.0**13, width=32),
    st.sampled_from([2.0**-140, 1e-38, 3.0e-39, 1.5e38, 0.1, 1 / 3]),  # subnormal, extreme
).map(_f32)
# quantized-domain values t; x = t * s reproduces them exactly for power-of-two scales
_T = st.one_of(
    st.integers(-300, 300).map(lambda k: k + 0.5),
    st.integers(-300, 300).map(float),
    st.sampled_from(
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 2.0**31, -(2.0**31), 127.5, -128.5]
        + [255.5, 32767.5, -32768.5, 65535.5, 7.5, -8.5, 15.5, 1.5, -2.5, 3.5]
        + [447.0, 448.0, 449.0, 464.0, 465.0, 480.0, -500.0, 57344.0, 61439.0, 61440.0]
        + [5.0, 6.0, 6.5, 7.0, -7.0, 0.25, 0.75, 1.25, 2.5, 3.0, 2.0**-7, 2.0**-9, 2.0**-10]
        + [2.0**-16, 2.0**-17, 1.5 * 2.0**-17, 1e-45, -1e-45, 1e-40]
    ),
    st.floats(width=32),
).map(_f32)
_RAW = st.floats(width=32)  # any f32: subnormals, inf, NaN included


GRANULARITIES = ["tensor", "tensor1", "axis", "block"]


@st.composite
def _layouts(draw, gran):
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    axis = draw(st.integers(-rank, rank - 1))
    block = draw(st.integers(1, 4))
    a = axis % rank
    if gran == "tensor":
        pshape, kw = (), {}
    elif gran == "tensor1":  # a [1] scale with an axis attribute: per-tensor in both
        pshape, kw = (1,), {"axis": axis}
    elif gran == "axis":
        pshape, kw = (shape[a],), {"axis": axis}
    else:
        pshape = tuple(-(-d // block) if k == a else d for k, d in enumerate(shape))
        kw = {"axis": axis, "block_size": block}
    return shape, pshape, kw


def _node(op, kw, n_inputs, **extra):
    names = ["x", "s", "zp"][:n_inputs]
    return helper.make_node(op, names, ["y"], **kw, **extra)


@st.composite
def _quant_inputs(draw, dtypes, gran):
    dt = np.dtype(draw(st.sampled_from(dtypes)))
    shape, pshape, kw = draw(_layouts(gran))
    s = draw(hnp.arrays(F32, pshape, elements=_SCALES))
    S = oracle.expand_param(s, shape, **kw)
    t = draw(hnp.arrays(F32, shape, elements=_T))
    raw = draw(hnp.arrays(F32, shape, elements=_RAW))
    use_raw = draw(hnp.arrays(np.bool_, shape))
    with np.errstate(all="ignore"):
        x = np.where(use_raw, raw, t * S).astype(F32)
    return dt, shape, pshape, kw, s, x


_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("gran", GRANULARITIES)
@_SETTINGS
@given(data=st.data())
def test_quantize_int_matches_onnx_reference(gran, data):
    dt, shape, pshape, kw, s, x = data.draw(_quant_inputs(INT_TYPES, gran))
    qmin, qmax = oracle.int_range(dt)
    zp = None
    if data.draw(st.booleans()):
        zp = data.draw(hnp.arrays(np.int64, pshape, elements=st.integers(qmin, qmax))).astype(dt)
    got = oracle.quantize(x, s, zp, dtype=dt, **kw)

    S = oracle.expand_param(s, shape, **kw)
    Z = (
        np.zeros(shape, np.int64)
        if zp is None
        else oracle.expand_param(zp, shape, **kw).astype(np.int64)
    )
    with np.errstate(all="ignore"):
        v = x / S
    # the ONNX reference casts rint(x / s) to int32 without a range check: compare only
    # where that cast is defined, and hold the rest to the project's rule
    bad = ~np.isfinite(v) | (np.abs(v) >= 2.0**30)
    feeds = {"x": np.where(bad, F32(0), x), "s": s}
    extra = {"output_dtype": helper.np_dtype_to_tensor_dtype(dt)} if zp is None else {}
    if zp is not None:
        feeds["zp"] = zp
    (want,) = _run_onnx(_node("QuantizeLinear", kw, len(feeds), **extra), feeds)
    assert_same_bits(got[~bad], want[~bad], "finite elements")
    g = got.astype(np.int64)
    assert np.array_equal(g[np.isnan(v)], np.clip(Z, qmin, qmax)[np.isnan(v)]), "NaN -> zero point"
    assert np.all(g[bad & (v > 0)] == qmax), "+overflow / +inf saturate"
    assert np.all(g[bad & (v < 0)] == qmin), "-overflow / -inf saturate"


@pytest.mark.parametrize("gran", GRANULARITIES)
@_SETTINGS
@given(data=st.data(), saturate=st.booleans())
def test_quantize_float_matches_onnx_reference(gran, data, saturate):
    dt, shape, pshape, kw, s, x = data.draw(_quant_inputs(FLOAT_TYPES, gran))
    got = oracle.quantize(x, s, dtype=dt, saturate=saturate, **kw)
    node = _node(
        "QuantizeLinear",
        kw,
        2,
        output_dtype=helper.np_dtype_to_tensor_dtype(dt),
        saturate=int(saturate),
    )
    (want,) = _run_onnx(node, {"x": x, "s": s})
    assert_same_bits(got, want)


@st.composite
def _dequant_inputs(draw, gran):
    dt = np.dtype(draw(st.sampled_from(INT_TYPES + FLOAT_TYPES)))
    shape, pshape, kw = draw(_layouts(gran))
    if dt in (np.dtype(t) for t in INT_TYPES):
        lo, hi = oracle.int_range(dt)
        q = draw(hnp.arrays(np.int64, shape, elements=st.integers(lo, hi))).astype(dt)
        zp = None
        if draw(st.booleans()):
            zp = draw(hnp.arrays(np.int64, pshape, elements=st.integers(lo, hi))).astype(dt)
    else:
        nbits = 4 if dt == np.dtype(ml_dtypes.float4_e2m1fn) else 8
        codes = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, 2**nbits - 1)))
        q = codes.view(dt)  # every code: NaN, inf, subnormals, +-0
        zp = None
    sdt = draw(st.sampled_from([np.float32, np.float32, np.float16, ml_dtypes.bfloat16]))
    sv = draw(hnp.arrays(F32, pshape, elements=st.one_of(_SCALES, st.floats(-1e3, 1e3, width=32))))
    with np.errstate(all="ignore"):
        s = sv.astype(sdt)
    return q, zp, s, kw


@pytest.mark.parametrize("gran", GRANULARITIES)
@_SETTINGS
@given(data=st.data())
def test_dequantize_matches_onnx_reference(gran, data):
    q, zp, s, kw = data.draw(_dequant_inputs(gran))
    got = oracle.dequantize(q, s, zp, dtype=s.dtype, **kw)
    feeds = {"x": q, "s": s}
    if zp is not None:
        feeds["zp"] = zp
    (want,) = _run_onnx(_node("DequantizeLinear", kw, len(feeds)), feeds)
    assert_same_bits(got, want)


@_SETTINGS
@given(
    hnp.arrays(
        F32,
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
        elements=st.one_of(
            st.floats(-1e6, 1e6, width=32),
            st.sampled_from([0.0, -0.0, 1e-45, 2.0**-130, 1e30, -1e30, 127.5, 255.0]),
        ).map(_f32),
    )
)
def test_dynamic_quantize_matches_onnx_reference(x):
    got = oracle.dynamic_quantize(x, dtype="ui8", symmetric=False)
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "zp"])
    want = _run_onnx(node, {"x": x})
    if not np.any(x):
        # all zeros: qopt stores the scale as 1.0 (onnxruntime: `max == min ? 1.0f : ...`);
        # the ONNX reference computes float32(1.0) / 255 (the `/ 255` binds outside its
        # conditional expression), so only the data and zero point are comparable here
        assert got[1] == F32(1.0) and want[1] == F32(1.0) / F32(255)
        want[1] = np.asarray(F32(1.0))
    elif want[1] == 0:
        # the range is subnormal and (xmax - xmin) / 255 underflows to 0: the ONNX
        # reference then divides by zero; qopt never does - a zero scale is stored as 1.0
        # (as for an all-zero block), so every element quantizes to the zero point
        assert got[1] == F32(1.0) and np.all(got[0] == got[2])
        return
    for i, (g, w) in enumerate(zip(got, want)):
        assert_same_bits(g, w, f"output {i}")


def test_reference_evaluator_is_the_installed_onnx():
    # the proof is against the onnx that is installed; record which one
    assert tuple(int(p) for p in onnx.__version__.split(".")[:2]) >= (1, 17)
