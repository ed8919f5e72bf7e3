"""Benchmarks of one framework through its Python API; one JSON line per result row.

    python benchmarks/bench_python.py --framework rustgrad|torch|numpy|micrograd [--scale 0.2]
                                      [--threads N] [--only GROUP[,GROUP...]]

Groups of workloads (issue 5; rows named as in benchmarks/README.md):
  forward_op      c = a * b + a on 1-element float32 tensors requiring grad; us per op (2 ops / iteration)
  backward_chain  backward of a 1,000-op chain y = y * b + a; us per node (graph built outside the timing)
  micrograd_mlp   micrograd's demo: MLP 2-16-16-1 over 0-d scalars, 100 "moons" points, hinge loss + L2,
                  forward + backward + SGD step; ms per step
  tanh_sum        forward + backward of tanh(x*x + 3*x).sum() on 1e6 and 1e7 float32 elements; ms
  matmul          float32 a @ b (forward) and (a @ b).sum().backward() (backward), N = 256..2048; GFLOP/s
  mlp_sgd         MLP 784-256-10, ReLU, batch 64: zero_grad, forward, MSE / cross-entropy, backward,
                  SGD step; ms per step
  chain_1e5       (fresh process) backward time (s) and peak RSS growth (MB) of a 100,000-op chain
  chain_1e6       (fresh process) the same for a 1,000,000-op chain
  train_rss       (fresh process) RSS growth (MB) over 2,000 SGD steps of a small MLP, after a warm-up
numpy runs tanh_sum and matmul with hand-written backwards; micrograd runs forward_op, backward_chain and
micrograd_mlp. The "fresh process" groups are run in a child process of this script (one each), so their
memory figures do not depend on what ran before. Every workload checks its result once against numpy or a
closed form, so a broken op cannot show a good time.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

CHAIN_OPS = 1_000
FORWARD_ITERS = 20_000
MATMUL_SIZES = (256, 512, 1024, 2048)
MATMUL_REPEATS = {256: 41, 512: 15, 1024: 7, 2048: 3}
INFO: dict = {}  # framework version and threads, added to every line

GROUPS = {
    # group: (frameworks, runs in a fresh child process)
    "forward_op": ({"rustgrad", "torch", "micrograd"}, False),
    "backward_chain": ({"rustgrad", "torch", "micrograd"}, False),
    "micrograd_mlp": ({"rustgrad", "torch", "micrograd"}, False),
    "tanh_sum": ({"rustgrad", "torch", "numpy"}, False),
    "matmul": ({"rustgrad", "torch", "numpy"}, False),
    "mlp_sgd": ({"rustgrad", "torch"}, False),
    "chain_1e5": ({"rustgrad", "torch"}, True),
    "chain_1e6": ({"rustgrad", "torch"}, True),
    "train_rss": ({"rustgrad", "torch"}, True),
    "models": ({"rustgrad", "torch"}, False),
    "per_sample": ({"rustgrad", "torch"}, False),
}


# ----------------------------------------------------------------------------------------------------------
# helpers


def _report(framework: str, workload: str, unit: str, samples: list[float], **extra) -> None:
    samples = sorted(samples)
    if len(samples) > 1:
        q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    else:
        q1 = q3 = samples[0]
    line = {
        "framework": framework,
        "workload": workload,
        "unit": unit,
        "median": statistics.median(samples),
        "min": samples[0],
        "max": samples[-1],
        "iqr": q3 - q1,
        "repeats": len(samples),
        **INFO,
        **extra,
    }
    print(json.dumps(line), flush=True)


def _timed(fn) -> float:
    """Seconds taken by fn(), with the garbage collector off (as timeit does)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def _proc_status_mb(field: str) -> float | None:
    """A `/proc/self/status` field (VmRSS, VmHWM) in MB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _rss_mb() -> float:
    """The current resident set size in MB (falls back to the peak where /proc is missing)."""
    rss = _proc_status_mb("VmRSS")
    return rss if rss is not None else _maxrss_mb()


def _maxrss_mb() -> float:
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, kB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


class PeakMeter:
    """Peak RSS growth of a stretch of code, in MB.

    On Linux, writing 5 to /proc/self/clear_refs resets the peak (VmHWM) to the current RSS, so the peak
    growth is VmHWM - VmRSS at the start. Elsewhere: ru_maxrss at the end - RSS at the start (an over-estimate
    if an earlier peak, e.g. during imports, was higher).
    """

    def __init__(self) -> None:
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.method = "VmHWM after clear_refs"
        except OSError:
            self.method = "ru_maxrss"
        self.start = _rss_mb()

    def growth(self) -> float:
        peak = _proc_status_mb("VmHWM") if self.method.startswith("VmHWM") else None
        return (peak if peak is not None else _maxrss_mb()) - self.start


class Framework:
    """The little that differs between rustgrad / torch (`import X as torch`) and micrograd's Value."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "numpy":  # runs only the workloads written for it
            self.torch = None
            INFO["version"] = np.__version__
            if os.environ.get("OPENBLAS_NUM_THREADS"):
                INFO["threads"] = int(os.environ["OPENBLAS_NUM_THREADS"])
        elif name == "micrograd":
            from importlib.metadata import version

            from micrograd.engine import Value

            self.Value = Value
            INFO["version"] = version("micrograd")
            sys.setrecursionlimit(100_000)  # micrograd's backward sorts the graph recursively
            self.torch = None
        else:
            self.torch = importlib.import_module(name)
            INFO["version"] = getattr(self.torch, "__version__", "?")

    def leaf1(self, value: float):
        """A 1-element float32 tensor requiring grad (a Value for micrograd)."""
        if self.torch is None:
            return self.Value(value)
        return self.torch.tensor([value], requires_grad=True)

    def scalar(self, value: float, requires_grad: bool = False):
        """A 0-d float32 tensor (a Value for micrograd)."""
        if self.torch is None:
            return self.Value(value)
        return self.torch.tensor(value, requires_grad=requires_grad)

    def item(self, t) -> float:
        return t.data if self.torch is None else t.item()

    def grad(self, t) -> float:
        return t.grad if self.torch is None else t.grad.item()

    def zero_grad(self, params) -> None:
        for p in params:
            p.grad = 0 if self.torch is None else None

    def sgd(self, params, lr: float) -> None:
        if self.torch is None:
            for p in params:
                p.data -= lr * p.grad
            return
        with self.torch.no_grad():
            for p in params:
                p -= lr * p.grad


