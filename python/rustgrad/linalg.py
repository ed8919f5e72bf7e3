"""``torch.linalg``: norms, inverses, determinants, linear solves and the Cholesky, QR,
symmetric eigen- and singular value decompositions, with PyTorch's gradients.

The factorizations run in the Rust core (faer, in float64); float32 inputs are rounded once.
https://pytorch.org/docs/stable/linalg.html
"""

from __future__ import annotations

import builtins as _builtins
import math as _math
from collections import namedtuple as _namedtuple
from typing import Any

from rustgrad import _rustgrad
from rustgrad._args import check_tensor as _check_tensor
from rustgrad._rustgrad import Tensor

LinAlgError = _rustgrad._LinAlgError
LinAlgError.__doc__ = (
    "Raised when a matrix is singular or not positive-definite, or a decomposition does not converge "
    "(a ``RuntimeError``).\nhttps://pytorch.org/docs/stable/generated/torch.linalg.LinAlgError.html"
)


def _return_type(name: str, fields: list[str]) -> Any:
    make: Any = _namedtuple  # called through Any: mypy cannot type a namedtuple of a computed name
    cls = make(name, fields)
    cls.__module__ = "torch.return_types"

    def __repr__(self: Any) -> str:
        return f"torch.return_types.{name}(\n" + ",\n".join(f"{f}={v!r}" for f, v in zip(self._fields, self)) + ")"

    cls.__repr__ = __repr__  # type: ignore[method-assign]
    return cls


_InvEx = _return_type("linalg_inv_ex", ["inverse", "info"])
_Slogdet = _return_type("linalg_slogdet", ["sign", "logabsdet"])
_TorchSlogdet = _return_type("slogdet", ["sign", "logabsdet"])
_SolveEx = _return_type("linalg_solve_ex", ["result", "info"])
_CholeskyEx = _return_type("linalg_cholesky_ex", ["L", "info"])
_Qr = _return_type("linalg_qr", ["Q", "R"])
_Eigh = _return_type("linalg_eigh", ["eigenvalues", "eigenvectors"])
_Svd = _return_type("linalg_svd", ["U", "S", "Vh"])
_TorchSvd = _return_type("svd", ["U", "S", "V"])


def _matrix(fn: str, A: Any) -> None:
    _check_tensor(fn, A, "A")


def inv(A: Tensor, *, out: Any = None) -> Tensor:
    """The inverse of a square matrix (or of each matrix of a batch); a singular one raises
    :class:`LinAlgError`.
    https://pytorch.org/docs/stable/generated/torch.linalg.inv.html"""
    _matrix("linalg_inv", A)
    return _out(_rustgrad._linalg_inv_ex(A, True)[0], out)


def inv_ex(A: Tensor, *, check_errors: bool = False, out: Any = None) -> Any:
    """The inverse and ``info``: 0 for an invertible matrix, else the (1-based) position of the
    zero pivot.
    https://pytorch.org/docs/stable/generated/torch.linalg.inv_ex.html"""
    _matrix("linalg_inv_ex", A)
    return _InvEx(*_rustgrad._linalg_inv_ex(A, _builtins.bool(check_errors)))


def det(A: Tensor, *, out: Any = None) -> Tensor:
    """The determinant of a square matrix (or of each matrix of a batch).
    https://pytorch.org/docs/stable/generated/torch.linalg.det.html"""
    _matrix("linalg_det", A)
    return _out(_rustgrad._linalg_det(A), out)


def slogdet(A: Tensor, *, out: Any = None) -> Any:
    """The sign of the determinant and the natural log of its absolute value.
    https://pytorch.org/docs/stable/generated/torch.linalg.slogdet.html"""
    _matrix("linalg_slogdet", A)
    return _Slogdet(*_rustgrad._linalg_slogdet(A))


def solve(A: Tensor, B: Tensor, *, left: bool = True, out: Any = None) -> Tensor:
    """The solution ``X`` of ``A X = B`` (``X A = B`` with ``left=False``); ``B`` may be a
    (batch of) vector(s) and batch dims broadcast.
    https://pytorch.org/docs/stable/generated/torch.linalg.solve.html"""
    _matrix("linalg_solve", A)
    _check_tensor("linalg_solve", B, "B", 2)
    return _out(_rustgrad._linalg_solve(A, B, _builtins.bool(left)), out)


