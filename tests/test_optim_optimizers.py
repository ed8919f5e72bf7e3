"""Optimizers against PyTorch 2.15, step by step: recorded numbers checked without PyTorch, and the same
runs compared live with PyTorch where it is installed.

Bit-exactness: rustgrad reproduces PyTorch's single-tensor arithmetic (fused multiply-adds in ``lerp``,
``addcmul`` and ``add(alpha=)``, scalars rounded to float32, the same operation order). The one known
difference is PyTorch's CPU ``sqrt`` (Intel MKL vector math, not correctly rounded; rustgrad's is): with
PyTorch's ``sqrt`` replaced by a correctly rounded one, every case matches bit for bit (``EXACT``);
against PyTorch as is, the drift stays within the bounds below (``REAL``).
"""

import copy
import math

import numpy as np
import pytest
import rustgrad as torch
from optim_cases import (
    OPTIMIZER_CASES,
    USES_SQRT,
    correctly_rounded_sqrt,
    problem,
    run_optimizer,
    ulp_distance,
)
from optim_expected import EXACT, REAL
from rustgrad import optim

# Largest float32 ulp distance from PyTorch as is (MKL square root) after 20 steps, per case.
REAL_MAX_ULP = {
    "adam": 8,
    "adam_amsgrad_wd": 4,
    "adam_betas": 78,
    "adam_decoupled_max": 1,
    "adamw_amsgrad": 1,
    "rmsprop": 32,
    "rmsprop_centered_momentum_wd": 7,
    "adagrad": 5,
    "adagrad_all": 18,
    "adadelta": 128,
    "adadelta_all": 6,
    "nadam": 5,
    "nadam_wd": 27,
    "nadam_decoupled": 2,
    "radam_decoupled_max": 3,
    "adamw_tensor_lr": 1,
    "nadam_tensor_lr": 78,
    "adagrad_tensor_lr": 36,
}


def real_torch_or_skip():
    real = pytest.importorskip("torch")
    if real is torch:
        pytest.skip("rustgrad is installed as torch")
    return real


@pytest.mark.parametrize("name", sorted(OPTIMIZER_CASES))
def test_bit_exact_with_pytorch_arithmetic(name):
    cls_name, kwargs = OPTIMIZER_CASES[name]
    ours, _ = run_optimizer(torch, cls_name, kwargs)
    assert ours == EXACT[name]


@pytest.mark.parametrize("name", sorted(OPTIMIZER_CASES))
def test_close_to_pytorch_with_its_mkl_sqrt(name):
    cls_name, kwargs = OPTIMIZER_CASES[name]
    ours, _ = run_optimizer(torch, cls_name, kwargs)
    expected = REAL.get(name, EXACT[name])
    assert ulp_distance(ours, expected) <= REAL_MAX_ULP.get(name, 0)
    if cls_name not in USES_SQRT:
        assert ours == expected


@pytest.mark.parametrize("name", sorted(OPTIMIZER_CASES))
def test_live_against_pytorch(name):
    real = real_torch_or_skip()
    cls_name, kwargs = OPTIMIZER_CASES[name]
    ours, opt = run_optimizer(torch, cls_name, kwargs)
    theirs, real_opt = run_optimizer(real, cls_name, kwargs, is_torch=True)
    # PyTorch's vectorized sqrt rounds differently on different CPUs: REAL is one machine's.
    assert ulp_distance(theirs, EXACT[name]) <= REAL_MAX_ULP.get(name, 0)
    with correctly_rounded_sqrt(real):
        exact, _ = run_optimizer(real, cls_name, kwargs, is_torch=True)
    assert exact == EXACT[name]
    assert ours == exact
    assert repr(opt) == repr(real_opt).replace("foreach: False", "foreach: None")
    ours_sd, theirs_sd = opt.state_dict(), real_opt.state_dict()

    def plain(groups):  # tensors (a tensor lr) as numbers; foreach as we keep it
        return [
            {k: (v.item() if hasattr(v, "item") else v) for k, v in {**g, "foreach": None}.items()}
            for g in groups
        ]

    assert plain(ours_sd["param_groups"]) == plain(theirs_sd["param_groups"])
    assert ours_sd["state"].keys() == theirs_sd["state"].keys()
    for i, state in ours_sd["state"].items():
        assert list(state) == list(theirs_sd["state"][i])
        for key, value in state.items():
            other = theirs_sd["state"][i][key]
            assert value.dtype.__repr__() == repr(other.dtype) and value.shape == tuple(other.shape)
            if key == "step" or cls_name not in USES_SQRT:
                np.testing.assert_array_equal(value.numpy(), other.numpy())


