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
