"""codegen.translate and codegen.stages: kernel specs, phases, the LLVM IR / assembly, errors.

Numerical behaviour is tested in test_jit.py; here the structure: which buffers and
phases a function becomes, that the hot loop is vectorized for the host (zmm with
AVX-512, ymm when AVX2 is forced through QOPT_CPU / QOPT_FEATURES), and that anything
outside the lowered-IR op set is reported with its op name and location.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from xdsl.parser import Parser

from qopt.codegen import target
from qopt.codegen.jit import compile_module
from qopt.codegen.stages import emit
from qopt.codegen.translate import (
    TranslationError,
    lowered_context,
    parse_lowered,
    translate_module,
)
from qopt.passes.lower_quant import LowerQuantPass
from qopt.qdialect.context import make_context, parse_module

QUANTIZE = """\
func.func @quantize(%x: tensor<64x1000xf32>, %s: tensor<f32>) -> tensor<64x1000xi8> {
  %e = tensor.empty() : tensor<64x1000xi8>
  %lo = arith.constant -128.0 : f32
  %hi = arith.constant 127.0 : f32
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> ()>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x, %s : tensor<64x1000xf32>, tensor<f32>) outs(%e : tensor<64x1000xi8>) {
  ^bb0(%a: f32, %sc: f32, %o: i8):
    %d = arith.divf %a, %sc : f32
    %rr = math.roundeven %d : f32
    %m = arith.maxnumf %rr, %lo : f32
    %m2 = arith.minnumf %m, %hi : f32
    %nan = arith.cmpf uno, %d, %d : f32
    %z = arith.constant 0.0 : f32
    %v = arith.select %nan, %z, %m2 : f32
    %t = arith.fptosi %v : f32 to i32
    %t8 = arith.trunci %t : i32 to i8
    linalg.yield %t8 : i8
  } -> tensor<64x1000xi8>
  func.return %r : tensor<64x1000xi8>
}
"""

# amax over the whole tensor (d0 is a reduction), then a per-tensor consumer.
PER_TENSOR_AMAX = """\
func.func @amax(%x: tensor<8x32xf32>) -> (tensor<f32>, tensor<8x32xf32>) {
  %c = arith.constant dense<0.0> : tensor<f32>
  %a = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> ()>], iterator_types = ["reduction", "reduction"]} ins(%x : tensor<8x32xf32>) outs(%c : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %abs = math.absf %v : f32
    %m = arith.maximumf %acc, %abs : f32
    linalg.yield %m : f32
  } -> tensor<f32>
  %e = tensor.empty() : tensor<8x32xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> ()>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x, %a : tensor<8x32xf32>, tensor<f32>) outs(%e : tensor<8x32xf32>) {
  ^bb0(%v: f32, %m: f32, %o: f32):
    %d = arith.divf %v, %m : f32
    linalg.yield %d : f32
  } -> tensor<8x32xf32>
  func.return %a, %y : tensor<f32>, tensor<8x32xf32>
}
"""

# Row sums, then y[i, j] = x[i, j] - rowsum[j]: the consumer reads every row's sum, so
# it cannot run row by row with the producer.
CROSS_ROWS = """\
func.func @cross(%x: tensor<8x8xf32>) -> tensor<8x8xf32> {
  %e0 = tensor.empty() : tensor<8xf32>
  %zero = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} outs(%e0 : tensor<8xf32>) {
  ^bb0(%o: f32):
    %z = arith.constant 0.0 : f32
    linalg.yield %z : f32
  } -> tensor<8xf32>
  %sum = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<8x8xf32>) outs(%zero : tensor<8xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  } -> tensor<8xf32>
  %e = tensor.empty() : tensor<8x8xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x, %sum : tensor<8x8xf32>, tensor<8xf32>) outs(%e : tensor<8x8xf32>) {
  ^bb0(%v: f32, %s: f32, %o: f32):
    %d = arith.subf %v, %s : f32
    linalg.yield %d : f32
  } -> tensor<8x8xf32>
  func.return %y : tensor<8x8xf32>
}
"""


def body_module(body: str, element: str = "f32", result: str = "f32") -> str:
    """An elementwise 1-D generic with `body` (ending in linalg.yield) at line 4."""
    return f"""\
