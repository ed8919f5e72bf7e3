"""The differentiation transforms of ``torch.func``, on top of reverse-mode autograd."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

from rustgrad.func import _batched
from rustgrad.func._pytree import tree_flatten, tree_spec_str, tree_unflatten

_state = threading.local()


@contextlib.contextmanager
def _transform_level() -> Iterator[None]:
    """Marks a transform as running on this thread: transforms inside it keep their results'
    graphs, which the outer one differentiates."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


def _inside_transform() -> bool:
    return getattr(_state, "depth", 0) > 0


def _tensor_type() -> Any:
    from rustgrad import Tensor

    return Tensor


def _track(t: Any) -> Any:
    """A tensor with the values of ``t`` whose gradient the transform can ask for: an alias
    carrying ``t``'s history if it has one (so outer levels see through it), else a new leaf."""
    if not isinstance(t, _tensor_type()):
        raise ValueError(f"Thing passed to transform API must be Tensor, got {type(t)}")  # noqa: TRY004 (PyTorch's class)
    if _batched.active_levels() or type(t) is _batched.BatchedTensor:
        # inside vmap: the physical tensor, batched at every level, is what gets differentiated
        physical, levels = _batched.track_levels(t)
        physical = physical.view_as(physical) if physical.requires_grad else physical.detach().requires_grad_()
        return _batched.rewrap(physical, levels)
    if t.requires_grad:
        return t.view_as(t)
    return t.detach().requires_grad_()


def _check_argnums(argnums: Any, n_args: int) -> tuple[int, ...]:
    """``argnums`` as a tuple of non-negative positions, with PyTorch's errors."""
    if isinstance(argnums, int) and not isinstance(argnums, bool):
        nums = (argnums,)
    elif isinstance(argnums, tuple) and all(isinstance(a, int) for a in argnums):
        if len(set(argnums)) != len(argnums):
            raise RuntimeError(f"argnums elements must be unique, got {argnums}")
        if not argnums:
            raise RuntimeError("argnums must be non-empty")
        nums = argnums
    else:
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    for a in nums:
        if not -n_args <= a < n_args:
            raise RuntimeError(f"Got argnum={a}, but only {n_args} positional inputs")
    return tuple(a % n_args for a in nums)


def _call_tracked(call: Callable[[list], Any], leaves: list, has_aux: bool, who: str) -> tuple[list, Any, Any]:
    """``(tracked, output, aux)``: ``call`` run on tracked copies of ``leaves`` (call it with grad
    on, inside a transform level); with ``has_aux`` the output must be a pair (errors name ``who``)."""
    tracked = [_track(t) for t in leaves]
    out = call(tracked)
    aux = None
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise RuntimeError(f"{who}: output of function f should be a tuple: (output, aux) if has_aux is True")
        out, aux = out
    return tracked, out, aux


def _tensor_leaves(out: Any, who: str, call: str) -> tuple[list, Any]:
    """The leaves and structure of ``out``, which must all be tensors (errors name ``who``)."""
    T = _tensor_type()
    leaves, spec = tree_flatten(out)
    for o in leaves:
        if not isinstance(o, T):
            raise RuntimeError(  # noqa: TRY004 (PyTorch's class)
                f"{who}: expected {call} to return only tensors, got unsupported type {type(o)}"
            )
    return leaves, spec


def _select(args: tuple, argnums: Any) -> tuple[Any, tuple[int, ...]]:
    """The arguments at ``argnums`` (one, or a tuple of them) and their positions."""
    nums = _check_argnums(argnums, len(args))
    chosen = args[nums[0]] if isinstance(argnums, int) else tuple(args[i] for i in nums)
    return chosen, nums


def _replace(args: tuple, nums: tuple[int, ...], single: bool, values: Any) -> tuple:
    out = list(args)
    for i, v in zip(nums, (values,) if single else values):
        out[i] = v
    return tuple(out)


