"""``torch.backends.openmp``: rustgrad's parallel kernels use Rust threads (rayon), not OpenMP.
https://pytorch.org/docs/stable/backends.html#torch-backends-openmp"""

__all__ = ["is_available"]


def is_available() -> bool:
    """Whether OpenMP is used: False. https://pytorch.org/docs/stable/backends.html#torch.backends.openmp.is_available"""
    return False
