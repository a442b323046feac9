"""Misuse of the Python API: each case raises a ValueError / TypeError naming the argument
(or a QuantError, the ValueError of IR errors, with its location), never a wrong result,
a foreign exception type or a traceback from deep inside the compiler.

One test per guarded misuse, named after what it guards (issue 10, "Hardening").
"""

from __future__ import annotations

import gc
import os
import pathlib
import weakref

import ml_dtypes
import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp

import qopt
from qopt.api import kernel_cache
from qopt.errors import QuantError
from qopt.qdialect.context import parse_module
from tests.support import oracle
from tests.support.bits import assert_same_bits

F32 = np.float32
X = np.linspace(-3, 3, 24, dtype=F32).reshape(4, 6)
NVFP4 = {"dtype": "f4E2M1FN", "scale_dtype": "f8E4M3FN", "block_size": 2}


# --- item 1: parameters are checked in the precision the kernel uses -----------------------


def test_scale_that_overflows_float32_is_rejected():
    with pytest.raises(ValueError, match=r"scale 1e\+40 .* becomes inf in float32"):
        qopt.quantize(X, 1e40, dtype="i8")


def test_scale_that_underflows_float32_is_rejected():
    with pytest.raises(ValueError, match=r"scale 1e-50 .* becomes 0 in float32"):
        qopt.quantize(X, 1e-50, dtype="i8")


def test_dequantize_scale_that_overflows_float32_is_rejected():
    q = qopt.quantize(X, 0.5, dtype="i8")
    with pytest.raises(ValueError, match=r"^scale 1e\+40 .* inf"):
        qopt.dequantize(q, 1e40)


def test_requantize_scales_that_leave_float32_are_rejected():
    q = qopt.quantize(X, 0.5, dtype="i8")
    with pytest.raises(ValueError, match=r"^in_scale 1e-50 .* 0 in float32"):
        qopt.requantize(q, 1e-50, None, 0.5, None)
    with pytest.raises(ValueError, match=r"^out_scale 1e\+40 .* inf"):
        qopt.requantize(q, 0.5, None, 1e40, None)


def test_double_quant_scale_that_overflows_float32_is_rejected():
    with pytest.raises(ValueError, match=r"^double_quant_scale 1e\+40 .* inf"):
        qopt.dynamic_quantize(X, double_quant_scale=1e40, **NVFP4)
    q = qopt.quantize(X, 0.5, dtype="f4E2M1FN")
    with pytest.raises(ValueError, match=r"^double_quant_scale 1e-50 .* 0 in float32"):
        qopt.dequantize(q, 0.5, double_quant_scale=1e-50)


@pytest.mark.parametrize(
    ("bad", "words"), [(1e40, "becomes inf"), (1e-50, "becomes 0"), (np.nan, "finite and > 0")]
)
def test_float64_scale_array_element_that_leaves_float32_is_rejected(bad, words):
    scale = np.array([0.5, 0.25, bad, 1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match=f"^scale .*{words}"):
        qopt.quantize(X, scale, dtype="i8", axis=1)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf])
def test_nonpositive_or_infinite_scale_is_rejected(bad):
    with pytest.raises(ValueError, match="^scale must be finite and > 0"):
        qopt.quantize(X, bad, dtype="i8")


def test_e8m0_nan_scale_array_is_rejected():
    scale = np.full((4, 3), 1.0, ml_dtypes.float8_e8m0fnu)
    scale[1, 1] = np.nan
    q = qopt.quantize(X, 0.5, dtype="f8E4M3FN")
    with pytest.raises(ValueError, match="^scale must be finite and > 0, got nan"):
        qopt.dequantize(q, scale, block_size=2)


def test_scale_rounding_rceil_without_e8m0_scale_is_rejected():
    with pytest.raises(ValueError, match="^scale_rounding='rceil' applies to f8E8M0FNU"):
        qopt.dynamic_quantize(X, dtype="i8", scale_rounding="rceil")


def test_double_quant_scale_without_e4m3_scale_is_rejected():
    with pytest.raises(ValueError, match="^double_quant_scale applies to f8E4M3FN"):
        qopt.dynamic_quantize(X, dtype="i8", double_quant_scale=0.5)


