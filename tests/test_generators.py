"""torch.Generator and every random function, against numbers recorded from PyTorch 2.15 (CPU,
x86-64): each case is evaluated with ``G(s) = torch.Generator().manual_seed(s)`` and must give the
recorded dtype, shape and values bit for bit. When PyTorch is installed the same cases (and state
exchange between the two libraries) are also checked live. Statistical checks (fixed seeds) are an
oracle of their own for the distributions: they do not depend on PyTorch's numbers."""

from __future__ import annotations

import json
import math
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import rustgrad as rg
from rustgrad.utils.data import DataLoader, RandomSampler, SubsetRandomSampler, TensorDataset, random_split

# Recorded from PyTorch 2.15.0 (tests/generators_recorded.json): "recorded" maps a name to
# (expression, [dtype, shape, flat values]) (lists of those for expressions giving several tensors);
# "errors" lists (expression, exception class, message); "loading" maps a name to (expression, value).
_DATA = json.loads((Path(__file__).parent / "generators_recorded.json").read_text())
RECORDED = _DATA["recorded"]
ERRORS = [tuple(e) for e in _DATA["errors"]]
LOADING = _DATA["loading"]
STATE_SEED0_AFTER_RANDN1 = _DATA["state_seed0_after_randn1"]


def G(seed: int) -> rg.Generator:
    """A fresh generator seeded with ``seed``."""
    return rg.Generator().manual_seed(seed)


def _norm(value):
    if isinstance(value, rg.Tensor) or type(value).__name__ == "Tensor":
        return [str(value.dtype).replace("torch.", ""), list(value.shape), value.reshape(-1).tolist()]
    return [_norm(v) for v in value]


def _eval(module, expr: str):
    gen = lambda s: module.Generator().manual_seed(s)
    if module is rg:
        scope = {"torch": rg, "G": gen, "ds": TensorDataset(rg.arange(10)), "DataLoader": DataLoader,
                 "RandomSampler": RandomSampler, "SubsetRandomSampler": SubsetRandomSampler,
                 "random_split": random_split}
    else:
        from torch.utils import data

        scope = {"torch": module, "G": gen, "ds": data.TensorDataset(module.arange(10)),
                 "DataLoader": data.DataLoader, "RandomSampler": data.RandomSampler,
                 "SubsetRandomSampler": data.SubsetRandomSampler, "random_split": data.random_split}
    return eval(expr, scope)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_values(name):
    expr, expected = RECORDED[name]
    assert _norm(_eval(rg, expr)) == expected


@pytest.mark.parametrize("name", sorted(LOADING))
def test_recorded_loading_order(name):
    expr, expected = LOADING[name]
    got = _eval(rg, expr)
    assert (list(got) if isinstance(got, tuple) else got) == (list(expected) if isinstance(expected, tuple) else expected)


@pytest.mark.parametrize(("expr", "exc", "message"), ERRORS)
def test_errors(expr, exc, message):
    with pytest.raises(Exception) as info:
        _eval(rg, expr)
    assert type(info.value).__name__ == exc
    assert str(info.value) == message


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_live_against_pytorch(name):
    torch = pytest.importorskip("torch")
    expr, _ = RECORDED[name]
    assert _norm(_eval(rg, expr)) == _norm(_eval(torch, expr))


@pytest.mark.parametrize("name", sorted(LOADING))
def test_live_loading_against_pytorch(name):
    torch = pytest.importorskip("torch")
    expr, _ = LOADING[name]
    assert _eval(rg, expr) == _eval(torch, expr)


# ----------------------------------------------------------------------------- generator objects


def _byte_dtype():
    return getattr(rg, "uint8", rg.int64)


