"""The functions of ``torch.nn.functional`` that PyTorch records as one named backward node:
resampling (``interpolate``: ``UpsampleNearest2DBackward0``, ``UpsampleBilinear2DBackward0``...),
pixel and channel shuffles, ``glu``, ``prelu``, ``rrelu``, ``embedding_bag`` and the margin losses.

Each is a rustgrad autograd ``Function`` that names its node as PyTorch does (``_node_name``). The
forward computes with tensor ops; the backward is written in differentiable tensor ops, so the
graph can be differentiated again (``create_graph=True``). PyTorch's argument checks and messages
come first, in its order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import rustgrad
from rustgrad import _rustgrad
from rustgrad._args import (
    check_attribute,
    check_tensor,
    int_arg,
    number_arg,
    scalar_type_name,
    strict_bool_arg,
)
from rustgrad._rustgrad import Tensor
from rustgrad.autograd.function import Function

__all__ = [
    "channel_shuffle",
    "embedding_bag",
    "glu",
    "interpolate",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "pixel_shuffle",
    "pixel_unshuffle",
    "prelu",
    "rrelu",
    "rrelu_",
    "soft_margin_loss",
    "upsample",
    "upsample_bilinear",
    "upsample_nearest",
]


def _zeros(shape, dtype) -> Tensor:
    return _rustgrad._full(list(shape), 0, dtype)


def _long(values) -> Tensor:
    return rustgrad.from_numpy(np.ascontiguousarray(values, dtype=np.int64))


def _along(t: Tensor, dim: int, ndim: int) -> Tensor:
    """A 1-d tensor shaped to broadcast along ``dim`` of an ``ndim``-d tensor."""
    shape = [1] * ndim
    shape[dim] = -1
    return t.reshape(shape)


def _index_add(shape, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """``zeros(shape).index_add(dim, index, src)`` with differentiable ops (a scatter_add)."""
    expanded = _along(index, dim, src.dim()).expand(*src.shape)
    return _zeros(shape, src.dtype).scatter_add(dim, expanded, src)


def _not_implemented(kernel: str, t: Tensor) -> NotImplementedError:
    return NotImplementedError(f"\"{kernel}\" not implemented for '{scalar_type_name(t.dtype)}'")


def _wrap_dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


# ---------------------------------------------------------------- interpolate


class _Upsample(Function):
    """Resampling along the spatial dims, one dim at a time: each output element of a dim is
    ``sum_k w_k * x[idx_k]`` (one tap for nearest, two for linear, four for cubic)."""

    _node_name = "UpsampleBackward0"

    @staticmethod
    def forward(ctx, input, taps, back_taps):
        ctx.taps = back_taps
        ctx.shapes = []
        out = input
        for dim, pairs in taps:
            ctx.shapes.append(list(out.shape))
            out = _gather_taps(out, dim, pairs)
        return input.clone() if out is input else out

    @staticmethod
    def backward(ctx, grad):
        for (dim, pairs), shape in zip(reversed(ctx.taps), reversed(ctx.shapes)):
            grad = _scatter_taps(grad, shape, dim, pairs)  # out = sum_k w_k x[idx_k]  =>  dx = sum_k index_add(idx_k, w_k g)
        return grad, None, None


def _gather_taps(x: Tensor, dim: int, pairs) -> Tensor:
    terms = []
    for index, weight in pairs:
        term = x.index_select(dim, index)
        terms.append(term if weight is None else term * _along(weight, dim, x.dim()))
    out = terms[0]
    for term in terms[1:]:
        out = out + term
    return out


def _scatter_taps(grad: Tensor, shape, dim: int, pairs) -> Tensor:
    terms = []
    for index, weight in pairs:
        src = grad if weight is None else grad * _along(weight, dim, grad.dim())
        terms.append(_index_add(shape, dim, index, src))
    out = terms[0]
    for term in terms[1:]:
        out = out + term
    return out


_UPSAMPLE_NODES = {
    ("nearest", 1): "UpsampleNearest1D",
    ("nearest", 2): "UpsampleNearest2D",
    ("nearest", 3): "UpsampleNearest3D",
    ("nearest-exact", 1): "UpsampleNearestExact1D",
    ("nearest-exact", 2): "UpsampleNearestExact2D",
    ("nearest-exact", 3): "UpsampleNearestExact3D",
    ("linear", 1): "UpsampleLinear1D",
    ("bilinear", 2): "UpsampleBilinear2D",
    ("bicubic", 2): "UpsampleBicubic2D",
    ("trilinear", 3): "UpsampleTrilinear3D",
}
_UPSAMPLE_FUNCTIONS: dict[tuple[str, int], Any] = {
    key: type(f"_{name}", (_Upsample,), {"_node_name": f"{name}Backward0", "__doc__": f"PyTorch's {name} node."})
    for key, name in _UPSAMPLE_NODES.items()
}

# The kernel PyTorch's message names for a dtype it cannot resample.
_KERNEL_NAMES = {
    ("nearest", 1): "compute_indices_weights_nearest",
    ("nearest", 2): "upsample_nearest2d_channels_last",
    ("nearest", 3): "compute_indices_weights_nearest",
    ("nearest-exact", 1): "compute_indices_weights_nearest",
    ("nearest-exact", 2): "upsample_nearest2d_channels_last",
    ("nearest-exact", 3): "compute_indices_weights_nearest",
    ("linear", 1): "compute_indices_weights_linear",
    ("bilinear", 2): "upsample_bilinear2d_channels_last",
    ("bicubic", 2): "compute_indices_weights_cubic",
    ("trilinear", 3): "compute_indices_weights_linear",
}


def _nearest_index(in_size: int, out_size: int, scale, exact: bool, shortcuts: bool) -> np.ndarray:
    """PyTorch's nearest source index, computed in float32 as its kernel does (its 2-d nearest kernel
    also copies equal sizes and halves the index of doubled ones, whatever the scale)."""
    i = np.arange(out_size, dtype=np.int64)
    if shortcuts:
        if out_size == in_size:
            return i
        if out_size == 2 * in_size:
            return i >> 1
    f32 = np.float32
    ratio = f32(1.0 / scale) if scale is not None and scale > 0 else f32(in_size) / f32(out_size)
    pos = (i.astype(f32) + f32(0.5)) * ratio if exact else i.astype(f32) * ratio
    return np.minimum(np.floor(pos).astype(np.int64), in_size - 1)


def _interp_ratio(in_size: int, out_size: int, align_corners: bool, scale, ft):
    """ATen's ``area_pixel_compute_scale``: the source step per output index."""
    if align_corners:
        return ft(in_size - 1) / ft(out_size - 1) if out_size > 1 else ft(0)
    if scale is not None and scale > 0:
        return ft(1.0 / scale)
    return ft(in_size) / ft(out_size)


