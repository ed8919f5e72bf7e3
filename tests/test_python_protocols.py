"""Python protocols and argument checks behave as PyTorch's (issue 11, differential fuzzer findings).

The main assertions use closed forms; ``test_matches_pytorch`` runs the same snippets under PyTorch
when it is installed and compares outcome classes and values.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
import rustgrad as torch
import rustgrad.nn.functional as F

# ----------------------------------------------------------------------------- non-tensor inputs

# torch.<fn> -> the arguments after ``input``
FUNCTIONS = {
    "abs": (), "sin": (), "exp": (), "sum": (), "max": (), "softmax": (0,), "reshape": ((1,),),
    "transpose": (0, 1), "isnan": (), "equal": (torch.ones(1),), "matmul": (torch.ones(1),), "numel": (),
    "is_floating_point": (), "zeros_like": (), "rand_like": (), "randn_like": (), "full_like": (0,), "neg": (),
    "allclose": (torch.ones(1),), "clamp": (0,), "cumsum": (0,), "gather": (0, torch.tensor([0])),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("bad", [1.5, 3, None, torch.float32, [1.0], "a"])
def test_torch_function_of_a_non_tensor_raises_type_error(name, bad):
    """``torch.<fn>(x)`` with a non-tensor ``x`` raises PyTorch's TypeError, not AttributeError."""
    with pytest.raises(TypeError, match=rf"{name}\(\): argument 'input' \(position 1\) must be Tensor"):
        getattr(torch, name)(bad, *FUNCTIONS[name])


def test_type_names_in_messages_are_pytorchs():
    with pytest.raises(TypeError, match="must be Tensor, not torch.dtype$"):
        torch.sin(torch.float32)
    with pytest.raises(TypeError, match="must be Tensor, not NoneType$"):
        torch.sum(None)
    with pytest.raises(TypeError, match="must be Tensor, not float$"):
        torch.abs(1.5)


FUNCTIONAL = {
    "relu": 1, "gelu": 1, "tanh": 1, "sigmoid": 1, "silu": 1, "leaky_relu": 1, "softplus": 1, "logsigmoid": 1,
    "softmax": 1, "log_softmax": 1, "dropout": 1, "one_hot": 1, "mse_loss": 2, "l1_loss": 2, "nll_loss": 2,
    "cross_entropy": 2, "binary_cross_entropy": 2, "binary_cross_entropy_with_logits": 2, "linear": 2,
}


# The functions PyTorch writes in Python read a method or attribute of their argument first, so
# a non-tensor raises Python's AttributeError there; the others go through the argument parser.
DUCK_TYPED = {
    "tanh": "tanh", "sigmoid": "sigmoid", "softmax": "dim", "log_softmax": "dim",  # no dim given: input.dim()
    "mse_loss": "size", "l1_loss": "size", "binary_cross_entropy": "size", "binary_cross_entropy_with_logits": "size",
}


@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
@pytest.mark.parametrize("bad", [1.5, [1.0, 2.0], None, torch.float32])
def test_functional_of_a_non_tensor_raises_pytorchs_class(name, bad):
    """Every ``F.<fn>`` rejects a non-tensor input (and target) as PyTorch does: TypeError from the
    argument parser, or AttributeError naming the attribute PyTorch's Python code reads."""
    for position in range(FUNCTIONAL[name]):
        args = [torch.rand(2, 3), torch.rand(2, 3)][: FUNCTIONAL[name]]
        args[position] = bad
        if name in DUCK_TYPED:
            kind = {float: "float", list: "list", type(None): "NoneType"}.get(type(bad), "torch.dtype")
            with pytest.raises(AttributeError, match=f"^'{kind}' object has no attribute '{DUCK_TYPED[name]}'$"):
                getattr(F, name)(*args)
        else:
            with pytest.raises(TypeError, match="must be Tensor"):
                getattr(F, name)(*args)


