"""``torch.backends.cudnn``: cuDNN is not part of rustgrad; its flags keep PyTorch's defaults and can
be set (``cudnn.benchmark = True``) without effect. https://pytorch.org/docs/stable/backends.html#torch-backends-cudnn"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["allow_tf32", "benchmark", "benchmark_limit", "deterministic", "enabled", "flags", "is_available", "version"]

enabled = True
benchmark = False
benchmark_limit = 10
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """Whether cuDNN can be used: False. https://pytorch.org/docs/stable/backends.html#torch.backends.cudnn.is_available"""
    return False


def version() -> Any:
    """The cuDNN version: None (not built with cuDNN). https://pytorch.org/docs/stable/backends.html#torch.backends.cudnn.version"""
    return None


def is_acceptable(tensor: Any) -> bool:
    """Whether cuDNN could process ``tensor``: False."""
    return False


@contextlib.contextmanager
def flags(
    enabled: bool = False,
    benchmark: bool = False,
    benchmark_limit: int = 10,
    deterministic: bool = False,
    allow_tf32: bool = True,
) -> Iterator[None]:
    """Sets the cuDNN flags for the duration of a ``with`` block, then restores them."""
    names = ("enabled", "benchmark", "benchmark_limit", "deterministic", "allow_tf32")
    module = globals()
    saved = {n: module[n] for n in names}
    module.update(zip(names, (enabled, benchmark, benchmark_limit, deterministic, allow_tf32)))
    try:
        yield
    finally:
        module.update(saved)
