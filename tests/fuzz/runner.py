"""The parent side: worker processes, running programs, comparing outcomes, classifying, shrinking.

A :class:`Worker` is one child interpreter (``python -m fuzz.worker``) importing the library once and
running programs in sequence. When it dies or overruns the per-program timeout, :meth:`Worker.run`
returns a ``crash`` / ``hang`` result for that program and the worker restarts on the next one.

:func:`ci_findings` checks rustgrad alone (crashes, hangs, panics, non-standard exceptions, arguments
changed by a statement that raised); :func:`oracle_findings` compares rustgrad with PyTorch. Both
return :class:`Finding` objects whose ``key`` deduplicates them; :func:`shrink` reduces a program while
the same finding persists.
"""

from __future__ import annotations

import math
import os
import pickle
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .interpreter import CPU_BUILD_CUDA_MESSAGE, decode_array
from .program import Ref, Stmt, render, walk

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = __name__.rsplit(".", 1)[0]
CI_CATEGORIES = ("crash", "hang", "panic", "nonstandard-exception", "mutated-on-raise", "fuzzer-error")
ORACLE_CATEGORIES = (
    "crash",
    "hang",
    "panic",
    "value",
    "dtype",
    "shape",
    "flag",
    "grad_fn",
    "exception-class",
    "raised-vs-not",
    "mutated-on-raise",
    "fuzzer-error",
)
PANIC_NET_MESSAGE = "internal error in rustgrad"
TOLERANCES = {"float64": (1e-6, 1e-9), "float32": (1e-4, 1e-5)}


# ----------------------------------------------------------------------------- workers


class Worker:
    """One persistent child process running programs against ``module`` with ``python``."""

    def __init__(self, python: str, module: str, timeout: float = 10.0, memory_gib: float = 12.0):
        self.python = python
        self.module = module
        self.timeout = timeout
        self.memory_gib = memory_gib
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.restarts = 0
        self._buffer = b""
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - open for the worker's lifetime
        self._workdir = tempfile.mkdtemp(prefix="fuzz-worker-")

    def start(self, startup_timeout: float = 300.0) -> dict:
        """Starts the child and waits for its ``ready`` message; returns its info."""
        env = dict(os.environ)
        env["PYTHONPATH"] = TESTS_DIR + os.pathsep + env.get("PYTHONPATH", "")
        env.update(
            {
                "RUST_BACKTRACE": "0",
                "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        self._stderr.seek(0)
        self._stderr.truncate()
        self._buffer = b""
        self.proc = subprocess.Popen(
            [self.python, "-m", "fuzz.worker", "--module", self.module, "--memory-gib", str(self.memory_gib)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=self._workdir,
            env=env,
        )
        message = self._read(time.monotonic() + startup_timeout)
        if not isinstance(message, tuple) or message[0] != "ready":
            detail = self.stderr_tail()
            self.stop()
            raise RuntimeError(
                f"worker for {self.module} with {self.python} did not start: {message!r}\n{detail}"
            )
        self.info = message[1]
        return self.info

    def stop(self) -> None:
        """Ends the child (the one this object started)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def stderr_tail(self, limit: int = 1500) -> str:
        """The end of the child's stderr (panic messages, tracebacks)."""
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - limit))
            return self._stderr.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _read(self, deadline: float) -> object:
        """The next message, ``"eof"`` if the child exited, ``"timeout"`` past ``deadline``."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            if len(self._buffer) >= 4:
                (size,) = struct.unpack("<I", self._buffer[:4])
                if len(self._buffer) >= 4 + size:
                    data = self._buffer[4 : 4 + size]
                    self._buffer = self._buffer[4 + size :]
                    return pickle.loads(data)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return "timeout"
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return "eof"
            self._buffer += chunk

    def send(self, program_id: object, stmts: list) -> float:
        """Sends a program (starting the child if needed); returns the time it was sent."""
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.stop()
                self.restarts += 1
            self.start()
        data = pickle.dumps(("run", program_id, stmts), protocol=4)
        try:
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        self._stderr_mark = self._stderr_size()
        return time.monotonic()

    def _stderr_size(self) -> int:
        try:
            self._stderr.seek(0, os.SEEK_END)
            return self._stderr.tell()
        except OSError:
            return 0

    def receive(self, program_id: object, sent_at: float, grace: float = 0.0) -> dict:
        """Collects the outcome of the program sent at ``sent_at`` (see :func:`run_on`)."""
        deadline = max(sent_at + self.timeout, time.monotonic() + grace)
        result: dict = {"status": "ok", "outcomes": {}, "final": {}, "detail": ""}
        while True:
            message = self._read(deadline)
            if message == "timeout":
                result.update(status="hang", detail=f"no result within {self.timeout:g} s")
                self.stop()
                self.restarts += 1
                break
            if message == "eof":
                assert self.proc is not None
                try:
                    code = self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    code = None
                sig = -code if code is not None and code < 0 else None
                name = signal.Signals(sig).name if sig else f"exit code {code}"
                result.update(status="crash", detail=f"worker died ({name})\n{self.stderr_tail()}")
                self.stop()
                self.restarts += 1
                break
            kind = message[0]
            if message[1] != program_id:
                continue
            if kind == "stmt":
                result["outcomes"][message[2]] = message[3]
            elif kind == "final":
                result["final"] = message[2]
            elif kind == "error":
                result.update(status="error", detail=message[2])
            elif kind == "done":
                break
        result["crash_index"] = len(result["outcomes"])
        return result

    def run(self, program_id: object, stmts: list) -> dict:
        """Runs one program and returns ``{"status", "outcomes", "final", "detail", "crash_index"}``."""
        return self.receive(program_id, self.send(program_id, stmts))

    def close(self) -> None:
        """Asks the child to exit, then makes sure it did."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                data = pickle.dumps(("exit",), protocol=4)
                assert self.proc.stdin is not None
                self.proc.stdin.write(struct.pack("<I", len(data)) + data)
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired, AssertionError):
                pass
        self.stop()
        self._stderr.close()
        shutil.rmtree(self._workdir, ignore_errors=True)


