"""``torch.cuda.amp``: PyTorch's deprecated spellings of ``torch.amp`` for CUDA (with its FutureWarnings).
https://pytorch.org/docs/stable/amp.html"""

from __future__ import annotations

import warnings
from typing import Any, Callable

from rustgrad.amp import autocast_mode as _autocast_mode
from rustgrad.amp import grad_scaler as _grad_scaler

__all__ = ["GradScaler", "autocast", "custom_bwd", "custom_fwd"]


class autocast(_autocast_mode.autocast):
    """``torch.cuda.amp.autocast(enabled=True, dtype=torch.float16, cache_enabled=True)``: deprecated
    ``torch.autocast('cuda', ...)``; disables itself here (no CUDA).
    https://pytorch.org/docs/stable/amp.html#torch.cuda.amp.autocast"""

    def __init__(self, enabled: bool = True, dtype: Any = None, cache_enabled: bool = True) -> None:
        warnings.warn(
            "`torch.cuda.amp.autocast(args...)` is deprecated. Please use `torch.amp.autocast('cuda', args...)` instead.",
            FutureWarning,
            stacklevel=2,
        )
        super().__init__("cuda", enabled=enabled, dtype=dtype, cache_enabled=cache_enabled)


class GradScaler(_grad_scaler.GradScaler):
    """``torch.cuda.amp.GradScaler(...)``: deprecated ``torch.amp.GradScaler('cuda', ...)``; disables
    itself here (no CUDA), so it passes through. https://pytorch.org/docs/stable/amp.html#torch.cuda.amp.GradScaler"""

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        warnings.warn(
            "`torch.cuda.amp.GradScaler(args...)` is deprecated. Please use `torch.amp.GradScaler('cuda', args...)` instead.",
            FutureWarning,
            stacklevel=2,
        )
        super().__init__("cuda", init_scale, growth_factor, backoff_factor, growth_interval, enabled)


def custom_fwd(fwd: Callable | None = None, *, cast_inputs: Any = None) -> Any:
    """Deprecated ``torch.amp.custom_fwd(device_type='cuda')``. https://pytorch.org/docs/stable/amp.html"""
    warnings.warn(
        "`torch.cuda.amp.custom_fwd(args...)` is deprecated. Please use "
        "`torch.amp.custom_fwd(args..., device_type='cuda')` instead.",
        FutureWarning,
        stacklevel=2,
    )
    return _autocast_mode.custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def custom_bwd(bwd: Callable | None = None) -> Any:
    """Deprecated ``torch.amp.custom_bwd(device_type='cuda')``. https://pytorch.org/docs/stable/amp.html"""
    warnings.warn(
        "`torch.cuda.amp.custom_bwd(args...)` is deprecated. Please use "
        "`torch.amp.custom_bwd(args..., device_type='cuda')` instead.",
        FutureWarning,
        stacklevel=2,
    )
    return _autocast_mode.custom_bwd(bwd, device_type="cuda")
