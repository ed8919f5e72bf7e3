"""Padding layers: zero, constant, reflection, replication and circular padding."""

from __future__ import annotations

from typing import Any

from rustgrad import Tensor
from rustgrad.nn import functional as F
from rustgrad.nn.modules.module import Module

__all__ = [
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
]


def _pads(padding: Any, dims: int) -> tuple:
    if isinstance(padding, (list, tuple)):
        return tuple(padding)
    return (padding,) * (2 * dims)


class _PadNd(Module):
    _dims = 1
    _mode = "constant"

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _pads(padding, self._dims)

    def forward(self, input: Tensor) -> Tensor:
        """``F.pad`` of ``input`` with this layer's padding and mode."""
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"{self.padding}"


class _ConstantPadNd(Module):
    _dims = 1

    def __init__(self, padding: Any, value: float) -> None:
        super().__init__()
        self.padding = _pads(padding, self._dims)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        """``input`` padded with ``value``."""
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pads the last dim with a constant.
    https://pytorch.org/docs/stable/generated/torch.nn.ConstantPad1d.html"""

    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pads the last 2 dims with a constant.
    https://pytorch.org/docs/stable/generated/torch.nn.ConstantPad2d.html"""

    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pads the last 3 dims with a constant.
    https://pytorch.org/docs/stable/generated/torch.nn.ConstantPad3d.html"""

    _dims = 3


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"{self.padding}"


class ZeroPad1d(_ZeroPadNd):
    """Pads the last dim with zeros.
    https://pytorch.org/docs/stable/generated/torch.nn.ZeroPad1d.html"""

    _dims = 1


class ZeroPad2d(_ZeroPadNd):
    """Pads the last 2 dims with zeros.
    https://pytorch.org/docs/stable/generated/torch.nn.ZeroPad2d.html"""

    _dims = 2


class ZeroPad3d(_ZeroPadNd):
    """Pads the last 3 dims with zeros.
    https://pytorch.org/docs/stable/generated/torch.nn.ZeroPad3d.html"""

    _dims = 3


class ReflectionPad1d(_PadNd):
    """Pads the last dim with its reflection.
    https://pytorch.org/docs/stable/generated/torch.nn.ReflectionPad1d.html"""

    _dims, _mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Pads the last 2 dims with their reflection.
    https://pytorch.org/docs/stable/generated/torch.nn.ReflectionPad2d.html"""

    _dims, _mode = 2, "reflect"


class ReflectionPad3d(_PadNd):
    """Pads the last 3 dims with their reflection.
    https://pytorch.org/docs/stable/generated/torch.nn.ReflectionPad3d.html"""

    _dims, _mode = 3, "reflect"


class ReplicationPad1d(_PadNd):
    """Pads the last dim by repeating its edge values.
    https://pytorch.org/docs/stable/generated/torch.nn.ReplicationPad1d.html"""

    _dims, _mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Pads the last 2 dims by repeating their edge values.
    https://pytorch.org/docs/stable/generated/torch.nn.ReplicationPad2d.html"""

    _dims, _mode = 2, "replicate"


class ReplicationPad3d(_PadNd):
    """Pads the last 3 dims by repeating their edge values.
    https://pytorch.org/docs/stable/generated/torch.nn.ReplicationPad3d.html"""

    _dims, _mode = 3, "replicate"


class CircularPad1d(_PadNd):
    """Pads the last dim by wrapping around.
    https://pytorch.org/docs/stable/generated/torch.nn.CircularPad1d.html"""

    _dims, _mode = 1, "circular"


class CircularPad2d(_PadNd):
    """Pads the last 2 dims by wrapping around.
    https://pytorch.org/docs/stable/generated/torch.nn.CircularPad2d.html"""

    _dims, _mode = 2, "circular"


class CircularPad3d(_PadNd):
    """Pads the last 3 dims by wrapping around.
    https://pytorch.org/docs/stable/generated/torch.nn.CircularPad3d.html"""

    _dims, _mode = 3, "circular"
