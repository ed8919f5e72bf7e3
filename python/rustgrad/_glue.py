"""Python objects the Rust core hands out or calls back: Size, device, repr, warnings."""

from __future__ import annotations

import re
import warnings
from collections import namedtuple
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, SupportsIndex, overload

import numpy as np

from rustgrad import _rustgrad
from rustgrad._tensor_str import format_tensor

if TYPE_CHECKING:
    from typing_extensions import Self


class Size(tuple[int, ...]):
    """The shape of a tensor: a tuple of ints that prints as ``torch.Size([2, 3])``.
    https://pytorch.org/docs/stable/size.html"""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"torch.Size([{', '.join(str(s) for s in self)}])"

    __str__ = __repr__

    def numel(self) -> int:
        """The number of elements of a tensor of this shape (1 for ``torch.Size([])``)."""
        n = 1
        for s in self:
            n *= s
        return n

    @overload
    def __getitem__(self, item: SupportsIndex) -> int: ...
    @overload
    def __getitem__(self, item: slice) -> Size: ...
    def __getitem__(self, item: SupportsIndex | slice) -> int | Size:
        """``size[i]`` is an int; ``size[a:b]`` is a ``Size``."""
        if isinstance(item, slice):
            return Size(tuple.__getitem__(self, item))
        return tuple.__getitem__(self, item)

    def __add__(self, other: tuple[Any, ...]) -> Size:  # type: ignore[override]
        """Concatenation that stays a ``Size``."""
        return Size(tuple(self) + tuple(other))


# PyTorch's device types, in the order its parser lists them.
DEVICE_TYPES = (
    "cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga", "maia", "xla",
    "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone",
)
_DEVICE_STRING = re.compile(r"([a-zA-Z_]+)(?::(0|[1-9][0-9]*))?")
_NO_INDEX = object()


class device:
    """``torch.device``: a device type and an optional index, built as PyTorch builds it.

    Every PyTorch device type can be named (``device('cuda:0')``, ``device('mps')``, ``device(0)``
    for ``cuda:0``) so that programs which only ask work; a tensor can only live on the CPU, and
    creating or moving one anywhere else raises PyTorch's error on a CPU-only build
    (see :func:`_check_device`). https://pytorch.org/docs/stable/tensor_attributes.html#torch.device
    """

    __slots__ = {
        "index": "The device's index (``1`` in ``'cuda:1'``), or None when none was given.",
        "type": "The device type: ``'cpu'``, ``'cuda'``, ``'mps'``, ...",
    }
    type: str
    index: int | None

    def __init__(self, type: str | device | int = "cpu", index: object = _NO_INDEX) -> None:
        if isinstance(type, device):
            type, index = type.type, (type.index if index is _NO_INDEX else index)  # type: ignore[assignment]
        elif isinstance(type, int) and not isinstance(type, bool):
            if not -(2**63) <= type < 2**63:
                raise ValueError("Overflow when unpacking long long")
            if type < 0:
                raise RuntimeError("Device index must not be negative")
            type, index = "cuda", type
        elif not isinstance(type, str):
            raise TypeError(
                f"device() received an invalid combination of arguments - got ({_type_name(type)}), but expected "
                "one of:\n * (torch.device device)\n      didn't match because some of the arguments have invalid "
                f"types: (!{_type_name(type)}!)\n * (str type, int index = -1)\n"
            )
        m = _DEVICE_STRING.fullmatch(type)
        if m is None:
            raise RuntimeError(f"Invalid device string: '{type}'")
        if m.group(1) not in DEVICE_TYPES:
            raise RuntimeError(
                f"Expected one of {', '.join(DEVICE_TYPES)} device type at start of device string: {type}"
            )
        if m.group(2) is not None:
            if index is not _NO_INDEX:
                raise RuntimeError(
                    f"type (string) must not include an index because index was passed explicitly: {type}"
                )
            index = int(m.group(2))
        if index is _NO_INDEX:
            index = None
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int):
                raise TypeError(f"device(): argument 'index' (position 2) must be int, not {_type_name(index)}")
            if index < 0:
                raise RuntimeError("Device index must not be negative")
        self.type = m.group(1)
        self.index = index  # type: ignore[assignment]

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

    def __reduce__(self):
        return (device, (self.type,) if self.index is None else (self.type, self.index))

    def __enter__(self) -> Self:
        """``with torch.device(...)``: the factories inside the block create tensors on this device
        (anything but the CPU raises there, as ``set_default_device`` does)."""
        global _default_device
        _device_stack.append(_default_device)
        _default_device = None if self.type == "cpu" else self
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _default_device
        _default_device = _device_stack.pop()


