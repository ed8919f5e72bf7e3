"""Seed 003: requires_grad / grad_fn / is_leaf, mean backward (4.5),
accumulation and x.grad.data.zero_(), z.backward(w), no_grad, .data.

Where the tutorial shows no output ("输出" followed by nothing), the test
asserts what PyTorch 2.15 prints.
"""

import numpy as np
from seed_helpers import assert_grad_fn, assert_printed


def test_003_attributes(capsys):
    import rustgrad as torch

    x = torch.ones(3, 3, requires_grad=True)
    y = x * x
    z = x + 1

    print(x)
    print(x.grad_fn)
    print(y)
    print(y.grad_fn)
    print(z)
    print(z.grad_fn)

    # Output not shown in the tutorial; this is PyTorch's.
    assert_printed(capsys, """\
tensor([[1., 1., 1.],
        [1., 1., 1.],
        [1., 1., 1.]], requires_grad=True)
None
tensor([[1., 1., 1.],
        [1., 1., 1.],
        [1., 1., 1.]], grad_fn=<MulBackward0>)
<MulBackward0 object at 0x7f0000000000>
tensor([[2., 2., 2.],
        [2., 2., 2.],
        [2., 2., 2.]], grad_fn=<AddBackward0>)
<AddBackward0 object at 0x7f0000000000>
""")
    assert_grad_fn(y, "MulBackward0")
    assert_grad_fn(z, "AddBackward0")
    assert (x.is_leaf, y.is_leaf, z.is_leaf) == (True, False, False)
    assert (x.requires_grad, y.requires_grad, z.requires_grad) == (True, True, True)


def test_003_requires_grad_inplace(capsys):
    import rustgrad as torch

    x = torch.ones(3, 3)
    x = x * x + 2

    print(x.requires_grad)
    print(x.grad_fn)

    x.requires_grad_(True)

    print(x.requires_grad)
    print(x.grad_fn)

    assert_printed(capsys, """\
False
None
True
None
""")
    assert x.is_leaf is True


def test_003_mean_backward(capsys):
    import rustgrad as torch

    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean() #求平均值,out=tensor(27., grad_fn=<MeanBackward0>)
    out.backward() #反向传播求梯度,结果存储在x.grad中
    print(x.grad)

    # The tutorial lost the second row's indentation; PyTorch indents it.
    assert_printed(capsys, """\
tensor([[4.5000, 4.5000],
        [4.5000, 4.5000]])
""")
    assert repr(out) == "tensor(27., grad_fn=<MeanBackward0>)"
    # d/dx mean(3 (x + 2)^2) = 6 (x + 2) / 4 = 4.5 at x = 1
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 2), 4.5, np.float32))


def test_003_grad_accumulates(capsys):
    import rustgrad as torch

    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    out.backward()

    out2 = x.sum()
    out2.backward()
    print(x.grad)
    print(out2)

    # Output not shown in the tutorial: 4.5 + 1 accumulated.
    assert_printed(capsys, """\
tensor([[5.5000, 5.5000],
        [5.5000, 5.5000]])
tensor(4., grad_fn=<SumBackward0>)
""")
    assert_grad_fn(out2, "SumBackward0")


def test_003_zero_grad_data(capsys):
    import rustgrad as torch

    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    out.backward()
    grad = x.grad

    # 清零操作
    x.grad.data.zero_()

    print(x.grad)
    out2 = x.sum()
    out2.backward()
    print(x.grad)

    assert_printed(capsys, """\
tensor([[0., 0.],
        [0., 0.]])
tensor([[1., 1.],
        [1., 1.]])
""")
    # zeroed in place: the same grad tensor keeps accumulating
    assert repr(grad) == repr(x.grad)


def test_003_backward_with_weights(capsys):
    import rustgrad as torch

    x = torch.tensor([1.0, 2.0, 3.0, 4.5], requires_grad=True)
    y = x * x + 2
    z = y.view(2, 2)
    w = torch.tensor([[1.0, 0.1], [1.0, 0.01]]) #传入的与z同型的带权张量
    z.backward(w)
    print(x.grad)

    assert_printed(capsys, "tensor([2.0000, 0.4000, 6.0000, 0.0900])\n")
    # x.grad = 2x * w (flattened)
    np.testing.assert_allclose(
        x.grad.numpy(),
        2 * np.array([1.0, 2.0, 3.0, 4.5], np.float32)
        * np.array([1.0, 0.1, 1.0, 0.01], np.float32),
        rtol=1e-6)
    assert_grad_fn(z, "ViewBackward0")
    assert_grad_fn(y, "AddBackward0")


def test_003_no_grad_fstring(capsys):
    import rustgrad as torch

    x = torch.tensor(1., requires_grad=True)
    y1 = x ** 2
    with torch.no_grad():
        y2 = x ** 3
    y3 = y1 + y2

    y3.backward()
    print(f"x.grad = {x.grad}")
    print(f"y2.requires_grad = {y2.requires_grad}")

    # "x.grad = 2.0" is right for PyTorch 2.x: torch/_tensor.py
    # Tensor.__format__ formats a 0-d (non-meta, plain Tensor) tensor as
    # self.detach().item().__format__(format_spec) whatever the format_spec,
    # even an empty one, so f"{x.grad}" is "2.0", not "tensor(2.)".
    assert_printed(capsys, """\
x.grad = 2.0
y2.requires_grad = False
""")
    assert str(x.grad) == "tensor(2.)"
    assert f"{x.grad:.3f}" == "2.000"
    assert f"{y3}" == "2.0"
    assert y2.grad_fn is None


def test_003_data(capsys):
    import rustgrad as torch

    x = torch.ones(1,requires_grad=True)

    print(x.data) # 还是一个tensor
    print(x.data.requires_grad) # 但是已经是独立于计算图之外

    y = 2 * x
    x.data *= 100 # 只改变了值,不会记录在计算图,所以不会影响梯度传播

    y.backward()
    print(x) # 更改data的值也会影响tensor的值
    print(x.grad)

    assert_printed(capsys, """\
tensor([1.])
False
tensor([100.], requires_grad=True)
tensor([2.])
""")
