"""numpy's argument names (`axis=`, `keepdims=`) and dim tuples, accepted as PyTorch accepts them."""

import pytest
import rustgrad as torch


def x():
    return torch.arange(12.0).reshape(3, 4)


def test_axis_and_keepdims_on_methods_and_functions():
    assert x().sum(axis=0).tolist() == [12.0, 15.0, 18.0, 21.0]
    assert x().sum(0, keepdims=True).shape == (1, 4)
    assert x().mean(axis=1, keepdim=True).tolist() == [[1.5], [5.5], [9.5]]
    assert torch.sum(x(), axis=1).tolist() == [6.0, 22.0, 38.0]
    assert x().max(axis=1).values.tolist() == [3.0, 7.0, 11.0]
    assert x().argmax(axis=1).tolist() == [3, 3, 3]
    assert x().cumsum(axis=0)[2].tolist() == [12.0, 15.0, 18.0, 21.0]
    assert torch.cat([x(), x()], axis=0).shape == (6, 4)
    assert torch.stack([x(), x()], axis=1).shape == (3, 2, 4)
    with pytest.raises(TypeError):
        x().sum(axis=0, dim=1)


def test_all_and_any_take_dim_tuples():
    t = x() > 3
    assert t.all(dim=(0, 1)).item() is False
    assert t.any(dim=(0, 1)).item() is True
    assert t.all(dim=(1,), keepdim=True).tolist() == [[False], [True], [True]]
    assert (x() >= 0).all(axis=(0, 1)).item() is True


def test_out_argument_writes_into_the_given_tensor():
    a, b = torch.ones(2, 3), torch.ones(3, 2)
    o = torch.zeros(2, 3)
    version = o._version
    assert torch.add(a, a, out=o) is o
    assert o.tolist() == [[2.0] * 3] * 2 and o._version > version
    with pytest.warns(UserWarning, match=r"resized since it had shape \[5\].*\[2, 2\]"):
        r = torch.matmul(a, b, out=torch.zeros(5))
    assert r.shape == (2, 2) and r.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    assert torch.mul(a, a, out=torch.empty(0)).shape == (2, 3)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        torch.mul(a, a, out=torch.zeros(2, 3, dtype=torch.int64))
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"mul\(\): functions with out=\.\.\. arguments don't support automatic"):
        torch.mul(w, w, out=torch.zeros(2))
    with torch.no_grad():
        o2 = torch.mul(w, w, out=torch.zeros(2))
    assert not o2.requires_grad and o2.grad_fn is None
    assert torch.cat([a, a], dim=0, out=torch.zeros(4, 3)).sum().item() == 12.0


def test_all_and_any_over_no_dims_reduce_nothing():
    x = torch.tensor([[0.0, 2.0]])
    assert x.all(()).tolist() == [[False, True]] and x.any([]).shape == (1, 2)
    assert torch.zeros(0).all([]).shape == (0,)
