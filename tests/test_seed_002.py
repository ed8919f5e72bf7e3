"""Seed 002: "Autograd" (manual_seed, the hand-walked backward graph, linear
regression with a no_grad update and with optim.SGD).

Names the tutorial's snippets take from elsewhere (``device``,
``x_train_tensor``, ``y_train_tensor``, ``optim``) are defined in each test
as the original tutorial defines them (see seed_helpers.regression_data).
"""

import re

import numpy as np
import pytest
from seed_helpers import (
    SEED42_B0,
    SEED42_W0,
    assert_grad_fn,
    assert_printed,
    numpy_linear_regression,
    regression_data,
)

# torch.manual_seed(6); x = randn(4, 4); y = randn(4, 4): x.grad is y and
# y.grad is x, as the tutorial prints them.
Y_PRINTED = """\
tensor([[-1.4801, -1.0631,  0.3630,  0.3995],
        [ 0.1457, -0.7345, -0.9873,  1.8512],
        [-1.3437,  0.8535,  0.8811, -0.6522],
        [ 0.5810,  0.3561,  0.0160,  0.4019]]"""
X_PRINTED = """\
tensor([[-1.2113,  0.6304, -1.4713, -1.3352],
        [-0.4897,  0.1317,  0.3295,  0.3264],
        [-0.4806,  1.1032,  2.5485,  0.3006],
        [-0.5432, -1.0841,  1.4612, -1.6279]]"""

# What `print(b, w)` shows after either training loop (PyTorch 2.15).
REGRESSION_PRINTED = (
    "tensor([1.0235], requires_grad=True) tensor([1.9690], requires_grad=True)\n"
)
PRINTED_PARAM_RE = re.compile(
    r"tensor\(\[-?\d+\.\d{4}\], requires_grad=True\) "
    r"tensor\(\[-?\d+\.\d{4}\], requires_grad=True\)\n"
)


def test_002_backward_grads(capsys):
    import rustgrad as torch

    torch.manual_seed(6)
    x = torch.randn(4, 4, requires_grad=True)
    y = torch.randn(4, 4, requires_grad=True)
    z = x * y
    l = z.sum()
    l.backward()
    print(x.grad)
    print(y.grad)

    assert_printed(capsys, Y_PRINTED + ")\n" + X_PRINTED + ")\n")
    # d(sum(x * y))/dx = y exactly, and vice versa
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())
    np.testing.assert_array_equal(y.grad.numpy(), x.detach().numpy())
    assert x.grad.requires_grad is False
    assert x.grad.grad_fn is None