def test_generator_basics():
    g = rg.Generator()
    assert g.initial_seed() == 67280421310721
    assert g.manual_seed(3) is g and g.initial_seed() == 3
    assert g.manual_seed(-1).initial_seed() == 2**64 - 1
    assert str(g.device) == "cpu" and rg.Generator("cpu").device == rg.device("cpu")
    assert repr(g).startswith("<torch._C.Generator object at 0x")
    s = g.seed()
    assert g.initial_seed() == s and 0 <= s < 2**64
    assert rg.manual_seed(4) is rg.default_generator and isinstance(rg.default_generator, rg.Generator)
    assert rg.random.initial_seed() == 4 == rg.initial_seed()
    with pytest.raises(RuntimeError, match="Cannot get CUDA generator without ATen_cuda library"):
        rg.Generator(device="cuda")


def test_generators_are_independent():
    a, b = G(7), G(7)
    rg.manual_seed(0)
    first = rg.rand(3).tolist()
    x = rg.rand(5, generator=a).tolist()
    rg.manual_seed(0)
    # Drawing from `a` did not move the default generator, nor `b`.
    assert rg.rand(3).tolist() == first
    assert rg.rand(5, generator=b).tolist() == x
    c = a.clone_state()
    assert rg.randn(20, generator=a).tolist() == rg.randn(20, generator=c).tolist()


def test_state_layout_and_round_trip():
    g = G(0)
    rg.randn(1, generator=g)
    state = g.get_state()
    assert state.dtype == _byte_dtype() and tuple(state.shape) == (5056,)
    assert state[:32].tolist() == STATE_SEED0_AFTER_RANDN1["head"]
    assert state[5016:].tolist() == STATE_SEED0_AFTER_RANDN1["tail"]
    h = rg.Generator().set_state(state)
    # The cached second Box-Muller value travels with the state.
    assert rg.randn(3, generator=h).tolist() == rg.randn(3, generator=g).tolist()
    assert h.initial_seed() == 0
    with pytest.raises(RuntimeError, match="Invalid mt19937 state"):
        h.set_state(rg.zeros(5056, dtype=_byte_dtype()))
    with pytest.raises(RuntimeError, match="size 5056 but found the input RNG state size to be 10"):
        h.set_state(rg.zeros(10, dtype=_byte_dtype()))
    rg.manual_seed(9)
    saved = rg.get_rng_state()
    a = rg.rand(4).tolist()
    rg.set_rng_state(saved)
    assert rg.rand(4).tolist() == a


def test_fork_rng_restores_the_default_stream():
    rg.manual_seed(1)
    expected = rg.rand(3).tolist()
    rg.manual_seed(1)
    with rg.random.fork_rng():
        rg.randn(50)
    assert rg.rand(3).tolist() == expected


def test_state_exchange_with_pytorch():
    torch = pytest.importorskip("torch")
    tg = torch.Generator().manual_seed(123)
    torch.randn(1, generator=tg)
    torch.rand(700, generator=tg)
    ours = rg.Generator().set_state(rg.tensor(tg.get_state().tolist(), dtype=_byte_dtype()))
    assert rg.randn(33, generator=ours).tolist() == torch.randn(33, generator=tg).tolist()
    assert rg.randperm(9, generator=ours).tolist() == torch.randperm(9, generator=tg).tolist()
    back = torch.Generator().set_state(torch.tensor(ours.get_state().tolist(), dtype=torch.uint8))
    assert torch.rand(5, generator=back).tolist() == rg.rand(5, generator=ours).tolist()


def test_generator_shared_between_threads():
    g = G(5)
    out: list[list[int]] = []

    def work():
        out.append(rg.randperm(50, generator=g).tolist())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 4 and all(sorted(p) == list(range(50)) for p in out)


def test_random_warns_beyond_exact_floats():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rg.empty(3).random_(0, 2**25, generator=G(0))
    assert any("to - 1 is out of bounds [-(2^24), 2^24]" in str(w.message) for w in caught)


