"""The op table: every op against numpy on random shapes (broadcasting, 0-d and empty included),
with ``rustgrad.autograd.gradcheck`` / ``gradgradcheck`` and PyTorch's grad_fn name; then seeded
random programs chaining ops from the table, checked against numpy and gradcheck, and (when
PyTorch is installed) against PyTorch itself with the same inputs (float64, rtol 1e-6).

Every row draws its inputs from a numpy generator seeded by the row's name, so a failure is
reproducible on its own. Inputs stay away from the points where an op is not differentiable
(clamp bounds, max/min ties, abs/relu at 0, integers for floor, halves for round).

The file runs unchanged with ``sys.modules["rustgrad"] = torch`` to validate the expectations
(names, values, messages) against real PyTorch.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Callable, NamedTuple

import numpy as np
import pytest
import rustgrad

try:
    # ``rustgrad.nn.functional`` as an attribute first: with ``sys.modules["rustgrad"] = torch`` (the
    # validation run) a fresh ``import rustgrad.nn.functional`` would load torch's module twice.
    F = rustgrad.nn.functional
except AttributeError:
    try:
        import rustgrad.nn.functional as F
    except ImportError as _import_error:  # rows using F fail, the rest still runs
        _missing_reason = str(_import_error)

        class _MissingFunctional:
            def __getattr__(self, name):
                raise AttributeError(f"rustgrad.nn.functional is not importable ({_missing_reason}); needed: {name}")

        F = _MissingFunctional()


# ----------------------------------------------------------------------------- input generators


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def uniform(*shape, low=0.1, high=0.9):
    return lambda rng: rng.uniform(low, high, size=shape)


def away(*shape, points=(0.0,), margin=0.05, low=-2.0, high=2.0):
    """Uniform values in [low, high] at least ``margin`` from every point in ``points``."""

    def draw(rng):
        a = rng.uniform(low, high, size=shape)
        while True:
            bad = np.zeros(a.shape, dtype=bool)
            for p in points:
                bad |= np.abs(a - p) < margin
            if not bad.any():
                return a
            a = np.where(bad, rng.uniform(low, high, size=shape), a)

    return draw


def nonzero(*shape):
    """Magnitudes in [0.5, 1.5] with random signs: safe for prod's gradient formula."""
    return lambda rng: rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 1.5, size=shape)


def distinct(*shape):
    """A permutation of values at least 0.27 apart: no ties for argmax/max/min."""

    def draw(rng):
        n = int(np.prod(shape, dtype=np.int64))
        values = (np.arange(n) - n / 2.0) * 0.37 + rng.uniform(-0.05, 0.05, size=n)
        return rng.permutation(values).reshape(shape)

    return draw


def _crng(name, salt=0):
    """The generator for a row's constants (indices, masks, targets), seeded by its name."""
    return np.random.default_rng(zlib.crc32(f"{name}/{salt}".encode()))


def lt(a):
    """A constant integer tensor (int64)."""
    return rustgrad.tensor(np.asarray(a, dtype=np.int64))


def bt(a):
    """A constant bool tensor."""
    return rustgrad.tensor(np.asarray(a, dtype=bool))


def ft(a):
    """A constant float64 tensor."""
    return rustgrad.tensor(np.asarray(a, dtype=np.float64), dtype=rustgrad.float64)


# ----------------------------------------------------------------------------- numpy references


def np_logsumexp(a, axis=None, keepdims=False):
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis) if axis is not None else out.reshape(())
    return out


def np_softmax(a, axis):
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(a, axis):
    return a - np_logsumexp(a, axis=axis, keepdims=True)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def np_gelu(a, approximate="none"):
    if approximate == "tanh":
        return 0.5 * a * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (a + 0.044715 * a ** 3)))
    return 0.5 * a * (1.0 + _erf(a / math.sqrt(2.0)))


def np_sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def np_reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def np_cross_entropy(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                     log_probs=False):
    """PyTorch's cross_entropy (or nll_loss with ``log_probs=True``) for (N, C, d...) inputs."""
    x = np.moveaxis(x, 1, -1)  # (N, d..., C)
    n_classes = x.shape[-1]
    logp = x if log_probs else np_log_softmax(x, -1)
    w = np.ones(n_classes) if weight is None else np.asarray(weight)
    valid = t != ignore_index
    tc = np.where(valid, t, 0)
    picked = np.take_along_axis(logp, tc[..., None], -1)[..., 0]
    nll = np.where(valid, -w[tc] * picked, 0.0)
    smooth = np.where(valid, -(logp * w).sum(-1), 0.0)
    loss = (1 - label_smoothing) * nll + label_smoothing / n_classes * smooth
    if reduction == "mean":
        return loss.sum() / np.where(valid, w[tc], 0.0).sum()
    return np_reduce(loss, reduction)


def np_bce(p, t, weight=None, reduction="mean"):
    loss = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    if weight is not None:
        loss = loss * weight
    return np_reduce(loss, reduction)


def np_bce_logits(x, t, weight=None, pos_weight=None, reduction="mean"):
    log_sig = -np.log1p(np.exp(-x))
    log_one_minus_sig = -np.log1p(np.exp(x))
    pw = 1.0 if pos_weight is None else pos_weight
    loss = -(pw * t * log_sig + (1 - t) * log_one_minus_sig)
    if weight is not None:
        loss = loss * weight
    return np_reduce(loss, reduction)


def np_setitem(idx, value=None):
    def ref(a, *v):
        a = a.copy()
        a[idx] = v[0] if v else value
        return a

    return ref


def np_gather(a, dim, index):
    """torch.gather: out[i][j][k] = a[index[i][j][k]][j][k] (dim 0); out has index's shape."""
    dim = dim % a.ndim
    grid = list(np.indices(index.shape, sparse=True))
    grid[dim] = index
    return a[tuple(grid)]


def np_var(a, axis=None, ddof=1, keepdims=False):
    return np.var(a, axis=axis, ddof=ddof, keepdims=keepdims)


# ----------------------------------------------------------------------------- the table


class Row(NamedTuple):
    name: str
    fn: Callable  # float64 tensors -> tensor or tuple of tensors
    ref: Callable  # float64 arrays -> array or tuple of arrays
    inputs: Sequence[Callable]  # each: rng -> float64 array
    grad_fn: str | None  # PyTorch's grad_fn class name of (every) output; None: no grad_fn
    differentiable: bool = True
    gradgrad: bool = True


ROWS = []


def row(name, fn, ref, inputs, grad_fn, **kw):
    ROWS.append(Row(name, fn, ref, inputs, grad_fn, **kw))


def _index_rows():
    # basic indexing: views
    row("idx_int", lambda x: x[1], lambda a: a[1], [normal(3, 4)], "SelectBackward0")
    row("idx_neg_int", lambda x: x[-1], lambda a: a[-1], [normal(3, 4)], "SelectBackward0")
    row("idx_slice", lambda x: x[1:3], lambda a: a[1:3], [normal(4, 2)], "SliceBackward0")
    row("idx_slice_step", lambda x: x[:, ::2], lambda a: a[:, ::2], [normal(2, 5)], "SliceBackward0")
    row("idx_slice_neg", lambda x: x[-2:, 1:-1], lambda a: a[-2:, 1:-1], [normal(3, 4)], "SliceBackward0")
    row("idx_ellipsis_int", lambda x: x[..., 1], lambda a: a[..., 1], [normal(2, 3, 4)], "SelectBackward0")
    row("idx_ellipsis_only", lambda x: x[...], lambda a: a[...], [normal(2, 3)], "AliasBackward0")
    row("idx_none", lambda x: x[None], lambda a: a[None], [normal(3, 2)], "UnsqueezeBackward0")
    row("idx_int_none_slice", lambda x: x[1, None, 1:], lambda a: a[1, None, 1:], [normal(3, 4)],
        "SliceBackward0")
    row("idx_0d_none", lambda x: x[None], lambda a: a[None], [normal()], "UnsqueezeBackward0")
    # advanced indexing: copies (IndexBackward0)
    mask = _crng("mask").random((3, 4)) > 0.5
    row("idx_bool_mask", lambda x: x[bt(mask)], lambda a: a[mask], [normal(3, 4)], "IndexBackward0")
    mask1 = np.array([True, False, True])
    row("idx_bool_mask_dim0", lambda x: x[bt(mask1)], lambda a: a[mask1], [normal(3, 4)], "IndexBackward0")
    row("idx_bool_mask_after_slice", lambda x: x[:, bt(mask1)], lambda a: a[:, mask1], [normal(2, 3)],
        "IndexBackward0")
    none_mask = np.zeros((2, 3), dtype=bool)
    row("idx_bool_mask_all_false", lambda x: x[bt(none_mask)], lambda a: a[none_mask], [normal(2, 3)],
        "IndexBackward0")
    row("idx_long_tensor", lambda x: x[lt([2, 0])], lambda a: a[[2, 0]], [normal(3, 4)], "IndexBackward0")
    row("idx_neg_long_tensor", lambda x: x[lt([-1, 0])], lambda a: a[[-1, 0]], [normal(3, 2)], "IndexBackward0")
    row("idx_list", lambda x: x[[0, 2, 1]], lambda a: a[[0, 2, 1]], [normal(3, 2)], "IndexBackward0")
    row("idx_repeated", lambda x: x[[0, 0, 2, 0]], lambda a: a[[0, 0, 2, 0]], [normal(3, 2)], "IndexBackward0")
    row("idx_2d_index", lambda x: x[lt([[0, 3], [3, 1]])], lambda a: a[np.array([[0, 3], [3, 1]])],
        [normal(4, 3)], "IndexBackward0")
    i, j = np.array([[0], [2]]), np.array([1, 3, 1])
    row("idx_two_tensors_broadcast", lambda x: x[lt(i), lt(j)], lambda a: a[i, j], [normal(3, 4)],
        "IndexBackward0")
    i2, j2 = np.array([2, 0, 2]), np.array([4, 1, 0])
    row("idx_nonadjacent", lambda x: x[lt(i2), :, lt(j2)], lambda a: a[i2, :, j2], [normal(3, 2, 5)],
        "IndexBackward0")
    row("idx_nonadjacent_lists", lambda x: x[[1, 0], :, [0, 0]], lambda a: a[[1, 0], :, [0, 0]],
        [normal(2, 3, 2)], "IndexBackward0")
    row("idx_adjacent_middle", lambda x: x[:, lt([2, 0]), lt([1, 3])], lambda a: a[:, [2, 0], [1, 3]],
        [normal(2, 3, 4)], "IndexBackward0")
    row("idx_slice_and_list", lambda x: x[1:, [0, 2, 2]], lambda a: a[1:, [0, 2, 2]], [normal(3, 4)],
        "IndexBackward0")
    row("idx_int_and_list", lambda x: x[1, [0, 2, 2]], lambda a: a[1, [0, 2, 2]], [normal(3, 4)],
        "IndexBackward0")
    row("idx_ellipsis_list", lambda x: x[..., [0, 2]], lambda a: a[..., [0, 2]], [normal(2, 3, 4)],
        "IndexBackward0")
    row("idx_none_and_list", lambda x: x[None, [1, 0]], lambda a: a[None, [1, 0]], [normal(2, 3)],
        "IndexBackward0")
    row("idx_empty_index", lambda x: x[lt(np.zeros(0, dtype=np.int64))], lambda a: a[np.zeros(0, dtype=np.int64)],
        [normal(3, 4)], "IndexBackward0")


