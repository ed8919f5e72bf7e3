"""Deep graphs and graph memory, grad mode across threads, errors surfacing as Python exceptions
(exact PyTorch 2.x messages), and numpy memory sharing.

``rustgrad.autograd.graph_stats()["live_nodes"]`` counts the backward nodes alive right now; it
must come back to its earlier value once the tensors holding a graph are dropped.
"""

import gc
import threading

import numpy as np
import pytest
import rustgrad as torch

N_DEEP = 1_000_000


def live_nodes():
    gc.collect()
    return torch.autograd.graph_stats()["live_nodes"]


# ----- deep graphs and memory -----


def test_graph_stats_counts_nodes():
    base = live_nodes()
    x = torch.ones(2, requires_grad=True)
    y = (x * 2).sum()
    assert live_nodes() > base
    del y
    assert live_nodes() == base
    del x
    assert live_nodes() == base


def test_million_node_mul_chain_backward_and_free():
    base = live_nodes()
    c = 1.0000001
    x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    y = x
    for _ in range(N_DEEP):
        y = y * c
    assert live_nodes() >= base + N_DEEP
    assert y.item() == pytest.approx(c ** N_DEEP, rel=1e-9)
    y.backward(torch.ones(1, dtype=torch.float64))
    assert x.grad.item() == pytest.approx(c ** N_DEEP, rel=1e-9)
    del y
    assert live_nodes() == base
    del x
    assert live_nodes() == base


def test_million_node_add_chain_backward_and_free():
    base = live_nodes()
    x = torch.tensor([0.5], requires_grad=True)
    y = x
    for _ in range(N_DEEP):
        y = y + x
    y.sum().backward()
    assert x.grad.item() == float(N_DEEP + 1)  # exact in float32
    assert y.item() == pytest.approx(0.5 * (N_DEEP + 1), rel=1e-4)
    del y
    assert live_nodes() == base


def test_dropping_unbackpropagated_million_node_graph():
    base = live_nodes()
    x = torch.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(N_DEEP):
        y = y * 1.0000001
    assert live_nodes() >= base + N_DEEP
    del y  # frees a 1e6-deep chain that was never run: must not recurse or crash
    assert live_nodes() == base
    assert x.grad is None
    (x * 3).sum().backward()  # the engine still works afterwards
    assert x.grad.item() == 3.0


def test_graph_freed_after_backward_while_output_kept():
    base = live_nodes()
    x = torch.randn(3, requires_grad=True)
    loss = (x.tanh() * x).sum()
    loss.backward()
    assert x.grad is not None
    del loss
    assert live_nodes() == base


