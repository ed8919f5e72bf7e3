"""The optimizers added after the first set: ``ASGD`` and ``Rprop`` (also in optim_cases, bit for bit),
``Adafactor``, ``Muon`` and ``SparseAdam``, against PyTorch 2.15.

- ``Muon`` matches PyTorch bit for bit (its Newton-Schulz iterations run in bfloat16: products summed
  in float32 and rounded once, as PyTorch's CPU ``addmm``).
- ``Adafactor`` follows PyTorch's arithmetic step for step, but reads the RMS of the parameter and of
  the update through ``norm`` and divides by ``rsqrt``: PyTorch's float32 ``norm`` sums in a vectorized
  order rustgrad does not reproduce, and its ``rsqrt`` is not correctly rounded (rustgrad's is), so the
  results stay within a few float32 units in the last place (bounds below).
- ``SparseAdam``: rustgrad has no sparse tensors; it is built and checked as PyTorch's and refuses the
  dense gradients at ``step`` with PyTorch's error.
"""

import copy
import math

import numpy as np
import pytest
import rustgrad as torch
from optim_cases import run_optimizer, ulp_distance
from optim_expected_more import EXPECTED
from rustgrad import optim

ADAFACTOR_1D = {
    "adafactor": {"lr": 0.05},
    "adafactor_all": {"lr": 0.05, "beta2_decay": -0.5, "eps": (1e-4, 1e-2), "d": 1.5, "weight_decay": 0.1,
                      "maximize": True},
}
TWO_D = {
    "adafactor2d": ("Adafactor", {"lr": 0.05}),
    "adafactor2d_all": ("Adafactor", {"lr": 0.05, "weight_decay": 0.1, "d": 1.2, "eps": (1e-5, 1e-3)}),
    "muon": ("Muon", {}),
    "muon_all": ("Muon", {"lr": 0.02, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0,
                          "adjust_lr_fn": "match_rms_adamw", "ns_steps": 3, "eps": 1e-5}),
    "muon_original": ("Muon", {"lr": 0.01, "adjust_lr_fn": "original", "ns_coefficients": (2.0, -1.5, 0.5)}),
}
# Largest float32 ulp distance from PyTorch (its norm's summation order and its rsqrt), per case.
MAX_ULP = {"adafactor": 12, "adafactor_all": 10, "adafactor2d": 10, "adafactor2d_all": 5}


def two_d(lib, cls, kw, steps=10, dtype="float32"):
    """``steps`` steps on a 4x6 parameter (gradient ``a * w + c``) and a second one (2x3x5 for Adafactor,
    3x5 for Muon, gradient ``0.5 w + 0.1``); the final values (float.hex) and the optimizer."""
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((4, 6)).astype(dtype)
    a = (rng.random((4, 6)) + 0.5).astype(dtype)
    c = rng.standard_normal((4, 6)).astype(dtype)
    w3 = rng.standard_normal((2, 3, 5)).astype(dtype)
    dt = getattr(lib, dtype)
    w = lib.tensor(w0.tolist(), dtype=dt, requires_grad=True)
    other = w3 if cls != "Muon" else w3[0]
    w2 = lib.tensor(other.tolist(), dtype=dt, requires_grad=True)
    A, C = lib.tensor(a.tolist(), dtype=dt), lib.tensor(c.tolist(), dtype=dt)
    opt = getattr(lib.optim, cls)([w, w2], **kw)
    for _ in range(steps):
        with lib.no_grad():
            w.grad = A * w + C
            w2.grad = w2 * 0.5 + 0.1
        opt.step()
    return [float(v).hex() for v in w.detach().flatten().tolist() + w2.detach().flatten().tolist()], opt


def test_optim_lists_pytorchs_optimizers():
    names = {"ASGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "LBFGS", "Muon", "NAdam",
             "Optimizer", "RAdam", "RMSprop", "Rprop", "SGD", "SparseAdam", "lr_scheduler"}
    assert names <= set(dir(optim)) and names <= set(optim.__all__)


@pytest.mark.parametrize("name", sorted(TWO_D))
def test_two_d_runs_against_recorded_pytorch(name):
    cls, kw = TWO_D[name]
    ours, _ = two_d(torch, cls, kw)
    assert ulp_distance(ours, EXPECTED[name]) <= MAX_ULP.get(name, 0)
    if cls == "Muon":
        assert ours == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(ADAFACTOR_1D))
