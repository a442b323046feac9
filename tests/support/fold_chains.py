"""Generated quant chains with constant parameters, and the brute-force truth about them.

``generate(count, seed)`` yields :class:`Chain` cases of several families (below), each a
function ``@f`` over a tensor whose axis 0 holds every code of the input storage type
(repeated across the channels of axis 1 for per-axis parameters), together with the one
op the chain would fold into (or none: the identity). :func:`judge` decides by brute force
(the numpy oracle through ``quant_eval``, on every input code of every channel) whether
the chain is exactly foldable, then runs fold-quant and reports whether it folded and
whether its result still gives the same bits. benchmarks/fold_coverage.py measures the
pass with it; tests/passes/test_fold_coverage.py checks a sample.

Families:
* ``round_trip``: ``quantize(dequantize(q))`` with the same parameters (per-tensor or per
  axis, up to 20,000 channels, repeated or distinct scales), f32 / f16 / bf16 in between;
  folds to ``%q``;
* ``f16_pair``: ``quantize(dequantize(q) : f16 | bf16)`` with other parameters; folds to
  one requantize (f32 in between) where the f16 rounding changes no code;
* ``chain``: 2 to 4 requantizes (scale ratios 1, 2, 1/2, 4, 3, 1/3 or arbitrary, zero
  points, narrow / wide storages, rounding modes); folds to one requantize;
* ``pair_chain``: the same written as dequantize / quantize pairs with f32, f16 or bf16
  intermediates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from tests.support import oracle

INT_STORAGES = ["i8", "ui8", "i16", "ui16", "i4", "ui4", "i2", "ui2"]
FLOAT_STORAGES = ["f8E4M3FN", "f8E5M2", "f4E2M1FN"]
ROUNDINGS = ["nearest_even", "nearest_away", "half_up", "toward_zero"]
RATIOS = [1.0, 2.0, 0.5, 4.0, 0.25, 3.0, 1 / 3, None]


@dataclass(frozen=True)
class Chain:
    family: str
    text: str
    """``func.func @f(%q) -> ...`` holding the chain."""
    folded_text: str
    """The same function as the single op the chain folds into (or ``%q`` itself)."""
    folded_ops: int
    """Quant ops of ``folded_text`` (0 or 1)."""
    storage: str
    channels: int
    """Extent of axis 1 (0: a 1-D tensor with per-tensor parameters)."""


def _f32(value: float) -> str:
    return repr(float(np.float32(value)))


def _is_float(name: str) -> bool:
    return name in FLOAT_STORAGES


def _int_range(name: str) -> tuple[int, int]:
    info = ml_dtypes.iinfo(oracle.storage_dtype(name))
    return int(info.min), int(info.max)


def every_code(name: str) -> np.ndarray:
    dtype = oracle.storage_dtype(name)
    if _is_float(name):
        return np.arange(1 << (4 if name == "f4E2M1FN" else 8), dtype=np.uint8).view(dtype)
    lo, hi = _int_range(name)
    return np.arange(lo, hi + 1).astype(dtype)


def input_data(chain: Chain) -> np.ndarray:
    codes = every_code(chain.storage)
    return codes if not chain.channels else np.repeat(codes[:, None], chain.channels, axis=1)


def _tensor(chain_storage: str, n: int, channels: int) -> str:
    return f"tensor<{n}x{channels}x{chain_storage}>" if channels else f"tensor<{n}x{chain_storage}>"


@dataclass(frozen=True)
class _Params:
    """One side's parameters as IR text."""

    scales: np.ndarray  # f32, one per channel (or one)
    zero_points: np.ndarray | None  # int64, same length, or None

    def text(self, storage: str, channels: int) -> str:
        if channels:
            parts = [f"scale({_dense(self.scales, 'f32', channels)})"]
            if self.zero_points is not None:
                parts.append(f"zero_point({_dense(self.zero_points, 'i32', channels)})")
            parts.append("per_axis(1)")
            return " ".join(parts)
        parts = [f"scale({_f32(self.scales[0])})"]
        if self.zero_points is not None:
            parts.append(f"zero_point({int(self.zero_points[0])})")
        return " ".join(parts)


def _dense(values: np.ndarray, element: str, channels: int) -> str:
    if np.all(values == values[0]):
        body = _f32(values[0]) if element == "f32" else str(int(values[0]))
    else:
        items = [_f32(v) if element == "f32" else str(int(v)) for v in values]
        body = "[" + ", ".join(items) + "]"
    return f"dense<{body}> : tensor<{channels}x{element}>"


