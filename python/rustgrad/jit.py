"""``torch.jit``: TorchScript is PyTorch's compiler to a serialisable graph; rustgrad has none.

Decision: ``script`` and ``trace`` return the function or module unchanged, so that programs which
script or trace a model only to run it faster keep running, with the same results (eager execution
is what TorchScript promises to reproduce). What they cannot give is a ``ScriptModule``: no
``.graph``, ``.code`` or ``.save``; :func:`save` and :func:`load` raise ``NotImplementedError``.
Differences to know: ``trace`` here does not freeze data-dependent control flow (PyTorch's traced
function replays the branch taken on the example input), and ``script`` does not reject Python that
TorchScript cannot compile. https://pytorch.org/docs/stable/jit.html
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

__all__ = [
    "Final",
    "annotate",
    "export",
    "ignore",
    "is_scripting",
    "is_tracing",
    "load",
    "save",
    "script",
    "trace",
    "unused",
]

T = TypeVar("T")

try:
    from typing import Final
except ImportError:  # pragma: no cover
    Final = Any  # type: ignore[assignment]


def script(obj: T, *args: Any, **kwargs: Any) -> T:
    """Returns ``obj`` unchanged: rustgrad runs it eagerly (see the module docstring).
    https://pytorch.org/docs/stable/generated/torch.jit.script.html"""
    return obj


def trace(func: T, example_inputs: Any = None, *args: Any, **kwargs: Any) -> T:
    """Returns ``func`` unchanged: rustgrad runs it eagerly, without recording a graph (see the module
    docstring). https://pytorch.org/docs/stable/generated/torch.jit.trace.html"""
    return func


def save(m: Any, f: Any, _extra_files: Any = None) -> None:
    """Would save a ``ScriptModule``: raises (no TorchScript). Use ``torch.save(model.state_dict(), f)``.
    https://pytorch.org/docs/stable/generated/torch.jit.save.html"""
    raise NotImplementedError(
        "torch.jit.save is not supported by rustgrad (no TorchScript): save model.state_dict() with torch.save"
    )


def load(f: Any, map_location: Any = None, _extra_files: Any = None) -> Any:
    """Would load a TorchScript archive: raises (no TorchScript).
    https://pytorch.org/docs/stable/generated/torch.jit.load.html"""
    raise NotImplementedError("torch.jit.load is not supported by rustgrad (no TorchScript)")


def ignore(drop: Any = False, **kwargs: Any) -> Any:
    """Decorator telling the TorchScript compiler to leave a function in Python: returns it unchanged.
    https://pytorch.org/docs/stable/generated/torch.jit.ignore.html"""
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn: Callable) -> Callable:
    """Decorator telling the TorchScript compiler to skip a method: returns it unchanged.
    https://pytorch.org/docs/stable/generated/torch.jit.unused.html"""
    return fn


def export(fn: Callable) -> Callable:
    """Decorator marking a method for TorchScript compilation: returns it unchanged.
    https://pytorch.org/docs/stable/jit.html"""
    return fn


def annotate(the_type: Any, the_value: T) -> T:
    """TorchScript type hint for a value: returns the value. https://pytorch.org/docs/stable/generated/torch.jit.annotate.html"""
    return the_value


def is_scripting() -> bool:
    """Whether code runs under the TorchScript compiler: never. https://pytorch.org/docs/stable/jit_language_reference.html"""
    return False


def is_tracing() -> bool:
    """Whether code runs under the tracer: never. https://pytorch.org/docs/stable/jit.html"""
    return False
