"""Dropout layers: ``Dropout``, the channel-wise ``Dropout1d``/``2d``/``3d``, and the SELU-preserving
``AlphaDropout``/``FeatureAlphaDropout``."""

from __future__ import annotations

from rustgrad import Tensor
from rustgrad.nn import functional as F
from rustgrad.nn.modules.module import Module

__all__ = ["AlphaDropout", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "FeatureAlphaDropout"]


class _DropoutNd(Module):
    """The dropout layers' shared constructor (``p`` checked to be a probability) and repr."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr.
        https://pytorch.org/docs/stable/generated/torch.nn.Dropout.html#torch.nn.Dropout.extra_repr"""
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """In training mode zeroes each element with probability ``p`` and scales the rest by ``1/(1-p)``.
    https://pytorch.org/docs/stable/generated/torch.nn.Dropout.html"""

    def forward(self, input: Tensor) -> Tensor:
        """``dropout(input, p, training)``: zeroes elements with probability ``p`` in training mode."""
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    """In training mode zeroes whole channels of ``(N, C, L)`` or ``(C, L)`` input with probability ``p``
    (see ``functional.dropout1d``).
    https://pytorch.org/docs/stable/generated/torch.nn.Dropout1d.html"""

    def forward(self, input: Tensor) -> Tensor:
        """``dropout1d(input, p, training)``.
        https://pytorch.org/docs/stable/generated/torch.nn.Dropout1d.html#torch.nn.Dropout1d.forward"""
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """In training mode zeroes whole channels of ``(N, C, H, W)`` input with probability ``p``
    (see ``functional.dropout2d``).
    https://pytorch.org/docs/stable/generated/torch.nn.Dropout2d.html"""

    def forward(self, input: Tensor) -> Tensor:
        """``dropout2d(input, p, training)``.
        https://pytorch.org/docs/stable/generated/torch.nn.Dropout2d.html#torch.nn.Dropout2d.forward"""
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    """In training mode zeroes whole channels of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input with
    probability ``p`` (see ``functional.dropout3d``).
    https://pytorch.org/docs/stable/generated/torch.nn.Dropout3d.html"""

    def forward(self, input: Tensor) -> Tensor:
        """``dropout3d(input, p, training)``.
        https://pytorch.org/docs/stable/generated/torch.nn.Dropout3d.html#torch.nn.Dropout3d.forward"""
        return F.dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Dropout for SELU networks, keeping zero mean and unit variance (see ``functional.alpha_dropout``);
    ``inplace`` is accepted and ignored, as in PyTorch.
    https://pytorch.org/docs/stable/generated/torch.nn.AlphaDropout.html"""

    def forward(self, input: Tensor) -> Tensor:
        """``alpha_dropout(input, p, training)``.
        https://pytorch.org/docs/stable/generated/torch.nn.AlphaDropout.html#torch.nn.AlphaDropout.forward"""
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    """``AlphaDropout`` of whole channels (see ``functional.feature_alpha_dropout``).
    https://pytorch.org/docs/stable/generated/torch.nn.FeatureAlphaDropout.html"""

    def forward(self, input: Tensor) -> Tensor:
        """``feature_alpha_dropout(input, p, training)``.
        https://pytorch.org/docs/stable/generated/torch.nn.FeatureAlphaDropout.html#torch.nn.FeatureAlphaDropout.forward"""
        return F.feature_alpha_dropout(input, self.p, self.training)
