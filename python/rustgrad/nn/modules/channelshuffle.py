"""``ChannelShuffle``: interleaves groups of channels."""

from __future__ import annotations

from rustgrad import Tensor
from rustgrad.nn import functional as F
from rustgrad.nn.modules.module import Module

__all__ = ["ChannelShuffle"]


class ChannelShuffle(Module):
    """Splits the channels of ``[N, C, *]`` into ``groups`` and interleaves them (see ``functional.channel_shuffle``).
    https://pytorch.org/docs/stable/generated/torch.nn.ChannelShuffle.html"""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input: Tensor) -> Tensor:
        """``channel_shuffle(input, groups)``.
        https://pytorch.org/docs/stable/generated/torch.nn.ChannelShuffle.html"""
        return F.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        """The number of groups, shown in the module's repr."""
        return f"groups={self.groups}"
