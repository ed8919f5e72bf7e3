"""``torch.optim.Rprop``: resilient backpropagation (per-element step sizes driven by the gradient's sign)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import rustgrad
from rustgrad import Tensor
from rustgrad.optim.optimizer import (
    Optimizer,
    _check_hyperparameters,
    _get_value,
    _step_tensor,
    _use_grad_for_differentiable,
)

__all__ = ["Rprop"]


class Rprop(Optimizer):
    """Rprop: each element's step size grows by ``etas[1]`` while its gradient keeps its sign and
    shrinks by ``etas[0]`` when the sign flips (that step then skips the element), within
    ``step_sizes``; ``p -= sign(g) * step_size``.

    Args: ``lr`` (the initial step size, 1e-2), ``etas`` ((0.5, 1.2)), ``step_sizes`` ((1e-6, 50)),
    ``maximize``. The state per parameter is ``step``, ``prev`` (the last gradient used) and ``step_size``.
    https://pytorch.org/docs/stable/generated/torch.optim.Rprop.html
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Tensor = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_hyperparameters(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {
            "lr": lr,
            "etas": etas,
            "step_sizes": step_sizes,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)

    _GROUP_DEFAULTS: ClassVar[dict[str, Any]] = {
        "foreach": None,
        "maximize": False,
        "differentiable": False,
        "capturable": False,
    }
    _TENSOR_STATE_KEYS: ClassVar[tuple[str, ...] | None] = ()

    def _init_state(self, param: Tensor, lr: Any) -> dict[str, Any]:
        return self._param_state(
            param,
            lambda: {
                "step": _step_tensor(),
                "prev": rustgrad.zeros_like(param),
                "step_size": rustgrad.full_like(param, _get_value(lr)),
            },
        )

    @_use_grad_for_differentiable
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Rprop update of every parameter that has a ``.grad``; returns the closure's loss."""
        loss = self._loss_of(closure)
        for group in self.param_groups:
            etaminus, etaplus = group["etas"]
            step_size_min, step_size_max = group["step_sizes"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self._init_state(param, group["lr"])
                grad = param.grad if not group["maximize"] else -param.grad
                state["step"].add_(1)
                prev, step_size = state["prev"], state["step_size"]
                same = grad.mul(prev).sign()
                factor = rustgrad.where(
                    same > 0,
                    rustgrad.full_like(same, etaplus),
                    rustgrad.where(same < 0, rustgrad.full_like(same, etaminus), rustgrad.ones_like(same)),
                )
                step_size.mul_(factor).clamp_(step_size_min, step_size_max)
                # After a sign flip the element does not move, and its next step starts afresh.
                grad = grad.masked_fill(same < 0, 0.0)
                param.addcmul_(grad.sign(), step_size, value=-1)
                prev.copy_(grad)
        return loss