def _source_position(ratio, out_size: int, align_corners: bool, cubic: bool, ft) -> np.ndarray:
    """ATen's ``area_pixel_compute_source_index`` for every output index (half-pixel centres
    unless ``align_corners``; clamped at 0 except for cubic)."""
    i = np.arange(out_size).astype(ft)
    if align_corners:
        return ratio * i
    pos = ratio * (i + ft(0.5)) - ft(0.5)
    return pos if cubic else np.maximum(pos, ft(0))


def _floor_and_fraction(pos: np.ndarray, in_size: int, ft):
    # ATen floors the position as a float (floorf), and clamps the fraction to [0, 1]
    index = np.minimum(np.floor(pos.astype(np.float32)).astype(np.int64), in_size - 1)
    frac = np.clip(pos - index.astype(ft), ft(0), ft(1)).astype(ft)
    return index, frac


def _linear_taps(in_size, out_size, align_corners, scale, ft):
    if out_size == in_size:
        return None  # ATen copies a dim whose size does not change
    ratio = _interp_ratio(in_size, out_size, align_corners, scale, ft)
    index0, lambda1 = _floor_and_fraction(_source_position(ratio, out_size, align_corners, False, ft), in_size, ft)
    index1 = index0 + (index0 < in_size - 1)
    return [(index0, (ft(1) - lambda1).astype(ft)), (index1, lambda1)]


def _cubic_taps(in_size, out_size, align_corners, scale, ft):
    ratio = _interp_ratio(in_size, out_size, align_corners, scale, ft)
    index, t = _floor_and_fraction(_source_position(ratio, out_size, align_corners, True, ft), in_size, ft)
    a = ft(-0.75)  # Keys' cubic convolution kernel with PyTorch's A

    def near(x):  # |x| <= 1
        return ((a + ft(2)) * x - (a + ft(3))) * x * x + ft(1)

    def far(x):  # 1 < |x| < 2
        return ((a * x - ft(5) * a) * x + ft(8) * a) * x - ft(4) * a

    weights = [far(t + ft(1)), near(t), near(ft(1) - t), far(ft(2) - t)]
    return [(np.clip(index - 1 + j, 0, in_size - 1), w.astype(ft)) for j, w in enumerate(weights)]


def _taps_for(mode: str, in_size: int, out_size: int, align_corners: bool, scale, ft, spatial: int):
    if mode in ("nearest", "nearest-exact"):
        index = _nearest_index(in_size, out_size, scale, mode == "nearest-exact", mode == "nearest" and spatial == 2)
        if np.array_equal(index, np.arange(in_size)):
            return None
        return [(index, None)]
    if mode == "bicubic":
        return _cubic_taps(in_size, out_size, align_corners, scale, ft)
    return _linear_taps(in_size, out_size, align_corners, scale, ft)


def _check_resample_sizes(input: Tensor, out_sizes: list[int]) -> None:
    spatial = list(input.shape[2:])
    if not all(s > 0 for s in spatial + out_sizes):
        names = "DHW"[3 - len(spatial):]
        given = ", ".join(f"{n}: {s}" for n, s in zip(names, spatial))
        wanted = ", ".join(f"{n}: {s}" for n, s in zip(names, out_sizes))
        joiner = " and output" if len(spatial) == 1 else " output"
        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input ({given}){joiner} ({wanted})")
    if input.numel() == 0 and any(s == 0 for s in input.shape[1:]):
        raise RuntimeError(
            f"Non-empty {input.dim()}D data tensor expected but got a tensor with sizes {list(input.shape)}"
        )


def _resample(input: Tensor, mode: str, out_sizes: list[int], scales, align_corners: bool) -> Tensor:
    spatial = input.dim() - 2
    key = (mode, spatial)
    _check_resample_sizes(input, out_sizes)
    byte_ok = mode in ("nearest", "nearest-exact", "bilinear", "bicubic")
    if not input.is_floating_point() and not (input.dtype == _rustgrad.uint8 and byte_ok):
        raise _not_implemented(_KERNEL_NAMES[key], input)
    if input.dtype == _rustgrad.uint8 and mode in ("bilinear", "bicubic"):
        raise NotImplementedError(
            "rustgrad: uint8 bilinear/bicubic interpolation (PyTorch's fixed-point kernel) is not supported; "
            "convert the input to a floating dtype"
        )
    ft = np.float64 if input.dtype == _rustgrad.float64 else np.float32
    # ATen's nearest backward kernels take the 2-d shortcuts in every dimension count, even where the
    # forward does not (there its gradient is not the forward's adjoint); rustgrad follows it, and
    # the bicubic one below
    plans = [spatial] if mode != "nearest" or spatial == 2 else [spatial, 2]
    both = []
    for layout in plans:
        taps = []
        # innermost dim first: ATen interpolates the last dim, then combines those rows along the others
        for k in reversed(range(spatial)):
            scale = None if scales is None else scales[k]
            pairs = _taps_for(mode, input.shape[2 + k], out_sizes[k], align_corners, scale, ft, layout)
            if pairs is None:
                continue
            converted = []
            for index, weight in pairs:
                w = None if weight is None else rustgrad.from_numpy(np.ascontiguousarray(weight)).to(input.dtype)
                converted.append((_long(index), w))
            taps.append((2 + k, converted))
        both.append(taps)
    back = both[-1]
    if mode == "bicubic" and list(input.shape[2:]) == out_sizes:
        back = []  # ATen's bicubic backward copies the gradient when no size changes (its forward does not)
    return _UPSAMPLE_FUNCTIONS[key].apply(input, both[0], back)


def _is_integer(x) -> bool:
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return True
    return isinstance(x, Tensor) and not x.is_floating_point()


