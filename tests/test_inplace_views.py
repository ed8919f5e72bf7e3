"""In-place operations, views and version counters, checked against closed forms.

Scenarios follow PyTorch's own test_autograd.py (in-place / view sections); node names and error
messages are those PyTorch 2.x gives (validated by running this file against torch).
"""

import math
import re

import numpy as np
import pytest
import rustgrad as torch

F64 = torch.float64
HINT = (
    " Hint: enable anomaly detection to find the operation that failed to compute its gradient, "
    "with torch.autograd.set_detect_anomaly(True, check_nan=False)."
)
MODIFIED = "one of the variables needed for gradient computation has been modified by an inplace operation: "
LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."
LEAF_VIEW_INPLACE = "a view of a leaf Variable that requires grad is being used in an in-place operation."
NO_GRAD_VIEW = (
    "A view was created in no_grad mode and is being modified inplace with grad mode enabled. Given "
    "that this use case is ambiguous and error-prone, it is forbidden. You can clarify your code by "
    "moving both the view and the inplace either both inside the no_grad block (if you don't want the "
    "inplace to be tracked) or both outside (if you want the inplace to be tracked)."
)


def np_of(t):
    return t.detach().numpy()


def leaf(values, dtype=F64):
    return torch.tensor(values, dtype=dtype, requires_grad=True)


def node_name(t):
    return type(t.grad_fn).__name__


# ----- version counters -----


def test_version_counts_every_in_place_op():
    b = torch.zeros(3)
    assert b._version == 0
    b.add_(1)
    b.mul_(2)
    b.sub_(1)
    b.div_(2)
    b.pow_(2)
    assert b._version == 5
    b.zero_()
    b.fill_(3)
    b.copy_(torch.ones(3))
    b[0] = 4.0
    assert b._version == 9
    b += 1
    b -= 1
    b *= 2
    b /= 2
    assert b._version == 13
    np.testing.assert_allclose(np_of(b), [4.0, 1.0, 1.0])


def test_out_of_place_ops_do_not_bump_version():
    b = torch.ones(3)
    _ = b + 1
    _ = b.view(3, 1)
    _ = b[0]
    _ = b.clone()
    assert b._version == 0


def test_views_share_the_version_counter():
    b = torch.zeros(4)
    v = b[1:3]
    w = b.view(2, 2)
    v.add_(1)
    assert (b._version, v._version, w._version) == (1, 1, 1)
    w.mul_(2)
    assert (b._version, v._version, w._version) == (2, 2, 2)
    np.testing.assert_allclose(np_of(b), [0.0, 2.0, 2.0, 0.0])


def test_detach_shares_version_counter_and_storage():
    x = leaf([1.0, 2.0, 3.0])
    b = x * 1
    d = b.detach()
    d.add_(1)
    assert b._version == 1 and d._version == 1
    np.testing.assert_allclose(np_of(b), [2.0, 3.0, 4.0])
    d.zero_()
    assert b._version == 2
    np.testing.assert_allclose(np_of(b), [0.0, 0.0, 0.0])


def test_data_does_not_share_version_counter():
    x = leaf([1.0, 2.0, 3.0])
    b = x * 1
    d = b.data
    d.add_(1)
    assert b._version == 0 and d._version == 1
    np.testing.assert_allclose(np_of(b), [2.0, 3.0, 4.0])  # same storage


def test_modifying_saved_output_through_detach_is_detected():
    x = leaf([1.0, 2.0, 3.0], dtype=torch.float32)
    y = x.exp()
    y.detach().add_(1)
    with pytest.raises(RuntimeError, match=re.escape(
            MODIFIED + "[torch.FloatTensor [3]], which is output 0 of Exp, is at version 1; "
            "expected version 0 instead." + HINT)):
        y.sum().backward()


def test_modifying_saved_output_through_data_is_silent():
    x = leaf([0.0, 1.0, 2.0])
    y = x.exp()
    y.data.add_(1)
    y.sum().backward()
    # ExpBackward uses the (changed) saved result: exp(x) + 1
    np.testing.assert_allclose(np_of(x.grad), np.exp([0.0, 1.0, 2.0]) + 1)


