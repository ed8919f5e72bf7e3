"""Seed 000: "Pytorch自动求梯度原理介绍" (Dive-into-DL 2.3 autograd, datawhale).

One test per code example, run as written with ``import rustgrad as torch``.
Old grad_fn names in the tutorial are mapped to PyTorch 2.x names:
AddBackward/ThAddBackward -> AddBackward0, MulBackward -> MulBackward0,
MeanBackward1 (full mean) -> MeanBackward0, ViewBackward -> ViewBackward0.
"""

import numpy as np
import pytest
from seed_helpers import assert_grad_fn, assert_printed


def test_000_ones_requires_grad(capsys):
    import rustgrad as torch

    x = torch.ones(2, 2, requires_grad=True)
    print(x)
    print(x.grad_fn)

    assert_printed(capsys, """\
tensor([[1., 1.],
        [1., 1.]], requires_grad=True)
None
""")
    assert x.requires_grad is True
    assert x.is_leaf is True
    assert x.grad is None
    assert x.dtype == torch.float32
    assert tuple(x.shape) == (2, 2)
    assert x.device.type == "cpu"


def test_000_add_grad_fn(capsys):
    import rustgrad as torch

    x = torch.ones(2, 2, requires_grad=True)

    y = x + 2
    print(y)
    print(y.grad_fn)

    # tutorial (old PyTorch): grad_fn=<AddBackward>, <AddBackward object at ...>
    assert_printed(capsys, """\
tensor([[3., 3.],
        [3., 3.]], grad_fn=<AddBackward0>)
<AddBackward0 object at 0x1100477b8>
""")
    assert_grad_fn(y, "AddBackward0")
    assert y.requires_grad is True


def test_000_is_leaf(capsys):
    import rustgrad as torch

    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2

    print(x.is_leaf, y.is_leaf)  # True False

    assert_printed(capsys, "True False\n")
    assert x.grad_fn is None


def test_000_mul_mean(capsys):
    import rustgrad as torch

    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2

    z = y * y * 3
    out = z.mean()
    print(z, out)

    # tutorial (old PyTorch): <MulBackward>, <MeanBackward1>
    assert_printed(capsys, """\
tensor([[27., 27.],
        [27., 27.]], grad_fn=<MulBackward0>) tensor(27., grad_fn=<MeanBackward0>)
""")
    assert_grad_fn(z, "MulBackward0")
    assert_grad_fn(out, "MeanBackward0")
    assert tuple(out.shape) == ()
    assert out.item() == 27.0


def test_000_requires_grad_inplace(capsys):
    import rustgrad as torch

    a = torch.randn(2, 2) # 缺失情况下默认 requires_grad = False
    a = ((a * 3) / (a - 1))
    print(a.requires_grad) # False
    a.requires_grad_(True)
    print(a.requires_grad) # True
    b = (a * a).sum()
    print(b.grad_fn)

    assert_printed(capsys, """\
False
True
<SumBackward0 object at 0x118f50cc0>
""")
    assert a.is_leaf is True
    assert a.grad_fn is None
    assert_grad_fn(b, "SumBackward0")
    assert a.requires_grad_(False) is a
    assert a.requires_grad is False


def test_000_autograd_backward_signature():
    import rustgrad as torch

    # The tutorial shows the signature
    #   torch.autograd.backward(tensors, grad_tensors=None,
    #                           retain_grad=None, create_graph=False)
    # 'retain_grad' is the tutorial's typo for 'retain_graph' (its own prose
    # says retain_graph); PyTorch rejects the typo like any Python function.
    w = torch.tensor([1., 2.], requires_grad=True)
    tensors = (w * w).sum()
    torch.autograd.backward(tensors,
                            grad_tensors=None,
                            retain_graph=None,
                            create_graph=False)
    assert repr(w.grad) == "tensor([2., 4.])"

    tensors = (w * w).sum()
    with pytest.raises(TypeError, match="unexpected keyword argument 'retain_grad'"):
        torch.autograd.backward(tensors,
                                grad_tensors=None,
                                retain_grad=None,
                                create_graph=False)

    # grad_tensors weights each output, as in y.backward(v)
    y = w * 3
    torch.autograd.backward(y, grad_tensors=torch.tensor([1., 10.]))
    assert repr(w.grad) == "tensor([ 5., 34.])"


