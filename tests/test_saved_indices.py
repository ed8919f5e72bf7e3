"""Index and mask tensors are saved with their versions, as PyTorch's SavedVariable does: a
backward through a freed graph raises, and so does one after the index was modified in place."""

import pytest
import rustgrad as torch

OPS = {
    "gather": lambda x: x.gather(-1, torch.tensor([[1], [2], [0], [3]])),
    "index": lambda x: x[torch.tensor([0, 2])],
    "masked_fill": lambda x: x.masked_fill(x > 0, 1.0),
    "max": lambda x: x.max(1)[0],
    "scatter": lambda x: x.scatter(0, torch.tensor([[1, 2, 3, 0]]), 0.5),
    "index_put": lambda x: x.index_put((torch.tensor([1]),), torch.tensor(2.0)),
    "where": lambda x: torch.where(x > 0, x, 0.0),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_second_backward_through_a_freed_graph_raises(name):
    x = torch.randn(4, 4, requires_grad=True)
    y = OPS[name](x).sum()
    y.backward(retain_graph=True)
    y.backward()  # the graph was kept once
    with pytest.raises(RuntimeError, match="^Trying to backward through the graph a second time"):
        y.backward()


def test_gather_gradient_and_modified_index():
    x = torch.zeros(2, 3, requires_grad=True)
    idx = torch.tensor([[2, 2], [0, 1]])
    x.gather(1, idx).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0, 2.0], [1.0, 1.0, 0.0]]  # repeats accumulate
    y = x.gather(1, idx)
    idx.add_(0)
    with pytest.raises(
        RuntimeError, match=r"\[torch.LongTensor \[2, 2\]\] is at version 1; expected version 0"
    ):
        y.sum().backward()


def test_nll_loss_target_modified_in_place_is_caught():
    x = torch.rand(3, 4, requires_grad=True)
    target = torch.tensor([0, 2, 3])
    loss = torch.nn.functional.cross_entropy(x, target)
    target[1] = 3
    with pytest.raises(RuntimeError, match=r"\[torch.LongTensor \[3\]\] is at version 1; expected version 0"):
        loss.backward()
    loss = torch.nn.functional.nll_loss(x.log_softmax(1), torch.tensor([1, 1, 0]), reduction="sum")
    loss.backward()  # d/dx of -sum(logp[i, t_i]) = softmax - onehot, rows sum to 0
    assert torch.allclose(x.grad.sum(1), torch.zeros(3), atol=1e-6)


def test_clamp_min_and_max_refuse_none():
    x = torch.randn(3)
    for name in ("clamp_min", "clamp_max"):
        with pytest.raises(
            TypeError, match=rf"^{name}\(\) received an invalid combination of arguments - got \(NoneType\)"
        ):
            getattr(x, name)(None)


def test_class_weights_modified_after_nll_loss_fail_backward():
    x = torch.randn(3, 4, requires_grad=True, dtype=torch.float64)
    weight = torch.rand(4, dtype=torch.float64)
    loss = torch.nn.functional.nll_loss(torch.log_softmax(x, 1), torch.tensor([0, 1, 3]), weight=weight)
    weight[1] = 0.5
    with pytest.raises(RuntimeError, match=r"\[torch.DoubleTensor \[4\]\] is at version 1; expected version 0"):
        loss.backward()
