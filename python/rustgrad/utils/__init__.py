"""``torch.utils``: data loading (``rustgrad.utils.data``)."""

from . import data

__all__ = ["data"]
