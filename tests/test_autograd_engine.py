"""Autograd engine semantics, checked against closed forms (expected values are PyTorch 2.x's).

Covers gradient accumulation, retain_graph, create_graph (higher order), autograd.grad options,
backward(inputs=...), retain_grad, hooks, requires_grad_/detach/.data, grad modes, the graph's
node structure, broadcasting reductions of gradients and dtype promotion.
"""

import math
import threading
import warnings

import numpy as np
import pytest
import rustgrad as torch

SECOND_BACKWARD = "Trying to backward through the graph a second time"
UNUSED_MSG = (
    "The differentiated Tensor at index 1 appears to not have been used in the graph. "
    "Set allow_unused=True if this is the desired behavior."
)


def np_of(t):
    return t.detach().numpy()


# ----- accumulation and retain_graph -----


def test_grad_accumulates_across_backward_calls():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [2.0, -4.0, 6.0])
    (x * x * x).sum().backward()  # adds 3 x**2
    np.testing.assert_allclose(np_of(x.grad), [2.0 + 3.0, -4.0 + 12.0, 6.0 + 27.0])
    x.grad.zero_()
    (2 * x).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [2.0, 2.0, 2.0])
    x.grad = None
    (x * 5).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [5.0, 5.0, 5.0])


def test_grad_attribute_is_a_stable_object():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    g = x.grad
    assert x.grad is g
    (x * 3).sum().backward()  # accumulated in place: the same tensor holds the sum
    assert x.grad is g
    np.testing.assert_allclose(np_of(g), [6.0, 6.0])


def test_second_backward_without_retain_graph_raises():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError) as info:
        y.backward()
    assert str(info.value).startswith(SECOND_BACKWARD)
    assert "retain_graph=True" in str(info.value)
    np.testing.assert_allclose(np_of(x.grad), [2.0, 4.0])  # unchanged by the failed call


def test_second_autograd_grad_without_retain_graph_raises():
    x = torch.tensor(3.0, requires_grad=True)
    y = x.exp()
    (g,) = torch.autograd.grad(y, x)
    assert g.item() == pytest.approx(math.exp(3.0))
    with pytest.raises(RuntimeError, match="^" + SECOND_BACKWARD):
        torch.autograd.grad(y, x)


def test_retain_graph_allows_second_backward():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(np_of(x.grad), [6.0, 12.0])
    with pytest.raises(RuntimeError, match="^" + SECOND_BACKWARD):
        y.backward()


def test_add_only_graph_backpropagates_twice_without_retain_graph():
    # AddBackward0 saves no tensors, so PyTorch lets it run again.
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    z = torch.tensor([3.0, 4.0], requires_grad=True)
    y = x + z + x
    assert y.grad_fn.name() == "AddBackward0"
    y.backward(torch.ones(2))
    y.backward(torch.ones(2))
    np.testing.assert_allclose(np_of(x.grad), [4.0, 4.0])
    np.testing.assert_allclose(np_of(z.grad), [2.0, 2.0])

    s = torch.tensor(2.0, requires_grad=True)
    out = s + 1 + s
    out.backward()
    out.backward()
    assert s.grad.item() == 4.0


def test_mul_by_python_scalar_saves_and_needs_retain_graph():
    x = torch.tensor(2.0, requires_grad=True)
    y = x * 1.0
    y.backward()
    with pytest.raises(RuntimeError, match="^" + SECOND_BACKWARD):
        y.backward()


# ----- create_graph -----


def test_create_graph_higher_order_power():
    x = torch.tensor(1.0, requires_grad=True)
    y = x ** 6
    (g1,) = torch.autograd.grad(y, x, create_graph=True)
    (g2,) = torch.autograd.grad(g1, x, create_graph=True)
    (g3,) = torch.autograd.grad(g2, x)
    assert g1.requires_grad and g2.requires_grad
    assert not g3.requires_grad
    assert (g1.item(), g2.item(), g3.item()) == (6.0, 30.0, 120.0)


def test_create_graph_sin_cos_chain():
    a = 0.7
    x = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    (d1,) = torch.autograd.grad(x.sin(), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1, x, create_graph=True)
    (d3,) = torch.autograd.grad(d2, x, create_graph=True)
    (d4,) = torch.autograd.grad(d3, x)
    assert d1.item() == pytest.approx(math.cos(a), abs=1e-14)
    assert d2.item() == pytest.approx(-math.sin(a), abs=1e-14)
    assert d3.item() == pytest.approx(-math.cos(a), abs=1e-14)
    assert d4.item() == pytest.approx(math.sin(a), abs=1e-14)