# ----- saved tensors modified in place -----


@pytest.mark.parametrize(
    "op, name",
    [(lambda t: t.exp(), "Exp"), (lambda t: t.tanh(), "Tanh"), (lambda t: t.sigmoid(), "Sigmoid")],
)
def test_saved_output_modified_raises(op, name):
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = op(x)
    y.mul_(2)
    msg = (MODIFIED + f"[torch.FloatTensor [3]], which is output 0 of {name}, is at version 1; "
           "expected version 0 instead." + HINT)
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        y.sum().backward()


def test_saved_input_modified_raises():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 1
    y = h * h  # saves h twice
    h.add_(1)
    msg = (MODIFIED + "[torch.FloatTensor [3]], which is output 0 of Add, is at version 1; "
           "expected version 0 instead." + HINT)
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        y.sum().backward()


def test_saved_input_modified_twice_double_tensor():
    x = torch.tensor([1.0, 2.0, 3.0], dtype=F64, requires_grad=True)
    h = x * 1
    y = h.sin()
    h.mul_(2)
    h.mul_(2)
    msg = (MODIFIED + "[torch.DoubleTensor [3]], which is output 0 of Mul, is at version 2; "
           "expected version 0 instead." + HINT)
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        y.sum().backward()


def test_saved_leaf_modified_under_no_grad_raises():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    with torch.no_grad():
        x.mul_(2)
    msg = MODIFIED + "[torch.FloatTensor [2]] is at version 1; expected version 0 instead." + HINT
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        y.sum().backward()


def test_unsaved_input_may_be_modified():
    x = leaf([0.0, 1.0, 2.0])
    h = x * 1
    y = h.exp()  # exp saves its result, not its input
    h.add_(1)
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), np.exp([0.0, 1.0, 2.0]))


def test_saved_detached_tensor_modified_later_raises():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 1
    y.add_(1)
    y.mul_(y.detach())  # saves y.detach() at version 1
    y.sub_(x)
    y.div_(2)
    msg = MODIFIED + "[torch.DoubleTensor [3]] is at version 4; expected version 1 instead." + HINT
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        y.sum().backward()


# ----- in-place on non-leaves -----


def test_in_place_on_non_leaf_rewrites_grad_fn():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    assert node_name(y) == "MulBackward0"
    y.add_(1)
    assert node_name(y) == "AddBackward0"
    (nxt, _), (none_fn, _) = y.grad_fn.next_functions
    assert type(nxt).__name__ == "MulBackward0" and none_fn is None
    assert y._version == 1 and not y.is_leaf
    y.mul_(x)  # y = (2x + 1) x
    assert node_name(y) == "MulBackward0"
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), 4 * np.array([1.0, 2.0, 3.0]) + 1)


def test_chain_of_in_place_ops():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 1
    y.add_(1)
    y.mul_(2)
    y.sub_(x)
    y.div_(4)  # y = (2 (x + 1) - x) / 4 = (x + 2) / 4
    assert node_name(y) == "DivBackward0"
    assert y._version == 4
    np.testing.assert_allclose(np_of(y), (np.array([1.0, 2.0, 3.0]) + 2) / 4)
    (y * y).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), (np.array([1.0, 2.0, 3.0]) + 2) / 8)


def test_in_place_pow_and_operators():
    x = leaf([1.0, 2.0])
    y = x + 0
    y **= 2
    y *= 3
    y -= x
    assert node_name(y) == "SubBackward0"
    y.sum().backward()
    # d/dx (3x^2 - x) = 6x - 1
    np.testing.assert_allclose(np_of(x.grad), [5.0, 11.0])


def test_in_place_with_self_as_argument_raises():
    x = leaf([1.5, -2.0])
    y = x * 1
    y.mul_(y)  # saves y at version 0, then bumps it
    assert node_name(y) == "MulBackward0"
    np.testing.assert_allclose(np_of(y), [2.25, 4.0])
    msg = (MODIFIED + "[torch.DoubleTensor [2]], which is output 0 of Mul, is at version 1; "
           "expected version 0 instead." + HINT)
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        y.sum().backward()


