"""Saved-tensor hooks, the small pieces of ``autograd.graph`` and gradient checkpointing.

Each test runs on rustgrad and, when it is installed, on PyTorch (the ``lib`` fixture). The
assertions are closed forms (``d(x*y)/dx = y``, ``d sin/dx = cos``) or comparisons with the same
program run without the feature, so the rustgrad run needs nothing else.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest


@pytest.fixture(params=["rustgrad", "torch"])
def lib(request):
    """The library under test: rustgrad always, PyTorch when it can be imported."""
    if request.param == "torch":
        return pytest.importorskip("torch")
    return importlib.import_module("rustgrad")


def _leaf(lib, values, dtype=None):
    return lib.tensor(values, dtype=dtype or lib.float64, requires_grad=True)


# ----- saved_tensors_hooks -----


def test_pack_sees_saved_tensors_and_unpack_feeds_backward(lib):
    x = _leaf(lib, [1.0, 2.0, 3.0])
    y = _leaf(lib, [4.0, 5.0, 6.0])
    packed, unpacked = [], []

    def pack(t):
        packed.append((tuple(t.shape), lib.is_grad_enabled()))
        return t * 2  # backward then sees twice each saved value

    def unpack(t):
        unpacked.append(tuple(t.shape))
        return t

    with lib.autograd.graph.saved_tensors_hooks(pack, unpack):
        z = x * y
    assert packed == [((3,), False), ((3,), False)]  # pack hooks run with grad off
    z.sum().backward()
    assert len(unpacked) == 2
    # d(x*y)/dx = y, from the doubled saved y
    np.testing.assert_allclose(x.grad.detach().numpy(), [8.0, 10.0, 12.0])
    np.testing.assert_allclose(y.grad.detach().numpy(), [2.0, 4.0, 6.0])


def test_hooks_nest_and_leave_no_trace(lib):
    x = _leaf(lib, [0.5, 1.0])
    calls = []
    outer = lib.autograd.graph.saved_tensors_hooks(lambda t: calls.append("outer") or t, lambda t: t)
    inner = lib.autograd.graph.saved_tensors_hooks(lambda t: calls.append("inner") or t, lambda t: t)
    with outer:
        with inner:
            a = x.exp()
        b = x.sin()
    c = x.cos()
    assert calls == ["inner", "outer"]
    (a + b + c).sum().backward()
    # d(exp + sin + cos)/dx = exp + cos - sin
    xs = np.array([0.5, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), np.exp(xs) + np.cos(xs) - np.sin(xs))


def test_saved_output_gets_its_history_back(lib):
    x = _leaf(lib, [0.1, 0.2])
    with lib.autograd.graph.saved_tensors_hooks(lambda t: t.detach().clone(), lambda t: t):
        y = x.exp()
    (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
    # d exp/dx = exp (the saved result); the second derivative goes through the unpacked result
    (g2,) = lib.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(g2.numpy(), np.exp([0.1, 0.2]))


def test_unpack_hook_must_return_a_tensor(lib):
    x = _leaf(lib, [1.0, 2.0])
    with lib.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: 5):
        z = x * x
    with pytest.raises(TypeError, match="Output of saved tensor unpack_hook expected to be a Tensor but got result of type int"):
        z.sum().backward()


def test_pack_hook_must_not_write_its_input(lib):
    x = _leaf(lib, [1.0, 2.0])
    base = lib.tensor([3.0, 4.0], dtype=lib.float64)
    with (
        lib.autograd.graph.saved_tensors_hooks(lambda t: t.mul_(2), lambda t: t),
        pytest.raises(RuntimeError, match="A saved tensor pack hook is modifying its input in place"),
    ):
        x * base


def test_pack_hook_errors_reach_the_op(lib):
    def pack(t):
        raise ValueError("no packing today")

    x = _leaf(lib, [1.0])
    with lib.autograd.graph.saved_tensors_hooks(pack, lambda t: t), pytest.raises(ValueError, match="no packing today"):
        x.exp()
    # The thread is clean again afterwards.
    x.exp().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([1.0]))


def test_disable_saved_tensors_hooks(lib):
    graph = lib.autograd.graph
    with (
        graph.disable_saved_tensors_hooks("hooks are off here"),
        pytest.raises(RuntimeError, match="hooks are off here"),
        graph.saved_tensors_hooks(lambda t: t, lambda t: t),
    ):
        pass
    with (
        graph.saved_tensors_hooks(lambda t: t, lambda t: t),
        pytest.raises(RuntimeError, match="not while hooks are on"),
        graph.disable_saved_tensors_hooks("not while hooks are on"),
    ):
        pass
    with graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        pass  # allowed again


def test_save_on_cpu_gives_the_same_gradients(lib):
    lib.manual_seed(0)
    w = lib.randn(4, 3, dtype=lib.float64, requires_grad=True)
    x = lib.randn(5, 4, dtype=lib.float64)
    with lib.autograd.graph.save_on_cpu():
        loss = (x @ w).tanh().pow(2).sum()
    (plain,) = lib.autograd.grad((x @ w).tanh().pow(2).sum(), w)
    loss.backward()
    np.testing.assert_allclose(w.grad.numpy(), plain.numpy())


def test_saved_tensors_are_not_version_checked_under_hooks(lib):
    x = _leaf(lib, [1.0, 2.0])
    y = lib.tensor([3.0, 4.0], dtype=lib.float64)
    with lib.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t):
        z = x * y
    y.add_(1)  # the copy the hook made is what backward uses: no error
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])


def test_saved_attributes(lib):
    x = _leaf(lib, [1.0, 2.0])
    y = _leaf(lib, [3.0, 4.0])
    z = x * y
    assert z.grad_fn._saved_self is x
    assert z.grad_fn._saved_other is y
    e = x.exp()
    np.testing.assert_allclose(e.grad_fn._saved_result.detach().numpy(), np.exp([1.0, 2.0]))
    assert e.grad_fn._saved_result.grad_fn is e.grad_fn
    z.sum().backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        z.grad_fn._saved_self  # noqa: B018
    with pytest.raises(AttributeError):
        z.grad_fn._saved_nothing_like_this  # noqa: B018


# ----- gradient edges, increment_version -----


def test_gradient_edge_of_leaf_and_non_leaf(lib):
    graph = lib.autograd.graph
    x = _leaf(lib, [1.0, 2.0])
    y = x * 3
    edge = graph.get_gradient_edge(y)
    assert edge.node is y.grad_fn and edge.output_nr == 0
    assert graph.get_gradient_edge(x).node.name() == "torch::autograd::AccumulateGrad"
    with pytest.raises(RuntimeError, match="It is not possible to get the gradient edge for a Tensor that does not require gradients"):
        graph.get_gradient_edge(lib.zeros(2))


def test_grad_with_respect_to_an_edge(lib):
    graph = lib.autograd.graph
    x = _leaf(lib, [1.0, 2.0])
    y = x * 3
    edge = graph.get_gradient_edge(y)
    y.mul_(2)  # y is now another tensor's history; the edge still names the old one
    loss = (y * y).sum()
    # loss = (6x)^2 summed over the first y = 3x: d loss/d(3x) = 2 * 6x * 2 = 24x
    (g,) = lib.autograd.grad(loss, edge, retain_graph=True)
    np.testing.assert_allclose(g.numpy(), [24.0, 48.0])
    gx, ge = lib.autograd.grad(loss, [x, edge])
    np.testing.assert_allclose(gx.numpy(), [72.0, 144.0])
    np.testing.assert_allclose(ge.numpy(), [24.0, 48.0])


def test_increment_version(lib):
    x = _leaf(lib, [1.0, 2.0])
    y = lib.tensor([3.0, 4.0], dtype=lib.float64)
    z = x * y
    before = y._version
    lib.autograd.graph.increment_version(y)
    assert y._version == before + 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


# ----- checkpoint -----


def _mlp(lib, depth, width=8, seed=0):
    lib.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers += [lib.nn.Linear(width, width, dtype=lib.float64), lib.nn.Tanh()]
    return lib.nn.Sequential(*layers)


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_gives_the_plain_gradients(lib, use_reentrant):
    model = _mlp(lib, 3)
    lib.manual_seed(1)
    x = lib.randn(4, 8, dtype=lib.float64, requires_grad=True)
    model(x).pow(2).sum().backward()
    expected = [p.grad.clone() for p in model.parameters()] + [x.grad.clone()]
    model.zero_grad()
    x.grad = None
    out = lib.utils.checkpoint.checkpoint(model, x, use_reentrant=use_reentrant)
    out.pow(2).sum().backward()
    for got, want in zip([p.grad for p in model.parameters()] + [x.grad], expected):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    name = "CheckpointFunctionBackward" if use_reentrant else "PowBackward0"
    assert type(out.pow(2).grad_fn).__name__ == "PowBackward0"
    assert type(out.grad_fn).__name__ == ("CheckpointFunctionBackward" if use_reentrant else "TanhBackward0")
    assert name


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_reproduces_dropout_masks(lib, use_reentrant):
    def f(a):
        return lib.nn.functional.dropout(a, 0.5, True) * a

    x = lib.ones(64, dtype=lib.float64, requires_grad=True)
    lib.manual_seed(0)
    y = lib.utils.checkpoint.checkpoint(f, x, use_reentrant=use_reentrant)
    after_forward = lib.rand(3)
    y.sum().backward()
    # y = mask * 2 * x^2 with the same mask in the recomputation: dy/dx = 2 * (mask * 2) * x
    np.testing.assert_allclose(x.grad.numpy(), 2 * y.detach().numpy())
    # preserving the random state leaves the stream where the forward left it
    lib.manual_seed(0)
    lib.nn.functional.dropout(lib.ones(64, dtype=lib.float64), 0.5, True)
    np.testing.assert_allclose(lib.rand(3).numpy(), after_forward.numpy())


def test_checkpoint_without_reentrant_supports_double_backward_and_kwargs(lib):
    x = _leaf(lib, [0.3, 0.7])

    def f(a, *, scale):
        return (a * scale).sin()

    y = lib.utils.checkpoint.checkpoint(f, x, scale=2.0, use_reentrant=False)
    (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
    # d sin(2x)/dx = 2 cos(2x); d2/dx2 = -4 sin(2x)
    np.testing.assert_allclose(g.detach().numpy(), 2 * np.cos([0.6, 1.4]))
    (g2,) = lib.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(g2.numpy(), -4 * np.sin([0.6, 1.4]))
    with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
        lib.utils.checkpoint.checkpoint(f, x, scale=2.0, use_reentrant=True)


def test_checkpoint_warns_without_use_reentrant(lib):
    x = _leaf(lib, [1.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = lib.utils.checkpoint.checkpoint(lib.sin, x)
    assert any("the use_reentrant parameter should be passed explicitly" in str(w.message) for w in caught)
    assert type(y.grad_fn).__name__ == "CheckpointFunctionBackward"


def test_reentrant_checkpoint_errors(lib):
    cp = lib.utils.checkpoint
    x = lib.ones(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = cp.checkpoint(lambda a: a * 2, x, use_reentrant=True)
    assert not y.requires_grad
    w = _leaf(lib, [1.0, 2.0, 3.0])
    y = cp.checkpoint(lambda a: a.detach() * 2, w, use_reentrant=True)
    with pytest.raises(RuntimeError, match="none of output has requires_grad=True, this checkpoint"):
        y.sum().backward()
    with pytest.raises(RuntimeError, match="Only tuple of tensors is supported. Got Unsupported input type: list"):
        cp.detach_variable([x])


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_sequential(lib, use_reentrant):
    model = _mlp(lib, 4)
    lib.manual_seed(2)
    x = lib.randn(3, 8, dtype=lib.float64, requires_grad=True)
    model(x).sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    out = lib.utils.checkpoint.checkpoint_sequential(model, 3, x, use_reentrant=use_reentrant)
    out.sum().backward()
    for got, want in zip([p.grad for p in model.parameters()], expected):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: foo,bar"):
        lib.utils.checkpoint.checkpoint_sequential(model, 2, x, use_reentrant=False, foo=1, bar=2)


# ----- more of autograd.graph -----


def test_node_metadata_persists(lib):
    x = _leaf(lib, [1.0])
    y = x * 2
    y.grad_fn.metadata["tag"] = "scaled"
    same = y.grad_fn.metadata
    assert same["tag"] == "scaled"
    assert y.grad_fn.metadata is same


def test_multi_grad_hook_all_and_any(lib):
    graph = lib.autograd.graph
    a, b, unused = _leaf(lib, [1.0, 2.0]), _leaf(lib, [3.0]), _leaf(lib, [5.0])
    seen_all, seen_any = [], []
    graph.register_multi_grad_hook((a, b, unused), lambda grads: seen_all.append(grads))
    handle = graph.register_multi_grad_hook((a, b), lambda grad: seen_any.append(grad), mode="any")
    loss = (a * 2).sum() + (b * 3).sum()
    loss.backward(retain_graph=True)
    assert len(seen_all) == 1 and len(seen_any) == 1
    ga, gb, gu = seen_all[0]
    # d loss/da = 2, d loss/db = 3; `unused` is not reached
    np.testing.assert_allclose(ga.numpy(), [2.0, 2.0])
    np.testing.assert_allclose(gb.numpy(), [3.0])
    assert gu is None
    assert tuple(seen_any[0].shape) in ((2,), (1,))
    handle.remove()
    loss.backward()
    assert len(seen_all) == 2 and len(seen_any) == 1
    with pytest.raises(ValueError, match="Expects mode to be one of \\('all', 'any'\\) but got x"):
        graph.register_multi_grad_hook((a,), print, mode="x")


def test_allow_mutation_on_saved_tensors(lib):
    x = _leaf(lib, [1.0, 1.0])
    with lib.autograd.graph.allow_mutation_on_saved_tensors():
        a = x.clone()
        y = a * a
        a.mul_(3)
        y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])  # 2a with a's value when saved


def test_set_multithreading_enabled(lib):
    with lib.autograd.set_multithreading_enabled(False):
        x = _leaf(lib, [2.0])
        (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0])


def test_grad_with_batched_grad_outputs(lib):
    x = _leaf(lib, [0.1, 0.2, 0.3])
    y = x.sin()
    (rows,) = lib.autograd.grad(y, x, lib.eye(3, dtype=lib.float64), is_grads_batched=True, retain_graph=True)
    np.testing.assert_allclose(rows.numpy(), np.diag(np.cos([0.1, 0.2, 0.3])))  # the Jacobian of sin
    with pytest.raises(RuntimeError, match="If `is_grads_batched=True`, we interpret the first dimension"):
        lib.autograd.grad(y, x, lib.ones(3, dtype=lib.float64), is_grads_batched=True)


def test_raw_saved_tensor_register_hooks(lib):
    """``grad_fn._raw_saved_self.register_hooks``: the pack hook runs at once, backward reads
    the saved value through the unpack hook; one pair per saved tensor; none after freeing."""
    a = _leaf(lib, [0.5, -1.0, 2.0])
    y = a * a
    packed = []
    y.grad_fn._raw_saved_self.register_hooks(lambda x: packed.append(x) or x * 2, lambda x: x + 1)
    assert len(packed) == 1
    np.testing.assert_allclose(y.grad_fn._saved_self.detach().numpy(), 2 * a.detach().numpy() + 1)
    with pytest.raises(RuntimeError, match="whose hooks have already been set"):
        y.grad_fn._raw_saved_self.register_hooks(lambda x: x, lambda x: x)
    with pytest.raises(TypeError):
        y.grad_fn._raw_saved_other.register_hooks(1, 2)
    y.sum().backward()
    # d(self * other)/da = other + self, with self read as 2a + 1
    np.testing.assert_allclose(a.grad.numpy(), 3 * a.detach().numpy() + 1)
    z = a.exp()
    z.sum().backward()
    with pytest.raises(RuntimeError, match="after it has been freed"):
        z.grad_fn._raw_saved_result.register_hooks(lambda x: x, lambda x: x)
