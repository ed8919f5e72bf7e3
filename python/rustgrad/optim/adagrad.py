"""``torch.optim.Adagrad``: steps scaled by the root of each parameter's summed squared gradients."""

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

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad: ``sum += g²``, ``p -= clr g / (sqrt(sum) + eps)`` with ``clr = lr / (1 + (step - 1) lr_decay)``.

    Args: ``lr`` (0.01), ``lr_decay``, ``weight_decay`` (L2 added to the gradient),
    ``initial_accumulator_value`` (start of ``sum``), ``eps`` (1e-10), ``maximize``.
    The state is created at construction, as in PyTorch.
    https://pytorch.org/docs/stable/generated/torch.optim.Adagrad.html
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check_hyperparameters(
            lr,
            ("lr_decay value", lr_decay),
            ("weight_decay value", weight_decay),
            ("initial_accumulator_value value", initial_accumulator_value),
            ("epsilon value", eps),
        )
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(group, p)

    _GROUP_DEFAULTS: ClassVar[dict[str, Any]] = {
        "foreach": None,
        "maximize": False,
        "differentiable": False,
        "fused": None,
    }
    _TENSOR_STATE_KEYS: ClassVar[tuple[str, ...] | None] = ()

    def _init_state(self, group: dict[str, Any], param: Tensor) -> dict[str, Any]:
        return self._param_state(
            param,
            lambda: {
                "step": _step_tensor(),
                "sum": rustgrad.full_like(param, group["initial_accumulator_value"]),
            },
        )

    def share_memory(self) -> None:
        """Kept for API compatibility: rustgrad tensors are process-local, so this does nothing."""

    @_use_grad_for_differentiable
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adagrad update of every parameter that has a ``.grad``; returns the closure's loss."""
        loss = self._loss_of(closure)
        for group in self.param_groups:
            # A tensor lr keeps PyTorch's float32 scalar arithmetic (lr / ..., 1 - lr * weight_decay).
            lr = group["lr"]
            lr_decay, weight_decay, eps = group["lr_decay"], group["weight_decay"], group["eps"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self._init_state(group, param)
                grad = param.grad if not group["maximize"] else -param.grad
                state["step"].add_(1)
                step = _get_value(state["step"])
                if weight_decay != 0:
                    grad = grad.add(param, alpha=weight_decay)
                clr = _get_value(lr / (1 + (step - 1) * lr_decay))
                state_sum = _addcmul_(state["sum"], grad, grad)
                std = state_sum.sqrt().add_(eps)
                param.addcdiv_(grad, std, value=-clr)
        return loss
