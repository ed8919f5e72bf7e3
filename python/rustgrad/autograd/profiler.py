"""``torch.autograd.profiler``: records the time (and memory, shapes, stacks) of every op.

Every op called from Python and every backward node is a range; ``record_function`` adds
ranges of your own. Ranges go to a buffer of the thread that runs them and are collected when
the profile ends. When no profile runs, an op pays one relaxed atomic load.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from rustgrad import _rustgrad
from rustgrad.autograd.profiler_util import EventList, FunctionEvent, FunctionEventAvg, _build_events

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["EventList", "FunctionEvent", "FunctionEventAvg", "profile", "record_function"]

_F = TypeVar("_F", bound=Callable[..., Any])


class profile:
    """Context manager that profiles the ops run inside it.

    ``use_cuda`` and the other device options are accepted and ignored (CPU only).
    """

    def __init__(
        self,
        enabled: bool = True,
        *,
        use_cuda: bool = False,
        use_device: str | None = None,
        record_shapes: bool = False,
        with_flops: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_modules: bool = False,
        use_kineto: bool = False,
        use_cpu: bool = True,
        experimental_config: Any = None,
        acc_events: bool = False,
        custom_trace_id_callback: Any = None,
    ) -> None:
        self.enabled = enabled
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.entered = False
        self.function_events: EventList | None = None
        self._start_ns = 0

    def __enter__(self) -> Self:
        if not self.enabled:
            return self
        if self.entered:
            raise RuntimeError("Profiler context manager is not reentrant")
        self._start()
        return self

    def __exit__(self, exc_type: object, exc_val: object, exc_tb: object) -> None:
        if self.enabled:
            self._stop()

    def _start(self) -> None:
        self.entered = True
        self._start_ns = _rustgrad._profiler_start(self.record_shapes, self.profile_memory, self.with_stack)

    def _stop(self) -> None:
        rows, epoch_unix_us = _rustgrad._profiler_stop()
        self.entered = False
        events = _build_events(rows, epoch_unix_us, self._start_ns)
        self.function_events = EventList(
            events,
            profile_memory=self.profile_memory,
            with_shapes=self.record_shapes,
            trace_start_us=epoch_unix_us + self._start_ns / 1e3,
        )

    def _check_finish(self) -> EventList:
        if self.function_events is None:
            raise RuntimeError("Profiler didn't finish running")
        return self.function_events

    def events(self) -> EventList:
        """Every recorded range, by start time."""
        return self._check_finish()

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0) -> EventList:
        """The events averaged by name (and input shapes, and stack)."""
        return self._check_finish().key_averages(group_by_input_shape, group_by_stack_n)

    def table(self, *args: Any, **kwargs: Any) -> str:
        """The events' table (see ``EventList.table``)."""
        return self._check_finish().table(*args, **kwargs)

    def total_average(self) -> FunctionEventAvg:
        """Every event added together."""
        return self._check_finish().total_average()

    @property
    def self_cpu_time_total(self) -> float:
        """Sum of the self CPU times of every event, in microseconds."""
        return self._check_finish().self_cpu_time_total

    def export_chrome_trace(self, path: str) -> None:
        """Writes the events as Chrome trace-event JSON."""
        self._check_finish().export_chrome_trace(path)

    def __str__(self) -> str:
        return str(self._check_finish())

    __repr__ = object.__repr__


class record_function:
    """Context manager and decorator that records a named range around the code it wraps."""

    def __init__(self, name: str, args: str | None = None) -> None:
        self.name = name
        self.args = args
        self.run_callbacks_on_exit = True
        self._handle: Any = None

    def __enter__(self) -> Self:
        self._handle = _rustgrad._record_function_enter(self.name)
        return self

    def __exit__(self, exc_type: object, exc_val: object, exc_tb: object) -> None:
        handle, self._handle = self._handle, None
        _rustgrad._record_function_exit(handle)

    def __call__(self, fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with record_function(self.name, self.args):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
