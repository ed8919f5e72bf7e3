"""``torch.xpu`` (Intel GPUs) on a package without XPU: the answers of PyTorch built without XPU.
https://pytorch.org/docs/stable/xpu.html"""

from __future__ import annotations

from typing import Any

__all__ = ["current_device", "device_count", "empty_cache", "is_available", "manual_seed", "manual_seed_all", "synchronize"]


def _not_compiled() -> AssertionError:
    return AssertionError("Torch not compiled with XPU enabled")


def is_available() -> bool:
    """Whether an XPU can be used: False. https://pytorch.org/docs/stable/generated/torch.xpu.is_available.html"""
    return False


def device_count() -> int:
    """The number of XPUs: 0. https://pytorch.org/docs/stable/generated/torch.xpu.device_count.html"""
    return 0


def manual_seed(seed: Any) -> None:
    """Seeds the current XPU's generator: accepted and ignored. https://pytorch.org/docs/stable/generated/torch.xpu.manual_seed.html"""
    int(seed)


def manual_seed_all(seed: Any) -> None:
    """Seeds every XPU's generator: accepted and ignored. https://pytorch.org/docs/stable/generated/torch.xpu.manual_seed_all.html"""
    int(seed)


def empty_cache() -> None:
    """Releases the XPU memory cache: nothing to release. https://pytorch.org/docs/stable/generated/torch.xpu.empty_cache.html"""


def current_device() -> int:
    """The current XPU's index: raises (no XPU). https://pytorch.org/docs/stable/generated/torch.xpu.current_device.html"""
    raise _not_compiled()


def synchronize(device: Any = None) -> None:
    """Waits for an XPU: raises (no XPU). https://pytorch.org/docs/stable/generated/torch.xpu.synchronize.html"""
    raise _not_compiled()
