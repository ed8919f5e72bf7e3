"""``rustgrad.autograd``: backward, grad, grad mode and graph diagnostics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

from rustgrad import _rustgrad
from rustgrad._rustgrad import Node
from rustgrad.autograd import forward_ad, function, functional, graph, profiler, profiler_util
from rustgrad.autograd.anomaly_mode import detect_anomaly, set_detect_anomaly
from rustgrad.autograd.diagnostics import (
    assert_no_live_graphs,
    explain,
    graph_stats,
    record_sites,
    saved_tensors_report,
)
from rustgrad.autograd.function import Function, once_differentiable
from rustgrad.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from rustgrad.func import _batched
from rustgrad.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
    set_multithreading_enabled,
)

Tensor = _rustgrad.Tensor
_TensorOrTensors = Union[Tensor, Sequence[Tensor]]

__all__ = [
    "Function",
    "GradcheckError",
    "Node",
    "Variable",
    "assert_no_live_graphs",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "explain",
    "forward_ad",
    "function",
    "functional",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "graph",
    "graph_stats",
    "inference_mode",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "no_grad",
    "once_differentiable",
    "profiler",
    "profiler_util",
    "record_sites",
    "saved_tensors_report",
    "set_detect_anomaly",
    "set_grad_enabled",
    "set_multithreading_enabled",
]


class _VariableMeta(type):
    def __instancecheck__(cls, other: Any) -> bool:
        return isinstance(other, Tensor)


class Variable(metaclass=_VariableMeta):
    """Legacy ``torch.autograd.Variable``: every tensor is one; calling it gives a tensor sharing
    ``data``'s elements, a leaf that requires grad if asked."""

    def __new__(cls, data: Any = None, requires_grad: bool = False, volatile: bool = False) -> Any:
        if volatile:
            import warnings

            warnings.warn(
                "volatile was removed and now has no effect. Use `with torch.no_grad():` instead.",
                UserWarning,
                stacklevel=2,
            )
        if data is None:
            from rustgrad import tensor

            data = tensor([])
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        return data.detach().requires_grad_(requires_grad)


def _check_outputs(outputs: Any, grads: Any) -> None:
    """PyTorch pairs outputs with their gradients (as ``zip`` does) and refuses an output that is
    not a tensor with an ``AssertionError``, before reading anything else of it."""
    outs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
    if grads is None:
        grads = (None,) * len(outs)
    elif isinstance(grads, Tensor):
        grads = (grads,)
    else:
        grads = tuple(grads)
    for out, _ in zip(outs, grads):
        if not isinstance(out, Tensor):
            raise AssertionError("Expected output to be a torch.Tensor")  # noqa: TRY004 (PyTorch's class)
    if len(grads) != len(outs) and not all(isinstance(out, Tensor) for out in outs):
        # An output past the gradients is not looked at: the count is the engine's complaint.
        raise RuntimeError(f"got {len(outs)} tensors and {len(grads)} gradients")


def backward(
    tensors: _TensorOrTensors,
    grad_tensors: _TensorOrTensors | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    grad_variables: _TensorOrTensors | None = None,
    inputs: _TensorOrTensors | None = None,
) -> None:
    """Accumulates the gradients of ``tensors`` into the ``.grad`` of the leaves (or of ``inputs``)."""
    if grad_variables is not None:
        if grad_tensors is not None:
            raise RuntimeError("'grad_tensors' and 'grad_variables' (deprecated) arguments both passed to backward().")
        grad_tensors = grad_variables
    if inputs is not None and not isinstance(inputs, Tensor) and len(inputs) == 0:
        raise RuntimeError("'inputs' argument to backward() cannot be empty.")
    _check_outputs(tensors, grad_tensors)
    _rustgrad._backward(tensors, grad_tensors, retain_graph, create_graph, inputs)


