//! What `torch.autograd.graph` needs of the core: Python pack and unpack callables behind the
//! core's saved-tensor hooks (`saved_tensors_hooks`, `disable_saved_tensors_hooks`), gradient
//! edges and version bumps.

use crate::errors::{from_py, IntoPyResult};
use crate::tensor::{wrap, PyTensor};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use rustgrad_core::saved_hooks::{self, PackedTensor, SavedTensorHooks};
use rustgrad_core::Tensor;
use std::sync::Arc;

/// A pair of Python hooks.
struct PyHooks {
    pack: Py<PyAny>,
    unpack: Py<PyAny>,
}

/// What the pack hook returned, with the unpack hook to give it to.
struct PyPacked {
    /// Boxed so that its address stays put for the collector (Note [GC through the graph]).
    value: Box<Py<PyAny>>,
    unpack: Py<PyAny>,
}

impl SavedTensorHooks for PyHooks {
    fn pack(&self, tensor: &Tensor) -> rustgrad_core::Result<Box<dyn PackedTensor>> {
        Python::attach(|py| -> PyResult<Box<dyn PackedTensor>> {
            let arg = wrap(py, tensor.clone())?;
            let packed = self.pack.call1(py, (arg,))?;
            let (value, _) = crate::node::own_for_gc(packed);
            Ok(Box::new(PyPacked { value, unpack: self.unpack.clone_ref(py) }))
        })
        .map_err(from_py)
    }
}

impl PackedTensor for PyPacked {
    fn unpack(&self) -> rustgrad_core::Result<Tensor> {
        Python::attach(|py| -> PyResult<Tensor> {
            let out = self.unpack.call1(py, (self.value.clone_ref(py),))?;
            let out = out.bind(py);
            match out.cast::<PyTensor>() {
                Ok(t) => Ok(t.get().t.clone()),
                Err(_) => Err(PyTypeError::new_err(format!(
                    "Output of saved tensor unpack_hook expected to be a Tensor but got result of type {}",
                    out.get_type().name()?
                ))),
            }
        })
        .map_err(from_py)
    }

    fn owned(&self) -> usize {
        &*self.value as *const Py<PyAny> as usize
    }
}

/// Puts a pack and an unpack hook in force on this thread (`saved_tensors_hooks.__enter__`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _push_saved_tensors_hooks(pack: Py<PyAny>, unpack: Py<PyAny>) -> PyResult<()> {
    saved_hooks::push(Arc::new(PyHooks { pack, unpack })).py()
}

/// Removes the hooks pushed last on this thread (`saved_tensors_hooks.__exit__`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _pop_saved_tensors_hooks() {
    saved_hooks::pop()
}

/// Refuses saved-tensor hooks on this thread with `message`; returns what to restore.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _disable_saved_tensors_hooks(message: String) -> PyResult<Option<String>> {
    saved_hooks::disable(message).py()
}

/// Restores the state [`_disable_saved_tensors_hooks`] returned.
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (previous=None))]
pub fn _restore_saved_tensors_hooks(previous: Option<String>) {
    saved_hooks::restore_disabled(previous)
}

/// `(node, output_nr)`: where `tensor`'s gradient flows (a leaf's `AccumulateGrad` is created if
/// needed); `get_gradient_edge` checks that it requires grad first.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _gradient_edge(py: Python<'_>, tensor: PyRef<'_, PyTensor>) -> PyResult<(Py<PyAny>, u32)> {
    let edge = tensor.t.gradient_edge().ok_or_else(|| {
        pyo3::exceptions::PyRuntimeError::new_err(
            "It is not possible to get the gradient edge for a Tensor that does not require gradients",
        )
    })?;
    Ok((crate::node::node_object(py, edge.node)?, edge.input_nr))
}

/// Bumps `tensor`'s version counter, as an in-place write does.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _increment_version(tensor: PyRef<'_, PyTensor>) {
    tensor.t.data().bump_version()
}

/// One row of `saved_tensors_report`: the saving node's name, the tensor's name, its shape,
/// dtype name and bytes (`None`s if a pack hook holds it) and the forward call's site.
type ReportRow = (&'static str, &'static str, Option<Vec<usize>>, Option<&'static str>, usize, Option<String>);

/// What the graphs behind `tensors` keep for backward (`saved_tensors_report`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _saved_tensors_report(tensors: Vec<PyRef<'_, PyTensor>>) -> Vec<ReportRow> {
    let roots: Vec<_> = tensors.iter().filter_map(|t| t.t.grad_fn()).collect();
    rustgrad_core::autograd::saved_report(&roots)
        .into_iter()
        .map(|e| {
            let (shape, dtype, bytes) = match e.described {
                Some((shape, dtype, bytes)) => (Some(shape), Some(dtype.name()), bytes),
                None => (None, None, 0),
            };
            (e.node, e.name, shape, dtype, bytes, e.site.map(|s| s.to_string()))
        })
        .collect()
}

/// The leaves that require grad behind `tensors` (`func` transforms check whether a result
/// depends on anything but the inputs they track).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _leaves_behind(py: Python<'_>, tensors: Vec<PyRef<'_, PyTensor>>) -> PyResult<Vec<Py<PyTensor>>> {
    let tensors: Vec<Tensor> = tensors.iter().map(|t| t.t.clone()).collect();
    rustgrad_core::engine::leaves_behind(&tensors).into_iter().map(|t| wrap(py, t)).collect()
}

