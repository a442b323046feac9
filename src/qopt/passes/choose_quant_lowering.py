"""choose-quant-lowering: annotate each quant op with how lower-quant should lower it.

Sets the discardable attribute ``lowering`` on every quant op that has none (an existing
annotation is a per-op override and is left alone):

* ``fused``: one loop nest, no intermediate tensor (pack / dequantize: absorb the
  producing quantize / the unpack when it has no other user; dynamic ops: the data loop
  reads the block statistics and recomputes its parameters inline);
* ``composite``: a materialized intermediate (requantize: dequantize into an f32 tensor,
  then quantize; dynamic ops: the data loop reads the stored scale / zero point; static
  fake_quantize: quantize into a storage tensor, then dequantize; pack / dequantize: the
  producer is lowered on its own);
* ``lut`` (requantize only, integer input of at most 8 bits, per-tensor or per-axis
  parameters on one axis): the fused math run once over all ``2^bits`` input codes per
  channel into a table, then a gather.

Every choice computes the same bits; only the loop structure and the traffic differ.

``mode=auto`` is a cost model in bytes moved and arithmetic per element (``N`` elements,
``T`` table entries = channels x 2^bits), checked against the CPU JIT (4096 x 4096, two
cores; times in the comments are per call):

* requantize: ``fused`` moves ``in + out`` bytes; ``composite`` adds 8 (an f32 written
  and read back: 11 ms against 3 ms for i8), so auto never picks it; ``lut`` moves the
  same bytes as ``fused`` and trades the per-element arithmetic for a table load, after
  ``T`` evaluations of the fused math. The fused loop vectorizes and the gather does not
  (i8: 7 ms against 3 ms), so ``lut`` is only considered with ``allow_lut=true`` (for a
  target whose arithmetic does not vectorize) and then when ``N >= LUT_MIN_RATIO * T``;
* dynamic_quantize: ``composite``. Both forms run in one loop nest per row (tile by tile
  for 1-D blocks) when the blocks do not span dimension 0 (codegen's phase fusion); the
  fused data loop recomputes the block's scale for every element (one more division, an
  e4m3 rounding for NVFP4), the composite one reads the block's f32 divisor back from L1
  (NVFP4 6.0 ms against 10.7 ms, MXFP8 3.4 against 3.7, int8 per-token 3.05 against 3.09);
* fake_quantize: ``fused`` (no parameter tensors; the two forms measure alike);
* pack: ``fused`` when its input is a quantize with no other user (saves writing and
  reading the codes), else ``composite``; dequantize: ``fused`` (absorbs an unpack with no
  other user); quantize, unpack: ``fused`` (their only form).

``mode=fused`` / ``mode=composite`` force that form wherever the op has it (``lut`` is only
ever chosen by ``auto`` or by hand).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass

from qopt.passes.lowering_choice import MODES, annotate_lowerings, choose_lowering


@dataclass(frozen=True)
class ChooseQuantLoweringPass(ModulePass):
    """Annotate every unannotated quant op with ``lowering = "fused" | "composite" | "lut"``."""

    name = "choose-quant-lowering"

    mode: str = "auto"
    allow_lut: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"choose-quant-lowering: option 'mode' must be one of {', '.join(MODES)}, "
                f"got '{self.mode}'"
            )

    def choose(self, op: Operation) -> str:
        """The lowering of one quant op under this pass's mode."""
        return choose_lowering(op, self.mode, self.allow_lut)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        annotate_lowerings(op, self.mode, self.allow_lut)
