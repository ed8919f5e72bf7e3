"""Work handles of asynchronous collectives, and the watchdog that enforces timeouts."""

from __future__ import annotations

import datetime
import sys
import threading
import time
from typing import Any, Callable


class _Watchdog:
    """A daemon thread that aborts the MPI job when a collective outlasts its deadline (a rank
    that never joins would otherwise leave the others waiting forever). Starting and ending a
    collective only touch a dict under a lock; the thread looks at it a few times a second, so
    it costs the collective nothing measurable."""

    def __init__(self, comm: Any) -> None:
        self._comm = comm
        self._pending: dict[int, tuple[float, str, datetime.timedelta]] = {}
        self._next_token = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rustgrad-distributed-watchdog", daemon=True)
        self._thread.start()

    def watch(self, name: str, timeout: datetime.timedelta) -> int:
        """Starts timing the collective ``name``; returns the token to pass to ``done``."""
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._pending[token] = (time.monotonic() + timeout.total_seconds(), name, timeout)
        return token

    def done(self, token: int) -> None:
        """The collective of ``token`` completed."""
        with self._lock:
            self._pending.pop(token, None)

    def stop(self) -> None:
        """Ends the thread (``destroy_process_group``)."""
        self._stopped.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stopped.wait(0.25):
            now = time.monotonic()
            with self._lock:
                late = [(name, timeout) for deadline, name, timeout in self._pending.values() if deadline <= now]
            if late:
                name, timeout = late[0]
                sys.stderr.write(
                    f"rustgrad.distributed: rank {self._comm.Get_rank()}: {name} did not complete within the "
                    f"timeout of {timeout} (another rank failed, or did not call it); ending every rank of the job\n"
                )
                sys.stderr.flush()
                self._comm.Abort(1)


class Work:
    """The handle of a collective started with ``async_op=True`` (and of ``isend``/``irecv``)."""

    def __init__(
        self,
        request: Any,
        finish: Callable[[], None],
        name: str,
        timeout: datetime.timedelta,
        watchdog: _Watchdog,
        status: Any = None,
        source_of: Callable[[], int] | None = None,
    ) -> None:
        self._request = request
        self._finish = finish
        self._name = name
        self._timeout = timeout
        self._watchdog = watchdog
        self._status = status
        self._source_of = source_of
        self._completed = False

    def _source(self) -> int:
        """For a receive: the global rank of the sender."""
        return -1 if self._source_of is None else self._source_of()

    def _complete(self) -> None:
        self._completed = True
        self._finish()

    def wait(self, timeout: datetime.timedelta | None = None) -> bool:
        """Blocks until the operation completed (the job is ended if it outlasts the timeout)."""
        if self._completed:
            return True
        token = self._watchdog.watch(self._name, self._timeout if timeout is None else timeout)
        try:
            if self._status is None:
                self._request.Wait()
            else:
                self._request.Wait(self._status)
        finally:
            self._watchdog.done(token)
        self._complete()
        return True

    def is_completed(self) -> bool:
        """Whether the operation completed (checks without blocking)."""
        if not self._completed:
            done = self._request.Test() if self._status is None else self._request.Test(self._status)
            if done:
                self._complete()
        return self._completed

    def is_success(self) -> bool:
        """Whether the operation completed without error (MPI errors end the job)."""
        return self.is_completed()

    def exception(self) -> None:
        """The operation's exception: always None (MPI errors end the job)."""

    def __repr__(self) -> str:
        return f"<rustgrad.distributed.Work {self._name} completed={self._completed}>"