def test_000_autograd_grad_signature():
    import rustgrad as torch

    # torch.autograd.grad(outputs, inputs, grad_outputs=None,
    #                     retain_graph=None, create_graph=False)
    inputs = torch.tensor([1., 2., 3.], requires_grad=True)
    outputs = (inputs ** 2).sum()
    result = torch.autograd.grad(outputs,
                                 inputs,
                                 grad_outputs=None,
                                 retain_graph=None,
                                 create_graph=False)
    assert isinstance(result, tuple)
    assert repr(result) == "(tensor([2., 4., 6.]),)"
    # autograd.grad returns the gradients and leaves .grad alone
    assert inputs.grad is None


def test_000_chain_rule_example(capsys):
    import rustgrad as torch
    torch.manual_seed(10)  #用于设置随机数

    w = torch.tensor([1.], requires_grad=True)    #创建叶子张量，并设定requires_grad为True，因为需要计算梯度；
    x = torch.tensor([2.], requires_grad=True)    #创建叶子张量，并设定requires_grad为True，因为需要计算梯度；

    a = torch.add(w, x)    #执行运算并搭建动态计算图
    b = torch.add(w, 1)
    y = torch.mul(a, b)

    y.backward(retain_graph=True)
    print(w.grad)   #输出为tensor([5.])

    assert_printed(capsys, "tensor([5.])\n")
    # dy/dw = b + a = 2 + 3, dy/dx = b = 2
    assert repr(x.grad) == "tensor([2.])"
    assert_grad_fn(a, "AddBackward0")
    assert_grad_fn(b, "AddBackward0")
    assert_grad_fn(y, "MulBackward0")
    # retain_graph=True keeps the graph: a second backward works and the
    # gradients accumulate.
    y.backward()
    assert repr(w.grad) == "tensor([10.])"
    assert repr(x.grad) == "tensor([4.])"


def test_000_backward_twice_without_retain_graph_raises():
    import rustgrad as torch

    # Prose of 2.4: without retain_graph=True a second backward() errors,
    # because the graph was freed by the first one.
    w = torch.tensor([1.], requires_grad=True)
    x = torch.tensor([2.], requires_grad=True)
    a = torch.add(w, x)
    b = torch.add(w, 1)
    y = torch.mul(a, b)
    y.backward()
    assert repr(w.grad) == "tensor([5.])"
    with pytest.raises(RuntimeError,
                       match="Trying to backward through the graph a second time"):
        y.backward()


def test_000_tensor_backward_calls_autograd_backward():
    import rustgrad as torch

    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        torch.autograd.backward(self, gradient, retain_graph, create_graph)

    # The tutorial's one-line Tensor.backward: calling it is the same as
    # calling y.backward() directly.
    w1 = torch.tensor([1.], requires_grad=True)
    y1 = torch.mul(torch.add(w1, 2.), torch.add(w1, 1))
    backward(y1, None, True, False)
    backward(y1)
    w2 = torch.tensor([1.], requires_grad=True)
    y2 = torch.mul(torch.add(w2, 2.), torch.add(w2, 1))
    y2.backward(retain_graph=True)
    y2.backward()
    assert repr(w1.grad) == "tensor([10.])"
    assert repr(w2.grad) == repr(w1.grad)


def test_000_view_backward(capsys):
    import rustgrad as torch

    x = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = 2 * x
    z = y.view(2, 2)
    print(z)

    # tutorial (old PyTorch): grad_fn=<ViewBackward>
    assert_printed(capsys, """\
tensor([[2., 4.],
        [6., 8.]], grad_fn=<ViewBackward0>)
""")
    assert_grad_fn(z, "ViewBackward0")
    assert_grad_fn(y, "MulBackward0")