def test_002_manual_graph_walk(capsys):
    import rustgrad as torch

    torch.manual_seed(6)
    x = torch.randn((4, 4), requires_grad=True)
    y = torch.randn((4, 4), requires_grad=True)
    z = x * y
    l = z.sum()

    dl = torch.tensor(1.)

    back_sum = l.grad_fn
    dz = back_sum(dl)
    back_mul = back_sum.next_functions[0][0]
    dx, dy = back_mul(dz)
    back_x = back_mul.next_functions[0][0]
    back_x(dx)
    back_y = back_mul.next_functions[1][0]
    back_y(dy)
    print(x.grad)
    print(y.grad)

    # The tutorial prints grad_fn=<CopyBackwards>, and PyTorch 2.x still does
    # (checked by running PyTorch 2.15.0). Reason, from
    # torch/csrc/autograd/functions/accumulate_grad.h: calling a node from
    # Python runs it with grad mode on, so dx = dz * y already has a grad_fn
    # (MulBackward0, y requires grad). AccumulateGrad with no grad yet and
    # GradMode enabled cannot steal new_grad, so it stores
    # utils::clone_obey_contract(new_grad, variable); for a variable that
    # is non-overlapping and dense, that is
    #   new_grad.new_empty_strided(sizes, strides).copy_(new_grad)
    # (torch/csrc/autograd/utils/grad_layout_contract.h), which records
    # CopyBackwards, not CloneBackward0 (clone() is used only for sparse,
    # nested, mkldnn or overlapping variables).
    assert_printed(capsys,
                   Y_PRINTED + ", grad_fn=<CopyBackwards>)\n"
                   + X_PRINTED + ", grad_fn=<CopyBackwards>)\n")
    assert_grad_fn(x.grad, "CopyBackwards", "torch::autograd::CopyBackwards")
    assert_grad_fn(y.grad, "CopyBackwards", "torch::autograd::CopyBackwards")
    assert x.grad.requires_grad is True

    # The graph, as the tutorial explains it.
    assert type(back_sum).__name__ == "SumBackward0"
    assert back_sum.name() == "SumBackward0"
    assert type(back_mul).__name__ == "MulBackward0"
    assert back_mul.name() == "MulBackward0"
    assert isinstance(back_sum.next_functions, tuple)
    assert len(back_sum.next_functions) == 1
    assert back_sum.next_functions[0][1] == 0
    assert len(back_mul.next_functions) == 2
    assert back_mul.next_functions[0][1] == 0
    assert back_mul.next_functions[1][1] == 0
    assert type(back_x).__name__ == "AccumulateGrad"
    assert back_x.name() == "torch::autograd::AccumulateGrad"
    assert type(back_y).__name__ == "AccumulateGrad"
    assert back_x.variable is x
    assert back_y.variable is y
    assert back_x.next_functions == ()
    # a one-output node returns a Tensor, a two-output node a tuple
    assert repr(dz) == ("tensor([[1., 1., 1., 1.],\n"
                        "        [1., 1., 1., 1.],\n"
                        "        [1., 1., 1., 1.],\n"
                        "        [1., 1., 1., 1.]])")
    assert isinstance(back_mul(dz), tuple)
    assert_grad_fn(dx, "MulBackward0")
    # AccumulateGrad has no outputs
    assert back_x(torch.zeros(4, 4)) == ()
    np.testing.assert_array_equal(x.grad.detach().numpy(),
                                  y.detach().numpy())


def test_002_create_tensors_with_device():
    import rustgrad as torch

    device = 'cpu'

    b = torch.randn(1, requires_grad=True,
                    dtype=torch.float, device=device)
    w = torch.randn(1, requires_grad=True,
                    dtype=torch.float, device=device)

    for t in (b, w):
        assert tuple(t.shape) == (1,)
        assert t.dtype == torch.float32
        assert t.dtype == torch.float
        assert t.device.type == "cpu"
        assert repr(t.device) == "device(type='cpu')"
        assert t.requires_grad is True
        assert t.is_leaf is True
        assert t.grad is None
        assert re.fullmatch(r"tensor\(\[-?\d\.\d{4}\], requires_grad=True\)",
                            repr(t))


def _check_regression_result(capsys, b, w):
    out = capsys.readouterr().out
    assert PRINTED_PARAM_RE.fullmatch(out)
    assert out == REGRESSION_PRINTED
    # About b = 1 and w = 2 for y = 1 + 2x + noise
    assert abs(b.item() - 1.02) < 0.05
    assert abs(w.item() - 1.97) < 0.05
    assert b.requires_grad is True and b.is_leaf is True
    assert w.requires_grad is True and w.is_leaf is True