# ----------------------------------------------------------------------------------------------------------
# 1, 2: per-op and per-node overhead


def bench_forward_op(fw: Framework, repeats: int) -> None:
    a = fw.leaf1(0.5)
    b = fw.leaf1(1.5)

    def loop(n: int = FORWARD_ITERS) -> None:
        for _ in range(n):
            c = a * b + a
        del c

    loop(2_000)  # warm-up
    c = a * b + a
    assert abs(fw.item(c) - 1.25) < 1e-6, fw.item(c)
    samples = [_timed(loop) * 1e6 / (2 * FORWARD_ITERS) for _ in range(repeats)]
    _report(fw.name, "forward_op", "us/op", samples, ops_per_repeat=2 * FORWARD_ITERS)


def bench_backward_chain(fw: Framework, repeats: int) -> None:
    a = fw.leaf1(0.1)
    b = fw.leaf1(0.999)
    x = fw.leaf1(1.0)
    samples = []
    for _ in range(repeats + 1):
        y = x
        for _ in range(CHAIN_OPS // 2):
            y = y * b + a
        fw.zero_grad([a, b, x])
        samples.append(_timed(y.backward) * 1e6 / CHAIN_OPS)
        del y
    expect = float(np.float32(0.999)) ** (CHAIN_OPS // 2)  # d y / d x = b ** (CHAIN_OPS / 2)
    got = fw.grad(x)
    assert abs(got - expect) <= 1e-4 * abs(expect), (got, expect)
    _report(fw.name, "backward_chain", "us/node", samples[1:], nodes=CHAIN_OPS)


# ----------------------------------------------------------------------------------------------------------
# 3: micrograd's demo


def moons(n: int = 100, noise: float = 0.1, seed: int = 1337) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's make_moons(n, noise=0.1), drawn with numpy's Generator (fixed values); y in {-1, 1}."""
    rng = np.random.default_rng(seed)
    n_out = n // 2
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n - n_out)
    x = np.concatenate(
        [np.stack([np.cos(t_out), np.sin(t_out)], 1), np.stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5], 1)]
    )
    y = np.concatenate([np.zeros(n_out), np.ones(n - n_out)])
    perm = rng.permutation(n)
    x, y = x[perm], y[perm]
    return x + rng.normal(scale=noise, size=x.shape), y * 2 - 1


MICROGRAD_SIZES = (2, 16, 16, 1)
MICROGRAD_ALPHA = 1e-4


def micrograd_weights(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer (W [out, in], b [out]): uniform(-1, 1) weights and zero biases, as micrograd's Neuron."""
    rng = np.random.default_rng(seed)
    sizes = MICROGRAD_SIZES
    return [
        (rng.uniform(-1, 1, (sizes[i + 1], sizes[i])).astype(np.float32), np.zeros(sizes[i + 1], np.float32))
        for i in range(len(sizes) - 1)
    ]


def micrograd_reference(x, y, weights) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
    """micrograd's demo loss and its gradient per layer, in float64 numpy."""
    acts, pre = [x], []
    for i, (w, b) in enumerate(weights):
        z = acts[-1] @ w.T.astype(np.float64) + b
        pre.append(z)
        acts.append(np.maximum(z, 0) if i < len(weights) - 1 else z)
    score = acts[-1][:, 0]
    margin = 1 - y * score
    reg = MICROGRAD_ALPHA * sum(float((w.astype(np.float64) ** 2).sum() + (b**2).sum()) for w, b in weights)
    loss = float(np.maximum(margin, 0).mean()) + reg
    d = (-(y * (margin > 0)) / len(y))[:, None]
    grads = []
    for i in reversed(range(len(weights))):
        w, b = (v.astype(np.float64) for v in weights[i])
        if i < len(weights) - 1:
            d = d * (pre[i] > 0)
        grads.append((d.T @ acts[i] + 2 * MICROGRAD_ALPHA * w, d.sum(0) + 2 * MICROGRAD_ALPHA * b))
        d = d @ w
    return loss, grads[::-1]


class Neuron:
    """micrograd's nn.Neuron, over the framework's 0-d scalars."""

    def __init__(self, w: list, b, nonlin: bool) -> None:
        self.w, self.b, self.nonlin = w, b, nonlin

    def __call__(self, x: list):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list:
        return self.w + [self.b]


class MLP:
    """micrograd's nn.MLP (a list of layers, each a list of Neurons)."""

    def __init__(self, fw: Framework, weights) -> None:
        self.layers = [
            [
                Neuron(
                    [fw.scalar(float(v), True) for v in w_row],
                    fw.scalar(float(b_i), True),
                    i < len(weights) - 1,
                )
                for w_row, b_i in zip(w, b)
            ]
            for i, (w, b) in enumerate(weights)
        ]

    def __call__(self, x: list):
        for layer in self.layers:
            x = [n(x) for n in layer]
        return x[0] if len(x) == 1 else x

    def parameters(self) -> list:
        return [p for layer in self.layers for n in layer for p in n.parameters()]


def bench_micrograd_mlp(fw: Framework, repeats: int) -> None:
    x_np, y_np = moons()
    weights = micrograd_weights()
    model = MLP(fw, weights)
    params = model.parameters()
    xs, ys = x_np.tolist(), y_np.tolist()

    def loss():
        inputs = [[fw.scalar(v) for v in row] for row in xs]  # micrograd's demo: list(map(Value, xrow))
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(ys, scores)]  # "max-margin" loss
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = MICROGRAD_ALPHA * sum(p * p for p in params)  # L2 regularization
        return data_loss + reg_loss

    def step(k: int, check: bool = False):
        total_loss = loss()
        fw.zero_grad(params)
        total_loss.backward()
        if check:
            want_loss, want_grads = micrograd_reference(x_np, y_np, weights)
            assert abs(fw.item(total_loss) - want_loss) <= 1e-5 * abs(want_loss), (
                fw.item(total_loss),
                want_loss,
            )
            want = np.concatenate([np.concatenate([gw, gb[:, None]], 1).ravel() for gw, gb in want_grads])
            got = np.array([fw.grad(p) for p in params])
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        fw.sgd(params, 1.0 - 0.9 * (k % 100) / 100)

    step(0, check=True)  # warm-up, checked against the numpy reference
    samples = [_timed(lambda k=k: step(k)) * 1e3 for k in range(1, repeats + 1)]
    _report(fw.name, "micrograd_mlp", "ms", samples, points=len(xs), parameters=len(params))
    # the same with Python's garbage collector left on, as in a plain script
    gc.collect()
    with_gc = []
    for k in range(repeats + 1, 2 * repeats + 1):
        start = time.perf_counter()
        step(k)
        with_gc.append((time.perf_counter() - start) * 1e3)
    _report(fw.name, "micrograd_mlp_gc", "ms", with_gc, points=len(xs), parameters=len(params))


# ----------------------------------------------------------------------------------------------------------
# 4: tanh(x*x + 3*x).sum()


def _tanh_inputs(n: int) -> np.ndarray:
    return (np.arange(n) % 1000).astype(np.float32) * np.float32(1e-3) - np.float32(0.5)


def _tanh_expected_grad(x: np.ndarray) -> np.ndarray:
    t = np.tanh(x * x + 3 * x)
    return (1 - t**2) * (2 * x + 3)


def bench_tanh_sum(fw: Framework, repeats: int, n: int, key: str) -> None:
    values = _tanh_inputs(n)
    torch = fw.torch
    if torch is None:  # numpy: the forward and the hand-written backward
        x, out = values, {}

        def step() -> None:
            t = np.tanh(x * x + 3 * x)
            out["sum"] = t.sum()
            out["grad"] = (1 - t**2) * (2 * x + 3)

        samples = [_timed(step) * 1e3 for _ in range(repeats + 1)][1:]
        np.testing.assert_allclose(out["grad"], _tanh_expected_grad(values), rtol=1e-6)
    else:
        x = torch.tensor(values, requires_grad=True)

        def step() -> None:
            x.grad = None
            torch.tanh(x * x + 3 * x).sum().backward()

        samples = [_timed(step) * 1e3 for _ in range(repeats + 1)][1:]
        np.testing.assert_allclose(x.grad.numpy(), _tanh_expected_grad(values), rtol=1e-4, atol=1e-5)
    _report(fw.name, key, "ms", samples, elements=n)


# ----------------------------------------------------------------------------------------------------------
# 5: matmul


def bench_matmul(fw: Framework, repeats: int, n: int) -> None:
    rng = np.random.default_rng(n)
    a_np = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    b_np = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    torch = fw.torch
    if torch is None:  # numpy: c = a @ b; backward of c.sum(): ga = 1 @ b.T, gb = a.T @ 1
        a, b = a_np, b_np

        def forward():
            return a @ b

        def backward(c):
            g = np.ones_like(c)
            return g @ b.T, a.T @ g
    else:
        a = torch.tensor(a_np, requires_grad=True)
        b = torch.tensor(b_np, requires_grad=True)

        def forward():
            return a @ b

        def backward(c):
            c.sum().backward()
            return a.grad.numpy(), b.grad.numpy()

    fwd, bwd = [], []
    for r in range(repeats + 1):
        if torch is not None:
            a.grad = b.grad = None
        gc.collect()
        gc.disable()
        t0 = time.perf_counter()
        c = forward()
        t1 = time.perf_counter()
        grads = backward(c)
        t2 = time.perf_counter()
        gc.enable()
        if r == 0:  # warm-up, checked: a few rows of c, and both gradients in closed form
            c_np = c if torch is None else c.detach().numpy()
            rows = a_np[:4].astype(np.float64) @ b_np.astype(np.float64)
            np.testing.assert_allclose(c_np[:4], rows, rtol=1e-4, atol=1e-5 * n)
            ga, gb = grads
            want_ga = np.broadcast_to(b_np.astype(np.float64).sum(1), (n, n))
            want_gb = np.broadcast_to(a_np.astype(np.float64).sum(0)[:, None], (n, n))
            np.testing.assert_allclose(ga, want_ga, rtol=1e-4, atol=1e-5 * n)
            np.testing.assert_allclose(gb, want_gb, rtol=1e-4, atol=1e-5 * n)
        else:
            fwd.append(2 * n**3 / (t1 - t0) / 1e9)
            bwd.append(4 * n**3 / (t2 - t1) / 1e9)
        del c, grads
    _report(fw.name, f"matmul_fwd_{n}", "GFLOP/s", fwd, flop=2 * n**3, higher_is_better=True)
    _report(fw.name, f"matmul_bwd_{n}", "GFLOP/s", bwd, flop=4 * n**3, higher_is_better=True)


# ----------------------------------------------------------------------------------------------------------
# 6: MLP 784-256-10 SGD step


def _mlp_reference(x, w1, b1, w2, b2, target, loss: str) -> list[np.ndarray]:
    """Gradients of w1, b1, w2, b2 (float64) for an MSE loss against target, or cross-entropy on labels."""
    z1 = x @ w1.T + b1
    h = np.maximum(z1, 0)
    out = h @ w2.T + b2
    if loss == "mse":
        d_out = 2 * (out - target) / out.size
    else:
        p = np.exp(out - out.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(len(target)), target] -= 1
        d_out = p / len(target)
    d_z1 = (d_out @ w2) * (z1 > 0)
    return [d_z1.T @ x, d_z1.sum(0), d_out.T @ h, d_out.sum(0)]


def bench_mlp_sgd(fw: Framework, repeats: int, loss_name: str, steps_per_sample: int = 20) -> None:
    torch = fw.torch
    nn, F, optim = torch.nn, torch.nn.functional, torch.optim
    lr = 0.01

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(784, 256)
            self.fc2 = nn.Linear(256, 10)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))

    torch.manual_seed(0)
    model = Net()
    opt = optim.SGD(model.parameters(), lr=lr)
    rng = np.random.default_rng(6)
    x_np = rng.standard_normal((64, 784)).astype(np.float32)
    if loss_name == "mse":
        target_np = rng.standard_normal((64, 10)).astype(np.float32)
        target = torch.tensor(target_np)
        loss_fn = F.mse_loss
    else:
        target_np = rng.integers(0, 10, 64)
        target = torch.tensor(target_np)
        loss_fn = F.cross_entropy
    x = torch.tensor(x_np)
    params = [model.fc1.weight, model.fc1.bias, model.fc2.weight, model.fc2.bias]

    def step() -> None:
        opt.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        opt.step()

    # One checked step: the gradients against numpy, then the update.
    before = [p.detach().numpy().astype(np.float64) for p in params]
    opt.zero_grad()
    loss_fn(model(x), target).backward()
    grads = [p.grad.numpy().copy() for p in params]
    opt.step()
    want = _mlp_reference(x_np.astype(np.float64), *before, target_np, loss_name)
    for got, exp, old, p in zip(grads, want, before, params):
        np.testing.assert_allclose(got, exp, rtol=1e-3, atol=1e-4 * np.abs(exp).max())
        np.testing.assert_allclose(p.detach().numpy(), old - lr * got, rtol=1e-5, atol=1e-7)

    def block() -> None:
        for _ in range(steps_per_sample):
            step()

    block()  # warm-up
    samples = [_timed(block) * 1e3 / steps_per_sample for _ in range(repeats)]
    _report(fw.name, f"mlp_sgd_{loss_name}", "ms", samples, steps_per_sample=steps_per_sample)


