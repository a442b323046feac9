"""The Python API of SPEC.md section 5: one path from quant IR to machine code.

Each entry point (``quantize``, ``dequantize``, ``requantize``, ``dynamic_quantize``,
``fake_quantize``) validates its arguments, writes a one-op quant-dialect function for the
request, runs the same pipeline as ``qopt --lower-quant``, JIT-compiles the lowered module
(codegen.jit, cached) and calls the kernel. There is no numpy fallback: numpy only holds
the arrays.

Parameters are always runtime operands of the kernel (a Python number becomes a 0-d
array), so one compiled kernel serves every scale and zero point of a given signature; the
compiled kernel is memoized by that signature, which keeps the warm call cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qdialect import formats
from qdialect.attrs import BlockAttr, PerAxisAttr, PerBlockAttr
from qdialect.diagnostics import QuantDiagnostic, parse_module, verify_module

_STORAGE_NAMES = tuple(
    ["i8", "ui8", "i16", "ui16", "i4", "ui4", "i2", "ui2"] + sorted(formats.FLOAT_STORAGE_NAMES)
)
_EXPRESSED_NAMES = ("f32", "f16", "bf16")
_SCALE_NAMES = ("f32", "f16", "bf16", "f8E4M3FN", "f8E8M0FNU")


# --- argument checking -----------------------------------------------------------------


def _dtype_name(value: Any, argument: str, allowed: Sequence[str]) -> str:
    """The MLIR spelling of a dtype given as a spelling or a numpy / ml_dtypes dtype."""
    if isinstance(value, str):
        name = value
    else:
        try:
            name = formats.name_of_numpy_dtype(np.dtype(value))
        except (TypeError, ValueError):
            raise TypeError(
                f"{argument} must be a dtype or one of {', '.join(allowed)}, got {value!r}"
            ) from None
    if name not in allowed:
        raise ValueError(f"{argument} must be one of {', '.join(allowed)}, got {value!r}")
    return name


def _array(value: Any, argument: str, allowed: Sequence[str]) -> tuple[np.ndarray, str]:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{argument} must be a numpy array, got {type(value).__name__}")
    return value, _dtype_name(value.dtype, f"{argument}.dtype", allowed)


def _axis(axis: Any, rank: int, argument: str = "axis") -> int:
    if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
        raise TypeError(f"{argument} must be an int, got {axis!r}")
    if not -rank <= axis < rank:
        raise ValueError(f"{argument} {axis} is out of range for an array of rank {rank}")
    return int(axis) % rank


@dataclass(frozen=True)
class _Granularity:
    """The granularity clause of the IR and the parameter shape it implies."""

    clause: str
    param_shape: tuple[int, ...]


def _granularity(
    shape: tuple[int, ...],
    *,
    axis: Any,
    block_size: Any,
    block_shape: Any,
    param: Any,
    default_axis: int | None = None,
) -> _Granularity:
    """SPEC section 5: block_shape -> N-D block; block_size -> per-block along axis;
    only axis (and a 1-D parameter) -> per-axis; none -> per-tensor."""
    rank = len(shape)
    if block_shape is not None:
        if block_size is not None:
            raise ValueError("give block_shape or block_size, not both")
        blocks = [int(b) for b in block_shape]
        if len(blocks) != rank or any(b < 1 and b != -1 for b in blocks):
            raise ValueError(
                f"block_shape must have one entry >= 1 or -1 per dimension ({rank}), "
                f"got {list(block_shape)}"
            )
        attr = BlockAttr(blocks)
        return _Granularity(f"block([{', '.join(map(str, blocks))}])", attr.param_shape(shape))
    if block_size is not None:
        if not isinstance(block_size, int | np.integer) or block_size < 1:
            raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")
        if rank == 0:
            raise ValueError("block_size needs an array of rank >= 1")
        a = _axis(default_axis if axis is None else axis, rank)
        attr = PerBlockAttr(a, int(block_size))
        return _Granularity(f"per_block({a}, {int(block_size)})", attr.param_shape(shape))
    if axis is not None:
        _axis(axis, rank)
    if axis is not None and np.ndim(param) == 1:
        a = _axis(axis, rank)
        return _Granularity(f"per_axis({a})", PerAxisAttr(a).param_shape(shape))
    return _Granularity("", ())


def _param(
    value: Any, argument: str, shape: tuple[int, ...], dtype: str, allowed: Sequence[str]
) -> np.ndarray:
    """A scale / zero-point argument as an array of the expected shape and dtype."""
    if isinstance(value, np.ndarray):
        name = _dtype_name(value.dtype, f"{argument}.dtype", allowed)
        array = value
        if name != dtype and dtype in formats.FLOAT_FORMATS and name in formats.FLOAT_FORMATS:
            dtype = name  # keep a float scale's own format (f16, e4m3, e8m0 scales)
    elif isinstance(value, int | float | np.number) and not isinstance(value, bool):
        array = np.asarray(value)
    else:
        raise TypeError(f"{argument} must be a number or a numpy array, got {value!r}")
    if array.size == 1 and shape == ():
        array = array.reshape(())
    if array.shape != shape:
        raise ValueError(f"{argument} has shape {array.shape}, expected {shape}")
    target = formats.numpy_dtype(dtype)
    if dtype in _SCALE_NAMES and array.size:
        smallest = float(array.min()) if array.ndim else float(array)
        if not (smallest > 0 and math.isfinite(float(array.max()) if array.ndim else smallest)):
            raise ValueError(f"{argument} must be finite and > 0")
    if dtype in ("f32", "f16", "bf16") or not np.issubdtype(array.dtype, np.number):
        return array.astype(target, order="C") if array.dtype != target else array
    if formats.type_name(formats.parse_type_name(dtype)) in formats.FLOAT_FORMATS:
        return array.astype(target, order="C")
    lo, hi = formats.integer_range(formats.parse_type_name(dtype))
    if array.size and (
        not np.all(np.equal(np.round(array), array)) or array.min() < lo or array.max() > hi
    ):
        raise ValueError(f"{argument} values must be integers in [{lo}, {hi}] for {dtype}")
    return array.astype(target, order="C")


def _tensor(shape: Sequence[int], element: str) -> str:
    return f"tensor<{''.join(f'{n}x' for n in shape)}{element}>"


# --- compile and run ---------------------------------------------------------------------

_KERNELS: dict[tuple, Callable[..., Any]] = {}


def _lower(module: Any) -> Any:
    """The pipeline of ``qopt --lower-quant`` (lower-quant runs the lowering choice)."""
    from passes.lower_quant import LowerQuantPass
    from qdialect.diagnostics import make_context

    LowerQuantPass().apply(make_context(), module)
    verify_module(module)
    return module


def _kernel_for(key: tuple, build_ir: Callable[[], str]) -> Callable[..., Any]:
    """The compiled kernel of a request signature, building and compiling it once."""
    kernel = _KERNELS.get(key)
    if kernel is None:
        from codegen.jit import compile_module

        module = parse_module(build_ir(), "<api>")
        verify_module(module)
        compiled = compile_module(_lower(module))
        kernel = compiled["main"]
        _KERNELS[key] = kernel
    return kernel


def _packed_size(shape: Sequence[int], element: str) -> int:
    """Bytes holding ``shape`` codes of a 4-bit or 2-bit type (SPEC section 1)."""
    per_byte = 8 // formats.bit_width(formats.parse_type_name(element))
    return -(-math.prod(shape) // per_byte)


def _packed_shape(shape: Sequence[int], element: str) -> tuple[int, ...]:
    """The byte tensor of packed codes: the codes' shape with the last dimension packed
    when whole bytes fit in a row (same bytes as the flat form, and a loop the rows'
    phase can share), else the flat byte count."""
    per_byte = 8 // formats.bit_width(formats.parse_type_name(element))
    if len(shape) > 1 and shape[-1] % per_byte == 0:
        return (*shape[:-1], shape[-1] // per_byte)
    return (_packed_size(shape, element),)


class _Call:
    """One op call being assembled: kernel operands, IR arguments and clauses.

    With ``packed_input`` the kernel takes the bytes of sub-byte codes and unpacks them
    with ``quant.unpack`` first; ``run(..., pack_first=True)`` returns the first result
    packed by ``quant.pack``. Both fuse with the op in the lowering.
    """

    def __init__(
        self,
        op: str,
        x: np.ndarray,
        x_type: str,
        packed_input: tuple[tuple[int, ...], str] | None = None,
    ):
        self.op = op
        self.arrays: list[np.ndarray] = [x]
        self.prologue: list[str] = []
        if packed_input is None:
            self.input_type = _tensor(x.shape, x_type)
            self.arguments: list[str] = [f"%x: {self.input_type}"]
            self.source = "%x"
        else:
            shape, element = packed_input
            bytes_type = _tensor(x.shape, "ui8")
            self.input_type = _tensor(shape, element)
            self.arguments = [f"%x: {bytes_type}"]
            self.prologue.append(f"%u = quant.unpack %x : {bytes_type} -> {self.input_type}")
            self.source = "%u"
        self.clauses: list[str] = []

    def operand(self, keyword: str, array: np.ndarray, into: list[str] | None = None) -> None:
        """Pass ``array`` as the parameter ``keyword`` (e.g. ``scale``); its clause goes to
        ``into`` (a group such as requantize's ``in(...)``) or to the op's own clauses."""
        name = f"%a{len(self.arrays)}"
        element = formats.name_of_numpy_dtype(array.dtype)
        self.arrays.append(array)
        self.arguments.append(f"{name}: {_tensor(array.shape, element)}")
        text = f"{keyword}({name} : {_tensor(array.shape, element)})"
        (self.clauses if into is None else into).append(text)

    def parameters(
        self,
        scale: Any,
        zero_point: Any,
        gran: _Granularity,
        storage: str,
        prefix: str = "",
        into: list[str] | None = None,
    ) -> None:
        """The scale and optional zero point of one quantization step (arguments named
        ``{prefix}scale`` / ``{prefix}zero_point``); float storage takes no zero point."""
        if zero_point is not None and storage in formats.FLOAT_STORAGE_NAMES:
            raise ValueError(f"{prefix}zero_point must be None for float storage {storage}")
        shape = gran.param_shape
        self.operand("scale", _param(scale, f"{prefix}scale", shape, "f32", _SCALE_NAMES), into)
        if zero_point is not None:
            zp = _param(zero_point, f"{prefix}zero_point", shape, storage, _STORAGE_NAMES)
            self.operand("zero_point", zp, into)

    def clause(self, text: str) -> None:
        if text:
            self.clauses.append(text)

    def run(
        self,
        result_types: Sequence[str],
        pack_first: tuple[tuple[int, ...], str] | None = None,
        out: np.ndarray | Sequence[np.ndarray] | None = None,
    ) -> Any:
        """Compile (once per signature) and call; ``out`` receives the result in place."""
        results = ", ".join(result_types)
        names = [f"%r{i}" for i in range(len(result_types))]
        returned, returned_types = list(names), list(result_types)
        lines = list(self.prologue)
        lines.append(
            f"{', '.join(names)} = quant.{self.op} {self.source} {' '.join(self.clauses)} : "
            f"{self.input_type} -> {results}"
        )
        bytes_shape: tuple[int, ...] | None = None
        if pack_first is not None:
            shape, element = pack_first
            bytes_shape = _packed_shape(shape, element)
            bytes_type = _tensor(bytes_shape, "ui8")
            lines.append(f"%p = quant.pack %r0 : {result_types[0]} -> {bytes_type}")
            returned[0], returned_types[0] = "%p", bytes_type
        lines.append(f"func.return {', '.join(returned)} : {', '.join(returned_types)}")
        key = (tuple(self.arguments), tuple(lines))

        def build() -> str:
            body = "".join(f"  {line}\n" for line in lines)
            return (
                f"func.func @main({', '.join(self.arguments)}) -> "
                f"({', '.join(returned_types)}) {{\n{body}}}\n"
            )

        if bytes_shape is not None and out is not None:
            out = _bytes_view(out, bytes_shape)
        try:
            results = _kernel_for(key, build)(*self.arrays, out=out)
        except QuantDiagnostic as diagnostic:
            raise ValueError(diagnostic.message) from None
        if bytes_shape is None:
            return results
        if isinstance(results, tuple):
            return (results[0].reshape(-1), *results[1:])
        return results.reshape(-1)


def _bytes_view(out: Any, bytes_shape: tuple[int, ...]) -> Any:
    """``out`` (or its first array) holding packed bytes, seen in the kernel's shape."""
    first = out[0] if isinstance(out, tuple | list) else out
    size = int(np.prod(bytes_shape))
    if not isinstance(first, np.ndarray) or first.size != size or not first.flags.c_contiguous:
        raise ValueError(f"out: the packed result needs a C-contiguous uint8 array of {size} bytes")
    view = first.reshape(bytes_shape)  # a view: C-contiguous
    return (view, *out[1:]) if isinstance(out, tuple | list) else view


def _packing(packed: Any, shape: tuple[int, ...], storage: str) -> tuple | None:
    """The ``pack_first`` argument of :meth:`_Call.run` for a ``packed=`` keyword."""
    if not _bool(packed, "packed"):
        return None
    if formats.bit_width(formats.parse_type_name(storage)) not in (2, 4):
        raise ValueError(f"packed=True needs a 4-bit or 2-bit dtype, got {storage}")
    return shape, storage


def _rounding_clause(rounding: Any) -> str:
    modes = ("nearest_even", "nearest_away", "half_up", "toward_zero")
    if rounding not in modes:
        raise ValueError(f"rounding must be one of {', '.join(modes)}, got {rounding!r}")
    return "" if rounding == "nearest_even" else f"rounding({rounding})"


def _bool(value: Any, argument: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{argument} must be a bool, got {value!r}")
    return bool(value)


# --- the ops -----------------------------------------------------------------------------


def quantize(
    x: np.ndarray,
    scale: Any,
    zero_point: Any = None,
    *,
    dtype: Any,
    axis: int | None = None,
    block_size: int | None = None,
    block_shape: Sequence[int] | None = None,
    saturate: bool = True,
    rounding: str = "nearest_even",
    packed: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``q = clamp(round(x / scale) + zero_point, qmin, qmax)``; float storage
    ``cast_rne(x / scale)`` (SPEC section 3). Returns an array of ``dtype``, or with
    ``packed=True`` (4-bit and 2-bit types) the flat uint8 bytes of the codes."""
    x, x_type = _array(x, "x", _EXPRESSED_NAMES)
    storage = _dtype_name(dtype, "dtype", _STORAGE_NAMES)
    gran = _granularity(
        x.shape,
        axis=axis,
        block_size=block_size,
        block_shape=block_shape,
        param=scale,
        default_axis=-1,
    )
    call = _Call("quantize", x, x_type)
    call.parameters(scale, zero_point, gran, storage)
    call.clause(gran.clause)
    call.clause(_rounding_clause(rounding))
    call.clause("" if _bool(saturate, "saturate") else "saturate(false)")
    return call.run([_tensor(x.shape, storage)], _packing(packed, x.shape, storage), out=out)


def dequantize(
    q: np.ndarray,
    scale: Any,
    zero_point: Any = None,
    *,
    axis: int | None = None,
    block_size: int | None = None,
    block_shape: Sequence[int] | None = None,
    dtype: Any = "f32",
    double_quant_scale: Any = None,
    storage_dtype: Any = None,
    shape: Sequence[int] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``x = (q - zero_point) * scale`` in f32, rounded to ``dtype`` (f32, f16, bf16).

    ``double_quant_scale`` multiplies the (e.g. NVFP4 e4m3) block scale: ``q * (s * dq)``.
    Packed input: ``q`` is the uint8 bytes of 4-bit / 2-bit codes, ``storage_dtype`` their
    type and ``shape`` the shape of the codes; the unpacking fuses into the kernel.
    """
    packed_input = None
    if storage_dtype is not None or shape is not None:
        if storage_dtype is None or shape is None:
            raise ValueError("packed input needs both storage_dtype and shape")
        storage = _dtype_name(storage_dtype, "storage_dtype", _STORAGE_NAMES)
        if formats.bit_width(formats.parse_type_name(storage)) not in (2, 4):
            raise ValueError(f"storage_dtype must be a 4-bit or 2-bit type, got {storage}")
        q, _ = _array(q, "q", ("ui8",))
        codes_shape = tuple(int(n) for n in shape)
        if q.ndim != 1 or q.size != _packed_size(codes_shape, storage):
            raise ValueError(
                f"q must hold {_packed_size(codes_shape, storage)} packed bytes as a 1-D "
                f"array for shape {codes_shape}, got shape {q.shape}"
            )
        packed_input = (codes_shape, storage)
    else:
        q, storage = _array(q, "q", _STORAGE_NAMES)
        codes_shape = q.shape
    return _dequantize(
        q, packed_input, storage, codes_shape, scale, zero_point, axis, block_size,
        block_shape, dtype, double_quant_scale, out,
    )  # fmt: skip


def _dequantize(
    q: np.ndarray,
    packed_input: tuple | None,
    storage: str,
    codes_shape: tuple[int, ...],
    scale: Any,
    zero_point: Any,
    axis: Any,
    block_size: Any,
    block_shape: Any,
    dtype: Any,
    double_quant_scale: Any,
    out: np.ndarray | None,
) -> np.ndarray:
    """The body of :func:`dequantize` once the input form (plain or packed) is known."""
    expressed = _dtype_name(dtype, "dtype", _EXPRESSED_NAMES)
    gran = _granularity(
        codes_shape,
        axis=axis,
        block_size=block_size,
        block_shape=block_shape,
        param=scale,
        default_axis=-1,
    )
    call = _Call("dequantize", q, storage, packed_input)
    call.parameters(scale, zero_point, gran, storage)
    if double_quant_scale is not None:
        call.operand(
            "double_quant",
            _param(double_quant_scale, "double_quant_scale", (), "f32", ("f32",)),
        )
    call.clause(gran.clause)
    return call.run([_tensor(codes_shape, expressed)], out=out)


def requantize(
    q: np.ndarray,
    in_scale: Any,
    in_zero_point: Any,
    out_scale: Any,
    out_zero_point: Any,
    *,
    axis: int | None = None,
    dtype: Any = None,
    rounding: str = "nearest_even",
    lowering: str | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``quantize(dequantize(q, in_*) as f32, out_*)`` bit for bit, in one kernel.

    Each side is per-tensor (scalar parameters) or per-axis on ``axis`` (1-D parameters),
    independently. ``lowering`` forces ``fused``, ``composite`` or ``lut``; all give the
    same bits (the default lets choose-quant-lowering decide).
    """
    q, storage = _array(q, "q", _STORAGE_NAMES)
    out_storage = storage if dtype is None else _dtype_name(dtype, "dtype", _STORAGE_NAMES)
    if lowering not in (None, "fused", "composite", "lut"):
        raise ValueError(f"lowering must be None, fused, composite or lut, got {lowering!r}")
    call = _Call("requantize", q, storage)
    for side, scale, zp, side_storage in (
        ("in", in_scale, in_zero_point, storage),
        ("out", out_scale, out_zero_point, out_storage),
    ):
        gran = _granularity(q.shape, axis=axis, block_size=None, block_shape=None, param=scale)
        group: list[str] = []
        call.parameters(scale, zp, gran, side_storage, f"{side}_", group)
        if gran.clause:
            group.append(gran.clause)
        call.clause(f"{side}({' '.join(group)})")
    call.clause(_rounding_clause(rounding))
    if lowering is not None:
        call.clause(f'{{lowering = "{lowering}"}}')
    return call.run([_tensor(q.shape, out_storage)], out=out)


def dynamic_quantize(
    x: np.ndarray,
    *,
    dtype: Any,
    scale_dtype: Any = "f32",
    axis: int = -1,
    block_size: int | None = None,
    block_shape: Sequence[int] | None = None,
    double_quant_scale: Any = None,
    symmetric: bool = True,
    scale_rounding: str = "floor",
    eps: float | None = None,
    packed: bool = False,
    out: Sequence[np.ndarray] | None = None,
) -> tuple[np.ndarray, ...]:
    """Per-block statistics, then quantize with the computed scale (SPEC section 3).

    Returns ``(data, scale)``, or ``(data, scale, zero_point)`` when not symmetric.
    NVFP4: ``dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16``; MX:
    ``scale_dtype="f8E8M0FNU", block_size=32`` with ``scale_rounding`` floor or rceil.
    ``packed=True`` returns the data of 4-bit / 2-bit types as flat uint8 bytes.
    ``out``: preallocated C-contiguous arrays for all the results, written in place.
    """
    if out is not None and not isinstance(out, tuple | list):
        raise TypeError(f"out must be a tuple of arrays, one per result, got {type(out).__name__}")
    x, x_type = _array(x, "x", _EXPRESSED_NAMES)
    storage = _dtype_name(dtype, "dtype", _STORAGE_NAMES)
    scale_type = _dtype_name(scale_dtype, "scale_dtype", _SCALE_NAMES)
    if scale_rounding not in ("floor", "rceil"):
        raise ValueError(f"scale_rounding must be floor or rceil, got {scale_rounding!r}")
    symmetric = _bool(symmetric, "symmetric")
    gran = _granularity(
        x.shape,
        axis=axis if block_size is not None else None,
        block_size=block_size,
        block_shape=block_shape,
        param=None,
        default_axis=-1,
    )
    call = _Call("dynamic_quantize", x, x_type)
    call.clause(gran.clause)
    if double_quant_scale is not None:
        call.operand(
            "double_quant", _param(double_quant_scale, "double_quant_scale", (), "f32", ("f32",))
        )
    if scale_type == "f8E8M0FNU" and scale_rounding != "floor":
        call.clause(f"scale_rounding({scale_rounding})")
    if not symmetric:
        call.clause("symmetric(false)")
    if eps is not None:
        if not isinstance(eps, int | float) or not eps > 0:
            raise ValueError(f"eps must be a number > 0, got {eps!r}")
        call.clause(f"eps({float(np.float32(eps))!r})")
    results = [_tensor(x.shape, storage), _tensor(gran.param_shape, scale_type)]
    if not symmetric:
        results.append(_tensor(gran.param_shape, storage))
    return tuple(call.run(results, _packing(packed, x.shape, storage), out=out))


def fake_quantize(
    x: np.ndarray,
    scale: Any = None,
    zero_point: Any = None,
    *,
    dtype: Any,
    axis: int | None = None,
    block_size: int | None = None,
    block_shape: Sequence[int] | None = None,
    per_token: bool = False,
    symmetric: bool = True,
    scale_dtype: Any = "f32",
    zero_point_domain: str = "int",
    eps: float | None = None,
    rounding: str = "nearest_even",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``dequantize(quantize(x))`` in one fused kernel, in ``x``'s dtype.

    Static when ``scale`` is given (``zero_point`` optional). Otherwise dynamic, with
    torchao ``FakeQuantizeConfig`` semantics: ``dtype`` the storage type, granularity
    ``per_token=True`` / per-channel ``axis`` / per-group ``block_size`` (on ``axis``,
    default the last) / ``block_shape``, ``symmetric``, ``scale_dtype`` (the precision the
    scale is rounded to: f32, f16, bf16), ``zero_point_domain`` ``"int"``, ``"float"`` or
    ``"none"``, and ``eps`` (the smallest scale).
    """
    x, x_type = _array(x, "x", _EXPRESSED_NAMES)
    storage = _dtype_name(dtype, "dtype", _STORAGE_NAMES)
    scale_type = _dtype_name(scale_dtype, "scale_dtype", ("f32", "f16", "bf16"))
    if zero_point_domain not in ("int", "float", "none"):
        raise ValueError(f"zero_point_domain must be int, float or none, got {zero_point_domain!r}")
    if _bool(per_token, "per_token"):
        if block_size is not None or block_shape is not None:
            raise ValueError("per_token excludes block_size and block_shape")
        if x.ndim == 0:
            raise ValueError("per_token needs an array of rank >= 1")
        block_shape = [1] * (x.ndim - 1) + [-1]
    dynamic = scale is None
    if dynamic and zero_point is not None:
        raise ValueError("zero_point needs a scale (dynamic fake quantization computes both)")
    gran = _granularity(
        x.shape,
        axis=axis,
        block_size=block_size,
        block_shape=block_shape,
        param=np.empty(1) if dynamic and axis is not None else scale,
        default_axis=-1,
    )
    call = _Call("fake_quantize", x, x_type)
    call.clause(f"storage({storage})")
    if not dynamic:
        call.parameters(scale, zero_point, gran, storage)
    call.clause(gran.clause)
    call.clause(_rounding_clause(rounding))
    call.clause("" if _bool(symmetric, "symmetric") else "symmetric(false)")
    if eps is not None:
        if not isinstance(eps, int | float) or not eps > 0:
            raise ValueError(f"eps must be a number > 0, got {eps!r}")
        call.clause(f"eps({float(np.float32(eps))!r})")
    call.clause("" if scale_type == "f32" else f"scale_type({scale_type})")
    call.clause("" if zero_point_domain == "int" else f"zero_point_domain({zero_point_domain})")
    return call.run([_tensor(x.shape, x_type)], out=out)


def compile(module_or_text: Any, *, target: str = "cpu", arch: str | None = None) -> Any:
    """Compile quant-dialect (or already lowered) IR; returns the kernel of its function.

    ``module_or_text`` is MLIR text or an xDSL ``ModuleOp``. Quant ops are lowered with the
    pipeline of ``qopt --lower-quant``. ``target="cpu"`` JIT-compiles for this host;
    ``target="ptx"`` builds PTX for ``arch`` (default sm_90) and returns a GPU kernel.
    With several functions, the compiled module is returned (index it by name).
    """
    from xdsl.dialects.builtin import ModuleOp

    if target not in ("cpu", "ptx"):
        raise ValueError(f"target must be 'cpu' or 'ptx', got {target!r}")
    if arch is not None and target != "ptx":
        raise ValueError("arch applies to target='ptx' only")
    if isinstance(module_or_text, str):
        try:
            module = parse_module(module_or_text, "<compile>")
            verify_module(module)
        except QuantDiagnostic as diagnostic:
            raise ValueError(str(diagnostic)) from None
    elif isinstance(module_or_text, ModuleOp):
        module = module_or_text.clone()
    else:
        raise TypeError(
            f"module_or_text must be MLIR text or an xDSL ModuleOp, got "
            f"{type(module_or_text).__name__}"
        )
    try:
        _lower(module)
    except QuantDiagnostic as diagnostic:
        raise ValueError(str(diagnostic)) from None
    if target == "ptx":
        from codegen.ptx import compile_ptx

        return compile_ptx(module, arch=arch or "sm_90")
    from codegen.jit import compile_module

    compiled = compile_module(module)
    names = list(compiled)
    return compiled[names[0]] if len(names) == 1 else compiled
