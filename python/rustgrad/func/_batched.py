"""Batched tensors: how ``vmap`` runs a function once over a whole batch.

Inside ``vmap``, each mapped input is a ``BatchedTensor``: a *value* (an ordinary tensor, or a
batched tensor of an enclosing ``vmap``) whose dimension 0 is the batch, and which presents the
rest of its shape to the function. Every op on a batched tensor goes through ``dispatch``, which
applies the op's *batching rule*: the same op called once on the values, with dimension
arguments shifted past the batch dimension and operands aligned so that broadcasting never mixes
the batch with a logical dimension. An op without a rule falls back to a loop over the batch,
with a warning the first time (``methods_without_rule()`` lists the Tensor methods that do).

Levels: each ``vmap`` call gets a new level number; a batched tensor knows its level, and nested
batched tensors have the inner (higher) level outside. An op runs the rule of the highest level
among its operands; operands of lower levels are unbatched at that level, and the rule's calls
on the values dispatch again at theirs. The batch dimensions of the physical tensor underneath
are therefore ordered from the outermost ``vmap`` to the innermost, and autograd sees only
ordinary tensors: ``grad`` inside ``vmap`` differentiates the physical graph, in which batch
elements never mix, so one backward gives every per-sample gradient.
"""

from __future__ import annotations

import itertools
import threading
import warnings
from collections.abc import Callable
from typing import Any

_state = threading.local()
_next_level = itertools.count(1)
_warned: set[str] = set()


def active_levels() -> list:
    """The ``vmap`` levels running on this thread, outermost first: ``[level, batch, randomness]``."""
    levels = _state.__dict__.get("levels")
    if levels is None:
        levels = _state.levels = []
    return levels


def push_level(batch: int, randomness: str) -> int:
    """Enters a ``vmap`` level of batch size ``batch``; returns its number. An entry is
    ``[level, batch, randomness, depth of rules running]``."""
    level = next(_next_level)
    active_levels().append([level, batch, randomness, 0])
    return level


def pop_level() -> None:
    """Leaves the innermost ``vmap`` level."""
    active_levels().pop()


def _level_entry(level: int) -> list:
    for entry in active_levels():
        if entry[0] == level:
            return entry
    raise RuntimeError(
        "vmap: a batched tensor was used outside the vmap that created it. Return tensors from the "
        "vmapped function instead of storing them elsewhere."
    )


def _tensor_type() -> type:
    from rustgrad import _rustgrad

    return _rustgrad.Tensor


# ----- the batched tensor -----


class BatchedTensor:
    """A tensor inside ``vmap``: ``_value`` holds the whole batch along dimension 0; the tensor
    shows the rest (``isinstance(x, torch.Tensor)`` holds, as in PyTorch)."""

    __slots__ = ("__weakref__", "_level", "_value")

    def __getattr__(self, name: str) -> Any:
        # Reached only for names that are not Tensor methods (those are added by install()).
        raise AttributeError(f"'Tensor' object has no attribute '{name}'")

    def __init__(self, value: Any, level: int) -> None:
        self._value = value
        self._level = level

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return _tensor_type()

    # --- what the function sees ---
    @property
    def shape(self) -> Any:
        """The shape without the batch dimension."""
        from rustgrad._glue import Size

        return Size(tuple(self._value.shape)[1:])

    def size(self, dim: int | None = None) -> Any:
        """``shape``, or one of its sizes."""
        shape = self.shape
        if dim is None:
            return shape
        return shape[_wrap_dim(dim, len(shape), "size")]

    def dim(self) -> int:
        """The number of dimensions without the batch dimension."""
        return self._value.dim() - 1

    ndimension = dim

    @property
    def ndim(self) -> int:
        """The number of dimensions without the batch dimension."""
        return self._value.dim() - 1

    def numel(self) -> int:
        """The number of elements of one batch element."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    nelement = numel

    def stride(self, dim: int | None = None) -> Any:
        """The strides without the batch dimension."""
        strides = tuple(self._value.stride())[1:]
        return strides if dim is None else strides[_wrap_dim(dim, len(strides), "stride")]

    def __len__(self) -> int:
        if self.dim() == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Any:
        if self.dim() == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    @property
    def dtype(self) -> Any:
        """The dtype."""
        return self._value.dtype

    @property
    def device(self) -> Any:
        """The device."""
        return self._value.device

    @property
    def is_cuda(self) -> Any:
        """False: tensors live on the CPU."""
        return False

    @property
    def is_cpu(self) -> Any:
        """True: tensors live on the CPU."""
        return True

    @property
    def requires_grad(self) -> Any:
        """Whether the batch requires grad."""
        return self._value.requires_grad

    @property
    def is_leaf(self) -> Any:
        """Whether the batch is a leaf."""
        return self._value.is_leaf

    @property
    def grad_fn(self) -> Any:
        """The node that made the batch."""
        return self._value.grad_fn

    @property
    def layout(self) -> Any:
        """The layout."""
        return self._value.layout

    @property
    def grad(self) -> Any:
        """The batch's gradient, batched."""
        g = self._value.grad
        return None if g is None else BatchedTensor(g, self._level)

    @property
    def data(self) -> Any:
        """The values without history, batched."""
        return BatchedTensor(self._value.data, self._level)

    @property
    def T(self) -> Any:
        """The dimensions reversed."""
        n = self.dim()
        return self.permute(*range(n - 1, -1, -1))

    @property
    def mT(self) -> Any:
        """The last two dimensions swapped."""
        return self.transpose(-2, -1)

    mH = mT
    H = T

    def __repr__(self) -> str:
        inner = repr(self._value).replace("\n", "\n    ")
        depth = next((i + 1 for i, e in enumerate(active_levels()) if e[0] == self._level), self._level)
        return f"BatchedTensor(lvl={depth}, bdim=0, value=\n    {inner}\n)"

    __str__ = __repr__

    def __hash__(self) -> int:
        return id(self)

    def __format__(self, spec: str) -> str:
        return repr(self)

    # --- what cannot be batched ---
    def item(self) -> Any:
        """Refused inside ``vmap``: a batch has no single value."""
        raise RuntimeError(
            "vmap: It looks like you're calling .item() on a Tensor. We don't support vmap over calling .item() "
            "on a Tensor, please try to rewrite what you're doing with other operations. If error is occurring "
            "somewhere inside PyTorch internals, please file a bug report."
        )

    tolist = item
    __float__ = item
    __int__ = item
    __index__ = item
    __complex__ = item

    def numpy(self, *args: Any, **kwargs: Any) -> Any:
        """Refused inside ``vmap``."""
        raise RuntimeError("vmap: numpy() is not supported inside vmap: a batched tensor has no single array.")

    def __bool__(self) -> bool:
        raise RuntimeError(
            "vmap: It looks like you're attempting to use a Tensor in some data-dependent control flow. We don't "
            "support that yet, please shout over at https://github.com/pytorch/functorch/issues/257 ."
        )

    def backward(self, *args: Any, **kwargs: Any) -> None:
        """Refused inside ``vmap``: use ``torch.func.grad`` or ``vjp``."""
        raise RuntimeError(
            "backward() called inside a functorch transform. This is not supported, please use functorch.grad or "
            "functorch.vjp instead or call backward() outside of functorch transforms."
        )


