"""rustgrad and PyTorch in one process: the extension must not need static TLS.

A shared library loaded with ``dlopen`` whose thread-locals use the initial-exec model takes its
whole TLS block from glibc's small static surplus; PyTorch's ``libgomp`` needs the same surplus,
so whichever comes second failed with "cannot allocate memory in static TLS block". The fix is
mimalloc's ``local_dynamic_tls`` feature; this checks the flag the linker sets (``DF_STATIC_TLS``)
without PyTorch, and the import itself when PyTorch is installed.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
import rustgrad

PT_DYNAMIC, DT_NULL, DT_FLAGS, DF_STATIC_TLS = 2, 0, 30, 0x10


def _dynamic_flags(path: Path) -> int:
    """``DT_FLAGS`` of a little-endian ELF64 shared object (0 when absent)."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "expected a little-endian ELF64 file"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type != PT_DYNAMIC:
            continue
        for at in range(p_offset, p_offset + p_filesz, 16):
            tag, value = struct.unpack_from("<qQ", data, at)
            if tag == DT_NULL:
                break
            if tag == DT_FLAGS:
                return value
    return 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF and glibc's static TLS are Linux matters")
def test_extension_needs_no_static_tls():
    so = Path(rustgrad._rustgrad.__file__)
    assert not _dynamic_flags(so) & DF_STATIC_TLS


@pytest.mark.parametrize("order", ["rustgrad, torch", "torch, rustgrad"])
def test_imports_beside_pytorch(order):
    pytest.importorskip("torch")
    if rustgrad.__name__ == "torch":
        pytest.skip("PyTorch itself")
    r = subprocess.run([sys.executable, "-c", f"import {order}; print('ok')"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