def run_on(workers: list, program_id: object, stmts: list) -> list:
    """Runs ``stmts`` on several workers at once (one per library) and returns their results."""
    sent = [w.send(program_id, stmts) for w in workers]
    return [w.receive(program_id, t, grace=2.0 if i else 0.0) for i, (w, t) in enumerate(zip(workers, sent))]


# ----------------------------------------------------------------------------- findings


@dataclass
class Finding:
    """One discrepancy: its category, where it happened and what each side did."""

    category: str
    op_key: str
    index: int
    where: str
    rustgrad: str
    torch: str = ""
    detail: str = ""
    program: list = field(default_factory=list)
    program_id: object = -1

    @property
    def key(self) -> tuple:
        """What findings are deduplicated by: the category and the operation involved."""
        return (self.category, self.op_key)

    @property
    def shrink_key(self) -> tuple:
        """What must persist while shrinking (a final-state finding may move to another op)."""
        return (
            self.category,
            self.op_key.split(":", 1)[0] if self.op_key.startswith("final-state") else self.op_key,
        )


def statement_at(stmts: list, index: int) -> Stmt | None:
    """The statement with walk index ``index`` (block bodies counted)."""
    for i, s in enumerate(walk(stmts)):
        if i == index:
            return s
    return None


def describe_summary(summary: object, limit: int = 160) -> str:
    """A short human-readable form of a value summary."""
    if not isinstance(summary, tuple):
        return repr(summary)[:limit]
    kind = summary[0]
    if kind == "tensor":
        return describe_tensor(summary[1], limit)
    if kind == "py":
        return f"{summary[1]} {summary[2]!r}"[:limit]
    if kind == "seq":
        inner = ", ".join(describe_summary(s, 60) for s in summary[2][:4])
        return f"{summary[1]} of {summary[3]}: [{inner}{', ...' if summary[3] > 4 else ''}]"[: limit * 2]
    if kind == "ndarray":
        return f"ndarray {np.dtype(summary[1][0]).name} {list(summary[1][1])} {_values_text(summary[1])}"[
            :limit
        ]
    return " ".join(str(s) for s in summary)[:limit]


