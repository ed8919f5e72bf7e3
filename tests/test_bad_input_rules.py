"""Inputs PyTorch refuses (or accepts) that the differential fuzzer found handled differently, plus
the in-place scatter_ / scatter_add_. Expectations are PyTorch 2.15's behaviour, checked live by
``test_against_pytorch`` when PyTorch is installed; values against numpy."""

import numpy as np
import pytest
import rustgrad as torch
import rustgrad.nn.functional as F


def test_scatter_in_place_writes_and_records():
    labels = torch.tensor([[2], [0], [1]])
    one_hot = torch.zeros(3, 4).scatter_(1, labels, 1.0)
    np.testing.assert_array_equal(one_hot.numpy(), np.eye(4, dtype=np.float32)[[2, 0, 1]])
    src = torch.arange(6.0).reshape(2, 3)
    x = torch.zeros(2, 3)
    out = x.scatter_add_(1, torch.tensor([[0, 0, 2], [1, 1, 1]]), src)
    assert out is x
    np.testing.assert_array_equal(x.numpy(), [[1.0, 0.0, 2.0], [0.0, 12.0, 0.0]])
    w = torch.ones(2, 3, requires_grad=True)
    s = torch.full((2, 3), 2.0, requires_grad=True)
    y = w * 1
    y.scatter_(1, torch.tensor([[1], [0]]), s)
    assert y.grad_fn.name() == "ScatterBackward0"
    y.sum().backward()
    # d/dw is zero where src was written; d/ds is one at the written positions of src
    np.testing.assert_array_equal(w.grad.numpy(), [[1, 0, 1], [0, 1, 1]])
    np.testing.assert_array_equal(s.grad.numpy(), [[1, 0, 0], [1, 0, 0]])
    z = w * 1
    z.scatter_add_(0, torch.zeros(1, 3, dtype=torch.long), s[:1])
    assert z.grad_fn.name() == "ScatterAddBackward0"


def test_scatter_value_must_fit_the_dtype():
    with pytest.raises(RuntimeError, match="value cannot be converted to type int8_t without overflow"):
        torch.zeros(3, dtype=torch.int8).scatter(0, torch.tensor([0]), 300)
    with pytest.raises(RuntimeError, match=r"value cannot be converted to type c10::Half without overflow"):
        torch.zeros(3, dtype=torch.float16).scatter_(0, torch.tensor([0]), 1e6)
    # uint8 takes negative whole numbers (they wrap), as PyTorch
    assert torch.zeros(3, dtype=torch.uint8).scatter(0, torch.tensor([0]), -1).tolist() == [255, 0, 0]


def test_scatter_add_saves_its_index_only_for_src():
    w = torch.zeros(1, requires_grad=True)
    index = torch.tensor([0])
    y = w.scatter_add(-1, index, torch.tensor([2.5]))
    index.add_(0)  # bumps the index's version
    y.sum().backward()  # index not saved: no version error
    assert w.grad.tolist() == [1.0]
    src = torch.tensor([2.5], requires_grad=True)
    y = w.scatter_add(-1, index, src)
    index.add_(0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_remainder_by_a_number_saves_nothing():
    x = torch.tensor([1.5, -2.5], requires_grad=True)
    y = x.remainder(-1.0)
    y.backward(torch.ones(2))
    (g,) = torch.autograd.grad(y, [x], grad_outputs=torch.ones(2))  # a second pass is allowed
    assert g.tolist() == [1.0, 1.0] and x.grad.tolist() == [1.0, 1.0]


def test_binary_cross_entropy_checks_input_then_target_per_element():
    with pytest.raises(RuntimeError, match="all elements of target should be between 0 and 1"):
        F.binary_cross_entropy(torch.tensor([0.5]), torch.tensor([1.5]))
    with pytest.raises(RuntimeError, match="all elements of target should be between 0 and 1"):
        F.binary_cross_entropy(torch.tensor([0.5]), torch.tensor([float("nan")]))
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(torch.tensor([1.5]), torch.tensor([1.5]))


def test_addmm_dtypes_must_match():
    f, d = torch.float32, torch.float64
    with pytest.raises(RuntimeError, match="^self and mat2 must have the same dtype, but got Float and Double$"):
        torch.addmm(torch.tensor(1.0), torch.ones(2, 2, dtype=d), torch.ones(2, 2, dtype=d))
    with pytest.raises(RuntimeError, match="^mat1 and mat2 must have the same dtype, but got Double and Float$"):
        torch.addmm(torch.ones(2, 2, dtype=f), torch.ones(2, 2, dtype=d), torch.ones(2, 2, dtype=f))


def test_dims_of_zero_dim_tensors_and_linspace_range():
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 99\)"):
        torch.logsumexp(torch.tensor(1.0), 99)
    assert torch.logsumexp(torch.tensor(1.0), -1).item() == 1.0
    with pytest.raises(RuntimeError, match="value cannot be converted to type float without overflow"):
        torch.linspace(1e300, 1, 3)
    assert torch.linspace(1e300, 1, 0).shape == (0,)
    assert torch.linspace(1e39, 1, 3, dtype=torch.float64)[0].item() == 1e39


