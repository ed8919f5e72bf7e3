"""Grad-mode context managers and decorators (the flag itself is per thread, in Rust)."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, TypeVar

from rustgrad._rustgrad import _set_grad_enabled, _set_inference_mode, is_grad_enabled
from rustgrad._rustgrad import is_inference_mode_enabled as _is_inference_mode_enabled

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "enable_grad",
    "inference_mode",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "no_grad",
    "set_grad_enabled",
    "set_multithreading_enabled",
]


class _DecoratorContextManager:
    """A context manager that also decorates functions (and generator functions)."""

    def __call__(self, func: F) -> F:
        if inspect.isclass(func):
            raise RuntimeError(
                "Cannot decorate classes; it is ambiguous whether or not only the constructor or all "
                "methods should have the context manager applied; additionally, decorating a class "
                "at definition-site will prevent use of the identifier as a conventional type."
            )
        if inspect.isgeneratorfunction(func):
            return self._wrap_generator(func)

        @functools.wraps(func)
        def decorate_context(*args, **kwargs):
            with self.clone():
                return func(*args, **kwargs)

        return decorate_context  # type: ignore[return-value]

    def _wrap_generator(self, func):
        @functools.wraps(func)
        def generator_context(*args, **kwargs):
            gen = func(*args, **kwargs)
            try:
                with self.clone():
                    response = gen.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with self.clone():
                            gen.close()
                        raise
                    except BaseException as exc:  # noqa: BLE001 - forwarded into the generator
                        with self.clone():
                            response = gen.throw(exc)
                    else:
                        with self.clone():
                            response = gen.send(request)
            except StopIteration as e:
                return e.value

        return generator_context

    def clone(self):
        return self.__class__()


class _NoParamDecoratorContextManager(_DecoratorContextManager):
    """Also usable bare, as ``@no_grad`` without parentheses."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


class no_grad(_NoParamDecoratorContextManager):
    """Operations inside record no graph."""

    def __init__(self) -> None:
        self.prev = False

    def __enter__(self) -> None:
        self.prev = is_grad_enabled()
        _set_grad_enabled(False)

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        _set_grad_enabled(self.prev)


class enable_grad(_NoParamDecoratorContextManager):
    """Operations inside record a graph, even within ``no_grad``."""

    def __enter__(self) -> None:
        self.prev = is_grad_enabled()
        _set_grad_enabled(True)

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        _set_grad_enabled(self.prev)


class set_grad_enabled(_DecoratorContextManager):
    """Sets grad mode now (as a function), for a block (as a context manager), or for a call
    (as a decorator); the previous mode comes back on exit, also after an exception."""

    def __init__(self, mode: bool) -> None:
        if not isinstance(mode, bool):
            raise TypeError(
                f"set_grad_enabled(): argument 'enabled' (position 1) must be bool, not {type(mode).__name__}"
            )
        self.prev = is_grad_enabled()
        self.mode = bool(mode)
        _set_grad_enabled(self.mode)

    def __call__(self, orig_func: F) -> F:
        _set_grad_enabled(self.prev)
        return super().__call__(orig_func)

    def __enter__(self) -> None:
        _set_grad_enabled(self.mode)

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        _set_grad_enabled(self.prev)

    def clone(self) -> set_grad_enabled:
        """A new context manager with the same setting (used when decorating functions)."""
        return self.__class__(self.mode)


_multithreading = [True]


def _is_multithreading_enabled() -> bool:
    """Whether backward may use worker threads (``set_multithreading_enabled``)."""
    return _multithreading[0]


class set_multithreading_enabled(_DecoratorContextManager):
    """Allows or forbids worker threads in backward, now, for a block or for a call. rustgrad's
    engine runs every backward on the calling thread, so only the setting itself changes."""

    def __init__(self, mode: bool) -> None:
        self.prev = _multithreading[0]
        self.mode = bool(mode)
        _multithreading[0] = self.mode

    def __enter__(self) -> None:
        pass

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        _multithreading[0] = self.prev

    def clone(self) -> set_multithreading_enabled:
        """A new context manager with the same setting (used when decorating functions)."""
        return self.__class__(self.mode)


class inference_mode(_DecoratorContextManager):
    """Like ``no_grad``, and tensors created inside are inference tensors: they can never be
    saved for backward or modified in place outside inference mode (PyTorch's rules)."""

    def __init__(self, mode: bool = True) -> None:
        self.mode = mode

    def __new__(cls, mode=True):
        if isinstance(mode, bool):
            return super().__new__(cls)
        return cls()(mode)

    def __enter__(self) -> None:
        self.prev_grad = is_grad_enabled()
        self.prev_inference = _set_inference_mode(self.mode)
        # As in PyTorch, inference_mode(False) turns grad mode on.
        _set_grad_enabled(not self.mode)

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        _set_inference_mode(self.prev_inference)
        _set_grad_enabled(self.prev_grad)

    def clone(self) -> inference_mode:
        """A new context manager with the same setting (used when decorating functions)."""
        return self.__class__(self.mode)


def is_inference_mode_enabled() -> bool:
    """Whether this thread is in inference mode."""
    return _is_inference_mode_enabled()
