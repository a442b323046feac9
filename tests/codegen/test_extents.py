"""Symbolic extents and the per-shape plan of a kernel with dynamic dimensions: the
compiled fast path (`KernelSpec.plan`) agrees with the rule-by-rule one on every shape,
and a shape that breaks a rule gets the same error from both."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qopt import pipeline
from qopt.codegen.extents import ExtentOp, Sym, ceil_div, evaluate, product, python_expr
from qopt.codegen.schedule import schedule_module

NVFP4_PER_AXIS = """
func.func @f(%x: tensor<?x?xf32>, %s: tensor<?xf32>) -> (tensor<?x?xf4E2M1FN>, tensor<?x?xf8E4M3FN>, tensor<?x?xi8>) {
  %d, %b = quant.dynamic_quantize %x per_block(1, 16) : tensor<?x?xf32> -> tensor<?x?xf4E2M1FN>, tensor<?x?xf8E4M3FN>
  %q = quant.quantize %x scale(%s : tensor<?xf32>) per_axis(1) : tensor<?x?xf32> -> tensor<?x?xi8>
  func.return %d, %b, %q : tensor<?x?xf4E2M1FN>, tensor<?x?xf8E4M3FN>, tensor<?x?xi8>
}
"""


@pytest.fixture(scope="module")
def spec():
    module = pipeline.lower(pipeline.load(NVFP4_PER_AXIS))
    return schedule_module(module)["f"].kernel_spec("f__serial")


def test_extents_fold_and_evaluate() -> None:
    n = Sym(0, 1)
    assert ceil_div(n, 1) == n and ceil_div(33, 16) == 3
    assert product([Sym(0, 0), 1, n]) == ExtentOp("mul", Sym(0, 0), n)
    blocks = ceil_div(n, 16)
    assert evaluate(blocks, [(2, 33)]) == 3
    assert eval(python_expr(blocks), {"a": [(2, 33)]}) == 3


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(0, 40), cols=st.integers(0, 70), scales=st.integers(0, 72))
def test_fast_plan_is_the_checked_plan(spec, rows: int, cols: int, scales: int) -> None:
    shapes = [(rows, cols), (scales,)]
    try:
        want = spec._checked_plan(shapes)
    except ValueError as err:
        with pytest.raises(ValueError) as info:
            spec.plan(shapes)
        assert str(info.value) == str(err)
        assert scales != cols
        return
    assert spec.plan(shapes) == want
    assert want.shapes[3] == (rows, -(-cols // 16))


def test_a_wrong_rank_is_named(spec) -> None:
    with pytest.raises(
        ValueError, match=r"argument 0 \('x'\) must have shape f32\[\?, \?\], got \(3,\)"
    ):
        spec.plan([(3,), (3,)])
