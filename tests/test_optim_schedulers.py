"""LR schedulers against PyTorch 2.15 step by step: recorded learning rates (and cycled momenta) checked
without PyTorch, the same runs and state dicts compared live where PyTorch is installed. Schedulers
compute in Python floats, so every case must match bit for bit."""

import copy
import warnings

import pytest
import rustgrad as torch
from optim_cases import (
    RESUME_CASES,
    RESUME_EPOCHS,
    SCHEDULER_CASES,
    make_scheduler,
    run_nested_sequential,
    run_resumed,
    run_scheduler,
    step_scheduler,
)
from optim_expected_schedules import NESTED, RESUMED, SCHEDULES
from rustgrad import optim

L = optim.lr_scheduler
CASES = sorted(SCHEDULER_CASES)


def real_torch_or_skip():
    real = pytest.importorskip("torch")
    if real is torch:
        pytest.skip("rustgrad is installed as torch")
    return real


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("name", CASES)
def test_recorded_schedule(name):
    trajectory, _, _ = run_scheduler(torch, name)
    assert trajectory == SCHEDULES[name]


def _resume(lib, name, saved_opt, saved_sched, start):
    """A fresh optimizer and scheduler loading the saved states, then the remaining steps."""
    opt, sched = make_scheduler(lib, name)
    opt.load_state_dict(saved_opt)
    sched.load_state_dict(saved_sched)
    rows = []
    for i in range(start, SCHEDULER_CASES[name][2]):
        opt.step()
        step_scheduler(sched, name, i)
        rows.append(sched.get_last_lr())
    return rows


@pytest.mark.parametrize("name", CASES)
def test_state_dict_resumes_the_schedule(name):
    _, opt, sched = run_scheduler(torch, name, steps=7)
    saved_opt, saved_sched = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
    assert "optimizer" not in saved_sched
    rows = _resume(torch, name, saved_opt, saved_sched, 7)
    expected = [row[: len(rows[0])] for row in SCHEDULES[name][7:]]
    assert [[float(v).hex() for v in row] for row in rows] == expected


@pytest.mark.parametrize("name", CASES)
def test_live_against_pytorch(name):
    real = real_torch_or_skip()
    theirs, _, real_sched = run_scheduler(real, name)
    assert theirs == SCHEDULES[name]
    ours, _, sched = run_scheduler(torch, name)
    assert ours == theirs
    assert repr(sched.state_dict()) == repr(real_sched.state_dict())
    assert type(sched).__mro__[1].__name__ == type(real_sched).__mro__[1].__name__


@pytest.mark.parametrize("name", CASES)
def test_pytorch_state_dict_resumes_here(name):
    real = real_torch_or_skip()
    _, real_opt, real_sched = run_scheduler(real, name, steps=7)
    saved_opt = copy.deepcopy(real_opt.state_dict())  # no tensors: all scheduler-driven values are floats
    for group in saved_opt["param_groups"]:
        group["foreach"] = None
    rows = _resume(torch, name, saved_opt, copy.deepcopy(real_sched.state_dict()), 7)
    expected = [row[: len(rows[0])] for row in SCHEDULES[name][7:]]
    assert [[float(v).hex() for v in row] for row in rows] == expected


@pytest.mark.parametrize("name", sorted(RESUME_CASES))
def test_resumed_with_last_epoch(name):
    # ConstantLR/LinearLR apply their factor only at epoch 0; LinearLR keeps the rate on a resumed first
    # step; CosineAnnealingWarmRestarts wraps T_cur modulo T_i.
    for epoch in RESUME_EPOCHS:
        assert run_resumed(torch, name, epoch) == RESUMED[name][epoch], epoch


def test_nested_sequential():
    lrs, outer = run_nested_sequential(torch)
    assert lrs == NESTED
    inner = outer._schedulers[0]
    assert (inner.last_epoch, inner._schedulers[0].last_epoch, inner._schedulers[1].last_epoch) == (5, 1, 2)


@pytest.mark.parametrize("name", sorted(RESUME_CASES))
def test_resumed_live_against_pytorch(name):
    real = real_torch_or_skip()
    for epoch in RESUME_EPOCHS:
        assert run_resumed(real, name, epoch) == RESUMED[name][epoch] == run_resumed(torch, name, epoch)
    if name == "constant":
        theirs, real_outer = run_nested_sequential(real)
        ours, outer = run_nested_sequential(torch)
        assert ours == theirs == NESTED
        assert repr(outer.state_dict()) == repr(real_outer.state_dict())


