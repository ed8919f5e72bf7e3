"""Custom autograd Functions (``rustgrad.autograd.Function``), checked against closed forms.

Scenarios follow PyTorch's own test_autograd.py (custom Function section); expected names,
messages and values are those of PyTorch 2.x (validated by running this file against torch).
"""

import math
import re

import numpy as np
import pytest
import rustgrad as torch
from gradcheck import gradcheck, gradgradcheck

Function = torch.autograd.Function
once_differentiable = torch.autograd.function.once_differentiable
F64 = torch.float64
SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they "
    "have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward."
)
NO_GRAD_FN = "element 0 of tensors does not require grad and does not have a grad_fn"


def np_of(t):
    return t.detach().numpy()


def leaf(values):
    return torch.tensor(values, dtype=F64, requires_grad=True)


class MyCube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * grad_out


# ----- basics: apply, node name, graph structure -----


def test_cube_values_gradient_and_node_name():
    x = leaf([1.0, -2.0, 0.5])
    y = MyCube.apply(x)
    np.testing.assert_allclose(np_of(y), [1.0, -8.0, 0.125])
    assert y.requires_grad and not y.is_leaf
    assert type(y.grad_fn).__name__ == "MyCubeBackward"
    assert y.grad_fn.name() == "MyCubeBackward"
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [3.0, 12.0, 0.75])


def test_next_functions_of_custom_node():
    a = leaf([1.0, 2.0])
    b = torch.tensor([3.0, 4.0], dtype=F64)  # no grad

    class ScaleAdd(Function):
        @staticmethod
        def forward(ctx, a, k, b):
            ctx.k = k
            return a * k + b

        @staticmethod
        def backward(ctx, g):
            return g * ctx.k, None, g

    y = ScaleAdd.apply(a, 3.0, b)
    nf = y.grad_fn.next_functions
    # one entry per tensor argument; the non-tensor 3.0 has none
    assert len(nf) == 2
    assert type(nf[0][0]).__name__ == "AccumulateGrad" and nf[0][0].variable is a and nf[0][1] == 0
    assert nf[1] == (None, 0)
    y.sum().backward()
    np.testing.assert_allclose(np_of(a.grad), [3.0, 3.0])


def test_next_functions_point_at_producing_op():
    x = leaf([1.0, 2.0])
    h = x * 2
    y = MyCube.apply(h)
    ((prev, idx),) = y.grad_fn.next_functions
    assert prev is h.grad_fn and idx == 0
    assert type(prev).__name__ == "MulBackward0"
    z = MyCube.apply(y)
    assert z.grad_fn.next_functions[0][0] is y.grad_fn
    z.sum().backward()
    # z = (2x)^9 -> dz/dx = 9 * 2^9 * x^8
    np.testing.assert_allclose(np_of(x.grad), 9 * 2**9 * np.array([1.0, 2.0]) ** 8)


def test_no_input_requires_grad_gives_plain_tensor():
    x = torch.tensor([1.0, 2.0], dtype=F64)
    y = MyCube.apply(x)
    assert not y.requires_grad
    assert y.grad_fn is None
    np.testing.assert_allclose(np_of(y), [1.0, 8.0])


def test_apply_inside_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    calls = []

    class Double(Function):
        @staticmethod
        def forward(ctx, t):
            calls.append("forward")
            return t * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    with torch.no_grad():
        y = Double.apply(x)
    assert calls == ["forward"]
    assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_allclose(np_of(y), [2.0, 4.0])


def test_forward_runs_without_grad_mode():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, t):
            seen["grad_enabled"] = torch.is_grad_enabled()
            inner = t * 2
            seen["inner_requires_grad"] = inner.requires_grad
            return inner

        @staticmethod
        def backward(ctx, g):
            seen["backward_grad_enabled"] = torch.is_grad_enabled()
            return g * 2

    x = leaf([1.0])
    Probe.apply(x).sum().backward()
    assert seen == {"grad_enabled": False, "inner_requires_grad": False, "backward_grad_enabled": False}


# ----- setup_context style -----


