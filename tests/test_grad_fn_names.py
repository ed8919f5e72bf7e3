"""``grad_fn`` names of the ops that record their own node (not the composite's last op), of
views and in-place fills, and of the gradient computed with ``create_graph=True``.

The expected names are PyTorch's, hard-coded so that the test runs without torch; the last test
compares them with torch itself when it is installed.
"""

from __future__ import annotations

import pytest
import rustgrad


def _leaf(t, shape=(2, 3)):
    values = [[1.2, -0.7, 1.6], [-0.4, 1.3, 2.1]]
    x = t.tensor(values, dtype=t.float64, requires_grad=True)
    return x if shape == (2, 3) else x.reshape(shape)


def _other(t):
    return t.tensor([[0.9, 1.1, 0.5], [1.4, 0.6, 1.8]], dtype=t.float64, requires_grad=True)


def _setitem(x, key, value):
    x[key] = value
    return x


# id, f(torch module, x, y) -> tensor, grad_fn name
FORWARD = [
    ("leaky_relu", lambda t, x, y: t.nn.functional.leaky_relu(x), "LeakyReluBackward0"),
    # A dim given, even as None, is the dim-list overload (`SumBackward1`); omitted, the full one.
    ("sum()", lambda t, x, y: x.sum(), "SumBackward0"),
    ("sum(None)", lambda t, x, y: x.sum(None), "SumBackward1"),
    ("torch.sum(x, None)", lambda t, x, y: t.sum(x, None), "SumBackward1"),
    ("sum(dim=None)", lambda t, x, y: x.sum(dim=None), "SumBackward1"),
    ("sum(axis=None)", lambda t, x, y: x.sum(axis=None), "SumBackward1"),
    ("sum(None, dtype)", lambda t, x, y: x.sum(None, dtype=t.float32), "SumBackward1"),
    ("sum(dtype)", lambda t, x, y: x.sum(dtype=t.float32), "SumBackward0"),
    ("mean(None)", lambda t, x, y: x.mean(None), "MeanBackward1"),
    ("torch.mean(x, dim=None)", lambda t, x, y: t.mean(x, dim=None), "MeanBackward1"),
    ("mean()", lambda t, x, y: x.mean(), "MeanBackward0"),
    ("softplus", lambda t, x, y: t.nn.functional.softplus(x), "SoftplusBackward0"),
    ("silu", lambda t, x, y: t.nn.functional.silu(x), "SiluBackward0"),
    ("logsigmoid", lambda t, x, y: t.nn.functional.logsigmoid(x), "LogSigmoidBackward0"),
    ("relu_", lambda t, x, y: (x * 1).relu_(), "ReluBackward0"),
    ("lerp_number", lambda t, x, y: x.lerp(y, 0.3), "LerpBackward0"),
    ("lerp_tensor", lambda t, x, y: x.lerp(y, y), "LerpBackward1"),
    ("lerp_", lambda t, x, y: (x * 1).lerp_(y, 0.7), "LerpBackward0"),
    ("addcmul", lambda t, x, y: x.addcmul(y, y), "AddcmulBackward0"),
    ("addcmul_", lambda t, x, y: (x * 1).addcmul_(y, y), "AddcmulBackward0"),
    ("addcdiv", lambda t, x, y: x.addcdiv(y, y), "AddcdivBackward0"),
    ("addcdiv_", lambda t, x, y: (x * 1).addcdiv_(y, y), "AddcdivBackward0"),
    ("index_select", lambda t, x, y: x.index_select(0, t.tensor([1, 0])), "IndexSelectBackward0"),
    ("index", lambda t, x, y: x[t.tensor([1, 0])], "IndexBackward0"),
    ("scatter_src", lambda t, x, y: x.scatter(0, t.tensor([[1, 0, 1]]), y), "ScatterBackward0"),
    ("scatter_value", lambda t, x, y: x.scatter(0, t.tensor([[1, 0, 1]]), value=0.5), "ScatterBackward1"),
    ("masked_fill_number", lambda t, x, y: x.masked_fill(x > 1, 0.0), "MaskedFillBackward0"),
    ("masked_fill_tensor", lambda t, x, y: x.masked_fill(x > 1, t.tensor(0.0, dtype=t.float64)),
     "MaskedFillBackward1"),
    ("masked_fill_tensor_", lambda t, x, y: (x * 1).masked_fill_(x > 1, t.tensor(True)), "MaskedFillBackward1"),
    ("clamp_numbers", lambda t, x, y: x.clamp(0.5, 1.5), "ClampBackward1"),
    ("clamp_min", lambda t, x, y: x.clamp_min(0.5), "ClampMinBackward0"),
    ("clamp_tensor", lambda t, x, y: x.clamp(y), "ClampBackward0"),
    ("clip_tensor_max", lambda t, x, y: t.clip(x, max=y), "ClampBackward0"),
    ("matmul_2d_3d", lambda t, x, y: x @ y.t().expand(4, 3, 2), "CloneBackward0"),
    ("matmul_2d_3d_const_left", lambda t, x, y: x.detach() @ y.t().expand(4, 3, 2), "UnsafeViewBackward0"),
    ("to_copy_same_dtype", lambda t, x, y: x.to(t.float64, copy=True), "ToCopyBackward0"),
    ("fill_number", lambda t, x, y: (x * 1).fill_(0), "FillBackward2"),
    ("fill_tensor", lambda t, x, y: (x * 1).fill_(t.tensor(2.0)), "FillBackward3"),
    ("zero_", lambda t, x, y: (x * 1).zero_(), "ZeroBackward0"),
    ("setitem_whole_number", lambda t, x, y: _setitem(x * 1, (Ellipsis,), 0.5), "FillBackward2"),
    ("setitem_whole_0d_tensor", lambda t, x, y: _setitem(t.zeros(2, 3, dtype=t.float64), slice(None), y[0, 0]),
     "FillBackward3"),
    ("setitem_whole_tensor", lambda t, x, y: _setitem(t.zeros(2, 3, dtype=t.float64), Ellipsis, y),
     "CopyBackwards"),
    ("setitem_part", lambda t, x, y: _setitem(x * 1, 0, 0.5), "CopySlices"),
    ("setitem_negative_start", lambda t, x, y: _setitem(x * 1, slice(-2, None), 0.5), "CopySlices"),
    ("uniform_", lambda t, x, y: (x * 1).uniform_(), "UniformBackward0"),
    ("normal_", lambda t, x, y: (x * 1).normal_(), "NormalBackward0"),
    ("bernoulli_", lambda t, x, y: (x * 1).bernoulli_(0.5), "BernoulliBackward2"),
    ("normal_on_view", lambda t, x, y: _random_on_view(x), "CopySlices"),
    ("getitem_lone_slice", lambda t, x, y: x[:], "SliceBackward0"),
    ("getitem_lone_slice_tuple", lambda t, x, y: x[-2:2, ], "SliceBackward0"),
    ("getitem_whole_slices", lambda t, x, y: x[:, 0:3], "AliasBackward0"),
    ("getitem_ellipsis", lambda t, x, y: x[...], "AliasBackward0"),
    ("getitem_int_slice", lambda t, x, y: x[0, 1:], "SliceBackward0"),
    ("getitem_int_whole_slice", lambda t, x, y: x[0, :], "SelectBackward0"),
    ("getitem_slice_int", lambda t, x, y: x[:, 1], "SelectBackward0"),
    ("getitem_none_slice", lambda t, x, y: x[None, :, -2:10], "SliceBackward0"),
    ("getitem_empty_range", lambda t, x, y: x[0, 5:7], "SliceBackward0"),
    ("contiguous_empty", lambda t, x, y: x[:, 3:].softmax(0).contiguous(), "SoftmaxBackward0"),
    ("cross_entropy_soft", lambda t, x, y: t.nn.functional.cross_entropy(x, y.detach().softmax(1)), "DivBackward1"),
    ("cross_entropy_soft_sum", lambda t, x, y: t.nn.functional.cross_entropy(x, y.detach().softmax(1),
                                                                             reduction="sum"), "NegBackward0"),
    ("cross_entropy_soft_none", lambda t, x, y: t.nn.functional.cross_entropy(x[0], y.detach().softmax(1)[0],
                                                                              reduction="none"), "NegBackward0"),
]


