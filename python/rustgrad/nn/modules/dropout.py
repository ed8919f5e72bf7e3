"""``nn.Dropout``."""

from __future__ import annotations

from rustgrad import Tensor
from rustgrad.nn import functional as F
from rustgrad.nn.modules.module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """In training mode zeroes each element with probability ``p`` and scales the rest by ``1/(1-p)``."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """``dropout(input, p, training)``: zeroes elements with probability ``p`` in training mode."""
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"p={self.p}, inplace={self.inplace}"
