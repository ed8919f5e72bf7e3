"""Forward-mode AD (``torch.autograd.forward_ad``): dual levels, dual tensors, custom Functions'
``jvp``, modules with dual parameters, forward-over-reverse.

Each test runs on rustgrad and, when it is installed, on PyTorch (the ``lib`` fixture); the
oracles are closed forms. The per-op check against central differences is in test_op_table.py.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest


@pytest.fixture(params=["rustgrad", "torch"])
def lib(request):
    """The library under test: rustgrad always, PyTorch when it can be imported."""
    if request.param == "torch":
        return pytest.importorskip("torch")
    return importlib.import_module("rustgrad")


def _fw(lib):
    return importlib.import_module(f"{lib.__name__}.autograd.forward_ad")


def test_dual_tensors_and_levels(lib):
    fw = _fw(lib)
    lib.manual_seed(0)
    primal, tangent = lib.randn(4, 4, dtype=lib.float64), lib.randn(4, 4, dtype=lib.float64)
    plain = lib.randn(4, 4, dtype=lib.float64)
    with fw.dual_level():
        dual = fw.make_dual(primal, tangent)
        assert fw.unpack_dual(dual).tangent is tangent
        out = dual**2 + plain**2
        jvp = fw.unpack_dual(out).tangent
        assert fw.unpack_dual(plain).tangent is None
    # d(x^2 + y^2) along (t, 0) = 2 x t
    np.testing.assert_allclose(jvp.numpy(), 2 * primal.numpy() * tangent.numpy(), rtol=1e-12)
    assert fw.unpack_dual(out).tangent is None  # gone with the level
    assert not out.requires_grad


def test_level_errors(lib):
    fw = _fw(lib)
    x = lib.ones(3)
    with pytest.raises(RuntimeError, match="no level exists, make sure to enter_dual_level\\(\\) first"):
        fw.make_dual(x, lib.ones(3))
    with fw.dual_level():
        with pytest.raises(RuntimeError, match="Nested forward mode AD is not supported at the moment"), fw.dual_level():
            pass
        with pytest.raises(RuntimeError, match="Tensor is of size \\[3\\] while the given forward gradient is of size \\[2\\]"):
            fw.make_dual(x, lib.ones(2))
        with pytest.raises(ValueError, match="Expected primal to be floating point or complex, but got: torch.int64"):
            fw.make_dual(lib.arange(3), lib.ones(3))


def test_tangents_survive_no_grad_views_and_in_place(lib):
    fw = _fw(lib)
    x = lib.tensor([0.5, 1.0, 1.5], dtype=lib.float64)
    with fw.dual_level():
        d = fw.make_dual(x, lib.ones(3, dtype=lib.float64))
        with lib.no_grad():
            e = d.exp()
        np.testing.assert_allclose(fw.unpack_dual(e).tangent.numpy(), np.exp([0.5, 1.0, 1.5]))  # d exp = exp
        v = d[1:]
        np.testing.assert_allclose(fw.unpack_dual(v).tangent.numpy(), [1.0, 1.0])
        c = d.clone()
        c.mul_(3)
        np.testing.assert_allclose(fw.unpack_dual(c).tangent.numpy(), [3.0, 3.0, 3.0])
        values, _ = lib.sort(d * -1)
        np.testing.assert_allclose(fw.unpack_dual(values).tangent.numpy(), [-1.0, -1.0, -1.0])


def test_module_with_dual_parameters(lib):
    fw = _fw(lib)
    from importlib import import_module

    functional_call = import_module(f"{lib.__name__}.func").functional_call
    lib.manual_seed(0)
    model = lib.nn.Linear(5, 3, dtype=lib.float64)
    x = lib.randn(4, 5, dtype=lib.float64)
    params = {name: p for name, p in model.named_parameters()}
    tangents = {name: lib.rand_like(p) for name, p in params.items()}
    with fw.dual_level():
        dual_params = {name: fw.make_dual(p, tangents[name]) for name, p in params.items()}
        out = functional_call(model, dual_params, (x,))
        jvp = fw.unpack_dual(out).tangent
    # out = x W^T + b: its derivative along (dW, db) is x dW^T + db
    expected = x.numpy() @ tangents["weight"].numpy().T + tangents["bias"].numpy()
    np.testing.assert_allclose(jvp.detach().numpy(), expected, rtol=1e-12)


def test_custom_function_jvp(lib):
    fw = _fw(lib)

    class Exp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            result = x.exp()
            ctx.result = result
            return result

        @staticmethod
        def backward(ctx, g):
            return g * ctx.result

        @staticmethod
        def jvp(ctx, t):
            return t * ctx.result

    class Square(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_forward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            raise AssertionError("not used")

        @staticmethod
        def jvp(ctx, t):
            (x,) = ctx.saved_tensors
            return 2 * x * t

    class NoJvp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g

    x = lib.tensor([0.1, 0.2], dtype=lib.float64)
    with fw.dual_level():
        d = fw.make_dual(x, lib.tensor([1.0, 2.0], dtype=lib.float64))
        np.testing.assert_allclose(fw.unpack_dual(Exp.apply(d)).tangent.numpy(), np.exp([0.1, 0.2]) * [1.0, 2.0])
        np.testing.assert_allclose(fw.unpack_dual(Square.apply(d)).tangent.numpy(), [0.2, 0.8])  # 2 x t
        with pytest.raises(NotImplementedError, match="You must implement the jvp function for custom autograd.Function"):
            NoJvp.apply(d)


def test_forward_over_reverse(lib):
    fw = _fw(lib)
    # f(x) = sum(x^3): grad = 3x^2, and its derivative along t is 6 x t (a Hessian-vector product)
    x = lib.tensor([1.0, -2.0, 0.5], dtype=lib.float64, requires_grad=True)
    t = lib.tensor([1.0, 0.5, 2.0], dtype=lib.float64)
    with fw.dual_level():
        d = fw.make_dual(x, t)
        (g,) = lib.autograd.grad((d**3).sum(), d, create_graph=True)
        hvp = fw.unpack_dual(g).tangent
    np.testing.assert_allclose(hvp.detach().numpy(), 6 * np.array([1.0, -2.0, 0.5]) * [1.0, 0.5, 2.0])


def test_in_place_writes_replace_the_tangent(lib):
    """New values that do not come from a tangent have tangent zero where they were written."""
    fw = _fw(lib)
    cases = [
        ("fill_", lambda y: y.fill_(5.0), [0.0, 0.0, 0.0]),
        ("zero_", lambda y: y.zero_(), [0.0, 0.0, 0.0]),
        ("copy_plain", lambda y: y.copy_(lib.ones(3, dtype=lib.float64)), [0.0, 0.0, 0.0]),
        ("index_put_plain", lambda y: y.index_put_((lib.tensor([0]),), lib.tensor([9.0], dtype=lib.float64)),
         [0.0, 20.0, 30.0]),
        ("masked_fill_", lambda y: y.masked_fill_(lib.tensor([True, False, True]), 0.0), [0.0, 20.0, 0.0]),
        ("mul_", lambda y: y.mul_(2), [20.0, 40.0, 60.0]),
    ]
    for name, write, want in cases:
        with fw.dual_level():
            x = fw.make_dual(lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64), lib.tensor([10.0, 20.0, 30.0], dtype=lib.float64))
            y = x * 1
            write(y)
            assert fw.unpack_dual(y).tangent.tolist() == want, name
    with fw.dual_level():  # copy_ of a dual takes its tangent
        y = fw.make_dual(lib.zeros(3, dtype=lib.float64), lib.ones(3, dtype=lib.float64)) * 1
        y.copy_(fw.make_dual(lib.ones(3, dtype=lib.float64), lib.full((3,), 7.0, dtype=lib.float64)))
        assert fw.unpack_dual(y).tangent.tolist() == [7.0, 7.0, 7.0]


def test_tangent_of_an_output_that_requires_grad_requires_grad(lib):
    """As in PyTorch: an op's output that requires grad has a tangent that requires grad (and
    differentiates to zeros where the tangent does not depend on the primal); views keep their
    tangent's flag."""
    fw = _fw(lib)
    p = lib.randn(3, 3, dtype=lib.float64, requires_grad=True)
    x = lib.randn(2, 3, dtype=lib.float64)
    with fw.dual_level():
        d = fw.make_dual(p, lib.rand(3, 3, dtype=lib.float64))
        assert not fw.unpack_dual(d).tangent.requires_grad
        assert not fw.unpack_dual(d.t()).tangent.requires_grad
        doubled = fw.unpack_dual(d * 2).tangent
        assert doubled.requires_grad and fw.unpack_dual(x @ d.t()).tangent.requires_grad
        (g,) = lib.autograd.grad(doubled.sum(), p)
        assert tuple(g.shape) == (3, 3) and float(g.abs().sum()) == 0.0
        e = fw.make_dual(lib.randn(3, dtype=lib.float64), lib.rand(3, dtype=lib.float64))
        assert not fw.unpack_dual(e * 2).tangent.requires_grad
        with lib.no_grad():
            assert not fw.unpack_dual(x @ d.t()).tangent.requires_grad


