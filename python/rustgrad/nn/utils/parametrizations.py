"""``nn.utils.parametrizations``: ``weight_norm``, ``spectral_norm`` and ``orthogonal`` as
parametrizations (``nn.utils.parametrize``), as PyTorch's ``torch.nn.utils.parametrizations``."""

from __future__ import annotations

import math
from enum import Enum

import numpy as np

import rustgrad
from rustgrad import Tensor
from rustgrad.nn import functional as F
from rustgrad.nn.modules.module import Module
from rustgrad.nn.utils import parametrize
from rustgrad.nn.utils.spectral_norm import _is_conv_transpose
from rustgrad.nn.utils.weight_norm import _norm_except_dim, _weight_norm

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


# ----- orthogonal -----


def _eye(n: int, like: Tensor) -> Tensor:
    return rustgrad.eye(n, dtype=like.dtype)


def _matrix_exp(A: Tensor) -> Tensor:
    """``exp(A)`` of a (batch of) square matrices by scaling and squaring a degree-14 Taylor polynomial
    (exact to rounding for ``||A / 2^s||_1 <= 1/4``), differentiable through its matrix products."""
    with rustgrad.no_grad():
        norm = float(A.abs().sum(-2).max()) if A.numel() else 0.0
    s = max(0, math.ceil(math.log2(norm / 0.25))) if norm > 0.25 else 0
    A = A / (2.0**s)
    eye = _eye(A.shape[-1], A)
    P = eye
    for k in range(14, 0, -1):
        P = eye + (A @ P) / k
    for _ in range(s):
        P = P @ P
    return P


def _householder_product(A: Tensor, tau: Tensor) -> Tensor:
    """The first ``k`` columns of ``H_1 ... H_k``, ``H_i = I - tau_i v_i v_i^T`` with ``v_i`` the part
    of column ``i`` of ``A`` below the diagonal and a 1 on it (``torch.linalg.householder_product``),
    differentiable through its matrix products."""
    n, k = A.shape[-2], A.shape[-1]
    below = rustgrad.arange(n).unsqueeze(-1) > rustgrad.arange(k)  # strictly below the diagonal
    V = A * below.to(A.dtype) + _eye(n, A)[:, :k]
    Q = _eye(n, A)[:, :k]
    for i in range(k - 1, -1, -1):
        v = V[..., :, i : i + 1]
        Q = Q - tau[..., i : i + 1].unsqueeze(-1) * (v @ (v.mT @ Q))
    return Q


