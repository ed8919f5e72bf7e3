"""Tensor-API ops written with other ops (as PyTorch's composite ops are): ``new_*`` factories,
``tile``, ``outer``, ``meshgrid``, ``count_nonzero``, ``isclose``, ``einsum``. Their gradients
and ``grad_fn`` names are those of the ops they are made of, as in PyTorch."""

from __future__ import annotations

import builtins as _builtins
import warnings
from typing import Any

import numpy as _np


def _torch():
    import rustgrad

    return rustgrad


def _sizes(args: tuple) -> Any:
    """``f(2, 3)`` and ``f((2, 3))`` both give the size ``(2, 3)``."""
    if len(args) == 1 and not isinstance(args[0], _builtins.int):
        return args[0]
    return args


def new_factory(kind: str, t: Any, args: tuple, kwargs: dict) -> Any:
    """``t.new_zeros/new_ones/new_empty/new_full/new_tensor``: ``t``'s dtype unless given."""
    torch = _torch()
    kwargs = dict(kwargs)
    kwargs.setdefault("dtype", t.dtype)
    if kwargs["dtype"] is None:
        kwargs["dtype"] = t.dtype
    if kind == "full":
        if len(args) < 2:
            size = kwargs.pop("size", args[0] if args else None)
            fill = kwargs.pop("fill_value", None)
        else:
            size, fill = args[0], args[1]
        return torch.full(size, fill, **kwargs)
    if kind == "tensor":
        data = args[0] if args else kwargs.pop("data")
        if isinstance(data, torch.Tensor):
            warnings.warn(
                "To copy construct from a tensor, it is recommended to use sourceTensor.detach().clone() or "
                "sourceTensor.detach().clone().requires_grad_(True), rather than tensor.new_tensor(sourceTensor).",
                UserWarning,
                stacklevel=3,
            )
            requires_grad = kwargs.pop("requires_grad", False)
            out = data.detach().to(kwargs.pop("dtype")).clone()
            kwargs.pop("device", None)
            return out.requires_grad_(requires_grad) if requires_grad else out
        return torch.tensor(data, **kwargs)
    size = _sizes(args) if args else kwargs.pop("size")
    return getattr(torch, kind)(size, **kwargs)


def tile(t: Any, dims: tuple) -> Any:
    """``t.tile(dims)``: ``repeat`` with ``dims`` padded with leading ones to ``t.dim()``."""
    reps = list(_sizes(dims))
    if len(reps) < t.dim():
        reps = [1] * (t.dim() - len(reps)) + reps
    return t.repeat(*reps)


def outer(t: Any, vec2: Any) -> Any:
    """``t.outer(vec2)``: ``t[i] * vec2[j]`` (``MulBackward0``, as in PyTorch)."""
    torch = _torch()
    if not isinstance(vec2, torch.Tensor):
        raise TypeError(f"outer(): argument 'vec2' (position 1) must be Tensor, not {type(vec2).__name__}")
    for name, v in (("self", t), ("vec2", vec2)):
        if v.dim() != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {v.dim()}-D")
    return t.reshape(t.shape[0], 1) * vec2


def meshgrid(*tensors: Any, indexing: str | None = None) -> tuple:
    """``torch.meshgrid``: coordinate grids as expanded views (``ExpandBackward0``)."""
    torch = _torch()
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn(
            "torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument.",
            UserWarning,
            stacklevel=2,
        )
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}')
    if len(tensors) == 0:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"meshgrid(): expected Tensor as element 0 in argument 0, but got {type(t).__name__}")
        if t.dim() > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t}")
    for t in tensors[1:]:
        if t.dtype != tensors[0].dtype:
            raise RuntimeError("meshgrid expects all tensors to have the same dtype")
    ts = list(tensors)
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = [t.numel() for t in ts]
    grids = []
    for i, t in enumerate(ts):
        view = [1] * len(ts)
        view[i] = -1
        grids.append(t.view(view).expand(*shape))
    if swap:
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def count_nonzero(t: Any, dim: Any = None) -> Any:
    """The number of non-zero elements over ``dim`` (all if None), as int64."""
    torch = _torch()
    nz = t != 0
    if dim is None:
        return nz.sum()
    dims = [dim] if isinstance(dim, _builtins.int) else list(dim)
    return torch.sum(nz, dims) if dims else nz.sum()


def isclose(input: Any, other: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Any:
    """Element-wise ``|input - other| <= atol + rtol * |other|`` (equal values, infinities included)."""
    torch = _torch()
    if not isinstance(other, torch.Tensor):
        raise TypeError(f"isclose(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
    if input.dtype != other.dtype:
        from rustgrad._args import scalar_type_name as _scalar_type_name

        raise RuntimeError(f"{_scalar_type_name(input.dtype)} did not match {_scalar_type_name(other.dtype)}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value < 0:
            raise RuntimeError(f"{name} must be greater than or equal to zero, but got {value:g}")
    shape = tuple((input.detach() == other.detach()).shape)
    a = _np.broadcast_to(input.detach().numpy(), shape)
    b = _np.broadcast_to(other.detach().numpy(), shape)
    if a.dtype == _np.bool_:
        return torch.from_numpy(_np.ascontiguousarray(a == b))
    with _np.errstate(invalid="ignore", over="ignore"):
        close = _np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)
    return torch.from_numpy(_np.ascontiguousarray(close))
