"""dtype rules of issue 11: which dtype results have, which kernels exist for which dtypes
(PyTorch's NotImplementedError), leaf gradients keep the leaf's dtype, integer and bool tensors
never require grad, and numbers written into integer tensors must fit.

Every test runs on rustgrad and, when it is installed, on PyTorch too (the ``lib`` fixture),
so the expectations written here are checked against the reference as well.
"""

from __future__ import annotations

import importlib
import math

import pytest


@pytest.fixture(params=["rustgrad", "torch"])
def lib(request):
    """The library under test: rustgrad always, PyTorch when it can be imported."""
    if request.param == "torch":
        return pytest.importorskip("torch")
    return importlib.import_module("rustgrad")


def _ints(lib):
    return lib.tensor([[1, 2], [3, 4]])


def _bools(lib):
    return lib.tensor([[True, False], [False, True]])


# (what, build the call from (lib, F, ints, bools), PyTorch's message)
MISSING_KERNELS = [
    (
        "softmax last dim",
        lambda t, F, i, b: F.softmax(i, -1),
        "\"softmax_lastdim_kernel_impl\" not implemented for 'Long'",
    ),
    (
        "softmax dim 0",
        lambda t, F, i, b: F.softmax(i, 0),
        "\"softmax_kernel_impl\" not implemented for 'Long'",
    ),
    (
        "log_softmax",
        lambda t, F, i, b: F.log_softmax(b, 1),
        "\"log_softmax_lastdim_kernel_impl\" not implemented for 'Bool'",
    ),
    ("gelu", lambda t, F, i, b: F.gelu(i), "\"GeluKernelImpl\" not implemented for 'Long'"),
    ("mean", lambda t, F, i, b: i.mean(), "mean(): could not infer output dtype"),
    ("var", lambda t, F, i, b: i.var(), "std and var only support floating point and complex dtypes"),
    ("std", lambda t, F, i, b: b.std(0), "std and var only support floating point and complex dtypes"),
    ("norm", lambda t, F, i, b: i.norm(), "linalg.vector_norm: Expected a floating point or complex tensor"),
    ("neg bool", lambda t, F, i, b: -b, "Negation, the `-` operator, on a bool tensor is not supported"),
    ("bool - bool", lambda t, F, i, b: b - b, "with two bool tensors is not supported"),
    ("int - bool", lambda t, F, i, b: i - b, "with a bool tensor is not supported"),
    ("number - bool", lambda t, F, i, b: 1 - b, "with a bool tensor is not supported"),
    ("abs bool", lambda t, F, i, b: b.abs(), "\"abs_cpu\" not implemented for 'Bool'"),
    ("floor bool", lambda t, F, i, b: b.floor(), "\"floor_vml_cpu\" not implemented for 'Bool'"),
    ("ceil bool", lambda t, F, i, b: b.ceil(), "\"ceil_vml_cpu\" not implemented for 'Bool'"),
    ("round bool", lambda t, F, i, b: b.round(), "\"round_vml_cpu\" not implemented for 'Bool'"),
    ("trunc bool", lambda t, F, i, b: b.trunc(), "\"trunc_vml_cpu\" not implemented for 'Bool'"),
    ("relu bool", lambda t, F, i, b: F.relu(b), "Boolean inputs not supported for relu"),
    ("pow bool bool", lambda t, F, i, b: b.pow(b), "\"pow\" not implemented for 'Bool'"),
    ("argmax bool", lambda t, F, i, b: b.argmax(), "argmax(): does not support bool input"),
    ("argmin bool", lambda t, F, i, b: b.argmin(), "argmin(): does not support bool input"),
    ("leaky_relu int", lambda t, F, i, b: F.leaky_relu(i), "\"leaky_relu_cpu\" not implemented for 'Long'"),
    ("silu int", lambda t, F, i, b: F.silu(i), "\"silu_cpu\" not implemented for 'Long'"),
    ("softplus int", lambda t, F, i, b: F.softplus(i), "\"softplus_cpu\" not implemented for 'Long'"),
    ("logsigmoid bool", lambda t, F, i, b: F.logsigmoid(b), "\"log_sigmoid_cpu\" not implemented for 'Bool'"),
    (
        "rand_like int",
        lambda t, F, i, b: t.rand_like(i),
        "\"check_uniform_bounds\" not implemented for 'Long'",
    ),
    (
        "randn_like bool",
        lambda t, F, i, b: t.randn_like(b),
        "\"normal_kernel_cpu\" not implemented for 'Bool'",
    ),
]


