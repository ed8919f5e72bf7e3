"""DataLoader with worker processes: PyTorch's per-worker seeds, batch order, errors and dead workers."""

import os
import time

import pytest
import rustgrad as torch
from rustgrad.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info


class Noisy(Dataset):
    """Draws in the worker: the values depend on the worker's seed."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        info = get_worker_info()
        return torch.rand(2) + i, (info.id if info else -1)


# Recorded from PyTorch 2.15: torch.manual_seed(0), shuffle=True, batch_size=3, num_workers=2.
RECORDED_TWO_WORKERS = [
    ([[6.782139778137207, 6.053598880767822], [7.988786697387695, 7.194859504699707], [1.5241789817810059, 1.1987178325653076]], [0, 0, 0]),
    ([[4.693818092346191, 4.297958850860596], [2.1668546199798584, 2.284719705581665], [0.9157088994979858, 0.3888756036758423]], [1, 1, 1]),
    ([[9.509400367736816, 9.716646194458008], [8.596091270446777, 8.830305099487305], [3.00496506690979, 3.6030609607696533]], [0, 0, 0]),
    ([[5.090713977813721, 5.738580703735352]], [1]),
]  # fmt: skip


def test_workers_draw_with_pytorchs_seeds_in_order():
    torch.manual_seed(0)
    got = [
        (x.tolist(), w.tolist()) for x, w in DataLoader(Noisy(), batch_size=3, shuffle=True, num_workers=2)
    ]
    assert got == RECORDED_TWO_WORKERS
    assert get_worker_info() is None


def test_iterable_dataset_batches_alternate_between_workers():
    class Ranges(IterableDataset):
        def __iter__(self):
            info = get_worker_info()
            start = 0 if info is None else info.id * 100
            return iter(range(start, start + 5))

    got = [b.tolist() for b in DataLoader(Ranges(), batch_size=2, num_workers=2)]
    assert got == [[0, 1], [100, 101], [2, 3], [102, 103], [4], [104]]


def test_worker_exception_is_raised_with_its_class_and_worker():
    class Bad(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            if i == 2:
                raise KeyError("boom")
            return i

    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 0"):
        list(DataLoader(Bad(), batch_size=1, num_workers=2))


def test_dead_worker_raises_instead_of_hanging():
    class Dies(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            if i == 1:
                os._exit(3)
            return i

    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"):
        list(DataLoader(Dies(), batch_size=1, num_workers=2))
    assert time.monotonic() - start < 30


def test_worker_options_are_checked_as_pytorch():
    with pytest.raises(ValueError, match="prefetch_factor option could only be specified in multiprocessing"):
        DataLoader(Noisy(), prefetch_factor=2)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        DataLoader(Noisy(), persistent_workers=True)
    assert DataLoader(Noisy(), num_workers=2).prefetch_factor == 2
