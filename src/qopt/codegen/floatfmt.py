"""Element-format conversions for `arith.truncf` / `arith.extf`, as branch-free LLVM IR.

`truncate` turns an f32 (scalar or `<N x float>`) into one of the small float formats and
`extend` turns it back, bit for bit the way `ml_dtypes` (and numpy, for f16) do it:
`np.asarray(v, np.float32).astype(fmt)` and `.astype(np.float32)`.

Scheme
------
Everything is arithmetic on the f32 bit pattern (bitcast to i32; shifts, and/or, add/sub,
icmp, select; one f32 addition to round), so one piece of IR serves scalars and vectors of
any lane count, and a loop that uses it is vectorized by LLVM's loop vectorizer like any
other arithmetic loop (AVX-512: 16 lanes per instruction, variable shifts are `vpsrlvd`).
There are no branches, no calls and no lookup tables: a table load would become a gather,
a branch would stop the vectorizer, and a libcall (what `fptrunc` to `half` becomes on a
CPU without F16C) would need a symbol the JIT does not have.

A format is described once by a `FloatFormat` (exponent bits E, mantissa bits M, bias,
largest finite magnitude code, overflow behaviour, NaN encoding); the generic helpers below
read the descriptor, so there is one implementation, not six.

truncate (f32 -> format), for an input of magnitude bits `a` (sign handled separately).
Formats whose range is well inside f32's (e4m3, e5m2, e2m1, f16) round with one f32
addition, the classic magic-constant trick (`_round_by_magic_add`, half the instructions):

    a     = min(a, bits(2**(emax + 2)))             anything larger overflows anyway
    e     = max(a >> 23, 128 - bias)                exponent of a, at least the smallest normal's
    C     = 2**(e - 127 - M + 23)                   2**23 target ulps: the ulp of C is the target's
    t     = a + C                                   the FPU rounds to nearest even at that ulp
    mag   = (bits(t) - bits(C)) + (e - (128 - bias)) << M

`bits(t) - bits(C)` counts target ulps above C: the significand with its implicit one for a
normal result (so the exponent term adds e - 1 - (127 - bias) << M), the code itself for a
subnormal one (e is then the smallest normal's and the term is 0); a carry into the next
binade is handled by the same addition. Ties go to even because C is an even number of
ulps. It depends on the FPU rounding to nearest even (the default) but not on subnormal
handling: C and t are normal, and an f32 subnormal input rounds to 0 either way.

bf16, whose exponent range is f32's, uses integer shifts (`_round_by_shifts`):

    e     = a >> 23, taken as max(e, 1)             f32 subnormals have exponent 1, no implicit 1
    mant  = (a & 0x7FFFFF) | (e != 0) << 23         24-bit significand
    t     = e - 127 + bias                          target biased exponent (may be <= 0)
    s     = 23 - M + max(1 - t, 0), capped at 31    shift to the target's ulp; larger for subnormals
    q     = (mant + (1 << (s-1)) - 1 + ((mant >> s) & 1)) >> s      round to nearest even
    mag   = q + (max(t, 1) - 1) << M

For a normal result `q` holds the implicit one at bit M and a rounding carry moves into the
exponent by the addition; for a subnormal result the larger shift leaves `q < 1 << M` (or
exactly `1 << M`, the smallest normal, when it rounds up). Overflow is one unsigned compare
`mag > max_mag` (f32 inf lands there too) and becomes the format's inf, NaN or max
(saturating e2m1). NaN inputs and, for the unsigned e8m0, negative and zero inputs are
selected last.

extend (format -> f32) is exact: `(mag << (23 - M)) + ((127 - bias) << 23)` for normal codes;
a subnormal code (exponent field 0) is `uitofp(mantissa) * 2**(1 - bias - M)`, exact because
the mantissa is a small integer and the product is an f32 normal; all-ones exponent (inf,
NaN) and the NaN codes of the formats without inf are selected in.

ml_dtypes behaviours matched here (found by comparing all 2**32 f32 inputs and all codes):

* f8E4M3FN: overflow and +-inf give NaN 0x7F / 0xFF (sign kept); NaN gives 0x7F / 0xFF.
* f8E5M2: overflow and +-inf give +-inf (0x7C / 0xFC); NaN gives 0x7E / 0xFE, payload
  dropped; extend of any NaN code is the quiet NaN 0x7FC00000 with the sign.
* f4E2M1FN: overflow and +-inf saturate to +-6 (0x7 / 0xF). NaN becomes a zero of the
  *opposite* sign: +NaN -> 0x8 (-0.0), -NaN -> 0x0 (+0.0), whatever the payload (it
  behaves as if the format's NaN were -0.0 and a negative input negated it). On extend, any
  bit above the 3 magnitude bits is read as the sign.
* f8E8M0FNU (`_round_to_power_of_two`): negative numbers (also -0.0), +0.0, NaN, inf and
  overflow give 255. Rounding is to the nearest power of two with ties *up* (1.5 -> 2,
  3.0 -> 4; a tie has no even neighbour to prefer, as every code's significand is 1, and
  up is what ml_dtypes and the OCP MX round-to-nearest conversion do). Code 0 is 2**-127,
  not zero, so every input in (0, 1.5 * 2**-127) gives code 0 and [1.5 * 2**-127, 2**-126)
  gives code 1. ml_dtypes before 0.7 rounded (2**-127, 1.5 * 2**-127) to code 1, as if
  code 0 were zero; 0.7 follows the definition, and so does this. extend: code 0 is
  2**-127 (f32 bits 0x00400000), 255 is NaN 0x7FC00000.
* bf16: round to nearest even; NaN becomes the quiet NaN 0x7FC0 / 0xFFC0 (payload dropped);
  extend is exact `code << 16`, NaN payloads kept.
* f16 (numpy): round to nearest even; NaN keeps its sign and the top 10 payload bits, not
  quieted, and a payload that truncates to 0 becomes 1 (0x7F800001 -> 0x7C01); extend
  keeps the payload, not quieted. (The hardware `vcvtps2ph` / `vcvtph2ps` quiet signalling
  NaNs, which is why f16 also goes through the integer path.)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from llvmlite import ir

__all__ = ["SMALL_FLOAT_FORMATS", "FloatFormat", "extend", "storage_type", "truncate"]

_I32 = ir.IntType(32)
_F32 = ir.FloatType()


@dataclass(frozen=True)
class FloatFormat:
    """How one small float format is laid out and how it treats overflow and NaN."""

    exp_bits: int
    man_bits: int
    bias: int
    storage_bits: int  # width of the integer that carries a code (i8 / i16)
    max_mag: int  # largest finite magnitude code (sign bit clear)
    overflow: Literal["inf", "nan", "saturate"]
    # Which codes are NaN: "ieee" = all-ones exponent with nonzero mantissa (the all-ones
    # exponent with zero mantissa is inf); "ones" = all magnitude bits set; "none".
    nan: Literal["ieee", "ones", "none"]
    # truncate: (code for +NaN, code for -NaN); None = keep sign and payload (numpy f16).
    trunc_nan: tuple[int, int] | None
    ext_nan_payload: bool  # extend keeps the NaN payload (else quiet NaN with the sign)
    signed: bool = True  # False: no sign bit and no zero (e8m0); code 0 is 2**-bias

    @property
    def mag_bits(self) -> int:
        return self.exp_bits + self.man_bits

    @property
    def shift(self) -> int:
        """Mantissa bits dropped from f32."""
        return 23 - self.man_bits

    @property
    def magic_clamp(self) -> int:
        """f32 bits of 2**(emax + 2): magnitudes at or above it overflow, whatever rounding."""
        emax = (self.max_mag >> self.man_bits) - self.bias
        return (emax + 2 + 127) << 23

    @property
    def magic_rounding(self) -> bool:
        """Whether `_round_by_magic_add` applies: its constant 2**(emax + 2 + 23 - M) must
        be a finite f32 (not for bf16 and e8m0, whose range is f32's), and the format
        must have a sign and a zero (not e8m0)."""
        return self.signed and (self.magic_clamp >> 23) + self.shift <= 254

    @property
    def inf_mag(self) -> int:
        return ((1 << self.exp_bits) - 1) << self.man_bits

    @property
    def overflow_mag(self) -> int:
        match self.overflow:
            case "inf":
                return self.inf_mag
            case "nan":
                return (1 << self.mag_bits) - 1
            case "saturate":
                return self.max_mag


FORMATS: dict[str, FloatFormat] = {
    "f8E4M3FN": FloatFormat(
        exp_bits=4, man_bits=3, bias=7, storage_bits=8, max_mag=0x7E, overflow="nan",
        nan="ones", trunc_nan=(0x7F, 0xFF), ext_nan_payload=False,
    ),
    "f8E5M2": FloatFormat(
        exp_bits=5, man_bits=2, bias=15, storage_bits=8, max_mag=0x7B, overflow="inf",
        nan="ieee", trunc_nan=(0x7E, 0xFE), ext_nan_payload=False,
    ),
    "f4E2M1FN": FloatFormat(
        exp_bits=2, man_bits=1, bias=1, storage_bits=8, max_mag=0x7, overflow="saturate",
        nan="none", trunc_nan=(0x8, 0x0), ext_nan_payload=False,
    ),
    "f8E8M0FNU": FloatFormat(
        exp_bits=8, man_bits=0, bias=127, storage_bits=8, max_mag=0xFE, overflow="nan",
        nan="ones", trunc_nan=(0xFF, 0xFF), ext_nan_payload=False, signed=False,
    ),
    "bf16": FloatFormat(
        exp_bits=8, man_bits=7, bias=127, storage_bits=16, max_mag=0x7F7F, overflow="inf",
        nan="ieee", trunc_nan=(0x7FC0, 0xFFC0), ext_nan_payload=True,
    ),
    "f16": FloatFormat(
        exp_bits=5, man_bits=10, bias=15, storage_bits=16, max_mag=0x7BFF, overflow="inf",
        nan="ieee", trunc_nan=None, ext_nan_payload=True,
    ),
}  # fmt: skip

SMALL_FLOAT_FORMATS: frozenset[str] = frozenset(FORMATS)


def _format(fmt: str) -> FloatFormat:
    try:
        return FORMATS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown small float format {fmt!r}; expected one of {sorted(FORMATS)}"
        ) from None


def storage_type(fmt: str) -> ir.Type:
    """The LLVM type that carries one value of `fmt`: i8 (f4 in the low 4 bits), i16 or half."""
    if fmt == "f16":
        return ir.HalfType()
    return ir.IntType(_format(fmt).storage_bits)


def _shaped(like: ir.Type, element: ir.Type) -> ir.Type:
    """`element`, or a vector of it with as many lanes as `like`."""
    if isinstance(like, ir.VectorType):
        return ir.VectorType(element, like.count)
    return element


def _splat(ty: ir.Type, value: int | float) -> ir.Constant:
    """A constant of type `ty`, repeated in every lane when `ty` is a vector."""
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [ir.Constant(ty.element, value)] * ty.count)
    return ir.Constant(ty, value)


def _f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


class _Ints:
    """i32 (or <N x i32>) operations with integer operands splatted to constants."""

    def __init__(self, builder: ir.IRBuilder, ty: ir.Type) -> None:
        self.b = builder
        self.ty = ty

    def _v(self, x: ir.Value | int) -> ir.Value:
        return _splat(self.ty, x) if isinstance(x, int) else x

    def and_(self, x: ir.Value, y: ir.Value | int) -> ir.Value:
        return self.b.and_(x, self._v(y))

    def or_(self, x: ir.Value, y: ir.Value | int) -> ir.Value:
        return self.b.or_(x, self._v(y))

    def add(self, x: ir.Value, y: ir.Value | int) -> ir.Value:
        return self.b.add(x, self._v(y))

    def sub(self, x: ir.Value | int, y: ir.Value | int) -> ir.Value:
        return self.b.sub(self._v(x), self._v(y))

    def shl(self, x: ir.Value | int, y: ir.Value | int) -> ir.Value:
        return self.b.shl(self._v(x), self._v(y))

    def lshr(self, x: ir.Value, y: ir.Value | int) -> ir.Value:
        return self.b.lshr(x, self._v(y))

    def cmp_u(self, op: str, x: ir.Value, y: ir.Value | int) -> ir.Value:
        return self.b.icmp_unsigned(op, x, self._v(y))

    def cmp_s(self, op: str, x: ir.Value, y: ir.Value | int) -> ir.Value:
        return self.b.icmp_signed(op, x, self._v(y))

    def select(self, cond: ir.Value, x: ir.Value | int, y: ir.Value | int) -> ir.Value:
        return self.b.select(cond, self._v(x), self._v(y))

    def smax(self, x: ir.Value, y: int) -> ir.Value:
        return self.select(self.cmp_s(">", x, y), x, y)

    def umin(self, x: ir.Value, y: int) -> ir.Value:
        return self.select(self.cmp_u("<", x, y), x, y)

    def umax(self, x: ir.Value, y: int) -> ir.Value:
        return self.select(self.cmp_u(">", x, y), x, y)


def truncate(builder: ir.IRBuilder, value: ir.Value, fmt: str) -> ir.Value:
    """f32 / <N x float> -> `storage_type(fmt)` (per lane), exactly ml_dtypes' `astype`."""
    f = _format(fmt)
    if value.type != _shaped(value.type, _F32):
        raise TypeError(f"truncate to {fmt} expects float or <N x float>, got {value.type}")
    i32 = _shaped(value.type, _I32)
    k = _Ints(builder, i32)

    bits = builder.bitcast(value, i32)
    sign = k.lshr(bits, 31)
    a = k.and_(bits, 0x7FFFFFFF)
    if f.magic_rounding:
        mag = _round_by_magic_add(builder, k, a, f)
    elif not f.signed:
        mag = _round_to_power_of_two(k, a)
    else:
        mag = _round_by_shifts(k, a, f)

    mag = k.select(k.cmp_u(">", mag, f.max_mag), f.overflow_mag, mag)
    code = k.or_(mag, k.shl(sign, f.mag_bits)) if f.signed else mag

    is_nan = k.cmp_u(">", a, 0x7F800000)
    if f.trunc_nan is None:
        payload = k.umax(k.lshr(k.and_(a, 0x7FFFFF), f.shift), 1)
        nan_code = k.or_(k.or_(payload, f.inf_mag), k.shl(sign, f.mag_bits))
    else:
        positive, negative = f.trunc_nan
        nan_code = k.select(k.cmp_u("==", sign, 0), positive, negative)
    if not f.signed:
        # No sign and no zero: negative numbers (-0.0 too) and +0.0 are NaN like NaN itself.
        is_nan = builder.or_(is_nan, k.cmp_s("<=", bits, 0))
    code = k.select(is_nan, nan_code, code)

    result = builder.trunc(code, _shaped(value.type, ir.IntType(f.storage_bits)))
    if fmt == "f16":
        result = builder.bitcast(result, _shaped(value.type, ir.HalfType()))
    return result


def _round_by_shifts(k: _Ints, a: ir.Value, f: FloatFormat) -> ir.Value:
    """Magnitude code of the f32 magnitude bits `a`, rounded to nearest even with integer
    shifts (any format; see the module docstring). May exceed `max_mag` on overflow."""
    exp = k.lshr(a, 23)
    f32_subnormal = k.cmp_u("==", exp, 0)
    exp = k.select(f32_subnormal, 1, exp)
    mant = k.or_(k.and_(a, 0x7FFFFF), k.select(f32_subnormal, 0, 1 << 23))

    # Shift to the target's ulp: 23 - M bits for a normal result, more when the target
    # exponent t = exp - 127 + bias is <= 0 (a subnormal result). Past 31 it rounds to 0.
    below = k.smax(k.sub(128 - f.bias, exp), 0)  # max(1 - t, 0)
    s = k.umin(k.add(below, f.shift), 31)
    half_minus_one = k.sub(k.shl(1, k.sub(s, 1)), 1)
    odd = k.and_(k.lshr(mant, s), 1)
    q = k.lshr(k.add(k.add(mant, half_minus_one), odd), s)
    exp_field = k.smax(k.sub(exp, 128 - f.bias), 0)  # max(t, 1) - 1
    return k.add(q, k.shl(exp_field, f.man_bits))


def _round_to_power_of_two(k: _Ints, a: ir.Value) -> ir.Value:
    """E8M0 code of the positive f32 magnitude bits `a`: the nearest power of two, ties up.

    Code c is 2**(c - 127) and there is no zero, so a normal f32 with exponent field e lies
    between codes e and e + 1 and rounds up when its mantissa is >= 0.5 (bit 22): 1.5 -> 2.
    Every f32 subnormal lies below 2**-126 (code 1); it rounds to code 1 from 1.5 * 2**-127
    (bits 0x00600000) up and to code 0 (2**-127, the nearest code) below, down to the
    smallest subnormal. May exceed `max_mag` on overflow (0x7F400000 and up, inf)."""
    exp = k.lshr(a, 23)
    normal = k.add(exp, k.and_(k.lshr(a, 22), 1))
    subnormal = k.select(k.cmp_u(">=", a, 0x00600000), 1, 0)
    return k.select(k.cmp_u("==", exp, 0), subnormal, normal)


def _round_by_magic_add(builder: ir.IRBuilder, k: _Ints, a: ir.Value, f: FloatFormat) -> ir.Value:
    """Magnitude code of the f32 magnitude bits `a`, rounded to nearest even by one f32
    addition (about half the instructions of `_round_by_shifts`; see the module docstring).
    May exceed `max_mag` on overflow; NaN inputs give garbage the caller selects away."""
    min_normal_exp = 128 - f.bias  # f32 biased exponent of the target's smallest normal
    a = k.umin(a, f.magic_clamp)  # keeps C finite; everything clamped overflows anyway
    e = k.smax(k.lshr(a, 23), min_normal_exp)
    c_bits = k.shl(k.add(e, f.shift), 23)  # C = 2**23 * (target ulp at a)
    f32 = _shaped(a.type, _F32)
    t = builder.fadd(builder.bitcast(a, f32), builder.bitcast(c_bits, f32))
    # t's low mantissa bits count target ulps above C: (implicit one << M) + mantissa for
    # a normal result, the subnormal code itself below the smallest normal.
    ulps = k.sub(builder.bitcast(t, a.type), c_bits)
    return k.add(ulps, k.shl(k.sub(e, min_normal_exp), f.man_bits))


def extend(builder: ir.IRBuilder, value: ir.Value, fmt: str) -> ir.Value:
    """`storage_type(fmt)` / <N x storage> -> f32 / <N x float>, exactly ml_dtypes' `astype`."""
    f = _format(fmt)
    storage = storage_type(fmt)
    if value.type != _shaped(value.type, storage):
        raise TypeError(f"extend from {fmt} expects {storage} or a vector of it, got {value.type}")
    if fmt == "f16":
        value = builder.bitcast(value, _shaped(value.type, ir.IntType(16)))
    i32 = _shaped(value.type, _I32)
    f32 = _shaped(value.type, _F32)
    k = _Ints(builder, i32)

    c = builder.zext(value, i32)
    mag = k.and_(c, (1 << f.mag_bits) - 1)
    exp = k.lshr(mag, f.man_bits)
    man = k.and_(mag, (1 << f.man_bits) - 1)
    bits = k.add(k.shl(mag, f.shift), (127 - f.bias) << 23)  # normal codes

    if not f.signed:
        # e8m0 has no zero: exponent field 0 is the power of two 2**-bias.
        bits = k.select(k.cmp_u("==", exp, 0), _f32_bits(2.0**-f.bias), bits)
    elif f.bias != 127:
        # Subnormal codes: mantissa * 2**(1 - bias - M), exact in f32 (the mantissa is a
        # small integer, the product a normal f32).
        scaled = builder.fmul(
            builder.uitofp(man, f32), _splat(f32, 2.0 ** (1 - f.bias - f.man_bits))
        )
        bits = k.select(k.cmp_u("==", exp, 0), builder.bitcast(scaled, i32), bits)
    # (bias 127: a subnormal code is the f32 subnormal with the same bits, already right.)

    match f.nan:
        case "ieee" if not (f.bias == 127 and f.ext_nan_payload):
            if f.ext_nan_payload:
                special = k.or_(k.shl(man, f.shift), 0x7F800000)
            else:
                special = k.select(k.cmp_u("==", man, 0), 0x7F800000, 0x7FC00000)
            bits = k.select(k.cmp_u("==", exp, (1 << f.exp_bits) - 1), special, bits)
        case "ones":
            bits = k.select(k.cmp_u("==", mag, (1 << f.mag_bits) - 1), 0x7FC00000, bits)
    if f.signed:
        # Any bit above the magnitude counts as the sign, as in ml_dtypes (only matters for
        # an f4 byte whose upper bits are not 0, which the storage convention rules out).
        negative = k.cmp_u("!=", k.lshr(c, f.mag_bits), 0)
        bits = k.or_(bits, k.select(negative, 0x80000000, 0))
    return builder.bitcast(bits, f32)
