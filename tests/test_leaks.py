"""No leaks: graphs are freed once the last tensor is gone, including graphs that hold Python
objects referring back to their own tensors (issue 11).

Every scenario runs many times, then checks, after ``del`` and ``gc.collect()``, that the count of
live graph nodes is back to its baseline and that a weak reference to the tensor is dead.
"""

import gc
import weakref

import pytest
import rustgrad as torch

live_nodes = torch._rustgrad._live_nodes
live_node_names = torch._rustgrad._live_node_names

N = 2000


def _assert_collected(scenario, n=N):
    """Runs ``scenario()`` ``n`` times; each returns a weak reference to its tensor. After a
    collection, every graph is freed and every tensor dead."""
    gc.collect()
    base = live_nodes()
    refs = [scenario() for _ in range(n)]
    gc.collect()
    assert live_nodes() == base, live_node_names()
    assert sum(r() is not None for r in refs) == 0


class _SavesOutput(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        out = x.exp()
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out


def test_function_saving_its_output_is_freed_without_gc():
    # Saved outputs are kept without their grad_fn: no cycle, so reference counting alone frees them.
    gc.disable()
    try:
        base = live_nodes()
        for _ in range(N):
            x = torch.randn(3, requires_grad=True)
            y = _SavesOutput.apply(x)
            del x, y
        assert live_nodes() == base, live_node_names()
    finally:
        gc.enable()


def test_function_saving_its_output_still_works():
    x = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    y = _SavesOutput.apply(x)
    (saved,) = y.grad_fn.saved_tensors
    assert saved.grad_fn is y.grad_fn and torch.equal(saved, y)
    assert y.grad_fn.to_save is None  # as in PyTorch: the list is consumed when the node is recorded
    y.sum().backward()
    assert torch.allclose(x.grad, x.exp())
    _assert_collected(lambda: weakref.ref(_SavesOutput.apply(torch.randn(3, requires_grad=True))))


class _DirtySaves(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        x.mul_(2)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        return x

    @staticmethod
    def backward(ctx, g):
        (_x,) = ctx.saved_tensors
        return g * 2


def test_function_mark_dirty_saving_its_output_is_freed():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    y = _DirtySaves.apply(a * 1)
    y.sum().backward()
    assert a.grad.tolist() == [2.0, 2.0]

    def scenario():
        a = torch.randn(3, requires_grad=True)
        return weakref.ref(_DirtySaves.apply(a * 1))

    _assert_collected(scenario)


class _ReturnsSavedInput(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x

    @staticmethod
    def backward(ctx, g):
        (_x,) = ctx.saved_tensors
        return g


def test_function_saving_an_input_it_returns_is_freed():
    def scenario():
        x = torch.randn(3, requires_grad=True) * 1
        return weakref.ref(_ReturnsSavedInput.apply(x))

    _assert_collected(scenario)


def test_inplace_op_with_its_target_as_operand_is_freed():
    # y.mul_(y) saves y for a node that becomes y's own grad_fn.
    def scenario():
        a = torch.randn(3, requires_grad=True)
        y = a * 1
        y.mul_(y)
        return weakref.ref(y)

    gc.disable()
    try:
        base = live_nodes()
        refs = [scenario() for _ in range(N)]
        assert live_nodes() == base, live_node_names()  # no cycle at all: freed without the GC
        assert all(r() is None for r in refs)
    finally:
        gc.enable()


def test_inplace_op_with_its_target_as_operand_still_refuses_backward():
    # The saved operand was overwritten: backward fails as in PyTorch, naming the same producer.
    a = torch.randn(3, requires_grad=True)
    y = a * 1
    y.mul_(y)
    with pytest.raises(RuntimeError, match=r"which is output 0 of Mul, is at version 1; expected version 0"):
        y.sum().backward()
    # Ops that do not save the operand still differentiate: d(y + y)/da = 2.
    b = torch.randn(3, requires_grad=True)
    z = b * 1
    z.add_(z)
    z.sum().backward()
    assert b.grad.tolist() == [2.0, 2.0, 2.0]


def _in_place_on_views(kind):
    a = torch.randn(4, requires_grad=True)
    b = a * 1
    if kind == "view target":  # v.mul_(v)
        v = b.view(2, 2)
        v.mul_(v)
    elif kind == "sibling view":  # v.mul_(w), w another view of the same base
        v = b.view(2, 2)
        v.mul_(b.view(2, 2))
    elif kind == "base operand":  # v.mul_(b), b the base of v
        v = b.view(4)
        v.mul_(b)
    else:  # b.mul_(v), v a view of the target
        b.mul_(b.view(4))
    return b


@pytest.mark.parametrize("kind", ["view target", "sibling view", "base operand", "view operand"])
def test_inplace_op_on_aliases_of_its_operand_is_freed(kind):
    gc.disable()
    try:
        base = live_nodes()
        refs = [weakref.ref(_in_place_on_views(kind)) for _ in range(N // 4)]
        assert live_nodes() == base, live_node_names()
        assert all(r() is None for r in refs)
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("kind", "producer"),
    [
        ("view target", "AsStrided"),
        ("sibling view", "AsStrided"),
        ("base operand", "torch::autograd::CopySlices"),
        ("view operand", "AsStrided"),
    ],
)
def test_inplace_op_on_aliases_of_its_operand_refuses_backward(kind, producer):
    # As PyTorch: the saved operand was overwritten (and backward returns, it used to hang on
    # "base operand").
    b = _in_place_on_views(kind)
    with pytest.raises(RuntimeError, match=f"which is output 0 of {producer}, is at version 1; expected version 0"):
        b.sum().backward()


def test_leaf_hook_capturing_its_tensor_is_collected():
    def scenario():
        x = torch.randn(3, requires_grad=True)
        x.register_hook(lambda g: x * g)
        return weakref.ref(x)

    _assert_collected(scenario)


def test_hook_capturing_its_tensor_still_runs():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: x * g)
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0]


def test_non_leaf_hook_capturing_its_tensor_is_collected():
    def scenario():
        a = torch.randn(3, requires_grad=True)
        y = a * 2

        def hook(g):
            return y * g

        y.register_hook(hook)
        return weakref.ref(y)

    _assert_collected(scenario)


def test_node_hooks_capturing_the_tensor_are_collected():
    def post():
        a = torch.randn(3, requires_grad=True)
        y = a * 2
        y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: (y,))
        return weakref.ref(y)

    def pre():
        a = torch.randn(3, requires_grad=True)
        y = a * 2
        y.grad_fn.register_prehook(lambda grad_outputs: (y,))
        return weakref.ref(y)

    _assert_collected(post)
    _assert_collected(pre)


def test_node_hook_capturing_its_node_is_collected():
    def scenario():
        a = torch.randn(3, requires_grad=True)
        node = (a * 2).grad_fn
        node.register_hook(lambda *grads: node)
        return weakref.ref(node)

    _assert_collected(scenario)


def test_post_accumulate_grad_hook_capturing_its_tensor_is_collected():
    def scenario():
        x = torch.randn(3, requires_grad=True)
        x.register_post_accumulate_grad_hook(lambda t: x)
        return weakref.ref(x)

    _assert_collected(scenario)


class _StoresOutput(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        out = x * 2
        ctx.out = out  # a plain attribute: a cycle ctx -> out -> node -> ctx
        ctx.x = x
        return out

    @staticmethod
    def backward(ctx, g):
        return g * 2


def test_function_ctx_storing_tensors_as_attributes_is_collected():
    def scenario():
        a = torch.randn(3, requires_grad=True)
        return weakref.ref(_StoresOutput.apply(a * 1))

    _assert_collected(scenario)


def test_live_tensors_with_self_hooks_are_not_collected():
    # The collector must only free unreachable cycles: a kept tensor keeps its hook and graph.
    kept = []
    for _ in range(100):
        x = torch.ones(2, requires_grad=True)
        x.register_hook(lambda g, x=x: g * 2)
        y = x * 3
        y.register_hook(lambda g, y=y: g + 0)
        y.grad_fn.register_hook(lambda gi, go, y=y: None)
        kept.append(y)
    gc.collect()
    for y in kept:
        y.sum().backward()
    gc.collect()
    x = kept[0].grad_fn.next_functions[0][0].variable
    assert x.grad.tolist() == [6.0, 6.0]
