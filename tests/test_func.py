"""``torch.func``: grad, vjp, jvp, jacrev, jacfwd, hessian, vmap and functional_call.

Each test runs on rustgrad and, when it is installed, on PyTorch (the ``lib`` fixture). The
oracles are closed forms (affine, polynomial, softmax and Rosenbrock Jacobians and Hessians
worked by hand), numpy, or Python loops over the batch.
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


def _t(lib, values):
    return lib.tensor(values, dtype=lib.float64)


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a.detach().numpy() if hasattr(a, "detach") else a), b, rtol=tol, atol=tol)


# ----- grad, grad_and_value -----


def test_grad_of_a_polynomial_and_its_flags(lib):
    x = _t(lib, [0.5, -1.0, 2.0])
    g = lib.func.grad(lambda x: (x**3).sum())(x)
    _close(g, 3 * np.array([0.5, -1.0, 2.0]) ** 2)  # d sum(x^3)/dx = 3x^2
    assert not g.requires_grad
    # nested: d/dx sum(3x^2) = 6x
    _close(lib.func.grad(lambda x: lib.func.grad(lambda y: (y**3).sum())(x).sum())(x), 6 * np.array([0.5, -1.0, 2.0]))


def test_grad_argnums_has_aux_and_value(lib):
    x, y = _t(lib, [1.0, 2.0]), _t(lib, [3.0, 4.0])

    def f(x, y):
        return (x * y).sum(), {"prod": x * y}

    (gx, gy), aux = lib.func.grad(f, argnums=(0, 1), has_aux=True)(x, y)
    _close(gx, [3.0, 4.0])
    _close(gy, [1.0, 2.0])
    _close(aux["prod"], [3.0, 8.0])
    g, (value, aux) = lib.func.grad_and_value(f, argnums=1, has_aux=True)(x, y)
    _close(g, [1.0, 2.0])
    _close(value, 11.0)


def test_grad_composes_with_outer_autograd(lib):
    w = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
    x = _t(lib, [1.0, 1.0, 2.0])
    g = lib.func.grad(lambda x: (x**2 * w).sum())(x)  # 2 x w
    _close(g, [2.0, 4.0, 12.0])
    g.sum().backward()
    _close(w.grad, [2.0, 2.0, 4.0])  # d sum(2 x w)/dw = 2x


def test_grad_errors(lib):
    x = _t(lib, [1.0, 2.0])
    with pytest.raises(RuntimeError, match="Expected f\\(\\*args\\) to return a scalar Tensor, got tensor with 1 dims"):
        lib.func.grad(lambda x: x * 2)(x)
    with pytest.raises(RuntimeError, match="Expected f\\(\\*args\\) to return a Tensor, got <class 'int'>"):
        lib.func.grad(lambda x: 3)(x)
    with pytest.raises(RuntimeError, match="output of function f should be a tuple: \\(output, aux\\) if has_aux is True"):
        lib.func.grad(lambda x: x.sum(), has_aux=True)(x)
    with pytest.raises(RuntimeError, match="Got argnum=2, but only 1 positional inputs"):
        lib.func.grad(lambda x: x.sum(), argnums=2)(x)
    with pytest.raises(RuntimeError, match="argnums elements must be unique, got \\(0, 0\\)"):
        lib.func.grad(lambda x: x.sum(), argnums=(0, 0))(x)
    with pytest.raises(ValueError, match="Thing passed to transform API must be Tensor, got <class 'float'>"):
        lib.func.grad(lambda x: x.sum())(3.0)


# ----- vjp, jvp -----


def test_vjp_and_jvp_of_sin(lib):
    x = _t(lib, [0.1, 0.2, 0.3])
    out, vjp_fn = lib.func.vjp(lib.sin, x)
    _close(out, np.sin([0.1, 0.2, 0.3]))
    (ct,) = vjp_fn(_t(lib, [1.0, 2.0, 3.0]))
    _close(ct, np.cos([0.1, 0.2, 0.3]) * [1.0, 2.0, 3.0])  # v^T J = v cos x
    out, tangent = lib.func.jvp(lib.sin, (x,), (_t(lib, [1.0, 0.0, -1.0]),))
    _close(tangent, np.cos([0.1, 0.2, 0.3]) * [1.0, 0.0, -1.0])  # J v = cos x v
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        vjp_fn(_t(lib, [1.0, 2.0]))
    with pytest.raises(RuntimeError, match="Expected primals to be a tuple"):
        lib.func.jvp(lib.sin, x, (x,))
    with pytest.raises(RuntimeError, match="Expected primals and tangents to have the same python structure"):
        lib.func.jvp(lib.sin, (x,), x)


def test_jvp_of_a_function_of_two_inputs(lib):
    x, y = _t(lib, [1.0, 2.0]), _t(lib, [3.0, 5.0])
    # f = x^2 y: J (u, v) = 2 x y u + x^2 v
    _, t = lib.func.jvp(lambda a, b: a * a * b, (x, y), (_t(lib, [1.0, 1.0]), _t(lib, [0.5, 2.0])))
    _close(t, [2 * 1 * 3 * 1 + 1 * 0.5, 2 * 2 * 5 * 1 + 4 * 2.0])


# ----- Jacobians and Hessians against closed forms -----


def _rosenbrock(lib, x):
    return ((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def _rosenbrock_grad(x):
    g = np.zeros_like(x)
    g[:-1] += -2 * (1 - x[:-1]) - 400 * x[:-1] * (x[1:] - x[:-1] ** 2)
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def _rosenbrock_hessian(x):
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 2 - 400 * (x[i + 1] - x[i] ** 2) + 800 * x[i] ** 2
        h[i, i + 1] += -400 * x[i]
        h[i + 1, i] += -400 * x[i]
        h[i + 1, i + 1] += 200
    return h


@pytest.mark.parametrize("kind", ["affine", "polynomial", "softmax"])
def test_jacrev_and_jacfwd_agree_with_closed_forms(lib, kind):
    rng = np.random.default_rng(0)
    a_np, b_np, x_np = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=4)
    a, b, x = _t(lib, a_np.tolist()), _t(lib, b_np.tolist()), _t(lib, x_np.tolist())
    if kind == "affine":

        def f(x):
            return a @ x + b

        expected = a_np  # J = A
    elif kind == "polynomial":

        def f(x):
            return x**3 - 2 * x

        expected = np.diag(3 * x_np**2 - 2)
    else:

        def f(x):
            return lib.softmax(x, dim=0)

        s = np.exp(x_np) / np.exp(x_np).sum()
        expected = np.diag(s) - np.outer(s, s)  # J = diag(s) - s s^T
    _close(lib.func.jacrev(f)(x), expected)
    _close(lib.func.jacfwd(f)(x), expected)


def test_rosenbrock_gradient_jacobians_and_hessian(lib):
    x_np = np.array([0.5, -0.3, 1.2, 0.8])
    x = _t(lib, x_np.tolist())
    _close(lib.func.grad(lambda x: _rosenbrock(lib, x))(x), _rosenbrock_grad(x_np), 1e-9)
    _close(lib.func.jacrev(lambda x: _rosenbrock(lib, x))(x), _rosenbrock_grad(x_np), 1e-9)
    _close(lib.func.jacfwd(lambda x: _rosenbrock(lib, x))(x), _rosenbrock_grad(x_np), 1e-9)
    _close(lib.func.hessian(lambda x: _rosenbrock(lib, x))(x), _rosenbrock_hessian(x_np), 1e-9)
    _close(lib.func.jacrev(lib.func.jacrev(lambda x: _rosenbrock(lib, x)))(x), _rosenbrock_hessian(x_np), 1e-9)


def test_hessian_by_hand(lib):
    # f(x, y) = x^2 y + y^3: H = [[2y, 2x], [2x, 6y]]
    v = _t(lib, [1.5, -2.0])
    h = lib.func.hessian(lambda v: v[0] ** 2 * v[1] + v[1] ** 3)(v)
    _close(h, [[-4.0, 3.0], [3.0, -12.0]])


def test_jacrev_argnums_tuple_structure(lib):
    x, y = _t(lib, [1.0, 2.0]), _t(lib, [3.0, 4.0, 5.0])
    jx, jy = lib.func.jacrev(lambda x, y: x.sum() * y, argnums=(0, 1))(x, y)
    assert tuple(jx.shape) == (3, 2) and tuple(jy.shape) == (3, 3)
    _close(jx, np.array([[3.0, 3.0], [4.0, 4.0], [5.0, 5.0]]))  # d(sum(x) y_i)/dx_j = y_i
    _close(jy, 3.0 * np.eye(3))


# ----- vmap -----


def test_vmap_matches_a_loop(lib):
    rng = np.random.default_rng(1)
    a, b = _t(lib, rng.normal(size=(5, 3)).tolist()), _t(lib, rng.normal(size=(5, 3)).tolist())
    out = lib.vmap(lib.dot)(a, b)
    _close(out, [float(lib.dot(a[i], b[i])) for i in range(5)])
    out = lib.func.vmap(lambda x, y: x + y, in_dims=(1, None))(a, b[:, 0])
    _close(out, a.numpy().T + b.numpy()[:, 0])
    out0, out1 = lib.func.vmap(lambda x: (x, x.sum()), out_dims=(1, 0))(a)
    assert tuple(out0.shape) == (3, 5)
    _close(out1, a.numpy().sum(axis=1))


def test_vmap_errors(lib):
    x = _t(lib, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="Got in_dim=1 for some input, but that input is a Tensor of dimensionality 1"):
        lib.func.vmap(lib.sin, in_dims=1)(x)
    with pytest.raises(ValueError, match="Expected all tensors to have the same size in the mapped dimension, got sizes \\[3, 4\\]"):
        lib.func.vmap(lib.add)(x, _t(lib, [1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="must only return Tensors, got type <class 'float'>"):
        lib.func.vmap(lambda x: 2.0)(x)
    with pytest.raises(ValueError, match="We cannot vmap over non-Tensor arguments"):
        lib.func.vmap(lib.sin)(5)
    with pytest.raises(ValueError, match="got no inputs"):
        lib.func.vmap(lib.sin)()
    with pytest.raises(ValueError, match="expected `in_dims` to be int or a \\(potentially nested\\) tuple"):
        lib.func.vmap(lib.sin, in_dims=[0])(x)


def test_nested_vmap_of_jacrev(lib):
    rng = np.random.default_rng(2)
    xs_np = rng.normal(size=(4, 3))
    xs = _t(lib, xs_np.tolist())
    jac = lib.func.vmap(lib.func.jacrev(lambda x: x.sin() * x.sum()))(xs)
    for i, x in enumerate(xs_np):
        # d(sin x_i * S)/dx_j = cos x_i S [i == j] + sin x_i
        expected = np.diag(np.cos(x) * x.sum()) + np.sin(x)[:, None]
        _close(jac[i], expected)


def test_per_sample_gradients(lib):
    lib.manual_seed(0)
    model = lib.nn.Sequential(lib.nn.Linear(3, 4, dtype=lib.float64), lib.nn.Tanh(), lib.nn.Linear(4, 2, dtype=lib.float64))
    params = {k: v.detach() for k, v in model.named_parameters()}
    data = lib.randn(6, 3, dtype=lib.float64)
    targets = lib.randn(6, 2, dtype=lib.float64)

    def loss(params, x, y):
        out = lib.func.functional_call(model, params, (x.unsqueeze(0),))
        return ((out - y.unsqueeze(0)) ** 2).mean()

    per_sample = lib.func.vmap(lib.func.grad(loss), in_dims=(None, 0, 0))(params, data, targets)
    for i in range(6):
        model.zero_grad()
        ((model(data[i : i + 1]) - targets[i : i + 1]) ** 2).mean().backward()
        for name, p in model.named_parameters():
            _close(per_sample[name][i], p.grad.numpy())


def test_functional_call_leaves_the_module_alone(lib):
    model = lib.nn.Linear(3, 2, dtype=lib.float64)
    before = model.weight.detach().clone()
    zeros = {k: lib.zeros_like(v) for k, v in model.named_parameters()}
    _close(lib.func.functional_call(model, zeros, (lib.ones(1, 3, dtype=lib.float64),)), [[0.0, 0.0]])
    _close(model.weight, before.numpy())
    out = lib.func.functional_call(
        model, ({"weight": lib.zeros(2, 3, dtype=lib.float64)}, {"bias": lib.ones(2, dtype=lib.float64)}),
        lib.ones(1, 3, dtype=lib.float64),
    )
    _close(out, [[1.0, 1.0]])
    with pytest.raises(RuntimeError, match="Unexpected key\\(s\\): 'foo'"):
        lib.func.functional_call(model, {"foo": lib.zeros(1)}, (lib.ones(1, 3),), strict=True)
