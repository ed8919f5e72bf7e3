"""rustgrad: reverse-mode automatic differentiation with PyTorch's semantics and a Rust core.

``import rustgrad as torch`` runs PyTorch autograd code on the CPU.
"""

from __future__ import annotations

import builtins as _builtins
import sys as _sys
from typing import Any, Callable, TypeVar, cast

import numpy as _np

from rustgrad import _glue, _legacy, _logical, _numpy_names, _ops, _rustgrad, linalg
from rustgrad import storage as _storage
from rustgrad import version as _version
from rustgrad._args import bool_arg as _bool_arg
from rustgrad._args import check_attribute as _check_attribute
from rustgrad._args import check_tensor as _check_tensor
from rustgrad._args import dtype_arg as _dtype_arg
from rustgrad._args import int_arg as _int_arg
from rustgrad._args import number_arg as _number_arg
from rustgrad._args import scalar_type_name as _scalar_type_name
from rustgrad._args import strict_bool_arg as _strict_bool_arg
from rustgrad._args import type_name as _type_name
from rustgrad._glue import Size, _numpy_of, device
from rustgrad._logical import (
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
)
from rustgrad._rustgrad import (
    Tensor,
    dtype,
    from_numpy,
    initial_seed,
    is_grad_enabled,
)
from rustgrad._tensor_str import set_printoptions
from rustgrad.func import _batched
from rustgrad.func._batched import BatchedTensor as _Batched
from rustgrad.func._batched import call as _vmap_call
from rustgrad.grad_mode import (
    enable_grad,
    inference_mode,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)

__version__ = _version.__version__

float32 = _rustgrad.float32
float = float32
float64 = _rustgrad.float64
double = float64
int64 = _rustgrad.int64
long = int64
bool = _rustgrad.bool

_legacy.install()
_logical._attach()
FloatTensor = _legacy.CPU_TYPES["FloatTensor"]
DoubleTensor = _legacy.CPU_TYPES["DoubleTensor"]
HalfTensor = _legacy.CPU_TYPES["HalfTensor"]
BFloat16Tensor = _legacy.CPU_TYPES["BFloat16Tensor"]
ByteTensor = _legacy.CPU_TYPES["ByteTensor"]
CharTensor = _legacy.CPU_TYPES["CharTensor"]
ShortTensor = _legacy.CPU_TYPES["ShortTensor"]
IntTensor = _legacy.CPU_TYPES["IntTensor"]
LongTensor = _legacy.CPU_TYPES["LongTensor"]
BoolTensor = _legacy.CPU_TYPES["BoolTensor"]


# ----- factories -----


def _parse_size(fn: str, args: tuple, kwargs: dict) -> list:
    """The sizes of a factory call: ``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])`` or ``f(size=...)``."""
    size = kwargs.pop("size", None)
    if size is None:
        if not args:
            raise TypeError(f'{fn}() missing 1 required positional arguments: "size"')
        size = args
        if len(size) == 1 and isinstance(size[0], (tuple, list, Size)):
            size = size[0]
        elif len(size) > 1 and _builtins.any(isinstance(s, (tuple, list)) for s in size):
            raise TypeError(f"{fn}() takes 1 positional argument but {len(size)} were given")
    elif isinstance(size, (_builtins.int, Tensor)):
        size = (size,)
    return _size_list(fn, size)


# PyTorch's message for a one-element bool tensor given as a size.
_BOOL_SIZE = (
    "Expected scalar.isIntegral( false) to be true, but got false.  (Could this error message be improved?  "
    "If so, please report an enhancement request to PyTorch.)"
)


def _size_list(fn: str, size: Any) -> list:
    """Checks each size: an int (or one-element integer tensor / numpy integer), in int64, not negative."""
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"{fn}(): argument 'size' (position 1) must be tuple of ints, not {_type_name(size)}")
    out = []
    for i, s in enumerate(size):
        if isinstance(s, Tensor):
            if s.dtype is bool and s.numel() == 1:
                raise RuntimeError(_BOOL_SIZE)
            try:
                s = s.__index__()
            except TypeError:
                pass
        elif isinstance(s, _np.integer):
            s = _builtins.int(s)
        if isinstance(s, _builtins.bool) or not isinstance(s, _builtins.int):
            if len(size) == 1:
                raise TypeError(f"{fn}(): argument 'size' (position 1) must be tuple of ints, not {_type_name(s)}")
            raise TypeError(
                f"{fn}(): argument 'size' failed to unpack the object at pos {i + 1} with error "
                f'"type must be tuple of ints,but got {_type_name(s)}"'
            )
        if not -(2**63) <= s < 2**63:
            raise TypeError(
                f"{fn}(): argument 'size' failed to unpack the object at pos {i + 1} with error "
                '"Overflow when unpacking long long"'
            )
        out.append(s)
    for s in out:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {out}")
    return out


def _finish(t: Tensor | Callable[[], Tensor], kwargs: dict, fn: str = "tensor") -> Tensor:
    """Applies the common factory keywords (``device``, ``requires_grad``...) and rejects unknown ones.
    ``t`` may be a function making the tensor: it runs only once the keywords are valid (so a
    factory that raises draws no random numbers, as in PyTorch)."""
    device_arg = kwargs.pop("device", None)
    if device_arg is not None:
        _glue._check_device(device_arg, factory=True)
    elif _glue._default_device is not None:
        _glue._check_default_device()
    kwargs.pop("layout", None)
    kwargs.pop("pin_memory", None)
    kwargs.pop("memory_format", None)
    kwargs.pop("out", None)
    requires_grad = _bool_arg(fn, kwargs.pop("requires_grad", False), "requires_grad")
    if kwargs:
        raise TypeError(f"{fn}() got an unexpected keyword argument '{next(iter(kwargs))}'")
    if callable(t):
        t = t()
    if requires_grad:
        if not t.dtype.is_floating_point:
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        t.requires_grad_(True)
    return t


def _full(fn: str, size: list, value: Any, kwargs: dict) -> Tensor:
    dt = _dtype_arg(fn, kwargs.pop("dtype", None))
    return _finish(_rustgrad._full(size, value, dt), kwargs, fn)


def zeros(*args: Any, **kwargs: Any) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _full("zeros", _parse_size("zeros", args, kwargs), 0.0, kwargs)


def ones(*args: Any, **kwargs: Any) -> Tensor:
    """A tensor of ones."""
    return _full("ones", _parse_size("ones", args, kwargs), 1.0, kwargs)


def empty(*args: Any, **kwargs: Any) -> Tensor:
    """An uninitialised tensor (here filled with zeros)."""
    return _full("empty", _parse_size("empty", args, kwargs), 0.0, kwargs)


def full(size: Any, fill_value: Any, **kwargs: Any) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value's type."""
    return _full("full", _size_list("full", size), _fill_value("full", fill_value), kwargs)