def test_in_place_under_no_grad_on_non_leaf_keeps_grad_fn():
    x = leaf([1.0, 2.0])
    y = x * 2
    with torch.no_grad():
        y.add_(10)
    assert node_name(y) == "MulBackward0" and y._version == 1
    np.testing.assert_allclose(np_of(y), [12.0, 14.0])
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [2.0, 2.0])


def test_zero_fill_copy_on_non_leaf():
    x = leaf([1.0, 2.0])
    src = leaf([5.0, 7.0])
    a = x * 3
    a.zero_()
    assert node_name(a) == "ZeroBackward0"
    b = x * 3
    b.fill_(2.0)
    assert node_name(b) == "FillBackward2"
    c = x * 3
    c.copy_(src * src)
    assert node_name(c) == "CopyBackwards"
    (a + b + c).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [0.0, 0.0])
    np.testing.assert_allclose(np_of(src.grad), [10.0, 14.0])


def test_in_place_on_output_of_multi_output_op():
    m = leaf([[1.0, 5.0], [3.0, 2.0]])
    values, indices = m.max(1)
    values.mul_(3)
    assert node_name(values) == "MulBackward0"
    values.sum().backward()
    np.testing.assert_allclose(np_of(m.grad), [[0.0, 3.0], [3.0, 0.0]])
    assert indices.tolist() == [1, 0]


# ----- in-place on leaves -----


@pytest.mark.parametrize(
    "op",
    [
        lambda t: t.add_(1),
        lambda t: t.mul_(2),
        lambda t: t.zero_(),
        lambda t: t.fill_(1.0),
        lambda t: t.copy_(torch.ones(3, dtype=F64)),
        lambda t: t.__iadd__(1),
    ],
)
def test_in_place_on_leaf_requiring_grad_raises(op):
    x = leaf([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match=re.escape(LEAF_INPLACE)):
        op(x)


@pytest.mark.parametrize(
    "op",
    [
        lambda t: t[0:2].mul_(2),
        lambda t: t.view(3, 1).add_(1),
        lambda t: t.view(3)[0:1].fill_(2.0),
        lambda t: t.__setitem__(0, 1.0),
    ],
)
def test_in_place_on_view_of_leaf_raises(op):
    x = leaf([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match=re.escape(LEAF_VIEW_INPLACE)):
        op(x)


def test_in_place_on_leaf_under_no_grad_is_allowed():
    w = leaf([1.0, 2.0, 3.0])
    (w * w).sum().backward()
    with torch.no_grad():
        w.sub_(0.5 * w.grad)  # an SGD step
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    assert w._version == 1
    np.testing.assert_allclose(np_of(w), [0.0, 0.0, 0.0])
    w.grad = None
    (w + 1).sum().backward()
    np.testing.assert_allclose(np_of(w.grad), [1.0, 1.0, 1.0])


def test_in_place_on_leaf_without_grad_is_plain():
    b = torch.ones(3, dtype=F64)
    b.mul_(4)
    assert b.is_leaf and not b.requires_grad and b.grad_fn is None
    np.testing.assert_allclose(np_of(b), [4.0, 4.0, 4.0])


# ----- in-place on views of non-leaves -----


def test_in_place_on_slice_view_rewrites_base_and_view():
    x = leaf([1.0, 2.0, 3.0, 4.0])
    b = x * 2
    v = b[1:3]
    assert node_name(b) == "MulBackward0" and node_name(v) == "SliceBackward0"
    v.mul_(3)
    assert node_name(b) == "CopySlices"
    assert node_name(v) == "AsStridedBackward0"
    assert b.grad_fn.name() == "torch::autograd::CopySlices"
    assert b._version == 1 and v._version == 1
    (prev, _), (none_fn, _) = b.grad_fn.next_functions
    assert type(prev).__name__ == "MulBackward0" and none_fn is None
    assert v.grad_fn.next_functions[0][0] is b.grad_fn
    np.testing.assert_allclose(np_of(b), [2.0, 12.0, 18.0, 8.0])
    (b * torch.arange(4, dtype=F64)).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [0.0, 6.0, 12.0, 6.0])


@pytest.mark.parametrize(
    "make_view, before",
    [
        (lambda b: b.view(3, 2), "ViewBackward0"),
        (lambda b: b.transpose(0, 1), "TransposeBackward0"),
        (lambda b: b.t(), "TBackward0"),
        (lambda b: b.permute(1, 0), "PermuteBackward0"),
        (lambda b: b.unsqueeze(0), "UnsqueezeBackward0"),
        (lambda b: b[None], "UnsqueezeBackward0"),
        (lambda b: b.flatten(), "ViewBackward0"),
        (lambda b: b.reshape(6), "ViewBackward0"),
        (lambda b: b[1], "SelectBackward0"),
        (lambda b: b[:, 1:], "SliceBackward0"),
        (lambda b: b[0][1:], "SliceBackward0"),
    ],
)
def test_in_place_on_view_of_non_leaf(make_view, before):
    x = leaf(np.arange(6.0).reshape(2, 3) + 1)
    b = x * 1
    v = make_view(b)
    assert node_name(v) == before
    v.mul_(2)
    assert node_name(b) == "CopySlices"
    assert node_name(v) == "AsStridedBackward0"
    expected = np.arange(6.0).reshape(2, 3) + 1
    # the elements seen through the view are doubled in the base
    mask = np.zeros((2, 3))
    probe = torch.zeros(2, 3, dtype=F64)
    make_view(probe).fill_(1.0)
    mask = np_of(probe)
    np.testing.assert_allclose(np_of(b), expected * (1 + mask))
    weights = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=F64)
    (b * weights).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), np_of(weights) * (1 + mask))


