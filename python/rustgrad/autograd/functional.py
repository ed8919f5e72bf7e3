"""Higher-level differentiation of whole functions, as ``torch.autograd.functional``.

``vjp``, ``jvp``, ``jacobian``, ``hessian``, ``vhp`` and ``hvp`` take a function of tensors and the
point at which to differentiate it. Results mirror the structure of the arguments: a tensor where
the inputs (or outputs) were a single tensor, a tuple where they were a tuple; ``jacobian`` and
``hessian`` of tuples give tuples of tuples indexed ``[output][input]`` (``[input][input]``).

An output that does not depend on an input gives zeros, or, with ``strict=True``, a
``RuntimeError``. With ``create_graph=True`` the results are part of the autograd graph and can
be differentiated again; otherwise they are detached.

``jvp`` and ``hvp`` use the double-backward trick, and ``jacobian``/``hessian`` build the Jacobian
one row per output element; with ``vectorize=True`` they take all rows at once instead: ``func``
mapped with ``vmap`` over one copy of the inputs per output element, and one backward with
one-hot cotangents. The ``"forward-mode"`` strategy has PyTorch's restrictions
(``vectorize=True``, no ``strict``, no ``create_graph``) and is computed the same way.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

import rustgrad
from rustgrad import Tensor

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


# ----- argument handling -----


def _as_tuple(value: Any, arg_name: str, fn_name: str) -> tuple[bool, tuple]:
    """``(was_a_tuple, value as a tuple)``; every element must be a tensor."""
    was_tuple = isinstance(value, tuple)
    values = value if was_tuple else (value,)
    for index, element in enumerate(values):
        if not isinstance(element, Tensor):
            where = f"the value at index {index}" if was_tuple else f"the given {arg_name}"
            raise TypeError(
                f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors but "
                f"{where} has type {type(element)}."
            )
    return was_tuple, values


def _unpack(result: tuple, was_tuple: Any) -> Any:
    """Undoes ``_as_tuple``: ``was_tuple`` is a flag, or a pair of flags ``(outer, inner)`` for
    nested results."""
    if isinstance(was_tuple, tuple):
        outer, inner = was_tuple
        if not inner:
            result = tuple(row[0] for row in result)
        return result if outer else result[0]
    return result if was_tuple else result[0]


def _differentiable_copies(tensors: tuple, create_graph: bool, need_graph: bool) -> tuple:
    """Tensors to call the user function with. With ``create_graph`` an input that requires grad
    stays connected to the caller's graph (through a view); anything else is detached, and made
    to require grad when ``need_graph``."""
    return tuple(
        t.view_as(t) if create_graph and t.requires_grad else t.detach().requires_grad_(need_graph)
        for t in tensors
    )


def _detached(results: tuple, create_graph: bool) -> tuple:
    """Detaches the (possibly nested) results unless the graph is wanted."""
    if create_graph:
        return results
    return tuple(r.detach() if isinstance(r, Tensor) else _detached(r, create_graph) for r in results)


def _check_v(v: tuple, like: tuple, like_was_tuple: bool) -> None:
    if len(v) != len(like):
        if like_was_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(like)} but got {len(v)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for index, (given, expected) in enumerate(zip(v, like)):
        if given.shape != expected.shape:
            prefix = f"Entry {index} in " if like_was_tuple else ""
            raise RuntimeError(
                f"{prefix}v has invalid size: should be {expected.shape} but got {given.shape}."
            )


def _check_requires_grad(tensors: tuple, kind: str, strict: bool) -> None:
    """In strict mode, every tensor must exist and require grad; ``kind`` says what they are."""
    if not strict:
        return
    for index, t in enumerate(tensors):
        if t is None:
            raise RuntimeError(
                f"The output of the user-provided function is independent of input {index}. This is "
                "not allowed in strict mode."
            )
        if t.requires_grad:
            continue
        if kind == "hessian":
            raise RuntimeError(
                f"The hessian of the user-provided function with respect to input {index} is "
                "independent of the input. This is not allowed in strict mode. You should ensure that "
                "your function is thrice differentiable and that the hessian depends on the inputs."
            )
        if kind == "jacobian":
            raise RuntimeError(
                "While computing the hessian, found that the jacobian of the user-provided function "
                f"with respect to input {index} is independent of the input. This is not allowed in "
                "strict mode. You should ensure that your function is twice differentiable and that "
                "the jacobian depends on the inputs (this would be violated by a linear function for "
                "example)."
            )
        if kind == "grad_inputs":
            raise RuntimeError(
                f"The gradient with respect to input {index} is independent of the inputs of the "
                "user-provided function. This is not allowed in strict mode."
            )
        raise RuntimeError(
            f"Output {index} of the user-provided function does not require gradients. The outputs "
            "must be computed in a differentiable manner from the input when running in strict mode."
        )


def _grad(
    outputs: tuple,
    inputs: tuple,
    grad_outputs: tuple | None = None,
    create_graph: bool = False,
    retain_graph: bool | None = None,
) -> tuple:
    """``autograd.grad`` over the outputs that require grad (``None`` for every input if none
    does), with ``allow_unused=True``."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    return rustgrad.autograd.grad(
        [o for o, _ in pairs],
        inputs,
        [g for _, g in pairs],
        retain_graph=retain_graph,
        create_graph=create_graph,
        allow_unused=True,
    )


