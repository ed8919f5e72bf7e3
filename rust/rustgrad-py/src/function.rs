//! Custom `autograd.Function`s: the Python class runs `forward`; this file wires its outputs into
//! the graph as one node whose backward calls the class's `backward`. The node's Python object
//! is the `ctx` itself (an instance of `<Function name>Backward`), as in PyTorch.

use crate::errors::{from_py, to_py, IntoPyResult};
use crate::node::PyNode;
use crate::tensor::{wrap, PyTensor};
use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rustgrad_core::autograd::{BackwardCtx, Grads, SavedTensor};
use rustgrad_core::graph::{InputMeta, Metas, Node, NodeRef};
use rustgrad_core::ops::{view, BackwardOp, CustomBackward};
use rustgrad_core::{DType, Error, Tensor};
use smallvec::SmallVec;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

/// The backward of a custom Function: calls `ctx`'s class `backward` through Python.
pub struct PyFunctionBackward {
    ctx: Py<PyAny>,
    name: &'static str,
    materialize: bool,
    /// What `ctx.save_for_backward` received (`None` entries kept), checked for in-place changes.
    saved: Mutex<Option<Vec<Option<SavedTensor>>>>,
    saves: bool,
}

impl CustomBackward for PyFunctionBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> rustgrad_core::Result<Grads> {
        Python::attach(|py| -> PyResult<Grads> {
            let args = grads
                .iter()
                .map(|g| g.as_ref().map(|t| wrap(py, t.clone())).transpose())
                .collect::<PyResult<Vec<_>>>()?;
            let result = crate::python::call(py, "_function_backward", (self.ctx.bind(py), PyTuple::new(py, args)?))?;
            result
                .try_iter()?
                .map(|g| {
                    let g = g?;
                    if g.is_none() {
                        Ok(None)
                    } else {
                        crate::convert::tensor_arg(&g).map(Some)
                    }
                })
                .collect()
        })
        .map_err(from_py)
    }
    fn release_saved(&self) {
        if self.saves {
            *self.saved.lock() = None;
        }
    }
    fn saves_tensors(&self) -> bool {
        false
    }
    fn for_each_saved(&self, f: &mut dyn FnMut(&'static str, &SavedTensor)) {
        if let Some(saved) = self.saved.lock().as_ref() {
            saved.iter().flatten().for_each(|s| f("saved_tensors", s));
        }
    }
    fn for_each_saved_mut(&self, f: &mut dyn FnMut(&'static str, &mut SavedTensor)) {
        if let Some(saved) = self.saved.lock().as_mut() {
            saved.iter_mut().flatten().for_each(|s| f("saved_tensors", s));
        }
    }
    fn materialize_grads(&self) -> bool {
        self.materialize
    }
}

/// The `ctx` object of a custom Function's node.
pub fn ctx_of(py: Python<'_>, node: &NodeRef) -> Option<Py<PyAny>> {
    node.with(|n| match &n.op {
        BackwardOp::Custom(c) => c.as_any().downcast_ref::<PyFunctionBackward>().map(|f| f.ctx.clone_ref(py)),
        _ => None,
    })
}

/// The `ctx` a custom Function's backward owns, for the collector (Note [GC through the graph]).
pub fn ctx_for_gc(op: &dyn CustomBackward) -> Option<&Py<PyAny>> {
    op.as_any().downcast_ref::<PyFunctionBackward>().map(|f| &f.ctx)
}

/// A node name that lives as long as the process (one per Function class name).
fn intern(name: String) -> &'static str {
    static NAMES: Mutex<Option<HashMap<String, &'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock();
    let map = names.get_or_insert_with(HashMap::new);
    if let Some(n) = map.get(&name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
    map.insert(name, leaked);
    leaked
}

fn tensors_attr(ctx: &Bound<'_, PyAny>, attr: &str) -> PyResult<Vec<Option<Tensor>>> {
    let value = ctx.getattr(attr)?;
    if value.is_none() {
        return Ok(Vec::new());
    }
    value
        .try_iter()?
        .map(|item| {
            let item = item?;
            Ok(item.cast::<PyTensor>().ok().map(|t| t.get().t.clone()))
        })
        .collect()
}

fn meta_of(t: Option<&Tensor>) -> InputMeta {
    match t {
        Some(t) => InputMeta { shape: t.shape(), dtype: t.dtype() },
        None => InputMeta { shape: SmallVec::new(), dtype: DType::F32 },
    }
}

/// `Function.apply`'s second half: records the node for `ctx` (if any input requires grad under
/// grad mode) and gives each differentiable output its history. Returns the outputs.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _function_apply(
    py: Python<'_>,
    ctx: &Bound<'_, PyNode>,
    args: &Bound<'_, PyTuple>,
    outputs: &Bound<'_, PyAny>,
) -> PyResult<Py<PyAny>> {
    let is_tuple = outputs.is_instance_of::<PyTuple>();
    let outs: Vec<Bound<'_, PyAny>> =
        if is_tuple { outputs.try_iter()?.collect::<PyResult<_>>()? } else { vec![outputs.clone()] };
    let inputs: Vec<Option<Tensor>> =
        args.iter().map(|a| a.cast::<PyTensor>().ok().map(|t| t.get().t.clone())).collect();
    let executable = rustgrad_core::is_grad_enabled() && inputs.iter().flatten().any(|t| t.requires_grad());
    if !executable {
        return Ok(outputs.clone().unbind());
    }
    let any = ctx.as_any();
    let dirty: Vec<Tensor> = tensors_attr(any, "dirty_tensors")?.into_iter().flatten().collect();
    let non_diff: Vec<Tensor> = tensors_attr(any, "non_differentiable")?.into_iter().flatten().collect();
    let to_save = tensors_attr_with_none(any)?;
    let name = intern(ctx.get_type().name()?.to_string());
    let op = Arc::new(PyFunctionBackward {
        ctx: any.clone().unbind(),
        name,
        materialize: any.getattr("materialize_grads")?.is_truthy()?,
        saved: Mutex::new(None),
        saves: to_save.is_some(),
    });
    let output_tensors: Vec<Option<Tensor>> =
        outs.iter().map(|o| o.cast::<PyTensor>().ok().map(|t| t.get().t.clone())).collect();
    if dirty.iter().any(|d| !output_tensors.iter().flatten().any(|o| o.same(d))) {
        return Err(PyRuntimeError::new_err(
            "Some elements marked as dirty during the forward method were not returned as output. The inputs that are modified inplace must all be outputs of the Function.",
        ));
    }
    // Edges and output slots exist for tensors only; the Python side maps them to positions.
    let tensor_inputs: Vec<&Tensor> = inputs.iter().flatten().collect();
    let node = NodeRef::new(Node::with_edges(
        BackwardOp::Custom(op.clone()),
        tensor_inputs.iter().map(|t| if t.requires_grad() { t.gradient_edge() } else { None }).collect(),
        Metas::new(
            &tensor_inputs.iter().map(|t| meta_of(Some(t))).collect::<Vec<_>>(),
            &output_tensors.iter().flatten().map(|t| meta_of(Some(t))).collect::<Vec<_>>(),
        ),
    ));

    let mut results: Vec<Py<PyAny>> = Vec::with_capacity(outs.len());
    let mut final_outputs: Vec<Tensor> = Vec::with_capacity(outs.len());
    for (obj, t) in outs.iter().zip(output_tensors) {
        let Some(t) = t else {
            results.push(obj.clone().unbind());
            continue;
        };
        let output_nr = final_outputs.len() as u32;
        let differentiable = t.dtype().is_float() && !non_diff.iter().any(|n| n.same(&t));
        let is_input = inputs.iter().flatten().any(|x| x.same(&t));
        let out = if dirty.iter().any(|d| d.same(&t)) {
            if t.is_leaf() && t.requires_grad() {
                return Err(PyRuntimeError::new_err(
                    "a leaf Variable that requires grad has been used in an in-place operation.",
                ));
            }
            if differentiable {
                rustgrad_core::inplace::rebase_history(&t, node.clone(), output_nr);
            }
            results.push(obj.clone().unbind());
            t
        } else {
            // An input returned as is becomes a new tensor (a view of it) with this history.
            let out = if is_input {
                let _off = rustgrad_core::GradModeGuard::new(false);
                let shape: Vec<i64> = t.shape().iter().map(|&s| s as i64).collect();
                view::view(&t, &shape).py()?
            } else {
                t
            };
            if differentiable {
                let mut g = out.lock();
                g.grad_fn = Some(node.clone());
                g.output_nr = output_nr;
                g.requires_grad = false;
            }
            out.mark_custom_function_view();
            results.push(if is_input { wrap(py, out.clone())?.into_any() } else { obj.clone().unbind() });
            out
        };
        final_outputs.push(out);
    }

    if let Some(to_save) = to_save {
        let saved = to_save
            .into_iter()
            .map(|s| {
                s.map(|t| match final_outputs.iter().position(|o| o.same(&t)) {
                    Some(nr) => SavedTensor::output(&t, nr as u32),
                    None => SavedTensor::input(&t),
                })
            })
            .collect();
        *op.saved.lock() = Some(saved);
        rustgrad_core::saved_hooks::take_pending().py()?;
    }
    ctx.get().bind_weak(&node)?;
    crate::node::GRAPH_HOLDS_PYTHON.store(true, std::sync::atomic::Ordering::Relaxed);
    // The node keeps `ctx` alive, so `ctx` must not keep the outputs (whose `grad_fn` is the
    // node): that would be a cycle through Python that only the GC could break. The saved
    // tensors now live in `op.saved` (outputs without their `grad_fn`, as PyTorch's
    // SavedVariable); like PyTorch, the ctx's lists read `None` from here on.
    for attr in ["to_save", "dirty_tensors", "non_differentiable"] {
        any.setattr(attr, py.None())?;
    }
    if is_tuple {
        Ok(PyTuple::new(py, results)?.into_any().unbind())
    } else {
        Ok(results.into_iter().next().unwrap_or_else(|| py.None()))
    }
}