@pytest.mark.parametrize("scale_dtype", ["f8E4M3FN", "f8E8M0FNU"])
def test_float8_scale_dtype_with_integer_storage_is_rejected(scale_dtype):
    with pytest.raises(ValueError, match=f"^scale_dtype {scale_dtype} needs float storage"):
        qopt.dynamic_quantize(X, dtype="i8", scale_dtype=scale_dtype, block_size=2)


def test_symmetric_false_with_float_storage_is_rejected():
    with pytest.raises(ValueError, match="^symmetric=False needs integer storage"):
        qopt.dynamic_quantize(X, dtype="f8E4M3FN", symmetric=False)


def test_saturate_false_with_integer_storage_is_rejected():
    with pytest.raises(ValueError, match="^saturate=False applies to float storage"):
        qopt.quantize(X, 0.5, dtype="i8", saturate=False)


@pytest.mark.parametrize(
    "option",
    [{"eps": 1e-3}, {"symmetric": False}, {"scale_dtype": "f16"}, {"zero_point_domain": "float"}],
)
def test_static_fake_quantize_rejects_dynamic_options(option):
    (name,) = option
    with pytest.raises(ValueError, match=f"^{name} applies to dynamic fake quantization"):
        qopt.fake_quantize(X, 0.5, dtype="i8", **option)


def test_axis_with_block_shape_is_rejected():
    with pytest.raises(ValueError, match="^axis does not apply with block_shape"):
        qopt.quantize(X, np.ones((2, 3), F32), dtype="i8", axis=0, block_shape=[2, 2])


def test_dynamic_quantize_axis_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="^axis 5 is out of range"):
        qopt.dynamic_quantize(X, dtype="i8", axis=5)
    with pytest.raises(TypeError, match="^axis must be an int"):
        qopt.dynamic_quantize(X, dtype="i8", axis=1.0)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("form", [{"dtype": "i8"}, {"dtype": "ui8", "symmetric": False}])
def test_dynamic_quantize_axis_without_block_size_is_per_channel(axis, form):
    """``axis`` alone: one scale per index of ``axis`` (statistics over the other
    dimensions), the per-axis scale that ``dequantize(..., axis=axis)`` takes back."""
    x = (np.random.default_rng(5).standard_normal((5, 7)) * np.arange(1, 8)).astype(F32)
    got = qopt.dynamic_quantize(x, axis=axis, **form)
    blocks = [-1, -1]
    blocks[axis] = 1
    want = oracle.dynamic_quantize(x, block_shape=blocks, **form)
    assert got[1].shape == (x.shape[axis],)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_same_bits(g, w.reshape(g.shape), f"result {i}")
    back = qopt.dequantize(got[0], got[1], *got[2:], axis=axis)
    assert_same_bits(back, oracle.dequantize(got[0], got[1], *got[2:], axis=axis))


def test_dynamic_quantize_without_axis_is_per_tensor():
    data, scale = qopt.dynamic_quantize(X, dtype="i8")
    assert scale.shape == ()
    want = oracle.dynamic_quantize(X, dtype="i8")
    assert_same_bits(data, want[0])
    assert_same_bits(scale, want[1])


# --- item 2: edge cases of the arguments -----------------------------------------------------


@pytest.mark.parametrize("eps", [float("inf"), float("nan"), 0.0, -1.0, 1e-50, 1e40])
def test_eps_that_is_not_a_positive_float32_is_rejected_naming_eps(eps):
    with pytest.raises(ValueError, match="^eps "):
        qopt.dynamic_quantize(X, dtype="i8", eps=eps)
    with pytest.raises(ValueError, match="^eps "):
        qopt.fake_quantize(X, dtype="i8", eps=eps)


def test_eps_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="^eps must be a real number"):
        qopt.dynamic_quantize(X, dtype="i8", eps="1e-5")
    with pytest.raises(ValueError, match="^eps must be a single number"):
        qopt.dynamic_quantize(X, dtype="i8", eps=np.ones(2))


