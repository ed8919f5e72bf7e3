"""Training loops: graphs are freed every step, and (where PyTorch is installed) the same seeded
program gives PyTorch's losses step by step."""

import numpy as np
import pytest
import rustgrad
from rustgrad import nn
from rustgrad.autograd import diagnostics


def _train(torch, steps, optimizer="adamw"):
    """A seeded MLP trained on fixed data; returns the loss of every step."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)
    )
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((32, 8)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 3, 32))
    if optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def test_training_frees_every_graph():
    before = diagnostics.graph_stats(by_kind=True)
    losses = _train(rustgrad, 60)
    assert losses[-1] < 0.7 * losses[0]
    assert diagnostics.graph_stats(by_kind=True) == before, before


def test_dropout_model_frees_its_graph_in_train_and_eval():
    rustgrad.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 1))
    x = rustgrad.randn(16, 4)
    # Earlier tests may leave create_graph cycles alive (PyTorch warns about those): compare.
    before = diagnostics.graph_stats()["live_nodes"]
    for mode in (model.train, model.eval):
        mode()
        out = model(x)
        nn.functional.mse_loss(out, rustgrad.zeros(16, 1)).backward()
        del out
        assert diagnostics.graph_stats()["live_nodes"] == before
    model.eval()
    assert rustgrad.equal(model(x), model(x))
    assert (model(x) == model(x)).all()


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_same_losses_as_pytorch(optimizer):
    torch = pytest.importorskip("torch")
    ours = _train(rustgrad, 30, optimizer)
    theirs = _train(torch, 30, optimizer)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
