"""``torch.amp``: automatic mixed precision (``autocast`` regions and ``GradScaler``).
https://pytorch.org/docs/stable/amp.html"""

from rustgrad.amp.autocast_mode import (
    autocast,
    custom_bwd,
    custom_fwd,
    is_autocast_available,
)
from rustgrad.amp.grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "custom_bwd", "custom_fwd", "is_autocast_available"]
