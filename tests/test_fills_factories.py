"""Random fills, factories and conversions as PyTorch does them: which dtypes and arguments are
refused (class and message), the order random numbers are drawn in, numbers that do not fit a
dtype, ``Tensor.to`` and ``view(dtype)``. Main assertions use closed forms and numpy; the
comparisons with PyTorch run only where it is installed."""

import math

import numpy as np
import pytest
import rustgrad as torch

NEG_BOOL = (
    "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, "
    "use the `~` or `logical_not()` operator instead."
)
BOOL_SIZE = "Expected scalar.isIntegral( false) to be true, but got false."


def _next():
    """The next uniform the default generator gives (to see whether a call drew anything)."""
    return torch.rand(1).item()


# ----- random fills: refusals -----


@pytest.mark.parametrize("dtype,name", [(torch.int64, "Long"), (torch.bool, "Bool")])
def test_uniform_and_normal_have_no_integer_kernel(dtype, name):
    x = torch.zeros(2, 3, dtype=dtype)
    with pytest.raises(NotImplementedError, match=f"\"check_uniform_bounds\" not implemented for '{name}'"):
        x.uniform_()
    with pytest.raises(NotImplementedError, match=f"\"normal_kernel_cpu\" not implemented for '{name}'"):
        x.normal_()
    assert x.tolist() == [[0] * 3] * 2
    # uniform_ looks for its kernel even when there is nothing to draw; normal_ does not.
    with pytest.raises(NotImplementedError, match="check_uniform_bounds"):
        torch.zeros(0, 3, dtype=dtype).uniform_()
    e = torch.tensor([[]] * 4, dtype=dtype).normal_()
    assert e.shape == (4, 0) and e.dtype is dtype


def test_rand_like_of_integers():
    with pytest.raises(NotImplementedError, match="check_uniform_bounds"):
        torch.rand_like(torch.zeros(0, dtype=torch.int64))
    with pytest.raises(NotImplementedError, match="normal_kernel_cpu"):
        torch.randn_like(torch.zeros(2, dtype=torch.int64))
    assert torch.randn_like(torch.zeros(0, dtype=torch.int64)).dtype is torch.int64


def test_bernoulli_fills_every_dtype():
    torch.manual_seed(0)
    for dtype in (torch.bool, torch.int64, torch.float32, torch.float64):
        v = torch.zeros(50, dtype=dtype).bernoulli_(0.5)
        assert v.dtype is dtype and set(v.tolist()) <= {0, 1}
    assert torch.zeros(4).bernoulli_(1).tolist() == [1.0] * 4
    assert torch.zeros(4).bernoulli_(True).tolist() == [1.0] * 4


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda x: x.uniform_(-1.0, math.inf), "to is out of bounds for float"),
        (lambda x: x.uniform_(-math.inf, 1.0), "from is out of bounds for float"),
        (lambda x: x.uniform_(math.nan, 1.0), "from is out of bounds for float"),
        (lambda x: x.uniform_(-1e300, 1.0), "from is out of bounds for float"),
        (lambda x: x.uniform_(5.5, 1.25), r"uniform_ expects to return a \[from, to\) range, but found from=5.5 > to=1.25"),
        (lambda x: x.uniform_(1e20, 1e19), r"but found from=1e\+20 > to=1e\+19"),
        (
            lambda x: x.uniform_(-3e38, 3e38),
            r"uniform_ expects to-from <= std::numeric_limits<Float>::max\(\), but found to=3e\+38 and from=-3e\+38",
        ),
        (lambda x: x.normal_(0.0, -1.0), "normal expects std >= 0.0, but found std -1$"),
        (lambda x: x.normal_(0.0, -1e300), r"normal expects std >= 0.0, but found std -1e\+300"),
        (lambda x: x.normal_(0.0, -0.123456789), "found std -0.123457"),
        (lambda x: x.normal_(0.0, math.nan), "found std nan"),
        (lambda x: x.bernoulli_(1e300), r"bernoulli_ expects p to be in \[0, 1\], but got p=1e\+300"),
        (lambda x: x.bernoulli_(-0.1), r"but got p=-0.1"),
        (lambda x: x.bernoulli_(math.nan), r"but got p=nan"),
    ],
)
def test_random_fill_arguments_are_checked_before_drawing(call, message):
    for shape in ((2, 3), (0,), ()):
        x = torch.zeros(shape)
        torch.manual_seed(5)
        with pytest.raises(RuntimeError, match=message):
            call(x)
        after_error = _next()
        torch.manual_seed(5)
        assert _next() == after_error  # nothing was drawn
        assert x.tolist() == torch.zeros(shape).tolist()


