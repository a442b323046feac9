"""The Python API of SPEC.md section 5: one path from quant IR to machine code.

Each entry point (``quantize``, ``dequantize``, ``requantize``, ``dynamic_quantize``,
``fake_quantize``) validates its arguments, writes a one-op quant-dialect function for the
request, runs the same pipeline as ``qopt --lower-quant``, JIT-compiles the lowered module
(codegen.jit, cached) and calls the kernel. There is no numpy fallback: numpy only holds
the arrays.

Inputs. Arrays are numpy arrays, torch tensors, or any other DLPack / ``__array__``
producer on the CPU; they are read in place (``np.from_dlpack``, no copy). Results come
back as the kind of the first argument: torch in, torch out (``torch.from_dlpack``, no
copy), numpy otherwise. A torch result of a type torch lacks holds the values one per
byte: int8 / uint8 for i4, ui4, i2, ui2, and uint8 codes for f4E2M1FN (``packed=True``
gives the packed bytes). Dtypes are MLIR spellings (``"i8"``, ``"f8E4M3FN"``), numpy /
ml_dtypes dtypes or their names (``"int8"``, ``"float8_e4m3fn"``, ``"bfloat16"``), or
torch dtypes (``torch.int8``, ``torch.float8_e4m3fn``).

Parameters are checked in the precision the kernel uses. Scales are Python or numpy
numbers, or arrays of any real dtype: f32 / f16 / bf16 / f8E4M3FN / f8E8M0FNU arrays keep
their format; anything else (float64, integers, a Python float) is rounded to the
nearest float32, like ``np.float32(s)``, and a scale that is then not finite and > 0
(``1e40`` becomes inf, ``1e-50`` becomes 0) is rejected naming the argument. Zero points
are integers or integer-valued numbers or arrays of any width, range-checked against the
storage type; a scalar zero point broadcasts to the scale's shape. ``eps`` and
``double_quant_scale`` are checked as float32 values too.

Errors (codegen/errors.py): a ``TypeError`` or ``ValueError`` naming the argument for
misuse; :class:`qopt.errors.QuantError` (a ``ValueError`` with a ``location``) for IR
that does not parse, verify, lower or translate. Nothing else escapes on bad input.

Parameters are always runtime operands of the kernel (a Python number becomes a 0-d
array), so one compiled kernel serves every scale and zero point of a given signature.
Kernels are memoized by that signature in a bounded LRU table (:data:`DEFAULT_KERNEL_CACHE_SIZE`
entries, ``QOPT_API_CACHE_SIZE`` or :func:`set_kernel_cache_size` to change it); an evicted
kernel is only dropped here, so codegen.jit's own LRU can free its engine.
:func:`clear_kernel_cache` forgets every compiled kernel.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from qopt.errors import QuantError
from qopt.ir.diagnostics import Diagnostic, verify_module
from qopt.qdialect import formats
from qopt.qdialect.attrs import BlockAttr, PerAxisAttr, PerBlockAttr
from qopt.qdialect.context import parse_module

__all__ = [
    "DEFAULT_KERNEL_CACHE_SIZE",
    "QuantError",
    "clear_kernel_cache",
    "compile",
    "dequantize",
    "dynamic_quantize",
    "fake_quantize",
    "kernel_cache_size",
    "quantize",
    "requantize",
    "set_kernel_cache_size",
]

_STORAGE_NAMES = tuple(
    ["i8", "ui8", "i16", "ui16", "i4", "ui4", "i2", "ui2"] + sorted(formats.FLOAT_STORAGE_NAMES)
)
_EXPRESSED_NAMES = ("f32", "f16", "bf16")
_SCALE_NAMES = ("f32", "f16", "bf16", "f8E4M3FN", "f8E8M0FNU")
_F32 = np.dtype(np.float32)


# --- inputs: numpy arrays, torch tensors, DLPack and __array__ producers --------------------

# torch dtypes numpy cannot exchange by DLPack: read and written through an integer view.
_TORCH_BITS_VIEWS = {
    "bfloat16": ("int16", ml_dtypes.bfloat16),
    "float8_e4m3fn": ("uint8", ml_dtypes.float8_e4m3fn),
    "float8_e5m2": ("uint8", ml_dtypes.float8_e5m2),
    "float8_e8m0fnu": ("uint8", ml_dtypes.float8_e8m0fnu),
}


def _torch_of(value: Any) -> Any | None:
    """The torch module when ``value`` is a torch tensor (torch is never imported here)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return torch
    return None