def _setitem_rows():
    def setter(idx, scalar=None):
        if scalar is None:
            def fn(x, v):
                y = x.clone()
                y[idx()] = v
                return y
        else:
            def fn(x):
                y = x.clone()
                y[idx()] = scalar
                return y
        return fn

    row("set_slice", setter(lambda: slice(1, 3)), np_setitem(slice(1, 3)), [normal(4, 3), normal(2, 3)],
        "CopySlices")
    row("set_int_bcast", setter(lambda: 1), np_setitem(1), [normal(3, 4), normal(4)], "CopySlices")
    row("set_slice_bcast_value", setter(lambda: (slice(None), slice(1, 3))),
        np_setitem((slice(None), slice(1, 3))), [normal(3, 4), normal(1, 2)], "CopySlices")
    row("set_long_tensor", setter(lambda: lt([0, 2])), np_setitem(np.array([0, 2])),
        [normal(3, 4), normal(2, 4)], "IndexPutBackward0")
    i, j = np.array([0, 2, 1]), np.array([3, 0, 0])
    row("set_two_tensors", setter(lambda: (lt(i), lt(j))), np_setitem((i, j)), [normal(3, 4), normal(3)],
        "IndexPutBackward0")
    i2, j2 = np.array([1, 0]), np.array([2, 2])
    row("set_nonadjacent", setter(lambda: (lt(i2), slice(None), lt(j2))), np_setitem((i2, slice(None), j2)),
        [normal(2, 3, 4), normal(2, 3)], "IndexPutBackward0")
    mask = _crng("set_mask").random((3, 4)) > 0.5
    row("set_mask_tensor", setter(lambda: bt(mask)), np_setitem(mask), [normal(3, 4), normal(int(mask.sum()))],
        "IndexPutBackward0")
    row("set_mask_0d_value", setter(lambda: bt(mask)), np_setitem(mask), [normal(3, 4), normal()],
        "IndexPutBackward0")
    row("set_mask_scalar", setter(lambda: bt(mask), 0.5), np_setitem(mask, 0.5), [normal(3, 4)],
        "MaskedFillBackward0")
    row("set_long_tensor_scalar", setter(lambda: lt([2, 0]), -1.5), np_setitem(np.array([2, 0]), -1.5),
        [normal(3, 2)], "IndexFillBackward0")


def _shape_rows():
    row("cat_dim0", lambda a, b: rustgrad.cat([a, b]), lambda a, b: np.concatenate([a, b]),
        [normal(2, 3), normal(1, 3)], "CatBackward0")
    row("cat_dim1_three", lambda a, b, c: rustgrad.cat((a, b, c), dim=1), lambda a, b, c: np.concatenate([a, b, c], 1),
        [normal(2, 1), normal(2, 3), normal(2, 2)], "CatBackward0")
    row("cat_neg_dim", lambda a, b: rustgrad.cat([a, b], -1), lambda a, b: np.concatenate([a, b], -1),
        [normal(2, 2, 1), normal(2, 2, 3)], "CatBackward0")
    row("cat_with_empty", lambda a, b: rustgrad.cat([a, b]), lambda a, b: np.concatenate([a, b]),
        [normal(0, 3), normal(2, 3)], "CatBackward0")
    row("cat_1d", lambda a, b: rustgrad.cat([a, b, a]), lambda a, b: np.concatenate([a, b, a]),
        [normal(2), normal(3)], "CatBackward0")
    row("stack_dim0", lambda a, b: rustgrad.stack([a, b]), lambda a, b: np.stack([a, b]),
        [normal(2, 3), normal(2, 3)], "StackBackward0")
    row("stack_dim1", lambda a, b, c: rustgrad.stack([a, b, c], dim=1), lambda a, b, c: np.stack([a, b, c], 1),
        [normal(2, 3), normal(2, 3), normal(2, 3)], "StackBackward0")
    row("stack_neg_dim", lambda a, b: rustgrad.stack((a, b), -1), lambda a, b: np.stack([a, b], -1),
        [normal(3), normal(3)], "StackBackward0")
    row("stack_0d", lambda a, b: rustgrad.stack([a, b, a]), lambda a, b: np.stack([a, b, a]),
        [normal(), normal()], "StackBackward0")
    row("split_int", lambda x: x.split(2), lambda a: tuple(np.split(a, [2, 4])), [normal(5, 3)], "SplitBackward0")
    row("split_int_dim1", lambda x: rustgrad.split(x, 2, dim=1), lambda a: tuple(np.split(a, [2], 1)),
        [normal(3, 4)], "SplitBackward0")
    row("split_sizes", lambda x: x.split([1, 3, 1], 1), lambda a: tuple(np.split(a, [1, 4], 1)),
        [normal(2, 5)], "SplitWithSizesBackward0")
    row("split_sizes_with_zero", lambda x: rustgrad.split(x, [2, 0, 1]), lambda a: tuple(np.split(a, [2, 2])),
        [normal(3, 2)], "SplitWithSizesBackward0")
    row("chunk", lambda x: x.chunk(3), lambda a: tuple(np.split(a, [2, 4])), [normal(5, 2)], "SplitBackward0")
    row("chunk_dim-1", lambda x: rustgrad.chunk(x, 2, dim=-1), lambda a: tuple(np.split(a, [2], -1)),
        [normal(2, 4)], "SplitBackward0")
    row("flatten", lambda x: x.flatten(), lambda a: a.reshape(-1), [normal(2, 3, 4)], "ViewBackward0")
    row("flatten_start1", lambda x: rustgrad.flatten(x, 1), lambda a: a.reshape(2, -1), [normal(2, 3, 4)],
        "ViewBackward0")
    row("flatten_0_1", lambda x: x.flatten(0, 1), lambda a: a.reshape(6, 4), [normal(2, 3, 4)], "ViewBackward0")
    row("flatten_noncontiguous", lambda x: x.transpose(0, 1).flatten(), lambda a: a.T.reshape(-1),
        [normal(3, 4)], "UnsafeViewBackward0")
    row("repeat", lambda x: x.repeat(2, 3), lambda a: np.tile(a, (2, 3)), [normal(2, 3)], "RepeatBackward0")
    row("repeat_new_dims", lambda x: x.repeat(2, 1, 2), lambda a: np.tile(a, (2, 1, 2)), [normal(3)],
        "RepeatBackward0")
    row("repeat_0d", lambda x: x.repeat(3), lambda a: np.tile(a, 3), [normal()], "RepeatBackward0")
    row("swapdims", lambda x: x.swapdims(0, 2), lambda a: np.swapaxes(a, 0, 2), [normal(2, 3, 4)],
        "TransposeBackward0")
    row("swapaxes_fn", lambda x: rustgrad.swapaxes(x, 1, -1), lambda a: np.swapaxes(a, 1, -1), [normal(2, 3, 4)],
        "TransposeBackward0")
    row("squeeze_dims", lambda x: x.squeeze((0, 2)), lambda a: a.reshape(3, 4), [normal(1, 3, 1, 4)],
        "SqueezeBackward2")
    row("as_strided_windows", lambda x: x.as_strided((3, 3), (1, 1)),
        lambda a: np.lib.stride_tricks.sliding_window_view(a, 3), [normal(5)], "AsStridedBackward0")
    # in-place view ops on a non-leaf: the tensor itself takes the new geometry
    row("transpose_inplace", lambda x: (x * 1).transpose_(0, 1), lambda a: a.T, [normal(2, 3)],
        "TransposeBackward1")
    row("t_inplace", lambda x: (x * 1).t_(), lambda a: a.T, [normal(2, 3)], "TBackward1")
    row("squeeze_inplace", lambda x: (x * 1).squeeze_(), lambda a: a.reshape(3), [normal(1, 3, 1)],
        "SqueezeBackward3")
    row("squeeze_inplace_dim", lambda x: (x * 1).squeeze_(2), lambda a: a.reshape(1, 3), [normal(1, 3, 1)],
        "SqueezeBackward4")
    row("unsqueeze_inplace", lambda x: (x * 1).unsqueeze_(1), lambda a: a[:, None], [normal(2, 3)],
        "UnsqueezeBackward1")


