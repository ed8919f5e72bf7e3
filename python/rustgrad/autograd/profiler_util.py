"""The profiler's results: ``FunctionEvent``, ``FunctionEventAvg`` and ``EventList``.

Times are microseconds from the start of the profile; memory is bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self


__all__ = ["EventList", "FunctionEvent", "FunctionEventAvg"]

# What a range is (rustgrad_core::profiler::Kind).
_OP, _EVALUATE, _BACKWARD, _USER = 0, 1, 2, 3


def _format_time(us: float) -> str:
    """``1.234ms``: microseconds shown in the largest unit that keeps them above 1."""
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _format_memory(nbytes: int) -> str:
    """``3.91 KB``: bytes in the largest binary unit that keeps them above 1."""
    kb, mb, gb = 1024, 1024 * 1024, 1024 * 1024 * 1024
    if abs(nbytes) >= gb:
        return f"{nbytes / gb:.2f} GB"
    if abs(nbytes) >= mb:
        return f"{nbytes / mb:.2f} MB"
    if abs(nbytes) >= kb:
        return f"{nbytes / kb:.2f} KB"
    return f"{nbytes} B"


class FunctionEvent:
    """One recorded range: an op, a backward node or a ``record_function`` block."""

    def __init__(
        self,
        id: int,
        name: str,
        thread: int,
        start_us: float,
        end_us: float,
        input_shapes: list[list[int]] | None = None,
        cpu_memory_usage: int = 0,
        stack: list[str] | None = None,
        kind: int = _OP,
    ) -> None:
        self.id = id
        self.name = name
        self.key = name
        self.thread = thread
        self.start_us = start_us
        self.end_us = end_us
        self.input_shapes = input_shapes if input_shapes is not None else []
        self.stack = stack if stack is not None else []
        self.kind = kind
        self._own_memory = cpu_memory_usage
        self.cpu_children: list[FunctionEvent] = []
        self.cpu_parent: FunctionEvent | None = None
        self.is_async = False
        self.is_remote = False
        self.is_legacy = False
        self.device_type = "CPU"
        self.overload_name = ""
        self.node_id = -1
        self.sequence_nr = -1

    def append_cpu_child(self, child: FunctionEvent) -> None:
        """Records ``child`` as a range inside this one."""
        self.cpu_children.append(child)

    @property
    def cpu_time_total(self) -> float:
        """Microseconds from start to end."""
        return self.end_us - self.start_us

    @property
    def cpu_time(self) -> float:
        """The same as ``cpu_time_total`` for one event."""
        return self.cpu_time_total

    @property
    def self_cpu_time_total(self) -> float:
        """``cpu_time_total`` without the time of the ranges inside it."""
        return self.cpu_time_total - sum(c.cpu_time_total for c in self.cpu_children)

    @property
    def cpu_memory_usage(self) -> int:
        """Bytes allocated by the op's outputs (by the ranges inside, for a block)."""
        if self.kind in (_USER, _EVALUATE):
            return sum(c.cpu_memory_usage for c in self.cpu_children)
        return self._own_memory

    @property
    def self_cpu_memory_usage(self) -> int:
        """``cpu_memory_usage`` without what the ranges inside it allocated."""
        return self.cpu_memory_usage - sum(c.cpu_memory_usage for c in self.cpu_children)

    @property
    def time_range(self) -> tuple[float, float]:
        """(start, end) in microseconds."""
        return (self.start_us, self.end_us)

    def __repr__(self) -> str:
        return (
            f"<FunctionEvent id={self.id} name={self.name} overload_name= device_type=DeviceType.CPU "
            f"node_id=-1 cpu_time={_format_time(self.cpu_time)} start_us={self.start_us:g} "
            f"end_us={self.end_us:g} cpu_children={[c.id for c in self.cpu_children]} "
            f"thread={self.thread} input_shapes={self.input_shapes} "
            f"cpu_memory_usage={self.cpu_memory_usage} is_async=False is_remote=False "
            f"seq_nr={self.sequence_nr} is_legacy=False>"
        )