def test_per_token_with_axis_is_rejected():
    with pytest.raises(ValueError, match="^per_token excludes axis"):
        qopt.fake_quantize(X, dtype="i8", per_token=True, axis=0)


@pytest.mark.parametrize("zp", [2**70, -(2**70), 2**63, 300])
def test_zero_point_beyond_the_storage_range_is_a_value_error(zp):
    with pytest.raises(ValueError, match=r"^zero_point values must be integers in \[-128, 127\]"):
        qopt.quantize(X, 0.5, zp, dtype="i8")


def test_zero_point_that_is_not_an_integer_is_rejected():
    with pytest.raises(ValueError, match="^zero_point values must be integers"):
        qopt.quantize(X, 0.5, 1.5, dtype="i8")
    with pytest.raises(ValueError, match="^zero_point values must be integers"):
        qopt.quantize(X, 0.5, np.nan, dtype="i8")
    with pytest.raises(TypeError, match="^zero_point must be a number"):
        qopt.quantize(X, 0.5, True, dtype="i8")


def test_numpy_float32_eps_is_accepted():
    form = {"dtype": "i8", "block_size": 3, "symmetric": False}
    x = np.zeros((4, 6), F32)  # all-zero blocks: the scale is eps
    got = qopt.dynamic_quantize(x, eps=np.float32(1e-5), **form)
    want = oracle.dynamic_quantize(x, eps=1e-5, **form)
    for g, w in zip(got, want):
        assert_same_bits(g, w)
    fake = qopt.fake_quantize(X, dtype="i8", eps=np.float64(1e-4), per_token=True)
    assert_same_bits(fake, oracle.fake_quantize(X, dtype="i8", eps=1e-4, per_token=True))


@pytest.mark.parametrize(
    "scale",
    [ml_dtypes.bfloat16(0.375), np.float16(0.375), np.float64(0.375), np.int64(2), 2],
    ids=["bfloat16", "float16", "float64", "int64", "int"],
)
def test_real_numpy_scalar_scale_is_accepted(scale):
    got = qopt.quantize(X, scale, dtype="i8")
    assert_same_bits(got, oracle.quantize(X, F32(float(scale)), dtype="i8"))


@pytest.mark.parametrize("scale", [True, "0.5", None, [0.5], 1 + 2j])
def test_scale_that_is_not_a_real_number_or_array_is_a_type_error(scale):
    with pytest.raises(TypeError, match="^scale must"):
        qopt.quantize(X, scale, dtype="i8")


def test_fractional_block_shape_is_a_type_error():
    with pytest.raises(TypeError, match=r"^block_shape\[0\] must be an int, got 2.5"):
        qopt.quantize(X, np.ones((2, 3), F32), dtype="i8", block_shape=[2.5, 2])
    with pytest.raises(TypeError, match="^block_shape must be a sequence of ints"):
        qopt.quantize(X, np.ones((2, 3), F32), dtype="i8", block_shape="22")


def test_fractional_block_size_is_a_type_error():
    with pytest.raises(TypeError, match="^block_size must be an int, got 2.5"):
        qopt.quantize(X, np.ones((4, 3), F32), dtype="i8", block_size=2.5)


def test_fractional_packed_shape_is_a_type_error():
    packed = qopt.quantize(X, 0.5, dtype="i4", packed=True)
    with pytest.raises(TypeError, match=r"^shape\[1\] must be an int"):
        qopt.dequantize(packed, 0.5, storage_dtype="i4", shape=[4, 6.0])


@pytest.mark.parametrize("shape", [(2, 0, 3), (0,), (3, 0), (0, 4)])
@pytest.mark.parametrize("storage", ["i4", "ui2", "f4E2M1FN"])
def test_empty_packed_quantize_returns_no_bytes(shape, storage):
    x = np.zeros(shape, F32)
    packed = qopt.quantize(x, 0.5, dtype=storage, packed=True)
    assert packed.dtype == np.uint8 and packed.shape == (0,)
    restored = qopt.dequantize(packed, 0.5, storage_dtype=storage, shape=shape)
    assert restored.shape == shape


