"""Tensor hooks, node hooks, post-accumulate-grad hooks and retain_grad, checked against closed forms.

Scenarios follow PyTorch's own test_autograd.py (hook section); call order, messages and warnings
are those of PyTorch 2.x (validated by running this file against torch).
"""

import gc
import re
import warnings

import numpy as np
import pytest
import rustgrad as torch

F64 = torch.float64
NON_LEAF_GRAD = "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed"


def np_of(t):
    return t.detach().numpy()


def leaf(values):
    return torch.tensor(values, dtype=F64, requires_grad=True)


# ----- Tensor.register_hook -----


def test_hooks_count_calls_and_modify_gradients():
    x = torch.ones(2, 2, dtype=F64, requires_grad=True)
    y = torch.full((2, 2), 4.0, dtype=F64, requires_grad=True)
    counter = [0]

    def counting(inc):
        def hook(grad):
            assert isinstance(grad, torch.Tensor)
            counter[0] += inc

        return hook

    z = x**2 + x * 2 + x * y + y
    x.register_hook(counting(0))
    first = z.register_hook(counting(1))
    z.backward(torch.ones(2, 2, dtype=F64), retain_graph=True)
    assert counter[0] == 1
    second = z.register_hook(counting(2))
    z.backward(torch.ones(2, 2, dtype=F64), retain_graph=True)
    assert counter[0] == 4
    second.remove()
    z.backward(torch.ones(2, 2, dtype=F64), retain_graph=True)
    assert counter[0] == 5
    first.remove()

    z.register_hook(lambda g: g * 2)
    y.grad = None
    z.backward(torch.ones(2, 2, dtype=F64), retain_graph=True)
    np.testing.assert_allclose(np_of(y.grad), np_of((x + 1) * 2))
    y.register_hook(lambda g: g * 2)
    y.grad = None
    z.backward(torch.ones(2, 2, dtype=F64))
    np.testing.assert_allclose(np_of(y.grad), np_of((x + 1) * 4))
    assert counter[0] == 5  # removed hooks stay removed


def test_hook_replacement_flows_downstream():
    x = leaf([1.0, 2.0])
    h = x * 3
    y = h * h
    h.register_hook(lambda g: g + 1)
    y.sum().backward()
    # dy/dh = 2h = [6, 12] -> hook -> [7, 13] -> times 3
    np.testing.assert_allclose(np_of(x.grad), [21.0, 39.0])


def test_hook_returning_none_keeps_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    h = x * 3
    h.register_hook(lambda g: seen.append(np_of(g).tolist()))
    (h * h).sum().backward()
    assert seen == [[6.0, 12.0]]
    np.testing.assert_allclose(np_of(x.grad), [18.0, 36.0])


def test_hooks_run_in_registration_order_and_chain():
    x = leaf([1.0])
    order = []

    def make(tag, fn):
        def hook(g):
            order.append((tag, g.item()))
            return fn(g)

        return hook

    y = x * 1
    y.register_hook(make("a", lambda g: g * 2))
    y.register_hook(make("b", lambda g: None))
    y.register_hook(make("c", lambda g: g + 1))
    y.sum().backward()
    assert order == [("a", 1.0), ("b", 2.0), ("c", 2.0)]
    np.testing.assert_allclose(np_of(x.grad), [3.0])


def test_leaf_hook_changes_accumulated_grad():
    x = leaf([1.0, -1.0])
    x.register_hook(lambda g: g * 10)
    (x * 2).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [20.0, 20.0])


def test_handle_remove_and_context_manager():
    x = leaf([1.0])
    calls = []
    y = x * 2
    handle = y.register_hook(lambda g: calls.append("kept"))
    assert type(handle).__name__ == "RemovableHandle"
    with y.register_hook(lambda g: calls.append("scoped")):
        y.sum().backward(retain_graph=True)
    assert calls == ["kept", "scoped"]
    y.sum().backward(retain_graph=True)
    assert calls == ["kept", "scoped", "kept"]
    handle.remove()
    handle.remove()  # removing twice is harmless
    y.sum().backward()
    assert calls == ["kept", "scoped", "kept"]


