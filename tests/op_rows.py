"""Helpers shared by the op-table test files (not a test file): leaves from arrays, outputs as a
tuple, and the ``grad_fn`` class name of a result."""

import rustgrad


def leaves(arrays):
    """Float64 leaf tensors that require grad, one per numpy array."""
    return [rustgrad.tensor(a, dtype=rustgrad.float64, requires_grad=True) for a in arrays]


def as_tuple(x):
    """An op's output(s) as a tuple."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def grad_fn_name(t):
    """The class name of ``t.grad_fn`` (None for a leaf)."""
    return None if t.grad_fn is None else type(t.grad_fn).__name__
