"""requantize-to-rescale: turn float requantizes into fixed-point ``quant.rescale`` (opt-in).

This pass CHANGES RESULTS, which is why it runs only when named: a ``quant.requantize``
computes ``quantize(dequantize(q))`` in f32 (docs/semantics.md section 4); the rescale it
becomes computes ``floor(((q - zp_in) * m + r) / 2^s) + zp_out`` (section 12), where
``m * 2^-s`` is the f32 ratio ``s_in / s_out`` (taken in f64) rounded to a 31-bit (15-bit)
multiplier, and ties round by the rescale's mode (``single_round``: toward +infinity)
instead of the requantize's. An output can therefore move by one code where the product
lies near a half, which is what integer-only targets (TOSA, TFLite, TVM QNN) compute.

Converted: requantizes with integer storage of 8 or 16 bits on both sides, constant
scales (per tensor, or per axis on one axis; a per-tensor side broadcasts), zero points
that are one constant per side, and the default (saturating) behaviour; a narrow output
range is kept. Anything else (runtime parameters, per-channel zero points, sub-byte or
float storage, per-block scales) is left as it is. Options: ``bits`` 32 or 16 (the
multiplier width), ``convention`` ``tosa`` or ``tflite`` (qopt.qdialect.fixed_point),
``rounding`` (a rescale mode).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    TensorType,
    i8,
)
from xdsl.ir import Attribute
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from qopt.passes.lowering_ir import element_of, shape_of
from qopt.qdialect import fixed_point
from qopt.qdialect.attrs import GranularityAttr, PerAxisAttr, PerTensorAttr
from qopt.qdialect.ops import RequantizeOp
from qopt.qdialect.rescale import RESCALE_ROUNDING_MODES, RescaleOp


def _scales(const: Attribute | None) -> list[float] | None:
    if isinstance(const, FloatAttr):
        return [float(const.value.data)]
    if isinstance(const, DenseIntOrFPElementsAttr):
        return [float(v) for v in const.get_values()]
    return None


def _zero_point(const: Attribute | None) -> int | None:
    """One constant zero point (0 when absent); None for a tensor of them."""
    if const is None:
        return 0
    if isinstance(const, IntegerAttr):
        return int(const.value.data)
    if isinstance(const, DenseIntOrFPElementsAttr):
        values = {int(v) for v in const.get_values()}
        return values.pop() if len(values) == 1 else None
    return None


_OTHER = -1
"""``_axis`` of a granularity that is neither per-tensor nor per-axis."""


def _axis(granularity: GranularityAttr) -> int | None:
    """The axis of a per-axis granularity, None for per-tensor, ``_OTHER`` otherwise."""
    if isinstance(granularity, PerTensorAttr):
        return None
    if isinstance(granularity, PerAxisAttr):
        return granularity.axis
    return _OTHER


@dataclass
class _ToRescale(RewritePattern):
    bits: int
    convention: str
    rounding: str

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: RequantizeOp, rewriter: PatternRewriter) -> None:
        in_type, out_type = element_of(op.input), element_of(op.result)
        if not all(
            isinstance(t, IntegerType) and t.width.data in (8, 16) for t in (in_type, out_type)
        ):
            return
        if not op.saturate_flag or op.in_scale is not None or op.out_scale is not None:
            return
        if op.in_zero_point is not None or op.out_zero_point is not None:
            return
        if op.properties.get("in_storage_min") is not None:
            return  # a narrow input range only bounds the zero point; keep the op
        s_in = _scales(op.properties.get("in_scale_const"))
        s_out = _scales(op.properties.get("out_scale_const"))
        zp_in = _zero_point(op.properties.get("in_zero_point_const"))
        zp_out = _zero_point(op.properties.get("out_zero_point_const"))
        axes = {
            _axis(op.granularity_of("in_granularity")),
            _axis(op.granularity_of("out_granularity")),
        }
        axes.discard(None)
        if s_in is None or s_out is None or zp_in is None or zp_out is None or _OTHER in axes:
            return
        if len(axes) > 1:
            return  # per axis on two different axes: no one channel index
        channels = max(len(s_in), len(s_out))
        s_in = s_in * channels if len(s_in) == 1 else s_in
        s_out = s_out * channels if len(s_out) == 1 else s_out
        try:
            pairs = [
                fixed_point.quantize_multiplier(a / b, self.bits, self.convention)
                for a, b in zip(s_in, s_out)
            ]
        except ValueError:
            return  # a ratio the multiplier cannot hold (>= 2^31): keep the float op
        m_type = IntegerType(self.bits)
        if axes:
            (axis,) = axes
            granularity: GranularityAttr = PerAxisAttr(axis)
            multiplier: Attribute = DenseIntOrFPElementsAttr.from_list(
                TensorType(m_type, [channels]), [m for m, _ in pairs]
            )
            shift: Attribute = DenseIntOrFPElementsAttr.from_list(
                TensorType(i8, [channels]), [s for _, s in pairs]
            )
        else:
            granularity = PerTensorAttr()
            multiplier, shift = IntegerAttr(pairs[0][0], m_type), IntegerAttr(pairs[0][1], 32)
        lo, hi = op.properties.get("storage_min"), op.properties.get("storage_max")
        new = RescaleOp(
            op.input,
            op.result.type,
            multiplier=multiplier,
            shift=shift,
            granularity=granularity if axes else None,
            in_zero_point=zp_in or None,
            out_zero_point=zp_out or None,
            rounding=None if self.rounding == "single_round" else self.rounding,
            storage_range=(lo.value.data, hi.value.data)
            if isinstance(lo, IntegerAttr) and isinstance(hi, IntegerAttr)
            else None,
        )
        new.location = op.location
        assert shape_of(op.input) == shape_of(op.result)
        rewriter.replace(op, new)


@dataclass(frozen=True)
class RequantizeToRescalePass(ModulePass):
    """Float requantizes with constant parameters -> ``quant.rescale`` (changes results)."""

    name = "requantize-to-rescale"

    bits: int = 32
    convention: str = "tosa"
    rounding: str = "single_round"

    def __post_init__(self) -> None:
        if self.bits not in fixed_point.MULTIPLIER_BITS:
            raise ValueError(
                f"requantize-to-rescale: option 'bits' must be 32 or 16, got {self.bits}"
            )
        if self.convention not in fixed_point.CONVENTIONS:
            raise ValueError(
                "requantize-to-rescale: option 'convention' must be tosa or tflite, "
                f"got '{self.convention}'"
            )
        if self.convention == "tflite" and self.bits != 32:
            raise ValueError(
                "requantize-to-rescale: convention 'tflite' has 32-bit multipliers only"
            )
        if self.rounding not in RESCALE_ROUNDING_MODES:
            raise ValueError(
                "requantize-to-rescale: option 'rounding' must be one of "
                f"{', '.join(RESCALE_ROUNDING_MODES)}, got '{self.rounding}'"
            )
        if self.rounding == "double_round" and self.bits != 32:
            raise ValueError("requantize-to-rescale: 'double_round' needs bits=32")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(
            _ToRescale(self.bits, self.convention, self.rounding), apply_recursively=False
        ).rewrite_module(op)