def test_hook_on_tensor_without_grad_raises():
    msg = "cannot register a hook on a tensor that doesn't require gradient"
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        torch.ones(2).register_hook(lambda g: g)
    with torch.no_grad():
        y = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        y.register_hook(lambda g: g)


def test_hook_on_tensor_used_twice_sees_summed_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    seen = []
    y.register_hook(lambda g: seen.append(np_of(g).tolist()))
    (y * y + 3 * y).sum().backward()
    # d/dy (y^2 + 3y) = 2y + 3 with y = [2, 4]
    assert seen == [[7.0, 11.0]]
    np.testing.assert_allclose(np_of(x.grad), [14.0, 22.0])


def test_hook_not_called_for_unrelated_backward():
    x = leaf([1.0])
    called = []
    y = x * 2
    y.register_hook(lambda g: called.append(1))
    (x * 3).sum().backward()
    assert called == []


def test_hook_registered_before_and_after_in_place():
    a = torch.tensor(1.0, requires_grad=True)
    b = a.clone()
    seen = []

    def first(g):
        seen.append(("first", g.item()))
        return g * 2

    def second(g):
        seen.append(("second", g.item()))
        return g * 2

    b.register_hook(first)
    b.mul_(2)
    b.register_hook(second)  # attached to the new version of b
    b.sum().backward()
    # second sees 1 and doubles it; mul_ doubles; first sees 4 and doubles it
    assert seen == [("second", 1.0), ("first", 4.0)]
    assert a.grad.item() == 8.0


