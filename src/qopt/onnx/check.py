"""``qopt onnx-check model.onnx``: where onnxruntime's default graph optimizations change
the bits of a model's Q/DQ computations.

Each connected Q/DQ subgraph (Q/DQ nodes qopt computes, joined by their data edges) is
cut out as a model of its own: its outside inputs become graph inputs (constant
parameters stay initializers), the tensors it hands to the rest of the graph become
outputs. It runs on seeded inputs that reach every interesting case (ties of the scale,
+-0, values that saturate, +-inf, NaN, every code of the storage type) through

* qopt (import, lower-quant, JIT: docs/semantics.md),
* onnxruntime with graph optimizations disabled (``ORT_DISABLE_ALL``), and
* onnxruntime at its default level (``ORT_ENABLE_ALL``),

and every output is compared bit for bit. The whole model also runs in onnxruntime at
both levels when its inputs have static shapes. A difference between the two onnxruntime
runs is a rewrite that changed bits (onnxruntime issues #25259, #32132: the double-QDQ
remover); qopt against the unoptimized run says whether qopt and onnxruntime agree.

Needs onnxruntime (``pip install 'qopt[onnx]'``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from qopt.onnx.importer import Imported, import_model
from qopt.onnx.model import OnnxError, constant_value, load


@dataclass
class Comparison:
    """One output of one run against another."""

    what: str
    output: str
    differ: int
    total: int
    first: str = ""

    def line(self) -> str:
        where = f" (first: {self.first})" if self.first else ""
        return (
            f"    {self.what}: {self.output}: {self.differ} of {self.total} elements differ{where}"
        )


@dataclass
class Part:
    """One subgraph (or the whole model) and what its runs gave."""

    title: str
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(c.what == _DEFAULT and c.differ for c in self.comparisons)


@dataclass
class Report:
    path: str
    parts: list[Part] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(p.changed for p in self.parts)

    def text(self) -> str:
        lines = [f"{self.path}: {len(self.parts)} part(s) checked"]
        for part in self.parts:
            status = "CHANGED BITS" if part.changed else "same bits"
            lines.append(f"  {part.title}: {status}")
            lines += [c.line() for c in part.comparisons if c.differ]
            agree = [c for c in part.comparisons if c.what == _QOPT]
            if agree and not any(c.differ for c in agree):
                lines.append(
                    f"    qopt agrees with onnxruntime (no optimization) on {len(agree)} output(s)"
                )
            lines += [f"    note: {n}" for n in part.notes]
        changed = sum(p.changed for p in self.parts)
        lines.append(
            f"{self.path}: onnxruntime's default optimizations change bits in {changed} part(s)"
        )
        return "\n".join(lines) + "\n"


_DEFAULT = "onnxruntime default vs no optimization"
_QOPT = "qopt vs onnxruntime without optimization"


def check_file(path: str, *, seed: int = 0) -> Report:
    return check_model(load(path), path, seed=seed)


def check_model(model: onnx.ModelProto, path: str = "<model>", *, seed: int = 0) -> Report:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise OnnxError("onnx-check needs onnxruntime: pip install 'qopt[onnx]'") from None
    imported = import_model(model, path, keep_unsupported=True)
    report = Report(path)
    rng = np.random.default_rng(seed)
    for component in _components(imported):
        report.parts.append(_check_component(imported, component, rng))
    for index, why in sorted(imported.kept.items()):
        part = Part(f"{imported.label(index)}")
        part.notes.append(f"not checked: qopt does not compute it ({why})")
        report.parts.append(part)
    report.parts.append(_check_whole(model, rng))
    return report


# ---------------------------------------------------------------------------------------
# subgraphs
# ---------------------------------------------------------------------------------------


def _components(imported: Imported) -> list[list[int]]:
    """Connected Q/DQ subgraphs, as sorted node indices."""
    nodes = imported.graph.model.graph.node
    indices = sorted(imported.quant_nodes)
    parent = {i: i for i in indices}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    producer = {out: i for i in indices for out in nodes[i].output if out}
    for i in indices:
        for name in nodes[i].input:
            j = producer.get(name)
            if j is not None:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in indices:
        groups.setdefault(find(i), []).append(i)
    return [sorted(g) for g in groups.values()]


def _submodel(imported: Imported, component: list[int]) -> onnx.ModelProto:
    graph = imported.graph
    nodes = [graph.model.graph.node[i] for i in component]
    produced = {out for n in nodes for out in n.output if out}
    consumed_outside = set(o.name for o in graph.model.graph.output)
    members = set(component)
    for k, n in enumerate(graph.model.graph.node):
        if k not in members:
            consumed_outside.update(n.input)
    inputs, initializers, seen = [], [], set()
    for n in nodes:
        for name in n.input:
            if not name or name in produced or name in seen:
                continue
            seen.add(name)
            value = constant_value(graph, name)
            if value is not None:
                initializers.append(numpy_helper.from_array(np.asarray(value), name))
                continue
            info = graph.info(name)
            if info is None or info.shape is None or any(d is None for d in info.shape):
                raise _Skip(f"input '{name}' has no static shape")
            inputs.append(helper.make_tensor_value_info(name, info.elem_type, info.shape))
    outputs = []
    for n in nodes:
        for name in n.output:
            if name and (name in consumed_outside or not _used_inside(name, nodes)):
                info = graph.info(name)
                if info is None or info.shape is None or not info.elem_type:
                    raise _Skip(f"output '{name}' has no known type")
                outputs.append(helper.make_tensor_value_info(name, info.elem_type, info.shape))
    sub = helper.make_graph(nodes, "qdq_subgraph", inputs, outputs, initializers)
    model = helper.make_model(sub, opset_imports=list(graph.model.opset_import))
    model.ir_version = graph.model.ir_version
    return model


def _used_inside(name: str, nodes: list[onnx.NodeProto]) -> bool:
    return any(name in n.input for n in nodes)


class _Skip(Exception):
    pass


def _inputs_for(model: onnx.ModelProto, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Seeded inputs: codes over the whole storage range; floats that hit ties of the
    scales in the graph, +-0, saturation and plain values."""
    scales = [
        float(np.asarray(numpy_helper.to_array(t), np.float32).ravel()[0])
        for t in model.graph.initializer
        if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    ]
    scales = [s for s in scales if np.isfinite(s) and s > 0] or [1.0]
    feeds = {}
    initializers = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        t = value.type.tensor_type
        shape = tuple(d.dim_value for d in t.shape.dim)
        dtype = helper.tensor_dtype_to_np_dtype(t.elem_type)
        feeds[value.name] = _values(shape, np.dtype(dtype), scales, rng)
    return feeds


