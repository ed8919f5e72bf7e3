"""``PixelShuffle`` and ``PixelUnshuffle``: depth-to-space and space-to-depth rearrangements."""

from __future__ import annotations

from rustgrad import Tensor
from rustgrad.nn import functional as F
from rustgrad.nn.modules.module import Module

__all__ = ["PixelShuffle", "PixelUnshuffle"]


class PixelShuffle(Module):
    """Rearranges ``[*, C r^2, H, W]`` into ``[*, C, H r, W r]`` (see ``functional.pixel_shuffle``).
    https://pytorch.org/docs/stable/generated/torch.nn.PixelShuffle.html"""

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        """``pixel_shuffle(input, upscale_factor)``.
        https://pytorch.org/docs/stable/generated/torch.nn.PixelShuffle.html"""
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        """The upscale factor, shown in the module's repr."""
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """Rearranges ``[*, C, H r, W r]`` into ``[*, C r^2, H, W]`` (see ``functional.pixel_unshuffle``).
    https://pytorch.org/docs/stable/generated/torch.nn.PixelUnshuffle.html"""

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Tensor) -> Tensor:
        """``pixel_unshuffle(input, downscale_factor)``.
        https://pytorch.org/docs/stable/generated/torch.nn.PixelUnshuffle.html"""
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        """The downscale factor, shown in the module's repr."""
        return f"downscale_factor={self.downscale_factor}"
