"""Samplers: the order in which a ``DataLoader`` reads a map-style dataset."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import rustgrad as _torch
from rustgrad import _rustgrad


class Sampler:
    """Iterates over dataset indices."""

    def __init__(self, data_source: Any = None) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        """The indices (lists of them for a batch sampler)."""
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Any) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        """The indices in order."""
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        """How many indices."""
        return len(self.data_source)


def _check_generator(generator: Any) -> None:
    """Nothing to check up front: as in PyTorch, a bad ``generator`` fails when it is drawn from."""


def _shuffle_generator(generator: Any) -> Any:
    """PyTorch's shuffle source: the sampler's own generator, or without one a fresh generator
    seeded by one int64 draw of the default generator (so the default stream moves by one
    64-bit draw per epoch, whatever the dataset's size)."""
    if generator is not None:
        return generator
    return _torch.Generator().manual_seed(_rustgrad._random_int64())


class RandomSampler(Sampler):
    """The indices in a random order (or ``num_samples`` draws with ``replacement``)."""

    def __init__(
        self,
        data_source: Any,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Any = None,
    ) -> None:
        _check_generator(generator)
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={self.replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(
                f"num_samples should be a positive integer value, but got num_samples={self.num_samples}"
            )

    @property
    def num_samples(self) -> int:
        """How many indices an epoch gives."""
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        """The shuffled indices, drawn as PyTorch draws them: whole permutations (the last one
        cut short), or with ``replacement`` ``randint`` draws in chunks of 32."""
        n = len(self.data_source)
        generator = _shuffle_generator(self.generator)
        if self.replacement:
            for _ in range(self.num_samples // 32):
                yield from _torch.randint(high=n, size=(32,), generator=generator).tolist()
            yield from _torch.randint(high=n, size=(self.num_samples % 32,), generator=generator).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from _torch.randperm(n, generator=generator).tolist()
        yield from _torch.randperm(n, generator=generator).tolist()[: self.num_samples % n]

    def __len__(self) -> int:
        """How many indices an epoch gives."""
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order."""

    def __init__(self, indices: Sequence[int], generator: Any = None) -> None:
        _check_generator(generator)
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        """The indices, shuffled."""
        for i in _torch.randperm(len(self.indices), generator=self.generator).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        """How many indices."""
        return len(self.indices)


class BatchSampler(Sampler):
    """Groups another sampler's indices into lists of ``batch_size``."""

    def __init__(self, sampler: Any, batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")  # noqa: TRY004
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        """Lists of indices; the last one may be short unless ``drop_last``."""
        batch: list[int] = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        """How many batches."""
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
