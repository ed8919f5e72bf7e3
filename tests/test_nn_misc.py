"""The composite parts of ``nn``: the functions PyTorch writes as compositions of other ops
(``normalize``, ``cosine_similarity``, ``kl_div``, the margin and embedding losses, the dropout
variants, ...), their modules, ``Unflatten``, ``ParameterList``/``ParameterDict``, and ``nn.utils``'s
parameter vectors, ``parametrize``, ``weight_norm``, ``spectral_norm`` and ``orthogonal``.

Values are checked against numpy or closed forms, gradients with ``gradcheck`` and
``gradgradcheck`` in float64, the errors against PyTorch's messages (hard-coded). The dropout masks
and the power-iteration vectors are checked against draws of the same generator. The last part runs
the same calls under PyTorch when it is installed (skipped otherwise) and compares values, gradients,
``grad_fn`` names, reprs, state dicts, exceptions and seeded draws.

Except for the PyTorch part, the file passes unchanged with ``sys.modules["rustgrad"] = torch``.
"""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
import rustgrad
from gradcheck import gradcheck, gradgradcheck

nn = rustgrad.nn
F = rustgrad.nn.functional


def t64(a, requires_grad=False):
    return rustgrad.tensor(
        np.asarray(a, dtype=np.float64), dtype=rustgrad.float64, requires_grad=requires_grad
    )


def val(t) -> np.ndarray:
    return np.asarray(t.detach().tolist(), dtype=np.float64)


def name(t) -> str | None:
    return None if t.grad_fn is None else type(t.grad_fn).__name__


RNG = np.random.default_rng(2024)
X = RNG.standard_normal((3, 4))
Y = RNG.standard_normal((3, 4))
Z = RNG.standard_normal((3, 4))
POS = RNG.uniform(0.2, 1.5, (3, 4))
SIGN = np.array([1.0, -1.0, 1.0])
LABELS = np.where(RNG.standard_normal((3, 4)) > 0, 1.0, -1.0)
BITS = (RNG.uniform(size=(3, 4)) > 0.5).astype(np.float64)


# ----- values against numpy -----


def np_norm(a, p, axis, keepdims=False):
    if p == math.inf:
        return np.abs(a).max(axis=axis, keepdims=keepdims)
    return (np.abs(a) ** p).sum(axis=axis, keepdims=keepdims) ** (1 / p)


def test_softsign_tanhshrink_softmin_values():
    np.testing.assert_allclose(val(F.softsign(t64(X))), X / (1 + np.abs(X)), rtol=1e-14)
    np.testing.assert_allclose(val(F.tanhshrink(t64(X))), X - np.tanh(X), rtol=1e-12, atol=1e-15)
    e = np.exp(-X)
    np.testing.assert_allclose(val(F.softmin(t64(X), dim=1)), e / e.sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(val(F.softmin(t64(X), 0)), e / e.sum(0, keepdims=True), rtol=1e-12)
    out = F.softmin(rustgrad.tensor(X, dtype=rustgrad.float32), 1, dtype=rustgrad.float64)
    assert out.dtype == rustgrad.float64
    # integer input: softsign and tanhshrink give the default float dtype, as PyTorch
    assert F.softsign(rustgrad.arange(3)).dtype == rustgrad.float32
    assert F.tanhshrink(rustgrad.arange(3)).dtype == rustgrad.float32


def test_softmin_implicit_dim_warns():
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin has been deprecated"):
        out = F.softmin(t64(X))
    e = np.exp(-X)
    np.testing.assert_allclose(val(out), e / e.sum(1, keepdims=True), rtol=1e-12)


def test_normalize_values():
    np.testing.assert_allclose(val(F.normalize(t64(X))), X / np_norm(X, 2, 1, True), rtol=1e-13)
    np.testing.assert_allclose(val(F.normalize(t64(X), p=1, dim=0)), X / np_norm(X, 1, 0, True), rtol=1e-13)
    both = F.normalize(t64(X), dim=(0, 1))
    np.testing.assert_allclose(val(both), X / np.sqrt((X * X).sum()), rtol=1e-13)
    # a zero vector stays zero (its norm is clamped to eps)
    z = np.zeros((2, 3))
    z[1] = [3.0, 0.0, 4.0]
    np.testing.assert_allclose(val(F.normalize(t64(z))), [[0, 0, 0], [0.6, 0, 0.8]], atol=1e-15)
    tiny = F.normalize(t64([[1e-14, 0.0]]), eps=1e-12)
    np.testing.assert_allclose(val(tiny), [[0.01, 0.0]], rtol=1e-12)


def test_normalize_out():
    out = rustgrad.zeros(3, 4, dtype=rustgrad.float64)
    res = F.normalize(t64(X), out=out)
    assert res is out
    np.testing.assert_allclose(val(out), X / np_norm(X, 2, 1, True), rtol=1e-13)


def test_cosine_similarity_values():
    expected = (X * Y).sum(1) / (np.linalg.norm(X, axis=1) * np.linalg.norm(Y, axis=1))
    np.testing.assert_allclose(val(F.cosine_similarity(t64(X), t64(Y))), expected, rtol=1e-13)
    # broadcasting, another dim
    row = Y[:1]
    expected = (X * row).sum(1) / (np.linalg.norm(X, axis=1) * np.linalg.norm(row))
    np.testing.assert_allclose(val(F.cosine_similarity(t64(X), t64(row))), expected, rtol=1e-13)
    expected0 = (X * Y).sum(0) / (np.linalg.norm(X, axis=0) * np.linalg.norm(Y, axis=0))
    np.testing.assert_allclose(val(F.cosine_similarity(t64(X), t64(Y), dim=0)), expected0, rtol=1e-13)
    # a zero vector: each norm is clamped to eps separately, so the similarity is 0
    assert val(F.cosine_similarity(t64([[0.0, 0.0]]), t64([[1.0, 2.0]])))[0] == 0.0
    # 1-D and 0-d
    assert math.isclose(F.cosine_similarity(t64([1.0, 0.0]), t64([1.0, 1.0]), dim=0).item(), 2**-0.5)
    assert F.cosine_similarity(t64(2.0), t64(-3.0), dim=0).item() == -1.0
    # an integer operand is converted; the float32 one keeps its dtype and the result promotes
    mixed = F.cosine_similarity(
        rustgrad.tensor([[1, 2]]), rustgrad.tensor([[2.0, 1.0]], dtype=rustgrad.float64)
    )
    assert mixed.dtype == rustgrad.float64 and math.isclose(mixed.item(), 0.8)


def test_pairwise_distance_values():
    d = X - Y + 1e-6
    for p in (1.0, 2.0, 3.0, math.inf):
        out = F.pairwise_distance(t64(X), t64(Y), p=p)
        np.testing.assert_allclose(val(out), np_norm(d, p, 1), rtol=1e-13)
    keep = F.pairwise_distance(t64(X), t64(Y), keepdim=True)
    assert tuple(keep.shape) == (3, 1)
    out = F.pairwise_distance(t64(X), t64(Y[0]), eps=0.0)
    np.testing.assert_allclose(val(out), np.linalg.norm(X - Y[0], axis=1), rtol=1e-13)
    # 1-D inputs give a 0-d distance; p=0 counts the non-zero differences
    assert math.isclose(F.pairwise_distance(t64([0.0, 3.0]), t64([4.0, 0.0]), eps=0.0).item(), 5.0)
    assert F.pairwise_distance(t64([1.0, 3.0, 2.0]), t64([1.0, 0.0, 0.0]), p=0, eps=0.0).item() == 2.0
    # integer inputs: the eps makes it float
    ints = F.pairwise_distance(rustgrad.tensor([[3, 0]]), rustgrad.tensor([[0, 4]]), eps=0.0)
    assert ints.dtype == rustgrad.float32 and ints.tolist() == [5.0]


def np_kl(inp, target, log_target=False):
    if log_target:
        return np.exp(target) * (target - inp)
    safe = np.where(target > 0, target, 1.0)
    return np.where(target == 0, 0.0, target * np.log(safe)) - target * inp


def test_kl_div_values():
    logp = np.log(POS / POS.sum(1, keepdims=True))
    q = np.array(BITS * POS)  # with zeros, which contribute 0
    per = np_kl(logp, q)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean = F.kl_div(t64(logp), t64(q))
    np.testing.assert_allclose(val(mean), per.mean(), rtol=1e-13)
    np.testing.assert_allclose(val(F.kl_div(t64(logp), t64(q), reduction="sum")), per.sum(), rtol=1e-13)
    np.testing.assert_allclose(val(F.kl_div(t64(logp), t64(q), reduction="none")), per, rtol=1e-13)
    batchmean = F.kl_div(t64(logp), t64(q), reduction="batchmean")
    np.testing.assert_allclose(val(batchmean), per.sum() / 3, rtol=1e-13)
    logq = np.log(POS)
    np.testing.assert_allclose(
        val(F.kl_div(t64(logp), t64(logq), reduction="none", log_target=True)),
        np_kl(logp, logq, log_target=True),
        rtol=1e-13,
    )
    # 'batchmean' on a 0-d input is the sum
    assert math.isclose(
        F.kl_div(t64(-1.0), t64(0.5), reduction="batchmean").item(), 0.5 * math.log(0.5) + 0.5
    )


def test_kl_div_mean_and_legacy_warnings():
    with pytest.warns(UserWarning, match="reduction: 'mean' divides the total loss by both the batch size"):
        F.kl_div(t64(X), t64(POS))
    with pytest.warns(
        UserWarning, match="size_average and reduce args will be deprecated, please use reduction='sum'"
    ):
        out = F.kl_div(t64(X), t64(POS), size_average=False)
    np.testing.assert_allclose(val(out), np_kl(X, POS).sum(), rtol=1e-13)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.kl_div(t64(X), t64(POS), reduction="batchmean")


def test_poisson_nll_loss_values():
    target = np.round(POS * 3)
    per = np.exp(X) - target * X
    np.testing.assert_allclose(val(F.poisson_nll_loss(t64(X), t64(target))), per.mean(), rtol=1e-13)
    rate = POS
    per = rate - target * np.log(rate + 1e-8)
    out = F.poisson_nll_loss(t64(rate), t64(target), log_input=False, reduction="none")
    np.testing.assert_allclose(val(out), per, rtol=1e-13)
    safe = np.where(target > 1, target, 2.0)
    stirling = np.where(target > 1, safe * np.log(safe) - safe + 0.5 * np.log(2 * np.pi * safe), 0.0)
    full = F.poisson_nll_loss(t64(rate), t64(target), log_input=False, full=True, reduction="sum")
    np.testing.assert_allclose(val(full), (per + stirling).sum(), rtol=1e-13)


def test_gaussian_nll_loss_values():
    per = 0.5 * (np.log(POS) + (X - Y) ** 2 / POS)
    np.testing.assert_allclose(val(F.gaussian_nll_loss(t64(X), t64(Y), t64(POS))), per.mean(), rtol=1e-13)
    full = F.gaussian_nll_loss(t64(X), t64(Y), t64(POS), full=True, reduction="sum")
    np.testing.assert_allclose(val(full), (per + 0.5 * np.log(2 * np.pi)).sum(), rtol=1e-13)
    # one variance per row: the last dimension dropped, or of size 1
    row = POS[:, 0]
    per_row = 0.5 * (np.log(row[:, None]) + (X - Y) ** 2 / row[:, None])
    out = F.gaussian_nll_loss(t64(X), t64(Y), t64(row), reduction="none")
    np.testing.assert_allclose(val(out), per_row, rtol=1e-13)
    out = F.gaussian_nll_loss(t64(X), t64(Y), t64(row[:, None]), reduction="none")
    np.testing.assert_allclose(val(out), per_row, rtol=1e-13)
    # a float variance; a variance below eps is clamped to eps
    out = F.gaussian_nll_loss(t64(X), t64(Y), 0.5, reduction="none")
    np.testing.assert_allclose(val(out), 0.5 * (np.log(0.5) + (X - Y) ** 2 / 0.5), rtol=1e-13)
    out = F.gaussian_nll_loss(t64(X), t64(Y), t64(np.full((3, 4), 1e-9)), eps=1e-3, reduction="none")
    np.testing.assert_allclose(val(out), 0.5 * (np.log(1e-3) + (X - Y) ** 2 / 1e-3), rtol=1e-13)


def test_gaussian_nll_loss_clamp_keeps_the_gradient():
    """The variance is clamped without autograd seeing it: d/dvar = 0.5 / eps - 0.5 r^2 / eps^2 at the clamp."""
    var = t64([1e-9], requires_grad=True)
    F.gaussian_nll_loss(t64([1.0]), t64([0.0]), var, eps=0.5).backward()
    np.testing.assert_allclose(val(var.grad), [0.5 / 0.5 - 0.5 / 0.25], rtol=1e-13)


def test_margin_and_embedding_loss_values():
    a, b = X[:, 0], Y[:, 0]
    per = np.maximum(0, -SIGN * (a - b) + 0.3)
    out = F.margin_ranking_loss(t64(a), t64(b), t64(SIGN), margin=0.3, reduction="none")
    np.testing.assert_allclose(val(out), per, rtol=1e-13)
    assert math.isclose(F.margin_ranking_loss(t64(a), t64(b), t64(SIGN), margin=0.3).item(), per.mean())

    per = np.where(LABELS == 1, X, np.maximum(0, 0.5 - X))
    out = F.hinge_embedding_loss(t64(X), t64(LABELS), margin=0.5, reduction="none")
    np.testing.assert_allclose(val(out), per, rtol=1e-13)
    assert math.isclose(
        F.hinge_embedding_loss(t64(X), t64(LABELS), reduction="sum").item(),
        np.where(LABELS == 1, X, np.maximum(0, 1 - X)).sum(),
    )
    # a label other than 1 and -1 counts both terms
    odd = F.hinge_embedding_loss(t64([0.25]), t64([0.0]), reduction="none")
    assert odd.tolist() == [0.25 + 0.75]

    cos = (X * Y).sum(1) / np.sqrt(((X * X).sum(1) + 1e-12) * ((Y * Y).sum(1) + 1e-12))
    per = np.where(SIGN == 1, 1 - cos, np.maximum(0, cos - 0.1))
    out = F.cosine_embedding_loss(t64(X), t64(Y), t64(SIGN), margin=0.1, reduction="none")
    np.testing.assert_allclose(val(out), per, rtol=1e-13)
    one = F.cosine_embedding_loss(t64([1.0, 0.0]), t64([1.0, 1.0]), t64(1.0))
    assert math.isclose(one.item(), 1 - 1 / math.sqrt((1 + 1e-12) * (2 + 1e-12)), rel_tol=1e-14)


def test_triplet_losses_values():
    dp = np.linalg.norm(X - Y + 1e-6, axis=1)
    dn = np.linalg.norm(X - Z + 1e-6, axis=1)
    ds = np.linalg.norm(Y - Z + 1e-6, axis=1)
    per = np.maximum(0, 1.0 + dp - dn)
    np.testing.assert_allclose(val(F.triplet_margin_loss(t64(X), t64(Y), t64(Z))), per.mean(), rtol=1e-13)
    swapped = np.maximum(0, 2.0 + dp - np.minimum(dn, ds))
    out = F.triplet_margin_loss(t64(X), t64(Y), t64(Z), margin=2.0, swap=True, reduction="none")
    np.testing.assert_allclose(val(out), swapped, rtol=1e-13)
    d1 = lambda a, b: np.abs(a - b + 1e-6).sum(1)
    out = F.triplet_margin_loss(t64(X), t64(Y), t64(Z), p=1, reduction="sum")
    np.testing.assert_allclose(val(out), np.maximum(0, 1 + d1(X, Y) - d1(X, Z)).sum(), rtol=1e-13)

    out = F.triplet_margin_with_distance_loss(t64(X), t64(Y), t64(Z), reduction="none")
    np.testing.assert_allclose(val(out), per, rtol=1e-13)

    def cos_dist(a, b):
        return 1 - F.cosine_similarity(a, b)

    cd = lambda a, b: 1 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    out = F.triplet_margin_with_distance_loss(
        t64(X), t64(Y), t64(Z), distance_function=cos_dist, margin=0.5, swap=True, reduction="sum"
    )
    expected = np.maximum(0, 0.5 + cd(X, Y) - np.minimum(cd(X, Z), cd(Y, Z))).sum()
    np.testing.assert_allclose(val(out), expected, rtol=1e-13)


def test_multilabel_soft_margin_loss_values():
    logsig = lambda v: -np.logaddexp(0, -v)
    per = -(BITS * logsig(X) + (1 - BITS) * logsig(-X))
    out = F.multilabel_soft_margin_loss(t64(X), t64(BITS), reduction="none")
    np.testing.assert_allclose(val(out), per.mean(1), rtol=1e-13)
    w = POS[0]
    out = F.multilabel_soft_margin_loss(t64(X), t64(BITS), weight=t64(w))
    np.testing.assert_allclose(val(out), (per * w).mean(1).mean(), rtol=1e-13)


def test_loss_reductions_and_legacy_arguments():
    args = {
        "margin_ranking_loss": (t64(X[:, 0]), t64(Y[:, 0]), t64(SIGN)),
        "hinge_embedding_loss": (t64(X), t64(LABELS)),
        "cosine_embedding_loss": (t64(X), t64(Y), t64(SIGN)),
        "triplet_margin_loss": (t64(X), t64(Y), t64(Z)),
        "poisson_nll_loss": (t64(X), t64(POS)),
        "multilabel_soft_margin_loss": (t64(X), t64(BITS)),
    }
    for fn_name, a in args.items():
        fn = getattr(F, fn_name)
        none = val(fn(*a, reduction="none"))
        assert math.isclose(fn(*a, reduction="sum").item(), none.sum(), rel_tol=1e-12), fn_name
        assert math.isclose(fn(*a).item(), none.mean(), rel_tol=1e-12), fn_name
        with pytest.warns(UserWarning, match="reduction='none' instead"):
            assert np.allclose(val(fn(*a, reduce=False)), none)
        with pytest.warns(UserWarning, match="reduction='sum' instead"):
            assert math.isclose(fn(*a, size_average=False).item(), none.sum(), rel_tol=1e-12)
    with pytest.warns(UserWarning, match="reduction='elementwise_mean' is deprecated"):
        F.hinge_embedding_loss(t64(X), t64(LABELS), reduction="elementwise_mean")


def test_gumbel_softmax():
    logits = t64(X, requires_grad=True)
    rustgrad.manual_seed(0)
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(val(soft).sum(1), 1.0, rtol=1e-13)
    rustgrad.manual_seed(0)
    hard = F.gumbel_softmax(logits, tau=0.5, hard=True)
    h = val(hard)
    assert set(np.unique(h)) <= {0.0, 1.0} and (h.sum(1) == 1).all()
    assert (h.argmax(1) == val(soft).argmax(1)).all()
    # the same noise: exponential draws of the logits' shape
    rustgrad.manual_seed(0)
    g = -np.log(val(rustgrad.empty(3, 4, dtype=rustgrad.float64).exponential_()))
    e = np.exp((X + g) / 0.5)
    np.testing.assert_allclose(val(soft), e / e.sum(1, keepdims=True), rtol=1e-12)
    # straight through: the hard sample's gradient is the soft one's
    (gh,) = rustgrad.autograd.grad((hard * t64(Y)).sum(), [logits])
    (gs,) = rustgrad.autograd.grad((soft * t64(Y)).sum(), [logits])
    np.testing.assert_allclose(val(gh), val(gs), rtol=1e-12)
    with pytest.warns(UserWarning, match="`eps` parameter is deprecated"):
        F.gumbel_softmax(logits, eps=1e-3)


# ----- gradcheck and gradgradcheck (float64) -----

GRAD_CASES = [
    ("softsign", lambda x: F.softsign(x), [X]),
    ("tanhshrink", lambda x: F.tanhshrink(x), [X]),
    ("softmin", lambda x: F.softmin(x, dim=1), [X]),
    ("normalize", lambda x: F.normalize(x), [X]),
    ("normalize_p1_dim0", lambda x: F.normalize(x, p=1.5, dim=0), [X]),
    ("cosine_similarity", lambda a, b: F.cosine_similarity(a, b), [X, Y]),
    ("cosine_similarity_bcast", lambda a, b: F.cosine_similarity(a, b, dim=0), [X, Y[:1]]),
    ("pairwise_distance", lambda a, b: F.pairwise_distance(a, b), [X, Y]),
    ("pairwise_distance_p3", lambda a, b: F.pairwise_distance(a, b, p=3, keepdim=True), [X, Y]),
    ("pairwise_distance_p1", lambda a, b: F.pairwise_distance(a, b, p=1), [X, Y]),
    ("kl_div", lambda a, b: F.kl_div(a, b, reduction="batchmean"), [X, POS]),
    ("kl_div_log_target", lambda a, b: F.kl_div(a, b, reduction="none", log_target=True), [X, Y]),
    ("poisson_nll_loss", lambda a, b: F.poisson_nll_loss(a, b), [X, POS]),
    (
        "poisson_nll_loss_full",
        lambda a, b: F.poisson_nll_loss(a, b, log_input=False, full=True, reduction="sum"),
        [POS, POS * 3],
    ),
    ("gaussian_nll_loss", lambda a, b, v: F.gaussian_nll_loss(a, b, v, full=True), [X, Y, POS]),
    (
        "gaussian_nll_loss_row",
        lambda a, b, v: F.gaussian_nll_loss(a, b, v, reduction="none"),
        [X, Y, POS[:, 0]],
    ),
    (
        "margin_ranking_loss",
        lambda a, b, t: F.margin_ranking_loss(a, b, t, margin=0.1, reduction="none"),
        [X[:, 0], Y[:, 0], SIGN],
    ),
    ("hinge_embedding_loss", lambda a, t: F.hinge_embedding_loss(a, t, margin=1.7), [X, LABELS]),
    (
        "cosine_embedding_loss",
        lambda a, b, t: F.cosine_embedding_loss(a, b, t, margin=-0.9, reduction="sum"),
        [X, Y, SIGN],
    ),
    ("triplet_margin_loss", lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=3.0, swap=True), [X, Y, Z]),
    (
        "triplet_margin_with_distance_loss",
        lambda a, p, n: F.triplet_margin_with_distance_loss(a, p, n, margin=3.0, reduction="none"),
        [X, Y, Z],
    ),
    (
        "multilabel_soft_margin_loss",
        lambda a, t, w: F.multilabel_soft_margin_loss(a, t, weight=w),
        [X, BITS, POS[0]],
    ),
]


