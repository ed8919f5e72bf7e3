//! Calls from Rust into the Python half of the package (`rustgrad._glue`), for the few things
//! that are Python objects by nature: `torch.Size`, devices, warnings, repr formatting.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};

static GLUE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static SIZE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CPU: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn glue(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    Ok(GLUE.get_or_try_init(py, || py.import("rustgrad._glue").map(|m| m.unbind()))?.bind(py))
}

/// Calls `rustgrad._glue.<name>(*args)`.
pub fn call<'py, A: pyo3::call::PyCallArgs<'py>>(py: Python<'py>, name: &str, args: A) -> PyResult<Bound<'py, PyAny>> {
    glue(py)?.getattr(name)?.call1(args)
}

/// `torch.Size(shape)`.
pub fn size(py: Python<'_>, shape: &[usize]) -> PyResult<Py<PyAny>> {
    let cls = SIZE.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        Ok(glue(py)?.getattr("Size")?.cast_into::<PyType>()?.unbind())
    })?;
    Ok(cls.bind(py).call1((PyTuple::new(py, shape.iter())?,))?.unbind())
}

/// `device(type='cpu')`.
pub fn cpu_device(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(CPU.get_or_try_init(py, || -> PyResult<Py<PyAny>> { Ok(glue(py)?.getattr("CPU")?.unbind()) })?.clone_ref(py))
}

/// Raises unless `device` names the CPU.
pub fn check_device(py: Python<'_>, device: &Bound<'_, PyAny>) -> PyResult<()> {
    call(py, "_check_device", (device,)).map(|_| ())
}

/// `torch.Generator(device)`'s check: the CPU only, with a CPU-only build's errors.
pub fn check_generator_device(py: Python<'_>, device: &Bound<'_, PyAny>) -> PyResult<()> {
    call(py, "_check_generator_device", (device,)).map(|_| ())
}

/// PyTorch's warning when `.grad` of a non-leaf is read.
pub fn warn_non_leaf_grad(py: Python<'_>) -> PyResult<()> {
    call(py, "_warn_non_leaf_grad", ()).map(|_| ())
}

/// `torch.return_types.max(values=..., indices=...)`.
pub fn return_types(
    py: Python<'_>,
    name: &str,
    values: Py<crate::tensor::PyTensor>,
    indices: Py<crate::tensor::PyTensor>,
) -> PyResult<Py<PyAny>> {
    Ok(call(py, "_return_type", (name, values, indices))?.unbind())
}
