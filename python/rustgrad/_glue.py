"""Python objects the Rust core hands out or calls back: Size, device, repr, warnings."""

from __future__ import annotations

import warnings
from collections import namedtuple
from collections.abc import Sequence

import numpy as np

from rustgrad import _rustgrad
from rustgrad._tensor_str import format_tensor


class Size(tuple):
    """The shape of a tensor: a tuple that prints as ``torch.Size([2, 3])``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"torch.Size([{', '.join(str(s) for s in self)}])"

    __str__ = __repr__

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, item):
        out = tuple.__getitem__(self, item)
        return Size(out) if isinstance(item, slice) else out

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))


class device:
    """A device; only the CPU exists here."""

    __slots__ = ("index", "type")
    type: str
    index: int | None

    def __init__(self, type: str | device = "cpu", index: int | None = None) -> None:
        if isinstance(type, device):
            type, index = type.type, type.index  # type: ignore[assignment]  # mypy assigns pairwise
        if isinstance(type, int) and not -(2**63) <= type < 2**63:
            raise ValueError("Overflow when unpacking long long")
        name, _, idx = str(type).partition(":")
        if name != "cpu":
            raise RuntimeError(
                f"Device '{type}' is not available: rustgrad runs on the CPU only"
                if name in ("cuda", "mps", "xpu", "meta")
                else f"Expected one of cpu, cuda, ... device type at start of device string: {type}"
            )
        self.type = name
        self.index = int(idx) if idx else index

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")


def _check_device(dev) -> None:
    if dev is None:
        return
    device(dev)


def _function_backward(ctx, grads):
    from rustgrad.autograd.function import _function_backward

    return _function_backward(ctx, grads)


def _format_stack() -> str:
    """The current Python stack, innermost call last (anomaly mode's forward traceback)."""
    import traceback

    return "".join(traceback.format_stack()[:-1])


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=2)


def _warn_grad_cycles(leaves) -> None:
    shapes = ", ".join(f"{list(t.shape)}" for t in leaves)
    warnings.warn(
        "Using backward() with create_graph=True will create a reference cycle between the parameter and its "
        "gradient which can cause a memory leak. We recommend using autograd.grad when creating the graph to "
        "avoid this. If you have to use this function, make sure to reset the .grad fields of your parameters "
        f"to None after use to break the cycle and avoid the leak. (rustgrad: the .grad of {len(leaves)} leaf "
        f"tensor(s) of shape {shapes} now holds a graph leading back to the leaf itself.)",
        UserWarning,
        stacklevel=3,
    )


def _warn_non_leaf_grad() -> None:
    warnings.warn(
        "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
        "attribute won't be populated during autograd.backward(). If you indeed want the .grad field "
        "to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you "
        "access the non-leaf Tensor by mistake, make sure you access the leaf Tensor instead. See "
        "github.com/pytorch/pytorch/pull/30531 for more information.",
        UserWarning,
        stacklevel=2,
    )


_RETURN_TYPES = {
    name: namedtuple(name, ["values", "indices"])
    for name in ("max", "min", "sort", "topk", "kthvalue", "median", "mode", "cummax", "cummin")
}
_RETURN_TYPES["aminmax"] = namedtuple("aminmax", ["min", "max"])
for _cls in _RETURN_TYPES.values():
    _cls.__module__ = "torch.return_types"
    _cls.__repr__ = lambda self, _n=_cls.__name__: (  # type: ignore[method-assign, misc]
        f"torch.return_types.{_n}(\n" + ",\n".join(f"{f}={v!r}" for f, v in zip(self._fields, self)) + ")"
    )


def _return_type(name: str, values, indices):
    return _RETURN_TYPES[name](values, indices)  # type: ignore[call-arg]


def _tensor_repr(t) -> str:
    suffixes = []
    fn = t.grad_fn
    if fn is not None:
        suffixes.append(f"grad_fn=<{type(fn).__name__}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return format_tensor(t.detach().numpy(), dtype=_dtype_name(t.dtype), suffixes=suffixes)


_NP_DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "int64": np.int64,
    "bool": np.bool_,
}


def _dtype_name(dtype) -> str:
    return repr(dtype).replace("torch.", "")


