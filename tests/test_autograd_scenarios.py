"""Autograd scenarios in the spirit of PyTorch's test_autograd.py (rewritten, not copied): flags
of leaves and views, detaching, in-place rules, custom Functions that modify their inputs, and
the errors PyTorch raises for misuse.

Each test runs on rustgrad and, when it is installed, on PyTorch (the ``lib`` fixture); the
assertions are closed forms, so the rustgrad run needs nothing else.
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


# ----- custom Functions that modify their input -----


def _scaling_function(lib, calls):
    class ScaleInPlace(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(3)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            calls.append(grad.shape)
            return grad * 3

    return ScaleInPlace


def test_dirty_view_input_keeps_its_node(lib):
    calls = []
    fn = _scaling_function(lib, calls)
    leaf = lib.ones(4, requires_grad=True)
    base = leaf.clone()
    view = base[:2]
    out = fn.apply(view)
    assert out is view
    base.sum().backward()
    assert len(calls) == 1
    assert leaf.grad.tolist() == [3.0, 3.0, 1.0, 1.0]


def test_dirty_non_view_input_is_rebased(lib):
    calls = []
    fn = _scaling_function(lib, calls)
    leaf = lib.ones(3, requires_grad=True)
    mid = leaf * 2
    out = fn.apply(mid)
    assert out is mid and mid.tolist() == [6.0, 6.0, 6.0]
    out.sum().backward()
    assert len(calls) == 1 and leaf.grad.tolist() == [6.0, 6.0, 6.0]


def test_dirty_nested_narrow_views(lib):
    class AddInPlace(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.mark_dirty(x)
            x.add_(y)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    root = lib.zeros(4, 4, requires_grad=True)
    other = lib.ones(2, 2, requires_grad=True)
    x = root.clone()
    AddInPlace.apply(x.narrow(1, 2, 2).narrow(0, 1, 2), other)
    AddInPlace.apply(x.narrow(1, 0, 2).narrow(0, 1, 2), other)
    assert x.sum().item() == 8.0
    x.sum().backward()
    assert root.grad.tolist() == [[1.0] * 4] * 4
    assert other.grad.tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_dirty_leaf_that_requires_grad_is_refused(lib):
    calls = []
    fn = _scaling_function(lib, calls)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        fn.apply(lib.ones(2, requires_grad=True))


# ----- numpy, grad(), detach_, .grad assignment -----


def test_numpy_of_a_tensor_that_requires_grad(lib):
    x = lib.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        x.numpy()
    with lib.no_grad():
        arr = x.numpy()
        assert np.asarray(x).tolist() == [1.0, 1.0, 1.0]
    assert arr.tolist() == [1.0, 1.0, 1.0]
    assert x.detach().numpy().tolist() == [1.0, 1.0, 1.0]


def test_grad_with_no_inputs_raises(lib):
    x = lib.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="`inputs` argument to `grad\\(\\)` cannot be empty"):
        lib.autograd.grad((x * 2).sum(), [])


def test_grad_of_unused_input(lib):
    x = lib.ones(2, requires_grad=True)
    y = lib.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        lib.autograd.grad((x * 2).sum(), [x, y])
    gx, gy = lib.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gx.tolist() == [2.0, 2.0] and gy is None


def test_detach_in_place_on_a_view_raises(lib):
    x = lib.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="Can't detach views in-place. Use detach\\(\\) instead"):
        x[1:].detach_()
    y = (x * 2)[:2]
    with pytest.raises(RuntimeError, match="Can't detach views in-place"):
        y.detach_()


def test_detach_in_place_on_a_non_leaf(lib):
    x = lib.ones(3, requires_grad=True)
    y = x * 2
    assert y.detach_() is y
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    z = (x * y).sum()
    z.backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("value", [0, 1.5, "a", [1.0]])
def test_grad_assignment_needs_a_tensor(lib, value):
    x = lib.ones(2, requires_grad=True)
    with pytest.raises(TypeError) as info:
        x.grad = value
    assert str(info.value) == (
        f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}"
    )
    assert x.grad is None


def test_grad_assignment_checks_dtype_and_size(lib):
    x = lib.ones(2, requires_grad=True)
    with pytest.raises(
        RuntimeError,
        match="attempting to assign a gradient with dtype 'double' to a tensor with grad_dtype 'Float'",
    ):
        x.grad = lib.ones(2, dtype=lib.float64)
    with pytest.raises(
        RuntimeError, match="attempting to assign a gradient of size '\\[3\\]' to a tensor of size '\\[2\\]'"
    ):
        x.grad = lib.ones(3)
    x.grad = lib.full((2,), 5.0)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [7.0, 7.0]
    x.grad = None
    assert x.grad is None


# ----- leaves that stop requiring grad -----


def test_detach_in_place_leaf_gets_no_gradient(lib):
    x = lib.ones(2, requires_grad=True)
    y = (x * 2).sum()
    x.detach_()
    y.backward()
    assert x.grad is None and not x.requires_grad


def test_requires_grad_false_leaf_gets_no_gradient(lib):
    x = lib.ones(2, requires_grad=True)
    w = lib.ones(2, requires_grad=True)
    y = (x * w).sum()
    x.requires_grad_(False)
    y.backward()
    assert x.grad is None
    assert w.grad.tolist() == [1.0, 1.0]


def test_requires_grad_false_on_a_non_leaf_raises(lib):
    y = lib.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)
    y.requires_grad_(True)  # allowed: it already requires grad


# ----- views share their base's requires_grad -----


def test_view_taken_before_requires_grad(lib):
    base = lib.zeros(4)
    views = [base[1:], base.view(2, 2), base.unsqueeze(0), base.expand(2, 4), base[0]]
    base.requires_grad_()
    for v in views:
        assert v.requires_grad and v.is_leaf and v.grad_fn is None
    out = views[0].exp()
    assert out.requires_grad and out.grad_fn is not None
    # The view has no gradient edge of its own: nothing flows anywhere.
    out.sum().backward()
    assert base.grad is None and views[0].grad is None


def test_in_place_on_a_view_taken_before_requires_grad(lib):
    base = lib.zeros(3)
    view = base[1:]
    base.requires_grad_()
    with pytest.raises(
        RuntimeError, match="a view of a leaf Variable that requires grad is being used in an in-place"
    ):
        view.mul_(2)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        view += 1
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        base.add_(1)
    assert base.tolist() == [0.0, 0.0, 0.0]
    with lib.no_grad():
        view.add_(1)
    assert base.tolist() == [0.0, 1.0, 1.0]


def test_view_flag_cannot_be_turned_off_while_the_base_requires_grad(lib):
    base = lib.zeros(3, requires_grad=True)
    with lib.no_grad():
        view = base[1:]
    assert view.requires_grad
    view.requires_grad_(False)
    assert view.requires_grad


def test_view_of_a_base_without_grad_made_under_no_grad(lib):
    base = lib.zeros(2)
    view = base.t()
    with lib.set_grad_enabled(False):
        view.requires_grad = True
        again = view.reshape_as(base)
    assert view.requires_grad
    assert not again.requires_grad


def test_in_place_before_requires_grad_then_backward(lib):
    a = lib.zeros(2, 3)
    a.add_(5)
    a.requires_grad = True
    a.sum().backward()
    assert a.grad.tolist() == [[1.0] * 3] * 2

    b = lib.zeros(2, 3)
    b[:].add_(5)
    b.requires_grad = True
    (b * b).sum().backward()
    assert b.grad.tolist() == [[10.0] * 3] * 2


def test_in_place_requires_grad_propagates(lib):
    a = lib.zeros(3)
    b = lib.ones(3, requires_grad=True)
    a += b
    assert a.requires_grad and not a.is_leaf
    a.sum().backward()
    assert b.grad.tolist() == [1.0, 1.0, 1.0]


def test_setitem_from_a_leaf_records_copy_slices(lib):
    x = lib.zeros(2, 3)
    y = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[0] = y
    assert x.requires_grad and type(x.grad_fn).__name__ == "CopySlices"
    (x * 2).sum().backward()
    assert y.grad.tolist() == [2.0, 2.0, 2.0]


# ----- contiguous, to(copy=True), detach -----


@pytest.mark.parametrize("shape", [(2, 3), (4, 3, 0), ()])
def test_contiguous_of_a_contiguous_tensor_is_itself(lib, shape):
    x = lib.zeros(shape, requires_grad=True)
    assert x.contiguous() is x
    assert x.contiguous().is_leaf


def test_contiguous_of_a_transposed_tensor_copies(lib):
    x = lib.zeros(2, 3, requires_grad=True)
    c = x.t().contiguous()
    assert c is not x and not c.is_leaf and type(c.grad_fn).__name__ == "CloneBackward0"


@pytest.mark.parametrize("call", ["same", "positional", "other dtype", "no dtype"])
def test_to_with_copy_records_to_copy(lib, call):
    x = lib.ones(2, requires_grad=True)
    out = {
        "same": lambda: x.to(lib.float32, copy=True),
        "positional": lambda: x.to(lib.float32, False, True),
        "other dtype": lambda: x.to(lib.float64, copy=True),
        "no dtype": lambda: x.to(copy=True),
    }[call]()
    assert out is not x and not out.is_leaf
    assert type(out.grad_fn).__name__ == "ToCopyBackward0"
    out.sum().backward()
    assert x.grad.dtype == lib.float32 and x.grad.tolist() == [1.0, 1.0]
    assert x.to(lib.float32) is x


def test_detach_shares_values_and_version(lib):
    x = lib.ones(3, requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    v0 = x._version
    d.add_(1)
    assert x._version == v0 + 1
    assert x.tolist() == [2.0, 2.0, 2.0]


def test_modified_saved_tensor_is_detected(lib):
    x = lib.ones(3, requires_grad=True)
    y = x * 1
    z = y.exp()
    y.detach().add_(1)  # changes what exp saved? no: exp saved its output
    z.detach().add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


# ----- grad mode -----


def test_no_grad_results_do_not_require_grad(lib):
    x = lib.ones(2, requires_grad=True)
    with lib.no_grad():
        y = x * 2
        assert lib.is_grad_enabled() is False
    assert not y.requires_grad and y.grad_fn is None
    with lib.set_grad_enabled(False):
        x2 = lib.ones(2)
        x2.requires_grad = True
        z = x2 * 2
    assert x2.requires_grad and not z.requires_grad


def test_backward_twice_needs_retain_graph(lib):
    x = lib.ones(2, requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert np.allclose(x.grad.tolist(), [4 * np.e, 4 * np.e])
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_backward_of_a_tensor_without_history(lib):
    with pytest.raises(
        RuntimeError, match="element 0 of tensors does not require grad and does not have a grad_fn"
    ):
        lib.ones(2).sum().backward()
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (lib.ones(2, requires_grad=True) * 2).backward()


def test_gradients_accumulate_across_backward_calls(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(3):
        (x * x).sum().backward()
    assert x.grad.tolist() == [6.0, 12.0]


def test_non_leaf_grad_is_none_unless_retained(lib):
    x = lib.ones(2, requires_grad=True)
    y = x * 2
    y.retain_grad()
    w = y * 3
    (w * 1).sum().backward()
    assert y.grad.tolist() == [3.0, 3.0]
    with pytest.warns(UserWarning, match="is not a leaf Tensor"):
        assert w.grad is None


def test_in_place_op_on_a_plain_tensor_with_a_grad_operand(lib):
    # The target did not require grad, so the op must keep its old values for backward.
    x = lib.tensor([1.0, 2.0, 3.0])
    w = lib.tensor([2.0, 2.0, 2.0], requires_grad=True)
    x.mul_(w)
    assert x.requires_grad and type(x.grad_fn).__name__ == "MulBackward0"
    x.sum().backward()
    assert w.grad.tolist() == [1.0, 2.0, 3.0]

    base = lib.tensor(2.0)
    e = lib.tensor(3.0, requires_grad=True)
    base.pow_(e)
    (g,) = lib.autograd.grad(base, [e])
    assert np.isclose(g.item(), 8.0 * np.log(2.0))


@pytest.mark.parametrize("value", [1, 0, 0.5, None])
def test_requires_grad_attribute_needs_a_bool(lib, value):
    x = lib.ones(2)
    with pytest.raises(RuntimeError, match="requires_grad must be a bool"):
        x.requires_grad = value
    assert not x.requires_grad


def test_a_tensor_cannot_be_its_own_grad(lib):
    x = lib.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="can't assign Variable as its own grad"):
        x.grad = x
    assert x.grad is None
