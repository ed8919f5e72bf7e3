"""``torch.backends.cuda``: rustgrad is not built with CUDA; the matmul flags keep PyTorch's defaults
and can be set without effect. https://pytorch.org/docs/stable/backends.html#torch-backends-cuda"""

from __future__ import annotations

__all__ = [
    "enable_flash_sdp",
    "enable_math_sdp",
    "enable_mem_efficient_sdp",
    "flash_sdp_enabled",
    "is_built",
    "math_sdp_enabled",
    "matmul",
    "mem_efficient_sdp_enabled",
]


class _MatmulFlags:
    """``torch.backends.cuda.matmul``: cuBLAS precision flags (settable, no effect here)."""

    def __init__(self) -> None:
        self.allow_tf32 = False
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True


matmul = _MatmulFlags()
_sdp = {"flash": True, "mem_efficient": True, "math": True}


def is_built() -> bool:
    """Whether this package was built with CUDA: False. https://pytorch.org/docs/stable/backends.html#torch.backends.cuda.is_built"""
    return False


def flash_sdp_enabled() -> bool:
    """Whether flash scaled-dot-product attention is enabled (a flag; no effect here)."""
    return _sdp["flash"]


def enable_flash_sdp(enabled: bool) -> None:
    """Sets the flash attention flag (no effect here)."""
    _sdp["flash"] = bool(enabled)


def mem_efficient_sdp_enabled() -> bool:
    """Whether memory-efficient attention is enabled (a flag; no effect here)."""
    return _sdp["mem_efficient"]


def enable_mem_efficient_sdp(enabled: bool) -> None:
    """Sets the memory-efficient attention flag (no effect here)."""
    _sdp["mem_efficient"] = bool(enabled)


def math_sdp_enabled() -> bool:
    """Whether the math attention path is enabled (a flag; no effect here)."""
    return _sdp["math"]


def enable_math_sdp(enabled: bool) -> None:
    """Sets the math attention flag (no effect here)."""
    _sdp["math"] = bool(enabled)
