"""rustgrad: reverse-mode automatic differentiation with PyTorch's semantics and a Rust core.

``import rustgrad as torch`` runs PyTorch autograd code on the CPU.
"""

from __future__ import annotations

import builtins as _builtins
from typing import Any

import numpy as _np

from rustgrad import _rustgrad
from rustgrad._glue import Size, _numpy_of, device
from rustgrad._rustgrad import (
    Tensor,
    dtype,
    from_numpy,
    initial_seed,
    is_grad_enabled,
)
from rustgrad._rustgrad import where as where
from rustgrad._tensor_str import set_printoptions
from rustgrad.grad_mode import (
    enable_grad,
    inference_mode,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)

__version__ = "0.1.0"

float32 = _rustgrad.float32
float = float32
float64 = _rustgrad.float64
double = float64
int64 = _rustgrad.int64
long = int64
bool = _rustgrad.bool

FloatTensor = Tensor


# ----- factories -----


def _parse_size(args: tuple, kwargs: dict) -> list:
    size = kwargs.pop("size", None)
    if size is None:
        size = args
        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = size[0]
    elif isinstance(size, int):
        size = (size,)
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = int(s)
        if not isinstance(s, int):
            raise TypeError(f"size must be a sequence of ints, but got {type(s).__name__}")
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")
        out.append(s)
    return out


def _finish(t: Tensor, kwargs: dict) -> Tensor:
    device_arg = kwargs.pop("device", None)
    if device_arg is not None:
        device(device_arg)
    kwargs.pop("layout", None)
    kwargs.pop("pin_memory", None)
    kwargs.pop("memory_format", None)
    kwargs.pop("out", None)
    kwargs.pop("generator", None)
    requires_grad = kwargs.pop("requires_grad", False)
    if kwargs:
        raise TypeError(f"got an unexpected keyword argument '{next(iter(kwargs))}'")
    if requires_grad:
        if not t.dtype.is_floating_point:
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        t.requires_grad_(True)
    return t


def _full(size: list, value: Any, kwargs: dict) -> Tensor:
    return _finish(_rustgrad._full(size, value, kwargs.pop("dtype", None)), kwargs)


def zeros(*args: Any, **kwargs: Any) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _full(_parse_size(args, kwargs), 0.0, kwargs)


def ones(*args: Any, **kwargs: Any) -> Tensor:
    """A tensor of ones."""
    return _full(_parse_size(args, kwargs), 1.0, kwargs)


def empty(*args: Any, **kwargs: Any) -> Tensor:
    """An uninitialised tensor (here filled with zeros)."""
    return _full(_parse_size(args, kwargs), 0.0, kwargs)


def full(size: Any, fill_value: Any, **kwargs: Any) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value's type."""
    return _full(_parse_size((size,), kwargs), fill_value, kwargs)


def _like(t: Tensor, value: Any, kwargs: dict) -> Tensor:
    kwargs.setdefault("dtype", t.dtype)
    return _full(list(t.shape), value, kwargs)


def zeros_like(input: Tensor, **kwargs: Any) -> Tensor:
    return _like(input, 0.0, kwargs)


def ones_like(input: Tensor, **kwargs: Any) -> Tensor:
    return _like(input, 1.0, kwargs)


def empty_like(input: Tensor, **kwargs: Any) -> Tensor:
    return _like(input, 0.0, kwargs)


def full_like(input: Tensor, fill_value: Any, **kwargs: Any) -> Tensor:
    return _like(input, fill_value, kwargs)


def rand(*args: Any, **kwargs: Any) -> Tensor:
    """Uniform samples in [0, 1), reproducing PyTorch's CPU generator."""
    size = _parse_size(args, kwargs)
    return _finish(_rustgrad._rand(size, kwargs.pop("dtype", None)), kwargs)


def randn(*args: Any, **kwargs: Any) -> Tensor:
    """Standard normal samples, reproducing PyTorch's CPU generator."""
    size = _parse_size(args, kwargs)
    return _finish(_rustgrad._randn(size, kwargs.pop("dtype", None)), kwargs)


def rand_like(input: Tensor, **kwargs: Any) -> Tensor:
    kwargs.setdefault("dtype", input.dtype)
    return rand(*input.shape, **kwargs)


def randn_like(input: Tensor, **kwargs: Any) -> Tensor:
    kwargs.setdefault("dtype", input.dtype)
    return randn(*input.shape, **kwargs)