def test_hook_sees_gradient_of_custom_function_output():
    class PassFirst(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x.clone(), y.clone()

        @staticmethod
        def backward(ctx, gx, gy):
            return gx, None

    seen = []
    x = leaf([1.0, 2.0])
    y = torch.tensor([3.0, 4.0], dtype=F64)
    rx, ry = PassFirst.apply(x, y)
    # every output of a Function with a differentiable input requires grad
    assert ry.requires_grad and type(ry.grad_fn).__name__ == "PassFirstBackward"
    rx.register_hook(lambda g: seen.append(("rx", np_of(g).tolist())))
    ry.register_hook(lambda g: seen.append(("ry", np_of(g).tolist())))
    (rx * 5 + ry).sum().backward()
    assert sorted(seen) == [("rx", [5.0, 5.0]), ("ry", [1.0, 1.0])]
    np.testing.assert_allclose(np_of(x.grad), [5.0, 5.0])


def test_exception_in_hook_propagates_unchanged():
    class HookError(Exception):
        pass

    def bad(g):
        raise HookError("raised inside the hook")

    x = leaf([1.0])
    y = x * 2
    y.register_hook(bad)
    with pytest.raises(HookError, match="^raised inside the hook$"):
        y.sum().backward()
    assert x.grad is None
    (x * 5).sum().backward()  # the engine still works
    np.testing.assert_allclose(np_of(x.grad), [5.0])


def test_hook_changing_size_raises():
    def resize_hook(g):
        return torch.ones(3, dtype=F64)

    y = leaf([1.0, 2.0]) * 3
    y.register_hook(resize_hook)
    with pytest.raises(RuntimeError, match=re.escape("hook 'resize_hook' has changed the size of value")):
        y.sum().backward()


def test_hook_returning_non_tensor_raises():
    y = leaf([1.0, 2.0]) * 3
    y.register_hook(lambda g: 5)
    with pytest.raises(TypeError, match=re.escape("expected Variable, but hook returned 'int'")):
        y.sum().backward()


# ----- hooks during autograd.grad -----


def test_hooks_run_during_autograd_grad():
    x = leaf([1.0, 2.0])
    seen = []
    h = x * 3
    h.register_hook(lambda g: (seen.append(np_of(g).tolist()), g + 1)[1])
    y = (h * h).sum()
    (gh,) = torch.autograd.grad(y, h, retain_graph=True)
    np.testing.assert_allclose(np_of(gh), [7.0, 13.0])  # the hook's result is returned
    (gx,) = torch.autograd.grad(y, x)
    np.testing.assert_allclose(np_of(gx), [21.0, 39.0])
    assert seen == [[6.0, 12.0], [6.0, 12.0]]
    assert x.grad is None


def test_leaf_hook_runs_during_autograd_grad():
    x = leaf([1.0, 2.0])
    seen = []
    post = []
    x.register_hook(lambda g: (seen.append(np_of(g).tolist()), g * 10)[1])
    x.register_post_accumulate_grad_hook(lambda t: post.append(1))
    (g,) = torch.autograd.grad((x * x).sum(), x)
    assert seen == [[2.0, 4.0]]
    np.testing.assert_allclose(np_of(g), [20.0, 40.0])
    assert post == []  # nothing is accumulated by autograd.grad
    assert x.grad is None


# ----- post-accumulate-grad hooks -----


def test_post_accumulate_grad_hook():
    x = leaf([1.0, 2.0])
    seen = []

    def hook(t):
        seen.append((t is x, np_of(t.grad).tolist()))

    handle = x.register_post_accumulate_grad_hook(hook)
    assert type(handle).__name__ == "RemovableHandle"
    (x * x).sum().backward()
    (x * x).sum().backward()
    handle.remove()
    (x * x).sum().backward()
    # called with the tensor itself, after each accumulation
    assert seen == [(True, [2.0, 4.0]), (True, [4.0, 8.0])]
    np.testing.assert_allclose(np_of(x.grad), [6.0, 12.0])


def test_post_accumulate_grad_hook_runs_after_tensor_hooks():
    x = leaf([1.0, 2.0])
    order = []
    x.register_post_accumulate_grad_hook(lambda t: order.append(("post", np_of(t.grad).tolist())))
    x.register_hook(lambda g: (order.append(("tensor", np_of(g).tolist())), g * 3)[1])
    (x * 2).sum().backward()
    assert order == [("tensor", [2.0, 2.0]), ("post", [6.0, 6.0])]


def test_post_accumulate_grad_hook_can_update_the_leaf():
    w = leaf([1.0, 2.0])

    def sgd_step(p):
        with torch.no_grad():
            p.sub_(0.5 * p.grad)
        p.grad = None

    w.register_post_accumulate_grad_hook(sgd_step)
    (w * w).sum().backward()
    np.testing.assert_allclose(np_of(w), [0.0, 0.0])
    assert w.grad is None


def test_post_accumulate_grad_hook_errors():
    with pytest.raises(RuntimeError, match=re.escape(
            "post accumulate grad hooks cannot be registered on non-leaf tensors")):
        (leaf([1.0]) * 3).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match=re.escape(
            "cannot register a hook on a tensor that doesn't require gradient")):
        torch.ones(2).register_post_accumulate_grad_hook(lambda t: None)


# ----- node (grad_fn) hooks -----


def test_node_hook_sees_grad_inputs_and_outputs():
    x = leaf([1.0, 2.0])
    y = x * 3
    seen = []

    def hook(grad_inputs, grad_outputs):
        seen.append(([None if g is None else np_of(g).tolist() for g in grad_inputs],
                     [np_of(g).tolist() for g in grad_outputs]))

    handle = y.grad_fn.register_hook(hook)
    assert type(handle).__name__ == "RemovableHandle"
    (y * y).sum().backward()
    # MulBackward0(x, 3): grad_outputs = (2y,), grad_inputs = (3 * 2y, None)
    assert seen == [([[18.0, 36.0], None], [[6.0, 12.0]])]


def test_node_hook_replaces_grad_inputs():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.grad_fn.register_hook(lambda gi, go: (gi[0] * 0 + 7,) + tuple(gi[1:]))
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [7.0, 7.0])


