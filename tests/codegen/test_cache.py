"""codegen.cache: the disk cache verifies what it loads, and a bad cache directory is a warning.

Before, a truncated or garbage object file made LLVM abort every process that needed it,
two kernels' swapped entries gave a segfault and a flipped bit in a constant gave silently
wrong results. Every case that hands bytes to LLVM runs in a subprocess, so a regression
shows up as a failed test with LLVM's message, not as a dead pytest. A child compiles the
kernels, checks their results, drops the memory cache and compiles them again (served by
the entry it has just repaired), and prints its disk cache counters.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from qopt.codegen import cache
from qopt.codegen.cache import (
    CACHE_DIR_ENV,
    DiskCache,
    MemoryCache,
    cache_key,
    key_digest,
    pack_entry,
    unpack_entry,
)
from qopt.codegen.stages import to_llvm
from qopt.codegen.target import host_config

ROOT = Path(__file__).resolve().parents[2]
KERNELS = {"a": (6, 7), "b": (3, 5)}  # name -> shape of a quantize kernel (see test_jit)

CHILD = textwrap.dedent("""\
    import json, sys, time
    import numpy as np
    from qopt.codegen import jit
    from qopt.codegen.cache import disk_cache
    from tests.codegen.test_jit import SCALAR2, quantize_ir, quantize_ref

    def check(shape):
        kernel = jit.compile_module(quantize_ir(shape, (), SCALAR2))["quantize"]
        x = np.linspace(-400, 400, num=int(np.prod(shape)), dtype=np.float32).reshape(shape)
        s, z = np.float32(1.5), np.int32(3)
        np.testing.assert_array_equal(kernel(x, s, z), quantize_ref(x, s, z))

    shapes = [tuple(s) for s in json.loads(sys.argv[1])]
    if len(sys.argv) > 2:  # start together with the other writers
        time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    for shape in shapes:
        check(shape)
    c = disk_cache()
    first = None if c is None else [c.hits, c.writes, c.rejected]
    jit.clear_cache()
    for shape in shapes:
        check(shape)
    second = None if c is None else [c.hits, c.writes, c.rejected]
    print(json.dumps({"first": first, "second": second}))
    """)


def _env(cache_dir: Path | str) -> dict[str, str]:
    env = {**os.environ, CACHE_DIR_ENV: str(cache_dir)}
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_child(cache_dir: Path | str, *names: str) -> tuple[dict, str]:
    """Compile and check `names` in a fresh process; its counters and its stderr."""
    shapes = json.dumps([KERNELS[n] for n in names])
    done = subprocess.run(
        [sys.executable, "-c", CHILD, shapes],
        env=_env(cache_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"child died (exit {done.returncode}):\n{done.stderr}"
    assert "Traceback" not in done.stderr and "LLVM ERROR" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory holding the valid entries of kernels a and b."""
    directory = tmp_path_factory.mktemp("populated")
    counters, _ = run_child(directory, "a", "b")
    assert counters["first"] == [0, 2, 0]
    assert counters["second"] == [2, 2, 0]
    return directory


def entries(directory: Path) -> dict[str, Path]:
    """Kernel name -> its entry file, which must exist."""
    found = {name: directory / f"{_digest_of(name)}.qobj" for name in KERNELS}
    assert all(path.is_file() for path in found.values()), sorted(directory.iterdir())
    return found


def _digest_of(name: str) -> str:
    """The key digest of kernel `name` on this host (what `compile_module` computes)."""
    from tests.codegen.test_jit import SCALAR2, quantize_ir

    lowered = to_llvm(quantize_ir(KERNELS[name], (), SCALAR2), host_config())
    return key_digest(cache_key("obj", lowered.llvm_ir, host_config()))


def copy_of(populated: Path, tmp_path: Path) -> Path:
    directory = tmp_path / "cache"
    shutil.copytree(populated, directory)
    return directory


def assert_repaired(counters: dict) -> None:
    """Kernel a: its entry rejected once, rebuilt and written, then served from disk."""
    assert counters["first"] == [0, 1, 1]
    assert counters["second"] == [1, 1, 1]


# --------------------------------------------------------------------------------------
# Damaged entries: a miss that is rebuilt and replaced