def _values_text(enc: tuple) -> str:
    arr = decode_array(enc)
    text = np.array2string(arr[:12], precision=6, separator=", ")
    return text + (" ..." if arr.size > 12 else "")


def describe_tensor(info: dict, limit: int = 200) -> str:
    """``float32 [2, 3] rg=True leaf=False grad_fn=AddBackward0 values=[...]``."""
    text = (
        f"tensor {info['dtype']} {list(info['shape'])} requires_grad={info['requires_grad']} "
        f"is_leaf={info['is_leaf']} grad_fn={info['grad_fn']} values={_values_text(info['values'])}"
    )
    if info.get("grad") is not None:
        text += f" grad={_values_text(info['grad']['values'])}"
    return text[:limit]


def describe_outcome(outcome: dict | None) -> str:
    """A short form of a statement outcome."""
    if outcome is None:
        return "(no outcome)"
    status = outcome["status"]
    if status == "raise":
        mutated = f" [arguments changed: {'; '.join(outcome['mutated'])}]" if outcome.get("mutated") else ""
        return f"raises {outcome['exc']}: {outcome['msg'][:200]}{mutated}"
    if status == "ok":
        return describe_summary(outcome["value"])
    return status


def is_panic(outcome: dict) -> bool:
    """A Rust panic: ``PanicException``, or the RuntimeError rustgrad's panic net turns one into."""
    return outcome["status"] == "raise" and (
        outcome["exc"] == "PanicException" or PANIC_NET_MESSAGE in outcome["msg"]
    )


def _cuda_request_pair(a: dict, b: dict) -> bool:
    """A tensor sent to CUDA: rustgrad raises as PyTorch built without CUDA (``AssertionError: Torch not
    compiled with CUDA enabled``); a CUDA build of PyTorch on a machine without a GPU raises a
    ``RuntimeError`` about the missing driver instead. Both refuse the same request."""
    return (
        a["base"] == "AssertionError"
        and a["msg"] == CPU_BUILD_CUDA_MESSAGE
        and b["base"] == "RuntimeError"
        and ("NVIDIA driver" in b["msg"] or "CUDA" in b["msg"])
    )


def ci_findings(stmts: list, result: dict, program_id: object = -1) -> list:
    """Problems visible without an oracle: crash, hang, panic, non-standard exception, mutated-on-raise."""
    findings = []

    def add(category: str, index: int, rg: str, detail: str = "") -> None:
        stmt = statement_at(stmts, index)
        op = stmt.op_key() if stmt is not None else "program"
        findings.append(Finding(category, op, index, f"statement {index}", rg, "", detail, stmts, program_id))

    if result["status"] in ("crash", "hang"):
        add(result["status"], result["crash_index"], result["detail"].splitlines()[0], result["detail"])
        return findings
    if result["status"] == "error":
        add("fuzzer-error", -1, result["detail"])
    for index in sorted(result["outcomes"]):
        outcome = result["outcomes"][index]
        if outcome["status"] != "raise":
            continue
        if is_panic(outcome):
            add("panic", index, describe_outcome(outcome))
        elif not outcome["standard"]:
            add("nonstandard-exception", index, describe_outcome(outcome))
        elif outcome["mutated"]:
            add("mutated-on-raise", index, describe_outcome(outcome))
    return findings


def _close(a: np.ndarray, b: np.ndarray, dtype: str) -> bool:
    if a.shape != b.shape:
        return False
    if dtype in TOLERANCES:
        rtol, atol = TOLERANCES[dtype]
        a64 = a.astype(np.float64)
        b64 = b.astype(np.float64)
        return bool(np.allclose(a64, b64, rtol=rtol, atol=atol, equal_nan=True))
    return bool(np.array_equal(a, b))


