"""Nothing crashes, nothing is silently wrong: the panic net, checked sizes, fallible allocation."""

import math

import pytest
import rustgrad as torch
from rustgrad import _rustgrad


def test_panic_becomes_runtime_error_naming_the_op():
    with pytest.raises(RuntimeError, match=r"^_debug_panic: internal error in rustgrad: boom \(at .*errors\.rs:\d+\)"):
        _rustgrad._debug_panic("boom")


def test_panic_net_leaves_the_interpreter_usable():
    for _ in range(3):
        with pytest.raises(RuntimeError):
            _rustgrad._debug_panic("again")
    assert torch.ones(2).sum().item() == 2.0


SIZE_CASES = [
    # (expression, PyTorch's message start)
    ("torch.zeros(2**40, 2**40)", "Storage size calculation overflowed with sizes=[1099511627776, 1099511627776]"),
    ("torch.zeros(2**61, 2)", "Storage size calculation overflowed with sizes=[2305843009213693952, 2]"),
    ("torch.randn(2**40, 2**40)", "Storage size calculation overflowed"),
    ("torch.arange(2**62)", "Storage size calculation overflowed with sizes=[4611686018427387904]"),
    ("torch.linspace(0, 1, 2**62)", "Storage size calculation overflowed"),
    ("torch.randperm(2**62)", "Storage size calculation overflowed"),
    ("torch.eye(2**40)", "numel: integer multiplication overflow"),
    ("torch.ones(1).expand(2**40, 2**40)", "numel: integer multiplication overflow"),
    ("torch.ones(1).expand(2**32, 2**32) + torch.ones(1).expand(2**32, 2**32)", "numel: integer multiplication overflow"),
    ("torch.ones(1).view(2**40, 2**40, 0)", "shape '[1099511627776, 1099511627776, 0]' is invalid for input of size 1"),
    ("torch.arange(0, float('inf'))", "unsupported range: 0 -> inf"),
]


@pytest.mark.parametrize("expr,message", SIZE_CASES)
def test_overflowing_sizes_raise_pytorchs_error(expr, message):
    with pytest.raises(RuntimeError) as info:
        eval(expr)
    assert str(info.value).startswith(message)


ALLOC_CASES = [
    ("torch.zeros(2**24, 2**24, dtype=torch.float64)", 2251799813685248),
    ("torch.arange(0, 1e16)", 40000000000000000),
    ("torch.ones(2**20, 1) + torch.ones(1, 2**30)", 4503599627370496),
    ("torch.ones(2**40, 1, dtype=torch.bool)", 1099511627776),
    ("torch.randperm(2**40)", 8796093022208),
    ("torch.rand(2**30, 2**30)", 4611686018427387904),
]


@pytest.mark.parametrize("expr,nbytes", ALLOC_CASES)
def test_impossible_allocations_raise_instead_of_aborting(expr, nbytes):
    with pytest.raises(RuntimeError, match=f"DefaultCPUAllocator: can't allocate memory: you tried to allocate {nbytes} bytes"):
        eval(expr)


def test_zero_dim_tensors_accept_dim_0_and_minus_1():
    x = torch.tensor(3.0, requires_grad=True)
    for y in (x.sum(0), x.mean(-1, keepdim=True), x.norm(p=1, dim=0), x.sum((0,)), x.amax(0) if hasattr(x, "amax") else x.sum(0)):
        assert y.shape == () and y.item() == 3.0
    assert torch.tensor(True).all(0).item() is True
    assert torch.tensor(False).any(-1).item() is False
    with pytest.raises(RuntimeError, match=r"^narrow\(\) cannot be applied to a 0-dim tensor\.$"):
        x.narrow(0, 0, 1)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 1\)"):
        x.sum(1)


INF, NAN = float("inf"), float("nan")


def _same(t, expected):
    got = t.tolist()
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(expected), (got, expected)
    for g, e in zip(got, expected):
        assert (math.isnan(g) and math.isnan(e)) or g == e, (got, expected)


