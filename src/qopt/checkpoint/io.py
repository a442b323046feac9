"""safetensors files: memory-mapped reads, streaming writes, atomic output directories.

The safetensors format is an 8-byte little-endian header length, a JSON header
(``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``) and
the raw little-endian tensor bytes. ``safetensors``' own numpy loader (0.8) cannot read
BF16 or F8 tensors and its writers take a whole shard in memory, so this module maps the
data with numpy / ml_dtypes dtypes (a read touches only the pages of the tensor asked for)
and writes a shard tensor by tensor into a file whose header is computed first from the
plan (memory stays bounded by a few tensors, not by the shard).

The header is laid out as the ``safetensors`` library lays it out (tensors sorted by
dtype alignment, largest first, then by name; the JSON padded with spaces to a multiple of
8 bytes; ``__metadata__`` first), so a shard holding the same tensors is the same file.

Every problem with an input file raises :class:`CheckpointError` naming the file and,
where there is one, the tensor.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ml_dtypes
import numpy as np


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or written as asked; the message names the file
    and the tensor."""


DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "F8_E8M0": np.dtype(ml_dtypes.float8_e8m0fnu),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U64": np.dtype(np.uint64),
    "U32": np.dtype(np.uint32),
    "U16": np.dtype(np.uint16),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
"""safetensors dtype name -> numpy / ml_dtypes dtype (little-endian, as stored)."""

_NAMES = {dtype: name for name, dtype in DTYPES.items()}

MAX_HEADER = 100_000_000
"""The largest header the safetensors library accepts (bytes)."""


def dtype_name(dtype: np.dtype) -> str:
    """The safetensors name of a numpy / ml_dtypes dtype."""
    try:
        return _NAMES[np.dtype(dtype)]
    except KeyError:
        raise CheckpointError(f"dtype {np.dtype(dtype)} has no safetensors name") from None


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry in a safetensors header."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin

    @property
    def numpy_dtype(self) -> np.dtype:
        return DTYPES[self.dtype]


