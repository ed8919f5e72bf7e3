"""The type stubs: ``mypy.stubtest`` checks ``rustgrad/_rustgrad.pyi`` (and the inline annotations of
the pure-Python modules) against the installed package, and ``mypy --strict`` accepts a small program
written against the public API while rejecting wrong calls. A stub that drifts from the Rust
``#[pymethods]`` fails here.

Both run mypy in a subprocess on the installed ``rustgrad`` (which must ship ``py.typed``); each takes
a few seconds.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parent.parent

# Checked with --strict: must give no error. `assert_type` pins what the stubs promise.
GOOD = """
from __future__ import annotations

from typing import Optional, Union

import numpy as np
from typing_extensions import assert_type

import rustgrad
from rustgrad import nn

x: rustgrad.Tensor = rustgrad.randn(3, requires_grad=True)
y = (x * 2).sum()
y.backward()

assert_type(y, rustgrad.Tensor)
assert_type(x.grad, Optional[rustgrad.Tensor])
assert_type(y.grad_fn, Optional[rustgrad.autograd.Node])
assert_type(x.shape, rustgrad.Size)
assert_type(x.size(0), int)
assert_type(x.shape[0], int)
assert_type(x.shape[1:], rustgrad.Size)
assert_type(x.shape + (1,), rustgrad.Size)
assert_type(x.item(), Union[float, int, bool])
assert_type(x.max(), rustgrad.Tensor)
assert_type(x.max(dim=0).indices, rustgrad.Tensor)
assert_type(x.max(x), rustgrad.Tensor)
assert_type(x.dtype, rustgrad.dtype)
assert_type(x.view(3, 1), rustgrad.Tensor)
assert_type(x.view((3, 1)), rustgrad.Tensor)
assert_type(x.chunk(3), tuple[rustgrad.Tensor, ...])
assert_type(1.0 - x, rustgrad.Tensor)
assert_type(x @ x, rustgrad.Tensor)
assert_type(x > 0, rustgrad.Tensor)
assert_type(x[0, ..., None], rustgrad.Tensor)

w = nn.Parameter(rustgrad.zeros(2, 3))
assert_type(w.zero_(), nn.Parameter)
with rustgrad.no_grad():
    w.add_(1.0, alpha=-0.5)
handle = x.register_hook(lambda g: g * 2)
handle.remove()
arr: np.ndarray = x.detach().numpy()
z = rustgrad.cat([x, rustgrad.from_numpy(arr)], dim=0).to(rustgrad.float64)
"""

# Each line marked `# E: code` must give exactly that mypy error, and no other line may.
BAD = """
import rustgrad

x = rustgrad.randn(3)
x.backward(retain_graph="yes")  # E: arg-type
x.transpose(0)  # E: call-arg
n: str = x.numel()  # E: assignment
x.requires_grad = 1.5  # E: assignment
rustgrad.cat(x)  # E: arg-type
x.no_such_method()  # E: attr-defined
"""


def _mypy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_stubtest(tmp_path: Path) -> None:
    allowlist = ROOT / "stubtest_allowlist.txt"
    r = _mypy("mypy.stubtest", "rustgrad", "--allowlist", str(allowlist), cwd=tmp_path)
    assert r.returncode == 0, f"stubtest failed:\n{r.stdout}\n{r.stderr}"


def test_mypy_strict_on_public_api(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(textwrap.dedent(GOOD))
    (tmp_path / "bad.py").write_text(textwrap.dedent(BAD))
    r = _mypy(
        "mypy", "--strict", "--cache-dir", str(tmp_path / ".mypy_cache"), "good.py", "bad.py", cwd=tmp_path
    )
    errors = re.findall(r"^(\w+)\.py:(\d+): error: .*\[([\w-]+)\]$", r.stdout, re.MULTILINE)
    assert errors, f"mypy found nothing:\n{r.stdout}\n{r.stderr}"
    good = [e for e in errors if e[0] == "good"]
    assert not good, f"errors in the well-typed program:\n{r.stdout}"
    expected = {
        (str(i), m.group(1))
        for i, line in enumerate(textwrap.dedent(BAD).splitlines(), start=1)
        if (m := re.search(r"# E: ([\w-]+)", line))
    }
    found = {(line, code) for file, line, code in errors if file == "bad"}
    assert found == expected, f"mypy output:\n{r.stdout}"