def test_backward_create_graph_makes_differentiable_grad():
    x = torch.tensor(1.0, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns about the param/grad reference cycle
        (x ** 3).backward(create_graph=True)
    g = x.grad
    assert g.item() == 3.0
    assert g.requires_grad and g.grad_fn is not None
    x.grad = None
    g.backward()
    assert x.grad.item() == 6.0


def test_without_create_graph_gradient_is_constant():
    x = torch.tensor(2.0, requires_grad=True)
    (g,) = torch.autograd.grad(x ** 3, x)
    assert g.item() == 12.0
    assert not g.requires_grad and g.grad_fn is None


def test_hessian_vector_product_closed_form():
    # f(x) = sum(x_i^2 * x_j) over i, j = (sum x^2)(sum x); H v computed by double backward.
    x = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    f = (x * x).sum() * x.sum()
    (g,) = torch.autograd.grad(f, x, create_graph=True)
    (hv,) = torch.autograd.grad(g, x, v)
    xn, vn = np_of(x), np_of(v)
    s1, s2 = xn.sum(), (xn * xn).sum()
    np.testing.assert_allclose(np_of(g), 2 * xn * s1 + s2)
    hess = 2 * s1 * np.eye(3) + 2 * xn[:, None] + 2 * xn[None, :]
    np.testing.assert_allclose(np_of(hv), hess @ vn)


# ----- autograd.grad -----


def test_grad_with_grad_outputs():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = torch.tensor([1.0, 0.5, -2.0])
    (g,) = torch.autograd.grad(x * x, x, grad_outputs=v)
    np.testing.assert_allclose(np_of(g), 2 * np.array([1.0, 2.0, 3.0]) * np_of(v))
    assert x.grad is None  # grad() does not touch .grad


def test_grad_with_several_outputs_and_grad_outputs():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad([a * 2, a * a], a, [torch.ones(2), torch.tensor([1.0, 10.0])])
    np.testing.assert_allclose(np_of(g), [2.0 + 2.0, 2.0 + 40.0])
    (g,) = torch.autograd.grad([(a * 2).sum(), (a * a).sum()], [a])
    np.testing.assert_allclose(np_of(g), [4.0, 6.0])


def test_grad_of_several_inputs_returns_tuple():
    a = torch.tensor(2.0, requires_grad=True)
    b = torch.tensor(3.0, requires_grad=True)
    ga, gb = torch.autograd.grad(a * b + a, [a, b])
    assert (ga.item(), gb.item()) == (4.0, 2.0)


def test_grad_unused_input_raises():
    x = torch.ones(2, requires_grad=True)
    z = torch.ones(2, requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError) as info:
        torch.autograd.grad(y, [x, z])
    assert str(info.value) == UNUSED_MSG


def test_grad_unused_input_allowed_gives_none():
    x = torch.ones(2, requires_grad=True)
    z = torch.ones(2, requires_grad=True)
    y = (x * 2).sum()
    gx, gz = torch.autograd.grad(y, [x, z], allow_unused=True)
    np.testing.assert_allclose(np_of(gx), [2.0, 2.0])
    assert gz is None


def test_grad_materialize_grads_gives_zeros():
    x = torch.ones(2, requires_grad=True)
    z = torch.ones(3, requires_grad=True)
    gx, gz = torch.autograd.grad((x * 2).sum(), [x, z], materialize_grads=True)
    np.testing.assert_allclose(np_of(gz), np.zeros(3))
    np.testing.assert_allclose(np_of(gx), [2.0, 2.0])


# ----- backward(inputs=...) -----


def test_backward_inputs_only_those_leaves_get_grad():
    a = torch.tensor(2.0, requires_grad=True)
    b = torch.tensor(3.0, requires_grad=True)
    c = torch.tensor(5.0, requires_grad=True)
    (a * b * c).backward(inputs=[a, c])
    assert a.grad.item() == 15.0
    assert b.grad is None
    assert c.grad.item() == 6.0


def test_autograd_backward_inputs_single_tensor():
    a = torch.tensor(2.0, requires_grad=True)
    b = torch.tensor(3.0, requires_grad=True)
    torch.autograd.backward(a * b, inputs=b)
    assert a.grad is None
    assert b.grad.item() == 2.0


def test_backward_inputs_non_leaf_gets_grad():
    a = torch.tensor(2.0, requires_grad=True)
    m = a * 3
    (m * m).backward(inputs=[m])
    assert m.retains_grad  # PyTorch marks a non-leaf named in inputs= as retaining its grad
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # so reading m.grad must not warn
        assert m.grad.item() == 12.0
    assert a.grad is None


# ----- retain_grad -----


def test_retain_grad_on_non_leaf():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert not y.is_leaf and not y.retains_grad
    y.retain_grad()
    assert y.retains_grad
    (y * y).sum().backward()
    np.testing.assert_allclose(np_of(y.grad), [4.0, 8.0])  # 2y
    np.testing.assert_allclose(np_of(x.grad), [8.0, 16.0])  # 2y * 2


def test_non_leaf_grad_is_none_with_warning():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    (y * y).sum().backward()
    with pytest.warns(UserWarning, match="is not a leaf Tensor is being accessed"):
        assert y.grad is None


def test_non_leaf_grad_warning_points_at_caller():
    y = torch.tensor([1.0], requires_grad=True) * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _ = y.grad
    assert len(caught) == 1
    assert caught[0].category is UserWarning
    assert caught[0].filename == __file__  # attributed to the line reading .grad


# ----- hooks -----


def test_leaf_hook_observes_gradient():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(np_of(g).copy()))
    (x * 3).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    np.testing.assert_allclose(np_of(x.grad), [3.0, 3.0])


