"""``Optimizer``: parameter groups, per-parameter state, step hooks, and PyTorch's state-dict format."""

from __future__ import annotations

import functools
import struct
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from copy import deepcopy
from itertools import chain
from typing import Any, ClassVar

import rustgrad
from rustgrad import Tensor
from rustgrad._pyutils import RemovableHandle
from rustgrad._pyutils import typename as _typename

__all__ = ["Optimizer"]


def _check_hyperparameters(lr: Any, *checks: tuple) -> None:
    """PyTorch's argument checks of an optimizer, in its order: ``lr`` (a number or a one-element
    tensor, not negative), then each ``(label, value)`` not negative, or ``(label, value, upper,
    inclusive)`` also below ``upper`` (at most ``upper`` when ``inclusive``). The message is
    ``Invalid {label}: {value}``."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    for check in checks:
        label, value = check[0], check[1]
        ok = 0.0 <= value
        if ok and len(check) > 2:
            upper, inclusive = check[2], check[3]
            ok = value <= upper if inclusive else value < upper
        if not ok:
            raise ValueError(f"Invalid {label}: {value}")


class _RequiredParameter:
    """Marks a default that every parameter group must set (``lr`` for optimizers without a default)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _use_grad_for_differentiable(step: Callable) -> Callable:
    """Runs ``step`` with gradients recorded only when the optimizer is ``differentiable``."""

    @functools.wraps(step)
    def _use_grad(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
        with rustgrad.set_grad_enabled(self.defaults["differentiable"]):
            return step(self, *args, **kwargs)

    return _use_grad


def _get_value(x: Any) -> Any:
    """A Python number from a number or a one-element tensor (``lr`` and ``step`` may be either)."""
    return x.item() if isinstance(x, Tensor) else x


def _as_dtype(x: float, dtype: Any) -> float:
    """``x`` rounded to ``dtype`` (float32 when the tensor is float32), as a kernel sees a Python scalar."""
    if dtype == rustgrad.float32:
        return struct.unpack("f", struct.pack("f", x))[0]
    return x


def _lerp_(start: Tensor, end: Tensor, weight: float) -> Tensor:
    """``start.lerp_(end, weight)`` rounded as PyTorch's CPU kernel: one fused multiply-add,
    ``start + w (end - start)`` for ``|w| < 0.5`` and ``end + (w - 1) (end - start)`` otherwise."""
    w = _as_dtype(weight, start.dtype)
    diff = end - start
    if abs(w) < 0.5:
        return start.add_(diff, alpha=w)
    return start.copy_(end.add(diff, alpha=w - 1))


def _addcmul_(x: Tensor, t1: Tensor, t2: Tensor, value: float = 1.0) -> Tensor:
    """``x.addcmul_(t1, t2, value=value)`` rounded as PyTorch's CPU kernel, ``fma(value * t1, t2, x)``.

    For float32 the fused multiply-add is computed in float64 (the product is exact there, the sum
    rounds once more before the final rounding to float32: identical except on exact float32 ties);
    for float64 by error-free transformations (``_fma64``).
    """
    scaled = t1 if value == 1 else t1 * value
    if x.dtype == rustgrad.float32:
        # float32 products are exact in float64, so the float64 addcmul rounds only the sum; copy_
        # rounds that to float32.
        return x.copy_(x.double().addcmul_(scaled.double(), t2.double()))
    if x.dtype == rustgrad.float64:
        return x.copy_(_fma64(scaled, t2, x))
    return x.add_(scaled * t2)


def _split64(a: Tensor) -> tuple[Tensor, Tensor]:
    """Veltkamp's split: ``a = hi + lo`` exactly, each half with at most 26 significant bits."""
    gamma = a * 134217729.0  # 2**27 + 1
    hi = gamma - (gamma - a)
    return hi, a - hi


def _fma64(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """``a * b + c`` for float64 with one rounding (error-free transformations: Dekker's exact product
    ``a * b = p + e``, then Knuth's exact sum ``p + c = s + t``; the result ``s + (t + e)`` is the correctly
    rounded value except on near-ties far below any optimizer's sensitivity)."""
    a_hi, a_lo = _split64(a)
    b_hi, b_lo = _split64(b)
    p = a * b
    e = (((a_hi * b_hi) - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    s = p + c
    bb = s - p
    t = (p - (s - bb)) + (c - bb)
    return s + (t + e)


def _step_tensor() -> Tensor:
    """A fresh ``step`` counter: PyTorch keeps it as a float32 0-d tensor (non-capturable path)."""
    return rustgrad.tensor(0.0, dtype=rustgrad.float32)


class Optimizer:
    """Base class: holds ``param_groups`` (dicts with ``'params'`` and hyperparameters) and ``state``.

    Args: ``params`` (an iterable of tensors, of ``(name, tensor)`` pairs, or of group dicts) and
    ``defaults`` (the hyperparameters a group does not set).
    https://pytorch.org/docs/stable/optim.html#torch.optim.Optimizer
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        self._patch_step_function()
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, but got "
                + _typename(params)
            )
        elif isinstance(params, set):
            warnings.warn(
                "optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs. Please use a "
                "list instead. This will be an error in a future release.",
                FutureWarning,
                stacklevel=2,
            )
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def _param_state(self, param: Tensor, init: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``self.state[param]``, filled from ``init()`` on the parameter's first step."""
        state = self.state[param]
        if len(state) == 0:
            state.update(init())
        return state

    def _steps_as_tensors(self, *keys: str) -> None:
        """After loading an old state dict: numeric ``step`` (and ``keys``) become float32 tensors."""
        for group in self.param_groups:
            for p in group["params"]:
                p_state = self.state.get(p, {})
                for key in ("step", *keys):
                    if key in p_state and not isinstance(p_state[key], Tensor):
                        p_state[key] = rustgrad.tensor(float(p_state[key]), dtype=rustgrad.float32)

    # What unpickling an optimizer of an older PyTorch fills in: each subclass's group options
    # that older versions lacked, and (when not None) the per-parameter state entries that
    # become tensors besides ``step``.
    _GROUP_DEFAULTS: ClassVar[dict[str, Any]] = {}
    _TENSOR_STATE_KEYS: ClassVar[tuple[str, ...] | None] = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_optimizer_step_pre_hooks", OrderedDict())
        self.__dict__.setdefault("_optimizer_step_post_hooks", OrderedDict())
        self._patch_step_function()
        self.defaults.setdefault("differentiable", False)
        for group in self.param_groups:
            for key, value in self._GROUP_DEFAULTS.items():
                group.setdefault(key, value)
        if self._TENSOR_STATE_KEYS is not None:
            self._steps_as_tensors(*self._TENSOR_STATE_KEYS)

    def __repr__(self) -> str:
        format_string = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            format_string += "\n"
            format_string += f"Parameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    format_string += f"    {key}: {group[key]}\n"
        format_string += ")"
        return format_string

    # ----- step hooks -----

    @staticmethod
    def _hook_step(step: Callable) -> Callable:
        """Wraps a subclass's ``step`` so that it runs the registered pre- and post-hooks around it."""

        @functools.wraps(step)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self = args[0]
            for pre_hook in self._optimizer_step_pre_hooks.values():
                result = pre_hook(self, args, kwargs)
                if result is not None:
                    if isinstance(result, tuple) and len(result) == 2:
                        args, kwargs = result
                    else:
                        raise RuntimeError(
                            f"{step} must return None or a tuple of (new_args, new_kwargs), but got {result}."
                        )
            out = step(*args, **kwargs)
            for post_hook in self._optimizer_step_post_hooks.values():
                post_hook(self, args, kwargs)
            return out

        wrapper.hooked = True  # type: ignore[attr-defined]
        return wrapper

    def _patch_step_function(self) -> None:
        if not getattr(self.__class__.step, "hooked", False):
            self.__class__.step = self._hook_step(self.__class__.step)  # type: ignore[method-assign]

    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """Runs ``hook(optimizer, args, kwargs)`` before each ``step``; it may return new ``(args, kwargs)``."""
        handle = RemovableHandle(self._optimizer_step_pre_hooks)
        self._optimizer_step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """Runs ``hook(optimizer, args, kwargs)`` after each ``step``."""
        handle = RemovableHandle(self._optimizer_step_post_hooks)
        self._optimizer_step_post_hooks[handle.id] = hook
        return handle

    # ----- state dict -----

    def state_dict(self) -> dict[str, Any]:
        """``{'state': {i: {...}}, 'param_groups': [{..., 'params': [i, ...]}]}``, params in order."""
        param_mappings: dict[int, int] = {}
        start_index = 0

        def pack_group(group: dict[str, Any]) -> dict[str, Any]:
            nonlocal start_index
            packed = {k: v for k, v in group.items() if k != "params"}
            param_mappings.update(
                {id(p): i for i, p in enumerate(group["params"], start_index) if id(p) not in param_mappings}
            )
            packed["params"] = [param_mappings[id(p)] for p in group["params"]]
            start_index += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {
            (param_mappings[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()
        }
        return {"state": packed_state, "param_groups": param_groups}

    @staticmethod
    def _cast_state_value(param: Tensor, value: Any, key: str | None = None) -> Any:
        """Casts loaded state to the parameter's dtype (``step`` stays as saved), inside containers too."""
        if isinstance(value, Tensor):
            if key == "step" or not param.is_floating_point():
                return value
            return value.to(param.dtype)
        elif isinstance(value, dict):
            return {k: Optimizer._cast_state_value(param, v, key=k) for k, v in value.items()}
        elif isinstance(value, Iterable) and not isinstance(value, str):
            return type(value)(Optimizer._cast_state_value(param, v) for v in value)  # type: ignore[call-arg]
        return value

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Loads a ``state_dict()`` (PyTorch's or ours): hyperparameters and per-parameter state, matched
        to this optimizer's parameters by position; floating state is cast to each parameter's dtype."""
        state_dict = state_dict.copy()
        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group "
                "that doesn't match the size of optimizer's group"
            )
        id_map = dict(
            zip(
                chain.from_iterable(g["params"] for g in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
            )
        )
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = self._cast_state_value(param, v)
            else:
                state[k] = v

        def update_group(group: dict[str, Any], new_group: dict[str, Any]) -> dict[str, Any]:
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            return new_group

        param_groups = [update_group(g, ng) for g, ng in zip(groups, saved_groups)]
        self.__setstate__({"state": state, "param_groups": param_groups})

    # ----- parameters -----

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears every parameter's ``.grad``: sets it to None (default) or fills it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        if p.grad.grad_fn is not None:
                            p.grad.detach_()
                        else:
                            p.grad.requires_grad_(False)
                        p.grad.zero_()

    @staticmethod
    def _loss_of(closure: Callable[[], Any] | None) -> Any:
        """The loss the closure returns (evaluated with grad enabled), or None without one."""
        if closure is None:
            return None
        with rustgrad.enable_grad():
            return closure()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One optimization step (subclasses); ``closure`` re-evaluates the loss and returns it."""
        raise NotImplementedError

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Adds a group of parameters, filling in unset hyperparameters from ``defaults``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            param_group["params"] = list(params)

        tensors: list = []
        names: list = []
        for param in param_group["params"]:
            if isinstance(param, tuple):
                names.append(param[0])
                tensors.append(param[1])
            else:
                tensors.append(param)
        param_group["params"] = tensors
        if names:
            if len(names) == len(tensors):
                param_group["param_names"] = names
            else:
                raise ValueError(
                    "all optimizer params should be with/without names. Some param names are missing"
                )

        for param in param_group["params"]:
            if not isinstance(param, Tensor):
                raise TypeError(
                    "optimizer can only optimize Tensors, but one of the params is " + _typename(param)
                )
            if not self.defaults.get("differentiable", None) and not (param.is_leaf or param.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization parameter {name}"
                )
            param_group.setdefault(name, default)

        params = param_group["params"]
        if len(params) != len(set(params)):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; "
                "in future, this will cause an error; "
                "see github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )
        param_set: set = set()
        for group in self.param_groups:
            param_set.update(set(group["params"]))
            if ("param_names" in param_group) != ("param_names" in group):
                current_group_txt = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {current_group_txt} to the optimizer"
                )
        if not param_set.isdisjoint(set(param_group["params"])):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)