@pytest.mark.parametrize(("case", "fn", "inputs"), GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradcheck(case, fn, inputs):
    assert gradcheck(fn, inputs)


@pytest.mark.parametrize(("case", "fn", "inputs"), GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradgradcheck(case, fn, inputs):
    assert gradgradcheck(fn, inputs)


def _seeded(fn, seed=11):
    """``fn`` with the generator reset before every call: the same dropout mask each time."""

    def run(*args):
        rustgrad.manual_seed(seed)
        return fn(*args)

    return run


DROPOUT_GRAD_CASES = [
    ("alpha_dropout", lambda x: F.alpha_dropout(x, 0.4, True)),
    ("feature_alpha_dropout", lambda x: F.feature_alpha_dropout(x, 0.4, True)),
    ("dropout1d", lambda x: F.dropout1d(x, 0.4, True)),
    ("dropout2d", lambda x: F.dropout2d(x.reshape(2, 3, 2, 1), 0.4, True)),
    ("dropout3d", lambda x: F.dropout3d(x.reshape(3, 2, 1, 2), 0.4, True)),
]


@pytest.mark.parametrize(("case", "fn"), DROPOUT_GRAD_CASES, ids=[c[0] for c in DROPOUT_GRAD_CASES])
def test_dropout_gradcheck(case, fn):
    x = RNG.standard_normal((3, 4)).reshape(3, 2, 2)
    assert gradcheck(_seeded(fn), [x])
    assert gradgradcheck(_seeded(fn), [x])


# ----- dropout variants: masks, scaling, draws -----


def _bernoulli(shape, p, seed, dtype=rustgrad.float32):
    rustgrad.manual_seed(seed)
    return val(rustgrad.empty(*shape, dtype=dtype).bernoulli_(1 - p))


def test_feature_dropout_masks_whole_channels():
    x = RNG.standard_normal((4, 6, 3, 2)) + 5.0
    for fn, inp in ((F.dropout2d, x), (F.dropout3d, x[:, :, :, :, None]), (F.dropout1d, x[:, :, :, 0])):
        rustgrad.manual_seed(3)
        out = val(fn(rustgrad.tensor(inp), 0.5, True))
        keep = _bernoulli((4, 6), 0.5, 3)
        expected = inp * (keep * 2).reshape((4, 6) + (1,) * (inp.ndim - 2))
        np.testing.assert_allclose(out, expected, rtol=1e-6)
        assert 0 < keep.sum() < keep.size


def test_unbatched_feature_dropout():
    x = RNG.standard_normal((5, 3)) + 5.0
    rustgrad.manual_seed(4)
    out = val(F.dropout1d(rustgrad.tensor(x), 0.3, True))
    keep = _bernoulli((1, 5), 0.3, 4)[0]
    np.testing.assert_allclose(out, x * keep[:, None] / 0.7, rtol=1e-6)
    # dropout3d reads a 4-D input as unbatched (C, D, H, W)
    x4 = RNG.standard_normal((5, 2, 1, 3))
    rustgrad.manual_seed(4)
    out = val(F.dropout3d(rustgrad.tensor(x4), 0.3, True))
    np.testing.assert_allclose(out, x4 * keep[:, None, None, None] / 0.7, rtol=1e-6)


def test_alpha_dropout_values():
    alpha = 1.7580993408473766
    x = RNG.standard_normal((50, 8))
    for p in (0.2, 0.5):
        a = 1 / math.sqrt((alpha**2 * p + 1) * (1 - p))
        rustgrad.manual_seed(9)
        out = val(F.alpha_dropout(t64(x), p, True))
        keep = _bernoulli((50, 8), p, 9, rustgrad.float64)
        expected = np.where(keep == 1, a * (x + alpha * p), a * alpha * (p - 1))
        np.testing.assert_allclose(out, expected, rtol=1e-13)
        rustgrad.manual_seed(9)
        out = val(F.feature_alpha_dropout(t64(x[:, :, None]), p, True))[:, :, 0]
        keep = _bernoulli((50, 8), p, 9, rustgrad.float64)
        np.testing.assert_allclose(
            out, np.where(keep == 1, a * (x + alpha * p), a * alpha * (p - 1)), rtol=1e-13
        )


def test_alpha_dropout_keeps_mean_and_variance():
    rustgrad.manual_seed(0)
    x = rustgrad.randn(200000, dtype=rustgrad.float64)
    out = val(F.alpha_dropout(x, 0.3, True))
    assert abs(out.mean()) < 0.01 and abs(out.std() - 1) < 0.01


def test_dropout_variants_identity_zero_and_inplace():
    x = rustgrad.randn(2, 3, 4, 1)
    for fn in (F.alpha_dropout, F.feature_alpha_dropout, F.dropout2d):
        assert fn(x, 0.5, False) is x
        assert fn(x, 0.0, True) is x
        assert (val(fn(x, 1.0, True)) == 0).all()
    assert F.alpha_dropout(x, 0.5) is x  # training defaults to False for the alpha variants
    assert F.feature_alpha_dropout(x, 0.5) is x
    x = x[..., 0]
    assert F.dropout1d(x, 0.5, False) is x and F.dropout1d(x, 0.0, True) is x
    empty = rustgrad.ones(0, 3, 2, 2)
    assert F.dropout2d(empty, 0.5, True) is empty
    # in place: the input is overwritten with the result of the same draws
    for fn in (F.alpha_dropout, F.feature_alpha_dropout, F.dropout1d):
        y = x.clone()
        rustgrad.manual_seed(2)
        expected = val(fn(x, 0.5, True))
        rustgrad.manual_seed(2)
        out = fn(y, 0.5, True, inplace=True)
        assert out is y
        np.testing.assert_allclose(val(y), expected)
    # unbatched in place (dropout1d unsqueezes a view of the input)
    y = x[0].clone()
    rustgrad.manual_seed(2)
    expected = val(F.dropout1d(y, 0.5, True))
    rustgrad.manual_seed(2)
    assert F.dropout1d(y, 0.5, True, inplace=True) is y
    np.testing.assert_allclose(val(y), expected)


def test_dropout_draws_advance_the_generator_like_the_mask():
    """A dropout call moves the generator on exactly as one bernoulli_ of its noise's shape."""
    cases = [
        (F.dropout2d, (2, 3, 4, 4), (2, 3, 1, 1)),
        (F.dropout1d, (3, 5), (1, 3, 1)),
        (F.alpha_dropout, (2, 3), (2, 3)),
        (F.feature_alpha_dropout, (2, 3, 5), (2, 3, 1)),
    ]
    for fn, shape, noise in cases:
        rustgrad.manual_seed(1)
        fn(rustgrad.ones(*shape), 0.5, True)
        after = rustgrad.rand(3).tolist()
        rustgrad.manual_seed(1)
        rustgrad.empty(*noise).bernoulli_(0.5)
        assert rustgrad.rand(3).tolist() == after, fn.__name__


def test_dropout_warnings():
    with pytest.warns(UserWarning, match="dropout2d: Received a 3D input to dropout2d and assuming"):
        F.dropout2d(rustgrad.ones(2, 3, 4), 0.5, True)
    with pytest.warns(UserWarning, match="dropout2d: Received a 2-D input to dropout2d, which is deprecated"):
        F.dropout2d(rustgrad.ones(2, 3), 0.5, True)
    with pytest.warns(UserWarning, match="dropout3d: Received a 3-D input to dropout3d, which is deprecated"):
        F.dropout3d(rustgrad.ones(2, 3, 1), 0.5, True)


# ----- errors (PyTorch's classes and messages) -----

ERRORS = [
    (
        lambda: F.cosine_similarity(t64(X), t64(np.ones((3, 5)))),
        RuntimeError,
        "The size of tensor a (4) must match the size of tensor b (5) at non-singleton dimension 1",
    ),
    (
        lambda: F.cosine_similarity(
            rustgrad.ones(2, dtype=rustgrad.int64), rustgrad.ones(2, dtype=rustgrad.int64)
        ),
        RuntimeError,
        "expected common dtype to be floating point, yet common dtype is Long",
    ),
    (
        lambda: F.cosine_similarity(t64(X), t64(X), dim=2),
        IndexError,
        "Dimension out of range (expected to be in range of [-2, 1], but got 2)",
    ),
    (
        lambda: F.cosine_similarity(t64(X), [1.0]),
        TypeError,
        "cosine_similarity(): argument 'x2' (position 2) must be Tensor, not list",
    ),
    (
        lambda: F.pairwise_distance([1.0], t64(X)),
        TypeError,
        "pairwise_distance(): argument 'x1' (position 1) must be Tensor, not list",
    ),
    (
        lambda: F.normalize(rustgrad.tensor(1.0)),
        IndexError,
        "Dimension out of range (expected to be in range of [-1, 0], but got 1)",
    ),
    (lambda: F.normalize([1.0]), AttributeError, "'list' object has no attribute 'norm'"),
    (lambda: F.softsign([1.0]), AttributeError, "'list' object has no attribute 'abs'"),
    (lambda: F.tanhshrink([1.0]), AttributeError, "'list' object has no attribute 'tanh'"),
    (
        lambda: F.kl_div(t64(X), t64(POS), reduction="bad"),
        ValueError,
        "bad is not a valid value for reduction",
    ),
    (
        lambda: F.kl_div(rustgrad.ones(2, dtype=rustgrad.int64), rustgrad.ones(2, dtype=rustgrad.int64)),
        RuntimeError,
        "kl_div: Integral inputs not supported.",
    ),
    (
        lambda: F.kl_div(t64(X), [1.0], reduction="sum"),
        TypeError,
        "kl_div(): argument 'target' (position 2) must be Tensor, not list",
    ),
    (
        lambda: F.kl_div(t64(X), t64(np.ones((3, 5))), reduction="sum"),
        RuntimeError,
        "The size of tensor a (5) must match the size of tensor b (4) at non-singleton dimension 1",
    ),
    (
        lambda: F.poisson_nll_loss(t64(X), t64(X), reduction="x"),
        ValueError,
        "x is not a valid value for reduction",
    ),
    (lambda: F.gaussian_nll_loss(t64(X), t64(X), t64(POS), reduction="x"), ValueError, "x is not valid"),
    (lambda: F.gaussian_nll_loss(t64(X), t64(X), -1.0), ValueError, "var has negative entry/entries"),
    (lambda: F.gaussian_nll_loss(t64(X), t64(X), t64(-POS)), ValueError, "var has negative entry/entries"),
    (lambda: F.gaussian_nll_loss(t64(X), t64(X), t64(POS[:2])), ValueError, "var is of incorrect size"),
    (lambda: F.gaussian_nll_loss(t64(X), t64(X), t64(POS[:1, :1])), ValueError, "var is of incorrect size"),
    (
        lambda: F.margin_ranking_loss(t64(X), t64(X), t64(SIGN)),
        RuntimeError,
        (
            "margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            "input1: torch.Size([3, 4]), input2: torch.Size([3, 4]), target: torch.Size([3]) "
        ),
    ),
    (
        lambda: F.margin_ranking_loss(t64(SIGN), t64(SIGN), t64(SIGN), reduction="x"),
        ValueError,
        "x is not a valid value for reduction",
    ),
    (
        lambda: F.margin_ranking_loss([1.0], t64(SIGN), t64(SIGN)),
        AttributeError,
        "'list' object has no attribute 'dim'",
    ),
    (
        lambda: F.hinge_embedding_loss([1.0], t64(X)),
        TypeError,
        "hinge_embedding_loss(): argument 'input' (position 1) must be Tensor, not list",
    ),
    (
        lambda: F.hinge_embedding_loss(
            rustgrad.ones(2, dtype=rustgrad.int64), rustgrad.ones(2, dtype=rustgrad.int64)
        ),
        NotImplementedError,
        (
            "mean(): could not infer output dtype. Input dtype must be either a floating point or "
            "complex dtype. Got: Long"
        ),
    ),
    (
        lambda: F.cosine_embedding_loss(t64(X), t64(Y), t64(X)),
        RuntimeError,
        "0D or 1D target tensor expected, multi-target not supported",
    ),
    (
        lambda: F.cosine_embedding_loss(t64(X[0]), t64(Y[0]), t64([1.0])),
        RuntimeError,
        "1D target tensor expects 2D input tensors, but found inputs with sizes [4] and [4].",
    ),
    (
        lambda: F.cosine_embedding_loss(t64(X), t64(Y), t64(1.0)),
        RuntimeError,
        "0D target tensor expects 1D input tensors, but found inputs with sizes [3, 4] and [3, 4].",
    ),
    (
        lambda: F.triplet_margin_loss(t64(X), t64(Y), t64(Z), margin=0),
        ValueError,
        "margin must be greater than 0, got 0",
    ),
    (
        lambda: F.triplet_margin_loss(t64(X), t64(Y), t64(Z[0])),
        RuntimeError,
        (
            "The anchor, positive, and negative tensors are expected to have the same number of dimensions, "
            "but got: anchor 2D, positive 2D, and negative 1D inputs"
        ),
    ),
    (
        lambda: F.triplet_margin_loss(t64(X), [1.0], t64(Z)),
        TypeError,
        "triplet_margin_loss(): argument 'positive' (position 2) must be Tensor, not list",
    ),
    (
        lambda: F.triplet_margin_with_distance_loss(t64(X), t64(Y), t64(Z), reduction="x"),
        ValueError,
        "x is not a valid value for reduction",
    ),
    (
        lambda: F.triplet_margin_with_distance_loss(t64(X), t64(Y), t64(Z), margin=-1),
        ValueError,
        "margin must be greater than 0, got -1",
    ),
    (lambda: F.multilabel_soft_margin_loss(t64(X), t64(BITS), reduction="x"), ValueError, "x is not valid"),
    (
        lambda: F.alpha_dropout(t64(X), 1.5, True),
        ValueError,
        "dropout probability has to be between 0 and 1, but got 1.5",
    ),
    (
        lambda: F.alpha_dropout([1.0], 0.5, True),
        TypeError,
        "alpha_dropout(): argument 'input' (position 1) must be Tensor, not list",
    ),
    (
        lambda: F.alpha_dropout(t64(X), 0.5, "yes"),
        TypeError,
        "alpha_dropout(): argument 'train' (position 3) must be bool, not str",
    ),
    (
        lambda: F.alpha_dropout(rustgrad.ones(3, dtype=rustgrad.int64), 0.5, True),
        RuntimeError,
        "result type Float can't be cast to the desired output type Long",
    ),
    (
        lambda: F.feature_alpha_dropout(rustgrad.ones(3), 0.5, True),
        RuntimeError,
        "Feature dropout requires at least 2 dimensions in the input",
    ),
    (
        lambda: F.dropout2d(rustgrad.ones(3), 0.5, True),
        RuntimeError,
        "Feature dropout requires at least 2 dimensions in the input",
    ),
    (
        lambda: F.dropout1d(rustgrad.ones(1, 2, 3, 4), 0.5, True),
        RuntimeError,
        (
            "dropout1d: Expected 2D or 3D input, but received a 4D input. Note that dropout1d exists to provide "
            "channel-wise dropout on inputs with 1 spatial dimension, a channel dimension, and an optional batch "
            "dimension (i.e. 2D or 3D inputs)."
        ),
    ),
    (
        lambda: F.dropout1d(rustgrad.ones(2, 3, dtype=rustgrad.int64), 0.5, True),
        RuntimeError,
        "result type Float can't be cast to the desired output type Long",
    ),
    (lambda: F.dropout1d([1.0], 0.5, True), AttributeError, "'list' object has no attribute 'dim'"),
    (
        lambda: F.dropout3d(rustgrad.ones(2, 3), -0.1, True),
        ValueError,
        "dropout probability has to be between 0 and 1, but got -0.1",
    ),
    (
        lambda: F.feature_alpha_dropout(rustgrad.ones(2, 3), 0.5, 1),
        TypeError,
        "feature_alpha_dropout(): argument 'train' (position 3) must be bool, not int",
    ),
]


@pytest.mark.parametrize(("fn", "exc", "message"), ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors(fn, exc, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc) as info:
            fn()
    assert str(info.value) == message


def test_dropout_on_integers_draws_before_failing():
    rustgrad.manual_seed(5)
    with pytest.raises(RuntimeError):
        F.dropout2d(rustgrad.ones(2, 3, 4, 4, dtype=rustgrad.int64), 0.5, True)
    after = rustgrad.rand(2).tolist()
    rustgrad.manual_seed(5)
    rustgrad.empty(2, 3, 1, 1).bernoulli_(0.5)
    assert rustgrad.rand(2).tolist() == after


# ----- modules -----

MODULE_REPRS = [
    (lambda: nn.Softsign(), "Softsign()"),
    (lambda: nn.Tanhshrink(), "Tanhshrink()"),
    (lambda: nn.Softmin(), "Softmin(dim=None)"),
    (lambda: nn.Softmin(1), "Softmin(dim=1)"),
    (lambda: nn.Dropout1d(), "Dropout1d(p=0.5, inplace=False)"),
    (lambda: nn.Dropout2d(0.2, True), "Dropout2d(p=0.2, inplace=True)"),
    (lambda: nn.Dropout3d(p=0.1), "Dropout3d(p=0.1, inplace=False)"),
    (lambda: nn.AlphaDropout(0.2), "AlphaDropout(p=0.2, inplace=False)"),
    (lambda: nn.FeatureAlphaDropout(), "FeatureAlphaDropout(p=0.5, inplace=False)"),
    (lambda: nn.PairwiseDistance(p=1), "PairwiseDistance()"),
    (lambda: nn.CosineSimilarity(dim=0), "CosineSimilarity()"),
    (lambda: nn.KLDivLoss(reduction="batchmean"), "KLDivLoss()"),
    (lambda: nn.PoissonNLLLoss(), "PoissonNLLLoss()"),
    (lambda: nn.GaussianNLLLoss(), "GaussianNLLLoss()"),
    (lambda: nn.MarginRankingLoss(), "MarginRankingLoss()"),
    (lambda: nn.HingeEmbeddingLoss(), "HingeEmbeddingLoss()"),
    (lambda: nn.CosineEmbeddingLoss(), "CosineEmbeddingLoss()"),
    (lambda: nn.MultiLabelSoftMarginLoss(), "MultiLabelSoftMarginLoss()"),
    (lambda: nn.TripletMarginLoss(), "TripletMarginLoss()"),
    (
        lambda: nn.TripletMarginWithDistanceLoss(),
        "TripletMarginWithDistanceLoss(\n  (distance_function): PairwiseDistance()\n)",
    ),
    (
        lambda: nn.TripletMarginWithDistanceLoss(distance_function=nn.CosineSimilarity()),
        "TripletMarginWithDistanceLoss(\n  (distance_function): CosineSimilarity()\n)",
    ),
    (
        lambda: nn.TripletMarginWithDistanceLoss(distance_function=lambda a, b: a),
        "TripletMarginWithDistanceLoss()",
    ),
    (lambda: nn.Unflatten(1, (2, 3)), "Unflatten(dim=1, unflattened_size=(2, 3))"),
    (lambda: nn.Unflatten(-1, [2, -1]), "Unflatten(dim=-1, unflattened_size=[2, -1])"),
    (lambda: nn.ParameterList(), "ParameterList()"),
    (lambda: nn.ParameterDict(), "ParameterDict()"),
]


@pytest.mark.parametrize(("build", "expected"), MODULE_REPRS, ids=[r for _, r in MODULE_REPRS])
def test_module_reprs(build, expected):
    assert repr(build()) == expected


def test_module_defaults():
    assert (nn.PairwiseDistance().norm, nn.PairwiseDistance().eps, nn.PairwiseDistance().keepdim) == (
        2.0,
        1e-6,
        False,
    )
    assert (nn.CosineSimilarity().dim, nn.CosineSimilarity().eps) == (1, 1e-8)
    kl = nn.KLDivLoss()
    assert (kl.reduction, kl.log_target) == ("mean", False)
    pn = nn.PoissonNLLLoss()
    assert (pn.log_input, pn.full, pn.eps, pn.reduction) == (True, False, 1e-8, "mean")
    g = nn.GaussianNLLLoss()
    assert (g.full, g.eps, g.reduction) == (False, 1e-6, "mean")
    with pytest.raises(TypeError):
        nn.GaussianNLLLoss(True)  # keyword-only, as PyTorch
    assert nn.MarginRankingLoss().margin == 0.0 and nn.HingeEmbeddingLoss().margin == 1.0
    assert nn.CosineEmbeddingLoss().margin == 0.0
    tm = nn.TripletMarginLoss()
    assert (tm.margin, tm.p, tm.eps, tm.swap, tm.reduction) == (1.0, 2.0, 1e-6, False, "mean")
    tw = nn.TripletMarginWithDistanceLoss()
    assert isinstance(tw.distance_function, nn.PairwiseDistance) and (tw.margin, tw.swap) == (1.0, False)
    assert nn.MultiLabelSoftMarginLoss().weight is None
    assert nn.AlphaDropout().p == 0.5 and nn.Dropout1d().inplace is False
    with pytest.warns(UserWarning, match="reduction='sum' instead"):
        assert nn.KLDivLoss(size_average=False).reduction == "sum"


MODULE_ERRORS = [
    (
        lambda: nn.TripletMarginLoss(margin=0),
        ValueError,
        "TripletMarginLoss: expected margin to be greater than 0, got 0 instead",
    ),
    (
        lambda: nn.TripletMarginWithDistanceLoss(margin=-1),
        ValueError,
        "TripletMarginWithDistanceLoss: expected margin to be greater than 0, got -1 instead",
    ),
    (lambda: nn.Dropout2d(p=2), ValueError, "dropout probability has to be between 0 and 1, but got 2"),
    (lambda: nn.AlphaDropout(p=-1), ValueError, "dropout probability has to be between 0 and 1, but got -1"),
    (
        lambda: nn.Unflatten(1, (2, 2.0)),
        TypeError,
        "unflattened_size must be tuple of ints, but found element of type float at pos 1",
    ),
    (lambda: nn.Unflatten(1, 4), TypeError, "unflattened_size must be a tuple of ints, but found type int"),
    (
        lambda: nn.Unflatten(1, (2, 3))(rustgrad.ones(2, 4)),
        RuntimeError,
        "unflatten: Provided sizes [2, 3] don't multiply up to the size of dim 1 (4) in the input tensor",
    ),
    (lambda: nn.Unflatten(1, ())(rustgrad.ones(2, 4)), RuntimeError, "unflatten: sizes must be non-empty"),
    (
        lambda: nn.Unflatten(1, (3, -1))(rustgrad.ones(2, 4)),
        RuntimeError,
        "unflatten: Provided sizes [3, -1] don't multiply up to the size of dim 1 (4) in the input tensor",
    ),
    (
        lambda: nn.Unflatten(1, (0, -1))(rustgrad.ones(2, 4)),
        RuntimeError,
        "unflatten: Provided sizes [0, -1] don't multiply up to the size of dim 1 (4) in the input tensor",
    ),
    (
        lambda: nn.Unflatten(2, (2, 2))(rustgrad.ones(2, 4)),
        IndexError,
        "Dimension out of range (expected to be in range of [-2, 1], but got 2)",
    ),
    (lambda: nn.ParameterList()(1), RuntimeError, "ParameterList should not be called."),
    (lambda: nn.ParameterDict()(1), RuntimeError, "ParameterDict should not be called."),
    (
        lambda: nn.ParameterDict()[1],
        TypeError,
        (
            "Index given to ParameterDict cannot be used as a key as it is not a string (type is 'int'). "
            "Open an issue on github if you need non-string keys."
        ),
    ),
    (
        lambda: nn.ParameterDict().update(3),
        TypeError,
        "ParametersDict.update should be called with an iterable of key/value pairs, but got int",
    ),
    (
        lambda: nn.ParameterDict([("a", 1, 2)]),
        ValueError,
        "ParameterDict update sequence element #0 has length 3; 2 is required",
    ),
    (
        lambda: nn.ParameterList().extend(rustgrad.ones(2)),
        TypeError,
        "ParameterList.extend should be called with an iterable, but got Tensor",
    ),
    (lambda: nn.ParameterList()[0], IndexError, "index 0 is out of range"),
]


@pytest.mark.parametrize(
    ("fn", "exc", "message"), MODULE_ERRORS, ids=[str(i) for i in range(len(MODULE_ERRORS))]
)
def test_module_errors(fn, exc, message):
    with pytest.raises(exc) as info:
        fn()
    assert str(info.value) == message


def test_unflatten_views_and_inference_errors():
    x = rustgrad.arange(24.0).reshape(2, 4, 3).requires_grad_()
    for t in (x, x.transpose(0, 2), x[:, ::2]):
        out = nn.Unflatten(1, (2, -1))(t)
        assert out.grad_fn is not None and type(out.grad_fn).__name__ == "ViewBackward0"
        np.testing.assert_array_equal(val(out), val(t).reshape(t.shape[0], 2, -1, t.shape[2]))
    assert tuple(nn.Unflatten(0, (1, -1))(rustgrad.ones(0, 2)).shape) == (1, 0, 2)
    # ATen's internal errors, reported with a prefix (PyTorch appends its C++ backtrace to them)
    unexpected = [
        ((-1, -1), rustgrad.ones(2, 4), "only one dimension can be inferred"),
        ((-2, 2), rustgrad.ones(2, 4), "invalid shape dimension -2 at index 0 of shape [-2, 2]"),
        (
            (0, -1),
            rustgrad.ones(2, 0),
            (
                "cannot reshape tensor of 0 elements into shape [0, -1] because the "
                "unspecified dimension size -1 can be any value and is ambiguous"
            ),
        ),
    ]
    for sizes, t, message in unexpected:
        with pytest.raises(RuntimeError) as info:
            nn.Unflatten(1, sizes)(t)
        assert str(info.value).startswith("unflatten got an unexpected error:\n" + message)


def test_modules_call_their_functions():
    a, b, c = t64(X), t64(Y), t64(Z)
    s = t64(SIGN)
    pairs = [
        (nn.Softsign()(a), F.softsign(a)),
        (nn.Tanhshrink()(a), F.tanhshrink(a)),
        (nn.Softmin(0)(a), F.softmin(a, 0)),
        (nn.PairwiseDistance(p=1, keepdim=True)(a, b), F.pairwise_distance(a, b, 1, keepdim=True)),
        (nn.CosineSimilarity(0)(a, b), F.cosine_similarity(a, b, 0)),
        (
            nn.KLDivLoss(reduction="batchmean", log_target=True)(a, b),
            F.kl_div(a, b, reduction="batchmean", log_target=True),
        ),
        (
            nn.PoissonNLLLoss(log_input=False, full=True)(t64(POS), t64(POS)),
            F.poisson_nll_loss(t64(POS), t64(POS), log_input=False, full=True),
        ),
        (
            nn.GaussianNLLLoss(full=True, reduction="sum")(a, b, t64(POS)),
            F.gaussian_nll_loss(a, b, t64(POS), full=True, reduction="sum"),
        ),
        (nn.MarginRankingLoss(0.5)(a[:, 0], b[:, 0], s), F.margin_ranking_loss(a[:, 0], b[:, 0], s, 0.5)),
        (nn.HingeEmbeddingLoss(0.3)(a, t64(LABELS)), F.hinge_embedding_loss(a, t64(LABELS), 0.3)),
        (
            nn.CosineEmbeddingLoss(0.2, reduction="none")(a, b, s),
            F.cosine_embedding_loss(a, b, s, 0.2, reduction="none"),
        ),
        (
            nn.MultiLabelSoftMarginLoss(weight=t64(POS[0]))(a, t64(BITS)),
            F.multilabel_soft_margin_loss(a, t64(BITS), weight=t64(POS[0])),
        ),
        (
            nn.TripletMarginLoss(2.0, p=1, swap=True)(a, b, c),
            F.triplet_margin_loss(a, b, c, 2.0, p=1, swap=True),
        ),
        (
            nn.TripletMarginWithDistanceLoss(margin=0.5)(a, b, c),
            F.triplet_margin_with_distance_loss(a, b, c, margin=0.5),
        ),
        (nn.Unflatten(1, (2, -1))(a), a.reshape(3, 2, 2)),
        (nn.Unflatten(-1, (1, 4, 1))(a), a.reshape(3, 1, 4, 1)),
    ]
    for i, (got, expected) in enumerate(pairs):
        assert tuple(got.shape) == tuple(expected.shape), i
        np.testing.assert_allclose(val(got), val(expected), rtol=1e-14, err_msg=str(i))


def test_dropout_modules_follow_the_training_flag():
    x = rustgrad.randn(4, 3, 2)
    for cls, fn in (
        (nn.Dropout1d, F.dropout1d),
        (nn.AlphaDropout, F.alpha_dropout),
        (nn.FeatureAlphaDropout, F.feature_alpha_dropout),
    ):
        m = cls(0.4)
        rustgrad.manual_seed(8)
        out = m(x)
        rustgrad.manual_seed(8)
        np.testing.assert_allclose(val(out), val(fn(x, 0.4, True)))
        assert m.eval()(x) is x
    m = nn.Dropout2d(0.5, inplace=True)
    y = rustgrad.randn(2, 3, 4, 4)
    assert m(y) is y


def test_parameter_list():
    pl = nn.ParameterList([nn.Parameter(rustgrad.ones(2, 3)), rustgrad.zeros(2), 3])
    assert len(pl) == 3 and isinstance(pl[1], nn.Parameter) and pl[2] == 3 and pl[-1] == 3
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"]
    assert list(pl.state_dict()) == ["0", "1"]
    pl.append(nn.Parameter(rustgrad.ones(2, dtype=rustgrad.float64)))
    pl.extend([rustgrad.ones(1)])
    pl += [rustgrad.ones(1, 1)]
    assert len(pl) == 6 and [n for n, _ in pl.named_parameters()] == ["0", "1", "3", "4", "5"]
    assert repr(pl) == (
        "ParameterList(\n"
        "    (0): Parameter containing: [torch.float32 of size 2x3]\n"
        "    (1): Parameter containing: [torch.float32 of size 2]\n"
        "    (2): Object of type: int\n"
        "    (3): Parameter containing: [torch.float64 of size 2]\n"
        "    (4): Parameter containing: [torch.float32 of size 1]\n"
        "    (5): Parameter containing: [torch.float32 of size 1x1]\n"
        ")"
    )
    sub = pl[1:4]
    assert isinstance(sub, nn.ParameterList) and len(sub) == 3 and sub[0] is pl[1]
    new = nn.Parameter(rustgrad.ones(4))
    pl[0] = new
    assert pl[0] is new and next(iter(pl.parameters())) is new
    assert "0" not in dir(pl)
    assert [type(p).__name__ for p in pl][:3] == ["Parameter", "Parameter", "int"]


def test_parameter_dict():
    pd = nn.ParameterDict(
        {"b": nn.Parameter(rustgrad.ones(2, 3)), "a": rustgrad.zeros(2, dtype=rustgrad.float64), "c": "x"}
    )
    # a plain dict is added in sorted key order, as PyTorch does
    assert list(pd.keys()) == ["a", "b", "c"] and list(pd.state_dict()) == ["a", "b"]
    assert repr(pd) == (
        "ParameterDict(\n"
        "    (a): Parameter containing: [torch.DoubleTensor of size 2]\n"
        "    (b): Parameter containing: [torch.FloatTensor of size 2x3]\n"
        "    (c): Object of type: str\n"
        ")"
    )
    assert isinstance(pd["a"], nn.Parameter) and "a" in pd and "z" not in pd and len(pd) == 3
    pd["z"] = rustgrad.ones(1)
    assert list(pd) == ["a", "b", "c", "z"] and list(reversed(pd)) == ["z", "c", "b", "a"]
    assert pd.get("nope", 5) == 5 and pd.setdefault("c") == "x"
    k, v = pd.popitem()
    assert k == "z" and tuple(v.shape) == (1,) and "z" not in pd
    assert pd.pop("c") == "x" and list(pd.keys()) == ["a", "b"]
    copy = pd.copy()
    assert list(copy.keys()) == ["a", "b"] and copy["a"] is pd["a"]
    merged = pd | nn.ParameterDict({"q": rustgrad.ones(1)})
    assert list(merged.keys()) == ["a", "b", "q"]
    pd |= {"r": rustgrad.ones(1)}
    assert list(pd.keys()) == ["a", "b", "r"]
    assert [k for k, _ in pd.items()] == ["a", "b", "r"] and len(list(pd.values())) == 3
    assert list(pd.fromkeys(["x", "y"], 1.0).keys()) == ["x", "y"]
    del pd["a"]
    assert list(pd.keys()) == ["b", "r"] and [n for n, _ in pd.named_parameters()] == ["b", "r"]
    pd.clear()
    assert len(pd) == 0 and list(pd.parameters()) == []


def test_parameter_containers_in_a_model_state_dict():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.plist = nn.ParameterList([rustgrad.ones(2), rustgrad.ones(3)])
            self.pdict = nn.ParameterDict({"w": rustgrad.ones(2, 2)})

        def forward(self, x):
            return x * self.plist[0] @ self.pdict["w"]

    m = M()
    assert list(m.state_dict()) == ["plist.0", "plist.1", "pdict.w"]
    m.load_state_dict(
        {"plist.0": rustgrad.full((2,), 2.0), "plist.1": rustgrad.zeros(3), "pdict.w": rustgrad.eye(2)}
    )
    assert m.plist[0].tolist() == [2.0, 2.0] and m(rustgrad.ones(2)).tolist() == [2.0, 2.0]


# ----- nn.utils: parameter vectors, clipping -----


def test_parameters_to_vector_and_back():
    m = nn.Linear(3, 2)
    vec = nn.utils.parameters_to_vector(m.parameters())
    assert tuple(vec.shape) == (8,) and name(vec) == "CatBackward0"
    np.testing.assert_allclose(val(vec), np.concatenate([val(m.weight).ravel(), val(m.bias)]))
    weight = m.weight
    nn.utils.vector_to_parameters(rustgrad.arange(8.0), m.parameters())
    assert m.weight is weight
    assert m.weight.tolist() == [[0, 1, 2], [3, 4, 5]] and m.bias.tolist() == [6, 7]
    with pytest.raises(TypeError, match=r"^expected torch.Tensor, but got: list$"):
        nn.utils.vector_to_parameters([1.0], m.parameters())


def test_clip_grad_value_and_norm():
    p = nn.Parameter(rustgrad.zeros(4))
    p.grad = rustgrad.tensor([-3.0, -0.5, 0.5, 3.0])
    assert nn.utils.clip_grad_value_([p], 1.0) is None
    assert p.grad.tolist() == [-1.0, -0.5, 0.5, 1.0]
    p.grad = rustgrad.tensor([3.0, 4.0, 0.0, 0.0])
    total = nn.utils.clip_grad_norm_(p, 1.0)
    assert math.isclose(total.item(), 5.0) and np.allclose(val(p.grad), [0.6, 0.8, 0, 0], atol=1e-6)


# ----- nn.utils.parametrize -----


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).mT

    def right_inverse(self, A):
        return A.triu()


class Double(nn.Module):
    def forward(self, X):
        return 2 * X

    def right_inverse(self, A):
        return A / 2


class Split(nn.Module):
    def forward(self, a, b):
        return a + b

    def right_inverse(self, w):
        return w, rustgrad.zeros_like(w)


def test_register_parametrization():
    P = nn.utils.parametrize
    m = nn.Linear(3, 3)
    w0 = val(m.weight)
    weight = m.weight
    P.register_parametrization(m, "weight", Symmetric())
    assert type(m).__name__ == "ParametrizedLinear" and isinstance(m, nn.Linear)
    assert P.type_before_parametrizations(m) is nn.Linear
    assert P.is_parametrized(m) and P.is_parametrized(m, "weight") and not P.is_parametrized(m, "bias")
    assert m.parametrizations.weight.original is weight  # the same Parameter, for the optimizers
    np.testing.assert_allclose(val(m.weight), np.triu(w0) + np.triu(w0, 1).T)
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original"]
    assert [n for n, _ in m.named_parameters()] == ["bias", "parametrizations.weight.original"]
    assert repr(m) == (
        "ParametrizedLinear(\n"
        "  in_features=3, out_features=3, bias=True\n"
        "  (parametrizations): ModuleDict(\n"
        "    (weight): ParametrizationList(\n"
        "      (0): Symmetric()\n"
        "    )\n"
        "  )\n"
        ")"
    )
    # gradients reach the original
    m(rustgrad.ones(2, 3)).sum().backward()
    assert weight.grad is not None and np.allclose(np.tril(val(weight.grad), -1), 0)
    # assignment goes through right_inverse
    A = np.arange(9.0).reshape(3, 3)
    A = A + A.T
    m.weight = rustgrad.tensor(A, dtype=rustgrad.float32)
    np.testing.assert_allclose(val(m.weight), A)
    np.testing.assert_allclose(val(weight), np.triu(A))
    # a second parametrization chains
    P.register_parametrization(m, "weight", Double())
    np.testing.assert_allclose(val(m.weight), 2 * A)
    assert len(m.parametrizations.weight) == 2
    # cached: computed once
    with P.cached():
        assert m.weight is m.weight
    assert m.weight is not m.weight
    # removal
    P.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and not hasattr(m, "parametrizations")
    assert m.weight is weight and isinstance(m.weight, nn.Parameter)
    np.testing.assert_allclose(val(m.weight), 2 * A)
    assert list(m.state_dict()) == ["bias", "weight"]


def test_remove_parametrizations_leaving_the_original():
    P = nn.utils.parametrize
    m = nn.Linear(2, 2)
    P.register_parametrization(m, "weight", Double())
    before = val(m.parametrizations.weight.original)
    P.remove_parametrizations(m, "weight", leave_parametrized=False)
    np.testing.assert_allclose(val(m.weight), before)


def test_parametrization_with_several_originals_and_buffers():
    P = nn.utils.parametrize
    m = nn.Linear(2, 2)
    w = val(m.weight)
    P.register_parametrization(m, "weight", Split(), unsafe=True)
    assert list(m.state_dict()) == [
        "bias",
        "parametrizations.weight.original0",
        "parametrizations.weight.original1",
    ]
    np.testing.assert_allclose(val(m.weight), w)
    m.weight = rustgrad.ones(2, 2)
    assert m.parametrizations.weight.original1.tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match="Cannot leave unparametrized"):
        P.remove_parametrizations(m, "weight", leave_parametrized=False)
    P.remove_parametrizations(m, "weight")
    assert m.weight.tolist() == [[1, 1], [1, 1]] and isinstance(m.weight, nn.Parameter)
    # a buffer
    m.register_buffer("scale", rustgrad.ones(2))
    P.register_parametrization(m, "scale", Double())
    assert list(m.state_dict())[-1] == "parametrizations.scale.original"
    assert m.scale.tolist() == [1.0, 1.0] and list(m.parametrizations.scale.buffers())


def test_parametrization_errors():
    P = nn.utils.parametrize
    m = nn.Linear(2, 3)

    class Flat(nn.Module):
        def forward(self, x):
            return x.reshape(-1)

    with pytest.raises(
        ValueError, match="Registering a parametrization may not change the shape of the tensor"
    ):
        P.register_parametrization(m, "weight", Flat())
    with pytest.raises(
        ValueError, match="does not have a parameter, a buffer, or a parametrized element with name 'nope'"
    ):
        P.register_parametrization(m, "nope", Double())
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        P.remove_parametrizations(m, "weight")
    P.register_parametrization(m, "weight", Double())
    with pytest.raises(
        RuntimeError, match="Serialization of parametrized modules is only supported through state_dict"
    ):
        pickle.dumps(m)
    with pytest.raises(KeyError, match="attribute 'weight' already exists"):
        m.weight = nn.Parameter(rustgrad.ones(3, 2))


def test_transfer_parametrizations():
    P = nn.utils.parametrize
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    P.register_parametrization(a, "weight", Double())
    P.transfer_parametrizations_and_params(a, b)
    assert P.is_parametrized(b, "weight")
    assert b.parametrizations.weight.original is a.parametrizations.weight.original
    np.testing.assert_allclose(val(b.weight), val(a.weight))


# ----- weight_norm, spectral_norm, orthogonal -----


def test_weight_norm_parametrization():
    m = nn.Linear(4, 3)
    w = val(m.weight)
    nn.utils.parametrizations.weight_norm(m)
    assert list(m.state_dict()) == [
        "bias",
        "parametrizations.weight.original0",
        "parametrizations.weight.original1",
    ]
    g, _v = m.parametrizations.weight.original0, m.parametrizations.weight.original1
    assert tuple(g.shape) == (3, 1)
    np.testing.assert_allclose(val(g), np.linalg.norm(w, axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(val(m.weight), w, rtol=1e-5, atol=1e-6)
    with rustgrad.no_grad():
        g.mul_(2.0)
    np.testing.assert_allclose(val(m.weight), 2 * w, rtol=1e-5, atol=1e-6)
    assert "(0): _WeightNorm()" in repr(m)
    m2 = nn.utils.parametrizations.weight_norm(nn.Linear(4, 3), dim=None)
    assert tuple(m2.parametrizations.weight.original0.shape) == ()
    m3 = nn.utils.parametrizations.weight_norm(nn.Linear(4, 3), dim=1)
    assert tuple(m3.parametrizations.weight.original0.shape) == (1, 4)


def test_weight_norm_hook_and_compat_loading():
    with pytest.warns(FutureWarning, match="`torch.nn.utils.weight_norm` is deprecated"):
        old = nn.utils.weight_norm(nn.Linear(4, 3))
    assert list(old.state_dict()) == ["bias", "weight_g", "weight_v"]
    x = rustgrad.randn(2, 4)
    with rustgrad.no_grad():
        old.weight_g.mul_(3.0)
    y = old(x)
    np.testing.assert_allclose(val(old.weight), 3 * val(old.weight_v), rtol=1e-5)  # v's rows have norm g/3
    # an old checkpoint loads into the parametrized version
    new = nn.utils.parametrizations.weight_norm(nn.Linear(4, 3))
    new.load_state_dict(old.state_dict())
    np.testing.assert_allclose(val(new(x)), val(y), rtol=1e-5, atol=1e-6)
    with (
        pytest.raises(
            RuntimeError, match="Cannot register two weight_norm hooks on the same parameter weight"
        ),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        nn.utils.weight_norm(old)
    nn.utils.remove_weight_norm(old)
    assert list(old.state_dict()) == ["bias", "weight"] and isinstance(old.weight, nn.Parameter)
    np.testing.assert_allclose(val(old(x)), val(y), rtol=1e-6)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found in Linear"):
        nn.utils.remove_weight_norm(old)


def test_weight_norm_gradcheck():
    for dim in (0, 1, None):
        m = nn.utils.parametrizations.weight_norm(nn.Linear(4, 3).double(), dim=dim)
        wn = m.parametrizations.weight[0]
        g = np.abs(val(m.parametrizations.weight.original0)) + 0.5
        v = RNG.standard_normal((3, 4))
        assert gradcheck(lambda g_, v_, wn=wn: wn(g_, v_), [g, v])
        if rustgrad.__name__ == "rustgrad" or dim is None:
            # PyTorch's fused WeightNormInterfaceBackward0 (dim 0 or the last) fails its own
            # gradgradcheck on the CPU; rustgrad's composite has the exact second derivative.
            assert gradgradcheck(lambda g_, v_, wn=wn: wn(g_, v_), [g, v])


def _power_iteration(w, u, v, n):
    for _ in range(n):
        u = w @ v
        u = u / max(np.linalg.norm(u), 1e-12)
        v = w.T @ u
        v = v / max(np.linalg.norm(v), 1e-12)
    return u, v


def test_spectral_norm_parametrization_draws_and_values():
    rustgrad.manual_seed(21)
    m = nn.utils.parametrizations.spectral_norm(nn.Linear(5, 4))
    rustgrad.manual_seed(21)
    lin = nn.Linear(5, 4)
    w = val(lin.weight)
    u0 = val(rustgrad.empty(4).normal_(0, 1))
    v0 = val(rustgrad.empty(5).normal_(0, 1))
    # 15 iterations when built, one more for the forward run by the registration's check
    u, v = _power_iteration(w, u0 / np.linalg.norm(u0), v0 / np.linalg.norm(v0), 16)
    sn = m.parametrizations.weight[0]
    np.testing.assert_allclose(val(sn._u), u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(val(sn._v), v, rtol=1e-5, atol=1e-6)
    assert list(m.state_dict()) == [
        "bias",
        "parametrizations.weight.original",
        "parametrizations.weight.0._u",
        "parametrizations.weight.0._v",
    ]
    out = m.weight  # one more iteration (training mode)
    u, v = _power_iteration(w, u, v, 1)
    np.testing.assert_allclose(val(out), w / (u @ w @ v), rtol=1e-5)
    np.testing.assert_allclose(u @ w @ v, np.linalg.svd(w, compute_uv=False)[0], rtol=1e-4)
    assert name(out) == "DivBackward0"
    m.eval()
    before = val(sn._u)
    m.weight  # noqa: B018 (no power iteration in eval mode)
    np.testing.assert_array_equal(val(sn._u), before)


def test_spectral_norm_parametrization_gradcheck_and_errors():
    m = nn.utils.parametrizations.spectral_norm(nn.Linear(4, 3).double()).eval()
    sn = m.parametrizations.weight[0]
    w = RNG.standard_normal((3, 4))
    assert gradcheck(lambda w_: sn(w_), [w])
    assert gradgradcheck(lambda w_: sn(w_), [w])
    with pytest.raises(
        IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\] but got 2\)"
    ):
        nn.utils.parametrizations.spectral_norm(nn.Linear(2, 2), dim=2)
    with pytest.raises(
        ValueError, match="Expected n_power_iterations to be positive, but got n_power_iterations=0"
    ):
        nn.utils.parametrizations.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(ValueError, match="has no parameter or buffer with name 'nope'"):
        nn.utils.parametrizations.spectral_norm(nn.Linear(2, 2), "nope")


def test_spectral_norm_hook():
    rustgrad.manual_seed(3)
    m = nn.utils.spectral_norm(nn.Linear(5, 4), n_power_iterations=2)
    rustgrad.manual_seed(3)
    w = val(nn.Linear(5, 4).weight)
    u0 = val(rustgrad.empty(4).normal_(0, 1))
    v0 = val(rustgrad.empty(5).normal_(0, 1))
    np.testing.assert_allclose(val(m.weight_u), u0 / np.linalg.norm(u0), rtol=1e-6)
    np.testing.assert_allclose(val(m.weight_v), v0 / np.linalg.norm(v0), rtol=1e-6)
    sd = m.state_dict()
    assert list(sd) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert sd._metadata[""] == {"version": 1, "spectral_norm": {"weight.version": 1}}
    m(rustgrad.ones(1, 5))
    # the hook's v update comes first, from the current u
    u, v = u0 / np.linalg.norm(u0), v0
    for _ in range(2):
        v = w.T @ u
        v /= np.linalg.norm(v)
        u = w @ v
        u /= np.linalg.norm(u)
    np.testing.assert_allclose(val(m.weight_u), u, rtol=1e-5)
    np.testing.assert_allclose(val(m.weight), w / (u @ w @ v), rtol=1e-5)
    assert name(m.weight) == "DivBackward0"
    # a state dict round trip, then removal
    m2 = nn.utils.spectral_norm(nn.Linear(5, 4), n_power_iterations=2)
    m2.load_state_dict(m.state_dict())
    np.testing.assert_allclose(val(m2.weight_u), val(m.weight_u))
    with pytest.raises(
        RuntimeError, match="Cannot register two spectral_norm hooks on the same parameter weight"
    ):
        nn.utils.spectral_norm(m)
    nn.utils.remove_spectral_norm(m)
    assert list(m.state_dict()) == ["bias", "weight"] and not m._forward_pre_hooks
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found in Linear"):
        nn.utils.remove_spectral_norm(m)


def test_spectral_norm_hook_loads_a_version_0_checkpoint():
    """A checkpoint without ``weight_v`` (and with ``weight``) gets a ``v`` solved from ``u`` and sigma."""
    m = nn.utils.spectral_norm(nn.Linear(3, 4).double())
    m(rustgrad.ones(1, 3, dtype=rustgrad.float64))
    sd = m.state_dict()
    old = {k: v for k, v in sd.items() if k != "weight_v"}
    old["weight"] = m.weight.detach()
    fresh = nn.utils.spectral_norm(nn.Linear(3, 4).double())
    fresh.load_state_dict(old)
    fresh.eval()
    np.testing.assert_allclose(val(fresh.weight_u), val(sd["weight_u"]))
    sigma = val(sd["weight_orig"])[0, 0] / val(old["weight"])[0, 0]
    u, w, v = val(fresh.weight_u), val(fresh.weight_orig), val(fresh.weight_v)
    np.testing.assert_allclose(u @ w @ v, sigma, rtol=1e-10)


@pytest.mark.parametrize("orthogonal_map", ["matrix_exp", "cayley", "householder"])
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3)])
def test_orthogonal(orthogonal_map, shape):
    m = nn.Linear(shape[1], shape[0]).double()
    nn.utils.parametrizations.orthogonal(m, orthogonal_map=orthogonal_map)
    Q = val(m.weight)
    small = min(shape)
    gram = Q @ Q.T if shape[0] < shape[1] else Q.T @ Q
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)
    assert list(m.state_dict()) == [
        "bias",
        "parametrizations.weight.original",
        "parametrizations.weight.0.base",
    ]
    # assigning an orthogonal matrix stores it exactly
    target = np.linalg.qr(RNG.standard_normal((max(shape), small)))[0]
    target = target.T if shape[0] < shape[1] else target
    m.weight = t64(target)
    np.testing.assert_allclose(val(m.weight), target, atol=1e-12)
    # gradients through the map from the unconstrained original (no base)
    m2 = nn.utils.parametrizations.orthogonal(
        nn.Linear(shape[1], shape[0]).double(), orthogonal_map=orthogonal_map, use_trivialization=False
    )
    orth = m2.parametrizations.weight[0]
    A = RNG.standard_normal(shape) * 0.5
    if orthogonal_map == "householder":
        # the diagonal's signs, read through int(): entries of magnitude 1.25, away from its jumps
        idx = np.arange(min(shape))
        A[idx, idx] = np.where(RNG.uniform(size=idx.size) > 0.5, 1.25, -1.25)
    gram = val(orth(t64(A)))
    gram = gram @ gram.T if shape[0] < shape[1] else gram.T @ gram
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)
    assert gradcheck(lambda a: orth(a), [A])
    assert gradgradcheck(lambda a: orth(a), [A])