_MISSING_GRAD_MESSAGES = {
    "back": "The output of the user-provided function is independent of input {i}. This is not "
    "allowed in strict mode.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the "
    "grad_outputs when using the double backward trick to compute forward mode gradients. This is "
    "not allowed in strict mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. This is "
    "not allowed in strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry {i} in "
    "the grad_jacobian. This is not allowed in strict mode as it prevents from using the double "
    "backward trick to replace forward mode AD.",
}


def _zeros_for_missing(grads: tuple, like: tuple, strict: bool, create_graph: bool, stage: str) -> tuple:
    """Replaces missing gradients by zeros shaped like ``like`` (an error in strict mode)."""
    result = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise RuntimeError(_MISSING_GRAD_MESSAGES[stage].format(i=i))
            g = rustgrad.zeros_like(like[i])
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if stage.startswith("double") else "jacobian"
            raise RuntimeError(
                f"The {what} of the user-provided function is independent of input {i}. This is not "
                "allowed in strict mode when create_graph=True."
            )
        result.append(g)
    return tuple(result)


def _check_scalar_output(outputs: tuple, outputs_were_tuple: bool, fn_name: str) -> None:
    if outputs_were_tuple:
        raise RuntimeError(f"The function given to {fn_name} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(
            f"The Tensor returned by the function given to {fn_name} should contain a single element"
        )


def _prepare_v(v: Any, like: tuple, like_was_tuple: bool, fn_name: str, create_graph: bool) -> tuple | None:
    if v is None:
        return None
    _, v = _as_tuple(v, "v", fn_name)
    v = _differentiable_copies(v, create_graph, need_graph=False)
    _check_v(v, like, like_was_tuple)
    return v


def _stack(rows: list, create_graph: bool) -> Tensor:
    """Stacks tensors of one shape along a new first dimension, differentiably if needed."""
    if not rows:
        raise RuntimeError("stack expects a non-empty TensorList")
    dtype = rows[0].dtype
    if not (create_graph and any(r.requires_grad for r in rows)):
        return rustgrad.tensor(np.stack([r.detach().numpy() for r in rows]), dtype=dtype)
    # Without a stack op, merge blocks pairwise: two blocks of k rows become one of 2k rows by
    # repeating each block twice and picking the first half from one, the second from the other
    # with ``where``, which routes gradients to the picked elements only. The row count is padded
    # to a power of two with zeros, and the padding is sliced off at the end.
    count, row_shape = len(rows), tuple(rows[0].shape)
    blocks = [r.unsqueeze(0) for r in rows]
    while len(blocks) & (len(blocks) - 1):
        blocks.append(rustgrad.zeros(1, *row_shape, dtype=dtype))
    while len(blocks) > 1:
        size = blocks[0].shape[0]
        first_half = rustgrad.tensor(np.arange(2 * size) < size).reshape(2 * size, *(1,) * len(row_shape))
        blocks = [
            rustgrad.where(first_half, _repeat_block(top), _repeat_block(bottom))
            for top, bottom in zip(blocks[0::2], blocks[1::2])
        ]
    return blocks[0][:count]


def _repeat_block(block: Tensor) -> Tensor:
    """``[block; block]`` along the first dimension."""
    return block.unsqueeze(0).expand(2, *block.shape).reshape(2 * block.shape[0], *block.shape[1:])


