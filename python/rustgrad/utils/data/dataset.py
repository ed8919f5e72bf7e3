"""Datasets: map-style (``__getitem__`` + ``__len__``) and iterable ones."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

import rustgrad as _torch


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__`` (and usually ``__len__``)."""

    def __getitem__(self, index: Any) -> Any:
        """The sample at ``index``."""
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other: Dataset) -> ConcatDataset:
        """``a + b`` concatenates two datasets."""
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset read by iterating it (``__iter__``), for streams."""

    def __iter__(self) -> Any:
        """The samples, in order."""
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other: Dataset) -> Any:
        """Iterable datasets chain rather than concatenate."""
        raise TypeError("IterableDataset does not support + (use itertools.chain)")


class TensorDataset(Dataset):
    """Samples are the rows of the given tensors (all of the same first size)."""

    def __init__(self, *tensors: Any) -> None:
        if not all(tensors[0].size(0) == t.size(0) for t in tensors):
            raise AssertionError("Size mismatch between tensors")
        self.tensors = tensors

    def __getitem__(self, index: Any) -> tuple:
        """A tuple with each tensor's row ``index``."""
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        """The tensors' first size."""
        return self.tensors[0].size(0)


class ConcatDataset(Dataset):
    """The datasets one after another."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self.datasets = list(datasets)
        if len(self.datasets) == 0:
            raise AssertionError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset")  # noqa: TRY004 (PyTorch's class)
        self.cumulative_sizes = []
        total = 0
        for d in self.datasets:
            total += len(d)  # type: ignore[arg-type]
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        """The total number of samples."""
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> Any:
        """Sample ``idx`` of the concatenation (negative indices count from the end)."""
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = 0 if which == 0 else self.cumulative_sizes[which - 1]
        return self.datasets[which][idx - start]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx: Any) -> Any:
        """Sample ``idx`` of the subset (a list of indices gives a list of samples)."""
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]) -> list:
        """Several samples at once."""
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        """How many indices the subset has."""
        return len(self.indices)


def _split_lengths(lengths: Sequence[float], n: int) -> list[int]:
    """Fractions summing to 1 become counts: floors, then the remainder one by one from the first."""
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [math.floor(n * frac) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        return counts
    return [int(x) for x in lengths]


def random_split(dataset: Dataset, lengths: Sequence[float], generator: Any = None) -> list[Subset]:
    """Splits ``dataset`` into non-overlapping random subsets of the given lengths (or fractions),
    with PyTorch's permutation for the same seed."""
    n = len(dataset)  # type: ignore[arg-type]
    for frac in lengths:
        if math.isclose(sum(lengths), 1) and sum(lengths) <= 1 and not 0 <= frac <= 1:
            raise ValueError(f"Fraction at index {list(lengths).index(frac)} is not between 0 and 1")
    counts = _split_lengths(lengths, n)
    if sum(counts) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    indices = _torch.randperm(sum(counts), generator=generator).tolist()
    out, offset = [], 0
    for count in counts:
        out.append(Subset(dataset, indices[offset : offset + count]))
        offset += count
    return out