def test_softmax_with_a_dim_reads_the_softmax_method():
    with pytest.raises(AttributeError, match="^'int' object has no attribute 'softmax'$"):
        F.softmax(99, -2)
    with pytest.raises(AttributeError, match="^'float' object has no attribute 'log_softmax'$"):
        F.log_softmax(1e300, 0)
    with pytest.raises(AttributeError, match="^'float' object has no attribute 'layout'$"):
        torch.norm(float("nan"))


def test_arithmetic_functions_take_numbers():
    """``torch.add/sub/mul/div/true_divide`` accept a number ``input`` and return a tensor."""
    r = torch.mul(float("nan"), 2)
    assert isinstance(r, torch.Tensor) and r.dtype is torch.float32 and r.dim() == 0 and np.isnan(r.item())
    r = torch.true_divide(-99, 4)
    assert isinstance(r, torch.Tensor) and r.dtype is torch.float32 and r.item() == -24.75
    r = torch.sub(1, 2)
    assert r.dtype is torch.int64 and r.item() == -1
    assert torch.add(1, 2, alpha=3).item() == 7
    assert torch.sub(2, torch.ones(2)).tolist() == [1.0, 1.0]
    with pytest.raises(TypeError):
        torch.pow(2, 3)
    with pytest.raises(TypeError):
        torch.add("a", torch.ones(2))


# ----------------------------------------------------------------------------- bad sizes and dtypes


@pytest.mark.parametrize(
    ("call", "exc", "msg"),
    [
        (lambda: torch.eye(-1), RuntimeError, "n must be greater or equal to 0, got -1"),
        (lambda: torch.eye(2, -1), RuntimeError, "m must be greater or equal to 0, got -1"),
        (lambda: torch.linspace(0, 1, -1), RuntimeError, "number of steps must be non-negative"),
        (lambda: torch.randperm(-1), RuntimeError, "negative dimension -1"),
        (lambda: torch.randint(0, 5, (-1,)), RuntimeError, "negative dimension -1"),
        (lambda: torch.randperm(-float("inf")), TypeError, "must be int, not float"),
        (lambda: torch.randperm(2.5), TypeError, "must be int, not float"),
        (lambda: torch.randperm(2**70), ValueError, "Overflow when unpacking long long"),
        (lambda: torch.zeros(2**63), TypeError, "Overflow when unpacking long long"),
        (lambda: torch.zeros(2.5), TypeError, "must be tuple of ints"),
        (lambda: torch.zeros(True), TypeError, "must be tuple of ints"),
        (lambda: torch.zeros(), TypeError, "missing 1 required positional"),
        (lambda: torch.rand(), TypeError, "missing 1 required positional"),
        (lambda: torch.tensor([1.5], dtype="float32"), TypeError, "argument 'dtype' must be torch.dtype, not str"),
        (lambda: torch.zeros(2, dtype="float32"), TypeError, "argument 'dtype' must be torch.dtype"),
        (lambda: torch.ones(2).sum(dtype="float32"), TypeError, "argument 'dtype' must be torch.dtype"),
        (lambda: torch.zeros(2, requires_grad=1.5), TypeError, "'requires_grad' must be bool, not float"),
        (lambda: torch.zeros(2, requires_grad=torch.tensor(True)), TypeError, "'requires_grad' must be bool"),
        (lambda: torch.zeros(2, requires_grad=torch.float32), TypeError, "'requires_grad' must be bool"),
        (lambda: torch.tensor([1.0], requires_grad=1), TypeError, "'requires_grad' must be bool, not int"),
        (lambda: torch.tensor([2**63]), ValueError, "Overflow when unpacking long long"),
        (lambda: torch.tensor(2**70), ValueError, "Overflow when unpacking long long"),
        (lambda: torch.full((2, 2), 2**70, dtype=torch.int64), OverflowError, "int too big to convert"),
        (lambda: torch.full((2,), float("nan"), dtype=torch.int64), RuntimeError, "int64_t without overflow"),
        (lambda: torch.full((2,), 1e30, dtype=torch.int64), RuntimeError, "int64_t without overflow"),
        (lambda: torch.full((2,), 2**63), RuntimeError, "int64_t without overflow"),
        (lambda: torch.manual_seed(2**64), ValueError, "Overflow when unpacking long long"),
    ],
)
def test_bad_factory_arguments_raise_pytorchs_class(call, exc, msg):
    """No OverflowError/KeyError from argument conversion: PyTorch's class and message."""
    with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)")):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda x: x.softmax(2**63),
        lambda x: x.unsqueeze(2**63),
        lambda x: x.argmin(2**63),
        lambda x: x.sum(2**63),
        lambda x: x.sum((0, 2**63)),
        lambda x: x.transpose(0, 2**63),
        lambda x: x.log_softmax(-(2**63) - 1),
        lambda x: x.narrow(0, 2**63, 1),
        lambda x: torch.cat([x, x], 2**64),
    ],
)
def test_int_arguments_outside_int64_raise_value_error(call):
    """Every i64 argument of the binding converts an overflow to PyTorch's ValueError."""
    with pytest.raises(ValueError, match="Overflow when unpacking long long"):
        call(torch.ones(2))


