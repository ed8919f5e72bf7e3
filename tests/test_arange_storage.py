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


def test_linspace_values_are_pytorchs():
    # Recorded from PyTorch 2.15: each value is one fused multiply-add from its nearer end.
    assert torch.linspace(0, 1, 50)[[27, 33, 44]].tolist() == [
        0.5510204434394836,
        0.6734694242477417,
        0.8979591727256775,
    ]
    assert torch.linspace(2, -5, 77)[[9, 60, 62]].tolist() == [
        1.1710526943206787,
        -3.526315689086914,
        -3.71052622795105,
    ]
    assert torch.linspace(-1, 3, 64, dtype=torch.float64)[[20, 50]].tolist() == [
        0.26984126984126977,
        2.174603174603175,
    ]


def test_histogram_counts_edges_density_and_weights():
    x = torch.tensor([0.1, 0.5, 0.5, 0.9, 1.0, -0.3])
    h = torch.histogram(x, bins=4)
    assert h.hist.tolist() == [1.0, 1.0, 2.0, 2.0]
    assert h.bin_edges.tolist() == [
        -0.30000001192092896,
        0.02499997615814209,
        0.3500000238418579,
        0.675000011920929,
        1.0,
    ]
    hist, edges = torch.histogram(x, bins=3, density=True)
    assert edges.shape == (4,)
    assert hist.tolist() == [0.769230842590332, 0.7692306041717529, 0.7692309021949768]
    w = torch.histogram(
        torch.tensor([1.0, 2, 1]), bins=4, range=(0.0, 3.0), weight=torch.tensor([1.0, 2.0, 4.0])
    )
    assert w.hist.tolist() == [0.0, 5.0, 2.0, 0.0]
    assert "torch.return_types.histogram(" in repr(h)


def test_autograd_graph_node_is_the_class_of_grad_fn():
    a = torch.zeros(3, requires_grad=True)
    assert isinstance(a.clone().grad_fn, torch.autograd.graph.Node)
