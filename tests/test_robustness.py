"""Nothing crashes, nothing is silently wrong: the panic net, checked sizes, fallible allocation."""

import pytest
import rustgrad as torch
from rustgrad import _rustgrad


def test_panic_becomes_runtime_error_naming_the_op():
    with pytest.raises(RuntimeError, match=r"^_debug_panic: internal error in rustgrad: boom \(at .*errors\.rs:\d+\)"):
        _rustgrad._debug_panic("boom")


def test_panic_net_leaves_the_interpreter_usable():
    for _ in range(3):
        with pytest.raises(RuntimeError):
            _rustgrad._debug_panic("again")
    assert torch.ones(2).sum().item() == 2.0


SIZE_CASES = [
    # (expression, PyTorch's message start)
    ("torch.zeros(2**40, 2**40)", "Storage size calculation overflowed with sizes=[1099511627776, 1099511627776]"),
    ("torch.zeros(2**61, 2)", "Storage size calculation overflowed with sizes=[2305843009213693952, 2]"),
    ("torch.randn(2**40, 2**40)", "Storage size calculation overflowed"),
    ("torch.arange(2**62)", "Storage size calculation overflowed with sizes=[4611686018427387904]"),
    ("torch.linspace(0, 1, 2**62)", "Storage size calculation overflowed"),
    ("torch.randperm(2**62)", "Storage size calculation overflowed"),
    ("torch.eye(2**40)", "numel: integer multiplication overflow"),
    ("torch.ones(1).expand(2**40, 2**40)", "numel: integer multiplication overflow"),
    ("torch.ones(1).expand(2**32, 2**32) + torch.ones(1).expand(2**32, 2**32)", "numel: integer multiplication overflow"),
    ("torch.ones(1).view(2**40, 2**40, 0)", "shape '[1099511627776, 1099511627776, 0]' is invalid for input of size 1"),
    ("torch.arange(0, float('inf'))", "unsupported range: 0 -> inf"),
]


@pytest.mark.parametrize("expr,message", SIZE_CASES)
def test_overflowing_sizes_raise_pytorchs_error(expr, message):
    with pytest.raises(RuntimeError) as info:
        eval(expr)
    assert str(info.value).startswith(message)


ALLOC_CASES = [
    ("torch.zeros(2**24, 2**24, dtype=torch.float64)", 2251799813685248),
    ("torch.arange(0, 1e16)", 40000000000000000),
    ("torch.ones(2**20, 1) + torch.ones(1, 2**30)", 4503599627370496),
    ("torch.ones(2**40, 1, dtype=torch.bool)", 1099511627776),
    ("torch.randperm(2**40)", 8796093022208),
    ("torch.rand(2**30, 2**30)", 4611686018427387904),
]


@pytest.mark.parametrize("expr,nbytes", ALLOC_CASES)
def test_impossible_allocations_raise_instead_of_aborting(expr, nbytes):
    with pytest.raises(RuntimeError, match=f"DefaultCPUAllocator: can't allocate memory: you tried to allocate {nbytes} bytes"):
        eval(expr)


def test_zero_dim_tensors_accept_dim_0_and_minus_1():
    x = torch.tensor(3.0, requires_grad=True)
    for y in (x.sum(0), x.mean(-1, keepdim=True), x.norm(p=1, dim=0), x.sum((0,)), x.amax(0) if hasattr(x, "amax") else x.sum(0)):
        assert y.shape == () and y.item() == 3.0
    assert torch.tensor(True).all(0).item() is True
    assert torch.tensor(False).any(-1).item() is False
    with pytest.raises(RuntimeError, match=r"^narrow\(\) cannot be applied to a 0-dim tensor\.$"):
        x.narrow(0, 0, 1)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 1\)"):
        x.sum(1)
