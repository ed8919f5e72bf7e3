"""``torch.autocast`` / ``torch.amp.autocast``: automatic mixed precision regions.

The region bookkeeping is PyTorch's: per device type, whether autocast is on, its dtype and whether
its cast cache is on; entering a region sets them, leaving restores them; the same object works as a
decorator. A CUDA (or other accelerator) region on this CPU-only package warns and disables itself as
PyTorch does without CUDA.

Inside an enabled CPU region the ops of PyTorch's CPU lists cast their inputs, as PyTorch does:
``mm``, ``matmul`` (``@``), ``bmm``, ``addmm``, ``baddbmm`` and ``linear`` compute in the region's
dtype (bfloat16 by default, or float16), the losses and ``prod`` in float32; every other op runs
as outside the region. The casts and the per-thread state the ops read live in the Rust core
(``rustgrad_core::autocast``); this module keeps the region bookkeeping and tells the core the CPU
state whenever it changes (:func:`_sync_cpu`).
https://pytorch.org/docs/stable/amp.html#torch.autocast
"""

from __future__ import annotations

import functools
import threading
import warnings
from typing import TYPE_CHECKING, Any, Callable, Literal

from rustgrad import _rustgrad
from rustgrad._glue import device as _device

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "autocast",
    "autocast_cast_dtype",
    "clear_autocast_cache",
    "custom_bwd",
    "custom_fwd",
    "get_autocast_dtype",
    "is_autocast_available",
    "is_autocast_cache_enabled",
    "is_autocast_enabled",
    "set_autocast_cache_enabled",
    "set_autocast_dtype",
    "set_autocast_enabled",
]

# PyTorch's default lower-precision dtype per device type (by dtype name: rustgrad may lack it yet).
_DEFAULT_DTYPE = {"cpu": "bfloat16", "xpu": "float16", "mps": "float16", "hpu": "bfloat16", "ipu": "float16"}
_CPU_DTYPES = ("bfloat16", "float16")


class _State(threading.local):
    """Autocast state of the current thread, as PyTorch keeps it per thread."""

    def __init__(self) -> None:
        self.enabled: dict[str, bool] = {}
        self.dtype: dict[str, Any] = {}
        self.cache_enabled = True
        self.nesting = 0


_state = _State()


def _sync_cpu() -> None:
    """Tells the core this thread's CPU autocast state (the dtype its listed ops cast to, or off)."""
    on = _state.enabled.get("cpu", False)
    _rustgrad._set_autocast_cpu(get_autocast_dtype("cpu") if on else None)


def _dtype_named(name: str) -> Any:
    """The rustgrad dtype ``name`` (None while rustgrad lacks it: bfloat16/float16 are being added)."""
    import rustgrad

    return getattr(rustgrad, name, None)


def _device_type(device_type: Any) -> str:
    """The device type of a ``device_type`` argument (``'cuda:0'`` -> ``'cuda'``), PyTorch's parse errors."""
    return _device(device_type).type


def is_autocast_available(device_type: str) -> bool:
    """Whether autocast supports ``device_type`` (PyTorch answers True for cpu, cuda, xpu, mps, hpu...).
    https://pytorch.org/docs/stable/amp.html#torch.amp.is_autocast_available"""
    return _device_type(device_type) in ("cpu", "cuda", "xpu", "mps", "hpu", "ipu", "mtia", "maia", "xla")


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether an autocast region is active for ``device_type`` (``'cuda'`` when omitted, as PyTorch).
    https://pytorch.org/docs/stable/amp.html"""
    return _state.enabled.get("cuda" if device_type is None else _device_type(device_type), False)


def set_autocast_enabled(device_type: str, enabled: bool) -> None:
    """Turns autocast on or off for ``device_type`` in this thread (what ``autocast`` regions do)."""
    if not isinstance(enabled, bool):
        raise TypeError(
            f"set_autocast_enabled(): argument 'enabled' (position 2) must be bool, not {type(enabled).__name__}"
        )
    dev = _device_type(device_type)
    _state.enabled[dev] = enabled
    if dev == "cpu":
        _sync_cpu()


def get_autocast_dtype(device_type: str) -> Any:
    """The lower-precision dtype autocast uses on ``device_type`` (bfloat16 on the CPU, float16 on CUDA).
    Returns None while rustgrad lacks that dtype. https://pytorch.org/docs/stable/amp.html"""
    dev = _device_type(device_type)
    if dev in _state.dtype:
        return _state.dtype[dev]
    if dev == "meta":
        raise RuntimeError("unsupported scalarType")
    return _dtype_named(_DEFAULT_DTYPE.get(dev, "float16"))


def set_autocast_dtype(device_type: str, dtype: Any) -> None:
    """Sets the lower-precision dtype autocast uses on ``device_type`` in this thread."""
    dev = _device_type(device_type)
    _state.dtype[dev] = dtype
    if dev == "cpu":
        _sync_cpu()


def is_autocast_cache_enabled() -> bool:
    """Whether autocast caches the casts of leaf tensors (PyTorch's default: True)."""
    return _state.cache_enabled


def set_autocast_cache_enabled(enabled: bool) -> None:
    """Turns autocast's cast cache on or off (the cast of a float32 leaf that requires grad is
    made once per region and shared by every listed op that uses it)."""
    _state.cache_enabled = bool(enabled)
    _rustgrad._set_autocast_cache_enabled(bool(enabled))


def clear_autocast_cache() -> None:
    """Empties autocast's cast cache (done when the outermost region exits)."""
    _rustgrad._clear_autocast_cache()


