"""``torch.optim.Muon``: momentum SGD whose update matrix is orthogonalized by Newton-Schulz
iterations (in bfloat16, as PyTorch) before it is applied; for 2-D parameters only."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import rustgrad
from rustgrad import Tensor
from rustgrad.optim.optimizer import Optimizer, _get_value, _lerp_

__all__ = ["Muon"]

_ADJUST_LR_FNS = ("original", "match_rms_adamw")


class Muon(Optimizer):
    """Muon. For each 2-D parameter: the momentum ``buf = lerp(buf, g, 1 - momentum)``; the update
    ``lerp(g, buf, momentum)`` (Nesterov) or ``buf``, orthogonalized in bfloat16 by ``ns_steps``
    Newton-Schulz iterations ``X = a X + (b A + c A²) X`` with ``A = X Xᵀ`` (``ns_coefficients`` =
    (a, b, c), X first scaled to unit norm, ``eps`` guarding the division); then decoupled weight
    decay ``p *= 1 - lr * weight_decay`` and ``p -= adjusted_lr * update``, where ``adjusted_lr`` is
    ``lr * sqrt(max(1, rows / cols))`` (``adjust_lr_fn`` None or ``'original'``) or
    ``lr * 0.2 * sqrt(max(rows, cols))`` (``'match_rms_adamw'``).

    Args: ``lr`` (1e-3), ``weight_decay`` (0.1), ``momentum`` (0.95), ``nesterov`` (True),
    ``ns_coefficients`` ((3.4445, -4.775, 2.0315)), ``eps`` (1e-7), ``ns_steps`` (5), ``adjust_lr_fn``.
    https://pytorch.org/docs/stable/generated/torch.optim.Muon.html
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Tensor = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in _ADJUST_LR_FNS:
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {
            "lr": lr,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_coefficients": ns_coefficients,
            "eps": eps,
            "ns_steps": ns_steps,
            "adjust_lr_fn": adjust_lr_fn,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(
                        f"Muon only supports 2D parameters whereas we found a parameter with size: {p.size()}"
                    )

    _TENSOR_STATE_KEYS: ClassVar[tuple[str, ...] | None] = None

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Muon update of every parameter that has a ``.grad``; returns the closure's loss."""
        loss = self._loss_of(closure)
        with rustgrad.no_grad():
            for group in self.param_groups:
                lr, weight_decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    grad = param.grad
                    state = self.state[param]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = rustgrad.zeros_like(grad)
                    buf = state["momentum_buffer"]
                    _lerp_(buf, grad, 1 - momentum)
                    update = _lerp_(grad.clone(), buf, momentum) if group["nesterov"] else buf
                    update = _orthogonalize(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
                    adjusted_lr = _adjusted_lr(lr, group["adjust_lr_fn"], param.shape)
                    param.mul_(1 - lr * weight_decay)
                    param.add_(update, alpha=_get_value(-adjusted_lr))
        return loss


def _adjusted_lr(lr: Any, adjust_lr_fn: str | None, shape: Any) -> Any:
    """``lr`` scaled for a ``rows x cols`` update (see :class:`Muon`)."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    return lr * 0.2 * math.sqrt(max(rows, cols))


def _bf16_addmm(c: Tensor, a: Tensor, b: Tensor, beta: float, alpha: float = 1.0) -> Tensor:
    """``addmm(c, a, b, beta=, alpha=)`` on bfloat16 operands as PyTorch's CPU kernel rounds it: the
    product summed and ``beta c + alpha ab`` formed in float32, rounded to bfloat16 once."""
    product = a.float() @ b.float()
    return (c.float() * beta + product * alpha).bfloat16()


def _orthogonalize(update: Tensor, coefficients: Any, steps: int, eps: float) -> Tensor:
    """Newton-Schulz iterations towards the nearest semi-orthogonal matrix, in bfloat16."""
    if len(coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    if steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    a, b, c = coefficients
    x = update.bfloat16()
    tall = update.shape[0] > update.shape[1]
    if tall:
        x = x.T
    x = x.div(x.norm().clamp(min=eps))
    for _ in range(steps):
        gram = x @ x.T
        gram_update = _bf16_addmm(gram, gram, gram, beta=b, alpha=c)
        x = _bf16_addmm(x, gram_update, x, beta=a)
    return x.T if tall else x