def _keep_graph(originals: list) -> bool:
    """Whether results must keep their graph: an enclosing transform, or an argument that
    requires grad, may differentiate them."""
    T = _tensor_type()
    return _inside_transform() or any(isinstance(t, T) and t.requires_grad for t in originals)


def _keep_for(outputs: Any, tracked: list, keep: bool) -> bool:
    """``keep``, or whether ``outputs`` depend on a tensor that requires grad other than the
    transform's own new leaves (a parameter ``func`` closes over): its gradient may be wanted."""
    if keep:
        return True
    from rustgrad import _rustgrad

    T = _tensor_type()
    ours = {id(_batched.unwrap(t)[0]) for t in tracked}
    outs = [_batched.unwrap(o)[0] for o in tree_flatten(outputs)[0] if isinstance(o, T)]
    return any(id(leaf) not in ours for leaf in _rustgrad._leaves_behind(outs))


def _finish(x: Any, keep: bool) -> Any:
    """``x`` (a tree) as the transform returns it: detached unless its graph is wanted."""
    if keep:
        return x
    T = _tensor_type()
    leaves, spec = tree_flatten(x)
    return tree_unflatten([v.detach() if isinstance(v, T) else v for v in leaves], spec)


def _grads(outputs: list, inputs: list, cotangents: list | None, create_graph: bool) -> list:
    """``autograd.grad`` of the outputs that carry a graph, with zeros for unreached inputs."""
    import rustgrad

    pairs = [(o, c) for o, c in zip(outputs, cotangents or [None] * len(outputs)) if o.requires_grad]
    found: Any = (None,) * len(inputs)
    batched = _batched.BatchedTensor
    if pairs and any(type(x) is batched for x in [*outputs, *inputs, *(cotangents or ())]):
        found = _batched.physical_grads(
            [p[0] for p in pairs], inputs, None if cotangents is None else [p[1] for p in pairs], create_graph
        )
        return [_batched.rustgrad_zeros_like(x) if g is None else g for g, x in zip(found, inputs)]
    if pairs:
        found = rustgrad.autograd.grad(
            [p[0] for p in pairs],
            inputs,
            None if cotangents is None else [p[1] for p in pairs],
            retain_graph=True,
            create_graph=create_graph,
            allow_unused=True,
        )
    return [rustgrad.zeros_like(x) if g is None else g for g, x in zip(found, inputs)]


