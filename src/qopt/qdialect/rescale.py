"""``quant.rescale``: fixed-point requantization (TOSA RESCALE, TFLite, TVM QNN), bit-exact.

An integer multiplier and a right shift replace the float scale ratio of
``quant.requantize`` (docs/semantics.md section 12 has the exact meaning):

    %r = quant.rescale %acc multiplier(1518500250) shift(38) out_zero_point(-3)
           : tensor<4x8xi32> -> tensor<4x8xi8>
    %r = quant.rescale %acc multiplier(%m : tensor<8xi32>) shift(%s : tensor<8xi8>) per_axis(1)
           rounding(double_round) : tensor<4x8xi32> -> tensor<4x8xi8>
    %r = quant.rescale %q multiplier(dense<[16384, 24576]> : tensor<2xi16>) shift(dense<14> :
           tensor<2xi8>) per_axis(0) in_zero_point(-128) input_unsigned(true)
           : tensor<2x8xi8> -> tensor<2x8xi16>

Per element: ``v = x - in_zp`` (x and in_zp read as unsigned when ``input_unsigned`` or the
type is ``uiN``), ``t = floor((v * m + r) / 2^s)`` with the rounding constant ``r`` of the
mode, ``o = t + out_zp``, then saturation to the output range (or its low bits with
``saturate(false)``). The multiplier's type is its width: ``i32`` is TOSA's
``apply_scale_32`` (``scale32 = true``), ``i16`` is ``apply_scale_16``; a bare constant is
``i32`` (``multiplier(16384 : i16)`` spells a 16-bit one). Rounding modes: TOSA's
``single_round`` (default; a half rounds toward +infinity), ``double_round`` (TFLite's
two-step rounding; differs only when the shift exceeds 31), ``inexact_round`` (computed as
``single_round``, which the spec's error band allows), and TVM QNN's ``upward`` (same as
``single_round``) and ``tonearest`` (a half rounds away from zero).

Zero points are constants or 0-d operands of the storage type; an unsigned zero point may
be written as its value (200) or, as TOSA carries it, as the signed bit pattern of the
storage type (-56): both mean 200.

A module of its own because ``ops.py`` is at the size limit; it shares the clause syntax.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    AnyTensorTypeConstr,
    BoolAttr,
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    IntegerType,
    Signedness,
    StringAttr,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from qopt.qdialect import formats
from qopt.qdialect import verifiers as v
from qopt.qdialect.attrs import GranularityAttr, PerAxisAttr, PerTensorAttr
from qopt.qdialect.ops import QuantOp
from qopt.qdialect.syntax import (
    BoolClause,
    Clause,
    ClauseFields,
    GranularityClause,
    ParamArg,
    ParamClause,
    RangeClause,
    StringClause,
)

RESCALE_ROUNDING_MODES = ("single_round", "double_round", "inexact_round", "upward", "tonearest")
"""The values of ``rounding(...)`` of ``quant.rescale``, the default first."""

RESCALE_WIDTHS = (8, 16, 32)
"""Bit widths of the input and output storage of ``quant.rescale``."""

MAX_SHIFT = 62
"""The largest right shift (TOSA: two shifts of 31); TOSA itself requires at least 2."""

MULTIPLIER_MAX = {32: (1 << 31) - 1, 16: (1 << 15) - 1}
"""The largest multiplier of each width (TOSA requires multipliers >= 0)."""


def _integer_values(const: Attribute) -> list[int]:
    """The integers of a constant parameter (a number or a dense tensor)."""
    if isinstance(const, IntegerAttr):
        return [int(const.value.data)]
    if isinstance(const, DenseIntOrFPElementsAttr) and isinstance(
        const.get_element_type(), IntegerType
    ):
        return [int(x) for x in const.get_values()]
    raise VerifyException(f"expected an integer or a dense integer tensor, got {const}")


def _const_type(const: Attribute) -> Attribute:
    if isinstance(const, DenseIntOrFPElementsAttr):
        return const.get_element_type()
    if isinstance(const, IntegerAttr):
        return const.type
    return const


def _check_rescale_storage(t: Attribute, role: str) -> None:
    if (
        not isinstance(t, IntegerType)
        or t.width.data not in RESCALE_WIDTHS
        or (t.signedness.data == Signedness.SIGNED)
    ):
        raise VerifyException(
            f"rescale {role} type must be an integer of 8, 16 or 32 bits (signless or "
            f"unsigned), got {t}"
        )


@irdl_op_definition
class RescaleOp(QuantOp):
    """Fixed-point requantize: ``sat(floor(((x - in_zp) * m + r) / 2^s) + out_zp)``."""

    name = "quant.rescale"
    input = operand_def(AnyTensorTypeConstr)
    multiplier = opt_operand_def(AnyTensorTypeConstr)
    shift = opt_operand_def(AnyTensorTypeConstr)
    in_zero_point = opt_operand_def(AnyTensorTypeConstr)
    out_zero_point = opt_operand_def(AnyTensorTypeConstr)
    result = result_def(AnyTensorTypeConstr)

    multiplier_const = opt_prop_def(Attribute)
    shift_const = opt_prop_def(Attribute)
    granularity = opt_prop_def(GranularityAttr)
    in_zero_point_const = opt_prop_def(Attribute)
    out_zero_point_const = opt_prop_def(Attribute)
    rounding = opt_prop_def(StringAttr)
    input_unsigned = opt_prop_def(BoolAttr)
    output_unsigned = opt_prop_def(BoolAttr)
    storage_min = opt_prop_def(IntegerAttr)
    storage_max = opt_prop_def(IntegerAttr)
    saturate = opt_prop_def(BoolAttr)

    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())

    CLAUSES: ClassVar[tuple[Clause, ...]] = (
        ParamClause("multiplier", "multiplier", integer=True),
        ParamClause("shift", "shift", integer=True),
        GranularityClause(),
        ParamClause("in_zero_point", "in_zero_point", integer=True),
        ParamClause("out_zero_point", "out_zero_point", integer=True),
        StringClause("rounding", "rounding", "single_round"),
        BoolClause("input_unsigned", "input_unsigned", False),
        BoolClause("output_unsigned", "output_unsigned", False),
        RangeClause(),
        BoolClause("saturate", "saturate", True),
    )
    OPERAND_ORDER: ClassVar[tuple[str, ...]] = (
        "multiplier",
        "shift",
        "in_zero_point",
        "out_zero_point",
    )

    def __init__(
        self,
        input: SSAValue | Operation,
        result_type: Attribute,
        *,
        multiplier: ParamArg,
        shift: ParamArg,
        granularity: GranularityAttr | None = None,
        in_zero_point: ParamArg = None,
        out_zero_point: ParamArg = None,
        rounding: str | None = None,
        input_unsigned: bool | None = None,
        output_unsigned: bool | None = None,
        storage_range: tuple[int, int] | None = None,
        saturate: bool | None = None,
        attributes: Mapping[str, Attribute] | None = None,
    ):
        """A Python int multiplier is an i32 constant; pass ``IntegerAttr(m, 16)`` (or a
        dense i16 tensor) for a 16-bit one."""
        fields = ClauseFields()
        fields.param("multiplier", multiplier, integer=True)
        fields.param("shift", shift, integer=True)
        fields.granularity("granularity", granularity)
        fields.param("in_zero_point", in_zero_point, integer=True)
        fields.param("out_zero_point", out_zero_point, integer=True)
        fields.string("rounding", rounding)
        fields.boolean("input_unsigned", input_unsigned)
        fields.boolean("output_unsigned", output_unsigned)
        fields.range(storage_range)
        fields.boolean("saturate", saturate)
        self.init_fields(input, [result_type], fields, attributes)

    # --- queries (the lowering and the API read the op through these) -----------------

    @property
    def rounding_mode(self) -> str:
        return self.prop_str("rounding", "single_round")

    @property
    def is_input_unsigned(self) -> bool:
        """The input is read as unsigned: a ``uiN`` type or ``input_unsigned(true)``."""
        return self.prop_bool("input_unsigned", False) or _is_unsigned_type(
            v.element_type(self.input.type)
        )

    @property
    def is_output_unsigned(self) -> bool:
        return self.prop_bool("output_unsigned", False) or _is_unsigned_type(
            v.element_type(self.result.type)
        )

    @property
    def multiplier_width(self) -> int:
        """16 (``apply_scale_16``) or 32 (``apply_scale_32``): the multiplier's type."""
        t = self._param_type("multiplier")
        assert isinstance(t, IntegerType)
        return t.width.data

    def _param_type(self, name: str) -> Attribute:
        operand = getattr(self, name)
        if operand is not None:
            return v.element_type(operand.type)
        const = self.properties.get(f"{name}_const")
        assert const is not None
        return _const_type(const)

    def output_bounds(self) -> tuple[int, int]:
        """``(lo, hi)`` of the saturation: the narrow range, else the output's range."""
        lo, hi = self.properties.get("storage_min"), self.properties.get("storage_max")
        if isinstance(lo, IntegerAttr) and isinstance(hi, IntegerAttr):
            return lo.value.data, hi.value.data
        t = v.element_type(self.result.type)
        assert isinstance(t, IntegerType)
        return value_range(t.width.data, self.is_output_unsigned)

    # --- verification -----------------------------------------------------------------

    def verify_(self) -> None:
        in_type = v.element_type(self.input.type)
        out_type = v.element_type(self.result.type)
        _check_rescale_storage(in_type, "input")
        _check_rescale_storage(out_type, "result")
        v.check_same_shape(self.input.type, self.result.type)
        shape = v.shape_of(self.input.type)
        granularity = self.granularity_of()
        if not isinstance(granularity, PerTensorAttr | PerAxisAttr):
            raise VerifyException(
                f"rescale parameters are per_tensor or per_axis, got {granularity.KEYWORD}"
            )
        v.check_granularity(granularity, shape)
        mode = self.rounding_mode
        if mode not in RESCALE_ROUNDING_MODES:
            raise VerifyException(
                f"rescale rounding mode must be one of {', '.join(RESCALE_ROUNDING_MODES)}, "
                f"got '{mode}'"
            )
        self._verify_multiplier(granularity, shape)
        self._verify_shift(granularity, shape)
        if mode == "double_round" and self.multiplier_width != 32:
            raise VerifyException("rounding mode 'double_round' needs a 32-bit (i32) multiplier")
        assert isinstance(in_type, IntegerType) and isinstance(out_type, IntegerType)
        _verify_zero_point(self, "in_zero_point", in_type, self.is_input_unsigned)
        _verify_zero_point(self, "out_zero_point", out_type, self.is_output_unsigned)
        lo, hi = self.properties.get("storage_min"), self.properties.get("storage_max")
        if lo is not None or hi is not None:
            assert isinstance(lo, IntegerAttr) and isinstance(hi, IntegerAttr)
            tmin, tmax = value_range(out_type.width.data, self.is_output_unsigned)
            if not tmin <= lo.value.data <= hi.value.data <= tmax:
                raise VerifyException(
                    f"storage range [{lo.value.data}, {hi.value.data}] must be a non-empty "
                    f"part of the output range [{tmin}, {tmax}]"
                )
            if not self.saturate_flag:
                raise VerifyException("a narrow output range needs saturate(true)")

    def _verify_multiplier(self, granularity: GranularityAttr, shape: Sequence[int]) -> None:
        operand, const = self.multiplier, self.properties.get("multiplier_const")
        if operand is None and const is None:
            raise VerifyException("multiplier is required")
        v.check_param_shape("multiplier", operand, const, granularity, shape)
        t = self._param_type("multiplier")
        if not (isinstance(t, IntegerType) and t.width.data in MULTIPLIER_MAX) or (
            t.signedness.data != Signedness.SIGNLESS
        ):
            raise VerifyException(
                f"multiplier must be i32 (apply_scale_32) or i16 (apply_scale_16), got {t}"
            )
        if const is None:
            return
        top = MULTIPLIER_MAX[t.width.data]
        for m in _integer_values(const):
            if not 0 <= m <= top:
                raise VerifyException(f"{t.width.data}-bit multiplier {m} is outside [0, {top}]")

    def _verify_shift(self, granularity: GranularityAttr, shape: Sequence[int]) -> None:
        operand, const = self.shift, self.properties.get("shift_const")
        if operand is None and const is None:
            raise VerifyException("shift is required")
        v.check_param_shape("shift", operand, const, granularity, shape)
        t = self._param_type("shift")
        if not (
            isinstance(t, IntegerType)
            and t.width.data in RESCALE_WIDTHS
            and t.signedness.data == Signedness.SIGNLESS
        ):
            raise VerifyException(f"shift must be a signless i8, i16 or i32, got {t}")
        if const is None:
            return
        for s in _integer_values(const):
            if not 0 <= s <= MAX_SHIFT:
                raise VerifyException(f"shift {s} is outside [0, {MAX_SHIFT}]")


