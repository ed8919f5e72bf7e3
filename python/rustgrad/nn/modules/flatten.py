"""``nn.Flatten``."""

from __future__ import annotations

from rustgrad import Tensor
from rustgrad.nn.modules.module import Module

__all__ = ["Flatten"]


class Flatten(Module):
    """Flattens dimensions ``start_dim`` through ``end_dim`` (by default all but the batch dimension)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        """``input.flatten(start_dim, end_dim)``."""
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
