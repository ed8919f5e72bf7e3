"""``parameters_to_vector`` and ``vector_to_parameters``: all parameters as one flat vector and back."""

from __future__ import annotations

from collections.abc import Iterable

import rustgrad
from rustgrad import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """The parameters flattened and concatenated into one vector (differentiable: ``CatBackward0``).
    https://pytorch.org/docs/stable/generated/torch.nn.utils.parameters_to_vector.html"""
    return rustgrad.cat([param.view(-1) for param in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copies consecutive slices of ``vec`` into the parameters' data, in order.
    https://pytorch.org/docs/stable/generated/torch.nn.utils.vector_to_parameters.html"""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {rustgrad.typename(vec)}")
    pointer = 0
    for param in parameters:
        num_param = param.numel()
        param.data = vec[pointer : pointer + num_param].view_as(param).data
        pointer += num_param
