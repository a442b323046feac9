"""The installed onnx's backend node tests of QuantizeLinear, DequantizeLinear and
DynamicQuantizeLinear through ``qopt import-onnx`` -> lower-quant -> JIT, compared with
the tests' expected outputs bit for bit.

Each case runs twice: as the test ships it (scale and zero point are graph inputs: runtime
operands in qopt) and with those parameter inputs turned into initializers (constants:
how deployed models carry them). A case qopt does not import says why and is skipped; the
known differences are listed in ``KNOWN``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("onnx")

import onnx
from onnx import numpy_helper

import qopt
from qopt.onnx.importer import import_model
from qopt.onnx.model import OnnxError
from tests.support.bits import assert_same_bits
from tests.support.onnx_cases import CASES, as_array

KNOWN = {
    ("test_quantizelinear_float4e2m1", "constant"): (
        "ONNX's expected output (and onnx.reference) gives +0 for x = -0: its formula adds the "
        "float zero point (+0) after the division, and -0 + +0 = +0; qopt's float storage "
        "has no zero point and keeps -0 (e2m1 code 0x8), as onnx.reference and onnxruntime "
        "do for float8 with a zero point"
    ),
}


def _with_constant_parameters(model: onnx.ModelProto, feeds: dict) -> onnx.ModelProto:
    """The model with every graph input but the first turned into an initializer."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    first, rest = graph.input[0], list(graph.input[1:])
    for value in rest:
        graph.initializer.append(numpy_helper.from_array(feeds[value.name], value.name))
    del graph.input[:]
    graph.input.append(first)
    return out


def _feeds(tc) -> list[tuple[dict, list[np.ndarray]]]:
    names = [i.name for i in tc.model.graph.input]
    return [
        (dict(zip(names, (as_array(a) for a in inputs))), [as_array(o) for o in outputs])
        for inputs, outputs in tc.data_sets
    ]


def run_case(name: str, variant: str) -> None:
    tc, _node = CASES[name]
    for feeds, want in _feeds(tc):
        model = tc.model if variant == "runtime" else _with_constant_parameters(tc.model, feeds)
        try:
            imported = import_model(model, name)
        except OnnxError as error:
            pytest.skip(f"not imported: {error}")
        kernel = qopt.compile(imported.module)
        args = [feeds[v.name] for v in model.graph.input]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = kernel(*args)
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(want)
        for k, (g, w) in enumerate(zip(got, want)):
            assert_same_bits(g, w, f"{name} ({variant}) output {k}")


@pytest.mark.parametrize("variant", ["runtime", "constant"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_node_case(name, variant):
    reason = KNOWN.get((name, variant))
    if reason is not None:
        with pytest.raises(AssertionError, match="1 elements differ"):
            run_case(name, variant)
        pytest.xfail(reason)
    run_case(name, variant)


def test_every_single_node_case_imports_with_constant_parameters():
    """Every single-node case imports once its parameters are constants (the _expanded
    function graphs compute the scale with Div / Max / ..., which stays an onnx.node)."""
    for name, (tc, _node) in CASES.items():
        if "_expanded" in name:
            continue
        feeds, _ = _feeds(tc)[0]
        imported = import_model(_with_constant_parameters(tc.model, feeds), name)
        assert imported.quant_nodes, name


OPSETS = (10, 13, 19, 21, 23, 24, 25)
_ORT_CANNOT = ("NOT_IMPLEMENTED", "No corresponding Numpy", "can't be converted to MLDataType")


def _at_opset(model: onnx.ModelProto, version: int) -> onnx.ModelProto | None:
    """The model stamped with an older opset, or None where onnx's checker rejects it
    there (an attribute or a type that opset does not have)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.opset_import[:]
    out.opset_import.append(onnx.helper.make_opsetid("", version))
    out.ir_version = min(model.ir_version, 9 if version < 21 else model.ir_version)
    try:
        onnx.checker.check_model(out, full_check=True)
    except Exception:
        return None
    return out


@pytest.mark.parametrize("version", OPSETS)
def test_node_cases_at_older_opsets(version):
    """The single-node cases that are valid at an older opset (stamped with it; the node's
    meaning is the same there) give the expected bits through qopt, and the same bits as
    onnxruntime at that opset where it runs them."""
    ort = pytest.importorskip("onnxruntime")
    checked = 0
    for name, (tc, _node) in sorted(CASES.items()):
        if "_expanded" in name or (name, "constant") in KNOWN:
            continue
        for feeds, want in _feeds(tc):
            model = _at_opset(_with_constant_parameters(tc.model, feeds), version)
            if model is None:
                continue
            kernel = qopt.compile(import_model(model, name).module)
            x = feeds[model.graph.input[0].name]
            got = kernel(x)
            got = got if isinstance(got, tuple) else (got,)
            for k, (g, w) in enumerate(zip(got, want)):
                assert_same_bits(g, w, f"{name} at opset {version}, output {k}")
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            try:
                session = ort.InferenceSession(model.SerializeToString(), options)
                theirs = session.run(None, {model.graph.input[0].name: x})
            except Exception as error:
                if any(m in str(error) for m in _ORT_CANNOT):
                    continue  # an op or a numpy type onnxruntime does not take
                raise
            for k, (g, t) in enumerate(zip(got, theirs)):
                g = np.ascontiguousarray(g)
                assert g.tobytes() == np.ascontiguousarray(t).tobytes(), (
                    f"{name} at opset {version}: qopt and onnxruntime differ in output {k}"
                )
            checked += 1
    if not checked:
        pytest.skip(f"no node case is valid at opset {version}")