def _parser_error(op: str, dims: int, linear: bool, bad_size: bool, values) -> TypeError:
    """The TypeError of PyTorch's argument parser for a size or scale list of the wrong types."""
    from rustgrad._args import type_name

    flag, flag_type = ("bool align_corners, ", "bool, ") if linear else ("", "")
    scales = ", ".join(f"float scales{suffix} = None" for suffix in (["_d", "_h", "_w"][3 - dims:] if dims > 1 else [""]))
    listed = "!list of [" + ", ".join(type_name(v) for v in values) + "]!"
    if bad_size:
        got, marked = f"(Tensor, list, {flag_type}NoneType)", f"(Tensor, {listed}, {flag_type}!NoneType!)"
    else:
        got, marked = f"(Tensor, NoneType, {flag_type}list)", f"(Tensor, !NoneType!, {flag_type}{listed})"
    return TypeError(
        f"{op}() received an invalid combination of arguments - got {got}, but expected one of:\n"
        f" * (Tensor input, tuple of ints output_size, {flag}tuple of floats scale_factors)\n"
        f"      didn't match because some of the arguments have invalid types: {marked}\n"
        f" * (Tensor input, tuple of ints output_size, {flag}{scales}, *, Tensor out = None)\n"
    )


def _parse_sizes(values: list, op: str, linear: bool) -> list[int]:
    ok = all(
        isinstance(v, Tensor) or (isinstance(v, (int, np.integer)) and not isinstance(v, bool)) for v in values
    )
    if not ok:
        raise _parser_error(op, len(values), linear, True, values)
    return [int(v.item()) if isinstance(v, Tensor) else int(v) for v in values]


def _parse_scales(values: list, op: str, linear: bool) -> list[float]:
    if not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values):
        raise _parser_error(op, len(values), linear, False, values)
    return [float(v) for v in values]


_OPS = {
    ("nearest", 1): "upsample_nearest1d",
    ("nearest", 2): "upsample_nearest2d",
    ("nearest", 3): "upsample_nearest3d",
    ("nearest-exact", 1): "_upsample_nearest_exact1d",
    ("nearest-exact", 2): "_upsample_nearest_exact2d",
    ("nearest-exact", 3): "_upsample_nearest_exact3d",
    ("linear", 1): "upsample_linear1d",
    ("bilinear", 2): "upsample_bilinear2d",
    ("bicubic", 2): "upsample_bicubic2d",
    ("trilinear", 3): "upsample_trilinear3d",
}


