"""Grad modes: no_grad, enable_grad, set_grad_enabled and inference_mode.

Scenarios follow PyTorch's own test_autograd.py (grad mode / inference mode sections); behaviour
and messages are those of PyTorch 2.x (validated by running this file against torch).
"""

import re
import threading

import numpy as np
import pytest
import rustgrad as torch

INFERENCE_SAVED = (
    "Inference tensors cannot be saved for backward. Please do not use Tensors created in inference "
    "mode in computation tracked by autograd. To work around this, you can make a clone to get a "
    "normal tensor and use it in autograd, or use `torch.no_grad()` instead of `torch.inference_mode()`."
)
INFERENCE_INPLACE = (
    "Inplace update to inference tensor outside InferenceMode is not allowed.You can make a clone to "
    "get a normal tensor before doing inplace update.See https://github.com/pytorch/rfcs/pull/17 for "
    "more details."
)


def np_of(t):
    return t.detach().numpy()


def leaf(values):
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


# ----- no_grad / enable_grad / set_grad_enabled as context managers -----


def test_no_grad_context():
    x = leaf([1.0, 2.0])
    assert torch.is_grad_enabled()
    with torch.no_grad() as entered:
        assert entered is None
        assert not torch.is_grad_enabled()
        y = x * 2
    assert torch.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    np.testing.assert_allclose(np_of(y), [2.0, 4.0])
    with pytest.raises(RuntimeError, match=re.escape(
            "element 0 of tensors does not require grad and does not have a grad_fn")):
        y.sum().backward()


def test_factories_inside_no_grad_still_make_leaves_requiring_grad():
    with torch.no_grad():
        w = torch.ones(2, requires_grad=True)
        assert w.requires_grad and w.is_leaf
        assert not (w * 2).requires_grad
    assert (w * 2).requires_grad


def test_nested_no_grad_and_enable_grad():
    x = leaf([1.0])
    with torch.no_grad():
        with torch.enable_grad():
            assert torch.is_grad_enabled()
            y = x * 2
        assert not torch.is_grad_enabled()
        z = x * 2
        with torch.no_grad():
            assert not torch.is_grad_enabled()
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    assert y.requires_grad and type(y.grad_fn).__name__ == "MulBackward0"
    assert not z.requires_grad


def test_set_grad_enabled_context():
    x = leaf([1.0])
    with torch.set_grad_enabled(False) as entered:
        assert entered is None
        assert not torch.is_grad_enabled()
        y = x * 2
        with torch.set_grad_enabled(True):
            assert torch.is_grad_enabled()
            z = x * 2
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    assert not y.requires_grad and z.requires_grad


def test_set_grad_enabled_as_plain_call():
    x = leaf([1.0])
    try:
        torch.set_grad_enabled(False)
        assert not torch.is_grad_enabled()
        assert not (x * 2).requires_grad
        torch.set_grad_enabled(True)
        assert torch.is_grad_enabled()
        assert (x * 2).requires_grad
    finally:
        torch.set_grad_enabled(True)


def test_set_grad_enabled_object_restores_mode_at_exit():
    try:
        guard = torch.set_grad_enabled(False)  # takes effect at once
        assert not torch.is_grad_enabled()
        with guard:
            assert not torch.is_grad_enabled()
        assert torch.is_grad_enabled()  # the mode from before the call
    finally:
        torch.set_grad_enabled(True)


@pytest.mark.parametrize("outer", [True, False])
def test_set_grad_enabled_restores_after_exception(outer):
    try:
        torch.set_grad_enabled(outer)
        with pytest.raises(KeyError), torch.set_grad_enabled(not outer):
            assert torch.is_grad_enabled() is (not outer)
            raise KeyError("inside")
        assert torch.is_grad_enabled() is outer
        with pytest.raises(ValueError), torch.no_grad():
            raise ValueError("inside")
        assert torch.is_grad_enabled() is outer
        with pytest.raises(ValueError), torch.enable_grad():
            raise ValueError("inside")
        assert torch.is_grad_enabled() is outer
    finally:
        torch.set_grad_enabled(True)


def test_set_grad_enabled_needs_a_bool():
    with pytest.raises(TypeError, match=re.escape(
            "set_grad_enabled(): argument 'enabled' (position 1) must be bool, not function")):
        @torch.set_grad_enabled
        def f():
            pass


# ----- decorators -----