def solve_ex(A: Tensor, B: Tensor, *, left: bool = True, check_errors: bool = False, out: Any = None) -> Any:
    """:func:`solve` and an ``info`` tensor of zeros (a singular ``A`` raises).
    https://pytorch.org/docs/stable/generated/torch.linalg.solve_ex.html"""
    result = solve(A, B, left=left)
    import rustgrad

    return _SolveEx(result, rustgrad.zeros(tuple(A.shape[:-2]), dtype=rustgrad.int32))


def cholesky(A: Tensor, *, upper: bool = False, out: Any = None) -> Tensor:
    """The Cholesky factor ``L`` (``A = L Lᵀ``) of a symmetric positive-definite matrix, read
    from its lower triangle; ``upper=True`` gives ``Lᵀ``.
    https://pytorch.org/docs/stable/generated/torch.linalg.cholesky.html"""
    _matrix("linalg_cholesky", A)
    return _out(_rustgrad._linalg_cholesky_ex(A, _builtins.bool(upper), True)[0], out)


def cholesky_ex(A: Tensor, *, upper: bool = False, check_errors: bool = False, out: Any = None) -> Any:
    """The Cholesky factor and ``info``: 0, or the order of the first leading minor that is not
    positive-definite.
    https://pytorch.org/docs/stable/generated/torch.linalg.cholesky_ex.html"""
    _matrix("linalg_cholesky_ex", A)
    return _CholeskyEx(*_rustgrad._linalg_cholesky_ex(A, _builtins.bool(upper), _builtins.bool(check_errors)))


def qr(A: Tensor, mode: str = "reduced", *, out: Any = None) -> Any:
    """The QR decomposition ``A = Q R`` (Householder, as LAPACK: ``R``'s diagonal may be
    negative); ``mode`` is ``'reduced'``, ``'complete'`` or ``'r'``.
    https://pytorch.org/docs/stable/generated/torch.linalg.qr.html"""
    _matrix("linalg_qr", A)
    return _Qr(*_rustgrad._linalg_qr(A, mode))


def _uplo(UPLO: str) -> bool:
    if UPLO not in ("L", "U", "l", "u"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return UPLO in ("U", "u")


def eigh(A: Tensor, UPLO: str = "L", *, out: Any = None) -> Any:
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of a symmetric matrix,
    read from its lower (``UPLO='L'``) or upper triangle. Eigenvectors are unique up to sign.
    https://pytorch.org/docs/stable/generated/torch.linalg.eigh.html"""
    _matrix("linalg_eigh", A)
    return _Eigh(*_rustgrad._linalg_eigh(A, _uplo(UPLO)))


def eigvalsh(A: Tensor, UPLO: str = "L", *, out: Any = None) -> Tensor:
    """The eigenvalues (ascending) of a symmetric matrix.
    https://pytorch.org/docs/stable/generated/torch.linalg.eigvalsh.html"""
    _matrix("linalg_eigvalsh", A)
    return _out(_rustgrad._linalg_eigh(A, _uplo(UPLO))[0], out)


def svd(A: Tensor, full_matrices: bool = True, *, driver: Any = None, out: Any = None) -> Any:
    """The singular value decomposition ``A = U diag(S) Vh``, singular values descending.
    Singular vectors are unique up to sign.
    https://pytorch.org/docs/stable/generated/torch.linalg.svd.html"""
    _matrix("linalg_svd", A)
    if driver is not None:
        raise RuntimeError("torch.linalg.svd: keyword argument `driver=` is only supported on CUDA inputs with cuSOLVER backend.")
    return _Svd(*_rustgrad._linalg_svd(A, _builtins.bool(full_matrices)))


def svdvals(A: Tensor, *, driver: Any = None, out: Any = None) -> Tensor:
    """The singular values, descending.
    https://pytorch.org/docs/stable/generated/torch.linalg.svdvals.html"""
    _matrix("linalg_svdvals", A)
    return _out(_rustgrad._linalg_svd(A, False)[1], out)


def _out(result: Tensor, out: Any) -> Tensor:
    if out is None:
        return result
    with _no_grad():
        if tuple(out.shape) != tuple(result.shape):
            out.data = result.detach().clone()
        else:
            out.copy_(result)
    return out


def _no_grad() -> Any:
    import rustgrad

    return rustgrad.no_grad()


def _dims(dim: Any) -> tuple[int, ...] | None:
    if dim is None:
        return None
    if isinstance(dim, int):
        return (dim,)
    return tuple(dim)


def vector_norm(x: Tensor, ord: Any = 2, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, out: Any = None) -> Tensor:
    """The vector ``ord``-norm of all elements, or along ``dim`` (``inf``, ``-inf`` and 0 too).
    https://pytorch.org/docs/stable/generated/torch.linalg.vector_norm.html"""
    _check_tensor("linalg_vector_norm", x, "input")
    if isinstance(ord, str):
        raise TypeError(f"linalg_vector_norm(): argument 'ord' must be Number, not {type(ord).__name__}")
    if dtype is not None:
        x = x.to(dtype)
    dims = _dims(dim)
    return _out(x.norm(float(ord), dims if dims is None else list(dims), _builtins.bool(keepdim)), out)


def _wrap2(A: Tensor, dim: Any) -> tuple[int, int]:
    d0, d1 = dim
    n = A.dim()
    for d in (d0, d1):
        if not -n <= d < n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
    d0, d1 = d0 % n, d1 % n
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, {dim[1]})")
    return d0, d1