def _is_unsigned_type(t: Attribute) -> bool:
    return isinstance(t, IntegerType) and t.signedness.data == Signedness.UNSIGNED


def value_range(width: int, unsigned: bool) -> tuple[int, int]:
    """The values of a ``width``-bit integer read as unsigned or signed."""
    if unsigned:
        return 0, (1 << width) - 1
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def zero_point_value(zp: int, width: int, unsigned: bool) -> int:
    """The value a written zero point means: an unsigned one given as its signed bit
    pattern (TOSA's carrying, ``-56`` for u8 200) is zero-extended."""
    return zp % (1 << width) if unsigned else zp


def _verify_zero_point(op: RescaleOp, name: str, storage: IntegerType, unsigned: bool) -> None:
    operand, const = getattr(op, name), op.properties.get(f"{name}_const")
    label = name.replace("_", " ")
    if operand is not None and const is not None:
        raise VerifyException(f"{label} is given both as an operand and as a constant")
    if operand is not None:
        zp_type = v.element_type(operand.type)
        if v.shape_of(operand.type) != () or zp_type != storage:
            raise VerifyException(
                f"{label} operand must be a 0-d tensor of the storage type, "
                f"tensor<{formats.type_name(storage)}>, got {operand.type}"
            )
        return
    if const is None:
        return
    if not isinstance(const, IntegerAttr):
        raise VerifyException(f"{label} must be one integer, got {const}")
    width = storage.width.data
    zp = int(const.value.data)
    lo, hi = value_range(width, False)
    if unsigned:
        hi = (1 << width) - 1  # the value, or (from lo) the signed bit pattern
    if not lo <= zp <= hi:
        kind = "unsigned" if unsigned else "signed"
        raise VerifyException(
            f"{label} {zp} is outside [{lo}, {hi}] for {kind} {width}-bit storage"
        )