def test_truncated_entry_is_rebuilt(populated: Path, tmp_path: Path) -> None:
    directory = copy_of(populated, tmp_path)
    entry = entries(directory)["a"]
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])
    assert_repaired(run_child(directory, "a")[0])
    assert entry.read_bytes() == data


def test_empty_and_header_only_entries_are_rebuilt(populated: Path, tmp_path: Path) -> None:
    for keep in (0, 84, 86):  # nothing; the whole header; header + two payload bytes
        directory = copy_of(populated, tmp_path / str(keep))
        entry = entries(directory)["a"]
        data = entry.read_bytes()
        entry.write_bytes(data[:keep])
        assert_repaired(run_child(directory, "a")[0])
        assert entry.read_bytes() == data


def test_garbage_entry_is_rebuilt(populated: Path, tmp_path: Path) -> None:
    directory = copy_of(populated, tmp_path)
    entry = entries(directory)["a"]
    data = entry.read_bytes()
    entry.write_bytes(os.urandom(len(data)))
    assert_repaired(run_child(directory, "a")[0])
    assert entry.read_bytes() == data


def test_bare_object_file_is_rebuilt(populated: Path, tmp_path: Path) -> None:
    """A valid ELF object without the header (an old-format entry) is not trusted either."""
    directory = copy_of(populated, tmp_path)
    entry = entries(directory)["a"]
    data = entry.read_bytes()
    entry.write_bytes(unpack_entry(entry.stem, data) or b"")
    assert_repaired(run_child(directory, "a")[0])
    assert entry.read_bytes() == data


def test_swapped_entries_are_rebuilt(populated: Path, tmp_path: Path) -> None:
    """Each file holds the other kernel's (valid) object code: both are misses."""
    directory = copy_of(populated, tmp_path)
    a, b = entries(directory).values()
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    counters, _ = run_child(directory, "a", "b")
    assert counters["first"] == [0, 2, 2]
    assert counters["second"] == [2, 2, 2]
    assert (a.read_bytes(), b.read_bytes()) == (data_a, data_b)


def test_flipped_bits_in_a_constant_are_rebuilt(populated: Path, tmp_path: Path) -> None:
    """The clamp bound 127.0 is a constant of the object file; 127.0 -> 63.0 would clamp
    every result at 63 without any error."""
    directory = copy_of(populated, tmp_path)
    entry = entries(directory)["a"]
    data = entry.read_bytes()
    at = data.find(struct.pack("<f", 127.0), 84)
    assert at > 0, "the constant 127.0 is not in the object file"
    flipped = bytearray(data)
    flipped[at + 2] ^= 0x80  # 0x42fe0000 -> 0x427e0000 = 63.5
    entry.write_bytes(bytes(flipped))
    assert_repaired(run_child(directory, "a")[0])
    assert entry.read_bytes() == data


def test_unreadable_entry_is_a_miss(populated: Path, tmp_path: Path) -> None:
    """An entry that cannot be read (here: a directory in its place) is compiled anew."""
    directory = copy_of(populated, tmp_path)
    entry = entries(directory)["a"]
    entry.unlink()
    entry.mkdir()
    counters, stderr = run_child(directory, "a")
    assert counters["first"][0] == 0 and counters["second"][0] == 0  # never a hit
    assert stderr.count("DiskCacheWarning") == 1  # it could not be replaced: said once


# --------------------------------------------------------------------------------------
# The entry format, without LLVM


DIGEST_A, DIGEST_B = "aa" * 32, "bb" * 32


def test_entry_round_trip() -> None:
    payload = os.urandom(1000)
    assert unpack_entry(DIGEST_A, pack_entry(DIGEST_A, payload)) == payload
    assert unpack_entry(DIGEST_A, pack_entry(DIGEST_A, b"")) == b""


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: e[:-1],
        lambda e: e[:40],
        lambda e: e + b"\0",
        lambda e: b"X" + e[1:],
        lambda e: e[:8] + b"\2\0\0\0" + e[12:],  # another format version
        lambda e: e[:-5] + bytes([e[-5] ^ 1]) + e[-4:],
        lambda e: pack_entry(DIGEST_B, e[84:]),
    ],
    ids=["short", "header-cut", "long", "magic", "version", "bit", "other-key"],
)
def test_damaged_entry_is_refused(damage) -> None:
    entry = pack_entry(DIGEST_A, os.urandom(300))
    assert unpack_entry(DIGEST_A, damage(entry)) is None