def _fill_value(fn: str, value: Any) -> Any:
    """A fill value must be a number (a 0-d tensor that does not require grad counts as one)."""
    if isinstance(value, Tensor):
        if value.dim() == 0 and not value.requires_grad:
            return value
    elif isinstance(value, (_builtins.int, _builtins.float, _builtins.complex, _np.number, _np.bool_)):
        return value
    raise TypeError(f"{fn}(): argument 'fill_value' (position 2) must be Number, not {_type_name(value)}")


def _like(fn: str, t: Any, value: Any, kwargs: dict) -> Tensor:
    _check_tensor(fn, t)
    kwargs.setdefault("dtype", t.dtype)
    return _laid_out_like(fn, t, kwargs, lambda size, kw: _full(fn, size, value, kw))


def _laid_out_like(
    fn: str,
    t: Tensor,
    kwargs: dict,
    make: Callable[[list, dict], Tensor],
    fill: str | None = None,
    fill_args: tuple = (),
    generator: Any = None,
) -> Tensor:
    """``make(size, kwargs)`` laid out as PyTorch's ``empty_like(t)``: a permuted ``t`` gives a
    permuted result. A random ``fill`` (``"uniform_"``, ``"normal_"``) then draws into that
    layout, in memory order, as PyTorch's ``empty_like(t).normal_()`` does."""
    layout = _rustgrad._layout_like(t)
    if layout is None:
        return make(list(t.shape), kwargs)
    order, strides = layout
    requires_grad = kwargs.pop("requires_grad", False)
    size = [t.shape[d] for d in order]
    values = make(size, kwargs) if fill is None else zeros(size, **kwargs)
    fresh = _rustgrad._with_layout(values, list(t.shape), strides)
    if fill is not None:
        getattr(fresh, fill)(*fill_args, generator=generator)
    return _finish(fresh, {"requires_grad": requires_grad}, fn)


def zeros_like(input: Tensor, **kwargs: Any) -> Tensor:
    """Zeros with the shape (and by default the dtype) of ``input``."""
    if type(input) is _Batched:
        return _vmap_call("zeros_like", zeros_like, input, **kwargs)
    return _like("zeros_like", input, 0.0, kwargs)


def ones_like(input: Tensor, **kwargs: Any) -> Tensor:
    """Ones with the shape (and by default the dtype) of ``input``."""
    if type(input) is _Batched:
        return _vmap_call("ones_like", ones_like, input, **kwargs)
    return _like("ones_like", input, 1.0, kwargs)


def empty_like(input: Tensor, **kwargs: Any) -> Tensor:
    """An uninitialised (here zero) tensor shaped like ``input``."""
    if type(input) is _Batched:
        return _vmap_call("empty_like", empty_like, input, **kwargs)
    return _like("empty_like", input, 0.0, kwargs)


def full_like(input: Tensor, fill_value: Any, **kwargs: Any) -> Tensor:
    """``fill_value`` with the shape (and by default the dtype) of ``input``."""
    if type(input) is _Batched:
        return _vmap_call("full_like", full_like, input, fill_value, **kwargs)
    return _like("full_like", input, _fill_value("full_like", fill_value), kwargs)


_FACTORY_KEYWORDS = (
    "Tensor out = None, torch.dtype dtype = None, torch.layout layout = None, torch.device device = None, "
    "bool pin_memory = False, bool requires_grad = False"
)
_LIKE_KEYWORDS = (
    "torch.memory_format memory_format = None, torch.dtype dtype = None, torch.layout layout = None, "
    "torch.device device = None, bool pin_memory = False, bool requires_grad = False"
)
# PyTorch's overloads of the random factories, as its argument parser lists them when the
# arguments match none (a `generator=` that is not a Generator, for one).
_RANDOM_SIGNATURES = {
    name: [f"{head}, *, torch.Generator generator, {tail}", f"{head}, *, {tail}"]
    for name, head, tail in [
        ("rand", "tuple of ints size", _FACTORY_KEYWORDS),
        ("randn", "tuple of ints size", _FACTORY_KEYWORDS),
        ("randperm", "int n", _FACTORY_KEYWORDS),
        ("rand_like", "Tensor input", _LIKE_KEYWORDS),
        ("randn_like", "Tensor input", _LIKE_KEYWORDS),
    ]
}
_RANDOM_SIGNATURES["randint"] = [
    f"{head}, *, {gen}{_FACTORY_KEYWORDS}"
    for head in ("int high, tuple of ints size", "int low, int high, tuple of ints size")
    for gen in ("torch.Generator generator, ", "")
]
_RANDOM_SIGNATURES["randint_like"] = [
    f"{head}, *, torch.Generator generator, {_LIKE_KEYWORDS}"
    for head in ("Tensor input, int high", "Tensor input, int low, int high")
]
_RANDOM_SIGNATURES["normal"] = [
    "Tensor mean, Tensor std, *, torch.Generator generator = None, Tensor out = None",
    "Tensor mean, float std = 1, *, torch.Generator generator = None, Tensor out = None",
    "float mean, Tensor std, *, torch.Generator generator = None, Tensor out = None",
    f"float mean, float std, tuple of ints size, *, torch.Generator generator = None, {_FACTORY_KEYWORDS}",
]
_RANDOM_SIGNATURES["bernoulli"] = [
    "Tensor input, *, torch.Generator generator = None, Tensor out = None",
    "Tensor input, float p, *, torch.Generator generator = None",
]


def _invalid_combination(fn: str, args: tuple, kwargs: dict) -> TypeError:
    """PyTorch's ``TypeError`` for arguments that match none of ``fn``'s overloads."""
    # Keywords the parser knows come in signature order, the others after them.
    order = ["low", "high", "size", "generator", "out", "dtype", "layout", "device", "pin_memory", "requires_grad"]
    keys = sorted(kwargs, key=lambda k: order.index(k) if k in order else len(order))
    got = ", ".join([_type_name(a) for a in args] + [f"{k}={_type_name(kwargs[k])}" for k in keys])
    expected = "".join(f" * ({sig})\n" for sig in _RANDOM_SIGNATURES[fn])
    return TypeError(
        f"{fn}() received an invalid combination of arguments - got ({got}), but expected one of:\n{expected}"
    )


def _generator_kwarg(kwargs: dict, fn: str | None = None, args: tuple = (), given: dict | None = None) -> Any:
    """Takes ``generator=`` out of a random function's keywords (``None``: the default generator);
    anything but a :class:`Generator` raises PyTorch's error for ``fn(*args, **given)``."""
    gen = kwargs.pop("generator", None)
    if gen is not None and fn is not None and not isinstance(gen, Generator):
        raise _invalid_combination(fn, args, given if given is not None else {**kwargs, "generator": gen})
    return gen