def _type_name(obj) -> str:
    from rustgrad._args import type_name

    return type_name(obj)


CPU = device("cpu")

# ``torch.set_default_device``: None stands for the CPU (and keeps the factories' check free).
_default_device: device | None = None
# The defaults to restore when ``with device(...)`` blocks end.
_device_stack: list = []


def unavailable_device_error(dev: device, factory: bool = False) -> Exception:
    """The exception PyTorch built without CUDA (or MPS, XPU...) raises when a tensor would be created
    on (``factory``) or moved to ``dev``; rustgrad's tensors live on the CPU only."""
    if dev.type == "cuda":
        return AssertionError("Torch not compiled with CUDA enabled")
    if dev.type == "xpu":
        return AssertionError("Torch not compiled with XPU enabled")
    if dev.type == "meta":
        return NotImplementedError(
            "rustgrad has no meta tensors: tensors live on the CPU only (device='meta' is not supported)"
        )
    if factory:
        backend = {"mps": "MPS", "hip": "HIP", "xla": "XLA", "hpu": "HPU", "mtia": "MTIA", "ipu": "IPU"}.get(
            dev.type, dev.type.upper()
        )
        return NotImplementedError(
            f"Could not run 'aten::empty.memory_format' with arguments from the '{backend}' backend. This "
            "could be because the operator doesn't exist for this backend, or was omitted during the "
            "selective/custom build process (if using custom build)."
        )
    return RuntimeError(f"PyTorch is not linked with support for {dev.type} devices")


def _check_device(dev, factory: bool = False) -> None:
    """Raises PyTorch's CPU-only-build error unless ``dev`` (a device, string or index) is the CPU;
    ``None`` passes. The Rust ``Tensor.to`` calls this; the factories pass ``factory=True``."""
    if dev is None:
        return
    d = dev if isinstance(dev, device) else device(dev)
    if d.type != "cpu":
        raise unavailable_device_error(d, factory)


def _check_generator_device(dev) -> None:
    """``torch.Generator(device)``: only the CPU, with a CPU-only build's errors for the others."""
    d = dev if isinstance(dev, device) else device(dev)
    if d.type == "cpu":
        return
    if d.type == "cuda":
        raise RuntimeError(
            "Cannot get CUDA generator without ATen_cuda library. PyTorch splits its backend into two shared "
            "libraries: a CPU library and a CUDA library; this error has occurred because you are trying to use "
            "some CUDA functionality, but the CUDA library has not been loaded by the dynamic linker for some "
            "reason.  The CUDA library MUST be loaded, EVEN IF you don't directly use any symbols from the CUDA "
            "library! One common culprit is a lack of -Wl,--no-as-needed in your link arguments; many dynamic "
            "linkers will delete dynamic library dependencies if you don't depend on any of their symbols.  You "
            "can check if this has occurred by using ldd on your binary to see if there is a dependency on "
            "*_cuda.so library."
        )
    raise RuntimeError(f"{d.type.upper()} device type not an accelerator.")


def _check_default_device() -> None:
    """For the factories: raises when ``set_default_device`` chose a device other than the CPU."""
    if _default_device is not None:
        _check_device(_default_device, factory=True)


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
_RETURN_TYPES["histogram"] = namedtuple("histogram", ["hist", "bin_edges"])
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
    if _rustgrad._dual_level_open():
        tangent = _rustgrad._unpack_dual(t)[1]
        if tangent is not None:
            suffixes.append(f"tangent={tangent!r}")
    values = t.detach()
    if _dtype_name(t.dtype) == "bfloat16":
        values = values.float()  # numpy has no bfloat16; float32 holds every value exactly
    return format_tensor(
        values.numpy(),
        dtype=_dtype_name(t.dtype),
        suffixes=suffixes,
        default_dtype=_dtype_name(_rustgrad._get_default_dtype()),
    )


