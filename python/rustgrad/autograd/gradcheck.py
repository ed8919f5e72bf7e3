"""Finite-difference checks of rustgrad's gradients: ``gradcheck`` and ``gradgradcheck``.

Both behave like their ``torch.autograd`` namesakes. ``gradcheck`` builds, for every output that
requires grad and every input that requires grad, two Jacobian matrices of shape
``(input.numel(), output.numel())``:

* the numerical one, by central differences: each element of the input is moved by ``-eps`` and
  ``+eps`` in place (through ``input.data``, so no version counter is bumped and the input object
  the function sees stays the same), the function is re-evaluated and the element is restored;
* the analytical one, one column per output element, from ``rustgrad.autograd.grad`` with a
  one-hot ``grad_outputs``. It is computed twice to catch a non-deterministic backward.

They must satisfy ``|analytical - numerical| <= atol + rtol * |numerical|`` element-wise.
``gradgradcheck`` runs ``gradcheck`` on the function ``(inputs, grad_outputs) -> grad(func(inputs),
inputs, grad_outputs, create_graph=True)``, which checks the second derivatives.

``check_forward_ad`` builds the Jacobians again with forward mode (one one-hot tangent per input
element, under ``forward_ad.dual_level``) and compares them with the numerical ones;
``check_backward_ad=False`` leaves out the reverse-mode ones. ``check_batched_grad`` compares
``autograd.grad(..., is_grads_batched=True)`` with one call per grad_output, and
``check_batched_forward_grad`` ``func.vmap`` over tangents with one forward pass per tangent
(rustgrad's ``vmap`` calls the function once per batch element, so these check the plumbing).
``check_fwd_over_rev`` in ``gradgradcheck`` checks the first derivatives' forward-mode Jacobian.
``fast_mode=True`` runs the full (slow-mode) check, which is stricter and
gives the same verdict on correct gradients. ``masked`` only matters for sparse tensors, which
rustgrad does not have, and is ignored.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

import rustgrad
from rustgrad import Tensor

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(RuntimeError):
    """Raised by :func:`gradcheck` and :func:`gradgradcheck` when a check fails."""


_NONDET_HINT = (
    "\n\nIf the backward pass is legitimately non-deterministic, pass `nondet_tol=<tol>` to "
    "gradcheck/gradgradcheck.\n"
)

_UNDEFINED_GRAD_HINT = (
    'Please look at "Notes about undefined output gradients" in "tools/autograd/derivatives.yaml"'
)


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, tuple):
        return value
    if isinstance(value, list):
        return tuple(value)
    return (value,)


def _is_float_tensor(value: Any) -> bool:
    return isinstance(value, Tensor) and value.dtype.is_floating_point


def _differentiable_outputs(outputs: Any) -> tuple:
    return tuple(o for o in _as_tuple(outputs) if o.requires_grad)


def _values(t: Tensor) -> np.ndarray:
    """The tensor's values as a new numpy array of its own dtype."""
    return np.array(t.detach().numpy(), copy=True)


def _to_tensor(array: np.ndarray) -> Tensor:
    return rustgrad.from_numpy(np.ascontiguousarray(array))


# ----- argument checks -----


def _check_inputs(inputs: tuple, stacklevel: int) -> None:
    """Warns about single-precision inputs and rejects inputs that cannot be perturbed elementwise."""
    any_requires_grad = False
    for index, value in enumerate(inputs):
        if not (isinstance(value, Tensor) and value.requires_grad):
            continue
        if value.dtype is not rustgrad.float64:
            warnings.warn(
                f"Input #{index} requires gradient and is not a double precision floating point or "
                "complex. This check will likely fail if all the inputs are not of double precision "
                "floating point or complex. ",
                UserWarning,
                stacklevel=stacklevel + 1,
            )
        if not all(stride > 0 or size <= 1 for stride, size in zip(value.stride(), value.shape)):
            raise RuntimeError(
                f"The {index}th input has a dimension with stride 0. gradcheck only supports inputs "
                "that are non-overlapping to be able to compute the numerical gradients correctly. "
                "You should call .contiguous on the input before passing it to gradcheck."
            )
        any_requires_grad = True
    if not any_requires_grad:
        raise ValueError(
            "gradcheck expects at least one input tensor to require gradient, but none of them have "
            "requires_grad=True."
        )


