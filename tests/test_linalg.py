"""``torch.linalg`` (issue 12, item 3): norms, inv, det, slogdet, solve, cholesky, qr, eigh, svd.

An op table in the style of ``test_ops_api.py``: forward against numpy (whose LAPACK gives the
same QR signs), ``gradcheck`` and ``gradgradcheck`` in float64, PyTorch's ``grad_fn`` names. Eigen-
and singular vectors are unique up to sign, so their rows check sign-free functions of them
(``V * V``, ``U @ Vh``). Then PyTorch's errors and, when PyTorch is installed, the same calls under both.

The file runs unchanged with ``sys.modules["rustgrad"] = torch`` to validate the expectations.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Callable, NamedTuple

import numpy as np
import pytest
import rustgrad
from op_rows import as_tuple, grad_fn_name, leaves

LA = rustgrad.linalg


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def wellcond(*shape):
    """Square matrices with a dominant diagonal: far from singular."""

    def draw(rng):
        n = shape[-1]
        return rng.standard_normal(shape) + 3.0 * np.eye(n)

    return draw


def spd(x):
    """A symmetric positive-definite matrix from any square ``x`` (differentiable)."""
    n = x.shape[-1]
    return x @ x.mT + n * rustgrad.eye(n, dtype=x.dtype)


def spd_np(a):
    n = a.shape[-1]
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def sym(x):
    return x + x.mT


def sym_np(a):
    return a + np.swapaxes(a, -1, -2)


class Row(NamedTuple):
    name: str
    fn: Callable
    ref: Callable
    inputs: Sequence[Callable]
    grad_fn: str | tuple | None
    gradgrad: bool = True


ROWS: list[Row] = []


def row(name, fn, ref, inputs, grad_fn, **kw):
    ROWS.append(Row(name, fn, ref, inputs, grad_fn, **kw))


def np_qr(a):
    return np.linalg.qr(a)


def np_svd_parts(a):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return u * u, s, vh * vh, u @ vh


def np_eigh_parts(a):
    w, v = np.linalg.eigh(a)
    return w, v * v


def eigh_parts(r):
    """Eigenvalues and the sign-free squares of the eigenvectors."""
    return r[0], r[1] * r[1]


def svd_parts(r):
    """S, sign-free functions of U and Vh, and U @ Vh."""
    u, s, vh = r
    return u * u, s, vh * vh, u @ vh


def svd_product(r):
    u, s, vh = r
    return u @ vh, s


def svd_v_parts(r):
    """``torch.svd``'s S and U @ V^T."""
    return r.S, r.U @ r.V.mT


def np_matrix_norm(ord):
    return lambda a: np.linalg.norm(a, ord, axis=(-2, -1))


# ----------------------------------------------------------------------------- the table

row("inv", lambda x: LA.inv(x), np.linalg.inv, [wellcond(3, 3)], "LinalgInvExBackward0")
row("inv_batch", lambda x: LA.inv(x), np.linalg.inv, [wellcond(2, 3, 3)], "LinalgInvExBackward0")
row("inv_ex", lambda x: LA.inv_ex(x).inverse, np.linalg.inv, [wellcond(3, 3)], "LinalgInvExBackward0")
row("inverse", lambda x: rustgrad.inverse(x), np.linalg.inv, [wellcond(4, 4)], "LinalgInvExBackward0")
row("inverse_method", lambda x: x.inverse(), np.linalg.inv, [wellcond(2, 2)], "LinalgInvExBackward0")
row("det", lambda x: LA.det(x), np.linalg.det, [wellcond(3, 3)], "LinalgDetBackward0")
row("det_batch", lambda x: rustgrad.det(x), np.linalg.det, [wellcond(2, 2, 4, 4)], "LinalgDetBackward0")
row("det_method", lambda x: x.det(), np.linalg.det, [normal(3, 3)], "LinalgDetBackward0")
row("slogdet", lambda x: tuple(LA.slogdet(x)), lambda a: tuple(np.linalg.slogdet(a)), [normal(3, 3)],
    "LinalgSlogdetBackward0")