def test_gradient_through_modified_view_itself():
    x = leaf([1.0, 2.0, 3.0])
    b = x * 1
    v = b[1:]
    v.mul_(v.detach() + 1)  # v = x * (x + 1), the constant factor is taken as fixed
    v.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [0.0, 3.0, 4.0])


def test_in_place_on_view_of_view():
    x = leaf([1.0, 2.0, 3.0])
    b = x * 1
    v = b[1:]
    w = v[:1]
    w.mul_(10)
    assert (node_name(b), node_name(v), node_name(w)) == ("CopySlices", "AsStridedBackward0",
                                                          "AsStridedBackward0")
    assert (b._version, v._version, w._version) == (1, 1, 1)
    np.testing.assert_allclose(np_of(b), [1.0, 20.0, 3.0])
    b.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [1.0, 10.0, 1.0])
    x.grad = None
    b2 = x * 1
    v2 = b2[1:]
    v2[:1].mul_(10)
    v2.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [0.0, 10.0, 1.0])


def test_view_sees_in_place_on_base():
    x = leaf([1.0, 2.0, 3.0])
    b = x * 1
    v = b[0:2]
    b.mul_(2)
    assert node_name(b) == "MulBackward0"
    assert node_name(v) == "AsStridedBackward0"
    np.testing.assert_allclose(np_of(v), [2.0, 4.0])
    v.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [2.0, 2.0, 0.0])


def test_in_place_on_expanded_view_raises():
    x = leaf([[1.0], [2.0]])
    b = x * 1
    v = b.expand(2, 3)
    with pytest.raises(RuntimeError, match=re.escape(
            "unsupported operation: more than one element of the written-to tensor refers to a single "
            "memory location. Please clone() the tensor before performing the operation.")):
        v.add_(1)


# ----- setitem -----


