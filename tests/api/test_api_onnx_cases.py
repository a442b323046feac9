"""The ONNX backend node tests of Q / DQ / DynamicQuantizeLinear, run through the compiled
API instead of the oracle (the oracle's own proof against them is tests/oracle)."""

import pytest

pytest.importorskip("onnx")

import qopt
from tests.support.bits import assert_same_bits
from tests.support.onnx_cases import CASES, as_array, oracle_for_case


@pytest.mark.parametrize("name", sorted(CASES))
def test_onnx_node_case_through_the_api(name):
    """The ONNX backend node tests, run through the compiled API instead of the oracle."""
    tc, node = CASES[name]
    for inputs, outputs in tc.data_sets:
        names = [i.name for i in tc.model.graph.input]
        feeds = dict(zip(names, (as_array(a) for a in inputs), strict=True))
        want = [as_array(a) for a in outputs]
        got = oracle_for_case(node, feeds, impl=qopt)
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_bits(g, w, f"{name} output {i}")