# ----- behaviour checked without PyTorch -----


def make_opt(lr=0.1, **kwargs):
    return optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr, momentum=0.9, **kwargs)


def test_cosine_annealing_closed_form_values():
    opt = make_opt()
    sched = L.CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(8):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    expected = [0.1, 0.085355339, 0.05, 0.014644661, 0.0, 0.014644661, 0.05, 0.085355339, 0.1]
    assert lrs == pytest.approx(expected, abs=1e-9)


def test_warm_restarts_with_fractional_epochs():
    opt = make_opt()
    sched = L.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2)
    for epoch, t_cur, t_i in [(0.5, 0.5, 2), (2.0, 0.0, 4), (5.0, 3.0, 4), (6.5, 0.5, 8)]:
        sched.step(epoch)
        assert (sched.T_cur, sched.T_i, sched.last_epoch) == (t_cur, t_i, int(epoch))
    with pytest.raises(ValueError, match="^Expected non-negative epoch, but got -1$"):
        sched.step(-1)


def test_one_cycle_sets_group_keys_and_stops_after_total_steps():
    opt = make_opt()
    sched = L.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    group = opt.param_groups[0]
    assert (group["initial_lr"], group["max_lr"], group["min_lr"]) == (0.04, 1.0, 0.04 / 1e4)
    assert (group["max_momentum"], group["base_momentum"]) == (0.95, 0.85)
    assert group["momentum"] != 0.9  # cycled from the first step on
    for _ in range(3):
        opt.step()
        sched.step()
    with pytest.raises(ValueError, match="^Tried to step 4 times. The specified number of total steps is 3$"):
        sched.step()


def test_cyclic_and_one_cycle_require_momentum():
    w = torch.zeros(1, requires_grad=True)
    message = "^optimizer must support momentum or beta1 with `cycle_momentum` option enabled$"
    with pytest.raises(ValueError, match=message):
        L.CyclicLR(optim.Adagrad([w]), 0.1, 1.0)
    with pytest.raises(ValueError, match=message):
        L.OneCycleLR(optim.Adagrad([w]), 1.0, total_steps=10)
    L.CyclicLR(optim.Adagrad([w]), 0.1, 1.0, cycle_momentum=False)


@pytest.mark.parametrize(
    "make, exc, message",
    [
        (
            lambda o: L.ConstantLR(o, factor=2),
            ValueError,
            "Constant multiplicative factor expected to be between 0 and 1.",
        ),
        (
            lambda o: L.LinearLR(o, start_factor=0),
            ValueError,
            "Starting multiplicative factor expected to be greater than 0 and less or equal to 1.",
        ),
        (
            lambda o: L.LinearLR(o, end_factor=2),
            ValueError,
            "Ending multiplicative factor expected to be between 0 and 1.",
        ),
        (
            lambda o: L.CosineAnnealingWarmRestarts(o, T_0=0),
            ValueError,
            "Expected positive integer T_0, but got 0",
        ),
        (
            lambda o: L.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0),
            ValueError,
            "Expected integer T_mult >= 1, but got 0",
        ),
        (
            lambda o: L.OneCycleLR(o, 1.0),
            ValueError,
            "You must define either total_steps OR (epochs AND steps_per_epoch)",
        ),
        (
            lambda o: L.OneCycleLR(o, 1.0, total_steps=0),
            ValueError,
            "Expected positive integer total_steps, but got 0",
        ),
        (
            lambda o: L.OneCycleLR(o, 1.0, total_steps=5, pct_start=1),
            ValueError,
            "Expected float between 0 and 1 pct_start, but got 1",
        ),
        (
            lambda o: L.OneCycleLR(o, 1.0, total_steps=5, anneal_strategy="x"),
            ValueError,
            "anneal_strategy must be one of 'cos' or 'linear', instead got x",
        ),
        (
            lambda o: L.OneCycleLR(o, [1.0, 2.0], total_steps=5),
            ValueError,
            "max_lr must have the same length as optimizer.param_groups. max_lr has 2 values, param_groups has 1.",
        ),
        (lambda o: L.CyclicLR(o, 0.1, 1.0, mode="x"), ValueError, "mode is invalid and scale_fn is None"),
        (lambda o: L.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor should be < 1.0."),
        (lambda o: L.ReduceLROnPlateau(o, mode="x"), ValueError, "mode x is unknown!"),
        (lambda o: L.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, "threshold mode x is unknown!"),
        (lambda o: L.ReduceLROnPlateau(o, min_lr=[0, 0]), ValueError, "expected 1 min_lrs, got 2"),
        (lambda o: L.ReduceLROnPlateau(3), TypeError, "int is not an Optimizer"),
        (
            lambda o: L.SequentialLR(o, [], milestones=[]),
            ValueError,
            "SequentialLR expects at least one scheduler, but got no scheduler.",
        ),
        (
            lambda o: L.SequentialLR(o, [L.ConstantLR(o)], milestones=[3]),
            ValueError,
            (
                "Sequential Schedulers expects number of schedulers provided to be one more than the number of "
                "milestone points, but got number of schedulers 1 and the number of milestones to be equal to 1"
            ),
        ),
        (
            lambda o: L.ChainedScheduler([]),
            ValueError,
            "ChainedScheduler expects at least one scheduler to be chained, but got no scheduler.",
        ),
        (
            lambda o: L.ChainedScheduler([L.ReduceLROnPlateau(o)]),
            ValueError,
            (
                "ChainedScheduler does not support `ReduceLROnPlateau` scheduler as it requires additional kwargs "
                "to be specified when calling `step`, but got one at index 0 in the given schedulers sequence."
            ),
        ),
    ],
)
def test_argument_checks(make, exc, message):
    with pytest.raises(exc) as info:
        make(make_opt())
    assert str(info.value) == message