def _from_torch(tensor: Any, argument: str) -> np.ndarray:
    """A numpy view of a CPU tensor's memory (no copy)."""
    if tensor.device.type != "cpu":
        raise ValueError(f"{argument} must be a CPU tensor, got one on {tensor.device}")
    tensor = tensor.detach()
    name = str(tensor.dtype).removeprefix("torch.")
    if name in _TORCH_BITS_VIEWS:
        bits, dtype = _TORCH_BITS_VIEWS[name]
        torch = _torch_of(tensor)
        return np.from_dlpack(tensor.view(getattr(torch, bits))).view(dtype)
    try:
        return np.from_dlpack(tensor)
    except (BufferError, RuntimeError, TypeError) as err:
        raise TypeError(
            f"{argument}: torch dtype {tensor.dtype} is not supported ({err})"
        ) from None


def _to_torch(torch: Any, array: np.ndarray) -> Any:
    """``array`` as a torch tensor sharing its memory (sub-byte types: values, one a byte)."""
    name = array.dtype.name
    if name in _TORCH_BITS_VIEWS:
        bits, _ = _TORCH_BITS_VIEWS[name]
        return torch.from_dlpack(array.view(bits)).view(getattr(torch, name))
    if name in ("int4", "int2"):
        array = array.astype(np.int8)
    elif name in ("uint4", "uint2"):
        array = array.astype(np.uint8)
    elif name == "float4_e2m1fn":
        array = array.view(np.uint8)
    return torch.from_dlpack(array)


def _as_numpy(value: Any, argument: str) -> np.ndarray:
    """An array argument as a numpy array, reading other producers' memory in place."""
    if isinstance(value, np.ndarray):
        return value
    if _torch_of(value) is not None:
        return _from_torch(value, argument)
    if hasattr(value, "__dlpack__"):
        try:
            return np.from_dlpack(value)
        except (BufferError, RuntimeError, TypeError, ValueError) as err:
            if not hasattr(value, "__array__"):
                raise TypeError(f"{argument}: cannot read it through DLPack ({err})") from None
    if hasattr(value, "__array__") and not isinstance(value, np.generic):
        return np.asarray(value)
    raise TypeError(
        f"{argument} must be a numpy array, a torch tensor or another DLPack / __array__ "
        f"producer, got {type(value).__name__}"
    )


def _returns_like_input(function: Callable[..., Any]) -> Callable[..., Any]:
    """Torch in, torch out: results (or the given ``out`` tensors) in the kind of the first
    argument; numpy for every other kind."""

    @functools.wraps(function)
    def wrapper(x: Any, *args: Any, out: Any = None, **kwargs: Any) -> Any:
        torch = _torch_of(x)
        if torch is None:
            return function(x, *args, out=out, **kwargs)
        if out is None:
            results = function(x, *args, **kwargs)
            if isinstance(results, tuple):
                return tuple(_to_torch(torch, r) for r in results)
            return _to_torch(torch, results)
        if isinstance(out, tuple | list):
            views = type(out)(_as_numpy(o, f"out[{k}]") for k, o in enumerate(out))
        else:
            views = _as_numpy(out, "out")
        function(x, *args, out=views, **kwargs)
        return tuple(out) if isinstance(out, tuple | list) else out

    return wrapper


# --- argument checking -----------------------------------------------------------------


def _dtype_name(value: Any, argument: str, allowed: Sequence[str]) -> str:
    """The MLIR spelling of a dtype given as an MLIR spelling, a numpy / ml_dtypes dtype or
    its name (``"int8"``, ``"bfloat16"``), or a torch dtype."""
    name = None
    if isinstance(value, str):
        name = value if value in allowed else _name_of_numpy_name(value)
    elif type(value).__module__ == "torch" and type(value).__name__ == "dtype":
        name = _name_of_numpy_name(str(value).removeprefix("torch."))
    else:
        try:
            name = formats.name_of_numpy_dtype(np.dtype(value))
        except (TypeError, ValueError):
            raise TypeError(
                f"{argument} must be a dtype or one of {', '.join(allowed)}, got {value!r}"
            ) from None
    if name not in allowed:
        hint = (
            " (packed pairs: give the element type and packed=True)" if "_x2" in str(value) else ""
        )
        raise ValueError(
            f"{argument} must be one of {', '.join(allowed)} (or the numpy / ml_dtypes / "
            f"torch dtype of one), got {value!r}{hint}"
        )
    return name