def interpolate(
    input: Tensor,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resamples ``input`` (``[N, C, *spatial]``, 1 to 3 spatial dims) to ``size`` or by ``scale_factor``
    with ``mode`` nearest, nearest-exact, linear, bilinear, bicubic, trilinear or area.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.interpolate.html"""
    check_attribute(input, "dim")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                "align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear"
            )
    elif align_corners is None:
        align_corners = False
    dim = input.dim() - 2
    scale_factors: list[Any] = []
    output_size: list[Any] | None = None
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(
                    "Input and output must have the same number of spatial dimensions, but got input with spatial "
                    f"dimensions of {list(input.shape[2:])} and output size of {size}. Please provide input tensor in "
                    "(N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) format."
                )
            if not all(_is_integer(x) for x in size):
                raise TypeError(
                    "expected size to be one of int or Tuple[int] or Tuple[int, int] or Tuple[int, int, int], but got "
                    f"size with types {[type(x) for x in size]}"
                )
            output_size = list(size)
        else:
            output_size = [size] * dim
    elif scale_factor is not None:
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(
                    "Input and scale_factor must have the same number of spatial dimensions, but got input with "
                    f"spatial dimensions of {list(input.shape[2:])} and scale_factor of shape {scale_factor}. Please "
                    "provide input tensor in (N, C, d1, d2, ...,dK) format and scale_factor in (s1, s2, ...,sK) format."
                )
            scale_factors = list(scale_factor)
        else:
            scale_factors = [scale_factor] * dim
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if mode == "area" and output_size is None:
        recompute_scale_factor = True
    if recompute_scale_factor:
        output_size = [int(input.shape[i + 2] * scale_factors[i]) for i in range(dim)]
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and input.dim() == 4):
        raise ValueError(
            "Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and requires a 4-D tensor as input"
        )
    if mode == "area" and input.dim() in (3, 4, 5):
        from rustgrad.nn import _layer_functional as layers

        pool = (layers.adaptive_avg_pool1d, layers.adaptive_avg_pool2d, layers.adaptive_avg_pool3d)[dim - 1]
        return pool(input, output_size)
    if mode == "lanczos" and input.dim() == 4:
        if align_corners:
            raise ValueError("Lanczos mode does not support align_corners=True")
        if not antialias:
            raise ValueError("Lanczos mode requires antialias=True")
    if (mode, dim) in _OPS:
        if antialias or mode == "lanczos":
            raise NotImplementedError("rustgrad: antialiased interpolation (antialias=True) is not supported")
        op = _OPS[(mode, dim)]
        linear = mode not in ("nearest", "nearest-exact")
        if output_size is not None:
            sizes = _parse_sizes(list(output_size), op, linear)
            scales = None
        else:
            scales = _parse_scales(list(scale_factors), op, linear)
            sizes = [int(input.shape[i + 2] * scales[i]) for i in range(dim)]
        return _resample(input, mode, sizes, scales, bool(align_corners))
    needs = {"linear": 3, "bilinear": 4, "trilinear": 5}
    if mode in needs and input.dim() in (3, 4, 5):
        raise NotImplementedError(f"Got {input.dim()}D input, but {mode} mode needs {needs[mode]}D input")
    raise NotImplementedError(
        f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.dim()}D) for the modes: nearest | linear "
        f"| bilinear | bicubic | trilinear | lanczos | area | nearest-exact (got {mode})"
    )


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None) -> Tensor:
    """Deprecated alias of ``interpolate`` (warns).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.upsample.html"""
    import warnings

    warnings.warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated: ``interpolate(..., mode='nearest')`` (warns).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.upsample_nearest.html"""
    import warnings

    warnings.warn(
        "`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=2
    )
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated: ``interpolate(..., mode='bilinear', align_corners=True)`` (warns).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.upsample_bilinear.html"""
    import warnings

    warnings.warn(
        "`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=2
    )
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------- pixel and channel shuffles


def _shuffle_pixels(x: Tensor, r: int) -> Tensor:
    """``[*, C r^2, H, W] -> [*, C, H r, W r]`` with reshapes and a permute."""
    *batch, c, h, w = x.shape
    n = len(batch)
    y = x.reshape(*batch, c // (r * r), r, r, h, w)
    order = [*range(n), n, n + 3, n + 1, n + 4, n + 2]
    return y.permute(*order).reshape(*batch, c // (r * r), h * r, w * r)


def _unshuffle_pixels(x: Tensor, r: int) -> Tensor:
    """``[*, C, H r, W r] -> [*, C r^2, H, W]``, the inverse of ``_shuffle_pixels``."""
    *batch, c, h, w = x.shape
    n = len(batch)
    y = x.reshape(*batch, c, h // r, r, w // r, r)
    order = [*range(n), n, n + 2, n + 4, n + 1, n + 3]
    return y.permute(*order).reshape(*batch, c * r * r, h // r, w // r)


class _PixelShuffle(Function):
    _node_name = "PixelShuffleBackward0"

    @staticmethod
    def forward(ctx, input, factor):
        ctx.factor = factor
        return _shuffle_pixels(input, factor)

    @staticmethod
    def backward(ctx, grad):
        return _unshuffle_pixels(grad, ctx.factor), None  # a permutation: its gradient is the inverse permutation


class _PixelUnshuffle(Function):
    _node_name = "PixelUnshuffleBackward0"

    @staticmethod
    def forward(ctx, input, factor):
        ctx.factor = factor
        return _unshuffle_pixels(input, factor)

    @staticmethod
    def backward(ctx, grad):
        return _shuffle_pixels(grad, ctx.factor), None  # a permutation: its gradient is the inverse permutation


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """Rearranges ``[*, C r^2, H, W]`` into ``[*, C, H r, W r]`` (``r = upscale_factor``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.pixel_shuffle.html"""
    check_tensor("pixel_shuffle", input)
    r = int_arg("pixel_shuffle", upscale_factor, "upscale_factor", 2)
    if input.dim() < 3:
        raise RuntimeError(
            f"pixel_shuffle expects input to have at least 3 dimensions, but got input with {input.dim()} dimension(s)"
        )
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    c = input.shape[-3]
    if c % (r * r) != 0:
        raise RuntimeError(
            "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of upscale_factor, "
            f"but input.size(-3)={c} is not divisible by {r * r}"
        )
    return _PixelShuffle.apply(input, r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """Rearranges ``[*, C, H r, W r]`` into ``[*, C r^2, H, W]`` (``r = downscale_factor``).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.pixel_unshuffle.html"""
    check_tensor("pixel_unshuffle", input)
    r = int_arg("pixel_unshuffle", downscale_factor, "downscale_factor", 2)
    if input.dim() < 3:
        raise RuntimeError(
            f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with {input.dim()} dimension(s)"
        )
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    h, w = input.shape[-2], input.shape[-1]
    if h % r != 0:
        raise RuntimeError(
            f"pixel_unshuffle expects height to be divisible by downscale_factor, but input.size(-2)={h} is not "
            f"divisible by {r}"
        )
    if w % r != 0:
        raise RuntimeError(
            f"pixel_unshuffle expects width to be divisible by downscale_factor, but input.size(-1)={w} is not "
            f"divisible by {r}"
        )
    return _PixelUnshuffle.apply(input, r)


def _shuffle_channels(x: Tensor, groups: int) -> Tensor:
    n, c, *rest = x.shape
    return x.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)


class _ChannelShuffle(Function):
    _node_name = "ChannelShuffleBackward0"

    @staticmethod
    def forward(ctx, input, groups):
        ctx.groups = groups
        return _shuffle_channels(input, groups)

    @staticmethod
    def backward(ctx, grad):
        return _shuffle_channels(grad, grad.shape[1] // ctx.groups), None  # the inverse permutation (C/g groups)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Splits the channels of ``[N, C, *]`` into ``groups`` and interleaves them.
    https://pytorch.org/docs/stable/generated/torch.nn.ChannelShuffle.html"""
    check_tensor("channel_shuffle", input)
    groups = int_arg("channel_shuffle", groups, "groups", 2)
    if input.dim() <= 2:
        raise RuntimeError(f"channel_shuffle expects input with > 2 dims, but got input with sizes {list(input.shape)}")
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    c = input.shape[1]
    if c % groups != 0:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups.")
    return _ChannelShuffle.apply(input, groups)


# ---------------------------------------------------------------- glu, prelu, rrelu


class _Glu(Function):
    _node_name = "GluBackward0"

    @staticmethod
    def forward(ctx, input, dim):
        ctx.save_for_backward(input)
        ctx.dim = dim
        a, b = input.chunk(2, dim)
        return a * b.sigmoid()

    @staticmethod
    def backward(ctx, grad):
        (input,) = ctx.saved_tensors
        a, b = input.chunk(2, ctx.dim)
        s = b.sigmoid()
        grad_a = grad * s  # d(a s(b))/da = s(b)
        grad_b = grad * a * s * (1 - s)  # d(a s(b))/db = a s(b) (1 - s(b))
        return rustgrad.cat([grad_a, grad_b], ctx.dim), None


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: ``a * sigmoid(b)`` where ``a, b`` are the halves of ``input`` along ``dim``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.glu.html"""
    check_attribute(input, "dim")
    if input.dim() == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = _wrap_dim(int(dim), input.dim())
    if input.shape[d] % 2 != 0:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {input.shape[d]}")
    if not input.is_floating_point():
        raise _not_implemented("glu_cpu", input)
    return _Glu.apply(input, d)


class _Prelu(Function):
    _node_name = "PreluKernelBackward0"

    @staticmethod
    def forward(ctx, input, weight):
        ctx.save_for_backward(input, weight)
        return rustgrad.where(input > 0, input, weight * input).reshape(input.shape)

    @staticmethod
    def backward(ctx, grad):
        input, weight = ctx.saved_tensors
        positive = input > 0
        grad_input = rustgrad.where(positive, grad, weight * grad).reshape(input.shape)  # d/dx = 1 where x > 0, else w
        per = rustgrad.where(positive, grad * 0, input * grad)  # d/dw = 0 where x > 0, else x
        return grad_input, _sum_to(per, list(weight.shape))


def _sum_to(t: Tensor, shape: list[int]) -> Tensor:
    """``t`` summed over the dims that ``shape`` broadcasts."""
    lead = t.dim() - len(shape)
    if lead < 0:
        return t.reshape(shape)
    if lead > 0:
        t = t.sum(list(range(lead)))
    dims = [i for i, s in enumerate(shape) if s == 1 and t.shape[i] != 1]
    if dims:
        t = t.sum(dims, keepdim=True)
    return t.reshape(shape)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``x`` where positive, else ``weight * x``, with one learned slope or one per channel (dim 1).
    https://pytorch.org/docs/stable/generated/torch.nn.functional.prelu.html"""
    check_tensor("prelu", input)
    check_tensor("prelu", weight, "weight", 2)
    if input.dtype != weight.dtype:
        raise RuntimeError(
            f"prelu: Type promoting not supported. Got {scalar_type_name(input.dtype)} and "
            f"{scalar_type_name(weight.dtype)}"
        )
    if weight.dim() > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight.dim()}")
    n = weight.numel()
    if n != 1:
        if input.dim() == 0:
            raise RuntimeError("Not allow zero-dim input tensor.")
        channels = input.shape[1] if input.dim() >= 2 else 1
        if n != channels:
            raise RuntimeError(
                "Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                f"{n} and channel size = {channels}."
            )
    if not input.is_floating_point():
        raise _not_implemented("prelu_cpu", input)
    if input.dim() >= 2:
        weight = weight.reshape([n] + [1] * (input.dim() - 2))
    return _Prelu.apply(input, weight)


class _Rrelu(Function):
    _node_name = "RreluWithNoiseBackward0"

    @staticmethod
    def forward(ctx, input, noise, slope, noise_in_backward):
        ctx.noise = noise if noise_in_backward else None
        ctx.slope = slope
        ctx.save_for_backward(input)
        if noise is not None:
            return input * noise
        return _rustgrad._leaky_relu(input, slope)

    @staticmethod
    def backward(ctx, grad):
        (input,) = ctx.saved_tensors
        if ctx.noise is not None:
            return grad * ctx.noise, None, None, None  # training: d/dx = the drawn slope (1 where x > 0)
        return rustgrad.where(input > 0, grad, grad * ctx.slope), None, None, None  # d/dx = 1, or the mean slope


class _RreluInplace(Function):
    _node_name = "RreluWithNoiseBackward1"

    @staticmethod
    def forward(ctx, input, noise, slope, noise_in_backward):
        ctx.noise = noise if noise_in_backward else None
        ctx.slope = slope
        out = input * noise if noise is not None else _rustgrad._leaky_relu(input, slope)
        input.copy_(out)
        ctx.mark_dirty(input)
        ctx.save_for_backward(input)
        return input

    @staticmethod
    def backward(ctx, grad):
        (result,) = ctx.saved_tensors
        if ctx.noise is not None:
            return grad * ctx.noise, None, None, None  # training: d/dx = the drawn slope (1 where x > 0)
        return rustgrad.where(result > 0, grad, grad * ctx.slope), None, None, None  # sign(result) = sign(x)


def _rrelu(name: str, input, lower, upper, training, inplace: bool) -> Tensor:
    check_tensor(name, input)
    lower = float(number_arg(name, lower, "lower", 2))
    upper = float(number_arg(name, upper, "upper", 3))
    training = strict_bool_arg(name, training, "training", 4)
    if lower > upper:
        raise RuntimeError("Lower bound should be less than or equal to the upper bound")
    noise = None
    if training:
        if not input.is_floating_point():
            raise _not_implemented("rrelu_with_noise_out_cpu", input)
        noise = _rrelu_noise(input, lower, upper)
    elif not input.is_floating_point():
        raise _not_implemented("leaky_relu_cpu", input)
    fn = _RreluInplace if inplace else _Rrelu
    # with (nearly) equal bounds ATen differentiates a training call as a leaky ReLU too
    return fn.apply(input, noise, (lower + upper) / 2, training and upper - lower > 1e-6)


def _rrelu_noise(input: Tensor, lower: float, upper: float) -> Tensor:
    """The slopes: ATen walks the input in memory order and draws one uniform double per non-positive
    element, between the bounds rounded to the input's compute type; 1 elsewhere."""
    flat = input.detach().contiguous().reshape(-1)
    mask = (flat <= 0).numpy() if flat.numel() else np.zeros(0, dtype=bool)
    if input.dtype != _rustgrad.float64:
        lower, upper = float(np.float32(lower)), float(np.float32(upper))
    # 53 random bits per draw as a double in [0, 1), scaled as ATen's uniform_real_distribution does
    # (a product then a sum, not fused)
    unit = _rustgrad._full([int(mask.sum())], 0.0, _rustgrad.float64).uniform_(0.0, 1.0).numpy()
    values = np.ones(flat.numel(), dtype=np.float64)
    values[mask] = unit * (upper - lower) + lower
    return rustgrad.from_numpy(values).to(input.dtype).reshape(input.shape)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, inplace: bool = False) -> Tensor:
    """Randomized leaky ReLU: in training each negative element gets a slope drawn from
    ``U(lower, upper)``; in eval the slope is ``(lower + upper) / 2``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.rrelu.html"""
    return _rrelu("rrelu_" if inplace else "rrelu", input, lower, upper, training, inplace)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False) -> Tensor:
    """In-place ``rrelu``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.rrelu_.html"""
    return _rrelu("rrelu_", input, lower, upper, training, True)


