"""Scheduling: which loop nests of a function run together, and in what order per row
(design.md section 2, step 2). The result is plain data (`Schedule`), built from the
bufferization without LLVM, so tests can check phases, tiles and row plans directly.

*Phases*: consecutive loop nests with the same extent in a parallel dimension 0, that touch
the buffers they share only row by row, are fused under one outer loop, so a per-row
reduction and its consumer see the row while it is in L1.

*Row plans*: within a phase, a per-block statistic, the nests that turn it into per-block
parameters and the nests that consume them element by element form a `BlockGroup`, run
tile by tile (`BLOCKS_PER_TILE` blocks at a time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from xdsl.dialects import arith, func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

from qopt.codegen.abi import BufferSpec, KernelSpec, PhaseSpec
from qopt.codegen.affine import block_of, is_dim
from qopt.codegen.bufferize import Bufferizer, ConstantBuffer, Nest, Storage
from qopt.codegen.errors import TranslationError
from qopt.codegen.extents import Extent, ShapeCheck, ceil_div, is_static, total

__all__ = [
    "BLOCKS_PER_TILE",
    "BlockGroup",
    "Phase",
    "Schedule",
    "group_phases",
    "reduction_block",
    "row_plan",
    "schedule_function",
    "schedule_module",
]


def reduction_block(nest: Nest, dim: int) -> int | None:
    """c when `dim` is a reduction dimension that the outputs see only as `d floordiv c`
    (a per-block reduction): looping over blocks of c makes each output element invariant
    in the inner loop, so it can be accumulated in a register and the loop vectorized."""
    if nest.block is None or not nest.reductions[dim]:
        return None
    blocks = {
        block_of(r, dim) for out in nest.outputs for r in out.map.results if dim in r.used_dims()
    }
    if len(blocks) != 1 or None in blocks:
        return None
    (c,) = blocks
    extent = nest.extents[dim]
    return c if not is_static(extent) or c < extent else None  # type: ignore[operator]


def _fusable(nests: Sequence[Nest]) -> bool:
    """design.md section 2: same extent, d0 parallel, every map uses d0 only in its first
    result; and every buffer written in the phase is accessed row by row (index 0 = d0)."""
    if any(n.rank == 0 or n.reductions[0] for n in nests):
        return False
    if len({n.extents[0] for n in nests}) != 1:
        return False
    accesses = [a for n in nests for a in n.accesses]
    if any(0 in r.used_dims() for a in accesses for r in a.map.results[1:]):
        return False
    written = {o.storage for n in nests for o in n.outputs}
    if any(g.storage in written for n in nests for g in n.gathers.values()):
        return False  # read at computed indices: any row
    return all(a.row_local() for a in accesses if a.storage in written)


def group_phases(nests: Sequence[Nest]) -> list[list[Nest]]:
    phases: list[list[Nest]] = []
    for nest in nests:
        if phases and _fusable([*phases[-1], nest]):
            phases[-1].append(nest)
        else:
            phases.append([nest])
    return phases


@dataclass(frozen=True)
class BlockGroup:
    """Consecutive nests of one phase that run block by block along the last dimension.

    A per-block statistic (a reduction whose outputs see the last dimension only as
    `d floordiv size`), the nests that turn it into per-block parameters, and the nests
    that consume them element by element are interleaved tile by tile: for each tile of
    `BLOCKS_PER_TILE` blocks, the statistics of its blocks, then their parameters, then
    its elements. The tile is still in L1 when it is quantized, however long the row
    (design.md section 2). A tile, not a single block: the parameter arithmetic is then a
    loop over 16 blocks that vectorizes, where one block at a time it is a chain of scalar
    divisions and conversions the core cannot overlap (measured: 2x slower for NVFP4).
    """

    nests: tuple[Nest, ...]
    per_block: tuple[bool, ...]  # runs once per block (parameter-shaped), else per element
    size: int
    extent: Extent  # elements along the last dimension

    @property
    def rank(self) -> int:
        return self.nests[0].rank

    @property
    def tile(self) -> int:
        """Elements per tile along the last dimension."""
        return self.size * BLOCKS_PER_TILE


BLOCKS_PER_TILE = 16  # one AVX-512 vector of per-block f32 parameters


def _block_role(nest: Nest, size: int, outer: tuple[Extent, ...], extent: Extent) -> bool | None:
    """How `nest` fits a block group of `size` along the last dimension: True when it runs
    once per block (extent ceil(extent / size), maps see the dimension as itself), False
    when it runs over the block's elements (maps see it as itself or `d floordiv size`,
    a reduction only as a per-block one), None when it does not fit."""
    last = len(outer)
    blocks = ceil_div(extent, size)
    if nest.rank != last + 1 or nest.extents[:last] != outer or nest.gathers:
        return None
    if any(nest.reductions[:last]):
        return None
    if nest.extents[last] == blocks and not any(nest.reductions):
        per_block = True
    elif nest.extents[last] == extent:
        if nest.reductions[last] and reduction_block(nest, last) != size:
            return None
        per_block = False
    else:
        return None
    for access in nest.accesses:
        for r in access.map.results:
            if last not in r.used_dims() or is_dim(r, last):
                continue
            if per_block or block_of(r, last) != size:
                return None
    return per_block


def _block_group_at(nests: Sequence[Nest], start: int) -> BlockGroup | None:
    """The block group that begins at `nests[start]`, if any: per-block nests, then a
    per-block reduction that fixes the block size, then nests that fit (`_block_role`),
    with every buffer written in the group read back only inside the same block."""
    first = nests[start]
    if first.rank < 2:
        return None
    last = first.rank - 1
    outer = first.extents[:last]
    statistic = next(
        (
            k
            for k in range(start, len(nests))
            if nests[k].rank == first.rank and reduction_block(nests[k], last) is not None
        ),
        None,
    )
    if statistic is None:
        return None
    size = reduction_block(nests[statistic], last)
    assert size is not None
    extent = nests[statistic].extents[last]
    roles: list[bool] = []
    for nest in nests[start:]:
        role = _block_role(nest, size, outer, extent)
        if role is None:
            break
        roles.append(role)
    members = nests[start : start + len(roles)]
    if len(roles) <= statistic - start or not any(
        not role and not any(n.reductions) for n, role in zip(members, roles)
    ):
        return None  # the statistic does not fit, or nothing consumes it per element
    # A buffer written in the group is indexed (d0, .., d<last-1>, x) everywhere in it, x
    # being always the element (`d<last>` in per-element nests) or always the block
    # (`d<last>` in per-block nests, `d<last> floordiv size` in per-element ones), so a
    # block only ever reads what the same block wrote.
    written = {o.storage for n in members for o in n.outputs}
    indexed_by: dict[Storage, str] = {}
    for n, per_block in zip(members, roles):
        for a in n.accesses:
            if a.storage not in written:
                continue
            results = a.map.results
            if len(results) != last + 1 or not all(
                is_dim(r, j) for j, r in enumerate(results[:last])
            ):
                return None
            by = "element" if is_dim(results[last], last) and not per_block else "block"
            if indexed_by.setdefault(a.storage, by) != by:
                return None
    return BlockGroup(tuple(members), tuple(roles), size, extent)


def row_plan(members: Sequence[Nest]) -> list[Nest | BlockGroup]:
    """What one row of a phase runs, in order: single nests and block groups."""
    plan: list[Nest | BlockGroup] = []
    k = 0
    while k < len(members):
        group = _block_group_at(members, k)
        plan.append(members[k] if group is None else group)
        k += 1 if group is None else len(group.nests)
    return plan


Step = Nest | BlockGroup  # what one row of a phase runs: a single nest or a block group


@dataclass(frozen=True)
class Phase:
    """One phase: its fused nests, what one row of it runs, and its ABI spec."""

    spec: PhaseSpec
    nests: tuple[Nest, ...]
    steps: tuple[Step, ...]  # `row_plan(nests)`

    @property
    def ranks(self) -> set[int]:
        """The ranks of its nests ({0}: scalars only, {1}: one loop, else rows)."""
        return {n.rank for n in self.nests}


@dataclass(frozen=True)
class Schedule:
    """The buffers, constants and phases of one `func.func`, in execution order."""

    name: str
    buffers: tuple[BufferSpec, ...]
    scalars: Mapping[SSAValue, arith.ConstantOp]  # function-level scalar constants
    constants: tuple[ConstantBuffer, ...]  # dense constant tensors, in order of definition
    phases: tuple[Phase, ...]
    checks: tuple[ShapeCheck, ...] = ()

    def kernel_spec(self, entry: str) -> KernelSpec:
        """The `KernelSpec` of the function; `entry` is its serial entry ("" if none)."""
        by_kind = {
            kind: tuple(b for b in self.buffers if b.kind == kind)
            for kind in ("arg", "result", "scratch")
        }
        return KernelSpec(
            self.name,
            entry,
            by_kind["arg"],
            by_kind["result"],
            by_kind["scratch"],
            tuple(p.spec for p in self.phases),
            self.checks,
        )


def _phase(name: str, members: Sequence[Nest]) -> Phase:
    steps = tuple(row_plan(members))
    extent = members[0].extents[0] if members[0].rank else 1
    spec = PhaseSpec(
        name,
        extent,
        all(n.splittable() for n in members),
        total([n.work for n in members]),
        tuple(n.kind for n in members),
        tuple(step.size for step in steps if isinstance(step, BlockGroup)),
    )
    return Phase(spec, tuple(members), steps)


def schedule_function(fn: func.FuncOp) -> Schedule:
    """Bufferize `fn` and group its nests into phases (`TranslationError` if unsupported)."""
    if not fn.body.blocks:
        raise TranslationError("function declarations (no body) are not supported", fn)
    plan = Bufferizer(fn).plan()
    phases = tuple(
        _phase(f"{plan.name}__phase{k}", members)
        for k, members in enumerate(group_phases(plan.nests))
    )
    return Schedule(
        plan.name,
        tuple(plan.buffers),
        plan.scalars,
        tuple(plan.constants),
        phases,
        tuple(dict.fromkeys(plan.checks)),
    )


def schedule_module(module: ModuleOp) -> dict[str, Schedule]:
    """The schedule of every function of a lowered module."""
    schedules: dict[str, Schedule] = {}
    for op in module.ops:
        if not isinstance(op, func.FuncOp):
            raise TranslationError(
                f"unsupported op '{op.name}' at module level (expected func.func)", op
            )
        schedules[op.sym_name.data] = schedule_function(op)
    return schedules
