"""The layers of real models (issue 13): convolutions, sliding windows, pooling, normalization,
embeddings, padding, the scalar-parameter activations and the robust regression losses.

An op table: each row's forward is checked against an independent numpy loop (or closed form),
then ``gradcheck`` and ``gradgradcheck`` in float64, PyTorch's ``grad_fn`` name, and, when
PyTorch is installed, the same call under both (values, gradients, ``grad_fn``). Then the
modules: seeded construction gives PyTorch's exact parameters, ``repr``s and ``state_dict``
keys, a seeded LeNet gives PyTorch's first-step loss, and bad input raises PyTorch's errors.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, NamedTuple

import numpy as np
import pytest
import rustgrad
from gradcheck import gradcheck, gradgradcheck
from op_rows import as_tuple, grad_fn_name, leaves

# ----------------------------------------------------------------------------- numpy oracles


def np_conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Direct sum over window taps: out[n, o, p] = sum_{c, t} w[o, c, t] x[n, g*C + c, p*s + t*d - pad]."""
    dims = x.ndim - 2
    st, pd, dl = ([v] * dims if isinstance(v, int) else list(v) for v in (stride, padding, dilation))
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pd])
    cout, cin_g = w.shape[0], w.shape[1]
    k = w.shape[2:]
    out_sp = [(xp.shape[2 + i] - dl[i] * (k[i] - 1) - 1) // st[i] + 1 for i in range(dims)]
    out = np.zeros((x.shape[0], cout, *out_sp))
    cout_g = cout // groups
    for o in range(cout):
        g = o // cout_g
        for pos in itertools.product(*[range(n) for n in out_sp]):
            for tap in itertools.product(*[range(n) for n in k]):
                idx = tuple(pos[i] * st[i] + tap[i] * dl[i] for i in range(dims))
                patch = xp[(slice(None), slice(g * cin_g, (g + 1) * cin_g)) + idx]
                out[(slice(None), o) + pos] += patch @ w[(o, slice(None)) + tap]
    if b is not None:
        out += b.reshape((1, -1) + (1,) * dims)
    return out


def np_conv_transpose(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Scatter form: each input value adds w[c, o, t] at output position p*s + t*d - pad."""
    dims = x.ndim - 2
    st, pd, op, dl = ([v] * dims if isinstance(v, int) else list(v) for v in (stride, padding, output_padding, dilation))
    cin, cout_g = w.shape[0], w.shape[1]
    k = w.shape[2:]
    cin_g = cin // groups
    full = [(x.shape[2 + i] - 1) * st[i] + dl[i] * (k[i] - 1) + 1 + op[i] for i in range(dims)]
    out = np.zeros((x.shape[0], cout_g * groups, *full))
    for c in range(cin):
        g = c // cin_g
        for pos in itertools.product(*[range(n) for n in x.shape[2:]]):
            for tap in itertools.product(*[range(n) for n in k]):
                idx = tuple(pos[i] * st[i] + tap[i] * dl[i] for i in range(dims))
                out[(slice(None), slice(g * cout_g, (g + 1) * cout_g)) + idx] += (
                    x[(slice(None), c) + pos][:, None] * w[(c, slice(None)) + tap][None, :]
                )
    crop = tuple(slice(pd[i], full[i] - pd[i]) for i in range(dims))
    out = out[(slice(None), slice(None)) + crop]
    if b is not None:
        out += b.reshape((1, -1) + (1,) * dims)
    return out


def np_unfold(x, k, padding=0, stride=1):
    n, c, _h, _w = x.shape
    xp = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    oh, ow = (xp.shape[2] - k[0]) // stride + 1, (xp.shape[3] - k[1]) // stride + 1
    cols = np.zeros((n, c * k[0] * k[1], oh * ow))
    for ci, a, bb in itertools.product(range(c), range(k[0]), range(k[1])):
        row = (ci * k[0] + a) * k[1] + bb
        cols[:, row] = xp[:, ci, a : a + stride * oh : stride, bb : bb + stride * ow : stride].reshape(n, -1)
    return cols


def np_pool(x, k, stride, padding, reduce, ceil_mode=False, count_include_pad=True, dilation=1):
    n, c, h, w = x.shape
    sizes = []
    for size in (h, w):
        o = (size + 2 * padding - dilation * (k - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
        if ceil_mode and (o - 1) * stride >= size + padding:
            o -= 1
        sizes.append(o)
    out = np.zeros((n, c, *sizes))
    for i, j in itertools.product(range(sizes[0]), range(sizes[1])):
        rows = [i * stride - padding + t * dilation for t in range(k)]
        cols = [j * stride - padding + t * dilation for t in range(k)]
        vr = [r for r in rows if 0 <= r < h]
        vc = [q for q in cols if 0 <= q < w]
        window = x[:, :, vr][:, :, :, vc].reshape(n, c, -1)
        if reduce == "max":
            out[:, :, i, j] = window.max(-1)
        else:
            hs, ws = i * stride - padding, j * stride - padding
            full = (min(hs + k, h + padding) - hs) * (min(ws + k, w + padding) - ws)
            out[:, :, i, j] = window.sum(-1) / (full if count_include_pad else window.shape[-1])
    return out


def np_adaptive(x, out, reduce):
    n, c, h, w = x.shape
    res = np.zeros((n, c, out[0], out[1]))
    for i, j in itertools.product(range(out[0]), range(out[1])):
        r0, r1 = (i * h) // out[0], -(-((i + 1) * h) // out[0])
        c0, c1 = (j * w) // out[1], -(-((j + 1) * w) // out[1])
        win = x[:, :, r0:r1, c0:c1].reshape(n, c, -1)
        res[:, :, i, j] = win.max(-1) if reduce == "max" else win.mean(-1)
    return res


def np_norm(x, axes, eps=1e-5):
    m = x.mean(axes, keepdims=True)
    v = x.var(axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps)


def np_group_norm(x, groups, w, b, eps=1e-5):
    n = x.shape[0]
    xg = x.reshape(n, groups, -1)
    out = np_norm(xg, (2,), eps).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return out * w.reshape(shape) + b.reshape(shape)


def np_lrn(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Each value over ``(k + alpha * mean of the squares of its size-channel window)**beta``."""
    sq = np.pad(x**2, [(0, 0), (size // 2, (size - 1) // 2)] + [(0, 0)] * (x.ndim - 2))
    windows = np.stack([sq[:, c : c + size].mean(1) for c in range(x.shape[1])], 1)
    return x / (windows * alpha + k) ** beta


def np_block(x, k, reduce):
    """Non-overlapping k-blocks over the spatial dims (stride = kernel)."""
    n, c, *sp = x.shape
    shape = [n, c]
    for s in sp:
        shape += [s // k, k]
    axes = tuple(3 + 2 * i for i in range(len(sp)))
    blocks = x.reshape(shape)
    return blocks.max(axes) if reduce == "max" else blocks.mean(axes)


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def softplus(a):
    return np.log1p(np.exp(-np.abs(a))) + np.maximum(a, 0)


SELU_A, SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


# ----------------------------------------------------------------------------- the table


class Row(NamedTuple):
    name: str
    fn: Callable  # fn(torch-like library, *tensors)
    ref: Callable  # ref(*arrays) -> array
    inputs: list  # arrays (float64)
    grad_fn: str | None
    gradgrad: bool = True


def normal(*shape, seed=0, scale=1.0):
    """Standard normal values (spread so that no two are close: pooling ties stay away)."""
    rng = np.random.default_rng(seed + 7 * len(shape) + sum(shape))
    return rng.standard_normal(shape) * scale


def spread(*shape, seed=0):
    """A permutation of well separated values (max pooling's argmax is stable under eps)."""
    rng = np.random.default_rng(seed + sum(shape))
    n = int(np.prod(shape))
    return (rng.permutation(n) / n * 4.0 - 2.0).reshape(shape)


def F(lib):
    return lib.nn.functional


ROWS = [
    Row("conv1d", lambda L, x, w, b: F(L).conv1d(x, w, b, stride=2, padding=1), lambda x, w, b: np_conv(x, w, b, 2, 1),
        [normal(2, 3, 7), normal(4, 3, 3), normal(4)], "ConvolutionBackward0"),
    Row("conv2d", lambda L, x, w, b: F(L).conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2)),
        lambda x, w, b: np_conv(x, w, b, (2, 1), 1, (1, 2)), [normal(2, 3, 5, 6), normal(4, 3, 3, 2), normal(4)],
        "ConvolutionBackward0"),
    Row("conv2d_groups", lambda L, x, w: F(L).conv2d(x, w, groups=2), lambda x, w: np_conv(x, w, groups=2),
        [normal(1, 4, 4, 4), normal(6, 2, 2, 3)], "ConvolutionBackward0"),
    Row("conv2d_same", lambda L, x, w: F(L).conv2d(x, w, padding="same"), lambda x, w: np_conv(x, w, padding=1),
        [normal(1, 2, 4, 5), normal(3, 2, 3, 3)], "ConvolutionBackward0"),
    Row("conv2d_1x1", lambda L, x, w: F(L).conv2d(x, w), lambda x, w: np_conv(x, w),
        [normal(2, 3, 3, 4), normal(5, 3, 1, 1)], "ConvolutionBackward0"),
    Row("conv2d_unbatched", lambda L, x, w: F(L).conv2d(x, w), lambda x, w: np_conv(x[None], w)[0],
        [normal(2, 4, 4), normal(3, 2, 2, 2)], "SqueezeBackward1"),
    Row("conv3d", lambda L, x, w: F(L).conv3d(x, w, padding=1), lambda x, w: np_conv(x, w, padding=1),
        [normal(1, 2, 3, 3, 4), normal(2, 2, 2, 2, 3)], "ConvolutionBackward0"),
    Row("conv_transpose1d", lambda L, x, w, b: F(L).conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1),
        lambda x, w, b: np_conv_transpose(x, w, b, 2, 1, 1), [normal(2, 3, 4), normal(3, 2, 3), normal(2)],
        "ConvolutionBackward0"),
    Row("conv_transpose2d", lambda L, x, w: F(L).conv_transpose2d(x, w, stride=2, groups=2, dilation=(1, 2)),
        lambda x, w: np_conv_transpose(x, w, stride=2, groups=2, dilation=(1, 2)),
        [normal(1, 4, 3, 3), normal(4, 1, 2, 2)], "ConvolutionBackward0"),
    Row("unfold", lambda L, x: F(L).unfold(x, (2, 3), padding=1, stride=2), lambda x: np_unfold(x, (2, 3), 1, 2),
        [normal(2, 2, 4, 5)], "Im2ColBackward0"),
    Row("fold", lambda L, c: F(L).fold(c, (3, 4), (2, 2)),
        lambda c: np.einsum("ncl,ncl->n", c, c)[:, None, None, None] * 0 + _np_fold(c, (3, 4), (2, 2)),
        [normal(2, 8, 6)], "Col2ImBackward0"),
    Row("max_pool2d", lambda L, x: F(L).max_pool2d(x, 3, 2, 1, ceil_mode=True),
        lambda x: np_pool(x, 3, 2, 1, "max", ceil_mode=True), [spread(2, 2, 5, 6)], "MaxPool2DWithIndicesBackward0"),
    Row("max_pool2d_dilation", lambda L, x: F(L).max_pool2d(x, 2, 1, dilation=2),
        lambda x: np_pool(x, 2, 1, 0, "max", dilation=2), [spread(1, 2, 5, 5)], "MaxPool2DWithIndicesBackward0"),
    Row("max_pool1d", lambda L, x: F(L).max_pool1d(x, 2), lambda x: np_pool(x[:, :, None], 2, 2, 0, "max")[:, :, 0]
        if False else x.reshape(2, 3, 3, 2).max(-1), [spread(2, 3, 6)], "SqueezeBackward1"),
    Row("avg_pool2d", lambda L, x: F(L).avg_pool2d(x, 3, 2, 1, ceil_mode=True),
        lambda x: np_pool(x, 3, 2, 1, "avg", ceil_mode=True), [normal(2, 2, 5, 6)], "AvgPool2DBackward0"),
    Row("avg_pool2d_exclude_pad", lambda L, x: F(L).avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        lambda x: np_pool(x, 3, 2, 1, "avg", count_include_pad=False), [normal(1, 2, 5, 5)], "AvgPool2DBackward0"),
    Row("adaptive_avg_pool2d", lambda L, x: F(L).adaptive_avg_pool2d(x, (3, 2)), lambda x: np_adaptive(x, (3, 2), "avg"),
        [normal(2, 2, 5, 7)], "AdaptiveAvgPool2DBackward0"),
    Row("adaptive_max_pool2d", lambda L, x: F(L).adaptive_max_pool2d(x, (2, 3)), lambda x: np_adaptive(x, (2, 3), "max"),
        [spread(1, 2, 5, 7)], "AdaptiveMaxPool2DBackward0"),
    Row("batch_norm", lambda L, x, w, b: F(L).batch_norm(x, None, None, w, b, training=True),
        lambda x, w, b: np_norm(x, (0, 2, 3)) * w.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1),
        [normal(3, 2, 2, 3), normal(2), normal(2)], "NativeBatchNormBackward0"),
    Row("batch_norm_eval", lambda L, x, w: F(L).batch_norm(x, L.zeros(3, dtype=x.dtype) + 0.5,
        L.ones(3, dtype=x.dtype) * 2, w, None, training=False),
        lambda x, w: (x - 0.5) / np.sqrt(2 + 1e-5) * w, [normal(4, 3), normal(3)], "NativeBatchNormBackward0"),
    Row("layer_norm", lambda L, x, w, b: F(L).layer_norm(x, (3, 4), w, b),
        lambda x, w, b: np_norm(x, (1, 2)) * w + b, [normal(2, 3, 4), normal(3, 4), normal(3, 4)],
        "NativeLayerNormBackward0"),
    Row("group_norm", lambda L, x, w, b: F(L).group_norm(x, 2, w, b), lambda x, w, b: np_group_norm(x, 2, w, b),
        [normal(2, 4, 3), normal(4), normal(4)], "NativeGroupNormBackward0"),
    Row("embedding", lambda L, w: F(L).embedding(L.tensor([[0, 2, 1], [2, 2, 3]]), w),
        lambda w: w[np.array([[0, 2, 1], [2, 2, 3]])], [normal(4, 3)], "EmbeddingBackward0"),
    Row("pad_constant", lambda L, x: F(L).pad(x, (1, 2, -1, 1), value=0.5),
        lambda x: np.pad(x[1:], [(0, 1), (1, 2)], constant_values=0.5), [normal(3, 4)],
        "ConstantPadNdBackward0"),
    Row("pad_reflect", lambda L, x: F(L).pad(x, (1, 2, 2, 1), mode="reflect"),
        lambda x: np.pad(x, [(0, 0), (0, 0), (2, 1), (1, 2)], mode="reflect"), [normal(1, 2, 3, 4)],
        "ReflectionPad2DBackward0"),
    Row("pad_replicate", lambda L, x: F(L).pad(x, (2, 1), mode="replicate"),
        lambda x: np.pad(x, [(0, 0), (0, 0), (2, 1)], mode="edge"), [normal(2, 3, 4)], "ReplicationPad1DBackward0"),
    Row("pad_circular", lambda L, x: F(L).pad(x, (1, 1, 1, 2, 0, 1), mode="circular"),
        lambda x: np.pad(x, [(0, 0), (0, 0), (0, 1), (1, 2), (1, 1)], mode="wrap"), [normal(1, 1, 2, 3, 4)],
        "CopySlices"),
    Row("conv2d_reflect_module", lambda L, x, w: F(L).conv2d(F(L).pad(x, (1, 1, 1, 1), mode="reflect"), w),
        lambda x, w: np_conv(np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)], mode="reflect"), w),
        [normal(1, 2, 4, 4), normal(3, 2, 3, 3)], "ConvolutionBackward0"),
    Row("instance_norm", lambda L, x: F(L).instance_norm(x), lambda x: np_norm(x, (2, 3)), [normal(2, 3, 2, 3)],
        "ViewBackward0"),
    Row("rms_norm", lambda L, x, w: F(L).rms_norm(x, (4,), w, eps=1e-6),
        lambda x, w: x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-6) * w, [normal(3, 4), normal(4)], "MulBackward0"),
    Row("local_response_norm", lambda L, x: F(L).local_response_norm(x, 3, alpha=0.5, k=2.0),
        lambda x: np_lrn(x, 3, alpha=0.5, k=2.0), [normal(2, 4, 5)], "DivBackward0"),
    Row("local_response_norm_4d", lambda L, x: F(L).local_response_norm(x, 2, alpha=0.3),
        lambda x: np_lrn(x, 2, alpha=0.3), [normal(1, 3, 2, 3)], "DivBackward0"),
    Row("max_pool3d", lambda L, x: F(L).max_pool3d(x, 2), lambda x: np_block(x, 2, "max"), [spread(1, 2, 4, 2, 4)],
        "MaxPool3DWithIndicesBackward0"),
    Row("avg_pool3d", lambda L, x: F(L).avg_pool3d(x, 2), lambda x: np_block(x, 2, "avg"), [normal(1, 2, 2, 4, 4)],
        "AvgPool3DBackward0"),
    Row("avg_pool1d", lambda L, x: F(L).avg_pool1d(x, 2), lambda x: np_block(x, 2, "avg"), [normal(2, 3, 6)],
        "SqueezeBackward1"),
    Row("adaptive_avg_pool1d", lambda L, x: F(L).adaptive_avg_pool1d(x, 3),
        lambda x: np_adaptive(x[:, :, None], (1, 3), "avg")[:, :, 0], [normal(2, 2, 7)], "SqueezeBackward1"),
    Row("adaptive_max_pool1d", lambda L, x: F(L).adaptive_max_pool1d(x, 3),
        lambda x: np_adaptive(x[:, :, None], (1, 3), "max")[:, :, 0], [spread(2, 2, 7)], "SqueezeBackward1"),
    Row("max_unpool2d", lambda L, x: F(L).max_unpool2d(*F(L).max_pool2d(x, 2, return_indices=True), 2),
        lambda x: np.where(x == np.repeat(np.repeat(np_block(x, 2, "max"), 2, 2), 2, 3), x, 0.0),
        [spread(1, 2, 4, 4)], "MaxUnpool2DBackward0"),
    Row("conv_transpose3d", lambda L, x, w: F(L).conv_transpose3d(x, w, stride=(1, 2, 1), padding=1),
        lambda x, w: np_conv_transpose(x, w, stride=(1, 2, 1), padding=1), [normal(1, 2, 2, 3, 3), normal(2, 2, 2, 3, 3)],
        "ConvolutionBackward0"),
    Row("hardtanh", lambda L, x: F(L).hardtanh(x, -0.5, 1.0), lambda x: np.clip(x, -0.5, 1.0), [normal(20)],
        "HardtanhBackward0"),
    Row("relu6", lambda L, x: F(L).relu6(x * 4), lambda x: np.clip(x * 4, 0, 6), [normal(20)], "HardtanhBackward0"),
    Row("elu", lambda L, x: F(L).elu(x, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x)), [normal(20)],
        "EluBackward0"),
    Row("selu", lambda L, x: F(L).selu(x), lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x)), [normal(20)],
        "EluBackward0"),
    Row("celu", lambda L, x: F(L).celu(x, 2.0), lambda x: np.where(x > 0, x, 2.0 * np.expm1(x / 2.0)), [normal(20)],
        "CeluBackward0"),
    Row("hardswish", lambda L, x: F(L).hardswish(x * 4), lambda x: x * 4 * np.clip(x * 4 + 3, 0, 6) / 6, [normal(20)],
        "HardswishBackward0"),
    Row("hardsigmoid", lambda L, x: F(L).hardsigmoid(x * 4), lambda x: np.clip(x * 4 + 3, 0, 6) / 6, [normal(20)],
        "HardsigmoidBackward0"),
    Row("mish", lambda L, x: F(L).mish(x), lambda x: x * np.tanh(softplus(x)), [normal(20)], "MishBackward0"),
    Row("threshold", lambda L, x: F(L).threshold(x, 0.1, 2.0), lambda x: np.where(x > 0.1, x, 2.0), [normal(20)],
        "ThresholdBackward0"),
    Row("softshrink", lambda L, x: F(L).softshrink(x, 0.3),
        lambda x: np.where(x > 0.3, x - 0.3, np.where(x < -0.3, x + 0.3, 0)), [normal(20)], "SoftshrinkBackward0"),
    Row("hardshrink", lambda L, x: F(L).hardshrink(x, 0.3), lambda x: np.where(np.abs(x) > 0.3, x, 0), [normal(20)],
        "HardshrinkBackward0"),
    Row("smooth_l1_loss", lambda L, x, y: F(L).smooth_l1_loss(x, y, beta=0.5),
        lambda x, y: np.mean(np.where(np.abs(x - y) < 0.5, 0.5 * (x - y) ** 2 / 0.5, np.abs(x - y) - 0.25)),
        [normal(3, 4), normal(3, 4, seed=1)], "SmoothL1LossBackward0"),
    Row("huber_loss", lambda L, x, y: F(L).huber_loss(x, y, reduction="sum", delta=0.5),
        lambda x, y: np.sum(np.where(np.abs(x - y) < 0.5, 0.5 * (x - y) ** 2, 0.5 * (np.abs(x - y) - 0.25))),
        [normal(3, 4), normal(3, 4, seed=1)], "HuberLossBackward0"),
]