def test_adafactor_one_d_against_recorded_pytorch(name):
    ours, _ = run_optimizer(torch, "Adafactor", ADAFACTOR_1D[name])
    assert ulp_distance(ours, EXPECTED[name]) <= MAX_ULP[name]


def test_adafactor_first_step_closed_form():
    # Step 1: beta2_1 = 0, so v = g² and u = sign(g) (RMS 1, no clipping); the step is
    # alpha = max(eps2, RMS(p)) * min(lr, 1).
    w0 = np.array([0.5, -2.0, 1.5, 3.0])
    g = np.array([0.3, -0.1, 0.0, 2.0])
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = optim.Adafactor([w], lr=0.1)
    w.grad = torch.tensor(g, dtype=torch.float64)
    opt.step()
    rms_u = np.sqrt(np.mean(np.sign(g) ** 2))
    alpha = max(1e-3, np.sqrt(np.mean(w0**2))) * 0.1
    np.testing.assert_allclose(w.detach().numpy(), w0 - alpha * np.sign(g) / max(1.0, rms_u), rtol=1e-12)
    assert list(opt.state[w]) == ["step", "variance"]
    m = torch.zeros(2, 3, 4, requires_grad=True)
    opt = optim.Adafactor([m])
    m.grad = torch.ones(2, 3, 4)
    opt.step()
    assert {k: tuple(v.shape) for k, v in opt.state[m].items()} == {"step": (), "row_var": (2, 3, 1),
                                                                    "col_var": (2, 1, 4)}


def test_muon_update_is_orthogonalized():
    # Momentum off, no weight decay, lr 1: the update is the Newton-Schulz image of g, whose singular
    # values the quintic iteration pushes into roughly [0.7, 1.2].
    torch.manual_seed(0)
    w = torch.zeros(4, 6, requires_grad=True)
    g = torch.randn(4, 6)
    opt = optim.Muon([w], lr=1.0, momentum=0.0, nesterov=False, weight_decay=0.0)
    w.grad = g
    opt.step()
    update = -w.detach().numpy() / math.sqrt(max(1, 4 / 6))
    s = np.linalg.svd(update, compute_uv=False)
    assert s.min() > 0.6 and s.max() < 1.3
    assert list(opt.state[w]) == ["momentum_buffer"]