class MulSetup(Function):
    @staticmethod
    def forward(a, b):
        return a * b

    @staticmethod
    def setup_context(ctx, inputs, output):
        a, b = inputs
        ctx.save_for_backward(a, b)
        ctx.out_shape = tuple(output.shape)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * b, g * a


def test_setup_context_style():
    a = leaf([1.0, 2.0, 3.0])
    b = leaf([4.0, 5.0, 6.0])
    y = MulSetup.apply(a, b)
    assert type(y.grad_fn).__name__ == "MulSetupBackward"
    assert y.grad_fn.out_shape == (3,)
    np.testing.assert_allclose(np_of(y), [4.0, 10.0, 18.0])
    (y * torch.tensor([1.0, 10.0, 100.0], dtype=F64)).sum().backward()
    np.testing.assert_allclose(np_of(a.grad), [4.0, 50.0, 600.0])
    np.testing.assert_allclose(np_of(b.grad), [1.0, 20.0, 300.0])


def test_setup_context_receives_inputs_and_output():
    got = {}

    class Affine(Function):
        @staticmethod
        def forward(x, scale, shift):
            return x * scale + shift

        @staticmethod
        def setup_context(ctx, inputs, output):
            got["inputs"] = inputs
            got["output"] = output
            ctx.scale = inputs[1]

        @staticmethod
        def backward(ctx, g):
            return g * ctx.scale, None, None

    x = leaf([1.0, 2.0])
    y = Affine.apply(x, 3.0, 0.5)
    assert isinstance(got["inputs"], tuple) and len(got["inputs"]) == 3
    assert got["inputs"][0] is x and got["inputs"][1:] == (3.0, 0.5)
    np.testing.assert_allclose(np_of(got["output"]), [3.5, 6.5])
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [3.0, 3.0])


def test_setup_context_gradcheck():
    assert gradcheck(MulSetup.apply, [np.array([0.5, -1.5]), np.array([2.0, 0.25])])


# ----- saved tensors -----


def test_save_none_for_backward():
    class SaveNone(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(None, x, None)
            return x * x

        @staticmethod
        def backward(ctx, g):
            first, x, last = ctx.saved_tensors
            assert first is None and last is None
            return 2 * x * g

    x = leaf([1.5, -2.0])
    SaveNone.apply(x).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [3.0, -4.0])


def test_save_output_for_backward_and_double_backward():
    class MyExp(Function):
        @staticmethod
        def forward(ctx, x):
            out = x.exp()
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, g):
            (out,) = ctx.saved_tensors
            return g * out

    x = leaf([0.0, 1.0, -0.5])
    y = MyExp.apply(x)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    np.testing.assert_allclose(np_of(g), np.exp([0.0, 1.0, -0.5]))
    # the saved output still leads back through the custom node
    (gg,) = torch.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(np_of(gg), np.exp([0.0, 1.0, -0.5]))


def test_save_intermediate_tensor():
    class SinSq(Function):
        @staticmethod
        def forward(ctx, x):
            s = x.sin()
            ctx.save_for_backward(x, s)
            return s * s

        @staticmethod
        def backward(ctx, g):
            x, s = ctx.saved_tensors
            return g * 2 * s * x.cos()

    x = leaf([0.3, 1.1])
    SinSq.apply(x).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), np.sin(2 * np.array([0.3, 1.1])), rtol=1e-12)


def test_save_for_backward_rejects_non_tensor():
    class SaveInt(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(TypeError, match=re.escape(
            "save_for_backward can only save variables, but argument 1 is of type int")):
        SaveInt.apply(leaf([1.0]))


def test_saved_tensors_freed_after_backward():
    x = leaf([1.0, 2.0])
    y = MyCube.apply(x)
    y.sum().backward()
    with pytest.raises(RuntimeError, match=re.escape(SECOND_BACKWARD)):
        _ = y.grad_fn.saved_tensors
    with pytest.raises(RuntimeError, match=re.escape(SECOND_BACKWARD)):
        y.sum().backward()


def test_saved_tensors_kept_with_retain_graph():
    x = leaf([1.0, 2.0])
    y = MyCube.apply(x)
    y.sum().backward(retain_graph=True)
    (saved,) = y.grad_fn.saved_tensors
    assert saved is x
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [6.0, 24.0])