def _elementwise_rows():
    cond = _crng("where").random((3, 4)) > 0.5
    row("where", lambda a, b: rustgrad.where(bt(cond), a, b), lambda a, b: np.where(cond, a, b),
        [normal(3, 4), normal(3, 4)], "WhereBackward0")
    cond_b = _crng("where_bcast").random((3, 1)) > 0.5
    row("where_bcast", lambda a, b: rustgrad.where(bt(cond_b), a, b), lambda a, b: np.where(cond_b, a, b),
        [normal(4), normal(2, 1, 1)], "WhereBackward0")
    row("where_scalar_other", lambda a: rustgrad.where(bt(cond), a, 0.0), lambda a: np.where(cond, a, 0.0),
        [normal(3, 4)], "WhereBackward0")
    row("where_self_cond", lambda a, b: rustgrad.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b),
        [away(3, 4), normal(3, 4)], "WhereBackward0")
    row("where_0d", lambda a, b: rustgrad.where(bt(True), a, b), lambda a, b: np.where(True, a, b),
        [normal(), normal()], "WhereBackward0")
    row("clamp_both", lambda x: x.clamp(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5),
        [away(3, 4, points=(-0.5, 0.5))], "ClampBackward1")
    row("clamp_min_kw", lambda x: x.clamp(min=-0.3), lambda a: np.maximum(a, -0.3),
        [away(3, 4, points=(-0.3,))], "ClampBackward1")
    row("clamp_max_kw", lambda x: rustgrad.clamp(x, max=0.2), lambda a: np.minimum(a, 0.2),
        [away(2, 3, points=(0.2,))], "ClampBackward1")
    row("clamp_0d", lambda x: rustgrad.clamp(x, -1.0, 1.0), lambda a: np.clip(a, -1.0, 1.0),
        [away(points=(-1.0, 1.0))], "ClampBackward1")
    row("clamp_empty", lambda x: x.clamp(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), [normal(2, 0)],
        "ClampBackward1")
    row("clamp_min", lambda x: x.clamp_min(0.1), lambda a: np.maximum(a, 0.1), [away(3, 4, points=(0.1,))],
        "ClampMinBackward0")
    row("clamp_max", lambda x: rustgrad.clamp_max(x, -0.1), lambda a: np.minimum(a, -0.1),
        [away(4, points=(-0.1,))], "ClampMaxBackward0")
    row("maximum", lambda a, b: rustgrad.maximum(a, b), np.maximum, [normal(3, 4), normal(3, 4)], "MaximumBackward0")
    row("maximum_bcast", lambda a, b: rustgrad.maximum(a, b), np.maximum, [normal(3, 1), normal(4)],
        "MaximumBackward0")
    row("maximum_0d", lambda a, b: rustgrad.maximum(a, b), np.maximum, [normal(), normal(3)], "MaximumBackward0")
    row("minimum_bcast", lambda a, b: rustgrad.minimum(a, b), np.minimum, [normal(2, 1, 3), normal(4, 1)],
        "MinimumBackward0")
    row("minimum", lambda a, b: a.minimum(b), np.minimum, [normal(5), normal(5)], "MinimumBackward0")
    row("sign", lambda x: x.sign(), np.sign, [away(3, 4)], "SignBackward0")
    row("floor", lambda x: rustgrad.floor(x), np.floor, [away(3, 4, points=(-2, -1, 0, 1, 2))], "FloorBackward0")
    row("round", lambda x: x.round(), np.round, [away(3, 4, points=(-1.5, -0.5, 0.5, 1.5))], "RoundBackward0")
    # existing elementwise ops, on broadcasting / 0-d / empty shapes
    row("add_bcast", lambda a, b: a + b, lambda a, b: a + b, [normal(3, 1), normal(4)], "AddBackward0")
    row("add_empty", lambda a, b: a + b, lambda a, b: a + b, [normal(0, 3), normal(3)], "AddBackward0")
    row("mul_bcast_0d", lambda a, b: a * b, lambda a, b: a * b, [normal(2, 3), normal()], "MulBackward0")
    row("div_bcast", lambda a, b: a / b, lambda a, b: a / b, [normal(2, 1, 3), away(2, 1, points=(0,), margin=0.3)],
        "DivBackward0")
    row("sub_bcast", lambda a, b: a - b, lambda a, b: a - b, [normal(4), normal(3, 1)], "SubBackward0")
    row("pow_tensor", lambda a, b: a ** b, lambda a, b: a ** b, [uniform(3, 1, low=0.5, high=2.0), normal(4)],
        "PowBackward1")
    row("pow_scalar", lambda a: a ** 3, lambda a: a ** 3, [normal(3)], "PowBackward0")
    row("exp", lambda a: a.exp(), np.exp, [normal(2, 3)], "ExpBackward0")
    # more element-wise functions
    row("log1p", lambda a: rustgrad.log1p(a), np.log1p, [uniform(2, 3, low=-0.5, high=2.0)], "Log1PBackward0")
    row("expm1", lambda a: a.expm1(), np.expm1, [normal(2, 3)], "Expm1Backward0")
    row("tan", lambda a: a.tan(), np.tan, [uniform(4, low=-1.0, high=1.0)], "TanBackward0")
    row("asin", lambda a: a.asin(), np.arcsin, [uniform(4, low=-0.8, high=0.8)], "AsinBackward0")
    row("acos", lambda a: rustgrad.acos(a), np.arccos, [uniform(4, low=-0.8, high=0.8)], "AcosBackward0")
    row("atan", lambda a: a.atan(), np.arctan, [normal(3, 2)], "AtanBackward0")
    row("sinh", lambda a: a.sinh(), np.sinh, [normal(3)], "SinhBackward0")
    row("cosh", lambda a: rustgrad.cosh(a), np.cosh, [normal(3)], "CoshBackward0")
    row("rsqrt", lambda a: a.rsqrt(), lambda a: 1 / np.sqrt(a), [uniform(4, low=0.5, high=2.0)], "RsqrtBackward0")
    row("log2", lambda a: a.log2(), np.log2, [uniform(4, low=0.5, high=2.0)], "Log2Backward0")
    row("log10", lambda a: rustgrad.log10(a), np.log10, [uniform(4, low=0.5, high=2.0)], "Log10Backward0")
    row("exp2", lambda a: a.exp2(), np.exp2, [normal(4)], "Exp2Backward0")
    row("trunc", lambda a: a.trunc(), np.trunc, [away(3, 4, points=(-2, -1, 0, 1, 2))], "TruncBackward0")
    row("square", lambda a: a.square(), np.square, [normal(3)], "PowBackward0")
    row("exp_inplace", lambda a: (a * 1).exp_(), np.exp, [normal(2, 3)], "ExpBackward0")
    row("log", lambda a: rustgrad.log(a), np.log, [uniform(2, 3, low=0.5, high=2.0)], "LogBackward0")
    row("tanh", lambda a: a.tanh(), np.tanh, [normal(2, 3)], "TanhBackward0")
    row("sigmoid", lambda a: rustgrad.sigmoid(a), np_sigmoid, [normal(2, 3)], "SigmoidBackward0")
    row("abs", lambda a: a.abs(), np.abs, [away(2, 3)], "AbsBackward0")
    row("relu", lambda a: a.relu(), lambda a: np.maximum(a, 0), [away(2, 3)], "ReluBackward0")


