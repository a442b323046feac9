"""Array arguments and results: numpy arrays, torch tensors, DLPack and ``__array__`` producers.

Inputs are read in place (``np.from_dlpack``, no copy); results come back as the kind of the
first argument: torch in, torch out (``torch.from_dlpack``, no copy), numpy otherwise. A
torch result of a type torch lacks holds the values one per byte: int8 / uint8 for i4, ui4,
i2, ui2, and uint8 codes for f4E2M1FN. torch itself is never imported here: a tensor is
recognized through ``sys.modules``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

# torch dtypes numpy cannot exchange by DLPack: read and written through an integer view of
# the same bytes, seen as the ml_dtypes type of that name (ml_dtypes is imported only then).
_TORCH_BITS_VIEWS = {
    "bfloat16": "int16",
    "float8_e4m3fn": "uint8",
    "float8_e5m2": "uint8",
    "float8_e8m0fnu": "uint8",
}


def torch_of(value: Any) -> Any | None:
    """The torch module when ``value`` is a torch tensor (torch is never imported here)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return torch
    return None


def from_torch(tensor: Any, argument: str) -> np.ndarray:
    """A numpy view of a CPU tensor's memory (no copy)."""
    if tensor.device.type != "cpu":
        raise ValueError(f"{argument} must be a CPU tensor, got one on {tensor.device}")
    tensor = tensor.detach()
    name = str(tensor.dtype).removeprefix("torch.")
    if name in _TORCH_BITS_VIEWS:
        import ml_dtypes

        torch = torch_of(tensor)
        bits = tensor.view(getattr(torch, _TORCH_BITS_VIEWS[name]))
        return np.from_dlpack(bits).view(getattr(ml_dtypes, name))
    try:
        return np.from_dlpack(tensor)
    except (BufferError, RuntimeError, TypeError) as err:
        raise TypeError(
            f"{argument}: torch dtype {tensor.dtype} is not supported ({err})"
        ) from None


def to_torch(torch: Any, array: np.ndarray) -> Any:
    """``array`` as a torch tensor sharing its memory (sub-byte types: values, one a byte)."""
    name = array.dtype.name
    if name in _TORCH_BITS_VIEWS:
        bits = _TORCH_BITS_VIEWS[name]
        return torch.from_dlpack(array.view(bits)).view(getattr(torch, name))
    if name in ("int4", "int2"):
        array = array.astype(np.int8)
    elif name in ("uint4", "uint2"):
        array = array.astype(np.uint8)
    elif name == "float4_e2m1fn":
        array = array.view(np.uint8)
    return torch.from_dlpack(array)


def as_numpy(value: Any, argument: str) -> np.ndarray:
    """An array argument as a numpy array, reading other producers' memory in place."""
    if isinstance(value, np.ndarray):
        return value
    if torch_of(value) is not None:
        return from_torch(value, argument)
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


def returns_like_input(function: Callable[..., Any]) -> Callable[..., Any]:
    """Torch in, torch out: results (or the given ``out`` tensors) in the kind of the first
    argument; numpy for every other kind."""

    @functools.wraps(function)
    def wrapper(x: Any, *args: Any, out: Any = None, **kwargs: Any) -> Any:
        torch = torch_of(x)
        if torch is None:
            return function(x, *args, out=out, **kwargs)
        if out is None:
            results = function(x, *args, **kwargs)
            if isinstance(results, tuple):
                return tuple(to_torch(torch, r) for r in results)
            return to_torch(torch, results)
        if isinstance(out, tuple | list):
            views = type(out)(as_numpy(o, f"out[{k}]") for k, o in enumerate(out))
        else:
            views = as_numpy(out, "out")
        function(x, *args, out=views, **kwargs)
        return tuple(out) if isinstance(out, tuple | list) else out

    return wrapper


def bytes_view(out: Any, bytes_shape: tuple[int, ...]) -> Any:
    """``out`` (or its first array) holding packed bytes, seen in the kernel's shape."""
    first = out[0] if isinstance(out, tuple | list) else out
    size = int(np.prod(bytes_shape))
    if not isinstance(first, np.ndarray) or first.size != size or not first.flags.c_contiguous:
        raise ValueError(f"out: the packed result needs a C-contiguous uint8 array of {size} bytes")
    view = first.reshape(bytes_shape)  # a view: C-contiguous
    return (view, *out[1:]) if isinstance(out, tuple | list) else view
