"""The ten dtypes: promotion, casts, overflow checks, numpy interop, printing and 16-bit float
arithmetic (float16/bfloat16 compute in float32 and round once, as PyTorch's CPU kernels).

Oracles: PyTorch's promotion table recorded below (and ``torch.result_type`` live when PyTorch
is installed), numpy's float16 arithmetic, and a bit-exact float32 -> bfloat16 rounding written
here with numpy.
"""

import numpy as np
import pytest
import rustgrad as torch

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
SHORT = dict(zip(NAMES, ["b", "u8", "i8", "i16", "i32", "i64", "f16", "bf16", "f32", "f64"]))
LONG = {v: k for k, v in SHORT.items()}

# PyTorch 2.15's result_type of two 1-d tensors (row dtype op column dtype).
PROMOTION = """
b    b   u8  i8   i16  i32  i64  f16  bf16 f32  f64
u8   u8  u8  i16  i16  i32  i64  f16  bf16 f32  f64
i8   i8  i16 i8   i16  i32  i64  f16  bf16 f32  f64
i16  i16 i16 i16  i16  i32  i64  f16  bf16 f32  f64
i32  i32 i32 i32  i32  i32  i64  f16  bf16 f32  f64
i64  i64 i64 i64  i64  i64  i64  f16  bf16 f32  f64
f16  f16 f16 f16  f16  f16  f16  f16  f32  f32  f64
bf16 bf16 bf16 bf16 bf16 bf16 bf16 f32 bf16 f32  f64
f32  f32 f32 f32  f32  f32  f32  f32  f32  f32  f64
f64  f64 f64 f64  f64  f64  f64  f64  f64  f64  f64
"""
TABLE = {
    (LONG[row[0]], NAMES[j]): LONG[cell]
    for row in (line.split() for line in PROMOTION.strip().splitlines())
    for j, cell in enumerate(row[1:])
}


def dt(name):
    return getattr(torch, name)


@pytest.mark.parametrize("a", NAMES)
def test_promotion_of_every_pair(a):
    for b in NAMES:
        x, y = torch.ones(2, dtype=dt(a)), torch.ones(2, dtype=dt(b))
        want = dt(TABLE[a, b])
        assert torch.result_type(x, y) is want, (a, b)
        assert (x * y).dtype is want, (a, b)


@pytest.mark.parametrize("a", NAMES)
def test_zero_dim_and_number_operands_keep_the_dimensioned_type(a):
    x = torch.ones(2, dtype=dt(a))
    for b in NAMES:
        # A 0-d tensor only wins when it is of a higher category.
        zero = torch.tensor(1, dtype=dt(b))
        got = torch.result_type(x, zero)
        higher = dt(b).is_floating_point and not dt(a).is_floating_point or (a == "bool" and b != "bool")
        assert got is (dt(b) if higher else dt(a)), (a, b)
    assert torch.result_type(x, 1) is (torch.int64 if a == "bool" else dt(a))
    assert torch.result_type(x, 1.5) is (dt(a) if dt(a).is_floating_point else torch.float32)
    assert torch.result_type(x, True) is dt(a)


def test_promotion_matches_pytorch_live():
    real = pytest.importorskip("torch")
    if real is torch:
        pytest.skip("rustgrad aliased as torch")
    for a in NAMES:
        for b in NAMES:
            for ndim_b in (0, 1):
                shape = (2,) if ndim_b else ()
                want = real.result_type(real.ones(2, dtype=getattr(real, a)), real.ones(shape, dtype=getattr(real, b)))
                got = torch.result_type(torch.ones(2, dtype=dt(a)), torch.ones(shape, dtype=dt(b)))
                assert repr(got) == repr(want), (a, b, ndim_b)


def test_float_to_integer_casts_follow_x86_truncation():
    x = torch.tensor([300.0, -1.0, 1e10, float("nan"), 5000000001.0, -129.7, 2.9e9], dtype=torch.float64)
    assert x.to(torch.int8).tolist() == [44, -1, 0, 0, 0, 127, 0]
    assert x.to(torch.uint8).tolist() == [44, 255, 0, 0, 1, 127, 0]
    assert x.to(torch.int16).tolist() == [300, -1, 0, 0, 0, -129, 0]
    m = -(2**31)
    assert x.to(torch.int32).tolist() == [300, -1, m, m, m, -129, m]


