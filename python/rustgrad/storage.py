"""``torch.storage``: ``Tensor.storage()`` (a ``TypedStorage``) and ``Tensor.untyped_storage()``.

A storage is the flat buffer a tensor views. Both classes here read and write that buffer
through a 1-d tensor over all of it, so writes are seen by every tensor sharing the storage.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from rustgrad import _rustgrad

__all__ = ["TypedStorage", "UntypedStorage"]

_warned = [False]


def _warn_typed_storage_removal() -> None:
    if not _warned[0]:
        _warned[0] = True
        warnings.warn(
            "TypedStorage is deprecated. It will be removed in the future and UntypedStorage will be the only "
            "storage class. This should only matter to you if you are using storages directly.  To access "
            "UntypedStorage directly, use tensor.untyped_storage() instead of tensor.storage()",
            UserWarning,
            stacklevel=3,
        )


class TypedStorage:
    """The elements of a tensor's storage, of the tensor's dtype (``Tensor.storage()``).
    https://pytorch.org/docs/stable/storage.html"""

    def __init__(self, tensor: Any) -> None:
        self._elements = _rustgrad._storage_elements(tensor)

    @property
    def dtype(self) -> Any:
        """The dtype of the elements."""
        return self._elements.dtype

    @property
    def device(self) -> Any:
        """The device holding the storage (the CPU)."""
        return self._elements.device

    def size(self) -> int:
        """The number of elements."""
        return self._elements.numel()

    def __len__(self) -> int:
        return self._elements.numel()

    def element_size(self) -> int:
        """Bytes per element."""
        return self._elements.element_size()

    def nbytes(self) -> int:
        """Bytes of the whole storage."""
        return self._elements.numel() * self._elements.element_size()

    def data_ptr(self) -> int:
        """Address of the first element."""
        return self._elements.data_ptr()

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self._elements[index].tolist()
        return self._elements[index].item()

    def __setitem__(self, index: Any, value: Any) -> None:
        self._elements[index] = value

    def __iter__(self) -> Iterator[Any]:
        return iter(self._elements.tolist())

    def tolist(self) -> list:
        """The elements as a Python list."""
        return self._elements.tolist()

    def fill_(self, value: Any) -> TypedStorage:
        """Writes ``value`` into every element."""
        self._elements.fill_(value)
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TypedStorage) and self.data_ptr() == other.data_ptr() and len(self) == len(other)

    def __hash__(self) -> int:
        return hash((self.data_ptr(), len(self)))

    def __repr__(self) -> str:
        dtype = repr(self.dtype)
        head = "".join(f" {v}\n" for v in self.tolist())
        return f"{head}[torch.storage.TypedStorage(dtype={dtype}, device=cpu) of size {len(self)}]"

    __str__ = __repr__


class UntypedStorage:
    """The bytes of a tensor's storage (``Tensor.untyped_storage()``).
    https://pytorch.org/docs/stable/storage.html"""

    def __init__(self, tensor: Any) -> None:
        self._elements = _rustgrad._storage_elements(tensor)

    @property
    def device(self) -> Any:
        """The device holding the storage (the CPU)."""
        return self._elements.device

    def nbytes(self) -> int:
        """Bytes of the whole storage."""
        return self._elements.numel() * self._elements.element_size()

    def size(self) -> int:
        """Bytes of the whole storage."""
        return self.nbytes()

    def __len__(self) -> int:
        return self.nbytes()

    def data_ptr(self) -> int:
        """Address of the first byte."""
        return self._elements.data_ptr()

    def _bytes(self) -> list:
        import numpy as np

        values = self._elements
        if repr(values.dtype) == "torch.bfloat16":
            raw = values.view(_rustgrad.int16).numpy()
        else:
            raw = values.numpy()
        return list(np.ascontiguousarray(raw).view(np.uint8))

    def __getitem__(self, index: Any) -> Any:
        b = self._bytes()
        return [int(v) for v in b[index]] if isinstance(index, slice) else int(b[index])

    def tolist(self) -> list:
        """The bytes as a list of ints."""
        return [int(v) for v in self._bytes()]

    def __iter__(self) -> Iterator[int]:
        return iter(self.tolist())

    def __repr__(self) -> str:
        head = "".join(f" {v}\n" for v in self.tolist())
        return f"{head}[torch.storage.UntypedStorage(device=cpu) of size {len(self)}]"

    __str__ = __repr__


def tensor_storage(self: Any) -> TypedStorage:
    """``Tensor.storage()``: the tensor's storage as typed elements (deprecated in PyTorch, warns once).
    https://pytorch.org/docs/stable/generated/torch.Tensor.storage.html"""
    _warn_typed_storage_removal()
    return TypedStorage(self)


def tensor_untyped_storage(self: Any) -> UntypedStorage:
    """``Tensor.untyped_storage()``: the tensor's storage as bytes.
    https://pytorch.org/docs/stable/generated/torch.Tensor.untyped_storage.html"""
    return UntypedStorage(self)


def install(tensor_class: type) -> None:
    """Attaches ``storage`` and ``untyped_storage`` to ``Tensor``."""
    for name, fn in (("storage", tensor_storage), ("untyped_storage", tensor_untyped_storage)):
        if name not in vars(tensor_class):
            setattr(tensor_class, name, fn)
