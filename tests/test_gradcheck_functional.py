"""The public ``autograd.gradcheck`` / ``gradgradcheck`` and ``autograd.functional`` (jacobian,
hessian, vjp, jvp, hvp, vhp): verdicts on right and wrong gradients, messages, result structures,
and values against closed forms computed with numpy.

The file only uses the ``rustgrad`` name, so it can be pointed at PyTorch to check that the
expectations are PyTorch's: ``sys.modules['rustgrad'] = torch`` before running pytest. The few
tests of rustgrad-only behaviour (its NotImplementedError for forward-mode/vmap checks, the extra
places GradcheckError is exposed) are skipped there.
"""

import sys
import warnings

import numpy as np
import pytest
import rustgrad as torch
from test_ops_gradcheck import CASES, IDS

IS_PYTORCH = torch.__name__ == "torch"
rustgrad_only = pytest.mark.skipif(IS_PYTORCH, reason="rustgrad-specific behaviour")

gradcheck = torch.autograd.gradcheck
gradgradcheck = torch.autograd.gradgradcheck
F = torch.autograd.functional
# torch.autograd.gradcheck is the function; its module is still importable under the same name.
GradcheckError = sys.modules[gradcheck.__module__].GradcheckError


def f64(values, requires_grad=False):
    return torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)


def leaf(values):
    return f64(values, requires_grad=True)


def values_of(t):
    return np.array(t.detach().numpy(), dtype=np.float64)


def assert_close(t, expected, atol=1e-12):
    assert isinstance(t, torch.Tensor)
    expected = np.asarray(expected, dtype=np.float64)
    assert tuple(t.shape) == expected.shape
    np.testing.assert_allclose(values_of(t), expected, rtol=1e-10, atol=atol)


_constants = np.random.default_rng(1234)
A = _constants.standard_normal((3, 4))
M = _constants.standard_normal((4, 4))
X0 = np.array([0.7, -1.2, 0.4, 1.9])


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


# ===================== gradcheck / gradgradcheck =====================


def test_gradcheck_passes_on_correct_functions(rng):
    x, y = leaf(rng.standard_normal((2, 3))), leaf(rng.uniform(0.5, 2.0, (3,)))
    assert gradcheck(lambda a: (a.sin() * a.exp()).sum(1), x) is True
    assert gradcheck(lambda a, b: (a / b).tanh() + a * b.log(), (x, y)) is True
    assert gradcheck(lambda a, b: a @ b, (x, leaf(rng.standard_normal((3, 2))))) is True
    # a list of inputs is accepted like a tuple
    assert gradcheck(lambda a, b: a * b, [x, y]) is True


def test_gradcheck_passes_non_tensor_arguments_through():
    x = leaf([0.5, -1.0, 2.0])
    constant = f64([1.0, 2.0, 3.0])  # a tensor that does not require grad is not differentiated
    seen = []

    def f(a, k, c, name):
        seen.append((k, name))
        return (a * k + c).sin()

    assert gradcheck(f, (x, 3, constant, "scale")) is True
    assert set(seen) == {(3, "scale")}


def test_gradcheck_tuple_outputs_and_outputs_without_grad():
    x, y = leaf([0.5, -1.0, 2.0]), leaf([1.5, 0.25, -0.5])
    assert gradcheck(lambda a, b: (a * b, a.exp().sum(), b ** 2), (x, y)) is True
    # outputs that do not require grad are not checked
    assert gradcheck(lambda a: (a * 2, a.detach() * 5), x) is True
    assert gradcheck(lambda a: [a.cos(), a.sum()], x) is True


def test_gradcheck_leaves_inputs_untouched():
    x = leaf([0.5, -1.0, 2.0])
    version = x._version
    assert gradcheck(lambda a: a.exp() * a, x)
    np.testing.assert_array_equal(values_of(x), [0.5, -1.0, 2.0])
    assert x._version == version
    assert x.grad is None and x.requires_grad and x.is_leaf


