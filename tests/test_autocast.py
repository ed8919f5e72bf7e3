"""CPU autocast (``torch.autocast('cpu')``) casts as PyTorch's CPU lists do.

Lower-precision list (``mm``, ``matmul``/``@``, ``bmm``, ``addmm``, ``baddbmm``, ``linear``): float
inputs other than float64 are cast to the region's dtype (bfloat16 by default, float16 on request)
through ``ToCopyBackward0``, whose backward gives float32 leaves float32 gradients. Float32 list (the
losses and ``prod``): float16/bfloat16 inputs are cast to float32. Other ops are untouched. The cast of
a float32 leaf requiring grad is cached within a region (one ``ToCopyBackward0`` per weight) while grad
mode is on. The state is per thread. The expected answers were recorded from PyTorch 2.15; the live
comparisons at the end skip without torch.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import rustgrad as torch
import rustgrad.nn.functional as F


def chain(t) -> list[str]:
    """The names of the graph below ``t``, depth first (``None`` for a missing edge)."""
    out: list[str] = []

    def rec(fn):
        if fn is None:
            out.append("None")
            return
        out.append(fn.name().replace("torch::autograd::", ""))
        for nxt, _ in fn.next_functions:
            rec(nxt)

    rec(t.grad_fn)
    return out


def leaves():
    torch.manual_seed(0)
    a = torch.randn(3, 4, requires_grad=True)
    b = torch.randn(4, 5, requires_grad=True)
    return a, b


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: torch.mm(a, b),
        lambda a, b: a.mm(b),
        lambda a, b: torch.matmul(a, b),
        lambda a, b: a @ b,
        lambda a, b: F.linear(a, b.t()),
    ],
)
def test_lower_precision_ops_cast_to_bfloat16(op):
    a, b = leaves()
    with torch.autocast("cpu"):
        y = op(a, b)
    assert y.dtype is torch.bfloat16
    # the same values as casting by hand (bfloat16 matmul: float32 sums, one rounding)
    assert torch.equal(y, op(a.bfloat16(), b.bfloat16()))
    y.float().sum().backward()
    assert a.grad.dtype is torch.float32 and b.grad.dtype is torch.float32
    # d(sum(a @ b))/da = ones @ b.T, computed in bfloat16 and returned as float32
    bf = b.detach().bfloat16().float().numpy()
    np.testing.assert_allclose(a.grad.numpy(), np.ones((3, 5)) @ bf.T, rtol=1e-2)


def test_mm_graph_is_pytorchs():
    a, b = leaves()
    with torch.autocast("cpu"):
        y = torch.mm(a, b)
    assert chain(y) == ["MmBackward0", "ToCopyBackward0", "AccumulateGrad", "ToCopyBackward0", "AccumulateGrad"]
    with torch.autocast("cpu"):
        y = F.linear(a, b.t(), torch.zeros(5, requires_grad=True))
    assert chain(y) == [
        "AddmmBackward0", "ToCopyBackward0", "AccumulateGrad", "ToCopyBackward0", "AccumulateGrad",
        "TBackward0", "ToCopyBackward0", "TBackward0", "AccumulateGrad",
    ]


def test_batched_and_fused_products():
    torch.manual_seed(1)
    x, y, c = torch.randn(2, 3, 4), torch.randn(2, 4, 5), torch.randn(2, 3, 5)
    m = torch.randn(3, 5)
    with torch.autocast("cpu"):
        assert torch.bmm(x, y).dtype is torch.bfloat16
        assert torch.baddbmm(c, x, y).dtype is torch.bfloat16
        assert c.baddbmm(x, y).dtype is torch.bfloat16
        assert c.clone().baddbmm_(x, y).dtype is torch.float32  # in-place: not on the list
        assert torch.addmm(m, x[0], y[0]).dtype is torch.bfloat16
        assert torch.einsum("bij,bjk->bik", x, y).dtype is torch.bfloat16  # through bmm
        assert torch.matmul(x, y[0]).dtype is torch.bfloat16
        assert F.linear(x, y[0].t(), torch.zeros(5)).dtype is torch.bfloat16
    with torch.autocast("cpu"):
        got = torch.baddbmm(c, x, y)
    assert torch.equal(got, torch.baddbmm(c.bfloat16(), x.bfloat16(), y.bfloat16()))


def test_other_dtypes_and_ops_are_left_alone():
    a, b = leaves()
    with torch.autocast("cpu"):
        assert torch.mm(a.double(), b.double()).dtype is torch.float64  # float64 is not cast
        assert torch.mm(a.half(), b).dtype is torch.bfloat16  # float16 inputs are
        assert torch.mm(torch.ones(2, 2, dtype=torch.long), torch.ones(2, 2, dtype=torch.long)).dtype is torch.int64
        assert (a * a).dtype is torch.float32
        assert a.bfloat16().softmax(-1).dtype is torch.bfloat16  # softmax is on no CPU list
        assert a.bfloat16().sum().dtype is torch.bfloat16
        with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype"):
            torch.mm(a.double(), b)


def test_float16_region():
    a, b = leaves()
    with torch.autocast("cpu", dtype=torch.float16):
        assert torch.get_autocast_dtype("cpu") is torch.float16
        y = a @ b
        assert y.dtype is torch.float16
        assert torch.mm(a.bfloat16(), b).dtype is torch.float16
        assert F.mse_loss(a.half(), a.half()).dtype is torch.float32
    assert torch.equal(y, a.half() @ b.half())


def test_float32_list_losses_and_prod():
    a, _ = leaves()
    h = a.bfloat16()
    t = torch.tensor([0, 1, 3])
    with torch.autocast("cpu"):
        losses = {
            "mse": F.mse_loss(h, a.detach()),
            "l1": F.l1_loss(h, a.detach()),
            "ce": F.cross_entropy(h, t),
            "nll": F.nll_loss(h, t),
            "bce": F.binary_cross_entropy(torch.sigmoid(h), torch.rand(3, 4)),
            "bcel": F.binary_cross_entropy_with_logits(h, torch.rand(3, 4).bfloat16()),
            "prod": h.prod(),
        }
        assert all(v.dtype is torch.float32 for v in losses.values())
        assert h.prod(dtype=torch.bfloat16).dtype is torch.bfloat16
        assert chain(h.prod(dtype=torch.bfloat16))[:3] == ["ProdBackward0", "ToCopyBackward0", "ToCopyBackward0"]
    assert chain(losses["mse"]) == ["MseLossBackward0", "ToCopyBackward0", "ToCopyBackward0", "AccumulateGrad", "None"]
    assert chain(losses["ce"])[:3] == ["NllLossBackward0", "LogSoftmaxBackward0", "ToCopyBackward0"]
    assert chain(losses["l1"])[:3] == ["MeanBackward0", "AbsBackward0", "SubBackward0"]
    np.testing.assert_allclose(losses["mse"].item(), ((h.float() - a.detach()) ** 2).mean().item(), rtol=1e-6)
    losses["ce"].backward()
    assert a.grad.dtype is torch.float32


def test_cast_cache_shares_one_node_per_weight():
    torch.manual_seed(2)
    w = torch.randn(5, 4, requires_grad=True)
    x = torch.randn(3, 4)

    def wcast(y):
        return y.grad_fn.next_functions[1][0].next_functions[0][0]

    with torch.autocast("cpu"):
        y1, y2 = F.linear(x, w), F.linear(x, w)
        assert wcast(y1) is wcast(y2)
        with torch.autocast("cpu"):  # nested regions share the cache
            y3 = F.linear(x, w)
        assert wcast(y3) is wcast(y1)
        with torch.no_grad():  # no cache under no_grad, and no graph
            assert F.linear(x, w).grad_fn is None
    with torch.autocast("cpu"):  # emptied when the outermost region exits
        assert wcast(F.linear(x, w)) is not wcast(y1)
    with torch.autocast("cpu", cache_enabled=False):
        assert wcast(F.linear(x, w)) is not wcast(F.linear(x, w))
    u = w * 1  # not a leaf: never cached
    with torch.autocast("cpu"):
        assert wcast(F.linear(x, u)) is not wcast(F.linear(x, u))


def test_regions_decorators_and_switches():
    a, b = leaves()

    @torch.autocast("cpu")
    def f():
        return a @ b

    assert f().dtype is torch.bfloat16
    assert (a @ b).dtype is torch.float32
    with torch.amp.autocast("cpu"):
        with torch.autocast("cpu", enabled=False):
            assert (a @ b).dtype is torch.float32
            assert torch.is_autocast_enabled("cpu") is False
        assert (a @ b).dtype is torch.bfloat16
        assert torch.is_autocast_enabled() is False  # 'cuda'
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with torch.cpu.amp.autocast():
            assert (a @ b).dtype is torch.bfloat16
    with pytest.warns(UserWarning, match="target dtype is not supported"):
        region = torch.autocast("cpu", dtype=torch.float32)
    with region:
        assert (a.bfloat16() @ b.bfloat16()).dtype is torch.bfloat16
    torch.set_autocast_enabled("cpu", True)
    try:
        assert (a @ b).dtype is torch.bfloat16
        torch.set_autocast_dtype("cpu", torch.float16)
        assert (a @ b).dtype is torch.float16
    finally:
        torch.set_autocast_enabled("cpu", False)
        torch.set_autocast_dtype("cpu", torch.bfloat16)
    assert (a @ b).dtype is torch.float32


def test_state_is_per_thread():
    a, b = leaves()
    seen = {}

    def other():
        seen["enabled"] = torch.is_autocast_enabled("cpu")
        seen["dtype"] = (a @ b).dtype

    with torch.autocast("cpu"):
        th = threading.Thread(target=other)
        th.start()
        th.join()
        assert (a @ b).dtype is torch.bfloat16
    assert seen == {"enabled": False, "dtype": torch.float32}


# ----- live comparisons with PyTorch -----


def _graph_report(tm):
    """dtype and graph of each listed op under an autocast region, run with the module ``tm``."""
    Fm = tm.nn.functional
    tm.manual_seed(0)
    a = tm.randn(3, 4, requires_grad=True)
    b = tm.randn(4, 5, requires_grad=True)
    bias = tm.randn(5, requires_grad=True)
    x3, y3 = tm.randn(2, 3, 4), tm.randn(2, 4, 5)
    cases = {
        "mm": lambda: tm.mm(a, b), "@": lambda: a @ b, "bmm": lambda: tm.bmm(x3, y3),
        "linear": lambda: Fm.linear(a, b.t(), bias), "linear3d": lambda: Fm.linear(x3, b.t(), bias),
        "addmm": lambda: tm.addmm(bias, a, b), "baddbmm": lambda: tm.baddbmm(tm.zeros(2, 3, 5), x3, y3),
        "mse": lambda: Fm.mse_loss(a.bfloat16(), tm.ones(4)), "ce": lambda: Fm.cross_entropy(a.bfloat16(), tm.tensor([0, 1, 3])),
        "prod": lambda: a.bfloat16().prod(1), "mul": lambda: a.bfloat16() * a,
    }
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dt in (tm.bfloat16, tm.float16):
            with tm.autocast("cpu", dtype=dt):
                for k, fn in cases.items():
                    r = fn()
                    out[(str(dt), k)] = (str(r.dtype), tuple(r.shape), chain(r), r.float().detach().numpy())
    for k in out:
        out[k] = (*out[k][:3], out[k][3].round(6).tolist())
    return out


def test_matches_pytorch():
    tm = pytest.importorskip("torch")
    ours, theirs = _graph_report(torch), _graph_report(tm)
    for k in theirs:
        assert ours[k][:2] == theirs[k][:2], k
        assert theirs[k][2] == ours[k][2], k
        np.testing.assert_allclose(ours[k][3], theirs[k][3], rtol=1e-6, atol=1e-6, err_msg=str(k))


# ----- float16/bfloat16 reductions accumulate as PyTorch's CPU kernels -----


def _bf16(values):
    """float32 values rounded to bfloat16 (round to nearest even), as float32."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


