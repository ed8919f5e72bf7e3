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