@pytest.mark.parametrize("what,call,message", MISSING_KERNELS, ids=[m[0] for m in MISSING_KERNELS])
def test_missing_kernels_raise_not_implemented(lib, what, call, message):
    with pytest.raises(NotImplementedError) as info:
        call(lib, lib.nn.functional, _ints(lib), _bools(lib))
    assert message in str(info.value)


def test_not_implemented_is_the_builtin_class(lib):
    # Python's own NotImplementedError (a RuntimeError subclass), not a library-specific class.
    with pytest.raises(NotImplementedError) as info:
        _ints(lib).mean()
    assert type(info.value) is NotImplementedError


def test_empty_integer_inputs_need_no_kernel(lib):
    F = lib.nn.functional
    empty = lib.tensor([], dtype=lib.int64)
    assert F.softmax(empty, 0).dtype == lib.int64
    assert F.log_softmax(empty > 0, 0).dtype == lib.bool
    out = lib.randn_like(lib.tensor([[]], dtype=lib.bool))
    assert out.dtype == lib.bool and tuple(out.shape) == (1, 0)


def test_argmax_of_empty_input_is_an_index_error(lib):
    with pytest.raises(IndexError, match="Expected reduction dim to be specified"):
        lib.tensor([]).argmax()
    with pytest.raises(IndexError, match="Expected reduction dim to be specified"):
        lib.tensor([], dtype=lib.int64).argmin()


def test_fractional_alpha_with_integer_tensors(lib):
    i = _ints(lib)
    for call in (
        lambda: i.add(i, alpha=0.5),
        lambda: i.sub(i, alpha=0.5),
        lambda: i.clone().add_(i, alpha=0.5),
    ):
        with pytest.raises(RuntimeError, match="argument alpha must not be a floating point number"):
            call()
    assert i.add(lib.ones(2, 2), alpha=0.5).dtype == lib.float32
    assert i.add(i, alpha=2).tolist() == [[3, 6], [9, 12]]


CLAMP_DTYPES = [
    ("int max float", lambda t: t.tensor([-4, 1]).clamp(max=1.0), "float32", [-4.0, 1.0]),
    ("int clip max float", lambda t: t.clip(t.tensor([-4, 1]), max=1.0), "float32", [-4.0, 1.0]),
    ("int min max ints", lambda t: t.tensor([-4, 9]).clamp(0, 5), "int64", [0, 5]),
    ("int max float half", lambda t: t.tensor([-4, 9]).clamp(0, 2.5), "float32", [0.0, 2.5]),
    ("bool max int", lambda t: t.tensor([True, False]).clamp(max=2), "int64", [1, 0]),
    ("bool clamp_min 0", lambda t: t.tensor([True, False]).clamp_min(0), "int64", [1, 0]),
    ("bool clamp_max 0", lambda t: t.tensor([True, False]).clamp_max(0), "int64", [0, 0]),
    ("bool max float", lambda t: t.tensor([True, False]).clamp(max=0.5), "float32", [0.5, 0.0]),
    (
        "float64 max int",
        lambda t: t.tensor([-4.0, 9.0], dtype=t.float64).clamp(max=1),
        "float64",
        [-4.0, 1.0],
    ),
]


@pytest.mark.parametrize("what,call,dtype,values", CLAMP_DTYPES, ids=[c[0] for c in CLAMP_DTYPES])
def test_clamp_promotes_with_its_bounds(lib, what, call, dtype, values):
    out = call(lib)
    assert out.dtype == getattr(lib, dtype)
    assert out.tolist() == values


def test_in_place_clamp_cannot_change_the_dtype(lib):
    with pytest.raises(RuntimeError, match="result type Float can't be cast"):
        lib.tensor([1, 2]).clamp_(1.5)


def test_bool_results_of_sign_pow_and_dropout(lib):
    b = lib.tensor([True, False])
    assert b.sign().dtype == lib.bool and b.sign().tolist() == [True, False]
    assert (b**True).dtype == lib.bool and (b**True).tolist() == [True, False]
    assert b.pow(False).tolist() == [True, True]
    assert b.pow(2).dtype == lib.int64
    assert b.pow(2.0).dtype == lib.float32
    assert (2**b).dtype == lib.int64
    dropped = lib.nn.functional.dropout(b, p=1.0)
    assert dropped.dtype == lib.bool and dropped.tolist() == [False, False]
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Bool"):
        lib.nn.functional.dropout(b, p=0.5)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        lib.nn.functional.dropout(lib.tensor([1, 2]), p=0.5)