def rand(*args: Any, **kwargs: Any) -> Tensor:
    """Uniform samples in [0, 1), reproducing PyTorch's CPU generator (``generator=`` a
    :class:`Generator`, the default one if omitted)."""
    if _batched.vmap_active():
        return _batched.random_call("rand", rand, args, kwargs)
    given = dict(kwargs)
    size = _parse_size("rand", args, kwargs)
    dt = _dtype_arg("rand", kwargs.pop("dtype", None))
    gen = _generator_kwarg(kwargs, "rand", args, given)
    return _finish(lambda: _rustgrad._rand(size, dt, gen), kwargs, "rand")


def randn(*args: Any, **kwargs: Any) -> Tensor:
    """Standard normal samples, reproducing PyTorch's CPU generator (``generator=`` optional)."""
    if _batched.vmap_active():
        return _batched.random_call("randn", randn, args, kwargs)
    given = dict(kwargs)
    size = _parse_size("randn", args, kwargs)
    dt = _dtype_arg("randn", kwargs.pop("dtype", None))
    gen = _generator_kwarg(kwargs, "randn", args, given)
    return _finish(lambda: _rustgrad._randn(size, dt, gen), kwargs, "randn")


def rand_like(input: Tensor, **kwargs: Any) -> Tensor:
    """Uniform samples shaped like ``input`` (``generator=`` optional)."""
    if type(input) is _Batched:
        return _vmap_call("rand_like", rand_like, input, **kwargs)
    _check_tensor("rand_like", input)
    gen = _generator_kwarg(kwargs, "rand_like", (input,), dict(kwargs))
    kwargs.setdefault("dtype", input.dtype)
    return _laid_out_like(
        "rand_like", input, kwargs, lambda size, kw: rand(size, generator=gen, **kw), "uniform_", (), gen
    )


def randn_like(input: Tensor, **kwargs: Any) -> Tensor:
    """Standard normal samples shaped like ``input`` (``generator=`` optional)."""
    if type(input) is _Batched:
        return _vmap_call("randn_like", randn_like, input, **kwargs)
    _check_tensor("randn_like", input)
    gen = _generator_kwarg(kwargs, "randn_like", (input,), dict(kwargs))
    kwargs.setdefault("dtype", input.dtype)
    return _laid_out_like(
        "randn_like", input, kwargs, lambda size, kw: randn(size, generator=gen, **kw), "normal_", (), gen
    )


def randint_like(input: Tensor, low: Any = 0, high: Any = None, **kwargs: Any) -> Tensor:
    """``randint_like(input, high)`` or ``randint_like(input, low, high)``: integers in [low, high)
    shaped like ``input``, of its dtype unless ``dtype=`` says otherwise (``generator=`` optional)."""
    if type(input) is _Batched:
        return _vmap_call("randint_like", randint_like, input, low, high, **kwargs)
    _check_tensor("randint_like", input)
    if high is None:
        low, high = 0, low
    if high is None:
        raise TypeError("randint_like() missing 1 required positional argument: \"high\"")
    for value in (low, high):
        if isinstance(value, _builtins.bool) or not isinstance(value, (_builtins.int, _np.integer)):
            raise TypeError(
                "randint_like() received an invalid combination of arguments - got "
                f"(Tensor, {', '.join(_type_name(v) for v in (low, high))}), but expected one of:\n"
                " * (Tensor input, int high, *, torch.Generator generator, torch.memory_format memory_format = None, "
                "torch.dtype dtype = None, torch.layout layout = None, torch.device device = None, "
                "bool pin_memory = False, bool requires_grad = False)\n"
                " * (Tensor input, int low, int high, *, torch.Generator generator, torch.memory_format "
                "memory_format = None, torch.dtype dtype = None, torch.layout layout = None, "
                "torch.device device = None, bool pin_memory = False, bool requires_grad = False)\n"
            )
    gen = _generator_kwarg(kwargs, "randint_like", (input, low, high) if low else (input, high), dict(kwargs))
    low, high = _builtins.int(low), _builtins.int(high)
    kwargs.setdefault("dtype", input.dtype)

    def make(size: list, kw: dict) -> Tensor:
        dt = kw.pop("dtype")
        return _finish(lambda: zeros(size, dtype=dt).random_(low, high, generator=gen), kw, "randint_like")

    return _laid_out_like("randint_like", input, kwargs, make, "random_", (low, high), gen)


def normal(mean: Any, std: Any = 1.0, size: Any = None, **kwargs: Any) -> Tensor:
    """Normal samples with the given mean(s) and standard deviation(s), drawn as PyTorch draws
    them: a tensor ``mean`` or ``std`` gives samples of its (broadcast) shape, two numbers need
    ``size``; ``generator=`` picks the generator."""
    if _batched.vmap_active():
        return _batched.random_call("normal", normal, (mean, std, size), kwargs)
    given = dict(kwargs)
    positional = (mean, std) if size is None else (mean, std, size)
    gen = _generator_kwarg(kwargs, "normal", positional, given)
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        if size is not None:
            raise TypeError("normal(): a size is only taken with a number mean and std")
        if kwargs:
            raise TypeError(f"normal() got an unexpected keyword argument '{next(iter(kwargs))}'")
        with no_grad():
            if isinstance(std, Tensor) and not _builtins.bool((std.detach() >= 0).all()):
                raise RuntimeError("normal expects all elements of std >= 0.0")
            if isinstance(mean, Tensor) and not isinstance(std, Tensor):
                out = empty_like(mean).normal_(0.0, _builtins.float(std), generator=gen).add_(mean)
                inputs, node = [mean], "NormalBackward1"
            else:
                if isinstance(mean, Tensor):
                    # The broadcast shape and promoted dtype of the two.
                    both = mean.detach() + std.detach()
                    out = zeros(both.shape, dtype=both.dtype).normal_(0.0, 1.0, generator=gen)
                    inputs, node = [mean, std], "NormalBackward3"
                else:
                    out = empty_like(std).normal_(0.0, 1.0, generator=gen)
                    inputs, node = [std], "NormalBackward2"
                out = out.mul_(std).add_(mean)
        # PyTorch's node passes zero gradients (the draw is not reparameterised).
        if is_grad_enabled() and _builtins.any(t.requires_grad for t in inputs):
            return _rustgrad._random_result(out, inputs, node)
        return out
    if size is None:
        raise TypeError("normal() missing 1 required positional argument: \"size\"")
    dt = kwargs.pop("dtype", None)
    shape = _size_list("normal", size)
    return _finish(
        lambda: empty(shape, dtype=dt).normal_(_builtins.float(mean), _builtins.float(std), generator=gen),
        kwargs,
        "normal",
    )


