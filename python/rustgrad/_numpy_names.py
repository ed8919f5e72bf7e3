"""numpy's argument names, accepted wherever PyTorch accepts them: ``axis`` for ``dim`` and
``keepdims`` for ``keepdim`` (``x.sum(axis=0, keepdims=True)``, ``torch.cat(ts, axis=1)``).

PyTorch's argument parser maps these names for every function that takes ``dim``/``keepdim``.
Here the functions and methods that take a dim are wrapped once at import; a call without
keyword arguments goes straight through.
"""

from __future__ import annotations

import functools
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


def install(module: Any, tensor_class: type) -> None:
    """Wraps the dim-taking functions of ``module`` and methods of ``tensor_class`` (once)."""
    for name in DIM_FUNCTIONS:
        for owner in (module, tensor_class):
            fn = getattr(owner, name, None)
            if fn is None or getattr(fn, "__wrapped_numpy_names__", False):
                continue
            setattr(owner, name, accepting_numpy_names(fn))