def test_decorators_with_and_without_parentheses():
    @torch.no_grad()
    def a():
        return torch.is_grad_enabled()

    @torch.no_grad
    def b():
        return torch.is_grad_enabled()

    @torch.enable_grad()
    def c():
        return torch.is_grad_enabled()

    @torch.enable_grad
    def d():
        return torch.is_grad_enabled()

    @torch.set_grad_enabled(False)
    def e():
        return torch.is_grad_enabled()

    assert torch.is_grad_enabled()  # decorating does not change the mode
    assert (a(), b(), e()) == (False, False, False)
    with torch.no_grad():
        assert (c(), d()) == (True, True)
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def test_decorator_keeps_name_doc_and_result():
    @torch.no_grad()
    def double(x):
        """Doubles x."""
        return x * 2

    assert double.__name__ == "double" and double.__doc__ == "Doubles x."
    y = double(leaf([1.5]))
    assert not y.requires_grad
    np.testing.assert_allclose(np_of(y), [3.0])


def test_decorated_function_restores_mode_after_exception():
    @torch.no_grad()
    def fails():
        raise RuntimeError("from the body")

    with pytest.raises(RuntimeError, match="^from the body$"):
        fails()
    assert torch.is_grad_enabled()


# ----- generators -----


def test_no_grad_generator_applies_only_inside_body():
    @torch.no_grad()
    def gen():
        for _ in range(3):
            yield torch.is_grad_enabled()

    seen = [(inside, torch.is_grad_enabled()) for inside in gen()]
    assert seen == [(False, True), (False, True), (False, True)]


def test_enable_grad_generator_with_send():
    @torch.enable_grad()
    def gen():
        received = yield torch.is_grad_enabled()
        yield received, torch.is_grad_enabled()

    with torch.no_grad():
        g = gen()
        assert next(g) is True
        assert not torch.is_grad_enabled()
        assert g.send(5) == (5, True)
        assert not torch.is_grad_enabled()


def test_generator_throw_and_close_run_in_the_mode():
    log = []

    @torch.no_grad()
    def gen():
        try:
            yield 1
        except ValueError:
            log.append(("except", torch.is_grad_enabled()))
            yield 2
        finally:
            log.append(("finally", torch.is_grad_enabled()))

    g = gen()
    assert next(g) == 1
    assert g.throw(ValueError("x")) == 2
    assert torch.is_grad_enabled()
    g.close()
    assert log == [("except", False), ("finally", False)]
    assert torch.is_grad_enabled()


def test_generator_building_graphs():
    x = leaf([2.0])

    @torch.no_grad()
    def gen():
        yield x * 2
        yield x * 3

    outs = list(gen())
    assert [o.requires_grad for o in outs] == [False, False]
    assert (x * 4).requires_grad


# ----- thread locality -----


def test_grad_mode_is_thread_local():
    result = {}

    def worker():
        result["worker"] = torch.is_grad_enabled()
        result["requires_grad"] = (torch.ones(1, requires_grad=True) * 2).requires_grad

    with torch.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        result["main"] = torch.is_grad_enabled()
    assert result == {"worker": True, "requires_grad": True, "main": False}


def test_inference_mode_is_thread_local():
    result = {}

    def worker():
        result["worker"] = torch.is_inference_mode_enabled()

    with torch.inference_mode():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert result == {"worker": False}


# ----- backward / grad while grad mode is off -----


def test_backward_inside_no_grad_still_computes_grads():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    with torch.no_grad():
        y.backward()
    np.testing.assert_allclose(np_of(x.grad), [2.0, 4.0])


def test_create_graph_inside_no_grad_builds_graph():
    x = leaf([2.0])
    y = x**3
    with torch.no_grad():
        (g,) = torch.autograd.grad(y, x, create_graph=True)
    assert g.requires_grad
    np.testing.assert_allclose(np_of(g), [12.0])
    (gg,) = torch.autograd.grad(g, x)
    np.testing.assert_allclose(np_of(gg), [12.0])


# ----- inference_mode -----


def test_inference_mode_context():
    x = leaf([1.0, 2.0])
    assert not torch.is_inference_mode_enabled()
    with torch.inference_mode() as entered:
        assert entered is None
        assert torch.is_inference_mode_enabled()
        assert not torch.is_grad_enabled()
        y = x * 2
        z = torch.ones(2)
        assert y.is_inference() and z.is_inference()
        assert not y.requires_grad and y.grad_fn is None
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()
    assert not x.is_inference()
    assert y.is_inference()  # stays an inference tensor
    np.testing.assert_allclose(np_of(y), [2.0, 4.0])


def test_no_grad_is_not_inference_mode():
    with torch.no_grad():
        assert not torch.is_inference_mode_enabled()
        t = torch.ones(2)
    assert not t.is_inference()


def test_inference_mode_decorators():
    @torch.inference_mode
    def bare():
        return torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    @torch.inference_mode()
    def called():
        return torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    @torch.inference_mode(False)
    def off():
        return torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    assert bare() == (True, False)
    assert called() == (True, False)
    assert off() == (False, True)
    assert not torch.is_inference_mode_enabled()