def test_tangents_of_views_share_their_base_tangent(lib):
    """As in PyTorch: a view's tangent is a view of its base's tangent, in-place ops on either
    are seen by both, and an in-place op on a dual writes into the tangent it was given."""
    fw = _fw(lib)
    f64 = lib.float64
    with fw.dual_level():
        given = lib.tensor([10.0, 20.0, 30.0], dtype=f64)
        d = fw.make_dual(lib.tensor([1.0, 2.0, 3.0], dtype=f64), given)
        d.mul_(2)
        assert given.tolist() == [20.0, 40.0, 60.0]
        base = fw.make_dual(lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=f64) * 1, lib.ones(4, dtype=f64))
        base[1:3].mul_(3)
        assert fw.unpack_dual(base).tangent.tolist() == [1.0, 3.0, 3.0, 1.0]
        base[0] = fw.make_dual(lib.tensor(5.0, dtype=f64), lib.tensor(7.0, dtype=f64))
        assert fw.unpack_dual(base).tangent.tolist() == [7.0, 3.0, 3.0, 1.0]
        plain = lib.tensor([1.0, 2.0, 3.0], dtype=f64) * 1
        plain[:2].copy_(fw.make_dual(lib.tensor([5.0, 6.0], dtype=f64), lib.tensor([7.0, 8.0], dtype=f64)))
        assert fw.unpack_dual(plain).tangent.tolist() == [7.0, 8.0, 0.0]
        x = lib.tensor([1.0, 2.0], dtype=f64) * 1
        y = fw.make_dual(x, lib.tensor([1.0, 1.0], dtype=f64)).clone()
        y.mul_(5)  # a clone's tangent is its own: the dual's stays
        transposed = lib.randn(3, 2, dtype=f64).t()
        dual = fw.make_dual(lib.randn(2, 3, dtype=f64), transposed)
        assert fw.unpack_dual(dual).tangent.stride() == (3, 1)  # copied into the primal's layout


