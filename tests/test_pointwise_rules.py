"""dtype and saved-tensor rules of lerp, addcmul/addcdiv and where, as PyTorch 2.15 has them;
values against closed forms."""

import numpy as np
import pytest
import rustgrad as torch

F32 = torch.randn(2, 3)
F64 = torch.randn(2, 3, dtype=torch.float64)
I64 = torch.ones(2, 3, dtype=torch.int64)


@pytest.mark.parametrize(
    "x, end, weight, message",
    [
        (F32, F64, 0.5, "expected dtype float for `end` but got dtype double"),
        (F32, I64, F32, "expected dtype float for `end` but got dtype long int"),
        (F64, F32, 0.5, "expected dtype double for `end` but got dtype float"),
        (I64, F32, 0.5, "expected dtype long int for `end` but got dtype float"),
        (F32, F32, F64, "expected dtype float for `weight` but got dtype double"),
        (F32, F32, I64, "expected dtype float for `weight` but got dtype long int"),
    ],
)
def test_lerp_dtype_checks(x, end, weight, message):
    with pytest.raises(RuntimeError, match=f"^{message}$"):
        x.lerp(end, weight)
    with pytest.raises(RuntimeError, match=f"^{message}$"):
        x.clone().lerp_(end, weight)


def test_lerp_of_integers_has_no_kernel_unless_a_0d_weight_promotes():
    with pytest.raises(NotImplementedError, match="^\"lerp_kernel_scalar\" not implemented for 'Long'$"):
        I64.lerp(I64, 0.5)
    with pytest.raises(NotImplementedError, match="^\"lerp_kernel_tensor\" not implemented for 'Long'$"):
        I64.lerp(I64, I64)
    out = I64.lerp(I64 * 3, torch.tensor(0.5))  # a 0-d float weight promotes: 1 + 0.5 * (3 - 1)
    assert out.dtype == torch.float32 and np.allclose(out.numpy(), 2.0)
    # A 0-d weight of another float type is cast, not refused.
    out = F32.lerp(F32 + 2, torch.tensor(0.25, dtype=torch.float64))
    assert out.dtype == torch.float32 and np.allclose(out.numpy(), F32.numpy() + 0.5)


def test_lerp_broadcast_error_names_the_input_first():
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match the size of tensor b \(5\)"):
        F32.lerp(F32[0], torch.ones(5))


def test_addcdiv_of_integer_tensors_is_refused():
    with pytest.raises(
        RuntimeError, match="^Integer division with addcdiv is no longer supported, and in a future  release"
    ):
        F32.addcdiv(I64, I64)
    with pytest.raises(RuntimeError, match="^Integer division with addcdiv"):
        F32.addcdiv(I64, I64.bool())
    out = I64.addcdiv(F32.abs() + 1, F32.abs() + 1, value=2)  # 1 + 2 * 1
    assert out.dtype == torch.float32 and np.allclose(out.numpy(), 3.0)


def test_addcmul_promotes_its_three_operands():
    out = torch.ones(2).addcmul(torch.ones(2, dtype=torch.float64), torch.full((2,), 3.0))
    assert out.dtype == torch.float64 and out.tolist() == [4.0, 4.0]
    assert I64.addcmul(I64, I64).dtype == torch.int64
    with pytest.raises(NotImplementedError, match="^\"addcmul_cpu_out\" not implemented for 'Bool'$"):
        I64.bool().addcmul(I64.bool(), I64.bool())


def test_where_saves_its_condition_with_its_version():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    cond = x > 0
    y = torch.where(cond, x, 0.0)
    cond[0] = False
    with pytest.raises(
        RuntimeError, match=r"modified by an inplace operation: \[CPUBoolType \[3\]\] is at version 1"
    ):
        y.sum().backward()
    y = torch.where(x > 0, x, 0.0)
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 1.0]