def test_sizes_outside_int64_and_missing_sizes():
    x = torch.ones(2)
    with pytest.raises(TypeError, match="Overflow when unpacking long long"):
        x.view(2**63)
    with pytest.raises(TypeError, match="Overflow when unpacking long long"):
        x.view([2, 2**63])
    for method in ("view", "reshape", "permute", "expand"):
        with pytest.raises(TypeError):
            getattr(x, method)()
        with pytest.raises(TypeError):
            getattr(torch.tensor(3.0), method)()
    assert torch.tensor(3.0).permute(()).shape == ()
    assert torch.zeros(()).shape == ()


def test_python_types_as_dtypes():
    assert torch.zeros(2, dtype=float).dtype is torch.float64
    assert torch.zeros(2, dtype=int).dtype is torch.int64
    assert torch.tensor([1], dtype=bool).dtype is torch.bool
    assert torch.ones(2).to(float).dtype is torch.float64
    assert torch.ones(2).sum(dtype=float).dtype is torch.float64


# ----------------------------------------------------------------------------- protocols


def test_iteration():
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(torch.tensor(3.0))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(torch.tensor(3.0))
    assert not np.iterable(torch.tensor(3.0))
    assert np.iterable(torch.ones(2))
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    rows = list(x)
    assert [r.tolist() for r in rows] == [[1.0, 2.0], [3.0, 4.0]]
    assert type(rows[0].grad_fn).__name__ == "UnbindBackward0"
    (rows[0] * 2 + rows[1]).sum().backward()
    assert x.grad.tolist() == [[2.0, 2.0], [1.0, 1.0]]
    assert list(torch.zeros(0, 3)) == []


def test_len():
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(torch.tensor(3.0))
    assert len(torch.zeros(4, 2)) == 4


def test_contains():
    t = torch.tensor([1.0, 3.0])
    assert 3.0 in t and 3 in t and 2.0 not in t
    assert torch.tensor(1.0) in t
    assert torch.tensor([1.0, 3.0]) in t
    assert torch.tensor([5.0, 3.0]) in t
    assert 3.0 in torch.tensor(3.0)
    assert True in torch.tensor([True])
    assert 2**63 not in t
    for bad in ("a", None, [1.0]):
        with pytest.raises(RuntimeError, match="Tensor.__contains__ only supports Tensor or scalar"):
            bad in t  # noqa: B015 - the protocol under test


