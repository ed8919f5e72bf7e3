"""The float32 element-wise kernels that avoid libm calls (exp, tanh, sigmoid) stay within a couple
of ulp of the exact values (float64 numpy as the oracle), including special values and the
parallel path for large inputs."""

import numpy as np
import pytest
import rustgrad as torch

SWEEP = np.concatenate(
    [
        np.linspace(-12, 12, 300_001, dtype=np.float32),  # above the parallel threshold
        np.linspace(-104, 89, 20_001, dtype=np.float32),
        np.float32([0.0, -0.0, 1e-7, -3e-4, 0.624, 0.626, 9.0, -20.0, 88.7, -87.5, -103.0]),
    ]
)

CASES = {
    "exp": (lambda t: t.exp(), np.exp, 1.0),
    "tanh": (lambda t: t.tanh(), np.tanh, 1.5),
    "sigmoid": (lambda t: t.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), 2.5),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_kernels_within_ulp_bound(name):
    ours_fn, exact_fn, max_ulp = CASES[name]
    ours = ours_fn(torch.tensor(SWEEP)).numpy().astype(np.float64)
    with np.errstate(over="ignore"):
        exact = exact_fn(SWEEP.astype(np.float64))
    normal = np.isfinite(exact) & (np.abs(exact) > np.finfo(np.float32).tiny) & (np.abs(exact) < 3.4e38)
    spacing = np.spacing(np.abs(exact[normal]).astype(np.float32)).astype(np.float64)
    ulp = np.abs(ours[normal] - exact[normal]) / spacing
    assert ulp.max() <= max_ulp, (name, ulp.max(), SWEEP[normal][ulp.argmax()])


def test_float32_kernels_special_values():
    x = torch.tensor([np.inf, -np.inf, np.nan, 0.0, 100.0, -200.0])
    assert x.exp().tolist()[:2] == [np.inf, 0.0] and np.isnan(x.exp().tolist()[2])
    assert x.exp().tolist()[3:] == [1.0, np.inf, 0.0]
    assert x.tanh().tolist()[:2] == [1.0, -1.0] and np.isnan(x.tanh().tolist()[2])
    assert x.tanh().tolist()[3:] == [0.0, 1.0, -1.0]
    assert x.sigmoid().tolist()[:2] == [1.0, 0.0] and np.isnan(x.sigmoid().tolist()[2])
    assert x.sigmoid().tolist()[3:] == [0.5, 1.0, 0.0]
    # tanh is odd and exact to the last bit around the switch between its two forms
    t = torch.tensor([0.6249, 0.6251]).tanh().tolist()
    assert t == pytest.approx(np.tanh([0.6249, 0.6251]), rel=2e-7)


def test_large_reductions_are_deterministic():
    x = torch.randn(1_000_003, dtype=torch.float64)
    first = x.sum().item()
    assert all(x.sum().item() == first for _ in range(5))
    assert first == pytest.approx(np.sum(x.numpy()), rel=1e-12)