def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """A function returning ``(gradient, value)`` of ``func`` (which must return a one-element
    tensor, or ``(value, aux)`` with ``has_aux``) with respect to the arguments at ``argnums``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import rustgrad

        chosen, nums = _select(args, argnums)
        leaves, spec = tree_flatten(chosen)
        keep = _keep_graph(leaves)
        with rustgrad.enable_grad(), _transform_level():
            tracked, out, aux = _call_tracked(
                lambda xs: func(*_replace(args, nums, isinstance(argnums, int), tree_unflatten(xs, spec)), **kwargs),
                leaves,
                has_aux,
                "grad_and_value(f)(*args)",
            )
            if not isinstance(out, rustgrad.Tensor):
                raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a Tensor, got {type(out)}")  # noqa: TRY004 (PyTorch's class)
            if out.dim() != 0:
                raise RuntimeError(
                    "grad_and_value(f)(*args): Expected f(*args) to return a scalar Tensor, got tensor with "
                    f"{out.dim()} dims. Maybe you wanted to use the vjp or jacrev APIs instead?"
                )
            keep = _keep_for((out, aux), tracked, keep)
            grads = _grads([out], tracked, None, create_graph=True)
        gradient = _finish(tree_unflatten(grads, spec), keep)
        value = _finish(out, keep)
        if has_aux:
            return gradient, (value, _finish(aux, keep))
        return gradient, value

    return wrapper


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """A function returning the gradient of ``func`` (a one-element tensor result) with respect
    to the arguments at ``argnums``; with ``has_aux``, ``(gradient, aux)``."""
    both = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        gradient, value = both(*args, **kwargs)
        if has_aux:
            return gradient, value[1]
        return gradient

    return wrapper


def vjp(func: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """``(func(*primals), vjp_fn)`` (and ``aux`` with ``has_aux``): ``vjp_fn(cotangents)``
    gives the vector-Jacobian product for each primal."""
    import rustgrad

    leaves, spec = tree_flatten(primals)
    keep = _keep_graph(leaves)
    with rustgrad.enable_grad(), _transform_level():
        tracked, out, aux = _call_tracked(lambda xs: func(*tree_unflatten(xs, spec)), leaves, has_aux, "vjp(f, *primals)")
    out_leaves, out_spec = _tensor_leaves(out, "vjp(f, *primals)", "f(*primals)")
    keep = _keep_for((out, aux), tracked, keep)

    def vjp_fn(cotangents: Any, *, retain_graph: bool = True, create_graph: bool | None = None) -> tuple:
        ct_leaves, ct_spec = tree_flatten(cotangents)
        if ct_spec != out_spec:
            raise RuntimeError(
                "Expected pytree structure of cotangents to be the same as pytree structure of outputs to the "
                f"function. cotangents: {_short_spec(ct_spec)}, primal output: {_short_spec(out_spec)}"
            )
        want_graph = keep or _inside_transform() if create_graph is None else create_graph
        with rustgrad.enable_grad():
            grads = _grads(out_leaves, tracked, ct_leaves, create_graph=want_graph)
        return tree_unflatten(_finish(grads, want_graph), spec)

    result = (_finish(out, keep), vjp_fn)
    return (*result, _finish(aux, keep)) if has_aux else result


def _short_spec(spec: Any) -> str:
    """A structure as PyTorch's pytree prints it in short: ``*``, ``(*, *)``, ``[*]``."""
    if spec is None:
        return "*"
    kind, context, children = spec
    inner = ", ".join(_short_spec(c) for c in children)
    if kind == "list":
        return f"[{inner}]"
    if kind == "dict":
        return "{" + ", ".join(f"{k!r}: {_short_spec(c)}" for k, c in zip(context, children)) + "}"
    return f"({inner},)" if len(children) == 1 else f"({inner})"


def _jvp_core(func: Callable, primals: tuple, tangents: tuple, has_aux: bool, keep: bool) -> tuple:
    """``(output, J v, aux)`` via the derivative of a vjp with respect to its cotangent."""
    import rustgrad

    leaves, spec = tree_flatten(primals)
    t_leaves, _ = tree_flatten(tangents)
    with rustgrad.enable_grad(), _transform_level():
        who = "jvp(f, primals, tangents)"
        tracked, out, aux = _call_tracked(lambda xs: func(*tree_unflatten(xs, spec)), leaves, has_aux, who)
        out_leaves, out_spec = _tensor_leaves(out, who, "f(*primals)")
        keep = _keep_for((out, aux), tracked, keep)
        # J^T u is linear in u; its derivative along the tangent v, taken with respect to u, is J v.
        dummies = [rustgrad.zeros_like(o).requires_grad_() for o in out_leaves]
        pulled = _grads(out_leaves, tracked, dummies, create_graph=True)
        pushed = _grads(pulled, dummies, list(t_leaves), create_graph=True)
    return _finish(out, keep), _finish(tree_unflatten(pushed, out_spec), keep), _finish(aux, keep)