def test_grad_fn_names_of_random_fills():
    x = rg.ones(3, requires_grad=True)
    names = [
        rg.poisson(x).grad_fn.name(),
        rg.bernoulli(x * 0.5).grad_fn.name(),
        x.clone().exponential_().grad_fn.name(),
        x.clone().random_().grad_fn.name(),
        x.clone().random_(3).grad_fn.name(),
        x.clone().random_(1, 3).grad_fn.name(),
        x.clone().geometric_(0.5).grad_fn.name(),
        x.clone().cauchy_().grad_fn.name(),
        x.clone().log_normal_().grad_fn.name(),
    ]
    assert names == [
        "PoissonBackward0", "BernoulliBackward0", "ExponentialBackward0", "RandomBackward2",
        "RandomBackward1", "RandomBackward0", "GeometricBackward0", "CauchyBackward0", "LogNormalBackward0",
    ]


# ----------------------------------------------------------------------------- statistics


def _chi_square(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


# 99.9% quantiles of the chi-square distribution by degrees of freedom.
_CHI2_999 = {3: 16.27, 4: 18.47, 9: 27.88}


@pytest.mark.parametrize("replacement", [True, False])
def test_multinomial_frequencies(replacement):
    w = np.array([1.0, 2.0, 3.0, 4.0, 0.5])
    p = w / w.sum()
    g = G(2024)
    probs = rg.tensor(w.tolist(), dtype=rg.float64).expand(20000, 5).contiguous()
    first = rg.multinomial(probs, 1 if not replacement else 2, replacement, generator=g)[:, 0].numpy()
    counts = np.bincount(first, minlength=5)
    assert _chi_square(counts, p) < _CHI2_999[4]


def test_multinomial_without_replacement_gives_distinct_categories():
    out = rg.multinomial(rg.rand(50, 12, generator=G(1)), 12, generator=G(2))
    assert all(sorted(row) == list(range(12)) for row in out.tolist())
    # Zero-weight categories come last, never before a positive one.
    out = rg.multinomial(rg.tensor([[0.0, 1.0, 0.0, 2.0]]), 2, generator=G(3)).tolist()
    assert sorted(out[0]) == [1, 3]


@pytest.mark.parametrize("lam", [0.7, 4.0, 12.0, 150.0])
def test_poisson_moments(lam):
    x = rg.poisson(rg.full((40000,), lam, dtype=rg.float64), generator=G(int(lam * 10))).numpy()
    assert np.all(x == np.round(x)) and x.min() >= 0
    se = math.sqrt(lam / x.size)
    assert abs(x.mean() - lam) < 5 * se
    assert abs(x.var() / lam - 1) < 0.05


def test_continuous_distributions():
    n = 50000
    e = rg.empty(n, dtype=rg.float64).exponential_(2.0, generator=G(1)).numpy()
    assert abs(e.mean() - 0.5) < 5 * 0.5 / math.sqrt(n) and e.min() >= 0
    geo = rg.empty(n, dtype=rg.float64).geometric_(0.25, generator=G(2)).numpy()
    assert geo.min() >= 1 and abs(geo.mean() - 4.0) < 5 * math.sqrt(0.75 / 0.0625 / n)
    c = rg.empty(n, dtype=rg.float64).cauchy_(1.0, 2.0, generator=G(3)).numpy()
    q1, med, q3 = np.quantile(c, [0.25, 0.5, 0.75])
    assert abs(med - 1.0) < 0.1 and abs((q3 - q1) - 4.0) < 0.2
    ln = np.log(rg.empty(n, dtype=rg.float64).log_normal_(0.5, 0.3, generator=G(4)).numpy())
    assert abs(ln.mean() - 0.5) < 5 * 0.3 / math.sqrt(n) and abs(ln.std() - 0.3) < 0.01


def test_random_integers_are_uniform():
    x = rg.empty(30000, dtype=rg.int64).random_(3, 13, generator=G(5)).numpy()
    assert x.min() == 3 and x.max() == 12
    counts = np.bincount(x - 3, minlength=10)
    assert _chi_square(counts, np.full(10, 0.1)) < _CHI2_999[9]
    b = rg.empty(20000).bernoulli_(0.3, generator=G(6)).numpy()
    assert abs(b.mean() - 0.3) < 5 * math.sqrt(0.21 / 20000)


def test_trunc_normal_far_interval_has_the_truncated_distribution():
    # A narrow interval in the tail (uniform proposals with rejection).
    x = rg.nn.init.trunc_normal_(rg.empty(20000, dtype=rg.float64), 0.0, 1.0, 1.5, 2.5, generator=G(8)).numpy()
    assert x.min() > 1.5 and x.max() <= 2.5
    # The truncated normal's mean on [1.5, 2.5]: (phi(1.5) - phi(2.5)) / (Phi(2.5) - Phi(1.5)).
    phi = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    cdf = lambda t: (1 + math.erf(t / math.sqrt(2))) / 2
    expected = (phi(1.5) - phi(2.5)) / (cdf(2.5) - cdf(1.5))
    assert abs(x.mean() - expected) < 0.01


def test_generator_pickles_and_deep_copies():
    import copy
    import pickle

    g = G(3)
    rg.rand(5, generator=g)
    for clone in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g)):
        assert clone is not g and clone.initial_seed() == 3
        assert rg.randn(20, generator=clone).tolist() == rg.randn(20, generator=g.clone_state()).tolist()