def _random_on_view(x):
    base = x * 1
    base[0].normal_()
    return base


def _name(fn):
    if fn is None:
        return None
    name = fn.name() if hasattr(fn, "name") else type(fn).__name__
    return name.replace("torch::autograd::", "")


@pytest.mark.parametrize("case", FORWARD, ids=[c[0] for c in FORWARD])
def test_forward_node_names(case):
    _, f, expected = case
    out = f(rustgrad, _leaf(rustgrad), _other(rustgrad))
    assert _name(out.grad_fn) == expected


# id, f(torch module, x) -> tensor whose create_graph gradient w.r.t. x is checked, its grad_fn
GRADGRAD = [
    ("tanh", lambda t, x: x.tanh(), "TanhBackwardBackward0"),
    ("sigmoid", lambda t, x: x.sigmoid(), "SigmoidBackwardBackward0"),
    ("relu", lambda t, x: x.relu(), "ThresholdBackwardBackward0"),
    ("F.relu", lambda t, x: t.nn.functional.relu(x), "ThresholdBackwardBackward0"),
    ("softmax", lambda t, x: x.softmax(1), "SoftmaxBackwardDataBackward0"),
    ("log_softmax", lambda t, x: x.log_softmax(0), "LogSoftmaxBackwardDataBackward0"),
    ("cross_entropy", lambda t, x: t.nn.functional.cross_entropy(x, t.tensor([0, 2])),
     "LogSoftmaxBackwardDataBackward0"),
    ("leaky_relu", lambda t, x: t.nn.functional.leaky_relu(x), "LeakyReluBackwardBackward0"),
    ("softplus", lambda t, x: t.nn.functional.softplus(x), "SoftplusBackwardBackward0"),
    ("logsigmoid", lambda t, x: t.nn.functional.logsigmoid(x), "LogSigmoidBackwardBackward0"),
    ("silu", lambda t, x: t.nn.functional.silu(x), "MulBackward0"),
    ("exp", lambda t, x: x.exp(), "MulBackward0"),
    ("gelu", lambda t, x: t.nn.functional.gelu(x), "GeluBackwardBackward0"),
    ("gelu_tanh", lambda t, x: t.nn.functional.gelu(x, approximate="tanh"), "GeluBackwardBackward0"),
    ("mse_loss", lambda t, x: t.nn.functional.mse_loss(x, x.detach() * 2), "MseLossBackwardBackward0"),
    ("bce_with_logits_mean", lambda t, x: t.nn.functional.binary_cross_entropy_with_logits(x, x.detach().sigmoid()),
     "DivBackward1"),
    ("bce_with_logits_sum", lambda t, x: t.nn.functional.binary_cross_entropy_with_logits(
        x, x.detach().sigmoid(), reduction="sum"), "MulBackward0"),
]