def compare_tensors(a: dict, b: dict, check_grad: bool = True) -> tuple | None:
    """``(category, text)`` of the first difference between two tensor summaries, or ``None``."""
    if a["shape"] != b["shape"]:
        return "shape", f"shape {list(a['shape'])} vs {list(b['shape'])}"
    if a["dtype"] != b["dtype"]:
        return "dtype", f"dtype {a['dtype']} vs {b['dtype']}"
    for flag in ("requires_grad", "is_leaf"):
        if a[flag] != b[flag]:
            return "flag", f"{flag} {a[flag]} vs {b[flag]}"
    if a["grad_fn"] != b["grad_fn"]:
        return "grad_fn", f"grad_fn {a['grad_fn']} vs {b['grad_fn']}"
    va, vb = decode_array(a["values"]), decode_array(b["values"])
    if a["values"][3] != b["values"][3] or not _close(va, vb, a["dtype"]):
        return "value", f"values {_values_text(a['values'])} vs {_values_text(b['values'])}"
    if check_grad and ("grad" in a or "grad" in b):
        ga, gb = a.get("grad"), b.get("grad")
        if (ga is None) != (gb is None):
            return "flag", f".grad {'None' if ga is None else 'set'} vs {'None' if gb is None else 'set'}"
        if ga is not None:
            diff = compare_tensors(ga, gb, check_grad=False)
            if diff is not None:
                return diff[0], ".grad: " + diff[1]
    return None


def compare_summaries(a: object, b: object) -> tuple | None:
    """``(category, text)`` of the first difference between two value summaries, or ``None``."""
    if a[0] != b[0]:
        return "dtype", f"{a[0]} vs {b[0]} result"
    kind = a[0]
    if kind == "tensor":
        return compare_tensors(a[1], b[1])
    if kind == "py":
        if a[1] != b[1]:
            return "dtype", f"Python {a[1]} vs {b[1]}"
        x, y = a[2], b[2]
        if isinstance(x, float):
            if (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-6) or x == y:
                return None
            return "value", f"{x!r} vs {y!r}"
        return None if x == y else ("value", f"{x!r} vs {y!r}")
    if kind == "seq":
        if a[1] != b[1]:
            return "dtype", f"{a[1]} vs {b[1]}"
        if a[3] != b[3]:
            return "shape", f"length {a[3]} vs {b[3]}"
        for i, (x, y) in enumerate(zip(a[2], b[2])):
            diff = compare_summaries(x, y)
            if diff is not None:
                return diff[0], f"item {i}: {diff[1]}"
        return None
    if kind == "ndarray":
        ea, eb = a[1], b[1]
        if ea[1] != eb[1]:
            return "shape", f"ndarray shape {list(ea[1])} vs {list(eb[1])}"
        if np.dtype(ea[0]) != np.dtype(eb[0]):
            return "dtype", f"ndarray dtype {np.dtype(ea[0]).name} vs {np.dtype(eb[0]).name}"
        name = np.dtype(ea[0]).name
        return (
            None if _close(decode_array(ea), decode_array(eb), name) else ("value", "ndarray values differ")
        )
    return None if a == b else ("value", f"{a} vs {b}")


