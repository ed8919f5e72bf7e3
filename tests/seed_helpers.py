"""Shared helpers for the seed-tutorial tests (tests/test_seed_00*.py).

Nothing here imports rustgrad: each test does ``import rustgrad as torch``
itself, so a missing package makes every test FAIL (not skip) while the test
files still collect.
"""

import re

import numpy as np

_ADDR_RE = re.compile(r"object at 0x[0-9a-fA-F]+")
ADDR = "object at 0x<ADDR>"

# Message of the warning PyTorch 2.x emits (every time, not once) when the
# ``.grad`` of a non-leaf tensor is read.
NON_LEAF_GRAD_WARNING = (
    r"The \.grad attribute of a Tensor that is not a leaf Tensor is being accessed"
)


def normalize(text):
    """Replace memory addresses (``object at 0x1100477b8``) by a placeholder."""
    return _ADDR_RE.sub(ADDR, text)


def assert_printed(capsys, expected):
    """Compare everything printed to stdout so far with ``expected``.

    Addresses are normalised on both sides, so ``expected`` may quote the
    tutorial's own addresses verbatim.
    """
    out = capsys.readouterr().out
    assert normalize(out) == normalize(expected)


def assert_grad_fn(tensor, type_name, name=None):
    """``tensor.grad_fn`` is a node of class ``type_name`` whose ``name()`` is
    ``name`` (by default the same string; PyTorch's hand-written C++ nodes such
    as ``CopyBackwards`` and ``AccumulateGrad`` answer
    ``torch::autograd::CopyBackwards`` etc. from ``name()``)."""
    fn = tensor.grad_fn
    assert fn is not None
    assert type(fn).__name__ == type_name
    assert fn.name() == (type_name if name is None else name)


def regression_data(torch):
    """Seed 002's data set, made as the original tutorial makes it.

    Returns ``(x_train, y_train, x_train_tensor, y_train_tensor)``: the numpy
    float64 arrays of shape (80, 1) and their float32 tensors.
    """
    np.random.seed(42)
    x = np.random.rand(100, 1)
    y = 1 + 2 * x + .1 * np.random.randn(100, 1)

    # Shuffles the indices and uses the first 80 random indices for train
    idx = np.arange(100)
    np.random.shuffle(idx)
    train_idx = idx[:80]

    x_train, y_train = x[train_idx], y[train_idx]
    x_train_tensor = torch.from_numpy(x_train).float()
    y_train_tensor = torch.from_numpy(y_train).float()
    return x_train, y_train, x_train_tensor, y_train_tensor


# torch.manual_seed(42); torch.randn(1); torch.randn(1) on PyTorch's CPU
# generator (read off PyTorch 2.15.0: 0.3367 and 0.1288 as printed).
SEED42_B0 = 0.33669036626815796
SEED42_W0 = 0.12880940735340118


def numpy_linear_regression(x_train, y_train, b0=SEED42_B0, w0=SEED42_W0,
                            lr=0.1, n_epochs=1000):
    """Independent float32 oracle for seed 002's gradient-descent loop.

    Mirrors ``yhat = b + w * x``; ``loss = ((yhat - y) ** 2).mean()``;
    backward (MeanBackward0 spreads 1/N, PowBackward0 multiplies by 2*error,
    the broadcast of b and w is undone by summing); ``p -= lr * p.grad``.
    """
    f32 = np.float32
    x = x_train.astype(f32)
    y = y_train.astype(f32)
    b = np.array([b0], dtype=f32)
    w = np.array([w0], dtype=f32)
    lr = f32(lr)
    inv_n = f32(1) / f32(x.size)
    for _ in range(n_epochs):
        yhat = b + w * x
        error = yhat - y
        g = (f32(2) * error) * inv_n
        b_grad = g.sum(dtype=f32).reshape(1)
        w_grad = (g * x).sum(dtype=f32).reshape(1)
        b = b - lr * b_grad
        w = w - lr * w_grad
    return b, w