def _np_fold(c, out, k):
    """The adjoint of ``np_unfold``: column entries added back to their image positions."""
    n, ck, _ = c.shape
    ch = ck // (k[0] * k[1])
    img = np.zeros((n, ch, *out))
    oh, ow = out[0] - k[0] + 1, out[1] - k[1] + 1
    for ci, a, bb in itertools.product(range(ch), range(k[0]), range(k[1])):
        row = (ci * k[0] + a) * k[1] + bb
        img[:, ci, a : a + oh, bb : bb + ow] += c[:, row].reshape(n, oh, ow)
    return img


IDS = [r.name for r in ROWS]


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_forward_matches_numpy(row):
    xs = leaves(row.inputs)
    out = as_tuple(row.fn(rustgrad, *xs))[0]
    np.testing.assert_allclose(out.detach().numpy(), row.ref(*row.inputs), rtol=1e-10, atol=1e-12)
    assert grad_fn_name(out) == row.grad_fn


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


# ----------------------------------------------------------------------------- modules

MODULES = [
    ("Conv1d", (2, 4, 3), {"padding": "same", "bias": False, "padding_mode": "reflect"}),
    ("Conv2d", (1, 6, 5), {}),
    ("Conv2d", (4, 6, (3, 2)), {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}),
    ("Conv3d", (1, 2, 3), {}),
    ("ConvTranspose2d", (3, 2, 2), {"stride": 2}),
    ("ConvTranspose1d", (4, 2, 3), {"groups": 2, "output_padding": 1, "stride": 2}),
    ("MaxPool2d", (2,), {}),
    ("MaxPool1d", (3, 2), {}),
    ("AvgPool2d", (2,), {}),
    ("AvgPool1d", (2,), {}),
    ("AdaptiveAvgPool2d", ((1, 1),), {}),
    ("AdaptiveMaxPool2d", (2,), {}),
    ("MaxUnpool2d", (2,), {}),
    ("BatchNorm1d", (3,), {}),
    ("BatchNorm2d", (4,), {"affine": False, "track_running_stats": False}),
    ("LayerNorm", (6,), {}),
    ("LayerNorm", ([2, 3],), {"elementwise_affine": False}),
    ("GroupNorm", (2, 6), {}),
    ("RMSNorm", (6,), {}),
    ("InstanceNorm2d", (3,), {}),
    ("LocalResponseNorm", (2,), {}),
    ("Embedding", (10, 3), {"padding_idx": 0, "max_norm": 1.0}),
    ("Hardtanh", (), {"inplace": True}),
    ("ReLU6", (), {}),
    ("ELU", (), {"alpha": 0.5}),
    ("SELU", (), {}),
    ("CELU", (), {}),
    ("Hardswish", (), {}),
    ("Hardsigmoid", (), {}),
    ("Mish", (), {}),
    ("SiLU", (), {"inplace": True}),
    ("LeakyReLU", (0.2,), {"inplace": True}),
    ("Softplus", (), {}),
    ("LogSigmoid", (), {}),
    ("Threshold", (0.1, 20), {}),
    ("Softshrink", (), {}),
    ("Hardshrink", (), {}),
    ("ZeroPad2d", (1,), {}),
    ("ConstantPad1d", (2, 3.5), {}),
    ("ReflectionPad2d", (1,), {}),
    ("ReplicationPad1d", ((1, 2),), {}),
    ("CircularPad2d", (1,), {}),
    ("SmoothL1Loss", (), {"beta": 0.5}),
    ("HuberLoss", (), {"delta": 2.0}),
]