def test_normal_refuses_negative_or_nan_std_tensor():
    for std in ([1.0, -1.0], [1.0, float("nan")]):
        with pytest.raises(RuntimeError, match=r"^normal expects all elements of std >= 0.0$"):
            rg.normal(rg.zeros(2), rg.tensor(std))
    # A zero std gives the mean.
    assert rg.normal(rg.ones(2), rg.zeros(2), generator=G(0)).tolist() == [1.0, 1.0]


def test_normal_with_tensor_arguments_records_zero_gradient_nodes():
    # PyTorch's nodes pass zero gradients: the draw is not reparameterised.
    x = rg.ones(3, requires_grad=True)
    s = rg.ones(2, 3, requires_grad=True)
    for make, node, grads in [
        (lambda: rg.normal(x, 1.0, generator=G(0)), "NormalBackward1", (x,)),
        (lambda: rg.normal(0.0, s, generator=G(0)), "NormalBackward2", (s,)),
        (lambda: rg.normal(x, s, generator=G(0)), "NormalBackward3", (x, s)),
    ]:
        x.grad = s.grad = None
        y = make()
        assert y.grad_fn.name() == node and y.requires_grad
        y.sum().backward()
        for t in grads:
            assert t.grad.tolist() == rg.zeros(t.shape).tolist()
    with rg.no_grad():
        assert not rg.normal(x, s).requires_grad
    # The values do not change with the recording.
    assert rg.normal(x, 2.0, generator=G(4)).tolist() == rg.normal(x.detach(), 2.0, generator=G(4)).tolist()


def test_multinomial_too_many_samples_is_an_error_not_a_crash():
    with pytest.raises(RuntimeError, match="DefaultCPUAllocator: can't allocate memory"):
        rg.multinomial(rg.ones(3), 2**40, True)
    with pytest.raises(RuntimeError, match=r"Storage size calculation overflowed with sizes=\[9223372036854775807\]"):
        rg.multinomial(rg.ones(3), 2**63 - 1, True)


