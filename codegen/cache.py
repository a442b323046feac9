"""Compilation caches for the JIT.

Two levels, both keyed by what determines the machine code - the printed IR, the target
triple, CPU, feature string, optimisation level and the llvmlite version (Numba / Triton
habit):

* `MemoryCache`: compiled modules of this process (a bounded LRU), so that a kernel built
  twice from the same IR is compiled once;
* `DiskCache`: object code on disk, only when ``QOPT_CACHE_DIR`` names a directory. It
  plugs into MCJIT's object cache hooks (`ExecutionEngine.set_object_cache`): a hit hands
  MCJIT the stored object file, so another process skips optimisation and code generation.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import llvmlite.binding as llvm

from codegen.target import TargetConfig

__all__ = ["CACHE_DIR_ENV", "DiskCache", "MemoryCache", "cache_key", "disk_cache", "key_digest"]

CACHE_DIR_ENV = "QOPT_CACHE_DIR"

CacheKey = tuple[str, str, str, str, int, str]


def cache_key(ir_text: str, config: TargetConfig) -> CacheKey:
    """(printed IR, triple, cpu, features, opt level, llvmlite version)."""
    return (ir_text, *config.cache_key)


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
    """A thread-safe LRU map from cache keys to compiled modules."""

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[CacheKey, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: CacheKey, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class DiskCache:
    """Object files named ``<sha256 of the key>.o`` in `directory`."""

    directory: Path
    hits: int = 0
    writes: int = 0

    def path(self, digest: str) -> Path:
        return self.directory / f"{digest}.o"

    def contains(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def load(self, digest: str) -> bytes | None:
        try:
            data = self.path(digest).read_bytes()
        except OSError:
            return None
        self.hits += 1
        return data

    def store(self, digest: str, data: bytes) -> None:
        """Write atomically (temp file + rename): concurrent processes never see half a file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path(digest))
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            return
        self.writes += 1

    def attach(self, engine: llvm.ExecutionEngine, digest: str) -> None:
        """Serve and record the object code of the engine's module under `digest`."""
        engine.set_object_cache(
            notify_func=lambda _module, data: self.store(digest, data),
            getbuffer_func=lambda _module: self.load(digest),
        )


_DISK_CACHES: dict[Path, DiskCache] = {}


def disk_cache() -> DiskCache | None:
    """The disk cache named by ``QOPT_CACHE_DIR`` (read at each call), or None when unset."""
    directory = os.environ.get(CACHE_DIR_ENV)
    if not directory:
        return None
    path = Path(directory).expanduser().resolve()
    return _DISK_CACHES.setdefault(path, DiskCache(path))