def test_setitem_into_non_leaf():
    x = leaf([1.0, 2.0, 3.0])
    z = leaf(4.0)
    y = x.clone()
    assert node_name(y) == "CloneBackward0"
    y[0] = 5 * z
    assert node_name(y) == "CopySlices"
    (clone_fn, _), (mul_fn, _) = y.grad_fn.next_functions
    assert type(clone_fn).__name__ == "CloneBackward0"
    assert type(mul_fn).__name__ == "MulBackward0"
    np.testing.assert_allclose(np_of(y), [20.0, 2.0, 3.0])
    (y * y).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [0.0, 4.0, 6.0])  # x[0] was overwritten
    np.testing.assert_allclose(np_of(z.grad), 200.0)  # 2 * 20 * 5


def test_setitem_into_tensor_without_grad():
    z = leaf(4.0)
    base = torch.zeros(3, dtype=F64)
    assert not base.requires_grad
    base[1] = z * z
    assert base.requires_grad and not base.is_leaf
    assert node_name(base) == "CopySlices"
    (none_fn, _), (mul_fn, _) = base.grad_fn.next_functions
    assert none_fn is None and type(mul_fn).__name__ == "MulBackward0"
    np.testing.assert_allclose(np_of(base), [0.0, 16.0, 0.0])
    base.sum().backward()
    np.testing.assert_allclose(np_of(z.grad), 8.0)


def test_setitem_slice_with_tensor_value():
    x = leaf([1.0, 2.0, 3.0])
    z = leaf(3.0)
    base = torch.zeros(2, 3, dtype=F64)
    base[:, 1] = x[0:2] * z
    assert node_name(base) == "CopySlices"
    np.testing.assert_allclose(np_of(base), [[0.0, 3.0, 0.0], [0.0, 6.0, 0.0]])
    (base * torch.arange(6, dtype=F64).reshape(2, 3)).sum().backward()
    # weights at [0, 1] and [1, 1] are 1 and 4
    np.testing.assert_allclose(np_of(x.grad), [3.0, 12.0, 0.0])
    np.testing.assert_allclose(np_of(z.grad), 1 * 1.0 + 4 * 2.0)


def test_copy_into_view_of_tensor_without_grad():
    x = leaf([1.0, 2.0, 3.0])
    base = torch.zeros(3, dtype=F64)
    v = base[1:]
    v.copy_(x[:2] * 2)
    assert base.requires_grad and node_name(base) == "CopySlices"
    assert node_name(v) == "AsStridedBackward0"
    np.testing.assert_allclose(np_of(base), [0.0, 2.0, 4.0])
    (base * torch.tensor([1.0, 10.0, 100.0], dtype=F64)).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [20.0, 200.0, 0.0])


def test_augmented_assignment_into_slice():
    x = leaf([1.0, 2.0, 3.0])
    z = leaf(2.0)
    y = x * 1
    y[1:] += z
    assert node_name(y) == "CopySlices"
    np.testing.assert_allclose(np_of(y), [1.0, 4.0, 5.0])
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(np_of(z.grad), 2.0)


def test_setitem_with_constant_cuts_gradient():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 3
    y[1] = 0.0
    y[2:] = 7.0
    assert node_name(y) == "CopySlices"
    y.sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [3.0, 0.0, 0.0])


def test_setitem_input_saved_elsewhere_raises():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 1
    y = h.sin()
    h[0] = 5.0
    msg = (MODIFIED + "[torch.FloatTensor [3]], which is output 0 of torch::autograd::CopySlices, "
           "is at version 1; expected version 0 instead." + HINT)
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        y.sum().backward()


def test_view_modified_while_saved_raises():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = (x * 1).view(3, 1)
    y = h.sin()
    h.mul_(2)
    msg = (MODIFIED + "[torch.FloatTensor [3, 1]], which is output 0 of AsStrided, is at version 1; "
           "expected version 0 instead." + HINT)
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        y.sum().backward()


# ----- views created under no_grad -----


def test_view_created_in_no_grad_modified_with_grad_raises():
    x = leaf([1.0, 2.0, 3.0])
    b = x * 1
    with torch.no_grad():
        v = b[0:2]
    assert v.requires_grad and v.grad_fn is None
    with pytest.raises(RuntimeError, match=re.escape(NO_GRAD_VIEW)):
        v.mul_(2)