def test_module_reprs_follow_the_arguments():
    nn = rustgrad.nn
    assert repr(nn.Conv2d(1, 6, 5)) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))"
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.BatchNorm1d(3)) == (
        "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    )
    assert list(nn.BatchNorm2d(2).state_dict()) == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked"
    ]


@pytest.mark.parametrize("name,args,kwargs", MODULES, ids=[m[0] for m in MODULES])
def test_modules_match_pytorch(name, args, kwargs):
    torch = pytest.importorskip("torch")
    torch.manual_seed(5)
    rustgrad.manual_seed(5)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    ours = getattr(rustgrad.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


def test_batch_norm_updates_running_statistics_as_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((8, 3, 4)).astype(np.float32)
    ours, theirs = rustgrad.nn.BatchNorm1d(3, momentum=None), torch.nn.BatchNorm1d(3, momentum=None)
    for _ in range(3):
        ours(rustgrad.tensor(x) * 2), theirs(torch.tensor(x) * 2)
    for key in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(ours, key).numpy(), getattr(theirs, key).numpy(), rtol=1e-6)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(rustgrad.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_embedding_padding_row_gets_no_gradient():
    w = rustgrad.randn(4, 3, requires_grad=True)
    idx = rustgrad.tensor([[0, 2, 1], [2, 2, 3]])
    rustgrad.nn.functional.embedding(idx, w, padding_idx=2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.array([[1.0] * 3, [1.0] * 3, [0.0] * 3, [1.0] * 3]))
    w.grad = None
    rustgrad.nn.functional.embedding(idx, w, scale_grad_by_freq=True).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.ones((4, 3)))


