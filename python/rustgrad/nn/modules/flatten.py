"""``nn.Flatten`` and ``nn.Unflatten``."""

from __future__ import annotations

from rustgrad import Tensor
from rustgrad.nn.modules.module import Module

__all__ = ["Flatten", "Unflatten"]


class Flatten(Module):
    """Flattens dimensions ``start_dim`` through ``end_dim`` (by default all but the batch dimension).
    https://pytorch.org/docs/stable/generated/torch.nn.Flatten.html"""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        """``input.flatten(start_dim, end_dim)``."""
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr."""
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


def _unflatten(input: Tensor, dim: int, sizes: tuple | list) -> Tensor:
    """``input`` with dimension ``dim`` split into ``sizes`` (one of which may be -1), as a view when
    the layout allows (PyTorch's ``Tensor.unflatten``, with its messages)."""
    sizes = list(sizes)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    ndim = input.dim()
    unexpected = "unflatten got an unexpected error:\n"
    if ndim == 0:
        raise RuntimeError(f"{unexpected}Dimension specified as {dim} but tensor has no dimensions")
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})")
    dim %= ndim
    numel = input.shape[dim]
    # ATen's infer_size: -1 at most once, no other negative size, and a product that fits.
    infer, known = None, 1
    for i, s in enumerate(sizes):
        if s == -1:
            if infer is not None:
                raise RuntimeError(f"{unexpected}only one dimension can be inferred")
            infer = i
        elif s >= 0:
            known *= s
        else:
            raise RuntimeError(f"{unexpected}invalid shape dimension {s} at index {i} of shape {sizes}")
    if not (numel == known or (infer is not None and known > 0 and numel % known == 0)):
        raise RuntimeError(
            f"unflatten: Provided sizes {sizes} don't multiply up to the size of dim {dim} ({numel}) "
            "in the input tensor"
        )
    if infer is not None:
        if known == 0:
            raise RuntimeError(
                f"{unexpected}cannot reshape tensor of 0 elements into shape {sizes} because the "
                "unspecified dimension size -1 can be any value and is ambiguous"
            )
        sizes[infer] = numel // known
    # Splitting one dimension is always a view.
    return input.view(*input.shape[:dim], *sizes, *input.shape[dim + 1 :])


class Unflatten(Module):
    """Splits dimension ``dim`` into ``unflattened_size`` (a tuple or list of ints).
    https://pytorch.org/docs/stable/generated/torch.nn.Unflatten.html"""

    def __init__(self, dim: int, unflattened_size: tuple | list) -> None:
        super().__init__()
        self._require_tuple_int(unflattened_size)
        self.dim = dim
        self.unflattened_size = unflattened_size

    def _require_tuple_int(self, input: object) -> None:
        if isinstance(input, (tuple, list)):
            for idx, elem in enumerate(input):
                if not isinstance(elem, int):
                    raise TypeError(
                        "unflattened_size must be tuple of ints, "
                        f"but found element of type {type(elem).__name__} at pos {idx}"
                    )
            return
        raise TypeError(f"unflattened_size must be a tuple of ints, but found type {type(input).__name__}")

    def forward(self, input: Tensor) -> Tensor:
        """``input.unflatten(dim, unflattened_size)``.
        https://pytorch.org/docs/stable/generated/torch.nn.Unflatten.html#torch.nn.Unflatten.forward"""
        return _unflatten(input, self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        """The constructor arguments shown in the module's repr.
        https://pytorch.org/docs/stable/generated/torch.nn.Unflatten.html#torch.nn.Unflatten.extra_repr"""
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