# ----- numerical Jacobians -----


def _check_same_dtype_and_shape(minus: Tensor, plus: Tensor, index: tuple, eps: float) -> None:
    if minus.shape != plus.shape:
        raise AssertionError(
            "Expected `func` to return outputs with the same shape when inputs are perturbed "
            f"on index {index} by {eps}, but got: shapes {minus.shape} and {plus.shape}."
        )
    if minus.dtype is not plus.dtype:
        raise AssertionError(
            "Expected `func` to return outputs with the same dtype when inputs are perturbed "
            f"on index {index} by {eps}, but got: dtypes {minus.dtype} and {plus.dtype}."
        )


def _numerical_jacobians(
    func: Callable, inputs: tuple, reference_outputs: tuple, eps: float
) -> list[list[np.ndarray | None]]:
    """Central-difference Jacobians: ``result[k][i]`` is ``d output_i / d (k-th input requiring
    grad)`` of shape ``(input.numel(), output.numel())`` in the output's dtype, or ``None`` for an
    output that is not a floating point tensor."""

    def evaluate() -> tuple:
        return tuple(o.detach().clone() if isinstance(o, Tensor) else o for o in _as_tuple(func(*inputs)))

    result = []
    for value in inputs:
        if not (isinstance(value, Tensor) and value.requires_grad):
            continue
        jacobians: list[np.ndarray | None] = [
            np.zeros((value.numel(), o.numel()), dtype=o.detach().numpy().dtype) if _is_float_tensor(o) else None
            for o in reference_outputs
        ]
        storage = value.data  # shares memory with the input, own version counter, no graph
        for row, index in enumerate(np.ndindex(*value.shape)):
            entry = storage[index] if index else storage
            original = entry.clone()
            try:
                entry.copy_(original - eps)
                minus = evaluate()
                entry.copy_(original + eps)
                plus = evaluate()
            finally:
                entry.copy_(original)
            for jacobian, low, high in zip(jacobians, minus, plus):
                if jacobian is None:
                    continue
                _check_same_dtype_and_shape(low, high, index, eps)
                jacobian[row, :] = ((high - low) / (2 * eps)).reshape(-1).numpy()
        result.append(jacobians)
    return result


# ----- analytical Jacobians -----


def _analytical_jacobian_pass(output: Tensor, diff_inputs: list) -> tuple[list[np.ndarray], bool, bool]:
    """One backward pass per output element; returns the Jacobians (input dtype, shape
    ``(input.numel(), output.numel())``) and whether every gradient had the input's dtype and shape."""
    jacobians = [np.zeros((x.numel(), output.numel()), dtype=x.detach().numpy().dtype) for x in diff_inputs]
    dtypes_ok = sizes_ok = True
    basis = np.zeros(output.numel(), dtype=output.detach().numpy().dtype)
    for column in range(output.numel()):
        basis[:] = 0
        basis[column] = 1
        grad_output = rustgrad.tensor(basis.reshape(tuple(output.shape)), dtype=output.dtype)
        grads = rustgrad.autograd.grad(output, diff_inputs, grad_output, retain_graph=True, allow_unused=True)
        for jacobian, x, g in zip(jacobians, diff_inputs, grads):
            if g is None:
                continue
            if g.shape != x.shape:
                sizes_ok = False
            elif g.dtype is not x.dtype:
                dtypes_ok = False
            values = _values(g).reshape(-1)
            if values.size == jacobian.shape[0]:
                jacobian[:, column] = values
    return jacobians, dtypes_ok, sizes_ok


