//! The one place core errors become Python exceptions.

use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::PyErr;
use rustgrad_core::{Error, ErrorKind};

/// Maps a core error onto the Python exception PyTorch raises for it.
pub fn to_py(err: Error) -> PyErr {
    if let Error::External(inner) = &err {
        if let Some(py_err) = inner.downcast_ref::<PyErr>() {
            return pyo3::Python::attach(|py| py_err.clone_ref(py));
        }
    }
    let msg = err.to_string();
    let py_err = match err.kind() {
        ErrorKind::Runtime => PyRuntimeError::new_err(msg),
        ErrorKind::Value => PyValueError::new_err(msg),
        ErrorKind::Type => PyTypeError::new_err(msg),
        ErrorKind::Index => PyIndexError::new_err(msg),
    };
    if let Some(note) = err.note() {
        // PEP 678 notes: shown under the traceback, while str(exception) stays PyTorch's message.
        pyo3::Python::attach(|py| {
            use pyo3::types::PyAnyMethods;
            let value = py_err.value(py);
            let notes = pyo3::types::PyList::new(py, [note]).ok();
            if let Some(notes) = notes {
                let _ = value.setattr("__notes__", notes);
            }
        });
    }
    py_err
}

/// Wraps a Python exception raised by a hook so it can travel through the core.
pub fn from_py(err: PyErr) -> Error {
    Error::External(std::sync::Arc::new(err))
}

/// `?`-friendly conversion of core results.
pub trait IntoPyResult<T> {
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for rustgrad_core::Result<T> {
    #[inline]
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