# ----------------------------------------------------------------------------------------------------------
# issue 15: per-sample gradients


def bench_per_sample(fw: Framework, repeats: int) -> None:
    """Per-sample gradients of an MLP 32-64-10 (tanh, MSE) over a batch of 64: the torch.func recipe
    ``vmap(grad(loss), in_dims=(None, 0, 0))`` over ``functional_call``, and a Python loop of one
    backward per sample; the two are checked against each other first."""
    torch = fw.torch
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 10))
    params = {k: v.detach() for k, v in model.named_parameters()}
    rng = np.random.default_rng(15)
    x = torch.tensor(rng.standard_normal((64, 32)).astype(np.float32))
    y = torch.tensor(rng.standard_normal((64, 10)).astype(np.float32))
    func = torch.func

    def loss(p, xi, yi):
        out = func.functional_call(model, p, (xi.unsqueeze(0),))
        return ((out - yi.unsqueeze(0)) ** 2).mean()

    per_sample = func.vmap(func.grad(loss), in_dims=(None, 0, 0))

    def with_vmap():
        return per_sample(params, x, y)

    def with_loop():
        grads = {k: [] for k in params}
        for i in range(x.shape[0]):
            model.zero_grad()
            ((model(x[i : i + 1]) - y[i : i + 1]) ** 2).mean().backward()
            for k, p in model.named_parameters():
                grads[k].append(p.grad.clone())
        return {k: torch.stack(v) for k, v in grads.items()}

    got, want = with_vmap(), with_loop()
    for k in params:
        np.testing.assert_allclose(got[k].numpy(), want[k].numpy(), rtol=1e-4, atol=1e-6)
    for name, fn in (("per_sample_vmap", with_vmap), ("per_sample_loop", with_loop)):
        fn()  # warm-up
        samples = [_timed(fn) * 1e3 for _ in range(repeats)]
        _report(fw.name, name, "ms", samples)


