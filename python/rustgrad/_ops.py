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
    a = _np.broadcast_to(_np_of(input), shape)
    b = _np.broadcast_to(_np_of(other), shape)
    if a.dtype == _np.bool_:
        return torch.from_numpy(_np.ascontiguousarray(a == b))
    with _np.errstate(invalid="ignore", over="ignore"):
        close = _np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)
    return torch.from_numpy(_np.ascontiguousarray(close))


def remainder(input: Any, other: Any, **kwargs: Any) -> Any:
    """``torch.remainder(input, other)``: Python's ``%`` (the sign of ``other``); ``input`` may be a number."""
    torch = _torch()
    if not isinstance(input, torch.Tensor) and isinstance(other, torch.Tensor):
        return other.__rmod__(input)
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"remainder(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    return input.remainder(other, **kwargs)


def _np_of(t: Any) -> Any:
    """``t``'s values as a numpy array (bfloat16, which numpy lacks, as float32)."""
    t = t.detach()
    if t.dtype == _torch().bfloat16:
        t = t.float()
    return t.numpy()


def _from_np(a: Any) -> Any:
    return _torch().from_numpy(_np.array(a, order="C"))


def searchsorted(
    sorted_sequence: Any,
    input: Any,
    *,
    out_int32: bool = False,
    right: bool = False,
    side: str | None = None,
    sorter: Any = None,
) -> Any:
    """Indices where ``input``'s values would be inserted into the innermost rows of ``sorted_sequence``."""
    torch = _torch()
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError(
                "torch.searchsorted(): side and right can't be set to opposites, got side of left while right was True"
            )
        right = side == "right"
    seq = _np_of(sorted_sequence)
    if sorter is not None:
        seq = _np.take_along_axis(seq, _np_of(sorter), -1)
    scalar = not isinstance(input, torch.Tensor)
    values = _np.asarray(input) if scalar else _np_of(input)
    how: Any = "right" if right else "left"
    if seq.ndim <= 1:
        out = _np.searchsorted(seq, values, side=how)
    else:
        if scalar or seq.shape[:-1] != values.shape[:-1]:
            raise RuntimeError(
                "torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 dimensions of "
                f"boundaries tensor and input value tensor must match, but we got boundaries tensor "
                f"{list(seq.shape)} and input value tensor {list(values.shape)}"
            )
        out = _np.empty(values.shape, dtype=_np.int64)
        for idx in _np.ndindex(*seq.shape[:-1]):
            out[idx] = _np.searchsorted(seq[idx], values[idx], side=how)
    out = _np.asarray(out, dtype=_np.int32 if out_int32 else _np.int64)
    return _from_np(out)


def bucketize(input: Any, boundaries: Any, *, out_int32: bool = False, right: bool = False) -> Any:
    """The bucket of each value of ``input`` among the 1-D ``boundaries``."""
    if boundaries.dim() != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.dim()})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def histc(input: Any, bins: int = 100, min: float = 0, max: float = 0) -> Any:
    """A histogram of ``bins`` equal bins over ``[min, max]`` (the data's range when both are 0)."""
    torch = _torch()
    if not input.dtype.is_floating_point:
        from rustgrad._args import scalar_type_name as _scalar_type_name

        raise NotImplementedError(f"\"histogram_cpu\" not implemented for '{_scalar_type_name(input.dtype)}'")
    if bins <= 0:
        raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
    a = _np_of(input).reshape(-1)
    lo, hi = float(min), float(max)
    if lo == hi and a.size:
        lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError("torch.histc: max must be larger than min")
    counts = _np.zeros(bins, dtype=a.dtype)
    inside = a[(a >= lo) & (a <= hi)]
    pos = ((inside.astype(_np.float64) - lo) * bins / (hi - lo)).astype(_np.int64)
    _np.add.at(counts, _np.minimum(pos, bins - 1), 1)
    return torch.from_numpy(counts).to(input.dtype)


