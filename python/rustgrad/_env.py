"""Global environment functions of the ``torch`` namespace: the default device, thread counts,
``torch.compile`` and small predicates (``is_storage``, ``is_nonzero``, ``is_complex``).
Re-exported by ``rustgrad/__init__.py``."""

from __future__ import annotations

import os
from typing import Any, Callable

from rustgrad import _glue, _rustgrad
from rustgrad._args import check_tensor, type_name
from rustgrad._rustgrad import Tensor

__all__ = [
    "compile",
    "get_default_device",
    "get_device_module",
    "get_num_interop_threads",
    "get_num_threads",
    "is_complex",
    "is_nonzero",
    "is_storage",
    "set_default_device",
    "set_num_interop_threads",
    "set_num_threads",
]


# ----- default device -----


def set_default_device(device: Any) -> None:
    """Sets the device the factories (``zeros``, ``tensor``, ``randn``...) create tensors on.

    ``'cpu'`` (or None) is the only device tensors can live on here; any other valid device is
    accepted, as PyTorch accepts it, and the next factory call raises PyTorch's error for it
    (``AssertionError: Torch not compiled with CUDA enabled`` for CUDA).
    https://pytorch.org/docs/stable/generated/torch.set_default_device.html
    """
    if device is None:
        _glue._default_device = None
        return
    d = device if isinstance(device, _glue.device) else _glue.device(device)
    _glue._default_device = None if d.type == "cpu" else d


def get_default_device() -> _glue.device:
    """The device the factories create tensors on (``device(type='cpu')`` unless
    :func:`set_default_device` chose another; one without an index raises as creating a tensor there
    would, as in PyTorch). https://pytorch.org/docs/stable/generated/torch.get_default_device.html"""
    d = _glue._default_device
    if d is None:
        return _glue.CPU
    if d.index is None and d.type != "meta":
        raise _glue.unavailable_device_error(d)
    return d


def get_device_module(device: Any = None) -> Any:
    """The module of a device type (``torch.cuda`` for ``'cuda'``, ``torch.cpu`` for None here: no
    accelerator). https://pytorch.org/docs/stable/generated/torch.get_device_module.html"""
    import rustgrad

    if isinstance(device, _glue.device):
        name = device.type
    elif isinstance(device, str):
        name = _glue.device(device).type
    elif device is None:
        name = "cpu"
    else:
        raise RuntimeError(f"Invalid value of device '{device}', expect torch.device, str, or None")
    module = getattr(rustgrad, name, None)
    if module is None:
        raise RuntimeError(f"Device '{name}' does not have a corresponding module registered as 'torch.{name}'.")
    return module


# ----- threads -----


def _default_threads() -> int:
    """Rayon's default pool size (the Rust kernels' thread pool): ``RAYON_NUM_THREADS`` or the CPUs
    this process may run on."""
    env = os.environ.get("RAYON_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_threads = {"intra": _default_threads(), "interop": _default_threads()}


def _thread_count(fn: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise RuntimeError(f"{fn} expects an int, but got {type_name(n)}")  # noqa: TRY004 (the exception type is PyTorch's)
    if not -(2**63) <= n < 2**63:
        raise ValueError("Overflow when unpacking long")
    if n <= 0:
        raise RuntimeError(f"{fn} expects a positive integer")
    return n


def get_num_threads() -> int:
    """The number of threads used for intra-op parallelism (the Rust kernels' rayon pool, or the
    last value given to :func:`set_num_threads`). https://pytorch.org/docs/stable/generated/torch.get_num_threads.html"""
    return _rustgrad._get_num_threads()


def set_num_threads(int: Any) -> None:
    """Sets the number of intra-op threads, checked as PyTorch does. The Rust kernels follow it where
    it decides results (how a large sum is split); rayon's pool itself keeps its size.
    https://pytorch.org/docs/stable/generated/torch.set_num_threads.html"""
    _threads["intra"] = _thread_count("set_num_threads", int)
    _rustgrad._set_num_threads(_threads["intra"])


def get_num_interop_threads() -> int:
    """The number of threads for inter-op parallelism (rustgrad runs ops one after another: a recorded
    value). https://pytorch.org/docs/stable/generated/torch.get_num_interop_threads.html"""
    return _threads["interop"]


def set_num_interop_threads(int: Any) -> None:
    """Sets the number of inter-op threads (recorded; rustgrad has no inter-op pool).
    https://pytorch.org/docs/stable/generated/torch.set_num_interop_threads.html"""
    _threads["interop"] = _thread_count("set_num_interop_threads", int)


# ----- torch.compile -----


def compile(
    model: Callable | None = None,
    *,
    fullgraph: bool = False,
    dynamic: bool | None = None,
    backend: Any = "inductor",
    mode: str | None = None,
    options: dict | None = None,
    disable: bool = False,
) -> Any:
    """``torch.compile``: rustgrad has no graph compiler, so the function or module comes back
    unchanged and runs eagerly (same values; PyTorch returns a wrapper, e.g. an ``OptimizedModule``
    whose ``state_dict`` keys start with ``_orig_mod.``). Works as ``torch.compile(f)``,
    ``@torch.compile`` and ``@torch.compile(mode=...)``.
    https://pytorch.org/docs/stable/generated/torch.compile.html"""
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be specified at the same time.")
    if model is None:

        def fn(model: Callable) -> Any:
            if model is None:
                raise RuntimeError("Model can't be None")
            return compile(
                model, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode, options=options, disable=disable
            )

        return fn
    if not callable(model):
        raise AssertionError(f"A callable function is expected, but {type(model)} is provided.")  # noqa: TRY004 (the exception type is PyTorch's)
    return model


# ----- predicates -----


def is_storage(obj: Any) -> bool:
    """Whether ``obj`` is a storage object: rustgrad exposes no storages, so False.
    https://pytorch.org/docs/stable/generated/torch.is_storage.html"""
    return False


def is_complex(input: Tensor) -> bool:
    """Whether ``input`` has a complex dtype: rustgrad has none, so False for every tensor.
    https://pytorch.org/docs/stable/generated/torch.is_complex.html"""
    check_tensor("is_complex", input)
    return False


def is_nonzero(input: Tensor) -> bool:
    """Whether a one-element tensor is non-zero. https://pytorch.org/docs/stable/generated/torch.is_nonzero.html"""
    check_tensor("is_nonzero", input)
    n = input.numel()
    if n == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if n > 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(input.item())