# ----- public functions -----


def vjp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False) -> tuple:
    """Vector-Jacobian product ``v^T J`` of ``func`` at ``inputs``.

    ``v`` has the shape of the output (it may be omitted when the output has a single element).
    Returns ``(func(inputs), vjp)``, the product shaped like the inputs.
    """
    with rustgrad.enable_grad():
        inputs_were_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _differentiable_copies(inputs, create_graph, need_graph=True)
        outputs_were_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "vjp")
        _check_requires_grad(outputs, "outputs", strict)
        v = _prepare_v(v, outputs, outputs_were_tuple, "vjp", create_graph)
        if v is None and (len(outputs) != 1 or outputs[0].numel() != 1):
            raise RuntimeError(
                "The vector v can only be None if the user-provided function returns a single Tensor "
                "with a single element."
            )

    with rustgrad.set_grad_enabled(create_graph or rustgrad.is_grad_enabled()):
        grads = _grad(outputs, inputs, v, create_graph=create_graph)
        products = _zeros_for_missing(grads, inputs, strict, create_graph, "back")

    return (
        _unpack(_detached(outputs, create_graph), outputs_were_tuple),
        _unpack(_detached(products, create_graph), inputs_were_tuple),
    )


def jvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False) -> tuple:
    """Jacobian-vector product ``J v`` of ``func`` at ``inputs``.

    ``v`` has the shape of the inputs (it may be omitted for a single one-element input). Returns
    ``(func(inputs), jvp)``, the product shaped like the outputs. Computed with two backward
    passes: ``u -> u^T J`` is linear in ``u``, and its gradient with respect to ``u`` along ``v``
    is ``J v``.
    """
    with rustgrad.enable_grad():
        inputs_were_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _differentiable_copies(inputs, create_graph, need_graph=True)
        v = _prepare_v(v, inputs, inputs_were_tuple, "jvp", create_graph)
        if v is None and (len(inputs) != 1 or inputs[0].numel() != 1):
            raise RuntimeError(
                "The vector v can only be None if the input to the user-provided function is a single "
                "Tensor with a single element."
            )
        outputs_were_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jvp")
        _check_requires_grad(outputs, "outputs", strict)
        dummy_grads = tuple(rustgrad.zeros_like(o, requires_grad=True) for o in outputs)
        vector_jacobian = _grad(outputs, inputs, dummy_grads, create_graph=True)
        _check_requires_grad(vector_jacobian, "grad_inputs", strict)

    with rustgrad.set_grad_enabled(create_graph or rustgrad.is_grad_enabled()):
        grads = _grad(vector_jacobian, dummy_grads, v, create_graph=create_graph)
        products = _zeros_for_missing(grads, outputs, strict, create_graph, "back_trick")

    return (
        _unpack(_detached(outputs, create_graph), outputs_were_tuple),
        _unpack(_detached(products, create_graph), outputs_were_tuple),
    )


