"""Inputs users have, through the Python API, bit for bit against the numpy oracle.

Torch tensors (skipped cleanly without torch) and other DLPack / ``__array__`` producers,
torch dtypes and numpy dtype names, float64 scale arrays (rounded to float32 like a Python
float), integer zero-point arrays of any width (range-checked), and a scalar zero point
with per-axis or per-block scales (broadcast).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import qopt
from qopt.api import arrays
from tests.support import oracle
from tests.support.bits import assert_same_bits

F32 = np.float32
X = (np.random.default_rng(3).standard_normal((5, 8)) * 4).astype(F32)
SCALES = np.linspace(0.05, 0.9, 8, dtype=F32)


# --- dtypes: numpy names, ml_dtypes names, MLIR spellings --------------------------------------

DTYPE_NAMES = [
    ("int8", "i8"),
    ("uint8", "ui8"),
    ("int16", "i16"),
    ("uint16", "ui16"),
    ("int4", "i4"),
    ("uint4", "ui4"),
    ("float8_e4m3fn", "f8E4M3FN"),
    ("float8_e5m2", "f8E5M2"),
    ("float4_e2m1fn", "f4E2M1FN"),
]


@pytest.mark.parametrize(("name", "mlir"), DTYPE_NAMES)
def test_numpy_dtype_name_as_storage_dtype(name, mlir):
    got = qopt.quantize(X, SCALES, dtype=name, axis=1)
    assert_same_bits(got, oracle.quantize(X, SCALES, dtype=mlir, axis=1))


@pytest.mark.parametrize(
    ("name", "mlir"), [("float32", "f32"), ("float16", "f16"), ("bfloat16", "bf16")]
)
def test_numpy_dtype_name_as_expressed_dtype(name, mlir):
    q = qopt.quantize(X, 0.25, dtype="i8")
    got = qopt.dequantize(q, 0.25, dtype=name)
    assert_same_bits(got, oracle.dequantize(q, F32(0.25), dtype=mlir))


@pytest.mark.parametrize(
    ("name", "form"),
    [
        ("float8_e8m0fnu", {"dtype": "float8_e4m3fn", "block_size": 4}),
        ("float8_e4m3fn", {"dtype": "float4_e2m1fn", "block_size": 4}),
        ("bfloat16", {"dtype": "int8", "block_size": 4}),
        ("float16", {"dtype": "int8"}),
    ],
)
def test_numpy_dtype_name_as_scale_dtype(name, form):
    got = qopt.dynamic_quantize(X, scale_dtype=name, **form)
    mlir = {n: m for n, m in DTYPE_NAMES}
    mlir |= {"float8_e8m0fnu": "f8E8M0FNU", "bfloat16": "bf16", "float16": "f16"}
    want = oracle.dynamic_quantize(
        X, scale_dtype=mlir[name], **{**form, "dtype": mlir[form["dtype"]]}
    )
    for g, w in zip(got, want):
        assert_same_bits(g, w)


def test_numpy_char_codes_are_not_dtype_names():
    """ "i4" is the MLIR 4-bit integer (not numpy's int32); numpy codes like "f4" are no
    names and are rejected, naming the argument."""
    assert qopt.quantize(X, 0.5, dtype="i4").dtype == ml_dtypes.int4
    with pytest.raises(ValueError, match="^dtype must be one of"):
        qopt.dequantize(qopt.quantize(X, 0.5, dtype="i8"), 0.5, dtype="f4")
    with pytest.raises(ValueError, match="^dtype must be one of"):
        qopt.quantize(X, 0.5, dtype="int64")


def test_ml_dtypes_and_numpy_types_as_dtype():
    assert_same_bits(
        qopt.quantize(X, 0.5, dtype=ml_dtypes.uint4), oracle.quantize(X, F32(0.5), dtype="ui4")
    )
    assert_same_bits(
        qopt.quantize(X, 0.5, dtype=np.dtype(np.int16)),
        oracle.quantize(X, F32(0.5), dtype="i16"),
    )


# --- scales: float64 arrays, Python floats and f32 agree -----------------------------------------


def test_float64_scale_array_is_rounded_to_float32():
    scale64 = np.linspace(0.1, 0.8, 8)  # not representable in f32: rounded to nearest
    got = qopt.quantize(X, scale64, dtype="i8", axis=1)
    assert_same_bits(got, oracle.quantize(X, scale64.astype(F32), dtype="i8", axis=1))
    back = qopt.dequantize(got, scale64, axis=1)
    assert_same_bits(back, oracle.dequantize(got, scale64.astype(F32), axis=1))


def test_python_float_scale_and_float64_scale_array_agree():
    a = qopt.quantize(X, 0.1, dtype="i8")
    b = qopt.quantize(X, np.array(0.1), dtype="i8")
    c = qopt.quantize(X, np.array([0.1]), dtype="i8")
    assert_same_bits(a, oracle.quantize(X, F32(0.1), dtype="i8"))
    assert_same_bits(a, b)
    assert_same_bits(a, c)


def test_integer_scale_array_is_accepted():
    scale = np.arange(1, 9, dtype=np.int32)
    got = qopt.quantize(X, scale, dtype="i8", axis=1)
    assert_same_bits(got, oracle.quantize(X, scale.astype(F32), dtype="i8", axis=1))


def test_float16_and_bfloat16_scale_arrays_keep_their_format():
    for dtype in (np.float16, ml_dtypes.bfloat16):
        scale = SCALES.astype(dtype)
        got = qopt.quantize(X, scale, dtype="i8", axis=1)
        assert_same_bits(got, oracle.quantize(X, scale.astype(F32), dtype="i8", axis=1))


# --- zero points: any integer width, range-checked; scalars broadcast ----------------------------


@pytest.mark.parametrize(
    "zp_dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64, np.float64]
)
def test_zero_point_array_of_any_width(zp_dtype):
    zp = np.array([0, 1, 2, 3, 4, 5, 100, 127]).astype(zp_dtype)
    got = qopt.quantize(X, SCALES, zp, dtype="i8", axis=1)
    want = oracle.quantize(X, SCALES, zp.astype(np.int8), dtype="i8", axis=1)
    assert_same_bits(got, want)
    back = qopt.dequantize(got, SCALES, zp, axis=1)
    assert_same_bits(back, oracle.dequantize(got, SCALES, zp.astype(np.int8), axis=1))


@pytest.mark.parametrize("zp_dtype", [np.int32, np.int64, np.uint64])
def test_zero_point_array_of_any_width_is_range_checked(zp_dtype):
    zp = np.array([0, 1, 2, 3, 4, 5, 6, 256]).astype(zp_dtype)
    with pytest.raises(ValueError, match=r"^zero_point values must be integers in \[0, 255\].*256"):
        qopt.quantize(X, SCALES, zp, dtype="ui8", axis=1)
    with pytest.raises(ValueError, match=r"^zero_point values must be integers in \[-8, 7\]"):
        qopt.quantize(
            X,
            SCALES,
            np.full(8, -9, zp_dtype if zp_dtype != np.uint64 else np.int64),
            dtype="i4",
            axis=1,
        )


@pytest.mark.parametrize("zp", [3, np.int64(3), np.array(3, np.int32), np.uint8(3)])
def test_scalar_zero_point_broadcasts_with_per_axis_scales(zp):
    got = qopt.quantize(X, SCALES, zp, dtype="ui8", axis=1)
    full = np.full(8, 3, np.uint8)
    assert_same_bits(got, oracle.quantize(X, SCALES, full, dtype="ui8", axis=1))
    back = qopt.dequantize(got, SCALES, zp, axis=1)
    assert_same_bits(back, oracle.dequantize(got, SCALES, full, axis=1))


def test_scalar_zero_point_broadcasts_with_per_block_scales():
    scale = np.linspace(0.1, 0.9, 10, dtype=F32).reshape(5, 2)
    got = qopt.quantize(X, scale, -2, dtype="i8", block_size=4)
    want = oracle.quantize(X, scale, np.full((5, 2), -2, np.int8), dtype="i8", block_size=4)
    assert_same_bits(got, want)


def test_requantize_with_scalar_zero_points_and_per_axis_scales():
    q = qopt.quantize(X, SCALES, 1, dtype="i8", axis=1)
    got = qopt.requantize(q, SCALES, 1, SCALES[::-1].copy(), np.int64(-3), axis=1)
    mid = oracle.dequantize(q, SCALES, np.full(8, 1, np.int8), axis=1)
    want = oracle.quantize(mid, SCALES[::-1].copy(), np.full(8, -3, np.int8), dtype="i8", axis=1)
    assert_same_bits(got, want)


# --- DLPack and __array__ producers -------------------------------------------------------------


class DLPackOnly:
    """An array producer that only speaks DLPack (like a framework tensor on the CPU)."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


class ArrayOnly:
    """An array producer that only has ``__array__``."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __array__(self, dtype=None, copy=None):
        return self._array


def test_dlpack_producer_is_read_in_place():
    x = np.ascontiguousarray(X)
    assert arrays.as_numpy(DLPackOnly(x), "x").ctypes.data == x.ctypes.data
    got = qopt.quantize(DLPackOnly(x), DLPackOnly(SCALES), dtype="i8", axis=1)
    assert isinstance(got, np.ndarray)
    assert_same_bits(got, oracle.quantize(X, SCALES, dtype="i8", axis=1))


def test_array_producer_is_accepted():
    got = qopt.dynamic_quantize(ArrayOnly(X), dtype="i8", block_size=4)
    want = oracle.dynamic_quantize(X, dtype="i8", block_size=4)
    for g, w in zip(got, want):
        assert_same_bits(g, w)


def test_lists_are_not_arrays():
    with pytest.raises(TypeError, match="^x must be a numpy array, a torch tensor"):
        qopt.quantize(X.tolist(), 0.5, dtype="i8")


# --- torch -------------------------------------------------------------------------------------


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _np(t) -> np.ndarray:
    """The bits of a torch result as the numpy array the oracle returns."""
    return arrays.from_torch(t, "result")


def test_torch_in_torch_out(torch):
    x = torch.from_numpy(X.copy())
    got = qopt.quantize(x, torch.from_numpy(SCALES), dtype=torch.int8, axis=1)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int8
    assert_same_bits(got.numpy(), oracle.quantize(X, SCALES, dtype="i8", axis=1))
    back = qopt.dequantize(got, torch.from_numpy(SCALES), axis=1, dtype=torch.bfloat16)
    assert back.dtype == torch.bfloat16
    assert_same_bits(_np(back), oracle.dequantize(got.numpy(), SCALES, axis=1, dtype="bf16"))


def test_torch_input_is_read_without_a_copy(torch):
    x = torch.from_numpy(X.copy())
    assert arrays.as_numpy(x, "x").ctypes.data == x.data_ptr()
    x16 = x.to(torch.bfloat16)
    assert arrays.as_numpy(x16, "x").ctypes.data == x16.data_ptr()
    strided = x.t()
    assert arrays.as_numpy(strided, "x").ctypes.data == strided.data_ptr()
    got = qopt.quantize(strided, 0.25, dtype="i8")
    assert_same_bits(got.numpy(), oracle.quantize(np.ascontiguousarray(X.T), F32(0.25), dtype="i8"))


@pytest.mark.parametrize(
    ("torch_dtype", "mlir"),
    [("float8_e4m3fn", "f8E4M3FN"), ("float8_e5m2", "f8E5M2"), ("uint8", "ui8"), ("int16", "i16")],
)
def test_torch_dtypes_as_storage_dtype(torch, torch_dtype, mlir):
    got = qopt.quantize(torch.from_numpy(X), 0.25, dtype=getattr(torch, torch_dtype))
    assert got.dtype == getattr(torch, torch_dtype)
    assert_same_bits(_np(got), oracle.quantize(X, F32(0.25), dtype=mlir))


@pytest.mark.parametrize("expressed", ["float16", "bfloat16"])
def test_torch_half_inputs(torch, expressed):
    x = torch.from_numpy(X).to(getattr(torch, expressed))
    got = qopt.quantize(x, 0.25, dtype="i8")
    assert_same_bits(got.numpy(), oracle.quantize(_np(x), F32(0.25), dtype="i8"))


def test_torch_mx_scales_and_nvfp4(torch):
    x = torch.from_numpy(np.tile(X, (1, 4)))
    data, scale = qopt.dynamic_quantize(
        x, dtype=torch.float8_e4m3fn, scale_dtype=torch.float8_e8m0fnu, block_size=32
    )
    assert data.dtype == torch.float8_e4m3fn and scale.dtype == torch.float8_e8m0fnu
    want = oracle.dynamic_quantize(
        x.numpy(), dtype="f8E4M3FN", scale_dtype="f8E8M0FNU", block_size=32
    )
    assert_same_bits(_np(data), want[0])
    assert_same_bits(_np(scale), want[1])
    packed, s4 = qopt.dynamic_quantize(
        x, dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16, packed=True
    )
    want = oracle.dynamic_quantize(
        x.numpy(), dtype="f4E2M1FN", scale_dtype="f8E4M3FN", block_size=16
    )
    assert packed.dtype == torch.uint8
    assert_same_bits(packed.numpy(), oracle.pack(want[0]))
    assert_same_bits(_np(s4), want[1])


def test_torch_sub_byte_results_hold_values_one_per_byte(torch):
    x = torch.from_numpy(X)
    q4 = qopt.quantize(x, 0.5, dtype="i4")
    assert q4.dtype == torch.int8
    assert_same_bits(q4.numpy(), oracle.quantize(X, F32(0.5), dtype="i4").astype(np.int8))
    f4 = qopt.quantize(x, 0.5, dtype="f4E2M1FN")
    assert f4.dtype == torch.uint8
    assert_same_bits(f4.numpy(), oracle.quantize(X, F32(0.5), dtype="f4E2M1FN").view(np.uint8))


def test_torch_out_is_written_in_place(torch):
    x = torch.from_numpy(X)
    out = torch.empty((5, 8), dtype=torch.float8_e4m3fn)
    got = qopt.quantize(x, 0.25, dtype="f8E4M3FN", out=out)
    assert got is out
    assert_same_bits(_np(out), oracle.quantize(X, F32(0.25), dtype="f8E4M3FN"))


def test_torch_tensor_requiring_grad_is_read(torch):
    x = torch.from_numpy(X.copy()).requires_grad_()
    got = qopt.fake_quantize(x, dtype="i8", per_token=True)
    assert_same_bits(got.numpy(), oracle.fake_quantize(X, dtype="i8", per_token=True))


def test_torch_packed_pair_dtype_is_rejected_naming_dtype(torch):
    with pytest.raises(ValueError, match="^dtype must be one of"):
        qopt.quantize(torch.from_numpy(X), 0.5, dtype=torch.float4_e2m1fn_x2)


def test_torch_tensor_off_the_cpu_is_rejected_naming_the_argument(torch):
    x = torch.empty((5, 8), device="meta")
    with pytest.raises(ValueError, match="^x must be a CPU tensor"):
        qopt.quantize(x, 0.5, dtype="i8")


def test_torch_scalar_tensors_as_parameters(torch):
    x = torch.from_numpy(X)
    got = qopt.quantize(x, torch.tensor(0.25, dtype=torch.float64), torch.tensor(3), dtype="i8")
    assert_same_bits(got.numpy(), oracle.quantize(X, F32(0.25), np.int8(3), dtype="i8"))
    data, scale = qopt.dynamic_quantize(x, dtype="i8", eps=torch.tensor(1e-5))
    want = oracle.dynamic_quantize(X, dtype="i8", eps=1e-5)
    assert_same_bits(data.numpy(), want[0])
    assert_same_bits(scale.numpy(), want[1])
