"""numpy and matplotlib take tensors directly, as they take PyTorch's."""

import numpy as np
import pytest
import rustgrad as torch


def test_numpy_ufuncs_return_tensors():
    t = torch.arange(6.0).reshape(2, 3)
    out = np.sin(t)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), np.sin(np.arange(6.0).reshape(2, 3)), rtol=1e-6)
    assert isinstance(np.exp(t), torch.Tensor)


def test_numpy_scalars_and_arrays_defer_to_tensors():
    t = torch.ones(3)
    assert isinstance(np.float64(2.0) * t, torch.Tensor)
    both = t + np.array([1.0, 2.0, 3.0])
    assert isinstance(both, torch.Tensor) and both.dtype == torch.float64
    assert both.tolist() == [2.0, 3.0, 4.0]


def test_numpy_functions_read_tensors():
    t = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert np.asarray(t).dtype == np.float32
    assert np.stack([t, t]).shape == (2, 2, 2)
    assert np.allclose(t, np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert float(np.dot(t[0], t[1])) == 11.0


def test_numpy_refuses_tensors_that_require_grad():
    x = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad"):
        np.asarray(x)
    assert np.asarray(x.detach()).tolist() == [1.0, 1.0, 1.0]


def test_matplotlib_plots_tensors(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = torch.linspace(-2, 2, 9, requires_grad=True)
    (x**2).sum().backward()
    fig, ax = plt.subplots()
    (line,) = ax.plot(x.detach(), x.grad)
    np.testing.assert_allclose(line.get_ydata(), 2 * np.linspace(-2, 2, 9), rtol=1e-6)
    fig.savefig(tmp_path / "grad.png")
    plt.close(fig)
    assert (tmp_path / "grad.png").stat().st_size > 0
