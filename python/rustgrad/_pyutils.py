"""Helpers shared by ``nn`` and ``optim``: ``RemovableHandle`` (``torch.utils.hooks``) and ``typename``."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from rustgrad._rustgrad import Tensor

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["RemovableHandle", "typename"]


def typename(obj: Any) -> str:
    """``torch.typename``: ``'int'``, ``'torch.FloatTensor'``, ``'mypkg.MyClass'``."""
    if isinstance(obj, Tensor):
        from rustgrad._legacy import LEGACY_NAME_OF_DTYPE

        dtype_name = str(obj.dtype).replace("torch.", "")
        return "torch." + LEGACY_NAME_OF_DTYPE.get(dtype_name, "Tensor")
    module = getattr(obj, "__module__", "") or ""
    if hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
    elif hasattr(obj, "__name__"):
        qualname = obj.__name__
    else:
        module = obj.__class__.__module__ or ""
        qualname = obj.__class__.__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"


class RemovableHandle:
    """Returned by ``register_*_hook``: ``handle.remove()`` (or leaving a ``with`` block) removes the hook."""

    next_id: int = 0

    def __init__(self, hooks_dict: dict, *, extra_dict: dict | list | None = None) -> None:
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        extra = [extra_dict] if isinstance(extra_dict, dict) else (extra_dict or [])
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extra)

    def remove(self) -> None:
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            hooks = ref()
            if hooks is not None and self.id in hooks:
                del hooks[self.id]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()