def matrix_norm(A: Tensor, ord: Any = "fro", dim: Any = (-2, -1), keepdim: bool = False, *, dtype: Any = None, out: Any = None) -> Tensor:
    """A matrix norm: ``'fro'``, ``'nuc'``, ``inf``, ``-inf``, 1, -1, 2 or -2, over the two dims
    ``dim``.
    https://pytorch.org/docs/stable/generated/torch.linalg.matrix_norm.html"""
    _check_tensor("linalg_matrix_norm", A, "A")
    if A.dim() < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
    if not A.dtype.is_floating_point:
        raise NotImplementedError(
            f"linalg.matrix_norm: Expected a floating point or complex tensor as input. Got {_scalar_name(A)}"
        )
    if dtype is not None:
        A = A.to(dtype)
    d0, d1 = _wrap2(A, dim)
    keepdim = _builtins.bool(keepdim)
    if ord == "fro":
        return _out(A.norm(2.0, [d0, d1], keepdim), out)
    if ord == "nuc" or ord in (2, -2):
        import rustgrad

        s = svdvals(rustgrad.movedim(A, (d0, d1), (-2, -1)))
        if ord == "nuc":
            r = s.sum(-1)
        elif ord == 2:
            r = s.amax(-1)
        else:
            r = s.amin(-1)
        if keepdim:
            r = rustgrad.movedim(r.unsqueeze(-1).unsqueeze(-1), (-2, -1), (d0, d1))
        return _out(r, out)
    if ord in (1, -1, _math.inf, -_math.inf):
        # 1: max over columns of the column sums; inf: max over rows of the row sums.
        summed, picked = (d0, d1) if ord in (1, -1) else (d1, d0)
        r = A.abs().sum(summed, keepdim=keepdim)
        if not keepdim and picked > summed:
            picked -= 1
        r = r.amax(picked, keepdim=keepdim) if ord > 0 else r.amin(picked, keepdim=keepdim)
        return _out(r, out)
    raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")


def _scalar_name(t: Tensor) -> str:
    from rustgrad._args import scalar_type_name

    return scalar_type_name(t.dtype)


def norm(A: Tensor, ord: Any = None, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, out: Any = None) -> Tensor:
    """A vector norm (1-D input or one ``dim``) or a matrix norm (2-D input or two ``dim``);
    with neither ``ord`` nor ``dim``, the 2-norm of all elements.
    https://pytorch.org/docs/stable/generated/torch.linalg.norm.html"""
    _check_tensor("linalg_norm", A, "input")
    dims = _dims(dim)
    if dims is not None:
        if len(dims) == 1:
            return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype, out=out)
        if len(dims) == 2:
            return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim, dtype=dtype, out=out)
        raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got {list(dims)}")
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype, out=out)
    if isinstance(ord, str) or A.dim() == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype, out=out)
    if A.dim() == 1:
        return vector_norm(A, ord, None, keepdim, dtype=dtype, out=out)
    raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got {A.dim()}D.")