def _analytical_jacobians(
    output: Tensor, diff_inputs: list, nondet_tol: float, check_grad_dtypes: bool
) -> list[np.ndarray]:
    first, dtypes_ok, sizes_ok = _analytical_jacobian_pass(output, diff_inputs)
    second, _, _ = _analytical_jacobian_pass(output, diff_inputs)
    if not dtypes_ok and check_grad_dtypes:
        raise GradcheckError("Gradient has dtype mismatch")
    if not sizes_ok:
        raise GradcheckError("Analytical gradient has incorrect size")
    for a, b in zip(first, second):
        if a.size and np.max(np.abs(a - b)) > nondet_tol:
            raise GradcheckError(
                "Backward is not reentrant, i.e., running backward with same input and grad_output "
                "multiple times gives different values, although analytical gradient matches "
                f"numerical gradient.The tolerance for nondeterminism was {nondet_tol}." + _NONDET_HINT
            )
    return first


def _allclose(analytical: np.ndarray, numerical: np.ndarray, rtol: float, atol: float) -> bool:
    common = np.result_type(analytical, numerical)
    return bool(np.allclose(analytical.astype(common), numerical.astype(common), rtol=rtol, atol=atol))


# ----- checks made with zero grad_outputs -----


def _grads_with_zero_grad_outputs(outputs: tuple, diff_inputs: list) -> tuple:
    zeros = [rustgrad.zeros_like(o) for o in outputs]
    return rustgrad.autograd.grad(outputs, diff_inputs, zeros, allow_unused=True)


def _check_backward_scales_with_grad_output(outputs: tuple, diff_inputs: list) -> None:
    for g, x in zip(_grads_with_zero_grad_outputs(outputs, diff_inputs), diff_inputs):
        if g is None:
            continue
        if np.any(_values(g) != 0):
            raise GradcheckError("backward not multiplied by grad_output")
        if g.dtype is not x.dtype:
            raise GradcheckError("grad is incorrect type")
        if g.shape != x.shape:
            raise GradcheckError("grad is incorrect size")


def _check_undefined_grads(func: Callable, inputs: tuple, diff_inputs: list) -> None:
    """rustgrad has no undefined (``None``) gradient tensors to feed a backward function, so this
    checks the nearest situations: every output given a zero gradient, and, when there are several
    outputs, each one in turn left out of the backward pass entirely. Both must succeed and give
    gradients that are ``None`` or zero."""

    def check(outputs: tuple) -> None:
        try:
            grads = _grads_with_zero_grad_outputs(outputs, diff_inputs)
        except RuntimeError as error:
            _warn_undefined_grad_check()
            raise GradcheckError(
                f"Expected backward function to handle undefined output grads. {_UNDEFINED_GRAD_HINT}"
            ) from error
        if any(g is not None and np.any(_values(g) != 0) for g in grads):
            _warn_undefined_grad_check()
            raise GradcheckError(
                "Expected all input grads to be undefined or zero when all output grads are undefined "
                f"or zero. {_UNDEFINED_GRAD_HINT}"
            )

    outputs = _differentiable_outputs(func(*inputs))
    check(outputs)
    if len(outputs) > 1:
        for left_out in range(len(outputs)):
            outputs = _differentiable_outputs(func(*inputs))
            check(tuple(o for i, o in enumerate(outputs) if i != left_out))


def _warn_undefined_grad_check() -> None:
    warnings.warn(
        "Backwards compatibility: New undefined gradient support checking feature is enabled by "
        "default, but it may break existing callers of this function. If this is true for you, you "
        'can call this function with "check_undefined_grad=False" to disable the feature',
        UserWarning,
        stacklevel=6,
    )


# ----- gradcheck -----