def test_in_place_ops_on_duals_leave_no_graph_alive():
    """An in-place op on a tensor with a tangent, whose primal requires grad, frees its graph
    once the tensors are gone (the tangent is replaced, not written into: writing would tie the
    old tangent's graph to the node that saved the target, a cycle)."""
    import gc

    import rustgrad

    fw = rustgrad.autograd.forward_ad
    gc.collect()
    before = rustgrad.autograd.graph_stats()["live_nodes"]
    for op in (lambda y: y.exp_(), lambda y: y.mul_(2), lambda y: y.sin_()):
        x = rustgrad.randn(3, dtype=rustgrad.float64, requires_grad=True)
        with fw.dual_level():
            d = fw.make_dual(x, rustgrad.randn(3, dtype=rustgrad.float64))
            y = op(d * 1)
            assert fw.unpack_dual(y).tangent is not None
            del y, d
        del x
        gc.collect()
        assert rustgrad.autograd.graph_stats()["live_nodes"] == before


@pytest.mark.parametrize("write", ["mul_", "exp_", "copy_", "setitem", "mul_dual"])
def test_inplace_on_a_view_under_forward_ad_frees_the_graph(write):
    """An in-place op on a view of a tensor whose primal requires grad writes the new tangent into
    the base's tangent. Nothing of either graph may stay alive once the tensors are gone (the
    tangents are dropped at level exit, and `v * 2` does not save `v`)."""
    import gc

    import rustgrad

    fw = rustgrad.autograd.forward_ad
    writes = {
        "mul_": lambda y, d: y[0:2].mul_(2),
        "exp_": lambda y, d: y[1:3].exp_(),
        "copy_": lambda y, d: y[0:2].copy_(y[2:4] * 3),
        "setitem": lambda y, d: y.__setitem__(slice(0, 2), d[2:4] * d[0:2]),
        "mul_dual": lambda y, d: y[0:2].mul_(d[2:4]),
    }
    gc.collect()
    before = rustgrad.autograd.graph_stats()["live_nodes"]
    for _ in range(3):
        x = rustgrad.randn(4, dtype=rustgrad.float64, requires_grad=True)
        with fw.dual_level():
            d = fw.make_dual(x, rustgrad.randn(4, dtype=rustgrad.float64))
            y = d * 1
            writes[write](y, d)
            assert fw.unpack_dual(y).tangent is not None
            y.sum().backward()
            del y, d
        del x
        gc.collect()
    assert rustgrad.autograd.graph_stats()["live_nodes"] == before


