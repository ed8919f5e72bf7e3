"""Logical and bitwise ops and the ``~ & | ^`` operators: values against numpy's ufuncs (the
definition), PyTorch's dtypes and errors, and the same calls under PyTorch when it is installed."""

from __future__ import annotations

import numpy as np
import pytest
import rustgrad

A = np.array([[1, 0, 3], [-2, 5, 0]])
B = np.array([[True, False, True], [False, True, True]])

CASES = [
    ("logical_not", lambda L, a, b: L.logical_not(a), lambda a, b: np.logical_not(a)),
    ("logical_and", lambda L, a, b: L.logical_and(a, b), np.logical_and),
    ("logical_or", lambda L, a, b: a.logical_or(b), np.logical_or),
    ("logical_xor", lambda L, a, b: L.logical_xor(a, b), np.logical_xor),
    ("invert_bool", lambda L, a, b: ~b, lambda a, b: ~b),
    ("invert_int", lambda L, a, b: ~a, lambda a, b: ~a),
    ("and", lambda L, a, b: a & b, np.bitwise_and),
    ("or_scalar", lambda L, a, b: a | 4, lambda a, b: a | 4),
    ("xor_rscalar", lambda L, a, b: True ^ b, lambda a, b: True ^ b),
    ("bitwise_xor", lambda L, a, b: L.bitwise_xor(a, a), np.bitwise_xor),
]


@pytest.mark.parametrize("name,fn,ref", CASES, ids=[c[0] for c in CASES])
def test_values_follow_numpy(name, fn, ref):
    out = fn(rustgrad, rustgrad.tensor(A), rustgrad.tensor(B))
    expected = ref(A, A if name == "bitwise_xor" else B)
    np.testing.assert_array_equal(out.numpy(), expected)
    assert out.numpy().dtype == expected.dtype or out.dtype == rustgrad.int64


def test_in_place_operators_write_into_the_tensor():
    mask = rustgrad.tensor([True, False, True])
    same = mask
    mask &= rustgrad.tensor([False, False, True])
    assert mask is same and mask.tolist() == [False, False, True]
    mask.logical_not_()
    assert mask.tolist() == [True, True, False]


def test_floats_raise_pytorchs_errors():
    with pytest.raises(TypeError, match="only implemented on integer and Boolean-type tensors"):
        ~rustgrad.randn(2)
    with pytest.raises(NotImplementedError, match="\"bitwise_and_cpu\" not implemented for 'Float'"):
        rustgrad.randn(2) & rustgrad.randn(2)


@pytest.mark.parametrize("name,fn,ref", CASES, ids=[c[0] for c in CASES])
def test_against_pytorch(name, fn, ref):
    torch = pytest.importorskip("torch")
    ours = fn(rustgrad, rustgrad.tensor(A), rustgrad.tensor(B))
    theirs = fn(torch, torch.tensor(A), torch.tensor(B))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert str(ours.dtype) == str(theirs.dtype)