def test_inference_mode_generator():
    @torch.inference_mode()
    def gen():
        yield torch.is_inference_mode_enabled()
        yield torch.is_inference_mode_enabled()

    assert [(v, torch.is_inference_mode_enabled()) for v in gen()] == [(True, False), (True, False)]


def test_inference_mode_false_inside_inference_mode():
    x = leaf([1.0, 2.0])
    with torch.inference_mode():
        with torch.inference_mode(False):
            assert not torch.is_inference_mode_enabled()
            assert torch.is_grad_enabled()
            y = x * 2
            assert y.requires_grad and not y.is_inference()
            assert type(y.grad_fn).__name__ == "MulBackward0"
        assert torch.is_inference_mode_enabled() and not torch.is_grad_enabled()
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [2.0, 2.0])


def test_inference_mode_false_enables_grad_inside_no_grad():
    with torch.no_grad():
        with torch.inference_mode(False):
            assert torch.is_grad_enabled()
            assert not torch.is_inference_mode_enabled()
        assert not torch.is_grad_enabled()


def test_enable_grad_inside_inference_mode_records_nothing():
    with torch.inference_mode(), torch.enable_grad():
        assert torch.is_grad_enabled() and torch.is_inference_mode_enabled()
        w = torch.ones(1, requires_grad=True)
        y = w * 2
    assert not y.requires_grad and y.is_inference()


def test_inference_tensor_cannot_be_saved_for_backward():
    x = leaf([1.0, 2.0])
    with torch.inference_mode():
        t = torch.full((2,), 3.0, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=re.escape(INFERENCE_SAVED)):
        x * t  # mul saves t for x's gradient
    with torch.inference_mode():
        u = x * 1
    with pytest.raises(RuntimeError, match=re.escape(INFERENCE_SAVED)):
        u * x


def test_inference_tensor_in_graph_when_not_saved():
    x = leaf([1.0, 2.0])
    with torch.inference_mode():
        t = torch.full((2,), 3.0, dtype=torch.float64)
    y = x + t  # add saves nothing
    assert y.requires_grad and not y.is_inference()
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [1.0, 1.0])
    # ops on inference tensors alone are fine outside inference mode
    e = t.exp()
    assert not e.requires_grad
    np.testing.assert_allclose(np_of(e), np.exp([3.0, 3.0]))


@pytest.mark.parametrize(
    "op",
    [lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.zero_(), lambda t: t.__setitem__(0, 1.0)],
)
def test_in_place_on_inference_tensor_outside_raises(op):
    with torch.inference_mode():
        t = torch.ones(2)
    with pytest.raises(RuntimeError, match=re.escape(INFERENCE_INPLACE)):
        op(t)


def test_in_place_on_inference_tensor_inside_is_allowed():
    with torch.inference_mode():
        t = torch.ones(2)
        t.add_(1)
        t[0] = 5.0
    assert t.is_inference()
    np.testing.assert_allclose(np_of(t), [5.0, 2.0])


def test_normal_tensor_in_place_inside_inference_mode():
    u = torch.ones(2)
    with torch.inference_mode():
        u.add_(1)
        v = u[0:1]
        assert not v.is_inference()  # a view of a normal tensor
        assert (u * 1).is_inference()
    assert not u.is_inference() and u._version == 1
    np.testing.assert_allclose(np_of(u), [2.0, 2.0])


def test_inference_tensor_has_no_version_counter():
    with torch.inference_mode():
        t = torch.ones(2)
    with pytest.raises(RuntimeError, match=re.escape("Inference tensors do not track version counter.")):
        _ = t._version


def test_requires_grad_on_inference_tensor_outside_raises():
    with torch.inference_mode():
        t = torch.ones(2)
    with pytest.raises(RuntimeError, match=re.escape(
            "Setting requires_grad=True on inference tensor outside InferenceMode is not allowed.")):
        t.requires_grad_()


def test_view_of_inference_tensor_is_inference():
    with torch.inference_mode():
        t = torch.ones(2)
    assert t.view(2, 1).is_inference()
    assert t[0:1].is_inference()


def test_clone_of_inference_tensor_is_normal():
    x = leaf([1.0, 2.0])
    with torch.inference_mode():
        t = torch.full((2,), 4.0, dtype=torch.float64)
    c = t.clone()
    assert not c.is_inference()
    (x * c).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [4.0, 4.0])
    c.add_(1)  # a normal tensor: in-place allowed
    np.testing.assert_allclose(np_of(c), [5.0, 5.0])


def test_leaf_requiring_grad_made_in_inference_mode():
    with torch.inference_mode():
        w = torch.ones(2, requires_grad=True)
        assert w.requires_grad and w.is_leaf and w.is_inference()
        assert not (w * 2).requires_grad