def test_gradcheck_detects_detached_factor():
    # a * a.detach() has value a**2 but analytical gradient a instead of 2a
    x = leaf([0.5, -1.0, 2.0])
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda a: a * a.detach(), x)
    assert isinstance(info.value, RuntimeError)
    assert str(info.value) == (
        "Jacobian mismatch for output 0 with respect to input 0,\n"
        "numerical:tensor([[ 1.0000,  0.0000,  0.0000],\n"
        "        [ 0.0000, -2.0000,  0.0000],\n"
        "        [ 0.0000,  0.0000,  4.0000]], dtype=torch.float64)\n"
        "analytical:tensor([[ 0.5000,  0.0000,  0.0000],\n"
        "        [-0.0000, -1.0000, -0.0000],\n"  # 0 * (-1.0): the sign of zero is kept
        "        [ 0.0000,  0.0000,  2.0000]], dtype=torch.float64)\n"
    )
    assert gradcheck(lambda a: a * a.detach(), x, raise_exception=False) is False


def test_gradcheck_detects_gradient_changed_by_hook():
    def tripled_gradient(a):
        y = a * 2
        y.register_hook(lambda g: g if g is None else g * 3)
        return y

    x = leaf([0.5, -1.0, 2.0])
    with pytest.raises(GradcheckError, match=r"^Jacobian mismatch for output 0 with respect to input 0,\n"):
        gradcheck(tripled_gradient, x)
    assert gradcheck(tripled_gradient, x, raise_exception=False) is False


def test_gradcheck_names_the_wrong_output_and_input():
    x, y = leaf([0.5, -1.0]), leaf([2.0, 3.0])
    with pytest.raises(GradcheckError, match="^Jacobian mismatch for output 1 with respect to input 1,"):
        gradcheck(lambda a, b: (a * b, a + b * b.detach()), (x, y))
    # input indices count the inputs that require grad only
    with pytest.raises(GradcheckError, match="^Jacobian mismatch for output 0 with respect to input 1,"):
        gradcheck(lambda a, c, b: a * c + b * b.detach(), (x, f64([1.0, 1.0]), y))


def test_gradcheck_tolerances_decide_the_verdict():
    # analytical gradient off by 0.1 %: rejected by a tight rtol, accepted by a loose one
    def slightly_wrong(a):
        y = a * 1.0
        y.register_hook(lambda g: g if g is None else g * 1.001)
        return y

    x = leaf([1.0, 2.0])
    assert gradcheck(slightly_wrong, x, rtol=1e-4, raise_exception=False) is False
    assert gradcheck(slightly_wrong, x, rtol=1e-2) is True
    assert gradcheck(slightly_wrong, x, rtol=0.0, atol=1e-2) is True


def test_gradcheck_detects_backward_not_scaled_by_grad_output():
    # right for the one-hot grad_outputs of the Jacobian, wrong (non-zero) for a zero grad_output
    def f(a):
        y = a * 2
        y.register_hook(lambda g: g if g is None or bool(g.abs().sum() > 0) else g + 1)
        return y

    with pytest.raises(GradcheckError, match="^backward not multiplied by grad_output$"):
        gradcheck(f, leaf([0.5, -1.0, 2.0]))


def test_gradcheck_detects_nondeterministic_backward():
    def noisy(a):
        y = a * 2
        y.register_hook(lambda g: g if g is None else g * (1 + 1e-9 * torch.rand(g.shape, dtype=g.dtype)))
        return y

    x = leaf([0.5, -1.0, 2.0])
    with pytest.raises(GradcheckError, match="^Backward is not reentrant"):
        gradcheck(noisy, x)
    assert gradcheck(noisy, x, nondet_tol=1e-6) is True


def test_gradcheck_without_differentiable_outputs():
    x = leaf([0.5, -1.0, 2.0])
    # piecewise constant: numerical Jacobian is zero, nothing to check
    assert gradcheck(lambda a: (a > 0).double(), x) is True
    with pytest.raises(GradcheckError, match="^Numerical gradient for function expected to be zero$"):
        gradcheck(lambda a: a.detach() * 2, x)


