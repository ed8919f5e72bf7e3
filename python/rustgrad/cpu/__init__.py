"""``torch.cpu``: the CPU as a device module (always available, one device).
https://pytorch.org/docs/stable/cpu.html"""

from __future__ import annotations

from typing import Any

from rustgrad.cpu import amp

__all__ = ["amp", "current_device", "device_count", "is_available", "synchronize"]


def is_available() -> bool:
    """Whether the CPU is available: True. https://pytorch.org/docs/stable/generated/torch.cpu.is_available.html"""
    return True


def device_count() -> int:
    """The number of CPU devices: 1. https://pytorch.org/docs/stable/generated/torch.cpu.device_count.html"""
    return 1


def current_device() -> str:
    """The current CPU device: ``'cpu'``. https://pytorch.org/docs/stable/generated/torch.cpu.current_device.html"""
    return "cpu"


def synchronize(device: Any = None) -> None:
    """Waits for the CPU's work: it is always done. https://pytorch.org/docs/stable/generated/torch.cpu.synchronize.html"""