# ---------------------------------------------------------------- embedding_bag


class _EmbeddingBag(Function):
    """Bags of rows of ``weight``: ``plan`` holds the kept entries (their index, bag and scale)."""

    _node_name = "EmbeddingBagBackward0"

    @staticmethod
    def forward(ctx, weight, per_sample_weights, plan):
        ctx.plan = plan
        ctx.save_for_backward(weight, per_sample_weights)
        nbags, dim = plan["nbags"], weight.shape[1]
        if plan["mode"] == "max":
            index = plan["max_index"]
            if index is None:
                return _zeros([nbags, dim], weight.dtype)
            return weight.gather(0, index.clamp(min=0)) * plan["nonempty"]
        rows = weight.index_select(0, plan["index"])
        if per_sample_weights is not None:
            rows = rows * per_sample_weights.index_select(0, plan["position"]).unsqueeze(1)
        out = _zeros([nbags, dim], weight.dtype).index_put((plan["bag"],), rows, accumulate=True)
        if plan["mode"] == "mean":
            out = out / plan["count"].unsqueeze(1)
        return out

    @staticmethod
    def backward(ctx, grad):
        weight, per_sample_weights = ctx.saved_tensors
        plan = ctx.plan
        if plan["mode"] == "max":
            if plan["max_index"] is None:
                return _zeros(weight.shape, grad.dtype), None, None
            # d out[b, d] / d weight[i, d] = 1 for the row i that holds the bag's maximum
            src = grad * plan["nonempty"]
            return _zeros(weight.shape, grad.dtype).scatter_add(0, plan["max_index"].clamp(min=0), src), None, None
        g = grad.index_select(0, plan["bag"])
        if plan["mode"] == "mean":
            g = g / plan["count"].index_select(0, plan["bag"]).unsqueeze(1)
        grad_psw = None
        if per_sample_weights is not None:
            picked = weight.index_select(0, plan["index"])
            per = (picked * g).sum(1)  # d out[b] / d psw[j] = weight[idx[j]]
            grad_psw = _zeros(per_sample_weights.shape, grad.dtype).index_put((plan["position"],), per, accumulate=True)
            g = g * per_sample_weights.index_select(0, plan["position"]).unsqueeze(1)
        if plan["freq"] is not None:
            g = g / plan["freq"].unsqueeze(1)
        # d out[b] / d weight[idx[j]] = psw[j] (sum), 1 / |bag| (mean), for each kept entry j of bag b
        grad_weight = _zeros(weight.shape, grad.dtype).index_put((plan["index"],), g, accumulate=True)
        return grad_weight, grad_psw, None


