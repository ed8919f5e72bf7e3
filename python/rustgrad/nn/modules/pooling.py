"""Pooling layers: max, average, adaptive and max-unpooling in 1, 2 and 3 dims."""

from __future__ import annotations

from typing import Any

from rustgrad import Tensor
from rustgrad.nn import functional as F
from rustgrad.nn.modules.module import Module

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
]


def _ntuple(value: Any, n: int) -> tuple:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,) * n


class _MaxPoolNd(Module):
    _function_name = "max_pool2d"

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Any:
        """Max pooling of ``input`` (and the argmax indices with ``return_indices``)."""
        return getattr(F, self._function_name)(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool1d(_MaxPoolNd):
    """1-d max pooling.
    https://pytorch.org/docs/stable/generated/torch.nn.MaxPool1d.html"""

    _function_name = "max_pool1d"


class MaxPool2d(_MaxPoolNd):
    """2-d max pooling.
    https://pytorch.org/docs/stable/generated/torch.nn.MaxPool2d.html"""

    _function_name = "max_pool2d"


class MaxPool3d(_MaxPoolNd):
    """3-d max pooling.
    https://pytorch.org/docs/stable/generated/torch.nn.MaxPool3d.html"""

    _function_name = "max_pool3d"


class AvgPool1d(Module):
    """1-d average pooling.
    https://pytorch.org/docs/stable/generated/torch.nn.AvgPool1d.html"""

    def __init__(
        self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False, count_include_pad: bool = True
    ) -> None:
        super().__init__()
        self.kernel_size = _ntuple(kernel_size, 1)
        self.stride = _ntuple(stride if stride is not None else kernel_size, 1)
        self.padding = _ntuple(padding, 1)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        """Average pooling of ``input``."""
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AvgPoolNd(Module):
    _function_name = "avg_pool2d"

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        """Average pooling of ``input``."""
        return getattr(F, self._function_name)(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad, self.divisor_override
        )

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    """2-d average pooling.
    https://pytorch.org/docs/stable/generated/torch.nn.AvgPool2d.html"""

    _function_name = "avg_pool2d"


class AvgPool3d(_AvgPoolNd):
    """3-d average pooling.
    https://pytorch.org/docs/stable/generated/torch.nn.AvgPool3d.html"""

    _function_name = "avg_pool3d"


class _AdaptiveAvgPoolNd(Module):
    _function_name = "adaptive_avg_pool2d"

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        """Adaptive average pooling of ``input`` to ``output_size``."""
        return getattr(F, self._function_name)(input, self.output_size)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-d adaptive average pooling.
    https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveAvgPool1d.html"""

    _function_name = "adaptive_avg_pool1d"


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """2-d adaptive average pooling.
    https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveAvgPool2d.html"""

    _function_name = "adaptive_avg_pool2d"


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """3-d adaptive average pooling.
    https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveAvgPool3d.html"""

    _function_name = "adaptive_avg_pool3d"


class _AdaptiveMaxPoolNd(Module):
    _function_name = "adaptive_max_pool2d"

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Any:
        """Adaptive max pooling of ``input`` to ``output_size``."""
        return getattr(F, self._function_name)(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """1-d adaptive max pooling.
    https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveMaxPool1d.html"""

    _function_name = "adaptive_max_pool1d"


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """2-d adaptive max pooling.
    https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveMaxPool2d.html"""

    _function_name = "adaptive_max_pool2d"


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """3-d adaptive max pooling.
    https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveMaxPool3d.html"""

    _function_name = "adaptive_max_pool3d"


class _MaxUnpoolNd(Module):
    _dims = 2
    _function_name = "max_unpool2d"

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        n = self._dims
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride if stride is not None else kernel_size, n)
        self.padding = _ntuple(padding, n)

    def forward(self, input: Tensor, indices: Tensor, output_size: Any = None) -> Tensor:
        """Places ``input``'s values at ``indices`` of a zero output."""
        return getattr(F, self._function_name)(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """The partial inverse of MaxPool1d.
    https://pytorch.org/docs/stable/generated/torch.nn.MaxUnpool1d.html"""

    _dims = 1
    _function_name = "max_unpool1d"


class MaxUnpool2d(_MaxUnpoolNd):
    """The partial inverse of MaxPool2d.
    https://pytorch.org/docs/stable/generated/torch.nn.MaxUnpool2d.html"""

    _dims = 2
    _function_name = "max_unpool2d"


class MaxUnpool3d(_MaxUnpoolNd):
    """The partial inverse of MaxPool3d.
    https://pytorch.org/docs/stable/generated/torch.nn.MaxUnpool3d.html"""

    _dims = 3
    _function_name = "max_unpool3d"
