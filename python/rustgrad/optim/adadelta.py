"""``torch.optim.Adadelta``: steps sized by the ratio of running RMS of updates and of gradients."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import rustgrad
from rustgrad import Tensor
from rustgrad.optim.optimizer import (
    Optimizer,
    _addcmul_,
    _check_hyperparameters,
    _get_value,
    _step_tensor,
    _use_grad_for_differentiable,
)

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta: ``v = rho v + (1 - rho) g²``, ``d = sqrt(u + eps) / sqrt(v + eps) g``,
    ``u = rho u + (1 - rho) d²``, ``p -= lr d``.

    Args: ``lr`` (1.0), ``rho`` (0.9), ``eps`` (1e-6), ``weight_decay`` (L2), ``maximize``.
    https://pytorch.org/docs/stable/generated/torch.optim.Adadelta.html
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Tensor = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_hyperparameters(
            lr,
            ("rho value", rho, 1.0, True),
            ("epsilon value", eps),
            ("weight_decay value", weight_decay),
        )
        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "capturable": capturable,
            "foreach": foreach,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    _GROUP_DEFAULTS: ClassVar[dict[str, Any]] = {
        "foreach": None,
        "maximize": False,
        "differentiable": False,
        "capturable": False,
    }
    _TENSOR_STATE_KEYS: ClassVar[tuple[str, ...] | None] = ()

    def _init_state(self, param: Tensor) -> dict[str, Any]:
        return self._param_state(
            param,
            lambda: {
                "step": _step_tensor(),
                "square_avg": rustgrad.zeros_like(param),
                "acc_delta": rustgrad.zeros_like(param),
            },
        )

    @_use_grad_for_differentiable
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adadelta update of every parameter that has a ``.grad``; returns the closure's loss."""
        loss = self._loss_of(closure)
        for group in self.param_groups:
            lr = _get_value(group["lr"])
            rho, eps, weight_decay = group["rho"], group["eps"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self._init_state(param)
                grad = param.grad if not group["maximize"] else -param.grad
                state["step"].add_(1)
                if weight_decay != 0:
                    grad = grad.add(param, alpha=weight_decay)
                square_avg, acc_delta = state["square_avg"], state["acc_delta"]
                _addcmul_(square_avg.mul_(rho), grad, grad, value=1 - rho)
                std = square_avg.add(eps).sqrt_()
                delta = acc_delta.add(eps).sqrt_().div_(std).mul_(grad)
                _addcmul_(acc_delta.mul_(rho), delta, delta, value=1 - rho)
                param.add_(delta, alpha=-lr)
        return loss