def test_float64_bounds_are_float64s():
    x = torch.zeros(3, dtype=torch.float64).uniform_(-1e300, 1.0)
    assert all(-1e300 <= v < 1.0 for v in x.tolist())
    with pytest.raises(RuntimeError, match="to is out of bounds for double"):
        x.uniform_(0.0, math.inf)
    with pytest.raises(RuntimeError, match=r"numeric_limits<Double>::max\(\)"):
        x.uniform_(-1.7e308, 1.7e308)


def test_leaf_check_comes_first():
    x = torch.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        x.normal_(0.0, -1.0)


def test_two_elements_at_one_address_are_refused_before_drawing():
    torch.manual_seed(1)
    e = torch.zeros(3, 1).expand(3, 4)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        e.normal_()
    with pytest.raises(NotImplementedError, match="normal_kernel_cpu"):  # the dtype is checked first
        torch.zeros(3, 1, dtype=torch.int64).expand(3, 4).normal_()
    after = _next()
    torch.manual_seed(1)
    assert _next() == after
    assert torch.zeros(0, 1).expand(0, 4).normal_().shape == (0, 4)


def test_bernoulli_with_a_tensor_of_probabilities():
    torch.manual_seed(2)
    v = torch.zeros(2, 3).bernoulli_(torch.tensor([0.0, 1.0, 0.5]))
    assert [r[:2] for r in v.tolist()] == [[0.0, 1.0], [0.0, 1.0]]
    # One float32 uniform (one 32-bit draw) per element, compared with p.
    torch.manual_seed(2)
    u = torch.rand(2, 3)
    assert v[:, 2].tolist() == (u[:, 2] < 0.5).float().tolist()
    with pytest.raises(NotImplementedError, match="\"bernoulli_tensor_cpu_p_\" not implemented for 'Long'"):
        torch.zeros(3).bernoulli_(torch.tensor([0, 1, 1]))
    with pytest.raises(RuntimeError, match="Expected p_in >= 0 && p_in <= 1 to be true"):
        torch.zeros(3).bernoulli_(torch.tensor([2.0, 0.5, -1.0]))
    with pytest.raises(RuntimeError, match="The expanded size of the tensor"):
        torch.zeros(3).bernoulli_(torch.tensor([0.5, 0.5]))
    assert torch.zeros(0).bernoulli_(torch.tensor([0, 1])).shape == (0,)
    x = torch.zeros(3, requires_grad=True).clone()
    assert x.bernoulli_(torch.tensor([0.2, 0.5, 0.9])).grad_fn.name() == "BernoulliBackward1"
    # A p that requires grad: drawn once all the same.
    torch.manual_seed(4)
    y = torch.zeros(3).bernoulli_(torch.tensor([0.2, 0.5, 0.9], requires_grad=True))
    after = _next()
    torch.manual_seed(4)
    u = torch.rand(3)
    assert y.tolist() == (u < torch.tensor([0.2, 0.5, 0.9])).float().tolist() and _next() == after
    assert y.requires_grad and y.grad_fn.name() == "BernoulliBackward1"


# ----- random fills: draw order -----


@pytest.mark.parametrize("op", ["uniform_", "bernoulli_"])
@pytest.mark.parametrize("shape", [(3, 2), (8, 4), (3, 5)])
def test_fills_draw_in_memory_order(op, shape):
    torch.manual_seed(0)
    a = torch.zeros(shape).t()
    getattr(a, op)()
    torch.manual_seed(0)
    b = torch.zeros(shape)
    getattr(b, op)()
    assert a.t().tolist() == b.tolist()


def test_fills_of_a_permuted_tensor():
    torch.manual_seed(3)
    a = torch.zeros(3, 1, 3).permute(2, 0, 1).uniform_()
    torch.manual_seed(3)
    b = torch.zeros(3, 1, 3).uniform_()
    assert a.permute(1, 2, 0).tolist() == b.tolist()


