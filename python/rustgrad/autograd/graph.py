"""``torch.autograd.graph``: the graph's nodes, saved-tensor hooks and gradient edges.

https://pytorch.org/docs/stable/autograd.html#autograd-graph
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any, NamedTuple

from rustgrad import _rustgrad
from rustgrad._pyutils import RemovableHandle
from rustgrad._rustgrad import Node

__all__ = [
    "GradientEdge",
    "Node",
    "allow_mutation_on_saved_tensors",
    "disable_saved_tensors_hooks",
    "get_gradient_edge",
    "increment_version",
    "register_multi_grad_hook",
    "save_on_cpu",
    "saved_tensors_hooks",
]


class GradientEdge(NamedTuple):
    """Where a gradient flows: input ``output_nr`` of ``node``. Accepted as ``inputs`` of
    ``autograd.grad``, to take the gradient with respect to a tensor's history at that point."""

    node: Node
    output_nr: int
    ownership_token: Any = None


def get_gradient_edge(tensor: Any) -> GradientEdge:
    """The edge ``tensor``'s gradient flows along: its ``grad_fn`` and output number, or the
    ``AccumulateGrad`` node of a leaf."""
    if not tensor.requires_grad:
        raise RuntimeError("It is not possible to get the gradient edge for a Tensor that does not require gradients")
    node, output_nr = _rustgrad._gradient_edge(tensor)
    return GradientEdge(node, output_nr)


def increment_version(tensor: Any) -> None:
    """Marks ``tensor`` (or each of an iterable of tensors) as modified in place, as an in-place
    op would: a graph that saved it then refuses to use it."""
    tensors = (tensor,) if isinstance(tensor, _rustgrad.Tensor) else tuple(tensor)
    for t in tensors:
        _rustgrad._increment_version(t)


class saved_tensors_hooks:
    """Within this context, every tensor an op saves for backward is given to ``pack_hook``,
    and the graph keeps what it returns; backward gets the tensor back from
    ``unpack_hook(packed)``. The hooks are per thread, and nest (the inner pair wins)."""

    def __init__(self, pack_hook: Callable[[Any], Any], unpack_hook: Callable[[Any], Any]) -> None:
        self.pack_hook = pack_hook
        self.unpack_hook = unpack_hook

    def __enter__(self) -> None:
        _rustgrad._push_saved_tensors_hooks(self.pack_hook, self.unpack_hook)

    def __exit__(self, *args: object) -> None:
        _rustgrad._pop_saved_tensors_hooks()


class save_on_cpu(saved_tensors_hooks):
    """Saved tensors are kept as copies in CPU memory and moved back to their device for
    backward. Every tensor here lives on the CPU already, so the copy is what remains."""

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda") -> None:
        def pack_to_cpu(tensor: Any) -> tuple[Any, Any]:
            return (tensor.device, tensor.detach().clone())

        def unpack_from_cpu(packed: tuple[Any, Any]) -> Any:
            device, tensor = packed
            return tensor.to(device, non_blocking=pin_memory)

        super().__init__(pack_to_cpu, unpack_from_cpu)


@contextlib.contextmanager
def disable_saved_tensors_hooks(error_message: str) -> Generator[None, None, None]:
    """Within this context, installing saved-tensor hooks raises ``RuntimeError(error_message)``
    (so does entering it while hooks are in force)."""
    previous = _rustgrad._disable_saved_tensors_hooks(error_message)
    try:
        yield
    finally:
        _rustgrad._restore_saved_tensors_hooks(previous)


class _AllowMutationOnSavedContext:
    """What ``allow_mutation_on_saved_tensors`` yields."""


@contextlib.contextmanager
def allow_mutation_on_saved_tensors() -> Generator[_AllowMutationOnSavedContext, None, None]:
    """Within this context, a tensor saved for backward may be modified in place afterwards:
    backward uses the values it had when it was saved. (Each saved tensor is copied when saved.)"""

    def keep_copy(tensor: Any) -> Any:
        return tensor.detach().clone()

    def give_back(copy: Any) -> Any:
        return copy

    with saved_tensors_hooks(keep_copy, give_back):
        yield _AllowMutationOnSavedContext()


class _MultiHandle(RemovableHandle):
    """Removes every hook ``register_multi_grad_hook`` registered."""

    def __init__(self, handles: tuple) -> None:
        self.handles = handles

    def remove(self) -> None:
        """Removes the hooks."""
        for handle in self.handles:
            handle.remove()


def _grad_fn_or_accumulator(tensor: Any) -> Any:
    return tensor.grad_fn if tensor.grad_fn is not None else get_gradient_edge(tensor).node


def register_multi_grad_hook(tensors: Sequence[Any], fn: Callable, *, mode: str = "all") -> RemovableHandle:
    """Calls ``fn`` once per backward in which gradients of ``tensors`` are computed: with
    ``mode="all"``, after all of them are (``fn(grads)``, ``None`` for a tensor that backward
    does not reach); with ``mode="any"``, at the first one (``fn(grad)``)."""
    if mode not in ("all", "any"):
        raise ValueError(f"Expects mode to be one of ('all', 'any') but got {mode}")
    lock = threading.Lock()
    tensors = tuple(tensors)
    if mode == "any":
        fired: set[int] = set()

        def first_only(grad: Any) -> None:
            task = _rustgrad._current_graph_task_id()
            with lock:
                if task in fired:
                    return
                fired.add(task)
            fn(grad)

        return _MultiHandle(tuple(t.register_hook(first_only) for t in tensors if t.requires_grad))

    # Per backward run: how many gradients are still to come, and those that came.
    pending: dict[int, list] = {}

    def collector(i: int) -> Callable:
        def collect(grad: Any) -> None:
            task = _rustgrad._current_graph_task_id()
            with lock:
                if task not in pending:
                    expected = sum(
                        _rustgrad._will_engine_execute_node(_grad_fn_or_accumulator(t))
                        for t in tensors
                        if t.requires_grad
                    )
                    pending[task] = [expected, [None] * len(tensors)]
                entry = pending[task]
                entry[1][i] = grad
                entry[0] -= 1
                complete = entry[0] == 0
                if complete:
                    del pending[task]
            if complete:
                fn(entry[1])

        return collect

    return _MultiHandle(tuple(t.register_hook(collector(i)) for i, t in enumerate(tensors) if t.requires_grad))
