"""The rounding helpers the optimizers use (``rustgrad.optim.optimizer._lerp_``/``_addcmul_``) against
PyTorch 2.15's CPU kernels: ``lerp_`` with a scalar weight and ``addcmul_`` are one fused multiply-add
there (``fma(w, end - start, start)``, ``fma(value * t1, t2, x)``), in float32 and float64."""

import numpy as np
import pytest
import rustgrad as torch
from optim_cases import OPTIMIZER_CASES, correctly_rounded_sqrt, run_optimizer
from rustgrad.optim.optimizer import _addcmul_, _lerp_

# PyTorch 2.15 on x = C, t1 = A, t2 = B drawn below: addcmul_(A, B, value=0.3), lerp_(A, 0.1), lerp_(A, 0.7).
RECORDED = {
    ("float32", "addcmul"): ["-0x1.879b5ep-5", "-0x1.64a558p+1", "0x1.f8df5ap-1", "-0x1.1e2f12p-3",
                             "0x1.ffa5aep-5", "0x1.96caa4p+0", "0x1.2f3cdcp+0", "-0x1.e98284p-2"],
    ("float32", "lerp0.1"): ["0x1.469354p-1", "-0x1.e18d16p-2", "0x1.cebdecp-1", "-0x1.e48df4p-3",
                             "-0x1.7fe616p-6", "0x1.5ea348p+0", "0x1.2785cep-2", "-0x1.e95e62p-2"],
    ("float32", "lerp0.7"): ["0x1.92bfp+0", "-0x1.dc4bccp+0", "0x1.28f558p-1", "-0x1.d45b4p-2",
                             "-0x1.3d01a8p-2", "0x1.40560cp-2", "-0x1.401e0ep+0", "-0x1.417496p-2"],
    ("float64", "addcmul"): ["-0x1.879b623c6a305p-5", "-0x1.64a556727d07ep+1", "0x1.f8df5a15e5f53p-1",
                             "-0x1.1e2f11b814269p-3", "0x1.ffa5ad1fe94c3p-5", "0x1.96caa37e2a54bp+0",
                             "0x1.2f3cdb9734fbbp+0", "-0x1.e982825c37ebcp-2"],
    ("float64", "lerp0.1"): ["0x1.46935393cbe57p-1", "-0x1.e18d15167b53ep-2", "0x1.cebdeb46a534p-1",
                             "-0x1.e48df3b012ba8p-3", "-0x1.7fe614f704fb9p-6", "0x1.5ea34944d519ep+0",
                             "0x1.2785cdb4e678bp-2", "-0x1.e95e61b2020ddp-2"],
    ("float64", "lerp0.7"): ["0x1.92bf0138b83d6p+0", "-0x1.dc4bcc97e3ea7p+0", "0x1.28f5574e755fap-1",
                             "-0x1.d45b4177f702cp-2", "-0x1.3d01a84af021bp-2", "0x1.40560be4e4e45p-2",
                             "-0x1.401e0e984c8dp+0", "-0x1.417494d2fa12cp-2"],
}  # fmt: skip


def _inputs(lib, dtype, n=8, seed=3, scales=False):
    rng = np.random.default_rng(seed)
    a, b, c = rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal(n)
    if scales:  # magnitudes 1e-8 .. 1e8, so that products and sums cancel and carry
        a, b, c = (v * 10.0 ** rng.integers(-8, 8, n) for v in (a, b, c))
    dt = getattr(lib, dtype)
    return (lib.tensor(v.tolist(), dtype=dt) for v in (c, a, b))


def _ours(dtype, op, **kwargs):
    x, a, b = _inputs(torch, dtype, **kwargs)
    if op == "addcmul":
        return _addcmul_(x, a, b, value=0.3)
    return _lerp_(x, a, float(op[4:]))


@pytest.mark.parametrize("dtype, op", sorted(RECORDED))
def test_recorded_pytorch_rounding(dtype, op):
    assert _ours(dtype, op).tolist() == [float.fromhex(v) for v in RECORDED[(dtype, op)]]


def test_plain_kernels_round_twice():
    # The helpers exist because rustgrad's own lerp_/addcmul_ round each operation separately: at least
    # one of these recorded values differs from them (if this fails, the helpers can go).
    x, a, b = _inputs(torch, "float32")
    plain = x.clone().addcmul_(a, b, value=0.3).tolist()
    assert plain != [float.fromhex(v) for v in RECORDED[("float32", "addcmul")]]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", ["addcmul", "lerp0.1", "lerp0.7", "lerp0.5", "lerp-0.3"])
def test_live_against_pytorch_kernels(dtype, op):
    real = pytest.importorskip("torch")
    if real is torch:
        pytest.skip("rustgrad is installed as torch")
    ours = _ours(dtype, op, n=100_000, scales=True).numpy()
    x, a, b = _inputs(real, dtype, n=100_000, scales=True)
    theirs = (x.addcmul_(a, b, value=0.3) if op == "addcmul" else x.lerp_(a, float(op[4:]))).numpy()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", sorted(OPTIMIZER_CASES))
def test_float64_optimizers_live_against_pytorch(name):
    real = pytest.importorskip("torch")
    if real is torch:
        pytest.skip("rustgrad is installed as torch")
    cls_name, kwargs = OPTIMIZER_CASES[name]
    ours, _ = run_optimizer(torch, cls_name, kwargs, dtype="float64")
    with correctly_rounded_sqrt(real):
        theirs, _ = run_optimizer(real, cls_name, kwargs, is_torch=True, dtype="float64")
    assert ours == theirs