def test_empty_packed_dynamic_quantize_returns_no_bytes():
    x = np.zeros((0, 32), F32)
    data, scale = qopt.dynamic_quantize(x, packed=True, **{**NVFP4, "block_size": 16})
    assert data.dtype == np.uint8 and data.shape == (0,)
    assert scale.shape == (0, 2)
    out = (np.empty(0, np.uint8), np.empty((0, 2), ml_dtypes.float8_e4m3fn))
    got = qopt.dynamic_quantize(x, packed=True, out=out, **{**NVFP4, "block_size": 16})
    assert got[0] is out[0]


# --- item 4: one exception family --------------------------------------------------------------

GOOD_IR = """func.func @k(%x: tensor<4xf32>) -> tensor<4xi8> {
  %q = quant.quantize %x scale(0.5) : tensor<4xf32> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}
"""


def test_compile_parse_error_is_a_quant_error_with_location():
    with pytest.raises(QuantError) as info:
        qopt.compile("func.func @f(")
    assert isinstance(info.value, ValueError)
    assert info.value.location.startswith("<compile>:1:")
    assert str(info.value).startswith(f"{info.value.location}: error: ")


BAD_AXIS_IR = """func.func @k(%x: tensor<4xf32>, %s: tensor<4xf32>) -> tensor<4xi8> {
  %q = quant.quantize %x scale(%s : tensor<4xf32>) per_axis(3) : tensor<4xf32> -> tensor<4xi8>
  func.return %q : tensor<4xi8>
}
"""


def test_compile_verifier_error_is_a_quant_error_with_location():
    with pytest.raises(QuantError, match="^<compile>:2:3: error: .*axis") as info:
        qopt.compile(BAD_AXIS_IR)
    assert info.value.location == "<compile>:2:3"
    assert "axis" in info.value.message


def test_compile_translation_error_is_a_quant_error():
    """codegen's TranslationError (IR that verifies but does not translate) is wrapped."""
    text = (
        "func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
        "  %y = math.erf %x : tensor<4xf32>\n  func.return %y : tensor<4xf32>\n}\n"
    )
    with pytest.raises(QuantError, match="unsupported op 'math.erf'") as info:
        qopt.compile(text)
    assert info.value.location == "<compile>:2:3"
    assert type(info.value).__mro__[1] is ValueError


def test_compile_takes_dynamic_shapes_and_checks_them_per_call():
    """A kernel of dynamic shape takes any extents; ones that do not fit its IR are a
    ValueError naming the op's location and the dimensions, before any code runs."""
    text = (
        "func.func @f(%x: tensor<?xf32>, %s: tensor<?xf32>) -> tensor<?xi8> {\n"
        "  %q = quant.quantize %x scale(%s : tensor<?xf32>) per_axis(0) : tensor<?xf32> -> tensor<?xi8>\n"
        "  func.return %q : tensor<?xi8>\n}\n"
    )
    kernel = qopt.compile(text)
    for n in (0, 1, 5, 100):
        x = np.arange(n, dtype=F32)
        assert_same_bits(kernel(x, np.ones(n, F32)), x.astype(np.int8))
    with pytest.raises(
        ValueError,
        match="^@f: <compile>:2:3: linalg.generic operand 1 dim 0: dim 0 of argument 1 is 4 but "
        "dim 0 of argument 0 is 3; they must be equal$",
    ):
        kernel(np.ones(3, F32), np.ones(4, F32))
    with pytest.raises(ValueError, match=r"must have shape f32\[\?\], got \(3, 1\)"):
        kernel(np.ones((3, 1), F32), np.ones(3, F32))


def test_compile_of_a_module_op_verifies_it_with_quant_errors():
    module = parse_module(GOOD_IR, "<m>")
    kernel = qopt.compile(module)
    assert_same_bits(kernel(np.ones(4, F32)), np.full(4, 2, np.int8))
    bad = parse_module(BAD_AXIS_IR, "<m>")
    with pytest.raises(QuantError, match="^<m>:2:3: error: "):
        qopt.compile(bad)
    assert isinstance(module, ModuleOp)


