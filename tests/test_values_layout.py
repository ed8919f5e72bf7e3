"""Values, layouts, flags and node names the differential fuzzer found differing from PyTorch.

Each test states the rule with closed forms (or numpy); the PyTorch comparisons at the end
skip cleanly when torch is not installed.
"""

import numpy as np
import pytest
import rustgrad as torch


def grads(y, *inputs):
    """The gradients of ``y.sum()`` with respect to ``inputs``, as lists."""
    return [g.tolist() for g in torch.autograd.grad(y.sum(), inputs)]


# ---- clamp: number bounds pass nothing at a bound, tensor bounds share ties -----------------


def test_clamp_number_bounds_pass_no_gradient_at_the_bound():
    x = torch.tensor([2.0, 1.0, -3.0, 0.5], requires_grad=True)
    assert grads(x.clip(max=2), x) == [[0.0, 1.0, 1.0, 1.0]]
    assert grads(x.clamp(min=0.5), x) == [[1.0, 1.0, 0.0, 0.0]]
    assert grads(x.clamp(0.5, 2.0), x) == [[0.0, 1.0, 0.0, 0.0]]
    assert grads(x.clamp_max(1.0), x) == [[0.0, 0.0, 1.0, 1.0]]
    assert grads(x.clamp_min(1.0), x) == [[1.0, 0.0, 0.0, 0.0]]
    one = torch.ones(()).requires_grad_(True)
    assert torch.autograd.grad(one.clip(max=1.0), [one])[0].item() == 0.0


def test_clamp_one_tensor_bound_shares_ties_like_maximum():
    x = torch.tensor([2.0, 1.0, -3.0, 0.0], requires_grad=True)
    b = torch.tensor([1.0, 1.0, 1.0, 0.0], requires_grad=True)
    assert grads(x.clamp(min=b), x, b) == [[1.0, 0.5, 0.0, 0.5], [0.0, 0.5, 1.0, 0.5]]
    assert grads(x.clamp(max=b), x, b) == [[0.0, 0.5, 1.0, 0.5], [1.0, 0.5, 0.0, 0.5]]
    assert x.clamp_min(b).grad_fn.name() == "ClampMinBackward1"
    assert x.clamp_max(b).grad_fn.name() == "ClampMaxBackward1"
    assert x.clamp(min=b).grad_fn.name() == "ClampBackward0"
    assert x.clamp_max(1.0).grad_fn.name() == "ClampMaxBackward0"


@pytest.mark.parametrize(
    "lo, hi, expected",
    [
        (0.0, 0.0, (0.0, 0.0, 1.0)),
        (0.0, 1.0, (0.5, 0.0, 0.5)),
        (0.0, 2.0, (1.0, 0.0, 0.0)),
        (1.0, 0.0, (0.0, 0.0, 1.0)),
        (1.0, 1.0, (1.0, 0.0, 0.0)),
        (1.0, 2.0, (0.5, 0.5, 0.0)),
        (2.0, 1.0, (0.0, 0.0, 1.0)),
        (2.0, 2.0, (0.0, 1.0, 0.0)),
    ],
)
def test_clamp_two_tensor_bounds(lo, hi, expected):
    x = torch.tensor(1.0, requires_grad=True)
    lo_t, hi_t = torch.tensor(lo, requires_grad=True), torch.tensor(hi, requires_grad=True)
    y = x.clamp(lo_t, hi_t)
    assert y.item() == min(max(1.0, lo), hi)
    assert tuple(g.item() for g in torch.autograd.grad(y, [x, lo_t, hi_t])) == expected


