//! Note [GIL gateway]: the one helper through which long-running core work releases the GIL.
//!
//! Backward passes and kernels over large tensors run with the GIL released, so other Python
//! threads keep running. Anything that calls back into Python from inside (hooks) re-attaches
//! with `Python::attach`. Small kernels keep the GIL: releasing it costs more than they do.

use pyo3::Python;

/// Element count above which a kernel is worth releasing the GIL for.
pub const RELEASE_THRESHOLD: usize = 1 << 15;

/// Runs `f` with the GIL released.
pub fn without_gil<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
    py.detach(f)
}

/// Runs `f` with the GIL released if the work touches at least `RELEASE_THRESHOLD` elements.
pub fn heavy<T: Send>(py: Python<'_>, numel: usize, f: impl FnOnce() -> T + Send) -> T {
    if numel >= RELEASE_THRESHOLD {
        py.detach(f)
    } else {
        f()
    }
}