@pytest.mark.parametrize(
    "make, exc, message",
    [
        (lambda w: optim.ASGD([w], lambd=-1, alpha=-1), ValueError, "Invalid lambd value: -1"),
        (lambda w: optim.ASGD([w], weight_decay=-1, alpha=-1), ValueError, "Invalid alpha value: -1"),
        (lambda w: optim.Rprop([w], etas=(1.5, 1.2)), ValueError, "Invalid eta values: 1.5, 1.2"),
        (lambda w: optim.Adafactor([w], lr=-1), ValueError, "Learning rate should be >= 0 but is: -1"),
        (lambda w: optim.Adafactor([w], beta2_decay=0.5), ValueError, "beta2_decay should be <= 0 but is: 0.5"),
        (lambda w: optim.Adafactor([w], eps=(-1, -1)), ValueError, "epsilon1 should be >= 0 but is: -1"),
        (lambda w: optim.Adafactor([w], eps=(None, -1), d=-1), ValueError, "epsilon2 should be >= 0 but is: -1"),
        (lambda w: optim.Adafactor([w], d=0.5), ValueError, "Clipping threshold d should be >= 1 but is: 0.5"),
        (lambda w: optim.Adafactor([w], weight_decay=-1), ValueError, "weight_decay should be >= 0 but is: -1"),
        (lambda w: optim.SparseAdam([w], eps=-1), ValueError, "Invalid epsilon value: -1"),
        (lambda w: optim.SparseAdam([w], betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
        (lambda w: optim.Muon([w]), ValueError,
         "Muon only supports 2D parameters whereas we found a parameter with size: torch.Size([3])"),
        (lambda w: optim.Muon([w], weight_decay=-1, momentum=-1), ValueError, "momentum should be >= 0 but is: -1"),
        (lambda w: optim.Muon([w], weight_decay=-1), ValueError, "weight decay should be >= 0 but is: -1"),
        (lambda w: optim.Muon([w], adjust_lr_fn="x"), ValueError, "Adjust learning rate function x is not supported"),
    ],
)
def test_argument_checks(make, exc, message):
    w = torch.zeros(3, requires_grad=True)
    with pytest.raises(exc) as info:
        make(w)
    assert str(info.value) == message


def test_muon_step_checks_and_sparse_adam_refuses_dense_gradients():
    w = torch.zeros(2, 2, requires_grad=True)
    w.grad = torch.ones(2, 2)
    with pytest.raises(ValueError, match="^Coefficients must be a tuple of exactly 3 values$"):
        optim.Muon([w], ns_coefficients=(1, 2)).step()
    with pytest.raises(ValueError, match="^Number of steps must be less than 100 for computational efficiency$"):
        optim.Muon([w], ns_steps=100).step()
    opt = optim.SparseAdam([w])
    assert opt.defaults == {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-08, "maximize": False}
    with pytest.raises(RuntimeError, match="^SparseAdam does not support dense gradients, please consider Adam instead$"):
        opt.step()


def test_defaults_and_repr():
    m = torch.zeros(2, 2, requires_grad=True)
    assert optim.Muon([m]).defaults == {
        "lr": 0.001, "weight_decay": 0.1, "momentum": 0.95, "nesterov": True,
        "ns_coefficients": (3.4445, -4.775, 2.0315), "eps": 1e-07, "ns_steps": 5, "adjust_lr_fn": None,
    }
    assert optim.Adafactor([m]).defaults == {
        "lr": 0.01, "beta2_decay": -0.8, "eps": (None, 0.001), "d": 1.0, "weight_decay": 0.0,
        "foreach": None, "maximize": False,
    }
    assert repr(optim.Adafactor([m])) == (
        "Adafactor (\nParameter Group 0\n    beta2_decay: -0.8\n    d: 1.0\n    eps: (None, 0.001)\n"
        "    foreach: None\n    lr: 0.01\n    maximize: False\n    weight_decay: 0.0\n)"
    )
    assert list(optim.ASGD([m]).defaults) == ["lr", "lambd", "alpha", "t0", "weight_decay", "foreach", "maximize",
                                              "differentiable", "capturable"]
    assert list(optim.Rprop([m]).defaults) == ["lr", "etas", "step_sizes", "foreach", "maximize", "differentiable",
                                               "capturable"]


@pytest.mark.parametrize("cls, kw", [("ASGD", {"t0": 2}), ("Rprop", {}), ("Adafactor", {}), ("Muon", {})])
def test_state_dict_round_trip_resumes_exactly(cls, kw):
    torch.manual_seed(3)
    w = torch.randn(4, 3, requires_grad=True)
    a = torch.rand(4, 3) + 0.5

    def steps(opt, w, n):
        for _ in range(n):
            with torch.no_grad():
                w.grad = a * w + 0.1
            opt.step()

    opt = getattr(optim, cls)([w], lr=0.05, **kw)
    steps(opt, w, 4)
    v = w.detach().clone().requires_grad_(True)
    opt2 = getattr(optim, cls)([v], lr=0.05, **kw)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    steps(opt, w, 3)
    steps(opt2, v, 3)
    assert v.tolist() == w.tolist()


def test_live_against_pytorch():
    real = pytest.importorskip("torch")
    if real is torch:
        pytest.skip("rustgrad is installed as torch")
    for name, (cls, kw) in TWO_D.items():
        theirs, real_opt = two_d(real, cls, kw)
        assert theirs == EXPECTED[name], name
        _, opt = two_d(torch, cls, kw)
        assert repr(opt) == repr(real_opt), name
        ours_state, theirs_state = opt.state_dict()["state"], real_opt.state_dict()["state"]
        for i in theirs_state:
            assert list(ours_state[i]) == list(theirs_state[i]), name
            for key, value in theirs_state[i].items():
                assert repr(ours_state[i][key].dtype) == repr(value.dtype), (name, key)
                assert tuple(ours_state[i][key].shape) == tuple(value.shape), (name, key)
    for name, kw in ADAFACTOR_1D.items():
        assert run_optimizer(real, "Adafactor", kw, is_torch=True)[0] == EXPECTED[name], name
