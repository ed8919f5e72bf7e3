"""Shared cases of the optimizer tests (tests/test_optim_*.py): the same fixed problem run by rustgrad or
by PyTorch, so recorded PyTorch numbers can be checked without PyTorch and re-checked live with it.

Nothing here imports rustgrad or torch: the library is passed in.
"""

from contextlib import contextmanager

import numpy as np

STEPS = 20

# name -> (optimizer class name, keyword arguments)
OPTIMIZER_CASES = {
    "sgd_nesterov_wd": ("SGD", {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    "sgd_dampening_max": ("SGD", {"lr": 0.01, "momentum": 0.5, "dampening": 0.3, "maximize": True}),
    "adam": ("Adam", {"lr": 0.05}),
    "adam_amsgrad_wd": ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    "adam_betas": ("Adam", {"lr": 0.01, "betas": (0.6, 0.7)}),
    "adam_decoupled_max": (
        "Adam",
        {"lr": 0.02, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
    ),
    "adamw": ("AdamW", {"lr": 0.05, "weight_decay": 0.1}),
    "adamw_amsgrad": ("AdamW", {"lr": 0.05, "amsgrad": True}),
    "rmsprop": ("RMSprop", {"lr": 0.01}),
    "rmsprop_centered_momentum_wd": (
        "RMSprop",
        {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
    ),
    "adagrad": ("Adagrad", {"lr": 0.1}),
    "adagrad_all": (
        "Adagrad",
        {
            "lr": 0.1,
            "lr_decay": 0.01,
            "weight_decay": 0.1,
            "initial_accumulator_value": 0.5,
            "maximize": True,
        },
    ),
    "adadelta": ("Adadelta", {}),
    "adadelta_all": ("Adadelta", {"lr": 0.5, "rho": 0.8, "weight_decay": 0.1, "eps": 1e-4}),
    "adamax": ("Adamax", {"lr": 0.01}),
    "adamax_all": ("Adamax", {"lr": 0.01, "betas": (0.8, 0.9), "weight_decay": 0.1, "maximize": True}),
    "nadam": ("NAdam", {"lr": 0.01}),
    "nadam_wd": ("NAdam", {"lr": 0.01, "weight_decay": 0.1}),
    "nadam_decoupled": (
        "NAdam",
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "momentum_decay": 0.01},
    ),
    "radam": ("RAdam", {"lr": 0.01}),
    "radam_wd": ("RAdam", {"lr": 0.01, "weight_decay": 0.1, "betas": (0.9, 0.9)}),
    "radam_decoupled_max": (
        "RAdam",
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
    ),
    "asgd": ("ASGD", {"lr": 0.05}),
    "asgd_all": (
        "ASGD",
        {"lr": 0.05, "lambd": 0.01, "alpha": 0.5, "t0": 5, "weight_decay": 0.1, "maximize": True},
    ),
    "asgd_t0": ("ASGD", {"lr": 0.1, "t0": 0}),
    "rprop": ("Rprop", {"lr": 0.01}),
    "rprop_all": ("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2), "maximize": True}),
    # lr given as a 0-d tensor: PyTorch then does the scalar arithmetic on lr in float32.
    "asgd_tensor_lr": ("ASGD", {"lr": 0.05, "t0": 3, "tensor_lr": True}),
    "adamw_tensor_lr": ("AdamW", {"lr": 0.03, "weight_decay": 0.1, "tensor_lr": True}),
    "nadam_tensor_lr": (
        "NAdam",
        {"lr": 0.03, "weight_decay": 0.1, "decoupled_weight_decay": True, "tensor_lr": True},
    ),
    "adamax_tensor_lr": ("Adamax", {"lr": 0.03, "tensor_lr": True}),
    "adagrad_tensor_lr": ("Adagrad", {"lr": 0.03, "lr_decay": 0.1, "tensor_lr": True}),
    "radam_tensor_lr": (
        "RAdam",
        {"lr": 0.03, "weight_decay": 0.1, "decoupled_weight_decay": True, "tensor_lr": True},
    ),
}

# Optimizers whose step takes a square root: PyTorch's CPU ``sqrt`` (Intel MKL's vector math) is not
# correctly rounded (about 17% of float32 results are one unit in the last place off), rustgrad's is.
USES_SQRT = {"Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "NAdam", "RAdam"}


def problem(lib, seed=0, n=17, dtype="float32"):
    """Two parameters (17 and 5 elements) and the constants of the gradient ``a * w + c``, drawn in
    float64 and rounded to ``dtype``."""
    rng = np.random.default_rng(seed)
    w0, a, c = rng.standard_normal(n), rng.random(n) + 0.5, rng.standard_normal(n)
    w1 = rng.standard_normal(5)
    if dtype == "float32":
        w0, a, c, w1 = (v.astype(np.float32) for v in (w0, a, c, w1))
    dt = getattr(lib, dtype)
    w = lib.tensor(w0.tolist(), dtype=dt, requires_grad=True)
    w2 = lib.tensor(w1.tolist(), dtype=dt, requires_grad=True)
    return w, w2, lib.tensor(a.tolist(), dtype=dt), lib.tensor(c.tolist(), dtype=dt)


def run_optimizer(lib, cls_name, kwargs, steps=STEPS, is_torch=False, dtype="float32"):
    """``steps`` steps of ``lib.optim.<cls_name>`` on the fixed problem, the second parameter in its own
    group with ``lr * 2``; returns the final values of both parameters (float.hex strings) and the
    optimizer."""
    w, w2, a, c = problem(lib, dtype=dtype)
    kwargs = dict(kwargs)
    if kwargs.pop("tensor_lr", False):
        kwargs["lr"] = lib.tensor(kwargs["lr"])
    if is_torch:
        kwargs["foreach"] = False  # PyTorch's single-tensor path, the one rustgrad follows
    lr = kwargs.get("lr", 1.0 if cls_name == "Adadelta" else None)
    groups = [{"params": [w]}, {"params": [w2]}]
    if lr is not None:
        groups[1]["lr"] = lr * 2
    opt = getattr(lib.optim, cls_name)(groups, **kwargs)
    for _ in range(steps):
        with lib.no_grad():
            w.grad = a * w + c
            w2.grad = w2 * 0.5
        opt.step()
    return [float(v).hex() for v in w.detach().tolist() + w2.detach().tolist()], opt


@contextmanager
def correctly_rounded_sqrt(torch):
    """Within the block, PyTorch's ``Tensor.sqrt``/``sqrt_`` round correctly (numpy's square root)."""
    sqrt, sqrt_ = torch.Tensor.sqrt, torch.Tensor.sqrt_

    def exact_sqrt(self):
        return torch.tensor(np.sqrt(self.detach().numpy()), dtype=self.dtype)

    def exact_sqrt_(self):
        return self.copy_(exact_sqrt(self))

    torch.Tensor.sqrt, torch.Tensor.sqrt_ = exact_sqrt, exact_sqrt_
    try:
        yield
    finally:
        torch.Tensor.sqrt, torch.Tensor.sqrt_ = sqrt, sqrt_


def ulp_distance(xs, ys):
    """Largest distance in float32 units in the last place between two lists of float.hex strings."""

    def ordered(values):
        bits = np.array([float.fromhex(v) for v in values], dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)

    return int(np.abs(ordered(xs) - ordered(ys)).max())


# name -> (optimizer class name, function(lr_scheduler module, optimizer) -> scheduler, number of steps)
SCHEDULER_CASES = {
    "cosine": ("SGD", lambda L, o: L.CosineAnnealingLR(o, T_max=7, eta_min=0.001), 30),
    "cosine_default": ("SGD", lambda L, o: L.CosineAnnealingLR(o, T_max=5), 30),
    "warm_restarts_mult": (
        "SGD",
        lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2, eta_min=0.01),
        30,
    ),
    "warm_restarts": ("SGD", lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=3), 30),
    "one_cycle": ("SGD", lambda L, o: L.OneCycleLR(o, max_lr=1.0, total_steps=40), 40),
    "one_cycle_linear_three_phase": (
        "SGD",
        lambda L, o: L.OneCycleLR(
            o,
            max_lr=[0.5, 0.7],
            epochs=4,
            steps_per_epoch=10,
            anneal_strategy="linear",
            three_phase=True,
            pct_start=0.25,
        ),
        40,
    ),
    "one_cycle_adam": (
        "Adam",
        lambda L, o: L.OneCycleLR(o, max_lr=0.01, total_steps=40, div_factor=10.0),
        40,
    ),
    "linear": ("SGD", lambda L, o: L.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=7), 30),
    "linear_default": ("SGD", lambda L, o: L.LinearLR(o), 30),
    "constant": ("SGD", lambda L, o: L.ConstantLR(o, factor=0.3, total_iters=4), 30),
    "polynomial": ("SGD", lambda L, o: L.PolynomialLR(o, total_iters=9, power=2.0), 30),
    "polynomial_default": ("SGD", lambda L, o: L.PolynomialLR(o, total_iters=6), 30),
    "sequential": (
        "SGD",
        lambda L, o: L.SequentialLR(
            o,
            [
                L.LinearLR(o, start_factor=0.1, total_iters=4),
                L.CosineAnnealingLR(o, T_max=10),
                L.ExponentialLR(o, 0.9),
            ],
            milestones=[4, 12],
        ),
        30,
    ),
    "chained": (
        "SGD",
        lambda L, o: L.ChainedScheduler(
            [L.ConstantLR(o, factor=0.1, total_iters=3), L.ExponentialLR(o, gamma=0.9)]
        ),
        30,
    ),
    "cyclic": ("SGD", lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=4), 30),
    "cyclic_triangular2": (
        "SGD",
        lambda L, o: L.CyclicLR(o, [0.01, 0.02], 0.1, step_size_up=3, step_size_down=5, mode="triangular2"),
        30,
    ),
    "cyclic_exp_range": (
        "SGD",
        lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=3, mode="exp_range", gamma=0.97),
        30,
    ),
    "cyclic_adam": ("Adam", lambda L, o: L.CyclicLR(o, 0.001, 0.01, step_size_up=5), 30),
    "multiplicative": ("SGD", lambda L, o: L.MultiplicativeLR(o, lambda epoch: 0.95), 30),
    "plateau": (
        "SGD",
        lambda L, o: L.ReduceLROnPlateau(o, patience=2, factor=0.5, cooldown=1, threshold=0.01),
        30,
    ),
    "plateau_max_abs": (
        "SGD",
        lambda L, o: L.ReduceLROnPlateau(
            o, mode="max", patience=1, threshold_mode="abs", min_lr=[0.01, 0.05]
        ),
        30,
    ),
}