def test_view_of_leaf_created_in_no_grad_modified_with_grad_raises():
    x = leaf([1.0, 2.0, 3.0])
    with torch.no_grad():
        v = x[0:2]
    with pytest.raises(RuntimeError, match=re.escape(NO_GRAD_VIEW)):
        v.mul_(2)


def test_view_and_in_place_both_in_no_grad_are_allowed():
    x = leaf([1.0, 2.0, 3.0])
    with torch.no_grad():
        v = x[0:2]
        v.mul_(2)
    np.testing.assert_allclose(np_of(x), [2.0, 4.0, 3.0])
    assert x.is_leaf and x.grad_fn is None and x._version == 1
    (x * x).sum().backward()
    np.testing.assert_allclose(np_of(x.grad), [4.0, 8.0, 6.0])


def test_inplace_op_that_saves_its_output_guards_the_target():
    # exp_ saves its result, which is the tensor itself: changing it again must be refused.
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    y.exp_()
    y.mul_(2)
    with pytest.raises(RuntimeError, match=r"which is output 0 of Exp, is at version 2; expected version 1"):
        y.sum().backward()
    x.grad = None
    y = x * 1
    y.exp_()
    y.sum().backward()
    assert x.grad.tolist() == pytest.approx([math.e, math.e**2], rel=1e-6)


def test_sigmoid_in_place_on_a_view():
    # d/dx0 sigmoid(x0) = s (1 - s); x1 passes through
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    y[0:1].sigmoid_()
    y.sum().backward()
    s = 1 / (1 + math.exp(-1.0))
    assert x.grad.tolist() == pytest.approx([s * (1 - s), 1.0], rel=1e-6)


def test_inplace_arithmetic_outside_the_graph():
    # The no_grad fast path writes into the storage directly: same values as out of place.
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    x.add_(x)
    assert x.tolist() == [[2.0, 4.0], [6.0, 8.0]]
    x.sub_(torch.tensor([1.0, 2.0]), alpha=2)  # broadcast source
    assert x.tolist() == [[0.0, 0.0], [4.0, 4.0]]
    x.t().add_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))  # non-contiguous target
    assert x.tolist() == [[1.0, 3.0], [6.0, 8.0]]
    x[:, 0].mul_(10)
    x.div_(2)
    assert x.tolist() == [[5.0, 1.5], [30.0, 4.0]]
    big = torch.ones(100_000)
    big.add_(torch.full((100_000,), 2.0), alpha=0.5)  # the parallel path
    assert big.sum().item() == 200_000.0


def test_inplace_arithmetic_outside_the_graph_bumps_the_version():
    a = torch.ones(3, requires_grad=True)
    c = a * a
    version = a._version
    with torch.no_grad():
        a.add_(1)
    assert a._version == version + 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.sum().backward()


def test_second_backward_through_copy_slices_is_refused():
    # PyTorch frees CopySlices' wrapped op with the graph, even when that op saved nothing.
    x = torch.tensor(2.0, requires_grad=True)
    a = torch.zeros(3)
    a[0] = x
    a.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        a.sum().backward()
    # An in-place op on a whole tensor (no CopySlices) that saved nothing may run twice.
    c = torch.zeros(())
    c.add_(x)
    c.backward()
    c.backward()
    assert x.grad.item() == 3.0


def test_view_of_a_no_grad_view_keeps_its_base_and_creation():
    w = torch.randn(1, 2, requires_grad=True)
    with torch.no_grad():
        base = torch.ones(1, 2)
        v = base.view(2)
    for view in (v.expand(1, 2), v.view(1, 2), v.expand_as(base)):
        assert view._base is base
        with pytest.raises(RuntimeError, match="A view was created in no_grad mode"):
            view.add_(w)
    # a view taken with grad mode on of a tensor that is not a view is an ordinary view
    fresh = base.view(2).view(1, 2)
    fresh.mul_(w)
    assert fresh.grad_fn is not None


