"""``torch.optim.ASGD``: averaged stochastic gradient descent (SGD with a decaying step size and a
running average ``ax`` of the iterates)."""

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

__all__ = ["ASGD"]


class ASGD(Optimizer):
    """ASGD: ``p = p (1 - lambd eta) - eta g``; the average ``ax += mu (p - ax)`` (``ax = p`` while
    ``mu == 1``); then ``eta = lr / (1 + lambd lr t)^alpha`` and ``mu = 1 / max(1, t - t0)``.

    Args: ``lr`` (1e-2), ``lambd`` (decay term, 1e-4), ``alpha`` (power for the eta update, 0.75),
    ``t0`` (step at which averaging starts, 1e6), ``weight_decay`` (L2), ``maximize``.
    The state per parameter is ``step``, ``eta``, ``mu`` (float32 0-d tensors) and ``ax``.
    https://pytorch.org/docs/stable/generated/torch.optim.ASGD.html
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Tensor = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        _check_hyperparameters(
            lr,
            ("lambd value", lambd),
            ("alpha value", alpha),
            ("weight_decay value", weight_decay),
        )
        defaults = {
            "lr": lr,
            "lambd": lambd,
            "alpha": alpha,
            "t0": t0,
            "weight_decay": weight_decay,
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
    _TENSOR_STATE_KEYS: ClassVar[tuple[str, ...] | None] = ("eta", "mu")

    def _init_state(self, param: Tensor, lr: Any) -> dict[str, Any]:
        return self._param_state(
            param,
            lambda: {
                "step": _step_tensor(),
                "eta": rustgrad.tensor(_get_value(lr), dtype=rustgrad.float32),
                "mu": rustgrad.tensor(1.0, dtype=rustgrad.float32),
                "ax": rustgrad.zeros_like(param),
            },
        )

    @_use_grad_for_differentiable
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One ASGD update of every parameter that has a ``.grad``; returns the closure's loss."""
        loss = self._loss_of(closure)
        for group in self.param_groups:
            # A tensor lr keeps PyTorch's float32 scalar arithmetic in the eta update.
            lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
            weight_decay = group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self._init_state(param, lr)
                grad = param.grad if not group["maximize"] else -param.grad
                state["step"].add_(1)
                step = _get_value(state["step"])
                if weight_decay != 0:
                    grad = grad.add(param, alpha=weight_decay)
                eta, mu, ax = state["eta"], state["mu"], state["ax"]
                param.mul_(1 - lambd * eta.item())
                param.add_(grad, alpha=-eta.item())
                if mu.item() != 1:
                    ax.add_(param.sub(ax).mul_(mu))
                else:
                    ax.copy_(param)
                eta.copy_(rustgrad.as_tensor(lr / ((1 + lambd * lr * step) ** alpha)))
                mu.copy_(rustgrad.as_tensor(1 / max(1, step - t0)))
        return loss
