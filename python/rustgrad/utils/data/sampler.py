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
    if generator is not None and generator is not _torch.default_generator:
        raise NotImplementedError("rustgrad has only the default generator: pass generator=None")


def _permutation(n: int, generator: Any) -> list[int]:
    """PyTorch's shuffle: without a generator, a fresh one seeded by one int64 draw of the
    default generator; with the default generator, its own permutation."""
    if generator is None:
        return _rustgrad._randperm_seeded(_rustgrad._random_int64(), n).tolist()
    return _torch.randperm(n).tolist()


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
        """The shuffled indices, drawn as PyTorch draws them."""
        n = len(self.data_source)
        if self.replacement:
            raise NotImplementedError("RandomSampler(replacement=True) is not supported by rustgrad yet")
        if self.generator is None:
            seed = _rustgrad._random_int64()
            perm = lambda: _rustgrad._randperm_seeded(seed, n).tolist()
            # Successive permutations continue one generator's stream in PyTorch.
            if self.num_samples > n:
                raise NotImplementedError(
                    "RandomSampler with num_samples > len(data_source) is not supported yet"
                )
            yield from perm()[: self.num_samples]
            return
        for _ in range(self.num_samples // n):
            yield from _torch.randperm(n).tolist()
        yield from _torch.randperm(n).tolist()[: self.num_samples % n]

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
        for i in _torch.randperm(len(self.indices)).tolist():
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
