"""``torch.version``: the version of this package and of the toolkits it was built with (none: CPU only).
https://pytorch.org/docs/stable/torch.html"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["TorchVersion", "__version__", "cuda", "debug", "git_version", "hip", "xpu"]

_RELEASE = re.compile(r"v?(\d+(?:\.\d+)*)(.*)")


class TorchVersion(str):
    """A version string that compares as a version, as PyTorch's ``torch.__version__`` does:
    ``torch.__version__ >= "1.8"`` and ``torch.__version__ >= (1, 8)`` compare release numbers
    (``"0.10" > "0.9"``), a local suffix such as ``+cpu`` sorts after the plain release.
    https://pytorch.org/docs/stable/torch.html"""

    __slots__ = ()

    @staticmethod
    def _key(v: Any) -> tuple | None:
        if isinstance(v, tuple) and all(isinstance(p, int) for p in v):
            return (_padded(v), 0)
        if isinstance(v, str):
            main, _, local = v.partition("+")
            m = _RELEASE.fullmatch(main)
            if m is None or m.group(2):
                return None
            return (_padded(tuple(int(p) for p in m.group(1).split("."))), 1 if local else 0)
        return None

    def _cmp(self, other: Any, op: str) -> Any:
        mine, theirs = self._key(str(self)), self._key(other)
        a: Any
        b: Any
        if isinstance(other, (tuple, str)) and mine is not None and theirs is not None:
            a, b = mine, theirs
        elif isinstance(other, str):
            a, b = str(self), other  # not a version: plain string order
        else:
            return NotImplemented
        return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b, "eq": a == b, "ne": a != b}[op]

    def __lt__(self, other: Any) -> Any:
        return self._cmp(other, "lt")

    def __le__(self, other: Any) -> Any:
        return self._cmp(other, "le")

    def __gt__(self, other: Any) -> Any:
        return self._cmp(other, "gt")

    def __ge__(self, other: Any) -> Any:
        return self._cmp(other, "ge")

    def __eq__(self, other: object) -> Any:
        return self._cmp(other, "eq")

    def __ne__(self, other: object) -> Any:
        return self._cmp(other, "ne")

    __hash__ = str.__hash__


def _padded(parts: tuple) -> tuple:
    return tuple(parts) + (0,) * (8 - len(parts))


__version__ = TorchVersion("0.1.0")
cuda: str | None = None
hip: str | None = None
xpu: str | None = None
debug = False
git_version = "Unknown"