/// The id of the backward running on this thread, or -1 (`torch._C._current_graph_task_id`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _current_graph_task_id() -> i64 {
    rustgrad_core::engine::current_task_id().map_or(-1, |id| id as i64)
}

/// Whether the running backward runs `node` (`torch._C._will_engine_execute_node`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _will_engine_execute_node(node: PyRef<'_, crate::node::PyNode>) -> PyResult<bool> {
    let node = node.node()?;
    rustgrad_core::engine::will_execute(&node).ok_or_else(|| {
        pyo3::exceptions::PyRuntimeError::new_err(
            "_will_engine_execute_node should only be called during the backward pass",
        )
    })
}

/// Opens the dual level of forward-mode AD; returns its number.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _enter_dual_level() -> PyResult<u64> {
    rustgrad_core::forward_ad::enter_level().py()
}

/// Closes the dual level `level`.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _exit_dual_level(level: u64) -> PyResult<()> {
    rustgrad_core::forward_ad::exit_level(level).py()
}

/// A view of `primal` carrying `tangent`.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _make_dual(py: Python<'_>, primal: PyRef<'_, PyTensor>, tangent: PyRef<'_, PyTensor>) -> PyResult<Py<PyTensor>> {
    wrap(py, rustgrad_core::forward_ad::make_dual(&primal.t, &tangent.t).py()?)
}

/// `(primal view, tangent or None)` of `tensor`.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _unpack_dual(py: Python<'_>, tensor: PyRef<'_, PyTensor>) -> PyResult<(Py<PyTensor>, Option<Py<PyTensor>>)> {
    let (primal, tangent) = rustgrad_core::forward_ad::unpack_dual(&tensor.t).py()?;
    Ok((wrap(py, primal)?, tangent.map(|t| wrap(py, t)).transpose()?))
}

/// Whether a dual level is open (for `repr`, which then shows tangents).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _dual_level_open() -> bool {
    rustgrad_core::forward_ad::is_open()
}

/// Gives `tensor` the tangent `tangent` at the open dual level (a custom Function's `jvp`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _set_tangent(tensor: PyRef<'_, PyTensor>, tangent: PyRef<'_, PyTensor>) -> PyResult<()> {
    rustgrad_core::forward_ad::give(&tensor.t, &tangent.t).py()
}

/// `grad_fn._raw_saved_self` and the like: one tensor a node saved, on which a pair of hooks
/// can be registered (PyTorch's `torch._C._autograd.SavedTensor`).
#[pyclass(name = "SavedTensor", module = "torch._C._autograd", frozen)]
pub struct PySavedTensor {
    node: rustgrad_core::graph::NodeRef,
    name: &'static str,
}

impl PySavedTensor {
    pub fn new(node: rustgrad_core::graph::NodeRef, name: &'static str) -> Self {
        PySavedTensor { node, name }
    }
}

#[rustgrad_macros::guard]
#[pymethods]
impl PySavedTensor {
    /// Hands this saved tensor to `pack_hook` now; reading it (in backward, or through
    /// `_saved_*`) gives `unpack_hook(packed)`. One pair per saved tensor.
    fn register_hooks(&self, py: Python<'_>, pack_hook: Py<PyAny>, unpack_hook: Py<PyAny>) -> PyResult<()> {
        if !pack_hook.bind(py).is_callable() || !unpack_hook.bind(py).is_callable() {
            return Err(PyTypeError::new_err(
                "register_hooks(): incompatible function arguments. The following argument types are supported:\n    1. (self: torch._C._autograd.SavedTensor, arg0: collections.abc.Callable, arg1: collections.abc.Callable) -> None",
            ));
        }
        if self.node.released() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "Calling register_hooks on a saved tensor after it has been freed. Saved intermediate values of the graph are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or if you need to access saved variables after calling backward.",
            ));
        }
        let hooks = PyHooks { pack: pack_hook, unpack: unpack_hook };
        let wanted = self.name;
        // The tensor is read under the node's lock, packed without it (the hook may look at
        // the graph), then installed.
        let with_saved = |f: &mut dyn FnMut(&mut rustgrad_core::autograd::SavedTensor)| {
            let mut done = false;
            self.node.with(|n| {
                n.op.for_each_saved_mut(&mut |name, saved| {
                    if name == wanted && !done {
                        done = true;
                        f(saved);
                    }
                })
            });
        };
        let mut taken = None;
        with_saved(&mut |saved| taken = Some(saved.for_hooks()));
        let Some(taken) = taken else { return Ok(()) };
        let (tensor, output_nr) = taken.py()?;
        let packed = rustgrad_core::autograd::SavedTensor::packed_by(&hooks, &tensor, output_nr).py()?;
        let mut packed = Some(packed);
        let mut result: rustgrad_core::Result<()> = Ok(());
        with_saved(&mut |saved| {
            if let Some(p) = packed.take() {
                result = saved.set_packed(p);
            }
        });
        result.py()
    }
}