def test_parser_type_errors():
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    with pytest.raises(TypeError, match=r"max\(\) received an invalid combination of arguments - got \(Tensor, Tensor, bool\)"):
        torch.max(x, y, True)
    with pytest.raises(TypeError, match="some of the keywords were incorrect: keepdim"):
        torch.min(x, y, keepdim=True)
    with pytest.raises(TypeError, match=r"^max\(\): argument 'dim' \(position 1\) must be int, not Tensor$"):
        x.max(y, True)
    with pytest.raises(TypeError, match=r"got \(Tensor, NoneType\)"):
        torch.min(x, None)
    # a 0-d integer tensor is a dim
    assert x.max(torch.tensor(1), True).values.shape == (3, 1)
    assert torch.max(x, y).shape == (3, 4)
    for call in (lambda: x.sum(torch.tensor([0, 1])), lambda: x.amax(torch.tensor([0, 1])),
                 lambda: x.flip(torch.tensor([0])), lambda: x.logsumexp(torch.tensor([0, 1]))):
        with pytest.raises(TypeError, match="must be tuple of ints, not Tensor"):
            call()
    assert x.sum(torch.tensor(1)).shape == (3,)
    with pytest.raises(TypeError, match=r"split\(\) received an invalid combination of arguments - got \(Tensor, bool, int\)"):
        x.split(True, -1)


def test_index_put_without_indices_fails_as_pytorch():
    with pytest.raises(RuntimeError, match="sym_strides"):
        torch.zeros(3).index_put((), torch.tensor(1.0))
    with pytest.raises(RuntimeError, match="INTERNAL ASSERT FAILED"):
        torch.zeros(3).index_put_((), torch.ones(3))
    with pytest.raises(RuntimeError, match=r"shape mismatch: value tensor of shape \[2, 3\] cannot be broadcast to indexing result of shape \[3\]"):
        torch.zeros(3).index_put([], torch.ones(2, 3))


def test_against_pytorch():
    real = pytest.importorskip("torch")
    if real is torch:
        pytest.skip("runs against real PyTorch")

    def outcome(lib, f):
        try:
            r = f(lib)
        except Exception as e:  # noqa: BLE001 - the class is what is compared
            return type(e).__name__, str(e).split("\n")[0]
        return "ok", repr(r.tolist() if hasattr(r, "tolist") else r)

    cases = [
        lambda t: t.zeros(3, dtype=t.int8).scatter(0, t.tensor([0]), 300),
        lambda t: t.zeros(2, 3).scatter_(1, t.tensor([[1], [0]]), 7.0),
        lambda t: t.zeros(3).scatter_add_(0, t.tensor([0, 0]), t.ones(2)),
        lambda t: t.nn.functional.binary_cross_entropy(t.tensor([0.5, 1.5]), t.tensor([2.0, 0.5])),
        lambda t: t.addmm(t.tensor(1.0), t.ones(2, 2, dtype=t.float64), t.ones(2, 2, dtype=t.float64)),
        lambda t: t.logsumexp(t.tensor(1.0), 99),
        lambda t: t.linspace(1e300, 1, 3),
        lambda t: t.max(t.ones(2), t.ones(2), True),
        lambda t: t.ones(2, 2).min(t.ones(2, 2), keepdim=True),
        lambda t: t.ones(2, 2).sum(t.tensor([0, 1])),
        lambda t: t.ones(2, 2).split(True, -1),
        lambda t: t.zeros(3).index_put((), t.tensor(1.0)),
    ]
    for f in cases:
        ours, theirs = outcome(torch, f), outcome(real, f)
        assert ours[0] == theirs[0], (ours, theirs)
        if ours[0] == "ok":
            assert ours == theirs


def test_function_forms_take_one_sequence():
    x = torch.ones(4)
    with pytest.raises(TypeError, match=r"^reshape\(\): argument 'shape' \(position 2\) must be tuple of ints, not int$"):
        torch.reshape(x, 4)
    with pytest.raises(TypeError, match=r"^permute\(\): argument 'dims' \(position 2\) must be tuple of ints, not int$"):
        torch.permute(x, 0)
    assert torch.reshape(x, (2, 2)).shape == (2, 2) and torch.permute(torch.ones(2, 3), (1, 0)).shape == (3, 2)
    with pytest.raises(AttributeError, match="'list' object has no attribute 'split'"):
        torch.split([1], 1)
    with pytest.raises(TypeError, match=r"argument 'ord' \(position 2\) must be Number, not Tensor"):
        torch.norm(x, x)
    with pytest.raises(TypeError, match=r"softplus\(\): argument 'beta' must be Number, not Tensor"):
        F.softplus(x, beta=x)


@pytest.mark.parametrize("add", [False, True])
def test_in_place_scatter_gradchecks(add):
    index = torch.tensor([[1, 0, 2], [0, 2, 1]])

    def f(base, src):
        out = base * 1
        return out.scatter_add_(0, index, src) if add else out.scatter_(0, index, src)

    base = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    src = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (base, src))
    assert torch.autograd.gradgradcheck(f, (base, src))
    assert f(base, src).grad_fn.name() == ("ScatterAddBackward0" if add else "ScatterBackward0")