def _to(lib, value):
    """A state dict's tensors moved between the libraries (through numpy), the rest kept."""
    if hasattr(value, "numpy") and hasattr(value, "dtype"):
        return lib.tensor(value.detach().numpy())
    if isinstance(value, dict):
        return {k: _to(lib, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to(lib, v) for v in value]
    return value


@pytest.mark.parametrize("cls_name", ["Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "Adam", "RMSprop"])
def test_pytorch_state_dict_loads_and_resumes_identically(cls_name):
    real = real_torch_or_skip()
    kwargs = {"lr": 0.05} if cls_name != "Adadelta" else {}
    with correctly_rounded_sqrt(real):
        _, real_opt = run_optimizer(real, cls_name, kwargs, steps=3, is_torch=True)
        saved = real_opt.state_dict()
        # Ours, from PyTorch's state dict and parameters, then three more steps on both sides.
        params = [p for g in real_opt.param_groups for p in g["params"]]
        w, w2, a, c = problem(torch)
        with torch.no_grad():
            w.copy_(torch.tensor(params[0].detach().numpy()))
            w2.copy_(torch.tensor(params[1].detach().numpy()))
        opt = getattr(optim, cls_name)([{"params": [w]}, {"params": [w2]}], **kwargs)
        loaded = _to(torch, saved)
        for g in loaded["param_groups"]:
            g["foreach"] = None
        opt.load_state_dict(loaded)
        ra, rc = real.tensor(a.numpy()), real.tensor(c.numpy())
        for _ in range(3):
            with torch.no_grad():
                w.grad = a * w + c
                w2.grad = w2 * 0.5
            opt.step()
            with real.no_grad():
                params[0].grad = ra * params[0] + rc
                params[1].grad = params[1] * 0.5
            real_opt.step()
    assert w.detach().tolist() == params[0].detach().tolist()
    assert w2.detach().tolist() == params[1].detach().tolist()
    # And PyTorch loads ours.
    real_opt.load_state_dict(_to(real, opt.state_dict()))


# ----- behaviour checked without PyTorch -----


def test_state_layout_matches_pytorch():
    expected = {
        "Adagrad": ["step", "sum"],
        "Adadelta": ["step", "square_avg", "acc_delta"],
        "Adamax": ["step", "exp_avg", "exp_inf"],
        "NAdam": ["step", "mu_product", "exp_avg", "exp_avg_sq"],
        "RAdam": ["step", "exp_avg", "exp_avg_sq"],
    }
    for cls_name, keys in expected.items():
        _, opt = run_optimizer(torch, cls_name, {}, steps=2)
        state = opt.state_dict()["state"]
        assert list(state) == [0, 1]
        assert list(state[0]) == keys, cls_name
        assert state[0]["step"].dtype == torch.float32 and state[0]["step"].item() == 2.0
    _, opt = run_optimizer(torch, "NAdam", {}, steps=1)
    # mu_product = mu_1 = 0.9 * (1 - 0.5 * 0.96 ** 0.004), kept in float32.
    assert opt.state_dict()["state"][0]["mu_product"].item() == float(
        np.float32(0.9 * (1 - 0.5 * 0.96**0.004))
    )


def test_param_groups_defaults_and_repr():
    w = torch.zeros(2, requires_grad=True)
    assert optim.NAdam([w]).param_groups[0] == {
        "params": [w],
        "lr": 0.002,
        "betas": (0.9, 0.999),
        "eps": 1e-08,
        "weight_decay": 0,
        "momentum_decay": 0.004,
        "decoupled_weight_decay": False,
        "maximize": False,
        "foreach": None,
        "capturable": False,
        "differentiable": False,
    }
    assert list(optim.Adagrad([w]).defaults) == [
        "lr",
        "lr_decay",
        "eps",
        "weight_decay",
        "initial_accumulator_value",
        "foreach",
        "maximize",
        "differentiable",
        "fused",
    ]
    assert repr(optim.Adamax([w], lr=0.1)) == (
        "Adamax (\nParameter Group 0\n    betas: (0.9, 0.999)\n    capturable: False\n"
        "    differentiable: False\n    eps: 1e-08\n    foreach: None\n    lr: 0.1\n    maximize: False\n"
        "    weight_decay: 0\n)"
    )


def test_adagrad_creates_its_state_at_construction():
    w = torch.ones(3, requires_grad=True)
    opt = optim.Adagrad([w], initial_accumulator_value=0.25)
    assert opt.state[w]["sum"].tolist() == [0.25] * 3
    assert opt.state[w]["step"].item() == 0.0


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda w: optim.Adagrad([w], lr_decay=-1), "Invalid lr_decay value: -1"),
        (
            lambda w: optim.Adagrad([w], initial_accumulator_value=-1),
            "Invalid initial_accumulator_value value: -1",
        ),
        (lambda w: optim.Adagrad([w], eps=-1), "Invalid epsilon value: -1"),
        (lambda w: optim.Adadelta([w], rho=1.5), "Invalid rho value: 1.5"),
        (lambda w: optim.Adadelta([w], lr=-1), "Invalid learning rate: -1"),
        (lambda w: optim.Adamax([w], betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
        (lambda w: optim.NAdam([w], momentum_decay=-1), "Invalid momentum_decay value: -1"),
        (lambda w: optim.RAdam([w], weight_decay=-1), "Invalid weight_decay value: -1"),
        (lambda w: optim.RAdam([w], betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    ],
)
def test_argument_checks(make, message):
    w = torch.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match="^" + message.replace("(", "\\(").replace(".", "\\.") + "$"):
        make(w)


@pytest.mark.parametrize("cls_name", ["Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"])
def test_add_param_group_zero_grad_and_params_without_grad(cls_name):
    w, w2, a, c = problem(torch)
    opt = getattr(optim, cls_name)([w], lr=0.1)
    opt.add_param_group({"params": [w2], "lr": 0.2})
    assert opt.param_groups[1]["lr"] == 0.2
    assert opt.param_groups[1].keys() == opt.param_groups[0].keys()
    before = w2.detach().clone()
    w.grad = a * w.detach() + c
    opt.step()
    assert w2.detach().tolist() == before.tolist()  # no grad: untouched
    assert list(opt.state_dict()["state"]) == [0]
    opt.zero_grad(set_to_none=False)
    assert w.grad.tolist() == [0.0] * 17
    opt.zero_grad()
    assert w.grad is None


@pytest.mark.parametrize("cls_name", ["Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"])
def test_state_dict_round_trip_resumes_exactly(cls_name):
    # 4 steps, then a fresh optimizer on copies of the parameters loads the state dict; 3 more steps on
    # both must agree bit for bit.
    w, w2, a, c = problem(torch)
    opt = getattr(optim, cls_name)([{"params": [w]}, {"params": [w2]}], lr=0.05)

    def steps(opt, w, w2, n):
        for _ in range(n):
            with torch.no_grad():
                w.grad = a * w + c
                w2.grad = w2 * 0.5
            opt.step()

    steps(opt, w, w2, 4)
    v, v2 = w.detach().clone().requires_grad_(True), w2.detach().clone().requires_grad_(True)
    opt2 = getattr(optim, cls_name)([{"params": [v]}, {"params": [v2]}], lr=0.05)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))  # as after a save and load
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    steps(opt, w, w2, 3)
    steps(opt2, v, v2, 3)
    assert v.tolist() == w.tolist() and v2.tolist() == w2.tolist()
    assert opt2.state[v]["step"].item() == 7.0


def test_maximize_is_minimizing_the_negated_gradient():
    for cls_name in ["Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"]:
        up, _ = run_optimizer(torch, cls_name, {"lr": 0.05, "maximize": True}, steps=3)
        w, w2, a, c = problem(torch)
        opt = getattr(optim, cls_name)([{"params": [w]}, {"params": [w2], "lr": 0.1}], lr=0.05)
        for _ in range(3):
            with torch.no_grad():
                w.grad = -(a * w + c)
                w2.grad = -(w2 * 0.5)
            opt.step()
        assert up == [float(v).hex() for v in w.detach().tolist() + w2.detach().tolist()], cls_name


def test_radam_uses_sgd_steps_until_the_variance_is_tractable():
    # rho_inf = 2 / (1 - 0.999) - 1 = 1999; rho_t > 5 first at step 6, so steps 1-5 are
    # p -= lr * m / (1 - beta1^t): with a constant gradient g, m / (1 - beta1^t) = g exactly-ish.
    w = torch.zeros(1, requires_grad=True)
    opt = optim.RAdam([w], lr=0.1)
    for _ in range(5):
        w.grad = torch.ones(1)
        opt.step()
    assert math.isclose(w.item(), -0.5, rel_tol=1e-6)


def test_unpickling_fills_in_options_older_pytorch_lacked():
    import rustgrad as rg

    p = [rg.ones(2, requires_grad=True)]
    for cls, decoupled in ((rg.optim.Adam, False), (rg.optim.AdamW, True), (rg.optim.NAdam, False)):
        opt = cls(p, lr=0.1)
        p[0].grad = rg.ones(2)
        opt.step()
        state = dict(opt.__dict__)
        for group in state["param_groups"]:
            group.pop("maximize")
            group.pop("decoupled_weight_decay")
        opt.state[p[0]]["step"] = 1.0  # an old checkpoint's plain number
        restored = cls.__new__(cls)
        restored.__setstate__(state)
        assert restored.param_groups[0]["maximize"] is False
        assert restored.param_groups[0]["decoupled_weight_decay"] is decoupled
        assert isinstance(restored.state[p[0]]["step"], rg.Tensor)
