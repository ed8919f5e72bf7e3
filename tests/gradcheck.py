"""Finite-difference gradient checks for rustgrad, with numpy as the independent oracle.

This is a helper module, not a test file. A checked function ``f`` takes float64 tensors as
positional arguments and returns a tensor or a tuple/list of tensors (``None`` entries count as
zeros). The numerical Jacobian perturbs copies of the input arrays and rebuilds fresh leaf tensors
for every evaluation, so it never relies on rustgrad's autograd; only the forward values do.

* ``numerical_jacobian(f, inputs, eps)``: central differences, one matrix per input of shape
  ``(total output elements, input elements)``.
* ``gradcheck(f, inputs)``: vector-Jacobian products from ``rustgrad.autograd.grad`` with random
  ``grad_outputs`` against ``v @ J_numerical``.
* ``gradgradcheck(f, inputs)``: ``gradcheck`` of ``(inputs, v) -> grad(f(inputs), inputs, v,
  create_graph=True)``, i.e. the second derivatives, including the dependence on ``v``.
"""

import numpy as np
import rustgrad


def _to_array(x):
    if isinstance(x, rustgrad.Tensor):
        return values_of(x)
    return np.array(x, dtype=np.float64, copy=True)


def values_of(t):
    """A tensor's values as a new float64 array. (PyTorch's ZeroTensors, met only when this
    module is pointed at real PyTorch to validate the tests, have no storage to read.)"""
    t = t.detach()
    if getattr(t, "_is_zerotensor", lambda: False)():
        return np.zeros(tuple(t.shape))
    return np.array(t.numpy(), dtype=np.float64, copy=True)


def _as_list(out):
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def _leaves(arrays):
    return [rustgrad.tensor(a, dtype=rustgrad.float64, requires_grad=True) for a in arrays]


def _output_arrays(f, arrays):
    """Evaluates ``f`` on fresh leaves built from ``arrays``; returns the outputs as float64 arrays."""
    outs = _as_list(f(*_leaves(arrays)))
    result = []
    for o in outs:
        if o is None:
            result.append(None)
            continue
        assert isinstance(o, rustgrad.Tensor), f"f must return tensors, got {type(o).__name__}"
        assert o.dtype == rustgrad.float64, f"f must return float64 tensors, got {o.dtype}"
        result.append(values_of(o))
    return result


def _flatten(values, like):
    parts = []
    for v, ref in zip(values, like):
        parts.append(np.zeros(ref.size) if v is None else np.asarray(v, dtype=np.float64).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0)


def numerical_jacobian(f, inputs, eps=1e-6):
    """Central-difference Jacobians of ``f`` at ``inputs`` (arrays, numbers or tensors).

    Returns a list with one float64 matrix per input, of shape ``(n_out, inputs[i].size)``, where
    ``n_out`` is the total number of elements of all outputs (flattened in order, C order).
    """
    base = [_to_array(x) for x in inputs]
    ref = [np.zeros(0) if o is None else o for o in _output_arrays(f, base)]
    n_out = sum(o.size for o in ref)
    jacobians = []
    for i, arr in enumerate(base):
        jac = np.zeros((n_out, arr.size))
        for k in range(arr.size):
            plus = [b.copy() for b in base]
            minus = [b.copy() for b in base]
            plus[i].flat[k] += eps
            minus[i].flat[k] -= eps
            f_plus = _flatten(_output_arrays(f, plus), ref)
            f_minus = _flatten(_output_arrays(f, minus), ref)
            jac[:, k] = (f_plus - f_minus) / (2.0 * eps)
        jacobians.append(jac)
    return jacobians


def gradcheck(f, inputs, atol=1e-5, rtol=1e-4, eps=1e-6, n_vectors=2, seed=0):
    """Checks the analytic vector-Jacobian products of ``f`` against central differences.

    For ``n_vectors`` random ``v`` (one array per output), ``rustgrad.autograd.grad(outputs,
    inputs, v)`` must equal ``v @ J`` for every input, with the input's shape and dtype float64.
    Raises ``AssertionError`` on a mismatch; returns ``True`` otherwise.
    """
    arrays = [_to_array(x) for x in inputs]
    jacobians = numerical_jacobian(f, arrays, eps=eps)
    rng = np.random.default_rng(seed)
    for trial in range(n_vectors):
        leaves = _leaves(arrays)
        outs = _as_list(f(*leaves))
        vs = [None if o is None else rng.standard_normal(tuple(o.shape)) for o in outs]
        diff = [(o, v) for o, v in zip(outs, vs) if o is not None and o.requires_grad]
        if diff:
            grads = rustgrad.autograd.grad(
                [o for o, _ in diff],
                leaves,
                [rustgrad.tensor(v, dtype=rustgrad.float64) for _, v in diff],
                allow_unused=True,
            )
        else:
            grads = [None] * len(leaves)
        assert len(grads) == len(leaves), f"grad returned {len(grads)} gradients for {len(leaves)} inputs"
        v_flat = np.concatenate([v.reshape(-1) for v in vs if v is not None] or [np.zeros(0)])
        for i, (leaf, g, jac) in enumerate(zip(leaves, grads, jacobians)):
            expected = (v_flat @ jac).reshape(arrays[i].shape)
            if g is None:
                actual = np.zeros(arrays[i].shape)
            else:
                assert tuple(g.shape) == tuple(leaf.shape), (
                    f"gradient of input {i} has shape {tuple(g.shape)}, expected {tuple(leaf.shape)}"
                )
                assert g.dtype == rustgrad.float64, f"gradient of input {i} has dtype {g.dtype}"
                actual = values_of(g)
            np.testing.assert_allclose(
                actual,
                expected,
                rtol=rtol,
                atol=atol,
                err_msg=f"vector-Jacobian product of input {i} (trial {trial}) differs from finite differences",
            )
    return True


def gradgradcheck(f, inputs, atol=1e-5, rtol=1e-4, eps=1e-6, n_vectors=2, seed=0):
    """Second-order check: ``gradcheck`` of ``(inputs, v) -> grad(f(inputs), inputs, v,
    create_graph=True)``, with fixed random ``v`` that is itself a differentiated input."""
    arrays = [_to_array(x) for x in inputs]
    n = len(arrays)
    outs = _as_list(f(*_leaves(arrays)))
    rng = np.random.default_rng(seed + 1000)
    v_arrays = [rng.standard_normal(tuple(o.shape)) for o in outs if o is not None]
    keep = [o is not None for o in outs]

    def first_derivative(*args):
        xs, vs = list(args[:n]), list(args[n:])
        ys = [o for o, k in zip(_as_list(f(*xs)), keep) if k]
        diff = [(y, v) for y, v in zip(ys, vs) if y.requires_grad]
        if not diff:
            return tuple(rustgrad.zeros_like(x) for x in xs)
        grads = rustgrad.autograd.grad(
            [y for y, _ in diff], xs, [v for _, v in diff], create_graph=True, allow_unused=True
        )
        return tuple(rustgrad.zeros_like(x) if g is None else g for g, x in zip(grads, xs))

    return gradcheck(first_derivative, arrays + v_arrays, atol=atol, rtol=rtol, eps=eps,
                     n_vectors=n_vectors, seed=seed)