def matmul(input: Tensor, other: Tensor, *, out: Any = None) -> Tensor:
    """Alias of ``torch.matmul``.
    https://pytorch.org/docs/stable/generated/torch.linalg.matmul.html"""
    return _out(input.matmul(other), out)


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1, out: Any = None) -> Tensor:
    """The dot product of ``x`` and ``y`` along ``dim`` (broadcasting the rest).
    https://pytorch.org/docs/stable/generated/torch.linalg.vecdot.html"""
    return _out((x * y).sum(dim), out)


def multi_dot(tensors: Any, *, out: Any = None) -> Tensor:
    """The product of a chain of matrices (the first may be a row vector, the last a column
    vector), multiplied in the order that costs the fewest scalar multiplications.
    https://pytorch.org/docs/stable/generated/torch.linalg.multi_dot.html"""
    mats = list(tensors)
    n = len(mats)
    if n < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {n}")
    first_vector, last_vector = mats[0].dim() == 1, mats[-1].dim() == 1
    if mats[0].dim() not in (1, 2) or mats[-1].dim() not in (1, 2):
        raise RuntimeError(
            f"multi_dot(): the first and last tensors should be 1D or 2D but got {mats[0].dim()}D and {mats[-1].dim()}D"
        )
    for i, m in enumerate(mats[1:-1], 1):
        if m.dim() != 2:
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D but got {m.dim()}D")
    if first_vector:
        mats[0] = mats[0].unsqueeze(0)
    if last_vector:
        mats[-1] = mats[-1].unsqueeze(1)
    for i in range(n - 1):
        if mats[i].shape[1] != mats[i + 1].shape[0]:
            raise RuntimeError(
                f"multi_dot(): tensors {i} and {i + 1} with shapes {tuple(mats[i].shape)} and "
                f"{tuple(mats[i + 1].shape)} cannot be multiplied"
            )
    dims = [m.shape[0] for m in mats] + [mats[-1].shape[1]]
    # cost[i][j]: fewest multiplications for mats[i..j]; split[i][j]: where to split it.
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = -1
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if cost[i][j] < 0 or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k

    def product(i: int, j: int) -> Tensor:
        if i == j:
            return mats[i]
        k = split[i][j]
        return product(i, k).mm(product(k + 1, j))

    result = product(0, n - 1)
    shape = [s for s, vector in ((dims[0], first_vector), (dims[-1], last_vector)) if not vector]
    return _out(result.view(shape), out)


def matrix_power(A: Tensor, n: int, *, out: Any = None) -> Tensor:
    """``A`` multiplied by itself ``n`` times (the identity for 0, powers of the inverse for
    negative ``n``).
    https://pytorch.org/docs/stable/generated/torch.linalg.matrix_power.html"""
    _matrix("linalg_matrix_power", A)
    if A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(
            "linalg.matrix_power: A must be batches of square matrices, "
            f"but they are {A.shape[-2] if A.dim() > 1 else A.shape[0]} by {A.shape[-1]} matrices"
        )
    if n == 0:
        import rustgrad

        eye = rustgrad.eye(A.shape[-1], dtype=A.dtype)
        return _out(eye.expand(A.shape).clone(), out)
    base = inv(A) if n < 0 else A
    n = abs(n)
    result: Tensor | None = None
    square = base
    while True:
        if n & 1:
            result = square if result is None else result.matmul(square)
        n >>= 1
        if not n:
            break
        square = square.matmul(square)
    assert result is not None
    return _out(result, out)


def diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """The diagonal of each matrix (a view).
    https://pytorch.org/docs/stable/generated/torch.linalg.diagonal.html"""
    return A.diagonal(offset, dim1, dim2)


