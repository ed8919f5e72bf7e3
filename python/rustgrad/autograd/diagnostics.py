"""What PyTorch does not tell you: what the graph holds, and why a gradient is missing.

- ``graph_stats()``: live graph nodes (by kind) and the bytes their saved tensors hold.
- ``assert_no_live_graphs()``: for tests and training loops; fails naming what is still alive.
- ``explain(t)``: a plain answer to "why is ``t.grad`` None?" / "why doesn't ``t`` require grad?".
- ``saved_tensors_report(out)``: every tensor the graph behind ``out`` keeps for backward, with
  its shape, dtype, bytes, the op that saved it and where, and the total (what checkpointing
  would free), like JAX's ``print_saved_residuals``.
- ``record_sites(True)``: graph nodes remember the ``file:line`` of their forward call, so the
  in-place error says where the modified tensor was saved (it always says where it was modified).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

from rustgrad import _rustgrad

Tensor = _rustgrad.Tensor

__all__ = ["assert_no_live_graphs", "explain", "graph_stats", "record_sites", "saved_tensors_report"]


def graph_stats(by_kind: bool = False) -> dict:
    """``{"live_nodes": n, "saved_tensor_bytes": b}``, plus ``"nodes_by_kind": {"MulBackward0": k,
    ...}`` with ``by_kind=True`` (which walks every node slot: slower, for diagnosis).

    Counts are process-wide. A tensor saved by two nodes counts twice; a view counts the
    elements it shows."""
    stats: dict[str, object] = {"live_nodes": _rustgrad._live_nodes(), "saved_tensor_bytes": _rustgrad._saved_bytes()}
    if by_kind:
        stats["nodes_by_kind"] = {name.rsplit("::", 1)[-1]: n for name, n in _rustgrad._live_node_names()}
    return stats


def assert_no_live_graphs(baseline: int = 0) -> None:
    """Raises ``AssertionError`` if more than ``baseline`` graph nodes are alive, listing them.

    A graph stays alive while any tensor computed from a leaf that requires grad is referenced
    (a loss kept in a list, a ``.grad`` made with ``create_graph=True``...)."""
    live = _rustgrad._live_nodes()
    if live <= baseline:
        return
    kinds = ", ".join(f"{name.rsplit('::', 1)[-1]} x{n}" for name, n in _rustgrad._live_node_names())
    raise AssertionError(
        f"{live} autograd graph node(s) still alive (expected at most {baseline}): {kinds}. "
        "Some tensor computed with grad enabled is still referenced: drop it, or store "
        "`.detach()` / `.item()` instead of the tensor itself."
    )


class record_sites:
    """Makes new graph nodes remember where their forward call happened (a function, or a
    context manager restoring the previous setting). Costs ~0.1 us per recorded op."""

    def __init__(self, mode: bool = True) -> None:
        self.prev = _rustgrad._set_record_sites(bool(mode))

    def __enter__(self) -> None:
        pass

    def __exit__(self, *args) -> None:
        _rustgrad._set_record_sites(self.prev)


def _where(site: str | None) -> str:
    return f" at {site}" if site else ""


def explain(t: Tensor, output: Tensor | None = None) -> str:
    """Explains in plain words why ``t.grad`` is None or why ``t`` does not require grad.

    With ``output`` (e.g. the loss), also says whether ``output`` depends on ``t`` in the graph.
    Returns the explanation (one paragraph)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"explain() expects a Tensor, got {type(t).__name__}")
    dtype = repr(t.dtype)
    kind, site = t._origin()
    lines = []
    if not t.requires_grad:
        if not t.is_floating_point():
            lines.append(
                f"The tensor has dtype {dtype}: only floating-point tensors can require gradients, so "
                "nothing computed from it is differentiated."
            )
        elif kind == "no_grad":
            lines.append(
                f"It was computed{_where(site)} from tensors that require grad, but with gradient "
                "recording off (inside `no_grad()` or `set_grad_enabled(False)`), so it has no history. "
                "Compute it outside that block to differentiate through it."
            )
        elif kind == "inference":
            lines.append(
                f"It was computed{_where(site)} inside `inference_mode()`, so it has no history and is an "
                "inference tensor. Use `no_grad()` or compute it outside inference mode."
            )
        elif kind in ("detach", "data"):
            how = "`.detach()`" if kind == "detach" else "`.data`"
            lines.append(
                f"It was cut from the graph by {how}{_where(site)}: it shares the values but not the "
                "history, so no gradient flows back through it."
            )
        elif t.is_inference():
            lines.append("It is an inference tensor (created in `inference_mode()`): it can never require grad.")
        elif t.is_leaf:
            lines.append(
                "It is a leaf that was created without `requires_grad=True`. Pass `requires_grad=True` "
                "when creating it, or call `.requires_grad_()` before using it."
            )
        else:
            lines.append("It was computed only from tensors that do not require grad.")
    elif not t.is_leaf:
        name = type(t.grad_fn).__name__
        if t.retains_grad:
            lines.append(
                f"It is a non-leaf (grad_fn={name}) that retains its gradient; `.grad` is filled once a "
                "backward pass reaches it."
            )
        else:
            lines.append(
                f"It is not a leaf: it was computed by {name}. backward() fills `.grad` only for leaves. "
                "Call `.retain_grad()` on it before backward(), or use `torch.autograd.grad(output, t)`."
            )
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            grad = t.grad
        if grad is not None:
            lines.append(f"It is a leaf that requires grad and `.grad` is set (shape {list(grad.shape)}).")
        else:
            lines.append(
                "It is a leaf that requires grad, but no backward pass has reached it since it was created "
                "or since `.grad` was set to None (e.g. by `zero_grad()`)."
            )
    if output is not None:
        lines.append(_dependence(t, output))
    return " ".join(lines)