def _name_of_numpy_name(text: str) -> str | None:
    """The MLIR spelling of a numpy / ml_dtypes dtype *name* (not a char code like "i8")."""
    try:
        dtype = np.dtype(text)
    except TypeError:
        return None
    if dtype.name != text:
        return None
    try:
        return formats.name_of_numpy_dtype(dtype)
    except ValueError:
        return None


def _array(value: Any, argument: str, allowed: Sequence[str]) -> tuple[np.ndarray, str]:
    array = _as_numpy(value, argument)
    return array, _dtype_name(array.dtype, f"{argument}.dtype", allowed)


def _int(value: Any, argument: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{argument} must be an int, got {value!r}")
    return int(value)


def _axis(axis: Any, rank: int, argument: str = "axis") -> int:
    a = _int(axis, argument)
    if not -rank <= a < rank:
        raise ValueError(f"{argument} {a} is out of range for an array of rank {rank}")
    return a % rank


def _ints(values: Any, argument: str) -> list[int]:
    """A sequence of ints (``block_shape``, ``shape``): a float entry is a TypeError."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(f"{argument} must be a sequence of ints, got {values!r}")
    return [_int(v, f"{argument}[{k}]") for k, v in enumerate(values)]


def _is_real_number(value: Any) -> bool:
    """A Python int / float or a real numpy / ml_dtypes scalar (not a bool)."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, np.generic) and _is_real_dtype(value.dtype)


def _is_real_dtype(dtype: np.dtype) -> bool:
    if dtype.kind in "iuf":
        return True
    try:
        return formats.name_of_numpy_dtype(dtype) is not None  # ml_dtypes formats
    except ValueError:
        return False


def _param_array(value: Any, argument: str) -> np.ndarray:
    """A scale / zero-point argument as a numpy array (a number becomes a 0-d array)."""
    if _is_real_number(value):
        if isinstance(value, int) and not isinstance(value, np.generic):
            return np.asarray(value, dtype=object) if abs(value) >= 2**63 else np.asarray(value)
        return np.asarray(value)
    if isinstance(value, bool | np.bool_) or value is None or isinstance(value, str | bytes):
        raise TypeError(f"{argument} must be a number or an array, got {value!r}")
    try:
        array = _as_numpy(value, argument)
    except TypeError:
        raise TypeError(f"{argument} must be a number or an array, got {value!r}") from None
    if not _is_real_dtype(array.dtype):
        raise TypeError(f"{argument} must hold real numbers, got dtype {array.dtype}")
    return array


def _first_bad(array: np.ndarray, good: np.ndarray) -> Any:
    index = np.argwhere(~good)[0] if array.ndim else ()
    return array[tuple(index)]


def _scale(
    value: Any, argument: str, shape: tuple[int, ...] | None, keep: bool = True
) -> np.ndarray:
    """A scale as the kernel reads it: f32 / f16 / bf16 / f8E4M3FN / f8E8M0FNU arrays keep
    their format (``keep``), anything else is rounded to the nearest float32; the result
    must be finite and > 0 in that format. ``shape`` None: any shape."""
    original = _param_array(value, argument)
    if original.dtype == object:
        original = original.astype(np.float64)
    array = original
    name = formats.name_of_numpy_dtype(array.dtype) if _is_real_dtype(array.dtype) else None
    if not (keep and name in _SCALE_NAMES):
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            array = array.astype(_F32, order="C")
    if array.size == 1 and shape == () and array.shape != ():
        array, original = array.reshape(()), original.reshape(())
    if shape is not None and array.shape != shape:
        raise ValueError(f"{argument} has shape {array.shape}, expected {shape}")
    wide = array.astype(np.float64)
    good = np.isfinite(wide) & (wide > 0)
    if not np.all(good):
        bad = _first_bad(original, good)
        was = float(np.asarray(bad).astype(np.float64))
        if math.isfinite(was) and was > 0:
            became = "inf" if wide[~good].flat[0] > 0 else "0"
            raise ValueError(
                f"{argument} {was!r} is not a usable scale: it becomes {became} in "
                f"{array.dtype.name}, the precision the kernel uses (finite and > 0 needed)"
            )
        raise ValueError(f"{argument} must be finite and > 0, got {was!r}")
    return array


def _zero_point(value: Any, argument: str, shape: tuple[int, ...], storage: str) -> np.ndarray:
    """A zero point as an array of the storage type: integer-valued numbers of any width,
    range-checked; a 0-d zero point broadcasts to ``shape`` (the scale's shape)."""
    array = _param_array(value, argument)
    lo, hi = formats.integer_range(formats.parse_type_name(storage))
    if array.size:
        if array.dtype.kind in "iuO":
            smallest, largest = int(array.min()), int(array.max())
        else:
            wide = array.astype(np.float64)
            if not (np.all(np.isfinite(wide)) and np.all(np.round(wide) == wide)):
                raise ValueError(f"{argument} values must be integers, got {array!r}")
            smallest, largest = float(wide.min()), float(wide.max())
        if smallest < lo or largest > hi:
            bad = smallest if smallest < lo else largest
            raise ValueError(
                f"{argument} values must be integers in [{lo}, {hi}] for {storage}, got {bad}"
            )
    target = formats.numpy_dtype(storage)
    if array.dtype != target:
        if array.dtype.kind not in "iu":
            array = array.astype(np.float64)
        array = array.astype(target, order="C")
    if array.ndim == 0 and shape != ():
        array = np.broadcast_to(array, shape).copy()
    elif array.size == 1 and shape == ():
        array = array.reshape(())
    if array.shape != shape:
        raise ValueError(f"{argument} has shape {array.shape}, expected {shape}")
    return array


def _positive_f32(value: Any, argument: str) -> float:
    """A scalar option (``eps``, ``double_quant_scale``) as the float32 the kernel uses:
    a real number or a 0-d array (numpy, torch, ...), finite and > 0 as a float32."""
    try:
        array = _param_array(value, argument)
    except TypeError:
        raise TypeError(f"{argument} must be a real number, got {value!r}") from None
    if array.size != 1:
        raise ValueError(f"{argument} must be a single number, got shape {array.shape}")
    return float(_scale(array.reshape(()), argument, (), keep=False))


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
    per_axis: bool,
) -> _Granularity:
    """SPEC section 5: block_shape -> N-D block; block_size -> per-block along axis (default
    the last); ``per_axis`` (the caller's rule: axis and a 1-D parameter, or axis alone for
    the dynamic ops) -> per-axis; none -> per-tensor. ``axis`` is range-checked always."""
    rank = len(shape)
    if block_shape is not None:
        if block_size is not None:
            raise ValueError("give block_shape or block_size, not both")
        if axis is not None:
            raise ValueError("axis does not apply with block_shape (it names every dimension)")
        blocks = _ints(block_shape, "block_shape")
        if len(blocks) != rank or any(b < 1 and b != -1 for b in blocks):
            raise ValueError(
                f"block_shape must have one entry >= 1 or -1 per dimension ({rank}), got {blocks}"
            )
        attr = BlockAttr(blocks)
        return _Granularity(f"block([{', '.join(map(str, blocks))}])", attr.param_shape(shape))
    if block_size is not None:
        size = _int(block_size, "block_size")
        if size < 1:
            raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")
        if rank == 0:
            raise ValueError("block_size needs an array of rank >= 1")
        a = _axis(-1 if axis is None else axis, rank)
        attr = PerBlockAttr(a, size)
        return _Granularity(f"per_block({a}, {size})", attr.param_shape(shape))
    if axis is None:
        return _Granularity("", ())
    a = _axis(axis, rank)
    if per_axis:
        return _Granularity(f"per_axis({a})", PerAxisAttr(a).param_shape(shape))
    return _Granularity("", ())