def _method_caller(name: str) -> Callable:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, name)(*args, **kwargs)

    call.__name__ = name
    return call


_generated: set[str] = set()


def _install_methods() -> None:
    """Gives ``BatchedTensor`` every method and operator of ``Tensor``, each through ``dispatch``."""
    tensor = _tensor_type()
    own = set(BatchedTensor.__dict__)
    names = [n for n in dir(tensor) if not n.startswith("_") and callable(getattr(tensor, n, None))]
    names += [
        n
        for n in dir(tensor)
        if n.startswith("__")
        and n.endswith("__")
        and n[2:-2] in _OPERATORS
    ]
    for name in names:
        if name in own:
            continue
        _generated.add(name)
        caller = _method_caller(name)

        def method(self: Any, *args: Any, _name: str = name, _caller: Callable = caller, **kwargs: Any) -> Any:
            return dispatch(_name, _caller, (self, *args), kwargs)

        method.__name__ = name
        method.__doc__ = f"``Tensor.{name}`` on a batched tensor (its batching rule, or a loop)."
        setattr(BatchedTensor, name, method)


_OPERATORS = {
    "add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "floordiv", "rfloordiv", "mod", "rmod",
    "pow", "rpow", "matmul", "rmatmul", "neg", "pos", "abs", "invert", "and", "rand", "or", "ror", "xor", "rxor",
    "lshift", "rshift", "eq", "ne", "lt", "le", "gt", "ge", "iadd", "isub", "imul", "itruediv", "ifloordiv",
    "imod", "ipow", "iand", "ior", "ixor", "getitem", "setitem", "contains", "array",
}  # fmt: skip


# ----- dispatch -----


def _is_batched(x: Any) -> bool:
    return type(x) is BatchedTensor


def _top_level(args: tuple, kwargs: dict) -> int:
    """The highest level among the batched operands (lists and tuples of them included)."""
    level = 0
    for a in itertools.chain(args, kwargs.values()):
        if type(a) is BatchedTensor:
            level = max(level, a._level)
        elif isinstance(a, (list, tuple)):
            for b in a:
                if type(b) is BatchedTensor:
                    level = max(level, b._level)
    return level


def has_batched(args: tuple, kwargs: dict) -> bool:
    """Whether any operand (or an element of a list or tuple operand) is batched."""
    return _top_level(args, kwargs) > 0


def dispatch(name: str, fn: Callable, args: tuple, kwargs: dict) -> Any:
    """``fn(*args, **kwargs)`` for an op ``name`` with batched operands: its batching rule at the
    highest level among them, or a loop over that level's batch. Random functions called by the
    rule or the loop draw as they are (the rule has dealt with ``randomness``)."""
    level = _top_level(args, kwargs)
    entry = _level_entry(level)
    rule = RULES.get(name)
    innermost = active_levels()[-1]
    innermost[3] += 1
    try:
        if rule is not None:
            out = rule(name, fn, level, args, kwargs)
            if out is not NotImplemented:
                return out
        return _loop(name, fn, level, entry[1], args, kwargs)
    finally:
        innermost[3] -= 1


def _value_at(x: Any, level: int) -> Any:
    """``x``'s value if it is batched at ``level``, else ``x``."""
    if type(x) is BatchedTensor and x._level == level:
        return x._value
    return x


def _batched_at(x: Any, level: int) -> bool:
    return type(x) is BatchedTensor and x._level == level


def _wrap(out: Any, level: int) -> Any:
    """The op's result on the values, as batched tensors of ``level``."""
    T = _tensor_type()
    if isinstance(out, T):
        return BatchedTensor(out, level)
    if isinstance(out, tuple):
        items = [_wrap(o, level) for o in out]
        return type(out)(*items) if hasattr(out, "_fields") else tuple(items)
    if isinstance(out, list):
        return [_wrap(o, level) for o in out]
    return out


def _loop(name: str, fn: Callable, level: int, batch: int, args: tuple, kwargs: dict) -> Any:
    """The op run once per batch element of ``level``, the results stacked (the fallback)."""
    import rustgrad

    if name not in _warned and name not in ("vjp", "grad"):
        _warned.add(name)
        warnings.warn(
            f"There is a performance drop because we have not yet implemented the batching rule for {name}. "
            "rustgrad runs it once per batch element.",
            UserWarning,
            stacklevel=4,
        )

    def pick(x: Any, i: int) -> Any:
        if _batched_at(x, level):
            return x._value.select(0, i)
        if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
            return type(x)(pick(y, i) for y in x)
        return x

    results = [fn(*(pick(a, i) for a in args), **{k: pick(v, i) for k, v in kwargs.items()}) for i in range(batch)]
    if _is_inplace(name) and args and _batched_at(args[0], level):
        return args[0]

    def stack(items: list) -> Any:
        first = items[0]
        if isinstance(first, _tensor_type()):
            return BatchedTensor(rustgrad.stack(items), level)
        if isinstance(first, tuple):
            parts = [stack([it[j] for it in items]) for j in range(len(first))]
            return type(first)(*parts) if hasattr(first, "_fields") else tuple(parts)
        if isinstance(first, list):
            if any(len(it) != len(first) for it in items):
                raise RuntimeError(f"vmap: {name} returned lists of different lengths for different batch elements")
            return [stack([it[j] for it in items]) for j in range(len(first))]
        if any(it != first for it in items):
            raise RuntimeError(
                f"vmap: {name} returned a different {type(first).__name__} for different batch elements; "
                "data-dependent values are not supported inside vmap"
            )
        return first

    if not results:
        raise RuntimeError(f"vmap: cannot run {name} over a batch of size 0")
    return stack(results)


def _is_inplace(name: str) -> bool:
    if name.startswith("__"):
        return name[2:3] == "i" and name[2:-2] in _OPERATORS and name != "__invert__" or name == "__setitem__"
    return name.endswith("_")


def _wrap_dim(dim: int, n: int, who: str) -> int:
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{who}(): argument 'dim' must be int, not {type(dim).__name__}")
    lo, hi = (-1, 0) if n == 0 else (-n, n - 1)
    if not lo <= dim <= hi:
        raise IndexError(f"Dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})")
    return dim % max(n, 1)


def _logical_dim(x: Any, level: int) -> int:
    """The number of dimensions ``x`` shows at ``level``."""
    if _batched_at(x, level):
        return x._value.dim() - 1
    return x.dim()


# ----- rules -----

RULES: dict[str, Callable] = {}


def _rule(*names: str) -> Callable:
    def register(rule: Callable) -> Callable:
        for n in names:
            RULES[n] = rule
        return rule

    return register


def _aligned(level: int, args: tuple, kwargs: dict, ndim: int) -> tuple[tuple, dict]:
    """The operands with batched values padded to ``1 + ndim`` dimensions (ones after the batch
    dimension), so that broadcasting lines up the logical dimensions and keeps the batch first."""

    def align(x: Any) -> Any:
        if _batched_at(x, level):
            v = x._value
            for _ in range(ndim - (v.dim() - 1)):
                v = v.unsqueeze(1)
            return v
        return x

    return tuple(align(a) for a in args), {k: align(v) for k, v in kwargs.items()}


