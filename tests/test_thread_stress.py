"""Thread-safety stress tests: many threads build and backpropagate graphs at the same time.

Every thread checks its results against closed forms (numpy). Covers independent graphs, shared
leaves (no lost gradient update), hooks and custom Functions that call back into the engine,
per-thread grad mode, and graph memory coming back to its baseline.

RUSTGRAD_STRESS_ITERS sets the iterations per thread (default 200).
"""

import gc
import os
import threading
import time
import traceback

import numpy as np
import pytest
import rustgrad as torch

F64 = torch.float64
N_THREADS = 8
ITERS = int(os.environ.get("RUSTGRAD_STRESS_ITERS", "200"))
TIMEOUT = 60.0
IS_RUSTGRAD = hasattr(torch, "_rustgrad")


def np_of(t):
    return t.detach().numpy()


def close(t, expected):
    np.testing.assert_allclose(np_of(t), expected, rtol=1e-10, atol=1e-12)


def run_threads(target, n=N_THREADS, timeout=TIMEOUT):
    """Runs target(k) in n threads released together by a barrier; fails on any exception
    or on a thread still alive after the timeout (a deadlock)."""
    start = threading.Barrier(n)
    errors = []

    def body(k):
        try:
            start.wait(timeout)
            target(k)
        except BaseException:  # noqa: BLE001 - reported below
            errors.append(f"thread {k}:\n{traceback.format_exc()}")

    threads = [threading.Thread(target=body, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in threads if t.is_alive()]
    assert not alive, f"threads still running after {timeout} s (deadlock?): {alive}"
    assert not errors, "\n".join(errors)


# ----- 1. independent graphs -----


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x  # rustgrad ops inside backward


def independent_graphs(k, iters):
    rng = np.random.default_rng(1000 + k)
    for _ in range(iters):
        xn = rng.uniform(-1, 1, (3, 4))
        wn = rng.uniform(-1, 1, (4, 2))
        bn = rng.uniform(-1, 1, 2)
        vn = rng.uniform(-1, 1, 3)
        X = torch.tensor(xn)
        W = torch.tensor(wn, requires_grad=True)
        b = torch.tensor(bn, requires_grad=True)
        accumulated = []
        b.register_post_accumulate_grad_hook(lambda p, out=accumulated: out.append(np_of(p.grad).copy()))

        h = (X @ W + b).tanh()  # matmul, broadcasting (b is (2,), X @ W is (3, 2))
        h.register_hook(lambda g: g * 2)  # doubles the gradient reaching h
        z = h * 3
        z.mul_(2)  # in place on a non-leaf: z = 6 h
        z.retain_grad()
        loss = Cube.apply(z[1:]).sum() + z[0].mean()  # views/indexing, custom Function
        loss.backward()

        hn = np.tanh(xn @ wn + bn)
        zn = 6 * hn
        dz = np.empty_like(zn)
        dz[1:] = 3 * zn[1:] ** 2
        dz[0] = 0.5
        dpre = 2 * 6 * dz * (1 - hn**2)  # hook doubles, then d(6h)/dh, then tanh'
        assert loss.item() == pytest.approx((zn[1:] ** 3).sum() + zn[0].mean(), rel=1e-12)
        close(z.grad, dz)
        close(W.grad, xn.T @ dpre)
        close(b.grad, dpre.sum(0))
        assert len(accumulated) == 1
        np.testing.assert_array_equal(accumulated[0], np_of(b.grad))

        # second derivative through create_graph=True
        v = torch.tensor(vn, requires_grad=True)
        (g,) = torch.autograd.grad(v.tanh().sum(), v, create_graph=True)
        assert g.requires_grad
        (gg,) = torch.autograd.grad(g.sum(), v)
        t = np.tanh(vn)
        close(g, 1 - t**2)
        close(gg, -2 * t * (1 - t**2))


def test_independent_graphs_in_parallel():
    run_threads(lambda k: independent_graphs(k, ITERS))
    assert torch.is_grad_enabled()


# ----- 2. shared leaves -----


def shared_inputs(k, i):
    # small integers, so every float64 sum below is exact
    return (np.arange(8 * 24).reshape(8, 24) * (k + 1) + i) % 5 - 2.0


def test_shared_leaves_no_lost_update():
    # big enough that accumulating into W.grad takes a while: a lost update would show
    wn = np.arange(24 * 48).reshape(24, 48) % 7 - 3.0
    bn = np.arange(48) % 3 - 1.0
    W = torch.tensor(wn, dtype=F64, requires_grad=True)
    b = torch.tensor(bn, dtype=F64, requires_grad=True)
    w_hook_calls = []
    w_post_calls = []
    W.register_hook(lambda g: w_hook_calls.append(1))
    W.register_post_accumulate_grad_hook(lambda p: w_post_calls.append(1))

    def worker(k):
        for i in range(ITERS):
            x = torch.tensor(shared_inputs(k, i), dtype=F64)
            y = x @ W + b
            # two paths into W: through y and through a view of W
            loss = (y * y).sum() + (k + 1) * y.sum() + (W.t()[0] * k).sum()
            loss.backward()

    run_threads(worker)

    dW = np.zeros_like(wn)
    db = np.zeros_like(bn)
    for k in range(N_THREADS):
        for i in range(ITERS):
            xn = shared_inputs(k, i)
            dy = 2 * (xn @ wn + bn) + (k + 1)
            dW += xn.T @ dy
            dW[:, 0] += k
            db += dy.sum(0)
    np.testing.assert_array_equal(np_of(W.grad), dW)
    np.testing.assert_array_equal(np_of(b.grad), db)
    # one leaf hook call and one post-accumulate call per backward pass
    assert len(w_hook_calls) == N_THREADS * ITERS
    assert len(w_post_calls) == N_THREADS * ITERS


# ----- 3. hooks and custom Functions calling back into the engine -----


class SinViaGrad(torch.autograd.Function):
    """sin, whose backward gets cos(x) from autograd.grad and runs a .backward() of its own."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            xd = x.detach().requires_grad_()
            (cos,) = torch.autograd.grad(xd.sin().sum(), xd)
            side = torch.tensor(2.0, dtype=F64, requires_grad=True)
            (side * side).backward()  # side.grad = 4
        return g * cos * side.grad / 4


def tensor_hook_with_backward(g):
    # a side graph whose own hook runs autograd.grad on a third graph
    with torch.enable_grad():
        q = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)

        def inner(gq):
            with torch.enable_grad():  # hooks run with grad mode off
                r = torch.tensor(3.0, dtype=F64, requires_grad=True)
                (dr,) = torch.autograd.grad(r * r, r)  # 6
            return gq * dr / 6

        q.register_hook(inner)
        (q * q).sum().backward()  # q.grad = [2, 4]
    return g * q.grad.sum()  # times 6


def node_prehook_with_grad(grad_outputs):
    with torch.enable_grad():
        u = torch.tensor(0.25, dtype=F64, requires_grad=True)
        (du,) = torch.autograd.grad(u * u, u)  # 0.5
    return (grad_outputs[0] * du,)


def callbacks(k, iters, lr=0.125):
    rng = np.random.default_rng(2000 + k)
    for _ in range(iters):
        xn = rng.uniform(-1, 1, 3)
        x = torch.tensor(xn, requires_grad=True)
        stepped = []

        def sgd_step(p, out=stepped):
            with torch.no_grad():
                p.sub_(p.grad * lr)
            out.append(1)

        x.register_post_accumulate_grad_hook(sgd_step)
        a = x * 2
        a.register_hook(tensor_hook_with_backward)
        s = SinViaGrad.apply(a)
        s.grad_fn.register_prehook(node_prehook_with_grad)
        seen = []
        s.grad_fn.register_hook(lambda gi, go, out=seen: out.append((np_of(gi[0]).copy(), np_of(go[0]).copy())))
        (s * s).sum().backward()

        an = 2 * xn
        sn = np.sin(an)
        # d/ds = 2 s, prehook halves it, backward gives s cos(a), tensor hook times 6, then d(2x)/dx
        dx = 2 * 6 * sn * np.cos(an)
        close(x.grad, dx)
        assert len(seen) == 1
        np.testing.assert_allclose(seen[0][1], sn, rtol=1e-10)  # post hook sees the pre-hooked grad
        np.testing.assert_allclose(seen[0][0], sn * np.cos(an), rtol=1e-10)
        assert stepped == [1]
        close(x, xn - lr * dx)


def test_reentrant_hooks_and_functions_no_deadlock():
    run_threads(lambda k: callbacks(k, ITERS))
    assert torch.is_grad_enabled()


# ----- 4. grad mode is per thread -----


MODES = {
    "record": torch.enable_grad,
    "no_grad": torch.no_grad,
    "inference_mode": torch.inference_mode,
    "set_grad_enabled": lambda: torch.set_grad_enabled(False),
}


def test_grad_mode_is_per_thread_under_load():
    in_mode = threading.Barrier(N_THREADS)
    done = threading.Barrier(N_THREADS)
    modes = list(MODES)

    def worker(k):
        mode = modes[k % len(modes)]
        x = torch.tensor([1.0, -2.0, 3.0], dtype=F64, requires_grad=True)
        recording = mode == "record"
        with MODES[mode]():
            in_mode.wait(TIMEOUT)  # every thread is now inside its own mode
            for i in range(ITERS * 5):
                assert torch.is_grad_enabled() == recording
                assert torch.is_inference_mode_enabled() == (mode == "inference_mode")
                y = (x * x * (k + 1)).sum() + i
                assert y.item() == 14.0 * (k + 1) + i
                assert y.requires_grad == recording
                assert (y.grad_fn is not None) == recording
                if mode == "inference_mode":
                    assert y.is_inference()
                if recording:
                    x.grad = None
                    y.backward()
                    assert x.grad.tolist() == [2.0 * (k + 1), -4.0 * (k + 1), 6.0 * (k + 1)]
                else:
                    with torch.enable_grad():  # nested switch back, in this thread only
                        if mode != "inference_mode":
                            (g,) = torch.autograd.grad((x * x).sum(), x)
                            assert g.tolist() == [2.0, -4.0, 6.0]
                    assert not torch.is_grad_enabled()
            done.wait(TIMEOUT)  # nobody leaves its mode before all are done
        assert torch.is_grad_enabled()
        assert not torch.is_inference_mode_enabled()

    run_threads(worker)
    assert torch.is_grad_enabled()
    assert not torch.is_inference_mode_enabled()


# ----- 5. graph memory -----


@pytest.mark.skipif(not IS_RUSTGRAD, reason="_live_nodes is rustgrad only")
def test_live_nodes_back_to_baseline():
    live_nodes = torch._rustgrad._live_nodes
    gc.collect()
    base = live_nodes()
    held = [None] * N_THREADS

    def worker(k):
        independent_graphs(k, max(1, ITERS // 4))
        callbacks(k, max(1, ITERS // 4))
        # a graph that outlives its thread
        x = torch.tensor([float(k), 1.0], dtype=F64, requires_grad=True)
        held[k] = (x, ((x * 2).tanh() * x).sum())

    run_threads(worker)
    gc.collect()
    assert live_nodes() > base
    for k, (x, y) in enumerate(held):
        y.backward()  # a graph built in another thread backpropagates from this one
        xn = np.array([float(k), 1.0])
        t = np.tanh(2 * xn)
        close(x.grad, t + 2 * xn * (1 - t**2))
    del x, y
    held.clear()
    gc.collect()
    assert live_nodes() == base
