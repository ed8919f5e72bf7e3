"""``torch.backends.mkl``: rustgrad does not use Intel MKL. https://pytorch.org/docs/stable/backends.html#torch-backends-mkl"""

__all__ = ["is_available"]


def is_available() -> bool:
    """Whether MKL is used: False. https://pytorch.org/docs/stable/backends.html#torch.backends.mkl.is_available"""
    return False
