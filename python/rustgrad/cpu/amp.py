"""``torch.cpu.amp``: PyTorch's deprecated spellings of ``torch.amp`` for the CPU (with its FutureWarnings).
https://pytorch.org/docs/stable/amp.html"""

from __future__ import annotations

import warnings
from typing import Any

from rustgrad.amp import autocast_mode as _autocast_mode
from rustgrad.amp import grad_scaler as _grad_scaler

__all__ = ["GradScaler", "autocast"]


class autocast(_autocast_mode.autocast):
    """``torch.cpu.amp.autocast(enabled=True, dtype=torch.bfloat16, cache_enabled=True)``: deprecated
    ``torch.autocast('cpu', ...)`` (see ``rustgrad.amp.autocast_mode`` for what casts).
    https://pytorch.org/docs/stable/amp.html#torch.cpu.amp.autocast"""

    def __init__(self, enabled: bool = True, dtype: Any = None, cache_enabled: bool = True) -> None:
        warnings.warn(
            "`torch.cpu.amp.autocast(args...)` is deprecated. Please use `torch.amp.autocast('cpu', args...)` instead.",
            FutureWarning,
            stacklevel=2,
        )
        super().__init__("cpu", enabled=enabled, dtype=dtype, cache_enabled=cache_enabled)


class GradScaler(_grad_scaler.GradScaler):
    """``torch.cpu.amp.GradScaler(...)``: deprecated ``torch.amp.GradScaler('cpu', ...)`` (scales for real).
    https://pytorch.org/docs/stable/amp.html"""

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        warnings.warn(
            "`torch.cpu.amp.GradScaler(args...)` is deprecated. Please use `torch.amp.GradScaler('cpu', args...)` instead.",
            FutureWarning,
            stacklevel=2,
        )
        super().__init__("cpu", init_scale, growth_factor, backoff_factor, growth_interval, enabled)
