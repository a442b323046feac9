"""Loop emission: one phase of a `Schedule` as LLVM loops (design.md section 2, step 3).

`PhaseEmitter` turns the nests of a phase into an internal loop-nest function (the outer
loop over `[lo, hi)`, the row plan's nests and block groups inside it, the scalar bodies
through `scalar_ops`) and wraps it in the kernel-ABI entry, whose thread mapping is a
`mapping.LoopMapping`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from llvmlite import ir
from xdsl.dialects import tensor
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
)

from qopt.codegen.abi import I64, PHASE_FN_TYPE, PTR
from qopt.codegen.affine import const, emit_expr, floor_div, is_dim, moves
from qopt.codegen.bufferize import Access, ConstantBuffer, Nest
from qopt.codegen.extents import Extent, Sym, emit_extent, symbols
from qopt.codegen.mapping import LoopMapping
from qopt.codegen.scalar_ops import emit_body, intrinsic
from qopt.codegen.schedule import BLOCKS_PER_TILE, BlockGroup, Phase, Schedule, reduction_block
from qopt.codegen.types import load_element, storage_value, store_element

__all__ = ["VECTOR_STEP", "PhaseEmitter", "load_sym"]


def load_sym(b: ir.IRBuilder, strides: ir.Value, sym: Sym, rank: int) -> ir.Value:
    """The extent `sym` from the ABI's layout rows: argument `sym.arg`'s row holds its
    `rank` strides, then its `rank` extents (abi.py)."""
    row = b.load(b.gep(strides, [const(sym.arg)], source_etype=PTR), typ=PTR)
    return b.load(b.gep(row, [const(rank + sym.dim)], source_etype=I64), typ=I64)


class _LoopID(ir.values.MDValue):
    """`distinct !{self, hints...}`, the self-referencing `llvm.loop` node llvmlite lacks."""

    def descr(self, buf: list[str]) -> None:
        refs = [self.get_reference(), *(op.get_reference() for op in self.operands)]
        buf += (f"distinct !{{ {', '.join(refs)} }}", "\n")


def _loop_id(module: ir.Module, hints: Sequence[str]) -> _LoopID:
    """`hints` are property names (`llvm.loop.unroll.disable`) or `name=false` for an
    `i1 false` property (`llvm.loop.vectorize.enable=false`)."""
    properties = []
    for hint in hints:
        name, _, value = hint.partition("=")
        operands: list[ir.Value] = [ir.MetaDataString(module, name)]
        if value:
            operands.append(ir.Constant(ir.IntType(1), value == "true"))
        properties.append(module.add_metadata(operands))
    return _LoopID(module, properties, name=str(len(module.metadata)))


# Every innermost loop is split into a part of a multiple of VECTOR_STEP iterations, which
# LLVM vectorizes, and a remainder of fewer, which it must not vectorize. The reason: for
# a loop whose trip count it knows to be below 16 (its "tiny trip count" threshold: a
# 13-element row, a partial block), LLVM's loop vectorizer folds the tail by masking, and
# once the loop is unrolled, the last masked store has a constant one-lane mask, which the
# X86 backend (LLVM 22, AVX-512) turns into a plain scalar store of the *untruncated*
# lane: `vmovss` (4 bytes) for an i8 or f16 element, 1-3 elements past the row's end.
# A trip count of 0 or >= 16 never takes that path (the vectorizer keeps a scalar
# epilogue), and the remainder loop is marked scalar, so no masked store is ever emitted.
VECTOR_STEP = 16
_SCALAR_LOOP = ("llvm.loop.vectorize.enable=false",)


def _store_bytes(storage: ir.Type) -> int:
    """Bytes of one element in memory (its storage type: an integer or a float)."""
    if isinstance(storage, ir.IntType):
        return storage.width // 8 if storage.width % 8 == 0 else 0
    return {ir.HalfType: 2, ir.FloatType: 4, ir.DoubleType: 8}.get(type(storage), 0)


_LINE_BYTES = 64  # a streaming store writes a whole cache line at once


def _below(shape: Sequence[Extent], size: int, threshold: int) -> bool:
    """A static `shape` of `size`-byte elements smaller than `threshold` bytes (a dynamic
    one is decided when the kernel runs)."""
    return all(isinstance(n, int) for n in shape) and math.prod(shape) * size < threshold  # type: ignore[arg-type]


def _concat(b: ir.IRBuilder, parts: list[ir.Value]) -> ir.Value:
    """The vectors `parts` (a power of two of them, of one type) end to end, in one vector."""
    while len(parts) > 1:
        width = parts[0].type.count * 2
        mask = ir.Constant(ir.VectorType(ir.IntType(32), width), list(range(width)))
        parts = [b.shuffle_vector(x, y, mask) for x, y in zip(parts[::2], parts[1::2])]
    return parts[0]


class PhaseEmitter:
    """Emits one phase of a `Schedule` into an LLVM module: the loop-nest function and the
    ABI entry that calls it through a `LoopMapping`.

    The loop nest is an internal function taking one `noalias` pointer per buffer plus its
    strides, so LLVM knows buffers do not overlap (hoisting parameter loads, no runtime
    alias checks in front of vector loops) once it inlines it into the entry. Structure
    (design.md section 2, step 3): accesses are `base + sum(index_k * stride_k)` with the
    affine maps' results as indices; the innermost loop is emitted twice - a unit-stride
    version (chosen once, outside the loop) that LLVM vectorizes, and the general strided
    one; a reduction whose output does not move with the innermost loop keeps its
    accumulator in a register across it, and a per-block reduction is looped over blocks.

    Not meant to be subclassed: a target changes how the phase maps onto threads with its
    own `LoopMapping` (`codegen.mapping`).
    """

    def __init__(
        self,
        module: ir.Module,
        phase: Phase,
        schedule: Schedule,
        constants: Mapping[ConstantBuffer, ir.GlobalVariable],
        mapping: LoopMapping,
    ) -> None:
        self.module = module
        self.phase = phase
        self.name = phase.spec.function
        self.members = phase.nests
        self.scalars = schedule.scalars
        self.constants = constants
        self.mapping = mapping
        used = sorted(
            {
                a.storage
                for n in self.members
                for a in (*n.accesses, *n.gathers.values())
                if isinstance(a.storage, int)
            }
        )
        self.used = {buffer: len(schedule.buffers[buffer].shape) for buffer in used}
        # the dynamic argument dimensions the loop bounds depend on (loop-nest parameters)
        self.syms = sorted(
            {
                s
                for n in self.members
                for e in (*n.extents, *(d for a in n.outputs for d in a.shape))
                for s in symbols(e)
            },
            key=lambda s: (s.arg, s.dim),
        )
        self.ranks = {k: len(b.shape) for k, b in enumerate(schedule.buffers)}

    def emit(self) -> ir.Function:
        """The phase's ABI entry ``void name(ptr data, ptr strides, i64 lo, i64 hi)``."""
        body = self._body_function()
        entry = ir.Function(self.module, PHASE_FN_TYPE, self.name)
        if self.mapping.calling_convention:
            entry.calling_convention = self.mapping.calling_convention
        entry.attributes.add("nounwind")
        data, strides, lo, hi = entry.args
        b = ir.IRBuilder(entry.append_basic_block("entry"))
        params = self._unpack_abi(b, data, strides)
        self.mapping.call_loops(b, body, params, lo, hi, self.phase.spec)
        b.ret_void()
        return entry

    def _unpack_abi(self, b: ir.IRBuilder, data: ir.Value, strides: ir.Value) -> list[ir.Value]:
        """The loop-nest function's parameters from the ABI's `data` and `strides` arrays:
        the base pointer of each used buffer, then the strides of each."""
        params: list[ir.Value] = []
        for buffer in self.used:
            params.append(b.load(b.gep(data, [const(buffer)], source_etype=PTR), typ=PTR))
        for buffer, rank in self.used.items():
            if not rank:
                continue
            row = b.load(b.gep(strides, [const(buffer)], source_etype=PTR), typ=PTR)
            params += [
                b.load(b.gep(row, [const(k)], source_etype=I64), typ=I64) for k in range(rank)
            ]
        params += [load_sym(b, strides, sym, self.ranks[sym.arg]) for sym in self.syms]
        return params

    # -- function and parameters --------------------------------------------------------

    def _body_function(self) -> ir.Function:
        nstrides = sum(self.used.values())
        nints = nstrides + len(self.syms) + 2
        fnty = ir.FunctionType(ir.VoidType(), [PTR] * len(self.used) + [I64] * nints)
        fn = ir.Function(self.module, fnty, f"{self.name}.loops")
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        fn.attributes.add("alwaysinline")
        self.bases: dict[int, ir.Value] = {}
        self.strides: dict[int, list[ir.Value]] = {}
        params = iter(fn.args)
        for buffer in self.used:
            arg = next(params)
            arg.add_attribute("noalias")
            self.bases[buffer] = arg
        for buffer, rank in self.used.items():
            self.strides[buffer] = [next(params) for _ in range(rank)]
        self.sym_values = {sym: next(params) for sym in self.syms}
        lo, hi = next(params), next(params)
        self.extent_values: dict[Extent, ir.Value] = {}
        self.known: dict[AffineExpr, ir.Value] = {}
        self.streaming = False  # whether a streaming store was emitted
        self._nontemporal_md: ir.MDValue | None = None
        self.entry = fn.append_basic_block("entry")
        self.b = ir.IRBuilder(fn.append_basic_block("start"))
        self._emit_phase(lo, hi)
        if self.streaming:  # visible before the phase ends, like every other store
            self.mapping.order_streaming_stores(self.b)
        self.b.ret_void()
        ir.IRBuilder(self.entry).branch(fn.blocks[1])
        return fn

    # -- structure ----------------------------------------------------------------------

    def _emit_phase(self, lo: ir.Value, hi: ir.Value) -> None:
        ranks = self.phase.ranks
        if ranks == {0}:
            self._if(
                self.b.icmp_signed("<", lo, hi),
                lambda: self._emit_point(self.members[0], [], None, {}),
            )
        elif ranks == {1}:
            self._emit_inner_dim(self.members, [], lo, hi)
        else:
            self._loop(lo, hi, "d0", lambda iv: self._emit_rows(iv))

    def _emit_rows(self, iv0: ir.Value) -> None:
        for step in self.phase.steps:
            if isinstance(step, BlockGroup):
                self._emit_block_group(step, [iv0])
            elif step.rank == 1:
                self._emit_point(step, [iv0], None, {})
            else:
                self._emit_dims(step, [iv0])

    def _emit_block_group(self, group: BlockGroup, outer: list[ir.Value]) -> None:
        """The outer dimensions of `group`, then its tiles along the last one: the full
        tiles in a loop, a partial tail tile after it."""
        dim = len(outer)
        if dim < group.rank - 1:
            self._loop(
                const(0),
                self._extent(group.nests[0].extents[dim]),
                f"d{dim}",
                lambda iv: self._emit_block_group(group, [*outer, iv]),
            )
            return
        b, tile = self.b, group.tile

        def run(t: ir.Value, start: ir.Value, end: ir.Value, blocks: ir.Value) -> None:
            first_block = b.mul(t, const(BLOCKS_PER_TILE), flags=["nsw"])
            end_block = b.add(first_block, blocks, flags=["nsw"])
            for nest, per_block in zip(group.nests, group.per_block):
                if per_block:
                    self._emit_innermost([nest], outer, first_block, end_block)
                elif nest.reductions[dim]:
                    self._emit_blocks(nest, outer, group.size, start, end)
                else:
                    self._emit_innermost([nest], outer, start, end)

        def full(t: ir.Value) -> None:
            start = b.mul(t, const(tile), flags=["nsw"])
            run(t, start, b.add(start, const(tile), flags=["nsw"]), const(BLOCKS_PER_TILE))

        if isinstance(group.extent, int):
            full_tiles, rest = divmod(group.extent, tile)
            self._loop(const(0), const(full_tiles), f"d{dim}.tile", full)
            if rest:
                start = full_tiles * tile
                blocks = const(-(-rest // group.size))
                run(const(full_tiles), const(start), const(group.extent), blocks)
            return
        # a dynamic extent: the same, with the tail's size known at run time
        extent = self._extent(group.extent)
        tiles = b.sdiv(extent, const(tile))
        self._loop(const(0), tiles, f"d{dim}.tile", full)
        start = b.mul(tiles, const(tile), flags=["nsw"])

        def tail() -> None:
            rest = b.sub(extent, start, flags=["nsw"])
            blocks = b.sdiv(b.add(rest, const(group.size - 1)), const(group.size))
            run(tiles, start, extent, blocks)

        self._if(b.icmp_signed("<", start, extent), tail)

    def _emit_dims(self, nest: Nest, outer: list[ir.Value]) -> None:
        dim = len(outer)
        if dim == nest.rank - 1:
            self._emit_inner_dim([nest], outer, const(0), self._extent(nest.extents[dim]))
            return
        self._loop(
            const(0),
            self._extent(nest.extents[dim]),
            f"d{dim}",
            lambda iv: self._emit_dims(nest, [*outer, iv]),
        )

    def _emit_inner_dim(
        self, nests: Sequence[Nest], outer: list[ir.Value], lo: ir.Value, hi: ir.Value
    ) -> None:
        """The innermost dimension over [lo, hi): one loop, or blocks of a block reduction."""
        size = reduction_block(nests[0], len(outer)) if len(nests) == 1 else None
        if size is None:
            self._emit_innermost(nests, outer, lo, hi, streamable=True)
        else:
            self._emit_blocks(nests[0], outer, size, lo, hi)

    def _emit_blocks(
        self, nest: Nest, outer: list[ir.Value], size: int, lo: ir.Value, hi: ir.Value
    ) -> None:
        """[lo, hi) as blocks of `size` (see `reduction_block`): a partial head block, the
        full blocks with a constant trip count, a partial tail block. `d floordiv size` is
        the block number throughout each, so the outputs stay put in the inner loop."""
        b, dim = self.b, len(outer)
        key = AffineBinaryOpExpr(
            AffineBinaryOpKind.FloorDiv, AffineDimExpr(dim), AffineConstantExpr(size)
        )

        def part(q: ir.Value, start: ir.Value, end: ir.Value, hints: Sequence[str] = ()) -> None:
            self.known[key] = q
            self._emit_innermost([nest], outer, start, end, hints)
            del self.known[key]

        def full(q: ir.Value) -> None:
            start = b.mul(q, const(size), flags=["nsw"])
            # Not unrolled: fully unrolling the short block loop first would leave LLVM to
            # vectorize across blocks, with gathers, instead of along the block.
            end = b.add(start, const(size), flags=["nsw"])
            part(q, start, end, ("llvm.loop.unroll.disable",))

        first = floor_div(b, b.add(lo, const(size - 1)), size)  # first block inside
        last = floor_div(b, hi, size)  # the block hi falls in
        head_end = intrinsic(b, "llvm.smin", [hi, b.mul(first, const(size))])
        tail_start = intrinsic(b, "llvm.smax", [b.mul(last, const(size)), head_end])
        self._if(
            b.icmp_signed("<", lo, head_end),
            lambda: part(floor_div(b, lo, size), lo, head_end),
        )
        self._loop(first, last, f"d{dim}.block", full)
        self._if(b.icmp_signed("<", tail_start, hi), lambda: part(last, tail_start, hi))

    def _emit_innermost(
        self,
        nests: Sequence[Nest],
        outer: list[ir.Value],
        lo: ir.Value,
        hi: ir.Value,
        hints: Sequence[str] = (),
        *,
        streamable: bool = False,
    ) -> None:
        """The innermost loop over dimension len(outer), in a unit-stride and a strided
        version; a `streamable` loop (a whole row, not a block or a tile of one) may write
        its output with streaming stores (`_streamed_output`)."""
        dim = len(outer)
        accumulators = [self._open_accumulators(n, outer) for n in nests]

        # The vector part runs a multiple of VECTOR_STEP iterations, the rest a scalar loop
        # (see VECTOR_STEP): LLVM never gets to fold a short tail into masked stores.
        length = self.b.sub(hi, lo, flags=["nsw"])
        mid = self.b.add(lo, self.b.and_(length, const(-VECTOR_STEP)), flags=["nsw"])

        def version(unit: bool) -> Callable[[], None]:
            name = f"d{dim}.{'unit' if unit else 'strided'}"

            def point(iv: ir.Value) -> None:
                for n, acc in zip(nests, accumulators):
                    self._emit_point(n, [*outer, iv], dim if unit else None, acc)

            def loop() -> None:
                self._loop(lo, mid, name, point, hints)
                self._loop(mid, hi, f"{name}.rest", point, (*hints, *_SCALAR_LOOP))

            streamed = (
                self._streamed_output(nests, accumulators, dim) if unit and streamable else None
            )
            if streamed is None:
                return loop
            return lambda: self._emit_streamed(nests[0], outer, lo, hi, streamed, loop)

        unit_stride = self._unit_stride_condition(nests, dim)
        if unit_stride is None:
            version(False)()
        else:
            self._if_else(unit_stride, version(True), version(False))
        for nest, acc in zip(nests, accumulators):
            self._close_accumulators(nest, outer, acc)

    def _unit_stride_condition(self, nests: Sequence[Nest], dim: int) -> ir.Value | None:
        """All runtime strides that move with `dim` are 1 (None when there are none)."""
        strides = {
            (a.storage, j)
            for n in nests
            for a in n.accesses
            if isinstance(a.storage, int)
            for j, r in enumerate(a.map.results)
            if moves(r, dim, self.known)
        }
        condition = None
        for buffer, j in sorted(strides):
            is_one = self.b.icmp_signed("==", self.strides[buffer][j], const(1))
            condition = is_one if condition is None else self.b.and_(condition, is_one)
        return condition

    # -- streaming stores ---------------------------------------------------------------

    def _streamed_output(
        self, nests: Sequence[Nest], accumulators: Sequence[dict], dim: int
    ) -> int | None:
        """The output of a unit-stride innermost loop to write with streaming stores: the
        widest write-only output of a single elementwise nest (no reduction, no gather)
        whose buffer has at least the mapping's `streaming_store_bytes`; None if none.
        Whole rows only: a block or tile of a row is too short for the aligned body of a
        cache line at a time to outweigh its scalar head and tail."""
        threshold = self.mapping.streaming_store_bytes
        if threshold is None or len(nests) != 1 or any(accumulators):
            return None
        nest = nests[0]
        if nest.block is None or nest.gathers or any(nest.reductions):
            return None
        # every access moves with `dim` as `dim` itself, or not at all (a `d floordiv c`
        # parameter would become a gather in the SLP-vectorized body)
        for access in nest.accesses:
            for r in access.map.results:
                if moves(r, dim, self.known) and not is_dim(r, dim):
                    return None
        read = {a.storage for a in nest.inputs}
        best, best_size = None, 0
        for j, out in enumerate(nest.outputs):
            size = _store_bytes(out.element.storage)
            moving = [r for r in out.map.results if moves(r, dim, self.known)]
            if (
                not isinstance(out.storage, int)
                or out.storage in read
                or nest.block.args[len(nest.inputs) + j].uses
                or size not in (1, 2, 4, 8)
                or len(moving) != 1
                or moving[0] is not out.map.results[-1]
                or _below(out.shape, size, threshold)
            ):
                continue
            if size > best_size:
                best, best_size = j, size
        return best

    def _emit_streamed(
        self,
        nest: Nest,
        outer: list[ir.Value],
        lo: ir.Value,
        hi: ir.Value,
        j: int,
        plain: Callable[[], None],
    ) -> None:
        """The unit-stride innermost loop with output `j` written by streaming stores of a
        cache line (at least VECTOR_STEP elements): a scalar head up to the first element
        whose address is aligned to the line, the body a line at a time (the scalar bodies
        side by side in groups of VECTOR_STEP, which the SLP vectorizer turns into vector
        code, and one aligned non-temporal vector store of the line), a scalar tail. An
        output not aligned to its element size takes the `plain` loops."""
        b, dim = self.b, len(outer)
        out = nest.outputs[j]
        size = _store_bytes(out.element.storage)
        lanes = max(VECTOR_STEP, _LINE_BYTES // size)  # elements of one store
        address = b.ptrtoint(self._address(out, [*outer, lo], dim), I64)
        aligned = b.icmp_unsigned("==", b.and_(address, const(size - 1)), const(0))
        if not all(isinstance(n, int) for n in out.shape):
            # a dynamic output streams when it is large enough, which a call tells
            threshold = self.mapping.streaming_store_bytes or 0
            nbytes = const(size)
            for n in out.shape:
                nbytes = b.mul(nbytes, self._extent(n), flags=["nsw"])
            aligned = b.and_(aligned, b.icmp_signed(">=", nbytes, const(threshold)))

        def streamed() -> None:
            misalignment = b.and_(b.sub(const(0), address), const(lanes * size - 1))
            skip = b.lshr(misalignment, const(size.bit_length() - 1))
            head = intrinsic(b, "llvm.smin", [hi, b.add(lo, skip)])
            body_end = b.add(head, b.and_(b.sub(hi, head), const(-lanes)), flags=["nsw"])
            self.streaming = True

            def point(iv: ir.Value) -> None:
                self._emit_point(nest, [*outer, iv], dim, {})

            def vector(iv: ir.Value) -> None:
                parts = []
                for first in range(0, lanes, VECTOR_STEP):
                    part = ir.Constant(ir.VectorType(out.element.storage, VECTOR_STEP), None)
                    for k in range(VECTOR_STEP):
                        at = b.add(iv, const(first + k), flags=["nsw"]) if first + k else iv
                        value = self._emit_point(nest, [*outer, at], dim, {}, streamed=j)
                        part = b.insert_element(
                            part, storage_value(b, value, out.element), const(k)
                        )
                    parts.append(part)
                ptr = self._address(out, [*outer, iv], dim)
                store = b.store(_concat(b, parts), ptr, align=lanes * size)
                store.set_metadata("nontemporal", self._nontemporal())

            self._loop(lo, head, f"d{dim}.head", point, _SCALAR_LOOP)
            self._loop(head, body_end, f"d{dim}.stream", vector, _SCALAR_LOOP, lanes)
            self._loop(body_end, hi, f"d{dim}.tail", point, _SCALAR_LOOP)

        self._if_else(aligned, streamed, plain)

    def _nontemporal(self) -> ir.MDValue:
        if self._nontemporal_md is None:
            self._nontemporal_md = self.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        return self._nontemporal_md

    # -- accumulators -------------------------------------------------------------------

    def _open_accumulators(
        self, nest: Nest, outer: list[ir.Value]
    ) -> dict[int, tuple[ir.Value, ir.Value]]:
        """output number -> (register slot, address) for the outputs that stay put while the
        innermost (reduction) loop runs; loaded before it, stored after it."""
        dim = len(outer)
        if nest.block is None or not nest.reductions[dim]:
            return {}
        read = {a.storage for a in nest.inputs}
        slots = {}
        for j, out in enumerate(nest.outputs):
            arg = nest.block.args[len(nest.inputs) + j]
            moving = any(moves(r, dim, self.known) for r in out.map.results)
            if moving or out.storage in read or not arg.uses:
                continue
            ptr = self._address(out, [*outer, const(0)], None)
            slot = ir.IRBuilder(self.entry).alloca(out.element.value)
            self.b.store(load_element(self.b, ptr, out.element), slot)
            slots[j] = (slot, ptr)
        return slots

    def _close_accumulators(
        self, nest: Nest, outer: list[ir.Value], slots: dict[int, tuple[ir.Value, ir.Value]]
    ) -> None:
        for j, (slot, ptr) in slots.items():
            store_element(
                self.b,
                self.b.load(slot, typ=nest.outputs[j].element.value),
                ptr,
                nest.outputs[j].element,
            )

    # -- one iteration ------------------------------------------------------------------

    def _pointer(self, access: Access, indices: Sequence[tuple[ir.Value, bool] | None]) -> ir.Value:
        """&element at `indices` (index value, stride known to be 1; None: contributes 0)."""
        b = self.b
        if isinstance(access.storage, ConstantBuffer):
            base = self.constants[access.storage]
            strides = [const(s) for s in access.storage.strides]
        else:
            base, strides = self.bases[access.storage], self.strides[access.storage]
        offset = None
        for (index, unit), stride in ((i, s) for i, s in zip(indices, strides) if i is not None):
            term = index if unit else b.mul(index, stride, flags=["nsw"])
            offset = term if offset is None else b.add(offset, term, flags=["nsw"])
        if offset is None:
            return base
        return b.gep(base, [offset], inbounds=True, source_etype=access.element.storage)

    def _address(self, access: Access, dims: Sequence[ir.Value], unit_dim: int | None) -> ir.Value:
        """&element the map of `access` selects at `dims`; in the unit-stride version
        (`unit_dim` set) the strides that move with it are known to be 1."""
        runtime = isinstance(access.storage, int)
        indices = [
            None
            if not runtime and access.storage.strides[j] == 0
            else (
                emit_expr(self.b, expr, dims, self.known),
                runtime and unit_dim is not None and moves(expr, unit_dim, self.known),
            )
            for j, expr in enumerate(access.map.results)
        ]
        return self._pointer(access, indices)

    def _gather(self, nest: Nest, op: tensor.ExtractOp, indices: list[ir.Value]) -> ir.Value:
        access = nest.gathers[op.tensor]
        return load_element(
            self.b, self._pointer(access, [(i, False) for i in indices]), access.element
        )

    def _emit_point(
        self,
        nest: Nest,
        dims: list[ir.Value],
        unit_dim: int | None,
        accumulators: dict[int, tuple[ir.Value, ir.Value]],
        streamed: int | None = None,
    ) -> ir.Value | None:
        """One iteration of `nest`'s body at `dims`; the value of output `streamed` is
        returned instead of stored (the caller stores it)."""
        b = self.b
        block = nest.block
        used = [True] * len(nest.accesses) if block is None else [bool(a.uses) for a in block.args]
        args: list[ir.Value | None] = [
            load_element(b, self._address(a, dims, unit_dim), a.element) if use else None
            for a, use in zip(nest.inputs, used)
        ]
        out_ptrs: list[ir.Value | None] = []
        for j, (out, use) in enumerate(zip(nest.outputs, used[len(nest.inputs) :])):
            if j in accumulators:
                slot = accumulators[j][0]
                args.append(b.load(slot, typ=out.element.value))
                out_ptrs.append(None)
                continue
            ptr = self._address(out, dims, unit_dim)
            args.append(load_element(b, ptr, out.element) if use else None)
            out_ptrs.append(ptr)
        if block is None:
            yields = args[: len(nest.inputs)]
        else:
            yields = emit_body(
                b, block, args, self.scalars, lambda op, idx: self._gather(nest, op, idx)
            )
        result = None
        for j, (value, out) in enumerate(zip(yields, nest.outputs)):
            if j in accumulators:
                b.store(value, accumulators[j][0])
            elif j == streamed:
                result = value
            else:
                store_element(b, value, out_ptrs[j], out.element)
        return result

    def _extent(self, extent: Extent) -> ir.Value:
        """An extent as an i64: a constant, or computed once from the symbols in the
        function's entry block (so it dominates every loop that uses it)."""
        if isinstance(extent, int):
            return const(extent)
        if extent not in self.extent_values:
            b = ir.IRBuilder(self.entry)
            self.extent_values[extent] = emit_extent(b, extent, self.sym_values)
        return self.extent_values[extent]

    # -- control flow -------------------------------------------------------------------

    def _loop(
        self,
        lo: ir.Value,
        hi: ir.Value,
        name: str,
        body: Callable[[ir.Value], object],
        hints: Sequence[str] = (),
        step: int = 1,
    ) -> None:
        """for iv in [lo, hi) by `step`: body(iv); `hints` become the loop's `llvm.loop`
        metadata. With a `step` above 1, hi - lo must be a multiple of it."""
        b = self.b
        preheader = b.block
        header = b.append_basic_block(f"{name}.header")
        loop_body = b.append_basic_block(f"{name}.body")
        exit_block = b.append_basic_block(f"{name}.exit")
        b.branch(header)
        b.position_at_end(header)
        iv = b.phi(I64, name=name)
        iv.add_incoming(lo, preheader)
        b.cbranch(b.icmp_signed("<", iv, hi), loop_body, exit_block)
        b.position_at_end(loop_body)
        body(iv)
        iv.add_incoming(b.add(iv, const(step), flags=["nsw"]), b.block)
        latch = b.branch(header)
        if hints:
            latch.set_metadata("llvm.loop", _loop_id(self.module, hints))
        b.position_at_end(exit_block)

    def _if(self, condition: ir.Value, then: Callable[[], object]) -> None:
        with self.b.if_then(condition):
            then()

    def _if_else(
        self, condition: ir.Value, then: Callable[[], object], otherwise: Callable[[], object]
    ) -> None:
        with self.b.if_else(condition) as (then_block, else_block):
            with then_block:
                then()
            with else_block:
                otherwise()
