"""The functional ops that PyTorch records as one named backward node (``interpolate``, pixel and
channel shuffles, ``glu``, ``prelu``, ``rrelu``, ``embedding_bag``, the margin losses), written in
rustgrad as autograd Functions with a differentiable backward.

An op table: each row's forward is checked against an independent numpy loop or closed form, then
``gradcheck`` and ``gradgradcheck`` in float64 and PyTorch's ``grad_fn`` name; when PyTorch is
installed, the same call under both (values, gradients, ``grad_fn``, in float64 and float32). Then
random ``interpolate`` calls against PyTorch, the seeded random stream of ``rrelu``, the modules
(seeded parameters, ``repr``s, ``state_dict`` keys) and bad input (PyTorch's classes and messages).
"""

from __future__ import annotations

import itertools
import math
import random
import re
import warnings
from typing import Callable, NamedTuple

import numpy as np
import pytest
import rustgrad
from gradcheck import gradcheck, gradgradcheck
from op_rows import as_tuple, grad_fn_name, leaves


def F(lib):
    return lib.nn.functional


def normal(*shape, seed=0):
    rng = np.random.default_rng(seed + 11 * len(shape) + sum(shape))
    return rng.standard_normal(shape)


def spread(*shape, seed=0):
    """A permutation of well separated values (max picks and hinge kinks stay away under eps)."""
    rng = np.random.default_rng(seed + sum(shape))
    n = int(np.prod(shape))
    return (rng.permutation(n) / n * 4.0 - 2.0 + 0.0137).reshape(shape)


# ----------------------------------------------------------------------------- numpy oracles


def _resample_matrix(n_in, n_out, mode, align_corners=False, scale=None):
    """The (n_out, n_in) matrix of one dim's resampling, from the textbook formulas."""
    m = np.zeros((n_out, n_in))
    step = 1.0 / scale if scale else n_in / n_out
    if align_corners:
        step = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    for o in range(n_out):
        if mode == "nearest":
            m[o, min(math.floor(o * step), n_in - 1)] = 1
        elif mode == "nearest-exact":
            m[o, min(math.floor((o + 0.5) * step), n_in - 1)] = 1
        elif mode == "linear":
            if n_in == n_out:
                m[o, o] = 1
                continue
            src = o * step if align_corners else max((o + 0.5) * step - 0.5, 0.0)
            i0 = min(math.floor(src), n_in - 1)
            frac = src - i0
            i1 = min(i0 + 1, n_in - 1)
            m[o, i0] += 1 - frac
            m[o, i1] += frac
        else:  # cubic, A = -0.75, edge taps clamped
            src = o * step if align_corners else (o + 0.5) * step - 0.5
            i0 = math.floor(src)
            t = src - i0
            for k in range(-1, 3):
                d = abs(t - k)
                a = -0.75
                w = ((a + 2) * d - (a + 3)) * d * d + 1 if d <= 1 else ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
                m[o, min(max(i0 + k, 0), n_in - 1)] += w
    return m


def np_resample(x, sizes, mode, align_corners=False, scales=None):
    out = x
    for k, n_out in enumerate(sizes):
        dim = 2 + k
        mat = _resample_matrix(x.shape[dim], n_out, mode, align_corners, None if scales is None else scales[k])
        out = np.moveaxis(np.tensordot(out, mat, axes=([dim], [1])), -1, dim)
    return out