def read_header(path: str | os.PathLike) -> tuple[dict[str, TensorInfo], dict[str, str], int]:
    """``(tensors, metadata, data_start)`` of a safetensors file, every entry checked
    against the file's size: a truncated or malformed file raises CheckpointError."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path}: not a safetensors file ({size} bytes, no header)")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER or 8 + length > size:
                raise CheckpointError(
                    f"{path}: header length {length} does not fit the file ({size} bytes): "
                    "truncated or not a safetensors file"
                )
            raw = f.read(length)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data_start = 8 + length
    data_size = size - data_start
    tensors = {}
    for name, entry in header.items():
        tensors[name] = _tensor_info(path, name, entry, data_size)
    return tensors, metadata, data_start


def _tensor_info(path: Path, name: str, entry: object, data_size: int) -> TensorInfo:
    try:
        dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        shape = tuple(int(d) for d in shape)
        begin, end = int(begin), int(end)
    except (TypeError, KeyError, ValueError):
        raise CheckpointError(f"{path}: tensor {name}: malformed header entry {entry!r}") from None
    if dtype not in DTYPES:
        raise CheckpointError(f"{path}: tensor {name}: unsupported dtype {dtype!r}")
    expected = int(np.prod(shape, dtype=np.int64)) * DTYPES[dtype].itemsize
    if any(d < 0 for d in shape) or end - begin != expected or begin < 0:
        raise CheckpointError(
            f"{path}: tensor {name}: data_offsets {[begin, end]} do not hold a {dtype} "
            f"tensor of shape {list(shape)}"
        )
    if end > data_size:
        raise CheckpointError(
            f"{path}: tensor {name}: data ends at byte {end} but the file has only "
            f"{data_size} data bytes (truncated)"
        )
    return TensorInfo(name, dtype, shape, begin, end)


class SafetensorsReader:
    """A safetensors file mapped read-only; ``reader[name]`` is a numpy view of the tensor.

    Views are valid while the reader is open (use it as a context manager). Pages are read
    from disk when touched, so memory holds what is being worked on, not the file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.tensors, self.metadata, self._start = read_header(self.path)
        self._map: np.memmap | None = None
        if any(t.nbytes for t in self.tensors.values()):
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r")

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            info = self.tensors[name]
        except KeyError:
            raise CheckpointError(f"{self.path}: tensor {name} is not in the file") from None
        if not info.nbytes:
            return np.zeros(info.shape, info.numpy_dtype)
        data = self._map[self._start + info.begin : self._start + info.end]
        return data.view(info.numpy_dtype).reshape(info.shape)

    def close(self) -> None:
        self._map = None

    def __enter__(self) -> SafetensorsReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class OutputSpec:
    """What a tensor of an output shard will be (known before its data is computed)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def layout_header(
    specs: list[OutputSpec], metadata: Mapping[str, str] | None = None
) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """The header bytes (length prefix included) and each tensor's ``(begin, end)`` data
    offsets, laid out as the ``safetensors`` library writes them."""
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise CheckpointError(f"duplicate output tensor names: {dup}")
    order = sorted(specs, key=lambda s: (-np.dtype(s.dtype).alignment, s.name))
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offsets = {}
    pos = 0
    for spec in order:
        offsets[spec.name] = (pos, pos + spec.nbytes)
        header[spec.name] = {
            "dtype": dtype_name(spec.dtype),
            "shape": list(spec.shape),
            "data_offsets": [pos, pos + spec.nbytes],
        }
        pos += spec.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, offsets


class SafetensorsWriter:
    """Writes one safetensors file tensor by tensor, in any order.

    The header is fixed by ``specs`` up front; ``write(name, array)`` stores each tensor at
    its offset (the array's dtype and shape must match its spec). ``close()`` checks that
    every tensor was written. The writer goes into a temporary directory that the caller
    renames into place (:func:`atomic_directory`), so no reader sees a partial file.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        specs: list[OutputSpec],
        metadata: Mapping[str, str] | None = None,
    ):
        self.path = Path(path)
        self.specs = {s.name: s for s in specs}
        header, self.offsets = layout_header(specs, metadata)
        self._start = len(header)
        self._pending = set(self.specs)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._file.write(header)
        self._file.truncate(self._start + sum(s.nbytes for s in specs))

    def write(self, name: str, array: np.ndarray) -> None:
        spec = self.specs.get(name)
        if spec is None:
            raise CheckpointError(f"{self.path}: tensor {name} is not in the planned header")
        array = np.asarray(array)
        if array.dtype != np.dtype(spec.dtype) or tuple(array.shape) != spec.shape:
            raise CheckpointError(
                f"{self.path}: tensor {name}: got {array.dtype}{list(array.shape)}, planned "
                f"{np.dtype(spec.dtype)}{list(spec.shape)}"
            )
        self._file.seek(self._start + self.offsets[name][0])
        self._file.write(np.ascontiguousarray(array).view(np.uint8).reshape(-1).data)
        self._pending.discard(name)

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.close()
        if self._pending:
            raise CheckpointError(f"{self.path}: tensors never written: {sorted(self._pending)}")

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> SafetensorsWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path next to ``path``; on success it is renamed over ``path``
    (atomic on one file system), on failure removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, data: object) -> None:
    """``data`` as indented JSON (as Hugging Face tools write config files), atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def staging_directory(out: str | os.PathLike) -> Path:
    """The temporary sibling directory in which ``out`` is built (kept across runs, so
    ``--resume`` finds the shards a stopped run finished)."""
    out = Path(out)
    return out.parent / f".{out.name}.partial"


def publish_directory(staging: Path, out: str | os.PathLike) -> None:
    """Renames the finished staging directory to ``out`` (which must not exist)."""
    out = Path(out)
    if out.exists():
        raise CheckpointError(f"{out}: already exists (remove it or choose another -o)")
    os.replace(staging, out)


def discard_directory(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
