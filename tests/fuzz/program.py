"""Programs as data: statements over named variables, runnable against any torch-like module.

A program is a list of :class:`Stmt`. Arguments are plain Python literals (numbers, strings, ``None``,
``...``, slices, lists and tuples of them), :class:`Ref` (an earlier variable) or :class:`DType`
(``torch.float32`` and friends, resolved against the module the program runs with). The same
program runs under rustgrad and PyTorch (``interpreter.run_program``) and renders as Python
source (:func:`render`) for reproducers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Statement kinds and what ``fn`` / ``args`` mean for each.
KINDS = {
    "call": "target = module.<fn>(*args, **kwargs); fn is a dotted path such as 'nn.functional.relu'",
    "method": "target = args[0].<fn>(*args[1:], **kwargs)",
    "attr": "target = args[0].<fn>",
    "setattr": "args[0].<fn> = args[1]",
    "binop": "target = args[0] <fn> args[1]",
    "unop": "target = <fn>args[0]",
    "iop": "args[0] <fn>= args[1] (the target is args[0]'s name)",
    "getitem": "target = args[0][args[1]]",
    "setitem": "args[0][args[1]] = args[2]",
    "protocol": "target = len/list/bool/float/int/index/abs/contains/numpy of args",
    "block": "with module.<fn>(*args): body",
}

BINOPS = ("+", "-", "*", "/", "**", "@", "==", "!=", "<", "<=", ">", ">=")
UNOPS = ("-", "+")
PROTOCOLS = ("len", "list", "iter", "bool", "float", "int", "index", "abs", "contains")


@dataclass(frozen=True)
class Ref:
    """A reference to a program variable by name."""

    name: str


@dataclass(frozen=True)
class DType:
    """A dtype of the module under test, by name (``float32``, ``float64``, ``int64``, ``bool``)."""

    name: str


@dataclass
class Stmt:
    """One statement of a program (see ``KINDS`` for the meaning of ``fn`` and ``args``)."""

    kind: str
    fn: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    target: str | None = None
    body: list = field(default_factory=list)

    def op_key(self) -> str:
        """A short name of the operation, used to deduplicate findings."""
        if self.kind in ("call", "method", "attr", "setattr", "protocol", "block"):
            return f"{self.kind}:{self.fn}"
        if self.kind in ("getitem", "setitem"):
            return f"{self.kind}:{key_shape(self.args[1])}"
        return f"{self.kind}:{self.fn}"

    def refs(self) -> set:
        """Names of the variables this statement (and its body) reads."""
        names: set = set()
        _collect_refs(self.args, names)
        _collect_refs(tuple(self.kwargs.values()), names)
        for inner in self.body:
            names |= inner.refs()
        return names

    def defines(self) -> set:
        """Names of the variables this statement (and its body) binds."""
        names = {self.target} if self.target else set()
        for inner in self.body:
            names |= inner.defines()
        return names


def _collect_refs(values: Any, names: set) -> None:
    for v in values:
        if isinstance(v, Ref):
            names.add(v.name)
        elif isinstance(v, (list, tuple)):
            _collect_refs(v, names)
        elif isinstance(v, slice):
            _collect_refs((v.start, v.stop, v.step), names)


def key_shape(key: Any) -> str:
    """What kinds of items an index key holds, e.g. ``int,slice,None`` (for deduplication)."""
    items = key if isinstance(key, tuple) else (key,)
    kinds = []
    for item in items:
        if isinstance(item, Ref):
            kinds.append("tensor")
        elif item is Ellipsis:
            kinds.append("...")
        elif item is None:
            kinds.append("None")
        else:
            kinds.append(type(item).__name__)
    return ",".join(kinds)


def walk(stmts: list):
    """Every statement of ``stmts``, block bodies included, in execution order."""
    for s in stmts:
        yield s
        if s.kind == "block":
            yield from walk(s.body)


# ----------------------------------------------------------------------------- rendering


def render_value(value: Any) -> str:
    """Python source for an argument value."""
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, DType):
        return f"torch.{value.name}"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "float('nan')"
        if math.isinf(value):
            return "float('inf')" if value > 0 else "-float('inf')"
        return repr(value)
    if value is Ellipsis:
        return "..."
    if isinstance(value, slice):
        return f"slice({render_value(value.start)}, {render_value(value.stop)}, {render_value(value.step)})"
    if isinstance(value, list):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    if isinstance(value, tuple):
        if len(value) == 1:
            return "(" + render_value(value[0]) + ",)"
        return "(" + ", ".join(render_value(v) for v in value) + ")"
    return repr(value)


def _render_key_item(item: Any) -> str:
    if isinstance(item, slice):
        parts = ["" if p is None else render_value(p) for p in (item.start, item.stop, item.step)]
        text = f"{parts[0]}:{parts[1]}"
        return text + (f":{parts[2]}" if item.step is not None else "")
    return render_value(item)


def render_key(key: Any) -> str:
    """Python source for an index key, as written between brackets."""
    if isinstance(key, tuple):
        if not key:
            return "()"
        text = ", ".join(_render_key_item(k) for k in key)
        return text + "," if len(key) == 1 else text
    return _render_key_item(key)


def _render_call_args(args: tuple, kwargs: dict) -> str:
    parts = [render_value(a) for a in args]
    parts += [f"{k}={render_value(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def render_expr(stmt: Stmt) -> str:
    """The right-hand side (or the whole line, for statements without a result) of ``stmt``."""
    k, a = stmt.kind, stmt.args
    if k == "call":
        return f"torch.{stmt.fn}({_render_call_args(a, stmt.kwargs)})"
    if k == "method":
        return f"{render_value(a[0])}.{stmt.fn}({_render_call_args(a[1:], stmt.kwargs)})"
    if k == "attr":
        return f"{render_value(a[0])}.{stmt.fn}"
    if k == "setattr":
        return f"{render_value(a[0])}.{stmt.fn} = {render_value(a[1])}"
    if k == "binop":
        return f"{render_value(a[0])} {stmt.fn} {render_value(a[1])}"
    if k == "unop":
        return f"{stmt.fn}{render_value(a[0])}"
    if k == "iop":
        return f"{render_value(a[0])} {stmt.fn}= {render_value(a[1])}"
    if k == "getitem":
        return f"{render_value(a[0])}[{render_key(a[1])}]"
    if k == "setitem":
        return f"{render_value(a[0])}[{render_key(a[1])}] = {render_value(a[2])}"
    if k == "protocol":
        return _render_protocol(stmt.fn, a)
    raise ValueError(f"no expression for a {k!r} statement")


def _render_protocol(fn: str, a: tuple) -> str:
    if fn == "contains":
        return f"{render_value(a[0])} in {render_value(a[1])}"
    if fn == "iter":
        return f"list(iter({render_value(a[0])}))"
    if fn == "index":
        return f"operator.index({render_value(a[0])})"
    return f"{fn}({render_value(a[0])})"


def render_lines(stmts: list, indent: str = "", comments: dict | None = None) -> list:
    """Source lines of ``stmts``; ``comments`` maps ``id(stmt)`` to a trailing comment."""
    lines = []
    for s in stmts:
        note = (comments or {}).get(id(s))
        suffix = f"  # {note}" if note else ""
        if s.kind == "block":
            lines.append(f"{indent}with torch.{s.fn}({_render_call_args(s.args, s.kwargs)}):{suffix}")
            body = render_lines(s.body, indent + "    ", comments)
            lines.extend(body or [indent + "    pass"])
        elif s.kind in ("setattr", "iop", "setitem") or s.target is None:
            lines.append(f"{indent}{render_expr(s)}{suffix}")
        else:
            lines.append(f"{indent}{s.target} = {render_expr(s)}{suffix}")
    return lines


def render(stmts: list, import_line: str = "import torch", comments: dict | None = None) -> str:
    """The program as a runnable Python script."""
    uses_operator = any(s.kind == "protocol" and s.fn == "index" for s in walk(stmts))
    head = (["import operator"] if uses_operator else []) + [import_line, ""]
    return "\n".join(head + render_lines(stmts, comments=comments)) + "\n"
