"""``vmap``: ``func`` mapped over a batch dimension of its inputs.

``func`` runs once, on batched tensors (``_batched.BatchedTensor``) that carry the whole batch
and show one element's shape; each op applies its batching rule (one kernel call for the
batch), or loops over the batch when it has none. ``chunk_size`` changes nothing but is
accepted: the whole batch is one chunk.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

from rustgrad.func import _batched
from rustgrad.func._pytree import broadcast_prefix, tree_flatten, tree_spec_str, tree_unflatten


def _name(func: Callable) -> str:
    return getattr(func, "__name__", repr(func))


def vmap(
    func: Callable,
    in_dims: Any = 0,
    out_dims: Any = 0,
    randomness: str = "error",
    *,
    chunk_size: int | None = None,
) -> Callable:
    """A function that maps ``func`` over dimension ``in_dims`` of its inputs (``None``: not
    mapped; a nested tuple matches nested inputs) and stacks the results along ``out_dims``."""
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(
            f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}"
        )
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import rustgrad

        name = _name(func)
        if not args:
            raise ValueError(
                f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are trying to vmap "
                "over a function with no inputs. The latter is unsupported."
            )
        if not isinstance(in_dims, (int, tuple)) or isinstance(in_dims, bool):
            raise ValueError(  # noqa: TRY004 (PyTorch's class)
                f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): expected `in_dims` to be int or a (potentially "
                f"nested) tuple matching the structure of inputs, got: {type(in_dims)}."
            )
        dims = broadcast_prefix(in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args), args)
        leaves, spec = tree_flatten(args)
        if dims is None:
            raise ValueError(
                f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): in_dims is not compatible with the structure of "
                f"`inputs`. in_dims has structure {tree_spec_str(tree_flatten(in_dims)[1])} but inputs has "
                f"structure {tree_spec_str(spec)}."
            )
        sizes = []
        for leaf, d in zip(leaves, dims):
            if d is None:
                continue
            if not isinstance(d, int):
                raise ValueError(  # noqa: TRY004 (PyTorch's class)
                    f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): in_dims must be int or None, got {type(d)}"
                )
            if not isinstance(leaf, rustgrad.Tensor):
                raise ValueError(  # noqa: TRY004 (PyTorch's class)
                    f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for an input but the input is "
                    f"of type {type(leaf)}. We cannot vmap over non-Tensor arguments, please use None as the "
                    "respective in_dim"
                )
            if not -leaf.dim() <= d < max(leaf.dim(), 0) or leaf.dim() == 0:
                raise ValueError(
                    f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for some input, but that input "
                    f"is a Tensor of dimensionality {leaf.dim()} so expected in_dim to satisfy "
                    f"-{leaf.dim()} <= in_dim < {leaf.dim()}."
                )
            sizes.append(leaf.shape[d])
        if not sizes:
            raise ValueError("vmap: Expected at least one Tensor to vmap over")
        if any(s != sizes[0] for s in sizes):
            raise ValueError(
                "vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                f"{sizes} for the mapped dimension"
            )
        batch = sizes[0]
        if batch == 0:
            raise ValueError(f"vmap({name}, ...): the mapped dimension has size 0; vmap over it is not supported")
        _batched.install()
        level = _batched.push_level(batch, randomness)
        try:
            wrapped = [
                leaf if d is None else _batched.BatchedTensor(leaf.movedim(d, 0), level)
                for leaf, d in zip(leaves, dims)
            ]
            try:
                out = func(*tree_unflatten(wrapped, spec), **kwargs)
            except TypeError as error:
                if "BatchedTensor" not in str(error):
                    raise
                # A batched tensor reached the core through a path without batching support (a
                # method of an unbatched tensor, or a function of the core): the whole function
                # runs once per element instead.
                _warn_whole_function(name, error)
                _batched.pop_level()
                level = 0
                return _per_element(func, leaves, dims, spec, kwargs, out_dims, name, batch)
            return _unwrap_results(out, out_dims, name, batch, level)
        finally:
            if level:
                _batched.pop_level()

    return wrapper


def _not_a_tensor(name: str, value: Any) -> ValueError:
    return ValueError(
        f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(value)}. Did you mean to set "
        "out_dims= to None for output?"
    )


_warned_functions: set[str] = set()


def _warn_whole_function(name: str, error: Exception) -> None:
    if name in _warned_functions:
        return
    _warned_functions.add(name)
    warnings.warn(
        f"vmap({name}): a batched tensor reached an op without a batching rule ({error}); {name} runs once per "
        "batch element instead.",
        UserWarning,
        stacklevel=3,
    )


def _per_element(
    func: Callable, leaves: list, dims: list, spec: Any, kwargs: dict, out_dims: Any, name: str, batch: int
) -> Any:
    """``func`` called on each batch element's slices, the results stacked along ``out_dims``."""
    import rustgrad

    results = []
    for i in range(batch):
        sliced = [leaf if d is None else leaf.select(d, i) for leaf, d in zip(leaves, dims)]
        results.append(func(*tree_unflatten(sliced, spec), **kwargs))
    _, out_spec = tree_flatten(results[0])
    per_leaf = broadcast_prefix(out_dims, results[0])
    if per_leaf is None:
        return _unwrap_results(results[0], out_dims, name, batch, 0)  # raises PyTorch's error
    columns = [tree_flatten(r)[0] for r in results]
    stacked = []
    for j, d in enumerate(per_leaf):
        values = [c[j] for c in columns]
        if d is None:
            stacked.append(values[0])
            continue
        bad = next((v for v in values if not isinstance(v, rustgrad.Tensor)), None)
        if bad is not None:
            raise _not_a_tensor(name, bad)
        stacked.append(rustgrad.stack(values, dim=d))
    return tree_unflatten(stacked, out_spec)


def _unwrap_results(out: Any, out_dims: Any, name: str, batch: int, level: int) -> Any:
    """``func``'s outputs with their batch dimension moved to ``out_dims`` (an output that does
    not depend on the batch is expanded along it)."""
    import rustgrad

    out_leaves, out_spec = tree_flatten(out)
    per_leaf = broadcast_prefix(out_dims, out)
    if per_leaf is None:
        raise ValueError(
            f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with the structure of "
            f"`outputs`. out_dims has structure {tree_spec_str(tree_flatten(out_dims)[1])} but outputs has "
            f"structure {tree_spec_str(out_spec)}."
        )
    results = []
    for value, d in zip(out_leaves, per_leaf):
        batched = type(value) is _batched.BatchedTensor and value._level == level
        if d is None:
            if batched:
                raise ValueError(
                    f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim "
                    "is None"
                )
            results.append(value)
            continue
        if not isinstance(value, rustgrad.Tensor):
            raise _not_a_tensor(name, value)
        if batched:
            physical = _batched.unwrap_level(value)
        else:
            physical = value.unsqueeze(0).expand(batch, *tuple(value.shape))
        n = physical.dim()
        if not -n <= d < n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
        results.append(physical.movedim(0, d) if d % n else physical)
    return tree_unflatten(results, out_spec)