def _grad_batched(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any,
    retain_graph: bool | None,
    create_graph: bool,
    allow_unused: bool | None,
    materialize_grads: bool,
) -> tuple:
    """``autograd.grad`` with ``is_grads_batched=True``: the first dimension of each gradient is a
    batch, one vector-Jacobian product per entry (computed one after another), stacked."""
    from rustgrad import ones_like, stack

    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if grad_outputs is None:
        grads = [ones_like(o) for o in outs]
    elif isinstance(grad_outputs, Tensor):
        grads = [grad_outputs]
    else:
        grads = list(grad_outputs)
    for i, (g, o) in enumerate(zip(grads, outs)):
        if g is None:
            continue
        if g.dim() == 0:
            raise ValueError(
                "vmap(vjp, in_dims=0, ...)(<inputs>): Got in_dim=0 for some input, but that input is a Tensor of "
                "dimensionality 0 so expected in_dim to satisfy 0 <= in_dim < 0."
            )
        if tuple(g.shape[1:]) != tuple(o.shape):
            raise RuntimeError(
                "If `is_grads_batched=True`, we interpret the first dimension of each grad_output as the batch "
                "dimension. The sizes of the remaining dimensions are expected to match the shape of corresponding "
                f"output, but a mismatch was detected: grad_output[{i}] has a shape of {g.shape[1:]} and "
                f"output[{i}] has a shape of {o.shape}. If you only want some tensors in `grad_output` to be "
                "considered batched, consider using vmap."
            )
    sizes = {g.shape[0] for g in grads if g is not None}
    if len(sizes) > 1:
        raise ValueError(
            "vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
            f"{[g.shape[0] for g in grads if g is not None]} for the mapped dimension"
        )
    batch = sizes.pop() if sizes else 1
    rows = []
    for b in range(batch):
        last = b == batch - 1
        keep = retain_graph if last and retain_graph is not None else (create_graph if last else True)
        rows.append(
            grad(
                outs,
                inputs,
                [None if g is None else g[b] for g in grads],
                retain_graph=keep,
                create_graph=create_graph,
                allow_unused=allow_unused,
                materialize_grads=materialize_grads,
            )
        )
    return tuple(None if column[0] is None else stack(list(column)) for column in zip(*rows))


def _grad_inside_vmap(
    outputs: Any, inputs: Any, grad_outputs: Any, create_graph: bool, allow_unused: bool | None, materialize: bool
) -> tuple:
    """``grad`` of batched tensors (inside ``vmap``): one backward through their physical tensors."""
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    cts = None if grad_outputs is None else [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs)
    found = _batched.physical_grads(outs, ins, cts, create_graph)
    if not allow_unused and not materialize and any(g is None for g in found):
        raise RuntimeError(
            "One of the differentiated Tensors appears to not have been used in the graph. Set allow_unused=True if "
            "this is the desired behavior."
        )
    if materialize:
        found = [_batched.rustgrad_zeros_like(x) if g is None else g for g, x in zip(found, ins)]
    return tuple(found)


def grad(
    outputs: _TensorOrTensors,
    inputs: Any,
    grad_outputs: _TensorOrTensors | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    only_inputs: bool = True,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
) -> tuple:
    """Returns the gradients of ``outputs`` with respect to ``inputs`` (a tuple)."""
    if is_grads_batched:
        return _grad_batched(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads)
    if materialize_grads and allow_unused is False:
        raise ValueError(
            "Expected allow_unused to be True or not passed when materialize_grads=True, but got: allow_unused=False."
        )
    if materialize_grads:
        allow_unused = True
    if isinstance(inputs, graph.GradientEdge):
        inputs = (inputs,)
    if _batched.has_batched((outputs, inputs, grad_outputs), {}):
        return _grad_inside_vmap(outputs, inputs, grad_outputs, create_graph, allow_unused, materialize_grads)
    _check_outputs(outputs, grad_outputs)
    result = _rustgrad._grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused)
    if materialize_grads:
        from rustgrad import zeros_like

        ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        result = tuple(zeros_like(i) if g is None else g for g, i in zip(result, ins))
    return result