def test_half_norm_cumsum_prod_round_once_or_per_step():
    rng = np.random.default_rng(0)
    for n in (5, 8, 15, 24):
        x = torch.tensor(rng.standard_normal((3, n)).astype(np.float32)).bfloat16()
        v = x.float().numpy().astype(np.float64)
        # norm: float32 accumulation, one rounding to bfloat16 (the exact norm rounds the same here)
        np.testing.assert_array_equal(x.norm(dim=1).float().numpy(), _bf16(np.sqrt((v * v).sum(1))))
        # cumsum: float32 running sums, each output rounded once
        np.testing.assert_array_equal(x.cumsum(1).float().numpy(), _bf16(np.cumsum(v.astype(np.float32), 1)))
        # prod of a few factors: each partial product rounded to bfloat16
        expected = []
        for row in v[:, :5]:
            p = np.float32(1)
            for f in row:
                p = _bf16(np.float32(p * np.float32(f)))
            expected.append(p)
        np.testing.assert_array_equal(x[:, :5].prod(1).float().numpy(), np.array(expected, dtype=np.float32).ravel())


def test_custom_fwd_casts_inputs_and_custom_bwd_restores_the_state():
    seen = {}

    class Cast(torch.autograd.Function):
        @staticmethod
        @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)
        def forward(ctx, a, b):
            seen["fwd"] = (a.dtype, b.dtype, torch.is_autocast_enabled("cpu"))
            ctx.save_for_backward(a, b)
            return a @ b

        @staticmethod
        @torch.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            seen["bwd"] = (g.dtype, torch.is_autocast_enabled("cpu"))
            return g @ b.t(), a.t() @ g

    class Keep(torch.autograd.Function):
        @staticmethod
        @torch.amp.custom_fwd(device_type="cpu")
        def forward(ctx, a):
            return a @ a

        @staticmethod
        @torch.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            seen["keep_bwd"] = (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
            return g

    a = torch.randn(2, 2, dtype=torch.bfloat16, requires_grad=True)
    b = torch.randn(2, 2, requires_grad=True)
    with torch.autocast("cpu"):
        y = Cast.apply(a, b)
        z = Keep.apply(b)
    assert seen["fwd"] == (torch.float32, torch.float32, False)
    assert y.dtype is torch.float32 and z.dtype is torch.bfloat16
    assert [type(f).__name__ for f, _ in y.grad_fn.next_functions] == ["AccumulateGrad", "AccumulateGrad"]
    y.sum().backward()
    assert seen["bwd"] == (torch.float32, False) and a.grad.dtype is torch.bfloat16
    z.float().sum().backward()
    assert seen["keep_bwd"] == (True, torch.bfloat16)