row("slogdet_batch", lambda x: tuple(rustgrad.slogdet(x)), lambda a: tuple(np.linalg.slogdet(a)),
    [normal(2, 3, 3)], "LinalgSlogdetBackward0")
row("logdet", lambda x: rustgrad.logdet(spd(x)), lambda a: np.linalg.slogdet(spd_np(a))[1], [normal(3, 3)],
    "WhereBackward0")
row("solve", lambda a, b: LA.solve(a, b), np.linalg.solve, [wellcond(3, 3), normal(3, 2)], "LinalgSolveExBackward0")
row("solve_vector", lambda a, b: LA.solve(a, b), np.linalg.solve, [wellcond(3, 3), normal(3)],
    "LinalgSolveExBackward0")
row("solve_batch_vector", lambda a, b: LA.solve(a, b), lambda a, b: np.linalg.solve(a, b[..., None])[..., 0],
    [wellcond(2, 3, 3), normal(2, 3)], "LinalgSolveExBackward0")
row("solve_broadcast", lambda a, b: LA.solve(a, b), np.linalg.solve, [wellcond(2, 3, 3), normal(3, 2)],
    "LinalgSolveExBackward0")
row("solve_broadcast_a", lambda a, b: LA.solve(a, b), np.linalg.solve, [wellcond(3, 3), normal(2, 3, 2)],
    "LinalgSolveExBackward0")
row("solve_right", lambda a, b: LA.solve(a, b, left=False), lambda a, b: np.linalg.solve(a.T, b.T).T,
    [wellcond(3, 3), normal(2, 3)], "LinalgSolveExBackward0")
row("cholesky", lambda x: LA.cholesky(spd(x)), lambda a: np.linalg.cholesky(spd_np(a)), [normal(3, 3)],
    "LinalgCholeskyExBackward0")
row("cholesky_upper", lambda x: LA.cholesky(spd(x), upper=True), lambda a: np.linalg.cholesky(spd_np(a)).T,
    [normal(4, 4)], "LinalgCholeskyExBackward0")
row("cholesky_batch", lambda x: LA.cholesky_ex(spd(x)).L, lambda a: np.linalg.cholesky(spd_np(a)),
    [normal(2, 3, 3)], "LinalgCholeskyExBackward0")
row("qr_tall", lambda x: tuple(LA.qr(x)), np_qr, [normal(4, 3)], "LinalgQrBackward0")
row("qr_square", lambda x: tuple(LA.qr(x)), np_qr, [normal(3, 3)], "LinalgQrBackward0")
row("qr_wide", lambda x: tuple(LA.qr(x)), np_qr, [normal(3, 5)], "LinalgQrBackward0")
row("qr_batch", lambda x: tuple(LA.qr(x)), np_qr, [normal(2, 4, 2)], "LinalgQrBackward0")
row("qr_complete_wide", lambda x: tuple(LA.qr(x, mode="complete")), lambda a: np.linalg.qr(a, mode="complete"),
    [normal(2, 3)], "LinalgQrBackward0")
row("eigh", lambda x: eigh_parts(LA.eigh(sym(x))),
    lambda a: np_eigh_parts(sym_np(a)), [normal(4, 4)], ("LinalgEighBackward0", "MulBackward0"))
row("eigh_upper", lambda x: eigh_parts(LA.eigh(sym(x), UPLO="U")),
    lambda a: np_eigh_parts(sym_np(a)), [normal(2, 3, 3)], ("LinalgEighBackward0", "MulBackward0"))
row("eigvalsh", lambda x: LA.eigvalsh(sym(x)), lambda a: np.linalg.eigvalsh(sym_np(a)), [normal(3, 3)],
    "LinalgEighBackward0")
