"""``torch.optim.Adafactor``: Adam-like steps with a factored second moment (row and column averages
for matrices), relative step sizes and update clipping."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import rustgrad
from rustgrad import Tensor
from rustgrad.optim.optimizer import Optimizer, _get_value, _lerp_, _step_tensor

__all__ = ["Adafactor"]

# Machine epsilon per float dtype name (``torch.finfo(dtype).eps``), the default ``eps[0]``.
_FINFO_EPS = {"float32": 2.0**-23, "float64": 2.0**-52, "float16": 2.0**-10, "bfloat16": 2.0**-7}


class Adafactor(Optimizer):
    """Adafactor. At step ``t``: ``beta2_t = 1 - t^beta2_decay``, ``rho = min(lr, 1/sqrt(t))``, the step
    ``alpha = max(eps[1], RMS(p)) * rho``; weight decay shrinks ``p`` by ``1 - lr * weight_decay``. For a
    parameter of 2 or more dims the second moment is kept as row and column means of ``g²``
    (``row_var``, ``col_var``, over the last two dims), else in full (``variance``); the update
    ``u = g / max(sqrt(v), eps[0])`` is clipped to RMS ``d``: ``p -= alpha u / max(1, RMS(u) / d)``.

    Args: ``lr`` (1e-2), ``beta2_decay`` (-0.8), ``eps`` ((None, 1e-3); None is the dtype's machine
    epsilon), ``d`` (1.0), ``weight_decay`` (0.0), ``maximize``.
    https://pytorch.org/docs/stable/generated/torch.optim.Adafactor.html
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Tensor = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {
            "lr": lr,
            "beta2_decay": beta2_decay,
            "eps": eps,
            "d": d,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    _GROUP_DEFAULTS: ClassVar[dict[str, Any]] = {"foreach": None, "maximize": False}
    _TENSOR_STATE_KEYS: ClassVar[tuple[str, ...] | None] = ()

    def _init_state(self, param: Tensor, grad: Tensor) -> dict[str, Any]:
        def fresh() -> dict[str, Any]:
            state: dict[str, Any] = {"step": _step_tensor()}
            if grad.dim() > 1:
                shape = list(grad.shape)
                state["row_var"] = grad.new_zeros(shape[:-1] + [1])
                state["col_var"] = grad.new_zeros(shape[:-2] + [1, shape[-1]])
            else:
                state["variance"] = rustgrad.zeros_like(grad)
            return state

        return self._param_state(param, fresh)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adafactor update of every parameter that has a ``.grad``; returns the closure's loss."""
        loss = self._loss_of(closure)
        with rustgrad.no_grad():
            for group in self.param_groups:
                self._update_group(group)
        return loss

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, beta2_decay, d, weight_decay = group["lr"], group["beta2_decay"], group["d"], group["weight_decay"]
        eps1, eps2 = group["eps"]
        for param in group["params"]:
            if param.grad is None:
                continue
            grad = param.grad if not group["maximize"] else -param.grad
            state = self._init_state(param, grad)
            state["step"].add_(1)
            step = _get_value(state["step"])
            floor = _FINFO_EPS[str(grad.dtype).rsplit(".", 1)[-1]] if eps1 is None else eps1
            one_minus_beta2 = step**beta2_decay
            rho = min(lr, 1 / (step**0.5))
            alpha = max(eps2, param.norm(2).item() / (param.numel() ** 0.5)) * rho
            if weight_decay != 0:
                param.mul_(1 - lr * weight_decay)
            if grad.dim() > 1:
                row_var, col_var = state["row_var"], state["col_var"]
                row_mean = _squared(grad.norm(2, dim=-1, keepdim=True)).div_(grad.shape[-1])
                _lerp_(row_var, row_mean, one_minus_beta2)
                col_mean = _squared(grad.norm(2, dim=-2, keepdim=True)).div_(grad.shape[-2])
                _lerp_(col_var, col_mean, one_minus_beta2)
                var_estimate = row_var @ col_var
                var_estimate.div_(row_var.mean(dim=-2, keepdim=True).clamp_(min=floor))
            else:
                variance = state["variance"]
                _lerp_(variance, grad * grad, one_minus_beta2)
                var_estimate = variance.clone()
            update = var_estimate.clamp_(min=floor * floor).rsqrt_()
            update.mul_(grad)
            denom = max(1.0, update.norm(2).item() / ((update.numel() ** 0.5) * d))
            param.add_(update, alpha=_get_value(-alpha / denom))


def _squared(x: Tensor) -> Tensor:
    """``x.square_()``: ``x * x`` in place."""
    return x.mul_(x)