def _values(shape, dtype: np.dtype, scales: list[float], rng: np.random.Generator) -> np.ndarray:
    n = int(np.prod(shape)) if shape else 1
    if dtype.kind == "f" and dtype.itemsize >= 2:
        s = np.asarray(scales, np.float64)[rng.integers(0, len(scales), n)]
        t = rng.integers(-300, 300, n) + rng.choice([0.0, 0.5, -0.5, 0.25], n)
        x = np.where(rng.random(n) < 0.5, t * s, rng.standard_normal(n) * s * 50)
        special = np.asarray([0.0, -0.0, 1e30, -1e30, np.inf, -np.inf, np.nan])
        pick = rng.random(n) < 0.02
        x = np.where(pick, special[rng.integers(0, special.size, n)], x)
        return x.astype(dtype).reshape(shape)
    width = dtype.itemsize * 8
    codes = rng.integers(0, 1 << min(width, 16), n, dtype=np.uint32)
    if dtype.itemsize == 1:
        raw = codes.astype(np.uint8)
        try:
            info = np.iinfo(dtype)
            return (
                np.clip(raw.view(np.int8) if info.min < 0 else raw, info.min, info.max)
                .astype(dtype)
                .reshape(shape)
            )
        except ValueError:
            bits = 4 if "float4" in dtype.name else 8
            return (raw & ((1 << bits) - 1)).view(dtype).reshape(shape)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, n).astype(dtype).reshape(shape)