def test_normal_of_a_strided_tensor_draws_one_element_at_a_time():
    # 20 elements: a contiguous tensor transforms uniforms in blocks of 16, a strided one draws
    # each normal on its own (Box-Muller pairs), so the two differ.
    torch.manual_seed(0)
    strided = torch.zeros(40)[::2].normal_()
    torch.manual_seed(0)
    one_by_one = [torch.zeros(1).normal_().item() for _ in range(20)]
    torch.manual_seed(0)
    contiguous = torch.zeros(20).normal_()
    assert strided.tolist() == one_by_one
    assert strided.tolist() != contiguous.tolist()


def test_fills_keep_the_graph_names():
    x = torch.zeros(3, requires_grad=True).clone()
    assert x.uniform_().grad_fn.name() == "UniformBackward0"
    assert x.normal_().grad_fn.name() == "NormalBackward0"
    assert x.bernoulli_().grad_fn.name() == "BernoulliBackward2"


# ----- factories and conversion -----


@pytest.mark.parametrize(
    "data", [[math.nan, 1.0], [math.inf], [-math.inf], math.nan, [1e19], [[1.5, math.nan], [2.0, 3.0]], [True, math.nan]]
)
def test_numbers_that_do_not_fit_int64(data):
    with pytest.raises(RuntimeError, match="value cannot be converted to type int64 without overflow"):
        torch.tensor(data, dtype=torch.int64)
    with pytest.raises(RuntimeError, match="value cannot be converted to type int64 without overflow"):
        torch.as_tensor(data, dtype=torch.int64)


def test_conversions_that_are_not_checked():
    # Arrays and tensors are cast as they are (PyTorch too), floats and bools take anything.
    assert torch.tensor(np.array([math.nan]), dtype=torch.int64).dtype is torch.int64
    assert torch.tensor(torch.tensor([math.nan]), dtype=torch.int64).dtype is torch.int64
    assert torch.tensor([1e300], dtype=torch.float32).tolist() == [math.inf]
    assert torch.tensor([math.nan, 2.0], dtype=torch.bool).tolist() == [True, True]
    assert torch.tensor([-(2.0**63)], dtype=torch.int64).tolist() == [-(2**63)]


@pytest.mark.parametrize(
    "data,name",
    [(torch.float64, "torch.dtype"), ([torch.float64], "torch.dtype"), ([1, object()], "object"), (slice(1), "slice")],
)
def test_objects_that_are_not_numbers(data, name):
    with pytest.raises(RuntimeError, match=f"Could not infer dtype of {name}$"):
        torch.tensor(data)


@pytest.mark.parametrize(
    "data,cls,message",
    [
        ([[1, 2], [3]], ValueError, r"expected sequence of length 2 at dim 1 \(got 1\)"),
        ([[1, 2], 3], TypeError, "not a sequence"),
        ([1, [2]], TypeError, "'list' object cannot be interpreted as an integer"),
        ([1.0, [2]], TypeError, "must be real number, not list"),
    ],
)
def test_ragged_lists(data, cls, message):
    with pytest.raises(cls, match=message):
        torch.tensor(data)


@pytest.mark.parametrize(
    "data,dtype,cls,message",
    [
        (None, torch.float32, TypeError, "must be real number, not NoneType"),
        ([1, None], torch.int64, TypeError, "'NoneType' object cannot be interpreted as an integer"),
        (torch.float64, torch.bool, TypeError, "'torch.dtype' object cannot be interpreted as an integer"),
        (["a"], None, ValueError, "too many dimensions 'str'"),
        ([1, "a"], None, TypeError, r"new\(\): invalid data type 'str'"),
    ],
)
def test_non_numbers_with_a_dtype(data, dtype, cls, message):
    with pytest.raises(cls, match=message):
        torch.tensor(data, dtype=dtype)