def test_leaf_hook_replaces_gradient_and_remove():
    x = torch.tensor(1.0, requires_grad=True)
    handle = x.register_hook(lambda g: g * 10)
    (x * 3).backward()
    assert x.grad.item() == 30.0
    handle.remove()
    x.grad = None
    (x * 3).backward()
    assert x.grad.item() == 3.0


def test_non_leaf_hook_replaces_gradient_flowing_on():
    a = torch.tensor(2.0, requires_grad=True)
    m = a * 3
    seen = []

    def hook(g):
        seen.append(g.item())
        return g + 100

    m.register_hook(hook)
    (m * 2).backward()
    assert seen == [2.0]
    assert a.grad.item() == (2.0 + 100.0) * 3.0


def test_non_leaf_hook_remove():
    a = torch.tensor(2.0, requires_grad=True)
    m = a * 3
    calls = []
    handle = m.register_hook(lambda g: calls.append(1))
    handle.remove()
    (m * 2).backward()
    assert calls == []
    assert a.grad.item() == 6.0


def test_hook_returning_none_keeps_gradient_and_hooks_chain():
    x = torch.tensor([1.0, -1.0], requires_grad=True)
    order = []
    x.register_hook(lambda g: order.append("first"))
    x.register_hook(lambda g: (order.append("second"), g * 2)[1])
    x.register_hook(lambda g: (order.append("third"), g + 1)[1])
    (x * 4).sum().backward()
    assert order == ["first", "second", "third"]
    np.testing.assert_allclose(np_of(x.grad), [9.0, 9.0])


def test_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        torch.ones(2).register_hook(lambda g: g)


# ----- requires_grad_, detach, .data -----


def test_requires_grad_underscore():
    x = torch.ones(2)
    assert not x.requires_grad
    assert x.requires_grad_() is x
    assert x.requires_grad and x.is_leaf
    (x * 2).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [2.0, 2.0])
    assert x.requires_grad_(False) is x
    assert not x.requires_grad
    assert not (x * 2).requires_grad


def test_detach_shares_memory_and_stops_gradient():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    assert d.data_ptr() == x.data_ptr()
    d[0] = 5.0
    np.testing.assert_allclose(np_of(x), [5.0, 2.0, 3.0])
    with torch.no_grad():
        x.mul_(2)
    np.testing.assert_allclose(d.numpy(), [10.0, 4.0, 6.0])
    y = x * x.detach()  # gradient flows through the first factor only
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [10.0, 4.0, 6.0])


def test_detach_shares_version_counter():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    x.detach().mul_(3)
    assert x._version == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_data_changes_are_not_tracked():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    assert not x.data.requires_grad
    assert x.data.data_ptr() == x.data_ptr()
    y = x * x
    v0 = x._version
    x.data.mul_(3)  # silently changes the saved value; no version bump on x
    assert x._version == v0
    np.testing.assert_allclose(np_of(x), [3.0, 6.0])
    y.sum().backward()  # no error: PyTorch uses the modified value
    np.testing.assert_allclose(np_of(x.grad), [6.0, 12.0])


