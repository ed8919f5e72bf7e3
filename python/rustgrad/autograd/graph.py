"""``torch.autograd.graph``: the class of the graph's nodes (``x.grad_fn``).

``saved_tensors_hooks``, ``save_on_cpu`` and ``register_multi_grad_hook`` are not provided yet: the
engine has no pack/unpack hooks for saved tensors.
https://pytorch.org/docs/stable/autograd.html#autograd-graph
"""

from rustgrad._rustgrad import Node

__all__ = ["Node"]
