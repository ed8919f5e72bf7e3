//! `grad_fn` objects: each node kind is a Python class of PyTorch's name (`MulBackward0`),
//! created on first use as a subclass of `Node`.

use crate::errors::{from_py, IntoPyResult};
use crate::tensor::{wrap, PyTensor};
use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyWeakrefReference};
use pyo3::PyTraverseError;
use rustgrad_core::graph::{visit_owned, Hook, NodePostHook, NodePreHook, NodeRef, WeakNodeRef};
use rustgrad_core::ops::BackwardOp;
use rustgrad_core::tensor::TensorCell;
use rustgrad_core::Tensor;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

/// Carries a node handle into `Node.__new__` (see [`node_object`]).
#[pyclass(frozen)]
pub struct NodeToken {
    node: Mutex<Option<NodeRef>>,
}

/// A backward function of the graph.
#[pyclass(name = "Node", module = "rustgrad.autograd", subclass, frozen, weakref, dict)]
pub struct PyNode {
    handle: OnceLock<NodeHandle>,
}

/// How a node object refers to its node. A custom `Function`'s node object is its `ctx`, which
/// the node itself keeps alive, so the object refers back to the node only weakly.
enum NodeHandle {
    Strong(NodeRef),
    Weak(WeakNodeRef),
}

impl PyNode {
    /// The node; an error once the node of a `ctx` was freed (or before it was created).
    pub fn node(&self) -> PyResult<NodeRef> {
        match self.handle.get() {
            Some(NodeHandle::Strong(n)) => Ok(n.clone()),
            Some(NodeHandle::Weak(w)) => {
                w.upgrade().ok_or_else(|| PyRuntimeError::new_err("the graph node of this object was freed"))
            }
            None => Err(PyRuntimeError::new_err("this Function's backward node does not exist (yet)")),
        }
    }

    /// Attaches a custom function's `ctx` object to its node.
    pub fn bind_weak(&self, node: &NodeRef) -> PyResult<()> {
        self.handle
            .set(NodeHandle::Weak(node.downgrade()))
            .map_err(|_| PyRuntimeError::new_err("this Function context is already attached to a node"))
    }
}

static CLASSES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static LIVE: Mutex<Option<HashMap<(u32, u32), Py<PyWeakrefReference>>>> = Mutex::new(None);