def histogram(
    input: Any, bins: Any = 100, *, range: Any = None, weight: Any = None, density: bool = False, out: Any = None
) -> Any:
    """``torch.histogram``: counts (or weights, or a density) of ``input`` in ``bins`` equal bins over
    ``range`` (the data's range by default), or over the given bin-edge tensor; returns ``(hist,
    bin_edges)``. https://pytorch.org/docs/stable/generated/torch.histogram.html"""
    torch = _torch()
    if not input.dtype.is_floating_point:
        from rustgrad._args import scalar_type_name as _scalar_type_name

        raise NotImplementedError(f"\"histogram_cpu\" not implemented for '{_scalar_type_name(input.dtype)}'")
    a = _np_of(input).reshape(-1)
    if isinstance(bins, torch.Tensor):
        edges = bins.to(input.dtype)
    else:
        if bins <= 0:
            raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
        if range is not None:
            lo, hi = float(range[0]), float(range[1])
        elif a.size:
            lo, hi = float(a.min()), float(a.max())
        else:
            lo = hi = 0.0
        if lo > hi:
            raise ValueError(f"torch.histogram(): min should not exceed max, but got min {lo} max {hi} for dimension 0")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = torch.linspace(lo, hi, bins + 1, dtype=input.dtype)
    e = _np_of(edges)
    nbins = e.size - 1
    w = None if weight is None else _np_of(weight).reshape(-1).astype(_np.float64)
    inside = (a >= e[0]) & (a <= e[-1])
    # Bin i holds edges[i] <= x < edges[i + 1]; the last bin also holds its right edge.
    pos = _np.minimum(_np.searchsorted(e, a[inside], side="right") - 1, nbins - 1)
    counts = _np.zeros(nbins, dtype=_np.float64)
    _np.add.at(counts, pos, 1.0 if w is None else w[inside])
    hist = torch.from_numpy(counts).to(input.dtype)
    if density:
        widths = edges[1:] - edges[:-1]
        hist = hist / hist.sum() / widths
    from rustgrad._glue import _return_type

    result = _return_type("histogram", hist, edges)
    if out is not None:
        out[0].copy_(result[0])
        out[1].copy_(result[1])
    return result


