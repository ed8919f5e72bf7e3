"""Activation layers: ``ReLU``, ``GELU``, ``Tanh``, ``Sigmoid``, ``Softmax``, ``LogSoftmax``, ``Softmin``,
``Softsign``, ``Tanhshrink``."""

from __future__ import annotations

import rustgrad
from rustgrad import Tensor
from rustgrad.nn import functional as F
from rustgrad.nn.modules.module import Module

__all__ = ["GELU", "LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Softmin", "Softsign", "Tanh", "Tanhshrink"]


class ReLU(Module):
    """``max(0, x)`` elementwise."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """``relu(input)`` (in place if the module was built with ``inplace=True``)."""
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return "inplace=True" if self.inplace else ""


class GELU(Module):
    """``x * Phi(x)``; ``approximate='tanh'`` uses the tanh approximation."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        """``gelu(input)`` with this module's ``approximate`` setting."""
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    """Applies the hyperbolic tangent element-wise.
    https://pytorch.org/docs/stable/generated/torch.nn.Tanh.html"""
    def forward(self, input: Tensor) -> Tensor:
        """``tanh(input)``."""
        return rustgrad.tanh(input)


class Sigmoid(Module):
    """Applies the logistic sigmoid element-wise.
    https://pytorch.org/docs/stable/generated/torch.nn.Sigmoid.html"""
    def forward(self, input: Tensor) -> Tensor:
        """``sigmoid(input)``."""
        return rustgrad.sigmoid(input)


def _check_dim(dim: int | None) -> None:
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool)):
        raise TypeError(f"dim must be an int or None, got {type(dim)}")


class Softmax(Module):
    """``exp(x) / exp(x).sum(dim)`` along ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        _check_dim(dim)
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        """``softmax(input, dim)``."""
        return F.softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``log(softmax(x))`` along ``dim``, computed stably."""

    def __init__(self, dim: int | None = None) -> None:
        _check_dim(dim)
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        """``log_softmax(input, dim)``."""
        return F.log_softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"dim={self.dim}"


class Softmin(Module):
    """``softmax(-x)`` along ``dim`` (see ``functional.softmin``).
    https://pytorch.org/docs/stable/generated/torch.nn.Softmin.html"""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        """``softmin(input, dim)``.
        https://pytorch.org/docs/stable/generated/torch.nn.Softmin.html#torch.nn.Softmin.forward"""
        return F.softmin(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr.
        https://pytorch.org/docs/stable/generated/torch.nn.Softmin.html#torch.nn.Softmin.extra_repr"""
        return f"dim={self.dim}"


class Softsign(Module):
    """``x / (1 + |x|)`` element-wise (see ``functional.softsign``).
    https://pytorch.org/docs/stable/generated/torch.nn.Softsign.html"""

    def forward(self, input: Tensor) -> Tensor:
        """``softsign(input)``.
        https://pytorch.org/docs/stable/generated/torch.nn.Softsign.html#torch.nn.Softsign.forward"""
        return F.softsign(input)


class Tanhshrink(Module):
    """``x - tanh(x)`` element-wise (see ``functional.tanhshrink``).
    https://pytorch.org/docs/stable/generated/torch.nn.Tanhshrink.html"""

    def forward(self, input: Tensor) -> Tensor:
        """``tanhshrink(input)``.
        https://pytorch.org/docs/stable/generated/torch.nn.Tanhshrink.html#torch.nn.Tanhshrink.forward"""
        return F.tanhshrink(input)
