"""``nn.init``: in-place initialisers with PyTorch's arithmetic, so seeded weights match PyTorch's."""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist
from typing import Any

import numpy as np

import rustgrad
from rustgrad import Tensor
from rustgrad._args import check_tensor

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def _generator_kwargs(generator: Any) -> dict:
    return {} if generator is None else {"generator": generator}


def _no_grad_uniform_(tensor: Tensor, a: float, b: float, generator: Any = None) -> Tensor:
    with rustgrad.no_grad():
        return tensor.uniform_(a, b, **_generator_kwargs(generator))


def _no_grad_normal_(tensor: Tensor, mean: float, std: float, generator: Any = None) -> Tensor:
    with rustgrad.no_grad():
        return tensor.normal_(mean, std, **_generator_kwargs(generator))


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity`` (e.g. ``sqrt(2)`` for ``'relu'``)."""
    linear_fns = [
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
    ]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    elif nonlinearity == "tanh":
        return 5.0 / 3
    elif nonlinearity == "relu":
        return math.sqrt(2.0)
    elif nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, int) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    elif nonlinearity == "selu":
        return 3.0 / 4
    else:
        raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fills ``tensor`` in place with draws from the uniform distribution on ``[a, b)``, without
    recording gradients.
    https://pytorch.org/docs/stable/nn.init.html#torch.nn.init.uniform_"""
    check_tensor("uniform_", tensor, "tensor")
    return _no_grad_uniform_(tensor, a, b, generator)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fills ``tensor`` in place with draws from a normal distribution of the given ``mean`` and
    ``std``, without recording gradients.
    https://pytorch.org/docs/stable/nn.init.html#torch.nn.init.normal_"""
    check_tensor("normal_", tensor, "tensor")
    return _no_grad_normal_(tensor, mean, std, generator)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fills ``tensor`` in place with ``val``, without recording gradients.
    https://pytorch.org/docs/stable/nn.init.html#torch.nn.init.constant_"""
    check_tensor("constant_", tensor, "tensor")
    with rustgrad.no_grad():
        return tensor.fill_(val)


def ones_(tensor: Tensor) -> Tensor:
    """Fills ``tensor`` in place with ones, without recording gradients.
    https://pytorch.org/docs/stable/nn.init.html#torch.nn.init.ones_"""
    check_tensor("ones_", tensor, "tensor")
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    """Fills ``tensor`` in place with zeros, without recording gradients.
    https://pytorch.org/docs/stable/nn.init.html#torch.nn.init.zeros_"""
    check_tensor("zeros_", tensor, "tensor")
    with rustgrad.no_grad():
        return tensor.zero_()


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    if tensor.dim() < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive_field_size = 1
    for s in tensor.shape[2:]:
        receptive_field_size *= s
    return tensor.size(1) * receptive_field_size, tensor.size(0) * receptive_field_size


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    valid_modes = ["fan_in", "fan_out"]
    if not isinstance(mode, str):
        raise TypeError(f"Mode {mode} not supported, please use one of {valid_modes}")
    mode = mode.lower()
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot initialisation: uniform on ``[-a, a]`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``.
    https://pytorch.org/docs/stable/nn.init.html#torch.nn.init.xavier_uniform_"""
    check_tensor("xavier_uniform_", tensor, "tensor")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std  # the uniform bound with that standard deviation
    return _no_grad_uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot initialisation: normal with ``std = gain * sqrt(2 / (fan_in + fan_out))``.
    https://pytorch.org/docs/stable/nn.init.html#torch.nn.init.xavier_normal_"""
    check_tensor("xavier_normal_", tensor, "tensor")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return _no_grad_normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Tensor:
    """He initialisation: uniform on ``[-b, b]`` with ``b = gain * sqrt(3 / fan)``, where ``gain`` comes
    from ``nonlinearity`` (and ``a``, the leaky_relu slope) and ``fan`` from ``mode``.
    https://pytorch.org/docs/stable/nn.init.html#torch.nn.init.kaiming_uniform_"""
    check_tensor("kaiming_uniform_", tensor, "tensor")
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std  # the uniform bound with that standard deviation
    return _no_grad_uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Tensor:
    """He initialisation: normal with ``std = gain / sqrt(fan)``, where ``gain`` comes from
    ``nonlinearity`` (and ``a``, the leaky_relu slope) and ``fan`` from ``mode``.
    https://pytorch.org/docs/stable/nn.init.html#torch.nn.init.kaiming_normal_"""
    check_tensor("kaiming_normal_", tensor, "tensor")
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _no_grad_normal_(tensor, 0, std, generator)


# Below this probability of a normal draw landing in [a, b], PyTorch switches from redrawing
# normals to proposals of its own (found by experiment: between 0.29 and 0.30).
_TRUNC_NORMAL_REDRAW_MIN = 0.3


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: Any = None,
) -> Tensor:
    """Fills ``tensor`` with a normal ``N(mean, std^2)`` truncated to ``(a, b]``
    (https://pytorch.org/docs/stable/nn.init.html#torch.nn.init.trunc_normal_).

    Drawn as PyTorch draws it (found by experiment), in rounds until every element has a value:
    when a normal draw lands in ``[a, b]`` with probability 0.3 or more (the usual case, e.g.
    ``std=0.02`` with the default bounds), a whole tensor of ``normal_(mean, std)`` per round,
    each element keeping its first draw in ``(a, b]``; otherwise a tensor of uniform proposals
    on ``[a, b]`` and one of uniforms ``v`` per round, a proposal ``x`` kept when ``v`` is at most
    the normal density at ``x`` over its largest value on the interval."""
    check_tensor("trunc_normal_", tensor, "tensor")
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The distribution of values may be incorrect.",
            stacklevel=2,
        )
    with rustgrad.no_grad():
        if tensor.numel() == 0:
            return tensor
        if a > b:
            rustgrad.empty(0).uniform_(a, b)  # PyTorch's error for the interval
        inside = NormalDist(mean, std).cdf(b) - NormalDist(mean, std).cdf(a) if std > 0 else 0.0
        if inside >= _TRUNC_NORMAL_REDRAW_MIN:
            def draw() -> tuple[np.ndarray, np.ndarray]:
                z = rustgrad.empty_like(tensor).normal_(mean, std, generator=generator).numpy()
                return z, (z > a) & (z <= b)

            result, done = draw()
            while not done.all():
                z, accept = draw()
                take = accept & np.logical_not(done)
                result = np.where(take, z, result)
                done = np.logical_or(done, take)
            return tensor.copy_(rustgrad.from_numpy(np.ascontiguousarray(result)))
        # Uniform proposals on [a, b], each kept with the normal density over its largest
        # value on the interval (a whole tensor of proposals, then one of uniforms, per round).
        lo, hi = (a - mean) / std, (b - mean) / std

        def propose() -> tuple[np.ndarray, np.ndarray]:
            x = rustgrad.empty_like(tensor).uniform_(a, b, generator=generator)
            v = rustgrad.empty_like(tensor).uniform_(generator=generator)
            z = (x - mean) / std
            if a <= mean <= b:
                rho = (-z * z / 2).exp()
            elif mean < a:
                rho = ((lo * lo - z * z) / 2).exp()
            else:
                rho = ((hi * hi - z * z) / 2).exp()
            return x.numpy(), (v <= rho).numpy()

        result, done = propose()
        while not done.all():
            x, accept = propose()
            take = accept & np.logical_not(done)
            result = np.where(take, x, result)
            done = np.logical_or(done, take)
        return tensor.copy_(rustgrad.from_numpy(np.ascontiguousarray(result)))
