"""``torch.profiler``: the profiler's newer interface, over ``torch.autograd.profiler``.

Only CPU activity exists here; ``schedule`` and ``on_trace_ready`` work step by step as in
PyTorch (``prof.step()`` moves through wait, warmup and active steps).
"""

from __future__ import annotations

import enum
import os
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable

from rustgrad.autograd import profiler as _autograd_profiler
from rustgrad.autograd.profiler import record_function
from rustgrad.autograd.profiler_util import EventList, FunctionEventAvg

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "ProfilerAction",
    "ProfilerActivity",
    "profile",
    "record_function",
    "schedule",
    "supported_activities",
    "tensorboard_trace_handler",
]


class ProfilerActivity(enum.Enum):
    """The kinds of activity a profile may record (only CPU is recorded here)."""

    CPU = 0
    XPU = 1
    MTIA = 2
    CUDA = 3
    HPU = 4
    PrivateUse1 = 5

    def __repr__(self) -> str:
        return f"<ProfilerActivity.{self.name}: {self.value}>"

    def __str__(self) -> str:
        return f"ProfilerActivity.{self.name}"


def supported_activities() -> set[ProfilerActivity]:
    """The activities this build can record: ``{ProfilerActivity.CPU}``."""
    return {ProfilerActivity.CPU}


class ProfilerAction(enum.Enum):
    """What the profiler does at a step of its schedule."""

    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(
    *, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0, skip_first_wait: int = 0
) -> Callable[[int], ProfilerAction]:
    """A schedule: skip ``skip_first`` steps, then cycles of wait, warmup and active steps."""
    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise AssertionError("Invalid profiler schedule arguments")

    def action(step: int) -> ProfilerAction:
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if skip_first_wait:
            step += wait
        cycle = wait + warmup + active
        if repeat > 0 and step // cycle >= repeat:
            return ProfilerAction.NONE
        pos = step % cycle
        if pos < wait:
            return ProfilerAction.NONE
        if pos < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if pos < cycle - 1 else ProfilerAction.RECORD_AND_SAVE

    return action


def _always_record(step: int) -> ProfilerAction:
    return ProfilerAction.RECORD


def tensorboard_trace_handler(
    dir_name: str, worker_name: str | None = None, use_gzip: bool = False
) -> Callable[[Any], None]:
    """An ``on_trace_ready`` handler writing each trace to ``dir_name`` as Chrome JSON."""

    def handler(prof: Any) -> None:
        os.makedirs(dir_name, exist_ok=True)
        name = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        path = os.path.join(dir_name, f"{name}.{time.time_ns() // 1000000}.pt.trace.json")
        prof.export_chrome_trace(path)

    return handler


class profile:
    """Context manager that profiles the ops run inside it (``torch.profiler.profile``)."""

    def __init__(
        self,
        *,
        activities: Iterable[ProfilerActivity] | None = None,
        schedule: Callable[[int], ProfilerAction] | None = None,
        on_trace_ready: Callable[[Any], Any] | None = None,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_flops: bool = False,
        with_modules: bool = False,
        experimental_config: Any = None,
        execution_trace_observer: Any = None,
        acc_events: bool = False,
        use_cuda: bool | None = None,
        custom_trace_id_callback: Any = None,
    ) -> None:
        self.activities = set(activities) if activities is not None else supported_activities()
        self.schedule = schedule if schedule is not None else _always_record
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.step_num = 0
        self.profiler: _autograd_profiler.profile | None = None
        self._recording: _autograd_profiler.profile | None = None
        self.current_action = self.schedule(self.step_num)

    def _new_profile(self) -> _autograd_profiler.profile:
        return _autograd_profiler.profile(
            record_shapes=self.record_shapes, profile_memory=self.profile_memory, with_stack=self.with_stack
        )

    def _begin(self) -> None:
        if self._recording is None and ProfilerActivity.CPU in self.activities:
            self._recording = self._new_profile()
            self._recording._start()

    def _finish(self, save: bool) -> None:
        if self._recording is None:
            return
        self._recording._stop()
        self.profiler, self._recording = self._recording, None
        if save and self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def start(self) -> None:
        """Starts profiling (what ``with`` does on entry)."""
        if self.current_action in (
            ProfilerAction.WARMUP,
            ProfilerAction.RECORD,
            ProfilerAction.RECORD_AND_SAVE,
        ):
            self._begin()

    def stop(self) -> None:
        """Stops profiling; the trace is ready (``on_trace_ready`` runs)."""
        self._finish(save=self._recording is not None)

    def step(self) -> None:
        """Tells the profiler a step ended: moves through the schedule."""
        previous = self.current_action
        self.step_num += 1
        self.current_action = self.schedule(self.step_num)
        if previous == ProfilerAction.RECORD_AND_SAVE:
            self._finish(save=True)
        elif previous == ProfilerAction.WARMUP and self.current_action != ProfilerAction.WARMUP:
            self._finish(save=False)  # what warm-up steps recorded is dropped
        if self.current_action in (
            ProfilerAction.WARMUP,
            ProfilerAction.RECORD,
            ProfilerAction.RECORD_AND_SAVE,
        ):
            self._begin()
        elif self._recording is not None and self.current_action == ProfilerAction.NONE:
            self._finish(save=False)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: object, exc_val: object, exc_tb: object) -> None:
        self.stop()

    def _done(self) -> _autograd_profiler.profile:
        if self.profiler is None or self.profiler.function_events is None:
            raise AssertionError("Profiler didn't finish running")
        return self.profiler

    def events(self) -> EventList:
        """Every recorded range of the last trace, by start time."""
        return self._done().events()

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0) -> EventList:
        """The last trace's events averaged by name (and input shapes, and stack)."""
        return self._done().key_averages(group_by_input_shape, group_by_stack_n)

    def export_chrome_trace(self, path: str) -> None:
        """Writes the last trace as Chrome trace-event JSON (chrome://tracing, Perfetto)."""
        self._done().export_chrome_trace(path)

    def total_average(self) -> FunctionEventAvg:
        """Every event of the last trace added together."""
        return self._done().total_average()

    def __str__(self) -> str:
        return str(self._done())

    __repr__ = object.__repr__