@pytest.mark.parametrize("requires_grad", [False, True])
def test_views_see_in_place_changes_of_their_base_tangent(lib, requires_grad):
    """A view's tangent is the same view of its base's current tangent: after `y.mul_(2)` a view
    taken before shows the doubled tangent, and after `v.mul_(3)` on one view, an overlapping
    view and the base show the tripled elements (closed forms; the same under PyTorch)."""
    fw = _fw(lib)
    x = lib.ones(4, dtype=lib.float64, requires_grad=requires_grad)
    t = lib.arange(4.0, dtype=lib.float64)
    with fw.dual_level():
        d = fw.make_dual(x, t)
        y = d * 1
        v = y[0:2]
        y.mul_(2)
        np.testing.assert_array_equal(fw.unpack_dual(v).tangent.detach().numpy(), [0.0, 2.0])
        y2 = d * 1
        v2, w2 = y2[0:2], y2[1:3]
        v2.mul_(3)
        np.testing.assert_array_equal(fw.unpack_dual(w2).tangent.detach().numpy(), [3.0, 2.0])
        np.testing.assert_array_equal(fw.unpack_dual(y2).tangent.detach().numpy(), [0.0, 3.0, 2.0, 3.0])
        if requires_grad:
            assert fw.unpack_dual(y2).tangent.grad_fn.name() == "torch::autograd::CopySlices"


