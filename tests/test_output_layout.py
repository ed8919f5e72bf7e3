"""The strides of element-wise results, copies and `_like` factories follow PyTorch's layout
rule (note [Output layout]); values are checked against numpy, random draws land in memory
order. Expected strides are PyTorch 2.15's."""

import numpy as np
import pytest
import rustgrad as torch


def base():
    return torch.arange(24.0).reshape(2, 3, 4)


LAYOUTS = {
    "permuted": lambda: base().permute(2, 0, 1),
    "sliced_permuted": lambda: base().permute(2, 1, 0)[::2],
    "size_one_dim": lambda: torch.zeros(3, 1, 3).permute(2, 0, 1),
}


@pytest.mark.parametrize(
    "make, op, strides",
    [
        (LAYOUTS["permuted"], lambda x: x.clone(), (1, 12, 4)),
        (LAYOUTS["permuted"], lambda x: x.double(), (1, 12, 4)),
        (LAYOUTS["permuted"], lambda x: x.long(), (1, 12, 4)),
        (LAYOUTS["permuted"], lambda x: x**2, (1, 12, 4)),
        (LAYOUTS["permuted"], lambda x: torch.where(x > 1, x, 0.0), (1, 12, 4)),
        (LAYOUTS["permuted"], lambda x: torch.zeros_like(x), (1, 12, 4)),
        (LAYOUTS["permuted"], lambda x: x.contiguous(), (6, 3, 1)),
        (LAYOUTS["permuted"], lambda x: x + torch.arange(3.0), (1, 12, 4)),
        (LAYOUTS["sliced_permuted"], lambda x: x.exp(), (1, 2, 6)),
        (LAYOUTS["sliced_permuted"], lambda x: x.clone(), (1, 2, 6)),
        (LAYOUTS["sliced_permuted"], lambda x: x > 1, (1, 2, 6)),
        (LAYOUTS["size_one_dim"], lambda x: x / torch.tensor([[1.5], [-1.0], [2.5]]), (1, 3, 3)),
        (LAYOUTS["size_one_dim"], lambda x: torch.tensor([[1.5], [-1.0], [2.5]]) / x, (1, 3, 3)),
        # A contiguous first operand decides: the result is row-major.
        (lambda: base().reshape(4, 2, 3), lambda x: x + base().permute(2, 0, 1), (6, 3, 1)),
    ],
)
def test_result_strides_and_values(make, op, strides):
    x = make()
    out = op(x)
    assert out.stride() == strides
    # The logical values do not depend on the layout.
    expected = op(torch.tensor(x.numpy().copy()))
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    np.testing.assert_array_equal(out.flatten().numpy(), expected.numpy().reshape(-1))


def test_reshape_of_a_permuted_copy_reads_logical_order():
    x = torch.arange(6.0).reshape(2, 3).t()
    assert x.clone().reshape(-1).tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    assert x.exp().flatten().log().round().tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


def test_random_like_draws_in_memory_order():
    x = base().permute(2, 0, 1)
    torch.manual_seed(3)
    drawn = torch.rand_like(x)
    torch.manual_seed(3)
    row_major = torch.rand(2, 3, 4)
    assert drawn.stride() == (1, 12, 4)
    # Memory order of the permuted result is the row-major order of (2, 3, 4).
    np.testing.assert_array_equal(drawn.numpy(), row_major.permute(2, 0, 1).numpy())
    torch.manual_seed(5)
    normal = torch.randn_like(x, requires_grad=True)
    assert normal.is_leaf and normal.requires_grad and normal.stride() == (1, 12, 4)
    # A permuted target draws element by element (normal_ of a non-contiguous tensor), not in
    # the blocks of 16 a contiguous randn uses: PyTorch 2.15's first draws in memory order.
    in_memory_order = normal.detach().permute(1, 2, 0).reshape(-1)[:4].tolist()
    np.testing.assert_allclose(
        in_memory_order, [-0.48678076, -0.60382158, -0.55809623, 0.66752428], rtol=1e-6
    )


def test_softmax_results_are_row_major_for_any_input_layout():
    x = torch.zeros(4, 3, requires_grad=True)
    for fn in (torch.softmax, torch.log_softmax):
        for dim in (0, 1):
            y = fn(x.T, dim)
            assert y.is_contiguous() and y.stride() == (4, 1)
            assert y.contiguous() is y
