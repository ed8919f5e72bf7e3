"""Micro-benchmarks of one framework through its Python API; one JSON line per workload.

    python benchmarks/bench_python.py --framework rustgrad|torch|numpy [--scale 0.2]

Workloads (the same as rust/rustgrad-core/examples/bench.rs):
  forward_op      c = a * b + a on 1-element float32 tensors requiring grad; us per op (2 ops / iteration)
  backward_chain  backward of a 1,000-op chain y = y * b + a; us per node (graph built outside the timing)
  tanh_sum_1e6    forward + backward of tanh(x*x + 3*x).sum() on 1e6 float32 elements; ms
numpy runs only tanh_sum_1e6, with the hand-written backward (1 - t**2) * (2x + 3).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import statistics
import sys
import time

import numpy as np

N_ELEMENTS = 1_000_000
CHAIN_OPS = 1_000
FORWARD_ITERS = 20_000
INFO: dict = {}  # framework version and threads, added to every line


def _inputs() -> np.ndarray:
    return (np.arange(N_ELEMENTS) % 1000).astype(np.float32) * np.float32(1e-3) - np.float32(0.5)


def _expected_grad(x: np.ndarray) -> np.ndarray:
    t = np.tanh(x * x + 3 * x)
    return (1 - t**2) * (2 * x + 3)


def _report(framework: str, workload: str, unit: str, samples: list[float], **extra) -> None:
    samples = sorted(samples)
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
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


def bench_forward_op(torch, name: str, repeats: int) -> None:
    a = torch.tensor([0.5], requires_grad=True)
    b = torch.tensor([1.5], requires_grad=True)

    def loop(n: int = FORWARD_ITERS) -> None:
        for _ in range(n):
            c = a * b + a
        del c

    loop(2_000)  # warm-up
    samples = [_timed(loop) * 1e6 / (2 * FORWARD_ITERS) for _ in range(repeats)]
    _report(name, "forward_op", "us/op", samples, ops_per_repeat=2 * FORWARD_ITERS)


def bench_backward_chain(torch, name: str, repeats: int) -> None:
    a = torch.tensor([0.1], requires_grad=True)
    b = torch.tensor([0.999], requires_grad=True)
    x = torch.tensor([1.0], requires_grad=True)
    samples = []
    for _ in range(repeats + 1):
        y = x
        for _ in range(CHAIN_OPS // 2):
            y = y * b + a
        a.grad = b.grad = x.grad = None
        samples.append(_timed(y.backward) * 1e6 / CHAIN_OPS)
        del y
    expect = 0.999 ** (CHAIN_OPS // 2)  # d y / d x = b ** (CHAIN_OPS / 2)
    got = float(x.grad.numpy()[0])
    assert abs(got - expect) <= 1e-4 * abs(expect), (got, expect)
    _report(name, "backward_chain", "us/node", samples[1:], nodes=CHAIN_OPS)


def bench_tanh_sum(torch, name: str, repeats: int) -> None:
    values = _inputs()
    x = torch.tensor(values, requires_grad=True)

    def step() -> None:
        x.grad = None
        torch.tanh(x * x + 3 * x).sum().backward()

    samples = [_timed(step) * 1e3 for _ in range(repeats + 1)][1:]
    np.testing.assert_allclose(x.grad.numpy(), _expected_grad(values), rtol=1e-4, atol=1e-5)
    _report(name, "tanh_sum_1e6", "ms", samples, elements=N_ELEMENTS)


def bench_tanh_sum_numpy(repeats: int) -> None:
    x = _inputs()
    out = {}

    def step() -> None:
        t = np.tanh(x * x + 3 * x)
        out["sum"] = t.sum()
        out["grad"] = (1 - t**2) * (2 * x + 3)

    samples = [_timed(step) * 1e3 for _ in range(repeats + 1)][1:]
    np.testing.assert_allclose(out["grad"], _expected_grad(x), rtol=1e-6)
    _report("numpy", "tanh_sum_1e6", "ms", samples, elements=N_ELEMENTS)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--framework", choices=["rustgrad", "torch", "numpy"], required=True)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplier of the number of repeats")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads(n) if n > 0")
    args = parser.parse_args()

    def scaled(n: int) -> int:
        return max(3, round(n * args.scale))

    INFO["python"] = sys.version.split()[0]
    if args.framework == "numpy":
        INFO["version"] = np.__version__
        bench_tanh_sum_numpy(scaled(41))
        return
    torch = importlib.import_module(args.framework)
    INFO["version"] = getattr(torch, "__version__", "?")
    if args.threads > 0 and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(args.threads)
    if hasattr(torch, "get_num_threads"):
        INFO["threads"] = torch.get_num_threads()
    bench_forward_op(torch, args.framework, scaled(15))
    bench_backward_chain(torch, args.framework, scaled(31))
    bench_tanh_sum(torch, args.framework, scaled(21))


if __name__ == "__main__":
    main()