def jvp(func: Callable, primals: Any, tangents: Any, *, strict: bool = False, has_aux: bool = False) -> tuple:
    """``(func(*primals), J v)``: the Jacobian-vector product of ``func`` at ``primals`` along
    ``tangents`` (one tangent per primal); with ``has_aux``, ``aux`` third."""
    import rustgrad

    if not isinstance(primals, tuple):
        raise RuntimeError(  # noqa: TRY004 (PyTorch's class)
            "jvp(f, primals, tangents): Expected primals to be a tuple. E.g. it should be valid to call f(*primals)."
        )
    p_leaves, p_spec = tree_flatten(primals)
    t_leaves, t_spec = tree_flatten(tangents)
    if p_spec != t_spec:
        raise RuntimeError(
            "jvp(f, primals, tangents): Expected primals and tangents to have the same python structure. For "
            "example, if primals is a tuple of 3 tensors, tangents also must be. Got primals with structure "
            f"{tree_spec_str(p_spec)} and tangents with structure {tree_spec_str(t_spec)}"
        )
    for p, t in zip(p_leaves, t_leaves):
        if not isinstance(p, rustgrad.Tensor) or not isinstance(t, rustgrad.Tensor):
            raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to be tensors")  # noqa: TRY004 (PyTorch's class)
        if p.shape != t.shape:
            raise RuntimeError(
                "Trying to set a forward gradient that has a different size than that of the original Tensor, this "
                f"is not supported. Tensor is of size {list(p.shape)} while the given forward gradient is of size "
                f"{list(t.shape)}."
            )
    keep = _keep_graph(p_leaves + t_leaves)
    out, pushed, aux = _jvp_core(func, primals, tangents, has_aux, keep)
    return (out, pushed, aux) if has_aux else (out, pushed)