def _broadcast_grad(t, shape):
    x = t.tensor([[1.2, -0.7, 1.6], [-0.4, 1.3, 2.1]])
    b = t.ones(*shape).requires_grad_() if shape else t.tensor(0.5, requires_grad=True)
    v = t.ones(2, 3).requires_grad_()
    (g,) = t.autograd.grad(x + b, [b], v, create_graph=True)
    return g


# target shape of a broadcast operand -> grad_fn of its create_graph gradient
BROADCAST = [((3,), "ViewBackward0"), ((1,), "ViewBackward0"), ((1, 3), "SumBackward1"),
             ((2, 1), "SumBackward1"), ((), "SumBackward0")]


@pytest.mark.parametrize("case", BROADCAST, ids=[str(c[0]) for c in BROADCAST])
def test_broadcast_gradient_names(case):
    shape, expected = case
    assert _name(_broadcast_grad(rustgrad, shape).grad_fn) == expected


@pytest.mark.parametrize("case", GRADGRAD, ids=[c[0] for c in GRADGRAD])
def test_create_graph_gradient_names(case):
    _, f, expected = case
    x = _leaf(rustgrad)
    out = f(rustgrad, x)
    (g,) = rustgrad.autograd.grad(out.sum(), [x], create_graph=True)
    assert g.requires_grad
    assert _name(g.grad_fn) == expected