def oracle_findings(stmts: list, rg: dict, th: dict, program_id: object = -1) -> list:
    """The first discrepancy between rustgrad's result ``rg`` and PyTorch's ``th`` (as a list of 0 or 1)."""

    def finding(category: str, index: int, where: str, rg_text: str, th_text: str, detail: str = "") -> list:
        stmt = statement_at(stmts, index) if index >= 0 else None
        op = stmt.op_key() if stmt is not None else where
        return [Finding(category, op, index, where, rg_text, th_text, detail, stmts, program_id)]

    if th["status"] in ("crash", "hang", "error"):
        return []  # PyTorch itself died or the program is beyond the harness: not rustgrad's bug
    if rg["status"] == "error":
        return finding("fuzzer-error", -1, "program", rg["detail"], "")
    for index in sorted(th["outcomes"]):
        a = rg["outcomes"].get(index)
        b = th["outcomes"][index]
        if a is None:
            if rg["status"] in ("crash", "hang"):
                return finding(
                    rg["status"],
                    index,
                    f"statement {index}",
                    rg["detail"].splitlines()[0],
                    describe_outcome(b),
                    rg["detail"],
                )
            return finding(
                "fuzzer-error", index, f"statement {index}", "missing outcome", describe_outcome(b)
            )
        where = f"statement {index}"
        if is_panic(a):
            return finding("panic", index, where, describe_outcome(a), describe_outcome(b))
        if a["status"] == "skip" or b["status"] == "skip":
            if a["status"] != b["status"]:
                return finding("raised-vs-not", index, where, describe_outcome(a), describe_outcome(b))
            continue
        if (a["status"] == "raise") != (b["status"] == "raise"):
            return finding("raised-vs-not", index, where, describe_outcome(a), describe_outcome(b))
        if a["status"] == "raise":
            if a["base"] != b["base"] and not (
                a["base"] == "NotImplementedError" and b["base"] == "RuntimeError"
            ) and not _cuda_request_pair(a, b):
                return finding("exception-class", index, where, describe_outcome(a), describe_outcome(b))
            if a["mutated"] and not b["mutated"]:
                return finding("mutated-on-raise", index, where, describe_outcome(a), describe_outcome(b))
            if b["mutated"] and not a["mutated"]:
                # PyTorch wrote into an argument before raising (an in-place op on an inference tensor,
                # an out-of-bounds index_put): rustgrad keeps the safer behaviour, so the states differ
                # from here on and nothing later is comparable.
                return []
            continue
        diff = compare_summaries(a["value"], b["value"])
        if diff is not None:
            return finding(diff[0], index, where, describe_outcome(a), describe_outcome(b), diff[1])
        for name in sorted(set(a.get("grads", {})) | set(b.get("grads", {}))):
            ga, gb = a.get("grads", {}).get(name, "absent"), b.get("grads", {}).get(name, "absent")
            if isinstance(ga, dict) and isinstance(gb, dict):
                diff = compare_tensors(ga, gb)
                if diff is not None:
                    return finding(
                        diff[0],
                        index,
                        where + f" (.grad of {name})",
                        describe_tensor(ga),
                        describe_tensor(gb),
                        diff[1],
                    )
            elif ga != gb:
                return finding("flag", index, where + f" (.grad of {name})", str(ga)[:100], str(gb)[:100])
    if rg["status"] in ("crash", "hang"):
        return finding(
            rg["status"],
            rg["crash_index"],
            "after the last statement",
            rg["detail"].splitlines()[0],
            "completes",
            rg["detail"],
        )
    if any(o.get("mutated") for o in th["outcomes"].values()):
        return []  # PyTorch changed an argument of a statement that raised: final states are not comparable
    for name in sorted(th["final"]):
        a, b = rg["final"].get(name), th["final"][name]
        if not isinstance(a, dict) or not isinstance(b, dict):
            if a != b:
                return finding("flag", -1, f"final state of {name}", str(a)[:100], str(b)[:100])
            continue
        diff = compare_tensors(a, b)
        if diff is not None:
            found = finding(
                diff[0], -1, f"final state of {name}", describe_tensor(a), describe_tensor(b), diff[1]
            )
            found[0].op_key = "final-state:" + _last_touch(stmts, name)
            return found
    return []


def _last_touch(stmts: list, name: str) -> str:
    """The op of the last statement that reads or binds variable ``name``."""
    last = "?"
    for s in walk(stmts):
        if s.kind != "block" and (name in s.refs() or s.target == name):
            last = s.op_key()
    return last


# ----------------------------------------------------------------------------- shrinking


def _remove(stmts: list, victim: Stmt) -> list:
    out = []
    for s in stmts:
        if s is victim:
            continue
        if s.kind == "block":
            s = Stmt(s.kind, s.fn, s.args, s.kwargs, s.target, _remove(s.body, victim))
        out.append(s)
    return out


def _unwrap(stmts: list, block: Stmt) -> list:
    out = []
    for s in stmts:
        if s is block:
            out.extend(block.body)
        elif s.kind == "block":
            out.append(Stmt(s.kind, s.fn, s.args, s.kwargs, s.target, _unwrap(s.body, block)))
        else:
            out.append(s)
    return out


def _replace(stmts: list, old: Stmt, new: Stmt) -> list:
    out = []
    for s in stmts:
        if s is old:
            out.append(new)
        elif s.kind == "block":
            out.append(Stmt(s.kind, s.fn, s.args, s.kwargs, s.target, _replace(s.body, old, new)))
        else:
            out.append(s)
    return out


