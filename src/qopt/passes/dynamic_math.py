"""The scalar math of block statistics, dynamic quantization and fake quantization.

The scale computations of ``dynamic_quantize`` / ``fake_quantize`` (docs/semantics.md sections 3-5):
the amax step of the statistics reduction, :func:`dynamic_params` / :func:`fake_params`
(the parameters of one block from its statistics) and the per-element
:func:`dynamic_data` / :func:`fake_value`, built on ``quant_math.py``. The fused and the
composite lowerings call the same functions, so every lowering choice computes the same
bits.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects import math
from xdsl.dialects.builtin import IntegerType, f32, i8, i32
from xdsl.ir import Attribute, SSAValue

from qopt.passes.quant_math import (
    DequantizeParams,
    QuantizeParams,
    canonical_nan,
    clamp,
    dequantize_f32,
    nan_sign,
    quantize_float_value,
    quantize_int_value,
    quantize_value,
    round_integral,
)
from qopt.passes.scalar_ir import (
    BodyBuilder,
    Storage,
    f32_bits,
    from_f32,
    to_f32,
    to_storage_int,
)
from qopt.qdialect import formats

ABS_MASK = 0x7FFFFFFF
F32_INF_BITS = 0x7F800000
MANTISSA_MASK = 0x007FFFFF


def amax_step(b: BodyBuilder, x: SSAValue, acc: SSAValue) -> SSAValue:
    """One step of the block amax, on the bit pattern of |x| as i32 (exact, vectorizes,
    and NaN-propagating: every NaN pattern is above +inf's 0x7f800000):

        %bits = arith.bitcast %x : f32 to i32
        %abs = arith.andi %bits, %c2147483647_i32 : i32
        %m = arith.maxsi %acc, %abs : i32
    """
    return b.maxsi(acc, b.andi(b.bitcast(x, i32), b.i32(ABS_MASK)))


@dataclass(frozen=True)
class Stats:
    """Block statistics as read inside a body: amax bits (i32) or clamped xmin / xmax."""

    amax_bits: SSAValue | None = None
    xmin: SSAValue | None = None
    xmax: SSAValue | None = None

    def amax(self, b: BodyBuilder) -> SSAValue:
        assert self.amax_bits is not None
        return b.bitcast(self.amax_bits, f32)


@dataclass(frozen=True)
class DynamicParams:
    """What a block's statistics give: stored results, and the f32 values data uses."""

    scale: SSAValue
    """The scale result element, in the scale format."""
    divisor: SSAValue
    """The f32 value ``x`` is divided by (the stored scale, exactly, times dq)."""
    zero_point: SSAValue | None = None
    """The zero point as an integral f32 (asymmetric integer only)."""
    zero_point_stored: SSAValue | None = None
    """The zero point result element, in the storage type."""


@dataclass(frozen=True)
class DynamicForm:
    """The constant facts of one dynamic_quantize op."""

    storage: Storage
    scale_type: Attribute
    symmetric: bool = True
    eps: float | None = None
    scale_rounding: str = "floor"


def store_expressed_scale(b: BodyBuilder, s: SSAValue, scale_type: Attribute) -> SSAValue:
    """Round an f32 scale to its format and replace 0 by 1.0; returns it back in f32.

    %n = arith.cmpf uno, %s, %s : f32
    %s1 = arith.select %n, 0x7FC00000, %s : f32  (a NaN scale is the positive NaN)
    %h = arith.truncf %s1 : f32 to f16
    %r = arith.extf %h : f16 to f32
    %zero = arith.cmpf oeq, %r, 0.0 : f32
    %sf = arith.select %zero, 1.0, %r : f32      (a block whose scale is 0 stores 1.0)
    """
    rounded = to_f32(b, from_f32(b, canonical_nan(b, s), scale_type))
    return b.select(b.cmpf("oeq", rounded, b.f32(0.0)), b.f32(1.0), rounded)


def mx_scale_code(b: BodyBuilder, amax_bits: SSAValue, form: DynamicForm) -> SSAValue:
    """The e8m0 code (i32, 0..255) of an MX block from the bits of its amax, exactly.

    With ``amax = 1.M * 2^(E-127)`` and the format's ``max = 1.Mf * 2^emax``:
    floor: ``e = (E - 127) - emax``; rceil: ``e = (E - 127) - emax + (M > Mf)`` (the
    smallest e with ``amax / 2^e <= max``). Zero and subnormal amax give ``e < -127``,
    +inf gives 127 (clamped), NaN gives code 255. Then ``e`` is clamped to [-127, 127]:

        %E = arith.shrui %bits, %c23_i32 : i32
        %e = arith.subi %E, %c135_i32 : i32                 (127 + emax, e.g. 8 for e4m3)
        %M = arith.andi %bits, %c8388607_i32 : i32           (rceil only)
        %gt = arith.cmpi sgt, %M, %c6291456_i32 : i32
        %one = arith.extui %gt : i1 to i32
        %e1 = arith.addi %e, %one : i32
        %inf = arith.cmpi eq, %bits, %c2139095040_i32 : i32
        %e2 = arith.select %inf, %c127_i32, %e1 : i32
        %lo = arith.maxsi %e2, %c-127_i32 : i32
        %ec = arith.minsi %lo, %c127_i32 : i32
        %code = arith.addi %ec, %c127_i32 : i32
        %nan = arith.cmpi sgt, %bits, %c2139095040_i32 : i32
        %code1 = arith.select %nan, %c255_i32, %code : i32
    """
    fmax_bits = f32_bits(form.storage.float_max)
    emax = (fmax_bits >> 23) - 127
    e = b.subi(b.shrui(amax_bits, b.i32(23)), b.i32(127 + emax))
    if form.scale_rounding == "rceil":
        mantissa = b.andi(amax_bits, b.i32(MANTISSA_MASK))
        above = b.cmpi("sgt", mantissa, b.i32(fmax_bits & MANTISSA_MASK))
        e = b.addi(e, b.extui(above, i32))
    e = b.select(b.cmpi("eq", amax_bits, b.i32(F32_INF_BITS)), b.i32(127), e)
    e = b.minsi(b.maxsi(e, b.i32(-127)), b.i32(127))
    code = b.addi(e, b.i32(127))
    return b.select(b.cmpi("sgt", amax_bits, b.i32(F32_INF_BITS)), b.i32(255), code)


def dynamic_params(
    b: BodyBuilder, stats: Stats, form: DynamicForm, double_quant: SSAValue | None
) -> DynamicParams:
    """The scale (and zero point) of one block of ``dynamic_quantize`` (docs/semantics.md sections 3-5).

    * integer / float data with an f32/f16/bf16 scale: ``s = amax / qmax`` (float data:
      ``amax / max``; asymmetric: ``(max(xmax,0) - min(xmin,0)) / (qmax - qmin)``),
      ``max(s, eps)``, rounded to the scale format, 0 stored as 1.0; the asymmetric zero
      point is ``roundeven(clamp(qmin - xmin / s, qmin, qmax))`` with NaN as 0 (ONNX
      DynamicQuantizeLinear, with the stored scale);
    * f8E4M3FN scale (NVFP4): ``sq = e4m3_rne(clamp((amax / max) / dq, 0, 448))``, data
      divided by the rounded ``f32(sq) * dq``;
    * f8E8M0FNU scale (MX): :func:`mx_scale_code`, data divided by ``2^e = extf(code)``.

    NaN in a block propagates into its scale (like ``torch.amax``); no division by zero:
    a zero divisor only happens for NVFP4, where the data generic selects a safe one.
    """
    storage, scale_name = form.storage, formats.type_name(form.scale_type)
    if scale_name == "f8E8M0FNU":
        assert stats.amax_bits is not None
        code = mx_scale_code(b, stats.amax_bits, form)
        scale = b.bitcast(b.trunci(code, i8), form.scale_type)
        return DynamicParams(scale, b.extf(scale))
    if not form.symmetric:
        assert stats.xmin is not None and stats.xmax is not None
        span = b.subf(stats.xmax, stats.xmin)
        s = b.divf(span, b.f32(storage.qmax - storage.qmin))
    else:
        bound = storage.float_max if storage.is_float else storage.qmax
        s = b.divf(stats.amax(b), b.f32(bound))
    if form.eps is not None:
        s = b.maximumf(s, b.f32(form.eps))
    if scale_name == "f8E4M3FN":
        if double_quant is not None:
            s = b.divf(s, double_quant)
        scale = b.truncf(
            canonical_nan(b, clamp(b, s, 0.0, formats.float_format(form.scale_type).max_value)),
            form.scale_type,
        )
        divisor = b.extf(scale)
        if double_quant is not None:
            divisor = b.mulf(divisor, double_quant)
        return DynamicParams(scale, divisor)
    sf = store_expressed_scale(b, s, form.scale_type)
    scale = from_f32(b, sf, form.scale_type)
    if form.symmetric:
        return DynamicParams(scale, sf)
    assert stats.xmin is not None and isinstance(storage.type, IntegerType)
    z = b.subf(b.f32(storage.qmin), b.divf(stats.xmin, sf))
    z = b.select(b.is_nan(z), b.f32(0.0), z)
    # rne then clamp (the same as clamp then rne for integer bounds): the clamp stays
    # right before the conversion
    zp = clamp(b, b.unary(math.RoundEvenOp, z), storage.qmin, storage.qmax)
    return DynamicParams(scale, sf, zp, to_storage_int(b, zp, storage.type))


def dynamic_data(b: BodyBuilder, x: SSAValue, params: DynamicParams, form: DynamicForm) -> SSAValue:
    """One data element of ``dynamic_quantize`` from its block's parameters.

    Float data: ``cast_rne(clamp(x / divisor, -max, max))``; an NVFP4 block whose divisor
    is 0 gets ``copysign(0, x)`` without dividing:

        %zero = arith.cmpf oeq, %div, 0.0 : f32
        %safe = arith.select %zero, 1.0, %div : f32
        %v = arith.divf %x, %safe : f32
        %z = math.copysign 0.0, %x : f32
        %v1 = arith.select %zero, %z, %v : f32
    Integer data: ``clamp(rne(x / s) + zp, qmin, qmax)``.
    """
    storage = form.storage
    if storage.is_float:
        if formats.type_name(form.scale_type) == "f8E4M3FN":
            zero = b.cmpf("oeq", params.divisor, b.f32(0.0))
            safe = b.select(zero, b.f32(1.0), params.divisor)
            v = b.select(zero, b.copysign(b.f32(0.0), x), b.divf(x, safe))
        else:
            v = b.divf(x, params.divisor)
        return quantize_float_value(b, v, storage, saturate=True, source=x)
    quant = QuantizeParams(params.divisor, params.zero_point)
    return quantize_value(b, x, quant, storage)


# --- fake quantize ---------------------------------------------------------------------


@dataclass(frozen=True)
class FakeForm:
    """The constant facts of one fake_quantize op."""

    storage: Storage
    scale_type: Attribute = f32
    symmetric: bool = True
    eps: float | None = None
    domain: str = "int"
    expressed: Attribute = f32
    rounding: str = "nearest_even"

    @property
    def mid(self) -> float:
        """torchao's mid point ``(qmax + qmin + 1) / 2``."""
        return (self.storage.qmax + self.storage.qmin + 1) / 2

    @property
    def default_eps(self) -> float:
        """torchao: ``eps`` defaults to ``finfo(x.dtype).eps``."""
        return {"f32": 2.0**-23, "f16": 2.0**-10, "bf16": 2.0**-7}[
            formats.type_name(self.expressed)
        ]


@dataclass(frozen=True)
class FakeParams:
    """The f32 scale and zero point fake quantization uses for one block."""

    scale: SSAValue
    zero_point: SSAValue | None = None


def fake_params(b: BodyBuilder, stats: Stats, form: FakeForm) -> FakeParams:
    """Dynamic fake-quantize parameters of one block (torchao ``choose_qparams_affine``).

    Integer storage (``min_neg = min(xmin, 0)``, ``max_pos = max(xmax, 0)``; the raw
    xmin / xmax in the ``float`` domain), ``eps`` defaulting to the input type's epsilon:
    * symmetric: ``s = max(amax / ((qmax - qmin) / 2), eps)``, zp = ``int(mid)`` (``int``
      domain) or none;
    * asymmetric ``int``: ``s = max((max_pos - min_neg) / (qmax - qmin), eps)``,
      ``zp = clamp(qmin - rne(min_neg / s), qmin, qmax)`` (NaN as 0; unrounded s);
    * asymmetric ``float``: ``s`` likewise from the raw xmin / xmax, ``zp = xmin + s * mid``
      rounded to the input type.
    Then s is rounded to ``scale_type`` (0 becomes 1.0). Float storage: ``s = amax / max``
    (``max(s, eps)`` only with an explicit eps), rounded, 0 becomes 1.0.
    """
    storage = form.storage
    if storage.is_float:
        s = b.divf(stats.amax(b), b.f32(storage.float_max))
        if form.eps is not None:
            s = b.maximumf(s, b.f32(form.eps))
        return FakeParams(store_expressed_scale(b, s, form.scale_type))
    eps = b.f32(form.default_eps if form.eps is None else form.eps)
    zp: SSAValue | None = None
    if form.symmetric:
        half_range = (storage.qmax - storage.qmin) / 2
        s = b.maximumf(b.divf(stats.amax(b), b.f32(half_range)), eps)
        if form.domain == "int":
            zp = b.f32(float(int(form.mid)))
    else:
        assert stats.xmin is not None and stats.xmax is not None
        span = b.subf(stats.xmax, stats.xmin)
        s = b.maximumf(b.divf(span, b.f32(storage.qmax - storage.qmin)), eps)
        if form.domain == "int":
            r = b.unary(math.RoundEvenOp, b.divf(stats.xmin, s))
            r = b.select(b.is_nan(r), b.f32(0.0), r)
            zp = clamp(b, b.subf(b.f32(storage.qmin), r), storage.qmin, storage.qmax)
        else:
            zp = b.addf(stats.xmin, b.mulf(s, b.f32(form.mid)))
            zp = to_f32(b, from_f32(b, zp, form.expressed))
    return FakeParams(store_expressed_scale(b, s, form.scale_type), zp)


def fake_code(b: BodyBuilder, x: SSAValue, params: FakeParams, form: FakeForm) -> SSAValue:
    """The quantize half of ``fake_quantize``: the code of one element.

    * float storage: ``cast_rne(clamp(x / s, -max, max))``, in the storage type;
    * ``int`` / ``none`` domain: ``clamp(round(x / s) + zp, qmin, qmax)``, an integral f32
      (the code exactly: no conversion to integer needed);
    * ``float`` domain (torchao tinygemm): ``min_val = zp - s * mid``,
      ``clamp(round((x - min_val) / s), qmin, qmax)`` (NaN x as +0, NaN q as 0).
    """
    storage, s, zp = form.storage, params.scale, params.zero_point
    if storage.is_float:
        return quantize_float_value(b, b.divf(x, s), storage, saturate=True, source=x)
    # zp 0 is added and subtracted explicitly: the code of -0.3 is +0, not -0.0
    zero_point = zp if zp is not None else b.f32(0.0)
    if form.domain == "float":
        min_val = b.subf(zero_point, b.mulf(s, b.f32(form.mid)))
        x0 = b.select(b.is_nan(x), b.f32(0.0), x)
        r = round_integral(b, b.divf(b.subf(x0, min_val), s), form.rounding)
        r = b.select(b.is_nan(r), b.f32(0.0), r)
        return clamp(b, r, storage.qmin, storage.qmax)
    return quantize_int_value(b, b.divf(x, s), zero_point, storage, form.rounding)


def fake_dequantize(b: BodyBuilder, q: SSAValue, params: FakeParams, form: FakeForm) -> SSAValue:
    """The dequantize half of ``fake_quantize``: a code (as f32) back to f32.

    ``q * s`` (float storage), ``(q - zp) * s`` (``int`` / ``none``), or ``(q - mid) * s +
    zp`` (``float`` domain, a NaN result with the sign of ``q``).
    """
    storage, s, zp = form.storage, params.scale, params.zero_point
    if storage.is_float:
        return dequantize_f32(b, q, DequantizeParams(s))
    zero_point = zp if zp is not None else b.f32(0.0)
    if form.domain == "float":
        y = b.addf(b.mulf(b.subf(q, b.f32(form.mid)), s), zero_point)
        return nan_sign(b, y, q)
    return dequantize_f32(b, q, DequantizeParams(s, zero_point))


def fake_value(b: BodyBuilder, x: SSAValue, params: FakeParams, form: FakeForm) -> SSAValue:
    """One element of ``dequantize(quantize(x))`` in f32: :func:`fake_code`, then
    :func:`fake_dequantize` (the composite lowering stores the code in between)."""
    q = fake_code(b, x, params, form)
    return fake_dequantize(b, b.extf(q) if form.storage.is_float else q, params, form)
