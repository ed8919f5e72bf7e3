"""``torch.utils``: data loading (``rustgrad.utils.data``)."""

from . import checkpoint, data

__all__ = ["checkpoint", "data"]
