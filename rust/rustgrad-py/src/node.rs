//! `grad_fn` objects: each node kind is a Python class of PyTorch's name (`MulBackward0`),
//! created on first use as a subclass of `Node`.

use crate::errors::IntoPyResult;
use crate::tensor::{wrap, PyTensor};
use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType, PyWeakrefReference};
use rustgrad_core::autograd::BackwardCtx;
use rustgrad_core::graph::NodeRef;
use rustgrad_core::ops::BackwardOp;
use rustgrad_core::Tensor;
use smallvec::SmallVec;
use std::collections::HashMap;

/// Carries a node handle into `Node.__new__` (see [`node_object`]).
#[pyclass(frozen)]
pub struct NodeToken {
    node: Mutex<Option<NodeRef>>,
}

/// A backward function of the graph.
#[pyclass(name = "Node", module = "rustgrad.autograd", subclass, frozen, weakref)]
pub struct PyNode {
    pub node: NodeRef,
}

static CLASSES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static LIVE: Mutex<Option<HashMap<(u32, u32), Py<PyWeakrefReference>>>> = Mutex::new(None);

/// The Python object of a node: the same object while it lives, of the class named like the node.
pub fn node_object(py: Python<'_>, node: NodeRef) -> PyResult<Py<PyAny>> {
    let key = node.key();
    {
        let live = LIVE.lock();
        if let Some(existing) = live.as_ref().and_then(|m| m.get(&key)) {
            if let Some(obj) = existing.bind(py).upgrade() {
                return Ok(obj.unbind());
            }
        }
    }
    let name = class_name(node.name());
    let classes = CLASSES.get_or_init(py, || PyDict::new(py).unbind()).bind(py);
    let cls = match classes.get_item(name)? {
        Some(c) => c,
        None => {
            let base = py.get_type::<PyNode>();
            let ns = PyDict::new(py);
            ns.set_item("__module__", "rustgrad.autograd")?;
            let c = py.import("builtins")?.getattr("type")?.call1((name, (base,), ns))?;
            classes.set_item(name, &c)?;
            c
        }
    };
    let token = Bound::new(py, NodeToken { node: Mutex::new(Some(node)) })?;
    let obj = cls.call1((token,))?;
    let weak = PyWeakrefReference::new(&obj)?;
    let mut live = LIVE.lock();
    let map = live.get_or_insert_with(HashMap::new);
    if map.len() > 1024 {
        map.retain(|_, w| w.bind(py).upgrade().is_some());
    }
    map.insert(key, weak.unbind());
    Ok(obj.unbind())
}

/// The Python class name of a node: its name without a C++ namespace.
fn class_name(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}

#[pymethods]
impl PyNode {
    #[new]
    fn new(token: &Bound<'_, PyAny>) -> PyResult<Self> {
        let token =
            token.cast::<NodeToken>().map_err(|_| PyTypeError::new_err("Node objects cannot be created directly"))?;
        let node = token.get().node.lock().take().ok_or_else(|| PyRuntimeError::new_err("node token already used"))?;
        Ok(PyNode { node })
    }

    fn name(&self) -> &'static str {
        self.node.name()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        format!("<{} object at {:#x}>", class_name(slf.get().node.name()), slf.as_ptr() as usize)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyNode>().is_ok_and(|o| o.get().node.key() == self.node.key())
    }

    fn __hash__(&self) -> u64 {
        let (i, g) = self.node.key();
        ((g as u64) << 32) | i as u64
    }

    /// `((node or None, input_nr), ...)`: where each input's gradient goes.
    #[getter]
    fn next_functions(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        let next: SmallVec<[Option<(NodeRef, u32)>; 2]> =
            self.node.with(|n| n.next.iter().map(|e| e.as_ref().map(|e| (e.node.clone(), e.input_nr))).collect());
        let items: Vec<Py<PyAny>> = next
            .into_iter()
            .map(|e| -> PyResult<Py<PyAny>> {
                Ok(match e {
                    Some((node, nr)) => {
                        PyTuple::new(py, [node_object(py, node)?, nr.into_pyobject(py)?.into_any().unbind()])?
                            .into_any()
                            .unbind()
                    }
                    None => {
                        PyTuple::new(py, [py.None(), 0u32.into_pyobject(py)?.into_any().unbind()])?.into_any().unbind()
                    }
                })
            })
            .collect::<PyResult<_>>()?;
        Ok(PyTuple::new(py, items)?.unbind())
    }

    /// The leaf of an `AccumulateGrad` node.
    #[getter]
    fn variable(&self, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        let leaf = self.node.with(|n| match &n.op {
            BackwardOp::AccumulateGrad(a) => Some(a.leaf.clone()),
            _ => None,
        });
        match leaf {
            Some(t) => wrap(py, t),
            None => Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "'{}' object has no attribute 'variable'",
                self.node.name()
            ))),
        }
    }

    #[getter]
    fn metadata(&self, py: Python<'_>) -> Py<PyDict> {
        PyDict::new(py).unbind()
    }

    /// Calls the backward function directly: `node(*grads)` returns the input gradients
    /// (one tensor, or a tuple when there are several); an `AccumulateGrad` fills `.grad`.
    #[pyo3(signature = (*grads))]
    fn __call__(&self, py: Python<'_>, grads: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let grads: Vec<Option<Tensor>> = grads
            .iter()
            .map(|g| if g.is_none() { Ok(None) } else { crate::convert::tensor_arg(&g).map(Some) })
            .collect::<PyResult<_>>()?;
        let name = self.node.name();
        let needs: SmallVec<[bool; 2]> = self.node.with(|n| n.next.iter().map(|e| e.is_some()).collect());
        let is_accumulate = needs.is_empty();
        let out = {
            let guard = self.node.lock();
            let node = guard.as_ref().ok_or_else(|| PyRuntimeError::new_err("node was freed"))?;
            if node.released && node.op.saves_tensors() {
                return Err(crate::errors::to_py(rustgrad_core::Error::GraphFreed));
            }
            let ctx =
                BackwardCtx { node: &self.node, name, needs: if is_accumulate { SmallVec::new() } else { needs } };
            node.op.apply(&ctx, &grads).py()?
        };
        let items: Vec<Py<PyAny>> = out
            .into_iter()
            .map(|g| match g {
                Some(t) => wrap(py, t).map(|w| w.into_any()),
                None => Ok(py.None()),
            })
            .collect::<PyResult<_>>()?;
        if items.len() == 1 {
            return Ok(items.into_iter().next().unwrap());
        }
        Ok(PyTuple::new(py, items)?.into_any().unbind())
    }

    fn register_hook(&self, _hook: Py<PyAny>) -> PyResult<()> {
        Err(PyRuntimeError::new_err("Node.register_hook is not supported yet"))
    }

    #[getter]
    fn __name__(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(slf.get_type().name()?.to_string())
    }
}

/// The handle `register_hook` returns; `remove()` unregisters the hook.
#[pyclass(name = "RemovableHandle", module = "rustgrad.utils.hooks", frozen)]
pub struct PyHookHandle {
    tensor: Tensor,
    id: u64,
}

impl PyHookHandle {
    pub fn for_tensor(tensor: Tensor, id: u64) -> Self {
        PyHookHandle { tensor, id }
    }
}

#[pymethods]
impl PyHookHandle {
    fn remove(&self) {
        self.tensor.remove_hook(self.id);
    }
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __exit__(&self, _a: &Bound<'_, PyAny>, _b: &Bound<'_, PyAny>, _c: &Bound<'_, PyAny>) {
        self.remove();
    }
}

#[allow(dead_code)]
fn _type_check(_: &Bound<'_, PyType>) {}