class _Draw:
    """Random parameters of the families (numpy Generator based, reproducible)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def pick(self, items):
        return items[int(self.rng.integers(len(items)))]

    def scale(self) -> float:
        kind = int(self.rng.integers(6))
        if kind == 0:
            return float(2.0 ** int(self.rng.integers(-20, 20)))
        if kind == 1:
            return self.pick([2.0**-126, 1e-40, 1e-30, 3e38, 1e30, 2.0**100, 0.1, 1 / 3])
        return float(np.float32(np.exp(self.rng.uniform(-8, 3))))

    def zero_point(self, storage: str) -> int | None:
        if _is_float(storage) or self.rng.random() < 0.3:
            return None
        lo, hi = _int_range(storage)
        return int(self.pick([0, lo, hi, int(self.rng.integers(lo, hi + 1))]))

    def channels(self, storage: str) -> int:
        if self.rng.random() < 0.6:
            return 0
        if storage in ("i16", "ui16"):
            return int(self.pick([3, 65, 200]))
        return int(self.pick([3, 65, 200, 20000]))

    def side(self, storage: str, channels: int, scale: float | None = None) -> _Params:
        n = max(channels, 1)
        base = self.scale() if scale is None else scale
        spread = self.pick(["same", "same", "few", "distinct"]) if channels else "same"
        if spread == "same":
            scales = np.full(n, base, np.float32)
        elif spread == "few":
            scales = np.array([base, base * 2, base / 3], np.float32)[self.rng.integers(3, size=n)]
        else:
            scales = (base * np.exp(self.rng.uniform(-0.5, 0.5, n))).astype(np.float32)
        zp = self.zero_point(storage)
        zps = None if zp is None else np.full(n, zp, np.int64)
        return _Params(scales, zps)

    def options(self, storage: str) -> str:
        if _is_float(storage):
            return ""
        rounding = self.pick(["nearest_even"] * 3 + ROUNDINGS)
        return "" if rounding == "nearest_even" else f"rounding({rounding})"


def _function(storage_in: str, storage_out: str, n: int, channels: int, body: list[str]) -> str:
    t_in, t_out = _tensor(storage_in, n, channels), _tensor(storage_out, n, channels)
    lines = [f"func.func @f(%q: {t_in}) -> {t_out} {{", *body, f"  func.return %v : {t_out}", "}"]
    return "\n".join(lines) + "\n"


def _requantize(dst, src, a, b, n, ch, p_in: _Params, p_out: _Params, opts: str) -> str:
    return (
        f"  {dst} = quant.requantize {src} in({p_in.text(a, ch)}) out({p_out.text(b, ch)})"
        f" {opts} : {_tensor(a, n, ch)} -> {_tensor(b, n, ch)}"
    )


def _pair(dst, src, a, b, n, ch, p_in, p_out, opts, expressed, tag) -> list[str]:
    return [
        f"  %x{tag} = quant.dequantize {src} {p_in.text(a, ch)} : {_tensor(a, n, ch)}"
        f" -> {_tensor(expressed, n, ch)}",
        f"  {dst} = quant.quantize %x{tag} {p_out.text(b, ch)} {opts} : {_tensor(expressed, n, ch)}"
        f" -> {_tensor(b, n, ch)}",
    ]


def _valid_zero_points(p: _Params, storage: str) -> _Params:
    if p.zero_points is None or _is_float(storage):
        return _Params(p.scales, None)
    lo, hi = _int_range(storage)
    return _Params(p.scales, np.clip(p.zero_points, lo, hi))


def _round_trip(d: _Draw) -> Chain:
    storage = d.pick(INT_STORAGES + INT_STORAGES + FLOAT_STORAGES)
    ch = d.channels(storage)
    n = every_code(storage).size
    p = d.side(storage, ch)
    expressed = d.pick(["f32", "f32", "f16", "bf16"])
    body = _pair("%v", "%q", storage, storage, n, ch, p, p, d.options(storage), expressed, 0)
    identity = _function(storage, storage, n, ch, []).replace("func.return %v", "func.return %q")
    return Chain("round_trip", _function(storage, storage, n, ch, body), identity, 0, storage, ch)


def _steps(d: _Draw, count: int, ch: int) -> tuple[list[str], list[_Params], list[str]]:
    """Storages, parameters (one per side: out of step k = in of step k+1) and options."""
    storages = [d.pick(INT_STORAGES[:4] + ["i4", "ui4"]) for _ in range(count + 1)]
    if d.rng.random() < 0.3:
        storages = [storages[0]] * (count + 1)
    base = d.scale()
    sides: list[_Params] = []
    for k, storage in enumerate(storages):
        if k == 0:
            scale = base
        else:
            ratio = d.pick(RATIOS)
            previous = float(sides[-1].scales[0])
            scale = d.scale() if ratio is None else float(np.float32(previous * ratio))
            if not np.isfinite(scale) or scale == 0:
                scale = previous
        p = d.side(storage, ch, scale)
        if k and d.rng.random() < 0.5:  # keep the previous zero point (a pure rescale)
            p = _Params(p.scales, sides[-1].zero_points)
        sides.append(_valid_zero_points(p, storage))
    return storages, sides, [d.options(s) for s in storages[1:]]


def _chain(d: _Draw, as_pairs: bool) -> Chain:
    count = int(d.pick([2, 2, 3, 4]))
    storages, sides, opts = _steps(d, count, 0 if d.rng.random() < 0.7 else 3)
    ch = sides[0].scales.size if sides[0].scales.size > 1 else 0
    n = every_code(storages[0]).size
    body: list[str] = []
    src = "%q"
    for k in range(count):
        dst = "%v" if k == count - 1 else f"%m{k}"
        a, b = storages[k], storages[k + 1]
        if as_pairs:
            expressed = d.pick(["f32", "f32", "f16", "bf16"])
            body += _pair(dst, src, a, b, n, ch, sides[k], sides[k + 1], opts[k], expressed, k)
        else:
            body.append(_requantize(dst, src, a, b, n, ch, sides[k], sides[k + 1], opts[k]))
        src = dst
    a, b = storages[0], storages[-1]
    folded = [_requantize("%v", "%q", a, b, n, ch, sides[0], sides[-1], opts[-1])]
    family = "pair_chain" if as_pairs else "chain"
    return Chain(
        family, _function(a, b, n, ch, body), _function(a, b, n, ch, folded), 1, storages[0], ch
    )


def _f16_pair(d: _Draw) -> Chain:
    a = d.pick(INT_STORAGES[:4] + ["i4", "ui4", "f8E4M3FN"])
    b = d.pick(INT_STORAGES[:4] + ["i4", "ui4"])
    ch = d.channels(a)
    n = every_code(a).size
    p_in = _valid_zero_points(d.side(a, ch), a)
    ratio = d.pick(RATIOS)
    base = float(p_in.scales[0])
    p_out = _valid_zero_points(d.side(b, ch, None if ratio is None else base * ratio), b)
    expressed = d.pick(["f16", "bf16"])
    opts = d.options(b)
    body = _pair("%v", "%q", a, b, n, ch, p_in, p_out, opts, expressed, 0)
    folded = [_requantize("%v", "%q", a, b, n, ch, p_in, p_out, opts)]
    return Chain("f16_pair", _function(a, b, n, ch, body), _function(a, b, n, ch, folded), 1, a, ch)


def generate(count: int, seed: int = 0) -> list[Chain]:
    """``count`` chains, the families mixed (round trips 30%, f16 pairs 15%, requantize
    chains 35%, pair chains 20%)."""
    from qopt.ir.diagnostics import verify_module
    from qopt.qdialect.context import make_context, parse_module

    ctx = make_context()
    d = _Draw(seed)
    chains = []
    while len(chains) < count:
        u = d.rng.random()
        with np.errstate(over="ignore"):  # a scale may overflow: the verifier rejects it
            if u < 0.3:
                chain = _round_trip(d)
            elif u < 0.45:
                chain = _f16_pair(d)
            else:
                chain = _chain(d, as_pairs=u >= 0.8)
        try:  # drawn zero points may break a verifier rule: draw again
            for text in (chain.text, chain.folded_text):
                verify_module(parse_module(text, "chain.mlir", ctx))
        except Exception:
            continue
        chains.append(chain)
    return chains


# ---------------------------------------------------------------------------------------
# judging
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    foldable: bool
    """The chain equals its folded form on every input code (brute force)."""
    folded: bool
    """fold-quant left at most the folded form's op count."""
    exact: bool
    """fold-quant's result equals the chain on every input code."""
    seconds: float
    """Time of the pass alone."""


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype in {oracle.storage_dtype(n) for n in FLOAT_STORAGES}:
        return a.view(np.uint8)
    return a.astype(np.int64)


def judge(chain: Chain, ctx, pass_factory) -> Verdict:
    """Brute-force truth for ``chain`` and what ``pass_factory()`` (fold-quant) made of it."""
    from qopt.qdialect.context import parse_module
    from tests.support.quant_eval import evaluate, find_function

    data = input_data(chain)
    module = parse_module(chain.text, "chain.mlir", ctx)
    with np.errstate(all="ignore"):
        (expected,) = evaluate(find_function(module, "f"), data)
        folded_module = parse_module(chain.folded_text, "folded.mlir", ctx)
        (candidate,) = evaluate(find_function(folded_module, "f"), data)
        foldable = np.array_equal(_bits(expected), _bits(candidate))
        start = time.perf_counter()
        pass_factory().apply(ctx, module)
        seconds = time.perf_counter() - start
        (got,) = evaluate(find_function(module, "f"), data)
    ops = sum(1 for op in module.walk() if op.name.startswith("quant."))
    exact = got.dtype == expected.dtype and np.array_equal(_bits(got), _bits(expected))
    return Verdict(foldable, ops <= chain.folded_ops, exact, seconds)