/// The Python object of a node: the same object while it lives, of the class named like the node.
pub fn node_object(py: Python<'_>, node: NodeRef) -> PyResult<Py<PyAny>> {
    if let Some(ctx) = crate::function::ctx_of(py, &node) {
        return Ok(ctx);
    }
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

#[rustgrad_macros::guard]
#[pymethods]
impl PyNode {
    /// `Node(token)` wraps a graph node; `SomeFunctionBackward()` (no token) is the `ctx` of a
    /// custom `Function`, attached to its node after the forward.
    #[new]
    #[pyo3(signature = (*args, **_kwargs))]
    fn new(args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let handle = OnceLock::new();
        if let Some(token) = args.iter().next() {
            let token = token
                .cast::<NodeToken>()
                .map_err(|_| PyTypeError::new_err("Node objects cannot be created directly"))?;
            let node =
                token.get().node.lock().take().ok_or_else(|| PyRuntimeError::new_err("node token already used"))?;
            let _ = handle.set(NodeHandle::Strong(node));
        }
        Ok(PyNode { handle })
    }

    /// The node's class name, e.g. ``'MulBackward0'``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.autograd.graph.Node.name.html
    fn name(slf: &Bound<'_, Self>) -> PyResult<String> {
        match slf.get().node() {
            Ok(n) => Ok(n.name().to_string()),
            Err(_) => Ok(slf.get_type().name()?.to_string()),
        }
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(format!("<{} object at {:#x}>", slf.get_type().name()?, slf.as_ptr() as usize))
    }

    fn __eq__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> bool {
        if slf.is(other) {
            return true;
        }
        match (other.cast::<PyNode>(), slf.get().node()) {
            (Ok(o), Ok(me)) => o.get().node().is_ok_and(|n| n.key() == me.key()),
            _ => false,
        }
    }

    fn __hash__(slf: &Bound<'_, Self>) -> u64 {
        match slf.get().node() {
            Ok(n) => {
                let (i, g) = n.key();
                ((g as u64) << 32) | i as u64
            }
            Err(_) => slf.as_ptr() as u64,
        }
    }

    /// `((node or None, input_nr), ...)`: where each input's gradient goes.
    #[getter]
    fn next_functions(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        let next: SmallVec<[Option<(NodeRef, u32)>; 2]> =
            self.node()?.with(|n| n.next.iter().map(|e| e.as_ref().map(|e| (e.node.clone(), e.input_nr))).collect());
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
        let node = self.node()?;
        let leaf = node.with(|n| match &n.op {
            BackwardOp::AccumulateGrad(a) => Some(a.leaf.clone()),
            _ => None,
        });
        match leaf {
            Some(t) => wrap(py, t),
            None => Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "'{}' object has no attribute 'variable'",
                class_name(node.name())
            ))),
        }
    }

    /// `grad_fn._saved_self` and the like: a tensor the node saved for backward, by PyTorch's
    /// name (unpacked, through the unpack hook if one packed it).
    fn __getattr__(slf: &Bound<'_, Self>, name: &str) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let missing = || -> PyResult<Py<PyAny>> {
            Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "'{}' object has no attribute '{name}'",
                slf.get_type().name()?
            )))
        };
        if let Some(wanted) = name.strip_prefix("_raw_saved_") {
            let Ok(node) = slf.get().node() else { return missing() };
            let mut found: Option<&'static str> = None;
            node.with(|n| {
                n.op.for_each_saved(&mut |saved_name, _| {
                    if saved_name == wanted && found.is_none() {
                        found = Some(saved_name);
                    }
                })
            });
            return match found {
                Some(saved_name) => Ok(Py::new(py, crate::graph::PySavedTensor::new(node, saved_name))?.into_any()),
                None => missing(),
            };
        }
        let Some(wanted) = name.strip_prefix("_saved_") else { return missing() };
        let Ok(node) = slf.get().node() else { return missing() };
        let found = node.with(|n| {
            let mut found = None;
            n.op.for_each_saved(&mut |saved_name, saved| {
                if saved_name == wanted && found.is_none() {
                    // A freed graph's saved tensors give PyTorch's error; never-saved ones `None`.
                    found = Some((saved.is_held() || node.released()).then(|| {
                        let ctx = rustgrad_core::autograd::BackwardCtx {
                            node: &node,
                            name: n.name(),
                            needs: SmallVec::new(),
                            site: n.site(),
                        };
                        saved.unpack(&ctx)
                    }));
                }
            });
            found
        });
        match found {
            None => missing(),
            Some(None) => Ok(py.None()),
            Some(Some(t)) => Ok(wrap(py, t.py()?)?.into_any()),
        }
    }

    /// The node's metadata dict: the same dict for as long as the node lives.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.autograd.graph.Node.metadata.html
    #[getter]
    fn metadata(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let node = self.node()?;
        let existing = node.with(|n| n.extras.as_ref().and_then(|e| e.metadata.clone()));
        if let Some(hook) = existing {
            if let Some(dict) = hook.f.downcast_ref::<Box<Py<PyAny>>>() {
                return Ok(dict.clone_ref(py));
            }
        }
        let (boxed, addr) = own_for_gc(PyDict::new(py).into_any().unbind());
        let dict = boxed.clone_ref(py);
        let hook: Arc<Hook<dyn std::any::Any + Send + Sync>> = Arc::new(Hook { owned: addr, f: boxed });
        // Set without `extras_mut`, which would make the engine look for hooks on every node.
        node.with(|n| n.extras.get_or_insert_with(Default::default).metadata = Some(hook));
        Ok(dict)
    }

    /// Calls the backward function directly: `node(*grads)` returns the input gradients
    /// (one tensor, or a tuple when there are several); an `AccumulateGrad` fills `.grad`.
    #[pyo3(signature = (*grads))]
    fn __call__(&self, py: Python<'_>, grads: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let grads: Vec<Option<Tensor>> = grads
            .iter()
            .map(|g| if g.is_none() { Ok(None) } else { crate::convert::tensor_arg(&g).map(Some) })
            .collect::<PyResult<_>>()?;
        let node = self.node()?;
        let needs: SmallVec<[bool; 2]> = node.with(|n| n.next.iter().map(|e| e.is_some()).collect());
        let (out, _, _) = rustgrad_core::engine::apply_node(&node, needs, &grads, true).py()?;
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

    /// `hook(grad_inputs, grad_outputs) -> tuple | None`, run after the node computed its gradients.
    fn register_hook(&self, py: Python<'_>, hook: Py<PyAny>) -> PyResult<Py<PyHookHandle>> {
        let node = self.node()?;
        let id = node.add_post_hook(make_post_hook(hook));
        Py::new(py, PyHookHandle { target: HookTarget::Node(node.downgrade()), id })
    }

    /// `hook(grad_outputs) -> tuple | None`, run before the node computes its gradients.
    fn register_prehook(&self, py: Python<'_>, hook: Py<PyAny>) -> PyResult<Py<PyHookHandle>> {
        let node = self.node()?;
        let id = node.add_pre_hook(make_pre_hook(hook));
        Py::new(py, PyHookHandle { target: HookTarget::Node(node.downgrade()), id })
    }

    #[getter]
    fn __name__(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(slf.get_type().name()?.to_string())
    }
}