def test_clamp_mixed_bounds_take_the_number_overload():
    x = torch.tensor([2.0, 1.0, -3.0, 0.0], requires_grad=True)
    y = torch.clip(x, min=-1, max=torch.tensor(1.0))
    assert y.grad_fn.name() == "ClampBackward1"
    assert y.tolist() == [1.0, 1.0, -1.0, 0.0]
    for bound in (torch.tensor(1.0, requires_grad=True), torch.ones(4)):
        with pytest.raises(TypeError, match="invalid combination of arguments"):
            x.clamp(-1, bound)
    t = torch.tensor([2.0, 1.0, -3.0, 0.0])
    t.clamp_(max=torch.tensor([1.5, 0.0, 0.0, 0.0]))
    assert t.tolist() == [1.5, 0.0, -3.0, 0.0]


# ---- results never alias their input; layouts as PyTorch's ----------------------------------


def test_repeat_by_ones_is_a_copy():
    x = torch.tensor([1.0, 2.0])
    y = x.repeat(1)
    y += 1
    assert x.tolist() == [1.0, 2.0]
    assert y.tolist() == [2.0, 3.0]


def test_zero_size_tensors_are_contiguous():
    assert torch.randn(4, 0).is_contiguous()
    assert torch.randn(0, 3).t().is_contiguous()
    assert torch.tensor([[], [], []]).is_contiguous()
    assert torch.tensor([]).stride() == (1,)
    assert torch.tensor([[], []]).stride() == (1, 1)


def test_nonzero_is_column_major():
    x = torch.tensor([[1, 0], [1, 1]])
    n = x.nonzero()
    assert n.tolist() == np.argwhere(x.numpy()).tolist()
    assert n.stride() == (1, 3) and not n.is_contiguous()
    assert torch.ones(2, 3, 4).nonzero().stride() == (1, 24)
    assert torch.zeros(3).nonzero().stride() == (1, 0)
    flat = n.flatten()
    flat[:] = -4
    assert n.tolist() == [[0, 0], [1, 0], [1, 1]]


def test_element_wise_results_keep_a_permuted_layout():
    x = torch.tensor([[1.5, -0.5, 2.7], [0.2, -1.9, 3.1]])
    xt = x.t()
    y = torch.trunc(xt)
    assert y.stride() == (1, 3) and not y.is_contiguous()
    assert y.tolist() == np.trunc(x.numpy().T).tolist()
    r = y.reshape(6)  # not a view of y: a later in-place change of y leaves it alone
    y.add_(10)
    assert r.tolist() == np.trunc(x.numpy().T).reshape(6).tolist()
    a = torch.randn(2, 3, 4).permute(2, 0, 1)
    b = torch.randn(4, 2, 3)
    for out, expected in [
        (a + 1, a.numpy() + 1),
        (a * a, a.numpy() ** 2),
        (a > 0, a.numpy() > 0),
        (a - b, a.numpy() - b.numpy()),
        (b - a, b.numpy() - a.numpy()),
    ]:
        assert np.allclose(out.numpy(), expected)
    assert (a - b).stride() == (1, 12, 4)
    assert (b - a).stride() == (6, 3, 1)


def test_dropout_draws_its_mask_in_the_input_memory_order():
    x = torch.randn(4, 3)
    torch.manual_seed(5)
    mask = torch.zeros(4, 3).bernoulli_(0.5)  # drawn in x's memory order, then seen transposed
    torch.manual_seed(5)
    out = torch.nn.functional.dropout(x.t(), 0.5)
    assert np.allclose(out.numpy(), x.t().numpy() * mask.t().numpy() * 2)


def test_reshape_of_a_non_contiguous_view_is_a_reshape_alias():
    a = torch.randn(4, 2, requires_grad=True)
    assert a.reshape(8).grad_fn.name() == "ViewBackward0"
    col = a[:, 1]
    y = col.reshape(2, 2)
    assert y.grad_fn.name() == "ReshapeAliasBackward0"
    assert y._base is a
    (g,) = torch.autograd.grad(y.sum(), a)
    assert g.tolist() == [[0.0, 1.0]] * 4
    assert a.t().reshape(8).grad_fn.name() == "UnsafeViewBackward0"


# ---- gradient accumulation steals a view of the incoming gradient, as PyTorch does --------