def randint(*args: Any, **kwargs: Any) -> Tensor:
    """``randint(high, size)`` or ``randint(low, high, size)``: int64 samples in [low, high)
    (``generator=`` optional)."""
    if _batched.vmap_active():
        return _batched.random_call("randint", randint, args, kwargs)
    gen = _generator_kwarg(kwargs, "randint", args, dict(kwargs))
    size = kwargs.pop("size", None)
    bounds = list(args)
    if size is None:
        if not bounds:
            raise TypeError('randint() missing 1 required positional arguments: "size"')
        size = bounds.pop()
    if "low" in kwargs:
        bounds.insert(0, kwargs.pop("low"))
    if "high" in kwargs:
        bounds.append(kwargs.pop("high"))
    if len(bounds) not in (1, 2):
        raise TypeError(f"randint() takes 2 or 3 positional arguments but {len(args)} were given")
    bounds = [_int_arg("randint", b, "low" if len(bounds) == 2 and i == 0 else "high", i + 1) for i, b in enumerate(bounds)]
    low, high = (0, bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
    if not isinstance(size, (tuple, list, Size)):
        raise TypeError(f"randint(): argument 'size' must be tuple of ints, not {_type_name(size)}")
    shape = _size_list("randint", size)
    dt = _dtype_arg("randint", kwargs.pop("dtype", None))

    def make() -> Tensor:
        t = _rustgrad._randint(low, high, shape, gen)
        return t.to(dt) if dt is not None and dt is not int64 else t

    return _finish(make, kwargs, "randint")


def randperm(n: _builtins.int, **kwargs: Any) -> Tensor:
    """A random permutation of ``0 .. n-1`` (``generator=`` optional)."""
    if _batched.vmap_active():
        return _batched.random_call("randperm", randperm, (n,), kwargs)
    gen = _generator_kwarg(kwargs, "randperm", (n,), dict(kwargs))
    n = _int_arg("randperm", n, "n", 1)
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    dt = _dtype_arg("randperm", kwargs.pop("dtype", None))

    def make() -> Tensor:
        t = _rustgrad._randperm(n, gen)
        return t.to(dt) if dt is not None and dt is not int64 else t

    return _finish(make, kwargs, "randperm")


def bernoulli(input: Tensor, p: Any = None, *, generator: Any = None, out: Tensor | None = None) -> Tensor:
    """Ones drawn with probability ``input`` (or with the number ``p``), zeros elsewhere, in
    ``input``'s shape and dtype, from ``generator`` (the default generator if omitted)."""
    if _batched.vmap_active():
        return _batched.random_call("bernoulli", bernoulli, (input, p), {"generator": generator, "out": out})
    _check_tensor("bernoulli", input)
    if generator is not None and not isinstance(generator, Generator):
        given = {"generator": generator} if out is None else {"generator": generator, "out": out}
        raise _invalid_combination("bernoulli", (input,) if p is None else (input, p), given)
    result = input.bernoulli(p, generator=generator)
    if out is not None:
        with no_grad():
            out.copy_(result)
        return out
    return result


def multinomial(
    input: Tensor, num_samples: _builtins.int, replacement: _builtins.bool = False, *, generator: Any = None, out: Any = None
) -> Tensor:
    """Indices of categories drawn with the weights of each row of ``input`` (1-d or 2-d):
    ``num_samples`` per row, with or without ``replacement``, as PyTorch draws them."""
    _check_tensor("multinomial", input)
    num_samples = _int_arg("multinomial", num_samples, "num_samples", 2)
    replacement = _bool_arg("multinomial", replacement, "replacement")
    result = input.multinomial(num_samples, replacement, generator=generator)
    if out is not None:
        out.copy_(result)
        return out
    return result


def poisson(input: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """``poisson(input, generator=None)``: one Poisson sample per element, with the element as
    its rate."""
    if _batched.vmap_active():
        return _batched.random_call("poisson", poisson, (input, *args), kwargs)
    _check_tensor("poisson", input)
    if len(args) > 1 or (args and "generator" in kwargs) or set(kwargs) - {"generator"}:
        extra = next(iter(set(kwargs) - {"generator"}), None)
        if extra is not None:
            raise TypeError(f"poisson() got an unexpected keyword argument '{extra}'")
        raise TypeError(f"poisson() takes from 1 to 2 positional arguments but {len(args) + 1} were given")
    generator = args[0] if args else kwargs.get("generator")
    if generator is not None and not isinstance(generator, Generator):
        where = " (position 2)" if args else ""
        raise TypeError(f"poisson(): argument 'generator'{where} must be torch.Generator, not {_type_name(generator)}")
    return _rustgrad._poisson(input, generator)


Generator = _rustgrad.Generator
default_generator = _rustgrad.default_generator


def manual_seed(seed: Any) -> Generator:
    """Seeds the default generator and returns it, as ``torch.manual_seed`` (which takes anything
    ``int()`` takes; negative seeds wrap to 64 bits)."""
    seed = _builtins.int(seed)
    if not -(2**63) <= seed < 2**64:
        raise ValueError("Overflow when unpacking long long")
    return default_generator.manual_seed(seed)


def seed() -> _builtins.int:
    """Seeds the default generator from a non-deterministic source; returns the seed."""
    return default_generator.seed()


def get_rng_state() -> Tensor:
    """The default generator's state (see ``Generator.get_state``)."""
    return default_generator.get_state()


def set_rng_state(new_state: Any) -> None:
    """Restores the default generator's state (a tensor from ``get_rng_state``, ours or PyTorch's)."""
    default_generator.set_state(new_state)


def arange(start: Any, end: Any = None, step: Any = 1, **kwargs: Any) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive); int64 unless an argument is a float."""
    if end is None:
        start, end = 0, start
    vals = [start, end, step]
    for v in vals:
        if not isinstance(v, (_builtins.int, _builtins.float, _np.number, _np.bool_, Tensor)) or (
            isinstance(v, Tensor) and v.dim() != 0
        ):
            raise TypeError(
                f"arange() received an invalid combination of arguments - got "
                f"({', '.join(_type_name(x) for x in vals)}), but expected (Number start, Number end, Number step)"
            )
    dt = _dtype_arg("arange", kwargs.pop("dtype", None))
    if dt is None:
        is_float = _builtins.any(isinstance(v, _builtins.float) or (isinstance(v, Tensor) and v.dtype.is_floating_point) for v in vals)
        dt = get_default_dtype() if is_float else int64
    s, e, st = (_builtins.float(v) for v in vals)
    return _finish(_rustgrad._arange(s, e, st, dt), kwargs, "arange")


def linspace(start: Any, end: Any, steps: _builtins.int, **kwargs: Any) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    steps = _int_arg("linspace", steps, "steps", 3)
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    dt = _dtype_arg("linspace", kwargs.pop("dtype", None))
    return _finish(_rustgrad._linspace(_builtins.float(start), _builtins.float(end), steps, dt), kwargs, "linspace")


def eye(n: _builtins.int, m: Any = None, **kwargs: Any) -> Tensor:
    """The ``n x m`` identity matrix (``m`` defaults to ``n``)."""
    n = _int_arg("eye", n, "n", 1)
    m = n if m is None else _int_arg("eye", m, "m", 2)
    if n < 0:
        raise RuntimeError(f"n must be greater or equal to 0, got {n}")
    if m < 0:
        raise RuntimeError(f"m must be greater or equal to 0, got {m}")
    return _finish(_rustgrad._eye(n, m, _dtype_arg("eye", kwargs.pop("dtype", None))), kwargs, "eye")


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: _builtins.bool = False, pin_memory: _builtins.bool = False) -> Tensor:
    """Copies ``data`` (numbers, nested lists, arrays, tensors) into a new leaf tensor."""
    dtype = _dtype_arg("tensor", dtype)
    if not isinstance(requires_grad, _builtins.bool):
        raise TypeError(f"tensor(): argument 'requires_grad' must be bool, not {_type_name(requires_grad)}")
    arr, dt = _numpy_of(data, dtype)
    t = from_numpy(arr)
    if arr.size == 0:
        # numpy may give an empty array zero strides; a new tensor has the contiguous ones.
        t = _rustgrad._full(list(arr.shape), 0, t.dtype)
    if t.dtype is not dt:
        t = t.to(dt)  # bfloat16, which numpy lacks, is built in float32 and rounded here
    return _finish(t, {"device": device, "requires_grad": requires_grad})


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Shares memory with ``data`` when it is a tensor or array of the right dtype."""
    dtype = _dtype_arg("as_tensor", dtype)
    if isinstance(data, Tensor) and (dtype is None or data.dtype is dtype):
        return data
    if isinstance(data, _np.ndarray) and dtype is None:
        try:
            return from_numpy(data)
        except (TypeError, ValueError):
            pass
    return tensor(data, dtype=dtype, device=device)


def is_tensor(obj: Any) -> _builtins.bool:
    """Whether ``obj`` is a tensor (a ``Tensor`` or a subclass such as ``nn.Parameter``).
    https://pytorch.org/docs/stable/generated/torch.is_tensor.html"""
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> _builtins.int:
    """The number of elements of ``input``."""
    _check_tensor("numel", input)
    return input.numel()


def get_default_dtype() -> dtype:
    """The dtype of new float tensors (float32 unless ``set_default_dtype`` changed it).

    See https://pytorch.org/docs/stable/generated/torch.get_default_dtype.html
    """
    return _rustgrad._get_default_dtype()


def result_type(tensor: Any, other: Any) -> dtype:
    """The dtype an arithmetic op on ``tensor`` and ``other`` (tensors or numbers) computes in.

    See https://pytorch.org/docs/stable/generated/torch.result_type.html
    """
    return _rustgrad._result_type(tensor, other)


def set_default_dtype(d: dtype) -> None:
    """Makes ``d`` (a floating-point dtype) the dtype of new float tensors and of int/float
    promotion, process-wide as in PyTorch.

    See https://pytorch.org/docs/stable/generated/torch.set_default_dtype.html
    """
    _rustgrad._set_default_dtype(d)


def is_floating_point(input: Tensor) -> _builtins.bool:
    """Whether ``input`` has a floating point dtype."""
    _check_tensor("is_floating_point", input)
    return input.is_floating_point()


# ----- ops as functions -----


_NUMBER = (_builtins.int, _builtins.float, _np.number, _np.bool_)


def _number_input(fn: str, input: Any, other: Any = None, float_op: _builtins.bool = False) -> Tensor:
    """PyTorch's arithmetic functions take a Python number as ``input`` too (a 0-d tensor). An
    int in [2**63, 2**64) is PyTorch's uint64 scalar, read in ``other``'s kind (note [uint64
    operands]): wrapped beside an integer tensor, a float beside a float or in a true division
    (``float_op``)."""
    if isinstance(input, Tensor):
        return input
    if isinstance(input, _builtins.int) and not isinstance(input, _builtins.bool) and 2**63 <= input < 2**64:
        if isinstance(other, Tensor):
            beside = "Bool" if other.dtype == bool else None if other.dtype.is_floating_point else "Long"
        else:
            beside = "Bool" if isinstance(other, _builtins.bool) else "Long" if isinstance(other, _builtins.int) else None
        if beside == "Bool" or (beside == "Long" and not isinstance(other, Tensor)):
            pair = f"{beside} and UInt64" if isinstance(other, Tensor) else f"UInt64 and {beside}"
            raise RuntimeError(f"Promotion for uint16, uint32, uint64 types is not supported, attempted to promote {pair}")
        return _rustgrad._wrapped_number(input - 2**64 if beside == "Long" and not float_op else _builtins.float(input))
    if isinstance(input, _NUMBER):
        # A wrapped number: it promotes as a number and keeps a double's precision.
        return _rustgrad._wrapped_number(input)
    raise TypeError(
        f"{fn}() received an invalid combination of arguments - got ({_type_name(input)}, ...), "
        "but expected (Tensor input, Tensor other, *, Number alpha = 1, Tensor out = None)"
    )


def _with_alpha(op: str, input: Any, other: Any, alpha: Any) -> Tensor:
    """``input.<op>(other, alpha=alpha)``, ``input`` possibly a number; a batched ``other``
    (inside ``vmap``) goes through the method's batching rule."""
    base = input if isinstance(input, Tensor) else _number_input(op, input, other)
    try:
        return getattr(base, op)(other, alpha=alpha)
    except TypeError:
        if _batched.has_batched((other,), {}):
            return _batched.call_method_op(op, (base, other), {"alpha": alpha})
        raise


def add(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """``input + alpha * other``."""
    return _with_alpha("add", input, other, alpha)


def sub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """``input - alpha * other``."""
    return _with_alpha("sub", input, other, alpha)


def mul(input: Any, other: Any) -> Tensor:
    """``input * other``."""
    return (input if isinstance(input, Tensor) else _number_input("mul", input, other)) * other


def div(input: Any, other: Any) -> Tensor:
    """``input / other`` (true division)."""
    return (input if isinstance(input, Tensor) else _number_input("div", input, other, float_op=True)) / other


def true_divide(input: Any, other: Any) -> Tensor:
    """``input / other``."""
    return (input if isinstance(input, Tensor) else _number_input("true_divide", input, other, float_op=True)) / other


def neg(input: Tensor) -> Tensor:
    """``-input``."""
    _check_tensor("neg", input)
    return -input


def pow(input: Any, exponent: Any) -> Tensor:
    """``input ** exponent``; ``input`` may be a number when ``exponent`` is a tensor."""
    if isinstance(input, Tensor) and isinstance(exponent, (Tensor, *_NUMBER)):
        return input.pow(exponent)
    if isinstance(input, _NUMBER) and isinstance(exponent, Tensor):
        return exponent.__rpow__(input)
    raise TypeError(
        f"pow() received an invalid combination of arguments - got ({_type_name(input)}, "
        f"{_type_name(exponent)}), but expected one of:\n"
        " * (Tensor input, Tensor exponent, *, Tensor out = None)\n"
        " * (Number self, Tensor exponent, *, Tensor out = None)\n"
        " * (Tensor input, Number exponent, *, Tensor out = None)\n"
    )


def _method(name: str):
    def op(input: Tensor, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(input, Tensor):
            _check_tensor(name, input)
        try:
            return getattr(input, name)(*args, **kwargs)
        except TypeError:
            # an unbatched input and a batched operand inside vmap: the method's batching rule
            if _batched.has_batched(args, kwargs):
                return _batched.call_method_op(name, (input, *args), kwargs)
            raise

    op.__name__ = name
    op.__qualname__ = name
    op.__doc__ = f"``torch.{name}(input, ...)``: same as ``input.{name}(...)``."
    return op


def _one_sequence_method(name: str, arg: str):
    """``torch.<name>(input, seq)``: unlike the method, the function form takes one sequence of ints."""
    method = _method(name)

    def op(input: Tensor, sizes: Any) -> Tensor:
        if isinstance(input, Tensor) and not isinstance(sizes, (tuple, list, Size)):
            raise TypeError(f"{name}(): argument '{arg}' (position 2) must be tuple of ints, not {_type_name(sizes)}")
        return method(input, sizes)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"``torch.{name}(input, {arg})``: as ``input.{name}({arg})``, with ``{arg}`` one tuple of ints.\n"
                  f"https://pytorch.org/docs/stable/generated/torch.{name}.html")
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
def _extreme(name: str):
    method = _method(name)

    def op(input: Tensor, *args: Any, **kwargs: Any) -> Any:
        other = args[0] if args else kwargs.get("other", kwargs.get("dim"))
        keepdim_given = len(args) >= 2 or "keepdim" in kwargs
        is_dim = isinstance(other, Tensor) and other.dim() == 0 and not other.is_floating_point()
        if isinstance(input, Tensor) and len(args) == 1 and args[0] is None and not kwargs:
            raise TypeError(
                f"{name}() received an invalid combination of arguments - got (Tensor, NoneType), but expected one of:\n"
                " * (Tensor input, *, Tensor out = None)\n"
                " * (Tensor input, Tensor other, *, Tensor out = None)\n"
                " * (Tensor input, int dim, bool keepdim = False, *, tuple of Tensors out = None)\n"
            )
        if isinstance(input, Tensor) and isinstance(other, Tensor) and keepdim_given and not is_dim:
            # PyTorch's parser: (Tensor, Tensor, keepdim) matches none of the three overloads.
            got = ", ".join([_type_name(input)] + [_type_name(a) for a in args]
                            + [f"{k}={_type_name(v)}" for k, v in kwargs.items()])
            if len(args) >= 2:
                marked = ", ".join([_type_name(input)] + [f"!{_type_name(a)}!" for a in args])
                why = f"some of the arguments have invalid types: ({marked})"
            else:
                why = "some of the keywords were incorrect: " + ", ".join(kwargs)
            raise TypeError(
                f"{name}() received an invalid combination of arguments - got ({got}), but expected one of:\n"
                " * (Tensor input, *, Tensor out = None)\n"
                f"      didn't match because {why}\n"
                " * (Tensor input, Tensor other, *, Tensor out = None)\n"
                " * (Tensor input, int dim, bool keepdim = False, *, tuple of Tensors out = None)\n"
            )
        return method(input, *args, **kwargs)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"``torch.{name}(input)``, ``torch.{name}(input, dim, keepdim=False)`` or "
                  f"``torch.{name}(input, other)``: as ``input.{name}(...)``.\n"
                  f"https://pytorch.org/docs/stable/generated/torch.{name}.html")
    return op


max = _extreme("max")
min = _extreme("min")


def norm(input: Tensor, *args: Any, **kwargs: Any) -> Any:
    """``torch.norm(input, p, dim, keepdim)``: same as ``input.norm(...)``."""
    _check_attribute(input, "layout")
    p = args[0] if args else kwargs.get("p", "fro")
    if isinstance(p, Tensor):
        raise TypeError("linalg_vector_norm(): argument 'ord' (position 2) must be Number, not Tensor")
    return input.norm(*args, **kwargs)


def dropout(input: Tensor, p: Any, train: Any) -> Tensor:
    """Zeroes each element with probability ``p`` (when ``train``) and scales the rest by ``1/(1-p)``.
    https://pytorch.org/docs/stable/generated/torch.nn.functional.dropout.html"""
    from rustgrad.nn.functional import dropout as _dropout

    return _dropout(input, p, train)


def repeat_interleave(
    input: Tensor, repeats: Any = None, dim: Any = None, *, output_size: Any = None
) -> Tensor:
    """Repeats each element ``repeats`` times along ``dim`` (the flattened input when ``dim`` is None).
    https://pytorch.org/docs/stable/generated/torch.repeat_interleave.html"""
    if repeats is None:  # repeat_interleave(repeats): the indices 0..n-1, each repeated
        counts = input.detach().numpy()
        return tensor(_np.repeat(_np.arange(len(counts)), counts), dtype=input.dtype)
    if dim is None:
        input, dim = input.reshape(-1), 0
    dim = dim % (input.dim() or 1)
    if isinstance(repeats, Tensor) and repeats.numel() != 1:
        counts = repeats.detach().numpy().astype(_np.int64)
        if counts.ndim != 1 or len(counts) != input.shape[dim]:
            raise RuntimeError("repeats must have the same size as input along dim")
        if (counts < 0).any():
            raise RuntimeError("repeats can not be negative")
        return input.index_select(dim, tensor(_np.repeat(_np.arange(len(counts)), counts)))
    r = _builtins.int(repeats.item() if isinstance(repeats, Tensor) else repeats)
    if r < 0:
        raise RuntimeError("repeats can not be negative")
    shape = list(input.shape)
    expanded = input.unsqueeze(dim + 1).expand(*shape[: dim + 1], r, *shape[dim + 1 :])
    return expanded.contiguous().view(*shape[:dim], shape[dim] * r, *shape[dim + 1 :])


Tensor.repeat_interleave = repeat_interleave  # type: ignore[method-assign]


def movedim(input: Tensor, source: Any, destination: Any) -> Tensor:
    """The dims ``source`` moved to the positions ``destination``, the others keeping their order
    (a view; ``moveaxis`` is the same).
    https://pytorch.org/docs/stable/generated/torch.movedim.html"""
    _check_tensor("movedim", input)
    src = [source] if isinstance(source, _builtins.int) else list(source)
    dst = [destination] if isinstance(destination, _builtins.int) else list(destination)
    n = input.dim()
    if len(src) != len(dst):
        raise RuntimeError(
            f"movedim: Invalid source or destination dims: source ({src} dims) should contain the same number "
            f"of dims as destination ({dst} dims)"
        )

    def wrap(d: _builtins.int) -> _builtins.int:
        size = _builtins.max(n, 1)
        if not -size <= d < size:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], but got {d})")
        return d % size

    ws, wd = [wrap(d) for d in src], [wrap(d) for d in dst]
    for name, dims, given in (("source", ws, src), ("destination", wd, dst)):
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"movedim: repeated dim in `{name}` ({given})")
    order: list[Any] = [None] * n
    for s_dim, d_dim in zip(ws, wd):
        order[d_dim] = s_dim
    rest = iter(d for d in range(n) if d not in ws)
    order = [next(rest) if o is None else o for o in order]
    return input.permute(*order) if n else input.view(())


