"""``torch.autograd.graph``: the graph's nodes, saved-tensor hooks and gradient edges.

https://pytorch.org/docs/stable/autograd.html#autograd-graph
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from typing import Any, NamedTuple

from rustgrad import _rustgrad
from rustgrad._rustgrad import Node

__all__ = [
    "GradientEdge",
    "Node",
    "disable_saved_tensors_hooks",
    "get_gradient_edge",
    "increment_version",
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