def test_relu_backward_passes_the_gradient_at_nan_and_gives_plus_zero_elsewhere():
    x = torch.tensor([float("nan"), -1.0, 0.0, 2.0], requires_grad=True)
    torch.relu(x).backward(torch.tensor([0.5, -0.5, -2.0, 3.0]))
    assert [str(v) for v in x.grad.tolist()] == ["0.5", "0.0", "0.0", "3.0"]


@pytest.mark.parametrize(
    "dtype, n, expected", [(torch.float32, 1, "inf"), (torch.float32, 3, "nan"), (torch.float64, 3, "inf")]
)
def test_gelu_at_plus_infinity_follows_pytorchs_kernels(dtype, n, expected):
    out = torch.nn.functional.gelu(torch.full((n,), float("inf"), dtype=dtype))
    assert {str(v) for v in out.tolist()} == {expected}


def test_linear_of_a_vector_without_bias_is_a_matmul():
    w = torch.randn(4, 2, requires_grad=True)
    assert type(torch.nn.functional.linear(torch.randn(2), w).grad_fn).__name__ == "SqueezeBackward4"
    b = torch.randn(4, requires_grad=True)
    assert type(torch.nn.functional.linear(torch.randn(2), w, b).grad_fn).__name__ == "UnsafeViewBackward0"


@pytest.mark.parametrize("op", [torch.maximum, torch.minimum])
def test_maximum_minimum_backward_records_masked_fill(op):
    a = torch.tensor([-2.6, -1.0, 0.5, 3.0], requires_grad=True)
    b = torch.tensor([0.5, -1.0, 0.5, 1.0], requires_grad=True)
    ga, gb = torch.autograd.grad(op(a, b), [a, b], torch.ones(4, requires_grad=True), create_graph=True)
    assert type(ga.grad_fn).__name__ == type(gb.grad_fn).__name__ == "MaskedFillBackward0"
    a_wins = [0.0, 0.5, 0.5, 1.0] if op is torch.maximum else [1.0, 0.5, 0.5, 0.0]
    assert ga.tolist() == a_wins and gb.tolist() == a_wins[::-1]


def test_logsumexp_of_no_dims_reduces_all_with_keepdim():
    x = torch.tensor([[0.0], [1.0], [2.0]])
    np.testing.assert_allclose(
        x.logsumexp([], keepdim=True).numpy(), [[np.log(1 + np.e + np.e**2)]], rtol=1e-6
    )
    with pytest.raises(
        RuntimeError, match=r"^output with shape \[\] doesn't match the broadcast shape \[1, 1\]$"
    ):
        x.logsumexp([])


def test_bce_keeps_the_input_dtype_with_double_weights():
    F = torch.nn.functional
    x = torch.randn(4, 4, requires_grad=True)
    y = torch.rand(4, 4)
    w = torch.rand(4, 4, dtype=torch.float64)
    loss = F.binary_cross_entropy_with_logits(x, y, weight=w)
    assert loss.dtype == torch.float32
    loss.backward()
    assert x.grad.dtype == torch.float32
    assert F.binary_cross_entropy(torch.sigmoid(x.detach()), y, weight=w).dtype == torch.float32
    assert F.binary_cross_entropy_with_logits(x, y, pos_weight=w[0]).dtype == torch.float32
    # With logits, the loss has the target's dtype whatever the input's.
    assert F.binary_cross_entropy_with_logits(x, y.double()).dtype == torch.float64
    assert F.binary_cross_entropy_with_logits(x.double(), y, weight=w).dtype == torch.float32


@pytest.mark.parametrize(
    "x, bias, node",
    [
        (torch.rand(2, 4, 2), torch.tensor(3.0), "AddBackward0"),
        (torch.rand(2, 4, 2), torch.rand(2), "UnsafeViewBackward0"),
        (torch.rand(2, 4, 2).transpose(0, 1), torch.rand(2), "AddBackward0"),
        (torch.rand(4, 2), torch.tensor(3.0), "AddmmBackward0"),
    ],
)
def test_linear_folds_batch_dims_only_for_a_contiguous_input_and_vector_bias(x, bias, node):
    w = torch.randn(2, 2, requires_grad=True)
    out = torch.nn.functional.linear(x, w, bias)
    assert type(out.grad_fn).__name__ == node
    np.testing.assert_allclose(
        out.detach().numpy(), x.numpy() @ w.detach().numpy().T + bias.numpy(), rtol=1e-5, atol=1e-6
    )