/// Note [GC through the graph]: Python objects the graph holds (hook callables, the `ctx` of a
/// custom Function) may refer back to the tensor or node object that holds the graph
/// (`x.register_hook(lambda g: x * g)`, `ctx.out = out`). PyTorch leaks such cycles; here the
/// `Tensor` and `Node` objects report to Python's collector the objects they own through the
/// graph: those of the tensor's own hooks and of its `grad_fn` (hooks, `ctx`), each reported
/// only while the object's handle is the only one on the way (unique tensor cell, unique node,
/// unique hook), so every report stands for a reference that object alone owns. Other threads
/// can gain a handle only from one they hold already (and then nothing is reported), so what
/// is reported stays the same during a collection, which holds the GIL. The traversal takes
/// no lock it would wait for (`try_lock`: a busy lock means another holder, so nothing to
/// report) and allocates nothing; the whole of it is skipped until the first Python object was
/// put into a graph ([`GRAPH_HOLDS_PYTHON`]). Collecting such a cycle clears the Python
/// objects in it (the callable's closure, the ctx's `__dict__`), which frees the tensor.
pub static GRAPH_HOLDS_PYTHON: AtomicBool = AtomicBool::new(false);

/// Reports a hook's Python object, given the address [`own_for_gc`] returned.
fn visit_addr(visit: &PyVisit<'_>, addr: usize) -> Result<(), PyTraverseError> {
    // SAFETY: `addr` is the address of a boxed `Py` that the hook (alive: we hold it through a
    // locked structure) owns and never moves (see `own_for_gc`).
    let obj: &Py<PyAny> = unsafe { &*(addr as *const Py<PyAny>) };
    visit.call(obj)
}

/// Boxes a hook's callable for a core hook and returns it with the address the collector reads.
pub fn own_for_gc(hook: Py<PyAny>) -> (Box<Py<PyAny>>, usize) {
    GRAPH_HOLDS_PYTHON.store(true, Ordering::Relaxed);
    let boxed = Box::new(hook);
    let addr = &*boxed as *const Py<PyAny> as usize;
    (boxed, addr)
}

/// Reports the Python objects a node owns, if `node` is its only handle (Note [GC through the graph]).
pub fn visit_node(node: &NodeRef, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
    if !node.is_unique() {
        return Ok(());
    }
    node.try_with(|n| {
        if let Some(h) = &n.extras {
            h.visit_owned(&mut |addr| visit_addr(visit, addr))?;
        }
        // What pack hooks returned (`saved_tensors_hooks`), owned by the node's saved tensors.
        let mut packed = Ok(());
        n.op.for_each_saved(&mut |_, saved| {
            let addr = saved.packed_owned();
            if addr != 0 && packed.is_ok() {
                packed = visit_addr(visit, addr);
            }
        });
        packed?;
        if let BackwardOp::Custom(op) = &n.op {
            if Arc::strong_count(op) == 1 {
                if let Some(ctx) = crate::function::ctx_for_gc(op.as_ref()) {
                    visit.call(ctx)?;
                }
            }
        }
        Ok(())
    })
    .unwrap_or(Ok(()))
}

/// Reports the Python objects a tensor's only handle owns (Note [GC through the graph]).
pub fn visit_tensor(t: &Tensor, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
    if !GRAPH_HOLDS_PYTHON.load(Ordering::Relaxed) {
        return Ok(());
    }
    let Some(g) = t.try_lock_unique() else { return Ok(()) };
    let mut report = |addr| visit_addr(visit, addr);
    visit_owned(g.hooks().iter().map(|h| &h.1), &mut report)?;
    visit_owned(g.post_accumulate_hooks().iter().map(|h| &h.1), &mut report)?;
    match &g.grad_fn {
        Some(node) => visit_node(node, visit),
        None => Ok(()),
    }
}