def test_training_loop_leaves_no_nodes_behind():
    torch.manual_seed(0)
    n, d_in, d_hidden = 64, 4, 16
    X = torch.randn(n, d_in)
    true_w = torch.randn(d_in, 1)
    Y = (X @ true_w).tanh() + 0.05 * torch.randn(n, 1)

    w1 = (torch.randn(d_in, d_hidden) * 0.5).requires_grad_()
    b1 = torch.zeros(d_hidden, requires_grad=True)
    w2 = (torch.randn(d_hidden, 1) * 0.5).requires_grad_()
    b2 = torch.zeros(1, requires_grad=True)
    params = [w1, b1, w2, b2]
    opt = torch.optim.SGD(params, lr=0.1)
    base = live_nodes()

    losses = []
    for step in range(1000):
        opt.zero_grad()
        hidden = (X @ w1 + b1).tanh()
        pred = hidden @ w2 + b2
        loss = ((pred - Y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        del hidden, pred, loss
        if step % 100 == 0 or step == 999:
            assert live_nodes() == base, f"nodes leaked at step {step}"
        else:
            assert torch.autograd.graph_stats()["live_nodes"] == base, f"nodes leaked at step {step}"

    assert all(p.is_leaf and p.grad_fn is None for p in params)
    assert losses[-1] < 0.25 * losses[0]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


# ----- threads -----


def test_grad_mode_is_per_thread():
    results = {}
    disabled = threading.Event()
    checked = threading.Event()

    def disabler():
        torch.set_grad_enabled(False)
        results["disabler_sees"] = torch.is_grad_enabled()
        disabled.set()
        checked.wait(10)
        results["disabler_still"] = torch.is_grad_enabled()

    def other():
        disabled.wait(10)
        results["other_sees"] = torch.is_grad_enabled()
        x = torch.ones(2, requires_grad=True)
        y = (x * 3).sum()
        results["records"] = y.requires_grad and y.grad_fn is not None
        y.backward()
        results["grad"] = x.grad.tolist()
        checked.set()

    threads = [threading.Thread(target=disabler), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {
        "disabler_sees": False,
        "disabler_still": False,
        "other_sees": True,
        "records": True,
        "grad": [3.0, 3.0],
    }
    assert torch.is_grad_enabled()  # the main thread is untouched too


def test_no_grad_in_main_thread_does_not_leak_into_worker():
    results = {}

    def worker():
        results["enabled"] = torch.is_grad_enabled()
        x = torch.ones(1, requires_grad=True)
        results["records"] = (x * 2).requires_grad

    with torch.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join(30)
        assert not torch.is_grad_enabled()
    assert results == {"enabled": True, "records": True}


def test_concurrent_backward_in_threads():
    errors = []
    grads = {}

    def worker(k):
        try:
            x = torch.tensor([float(k), 1.0], dtype=torch.float64, requires_grad=True)
            for _ in range(200):
                x.grad = None
                y = (x * x * k).sum() + x.sin().sum()
                y.backward()
            grads[k] = x.grad.tolist()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    for k in range(1, 5):
        xs = np.array([float(k), 1.0])
        np.testing.assert_allclose(grads[k], 2 * k * xs + np.cos(xs))


# ----- errors are Python exceptions with PyTorch's messages -----


def _hook_raising_value_error():
    x = torch.ones(2, requires_grad=True)
    err = ValueError("raised in hook")

    def hook(g):
        raise err

    x.register_hook(hook)
    return x, err


def _inplace_on_leaf():
    x = torch.ones(2, requires_grad=True)
    x.add_(1)


def _inplace_mul_on_leaf():
    x = torch.ones(2, requires_grad=True)
    x.mul_(2)


def _set_requires_grad_false_on_non_leaf():
    x = torch.ones(2, requires_grad=True)
    y = x * 2
    y.requires_grad = False


NON_LEAF_MSG = (
    "you can only change requires_grad flags of leaf variables. If you want to use a computed variable "
    "in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."
)

ERROR_CASES = [
    ("broadcast_mismatch", lambda: torch.ones(3) + torch.ones(4), RuntimeError,
     "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 0"),
    ("broadcast_mismatch_2d", lambda: torch.ones(3, 2) * torch.ones(4, 2), RuntimeError,
     "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 0"),
    ("view_wrong_size", lambda: torch.ones(16).view(3, 5), RuntimeError,
     "shape '[3, 5]' is invalid for input of size 16"),
    ("reshape_wrong_size", lambda: torch.ones(16).reshape(3, 5), RuntimeError,
     "shape '[3, 5]' is invalid for input of size 16"),
    ("mm_shape_mismatch", lambda: torch.ones(2, 3).mm(torch.ones(4, 5)), RuntimeError,
     "mm: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
    ("matmul_2d_shape_mismatch", lambda: torch.ones(2, 3) @ torch.ones(4, 5), RuntimeError,
     "mm: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
    ("mv_size_mismatch", lambda: torch.ones(2, 3).mv(torch.ones(4)), RuntimeError,
     "size mismatch, got input (2), mat (2x3), vec (4)"),
    ("bmm_size_mismatch", lambda: torch.ones(2, 2, 3).bmm(torch.ones(2, 4, 5)), RuntimeError,
     "Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [2, 4]."),
    ("dot_of_2d", lambda: torch.ones(2, 2).dot(torch.ones(2, 2)), RuntimeError,
     "1D tensors expected, but got 2D and 2D tensors"),
    ("dot_size_mismatch", lambda: torch.ones(2).dot(torch.ones(3)), RuntimeError,
     ("inconsistent tensor size, expected tensor [2] and src [3] to have the same number of elements, "
     "but got 2 and 3 elements respectively")),
    ("dim_out_of_range_sum", lambda: torch.ones(2, 2).sum(2), IndexError,
     "Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    ("dim_out_of_range_transpose", lambda: torch.ones(2, 2).transpose(0, 2), IndexError,
     "Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    ("dim_out_of_range_max", lambda: torch.ones(2, 2).max(dim=5), IndexError,
     "Dimension out of range (expected to be in range of [-2, 1], but got 5)"),
    ("expand_mismatch", lambda: torch.ones(3).expand(4, 2), RuntimeError,
     ("The expanded size of the tensor (2) must match the existing size (3) at non-singleton dimension 1.  "
     "Target sizes: [4, 2].  Tensor sizes: [3]")),
    ("permute_duplicate", lambda: torch.ones(2, 3).permute(0, 0), RuntimeError,
     "permute(): duplicate dims are not allowed."),
    ("item_of_4_elements", lambda: torch.ones(4).item(), RuntimeError,
     "a Tensor with 4 elements cannot be converted to Scalar"),
    ("bool_of_multi_element", lambda: bool(torch.ones(4)), RuntimeError,
     "Boolean value of Tensor with more than one value is ambiguous"),
    ("requires_grad_int_tensor", lambda: torch.tensor([1, 2], requires_grad=True), RuntimeError,
     "Only Tensors of floating point and complex dtype can require gradients"),
    ("requires_grad__int_tensor", lambda: torch.tensor([1, 2]).requires_grad_(), RuntimeError,
     "only Tensors of floating point dtype can require gradients"),
    ("numpy_of_requires_grad", lambda: torch.ones(2, requires_grad=True).numpy(), RuntimeError,
     "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."),
    ("inplace_add_on_leaf", _inplace_on_leaf, RuntimeError,
     "a leaf Variable that requires grad is being used in an in-place operation."),
    ("inplace_mul_on_leaf", _inplace_mul_on_leaf, RuntimeError,
     "a leaf Variable that requires grad is being used in an in-place operation."),
    ("requires_grad_false_on_non_leaf", _set_requires_grad_false_on_non_leaf, RuntimeError, NON_LEAF_MSG),
    ("backward_without_grad", lambda: torch.ones(2).sum().backward(), RuntimeError,
     "element 0 of tensors does not require grad and does not have a grad_fn"),
    ("implicit_grad_non_scalar", lambda: (torch.ones(2, requires_grad=True) * 2).backward(), RuntimeError,
     "grad can be implicitly created only for scalar outputs"),
]


@pytest.mark.parametrize("fn, exc_type, message", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_error_is_python_exception_with_pytorch_message(fn, exc_type, message):
    with pytest.raises(exc_type) as info:
        fn()
    assert type(info.value) is exc_type
    assert str(info.value) == message
    # the engine is still usable afterwards
    x = torch.ones(2, requires_grad=True)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_hook_exception_propagates_unchanged():
    x, err = _hook_raising_value_error()
    with pytest.raises(ValueError) as info:
        (x * 2).sum().backward()
    assert info.value is err
    assert x.grad is None
    assert torch.is_grad_enabled()


def test_non_leaf_hook_exception_propagates_and_engine_recovers():
    x = torch.ones(2, requires_grad=True)
    y = x * 2

    def hook(g):
        raise ValueError("non-leaf hook")

    handle = y.register_hook(hook)
    with pytest.raises(ValueError, match="^non-leaf hook$"):
        y.sum().backward(retain_graph=True)
    handle.remove()
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_failing_op_inside_no_grad_restores_mode():
    with pytest.raises(RuntimeError), torch.no_grad():
        torch.ones(3) + torch.ones(4)
    assert torch.is_grad_enabled()


# ----- numpy interop -----


def test_from_numpy_shares_memory_both_ways():
    a = np.zeros(3)
    t = torch.from_numpy(a)
    assert t.dtype == torch.float64
    assert t.data_ptr() == a.ctypes.data
    a[0] = 1.0
    assert t.tolist() == [1.0, 0.0, 0.0]
    t.add_(1)
    np.testing.assert_array_equal(a, [2.0, 1.0, 1.0])
    t[2] = 7.0
    assert a[2] == 7.0


def test_from_numpy_keeps_array_alive():
    a = np.arange(4, dtype=np.float32)
    t = torch.from_numpy(a)
    assert t.dtype == torch.float32
    del a
    gc.collect()
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_from_numpy_strided_view_shares_memory():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    s = a[:, ::2]
    t = torch.from_numpy(s)
    assert tuple(t.shape) == (3, 2)
    assert t.stride() == (4, 2)
    s[1, 1] = 100.0
    assert t[1, 1].item() == 100.0


def test_from_numpy_negative_strides_rejected():
    with pytest.raises(ValueError, match="^At least one stride in the given numpy array is negative"):
        torch.from_numpy(np.arange(3.0)[::-1])


def test_numpy_is_zero_copy():
    t = torch.zeros(3)
    n = t.numpy()
    assert n.dtype == np.float32
    assert n.ctypes.data == t.data_ptr()
    n[0] = 7.0
    assert t.tolist() == [7.0, 0.0, 0.0]
    t.mul_(2)
    np.testing.assert_array_equal(n, [14.0, 0.0, 0.0])


def test_numpy_of_transposed_view_shares_memory():
    x = torch.zeros(2, 3)
    n = x.t().numpy()
    assert n.shape == (3, 2)
    n[0, 1] = 9.0
    assert x[1, 0].item() == 9.0


def test_numpy_outlives_tensor():
    n = torch.ones(3).numpy()
    gc.collect()
    np.testing.assert_array_equal(n, [1.0, 1.0, 1.0])


def test_detach_numpy_shares_memory_with_grad_tensor():
    x = torch.ones(2, requires_grad=True)
    n = x.detach().numpy()
    n[1] = 5.0
    assert x.tolist() == [1.0, 5.0]


def test_tensor_copies():
    a = np.zeros(3)
    t = torch.tensor(a)
    assert t.dtype == torch.float64
    assert t.data_ptr() != a.ctypes.data
    a[0] = 5.0
    assert t.tolist() == [0.0, 0.0, 0.0]
    t.add_(1)
    np.testing.assert_array_equal(a, [5.0, 0.0, 0.0])


def test_tensor_of_numpy_scalar_keeps_its_dtype():
    assert torch.tensor(np.float64(2.0)).dtype == torch.float64
    assert torch.tensor(np.float32(2.0)).dtype == torch.float32
    assert torch.tensor(np.int64(2)).dtype == torch.int64
    assert torch.tensor([np.float64(1.0), np.float64(2.0)]).dtype == torch.float64
    assert torch.tensor(2.0).dtype == torch.float32
    assert torch.tensor([1.0, 2.0]).dtype == torch.float32