def test_orthogonal_errors_and_defaults():
    with pytest.raises(
        ValueError, match="Expected a matrix or batch of matrices. Got a tensor of 1 dimensions."
    ):
        nn.utils.parametrizations.orthogonal(nn.Linear(2, 2), "bias")
    with pytest.raises(
        ValueError, match='orthogonal_map has to be one of "matrix_exp", "cayley", "householder". Got: x'
    ):
        nn.utils.parametrizations.orthogonal(nn.Linear(2, 2), orthogonal_map="x")
    assert (
        nn.utils.parametrizations.orthogonal(nn.Linear(3, 3)).parametrizations.weight[0].orthogonal_map.name
        == "matrix_exp"
    )
    assert (
        nn.utils.parametrizations.orthogonal(nn.Linear(3, 2)).parametrizations.weight[0].orthogonal_map.name
        == "householder"
    )
    m = nn.utils.parametrizations.orthogonal(
        nn.Linear(3, 3), orthogonal_map="cayley", use_trivialization=False
    )
    with pytest.raises(NotImplementedError, match="It is not possible to assign to the matrix exponential"):
        m.weight = rustgrad.eye(3)


# ----- against PyTorch itself, where it is installed -----


def _torch():
    torch = pytest.importorskip("torch")
    if torch is rustgrad:
        pytest.skip("running with rustgrad replaced by torch")
    return torch


