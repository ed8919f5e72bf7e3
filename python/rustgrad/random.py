"""``torch.random``: the default CPU generator's seed and state, and ``fork_rng``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import rustgrad as _torch
from rustgrad import (
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)

__all__ = [
    "Generator",
    "default_generator",
    "fork_rng",
    "get_rng_state",
    "initial_seed",
    "manual_seed",
    "seed",
    "set_rng_state",
]


@contextlib.contextmanager
def fork_rng(
    devices: Any = None,
    enabled: bool = True,
    _caller: str = "fork_rng",
    _devices_kw: str = "devices",
    device_type: str = "cuda",
) -> Iterator[None]:
    """Runs the block with the default generator's state saved and restored afterwards, so that
    draws inside it do not move the stream outside (there are no accelerator generators here)."""
    if not enabled:
        yield
        return
    state = _torch.get_rng_state()
    try:
        yield
    finally:
        _torch.set_rng_state(state)