def test_doubles_round_to_16_bit_floats_through_float32():
    x = torch.tensor([0.1, 1 / 3, 100.7, 65504.0, 1e-8], dtype=torch.float64)
    assert x.to(torch.float16).tolist() == [0.0999755859375, 0.333251953125, 100.6875, 65504.0, 0.0]
    assert x.to(torch.bfloat16).float().tolist() == [0.10009765625, 0.333984375, 100.5, 65536.0, 1.0011717677116394e-08]


@pytest.mark.parametrize(
    "name,value,ctype",
    [
        ("int8", 128, "int8_t"),
        ("int8", -129, "int8_t"),
        ("int8", -128.5, "int8_t"),
        ("uint8", 256, "uint8_t"),
        ("uint8", -0.5, "uint8_t"),
        ("uint8", -256, "uint8_t"),
        ("int16", 40000, "int16_t"),
        ("int32", 2**31, "int"),
        ("float16", 65519.0, "c10::Half"),
        ("bfloat16", 1e39, "c10::BFloat16"),
    ],
)
def test_fill_refuses_values_the_dtype_cannot_hold(name, value, ctype):
    x = torch.zeros(2, dtype=dt(name))
    with pytest.raises(RuntimeError, match=f"value cannot be converted to type {ctype} without overflow"):
        x.fill_(value)
    assert x.tolist() == [0, 0]


def test_fill_accepts_edge_values():
    assert torch.zeros(1, dtype=torch.uint8).fill_(-129).tolist() == [127]
    assert torch.zeros(1, dtype=torch.uint8).fill_(255.9).tolist() == [255]
    assert torch.zeros(1, dtype=torch.int8).fill_(127.99).tolist() == [127]
    assert torch.zeros(1, dtype=torch.int32).fill_(-(2**31)).tolist() == [-(2**31)]
    assert torch.zeros(1, dtype=torch.float16).fill_(float("inf")).tolist() == [float("inf")]


def test_tensor_of_python_numbers_checks_the_range():
    assert torch.tensor([-1], dtype=torch.uint8).tolist() == [255]
    assert torch.tensor([127.9], dtype=torch.int8).tolist() == [127]
    for data, name in [([256], "uint8"), ([300.5], "int8"), ([2**31], "int32"), ([40000], "int16"), (1000, "int8")]:
        with pytest.raises(RuntimeError, match=f"value cannot be converted to type {name} without overflow"):
            torch.tensor(data, dtype=dt(name))
    assert torch.tensor([70000], dtype=torch.float16).tolist() == [float("inf")]


@pytest.mark.parametrize("np_type", [np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32])
def test_numpy_round_trips_keep_the_dtype(np_type):
    a = np.array([1, 2, 3], dtype=np_type)
    t = torch.from_numpy(a)
    assert t.numpy().dtype == np_type
    assert torch.tensor(a).numpy().dtype == np_type
    a[0] = 7  # from_numpy shares memory
    assert t.tolist()[0] == 7


def test_numpy_refuses_what_pytorch_refuses():
    with pytest.raises(TypeError, match="Got unsupported ScalarType BFloat16"):
        torch.zeros(2, dtype=torch.bfloat16).numpy()
    with pytest.raises(TypeError, match=r"can't convert np.ndarray of type numpy.object_. The only supported types"):
        torch.from_numpy(np.array([1], dtype=object))


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "float16", "bfloat16"])
def test_repr_names_the_dtype(name):
    body = "[[1., 2.],\n        [3., 4.]]" if "float" in name else "[[1, 2],\n        [3, 4]]"
    assert repr(torch.tensor([[1, 2], [3, 4]]).to(dt(name))) == f"tensor({body}, dtype=torch.{name})"


def test_repr_of_16_bit_values():
    h = torch.tensor([1.5, -2.25, 1e-3], dtype=torch.float16)
    assert repr(h) == "tensor([ 1.5000e+00, -2.2500e+00,  1.0004e-03], dtype=torch.float16)"
    b = torch.tensor([1.5, -2.25, 1e-3], dtype=torch.bfloat16)
    assert repr(b) == "tensor([ 1.5000e+00, -2.2500e+00,  9.9945e-04], dtype=torch.bfloat16)"
    assert repr(torch.zeros(0, dtype=torch.int32)) == "tensor([], dtype=torch.int32)"
    w = torch.ones(2, dtype=torch.float16, requires_grad=True)
    assert repr(w * 2) == "tensor([2., 2.], dtype=torch.float16, grad_fn=<MulBackward0>)"


