"""Argument checks shared by the Python layer: the exception classes and messages PyTorch's argument
parser gives for a wrong type (always ``TypeError``), never an ``AttributeError`` from deeper down."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from rustgrad._rustgrad import Generator, Tensor, dtype

_HEAPTYPE = 1 << 9
# ``dtype=float`` and friends: PyTorch accepts the Python scalar types as dtypes.
_PY_DTYPES: dict = {}


def scalar_type_name(dt: dtype) -> str:
    """PyTorch's C++ name of a dtype in messages: ``Float``, ``Double``, ``Long``, ``Bool``."""
    names = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool", "float16": "Half",
             "bfloat16": "BFloat16", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte"}
    return names[str(dt).rsplit(".", 1)[-1]]


def type_name(obj: Any) -> str:
    """The name PyTorch's messages give ``type(obj)``: ``float``, ``NoneType``, ``torch.dtype``,
    ``numpy.ndarray`` (the C type name: module-qualified for extension types, bare otherwise)."""
    cls = type(obj)
    if issubclass(cls, Tensor):
        return cls.__name__
    if cls is Generator:
        return "torch._C.Generator"
    module = getattr(cls, "__module__", "") or ""
    if module == "rustgrad" or module.startswith("rustgrad."):
        return "torch." + cls.__name__
    if module == "builtins" or cls.__flags__ & _HEAPTYPE:
        return cls.__name__
    return f"{module}.{cls.__name__}"


def not_tensor(fn: str, obj: Any, arg: str = "input", position: int = 1) -> TypeError:
    """PyTorch's error for a non-tensor where a tensor is required."""
    return TypeError(f"{fn}(): argument '{arg}' (position {position}) must be Tensor, not {type_name(obj)}")


def check_tensor(fn: str, obj: Any, arg: str = "input", position: int = 1) -> None:
    """Raises PyTorch's ``TypeError`` unless ``obj`` is a tensor."""
    if not isinstance(obj, Tensor):
        raise not_tensor(fn, obj, arg, position)


def check_attribute(obj: Any, attr: str) -> None:
    """For the functions PyTorch writes in Python, which read a method or attribute of their argument
    (``input.tanh()``, ``target.size()``): a non-tensor raises the ``AttributeError`` Python gives there."""
    if not isinstance(obj, Tensor) and not hasattr(obj, attr):
        raise AttributeError(f"'{type_name(obj)}' object has no attribute '{attr}'")


def check_optional_tensor(fn: str, obj: Any, arg: str, position: int) -> None:
    """Like :func:`check_tensor`, with ``None`` allowed."""
    if obj is not None and not isinstance(obj, Tensor):
        raise TypeError(
            f"{fn}(): argument '{arg}' (position {position}) must be Tensor or None, not {type_name(obj)}"
        )


def dtype_arg(fn: str, obj: Any) -> dtype | None:
    """A ``dtype=`` argument: a dtype, ``None``, or one of the Python types ``float``/``int``/``bool``."""
    if obj is None or isinstance(obj, dtype):
        return obj
    if not _PY_DTYPES:
        from rustgrad import _rustgrad

        _PY_DTYPES.update(
            {builtins.float: _rustgrad.float64, int: _rustgrad.int64, builtins.bool: _rustgrad.bool}
        )
    if isinstance(obj, type) and obj in _PY_DTYPES:
        return _PY_DTYPES[obj]
    raise TypeError(f"{fn}(): argument 'dtype' must be torch.dtype, not {type_name(obj)}")


def number_arg(fn: str, obj: Any, arg: str, position: int | None = None) -> Any:
    """A ``Number`` argument (a Python or numpy number, or a 0-d tensor, read as its value); anything
    else raises the ``TypeError`` of PyTorch's argument parser."""
    if isinstance(obj, (int, builtins.float, complex, np.number, np.bool_)):
        return obj
    if isinstance(obj, Tensor) and obj.dim() == 0:
        return obj.item()
    where = f" (position {position})" if position is not None else ""
    raise TypeError(f"{fn}(): argument '{arg}'{where} must be Number, not {type_name(obj)}")


def strict_bool_arg(fn: str, obj: Any, arg: str, position: int | None = None) -> builtins.bool:
    """A ``bool`` argument of PyTorch's argument parser: a Python (or numpy) bool, nothing else."""
    if isinstance(obj, (builtins.bool, np.bool_)):
        return builtins.bool(obj)
    where = f" (position {position})" if position is not None else ""
    raise TypeError(f"{fn}(): argument '{arg}'{where} must be bool, not {type_name(obj)}")


def bool_arg(fn: str, obj: Any, arg: str) -> builtins.bool:
    """A keyword flag such as ``requires_grad=``: a Python bool (``None`` counts as False)."""
    if obj is None:
        return False
    if not isinstance(obj, builtins.bool):
        raise TypeError(f"{fn}(): argument '{arg}' must be bool, not {type_name(obj)}")
    return obj


def int_arg(fn: str, obj: Any, arg: str, position: int) -> int:
    """An int argument (``n`` of ``eye``/``randperm``, ``steps`` of ``linspace``): a Python int or a
    one-element integer tensor, not a bool or a float; outside int64, PyTorch's ValueError."""
    if isinstance(obj, Tensor):
        obj = obj.__index__()
    elif isinstance(obj, np.integer):
        obj = int(obj)
    if isinstance(obj, builtins.bool) or not isinstance(obj, int):
        raise TypeError(f"{fn}(): argument '{arg}' (position {position}) must be int, not {type_name(obj)}")
    if not -(2**63) <= obj < 2**63:
        raise ValueError("Overflow when unpacking long long")
    return obj
