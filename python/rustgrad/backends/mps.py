"""``torch.backends.mps``: rustgrad has no Metal (Apple GPU) backend.
https://pytorch.org/docs/stable/backends.html#torch-backends-mps"""

__all__ = ["is_available", "is_built"]


def is_available() -> bool:
    """Whether MPS can be used: False. https://pytorch.org/docs/stable/backends.html#torch.backends.mps.is_available"""
    return False


def is_built() -> bool:
    """Whether this package was built with MPS: False. https://pytorch.org/docs/stable/backends.html#torch.backends.mps.is_built"""
    return False