def unique(
    input: Any,
    sorted: bool = True,
    return_inverse: bool = False,
    return_counts: bool = False,
    dim: int | None = None,
) -> Any:
    """The distinct values (sorted), with the inverse indices and counts when asked for."""
    a = _np_of(input)
    if dim is None:
        values, inverse, counts = _np.unique(a.reshape(-1), return_inverse=True, return_counts=True)
        inverse = inverse.reshape(a.shape)
    else:
        values, inverse, counts = _np.unique(a, return_inverse=True, return_counts=True, axis=dim % max(a.ndim, 1))
        inverse = inverse.reshape(-1)
    out = [_from_np(values).to(input.dtype)]
    if input.requires_grad and input.dtype.is_floating_point:
        from rustgrad import _rustgrad

        out[0] = _rustgrad._no_derivative(out[0], input, "unique" if dim is None else "unique_dim")
    if return_inverse:
        out.append(_from_np(inverse.astype(_np.int64)))
    if return_counts:
        out.append(_from_np(counts.astype(_np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def _einsum_labels(term: str, ndim: int, n_ell: int) -> list:
    """A term's labels, ``...`` expanded into the last ``ndim - letters`` of ``n_ell`` ellipsis labels."""
    if "..." in term:
        head, tail = term.split("...")
        k = ndim - len(head) - len(tail)
        return list(head) + [f".{i}" for i in range(n_ell - k, n_ell)] + list(tail)
    return list(term)


def _einsum_pair(a: Any, b: Any, sum_dims: list) -> Any:
    """``(a * b).sum(sum_dims, keepdim=True)`` for aligned operands, through one ``bmm``."""
    nd = a.dim()
    for d in sum_dims:  # a dim summed here but broadcast in the other operand: sum it on its own
        if a.shape[d] == 1 and b.shape[d] != 1:
            b = b.sum(d, keepdim=True)
        elif b.shape[d] == 1 and a.shape[d] != 1:
            a = a.sum(d, keepdim=True)
    lro, lo, ro = [], [], []
    for d in range(nd):
        if d in sum_dims:
            continue
        if a.shape[d] != 1 and b.shape[d] != 1:
            lro.append(d)
        elif b.shape[d] != 1:
            ro.append(d)
        else:
            lo.append(d)
    size = lambda t, dims: int(_np.prod([t.shape[d] for d in dims], dtype=_np.int64))
    n_lro, n_lo, n_ro, n_sum = size(a, lro), size(a, lo), size(b, ro), size(a, sum_dims)
    left = a.permute(*lro, *lo, *sum_dims, *ro).reshape(n_lro, n_lo, n_sum)
    right = b.permute(*lro, *sum_dims, *ro, *lo).reshape(n_lro, n_sum, n_ro)
    out = left.bmm(right)
    shape = [a.shape[d] for d in lro] + [a.shape[d] for d in lo] + [1] * len(sum_dims) + [b.shape[d] for d in ro]
    order = lro + lo + sum_dims + ro
    inverse = [order.index(d) for d in range(nd)]
    return out.view(shape).permute(*inverse)


def einsum(equation: str, *operands: Any) -> Any:
    """``torch.einsum``: permutes, diagonals, sums and batched products of the operands (so the
    result has those ops' gradients)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) < len(operands):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    if len(terms) > len(operands):
        raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")
    for term, op in zip(terms, operands):
        letters = len(term.replace("...", ""))
        if ("..." in term and letters > op.dim()) or ("..." not in term and letters != op.dim()):
            raise RuntimeError(
                f"einsum(): the number of subscripts in the equation ({letters}) does not match the number "
                f"of dimensions ({op.dim()}) for operand {terms.index(term)}"
                + ("" if "..." in term else " and no ellipsis was given")
            )
    n_ell = max([op.dim() - len(t.replace("...", "")) for t, op in zip(terms, operands) if "..." in t] or [0])
    labels = [_einsum_labels(t, op.dim(), n_ell) for t, op in zip(terms, operands)]
    if arrow:
        out = _einsum_labels(rhs, n_ell + len(rhs.replace("...", "")), n_ell)
    else:
        flat = [lab for ls in labels for lab in ls if not lab.startswith(".")]
        out = [f".{i}" for i in range(n_ell)] + sorted(lab for lab in set(flat) if flat.count(lab) == 1)
    # repeated labels within an operand: take the diagonal
    ops = []
    for op, ls in zip(operands, labels):
        ls = list(ls)
        while True:
            dup = next((lab for lab in ls if ls.count(lab) > 1), None)
            if dup is None:
                break
            p = ls.index(dup)
            q = ls.index(dup, p + 1)
            op = op.diagonal(0, p, q)
            ls = [lab for k, lab in enumerate(ls) if k not in (p, q)] + [dup]
        ops.append((op, ls))
    contracted = []
    for _, ls in ops:
        contracted += [lab for lab in ls if lab not in out and lab not in contracted]
    order = out + contracted
    if len(ops) == 1:
        op, ls = ops[0]
        result = op.permute(*[ls.index(lab) for lab in order if lab in ls])
        if contracted:
            result = result.sum(list(range(len(out), len(order))))
        return result
    aligned = []
    for op, ls in ops:
        missing = [lab for lab in order if lab not in ls]
        for _ in missing:
            op = op.unsqueeze(-1)
        full = ls + missing
        aligned.append(op.permute(*[full.index(lab) for lab in order]))
    result = aligned[0]
    for k in range(1, len(aligned)):
        later = {lab for _, ls in ops[k + 1 :] for lab in ls}
        dims = [order.index(lab) for lab in contracted if lab not in later and order.index(lab) < result.dim()]
        dims = [d for d in dims if result.shape[d] != 1 or aligned[k].shape[d] != 1]
        result = result * aligned[k] if not dims else _einsum_pair(result, aligned[k], dims)
    if contracted:
        rest = [d for d in range(len(out), len(order)) if result.shape[d] != 1]
        if rest:
            result = result.sum(rest, keepdim=True)
        result = result.view([result.shape[d] for d in range(len(out))])
    return result