def _embedding_bag_plan(indices, offsets, weight, mode, include_last_offset, padding_idx, scale_grad_by_freq):
    idx = indices.numpy().astype(np.int64)
    offs = offsets.numpy().astype(np.int64)
    n = idx.size
    num = weight.shape[0]
    type_name = f"torch.{scalar_type_name(offsets.dtype)}Tensor"
    if offs.size and offs[0] != 0:
        raise RuntimeError(
            "offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from position 0. "
            f"However, got {offs[0]}\n[ {type_name}{{}} ]"
        )
    if offs.size and offs[-1] > n:
        raise RuntimeError(f"offsets[-1] can not be greater than input's length {n} but got offsets[-1] of {offs[-1]}")
    bad = np.nonzero((idx < 0) | (idx >= num))[0]
    if bad.size:
        raise RuntimeError(
            f"Index {bad[0]} of input takes value {idx[bad[0]]} which is not in the valid range [0, {num})"
        )
    if mode != "max" and offs.size > 1 and np.any(np.diff(offs) < 0):
        raise RuntimeError(
            "Expected i < index_size to be true, but got false.  (Could this error message be improved?  "
            "If so, please report an enhancement request to PyTorch.)"
        )
    # ATen's generic kernel runs the last bag to the end of the input even with include_last_offset
    # (its float32 fast path stops the sum at the last offset, but not the mean's count or the gradient)
    starts = offs[:-1] if include_last_offset else offs
    ends = np.append(offs[1 : starts.size], n).astype(np.int64)[: starts.size]
    nbags = starts.size
    keep_positions, bags = [], []
    for b in range(nbags):
        pos = np.arange(starts[b], max(ends[b], starts[b]))
        if padding_idx is not None:
            pos = pos[idx[pos] != padding_idx]
        keep_positions.append(pos)
        bags.append(np.full(pos.size, b, dtype=np.int64))
    position = np.concatenate(keep_positions).astype(np.int64) if nbags else np.zeros(0, dtype=np.int64)
    bag = np.concatenate(bags).astype(np.int64) if nbags else np.zeros(0, dtype=np.int64)
    counts = np.array([p.size for p in keep_positions], dtype=np.float64)
    plan = {
        "mode": mode,
        "nbags": nbags,
        "index": _long(idx[position]),
        "position": _long(position),
        "bag": _long(bag),
        "count": rustgrad.from_numpy(np.maximum(counts, 1)).to(weight.dtype),
        "freq": None,
        "max_index": None,
    }
    if scale_grad_by_freq:
        kept = idx if padding_idx is None else idx[idx != padding_idx]
        freq = np.bincount(kept, minlength=num).astype(np.float64)
        plan["freq"] = rustgrad.from_numpy(freq[idx[position]]).to(weight.dtype)
    if mode == "max" and nbags and position.size:
        longest = int(max(p.size for p in keep_positions))
        table = np.full((nbags, longest), -1, dtype=np.int64)
        for b, p in enumerate(keep_positions):
            table[b, : p.size] = idx[p]
        dim = weight.shape[1]
        with rustgrad.no_grad():
            rows = weight.detach().index_select(0, _long(np.maximum(table, 0).reshape(-1))).reshape(nbags, longest, dim)
            empty = _long(table < 0).bool().unsqueeze(2).expand(nbags, longest, dim)
            rows = rows.masked_fill(empty, float("-inf"))
            arg = rows.max(1)[1].numpy()
        max_index = np.take_along_axis(table, arg, axis=1)
        max_index[counts == 0] = -1
        plan["max_index"] = _long(max_index)
        plan["nonempty"] = rustgrad.from_numpy((counts > 0).astype(np.float64)).to(weight.dtype).unsqueeze(1)
    return plan