# ----- numbers written into integer tensors -----

NON_FITTING_WRITES = [
    ("setitem mask nan", lambda t, i: i.__setitem__(i == 0, float("nan"))),
    ("setitem int inf", lambda t, i: i.__setitem__(1, float("inf"))),
    ("setitem list nan", lambda t, i: i.__setitem__([0, 1], float("nan"))),
    ("masked_fill nan", lambda t, i: i.masked_fill(i == 0, float("nan"))),
    ("masked_fill_ -inf", lambda t, i: i.masked_fill_(i == 0, -float("inf"))),
    ("fill_ nan", lambda t, i: i.fill_(float("nan"))),
    ("fill_ 1e19", lambda t, i: i.fill_(1e19)),
    ("full nan", lambda t, i: t.full((2,), float("nan"), dtype=t.int64)),
]


@pytest.mark.parametrize("what,call", NON_FITTING_WRITES, ids=[w[0] for w in NON_FITTING_WRITES])
def test_non_finite_numbers_do_not_fit_int64(lib, what, call):
    i = lib.zeros(3, dtype=lib.int64)
    with pytest.raises(RuntimeError, match="value cannot be converted to type int64_t without overflow"):
        call(lib, i)
    assert i.tolist() == [0, 0, 0]


def test_writes_that_fit_are_truncated_or_converted(lib):
    i = lib.zeros(3, dtype=lib.int64)
    i[1] = 2.7
    assert i.tolist() == [0, 2, 0]
    i.fill_(lib.tensor(5.9))
    assert i.tolist() == [5, 5, 5]
    assert lib.full((2,), float("nan"), dtype=lib.bool).tolist() == [True, True]
    with pytest.raises(RuntimeError, match="value cannot be converted to type float without overflow"):
        lib.zeros(2).fill_(1e300)


# ----- gradients keep the leaf's dtype -----


@pytest.mark.parametrize("grad_dtype", ["float32", "int64", "bool"])
def test_backward_gradient_takes_the_leaf_dtype(lib, grad_dtype):
    x = lib.ones(2, dtype=lib.float64, requires_grad=True)
    x.backward(lib.ones(2, dtype=getattr(lib, grad_dtype)))
    assert x.grad.dtype == lib.float64
    assert x.grad.tolist() == [1.0, 1.0]
    y = lib.ones(2, dtype=lib.float64, requires_grad=True)
    (y * 3).backward(lib.ones(2, dtype=getattr(lib, grad_dtype)))
    assert y.grad.dtype == lib.float64 and y.grad.tolist() == [3.0, 3.0]


def test_autograd_grad_takes_the_input_dtype(lib):
    x = lib.ones(2, dtype=lib.float64, requires_grad=True)
    (g,) = lib.autograd.grad(x * 2, x, lib.ones(2, dtype=lib.float32))
    assert g.dtype == lib.float64 and g.tolist() == [2.0, 2.0]


# ----- integer and bool tensors never require grad -----


def test_integer_tensors_cannot_require_grad(lib):
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require gradients"):
        lib.zeros(2, dtype=lib.int64).requires_grad_()
    with pytest.raises(
        RuntimeError, match="only Tensors of floating point and complex dtype can require gradients"
    ):
        lib.tensor([True]).requires_grad = True


def test_copy_into_an_int_tensor_does_not_require_grad(lib):
    i = lib.zeros(3, dtype=lib.int64)
    src = lib.ones(3, requires_grad=True) * 2
    out = i.copy_(src)
    assert out is i
    assert not i.requires_grad and i.is_leaf and i.grad_fn is None
    assert i.tolist() == [2, 2, 2]


def test_setitem_of_a_requires_grad_value_into_an_int_tensor(lib):
    i = lib.tensor([3, 0, -2, -2])
    value = lib.ones((), requires_grad=True) * 2
    i[-1] = value
    assert not i.requires_grad and i.grad_fn is None
    assert i.tolist() == [3, 0, -2, 2]