def randint(*args: Any, **kwargs: Any) -> Tensor:
    """``randint(high, size)`` or ``randint(low, high, size)``: int64 samples in [low, high)."""
    size = kwargs.pop("size", None)
    if size is None:
        *bounds, size = args
    else:
        bounds = list(args)
    if "high" in kwargs:
        bounds.append(kwargs.pop("high"))
    low, high = (0, bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
    dt = kwargs.pop("dtype", None)
    t = _rustgrad._randint(int(low), int(high), list(size))
    if dt is not None and dt is not int64:
        t = t.to(dt)
    return _finish(t, kwargs)


def randperm(n: int, **kwargs: Any) -> Tensor:
    return _finish(_rustgrad._randperm(int(n)), kwargs)


def manual_seed(seed: int):
    """Seeds the default generator, as ``torch.manual_seed``."""
    _rustgrad._manual_seed(int(seed) & 0xFFFFFFFFFFFFFFFF)


def seed() -> int:
    import random as _random

    s = _random.getrandbits(63)
    manual_seed(s)
    return s


def arange(start: Any, end: Any = None, step: Any = 1, **kwargs: Any) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive); int64 unless an argument is a float."""
    if end is None:
        start, end = 0, start
    vals = [start, end, step]
    dt = kwargs.pop("dtype", None)
    if dt is None:
        is_float = _builtins.any(isinstance(v, _builtins.float) or (isinstance(v, Tensor) and v.dtype.is_floating_point) for v in vals)
        dt = float32 if is_float else int64
    s, e, st = (_builtins.float(v) for v in vals)
    return _finish(_rustgrad._arange(s, e, st, dt), kwargs)


def linspace(start: Any, end: Any, steps: int, **kwargs: Any) -> Tensor:
    return _finish(_rustgrad._linspace(_builtins.float(start), _builtins.float(end), int(steps), kwargs.pop("dtype", None)), kwargs)


def eye(n: int, m: Any = None, **kwargs: Any) -> Tensor:
    return _finish(_rustgrad._eye(int(n), None if m is None else int(m), kwargs.pop("dtype", None)), kwargs)


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: _builtins.bool = False, pin_memory: _builtins.bool = False) -> Tensor:
    """Copies ``data`` (numbers, nested lists, arrays, tensors) into a new leaf tensor."""
    arr, _ = _numpy_of(data, dtype)
    return _finish(from_numpy(arr), {"device": device, "requires_grad": requires_grad})


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Shares memory with ``data`` when it is a tensor or array of the right dtype."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype is dtype):
        return data
    if isinstance(data, _np.ndarray) and dtype is None:
        try:
            return from_numpy(data)
        except (TypeError, ValueError):
            pass
    return tensor(data, dtype=dtype, device=device)


def is_tensor(obj: Any) -> _builtins.bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()


def get_default_dtype() -> dtype:
    return float32


def is_floating_point(input: Tensor) -> _builtins.bool:
    return input.is_floating_point()


# ----- ops as functions -----


def add(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    return input.add(other, alpha=alpha) if isinstance(input, Tensor) else tensor(input).add(other, alpha=alpha)


def sub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    return input.sub(other, alpha=alpha)


def mul(input: Any, other: Any) -> Tensor:
    return input * other


def div(input: Any, other: Any) -> Tensor:
    return input / other


true_divide = div


def neg(input: Tensor) -> Tensor:
    return -input


def pow(input: Any, exponent: Any) -> Tensor:
    if not isinstance(input, Tensor):
        return exponent.__rpow__(input)
    return input.pow(exponent)


def _method(name: str):
    def op(input: Tensor, *args: Any, **kwargs: Any) -> Any:
        return getattr(input, name)(*args, **kwargs)

    op.__name__ = name
    op.__qualname__ = name
    op.__doc__ = f"``torch.{name}(input, ...)``: same as ``input.{name}(...)``."
    return op


exp = _method("exp")
log = _method("log")
sqrt = _method("sqrt")
abs = _method("abs")
sin = _method("sin")
cos = _method("cos")
tanh = _method("tanh")
sigmoid = _method("sigmoid")
relu = _method("relu")
sign = _method("sign")
reciprocal = _method("reciprocal")
sum = _method("sum")
mean = _method("mean")
max = _method("max")
min = _method("min")
norm = _method("norm")
dot = _method("dot")
matmul = _method("matmul")
mm = _method("mm")
mv = _method("mv")
bmm = _method("bmm")
reshape = _method("reshape")
transpose = _method("transpose")
t = _method("t")
permute = _method("permute")
squeeze = _method("squeeze")
unsqueeze = _method("unsqueeze")
flatten = _method("flatten")
clone = _method("clone")
detach = _method("detach")
eq = _method("eq")
ne = _method("ne")
lt = _method("lt")
le = _method("le")
gt = _method("gt")
ge = _method("ge")
clamp = _method("clamp")
clip = _method("clip")
clamp_min = _method("clamp_min")
clamp_max = _method("clamp_max")
maximum = _method("maximum")
minimum = _method("minimum")
masked_fill = _method("masked_fill")
floor = _method("floor")
ceil = _method("ceil")
round = _method("round")
erf = _method("erf")
softmax = _method("softmax")
log_softmax = _method("log_softmax")
logsumexp = _method("logsumexp")
var = _method("var")
std = _method("std")
prod = _method("prod")
cumsum = _method("cumsum")
argmax = _method("argmax")
argmin = _method("argmin")
gather = _method("gather")
scatter = _method("scatter")
scatter_add = _method("scatter_add")
index_select = _method("index_select")
nonzero = _method("nonzero")
narrow = _method("narrow")
split = _method("split")
chunk = _method("chunk")
unbind = _method("unbind")
log1p = _method("log1p")
expm1 = _method("expm1")
tan = _method("tan")
asin = _method("asin")
acos = _method("acos")
atan = _method("atan")
sinh = _method("sinh")
cosh = _method("cosh")
rsqrt = _method("rsqrt")
log2 = _method("log2")
log10 = _method("log10")
exp2 = _method("exp2")
trunc = _method("trunc")
square = _method("square")
all = _method("all")
any = _method("any")
isnan = _method("isnan")
isinf = _method("isinf")
isfinite = _method("isfinite")
equal = _method("equal")


def allclose(
    input: Tensor, other: Tensor, rtol: _builtins.float = 1e-05, atol: _builtins.float = 1e-08, equal_nan: _builtins.bool = False
) -> _builtins.bool:
    """Whether ``|input - other| <= atol + rtol * |other|`` everywhere."""
    a = input.detach().numpy()
    b = other.detach().numpy()
    return _builtins.bool(_np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


cat = _rustgrad.cat
concat = cat
concatenate = cat
stack = _rustgrad.stack
addmm = _rustgrad.addmm


class _Cuda:
    """``torch.cuda``: there is no GPU here."""

    @staticmethod
    def is_available() -> _builtins.bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0


cuda = _Cuda()

from rustgrad import autograd, nn, optim
from rustgrad.serialization import load, save

is_anomaly_enabled = _rustgrad.is_anomaly_enabled
is_anomaly_check_nan_enabled = _rustgrad.is_anomaly_check_nan_enabled


def set_anomaly_enabled(enabled: _builtins.bool, check_nan: _builtins.bool = True) -> None:
    """Turns anomaly detection on or off (see ``autograd.detect_anomaly``)."""
    _rustgrad._set_anomaly_enabled(enabled, check_nan)


__all__ = [
    "Size",
    "Tensor",
    "abs",
    "acos",
    "add",
    "addmm",
    "all",
    "allclose",
    "any",
    "arange",
    "argmax",
    "argmin",
    "as_tensor",
    "asin",
    "atan",
    "autograd",
    "bmm",
    "bool",
    "cat",
    "ceil",
    "chunk",
    "clamp",
    "clamp_max",
    "clamp_min",
    "clip",
    "clone",
    "concat",
    "concatenate",
    "cos",
    "cosh",
    "cuda",
    "cumsum",
    "detach",
    "device",
    "div",
    "dot",
    "double",
    "dtype",
    "empty",
    "empty_like",
    "enable_grad",
    "eq",
    "equal",
    "erf",
    "exp",
    "exp2",
    "expm1",
    "eye",
    "flatten",
    "float",
    "float32",
    "float64",
    "floor",
    "from_numpy",
    "full",
    "full_like",
    "gather",
    "ge",
    "get_default_dtype",
    "gt",
    "index_select",
    "inference_mode",
    "initial_seed",
    "int64",
    "is_anomaly_check_nan_enabled",
    "is_anomaly_enabled",
    "is_floating_point",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "is_tensor",
    "isfinite",
    "isinf",
    "isnan",
    "le",
    "linspace",
    "load",
    "log",
    "log1p",
    "log2",
    "log10",
    "log_softmax",
    "logsumexp",
    "long",
    "lt",
    "manual_seed",
    "masked_fill",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mm",
    "mul",
    "mv",
    "narrow",
    "ne",
    "neg",
    "nn",
    "no_grad",
    "nonzero",
    "norm",
    "numel",
    "ones",
    "ones_like",
    "optim",
    "permute",
    "pow",
    "prod",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "reciprocal",
    "relu",
    "reshape",
    "round",
    "rsqrt",
    "save",
    "scatter",
    "scatter_add",
    "seed",
    "set_anomaly_enabled",
    "set_grad_enabled",
    "set_printoptions",
    "sigmoid",
    "sign",
    "sin",
    "sinh",
    "softmax",
    "split",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "sub",
    "sum",
    "t",
    "tan",
    "tanh",
    "tensor",
    "transpose",
    "trunc",
    "unbind",
    "unsqueeze",
    "var",
    "where",
    "zeros",
    "zeros_like",
]
