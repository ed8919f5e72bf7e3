"""``torch.func``: composable function transforms (``grad``, ``vjp``, ``jvp``, ``jacrev``,
``jacfwd``, ``hessian``, ``vmap``, ``functional_call``).

How they are built here:

- ``grad``, ``grad_and_value``, ``vjp`` and ``jacrev`` differentiate with reverse mode
  (``autograd.grad``). The arguments being differentiated are given a history of their own for
  the call, so the transforms nest (``grad(grad(f))``, ``jacrev(jacrev(f))``) and compose with
  ordinary autograd: a result keeps a graph only when something outside the transform (an
  enclosing transform, or an argument that requires grad) can differentiate it.
- ``jvp``, ``jacfwd`` and ``hessian`` get Jacobian-vector products as the derivative of a
  vector-Jacobian product with respect to its (linear) cotangent, so every op with a
  differentiable backward formula works.
- ``vmap`` calls ``func`` once, on batched tensors that carry the whole batch: each op applies
  its batching rule (one call for the batch), or loops over the batch when it has none
  (``_batched.py``).

https://pytorch.org/docs/stable/func.api.html
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rustgrad.func._transforms import (
    functional_call,
    grad,
    grad_and_value,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    vjp,
)
from rustgrad.func._vmap import vmap

__all__ = [
    "functional_call",
    "functionalize",
    "grad",
    "grad_and_value",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "linearize",
    "stack_module_state",
    "vjp",
    "vmap",
]

def functionalize(func: Callable, *, remove: str = "mutations") -> Callable:
    """Returns ``func`` itself: rustgrad runs in-place ops eagerly, with the same values a
    functionalized program gives."""
    return func


def linearize(func: Callable, *primals: Any) -> tuple:
    """``(func(*primals), jvp_fn)``: ``jvp_fn(*tangents)`` is the Jacobian-vector product at
    ``primals``."""
    output = func(*primals)

    def jvp_fn(*tangents: Any) -> Any:
        return jvp(func, primals, tangents)[1]

    return output, jvp_fn


def stack_module_state(models: Any) -> tuple[dict, dict]:
    """``(params, buffers)``: each parameter and buffer of the (same-shaped) ``models`` stacked
    along a new first dimension, for ``vmap`` over ``functional_call`` (model ensembling)."""
    import rustgrad

    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or all(not m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same training/eval mode.")
    first = type(models[0])
    if not all(type(m) is first for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")

    def stacked(named: Callable) -> dict:
        names = [name for name, _ in named(models[0])]
        tables = [dict(named(m)) for m in models]
        out = {}
        for name in names:
            values = rustgrad.stack([t[name].detach() for t in tables])
            if tables[0][name].requires_grad:
                values.requires_grad_()
            out[name] = values
        return out

    params = stacked(lambda m: m.named_parameters())
    buffers = stacked(lambda m: m.named_buffers())
    return params, buffers
