"""The layers' functions of ``torch.nn.functional``: convolutions, sliding windows, pooling,
normalization, embeddings, padding and the activations with scalar parameters.

Each checks PyTorch's argument rules (and raises its messages), handles unbatched input, and
calls one op of the Rust core, which records PyTorch's backward node (``ConvolutionBackward0``,
``MaxPool2DWithIndicesBackward0``, ``NativeBatchNormBackward0``...). 1-d pooling is 2-d pooling
of an unsqueezed input, as in PyTorch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from rustgrad import _rustgrad
from rustgrad._args import check_tensor, scalar_type_name
from rustgrad._rustgrad import Tensor
from rustgrad.autograd.function import Function
from rustgrad.func._batched import BatchedTensor as _Batched
from rustgrad.func._batched import call as _vmap_call

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "batch_norm",
    "celu",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "elu",
    "embedding",
    "fold",
    "group_norm",
    "hardshrink",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "instance_norm",
    "layer_norm",
    "local_response_norm",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "mish",
    "pad",
    "relu6",
    "rms_norm",
    "scaled_dot_product_attention",
    "selu",
    "softshrink",
    "threshold",
    "unfold",
]


def _tuple(value, n: int, name: str, fn: str) -> list[int]:
    """An int or a sequence of ints as ``n`` ints (PyTorch's ``_ntuple``)."""
    if isinstance(value, Tensor):
        value = value.tolist()
    if isinstance(value, Sequence) and not isinstance(value, str):
        values = [int(v) for v in value]
        if len(values) == 1:
            return values * n
        return values
    return [int(value)] * n


def _sizes(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


# ---------------------------------------------------------------- convolution


def _conv(fn: str, dims: int, input, weight, bias, stride, padding, dilation, groups, transposed=False, output_padding=0):
    check_tensor(fn, input)
    check_tensor(fn, weight, "weight", 2)
    if input.dim() not in (dims + 1, dims + 2):
        raise RuntimeError(
            f"Expected {dims + 1}D (unbatched) or {dims + 2}D (batched) input to {fn}, but got input of size: "
            f"{_sizes(input.shape)}"
        )
    unbatched = input.dim() == dims + 1
    if unbatched:
        input = input.unsqueeze(0)
    stride = _tuple(stride, dims, "stride", fn)
    dilation = _tuple(dilation, dims, "dilation", fn)
    output_padding = _tuple(output_padding, dims, "output_padding", fn)
    if isinstance(padding, str):
        if transposed:
            raise TypeError(f"{fn}() received an invalid combination of arguments - got (padding='{padding}')")
        if padding == "valid":
            padding = [0] * dims
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            kernel = list(weight.shape[2:])
            totals = [d * (k - 1) for d, k in zip(_tuple(dilation, dims, "dilation", fn), kernel)]
            padding = [t // 2 for t in totals]
            extra = [t - 2 * (t // 2) for t in totals]
            if any(extra):
                warnings.warn(
                    "Using padding='same' with even kernel lengths and odd dilation may require a zero-padded copy "
                    "of the input be created",
                    UserWarning,
                    stacklevel=3,
                )
                # the odd element goes on the right side, as PyTorch pads it
                pads = []
                for e in reversed(extra):
                    pads += [0, e]
                input = pad(input, pads)
        else:
            raise RuntimeError(f"Invalid padding string: '{padding}'")
    else:
        padding = _tuple(padding, dims, "padding", fn)
    if any(p < 0 for p in padding):
        raise RuntimeError("negative padding is not supported")
    if any(p < 0 for p in output_padding):
        raise RuntimeError("negative output_padding is not supported")
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError("dilation should be greater than zero")
    out = _rustgrad._convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    return out.squeeze(0) if unbatched else out


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-d convolution over ``[N, C, L]`` (or unbatched ``[C, L]``) input.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.conv1d.html"""
    if type(input) is _Batched or type(weight) is _Batched:
        return _vmap_call("conv1d", conv1d, input, weight, bias, stride, padding, dilation, groups)
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-d convolution over ``[N, C, H, W]`` (or unbatched ``[C, H, W]``) input.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.conv2d.html"""
    if type(input) is _Batched or type(weight) is _Batched:
        return _vmap_call("conv2d", conv2d, input, weight, bias, stride, padding, dilation, groups)
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """3-d convolution over ``[N, C, D, H, W]`` (or unbatched ``[C, D, H, W]``) input.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.conv3d.html"""
    if type(input) is _Batched or type(weight) is _Batched:
        return _vmap_call("conv3d", conv3d, input, weight, bias, stride, padding, dilation, groups)
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1) -> Tensor:
    """1-d transposed convolution (the gradient of conv1d with respect to its input).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.conv_transpose1d.html"""
    return _conv("conv_transpose1d", 1, input, weight, bias, stride, padding, dilation, groups, True, output_padding)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1) -> Tensor:
    """2-d transposed convolution (the gradient of conv2d with respect to its input).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.conv_transpose2d.html"""
    return _conv("conv_transpose2d", 2, input, weight, bias, stride, padding, dilation, groups, True, output_padding)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1) -> Tensor:
    """3-d transposed convolution (the gradient of conv3d with respect to its input).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.conv_transpose3d.html"""
    return _conv("conv_transpose3d", 3, input, weight, bias, stride, padding, dilation, groups, True, output_padding)


def _blocks(spatial, kernel, dilation, padding, stride, what: str) -> list[int]:
    blocks = [(s + 2 * p - d * (k - 1) - 1) // st + 1 for s, k, d, p, st in zip(spatial, kernel, dilation, padding, stride)]
    if any(b < 1 for b in blocks):
        raise RuntimeError(
            f"Given {what} spatial size ({', '.join(map(str, spatial))}), kernel_size=({', '.join(map(str, kernel))}), "
            f"dilation=({', '.join(map(str, dilation))}), padding=({', '.join(map(str, padding))}), calculated shape "
            f"of the array of sliding blocks as ({', '.join(map(str, blocks))}), but its components must be at least one."
        )
    return blocks


def _window_args(kernel_size, dilation, padding, stride):
    kernel = _tuple(kernel_size, 2, "kernel_size", "unfold")
    dilation = _tuple(dilation, 2, "dilation", "unfold")
    padding = _tuple(padding, 2, "padding", "unfold")
    stride = _tuple(stride, 2, "stride", "unfold")
    if any(k <= 0 for k in kernel):
        raise RuntimeError(f"kernel size should be greater than zero, but got kernel_height: {kernel[0]} kernel_width: {kernel[1]}")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got dilation_height: {dilation[0]} dilation_width: {dilation[1]}")
    if any(p < 0 for p in padding):
        raise RuntimeError(f"padding should be non-negative, but got pad_height: {padding[0]} pad_width: {padding[1]}")
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"stride should be greater than zero, but got stride_height: {stride[0]} stride_width: {stride[1]}")
    return kernel, dilation, padding, stride


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Extracts sliding local blocks: ``[N, C, H, W]`` to ``[N, C*kh*kw, L]`` (im2col).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.unfold.html"""
    check_tensor("unfold", input)
    if input.dim() not in (3, 4):
        raise NotImplementedError(
            f"Input Error: Only 3D or 4D input Tensors are supported (got {input.dim()}D)"
        )
    kernel, dilation, padding, stride = _window_args(kernel_size, dilation, padding, stride)
    unbatched = input.dim() == 3
    x = input.unsqueeze(0) if unbatched else input
    blocks = _blocks(list(x.shape[2:]), kernel, dilation, padding, stride, "input with")
    out = _rustgrad._im2col(x, kernel, dilation, padding, stride, blocks)
    return out.squeeze(0) if unbatched else out


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sums sliding local blocks back into an image: ``[N, C*kh*kw, L]`` to ``[N, C, H, W]`` (col2im).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.fold.html"""
    check_tensor("fold", input)
    if input.dim() not in (2, 3):
        raise NotImplementedError(
            f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are supported (got {input.dim()}D)"
        )
    output_size = _tuple(output_size, 2, "output_size", "fold")
    kernel, dilation, padding, stride = _window_args(kernel_size, dilation, padding, stride)
    unbatched = input.dim() == 2
    x = input.unsqueeze(0) if unbatched else input
    kl = kernel[0] * kernel[1]
    if x.shape[1] % kl != 0:
        raise RuntimeError(
            f"Expected size of input's dimension 1 to be divisible by the product of kernel_size, but got "
            f"input.size(1)={x.shape[1]} and kernel_size=({kernel[0]}, {kernel[1]})"
        )
    blocks = _blocks(output_size, kernel, dilation, padding, stride, "output_size=(" + ", ".join(map(str, output_size)) + "),")
    if x.shape[2] != blocks[0] * blocks[1]:
        raise RuntimeError(
            f"Given output_size=({output_size[0]}, {output_size[1]}), kernel_size=({kernel[0]}, {kernel[1]}), "
            f"dilation=({dilation[0]}, {dilation[1]}), padding=({padding[0]}, {padding[1]}), stride=({stride[0]}, "
            f"{stride[1]}), expected size of input's dimension 2 to match the calculated number of sliding blocks "
            f"{blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but got input.size(2)={x.shape[2]}."
        )
    out = _rustgrad._col2im(x, output_size, kernel, dilation, padding, stride, blocks)
    return out.squeeze(0) if unbatched else out


# ---------------------------------------------------------------- pooling


def _pooled(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    room = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = room // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_dims(fn: str, input: Tensor, dims: int) -> None:
    if input.dim() not in (dims + 1, dims + 2):
        raise RuntimeError(f"non-empty {dims + 1}D or {dims + 2}D (batch mode) tensor expected for input")


def _pool_args(fn: str, dims: int, kernel_size, stride, padding, dilation):
    kernel = _tuple(kernel_size, dims, "kernel_size", fn)
    if len(kernel) != dims:
        word = "two" if dims == 2 else "three"
        raise RuntimeError(f"{fn}: kernel_size must either be a single int, or a tuple of {word} ints")
    stride = kernel if stride is None or (isinstance(stride, Sequence) and len(stride) == 0) else _tuple(stride, dims, "stride", fn)
    if len(stride) != dims:
        word = "two" if dims == 2 else "three"
        raise RuntimeError(f"{fn}: stride must either be omitted, a single int, or a tuple of {word} ints")
    padding = _tuple(padding, dims, "padding", fn)
    dilation = _tuple(dilation, dims, "dilation", fn)
    if any(s == 0 for s in stride):
        raise RuntimeError("stride should not be zero")
    if any(k <= 0 for k in kernel):
        raise RuntimeError(f"kernel size should be greater than zero, but got kH: {kernel[-2]} kW: {kernel[-1]}")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got dilationH: {dilation[-2]} dilationW: {dilation[-1]}")
    if any(p < 0 for p in padding):
        raise RuntimeError(f"pad must be non-negative, but got pad: {padding[0]}")
    for k, p, d in zip(kernel, padding, dilation):
        if p > ((k - 1) * d + 1) // 2:
            raise RuntimeError(
                f"pad should be at most half of effective kernel size, but got pad={p}, kernel_size={k} and dilation={d}"
            )
    return kernel, stride, padding, dilation


def _pool_output(input: Tensor, dims: int, kernel, stride, padding, dilation, ceil_mode) -> list[int]:
    spatial = list(input.shape[-dims:])
    out = [_pooled(n, k, s, p, d, ceil_mode) for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation)]
    if any(o < 1 for o in out):
        lead = list(input.shape[-dims - 1 : -dims])
        raise RuntimeError(
            f"Given input size: ({'x'.join(map(str, lead + spatial))}). Calculated output size: "
            f"({'x'.join(map(str, lead + out))}). Output size is too small"
        )
    return out


def _max_pool(fn, dims, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    check_tensor(fn, input)
    _pool_dims(fn, input, dims)
    kernel, stride, padding, dilation = _pool_args(fn, dims, kernel_size, stride, padding, dilation)
    if input.dtype == _rustgrad.bool:
        raise NotImplementedError(f"\"{fn}\" not implemented for 'Bool'")
    out_size = _pool_output(input, dims, kernel, stride, padding, dilation, ceil_mode)
    values, indices = _rustgrad._max_pool(input, out_size, kernel, stride, padding, dilation)
    return (values, indices) if return_indices else values


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-d max pooling over ``[N, C, L]`` (or ``[C, L]``); with ``return_indices`` also the argmax positions.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.max_pool1d.html"""
    if type(input) is _Batched:
        return _vmap_call("max_pool1d", max_pool1d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    check_tensor("max_pool1d", input)
    if input.dim() not in (2, 3):
        raise RuntimeError(
            f"max_pool1d: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size for input, but got:{_sizes(input.shape)}"
        )
    k = _tuple(kernel_size, 1, "kernel_size", "max_pool1d")
    s = k if stride is None or (isinstance(stride, Sequence) and len(stride) == 0) else _tuple(stride, 1, "stride", "max_pool1d")
    p, d = _tuple(padding, 1, "padding", "max_pool1d"), _tuple(dilation, 1, "dilation", "max_pool1d")
    out = _max_pool("max_pool2d", 2, input.unsqueeze(-2), [1] + k, [1] + s, [0] + p, [1] + d, ceil_mode, True)
    values, indices = out[0].squeeze(-2), out[1].squeeze(-2)
    return (values, indices) if return_indices else values


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-d max pooling over ``[N, C, H, W]`` (or ``[C, H, W]``); with ``return_indices`` also the argmax positions.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.max_pool2d.html"""
    if type(input) is _Batched:
        return _vmap_call("max_pool2d", max_pool2d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """3-d max pooling over ``[N, C, D, H, W]`` (or ``[C, D, H, W]``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.max_pool3d.html"""
    if type(input) is _Batched:
        return _vmap_call("max_pool3d", max_pool3d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(fn, dims, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    check_tensor(fn, input)
    if input.dim() not in (dims + 1, dims + 2):
        raise RuntimeError(f"non-empty {dims + 1}D or {dims + 2}D (batch mode) tensor expected for input")
    kernel, stride, padding, _ = _pool_args(fn, dims, kernel_size, stride, padding, 1)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    if input.dtype == _rustgrad.bool:
        raise NotImplementedError(f"\"{fn}\" not implemented for 'Bool'")
    out_size = _pool_output(input, dims, kernel, stride, padding, [1] * dims, ceil_mode)
    return _rustgrad._avg_pool(input, out_size, kernel, stride, padding, bool(count_include_pad), divisor_override)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True) -> Tensor:
    """1-d average pooling over ``[N, C, L]`` (or ``[C, L]``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.avg_pool1d.html"""
    if type(input) is _Batched:
        return _vmap_call("avg_pool1d", avg_pool1d, input, kernel_size, stride, padding, ceil_mode, count_include_pad)
    check_tensor("avg_pool1d", input)
    if input.dim() not in (2, 3):
        raise RuntimeError(f"avg_pool1d() Expected 2D or 3D input tensor, but got {_sizes(input.shape)}")
    k = _tuple(kernel_size, 1, "kernel_size", "avg_pool1d")
    s = k if stride is None or (isinstance(stride, Sequence) and len(stride) == 0) else _tuple(stride, 1, "stride", "avg_pool1d")
    p = _tuple(padding, 1, "padding", "avg_pool1d")
    out = _avg_pool("avg_pool2d", 2, input.unsqueeze(-2), [1] + k, [1] + s, [0] + p, ceil_mode, count_include_pad, None)
    return out.squeeze(-2)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None) -> Tensor:
    """2-d average pooling over ``[N, C, H, W]`` (or ``[C, H, W]``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.avg_pool2d.html"""
    if type(input) is _Batched:
        return _vmap_call("avg_pool2d", avg_pool2d, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None) -> Tensor:
    """3-d average pooling over ``[N, C, D, H, W]`` (or ``[C, D, H, W]``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.avg_pool3d.html"""
    if type(input) is _Batched:
        return _vmap_call("avg_pool3d", avg_pool3d, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def _adaptive(fn: str, dims: int, input: Tensor, output_size, max_: bool):
    check_tensor(fn, input)
    if input.dim() not in (dims + 1, dims + 2):
        raise RuntimeError(f"{fn}(): Expected {dims + 1}D or {dims + 2}D tensor, but got {_sizes(input.shape)}")
    if isinstance(output_size, Sequence) and not isinstance(output_size, str):
        if len(output_size) != dims:
            raise RuntimeError(f"{fn}: output_size must be {dims}")
        size = [input.shape[-dims + i] if o is None else int(o) for i, o in enumerate(output_size)]
    else:
        size = [int(output_size)] * dims
    if any(s < 0 for s in size):
        shape = list(input.shape[:-dims]) + size
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(size)}: {_sizes(shape)}")
    for d in range(1, input.dim()):
        if input.shape[d] == 0:
            raise RuntimeError(
                f"{fn}(): Expected input to have non-zero size for non-batch dimensions, but input has sizes "
                f"{_sizes(input.shape)} with dimension {d} being empty"
            )
    if not input.is_floating_point():
        kernel = fn + ("_cpu" if dims == 3 else "")
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{scalar_type_name(input.dtype)}'")
    if not max_ and all(s == 1 for s in size) and input.numel() > 0:
        # PyTorch takes the mean for a 1x1 output
        return input.mean(tuple(range(-dims, 0)), keepdim=True), None
    return _rustgrad._adaptive_pool(input, size, max_)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """1-d adaptive average pooling to ``output_size`` positions.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.adaptive_avg_pool1d.html"""
    if type(input) is _Batched:
        return _vmap_call("adaptive_avg_pool1d", adaptive_avg_pool1d, input, output_size)
    check_tensor("adaptive_avg_pool1d", input)
    if input.dim() not in (2, 3):
        raise RuntimeError(f"adaptive_avg_pool1d() argument 'input' must be 2D or 3D, but got {input.dim()}D")
    size = _tuple(output_size, 1, "output_size", "adaptive_avg_pool1d")
    return _adaptive("adaptive_avg_pool2d", 2, input.unsqueeze(-2), [1] + size, False)[0].squeeze(-2)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """2-d adaptive average pooling to ``output_size``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.adaptive_avg_pool2d.html"""
    if type(input) is _Batched:
        return _vmap_call("adaptive_avg_pool2d", adaptive_avg_pool2d, input, output_size)
    return _adaptive("adaptive_avg_pool2d", 2, input, output_size, False)[0]


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """3-d adaptive average pooling to ``output_size``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.adaptive_avg_pool3d.html"""
    if type(input) is _Batched:
        return _vmap_call("adaptive_avg_pool3d", adaptive_avg_pool3d, input, output_size)
    return _adaptive("adaptive_avg_pool3d", 3, input, output_size, False)[0]


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """1-d adaptive max pooling to ``output_size`` positions.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.adaptive_max_pool1d.html"""
    if type(input) is _Batched:
        return _vmap_call("adaptive_max_pool1d", adaptive_max_pool1d, input, output_size, return_indices)
    check_tensor("adaptive_max_pool1d", input)
    if input.dim() not in (2, 3):
        raise RuntimeError(f"adaptive_max_pool1d() argument 'input' must be 2D or 3D, but got {input.dim()}D")
    size = _tuple(output_size, 1, "output_size", "adaptive_max_pool1d")
    values, indices = _adaptive("adaptive_max_pool2d", 2, input.unsqueeze(-2), [1] + size, True)
    values, indices = values.squeeze(-2), indices.squeeze(-2)
    return (values, indices) if return_indices else values


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """2-d adaptive max pooling to ``output_size``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.adaptive_max_pool2d.html"""
    if type(input) is _Batched:
        return _vmap_call("adaptive_max_pool2d", adaptive_max_pool2d, input, output_size, return_indices)
    values, indices = _adaptive("adaptive_max_pool2d", 2, input, output_size, True)
    return (values, indices) if return_indices else values


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    """3-d adaptive max pooling to ``output_size``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.adaptive_max_pool3d.html"""
    if type(input) is _Batched:
        return _vmap_call("adaptive_max_pool3d", adaptive_max_pool3d, input, output_size, return_indices)
    values, indices = _adaptive("adaptive_max_pool3d", 3, input, output_size, True)
    return (values, indices) if return_indices else values


def _max_unpool(fn, dims, input, indices, kernel_size, stride, padding, output_size):
    check_tensor(fn, input)
    kernel = _tuple(kernel_size, dims, "kernel_size", fn)
    stride = kernel if stride is None else _tuple(stride, dims, "stride", fn)
    padding = _tuple(padding, dims, "padding", fn)
    default = [(input.shape[-dims + i] - 1) * stride[i] + kernel[i] - 2 * padding[i] for i in range(dims)]
    if output_size is None:
        size = default
    else:
        size = [int(s) for s in output_size]
        if len(size) == dims + 2 or len(size) == dims + 1:
            size = size[-dims:]
        if len(size) != dims:
            raise ValueError(f"output_size should be a sequence containing {dims} or {dims + 2} elements, but it has a length of '{len(size)}'")
    return _rustgrad._max_unpool(input, indices, size)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """The partial inverse of max_pool1d: values put back at their indices, zeros elsewhere.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.max_unpool1d.html"""
    k = _tuple(kernel_size, 1, "kernel_size", "max_unpool1d")
    s = k if stride is None else _tuple(stride, 1, "stride", "max_unpool1d")
    p = _tuple(padding, 1, "padding", "max_unpool1d")
    size = None if output_size is None else [1] + [int(output_size[-1])]
    out = _max_unpool("max_unpool2d", 2, input.unsqueeze(-2), indices.unsqueeze(-2), [1] + k, [1] + s, [0] + p, size)
    return out.squeeze(-2)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """The partial inverse of max_pool2d: values put back at their indices, zeros elsewhere.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.max_unpool2d.html"""
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """The partial inverse of max_pool3d.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.max_unpool3d.html"""
    return _max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding, output_size)


# ---------------------------------------------------------------- normalization


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5) -> Tensor:
    """Batch normalization per channel (dim 1); in training also updates the running statistics.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.batch_norm.html"""
    check_tensor("batch_norm", input)
    if training:
        size = input.shape
        per_channel = 1
        for i, s in enumerate(size):
            if i != 1:
                per_channel *= s
        if per_channel == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {size}")
    return _rustgrad._batch_norm(
        input, running_mean, running_var, weight, bias, bool(training), 0.0 if momentum is None else float(momentum), float(eps)
    )


def instance_norm(
    input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True, momentum=0.1, eps=1e-5
) -> Tensor:
    """Normalization per sample and channel (batch norm of each instance).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.instance_norm.html"""
    check_tensor("instance_norm", input)
    if use_input_stats:
        per = 1
        for s in input.shape[2:]:
            per *= s
        if per == 1:
            raise ValueError(f"Expected more than 1 spatial element when training, got input size {input.shape}")
    n, c = input.shape[0], input.shape[1]
    shape = [1, n * c] + list(input.shape[2:])
    rm = running_mean.repeat(n) if running_mean is not None else None
    rv = running_var.repeat(n) if running_var is not None else None
    w = weight.repeat(n) if weight is not None else None
    b = bias.repeat(n) if bias is not None else None
    out = _rustgrad._batch_norm(input.reshape(shape), rm, rv, w, b, bool(use_input_stats), float(momentum), float(eps))
    if use_input_stats:
        from rustgrad.grad_mode import no_grad

        with no_grad():
            if running_mean is not None and rm is not None:
                running_mean.copy_(rm.view(n, c).mean(0))
            if running_var is not None and rv is not None:
                running_var.copy_(rv.view(n, c).mean(0))
    return out.view(input.shape)


def layer_norm(input: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalizes over the trailing ``normalized_shape`` dims, then an elementwise affine map.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.layer_norm.html"""
    if type(input) is _Batched or type(weight) is _Batched:
        return _vmap_call("layer_norm", layer_norm, input, normalized_shape, weight, bias, eps)
    check_tensor("layer_norm", input)
    shape = [int(normalized_shape)] if isinstance(normalized_shape, int) else [int(s) for s in normalized_shape]
    return _rustgrad._layer_norm(input, shape, weight, bias, float(eps))


def group_norm(input: Tensor, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalizes each group of channels per sample, then a per-channel affine map.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.group_norm.html"""
    check_tensor("group_norm", input)
    if input.dim() < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.dim()}")
    return _rustgrad._group_norm(input, int(num_groups), weight, bias, float(eps))


# The machine epsilon of each float dtype (``torch.finfo(dtype).eps``).
_EPS = {
    "torch.float64": 2.220446049250313e-16,
    "torch.float32": 1.1920928955078125e-07,
    "torch.float16": 0.0009765625,
    "torch.bfloat16": 0.0078125,
}


def rms_norm(input: Tensor, normalized_shape, weight=None, eps=None) -> Tensor:
    """``x / sqrt(mean(x**2) + eps) * weight`` over the trailing ``normalized_shape`` dims.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.rms_norm.html"""
    import rustgrad

    check_tensor("rms_norm", input)
    shape = [int(normalized_shape)] if isinstance(normalized_shape, int) else [int(s) for s in normalized_shape]
    k = len(shape)
    if list(input.shape[input.dim() - k :]) != shape or k > input.dim():
        raise RuntimeError(
            f"Given normalized_shape={_sizes(shape)}, expected input with shape [*, {', '.join(map(str, shape))}], "
            f"but got input of size{_sizes(input.shape)}"
        )
    if eps is None:
        eps = _EPS.get(str(input.dtype), 1.1920928955078125e-07)
    dims = tuple(range(-k, 0))
    out = input * rustgrad.rsqrt(input.pow(2).mean(dims, keepdim=True) + eps)
    return out * weight if weight is not None else out


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """Normalizes each value by the squares of its ``size`` neighbouring channels.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.local_response_norm.html"""
    check_tensor("local_response_norm", input)
    dim = input.dim()
    if dim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {dim} dimensions)")
    if input.numel() == 0:
        return input
    squares = (input * input).unsqueeze(1)
    if dim == 3:
        squares = pad(squares, (0, 0, size // 2, (size - 1) // 2))
        div = avg_pool2d(squares, (size, 1), stride=1).squeeze(1)
    else:
        shape = input.shape
        squares = squares.view(shape[0], 1, shape[1], shape[2], -1)
        squares = pad(squares, (0, 0, 0, 0, size // 2, (size - 1) // 2))
        div = avg_pool3d(squares, (size, 1, 1), stride=1).squeeze(1)
        div = div.view(shape)
    div = (div * alpha + k) ** beta
    return input / div


# ---------------------------------------------------------------- embedding


def embedding(input: Tensor, weight: Tensor, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False) -> Tensor:
    """The rows of ``weight`` picked by the indices in ``input``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.embedding.html"""
    if type(input) is _Batched or type(weight) is _Batched:
        return _vmap_call("embedding", embedding, input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)
    check_tensor("embedding", input)
    check_tensor("embedding", weight, "weight", 2)
    if padding_idx is not None:
        if padding_idx > 0:
            assert padding_idx < weight.size(0), "Padding_idx must be within num_embeddings"
        elif padding_idx < 0:
            assert padding_idx >= -weight.size(0), "Padding_idx must be within num_embeddings"
            padding_idx = weight.size(0) + padding_idx
    if sparse:
        raise NotImplementedError("rustgrad: sparse embedding gradients are not supported (use sparse=False)")
    if input.dtype not in (_rustgrad.int64, _rustgrad.int32):
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got "
            f"{input.type()} instead (while checking arguments for embedding)"
        )
    if input.numel() > 0:
        lo, hi = int(input.min()), int(input.max())
        if lo < 0 or hi >= weight.shape[0]:
            raise IndexError("index out of range in self")
    if max_norm is not None:
        _renorm_rows(weight, input, float(max_norm), float(norm_type))
    return _rustgrad._embedding(weight, input, padding_idx, bool(scale_grad_by_freq))


def _renorm_rows(weight: Tensor, indices: Tensor, max_norm: float, norm_type: float) -> None:
    """Rescales in place each row of ``weight`` that ``indices`` names whose norm exceeds ``max_norm``."""
    from rustgrad.grad_mode import no_grad

    with no_grad():
        for i in sorted({int(v) for v in indices.reshape(-1).tolist()}):
            row = weight[i]
            norm = float(row.norm(norm_type))
            if norm > max_norm:
                row.mul_(max_norm / (norm + 1e-7))


# ---------------------------------------------------------------- padding


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """Pads ``input``'s last dims by ``pad`` = (left, right, top, bottom, ...); modes constant, reflect, replicate, circular.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.pad.html"""
    if type(input) is _Batched:
        return _vmap_call("pad", _pad_function, input, pad, mode, value)
    check_tensor("pad", input)
    pads = [int(p) for p in pad]
    if mode == "constant":
        return _rustgrad._constant_pad(input, pads, 0.0 if value is None else float(value))
    if value is not None and value != 0:
        raise ValueError(f"Padding mode \"{mode}\" doesn't take in value argument")
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    n = len(pads) // 2
    if not ((n == 1 and input.dim() in (2, 3)) or (n == 2 and input.dim() in (3, 4)) or (n == 3 and input.dim() in (4, 5))):
        raise NotImplementedError(
            f"Padding size {len(pads)} is not supported for {input.dim()}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)"
        )
    import rustgrad

    indices = []
    for i in range(n):
        dim = input.dim() - 1 - i
        left, right = pads[2 * i], pads[2 * i + 1]
        size = input.shape[dim]
        if mode == "reflect" and (left >= size or right >= size):
            raise RuntimeError(
                f"Argument #4: Padding size should be less than the corresponding input dimension, but got: "
                f"padding ({left}, {right}) at dimension {dim} of input {_sizes(input.shape)}"
            )
        if mode == "circular" and (left > size or right > size):
            raise RuntimeError("Padding value causes wrapping around more than once.")
        index = []
        for j in range(-left, size + right):
            if mode == "reflect":
                k = abs(j)
                if k >= size:
                    k = 2 * (size - 1) - k
            elif mode == "replicate":
                k = min(max(j, 0), size - 1)
            else:
                k = j % size
            index.append(k)
        indices.append((dim, rustgrad.tensor(index, dtype=rustgrad.int64)))
    if mode == "circular":
        return _circular_pad(input, pads)
    node = {"reflect": _ReflectionPad, "replicate": _ReplicationPad}[mode]
    return node[n - 1].apply(input, indices)


_pad_function = pad


def _gathered(x: Tensor, indices: list) -> Tensor:
    """``x`` with each ``(dim, index)`` selection applied in turn (the padded values)."""
    for dim, index in indices:
        x = x.index_select(dim, index)
    return x


def _scattered_back(g: Tensor, indices: list, shape: list) -> Tensor:
    """The adjoint of ``_gathered``: each gradient value added back to the position it was read
    from, last selection first (scatter_add, so the result is differentiable in ``g``)."""
    import rustgrad

    sizes = list(g.shape)
    for dim, index in reversed(indices):
        sizes[dim] = shape[dim]
        view = [1] * g.dim()
        view[dim] = -1
        spread = index.view(view).expand(*g.shape)
        g = rustgrad.zeros(sizes, dtype=g.dtype).scatter_add(dim, spread, g)
    return g


def _pad_node(name: str) -> Any:
    """A Function recording PyTorch's node ``name`` for reflection/replication padding:
    forward = index selections, backward = their adjoint (scatter-add, differentiable)."""

    def forward(ctx, x, indices):
        ctx.indices, ctx.shape = indices, list(x.shape)
        return _gathered(x, indices)

    def backward(ctx, grad):
        # d pad(x)/dx: each output's gradient goes back to the input position it copies
        return _scattered_back(grad, ctx.indices, ctx.shape), None

    return type(name[: -len("Backward0")], (Function,), {
        "_node_name": name, "forward": staticmethod(forward), "backward": staticmethod(backward),
        "__doc__": f"Padding that records ``{name}``.",
    })


_ReflectionPad = [_pad_node(f"ReflectionPad{d}DBackward0") for d in (1, 2, 3)]
_ReplicationPad = [_pad_node(f"ReplicationPad{d}DBackward0") for d in (1, 2, 3)]


def _circular_pad(input: Tensor, pads: list) -> Tensor:
    """Circular padding as PyTorch builds it: the input copied into the middle of a new tensor,
    then each padded side filled from the opposite end of the same tensor (``CopySlices``)."""
    import rustgrad

    n = len(pads) // 2
    shape = list(input.shape)
    spans = []
    for i in range(n):
        dim = input.dim() - 1 - i
        left, right = pads[2 * i], pads[2 * i + 1]
        spans.append((dim, left, right, shape[dim]))
        shape[dim] += left + right
    out = rustgrad.empty(shape, dtype=input.dtype)
    centre = [slice(None)] * input.dim()
    for dim, left, _right, size in spans:
        centre[dim] = slice(left, left + size)
    out[tuple(centre)] = input
    for dim, left, right, size in spans:
        def at(start: int, stop: int, _dim: int = dim) -> tuple:
            key = [slice(None)] * input.dim()
            key[_dim] = slice(start, stop)
            return tuple(key)

        if left > 0:
            out[at(0, left)] = out[at(size, size + left)]
        if right > 0:
            out[at(left + size, left + size + right)] = out[at(left, left + right)]
    return out


# ---------------------------------------------------------------- activations


def _act(fn: str, input: Tensor, inplace: bool, *params: float) -> Tensor:
    check_tensor(fn, input)
    out = _rustgrad._activation(input, fn, *[float(p) for p in params])
    return input.copy_(out) if inplace else out


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` clamped to ``[min_val, max_val]`` (``HardtanhBackward0``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.hardtanh.html"""
    return _act("hardtanh", input, inplace, min_val, max_val)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(0, x), 6)`` (``HardtanhBackward0``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.relu6.html"""
    return _act("hardtanh", input, inplace, 0.0, 6.0)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` above zero, ``alpha * (exp(x) - 1)`` below (``EluBackward0``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.elu.html"""
    return _act("elu", input, inplace, alpha, 1.0, 1.0)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """Scaled ELU with the self-normalizing constants (``EluBackward0``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.selu.html"""
    return _act("elu", input, inplace, _SELU_ALPHA, _SELU_SCALE, 1.0)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (``CeluBackward0``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.celu.html"""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError")
    return _act("celu", input, inplace, alpha)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * relu6(x + 3) / 6`` (``HardswishBackward0``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.hardswish.html"""
    return _act("hardswish", input, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``relu6(x + 3) / 6`` (``HardsigmoidBackward0``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.hardsigmoid.html"""
    return _act("hardsigmoid", input, inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))`` (``MishBackward0``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.mish.html"""
    return _act("mish", input, inplace)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x`` where ``x > threshold``, else ``value`` (``ThresholdBackward0``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.threshold.html"""
    return _act("threshold", input, inplace, threshold, value)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.softshrink.html"""
    return _act("softshrink", input, False, lambd)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.hardshrink.html"""
    return _act("hardshrink", input, False, lambd)



# ---------------------------------------------------------------- attention


def _attention_scores(query, key, attn_mask, scale):
    """``softmax(q k^T * scale + mask)``: the attention weights, in differentiable ops."""
    scores = query @ key.transpose(-2, -1) * scale
    if attn_mask is not None:
        scores = scores + attn_mask
        # PyTorch's safe softmax: a query whose every key is masked out attends to nothing (weights
        # and gradients 0, not NaN)
        dead = (scores == float("-inf")).all(-1, keepdim=True)
        if bool(dead.any()):
            return scores.masked_fill(dead, 0.0).softmax(-1).masked_fill(dead, 0.0)
    return scores.softmax(-1)


class _FlashAttention(Function):
    """``softmax(q k^T * scale + mask) v`` as one node; its backward recomputes the weights from
    q and k with differentiable ops: dV = P^T dO, dS = P * (dO V^T - rowsum(dO V^T * P)),
    dQ = dS K scale, dK = dS^T Q scale."""

    _node_name = "ScaledDotProductFlashAttentionForCpuBackward0"

    @staticmethod
    def forward(ctx, query, key, value, attn_mask, scale):
        ctx.save_for_backward(query, key, value, attn_mask)
        ctx.scale = scale
        return _attention_scores(query, key, attn_mask, scale) @ value

    @staticmethod
    def backward(ctx, grad):
        query, key, value, attn_mask = ctx.saved_tensors
        scale = ctx.scale
        p = _attention_scores(query, key, attn_mask, scale)
        grad_value = p.transpose(-2, -1) @ grad
        dp = grad @ value.transpose(-2, -1)
        ds = p * (dp - (dp * p).sum(-1, keepdim=True))
        grad_query = ds @ key * scale
        grad_key = ds.transpose(-2, -1) @ query * scale
        return grad_query, grad_key, grad_value, None, None


def scaled_dot_product_attention(
    query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False
) -> Tensor:
    """``softmax(q k^T / sqrt(d) + mask) v`` with an optional causal or explicit mask and dropout.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.scaled_dot_product_attention.html"""
    import rustgrad

    for name, t in (("query", query), ("key", key), ("value", value)):
        check_tensor("scaled_dot_product_attention", t, name)
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
    if query.dtype != key.dtype or query.dtype != value.dtype:
        raise RuntimeError(
            "Expected query, key, and value to have the same dtype, but got query.dtype: "
            f"{scalar_type_name(query.dtype)} key.dtype: {scalar_type_name(key.dtype)} and value.dtype: "
            f"{scalar_type_name(value.dtype)} instead."
        )
    if enable_gqa and key.dim() >= 3 and key.shape[-3] != query.shape[-3]:
        groups = query.shape[-3] // key.shape[-3]
        key = key.repeat_interleave(groups, -3)
        value = value.repeat_interleave(groups, -3)
    length, source = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    mask = None
    if is_causal:
        keep = rustgrad.ones(length, source, dtype=rustgrad.bool).tril()
        mask = rustgrad.zeros(length, source, dtype=query.dtype).masked_fill(keep == 0, float("-inf"))
    elif attn_mask is not None:
        if attn_mask.dtype == rustgrad.bool:
            mask = rustgrad.zeros(attn_mask.shape, dtype=query.dtype).masked_fill(attn_mask == 0, float("-inf"))
        else:
            mask = attn_mask
    if dropout_p > 0.0:
        # PyTorch's math path: the weights are dropped out, so the graph is made of the plain ops
        weights = _attention_scores(query, key, mask, scale)
        from rustgrad.nn.functional import dropout

        return dropout(weights, dropout_p, True) @ value
    if mask is not None and mask.requires_grad:
        return _attention_scores(query, key, mask, scale) @ value
    return _FlashAttention.apply(query, key, value, mask, scale)
