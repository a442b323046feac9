"""Loop-to-thread mappings: the extension point between a phase's loop nest and a target.

`loops.PhaseEmitter` emits each phase as two functions: an internal loop-nest function
``f__phaseK.loops(bases..., strides..., lo, hi)`` that runs the phase's outer loop over
``[lo, hi)``, and the ABI entry ``f__phaseK(data, strides, lo, hi)`` (design.md section 2),
which unpacks the ABI tables and then hands over to a `LoopMapping`: the mapping decides
which part of ``[lo, hi)`` the calling thread runs. Two are provided:

* `CpuMapping` (`CPU`): the caller's chunk as it is; the runtime (`codegen.jit`) splits a
  parallel phase into ``[lo, hi)`` chunks on its thread pool. A ``f__serial`` entry running
  every phase on its whole range is emitted as well.
* `GridStrideMapping` (`GPU`): each phase is a ``ptx_kernel``. A parallel phase runs a
  grid-stride loop over its outer dimension,
  ``for i = lo + ctaid.x * ntid.x + tid.x; i < hi; i += ntid.x * nctaid.x``, each thread
  running the loop nest for ``[i, i + 1)``: one row (with its inner loops and per-row /
  per-block reductions, kept in registers) or one element of a 1-d phase. A phase that is
  not parallel (a reduction over dimension 0: per-tensor amax, the 0-d nests) runs its
  whole range on thread 0 of block 0; the other threads exit.

A new target subclasses `LoopMapping` (public) and passes an instance to
`translate.translate_module(..., mapping=...)`; nothing subclasses the emitter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from llvmlite import ir

from qopt.codegen.abi import I64, PhaseSpec
from qopt.codegen.affine import const

__all__ = ["CPU", "GPU", "CpuMapping", "GridStrideMapping", "LoopMapping", "mapping_for"]

I32 = ir.IntType(32)


class LoopMapping(ABC):
    """Maps the outer loop of a phase onto the threads that call its ABI entry."""

    #: Whether a ``f__serial(data, strides)`` entry that runs every phase is emitted.
    serial_entry: bool = True
    #: The calling convention of each phase's ABI entry ("" for the target's default).
    calling_convention: str = ""
    #: Outputs of at least this many bytes are written with streaming (non-temporal)
    #: stores where the loop allows it (`loops.PhaseEmitter`); None: never.
    streaming_store_bytes: int | None = None

    def order_streaming_stores(self, b: ir.IRBuilder) -> None:
        """Emit at `b` what makes the streaming stores before it visible to the thread that
        waits for this one (they are weakly ordered): a full fence by default."""
        b.fence("seq_cst")

    @abstractmethod
    def call_loops(
        self,
        b: ir.IRBuilder,
        loops: ir.Function,
        params: Sequence[ir.Value],
        lo: ir.Value,
        hi: ir.Value,
        phase: PhaseSpec,
    ) -> None:
        """Emit at `b` (inside the ABI entry, which returns afterwards) the calls of `loops`
        this thread makes: ``loops(*params, start, end)`` runs the outer loop over
        ``[start, end)``, a part of the entry's ``[lo, hi)``."""


class CpuMapping(LoopMapping):
    """The calling thread runs the whole chunk ``[lo, hi)`` it was given.

    An output of 8 MiB or more (a quarter of a typical L3) is written with streaming
    stores: a plain store first reads each cache line it fills (write-allocate), which for
    an f32 result of i8 codes nearly doubles the memory traffic, and such an output would
    not stay in the cache for its reader anyway."""

    streaming_store_bytes = 8 << 20

    def order_streaming_stores(self, b: ir.IRBuilder) -> None:
        # x86: `fence seq_cst` becomes a locked instruction, which orders ordinary stores
        # only; non-temporal ones need an SFENCE (as Linux's wmb() has it).
        if b.module.triple.startswith(("x86_64", "i386", "i686")):
            fn = b.module.declare_intrinsic(
                "llvm.x86.sse.sfence", (), ir.FunctionType(ir.VoidType(), [])
            )
            b.call(fn, [])
        else:
            b.fence("seq_cst")

    def call_loops(
        self,
        b: ir.IRBuilder,
        loops: ir.Function,
        params: Sequence[ir.Value],
        lo: ir.Value,
        hi: ir.Value,
        phase: PhaseSpec,
    ) -> None:
        b.call(loops, [*params, lo, hi])


def _sreg(b: ir.IRBuilder, name: str) -> ir.Value:
    """A PTX special register (``%tid.x``, ...) zero-extended to i64."""
    symbol = f"llvm.nvvm.read.ptx.sreg.{name}"
    try:
        fn = b.module.get_global(symbol)
    except KeyError:
        fn = ir.Function(b.module, ir.FunctionType(I32, []), symbol)
    return b.zext(b.call(fn, []), I64)


class GridStrideMapping(LoopMapping):
    """A ``ptx_kernel`` per phase: a grid-stride loop over dimension 0 (see module doc)."""

    serial_entry = False
    calling_convention = "ptx_kernel"

    def call_loops(
        self,
        b: ir.IRBuilder,
        loops: ir.Function,
        params: Sequence[ir.Value],
        lo: ir.Value,
        hi: ir.Value,
        phase: PhaseSpec,
    ) -> None:
        tid, ntid = _sreg(b, "tid.x"), _sreg(b, "ntid.x")
        ctaid, nctaid = _sreg(b, "ctaid.x"), _sreg(b, "nctaid.x")
        first = b.add(b.mul(ctaid, ntid), tid)
        if not phase.parallel:
            with b.if_then(b.icmp_unsigned("==", first, const(0))):
                b.call(loops, [*params, lo, hi])
            return
        step, start = b.mul(ntid, nctaid), b.add(lo, first)
        preheader = b.block
        header = b.append_basic_block("grid.header")
        body = b.append_basic_block("grid.body")
        done = b.append_basic_block("grid.exit")
        b.branch(header)
        b.position_at_end(header)
        i = b.phi(I64, name="i")
        i.add_incoming(start, preheader)
        b.cbranch(b.icmp_signed("<", i, hi), body, done)
        b.position_at_end(body)
        b.call(loops, [*params, i, b.add(i, const(1))])
        i.add_incoming(b.add(i, step), b.block)
        b.branch(header)
        b.position_at_end(done)


CPU: LoopMapping = CpuMapping()
GPU: LoopMapping = GridStrideMapping()


def mapping_for(triple: str) -> LoopMapping:
    """The mapping of a target triple: `GPU` for ``nvptx*``, else `CPU`."""
    return GPU if triple.startswith("nvptx") else CPU
