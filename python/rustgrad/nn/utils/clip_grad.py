"""``clip_grad_norm_`` and ``clip_grad_value_``, with PyTorch's arithmetic."""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterable

import rustgrad
from rustgrad import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _get_total_norm(tensors: list, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """The norm of the per-tensor norms, which is the norm of all elements together."""
    norm_type = float(norm_type)
    if len(tensors) == 0:
        return rustgrad.tensor(0.0)
    norms = [t.norm(norm_type) for t in tensors]
    total_norm = rustgrad.stack(norms).norm(norm_type)
    if error_if_nonfinite and not bool(total_norm.isfinite()):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from "
            "`parameters` is non-finite, so it cannot be clipped. To disable "
            "this error and scale the gradients by the non-finite norm anyway, "
            "set `error_if_nonfinite=False`"
        )
    return total_norm


@rustgrad.no_grad()
def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Scales all gradients together so that their joint norm is at most ``max_norm``; returns that norm."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)
        if is_generator and len(parameters) == 0:
            warnings.warn(
                "`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=3
            )
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = _get_total_norm(grads, norm_type, error_if_nonfinite)
    if len(grads) == 0:
        return total_norm
    clip_coef = float(max_norm) / (total_norm + 1e-6)
    clip_coef_clamped = rustgrad.clamp(clip_coef, max=1.0)
    for g in grads:
        g.mul_(clip_coef_clamped)
    return total_norm


@rustgrad.no_grad()
def clip_grad_value_(
    parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None
) -> None:
    """Clamps every gradient elementwise into ``[-clip_value, clip_value]``."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    clip_value = float(clip_value)
    for p in parameters:
        if p.grad is not None:
            p.grad.clamp_(min=-clip_value, max=clip_value)