def np_pixel_shuffle(x, r):
    *b, c, h, w = x.shape
    out = np.zeros((*b, c // (r * r), h * r, w * r))
    for ch, i, j in itertools.product(range(c // (r * r)), range(r), range(r)):
        out[..., ch, i::r, j::r] = x[..., ch * r * r + i * r + j, :, :]
    return out


def np_channel_shuffle(x, g):
    c = x.shape[1]
    return np.stack([x[:, (k % g) * (c // g) + k // g] for k in range(c)], axis=1)


def np_embedding_bag(idx, w, offsets, mode, psw=None, padding_idx=None):
    ends = list(offsets[1:]) + [len(idx)]
    out = np.zeros((len(offsets), w.shape[1]))
    for b, (s, e) in enumerate(zip(offsets, ends)):
        rows = [(w[idx[j]] * (1 if psw is None else psw[j])) for j in range(s, e) if idx[j] != padding_idx]
        if rows:
            out[b] = {"sum": np.sum, "mean": np.mean, "max": np.max}[mode](rows, axis=0)
    return out


def np_multi_margin(x, y, p=1, margin=1.0, w=None):
    out = []
    for row, t in zip(x, y):
        terms = [max(0.0, margin - row[t] + row[i]) ** p * (1 if w is None else w[t]) for i in range(len(row)) if i != t]
        out.append(sum(terms) / len(row))
    return np.array(out)


def np_multilabel_margin(x, y):
    out = []
    for row, t in zip(x, y):
        labels = list(itertools.takewhile(lambda v: v != -1, t))
        others = [i for i in range(len(row)) if i not in labels]
        out.append(sum(max(0.0, 1 - row[j] + row[i]) for j in labels for i in others) / len(row))
    return np.array(out)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ----------------------------------------------------------------------------- the table


class Row(NamedTuple):
    name: str
    fn: Callable  # fn(torch-like library, *tensors)
    ref: Callable  # ref(*arrays) -> array
    inputs: list  # arrays (float64)
    grad_fn: str | None
    gradgrad: bool = True


def _interp_row(name, shape, kw, node, sizes, mode, ac=False, scales=None):
    return Row(name, lambda L, x: F(L).interpolate(x, **kw), lambda x: np_resample(x, sizes, mode, ac, scales),
               [normal(*shape)], node)


BAG_IDX = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0, 0])
BAG_OFFS = np.array([0, 4, 4, 7])
LABELS = np.array([[3, 0, -1, 1], [0, 1, 2, 3], [1, 1, -1, 0]])


def _seeded(fn):
    """``fn`` with the generator reset first: the same noise on every call (for finite differences)."""

    def call(L, *xs):
        L.manual_seed(7)
        return fn(L, *xs)

    return call


ROWS = [
    _interp_row("nearest1d", (2, 3, 5), {"size": 7}, "UpsampleNearest1DBackward0", [7], "nearest"),
    _interp_row("nearest2d", (1, 2, 3, 4), {"scale_factor": 2}, "UpsampleNearest2DBackward0", [6, 8], "nearest"),
    _interp_row("nearest2d_down", (1, 2, 6, 5), {"size": (4, 2)}, "UpsampleNearest2DBackward0", [4, 2], "nearest"),
    _interp_row("nearest3d", (1, 1, 2, 3, 2), {"size": (3, 5, 4)}, "UpsampleNearest3DBackward0", [3, 5, 4], "nearest"),
    _interp_row("nearest_exact1d", (1, 2, 5), {"size": 8, "mode": "nearest-exact"}, "UpsampleNearestExact1DBackward0",
                [8], "nearest-exact"),
    _interp_row("nearest_exact2d", (1, 1, 4, 6), {"size": (3, 4), "mode": "nearest-exact"},
                "UpsampleNearestExact2DBackward0", [3, 4], "nearest-exact"),
    _interp_row("nearest_exact3d", (1, 1, 2, 2, 3), {"scale_factor": 2, "mode": "nearest-exact"},
                "UpsampleNearestExact3DBackward0", [4, 4, 6], "nearest-exact"),
    _interp_row("linear1d", (2, 2, 5), {"size": 8, "mode": "linear"}, "UpsampleLinear1DBackward0", [8], "linear"),
    _interp_row("linear1d_align", (1, 2, 4), {"size": 7, "mode": "linear", "align_corners": True},
                "UpsampleLinear1DBackward0", [7], "linear", True),
    _interp_row("bilinear", (1, 2, 3, 4), {"scale_factor": (2.5, 1.5), "mode": "bilinear"},
                "UpsampleBilinear2DBackward0", [7, 6], "linear", False, [2.5, 1.5]),
    _interp_row("bilinear_down_align", (1, 1, 6, 5), {"size": (4, 3), "mode": "bilinear", "align_corners": True},
                "UpsampleBilinear2DBackward0", [4, 3], "linear", True),
    _interp_row("bilinear_recompute", (1, 1, 3, 4), {"scale_factor": 1.7, "mode": "bilinear",
                "recompute_scale_factor": True}, "UpsampleBilinear2DBackward0", [5, 6], "linear"),
    _interp_row("bicubic", (1, 2, 4, 3), {"size": (7, 5), "mode": "bicubic"}, "UpsampleBicubic2DBackward0", [7, 5],
                "cubic"),
    _interp_row("bicubic_align", (1, 1, 3, 4), {"scale_factor": 2, "mode": "bicubic", "align_corners": True},
                "UpsampleBicubic2DBackward0", [6, 8], "cubic", True),
    _interp_row("trilinear", (1, 1, 2, 3, 4), {"size": (3, 5, 3), "mode": "trilinear"},
                "UpsampleTrilinear3DBackward0", [3, 5, 3], "linear"),
    Row("area", lambda L, x: F(L).interpolate(x, scale_factor=0.5, mode="area"),
        lambda x: x.reshape(1, 2, 2, 2, 3, 2).mean((3, 5)), [normal(1, 2, 4, 6)], "AdaptiveAvgPool2DBackward0"),
    Row("pixel_shuffle", lambda L, x: F(L).pixel_shuffle(x, 2), lambda x: np_pixel_shuffle(x, 2),
        [normal(2, 8, 2, 3)], "PixelShuffleBackward0"),
    Row("pixel_shuffle_batch_dims", lambda L, x: F(L).pixel_shuffle(x, 3), lambda x: np_pixel_shuffle(x, 3),
        [normal(2, 1, 9, 2, 1)], "PixelShuffleBackward0"),
    Row("pixel_unshuffle", lambda L, x: F(L).pixel_unshuffle(x, 2),
        lambda x: np.stack([x[:, c, i::2, j::2] for c in range(3) for i in range(2) for j in range(2)], 1),
        [normal(2, 3, 4, 6)], "PixelUnshuffleBackward0"),
    Row("channel_shuffle", lambda L, x: F(L).channel_shuffle(x, 3), lambda x: np_channel_shuffle(x, 3),
        [normal(2, 6, 2, 2)], "ChannelShuffleBackward0"),
    Row("glu", lambda L, x: F(L).glu(x), lambda x: x[:, :3] * sigmoid(x[:, 3:]), [normal(4, 6)], "GluBackward0"),
    Row("glu_dim0", lambda L, x: F(L).glu(x, 0), lambda x: x[:2] * sigmoid(x[2:]), [normal(4, 3, 2)], "GluBackward0"),
    Row("prelu_channels", lambda L, x, w: F(L).prelu(x, w), lambda x, w: np.where(x > 0, x, w[None, :, None] * x),
        [spread(2, 3, 4), normal(3)], "PreluKernelBackward0"),
    Row("prelu_shared", lambda L, x, w: F(L).prelu(x, w), lambda x, w: np.where(x > 0, x, w * x),
        [spread(5), np.array([0.3])], "PreluKernelBackward0"),
    Row("rrelu_eval", lambda L, x: F(L).rrelu(x, 0.1, 0.3), lambda x: np.where(x > 0, x, 0.2 * x), [spread(10)],
        "RreluWithNoiseBackward0"),
    Row("rrelu_train", _seeded(lambda L, x: F(L).rrelu(x, 0.1, 0.3, training=True)), None, [spread(3, 4)],
        "RreluWithNoiseBackward0"),
    Row("embedding_bag_sum", lambda L, w: F(L).embedding_bag(L.tensor(BAG_IDX), w, L.tensor(BAG_OFFS), mode="sum"),
        lambda w: np_embedding_bag(BAG_IDX, w, BAG_OFFS, "sum"), [normal(10, 3)], "EmbeddingBagBackward0"),
    Row("embedding_bag_mean_pad", lambda L, w: F(L).embedding_bag(L.tensor(BAG_IDX), w, L.tensor(BAG_OFFS),
        padding_idx=4), lambda w: np_embedding_bag(BAG_IDX, w, BAG_OFFS, "mean", padding_idx=4), [normal(10, 3)],
        "EmbeddingBagBackward0"),
    Row("embedding_bag_max", lambda L, w: F(L).embedding_bag(L.tensor(BAG_IDX), w, L.tensor(BAG_OFFS), mode="max"),
        lambda w: np_embedding_bag(BAG_IDX, w, BAG_OFFS, "max"), [spread(10, 3)], "EmbeddingBagBackward0"),
    Row("embedding_bag_2d_mean", lambda L, w: F(L).embedding_bag(L.tensor(BAG_IDX.reshape(2, 5)), w),
        lambda w: np_embedding_bag(BAG_IDX, w, [0, 5], "mean"), [normal(10, 2)], "EmbeddingBagBackward0"),
    Row("embedding_bag_psw", lambda L, w, p: F(L).embedding_bag(L.tensor(BAG_IDX), w, L.tensor(BAG_OFFS), mode="sum",
        per_sample_weights=p), lambda w, p: np_embedding_bag(BAG_IDX, w, BAG_OFFS, "sum", p),
        [normal(10, 3), normal(10)], "EmbeddingBagBackward0"),
    Row("embedding_bag_last_offset", lambda L, w: F(L).embedding_bag(L.tensor(BAG_IDX), w, L.tensor([0, 3, 10]),
        mode="sum", include_last_offset=True), lambda w: np_embedding_bag(BAG_IDX, w, [0, 3], "sum"),
        [normal(10, 3)], "EmbeddingBagBackward0"),
    Row("soft_margin_loss", lambda L, x: F(L).soft_margin_loss(x, L.tensor([[1.0, -1, 1, 1], [-1, -1, 1, -1]],
        dtype=x.dtype)), lambda x: np.mean(np.log1p(np.exp(-x * np.array([[1, -1, 1, 1], [-1, -1, 1, -1]])))),
        [normal(2, 4)], "SoftMarginLossBackward0"),
    Row("soft_margin_loss_none", lambda L, x: F(L).soft_margin_loss(x, L.tensor([1.0, -1, 1], dtype=x.dtype),
        reduction="none"), lambda x: np.log1p(np.exp(-x * np.array([1, -1, 1]))), [normal(2, 3)],
        "SoftMarginLossBackward0"),
    Row("multi_margin_loss", lambda L, x: F(L).multi_margin_loss(x, L.tensor([0, 3, 1])),
        lambda x: np.mean(np_multi_margin(x, [0, 3, 1])), [spread(3, 4) * 0.77], "MultiMarginLossBackward0"),
    Row("multi_margin_loss_p2_weight", lambda L, x: F(L).multi_margin_loss(x, L.tensor([2, 0]), p=2, margin=0.7,
        weight=L.tensor([1.0, 2.0, 0.5], dtype=x.dtype), reduction="none"),
        lambda x: np_multi_margin(x, [2, 0], 2, 0.7, [1.0, 2.0, 0.5]), [spread(2, 3)], "MultiMarginLossBackward0"),
    Row("multi_margin_loss_1d", lambda L, x: F(L).multi_margin_loss(x, L.tensor(2), reduction="sum"),
        lambda x: np_multi_margin(x[None], [2])[0], [spread(5) * 0.3], "MultiMarginLossBackward0"),
    Row("multilabel_margin_loss", lambda L, x: F(L).multilabel_margin_loss(x, L.tensor(LABELS)),
        lambda x: np.mean(np_multilabel_margin(x, LABELS)), [spread(3, 4) * 0.77], "MultilabelMarginLossBackward0"),
    Row("multilabel_margin_loss_none", lambda L, x: F(L).multilabel_margin_loss(x, L.tensor(LABELS),
        reduction="none"), lambda x: np_multilabel_margin(x, LABELS), [spread(3, 4) * 0.3],
        "MultilabelMarginLossBackward0"),
]
IDS = [r.name for r in ROWS]


@pytest.mark.parametrize("row", [r for r in ROWS if r.ref is not None], ids=[r.name for r in ROWS if r.ref is not None])
def test_forward_matches_numpy(row):
    out = as_tuple(row.fn(rustgrad, *leaves(row.inputs)))[0]
    np.testing.assert_allclose(out.detach().numpy(), row.ref(*row.inputs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_grad_fn_name(row):
    out = as_tuple(row.fn(rustgrad, *leaves(row.inputs)))[0]
    assert grad_fn_name(out) == row.grad_fn
    assert repr(out.grad_fn).startswith(f"<{row.grad_fn} object at 0x")


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_gradcheck(row):
    assert gradcheck(lambda *xs: row.fn(rustgrad, *xs), row.inputs)


@pytest.mark.parametrize("row", [r for r in ROWS if r.gradgrad], ids=[r.name for r in ROWS if r.gradgrad])
def test_gradgradcheck(row):
    assert gradgradcheck(lambda *xs: row.fn(rustgrad, *xs), row.inputs)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_against_pytorch(row):
    torch = pytest.importorskip("torch")
    for dtype in ("float64", "float32"):
        arrays = [a.astype(dtype) for a in row.inputs]
        ours = [rustgrad.tensor(a, requires_grad=True) for a in arrays]
        theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
        o, t = as_tuple(row.fn(rustgrad, *ours))[0], as_tuple(row.fn(torch, *theirs))[0]
        tol = 1e-12 if dtype == "float64" else 2e-6
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)
        assert grad_fn_name(o) == type(t.grad_fn).__name__
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        g = np.random.default_rng(3).standard_normal(tuple(t.shape)).astype(dtype)
        o.backward(rustgrad.tensor(g))
        t.backward(torch.tensor(g))
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=tol * 10, atol=tol * 10)


# ----------------------------------------------------------------------------- interpolate


def _random_interpolate_cases(n=120):
    rng = random.Random(0)
    modes = [("nearest", 1), ("nearest", 2), ("nearest", 3), ("nearest-exact", 1), ("nearest-exact", 2),
             ("nearest-exact", 3), ("linear", 1), ("bilinear", 2), ("bicubic", 2), ("trilinear", 3)]
    cases = []
    for i in range(n):
        mode, nd = modes[i % len(modes)]
        shape = [rng.randint(1, 2), rng.randint(1, 2)] + [rng.randint(1, 7) for _ in range(nd)]
        kw = {"mode": mode}
        if rng.random() < 0.4:
            kw["size"] = [rng.randint(1, 12) for _ in range(nd)]
        else:
            # 2.19 reaches ATen's shortcut for a doubled size with a scale that is not 2
            kw["scale_factor"] = rng.choice([2, 0.5, 1.5, 2.19, 1 / 3, 0.7, 3, 1.0, 2.5, rng.uniform(0.3, 3.5)])
            if rng.random() < 0.3:
                kw["recompute_scale_factor"] = True
        if mode not in ("nearest", "nearest-exact") and rng.random() < 0.4:
            kw["align_corners"] = True
        cases.append((shape, kw))
    return cases


def test_interpolate_matches_pytorch_on_random_calls():
    torch = pytest.importorskip("torch")
    for k, (shape, kw) in enumerate(_random_interpolate_cases()):
        x = np.random.default_rng(k).standard_normal(shape)
        for dtype in ("float64", "float32"):
            ours = rustgrad.tensor(x.astype(dtype), requires_grad=True)
            theirs = torch.tensor(x.astype(dtype), requires_grad=True)
            try:
                t = F(torch).interpolate(theirs, **kw)
            except RuntimeError as e:  # an empty output: the same error
                with pytest.raises(RuntimeError, match=re.escape(str(e))):
                    F(rustgrad).interpolate(ours, **kw)
                continue
            o = F(rustgrad).interpolate(ours, **kw)
            assert tuple(o.shape) == tuple(t.shape), (shape, kw)
            # the nearest modes pick the same elements; the linear ones agree to rounding (ATen's
            # kernels fuse some multiply-adds)
            tol = 0 if "nearest" in kw["mode"] else 1e-13 if dtype == "float64" else 1e-5
            np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol, err_msg=str(kw))
            assert grad_fn_name(o) == type(t.grad_fn).__name__
            g = np.random.default_rng(k + 1).standard_normal(tuple(t.shape)).astype(dtype)
            o.backward(rustgrad.tensor(g))
            t.backward(torch.tensor(g))
            gtol = 1e-12 if dtype == "float64" else 1e-5  # (float32 sums in another order)
            np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=gtol, atol=gtol, err_msg=str(kw))


def test_interpolate_follows_atens_shortcuts():
    # 2.19 * 5 -> 10 outputs: the 1-d kernel takes floor(i / 2.19), the 2-d one i >> 1
    x = rustgrad.arange(5.0)
    assert F(rustgrad).interpolate(x.reshape(1, 1, 5), scale_factor=2.19).reshape(-1).tolist() == [
        0, 0, 0, 1, 1, 2, 2, 3, 3, 4]
    assert F(rustgrad).interpolate(x.reshape(1, 1, 5, 1), scale_factor=2.19)[0, 0, :, 0].tolist() == [
        0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    # and ATen's 1-d backward halves the index all the same (its gradient: pairs of outputs)
    leaf = rustgrad.zeros(1, 1, 5, requires_grad=True)
    F(rustgrad).interpolate(leaf, scale_factor=2.19).backward(rustgrad.arange(10.0).reshape(1, 1, 10))
    assert leaf.grad.reshape(-1).tolist() == [1, 5, 9, 13, 17]
    # an unchanged size: 1-d nearest still scales (3 * 1.2 -> 3), linear modes copy
    y = rustgrad.arange(3.0).reshape(1, 1, 3)
    assert F(rustgrad).interpolate(y, scale_factor=1.2).reshape(-1).tolist() == [0, 0, 1]
    assert F(rustgrad).interpolate(y, scale_factor=1.2, mode="linear").reshape(-1).tolist() == [0, 1, 2]


def test_interpolate_keeps_uint8_nearest_and_empty_batches():
    x = rustgrad.tensor([[[1, 2], [3, 4]]], dtype=rustgrad.uint8).unsqueeze(0)
    out = F(rustgrad).interpolate(x, scale_factor=2)
    assert out.dtype == rustgrad.uint8 and out[0, 0, :, 0].tolist() == [1, 1, 3, 3]
    empty = F(rustgrad).interpolate(rustgrad.zeros(0, 2, 3, 3), size=2)
    assert tuple(empty.shape) == (0, 2, 2, 2)


def test_deprecated_upsample_functions_warn():
    x = rustgrad.randn(1, 1, 2, 2)
    for fn, name in ((F(rustgrad).upsample, "upsample"), (F(rustgrad).upsample_nearest, "upsample_nearest"),
                     (F(rustgrad).upsample_bilinear, "upsample_bilinear")):
        with pytest.warns(UserWarning, match=f"`nn.functional.{name}` is deprecated"):
            assert tuple(fn(x, scale_factor=2).shape) == (1, 1, 4, 4)
    expected = F(rustgrad).interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert rustgrad.equal(F(rustgrad).upsample_bilinear(x, scale_factor=2), expected)


# ----------------------------------------------------------------------------- rrelu's noise


def test_rrelu_training_draws_slopes_in_bounds_and_reuses_them_in_backward():
    x = rustgrad.tensor(spread(4, 5), requires_grad=True)
    y = F(rustgrad).rrelu(x, 0.1, 0.3, training=True)
    slopes = (y / x).detach().numpy()
    neg = x.detach().numpy() <= 0
    assert np.all(slopes[~neg] == 1) and np.all((slopes[neg] >= 0.1) & (slopes[neg] <= 0.3))
    assert len(set(slopes[neg].tolist())) == neg.sum()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), slopes, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_rrelu_draws_pytorchs_random_stream(dtype):
    torch = pytest.importorskip("torch")
    x = spread(3, 7).astype(dtype).T  # a transposed input: drawn in its logical order
    outs = []
    for lib in (rustgrad, torch):
        lib.manual_seed(11)
        t = lib.tensor(x, requires_grad=True)
        y = F(lib).rrelu(t, training=True)
        z = lib.nn.RReLU(0.2, 0.5).train()(t)
        (y.sum() + z.sum()).backward()
        outs.append((y.detach().numpy(), z.detach().numpy(), t.grad.numpy(), lib.rand(2).numpy()))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_rrelu_inplace_records_pytorchs_node():
    x = rustgrad.tensor(spread(6), requires_grad=True)
    y = x * 1
    out = F(rustgrad).rrelu(y, inplace=True)
    assert out is y and grad_fn_name(out) == "RreluWithNoiseBackward1"
    out.sum().backward()
    slope = (1 / 8 + 1 / 3) / 2
    np.testing.assert_allclose(x.grad.numpy(), np.where(spread(6) > 0, 1.0, slope))
    r = rustgrad.tensor(spread(6))
    assert F(rustgrad).rrelu_(r) is r and np.allclose(r.numpy(), np.where(spread(6) > 0, 1, slope) * spread(6))


# ----------------------------------------------------------------------------- embedding_bag


def test_embedding_bag_max_sends_the_gradient_to_the_maximum_and_empty_bags_get_zeros():
    w = rustgrad.tensor([[1.0, 5.0], [3.0, 2.0], [2.0, 4.0]], requires_grad=True)
    out = F(rustgrad).embedding_bag(rustgrad.tensor([0, 1, 2, 1]), w, rustgrad.tensor([0, 3, 3]), mode="max")
    assert out.tolist() == [[3.0, 5.0], [0.0, 0.0], [3.0, 2.0]]
    out.backward(rustgrad.tensor([[1.0, 10.0], [100.0, 100.0], [1000.0, 10000.0]]))
    assert w.grad.tolist() == [[0.0, 10.0], [1001.0, 10000.0], [0.0, 0.0]]


def test_embedding_bag_scale_grad_by_freq_and_max_norm():
    torch = pytest.importorskip("torch")
    w0 = normal(6, 3) * 2
    grads, weights = [], []
    for lib in (rustgrad, torch):
        w = lib.tensor(w0, requires_grad=True)
        out = F(lib).embedding_bag(lib.tensor([1, 1, 2, 5, 1]), w, lib.tensor([0, 2]), scale_grad_by_freq=True,
                                   mode="sum", max_norm=1.5)
        out.backward(lib.ones(2, 3, dtype=lib.float64))
        grads.append(w.grad.numpy())
        weights.append(w.detach().numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    np.testing.assert_allclose(weights[0], weights[1], rtol=1e-12)


def test_embedding_bag_warns_about_the_old_argument_order():
    w = rustgrad.randn(5, 2)
    with pytest.warns(UserWarning, match="Argument order of nn.functional.embedding_bag was changed"):
        out = F(rustgrad).embedding_bag(w, rustgrad.tensor([[0, 1], [2, 3]]))
    assert tuple(out.shape) == (2, 2)


# ----------------------------------------------------------------------------- modules

MODULES = [
    ("Upsample", (), {"scale_factor": 2}),
    ("Upsample", (), {"size": (3, 4), "mode": "bilinear", "align_corners": True}),
    ("Upsample", (), {"scale_factor": (2, 3), "mode": "nearest-exact"}),
    ("Upsample", (), {}),
    ("UpsamplingNearest2d", (), {"scale_factor": 2}),
    ("UpsamplingBilinear2d", (), {"size": 3}),
    ("PixelShuffle", (2,), {}),
    ("PixelUnshuffle", (3,), {}),
    ("ChannelShuffle", (2,), {}),
    ("GLU", (), {}),
    ("GLU", (1,), {}),
    ("PReLU", (), {}),
    ("PReLU", (3,), {"init": 0.1}),
    ("RReLU", (), {}),
    ("RReLU", (0.1, 0.3, True), {}),
    ("Softmax2d", (), {}),
    ("EmbeddingBag", (10, 3), {}),
    ("EmbeddingBag", (10, 3), {"max_norm": 1.0, "norm_type": 1.0, "scale_grad_by_freq": True, "mode": "sum",
                               "include_last_offset": True, "padding_idx": 2}),
    ("EmbeddingBag", (10, 3), {"mode": "max", "padding_idx": -1}),
    ("SoftMarginLoss", (), {}),
    ("MultiMarginLoss", (), {"p": 2, "margin": 0.5, "weight": "w3"}),
    ("MultiLabelMarginLoss", (), {"reduction": "sum"}),
]


def _build(lib, name, args, kwargs):
    kwargs = {k: (lib.ones(3) if v == "w3" else v) for k, v in kwargs.items()}
    return getattr(lib.nn, name)(*args, **kwargs)


@pytest.mark.parametrize(("name", "args", "kwargs"), MODULES, ids=[m[0] for m in MODULES])
def test_modules_match_pytorch(name, args, kwargs):
    torch = pytest.importorskip("torch")
    torch.manual_seed(5)
    theirs = _build(torch, name, args, kwargs)
    rustgrad.manual_seed(5)
    ours = _build(rustgrad, name, args, kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key].numpy(), value.numpy())


def test_modules_forward_as_pytorch():
    torch = pytest.importorskip("torch")
    x4, x3 = normal(2, 4, 3, 3), normal(2, 6, 4)
    cases = [
        (lambda L: L.nn.Upsample(scale_factor=1.5, mode="bicubic"), x4),
        (lambda L: L.nn.UpsamplingBilinear2d(scale_factor=2), x4),
        (lambda L: L.nn.UpsamplingNearest2d(size=(5, 2)), x4),
        (lambda L: L.nn.Upsample(size=7, mode="linear"), x3),
        (lambda L: L.nn.PixelShuffle(2), x4),
        (lambda L: L.nn.PixelUnshuffle(2), normal(1, 2, 4, 6)),
        (lambda L: L.nn.ChannelShuffle(2), x4),
        (lambda L: L.nn.GLU(1), x4),
        (lambda L: L.nn.PReLU(4, init=0.3), x4),
        (lambda L: L.nn.RReLU().eval(), x4),
        (lambda L: L.nn.Softmax2d(), x4),
    ]
    for make, x in cases:
        outs = []
        for lib in (rustgrad, torch):
            lib.manual_seed(0)
            m = make(lib).double()
            t = lib.tensor(x, requires_grad=True)
            y = m(t)
            y.backward(lib.tensor(np.cos(np.arange(y.numel())).reshape(tuple(y.shape))))
            outs.append((y.detach().numpy(), t.grad.numpy(), type(y.grad_fn).__name__))
        np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-12, atol=1e-12)
        assert outs[0][2] == outs[1][2]


def test_embedding_bag_module_and_from_pretrained():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (rustgrad, torch):
        lib.manual_seed(3)
        bag = lib.nn.EmbeddingBag(10, 4, mode="sum", padding_idx=0)
        out = bag(lib.tensor([1, 0, 3, 9, 3]), lib.tensor([0, 2]), per_sample_weights=lib.tensor([1.0, 2, 3, 4, 5]))
        out.sum().backward()
        pre = lib.nn.EmbeddingBag.from_pretrained(bag.weight.detach() * 2, mode="max")
        results.append((out.detach().numpy(), bag.weight.grad.numpy(), pre.weight.requires_grad, repr(pre),
                        pre(lib.tensor([[1, 2], [3, 3]])).detach().numpy()))
    for a, b in zip(*results):
        if isinstance(a, np.ndarray):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        else:
            assert a == b


def test_loss_modules_match_their_functions():
    x = rustgrad.tensor(spread(3, 4), requires_grad=True)
    y = rustgrad.tensor([0, 3, 1])
    m = rustgrad.nn.MultiMarginLoss(p=2, weight=rustgrad.tensor([1.0, 2, 3, 4], dtype=rustgrad.float64),
                                    reduction="sum")
    assert rustgrad.equal(m(x, y), F(rustgrad).multi_margin_loss(x, y, 2, weight=m.weight, reduction="sum"))
    assert rustgrad.equal(rustgrad.nn.MultiLabelMarginLoss()(x, rustgrad.tensor(LABELS)),
                          F(rustgrad).multilabel_margin_loss(x, rustgrad.tensor(LABELS)))
    sign = rustgrad.tensor(np.sign(normal(3, 4)))
    loss = rustgrad.nn.SoftMarginLoss(reduction="none")(x, sign)
    assert grad_fn_name(loss) == "SoftMarginLossBackward0" and tuple(loss.shape) == (3, 4)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        assert rustgrad.nn.SoftMarginLoss(size_average=False).reduction == "sum"


# ----------------------------------------------------------------------------- bad input

x4 = normal(1, 2, 3, 3)
ERRORS = [
    ("interp_size_0", lambda L: F(L).interpolate(L.tensor(x4), size=0), RuntimeError,
     "Input and output sizes should be greater than 0, but got input (H: 3, W: 3) output (H: 0, W: 0)"),
    ("interp_size_0_1d", lambda L: F(L).interpolate(L.zeros(1, 1, 2), size=0, mode="linear"), RuntimeError,
     "Input and output sizes should be greater than 0, but got input (W: 2) and output (W: 0)"),
    ("interp_scale_negative", lambda L: F(L).interpolate(L.zeros(1, 1, 2, 2, 2), scale_factor=-2), RuntimeError,
     "Input and output sizes should be greater than 0, but got input (D: 2, H: 2, W: 2) output (D: -4, H: -4, W: -4)"),
    ("interp_size_len", lambda L: F(L).interpolate(L.tensor(x4), size=(2,)), ValueError,
     ("Input and output must have the same number of spatial dimensions, but got input with spatial dimensions of "
     "[3, 3] and output size of (2,). Please provide input tensor in (N, C, d1, d2, ...,dK) format and output size "
     "in (o1, o2, ...,oK) format.")),
    ("interp_size_float", lambda L: F(L).interpolate(L.tensor(x4), size=(2.0, 3)), TypeError,
     ("expected size to be one of int or Tuple[int] or Tuple[int, int] or Tuple[int, int, int], but got size with "
     "types [<class 'float'>, <class 'int'>]")),
    ("interp_size_float_scalar", lambda L: F(L).interpolate(L.tensor(x4), size=2.0, mode="bilinear"), TypeError,
     ("upsample_bilinear2d() received an invalid combination of arguments - got (Tensor, list, bool, NoneType), but "
     "expected one of:\n * (Tensor input, tuple of ints output_size, bool align_corners, tuple of floats "
     "scale_factors)\n      didn't match because some of the arguments have invalid types: (Tensor, !list of "
     "[float, float]!, bool, !NoneType!)\n * (Tensor input, tuple of ints output_size, bool align_corners, float "
     "scales_h = None, float scales_w = None, *, Tensor out = None)\n")),
    ("interp_scale_len", lambda L: F(L).interpolate(L.tensor(x4), scale_factor=(2, 2, 2)), ValueError,
     ("Input and scale_factor must have the same number of spatial dimensions, but got input with spatial dimensions "
     "of [3, 3] and scale_factor of shape (2, 2, 2). Please provide input tensor in (N, C, d1, d2, ...,dK) format "
     "and scale_factor in (s1, s2, ...,sK) format.")),
    ("interp_both", lambda L: F(L).interpolate(L.tensor(x4), size=2, scale_factor=2), ValueError,
     "only one of size or scale_factor should be defined"),
    ("interp_neither", lambda L: F(L).interpolate(L.tensor(x4)), ValueError,
     "either size or scale_factor should be defined"),
    ("interp_align_nearest", lambda L: F(L).interpolate(L.tensor(x4), size=2, align_corners=False), ValueError,
     "align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear"),
    ("interp_recompute_size", lambda L: F(L).interpolate(L.tensor(x4), size=2, recompute_scale_factor=True),
     ValueError, "recompute_scale_factor is not meaningful with an explicit size."),
    ("interp_antialias_nearest", lambda L: F(L).interpolate(L.tensor(x4), size=2, antialias=True), ValueError,
     "Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and requires a 4-D tensor as input"),
    ("interp_bad_mode", lambda L: F(L).interpolate(L.tensor(x4), size=2, mode="foo"), NotImplementedError,
     ("Input Error: Only 3D, 4D and 5D input Tensors supported (got 4D) for the modes: nearest | linear | bilinear | "
     "bicubic | trilinear | lanczos | area | nearest-exact (got foo)")),
    ("interp_linear_4d", lambda L: F(L).interpolate(L.tensor(x4), size=2, mode="linear"), NotImplementedError,
     "Got 4D input, but linear mode needs 3D input"),
    ("interp_empty_channels", lambda L: F(L).interpolate(L.zeros(1, 0, 3, 3), size=2), RuntimeError,
     "Non-empty 4D data tensor expected but got a tensor with sizes [1, 0, 3, 3]"),
    ("interp_long", lambda L: F(L).interpolate(L.zeros(1, 1, 2, dtype=L.int64), size=3), NotImplementedError,
     "\"compute_indices_weights_nearest\" not implemented for 'Long'"),
    ("interp_long_bilinear", lambda L: F(L).interpolate(L.zeros(1, 1, 2, 2, dtype=L.int64), size=3, mode="bilinear"),
     NotImplementedError, "\"upsample_bilinear2d_channels_last\" not implemented for 'Long'"),
    ("interp_not_tensor", lambda L: F(L).interpolate([1.0], size=2), AttributeError,
     "'list' object has no attribute 'dim'"),
    ("pixel_shuffle_2d", lambda L: F(L).pixel_shuffle(L.zeros(4, 2), 2), RuntimeError,
     "pixel_shuffle expects input to have at least 3 dimensions, but got input with 2 dimension(s)"),
    ("pixel_shuffle_factor", lambda L: F(L).pixel_shuffle(L.zeros(1, 4, 2, 2), 0), RuntimeError,
     "pixel_shuffle expects a positive upscale_factor, but got 0"),
    ("pixel_shuffle_channels", lambda L: F(L).pixel_shuffle(L.zeros(1, 3, 2, 2), 2), RuntimeError,
     ("pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of upscale_factor, but "
     "input.size(-3)=3 is not divisible by 4")),
    ("pixel_shuffle_float", lambda L: F(L).pixel_shuffle(L.zeros(1, 4, 2, 2), 2.0), TypeError,
     "pixel_shuffle(): argument 'upscale_factor' (position 2) must be int, not float"),
    ("pixel_unshuffle_width", lambda L: F(L).pixel_unshuffle(L.zeros(1, 4, 3), 2), RuntimeError,
     "pixel_unshuffle expects width to be divisible by downscale_factor, but input.size(-1)=3 is not divisible by 2"),
    ("channel_shuffle_dims", lambda L: F(L).channel_shuffle(L.zeros(4, 2), 2), RuntimeError,
     "channel_shuffle expects input with > 2 dims, but got input with sizes [4, 2]"),
    ("channel_shuffle_groups", lambda L: F(L).channel_shuffle(L.zeros(1, 5, 2), 2), RuntimeError,
     "Number of channels must be divisible by groups. Got 5 channels and 2 groups."),
    ("channel_shuffle_zero", lambda L: F(L).channel_shuffle(L.zeros(1, 4, 2), 0), RuntimeError,
     "Number of groups to divide channels in must be positive. Value of groups:0"),
    ("glu_scalar", lambda L: F(L).glu(L.tensor(1.0)), RuntimeError,
     "glu does not support scalars because halving size must be even"),
    ("glu_odd", lambda L: F(L).glu(L.zeros(3, 5)), RuntimeError,
     "Halving dimension must be even, but dimension 1 is size 5"),
    ("glu_dim", lambda L: F(L).glu(L.zeros(3, 4), 2), IndexError,
     "Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    ("glu_long", lambda L: F(L).glu(L.zeros(4, dtype=L.int64)), NotImplementedError,
     "\"glu_cpu\" not implemented for 'Long'"),
    ("prelu_channels", lambda L: F(L).prelu(L.zeros(2, 3), L.ones(2)), RuntimeError,
     "Mismatch of parameter numbers and input channel size. Found parameter numbers = 2 and channel size = 3."),
    ("prelu_weight_2d", lambda L: F(L).prelu(L.zeros(2, 3), L.ones(3, 1)), RuntimeError,
     "prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = 2"),
    ("prelu_scalar_input", lambda L: F(L).prelu(L.tensor(1.0), L.ones(3)), RuntimeError,
     "Not allow zero-dim input tensor."),
    ("prelu_dtypes", lambda L: F(L).prelu(L.zeros(3), L.ones(1, dtype=L.float64)), RuntimeError,
     "prelu: Type promoting not supported. Got Float and Double"),
    ("prelu_weight_float", lambda L: F(L).prelu(L.zeros(3), 0.25), TypeError,
     "prelu(): argument 'weight' (position 2) must be Tensor, not float"),
    ("rrelu_bounds", lambda L: F(L).rrelu(L.zeros(3), 0.5, 0.2, True), RuntimeError,
     "Lower bound should be less than or equal to the upper bound"),
    ("rrelu_long", lambda L: F(L).rrelu(L.zeros(3, dtype=L.int64), training=True), NotImplementedError,
     "\"rrelu_with_noise_out_cpu\" not implemented for 'Long'"),
    ("rrelu_training_int", lambda L: F(L).rrelu(L.zeros(3), training=1), TypeError,
     "rrelu(): argument 'training' (position 4) must be bool, not int"),
    ("softmax2d_dims", lambda L: L.nn.Softmax2d()(L.zeros(3, 4)), ValueError,
     "Softmax2d: expected input to be 3D or 4D, got 2D instead"),
    ("bag_offsets_2d_input", lambda L: F(L).embedding_bag(L.tensor([[1, 2]]), L.zeros(4, 2), L.tensor([0])),
     ValueError, ("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of fixed length "
     "sequences. However, found offsets of type <class 'torch.Tensor'>")),
    ("bag_no_offsets", lambda L: F(L).embedding_bag(L.tensor([1, 2]), L.zeros(4, 2)), ValueError,
     "offsets has to be a 1D Tensor but got None"),
    ("bag_3d", lambda L: F(L).embedding_bag(L.zeros(1, 1, 1, dtype=L.int64), L.zeros(4, 2)), ValueError,
     "input has to be 1D or 2D Tensor, but got Tensor of dimension 3"),
    ("bag_weight_1d", lambda L: F(L).embedding_bag(L.tensor([1]), L.zeros(4), L.tensor([0])), ValueError,
     "weight has to be a 2D Tensor, but got Tensor of dimension 1"),
    ("bag_mode", lambda L: F(L).embedding_bag(L.tensor([1]), L.zeros(4, 2), L.tensor([0]), mode="min"), ValueError,
     "mode has to be one of sum, mean or max"),
    ("bag_psw_mean", lambda L: F(L).embedding_bag(L.tensor([1]), L.zeros(4, 2), L.tensor([0]),
     per_sample_weights=L.ones(1)), NotImplementedError, ("embedding_bag: per_sample_weights was not None. "
     "per_sample_weights is only supported for mode='sum' (got mode='mean'). Please open a feature request on GitHub.")),
    ("bag_psw_shape", lambda L: F(L).embedding_bag(L.tensor([1, 2]), L.zeros(4, 2), L.tensor([0]), mode="sum",
     per_sample_weights=L.ones(3)), ValueError, ("embedding_bag: If per_sample_weights (torch.Size([3])) is not None, "
     "then it must have the same shape as the input (torch.Size([2]))")),
    ("bag_max_freq", lambda L: F(L).embedding_bag(L.tensor([1]), L.zeros(4, 2), L.tensor([0]), mode="max",
     scale_grad_by_freq=True), ValueError, "max mode does not support scaling the gradient by the frequency"),
    ("bag_first_offset", lambda L: F(L).embedding_bag(L.tensor([1, 2]), L.zeros(4, 2), L.tensor([1])), RuntimeError,
     ("offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from position 0. However, "
     "got 1\n[ torch.LongTensor{} ]")),
    ("bag_last_offset", lambda L: F(L).embedding_bag(L.tensor([1, 2]), L.zeros(4, 2), L.tensor([0, 3])),
     RuntimeError, "offsets[-1] can not be greater than input's length 2 but got offsets[-1] of 3"),
    ("bag_index_range", lambda L: F(L).embedding_bag(L.tensor([1, 4]), L.zeros(4, 2), L.tensor([0])), RuntimeError,
     "Index 1 of input takes value 4 which is not in the valid range [0, 4)"),
    ("bag_index_float", lambda L: F(L).embedding_bag(L.tensor([1.0]), L.zeros(4, 2), L.tensor([0])), RuntimeError,
     ("Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got "
     "torch.FloatTensor instead (while checking arguments for embedding_bag)")),
    ("bag_weight_long", lambda L: F(L).embedding_bag(L.tensor([1]), L.zeros(4, 2, dtype=L.int64), L.tensor([0])),
     RuntimeError, ("Expected tensor for argument #1 'weight' to have one of the following scalar types: Half, "
     "BFloat16, Float, Double; but got torch.LongTensor instead (while checking arguments for embedding_bag)")),
    ("bag_padding_idx", lambda L: F(L).embedding_bag(L.tensor([1]), L.zeros(4, 2), L.tensor([0]), padding_idx=4),
     RuntimeError, "padding_idx must be within the number of embeddings, -4 through 3, but got 4"),
    ("bag_module_padding", lambda L: L.nn.EmbeddingBag(4, 2, padding_idx=4), AssertionError,
     "padding_idx must be within num_embeddings"),
    ("bag_pretrained_1d", lambda L: L.nn.EmbeddingBag.from_pretrained(L.zeros(4)), AssertionError,
     "Embeddings parameter is expected to be 2-dimensional"),
    ("soft_margin_broadcast", lambda L: F(L).soft_margin_loss(L.zeros(4), L.ones(3, 4)), RuntimeError,
     "output with shape [4] doesn't match the broadcast shape [3, 4]"),
    ("soft_margin_reduction", lambda L: F(L).soft_margin_loss(L.zeros(4), L.ones(4), reduction="foo"), ValueError,
     "foo is not a valid value for reduction"),
    ("soft_margin_target_grad", lambda L: F(L).soft_margin_loss(L.zeros(4), L.ones(4, requires_grad=True)),
     RuntimeError, ("The function 'soft_margin_loss' is not differentiable with respect to argument 'target'. This "
     "input cannot have requires_grad True.")),
    ("multi_margin_p", lambda L: F(L).multi_margin_loss(L.zeros(3, 4), L.tensor([0, 1, 2]), p=3), ValueError,
     "only p == 1 and p == 2 supported"),
    ("multi_margin_target_size", lambda L: F(L).multi_margin_loss(L.zeros(3, 4), L.tensor([0, 1])), RuntimeError,
     ("multi_margin_loss: target tensor should be 1-D with size equal to the number of input samples (batch size). "
     "Expected target size [3], but got [2]. Input has shape [3, 4].")),
    ("multi_margin_weight_size", lambda L: F(L).multi_margin_loss(L.zeros(3, 4), L.tensor([0, 1, 2]),
     weight=L.ones(3)), RuntimeError, "inconsistent weight size, expected 4 but got [3]"),
    ("multi_margin_target_range", lambda L: F(L).multi_margin_loss(L.zeros(3, 4), L.tensor([0, 1, 4])), RuntimeError,
     "target out of range"),
    ("multi_margin_3d", lambda L: F(L).multi_margin_loss(L.zeros(2, 3, 4), L.tensor([0, 1])), RuntimeError,
     "Expected non-empty vector or matrix with optional 0-dim batch size, but got: [2, 3, 4]"),
    ("multi_margin_target_float", lambda L: F(L).multi_margin_loss(L.zeros(3, 4), L.zeros(3)), RuntimeError,
     "expected scalar type Long but found Float"),
    ("multi_margin_module_weight", lambda L: L.nn.MultiMarginLoss(weight=L.ones(3, 1)), ValueError,
     "MultiMarginLoss: expected weight to be None or 1D tensor, got 2D instead"),
    ("multilabel_target_size", lambda L: F(L).multilabel_margin_loss(L.zeros(3, 4), L.zeros(2, 4, dtype=L.int64)),
     RuntimeError, "inconsistent target size: [2, 4] for input of size: [3, 4]"),
    ("multilabel_target_range", lambda L: F(L).multilabel_margin_loss(L.zeros(3, 4),
     L.full((3, 4), -2, dtype=L.int64)), RuntimeError, "argument #2 'target' is out of range"),
    ("multilabel_long_input", lambda L: F(L).multilabel_margin_loss(L.zeros(3, 4, dtype=L.int64),
     L.zeros(3, 4, dtype=L.int64)), NotImplementedError,
     "\"multilabel_margin_loss_forward_out_frame\" not implemented for 'Long'"),
]


@pytest.mark.parametrize(("name", "call", "exc", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_raises_pytorchs_error(name, call, exc, message):
    with pytest.raises(exc) as info:
        call(rustgrad)
    assert str(info.value) == message


@pytest.mark.parametrize(("name", "call", "exc", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_pytorch_raises_the_same_error(name, call, exc, message):
    torch = pytest.importorskip("torch")
    with pytest.raises(exc) as info:
        call(torch)
    assert str(info.value) == message