def _mismatch_message(output_index: int, input_index: int, numerical: np.ndarray, analytical: np.ndarray) -> str:
    return (
        f"Jacobian mismatch for output {output_index:d} with respect to input {input_index:d},\n"
        f"numerical:{_to_tensor(numerical)}\nanalytical:{_to_tensor(analytical)}\n"
    )


def _forward_outputs(func: Callable, args: tuple, position: int, tangent: Tensor) -> tuple:
    """The outputs' tangents (None for a non-float output) with ``args[position]`` made dual."""
    from rustgrad.autograd import forward_ad

    with forward_ad.dual_level():
        dual_args = list(args)
        dual_args[position] = forward_ad.make_dual(args[position], tangent)
        outs = _as_tuple(func(*dual_args))
        return tuple(forward_ad.unpack_dual(o).tangent if _is_float_tensor(o) else None for o in outs)


def _check_forward_jacobians(
    func: Callable, args: tuple, func_out: tuple, numerical: list, rtol: float, atol: float
) -> None:
    """Forward-mode Jacobians, one one-hot tangent per input element, against the numerical ones."""
    positions = [i for i, x in enumerate(args) if isinstance(x, Tensor) and x.requires_grad]
    for input_index, position in enumerate(positions):
        x = args[position]
        columns: list[list[np.ndarray]] = [[] for _ in func_out]
        basis = np.zeros(x.numel(), dtype=x.detach().numpy().dtype)
        for element in range(x.numel()):
            basis[:] = 0
            basis[element] = 1
            tangent = rustgrad.tensor(basis.reshape(tuple(x.shape)), dtype=x.dtype)
            for out_index, (o, t) in enumerate(zip(func_out, _forward_outputs(func, args, position, tangent))):
                if _is_float_tensor(o):
                    values = np.zeros(o.numel()) if t is None else _values(t).reshape(-1)
                    columns[out_index].append(values)
        for output_index, o in enumerate(func_out):
            n = numerical[input_index][output_index]
            if n is None:
                continue
            a = np.stack(columns[output_index]) if columns[output_index] else np.zeros_like(n)
            if not _allclose(a, n, rtol, atol):
                raise GradcheckError(
                    f"Jacobian computed with forward mode mismatch for output {output_index:d} with respect to input "
                    f"{input_index:d},\nnumerical:{_to_tensor(n)}\nanalytical:{_to_tensor(a)}\n"
                )


def _check_batched_grad(outputs: tuple, diff_inputs: list) -> None:
    """``is_grads_batched=True`` against one ``autograd.grad`` per grad_output."""
    batch = [tuple(rustgrad.randn(o.shape, dtype=o.dtype) for o in outputs) for _ in range(2)]
    stacked = [rustgrad.stack([b[i] for b in batch]) for i in range(len(outputs))]
    together = rustgrad.autograd.grad(outputs, diff_inputs, stacked, retain_graph=True, allow_unused=True,
                                      is_grads_batched=True)
    for k, grads_out in enumerate(batch):
        alone = rustgrad.autograd.grad(outputs, diff_inputs, grads_out, retain_graph=True, allow_unused=True)
        for a, t in zip(alone, together):
            if (a is None) != (t is None) or (a is not None and not np.allclose(_values(a), _values(t[k]))):
                raise GradcheckError("While computing batched gradients, got: the batched gradients differ")


def _check_batched_forward(func: Callable, args: tuple) -> None:
    """``func.vmap`` over a batch of tangents against one forward pass per tangent."""
    from rustgrad.func import vmap

    positions = [i for i, x in enumerate(args) if isinstance(x, Tensor) and x.requires_grad]
    for position in positions:
        x = args[position]
        tangents = rustgrad.randn((2, *x.shape), dtype=x.dtype)

        def pushed(t: Tensor, position: int = position) -> tuple:
            return tuple(r for r in _forward_outputs(func, args, position, t) if r is not None)

        together = vmap(pushed)(tangents)
        for k in range(2):
            for a, t in zip(pushed(tangents[k]), together):
                if not np.allclose(_values(a), _values(t[k])):
                    raise GradcheckError("While computing batched forward gradients, the batched values differ")