// Not behind `#[guard]`: PyO3 nets panics in `tp_traverse` itself, and nothing here panics.
#[pymethods]
impl PyNode {
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if !GRAPH_HOLDS_PYTHON.load(Ordering::Relaxed) {
            return Ok(());
        }
        match self.handle.get() {
            Some(NodeHandle::Strong(node)) => visit_node(node, &visit),
            _ => Ok(()),
        }
    }
}

/// Tensors or `None`s as a tuple.
fn grads_tuple<'py>(py: Python<'py>, grads: &[Option<Tensor>]) -> PyResult<Bound<'py, PyTuple>> {
    let items: Vec<Py<PyAny>> = grads
        .iter()
        .map(|g| match g {
            Some(t) => wrap(py, t.clone()).map(|w| w.into_any()),
            None => Ok(py.None()),
        })
        .collect::<PyResult<_>>()?;
    PyTuple::new(py, items)
}

/// A node hook's result: `None`, or a tuple of tensors/`None`s replacing `current` (a `None`
/// gradient can't become a tensor).
fn hook_result(
    py: Python<'_>,
    hook: &Py<PyAny>,
    r: &Bound<'_, PyAny>,
    current: &[Option<Tensor>],
    may_fill_none: bool,
) -> PyResult<Option<Vec<Option<Tensor>>>> {
    if r.is_none() {
        return Ok(None);
    }
    let items = r.cast::<PyTuple>().map_err(|_| {
        let type_name = r.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        PyTypeError::new_err(format!("expected tuple, but hook returned '{type_name}'"))
    })?;
    if items.len() != current.len() {
        let name = hook.bind(py).getattr("__name__").map(|n| n.to_string()).unwrap_or_else(|_| "hook".into());
        return Err(PyRuntimeError::new_err(format!(
            "hook '{name}' has returned an incorrect number of values (got {}, but expected {})",
            items.len(),
            current.len()
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for (item, old) in items.iter().zip(current) {
        if item.is_none() {
            out.push(None);
        } else if old.is_none() && !may_fill_none {
            return Err(PyRuntimeError::new_err("can't replace a None gradient with a non-None value"));
        } else {
            out.push(Some(crate::convert::tensor_arg(&item)?));
        }
    }
    Ok(Some(out))
}

fn make_pre_hook(hook: Py<PyAny>) -> NodePreHook {
    let (hook, addr) = own_for_gc(hook);
    Hook::owning(addr, move |grads: &[Option<Tensor>]| {
        Python::attach(|py| {
            let r = hook.call1(py, (grads_tuple(py, grads)?,))?;
            hook_result(py, &hook, r.bind(py), grads, true)
        })
        .map_err(from_py)
    })
}

fn make_post_hook(hook: Py<PyAny>) -> NodePostHook {
    let (hook, addr) = own_for_gc(hook);
    Hook::owning(addr, move |inputs: &[Option<Tensor>], outputs: &[Option<Tensor>]| {
        Python::attach(|py| {
            let r = hook.call1(py, (grads_tuple(py, inputs)?, grads_tuple(py, outputs)?))?;
            hook_result(py, &hook, r.bind(py), inputs, false)
        })
        .map_err(from_py)
    })
}

/// What a hook was registered on. Handles hold it weakly: they never keep a graph alive.
pub enum HookTarget {
    Tensor(Weak<TensorCell>),
    PostAccumulate(Weak<TensorCell>),
    Node(WeakNodeRef),
}

/// The handle `register_hook` returns; `remove()` unregisters the hook.
#[pyclass(name = "RemovableHandle", module = "rustgrad.utils.hooks", frozen)]
pub struct PyHookHandle {
    pub target: HookTarget,
    pub id: u64,
}

#[rustgrad_macros::guard]
#[pymethods]
impl PyHookHandle {
    /// Unregisters the hook; calling it again does nothing.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.register_hook.html
    fn remove(&self) {
        match &self.target {
            HookTarget::Tensor(w) => {
                if let Some(c) = w.upgrade() {
                    Tensor::from_cell(c).remove_hook(self.id);
                }
            }
            HookTarget::PostAccumulate(w) => {
                if let Some(c) = w.upgrade() {
                    Tensor::from_cell(c).remove_post_accumulate_hook(self.id);
                }
            }
            HookTarget::Node(w) => {
                if let Some(n) = w.upgrade() {
                    n.remove_hook(self.id);
                }
            }
        }
    }
    /// The handle's number, unique among this process's hooks.
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