def test_gradient_op_values_and_second_derivative():
    """The recorded gradient ops give the closed-form first and second derivatives."""
    import numpy as np

    x = rustgrad.tensor([-1.5, -0.2, 0.4, 2.0], dtype=rustgrad.float64, requires_grad=True)
    a = x.detach().numpy()
    (g,) = rustgrad.autograd.grad(x.tanh().sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 1 - np.tanh(a) ** 2, rtol=1e-12)
    (gg,) = rustgrad.autograd.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.numpy(), -2 * np.tanh(a) * (1 - np.tanh(a) ** 2), rtol=1e-12)
    (g,) = rustgrad.autograd.grad(rustgrad.nn.functional.logsigmoid(x).sum(), [x], create_graph=True)
    s = 1 / (1 + np.exp(a))
    np.testing.assert_allclose(g.detach().numpy(), s, rtol=1e-12)
    (gg,) = rustgrad.autograd.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.numpy(), -s * (1 - s), rtol=1e-12)
    (g,) = rustgrad.autograd.grad(x.relu().sum(), [x], create_graph=True)
    (gg,) = rustgrad.autograd.grad(g.sum(), [x], allow_unused=True)
    assert gg is None or np.all(gg.numpy() == 0)


def test_names_match_torch():
    """The same programs under PyTorch give the hard-coded names (skipped without torch)."""
    torch = pytest.importorskip("torch")
    for key, f, expected in FORWARD:
        if key in ("uniform_", "normal_", "bernoulli_", "normal_on_view"):
            torch.manual_seed(0)
        out = f(torch, _leaf(torch), _other(torch))
        assert _name(out.grad_fn) == expected, key
    for key, f, expected in GRADGRAD:
        x = _leaf(torch)
        (g,) = torch.autograd.grad(f(torch, x).sum(), [x], create_graph=True)
        assert _name(g.grad_fn) == expected, key
    for shape, expected in BROADCAST:
        assert _name(_broadcast_grad(torch, shape).grad_fn) == expected, shape


def _prod_grad(t, value, shape, kw, grad_requires_grad):
    """The gradient of ``prod`` made with ``create_graph=True`` (its flags and node)."""
    x = t.tensor(value, dtype=t.float64).reshape(shape).requires_grad_()
    y = x.prod(**kw)
    (g,) = t.autograd.grad(y, [x], t.ones_like(y, requires_grad=grad_requires_grad), create_graph=True)
    return g.requires_grad, _name(g.grad_fn), tuple(g.shape)


# (value, shape, kwargs, grad_output requires grad) -> (requires_grad, grad_fn, shape) of the gradient.
# A 0-d input passes the gradient through; so does a one-element group holding a zero.
PROD_GRAD = [
    (3.0, (), {}, False, (False, None, ())),
    (0.0, (), {}, False, (False, None, ())),
    (3.0, (), {"dim": 0}, False, (False, None, ())),
    (3.0, (), {}, True, (True, None, ())),
    (3.0, (1,), {}, False, (True, "MulBackward0", (1,))),
    (0.0, (1,), {}, False, (False, None, (1,))),
    (0.0, (1,), {}, True, (True, "ViewBackward0", (1,))),
    (0.0, (1,), {"dim": 0, "keepdim": True}, True, (True, None, (1,))),
    ([0.0, 2.0], (2, 1), {"dim": 1}, False, (False, None, (2, 1))),
    ([0.0, 2.0], (2, 1), {"dim": 1}, True, (True, "UnsqueezeBackward0", (2, 1))),
    ([0.0, 2.0], (2, 1), {"dim": 0}, False, (True, "MulBackward0", (2, 1))),
    ([0.0, 2.0, 3.0], (1, 3), {}, False, (True, "ViewBackward0", (1, 3))),
]


@pytest.mark.parametrize(("value", "shape", "kw", "grad_rg", "expected"), PROD_GRAD)
def test_prod_create_graph_gradient_flags(value, shape, kw, grad_rg, expected):
    assert _prod_grad(rustgrad, value, shape, kw, grad_rg) == expected
    x = rustgrad.tensor(3.0, requires_grad=True)
    (g,) = rustgrad.autograd.grad(x.prod(), [x], create_graph=True)
    assert g.item() == 1.0 and not g.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        rustgrad.autograd.grad(g, [x])


def test_prod_gradient_flags_match_torch():
    torch = pytest.importorskip("torch")
    for value, shape, kw, grad_rg, expected in PROD_GRAD:
        assert _prod_grad(torch, value, shape, kw, grad_rg) == expected, (value, shape, kw, grad_rg)