PLATEAU_METRICS = [1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.1, 0.2, 0.3, 0.4]


def make_scheduler(lib, name):
    """The optimizer (two groups, lr 0.1 and 0.2) and the scheduler of case ``name``."""
    opt_name, make, _ = SCHEDULER_CASES[name]
    params = [lib.zeros(2, requires_grad=True) for _ in range(2)]
    kwargs = {"momentum": 0.9} if opt_name == "SGD" else {}
    opt = getattr(lib.optim, opt_name)(
        [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(params)], lr=0.1, **kwargs
    )
    return opt, make(lib.optim.lr_scheduler, opt)


def step_scheduler(sched, name, i):
    """Step ``i`` (from 0) of case ``name``: the metric for ReduceLROnPlateau, nothing for the others."""
    if name.startswith("plateau"):
        sched.step(PLATEAU_METRICS[i % len(PLATEAU_METRICS)])
    else:
        sched.step()


def momentum_of(group):
    """The momentum a cycling scheduler writes: ``betas[0]`` for Adam, ``momentum`` for SGD."""
    return group["betas"][0] if "betas" in group else group["momentum"]


def run_scheduler(lib, name, steps=None):
    """Runs case ``name``; returns per step ``get_last_lr()`` (and, for the schedulers that cycle the
    momentum, both groups' momenta) as float.hex strings, with the optimizer and the scheduler."""
    opt, sched = make_scheduler(lib, name)
    cycles_momentum = name.startswith(("one_cycle", "cyclic"))
    trajectory = []
    for i in range(steps if steps is not None else SCHEDULER_CASES[name][2]):
        opt.step()
        step_scheduler(sched, name, i)
        row = list(sched.get_last_lr())
        if cycles_momentum:
            row += [momentum_of(g) for g in opt.param_groups]
        trajectory.append([float(v).hex() for v in row])
    return trajectory, opt, sched


