"""``torch.optim.RMSprop``: divides each step by a running root mean square of the gradients."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import rustgrad
from rustgrad import Tensor
from rustgrad.optim.adam import _to_scalar
from rustgrad.optim.optimizer import (
    Optimizer,
    _addcmul_,
    _check_hyperparameters,
    _lerp_,
    _step_tensor,
    _use_grad_for_differentiable,
)


class RMSprop(Optimizer):
    """RMSprop: ``v = alpha v + (1 - alpha) g²``, ``p -= lr g / (sqrt(v) + eps)``, with optional
    centring (subtracting the running mean of g), momentum and weight decay, in PyTorch's
    operation order (so the numbers match step by step).
    https://pytorch.org/docs/stable/generated/torch.optim.RMSprop.html
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_hyperparameters(
            lr,
            ("epsilon value", eps),
            ("momentum value", momentum),
            ("weight_decay value", weight_decay),
            ("alpha value", alpha),
        )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _init_state(self, group: dict[str, Any], param: Tensor) -> dict[str, Any]:
        def init() -> dict[str, Any]:
            state = {"step": _step_tensor(), "square_avg": rustgrad.zeros_like(param)}
            if group["momentum"] > 0:
                state["momentum_buffer"] = rustgrad.zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = rustgrad.zeros_like(param)
            return state

        return self._param_state(param, init)

    @_use_grad_for_differentiable
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One RMSprop update of every parameter that has a ``.grad``."""
        loss = self._loss_of(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            alpha, eps = group["alpha"], group["eps"]
            weight_decay, momentum = group["weight_decay"], group["momentum"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self._init_state(group, param)
                grad = param.grad if not group["maximize"] else -param.grad
                state["step"].add_(1)
                if weight_decay != 0:
                    grad = grad.add(param, alpha=weight_decay)
                square_avg = state["square_avg"]
                _addcmul_(square_avg.mul_(alpha), grad, grad, value=1 - alpha)
                if group["centered"]:
                    grad_avg = state["grad_avg"]
                    _lerp_(grad_avg, grad, 1 - alpha)
                    avg = _addcmul_(square_avg.clone(), grad_avg, grad_avg, value=-1).sqrt_().add_(eps)
                else:
                    avg = square_avg.sqrt().add_(eps)
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf.mul_(momentum).addcdiv_(grad, avg)
                    param.add_(buf, alpha=-lr)
                else:
                    param.addcdiv_(grad, avg, value=-lr)
        return loss