def test_gradcheck_argument_errors():
    with pytest.raises(ValueError, match="gradcheck expects at least one input tensor to require gradient"):
        gradcheck(lambda a: a * 2, f64([1.0, 2.0]))
    overlapping = torch.zeros(2, 1, dtype=torch.float64).expand(2, 3).requires_grad_()
    with pytest.raises(RuntimeError, match="^The 0th input has a dimension with stride 0. gradcheck only supports"):
        gradcheck(lambda a: a * 2, overlapping)
    with pytest.raises(AssertionError, match="Expected at least one of check_forward_ad or check_backward_ad"):
        gradcheck(lambda a: a, leaf([1.0]), check_backward_ad=False)
    with pytest.raises(AssertionError, match="Expected at least one of check_fwd_over_rev or check_rev_over_rev"):
        gradgradcheck(lambda a: a, leaf([1.0]), check_rev_over_rev=False)


def test_gradcheck_warns_about_single_precision():
    x32 = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    message = (
        "Input #1 requires gradient and is not a double precision floating point or complex. This "
        "check will likely fail if all the inputs are not of double precision floating point or complex. "
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert gradcheck(lambda a, b: a * b.double(), (leaf([1.0, 2.0, 3.0]), x32), eps=1e-2, atol=1e-2)
    assert [str(w.message) for w in caught if w.category is UserWarning] == [message]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for float64 inputs
        assert gradcheck(lambda a: a * 2, leaf([1.0, 2.0]))


def test_gradcheck_fast_mode_gives_the_same_verdicts():
    x = leaf([0.5, -1.0, 2.0])
    assert gradcheck(lambda a: a.sin() * a, x, fast_mode=True) is True
    with pytest.raises(GradcheckError, match="^Jacobian mismatch for output 0 with respect to input 0,\n"):
        gradcheck(lambda a: a * a.detach(), x, fast_mode=True)
    assert gradgradcheck(lambda a: a.sin() * a, x, fast_mode=True) is True


def test_gradgradcheck_passes_on_correct_functions(rng):
    torch.manual_seed(0)
    x, y = leaf(rng.standard_normal((2, 3))), leaf(rng.uniform(0.5, 2.0, (3,)))
    assert gradgradcheck(lambda a: (a.sin() * a.exp()).sum(1), x) is True
    assert gradgradcheck(lambda a, b: ((a / b).tanh(), a * b.log()), (x, y)) is True
    assert gradgradcheck(lambda a, k: (a * k).sigmoid(), (x, 2.5)) is True
    assert gradgradcheck(lambda a: a.exp(), x, gen_non_contig_grad_outputs=True) is True


def test_gradgradcheck_with_given_grad_outputs():
    x = leaf([0.5, -1.0, 2.0])
    fixed = f64([1.0, -2.0, 0.5])  # not requiring grad: only the inputs are differentiated
    assert gradgradcheck(lambda a: a ** 3, x, fixed) is True
    assert gradgradcheck(lambda a: a ** 3, x, (leaf([1.0, -2.0, 0.5]),)) is True


def test_gradgradcheck_detects_gradient_independent_of_grad_output():
    # first derivatives are right, but the gradient no longer depends on grad_output
    def f(a):
        out = a ** 3
        out.register_hook(lambda g: g if g is None else g.detach())
        return out

    x = leaf([0.5, -1.0, 2.0])
    assert gradcheck(f, x) is True
    with pytest.raises(GradcheckError, match="^Jacobian mismatch for output 0 with respect to input 1,\n"):
        gradgradcheck(f, x)
    assert gradgradcheck(f, x, raise_exception=False) is False


def test_gradgradcheck_detects_wrong_second_derivative():
    # value a**3 and gradient 3 a**2 g, but that gradient is built from a detached a, so its own
    # derivative with respect to a is 0 instead of 6 a g
    def cube_with_constant_slope(a):
        frozen = a.detach()
        return frozen ** 3 + (a - frozen) * 3 * frozen ** 2

    x = leaf([0.5, -1.0, 2.0])
    assert gradcheck(cube_with_constant_slope, x) is True
    with pytest.raises(GradcheckError, match="^Jacobian mismatch for output 0 with respect to input 0,\n"):
        gradgradcheck(cube_with_constant_slope, x)
    assert gradgradcheck(lambda a: a ** 3, x) is True


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_public_gradcheck_every_op(case):
    rng = np.random.default_rng(11)
    inputs = tuple(leaf(gen(rng)) for gen in case.inputs)
    assert gradcheck(case.fn, inputs) is True


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_public_gradgradcheck_every_op(case):
    torch.manual_seed(0)
    rng = np.random.default_rng(12)
    inputs = tuple(leaf(gen(rng)) for gen in case.inputs)
    assert gradgradcheck(case.fn, inputs) is True


def test_forward_and_batched_checks():
    x = leaf([1.0, 2.0])
    y = leaf([0.5, -1.5])
    for flags in ({"check_forward_ad": True}, {"check_batched_grad": True},
                  {"check_forward_ad": True, "check_batched_forward_grad": True},
                  {"check_forward_ad": True, "check_backward_ad": False}):
        assert gradcheck(lambda a, b: (a * b).sin(), (x, y), **flags) is True
    for flags in ({"check_fwd_over_rev": True}, {"check_batched_grad": True}):
        assert gradgradcheck(lambda a, b: (a * b).sin(), (x, y), **flags) is True


def test_forward_check_catches_a_wrong_jvp():
    class WrongJvp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_forward(a)
            return a * a

        @staticmethod
        def backward(ctx, g):
            raise AssertionError("not used")

        @staticmethod
        def jvp(ctx, t):
            return 3 * t  # should be 2 a t

    with pytest.raises(GradcheckError, match="Jacobian computed with forward mode mismatch for output 0 with respect to input 0"):
        gradcheck(WrongJvp.apply, (leaf([1.0, 2.0]),), check_forward_ad=True, check_backward_ad=False,
                  check_undefined_grad=False)


@rustgrad_only
def test_gradcheck_error_is_exposed_like_pytorch_and_more():
    import rustgrad.autograd.gradcheck as by_import  # the function, as in PyTorch

    assert by_import is torch.autograd.gradcheck
    assert torch.autograd.GradcheckError is GradcheckError
    assert torch.autograd.gradcheck.GradcheckError is GradcheckError
    assert issubclass(GradcheckError, RuntimeError)


# ===================== jacobian =====================


def test_jacobian_elementwise_cube_is_diagonal():
    jac = F.jacobian(lambda a: a ** 3, f64(X0))
    assert_close(jac, np.diag(3 * X0 ** 2))
    assert not jac.requires_grad


def test_jacobian_linear_map_is_the_matrix():
    matrix = f64(A)
    assert_close(F.jacobian(lambda a: matrix @ a, f64(X0)), A)


def test_jacobian_shapes_are_output_shape_plus_input_shape(rng):
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    jac = F.jacobian(lambda a: a @ f64(w), f64(x))
    expected = np.einsum("ik,lj->ijkl", np.eye(2), w)  # d(x@w)[i,j] / dx[k,l] = delta_ik w[l,j]
    assert_close(jac, expected)
    # 0-d input and output
    assert_close(F.jacobian(lambda s: s.sin() * s, f64(0.3)), np.cos(0.3) * 0.3 + np.sin(0.3))


def test_jacobian_tuple_inputs_scalar_output(rng):
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    jac = F.jacobian(lambda a, b: (a * b).sum(), (f64(x), f64(y)))
    assert isinstance(jac, tuple) and len(jac) == 2
    assert_close(jac[0], y)
    assert_close(jac[1], x)


def test_jacobian_tuple_outputs_single_input():
    jac = F.jacobian(lambda a: (a.sin(), a.sum()), f64(X0))
    assert isinstance(jac, tuple) and len(jac) == 2
    assert_close(jac[0], np.diag(np.cos(X0)))
    assert_close(jac[1], np.ones(4))


def test_jacobian_tuple_outputs_tuple_inputs_is_nested(rng):
    x, y = rng.standard_normal(3), rng.standard_normal(2)
    jac = F.jacobian(lambda a, b: (a * b.sum(), (a ** 2).sum() * b), (f64(x), f64(y)))
    assert isinstance(jac, tuple) and all(isinstance(row, tuple) and len(row) == 2 for row in jac)
    assert_close(jac[0][0], np.eye(3) * y.sum())
    assert_close(jac[0][1], np.outer(x, np.ones(2)))
    assert_close(jac[1][0], np.outer(y, 2 * x))
    assert_close(jac[1][1], np.eye(2) * (x ** 2).sum())
    # a one-element tuple is still a tuple
    single = F.jacobian(lambda a: (a * 2,), (f64(x),))
    assert isinstance(single, tuple) and isinstance(single[0], tuple)
    assert_close(single[0][0], 2 * np.eye(3))


def test_jacobian_independent_output_is_zero_or_strict_error():
    x, y = f64([1.0, 2.0]), f64([3.0, 4.0, 5.0])
    jac = F.jacobian(lambda a, b: a * 2, (x, y))
    assert_close(jac[0], 2 * np.eye(2))
    assert_close(jac[1], np.zeros((2, 3)))
    with pytest.raises(RuntimeError) as info:
        F.jacobian(lambda a, b: a * 2, (x, y), strict=True)
    assert str(info.value) == (
        "Output 0 of the user-provided function is independent of input 1. This is not allowed in strict mode."
    )
    with pytest.raises(RuntimeError, match="^Output 0 of the user-provided function does not require gradients."):
        F.jacobian(lambda a: f64([1.0, 2.0]), x, strict=True)
    assert_close(F.jacobian(lambda a: f64([1.0, 2.0]), x), np.zeros((2, 2)))


def test_jacobian_create_graph_is_differentiable(rng):
    x = leaf(X0)
    jac = F.jacobian(lambda a: a ** 3, x, create_graph=True)
    assert jac.requires_grad
    assert_close(jac, np.diag(3 * X0 ** 2))
    (second,) = torch.autograd.grad(jac.sum(), x)
    assert_close(second, 6 * X0)
    # five rows (not a power of two) and rows that are matrices
    a = rng.standard_normal(5)
    y = leaf(a)
    jac = F.jacobian(lambda t: t.sin() * t.sum(), y, create_graph=True)
    assert_close(jac, np.diag(np.cos(a) * a.sum()) + np.sin(a)[:, None])
    (second,) = torch.autograd.grad(jac.sum(), y)
    assert_close(second, np.cos(a).sum() - a.sum() * np.sin(a) + 5 * np.cos(a))
    w = rng.standard_normal((3, 2))
    wt = leaf(w)
    jac = F.jacobian(lambda t: (t ** 2).sum(0), wt, create_graph=True)
    assert_close(jac, 2 * np.einsum("ik,jk->jik", w, np.eye(2)))
    (second,) = torch.autograd.grad((jac * f64(np.arange(12.0).reshape(2, 3, 2))).sum(), wt)
    assert_close(second, 2 * np.array([[0.0, 7.0], [2.0, 9.0], [4.0, 11.0]]))
    # without create_graph the result is detached, and so are the inputs the function saw
    assert not F.jacobian(lambda a: a ** 3, x).requires_grad
    with pytest.raises(RuntimeError, match="^The jacobian of the user-provided function is independent of input 0."):
        F.jacobian(lambda a: a * 2, x, create_graph=True, strict=True)


def test_jacobian_vectorize_and_strategy_options():
    x = f64(X0)
    assert_close(F.jacobian(lambda a: a.exp() * a, x, vectorize=True), np.diag(np.exp(X0) * (1 + X0)))
    assert_close(F.jacobian(lambda a: a.exp() * a, x, vectorize=True, strategy="forward-mode"),
                 np.diag(np.exp(X0) * (1 + X0)))
    with pytest.raises(RuntimeError, match="`strict=True` and `vectorized=True` are not supported together"):
        F.jacobian(lambda a: a * 2, x, vectorize=True, strict=True)
    with pytest.raises(NotImplementedError, match="only implemented for `vectorize=True`"):
        F.jacobian(lambda a: a * 2, x, strategy="forward-mode")
    with pytest.raises(AssertionError, match='Expected strategy to be either "forward-mode" or "reverse-mode"'):
        F.jacobian(lambda a: a * 2, x, strategy="sideways")


def test_functional_rejects_non_tensor_inputs():
    with pytest.raises(TypeError) as info:
        F.jacobian(lambda a: a, [f64([1.0])])
    assert str(info.value) == (
        "The inputs given to jacobian must be either a Tensor or a tuple of Tensors but the given inputs "
        "has type <class 'list'>."
    )
    with pytest.raises(TypeError, match="but the value at index 1 has type <class 'float'>"):
        F.vjp(lambda a, b: a, (f64([1.0]), 2.0), f64([1.0]))


# ===================== hessian =====================


def test_hessian_of_quadratic_form():
    matrix = f64(M)
    hess = F.hessian(lambda a: a @ matrix @ a, f64(X0))
    assert_close(hess, M + M.T)


def test_hessian_of_rosenbrock():
    def rosenbrock(a):
        return (100 * (a[1:] - a[:-1] ** 2) ** 2 + (1 - a[:-1]) ** 2).sum()

    x = X0
    expected = np.zeros((4, 4))
    for i in range(3):
        expected[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        expected[i + 1, i + 1] += 200
        expected[i, i + 1] = expected[i + 1, i] = -400 * x[i]
    assert_close(F.hessian(rosenbrock, f64(x)), expected, atol=1e-9)


def test_hessian_tuple_inputs_blocks(rng):
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    hess = F.hessian(lambda a, b: (a ** 2 * b).sum(), (f64(x), f64(y)))
    assert isinstance(hess, tuple) and all(isinstance(row, tuple) and len(row) == 2 for row in hess)
    assert_close(hess[0][0], np.diag(2 * y))
    assert_close(hess[0][1], np.diag(2 * x))
    assert_close(hess[1][0], np.diag(2 * x))
    assert_close(hess[1][1], np.zeros((3, 3)))
    # blocks of differently shaped inputs: shape inputs[i].shape + inputs[j].shape
    w = rng.standard_normal((2, 3))
    blocks = F.hessian(lambda a, b: (b @ a).sin().sum(), (f64(x), f64(w)))
    assert [tuple(b.shape) for row in blocks for b in row] == [(3, 3), (3, 2, 3), (2, 3, 3), (2, 3, 2, 3)]
    s = np.sin(w @ x)  # d2/dx2 sum sin(w x) = -sum_i s_i w_i w_i^T
    assert_close(blocks[0][0], -(w.T * s) @ w)


def test_hessian_create_graph_and_errors():
    x = leaf(X0)
    hess = F.hessian(lambda a: (a ** 4).sum(), x, create_graph=True)
    assert hess.requires_grad
    assert_close(hess, np.diag(12 * X0 ** 2))
    (third,) = torch.autograd.grad(hess.sum(), x)
    assert_close(third, 24 * X0)
    with pytest.raises(RuntimeError, match="^The Tensor returned by the function given to hessian should contain a single element$"):
        F.hessian(lambda a: a ** 2, x)
    with pytest.raises(RuntimeError, match="^The function given to hessian should return a single Tensor$"):
        F.hessian(lambda a: (a.sum(),), x)
    with pytest.raises(RuntimeError, match="^While computing the hessian, found that the jacobian of the user-provided function"):
        F.hessian(lambda a: (a * 2).sum(), x, strict=True)
    assert_close(F.hessian(lambda a: (a * 2).sum(), x), np.zeros((4, 4)))


# ===================== vjp / jvp =====================


def test_vjp_and_jvp_of_matrix_product(rng):
    matrix, x = f64(A), f64(X0)
    u, v = rng.standard_normal(3), rng.standard_normal(4)
    out, product = F.vjp(lambda a: matrix @ a, x, f64(u))
    assert_close(out, A @ X0)
    assert_close(product, A.T @ u)
    out, product = F.jvp(lambda a: matrix @ a, x, f64(v))
    assert_close(out, A @ X0)
    assert_close(product, A @ v)
    assert not out.requires_grad and not product.requires_grad


def test_vjp_and_jvp_of_nonlinear_function_match_the_jacobian(rng):
    x, v_in, v_out = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4)
    jac = np.diag(np.cos(x)) * x + np.diag(np.sin(x))  # d/dx (x sin x), elementwise
    _, product = F.vjp(lambda a: a * a.sin(), f64(x), f64(v_out))
    assert_close(product, v_out @ jac)
    _, product = F.jvp(lambda a: a * a.sin(), f64(x), f64(v_in))
    assert_close(product, jac @ v_in)


def test_vjp_jvp_structure_follows_arguments():
    x, y = f64([1.0, 2.0]), f64([3.0, -1.0])
    ones = f64([1.0, 1.0])
    # tensor in, tuple out
    out, product = F.vjp(lambda a: (a * 2, a ** 2), x, (ones, ones))
    assert isinstance(out, tuple) and isinstance(product, torch.Tensor)
    assert_close(product, 2 + 2 * np.array([1.0, 2.0]))
    # tuple in, tensor out
    out, product = F.vjp(lambda a, b: a * b, (x, y), ones)
    assert isinstance(out, torch.Tensor) and isinstance(product, tuple)
    assert_close(product[0], [3.0, -1.0])
    assert_close(product[1], [1.0, 2.0])
    # jvp: products are shaped like the outputs
    out, product = F.jvp(lambda a, b: (a * b, (a + b).sum()), (x, y), (ones, ones))
    assert isinstance(out, tuple) and isinstance(product, tuple)
    assert_close(product[0], [4.0, 1.0])
    assert_close(product[1], 4.0)
    out, product = F.jvp(lambda a: a.exp(), x, ones)
    assert isinstance(product, torch.Tensor)
    # v may be omitted for a single-element output (vjp) or input (jvp)
    out, product = F.vjp(lambda a: (a ** 2).sum(), x)
    assert_close(product, [2.0, 4.0])
    out, product = F.jvp(lambda s: s ** 3, f64(2.0))
    assert_close(product, 12.0)


def test_vjp_jvp_zeros_and_strict_errors():
    x, y = f64([1.0, 2.0]), f64([3.0, 4.0])
    _, product = F.vjp(lambda a, b: a * 2, (x, y), f64([1.0, 1.0]))
    assert_close(product[1], [0.0, 0.0])
    with pytest.raises(RuntimeError) as info:
        F.vjp(lambda a, b: a * 2, (x, y), f64([1.0, 1.0]), strict=True)
    assert str(info.value) == (
        "The output of the user-provided function is independent of input 1. This is not allowed in strict mode."
    )
    _, product = F.jvp(lambda a: (a * 2, f64([5.0])), x, f64([1.0, 1.0]))
    assert_close(product[1], [0.0])
    with pytest.raises(RuntimeError, match="^Output 1 of the user-provided function does not require gradients."):
        F.jvp(lambda a: (a * 2, f64([5.0])), x, f64([1.0, 1.0]), strict=True)


def test_vjp_jvp_v_validation():
    x = f64([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError) as info:
        F.vjp(lambda a: a * 2, x, f64([1.0, 2.0]))
    assert str(info.value) == "v has invalid size: should be torch.Size([3]) but got torch.Size([2])."
    with pytest.raises(RuntimeError, match=r"^Entry 1 in v has invalid size: should be torch.Size\(\[3\]\)"):
        F.jvp(lambda a, b: a * b, (x, x), (x, f64([1.0])))
    with pytest.raises(RuntimeError, match="^v is a tuple of invalid length: should be 2 but got 1.$"):
        F.jvp(lambda a, b: a * b, (x, x), (x,))
    with pytest.raises(RuntimeError, match="^The vector v can only be None if the user-provided function returns"):
        F.vjp(lambda a: a * 2, x)
    with pytest.raises(RuntimeError, match="^The vector v can only be None if the input to the user-provided function"):
        F.jvp(lambda a: a * 2, x)


def test_vjp_jvp_create_graph_is_differentiable():
    x, v = leaf(X0), f64([1.0, -1.0, 0.5, 2.0])
    out, product = F.vjp(lambda a: a ** 3, x, v, create_graph=True)
    assert out.requires_grad and product.requires_grad
    (second,) = torch.autograd.grad(product.sum(), x)  # d/dx sum(3 x^2 v) = 6 x v
    assert_close(second, 6 * X0 * values_of(v))
    out, product = F.jvp(lambda a: a ** 3, x, v, create_graph=True)
    assert product.requires_grad
    (second,) = torch.autograd.grad(product.sum(), x)
    assert_close(second, 6 * X0 * values_of(v))


# ===================== hvp / vhp =====================


def _quartic(a):
    return a @ f64(M) @ a + (a ** 4).sum()


def _quartic_hessian(x):
    return M + M.T + np.diag(12 * x ** 2)


def test_hvp_and_vhp_match_the_hessian(rng):
    v = rng.standard_normal(4)
    hess = _quartic_hessian(X0)
    out, product = F.hvp(_quartic, f64(X0), f64(v))
    assert_close(out, X0 @ M @ X0 + (X0 ** 4).sum())
    assert_close(product, hess @ v, atol=1e-10)
    out, product = F.vhp(_quartic, f64(X0), f64(v))
    assert_close(product, v @ hess, atol=1e-10)
    assert_close(F.hessian(_quartic, f64(X0)), hess, atol=1e-10)


def test_hvp_vhp_tuple_inputs_and_zeros(rng):
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    vx, vy = rng.standard_normal(3), rng.standard_normal(3)
    # f = sum(x^2 y): H = [[diag(2y), diag(2x)], [diag(2x), 0]]
    for fn in (F.hvp, F.vhp):
        out, (px, py) = fn(lambda a, b: (a ** 2 * b).sum(), (f64(x), f64(y)), (f64(vx), f64(vy)))
        assert_close(out, (x ** 2 * y).sum())
        assert_close(px, 2 * y * vx + 2 * x * vy)
        assert_close(py, 2 * x * vx)
        # an input the gradient does not depend on gives zeros, or an error in strict mode
        _, (px, pc) = fn(lambda a, c: (a ** 3).sum() + c.sum(), (f64(x), f64(y)), (f64(vx), f64(vy)))
        assert_close(px, 6 * x * vx)
        assert_close(pc, np.zeros(3))
    with pytest.raises(RuntimeError, match="^While computing the hessian, found that the jacobian of the user"):
        F.vhp(lambda a, c: (a ** 3).sum() + c.sum(), (f64(x), f64(y)), (f64(vx), f64(vy)), strict=True)
    # the gradient with respect to c is w: it requires grad, but depends on no input
    w = leaf([1.0, 2.0, 3.0])
    args = ((f64(x), f64(y)), (f64(vx), f64(vy)))
    _, (px, pc) = F.vhp(lambda a, c: (a ** 3).sum() + (c * w).sum(), *args)
    assert_close(pc, np.zeros(3))
    with pytest.raises(RuntimeError) as info:
        F.vhp(lambda a, c: (a ** 3).sum() + (c * w).sum(), *args, strict=True)
    assert str(info.value) == (
        "The jacobian of the user-provided function is independent of input 1. This is not allowed in "
        "strict mode."
    )
    with pytest.raises(RuntimeError) as info:
        F.hvp(lambda a, c: (a ** 3).sum() + (c * w).sum(), *args, strict=True)
    assert str(info.value) == (
        "The hessian of the user-provided function is independent of entry 1 in the grad_jacobian. This "
        "is not allowed in strict mode as it prevents from using the double backward trick to replace "
        "forward mode AD."
    )


def test_hvp_vhp_errors_and_create_graph():
    x = leaf(X0)
    v = f64([1.0, 0.0, -1.0, 2.0])
    with pytest.raises(RuntimeError, match="^The Tensor returned by the function given to hvp should contain a single element$"):
        F.hvp(lambda a: a ** 2, x, v)
    with pytest.raises(RuntimeError, match="^The function given to vhp should return a single Tensor$"):
        F.vhp(lambda a: (a.sum(), a.sum()), x, v)
    with pytest.raises(RuntimeError, match="^While computing the hessian, found that the jacobian"):
        F.hvp(lambda a: (a * 3).sum(), x, v, strict=True)
    _, product = F.hvp(lambda a: (a * 3).sum(), x, v)
    assert_close(product, np.zeros(4))
    for fn in (F.hvp, F.vhp):
        _, product = fn(lambda a: (a ** 4).sum(), x, v, create_graph=True)
        assert product.requires_grad
        assert_close(product, 12 * X0 ** 2 * values_of(v))
        (third,) = torch.autograd.grad(product.sum(), x)
        assert_close(third, 24 * X0 * values_of(v))
