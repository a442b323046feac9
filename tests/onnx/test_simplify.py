"""``qopt onnx-simplify``: synthetic Q/DQ models (tests/onnx/qdq_models.py) through
simplify -> onnx.checker (full check) -> onnxruntime without optimizations, bit for bit
against the original model on seeded inputs that hit ties, +-0, saturation and every
code; import -> export without a pass gives the model back."""

from __future__ import annotations

import warnings

import ml_dtypes
import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx
import onnxruntime as ort
from onnx import helper

from qopt.onnx.exporter import export_model
from qopt.onnx.importer import import_model
from qopt.onnx.simplify import simplify_model
from tests.onnx.qdq_models import CASES

RNG_SEED = 1234


def inputs_for(model: onnx.ModelProto, seed: int = RNG_SEED) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in model.graph.input:
        t = value.type.tensor_type
        shape = [d.dim_value for d in t.shape.dim]
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type))
        n = int(np.prod(shape))
        if dtype == np.float32:
            scale = rng.choice([0.05, 0.1, 0.125, 0.25, 0.01])
            t_ = rng.integers(-300, 300, n) + rng.choice([0.0, 0.5, -0.5, 0.25], n)
            x = np.where(rng.random(n) < 0.5, t_ * scale, rng.standard_normal(n) * 20)
            x[:4] = [0.0, -0.0, 1e30, -1e30]
            feeds[value.name] = x.astype(np.float32).reshape(shape)
        else:
            info = ml_dtypes.iinfo(dtype) if dtype.kind == "V" else np.iinfo(dtype)
            codes = np.arange(n) % (info.max - info.min + 1) + info.min
            feeds[value.name] = codes.astype(dtype).reshape(shape)
    return feeds


def run_plain(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


def run_reference(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return ReferenceEvaluator(model).run(None, feeds)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("name", sorted(CASES))
def test_simplify_keeps_every_bit(name):
    case = CASES[name]()
    result = simplify_model(case.model, name)
    onnx.checker.check_model(result.model, full_check=True)
    assert len(result.removed) == case.removed, result.removed
    assert len(result.refused) == case.refused, [r.describe() for r in result.refused]
    n_before = len(case.model.graph.node)
    assert len(result.model.graph.node) <= n_before
    feeds = inputs_for(case.model)
    try:
        want, got = run_plain(case.model, feeds), run_plain(result.model, feeds)
    except Exception as error:  # an op onnxruntime does not implement: the reference
        if "NOT_IMPLEMENTED" not in str(error):
            raise
        want, got = run_reference(case.model, feeds), run_reference(result.model, feeds)
    assert len(want) == len(got)
    for k, (w, g) in enumerate(zip(want, got)):
        assert same_bits(g, w), f"{name}: output {k} changed"


def test_refused_fold_reports_its_worst_case_error():
    result = simplify_model(CASES["double_qdq_rescale"]().model, "m")
    (refusal,) = result.refused
    assert refusal.kind == "DQ -> Q pair is not the identity"
    assert "dq1" in refusal.nodes and "q2" in refusal.nodes
    assert refusal.worst_error is not None and refusal.worst_error > 1
    chain = simplify_model(CASES["requant_chain_inexact"]().model, "m").refused
    assert [r.kind for r in chain] == ["requantize chain not folded"]
    assert chain[0].worst_error is not None and chain[0].worst_error >= 1


def test_exact_chain_becomes_one_pair_with_the_original_parameters():
    result = simplify_model(CASES["requant_chain_exact"]().model, "m")
    nodes = [(n.name, list(n.input)) for n in result.model.graph.node]
    assert nodes == [("dq1", ["q", "s_in", "z_in"]), ("q2", ["a", "s_out", "z_out"])]
    assert {t.name for t in result.model.graph.initializer} == {"s_in", "z_in", "s_out", "z_out"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_import_then_export_gives_the_model_back(name):
    model = CASES[name]().model
    out = export_model(import_model(model, name, keep_unsupported=True))
    assert out.SerializeToString() == model.SerializeToString()
