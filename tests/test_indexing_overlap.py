"""Memory overlap in in-place writes, index_select/gather/scatter checks, masked_fill
broadcasting and the argument types of indexing, as PyTorch 2.x has them.

Every case is a function of the module under test (`rustgrad`, or `torch` when installed), so
the same table is checked against the expected result written here (closed forms) and, when
PyTorch is importable, against PyTorch itself.
"""

import warnings

import numpy as np
import pytest
import rustgrad

PARTIAL = (
    "unsupported operation: some elements of the input tensor and the written-to tensor refer to a single "
    "memory location. Please clone() the tensor before performing the operation."
)
INTERNAL = (
    "unsupported operation: more than one element of the written-to tensor refers to a single memory "
    "location. Please clone() the tensor before performing the operation."
)


def _on(x, f):
    """``f(x)``: lets a one-line case name its tensor."""
    return f(x)


# name -> (case(t) -> result, expected): expected is an exception (class, message) or the values.
CASES = {
    # --- partial overlap: refused for element-wise operands, copy_ sources, index tensors ---
    "p[p] = -2": (
        lambda t: _on(t.tensor([2, 0, 1, 3]), lambda p: p.__setitem__(p, -2)),
        (RuntimeError, PARTIAL),
    ),
    "p[p] = tensor": (
        lambda t: _on(t.tensor([2, 0, 1, 3]), lambda p: p.__setitem__(p, t.tensor(5))),
        (RuntimeError, PARTIAL),
    ),
    "index_put_ index view of target": (
        lambda t: _on(t.zeros(4, dtype=t.int64), lambda x: x.index_put_((x[:2],), t.tensor(1))),
        (RuntimeError, PARTIAL),
    ),
    "index_put_ values are target": (
        lambda t: _on(t.zeros(4), lambda x: x.index_put_((t.tensor([0, 1, 2, 3]),), x)),
        (RuntimeError, PARTIAL),
    ),
    "index_put out of place may overlap": (
        lambda t: _on(t.tensor([2, 0, 1, 3]), lambda p: p.index_put((p,), t.tensor(1))),
        [1, 1, 1, 1],
    ),
    "strided index of a strided target": (
        lambda t: _on(t.zeros(6, dtype=t.int64)[::2], lambda q: q.__setitem__(q, 1)),
        (RuntimeError, PARTIAL),
    ),
    "strided index of a dense target": (
        lambda t: _on(t.zeros(6, dtype=t.int64), lambda x: (x.__setitem__(x[::2], 1), x)[1]),
        [1, 0, 0, 0, 0, 0],
    ),
    "bool mask is target": (
        lambda t: _on(t.tensor([False, True, True, False]), lambda b: (b.__setitem__(b, False), b)[1]),
        [False, False, False, False],
    ),
    "bool mask partially overlaps": (
        lambda t: _on(t.zeros(4, dtype=t.bool), lambda b: b[1:].__setitem__(b[:3], True)),
        (RuntimeError, PARTIAL),
    ),
    "v += v[1]": (lambda t: _on(t.ones(2), lambda v: v.__iadd__(v[1])), (RuntimeError, PARTIAL)),
    "v[1:] += v[:-1]": (lambda t: _on(t.ones(4), lambda v: v[1:].add_(v[:-1])), (RuntimeError, PARTIAL)),
    "v += v (full overlap)": (lambda t: _on(t.ones(3), lambda v: (v.__iadd__(v), v)[1]), [2.0, 2.0, 2.0]),
    "v += v.view(3)": (lambda t: _on(t.ones(3), lambda v: (v.add_(v.view(3)), v)[1]), [2.0, 2.0, 2.0]),
    "v.add_(v.t())": (lambda t: _on(t.ones(2, 2), lambda v: v.add_(v.t())), (RuntimeError, PARTIAL)),
    "sub_ reshape 0-d": (lambda t: _on(t.ones(1), lambda v: v.sub_(v.reshape(()))), (RuntimeError, PARTIAL)),
    "mul_ 0-d alias": (
        lambda t: _on(t.tensor(True), lambda v: v.unsqueeze(0).mul_(v)),
        (RuntimeError, PARTIAL),
    ),
    "div_ chunk": (lambda t: _on(t.ones(3), lambda v: v.div_(v.chunk(2)[1])), (RuntimeError, PARTIAL)),
    "pow_ tensor exponent": (lambda t: _on(t.ones(3), lambda v: v.pow_(v[0])), (RuntimeError, PARTIAL)),
    "ipow tensor exponent": (lambda t: _on(t.ones(3), lambda v: v.__ipow__(v[1])), (RuntimeError, PARTIAL)),
    "lerp_ weight": (lambda t: _on(t.ones(4), lambda v: v.lerp_(t.ones(4), v[1])), (RuntimeError, PARTIAL)),
    "addcmul_": (lambda t: _on(t.ones(4), lambda v: v.addcmul_(v[1:2], v[1:2])), (RuntimeError, PARTIAL)),
    "copy_ partial": (lambda t: _on(t.ones(4), lambda v: v[:2].copy_(v[1:3])), (RuntimeError, PARTIAL)),
    "setitem copy partial": (
        lambda t: _on(t.ones(4), lambda v: v.__setitem__(slice(0, 2), v[1:3])),
        (RuntimeError, PARTIAL),
    ),
    "setitem copy disjoint": (
        lambda t: _on(t.arange(4.0), lambda v: (v.__setitem__(slice(0, 2), v[2:]), v)[1]),
        [2.0, 3.0, 2.0, 3.0],
    ),
    "setitem 0-d tensor value may overlap": (
        lambda t: _on(t.arange(3.0), lambda v: (v.__setitem__(slice(1, None), v[0]), v)[1]),
        [0.0, 0.0, 0.0],
    ),
    "overlap before shape error": (
        lambda t: _on(t.ones(4), lambda v: v.reshape(4, 1).add_(v.view(1, 4))),
        (RuntimeError, PARTIAL),
    ),
    "non-dense operand is too hard to check": (
        lambda t: _on(t.arange(8.0), lambda v: (v[:4].add_(v[::2]), v)[1]),
        [0.0, 3.0, 6.0, 9.0, 4.0, 5.0, 6.0, 7.0],
    ),
    "empty operand never overlaps": (
        lambda t: _on(t.ones(2), lambda v: (v[:0].add_(v[:0]), v)[1]),
        [1.0, 1.0],
    ),
    # --- internal overlap: refused, allowed (fills) or only warned about (index_put_ & co) ---
    "expanded add_": (lambda t: t.zeros(1).expand(4).add_(1), (RuntimeError, INTERNAL)),
    "expanded copy_": (lambda t: t.zeros(1).expand(4).copy_(t.ones(4)), (RuntimeError, INTERNAL)),
    "expanded fill_ number": (lambda t: _on(t.zeros(1), lambda b: (b.expand(4).fill_(2), b)[1]), [2.0]),
    "expanded zero_": (lambda t: _on(t.ones(1), lambda b: (b.expand(4).zero_(), b)[1]), [0.0]),
    "expanded fill_ tensor": (lambda t: t.zeros(1).expand(4).fill_(t.tensor(2.0)), (RuntimeError, INTERNAL)),
    "expanded setitem number": (
        lambda t: _on(t.zeros(1), lambda b: (b.expand(4).__setitem__(Ellipsis, 3.0), b)[1]),
        [3.0],
    ),
    "expanded index_put duplicate index": (
        lambda t: _on(
            t.full((), -1), lambda b: (b.expand(2, 4)[:, 0].__setitem__([1, 1], t.tensor(5)), b)[1]
        ),
        5,
    ),
    "expanded index_put one element": (
        lambda t: _on(t.zeros(1), lambda b: (b.expand(4).__setitem__(t.tensor([0]), 3.0), b)[1]),
        [3.0],
    ),
    "expanded masked setitem": (
        lambda t: _on(
            t.zeros(1), lambda b: (b.expand(4).__setitem__(t.tensor([False, True, False, False]), 3.0), b)[1]
        ),
        [3.0],
    ),
    # --- index_select ---
    "index_select zero-size dim": (
        lambda t: t.zeros(3, 3, 0).index_select(2, t.tensor([0, 0, 0])),
        (RuntimeError, "index_select(): self indexing axis dim should be positive"),
    ),
    "index_select float index": (
        lambda t: t.index_select(t.zeros(4, 1, 2), -3, t.tensor([])),
        (RuntimeError, "index_select(): Expected dtype int32 or int64 for index"),
    ),
    "index_select bool index": (
        lambda t: t.zeros(4).index_select(0, t.tensor([True])),
        (RuntimeError, "index_select(): Expected dtype int32 or int64 for index"),
    ),
    "index_select 2-d index": (
        lambda t: t.zeros(4).index_select(0, t.tensor([[0.0]])),
        (IndexError, "index_select(): Index is supposed to be a vector"),
    ),
    "index_select out of range dim 0": (
        lambda t: t.zeros(2, 3).index_select(0, t.tensor([2])),
        (IndexError, "index out of range in self"),
    ),
    "index_select negative": (
        lambda t: t.zeros(3).index_select(0, t.tensor([-1])),
        (IndexError, "index out of range in self"),
    ),
    "index_select out of range dim 1": (
        lambda t: t.zeros(2, 3).index_select(1, t.tensor([0, 7])),
        (RuntimeError, "INDICES element is out of DATA bounds, id=7 axis_dim=3"),
    ),
    "index_select empty self": (
        lambda t: t.zeros(2, 0, 3).index_select(0, t.tensor([3])),
        (RuntimeError, "INDICES element is out of DATA bounds, id=3 axis_dim=2"),
    ),
    "index_select 0-d self": (lambda t: t.tensor(5.0).index_select(0, t.tensor([0])), 5.0),
    "index_select 0-d self two values": (
        lambda t: t.tensor(5.0).index_select(0, t.tensor([0, 0])),
        (RuntimeError, "index_select(): Index to scalar can have only 1 value, got 2 value(s)"),
    ),
    "index_select 0-d index": (lambda t: t.arange(4.0).index_select(0, t.tensor(2)), [2.0]),
    "index_select empty index": (
        lambda t: t.zeros(2, 3).index_select(1, t.tensor([], dtype=t.int64)).shape,
        (2, 0),
    ),
    # --- gather / scatter ---
    "gather empty float index": (lambda t: t.tensor([]).gather(-1, t.tensor([])), []),
    "gather empty index skips shape checks": (lambda t: t.zeros(2, 3).gather(0, t.zeros(0, 5)).shape, (0, 5)),
    "gather float index": (
        lambda t: t.zeros(3).gather(0, t.zeros(2)),
        (RuntimeError, "gather(): Expected dtype int32/int64 for index"),
    ),
    "gather negative index": (
        lambda t: t.zeros(3).gather(0, t.tensor([-1])),
        (RuntimeError, "index -1 is out of bounds for dimension 0 with size 3"),
    ),
    "scatter value with empty float index": (
        lambda t: t.arange(4.0).scatter(0, t.tensor([]), value=-2),
        [0.0, 1.0, 2.0, 3.0],
    ),
    "scatter_add empty float index": (
        lambda t: t.zeros(3).scatter_add(0, t.tensor([]), t.ones(3)),
        [0.0] * 3,
    ),
    "scatter float index": (
        lambda t: t.zeros(3).scatter_add(0, t.tensor([0.0]), t.ones(3)),
        (RuntimeError, "scatter(): Expected dtype int32/int64 for index"),
    ),
    "scatter bad dim before dtypes": (
        lambda t: t.tensor([], dtype=t.int64).scatter(-3, t.tensor([]), t.tensor([])),
        (IndexError, "Dimension out of range (expected to be in range of [-1, 0], but got -3)"),
    ),
    "scatter dtypes before empty index": (
        lambda t: t.zeros(3).scatter(0, t.tensor([], dtype=t.int64), t.ones(3, dtype=t.int64)),
        (RuntimeError, "scatter(): Expected self.dtype to be equal to src.dtype"),
    ),
    "scatter index bigger than src": (
        lambda t: t.zeros(2, 3).scatter(0, t.zeros(2, 2, dtype=t.int64), t.ones(1, 3)),
        (
            RuntimeError,
            (
                "Expected index [2, 2] to be no larger than self [2, 3] apart from dimension 0 and to be no larger "
                "size than src [1, 3]"
            ),
        ),
    ),
    "scatter index ndim": (
        lambda t: t.zeros(2, 3).scatter(0, t.zeros(2, dtype=t.int64), t.ones(5, 3)),
        (RuntimeError, "Index tensor must have the same number of dimensions as self tensor"),
    ),
    "scatter 0-d src, two indices": (
        lambda t: t.zeros(3).scatter(0, t.zeros(2, dtype=t.int64), t.tensor(4.0)),
        (
            RuntimeError,
            (
                "Expected index [2] to be no larger than self [3] apart from dimension 0 and to be no larger size "
                "than src []"
            ),
        ),
    ),
    "scatter src dims checked before the size error": (
        lambda t: t.zeros(2, 3).scatter(0, t.zeros(2, 4, dtype=t.int64), t.zeros(1)),
        (RuntimeError, "Index tensor must have the same number of dimensions as src tensor"),
    ),
    "scatter reads a dim src lacks": (
        lambda t: t.zeros(1, 4).scatter_add(0, t.zeros(1, 3, dtype=t.int64), t.zeros(5)),
        (IndexError, "Dimension out of range (expected to be in range of [-1, 0], but got 1)"),
    ),
    "scatter 0-d src has every dim": (
        lambda t: t.zeros(2, 4).scatter(0, t.zeros(1, 2, dtype=t.int64), t.tensor(4.0)),
        (RuntimeError, "Index tensor must have the same number of dimensions as src tensor"),
    ),
    # --- masked_fill ---
    "masked_fill broadcasts self": (
        lambda t: t.arange(2.0).masked_fill(t.tensor([[True, False], [False, True]]), -1.0),
        [[-1.0, 1.0], [0.0, -1.0]],
    ),
    "masked_fill broadcasts 0-d self": (
        lambda t: t.tensor(1.0).masked_fill(t.ones(2, dtype=t.bool), 3.0),
        [3.0, 3.0],
    ),
    "masked_fill_ does not": (
        lambda t: t.arange(2.0).masked_fill_(t.ones(2, 2, dtype=t.bool), -1.0),
        (RuntimeError, "output with shape [2] doesn't match the broadcast shape [2, 2]"),
    ),
    "masked_fill bad broadcast names the mask first": (
        lambda t: t.zeros(4).masked_fill(t.ones(3, dtype=t.bool), 1.0),
        (
            RuntimeError,
            "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 0",
        ),
    ),
    "masked_fill_ bad broadcast names self first": (
        lambda t: t.zeros(4).masked_fill_(t.ones(3, dtype=t.bool), 1.0),
        (
            RuntimeError,
            "The size of tensor a (4) must match the size of tensor b (3) at non-singleton dimension 0",
        ),
    ),
    # --- lerp's dtype checks (before shapes) ---
    "lerp end dtype": (
        lambda t: t.zeros(2, dtype=t.float64).lerp_(t.ones(3), 0.5),
        (RuntimeError, "expected dtype double for `end` but got dtype float"),
    ),
    "lerp weight dtype": (
        lambda t: t.zeros(2, 1).lerp(t.zeros(2, 1), t.arange(5)),
        (RuntimeError, "expected dtype float for `weight` but got dtype long int"),
    ),
    "lerp 0-d weight of another dtype": (lambda t: t.zeros(2).lerp(t.ones(2), t.tensor(1)), [1.0, 1.0]),
    "lerp bool weight": (lambda t: t.zeros(2).lerp(t.ones(2), True), [1.0, 1.0]),
    "lerp integer self": (
        lambda t: t.zeros(2, dtype=t.int64).lerp(t.ones(2, dtype=t.int64), 0.5),
        (NotImplementedError, "\"lerp_kernel_scalar\" not implemented for 'Long'"),
    ),
    # --- indexing argument types ---
    "assign a dtype": (
        lambda t: _on(t.zeros(()), lambda v: v.__setitem__(v, t.float64)),
        (TypeError, "can't assign a torch.dtype to a torch.FloatTensor"),
    ),
    "assign a list": (
        lambda t: t.zeros(2, dtype=t.int64).__setitem__(0, [1]),
        (TypeError, "can't assign a list to a torch.LongTensor"),
    ),
    "assign an ndarray": (
        lambda t: t.zeros(2).__setitem__(0, np.array(1.0)),
        (TypeError, "can't assign a numpy.ndarray to a torch.FloatTensor"),
    ),
    "assign a numpy int": (
        lambda t: _on(t.zeros(2), lambda v: (v.__setitem__(0, np.int64(3)), v)[1]),
        [3.0, 0.0],
    ),
    "assign 2**63": (
        lambda t: t.zeros(2).__setitem__(0, 2**63),
        (ValueError, "Overflow when unpacking long long"),
    ),
    "assign 2**63 to a leaf": (
        lambda t: t.zeros(1, 4, requires_grad=True).__setitem__((0, None, slice(None)), 2**63),
        (ValueError, "Overflow when unpacking long long"),
    ),
    "string key": (lambda t: t.zeros(3)["abc"], (IndexError, "too many indices for tensor of dimension 1")),
    "string key set": (
        lambda t: t.zeros(3).__setitem__("abc", -2.5),
        (IndexError, "too many indices for tensor of dimension 1"),
    ),
    "string key 3-d": (lambda t: t.zeros(2, 2, 2)["abc"], (TypeError, "new(): invalid data type 'str'")),
    "list with a string": (
        lambda t: t.zeros(2, 3, 1)[[1, "a"]],
        (TypeError, "new(): invalid data type 'str'"),
    ),
    "list with a string 1-d": (
        lambda t: t.zeros(3)[[1, "a"]],
        (IndexError, "too many indices for tensor of dimension 1"),
    ),
    "list of floats is truncated": (lambda t: t.arange(4.0)[[1, 2.5]], [1.0, 2.0]),
    "list with a slice is a tuple": (
        lambda t: t.arange(6.0).reshape(2, 3)[[1, slice(None)]],
        [3.0, 4.0, 5.0],
    ),
    "range key": (lambda t: t.arange(4.0)[range(2)], [0.0, 1.0]),
    "huge int key": (lambda t: t.tensor(0.5)[2**63], (ValueError, "Overflow when unpacking long long")),
    "huge int in list": (lambda t: t.zeros(3)[[2**63]], (ValueError, "Overflow when unpacking long long")),
    "float key": (
        lambda t: t.zeros(3)[1.5],
        (
            IndexError,
            (
                "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid indices "
                "(got float)"
            ),
        ),
    ),
    "out of range index, nothing read": (lambda t: t.eye(1, 0)[t.tensor([[4, -1], [0, 4]])].shape, (2, 2, 0)),
    "out of range index, nothing written": (
        lambda t: t.zeros(2, 0).index_put((t.tensor([5]),), t.tensor(1.0)).shape,
        (2, 0),
    ),
    "index into a dim of size 0": (
        lambda t: t.zeros(0, 2, dtype=t.float64).index_put((t.tensor([0]),), t.tensor(1.0)),
        (IndexError, "index is out of bounds for dimension with size 0"),
    ),
    "index into a dim of size 0, nothing read": (
        lambda t: t.zeros(2, 0)[t.tensor([5]), t.tensor([0])],
        (IndexError, "index is out of bounds for dimension with size 0"),
    ),
    "index_put value shape before dtype": (
        lambda t: t.zeros(2, 2, dtype=t.float64).index_put((t.tensor([0]),), t.ones(3)),
        (
            RuntimeError,
            "shape mismatch: value tensor of shape [3] cannot be broadcast to indexing result of shape [1, 2]",
        ),
    ),
    "index_put dtype before index values": (
        lambda t: t.zeros(2, 2, dtype=t.float64).index_put((t.tensor([5]),), t.tensor(1.0)),
        (
            RuntimeError,
            (
                "Index put requires the source and destination dtypes match, got Double for the destination and Float "
                "for the source."
            ),
        ),
    ),
    "mask shape mismatch in setitem": (
        lambda t: t.zeros(6).__setitem__(t.zeros(2) > 5, 1),
        (
            IndexError,
            "The shape of the mask [2] at index 0 does not match the shape of the indexed tensor [6] at index 0",
        ),
    ),
    "index_put indices not a tuple": (
        lambda t: t.zeros(2).index_put(t.tensor([1]), t.tensor(3.0)),
        (TypeError, "index_put(): argument 'indices' (position 1) must be tuple of Tensors, not Tensor"),
    ),
    "index_put values not a tensor": (
        lambda t: t.zeros(4).index_put((t.tensor([2]),), 99),
        (TypeError, "index_put(): argument 'values' (position 2) must be Tensor, not int"),
    ),
    "index_put_ values not a tensor": (
        lambda t: t.zeros(4).index_put_((t.tensor([2]),), 9.5),
        (TypeError, "index_put_(): argument 'values' (position 2) must be Tensor, not float"),
    ),
    "index_put index element not a tensor": (
        lambda t: t.zeros(4).index_put((0,), t.tensor(1.0)),
        (TypeError, "expected Tensor as element 0 in argument 0, but got int"),
    ),
}