def _graph_names(t) -> list:
    """The node names of ``t``'s graph, breadth first (nodes kept alive while walking)."""
    out, seen = [], []
    queue = [t.grad_fn] if t.grad_fn is not None else []
    while queue:
        fn = queue.pop(0)
        if fn is None or any(fn == s for s in seen):
            continue
        seen.append(fn)
        out.append(type(fn).__name__)
        queue.extend(f for f, _ in fn.next_functions)
    return out


def _run(lib, fn, arrays, kwargs):
    """``fn`` of ``lib.nn.functional`` on fresh leaves: values, dtype, graph names and gradients, or the error."""
    leaves = [
        lib.tensor(a, requires_grad=bool(np.issubdtype(a.dtype, np.floating)))
        if isinstance(a, np.ndarray)
        else a
        for a in arrays
    ]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = getattr(lib.nn.functional, fn)(*leaves, **kwargs)
    except Exception as e:  # noqa: BLE001 (the exception is the result compared)
        return type(e).__name__, str(e)
    result = {
        "value": np.asarray(out.detach().tolist()),
        "dtype": str(out.dtype),
        "top": name(out),
        "graph": _graph_names(out),
        "grads": [],
    }
    if out.requires_grad:
        out.backward(lib.ones_like(out))
        result["grads"] = [
            None if not isinstance(t, lib.Tensor) or t.grad is None else np.asarray(t.grad.tolist())
            for t in leaves
        ]
    return result


