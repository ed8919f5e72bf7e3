"""``torch.normal`` (every overload) reproduces PyTorch 2.15's draws for a seed (recorded values;
the file also passes run against PyTorch), and the legacy ``autograd.Variable``."""

import numpy as np
import pytest
import rustgrad as torch

Variable = torch.autograd.Variable


@pytest.mark.parametrize(
    "draw, expected",
    [
        (lambda: torch.normal(torch.arange(4.0), 1.0), [1.540996, 0.706571, -0.178789, 3.568431]),
        (lambda: torch.normal(torch.arange(20.0), 2.0)[-3:], [19.518019, 22.009960, 19.107473]),
        (lambda: torch.normal(2.0, torch.ones(3) * 3), [6.622988, 1.119713, -4.536368]),
        (lambda: torch.normal(torch.zeros(3), torch.ones(3) * 2), [3.081992, -0.586858, -4.357579]),
        (lambda: torch.normal(1.0, 2.0, (2, 3))[1], [2.136863, -1.169045, -1.797191]),
        (lambda: torch.normal(1.0, 2.0, size=(20,))[-2:], [5.009961, 1.107474]),
        (lambda: torch.normal(torch.zeros(20, 2), torch.ones(20, 2))[-1], [-1.580994, 1.706643]),
    ],
)
def test_normal_draws_as_pytorch(draw, expected):
    torch.manual_seed(0)
    np.testing.assert_allclose(draw().numpy(), expected, rtol=1e-5)


def test_variable_is_a_tensor_sharing_data():
    t = torch.ones(2)
    v = Variable(t)
    assert v is not t and not v.requires_grad and isinstance(t, Variable)
    w = Variable(t, requires_grad=True)
    assert w.requires_grad and w.is_leaf and not t.requires_grad
    w.data.add_(1)
    assert t.tolist() == [2.0, 2.0]  # the same elements
    with pytest.raises(TypeError, match="^Variable data has to be a tensor, but got list$"):
        Variable([1, 2])
