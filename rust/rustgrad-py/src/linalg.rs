//! `torch.linalg`'s decompositions: thin wrappers over `rustgrad_core::ops::decomp` that
//! return plain tuples (the Python layer names them) and release the GIL for large batches.

use crate::convert::tensor_arg;
use crate::errors::IntoPyResult;
use crate::gil;
use crate::tensor::{wrap, PyTensor};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use rustgrad_core::ops::decomp::{self, QrMode};
use rustgrad_core::Tensor;

type T = Py<PyTensor>;

/// Work of an O(n^3) factorization of `a`, for the GIL gateway.
fn work(a: &Tensor) -> usize {
    let s = a.shape();
    let n = s.last().copied().unwrap_or(1);
    a.numel().saturating_mul(n)
}

/// `linalg.inv_ex(A)`: (inverse, info).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _linalg_inv_ex(py: Python<'_>, a: &Bound<'_, PyAny>, check_errors: bool) -> PyResult<(T, T)> {
    let a = tensor_arg(a)?;
    let (inv, info) = gil::heavy(py, work(&a), move || decomp::inv_ex(&a, check_errors)).py()?;
    Ok((wrap(py, inv)?, wrap(py, info)?))
}

/// `linalg.det(A)`.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _linalg_det(py: Python<'_>, a: &Bound<'_, PyAny>) -> PyResult<T> {
    let a = tensor_arg(a)?;
    wrap(py, gil::heavy(py, work(&a), move || decomp::det(&a)).py()?)
}

/// `linalg.slogdet(A)`: (sign, logabsdet).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _linalg_slogdet(py: Python<'_>, a: &Bound<'_, PyAny>) -> PyResult<(T, T)> {
    let a = tensor_arg(a)?;
    let (sign, logabs) = gil::heavy(py, work(&a), move || decomp::slogdet(&a)).py()?;
    Ok((wrap(py, sign)?, wrap(py, logabs)?))
}

/// `linalg.solve(A, B, left=left)`.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _linalg_solve(py: Python<'_>, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>, left: bool) -> PyResult<T> {
    let (a, b) = (tensor_arg(a)?, tensor_arg(b)?);
    let n = work(&a).saturating_add(b.numel());
    wrap(py, gil::heavy(py, n, move || decomp::solve(&a, &b, left)).py()?)
}

/// `linalg.cholesky_ex(A, upper=upper)`: (L, info).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _linalg_cholesky_ex(py: Python<'_>, a: &Bound<'_, PyAny>, upper: bool, check_errors: bool) -> PyResult<(T, T)> {
    let a = tensor_arg(a)?;
    let (l, info) = gil::heavy(py, work(&a), move || decomp::cholesky_ex(&a, upper, check_errors)).py()?;
    Ok((wrap(py, l)?, wrap(py, info)?))
}

/// `linalg.qr(A, mode)`: (Q, R).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _linalg_qr(py: Python<'_>, a: &Bound<'_, PyAny>, mode: &str) -> PyResult<(T, T)> {
    let mode = match mode {
        "reduced" => QrMode::Reduced,
        "complete" => QrMode::Complete,
        "r" => QrMode::R,
        other => {
            return Err(PyRuntimeError::new_err(format!(
                "qr received unrecognized mode '{other}' but expected one of 'reduced' (default), 'r', or 'complete'"
            )))
        }
    };
    let a = tensor_arg(a)?;
    let (q, r) = gil::heavy(py, work(&a), move || decomp::qr(&a, mode)).py()?;
    Ok((wrap(py, q)?, wrap(py, r)?))
}

/// `linalg.eigh(A, UPLO)`: (eigenvalues, eigenvectors).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _linalg_eigh(py: Python<'_>, a: &Bound<'_, PyAny>, upper: bool) -> PyResult<(T, T)> {
    let a = tensor_arg(a)?;
    let (l, v) = gil::heavy(py, work(&a), move || decomp::eigh(&a, upper)).py()?;
    Ok((wrap(py, l)?, wrap(py, v)?))
}

/// `linalg.svd(A, full_matrices)`: (U, S, Vh).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _linalg_svd(py: Python<'_>, a: &Bound<'_, PyAny>, full_matrices: bool) -> PyResult<(T, T, T)> {
    let a = tensor_arg(a)?;
    let (u, s, vh) = gil::heavy(py, work(&a), move || decomp::svd(&a, full_matrices)).py()?;
    Ok((wrap(py, u)?, wrap(py, s)?, wrap(py, vh)?))
}

/// Registers the functions above.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_linalg_inv_ex, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_det, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_slogdet, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_solve, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_cholesky_ex, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_qr, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_eigh, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_svd, m)?)?;
    m.add("_LinAlgError", m.py().get_type::<crate::errors::LinAlgError>())?;
    Ok(())
}
