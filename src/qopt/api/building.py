"""One API call as a one-op quant function: its signature, its IR, its kernel.

An entry point describes the request to an :class:`OpCall`: the op, the input, the
parameter arrays (runtime operands, named like the op's operands) and the options (the
op constructor's keywords). The *kind* of that description is the key of the kernel table:
the op, element types, ranks, options (granularity kind and block sizes, rounding, ...) -
never the extents, never the parameter values. Only when no kernel of the kind is cached
is the function built, with the ops' typed constructors, as ``qopt`` would parse it, every
dimension dynamic, so one kernel serves every shape (its extents are passed at call time):

    func.func @main(%x: tensor<?x?xf32>, %a1: tensor<f32>) -> tensor<?x?xi8> {
      %r0 = quant.quantize %x scale(%a1 : tensor<f32>) : tensor<?x?xf32> -> tensor<?x?xi8>
      func.return %r0 : tensor<?x?xi8>
    }

With packed input the function unpacks the bytes first (``%u = quant.unpack %x``); with
``pack_first`` it returns the first result packed (``%p = quant.pack %r0``). Both fuse with
the op in the lowering; the bytes are packed row by row (``tensor<?x?xui8>``, the last
dimension packed).

Where the kernel is specialised on the shape (static IR, the shape in the key), and why:

* packed codes whose last dimension does not fill whole bytes (or 0-d codes): the bytes
  then straddle rows, which takes the flat packing form with a constant element count;
* ``lowering="lut"`` requantize: its table has one row per channel, a static count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import DYNAMIC_INDEX, ModuleOp, StringAttr, TensorType
from xdsl.ir import Block, Region, SSAValue

from qopt.api.arrays import bytes_view
from qopt.api.compiling import compile_kernel
from qopt.api.dtypes import bit_width, element_type, is_float_storage
from qopt.api.kernel_cache import KERNELS
from qopt.api.params import Granularity, packed_size, scale_array, zero_point_array
from qopt.qdialect import formats
from qopt.qdialect.ops import PackOp, QuantOp, UnpackOp

Signature = tuple[tuple[int, ...], str]
"""A tensor type as ``(shape, element spelling)``."""

_TYPE_OPTIONS = frozenset({"storage_type", "scale_type"})
"""Options whose values are element-type spellings."""


def tensor_type(shape: Sequence[int], element: str) -> TensorType:
    return TensorType(element_type(element), shape)


def dynamic(shape: Sequence[int]) -> tuple[int, ...]:
    """``shape`` with every extent dynamic (``?``): the shape-generic kernel's type."""
    return (DYNAMIC_INDEX,) * len(shape)


