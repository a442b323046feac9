"""The scalar ops of `linalg.generic` bodies: one LLVM emitter per op name (`SCALAR_OPS`),
the check that a body holds only those, and the body walker (`emit_body`).

The op set is design.md section 1's; beyond it, `tensor.extract` of a function-level tensor
at indices computed in the body is accepted (the gather of the "lut" requantize lowering):
the walker hands it to a callback of the loop emitter, which knows where the tensor lives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from llvmlite import ir
from xdsl.dialects import arith, tensor
from xdsl.dialects.builtin import FloatAttr, IntegerAttr
from xdsl.dialects.linalg.ops import YieldOp
from xdsl.ir import Attribute, Block, Operation, SSAValue

from qopt.codegen import floatfmt
from qopt.codegen.errors import TranslationError
from qopt.codegen.types import constant_bits, element_type

__all__ = ["SCALAR_OPS", "Gather", "ScalarEmitter", "check_body", "emit_body", "intrinsic"]


def intrinsic(b: ir.IRBuilder, name: str, args: Sequence[ir.Value]) -> ir.Value:
    """Call `name.<type>` declared with an explicit function type (see STYLE: declare_intrinsic)."""
    fnty = ir.FunctionType(args[0].type, [a.type for a in args])
    return b.call(b.module.declare_intrinsic(name, [args[0].type], fnty), list(args))


def _scalar_constant(attr: Attribute, type_: Attribute, op: Operation) -> ir.Constant:
    element = element_type(type_, op)
    match attr:
        case IntegerAttr() if isinstance(element.value, ir.IntType):
            width = element.value.width
            bits = attr.value.data & ((1 << width) - 1)
            return ir.Constant(element.value, bits - (1 << width) if bits >> (width - 1) else bits)
        case FloatAttr() if element.float_format is not None and element.float_format != "f16":
            bits = constant_bits([attr.value.data], element).view(f"<u{element.dtype.itemsize}")
            return ir.Constant(element.value, int(bits[0]))
        case FloatAttr():
            return ir.Constant(element.value, attr.value.data)
    raise TranslationError(f"unsupported constant {attr}", op)


_CMPF_PREDICATES = (
    "false", "oeq", "ogt", "oge", "olt", "ole", "one", "ord",
    "ueq", "ugt", "uge", "ult", "ule", "une", "uno", "true",
)  # fmt: skip
_CMPI_PREDICATES = (
    ("==", True), ("!=", True), ("<", True), ("<=", True), (">", True), (">=", True),
    ("<", False), ("<=", False), (">", False), (">=", False),
)  # fmt: skip


def _cmpf(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
    return b.fcmp_ordered(_CMPF_PREDICATES[op.predicate.value.data], *args)


def _cmpi(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
    pred, signed = _CMPI_PREDICATES[op.predicate.value.data]
    return (b.icmp_signed if signed else b.icmp_unsigned)(pred, *args)


def _result_llvm_type(op: Operation) -> ir.Type:
    return element_type(op.results[0].type, op).value


def _cast(method: str) -> Callable[[ir.IRBuilder, Operation, list[ir.Value]], ir.Value]:
    def convert(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
        result = element_type(op.results[0].type, op)
        if method in ("sitofp", "uitofp") and not result.is_float:
            raise TranslationError(
                f"'{op.name}' to {result.name} is not supported; convert to f32 and arith.truncf",
                op,
            )
        return getattr(b, method)(args[0], result.value)

    return convert


def _index_cast(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
    src, dst = args[0].type.width, _result_llvm_type(op)
    if src == dst.width:
        return args[0]
    return b.sext(args[0], dst) if src < dst.width else b.trunc(args[0], dst)


def _bitcast(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
    """Same bits, other type; a no-op when both types share their LLVM carrier."""
    value, dst = args[0], _result_llvm_type(op)
    if value.type == dst:
        return value
    if isinstance(value.type, ir.IntType) and isinstance(dst, ir.IntType):
        # f4E2M1FN is carried in i8: to/from i4 is a truncation / zero extension.
        return b.trunc(value, dst) if value.type.width > dst.width else b.zext(value, dst)
    return b.bitcast(value, dst)


def _float_convert(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
    """arith.extf / arith.truncf: native LLVM casts, or floatfmt for small float formats."""
    src = element_type(op.operands[0].type, op)
    dst = element_type(op.results[0].type, op)
    value = args[0]
    if src.float_format is not None:
        value = floatfmt.extend(b, value, src.float_format)  # exact, to f32
    if dst.float_format is not None:
        if value.type != ir.FloatType():
            raise TranslationError(
                f"{op.name} from {src.name} to {dst.name} would round twice (only f32 and "
                "small float sources are supported)",
                op,
            )
        return floatfmt.truncate(b, value, dst.float_format)
    if value.type == dst.value:
        return value
    wider = isinstance(dst.value, ir.DoubleType)
    return b.fpext(value, dst.value) if wider else b.fptrunc(value, dst.value)


def _float_only(
    emit: Callable[[ir.IRBuilder, Operation, list[ir.Value]], ir.Value],
) -> Callable[[ir.IRBuilder, Operation, list[ir.Value]], ir.Value]:
    """Reject float arithmetic on small formats carried as integers (bf16, f8, f4)."""

    def checked(b: ir.IRBuilder, op: Operation, args: list[ir.Value]) -> ir.Value:
        for value in op.operands:
            element = element_type(value.type, op)
            if not element.is_float:
                raise TranslationError(
                    f"'{op.name}' on {element.name} values is not supported; "
                    "arith.extf them to f32 first",
                    op,
                )
        return emit(b, op, args)

    return checked


def _binary(method: str) -> Callable[[ir.IRBuilder, Operation, list[ir.Value]], ir.Value]:
    return lambda b, op, args: getattr(b, method)(args[0], args[1])


def _call(name: str) -> Callable[[ir.IRBuilder, Operation, list[ir.Value]], ir.Value]:
    return lambda b, op, args: intrinsic(b, name, args)


ScalarEmitter = Callable[[ir.IRBuilder, Operation, list[ir.Value]], ir.Value]

# The body op set of design.md section 1 (arith.constant is handled by the body walker).
SCALAR_OPS: dict[str, ScalarEmitter] = {
    "arith.addf": _float_only(_binary("fadd")),
    "arith.subf": _float_only(_binary("fsub")),
    "arith.mulf": _float_only(_binary("fmul")),
    "arith.divf": _float_only(_binary("fdiv")),
    "arith.negf": _float_only(lambda b, op, args: b.fneg(args[0])),
    "arith.maximumf": _float_only(_call("llvm.maximum")),
    "arith.minimumf": _float_only(_call("llvm.minimum")),
    "arith.maxnumf": _float_only(_call("llvm.maxnum")),
    "arith.minnumf": _float_only(_call("llvm.minnum")),
    "arith.cmpf": _float_only(_cmpf),
    "arith.cmpi": _cmpi,
    "arith.select": lambda b, op, args: b.select(*args),
    "arith.addi": _binary("add"),
    "arith.subi": _binary("sub"),
    "arith.muli": _binary("mul"),
    "arith.divsi": _binary("sdiv"),
    "arith.divui": _binary("udiv"),
    "arith.remsi": _binary("srem"),
    "arith.andi": _binary("and_"),
    "arith.ori": _binary("or_"),
    "arith.xori": _binary("xor"),
    "arith.shli": _binary("shl"),
    "arith.shrui": _binary("lshr"),
    "arith.shrsi": _binary("ashr"),
    "arith.maxsi": _call("llvm.smax"),
    "arith.minsi": _call("llvm.smin"),
    "arith.maxui": _call("llvm.umax"),
    "arith.minui": _call("llvm.umin"),
    "arith.extsi": _cast("sext"),
    "arith.extui": _cast("zext"),
    "arith.trunci": _cast("trunc"),
    "arith.sitofp": _cast("sitofp"),
    "arith.uitofp": _cast("uitofp"),
    "arith.fptosi": _float_only(_cast("fptosi")),
    "arith.fptoui": _float_only(_cast("fptoui")),
    "arith.extf": _float_convert,
    "arith.truncf": _float_convert,
    "arith.bitcast": _bitcast,
    "arith.index_cast": _index_cast,
    "math.roundeven": _float_only(_call("llvm.roundeven")),
    "math.round": _float_only(_call("llvm.round")),
    "math.floor": _float_only(_call("llvm.floor")),
    "math.ceil": _float_only(_call("llvm.ceil")),
    "math.trunc": _float_only(_call("llvm.trunc")),
    "math.absf": _float_only(_call("llvm.fabs")),
    "math.copysign": _float_only(_call("llvm.copysign")),
    "math.fma": _float_only(_call("llvm.fma")),
    "math.log2": _float_only(_call("llvm.log2")),
    "math.exp2": _float_only(_call("llvm.exp2")),
}


def check_body(
    block: Block, scalars: Mapping[SSAValue, arith.ConstantOp], tensors: set[SSAValue]
) -> None:
    """Fail before emitting anything: every op translatable, every value available (block
    arguments, earlier results, function-level scalar constants, and for `tensor.extract`
    a function-level tensor)."""
    available = set(block.args) | set(scalars)
    for op in block.ops:
        if op.regions or (op.name not in SCALAR_OPS and op.name not in _BODY_SPECIAL):
            raise TranslationError(
                f"unsupported op '{op.name}' in a linalg.generic body (not in the lowered-IR op set)",
                op,
            )
        operands = list(op.operands)
        if isinstance(op, tensor.ExtractOp):
            if op.tensor not in tensors:
                raise TranslationError("tensor.extract must read a function-level tensor", op)
            operands = list(op.indices)
        for value in operands:
            if value not in available:
                raise TranslationError(
                    "operand defined outside the body is not a scalar arith.constant", op
                )
        for result in op.results:
            element_type(result.type, op)
        available.update(op.results)
    if not isinstance(block.last_op, YieldOp):
        raise TranslationError("linalg.generic body must end with linalg.yield", block.parent_op())


_BODY_SPECIAL = frozenset({"arith.constant", "linalg.yield", "tensor.extract"})

Gather = Callable[[tensor.ExtractOp, list[ir.Value]], ir.Value]


def emit_body(
    b: ir.IRBuilder,
    block: Block,
    args: Sequence[ir.Value | None],
    scalars: Mapping[SSAValue, arith.ConstantOp],
    gather: Gather,
) -> list[ir.Value]:
    """Translate the body ops in order; return the `linalg.yield`ed values."""
    values: dict[SSAValue, ir.Value] = {a: v for a, v in zip(block.args, args) if v is not None}

    def get(value: SSAValue) -> ir.Value:
        if value not in values:  # a function-level constant
            const = scalars[value]
            values[value] = _scalar_constant(const.value, const.result.type, const)
        return values[value]

    for op in block.ops:
        match op:
            case YieldOp():
                return [get(v) for v in op.operands]
            case arith.ConstantOp():
                values[op.result] = _scalar_constant(op.value, op.result.type, op)
            case tensor.ExtractOp():
                values[op.result] = gather(op, [get(v) for v in op.indices])
            case _:
                values[op.results[0]] = SCALAR_OPS[op.name](b, op, [get(v) for v in op.operands])
    raise AssertionError("checked body without linalg.yield")