def _run(t, case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ("ok", case(t))
        except Exception as e:  # noqa: BLE001 - the exception is the result being compared
            return ("raise", type(e), str(e))


def _plain(r):
    if hasattr(r, "tolist"):
        return r.tolist()
    if isinstance(r, tuple):
        return tuple(r)
    return r


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name):
    """rustgrad gives the expected values or exception (class and message)."""
    case, expected = CASES[name]
    got = _run(rustgrad, case)
    if isinstance(expected, tuple) and len(expected) == 2 and isinstance(expected[0], type):
        assert got[0] == "raise", f"expected {expected}, got {got}"
        assert (got[1], got[2]) == expected
    else:
        assert got[0] == "ok", got
        np.testing.assert_allclose(np.asarray(_plain(got[1]), dtype=float), np.asarray(expected, dtype=float))


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_pytorch(name):
    """The same case under PyTorch gives the same outcome."""
    torch = pytest.importorskip("torch")
    case, _ = CASES[name]
    ours, theirs = _run(rustgrad, case), _run(torch, case)
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "raise":
        assert (ours[1].__name__, ours[2]) == (
            theirs[1].__name__,
            theirs[2].split(" (Triggered internally")[0],
        )
    else:
        np.testing.assert_allclose(
            np.asarray(_plain(ours[1]), dtype=float), np.asarray(_plain(theirs[1]), dtype=float)
        )


