"""Producer recipes as IR: each scheme's arithmetic, step by step, as compressed-tensors does it.

compressed-tensors computes every step of a weight's quantization in the weight's own
dtype (torch rounds each bf16 / f16 operation's f32 result back to bf16 / f16), so its
bytes differ from a one-rounding quantizer: ``x / s`` is rounded to bf16 before it is
rounded to an integer or to e4m3, scales are ``bf16(amax / 127.5)``, NVFP4's global
scale is ``bf16(bf16(1 / amax) * 2688)`` (torch's ``2688 / t`` is a reciprocal and a
product) and its block scale ``bf16(amax / 6)``, MX scales
round the amax to a power of two with their own threshold. These steps cannot be
written with the quant ops' single-rounding semantics, so each recipe here is built as a
function of ``linalg.generic`` ops (the statistics as reductions over the blocks, the
parameters over the parameter shape, then the elements) plus ``quant.pack`` for 4-bit
codes. The function goes through qopt's pipeline (``--lower-quant`` lowers the pack,
codegen fuses the block statistic with its elements, the JIT compiles it) and every
recipe is in docs/checkpoint-recipes.md.

:func:`recipe_ir` returns the IR text; :func:`kernel` the compiled kernel (cached per
recipe, dtype and shape).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from qopt.checkpoint.schemes import Scheme

TYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}
"""numpy / ml_dtypes dtype name of a weight -> its MLIR type."""

EPS = {"f32": "1.1920929e-07", "f16": "9.765625e-04", "bf16": "7.812500e-03"}
"""torch.finfo(dtype).eps: compressed-tensors' replacement for a zero scale."""

TINY = {"f32": "1.17549435e-38", "f16": "6.10351562e-05", "bf16": "1.17549435e-38"}
"""torch.finfo(dtype).tiny: the smallest amax NVFP4's global scale divides by."""


class _Body:
    """SSA lines of one region body (fresh names, the weight type's rounding helper)."""

    def __init__(self, t: str):
        self.t = t
        self.lines: list[str] = []
        self.n = 0

    def op(self, text: str, result_type: str) -> str:
        self.n += 1
        name = f"%v{self.n}"
        self.lines.append(f"      {name} = {text} : {result_type}")
        return name

    def const(self, value: str, t: str = "f32") -> str:
        self.n += 1
        name = f"%v{self.n}"
        self.lines.append(f"      {name} = arith.constant {value} : {t}")
        return name

    def _conv(self, kind: str, value: str, a: str, b: str) -> str:
        self.n += 1
        name = f"%v{self.n}"
        self.lines.append(f"      {name} = arith.{kind} {value} : {a} to {b}")
        return name

    def extf(self, value: str, t: str) -> str:
        return value if t == "f32" else self._conv("extf", value, t, "f32")

    def truncf(self, value: str, t: str) -> str:
        return value if t == "f32" else self._conv("truncf", value, "f32", t)

    def round_t(self, value: str) -> str:
        """``value`` (f32) rounded to the weight type and back: one torch op's result."""
        if self.t == "f32":
            return value
        return self.extf(self.truncf(value, self.t), self.t)

    def clamp(self, value: str, lo: str, hi: str) -> str:
        lo_c, hi_c = self.const(lo), self.const(hi)
        v = self.op(f"arith.maximumf {value}, {lo_c}", "f32")
        return self.op(f"arith.minimumf {v}, {hi_c}", "f32")

    def select_if_zero(self, value: str, replacement: str) -> str:
        zero, rep = self.const("0.000000e+00"), self.const(replacement)
        is_zero = self.op(f"arith.cmpf oeq, {value}, {zero}", "f32")
        return self.op(f"arith.select {is_zero}, {rep}, {value}", "f32")