def test_002_linear_regression_no_grad_update(capsys):
    import rustgrad as torch

    device = 'cpu'
    x_train, y_train, x_train_tensor, y_train_tensor = regression_data(torch)

    # Sets learning rate - this is "eta" ~ the "n"-like Greek letter
    lr = 0.1

    # Step 0 - Initializes parameters "b" and "w" randomly
    torch.manual_seed(42)
    b = torch.randn(1, requires_grad=True, \
                    dtype=torch.float, device=device)
    w = torch.randn(1, requires_grad=True, \
                    dtype=torch.float, device=device)

    # the generator reproduces PyTorch's: 0.3367 and 0.1288
    assert b.item() == SEED42_B0
    assert w.item() == SEED42_W0

    # Defines number of epochs
    n_epochs = 1000

    for epoch in range(n_epochs):
        # Step 1 - Computes model's predicted output - forward pass
        yhat = b + w * x_train_tensor

        # Step 2 - Computes the loss
        # We are using ALL data points, so this is BATCH gradient
        # descent. How wrong is our model? That's the error!
        error = (yhat - y_train_tensor)
        # It is a regression, so it computes mean squared error (MSE)
        loss = (error ** 2).mean()

        # Step 3 - Computes gradients for both "b" and "w" parameters
        loss.backward()

        # 暂时关闭梯度，从而在不影响计算图的情况下更新参数
        with torch.no_grad():
            b -= lr * b.grad
            w -= lr * w.grad

        b.grad.zero_()
        w.grad.zero_()

    print(b, w)

    _check_regression_result(capsys, b, w)
    # independent oracle: the same loop in numpy float32
    b_ref, w_ref = numpy_linear_regression(x_train, y_train)
    assert b.item() == pytest.approx(float(b_ref[0]), abs=1e-4)
    assert w.item() == pytest.approx(float(w_ref[0]), abs=1e-4)
    # the last step zeroed the gradients in place
    assert repr(b.grad) == "tensor([0.])"
    assert repr(w.grad) == "tensor([0.])"
    # the last iteration's tensors
    assert tuple(yhat.shape) == (80, 1)
    assert_grad_fn(yhat, "AddBackward0")
    assert_grad_fn(error, "SubBackward0")
    assert_grad_fn(loss, "MeanBackward0")


def test_002_linear_regression_optimizer(capsys):
    import rustgrad as torch
    from rustgrad import optim

    device = 'cpu'
    x_train, y_train, x_train_tensor, y_train_tensor = regression_data(torch)

    # Sets learning rate - this is "eta" ~ the "n"-like Greek letter
    lr = 0.1

    # Step 0 - Initializes parameters "b" and "w" randomly
    torch.manual_seed(42)
    b = torch.randn(1, requires_grad=True,
                    dtype=torch.float, device=device)
    w = torch.randn(1, requires_grad=True,
                    dtype=torch.float, device=device)

    # Defines a SGD optimizer to update the parameters
    optimizer = optim.SGD([b, w], lr=lr)

    # Defines number of epochs
    n_epochs = 1000

    for epoch in range(n_epochs):
        # Step 1 - Computes model's predicted output - forward pass
        yhat = b + w * x_train_tensor

        # Step 2 - Computes the loss
        # We are using ALL data points, so this is BATCH gradient
        # descent. How wrong is our model? That's the error!
        error = (yhat - y_train_tensor)
        # It is a regression, so it computes mean squared error (MSE)
        loss = (error ** 2).mean()

        # Step 3 - Computes gradients for both "b" and "w" parameters
        loss.backward()

        # Step 4 - Updates parameters using gradients and
        # the learning rate. No more manual update!
        # with torch.no_grad():
        #     b -= lr * b.grad
        #     w -= lr * w.grad
        optimizer.step()

        # No more telling Pytorch to let gradients go!
        # b.grad.zero_()
        # w.grad.zero_()
        optimizer.zero_grad()

    print(b, w)

    _check_regression_result(capsys, b, w)
    b_ref, w_ref = numpy_linear_regression(x_train, y_train)
    assert b.item() == pytest.approx(float(b_ref[0]), abs=1e-4)
    assert w.item() == pytest.approx(float(w_ref[0]), abs=1e-4)
    # PyTorch 2.x: zero_grad() defaults to set_to_none=True
    assert b.grad is None
    assert w.grad is None
    assert isinstance(optimizer, optim.Optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.1