def test_expanded_gradient_is_copied_into_grad_not_stolen():
    # sum's backward expands a 0-d gradient: .grad must not share (and later write into) it
    x = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    y = x.sum()
    g = torch.ones((), dtype=torch.float64)
    torch.autograd.backward(y, grad_tensors=g)
    y.backward()
    assert g.item() == 1.0 and x.grad.tolist() == [2.0]


# In-place view ops (`transpose_`, `t_`, `squeeze_`, `unsqueeze_`, `as_strided_`): the tensor
# itself takes the new geometry; the values do not move, the version is bumped, and its grad_fn
# is the view op's node under the in-place name.


@pytest.mark.parametrize(
    ("change", "name", "shape"),
    [
        (lambda y: y.transpose_(0, 1), "TransposeBackward1", (3, 2)),
        (lambda y: y.swapdims_(0, 1), "TransposeBackward1", (3, 2)),
        (lambda y: y.swapaxes_(1, 0), "TransposeBackward1", (3, 2)),
        (lambda y: y.t_(), "TBackward1", (3, 2)),
        (lambda y: y.unsqueeze_(1), "UnsqueezeBackward1", (2, 1, 3)),
        (lambda y: y.unsqueeze_(1).squeeze_(), "SqueezeBackward3", (2, 3)),
        (lambda y: y.unsqueeze_(1).squeeze_(1), "SqueezeBackward4", (2, 3)),
        (lambda y: y.unsqueeze_(0).squeeze_((0,)), "SqueezeBackward5", (2, 3)),
        (lambda y: y.as_strided_((3,), (2,)), "AsStridedBackward1", (3,)),
    ],
)
def test_view_changing_inplace_ops_rename_and_keep_values(change, name, shape):
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = x * 2
    before = y._version
    out = change(y)
    assert out is y
    assert tuple(y.shape) == shape
    assert node_name(y) == name
    assert y._version > before
    assert not y._is_view()
    # d sum(w * y)/dx = 2 * (w placed back where each element of y came from)
    w = torch.arange(1.0, 1.0 + y.numel(), dtype=F64).reshape(shape)
    (y * w).sum().backward()
    expected = np.zeros((2, 3))
    flat_positions = {
        (3, 2): [0, 3, 1, 4, 2, 5],
        (2, 1, 3): [0, 1, 2, 3, 4, 5],
        (2, 3): [0, 1, 2, 3, 4, 5],
        (3,): [0, 2, 4],
    }[shape]
    for k, pos in enumerate(flat_positions):
        expected.flat[pos] += 2 * (k + 1)
    np.testing.assert_array_equal(np_of(x.grad), expected)


def test_transpose_inplace_reads_the_same_storage_with_swapped_strides():
    y = torch.arange(6.0).reshape(2, 3)
    storage = y.data_ptr()
    y.transpose_(0, 1)
    assert y.stride() == (1, 3) and y.data_ptr() == storage
    np.testing.assert_array_equal(y.numpy(), np.arange(6.0).reshape(2, 3).T)


def test_view_changing_inplace_op_on_a_leaf_that_requires_grad_raises_and_changes_nothing():
    x = leaf([[1.0, 2.0, 3.0]])
    with pytest.raises(RuntimeError, match=re.escape(LEAF_INPLACE)):
        x.t_()
    assert tuple(x.shape) == (1, 3) and x._version == 0


def test_view_changing_inplace_op_with_a_bad_dim_raises_and_changes_nothing():
    y = leaf([[1.0, 2.0, 3.0]]) * 1
    with pytest.raises(IndexError, match=re.escape("Dimension out of range (expected to be in range of [-2, 1], but got 5)")):
        y.transpose_(0, 5)
    with pytest.raises(RuntimeError, match="t_\\(\\) expects a tensor with <= 2 dimensions, but self is 3D"):
        torch.zeros(1, 2, 3).t_()
    assert tuple(y.shape) == (1, 3) and node_name(y) == "MulBackward0" and y._version == 0