def test_masked_setitem_into_an_int_tensor_does_not_require_grad():
    # A deliberate difference: PyTorch 2.15 gives the int tensor an IndexPutBackward0 (mask) or
    # a CopySlices (slice) here, although integer tensors cannot require grad; rustgrad keeps
    # the rule.
    rustgrad = importlib.import_module("rustgrad")
    i = rustgrad.tensor([3, 0, -2, 5])
    i[i == 0] = rustgrad.ones((), requires_grad=True) * 2
    i[2:] = rustgrad.ones((), requires_grad=True) * 4
    assert not i.requires_grad and i.grad_fn is None
    assert i.tolist() == [3, 2, 4, 4]


def test_index_put_needs_matching_dtypes(lib):
    x = lib.zeros(3, dtype=lib.float64)
    with pytest.raises(RuntimeError, match="got Double for the destination and Float for the source"):
        x[[0]] = lib.tensor([1.0])
    with pytest.raises(RuntimeError, match="got Long for the destination and Float for the source"):
        lib.zeros(3, dtype=lib.int64).index_put_((lib.tensor([0]),), lib.tensor(1.0))
    x[lib.tensor([True, False, True])] = lib.tensor(1.0)
    x[[1]] = 2
    assert x.tolist() == [1.0, 2.0, 1.0]


def test_integer_results_of_graph_ops_do_not_require_grad(lib):
    x = lib.tensor([0.5, 2.0, 1.0], requires_grad=True)
    for out in (x.argmax(), x > 1, x.long(), x.max(0)[1], x.detach().long().add(1)):
        assert not out.requires_grad and out.grad_fn is None


def test_view_as_same_dtype_is_not_differentiable(lib):
    x = lib.tensor([2.5, -0.25], requires_grad=True)
    v = x.view(lib.float32)
    assert not v.requires_grad and v.is_leaf
    assert v.tolist() == [2.5, -0.25]


def test_float_values_still_flow_through_int_free_paths(lib):
    # The rule concerns results, not inputs: a float result of an int input still records.
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = (x * lib.tensor([2, 3])).sum()
    y.backward()
    assert x.grad.tolist() == [2.0, 3.0]
    assert math.isclose(y.item(), 8.0)


def test_integers_to_negative_integer_powers(lib):
    i = lib.tensor([1, 2, 3])
    for call in (
        lambda: i**-1,
        lambda: i.pow(-2),
        lambda: i.clone().pow_(-1),
        lambda: lib.tensor([True]) ** -1,
    ):
        with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed."):
            call()
    assert (i**-1.0).dtype == lib.float32
    assert (i ** lib.tensor(-1)).tolist() == [1, 0, 0]
    assert (i**0).tolist() == [1, 1, 1]


def test_bool_subtraction_in_place_and_fractional_alpha_in_place(lib):
    x = lib.tensor([1.0, 2.0])
    with pytest.raises(NotImplementedError, match="with a bool tensor is not supported"):
        x.sub_(lib.tensor([True, False]))
    with pytest.raises(NotImplementedError, match="with a bool tensor is not supported"):
        x -= lib.tensor([True, False])
    i = lib.tensor([1, 2])
    with pytest.raises(RuntimeError, match="argument alpha must not be a floating point number"):
        i.add_(i, alpha=0.5)
    assert x.tolist() == [1.0, 2.0] and i.tolist() == [1, 2]


def test_bool_inputs_of_kernels_that_take_them(lib):
    b = lib.tensor([True, False])
    assert lib.isfinite(b).tolist() == [True, True]
    assert lib.isinf(b).tolist() == [False, False]
    loss = lib.nn.functional.mse_loss(lib.tensor([0.0, 0.0]), b)
    assert loss.dtype == lib.float32 and loss.item() == 0.5


def test_writes_of_large_numbers_into_float32(lib):
    x = lib.zeros(2)
    x.copy_(lib.tensor(1e300, dtype=lib.float64))
    assert x.tolist() == [float("inf")] * 2
    x.copy_(1e300)
    assert x.tolist() == [float("inf")] * 2
    for key in (0, [0], slice(None)):
        with pytest.raises(RuntimeError, match="value cannot be converted to type float without overflow"):
            x[key] = 1e300


def test_scatter_needs_matching_dtypes(lib):
    x = lib.zeros(3, dtype=lib.float64)
    for call in (
        lambda: x.scatter_add(0, lib.tensor([0]), lib.ones(1)),
        lambda: x.scatter(0, lib.tensor([0]), lib.ones(1)),
    ):
        with pytest.raises(RuntimeError, match="scatter\\(\\): Expected self.dtype to be equal to src.dtype"):
            call()
    assert x.scatter(0, lib.tensor([0]), 2.5).tolist() == [2.5, 0.0, 0.0]