def test_000_backward_with_weights(capsys):
    import rustgrad as torch

    x = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = 2 * x
    z = y.view(2, 2)

    v = torch.tensor([[1.0, 0.1], [0.01, 0.001]], dtype=torch.float)
    z.backward(v)
    print(x.grad)

    assert_printed(capsys, "tensor([2.0000, 0.2000, 0.0200, 0.0020])\n")
    # x.grad has x's shape; it is 2 * v flattened
    assert tuple(x.grad.shape) == (4,)
    np.testing.assert_allclose(
        x.grad.numpy(),
        2 * np.array([1.0, 0.1, 0.01, 0.001], dtype=np.float32),
        rtol=1e-6)


def test_000_non_scalar_backward_needs_gradient():
    import rustgrad as torch

    # Prose of 2.5: a non-scalar z needs a weight tensor of z's shape.
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = 2 * x
    z = y.view(2, 2)
    with pytest.raises(RuntimeError,
                       match="grad can be implicitly created only for scalar outputs"):
        z.backward()
    # y.backward(w) means: l = torch.sum(y * w); dl/dx
    w = torch.tensor([[1.0, 0.1], [0.01, 0.001]])
    torch.sum(z * w).backward()
    assert repr(x.grad) == "tensor([2.0000, 0.2000, 0.0200, 0.0020])"


def test_000_no_grad(capsys):
    import rustgrad as torch

    x = torch.tensor(1.0, requires_grad=True)
    y1 = x ** 2
    with torch.no_grad():
        y2 = x ** 3
    y3 = y1 + y2

    print(x.requires_grad)
    print(y1, y1.requires_grad) # True
    print(y2, y2.requires_grad) # False
    print(y3, y3.requires_grad) # True

    # tutorial (old PyTorch): grad_fn=<ThAddBackward>
    assert_printed(capsys, """\
True
tensor(1., grad_fn=<PowBackward0>) True
tensor(1.) False
tensor(2., grad_fn=<AddBackward0>) True
""")
    assert y2.grad_fn is None
    assert y2.is_leaf is True
    assert_grad_fn(y1, "PowBackward0")
    assert_grad_fn(y3, "AddBackward0")
    assert torch.is_grad_enabled() is True


def test_000_no_grad_backward(capsys):
    import rustgrad as torch

    x = torch.tensor(1.0, requires_grad=True)
    y1 = x ** 2
    with torch.no_grad():
        y2 = x ** 3
    y3 = y1 + y2

    y3.backward()
    print(x.grad)

    # 2, not 5: only y1 = x**2 carries gradient back to x
    assert_printed(capsys, "tensor(2.)\n")
    assert x.grad.item() == 2.0
    assert tuple(x.grad.shape) == ()


def test_000_backward_without_grad_raises():
    import rustgrad as torch

    # Prose: y2.requires_grad=False, so y2.backward() raises
    x = torch.tensor(1.0, requires_grad=True)
    with torch.no_grad():
        y2 = x ** 3
    with pytest.raises(RuntimeError,
                       match="element 0 of tensors does not require grad "
                             "and does not have a grad_fn"):
        y2.backward()


def test_000_data(capsys):
    import rustgrad as torch

    x = torch.ones(1,requires_grad=True)

    print(x.data) # 还是一个tensor
    print(x.data.requires_grad) # 但是已经是独立于计算图之外

    y = 2 * x
    x.data *= 100 # 只改变了值，不会记录在计算图，所以不会影响梯度传播

    y.backward()
    print(x) # 更改data的值也会影响tensor的值
    print(x.grad)

    assert_printed(capsys, """\
tensor([1.])
False
tensor([100.], requires_grad=True)
tensor([2.])
""")
    assert x.is_leaf is True
    assert x.grad_fn is None