@pytest.mark.parametrize(
    "expr,expected",
    [
        # softmax shifts by the true maximum: a slice with +inf, or only -inf, is NaN throughout.
        ("torch.softmax(torch.tensor([1., INF]), 0)", [NAN, NAN]),
        ("torch.log_softmax(torch.tensor([1., INF]), 0)", [NAN, NAN]),
        ("torch.softmax(torch.tensor([-INF, -INF]), 0)", [NAN, NAN]),
        ("torch.softmax(torch.tensor([-INF, 0.]), 0)", [0.0, 1.0]),
        # logsumexp treats infinite maxima as 0, so infinities pass through.
        ("torch.logsumexp(torch.tensor([INF, 1.]), 0)", [INF]),
        ("torch.logsumexp(torch.tensor([-INF, -INF]), 0)", [-INF]),
        ("torch.logsumexp(torch.zeros(3, 0), 1)", [-INF, -INF, -INF]),
        ("torch.sign(torch.tensor([NAN, -0.0, -2., 3.]))", [0.0, 0.0, -1.0, 1.0]),
        ("torch.nn.functional.gelu(torch.tensor([INF, -INF, NAN, 0.]))", [NAN, NAN, NAN, 0.0]),
        ("torch.nn.functional.cross_entropy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))", [NAN]),
        ("torch.nn.functional.nll_loss(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))", [NAN]),
        ("torch.nn.functional.nll_loss(torch.zeros(2, 3), torch.tensor([-100, -100]))", [NAN]),
        # Out-of-range and NaN floats convert to int64 as PyTorch's CPU kernels do.
        ("torch.tensor([NAN, INF, -INF, 1e20, -2.5]).long()", [-(2**63), -(2**63), -(2**63), -(2**63), -2]),
    ],
)
def test_non_finite_and_empty_semantics(expr, expected):
    _same(eval(expr), expected)


def test_logsumexp_over_a_zero_size_dim_keeps_one():
    out = torch.logsumexp(torch.zeros(3, 0), 1, keepdim=True)
    assert tuple(out.shape) == (3, 1)
    _same(out.flatten(), [-INF] * 3)


def test_ignored_rows_do_not_reach_the_loss():
    logits = torch.tensor([[NAN, 1.0], [1.0, 2.0]], dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([-100, 1]))
    # Only row 1 counts: -log_softmax([1, 2])[1] = log(1 + e^-1).
    assert abs(loss.item() - math.log1p(math.exp(-1.0))) < 1e-12
    loss.backward()
    # log_softmax's backward still sees the NaN row (PyTorch's gradient there is NaN too).
    assert all(math.isnan(g) for g in logits.grad[0].tolist())
    p = 1 / (1 + math.exp(-1.0))
    assert [round(g, 12) for g in logits.grad[1].tolist()] == [round(1 - p, 12), round(p - 1, 12)]


def test_zero_size_views_past_the_end_of_their_storage():
    v = torch.full((2, 0), False)[1:3, 1:]
    assert tuple(v.to(torch.float64).shape) == (1, 0)
    w = torch.ones(3, 0, 1).narrow(0, 2, 1)
    assert tuple((w + 1).shape) == (1, 0, 1)
    assert tuple((w > 0).shape) == (1, 0, 1)


def test_scatter_checks_src_dimensions():
    base, index = torch.randn(1, 4), torch.tensor([[0, 0, 0]])
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 1\)"):
        base.scatter_add(0, index, torch.randn(1, 4).mean(1))
    with pytest.raises(RuntimeError, match="Index tensor must have the same number of dimensions as src tensor"):
        base.scatter_add(0, index, torch.tensor(2.0))


def test_argmax_of_nothing_is_an_index_error():
    with pytest.raises(IndexError, match=r"argmax\(\): Expected reduction dim to be specified for input.numel\(\) == 0."):
        torch.tensor([]).argmax()


def test_setitem_value_loses_leading_size_one_dims():
    x = torch.zeros(2, 3)
    x[0] = torch.ones(1, 3)
    x[1] = torch.full((1, 1, 3), 2.0)
    assert x.tolist() == [[1.0] * 3, [2.0] * 3]
    y = torch.zeros(2)
    y[0] = torch.ones(1)
    assert y.tolist() == [1.0, 0.0]


def test_in_place_ops_on_empty_expanded_tensors_write_nothing():
    y = torch.zeros(3, 0).expand(2, 3, 0)
    y.mul_(y)
    assert tuple(y.shape) == (2, 3, 0)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        torch.zeros(1, 3).expand(2, 3).mul_(2)


def test_index_put_requires_matching_dtypes():
    x = torch.zeros(3, dtype=torch.float64)
    message = "Index put requires the source and destination dtypes match, got Double for the destination and Float"
    with pytest.raises(RuntimeError, match=message):
        x[[0]] = torch.ones(1)
    with pytest.raises(RuntimeError, match=message):
        x[torch.tensor([True, False, True])] = torch.ones(2)
    assert x.tolist() == [0.0, 0.0, 0.0]
    x[[0, 2]] = 2  # a number takes the tensor's dtype
    x[torch.tensor([False, True, False])] = torch.ones(1, dtype=torch.float64)
    assert x.tolist() == [2.0, 1.0, 2.0]