def jacobian(
    func: Callable,
    inputs: Any,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
) -> Any:
    """The Jacobian of ``func`` at ``inputs``.

    For output ``i`` and input ``j`` the block has shape ``output_i.shape + input_j.shape``. A
    single input and a single output give one tensor; tuples give a tuple (of tuples) indexed
    ``[output][input]``.

    ``vectorize=True`` computes every row at once (``vmap`` over copies of the inputs, one
    backward). ``strategy="forward-mode"`` requires ``vectorize=True`` and allows neither
    ``strict`` nor ``create_graph``, as in PyTorch; its Jacobian is computed in reverse mode.
    """
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError(
            'Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your function '
            'has more outputs than inputs, "forward-mode" tends to be more performant. Otherwise, '
            'prefer to use "reverse-mode".'
        )
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError(
                "torch.autograd.functional.jacobian: `create_graph=True` and `strategy=\"forward-mode\"` "
                "are not supported together (yet). Please either set `create_graph=False` or "
                "`strategy=\"reverse-mode\"`."
            )
        if strict:
            raise RuntimeError(
                "torch.autograd.functional.jacobian: `strict=True` and `strategy=\"forward-mode\"` are "
                "not supported together (yet). Please either set `strict=False` or "
                "`strategy=\"reverse-mode\"`."
            )
        if not vectorize:
            raise NotImplementedError(
                "Computing Jacobian using forward-AD or forward-over-reverse Hessian is only "
                "implemented for `vectorize=True`."
            )

    with rustgrad.enable_grad():
        inputs_were_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _differentiable_copies(inputs, create_graph, need_graph=True)
        outputs_were_tuple, outputs = _as_tuple(
            func(*inputs), "outputs of the user-provided function", "jacobian"
        )
        _check_requires_grad(outputs, "outputs", strict)
        if vectorize and strict:
            raise RuntimeError(
                "torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
                "supported together. Please either set `strict=False` or `vectorize=False`."
            )

        if vectorize:
            vectorized = _vectorized_blocks(func, inputs, outputs, create_graph)
            if vectorized is not None:
                return _unpack(_detached(vectorized, create_graph), (outputs_were_tuple, inputs_were_tuple))

        blocks = []
        for out_index, output in enumerate(outputs):
            rows: list[list[Tensor]] = [[] for _ in inputs]
            flat_output = output.reshape(-1)
            for element in range(output.numel()):
                grads = _grad((flat_output[element],), inputs, retain_graph=True, create_graph=create_graph)
                for in_index, (g, x) in enumerate(zip(grads, inputs)):
                    if g is None:
                        if strict:
                            raise RuntimeError(
                                f"Output {out_index} of the user-provided function is independent of "
                                f"input {in_index}. This is not allowed in strict mode."
                            )
                        g = rustgrad.zeros_like(x)
                    elif strict and create_graph and not g.requires_grad:
                        raise RuntimeError(
                            "The jacobian of the user-provided function is independent of input "
                            f"{out_index}. This is not allowed in strict mode when create_graph=True."
                        )
                    rows[in_index].append(g)
            blocks.append(
                tuple(
                    _stack(r, create_graph).view(tuple(output.shape) + tuple(x.shape))
                    for r, x in zip(rows, inputs)
                )
            )

        return _unpack(_detached(tuple(blocks), create_graph), (outputs_were_tuple, inputs_were_tuple))


def _vectorized_blocks(func: Callable, inputs: tuple, outputs: tuple, create_graph: bool) -> tuple | None:
    """The Jacobian's blocks from one batched call and one backward: ``func`` mapped (``vmap``)
    over ``m`` copies of the inputs, ``m`` the number of output elements, and copy ``r``'s
    output differentiated along the ``r``-th one-hot cotangent, so that copy ``r``'s gradient is
    row ``r`` of the Jacobian. None when there is nothing to differentiate."""
    from rustgrad.func import vmap

    sizes = [o.numel() for o in outputs]
    m = sum(sizes)
    if m == 0 or not any(o.requires_grad for o in outputs):
        return None
    copies = tuple(x.unsqueeze(0).expand(m, *tuple(x.shape)) for x in inputs)

    def call(*xs: Tensor) -> tuple:
        out = func(*xs)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    batched = vmap(call, randomness="same")(*copies)
    eye = rustgrad.eye(m)
    starts = np.cumsum([0, *sizes])
    pairs = [
        (o, eye[:, int(a) : int(b)].to(o.dtype).reshape(m, *tuple(out.shape)))
        for o, out, a, b in zip(batched, outputs, starts[:-1], starts[1:])
        if o.requires_grad
    ]
    found = rustgrad.autograd.grad(
        [p[0] for p in pairs], copies, [p[1] for p in pairs],
        retain_graph=True, create_graph=create_graph, allow_unused=True,
    )  # fmt: skip
    blocks = []
    for out, a, b in zip(outputs, starts[:-1], starts[1:]):
        row = []
        for g, x in zip(found, inputs):
            shape = tuple(out.shape) + tuple(x.shape)
            row.append(rustgrad.zeros(shape, dtype=x.dtype) if g is None else g[int(a) : int(b)].reshape(shape))
        blocks.append(tuple(row))
    return tuple(blocks)