def _bulk_cases(count: int = 80) -> list[str]:
    """Random calls of every sampler over shapes, layouts, dtypes and parameters (fixed seed)."""
    import random

    rnd = random.Random(7)
    cases = []
    for i in range(count):
        dt = rnd.choice(["float32", "float64"])
        shape = rnd.choice(["(5,)", "(17,)", "(4, 5)", "(40, 3)", "(3, 4, 2)"])
        layout = rnd.choice(["", "[::2]"] + ([".t()", ".transpose(0, 1)"] if shape in ("(4, 5)", "(40, 3)") else []))
        base = f"torch.empty{shape}.to(torch.{dt}){layout}"
        fill = rnd.choice([
            f"uniform_({rnd.uniform(-3, 0):.3f}, {rnd.uniform(0.1, 3):.3f}, generator=G({i}))",
            f"normal_({rnd.uniform(-3, 3):.3f}, {rnd.uniform(0.1, 3):.3f}, generator=G({i}))",
            f"bernoulli_({rnd.random():.3f}, generator=G({i}))",
            f"random_(generator=G({i}))",
            f"random_({rnd.randint(-100, 0)}, {rnd.randint(1, 2**20)}, generator=G({i}))",
            f"exponential_({rnd.uniform(0.1, 5):.3f}, generator=G({i}))",
            f"geometric_({rnd.uniform(0.01, 0.99):.3f}, generator=G({i}))",
            f"cauchy_({rnd.uniform(-2, 2):.3f}, {rnd.uniform(0.1, 3):.3f}, generator=G({i}))",
            f"log_normal_({rnd.uniform(-1, 1):.3f}, {rnd.uniform(0.1, 1.5):.3f}, generator=G({i}))",
        ])
        cases.append(f"{base}.{fill}")
        k, rows = rnd.randint(1, 30), rnd.randint(1, 4)
        cases.append(
            f"torch.multinomial(torch.rand({rows}, {k}, dtype=torch.{dt}, generator=G({i})) ** 3, "
            f"{rnd.randint(1, k)}, {rnd.random() < 0.5}, generator=G({i + 1000}))"
        )
        rate = rnd.choice([1, 5, 15, 80])
        cases.append(f"torch.poisson(torch.rand({shape}, generator=G({i})).to(torch.{dt}){layout} * {rate}, generator=G({i}))")
        cases.append(
            f"torch.nn.init.trunc_normal_(torch.empty{shape}.to(torch.{dt}), {rnd.uniform(-1, 1):.3f}, "
            f"{rnd.uniform(0.05, 2):.3f}, {rnd.uniform(-3, 0.5):.3f}, {rnd.uniform(0.6, 3):.3f}, generator=G({i}))"
        )
    return cases


def test_live_bulk_against_pytorch():
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trunc_normal_'s note on a mean far from [a, b]
        for expr in _bulk_cases():
            assert _norm(_eval(rg, expr)) == _norm(_eval(torch, expr)), expr


def test_bernoulli_with_a_number_p_has_no_derivative():
    x = rg.full((3,), 0.5, requires_grad=True)
    y = rg.bernoulli(x, 0.3, generator=G(0))
    assert y.requires_grad and y.grad_fn.name() == "torch::autograd::NotImplemented"
    with pytest.raises(RuntimeError, match=r"^derivative for aten::bernoulli is not implemented$"):
        y.sum().backward()
    with rg.no_grad():
        assert not rg.bernoulli(x, 0.3).requires_grad


@pytest.mark.parametrize(
    ("seed", "exc", "message"),
    [
        (np.int64(3), TypeError, "an integer is required"),
        (True, RuntimeError, "manual_seed expected a long, but got bool"),
        (1.5, RuntimeError, "manual_seed expected a long, but got float"),
        (np.float64(2.0), RuntimeError, "manual_seed expected a long, but got numpy.float64"),
        ("1", RuntimeError, "manual_seed expected a long, but got str"),
        (2**64, ValueError, "Overflow when unpacking long long"),
    ],
)
def test_generator_manual_seed_refuses_non_ints(seed, exc, message):
    with pytest.raises(exc, match=f"^{message}$"):
        rg.Generator().manual_seed(seed)
    if exc is not ValueError and not isinstance(seed, str):
        # torch.manual_seed converts with int() first.
        assert rg.manual_seed(seed).initial_seed() == int(seed)
