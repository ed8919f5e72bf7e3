"""``DataLoader`` worker processes (``num_workers > 0``).

Each epoch starts ``num_workers`` processes (forked, like PyTorch's default on Linux). Worker
``i`` seeds rustgrad and ``random`` with ``base_seed + i`` (the base seed is the iterator's
first draw, as in PyTorch), runs on one intra-op thread, calls ``worker_init_fn(i)`` and then
fetches the batches it is sent. Batches are handed out round-robin, at most ``prefetch_factor``
per worker ahead, and yielded in sampler order. An exception in a worker is raised again in the
main process with the worker's traceback; a worker that dies raises ``RuntimeError`` naming it
(the main process polls, so it never hangs).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import random
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker process.
    https://pytorch.org/docs/stable/data.html#torch.utils.data.get_worker_info"""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: list[WorkerInfo | None] = [None]


def get_worker_info() -> WorkerInfo | None:
    """This worker's ``WorkerInfo`` inside a ``DataLoader`` worker process, ``None`` in the main process.
    https://pytorch.org/docs/stable/data.html#torch.utils.data.get_worker_info"""
    return _worker_info[0]


class _Failure:
    """An exception raised in a worker, carried to the main process as text."""

    def __init__(self, exc: BaseException, worker_id: int, where: str) -> None:
        self.exc_type = type(exc)
        self.message = (
            f"Caught {type(exc).__name__} {where}.\nOriginal {''.join(traceback.format_exception(exc)).rstrip()}"
        )
        self.worker_id = worker_id

    def reraise(self) -> None:
        message: str = self.message
        if self.exc_type is KeyError:
            message = _KeyErrorMessage(message)  # KeyError shows repr(message): keep it readable
        try:
            exc = self.exc_type(message)
        except Exception:  # noqa: BLE001 - an exception class that cannot take one message
            exc = RuntimeError(self.message)
        raise exc


class _KeyErrorMessage(str):
    """A message whose repr is itself (``str(KeyError(m))`` is ``repr(m)``)."""

    def __repr__(self) -> str:
        return str(self)


class _IterableEnd:
    """A worker's iterable dataset is exhausted."""


def _worker_loop(
    worker_id: int,
    num_workers: int,
    base_seed: int,
    dataset: Any,
    fetch: Callable[[Any], Any],
    worker_init_fn: Callable[[int], None] | None,
    index_queue: Any,
    result_queue: Any,
) -> None:
    import rustgrad

    seed = base_seed + worker_id
    rustgrad.set_num_threads(1)
    rustgrad.manual_seed(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(np.random.SeedSequence([worker_id, base_seed]).generate_state(4))
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    _worker_info[0] = WorkerInfo(worker_id, num_workers, seed, dataset)
    where = f"in DataLoader worker process {worker_id}"
    try:
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
        iterator = iter(dataset) if fetch is None else None
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the main process
        result_queue.put((None, _Failure(exc, worker_id, where)))
        return
    while True:
        task = index_queue.get()
        if task is None:
            break
        task_id, indices = task
        try:
            if iterator is not None:
                data = _next_iterable_batch(iterator, indices)
            else:
                data = fetch(indices)
        except BaseException as exc:  # noqa: BLE001
            data = _Failure(exc, worker_id, where)
        result_queue.put((task_id, data))


def _next_iterable_batch(iterator: Iterator[Any], spec: tuple) -> Any:
    batch_size, drop_last, collate = spec
    if batch_size is None:
        try:
            return collate(next(iterator))
        except StopIteration:
            return _IterableEnd()
    batch = []
    for sample in iterator:
        batch.append(sample)
        if len(batch) == batch_size:
            return collate(batch)
    if batch and not drop_last:
        return collate(batch)
    return _IterableEnd()


def run_workers(
    loader: Any, base_seed: int, tasks: Iterator[Any] | None, fetch: Callable[[Any], Any] | None
) -> Iterator[Any]:
    """Batches computed by ``loader.num_workers`` processes, in order. ``tasks`` yields what each
    batch is fetched from (a list of indices, or one index); for an iterable dataset it is
    ``None`` and each worker iterates its own copy of the dataset, batches taken in turn."""
    ctx = loader.multiprocessing_context
    if ctx is None:
        ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    elif isinstance(ctx, str):
        ctx = multiprocessing.get_context(ctx)
    n = loader.num_workers
    result_queue = ctx.Queue()
    index_queues = [ctx.Queue() for _ in range(n)]
    workers = []
    for i in range(n):
        w = ctx.Process(
            target=_worker_loop,
            args=(i, n, base_seed, loader.dataset, fetch, loader.worker_init_fn, index_queues[i], result_queue),
            daemon=True,
        )
        w.start()
        workers.append(w)
    iterable = tasks is None
    spec = (loader.batch_size, loader.drop_last, loader.collate_fn)
    active = [True] * n
    pending: dict[int, Any] = {}
    owner: dict[int, int] = {}
    next_send = next_yield = 0
    cursor = 0
    exhausted = False

    def send() -> bool:
        nonlocal next_send, cursor, exhausted
        if exhausted or not any(active):
            return False
        if iterable:
            payload = spec
        else:
            try:
                payload = next(tasks)  # type: ignore[arg-type]
            except StopIteration:
                exhausted = True
                return False
        for _ in range(n):
            w, cursor = cursor, (cursor + 1) % n
            if active[w]:
                break
        index_queues[w].put((next_send, payload))
        owner[next_send] = w
        next_send += 1
        return True

    try:
        for _ in range(loader.prefetch_factor * n):
            if not send():
                break
        while next_yield < next_send:
            while next_yield not in pending:
                try:
                    task_id, data = result_queue.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    dead = [w for w in workers if not w.is_alive() and w.exitcode not in (0, None)]
                    if dead:
                        pids = ", ".join(str(w.pid) for w in dead)
                        raise RuntimeError(
                            f"DataLoader worker (pid(s) {pids}) exited unexpectedly "
                            f"(worker {workers.index(dead[0])}, batch {next_yield})"
                        ) from None
                    continue
                if task_id is None:
                    data.reraise()
                pending[task_id] = data
            data = pending.pop(next_yield)
            w = owner.pop(next_yield)
            next_yield += 1
            if isinstance(data, _Failure):
                data.reraise()
            if isinstance(data, _IterableEnd):
                active[w] = False
                if any(active):
                    send()
                continue
            send()
            yield data
    finally:
        for q in index_queues:
            with contextlib.suppress(OSError, ValueError):  # a queue of a dead worker
                q.put(None)
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.terminate()