def _tensor(shape: Sequence[int], element: str) -> str:
    return f"tensor<{''.join(f'{n}x' for n in shape)}{element}>"


# --- compile and run ---------------------------------------------------------------------

DEFAULT_KERNEL_CACHE_SIZE = 128
"""Compiled kernels the API keeps (about 1 MB each); ``QOPT_API_CACHE_SIZE`` overrides it."""

KERNEL_CACHE_SIZE_ENV = "QOPT_API_CACHE_SIZE"


class _KernelTable:
    """The API's compiled kernels by request signature: a thread-safe bounded LRU.

    Evicting a kernel only drops this table's reference; codegen.jit's own LRU of compiled
    modules decides when the engine itself is freed.
    """

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple, Callable[..., Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity: int | None = None  # read from the environment at first use

    @property
    def capacity(self) -> int:
        if self._capacity is None:
            text = os.environ.get(KERNEL_CACHE_SIZE_ENV)
            if text is None:
                self._capacity = DEFAULT_KERNEL_CACHE_SIZE
            else:
                try:
                    self._capacity = _cache_size(int(text), KERNEL_CACHE_SIZE_ENV)
                except ValueError:
                    raise ValueError(
                        f"{KERNEL_CACHE_SIZE_ENV} must be an int >= 0, got {text!r}"
                    ) from None
        return self._capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        with self._lock:
            self._capacity = value
            self._trim()

    def get(self, key: tuple) -> Callable[..., Any] | None:
        with self._lock:
            kernel = self._entries.get(key)
            if kernel is not None:
                self._entries.move_to_end(key)
            return kernel

    def __setitem__(self, key: tuple, kernel: Callable[..., Any]) -> None:
        capacity = self.capacity
        with self._lock:
            if capacity:
                self._entries[key] = kernel
                self._entries.move_to_end(key)
            self._trim()

    def _trim(self) -> None:
        while len(self._entries) > (self._capacity or 0):
            self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_KERNELS = _KernelTable()


def _cache_size(value: Any, argument: str) -> int:
    size = _int(value, argument)
    if size < 0:
        raise ValueError(f"{argument} must be an int >= 0, got {value!r}")
    return size


def set_kernel_cache_size(size: int) -> None:
    """Keep at most ``size`` compiled API kernels (0: keep none); the least recently used
    ones beyond it are dropped now."""
    _KERNELS.capacity = _cache_size(size, "size")


def kernel_cache_size() -> tuple[int, int]:
    """``(kernels held, bound)`` of the API's kernel table."""
    return len(_KERNELS), _KERNELS.capacity


def clear_kernel_cache() -> None:
    """Forget every compiled kernel: the API's table and codegen.jit's compiled modules."""
    from qopt.codegen.jit import clear_cache

    _KERNELS.clear()
    clear_cache()


def _lower(module: Any) -> Any:
    """The pipeline of ``qopt --lower-quant`` (lower-quant runs the lowering choice)."""
    from qopt.passes.lower_quant import LowerQuantPass
    from qopt.qdialect.context import make_context

    LowerQuantPass().apply(make_context(), module)
    verify_module(module)
    return module


def _kernel_for(key: tuple, build_ir: Callable[[], str]) -> Callable[..., Any]:
    """The compiled kernel of a request signature, building and compiling it once."""
    kernel = _KERNELS.get(key)
    if kernel is None:
        from qopt.codegen.jit import compile_module
        from qopt.codegen.translate import TranslationError

        try:
            module = parse_module(build_ir(), "<api>")
            verify_module(module)
            kernel = compile_module(_lower(module))["main"]
        except Diagnostic as diagnostic:
            raise QuantError(diagnostic.message) from None
        except TranslationError as err:
            raise QuantError(str(err)) from None
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
        self.operand("scale", _scale(scale, f"{prefix}scale", shape), into)
        if zero_point is not None:
            self.operand(
                "zero_point", _zero_point(zero_point, f"{prefix}zero_point", shape, storage), into
            )

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
            if math.prod(bytes_shape) == 0:  # no codes: nothing to pack
                return self._run_without_codes(result_types, shape, element, out)
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
        results = _kernel_for(key, build)(*self.arrays, out=out)
        if bytes_shape is None:
            return results
        if isinstance(results, tuple):
            return (results[0].reshape(-1), *results[1:])
        return results.reshape(-1)

    def _run_without_codes(
        self, result_types: Sequence[str], shape: tuple[int, ...], element: str, out: Any
    ) -> Any:
        """A packed request of zero codes: the kernel without the pack (which has no bytes
        to write), then the empty byte array in its place."""
        first = np.empty(0, np.uint8)
        if out is not None:
            _bytes_view(out, (0,))  # checks the size and layout
            first = out[0] if isinstance(out, tuple | list) else out
            if first.dtype != np.uint8:
                raise TypeError(f"out: the packed result needs a uint8 array, got {first.dtype}")
            codes = np.empty(shape, formats.numpy_dtype(element))
            out = (codes, *out[1:]) if isinstance(out, tuple | list) else None
        results = self.run(result_types, out=out)
        return (first, *results[1:]) if isinstance(results, tuple) else first


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


@_returns_like_input
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
    ``packed=True`` (4-bit and 2-bit types) the flat uint8 bytes of the codes.

    Granularity: ``block_shape`` -> N-D block; ``block_size`` -> per-block along ``axis``
    (default the last); ``axis`` and a 1-D scale -> per-axis (one scale per index of
    ``axis``); otherwise per-tensor. ``saturate=False`` applies to float storage only.
    """
    x, x_type = _array(x, "x", _EXPRESSED_NAMES)
    storage = _dtype_name(dtype, "dtype", _STORAGE_NAMES)
    scale = _param_array(scale, "scale")
    gran = _granularity(
        x.shape,
        axis=axis,
        block_size=block_size,
        block_shape=block_shape,
        per_axis=scale.ndim == 1,
    )
    if not _bool(saturate, "saturate") and storage not in formats.FLOAT_STORAGE_NAMES:
        raise ValueError(f"saturate=False applies to float storage only, dtype is {storage}")
    call = _Call("quantize", x, x_type)
    call.parameters(scale, zero_point, gran, storage)
    call.clause(gran.clause)
    call.clause(_rounding_clause(rounding))
    call.clause("" if saturate else "saturate(false)")
    return call.run([_tensor(x.shape, storage)], _packing(packed, x.shape, storage), out=out)


@_returns_like_input
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

    Granularity as for :func:`quantize`.
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
        codes_shape = tuple(_ints(shape, "shape"))
        if any(n < 0 for n in codes_shape):
            raise ValueError(f"shape must have sizes >= 0, got {codes_shape}")
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
    scale = _param_array(scale, "scale")
    gran = _granularity(
        codes_shape,
        axis=axis,
        block_size=block_size,
        block_shape=block_shape,
        per_axis=scale.ndim == 1,
    )
    call = _Call("dequantize", q, storage, packed_input)
    call.parameters(scale, zero_point, gran, storage)
    if double_quant_scale is not None:
        call.operand("double_quant", _double_quant(double_quant_scale))
    call.clause(gran.clause)
    return call.run([_tensor(codes_shape, expressed)], out=out)


def _double_quant(value: Any) -> np.ndarray:
    """The double-quant scalar as the f32 0-d operand the kernel reads."""
    return np.asarray(_positive_f32(value, "double_quant_scale"), dtype=_F32)


@_returns_like_input
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

    Each side is per-tensor (scalar scale) or per-axis on ``axis`` (1-D scale),
    independently; a scalar zero point broadcasts to its side's scale. ``lowering`` forces
    ``fused``, ``composite`` or ``lut``; all give the same bits (the default lets
    choose-quant-lowering decide).
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
        scale = _param_array(scale, f"{side}_scale")
        gran = _granularity(
            q.shape, axis=axis, block_size=None, block_shape=None, per_axis=scale.ndim == 1
        )
        group: list[str] = []
        call.parameters(scale, zp, gran, side_storage, f"{side}_", group)
        if gran.clause:
            group.append(gran.clause)
        call.clause(f"{side}({' '.join(group)})")
    call.clause(_rounding_clause(rounding))
    if lowering is not None:
        call.clause(f'{{lowering = "{lowering}"}}')
    return call.run([_tensor(q.shape, out_storage)], out=out)


@_returns_like_input
def dynamic_quantize(
    x: np.ndarray,
    *,
    dtype: Any,
    scale_dtype: Any = "f32",
    axis: int | None = None,
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
    Granularity: ``block_shape`` -> N-D block; ``block_size`` -> per-block along ``axis``
    (default the last axis); ``axis`` alone -> per-channel: one scale per index of
    ``axis`` (statistics over every other dimension, a 1-D scale of ``x.shape[axis]``
    entries, the per-axis form ``quantize`` and ``dequantize`` take back); none of
    them -> per-tensor (a 0-d scale).
    NVFP4: ``dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16`` (``double_quant_scale``
    applies to f8E4M3FN scales only); MX: ``scale_dtype="f8E8M0FNU", block_size=32`` with
    ``scale_rounding`` floor or rceil (rceil applies to f8E8M0FNU scales only).
    ``symmetric=False`` needs integer storage. ``eps`` (the smallest scale) must be finite
    and > 0 as a float32.
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
    if scale_rounding != "floor" and scale_type != "f8E8M0FNU":
        raise ValueError(
            f"scale_rounding={scale_rounding!r} applies to f8E8M0FNU scales only, "
            f"scale_dtype is {scale_type}"
        )
    if scale_type in ("f8E4M3FN", "f8E8M0FNU") and storage not in formats.FLOAT_STORAGE_NAMES:
        raise ValueError(f"scale_dtype {scale_type} needs float storage, dtype is {storage}")
    if double_quant_scale is not None and scale_type != "f8E4M3FN":
        raise ValueError(
            f"double_quant_scale applies to f8E4M3FN scales (NVFP4) only, scale_dtype is "
            f"{scale_type}"
        )
    symmetric = _bool(symmetric, "symmetric")
    if not symmetric and storage in formats.FLOAT_STORAGE_NAMES:
        raise ValueError(f"symmetric=False needs integer storage, dtype is {storage}")
    gran = _granularity(
        x.shape, axis=axis, block_size=block_size, block_shape=block_shape, per_axis=True
    )
    call = _Call("dynamic_quantize", x, x_type)
    call.clause(gran.clause)
    if double_quant_scale is not None:
        call.operand("double_quant", _double_quant(double_quant_scale))
    if scale_rounding != "floor":
        call.clause(f"scale_rounding({scale_rounding})")
    if not symmetric:
        call.clause("symmetric(false)")
    if eps is not None:
        call.clause(f"eps({_positive_f32(eps, 'eps')!r})")
    results = [_tensor(x.shape, storage), _tensor(gran.param_shape, scale_type)]
    if not symmetric:
        results.append(_tensor(gran.param_shape, storage))
    return tuple(call.run(results, _packing(packed, x.shape, storage), out=out))


@_returns_like_input
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

    Static when ``scale`` is given (``zero_point`` optional; granularity as for
    :func:`quantize`). Otherwise dynamic, with torchao ``FakeQuantizeConfig`` semantics:
    ``dtype`` the storage type, granularity ``per_token=True`` / per-channel ``axis`` /
    per-group ``block_size`` (on ``axis``, default the last) / ``block_shape``,
    ``symmetric``, ``scale_dtype`` (the precision the scale is rounded to: f32, f16, bf16),
    ``zero_point_domain`` ``"int"``, ``"float"`` or ``"none"``, and ``eps`` (the smallest
    scale). Those dynamic options are rejected with a static scale.
    """
    x, x_type = _array(x, "x", _EXPRESSED_NAMES)
    storage = _dtype_name(dtype, "dtype", _STORAGE_NAMES)
    scale_type = _dtype_name(scale_dtype, "scale_dtype", ("f32", "f16", "bf16"))
    if zero_point_domain not in ("int", "float", "none"):
        raise ValueError(f"zero_point_domain must be int, float or none, got {zero_point_domain!r}")
    symmetric = _bool(symmetric, "symmetric")
    if _bool(per_token, "per_token"):
        if block_size is not None or block_shape is not None or axis is not None:
            raise ValueError("per_token excludes axis, block_size and block_shape")
        if x.ndim == 0:
            raise ValueError("per_token needs an array of rank >= 1")
        block_shape = [1] * (x.ndim - 1) + [-1]
    dynamic = scale is None
    if dynamic and zero_point is not None:
        raise ValueError("zero_point needs a scale (dynamic fake quantization computes both)")
    if not dynamic:
        for name, value, default in (
            ("eps", eps, None),
            ("symmetric", symmetric, True),
            ("scale_dtype", scale_type, "f32"),
            ("zero_point_domain", zero_point_domain, "int"),
        ):
            if value != default:
                raise ValueError(f"{name} applies to dynamic fake quantization (scale=None) only")
        scale = _param_array(scale, "scale")
    gran = _granularity(
        x.shape,
        axis=axis,
        block_size=block_size,
        block_shape=block_shape,
        per_axis=dynamic or scale.ndim == 1,
    )
    call = _Call("fake_quantize", x, x_type)
    call.clause(f"storage({storage})")
    if not dynamic:
        call.parameters(scale, zero_point, gran, storage)
    call.clause(gran.clause)
    call.clause(_rounding_clause(rounding))
    call.clause("" if symmetric else "symmetric(false)")
    if eps is not None:
        call.clause(f"eps({_positive_f32(eps, 'eps')!r})")
    call.clause("" if scale_type == "f32" else f"scale_type({scale_type})")
    call.clause("" if zero_point_domain == "int" else f"zero_point_domain({zero_point_domain})")
    return call.run([_tensor(x.shape, x_type)], out=out)


# --- compile --------------------------------------------------------------------------------


def compile(module_or_text: Any, *, target: str = "cpu", arch: str | None = None) -> Any:
    """Compile quant-dialect (or already lowered) IR; returns the kernel of its function.

    ``module_or_text`` is MLIR text, a path (``os.PathLike``, or a one-line ``str`` naming
    an existing file or ending in ``.mlir``) to a file of it, or an xDSL ``ModuleOp``.
    Quant ops are lowered with the pipeline of ``qopt --lower-quant``. ``target="cpu"``
    JIT-compiles for this host; ``target="ptx"`` builds PTX for ``arch`` (default sm_90)
    and returns a GPU kernel. With several functions, the compiled module is returned
    (index it by name). IR that does not parse, verify, lower or translate raises
    :class:`QuantError` with its location (``file:line:col``).
    """
    from xdsl.dialects.builtin import ModuleOp
    from xdsl.utils.exceptions import DiagnosticException, ParseError

    from qopt.codegen.translate import TranslationError
    from qopt.ir.diagnostics import describe_location

    if target not in ("cpu", "ptx"):
        raise ValueError(f"target must be 'cpu' or 'ptx', got {target!r}")
    if arch is not None and target != "ptx":
        raise ValueError("arch applies to target='ptx' only")
    try:
        if isinstance(module_or_text, ModuleOp):
            module = module_or_text.clone()
        else:
            text, filename = _ir_text(module_or_text)
            module = parse_module(text, filename)
        verify_module(module)
        _lower(module)
        if target == "ptx":
            from qopt.codegen.ptx import compile_ptx

            return compile_ptx(module, arch=arch or "sm_90")
        from qopt.codegen.jit import compile_module

        compiled = compile_module(module)
    except Diagnostic as diagnostic:
        raise QuantError(diagnostic.message, diagnostic.location) from None
    except TranslationError as err:
        where = describe_location(err.op.location) if err.op is not None else None
        raise QuantError(err.reason, where) from None
    except (DiagnosticException, ParseError) as err:  # xDSL errors not located by qopt
        raise QuantError(str(err)) from None
    names = list(compiled)
    if not names:
        raise ValueError("module_or_text holds no func.func to compile")
    return compiled[names[0]] if len(names) == 1 else compiled


def _ir_text(source: Any) -> tuple[str, str]:
    """The IR text of ``compile``'s argument and the file name its locations use."""
    if isinstance(source, str):
        one_line = "\n" not in source
        if not (one_line and (source.endswith(".mlir") or os.path.isfile(source))):
            return source, "<compile>"
        path = source
    elif isinstance(source, os.PathLike):
        path = os.fspath(source)
        if not isinstance(path, str):
            path = os.fsdecode(path)
    else:
        raise TypeError(
            f"module_or_text must be MLIR text, a path to a .mlir file or an xDSL ModuleOp, "
            f"got {type(source).__name__}"
        )
    try:
        with open(path, encoding="utf-8") as file:
            return file.read(), path
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"module_or_text: cannot read the file {path!r} ({err})") from None