def test_accumulated_grad_may_alias_the_gradient_passed_in():
    x = torch.tensor([[0.5]], requires_grad=True)
    g = torch.tensor([0.25])
    x.view(1).backward(gradient=g)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [[2.25]]
    assert g.tolist() == [2.25]  # PyTorch's .grad is a view of `g`, accumulated in place
    leaf = torch.tensor([1.0, 2.0], requires_grad=True)
    ones = torch.ones(2)
    leaf.backward(ones)  # the caller still holds it: copied
    leaf.backward(ones)
    assert ones.tolist() == [1.0, 1.0] and leaf.grad.tolist() == [2.0, 2.0]


# ---- views whose history may not be rewritten -----------------------------------------------


def test_no_grad_view_of_a_base_modified_in_place_refuses_its_history():
    with torch.no_grad():
        base = torch.rand(3)
        view = base[0:3]
    base[[0, 0, 1]] = torch.tensor(-0.5, requires_grad=True)
    assert view.requires_grad
    for get in (lambda: view.grad_fn, lambda: view.is_leaf, lambda: view + 1):
        with pytest.raises(RuntimeError, match="A view was created in no_grad mode and its base"):
            get()


def test_multi_output_views_refuse_in_place_and_rebase():
    a = torch.ones(3, requires_grad=True).clone()
    with pytest.raises(RuntimeError, match="Output 0 of Split.* This view is the output of a function"):
        a.chunk(3)[0].mul_(2)
    b = torch.randn(3)
    parts = b.chunk(3)
    b.mul_(torch.tensor([0.5], requires_grad=True))
    with pytest.raises(RuntimeError, match="its base or another view of its base has been modified"):
        _ = parts[0].grad_fn
    with torch.no_grad():
        c = torch.ones(3, requires_grad=True).clone()
        c.chunk(3)[0].mul_(2)  # no_grad views of a no_grad split may be written
    assert c.tolist() == [2.0, 1.0, 1.0]


# ---- inference tensors outside inference mode -----------------------------------------------


def test_inference_tensor_ops_outside_inference_mode():
    with torch.inference_mode():
        v = torch.ones(2, 2, requires_grad=True)
    assert not v.neg().requires_grad
    assert not v.view(4).requires_grad
    assert (v + 1).grad_fn.name() == "AddBackward0"
    assert v.clone().grad_fn.name() == "torch::autograd::CopyBackwards"
    x = torch.tensor([1.5, -2.0], requires_grad=True)
    with torch.inference_mode():
        x.detach_()
        w = torch.ones(1, requires_grad=True)
        assert not w.expand(3).requires_grad
    assert x.requires_grad


def test_accumulating_into_an_inference_grad_outside_inference_mode_raises():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with torch.inference_mode():
        x.grad = torch.ones(3)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
        x.backward(gradient=torch.ones(3))
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


# ---- dtypes and double-backward nodes ---------------------------------------------------------


def test_l1_loss_and_addcmul_promote_over_all_operands():
    x = torch.tensor([[-2.5], [-2.477]])
    t = torch.tensor(0.5, dtype=torch.float64)
    with pytest.warns(UserWarning, match="target size"):
        loss = torch.nn.functional.l1_loss(x, t)
    assert loss.dtype == torch.float64
    assert abs(loss.item() - np.mean(np.abs(np.array([-2.5, -2.477], dtype=np.float32) - 0.5))) < 1e-6
    with pytest.warns(UserWarning, match="target size"):
        mse = torch.nn.functional.mse_loss(t, x)
    assert mse.dtype == torch.float64
    assert abs(mse.item() - np.mean((0.5 - np.array([-2.5, -2.477], dtype=np.float32)) ** 2)) < 1e-5
    out = torch.full((), -1.176, dtype=torch.float64).addcmul(torch.tensor(1.0), torch.arange(5))
    assert out.dtype == torch.float64
    assert np.allclose(out.numpy(), -1.176 + np.arange(5))