def test_node_prehook_replaces_grad_outputs():
    x = leaf([1.0, 2.0])
    y = x * 3
    seen = []
    y.grad_fn.register_prehook(lambda go: (seen.append(np_of(go[0]).tolist()), (go[0] * 2,))[1])
    y.grad_fn.register_prehook(lambda go: seen.append(np_of(go[0]).tolist()))
    y.sum().backward()
    assert seen == [[1.0, 1.0], [2.0, 2.0]]
    np.testing.assert_allclose(np_of(x.grad), [6.0, 6.0])


def test_node_hook_removal():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.grad_fn.register_prehook(lambda go: (go[0] * 100,)).remove()
    y.grad_fn.register_hook(lambda gi, go: (gi[0] * 100, None)).remove()
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [2.0, 2.0])


def test_node_hook_wrong_number_of_values_raises():
    def bad_node_hook(grad_inputs, grad_outputs):
        return (grad_inputs[0], grad_inputs[0])

    def bad_prehook(grad_outputs):
        return (grad_outputs[0], grad_outputs[0])

    y = leaf([1.0]).exp()
    y.grad_fn.register_hook(bad_node_hook)
    with pytest.raises(RuntimeError, match=re.escape(
            "hook 'bad_node_hook' has returned an incorrect number of values (got 2, but expected 1)")):
        y.sum().backward()
    z = leaf([1.0]).exp()
    z.grad_fn.register_prehook(bad_prehook)
    with pytest.raises(RuntimeError, match=re.escape(
            "hook 'bad_prehook' has returned an incorrect number of values (got 2, but expected 1)")):
        z.sum().backward()


def test_node_hook_must_return_tuple():
    y = leaf([1.0]).exp()
    y.grad_fn.register_hook(lambda gi, go: gi[0])
    with pytest.raises(TypeError, match=re.escape("expected tuple, but hook returned 'Tensor'")):
        y.sum().backward()


def test_node_hook_cannot_fill_a_none_gradient():
    y = leaf([1.0, 2.0]) * 3  # the constant 3 has no gradient slot
    y.grad_fn.register_hook(lambda gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match=re.escape("can't replace a None gradient with a non-None value")):
        y.sum().backward()


def test_hook_order_tensor_hooks_then_prehooks_then_node_hooks():
    x = leaf([1.0, 2.0])
    order = []
    y = x * 3
    z = y * y
    y.register_hook(lambda g: order.append(("tensor hook 1", np_of(g).tolist())))
    z.grad_fn.register_prehook(lambda go: order.append(("z prehook", np_of(go[0]).tolist())))
    y.grad_fn.register_prehook(lambda go: order.append(("y prehook", np_of(go[0]).tolist())))
    y.grad_fn.register_hook(lambda gi, go: order.append(("y hook", np_of(gi[0]).tolist())))
    y.register_hook(lambda g: (order.append(("tensor hook 2", np_of(g).tolist())), g * 10)[1])
    z.sum().backward()
    assert order == [
        ("z prehook", [1.0, 1.0]),
        ("tensor hook 1", [6.0, 12.0]),
        ("tensor hook 2", [6.0, 12.0]),
        ("y prehook", [60.0, 120.0]),
        ("y hook", [180.0, 360.0]),
    ]
    np.testing.assert_allclose(np_of(x.grad), [180.0, 360.0])


def test_accumulate_grad_node_hooks():
    x = leaf([1.0, 2.0])
    acc = (x * 1).grad_fn.next_functions[0][0]
    assert type(acc).__name__ == "AccumulateGrad"
    calls = []
    acc.register_prehook(lambda go: calls.append(("pre", np_of(go[0]).tolist())))
    acc.register_hook(lambda gi, go: calls.append(("post", gi, [np_of(g).tolist() for g in go])))
    (x * 2).sum().backward()
    assert calls == [("pre", [2.0, 2.0]), ("post", (), [[2.0, 2.0]])]
    np.testing.assert_allclose(np_of(x.grad), [2.0, 2.0])