class FunctionEventAvg:
    """The events of one name (and input shapes, when grouped so) added together."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.count = 0
        self.node_id = 0
        self.is_async = False
        self.is_remote = False
        self.is_legacy = False
        self.cpu_time_total = 0.0
        self.self_cpu_time_total = 0.0
        self.cpu_memory_usage = 0
        self.self_cpu_memory_usage = 0
        self.input_shapes: Any = None
        self.stack: Any = None
        self.cpu_parent: FunctionEvent | None = None
        self.device_type = "CPU"

    def add(self, other: Any) -> Self:
        """Adds an event (or another average) of the same key."""
        if self.key is None:
            self.key = other.key
            self.input_shapes = other.input_shapes
            self.stack = other.stack
            self.cpu_parent = getattr(other, "cpu_parent", None)
        self.count += getattr(other, "count", 1) if isinstance(other, FunctionEventAvg) else 1
        self.cpu_time_total += other.cpu_time_total
        self.self_cpu_time_total += other.self_cpu_time_total
        self.cpu_memory_usage += other.cpu_memory_usage
        self.self_cpu_memory_usage += other.self_cpu_memory_usage
        return self

    def __iadd__(self, other: Any) -> Self:
        return self.add(other)

    @property
    def cpu_time(self) -> float:
        """Average microseconds per call."""
        return 0.0 if self.count == 0 else self.cpu_time_total / self.count

    def __repr__(self) -> str:
        shapes = self.input_shapes if self.input_shapes else ""
        return (
            f"<FunctionEventAvg key={self.key} self_cpu_time={_format_time(self.self_cpu_time_total)} "
            f"cpu_time={_format_time(self.cpu_time)}  self_cuda_time=0.000us cuda_time=0.000us "
            f"input_shapes={shapes} cpu_memory_usage={self.cpu_memory_usage} cuda_memory_usage=0>"
        )


class EventList(list):  # type: ignore[type-arg]
    """A list of events (or of averages) that prints as the profiler's table."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._with_memory = bool(kwargs.pop("profile_memory", False))
        self._with_shapes = bool(kwargs.pop("with_shapes", False))
        self._trace_start_us = float(kwargs.pop("trace_start_us", 0.0))
        super().__init__(*args, **kwargs)

    @property
    def self_cpu_time_total(self) -> float:
        """The sum of the self CPU times of every event, in microseconds."""
        return float(sum(e.self_cpu_time_total for e in self))

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0) -> EventList:
        """Averages the events by name (and input shapes, and the top stack frames if asked)."""
        groups: dict[tuple[Any, ...], FunctionEventAvg] = {}
        for e in self:
            key: tuple[Any, ...] = (e.key,)
            if group_by_input_shape:
                key += (str(e.input_shapes),)
            if group_by_stack_n > 0:
                key += (tuple(e.stack[:group_by_stack_n]),)
            avg = groups.get(key)
            if avg is None:
                avg = groups[key] = FunctionEventAvg()
            avg.add(e)
        averages = list(groups.values())
        for avg in averages:
            if not group_by_input_shape:
                avg.input_shapes = ""
            if group_by_stack_n == 0:
                avg.stack = []
            else:
                avg.stack = list(avg.stack[:group_by_stack_n])
        return EventList(
            averages,
            profile_memory=self._with_memory,
            with_shapes=self._with_shapes and group_by_input_shape,
            trace_start_us=self._trace_start_us,
        )

    def total_average(self) -> FunctionEventAvg:
        """All the events added together (key ``Total``)."""
        total = FunctionEventAvg()
        for e in self:
            total.add(e)
        total.key = "Total"
        return total

    def table(
        self,
        sort_by: str | None = None,
        row_limit: int = 100,
        max_src_column_width: int = 75,
        max_name_column_width: int = 55,
        max_shapes_column_width: int = 80,
        header: str | None = None,
        top_level_events_only: bool = False,
    ) -> str:
        """The events as PyTorch's profiler table, sorted by the attribute ``sort_by``."""
        return _table(
            self,
            sort_by=sort_by,
            row_limit=row_limit,
            max_name_column_width=max_name_column_width,
            max_shapes_column_width=max_shapes_column_width,
            header=header,
            top_level_events_only=top_level_events_only,
            with_memory=self._with_memory,
            with_shapes=self._with_shapes,
        )

    def __str__(self) -> str:
        return self.table()

    def export_chrome_trace(self, path: str) -> None:
        """Writes the events as Chrome trace-event JSON (chrome://tracing, Perfetto)."""
        pid = os.getpid()
        events: list[dict[str, Any]] = [
            {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": "python"}},
            {"ph": "M", "name": "process_labels", "pid": pid, "tid": 0, "args": {"labels": "CPU"}},
        ]
        for thread in sorted({e.thread for e in self if isinstance(e, FunctionEvent)}):
            events.append(
                {
                    "ph": "M",
                    "name": "thread_name",
                    "pid": pid,
                    "tid": thread,
                    "args": {"name": f"thread {thread}"},
                }
            )
        for e in self:
            if not isinstance(e, FunctionEvent):
                continue
            args: dict[str, Any] = {"External id": e.id}
            if e.input_shapes:
                args["Input Dims"] = e.input_shapes
            if e.cpu_memory_usage:
                args["CPU Mem"] = e.cpu_memory_usage
            if e.stack:
                args["Call stack"] = ";".join(e.stack)
            events.append(
                {
                    "ph": "X",
                    "cat": "user_annotation" if e.kind == _USER else "cpu_op",
                    "name": e.name,
                    "pid": pid,
                    "tid": e.thread,
                    "ts": round(self._trace_start_us + e.start_us, 3),
                    "dur": round(e.cpu_time_total, 3),
                    "args": args,
                }
            )
        with open(path, "w") as f:
            json.dump({"schemaVersion": 1, "displayTimeUnit": "ms", "traceEvents": events}, f)


def _table(
    events: Iterable[Any],
    sort_by: str | None,
    row_limit: int,
    max_name_column_width: int,
    max_shapes_column_width: int,
    header: str | None,
    top_level_events_only: bool,
    with_memory: bool,
    with_shapes: bool,
) -> str:
    events = list(events)
    if not events:
        return ""
    total = sum(e.self_cpu_time_total for e in events)
    rows = events
    if sort_by is not None:
        rows = sorted(rows, key=lambda e: getattr(e, sort_by), reverse=True)
    if top_level_events_only:
        rows = [e for e in rows if e.cpu_parent is None]
    if row_limit is not None and row_limit > 0:
        rows = rows[:row_limit]

    name_width = min(max(len(e.key) for e in events) + 4, max_name_column_width)
    columns: list[tuple[str, int]] = [("Name", name_width)]
    columns += [(h, 12) for h in ("Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg")]
    if with_memory:
        columns += [("CPU Mem", 12), ("Self CPU Mem", 12)]
    columns.append(("# of Calls", 12))
    shapes_width = 0
    if with_shapes:
        shapes_width = min(max(len(str(e.input_shapes)) for e in events) + 4, max_shapes_column_width)
        columns.append(("Input Shapes", shapes_width))

    def line(cells: list[str]) -> str:
        return "".join(f"{c:>{w}}  " for c, (_, w) in zip(cells, columns)) + "\n"

    rule = "".join("-" * w + "  " for _, w in columns) + "\n"

    def percent(value: float) -> str:
        return f"{100.0 * value / total:.2f}%" if total > 0 else "0.00%"

    out = []
    if header is not None:
        out.append("=" * len(rule.rstrip("\n")) + "\n" + header + "\n")
    out += [rule, line([h for h, _ in columns]), rule]
    for e in rows:
        name = e.key
        if len(name) >= name_width:
            name = name[: name_width - 3] + "..."
        cells = [
            name,
            percent(e.self_cpu_time_total),
            _format_time(e.self_cpu_time_total),
            percent(e.cpu_time_total),
            _format_time(e.cpu_time_total),
            _format_time(e.cpu_time),
        ]
        if with_memory:
            cells += [_format_memory(e.cpu_memory_usage), _format_memory(e.self_cpu_memory_usage)]
        cells.append(str(getattr(e, "count", 1)))
        if with_shapes:
            shapes = str(e.input_shapes)
            if len(shapes) >= shapes_width:
                shapes = shapes[: shapes_width - 3] + "..."
            cells.append(shapes)
        out.append(line(cells))
    out.append(rule)
    out.append(f"Self CPU time total: {_format_time(total)}\n")
    return "".join(out)


def _build_events(rows: list[Any], epoch_unix_us: float, start_ns: int) -> list[FunctionEvent]:
    """FunctionEvents, with their parents and children, from the binding's ranges."""
    by_id: dict[int, FunctionEvent] = {}
    parents: list[tuple[FunctionEvent, int]] = []
    for id_, parent, name, kind, thread, s_ns, e_ns, shapes, nbytes, stack in rows:
        ev = FunctionEvent(
            id_,
            name,
            thread,
            (s_ns - start_ns) / 1e3,
            (e_ns - start_ns) / 1e3,
            input_shapes=[list(s) for s in shapes],
            cpu_memory_usage=nbytes,
            stack=list(reversed(stack)),
            kind=kind,
        )
        by_id[id_] = ev
        parents.append((ev, parent))
    for ev, parent in parents:
        p = by_id.get(parent)
        if p is not None:
            ev.cpu_parent = p
            p.append_cpu_child(ev)
    return [ev for ev, _ in parents]