def test_view_changing_inplace_op_on_a_view_keeps_it_a_view_of_the_same_base():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = x * 2
    v = y[0:1]
    v.unsqueeze_(0)
    assert tuple(v.shape) == (1, 1, 3) and v._is_view() and v._base is y
    assert node_name(v) == "UnsqueezeBackward1" and node_name(y) == "MulBackward0"
    assert type(v.grad_fn.next_functions[0][0]).__name__ == "SliceBackward0"
    v.sum().backward()
    np.testing.assert_array_equal(np_of(x.grad), [[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]])


def test_view_changing_inplace_op_under_no_grad_keeps_the_history():
    x = leaf([[1.0, 2.0, 3.0]])
    y = x * 2
    with torch.no_grad():
        y.t_()
    assert tuple(y.shape) == (3, 1) and node_name(y) == "MulBackward0" and y.requires_grad


def test_squeeze_with_a_tuple_of_dims():
    x = leaf([[[1.0], [2.0]]])  # (1, 2, 1)
    assert tuple(x.squeeze((0, 2)).shape) == (2,)
    assert tuple(x.squeeze(()).shape) == (1, 2, 1)
    assert tuple(x.squeeze((0, 1)).shape) == (2, 1)
    assert node_name(x.squeeze((0,))) == "SqueezeBackward2"
    assert node_name(x.squeeze(0)) == "SqueezeBackward1"
    assert node_name(x.squeeze()) == "SqueezeBackward0"
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times in the list of dims"):
        x.squeeze((0, -3))
    assert torch.autograd.gradcheck(lambda t: t.squeeze((0, 2)) * 3, (x,))
    assert tuple(x.squeeze(torch.tensor(0)).shape) == (2, 1)
    assert tuple(x.squeeze(dim=2).shape) == (1, 2)
    for bad, name in ((True, "bool"), (1.0, "float"), (None, "NoneType"), (torch.tensor(0.0), "Tensor")):
        with pytest.raises(TypeError, match=re.escape(f"squeeze() received an invalid combination of arguments - got ({name})")):
            x.squeeze(bad)


def test_as_strided_gradient_reaches_only_the_elements_of_its_input():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = x[:, 1:]  # storage offsets 1, 2, 4, 5
    z = torch.as_strided(y, (2, 2), (1, 2), 0)  # offsets 0, 2, 1, 3
    assert z.storage_offset() == 0 and node_name(z) == "AsStridedBackward0"
    np.testing.assert_array_equal(np_of(z), [[1.0, 3.0], [2.0, 4.0]])
    z.sum().backward()
    np.testing.assert_array_equal(np_of(x.grad), [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    assert y.as_strided((2,), (1,)).storage_offset() == 1


def test_as_strided_gradcheck_with_overlapping_windows():
    x = torch.tensor([0.5, -1.0, 2.0, 3.0, -0.25], dtype=F64, requires_grad=True)
    windows = lambda t: t.as_strided((3, 3), (1, 1)) ** 2
    assert torch.autograd.gradcheck(windows, (x,))
    assert torch.autograd.gradgradcheck(windows, (x,))


def test_as_strided_bad_geometry_raises_pytorchs_errors():
    y = torch.zeros(2, 3)[:, 1:]
    with pytest.raises(RuntimeError, match=re.escape(
        "setStorage: sizes [10], strides [1], storage offset 1, and itemsize 4 requiring a storage size of 44 "
        "are out of bounds for storage of size 24"
    )):
        y.as_strided((10,), (1,))
    with pytest.raises(RuntimeError, match="mismatch in length of strides and shape"):
        y.as_strided((2,), (1, 2))
    with pytest.raises(RuntimeError, match=re.escape("as_strided: Negative strides are not supported at the moment, got strides: [-1]")):
        y.as_strided((2,), (-1,))


def test_inplace_transpose_gradgradcheck():
    def f(t):
        u = t * t
        u.transpose_(0, 1)
        return u * torch.arange(1.0, 7.0, dtype=F64).reshape(3, 2)

    x = torch.tensor([[0.5, -1.0, 2.0], [3.0, -0.25, 1.5]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))