def _run_gradcheck(
    func: Callable,
    inputs: Any,
    eps: float,
    atol: float,
    rtol: float,
    nondet_tol: float,
    check_undefined_grad: bool,
    check_grad_dtypes: bool,
    *,
    check_backward_ad: bool = True,
    check_forward_ad: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
) -> bool:
    args = _as_tuple(inputs)
    _check_inputs(args, stacklevel=3)
    diff_inputs = [x for x in args if isinstance(x, Tensor) and x.requires_grad]

    func_out = _as_tuple(func(*args))
    outputs = _differentiable_outputs(func_out)
    numerical = _numerical_jacobians(func, args, func_out, eps)

    if not outputs:
        if any(j is not None and np.any(j != 0) for per_input in numerical for j in per_input):
            raise GradcheckError("Numerical gradient for function expected to be zero")
        return True

    if check_forward_ad:
        _check_forward_jacobians(func, args, func_out, numerical, rtol, atol)
        if check_batched_forward_grad:
            _check_batched_forward(func, args)
    if not check_backward_ad:
        return True

    # numerical[k][i] -> by_output[i][k], keeping only the outputs that require grad
    by_output = [
        [per_input[i] for per_input in numerical] for i, o in enumerate(func_out) if o.requires_grad
    ]
    if check_batched_grad:
        _check_batched_grad(outputs, diff_inputs)
    for output_index, output in enumerate(outputs):
        analytical = _analytical_jacobians(output, diff_inputs, nondet_tol, check_grad_dtypes)
        for input_index, (a, n) in enumerate(zip(analytical, by_output[output_index])):
            if not _allclose(a, n, rtol, atol):  # type: ignore[arg-type]
                raise GradcheckError(_mismatch_message(output_index, input_index, n, a))  # type: ignore[arg-type]

    _check_backward_scales_with_grad_output(outputs, diff_inputs)
    if check_undefined_grad:
        _check_undefined_grads(func, args, diff_inputs)
    return True


def gradcheck(
    func: Callable,
    inputs: Any,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
    check_forward_ad: bool = False,
    check_backward_ad: bool = True,
    fast_mode: bool = False,
    masked: bool | None = None,
) -> bool:
    """Checks the gradients of ``func`` at ``inputs`` against central finite differences.

    ``inputs`` is a tensor or a tuple of arguments; only tensors with ``requires_grad=True`` are
    differentiated, anything else is passed through unchanged. ``func`` returns a tensor or a
    tuple of tensors; only outputs that require grad are checked (if none does, the numerical
    Jacobian must be zero). Inputs should be float64: a ``UserWarning`` says so otherwise.

    Beyond the Jacobians, backward must give zero gradients for zero ``grad_outputs`` and, with
    ``check_undefined_grad``, cope with outputs that take no part in the backward pass.

    Returns ``True`` when every check passes. On a failure raises :class:`GradcheckError`, or
    returns ``False`` if ``raise_exception=False``. ``fast_mode=True`` runs the full check.
    ``check_forward_ad`` checks forward mode too, ``check_backward_ad=False`` skips reverse mode.
    """
    if not (check_forward_ad or check_backward_ad):
        raise AssertionError("Expected at least one of check_forward_ad or check_backward_ad to be True")
    if check_batched_grad and not check_backward_ad:
        raise AssertionError("Setting check_batched_grad=True requires check_backward_ad to be True")
    if check_batched_forward_grad and not check_forward_ad:
        raise AssertionError("Setting check_batched_forward_grad=True requires check_forward_ad to be True")
    try:
        return _run_gradcheck(
            func,
            inputs,
            eps,
            atol,
            rtol,
            nondet_tol,
            check_undefined_grad and check_backward_ad,
            check_grad_dtypes,
            check_backward_ad=check_backward_ad,
            check_forward_ad=check_forward_ad,
            check_batched_grad=check_batched_grad,
            check_batched_forward_grad=check_batched_forward_grad,
        )
    except GradcheckError:
        if raise_exception:
            raise
        return False