def _reduction_rows():
    row("softmax_dim1", lambda x: x.softmax(1), lambda a: np_softmax(a, 1), [normal(3, 4)], "SoftmaxBackward0")
    row("softmax_dim-1_3d", lambda x: rustgrad.softmax(x, dim=-1), lambda a: np_softmax(a, -1),
        [normal(2, 3, 4)], "SoftmaxBackward0")
    row("softmax_dim0", lambda x: rustgrad.softmax(x, 0), lambda a: np_softmax(a, 0), [normal(3, 2)],
        "SoftmaxBackward0")
    row("softmax_0d", lambda x: x.softmax(0), lambda a: np.ones(()), [normal()], "SoftmaxBackward0")
    row("softmax_empty", lambda x: x.softmax(1), lambda a: np_softmax(a, 1), [normal(0, 3)], "SoftmaxBackward0")
    row("log_softmax_dim1", lambda x: x.log_softmax(1), lambda a: np_log_softmax(a, 1), [normal(3, 4)],
        "LogSoftmaxBackward0")
    row("log_softmax_dim0_3d", lambda x: rustgrad.log_softmax(x, dim=0), lambda a: np_log_softmax(a, 0),
        [normal(2, 3, 2)], "LogSoftmaxBackward0")
    row("logsumexp_dim1", lambda x: x.logsumexp(1), lambda a: np_logsumexp(a, 1), [normal(3, 4)],
        "LogsumexpBackward0")
    row("logsumexp_keepdim", lambda x: rustgrad.logsumexp(x, dim=-1, keepdim=True),
        lambda a: np_logsumexp(a, -1, True), [normal(2, 3, 4)], "LogsumexpBackward0")
    row("logsumexp_dims", lambda x: x.logsumexp((0, 2)), lambda a: np_logsumexp(a, (0, 2)), [normal(2, 3, 4)],
        "LogsumexpBackward0")
    row("logsumexp_large", lambda x: x.logsumexp(0), lambda a: np_logsumexp(a, 0),
        [lambda rng: rng.standard_normal(4) + 800.0], "LogsumexpBackward0")
    row("var_all", lambda x: x.var(), lambda a: np_var(a), [normal(3, 4)], "VarBackward0")
    row("var_dim1", lambda x: x.var(1), lambda a: np_var(a, 1), [normal(3, 4)], "VarBackward0")
    row("var_unbiased_false", lambda x: x.var(1, unbiased=False), lambda a: np_var(a, 1, ddof=0), [normal(3, 4)],
        "VarBackward0")
    row("var_dims_keepdim", lambda x: rustgrad.var(x, dim=(0, 2), keepdim=True),
        lambda a: np_var(a, (0, 2), keepdims=True), [normal(2, 3, 4)], "VarBackward0")
    row("var_correction0", lambda x: x.var(dim=0, correction=0), lambda a: np_var(a, 0, ddof=0), [normal(4, 2)],
        "VarBackward0")
    row("var_correction2", lambda x: x.var(dim=-1, correction=2), lambda a: np_var(a, -1, ddof=2), [normal(2, 5)],
        "VarBackward0")
    row("std_all", lambda x: x.std(), lambda a: np.std(a, ddof=1), [normal(3, 4)], "StdBackward0")
    row("std_dim0", lambda x: rustgrad.std(x, 0), lambda a: np.std(a, 0, ddof=1), [normal(3, 4)], "StdBackward0")
    row("std_unbiased_false_keepdim", lambda x: x.std(1, unbiased=False, keepdim=True),
        lambda a: np.std(a, 1, ddof=0, keepdims=True), [normal(3, 4)], "StdBackward0")
    row("std_correction0_dims", lambda x: x.std(dim=(1, 2), correction=0), lambda a: np.std(a, (1, 2)),
        [normal(2, 3, 2)], "StdBackward0")
    row("prod_all", lambda x: x.prod(), np.prod, [nonzero(3, 4)], "ProdBackward0")
    row("prod_dim1", lambda x: x.prod(1), lambda a: a.prod(1), [nonzero(3, 4)], "ProdBackward1")
    row("prod_dim_keepdim", lambda x: rustgrad.prod(x, -1, keepdim=True), lambda a: a.prod(-1, keepdims=True),
        [nonzero(2, 3, 2)], "ProdBackward1")
    row("prod_1d", lambda x: rustgrad.prod(x, 0), lambda a: a.prod(0), [nonzero(5)], "ProdBackward1")
    row("cumsum_dim0", lambda x: x.cumsum(0), lambda a: np.cumsum(a, 0), [normal(3, 4)], "CumsumBackward0")
    row("cumsum_dim-1", lambda x: rustgrad.cumsum(x, dim=-1), lambda a: np.cumsum(a, -1), [normal(2, 3, 4)],
        "CumsumBackward0")
    row("cumsum_0d", lambda x: x.cumsum(0), lambda a: a.copy(), [normal()], "CumsumBackward0")
    row("cumsum_empty", lambda x: x.cumsum(1), lambda a: np.cumsum(a, 1), [normal(0, 3)], "CumsumBackward0")
    g1 = _crng("gather1").integers(0, 4, size=(3, 5))
    row("gather_dim1", lambda x: x.gather(1, lt(g1)), lambda a: np_gather(a, 1, g1), [normal(3, 4)],
        "GatherBackward0")
    g0 = _crng("gather0").integers(0, 3, size=(2, 4))
    row("gather_dim0_smaller", lambda x: rustgrad.gather(x, 0, lt(g0)), lambda a: np_gather(a, 0, g0),
        [normal(3, 4)], "GatherBackward0")
    g3 = _crng("gather3").integers(0, 3, size=(2, 2, 1))
    row("gather_3d_dim-2", lambda x: x.gather(-2, lt(g3)), lambda a: np_gather(a, -2, g3),
        [normal(2, 3, 2)], "GatherBackward0")
    m = _crng("mfill").random((3, 4)) > 0.5
    row("masked_fill", lambda x: x.masked_fill(bt(m), 0.5), lambda a: np.where(m, 0.5, a), [normal(3, 4)],
        "MaskedFillBackward0")
    mb = np.array([True, False, False, True])
    row("masked_fill_bcast_mask", lambda x: x.masked_fill(bt(mb), -2.0), lambda a: np.where(mb, -2.0, a),
        [normal(3, 4)], "MaskedFillBackward0")
    mc = np.array([[True], [False]])
    row("masked_fill_col_mask", lambda x: rustgrad.masked_fill(x, bt(mc), 0), lambda a: np.where(mc, 0.0, a),
        [normal(2, 2, 3)], "MaskedFillBackward0")
    # existing reductions and products
    row("sum_all", lambda x: x.sum(), np.sum, [normal(3, 4)], "SumBackward0")
    row("sum_dim_keepdim", lambda x: x.sum(1, keepdim=True), lambda a: a.sum(1, keepdims=True), [normal(2, 3, 4)],
        "SumBackward1")
    row("sum_empty", lambda x: x.sum(0), lambda a: a.sum(0), [normal(0, 3)], "SumBackward1")
    row("mean_dims", lambda x: x.mean((0, 2)), lambda a: a.mean((0, 2)), [normal(2, 3, 4)], "MeanBackward1")
    row("max_all", lambda x: x.max(), np.max, [distinct(3, 4)], "MaxBackward1")
    row("max_dim", lambda x: x.max(1).values, lambda a: a.max(1), [distinct(3, 4)], "MaxBackward0")
    row("matmul_2d", lambda a, b: a @ b, np.matmul, [normal(3, 4), normal(4, 2)], "MmBackward0")
    row("matmul_bcast_batch", lambda a, b: a @ b, np.matmul, [normal(2, 1, 3, 4), normal(3, 4, 2)],
        "UnsafeViewBackward0")
    row("matmul_2d_1d", lambda a, b: a @ b, np.matmul, [normal(3, 4), normal(4)], "MvBackward0")


def _argminmax_rows():
    for name, fn, ref in [
        ("argmax_all", lambda x: x.argmax(), lambda a: np.argmax(a)),
        ("argmax_dim1", lambda x: x.argmax(1), lambda a: np.argmax(a, 1)),
        ("argmax_keepdim", lambda x: rustgrad.argmax(x, dim=-1, keepdim=True), lambda a: np.argmax(a, -1, keepdims=True)),
        ("argmin_all", lambda x: rustgrad.argmin(x), lambda a: np.argmin(a)),
        ("argmin_dim0", lambda x: x.argmin(dim=0), lambda a: np.argmin(a, 0)),
        ("argmin_keepdim", lambda x: x.argmin(1, keepdim=True), lambda a: np.argmin(a, 1, keepdims=True)),
    ]:
        row(name, fn, ref, [distinct(3, 4)], None, differentiable=False)
    row("argmax_3d_dim1", lambda x: x.argmax(1), lambda a: np.argmax(a, 1), [distinct(2, 3, 4)], None,
        differentiable=False)