# Nodes rustgrad's Python layer cannot record yet (they need the Rust core): PyTorch's scalar overloads
# (``AddBackward1`` for ``tensor + scalar`` in C++, ``SubBackward1``, ``MulBackward1``), ``NormBackward1``
# (``at::norm`` with a dim) and ``XlogyBackward0``. The composites record the ``Tensor``-overload
# equivalents instead; the values and gradients are the same.
RENAMED: dict[str, str] = {}

A3 = np.array([[0.3, -1.2, 0.8, 2.0], [1.1, 0.4, -0.6, 0.2], [-0.7, 0.9, 1.5, -0.3]])
B3 = np.array([[1.0, 0.5, -0.4, 0.6], [-0.2, 1.3, 0.7, -1.1], [0.8, -0.5, 0.2, 0.9]])
C3 = np.array([[0.1, 0.2, 0.3, -0.4], [0.9, -0.8, 0.1, 0.5], [-1.0, 0.4, 0.6, 0.7]])
P3 = np.abs(B3) + 0.1
S3 = np.array([1.0, -1.0, 1.0])
I3 = np.ones((3, 4), dtype=np.int64)

TORCH_CASES = [
    ("normalize", [A3], {}),
    ("normalize", [A3], {"p": 1, "dim": 0}),
    ("normalize", [A3], {"dim": (0, 1)}),
    ("normalize", [np.zeros((2, 3))], {}),
    ("normalize", [np.array(1.0)], {}),
    ("normalize", [I3], {}),
    ("cosine_similarity", [A3, B3], {}),
    ("cosine_similarity", [A3, B3[:1]], {}),
    ("cosine_similarity", [A3.astype(np.float32), B3], {}),
    ("cosine_similarity", [A3, I3], {}),
    ("cosine_similarity", [I3, I3], {}),
    ("cosine_similarity", [A3, B3], {"dim": 3}),
    ("cosine_similarity", [np.array(1.0), np.array(-2.0)], {"dim": 0}),
    ("cosine_similarity", [A3, [1.0]], {}),
    ("pairwise_distance", [A3, B3], {}),
    ("pairwise_distance", [A3, B3], {"keepdim": True, "p": 1}),
    ("pairwise_distance", [A3, B3[0]], {"p": math.inf}),
    ("pairwise_distance", [A3[0], B3[0]], {"p": 3}),
    ("pairwise_distance", [np.array(1.0), np.array(3.0)], {}),
    ("pairwise_distance", [I3, I3], {}),
    ("pairwise_distance", [A3, np.ones((3, 5))], {}),
    ("kl_div", [A3, P3], {}),
    ("kl_div", [A3, P3], {"reduction": "sum"}),
    ("kl_div", [A3, P3], {"reduction": "none"}),
    ("kl_div", [A3, P3], {"reduction": "batchmean"}),
    ("kl_div", [A3, B3], {"reduction": "batchmean", "log_target": True}),
    ("kl_div", [A3, np.where(P3 > 0.5, P3, 0.0)], {"reduction": "none"}),
    ("kl_div", [A3.astype(np.float32), P3], {"reduction": "sum"}),
    ("kl_div", [A3, P3[0]], {"reduction": "sum"}),
    ("kl_div", [A3, P3], {"size_average": False, "reduction": "batchmean"}),
    ("kl_div", [A3, P3], {"reduction": "bad"}),
    ("kl_div", [I3, I3], {}),
    ("poisson_nll_loss", [A3, P3 * 3], {}),
    ("poisson_nll_loss", [P3, P3 * 3], {"log_input": False, "reduction": "sum"}),
    ("poisson_nll_loss", [P3, np.round(P3 * 3)], {"log_input": False, "full": True, "reduction": "none"}),
    ("poisson_nll_loss", [A3, P3[0]], {"reduction": "none"}),
    ("poisson_nll_loss", [I3, I3], {}),
    ("poisson_nll_loss", [A3, P3], {"reduction": "x"}),
    ("gaussian_nll_loss", [A3, B3, P3], {}),
    ("gaussian_nll_loss", [A3, B3, P3], {"full": True, "reduction": "none"}),
    ("gaussian_nll_loss", [A3, B3, P3[:, 0]], {"reduction": "sum"}),
    ("gaussian_nll_loss", [A3, B3, P3[:, :1]], {}),
    ("gaussian_nll_loss", [A3, B3, 0.7], {}),
    ("gaussian_nll_loss", [A3, B3, P3 * 1e-9], {}),
    ("gaussian_nll_loss", [A3, B3, -P3], {}),
    ("gaussian_nll_loss", [A3, B3, P3[:2]], {}),
    ("margin_ranking_loss", [A3[:, 0], B3[:, 0], S3], {"margin": 0.3}),
    ("margin_ranking_loss", [A3[:, 0], B3[:, 0], S3], {"reduction": "none"}),
    ("margin_ranking_loss", [A3, B3, S3], {}),
    ("margin_ranking_loss", [A3[:, 0], B3[:, 0], np.ones(4)], {}),
    ("margin_ranking_loss", [I3[0], I3[0], I3[0]], {}),
    ("hinge_embedding_loss", [A3, np.sign(B3)], {"margin": 0.5}),
    ("hinge_embedding_loss", [A3, np.sign(B3[0])], {"reduction": "none"}),
    ("hinge_embedding_loss", [A3, np.ones((3, 5))], {}),
    ("hinge_embedding_loss", [I3, I3], {"reduction": "sum"}),
    ("hinge_embedding_loss", [I3, I3], {}),
    ("cosine_embedding_loss", [A3, B3, S3], {"margin": 0.1}),
    ("cosine_embedding_loss", [A3, B3, S3], {"reduction": "none", "margin": -0.5}),
    ("cosine_embedding_loss", [A3[0], B3[0], np.array(-1.0)], {}),
    ("cosine_embedding_loss", [A3[0], B3[0], np.array([1.0])], {}),
    ("cosine_embedding_loss", [A3, B3, S3[:2]], {}),
    ("cosine_embedding_loss", [I3, I3, I3[:, 0]], {}),
    ("triplet_margin_loss", [A3, B3, C3], {}),
    ("triplet_margin_loss", [A3, B3, C3], {"swap": True, "p": 1, "margin": 2.0, "reduction": "none"}),
    ("triplet_margin_loss", [A3[0], B3[0], C3[0]], {}),
    ("triplet_margin_loss", [A3, B3, C3[0]], {}),
    ("triplet_margin_loss", [A3, B3, C3], {"margin": 0}),
    ("triplet_margin_with_distance_loss", [A3, B3, C3], {}),
    ("triplet_margin_with_distance_loss", [A3, B3, C3], {"swap": True, "margin": 0.5, "reduction": "sum"}),
    ("triplet_margin_with_distance_loss", [A3, B3, C3[0]], {}),
    ("softsign", [A3], {}),
    ("softsign", [I3], {}),
    ("tanhshrink", [A3], {}),
    ("softmin", [A3], {"dim": 1}),
    ("softmin", [A3], {}),
    ("softmin", [I3], {"dim": 0}),
    ("multilabel_soft_margin_loss", [A3, (B3 > 0).astype(float)], {}),
    ("multilabel_soft_margin_loss", [A3, (B3 > 0).astype(float), P3[0]], {"reduction": "none"}),
    ("multilabel_soft_margin_loss", [A3[0], (B3[0] > 0).astype(float)], {"reduction": "sum"}),
]
# non-tensor arguments, in each position
for _fn, _n in [
    ("normalize", 1),
    ("softsign", 1),
    ("tanhshrink", 1),
    ("softmin", 1),
    ("kl_div", 2),
    ("poisson_nll_loss", 2),
    ("gaussian_nll_loss", 3),
    ("margin_ranking_loss", 3),
    ("hinge_embedding_loss", 2),
    ("cosine_embedding_loss", 3),
    ("triplet_margin_loss", 3),
    ("triplet_margin_with_distance_loss", 3),
    ("cosine_similarity", 2),
    ("pairwise_distance", 2),
    ("multilabel_soft_margin_loss", 2),
]:
    for _i in range(_n):
        _args = [A3] * _n
        _args[_i] = [1.0, 2.0]
        TORCH_CASES.append((_fn, _args, {}))


