"""``torch.backends.mkldnn``: rustgrad does not use oneDNN (its CPU kernels are its own Rust code), so
``is_available()`` is False where PyTorch's x86 builds say True; ``enabled`` keeps PyTorch's default.
https://pytorch.org/docs/stable/backends.html#torch-backends-mkldnn"""

__all__ = ["enabled", "is_available"]

enabled = True


def is_available() -> bool:
    """Whether oneDNN is used: False. https://pytorch.org/docs/stable/backends.html#torch.backends.mkldnn.is_available"""
    return False
