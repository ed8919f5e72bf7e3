"""Linear regression by gradient descent, as in the seed tutorial (autograd + optim.SGD).

Fits y = 1 + 2x + noise on 80 training points, checks the fit on 20 held-out points.
"""

import time

import numpy as np
import rustgrad as torch
from rustgrad import optim


def main() -> None:
    np.random.seed(42)
    x = np.random.rand(100, 1)
    y = 1 + 2 * x + 0.1 * np.random.randn(100, 1)
    idx = np.arange(100)
    np.random.shuffle(idx)
    train, val = idx[:80], idx[80:]
    x_train, y_train = torch.from_numpy(x[train]).float(), torch.from_numpy(y[train]).float()
    x_val, y_val = torch.from_numpy(x[val]).float(), torch.from_numpy(y[val]).float()

    torch.manual_seed(42)
    b = torch.randn(1, requires_grad=True, dtype=torch.float)
    w = torch.randn(1, requires_grad=True, dtype=torch.float)
    optimizer = optim.SGD([b, w], lr=0.1)

    start = time.perf_counter()
    for epoch in range(1000):
        loss = ((b + w * x_train - y_train) ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if epoch % 200 == 0:
            print(f"epoch {epoch:4d}  train mse {loss.item():.5f}")
    elapsed = time.perf_counter() - start

    with torch.no_grad():
        val_mse = ((b + w * x_val - y_val) ** 2).mean().item()
    print(b, w)
    print(f"validation mse {val_mse:.5f}; true line: b=1, w=2")
    print(f"1000 epochs in {elapsed:.3f} s ({elapsed:.3f} ms per epoch)")
    assert abs(b.item() - 1) < 0.1 and abs(w.item() - 2) < 0.1, "training did not converge"


if __name__ == "__main__":
    main()
