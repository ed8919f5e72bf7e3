"""Small ops that real programs of issue 13's corpus reached for: ``repeat_interleave``,
``torch.dropout``, and loading a whole pickled model inside ``serialization.safe_globals``."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rustgrad
from gradcheck import gradcheck, gradgradcheck


@pytest.mark.parametrize("repeats,dim", [(2, 1), (3, None), (2, 0)])
def test_repeat_interleave_by_a_number(repeats, dim):
    a = np.arange(6.0).reshape(2, 3)
    out = rustgrad.tensor(a).repeat_interleave(repeats, dim=dim)
    np.testing.assert_array_equal(out.numpy(), np.repeat(a, repeats, axis=dim))
    assert gradcheck(lambda x: x.repeat_interleave(repeats, dim=dim), [a])
    assert gradgradcheck(lambda x: x.repeat_interleave(repeats, dim=dim), [a])


def test_repeat_interleave_by_counts():
    a = np.arange(6.0).reshape(3, 2)
    out = rustgrad.repeat_interleave(rustgrad.tensor(a), rustgrad.tensor([1, 0, 2]), dim=0)
    np.testing.assert_array_equal(out.numpy(), np.repeat(a, [1, 0, 2], axis=0))
    assert rustgrad.repeat_interleave(rustgrad.tensor([1, 2])).tolist() == [0, 1, 1]


def test_torch_dropout_is_functional_dropout():
    rustgrad.manual_seed(3)
    a = rustgrad.dropout(rustgrad.ones(1000), 0.5, True)
    rustgrad.manual_seed(3)
    b = rustgrad.nn.functional.dropout(rustgrad.ones(1000), 0.5, True)
    assert a.tolist() == b.tolist()
    assert rustgrad.dropout(rustgrad.ones(3), 0.5, False).tolist() == [1.0, 1.0, 1.0]


def test_whole_model_loads_inside_safe_globals():
    model = rustgrad.nn.Sequential(rustgrad.nn.Linear(2, 2), rustgrad.nn.Dropout(0.1))
    buf = io.BytesIO()
    rustgrad.save(model, buf)
    buf.seek(0)
    with pytest.raises(Exception, match="Unsupported global"):
        rustgrad.load(buf)
    buf.seek(0)
    allowed = [rustgrad.nn.Sequential, rustgrad.nn.Linear, rustgrad.nn.Dropout]
    with rustgrad.serialization.safe_globals(allowed):
        loaded = rustgrad.load(buf)
    np.testing.assert_array_equal(loaded[0].weight.detach().numpy(), model[0].weight.detach().numpy())