def _geqrf(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LAPACK's ``geqrf`` in numpy: ``R`` above the diagonal and the Householder vectors below it, and
    the ``tau`` of each reflector (LAPACK's sign convention: ``beta = -sign(alpha) ||x||``)."""
    A = np.array(A, dtype=np.float64, copy=True)
    m, n = A.shape[-2:]
    k = min(m, n)
    tau = np.zeros((*A.shape[:-2], k))
    for idx in np.ndindex(*A.shape[:-2]):
        a = A[idx]
        for i in range(k):
            alpha, x = a[i, i], a[i + 1 :, i]
            xnorm = float(np.linalg.norm(x))
            if xnorm == 0.0:
                continue  # H = I, tau = 0
            beta = -math.copysign(math.hypot(alpha, xnorm), alpha)
            tau[idx + (i,)] = t = (beta - alpha) / beta
            a[i + 1 :, i] = x / (alpha - beta)
            a[i, i] = beta
            v = np.concatenate([[1.0], a[i + 1 :, i]])
            a[i:, i + 1 :] -= t * np.outer(v, v @ a[i:, i + 1 :])
    return A, tau


def _make_orthogonal(A: Tensor) -> Tensor:
    """The ``Q`` of ``A``'s QR decomposition, its columns' signs flipped so that ``R`` has a positive diagonal."""
    X, tau = _geqrf(A.detach().numpy())
    Xt = rustgrad.tensor(X, dtype=rustgrad.float64)
    Q = _householder_product(Xt, rustgrad.tensor(tau, dtype=rustgrad.float64))
    Q = Q * Xt.diagonal(0, -2, -1).sign().unsqueeze(-2)
    return Q.to(A.dtype)


def _is_orthogonal(Q: Tensor) -> bool:
    n, k = Q.size(-2), Q.size(-1)
    eps = 10.0 * n * float(np.finfo(str(Q.dtype).rsplit(".", 1)[-1]).eps)
    return bool(rustgrad.allclose(Q.mT @ Q, _eye(k, Q), atol=eps))


class _OrthMaps(Enum):
    matrix_exp = 1
    cayley = 2
    householder = 3


class _Orthogonal(Module):
    """The orthogonal parametrization: an orthogonal (or semi-orthogonal) matrix from an unconstrained one."""

    def __init__(self, weight: Tensor, orthogonal_map: _OrthMaps, *, use_trivialization: bool = True) -> None:
        super().__init__()
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:
        """An orthogonal matrix of ``X``'s shape from the unconstrained ``X``."""
        n, k = X.size(-2), X.size(-1)
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in (_OrthMaps.matrix_exp, _OrthMaps.cayley):
            X = X.tril()
            if n != k:
                X = rustgrad.cat([X, X.new_zeros(n, n - k).expand(*X.shape[:-2], -1, -1)], dim=-1)
            A = X - X.mT
            if self.orthogonal_map == _OrthMaps.matrix_exp:
                Q = _matrix_exp(A)
            else:
                eye = _eye(n, A)
                Q = rustgrad.linalg.solve(rustgrad.add(eye, A, alpha=-0.5), rustgrad.add(eye, A, alpha=0.5))
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(diagonal=-1)
            tau = 2.0 / (1.0 + (A * A).sum(dim=-2))
            Q = _householder_product(A, tau)
            Q = Q * X.diagonal(0, -2, -1).int().unsqueeze(-2)
        if hasattr(self, "base"):
            Q = self.base @ Q
        if transposed:
            Q = Q.mT
        return Q

    @rustgrad.no_grad()
    def right_inverse(self, Q: Tensor) -> Tensor:
        """An unconstrained tensor that ``forward`` maps to ``Q`` (with the trivialization: stores an
        orthogonal ``base`` built from ``Q`` and returns ``-I``)."""
        if Q.shape != self.shape:
            raise ValueError(
                f"Expected a matrix or batch of matrices of shape {self.shape}. Got a tensor of shape {Q.shape}."
            )
        Q_init = Q
        n, k = Q.size(-2), Q.size(-1)
        transpose = n < k
        if transpose:
            Q = Q.mT
            n, k = k, n
        if not hasattr(self, "base"):
            if self.orthogonal_map in (_OrthMaps.cayley, _OrthMaps.matrix_exp):
                raise NotImplementedError(
                    "It is not possible to assign to the matrix exponential "
                    "or the Cayley parametrizations when use_trivialization=False."
                )
            X, tau = _geqrf(Q.numpy())
            diag = np.sign(np.diagonal(X, axis1=-2, axis2=-1))
            diag = np.where(tau == 0.0, -diag, diag)
            idx = np.arange(k)
            X[..., idx, idx] = diag
            A = rustgrad.tensor(X, dtype=Q.dtype)
            return A.mT if transpose else A
        if n == k:
            Q = _make_orthogonal(Q) if not _is_orthogonal(Q) else Q.clone()
        else:
            N = rustgrad.randn(*(tuple(Q.size()[:-2]) + (n, n - k)), dtype=Q.dtype)
            Q = _make_orthogonal(rustgrad.cat([Q, N], dim=-1))
        self.base = Q
        neg_Id = rustgrad.zeros_like(Q_init)
        neg_Id.diagonal(0, -2, -1).fill_(-1.0)
        return neg_Id


def orthogonal(
    module: Module,
    name: str = "weight",
    orthogonal_map: str | None = None,
    *,
    use_trivialization: bool = True,
) -> Module:
    """Constrains ``module.<name>`` (a matrix or batch of matrices) to be orthogonal, through
    ``orthogonal_map`` 'matrix_exp' (square default), 'cayley' or 'householder' (non-square default).
    https://pytorch.org/docs/stable/generated/torch.nn.utils.parametrizations.orthogonal.html"""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")  # noqa: TRY004
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.size(-2) == weight.size(-1) else "householder"
    orth_enum = getattr(_OrthMaps, orthogonal_map, None)
    if orth_enum is None:
        raise ValueError(
            f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". Got: {orthogonal_map}'
        )
    orth = _Orthogonal(weight, orth_enum, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module


# ----- weight_norm -----


class _WeightNorm(Module):
    """The weight-norm parametrization: ``g * v / ||v||`` from ``original0 = g`` and ``original1 = v``."""

    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        if dim is None:
            dim = -1
        self.dim = dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        """``weight_g * weight_v / ||weight_v||`` (norm over every dimension but ``dim``)."""
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        """``(||weight||, weight)``: the magnitude and the direction."""
        return _norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrizes ``module.<name>`` as ``g * v / ||v||``, with ``g`` and ``v`` stored as
    ``parametrizations.<name>.original0`` and ``original1``; state dicts of the older hook-based
    ``weight_norm`` (``<name>_g``, ``<name>_v``) still load.
    https://pytorch.org/docs/stable/generated/torch.nn.utils.parametrizations.weight_norm.html"""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def _weight_norm_compat_hook(
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list,
        unexpected_keys: list,
        error_msgs: list,
    ) -> None:
        g_key = f"{prefix}{name}_g"
        v_key = f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            original0 = state_dict.pop(g_key)
            original1 = state_dict.pop(v_key)
            state_dict[f"{prefix}parametrizations.{name}.original0"] = original0
            state_dict[f"{prefix}parametrizations.{name}.original1"] = original1

    module._register_load_state_dict_pre_hook(_weight_norm_compat_hook)
    return module


# ----- spectral_norm -----


class _SpectralNorm(Module):
    """The spectral-norm parametrization: the weight divided by its largest singular value, estimated by
    power iteration on the buffers ``_u`` and ``_v`` (drawn as PyTorch draws them)."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})"
            )
        if n_power_iterations <= 0:
            raise ValueError(
                f"Expected n_power_iterations to be positive, but got n_power_iterations={n_power_iterations}"
            )
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            weight_mat = self._reshape_weight_to_matrix(weight)
            h, w = weight_mat.size()
            u = weight_mat.new_empty(h).normal_(0, 1)
            v = weight_mat.new_empty(w).normal_(0, 1)
            self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
            self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
            self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if weight.ndim <= 1:
            raise AssertionError(f"Expected weight to have more than 1 dimension, got {weight.ndim}")
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.dim()) if d != self.dim))
        return weight.flatten(1)

    @rustgrad.no_grad()
    def _power_method(self, weight_mat: Tensor, n_power_iterations: int) -> None:
        for _ in range(n_power_iterations):
            self._u.copy_(F.normalize(rustgrad.mv(weight_mat, self._v), dim=0, eps=self.eps))
            self._v.copy_(F.normalize(rustgrad.mv(weight_mat.t(), self._u), dim=0, eps=self.eps))

    def forward(self, weight: Tensor) -> Tensor:
        """``weight / sigma`` (a 1-D weight is just normalized), after ``n_power_iterations`` steps of
        power iteration in training mode."""
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        u = self._u.clone()
        v = self._v.clone()
        sigma = rustgrad.dot(u, rustgrad.mv(weight_mat, v))
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        """``value`` itself: any weight is stored as is."""
        return value


def spectral_norm(
    module: Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> Module:
    """Divides ``module.<name>`` by its spectral norm, estimated by power iteration (``n_power_iterations``
    steps per access in training mode); the original is ``parametrizations.<name>.original`` and the
    power-iteration vectors are the buffers ``parametrizations.<name>.0._u`` and ``._v``.
    https://pytorch.org/docs/stable/generated/torch.nn.utils.parametrizations.spectral_norm.html"""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")  # noqa: TRY004
    if dim is None:
        dim = 1 if _is_conv_transpose(module) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