# ----- retain_grad -----


def test_retain_grad_and_retains_grad():
    x = leaf([1.0, 2.0])
    assert not x.retains_grad
    x.retain_grad()  # no-op on a leaf
    assert not x.retains_grad
    y = x * 2
    assert not y.retains_grad
    y.retain_grad()
    y.retain_grad()  # twice is fine
    assert y.retains_grad
    (y * y).sum().backward()
    np.testing.assert_allclose(np_of(y.grad), [4.0, 8.0])
    np.testing.assert_allclose(np_of(x.grad), [8.0, 16.0])


def test_retain_grad_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match=re.escape(
            "can't retain_grad on Tensor that has requires_grad=False")):
        torch.ones(2).retain_grad()


@pytest.mark.parametrize("retain_first", [True, False])
def test_retained_grad_sees_hook_modified_gradient(retain_first):
    x = leaf([1.0, 2.0])
    y = x * 3
    if retain_first:
        y.retain_grad()
    y.register_hook(lambda g: g * 10)
    if not retain_first:
        y.retain_grad()
    y.sum().backward()
    # retain_grad's capture runs after all tensor hooks, whatever the registration order
    np.testing.assert_allclose(np_of(y.grad), [10.0, 10.0])
    np.testing.assert_allclose(np_of(x.grad), [30.0, 30.0])


def test_retain_grad_accumulates_over_backward_calls():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward(retain_graph=True)
    (y * y).sum().backward()
    np.testing.assert_allclose(np_of(y.grad), [8.0, 16.0])


def test_retain_grad_follows_in_place_ops():
    a = torch.tensor([1.0], requires_grad=True).clone()
    a.retain_grad()
    a.mul_(2)
    a.mul_(2)
    a.sum().backward()
    # the gradient with respect to the latest version of a
    np.testing.assert_allclose(np_of(a.grad), [1.0])
    assert a.retains_grad

    b = torch.tensor([1.0], requires_grad=True).clone()
    b.retain_grad()
    view = b[:]
    view *= 2
    b *= 2
    b.sum().backward()
    np.testing.assert_allclose(np_of(b.grad), [1.0])
    assert b.retains_grad and not view.retains_grad


# ----- .grad of non-leaves -----


def test_non_leaf_grad_warning_text():
    y = leaf([1.0]) * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert y.grad is None
    assert len(caught) == 1
    assert caught[0].category is UserWarning
    text = str(caught[0].message)
    assert text.startswith(
        NON_LEAF_GRAD + ". Its .grad attribute won't be populated during autograd.backward(). If you "
        "indeed want the .grad field to be populated for a non-leaf Tensor, use .retain_grad() on the "
        "non-leaf Tensor. If you access the non-leaf Tensor by mistake, make sure you access the leaf "
        "Tensor instead. See github.com/pytorch/pytorch/pull/30531 for more information."
    )


def test_no_warning_for_leaf_or_retained_grad():
    x = leaf([1.0])
    y = x * 2
    y.retain_grad()
    y.sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(np_of(x.grad), [2.0])
        np.testing.assert_allclose(np_of(y.grad), [1.0])
        assert torch.ones(1).grad is None


def test_a_hook_that_detaches_the_root_does_not_free_the_graph_backward_runs_through():
    # The engine keeps the graph alive through the roots it was given (it holds no handle to
    # the other nodes): here, once the hook detaches `y`, only the engine leads to h's node.
    x = leaf([1.0, 2.0])
    h = x * 3
    y = h * 2

    def hook(g):
        y.detach_()
        gc.collect()
        return g * 10

    h.register_hook(hook)
    del h
    y.backward(torch.ones(2, dtype=F64))
    np.testing.assert_array_equal(np_of(x.grad), [60.0, 60.0])  # d(6x)/dx, times 10 by the hook
    assert y.grad_fn is None and not y.requires_grad