def test_pow_minus_half_is_rsqrt_and_prod_with_two_zeros_has_zero_gradient():
    x = torch.tensor([4.0, -0.0, 0.0])
    assert (x**-0.5).tolist() == [0.5, float("-inf"), float("inf")]
    y = torch.tensor([[0.0, 2.0], [0.0, float("nan")]], requires_grad=True)
    torch.prod(y).backward()
    assert y.grad.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_clone_keeps_the_strides_of_size_one_dims():
    x = torch.tensor([[1, 2, 3]]).t()
    assert x.stride() == (1, 3) and x.clone().stride() == (1, 3)


def test_a_number_input_keeps_double_precision_and_promotes_as_a_number():
    big = torch.div(1e300, torch.tensor([-0.75], dtype=torch.float64))
    assert big.dtype == torch.float64 and big.tolist() == [1e300 / -0.75]
    assert torch.add(2.5, torch.tensor([1])).dtype == torch.float32
    assert torch.mul(True, torch.tensor([2])).dtype == torch.int64
    assert torch.add(5, 4.5).tolist() == 9.5


def test_reduction_details():
    x = torch.randn(3, requires_grad=True)
    assert type(x.mean([]).grad_fn).__name__ == "MeanBackward1"
    assert type(x.mean().grad_fn).__name__ == "MeanBackward0"
    # var over a size-1 dim with correction 2: the gradient divides by -1 degrees of freedom.
    y = torch.randn(4, 1, requires_grad=True)
    y.var(1, correction=2).backward(torch.ones(4))
    assert y.grad.tolist() == [[0.0]] * 4
    # number ** tensor is row-major whatever the exponent's layout.
    assert (0.25 ** torch.ones(2, 3).t()).stride() == (2, 1)


def test_cross_entropy_with_every_target_ignored_has_zero_gradient():
    x = torch.rand(2, 1, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(x, torch.tensor([0, 0]), ignore_index=0)
    loss.acos().backward()  # acos'(nan) is nan: the ignored rows still get 0
    assert x.grad.tolist() == [[0.0], [0.0]]


def test_logsigmoid_is_plus_zero_at_infinity_and_min_of_nan_goes_to_the_nans():
    out = torch.nn.functional.logsigmoid(torch.tensor([float("inf"), -30.0]))
    assert str(out[0].item()) == "0.0" and abs(out[1].item() + 30.0) < 1e-5
    y = torch.tensor([[1.0, float("nan"), float("nan")]], requires_grad=True)
    y.max().backward()
    assert y.grad.tolist() == [[0.0, 0.5, 0.5]]


def test_multi_output_views_of_an_inference_tensor_do_not_require_grad():
    with torch.inference_mode():
        v = torch.tensor([[1.5], [0.5]], requires_grad=True)
    for piece in (*v.chunk(2, 0), *torch.split(v, [1, 1], 0), *v.unbind(0)):
        assert not piece.requires_grad and piece.is_leaf and piece.is_inference()
    assert v.detach().is_inference()


def test_nodes_that_save_nothing_run_again_after_their_graph_is_freed():
    v = torch.randn(3, requires_grad=True)
    out = v.lerp(torch.ones(3), 0.5).sum()
    out.backward()
    out.backward()  # LerpBackward0 with a number weight and SumBackward0 save nothing
    assert v.grad.tolist() == [1.0, 1.0, 1.0]
    x = torch.tensor([0.5, 2.9], requires_grad=True)
    for op in (torch.floor, torch.sign, torch.round, torch.ceil, torch.trunc):
        y = op(x)
        y.backward(torch.ones(2))
        assert torch.autograd.grad(y, [x], torch.ones(2))[0].tolist() == [0.0, 0.0]
