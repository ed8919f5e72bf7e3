"""``torch.optim.NAdam``: Adam with Nesterov momentum and a decaying momentum schedule."""

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

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """NAdam: Adam whose update mixes the gradient and the momentum with the factors
    ``mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay))``; ``mu_product`` (their running product) is state.

    Args: ``lr`` (2e-3), ``betas``, ``eps``, ``weight_decay`` (L2, or decoupled with
    ``decoupled_weight_decay=True``), ``momentum_decay`` (4e-3), ``maximize``.
    https://pytorch.org/docs/stable/generated/torch.optim.NAdam.html
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
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
            ("momentum_decay value", momentum_decay),
        )
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    _GROUP_DEFAULTS: ClassVar[dict[str, Any]] = {
        "maximize": False,
        "foreach": None,
        "capturable": False,
        "differentiable": False,
        "decoupled_weight_decay": False,
    }
    _TENSOR_STATE_KEYS: ClassVar[tuple[str, ...] | None] = ("mu_product",)

    def _init_state(self, param: Tensor) -> dict[str, Any]:
        return self._param_state(
            param,
            lambda: {
                "step": _step_tensor(),
                "mu_product": rustgrad.tensor(1.0, dtype=rustgrad.float32),
                "exp_avg": rustgrad.zeros_like(param),
                "exp_avg_sq": rustgrad.zeros_like(param),
            },
        )

    @_use_grad_for_differentiable
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One NAdam update of every parameter that has a ``.grad``; returns the closure's loss."""
        loss = self._loss_of(closure)
        for group in self.param_groups:
            # A tensor lr keeps PyTorch's float32 scalar arithmetic (lr / ..., 1 - lr * weight_decay).
            lr = group["lr"]
            beta1, beta2 = group["betas"]
            eps, weight_decay, momentum_decay = group["eps"], group["weight_decay"], group["momentum_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self._init_state(param)
                grad = param.grad if not group["maximize"] else -param.grad
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"].add_(1)
                step = _get_value(state["step"])
                bias_correction2 = 1 - beta2**step
                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        param.mul_(1 - lr * weight_decay)
                    else:
                        grad = grad.add(param, alpha=weight_decay)
                # The momentum factors of this step and the next; their product is kept in float32.
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
                mu_product = _get_value(state["mu_product"].mul_(mu))
                _lerp_(exp_avg, grad, 1 - beta1)
                _addcmul_(exp_avg_sq.mul_(beta2), grad, grad, value=1 - beta2)
                denom = exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
                mu_product_next = mu_product * mu_next
                param.addcdiv_(grad, denom, value=_get_value(-lr * (1.0 - mu) / (1.0 - mu_product)))
                param.addcdiv_(exp_avg, denom, value=_get_value((-lr * mu_next) / (1.0 - mu_product_next)))
        return loss
