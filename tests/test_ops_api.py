"""The tensor API of issue 12, item 3 (flip/roll/tril/triu/diagonal family/trace/outer/tile/meshgrid,
sort/topk/kthvalue/median/mode, cumprod/cummax/cummin, amax/amin/aminmax, new_* factories, isclose,
count_nonzero...): an op table in the style of ``test_op_table.py`` (forward against numpy,
``gradcheck`` and ``gradgradcheck`` in float64, PyTorch's ``grad_fn`` name), closed-form gradients at
ties, dtype rules, error messages, and (when PyTorch is installed) the same calls under both.

The file runs unchanged with ``sys.modules["rustgrad"] = torch`` to validate the expectations.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Callable, NamedTuple

import numpy as np
import pytest
import rustgrad
from op_rows import as_tuple, grad_fn_name, leaves


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def distinct(*shape):
    """A permutation of values at least 0.27 apart: no ties for sort/max/median."""

    def draw(rng):
        n = int(np.prod(shape, dtype=np.int64))
        values = (np.arange(n) - n / 2.0) * 0.37 + rng.uniform(-0.05, 0.05, size=n)
        return rng.permutation(values).reshape(shape)

    return draw


def nonzero(*shape):
    return lambda rng: rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 1.5, size=shape)


def with_zero(*shape):
    """Values in [0.5, 1.5] with one zero: cumprod's gradient through a zero."""

    def draw(rng):
        a = rng.uniform(0.5, 1.5, size=shape)
        a.reshape(-1)[a.size // 2] = 0.0
        return a

    return draw


class Row(NamedTuple):
    name: str
    fn: Callable
    ref: Callable
    inputs: Sequence[Callable]
    grad_fn: str | None
    gradgrad: bool = True


ROWS: list[Row] = []


def row(name, fn, ref, inputs, grad_fn, **kw):
    ROWS.append(Row(name, fn, ref, inputs, grad_fn, **kw))


def np_roll(a, shifts, dims=None):
    return np.roll(a, shifts, dims)


def np_cumextreme(a, axis, fn):
    return fn.accumulate(a, axis=axis)


def np_lower_median(a, axis=None, keepdims=False):
    if axis is None:
        s = np.sort(a.reshape(-1))
        return s[(s.size - 1) // 2]
    s = np.sort(a, axis=axis)
    out = np.take(s, [(a.shape[axis] - 1) // 2], axis=axis)
    return out if keepdims else np.squeeze(out, axis)


def np_diag_embed(a, offset=0):
    n = a.shape[-1] + abs(offset)
    out = np.zeros(a.shape[:-1] + (n, n))
    for idx in np.ndindex(*a.shape[:-1]):
        out[idx] = np.diag(a[idx], offset)
    return out


# ----------------------------------------------------------------------------- the table

row("flip_0", lambda x: x.flip(0), lambda a: np.flip(a, 0), [normal(3, 4)], "FlipBackward0")
row("flip_01", lambda x: rustgrad.flip(x, [0, 1]), lambda a: np.flip(a, (0, 1)), [normal(2, 3, 2)], "FlipBackward0")
row("flip_0d", lambda x: x.flip(0), lambda a: a.copy(), [normal()], "FlipBackward0")
row("fliplr", lambda x: x.fliplr(), np.fliplr, [normal(3, 4)], "FlipBackward0")
row("flipud", lambda x: rustgrad.flipud(x), np.flipud, [normal(3, 4)], "FlipBackward0")
row("roll_flat", lambda x: x.roll(5), lambda a: np.roll(a, 5), [normal(3, 4)], "RollBackward0")
row("roll_dims", lambda x: rustgrad.roll(x, (1, -2), (0, 1)), lambda a: np.roll(a, (1, -2), (0, 1)),
    [normal(3, 4)], "RollBackward0")
row("roll_same_dim", lambda x: x.roll((1, 1), (1, 1)), lambda a: np.roll(a, 2, 1), [normal(2, 5)], "RollBackward0")
row("tril", lambda x: x.tril(), np.tril, [normal(3, 4)], "TrilBackward0")
row("tril_k", lambda x: rustgrad.tril(x, diagonal=-1), lambda a: np.tril(a, -1), [normal(2, 4, 3)], "TrilBackward0")
row("triu", lambda x: x.triu(), np.triu, [normal(4, 3)], "TriuBackward0")
row("triu_k", lambda x: rustgrad.triu(x, 2), lambda a: np.triu(a, 2), [normal(3, 5)], "TriuBackward0")
row("diagonal", lambda x: x.diagonal(), lambda a: np.diagonal(a).copy(), [normal(3, 4)], "DiagonalBackward0")
row("diagonal_off", lambda x: x.diagonal(1), lambda a: np.diagonal(a, 1).copy(), [normal(3, 4)], "DiagonalBackward0")
row("diagonal_neg", lambda x: rustgrad.diagonal(x, -1, 2, 0), lambda a: np.diagonal(a, -1, 2, 0).copy(),
    [normal(3, 2, 4)], "DiagonalBackward0")
row("diag_matrix", lambda x: rustgrad.diag(x, 1), lambda a: np.diag(a, 1).copy(), [normal(3, 4)],
    "DiagonalBackward0_copy")
row("diag_vector", lambda x: rustgrad.diag(x), np.diag, [normal(3)], "DiagEmbedBackward0")
row("diag_vector_k", lambda x: rustgrad.diag(x, -2), lambda a: np.diag(a, -2), [normal(3)], "DiagEmbedBackward0")
row("diag_embed", lambda x: rustgrad.diag_embed(x), np_diag_embed, [normal(2, 3)], "DiagEmbedBackward0")
row("diag_embed_k", lambda x: x.diag_embed(1), lambda a: np_diag_embed(a, 1), [normal(2, 3)], "DiagEmbedBackward0")
row("trace", lambda x: x.trace(), np.trace, [normal(3, 4)], "TraceBackward0")
row("outer", lambda x, y: rustgrad.outer(x, y), np.outer, [normal(3), normal(4)], "MulBackward0")
row("tile", lambda x: x.tile(2), lambda a: np.tile(a, 2), [normal(2, 3)], "RepeatBackward0")
row("tile_more", lambda x: rustgrad.tile(x, (2, 1, 2)), lambda a: np.tile(a, (2, 1, 2)), [normal(2, 3)],
    "RepeatBackward0")
row("meshgrid_ij", lambda x, y: rustgrad.meshgrid(x, y, indexing="ij"),
    lambda a, b: tuple(np.meshgrid(a, b, indexing="ij")), [normal(3), normal(4)], "ExpandBackward0")
row("meshgrid_xy", lambda x, y: rustgrad.meshgrid(x, y, indexing="xy"),
    lambda a, b: tuple(np.meshgrid(a, b, indexing="xy")), [normal(3), normal(4)], "ExpandBackward0")
row("sort", lambda x: x.sort().values, lambda a: np.sort(a, -1), [distinct(3, 4)], "SortBackward0")
row("sort_desc_dim0", lambda x: rustgrad.sort(x, 0, descending=True)[0], lambda a: -np.sort(-a, 0),
    [distinct(3, 4)], "SortBackward0")
row("sort_stable", lambda x: x.sort(stable=True).values, lambda a: np.sort(a, -1), [distinct(5)], "SortBackward1")
row("topk", lambda x: x.topk(2).values, lambda a: -np.sort(-a, -1)[:, :2], [distinct(3, 4)], "TopkBackward0")
row("topk_smallest", lambda x: rustgrad.topk(x, 2, dim=0, largest=False)[0], lambda a: np.sort(a, 0)[:2],
    [distinct(3, 4)], "TopkBackward0")
row("kthvalue", lambda x: x.kthvalue(2).values, lambda a: np.sort(a, -1)[:, 1], [distinct(3, 4)],
    "KthvalueBackward0")
row("kthvalue_keepdim", lambda x: rustgrad.kthvalue(x, 3, 0, keepdim=True)[0], lambda a: np.sort(a, 0)[2:3],
    [distinct(3, 4)], "KthvalueBackward0")
row("median_all", lambda x: x.median(), np_lower_median, [distinct(3, 4)], "MedianBackward0")
row("median_dim", lambda x: x.median(1).values, lambda a: np_lower_median(a, 1), [distinct(3, 4)],
    "MedianBackward1")
row("median_keepdim", lambda x: rustgrad.median(x, 0, keepdim=True)[0],
    lambda a: np_lower_median(a, 0, keepdims=True), [distinct(4, 3)], "MedianBackward1")
row("mode", lambda x: x.mode().values, lambda a: np.min(a, -1), [distinct(3, 4)], "ModeBackward0")
row("cumprod", lambda x: x.cumprod(1), lambda a: np.cumprod(a, 1), [nonzero(3, 4)], "CumprodBackward0")
row("cumprod_dim0", lambda x: rustgrad.cumprod(x, dim=0), lambda a: np.cumprod(a, 0), [nonzero(3, 2)],
    "CumprodBackward0")
row("cumprod_zero", lambda x: x.cumprod(-1), lambda a: np.cumprod(a, -1), [with_zero(2, 5)], "CumprodBackward0")
row("cummax", lambda x: x.cummax(1).values, lambda a: np.maximum.accumulate(a, 1), [distinct(3, 4)],
    "CummaxBackward0")
row("cummin", lambda x: rustgrad.cummin(x, 0)[0], lambda a: np.minimum.accumulate(a, 0), [distinct(3, 4)],
    "CumminBackward0")
row("amax_all", lambda x: x.amax(), np.max, [distinct(3, 4)], "AmaxBackward0")
row("amax_dim", lambda x: rustgrad.amax(x, 1), lambda a: np.max(a, 1), [distinct(3, 4)], "AmaxBackward0")
row("amax_dims_keepdim", lambda x: x.amax((0, 2), keepdim=True), lambda a: np.max(a, (0, 2), keepdims=True),
    [distinct(2, 3, 2)], "AmaxBackward0")
row("amin_dim", lambda x: x.amin(-1), lambda a: np.min(a, -1), [distinct(3, 4)], "AminBackward0")
row("aminmax_all", lambda x: tuple(x.aminmax()), lambda a: (np.min(a), np.max(a)), [distinct(3, 4)],
    "AminmaxBackward0")
row("aminmax_dim", lambda x: tuple(rustgrad.aminmax(x, dim=0, keepdim=True)),
    lambda a: (np.min(a, 0, keepdims=True), np.max(a, 0, keepdims=True)), [distinct(3, 4)], "AminmaxBackward0")

row("fmod_scalar", lambda x: x.fmod(1.5), lambda a: np.fmod(a, 1.5), [normal(3, 4)], "FmodBackward0")
row("fmod_tensor", lambda x, y: rustgrad.fmod(x, y), np.fmod, [normal(3, 4), nonzero(4)], "FmodBackward1")
row("remainder_scalar", lambda x: x.remainder(-1.5), lambda a: np.remainder(a, -1.5), [normal(3, 4)],
    "RemainderBackward0")
row("remainder_tensor", lambda x, y: rustgrad.remainder(x, y), np.remainder, [normal(3, 4), nonzero(3, 1)],
    "RemainderBackward1")
row("mod_operator", lambda x: x % 0.7, lambda a: np.remainder(a, 0.7), [normal(5)], "RemainderBackward0")
row("nan_to_num", lambda x: x.nan_to_num(), lambda a: a.copy(), [normal(3, 4)], "NanToNumBackward0")
row("lerp_fn", lambda x, y: rustgrad.lerp(x, y, 0.3), lambda a, b: a + 0.3 * (b - a), [normal(3), normal(3)],
    "LerpBackward0")
row("addcmul_fn", lambda x, y, z: rustgrad.addcmul(x, y, z, value=0.5), lambda a, b, c: a + 0.5 * b * c,
    [normal(3), normal(3), normal(3)], "AddcmulBackward0")
row("addcdiv_fn", lambda x, y, z: rustgrad.addcdiv(x, y, z, value=2), lambda a, b, c: a + 2 * b / c,
    [normal(3), normal(3), nonzero(3)], "AddcdivBackward0")
row("addmv", lambda x, m, v: rustgrad.addmv(x, m, v, beta=0.5, alpha=2), lambda a, m, v: 0.5 * a + 2 * m @ v,
    [normal(3), normal(3, 4), normal(4)], "AddmvBackward0")
row("addmv_broadcast", lambda x, m, v: x.addmv(m, v), lambda a, m, v: a + m @ v, [normal(1), normal(3, 4), normal(4)],
    "AddmvBackward0")
row("addr", lambda x, u, v: rustgrad.addr(x, u, v, beta=2, alpha=0.5), lambda a, u, v: 2 * a + 0.5 * np.outer(u, v),
    [normal(3, 4), normal(3), normal(4)], "AddrBackward0")
row("baddbmm", lambda x, a, b: rustgrad.baddbmm(x, a, b, alpha=0.5), lambda x, a, b: x + 0.5 * a @ b,
    [normal(2, 3, 2), normal(2, 3, 4), normal(2, 4, 2)], "BaddbmmBackward0")
row("einsum_mm", lambda x, y: rustgrad.einsum("ij,jk->ik", x, y), lambda a, b: a @ b, [normal(3, 4), normal(4, 2)],
    "ViewBackward0")
row("einsum_bmm", lambda x, y: rustgrad.einsum("bij,bjk->bik", x, y), lambda a, b: a @ b,
    [normal(2, 3, 4), normal(2, 4, 2)], "ViewBackward0")
row("einsum_outer", lambda x, y: rustgrad.einsum("i,j->ij", x, y), np.outer, [normal(3), normal(4)], "MulBackward0")
row("einsum_trace", lambda x: rustgrad.einsum("ii", x), np.trace, [normal(3, 3)], "SumBackward1")
row("einsum_diag", lambda x: rustgrad.einsum("ii->i", x), lambda a: np.diagonal(a).copy(), [normal(3, 3)],
    "PermuteBackward0")
row("einsum_transpose", lambda x: rustgrad.einsum("ij->ji", x), lambda a: a.T.copy(), [normal(3, 4)],
    "PermuteBackward0")
row("einsum_sum", lambda x: rustgrad.einsum("ij->j", x), lambda a: a.sum(0), [normal(3, 4)], "SumBackward1")
row("einsum_three", lambda x, y, z: rustgrad.einsum("ij,jk,kl->il", x, y, z), lambda a, b, c: a @ b @ c,
    [normal(2, 3), normal(3, 4), normal(4, 2)], "ViewBackward0")
row("einsum_ellipsis", lambda x, y: rustgrad.einsum("...j,j->...", x, y), lambda a, b: a @ b,
    [normal(2, 3, 4), normal(4)], "ViewBackward0")
row("einsum_attention", lambda q, k: rustgrad.einsum("bhqd,bhkd->bhqk", q, k),
    lambda a, b: np.einsum("bhqd,bhkd->bhqk", a, b), [normal(1, 2, 3, 4), normal(1, 2, 2, 4)], "ViewBackward0")

IDS = [r.name for r in ROWS]
assert len(set(IDS)) == len(IDS)


def _draw(r, salt=0):
    rng = np.random.default_rng(zlib.crc32(f"{r.name}#{salt}".encode()))
    return [np.asarray(gen(rng), dtype=np.float64) for gen in r.inputs]


@pytest.mark.parametrize("r", ROWS, ids=IDS)
def test_forward_against_numpy(r):
    arrays = _draw(r)
    outs = as_tuple(r.fn(*leaves(arrays)))
    expected = as_tuple(r.ref(*[a.copy() for a in arrays]))
    assert len(outs) == len(expected)
    for out, exp in zip(outs, expected):
        exp = np.asarray(exp)
        assert tuple(out.shape) == exp.shape
        assert out.dtype == rustgrad.float64 and out.requires_grad
        np.testing.assert_allclose(out.detach().numpy(), exp, rtol=1e-10, atol=1e-12)
        assert grad_fn_name(out) == r.grad_fn


@pytest.mark.parametrize("r", ROWS, ids=IDS)
def test_gradcheck(r):
    assert rustgrad.autograd.gradcheck(r.fn, tuple(leaves(_draw(r, 1))))


@pytest.mark.parametrize("r", [r for r in ROWS if r.gradgrad], ids=[r.name for r in ROWS if r.gradgrad])
def test_gradgradcheck(r):
    assert rustgrad.autograd.gradgradcheck(r.fn, tuple(leaves(_draw(r, 2))))


# ----------------------------------------------------------------------------- closed forms


def _grad(fn, values):
    x = rustgrad.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)
    fn(x).sum().backward()
    return x.grad.numpy()


def test_ties_share_the_gradient_of_amax_and_median():
    # amax/amin/median(): the gradient is split evenly among the elements equal to the result.
    np.testing.assert_allclose(_grad(lambda x: x.amax(), [1.0, 3.0, 3.0, 2.0]), [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(_grad(lambda x: x.amin(1), [[1.0, 1.0, 2.0], [0.0, 5.0, 0.0]]),
                               [[0.5, 0.5, 0], [0.5, 0, 0.5]])
    np.testing.assert_allclose(_grad(lambda x: x.median(), [2.0, 1.0, 2.0, 3.0, 2.0]), [1 / 3, 0, 1 / 3, 0, 1 / 3])
    # the ones selecting an index send it all there
    np.testing.assert_allclose(_grad(lambda x: x.median(0).values, [2.0, 1.0, 2.0, 3.0, 2.0]), [0, 0, 1, 0, 0])


def test_cumprod_gradient_through_zero_closed_form():
    # y = (a, ab, abc): dy/db summed = a + ac, with b = 0 the naive out/x formula divides by 0
    a, b, c = 2.0, 0.0, 3.0
    np.testing.assert_allclose(_grad(lambda x: x.cumprod(0), [a, b, c]), [1 + b + b * c, a + a * c, a * b])


def test_cummax_ties_take_the_last_index():
    v, i = rustgrad.tensor([1.0, 3, 3, 1, 4, 4]).cummax(0)
    assert i.tolist() == [0, 1, 2, 2, 4, 5]
    _, i = rustgrad.tensor([3.0, 1, 1]).cummin(0)
    assert i.tolist() == [0, 1, 2]
    # a NaN, once seen, stays
    v, i = rustgrad.tensor([1.0, float("nan"), 3]).cummax(0)
    assert np.isnan(v[1:].numpy()).all() and i.tolist() == [0, 1, 1]


def test_sort_is_stable_with_nan_last():
    _, i = rustgrad.tensor([1.0, float("nan"), 3, 2, 1]).sort()
    assert i.tolist() == [0, 4, 3, 2, 1]
    _, i = rustgrad.tensor([1.0, float("nan"), 3, 2, 1]).sort(descending=True)
    assert i.tolist() == [1, 2, 3, 0, 4]
    assert rustgrad.tensor([3, 1, 2]).argsort().tolist() == [1, 2, 0]


def test_median_and_mode_pick_like_pytorch():
    assert rustgrad.tensor([1.0, 2, 2, 3]).median(0).indices.item() == 1
    m = rustgrad.tensor([1.0, 3, 3, 1, 2]).mode()
    assert (m.values.item(), m.indices.item()) == (1.0, 3)
    assert np.isnan(rustgrad.tensor([1.0, float("nan"), 3]).median().item())


def test_named_tuples():
    x = rustgrad.tensor([[3.0, 1.0], [2.0, 5.0]])
    for name, r in [("sort", x.sort()), ("topk", x.topk(1)), ("kthvalue", x.kthvalue(1)), ("median", x.median(0)),
                    ("mode", x.mode()), ("cummax", x.cummax(0)), ("cummin", x.cummin(0))]:
        assert type(r).__name__ == name and type(r).__module__ == "torch.return_types"
        assert r.values is r[0] and r.indices is r[1]
        assert repr(r).startswith(f"torch.return_types.{name}(\nvalues=")
    mm = x.aminmax()
    assert type(mm).__name__ == "aminmax" and mm.min.item() == 1.0 and mm.max.item() == 5.0


def test_integer_and_bool_inputs_keep_dtypes():
    i = rustgrad.tensor([[3, 1, 2], [1, 1, 0]])
    assert i.flip(0).dtype == rustgrad.int64 and i.tril().tolist() == [[3, 0, 0], [1, 1, 0]]
    assert i.sort().values.tolist() == [[1, 2, 3], [0, 1, 1]]
    assert i.cumprod(1).tolist() == [[3, 3, 6], [1, 1, 0]]
    assert rustgrad.tensor([True, True, False]).cumprod(0).dtype == rustgrad.int64
    assert i.amax(1).tolist() == [3, 1] and i.trace().item() == 4 and i.trace().dtype == rustgrad.int64
    assert rustgrad.tensor([True, False]).amax().dtype == rustgrad.bool
    assert i.count_nonzero().item() == 5 and i.count_nonzero(0).tolist() == [2, 2, 1]


def test_new_factories_take_the_dtype_of_self():
    x = rustgrad.zeros(2, dtype=rustgrad.float64)
    assert x.new_zeros(2, 3).shape == (2, 3) and x.new_zeros(2, 3).dtype == rustgrad.float64
    assert x.new_ones((2,)).tolist() == [1.0, 1.0]
    assert x.new_full((2,), 7).tolist() == [7.0, 7.0] and x.new_full((2,), 7).dtype == rustgrad.float64
    assert x.new_empty(0).shape == (0,)
    assert x.new_tensor([1, 2]).dtype == rustgrad.float64
    assert x.new_zeros(1, dtype=rustgrad.int64).dtype == rustgrad.int64
    assert x.new_ones(2, requires_grad=True).requires_grad


def test_diagonal_is_a_view():
    x = rustgrad.zeros(3, 3)
    d = x.diagonal()
    d.add_(1)
    assert x.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    x = rustgrad.ones(3, 3, requires_grad=True).clone()
    x.diagonal().mul_(2)
    assert x.grad_fn is not None


def test_tril_in_place():
    x = rustgrad.ones(3, 3)
    assert x.tril_() is x and x.tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    x = rustgrad.ones(2, 3)
    x.triu_(1)
    assert x.tolist() == [[0, 1, 1], [0, 0, 1]]


def test_isclose():
    a = rustgrad.tensor([1.0, float("nan"), float("inf"), 2.0])
    b = rustgrad.tensor([1.0 + 1e-9, float("nan"), float("inf"), 2.1])
    assert rustgrad.isclose(a, b).tolist() == [True, False, True, False]
    assert a.isclose(b, equal_nan=True).tolist() == [True, True, True, False]


def test_modulo_rules():
    i = rustgrad.tensor([5, -5, 7])
    assert i.fmod(3).tolist() == [2, -2, 1] and i.remainder(3).tolist() == [2, 1, 1]
    assert (i % -3).tolist() == [-1, -2, -2] and (-7 % rustgrad.tensor([3, -3])).tolist() == [2, -1]
    assert i.remainder(2.5).dtype == rustgrad.float32
    f = rustgrad.tensor([5.0, -5.0])
    assert np.isnan(f.fmod(0).numpy()).all() and f.remainder(float("inf")).tolist() == [5.0, float("inf")]
    y = rustgrad.tensor([5.5, -1.0])
    y %= 2
    assert y.tolist() == [1.5, 1.0]
    y.fmod_(1.0)
    assert y.tolist() == [0.5, 0.0]
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        i.fmod(0)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        i.clone().fmod_(2.5)


def test_nan_to_num_values():
    x = rustgrad.tensor([float("nan"), float("inf"), -float("inf"), 1.0])
    assert x.nan_to_num().tolist() == [0.0, float(np.finfo(np.float32).max), float(np.finfo(np.float32).min), 1.0]
    assert rustgrad.nan_to_num(x.double(), nan=1.0, posinf=2.0, neginf=-3.0).tolist() == [1.0, 2.0, -3.0, 1.0]
    x.nan_to_num_(0.5)
    assert x.tolist()[0] == 0.5
    # d/dx is 1 at finite values, 0 at replaced ones
    w = rustgrad.tensor([float("inf"), 2.0], requires_grad=True)
    w.nan_to_num().sum().backward()
    assert w.grad.tolist() == [0.0, 1.0]


def test_clip_in_place_and_fused_in_place():
    x = rustgrad.tensor([-2.0, 0.5, 3.0])
    assert x.clip_(-1, 1) is x and x.tolist() == [-1.0, 0.5, 1.0]
    x.clip_(min=0)
    assert x.tolist() == [0.0, 0.5, 1.0]
    v = rustgrad.zeros(2, dtype=rustgrad.float64)
    v.addmv_(rustgrad.ones(2, 3, dtype=rustgrad.float64), rustgrad.ones(3, dtype=rustgrad.float64))
    assert v.tolist() == [3.0, 3.0]
    # beta=0 ignores the input's values, NaN included
    nan = rustgrad.full((2,), float("nan"), dtype=rustgrad.float64)
    out = rustgrad.addmv(nan, rustgrad.ones(2, 3, dtype=rustgrad.float64), rustgrad.ones(3, dtype=rustgrad.float64),
                         beta=0)
    assert out.tolist() == [3.0, 3.0]


def test_searchsorted_bucketize_histc_unique():
    seq = rustgrad.tensor([1, 3, 5, 7, 9])
    vals = rustgrad.tensor([[3, 6, 9], [3, 6, 9]])
    assert rustgrad.searchsorted(seq, vals).tolist() == [[1, 3, 4], [1, 3, 4]]
    assert rustgrad.searchsorted(seq, vals, right=True).tolist() == [[2, 3, 5], [2, 3, 5]]
    assert rustgrad.searchsorted(seq, vals, side="right").tolist() == [[2, 3, 5], [2, 3, 5]]
    rows = rustgrad.tensor([[1, 3, 5, 7, 9], [2, 4, 6, 8, 10]])
    assert rustgrad.searchsorted(rows, vals).tolist() == [[1, 3, 4], [1, 2, 4]]
    s = rustgrad.searchsorted(seq, 6)
    assert s.shape == () and s.item() == 3
    assert rustgrad.bucketize(vals, seq).tolist() == [[1, 3, 4], [1, 3, 4]]
    assert rustgrad.histc(rustgrad.tensor([1.0, 2, 1]), bins=4, min=0, max=3).tolist() == [0.0, 2.0, 1.0, 0.0]
    assert rustgrad.histc(rustgrad.tensor([0.0, 3.0, 3.5, -1]), bins=3, min=0, max=3).tolist() == [1.0, 0.0, 1.0]
    assert rustgrad.tensor([2.0, 2.0]).histc(3).tolist() == [0.0, 2.0, 0.0]
    u, inv, cnt = rustgrad.unique(rustgrad.tensor([3, 1, 2, 1]), return_inverse=True, return_counts=True)
    assert (u.tolist(), inv.tolist(), cnt.tolist()) == ([1, 2, 3], [2, 0, 1, 0], [2, 1, 1])
    assert rustgrad.tensor([[3, 1], [1, 3]]).unique(return_inverse=True)[1].tolist() == [[1, 0], [0, 1]]
    u, inv = rustgrad.unique(rustgrad.tensor([[1, 2], [1, 2], [0, 5]]), dim=0, return_inverse=True)
    assert u.tolist() == [[0, 5], [1, 2]] and inv.tolist() == [1, 1, 0]


ERRORS = [
    (lambda: rustgrad.zeros(2).flip(), TypeError, 'flip() missing 1 required positional arguments: "dims"'),
    (lambda: rustgrad.tensor([[True]]).trace(), NotImplementedError, "\"trace\" not implemented for 'Bool'"),
    (lambda: rustgrad.tensor([True]).topk(1), NotImplementedError, "topk does not support bool dtypes on CPU"),
    (lambda: rustgrad.tensor([True]).kthvalue(1), NotImplementedError, "\"kthvalue_cpu\" not implemented for 'Bool'"),
    (lambda: rustgrad.tensor([True]).median(), NotImplementedError, "\"median_cpu\" not implemented for 'Bool'"),
    (lambda: rustgrad.tensor([True]).median(0), NotImplementedError, "\"median_out\" not implemented for 'Bool'"),
    (lambda: rustgrad.tensor(3.0).roll(1, 0), IndexError, "Dimension specified as 0 but tensor has no dimensions"),
    (lambda: rustgrad.zeros(2, 0).kthvalue(3), IndexError, "kthvalue(): Expected reduction dim 1 to have non-zero size."),
    (lambda: rustgrad.addmv(rustgrad.zeros(3), rustgrad.zeros(3, 4), rustgrad.zeros(3)), RuntimeError,
     "size mismatch, got input (3), mat (3x4), vec (3)"),
    (lambda: rustgrad.addmv(rustgrad.zeros(3), rustgrad.zeros(3, 4, dtype=rustgrad.float64),
                            rustgrad.zeros(4, dtype=rustgrad.float64)), RuntimeError,
     "addmv input tensors must have the same dtype, but got Float, Double, and Double"),
    (lambda: rustgrad.addr(rustgrad.zeros(3, 4), rustgrad.zeros(1, 3), rustgrad.zeros(4)), RuntimeError,
     "addr: Expected 1-D argument vec1, but got 2-D"),
    (lambda: rustgrad.baddbmm(rustgrad.zeros(3, 3), rustgrad.zeros(1, 3, 4, dtype=rustgrad.float64),
                              rustgrad.zeros(1, 4, 3, dtype=rustgrad.float64)), RuntimeError,
     "Input dtypes must be the same, got: input float, batch1: double, batch2: double"),
    (lambda: rustgrad.tensor([True]).remainder(rustgrad.tensor([True])), NotImplementedError,
     "\"remainder_cpu\" not implemented for 'Bool'"),
    (lambda: rustgrad.histc(rustgrad.tensor([1, 2]), bins=4), NotImplementedError,
     "\"histogram_cpu\" not implemented for 'Long'"),
    (lambda: rustgrad.histc(rustgrad.zeros(2), bins=3, min=2, max=1), RuntimeError,
     "torch.histc: max must be larger than min"),
    (lambda: rustgrad.bucketize(rustgrad.zeros(2), rustgrad.zeros(1, 2)), RuntimeError,
     "boundaries tensor must be 1 dimension, but got dim(2)"),
    (lambda: rustgrad.einsum("ij,jk->ik", rustgrad.zeros(2, 2)), RuntimeError,
     "einsum(): fewer operands were provided than specified in the equation"),
    (lambda: rustgrad.einsum("ijk->", rustgrad.zeros(2, 2)), RuntimeError,
     ("einsum(): the number of subscripts in the equation (3) does not match the number of dimensions (2) "
      "for operand 0 and no ellipsis was given")),
    (lambda: rustgrad.zeros(3, 4).flip(0, 0), RuntimeError, "dim 0 appears multiple times in the list of dims"),
    (lambda: rustgrad.zeros(3, 4).flip(2), IndexError, "Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    (lambda: rustgrad.zeros(3, 4).roll(1, (0, 1)), RuntimeError, "shifts and dimensions must align. shifts: 1, dims:2"),
    (lambda: rustgrad.zeros(3).tril(), RuntimeError, "tril: input tensor must have at least 2 dimensions"),
    (lambda: rustgrad.zeros(3, 4).diagonal(0, 0, 0), RuntimeError, "diagonal dimensions cannot be identical 0, 0"),
    (lambda: rustgrad.zeros(3).trace(), RuntimeError, "trace: expected a matrix, but got tensor with dim 1"),
    (lambda: rustgrad.zeros(2, 2, 2).diag(), RuntimeError, "diag(): Supports 1D or 2D tensors. Got 3D"),
    (lambda: rustgrad.zeros(3, 4).topk(5), RuntimeError, "selected index k out of range"),
    (lambda: rustgrad.zeros(3, 4).kthvalue(5), RuntimeError, "kthvalue(): selected number k out of range for dimension 1"),
    (lambda: rustgrad.zeros(0, 3).amax(0), IndexError, "amax(): Expected reduction dim 0 to have non-zero size."),
    (lambda: rustgrad.zeros(0, 2).median(0), IndexError, "median(): Expected reduction dim 0 to have non-zero size."),
    (lambda: rustgrad.zeros(0).aminmax(), RuntimeError,
     "aminmax(): cannot compute aminmax over an empty dimension as the operation has no identity."),
    (lambda: rustgrad.zeros(3, 4).amax((0, 0)), RuntimeError, "dim 0 appears multiple times in the list of dims"),
    (lambda: rustgrad.outer(rustgrad.zeros(2, 2), rustgrad.zeros(2)), RuntimeError,
     "outer: Expected 1-D argument self, but got 2-D"),
    (lambda: rustgrad.meshgrid(rustgrad.zeros(2), indexing="zz"), RuntimeError,
     'torch.meshgrid: indexing must be one of "xy" or "ij", but received: zz'),
]


@pytest.mark.parametrize("case", range(len(ERRORS)))
def test_errors(case):
    fn, exc, message = ERRORS[case]
    with pytest.raises(exc) as info:
        fn()
    assert str(info.value).splitlines()[0] == message


def test_same_as_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    calls = [
        lambda m, x: x.flip(1), lambda m, x: x.roll(2, 1), lambda m, x: x.tril(1), lambda m, x: x.triu(-1),
        lambda m, x: x.diagonal(1), lambda m, x: m.diag(x), lambda m, x: m.diag_embed(x), lambda m, x: x.trace(),
        lambda m, x: x.sort(0).values, lambda m, x: x.topk(2).values, lambda m, x: x.kthvalue(2).values,
        lambda m, x: x.median(), lambda m, x: x.median(1).values, lambda m, x: x.mode(0).values,
        lambda m, x: x.cumprod(1), lambda m, x: x.cummax(0).values, lambda m, x: x.amax(0), lambda m, x: x.amin(),
        lambda m, x: x.aminmax().max, lambda m, x: x.tile(2), lambda m, x: m.outer(x[0], x[1]),
        lambda m, x: m.meshgrid(x[0], x[1], indexing="xy")[0],
        lambda m, x: x.fmod(0.7), lambda m, x: x.remainder(x[0]), lambda m, x: x % -0.6, lambda m, x: x.nan_to_num(),
        lambda m, x: m.addmv(x[:, 0], x, x[0]), lambda m, x: m.addr(x, x[:, 0], x[0], beta=2),
        lambda m, x: m.baddbmm(x[None], x[None], x.t()[None].matmul(x[None]), alpha=0.5),
        lambda m, x: m.einsum("ij,kj->ik", x, x), lambda m, x: m.einsum("ii->i", x[:, :3]),
        lambda m, x: m.einsum("ij->", x), lambda m, x: m.einsum("ij,ij->i", x, x),
    ]
    for k, call in enumerate(calls):
        results = []
        for m in (rustgrad, torch):
            x = m.tensor(a, dtype=m.float64, requires_grad=True)
            y = call(m, x)
            (g,) = m.autograd.grad(y.sum(), x)
            results.append((y.detach().numpy(), g.numpy(), type(y.grad_fn).__name__, str(y.dtype)))
        (y1, g1, n1, d1), (y2, g2, n2, d2) = results
        np.testing.assert_allclose(y1, y2, err_msg=str(k))
        np.testing.assert_allclose(g1, g2, err_msg=str(k))
        assert (n1, d1) == (n2, d2), k


def test_not_differentiable_results_raise_on_backward():
    x = rustgrad.tensor([3.0, 1.0, 3.0], requires_grad=True)
    u = rustgrad.unique(x)
    assert type(u.grad_fn).__name__ == "Unique2Backward0"
    with pytest.raises(NotImplementedError, match="the derivative for '_unique2' is not implemented."):
        u.sum().backward()
    r = 5.5 % x
    assert type(r.grad_fn).__name__ == "NotImplemented"
    with pytest.raises(RuntimeError, match="derivative for aten::remainder is not implemented"):
        r.sum().backward()


def test_elementwise_results_keep_a_transposed_layout():
    x = rustgrad.arange(12.0).reshape(3, 4).t()
    for y in (x.flip(0), x.nan_to_num(), x.fmod(2), x.remainder(x), x.sort(0).values):
        assert y.stride() == (1, 4)
    assert x.roll(1, 0).stride() == (3, 1) and x.cumprod(0).stride() == (3, 1)


def test_reduced_precision_rounds_once():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 6)) * 3
    b = rng.standard_normal(6) * 2 + 0.5
    # addmv of float16: computed in float32, rounded once to float16
    ah, bh = rustgrad.tensor(a).half(), rustgrad.tensor(b).half()
    got = rustgrad.addmv(ah[:, 0], ah, bh, beta=0.5, alpha=2)
    want = rustgrad.addmv(ah[:, 0].float(), ah.float(), bh.float(), beta=0.5, alpha=2).half()
    assert got.dtype == rustgrad.float16 and got.tolist() == want.tolist()
    # cumprod of float32 accumulates in float64 and rounds each output
    x = rng.uniform(0.5, 1.5, size=50).astype(np.float32)
    expected = np.cumprod(x.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(rustgrad.tensor(x).cumprod(0).numpy(), expected)


def test_zero_d_and_empty_edge_cases():
    x = rustgrad.tensor(3.0)
    for r in (x.topk(0), x.topk(1), x.kthvalue(1), x.median(0), x.mode()):
        assert r.values.shape == () and r.values.item() == 3.0 and r.indices.item() == 0
    assert rustgrad.tensor(True).kthvalue(1).values.item() is True
    assert rustgrad.zeros(4, 0).roll(1, -3).shape == (4, 0)  # nothing to move: no dim check
    assert rustgrad.tensor(3.0).roll(1).item() == 3.0
    assert rustgrad.eye(2).tril(rustgrad.tensor([0])).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(IndexError, match="aminmax: Expected reduction dim 0 to have non-zero size."):
        rustgrad.ones(0, 2).aminmax(dim=-2)


def test_numpy_names():
    x = rustgrad.tensor([[1.0, 5.0], [3.0, 2.0]])
    assert x.amax(axis=0, keepdims=True).tolist() == [[3.0, 5.0]]
    assert rustgrad.sort(x, axis=0).values.tolist() == [[1.0, 2.0], [3.0, 5.0]]
    assert rustgrad.cumprod(x, axis=1).tolist() == [[1.0, 5.0], [3.0, 6.0]]
