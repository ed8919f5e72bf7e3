"""Seed 001: d2l notebook "自动求导".

One test per notebook cell (In [1] ... In [12]). Cells depend on the ones
before them, so each test first replays the earlier cells it needs. A cell's
displayed output is the repr() of its last expression; that is what is
asserted.
"""

import numpy as np
import pytest


def _cells_1_to_5(torch):
    """Replay In [1], [3], [4], [5]: x = arange(4.), requires_grad_,
    y = 2 * dot(x, x), y.backward()."""
    x = torch.arange(4.0)
    x.requires_grad_(True)
    y = 2 * torch.dot(x, x)
    y.backward()
    return x


def test_001_cell1_arange():
    import rustgrad as torch

    x = torch.arange(4.0)

    assert repr(x) == "tensor([0., 1., 2., 3.])"
    assert x.dtype == torch.float32
    assert x.requires_grad is False


def test_001_cell2_arange_requires_grad():
    import rustgrad as torch

    x2 = torch.arange(4.0, requires_grad=True)

    assert repr(x2) == "tensor([0., 1., 2., 3.], requires_grad=True)"
    assert x2.is_leaf is True


def test_001_cell3_requires_grad_():
    import rustgrad as torch

    x = torch.arange(4.0)

    # 等价于 x = torch.arange(4.0, requires_grad=True)
    ret = x.requires_grad_(True)
    # x.grad 存储了x的梯度
    out = x.grad  # the cell's displayed value

    # The cell shows no output: x.grad is None until a backward pass.
    assert out is None
    assert repr(out) == "None"
    assert ret is x
    assert x.requires_grad is True
    assert x.is_leaf is True
    assert repr(x) == "tensor([0., 1., 2., 3.], requires_grad=True)"


def test_001_cell4_dot():
    import rustgrad as torch

    x = torch.arange(4.0)
    x.requires_grad_(True)

    # 此处，y是标量
    y = 2 * torch.dot(x, x)
    out = y  # the cell's displayed value

    assert repr(out) == "tensor(28., grad_fn=<MulBackward0>)"
    assert y.grad_fn.name() == "MulBackward0"
    assert type(y.grad_fn).__name__ == "MulBackward0"
    assert tuple(y.shape) == ()


def test_001_cell5_backward():
    import rustgrad as torch

    x = torch.arange(4.0)
    x.requires_grad_(True)
    y = 2 * torch.dot(x, x)

    y.backward()
    out = x.grad  # the cell's displayed value

    assert repr(out) == "tensor([ 0.,  4.,  8., 12.])"
    np.testing.assert_array_equal(x.grad.numpy(), 4 * np.arange(4.0))


def test_001_cell6_grad_equals_4x():
    import rustgrad as torch

    x = _cells_1_to_5(torch)

    result = x.grad == 4 * x

    assert repr(result) == "tensor([True, True, True, True])"
    assert result.dtype == torch.bool


def test_001_cell7_sum():
    import rustgrad as torch

    x = _cells_1_to_5(torch)

    result = x.sum()

    assert repr(result) == "tensor(6., grad_fn=<SumBackward0>)"
    assert type(result.grad_fn).__name__ == "SumBackward0"


def test_001_cell8_zero_grad_then_sum():
    import rustgrad as torch

    x = _cells_1_to_5(torch)
    grad_before = x.grad

    x.grad.zero_()

    y = x.sum()

    y.backward()
    out = x.grad  # the cell's displayed value

    assert repr(out) == "tensor([1., 1., 1., 1.])"
    # zero_() works in place and the next backward accumulates into the
    # same tensor
    assert repr(grad_before) == "tensor([1., 1., 1., 1.])"


def test_001_cell9_vector_output():
    import rustgrad as torch

    x = _cells_1_to_5(torch)
    x.grad.zero_()
    x.sum().backward()

    x.grad.zero_()

    # 此处，y是向量
    y = x * x

    # 等价于 y.backward(torch.ones(len(x)))
    y.sum().backward()

    # 向量对向量求导的结果是矩阵
    out = x.grad  # the cell's displayed value

    assert repr(out) == "tensor([0., 2., 4., 6.])"

    # the comment's equivalent form gives the same gradient
    x.grad.zero_()
    y = x * x
    y.backward(torch.ones(len(x)))
    assert repr(x.grad) == "tensor([0., 2., 4., 6.])"


def test_001_cell10_detach():
    import rustgrad as torch

    x = _cells_1_to_5(torch)

    x.grad.zero_()
    y = x * x

    u = y.detach()
    z = u * x

    z.sum().backward()
    result = x.grad == u

    assert repr(result) == "tensor([True, True, True, True])"
    assert repr(u) == "tensor([0., 1., 4., 9.])"
    assert u.requires_grad is False
    assert u.grad_fn is None
    assert u.is_leaf is True
    assert repr(x.grad) == "tensor([0., 1., 4., 9.])"


def test_001_detach_shares_memory():
    import rustgrad as torch

    # Prose of In [10]: the detached tensor shares memory with the original,
    # so changing one changes the other.
    x = torch.arange(4.0, requires_grad=True)
    y = x * x
    u = y.detach()
    u.add_(1)
    assert repr(y) == "tensor([ 1.,  2.,  5., 10.], grad_fn=<MulBackward0>)"
    assert repr(u) == "tensor([ 1.,  2.,  5., 10.])"


def test_001_cell11_grad_through_y():
    import rustgrad as torch

    x = _cells_1_to_5(torch)
    x.grad.zero_()
    y = x * x
    u = y.detach()
    z = u * x
    z.sum().backward()

    x.grad.zero_()

    y.sum().backward()

    result = x.grad == 2 * x

    assert repr(result) == "tensor([True, True, True, True])"
    assert repr(x.grad) == "tensor([0., 2., 4., 6.])"


# The notebook draws `a` unseeded. d / a is computed in float32 and, for a
# negative `a` (the `100 * b` branch), rounds off the exact gradient in
# about 6% of draws on PyTorch too, so the test seeds the generator: seed 0
# gives a = 1.5410 (positive branch), seed 4 gives a = -1.6053 (negative
# branch); both print tensor(True) on PyTorch 2.15.
@pytest.mark.parametrize("seed", [0, 4])
def test_001_cell12_control_flow(seed):
    import rustgrad as torch

    torch.manual_seed(seed)

    def f(a):
        b = a * 2
        while b.norm() < 1000:
            b = b * 2
        if b.sum() > 0:
            c = b
        else:
            c = 100 * b
        return c

    # 不指定size，则表示标量
    a = torch.randn(size=(), requires_grad=True)
    d = f(a)
    d.backward()

    result = a.grad == d / a

    assert repr(result) == "tensor(True)"
    assert tuple(a.shape) == ()

    # closed form: d = k * a with k = 2**n (times 100 if a < 0), where n is
    # the smallest n >= 1 with |a| * 2**n >= 1000
    av = float(np.float32(a.item()))
    n = 1
    while abs(av) * 2.0 ** n < 1000:
        n += 1
    k = 2.0 ** n * (1 if av > 0 else 100)
    assert a.grad.item() == k
    expected_a = {0: "tensor(1.5410, requires_grad=True)",
                  4: "tensor(-1.6053, requires_grad=True)"}[seed]
    assert repr(a) == expected_a