def test_reduce_on_plateau_counts_bad_epochs_and_cooldown():
    opt = make_opt(lr=1.0)
    sched = L.ReduceLROnPlateau(opt, patience=1, cooldown=1, factor=0.5, min_lr=0.3)
    lrs = []
    for metric in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]:
        sched.step(metric)
        lrs.append(sched.get_last_lr()[0])
    # best=1.0 after step 1; bad epochs 2 and 3 -> halve; cooldown 1 epoch; two bad -> 0.3 (min_lr).
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3]
    assert isinstance(sched, L.LRScheduler)
    assert list(sched.state_dict()) == [
        "factor",
        "default_min_lr",
        "min_lrs",
        "patience",
        "cooldown",
        "eps",
        "last_epoch",
        "_last_lr",
        "mode_worse",
        "mode",
        "threshold",
        "threshold_mode",
        "best",
        "cooldown_counter",
        "num_bad_epochs",
    ]


def test_sequential_restarts_the_next_scheduler_without_warning():
    opt = make_opt()
    first, second = L.ConstantLR(opt, factor=0.5, total_iters=10), L.ExponentialLR(opt, gamma=0.5)
    sched = L.SequentialLR(opt, [first, second], milestones=[2])
    assert sched.get_last_lr() == [0.05]
    opt.step()
    sched.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()  # the milestone: ExponentialLR restarts at epoch 0 (its closed form: base lr)
    assert sched.get_last_lr() == [0.1]
    assert (second.last_epoch, second._step_count) == (0, 1)
    sched.step()
    assert sched.get_last_lr() == [0.05]
    assert list(sched.state_dict()) == ["_milestones", "last_epoch", "_last_lr", "_schedulers"]


def test_cyclic_custom_scale_fn_state_dict():
    class Halving:
        def __init__(self):
            self.base = 0.5

        def __call__(self, x):
            return self.base**x

    opt = make_opt()
    sched = L.CyclicLR(opt, 0.01, 0.1, step_size_up=2, scale_fn=Halving())
    state = sched.state_dict()
    assert state["_scale_fn_custom"] == {"base": 0.5} and "_scale_fn_ref" not in state
    assert list(state)[-1] == "_scale_fn_custom"
    sched2 = L.CyclicLR(make_opt(), 0.01, 0.1, step_size_up=2, scale_fn=Halving())
    state["_scale_fn_custom"] = {"base": 0.25}
    sched2.load_state_dict(state)
    assert sched2.scale_fn(2) == 0.0625