def embedding_bag(
    input: Tensor,
    weight: Tensor,
    offsets: Tensor | None = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """Sums, averages or takes the maximum of bags of embeddings (rows of ``weight``) without
    materialising them; bags are the rows of a 2-D ``input`` or slices of a 1-D one at ``offsets``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.embedding_bag.html"""
    import warnings

    check_attribute(weight, "dtype")
    if weight.dtype == _rustgrad.int64:
        check_attribute(input, "is_floating_point")
    if weight.dtype == _rustgrad.int64 and input.is_floating_point():
        warnings.warn(
            "Argument order of nn.functional.embedding_bag was changed. Usage `embedding_bag(weight, input, ...)` "
            "is deprecated, and should now be `embedding_bag(input, weight, ...)`.",
            stacklevel=2,
        )
        weight, input = input, weight
    if per_sample_weights is not None and input.size() != per_sample_weights.size():
        raise ValueError(
            f"embedding_bag: If per_sample_weights ({per_sample_weights.shape}) is not None, then it must have the "
            f"same shape as the input ({input.shape})"
        )
    if weight.dim() != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension {weight.dim()}")
    check_attribute(input, "dim")
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError(
                "if input is 2D, then offsets has to be None, as input is treated is a mini-batch of fixed length "
                f"sequences. However, found offsets of type {_torch_type_str(offsets)}"
            )
        offsets = _long(np.arange(0, input.numel(), input.shape[1])).to(input.dtype)
        include_last_offset = False
        input = input.reshape(-1)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
    elif input.dim() == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if offsets.dim() != 1:
            raise ValueError("offsets has to be a 1D Tensor")
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.dim()}")
    if mode == "max":
        if scale_grad_by_freq:
            raise ValueError("max mode does not support scaling the gradient by the frequency")
        if sparse:
            raise ValueError("max mode does not support sparse weights")
    elif mode not in ("sum", "mean"):
        raise ValueError("mode has to be one of sum, mean or max")
    num = weight.shape[0]
    if max_norm is not None:
        from rustgrad.nn._layer_functional import _renorm_rows

        _renorm_rows(weight, input, float(max_norm), float(norm_type))
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(
            "embedding_bag: per_sample_weights was not None. per_sample_weights is only supported for mode='sum' "
            f"(got mode='{mode}'). Please open a feature request on GitHub."
        )
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise RuntimeError(
                f"padding_idx must be within the number of embeddings, {-num} through {num - 1}, but got {padding_idx}"
            )
        padding_idx = padding_idx % num
    common = _rustgrad._result_type(input, offsets)
    if common not in (_rustgrad.int64, _rustgrad.int32):
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got "
            f"torch.{scalar_type_name(common)}Tensor instead (while checking arguments for embedding_bag)"
        )
    if not weight.is_floating_point():
        raise RuntimeError(
            "Expected tensor for argument #1 'weight' to have one of the following scalar types: Half, BFloat16, "
            f"Float, Double; but got torch.{scalar_type_name(weight.dtype)}Tensor instead (while checking arguments "
            "for embedding_bag)"
        )
    if per_sample_weights is not None and per_sample_weights.dtype != weight.dtype:
        raise RuntimeError(
            "Expected tensor for argument #1 'weight' to have the same type as tensor for argument #1 "
            f"'per_sample_weights'; but type torch.{scalar_type_name(weight.dtype)}Tensor does not equal "
            f"torch.{scalar_type_name(per_sample_weights.dtype)}Tensor (while checking arguments for embedding_bag)"
        )
    if sparse:
        raise NotImplementedError("rustgrad: sparse embedding gradients are not supported (use sparse=False)")
    offsets = offsets.to(common)
    plan = _embedding_bag_plan(input, offsets, weight, mode, include_last_offset, padding_idx, scale_grad_by_freq)
    return _EmbeddingBag.apply(weight, per_sample_weights, plan)


def _torch_type_str(obj) -> str:
    cls = type(obj)
    if isinstance(obj, Tensor):
        return "<class 'torch.Tensor'>"
    return str(cls)


# ---------------------------------------------------------------- margin losses


def _reduction_name(size_average, reduce, reduction: str) -> str:
    from rustgrad.nn.functional import _reduction_enum

    return _reduction_enum(size_average, reduce, reduction)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class _SoftMarginLoss(Function):
    _node_name = "SoftMarginLossBackward0"

    @staticmethod
    def forward(ctx, input, target, reduction):
        ctx.save_for_backward(input, target)
        ctx.reduction = reduction
        loss = (-input * target).to(input.dtype).exp().log1p()
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        input, target = ctx.saved_tensors
        z = (-target * input).exp()
        scale = 1.0 / input.numel() if ctx.reduction == "mean" else 1.0
        grad_input = -target * z / (1 + z) * scale * grad  # d log(1 + exp(-y x))/dx = -y e^(-yx) / (1 + e^(-yx))
        return grad_input.to(input.dtype), None, None


def soft_margin_loss(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"
) -> Tensor:
    """Two-class logistic loss ``log(1 + exp(-y x))`` with targets ``y`` of 1 or -1.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.soft_margin_loss.html"""
    from rustgrad.nn.functional import _broadcast_pair, _check_not_differentiable

    reduction = _reduction_name(size_average, reduce, reduction)
    check_tensor("soft_margin_loss", input)
    check_tensor("soft_margin_loss", target, "target", 2)
    expanded, _ = _broadcast_pair(input, target)
    if list(expanded.shape) != list(input.shape):
        raise RuntimeError(
            f"output with shape {list(input.shape)} doesn't match the broadcast shape {list(expanded.shape)}"
        )
    if not input.is_floating_point():
        raise RuntimeError(
            f"result type Float can't be cast to the desired output type {scalar_type_name(input.dtype)}"
        )
    _check_not_differentiable("soft_margin_loss", target=target)
    return _SoftMarginLoss.apply(input, target, reduction)


def _as_matrix(input: Tensor) -> Tensor:
    return input.reshape(1, -1) if input.dim() <= 1 else input


class _MultiMarginLoss(Function):
    _node_name = "MultiMarginLossBackward0"

    @staticmethod
    def forward(ctx, input, target, p, margin, weight, reduction, out_shape):
        ctx.save_for_backward(input, target, weight)
        ctx.p, ctx.margin, ctx.reduction = p, margin, reduction
        x = _as_matrix(input)
        y = target.reshape(-1, 1)
        z, mask = _margins(x, y, margin)
        h = rustgrad.where(mask, z if p == 1 else z * z, z * 0)
        if weight is not None:
            h = h * weight.index_select(0, y.reshape(-1)).unsqueeze(1)
        loss = h.sum(1) / x.shape[1]
        return _reduce(loss, reduction).reshape(out_shape) if reduction == "none" else _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        input, target, weight = ctx.saved_tensors
        x = _as_matrix(input)
        y = target.reshape(-1, 1)
        z, mask = _margins(x, y, ctx.margin)
        n, c = x.shape
        g = grad.reshape(-1, 1) if ctx.reduction == "none" else grad / n if ctx.reduction == "mean" else grad
        # d max(0, m - x_y + x_i)^p / dx_i = p z^(p-1) where z > 0 (and minus that for x_y)
        coef = rustgrad.where(mask, z * 0 + 1 if ctx.p == 1 else 2 * z, z * 0) * (g / c)
        if weight is not None:
            coef = coef * weight.index_select(0, y.reshape(-1)).unsqueeze(1)
        is_target = (rustgrad.arange(c).unsqueeze(0) == y).to(x.dtype)
        grad_x = coef - is_target * coef.sum(1, keepdim=True)
        return grad_x.reshape(input.shape), None, None, None, None, None, None