def _truncate(stmts: list, keep: int) -> list:
    """The first ``keep`` statements in walk order (blocks cut inside)."""
    out: list = []
    count = [0]

    def take(src: list, dst: list) -> None:
        for s in src:
            if count[0] >= keep:
                return
            count[0] += 1
            if s.kind == "block":
                inner: list = []
                take(s.body, inner)
                dst.append(Stmt(s.kind, s.fn, s.args, s.kwargs, s.target, inner))
            else:
                dst.append(s)

    take(stmts, out)
    return out


def _simpler_kwargs(stmt: Stmt) -> list:
    return [
        Stmt(
            stmt.kind,
            stmt.fn,
            stmt.args,
            {k: v for k, v in stmt.kwargs.items() if k != drop},
            stmt.target,
            stmt.body,
        )
        for drop in stmt.kwargs
    ]


def shrink(
    stmts: list, finding: Finding, reproduces: Callable[[list], Finding | None], max_attempts: int = 150
) -> tuple:
    """Delta debugging: drops statements, unwraps blocks and drops keyword arguments while
    ``reproduces(candidate)`` still returns a finding with the same key. Returns ``(program, finding)``."""
    attempts = [0]
    best, best_finding = stmts, finding

    def attempt(candidate: list) -> bool:
        nonlocal best, best_finding
        if attempts[0] >= max_attempts:
            return False
        attempts[0] += 1
        found = reproduces(candidate)
        if found is not None and found.shrink_key == finding.shrink_key:
            best, best_finding = candidate, found
            return True
        return False

    if finding.index >= 0:
        attempt(_truncate(best, finding.index + 1))
    chunk = max(1, len(best) // 2)
    while chunk >= 1 and attempts[0] < max_attempts:
        changed = False
        top = [s for s in best if not (s.kind == "call" and s.fn == "manual_seed")]
        for start in range(len(top) - chunk, -1, -chunk) if chunk > 1 else []:
            group = top[start : start + chunk]
            candidate = best
            for victim in group:
                candidate = _remove(candidate, victim)
            if attempt(candidate):
                changed = True
        if chunk == 1:
            break
        chunk = chunk // 2 if not changed else chunk
    _substitute_refs(best, finding, attempt, lambda: best)
    progress = True
    while progress and attempts[0] < max_attempts:
        progress = False
        for victim in reversed(list(walk(best))):
            if victim.kind == "call" and victim.fn == "manual_seed" and _uses_random(best):
                continue
            if attempt(_remove(best, victim)):
                progress = True
                break
            if victim.kind == "block" and attempt(_unwrap(best, victim)):
                progress = True
                break
        for victim in list(walk(best)) if not progress else []:
            for simpler in _simpler_kwargs(victim):
                if attempt(_replace(best, victim, simpler)):
                    progress = True
                    break
            if progress:
                break
    return best, best_finding


def _substitute_refs(
    stmts: list, finding: Finding, attempt: Callable[[list], bool], current: Callable[[], list]
) -> None:
    """Points the failing statement's variable arguments at the earliest variables that keep the
    finding, so the statements computing the original arguments can then be dropped."""
    if finding.index < 0:
        return
    target = statement_at(stmts, finding.index)
    if target is None:
        return
    for pos, arg in enumerate(target.args):
        if not isinstance(arg, Ref):
            continue
        names = [
            s.target
            for s in walk(current())
            if s.target and s.kind not in ("block", "setattr", "setitem", "iop")
        ]
        for name in names:
            if name == arg.name or name == target.target:
                continue
            if names.index(name) >= names.index(arg.name) if arg.name in names else True:
                break
            args = list(target.args)
            args[pos] = Ref(name)
            new = Stmt(target.kind, target.fn, tuple(args), target.kwargs, target.target, target.body)
            if attempt(_replace(current(), target, new)):
                target = new
                break


_RANDOM_FNS = (
    "rand",
    "randn",
    "randint",
    "randperm",
    "rand_like",
    "randn_like",
    "uniform_",
    "normal_",
    "bernoulli_",
    "nn.functional.dropout",
)


def _uses_random(stmts: list) -> bool:
    return any(s.fn in _RANDOM_FNS for s in walk(stmts))


# ----------------------------------------------------------------------------- pools


class Pool:
    """``jobs`` worker sets (rustgrad, plus PyTorch in oracle mode), one thread per set."""

    def __init__(
        self,
        rustgrad_python: str,
        oracle_python: str | None,
        jobs: int = 2,
        timeout: float = 10.0,
        rustgrad_module: str = "rustgrad",
        oracle_module: str = "torch",
    ):
        self.sets = []
        for _ in range(max(1, jobs)):
            workers = [Worker(rustgrad_python, rustgrad_module, timeout)]
            if oracle_python:
                workers.append(Worker(oracle_python, oracle_module, timeout))
            self.sets.append(workers)
        self.oracle = oracle_python is not None
        self._lock = threading.Lock()

    def start(self) -> dict:
        """Starts every worker (in parallel); returns rustgrad's public API (its ``dir()`` lists)."""
        errors: list = []

        def start_one(w: Worker) -> None:
            try:
                w.start()
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=start_one, args=(w,)) for ws in self.sets for w in ws]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.close()
            raise errors[0]
        return self.sets[0][0].info["api"]

    def findings_of(self, workers: list, program_id: object, stmts: list) -> list:
        """Runs a program on one worker set and returns its findings."""
        results = run_on(workers, program_id, stmts)
        if self.oracle:
            return (
                ci_findings(stmts, results[0], program_id)
                if results[0]["status"] == "error"
                else oracle_findings(stmts, results[0], results[1], program_id)
            )
        return ci_findings(stmts, results[0], program_id)

    def map(
        self,
        items: list,
        func: Callable[[list, object], object],
        progress: Callable[[int], None] | None = None,
    ) -> list:
        """``func(workers, item)`` for every item, spread over the worker sets; results in item order."""
        results: list = [None] * len(items)
        next_item = [0]
        errors: list = []

        def loop(workers: list) -> None:
            while True:
                with self._lock:
                    i = next_item[0]
                    next_item[0] += 1
                if i >= len(items) or errors:
                    return
                try:
                    results[i] = func(workers, items[i])
                except Exception as e:  # noqa: BLE001
                    errors.append(e)
                    return
                if progress is not None:
                    with self._lock:
                        progress(i)

        threads = [threading.Thread(target=loop, args=(ws,)) for ws in self.sets]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return results

    def close(self) -> None:
        """Stops every worker."""
        for ws in self.sets:
            for w in ws:
                w.close()