row("svd_tall", lambda x: svd_parts(LA.svd(x, full_matrices=False)),
    np_svd_parts, [normal(4, 3)], ("MulBackward0", "LinalgSvdBackward0", "MulBackward0", "MmBackward0"))
row("svd_wide", lambda x: svd_parts(LA.svd(x, full_matrices=False)),
    np_svd_parts, [normal(2, 3, 5)], ("MulBackward0", "LinalgSvdBackward0", "MulBackward0", "UnsafeViewBackward0"))
row("svd_full_square", lambda x: svd_product(LA.svd(x)), lambda a: svd_product(np.linalg.svd(a)), [normal(3, 3)],
    ("MmBackward0", "LinalgSvdBackward0"))
row("svdvals", lambda x: LA.svdvals(x), lambda a: np.linalg.svd(a, compute_uv=False), [normal(3, 5)],
    "LinalgSvdBackward0")
row("torch_svd", lambda x: svd_v_parts(rustgrad.svd(x)),
    lambda a: svd_product(np.linalg.svd(a, full_matrices=False))[::-1], [normal(4, 3)],
    ("LinalgSvdBackward0", "MmBackward0"))
row("vector_norm", lambda x: LA.vector_norm(x), lambda a: np.linalg.norm(a.reshape(-1)), [normal(3, 4)],
    "LinalgVectorNormBackward0")
row("vector_norm_3_dim", lambda x: LA.vector_norm(x, 3, dim=1), lambda a: np.linalg.norm(a, 3, axis=1),
    [normal(3, 4)], "LinalgVectorNormBackward0")
row("vector_norm_1_keepdim", lambda x: LA.vector_norm(x, 1, dim=(0, 2), keepdim=True),
    lambda a: np.abs(a).sum(axis=(0, 2), keepdims=True), [normal(2, 3, 4)], "LinalgVectorNormBackward0")
row("vector_norm_inf", lambda x: LA.vector_norm(x, math.inf), lambda a: np.abs(a).max(), [normal(5)],
    "LinalgVectorNormBackward0")
row("matrix_norm_fro", lambda x: LA.matrix_norm(x), np_matrix_norm("fro"), [normal(2, 3, 4)],
    "LinalgVectorNormBackward0")
row("matrix_norm_nuc", lambda x: LA.matrix_norm(x, "nuc"), np_matrix_norm("nuc"), [normal(3, 4)], "SumBackward1")
row("matrix_norm_2", lambda x: LA.matrix_norm(x, 2), np_matrix_norm(2), [normal(2, 3, 4)], "AmaxBackward0")
row("matrix_norm_-2", lambda x: LA.matrix_norm(x, -2), np_matrix_norm(-2), [normal(4, 3)], "AminBackward0")
row("matrix_norm_1", lambda x: LA.matrix_norm(x, 1), np_matrix_norm(1), [normal(3, 4)], "AmaxBackward0")
row("matrix_norm_-1", lambda x: LA.matrix_norm(x, -1), np_matrix_norm(-1), [normal(3, 4)], "AminBackward0")
row("matrix_norm_inf", lambda x: LA.matrix_norm(x, math.inf), np_matrix_norm(math.inf), [normal(2, 3, 4)],
    "AmaxBackward0")
row("matrix_norm_-inf_keepdim", lambda x: LA.matrix_norm(x, -math.inf, keepdim=True),
    lambda a: np.linalg.norm(a, -math.inf, axis=(-2, -1), keepdims=True), [normal(2, 3, 4)], "AminBackward0")
row("matrix_norm_dims", lambda x: LA.matrix_norm(x, 1, dim=(2, 0)),
    lambda a: np.linalg.norm(a, 1, axis=(2, 0)), [normal(3, 2, 4)], "AmaxBackward0")
row("matrix_norm_nuc_dims", lambda x: LA.matrix_norm(x, "nuc", dim=(2, 0), keepdim=True),
    lambda a: np.linalg.norm(a, "nuc", axis=(2, 0), keepdims=True), [normal(3, 2, 4)], "PermuteBackward0")
