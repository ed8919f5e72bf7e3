"""``torch.backends.opt_einsum``: rustgrad does not use the opt_einsum package to order contractions.
https://pytorch.org/docs/stable/backends.html#torch-backends-opt-einsum"""

from __future__ import annotations

__all__ = ["enabled", "get_opt_einsum", "is_available", "strategy"]

enabled = False
strategy: str | None = None


def is_available() -> bool:
    """Whether opt_einsum is used: False. https://pytorch.org/docs/stable/backends.html#torch.backends.opt_einsum.is_available"""
    return False


def get_opt_einsum() -> None:
    """The opt_einsum package if used: None."""
    return