def test_fill_values_are_numbers():
    assert torch.full((2,), torch.tensor(1.5)).tolist() == [1.5, 1.5]
    for value, name in ((torch.tensor([1.5, 2.0]), "Tensor"), (None, "NoneType"), ([1], "list")):
        with pytest.raises(TypeError, match=f"full\\(\\): argument 'fill_value' \\(position 2\\) must be Number, not {name}"):
            torch.full((3, 2), value)
    with pytest.raises(TypeError, match="full_like"):
        torch.full_like(torch.zeros(2), torch.tensor(1.5, requires_grad=True))


def test_float_tensor_inside_a_list_into_an_integer_dtype():
    with pytest.raises(TypeError, match="only integer tensors of a single element can be converted to an index"):
        torch.tensor([torch.tensor(1.5)], dtype=torch.int64)
    assert torch.tensor([torch.tensor(2)], dtype=torch.int64).tolist() == [2]


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: torch.full((2,), 2**70), "int too big to convert"),
        (lambda: torch.full((0,), 2**70, dtype=torch.float32), "int too big to convert"),
        (lambda: torch.full((2,), -(2**70)), "can't convert negative int to unsigned"),
        (lambda: torch.zeros(2).fill_(2**70), "int too big to convert"),
        (lambda: torch.full_like(torch.zeros(2), 2**70), "int too big to convert"),
        (lambda: torch.zeros(2) + 2**70, "int too big to convert"),
        (lambda: torch.zeros(2) < -(2**64), "can't convert negative int to unsigned"),
        (lambda: torch.zeros(2) ** 2**70, "int too big to convert"),
        (lambda: torch.zeros(2).pow(2**70), "int too big to convert"),
        (lambda: torch.zeros(2).clamp(min=-(2**70)), "can't convert negative int to unsigned"),
        (lambda: torch.zeros(2).masked_fill(torch.tensor([True, False]), 2**70), "int too big to convert"),
    ],
)
def test_ints_beyond_64_bits(call, message):
    with pytest.raises(OverflowError, match=message):
        call()


def test_ints_in_uint64_range_still_work():
    with pytest.raises(RuntimeError, match="value cannot be converted to type int64_t without overflow"):
        torch.full((2,), 2**63)
    assert (torch.zeros(2) < 2**63).tolist() == [True, True]


def test_sizes_that_are_tensors():
    with pytest.raises(TypeError, match=r"full\(\): argument 'size' \(position 1\) must be tuple of ints, not Tensor"):
        torch.full(torch.tensor([2]), False)
    for call in (
        lambda: torch.zeros(torch.tensor(True)),
        lambda: torch.randn(2, torch.tensor(False)),
        lambda: torch.full((torch.tensor(True),), 1.0),
        lambda: torch.zeros(1).expand(torch.tensor([True])),
        lambda: torch.zeros(1).view(torch.tensor(True)),
    ):
        with pytest.raises(RuntimeError, match=BOOL_SIZE.replace("(", r"\(").replace(")", r"\)")):
            call()
    assert torch.zeros(2, torch.tensor(3)).shape == (2, 3)
    assert torch.zeros(2, 3).permute(torch.tensor(True), 0).shape == (3, 2)  # dims, not sizes


# ----- numbers that do not fit the dtype of the op -----


@pytest.mark.parametrize(
    "call",
    [
        lambda: torch.zeros(2).clip(min=1e300),
        lambda: torch.zeros(2).clamp(max=-1e300),
        lambda: torch.zeros(2).clamp_min(1e300),
        lambda: torch.zeros(2, dtype=torch.int64).clamp(min=1e300),  # the result is float32
        lambda: torch.nn.functional.softplus(torch.zeros(2), beta=1e300),
        lambda: torch.nn.functional.softplus(torch.zeros(2), threshold=1e300),
        lambda: torch.nn.functional.leaky_relu(torch.zeros(2), 1e300),
        lambda: torch.zeros(2).add(torch.ones(2), alpha=1e300),
        lambda: torch.zeros(2).add_(torch.ones(2), alpha=1e300),
        lambda: torch.zeros(2).addcmul(torch.ones(2), torch.ones(2), value=1e300),
        lambda: torch.zeros(2).lerp(torch.ones(2), 1e300),
        lambda: torch.where(torch.tensor([True, False]), torch.zeros(2), 1e300),
    ],
)
def test_scalar_arguments_must_fit_float32(call):
    with pytest.raises(RuntimeError, match="value cannot be converted to type float without overflow"):
        call()


