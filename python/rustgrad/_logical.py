"""Logical and bitwise ops (``logical_not``/``and``/``or``/``xor``, ``bitwise_*``, and the ``~``,
``&``, ``|``, ``^`` operators of bool and integer tensors). They have no gradient, so their values
come from numpy's ufuncs, whose integer promotion is PyTorch's for these ops."""

from __future__ import annotations

from typing import Any

import numpy as np

from rustgrad._args import scalar_type_name
from rustgrad._rustgrad import Tensor

__all__ = [
    "bitwise_and",
    "bitwise_not",
    "bitwise_or",
    "bitwise_xor",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
]

_INTEGRAL = ("bool", "uint8", "int8", "int16", "int32", "int64")


def _array(x: Any) -> Any:
    return x.detach().numpy() if isinstance(x, Tensor) else x


def _result(values: Any, like: Tensor | None = None) -> Tensor:
    import rustgrad

    out = rustgrad.from_numpy(np.ascontiguousarray(values))
    return out if like is None or out.dtype == like.dtype else out.to(like.dtype)


def _check_integral(kernel: str, *xs: Any) -> None:
    for x in xs:
        if isinstance(x, Tensor) and str(x.dtype).split(".")[-1] not in _INTEGRAL:
            raise NotImplementedError(f"\"{kernel}\" not implemented for '{scalar_type_name(x.dtype)}'")
        if isinstance(x, float):
            raise NotImplementedError(f"\"{kernel}\" not implemented for 'Float'")


def _binary_bitwise(kernel: str, ufunc: Any, a: Any, b: Any) -> Tensor:
    _check_integral(kernel, a, b)
    values = ufunc(_array(a), _array(b))
    # A Python number does not change a tensor's dtype (PyTorch's wrapped numbers).
    like = a if isinstance(a, Tensor) and not isinstance(b, Tensor) else b if not isinstance(a, Tensor) else None
    return _result(values, like)


def logical_not(input: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``True`` where ``input`` is zero (a bool tensor).
    https://pytorch.org/docs/stable/generated/torch.logical_not.html"""
    result = _result(np.logical_not(_array(input)))
    return out.copy_(result) if out is not None else result


def logical_and(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``True`` where both are non-zero (a bool tensor).
    https://pytorch.org/docs/stable/generated/torch.logical_and.html"""
    result = _result(np.logical_and(_array(input), _array(other)))
    return out.copy_(result) if out is not None else result


def logical_or(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``True`` where either is non-zero (a bool tensor).
    https://pytorch.org/docs/stable/generated/torch.logical_or.html"""
    result = _result(np.logical_or(_array(input), _array(other)))
    return out.copy_(result) if out is not None else result


def logical_xor(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``True`` where exactly one is non-zero (a bool tensor).
    https://pytorch.org/docs/stable/generated/torch.logical_xor.html"""
    result = _result(np.logical_xor(_array(input), _array(other)))
    return out.copy_(result) if out is not None else result


def bitwise_not(input: Tensor, *, out: Tensor | None = None) -> Tensor:
    """Bitwise NOT of an integer tensor (logical NOT of a bool one).
    https://pytorch.org/docs/stable/generated/torch.bitwise_not.html"""
    _check_integral("bitwise_not_cpu", input)
    result = _result(np.invert(_array(input)), input)
    return out.copy_(result) if out is not None else result


def bitwise_and(input: Any, other: Any, *, out: Tensor | None = None) -> Tensor:
    """Bitwise AND of integer or bool tensors.
    https://pytorch.org/docs/stable/generated/torch.bitwise_and.html"""
    result = _binary_bitwise("bitwise_and_cpu", np.bitwise_and, input, other)
    return out.copy_(result) if out is not None else result


def bitwise_or(input: Any, other: Any, *, out: Tensor | None = None) -> Tensor:
    """Bitwise OR of integer or bool tensors.
    https://pytorch.org/docs/stable/generated/torch.bitwise_or.html"""
    result = _binary_bitwise("bitwise_or_cpu", np.bitwise_or, input, other)
    return out.copy_(result) if out is not None else result


def bitwise_xor(input: Any, other: Any, *, out: Tensor | None = None) -> Tensor:
    """Bitwise XOR of integer or bool tensors.
    https://pytorch.org/docs/stable/generated/torch.bitwise_xor.html"""
    result = _binary_bitwise("bitwise_xor_cpu", np.bitwise_xor, input, other)
    return out.copy_(result) if out is not None else result


def _invert(self: Tensor) -> Tensor:
    if str(self.dtype).split(".")[-1] not in _INTEGRAL:
        raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type tensors")
    return bitwise_not(self)


def _inplace(fn: Any) -> Any:
    def method(self: Tensor, other: Any) -> Tensor:
        result = fn(self, other)
        return self.copy_(result)

    method.__doc__ = f"In-place ``{fn.__name__}``.\n    https://pytorch.org/docs/stable/generated/torch.Tensor.{fn.__name__}_.html"
    return method


def _unary_inplace(fn: Any) -> Any:
    def method(self: Tensor) -> Tensor:
        return self.copy_(fn(self))

    method.__doc__ = f"In-place ``{fn.__name__}``.\n    https://pytorch.org/docs/stable/generated/torch.Tensor.{fn.__name__}_.html"
    return method


def _reflected(fn: Any) -> Any:
    def method(self: Tensor, other: Any) -> Tensor:
        return fn(other, self)

    method.__doc__ = f"``other {fn.__name__} self``.\n    https://pytorch.org/docs/stable/generated/torch.{fn.__name__}.html"
    return method


def _attach() -> None:
    """Adds the methods and operators to ``Tensor``."""
    unary: tuple[Any, ...] = (logical_not, bitwise_not)
    binary: tuple[Any, ...] = (logical_and, logical_or, logical_xor, bitwise_and, bitwise_or, bitwise_xor)
    for fn in unary:
        setattr(Tensor, fn.__name__, fn)
        setattr(Tensor, fn.__name__ + "_", _unary_inplace(fn))
    for fn in binary:
        setattr(Tensor, fn.__name__, fn)
        setattr(Tensor, fn.__name__ + "_", _inplace(fn))
    setattr(Tensor, "__invert__", _invert)  # noqa: B010
    operators: tuple[tuple[str, Any], ...] = (("and", bitwise_and), ("or", bitwise_or), ("xor", bitwise_xor))
    for op, fn in operators:
        setattr(Tensor, f"__{op}__", fn)
        setattr(Tensor, f"__r{op}__", _reflected(fn))
        setattr(Tensor, f"__i{op}__", _inplace(fn))
