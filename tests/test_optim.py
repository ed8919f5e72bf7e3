"""rustgrad.optim: SGD, Adam, AdamW and the lr schedulers against updates computed by hand in numpy.

Every expectation here also holds for PyTorch 2.15 (the file passes with ``sys.modules['rustgrad'] = torch``).
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import rustgrad as torch
from rustgrad import optim

# The objective: f(w) = sum(A * w**2) / 2 + sum(C * w), so grad f = A * w + C.
A = np.array([1.0, 3.0, 0.5])
C = np.array([0.2, -1.0, 0.0])
W0 = np.array([1.0, -2.0, 0.5])


def values(t) -> np.ndarray:
    return np.asarray(t.detach().tolist(), dtype=np.float64)


def make_param(dtype=None):
    return torch.tensor(W0.tolist(), dtype=dtype or torch.float64, requires_grad=True)


def backward_objective(w) -> None:
    a = torch.tensor(A.tolist(), dtype=w.dtype)
    c = torch.tensor(C.tolist(), dtype=w.dtype)
    ((a * w * w).sum() / 2 + (c * w).sum()).backward()


def run(optimizer_cls, steps: int, dtype=None, **kwargs) -> np.ndarray:
    w = make_param(dtype)
    opt = optimizer_cls([w], **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        backward_objective(w)
        opt.step()
    return values(w)


# ----- oracles: the algorithms as written in the PyTorch documentation -----


def sgd_by_hand(steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    w, buf = W0.copy(), None
    for _ in range(steps):
        g = A * w + C
        g = -g if maximize else g
        g = g + weight_decay * w
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        w = w - lr * g
    return w


def adam_by_hand(
    steps,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    maximize=False,
    decoupled=False,
):
    w = W0.copy()
    m, v, v_max = np.zeros(3), np.zeros(3), np.zeros(3)
    for t in range(1, steps + 1):
        g = A * w + C
        g = -g if maximize else g
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat = m / (1 - betas[0] ** t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - betas[1] ** t)
        else:
            v_hat = v / (1 - betas[1] ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


# ----- SGD -----


def test_sgd_momentum_three_steps_by_hand():
    # f(w) = w**2, w0 = 1, lr 0.1, momentum 0.9:
    # g=2, b=2, w=0.8; g=1.6, b=0.9*2+1.6=3.4, w=0.46; g=0.92, b=0.9*3.4+0.92=3.98, w=0.062
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    expected = [0.8, 0.46, 0.062]
    for want in expected:
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
        assert math.isclose(w.item(), want, rel_tol=1e-12)
    assert math.isclose(opt.state[w]["momentum_buffer"].item(), 3.98, rel_tol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.1},
        {"lr": 0.05, "momentum": 0.9},
        {"lr": 0.05, "momentum": 0.8, "dampening": 0.3},
        {"lr": 0.05, "momentum": 0.9, "nesterov": True},
        {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.1},
        {"lr": 0.01, "momentum": 0.9, "maximize": True},
    ],
)
def test_sgd_matches_hand_computation(kwargs):
    np.testing.assert_allclose(run(optim.SGD, 5, **kwargs), sgd_by_hand(5, **kwargs), rtol=1e-12, atol=1e-14)


# ----- Adam / AdamW -----


def test_adam_first_step_moves_each_weight_by_lr_against_its_gradient_sign():
    # After one step m_hat = g and v_hat = g**2, so the update is lr * g / (|g| + eps).
    w = run(optim.Adam, 1, lr=0.1)
    g = A * W0 + C
    np.testing.assert_allclose(w, W0 - 0.1 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(np.abs(w - W0), 0.1, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"lr": 0.05, "betas": (0.8, 0.99)},
        {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.05, "amsgrad": True},
        {"lr": 0.01, "maximize": True},
        {"lr": 0.1, "eps": 1e-3},
    ],
)
def test_adam_matches_hand_computation(kwargs):
    np.testing.assert_allclose(
        run(optim.Adam, 6, **kwargs), adam_by_hand(6, **kwargs), rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize("kwargs", [{}, {"lr": 0.05, "weight_decay": 0.5}, {"lr": 0.05, "amsgrad": True}])
def test_adamw_matches_hand_computation_with_decoupled_decay(kwargs):
    expected = adam_by_hand(6, decoupled=True, **{"weight_decay": 1e-2, **kwargs})
    np.testing.assert_allclose(run(optim.AdamW, 6, **kwargs), expected, rtol=1e-12, atol=1e-14)


def test_adam_float32_agrees_with_float64_reference_to_rounding():
    np.testing.assert_allclose(
        run(optim.Adam, 10, dtype=torch.float32, lr=0.05), adam_by_hand(10, lr=0.05), rtol=2e-6
    )


def test_amsgrad_keeps_the_running_maximum():
    w = make_param()
    opt = optim.Adam([w], lr=0.1, amsgrad=True)
    for _ in range(4):
        opt.zero_grad()
        backward_objective(w)
        opt.step()
    state = opt.state[w]
    assert np.all(values(state["max_exp_avg_sq"]) >= values(state["exp_avg_sq"]))
    assert sorted(state.keys()) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]


# ----- Optimizer mechanics -----


def test_state_dict_format():
    weight = torch.zeros(1, 2, requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    extra = torch.zeros(2, requires_grad=True)
    opt = optim.Adam([{"params": iter([weight, bias])}, {"params": [extra], "lr": 0.5}], lr=0.01)
    (weight.sum() + bias.sum()).backward()
    opt.step()
    sd = opt.state_dict()
    assert sorted(sd.keys()) == ["param_groups", "state"]
    assert list(sd["state"].keys()) == [0, 1]  # `extra` has no gradient, hence no state
    assert sorted(sd["state"][0].keys()) == ["exp_avg", "exp_avg_sq", "step"]
    step = sd["state"][0]["step"]
    assert isinstance(step, torch.Tensor) and step.dim() == 0 and step.item() == 1.0
    assert step.dtype == torch.float32
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert [g["lr"] for g in sd["param_groups"]] == [0.01, 0.5]
    assert list(sd["param_groups"][0].keys()) == [
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "amsgrad",
        "maximize",
        "foreach",
        "capturable",
        "differentiable",
        "fused",
        "decoupled_weight_decay",
        "params",
    ]
    sgd = optim.SGD([weight, bias], lr=0.1, momentum=0.9)
    sgd.step()
    assert list(sgd.state_dict()["state"][0].keys()) == ["momentum_buffer"]


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True),
        lambda ps: optim.AdamW(ps, lr=0.05),
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    ],
)
def test_load_state_dict_resumes_training_exactly(make):
    w = make_param()
    opt = make([w])
    for _ in range(3):
        opt.zero_grad()
        backward_objective(w)
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    w2 = torch.tensor(w.tolist(), dtype=torch.float64, requires_grad=True)
    opt2 = make([w2])
    opt2.load_state_dict(saved)
    for _ in range(3):
        for param, o in ((w, opt), (w2, opt2)):
            o.zero_grad()
            backward_objective(param)
            o.step()
    assert values(w).tolist() == values(w2).tolist()
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


def test_load_state_dict_rejects_other_layouts():
    a, b = make_param(), make_param()
    opt = optim.SGD([a, b], lr=0.1)
    with pytest.raises(ValueError, match="loaded state dict has a different number of parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(
        ValueError, match="loaded state dict contains a parameter group that doesn't match the size"
    ):
        opt.load_state_dict(optim.SGD([a], lr=0.1).state_dict())


def test_repr():
    opt = optim.SGD([make_param()], lr=0.1, momentum=0.9)
    assert repr(opt) == (
        "SGD (\n"
        "Parameter Group 0\n"
        "    dampening: 0\n"
        "    differentiable: False\n"
        "    foreach: None\n"
        "    fused: None\n"
        "    lr: 0.1\n"
        "    maximize: False\n"
        "    momentum: 0.9\n"
        "    nesterov: False\n"
        "    weight_decay: 0\n"
        ")"
    )
    adam = optim.Adam([{"params": [make_param()]}, {"params": [make_param()], "lr": 1.0}])
    text = repr(adam)
    assert text.startswith("Adam (\nParameter Group 0\n    amsgrad: False\n    betas: (0.9, 0.999)\n")
    assert "Parameter Group 1\n" in text and "    lr: 1.0\n" in text and text.endswith("weight_decay: 0\n)")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda ps: optim.SGD(ps, lr=-1), "Invalid learning rate: -1"),
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
        (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1e-3), "Invalid weight_decay value: -0.001"),
        (
            lambda ps: optim.SGD(ps, lr=0.1, nesterov=True),
            "Nesterov momentum requires a momentum and zero dampening",
        ),
        (lambda ps: optim.Adam(ps, lr=-0.5), "Invalid learning rate: -0.5"),
        (lambda ps: optim.Adam(ps, eps=-1.0), "Invalid epsilon value: -1.0"),
        (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
        (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
        (lambda ps: optim.AdamW(ps, weight_decay=-1), "Invalid weight_decay value: -1"),
        (lambda ps: optim.Adam([]), "optimizer got an empty parameter list"),
    ],
)
def test_hyperparameter_validation_messages(make, message):
    with pytest.raises(ValueError) as info:
        make([make_param()])
    assert str(info.value) == message


def test_parameter_validation_messages():
    with pytest.raises(TypeError) as info:
        optim.SGD(torch.zeros(2, requires_grad=True), lr=0.1)
    assert str(info.value) == (
        "params argument given to the optimizer should be an iterable of Tensors or dicts, "
        "but got torch.FloatTensor"
    )
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([make_param() * 2], lr=0.1)
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors, but one of the params is int"):
        optim.SGD([1], lr=0.1)
    w = make_param()
    opt = optim.SGD([w], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [w]})


def test_param_groups_use_their_own_hyperparameters():
    a, b = make_param(), make_param()
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.0)
    assert opt.param_groups[1]["momentum"] == 0.0 and opt.param_groups[1]["params"] == [b]
    for p in (a, b):
        backward_objective(p)
    opt.step()
    g = A * W0 + C
    np.testing.assert_allclose(values(a), W0 - 0.1 * g, rtol=1e-12)
    np.testing.assert_allclose(values(b), W0 - 0.5 * g, rtol=1e-12)
    c = make_param()
    opt.add_param_group({"params": [c], "lr": 0.25})
    assert len(opt.param_groups) == 3 and opt.param_groups[2]["dampening"] == 0


def test_zero_grad_and_params_without_grad():
    a, b = make_param(), make_param()
    opt = optim.Adam([a, b], lr=0.1)
    backward_objective(a)
    opt.step()
    assert values(b).tolist() == W0.tolist() and len(opt.state[b]) == 0
    opt.zero_grad(set_to_none=False)
    assert values(a.grad).tolist() == [0.0, 0.0, 0.0]
    opt.zero_grad()
    assert a.grad is None


def test_step_closure_runs_with_grad_and_returns_its_loss():
    w = make_param()
    opt = optim.SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with torch.no_grad():
        loss = opt.step(closure)
    assert math.isclose(loss.item(), float((W0**2).sum()), rel_tol=1e-12)
    np.testing.assert_allclose(values(w), W0 * 0.8, rtol=1e-12)


def test_step_hooks():
    w = make_param()
    opt = optim.SGD([w], lr=0.1)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))
    opt.step()
    pre.remove()
    opt.step()
    assert calls == ["pre", "post", "post"]


def test_step_updates_in_place_and_keeps_parameters_leaves():
    weight = torch.ones(2, 2, requires_grad=True)
    opt = optim.SGD([weight], lr=1.0)
    (weight * 3).sum().backward()
    storage = weight.data_ptr()
    opt.step()
    assert weight.data_ptr() == storage and weight.is_leaf and weight.grad_fn is None
    assert values(weight).tolist() == [[-2.0, -2.0], [-2.0, -2.0]]


# ----- lr schedulers -----


def schedule(scheduler_cls, epochs, lr=1.0, **kwargs):
    opt = optim.SGD([make_param()], lr=lr)
    sched = scheduler_cls(opt, **kwargs)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs, sched, opt


def test_step_lr():
    lrs, sched, opt = schedule(optim.lr_scheduler.StepLR, 7, step_size=2, gamma=0.5)
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    assert sched.get_last_lr() == [0.125] and sched.last_epoch == 7  # epoch 7 is odd: no decay
    assert opt.param_groups[0]["initial_lr"] == 1.0
    sd = sched.state_dict()
    assert "optimizer" not in sd
    assert sd["step_size"] == 2 and sd["gamma"] == 0.5 and sd["base_lrs"] == [1.0] and sd["last_epoch"] == 7
    assert sd["_step_count"] == 8 and sd["_last_lr"] == [0.125]


def test_scheduler_state_dict_round_trip():
    _, sched, _ = schedule(optim.lr_scheduler.StepLR, 3, step_size=2, gamma=0.5)
    opt = optim.SGD([make_param()], lr=1.0)
    resumed = optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.9)
    resumed.load_state_dict(sched.state_dict())
    assert resumed.step_size == 2 and resumed.gamma == 0.5 and resumed.last_epoch == 3
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    resumed.step()
    assert resumed.get_last_lr() == [0.25]


def test_multistep_exponential_and_lambda_lr():
    lrs, _, _ = schedule(optim.lr_scheduler.MultiStepLR, 6, milestones=[2, 4], gamma=0.1)
    np.testing.assert_allclose(lrs, [1.0, 1.0, 0.1, 0.1, 0.01, 0.01], rtol=1e-12)
    lrs, _, _ = schedule(optim.lr_scheduler.ExponentialLR, 4, lr=2.0, gamma=0.5)
    assert lrs == [2.0, 1.0, 0.5, 0.25]
    lrs, _, _ = schedule(optim.lr_scheduler.LambdaLR, 4, lr=0.1, lr_lambda=lambda epoch: 1.0 / (epoch + 1))
    np.testing.assert_allclose(lrs, [0.1, 0.05, 0.1 / 3, 0.025], rtol=1e-12)


def test_scheduler_warns_when_stepped_before_the_optimizer():
    opt = optim.SGD([make_param()], lr=1.0)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1)
    with pytest.warns(
        UserWarning, match="Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`"
    ):
        sched.step()
    opt2 = optim.SGD([make_param()], lr=1.0)
    sched2 = optim.lr_scheduler.StepLR(opt2, step_size=1)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


def test_scheduler_requires_an_optimizer_and_initial_lr_when_resuming():
    with pytest.raises(TypeError, match="int is not an Optimizer"):
        optim.lr_scheduler.StepLR(3, step_size=1)
    opt = optim.SGD([make_param()], lr=1.0)
    with pytest.raises(KeyError, match="param 'initial_lr' is not specified in param_groups\\[0\\]"):
        optim.lr_scheduler.StepLR(opt, step_size=1, last_epoch=3)


# ----- against PyTorch itself, where it is installed -----


def test_same_trajectories_as_pytorch():
    real_torch = pytest.importorskip("torch")
    if real_torch is torch:
        pytest.skip("running with rustgrad replaced by torch")
    for ours_cls, theirs_cls, kwargs in [
        (
            optim.SGD,
            real_torch.optim.SGD,
            {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        ),
        (optim.Adam, real_torch.optim.Adam, {"lr": 0.05, "amsgrad": True}),
        (optim.AdamW, real_torch.optim.AdamW, {"lr": 0.05, "weight_decay": 0.1}),
    ]:
        ours = run(ours_cls, 8, dtype=torch.float32, **kwargs)
        w = real_torch.tensor(W0.tolist(), requires_grad=True)
        opt = theirs_cls([w], foreach=False, **kwargs)
        a, c = real_torch.tensor(A.tolist()), real_torch.tensor(C.tolist())
        for _ in range(8):
            opt.zero_grad()
            ((a * w * w).sum() / 2 + (c * w).sum()).backward()
            opt.step()
        np.testing.assert_allclose(ours, w.detach().numpy(), rtol=1e-6, atol=1e-7, err_msg=ours_cls.__name__)


def test_sgd_with_nesterov_and_weight_decay_matches_pytorch_bit_for_bit():
    # PyTorch 2.15's numbers: its add(alpha=) rounds once (a fused multiply-add).
    torch.manual_seed(0)
    w = torch.randn(5, 3, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    for _ in range(20):
        w.grad = torch.randn(5, 3)
        opt.step()
    assert [f"{v:.9g}" for v in w.flatten().tolist()[:4]] == [
        "1.81078315",
        "-2.52644372",
        "-5.2343049",
        "-3.49885416",
    ]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 1e-3},
        {"lr": 0.05, "betas": (0.3, 0.8), "weight_decay": 0.01},
        {"lr": 0.01, "maximize": True},
        {"lr": 0.01, "betas": (0.2, 0.3), "eps": 1e-6},
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
    ],
)
def test_adam_fused_update_is_bit_identical_to_the_op_by_op_update(dtype, kwargs, monkeypatch):
    import rustgrad.optim.adam as adam_module

    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(70000).astype(dtype)  # large enough to split across threads
    grads = [rng.standard_normal(70000).astype(dtype) * 10 ** rng.uniform(-6, 2) for _ in range(12)]

    def train():
        w = torch.tensor(w0.copy(), requires_grad=True)
        opt = optim.Adam([w], **kwargs)
        for g in grads:
            w.grad = torch.tensor(g.copy())
            opt.step()
        state = opt.state[w]
        return [t.detach().numpy().copy() for t in (w, state["exp_avg"], state["exp_avg_sq"])], [
            t._version for t in (w, state["exp_avg"], state["exp_avg_sq"])
        ]

    fused_values, fused_versions = train()
    calls = []
    real = adam_module._rustgrad._adam_step

    def refuse(*args):
        calls.append(real)
        return False  # the op-by-op path

    monkeypatch.setattr(adam_module._rustgrad, "_adam_step", refuse)
    plain_values, plain_versions = train()
    assert len(calls) == len(grads)
    for fused, plain in zip(fused_values, plain_values):
        np.testing.assert_array_equal(fused.view(f"u{fused.itemsize}"), plain.view(f"u{plain.itemsize}"))
    assert fused_versions == plain_versions