def test_scalars_that_fit_or_are_operands():
    assert torch.zeros(2).clamp(min=math.inf).tolist() == [math.inf] * 2
    assert torch.zeros(2, dtype=torch.float64).clamp(min=1e300).tolist() == [1e300] * 2
    soft = torch.nn.functional.softplus(torch.zeros(2, dtype=torch.float64), beta=1e300).tolist()
    assert soft == pytest.approx([math.log(2) / 1e300] * 2, rel=1e-12)
    # The other operand of a binary op is not converted with a check.
    assert (torch.zeros(2) + 1e300).tolist() == [math.inf] * 2


def test_lerp_dtypes():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    assert a.lerp(b, True).tolist() == [3.0, 4.0]
    with pytest.raises(NotImplementedError, match="\"lerp_kernel_scalar\" not implemented for 'Long'"):
        torch.tensor([1, 2]).lerp(torch.tensor([3, 4]), 0.5)
    with pytest.raises(RuntimeError, match="expected dtype double for `end` but got dtype float"):
        a.double().lerp_(b, 0.25)
    with pytest.raises(RuntimeError, match="expected dtype float for `weight` but got dtype long int"):
        a.lerp(b, torch.tensor([1, 2]))


# ----- Tensor.to and view(dtype) -----


def test_to_reads_bools_and_floats_as_their_types():
    v = torch.tensor([1.5, 0.0])
    assert v.to(True).dtype is torch.bool and v.to(True).tolist() == [True, False]
    assert v.to(1.5).dtype is torch.float64
    assert v.to("cpu", torch.int64).dtype is torch.int64
    assert v.to(torch.float64, True, True).dtype is torch.float64


@pytest.mark.parametrize(
    "call,got",
    [
        (lambda v: v.to(dtype=1e300), "(dtype=float, )"),
        (lambda v: v.to(dtype=v), "(dtype=Tensor, )"),
        (lambda v: v.to(device=v), "(device=Tensor, )"),
        (lambda v: v.to([]), "(list)"),
        (lambda v: v.to(torch.int64, torch.float64), "(torch.dtype, torch.dtype)"),
        (lambda v: v.to(torch.float64, copy=1.5), "(torch.dtype, copy=float)"),
        (lambda v: v.to(dtype=torch.float64, copy=None), "(copy=NoneType, dtype=torch.dtype, )"),
    ],
)
def test_to_refuses_what_no_overload_takes(call, got):
    with pytest.raises(TypeError) as info:
        call(torch.tensor([1.5]))
    first = str(info.value).splitlines()[0]
    assert first == f"to() received an invalid combination of arguments - got {got}, but expected one of:"


def test_view_dtype_reinterprets_bytes():
    x = torch.tensor([[1.5, -2.0, 0.0, 3.25], [1.0, 2.0, 3.0, 4.0]])
    b = x.view(torch.bool)
    assert b.shape == (2, 16) and b.stride() == (16, 1)
    expect = x.numpy().view(np.uint8) != 0
    assert b.tolist() == expect.tolist()
    d = x.view(torch.float64)
    assert d.shape == (2, 2) and d.tolist() == x.numpy().view(np.float64).tolist()
    i = torch.tensor([1.5, 2.0], dtype=torch.float64).view(torch.int64)
    assert i.tolist() == np.array([1.5, 2.0]).view(np.int64).tolist()
    assert torch.tensor([1, 2]).view(torch.float32).tolist() == np.array([1, 2]).view(np.float32).tolist()
    assert torch.zeros(2).view(dtype=torch.bool).shape == (8,)
    assert x[:, :3].view(torch.bool).shape == (2, 12)