@pytest.mark.parametrize(
    ("fn", "arrays", "kwargs"), TORCH_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(TORCH_CASES)]
)
def test_functional_against_pytorch(fn, arrays, kwargs):
    torch = _torch()
    ours, theirs = _run(rustgrad, fn, arrays, kwargs), _run(torch, fn, arrays, kwargs)
    if isinstance(theirs, tuple) or isinstance(ours, tuple):
        assert ours == theirs
        return
    assert ours["dtype"] == theirs["dtype"]
    np.testing.assert_allclose(ours["value"], theirs["value"], rtol=1e-6, atol=1e-7)
    assert ours["top"] == RENAMED.get(theirs["top"], theirs["top"])
    if "XlogyBackward0" not in theirs["graph"]:
        assert ours["graph"] == [RENAMED.get(n, n) for n in theirs["graph"]]
    assert len(ours["grads"]) == len(theirs["grads"])
    for g_ours, g_theirs in zip(ours["grads"], theirs["grads"]):
        assert (g_ours is None) == (g_theirs is None)
        if g_ours is not None:
            np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-6, atol=1e-7)


def _seeded_run(lib, build):
    lib.manual_seed(3)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = build(lib)
    except Exception as e:  # noqa: BLE001 (the exception is the result compared)
        return type(e).__name__, str(e), lib.rand(2).tolist()
    return np.asarray(out.detach().tolist()), name(out), _graph_names(out), lib.rand(2).tolist()