def lbfgs_problem(lib, dtype, n=17):
    """A parameter and a closure computing ``sum(a w² + c w + w⁴)`` (a strictly convex quartic)."""
    rng = np.random.default_rng(0)
    w0, a, c = rng.standard_normal(n), rng.random(n) + 0.5, rng.standard_normal(n)
    dt = getattr(lib, dtype)
    w = lib.tensor(w0.tolist(), dtype=dt, requires_grad=True)
    a, c = lib.tensor(a.tolist(), dtype=dt), lib.tensor(c.tolist(), dtype=dt)

    def make_closure(opt):
        def closure():
            opt.zero_grad()
            loss = (a * w * w).sum() + (c * w).sum() + (w**4).sum()
            loss.backward()
            return loss

        return closure

    return w, make_closure


def run_lbfgs(lib, dtype, steps=3, **kwargs):
    """``steps`` LBFGS steps on the quartic; per step the returned loss, the evaluation and iteration
    counts, and the parameter."""
    w, make_closure = lbfgs_problem(lib, dtype)
    opt = lib.optim.LBFGS([w], **kwargs)
    closure = make_closure(opt)
    rows = []
    for _ in range(steps):
        loss = float(opt.step(closure))
        state = opt.state[w]
        rows.append((loss, state["func_evals"], state["n_iter"], w.detach().tolist()))
    return rows, opt


