"""``torch.optim.SparseAdam``: Adam for sparse gradients (``nn.Embedding(sparse=True)``).

rustgrad has no sparse tensors, so no gradient can ever be sparse: the optimizer is built and
checked as PyTorch's, and ``step`` raises PyTorch's error on the dense gradients it sees."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import rustgrad
from rustgrad import Tensor
from rustgrad.optim.optimizer import Optimizer, _check_hyperparameters

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    """SparseAdam: Adam's update applied only where the (sparse) gradient has values.

    Args: ``lr`` (1e-3), ``betas`` ((0.9, 0.999)), ``eps`` (1e-8), ``maximize``. A dense gradient is
    refused at ``step`` (with PyTorch's message), and every gradient here is dense.
    https://pytorch.org/docs/stable/generated/torch.optim.SparseAdam.html
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        _check_hyperparameters(
            lr,
            ("epsilon value", eps),
            ("beta parameter at index 0", betas[0], 1.0, False),
            ("beta parameter at index 1", betas[1], 1.0, False),
        )
        defaults = {"lr": lr, "betas": betas, "eps": eps, "maximize": maximize}
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Refuses the dense gradients (the only kind rustgrad has), as PyTorch does."""
        with rustgrad.no_grad():
            loss = self._loss_of(closure)
            for group in self.param_groups:
                for param in group["params"]:
                    if param.grad is not None:
                        raise RuntimeError(
                            "SparseAdam does not support dense gradients, please consider Adam instead"
                        )
        return loss