func.func @f(%x: tensor<16x{element}>) -> tensor<16x{result}> {{
  %e = tensor.empty() : tensor<16x{result}>
  %r = linalg.generic {{indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}} ins(%x : tensor<16x{element}>) outs(%e : tensor<16x{result}>) {{
  ^bb0(%a: {element}, %o: {result}):
{body}
  }} -> tensor<16x{result}>
  func.return %r : tensor<16x{result}>
}}
"""


def spec_of(text: str, name: str):
    return translate_module(parse_lowered(text)).kernels[name]


# --------------------------------------------------------------------------------------
# Kernel specs and phases


class Test_KernelSpec:
    def test_buffers_and_phase_of_a_quantize(self) -> None:
        spec = spec_of(QUANTIZE, "quantize")
        assert [(b.name, b.kind, b.shape, b.dtype) for b in spec.buffers] == [
            ("x", "arg", (64, 1000), np.dtype(np.float32)),
            ("s", "arg", (), np.dtype(np.float32)),
            ("result0", "result", (64, 1000), np.dtype(np.int8)),
        ]
        assert spec.scratch == ()
        (phase,) = spec.phases
        assert (phase.function, phase.extent, phase.parallel, phase.work) == (
            "quantize__phase0",
            64,
            True,
            64_000,
        )
        assert spec.entry == "quantize__serial"

    def test_whole_tensor_reduction_is_its_own_serial_phase(self) -> None:
        spec = spec_of(PER_TENSOR_AMAX, "amax")
        kinds = [(p.ops, p.parallel) for p in spec.phases]
        # the constant init is copied (a global is not writable), then reduced, then used
        assert kinds == [
            (("copy",), False),
            (("linalg.generic",), False),
            (("linalg.generic",), True),
        ]
        assert [b.kind for b in spec.buffers] == ["arg", "result", "result"]

    def test_buffer_read_across_rows_is_not_fused(self) -> None:
        spec = spec_of(CROSS_ROWS, "cross")
        assert [p.ops for p in spec.phases] == [("linalg.generic",) * 2, ("linalg.generic",)]
        assert [b.kind for b in spec.buffers] == ["arg", "result", "scratch"]

    @pytest.mark.parametrize(
        ("op", "tiled"),
        [
            # statistic, parameters (and the divisor) and data: one phase, tile by tile
            ("%d, %s = quant.dynamic_quantize %x per_block(1, 16) double_quant(0.5) : "
             "tensor<8x1000xf32> -> tensor<8x1000xf4E2M1FN>, tensor<8x63xf8E4M3FN>", (16,)),
            ("%d, %s = quant.dynamic_quantize %x per_block(1, 32) : "
             "tensor<8x1000xf32> -> tensor<8x1000xf8E4M3FN>, tensor<8x32xf8E8M0FNU>", (32,)),
            ("%d, %s, %z = quant.dynamic_quantize %x per_block(1, 32) symmetric(false) : "
             "tensor<8x1000xf32> -> tensor<8x1000xi4>, tensor<8x32xf32>, tensor<8x32xi4>",
             (32,)),
            # the whole row is the block: nothing to tile
            ("%d, %s = quant.dynamic_quantize %x per_token : "
             "tensor<8x1000xf32> -> tensor<8x1000xi8>, tensor<8x1xf32>", ()),
        ],
    )  # fmt: skip
    def test_block_statistic_and_its_consumers_run_tile_by_tile(self, op, tiled) -> None:
        results = op.split(" -> ")[1]
        names = ", ".join(n.strip() for n in op.split("=")[0].split(","))
        text = f"func.func @k(%x: tensor<8x1000xf32>) -> ({results}) {{\n  {op}\n  func.return {names} : {results}\n}}"
        module = parse_module(text, "<test>")
        LowerQuantPass().apply(make_context(), module)
        (phase,) = spec_of(str(module), "k").phases
        assert phase.tiled == tiled

    def test_two_dimensional_blocks_are_two_phases(self) -> None:
        text = (
            "func.func @k(%x: tensor<256x256xf32>) -> (tensor<256x256xf8E4M3FN>, "
            "tensor<2x2xf32>) {\n  %d, %s = quant.dynamic_quantize %x block([128, 128]) : "
            "tensor<256x256xf32> -> tensor<256x256xf8E4M3FN>, tensor<2x2xf32>\n"
            "  func.return %d, %s : tensor<256x256xf8E4M3FN>, tensor<2x2xf32>\n}"
        )
        module = parse_module(text, "<test>")
        LowerQuantPass().apply(make_context(), module)
        phases = spec_of(str(module), "k").phases
        assert len(phases) > 1 and not any(p.tiled for p in phases)

    def test_phases_run_in_order(self) -> None:
        kernel = compile_module(PER_TENSOR_AMAX)["amax"]
        x = np.arange(256, dtype=np.float32).reshape(8, 32) - 100
        amax, y = kernel(x)
        assert amax == 155
        np.testing.assert_array_equal(y, x / np.float32(155))
        x8 = x[:, :8]
        np.testing.assert_array_equal(compile_module(CROSS_ROWS)["cross"](x8), x8 - x8.sum(axis=1))


# --------------------------------------------------------------------------------------
# LLVM IR and host assembly


def hot_loop_lines(asm: str) -> list[str]:
    """The instructions of the quantize arithmetic: divide, round, convert."""
    return [
        line.strip()
        for line in asm.splitlines()
        if re.search(r"\b(vdivps|vrndscaleps|vroundps|vcvttps2dq)\b", line)
    ]


class Test_LLVM:
    def test_llvm_ir_text(self) -> None:
        text = emit(parse_lowered(QUANTIZE), "llvm")
        assert 'define void @"quantize__phase0"(ptr %".1", ptr %".2", i64 %".3", i64 %".4")' in text
        assert 'define void @"quantize__serial"(ptr %".1", ptr %".2")' in text
        assert re.search(r'declare float @"llvm.maxnum.f32"\(float %"\.1", float %"\.2"\)', text)
        assert 'call float @"llvm.roundeven.f32"' in text
        assert "noalias" in text and "getelementptr inbounds" in text
        assert "d1.unit.header" in text and "d1.strided.header" in text
        assert text.startswith("; ModuleID") and "target triple" in text

    def test_optimized_ir_is_vectorized(self) -> None:
        text = emit(parse_lowered(QUANTIZE), "llvm-opt")
        assert "<16 x float>" in text or "<8 x float>" in text

    @pytest.mark.skipif(
        "+avx512f" not in target.host_config().features, reason="host has no AVX-512"
    )
    def test_hot_loop_uses_zmm_on_avx512(self) -> None:
        lines = hot_loop_lines(emit(parse_lowered(QUANTIZE), "asm"))
        assert any("zmm" in line for line in lines if line.startswith("vdivps")), lines
        assert any("zmm" in line for line in lines if line.startswith("vcvttps2dq")), lines

    @pytest.mark.parametrize(
        ("variable", "value"), [("QOPT_CPU", "haswell"), ("QOPT_FEATURES", "-avx512f")]
    )
    def test_forced_avx2_uses_ymm(
        self, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
    ) -> None:
        monkeypatch.setenv(variable, value)
        config = target.host_config()
        asm = emit(parse_lowered(QUANTIZE), "asm", config)
        lines = hot_loop_lines(asm)
        assert any("ymm" in line for line in lines if line.startswith("vdivps")), lines
        assert "zmm" not in asm
        # ... and that code runs here, with the same answers.
        kernel = compile_module(QUANTIZE, config=config)["quantize"]
        x = np.linspace(-300, 300, 64_000, dtype=np.float32).reshape(64, 1000)
        expected = np.clip(np.round(x / np.float32(0.75)), -128, 127).astype(np.int8)
        np.testing.assert_array_equal(kernel(x, np.float32(0.75)), expected)

    def test_config_is_part_of_the_cache_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        host = compile_module(QUANTIZE)
        monkeypatch.setenv("QOPT_CPU", "haswell")
        assert compile_module(QUANTIZE, config=target.host_config()) is not host


# --------------------------------------------------------------------------------------
# Errors


def translation_error(text: str) -> TranslationError:
    with pytest.raises(TranslationError) as info:
        translate_module(parse_lowered(text, "test.mlir"))
    return info.value


class Test_Errors:
    def test_unsupported_body_op_names_op_and_location(self) -> None:
        error = translation_error(
            body_module(
                '    %s = math.sin %a : f32 loc("test.mlir":5:10)\n    linalg.yield %s : f32'
            )
        )
        assert "unsupported op 'math.sin'" in str(error)
        assert 'loc("test.mlir":5:10)' in str(error) and "@f" in str(error)

    def test_error_carries_the_op(self) -> None:
        error = translation_error(
            body_module(
                '    %s = math.sin %a : f32 loc("test.mlir":5:10)\n    linalg.yield %s : f32'
            )
        )
        assert error.op is not None and error.op.name == "math.sin"
        assert error.reason.startswith("unsupported op 'math.sin'")

    def test_unknown_location_prints_the_op(self) -> None:
        error = translation_error(
            body_module("    %s = math.tanh %a : f32\n    linalg.yield %s : f32")
        )
        assert "unsupported op 'math.tanh'" in str(error)
        assert "loc(unknown)" in str(error) and "math.tanh %a : f32" in str(error)

    def test_unsupported_function_level_op(self) -> None:
        text = """\