_NP_DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "float16": np.float16,
    "bfloat16": np.float32,  # numpy has none: built in float32 (exact), then rounded by rustgrad
    "uint8": np.uint8,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "bool": np.bool_,
}
# numpy's dtypes that become a rustgrad dtype unchanged (the others are refused).
_FROM_NP = {
    np.dtype(np.float16): "float16",
    np.dtype(np.float32): "float32",
    np.dtype(np.float64): "float64",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.int8): "int8",
    np.dtype(np.int16): "int16",
    np.dtype(np.int32): "int32",
    np.dtype(np.int64): "int64",
    np.dtype(np.bool_): "bool",
}
_NUMPY_TYPES_MESSAGE = (
    "The only supported types are: float64, float32, float16, complex64, complex128, int64, int32, "
    "int16, int8, uint64, uint32, uint16, uint8, and bool."
)


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
        if dtype is not None and _dtype_name(dtype) in _INT_BITS and arr.dtype.kind == "f" or dtype is not None and _dtype_name(dtype) in ("uint8", "int8", "int16", "int32"):
            _check_numbers_fit(arr, _dtype_name(dtype))
        if dtype is None and not _has_numpy_values(data):
            # Python floats become the default dtype, Python ints int64; numpy scalars keep theirs.
            if arr.dtype.kind == "f":
                dtype = _rustgrad._get_default_dtype()
            elif arr.dtype.kind in "iu":
                dtype = _rustgrad.int64
            elif arr.dtype.kind == "c":
                raise TypeError("complex tensors are not supported by rustgrad")
    if dtype is None:
        name = _FROM_NP.get(arr.dtype)
        if name is None:
            raise TypeError(f"can't convert np.ndarray of type numpy.{arr.dtype.type.__name__}. {_NUMPY_TYPES_MESSAGE}")
        dtype = getattr(_rustgrad, name)
    np_dtype = _NP_DTYPES[_dtype_name(dtype)]
    with np.errstate(invalid="ignore", over="ignore"):  # casts as PyTorch's, without numpy's warnings
        if np_dtype is np.float16 and arr.dtype == np.float64:
            # PyTorch rounds a double to float16 through float32.
            arr = arr.astype(np.float32)
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


_INT_BITS = {"uint8": 8, "int8": 8, "int16": 16, "int32": 32, "int64": 64}


def _check_numbers_fit(arr: np.ndarray, name: str) -> None:
    """Python numbers written into an integer tensor must fit it after truncation (NaN,
    infinities and values beyond the type raise PyTorch's RuntimeError; uint8 also takes whole
    numbers down to -255, which wrap); arrays given as such are cast without this check."""
    if arr.dtype.kind == "b" or arr.size == 0:
        return
    if arr.dtype.kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if name == "uint8":
            fits = lo >= -255 and hi < 256
        else:
            end = 2 ** (_INT_BITS[name] - 1)
            fits = -end <= lo and hi < end
    else:
        with np.errstate(invalid="ignore"):
            if name == "uint8":
                whole = np.floor(arr) == arr
                ok = np.isfinite(arr) & (arr < 256) & ((arr >= 0) | (whole & (arr >= -255)))
            else:
                end = 2.0 ** (_INT_BITS[name] - 1)
                ok = np.isfinite(arr) & (arr >= -end) & (arr < end)
        fits = bool(ok.all())
    if not fits:
        raise RuntimeError(f"value cannot be converted to type {name} without overflow")


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


def _rng_state_tensor(state: bytes):
    """A generator state as PyTorch's ``get_state()`` gives it: a 1-d tensor of the state's bytes
    (uint8 where rustgrad has it, else int64 holding the byte values)."""
    import rustgrad

    dtype = getattr(rustgrad, "uint8", None)
    values = np.frombuffer(state, dtype=np.uint8)
    if dtype is None:
        return rustgrad.from_numpy(values.astype(np.int64))
    return rustgrad.tensor(values, dtype=dtype)


def _rng_state_bytes(state) -> bytes:
    """The bytes of a state given to ``set_state``: a byte tensor (or, without uint8, an int64
    tensor of byte values, as ``get_state`` returns), with PyTorch's errors otherwise."""
    import rustgrad
    from rustgrad._args import type_name

    if not isinstance(state, rustgrad.Tensor):
        raise TypeError(f"expected a torch.ByteTensor, but got {type_name(state)}")
    byte_dtype = getattr(rustgrad, "uint8", rustgrad.int64)
    if state.dtype != byte_dtype:
        raise TypeError("RNG state must be a torch.ByteTensor")
    return bytes((np.asarray(state.detach().reshape(-1).tolist(), dtype=np.int64) & 0xFF).astype(np.uint8))


def _bernoulli_scalar(input, p, generator):
    """``torch.bernoulli(input, p)``: ones with probability ``p`` in ``input``'s shape and dtype."""
    import rustgrad

    with rustgrad.no_grad():
        out = rustgrad.empty_like(input).bernoulli_(p, generator=generator)
    if rustgrad.is_grad_enabled() and input.requires_grad:
        # PyTorch records this result with no derivative (its backward raises).
        return _rustgrad._random_result(out, [input], "aten::bernoulli")
    return out