class _Func:
    """One ``func.func @main`` being written."""

    def __init__(self, t: str):
        self.t = t
        self.lines: list[str] = []
        self.n = 0

    def name(self) -> str:
        self.n += 1
        return f"%t{self.n}"

    def generic(
        self,
        ins: list[tuple[str, str, str]],
        out_type: str,
        out_map: str,
        dims: int,
        iterators: list[str],
        body: Callable[[_Body, list[str], str], str],
        init: str | None = None,
    ) -> str:
        """A linalg.generic; ``ins``: (value, tensor type, map results); ``body(b, args,
        acc)`` returns the yielded value."""
        d = ", ".join(f"d{i}" for i in range(dims))
        maps = [f"affine_map<({d}) -> ({m})>" for _, _, m in ins] + [
            f"affine_map<({d}) -> ({out_map})>"
        ]
        dest = self.name()
        if init is None:
            self.lines.append(f"    {dest} = tensor.empty() : {out_type}")
        else:
            self.lines.append(f"    {dest} = arith.constant {init} : {out_type}")
        element = out_type.rsplit("x", 1)[-1].rstrip(">") if "x" in out_type else ""
        b = _Body(self.t)
        args = [f"%a{i}" for i in range(len(ins))]
        elem_types = [ty.rsplit("x", 1)[-1].rstrip(">") for _, ty, _ in ins]
        result = body(b, args, "%acc")
        out = self.name()
        its = ", ".join(f'"{i}"' for i in iterators)
        ins_text = ", ".join(v for v, _, _ in ins)
        ins_types = ", ".join(ty for _, ty, _ in ins)
        bb = ", ".join([f"{a}: {et}" for a, et in zip(args, elem_types)] + [f"%acc: {element}"])
        self.lines.append(
            f"    {out} = linalg.generic {{indexing_maps = [{', '.join(maps)}], "
            f"iterator_types = [{its}]}} ins({ins_text} : {ins_types}) "
            f"outs({dest} : {out_type}) {{"
        )
        self.lines.append(f"    ^bb0({bb}):")
        self.lines.extend(b.lines)
        self.lines.append(f"      linalg.yield {result} : {element}")
        self.lines.append(f"    }} -> {out_type}")
        return out


def _tensor(shape: tuple[int, ...], element: str) -> str:
    return f"tensor<{'x'.join(str(s) for s in shape)}x{element}>"


def _blocks(scheme: Scheme, shape: tuple[int, int]) -> tuple[int, int]:
    n, k = shape
    if scheme.block is not None:
        return scheme.block
    if scheme.group_size is not None:
        return (1, scheme.group_size)
    return (1, k)


