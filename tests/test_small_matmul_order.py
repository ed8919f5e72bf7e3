"""Small float matmuls sum each dot product in order of k without fused multiply-adds, as
PyTorch's CPU BLAS does for sizes up to 7 (note [Small matmuls in PyTorch's order]): the
oracle is that summation done in numpy, compared bit for bit."""

import numpy as np
import pytest
import rustgrad as torch


def in_order(a, b):
    out = np.zeros((a.shape[0], b.shape[1]), a.dtype)
    for p in range(a.shape[1]):
        out = out + a[:, p : p + 1] * b[p : p + 1, :]  # one rounding per product and per sum
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "m, k, n",
    [(1, 1, 1), (3, 3, 3), (2, 7, 5), (7, 7, 7), (1, 4, 4), (4, 4, 1), (7, 3, 2), (8, 4, 2), (20, 2, 2)],
)
def test_small_products_round_as_pytorch(dtype, m, k, n):
    torch.manual_seed(m * 100 + k * 10 + n)
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    np.testing.assert_array_equal((a @ b).numpy(), in_order(a.numpy(), b.numpy()))
    np.testing.assert_array_equal(a.t().t().mm(b).numpy(), in_order(a.numpy(), b.numpy()))
    batch_a, batch_b = torch.randn(2, m, k, dtype=dtype), torch.randn(2, k, n, dtype=dtype)
    out = torch.bmm(batch_a, batch_b).numpy()
    for i in range(2):
        np.testing.assert_array_equal(out[i], in_order(batch_a[i].numpy(), batch_b[i].numpy()))


def test_large_products_stay_close():
    torch.manual_seed(0)
    a, b = torch.randn(64, 33, dtype=torch.float64), torch.randn(33, 20, dtype=torch.float64)
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy(), rtol=1e-12, atol=1e-12)
