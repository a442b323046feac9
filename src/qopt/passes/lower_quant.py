"""lower-quant: every quant op to ``linalg.generic`` on tensors with scalar arith/math bodies.

The output is exactly the op set of docs/design.md section 1 (func, tensor.empty,
arith.constant, linalg.generic/yield and the scalar arith/math ops, plus ``tensor.extract``
/ ``arith.index_cast`` in the gather of a ``lut`` requantize), which codegen compiles; no
quant op survives. Layered like MLIR's ``LowerQuantOps.cpp``, one module per layer:

1. ``scalar_ir.py``: :class:`BodyBuilder` (one method per scalar op) and the exact
   conversions to and from f32;
2. the math: ``quant_math.py`` (``quantize_value``, ``dequantize_value``, rounding,
   clamping) and ``dynamic_math.py`` (block statistics, dynamic and fake parameters) -
   the only place numerics live (fold-quant evaluates the same functions);
3. ``lowering_ir.py``: element/shape queries, indexing maps (each shows the map it makes),
   :class:`GenericBuilder`, :class:`Emitter`, and the granularity dispatch
   (:func:`param_map`, :class:`ParamSource`, :class:`OpParams`);
4. one lowering function and one ``RewritePattern`` per op (``lowering_static.py``,
   ``lowering_dynamic.py``, ``lowering_packing.py``), choosing among the forms that
   ``choose-quant-lowering`` annotated (``lowering = "fused" | "composite" | "lut"``, read
   through ``lowering_choice.py``);
5. :class:`LowerQuantPass` (this file), which first annotates unannotated ops with the
   default choice.

Pack / unpack (docs/semantics.md section 1: C order, first element in the low bits, odd tail padded with
0) are generics over the *bytes* resp. the *codes*, flattening with affine maps only
(``floordiv`` / ``mod`` by constants), so any shape on either side works:

* pack: one iteration per output byte, the ``8 / bits`` lanes unrolled; lane ``l`` of byte
  ``b`` reads code ``b * per + l`` delinearized over the codes' shape (when a row holds
  whole bytes: ``(b floordiv (n / per), (b mod (n / per)) * per + l)``). Where the last
  byte is partial, the lane index is taken ``mod count`` (an in-bounds read) and a
  constant mask table ``[2^bits - 1, 0, ..]`` indexed by ``(b * per + l) floordiv count``
  zeroes the padding;
* unpack, the mirror image: one iteration per code; it reads byte ``f floordiv per`` (``f``
  the flat code index; ``d0 * n / per + d1 floordiv per`` for whole-byte rows) and the
  shift ``bits * (f mod per)`` from a constant table, then ``trunci((byte >> shift) : i32)``
  to the code type.
``pack(quantize(x))`` lowers to one generic (the quantize inlined per lane) and
``dequantize(unpack(p))`` to one generic (unpack inlined) when the intermediate has no other
user and the consumer's lowering is ``fused``.

Dynamic quantize / fake quantize lower to a statistics ``reduction`` generic (amax as the
max of ``bits(|x|)`` as i32, or xmin/xmax with ``minimumf`` / ``maximumf``; NaN propagates
into the scale like ``torch.amax``), a parameter generic over the scale's shape and a data
generic. ``fused`` data generics read the statistics and recompute the block's parameters
inline (no parameter tensor is read back); ``composite`` ones read the stored scale / zero
point. Both call the same math (``dynamic_params``), and every stored scale is exactly the
f32 value the fused form divides by, so the two give the same bits. For blocks that do not
span dimension 0 all generics are parallel in d0 with d0 only in their first map result,
so codegen runs them as one phase, row by row (design.md section 2); blocks spanning rows
(``block([128, 128])``) need the whole statistic first: separate phases.

``quant.rescale`` (fixed point, docs/semantics.md section 12) lowers in
``lowering_rescale.py`` to one generic of i64 integer arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriteWalker

from qopt.passes.lowering_choice import annotate_lowerings
from qopt.passes.lowering_dynamic import LowerDynamicQuantize, LowerFakeQuantize
from qopt.passes.lowering_ir import fail
from qopt.passes.lowering_packing import LowerPack, LowerUnpack
from qopt.passes.lowering_rescale import LowerRescale
from qopt.passes.lowering_static import LowerDequantize, LowerQuantize, LowerRequantize
from qopt.qdialect.ops import QUANT_OPS
from qopt.qdialect.rescale import RescaleOp


@dataclass(frozen=True)
class LowerQuantPass(ModulePass):
    """Lower every quant op (docs/semantics.md sections 3-5) to the op set of docs/design.md section 1.

    Ops without a ``lowering`` annotation first get the ``auto`` choice of
    ``choose-quant-lowering``, so ``qopt FILE --lower-quant`` always works.
    """

    name = "lower-quant"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        annotate_lowerings(op)
        PatternRewriteWalker(
            GreedyRewritePatternApplier(
                [
                    LowerPack(),
                    LowerQuantize(),
                    LowerDequantize(),
                    LowerUnpack(),
                    LowerRequantize(),
                    LowerDynamicQuantize(),
                    LowerFakeQuantize(),
                    LowerRescale(),
                ]
            ),
            apply_recursively=False,
        ).rewrite_module(op)
        for inner in op.walk():
            if isinstance(inner, (*QUANT_OPS, RescaleOp)):
                raise fail(inner, f"'{inner.name}' was not lowered")