# Schedulers resumed with ``last_epoch`` (the optimizer's groups already carry ``initial_lr`` and the
# 1cycle keys): name -> function(lr_scheduler module, optimizer, last_epoch) -> scheduler.
RESUME_CASES = {
    "constant": lambda L, o, e: L.ConstantLR(o, 0.5, total_iters=4, last_epoch=e),
    "linear": lambda L, o, e: L.LinearLR(o, 0.5, 0.9, total_iters=4, last_epoch=e),
    "polynomial": lambda L, o, e: L.PolynomialLR(o, total_iters=3, power=0.5, last_epoch=e),
    "cosine": lambda L, o, e: L.CosineAnnealingLR(o, 3, eta_min=0.01, last_epoch=e),
    "warm_restarts": lambda L, o, e: L.CosineAnnealingWarmRestarts(o, 2, T_mult=2, last_epoch=e),
    "exponential": lambda L, o, e: L.ExponentialLR(o, 0.5, last_epoch=e),
    "multiplicative": lambda L, o, e: L.MultiplicativeLR(o, lambda epoch: 0.5, last_epoch=e),
    "cyclic": lambda L, o, e: L.CyclicLR(o, 0.01, 0.1, step_size_up=3, last_epoch=e),
    "one_cycle": lambda L, o, e: L.OneCycleLR(o, 1.0, total_steps=20, last_epoch=e),
}
RESUME_EPOCHS = (0, 2, 3, 5, 8)


def run_resumed(lib, name, last_epoch, steps=3):
    """The lr at construction and after each of ``steps`` steps (float.hex) of a resumed scheduler."""
    opt = lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    opt.param_groups[0].update(initial_lr=0.2, max_lr=1.0, min_lr=1e-4, max_momentum=0.95, base_momentum=0.85)
    sched = RESUME_CASES[name](lib.optim.lr_scheduler, opt, last_epoch)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return [float(v).hex() for v in lrs]


def run_nested_sequential(lib, steps=16):
    """A SequentialLR inside a SequentialLR: the inner one is undone and restarted as PyTorch does."""
    L = lib.optim.lr_scheduler
    opt = lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    inner = L.SequentialLR(
        opt, [L.ConstantLR(opt, 0.5, total_iters=2), L.ExponentialLR(opt, 0.9)], milestones=[3]
    )
    outer = L.SequentialLR(
        opt, [inner, L.LinearLR(opt, 0.2, total_iters=4), L.CosineAnnealingLR(opt, 5)], milestones=[5, 9]
    )
    lrs = []
    for _ in range(steps):
        opt.step()
        outer.step()
        lrs.append(float(outer.get_last_lr()[0]).hex())
    return lrs, outer
