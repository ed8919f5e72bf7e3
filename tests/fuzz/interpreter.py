"""Runs a program (``program.Stmt`` list) against a torch-like module and summarizes every outcome.

Outcomes are plain Python data (dicts, tuples, bytes), so they pickle between interpreters with
nothing but numpy installed:

- ``{"status": "ok", "value": summary}`` (plus ``"grads"`` after ``backward`` / ``autograd.grad``);
- ``{"status": "raise", "exc": name, "base": builtin base name, "standard": bool, "msg": text,
  "mutated": [what changed in the arguments]}``;
- ``{"status": "skip"}`` when the statement reads a variable that an earlier failure left undefined.

A summary is ``("tensor", {...})``, ``("py", type name, value)``, ``("seq", kind, [summaries])``,
``("dtype", name)``, ``("node", name)``, ``("ndarray", encoded)``, ``("none",)`` or ``("other", type)``.
"""

from __future__ import annotations

import math
import operator
import re
import warnings
from typing import Any, Callable

import numpy as np

from .program import DType, Ref, Stmt

# What PyTorch built without CUDA raises for a tensor created on or moved to a CUDA device (rustgrad
# answers as that build; the oracle may be a CUDA build on a machine without a GPU, see runner.py).
CPU_BUILD_CUDA_MESSAGE = "Torch not compiled with CUDA enabled"
STANDARD_EXCEPTIONS = (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError)
MAX_ELEMENTS = 1 << 16
BACKWARD_FNS = ("backward", "autograd.backward", "autograd.grad")

_BINOPS: dict = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
    "@": operator.matmul,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_IOPS: dict = {
    "+": operator.iadd,
    "-": operator.isub,
    "*": operator.imul,
    "/": operator.itruediv,
    "**": operator.ipow,
}
_UNOPS: dict = {"-": operator.neg, "+": operator.pos}
_PROTOCOLS: dict = {
    "len": len,
    "list": list,
    "iter": lambda x: list(iter(x)),
    "bool": bool,
    "float": float,
    "int": int,
    "index": operator.index,
    "abs": abs,
}


class MissingVariable(Exception):
    """A statement reads a variable that is not defined (an earlier statement raised)."""


# ----------------------------------------------------------------------------- summaries