def param_shape(scheme: Scheme, shape: tuple[int, int]) -> tuple[int, int]:
    """The shape of the scale tensor: one entry per block (ceil division)."""
    b0, b1 = _blocks(scheme, shape)
    return (-(-shape[0] // b0), -(-shape[1] // b1))


def _block_map(scheme: Scheme, shape: tuple[int, int]) -> tuple[str, list[str]]:
    b0, b1 = _blocks(scheme, shape)
    rows = "d0" if b0 == 1 else f"d0 floordiv {b0}"
    return f"{rows}, d1 floordiv {b1}", ["parallel" if b0 == 1 else "reduction", "reduction"]


def _amax_bits(f: _Func, w: str, wt: str, t: str, pmap: str, its: list[str], pt: str) -> str:
    """Per block: the largest |x| as the bits of an f32 (NaN propagates, as torch.amax)."""

    def body(b: _Body, a: list[str], acc: str) -> str:
        x = b.extf(a[0], t)
        bits = b._conv("bitcast", x, "f32", "i32")
        mask = b.const("2147483647", "i32")
        absbits = b.op(f"arith.andi {bits}, {mask}", "i32")
        return b.op(f"arith.maxsi {acc}, {absbits}", "i32")

    return f.generic([(w, wt, "d0, d1")], _tensor(pt, "i32"), pmap, 2, its, body, "dense<0>")


def recipe_ir(scheme: Scheme, dtype: str, shape: tuple[int, int]) -> str:
    """The IR of ``scheme``'s compressed-tensors recipe for a weight of ``dtype`` and
    ``shape`` (``@main(weight[, group amax]) -> (data, scale[, zero point | global
    scale])``)."""
    t = TYPES[dtype]
    n, k = shape
    f = _Func(t)
    wt = _tensor(shape, t)
    pshape = param_shape(scheme, shape)
    pmap, its = _block_map(scheme, shape)
    args = [f"%w: {wt}"]
    if scheme.kind == "int":
        results = _int_recipe(f, scheme, t, wt, shape, pshape, pmap, its)
    elif scheme.kind == "fp8":
        results = _fp8_recipe(f, t, wt, shape, pshape, pmap, its)
    elif scheme.kind == "nvfp4":
        args.append("%gamax: tensor<1xf32>")
        results = _nvfp4_recipe(f, t, wt, shape, pshape, pmap, its)
    elif scheme.kind in ("mxfp8", "mxfp4"):
        results = _mx_recipe(f, scheme, t, wt, shape, pshape, pmap, its)
    else:
        raise ValueError(f"no compressed-tensors recipe for scheme kind {scheme.kind}")
    values = ", ".join(v for v, _ in results)
    types = ", ".join(ty for _, ty in results)
    return "\n".join(
        [f"func.func @main({', '.join(args)}) -> ({types}) {{", *f.lines]
        + [f"    func.return {values} : {types}", "}"]
    )


def _int_recipe(f, scheme, t, wt, shape, pshape, pmap, its):
    bits = scheme.bits
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    pt = _tensor(pshape, t)
    if scheme.symmetric:
        amax = _amax_bits(f, "%w", wt, t, pmap, its, pshape)

        def scale_body(b, a, acc):
            x = b._conv("bitcast", a[0], "i32", "f32")
            s = b.round_t(b.op(f"arith.divf {x}, {b.const(repr((qmax - qmin) / 2))}", "f32"))
            return b.truncf(b.select_if_zero(s, EPS[t]), t)

        scale = f.generic(
            [(amax, _tensor(pshape, "i32"), "d0, d1")],
            pt,
            "d0, d1",
            2,
            ["parallel"] * 2,
            scale_body,
        )
        zp = None
    else:

        def extreme(kind):
            def body(b, a, acc):
                return b.op(f"arith.{kind} {acc}, {b.extf(a[0], t)}", "f32")

            return body

        ft = _tensor(pshape, "f32")
        lo = f.generic([("%w", wt, "d0, d1")], ft, pmap, 2, its, extreme("minimumf"), "dense<0.0>")
        hi = f.generic([("%w", wt, "d0, d1")], ft, pmap, 2, its, extreme("maximumf"), "dense<0.0>")

        def raw_scale(b, a):
            span = b.round_t(b.op(f"arith.subf {a[1]}, {a[0]}", "f32"))
            return b.round_t(b.op(f"arith.divf {span}, {b.const(repr(float(qmax - qmin)))}", "f32"))

        def scale_body(b, a, acc):
            return b.truncf(b.select_if_zero(raw_scale(b, a), EPS[t]), t)

        def zp_body(b, a, acc):
            s = raw_scale(b, a)
            ratio = b.round_t(b.op(f"arith.divf {a[0]}, {s}", "f32"))
            z = b.round_t(b.op(f"arith.subf {b.const(repr(float(qmin)))}, {ratio}", "f32"))
            z = b.op(f"math.roundeven {b.clamp(z, repr(float(qmin)), repr(float(qmax)))}", "f32")
            # an all-zero group gives 0 / 0: torch's NaN -> int8 cast is 0 on x86; say so
            nan = b.op(f"arith.cmpf uno, {z}, {z}", "f32")
            z = b.op(f"arith.select {nan}, {b.const('0.000000e+00')}, {z}", "f32")
            return b._conv("fptosi", z, "f32", "i8")

        pair = [(lo, ft, "d0, d1"), (hi, ft, "d0, d1")]
        scale = f.generic(pair, pt, "d0, d1", 2, ["parallel"] * 2, scale_body)
        zp = f.generic(pair, _tensor(pshape, "i8"), "d0, d1", 2, ["parallel"] * 2, zp_body)
    code_t = f"ui{bits}"
    ins = [("%w", wt, "d0, d1"), (scale, pt, pmap)]
    if zp is not None:
        ins.append((zp, _tensor(pshape, "i8"), pmap))

    def data_body(b, a, acc):
        x = b.extf(a[0], t)
        v = b.round_t(b.op(f"arith.divf {x}, {b.extf(a[1], t)}", "f32"))
        if zp is not None:
            z = b._conv("sitofp", a[2], "i8", "f32")
            v = b.round_t(b.op(f"arith.addf {v}, {z}", "f32"))
        r = b.op(f"math.roundeven {b.clamp(v, repr(float(qmin)), repr(float(qmax)))}", "f32")
        shifted = b.op(f"arith.addf {r}, {b.const(repr(float(-qmin)))}", "f32")
        return b._conv("fptoui", shifted, "f32", code_t)

    codes = f.generic(ins, _tensor(shape, code_t), "d0, d1", 2, ["parallel"] * 2, data_body)
    results = [(codes, _tensor(shape, code_t))]
    if bits == 4:
        packed = f.name()
        pty = _tensor((shape[0] * shape[1] // 2,), "ui8")
        f.lines.append(f"    {packed} = quant.pack {codes} : {_tensor(shape, code_t)} -> {pty}")
        results = [(packed, pty)]
    results.append((scale, pt))
    if zp is not None:
        results.append((zp, _tensor(pshape, "i8")))
    return results


def _fp8_recipe(f, t, wt, shape, pshape, pmap, its):
    pt = _tensor(pshape, t)
    amax = _amax_bits(f, "%w", wt, t, pmap, its, pshape)

    def scale_body(b, a, acc):
        x = b._conv("bitcast", a[0], "i32", "f32")
        s = b.round_t(b.op(f"arith.divf {x}, {b.const('4.480000e+02')}", "f32"))
        return b.truncf(b.select_if_zero(s, EPS[t]), t)

    scale = f.generic(
        [(amax, _tensor(pshape, "i32"), "d0, d1")], pt, "d0, d1", 2, ["parallel"] * 2, scale_body
    )

    def data_body(b, a, acc):
        v = b.round_t(b.op(f"arith.divf {b.extf(a[0], t)}, {b.extf(a[1], t)}", "f32"))
        return b._conv("truncf", b.clamp(v, "-4.480000e+02", "4.480000e+02"), "f32", "f8E4M3FN")

    dt = _tensor(shape, "f8E4M3FN")
    data = f.generic(
        [("%w", wt, "d0, d1"), (scale, pt, pmap)], dt, "d0, d1", 2, ["parallel"] * 2, data_body
    )
    return [(data, dt), (scale, pt)]


def _nvfp4_recipe(f, t, wt, shape, pshape, pmap, its):
    one = _tensor((1,), "f32")

    def global_body(b, a, acc):
        amax = b.round_t(b.op(f"arith.maximumf {a[0]}, {b.const(TINY[t])}", "f32"))
        # torch evaluates `2688.0 / tensor` as `tensor.reciprocal() * 2688.0`
        r = b.round_t(b.op(f"arith.divf {b.const('1.000000e+00')}, {amax}", "f32"))
        g = b.round_t(b.op(f"arith.mulf {r}, {b.const('2.688000e+03')}", "f32"))
        inf = b.const("0x7F800000")
        finite = b.op(f"arith.cmpf olt, {b.op(f'math.absf {g}', 'f32')}, {inf}", "f32")
        return b.op(f"arith.select {finite}, {g}, {b.const('1.000000e+00')}", "f32")

    gscale = f.generic([("%gamax", one, "d0")], one, "d0", 1, ["parallel"], global_body)
    amax = _amax_bits(f, "%w", wt, t, pmap, its, pshape)
    st = _tensor(pshape, "f8E4M3FN")

    def scale_body(b, a, acc):
        x = b._conv("bitcast", a[0], "i32", "f32")
        local = b.round_t(b.op(f"arith.divf {x}, {b.const('6.000000e+00')}", "f32"))
        s = b.op(f"arith.mulf {a[1]}, {local}", "f32")
        s8 = b._conv("truncf", b.clamp(s, "-4.480000e+02", "4.480000e+02"), "f32", "f8E4M3FN")
        s = b.select_if_zero(b._conv("extf", s8, "f8E4M3FN", "f32"), "1.250000e-01")
        return b._conv("truncf", s, "f32", "f8E4M3FN")

    scale = f.generic(
        [(amax, _tensor(pshape, "i32"), "d0, d1"), (gscale, one, "0")],
        st,
        "d0, d1",
        2,
        ["parallel"] * 2,
        scale_body,
    )

    def data_body(b, a, acc):
        s = b._conv("extf", a[1], "f8E4M3FN", "f32")
        d = b.op(f"arith.divf {s}, {a[2]}", "f32")
        v = b.op(f"arith.divf {b.extf(a[0], t)}, {d}", "f32")
        v = b.select_if_zero(v, "0.000000e+00")  # -0 -> +0, as _round_to_fp4 signs by x < 0
        return b._conv("truncf", b.clamp(v, "-6.000000e+00", "6.000000e+00"), "f32", "f4E2M1FN")

    dt = _tensor(shape, "f4E2M1FN")
    data = f.generic(
        [("%w", wt, "d0, d1"), (scale, st, pmap), (gscale, one, "0")],
        dt,
        "d0, d1",
        2,
        ["parallel"] * 2,
        data_body,
    )
    packed = f.name()
    pty = _tensor((shape[0] * shape[1] // 2,), "ui8")
    f.lines.append(f"    {packed} = quant.pack {data} : {dt} -> {pty}")
    return [(packed, pty), (scale, st), (gscale, one)]


def _mx_recipe(f, scheme, t, wt, shape, pshape, pmap, its):
    fp4 = scheme.kind == "mxfp4"
    offset, top = (2, "6.000000e+00") if fp4 else (8, "4.480000e+02")
    data_t = "f4E2M1FN" if fp4 else "f8E4M3FN"
    amax = _amax_bits(f, "%w", wt, t, pmap, its, pshape)
    ct = _tensor(pshape, "ui8")

    # round_to_power_2 works on the weight type's own bits: add a quarter of the
    # significand field (rounds up from 1.75), keep the exponent field
    mantissa, exp_mask, bias = (10, 31, 15) if t == "f16" else (23, 255, 127)

    def code_body(b, a, acc):
        bits = a[0]
        if t == "f16":
            half = b._conv("truncf", b._conv("bitcast", a[0], "i32", "f32"), "f32", "f16")
            bits = b._conv("extui", b._conv("bitcast", half, "f16", "i16"), "i16", "i32")
        quarter = b.const(str(1 << (mantissa - 2)), "i32")
        up = b.op(f"arith.addi {bits}, {quarter}", "i32")
        exp = b.op(f"arith.shrui {up}, {b.const(str(mantissa), 'i32')}", "i32")
        e = b.op(f"arith.andi {exp}, {b.const(str(exp_mask), 'i32')}", "i32")
        code = b.op(f"arith.addi {e}, {b.const(str(127 - bias - offset), 'i32')}", "i32")
        code = b.op(f"arith.maxsi {code}, {b.const('0', 'i32')}", "i32")
        is_zero = b.op(f"arith.cmpi eq, {e}, {b.const('0', 'i32')}", "i32")
        code = b.op(f"arith.select {is_zero}, {b.const('0', 'i32')}, {code}", "i32")
        is_inf = b.op(f"arith.cmpi eq, {e}, {b.const(str(exp_mask), 'i32')}", "i32")
        code = b.op(f"arith.select {is_inf}, {b.const('255', 'i32')}, {code}", "i32")
        if t == "f16":
            # 2^(code - 127) is 0 in f16 below code 103; a zero scale becomes 1 (code 127)
            low = b.op(f"arith.cmpi slt, {code}, {b.const('103', 'i32')}", "i32")
            code = b.op(f"arith.select {low}, {b.const('127', 'i32')}, {code}", "i32")
        return b._conv("trunci", code, "i32", "ui8")

    codes = f.generic(
        [(amax, _tensor(pshape, "i32"), "d0, d1")], ct, "d0, d1", 2, ["parallel"] * 2, code_body
    )

    def data_body(b, a, acc):
        c = b._conv("extui", a[1], "ui8", "i32")
        bits = b.op(f"arith.shli {c}, {b.const('23', 'i32')}", "i32")
        s = b._conv("bitcast", bits, "i32", "f32")
        sub = b.op(f"arith.cmpi eq, {c}, {b.const('0', 'i32')}", "i32")
        s = b.op(f"arith.select {sub}, {b.const('5.87747175e-39')}, {s}", "f32")
        v = b.round_t(b.op(f"arith.divf {b.extf(a[0], t)}, {s}", "f32"))
        if fp4:
            v = b.select_if_zero(v, "0.000000e+00")  # -0 -> +0 (see the NVFP4 recipe)
        return b._conv("truncf", b.clamp(v, "-" + top, top), "f32", data_t)

    dt = _tensor(shape, data_t)
    data = f.generic(
        [("%w", wt, "d0, d1"), (codes, ct, pmap)], dt, "d0, d1", 2, ["parallel"] * 2, data_body
    )
    results = [(data, dt)]
    if fp4:
        packed = f.name()
        pty = _tensor((shape[0] * shape[1] // 2,), "ui8")
        f.lines.append(f"    {packed} = quant.pack {data} : {dt} -> {pty}")
        results = [(packed, pty)]
    return results + [(codes, ct)]


def amax_ir(dtype: str, shape: tuple[int, int]) -> str:
    """The IR of a whole weight's largest |x| (f32), for a fused group's global scale."""
    t = TYPES[dtype]
    f = _Func(t)
    wt = _tensor(shape, t)
    n, k = shape
    bits = _amax_bits(
        f, "%w", wt, t, f"d0 floordiv {n}, d1 floordiv {k}", ["reduction"] * 2, (1, 1)
    )
    out = f.generic(
        [(bits, _tensor((1, 1), "i32"), "d0, d1")],
        _tensor((1, 1), "f32"),
        "d0, d1",
        2,
        ["parallel"] * 2,
        lambda b, a, acc: b._conv("bitcast", a[0], "i32", "f32"),
    )
    return "\n".join(
        [f"func.func @main(%w: {wt}) -> tensor<1x1xf32> {{", *f.lines]
        + [f"    func.return {out} : tensor<1x1xf32>", "}"]
    )


@functools.lru_cache(maxsize=256)
def kernel(scheme: Scheme, dtype: str, shape: tuple[int, int]) -> Any:
    """The compiled recipe (see :func:`recipe_ir`)."""
    import qopt

    return qopt.compile(recipe_ir(scheme, dtype, shape))


@functools.lru_cache(maxsize=256)
def amax_kernel(dtype: str, shape: tuple[int, int]) -> Any:
    import qopt

    return qopt.compile(amax_ir(dtype, shape))
