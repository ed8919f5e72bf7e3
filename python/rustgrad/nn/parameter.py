"""``nn.Parameter``: a tensor that a ``Module`` registers as one of its parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import rustgrad
from rustgrad import Tensor

if TYPE_CHECKING:
    from typing_extensions import Self


class Parameter(Tensor):
    """A leaf tensor that shares ``data``'s storage; assigning it to a ``Module`` attribute registers it."""

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> Self:
        if data is None:
            data = rustgrad.empty(0)
        # Tensor.__new__(cls, t) aliases t's storage in a fresh leaf of type cls (torch's _make_subclass).
        param = Tensor.__new__(cls, data)
        param.requires_grad_(requires_grad)
        return param

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.data.clone(), self.requires_grad)
        memo[id(self)] = result
        return result

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol: Any) -> tuple:
        return (_rebuild_parameter, (self.data, self.requires_grad))


def _rebuild_parameter(data: Tensor, requires_grad: bool) -> Parameter:
    return Parameter(data, requires_grad)
