"""``Adam``, with PyTorch 2.15's single-tensor (``foreach=False``) arithmetic in the same order."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import rustgrad
from rustgrad import Tensor, _rustgrad
from rustgrad.optim.optimizer import (
    Optimizer,
    _addcmul_,
    _check_hyperparameters,
    _get_value,
    _lerp_,
    _step_tensor,
    _use_grad_for_differentiable,
)

__all__ = ["Adam"]


_to_scalar = _get_value


class Adam(Optimizer):
    """Adam: moving averages of the gradient and its square, bias-corrected, ``p -= lr m / (sqrt(v) + eps)``.

    Args: ``lr``, ``betas``, ``eps``, ``weight_decay`` (L2, or decoupled as AdamW with
    ``decoupled_weight_decay=True``), ``amsgrad`` (divide by the running maximum of ``v``), ``maximize``.
    https://pytorch.org/docs/stable/generated/torch.optim.Adam.html
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        _check_hyperparameters(
            lr,
            ("epsilon value", eps),
            ("beta parameter at index 0", betas[0], 1.0, False),
            ("beta parameter at index 1", betas[1], 1.0, False),
            ("weight_decay value", weight_decay),
        )
        if not (
            (isinstance(betas[0], float) and isinstance(betas[1], float))
            or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))
        ):
            raise ValueError("betas must be either both floats or both Tensors")  # noqa: TRY004
        betas = (_to_scalar(betas[0]), _to_scalar(betas[1]))
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    _GROUP_DEFAULTS: ClassVar[dict[str, Any]] = {
        "amsgrad": False,
        "maximize": False,
        "foreach": None,
        "capturable": False,
        "differentiable": False,
        "decoupled_weight_decay": False,
        "fused": None,
    }
    _TENSOR_STATE_KEYS: ClassVar[tuple[str, ...] | None] = ()

    def _init_state(self, group: dict[str, Any], param: Tensor) -> dict[str, Any]:
        def init() -> dict[str, Any]:
            state = {
                "step": _step_tensor(),
                "exp_avg": rustgrad.zeros_like(param),
                "exp_avg_sq": rustgrad.zeros_like(param),
            }
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = rustgrad.zeros_like(param)
            return state

        return self._param_state(param, init)

    @_use_grad_for_differentiable
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adam update of every parameter that has a ``.grad``."""
        loss = self._loss_of(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            # A tensor lr keeps PyTorch's float32 scalar arithmetic (lr / ..., 1 - lr * weight_decay).
            lr = group["lr"]
            weight_decay, eps = group["weight_decay"], group["eps"]
            # One fused pass per parameter (same roundings) unless the update must be recorded
            # or needs the running maximum or a tensor learning rate.
            fused = not (group["amsgrad"] or group.get("differentiable") or isinstance(lr, Tensor))
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self._init_state(group, param)
                grad = param.grad if not group["maximize"] else -param.grad
                exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                step_t.add_(1)

                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        param.mul_(1 - lr * weight_decay)
                    else:
                        grad = grad.add(param, alpha=weight_decay)

                step = _get_value(step_t)
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                step_size = _get_value(lr / bias_correction1)
                bias_correction2_sqrt = bias_correction2**0.5

                if fused and _rustgrad._adam_step(
                    param, grad, exp_avg, exp_avg_sq, 1 - beta1, beta2, 1 - beta2, bias_correction2_sqrt, eps, -step_size
                ):
                    continue  # the whole update below, in one pass
                _lerp_(exp_avg, grad, 1 - beta1)
                _addcmul_(exp_avg_sq.mul_(beta2), grad, grad, value=1 - beta2)

                if group["amsgrad"]:
                    max_exp_avg_sq = state["max_exp_avg_sq"]
                    max_exp_avg_sq.copy_(rustgrad.maximum(max_exp_avg_sq, exp_avg_sq))
                    denom = (max_exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                else:
                    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                param.addcdiv_(exp_avg, denom, value=-step_size)
        return loss