/// `ctx.to_save` as a list that keeps `None` entries (`None` if nothing was saved).
fn tensors_attr_with_none(ctx: &Bound<'_, PyAny>) -> PyResult<Option<Vec<Option<Tensor>>>> {
    let value = ctx.getattr("to_save")?;
    if value.is_none() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for item in value.try_iter()? {
        let item = item?;
        if item.is_none() {
            out.push(None);
        } else {
            out.push(Some(crate::convert::tensor_arg(&item)?));
        }
    }
    Ok(Some(out))
}

/// `ctx.saved_tensors`: the saved tensors, checked against in-place changes since. `None` when
/// the Function ran without recording a node (the Python side then returns what it kept).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _saved_tensors(py: Python<'_>, ctx: &Bound<'_, PyNode>) -> PyResult<Option<Py<PyTuple>>> {
    let Ok(node) = ctx.get().node() else { return Ok(None) };
    let op = node.with(|n| match &n.op {
        BackwardOp::Custom(c) => Some(c.clone()),
        _ => None,
    });
    let Some(op) = op else { return Ok(None) };
    let Some(f) = op.as_any().downcast_ref::<PyFunctionBackward>() else { return Ok(None) };
    if !f.saves {
        return Ok(Some(PyTuple::empty(py).unbind()));
    }
    let site = node.with(|n| n.site());
    let bctx = BackwardCtx { node: &node, name: f.name, needs: SmallVec::new(), site };
    let unpacked: Vec<Option<Tensor>> = {
        let saved = f.saved.lock();
        let Some(saved) = saved.as_ref() else { return Err(to_py(Error::GraphFreed)) };
        saved.iter().map(|s| s.as_ref().map(|s| s.unpack(&bctx)).transpose()).collect::<Result<_, _>>().py()?
    };
    let items = unpacked
        .into_iter()
        .map(|t| match t {
            Some(t) => wrap(py, t).map(|w| w.into_any()),
            None => Ok(py.None()),
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Some(PyTuple::new(py, items)?.unbind()))
}
