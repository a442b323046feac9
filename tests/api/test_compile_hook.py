"""qopt.compile_stats(): which calls compile, counted instead of timed.

Each test starts from empty kernel caches (the API's table and codegen.jit's modules) and
zeroed counters. ``kernel_builds`` counts API table misses that built a kernel,
``kernel_hits`` table hits, ``jit_compiles`` modules compiled to machine code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import qopt
from qopt.api.kernel_cache import CompileStats

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def cold_caches() -> Iterator[None]:
    _, bound = qopt.kernel_cache_size()
    qopt.set_kernel_cache_size(max(bound, 16))  # QOPT_API_CACHE_SIZE=0 would keep nothing
    qopt.clear_kernel_cache()
    qopt.reset_compile_stats()
    yield
    qopt.set_kernel_cache_size(bound)


def x_of(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def test_stats_start_at_zero_after_reset() -> None:
    assert qopt.compile_stats() == CompileStats(kernel_builds=0, kernel_hits=0, jit_compiles=0)


def test_first_call_compiles_once() -> None:
    qopt.quantize(x_of((64, 64)), 0.02, 0, dtype="i8")
    assert qopt.compile_stats() == CompileStats(kernel_builds=1, kernel_hits=0, jit_compiles=1)


def test_warm_call_does_not_compile() -> None:
    x = x_of((64, 64))
    qopt.quantize(x, 0.02, 0, dtype="i8")
    qopt.reset_compile_stats()
    # Another scale and zero point: parameters are runtime operands, the kernel is reused.
    qopt.quantize(x, 0.05, 3, dtype="i8")
    assert qopt.compile_stats() == CompileStats(kernel_builds=0, kernel_hits=1, jit_compiles=0)


def test_reset_keeps_the_compiled_kernels() -> None:
    x = x_of((8,))
    qopt.quantize(x, 0.02, dtype="i8")
    qopt.reset_compile_stats()
    qopt.reset_compile_stats()
    qopt.quantize(x, 0.02, dtype="i8")
    assert qopt.compile_stats().kernel_builds == 0


def test_same_signature_twice_compiles_once() -> None:
    x = x_of((64, 64))
    qopt.quantize(x, 0.02, 0, dtype="i8")
    qopt.quantize(x, 0.02, 0, dtype="i8")
    assert qopt.compile_stats() == CompileStats(kernel_builds=1, kernel_hits=1, jit_compiles=1)


def test_new_dtype_compiles_once() -> None:
    x = x_of((64, 64))
    qopt.quantize(x, 0.02, 0, dtype="i8")
    qopt.reset_compile_stats()
    qopt.quantize(x, 0.02, 0, dtype="ui8")
    qopt.quantize(x, 0.02, 0, dtype="ui8")
    assert qopt.compile_stats() == CompileStats(kernel_builds=1, kernel_hits=1, jit_compiles=1)


def test_new_shape_of_a_compiled_kind_does_not_compile() -> None:
    """Kernels are shape-generic: one compile for the kind, every other shape a table hit."""
    for shape in [(64, 64), (32, 64), (64, 64), (32, 64), (128, 64), (0, 3), (1, 1)]:
        qopt.quantize(x_of(shape), 0.02, 0, dtype="i8")
    assert qopt.compile_stats() == CompileStats(kernel_builds=1, kernel_hits=6, jit_compiles=1)


def test_new_rank_is_a_new_kind() -> None:
    for shape in [(8,), (4, 8), (2, 4, 8), (16,), (3, 5)]:
        qopt.quantize(x_of(shape), 0.02, 0, dtype="i8")
    assert qopt.compile_stats() == CompileStats(kernel_builds=3, kernel_hits=2, jit_compiles=3)


def test_packed_rows_of_partial_bytes_are_specialised_per_shape() -> None:
    """Codes whose last dimension does not fill whole bytes take the flat packing form,
    compiled per shape (api/building.py says why); whole-byte rows share one kernel."""
    for shape in [(4, 8), (6, 2), (4, 8)]:
        qopt.quantize(x_of(shape), 0.5, dtype="i4", packed=True)
    assert qopt.compile_stats().kernel_builds == 1
    for shape in [(3, 5), (2, 7), (3, 5)]:
        qopt.quantize(x_of(shape), 0.5, dtype="i4", packed=True)
    assert qopt.compile_stats().kernel_builds == 3


def test_api_kernel_evicted_but_held_by_the_jit_builds_without_a_jit_compile() -> None:
    x = x_of((16,))
    qopt.set_kernel_cache_size(0)  # the table keeps nothing; codegen.jit still does
    qopt.quantize(x, 0.02, dtype="i8")
    qopt.quantize(x, 0.02, dtype="i8")
    assert qopt.compile_stats() == CompileStats(kernel_builds=2, kernel_hits=0, jit_compiles=1)


def test_user_compile_counts_jit_compiles_only() -> None:
    qopt.compile(EXAMPLES / "int4_block_dequant.mlir")
    qopt.compile(EXAMPLES / "int4_block_dequant.mlir")
    assert qopt.compile_stats() == CompileStats(kernel_builds=0, kernel_hits=0, jit_compiles=1)


def test_jit_compile_count_never_decreases() -> None:
    from qopt.codegen import jit

    qopt.quantize(x_of((4,)), 0.02, dtype="i8")
    before = jit.compile_count()
    qopt.clear_kernel_cache()
    assert jit.compile_count() == before
    assert qopt.compile_stats().jit_compiles == 1
