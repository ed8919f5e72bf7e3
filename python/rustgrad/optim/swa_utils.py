"""``torch.optim.swa_utils``: stochastic weight averaging and exponential moving averages of a model
(``AveragedModel``), the SWA learning-rate schedule (``SWALR``) and ``update_bn``.
https://pytorch.org/docs/stable/optim.html#weight-averaging-swa-and-ema"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from copy import deepcopy
from typing import Any

import rustgrad
from rustgrad import Tensor
from rustgrad.nn.modules.module import Module
from rustgrad.optim.lr_scheduler import LRScheduler, _format_param, _warn_get_lr_called_within_step
from rustgrad.optim.optimizer import Optimizer

__all__ = [
    "SWALR",
    "AveragedModel",
    "get_ema_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_avg_fn",
    "get_swa_multi_avg_fn",
    "update_bn",
]


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable:
    """An in-place exponential moving average over lists of tensors: ``ema = lerp(ema, current, 1 - decay)``.
    https://pytorch.org/docs/stable/optim.html#weight-averaging-swa-and-ema"""

    @rustgrad.no_grad()
    def ema_update(ema_params: list, current_params: list, num_averaged: Any) -> None:
        for ema, current in zip(ema_params, current_params):
            if ema.is_floating_point():
                ema.lerp_(current, 1 - decay)
            else:
                ema.copy_(ema * decay + current * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn() -> Callable:
    """An in-place running mean over lists of tensors: ``avg += (current - avg) / (n + 1)``.
    https://pytorch.org/docs/stable/optim.html#weight-averaging-swa-and-ema"""

    @rustgrad.no_grad()
    def swa_update(averaged_params: list, current_params: list, num_averaged: Any) -> None:
        for avg, current in zip(averaged_params, current_params):
            if avg.is_floating_point():
                weight = 1 / (num_averaged + 1)
                avg.lerp_(current, weight.item() if isinstance(weight, Tensor) else weight)
            else:
                avg.copy_(avg + (current - avg) / (num_averaged + 1))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable:
    """``ema, current, n -> decay * ema + (1 - decay) * current``.
    https://pytorch.org/docs/stable/optim.html#weight-averaging-swa-and-ema"""

    @rustgrad.no_grad()
    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> Callable:
    """``avg, current, n -> avg + (current - avg) / (n + 1)`` (the running mean).
    https://pytorch.org/docs/stable/optim.html#weight-averaging-swa-and-ema"""

    @rustgrad.no_grad()
    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` whose parameters (and buffers with ``use_buffers=True``) hold an average of
    the model's over the ``update_parameters`` calls: the running mean by default (SWA), or what
    ``avg_fn(avg, current, n)`` returns, or what ``multi_avg_fn(avgs, currents, n)`` writes in place.
    ``n_averaged`` (an int64 buffer) counts the calls; the first one copies. Calling it runs the copy.
    https://pytorch.org/docs/stable/generated/torch.optim.swa_utils.AveragedModel.html
    """

    def __init__(
        self,
        model: Module,
        device: Any = None,
        avg_fn: Callable | None = None,
        multi_avg_fn: Callable | None = None,
        use_buffers: bool = False,
    ) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", rustgrad.tensor(0, dtype=rustgrad.long, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Runs the averaged copy of the model."""
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Folds ``model``'s current parameters into the average (copies them on the first call)."""
        if self.use_buffers:
            mine: Iterable[Tensor] = itertools.chain(self.module.parameters(), self.module.buffers())
            theirs: Iterable[Tensor] = itertools.chain(model.parameters(), model.buffers())
        else:
            mine, theirs = self.parameters(), model.parameters()
        averaged, current = [], []
        first = int(self.n_averaged.item()) == 0
        for p_avg, p_model in zip(mine, theirs):
            p_cur = p_model.detach()
            averaged.append(p_avg.detach())
            current.append(p_cur)
            if first:
                p_avg.detach().copy_(p_cur)
        if not first:
            if self.multi_avg_fn is not None:
                self.multi_avg_fn(averaged, current, self.n_averaged)
            else:
                avg_fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
                for p_avg, p_cur in zip(averaged, current):
                    p_avg.copy_(avg_fn(p_avg, p_cur, self.n_averaged))
        if not self.use_buffers:
            # Buffers are not averaged: they follow the source model.
            for b_avg, b_model in zip(self.module.buffers(), model.buffers()):
                b_avg.detach().copy_(b_model.detach())
        self.n_averaged += 1


@rustgrad.no_grad()
def update_bn(loader: Iterable[Any], model: Module, device: Any = None) -> None:
    """Recomputes the running statistics of ``model``'s batch-norm layers with one pass over ``loader``
    (a model without batch norm is left as is).
    https://pytorch.org/docs/stable/optim.html#weight-averaging-swa-and-ema"""
    momenta = {}
    for module in model.modules():
        if hasattr(module, "running_mean") and hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    for batch in loader:
        if isinstance(batch, (list, tuple)):
            batch = batch[0]
        if device is not None:
            batch = batch.to(device)
        model(batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneals each group's lr to its ``swa_lr`` over ``anneal_epochs`` steps (``'cos'`` or
    ``'linear'``), then holds it there.
    https://pytorch.org/docs/stable/generated/torch.optim.swa_utils.SWALR.html
    """

    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr: float,
        anneal_epochs: int = 10,
        anneal_strategy: str = "cos",
        last_epoch: int = -1,
    ) -> None:
        swa_lrs = _format_param("swa_lr", optimizer, swa_lr)
        for lr, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self) -> list[Any]:
        """The lrs of this step: the previous lr recovered from the schedule, moved towards ``swa_lr``."""
        _warn_get_lr_called_within_step(self)
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [
            self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha) for group in self.optimizer.param_groups
        ]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [group["swa_lr"] * alpha + lr * (1 - alpha) for group, lr in zip(self.optimizer.param_groups, prev_lrs)]