_D = np.random.default_rng(5).standard_normal((4, 5, 3, 2))
DROPOUT_CASES = [
    (
        f"{fn}-p{p}-{dt}",
        lambda L, fn=fn, p=p, dt=dt, shape=shape: getattr(L.nn.functional, fn)(
            L.tensor(_D.reshape(shape), dtype=getattr(L, dt), requires_grad=True), p, True
        ),
    )
    for fn, shape in [
        ("alpha_dropout", (4, 5, 3, 2)),
        ("feature_alpha_dropout", (4, 5, 3, 2)),
        ("dropout1d", (4, 5, 6)),
        ("dropout1d", (5, 24)),
        ("dropout2d", (4, 5, 3, 2)),
        ("dropout3d", (4, 5, 3, 2, 1)),
        ("dropout3d", (4, 5, 3, 2)),
    ]
    for p in (0.0, 0.2, 0.5, 1.0)
    for dt in ("float32", "float64")
] + [
    ("alpha-transposed", lambda L: L.nn.functional.alpha_dropout(L.tensor(_D[0, :, :, 0]).t(), 0.3, True)),
    ("alpha-eval", lambda L: L.nn.functional.alpha_dropout(L.tensor(_D), 0.3)),
    ("alpha-inplace", lambda L: L.nn.functional.alpha_dropout(L.tensor(_D) * 1, 0.3, True, True)),
    ("falpha-inplace", lambda L: L.nn.functional.feature_alpha_dropout(L.tensor(_D) * 1, 0.3, True, True)),
    ("d2-inplace", lambda L: L.nn.functional.dropout2d(L.tensor(_D) * 1, 0.3, True, True)),
    ("d1-inplace-unbatched", lambda L: L.nn.functional.dropout1d(L.tensor(_D[0, 0]) * 1, 0.3, True, True)),
    ("alpha-int", lambda L: L.nn.functional.alpha_dropout(L.ones(3, 4, dtype=L.int64), 0.3, True)),
    ("d1-int", lambda L: L.nn.functional.dropout1d(L.ones(3, 4, dtype=L.int64), 0.3, True)),
    ("d1-int-p1", lambda L: L.nn.functional.dropout1d(L.ones(3, 4, dtype=L.int64), 1.0, True)),
    ("falpha-1d", lambda L: L.nn.functional.feature_alpha_dropout(L.ones(4), 0.3, True)),
    ("falpha-1d-eval", lambda L: L.nn.functional.feature_alpha_dropout(L.ones(4), 0.3, False)),
    ("d2-1d", lambda L: L.nn.functional.dropout2d(L.ones(4), 0.3, True)),
    ("d2-2d", lambda L: L.nn.functional.dropout2d(L.ones(4, 3), 0.3, True)),
    ("d2-5d", lambda L: L.nn.functional.dropout2d(L.ones(2, 4, 3, 1, 1), 0.3, True)),
    ("d3-1d", lambda L: L.nn.functional.dropout3d(L.ones(4), 0.3, True)),
    ("d1-4d", lambda L: L.nn.functional.dropout1d(L.ones(4, 1, 1, 1), 0.3, True)),
    ("d1-p", lambda L: L.nn.functional.dropout1d(L.ones(4, 1), 1.3, True)),
    ("d1-train", lambda L: L.nn.functional.dropout1d(L.ones(4, 1), 0.3, "yes")),
    ("falpha-list", lambda L: L.nn.functional.feature_alpha_dropout([1.0], 0.3, True)),
    ("d2-list", lambda L: L.nn.functional.dropout2d([1.0], 0.3, True)),
    ("d2-empty", lambda L: L.nn.functional.dropout2d(L.ones(0, 3, 2), 0.3, True)),
    ("gumbel", lambda L: L.nn.functional.gumbel_softmax(L.tensor(_D[0, 0], requires_grad=True), tau=0.5)),
    (
        "gumbel-hard",
        lambda L: L.nn.functional.gumbel_softmax(L.tensor(_D[0, 0], requires_grad=True), hard=True, dim=0),
    ),
    (
        "gumbel-hard-T",
        lambda L: L.nn.functional.gumbel_softmax(L.tensor(_D[0, 0], requires_grad=True).t(), hard=True),
    ),
    ("module-Dropout2d", lambda L: L.nn.Dropout2d(0.4)(L.tensor(_D))),
    ("module-AlphaDropout", lambda L: L.nn.AlphaDropout(0.4)(L.tensor(_D))),
    ("module-FeatureAlphaDropout", lambda L: L.nn.FeatureAlphaDropout(0.4)(L.tensor(_D))),
]