def test_asin_acos_double_backward_nodes():
    x = torch.tensor([0.3, 0.6], requires_grad=True)
    (g,) = torch.autograd.grad(torch.asin(x).sum(), x, create_graph=True)
    assert g.grad_fn.name() == "MulBackward0"
    assert np.allclose(g.detach().numpy(), 1 / np.sqrt(1 - np.array([0.3, 0.6]) ** 2))
    (g,) = torch.autograd.grad(torch.acos(x).sum(), x, create_graph=True)
    assert g.grad_fn.name() == "MulBackward0"


def test_prod_with_zeros_double_backward_views_the_flat_gradient():
    x = torch.tensor([[1.0, 0.0], [2.0, 3.0]], requires_grad=True)
    (g,) = torch.autograd.grad(x.prod(), x, create_graph=True)
    assert g.grad_fn.name() == "ViewBackward0"
    assert g.tolist() == [[0.0, 6.0], [0.0, 0.0]]
    (h,) = torch.autograd.grad(g.sum(), x)
    # d/dx_k sum_i prod_{j != i} x_j = sum_{i != k} prod_{j != i, k} x_j
    assert h.tolist() == [[6.0, 11.0], [3.0, 2.0]]
    (g,) = torch.autograd.grad(x.prod(0).sum(), x, create_graph=True)
    assert g.grad_fn.name() == "MulBackward0"


def test_in_place_reciprocal_backward_uses_the_result():
    x = torch.tensor([0.0, 2.0], requires_grad=True)
    y = x * 1
    y.reciprocal_()
    y.sum().backward()
    assert x.grad.tolist() == [-float("inf"), -0.25]


def test_setitem_negative_stop_on_empty_is_copy_slices():
    v = torch.tensor([])
    v[:-1] = torch.tensor(-2.0, requires_grad=True)
    assert v.grad_fn.name() == "torch::autograd::CopySlices"
    w = torch.zeros(0, 3)
    w[:] = torch.tensor(-2.0, requires_grad=True)
    assert w.grad_fn.name() == "FillBackward3"


# ---- the same snippets against PyTorch ----------------------------------------------------------

def _clamp_two_bounds(T):
    x = T.tensor([2.0, 1.0, -3.0], requires_grad=True)
    lo = T.tensor([2.0, 0.0, 1.0], requires_grad=True)
    hi = T.tensor([3.0, 1.0, 0.0], requires_grad=True)
    y = x.clamp(lo, hi)
    return [y.grad_fn.name()] + [g.tolist() for g in T.autograd.grad(y.sum(), [x, lo, hi])]


def _clamp_max_tensor(T):
    x = T.tensor([2.0, 1.0], requires_grad=True)
    y = x.clamp_max(T.tensor(1.0))
    return [y.grad_fn.name(), T.autograd.grad(y.sum(), x)[0].tolist()]


def _strides(T):
    return [T.tensor([[1, 0], [1, 1]]).nonzero().stride(), T.tensor([]).stride()]


def _layouts(T):
    a = T.arange(24.0).reshape(2, 3, 4).permute(2, 0, 1)
    b = T.ones(4, 2, 3)
    return [r.stride() for r in (a.exp(), a + 1, a + a, a > 0, a + b, b + a, -a, T.trunc(a.transpose(0, 1)))]


def _dropout_transposed(T):
    T.manual_seed(1782462589)
    x = T.randn(4, 4)
    return T.nn.functional.dropout(x.mT).tolist()


def _reshape_alias(T):
    return [T.randn(4, 2, requires_grad=True)[:, 1].reshape(2, 2).grad_fn.name()]


@pytest.mark.parametrize("snippet", [_clamp_two_bounds, _clamp_max_tensor, _strides, _layouts, _dropout_transposed, _reshape_alias])
def test_matches_pytorch(snippet):
    real = pytest.importorskip("torch")
    assert snippet(torch) == snippet(real)
