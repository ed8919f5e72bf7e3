"""``torch.mps`` (Apple GPUs) on a package without MPS: questions answer as PyTorch built without MPS
does, and what needs the backend raises its ``RuntimeError``. https://pytorch.org/docs/stable/mps.html"""

from __future__ import annotations

from typing import Any

__all__ = [
    "current_allocated_memory",
    "device_count",
    "driver_allocated_memory",
    "empty_cache",
    "get_rng_state",
    "is_available",
    "manual_seed",
    "recommended_max_memory",
    "seed",
    "set_rng_state",
    "synchronize",
]


def _no_mps(what: str) -> RuntimeError:
    return RuntimeError(f"Cannot execute {what}() without MPS backend.")


def is_available() -> bool:
    """Whether an MPS device can be used: False. https://pytorch.org/docs/stable/mps.html"""
    return False


def device_count() -> int:
    """The number of MPS devices: 0. https://pytorch.org/docs/stable/generated/torch.mps.device_count.html"""
    return 0


def manual_seed(seed: Any) -> None:
    """Seeds the MPS generator: ignored without MPS (as PyTorch). https://pytorch.org/docs/stable/generated/torch.mps.manual_seed.html"""
    int(seed)


def seed() -> None:
    """Seeds the MPS generator randomly: raises without MPS. https://pytorch.org/docs/stable/generated/torch.mps.seed.html"""
    raise _no_mps("getDefaultGenerator")


def get_rng_state(device: Any = "mps") -> Any:
    """The MPS generator's state: raises without MPS. https://pytorch.org/docs/stable/generated/torch.mps.get_rng_state.html"""
    raise _no_mps("getDefaultGenerator")


def set_rng_state(new_state: Any, device: Any = "mps") -> None:
    """Sets the MPS generator's state: raises without MPS. https://pytorch.org/docs/stable/generated/torch.mps.set_rng_state.html"""
    raise _no_mps("getDefaultGenerator")


def synchronize() -> None:
    """Waits for the MPS device: raises without MPS. https://pytorch.org/docs/stable/generated/torch.mps.synchronize.html"""
    raise _no_mps("deviceSynchronize")


def empty_cache() -> None:
    """Releases the MPS memory cache: raises without MPS. https://pytorch.org/docs/stable/generated/torch.mps.empty_cache.html"""
    raise _no_mps("emptyCache")


def current_allocated_memory() -> int:
    """Bytes held by MPS tensors: raises without MPS. https://pytorch.org/docs/stable/generated/torch.mps.current_allocated_memory.html"""
    raise _no_mps("getCurrentAllocatedMemory")


def driver_allocated_memory() -> int:
    """Bytes the MPS driver holds: raises without MPS. https://pytorch.org/docs/stable/generated/torch.mps.driver_allocated_memory.html"""
    raise _no_mps("getDriverAllocatedMemory")


def recommended_max_memory() -> int:
    """The MPS working-set limit: raises without MPS. https://pytorch.org/docs/stable/generated/torch.mps.recommended_max_memory.html"""
    raise _no_mps("getRecommendedMaxMemory")
