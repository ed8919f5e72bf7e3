"""``torch.version``: the version of this package and of the toolkits it was built with (none: CPU only).
https://pytorch.org/docs/stable/torch.html"""

from __future__ import annotations

__all__ = ["__version__", "cuda", "debug", "git_version", "hip", "xpu"]

__version__ = "0.1.0"
cuda: str | None = None
hip: str | None = None
xpu: str | None = None
debug = False
git_version = "Unknown"