def _expanded(x: Any, level: int, batch: int) -> Any:
    """``x``'s value if batched at ``level``, else ``x`` expanded along a new batch dimension."""
    if _batched_at(x, level):
        return x._value
    return x.unsqueeze(0).expand(batch, *tuple(x.shape))


def _tensor_operands(args: tuple, kwargs: dict) -> list:
    T = _tensor_type()
    return [a for a in itertools.chain(args, kwargs.values()) if isinstance(a, T)]


_ELEMENTWISE = [
    "abs", "acos", "asin", "atan", "atan2", "cos", "cosh", "sin", "sinh", "tan", "tanh", "exp", "exp2",
    "expm1", "log", "log10", "log1p", "log2", "sqrt", "rsqrt", "square", "reciprocal", "neg", "sign", "sgn",
    "sigmoid", "relu", "floor", "ceil", "round", "trunc", "frac", "erf", "erfc", "erfinv", "lgamma",
    "digamma", "logit", "nan_to_num", "isnan", "isinf", "isfinite", "isclose", "clamp", "clip", "clamp_min",
    "clamp_max", "add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow",
    "float_power", "maximum", "minimum", "fmax", "fmin", "hypot", "copysign", "xlogy", "heaviside", "eq",
    "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and",
    "bitwise_or", "bitwise_xor", "bitwise_not", "lerp", "addcmul", "addcdiv", "where", "masked_fill",
    "positive", "float", "double", "half", "bfloat16", "long", "int", "short", "char", "byte", "bool", "to",
    "type_as", "clone", "contiguous", "detach", "requires_grad_", "cpu", "cuda", "fill_", "zero_", "copy_",
    "gelu", "silu", "softplus", "leaky_relu", "elu", "selu", "celu", "hardtanh", "relu6", "mish",
    "hardswish", "hardsigmoid", "softsign", "tanhshrink", "logsigmoid", "softshrink", "hardshrink",
    "threshold", "rrelu_eval", "relu6", "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
    "__truediv__", "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__",
    "__rpow__", "__neg__", "__pos__", "__abs__", "__invert__", "__and__", "__rand__", "__or__", "__ror__",
    "__xor__", "__rxor__", "__lshift__", "__rshift__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__",
    "__ge__", "__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__", "__ipow__",
    "__iand__", "__ior__", "__ixor__"
]  # fmt: skip
ELEMENTWISE = set(_ELEMENTWISE) | {n + "_" for n in _ELEMENTWISE if not n.startswith("__")}
# Functions of torch.nn.functional whose name differs from the elementwise method they match.
ELEMENTWISE |= {"relu_", "elu_", "leaky_relu_", "hardtanh_", "threshold_"}