def hessian(
    func: Callable,
    inputs: Any,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
) -> Any:
    """The Hessian of the scalar function ``func`` at ``inputs``: the Jacobian of its gradient.

    A single input gives one tensor of shape ``input.shape + input.shape``; a tuple of inputs
    gives a tuple of tuples, block ``[i][j]`` of shape ``inputs[i].shape + inputs[j].shape``.
    ``vectorize`` and ``outer_jacobian_strategy`` are as for :func:`jacobian`.
    """
    inputs_were_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def scalar_func(*args: Tensor) -> Tensor:
        out = func(*args)
        out_was_tuple, outs = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _check_requires_grad(outs, "outputs", strict)
        if out_was_tuple:
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if out.numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should contain a single element")
        return out.squeeze()

    def gradient(*args: Tensor) -> tuple:
        if outer_jacobian_strategy == "forward-mode":
            args = tuple(a.requires_grad_(True) for a in args)
        grads = jacobian(scalar_func, args, create_graph=True)
        _check_requires_grad(grads, "jacobian", strict)
        return grads

    result = jacobian(
        gradient,
        inputs,
        create_graph=create_graph,
        strict=strict,
        vectorize=vectorize,
        strategy=outer_jacobian_strategy,
    )
    return _unpack(result, (inputs_were_tuple, inputs_were_tuple))


def _scalar_gradient(func: Callable, inputs: Any, v: Any, create_graph: bool, strict: bool, name: str) -> tuple:
    """The common first half of ``vhp``/``hvp`` (grad mode on): checks the arguments, evaluates the
    scalar ``func`` and its gradient with a graph. Returns ``(inputs_were_tuple, inputs, v,
    outputs_were_tuple, outputs, gradients)``."""
    inputs_were_tuple, inputs = _as_tuple(inputs, "inputs", name)
    inputs = _differentiable_copies(inputs, create_graph, need_graph=True)
    v = _prepare_v(v, inputs, inputs_were_tuple, name, create_graph)
    if v is None and (len(inputs) != 1 or inputs[0].numel() != 1):
        raise RuntimeError(
            "The vector v can only be None if the input to the user-provided function is a single "
            "Tensor with a single element."
        )
    outputs_were_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", name)
    _check_requires_grad(outputs, "outputs", strict)
    _check_scalar_output(outputs, outputs_were_tuple, name)
    gradients = _grad(outputs, inputs, create_graph=True)
    _check_requires_grad(gradients, "jacobian", strict)
    return inputs_were_tuple, inputs, v, outputs_were_tuple, outputs, gradients


def vhp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False) -> tuple:
    """Vector-Hessian product ``v^T H`` of the scalar function ``func`` at ``inputs``.

    Returns ``(func(inputs), vhp)``, the product shaped like the inputs.
    """
    with rustgrad.enable_grad():
        inputs_were_tuple, inputs, v, outputs_were_tuple, outputs, gradients = _scalar_gradient(
            func, inputs, v, create_graph, strict, "vhp"
        )

    with rustgrad.set_grad_enabled(create_graph or rustgrad.is_grad_enabled()):
        grads = _grad(gradients, inputs, v, create_graph=create_graph)
        products = _zeros_for_missing(grads, inputs, strict, create_graph, "double_back")

    return (
        _unpack(_detached(outputs, create_graph), outputs_were_tuple),
        _unpack(_detached(products, create_graph), inputs_were_tuple),
    )


def hvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False) -> tuple:
    """Hessian-vector product ``H v`` of the scalar function ``func`` at ``inputs``.

    Returns ``(func(inputs), hvp)``, the product shaped like the inputs. Uses the double-backward
    trick on the gradient, as :func:`jvp` does on the output (for a twice continuously
    differentiable function ``H`` is symmetric and this equals :func:`vhp`).
    """
    with rustgrad.enable_grad():
        inputs_were_tuple, inputs, v, outputs_were_tuple, outputs, gradients = _scalar_gradient(
            func, inputs, v, create_graph, strict, "hvp"
        )
        dummy_grads = tuple(rustgrad.zeros_like(x, requires_grad=True) for x in inputs)
        vector_hessian = _grad(gradients, inputs, dummy_grads, create_graph=True)
        _check_requires_grad(gradients, "hessian", strict)

    with rustgrad.set_grad_enabled(create_graph or rustgrad.is_grad_enabled()):
        grads = _grad(vector_hessian, dummy_grads, v, create_graph=create_graph)
        products = _zeros_for_missing(grads, inputs, strict, create_graph, "double_back_trick")

    return (
        _unpack(_detached(outputs, create_graph), outputs_were_tuple),
        _unpack(_detached(products, create_graph), inputs_were_tuple),
    )
