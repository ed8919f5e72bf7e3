"""``vmap`` with batching rules: results against loops over the batch and closed forms, the
batch carried through one call per op (no fallback warning for ops with a rule), transforms
inside and around ``vmap``, randomness, PyTorch's errors, and the README's list of ops that
fall back to a loop.

Each test runs on rustgrad and, when it is installed, on PyTorch (the ``lib`` fixture), except
those about rustgrad's own rule table.
"""

from __future__ import annotations

import importlib
import pathlib
import re
import warnings

import numpy as np
import pytest


@pytest.fixture(params=["rustgrad", "torch"])
def lib(request):
    """The library under test: rustgrad always, PyTorch when it can be imported."""
    if request.param == "torch":
        return pytest.importorskip("torch")
    return importlib.import_module("rustgrad")


def _t(lib, a):
    return lib.tensor(np.asarray(a, dtype=np.float64))


def _np(t):
    return t.detach().numpy()


RNG = np.random.default_rng(2026)
X = RNG.standard_normal((5, 3))
P = RNG.standard_normal(3)
M = RNG.standard_normal((4, 3))


def _no_fallback(fn, *args):
    """``fn(*args)``'s result, asserting that no op fell back to the loop."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args)
    fallbacks = [str(w.message) for w in caught if "batching rule" in str(w.message)]
    assert not fallbacks, fallbacks
    return out


# (name, function of one element, numpy of the whole batch)
CASES = [
    ("add_unbatched_left", lambda lib, a: _t(lib, P) + a, lambda x: P + x),
    ("rsub_scalar", lambda lib, a: 1 - a, lambda x: 1 - x),
    ("pow_unbatched_base", lambda lib, a: _t(lib, np.abs(P)) ** a, lambda x: np.abs(P) ** x),
    ("matmul_unbatched_left", lambda lib, a: _t(lib, M) @ a, lambda x: x @ M.T),
    ("matmul_vec_vec", lambda lib, a: a @ _t(lib, P), lambda x: x @ P),
    ("torch_add_unbatched_first", lambda lib, a: lib.add(_t(lib, P), a), lambda x: P + x),
    ("where", lambda lib, a: lib.where(_t(lib, P) > 0, _t(lib, P), a), lambda x: np.where(P > 0, P, x)),
    ("sum_all", lambda lib, a: a.sum(), lambda x: x.sum(1)),
    ("mean_keepdim", lambda lib, a: a.mean(0, keepdim=True), lambda x: x.mean(1, keepdims=True)),
    ("max_all", lambda lib, a: a.max(), lambda x: x.max(1)),
    ("max_dim", lambda lib, a: a.max(-1).values, lambda x: x.max(1)),
    ("std_all", lambda lib, a: a.std(), lambda x: x.std(1, ddof=1)),
    ("norm_all", lambda lib, a: a.norm(), lambda x: np.linalg.norm(x, axis=1)),
    ("softmax", lambda lib, a: lib.softmax(a, 0), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    ("cumsum", lambda lib, a: a.cumsum(0), lambda x: x.cumsum(1)),
    ("sort", lambda lib, a: a.sort().values, lambda x: np.sort(x, 1)),
    ("topk", lambda lib, a: a.topk(2).values, lambda x: -np.sort(-x, 1)[:, :2]),
    ("argmax_all", lambda lib, a: a.argmax(), lambda x: x.argmax(1)),
    ("getitem", lambda lib, a: a[1:], lambda x: x[:, 1:]),
    ("getitem_list", lambda lib, a: a[[2, 0]], lambda x: x[:, [2, 0]]),
    ("view_flatten", lambda lib, a: a.view(3, 1).flatten(), lambda x: x),
    ("unsqueeze_T", lambda lib, a: a.unsqueeze(0).T.squeeze(1), lambda x: x),
    ("expand_sum", lambda lib, a: a.expand(2, 3).sum(0), lambda x: 2 * x),
    ("cat_unbatched", lambda lib, a: lib.cat([a, _t(lib, P)]), lambda x: np.concatenate([x, np.tile(P, (5, 1))], 1)),
    ("stack_unbatched", lambda lib, a: lib.stack([a, _t(lib, P)]), lambda x: np.stack([x, np.tile(P, (5, 1))], 1)),
    ("einsum", lambda lib, a: lib.einsum("i,ji->j", a, _t(lib, M)), lambda x: x @ M.T),
    ("outer_trace", lambda lib, a: lib.outer(a, a).trace(), lambda x: (x * x).sum(1)),
    ("addmv", lambda lib, a: a.addmv(_t(lib, M[:3]), a, beta=2), lambda x: 2 * x + x @ M[:3].T),
    ("addr", lambda lib, a: lib.outer(a, a).addr(a, _t(lib, P), alpha=3),
     lambda x: x[:, :, None] * x[:, None, :] + 3 * x[:, :, None] * P),
    ("inplace_chain", lambda lib, a: a.clone().mul_(2).add_(_t(lib, P)), lambda x: 2 * x + P),
    (
        "setitem",
        lambda lib, a: _setitem(a),
        lambda x: np.concatenate([np.full((5, 1), 5.0), x[:, 1:]], 1),
    ),
    ("F_linear", lambda lib, a: lib.nn.functional.linear(a, _t(lib, M)), lambda x: x @ M.T),
    ("F_mse_loss", lambda lib, a: lib.nn.functional.mse_loss(a, _t(lib, P)), lambda x: ((x - P) ** 2).mean(1)),
    (
        "F_cross_entropy",
        lambda lib, a: lib.nn.functional.cross_entropy(a.unsqueeze(0), lib.tensor([1])),
        lambda x: np.log(np.exp(x).sum(1)) - x[:, 1],
    ),
    (
        "F_normalize",
        lambda lib, a: lib.nn.functional.normalize(a, dim=0),
        lambda x: x / np.linalg.norm(x, axis=1)[:, None],
    ),
    ("F_pad", lambda lib, a: lib.nn.functional.pad(a, (1, 1)), lambda x: np.pad(x, ((0, 0), (1, 1)))),
    ("iterate", lambda lib, a: sum(a), lambda x: x.sum(1)),
    ("zeros_like", lambda lib, a: lib.zeros_like(a) + a, lambda x: x),
]


def _setitem(a):
    b = a.clone()
    b[0] = 5.0
    return b


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rule_against_numpy(lib, case):
    """Each op through its batching rule equals numpy on the whole batch, without the fallback."""
    _, fn, ref = case
    got = _no_fallback(lambda: lib.vmap(lambda a: fn(lib, a))(_t(lib, X)))
    np.testing.assert_allclose(_np(got), ref(X), rtol=1e-12, atol=1e-12)


def test_gradient_flows_through_vmap(lib):
    x = _t(lib, X).requires_grad_()
    w = _t(lib, M).requires_grad_()
    out = lib.vmap(lambda a: lib.tanh(w @ a).sum())(x)
    out.sum().backward()
    # d/dx sum_j tanh(w_j . x) = w^T (1 - tanh^2(w x)); d/dw = (1 - tanh^2) x^T summed over the batch
    t = np.tanh(X @ M.T)
    np.testing.assert_allclose(_np(x.grad), (1 - t**2) @ M, rtol=1e-12)
    np.testing.assert_allclose(_np(w.grad), (1 - t**2).T @ X, rtol=1e-12)


def test_nested_vmap_and_in_dims(lib):
    a = RNG.standard_normal((2, 3, 4))
    b = RNG.standard_normal(4)
    inner = lib.vmap(lambda u, v: u * v + u.sin(), in_dims=(0, None))
    got = _no_fallback(lambda: lib.vmap(inner, in_dims=(0, None))(_t(lib, a), _t(lib, b)))
    np.testing.assert_allclose(_np(got), a * b + np.sin(a), rtol=1e-12)
    got = lib.vmap(lib.vmap(lambda u: u.sum(), in_dims=1))(_t(lib, a))
    np.testing.assert_allclose(_np(got), a.sum(1), rtol=1e-12)
    got = lib.vmap(lambda u: u * 2, in_dims=1, out_dims=1)(_t(lib, a))
    np.testing.assert_allclose(_np(got), 2 * a, rtol=1e-12)
    got = lib.vmap(lambda d: d["a"] + d["b"], in_dims=({"a": 0, "b": None},))({"a": _t(lib, X), "b": _t(lib, P)})
    np.testing.assert_allclose(_np(got), X + P, rtol=1e-12)
    got = lib.vmap(lambda u: lib.ones(2, dtype=lib.float64))(_t(lib, X))  # an output that ignores the batch
    np.testing.assert_allclose(_np(got), np.ones((5, 2)))


def test_per_sample_gradients_of_a_linear_model(lib):
    """vmap(grad): per-sample gradients of 0.5 (w.x - y)^2, whose closed form is (w.x - y) x."""
    w = RNG.standard_normal(3)
    y = RNG.standard_normal(5)

    def loss(w, x, y):
        return 0.5 * (w @ x - y) ** 2

    per_sample = lib.vmap(lib.func.grad(loss), in_dims=(None, 0, 0))
    got = _no_fallback(lambda: per_sample(_t(lib, w), _t(lib, X), _t(lib, y)))
    np.testing.assert_allclose(_np(got), (X @ w - y)[:, None] * X, rtol=1e-12)


def test_per_sample_gradients_of_an_mlp_against_a_loop(lib):
    nn = lib.nn
    lib.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 4)).double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, target = _t(lib, X), lib.tensor([0, 1, 2, 3, 1])

    def loss(p, a, t):
        out = lib.func.functional_call(model, p, (a.unsqueeze(0),))
        return lib.nn.functional.cross_entropy(out, t.unsqueeze(0))

    got = _no_fallback(lambda: lib.vmap(lib.func.grad(loss), in_dims=(None, 0, 0))(params, x, target))
    for i in range(5):
        model.zero_grad()
        lib.nn.functional.cross_entropy(model(x[i : i + 1]), target[i : i + 1]).backward()
        for k, p in model.named_parameters():
            np.testing.assert_allclose(_np(got[k][i]), _np(p.grad), rtol=1e-10, atol=1e-12)


def test_jacobians_and_vmap_compose(lib):
    x = _t(lib, X)

    def f(a):
        return lib.sin(a) * a.sum()

    def jac(a):  # d(sin(a_i) s)/da_j = cos(a_i) s [i == j] + sin(a_i)
        return np.diag(np.cos(a) * a.sum()) + np.sin(a)[:, None]

    want = np.stack([jac(r) for r in X])
    for transform in (lib.func.jacrev, lib.func.jacfwd):
        np.testing.assert_allclose(_np(lib.vmap(transform(f))(x)), want, rtol=1e-10)
    # the Jacobian of the vmapped function is block diagonal
    full = _np(lib.func.jacrev(lib.vmap(f))(x))
    for i in range(5):
        np.testing.assert_allclose(full[i, :, i, :], want[i], rtol=1e-10)
    # hessian of sum(a^3) is diag(6a)
    np.testing.assert_allclose(
        _np(lib.vmap(lib.func.hessian(lambda a: (a**3).sum()))(x)), np.stack([np.diag(6 * r) for r in X]), rtol=1e-10
    )
    # vmap over the cotangents of one vjp gives the Jacobian's rows
    _, vjp_fn = lib.func.vjp(f, x[0])
    np.testing.assert_allclose(_np(lib.vmap(vjp_fn)(lib.eye(3, dtype=lib.float64))[0]), jac(X[0]), rtol=1e-10)
    # jvp inside vmap: J 1
    ones = lib.ones(3, dtype=lib.float64)
    got = lib.vmap(lambda a: lib.func.jvp(f, (a,), (ones,))[1])(x)
    np.testing.assert_allclose(_np(got), want.sum(2), rtol=1e-10)


def test_randomness(lib):
    zeros = lib.zeros(4, 3, dtype=lib.float64)
    with pytest.raises(RuntimeError, match="vmap: called random operation while in randomness error mode"):
        lib.vmap(lambda a: a + lib.rand(3, dtype=lib.float64))(zeros)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        lib.vmap(lambda a: lib.nn.functional.dropout(a, 0.5))(zeros)
    same = lib.vmap(lambda a: a + lib.rand(3, dtype=lib.float64), randomness="same")(zeros)
    assert (same[0] == same[1]).all()
    different = lib.vmap(lambda a: a + lib.rand(3, dtype=lib.float64), randomness="different")(zeros)
    assert not (different[0] == different[1]).all()
    ones = lib.ones(4, 50, dtype=lib.float64)
    for mode, equal in (("same", True), ("different", False)):
        out = lib.vmap(lambda a: lib.nn.functional.dropout(a, 0.5), randomness=mode)(ones)
        assert bool((out[0] == out[1]).all()) is equal
        assert set(np.unique(_np(out))) <= {0.0, 2.0}
    # dropout in eval mode is not random
    lib.vmap(lambda a: lib.nn.functional.dropout(a, 0.5, training=False))(zeros)


def test_errors(lib):
    zeros = lib.zeros(4, 3)
    with pytest.raises(RuntimeError, match=r"vmap: It looks like you're calling \.item\(\) on a Tensor"):
        lib.vmap(lambda a: a.sum().item())(zeros)
    with pytest.raises(RuntimeError, match="data-dependent control flow"):
        lib.vmap(lambda a: a if a.sum() > 0 else -a)(zeros)
    with pytest.raises(ValueError, match="can not return a BatchedTensor when out_dim is None"):
        lib.vmap(lambda a: a, out_dims=None)(zeros)


def test_batched_tensor_is_a_tensor_and_prints(lib, capsys):
    seen = []

    def f(a):
        seen.append((isinstance(a, lib.Tensor), tuple(a.shape), a.dim(), a.size(-1), a.numel()))
        print(a)
        return a

    lib.vmap(f)(lib.arange(6.0).reshape(2, 3))
    assert seen == [(True, (3,), 1, 3, 3)]
    assert capsys.readouterr().out.startswith("BatchedTensor(lvl=1, bdim=0, value=\n    tensor([[0., 1., 2.],")


def test_fallback_runs_a_loop_and_warns_once():
    import rustgrad
    from rustgrad.func import _batched

    _batched._warned.discard("aminmax")
    x = rustgrad.tensor(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            got = rustgrad.vmap(lambda a: a.aminmax().max)(x)  # aminmax has no rule: the loop
    messages = [str(w.message) for w in caught if "batching rule" in str(w.message)]
    assert len(messages) == 1 and "aminmax" in messages[0]
    np.testing.assert_allclose(got.numpy(), X.max(1), rtol=1e-12)


def test_readme_lists_the_ops_without_a_rule():
    """The README's list of Tensor methods without a batching rule is the rule table's complement."""
    import rustgrad
    from rustgrad.func import _batched

    rustgrad.vmap(lambda a: a)(rustgrad.ones(2))  # installs the rules
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = re.search(r"<!-- vmap-fallback -->(.*?)<!-- /vmap-fallback -->", readme, re.DOTALL)
    assert section, "README.md has no vmap fallback list"
    listed = set(re.findall(r"`([a-z_0-9]+)`", section.group(1)))
    assert listed == set(_batched.methods_without_rule())


def test_per_sample_gradients_of_a_cnn_against_a_loop(lib):
    """conv2d with a weight per sample (one grouped convolution), pooling, flatten, log_softmax, nll_loss."""
    nn, F = lib.nn, lib.nn.functional
    lib.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=1)
            self.fc = nn.Linear(3 * 3 * 3, 4)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv(x)), 2)
            return F.log_softmax(self.fc(lib.flatten(x, 1)), dim=1)

    model = Net().double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    data = _t(lib, RNG.standard_normal((4, 2, 6, 6)))
    target = lib.tensor([0, 3, 1, 2])

    def loss(p, x, t):
        return F.nll_loss(lib.func.functional_call(model, p, (x.unsqueeze(0),)), t.unsqueeze(0))

    got = _no_fallback(lambda: lib.vmap(lib.func.grad(loss), in_dims=(None, 0, 0))(params, data, target))
    for i in range(4):
        model.zero_grad()
        F.nll_loss(model(data[i : i + 1]), target[i : i + 1]).backward()
        for k, p in model.named_parameters():
            np.testing.assert_allclose(_np(got[k][i]), _np(p.grad), rtol=1e-10, atol=1e-12)


def test_model_ensembling(lib):
    """vmap over stacked parameters (stack_module_state), with a shared and with a per-model minibatch."""
    nn = lib.nn
    lib.manual_seed(1)
    models = [nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)).double() for _ in range(3)]
    conv_models = [nn.Conv1d(2, 3, 3).double() for _ in range(3)]
    x = _t(lib, RNG.standard_normal((4, 3)))
    xs = _t(lib, RNG.standard_normal((3, 4, 3)))
    signal = _t(lib, RNG.standard_normal((2, 7)))
    for group, inputs in ((models, (x, xs)), (conv_models, (signal,))):
        params, buffers = lib.func.stack_module_state(group)

        def fmodel(p, b, inp, base=group[0]):
            return lib.func.functional_call(base, (p, b), (inp,))

        got = _no_fallback(lib.vmap(fmodel, in_dims=(0, 0, None)), params, buffers, inputs[0])
        for i, m in enumerate(group):
            np.testing.assert_allclose(_np(got[i]), _np(m(inputs[0])), rtol=1e-12)
        if len(inputs) > 1:
            got = _no_fallback(lib.vmap(fmodel), params, buffers, inputs[1])
            for i, m in enumerate(group):
                np.testing.assert_allclose(_np(got[i]), _np(m(inputs[1][i])), rtol=1e-12)


def test_vectorized_jacobian_and_hessian(lib):
    """autograd.functional with vectorize=True (vmap over copies, one backward) against closed forms."""
    af = lib.autograd.functional
    x = _t(lib, P)
    # d(sin(x) * sum(x))_i / dx_j = cos(x_i) sum(x) [i == j] + sin(x_i)
    want = np.diag(np.cos(P) * P.sum()) + np.sin(P)[:, None]
    for vectorize in (False, True):
        np.testing.assert_allclose(_np(af.jacobian(lambda a: a.sin() * a.sum(), x, vectorize=vectorize)), want)
        # the Hessian of sum(x^3) is diag(6x)
        np.testing.assert_allclose(_np(af.hessian(lambda a: (a**3).sum(), x, vectorize=vectorize)), np.diag(6 * P))
    xg = x.clone().requires_grad_()
    jac = af.jacobian(lambda a: a.exp(), xg, create_graph=True, vectorize=True)
    (g,) = lib.autograd.grad(jac.sum(), xg)  # d/dx sum(diag(exp(x))) = exp(x)
    np.testing.assert_allclose(_np(g), np.exp(P), rtol=1e-12)


def test_batched_tangents():
    """make_dual with a batched tangent: one forward pass per batch of directions (beyond PyTorch,
    which has no batching rule for make_dual)."""
    import rustgrad as lib

    fwad = lib.autograd.forward_ad
    x = _t(lib, P)
    tangents = _t(lib, X)

    def push(t):
        with fwad.dual_level():
            y = (fwad.make_dual(x, t).sin()).sum()
            return fwad.unpack_dual(y).tangent

    got = _no_fallback(lib.vmap(push), tangents)
    np.testing.assert_allclose(_np(got), X @ np.cos(P), rtol=1e-12)  # d sum(sin(x)) . t = cos(x) . t


def test_autograd_grad_inside_vmap_gives_per_element_gradients():
    """Beyond PyTorch (which refuses it): autograd.grad of a batched output with respect to an
    unbatched tensor gives each element's own gradient."""
    import rustgrad

    x = rustgrad.tensor(X)
    w = rustgrad.tensor(P, requires_grad=True)
    got = rustgrad.vmap(lambda a: rustgrad.autograd.grad((a * w).sin().sum(), w)[0])(x)
    np.testing.assert_allclose(got.detach().numpy(), X * np.cos(X * P), rtol=1e-12)  # d sum(sin(a w))/dw


def test_vmap_on_threads_and_nothing_left_alive():
    """vmap levels are per thread: four threads computing per-sample gradients at once agree
    with one thread, and no graph node outlives the results."""
    import gc
    import threading

    import rustgrad

    nn = rustgrad.nn
    gc.collect()
    before = rustgrad.autograd.graph_stats()["live_nodes"]  # process-wide: other tests' graphs
    rustgrad.manual_seed(3)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, y = rustgrad.randn(16, 8), rustgrad.randn(16, 2)

    def loss(p, xi, yi):
        return ((rustgrad.func.functional_call(model, p, (xi.unsqueeze(0),)) - yi) ** 2).mean()

    per_sample = rustgrad.vmap(rustgrad.func.grad(loss), in_dims=(None, 0, 0))
    want = {k: v.numpy().copy() for k, v in per_sample(params, x, y).items()}
    errors = []

    def work():
        try:
            for _ in range(20):
                got = per_sample(params, x, y)
                for k, expected in want.items():
                    np.testing.assert_array_equal(got[k].numpy(), expected)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(repr(e))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    gc.collect()
    assert rustgrad.autograd.graph_stats()["live_nodes"] == before