def _functional_rows():
    row("F.linear", lambda x, w, b: F.linear(x, w, b), lambda x, w, b: x @ w.T + b,
        [normal(3, 4), normal(2, 4), normal(2)], "AddmmBackward0")
    row("F.linear_no_bias", lambda x, w: F.linear(x, w), lambda x, w: x @ w.T, [normal(3, 4), normal(2, 4)],
        "MmBackward0")
    row("F.linear_3d", lambda x, w, b: F.linear(x, w, b), lambda x, w, b: x @ w.T + b,
        [normal(2, 3, 4), normal(2, 4), normal(2)], "UnsafeViewBackward0")
    row("F.relu", lambda x: F.relu(x), lambda a: np.maximum(a, 0), [away(3, 4)], "ReluBackward0")
    row("F.gelu", lambda x: F.gelu(x), np_gelu, [normal(3, 4)], "GeluBackward0")
    row("F.gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), lambda a: np_gelu(a, "tanh"), [normal(3, 4)],
        "GeluBackward0")
    row("F.tanh", lambda x: F.tanh(x), np.tanh, [normal(3)], "TanhBackward0")
    row("F.sigmoid", lambda x: F.sigmoid(x), np_sigmoid, [normal(3)], "SigmoidBackward0")
    row("F.softmax", lambda x: F.softmax(x, dim=-1), lambda a: np_softmax(a, -1), [normal(2, 3)],
        "SoftmaxBackward0")
    row("F.log_softmax", lambda x: F.log_softmax(x, 1), lambda a: np_log_softmax(a, 1), [normal(2, 3, 2)],
        "LogSoftmaxBackward0")
    for red, name in [("mean", "MseLossBackward0"), ("sum", "MseLossBackward0"), ("none", "MseLossBackward0")]:
        row(f"F.mse_loss_{red}", lambda x, y, red=red: F.mse_loss(x, y, reduction=red),
            lambda x, y, red=red: np_reduce((x - y) ** 2, red), [normal(3, 4), normal(3, 4)], name)
    row("F.mse_loss_bcast_target", lambda x, y: F.mse_loss(x, y.expand(3, 4)), lambda x, y: ((x - y) ** 2).mean(),
        [normal(3, 4), normal(4)], "MseLossBackward0")
    l1_inputs = [lambda rng: np.arange(12.0).reshape(3, 4) * 0.3 + rng.uniform(-0.1, 0.1, (3, 4)),
                 lambda rng: np.zeros((3, 4)) + 1.65]
    for red, name in [("mean", "MeanBackward0"), ("sum", "SumBackward0"), ("none", "AbsBackward0")]:
        row(f"F.l1_loss_{red}", lambda x, y, red=red: F.l1_loss(x, y, reduction=red),
            lambda x, y, red=red: np_reduce(np.abs(x - y), red), l1_inputs, name)

    t = _crng("ce_t").integers(0, 4, size=5)
    w = _crng("ce_w").uniform(0.5, 2.0, size=4)
    t_ign = t.copy()
    t_ign[[1, 3]] = 2  # ignore_index=2 also covers ignored rows among valid ones
    for red in ("mean", "sum", "none"):
        row(f"F.cross_entropy_{red}", lambda x, red=red: F.cross_entropy(x, lt(t), reduction=red),
            lambda x, red=red: np_cross_entropy(x, t, reduction=red), [normal(5, 4)], "NllLossBackward0")
    row("F.cross_entropy_weight", lambda x: F.cross_entropy(x, lt(t), weight=ft(w)),
        lambda x: np_cross_entropy(x, t, weight=w), [normal(5, 4)], "NllLossBackward0")
    row("F.cross_entropy_ignore_index", lambda x: F.cross_entropy(x, lt(t_ign), ignore_index=2),
        lambda x: np_cross_entropy(x, t_ign, ignore_index=2), [normal(5, 4)], "NllLossBackward0")
    row("F.cross_entropy_weight_ignore_none",
        lambda x: F.cross_entropy(x, lt(t_ign), weight=ft(w), ignore_index=2, reduction="none"),
        lambda x: np_cross_entropy(x, t_ign, weight=w, ignore_index=2, reduction="none"), [normal(5, 4)],
        "NllLossBackward0")
    t3 = _crng("ce_t3").integers(0, 3, size=(2, 4))
    row("F.cross_entropy_kdim", lambda x: F.cross_entropy(x, lt(t3)), lambda x: np_cross_entropy(x, t3),
        [normal(2, 3, 4)], "NllLoss2DBackward0")
    row("F.cross_entropy_label_smoothing", lambda x: F.cross_entropy(x, lt(t), label_smoothing=0.1),
        lambda x: np_cross_entropy(x, t, label_smoothing=0.1), [normal(5, 4)], "AddBackward0")
    row("F.cross_entropy_label_smoothing_weight",
        lambda x: F.cross_entropy(x, lt(t_ign), weight=ft(w), ignore_index=2, label_smoothing=0.2),
        lambda x: np_cross_entropy(x, t_ign, weight=w, ignore_index=2, label_smoothing=0.2), [normal(5, 4)],
        "AddBackward0")
    row("F.nll_loss", lambda x: F.nll_loss(x, lt(t)), lambda x: np_cross_entropy(x, t, log_probs=True),
        [normal(5, 4)], "NllLossBackward0")
    row("F.nll_loss_weight_ignore_sum",
        lambda x: F.nll_loss(x, lt(t_ign), weight=ft(w), ignore_index=2, reduction="sum"),
        lambda x: np_cross_entropy(x, t_ign, weight=w, ignore_index=2, reduction="sum", log_probs=True),
        [normal(5, 4)], "NllLossBackward0")
    row("F.nll_loss_of_log_softmax", lambda x: F.nll_loss(F.log_softmax(x, 1), lt(t), reduction="none"),
        lambda x: np_cross_entropy(x, t, reduction="none"), [normal(5, 4)], "NllLossBackward0")

    bt_target = _crng("bce_t").uniform(0, 1, size=(3, 4))
    bw = _crng("bce_w").uniform(0.5, 2.0, size=(4,))
    for red in ("mean", "sum", "none"):
        row(f"F.binary_cross_entropy_{red}", lambda p, red=red: F.binary_cross_entropy(p, ft(bt_target), reduction=red),
            lambda p, red=red: np_bce(p, bt_target, reduction=red), [uniform(3, 4)], "BinaryCrossEntropyBackward0")
    row("F.binary_cross_entropy_weight", lambda p: F.binary_cross_entropy(p, ft(bt_target), weight=ft(bw)),
        lambda p: np_bce(p, bt_target, weight=bw), [uniform(3, 4)], "BinaryCrossEntropyBackward0")
    for red in ("mean", "sum", "none"):
        row(f"F.bce_with_logits_{red}",
            lambda x, red=red: F.binary_cross_entropy_with_logits(x, ft(bt_target), reduction=red),
            lambda x, red=red: np_bce_logits(x, bt_target, reduction=red), [normal(3, 4)],
            "BinaryCrossEntropyWithLogitsBackward0")
    pw = _crng("bce_pw").uniform(0.5, 3.0, size=(4,))
    row("F.bce_with_logits_pos_weight",
        lambda x: F.binary_cross_entropy_with_logits(x, ft(bt_target), pos_weight=ft(pw)),
        lambda x: np_bce_logits(x, bt_target, pos_weight=pw), [normal(3, 4)],
        "BinaryCrossEntropyWithLogitsBackward0")
    row("F.bce_with_logits_weight_pos_weight_none",
        lambda x: F.binary_cross_entropy_with_logits(x, ft(bt_target), weight=ft(bw), pos_weight=ft(pw),
                                                     reduction="none"),
        lambda x: np_bce_logits(x, bt_target, weight=bw, pos_weight=pw, reduction="none"), [normal(3, 4)],
        "BinaryCrossEntropyWithLogitsBackward0")


_index_rows()
_setitem_rows()
_shape_rows()
_elementwise_rows()
_reduction_rows()
_argminmax_rows()
_functional_rows()

IDS = [r.name for r in ROWS]
assert len(set(IDS)) == len(IDS), "row names must be unique"
DIFF_ROWS = [r for r in ROWS if r.differentiable]
GRADGRAD_ROWS = [r for r in DIFF_ROWS if r.gradgrad]
# Rows whose forward-mode tangent is refused for now (NotImplementedError), not given wrong:
# assignment into a view (`x[key] = value`) would have to update the base's tangent too.
JVP_REFUSED: set[str] = set()


def _seed(row_, salt):
    return zlib.crc32(f"{row_.name}#{salt}".encode())


def _draw(row_, salt=0):
    rng = np.random.default_rng(_seed(row_, salt))
    return [np.asarray(gen(rng), dtype=np.float64) for gen in row_.inputs]


def _leaf(a):
    if a.size == 0:  # numpy gives empty arrays zero strides, which PyTorch's gradcheck rejects
        return rustgrad.zeros(a.shape, dtype=rustgrad.float64, requires_grad=True)
    return rustgrad.tensor(a, dtype=rustgrad.float64, requires_grad=True)


def _leaves(arrays):
    return [_leaf(a) for a in arrays]


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _grad_fn_name(t):
    return None if t.grad_fn is None else type(t.grad_fn).__name__


@pytest.mark.parametrize("r", ROWS, ids=IDS)
def test_forward_against_numpy(r):
    arrays = _draw(r)
    outs = _as_tuple(r.fn(*_leaves(arrays)))
    expected = _as_tuple(r.ref(*[a.copy() for a in arrays]))
    assert len(outs) == len(expected)
    for out, exp in zip(outs, expected):
        exp = np.asarray(exp)
        assert isinstance(out, rustgrad.Tensor)
        assert tuple(out.shape) == exp.shape
        if r.differentiable:
            assert out.dtype == rustgrad.float64
            assert out.requires_grad
            np.testing.assert_allclose(out.detach().numpy(), exp, rtol=1e-10, atol=1e-12)
        else:
            assert out.dtype == rustgrad.int64
            assert not out.requires_grad
            np.testing.assert_array_equal(out.numpy(), exp)
        assert _grad_fn_name(out) == r.grad_fn