def _margins(x: Tensor, y: Tensor, margin: float):
    """``margin - x[y] + x[i]`` for every class ``i``, and where it counts (positive, ``i != y``)."""
    z = margin - x.gather(1, y) + x
    classes = rustgrad.arange(x.shape[1]).unsqueeze(0)
    return z, (z > 0) * (classes != y)  # (bool * bool: logical and)


def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Multi-class hinge loss: ``sum_{i != y} max(0, margin - x[y] + x[i])^p / C`` per sample, optionally
    weighted by the target class.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.multi_margin_loss.html"""
    from rustgrad.nn.functional import _check_not_differentiable

    reduction = _reduction_name(size_average, reduce, reduction)
    if p != 1 and p != 2:
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.dim() != 1:
        raise ValueError("weight must be one-dimensional")
    check_tensor("multi_margin_loss", input)
    check_tensor("multi_margin_loss", target, "target", 2)
    margin = float(number_arg("multi_margin_loss", margin, "margin", 4))
    nd = input.dim()
    if not ((nd == 2 and input.shape[1] != 0) or (nd == 1 and input.shape[0] != 0) or nd == 0):
        raise RuntimeError(
            f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: {list(input.shape)}"
        )
    nframe = input.shape[0] if nd == 2 else 1
    classes = input.shape[-1] if nd >= 1 else 1
    if target.dim() > 1 or target.numel() != nframe:
        raise RuntimeError(
            "multi_margin_loss: target tensor should be 1-D with size equal to the number of input samples (batch "
            f"size). Expected target size [{nframe}], but got {list(target.shape)}. Input has shape {list(input.shape)}."
        )
    if weight is not None and weight.numel() != classes:
        raise RuntimeError(f"inconsistent weight size, expected {classes} but got {list(weight.shape)}")
    if not input.is_floating_point():
        raise _not_implemented("multi_margin_loss_cpu_kernel", input)
    if target.dtype != _rustgrad.int64:
        raise RuntimeError(f"expected scalar type Long but found {scalar_type_name(target.dtype)}")
    if weight is not None and weight.dtype != input.dtype:
        raise RuntimeError(
            f"expected scalar type {scalar_type_name(input.dtype)} but found {scalar_type_name(weight.dtype)}"
        )
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= classes):
        raise RuntimeError("target out of range")
    _check_not_differentiable("multi_margin_loss", weight=weight)
    return _MultiMarginLoss.apply(input, target, int(p), margin, weight, reduction, list(target.shape))


class _MultilabelMarginLoss(Function):
    _node_name = "MultilabelMarginLossBackward0"

    @staticmethod
    def forward(ctx, input, target, reduction, out_shape):
        ctx.save_for_backward(input, target)
        ctx.reduction = reduction
        x = _as_matrix(input)
        z, mask, _ = _label_margins(x, target.reshape(x.shape))
        loss = rustgrad.where(mask, z, z * 0).sum((1, 2)) / x.shape[1]
        return loss.reshape(out_shape) if reduction == "none" else _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        input, target = ctx.saved_tensors
        x = _as_matrix(input)
        _, mask, labels = _label_margins(x, target.reshape(x.shape))
        n, c = x.shape
        g = grad.reshape(-1) if ctx.reduction == "none" else grad / n if ctx.reduction == "mean" else grad.reshape(1)
        # d max(0, 1 - x[y_j] + x[i]) / dx_i = 1 where positive, and -1 for x[y_j]
        coef = mask.to(x.dtype) * (g.reshape(-1, 1, 1) / c)
        grad_x = coef.sum(1) - _zeros([n, c], x.dtype).scatter_add(1, labels, coef.sum(2))
        return grad_x.reshape(input.shape), None, None, None


def _label_margins(x: Tensor, target: Tensor):
    """``1 - x[y_j] + x[i]`` for every listed label ``y_j`` (up to the first -1) and class ``i``, and
    where it counts (positive, ``i`` not a label)."""
    t = target.numpy()
    n, c = x.shape
    listed = np.cumprod(t != -1, axis=1).astype(bool)
    labels = np.where(listed, t, 0)
    is_label = np.zeros((n, c), dtype=bool)
    rows = np.nonzero(listed)[0]
    is_label[rows, labels[listed]] = True
    labels_t = _long(labels)
    z = 1 - x.gather(1, labels_t).unsqueeze(2) + x.unsqueeze(1)
    keep = rustgrad.from_numpy(listed[:, :, None] & ~is_label[:, None, :])
    return z, keep * (z > 0), labels_t  # (bool * bool: logical and)


def multilabel_margin_loss(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"
) -> Tensor:
    """Multi-label hinge loss: ``sum_j sum_{i not a label} max(0, 1 - x[y_j] + x[i]) / C``, the labels
    ``y_j`` being the leading entries of ``target`` up to the first -1.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.multilabel_margin_loss.html"""
    reduction = _reduction_name(size_average, reduce, reduction)
    check_tensor("multilabel_margin_loss", input)
    check_tensor("multilabel_margin_loss", target, "target", 2)
    nd = input.dim()
    if not ((nd == 2 and input.shape[1] != 0) or (nd == 1 and input.shape[0] != 0) or nd == 0):
        raise RuntimeError(
            f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: {list(input.shape)}"
        )
    if nd <= 1:
        classes = input.shape[0] if nd == 1 else 1
        ok = target.dim() <= 1 and target.numel() == classes
    else:
        classes = input.shape[1]
        ok = target.dim() == 2 and list(target.shape) == list(input.shape)
    if not ok:
        raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of size: {list(input.shape)}")
    if target.numel() and (int(target.min()) < -1 or int(target.max()) >= classes):
        raise RuntimeError("argument #2 'target' is out of range")
    if not input.is_floating_point():
        raise _not_implemented("multilabel_margin_loss_forward_out_frame", input)
    if target.dtype != _rustgrad.int64:
        raise RuntimeError(f"expected scalar type Long but found {scalar_type_name(target.dtype)}")
    out_shape = [input.shape[0]] if nd == 2 else []
    return _MultilabelMarginLoss.apply(input, target, reduction, out_shape)
