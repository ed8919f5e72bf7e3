"""PyTorch's legacy tensor types (``torch.FloatTensor``, ``torch.LongTensor``...) and ``Tensor.type``.

The ten types are one table, :data:`LEGACY_TYPES` (legacy name -> dtype name). A type whose dtype
rustgrad does not have yet (``hasattr(rustgrad, 'int32')`` is False) raises a clear error when used;
once the dtype exists, the type works with no change here.

As in PyTorch, the types are not subclasses of ``Tensor``: ``torch.FloatTensor([1, 2])`` returns a
plain ``Tensor`` of dtype float32, ``isinstance(x, torch.FloatTensor)`` asks whether ``x`` is a CPU
float32 tensor, and ``issubclass(torch.FloatTensor, torch.Tensor)`` is False.
https://pytorch.org/docs/stable/tensors.html#data-types
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rustgrad import _glue
from rustgrad._args import type_name
from rustgrad._rustgrad import Tensor, dtype

# legacy name -> dtype name (an attribute of ``rustgrad`` once that dtype exists).
LEGACY_TYPES = {
    "FloatTensor": "float32",
    "DoubleTensor": "float64",
    "HalfTensor": "float16",
    "BFloat16Tensor": "bfloat16",
    "ByteTensor": "uint8",
    "CharTensor": "int8",
    "ShortTensor": "int16",
    "IntTensor": "int32",
    "LongTensor": "int64",
    "BoolTensor": "bool",
}
LEGACY_NAME_OF_DTYPE = {v: k for k, v in LEGACY_TYPES.items()}
# The C++ type names PyTorch's TensorOptions messages print.
_CPP_NAMES = {
    "float32": "float",
    "float64": "double",
    "float16": "c10::Half",
    "bfloat16": "c10::BFloat16",
    "uint8": "unsigned char",
    "int8": "signed char",
    "int16": "short int",
    "int32": "int",
    "int64": "long int",
    "bool": "bool",
}

_NEW_SIGNATURES = (
    " * (*, torch.device device = None)\n"
    " * (torch.Storage storage)\n"
    " * (Tensor other)\n"
    " * (tuple of ints size, *, torch.device device = None)\n"
    " * (object data, *, torch.device device = None)\n"
)


def _dtype_name(dt: dtype) -> str:
    return str(dt).rsplit(".", 1)[-1]


def _lookup_dtype(dtype_name: str, legacy: str) -> dtype:
    """The rustgrad dtype named ``dtype_name``, or a clear error while rustgrad lacks it."""
    import rustgrad

    dt = getattr(rustgrad, dtype_name, None)
    if not isinstance(dt, dtype):
        raise NotImplementedError(
            f"torch.{legacy} needs the dtype torch.{dtype_name}, which rustgrad does not have yet"
        )
    return dt


def _options(dtype_name: str) -> str:
    return (
        f"TensorOptions(dtype={_CPP_NAMES.get(dtype_name, dtype_name)}, device=cpu, layout=Strided, "
        "requires_grad=false (default), pinned_memory=false (default), memory_format=(nullopt))"
    )


class tensortype(type):
    """The metaclass of the legacy tensor types: ``isinstance`` checks the dtype, calling one builds
    a tensor of that dtype (PyTorch's legacy constructor)."""

    _dtype_name: str
    _is_cuda: bool

    @property
    def dtype(cls) -> dtype:
        """The dtype of the tensors this type stands for."""
        return _lookup_dtype(cls._dtype_name, cls.__name__)

    @property
    def is_cuda(cls) -> bool:
        """Whether this is a ``torch.cuda`` type."""
        return cls._is_cuda

    def __instancecheck__(cls, obj: Any) -> bool:
        return (not cls._is_cuda) and isinstance(obj, Tensor) and _dtype_name(obj.dtype) == cls._dtype_name

    def __subclasscheck__(cls, sub: type) -> bool:
        return sub is cls

    def __call__(cls, *args: Any, **kwargs: Any) -> Tensor:  # type: ignore[override]
        if cls._is_cuda:
            raise AssertionError("Torch not compiled with CUDA enabled")
        return _legacy_new(cls.__name__, cls.dtype, args, kwargs)


def _legacy_new(name: str, dt: dtype, args: tuple, kwargs: dict) -> Tensor:
    """``torch.XTensor(...)``: no argument (an empty tensor), sizes (``(2, 3)``, a ``torch.Size`` or
    ``size=``), a sequence or array of data, or a tensor of the same dtype (shared, as an alias)."""
    import rustgrad

    dev = kwargs.pop("device", None)
    size = kwargs.pop("size", None)
    if kwargs:
        raise _invalid_new(args, kwargs, f"some of the keywords were incorrect: {', '.join(kwargs)}")
    if len(args) > 1 and any(isinstance(a, (list, tuple)) for a in args):
        described = ", ".join(f"!{_describe(a)}!" for a in args)
        raise _invalid_new(args, kwargs, f"some of the arguments have invalid types: ({described})")
    if dev is not None:
        d = _glue.device(dev)
        if d.type != "cpu":
            raise RuntimeError(f"legacy constructor expects device type: cpu but device type: {d.type} was passed")
    if size is not None:
        if args:
            raise TypeError("new(): got multiple values for argument 'size'")
        return rustgrad.zeros(rustgrad._size_list("new", size), dtype=dt)
    if not args:
        return rustgrad.zeros(0, dtype=dt)
    if len(args) == 1:
        data = args[0]
        if isinstance(data, Tensor):
            if data.dtype != dt:
                raise TypeError(f"expected {_options(_dtype_name(dt))} (got {_options(_dtype_name(data.dtype))})")
            return data.view_as(data)  # TODO(rustgrad): PyTorch's alias node is AliasBackward0
        if isinstance(data, rustgrad.Size):
            return rustgrad.zeros(rustgrad._size_list("new", list(data)), dtype=dt)
        if isinstance(data, str):
            raise TypeError("new(): invalid data type 'str'")
        if isinstance(data, (list, tuple, np.ndarray)):
            return _from_data(data, dt)
        if isinstance(data, (float, complex, bool, np.floating, np.bool_)):
            raise TypeError(f"new(): data must be a sequence (got {type_name(data)})")
    return rustgrad.zeros(rustgrad._size_list("new", list(args)), dtype=dt)


def _describe(obj: Any) -> str:
    """PyTorch's parser's description of an argument: ``int``, ``list of [int, float]``."""
    if isinstance(obj, (list, tuple)):
        kinds = list(dict.fromkeys(type_name(x) for x in obj))
        return f"{type_name(obj)} of [{', '.join(kinds)}]"
    return type_name(obj)


def _invalid_new(args: tuple, kwargs: dict, why: str) -> TypeError:
    """PyTorch's ``TypeError`` for a legacy constructor call matching none of its signatures."""
    got = ", ".join([type_name(a) for a in args] + [f"{k}={type_name(v)}" for k, v in kwargs.items()])
    first, rest = _NEW_SIGNATURES.split("\n", 1)
    return TypeError(
        f"new() received an invalid combination of arguments - got ({got}), but expected one of:\n"
        f"{first}\n      didn't match because {why}\n{rest}"
    )


def _from_data(data: Any, dt: dtype) -> Tensor:
    """Data converted to ``dt`` as PyTorch's legacy constructor does (floats truncate toward zero)."""
    import rustgrad

    return rustgrad.tensor(data, dtype=dt)


def _make_types(prefix: str, is_cuda: bool) -> dict:
    out = {}
    for legacy, dtype_name in LEGACY_TYPES.items():
        cls = tensortype(
            legacy,
            (),
            {
                "__module__": prefix,
                "__qualname__": legacy,
                "__doc__": f"``{prefix}.{legacy}``: the legacy type of {'CUDA ' if is_cuda else ''}{dtype_name} "
                "tensors (see the ``rustgrad._legacy`` module). https://pytorch.org/docs/stable/tensors.html",
                "_dtype_name": dtype_name,
                "_is_cuda": is_cuda,
            },
        )
        out[legacy] = cls
    return out


CPU_TYPES = _make_types("torch", False)
CUDA_TYPES = _make_types("torch.cuda", True)


def tensor_type(self: Tensor, dtype: Any = None, non_blocking: bool = False, **kwargs: Any) -> Any:
    """``Tensor.type()``: with no argument, the legacy type name (``'torch.FloatTensor'``); with a dtype,
    a legacy type or its name (``'torch.DoubleTensor'``), the tensor cast to it (``self`` itself when
    the dtype is already right). https://pytorch.org/docs/stable/generated/torch.Tensor.type.html"""
    import rustgrad

    if dtype is None:
        return "torch." + LEGACY_NAME_OF_DTYPE.get(_dtype_name(self.dtype), "Tensor")
    if isinstance(dtype, rustgrad.dtype):
        target = dtype
    elif isinstance(dtype, tensortype):
        if dtype._is_cuda:
            raise AssertionError("Torch not compiled with CUDA enabled")
        target = dtype.dtype
    elif dtype is Tensor:
        target = rustgrad.get_default_dtype()
    elif isinstance(dtype, str):
        module, _, legacy = dtype.rpartition(".")
        if legacy not in LEGACY_TYPES or module not in ("torch", "torch.cuda"):
            raise ValueError(f"invalid type: '{dtype}'")
        if module == "torch.cuda":
            raise AssertionError("Torch not compiled with CUDA enabled")
        target = _lookup_dtype(LEGACY_TYPES[legacy], legacy)
    elif isinstance(dtype, type):
        module = dtype.__module__
        name = dtype.__qualname__ if module in ("builtins", None) else f"{module}.{dtype.__qualname__}"
        raise ValueError(f"invalid type: '{name}'")
    else:
        raise TypeError("dtype must be a type, str, or dtype object")
    if target == self.dtype:
        return self
    return self.to(target)


def tensor_cuda(self: Tensor, device: Any = None, non_blocking: bool = False, **kwargs: Any) -> Tensor:
    """``Tensor.cuda()``: PyTorch's error on a build without CUDA (rustgrad's tensors live on the CPU).
    https://pytorch.org/docs/stable/generated/torch.Tensor.cuda.html"""
    raise AssertionError("Torch not compiled with CUDA enabled")


def tensor_get_device(self: Tensor) -> int:
    """``Tensor.get_device()``: the GPU index of the tensor, -1 for a CPU tensor (always, here).
    https://pytorch.org/docs/stable/generated/torch.Tensor.get_device.html"""
    return -1


def tensor_is_pinned(self: Tensor, device: Any = None) -> bool:
    """``Tensor.is_pinned()``: whether the tensor sits in page-locked memory: never here.
    https://pytorch.org/docs/stable/generated/torch.Tensor.is_pinned.html"""
    return False


def install() -> None:
    """Attaches ``type``, ``cuda``, ``get_device``, ``is_pinned`` and the ``is_cpu``/``is_meta``/``is_mps``/
    ``is_xpu`` flags to ``Tensor`` unless the Rust class already defines them."""
    attrs: dict[str, Any] = {
        "type": tensor_type,
        "cuda": tensor_cuda,
        "get_device": tensor_get_device,
        "is_pinned": tensor_is_pinned,
        "is_cpu": property(lambda self: True, doc="Whether the tensor is on the CPU: always."),
        "is_meta": property(lambda self: False, doc="Whether the tensor is a meta tensor: never."),
        "is_mps": property(lambda self: False, doc="Whether the tensor is on an MPS device: never."),
        "is_xpu": property(lambda self: False, doc="Whether the tensor is on an XPU: never."),
    }
    for name, value in attrs.items():
        if name not in vars(Tensor):
            setattr(Tensor, name, value)


_warned_default_tensor_type: list[bool] = []


def set_default_tensor_type(t: Any) -> None:
    """``torch.set_default_tensor_type`` (deprecated in PyTorch 2.1, warns once): a floating-point legacy
    type or its name sets the default dtype; ``torch.cuda`` types raise (no CUDA).
    https://pytorch.org/docs/stable/generated/torch.set_default_tensor_type.html"""
    import warnings

    import rustgrad

    if not _warned_default_tensor_type:
        _warned_default_tensor_type.append(True)
        warnings.warn(
            "torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please use torch.set_default_dtype() "
            "and torch.set_default_device() as alternatives.",
            UserWarning,
            stacklevel=2,
        )
    if isinstance(t, str):
        module, _, legacy = t.rpartition(".")
        types = {"torch": CPU_TYPES, "torch.cuda": CUDA_TYPES}.get(module)
        if types is None:
            raise ModuleNotFoundError(f"No module named '{t.split('.')[0] if module == '' else module}'")
        if legacy not in types:
            raise AttributeError(f"module '{module}' has no attribute '{legacy}'")
        t = types[legacy]
    if not isinstance(t, tensortype):
        raise TypeError("invalid type object: only floating-point types are supported as the default type")
    if t._is_cuda:
        raise TypeError(f"type torch.cuda.{t.__name__} not available. Torch not compiled with CUDA enabled.")
    if t._dtype_name not in ("float32", "float64", "float16", "bfloat16"):
        raise TypeError("only floating-point types are supported as the default type")
    dt = t.dtype
    if dt == rustgrad.get_default_dtype():
        return
    setter = getattr(rustgrad, "set_default_dtype", None)
    if setter is None:
        raise NotImplementedError(
            f"torch.set_default_tensor_type({t.__name__}) needs torch.set_default_dtype, which rustgrad does not have yet"
        )
    setter(dt)
