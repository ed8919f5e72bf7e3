"""Keyword arguments PyTorch's argument parser accepts everywhere, added to the functions here:

- numpy's names ``axis`` for ``dim`` and ``keepdims`` for ``keepdim`` (``x.sum(axis=0,
  keepdims=True)``, ``torch.cat(ts, axis=1)``);
- ``out=`` on the module-level functions (``torch.mul(a, b, out=c)``): the result is written into
  ``out`` (resized, with PyTorch's warning, when its shape differs) and ``out`` is returned.

The functions and methods concerned are wrapped once at import; a call without keyword
arguments goes straight through.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

# Functions and Tensor methods with a `dim` (and maybe `keepdim`) argument.
DIM_FUNCTIONS = (
    "all",
    "amax",
    "amin",
    "aminmax",
    "any",
    "argmax",
    "argmin",
    "argsort",
    "cat",
    "concat",
    "concatenate",
    "count_nonzero",
    "cummax",
    "cummin",
    "cumprod",
    "cumsum",
    "flip",
    "kthvalue",
    "log_softmax",
    "logsumexp",
    "max",
    "mean",
    "median",
    "min",
    "mode",
    "nanmean",
    "nansum",
    "norm",
    "prod",
    "softmax",
    "sort",
    "squeeze",
    "stack",
    "std",
    "std_mean",
    "sum",
    "topk",
    "unsqueeze",
    "var",
    "var_mean",
)


def _renamed(kwargs: dict) -> dict:
    if "axis" in kwargs:
        if "dim" in kwargs:
            raise TypeError("got multiple values for argument 'dim' (also given as 'axis')")
        kwargs["dim"] = kwargs.pop("axis")
    if "keepdims" in kwargs:
        if "keepdim" in kwargs:
            raise TypeError("got multiple values for argument 'keepdim' (also given as 'keepdims')")
        kwargs["keepdim"] = kwargs.pop("keepdims")
    return kwargs


def accepting_numpy_names(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` taking ``axis=``/``keepdims=`` as ``dim=``/``keepdim=``."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if kwargs:
            kwargs = _renamed(kwargs)
        return fn(*args, **kwargs)

    call.__wrapped_numpy_names__ = True  # type: ignore[attr-defined]
    return call


# Module-level functions whose `out=` is handled here (those that do not take it themselves).
OUT_FUNCTIONS = (
    "abs",
    "acos",
    "add",
    "addcdiv",
    "addcmul",
    "addmm",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "asin",
    "atan",
    "atan2",
    "bmm",
    "cat",
    "ceil",
    "clamp",
    "clip",
    "cos",
    "cosh",
    "cumprod",
    "cumsum",
    "div",
    "dot",
    "eq",
    "erf",
    "exp",
    "exp2",
    "expm1",
    "floor",
    "floor_divide",
    "fmod",
    "frac",
    "gather",
    "ge",
    "gt",
    "index_select",
    "le",
    "lerp",
    "log",
    "log10",
    "log1p",
    "log2",
    "logical_and",
    "logical_not",
    "logical_or",
    "logsumexp",
    "lt",
    "matmul",
    "maximum",
    "mean",
    "minimum",
    "mm",
    "mul",
    "mv",
    "ne",
    "neg",
    "outer",
    "pow",
    "prod",
    "reciprocal",
    "remainder",
    "round",
    "rsqrt",
    "sigmoid",
    "sign",
    "sin",
    "sinh",
    "sqrt",
    "square",
    "stack",
    "sub",
    "sum",
    "tan",
    "tanh",
    "tril",
    "triu",
    "true_divide",
    "trunc",
    "where",
)


def _write_out(name: str, result: Any, out: Any) -> Any:
    """Writes ``result`` into ``out`` as PyTorch's ``out=`` does and returns ``out``."""
    res_float, out_float = result.dtype.is_floating_point, out.dtype.is_floating_point
    res_bool, out_bool = repr(result.dtype) == "torch.bool", repr(out.dtype) == "torch.bool"
    if (res_float and not out_float) or (not res_bool and out_bool):
        from rustgrad._glue import _dtype_name

        def scalar_name(d: Any) -> str:
            return {
                "float32": "Float",
                "float64": "Double",
                "float16": "Half",
                "bfloat16": "BFloat16",
                "int64": "Long",
                "int32": "Int",
                "int16": "Short",
                "int8": "Char",
                "uint8": "Byte",
                "bool": "Bool",
            }[_dtype_name(d)]

        raise RuntimeError(
            f"result type {scalar_name(result.dtype)} can't be cast to the desired output type {scalar_name(out.dtype)}"
        )
    if tuple(out.shape) != tuple(result.shape):
        if out.numel() > 0:
            warnings.warn(
                f"An output with one or more elements was resized since it had shape {list(out.shape)}, which does "
                f"not match the required output shape {list(result.shape)}. This behavior is deprecated, and in a "
                "future PyTorch release outputs will not be resized unless they have zero elements. You can "
                "explicitly reuse an out tensor t by resizing it, inplace, to zero elements with t.resize_(0).",
                UserWarning,
                stacklevel=3,
            )
        out.data = result.detach().to(out.dtype)
        return out
    with _no_grad():
        out.copy_(result)
    return out


def _no_grad() -> Any:
    from rustgrad.grad_mode import no_grad

    return no_grad()


def accepting_out(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fn`` taking ``out=``: PyTorch's checks, then the result written into ``out``."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        out = kwargs.pop("out", None) if kwargs else None
        if out is None:
            return fn(*args, **kwargs)
        from rustgrad import _rustgrad, is_grad_enabled

        tensors = [a for a in args if isinstance(a, _rustgrad.Tensor)]
        tensors += [
            t for a in args if isinstance(a, (list, tuple)) for t in a if isinstance(t, _rustgrad.Tensor)
        ]
        if is_grad_enabled() and (out.requires_grad or any(t.requires_grad for t in tensors)):
            raise RuntimeError(
                f"{name}(): functions with out=... arguments don't support automatic differentiation, but one of "
                "the arguments requires grad."
            )
        return _write_out(name, fn(*args, **kwargs), out)

    call.__wrapped_out__ = True  # type: ignore[attr-defined]
    return call


def install(module: Any, tensor_class: type) -> None:
    """Wraps the dim-taking functions of ``module`` and methods of ``tensor_class``, and the
    ``out=``-taking functions of ``module`` (once)."""
    for name in DIM_FUNCTIONS:
        for owner in (module, tensor_class):
            fn = getattr(owner, name, None)
            if fn is None or getattr(fn, "__wrapped_numpy_names__", False):
                continue
            setattr(owner, name, accepting_numpy_names(fn))
    for name in OUT_FUNCTIONS:
        fn = getattr(module, name, None)
        if fn is None or getattr(fn, "__wrapped_out__", False):
            continue
        setattr(module, name, accepting_out(fn, name))