def _jacobian(func: Callable, argnums: Any, has_aux: bool, forward: bool) -> Callable:
    """The Jacobian of ``func``'s outputs (a tree) with respect to the arguments at ``argnums``:
    row by row with vjps (``forward=False``), or column by column with jvps."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import rustgrad

        chosen, nums = _select(args, argnums)
        leaves, spec = tree_flatten(chosen)
        keep = _keep_graph(leaves)
        single = isinstance(argnums, int)
        who = f"{'jacfwd' if forward else 'jacrev'}(f, ...)(*args)"
        with rustgrad.enable_grad(), _transform_level():
            tracked, out, aux = _call_tracked(
                lambda xs: func(*_replace(args, nums, single, tree_unflatten(xs, spec)), **kwargs), leaves, has_aux, who
            )
            call_args = _replace(args, nums, single, tree_unflatten(tracked, spec))
            out_leaves, out_spec = _tensor_leaves(out, who, "f(*args)")
            keep = _keep_for((out, aux), tracked, keep)
            # blocks[i][j]: d out_i / d in_j, of shape out_i.shape + in_j.shape
            if forward:
                blocks = _columns(func, call_args, kwargs, nums, single, spec, tracked, out_leaves, has_aux)
            else:
                blocks = _rows(out_leaves, tracked)
        per_output = [tree_unflatten(_finish(row, keep), spec) for row in blocks]
        jac = tree_unflatten(per_output, out_spec)
        return (jac, _finish(aux, keep)) if has_aux else jac

    return wrapper


def _rows(out_leaves: list, tracked: list) -> list[list]:
    import rustgrad

    blocks = []
    for o in out_leaves:
        n = o.numel()
        rows = []
        for k in range(n):
            basis = rustgrad.zeros(n, dtype=o.dtype)
            basis[k] = 1
            rows.append(_grads([o], tracked, [basis.reshape(o.shape)], create_graph=True))
        blocks.append(
            [
                (rustgrad.stack([r[j] for r in rows]) if n else rustgrad.zeros((0, *x.shape), dtype=x.dtype)).reshape(
                    *o.shape, *x.shape
                )
                for j, x in enumerate(tracked)
            ]
        )
    return blocks


def _columns(
    func: Callable,
    call_args: tuple,
    kwargs: dict,
    nums: tuple,
    single: bool,
    spec: Any,
    tracked: list,
    out_leaves: list,
    has_aux: bool,
) -> list[list]:
    import rustgrad

    def as_function(*xs: Any) -> Any:
        out = func(*_replace(call_args, nums, single, tree_unflatten(list(xs), spec)), **kwargs)
        return out[0] if has_aux else out

    columns: list[list[list]] = [[[] for _ in tracked] for _ in out_leaves]
    for j, x in enumerate(tracked):
        for k in range(x.numel()):
            basis = rustgrad.zeros(x.numel(), dtype=x.dtype)
            basis[k] = 1
            tangents = [basis.reshape(x.shape) if i == j else rustgrad.zeros_like(t) for i, t in enumerate(tracked)]
            _, pushed, _ = _jvp_core(as_function, tuple(tracked), tuple(tangents), False, True)
            for i, p in enumerate(tree_flatten(pushed)[0]):
                columns[i][j].append(p)
    blocks = []
    for i, o in enumerate(out_leaves):
        row = []
        for j, x in enumerate(tracked):
            cols = columns[i][j]
            stacked = rustgrad.stack(cols, dim=-1) if cols else rustgrad.zeros((*o.shape, 0), dtype=o.dtype)
            row.append(stacked.reshape(*o.shape, *x.shape))
        blocks.append(row)
    return blocks


def jacrev(
    func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False, chunk_size: int | None = None,
    _preallocate_and_copy: bool = False,
) -> Callable:
    """A function returning the Jacobian of ``func`` with respect to the arguments at
    ``argnums``, computed with reverse mode (one vjp per output element)."""
    return _jacobian(func, argnums, has_aux, forward=False)


def jacfwd(
    func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *, randomness: str = "error"
) -> Callable:
    """A function returning the Jacobian of ``func`` with respect to the arguments at
    ``argnums``, one Jacobian-vector product per input element."""
    return _jacobian(func, argnums, has_aux, forward=True)


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """A function returning the Hessian of ``func`` (a one-element result) with respect to the
    arguments at ``argnums``: ``jacfwd(jacrev(func))``."""
    return jacfwd(jacrev(func, argnums), argnums)


def functional_call(
    module: Any,
    parameter_and_buffer_dicts: Any,
    args: Any = None,
    kwargs: dict | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
) -> Any:
    """Calls ``module(*args, **kwargs)`` with its parameters and buffers replaced by the tensors
    in ``parameter_and_buffer_dicts`` (a dict of dotted names, or a sequence of dicts) for the
    call only; the module is left as it was."""
    if isinstance(parameter_and_buffer_dicts, dict):
        replacements = dict(parameter_and_buffer_dicts)
    else:
        replacements = {}
        for d in parameter_and_buffer_dicts:
            overlap = set(replacements) & set(d)
            if overlap:
                raise ValueError(
                    f"{min(overlap)} appeared in multiple dictionaries; behavior of functional call is ambiguous"
                )
            replacements.update(d)
    if strict:
        known = {name for name, _ in module.named_parameters()} | {name for name, _ in module.named_buffers()}
        unexpected = sorted(set(replacements) - known)
        missing = sorted(known - set(replacements))
        if unexpected or missing:
            parts = []
            if unexpected:
                parts.append("Unexpected key(s): " + ", ".join(f"'{k}'" for k in unexpected) + ".")
            if missing:
                parts.append("Missing key(s): " + ", ".join(f"'{k}'" for k in missing) + ".")
            raise RuntimeError(
                f"Error(s) in reparametrizing for {type(module).__name__}:\n\t" + "\n\t".join(parts)
            )
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    swapped: list[tuple[Any, str, str, Any]] = []
    try:
        for name, value in replacements.items():
            owner, _, attr = name.rpartition(".")
            target = module.get_submodule(owner) if owner else module
            for store in ("_parameters", "_buffers"):
                table = target.__dict__.get(store)
                if table is not None and attr in table:
                    swapped.append((target, store, attr, table[attr]))
                    table[attr] = value
                    break
            else:
                had = attr in target.__dict__
                swapped.append((target, "", attr, target.__dict__.get(attr) if had else _MISSING))
                object.__setattr__(target, attr, value)
        return module(*args, **(kwargs or {}))
    finally:
        for target, store, attr, old in reversed(swapped):
            if store:
                target.__dict__[store][attr] = old
            elif old is _MISSING:
                object.__delattr__(target, attr)
            else:
                object.__setattr__(target, attr, old)


_MISSING = object()