def to_bfloat16(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 values (as float32), round to nearest even, NaN kept."""
    bits = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(a), np.float32(np.nan), out)


def test_16_bit_arithmetic_rounds_once_from_float32():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200).astype(np.float16)
    b = (rng.normal(size=200) + 3).astype(np.float16)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    for got, want in [
        (ta + tb, a + b),
        (ta * tb, a * b),
        (ta / tb, a / b),
        (ta.exp(), np.exp(a.astype(np.float32)).astype(np.float16)),
        (ta.sigmoid(), (1 / (1 + np.exp(-a.astype(np.float32)))).astype(np.float16)),
    ]:
        assert got.dtype is torch.float16
        np.testing.assert_array_equal(got.numpy(), want)
    fa, fb = to_bfloat16(a.astype(np.float32)), to_bfloat16(b.astype(np.float32))
    xa, xb = torch.tensor(fa).bfloat16(), torch.tensor(fb).bfloat16()
    for got, want in [(xa + xb, fa + fb), (xa * xb, fa * fb), (xa / xb, fa / fb), (xa.tanh(), np.tanh(fa))]:
        assert got.dtype is torch.bfloat16
        np.testing.assert_array_equal(got.float().numpy(), to_bfloat16(want))


def test_16_bit_matmul_accumulates_in_float32():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(8, 16)).astype(np.float16)
    b = rng.normal(size=(16, 4)).astype(np.float16)
    got = torch.from_numpy(a) @ torch.from_numpy(b)
    want = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float16)
    assert got.dtype is torch.float16
    np.testing.assert_allclose(got.numpy().astype(np.float64), want.astype(np.float64), rtol=2e-3, atol=1e-3)


def test_16_bit_leaves_get_gradients():
    for name in ("float16", "bfloat16"):
        w = torch.tensor([1.5, -2.0, 0.25], dtype=dt(name), requires_grad=True)
        (w * w).sum().backward()
        assert w.grad.dtype is dt(name)
        assert w.grad.tolist() == [3.0, -4.0, 0.5]


def test_integer_arithmetic_wraps_in_the_type():
    assert (torch.tensor([250], dtype=torch.uint8) + torch.tensor([10], dtype=torch.uint8)).tolist() == [4]
    assert torch.tensor([-128], dtype=torch.int8).abs().tolist() == [-128]
    assert (torch.tensor([100], dtype=torch.int8) * 3).tolist() == [44]
    i = torch.tensor([1, 2, 3], dtype=torch.int32)
    assert (i / 2).dtype is torch.float32
    assert i.sum().dtype is torch.int64
    assert (-i).dtype is torch.int32
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed."):
        i ** -1


def test_conversion_methods_and_dtype_flags():
    x = torch.ones(2)
    for method, name in [
        ("half", "float16"),
        ("bfloat16", "bfloat16"),
        ("int", "int32"),
        ("short", "int16"),
        ("char", "int8"),
        ("byte", "uint8"),
    ]:
        assert getattr(x, method)().dtype is dt(name)
    assert torch.half is torch.float16 and torch.int is torch.int32 and torch.short is torch.int16
    assert not torch.uint8.is_signed and not torch.bool.is_signed and torch.int8.is_signed
    assert [dt(n).itemsize for n in NAMES] == [1, 1, 1, 2, 4, 8, 2, 2, 4, 8]
    assert torch.float16.is_floating_point and not torch.int32.is_floating_point


def test_in_place_results_cast_within_a_category_only():
    u = torch.zeros(2, dtype=torch.uint8)
    u.add_(torch.ones(2, dtype=torch.int32))
    assert u.dtype is torch.uint8 and u.tolist() == [1, 1]
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Int"):
        torch.zeros(2, dtype=torch.int32).add_(torch.ones(2))


@pytest.fixture
def restore_default_dtype():
    yield
    torch.set_default_dtype(torch.float32)


def test_set_default_dtype(restore_default_dtype):
    assert torch.get_default_dtype() is torch.float32
    torch.set_default_dtype(torch.float64)
    assert torch.get_default_dtype() is torch.float64
    assert torch.tensor([1.5]).dtype is torch.float64
    assert torch.ones(2).dtype is torch.float64
    assert (torch.tensor([1, 2]) * 1.5).dtype is torch.float64
    assert torch.arange(3.0).dtype is torch.float64
    assert torch.randn(2).dtype is torch.float64
    assert torch.zeros(2).float().dtype is torch.float32
    with pytest.raises(TypeError, match="only floating-point types are supported as the default type"):
        torch.set_default_dtype(torch.int32)
    assert torch.get_default_dtype() is torch.float64