def _elementwise(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    """Ops that act element by element over broadcast operands: one call on aligned values."""
    tensors = _tensor_operands(args, kwargs)
    ndim = max(_logical_dim(t, level) for t in tensors)
    if _is_inplace(name) or kwargs.get("inplace") is True:
        self = args[0]
        if not _batched_at(self, level):
            raise RuntimeError(
                f"vmap: {name}(self, *extra_args) is not possible because there exists a Tensor `other` in "
                "extra_args that has more elements than `self`. This happened due to `other` being vmapped over "
                f"but `self` not being vmapped over in a vmap. Please try to use out-of-place operators instead of "
                f"{name}."
            )
        ndim = _logical_dim(self, level)
        a, k = _aligned(level, args, kwargs, ndim)
        fn(*a, **k)
        return self
    a, k = _aligned(level, args, kwargs, ndim)
    return _wrap(fn(*a, **k), level)


for _n in ELEMENTWISE:
    RULES[_n] = _elementwise


# The dimension arguments of an op: (position after self, keyword, kind). Kinds: "dim" one
# dimension of the input, "dims" one or several, "new" a position in the output (unsqueeze).
_DIM_ARGS: dict[str, list[tuple[int, str, str]]] = {}


def _dims(names: str, *spec: tuple[int, str, str]) -> None:
    for n in names.split():
        _DIM_ARGS[n] = list(spec)


_dims("sum mean nansum nanmean amax amin all any count_nonzero logsumexp", (0, "dim", "dims"))
_dims("prod max min median nanmedian mode argmax argmin", (0, "dim", "dim"))
_dims("std var std_mean var_mean", (0, "dim", "dims"))
_dims("norm", (1, "dim", "dims"))
_dims("cumsum cumprod cummax cummin logcumsumexp softmax log_softmax softmin", (0, "dim", "dim"))
_dims("sort argsort", (0, "dim", "dim"))
_dims("topk kthvalue", (1, "dim", "dim"))
_dims("unbind select narrow index_select", (0, "dim", "dim"))
_dims("split chunk tensor_split", (1, "dim", "dim"))
_dims("diff", (1, "dim", "dim"))
_dims("roll", (1, "dims", "dims"))
_dims("repeat_interleave", (1, "dim", "dim"))
_dims("flip", (0, "dims", "dims"))
_dims("transpose swapaxes swapdims", (0, "dim0", "dim"), (1, "dim1", "dim"))
_dims("movedim moveaxis", (0, "source", "dims"), (1, "destination", "dims"))
_dims("unsqueeze", (0, "dim", "new"))
_dims("unflatten", (0, "dim", "dim"))
_dims("diagonal", (1, "dim1", "dim"), (2, "dim2", "dim"))

# Defaults of the dimension arguments that have one (the rest reduce everything when absent).
_DIM_DEFAULTS = {
    ("sort", 0): -1, ("argsort", 0): -1, ("topk", 1): -1, ("kthvalue", 1): -1,
    ("unbind", 0): 0, ("split", 1): 0, ("chunk", 1): 0, ("tensor_split", 1): 0, ("diff", 1): -1,
    ("diagonal", 1): 0, ("diagonal", 2): 1,
    ("mode", 0): -1, ("repeat_interleave", 1): None,
}  # fmt: skip
# Ops that reduce over every dimension when no dimension is given.
_FULL_REDUCTIONS = {
    "sum", "mean", "nansum", "nanmean", "amax", "amin", "all", "any", "count_nonzero", "prod", "std", "var",
    "norm", "max", "min", "median", "nanmedian", "argmax", "argmin",
}  # fmt: skip


def _get_arg(args: tuple, kwargs: dict, pos: int, key: str) -> tuple[Any, str]:
    """The argument at ``pos`` (after self) or keyword ``key``, and where it was found."""
    if len(args) > pos + 1:
        return args[pos + 1], "pos"
    if key in kwargs:
        return kwargs[key], "kw"
    return None, ""


def _set_arg(args: list, kwargs: dict, pos: int, key: str, where: str, value: Any) -> None:
    if where == "pos":
        args[pos + 1] = value
    else:
        kwargs[key] = value


def _shift(d: Any, n: int, kind: str, name: str) -> Any:
    """A logical dimension (or several) as the value's dimension."""
    if isinstance(d, (tuple, list)):
        return type(d)(_wrap_dim(x, n, name) + 1 for x in d)
    return _wrap_dim(d, n + 1 if kind == "new" else n, name) + 1


def _with_dims(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    """Ops with dimension arguments: the dimensions moved past the batch dimension."""
    self = args[0]
    if not _batched_at(self, level) or any(_batched_at(a, level) for a in args[1:]) or any(
        _batched_at(v, level) for v in kwargs.values()
    ):
        return NotImplemented  # an unbatched input or a batched index: the loop
    n = self._value.dim() - 1
    if name in ("std", "var") and len(args) > 1 and isinstance(args[1], bool):
        # std(unbiased): no dimension given
        return _full_reduce(name, fn, level, args[:1], {**kwargs, "unbiased": args[1]}, n)
    new_args, new_kwargs = list(args), dict(kwargs)
    found_any = False
    for pos, key, kind in _DIM_ARGS[name]:
        d, where = _get_arg(args, kwargs, pos, key)
        if where == "" and (name, pos) in _DIM_DEFAULTS:
            d, where = _DIM_DEFAULTS[(name, pos)], "kw"
        if d is None:
            continue
        if n == 0 and kind != "new":
            return NotImplemented
        found_any = True
        _set_arg(new_args, new_kwargs, pos, key, where or "kw", _shift(d, n, kind, name))
    if not found_any:
        if name in _FULL_REDUCTIONS:
            return _full_reduce(name, fn, level, args, kwargs, n)
        return NotImplemented  # an implicit dimension (softmax) or a flattening default (roll): the loop
    new_args[0] = self._value
    return _wrap(fn(*new_args, **new_kwargs), level)


def _full_reduce(name: str, fn: Callable, level: int, args: tuple, kwargs: dict, n: int) -> Any:
    """A reduction over every logical dimension: over dimension 1 of the flattened value."""
    value = args[0]._value
    flat = value.reshape(value.shape[0], -1)
    keepdim = kwargs.get("keepdim", False)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("dim", "keepdim")}  # `dim=None` given
    rest = list(args[1:])
    if name == "norm":
        p = rest[0] if rest else kwargs.pop("p", "fro")
        out = fn(flat, 2 if p == "fro" else p, 1, **kwargs)
    elif name in ("max", "min", "median", "nanmedian"):
        out = fn(flat, 1, **kwargs).values
    else:
        out = fn(flat, *rest, dim=1, **kwargs)
    if keepdim:
        out = out.reshape(out.shape[0], *([1] * n))
    return BatchedTensor(out, level)


for _n in _DIM_ARGS:
    RULES[_n] = _with_dims


@_rule("max", "min")
def _max_min(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    other = args[1] if len(args) > 1 else kwargs.get("other")
    if isinstance(other, _tensor_type()):
        return _elementwise(name, fn, level, args, kwargs)
    return _with_dims(name, fn, level, args, kwargs)


def _sizes(rest: tuple) -> list:
    if len(rest) == 1 and isinstance(rest[0], (tuple, list)):
        return list(rest[0])
    return list(rest)


@_rule("gather", "scatter", "scatter_add", "scatter_", "scatter_add_")
def _gather_scatter(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    """``gather``/``scatter``: input, index (and source) expanded to the batch, the dimension shifted."""
    self = args[0]
    if kwargs or len(args) < 3:
        return NotImplemented
    n = _logical_dim(self, level)
    if n == 0 or name.endswith("_") and not _batched_at(self, level):
        return NotImplemented
    batch = _level_entry(level)[1]
    T = _tensor_type()
    rest = [_expanded(a, level, batch) if isinstance(a, T) else a for a in args[2:]]
    out = fn(_expanded(self, level, batch), _wrap_dim(args[1], n, name) + 1, *rest)
    return self if name.endswith("_") else BatchedTensor(out, level)


@_rule("transpose_", "t_", "squeeze_", "unsqueeze_", "swapaxes_", "swapdims_")
def _view_inplace(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    """In-place view ops: the batched tensor takes the view of its value."""
    self = args[0]
    if not _batched_at(self, level):
        return NotImplemented
    out = dispatch(name[:-1], _method_caller(name[:-1]), args, kwargs)
    self._value = out._value
    return self


@_rule("data_ptr", "element_size", "get_device", "is_contiguous", "is_floating_point", "is_complex", "is_inference",
       "is_pinned", "storage_offset", "is_signed", "new_empty", "new_full", "new_ones", "new_zeros", "new_tensor")
def _of_value(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    """Questions about the tensor, and ``new_*`` factories (their size is given): the value answers."""
    self = args[0]
    if not _batched_at(self, level) or has_batched(args[1:], kwargs):
        return NotImplemented
    return fn(self._value, *args[1:], **kwargs)


@_rule("type")
def _type(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    if len(args) == 1 and not kwargs:
        return fn(args[0]._value)
    return _elementwise(name, fn, level, args, kwargs)


@_rule("tril", "triu", "tril_", "triu_", "det", "logdet", "slogdet", "inverse", "matrix_power", "svd", "diag_embed",
       "pinverse", "cholesky", "matrix_exp", "qr", "inv", "cholesky_ex", "inv_ex", "eigh", "eigvalsh", "svdvals",
       "matrix_norm")
def _last_dims(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    """Ops on the last dimensions of a stack of matrices (or vectors for ``diag_embed``): the
    batch is one more leading dimension."""
    self = args[0]
    if not _batched_at(self, level) or has_batched(args[1:], kwargs):
        return NotImplemented
    n = self._value.dim() - 1
    if n < (1 if name == "diag_embed" else 2):
        return NotImplemented  # the op's own error, from the loop
    if name == "diag_embed" and (len(args) > 2 or "dim1" in kwargs or "dim2" in kwargs):
        return NotImplemented
    if name == "matrix_norm" and (len(args) > 2 or "dim" in kwargs):
        return NotImplemented
    out = fn(self._value, *args[1:], **kwargs)
    return self if name.endswith("_") else _wrap(out, level)


@_rule("trace")
def _trace(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    if len(args) != 1 or kwargs or _logical_dim(self, level) != 2:
        return NotImplemented
    return BatchedTensor(self._value.diagonal(0, 1, 2).sum(-1), level)


@_rule("diag")
def _diag(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    offset = args[1] if len(args) > 1 else kwargs.get("diagonal", 0)
    n = _logical_dim(self, level)
    if n == 1:
        return BatchedTensor(self._value.diag_embed(offset), level)
    if n == 2:
        return BatchedTensor(self._value.diagonal(offset, 1, 2), level)
    return NotImplemented


@_rule("outer", "ger")
def _outer(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    if len(args) != 2 or kwargs or _logical_dim(args[0], level) != 1 or _logical_dim(args[1], level) != 1:
        return NotImplemented
    return args[0].unsqueeze(-1) * args[1]


@_rule("fliplr", "flipud")
def _flip_lr_ud(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    n = _logical_dim(self, level)
    if not _batched_at(self, level) or n < (2 if name == "fliplr" else 1):
        return NotImplemented
    return BatchedTensor(self._value.flip(2 if name == "fliplr" else 1), level)


@_rule("tile")
def _tile(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    if not _batched_at(self, level) or kwargs:
        return NotImplemented
    reps = _sizes(args[1:])
    n = _logical_dim(self, level)
    reps = [1] * (n - len(reps)) + list(reps)
    return _repeat("repeat", fn, level, (self, *reps), {})


@_rule("addmm")
def _addmm(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    if len(args) != 3 or set(kwargs) - {"beta", "alpha"}:
        return NotImplemented
    beta, alpha = kwargs.get("beta", 1), kwargs.get("alpha", 1)
    product = dispatch("matmul", _method_caller("matmul"), (args[1], args[2]), {})
    if alpha != 1:
        product = product * alpha
    return product + (args[0] if beta == 1 else args[0] * beta)


@_rule("addmv", "addr", "baddbmm", "addmv_", "addr_", "baddbmm_")
def _add_product(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    """``beta * self + alpha * (product)``, the product through its own rule (a ``beta`` of 0
    leaves ``self`` out, NaNs included, as in PyTorch)."""
    if len(args) != 3 or set(kwargs) - {"beta", "alpha"}:
        return NotImplemented
    self, a, b = args
    beta, alpha = kwargs.get("beta", 1), kwargs.get("alpha", 1)
    base = name.rstrip("_")
    if base == "addr":
        product = dispatch("outer", _method_caller("outer"), (a, b), {})
    else:
        product = dispatch("matmul", _method_caller("matmul"), (a, b), {})
    if alpha != 1:
        product = product * alpha
    out = product if beta == 0 else product + (self if beta == 1 else self * beta)
    if name.endswith("_"):
        if not _batched_at(self, level):
            return NotImplemented
        self.copy_(out)
        return self
    return out


@_rule("einsum")
def _einsum(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    """``einsum``: a letter of its own for the batch, on the batched operands and the output."""
    if kwargs or not args or not isinstance(args[0], str):
        return NotImplemented
    equation = args[0].replace(" ", "")
    operands = list(args[1:])
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = list(operands[0])
    terms, _, output = equation.partition("->")
    inputs = terms.split(",")
    if len(inputs) != len(operands):
        return NotImplemented
    used = set(equation)
    letter = next((c for c in "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA" if c not in used), None)
    if letter is None:
        return NotImplemented
    if "->" not in equation:
        counts: dict[str, int] = {}
        for c in terms:
            if c.isalpha():
                counts[c] = counts.get(c, 0) + 1
        output = ("..." if "..." in terms else "") + "".join(sorted(c for c, k in counts.items() if k == 1))
    new_inputs = [letter + t if _batched_at(x, level) else t for t, x in zip(inputs, operands)]
    values = [_value_at(x, level) for x in operands]
    return BatchedTensor(fn(",".join(new_inputs) + "->" + letter + output, *values), level)


@_rule("pad")
def _pad(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    mode = args[2] if len(args) > 2 else kwargs.get("mode", "constant")
    pad = args[1] if len(args) > 1 else kwargs.get("pad")
    if mode != "constant" or not _batched_at(self, level) or has_batched(args[1:], kwargs) or pad is None:
        return NotImplemented
    if len(pad) // 2 > _logical_dim(self, level):
        return NotImplemented
    return BatchedTensor(fn(self._value, *args[1:], **kwargs), level)


@_rule("embedding")
def _embedding(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    indices = args[0]
    if not _batched_at(indices, level) or has_batched(args[1:], kwargs):
        return NotImplemented
    return BatchedTensor(fn(indices._value, *args[1:], **kwargs), level)


@_rule("bernoulli_", "cauchy_", "exponential_", "geometric_", "log_normal_", "normal_", "random_", "uniform_")
def _random_inplace(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    """In-place random fills: one draw per batch element (``'different'``) or one for all (``'same'``)."""
    self = args[0]
    if not _batched_at(self, level) or has_batched(args[1:], kwargs):
        return NotImplemented
    mode = check_randomness(name)
    value = self._value
    if mode == "same":
        one = value.select(0, 0).clone()
        fn(one, *args[1:], **kwargs)
        value.copy_(one)
    else:
        fn(value, *args[1:], **kwargs)
    return self


@_rule("register_hook", "register_post_accumulate_grad_hook", "retain_grad")
def _hooks(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    raise RuntimeError(
        f"vmap: {name}() is not supported inside vmap: the hook would see the whole batch. Register it on the "
        "tensor outside vmap, or use torch.func.grad / vjp inside."
    )


@_rule("view", "reshape")
def _reshape(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    if not _batched_at(self, level):
        return NotImplemented
    shape = _sizes(args[1:]) if len(args) > 1 else list(kwargs.get("shape", kwargs.get("size", ())))
    if len(args) > 1 and len(shape) == 1 and (shape[0] is None):
        return NotImplemented
    if any(not isinstance(s, int) for s in shape):
        return NotImplemented  # view(dtype)
    value = self._value
    return BatchedTensor(fn(value, value.shape[0], *shape), level)


@_rule("view_as", "reshape_as")
def _reshape_as(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self, other = args[0], args[1]
    if not _batched_at(self, level):
        return NotImplemented
    method = "view" if name == "view_as" else "reshape"
    return dispatch(method, _method_caller(method), (self, *tuple(other.shape)), {})


@_rule("flatten")
def _flatten(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    if not _batched_at(self, level):
        return NotImplemented
    n = self._value.dim() - 1
    start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
    end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
    value = self._value
    if n == 0:
        return BatchedTensor(value.reshape(value.shape[0], 1), level)
    return BatchedTensor(value.flatten(_wrap_dim(start, n, name) + 1, _wrap_dim(end, n, name) + 1), level)


@_rule("squeeze")
def _squeeze(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    if not _batched_at(self, level):
        return NotImplemented
    shape = list(self.shape)
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if dim is None:
        keep = [s for s in shape if s != 1]
        return BatchedTensor(self._value.reshape(self._value.shape[0], *keep), level)
    n = len(shape)
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    if n == 0:
        for d in dims:
            _wrap_dim(d, 0, name)
        return self
    drop = {_wrap_dim(d, n, name) for d in dims}
    keep = [s for i, s in enumerate(shape) if not (i in drop and s == 1)]
    return BatchedTensor(self._value.reshape(self._value.shape[0], *keep), level)


@_rule("permute")
def _permute(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    if not _batched_at(self, level):
        return NotImplemented
    dims = _sizes(args[1:]) if len(args) > 1 else list(kwargs["dims"])
    n = self._value.dim() - 1
    if len(dims) != n:
        return NotImplemented  # the op's own error, from the loop
    return BatchedTensor(self._value.permute(0, *(_wrap_dim(d, n, name) + 1 for d in dims)), level)


@_rule("t")
def _t(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    if not _batched_at(self, level):
        return NotImplemented
    n = self._value.dim() - 1
    if n < 2:
        return self
    if n > 2:
        return NotImplemented
    return BatchedTensor(self._value.transpose(1, 2), level)


@_rule("expand")
def _expand(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    if not _batched_at(self, level):
        return NotImplemented
    sizes = _sizes(args[1:]) if len(args) > 1 else list(kwargs["size"])
    value = self._value
    n = value.dim() - 1
    if len(sizes) < n:
        return NotImplemented
    for _ in range(len(sizes) - n):
        value = value.unsqueeze(1)
    return BatchedTensor(value.expand(value.shape[0], *sizes), level)


@_rule("expand_as")
def _expand_as(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self, other = args[0], args[1]
    if not _batched_at(self, level):
        if _batched_at(other, level):
            return BatchedTensor(self.expand(other._value.shape), level)
        return NotImplemented
    return _expand("expand", fn, level, (self, *tuple(other.shape)), {})


@_rule("repeat")
def _repeat(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    if not _batched_at(self, level):
        return NotImplemented
    reps = _sizes(args[1:])
    value = self._value
    n = value.dim() - 1
    if len(reps) < n:
        return NotImplemented
    for _ in range(len(reps) - n):
        value = value.unsqueeze(1)
    return BatchedTensor(value.repeat(1, *reps), level)


def _index_tuple(index: Any) -> tuple | None:
    """``index`` as a tuple, or None when its advanced indices are not all next to each other
    or one of them is batched (then the loop runs)."""
    T = _tensor_type()
    items = index if isinstance(index, tuple) else (index,)
    advanced = [i for i, x in enumerate(items) if isinstance(x, (T, list))]
    if any(_is_batched(x) for x in items):
        return None
    if advanced and advanced[-1] - advanced[0] + 1 != len(advanced):
        return None
    return items


@_rule("__getitem__")
def _getitem(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self, index = args
    items = _index_tuple(index)
    if items is None or not _batched_at(self, level):
        return NotImplemented
    return BatchedTensor(self._value[(slice(None), *items)], level)


@_rule("__setitem__")
def _setitem(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self, index, value = args
    items = _index_tuple(index)
    if not _batched_at(self, level):
        raise RuntimeError(
            "vmap: index_put_(self, *extra_args) is not possible because there exists a Tensor `other` in "
            "extra_args that has more elements than `self`. This happened due to `other` being vmapped over but "
            "`self` not being vmapped over in a vmap. Please try to use out-of-place operators instead of "
            "index_put_."
        )
    if items is None:
        return NotImplemented
    region = self._value[(slice(None), *items)]
    if _batched_at(value, level):
        v = value._value
        for _ in range(region.dim() - v.dim()):
            v = v.unsqueeze(1)
        value = v
    region_index = (slice(None), *items)
    self._value[region_index] = value
    return None


def _as_matrix_operands(level: int, a: Any, b: Any) -> tuple[Any, Any, bool, bool]:
    """The values of ``a @ b``'s operands with 1-d operands made matrices (a row, a column)."""
    va, vb = _value_at(a, level), _value_at(b, level)
    a_vec = _logical_dim(a, level) == 1
    b_vec = _logical_dim(b, level) == 1
    if a_vec:
        va = va.unsqueeze(-2)
    if b_vec:
        vb = vb.unsqueeze(-1)
    # batched operands get ones after the batch dimension so their matrix dims line up
    nd = max(_logical_dim(a, level) + a_vec, _logical_dim(b, level) + b_vec)
    if _batched_at(a, level):
        for _ in range(nd - (va.dim() - 1)):
            va = va.unsqueeze(1)
    if _batched_at(b, level):
        for _ in range(nd - (vb.dim() - 1)):
            vb = vb.unsqueeze(1)
    return va, vb, a_vec, b_vec


@_rule("matmul", "__matmul__", "mm", "bmm", "mv", "dot", "__rmatmul__")
def _matmul(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    if len(args) != 2 or kwargs:
        return NotImplemented
    a, b = args if name != "__rmatmul__" else (args[1], args[0])
    da, db = _logical_dim(a, level), _logical_dim(b, level)
    expected = {"mm": (2, 2), "bmm": (3, 3), "mv": (2, 1), "dot": (1, 1)}.get(name)
    if expected is not None and (da, db) != expected:
        return NotImplemented  # the op's own error, from the loop
    if da == 0 or db == 0:
        return NotImplemented
    va, vb, a_vec, b_vec = _as_matrix_operands(level, a, b)
    out = va.matmul(vb)
    if b_vec:
        out = out.squeeze(-1)
    if a_vec:
        out = out.squeeze(-1 if b_vec else -2)
    return BatchedTensor(out, level)


@_rule("linear")
def _linear(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    x = args[0]
    weight = args[1] if len(args) > 1 else kwargs.get("weight")
    bias = args[2] if len(args) > 2 else kwargs.get("bias")
    if weight is None:
        return NotImplemented
    out = dispatch("matmul", _method_caller("matmul"), (x, weight.t() if weight.dim() == 2 else weight), {})
    if bias is not None:
        out = out + bias
    return out


@_rule("stack", "cat", "concat", "concatenate", "hstack", "vstack")
def _cat(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    import rustgrad

    tensors = args[0] if args else kwargs.get("tensors")
    if name in ("hstack", "vstack") or not isinstance(tensors, (list, tuple)) or not tensors:
        return NotImplemented
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    batch = _level_entry(level)[1]
    n = max(_logical_dim(t, level) for t in tensors)
    values = []
    for t in tensors:
        v = _value_at(t, level)
        if not _batched_at(t, level):
            v = v.unsqueeze(0).expand(batch, *tuple(v.shape))
        values.append(v)
    d = _wrap_dim(dim, n + 1 if name == "stack" else n, name) + 1 if n or name == "stack" else dim
    op = rustgrad.stack if name == "stack" else rustgrad.cat
    return BatchedTensor(op(values, d), level)


def _fold_batch(name: str, fn: Callable, level: int, args: tuple, kwargs: dict, spatial: int) -> Any:
    """Ops of batched images (conv, pooling) with an unbatched weight: the vmap batch joined
    with the image batch (``N``) for one call."""
    x = args[0]
    if name.startswith("conv") and not kwargs and len(args) == 7 and (_batched_at(args[1], level) or _batched_at(args[2], level)):
        return _conv_batched_weight(fn, level, args, spatial)
    if not _batched_at(x, level) or any(_batched_at(a, level) for a in args[1:]) or any(
        _batched_at(v, level) for v in kwargs.values()
    ):
        return NotImplemented
    value = x._value
    n = value.dim() - 1
    if n == spatial + 1:  # an unbatched image: the vmap batch is its batch
        return BatchedTensor(fn(value, *args[1:], **kwargs), level)
    if n != spatial + 2:
        return NotImplemented
    b, m = value.shape[0], value.shape[1]
    out = fn(value.reshape(b * m, *tuple(value.shape)[2:]), *args[1:], **kwargs)

    def unfold(o: Any) -> Any:
        return o.reshape(b, m, *tuple(o.shape)[1:])

    if isinstance(out, tuple):
        return type(out)(BatchedTensor(unfold(o), level) for o in out)
    return BatchedTensor(unfold(out), level)


def _conv_batched_weight(fn: Callable, level: int, args: tuple, spatial: int) -> Any:
    """A convolution with a weight per batch element (``vmap`` over a model's parameters, or
    per-sample gradients): one grouped convolution, the batch folded into the channels."""
    x, weight, bias, stride, padding, dilation, groups = args
    batch = _level_entry(level)[1]
    n = _logical_dim(x, level)
    if n not in (spatial + 1, spatial + 2) or _logical_dim(weight, level) != spatial + 2:
        return NotImplemented
    xv = _expanded(x, level, batch)
    if n == spatial + 1:  # an unbatched image: one image of B*C channels
        xv = xv.unsqueeze(1)
    images = xv.shape[1]
    folded = xv.movedim(0, 1).reshape(images, batch * xv.shape[2], *tuple(xv.shape)[3:])
    wv = _expanded(weight, level, batch)
    out_channels = wv.shape[1]
    w_folded = wv.reshape(batch * out_channels, *tuple(wv.shape)[2:])
    b_folded = None if bias is None else _expanded(bias, level, batch).reshape(batch * out_channels)
    out = fn(folded, w_folded, b_folded, stride, padding, dilation, groups * batch)
    out = out.reshape(images, batch, out_channels, *tuple(out.shape)[2:]).movedim(1, 0)
    if n == spatial + 1:
        out = out.squeeze(1)
    return BatchedTensor(out, level)


for _spatial, _names in ((1, "conv1d max_pool1d avg_pool1d adaptive_avg_pool1d adaptive_max_pool1d"),
                         (2, "conv2d max_pool2d avg_pool2d adaptive_avg_pool2d adaptive_max_pool2d"),
                         (3, "conv3d max_pool3d avg_pool3d adaptive_avg_pool3d adaptive_max_pool3d")):  # fmt: skip
    for _n in _names.split():
        RULES[_n] = lambda name, fn, level, args, kwargs, _s=_spatial: _fold_batch(name, fn, level, args, kwargs, _s)


@_rule("layer_norm")
def _layer_norm(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    x = args[0]
    if not _batched_at(x, level) or any(_batched_at(a, level) for a in args[1:]) or any(
        _batched_at(v, level) for v in kwargs.values()
    ):
        return NotImplemented
    return BatchedTensor(fn(x._value, *args[1:], **kwargs), level)


def _reduce_losses(loss: Any, reduction: str) -> Any:
    """A batched element-wise loss reduced over its logical dimensions."""
    value = loss._value
    if reduction == "none":
        return loss
    flat = value.reshape(value.shape[0], -1)
    return BatchedTensor(flat.mean(1) if reduction == "mean" else flat.sum(1), loss._level)


_ELEMENTWISE_LOSSES = {
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy_with_logits", "soft_margin_loss",
    "binary_cross_entropy",
}  # fmt: skip


@_rule(*_ELEMENTWISE_LOSSES)
def _elementwise_loss(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    import inspect

    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return NotImplemented
    bound.apply_defaults()
    params = dict(bound.arguments)
    if params.get("size_average") is not None or params.get("reduce") is not None:
        return NotImplemented
    reduction = params.get("reduction", "mean")
    params["reduction"] = "none"
    input_, target = params.pop("input"), params.pop("target")
    if _logical_dim(input_, level) != _logical_dim(target, level):
        return NotImplemented  # broadcasting warnings and errors, from the loop
    extra = [k for k, v in params.items() if _batched_at(v, level)]
    if extra:
        return NotImplemented
    batch = _level_entry(level)[1]
    a, b = (_expanded(x, level, batch) for x in (input_, target))
    return _reduce_losses(BatchedTensor(fn(a, b, **params), level), reduction)


@_rule("cross_entropy", "nll_loss")
def _class_loss(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    import inspect

    import rustgrad

    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return NotImplemented
    bound.apply_defaults()
    params = dict(bound.arguments)
    if params.get("size_average") is not None or params.get("reduce") is not None:
        return NotImplemented
    input_, target = params.pop("input"), params.pop("target")
    weight = params.get("weight")
    if _batched_at(weight, level) or not _batched_at(input_, level) and not _batched_at(target, level):
        return NotImplemented
    n_in, n_t = _logical_dim(input_, level), _logical_dim(target, level)
    if target.dtype.is_floating_point or (n_in, n_t) not in ((2, 1), (1, 0)):
        return NotImplemented  # class probabilities, or extra dimensions: the loop
    batch = _level_entry(level)[1]
    vi = _value_at(input_, level)
    vt = _value_at(target, level)
    if not _batched_at(input_, level):
        vi = vi.unsqueeze(0).expand(batch, *tuple(vi.shape))
    if not _batched_at(target, level):
        vt = vt.unsqueeze(0).expand(batch, *tuple(vt.shape))
    classes = vi.shape[-1]
    rows = vi.reshape(-1, classes)
    labels = vt.reshape(-1)
    reduction = params.pop("reduction", "mean")
    params["reduction"] = "none"
    losses = fn(rows, labels, **params).reshape(batch, -1)
    if reduction == "none":
        return BatchedTensor(losses.reshape(tuple(vt.shape)), level)
    if reduction == "sum":
        return BatchedTensor(losses.sum(1), level)
    ignore = params.get("ignore_index", -100)
    keep = (labels != ignore).to(rows.dtype)
    if weight is not None:
        keep = keep * weight[labels.clamp(0, classes - 1)]
    denominators = keep.reshape(batch, -1).sum(1)
    del rustgrad
    return BatchedTensor(losses.sum(1) / denominators, level)


@_rule("zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "randint_like")
def _like(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    if not _batched_at(self, level):
        return NotImplemented
    if name in ("rand_like", "randn_like", "randint_like"):
        mode = check_randomness(name)
        if mode == "same":
            return BatchedTensor(fn(self._value.select(0, 0), *args[1:], **kwargs).expand(self._value.shape), level)
    return BatchedTensor(fn(self._value, *args[1:], **kwargs), level)


@_rule("dropout", "alpha_dropout", "feature_alpha_dropout", "dropout1d", "dropout2d", "dropout3d", "bernoulli")
def _random_on_input(name: str, fn: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    self = args[0]
    training = args[2] if len(args) > 2 else kwargs.get("training", True)
    if not _batched_at(self, level) or any(_batched_at(a, level) for a in args[1:]):
        return NotImplemented
    if name != "bernoulli" and not training:
        return BatchedTensor(fn(self._value, *args[1:], **kwargs), level)
    mode = check_randomness(name)
    if name in ("dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout"):
        return NotImplemented  # one mask per channel: the loop (a draw per element)
    if mode == "same":
        value = self._value
        if name == "bernoulli":
            return NotImplemented
        ones = value.new_ones(tuple(value.shape)[1:])
        mask = fn(ones, *args[1:], **kwargs)
        return BatchedTensor(value * mask, level)
    return BatchedTensor(fn(self._value, *args[1:], **kwargs), level)


def check_randomness(name: str) -> str:
    """The innermost ``vmap``'s randomness for a random op ``name`` (``'error'`` raises)."""
    levels = active_levels()
    mode = levels[-1][2] if levels else "same"
    if mode == "error":
        raise RuntimeError(
            "vmap: called random operation while in randomness error mode. Please either use the 'same' or "
            "'different' randomness flags on vmap or perform the randomness operation out of vmap"
        )
    return mode


# ----- lists for the README and the tests -----


def methods_without_rule() -> list[str]:
    """The ``Tensor`` methods that loop over the batch inside ``vmap`` (no batching rule)."""
    tensor = _tensor_type()
    own = set(BatchedTensor.__dict__) - set(_generated)
    names = [n for n in dir(tensor) if not n.startswith("_") and callable(getattr(tensor, n, None))]
    return sorted(n for n in names if n not in RULES and n not in own)


# ----- functions of torch and torch.nn.functional -----


def vmap_active() -> bool:
    """Whether a ``vmap`` is running on this thread, outside a batching rule: random functions
    then follow its ``randomness``."""
    levels: list | None = _state.__dict__.get("levels")
    return bool(levels) and levels is not None and levels[-1][3] == 0


def call(name: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` for a function ``name`` that found a batched operand: its rule, or
    the loop. ``fn`` checks its operands itself (so it is never called with batched ones here)."""
    return dispatch(name, fn, args, kwargs)


def call_method_op(name: str, args: tuple, kwargs: dict) -> Any:
    """``torch.<name>(input, ...)`` (the method of ``input``) where ``input`` is unbatched and a
    later operand is batched: the method's rule at that operand's level."""
    return dispatch(name, _method_caller(name), args, kwargs)


def random_call(name: str, fn: Callable, args: tuple, kwargs: dict) -> Any:
    """A random function called inside ``vmap``: refused with ``randomness='error'``, one draw
    for the batch with ``'same'``, one per element with ``'different'`` (a batched tensor)."""
    import rustgrad

    mode = check_randomness(name)
    if has_batched(args, kwargs):
        return dispatch(name, fn, args, kwargs)  # one draw per element: the loop
    innermost = active_levels()[-1]
    level, batch = innermost[:2]
    innermost[3] += 1
    try:
        if mode == "same":
            return fn(*args, **kwargs)
        if name in ("rand", "randn"):
            rest = dict(kwargs)
            size = rustgrad._parse_size(name, args, rest)
            return BatchedTensor(fn(batch, *size, **rest), level)
        return BatchedTensor(rustgrad.stack([fn(*args, **kwargs) for _ in range(batch)]), level)
    finally:
        innermost[3] -= 1


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Gives ``BatchedTensor`` its methods (once, at the first ``vmap``)."""
    global _installed
    with _install_lock:
        if not _installed:
            _install_methods()
            _installed = True


# ----- the physical tensors under batched ones (for grad, vjp and jvp inside vmap) -----


def unwrap(x: Any) -> tuple[Any, list[int]]:
    """The physical tensor under ``x`` and the levels of its batch dimensions, outermost first."""
    levels = []
    while type(x) is BatchedTensor:
        levels.append(x._level)
        x = x._value
    levels.reverse()
    return x, levels


def unwrap_level(x: Any) -> Any:
    """The value of a batched tensor: its batch dimension first."""
    return x._value


def rewrap(physical: Any, levels: list[int]) -> Any:
    """``physical`` seen through batched tensors of ``levels`` (outermost first)."""
    for level in levels:
        physical = BatchedTensor(physical, level)
    return physical


def expand_levels(physical: Any, have: list[int], want: list[int]) -> Any:
    """``physical`` (batched at ``have``) with the batch dimensions of ``want`` it lacks added
    as expanded dimensions, in level order."""
    missing = [lv for lv in have if lv not in want]
    if missing:
        raise RuntimeError("vmap: a tensor is batched at a level its output is not batched at")
    sizes = {e[0]: e[1] for e in active_levels()}
    for i, level in enumerate(want):
        if level not in have:
            physical = physical.unsqueeze(i)
            shape = list(physical.shape)
            shape[i] = sizes[level]
            physical = physical.expand(*shape)
    return physical


def track_levels(t: Any) -> tuple[Any, list[int]]:
    """The physical tensor of ``t`` batched at every active level, and those levels: what a
    transform inside ``vmap`` differentiates, so each batch element gets its own gradient."""
    physical, have = unwrap(t)
    want = [e[0] for e in active_levels()]
    if any(lv not in want for lv in have):
        _level_entry(next(lv for lv in have if lv not in want))
    return expand_levels(physical, have, want), want


def physical_grads(outputs: list, inputs: list, cotangents: list | None, create_graph: bool) -> list:
    """``autograd.grad`` of batched ``outputs`` with respect to batched ``inputs`` (each batched
    at the active levels), on their physical tensors: one backward for the whole batch. Missing
    gradients are None."""
    import rustgrad

    outs, out_levels = zip(*(unwrap(o) for o in outputs))
    ins = [unwrap(x) for x in inputs]
    lacking = [lv for levels in out_levels for lv in levels if any(lv not in have for _, have in ins)]
    if lacking:
        # an input not batched where an output is: each batch element's output has its own
        # gradient, which the physical graph has summed; one backward per element instead
        return _grads_per_element(outputs, inputs, cotangents, create_graph, max(lacking))
    grads_out: list[Any] = []
    for o, lv, c in zip(outs, out_levels, cotangents or [None] * len(outs)):
        if c is None:
            grads_out.append(rustgrad.ones_like(o) if lv else None)
            continue
        c_phys, c_levels = unwrap(c)
        if any(x not in lv for x in c_levels):
            return _grads_per_cotangent(outputs, inputs, list(cotangents or ()), create_graph)
        grads_out.append(expand_levels(c_phys, c_levels, lv))
    found = rustgrad.autograd.grad(
        list(outs),
        [p for p, _ in ins],
        grads_out if any(g is not None for g in grads_out) else None,
        retain_graph=True,
        create_graph=create_graph,
        allow_unused=True,
    )
    return [None if g is None else rewrap(g, lv) for g, (_, lv) in zip(found, ins)]


def _grads_per_element(outputs: list, inputs: list, cotangents: list | None, create_graph: bool, level: int) -> list:
    batch = _level_entry(level)[1]

    def one(outs: list, cts: list | None) -> list:
        return physical_grads(outs, inputs, cts, create_graph)

    found = _loop("grad", one, level, batch, (list(outputs), None if cotangents is None else list(cotangents)), {})
    return list(found)


def _grads_per_cotangent(outputs: list, inputs: list, cotangents: list, create_graph: bool) -> list:
    """Cotangents batched where their outputs are not (``vmap(vjp_fn)``): one backward per
    batch element of the highest such level."""
    level = max(unwrap(c)[1][-1] for c in cotangents if type(c) is BatchedTensor)
    batch = _level_entry(level)[1]

    def one(cts: list) -> list:
        grads = physical_grads(outputs, inputs, cts, create_graph)
        return [rustgrad_zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]

    return _loop("vjp", one, level, batch, (list(cotangents),), {})


def rustgrad_zeros_like(x: Any) -> Any:
    """Zeros shaped like ``x`` (batched like it)."""
    physical, levels = unwrap(x)
    return rewrap(physical.new_zeros(tuple(physical.shape)), levels)
