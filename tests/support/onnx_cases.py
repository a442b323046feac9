"""The ONNX backend node tests of QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear
that the installed onnx generates, and their mapping onto the oracle's (or the API's) calls.

Shared by the oracle's proof against ONNX (tests/oracle) and the API's run of the same
cases (tests/api). Needs onnx (the ``test`` extra).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.support import oracle

F32 = np.float32
OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")
_CASE_MODULES = ("quantizelinear", "dequantizelinear", "dynamicquantizelinear")


def as_array(a):
    if isinstance(a, np.ndarray | np.generic):
        return np.asarray(a)
    return numpy_helper.to_array(a)


def _collect_cases():
    """name -> (TestCase, op NodeProto): the node tests of the three ops.

    Importing the three case modules is what ``load_node_model_tests()`` does for them
    (their ``Base`` subclasses record test cases on import); it avoids generating all
    ~1900 node tests at collection time. ``test_collection_is_complete`` proves the set
    equals what ``load_node_model_tests()`` yields.
    """
    for m in _CASE_MODULES:
        importlib.import_module(f"onnx.backend.test.case.node.{m}")
    from onnx.backend.test.case.node import _NodeTestCases

    return _select(_NodeTestCases)


def _select(testcases):
    single = {}
    for tc in testcases:
        nodes = tc.model.graph.node
        if len(nodes) == 1 and nodes[0].op_type in OPS:
            single[tc.name] = (tc, nodes[0])
    cases = dict(single)
    for tc in testcases:
        if tc.name in single:
            continue
        if any(n.op_type in OPS for n in tc.model.graph.node) or "_expanded" in tc.name:
            base = tc.name.split("_expanded")[0]
            if base in single:
                cases[tc.name] = (tc, single[base][1])
            elif any(n.op_type in OPS for n in tc.model.graph.node):
                cases[tc.name] = (tc, None)  # unmapped: reported as a failure below
    return cases


CASES = _collect_cases()


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _opt_input(node, feeds, i):
    if len(node.input) > i and node.input[i]:
        return feeds[node.input[i]]
    return None


def _drop_float_zero_point(zp, what):
    """ONNX passes a float8/float4 'zero point' only to name the type; it must be 0."""
    if zp is not None and oracle.is_float_format(zp.dtype):
        assert not np.any(zp.astype(F32)), f"{what}: nonzero float zero point {zp}"
        return None
    return zp


def _granularity(attrs, scale):
    axis = attrs.get("axis", 1)
    block = attrs.get("block_size", 0)
    if block:
        return {"axis": axis, "block_size": block}
    if np.ndim(scale) == 1:
        return {"axis": axis}  # a single-element scale is per-tensor in both
    return {}


def oracle_for_case(node, feeds, impl=oracle):
    """The outputs of ``impl`` (the oracle, or the compiled API: same signatures) for one
    ONNX node, or a pytest.skip with the reason."""
    attrs = _attrs(node)
    op = node.op_type
    if op == "QuantizeLinear":
        x, s = feeds[node.input[0]], feeds[node.input[1]]
        zp = _opt_input(node, feeds, 2)
        precision = attrs.get("precision", 0)
        if precision not in (0, TensorProto.FLOAT):
            pytest.skip(f"precision={precision}: qopt computes x / s in f32 only")
        if not precision and np.result_type(x.dtype, s.dtype) != np.float32:
            pytest.skip("ONNX divides in the input precision here; qopt computes x / s in f32")
        if zp is not None:
            dtype = zp.dtype
        elif attrs.get("output_dtype", 0):
            dtype = helper.tensor_dtype_to_np_dtype(attrs["output_dtype"])
        else:
            dtype = np.uint8
        gran = _granularity(attrs, s)
        if zp is not None and oracle.is_float_format(zp.dtype):
            # ONNX's formula is saturate(x / s + zp) for every type; a float zero point must
            # be 0, and adding it changes exactly one thing: a -0 quotient becomes +0
            # (IEEE -0 + +0 = +0). qopt's float storage has no zero point, so the ONNX
            # case maps to the oracle with +0 fed where x / s is a zero (s > 0).
            S = oracle.expand_param(s, x.shape, **gran).astype(F32)
            assert np.all(S > 0)
            x = np.where(x.astype(F32) / S == 0, F32(0), x).astype(x.dtype)
        zp = _drop_float_zero_point(zp, node.name)
        return [
            impl.quantize(
                x,
                s,
                zp,
                dtype=dtype,
                saturate=bool(attrs.get("saturate", 1)),
                **gran,
            )
        ]
    if op == "DequantizeLinear":
        q, s = feeds[node.input[0]], feeds[node.input[1]]
        zp = _drop_float_zero_point(_opt_input(node, feeds, 2), node.name)
        out = attrs.get("output_dtype", 0)
        out = helper.tensor_dtype_to_np_dtype(out) if out else s.dtype
        return [impl.dequantize(q, s, zp, dtype=out, **_granularity(attrs, s))]
    if op == "DynamicQuantizeLinear":
        return list(impl.dynamic_quantize(feeds[node.input[0]], dtype="ui8", symmetric=False))
    raise AssertionError(op)
