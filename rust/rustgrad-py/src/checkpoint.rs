//! `rustgrad.save`/`load`'s file layer: safetensors files of named tensors (see the core's
//! `checkpoint` module), with the GIL released while the file is written or read.

use crate::errors::IntoPyResult;
use crate::tensor::{wrap, PyTensor};
use pyo3::exceptions::PyFileNotFoundError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustgrad_core::checkpoint;
use std::collections::HashMap;
use std::path::PathBuf;

/// Writes `tensors` (a dict name -> Tensor) and string `metadata` to `path`, atomically.
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (tensors, metadata, path))]
pub fn _save_safetensors(
    py: Python<'_>,
    tensors: &Bound<'_, PyDict>,
    metadata: Option<HashMap<String, String>>,
    path: PathBuf,
) -> PyResult<()> {
    let mut named = Vec::with_capacity(tensors.len());
    for (k, v) in tensors.iter() {
        let name: String = k.extract()?;
        let t = v.cast::<PyTensor>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "save: value of '{name}' must be a Tensor, got {}",
                v.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            ))
        })?;
        named.push((name, t.get().t.clone()));
    }
    py.detach(|| checkpoint::save(&named, metadata, &path)).py()
}

/// Reads a safetensors file: (dict name -> Tensor in file order, metadata dict).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _load_safetensors(py: Python<'_>, path: PathBuf) -> PyResult<(Py<PyDict>, HashMap<String, String>)> {
    if !path.exists() {
        return Err(PyFileNotFoundError::new_err((2, "No such file or directory", path.display().to_string())));
    }
    let (named, metadata) = py.detach(|| checkpoint::load(&path)).py()?;
    let dict = PyDict::new(py);
    for (name, t) in named {
        dict.set_item(name, wrap(py, t)?)?;
    }
    Ok((dict.unbind(), metadata))
}
