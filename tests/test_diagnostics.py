"""rustgrad's diagnostics beyond PyTorch: graph_stats, assert_no_live_graphs, explain, the
create_graph reference-cycle warning, and where an in-place error's tensor was saved/modified."""

import gc
import warnings

import pytest
import rustgrad as torch

pytestmark = pytest.mark.skipif(not hasattr(torch, "_rustgrad"), reason="rustgrad-only diagnostics")

HERE = __file__


def line_of(marker):
    """The line number of the source line containing ``marker`` in this file."""
    with open(HERE) as f:
        for i, text in enumerate(f, 1):
            if marker in text and "line_of(" not in text:
                return i
    raise AssertionError(marker)


def test_graph_stats_counts_nodes_and_saved_bytes():
    gc.collect()
    before = torch.autograd.graph_stats()
    x = torch.ones(1000, dtype=torch.float64, requires_grad=True)
    y = x.exp()  # saves its output: 8000 bytes
    z = (y * x).sum()  # mul saves both inputs: 16000 bytes
    stats = torch.autograd.graph_stats(by_kind=True)
    assert stats["saved_tensor_bytes"] - before["saved_tensor_bytes"] == 24000
    assert stats["live_nodes"] - before["live_nodes"] == 4  # Exp, Mul, Sum, AccumulateGrad
    assert stats["nodes_by_kind"]["ExpBackward0"] >= 1 and stats["nodes_by_kind"]["AccumulateGrad"] >= 1
    z.backward()  # frees the saved tensors, not the nodes (z, y still hold them)
    assert torch.autograd.graph_stats()["saved_tensor_bytes"] == before["saved_tensor_bytes"]
    del y, z
    assert torch.autograd.graph_stats()["live_nodes"] == before["live_nodes"]


def test_assert_no_live_graphs_names_what_is_alive():
    gc.collect()
    base = torch.autograd.graph_stats()["live_nodes"]
    torch.autograd.assert_no_live_graphs(baseline=base)
    x = torch.ones(3, requires_grad=True)
    kept = [(x * 2).sum()]  # a loss kept in a list keeps its graph
    with pytest.raises(AssertionError, match=r"autograd graph node\(s\) still alive .*MulBackward0 x"):
        torch.autograd.assert_no_live_graphs(baseline=base)
    kept.clear()
    torch.autograd.assert_no_live_graphs(baseline=base)


def test_create_graph_cycle_warning_only_when_the_cycle_exists():
    x = torch.tensor(2.0, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (x * 3).backward(create_graph=True)  # .grad is a constant: no cycle
    assert not [w for w in caught if "reference cycle" in str(w.message)]
    assert x.grad.grad_fn is None and x.grad.item() == 3.0
    x.grad = None
    with pytest.warns(UserWarning, match=r"create a reference cycle.*1 leaf tensor\(s\) of shape \[\]"):
        (x**3).backward(create_graph=True)  # .grad = 3x^2 depends on x
    assert x.grad.item() == 12.0
    gc.collect()
    base = torch.autograd.graph_stats()["live_nodes"]
    x.grad = None  # breaks the cycle
    assert torch.autograd.graph_stats()["live_nodes"] < base


def test_inplace_error_says_where_the_tensor_was_modified():
    x = torch.ones(3, requires_grad=True)
    y = x.exp()
    y.add_(1)  # MODIFIED-HERE
    line = line_of("# MODIFIED-HERE")
    with pytest.raises(RuntimeError) as err:
        y.sum().backward()
    # The message stays PyTorch's; the details are a note shown under the traceback.
    assert str(err.value).endswith("set_detect_anomaly(True, check_nan=False).")
    (note,) = err.value.__notes__
    assert note.startswith("The tensor was saved for backward by Exp (call rustgrad.autograd.record_sites(True)")
    assert note.endswith(f"then modified by add_ at {HERE}:{line}.")


def test_inplace_error_says_where_it_was_saved_when_sites_are_recorded():
    x = torch.ones(3, requires_grad=True)
    with torch.autograd.record_sites(True):
        y = x.sigmoid()  # SAVED-HERE
        y[0] = 2.0  # SETITEM-HERE
    saved, modified = line_of("# SAVED-HERE"), line_of("# SETITEM-HERE")
    with pytest.raises(RuntimeError) as err:
        y.sum().backward()
    assert str(err.value).startswith("one of the variables needed for gradient computation has been modified")
    (note,) = err.value.__notes__
    assert note == (f"The tensor was saved for backward by Sigmoid at {HERE}:{saved}, "
                    f"then modified by __setitem__ at {HERE}:{modified}.")


def test_explain_no_grad_and_detach_name_the_line():
    x = torch.ones(2, requires_grad=True)
    with torch.no_grad():
        y = x * 2  # NO-GRAD-HERE
    d = x.detach()  # DETACH-HERE
    text = torch.autograd.explain(y)
    assert "gradient recording off" in text and f"{HERE}:{line_of('# NO-GRAD-HERE')}" in text
    text = torch.autograd.explain(d)
    assert "`.detach()`" in text and f"{HERE}:{line_of('# DETACH-HERE')}" in text


def test_explain_other_cases():
    x = torch.ones(2, requires_grad=True)
    w = x * 3
    assert "not a leaf: it was computed by MulBackward0" in torch.autograd.explain(w)
    assert "only floating-point tensors can require gradients" in torch.autograd.explain(torch.arange(3))
    assert "created without `requires_grad=True`" in torch.autograd.explain(torch.ones(2))
    loss = (w * 2).sum()
    assert "The output depends on it" in torch.autograd.explain(x, output=loss)
    other = torch.ones(2, requires_grad=True)
    assert "does not depend on it" in torch.autograd.explain(other, output=loss)
    loss.backward()
    assert "`.grad` is set" in torch.autograd.explain(x)
    with torch.inference_mode():
        i = x * 2
    assert "inference_mode()" in torch.autograd.explain(i)
