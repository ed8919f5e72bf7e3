"""``torch.optim.Adamax``: Adam with the infinity norm (a running maximum) in place of the RMS."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import rustgrad
from rustgrad import Tensor
from rustgrad.optim.optimizer import (
    Optimizer,
    _check_hyperparameters,
    _get_value,
    _lerp_,
    _step_tensor,
    _use_grad_for_differentiable,
)

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax: ``m = lerp(m, g, 1 - beta1)``, ``u = max(beta2 u, |g| + eps)``,
    ``p -= lr / (1 - beta1^t) m / u``.

    Args: ``lr`` (2e-3), ``betas`` (0.9, 0.999), ``eps`` (1e-8), ``weight_decay`` (L2), ``maximize``.
    https://pytorch.org/docs/stable/generated/torch.optim.Adamax.html
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        _check_hyperparameters(
            lr,
            ("epsilon value", eps),
            ("beta parameter at index 0", betas[0], 1.0, False),
            ("beta parameter at index 1", betas[1], 1.0, False),
            ("weight_decay value", weight_decay),
        )
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
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
    _TENSOR_STATE_KEYS: ClassVar[tuple[str, ...] | None] = ()

    def _init_state(self, param: Tensor) -> dict[str, Any]:
        return self._param_state(
            param,
            lambda: {
                "step": _step_tensor(),
                "exp_avg": rustgrad.zeros_like(param),
                "exp_inf": rustgrad.zeros_like(param),
            },
        )

    @_use_grad_for_differentiable
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adamax update of every parameter that has a ``.grad``; returns the closure's loss."""
        loss = self._loss_of(closure)
        for group in self.param_groups:
            # A tensor lr keeps PyTorch's float32 scalar arithmetic (lr / ..., 1 - lr * weight_decay).
            lr = group["lr"]
            beta1, beta2 = group["betas"]
            eps, weight_decay = group["eps"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self._init_state(param)
                grad = param.grad if not group["maximize"] else -param.grad
                state["step"].add_(1)
                if weight_decay != 0:
                    grad = grad.add(param, alpha=weight_decay)
                exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
                _lerp_(exp_avg, grad, 1 - beta1)
                exp_inf.copy_(rustgrad.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps)))
                clr = _get_value(lr / (1 - beta1 ** _get_value(state["step"])))
                param.addcdiv_(exp_avg, exp_inf, value=-clr)
        return loss