def test_tensor_rules_checked_in_pytorchs_order():
    x = torch.ones(3)
    with pytest.raises(RuntimeError, match=r"^tensor\.mT is only supported on matrices or batches of matrices\. Got 1-D tensor\.$"):
        _ = x.mT
    with pytest.raises(TypeError, match="unsupported operand"):
        _ = -99 @ x
    with pytest.raises(TypeError, match="unsupported operand"):
        _ = x @ 2
    # The dim first, then the index dtype.
    with pytest.raises(IndexError, match=r"expected to be in range of \[-2, 1\], but got -3"):
        torch.ones(2, 2).scatter(-3, torch.tensor([[0.0]]), 1.0)
    with pytest.raises(RuntimeError, match=r"gather\(\): Expected dtype int32/int64 for index"):
        torch.ones(2, 2).gather(1, torch.tensor([[0.0]]))


def test_max_and_min_of_another_tensor_are_elementwise():
    a = torch.tensor([1.0, 5.0, -2.0], requires_grad=True)
    b = torch.tensor([3.0, 0.0, -1.0])
    assert a.max(b).tolist() == [3.0, 5.0, -1.0]
    assert a.min(b).tolist() == [1.0, 0.0, -2.0]
    assert type(a.max(b).grad_fn).__name__ == "MaximumBackward0"


def test_cat_of_legacy_empty_tensors_ignores_the_dim():
    assert tuple(torch.cat([torch.zeros(0)], -2).shape) == (0,)


def test_argument_errors_of_cat_narrow_and_cross_entropy():
    with pytest.raises(ValueError, match=r"torch\.cat\(\): expected a non-empty list of Tensors"):
        torch.cat([], 0)
    with pytest.raises(IndexError, match=r"start out of range \(expected to be in range of \[-3, 3\], but got -99\)"):
        torch.ones(3).narrow(0, -99, 1)
    assert tuple(torch.ones(3).narrow(0, 3, 0).shape) == (0,)
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target batch_size \(2\)\."):
        torch.nn.functional.cross_entropy(torch.zeros(3, 2), torch.zeros(2, 1, dtype=torch.long))


def test_setitem_fills_with_a_0d_value_and_copies_any_other():
    base = torch.zeros(3, requires_grad=True)
    x = base * 1
    x[...] = torch.tensor(2.0)
    assert type(x.grad_fn).__name__ == "FillBackward3"
    y = base * 1
    y[...] = torch.tensor([2.0])  # one element, but not 0-d: a copy
    assert type(y.grad_fn).__name__ == "CopyBackwards"
    assert y.tolist() == [2.0, 2.0, 2.0]


def test_dropout_of_integers_draws_its_mask_before_failing():
    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        torch.nn.functional.dropout(torch.ones(4, dtype=torch.long), p=0.5)
    after_failure = torch.rand(2).tolist()
    torch.manual_seed(0)
    torch.nn.functional.dropout(torch.ones(4), p=0.5)
    assert torch.rand(2).tolist() == after_failure


@pytest.mark.parametrize(
    "call",
    [
        lambda x: x.unsqueeze(True),
        lambda x: x.argmin(True),
        lambda x: x.cumsum(True),
        lambda x: x.softmax(True),
        lambda x: x.chunk(2, True),
        lambda x: x.gather(True, torch.zeros(2, 3, dtype=torch.long)),
        lambda x: torch.argmin(x, True),
    ],
)
def test_a_bool_is_not_an_int_argument(call):
    with pytest.raises(TypeError, match="must be int, not bool"):
        call(torch.ones(2, 3))


def test_int_arguments_still_take_ints_and_integer_tensors():
    x = torch.ones(2, 3)
    assert tuple(x.unsqueeze(1).shape) == (2, 1, 3)
    assert tuple(x.unbind(torch.tensor(0))[0].shape) == (3,)
    assert tuple(x.std(True).shape) == ()


def test_results_of_composite_ops_are_not_no_grad_views():
    logits = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    losses = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0, 1]), reduction="none")
    losses[2] = torch.tensor(-1.0)  # PyTorch allows this: the loss is not a view
    losses.log_()
    assert type(losses.grad_fn).__name__ == "LogBackward0"
    losses.sum().backward()
    assert logits.grad is not None and tuple(logits.grad.shape) == (3, 2)