@pytest.mark.parametrize(("case", "build"), DROPOUT_CASES, ids=[c[0] for c in DROPOUT_CASES])
def test_seeded_dropout_against_pytorch(case, build):
    torch = _torch()
    ours, theirs = _seeded_run(rustgrad, build), _seeded_run(torch, build)
    if isinstance(theirs[0], str) or isinstance(ours[0], str):
        assert ours == theirs
        return
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6, atol=1e-7)
    assert ours[3] == theirs[3]  # the generator moved on by the same draws
    if case != "d1-inplace-unbatched":  # PyTorch's unsqueeze_/squeeze_ nodes; rustgrad's in-place view
        assert ours[1:3] == theirs[1:3]


def _module_state(lib, build, inputs, train=True):
    lib.manual_seed(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = build(lib)
    out = {"repr": repr(m), "keys": list(m.state_dict()), "meta": getattr(m.state_dict(), "_metadata", None)}
    out["sd"] = [np.asarray(v.tolist()) for v in m.state_dict().values()]
    if inputs is not None:
        m.train(train)
        xs = [lib.tensor(a, requires_grad=True) for a in inputs]
        y = m(*xs)
        y.sum().backward()
        out["y"] = np.asarray(y.detach().tolist())
        out["top"] = name(y)
        out["grads"] = [np.asarray(p.grad.tolist()) for p in m.parameters() if p.grad is not None]
        out["input_grads"] = [np.asarray(x.grad.tolist()) for x in xs if x.grad is not None]
        out["sd_after"] = [np.asarray(v.tolist()) for v in m.state_dict().values()]
        weight = getattr(m, "weight", None)
        out["weight_fn"] = name(weight) if isinstance(weight, lib.Tensor) else None
    return out


_XI = np.random.default_rng(9).standard_normal((2, 4)).astype(np.float32)
_XJ = np.random.default_rng(10).standard_normal((2, 4)).astype(np.float32)
_XK = np.random.default_rng(11).standard_normal((2, 4)).astype(np.float32)
_T2 = np.array([1.0, -1.0], dtype=np.float32)
MODULE_CASES = [
    ("Softsign", lambda L: L.nn.Softsign(), [_XI]),
    ("Tanhshrink", lambda L: L.nn.Tanhshrink(), [_XI]),
    ("Softmin", lambda L: L.nn.Softmin(dim=1), [_XI]),
    ("PairwiseDistance", lambda L: L.nn.PairwiseDistance(p=1.5, keepdim=True), [_XI, _XJ]),
    ("CosineSimilarity", lambda L: L.nn.CosineSimilarity(dim=0), [_XI, _XJ]),
    ("KLDivLoss", lambda L: L.nn.KLDivLoss(reduction="batchmean", log_target=True), [_XI, _XJ]),
    ("PoissonNLLLoss", lambda L: L.nn.PoissonNLLLoss(), [_XI, np.abs(_XJ)]),
    ("GaussianNLLLoss", lambda L: L.nn.GaussianNLLLoss(full=True), [_XI, _XJ, np.abs(_XK)]),
    ("MarginRankingLoss", lambda L: L.nn.MarginRankingLoss(0.2), [_XI[:, 0], _XJ[:, 0], _T2]),
    ("HingeEmbeddingLoss", lambda L: L.nn.HingeEmbeddingLoss(0.5), [_XI, np.sign(_XJ)]),
    ("CosineEmbeddingLoss", lambda L: L.nn.CosineEmbeddingLoss(0.1), [_XI, _XJ, _T2]),
    (
        "MultiLabelSoftMarginLoss",
        lambda L: L.nn.MultiLabelSoftMarginLoss(),
        [_XI, (_XJ > 0).astype(np.float32)],
    ),
    ("TripletMarginLoss", lambda L: L.nn.TripletMarginLoss(swap=True), [_XI, _XJ, _XK]),
    ("TripletMarginWithDistanceLoss", lambda L: L.nn.TripletMarginWithDistanceLoss(), [_XI, _XJ, _XK]),
    ("Unflatten", lambda L: L.nn.Sequential(L.nn.Linear(4, 6), L.nn.Unflatten(1, (2, 3))), [_XI]),
    ("ParameterList", lambda L: L.nn.ParameterList([L.nn.Parameter(L.ones(2, 3)), L.zeros(2), 3]), None),
    (
        "ParameterDict",
        lambda L: L.nn.ParameterDict({"b": L.ones(2, 3), "a": L.zeros(2, dtype=L.float64), "c": 1}),
        None,
    ),
    ("weight_norm", lambda L: L.nn.utils.parametrizations.weight_norm(L.nn.Linear(4, 3)), [_XI]),
    ("weight_norm-dim1", lambda L: L.nn.utils.parametrizations.weight_norm(L.nn.Linear(4, 3), dim=1), [_XI]),
    (
        "weight_norm-None",
        lambda L: L.nn.utils.parametrizations.weight_norm(L.nn.Linear(4, 3), dim=None),
        [_XI],
    ),
    ("weight_norm-hook", lambda L: L.nn.utils.weight_norm(L.nn.Linear(4, 3)), [_XI]),
    (
        "weight_norm-removed",
        lambda L: L.nn.utils.remove_weight_norm(L.nn.utils.weight_norm(L.nn.Linear(4, 3))),
        [_XI],
    ),
    ("spectral_norm", lambda L: L.nn.utils.parametrizations.spectral_norm(L.nn.Linear(4, 3)), [_XI]),
    (
        "spectral_norm-eval",
        lambda L: L.nn.utils.parametrizations.spectral_norm(L.nn.Linear(4, 3)).eval(),
        [_XI],
    ),
    (
        "spectral_norm-large",
        lambda L: L.nn.utils.parametrizations.spectral_norm(L.nn.Linear(4, 20), n_power_iterations=3),
        [_XI],
    ),
    ("spectral_norm-hook", lambda L: L.nn.utils.spectral_norm(L.nn.Linear(4, 3)), [_XI]),
    (
        "spectral_norm-hook-large",
        lambda L: L.nn.utils.spectral_norm(L.nn.Linear(4, 17), n_power_iterations=2),
        [_XI],
    ),
    (
        "spectral_norm-removed",
        lambda L: L.nn.utils.remove_spectral_norm(L.nn.utils.spectral_norm(L.nn.Linear(4, 3))),
        [_XI],
    ),
] + [
    (
        f"orthogonal-{mp}-{shape}-{triv}",
        lambda L, mp=mp, shape=shape, triv=triv: L.nn.utils.parametrizations.orthogonal(
            L.nn.Linear(*shape), orthogonal_map=mp, use_trivialization=triv
        ),
        [_XI[:, : shape[0]]],
    )
    for mp in ("matrix_exp", "cayley", "householder")
    for shape in ((4, 4), (4, 3), (3, 5))
    for triv in (True, False)
]


@pytest.mark.parametrize(("case", "build", "inputs"), MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_modules_against_pytorch(case, build, inputs):
    torch = _torch()
    ours, theirs = _module_state(rustgrad, build, inputs), _module_state(torch, build, inputs)
    for key in ("repr", "keys", "meta"):
        assert ours[key] == theirs[key], key
    if inputs is not None:
        np.testing.assert_allclose(ours["y"], theirs["y"], rtol=2e-5, atol=2e-6)
    for key in ("sd", "grads", "input_grads", "sd_after"):
        for a, b in zip(ours.get(key, []), theirs.get(key, [])):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6, err_msg=key)
        assert len(ours.get(key, [])) == len(theirs.get(key, [])), key
    if inputs is not None:
        assert ours["top"] == RENAMED.get(theirs["top"], theirs["top"])
        # PyTorch's own nodes for the fused weight norm and the matrix exponential (the Rust core's to add)
        if theirs["weight_fn"] not in ("WeightNormInterfaceBackward0", "LinalgMatrixExpBackward0"):
            assert ours["weight_fn"] == theirs["weight_fn"]


def test_module_errors_against_pytorch():
    torch = _torch()
    for i, (fn, _, _) in enumerate(MODULE_ERRORS):
        results = []
        for lib in (rustgrad, torch):
            code = fn.__code__
            # the same lambda, its globals pointing at ``lib``
            clone = type(fn)(code, {**fn.__globals__, "nn": lib.nn, "rustgrad": lib})
            try:
                clone()
                results.append(None)
            except Exception as e:  # noqa: BLE001 (the exception is the result compared)
                results.append((type(e).__name__, str(e)))
        assert results[0] == results[1], i


def test_errors_against_pytorch():
    torch = _torch()
    for i, (fn, _, _) in enumerate(ERRORS):
        results = []
        for lib in (rustgrad, torch):
            g = {
                **fn.__globals__,
                "F": lib.nn.functional,
                "rustgrad": lib,
                "t64": lambda a, requires_grad=False, lib=lib: lib.tensor(
                    np.asarray(a, dtype=np.float64), requires_grad=requires_grad
                ),
            }
            clone = type(fn)(fn.__code__, g)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    clone()
                results.append(None)
            except Exception as e:  # noqa: BLE001 (the exception is the result compared)
                results.append((type(e).__name__, str(e)))
        assert results[0] == results[1], i


def test_parametrize_against_pytorch():
    torch = _torch()
    results = []
    for lib in (rustgrad, torch):

        class Sym(lib.nn.Module):
            def forward(self, X):
                return X.triu() + X.triu(1).mT

            def right_inverse(self, A):
                return A.triu()

        lib.manual_seed(0)
        m = lib.nn.Linear(3, 3)
        lib.nn.utils.parametrize.register_parametrization(m, "weight", Sym())
        lib.nn.utils.parametrize.register_parametrization(m, "weight", lib.nn.Identity())
        y = m(lib.ones(2, 3))
        y.sum().backward()
        results.append(
            (
                repr(m),
                list(m.state_dict()),
                type(m).__name__,
                name(m.weight),
                np.asarray(m.parametrizations.weight.original.grad.tolist()),
            )
        )
    assert results[0][:4] == results[1][:4]
    np.testing.assert_allclose(results[0][4], results[1][4], rtol=1e-6)


def test_scalar_forms_are_recorded_as_pytorchs_composites_record_them():
    """PyTorch's C++ composites add, subtract and multiply numbers through the Scalar overloads
    (``AddBackward1``, ``SubBackward1``, ``MulBackward1``: one input) and take ``at::norm``
    (``NormBackward1``); the values and gradients are the plain ops'."""
    a = rustgrad.tensor([[0.3, -1.2, 0.8], [1.1, 0.4, -0.6]], dtype=rustgrad.float64, requires_grad=True)
    b = rustgrad.tensor([[1.0, 0.5, -0.4], [-0.2, 1.3, 0.7]], dtype=rustgrad.float64)
    d = F.pairwise_distance(a, b)
    assert d.grad_fn.name() == "NormBackward1"
    assert [n.name() for n, _ in d.grad_fn.next_functions] == ["AddBackward1"]
    (add_node, _) = d.grad_fn.next_functions[0]
    assert len(add_node.next_functions) == 1 and add_node.next_functions[0][0].name() == "SubBackward0"
    # ||a - b + eps||_2 per row
    want = np.sqrt(((a.detach().numpy() - b.numpy() + 1e-6) ** 2).sum(1))
    np.testing.assert_allclose(d.detach().numpy(), want, rtol=1e-14)
    for kind, name, closed in (("add", "AddBackward1", lambda x: x + 2.5), ("sub", "SubBackward1", lambda x: x - 2.5), ("mul", "MulBackward1", lambda x: x * 2.5)):
        y = rustgrad._rustgrad._scalar_op(a, 2.5, kind)
        assert y.grad_fn.name() == name and len(y.grad_fn.next_functions) == 1
        np.testing.assert_array_equal(y.detach().numpy(), closed(a.detach().numpy()))
        assert rustgrad.autograd.gradcheck(lambda x, k=kind: rustgrad._rustgrad._scalar_op(x, 2.5, k) ** 2, (a,))
        assert rustgrad.autograd.gradgradcheck(lambda x, k=kind: rustgrad._rustgrad._scalar_op(x, 2.5, k) ** 2, (a,))
    assert rustgrad.autograd.gradcheck(lambda x: F.pairwise_distance(x, b, p=3.0), (a,))
    assert rustgrad.autograd.gradgradcheck(lambda x: F.pairwise_distance(x, b, p=3.0), (a,))