def encode_array(arr: np.ndarray) -> tuple:
    """An array as ``(dtype str, shape, bytes, sampled)``; big arrays keep an evenly strided sample."""
    arr = np.asarray(arr)
    shape = tuple(arr.shape)
    flat = np.ascontiguousarray(arr).reshape(-1)
    sampled = flat.size > MAX_ELEMENTS
    if sampled:
        flat = flat[:: flat.size // 4096 + 1]
    return (flat.dtype.str, shape, flat.tobytes(), sampled)


def decode_array(enc: tuple) -> np.ndarray:
    """The flat array of :func:`encode_array` (sampled for big arrays)."""
    return np.frombuffer(enc[2], dtype=np.dtype(enc[0]))


def dtype_name(dtype: Any) -> str:
    """``torch.float32`` -> ``float32``."""
    return str(dtype).rsplit(".", 1)[-1]


def summarize_tensor(mod: Any, t: Any, with_grad: bool = True) -> dict:
    """Dtype, shape, flags, grad_fn name, values and (for leaves) the ``.grad`` of a tensor."""
    try:
        grad_fn = t.grad_fn
        grad_fn_name = None if grad_fn is None else type(grad_fn).__name__
    except BaseException as e:  # noqa: BLE001 - PyTorch raises here for some views changed in place
        grad_fn_name = f"<raises {type(e).__name__}>"
    info = {
        "dtype": dtype_name(t.dtype),
        "shape": tuple(int(s) for s in t.shape),
        "requires_grad": bool(t.requires_grad),
        "is_leaf": bool(t.is_leaf),
        "grad_fn": grad_fn_name,
    }
    with mod.no_grad():
        info["values"] = encode_array(t.detach().cpu().numpy())
    if with_grad and info["is_leaf"]:
        g = t.grad
        info["grad"] = None if g is None else summarize_tensor(mod, g, with_grad=False)
    return info


def summarize(mod: Any, value: Any, depth: int = 0) -> tuple:
    """A plain-data summary of any statement result."""
    if isinstance(value, mod.Tensor):
        return ("tensor", summarize_tensor(mod, value))
    if value is None:
        return ("none",)
    if isinstance(value, (bool, int, float, str)):
        return ("py", type(value).__name__, value)
    if isinstance(value, mod.dtype):
        return ("dtype", dtype_name(value))
    if isinstance(value, np.ndarray):
        return ("ndarray", encode_array(value))
    if isinstance(value, np.generic):
        return ("npscalar", value.dtype.str, value.item())
    if isinstance(value, (list, tuple)) and depth < 4:
        kind = "list" if isinstance(value, list) else "tuple"
        return ("seq", kind, [summarize(mod, v, depth + 1) for v in list(value)[:64]], len(value))
    if hasattr(value, "next_functions") and hasattr(value, "name"):
        return ("node", type(value).__name__)
    if type(value).__name__ == "device":
        return ("device", str(value))
    return ("other", type(value).__name__)


def _snapshot(mod: Any, values: list) -> list:
    """What the mutation check compares: every tensor among ``values`` (recursively)."""
    shots = []
    for t in _tensors_in(mod, values):
        try:
            shots.append((t, summarize_tensor(mod, t)))
        except BaseException:  # noqa: BLE001, S112 - a tensor that cannot be summarized is not checked
            continue
    return shots


def _tensors_in(mod: Any, values: Any) -> list:
    found: list = []
    stack = list(values)
    while stack:
        v = stack.pop()
        if isinstance(v, mod.Tensor):
            if not any(v is f for f in found):
                found.append(v)
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return found


def _mutations(mod: Any, shots: list) -> list:
    changes = []
    for t, before in shots:
        try:
            after = summarize_tensor(mod, t)
        except BaseException as e:  # noqa: BLE001
            changes.append(f"cannot be read after the raise ({type(e).__name__})")
            continue
        for field in ("dtype", "shape", "requires_grad", "values", "grad"):
            if not _same_plain(before.get(field), after.get(field)):
                changes.append(f"{field} of a {before['dtype']}{list(before['shape'])} argument changed")
    return changes


def _same_plain(a: Any, b: Any) -> bool:
    """Equality of summaries where NaN equals NaN (byte-wise for arrays)."""
    return a == b


# ----------------------------------------------------------------------------- execution


_NO_ATTRIBUTE = re.compile(r"'([\w.]+)' object has no attribute '\w+'$")


def _python_semantics(e: BaseException, msg: str) -> bool:
    """Exceptions PyTorch raises the same way, from Python itself: ``int(inf)``; an ``int`` beyond
    64 bits (``OverflowError: int too big to convert``) or a flag of ``backward`` outside a byte; a method or attribute read from a
    non-tensor argument by a function PyTorch writes in Python (``F.mse_loss(1, t)``: ``'int'
    object has no attribute 'size'``). An ``AttributeError`` of a tensor is never standard."""
    if isinstance(e, OverflowError) and (
        "infinity to integer" in msg
        or "Numerical result out of range" in msg
        or msg
        in (
            "int too big to convert",
            "Python int too large to convert to C long",
            "unsigned byte integer is less than minimum",
            "unsigned byte integer is greater than maximum",
            "can't convert negative int to unsigned",
        )
    ):
        return True
    if isinstance(e, ZeroDivisionError):  # plain Python arithmetic of the program's numbers
        return True
    if isinstance(e, AssertionError) and msg == CPU_BUILD_CUDA_MESSAGE:
        return True  # a tensor sent to CUDA: PyTorch built without CUDA raises this from Python
    if isinstance(e, AttributeError):
        m = _NO_ATTRIBUTE.match(msg)
        return m is not None and m.group(1) not in ("Tensor", "Parameter")
    return False


def exception_outcome(e: BaseException, mutated: list | None = None) -> dict:
    """The outcome of a statement that raised ``e``."""
    base = next((c.__name__ for c in type(e).__mro__ if c.__module__ == "builtins"), "BaseException")
    try:
        msg = str(e)
    except BaseException:  # noqa: BLE001
        msg = "<unprintable>"
    return {
        "status": "raise",
        "exc": type(e).__name__,
        "base": base,
        "standard": isinstance(e, STANDARD_EXCEPTIONS) or _python_semantics(e, msg),
        "msg": msg[:400],
        "mutated": mutated or [],
    }


class Interpreter:
    """Executes statements against ``mod`` with a variable environment."""

    def __init__(self, mod: Any):
        self.mod = mod
        self.env: dict = {}

    def resolve(self, value: Any) -> Any:
        """The runtime value of an argument."""
        if isinstance(value, Ref):
            if value.name not in self.env:
                raise MissingVariable(value.name)
            return self.env[value.name]
        if isinstance(value, DType):
            return getattr(self.mod, value.name)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(v) for v in value)
        if isinstance(value, slice):
            return slice(self.resolve(value.start), self.resolve(value.stop), self.resolve(value.step))
        if isinstance(value, float) and math.isnan(value):
            return float("nan")
        return value

    def lookup(self, path: str) -> Any:
        """``module.a.b.c`` for the path ``a.b.c``."""
        obj = self.mod
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj

    def run(self, stmts: list, report: Callable[[int, dict], None]) -> None:
        """Runs ``stmts``, calling ``report(index, outcome)`` after each (block bodies included)."""
        self._counter = 0
        self._run_list(stmts, report)
        final = {}
        for name, v in self.env.items():
            if isinstance(v, self.mod.Tensor):
                try:
                    final[name] = summarize_tensor(self.mod, v)
                except BaseException as e:  # noqa: BLE001
                    final[name] = ("error", type(e).__name__)
        report(-1, {"status": "final", "tensors": final})

    def _run_list(self, stmts: list, report: Callable[[int, dict], None]) -> None:
        for stmt in stmts:
            index = self._counter
            self._counter += 1
            if stmt.kind == "block":
                self._run_block(stmt, index, report)
            else:
                report(index, self.execute(stmt))

    def _run_block(self, stmt: Stmt, index: int, report: Callable[[int, dict], None]) -> None:
        try:
            ctx = self.lookup(stmt.fn)(*self.resolve(stmt.args), **self.resolve_kwargs(stmt.kwargs))
            ctx.__enter__()
        except MissingVariable:
            report(index, {"status": "skip"})
            self._skip_body(stmt.body, report)
            return
        except BaseException as e:  # noqa: BLE001
            report(index, exception_outcome(e))
            self._skip_body(stmt.body, report)
            return
        report(index, {"status": "ok", "value": ("none",)})
        try:
            self._run_list(stmt.body, report)
        finally:
            ctx.__exit__(None, None, None)

    def _skip_body(self, body: list, report: Callable[[int, dict], None]) -> None:
        for stmt in body:
            index = self._counter
            self._counter += 1
            report(index, {"status": "skip"})
            if stmt.kind == "block":
                self._skip_body(stmt.body, report)

    def resolve_kwargs(self, kwargs: dict) -> dict:
        """Resolved keyword arguments."""
        return {k: self.resolve(v) for k, v in kwargs.items()}

    def execute(self, stmt: Stmt) -> dict:
        """Runs one (non-block) statement and returns its outcome."""
        try:
            args = self.resolve(tuple(stmt.args))
            kwargs = self.resolve_kwargs(stmt.kwargs)
        except MissingVariable:
            return {"status": "skip"}
        shots = _snapshot(self.mod, [*args, *kwargs.values()])
        try:
            result = self._apply(stmt, args, kwargs)
        except MissingVariable:
            return {"status": "skip"}
        except BaseException as e:  # noqa: BLE001 - PanicException derives from BaseException
            outcome = exception_outcome(e)
            del e
            outcome["mutated"] = _mutations(self.mod, shots)
            return outcome
        del shots
        if stmt.kind == "iop":
            self.env[stmt.args[0].name] = result
        elif stmt.target is not None and stmt.kind not in ("setattr", "setitem"):
            self.env[stmt.target] = result
        if stmt.target is None and stmt.kind in ("call", "method"):
            return {"status": "ok", "value": ("unused",)}  # e.g. manual_seed: its result is not kept
        try:
            outcome = {"status": "ok", "value": summarize(self.mod, result)}
        except BaseException as e:  # noqa: BLE001
            outcome = {"status": "ok", "value": ("unsummarizable", type(e).__name__)}
        if stmt.kind in ("call", "method") and stmt.fn in BACKWARD_FNS:
            outcome["grads"] = self.leaf_grads()
        return outcome

    def leaf_grads(self) -> dict:
        """The ``.grad`` summary of every leaf tensor variable that requires grad."""
        grads = {}
        for name, v in self.env.items():
            if not isinstance(v, self.mod.Tensor):
                continue
            try:
                if not (v.is_leaf and v.requires_grad):
                    continue
            except Exception as e:  # noqa: BLE001 - a stale view's flags raise, in PyTorch too
                grads[name] = ("error", type(e).__name__)
                continue
            g = v.grad
            grads[name] = None if g is None else summarize_tensor(self.mod, g, with_grad=False)
        return grads

    def _apply(self, stmt: Stmt, args: tuple, kwargs: dict) -> Any:
        kind = stmt.kind
        if kind == "call":
            return self.lookup(stmt.fn)(*args, **kwargs)
        if kind == "method":
            return getattr(args[0], stmt.fn)(*args[1:], **kwargs)
        if kind == "attr":
            return getattr(args[0], stmt.fn)
        if kind == "setattr":
            setattr(args[0], stmt.fn, args[1])
            return None
        if kind == "binop":
            return _BINOPS[stmt.fn](args[0], args[1])
        if kind == "unop":
            return _UNOPS[stmt.fn](args[0])
        if kind == "iop":
            return _IOPS[stmt.fn](args[0], args[1])
        if kind == "getitem":
            return args[0][args[1]]
        if kind == "setitem":
            args[0][args[1]] = args[2]
            return None
        if kind == "protocol":
            if stmt.fn == "contains":
                return args[0] in args[1]
            return _PROTOCOLS[stmt.fn](args[0])
        raise ValueError(f"unknown statement kind {kind!r}")


def run_program(mod: Any, stmts: list) -> tuple:
    """Runs ``stmts`` in-process; returns ``(outcomes by statement index, final state)``."""
    outcomes: dict = {}
    final: dict = {}

    def report(index: int, outcome: dict) -> None:
        if index < 0:
            final.update(outcome["tensors"])
        else:
            outcomes[index] = outcome

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Interpreter(mod).run(stmts, report)
    return outcomes, final