@dataclass
class Report:
    """What a fuzzing run found."""

    programs: int
    seconds: float
    counts: dict
    reproducers: list
    restarts: int = 0
    oracle: bool = False
    key_counts: dict = field(default_factory=dict)

    def failing(self, categories: tuple) -> list:
        """The deduplicated, shrunk findings in ``categories``."""
        return [f for f in self.reproducers if f.category in categories]


def fuzz(
    pool: Pool,
    programs: list,
    shrink_findings: bool = True,
    max_attempts: int = 150,
    shrink_seconds: float = 600.0,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Runs ``programs`` ``[(program_id, stmts)]`` on ``pool``, then deduplicates and shrinks the findings."""
    start = time.monotonic()
    per_program = pool.map(programs, lambda ws, item: pool.findings_of(ws, item[0], item[1]), progress)
    counts: dict = {}
    key_counts: dict = {}
    first_by_key: dict = {}
    for findings in per_program:
        for f in findings:
            counts[f.category] = counts.get(f.category, 0) + 1
            key_counts[f.key] = key_counts.get(f.key, 0) + 1
            old = first_by_key.get(f.key)
            if old is None or len(list(walk(f.program))) < len(list(walk(old.program))):
                first_by_key[f.key] = f
    representatives = list(first_by_key.values())
    shrink_deadline = time.monotonic() + shrink_seconds

    def shrink_one(workers: list, f: Finding) -> Finding:
        if not shrink_findings or time.monotonic() > shrink_deadline:
            return f

        def reproduces(candidate: list) -> Finding | None:
            if time.monotonic() > shrink_deadline:
                return None
            found = pool.findings_of(workers, f.program_id, candidate)
            return next((g for g in found if g.shrink_key == f.shrink_key), None)

        program, shrunk = shrink(f.program, f, reproduces, max_attempts)
        shrunk.program = program
        shrunk.program_id = f.program_id
        return shrunk

    shrunk = pool.map(representatives, shrink_one)
    unique: dict = {}
    for f in shrunk:
        old = unique.get(f.key)
        if old is None or len(list(walk(f.program))) < len(list(walk(old.program))):
            unique[f.key] = f
    reproducers = sorted(unique.values(), key=lambda f: (f.category, f.op_key))
    restarts = sum(w.restarts for ws in pool.sets for w in ws)
    return Report(
        len(programs), time.monotonic() - start, counts, reproducers, restarts, pool.oracle, key_counts
    )


def render_finding(f: Finding, import_line: str = "import torch") -> str:
    """The reproducer of a finding as Python source, the mismatching statement marked."""
    stmt = statement_at(f.program, f.index) if f.index >= 0 else None
    comments = {id(stmt): f"<- {f.category}"} if stmt is not None else {}
    return render(f.program, import_line=import_line, comments=comments)


def format_report(report: Report, import_line: str = "import torch", max_per_category: int = 1000) -> str:
    """The report as Markdown: counts per category, then each deduplicated minimal reproducer."""
    mode = "oracle (rustgrad vs PyTorch)" if report.oracle else "CI (rustgrad alone)"
    lines = [
        f"# rustgrad fuzz report: {mode}",
        "",
        f"{report.programs} programs in {report.seconds:.0f} s; worker restarts: {report.restarts}.",
        "",
        "| category | programs | unique reproducers |",
        "|---|---|---|",
    ]
    by_cat: dict = {}
    for f in report.reproducers:
        by_cat.setdefault(f.category, []).append(f)
    for cat in sorted(report.counts, key=lambda c: -report.counts[c]):
        lines.append(f"| {cat} | {report.counts[cat]} | {len(by_cat.get(cat, []))} |")
    if not report.counts:
        lines.append("| (none) | 0 | 0 |")
    pairs: dict = {}
    for f in report.reproducers:
        pair = (f.category, _outcome_kind(f.rustgrad), _outcome_kind(f.torch) if report.oracle else "")
        pairs[pair] = pairs.get(pair, 0) + 1
    if pairs:
        lines += [
            "",
            "Unique reproducers by what each side did:",
            "",
            "| category | rustgrad | torch | reproducers |",
            "|---|---|---|---|",
        ]
        for (cat, rg, th), n in sorted(pairs.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {cat} | {rg} | {th} | {n} |")
    for cat in sorted(by_cat, key=lambda c: -report.counts.get(c, 0)):
        by_cat[cat].sort(key=lambda f: -report.key_counts.get(f.key, 1))
        lines += ["", f"## {cat} ({report.counts.get(cat, 0)} programs, {len(by_cat[cat])} unique)", ""]
        for f in by_cat[cat][:max_per_category]:
            lines += [
                (
                    f"### `{f.op_key}` at {f.where} (program {f.program_id}; "
                    f"{report.key_counts.get(f.key, 1)} programs like it)"
                ),
                "",
                "```python",
                render_finding(f, import_line).rstrip(),
                "```",
                "",
                f"- rustgrad: {f.rustgrad}",
            ]
            if report.oracle:
                lines.append(f"- torch: {f.torch}")
            if f.detail and f.category not in ("crash", "hang"):
                lines.append(f"- difference: {f.detail}")
            elif f.detail:
                tail = "\n".join(f.detail.strip().splitlines()[-6:])
                lines += ["", "```", tail, "```"]
            lines.append("")
    return "\n".join(lines) + "\n"


def _outcome_kind(text: str) -> str:
    """``raises TypeError`` / ``tensor float32`` / ``worker died (SIGABRT)``: the gist of an outcome text."""
    words = text.replace(":", " ").split()
    if not words:
        return "-"
    if words[0] in ("raises", "tensor", "worker") and len(words) > 1:
        return " ".join(words[:2]) if words[0] != "worker" else " ".join(words[:3])
    return words[0]


def default_python() -> str:
    """The interpreter running the fuzzer (it has rustgrad)."""
    return sys.executable
