"""An interpreter of quant-dialect functions on top of the numpy oracle (tests/oracle.py).

``evaluate(func_op, *inputs)`` runs the body of one ``func.func`` op by op: each quant op
becomes a call of the matching oracle function with the op's parameters (operands from
the environment, constants from properties) and its granularity turned into the oracle's
keywords. It lets a test compare IR before and after a pass on concrete inputs, e.g. on
every code of a storage type, without the lowering or the JIT.

    module = parse_module(text)
    (out,) = evaluate(find_function(module, "f"), codes)

``requantize`` is evaluated as its definition, ``quantize(dequantize(q) as f32)``, so the
input and output granularities may differ in any way (the oracle's own ``requantize``
takes one ``axis`` for both). Supported ops: the quant ops, ``arith.constant`` and
``func.return``; anything else raises ``NotImplementedError`` naming the op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    TensorType,
)
from xdsl.ir import Attribute, Operation, SSAValue

from qopt.qdialect import formats
from qopt.qdialect.attrs import (
    BlockAttr,
    GranularityAttr,
    PerAxisAttr,
    PerBlockAttr,
    PerTensorAttr,
    PerTokenAttr,
)
from qopt.qdialect.ops import (
    DequantizeOp,
    DynamicQuantizeOp,
    FakeQuantizeOp,
    PackOp,
    QuantizeOp,
    QuantOp,
    RequantizeOp,
    UnpackOp,
)
from tests.support import oracle

Env = dict[SSAValue, np.ndarray]


def find_function(module: ModuleOp, name: str) -> func.FuncOp:
    """The ``func.func @name`` of a module; ``KeyError`` when there is none."""
    for op in module.walk():
        if isinstance(op, func.FuncOp) and op.sym_name.data == name:
            return op
    raise KeyError(f"no function @{name} in the module")


def evaluate(func_op: func.FuncOp, *inputs: Any) -> list[np.ndarray]:
    """Run ``func_op`` on ``inputs`` (converted to the argument element types)."""
    block = func_op.body.block
    if len(inputs) != len(block.args):
        raise ValueError(
            f"@{func_op.sym_name.data} takes {len(block.args)} inputs, got {len(inputs)}"
        )
    env: Env = {arg: _as_type(value, arg.type) for arg, value in zip(block.args, inputs)}
    for op in block.ops:
        if isinstance(op, func.ReturnOp):
            return [env[value] for value in op.arguments]
        handler = _HANDLERS.get(type(op))
        if handler is None:
            raise NotImplementedError(f"quant_eval cannot evaluate {op.name}")
        results = handler(op, env)
        for result, value in zip(op.results, results):
            env[result] = _reshape_to(value, result.type)
    raise ValueError(f"@{func_op.sym_name.data} has no func.return")


# ---------------------------------------------------------------------------------------
# types, parameters, granularity
# ---------------------------------------------------------------------------------------


def dtype_of(element: Attribute) -> np.dtype:
    """The numpy / ml_dtypes dtype of an element type (the oracle's table)."""
    return oracle.storage_dtype(formats.type_name(element))


def _as_type(value: Any, t: Attribute) -> np.ndarray:
    if not isinstance(t, TensorType):
        raise NotImplementedError(f"quant_eval takes tensor arguments only, got {t}")
    array = np.asarray(value)
    dtype = dtype_of(t.element_type)
    if array.dtype != dtype:
        array = array.astype(dtype)
    return _reshape_to(array, t)


def _reshape_to(value: np.ndarray, t: Attribute) -> np.ndarray:
    if isinstance(t, TensorType) and all(n >= 0 for n in t.get_shape()):
        return np.asarray(value).reshape(tuple(t.get_shape()))
    return np.asarray(value)


def _const(attr: Attribute, integer: bool) -> np.ndarray:
    if isinstance(attr, FloatAttr | IntegerAttr):
        values = np.array(attr.value.data)
    elif isinstance(attr, DenseIntOrFPElementsAttr):
        values = np.array(attr.get_values()).reshape(attr.get_shape() or ())
    else:
        raise NotImplementedError(f"quant_eval cannot read the constant {attr}")
    return values.astype(np.int64 if integer else np.float32)


def _param(op: QuantOp, name: str, env: Env, *, integer: bool = False) -> np.ndarray | None:
    """A parameter operand's value, or its ``<name>_const`` property, or None."""
    value = op.param(name)
    if value is None:
        return None
    if isinstance(value, SSAValue):
        return env[value]
    return _const(value, integer)


def _granularity(g: GranularityAttr, rank: int) -> dict[str, Any]:
    """The oracle's granularity keywords for a granularity attribute."""
    match g:
        case PerTensorAttr():
            return {}
        case PerAxisAttr():
            return {"axis": g.axis}
        case PerBlockAttr():
            return {"axis": g.axis, "block_size": g.block_size}
        case BlockAttr():
            return {"block_shape": g.shape}
        case PerTokenAttr():
            return {"block_shape": (1,) * (rank - 1) + (-1,)}
    raise NotImplementedError(f"quant_eval does not know the granularity {g}")


def _dynamic_granularity(g: GranularityAttr, rank: int) -> dict[str, Any]:
    """Granularity keywords of the dynamic ops (they take no bare ``axis``)."""
    if isinstance(g, PerTensorAttr):
        return {"block_shape": None, "block_size": None}
    if isinstance(g, PerAxisAttr):
        return {"block_shape": tuple(1 if k == g.axis else -1 for k in range(rank))}
    return _granularity(g, rank)


def _range(op: QuantOp, storage: Attribute, prefix: str = "") -> dict[str, int | None]:
    lo, hi = op.properties.get(f"{prefix}storage_min"), op.properties.get(f"{prefix}storage_max")
    if not isinstance(storage, IntegerType) or lo is None or hi is None:
        return {}
    assert isinstance(lo, IntegerAttr) and isinstance(hi, IntegerAttr)
    return {"qmin": lo.value.data, "qmax": hi.value.data}


def _order(op: QuantOp) -> dict[str, str]:
    """The oracle's ``zero_point_order`` keyword where the op is not in the default order."""
    order = op.zp_order
    return {} if order == "after_rounding" else {"zero_point_order": order}


def _element(value: SSAValue) -> Attribute:
    assert isinstance(value.type, TensorType)
    return value.type.element_type


def _rank(value: SSAValue) -> int:
    assert isinstance(value.type, TensorType)
    return len(value.type.get_shape())


# ---------------------------------------------------------------------------------------
# one handler per op
# ---------------------------------------------------------------------------------------


def _quantize(op: QuantizeOp, env: Env) -> Sequence[np.ndarray]:
    storage = _element(op.result)
    return [
        oracle.quantize(
            env[op.input],
            _param(op, "scale", env),
            _param(op, "zero_point", env, integer=True),
            dtype=dtype_of(storage),
            saturate=op.saturate_flag,
            rounding=op.rounding_mode,
            minval=_param(op, "minval", env),
            **_granularity(op.granularity_of(), _rank(op.input)),
            **_range(op, storage),
            **_order(op),
        )
    ]


def _dequantize(op: DequantizeOp, env: Env) -> Sequence[np.ndarray]:
    scale = _param(op, "scale", env)
    double_quant = _param(op, "double_quant", env)
    if double_quant is not None:  # NVFP4: data * (sq * dq), the product in f32
        scale = np.asarray(scale).astype(np.float32) * np.float32(double_quant)
    qmin = _range(op, _element(op.input)).get("qmin")
    return [
        oracle.dequantize(
            env[op.input],
            scale,
            _param(op, "zero_point", env, integer=True),
            dtype=dtype_of(_element(op.result)),
            minval=_param(op, "minval", env),
            qmin=qmin,
            **_granularity(op.granularity_of(), _rank(op.input)),
        )
    ]


def _requantize(op: RequantizeOp, env: Env) -> Sequence[np.ndarray]:
    rank = _rank(op.input)
    middle = oracle.dequantize(
        env[op.input],
        _param(op, "in_scale", env),
        _param(op, "in_zero_point", env, integer=True),
        dtype="f32",
        **_granularity(op.granularity_of("in_granularity"), rank),
    )
    storage = _element(op.result)
    return [
        oracle.quantize(
            middle,
            _param(op, "out_scale", env),
            _param(op, "out_zero_point", env, integer=True),
            dtype=dtype_of(storage),
            saturate=op.saturate_flag,
            rounding=op.rounding_mode,
            **_granularity(op.granularity_of("out_granularity"), rank),
            **_range(op, storage),
            **_order(op),
        )
    ]


def _dynamic_quantize(op: DynamicQuantizeOp, env: Env) -> Sequence[np.ndarray]:
    if _range(op, _element(op.data)):
        raise NotImplementedError("quant_eval: the oracle has no narrow-range dynamic_quantize")
    double_quant = _param(op, "double_quant", env)
    eps = op.prop_float("eps")
    return oracle.dynamic_quantize(
        env[op.input],
        dtype=dtype_of(_element(op.data)),
        scale_dtype=dtype_of(_element(op.scale)),
        double_quant_scale=None if double_quant is None else np.float32(double_quant),
        symmetric=op.is_symmetric,
        scale_rounding=op.prop_str("scale_rounding", "floor"),
        eps=eps,
        **_dynamic_granularity(op.granularity_of(), _rank(op.input)),
    )


def _fake_quantize(op: FakeQuantizeOp, env: Env) -> Sequence[np.ndarray]:
    if _range(op, op.storage_type):
        raise NotImplementedError("quant_eval: the oracle has no narrow-range fake_quantize")
    scale_type = op.scale_type
    return [
        oracle.fake_quantize(
            env[op.input],
            _param(op, "scale", env),
            _param(op, "zero_point", env, integer=True),
            dtype=dtype_of(op.storage_type),
            symmetric=op.prop_bool("symmetric", True),
            scale_dtype="f32" if scale_type is None else dtype_of(scale_type),
            zero_point_domain=op.prop_str("zero_point_domain", "int"),
            eps=op.prop_float("eps"),
            rounding=op.rounding_mode,
            **_granularity(op.granularity_of(), _rank(op.input)),
        )
    ]


def _pack(op: PackOp, env: Env) -> Sequence[np.ndarray]:
    return [oracle.pack(env[op.input])]


def _unpack(op: UnpackOp, env: Env) -> Sequence[np.ndarray]:
    assert isinstance(op.result.type, TensorType)
    shape = tuple(op.result.type.get_shape())
    return [oracle.unpack(env[op.input], dtype=dtype_of(_element(op.result)), shape=shape)]


def _constant(op: arith.ConstantOp, env: Env) -> Sequence[np.ndarray]:
    value = op.value
    result_type = op.result.type
    element = result_type.element_type if isinstance(result_type, TensorType) else result_type
    if isinstance(value, DenseIntOrFPElementsAttr):
        array = np.array(value.get_values()).reshape(value.get_shape() or ())
    elif isinstance(value, FloatAttr | IntegerAttr):
        array = np.array(value.value.data)
    else:
        raise NotImplementedError(f"quant_eval cannot evaluate the constant {value}")
    if array.dtype.kind == "f":
        array = array.astype(np.float32)  # a float literal rounds once, to f32, then exactly
    return [array.astype(dtype_of(element))]


_HANDLERS: dict[type[Operation], Callable[[Any, Env], Sequence[np.ndarray]]] = {
    QuantizeOp: _quantize,
    DequantizeOp: _dequantize,
    RequantizeOp: _requantize,
    DynamicQuantizeOp: _dynamic_quantize,
    FakeQuantizeOp: _fake_quantize,
    PackOp: _pack,
    UnpackOp: _unpack,
    arith.ConstantOp: _constant,
}