def _session(model: onnx.ModelProto, optimized: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimized
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _run_ort(model: onnx.ModelProto, feeds: dict, optimized: bool) -> list[np.ndarray]:
    session = _session(model, optimized)
    names = [o.name for o in session.get_outputs()]
    return session.run(names, feeds)


def _compare(what: str, name: str, got: np.ndarray, want: np.ndarray) -> Comparison:
    g, w = np.ascontiguousarray(got), np.ascontiguousarray(want)
    if g.shape != w.shape or g.dtype.itemsize != w.dtype.itemsize:
        return Comparison(what, name, w.size, w.size, f"{g.dtype}{g.shape} vs {w.dtype}{w.shape}")
    unsigned = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[g.dtype.itemsize]
    gb, wb = g.reshape(-1).view(unsigned), w.reshape(-1).view(unsigned)
    bad = np.nonzero(gb != wb)[0]
    first = ""
    if bad.size:
        k = int(bad[0])
        first = f"element {k}: {_show(g.reshape(-1)[k])} vs {_show(w.reshape(-1)[k])}"
    return Comparison(what, name, int(bad.size), int(w.size), first)


def _show(value) -> str:
    """An element as its value and, for floats, its bits."""
    array = np.asarray(value)
    if array.dtype.kind in "iub":
        return str(int(array))
    bits = array.reshape(1).view({1: np.uint8, 2: np.uint16, 4: np.uint32}[array.itemsize])[0]
    return f"{float(array.astype(np.float32))!r} (0x{int(bits):0{2 * array.itemsize}x})"


def _check_component(imported: Imported, component: list[int], rng) -> Part:
    title = "Q/DQ subgraph " + ", ".join(imported.label(i) for i in component)
    part = Part(title)
    try:
        sub = _submodel(imported, component)
    except _Skip as why:
        part.notes.append(f"skipped: {why}")
        return part
    feeds = _inputs_for(sub, rng)
    outputs = [o.name for o in sub.graph.output]
    try:
        plain = _run_ort(sub, feeds, optimized=False)
        default = _run_ort(sub, feeds, optimized=True)
    except Exception as error:
        part.notes.append(f"onnxruntime cannot run it: {_first_line(error)}")
        plain = default = None
    if plain is not None and default is not None:
        for name, a, b in zip(outputs, default, plain):
            part.comparisons.append(_compare(_DEFAULT, name, a, b))
    qopt_out = _run_qopt(sub, feeds, part)
    if qopt_out is not None and plain is not None:
        for name, a, b in zip(outputs, qopt_out, plain):
            part.comparisons.append(_compare(_QOPT, name, a, b))
    differs = any(c.what == _QOPT and c.differ for c in part.comparisons)
    has_nan = any(v.dtype.kind == "f" and np.isnan(v).any() for v in feeds.values())
    if differs and has_nan:
        part.notes.append(
            "the inputs hold NaN: qopt's integer quantize gives the zero point "
            "(docs/semantics.md section 3), onnxruntime's gives qmin"
        )
    return part


def _run_qopt(sub: onnx.ModelProto, feeds: dict, part: Part) -> list[np.ndarray] | None:
    import qopt

    try:
        imported = import_model(sub, part.title)
        kernel = qopt.compile(imported.module)
    except (OnnxError, ValueError) as error:
        part.notes.append(f"qopt cannot run it: {_first_line(error)}")
        return None
    names = [v.name for v in sub.graph.input]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = kernel(*[feeds[n] for n in names])
    return list(result) if isinstance(result, tuple) else [result]


def _check_whole(model: onnx.ModelProto, rng) -> Part:
    part = Part("whole model (graph outputs)")
    initializers = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in initializers and not all(d.HasField("dim_value") for d in dims):
            part.notes.append(f"skipped: input '{value.name}' has no static shape")
            return part
    feeds = _inputs_for(model, rng)
    try:
        plain = _run_ort(model, feeds, optimized=False)
        default = _run_ort(model, feeds, optimized=True)
    except Exception as error:
        part.notes.append(f"onnxruntime cannot run it: {_first_line(error)}")
        return part
    for out, a, b in zip(model.graph.output, default, plain):
        part.comparisons.append(_compare(_DEFAULT, out.name, a, b))
    return part


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