# ----------------------------------------------------------------------------------------------------------
# issue 13: training steps of real model layers


def _time_steps(fw: Framework, name: str, step, repeats: int, steps_per_sample: int) -> None:
    step()  # warm-up (and a check that it runs)
    step()

    def block() -> None:
        for _ in range(steps_per_sample):
            step()

    samples = [_timed(block) * 1e3 / steps_per_sample for _ in range(repeats)]
    _report(fw.name, name, "ms", samples, steps_per_sample=steps_per_sample)


def bench_lenet(fw: Framework, repeats: int) -> None:
    """LeNet-5 (conv 5x5 -> pool -> conv 5x5 -> pool -> 3 linear), batch 64 of 1x28x28, SGD step."""
    torch = fw.torch
    nn, F = torch.nn, torch.nn.functional

    class LeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(x, 1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    torch.manual_seed(0)
    model = LeNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(13)
    x = torch.tensor(rng.standard_normal((64, 1, 28, 28)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 10, 64))

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    _time_steps(fw, "lenet_step", step, repeats, 5)


def bench_lstm(fw: Framework, repeats: int) -> None:
    """2-layer LSTM, batch 32, sequence 35, hidden 256 (input 256), a linear head, Adam step."""
    torch = fw.torch
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(0)
    lstm = nn.LSTM(256, 256, num_layers=2)
    head = nn.Linear(256, 256)
    params = list(lstm.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    rng = np.random.default_rng(14)
    x = torch.tensor(rng.standard_normal((35, 32, 256)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 256, 35 * 32))

    def step() -> None:
        opt.zero_grad()
        out, _ = lstm(x)
        F.cross_entropy(head(out).reshape(-1, 256), y).backward()
        opt.step()

    _time_steps(fw, "lstm_step", step, repeats, 1)


def bench_transformer(fw: Framework, repeats: int) -> None:
    """2-layer transformer encoder (d_model 256, 4 heads, feed-forward 1024), batch 16, sequence 128."""
    torch = fw.torch
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(256, 4, dim_feedforward=1024, dropout=0.1, batch_first=True)
    encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    head = nn.Linear(256, 256)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    rng = np.random.default_rng(15)
    x = torch.tensor(rng.standard_normal((16, 128, 256)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 256, 16 * 128))

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(head(encoder(x)).reshape(-1, 256), y).backward()
        opt.step()

    _time_steps(fw, "transformer_step", step, repeats, 1)


# ----------------------------------------------------------------------------------------------------------
# 7: long chains, in a fresh process


def bench_long_chain(fw: Framework, repeats: int, n_ops: int, key: str) -> None:
    torch = fw.torch
    b_value = float(np.float32(0.99999))
    a = torch.tensor([0.1], requires_grad=True)
    b = torch.tensor([b_value], requires_grad=True)
    x = torch.tensor([1.0], requires_grad=True)

    def build(n: int = n_ops):
        y = x
        for _ in range(n // 2):
            y = y * b + a
        return y

    y = build(1_000)  # warm-up: a small chain (allocator, lazily built state)
    y.backward()
    del y
    gc.collect()
    gc.disable()
    times, build_times, totals, peak, graph_mb, method = [], [], [], 0.0, 0.0, ""
    for r in range(repeats):
        a.grad = b.grad = x.grad = None
        meter = PeakMeter() if r == 0 else None
        t0 = time.perf_counter()
        y = build()
        t1 = time.perf_counter()
        if meter is not None:
            graph_mb = _rss_mb() - meter.start
        y.backward()
        t2 = time.perf_counter()
        if meter is not None:
            peak, method = meter.growth(), meter.method
            m = n_ops // 2  # y = b^m x + a (1 + b + ... + b^(m-1))
            want_x, want_a = b_value**m, (1 - b_value**m) / (1 - b_value)
            assert abs(x.grad.item() - want_x) <= 1e-3 * want_x, (x.grad.item(), want_x)
            assert abs(a.grad.item() - want_a) <= 1e-2 * want_a, (a.grad.item(), want_a)
        del y
        t3 = time.perf_counter()
        times.append(t2 - t1)
        build_times.append(t1 - t0)
        totals.append(t3 - t0)
    gc.enable()
    _report(fw.name, f"{key}_backward", "s", times, nodes=n_ops, build_s=statistics.median(build_times))
    _report(fw.name, f"{key}_total", "s", totals, nodes=n_ops)
    _report(fw.name, f"{key}_peak_mem", "MB", [peak], nodes=n_ops, graph_mb=graph_mb, method=method)
    _report(fw.name, f"{key}_bytes_per_op", "B/op", [peak * 2**20 / n_ops], nodes=n_ops, method=method)


# ----------------------------------------------------------------------------------------------------------
# 8: RSS growth over training steps, in a fresh process


def bench_train_rss(fw: Framework, windows: int, steps: int = 2_000, warmup: int = 200) -> None:
    torch = fw.torch
    nn, F, optim = torch.nn, torch.nn.functional, torch.optim
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(8)
    x_np = rng.standard_normal((512, 64)).astype(np.float32)
    labels = (x_np @ rng.standard_normal((64, 10))).argmax(1)  # learnable labels
    batches = [(torch.tensor(x_np[i : i + 32]), torch.tensor(labels[i : i + 32])) for i in range(0, 512, 32)]
    losses = []

    def run(n_steps: int, first: int) -> float:
        start = time.perf_counter()
        for i in range(first, first + n_steps):
            xb, yb = batches[i % len(batches)]
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            if i < len(batches) or i >= first + n_steps - len(batches):
                losses.append(loss.item())
        return time.perf_counter() - start

    run(warmup, 0)
    initial = float(np.mean(losses[: len(batches)]))
    growth, step_ms = [], []
    for w in range(windows):
        gc.collect()
        before = _rss_mb()
        step_ms.append(run(steps, warmup + w * steps) * 1e3 / steps)
        gc.collect()
        growth.append(_rss_mb() - before)
    final = float(np.mean(losses[-len(batches) :]))
    assert np.isfinite(final) and final < 0.5 * initial, (initial, final)
    _report(
        fw.name,
        "train_rss_growth",
        "MB",
        growth,
        steps=steps,
        warmup=warmup,
        step_ms=statistics.median(step_ms),
        loss_first_epoch=initial,
        loss_last_epoch=final,
    )


# ----------------------------------------------------------------------------------------------------------


def run_group(fw: Framework, group: str, scaled) -> None:
    if group == "forward_op":
        bench_forward_op(fw, scaled(15))
    elif group == "backward_chain":
        bench_backward_chain(fw, scaled(31))
    elif group == "micrograd_mlp":
        bench_micrograd_mlp(fw, scaled(7))
    elif group == "tanh_sum":
        bench_tanh_sum(fw, scaled(21), 1_000_000, "tanh_sum_1e6")
        bench_tanh_sum(fw, scaled(7), 10_000_000, "tanh_sum_1e7")
    elif group == "matmul":
        for n in MATMUL_SIZES:
            bench_matmul(fw, scaled(MATMUL_REPEATS[n]), n)
    elif group == "mlp_sgd":
        bench_mlp_sgd(fw, scaled(15), "mse")
        bench_mlp_sgd(fw, scaled(15), "ce")
    elif group == "chain_1e5":
        bench_long_chain(fw, scaled(4), 100_000, "chain_1e5")
    elif group == "chain_1e6":
        bench_long_chain(fw, 1, 1_000_000, "chain_1e6")
    elif group == "train_rss":
        bench_train_rss(fw, scaled(3))
    elif group == "per_sample":
        bench_per_sample(fw, scaled(9))
    elif group == "models":
        for bench in (bench_lenet, bench_lstm, bench_transformer):
            try:
                bench(fw, scaled(5))
            except Exception as exc:  # noqa: BLE001 -- a model the framework cannot build yet: one row, not the group
                print(json.dumps({"framework": fw.name, "group": "models", "workload": bench.__name__,
                                  "error": f"{type(exc).__name__}: {exc}"}), flush=True)
    else:
        raise ValueError(group)


def run_isolated(args: argparse.Namespace, group: str) -> bool:
    """Runs one group in a fresh child process, passing its JSON lines through; False if it failed."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--framework", args.framework]
    cmd += [f"--scale={args.scale}", f"--threads={args.threads}", f"--only={group}"]
    try:
        proc = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        error = f"timed out after {args.timeout:g} s"
        print(json.dumps({"framework": args.framework, "group": group, "error": error}), flush=True)
        return False
    sys.stdout.write(proc.stdout)
    sys.stdout.flush()
    if proc.returncode != 0 and '"error"' not in proc.stdout:
        error = f"exited with status {proc.returncode}"  # e.g. killed for lack of memory
        print(json.dumps({"framework": args.framework, "group": group, "error": error}), flush=True)
    return proc.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--framework", choices=["rustgrad", "torch", "numpy", "micrograd"], required=True)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplier of the number of repeats")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch.set_num_threads(n) if n > 0 (run.py limits the others through RAYON_NUM_THREADS, "
        "OPENBLAS_NUM_THREADS, ...)",
    )
    parser.add_argument("--only", default="", help="comma-separated groups to run in this process")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per fresh-process group")
    args = parser.parse_args()

    def scaled(n: int) -> int:
        return max(3, round(n * args.scale))

    INFO["python"] = sys.version.split()[0]
    fw = Framework(args.framework)
    if fw.torch is not None and args.threads > 0 and hasattr(fw.torch, "set_num_threads"):
        fw.torch.set_num_threads(args.threads)
    if fw.torch is not None and hasattr(fw.torch, "get_num_threads"):
        INFO["threads"] = fw.torch.get_num_threads()
    elif fw.name == "rustgrad" and os.environ.get("RAYON_NUM_THREADS"):
        INFO["threads"] = int(os.environ["RAYON_NUM_THREADS"])

    only = [g for g in args.only.split(",") if g]
    for g in only:
        if g not in GROUPS:
            parser.error(f"unknown group {g!r}; groups: {', '.join(GROUPS)}")
    failed = False
    for group, (frameworks, isolated) in GROUPS.items():
        if args.framework not in frameworks or (only and group not in only):
            continue
        if isolated and not only:
            failed |= not run_isolated(args, group)
            continue
        try:
            run_group(fw, group, scaled)
        except Exception as exc:  # noqa: BLE001 -- a failed check: report it (run.py marks the rows), go on
            traceback.print_exc()
            print(json.dumps({"framework": fw.name, "group": group, "error": repr(exc)[:300]}), flush=True)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
