"""``torch.autograd.forward_ad``: forward-mode automatic differentiation.

Inside ``dual_level()``, ``make_dual(x, t)`` gives a tensor carrying the tangent ``t``; every
op on such tensors gives its result the Jacobian-vector product as tangent, read back with
``unpack_dual(y).tangent``. One level at a time, as in PyTorch; leaving it drops every tangent.
Tangents come from each op's backward formula (see ``rust/rustgrad-core/src/forward_ad.rs``), so
every differentiable op has one, and they are themselves differentiable.

https://pytorch.org/docs/stable/autograd.html#forward-mode-automatic-differentiation
"""

from __future__ import annotations

from typing import Any, NamedTuple

from rustgrad import _rustgrad
from rustgrad.func import _batched
from rustgrad.grad_mode import _DecoratorContextManager

__all__ = ["UnpackedDualTensor", "dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual"]

_current_level = -1


def enter_dual_level() -> int:
    """Opens a dual level (there can be one at a time) and returns its number."""
    global _current_level
    level = _rustgrad._enter_dual_level()
    _current_level = level
    return level


def exit_dual_level(*, level: int | None = None) -> None:
    """Closes the dual level: every tangent set in it is gone."""
    global _current_level
    if level is None:
        level = _current_level
    if level != _current_level:
        raise RuntimeError("Trying to exit a forward AD level that was not the last one that was created. This is not supported.")
    _rustgrad._exit_dual_level(level)
    _current_level = level - 1


def make_dual(tensor: Any, tangent: Any, *, level: int | None = None) -> Any:
    """A view of ``tensor`` whose tangent (forward gradient) is ``tangent``."""
    if level is None:
        level = _current_level
    if level < 0:
        raise RuntimeError(
            "Trying to create a dual Tensor for forward AD but no level exists, make sure to enter_dual_level() first."
        )
    if type(tensor) is _batched.BatchedTensor or type(tangent) is _batched.BatchedTensor:
        # inside vmap: the dual of the physical tensors, batched where either of them is
        primal, primal_levels = _batched.unwrap(tensor)
        direction, direction_levels = _batched.unwrap(tangent)
        levels = sorted(set(primal_levels) | set(direction_levels))
        dual = _rustgrad._make_dual(
            _batched.expand_levels(primal, primal_levels, levels),
            _batched.expand_levels(direction, direction_levels, levels),
        )
        return _batched.rewrap(dual, levels)
    return _rustgrad._make_dual(tensor, tangent)


class UnpackedDualTensor(NamedTuple):
    """What ``unpack_dual`` returns: the primal (a view without tangent) and the tangent."""

    primal: Any
    tangent: Any


def unpack_dual(tensor: Any, *, level: int | None = None) -> UnpackedDualTensor:
    """``(primal, tangent)`` of ``tensor``; the tangent is None if it has none at this level."""
    if level is None:
        level = _current_level
    if level < 0:
        return UnpackedDualTensor(tensor, None)
    if type(tensor) is _batched.BatchedTensor:
        physical, levels = _batched.unwrap(tensor)
        primal, tangent = _rustgrad._unpack_dual(physical)
        return UnpackedDualTensor(
            _batched.rewrap(primal, levels), None if tangent is None else _batched.rewrap(tangent, levels)
        )
    primal, tangent = _rustgrad._unpack_dual(tensor)
    return UnpackedDualTensor(primal, tangent)


class dual_level(_DecoratorContextManager):
    """A context (or decorator) in which dual tensors can be made; returns the level number."""

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(self, exc_type: object, exc_value: object, traceback: object) -> None:
        exit_dual_level()
