"""The quant dialect's operations (docs/semantics.md sections 3-5).

Every op works on ranked tensors. Parameters (scale, zero point, minval, double-quant
scale) are either operands or constant properties named ``<param>_const``; the
granularity is a property (attrs.py). The custom form is described in syntax.py:

    %q = quant.quantize %x scale(1.250000e-01) zero_point(3) : tensor<4x8xf32> -> tensor<4x8xi8>
    %x = quant.dequantize %q scale(%s : tensor<8xf32>) per_axis(1) : tensor<4x8xi8> -> tensor<4x8xf32>
    %r = quant.requantize %q in(scale(%a : tensor<8xf32>) per_axis(1)) out(scale(0.5))
           : tensor<4x8xi8> -> tensor<4x8xi8>
    %d, %s = quant.dynamic_quantize %x per_block(1, 16) double_quant(%dq : tensor<f32>)
           : tensor<4x64xf32> -> tensor<4x64xf4E2M1FN>, tensor<4x4xf8E4M3FN>
    %y = quant.fake_quantize %x storage(i8) per_token : tensor<4x8xf32> -> tensor<4x8xf32>
    %p = quant.pack %q : tensor<7xi4> -> tensor<4xui8>
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from xdsl.dialects.builtin import (
    AnyTensorTypeConstr,
    BoolAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TypeAttribute,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    opt_result_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from qopt.qdialect import formats
from qopt.qdialect import verifiers as v
from qopt.qdialect.attrs import GranularityAttr, PerTensorAttr
from qopt.qdialect.syntax import (
    BoolClause,
    Clause,
    ClauseFields,
    ClauseOp,
    FloatClause,
    GranularityClause,
    GroupClause,
    ParamArg,
    ParamClause,
    RangeClause,
    StringClause,
    TypeClause,
    prefixed,
)

_SCALE = ParamClause("scale", "scale")
_ZERO_POINT = ParamClause("zero_point", "zero_point", integer=True)
_MINVAL = ParamClause("minval", "minval")
_DOUBLE_QUANT = ParamClause("double_quant", "double_quant")
_ROUNDING = StringClause("rounding", "rounding", "nearest_even")
ROUNDING_MODES = v.ROUNDING_MODES
"""The values of ``rounding(...)``, the default first (one table: verifiers.py)."""
_SATURATE = BoolClause("saturate", "saturate", True)
_ZP_ORDER = StringClause("zero_point_order", "zero_point_order", v.ZERO_POINT_ORDERS[0])
_REQUANT_PARAMS = (_SCALE, _ZERO_POINT, GranularityClause())


class QuantOp(ClauseOp):
    """Shared accessors of the quant ops."""

    def prop_str(self, name: str, default: str) -> str:
        attr = self.properties.get(name)
        return attr.data if isinstance(attr, StringAttr) else default

    def prop_bool(self, name: str, default: bool) -> bool:
        attr = self.properties.get(name)
        return bool(attr.value.data) if isinstance(attr, IntegerAttr) else default

    def prop_float(self, name: str) -> float | None:
        attr = self.properties.get(name)
        return attr.value.data if isinstance(attr, FloatAttr) else None

    def granularity_of(self, name: str = "granularity") -> GranularityAttr:
        attr = self.properties.get(name)
        return attr if isinstance(attr, GranularityAttr) else PerTensorAttr()

    def param(self, name: str) -> SSAValue | Attribute | None:
        """The parameter ``name``: its operand, its constant, or None."""
        operand = getattr(self, name, None)
        if operand is not None:
            return operand
        return self.properties.get(f"{name}_const")

    @property
    def rounding_mode(self) -> str:
        return self.prop_str("rounding", "nearest_even")

    @property
    def zp_order(self) -> str:
        return self.prop_str("zero_point_order", v.ZERO_POINT_ORDERS[0])

    @property
    def saturate_flag(self) -> bool:
        return self.prop_bool("saturate", True)

    def storage_bounds(self, storage: Attribute) -> tuple[int, int] | None:
        if not isinstance(storage, IntegerType):
            return None
        return v.storage_bounds(
            storage, self.properties.get("storage_min"), self.properties.get("storage_max")
        )

    def param_bounds(self, prefix: str, storage: Attribute) -> tuple[int, int] | None:
        """``(qmin, qmax)`` that bounds the zero point of the parameters named ``prefix``."""
        return v.zero_point_bounds(self, storage)

    def _verify_params(
        self,
        prefix: str,
        data_shape: tuple[int, ...],
        storage: Attribute,
        *,
        scale_required: bool = True,
    ) -> None:
        """Scale / zero point / minval checks for the parameters named ``prefix``+name."""
        granularity = self.granularity_of(f"{prefix}granularity")
        v.check_granularity(granularity, data_shape)
        bounds = self.param_bounds(prefix, storage)
        scale_name = f"{prefix}scale"
        scale, scale_const = getattr(self, scale_name), self.properties.get(f"{scale_name}_const")
        if scale_required or scale is not None or scale_const is not None:
            v.check_scale(scale_name.replace("_", " "), scale, scale_const)
        v.check_param_shape(
            scale_name.replace("_", " "), scale, scale_const, granularity, data_shape
        )
        zp_name = f"{prefix}zero_point"
        if hasattr(self, zp_name):
            zp, zp_const = getattr(self, zp_name), self.properties.get(f"{zp_name}_const")
            label = zp_name.replace("_", " ")
            v.check_zero_point(label, zp, zp_const, storage, bounds)
            v.check_param_shape(label, zp, zp_const, granularity, data_shape)
        minval_name = f"{prefix}minval"
        if hasattr(self, minval_name):
            minval = getattr(self, minval_name)
            minval_const = self.properties.get(f"{minval_name}_const")
            if minval is not None or minval_const is not None:
                if self.param(zp_name) is not None:
                    raise VerifyException("the minval form takes no zero point")
                if not isinstance(storage, IntegerType):
                    raise VerifyException("the minval form needs integer storage")
                v.check_param_shape("minval", minval, minval_const, granularity, data_shape)


_COMMON_PROPS = {
    "granularity": opt_prop_def(GranularityAttr),
    "scale_const": opt_prop_def(Attribute),
    "zero_point_const": opt_prop_def(Attribute),
    "minval_const": opt_prop_def(Attribute),
    "storage_min": opt_prop_def(IntegerAttr),
    "storage_max": opt_prop_def(IntegerAttr),
}


@irdl_op_definition
class QuantizeOp(QuantOp):
    """``q = clamp(round(x / s) + zp, qmin, qmax)``; float storage ``cast_rne(x / s)``."""

    name = "quant.quantize"
    input = operand_def(AnyTensorTypeConstr)
    scale = opt_operand_def(AnyTensorTypeConstr)
    zero_point = opt_operand_def(AnyTensorTypeConstr)
    minval = opt_operand_def(AnyTensorTypeConstr)
    result = result_def(AnyTensorTypeConstr)

    granularity = _COMMON_PROPS["granularity"]
    scale_const = _COMMON_PROPS["scale_const"]
    zero_point_const = _COMMON_PROPS["zero_point_const"]
    minval_const = _COMMON_PROPS["minval_const"]
    storage_min = _COMMON_PROPS["storage_min"]
    storage_max = _COMMON_PROPS["storage_max"]
    rounding = opt_prop_def(StringAttr)
    saturate = opt_prop_def(BoolAttr)
    zero_point_order = opt_prop_def(StringAttr)

    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())

    CLAUSES: ClassVar[tuple[Clause, ...]] = (
        _SCALE,
        _ZERO_POINT,
        _MINVAL,
        GranularityClause(),
        _ROUNDING,
        _ZP_ORDER,
        RangeClause(),
        _SATURATE,
    )
    OPERAND_ORDER: ClassVar[tuple[str, ...]] = ("scale", "zero_point", "minval")

    def __init__(
        self,
        input: SSAValue | Operation,
        result_type: Attribute,
        *,
        scale: ParamArg,
        zero_point: ParamArg = None,
        minval: ParamArg = None,
        granularity: GranularityAttr | None = None,
        rounding: str | None = None,
        storage_range: tuple[int, int] | None = None,
        saturate: bool | None = None,
        zero_point_order: str | None = None,
        attributes: Mapping[str, Attribute] | None = None,
    ):
        fields = ClauseFields()
        fields.param("scale", scale)
        fields.param("zero_point", zero_point, integer=True)
        fields.param("minval", minval)
        fields.granularity("granularity", granularity)
        fields.string("rounding", rounding)
        fields.string("zero_point_order", zero_point_order)
        fields.range(storage_range)
        fields.boolean("saturate", saturate)
        self.init_fields(input, [result_type], fields, attributes)

    def verify_(self) -> None:
        expressed = v.element_type(self.input.type)
        storage = v.element_type(self.result.type)
        v.check_expressed(expressed, "input")
        v.check_storage(storage, "result")
        v.check_same_shape(self.input.type, self.result.type)
        v.check_storage_range(storage, self.storage_min, self.storage_max)
        v.check_rounding(self.rounding_mode, storage)
        v.check_zero_point_order(self.zp_order, storage, self.param("minval"))
        self._verify_params("", v.shape_of(self.input.type), storage)


@irdl_op_definition
class DequantizeOp(QuantOp):
    """``x = (f32(q) - f32(zp)) * s`` (times the double-quant scale when given)."""

    name = "quant.dequantize"
    input = operand_def(AnyTensorTypeConstr)
    scale = opt_operand_def(AnyTensorTypeConstr)
    zero_point = opt_operand_def(AnyTensorTypeConstr)
    minval = opt_operand_def(AnyTensorTypeConstr)
    double_quant = opt_operand_def(AnyTensorTypeConstr)
    result = result_def(AnyTensorTypeConstr)

    granularity = _COMMON_PROPS["granularity"]
    scale_const = _COMMON_PROPS["scale_const"]
    zero_point_const = _COMMON_PROPS["zero_point_const"]
    minval_const = _COMMON_PROPS["minval_const"]
    double_quant_const = opt_prop_def(FloatAttr)
    storage_min = _COMMON_PROPS["storage_min"]
    storage_max = _COMMON_PROPS["storage_max"]

    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())

    CLAUSES: ClassVar[tuple[Clause, ...]] = (
        _SCALE,
        _ZERO_POINT,
        _MINVAL,
        _DOUBLE_QUANT,
        GranularityClause(),
        RangeClause(),
    )
    OPERAND_ORDER: ClassVar[tuple[str, ...]] = ("scale", "zero_point", "minval", "double_quant")

    def __init__(
        self,
        input: SSAValue | Operation,
        result_type: Attribute,
        *,
        scale: ParamArg,
        zero_point: ParamArg = None,
        minval: ParamArg = None,
        double_quant: ParamArg = None,
        granularity: GranularityAttr | None = None,
        storage_range: tuple[int, int] | None = None,
        attributes: Mapping[str, Attribute] | None = None,
    ):
        fields = ClauseFields()
        fields.param("scale", scale)
        fields.param("zero_point", zero_point, integer=True)
        fields.param("minval", minval)
        fields.param("double_quant", double_quant)
        fields.granularity("granularity", granularity)
        fields.range(storage_range)
        self.init_fields(input, [result_type], fields, attributes)

    def verify_(self) -> None:
        storage = v.element_type(self.input.type)
        v.check_storage(storage, "input")
        v.check_expressed(v.element_type(self.result.type), "result")
        v.check_same_shape(self.input.type, self.result.type)
        v.check_storage_range(storage, self.storage_min, self.storage_max)
        self._verify_params("", v.shape_of(self.input.type), storage)
        _verify_double_quant(self)


def _verify_double_quant(op: QuantOp) -> None:
    """The double-quant scale is one f32 number (a 0-d tensor operand or a constant)."""
    operand = getattr(op, "double_quant", None)
    const = op.properties.get("double_quant_const")
    if operand is not None and (
        v.shape_of(operand.type) != () or formats.type_name(v.element_type(operand.type)) != "f32"
    ):
        raise VerifyException(f"double quant scale must be a tensor<f32>, got {operand.type}")
    if const is not None:
        v.check_scale("double quant scale", None, const)


@irdl_op_definition
class RequantizeOp(QuantOp):
    """``quantize(dequantize(q, in_params) as f32, out_params)``, bit for bit."""

    name = "quant.requantize"
    input = operand_def(AnyTensorTypeConstr)
    in_scale = opt_operand_def(AnyTensorTypeConstr)
    in_zero_point = opt_operand_def(AnyTensorTypeConstr)
    out_scale = opt_operand_def(AnyTensorTypeConstr)
    out_zero_point = opt_operand_def(AnyTensorTypeConstr)
    result = result_def(AnyTensorTypeConstr)

    in_granularity = opt_prop_def(GranularityAttr)
    out_granularity = opt_prop_def(GranularityAttr)
    in_scale_const = opt_prop_def(Attribute)
    in_zero_point_const = opt_prop_def(Attribute)
    out_scale_const = opt_prop_def(Attribute)
    out_zero_point_const = opt_prop_def(Attribute)
    in_storage_min = opt_prop_def(IntegerAttr)
    in_storage_max = opt_prop_def(IntegerAttr)
    storage_min = opt_prop_def(IntegerAttr)
    storage_max = opt_prop_def(IntegerAttr)
    rounding = opt_prop_def(StringAttr)
    saturate = opt_prop_def(BoolAttr)
    zero_point_order = opt_prop_def(StringAttr)

    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())

    CLAUSES: ClassVar[tuple[Clause, ...]] = (
        GroupClause("in", "in_", prefixed("in_", _REQUANT_PARAMS)),
        GroupClause("out", "out_", prefixed("out_", _REQUANT_PARAMS)),
        _ROUNDING,
        _ZP_ORDER,
        RangeClause(),
        _SATURATE,
    )
    OPERAND_ORDER: ClassVar[tuple[str, ...]] = (
        "in_scale",
        "in_zero_point",
        "out_scale",
        "out_zero_point",
    )

    def __init__(
        self,
        input: SSAValue | Operation,
        result_type: Attribute,
        *,
        in_scale: ParamArg,
        out_scale: ParamArg,
        in_zero_point: ParamArg = None,
        out_zero_point: ParamArg = None,
        in_granularity: GranularityAttr | None = None,
        out_granularity: GranularityAttr | None = None,
        rounding: str | None = None,
        storage_range: tuple[int, int] | None = None,
        in_storage_range: tuple[int, int] | None = None,
        saturate: bool | None = None,
        zero_point_order: str | None = None,
        attributes: Mapping[str, Attribute] | None = None,
    ):
        """``storage_range`` narrows the result; ``in_storage_range`` (no custom syntax,
        generic form only) the input."""
        fields = ClauseFields()
        fields.param("in_scale", in_scale)
        fields.param("in_zero_point", in_zero_point, integer=True)
        fields.granularity("in_granularity", in_granularity)
        fields.param("out_scale", out_scale)
        fields.param("out_zero_point", out_zero_point, integer=True)
        fields.granularity("out_granularity", out_granularity)
        fields.string("rounding", rounding)
        fields.range(storage_range)
        fields.range(in_storage_range, "in_")
        fields.boolean("saturate", saturate)
        fields.string("zero_point_order", zero_point_order)
        self.init_fields(input, [result_type], fields, attributes)

    def param_bounds(self, prefix: str, storage: Attribute) -> tuple[int, int] | None:
        if prefix == "in_":
            return self.storage_bounds_in(storage)
        return v.zero_point_bounds(self, storage)

    def storage_bounds_in(self, storage: Attribute) -> tuple[int, int] | None:
        if not isinstance(storage, IntegerType):
            return None
        return v.storage_bounds(
            storage, self.properties.get("in_storage_min"), self.properties.get("in_storage_max")
        )

    def verify_(self) -> None:
        in_storage = v.element_type(self.input.type)
        out_storage = v.element_type(self.result.type)
        v.check_storage(in_storage, "input")
        v.check_storage(out_storage, "result")
        v.check_same_shape(self.input.type, self.result.type)
        v.check_storage_range(out_storage, self.storage_min, self.storage_max)
        v.check_storage_range(in_storage, self.in_storage_min, self.in_storage_max)
        v.check_rounding(self.rounding_mode, out_storage)
        v.check_zero_point_order(self.zp_order, out_storage)
        shape = v.shape_of(self.input.type)
        self._verify_params("in_", shape, in_storage)
        self._verify_params("out_", shape, out_storage)


SCALE_ROUNDING_MODES = v.SCALE_ROUNDING_MODES
ZERO_POINT_DOMAINS = ("int", "float", "none")


@irdl_op_definition
class DynamicQuantizeOp(QuantOp):
    """Per-block statistics, then quantize with the computed scale (docs/semantics.md sections 3-5).

    Results: the data, the scale (element type = the scale format) and, when asymmetric,
    the zero point. The NVFP4 double-quant scale is an optional operand or constant.
    """

    name = "quant.dynamic_quantize"
    input = operand_def(AnyTensorTypeConstr)
    double_quant = opt_operand_def(AnyTensorTypeConstr)
    data = result_def(AnyTensorTypeConstr)
    scale = result_def(AnyTensorTypeConstr)
    zero_point = opt_result_def(AnyTensorTypeConstr)

    granularity = opt_prop_def(GranularityAttr)
    double_quant_const = opt_prop_def(FloatAttr)
    scale_rounding = opt_prop_def(StringAttr)
    symmetric = opt_prop_def(BoolAttr)
    eps = opt_prop_def(FloatAttr)
    storage_min = opt_prop_def(IntegerAttr)
    storage_max = opt_prop_def(IntegerAttr)

    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())

    CLAUSES: ClassVar[tuple[Clause, ...]] = (
        GranularityClause(),
        _DOUBLE_QUANT,
        StringClause("scale_rounding", "scale_rounding", "floor"),
        BoolClause("symmetric", "symmetric", True),
        FloatClause("eps", "eps"),
        RangeClause(),
    )
    OPERAND_ORDER: ClassVar[tuple[str, ...]] = ("double_quant",)
    RESULT_COUNTS: ClassVar[tuple[int, ...]] = (2, 3)

    def __init__(
        self,
        input: SSAValue | Operation,
        data_type: Attribute,
        scale_type: Attribute,
        zero_point_type: Attribute | None = None,
        *,
        granularity: GranularityAttr | None = None,
        double_quant: ParamArg = None,
        scale_rounding: str | None = None,
        symmetric: bool | None = None,
        eps: float | None = None,
        storage_range: tuple[int, int] | None = None,
        attributes: Mapping[str, Attribute] | None = None,
    ):
        """Results: data, scale and, when ``zero_point_type`` is given, the zero point;
        ``symmetric`` defaults to whether there is no zero point result."""
        if symmetric is None and zero_point_type is not None:
            symmetric = False
        fields = ClauseFields()
        fields.granularity("granularity", granularity)
        fields.param("double_quant", double_quant)
        fields.string("scale_rounding", scale_rounding)
        fields.boolean("symmetric", symmetric)
        fields.f32("eps", eps)
        fields.range(storage_range)
        zero_point = [] if zero_point_type is None else [zero_point_type]
        self.init_fields(input, [data_type, scale_type, zero_point], fields, attributes)

    @classmethod
    def shape_result_types(cls, types: list[Attribute]) -> list[Attribute | list[Attribute]]:
        return [types[0], types[1], types[2:]]

    @property
    def is_symmetric(self) -> bool:
        return self.prop_bool("symmetric", True)

    def verify_(self) -> None:
        v.check_expressed(v.element_type(self.input.type), "input")
        storage = v.element_type(self.data.type)
        v.check_storage(storage, "data")
        v.check_same_shape(self.input.type, self.data.type)
        v.check_storage_range(storage, self.storage_min, self.storage_max)
        shape = v.shape_of(self.input.type)
        granularity = self.granularity_of()
        v.check_granularity(granularity, shape)
        v.check_dynamic_scale(
            v.element_type(self.scale.type),
            storage,
            self.scale_rounding,
            self.param("double_quant") is not None,
        )
        v.check_param_shape("scale", self.scale, None, granularity, shape)
        _verify_double_quant(self)
        v.check_eps(self.prop_float("eps"))
        if not self.is_symmetric and not isinstance(storage, IntegerType):
            raise VerifyException(
                f"asymmetric dynamic quantization needs integer storage, got {storage}"
            )
        if self.is_symmetric != (self.zero_point is None):
            raise VerifyException(
                "asymmetric dynamic quantization has a zero point result and symmetric has "
                f"none; symmetric={self.is_symmetric} with {len(self.results)} results"
            )
        if self.zero_point is not None:
            v.check_param_shape("zero point", self.zero_point, None, granularity, shape)
            if v.element_type(self.zero_point.type) != storage:
                raise VerifyException(
                    f"zero point element type {v.element_type(self.zero_point.type)} does not "
                    f"match the storage type {storage}"
                )


@irdl_op_definition
class FakeQuantizeOp(QuantOp):
    """``dequantize(quantize(x))`` in one pass, static or dynamic (torchao semantics).

    Static when a scale is given; otherwise the parameters are computed per block the way
    ``dynamic_quantize`` does for integer storage (``symmetric``, ``eps``), rounded to
    ``scale_type``; ``zero_point_domain`` is ``int`` (zp rounded to an integer), ``float``
    (torchao's float zero point: ``q = clamp(rne(x / s + mid), ...)``) or ``none``.
    """

    name = "quant.fake_quantize"
    input = operand_def(AnyTensorTypeConstr)
    scale = opt_operand_def(AnyTensorTypeConstr)
    zero_point = opt_operand_def(AnyTensorTypeConstr)
    result = result_def(AnyTensorTypeConstr)

    storage_type = prop_def(TypeAttribute)
    granularity = _COMMON_PROPS["granularity"]
    scale_const = _COMMON_PROPS["scale_const"]
    zero_point_const = _COMMON_PROPS["zero_point_const"]
    storage_min = _COMMON_PROPS["storage_min"]
    storage_max = _COMMON_PROPS["storage_max"]
    rounding = opt_prop_def(StringAttr)
    symmetric = opt_prop_def(BoolAttr)
    eps = opt_prop_def(FloatAttr)
    scale_type = opt_prop_def(TypeAttribute)
    zero_point_domain = opt_prop_def(StringAttr)

    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())

    CLAUSES: ClassVar[tuple[Clause, ...]] = (
        TypeClause("storage", "storage_type"),
        _SCALE,
        _ZERO_POINT,
        GranularityClause(),
        _ROUNDING,
        BoolClause("symmetric", "symmetric", True),
        FloatClause("eps", "eps"),
        TypeClause("scale_type", "scale_type"),
        StringClause("zero_point_domain", "zero_point_domain", "int"),
        RangeClause(),
    )
    OPERAND_ORDER: ClassVar[tuple[str, ...]] = ("scale", "zero_point")

    def __init__(
        self,
        input: SSAValue | Operation,
        storage_type: Attribute,
        *,
        scale: ParamArg = None,
        zero_point: ParamArg = None,
        granularity: GranularityAttr | None = None,
        rounding: str | None = None,
        symmetric: bool | None = None,
        eps: float | None = None,
        scale_type: Attribute | None = None,
        zero_point_domain: str | None = None,
        storage_range: tuple[int, int] | None = None,
        attributes: Mapping[str, Attribute] | None = None,
    ):
        """The result has the input's type; no ``scale``: dynamic."""
        fields = ClauseFields()
        fields.type("storage_type", storage_type)
        fields.param("scale", scale)
        fields.param("zero_point", zero_point, integer=True)
        fields.granularity("granularity", granularity)
        fields.string("rounding", rounding)
        fields.boolean("symmetric", symmetric)
        fields.f32("eps", eps)
        fields.type("scale_type", scale_type)
        fields.string("zero_point_domain", zero_point_domain)
        fields.range(storage_range)
        self.init_fields(input, [SSAValue.get(input).type], fields, attributes)

    @property
    def is_dynamic(self) -> bool:
        return self.param("scale") is None

    def verify_(self) -> None:
        expressed = v.element_type(self.input.type)
        v.check_expressed(expressed, "input")
        if self.result.type != self.input.type:
            raise VerifyException(
                f"result type {self.result.type} must equal the input type {self.input.type}"
            )
        storage = self.storage_type
        v.check_storage(storage, "storage")
        v.check_storage_range(storage, self.storage_min, self.storage_max)
        v.check_rounding(self.rounding_mode, storage)
        v.check_eps(self.prop_float("eps"))
        domain = self.prop_str("zero_point_domain", "int")
        if domain not in ZERO_POINT_DOMAINS:
            raise VerifyException(f"zero_point_domain must be int, float or none, got '{domain}'")
        if self.scale_type is not None and formats.type_name(self.scale_type) not in (
            "f32",
            "f16",
            "bf16",
        ):
            raise VerifyException(f"scale_type must be f32, f16 or bf16, got {self.scale_type}")
        if not self.prop_bool("symmetric", True) and not isinstance(storage, IntegerType):
            raise VerifyException(
                f"asymmetric fake quantization needs integer storage, got {storage}"
            )
        self._verify_params("", v.shape_of(self.input.type), storage, scale_required=False)


class PackingOp(IRDLOperation):
    """Shared checks of pack / unpack: 4-bit or 2-bit codes <-> bytes (docs/semantics.md section 1)."""

    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(
        self,
        input: SSAValue | Operation,
        result_type: Attribute,
        attributes: Mapping[str, Attribute] | None = None,
    ):
        super().__init__(operands=[input], result_types=[result_type], attributes=attributes)


@irdl_op_definition
class PackOp(PackingOp):
    """Sub-byte codes (one per element) -> bytes, C order, first element in the low bits."""

    name = "quant.pack"
    input = operand_def(AnyTensorTypeConstr)
    result = result_def(AnyTensorTypeConstr)
    traits = traits_def(Pure())

    def verify_(self) -> None:
        v.check_packed_pair(self.input.type, self.result.type)


@irdl_op_definition
class UnpackOp(PackingOp):
    """Bytes -> sub-byte codes; the result type gives the shape and the format."""

    name = "quant.unpack"
    input = operand_def(AnyTensorTypeConstr)
    result = result_def(AnyTensorTypeConstr)
    traits = traits_def(Pure())

    def verify_(self) -> None:
        v.check_packed_pair(self.result.type, self.input.type)


QUANT_OPS: tuple[type[IRDLOperation], ...] = (
    QuantizeOp,
    DequantizeOp,
    RequantizeOp,
    DynamicQuantizeOp,
    FakeQuantizeOp,
    PackOp,
    UnpackOp,
)
"""Every op of the quant dialect, once: the Dialect object and the passes use this."""
