"""``rustgrad.utils.data``: datasets, samplers, collation and the DataLoader. Expected batches are
PyTorch 2.15's for the same seed (recorded; the file also passes run against PyTorch itself)."""

import numpy as np
import pytest
import rustgrad as torch
from rustgrad.utils.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    TensorDataset,
    random_split,
)


def dataset():
    return TensorDataset(torch.arange(10.0), torch.arange(10) * 2)


def test_shuffled_batches_follow_pytorchs_draws():
    torch.manual_seed(0)
    loader = DataLoader(dataset(), batch_size=4, shuffle=True)
    assert len(loader) == 3
    first = [[t.tolist() for t in batch] for batch in loader]
    assert first == [
        [[6.0, 7.0, 1.0, 4.0], [12, 14, 2, 8]],
        [[2.0, 0.0, 9.0, 8.0], [4, 0, 18, 16]],
        [[3.0, 5.0], [6, 10]],
    ]
    assert [batch[0].tolist() for batch in loader] == [[2.0, 4.0, 7.0, 0.0], [8.0, 9.0, 5.0, 3.0], [6.0, 1.0]]
    # Each epoch drew two int64 seeds from the default generator, as PyTorch's does.
    np.testing.assert_allclose(torch.rand(1).numpy(), [0.4556], atol=1e-4)


def test_sequential_batches_drop_last_and_still_draw_the_base_seed():
    torch.manual_seed(0)
    loader = DataLoader(dataset(), batch_size=3, drop_last=True)
    assert len(loader) == 3
    assert [batch[1].tolist() for batch in loader] == [[0, 2, 4], [6, 8, 10], [12, 14, 16]]
    # Starting an epoch draws one int64 from the default generator, shuffled or not.
    for epoch in (list, lambda loader: next(iter(loader))):
        torch.manual_seed(0)
        epoch(DataLoader(dataset(), batch_size=3))
        np.testing.assert_allclose(torch.rand(1).numpy(), [0.08847743], rtol=1e-6)


class Records(Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return {"x": float(i), "y": [i, i + 1], "name": f"s{i}", "a": np.ones(2) * i}


def test_default_collate_of_numbers_lists_strings_and_arrays():
    batch = next(iter(DataLoader(Records(), batch_size=2)))
    assert batch["x"].dtype == torch.float64 and batch["x"].tolist() == [0.0, 1.0]
    assert [t.tolist() for t in batch["y"]] == [[0, 1], [1, 2]]
    assert batch["name"] == ["s0", "s1"]
    assert batch["a"].dtype == torch.float64 and batch["a"].tolist() == [[0.0, 0.0], [1.0, 1.0]]


def test_random_split_concat_and_unbatched_loading():
    torch.manual_seed(0)
    list(DataLoader(dataset(), batch_size=4, shuffle=True))
    list(DataLoader(dataset(), batch_size=4, shuffle=True))
    list(DataLoader(dataset(), batch_size=3, drop_last=True))
    torch.rand(2)
    a, b = random_split(dataset(), [0.7, 0.3])
    assert (len(a), len(b)) == (7, 3)
    assert sorted(a.indices + b.indices) == list(range(10))
    assert [x for x in DataLoader(range(5), batch_size=None)] == [0, 1, 2, 3, 4]
    both = ConcatDataset([dataset(), dataset()])
    assert len(both) == 20 and both[12][1].item() == 4
    with pytest.raises(
        ValueError, match="^Sum of input lengths does not equal the length of the input dataset!$"
    ):
        random_split(range(5), [2, 2])


def test_random_split_permutation_is_pytorchs():
    torch.manual_seed(0)
    first, second = random_split(range(7), [5, 2])
    assert (list(first), list(second)) == ([4, 0, 5, 3, 2], [6, 1])  # PyTorch 2.15 split
    torch.manual_seed(0)
    expected = torch.randperm(7).tolist()
    assert list(first) == expected[:5] and list(second) == expected[5:]


class Stream(IterableDataset):
    def __iter__(self):
        return iter(range(7))


def test_iterable_dataset_batches_and_errors():
    assert [b.tolist() for b in DataLoader(Stream(), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(Stream(), shuffle=True)
    with pytest.raises(AssertionError, match="^Size mismatch between tensors$"):
        TensorDataset(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="^sampler option is mutually exclusive with shuffle$"):
        DataLoader(dataset(), sampler=[0, 1], shuffle=True)