row("movedim", lambda x: x.movedim((0, 1), (2, 0)), lambda a: np.moveaxis(a, (0, 1), (2, 0)), [normal(2, 3, 4)],
    "PermuteBackward0")
row("moveaxis", lambda x: rustgrad.moveaxis(x, -1, 0), lambda a: np.moveaxis(a, -1, 0), [normal(2, 3, 4)],
    "PermuteBackward0")
row("norm_default", lambda x: LA.norm(x), lambda a: np.linalg.norm(a.reshape(-1)), [normal(2, 3, 4)],
    "LinalgVectorNormBackward0")
row("norm_matrix_ord", lambda x: LA.norm(x, "nuc"), lambda a: np.linalg.norm(a, "nuc"), [normal(3, 3)],
    "SumBackward1")
row("norm_vector_ord", lambda x: LA.norm(x, 3), lambda a: np.linalg.norm(a, 3), [normal(4)],
    "LinalgVectorNormBackward0")
row("norm_dim", lambda x: LA.norm(x, dim=1), lambda a: np.linalg.norm(a, axis=1), [normal(3, 4)],
    "LinalgVectorNormBackward0")
row("matrix_power_3", lambda x: LA.matrix_power(x, 3), lambda a: np.linalg.matrix_power(a, 3), [normal(3, 3)],
    "MmBackward0")
row("matrix_power_-2", lambda x: x.matrix_power(-2), lambda a: np.linalg.matrix_power(a, -2), [wellcond(3, 3)],
    "MmBackward0")
row("multi_dot", lambda a, b, c: LA.multi_dot([a, b, c]), lambda a, b, c: a @ b @ c,
    [normal(2, 3), normal(3, 4), normal(4, 2)], "ViewBackward0")
row("multi_dot_vectors", lambda a, b, c, d: LA.multi_dot([a, b, c, d]), lambda a, b, c, d: a @ b @ c @ d,
    [normal(3), normal(3, 5), normal(5, 2), normal(2)], "ViewBackward0")
row("vecdot", lambda x, y: LA.vecdot(x, y), lambda a, b: (a * b).sum(-1), [normal(3, 4), normal(4)], "SumBackward1")

IDS = [r.name for r in ROWS]


def _draw(r, salt=0):
    rng = np.random.default_rng(zlib.crc32(r.name.encode()) + salt)
    return [make(rng) for make in r.inputs]


@pytest.mark.parametrize("r", ROWS, ids=IDS)
def test_forward_against_numpy(r):
    arrays = _draw(r)
    outs = as_tuple(r.fn(*leaves(arrays)))
    expected = as_tuple(r.ref(*[a.copy() for a in arrays]))
    names = r.grad_fn if isinstance(r.grad_fn, tuple) else (r.grad_fn,) * len(outs)
    assert len(outs) == len(expected) == len(names)
    for out, exp, name in zip(outs, expected, names):
        exp = np.asarray(exp)
        assert tuple(out.shape) == exp.shape
        assert out.dtype == rustgrad.float64 and out.requires_grad
        np.testing.assert_allclose(out.detach().numpy(), exp, rtol=1e-9, atol=1e-11)
        assert grad_fn_name(out) == name


@pytest.mark.parametrize("r", ROWS, ids=IDS)
def test_gradcheck(r):
    assert rustgrad.autograd.gradcheck(r.fn, tuple(leaves(_draw(r, 1))))


@pytest.mark.parametrize("r", [r for r in ROWS if r.gradgrad], ids=[r.name for r in ROWS if r.gradgrad])
def test_gradgradcheck(r):
    assert rustgrad.autograd.gradgradcheck(r.fn, tuple(leaves(_draw(r, 2))))


# ----------------------------------------------------------------------------- closed forms