def test_expanded_index_put_warns():
    """index_put_/masked_fill_/index_fill_ on an expanded tensor warn (PyTorch's deprecation)."""
    t = rustgrad
    e = t.zeros(1).expand(4)
    with pytest.warns(UserWarning, match="Use of index_put_ on expanded tensors is deprecated"):
        e.index_put_((t.tensor([0]),), t.tensor(1.0))
    with pytest.warns(UserWarning, match="Use of masked_fill_ on expanded tensors is deprecated"):
        e.masked_fill_(t.tensor([True, False, False, False]), 2.0)
    with pytest.warns(UserWarning, match="Use of index_fill_ on expanded tensors is deprecated"):
        e[t.tensor([0])] = 3.0
    assert e.tolist() == [3.0] * 4


def test_non_tuple_sequence_warns():
    """A list key read as a tuple of indices warns, as in PyTorch."""
    x = rustgrad.arange(6.0).reshape(2, 3)
    with pytest.warns(UserWarning, match="Using a non-tuple sequence for multidimensional indexing"):
        assert x[[1, slice(None)]].tolist() == [3.0, 4.0, 5.0]


def test_overlap_under_grad_mode():
    """The recorded path refuses a partial overlap too, after the autograd checks."""
    t = rustgrad
    leaf = t.ones(4, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        leaf[1:].add_(leaf[:3])
    x = leaf.clone()
    with pytest.raises(RuntimeError, match="some elements of the input tensor"):
        x[1:].add_(x[:3])
    x[2:].add_(x[:2])
    x.sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), [2.0, 2.0, 1.0, 1.0])