def _dependence(t: Tensor, output: Tensor) -> str:
    if output.grad_fn is None:
        return "The output has no history (grad_fn is None), so backward() from it reaches nothing."
    target = t.grad_fn if t.grad_fn is not None else None
    seen = set()
    stack: list[_rustgrad.Node | None] = [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if target is not None and node == target:
            return "The output depends on it through the graph."
        if target is None and type(node).__name__ == "AccumulateGrad" and node.variable is t:
            return "The output depends on it through the graph."
        stack.extend(fn for fn, _ in node.next_functions)
    return "The output does not depend on it in the graph: backward() from the output never reaches it."


class SavedTensorEntry(NamedTuple):
    """One tensor a graph keeps for backward. ``shape``, ``dtype`` are None (and ``nbytes`` 0)
    when a saved-tensor pack hook holds it instead; ``site`` is ``file:line`` of the forward
    call when ``record_sites`` was on."""

    op: str
    name: str
    shape: tuple | None
    dtype: object
    nbytes: int
    site: str | None


class SavedTensorsReport:
    """The tensors a graph keeps for backward (``entries``) and their ``total_bytes``; printing
    it gives a table, largest first."""

    def __init__(self, entries: list[SavedTensorEntry]) -> None:
        self.entries = entries
        self.total_bytes = sum(e.nbytes for e in entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __str__(self) -> str:
        rows = [("op", "saved", "shape", "dtype", "bytes", "where")]
        for e in sorted(self.entries, key=lambda e: -e.nbytes):
            shape = "packed by a hook" if e.shape is None else "[" + ", ".join(map(str, e.shape)) + "]"
            dtype = "" if e.dtype is None else str(e.dtype)
            rows.append((e.op, e.name, shape, dtype, f"{e.nbytes:,}", e.site or ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.append(f"{len(self.entries)} saved tensors, {self.total_bytes:,} bytes in total")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<SavedTensorsReport: {len(self.entries)} tensors, {self.total_bytes} bytes>"


def saved_tensors_report(*outputs: Tensor) -> SavedTensorsReport:
    """Lists every tensor the graph behind ``outputs`` keeps for backward: the op that saved it,
    PyTorch's name for it (``self``, ``other``, ``result``), its shape, dtype and bytes, and its
    ``file:line`` when ``record_sites(True)`` was on during the forward. A tensor saved by two
    ops counts twice; a view counts the elements it shows."""
    import rustgrad

    if len(outputs) == 1 and not isinstance(outputs[0], Tensor):
        outputs = tuple(outputs[0])
    entries = [
        SavedTensorEntry(
            op.rsplit("::", 1)[-1],
            name,
            None if shape is None else tuple(shape),
            None if dtype is None else getattr(rustgrad, dtype),
            nbytes,
            site,
        )
        for op, name, shape, dtype, nbytes, site in _rustgrad._saved_tensors_report(list(outputs))
    ]
    return SavedTensorsReport(entries)
