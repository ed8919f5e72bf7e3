"""``DistributedSampler``: each rank of a data-parallel job reads its own part of a dataset."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import rustgrad as _torch

from .sampler import Sampler


class DistributedSampler(Sampler):
    """Indices for one of ``num_replicas`` ranks: every rank draws the same permutation (seeded
    with ``seed + epoch``), pads it (or cuts it, with ``drop_last``) to a multiple of the rank
    count, and takes every ``num_replicas``-th index from ``rank`` on, as PyTorch does."""

    def __init__(
        self,
        dataset: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            from rustgrad import distributed as dist

            if not dist.is_available():
                raise RuntimeError("Requires distributed package to be available")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        size = len(dataset)
        if drop_last and size % num_replicas != 0:
            # Leave out the tail, so that every rank gets the same number of indices.
            self.num_samples = math.ceil((size - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(size / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        """This rank's indices for the current epoch."""
        size = len(self.dataset)
        if self.shuffle:
            generator = _torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            indices = _torch.randperm(size, generator=generator).tolist()
        else:
            indices = list(range(size))
        if self.drop_last:
            indices = indices[: self.total_size]
        else:
            missing = self.total_size - len(indices)
            if missing > 0:
                repeats = math.ceil(missing / len(indices))
                indices += (indices * repeats)[:missing]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        """The number of indices each rank gets."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch, which seeds the shuffle (call it before each epoch)."""
        self.epoch = epoch