# ``torch.autograd.gradcheck`` names the function, which hides the module of the same name; keep
# ``rustgrad.autograd.gradcheck.GradcheckError`` working either way.
gradcheck.GradcheckError = GradcheckError  # type: ignore[attr-defined]


# ----- gradgradcheck -----


def _random_grad_output(like: Tensor, noncontiguous: bool) -> Tensor:
    """Uniform values in [-1, 1) from the global generator (the values PyTorch's ``make_tensor``
    draws), as a leaf that requires grad; optionally a non-contiguous view."""
    dtype = like.dtype if like.dtype.is_floating_point else rustgrad.float64
    with rustgrad.no_grad():
        values = rustgrad.rand(list(like.shape), dtype=dtype) * 2 - 1
        if noncontiguous and values.numel() > 1:
            doubled = np.repeat(values.numpy(), 2, axis=-1)
            values = rustgrad.tensor(doubled, dtype=dtype)[..., ::2]
    return values.requires_grad_(True)


def gradgradcheck(
    func: Callable,
    inputs: Any,
    grad_outputs: Any = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    gen_non_contig_grad_outputs: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_fwd_over_rev: bool = False,
    check_rev_over_rev: bool = True,
    fast_mode: bool = False,
    masked: bool | None = None,
) -> bool:
    """Checks the second derivatives of ``func``: runs :func:`gradcheck` on
    ``(inputs, grad_outputs) -> autograd.grad(func(inputs), inputs, grad_outputs, create_graph=True)``.

    Without ``grad_outputs``, one random tensor per output that requires grad is drawn from the
    global generator (seed it with ``rustgrad.manual_seed`` for reproducible runs), uniform in
    [-1, 1), requiring grad, so the dependence of the gradient on ``grad_outputs`` is checked too.
    Given ``grad_outputs`` are differentiated only where they require grad.
    ``check_fwd_over_rev`` checks the first derivatives in forward mode too.
    """
    if not (check_fwd_over_rev or check_rev_over_rev):
        raise AssertionError("Expected at least one of check_fwd_over_rev or check_rev_over_rev to be True")
    if check_undefined_grad and not check_rev_over_rev:
        raise AssertionError("Setting check_undefined_grad=True requires check_rev_over_rev to be True")
    if check_batched_grad and not check_rev_over_rev:
        raise AssertionError("Setting check_batched_grad=True requires check_rev_over_rev to be True")

    args = _as_tuple(inputs)
    if grad_outputs is None:
        outputs = _differentiable_outputs(func(*args))
        seeds = tuple(_random_grad_output(o, gen_non_contig_grad_outputs) for o in outputs)
    else:
        seeds = _as_tuple(grad_outputs)
    n_args = len(args)
    diff_arg_positions = {i for i, x in enumerate(args) if isinstance(x, Tensor) and x.requires_grad}

    def first_derivatives(*values: Any) -> tuple:
        xs, vs = values[:n_args], values[n_args:]
        outputs = _differentiable_outputs(func(*xs))
        diff_xs = [x for i, x in enumerate(xs) if i in diff_arg_positions]
        grads = rustgrad.autograd.grad(outputs, diff_xs, vs, create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(
        first_derivatives,
        args + seeds,
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        nondet_tol=nondet_tol,
        check_undefined_grad=check_undefined_grad,
        check_grad_dtypes=check_grad_dtypes,
        check_batched_grad=check_batched_grad,
        check_forward_ad=check_fwd_over_rev,
        check_backward_ad=check_rev_over_rev,
        fast_mode=fast_mode,
        masked=masked,
    )
