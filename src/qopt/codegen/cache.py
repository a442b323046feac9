"""The compilation cache of every codegen stage (CPU JIT, host assembly, PTX).

One mechanism, two levels, both keyed by `cache_key`: the *kind* of artifact, then what
determines it - the translated LLVM IR text (exact: the IR every later stage compiles; the
xDSL printer is not, it prints ``dense<[0.0, -0.0]>`` as the splat ``dense<0.0>``), the
target triple, CPU, feature string, optimisation level and the llvmlite version (Numba /
Triton habit). Each stage's artifact is keyed by the text of its input; only the first
stage's input is lowered IR, printed exactly (`qopt.ir.printing.print_ir`) when given as a
module. Kinds (`KINDS`):

* ``llvm``: the translation of lowered IR (`stages.LLVMStage`: LLVM IR text and the kernel
  specs; memory only), keyed by the lowered IR's exact text;
* ``jit``: a loaded `jit.CompiledModule` (memory only);
* ``obj``: the object code of a JIT module (disk only, through MCJIT's object cache hooks,
  `ExecutionEngine.set_object_cache`: a hit hands MCJIT the stored object file, so another
  process skips optimisation and code generation);
* ``asm``: target assembly text - host assembly or PTX (memory and disk).

* `MEMORY_CACHE`: artifacts of this process (an LRU of 512 entries per kind), so that a
  kernel built twice from the same IR is compiled once;
* `DiskCache`: bytes on disk, only when ``QOPT_CACHE_DIR`` names a directory.

The disk cache does not trust its files: LLVM aborts the process on a malformed object file
and runs a well-formed wrong one. Each entry (of any kind) is a header - magic, format version, the
digest of the key it was stored under, the payload length and the SHA-256 of the payload -
followed by the object file, and `DiskCache.load` checks all of it before LLVM sees a byte.
A file that fails (truncated, garbage, another key's entry, flipped bits, unreadable) is a
miss: the module is compiled again and the entry replaced. Entries are written to a temp
file in the same directory and renamed over the old one (atomic on POSIX), so concurrent
processes only ever see whole entries. A ``QOPT_CACHE_DIR`` that cannot be used (a regular
file, not writable) is reported once with `warnings.warn` and the JIT runs without it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import llvmlite.binding as llvm

from qopt.codegen.target import TargetConfig

__all__ = [
    "CACHE_DIR_ENV",
    "KINDS",
    "MEMORY_CACHE",
    "DiskCache",
    "DiskCacheWarning",
    "MemoryCache",
    "cache_key",
    "disk_cache",
    "key_digest",
]

CACHE_DIR_ENV = "QOPT_CACHE_DIR"

KINDS = frozenset({"llvm", "jit", "obj", "asm"})

CacheKey = tuple[str, str, str, str, str, int, str]


def cache_key(kind: str, ir_text: str, config: TargetConfig) -> CacheKey:
    """(kind, input IR text, triple, cpu, features, opt level, llvmlite version); the input
    is lowered IR for kind ``llvm`` and the translated LLVM IR for the others."""
    if kind not in KINDS:
        raise ValueError(f"unknown cache kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    return (kind, ir_text, *config.cache_key)


def key_digest(key: CacheKey) -> str:
    """A file-name-safe digest of a cache key (sha256 of its fields)."""
    h = hashlib.sha256()
    for part in key:
        text = str(part).encode()
        h.update(len(text).to_bytes(8, "little"))
        h.update(text)
    return h.hexdigest()


V = TypeVar("V")


class MemoryCache(Generic[V]):
    """A thread-safe LRU map from cache keys to compiled artifacts, bounded per kind: the
    last `capacity` entries of each kind are kept (a JIT module does not evict its own
    translation).

    Entries are held under `key_digest(key)`, not the key itself: a key carries a whole
    module's text, which the cache need not keep alive.
    """

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._kinds: dict[str, OrderedDict[str, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> V | None:
        digest = key_digest(key)
        with self._lock:
            entries = self._kinds.get(key[0])
            value = None if entries is None else entries.get(digest)
            if value is not None:
                entries.move_to_end(digest)  # type: ignore[union-attr]
            return value

    def put(self, key: CacheKey, value: V) -> None:
        digest = key_digest(key)
        with self._lock:
            entries = self._kinds.setdefault(key[0], OrderedDict())
            entries[digest] = value
            entries.move_to_end(digest)
            while len(entries) > self.capacity:
                entries.popitem(last=False)

    def clear(self, kind: str | None = None) -> None:
        """Forget every entry, or those of one kind."""
        with self._lock:
            if kind is None:
                self._kinds.clear()
            else:
                self._kinds.pop(kind, None)

    def count(self, kind: str) -> int:
        """How many entries of `kind` are held."""
        with self._lock:
            return len(self._kinds.get(kind, ()))

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._kinds.values())


MEMORY_CACHE: MemoryCache[object] = MemoryCache()
"""The in-process cache of every kind (looked up as ``cache.MEMORY_CACHE`` at each use, so a
test may replace it)."""


class DiskCacheWarning(UserWarning):
    """The disk cache is not used (bad ``QOPT_CACHE_DIR``) or could not store an entry."""


_MAGIC = b"QOPTOBJ\x00"
_FORMAT = 1
# magic, format (u32), key digest (32 bytes), payload length (u64), payload SHA-256 (32 bytes)
_HEADER = len(_MAGIC) + 4 + 32 + 8 + 32
_SUFFIX = ".qobj"


def pack_entry(digest: str, payload: bytes) -> bytes:
    """A cache entry: the header that `unpack_entry` checks, then the object file."""
    return b"".join(
        (
            _MAGIC,
            _FORMAT.to_bytes(4, "little"),
            bytes.fromhex(digest),
            len(payload).to_bytes(8, "little"),
            hashlib.sha256(payload).digest(),
            payload,
        )
    )


def unpack_entry(digest: str, entry: bytes) -> bytes | None:
    """The object file of `entry` if it is a whole entry stored under `digest`, else None."""
    if len(entry) < _HEADER or not entry.startswith(_MAGIC):
        return None
    at = len(_MAGIC)
    if int.from_bytes(entry[at : at + 4], "little") != _FORMAT:
        return None
    at += 4
    if entry[at : at + 32] != bytes.fromhex(digest):
        return None
    at += 32
    length = int.from_bytes(entry[at : at + 8], "little")
    at += 8
    checksum = entry[at : at + 32]
    payload = entry[_HEADER:]
    if len(payload) != length or hashlib.sha256(payload).digest() != checksum:
        return None
    return payload


def _warn_once(about: object, message: str) -> None:
    """Warn about `about` (a directory and what went wrong there) once per process."""
    if about not in _WARNED:
        _WARNED.add(about)
        warnings.warn(message, DiskCacheWarning, stacklevel=3)


_WARNED: set[object] = set()


@dataclass
class DiskCache:
    """Verified object files named ``<sha256 of the key>.qobj`` in `directory`.

    `hits` counts entries served, `writes` entries stored, `rejected` files that failed
    verification (each one is then rebuilt and replaced).
    """

    directory: Path
    hits: int = 0
    writes: int = 0
    rejected: int = 0

    def path(self, digest: str) -> Path:
        return self.directory / f"{digest}{_SUFFIX}"

    def contains(self, digest: str) -> bool:
        """Whether a valid entry for `digest` is stored (reads and verifies it)."""
        return self._read(digest) is not None

    def load(self, digest: str) -> bytes | None:
        """The verified object file stored under `digest`, or None (a miss)."""
        payload = self._read(digest)
        if payload is not None:
            self.hits += 1
        return payload

    def _read(self, digest: str) -> bytes | None:
        try:
            entry = self.path(digest).read_bytes()
        except OSError:  # absent, a directory, unreadable: a miss
            return None
        payload = unpack_entry(digest, entry)
        if payload is None:
            self.rejected += 1
        return payload

    def store(self, digest: str, data: bytes) -> None:
        """Write atomically (temp file + rename): concurrent processes never see half a file."""
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{digest[:16]}-", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o644)  # mkstemp's 0600 would keep the cache private
                f.write(pack_entry(digest, data))
            os.replace(tmp, self.path(digest))
        except OSError as err:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            _warn_once(
                (self.directory, "store"),
                f"qopt: cannot write to the JIT disk cache {self.directory}: {err}",
            )
            return
        self.writes += 1

    def attach(self, engine: llvm.ExecutionEngine, digest: str, payload: bytes | None) -> None:
        """Serve `payload` (what `load` returned: verified, or None for a miss) to the engine
        and store the object code the engine compiles on a miss.

        The hooks run inside LLVM (ctypes callbacks): they must not raise.
        """

        def notify(_module: llvm.ModuleRef, data: bytes) -> None:
            if payload is None:
                self.store(digest, data)

        engine.set_object_cache(notify_func=notify, getbuffer_func=lambda _module: payload)


_DISK_CACHES: dict[Path, DiskCache | None] = {}
_DISK_LOCK = threading.Lock()


def disk_cache() -> DiskCache | None:
    """The disk cache named by ``QOPT_CACHE_DIR`` (read at each call), or None when unset or
    when the directory cannot be used (then a `DiskCacheWarning` is issued, once)."""
    directory = os.environ.get(CACHE_DIR_ENV)
    if not directory:
        return None
    path = Path(directory).expanduser().absolute()
    with _DISK_LOCK:
        if path not in _DISK_CACHES:
            problem = _unusable(path)
            if problem:
                _warn_once(
                    (path, "unusable"),
                    f"qopt: {CACHE_DIR_ENV}={directory!r} {problem}; "
                    "compiling without the disk cache",
                )
            _DISK_CACHES[path] = None if problem else DiskCache(path)
        return _DISK_CACHES[path]


def _unusable(path: Path) -> str:
    """Why `path` cannot hold the cache ('' when it can): created if absent, then probed
    with a real write (``os.access`` says yes to root on a read-only directory)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return "is not a directory"
    except OSError as err:
        return f"cannot be created ({err.strerror or err})"
    if not path.is_dir():
        return "is not a directory"
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        return f"is not writable ({err.strerror or err})"
    return ""