def test_load_counts_rejected(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path)
    disk.store(DIGEST_A, b"object")
    assert disk.load(DIGEST_A) == b"object" and disk.hits == 1
    disk.path(DIGEST_B).write_bytes(disk.path(DIGEST_A).read_bytes())
    assert disk.load(DIGEST_B) is None and disk.rejected == 1 and disk.hits == 1
    assert disk.load("cc" * 32) is None and disk.rejected == 1  # absent: a plain miss


# --------------------------------------------------------------------------------------
# Unusable cache directories: one warning, the JIT works without the disk cache


def test_cache_dir_that_is_a_file_warns_once(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("not a directory")
    counters, stderr = run_child(not_a_dir, "a", "b")
    assert counters == {"first": None, "second": None}
    assert stderr.count("DiskCacheWarning") == 1
    assert "is not a directory" in stderr
    assert not_a_dir.read_text() == "not a directory"


def test_cache_dir_under_a_file_warns_once(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    counters, stderr = run_child(tmp_path / "file" / "cache", "a")
    assert counters == {"first": None, "second": None}
    assert stderr.count("DiskCacheWarning") == 1 and "cannot be created" in stderr


def test_unwritable_cache_dir_warns_once(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes through permission bits: use a kernel directory
        directory = Path("/sys/kernel")
        if not directory.is_dir():
            pytest.skip("running as root and /sys/kernel is absent")
    else:
        directory = tmp_path / "read-only"
        directory.mkdir()
        directory.chmod(0o555)
    counters, stderr = run_child(directory, "a", "b")
    assert counters == {"first": None, "second": None}
    assert stderr.count("DiskCacheWarning") == 1 and "is not writable" in stderr


def test_bad_cache_dir_in_process_is_none_with_a_warning(tmp_path: Path, monkeypatch) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setenv(CACHE_DIR_ENV, str(not_a_dir))
    with pytest.warns(cache.DiskCacheWarning, match="is not a directory"):
        assert cache.disk_cache() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.disk_cache() is None  # no second warning


# --------------------------------------------------------------------------------------
# Several processes filling one empty cache at once


def test_concurrent_writers_into_one_empty_cache(tmp_path: Path) -> None:
    """Four processes compile kernels a and b into one empty directory, starting together,
    then compile them again from the directory: every result right, no entry torn."""
    directory = tmp_path / "shared"
    start = time.time() + 10  # after every child's imports
    shapes = json.dumps([KERNELS["a"], KERNELS["b"]])
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, shapes, str(start)],
            env=_env(directory),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for child in children:
        stdout, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, f"writer died (exit {child.returncode}):\n{stderr}"
        assert "Traceback" not in stderr and "LLVM ERROR" not in stderr, stderr
        counters = json.loads(stdout.strip().splitlines()[-1])
        assert counters["first"][2] == 0 and counters["second"][2] == 0  # nothing torn
        assert counters["second"][0] == counters["first"][0] + 2  # the second round: hits
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        f"{_digest_of(n)}.qobj" for n in KERNELS
    )
    counters, _ = run_child(directory, "a", "b")  # what is left is valid and served
    assert counters["first"] == [2, 0, 0]


# --------------------------------------------------------------------------------------
# The memory cache: one LRU per kind


def test_memory_cache_bounds_each_kind_on_its_own() -> None:
    memory: MemoryCache[str] = MemoryCache(capacity=2)
    config = host_config()
    for k in range(3):
        memory.put(cache_key("llvm", f"ir{k}", config), f"llvm{k}")
        memory.put(cache_key("jit", f"ir{k}", config), f"jit{k}")
    assert memory.count("llvm") == memory.count("jit") == 2 and len(memory) == 4
    assert memory.get(cache_key("jit", "ir0", config)) is None  # the oldest of its kind
    assert memory.get(cache_key("jit", "ir2", config)) == "jit2"
    assert memory.get(cache_key("llvm", "ir2", config)) == "llvm2"  # same text, other kind
    memory.clear("jit")
    assert memory.count("jit") == 0 and memory.count("llvm") == 2


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown cache kind"):
        cache_key("cubin", "", host_config())