def matrix_rank(A: Tensor, *, atol: Any = None, rtol: Any = None, hermitian: bool = False, tol: Any = None, out: Any = None) -> Tensor:
    """The number of singular values above ``max(atol, rtol * largest)`` (rtol defaults to
    ``eps * max(m, n)``; int64).
    https://pytorch.org/docs/stable/generated/torch.linalg.matrix_rank.html"""
    _matrix("linalg_matrix_rank", A)
    with _no_grad():
        s = svdvals(A)
        if tol is not None:
            atol, rtol = tol, 0.0
        eps = 1.1920928955078125e-07 if str(A.dtype) == "torch.float32" else 2.220446049250313e-16
        if rtol is None:
            rtol = 0.0 if (atol is not None and not isinstance(atol, Tensor) and atol > 0) else eps * max(A.shape[-2:])
        largest = s.amax(-1, keepdim=True) if s.shape[-1] else s.sum(-1, keepdim=True)
        threshold = largest * rtol
        if atol is not None:
            threshold = threshold.clamp(min=atol) if not isinstance(atol, Tensor) else threshold.maximum(atol)
        return _out((s > threshold).sum(-1), out)


# ----- the functions torch and Tensor have beside torch.linalg -----


def _inverse(input: Tensor, *, out: Any = None) -> Tensor:
    """``torch.inverse``: alias of :func:`torch.linalg.inv`.
    https://pytorch.org/docs/stable/generated/torch.inverse.html"""
    _check_tensor("inverse", input)
    return _out(_rustgrad._linalg_inv_ex(input, True)[0], out)


def _det(input: Tensor) -> Tensor:
    """``torch.det``: alias of :func:`torch.linalg.det`.
    https://pytorch.org/docs/stable/generated/torch.det.html"""
    _check_tensor("det", input)
    return _rustgrad._linalg_det(input)


def _slogdet(input: Tensor) -> Any:
    """``torch.slogdet``: the sign and log absolute value of the determinant.
    https://pytorch.org/docs/stable/generated/torch.slogdet.html"""
    _check_tensor("slogdet", input)
    return _TorchSlogdet(*_rustgrad._linalg_slogdet(input))


def _logdet(input: Tensor) -> Tensor:
    """``torch.logdet``: the log of the determinant (nan for a negative determinant).
    https://pytorch.org/docs/stable/generated/torch.logdet.html"""
    _check_tensor("logdet", input)
    sign, logabs = _rustgrad._linalg_slogdet(input)
    import rustgrad

    return rustgrad.where(sign == -1, _math.nan, logabs)


def _torch_svd(input: Tensor, some: bool = True, compute_uv: bool = True, *, out: Any = None) -> Any:
    """``torch.svd``: ``U``, ``S`` and ``V`` (not ``Vh``); ``some=False`` gives full matrices.
    https://pytorch.org/docs/stable/generated/torch.svd.html"""
    _check_tensor("svd", input)
    U, S, Vh = _rustgrad._linalg_svd(input, not some)
    if not compute_uv:
        import rustgrad

        with _no_grad():
            return _TorchSvd(rustgrad.zeros_like(U), S, rustgrad.zeros_like(Vh.mT))
    return _TorchSvd(U, S, Vh.mT)


def install(tensor_class: Any) -> None:
    """Adds the Tensor methods ``inverse``, ``det``, ``logdet``, ``slogdet``, ``svd`` and
    ``matrix_power`` to ``tensor_class``."""
    methods: dict[str, Any] = {
        "inverse": _inverse,
        "det": _det,
        "logdet": _logdet,
        "slogdet": _slogdet,
        "svd": _torch_svd,
        "matrix_power": matrix_power,
    }
    for name, fn in methods.items():
        if name not in vars(tensor_class):
            setattr(tensor_class, name, fn)


__all__ = [
    "LinAlgError",
    "cholesky",
    "cholesky_ex",
    "det",
    "diagonal",
    "eigh",
    "eigvalsh",
    "inv",
    "inv_ex",
    "matmul",
    "matrix_norm",
    "matrix_power",
    "matrix_rank",
    "multi_dot",
    "norm",
    "qr",
    "slogdet",
    "solve",
    "solve_ex",
    "svd",
    "svdvals",
    "vecdot",
    "vector_norm",
]