def test_data_has_separate_version_counter():
    x = torch.ones(3, requires_grad=True)
    d = x.data
    d.add_(1)
    assert d._version == 1
    assert x._version == 0
    assert x.requires_grad and not d.requires_grad


def test_assign_data():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    x.data = torch.tensor([5.0, 7.0])
    assert x.requires_grad and x.is_leaf
    (x * x).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [10.0, 14.0])


# ----- grad modes -----


def test_no_grad_context_manager():
    x = torch.tensor(1.0, requires_grad=True)
    assert torch.is_grad_enabled()
    with torch.no_grad():
        assert not torch.is_grad_enabled()
        y = x * 2
    assert torch.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert (x * 2).requires_grad


def test_enable_grad_inside_no_grad():
    x = torch.tensor(1.0, requires_grad=True)
    with torch.no_grad():
        with torch.enable_grad():
            assert torch.is_grad_enabled()
            y = x * 2
        assert not torch.is_grad_enabled()
        z = x * 2
    assert y.requires_grad and y.grad_fn is not None
    assert not z.requires_grad


def test_set_grad_enabled_context_manager():
    x = torch.tensor(1.0, requires_grad=True)
    with torch.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with torch.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def test_set_grad_enabled_as_function():
    x = torch.tensor(1.0, requires_grad=True)
    try:
        torch.set_grad_enabled(False)
        assert not torch.is_grad_enabled()
        assert not (x * 2).requires_grad
        torch.set_grad_enabled(True)
        assert torch.is_grad_enabled()
        assert (x * 2).requires_grad
    finally:
        torch.set_grad_enabled(True)


def test_grad_mode_decorators():
    x = torch.tensor(1.0, requires_grad=True)

    @torch.no_grad()
    def called():
        return torch.is_grad_enabled(), (x * 2).requires_grad

    @torch.no_grad
    def bare():
        return torch.is_grad_enabled(), (x * 2).requires_grad

    @torch.enable_grad()
    def enabled():
        return torch.is_grad_enabled(), (x * 2).requires_grad

    @torch.enable_grad
    def enabled_bare():
        return torch.is_grad_enabled()

    @torch.set_grad_enabled(False)
    def disabled():
        return torch.is_grad_enabled()

    assert torch.is_grad_enabled()  # decorating does not change the mode
    assert called() == (False, False)
    assert bare() == (False, False)
    assert bare.__name__ == "bare"
    assert torch.is_grad_enabled()
    with torch.no_grad():
        assert enabled() == (True, True)
        assert enabled_bare() is True
        assert not torch.is_grad_enabled()
    assert disabled() is False
    assert torch.is_grad_enabled()


def test_no_grad_decorated_generator():
    @torch.no_grad()
    def gen():
        for _ in range(2):
            yield torch.is_grad_enabled()

    assert list(gen()) == [False, False]
    assert torch.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(KeyError), torch.no_grad():
        raise KeyError("inside")
    assert torch.is_grad_enabled()

    @torch.no_grad()
    def failing():
        raise ValueError("inside")

    with pytest.raises(ValueError):
        failing()
    assert torch.is_grad_enabled()

    with torch.no_grad():
        with pytest.raises(KeyError), torch.enable_grad():
            raise KeyError("inside")
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()

    with pytest.raises(KeyError), torch.set_grad_enabled(False):
        raise KeyError("inside")
    assert torch.is_grad_enabled()


def test_grad_mode_is_thread_local_in_decorator():
    result = {}

    def worker():
        result["worker"] = torch.is_grad_enabled()

    with torch.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert result["worker"] is True


# ----- graph structure -----


def test_next_functions_and_accumulate_grad():
    x = torch.ones(2, requires_grad=True)
    y = x * 2
    nf = y.grad_fn.next_functions
    assert isinstance(nf, tuple) and len(nf) == 2
    acc, idx = nf[0]
    assert idx == 0
    assert type(acc).__name__ == "AccumulateGrad"
    assert acc.variable is x
    assert nf[1] == (None, 0)
    assert acc.next_functions == ()
    # the same AccumulateGrad node is shared by every use of x
    assert (x + 1).grad_fn.next_functions[0][0] is acc


def test_accumulate_grad_name():
    x = torch.ones(2, requires_grad=True)
    acc = (x * 2).grad_fn.next_functions[0][0]
    assert acc.name() == "torch::autograd::AccumulateGrad"


