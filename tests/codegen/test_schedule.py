"""codegen.schedule: the phases, row plans and block tiles of a function, as plain data.

The schedule is built from parsed lowered IR without LLVM: these tests check its structure
(which nests fuse into a phase, what one row runs, which block groups are tiled) with
`llvmlite.ir.Module` made unusable, so nothing here can have built an LLVM module.
"""

from __future__ import annotations

import pytest
from llvmlite import ir

from qopt.codegen.bufferize import ConstantBuffer, Nest
from qopt.codegen.errors import TranslationError
from qopt.codegen.parsing import parse_lowered
from qopt.codegen.schedule import BLOCKS_PER_TILE, BlockGroup, Schedule, schedule_module
from tests.codegen.test_translate import CROSS_ROWS, PER_TENSOR_AMAX, QUANTIZE

P2 = "affine_map<(d0, d1) -> (d0, d1)>"
BLOCK = "affine_map<(d0, d1) -> (d0, d1 floordiv 16)>"

# Per-block amax (blocks of 16 along d1), the per-block scale, the per-element consumer.
BLOCKS = f"""\
func.func @blocks(%x: tensor<4x64xf32>) -> tensor<4x64xf32> {{
  %z = arith.constant 0.0 : f32
  %six = arith.constant 6.0 : f32
  %e0 = tensor.empty() : tensor<4x4xf32>
  %init = linalg.generic {{indexing_maps = [{P2}], iterator_types = ["parallel", "parallel"]}} outs(%e0 : tensor<4x4xf32>) {{
  ^bb0(%o: f32):
    linalg.yield %z : f32
  }} -> tensor<4x4xf32>
  %amax = linalg.generic {{indexing_maps = [{P2}, {BLOCK}], iterator_types = ["parallel", "reduction"]}} ins(%x : tensor<4x64xf32>) outs(%init : tensor<4x4xf32>) {{
  ^bb0(%v: f32, %acc: f32):
    %a = math.absf %v : f32
    %m = arith.maximumf %acc, %a : f32
    linalg.yield %m : f32
  }} -> tensor<4x4xf32>
  %e1 = tensor.empty() : tensor<4x4xf32>
  %scale = linalg.generic {{indexing_maps = [{P2}, {P2}], iterator_types = ["parallel", "parallel"]}} ins(%amax : tensor<4x4xf32>) outs(%e1 : tensor<4x4xf32>) {{
  ^bb0(%v: f32, %o: f32):
    %s = arith.divf %v, %six : f32
    linalg.yield %s : f32
  }} -> tensor<4x4xf32>
  %e2 = tensor.empty() : tensor<4x64xf32>
  %y = linalg.generic {{indexing_maps = [{P2}, {BLOCK}, {P2}], iterator_types = ["parallel", "parallel"]}} ins(%x, %scale : tensor<4x64xf32>, tensor<4x4xf32>) outs(%e2 : tensor<4x64xf32>) {{
  ^bb0(%v: f32, %s: f32, %o: f32):
    %d = arith.divf %v, %s : f32
    linalg.yield %d : f32
  }} -> tensor<4x64xf32>
  func.return %y : tensor<4x64xf32>
}}
"""


@pytest.fixture(autouse=True)
def no_llvm_module(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("scheduling created an LLVM module")

    monkeypatch.setattr(ir.Module, "__init__", refuse)


def schedule_of(text: str, name: str) -> Schedule:
    return schedule_module(parse_lowered(text))[name]


def kinds(schedule: Schedule) -> list[tuple[str, ...]]:
    return [phase.spec.ops for phase in schedule.phases]


def test_elementwise_quantize_is_one_parallel_phase() -> None:
    schedule = schedule_of(QUANTIZE, "quantize")
    (phase,) = schedule.phases
    assert phase.spec.function == "quantize__phase0"
    assert (phase.spec.extent, phase.spec.parallel, phase.spec.work) == (64, True, 64_000)
    assert phase.spec.tiled == ()
    (step,) = phase.steps
    assert isinstance(step, Nest) and step is phase.nests[0]
    assert step.extents == (64, 1000) and step.reductions == (False, False)
    assert [b.kind for b in schedule.buffers] == ["arg", "arg", "result"]
    assert schedule.constants == ()
    assert set(schedule.scalars) and all(
        op.name == "arith.constant" for op in schedule.scalars.values()
    )


def test_reduction_over_rows_is_its_own_serial_phase() -> None:
    """amax over d0 cannot be split or fused; its constant init is copied into the result."""
    schedule = schedule_of(PER_TENSOR_AMAX, "amax")
    assert kinds(schedule) == [("copy",), ("linalg.generic",), ("linalg.generic",)]
    assert [p.spec.parallel for p in schedule.phases] == [False, False, True]
    assert [p.spec.extent for p in schedule.phases] == [1, 8, 8]
    (constant,) = schedule.constants
    assert isinstance(constant, ConstantBuffer)
    assert constant.data == b"\0\0\0\0" and constant.strides == ()
    copy = schedule.phases[0].nests[0]
    assert copy.inputs[0].storage is constant and copy.outputs[0].storage == 1  # result0


def test_consumer_of_every_row_starts_a_new_phase() -> None:
    """The row sum fuses with its init; the consumer reads all rows' sums (d1 index)."""
    schedule = schedule_of(CROSS_ROWS, "cross")
    assert kinds(schedule) == [("linalg.generic", "linalg.generic"), ("linalg.generic",)]
    first = schedule.phases[0]
    assert [n.rank for n in first.steps] == [1, 2]  # type: ignore[union-attr]
    assert [b.kind for b in schedule.buffers] == ["arg", "result", "scratch"]


def test_per_block_statistic_and_consumers_form_a_tiled_block_group() -> None:
    schedule = schedule_of(BLOCKS, "blocks")
    (phase,) = schedule.phases
    assert phase.spec.ops == ("linalg.generic",) * 4
    assert phase.spec.tiled == (16,)
    (group,) = phase.steps
    assert isinstance(group, BlockGroup)
    assert group.nests == phase.nests
    assert group.per_block == (True, False, True, False)
    assert (group.size, group.extent, group.rank) == (16, 64, 2)
    assert group.tile == 16 * BLOCKS_PER_TILE


def test_block_reduction_alone_is_not_a_group() -> None:
    """Without a per-element consumer the statistic runs as a plain nest."""
    text = BLOCKS.split("  %e1 = tensor.empty()")[0] + "  func.return %amax : tensor<4x4xf32>\n}\n"
    text = text.replace("-> tensor<4x64xf32> {", "-> tensor<4x4xf32> {", 1)
    schedule = schedule_of(text, "blocks")
    (phase,) = schedule.phases
    assert phase.spec.tiled == ()
    assert [s.kind for s in phase.steps] == ["linalg.generic"] * 2  # type: ignore[union-attr]
    assert all(isinstance(s, Nest) for s in phase.steps)


def test_kernel_spec_is_derived_from_the_schedule() -> None:
    schedule = schedule_of(CROSS_ROWS, "cross")
    spec = schedule.kernel_spec("cross__serial")
    assert spec.entry == "cross__serial"
    assert spec.phases == tuple(p.spec for p in schedule.phases)
    assert spec.buffers == schedule.buffers


def test_errors_are_raised_while_scheduling() -> None:
    text = """\
func.func @g(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = arith.addf %x, %x : tensor<4xf32>
  func.return %y : tensor<4xf32>
}
"""
    with pytest.raises(TranslationError, match="'arith.addf' at function level"):
        schedule_of(text, "g")