def _numpy_of(data, dtype=None) -> tuple[np.ndarray, _rustgrad.dtype]:
    """Copies ``data`` (nested sequences, numbers, arrays, tensors) into a fresh contiguous
    array of the dtype the tensor will have, inferring it as PyTorch does."""
    if dtype is not None and not isinstance(dtype, _rustgrad.dtype):
        from rustgrad._args import dtype_arg

        dtype = dtype_arg("tensor", dtype)
    if isinstance(data, _rustgrad.Tensor):
        arr = data.detach().numpy()
        if dtype is None:
            dtype = data.dtype
    elif isinstance(data, np.ndarray):
        arr = data
    else:
        try:
            arr = np.array(_unwrap(data, dtype))
        except ValueError:
            _check_nesting(data, dtype)
            raise
        if arr.dtype.kind in "uO" and (dtype is None or not dtype.is_floating_point):
            _check_int64_range(arr)
        if dtype is _rustgrad.int64 and arr.dtype.kind == "f":
            _check_floats_fit_int64(arr)
        if dtype is None and not _has_numpy_values(data):
            # Python floats become the default dtype; numpy scalars keep theirs.
            if arr.dtype.kind == "f":
                dtype = _rustgrad.float32
            elif arr.dtype.kind == "c":
                raise TypeError("complex tensors are not supported by rustgrad")
    if dtype is None:
        kind = arr.dtype.kind
        if kind == "f":
            dtype = _rustgrad.float64 if arr.dtype == np.float64 else _rustgrad.float32
        elif kind in "iu":
            dtype = _rustgrad.int64
        elif kind == "b":
            dtype = _rustgrad.bool
        else:
            raise TypeError(
                f"can't convert np.ndarray of type numpy.{arr.dtype}. The only supported types are: "
                "float64, float32, int64, and bool."
            )
    np_dtype = _NP_DTYPES[_dtype_name(dtype)]
    with np.errstate(invalid="ignore", over="ignore"):  # casts as PyTorch's, without numpy's warnings
        return np.array(arr, dtype=np_dtype, copy=True, order="C"), dtype


def _check_int64_range(arr: np.ndarray) -> None:
    """Python ints outside int64 (numpy made them uint64 or objects) raise PyTorch's ValueError."""
    if arr.dtype.kind == "u":
        if arr.size and int(arr.max()) >= 2**63:
            raise ValueError("Overflow when unpacking long long")
        return
    for v in arr.flat:
        if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63:
            raise ValueError("Overflow when unpacking long long")


def _has_numpy_values(data) -> bool:
    """Whether nested data holds numpy scalars or arrays (whose dtype PyTorch keeps)."""
    while isinstance(data, (list, tuple)) and len(data) > 0:
        data = data[0]
    return isinstance(data, (np.generic, np.ndarray))


def _check_nesting(data, dtype) -> None:
    """PyTorch's errors for ragged nested lists: the sizes come from the first elements, every
    other list must match them, and nothing but numbers may sit below the last dim."""
    sizes = []
    d = data
    while isinstance(d, (list, tuple)):
        sizes.append(len(d))
        if not d:
            break
        d = d[0]

    def leaves(x):
        if isinstance(x, (list, tuple)):
            for y in x:
                yield from leaves(y)
        else:
            yield x

    floating = dtype.is_floating_point if dtype is not None else any(isinstance(v, float) for v in leaves(data))

    def walk(x, dim: int) -> None:
        if dim == len(sizes):
            if isinstance(x, (list, tuple)):
                name = type(x).__name__
                if floating:
                    raise TypeError(f"must be real number, not {name}")
                raise TypeError(f"'{name}' object cannot be interpreted as an integer")
            return
        if not isinstance(x, (list, tuple)):
            raise TypeError("not a sequence")
        if len(x) != sizes[dim]:
            raise ValueError(f"expected sequence of length {sizes[dim]} at dim {dim} (got {len(x)})")
        for y in x:
            walk(y, dim + 1)

    walk(data, 0)


def _check_floats_fit_int64(arr: np.ndarray) -> None:
    """Numbers written into an int64 tensor must fit it (NaN, infinities and values beyond
    int64 raise PyTorch's RuntimeError); arrays given as such are cast without this check."""
    with np.errstate(invalid="ignore"):
        fits = np.isfinite(arr) & (arr >= -(2.0**63)) & (arr < 2.0**63)
    if not fits.all():
        raise RuntimeError("value cannot be converted to type int64 without overflow")


def _unwrap(data, dtype=None, depth: int = 0, first: bool = True):
    """Replaces tensors nested in lists by their values, so numpy can read them; an element that
    is not a number, a sequence, an array or a tensor raises as PyTorch does (which error depends
    on whether a dtype was given). Into an integral dtype, a nested tensor is read as an index (it
    must be integral)."""
    if isinstance(data, (list, tuple)):
        return [_unwrap(d, dtype, depth + 1, first and i == 0) for i, d in enumerate(data)]
    integral = dtype is not None and not dtype.is_floating_point
    if isinstance(data, _rustgrad.Tensor):
        if integral and data.is_floating_point():
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return data.detach().numpy()
    if isinstance(data, str):
        if depth and first:  # where the sizes are read: a string would be one more dim
            raise ValueError(f"too many dimensions '{type(data).__name__}'")
        raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
    if isinstance(data, (int, float, complex, np.generic, np.ndarray, Sequence)):
        return data
    from rustgrad._args import type_name

    if dtype is None:
        raise RuntimeError(f"Could not infer dtype of {type_name(data)}")
    if integral:
        raise TypeError(f"'{type_name(data)}' object cannot be interpreted as an integer")
    raise TypeError(f"must be real number, not {type_name(data)}")


def _legacy_tensor(data):
    """``torch.Tensor(data)``: always float32."""
    arr, _ = _numpy_of(data, _rustgrad.float32)
    return _rustgrad.from_numpy(arr)


def _tensor_reduce(values, requires_grad):
    return (_rebuild, (values, requires_grad))


def _rebuild(values, requires_grad):
    t = _rustgrad.from_numpy(np.array(values, copy=True))
    if requires_grad:
        t.requires_grad_(True)
    return t