def test_closed_form_gradients():
    # d det(A)/dA = det(A) A^-T; d log|det A|/dA = A^-T; d tr(A^-1)/dA = -(A^-2)^T
    a = np.array([[2.0, 1.0], [0.5, 3.0]])
    x = rustgrad.tensor(a, requires_grad=True)
    LA.det(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.linalg.det(a) * np.linalg.inv(a).T, rtol=1e-6)
    x = rustgrad.tensor(a, dtype=rustgrad.float64, requires_grad=True)
    LA.slogdet(x).logabsdet.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.linalg.inv(a).T, rtol=1e-12)
    x.grad = None
    LA.inv(x).diagonal().sum().backward()
    inv = np.linalg.inv(a)
    np.testing.assert_allclose(x.grad.numpy(), -(inv @ inv).T, rtol=1e-12)
    # d sum(eigvalsh(A))/dA = I (the trace); d sum(svdvals(A))/dA = U Vh (nuclear norm)
    s = rustgrad.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=rustgrad.float64, requires_grad=True)
    LA.eigvalsh(s).sum().backward()
    np.testing.assert_allclose(s.grad.numpy(), np.eye(2), atol=1e-12)
    m = rustgrad.tensor(a, dtype=rustgrad.float64, requires_grad=True)
    LA.svdvals(m).sum().backward()
    u, _, vh = np.linalg.svd(a)
    np.testing.assert_allclose(m.grad.numpy(), u @ vh, rtol=1e-10)


def test_float32_results_are_rounded_float64():
    # rustgrad's own choice: float32 matrices are factored in float64 and rounded once.
    if rustgrad.__name__ == "torch":
        pytest.skip("PyTorch factors float32 in float32")
    a = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32) + 3 * np.eye(4, dtype=np.float32)
    out = LA.inv(rustgrad.tensor(a))
    assert out.dtype == rustgrad.float32
    np.testing.assert_array_equal(out.numpy(), np.linalg.inv(a.astype(np.float64)).astype(np.float32))


