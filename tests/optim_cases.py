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
}

# Optimizers whose step takes a square root: PyTorch's CPU ``sqrt`` (Intel MKL's vector math) is not
# correctly rounded (about 17% of float32 results are one unit in the last place off), rustgrad's is.
USES_SQRT = {"Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "NAdam", "RAdam"}


def problem(lib, seed=0, n=17):
    """Two parameters (17 and 5 elements, float32) and the constants of the gradient ``a * w + c``."""
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal(n).astype(np.float32)
    a = (rng.random(n) + 0.5).astype(np.float32)
    c = rng.standard_normal(n).astype(np.float32)
    w1 = rng.standard_normal(5).astype(np.float32)
    w = lib.tensor(w0.tolist(), requires_grad=True)
    w2 = lib.tensor(w1.tolist(), requires_grad=True)
    return w, w2, lib.tensor(a.tolist()), lib.tensor(c.tolist())


def run_optimizer(lib, cls_name, kwargs, steps=STEPS, is_torch=False):
    """``steps`` steps of ``lib.optim.<cls_name>`` on the fixed problem, the second parameter in its own
    group with ``lr * 2``; returns the final values of both parameters (float.hex strings) and the
    optimizer."""
    w, w2, a, c = problem(lib)
    kwargs = dict(kwargs)
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