def test_masked_fill_broadcast_backward():
    """d masked_fill(x, m, v)/dx sums the broadcast gradient back to x's shape; d/dv counts the mask."""
    t = rustgrad
    x = t.arange(4.0, requires_grad=True)
    v = t.tensor(2.0, requires_grad=True)
    m = t.tensor([[False, False, True, True], [True, False, True, False]])
    out = x.masked_fill(m, v)
    assert out.shape == (2, 4) and out.grad_fn.name() == "MaskedFillBackward1"
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (~m.numpy()).sum(0))
    assert v.grad.item() == m.numpy().sum()


def test_index_select_backward():
    """d index_select/dx adds the gradient back at the selected positions (0-d self: 1)."""
    t = rustgrad
    x = t.arange(3.0, requires_grad=True)
    x.index_select(0, t.tensor([2, 2, 0])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 2.0])
    s = t.tensor(5.0, requires_grad=True)
    out = s.index_select(0, t.tensor([0]))
    assert out.shape == () and out.grad_fn.name() == "IndexSelectBackward0"
    out.backward()
    assert s.grad.item() == 1.0


def test_a_number_written_into_an_empty_tensor_raises_pytorchs_storage_error():
    torch = rustgrad
    message = (
        "setStorage: sizes [4], strides [0], storage offset 0, and itemsize 4 requiring a storage size of 4 "
        "are out of bounds for storage of size 0"
    )
    target = torch.tensor([])
    with pytest.raises(RuntimeError) as info:
        target[torch.zeros(4, dtype=torch.int64)] = -3
    assert str(info.value) == message and target.shape == (0,)
    with pytest.raises(RuntimeError, match=r"^setStorage: sizes \[2, 3\], strides \[0, 1\]"):
        torch.zeros(0, 3)[torch.tensor([0, 1])] = 2.0
    with pytest.raises(IndexError, match="^index is out of bounds for dimension with size 0$"):
        torch.zeros(0, 3)[torch.tensor([0, 1])] = torch.tensor(2.0)  # a tensor value: index_put_
    empty = torch.randint(-2, 3, (0, 4))
    empty[empty] = 3  # nothing to write: no overlap error either
    assert empty.shape == (0, 4)


def test_an_empty_tensor_indexing_itself_overlaps_through_a_one_dim_index_only():
    torch = rustgrad
    for shape, raises in [((0,), True), ((0, 4), False), ((2, 0, 3), False)]:
        v = torch.zeros(shape, dtype=torch.int64)
        if raises:
            with pytest.raises(RuntimeError, match="^unsupported operation: some elements"):
                v[v] = 3
        else:
            v[v] = 3  # PyTorch reshapes an index of other than one dim into a new tensor
        with pytest.raises(RuntimeError, match="^unsupported operation: some elements"):
            v[v] = v
    with pytest.raises(IndexError, match="^index is out of bounds for dimension with size 0$"):
        torch.randn(0)[torch.tensor([[0, 1], [0, 0]]).t()] = 0.25  # a non-contiguous index
    with pytest.raises(RuntimeError, match=r"^setStorage: sizes \[4\], strides \[0\]"):
        torch.randn(0)[torch.tensor([[0, 0], [1, 0]])] = 0.25  # a contiguous one is flattened