def test_saved_input_modified_in_place_raises():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = MyCube.apply(x)
    with torch.no_grad():
        x.mul_(2)
    msg = (
        "one of the variables needed for gradient computation has been modified by an inplace "
        "operation: [torch.FloatTensor [2]] is at version 1; expected version 0 instead. Hint: enable "
        "anomaly detection to find the operation that failed to compute its gradient, with "
        "torch.autograd.set_detect_anomaly(True, check_nan=False)."
    )
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        y.sum().backward()


# ----- needs_input_grad, non-tensor arguments, several outputs -----


def test_needs_input_grad():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b, k, c):
            seen["forward"] = ctx.needs_input_grad
            return a * k + b * c

        @staticmethod
        def backward(ctx, g):
            seen["backward"] = ctx.needs_input_grad
            ga = g * 2.0 if ctx.needs_input_grad[0] else None
            gc = g * 3.0 if ctx.needs_input_grad[3] else None
            return ga, None, None, gc

    a = leaf([1.0])
    b = torch.tensor([3.0], dtype=F64)
    c = leaf([2.0])
    y = Probe.apply(a, b, 2.0, c)
    assert y.grad_fn.needs_input_grad == (True, False, False, True)
    y.sum().backward()
    assert seen == {"forward": (True, False, False, True), "backward": (True, False, False, True)}
    np.testing.assert_allclose(np_of(a.grad), [2.0])
    np.testing.assert_allclose(np_of(c.grad), [3.0])


def test_non_tensor_arguments_and_several_outputs():
    class Mixed(Function):
        @staticmethod
        def forward(ctx, a, scale, b, label):
            ctx.scale = scale
            ctx.label = label
            ctx.save_for_backward(a, b)
            return a * scale + b, a * b

        @staticmethod
        def backward(ctx, g_sum, g_prod):
            a, b = ctx.saved_tensors
            assert ctx.label == "tag"
            return g_sum * ctx.scale + g_prod * b, None, g_sum + g_prod * a, None

    a = leaf([1.0, 2.0])
    b = leaf([3.0, -1.0])
    s, p = Mixed.apply(a, 0.5, b, "tag")
    assert s.grad_fn is p.grad_fn
    assert type(s.grad_fn).__name__ == "MixedBackward"
    np.testing.assert_allclose(np_of(s), [3.5, 0.0])
    np.testing.assert_allclose(np_of(p), [3.0, -2.0])
    (2 * s + 10 * p).sum().backward()
    # d/da = 2*0.5 + 10*b, d/db = 2 + 10*a
    np.testing.assert_allclose(np_of(a.grad), [31.0, -9.0])
    np.testing.assert_allclose(np_of(b.grad), [12.0, 22.0])