def _extra_formula_cases():
    """Ops with their own jvp formula that the op table does not list, with input shapes."""
    import rustgrad
    import rustgrad.nn.functional as F

    return {
        "conv2d_bias": (lambda x, w, b: F.conv2d(x, w, b, padding=1), [(2, 3, 5, 5), (4, 3, 3, 3), (4,)]),
        "conv1d_stride": (lambda x, w: F.conv1d(x, w, stride=2), [(2, 2, 7), (3, 2, 3)]),
        "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, stride=2), [(1, 2, 3, 3), (2, 3, 2, 2)]),
        "max_pool2d": (lambda x: F.max_pool2d(x, 2), [(2, 3, 4, 4)]),
        "adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, 2), [(1, 2, 5, 5)]),
        "avg_pool2d": (lambda x: F.avg_pool2d(x, 2, stride=1), [(2, 2, 4, 4)]),
        "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, 3), [(1, 2, 5, 5)]),
        "lerp_tensor": (lambda a, b, w: rustgrad.lerp(a, b, w), [(3, 4), (4,), (3, 1)]),
        "lerp_number": (lambda a, b: rustgrad.lerp(a, b, 0.3), [(3, 4), (3, 4)]),
        "addcmul": (lambda x, a, b: rustgrad.addcmul(x, a, b, value=0.5), [(3, 4), (3, 4), (4,)]),
        "addcdiv": (lambda x, a, b: rustgrad.addcdiv(x, a, b.exp(), value=2.0), [(3, 4), (3, 1), (3, 4)]),
        "sort_values": (lambda x: rustgrad.sort(x, dim=1).values, [(3, 5)]),
        "topk_values": (lambda x: rustgrad.topk(x, 2).values, [(3, 5)]),
        "median_dim": (lambda x: x.median(dim=0).values, [(5, 3)]),
        "trace": (lambda x: rustgrad.trace(x), [(4, 4)]),
        "pad": (lambda x: F.pad(x, (1, 2, 0, 1)), [(2, 3, 3)]),
        "nan_to_num": (lambda x: rustgrad.nan_to_num(x), [(3, 4)]),
        "scalar_pow": (lambda x: 2.0 ** x, [(3, 4)]),
        "cumsum": (lambda x: x.cumsum(1), [(3, 4)]),
        "tril": (lambda x: x.tril(-1), [(4, 4)]),
        "flip_roll": (lambda x: x.flip(0).roll(1, 1), [(3, 4)]),
        "repeat": (lambda x: x.repeat(2, 1, 3), [(3, 2)]),
        "cat_stack": (lambda a, b: rustgrad.stack([rustgrad.cat([a, b], 0), rustgrad.cat([b, a], 0)], 1), [(2, 3), (2, 3)]),
        "gather_index": (lambda x: x.gather(1, rustgrad.tensor([[0, 2], [1, 1], [3, 0]]))[rustgrad.tensor([2, 0])],
                         [(3, 4)]),
        "to_copy_clone": (lambda x: x.to(rustgrad.float64, copy=True).clone(), [(3,)]),
        "where": (lambda a, b: rustgrad.where(a > 0, a, b), [(3, 4), (4,)]),
        "mm_chain": (lambda a, b, c: rustgrad.addmm(c, a, b) @ b.t(), [(3, 4), (4, 5), (5,)]),
        "logsumexp": (lambda x: x.logsumexp(1), [(3, 4)]),
        "cross_entropy_weighted": (lambda x: F.cross_entropy(x, rustgrad.tensor([0, 2, 1]),
                                                             weight=rustgrad.tensor([1.0, 2.0, 0.5], dtype=rustgrad.float64),
                                                             ignore_index=1), [(3, 3)]),
        "nll_loss_spatial_none": (lambda x: F.nll_loss(x, rustgrad.tensor([[0, 1], [2, 2]]), reduction="none"),
                                  [(2, 3, 2)]),
    }


@pytest.mark.parametrize("name", sorted(_extra_formula_cases()))
@pytest.mark.parametrize("tangents", ["all", "first"])
def test_jvp_formulas_beyond_the_op_table(name, tangents):
    """The jvp formulas of ops outside the op table: the tangent equals the central difference
    along the tangent in float64, and the tangent from the generic rule (formulas off)."""
    import rustgrad
    from rustgrad import _rustgrad

    fw = rustgrad.autograd.forward_ad
    fn, shapes = _extra_formula_cases()[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    arrays = [rng.standard_normal(s) for s in shapes]
    directions = [rng.standard_normal(s) if (tangents == "all" or i == 0) else None for i, s in enumerate(shapes)]

    def tangent_with(formulas):
        previous = _rustgrad._set_jvp_formulas(formulas)
        try:
            with fw.dual_level():
                args = [rustgrad.tensor(a) if v is None else fw.make_dual(rustgrad.tensor(a), rustgrad.tensor(v))
                        for a, v in zip(arrays, directions)]
                return fw.unpack_dual(fn(*args)).tangent.numpy()
        finally:
            _rustgrad._set_jvp_formulas(previous)

    h = 1e-6

    def at(sign):
        return fn(*[rustgrad.tensor(a if v is None else a + sign * h * v) for a, v in zip(arrays, directions)]).numpy()

    own = tangent_with(True)
    np.testing.assert_allclose(own, (at(1.0) - at(-1.0)) / (2 * h), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(own, tangent_with(False), rtol=1e-10, atol=1e-12)
