"""``DataLoader``: batches of a dataset, collated into tensors.

With ``num_workers > 0`` the batches are fetched by worker processes (see ``_worker``), seeded
as PyTorch seeds them, and yielded in the sampler's order."""

from __future__ import annotations

import collections.abc
from collections.abc import Iterator
from typing import Any, Callable

import numpy as np

import rustgrad as _torch
from rustgrad import _rustgrad

from ._worker import run_workers
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler, _check_generator

_COLLATE_ERROR = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


class _Fetch:
    """Fetches one batch in a worker: the samples of a list of indices collated, or one sample
    converted (picklable, for the ``spawn`` start method)."""

    def __init__(self, dataset: Any, collate_fn: Callable[[Any], Any], auto_batch: bool) -> None:
        self.dataset, self.collate_fn, self.auto_batch = dataset, collate_fn, auto_batch

    def __call__(self, index: Any) -> Any:
        if self.auto_batch:
            return self.collate_fn([self.dataset[i] for i in index])
        return self.collate_fn(self.dataset[index])


def default_convert(data: Any) -> Any:
    """Turns numpy arrays (and containers of them) into tensors, leaving the rest as it is."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "SUO":
        return _torch.as_tensor(data)
    if isinstance(data, np.generic) and data.dtype.kind not in "SUO":
        return _torch.as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return (
            type(data)({k: default_convert(v) for k, v in data.items()})
            if isinstance(data, dict)
            else {k: default_convert(v) for k, v in data.items()}
        )
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(default_convert(d) for d in data)
    return data


def default_collate(batch: list) -> Any:
    """Stacks a list of samples into a batch: tensors and numpy arrays along a new first dim,
    numbers into a tensor (float64 for floats), and dicts, tuples and lists element-wise."""
    elem = batch[0]
    if isinstance(elem, _torch.Tensor):
        return _torch.stack(batch, 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "SUO":
            raise TypeError(_COLLATE_ERROR.format(elem.dtype))
        return default_collate([_torch.as_tensor(b) for b in batch])
    if isinstance(elem, np.generic):
        if elem.dtype.kind in "SUO":
            raise TypeError(_COLLATE_ERROR.format(elem.dtype))
        return _torch.as_tensor(np.array(batch))
    if isinstance(elem, bool):
        return _torch.tensor(batch)
    if isinstance(elem, float):
        return _torch.tensor(batch, dtype=_torch.float64)
    if isinstance(elem, int):
        return _torch.tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(samples)) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if not all(len(e) == size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = [list(samples) for samples in zip(*batch)]
        return [default_collate(samples) for samples in transposed]
    raise TypeError(_COLLATE_ERROR.format(type(elem)))


class DataLoader:
    """Iterates over ``dataset`` in batches of ``batch_size`` samples, shuffled if asked (PyTorch's
    order for the same seed), collated with ``collate_fn`` (``default_collate``)."""

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Any = None,
        batch_sampler: Any = None,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ) -> None:
        if num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing.let num_workers > 0 to enable "
                "multiprocessing, otherwise set prefetch_factor to None."
            )
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        _check_generator(generator)
        self.dataset = dataset
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (False, None):
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified shuffle option, but got shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified sampler option, but got sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified batch_sampler option, but got batch_sampler={batch_sampler}"
                )
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last"
                )
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually exclusive with drop_last"
            )
        if sampler is None and not self._iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            collate_fn = (
                default_collate if batch_size is not None or batch_sampler is not None else default_convert
            )
        self.collate_fn = collate_fn

    def __iter__(self) -> Iterator[Any]:
        """The batches of one epoch."""
        # PyTorch's iterator draws its base seed (for workers) from the loader's generator
        # first, before the sampler draws anything.
        base_seed = _rustgrad._random_int64(self.generator)
        if self.num_workers > 0:
            return self._worker_batches(base_seed)
        return self._batches()

    def _worker_batches(self, base_seed: int) -> Iterator[Any]:
        if self._iterable:
            return run_workers(self, base_seed, None, None)
        auto_batch = self.batch_sampler is not None
        tasks = iter(self.batch_sampler if auto_batch else self.sampler)
        return run_workers(self, base_seed, tasks, _Fetch(self.dataset, self.collate_fn, auto_batch))

    def _batches(self) -> Iterator[Any]:
        if self._iterable:
            yield from self._iterable_batches()
        elif self.batch_sampler is not None:
            for indices in self.batch_sampler:
                yield self.collate_fn([self.dataset[i] for i in indices])
        else:
            for i in self.sampler:
                yield self.collate_fn(self.dataset[i])

    def _iterable_batches(self) -> Iterator[Any]:
        if self.batch_size is None:
            for sample in self.dataset:
                yield self.collate_fn(sample)
            return
        batch: list = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    def __len__(self) -> int:
        """How many batches an epoch gives."""
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)
