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
    with pytest.raises(RuntimeError, match=r"\[torch.LongTensor \[2, 2\]\] is at version 1; expected version 0"):
        y.sum().backward()
