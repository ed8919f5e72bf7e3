"""``torch.accelerator``: the device-generic accelerator API. rustgrad is built for the CPU alone, so
there is no accelerator: ``current_accelerator()`` is None (as in PyTorch's CPU build), nothing is
available, and the calls that need a device raise. https://pytorch.org/docs/stable/accelerator.html"""

from __future__ import annotations

from typing import Any

__all__ = [
    "current_accelerator",
    "current_device_index",
    "device_count",
    "is_available",
    "set_device_index",
    "synchronize",
]


def _no_accelerator() -> RuntimeError:
    return RuntimeError("No accelerator is available: rustgrad is built for the CPU only")


def current_accelerator(check_available: bool = False) -> Any:
    """The accelerator this build was compiled for: None (CPU only).
    https://pytorch.org/docs/stable/generated/torch.accelerator.current_accelerator.html"""
    return None


def is_available() -> bool:
    """Whether an accelerator can be used: False. https://pytorch.org/docs/stable/generated/torch.accelerator.is_available.html"""
    return False


def device_count() -> int:
    """The number of accelerator devices: 0. https://pytorch.org/docs/stable/generated/torch.accelerator.device_count.html"""
    return 0


def current_device_index() -> int:
    """The current accelerator device index: raises (none). https://pytorch.org/docs/stable/generated/torch.accelerator.current_device_index.html"""
    raise _no_accelerator()


def set_device_index(device: Any, /) -> None:
    """Selects an accelerator device: raises (none). https://pytorch.org/docs/stable/generated/torch.accelerator.set_device_index.html"""
    raise _no_accelerator()


def synchronize(device: Any = None, /) -> None:
    """Waits for an accelerator device: raises (none). https://pytorch.org/docs/stable/generated/torch.accelerator.synchronize.html"""
    raise _no_accelerator()
