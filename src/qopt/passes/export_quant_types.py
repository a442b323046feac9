"""export-quant-types: qopt's quantize / dequantize / requantize -> upstream MLIR's
``quant.qcast`` / ``quant.dcast`` / ``quant.scast`` on ``!quant.uniform`` types, so that
upstream MLIR tools (``mlir-opt``, ``torch-mlir-opt``) read the result.

    %q = quant.quantize %x scale(5.000000e-01) zero_point(3) zero_point_order(before_rounding)
           : tensor<4xf32> -> tensor<4xi8>
  becomes
    %0 = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 5.000000e-01:3>>
    %q = quant.scast %0 : tensor<4x!quant.uniform<i8:f32, 5.000000e-01:3>> to tensor<4xi8>

A dequantize whose input comes from an exported quantize of the same type reads the
``qcast`` directly; other inputs go through ``quant.scast`` (signless storage), or, for an
unsigned function argument used only by such dequantizes, the argument takes the
quantized type (and an unsigned result returned by a function, the result). A
requantize becomes ``dcast`` then ``qcast`` (its definition, f32 in between).

Expressible is what upstream's types and ops mean exactly: constant parameters;
``zero_point_order(before_rounding)`` or no zero point (qcast adds the zero point before
rounding: an ONNX-order quantize with a zero point means something else);
``nearest_even`` rounding; f32 expressed values (f16 / bf16 only with scales exact in that
type); per-tensor, per-axis and block parameters whose blocks divide the dimensions.
Everything else is an error at the op saying why, never a silent change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FunctionType,
    IntegerType,
    ModuleOp,
    Signedness,
    TensorType,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from qopt.ir.diagnostics import Diagnostic, describe_location
from qopt.qdialect import formats
from qopt.qdialect.attrs import PerAxisAttr, PerTensorAttr
from qopt.qdialect.ops import DequantizeOp, QuantizeOp, QuantOp, RequantizeOp
from qopt.qdialect.upstream_ops import DequantizeCastOp, QuantizeCastOp, StorageCastOp
from qopt.qdialect.upstream_types import (
    FLOAT_STORAGE_MAX,
    QuantSpec,
    Storage,
    UniformQuantType,
    wrap_zero_point,
)
from qopt.qdialect.verifiers import ZERO_POINT_ORDERS

_QOPT_OPS = (
    "quant.dynamic_quantize",
    "quant.fake_quantize",
    "quant.pack",
    "quant.unpack",
    "quant.rescale",
)


def _fail(op: Operation, message: str) -> Diagnostic:
    return Diagnostic(
        describe_location(op.location), f"not expressible in upstream MLIR: {message}"
    )


def _values(const: Attribute | None, shape: tuple[int, ...]) -> np.ndarray:
    if const is None:
        return np.zeros(shape, np.float64)
    if isinstance(const, DenseIntOrFPElementsAttr):
        return np.asarray([float(v) for v in const.get_values()], np.float64).reshape(shape)
    return np.full(shape, float(const.value.data))


def _storage(t: Attribute, op: Operation) -> Storage:
    name = formats.type_name(t)
    if name in FLOAT_STORAGE_MAX:
        return Storage(name, True, 4 if name == "f4E2M1FN" else 8, True)
    assert isinstance(t, IntegerType)
    width = t.width.data
    if t.signedness.data == Signedness.UNSIGNED:
        return Storage(f"u{width}", False, width)
    return Storage(f"i{width}", True, width)


def spec_of(
    op: QuantOp, prefix: str, storage_type: Attribute, expressed: Attribute, shape: tuple[int, ...]
) -> QuantSpec:
    """The ``!quant.uniform`` type of one side of a qopt op, or a Diagnostic saying why
    there is none."""
    for name in ("scale", "zero_point", "minval", "double_quant"):
        if getattr(op, f"{prefix}{name}", None) is not None:
            raise _fail(op, f"{prefix}{name} is a runtime value; upstream types hold constants")
    for name in ("minval", "double_quant"):
        if op.properties.get(f"{name}_const") is not None and not prefix:
            raise _fail(op, f"the {name} form has no upstream type")
    storage = _storage(storage_type, op)
    exp_name = formats.type_name(expressed)
    if exp_name not in ("f32", "f16", "bf16"):
        raise _fail(op, f"expressed type {exp_name}")
    granularity = op.granularity_of(f"{prefix}granularity")
    block = granularity.raw_block_shape(len(shape))
    block = tuple(n if b < 0 else b for b, n in zip(block, shape, strict=True))
    if any(n % b for b, n in zip(block, shape, strict=True)):
        raise _fail(op, f"blocks {list(block)} must divide the shape {list(shape)} upstream")
    param_shape = granularity.param_shape(shape)
    scales = _values(op.properties.get(f"{prefix}scale_const"), param_shape)
    zps = _values(op.properties.get(f"{prefix}zero_point_const"), param_shape).astype(np.int64)
    if exp_name != "f32":
        dt = formats.numpy_dtype(exp_name)
        if np.any(scales.astype(np.float32).astype(dt).astype(np.float64) != scales):
            raise _fail(op, f"a scale is not exact in the expressed type {exp_name}")
    bounds = op.storage_bounds(storage_type) if not storage.is_float else None
    qmin, qmax = bounds if bounds is not None else storage.default_range
    if isinstance(granularity, PerTensorAttr):
        layout, axes, blocks, pshape = "layer", (), (), ()
    elif isinstance(granularity, PerAxisAttr):
        layout, axes, blocks, pshape = "axis", (granularity.axis,), (), param_shape
    else:
        sub = [(k, b) for k, (b, n) in enumerate(zip(block, shape, strict=True)) if b != n]
        layout, pshape = "sub_channel", tuple(n // b for b, n in zip(block, shape, strict=True))
        axes, blocks = tuple(k for k, _ in sub), tuple(b for _, b in sub)
    return QuantSpec(
        "uniform",
        storage,
        qmin,
        qmax,
        expressed,
        layout,
        axes,
        blocks,
        pshape,
        tuple(scales.reshape(-1).tolist()),
        tuple(
            wrap_zero_point(z, storage) if layout == "sub_channel" else z
            for z in zps.reshape(-1).tolist()
        ),
    )


def _check_quantize(op: QuantizeOp | RequantizeOp, spec: QuantSpec) -> None:
    if op.rounding_mode != "nearest_even":
        raise _fail(op, f"rounding({op.rounding_mode}); qcast leaves rounding to the pipeline")
    if not op.saturate_flag:
        raise _fail(op, "saturate(false); upstream float storage has no such flag")
    if op.zp_order == ZERO_POINT_ORDERS[0] and any(spec.zero_points):
        raise _fail(
            op,
            "this quantize rounds, then adds the zero point (ONNX order); quant.qcast adds "
            "it before rounding (zero_point_order(before_rounding)), and the two differ on "
            "ties with odd zero points",
        )


def _same_but_range(a: Attribute, b: UniformQuantType) -> bool:
    """The same parameters; a storage range does not change what dequantize computes."""
    if not isinstance(a, UniformQuantType):
        return False
    lo, hi = b.data.storage.default_range if b.data.storage else (0, 0)
    return replace(a.data, storage_min=lo, storage_max=hi) == replace(
        b.data, storage_min=lo, storage_max=hi
    )


def _tensor(like: SSAValue, element: Attribute) -> TensorType:
    assert isinstance(like.type, TensorType)
    return TensorType(element, like.type.get_shape())


def _shape(v: SSAValue) -> tuple[int, ...]:
    assert isinstance(v.type, TensorType)
    return tuple(v.type.get_shape())


def _element(v: SSAValue) -> Attribute:
    assert isinstance(v.type, TensorType)
    return v.type.element_type


def _signless(t: Attribute) -> bool:
    e = t.element_type if isinstance(t, TensorType) else t
    return isinstance(e, IntegerType) and e.signedness.data == Signedness.SIGNLESS


@dataclass
class _Exporter:
    """One function's export: ``quantized`` maps a storage value to the quantized value
    (and its type) that stands for it."""

    func_op: func.FuncOp
    quantized: dict[SSAValue, SSAValue]
    storage: dict[SSAValue, Attribute]
    """The qopt storage element type of a value that now has a quantized type."""

    def quantize(self, op: QuantizeOp) -> None:
        t = UniformQuantType(
            spec_of(op, "", _element(op.result), _element(op.input), _shape(op.input))
        )
        _check_quantize(op, t.data)
        qcast = QuantizeCastOp(op.input, _tensor(op.input, t))
        self._insert(qcast, op)
        self._replace_storage(op, op.result, qcast.result)

    def dequantize(self, op: DequantizeOp) -> None:
        storage = self.storage.get(op.input, _element(op.input))
        t = UniformQuantType(spec_of(op, "", storage, _element(op.result), _shape(op.input)))
        source = self._quantized_input(op, op.input, t)
        dcast = DequantizeCastOp(source, op.result.type)
        self._insert(dcast, op)
        op.result.replace_all_uses_with(dcast.result)
        Rewriter.erase_op(op)

    def requantize(self, op: RequantizeOp) -> None:
        shape = _shape(op.input)
        f32 = formats.parse_type_name("f32")
        storage = self.storage.get(op.input, _element(op.input))
        t_in = UniformQuantType(spec_of(op, "in_", storage, f32, shape))
        t_out = UniformQuantType(spec_of(op, "out_", _element(op.result), f32, shape))
        _check_quantize(op, t_out.data)
        dcast = DequantizeCastOp(self._quantized_input(op, op.input, t_in), _tensor(op.input, f32))
        self._insert(dcast, op)
        qcast = QuantizeCastOp(dcast.result, _tensor(op.input, t_out))
        self._insert(qcast, op)
        self._replace_storage(op, op.result, qcast.result)

    def _insert(self, new: Operation, at: Operation) -> None:
        new.location = at.location
        Rewriter.insert_op(new, InsertPoint.before(at))

    def _quantized_input(self, op: Operation, value: SSAValue, t: UniformQuantType) -> SSAValue:
        known = self.quantized.get(value)
        if known is not None and _same_but_range(_element(known), t):
            return known
        if _signless(value.type):
            scast = StorageCastOp(value, _tensor(value, t))
            self._insert(scast, op)
            return scast.result
        block = self.func_op.body.blocks[0]
        if isinstance(value.owner, Block) and value.owner is block:
            users = {use.operation for use in value.uses}
            if all(isinstance(u, DequantizeOp) for u in users):
                new = Rewriter.replace_value_with_new_type(value, _tensor(value, t))
                self._sync_signature()
                self.quantized[new] = new
                self.storage[new] = _element(value)
                return new
        raise _fail(
            op,
            f"its {value.type} input has unsigned storage, which quant.scast "
            "does not take, and is used elsewhere",
        )

    def _replace_storage(self, op: Operation, old: SSAValue, quantized: SSAValue) -> None:
        """Uses of the storage value ``old`` read ``quantized`` (through an scast, a
        function result of the quantized type, or directly by exported dequantizes)."""
        if not old.uses:
            Rewriter.erase_op(op)
            return
        if _signless(old.type):
            scast = StorageCastOp(quantized, old.type)
            self._insert(scast, op)
            old.replace_all_uses_with(scast.result)
            self.quantized[scast.result] = quantized
            Rewriter.erase_op(op)
            return
        users = {use.operation for use in old.uses}
        if all(isinstance(u, DequantizeOp | func.ReturnOp) for u in users):
            self.storage[quantized] = _element(old)
            old.replace_all_uses_with(quantized)
            self.quantized[quantized] = quantized
            Rewriter.erase_op(op)
            self._sync_signature()
            return
        raise _fail(
            op,
            f"its {old.type} result has unsigned storage, which quant.scast "
            "does not take, and is used by other ops",
        )

    def _sync_signature(self) -> None:
        block = self.func_op.body.blocks[0]
        returns = [o for o in block.ops if isinstance(o, func.ReturnOp)]
        outputs = (
            [a.type for a in returns[0].arguments]
            if returns
            else list(self.func_op.function_type.outputs.data)
        )
        self.func_op.function_type = FunctionType.from_lists([a.type for a in block.args], outputs)


@dataclass(frozen=True)
class ExportQuantTypesPass(ModulePass):
    """qopt's quantize / dequantize / requantize -> upstream quant.qcast / dcast / scast."""

    name = "export-quant-types"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for func_op in [o for o in op.walk() if isinstance(o, func.FuncOp)]:
            exporter = _Exporter(func_op, {}, {})
            for inner in list(func_op.walk()):
                match inner:
                    case QuantizeOp():
                        exporter.quantize(inner)
                    case DequantizeOp():
                        exporter.dequantize(inner)
                    case RequantizeOp():
                        exporter.requantize(inner)
                    case _ if inner.name in _QOPT_OPS:
                        raise _fail(inner, f"{inner.name} has no upstream equivalent")
            exporter._sync_signature()
        for inner in list(op.walk()):
            if isinstance(inner, StorageCastOp) and not inner.result.uses:
                Rewriter.erase_op(inner)
