"""arange in PyTorch's order (note [arange in PyTorch's order]) and Tensor.storage()/untyped_storage()."""

import warnings

import pytest
import rustgrad as torch


def test_arange_float32_values_are_pytorchs():
    # Recorded from PyTorch 2.15: the vector lanes are built from a rounded first value.
    assert torch.arange(-3, 3.1, 0.1)[[28, 29, 30, 54]].tolist() == [
        -0.20000001788139343,
        -0.10000002384185791,
        -2.3841858265427618e-08,
        2.4000000953674316,
    ]
    assert torch.arange(0.0, 1.0, 0.01)[[84, 91]].tolist() == [0.8400000333786011, 0.9099999666213989]
    assert torch.arange(10, 0, -0.3)[-4:].tolist() == [
        0.9999999403953552,
        0.6999999284744263,
        0.4000000059604645,
        0.10000000149011612,
    ]


def test_arange_float64_values_are_pytorchs():
    assert torch.arange(10, 0, -0.3, dtype=torch.float64)[-3:].tolist() == [
        0.7000000000000004,
        0.40000000000000036,
        0.10000000000000037,
    ]
    assert torch.arange(-1, 1, 0.013, dtype=torch.float64)[-3:].tolist() == [
        0.963,
        0.9759999999999999,
        0.9889999999999999,
    ]


def test_arange_prints_as_pytorch():
    assert "-2.3842e-08" in repr(torch.arange(-3, 3.1, 0.1))


def test_typed_storage_reads_and_writes_the_shared_buffer():
    points = torch.tensor([[4.0, 1.0], [5.0, 3.0], [2.0, 1.0]])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        s = points.storage()
    assert len(s) == 6 and s.size() == 6 and s.dtype is torch.float32
    assert s[0] == 4.0 and s[1] == 1.0 and s.tolist() == [4.0, 1.0, 5.0, 3.0, 2.0, 1.0]
    s[0] = 2.0
    assert points[0, 0].item() == 2.0
    second = points[1]
    assert second.storage_offset() == 2
    assert second.storage().tolist() == points.storage().tolist()  # the whole buffer, not the view
    assert points.t().storage().data_ptr() == points.storage().data_ptr()
    assert repr(torch.tensor([1.5, 2.0]).storage()) == (
        " 1.5\n 2.0\n[torch.storage.TypedStorage(dtype=torch.float32, device=cpu) of size 2]"
    )


def test_untyped_storage_is_bytes():
    u = torch.tensor([1.0]).untyped_storage()
    assert len(u) == 4 and u.nbytes() == 4
    assert u.tolist() == [0, 0, 128, 63]
    with pytest.raises(IndexError):
        u[4]