def test_index():
    assert operator.index(torch.tensor(3)) == 3
    assert operator.index(torch.tensor([[3]])) == 3
    assert operator.index(torch.tensor(True)) == 1
    assert [1, 2, 3][torch.tensor(1)] == 2
    for bad in (torch.tensor(3.0), torch.tensor([3, 4])):
        with pytest.raises(TypeError, match="only integer tensors of a single element"):
            operator.index(bad)


def test_bool():
    assert bool(torch.tensor([1.0])) and not bool(torch.tensor(0))
    assert bool(torch.tensor(float("nan")))
    with pytest.raises(RuntimeError, match="with no values is ambiguous"):
        bool(torch.tensor([]))
    with pytest.raises(RuntimeError, match="more than one value is ambiguous"):
        bool(torch.tensor([1.0, 2.0]))


def test_float_int_complex():
    for conv in (float, int, complex):
        for t in (torch.tensor([1.0, 2.0]), torch.tensor([])):
            with pytest.raises(ValueError, match="only one element tensors can be converted to Python scalars"):
                conv(t)
    with pytest.raises(OverflowError):
        int(torch.tensor(float("inf")))
    with pytest.raises(ValueError):
        int(torch.tensor(float("nan")))
    assert int(torch.tensor(1e20)) == int(np.float32(1e20))
    assert int(torch.tensor(-2.7)) == -2 and int(torch.tensor(True)) == 1
    assert int(torch.tensor(2**63 - 1)) == 2**63 - 1
    assert float(torch.tensor(3)) == 3.0 and complex(torch.tensor(3.0)) == 3 + 0j


def test_lone_bool_index_adds_a_dim():
    x = torch.rand(2, 3, requires_grad=True)
    assert x[True].shape == (1, 2, 3)
    assert x[False].shape == (0, 2, 3)
    assert x[torch.tensor(True)].shape == (1, 2, 3)
    assert x[torch.tensor(False)].shape == (0, 2, 3)
    assert x[0, True].shape == (1, 3)
    assert x[True, 0].shape == (1, 3)
    assert x[None, True].shape == (1, 1, 2, 3)
    assert x[..., True].shape == (2, 3, 1)
    assert x[True, torch.tensor([0, 1])].shape == (2, 3)
    assert x[1, torch.tensor(False)].shape == (0, 3)
    assert torch.tensor(3.0)[True].tolist() == [3.0]
    y = x[True]
    assert type(y.grad_fn).__name__ == "IndexBackward0"
    y.sum().backward()
    assert x.grad.tolist() == [[1.0] * 3] * 2
    z = torch.zeros(2, 3)
    z[True] = 1.0
    assert z.sum().item() == 6.0
    z = torch.zeros(2, 3)
    z[torch.tensor(False)] = torch.ones(3)
    assert z.sum().item() == 0.0


def test_ipow_is_in_place():
    """``x **= e`` writes into x: views and aliases see it (it was rebinding to a new tensor)."""
    base = torch.tensor([1.0, 2.0, 3.0])
    view = base[1:]
    alias = view
    view **= 2
    assert alias is view
    assert base.tolist() == [1.0, 4.0, 9.0]
    x = torch.tensor([2.0, 3.0], requires_grad=True)
    y = x * 1
    y **= 2
    assert type(y.grad_fn).__name__ == "PowBackward0"
    y.sum().backward()
    assert x.grad.tolist() == [4.0, 6.0]
    for op in ("__iadd__", "__isub__", "__imul__", "__itruediv__", "__ipow__"):
        assert hasattr(torch.Tensor, op)


def test_big_python_ints_in_operators():
    t = torch.ones(2)
    r = 2**63 == t
    assert isinstance(r, torch.Tensor) and r.tolist() == [False, False]
    assert (t < 2**63).tolist() == [True, True]
    assert (t + 2**63).tolist() == [2.0**63, 2.0**63]
    assert t.clone().add_(2**63).tolist() == [2.0**63, 2.0**63]
    assert t.clone().fill_(2**63).tolist() == [2.0**63, 2.0**63]
    for call in (lambda: t == 2**64, lambda: 2**64 + t, lambda: t.mul_(2**70), lambda: t.gt(-(2**64))):
        # PyTorch's argument parser: beyond uint64, or below int64 (Note [Python ints as scalars]).
        with pytest.raises(OverflowError, match="int too big to convert|can't convert negative int to unsigned"):
            call()