func.func @g(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = arith.addf %x, %x : tensor<4xf32> loc("test.mlir":2:8)
  func.return %y : tensor<4xf32>
}
"""
        error = translation_error(text)
        assert "'arith.addf' at function level" in str(error) and "test.mlir" in str(error)

    def test_float_arithmetic_on_bf16_is_rejected(self) -> None:
        error = translation_error(
            body_module(
                "    %s = arith.addf %a, %a : bf16\n    linalg.yield %s : bf16", "bf16", "bf16"
            )
        )
        assert "'arith.addf' on bf16 values" in str(error)

    def test_double_rounding_truncf_is_rejected(self) -> None:
        error = translation_error(
            body_module(
                "    %s = arith.truncf %a : f64 to bf16\n    linalg.yield %s : bf16", "f64", "bf16"
            )
        )
        assert "round twice" in str(error)

    def test_unsupported_element_type(self) -> None:
        error = translation_error(body_module("    linalg.yield %a : i3", "i3", "i3"))
        assert "unsupported element type i3" in str(error)

    def test_dynamic_size_from_an_unsupported_op(self) -> None:
        text = """\
func.func @d(%x: tensor<?xf32>, %n: tensor<index>) -> tensor<?xf32> {
  %k = tensor.extract %n[] : tensor<index>
  %e = tensor.empty(%k) : tensor<?xf32>
  func.return %e : tensor<?xf32>
}
"""
        assert "a tensor size must be computed at function level" in str(translation_error(text))

    def test_out_of_bounds_map(self) -> None:
        """xDSL's verifier rejects this too; the translator checks on its own (a module built
        in Python need not have been verified) rather than emit an out-of-bounds load."""
        text = QUANTIZE.replace(
            "affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> ()>",
            "affine_map<(d0, d1) -> (d0, d1 + 1)>, affine_map<(d0, d1) -> ()>",
            1,
        )
        module = Parser(lowered_context(), text).parse_module()  # not verified
        with pytest.raises(TranslationError, match=r"ranges over \[1, 1000\] outside \[0, 1000\)"):
            translate_module(module)

    def test_non_affine_map(self) -> None:
        text = QUANTIZE.replace(
            "affine_map<(d0, d1) -> ()>, affine_map<(d0, d1) -> (d0, d1)>]",
            "affine_map<(d0, d1) -> ()>, affine_map<(d0, d1) -> (d0, d1 mod 1000)>]",
        )
        spec_of(text, "quantize")  # mod by a constant is fine
        bad = QUANTIZE.replace(
            "affine_map<(d0, d1) -> ()>, affine_map<(d0, d1) -> (d0, d1)>]",
            "affine_map<(d0, d1) -> ()>, affine_map<(d0, d1) -> (d0, d1 ceildiv 1)>]",
        )
        assert "not supported" in str(translation_error(bad))