@pytest.mark.parametrize("r", DIFF_ROWS, ids=[r.name for r in DIFF_ROWS])
def test_gradcheck(r):
    forward = r.name not in JVP_REFUSED
    assert rustgrad.autograd.gradcheck(
        r.fn, tuple(_leaves(_draw(r, 1))), check_forward_ad=forward, check_batched_grad=True
    )


@pytest.mark.parametrize("r", GRADGRAD_ROWS, ids=[r.name for r in GRADGRAD_ROWS])
def test_gradgradcheck(r):
    assert rustgrad.autograd.gradgradcheck(r.fn, tuple(_leaves(_draw(r, 2))))


# ----------------------------------------------------------------------------- closed forms


def _grad_of(fn, values, weights=None):
    x = rustgrad.tensor(np.asarray(values, dtype=np.float64), dtype=rustgrad.float64, requires_grad=True)
    out = fn(x)
    (out if weights is None else out * ft(weights)).sum().backward()
    return x.grad.numpy()


def test_index_repeated_indices_accumulate():
    np.testing.assert_array_equal(_grad_of(lambda x: x[[0, 0, 2, 0]], [1.0, 2.0, 3.0]), [3.0, 0.0, 1.0])
    g = _grad_of(lambda x: x[lt([1, 1]), lt([0, 0])], np.zeros((2, 2)), weights=[2.0, 5.0])
    np.testing.assert_array_equal(g, [[0.0, 0.0], [7.0, 0.0]])


def test_gather_repeated_indices_accumulate():
    g = _grad_of(lambda x: x.gather(1, lt([[0, 0, 1], [2, 2, 2]])), np.zeros((2, 3)))
    np.testing.assert_array_equal(g, [[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])


def test_prod_with_one_zero_closed_form():
    a = np.array([[2.0, 0.0, 3.0], [1.0, 4.0, 5.0]])
    x = rustgrad.tensor(a, dtype=rustgrad.float64, requires_grad=True)
    p = x.prod()
    assert p.item() == 0.0
    p.backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 120.0, 0.0], [0.0, 0.0, 0.0]])
    g = _grad_of(lambda t: t.prod(1), a)
    np.testing.assert_allclose(g, [[0.0, 6.0, 0.0], [20.0, 5.0, 4.0]])
    g = _grad_of(lambda t: t.prod(0), a, weights=[1.0, 2.0, 3.0])
    np.testing.assert_allclose(g, [[1.0, 8.0, 15.0], [2.0, 0.0, 9.0]])
    # prod is a polynomial, so it is smooth at zeros too
    x = rustgrad.tensor(a, dtype=rustgrad.float64, requires_grad=True)
    assert rustgrad.autograd.gradcheck(lambda t: t.prod(), (x,))
    assert rustgrad.autograd.gradgradcheck(lambda t: t.prod(1), (x,))


def test_setitem_recorded_backward_reaches_input_and_value():
    x = rustgrad.tensor(np.arange(12.0).reshape(3, 4), dtype=rustgrad.float64, requires_grad=True)
    v = rustgrad.tensor([10.0, 20.0, 30.0, 40.0], dtype=rustgrad.float64, requires_grad=True)
    w = np.arange(1.0, 13.0).reshape(3, 4)
    y = x.clone()
    y[lt([0, 2])] = v  # broadcast over the two selected rows
    np.testing.assert_array_equal(y.detach().numpy()[[0, 2]], [[10, 20, 30, 40]] * 2)
    (y * ft(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), w * np.array([[0.0], [1.0], [0.0]]))
    np.testing.assert_array_equal(v.grad.numpy(), w[0] + w[2])


def test_setitem_under_no_grad_on_leaf():
    x = rustgrad.tensor(np.arange(6.0).reshape(2, 3), dtype=rustgrad.float64, requires_grad=True)
    with rustgrad.no_grad():
        x[0, 1] = 100.0
        x[bt([[False, False, True], [True, False, False]])] = -1.0
        x[1, lt([1])] = rustgrad.tensor([7.0], dtype=rustgrad.float64)
    assert x.is_leaf and x.requires_grad and x.grad_fn is None
    np.testing.assert_array_equal(x.detach().numpy(), [[0.0, 100.0, -1.0], [-1.0, 7.0, 5.0]])
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))


def test_argmax_is_not_differentiable():
    x = rustgrad.tensor([[0.5, 2.0], [3.0, -1.0]], dtype=rustgrad.float64, requires_grad=True)
    for out in (x.argmax(), x.argmin(1), x.argmax(dim=0, keepdim=True)):
        assert out.dtype == rustgrad.int64 and not out.requires_grad and out.grad_fn is None
    assert x.argmax().item() == 2
    assert x.argmin(1).tolist() == [0, 1]


def test_round_floor_sign_have_zero_gradient():
    for op in (lambda t: t.round(), lambda t: t.floor(), lambda t: t.sign()):
        np.testing.assert_array_equal(_grad_of(op, [0.3, -1.7, 2.2]), [0.0, 0.0, 0.0])


# ----------------------------------------------------------------------------- error messages


def _raises(exc, message, fn):
    with pytest.raises(exc) as info:
        fn()
    assert str(info.value) == message


def test_error_cat_mismatched_shapes():
    _raises(RuntimeError, "Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4 "
            "for tensor number 1 in the list.", lambda: rustgrad.cat([rustgrad.zeros(2, 3), rustgrad.zeros(2, 4)]))


def test_error_stack_mismatched_shapes():
    _raises(RuntimeError, "stack expects each tensor to be equal size, but got [2] at entry 0 and [3] at entry 1",
            lambda: rustgrad.stack([rustgrad.zeros(2), rustgrad.zeros(3)]))


def test_error_gather_float_index():
    _raises(RuntimeError, "gather(): Expected dtype int32/int64 for index",
            lambda: rustgrad.zeros(3, 4).gather(1, rustgrad.zeros(3, 2)))


def test_error_gather_index_out_of_range():
    _raises(RuntimeError, "index 5 is out of bounds for dimension 1 with size 4",
            lambda: rustgrad.zeros(3, 4).gather(1, lt([[5]])))


def test_error_index_out_of_range():
    _raises(IndexError, "index 5 is out of bounds for dimension 0 with size 3", lambda: rustgrad.zeros(3)[5])
    _raises(IndexError, "index 7 is out of bounds for dimension 1 with size 4", lambda: rustgrad.zeros(3, 4)[:, 7])
    _raises(IndexError, "index 5 is out of bounds for dimension 0 with size 3",
            lambda: rustgrad.zeros(3)[lt([0, 5])])
    _raises(IndexError, "index -4 is out of bounds for dimension 0 with size 3", lambda: rustgrad.zeros(3)[[0, -4]])


def test_error_bad_mask_and_index_dtype():
    _raises(IndexError, "The shape of the mask [2] at index 0 does not match the shape of the indexed tensor [3] "
            "at index 0", lambda: rustgrad.zeros(3)[bt([True, False])])
    _raises(IndexError, "tensors used as indices must be long, int, byte or bool tensors",
            lambda: rustgrad.zeros(3)[ft([0.0])])


def test_error_split_sizes_must_sum():
    _raises(RuntimeError, "split_with_sizes expects split_sizes to sum exactly to 3 (input tensor's size at "
            "dimension 0), but got split_sizes=[1, 1]", lambda: rustgrad.zeros(3, 4).split([1, 1], 0))


def test_error_cross_entropy_target_out_of_range():
    _raises(IndexError, "Target 4 is out of bounds.",
            lambda: F.cross_entropy(rustgrad.zeros(3, 4, dtype=rustgrad.float64), lt([0, 1, 4])))


# ----------------------------------------------------------------------------- random programs
#
# A program is a list of steps on a "current" value, starting from leaf 0. Each step is built from
# the numpy value it applies to (so shapes are known while generating) and may add new leaves
# (broadcasting operands, weights, set-item values). ``lib`` is rustgrad or torch, ``nn_f`` its
# ``nn.functional``; constants (indices, masks) are numpy arrays baked into the step.


class Step(NamedTuple):
    desc: str
    np_fn: Callable  # (array, leaf arrays) -> array
    lib_fn: Callable  # (lib, nn_f, tensor, leaf tensors) -> tensor


def _bcast_shape(rng, shape):
    """A shape that broadcasts against ``shape``: a suffix of it, some sizes set to 1."""
    k = int(rng.integers(0, len(shape) + 1))
    suffix = shape[len(shape) - k:]
    return tuple(1 if rng.random() < 0.3 else s for s in suffix)


def _const(lib, a):
    a = np.asarray(a)
    if a.dtype == bool:
        return lib.tensor(a)
    if a.dtype.kind == "i":
        return lib.tensor(a.astype(np.int64))
    return lib.tensor(a.astype(np.float64), dtype=lib.float64)