def test_next_functions_chain():
    x = torch.ones(2, requires_grad=True)
    z = (x * x + x).sum()
    assert z.grad_fn.name() == "SumBackward0"
    ((add, i),) = z.grad_fn.next_functions
    assert i == 0 and add.name() == "AddBackward0"
    (mul, _), (acc, _) = add.next_functions
    assert mul.name() == "MulBackward0"
    assert type(acc).__name__ == "AccumulateGrad" and acc.variable is x
    (a1, _), (a2, _) = mul.next_functions
    assert a1 is acc and a2 is acc
    assert x.grad_fn is None and x.is_leaf


def test_grad_fn_names_of_common_ops():
    x = torch.ones(2, 2, requires_grad=True)
    names = {
        "AddBackward0": x + x,
        "SubBackward0": x - x,
        "MulBackward0": x * x,
        "DivBackward0": x / (x + 1),
        "NegBackward0": -x,
        "PowBackward0": x ** 2,
        "PowBackward1": x ** x,
        "ExpBackward0": x.exp(),
        "MmBackward0": x.mm(x),
        "TBackward0": x.t(),
        "SumBackward0": x.sum(),
        "SumBackward1": x.sum(0),
        "MeanBackward0": x.mean(),
        "ViewBackward0": x.view(4),
        "CloneBackward0": x.clone(),
        "TanhBackward0": x.tanh(),
    }
    for name, t in names.items():
        assert t.grad_fn.name() == name


# ----- broadcasting and dtypes -----


def test_broadcast_gradients_reduce_to_input_shapes():
    a = torch.tensor([[1.0], [2.0], [3.0]], requires_grad=True)
    b = torch.tensor([10.0, 20.0, 30.0, 40.0], requires_grad=True)
    (a + b).sum().backward()
    assert tuple(a.grad.shape) == (3, 1)
    assert tuple(b.grad.shape) == (4,)
    np.testing.assert_allclose(np_of(a.grad), [[4.0], [4.0], [4.0]])
    np.testing.assert_allclose(np_of(b.grad), [3.0, 3.0, 3.0, 3.0])


def test_broadcast_mul_gradients_closed_form():
    a = torch.tensor([[1.0], [2.0], [3.0]], requires_grad=True)
    b = torch.tensor([10.0, 20.0, 30.0, 40.0], requires_grad=True)
    (a * b).sum().backward()
    np.testing.assert_allclose(np_of(a.grad), [[100.0], [100.0], [100.0]])
    np.testing.assert_allclose(np_of(b.grad), [6.0, 6.0, 6.0, 6.0])


def test_broadcast_with_0d_tensor_gradient():
    s = torch.tensor(2.0, requires_grad=True)
    m = torch.ones(2, 3, requires_grad=True)
    (s * m).sum().backward()
    assert tuple(s.grad.shape) == ()
    assert s.grad.item() == 6.0
    np.testing.assert_allclose(np_of(m.grad), np.full((2, 3), 2.0))


def test_float32_with_float64_0d_keeps_float32():
    f = torch.ones(3, requires_grad=True)
    d = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    r = f * d
    assert r.dtype == torch.float32
    r.sum().backward()
    assert f.grad.dtype == torch.float32
    assert d.grad.dtype == torch.float64
    assert d.grad.item() == 3.0
    np.testing.assert_allclose(np_of(f.grad), [2.0, 2.0, 2.0])


def test_float32_with_float64_vector_promotes():
    f = torch.ones(3, requires_grad=True)
    d = torch.ones(3, dtype=torch.float64, requires_grad=True)
    r = f + d
    assert r.dtype == torch.float64
    r.sum().backward()
    assert f.grad.dtype == torch.float32
    assert d.grad.dtype == torch.float64


def test_integer_times_float_scalar_is_float32():
    i = torch.tensor([1, 2, 3])
    assert i.dtype == torch.int64
    r = i * 2.5
    assert r.dtype == torch.float32
    np.testing.assert_allclose(r.numpy(), [2.5, 5.0, 7.5])
    assert (i * 2).dtype == torch.int64


def test_float32_times_python_float_stays_float32():
    x = torch.ones(2, requires_grad=True)
    y = x * 0.1
    assert y.dtype == torch.float32
    y.sum().backward()
    assert x.grad.dtype == torch.float32
    np.testing.assert_allclose(np_of(x.grad), [0.1, 0.1], rtol=1e-6)