def row_packable(shape: Sequence[int], element: str) -> bool:
    """Codes of ``shape`` pack row by row (the shape-generic form): rank >= 1 and the
    last dimension fills whole bytes."""
    return len(shape) >= 1 and shape[-1] % (8 // bit_width(element)) == 0


def row_bytes_shape(shape: Sequence[int], element: str) -> tuple[int, ...]:
    """The bytes of codes packed row by row: the last dimension packed."""
    return (*shape[:-1], shape[-1] // (8 // bit_width(element)))


def packed_shape(shape: Sequence[int], element: str) -> tuple[int, ...]:
    """The byte tensor of packed codes: the codes' shape with the last dimension packed
    when whole bytes fit in a row (same bytes as the flat form, and a loop the rows'
    phase can share), else the flat byte count."""
    per_byte = 8 // bit_width(element)
    if len(shape) > 1 and shape[-1] % per_byte == 0:
        return (*shape[:-1], shape[-1] // per_byte)
    return (packed_size(shape, element),)


class OpCall:
    """One op call being assembled: kernel operands and constructor options.

    With ``packed_input`` ``(codes shape, element)`` the kernel takes the bytes of
    sub-byte codes; ``run(..., pack_first=...)`` returns the first result packed.
    """

    def __init__(
        self,
        op: type[QuantOp],
        x: np.ndarray,
        x_type: str,
        packed_input: Signature | None = None,
    ):
        self.op = op
        self.arrays: list[np.ndarray] = [x]
        self.input: Signature = (x.shape, x_type if packed_input is None else "ui8")
        self.packed_input = packed_input
        self.operands: list[tuple[str, tuple[int, ...], str]] = []
        self.options: dict[str, Any] = {}
        self.attributes: tuple[tuple[str, str], ...] = ()
        # the parts of the kind key, kept as the call is described (a warm call's cost)
        self._generic_operands: list[tuple[str, int, str]] = []
        self._generic_options: list[tuple[str, Any]] = []
        # the kernel is shape-generic unless a part of the request needs the extents
        self.generic = packed_input is None or row_packable(*packed_input)

    def operand(self, name: str, array: np.ndarray) -> None:
        """Pass ``array`` as the op's operand ``name`` (``scale``, ``in_zero_point``)."""
        self.arrays.append(array)
        element = formats.name_of_numpy_dtype(array.dtype)
        self.operands.append((name, array.shape, element))
        self._generic_operands.append((name, array.ndim, element))

    def parameters(
        self, scale: Any, zero_point: Any, gran: Granularity, storage: str, prefix: str = ""
    ) -> None:
        """The scale and optional zero point of one quantization step (operands
        ``{prefix}scale`` / ``{prefix}zero_point``); float storage takes no zero point."""
        if zero_point is not None and is_float_storage(storage):
            raise ValueError(f"{prefix}zero_point must be None for float storage {storage}")
        shape = gran.param_shape
        self.operand(f"{prefix}scale", scale_array(scale, f"{prefix}scale", shape))
        if zero_point is not None:
            zp = zero_point_array(zero_point, f"{prefix}zero_point", shape, storage)
            self.operand(f"{prefix}zero_point", zp)

    def option(self, name: str, value: Any) -> None:
        """A constructor keyword; None (the default) leaves the clause out."""
        if value is not None:
            self.options[name] = value
            self._generic_options.append(
                (name, value.key if isinstance(value, Granularity) else value)
            )

    def attribute(self, name: str, text: str) -> None:
        """A string attribute of the op's attr-dict (``{lowering = "lut"}``)."""
        self.attributes += ((name, text),)
        if (name, text) == ("lowering", "lut"):
            self.generic = False  # a table row per channel (see the module docstring)

    def run(
        self,
        result_types: Sequence[Signature],
        pack_first: Signature | None = None,
        out: np.ndarray | Sequence[np.ndarray] | None = None,
    ) -> Any:
        """Compile (once per signature) and call; ``out`` receives the result in place.
        ``result_types`` are the constructor's positional result types."""
        bytes_shape: tuple[int, ...] | None = None
        generic = self.generic
        if pack_first is not None:
            shape, element = pack_first
            generic = generic and row_packable(shape, element)
            bytes_shape = row_bytes_shape(*pack_first) if generic else packed_shape(*pack_first)
            if not generic and math.prod(bytes_shape) == 0:  # no codes: nothing to pack
                return self._run_without_codes(result_types, shape, element, out)
        if generic and self.packed_input is not None:  # the bytes as rows, as the kernel takes them
            self.arrays[0] = self.arrays[0].reshape(row_bytes_shape(*self.packed_input))
        key = self._kind(result_types, bytes_shape, generic)
        kernel = KERNELS.get(key)
        if kernel is None:
            kernel = compile_kernel(self.build(result_types, bytes_shape, generic=generic))
            KERNELS[key] = kernel
        given = out
        if bytes_shape is not None and out is not None:
            out = bytes_view(out, bytes_shape)
        results = kernel(*self.arrays, out=out)
        if bytes_shape is None:
            return results
        first = results[0] if isinstance(results, tuple) else results
        if given is not None:  # the caller's flat array, which the kernel wrote through
            first = given[0] if isinstance(given, tuple | list) else given
        else:
            first = first.reshape(-1)
        return (first, *results[1:]) if isinstance(results, tuple) else first

    def _kind(
        self,
        result_types: Sequence[Signature],
        bytes_shape: tuple[int, ...] | None,
        generic: bool,
    ) -> tuple:
        """The kernel table's key: what the kernel is compiled for. Shape-generic: the
        ranks and element types, never the extents (see the module docstring)."""
        if not generic:
            return (
                self.op.name,
                "static",
                self.input,
                self.packed_input,
                tuple(self.operands),
                tuple(self._generic_options),
                self.attributes,
                tuple(result_types),
                bytes_shape,
            )
        packed = self.packed_input
        return (
            self.op.name,
            len(self.input[0]),
            self.input[1],
            None if packed is None else (len(packed[0]), packed[1]),
            tuple(self._generic_operands),
            tuple(self._generic_options),
            self.attributes,
            tuple([(len(shape), element) for shape, element in result_types]),
            None if bytes_shape is None else len(bytes_shape),
        )

    def build(
        self,
        result_types: Sequence[Signature],
        bytes_shape: tuple[int, ...] | None = None,
        *,
        generic: bool = False,
    ) -> ModuleOp:
        """The ``func.func @main`` of this call; values named as in the module docstring.
        ``generic``: every extent dynamic (the bytes of packed codes as rows)."""
        shape_of = dynamic if generic else tuple
        input_shape = self.input[0]
        if generic and self.packed_input is not None:
            input_shape = row_bytes_shape(*self.packed_input)
        arg_types = [tensor_type(shape_of(input_shape), self.input[1])]
        arg_types += [tensor_type(shape_of(shape), element) for _, shape, element in self.operands]
        block = Block(arg_types=arg_types)
        block.args[0].name_hint = "x"
        for k, arg in enumerate(block.args[1:], 1):
            arg.name_hint = f"a{k}"
        source: SSAValue = block.args[0]
        if self.packed_input is not None:
            codes, element = self.packed_input
            unpack = UnpackOp(source, tensor_type(shape_of(codes), element))
            unpack.result.name_hint = "u"
            block.add_op(unpack)
            source = unpack.result
        keywords: dict[str, Any] = {
            name: arg for (name, _, _), arg in zip(self.operands, block.args[1:])
        }
        keywords.update((name, _attribute(name, v)) for name, v in self.options.items())
        attributes = {name: StringAttr(text) for name, text in self.attributes}
        results = (tensor_type(shape_of(shape), element) for shape, element in result_types)
        op = self.op(source, *results, **keywords, attributes=attributes or None)
        for k, result in enumerate(op.results):
            result.name_hint = f"r{k}"
        block.add_op(op)
        returned = list(op.results)
        if bytes_shape is not None:
            pack = PackOp(op.results[0], tensor_type(shape_of(bytes_shape), "ui8"))
            pack.result.name_hint = "p"
            block.add_op(pack)
            returned[0] = pack.result
        block.add_op(func.ReturnOp(*returned))
        function = func.FuncOp("main", (arg_types, [r.type for r in returned]), Region(block))
        return ModuleOp([function])

    def _run_without_codes(
        self, result_types: Sequence[Signature], shape: tuple[int, ...], element: str, out: Any
    ) -> Any:
        """A packed request of zero codes: the kernel without the pack (which has no bytes
        to write), then the empty byte array in its place."""
        first = np.empty(0, np.uint8)
        if out is not None:
            bytes_view(out, (0,))  # checks the size and layout
            first = out[0] if isinstance(out, tuple | list) else out
            if first.dtype != np.uint8:
                raise TypeError(f"out: the packed result needs a uint8 array, got {first.dtype}")
            codes = np.empty(shape, formats.numpy_dtype(element))
            out = (codes, *out[1:]) if isinstance(out, tuple | list) else None
        results = self.run(result_types, out=out)
        return (first, *results[1:]) if isinstance(results, tuple) else first


def _attribute(name: str, value: Any) -> Any:
    """An option's constructor value: granularity and type spellings become attributes."""
    if isinstance(value, Granularity):
        return value.attr
    if name in _TYPE_OPTIONS:
        return element_type(value)
    return value
