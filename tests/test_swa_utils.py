"""``torch.optim.swa_utils``: AveragedModel (SWA and EMA), SWALR and update_bn.

The averages are checked against closed forms computed in float64 from snapshots of the parameters;
the schedule against the cosine/linear annealing formula. A PyTorch comparison runs when it is installed.
"""

import math

import numpy as np
import pytest
import rustgrad
from rustgrad.optim.swa_utils import (
    SWALR,
    AveragedModel,
    get_ema_avg_fn,
    get_ema_multi_avg_fn,
    get_swa_multi_avg_fn,
    update_bn,
)


def _train(model, steps, seed=0):
    """Runs ``steps`` SGD steps on random data, yielding after each one."""
    rustgrad.manual_seed(seed)
    opt = rustgrad.optim.SGD(model.parameters(), lr=0.3)
    for _ in range(steps):
        x, y = rustgrad.randn(8, 3), rustgrad.randn(8, 1)
        opt.zero_grad()
        rustgrad.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        yield


def _model():
    rustgrad.manual_seed(1)
    return rustgrad.nn.Sequential(rustgrad.nn.Linear(3, 4), rustgrad.nn.Tanh(), rustgrad.nn.Linear(4, 1))


def _snapshot(model):
    return [p.detach().double().numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("multi", [False, True])
def test_swa_is_the_running_mean_of_the_snapshots(multi):
    model = _model()
    swa = AveragedModel(model, multi_avg_fn=get_swa_multi_avg_fn() if multi else None)
    snaps = []
    for _ in _train(model, 5):
        swa.update_parameters(model)
        snaps.append(_snapshot(model))
    assert swa.n_averaged.dtype == rustgrad.int64 and swa.n_averaged.item() == 5
    for i, p in enumerate(swa.module.parameters()):
        expected = np.mean([s[i] for s in snaps], axis=0)
        np.testing.assert_allclose(p.detach().double().numpy(), expected, rtol=1e-5, atol=1e-6)
        assert not np.allclose(p.detach().double().numpy(), snaps[-1][i])


@pytest.mark.parametrize("multi", [False, True])
def test_ema_follows_its_recursion(multi):
    decay = 0.8
    model = _model()
    fn = {"multi_avg_fn": get_ema_multi_avg_fn(decay)} if multi else {"avg_fn": get_ema_avg_fn(decay)}
    ema = AveragedModel(model, **fn)
    expected = None
    for _ in _train(model, 4):
        ema.update_parameters(model)
        snap = _snapshot(model)
        # ema_1 = p_1; ema_n = decay ema_{n-1} + (1 - decay) p_n
        expected = snap if expected is None else [decay * e + (1 - decay) * s for e, s in zip(expected, snap)]
    for p, e in zip(ema.parameters(), expected):
        np.testing.assert_allclose(p.detach().double().numpy(), e, rtol=1e-5, atol=1e-6)


def test_averaged_model_runs_its_copy_and_saves_the_count():
    model = _model()
    swa = AveragedModel(model)
    assert list(swa.state_dict()) == ["n_averaged", "module.0.weight", "module.0.bias", "module.2.weight",
                                      "module.2.bias"]
    x = rustgrad.ones(2, 3)
    np.testing.assert_array_equal(swa(x).detach().numpy(), model(x).detach().numpy())
    with rustgrad.no_grad():
        next(model.parameters()).add_(1.0)
    assert not np.allclose(swa(x).detach().numpy(), model(x).detach().numpy())
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        AveragedModel(model, avg_fn=get_ema_avg_fn(), multi_avg_fn=get_ema_multi_avg_fn())


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_swalr_anneals_to_swa_lr(strategy):
    model = _model()
    lr0, swa_lr, epochs = 0.5, 0.05, 3
    opt = rustgrad.optim.SGD(model.parameters(), lr=lr0)
    sched = SWALR(opt, swa_lr=swa_lr, anneal_epochs=epochs, anneal_strategy=strategy)
    anneal = (lambda t: (1 - math.cos(math.pi * t)) / 2) if strategy == "cos" else (lambda t: t)
    # The constructor's step sets the lr for t = 0; each step then moves it to alpha(t) of the way.
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(5):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    expected = [swa_lr * anneal(min(1, k / epochs)) + lr0 * (1 - anneal(min(1, k / epochs))) for k in range(6)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    assert sched.get_last_lr() == [lrs[-1]]


def test_swalr_rejects_bad_arguments():
    opt = rustgrad.optim.SGD(_model().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear', instead got foo"):
        SWALR(opt, 0.1, anneal_strategy="foo")
    with pytest.raises(ValueError, match="anneal_epochs must be equal or greater than 0, got -1"):
        SWALR(opt, 0.1, anneal_epochs=-1)
    with pytest.raises(ValueError, match=r"swa_lr must have the same length as optimizer.param_groups. swa_lr has 2 values, param_groups has 1."):
        SWALR(opt, [0.1, 0.2])


class _Stats(rustgrad.nn.Module):
    """A stand-in for batch norm: running statistics the way update_bn drives them."""

    def __init__(self):
        super().__init__()
        self.momentum = 0.1
        self.running_mean = rustgrad.full((3,), 7.0)
        self.seen = []

    def reset_running_stats(self):
        self.running_mean.zero_()

    def forward(self, x):
        assert self.training and self.momentum is None
        self.seen.append(x.sum().item())
        self.running_mean.add_(x.mean(0))
        return x


def test_update_bn_resets_and_recomputes_in_train_mode():
    model = rustgrad.nn.Sequential(_Stats())
    model.eval()
    batches = [(rustgrad.full((2, 3), float(i)), i) for i in range(3)]
    update_bn(batches, model)
    stats = model[0]
    assert stats.seen == [0.0, 6.0, 12.0]
    np.testing.assert_array_equal(stats.running_mean.numpy(), [3.0, 3.0, 3.0])
    assert stats.momentum == 0.1 and not model.training
    plain = rustgrad.nn.Linear(3, 1)
    update_bn([rustgrad.ones(2, 3)], plain)  # nothing to recompute


def test_against_pytorch():
    torch = pytest.importorskip("torch")
    if torch is rustgrad:
        pytest.skip("runs against real PyTorch")

    def run(lib):
        lib.manual_seed(0)
        model = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.ReLU(), lib.nn.Linear(4, 1))
        swa = lib.optim.swa_utils.AveragedModel(model)
        ema = lib.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=lib.optim.swa_utils.get_ema_multi_avg_fn(0.9))
        opt = lib.optim.SGD(model.parameters(), lr=0.5)
        sched = lib.optim.swa_utils.SWALR(opt, swa_lr=0.05, anneal_epochs=3)
        lrs = []
        for _ in range(6):
            x, y = lib.randn(8, 3), lib.randn(8, 1)
            opt.zero_grad()
            lib.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
            swa.update_parameters(model)
            ema.update_parameters(model)
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        params = [p.detach().numpy().copy() for m in (swa, ema) for p in m.parameters()]
        return lrs, params, repr(swa)

    ours, theirs = run(rustgrad), run(torch)
    assert ours[0] == theirs[0] and ours[2] == theirs[2]
    # PyTorch's matrix products sum in a CPU-dependent order (its BLAS picks kernels per CPU), so
    # the weights' gradients may differ by an ulp; the averaging itself is checked exactly above.
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
