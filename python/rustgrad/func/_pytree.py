"""Nested containers of tensors (tuples, lists, dicts, namedtuples) flattened to a list of
leaves and rebuilt: what the ``func`` transforms accept as arguments and results."""

from __future__ import annotations

from typing import Any

# A spec is ``None`` for a leaf, else ``(kind, context, children)``: kind is "tuple", "list",
# "dict" or "namedtuple"; context is the dict's keys or the namedtuple's class.
Spec = Any


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def tree_flatten(tree: Any) -> tuple[list, Spec]:
    """``(leaves, spec)``: the leaves of ``tree`` in order, and how to rebuild it."""
    leaves: list = []

    def walk(node: Any) -> Spec:
        if _is_namedtuple(node):
            return ("namedtuple", type(node), [walk(c) for c in node])
        if isinstance(node, tuple):
            return ("tuple", None, [walk(c) for c in node])
        if isinstance(node, list):
            return ("list", None, [walk(c) for c in node])
        if isinstance(node, dict):
            keys = list(node)
            return ("dict", keys, [walk(node[k]) for k in keys])
        leaves.append(node)
        return None

    spec = walk(tree)
    return leaves, spec


def tree_unflatten(leaves: list, spec: Spec) -> Any:
    """Rebuilds a tree of ``spec``'s shape from ``leaves`` (in order)."""
    it = iter(leaves)

    def build(s: Spec) -> Any:
        if s is None:
            return next(it)
        kind, context, children = s
        values = [build(c) for c in children]
        if kind == "tuple":
            return tuple(values)
        if kind == "list":
            return values
        if kind == "namedtuple":
            return context(*values)
        return dict(zip(context, values))

    return build(spec)


def tree_spec_str(spec: Spec) -> str:
    """PyTorch's rendering of a structure in error messages: ``*`` for a leaf,
    ``TreeSpec(tuple, None, [*, *])`` for a tuple of two."""
    if spec is None:
        return "*"
    kind, context, children = spec
    inner = ",\n  ".join(tree_spec_str(c) for c in children)
    shown = context.__name__ if kind == "namedtuple" else context
    return f"TreeSpec({kind}, {shown}, [{inner}])"


def broadcast_prefix(prefix: Any, tree: Any) -> list | None:
    """The value of ``prefix`` for each leaf of ``tree``, where ``prefix`` matches the top of
    ``tree``'s structure and a non-container in it applies to the whole subtree below (how
    ``in_dims`` matches ``vmap``'s inputs); ``None`` if the structures do not match."""
    out: list = []

    def walk(p: Any, node: Any) -> bool:
        if not isinstance(p, (tuple, list, dict)):
            out.extend([p] * len(tree_flatten(node)[0]))
            return True
        if isinstance(p, dict):
            if not isinstance(node, dict) or set(p) != set(node):
                return False
            return all(walk(p[k], node[k]) for k in node)
        if not isinstance(node, (tuple, list)) or isinstance(node, dict) or len(p) != len(node):
            return False
        if isinstance(p, list) != isinstance(node, list):
            return False
        return all(walk(a, b) for a, b in zip(p, node))

    return out if walk(prefix, tree) else None