def test_singular_matrices():
    sing = rustgrad.tensor([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(LA.LinAlgError, match=r"^linalg.inv: The diagonal element 2 is zero, the inversion could not "
                       r"be completed because the input matrix is singular.$"):
        LA.inv(sing)
    assert issubclass(LA.LinAlgError, RuntimeError)
    with pytest.raises(RuntimeError, match=r"linalg.inv: \(Batch element 1\): The diagonal element 1 is zero"):
        LA.inv(rustgrad.stack([rustgrad.eye(2), rustgrad.zeros(2, 2)]))
    r = LA.inv_ex(sing)
    assert type(r).__name__ == "linalg_inv_ex" and r.info.dtype == rustgrad.int32 and r.info.item() == 2
    assert LA.det(sing).item() == 0.0
    sign, logabs = LA.slogdet(sing)
    assert sign.item() == 0.0 and logabs.item() == -math.inf
    with pytest.raises(LA.LinAlgError, match=r"^torch.linalg.solve: The solver failed because the input matrix is "
                       r"singular.$"):
        LA.solve(sing, rustgrad.ones(2))
    # the gradient of det at a singular matrix is finite (det is 0 there)
    x = sing.clone().requires_grad_()
    LA.det(x).backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_cholesky_errors_and_info():
    with pytest.raises(LA.LinAlgError, match=r"^linalg.cholesky: The factorization could not be completed because "
                       r"the input is not positive-definite \(the leading minor of order 2 is not positive-definite\).$"):
        LA.cholesky(rustgrad.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(RuntimeError, match=r"\(Batch element 1\): .* order 1 is"):
        LA.cholesky(rustgrad.stack([rustgrad.eye(2), -rustgrad.eye(2)]))
    r = LA.cholesky_ex(-rustgrad.eye(3))
    assert type(r).__name__ == "linalg_cholesky_ex" and r.info.item() == 1
    # only the lower triangle is read
    np.testing.assert_allclose(LA.cholesky(rustgrad.tensor([[4.0, 100.0], [2.0, 3.0]])).numpy(),
                               [[2.0, 0.0], [1.0, math.sqrt(2.0)]], rtol=1e-6)


@pytest.mark.parametrize(
    "call, exc, message",
    [
        (lambda: LA.inv(rustgrad.ones(3, 2)), RuntimeError,
         "linalg.inv: A must be batches of square matrices, but they are 3 by 2 matrices"),
        (lambda: LA.inv(rustgrad.ones(3)), RuntimeError, "linalg.inv: The input tensor A must have at least 2 dimensions."),
        (lambda: LA.det(rustgrad.ones(3, 3, dtype=rustgrad.int64)), NotImplementedError,
         "linalg.det: Expected a floating point or complex tensor as input. Got Long"),
        (lambda: LA.inv(rustgrad.eye(3).half()), NotImplementedError,
         "linalg.inv: Low precision dtypes not supported. Got Half"),
        (lambda: LA.solve(rustgrad.eye(3), rustgrad.ones(2)), RuntimeError,
         "linalg.solve: Incompatible shapes of A and B for the equation AX = B (3x3 and 2x1)"),
        (lambda: LA.solve(rustgrad.eye(3), rustgrad.ones(2, 4)), RuntimeError,
         "linalg.solve: Incompatible shapes of A and B for the equation AX = B (3x3 and 2x4)"),
        (lambda: LA.solve(rustgrad.eye(3), rustgrad.ones(3, dtype=rustgrad.float64)), RuntimeError,
         ("linalg.solve: Expected A and B to have the same dtype, but found A of type Float and B of type Double "
          "instead")),
        (lambda: LA.qr(rustgrad.ones(3, 2), mode="x"), RuntimeError,
         "qr received unrecognized mode 'x' but expected one of 'reduced' (default), 'r', or 'complete'"),
        (lambda: LA.eigh(rustgrad.eye(2), UPLO="X"), RuntimeError, "Expected UPLO argument to be 'L' or 'U', but got X"),
        (lambda: LA.svd(rustgrad.ones(4)), RuntimeError, "linalg.svd: The input tensor A must have at least 2 dimensions."),
        (lambda: LA.matrix_norm(rustgrad.ones(2, 3), ord=3), RuntimeError, "linalg.matrix_norm: Order 3 not supported."),
        (lambda: LA.matrix_norm(rustgrad.ones(3)), RuntimeError,
         "linalg.matrix_norm: The input tensor A must have at least 2 dimensions."),
        (lambda: LA.norm(rustgrad.ones(2, 3, 4), 2), RuntimeError,
         "linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got 3D."),
        (lambda: LA.norm(rustgrad.ones(6), "fro"), RuntimeError,
         "linalg.matrix_norm: The input tensor A must have at least 2 dimensions."),
        (lambda: LA.vector_norm(rustgrad.arange(6)), NotImplementedError,
         "linalg.vector_norm: Expected a floating point or complex tensor as input. Got Long"),
    ],
)
def test_errors(call, exc, message):
    with pytest.raises(exc) as info:
        call()
    assert type(info.value) is exc or (exc is RuntimeError and issubclass(type(info.value), RuntimeError))
    assert str(info.value) == message


def test_qr_modes_and_backward_errors():
    a = rustgrad.randn(4, 3, dtype=rustgrad.float64, requires_grad=True)
    q, r = LA.qr(a, mode="complete")
    assert q.shape == (4, 4) and r.shape == (4, 3)
    with pytest.raises(RuntimeError, match="not differentiable when mode='complete' and nrows > ncols"):
        r.sum().backward()
    q, r = LA.qr(a, mode="r")
    assert q.shape == (0,) and r.shape == (3, 3)
    with pytest.raises(RuntimeError, match=r"^The derivative of linalg.qr depends on Q, which is not computed when "
                       r"mode='r'"):
        r.sum().backward()
    q, r = LA.qr(a.detach())
    np.testing.assert_allclose((q @ r).numpy(), a.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose((q.mT @ q).numpy(), np.eye(3), atol=1e-12)


def test_shapes_and_named_tuples():
    a = rustgrad.randn(2, 4, 3)
    u, s, vh = LA.svd(a)
    assert (u.shape, s.shape, vh.shape) == ((2, 4, 4), (2, 3), (2, 3, 3))
    r = LA.svd(a, full_matrices=False)
    assert type(r).__name__ == "linalg_svd" and r.U.shape == (2, 4, 3)
    r = rustgrad.svd(a)
    assert type(r).__name__ == "svd" and r.V.shape == (2, 3, 3)
    np.testing.assert_allclose((r.U @ rustgrad.diag_embed(r.S) @ r.V.mT).numpy(), a.numpy(), atol=1e-5)
    e = LA.eigh(rustgrad.eye(3))
    assert type(e).__name__ == "linalg_eigh" and e.eigenvalues.shape == (3,)
    assert type(LA.slogdet(rustgrad.eye(2))).__name__ == "linalg_slogdet"
    assert type(rustgrad.slogdet(rustgrad.eye(2))).__name__ == "slogdet"
    assert LA.det(rustgrad.ones(0, 0)).item() == 1.0
    assert LA.inv(rustgrad.ones(0, 0)).shape == (0, 0)
    assert LA.solve(rustgrad.eye(3).expand(2, 3, 3), rustgrad.ones(3)).shape == (2, 3)
    assert LA.matrix_rank(rustgrad.tensor([[1.0, 2.0], [2.0, 4.0]])).item() == 1


# ----------------------------------------------------------------------------- against PyTorch

CASES = [
    ("inv", lambda L, a: L.inv(a)),
    ("det", lambda L, a: L.det(a)),
    ("slogdet", lambda L, a: tuple(L.slogdet(a))),
    ("solve", lambda L, a: L.solve(a, a[..., 0] * 2)),
    ("cholesky", lambda L, a: L.cholesky(a @ a.mT + a.shape[-1] * 1.0)),
    ("qr", lambda L, a: tuple(L.qr(a))),
    ("qr_wide", lambda L, a: tuple(L.qr(a[..., :2, :]))),
    ("eigh", lambda L, a: eigh_parts(L.eigh(a + a.mT))),
    ("svd", lambda L, a: svd_parts(L.svd(a, full_matrices=False))),
    ("norms", lambda L, a: (L.norm(a), L.matrix_norm(a, "nuc"), L.matrix_norm(a, -1), L.vector_norm(a, 0.5))),
]


@pytest.mark.parametrize("name, fn", CASES, ids=[c[0] for c in CASES])
def test_against_pytorch(name, fn):
    torch = pytest.importorskip("torch")
    if torch is rustgrad:
        pytest.skip("PyTorch itself")
    a = np.random.default_rng(7).standard_normal((2, 3, 3)) + 2 * np.eye(3)
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 2e-5)):
        ours_in = rustgrad.tensor(a.astype(dtype), requires_grad=True)
        theirs_in = torch.tensor(a.astype(dtype), requires_grad=True)
        ours, theirs = as_tuple(fn(rustgrad.linalg, ours_in)), as_tuple(fn(torch.linalg, theirs_in))
        for o, t in zip(ours, theirs):
            assert str(o.dtype) == str(t.dtype) and tuple(o.shape) == tuple(t.shape)
            np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)
            assert grad_fn_name(o) == grad_fn_name(t)
        # gradients of a sign-free scalar of every output
        sum(((o * o).sum() if o.dtype.is_floating_point else 0) for o in ours).backward()
        sum(((t * t).sum() if t.dtype.is_floating_point else 0) for t in theirs).backward()
        np.testing.assert_allclose(ours_in.grad.numpy(), theirs_in.grad.numpy(), rtol=100 * tol, atol=100 * tol)