def test_running_statistics_by_closed_form():
    x = np.random.default_rng(1).standard_normal((5, 2))
    rm, rv = rustgrad.zeros(2, dtype=rustgrad.float64), rustgrad.ones(2, dtype=rustgrad.float64)
    rustgrad.nn.functional.batch_norm(rustgrad.tensor(x), rm, rv, training=True, momentum=0.25)
    np.testing.assert_allclose(rm.numpy(), 0.25 * x.mean(0))
    np.testing.assert_allclose(rv.numpy(), 0.75 + 0.25 * x.var(0, ddof=1))


class LeNet:
    """LeNet-5 from the 60-minute blitz, written against a given library."""

    @staticmethod
    def build(lib):
        nn, F = lib.nn, lib.nn.functional

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 6, 5)
                self.conv2 = nn.Conv2d(6, 16, 5)
                self.bn = nn.BatchNorm2d(16)
                self.fc1 = nn.Linear(16 * 4 * 4, 120)
                self.fc2 = nn.Linear(120, 84)
                self.fc3 = nn.Linear(84, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
                x = F.max_pool2d(F.relu(self.bn(self.conv2(x))), 2)
                x = lib.flatten(x, 1)
                x = F.relu(self.fc1(x))
                x = F.relu(self.fc2(x))
                return self.fc3(x)

        return Net()


def test_seeded_lenet_starts_from_pytorchs_weights_and_loss():
    torch = pytest.importorskip("torch")
    losses = []
    for lib in (torch, rustgrad):
        lib.manual_seed(0)
        net = LeNet.build(lib)
        x = lib.randn(8, 1, 28, 28)
        target = lib.randint(0, 10, (8,))
        opt = lib.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        step_losses = []
        for _ in range(2):
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(net(x), target)
            loss.backward()
            opt.step()
            step_losses.append(loss.item())
        losses.append((step_losses, [p.detach().numpy().copy() for p in net.parameters()]))
    (t_loss, t_params), (r_loss, r_params) = losses
    assert math.isclose(r_loss[0], t_loss[0], rel_tol=1e-6)
    assert math.isclose(r_loss[1], t_loss[1], rel_tol=1e-5)
    for a, b in zip(r_params, t_params):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- errors

ERRORS = [
    ("conv2d_input_dims", lambda L: F(L).conv2d(L.randn(2, 3), L.randn(6, 3, 5, 5)), RuntimeError,
     "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [2, 3]"),
    ("conv2d_channels", lambda L: F(L).conv2d(L.randn(1, 1, 8, 8), L.randn(6, 3, 5, 5)), RuntimeError,
     ("Given groups=1, weight of size [6, 3, 5, 5], expected input[1, 1, 8, 8] to have 3 channels, but got 1 "
     "channels instead")),
    ("conv2d_kernel_too_large", lambda L: F(L).conv2d(L.randn(1, 3, 2, 2), L.randn(6, 3, 5, 5)), RuntimeError,
     ("Calculated padded input size per channel: (2 x 2). Kernel size: (5 x 5). Kernel size can't be greater than "
     "actual input size")),
    ("conv2d_bias", lambda L: F(L).conv2d(L.randn(1, 3, 8, 8), L.randn(6, 3, 3, 3), L.randn(5)), RuntimeError,
     ("Given weight of size [6, 3, 3, 3], expected bias to be 1-dimensional with 6 elements, but got bias of size "
     "[5] instead")),
    ("conv2d_stride_length", lambda L: F(L).conv2d(L.randn(1, 3, 8, 8), L.randn(6, 3, 3, 3), stride=(1, 2, 3)),
     RuntimeError, ("expected stride to be a single integer value or a list of 2 values to match the convolution "
     "dimensions, but got stride=[1, 2, 3]")),
    ("conv2d_same_strided", lambda L: F(L).conv2d(L.randn(1, 3, 8, 8), L.randn(6, 3, 3, 3), stride=2, padding="same"),
     RuntimeError, "padding='same' is not supported for strided convolutions"),
    ("conv2d_dtypes", lambda L: F(L).conv2d(L.randn(1, 3, 8, 8).double(), L.randn(6, 3, 3, 3)), RuntimeError,
     "expected scalar type Double but found Float"),
    ("conv_transpose_channels", lambda L: F(L).conv_transpose2d(L.randn(1, 3, 8, 8), L.randn(4, 3, 3, 3)),
     RuntimeError, ("Given transposed=1, weight of size [4, 3, 3, 3], expected input[1, 3, 8, 8] to have 4 channels, "
     "but got 3 channels instead")),
    ("unfold_too_small", lambda L: F(L).unfold(L.randn(1, 3, 2, 2), 3), RuntimeError,
     ("Given input with spatial size (2, 2), kernel_size=(3, 3), dilation=(1, 1), padding=(0, 0), calculated shape of "
     "the array of sliding blocks as (0, 0), but its components must be at least one.")),
    ("max_pool_too_small", lambda L: F(L).max_pool2d(L.randn(1, 3, 2, 2), 3), RuntimeError,
     "Given input size: (3x2x2). Calculated output size: (3x0x0). Output size is too small"),
    ("max_pool_pad", lambda L: F(L).max_pool2d(L.randn(1, 3, 4, 4), 2, padding=2), RuntimeError,
     "pad should be at most half of effective kernel size, but got pad=2, kernel_size=2 and dilation=1"),
    ("batch_norm_running", lambda L: F(L).batch_norm(L.randn(4, 3), L.zeros(4), L.ones(4)), RuntimeError,
     "running_mean should contain 3 elements not 4"),
    ("batch_norm_one_value", lambda L: F(L).batch_norm(L.randn(1, 3), L.zeros(3), L.ones(3), training=True),
     ValueError, "Expected more than 1 value per channel when training, got input size torch.Size([1, 3])"),
    ("layer_norm_shape", lambda L: F(L).layer_norm(L.randn(4, 3), (4,)), RuntimeError,
     "Given normalized_shape=[4], expected input with shape [*, 4], but got input of size[4, 3]"),
    ("group_norm_groups", lambda L: F(L).group_norm(L.randn(4, 6), 4), RuntimeError,
     ("Expected number of channels in input to be divisible by num_groups, but got input of shape [4, 6] and "
     "num_groups=4")),
    ("embedding_range", lambda L: F(L).embedding(L.tensor([5]), L.randn(4, 3)), IndexError, "index out of range in self"),
    ("embedding_dtype", lambda L: F(L).embedding(L.tensor([1.0]), L.randn(4, 3)), RuntimeError,
     ("Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got "
     "torch.FloatTensor instead (while checking arguments for embedding)")),
    ("batchnorm2d_dims", lambda L: L.nn.BatchNorm2d(3)(L.randn(2, 3, 4)), ValueError, "expected 4D input (got 3D input)"),
]


@pytest.mark.parametrize("name,fn,exc,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_raises_pytorchs_error(name, fn, exc, message):
    with pytest.raises(exc) as info:
        fn(rustgrad)
    assert str(info.value) == message


def test_batch_norm_error_leaves_running_statistics_unchanged():
    rm, rv = rustgrad.zeros(3), rustgrad.ones(3)
    w = rustgrad.ones(4)
    with pytest.raises(RuntimeError):
        rustgrad.nn.functional.batch_norm(rustgrad.randn(5, 3), rm, rv, w, training=True)
    assert rm.tolist() == [0.0, 0.0, 0.0] and rv.tolist() == [1.0, 1.0, 1.0]


FUSED = [r for r in ROWS if r.name in (
    "conv1d", "conv2d", "conv2d_groups", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "batch_norm", "batch_norm_eval", "layer_norm", "group_norm",
)]


@pytest.mark.parametrize("row", FUSED, ids=[r.name for r in FUSED])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_backward_equals_the_recorded_formula(row, dtype):
    """Without create_graph the fused kernels give the gradients; with it the composite formula
    is recorded instead (Note [Fused normalization kernels], Note [Fused weight gradient]): the
    two must agree."""
    xs = [rustgrad.tensor(a.astype(dtype), requires_grad=True) for a in row.inputs]
    out = as_tuple(row.fn(rustgrad, *xs))[0]
    g = rustgrad.tensor(np.random.default_rng(2).standard_normal(tuple(out.shape)).astype(dtype))
    fast = rustgrad.autograd.grad(out, xs, g, retain_graph=True)
    recorded = rustgrad.autograd.grad(out, xs, g, create_graph=True)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for a, b in zip(fast, recorded):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=tol, atol=tol)