def test_grad_assignment():
    x = torch.ones(2, requires_grad=True)
    with pytest.raises(TypeError, match="assigned grad expected to be a Tensor or None but got grad of type int"):
        x.grad = 0
    with pytest.raises(TypeError, match="got grad of type list"):
        x.grad = [1.0, 2.0]
    with pytest.raises(RuntimeError, match="can't assign Variable as its own grad"):
        x.grad = x
    x.grad = torch.ones(2)
    x.grad = None
    assert x.grad is None


def test_manual_seed_returns_the_default_generator():
    g = torch.manual_seed(3)
    assert g is torch.default_generator and isinstance(g, torch.Generator)
    assert g.initial_seed() == 3 == torch.initial_seed()
    assert torch.manual_seed(-1).initial_seed() == 2**64 - 1
    assert torch.manual_seed("7").initial_seed() == 7
    assert g.manual_seed(5) is g
    state = g.get_state()
    assert state.shape == (5056,)
    a = torch.rand(3)
    g.set_state(state)
    assert torch.rand(3).tolist() == a.tolist()
    torch.set_rng_state(torch.get_rng_state())
    # An independent generator does not move the default one.
    g.manual_seed(5)
    expected = torch.rand(2).tolist()
    g.manual_seed(5)
    torch.rand(4, generator=torch.Generator().manual_seed(1))
    assert torch.rand(2).tolist() == expected


# ----------------------------------------------------------------------------- against PyTorch

SNIPPETS = [
    "torch.abs(1.5)",
    "torch.sin(torch.float32)",
    "torch.eye(-1)",
    "torch.linspace(0, 1, -1)",
    "torch.randperm(-1)",
    "torch.randint(0, 5, (-1,))",
    "torch.randperm(-float('inf'))",
    "torch.ones(2).softmax(2**63)",
    "torch.ones(2).sum(2**63)",
    "torch.ones(2).view(2**63)",
    "torch.tensor([1.5], dtype='float32')",
    "list(torch.tensor(3.))",
    "len(torch.tensor(3.))",
    "np.iterable(torch.tensor(3.))",
    "3. in torch.tensor([1., 3.])",
    "torch.tensor([1., 3.]) in torch.tensor([1., 3.])",
    "'a' in torch.tensor([1., 3.])",
    "3. in torch.tensor(3.)",
    "operator.index(torch.tensor(True))",
    "operator.index(torch.tensor(3.))",
    "float(torch.tensor([1., 2.]))",
    "int(torch.tensor([1., 2.]))",
    "int(torch.tensor(float('inf')))",
    "int(torch.tensor(float('nan')))",
    "int(torch.tensor(1e20))",
    "tuple(torch.ones(2, 3)[True].shape)",
    "tuple(torch.ones(2, 3)[torch.tensor(False)].shape)",
    "tuple(torch.tensor(3.)[torch.tensor(True)].shape)",
    "tuple(torch.ones(2, 3)[1, torch.tensor(False)].shape)",
    "torch.zeros()",
    "torch.ones(2).view()",
    "torch.ones(2).reshape()",
    "torch.ones(2).permute()",
    "torch.ones(2).expand()",
    "torch.zeros(2, requires_grad=1.5)",
    "torch.mul(float('nan'), 2).dtype",
    "torch.true_divide(-99, 4).item()",
    "(2**63 == torch.ones(2)).tolist()",
    "(torch.ones(2) < 2**63).tolist()",
    "torch.tensor([2**63])",
    "torch.tensor([2**63-1, -2**63]).tolist()",
    "torch.full((2, 2), 1e30, dtype=torch.int64)",
    "type(torch.manual_seed(3)).__name__",
    "torch.manual_seed(-1).initial_seed()",
]


