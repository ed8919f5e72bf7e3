"""``torch.backends.mha``: whether ``MultiheadAttention`` and the transformer encoder may take PyTorch's
inference fast path. rustgrad computes the same values on its ordinary path either way; the flag
only decides whether ``TransformerEncoder`` zeroes padded positions as PyTorch's nested tensors do.
https://pytorch.org/docs/stable/backends.html#module-torch.backends.mha"""

from __future__ import annotations

__all__ = ["get_fastpath_enabled", "set_fastpath_enabled"]

_fastpath_enabled = True


def get_fastpath_enabled() -> bool:
    """Whether the fast path is enabled (True by default).
    https://pytorch.org/docs/stable/backends.html#torch.backends.mha.get_fastpath_enabled"""
    return _fastpath_enabled


def set_fastpath_enabled(value: bool) -> None:
    """Enables or disables the fast path.
    https://pytorch.org/docs/stable/backends.html#torch.backends.mha.set_fastpath_enabled"""
    global _fastpath_enabled
    _fastpath_enabled = bool(value)
