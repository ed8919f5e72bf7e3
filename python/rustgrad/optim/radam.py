"""``torch.optim.RAdam``: Adam with a rectification term that switches the adaptive step on gradually."""

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
    _lerp_,
    _step_tensor,
    _use_grad_for_differentiable,
)

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """RAdam: while the variance estimate is unreliable (``rho_t <= 5``) an SGD-with-momentum step,
    afterwards Adam's step times the rectification ``r_t``.

    Args: ``lr`` (1e-3), ``betas``, ``eps``, ``weight_decay`` (L2, or decoupled with
    ``decoupled_weight_decay=True``), ``maximize``.
    https://pytorch.org/docs/stable/generated/torch.optim.RAdam.html
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
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
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "decoupled_weight_decay": decoupled_weight_decay,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    _GROUP_DEFAULTS: ClassVar[dict[str, Any]] = {
        "foreach": None,
        "maximize": False,
        "differentiable": False,
        "decoupled_weight_decay": False,
        "capturable": False,
    }
    _TENSOR_STATE_KEYS: ClassVar[tuple[str, ...] | None] = ()

    def _init_state(self, param: Tensor) -> dict[str, Any]:
        return self._param_state(
            param,
            lambda: {
                "step": _step_tensor(),
                "exp_avg": rustgrad.zeros_like(param),
                "exp_avg_sq": rustgrad.zeros_like(param),
            },
        )

    @_use_grad_for_differentiable
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One RAdam update of every parameter that has a ``.grad``; returns the closure's loss."""
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
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"].add_(1)
                step = _get_value(state["step"])
                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        param.mul_(1 - lr * weight_decay)
                    else:
                        grad = grad.add(param, alpha=weight_decay)
                _lerp_(exp_avg, grad, 1 - beta1)
                _addcmul_(exp_avg_sq.mul_(beta2), grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                corrected = exp_avg / bias_correction1
                # Length of the approximated simple moving average, its limit, and the rectification.
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
                if rho_t > 5.0:
                    rect = (
                        (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                    ) ** 0.5
                    adaptive_lr = (bias_correction2**0.5) / exp_avg_sq.sqrt().add_(eps)
                    param.add_(corrected * lr * adaptive_lr * rect, alpha=-1.0)
                else:
                    param.add_(corrected * lr, alpha=-1.0)
        return loss