def test_unused_output_gets_zero_gradient_by_default():
    seen = []

    class Two(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            seen.append((np_of(g1).tolist(), np_of(g2).tolist()))
            return g1 * 2 + g2 * 3

    x = leaf([1.0, 2.0])
    first, _ = Two.apply(x)
    first.sum().backward()
    assert seen == [([1.0, 1.0], [0.0, 0.0])]
    np.testing.assert_allclose(np_of(x.grad), [2.0, 2.0])


def test_set_materialize_grads_false_passes_none():
    seen = []

    class Two(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x.clone(), x.clone()

        @staticmethod
        def backward(ctx, g1, g2):
            seen.append((g1 is None, g2 is None))
            grad = torch.zeros_like(g1 if g1 is not None else g2)
            if g1 is not None:
                grad = grad + g1
            if g2 is not None:
                grad = grad + 4 * g2
            return grad

    x = leaf([1.0, 2.0])
    _, second = Two.apply(x)
    (second * 2).sum().backward()
    assert seen == [(True, False)]
    np.testing.assert_allclose(np_of(x.grad), [8.0, 8.0])


def test_set_materialize_grads_in_setup_context():
    seen = []

    class Pair(Function):
        @staticmethod
        def forward(x, y):
            return x.clone(), y.clone()

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.set_materialize_grads(False)

        @staticmethod
        def backward(ctx, gx, gy):
            seen.append((gx is None, gy is None))
            return gx, gy

    x = leaf([2.0])
    y = leaf([3.0])
    out_x, _ = Pair.apply(x, y)
    (out_x**2).sum().backward()
    assert seen == [(False, True)]
    np.testing.assert_allclose(np_of(x.grad), [4.0])
    assert y.grad is None


def test_non_tensor_output_passes_through():
    seen = []

    class WithCount(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, 7

        @staticmethod
        def backward(ctx, g, g_count):
            seen.append(g_count)
            return g * 2

    x = leaf([1.0, 2.0])
    y, count = WithCount.apply(x)
    assert count == 7
    y.sum().backward()
    assert seen == [None]
    np.testing.assert_allclose(np_of(x.grad), [2.0, 2.0])


# ----- mark_non_differentiable -----


class PosMask(Function):
    @staticmethod
    def forward(ctx, x):
        mask = (x > 0).to(x.dtype)
        ctx.mark_non_differentiable(mask)
        ctx.save_for_backward(mask)
        return x * mask, mask

    @staticmethod
    def backward(ctx, g, g_mask):
        (mask,) = ctx.saved_tensors
        ctx.g_mask = g_mask
        return g * mask


def test_mark_non_differentiable():
    x = leaf([-1.0, 2.0, 3.0])
    out, mask = PosMask.apply(x)
    assert out.requires_grad and type(out.grad_fn).__name__ == "PosMaskBackward"
    assert not mask.requires_grad and mask.grad_fn is None and mask.is_leaf
    np.testing.assert_allclose(np_of(mask), [0.0, 1.0, 1.0])
    node = out.grad_fn
    (out * out).sum().backward()
    # the non-differentiable output still gets a (zero) gradient slot
    np.testing.assert_allclose(np_of(node.g_mask), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(np_of(x.grad), [0.0, 4.0, 6.0])


def test_backward_from_non_differentiable_output_raises():
    x = leaf([-1.0, 2.0])
    _, mask = PosMask.apply(x)
    with pytest.raises(RuntimeError, match=re.escape(NO_GRAD_FN)):
        mask.sum().backward()


def test_single_non_differentiable_output():
    class Frozen(Function):
        @staticmethod
        def forward(ctx, x):
            out = x * 2
            ctx.mark_non_differentiable(out)
            return out

        @staticmethod
        def backward(ctx, g):
            return g

    y = Frozen.apply(leaf([1.0, 2.0]))
    assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_allclose(np_of(y), [2.0, 4.0])
    with pytest.raises(RuntimeError, match=re.escape(NO_GRAD_FN)):
        y.sum().backward()


# ----- mark_dirty (in-place custom functions) -----


class AddOneInplace(Function):
    @staticmethod
    def forward(ctx, x):
        x.add_(1)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, g):
        return g


def test_mark_dirty_in_place_on_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * 2
    v0 = y._version
    z = AddOneInplace.apply(y)
    assert z is y
    assert y._version > v0
    assert type(y.grad_fn).__name__ == "AddOneInplaceBackward"
    assert y.grad_fn.next_functions[0][0].name() == "MulBackward0"
    np.testing.assert_allclose(np_of(y), [3.0, 5.0])
    (y * y).sum().backward()
    # y = 2x + 1 -> d(y^2)/dx = 4 (2x + 1)
    np.testing.assert_allclose(np_of(x.grad), [12.0, 20.0])


def test_mark_dirty_on_leaf_requiring_grad_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=re.escape(
            "a leaf Variable that requires grad has been used in an in-place operation.")):
        AddOneInplace.apply(x)


def test_mark_dirty_input_must_be_returned():
    class DirtyNotReturned(Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    msg = (
        "Some elements marked as dirty during the forward method were not returned as output. "
        "The inputs that are modified inplace must all be outputs of the Function."
    )
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        DirtyNotReturned.apply(leaf([1.0]) * 1)


def test_mark_dirty_on_tensor_without_grad_gives_graph():
    base = torch.tensor([1.0, 2.0], dtype=F64)
    w = leaf([3.0, 4.0])

    class AddInto(Function):
        @staticmethod
        def forward(ctx, dst, src):
            dst.add_(src)
            ctx.mark_dirty(dst)
            return dst

        @staticmethod
        def backward(ctx, g):
            return g, g

    out = AddInto.apply(base, w)
    assert out is base
    assert base.requires_grad and type(base.grad_fn).__name__ == "AddIntoBackward"
    np.testing.assert_allclose(np_of(base), [4.0, 6.0])
    (base * 3).sum().backward()
    np.testing.assert_allclose(np_of(w.grad), [3.0, 3.0])


# ----- returning an input -----


class Identity2(Function):
    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, g):
        return g * 2


@pytest.mark.parametrize("shape", [(1,), ()])
def test_function_returns_input(shape):
    v = torch.ones(shape, requires_grad=True)
    Identity2.apply(v).backward()
    np.testing.assert_allclose(np_of(v.grad), np.full(shape, 2.0))
    with torch.no_grad():
        v.grad.zero_()
    Identity2.apply(v.clone()).backward()
    np.testing.assert_allclose(np_of(v.grad), np.full(shape, 2.0))


def test_returned_input_is_a_new_tensor_with_custom_node():
    x = leaf([1.0, 2.0])
    y = Identity2.apply(x)
    assert y is not x
    assert not y.is_leaf and type(y.grad_fn).__name__ == "Identity2Backward"
    np.testing.assert_allclose(np_of(y), [1.0, 2.0])


def test_returned_input_modified_in_place_raises():
    x = leaf([1.0, 2.0])
    y = Identity2.apply(x * 1)
    msg = (
        "Output 0 of Identity2 is a view and is being modified inplace. This view was created inside a "
        "custom Function (or because an input was returned as-is) and the autograd logic to handle "
        "view+inplace would override the custom backward associated with the custom Function, leading "
        "to incorrect gradients. This behavior is forbidden. You can fix this by cloning the output of "
        "the custom Function."
    )
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        y.add_(1)


def test_function_returns_none_gradient():
    class NoGrad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return None

    x = torch.ones(1, requires_grad=True)
    NoGrad.apply(x).backward()
    assert x.grad is None
    NoGrad.apply(x**2).backward()
    assert x.grad is None
    assert torch.autograd.grad(NoGrad.apply(x), x, allow_unused=True)[0] is None


# ----- wrong gradients returned from backward -----


def test_too_few_gradients_raises():
    class Sum2(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g

    a = torch.ones(2, requires_grad=True)
    b = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape(
            "function Sum2Backward returned an incorrect number of gradients (expected 2, got 1)")):
        Sum2.apply(a, b).sum().backward()


def test_too_many_gradients_raises():
    class Triple(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g, g, g

    a = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape(
            "function TripleBackward returned an incorrect number of gradients (expected 1, got 3)")):
        Triple.apply(a).sum().backward()


def test_extra_none_gradients_are_ignored():
    class Padded(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2, None, None

    a = torch.ones(2, requires_grad=True)
    Padded.apply(a).sum().backward()
    np.testing.assert_allclose(np_of(a.grad), [2.0, 2.0])


def test_gradient_of_wrong_shape_raises():
    class BadShape(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return torch.ones(3)

    a = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape(
            "Function BadShapeBackward returned an invalid gradient at index 0 - got [3] but expected "
            "shape compatible with [2]")):
        BadShape.apply(a).sum().backward()


def test_gradient_expandable_to_input_shape_is_accepted():
    class SumLike(Function):
        @staticmethod
        def forward(ctx, a):
            return a.sum()

        @staticmethod
        def backward(ctx, g):
            return g.expand(1, 2)  # reshaped back to [2]

    a = torch.ones(2, requires_grad=True)
    SumLike.apply(a).backward()
    assert tuple(a.grad.shape) == (2,)
    np.testing.assert_allclose(np_of(a.grad), [1.0, 1.0])


def test_gradient_of_other_dtype_is_cast_to_input_dtype():
    class ToDouble(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return (g * 2).double()

    a = torch.ones(2, requires_grad=True)
    ToDouble.apply(a).sum().backward()
    assert a.grad.dtype == torch.float32
    np.testing.assert_allclose(np_of(a.grad), [2.0, 2.0])


def test_non_tensor_gradient_raises():
    class ReturnsInt(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return 5

    a = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape("expected Variable or None (got int)")):
        ReturnsInt.apply(a).sum().backward()


def test_missing_forward_or_backward():
    class NoForward(Function):
        @staticmethod
        def backward(ctx, g):
            return g

    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

    a = torch.ones(1, requires_grad=True)
    with pytest.raises(NotImplementedError, match=re.escape(
            "You must implement the forward function for custom autograd.Function.")):
        NoForward.apply(a)
    out = NoBackward.apply(a)  # fine until backward
    with pytest.raises(NotImplementedError, match=re.escape(
            "You must implement either the backward or vjp method for your custom autograd.Function "
            "to use it with backward mode AD.")):
        out.sum().backward()


def test_exception_in_backward_propagates_unchanged():
    class Boom(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            raise ValueError("boom in backward")

    x = leaf([1.0])
    with pytest.raises(ValueError, match="^boom in backward$"):
        Boom.apply(x).sum().backward()
    # the engine is usable afterwards
    (x * 3).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [3.0])


# ----- higher order, once_differentiable -----


def test_double_backward_through_custom_cube():
    x = leaf([1.0, -2.0, 0.5])
    y = MyCube.apply(x)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    np.testing.assert_allclose(np_of(g), 3 * np.array([1.0, -2.0, 0.5]) ** 2)
    assert g.requires_grad
    (gg,) = torch.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(np_of(gg), 6 * np.array([1.0, -2.0, 0.5]))


def test_custom_cube_gradcheck_and_gradgradcheck():
    assert gradcheck(MyCube.apply, [np.array([0.7, -1.3, 2.0])])
    assert gradgradcheck(MyCube.apply, [np.array([0.7, -1.3, 2.0])])


def test_public_gradcheck_of_custom_functions():
    x = torch.tensor([0.7, -1.3, 2.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(MyCube.apply, (x,))
    assert torch.autograd.gradgradcheck(MyCube.apply, (x,))

    class WrongGrad(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x**2 * g  # should be 3 x^2

    assert not torch.autograd.gradcheck(WrongGrad.apply, (x,), raise_exception=False)


class OnceCube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        ctx.grad_enabled = torch.is_grad_enabled()
        return 3 * x**2 * g


def test_once_differentiable_first_order():
    x = leaf([1.0, 2.0])
    y = OnceCube.apply(x)
    node = y.grad_fn
    y.sum().backward()
    assert node.grad_enabled is False
    np.testing.assert_allclose(np_of(x.grad), [3.0, 12.0])


def test_once_differentiable_create_graph_without_grad_outputs_requiring_grad():
    x = leaf([1.0, 2.0])
    (g,) = torch.autograd.grad(OnceCube.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(np_of(g), [3.0, 12.0])
    assert not g.requires_grad and g.grad_fn is None


def test_once_differentiable_double_backward_raises():
    msg = "trying to differentiate twice a function that was marked with @once_differentiable"
    x = leaf([1.0, 2.0])
    v = torch.ones(2, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(OnceCube.apply(x), x, v, create_graph=True)
    np.testing.assert_allclose(np_of(g), [3.0, 12.0])
    assert g.requires_grad
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        g.sum().backward()
    # the incoming gradient depends on x: d/dx sum(x^3 * x) needs the second derivative too
    y = OnceCube.apply(x)
    (g2,) = torch.autograd.grad((y * x).sum(), x, create_graph=True)
    np.testing.assert_allclose(np_of(g2), [4.0, 32.0])
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        g2.sum().backward()


def test_once_differentiable_with_non_tensor_argument():
    class Blend(Function):
        @staticmethod
        def forward(ctx, t1, k, t2):
            ctx.k = k
            ctx.save_for_backward(t1, t2)
            return t1 + k * t2 + t1 * t2

        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            t1, t2 = ctx.saved_tensors
            return g + g * t2, None, g * ctx.k + g * t1

    a = leaf([1.0, 2.0])
    b = leaf([3.0, -1.0])
    Blend.apply(a, 2.0, b).sum().backward()
    np.testing.assert_allclose(np_of(a.grad), [4.0, 0.0])
    np.testing.assert_allclose(np_of(b.grad), [3.0, 4.0])


# ----- ctx attributes, other ops and re-entrant autograd inside backward -----


def test_ctx_holds_arbitrary_python_objects():
    marker = object()

    class Keeper(Function):
        @staticmethod
        def forward(ctx, x, config):
            ctx.config = config
            ctx.marker = marker
            ctx.fn = lambda t: t * config["scale"]
            return x * config["scale"]

        @staticmethod
        def backward(ctx, g):
            assert ctx.marker is marker
            return ctx.fn(g), None

    cfg = {"scale": 4.0, "names": ["a", "b"]}
    x = leaf([1.0, 2.0])
    y = Keeper.apply(x, cfg)
    # the ctx is the graph node: its attributes are readable from grad_fn
    assert y.grad_fn.config is cfg and y.grad_fn.marker is marker
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [4.0, 4.0])


def test_backward_uses_other_ops_gradcheck():
    class Linear(Function):
        @staticmethod
        def forward(ctx, x, w, b):
            ctx.save_for_backward(x, w)
            return x.mm(w.t()) + b

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            return g.mm(w), g.t().mm(x), g.sum(0)

    torch.manual_seed(0)
    x = torch.randn(3, 4, dtype=F64)
    w = torch.randn(2, 4, dtype=F64)
    b = torch.randn(2, dtype=F64)
    assert gradcheck(Linear.apply, [x, w, b])
    assert gradgradcheck(Linear.apply, [x, w, b])


def test_softplus_like_function_values():
    class LogOnePlusExp(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x.exp() + 1).log()

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x.sigmoid()

    x = leaf([-2.0, 0.0, 3.0])
    y = LogOnePlusExp.apply(x)
    np.testing.assert_allclose(np_of(y), [math.log1p(math.exp(v)) for v in (-2.0, 0.0, 3.0)])
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), 1 / (1 + np.exp(-np.array([-2.0, 0.0, 3.0]))))


def test_autograd_grad_inside_custom_backward():
    class Reenter(Function):
        @staticmethod
        def forward(ctx, x):
            with torch.enable_grad():
                ctx.x = x.detach().requires_grad_()
                ctx.out = ctx.x * ctx.x * 2
            return ctx.out.detach()

        @staticmethod
        def backward(ctx, g):
            with torch.enable_grad():
                (inner,) = torch.autograd.grad(ctx.out, ctx.x, g)
            return inner

    x = leaf([1.0, -3.0])
    y = Reenter.apply(x)
    np.testing.assert_allclose(np_of(y), [2.0, 18.0])
    (y * torch.tensor([1.0, 2.0], dtype=F64)).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [4.0, -24.0])


def test_backward_call_inside_custom_backward():
    class ReenterBackward(Function):
        @staticmethod
        def forward(ctx, x):
            with torch.enable_grad():
                ctx.x = x.detach().requires_grad_()
                ctx.out = ctx.x**3
            return ctx.out.detach()

        @staticmethod
        def backward(ctx, g):
            with torch.enable_grad():
                ctx.out.sum().backward()
            return ctx.x.grad * g

    x = leaf([2.0, 0.5])
    ReenterBackward.apply(x).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [12.0, 0.75])


def test_custom_function_output_used_twice():
    calls = []

    class Counted(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            calls.append(np_of(g).tolist())
            return g * 2

    x = leaf([1.0, 2.0])
    y = Counted.apply(x)
    (y * 3 + y * y).sum().backward()
    # backward runs once with the summed gradient 3 + 2y
    assert calls == [[7.0, 11.0]]
    np.testing.assert_allclose(np_of(x.grad), [14.0, 22.0])


def test_custom_node_repr_names_pytorchs_module():
    class MulConstant(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, c):
            ctx.c = c
            return x * c

        @staticmethod
        def backward(ctx, g):
            return g * ctx.c, None

    y = MulConstant.apply(torch.ones(2, requires_grad=True), 2.0)
    assert repr(y.grad_fn).startswith("<torch.autograd.function.MulConstantBackward object at 0x")
    assert type(y.grad_fn).__module__ == "torch.autograd.function"
