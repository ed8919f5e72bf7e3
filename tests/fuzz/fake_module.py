"""A stand-in for a torch-like module whose functions misbehave on purpose.

The fuzzer's own tests run workers against it (``--module fuzz.fake_module``) to check that an abort,
a hang, a panic-like ``BaseException`` and a non-standard exception are each detected and tied to
the program that caused them, without depending on a bug in rustgrad.
"""

from __future__ import annotations

import contextlib
import os
import time


class Tensor:
    """No tensors here; the interpreter only needs the class for ``isinstance``."""


class dtype:
    """No dtypes here either."""


class PanicException(BaseException):
    """Like ``pyo3_runtime.PanicException``: a ``BaseException``, not an ``Exception``."""


def no_grad():
    """A do-nothing context manager."""
    return contextlib.nullcontext()


def ok(value=1):
    """Returns ``value``."""
    return value


def abort():
    """Kills the process the way a Rust abort does."""
    os.abort()


def hang():
    """Never returns (in practice)."""
    time.sleep(3600)


def panic():
    """Raises a ``BaseException`` subclass, as a Rust panic through PyO3 does."""
    raise PanicException("index out of bounds")


def keyerror():
    """Raises an exception class PyTorch never raises for bad arguments."""
    raise KeyError("nope")