moveaxis = movedim
inverse = linalg._inverse
det = linalg._det
logdet = linalg._logdet
slogdet = linalg._slogdet
svd = linalg._torch_svd
matrix_power = linalg.matrix_power


dot = _method("dot")
matmul = _method("matmul")
mm = _method("mm")
mv = _method("mv")
bmm = _method("bmm")
transpose = _method("transpose")
swapdims = _method("swapdims")
as_strided = _method("as_strided")
swapaxes = _method("swapaxes")
t = _method("t")
reshape = _one_sequence_method("reshape", "shape")
permute = _one_sequence_method("permute", "dims")
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
select = _method("select")
def split(tensor: Tensor, split_size_or_sections: Any, dim: _builtins.int = 0) -> Any:
    """``torch.split(tensor, split_size_or_sections, dim=0)``: as ``tensor.split(...)`` (views).
    https://pytorch.org/docs/stable/generated/torch.split.html"""
    return tensor.split(split_size_or_sections, dim)


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
flip = _method("flip")
fliplr = _method("fliplr")
flipud = _method("flipud")
roll = _method("roll")
tril = _method("tril")
triu = _method("triu")
diagonal = _method("diagonal")
diag = _method("diag")
diag_embed = _method("diag_embed")
trace = _method("trace")
sort = _method("sort")
argsort = _method("argsort")
topk = _method("topk")
kthvalue = _method("kthvalue")
median = _method("median")
mode = _method("mode")
cumprod = _method("cumprod")
cummax = _method("cummax")
cummin = _method("cummin")
amax = _method("amax")
amin = _method("amin")
aminmax = _method("aminmax")
count_nonzero = _method("count_nonzero")
isclose = _method("isclose")
outer = _method("outer")
ger = _method("ger")
tile = _method("tile")
meshgrid = _ops.meshgrid
einsum = _ops.einsum
searchsorted = _ops.searchsorted
bucketize = _ops.bucketize
histc = _ops.histc
histogram = _ops.histogram
unique = _ops.unique
fmod = _method("fmod")
remainder = _ops.remainder
nan_to_num = _method("nan_to_num")
nan_to_num_ = _method("nan_to_num_")
addmv = _method("addmv")
addr = _method("addr")
baddbmm = _method("baddbmm")
lerp = _method("lerp")
addcmul = _method("addcmul")
addcdiv = _method("addcdiv")


