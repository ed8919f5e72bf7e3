"""``torch.backends.cpu``. https://pytorch.org/docs/stable/backends.html#torch-backends-cpu"""

from __future__ import annotations

import platform

__all__ = ["get_cpu_capability"]


_capability: list[str] = []


def get_cpu_capability() -> str:
    """The vector instruction set the CPU kernels dispatch to: ``'AVX2'`` on an x86-64 CPU with AVX2
    (rustgrad's vectorised kernels go no further: never ``'AVX512'``), ``'DEFAULT'`` otherwise.
    Read from ``/proc/cpuinfo`` here; a binding to the Rust core's own detection would be exact.
    https://pytorch.org/docs/stable/backends.html#torch.backends.cpu.get_cpu_capability"""
    if not _capability:
        _capability.append(_detect())
    return _capability[0]


def _detect() -> str:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "DEFAULT"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return "AVX2" if "avx2" in line.split() else "DEFAULT"
    except OSError:
        pass
    return "DEFAULT"