def _outcomes(module_name: str) -> list:
    import importlib

    mod = importlib.import_module(module_name)
    env = {"torch": mod, "np": np, "operator": operator}
    out = []
    for code in SNIPPETS:
        try:
            value = eval(code, env)
            out.append(("ok", str(value) if not isinstance(value, mod.Tensor) else "tensor"))
        except Exception as e:  # noqa: BLE001
            out.append(("raise", type(e).__name__))
    return out


def test_matches_pytorch():
    pytest.importorskip("torch")
    ours = _outcomes("rustgrad")
    theirs = _outcomes("torch")
    diffs = [(code, a, b) for code, a, b in zip(SNIPPETS, ours, theirs) if a != b]
    assert not diffs


def test_a_factory_that_raises_draws_no_random_numbers():
    """Bad keywords are refused before sampling, so the generator's stream is unchanged."""
    torch.manual_seed(0)
    expected = torch.rand(3).tolist()
    torch.manual_seed(0)
    for call in (
        lambda: torch.randn(3, 2, requires_grad=torch.int64),
        lambda: torch.rand(2, requires_grad="abc"),
        lambda: torch.randint(0, 5, (2,), requires_grad=1),
        lambda: torch.randperm(4, bogus=1),
    ):
        with pytest.raises(TypeError):
            call()
    assert torch.rand(3).tolist() == expected


def test_ipow_with_a_bad_exponent_raises_type_error():
    x = torch.rand(3, requires_grad=True)
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for \*\*=: 'Tensor' and 'NoneType'"):
        x **= None
    with pytest.raises(ValueError, match="Overflow when unpacking long long"):
        x.min(2**63)
    with pytest.raises(ValueError, match="Overflow when unpacking long long"):
        x.max(-(2**63) - 1)


@pytest.mark.parametrize(
    "name", ["uniform_", "normal_", "constant_", "ones_", "zeros_", "xavier_uniform_", "xavier_normal_",
             "kaiming_uniform_", "kaiming_normal_"]
)
def test_init_of_a_non_tensor_raises_type_error(name):
    """``nn.init`` functions reject a non-tensor with TypeError (PyTorch: AttributeError)."""
    args = (1.5, 0.0) if name == "constant_" else (1.5,)
    with pytest.raises(TypeError, match="must be Tensor"):
        getattr(torch.nn.init, name)(*args)
    with pytest.raises(TypeError, match="not supported"):
        torch.nn.init.kaiming_uniform_(torch.ones(2, 2), 0, None)


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda: torch.tensor([1, None]), RuntimeError),
        (lambda: torch.tensor(None), RuntimeError),
        (lambda: torch.tensor({}), RuntimeError),
        (lambda: torch.tensor("a"), TypeError),
        (lambda: torch.ones(3)["a"], TypeError),
        (lambda: torch.ones(3)[None, 2**63], ValueError),
        (lambda: torch.arange(0.5, "abc", 2), TypeError),
        (lambda: torch.arange(None), TypeError),
        (lambda: torch.arange(torch.tensor([1, 2])), TypeError),
        (lambda: F.l1_loss(torch.ones(2), torch.ones(2), reduction=1.5), ValueError),
        (lambda: F.mse_loss(torch.ones(2), torch.ones(2), reduction=None), ValueError),
        (lambda: F.cross_entropy(torch.ones(2, 3), torch.tensor([0, 1]), reduction=1e300), ValueError),
    ],
)
def test_bad_data_index_and_reduction_arguments(call, exc):
    with pytest.raises(exc):
        call()
    assert torch.tensor(range(3)).tolist() == [0, 1, 2]
    assert torch.arange(True).tolist() == [0]