def _gen_step(rng, x, leaves):
    """One random step applicable to the numpy value ``x``; may append to ``leaves``."""
    shape, nd = x.shape, x.ndim
    big = x.size > 36
    options = []

    def new_leaf(arr):
        leaves.append(np.asarray(arr, dtype=np.float64))
        return len(leaves) - 1

    def unary():
        name, f_np, f_lib = [
            ("tanh", np.tanh, lambda lib, f, t, L: t.tanh()),
            ("sigmoid", np_sigmoid, lambda lib, f, t, L: lib.sigmoid(t)),
            ("gelu", np_gelu, lambda lib, f, t, L: f.gelu(t)),
            ("square", lambda a: a * a, lambda lib, f, t, L: t * t),
            ("sin", np.sin, lambda lib, f, t, L: t.sin()),
            ("clamp", lambda a: np.clip(a, -0.8, 0.9), lambda lib, f, t, L: t.clamp(-0.8, 0.9)),
            ("clamp_min", lambda a: np.maximum(a, -0.4), lambda lib, f, t, L: t.clamp_min(-0.4)),
        ][int(rng.integers(0, 7))]
        return Step(name, lambda a, A: f_np(a), f_lib)

    def binary():
        k = new_leaf(rng.standard_normal(_bcast_shape(rng, shape)))
        op = ["add", "mul", "sub", "maximum", "minimum"][int(rng.integers(0, 5))]
        np_op = {"add": np.add, "mul": np.multiply, "sub": np.subtract, "maximum": np.maximum,
                 "minimum": np.minimum}[op]

        def lib_op(lib, f, t, L):
            o = L[k]
            return {"add": lambda: t + o, "mul": lambda: t * o, "sub": lambda: o - t,
                    "maximum": lambda: lib.maximum(t, o), "minimum": lambda: lib.minimum(o, t)}[op]()

        np_fn = (lambda a, A: A[k] - a) if op == "sub" else (lambda a, A: np_op(a, A[k]))
        return Step(f"{op}(leaf{k}{leaves[k].shape})", np_fn, lib_op)

    def divide():
        k = new_leaf(rng.uniform(0.5, 2.0, size=_bcast_shape(rng, shape)))
        return Step(f"div(leaf{k})", lambda a, A: a / A[k], lambda lib, f, t, L: t / L[k])

    options += [unary, unary, binary, divide]

    if nd >= 1:
        d = int(rng.integers(-nd, nd))
        options += [
            lambda: Step(f"softmax({d})", lambda a, A: np_softmax(a, d), lambda lib, f, t, L: t.softmax(d)),
            lambda: Step(f"log_softmax({d})", lambda a, A: np_log_softmax(a, d),
                         lambda lib, f, t, L: f.log_softmax(t, d)),
            lambda: Step(f"cumsum({d})", lambda a, A: np.cumsum(a, d), lambda lib, f, t, L: t.cumsum(d)),
            lambda: Step(f"logsumexp({d})", lambda a, A: np_logsumexp(a, d), lambda lib, f, t, L: t.logsumexp(d)),
            lambda: Step(f"sum({d}, keepdim)", lambda a, A: a.sum(d, keepdims=True),
                         lambda lib, f, t, L: t.sum(d, keepdim=True)),
            lambda: Step(f"prod({d})", lambda a, A: a.prod(d), lambda lib, f, t, L: t.prod(d)),
        ]
        if shape[d] >= 2:
            options.append(lambda: Step(f"var({d})", lambda a, A: np_var(a, d), lambda lib, f, t, L: t.var(d)))
            options.append(lambda: Step(f"std({d}, keepdim)", lambda a, A: np.std(a, d, ddof=1, keepdims=True),
                                        lambda lib, f, t, L: t.std(d, keepdim=True)))
            cut = int(rng.integers(1, shape[d]))
            options.append(lambda: Step(f"split({cut}, {d})[-1]", lambda a, A: np.split(a, [cut], d)[-1],
                                        lambda lib, f, t, L: t.split([cut, t.shape[d] - cut], d)[-1]))
            options.append(lambda: Step(f"chunk(2, {d})[0]",
                                        lambda a, A: np.split(a, [(a.shape[d] + 1) // 2], d)[0],
                                        lambda lib, f, t, L: t.chunk(2, d)[0]))
        if shape[0] >= 1 and not big:
            idx = rng.integers(-shape[0], shape[0], size=int(rng.integers(1, 5)))
            options.append(lambda: Step(f"index({idx.tolist()})", lambda a, A: a[idx],
                                        lambda lib, f, t, L: t[_const(lib, idx)]))
            gidx = rng.integers(0, shape[d], size=shape[:d % nd] + (int(rng.integers(1, 4)),) + shape[d % nd + 1:])
            options.append(lambda: Step(f"gather({d})", lambda a, A: np_gather(a, d, gidx),
                                        lambda lib, f, t, L: t.gather(d, _const(lib, gidx))))
        if x.size >= 1:
            mask = rng.random(shape) < 0.6
            options.append(lambda: Step("mask_select", lambda a, A: a[mask], lambda lib, f, t, L: t[_const(lib, mask)]))
            options.append(lambda: Step("masked_fill", lambda a, A: np.where(mask, 0.3, a),
                                        lambda lib, f, t, L: t.masked_fill(_const(lib, mask), 0.3)))
            cond = rng.random(_bcast_shape(rng, shape)) < 0.5

            def where_step():
                k = new_leaf(rng.standard_normal(_bcast_shape(rng, shape)))
                return Step(f"where(leaf{k})", lambda a, A: np.where(cond, a, A[k]),
                            lambda lib, f, t, L: lib.where(_const(lib, cond), t, L[k]))

            options.append(where_step)

        def setitem_step():
            rows = rng.permutation(shape[0])[: int(rng.integers(1, shape[0] + 1))] if shape[0] else np.zeros(0, int)
            k = new_leaf(rng.standard_normal((len(rows),) + shape[1:]))

            def np_fn(a, A):
                a = a.copy()
                a[rows] = A[k]
                return a

            def lib_fn(lib, f, t, L):
                y = t.clone()
                y[_const(lib, rows)] = L[k]
                return y

            return Step(f"setitem(rows {rows.tolist()}, leaf{k})", np_fn, lib_fn)

        options.append(setitem_step)
        if not big:
            def matmul_step():
                k = new_leaf(rng.standard_normal((shape[-1], int(rng.integers(1, 4)))))
                return Step(f"matmul(leaf{k}{leaves[k].shape})", lambda a, A: a @ A[k], lambda lib, f, t, L: t @ L[k])

            def linear_step():
                m = int(rng.integers(1, 4))
                k = new_leaf(rng.standard_normal((m, shape[-1])))
                kb = new_leaf(rng.standard_normal(m))
                return Step(f"linear(leaf{k}, leaf{kb})", lambda a, A: a @ A[k].T + A[kb],
                            lambda lib, f, t, L: f.linear(t, L[k], L[kb]))

            options += [matmul_step, linear_step]
    if nd >= 2:
        options.append(lambda: Step("transpose(0, -1)", lambda a, A: np.swapaxes(a, 0, -1),
                                    lambda lib, f, t, L: t.transpose(0, -1)))
        options.append(lambda: Step("flatten", lambda a, A: a.reshape(-1), lambda lib, f, t, L: t.flatten()))
        options.append(lambda: Step("x[1:, ..., ::2]", lambda a, A: a[1:, ..., ::2],
                                    lambda lib, f, t, L: t[1:, ..., ::2]))
        if shape[0] >= 2 and shape[-1] >= 2 and nd == 3:
            i, j = rng.integers(0, shape[0], size=2), rng.integers(0, shape[-1], size=2)
            options.append(lambda: Step("x[i, :, j]", lambda a, A: a[i, :, j],
                                        lambda lib, f, t, L: t[_const(lib, i), :, _const(lib, j)]))
    if nd <= 2 and not big:
        d_stack = int(rng.integers(0, nd + 1))

        def stack_step():
            k = new_leaf(rng.standard_normal(shape))
            return Step(f"stack(leaf{k}, {d_stack})", lambda a, A: np.stack([a, A[k]], d_stack),
                        lambda lib, f, t, L: lib.stack([t, L[k]], d_stack))

        options.append(stack_step)
        options.append(lambda: Step("x[None]", lambda a, A: a[None], lambda lib, f, t, L: t[None]))
        if x.size <= 12:
            reps = tuple(int(r) for r in rng.integers(1, 3, size=nd + 1))
            options.append(lambda: Step(f"repeat{reps}", lambda a, A: np.tile(a, reps),
                                        lambda lib, f, t, L: t.repeat(*reps)))
    if nd >= 1 and not big:
        d_cat = int(rng.integers(-nd, nd))
        options.append(lambda: Step(f"cat(x, tanh(x), {d_cat})", lambda a, A: np.concatenate([a, np.tanh(a)], d_cat),
                                    lambda lib, f, t, L: lib.cat([t, t.tanh()], d_cat)))
    return options[int(rng.integers(0, len(options)))]()


def _program(seed, n_steps=6):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(1, 4, size=int(rng.integers(1, 4))))
    leaves = [rng.standard_normal(shape)]
    steps, x = [], leaves[0]
    for _ in range(n_steps):
        step = _gen_step(rng, x, leaves)
        steps.append(step)
        x = step.np_fn(x, leaves)
    weights = rng.standard_normal(x.shape)
    return leaves, steps, weights


def _run_np(leaves, steps):
    x = leaves[0]
    for s in steps:
        x = s.np_fn(x, leaves)
    return x


def _run_lib(lib, nn_f, steps, leaf_tensors):
    x = leaf_tensors[0]
    for s in steps:
        x = s.lib_fn(lib, nn_f, x, leaf_tensors)
    return x


PROGRAM_SEEDS = list(range(32))


def _describe(steps):
    return " -> ".join(s.desc for s in steps)


@pytest.mark.parametrize("seed", PROGRAM_SEEDS)
def test_random_program_against_numpy_and_gradcheck(seed):
    leaves, steps, _ = _program(seed)
    tensors = _leaves(leaves)
    out = _run_lib(rustgrad, F, steps, tensors)
    np.testing.assert_allclose(out.detach().numpy(), _run_np(leaves, steps), rtol=1e-10, atol=1e-12,
                               err_msg=_describe(steps))
    assert rustgrad.autograd.gradcheck(lambda *ts: _run_lib(rustgrad, F, steps, list(ts)), tuple(tensors))


@pytest.mark.parametrize("seed", PROGRAM_SEEDS)
def test_random_program_against_torch(seed):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as torch_f

    leaves, steps, weights = _program(seed)
    results = []
    for lib, nn_f in ((rustgrad, F), (torch, torch_f)):
        tensors = [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in leaves]
        out = _run_lib(lib, nn_f, steps, tensors)
        loss = (out * lib.tensor(weights, dtype=lib.float64)).sum()
        loss.backward()
        grads = [np.zeros(a.shape) if t.grad is None else np.array(t.grad.numpy()) for t, a in zip(tensors, leaves)]
        results.append((np.array(out.detach().numpy()), float(loss.item()), grads))
    (out_r, loss_r, grads_r), (out_t, loss_t, grads_t) = results
    msg = _describe(steps)
    np.testing.assert_allclose(out_r, out_t, rtol=1e-6, atol=1e-12, err_msg=msg)
    np.testing.assert_allclose(loss_r, loss_t, rtol=1e-6, atol=1e-12, err_msg=msg)
    for i, (gr, gt) in enumerate(zip(grads_r, grads_t)):
        np.testing.assert_allclose(gr, gt, rtol=1e-6, atol=1e-12, err_msg=f"grad of leaf {i}: {msg}")


def test_gradcheck_rejects_a_wrong_gradient():
    """The checks above rely on the library's gradcheck: it must reject a wrong backward."""
    x = rustgrad.tensor([0.5, -1.0, 2.0], dtype=rustgrad.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        rustgrad.autograd.gradcheck(lambda t: t * t.detach(), (x,))
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        rustgrad.autograd.gradgradcheck(lambda t: (t * t.detach()) * t, (x,))


def test_random_programs_cover_the_table():
    """The generator must actually reach the new ops (otherwise the differential test is weak)."""
    names = " ".join(_describe(_program(seed)[1]) for seed in PROGRAM_SEEDS)
    for op in ("index", "gather", "setitem", "cat", "stack", "softmax", "var", "where", "mask"):
        assert op in names, f"no random program uses {op}"


# ----------------------------------------------------------------------------- forward mode



@pytest.mark.parametrize("r", DIFF_ROWS, ids=[r.name for r in DIFF_ROWS])
def test_jvp_against_central_differences(r):
    """Forward mode: the tangent of each output equals the central difference
    (f(x + h v) - f(x - h v)) / 2h along random tangents v, in float64."""
    import rustgrad.autograd.forward_ad as fwad

    arrays = _draw(r, 3)
    rng = np.random.default_rng(_seed(r, 4))
    directions = [rng.standard_normal(a.shape) for a in arrays]
    if r.name in JVP_REFUSED:
        with fwad.dual_level(), pytest.raises(NotImplementedError, match="Trying to use forward AD with"):
            r.fn(*[fwad.make_dual(rustgrad.tensor(a, dtype=rustgrad.float64), rustgrad.tensor(v, dtype=rustgrad.float64))
                   for a, v in zip(arrays, directions)])
        return
    with fwad.dual_level():
        duals = [
            fwad.make_dual(rustgrad.tensor(a, dtype=rustgrad.float64), rustgrad.tensor(v, dtype=rustgrad.float64))
            for a, v in zip(arrays, directions)
        ]
        tangents = [fwad.unpack_dual(o).tangent for o in _as_tuple(r.fn(*duals))]
    h = 1e-6

    def at(sign):
        xs = [rustgrad.tensor(a + sign * h * v, dtype=rustgrad.float64) for a, v in zip(arrays, directions)]
        return [o.detach().numpy() for o in _as_tuple(r.fn(*xs))]

    plus, minus = at(1.0), at(-1.0)
    for tangent, p, m in zip(tangents, plus, minus):
        assert tangent is not None
        np.testing.assert_allclose(tangent.numpy(), (p - m) / (2 * h), rtol=1e-5, atol=1e-6)


_TANGENT_CASES = [(r, "all") for r in DIFF_ROWS] + [(r, "last") for r in DIFF_ROWS if len(r.inputs) > 1]


@pytest.mark.parametrize(("r", "tangents"), _TANGENT_CASES, ids=[f"{r.name}-{t}" for r, t in _TANGENT_CASES])
def test_jvp_formulas_against_the_backward_rule(r, tangents):
    """Each op's own jvp formula gives the tangent (and the tangent's gradient with respect to
    the primals, reverse-over-forward) that the generic rule derives from its backward formula,
    with a tangent on every input and on the last one only."""
    import rustgrad.autograd.forward_ad as fwad
    from rustgrad import _rustgrad

    arrays = _draw(r, 3)
    rng = np.random.default_rng(_seed(r, 5))
    directions = [rng.standard_normal(a.shape) for a in arrays]
    if tangents == "last":
        directions[:-1] = [None] * (len(directions) - 1)
    weights = None

    def run(formulas):
        nonlocal weights
        previous = _rustgrad._set_jvp_formulas(formulas)
        try:
            primals = [rustgrad.tensor(a, dtype=rustgrad.float64, requires_grad=True) for a in arrays]
            with fwad.dual_level():
                duals = [p if v is None else fwad.make_dual(p, rustgrad.tensor(v, dtype=rustgrad.float64))
                         for p, v in zip(primals, directions)]
                tangents = [fwad.unpack_dual(o).tangent for o in _as_tuple(r.fn(*duals))]
                tangents = [t for t in tangents if t is not None]
                if weights is None:
                    weights = [rng.standard_normal(tuple(t.shape)) for t in tangents]
                total = sum((t * rustgrad.tensor(w, dtype=rustgrad.float64)).sum()
                            for t, w in zip(tangents, weights))
                grads = rustgrad.autograd.grad(total, primals, allow_unused=True) if total.requires_grad \
                    else [None] * len(primals)
            return [t.detach().numpy() for t in tangents], [None if g is None else g.numpy() for g in grads]
        finally:
            _rustgrad._set_jvp_formulas(previous)

    own, own_grads = run(True)
    derived, derived_grads = run(False)
    assert len(own) == len(derived)
    for a, b in zip(own, derived):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(own_grads, derived_grads):
        if a is None or b is None:
            assert a is None or not np.any(a), "a gradient where the backward rule gives none"
            assert b is None or not np.any(b), "no gradient where the backward rule gives one"
        else:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


# ----------------------------------------------------------------------------- vmap


def _batch_of(r, n=3):
    """``n`` draws of the row's inputs, stacked along a new dimension 0 (one array per input)."""
    draws = [_draw(r, 10 + k) for k in range(n)]
    return [np.stack([d[i] for d in draws]) for i in range(len(r.inputs))]


def _vmap_against_loop(r, in_dims):
    import warnings

    batched = _batch_of(r)
    tensors = [rustgrad.tensor(a, dtype=rustgrad.float64) for a in batched]
    args = [t if d is not None else t[0] for t, d in zip(tensors, in_dims)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _as_tuple(rustgrad.vmap(r.fn, in_dims=tuple(in_dims))(*args))
    loop = [_as_tuple(r.fn(*[a if d is None else a[k] for a, d in zip(args, in_dims)])) for k in range(3)]
    assert len(got) == len(loop[0])
    for j, out in enumerate(got):
        want = np.stack([loop[k][j].detach().numpy() for k in range(3)])
        assert tuple(out.shape) == want.shape
        assert out.dtype == loop[0][j].dtype
        np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-12, atol=1e-12)
    return [str(w.message) for w in caught if "batching rule" in str(w.message)]


@pytest.mark.parametrize("r", ROWS, ids=IDS)
def test_vmap_against_loop(r):
    """``vmap(op)`` over a batch of 3 equals the op applied to each element in a loop, with every
    input mapped and with only the first one mapped."""
    _vmap_against_loop(r, [0] * len(r.inputs))
    if len(r.inputs) > 1:
        _vmap_against_loop(r, [0] + [None] * (len(r.inputs) - 1))