def allclose(
    input: Tensor, other: Tensor, rtol: _builtins.float = 1e-05, atol: _builtins.float = 1e-08, equal_nan: _builtins.bool = False
) -> _builtins.bool:
    """Whether ``|input - other| <= atol + rtol * |other|`` everywhere."""
    _check_tensor("allclose", input)
    _check_tensor("allclose", other, "other", 2)
    rtol = _number_arg("allclose", rtol, "rtol", 3)
    atol = _number_arg("allclose", atol, "atol", 4)
    equal_nan = _strict_bool_arg("allclose", equal_nan, "equal_nan")
    if input.dtype != other.dtype:
        raise RuntimeError(f"{_scalar_type_name(input.dtype)} did not match {_scalar_type_name(other.dtype)}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value < 0:
            raise RuntimeError(f"{name} must be greater than or equal to zero, but got {value:g}")
    shape = tuple((input.detach() == other.detach()).shape)  # PyTorch's broadcasting rule and message
    a = _np.broadcast_to(input.detach().numpy(), shape)
    b = _np.broadcast_to(other.detach().numpy(), shape)
    return _builtins.bool(_np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def _batchable(name: str, fn: _Fn) -> _Fn:
    """``fn`` (a function of the core) taking batched operands inside ``vmap`` through its batching rule."""

    def op(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TypeError:
            if _batched.has_batched(args, kwargs):
                return _vmap_call(name, fn, *args, **kwargs)
            raise

    op.__name__ = op.__qualname__ = name
    op.__doc__ = fn.__doc__
    return cast(_Fn, op)


cat = _batchable("cat", _rustgrad.cat)
concat = cat
concatenate = cat
stack = _batchable("stack", _rustgrad.stack)
addmm = _batchable("addmm", _rustgrad.addmm)
where = _batchable("where", _rustgrad.where)



from rustgrad import (
    accelerator,
    amp,
    autograd,
    backends,
    cpu,
    cuda,
    distributed,
    func,
    jit,
    mps,
    nn,
    onnx,
    optim,
    profiler,
    random,
    serialization,
    utils,
    version,
    xpu,
)
from rustgrad._env import (
    compile,
    get_default_device,
    get_device_module,
    get_num_interop_threads,
    get_num_threads,
    is_complex,
    is_nonzero,
    is_storage,
    set_default_device,
    set_num_interop_threads,
    set_num_threads,
)
from rustgrad._legacy import set_default_tensor_type
from rustgrad._pyutils import typename
from rustgrad.amp.autocast_mode import (
    autocast,
    clear_autocast_cache,
    get_autocast_dtype,
    is_autocast_cache_enabled,
    is_autocast_enabled,
    set_autocast_cache_enabled,
    set_autocast_dtype,
    set_autocast_enabled,
)
from rustgrad.func import vmap
from rustgrad.serialization import load, load_safetensors, save, save_safetensors

is_anomaly_enabled = _rustgrad.is_anomaly_enabled
is_anomaly_check_nan_enabled = _rustgrad.is_anomaly_check_nan_enabled


def set_anomaly_enabled(enabled: _builtins.bool, check_nan: _builtins.bool = True) -> None:
    """Turns anomaly detection on or off (see ``autograd.detect_anomaly``)."""
    _rustgrad._set_anomaly_enabled(enabled, check_nan)


def _deprecated(old: str, new: str) -> None:
    import warnings

    warnings.warn(f"torch.{old}() is deprecated. Please use torch.{new} instead.", DeprecationWarning, stacklevel=3)


def is_autocast_cpu_enabled() -> _builtins.bool:
    """Deprecated ``is_autocast_enabled('cpu')``. https://pytorch.org/docs/stable/amp.html"""
    _deprecated("is_autocast_cpu_enabled", "is_autocast_enabled('cpu')")
    return is_autocast_enabled("cpu")


def get_autocast_cpu_dtype() -> Any:
    """Deprecated ``get_autocast_dtype('cpu')``. https://pytorch.org/docs/stable/amp.html"""
    _deprecated("get_autocast_cpu_dtype", "get_autocast_dtype('cpu')")
    return get_autocast_dtype("cpu")


def get_autocast_gpu_dtype() -> Any:
    """Deprecated ``get_autocast_dtype('cuda')``. https://pytorch.org/docs/stable/amp.html"""
    _deprecated("get_autocast_gpu_dtype", "get_autocast_dtype('cuda')")
    return get_autocast_dtype("cuda")


__all__ = [
    "BFloat16Tensor",
    "BoolTensor",
    "ByteTensor",
    "CharTensor",
    "DoubleTensor",
    "FloatTensor",
    "Generator",
    "HalfTensor",
    "IntTensor",
    "LongTensor",
    "ShortTensor",
    "Size",
    "Tensor",
    "abs",
    "accelerator",
    "acos",
    "add",
    "addcdiv",
    "addcmul",
    "addmm",
    "addmv",
    "addr",
    "all",
    "allclose",
    "amax",
    "amin",
    "aminmax",
    "amp",
    "any",
    "arange",
    "argmax",
    "argmin",
    "argsort",
    "as_strided",
    "as_tensor",
    "asin",
    "atan",
    "autocast",
    "autograd",
    "backends",
    "baddbmm",
    "bernoulli",
    "bfloat16",
    "bitwise_and",
    "bitwise_not",
    "bitwise_or",
    "bitwise_xor",
    "bmm",
    "bool",
    "bucketize",
    "cat",
    "ceil",
    "chunk",
    "clamp",
    "clamp_max",
    "clamp_min",
    "clear_autocast_cache",
    "clip",
    "clone",
    "compile",
    "concat",
    "concatenate",
    "cos",
    "cosh",
    "count_nonzero",
    "cpu",
    "cuda",
    "cummax",
    "cummin",
    "cumprod",
    "cumsum",
    "default_generator",
    "det",
    "detach",
    "device",
    "diag",
    "diag_embed",
    "diagonal",
    "distributed",
    "div",
    "dot",
    "double",
    "dropout",
    "dtype",
    "einsum",
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
    "flip",
    "fliplr",
    "flipud",
    "float",
    "float16",
    "float32",
    "float64",
    "floor",
    "fmod",
    "from_numpy",
    "full",
    "full_like",
    "func",
    "gather",
    "ge",
    "ger",
    "get_autocast_cpu_dtype",
    "get_autocast_dtype",
    "get_autocast_gpu_dtype",
    "get_default_device",
    "get_default_dtype",
    "get_device_module",
    "get_num_interop_threads",
    "get_num_threads",
    "get_rng_state",
    "gt",
    "half",
    "histc",
    "histogram",
    "index_select",
    "inference_mode",
    "initial_seed",
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "inverse",
    "is_anomaly_check_nan_enabled",
    "is_anomaly_enabled",
    "is_autocast_cache_enabled",
    "is_autocast_cpu_enabled",
    "is_autocast_enabled",
    "is_complex",
    "is_floating_point",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "is_nonzero",
    "is_storage",
    "is_tensor",
    "isclose",
    "isfinite",
    "isinf",
    "isnan",
    "jit",
    "kthvalue",
    "le",
    "lerp",
    "linalg",
    "linspace",
    "load",
    "load_safetensors",
    "log",
    "log1p",
    "log2",
    "log10",
    "log_softmax",
    "logdet",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "logsumexp",
    "long",
    "lt",
    "manual_seed",
    "masked_fill",
    "matmul",
    "matrix_power",
    "max",
    "maximum",
    "mean",
    "median",
    "meshgrid",
    "min",
    "minimum",
    "mm",
    "mode",
    "moveaxis",
    "movedim",
    "mps",
    "mul",
    "multinomial",
    "mv",
    "nan_to_num",
    "nan_to_num_",
    "narrow",
    "ne",
    "neg",
    "nn",
    "no_grad",
    "nonzero",
    "norm",
    "normal",
    "numel",
    "ones",
    "ones_like",
    "onnx",
    "optim",
    "outer",
    "permute",
    "poisson",
    "pow",
    "prod",
    "profiler",
    "rand",
    "rand_like",
    "randint",
    "randint_like",
    "randn",
    "randn_like",
    "random",
    "randperm",
    "reciprocal",
    "relu",
    "remainder",
    "repeat_interleave",
    "reshape",
    "result_type",
    "roll",
    "round",
    "rsqrt",
    "save",
    "save_safetensors",
    "scatter",
    "scatter_add",
    "searchsorted",
    "seed",
    "select",
    "serialization",
    "set_anomaly_enabled",
    "set_autocast_cache_enabled",
    "set_autocast_dtype",
    "set_autocast_enabled",
    "set_default_device",
    "set_default_dtype",
    "set_default_tensor_type",
    "set_grad_enabled",
    "set_num_interop_threads",
    "set_num_threads",
    "set_printoptions",
    "set_rng_state",
    "short",
    "sigmoid",
    "sign",
    "sin",
    "sinh",
    "slogdet",
    "softmax",
    "sort",
    "split",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "sub",
    "sum",
    "svd",
    "swapaxes",
    "swapdims",
    "t",
    "tan",
    "tanh",
    "tensor",
    "tile",
    "topk",
    "trace",
    "transpose",
    "tril",
    "triu",
    "trunc",
    "typename",
    "uint8",
    "unbind",
    "unique",
    "unsqueeze",
    "utils",
    "var",
    "version",
    "vmap",
    "where",
    "xpu",
    "zeros",
    "zeros_like",
]


# ----- dtype aliases (defined last: they shadow the builtins `int`, `float`-like names) -----
float16 = _rustgrad.float16
half = float16
bfloat16 = _rustgrad.bfloat16
uint8 = _rustgrad.uint8
int8 = _rustgrad.int8
int16 = _rustgrad.int16
short = int16
int32 = _rustgrad.int32
int = int32

# numpy's `axis=`/`keepdims=` wherever PyTorch takes them (after every function is defined).
_numpy_names.install(_sys.modules[__name__], Tensor)
_storage.install(Tensor)
Tensor.movedim = movedim  # type: ignore[method-assign]
Tensor.moveaxis = movedim  # type: ignore[method-assign]
linalg.install(Tensor)