def autocast_cast_dtype(device_type: str = "cpu") -> Any:
    """The dtype an op of PyTorch's autocast "lower precision" list (matmul, mm, bmm, linear...)
    computes in on ``device_type``, or None when autocast is off there (the Rust core keeps the
    same answer for the CPU and does the casts)."""
    if not _state.enabled.get(device_type, False):
        return None
    return get_autocast_dtype(device_type)


class autocast:
    """``torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None)``: a mixed-precision
    region, as a context manager or a decorator.

    Args:
        device_type: ``'cpu'``, ``'cuda'``... (an accelerator region disables itself with PyTorch's warning).
        dtype: the lower-precision dtype (default: bfloat16 on the CPU, float16 elsewhere).
        enabled: whether the region is active.
        cache_enabled: whether casts of leaves are cached (default: the current setting).

    See the module docstring for which ops cast on the CPU.
    https://pytorch.org/docs/stable/amp.html#torch.autocast
    """

    def __init__(
        self, device_type: str, dtype: Any = None, enabled: bool = True, cache_enabled: bool | None = None
    ) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")  # noqa: TRY004 (the exception type is PyTorch's)
        self.device = _device_type(device_type)
        self.fast_dtype = get_autocast_dtype(self.device) if dtype is None else dtype
        self._cache_enabled = is_autocast_cache_enabled() if cache_enabled is None else cache_enabled
        self._enabled = bool(enabled)
        if self.device == "cuda" and self._enabled:
            warnings.warn("CUDA is not available or torch_xla is imported. Disabling autocast.", stacklevel=2)
            self._enabled = False
        elif self.device == "cpu" and self._enabled and dtype is not None and not _is_cpu_fast_dtype(dtype):
            warnings.warn(
                "In CPU autocast, but the target dtype is not supported. Disabling autocast.\n"
                "CPU Autocast only supports dtypes of torch.bfloat16, torch.float16 currently.",
                stacklevel=2,
            )
            self._enabled = False
        self._saved: list[tuple[bool, Any, bool]] = []

    def __enter__(self) -> Self:
        self._saved.append((is_autocast_enabled(self.device), _state.dtype.get(self.device), _state.cache_enabled))
        _state.enabled[self.device] = self._enabled
        _state.dtype[self.device] = self.fast_dtype
        set_autocast_cache_enabled(bool(self._cache_enabled))
        _state.nesting += 1
        if self.device == "cpu":
            _sync_cpu()
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        enabled, dtype, cache = self._saved.pop()
        _state.nesting -= 1
        if _state.nesting == 0:
            clear_autocast_cache()
        _state.enabled[self.device] = enabled
        if dtype is None:
            _state.dtype.pop(self.device, None)
        else:
            _state.dtype[self.device] = dtype
        set_autocast_cache_enabled(cache)
        if self.device == "cpu":
            _sync_cpu()
        return False

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def decorated(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return decorated


def _is_cpu_fast_dtype(dtype: Any) -> bool:
    return any(dtype is not None and dtype == _dtype_named(name) for name in _CPU_DTYPES)


def _cast(value: Any, dtype: Any) -> Any:
    """``value`` with its floating tensors (not float64; inside lists, tuples and dicts too) cast to
    ``dtype``, as ``custom_fwd(cast_inputs=...)`` passes them."""
    from rustgrad import Tensor

    if isinstance(value, Tensor):
        if value.is_floating_point() and value.dtype != _dtype_named("float64"):
            return value.to(dtype)
        return value
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, dict):
        return {_cast(k, dtype): _cast(v, dtype) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, dtype) for v in value)
    return value


def custom_fwd(fwd: Callable | None = None, *, device_type: str, cast_inputs: Any = None) -> Any:
    """Decorator for the ``forward`` of a custom ``autograd.Function`` under autocast.

    Without ``cast_inputs`` the forward runs in the caller's autocast state (and ``custom_bwd`` runs
    the backward in the same state). With ``cast_inputs``, inside an enabled region of
    ``device_type`` the floating tensor arguments are cast to that dtype and the forward runs with
    autocast off (so does the backward). https://pytorch.org/docs/stable/amp.html#torch.amp.custom_fwd"""
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")  # noqa: TRY004 (the exception type is PyTorch's)
    _device_type(device_type)
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args: Any, **kwargs: Any) -> Any:
        ctx = args[0]
        ctx._dtype = get_autocast_dtype(device_type)
        if cast_inputs is None:
            ctx._fwd_used_autocast = is_autocast_enabled(device_type)
            return fwd(*args, **kwargs)
        ctx._fwd_used_autocast = False
        if is_autocast_enabled(device_type):
            with autocast(device_type=device_type, enabled=False):
                return fwd(*_cast(args, cast_inputs), **_cast(kwargs, cast_inputs))
        return fwd(*args, **kwargs)

    return decorate_fwd


def custom_bwd(bwd: Callable | None = None, *, device_type: str) -> Any:
    """Decorator for the ``backward`` of a custom ``autograd.Function``: runs it in the autocast state
    its ``custom_fwd`` forward ran in. https://pytorch.org/docs/stable/amp.html#torch.amp.custom_bwd"""
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")  # noqa: TRY004 (the exception type is PyTorch's)
    _device_type(device_type)
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args: Any, **kwargs: Any) -> Any:
        ctx = args[0]
        with autocast(device_type=device_type, enabled=ctx._fwd_used_autocast, dtype=ctx._dtype):
            return bwd(*args, **kwargs)

    return decorate_bwd
