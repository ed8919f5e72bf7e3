"""``optim.LBFGS`` against PyTorch 2.15: the same iterations (evaluation and iteration counts) and the
same values up to the summation order of ``sum``/``dot`` (the only operations whose rounding differs)."""

import copy
import math
import warnings

import numpy as np
import pytest
import rustgrad as torch
from optim_cases import lbfgs_problem, run_lbfgs
from rustgrad import optim

# PyTorch 2.15, float64, 3 steps of each setting: (loss returned by each step, func_evals, n_iter) and the
# first six elements of the parameter after the last step.
RECORDED = {
    "fixed_step": (
        {"lr": 0.5, "max_iter": 4},
        [("0x1.643918492312bp+5", 4, 4), ("0x1.5b7912b3e57c4p+1", 8, 8), ("-0x1.f7e5feaaef00cp+1", 12, 12)],
        [
            "-0x1.907d923e3bc96p-4",
            "-0x1.9a44071954033p-3",
            "0x1.31eeddaf5b7eap-2",
            "0x1.d7c199a0c5dbdp-4",
            "-0x1.a2e59770d2f0bp-2",
            "-0x1.de145d8a79d18p-2",
        ],
    ),
    "strong_wolfe": (
        {"lr": 1, "max_iter": 5, "line_search_fn": "strong_wolfe"},
        [
            ("0x1.643918492312bp+5", 6, 5),
            ("-0x1.ff90db91b410bp+1", 12, 10),
            ("-0x1.055ddfb193994p+2", 18, 15),
        ],
        [
            "-0x1.9dfbf07de7ee6p-4",
            "-0x1.9d0729eac33d0p-3",
            "0x1.30777558acf9dp-2",
            "0x1.ddd2c12307b22p-4",
            "-0x1.a2b3f20434ab5p-2",
            "-0x1.dcb1c70208133p-2",
        ],
    ),
    "short_history": (
        {"lr": 0.3, "max_iter": 6, "history_size": 2},
        [("0x1.643918492312bp+5", 6, 6), ("0x1.41a51e2bb4dd8p+1", 12, 12), ("-0x1.eb7468a085478p+1", 18, 18)],
        [
            "-0x1.8736d333a20ffp-4",
            "-0x1.9904fb9edcd8cp-3",
            "0x1.352718cf2c65ap-2",
            "0x1.d8bb558764f6ep-4",
            "-0x1.a40b4af65ce8ap-2",
            "-0x1.d800efdcf14a9p-2",
        ],
    ),
}
STATE_KEYS = ["H_diag", "al", "d", "func_evals", "n_iter", "old_dirs", "old_stps", "prev_flat_grad", "prev_loss",
              "ro", "t"]  # fmt: skip


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_pytorch_iterations(name):
    kwargs, steps, first_six = RECORDED[name]
    rows, opt = run_lbfgs(torch, "float64", **kwargs)
    for (loss, evals, iters, _), (want_loss, want_evals, want_iters) in zip(rows, steps):
        assert (evals, iters) == (want_evals, want_iters)
        assert math.isclose(loss, float.fromhex(want_loss), rel_tol=1e-13)
    np.testing.assert_allclose(rows[-1][3][:6], [float.fromhex(v) for v in first_six], rtol=1e-12)
    assert sorted(opt.state[opt.param_groups[0]["params"][0]]) == STATE_KEYS
    assert len(opt.state_dict()["state"]) == 1


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_finds_the_minimum_of_a_quadratic(line_search_fn):
    a = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    c = torch.tensor([1.0, -1.0, 2.0, 0.5], dtype=torch.float64)
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = optim.LBFGS(
        [w], lr=1 if line_search_fn else 0.5, max_iter=100, tolerance_change=0, line_search_fn=line_search_fn
    )

    def closure():
        opt.zero_grad()
        loss = (a * w * w).sum() / 2 + (c * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    np.testing.assert_allclose(w.detach().numpy(), -(c / a).numpy(), rtol=1e-7)


def test_maximize_and_one_group_only():
    w = torch.tensor([0.3], requires_grad=True)
    opt = optim.LBFGS([w], maximize=True, max_iter=5)

    def closure():
        opt.zero_grad()
        loss = -((w - 1) ** 2).sum()
        loss.backward()
        return loss

    first = opt.step(closure)
    assert math.isclose(first.item(), -0.49, rel_tol=1e-6)  # the closure's own (un-negated) loss
    assert math.isclose(w.item(), 1.0, rel_tol=1e-6)
    assert opt.state[w]["prev_loss"] > 0  # the loss is negated internally
    with pytest.raises(
        ValueError, match=r"^LBFGS doesn't support per-parameter options \(parameter groups\)$"
    ):
        optim.LBFGS([{"params": [w]}, {"params": [torch.zeros(1, requires_grad=True)]}])
    with torch.no_grad():
        w.fill_(0.3)
    with pytest.raises(RuntimeError, match="^only 'strong_wolfe' is supported$"):
        optim.LBFGS([w], line_search_fn="armijo").step(closure)
    with pytest.raises(TypeError):
        optim.LBFGS([w]).step(None)


def test_history_is_bounded_and_defaults():
    _, opt = run_lbfgs(torch, "float64", steps=2, lr=0.3, max_iter=6, history_size=2)
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert len(state["old_dirs"]) == len(state["old_stps"]) == len(state["ro"]) == 2
    assert len(state["al"]) == 2
    defaults = optim.LBFGS([torch.zeros(1, requires_grad=True)], max_iter=8).defaults
    assert defaults == {
        "lr": 1,
        "max_iter": 8,
        "max_eval": 10,
        "tolerance_grad": 1e-07,
        "tolerance_change": 1e-09,
        "history_size": 100,
        "line_search_fn": None,
        "maximize": False,
    }


def test_state_dict_round_trip_resumes():
    _, opt = run_lbfgs(torch, "float64", steps=1, lr=1, max_iter=4, line_search_fn="strong_wolfe")
    w = opt.param_groups[0]["params"][0]
    saved = copy.deepcopy(opt.state_dict())  # as after a save and load
    v, make_closure = lbfgs_problem(torch, "float64")
    with torch.no_grad():
        v.copy_(w)
    opt2 = optim.LBFGS([v], lr=1, max_iter=4, line_search_fn="strong_wolfe")
    opt2.load_state_dict(saved)
    opt2.step(make_closure(opt2))
    opt.step(make_closure_for(opt, w))
    assert v.tolist() == w.tolist()


def make_closure_for(opt, w):
    rng = np.random.default_rng(0)
    _, a, c = rng.standard_normal(17), rng.random(17) + 0.5, rng.standard_normal(17)
    a, c = torch.tensor(a.tolist(), dtype=torch.float64), torch.tensor(c.tolist(), dtype=torch.float64)

    def closure():
        opt.zero_grad()
        loss = (a * w * w).sum() + (c * w).sum() + (w**4).sum()
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_live_against_pytorch(name):
    real = pytest.importorskip("torch")
    if real is torch:
        pytest.skip("rustgrad is installed as torch")
    kwargs = RECORDED[name][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, _ = run_lbfgs(real, "float64", **kwargs)
        theirs32, _ = run_lbfgs(real, "float32", steps=1, **kwargs)
    ours, _ = run_lbfgs(torch, "float64", **kwargs)
    assert [row[1:3] for row in ours] == [row[1:3] for row in theirs]
    for mine, other in zip(ours, theirs):
        assert math.isclose(mine[0], other[0], rel_tol=1e-12)
        np.testing.assert_allclose(mine[3], other[3], rtol=1e-11)
    # float32: sums of 17 values round differently, so only the first call is compared.
    ours32, _ = run_lbfgs(torch, "float32", steps=1, **kwargs)
    assert ours32[0][1:3] == theirs32[0][1:3]
    np.testing.assert_allclose(ours32[0][3], theirs32[0][3], rtol=1e-5, atol=1e-6)