def test_view_dtype_shares_memory_and_drops_history():
    v = torch.tensor([1.5, 2.0], dtype=torch.float64)
    w = v.view(torch.int64)
    w.add_(1)
    assert v.tolist() == np.array([1.5, 2.0]).view(np.int64).__add__(1).view(np.float64).tolist()
    y = torch.tensor([1.5, 2.0], requires_grad=True)
    assert not y.view(torch.float32).requires_grad and y.view(torch.bool).grad_fn is None


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: torch.tensor(1.5).view(torch.bool), r"self.dim\(\) cannot be 0 to view Float as Bool \(different element sizes\)"),
        (lambda: torch.zeros(2, 4).t().view(torch.bool), r"self.stride\(-1\) must be 1 to view Float as Bool .*, but got 4"),
        (lambda: torch.zeros(2, 3).view(torch.float64), r"self.size\(-1\) must be divisible by 2 to view Float as Double"),
        (lambda: torch.zeros(2, 4)[:, 1:3].view(torch.float64), r"self.storage_offset\(\) must be divisible by 2"),
        (lambda: torch.zeros(3, 0).view(torch.float64), r"self.stride\(0\) must be divisible by 2 .*, but got 1"),
        (lambda: torch.tensor([[True] * 8] * 2).t().view(torch.float64), r"self.size\(-1\) must be divisible by 8"),
    ],
)
def test_view_dtype_refusals(call, message):
    with pytest.raises(RuntimeError, match=message):
        call()


# ----- negation and powers of bools -----


def test_bool_negation_and_powers():
    m = torch.tensor([True, False])
    with pytest.raises(NotImplementedError, match="Negation, the `-` operator, on a bool tensor"):
        m.neg_()
    assert m.tolist() == [True, False]
    for call in (lambda: False ** m, lambda: torch.pow(True, m)):
        with pytest.raises(NotImplementedError, match="\"pow\" not implemented for 'Bool'"):
            call()
    assert (2 ** m).tolist() == [2, 1]
    assert (m**True).tolist() == [True, False]


# ----- the same calls under PyTorch, where it is installed -----

PAIRED = [
    "torch.zeros(2,3, dtype=torch.int64).uniform_()",
    "torch.arange(6).normal_()",
    "torch.tensor([[]]*4, dtype=torch.int64).normal_()",
    "torch.zeros(2,1).uniform_(-1.0, float('inf'))",
    "torch.zeros(3).bernoulli_(1e300)",
    "torch.zeros(3).normal_(0, -1e300)",
    "torch.zeros(4, 2).T.normal_(1.0, 0.5)",
    "torch.zeros(8, 4).t().normal_()",
    "torch.zeros(8, 4, dtype=torch.float64).t().normal_(1, 2)",
    "torch.zeros(4, 4, dtype=torch.int64).permute(1, 0).bernoulli_(0.5)",
    "torch.zeros(3, 1, 3).permute(2, 0, 1).uniform_()",
    "torch.zeros(4, 5, 6)[:, 1:4, ::2].transpose(0, 2).normal_()",
    "torch.tensor([float('nan'), 1.0], dtype=torch.int64)",
    "torch.tensor(torch.float64)",
    "torch.full((2,), 2**70)",
    "torch.full(torch.tensor([2]), False)",
    "torch.zeros(torch.tensor(True))",
    "torch.zeros(2).clip(min=1e300)",
    "torch.nn.functional.softplus(torch.zeros(2), beta=1e300)",
    "torch.tensor([1.5, 2.0]).to(dtype=1e300)",
    "torch.tensor([1.5, 2.0]).to(True)",
    "torch.tensor([[1.5, -2.0], [0.0, 3.25]]).view(torch.bool)",
    "torch.tensor([True, False]).neg_()",
    "False ** torch.tensor([True, False])",
    "torch.tensor(None, dtype=torch.float32)",
    "torch.zeros(8, 4).t().bernoulli_(torch.rand(4, 8))",
    "torch.zeros(3).bernoulli_(torch.tensor([0.2, 0.5, 0.9], requires_grad=True)).detach()",
    "torch.zeros(3).bernoulli_(torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64))",
    "torch.full((3, 2), torch.tensor([1.5, 2.0]))",
]


def _outcome(lib, src):
    lib.manual_seed(0)
    try:
        r = eval(src, {"torch": lib})
    except Exception as e:  # noqa: BLE001 - the outcome is the exception
        return (type(e).__name__, str(e).splitlines()[0])
    return (str(r.dtype), tuple(r.shape), r.tolist(), lib.rand(1).item())


@pytest.mark.parametrize("src", PAIRED)
def test_same_outcome_as_pytorch(src):
    real = pytest.importorskip("torch")
    assert _outcome(torch, src) == _outcome(real, src)