def test_compile_reads_a_path(tmp_path):
    path = tmp_path / "k.mlir"
    path.write_text(GOOD_IR)
    for source in (path, str(path)):
        assert_same_bits(qopt.compile(source)(np.ones(4, F32)), np.full(4, 2, np.int8))
    path.write_text(BAD_AXIS_IR)
    with pytest.raises(QuantError) as info:
        qopt.compile(pathlib.Path(path))
    assert info.value.location == f"{path}:2:3"


def test_compile_missing_file_names_module_or_text(tmp_path):
    with pytest.raises(ValueError, match="^module_or_text: cannot read the file"):
        qopt.compile(str(tmp_path / "missing.mlir"))
    with pytest.raises(ValueError, match="^module_or_text: cannot read the file"):
        qopt.compile(tmp_path)  # a directory


def test_compile_of_something_else_is_a_type_error():
    with pytest.raises(TypeError, match="^module_or_text must be"):
        qopt.compile(b"func.func @f() {}")


def test_api_errors_are_value_or_type_errors():
    """The request the dialect rejects comes back as a QuantError (a ValueError)."""
    assert issubclass(QuantError, ValueError)
    assert qopt.QuantError is QuantError


# --- item 5: the kernel table is a bounded LRU ------------------------------------------------


@pytest.fixture
def small_kernel_table():
    _, bound = qopt.kernel_cache_size()
    qopt.set_kernel_cache_size(16)
    yield 16
    qopt.set_kernel_cache_size(bound)
    qopt.clear_kernel_cache()  # the jit's modules of the test's signatures, ~1 MB each


def test_api_kernel_table_stays_at_its_bound(small_kernel_table):
    """Three hundred distinct kinds (block sizes): the table never holds more than its
    bound, and an evicted kind compiles again and still computes the right bits."""
    bound = small_kernel_table
    one = np.full(1, 0.5, F32)
    for n in range(1, 301):
        qopt.quantize(np.zeros(n, F32), one, dtype="i8", block_size=n)
        held, limit = qopt.kernel_cache_size()
        assert held <= bound and limit == bound
    assert qopt.kernel_cache_size() == (bound, bound)
    x = np.linspace(-9, 9, 5, dtype=F32)  # kind 5 was evicted long ago
    got = qopt.quantize(x, one, dtype="i8", block_size=5)
    assert_same_bits(got, oracle.quantize(x, one, dtype="i8", block_size=5))


def test_evicted_kernel_can_be_freed(small_kernel_table):
    """The API drops its reference on eviction: once qopt.codegen.jit forgets the module too,
    nothing keeps the kernel (and its engine) alive."""
    qopt.quantize(np.zeros(3, F32), 0.5, dtype="ui8")
    key = next(reversed(kernel_cache.KERNELS._entries))
    kernel = weakref.ref(kernel_cache.KERNELS.get(key))
    qopt.set_kernel_cache_size(0)
    assert qopt.kernel_cache_size()[0] == 0
    qopt.clear_kernel_cache()
    gc.collect()
    assert kernel() is None


def test_kernel_cache_size_must_be_a_nonnegative_int():
    with pytest.raises(ValueError, match="^size must be an int >= 0"):
        qopt.set_kernel_cache_size(-1)
    with pytest.raises(TypeError, match="^size must be an int"):
        qopt.set_kernel_cache_size(1.5)


def test_kernel_cache_size_from_the_environment(monkeypatch):
    table = kernel_cache.KernelTable()
    monkeypatch.setenv(kernel_cache.KERNEL_CACHE_SIZE_ENV, "7")
    assert table.capacity == 7
    monkeypatch.setenv(kernel_cache.KERNEL_CACHE_SIZE_ENV, "many")
    with pytest.raises(ValueError, match=f"^{kernel_cache.KERNEL_CACHE_SIZE_ENV} must be an int"):
        kernel_cache.KernelTable().capacity  # noqa: B018
    assert os.environ[kernel_cache.KERNEL_CACHE_SIZE_ENV] == "many"
