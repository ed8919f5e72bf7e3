//! The `Tensor` class. Operators and methods call straight into the core: no Python wrapper
//! sits on the hot path.

use crate::convert::{
    dtype_arg, dtype_object, operand, operand_beside, sizes_arg, tensor_arg, to_numpy, try_operand_beside, uint64_int,
    ReduceDims,
};
use crate::errors::{from_py, IntoPyResult};
use crate::gil;
use crate::node::node_object;
use crate::python;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use pyo3::PyTraverseError;
use rustgrad_core::dtype::Category;
use rustgrad_core::graph::Hook;
use rustgrad_core::inplace::{apply_inplace_reading, Internal, Reads};
use rustgrad_core::kernels::{Binary, Compare, Unary};
use rustgrad_core::ops::{arith, compare, fill, linalg, pow, reduce, unary, view};
use rustgrad_core::{autocast, creation, engine, DType, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A multi-dimensional array that records the operations on it for differentiation.
#[pyclass(name = "Tensor", module = "rustgrad", subclass, frozen, weakref)]
pub struct PyTensor {
    pub t: Tensor,
    /// This object's address, kept in the tensor's `binding_handle` while the object lives.
    me: AtomicUsize,
}

impl PyTensor {
    pub fn new_unbound(t: Tensor) -> Self {
        PyTensor { t, me: AtomicUsize::new(0) }
    }

    /// Records `obj` as the Python object of its tensor.
    pub fn bind_handle(obj: &Bound<'_, PyTensor>) {
        let p = obj.as_ptr() as usize;
        obj.get().me.store(p, Ordering::Relaxed);
        obj.get().t.cell().binding_handle.store(p, Ordering::Relaxed);
    }
}

impl Drop for PyTensor {
    fn drop(&mut self) {
        let me = self.me.load(Ordering::Relaxed);
        if me != 0 {
            let _ = self.t.cell().binding_handle.compare_exchange(me, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

// Not behind `#[guard]`: PyO3 nets panics in `tp_traverse` itself, and nothing here panics.
#[pymethods]
impl PyTensor {
    /// Reports the Python objects this tensor owns through its graph (Note [GC through the graph]).
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        crate::node::visit_tensor(&self.t, &visit)
    }
}

/// The Python object of a core tensor: the existing one if it is alive (so `x.grad is x.grad`
/// and `node.variable is x`, as in PyTorch), else a new one.
pub fn wrap(py: Python<'_>, t: Tensor) -> PyResult<Py<PyTensor>> {
    let existing = t.cell().binding_handle.load(Ordering::Relaxed);
    if existing != 0 {
        // SAFETY: the handle is cleared (under the GIL, which we hold) before its object is
        // freed, so a non-zero handle points to a live PyTensor (or subclass) object.
        let obj = unsafe { Bound::from_borrowed_ptr(py, existing as *mut pyo3::ffi::PyObject) };
        return Ok(obj.cast_into::<PyTensor>()?.unbind());
    }
    let obj = Bound::new(py, PyTensor::new_unbound(t))?;
    PyTensor::bind_handle(&obj);
    Ok(obj.unbind())
}

fn wrap_opt(py: Python<'_>, t: Option<Tensor>) -> PyResult<Option<Py<PyTensor>>> {
    t.map(|t| wrap(py, t)).transpose()
}

type R = PyResult<Py<PyTensor>>;

/// A binary operator: `f(other)` for a tensor or number `other`, else `NotImplemented`
/// (so Python tries the reflected operator of the other operand).
/// A number operand is read beside `this` (note [uint64 operands]; `float_op` for true division).
fn dunder(
    py: Python<'_>,
    this: &Tensor,
    other: &Bound<'_, PyAny>,
    float_op: bool,
    f: impl FnOnce(&Tensor) -> rustgrad_core::Result<Tensor>,
) -> PyResult<Py<PyAny>> {
    // A tensor operand is borrowed from its wrapper (no reference-count traffic).
    if let Ok(t) = other.cast::<PyTensor>() {
        return Ok(wrap(py, f(&t.get().t).py()?)?.into_any());
    }
    match try_operand_beside(other, this, float_op)? {
        Some(o) => Ok(wrap(py, f(&o).py()?)?.into_any()),
        None => Ok(py.NotImplemented()),
    }
}

fn cmp(kind: Compare) -> impl Fn(&Tensor, &Tensor) -> rustgrad_core::Result<Tensor> {
    move |a, b| compare::compare(a, b, kind)
}

fn dims_arg(dim: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<i64>>> {
    crate::convert::dims_arg(dim)
}

fn pow_any(base: &Tensor, e: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    if let Some(v) = uint64_int(e) {
        // A uint64 exponent (note [uint64 operands]) is read in the base's dtype.
        if !base.dtype().is_float() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "value cannot be converted to type int64_t without overflow",
            ));
        }
        return pow::pow_scalar(base, rustgrad_core::Scalar::Float(v as f64)).py();
    }
    if let Some(s) = crate::convert::scalar_arg(e)? {
        return pow::pow_scalar(base, s).py();
    }
    pow::pow_tensor(base, &tensor_arg(e)?).py()
}

impl PyTensor {
    /// `float(t)`/`int(t)` need exactly one element (PyTorch's ValueError otherwise).
    fn one_element(&self) -> PyResult<()> {
        if self.t.numel() != 1 {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "only one element tensors can be converted to Python scalars",
            ));
        }
        Ok(())
    }

    fn item_object(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = self.t.item_f64().py()?;
        Ok(match self.t.dtype().category() {
            Category::Floating => v.into_pyobject(py)?.into_any().unbind(),
            Category::Integral => (self.t.to_vec::<i64>()[0]).into_pyobject(py)?.into_any().unbind(),
            Category::Bool => (v != 0.0).into_pyobject(py)?.to_owned().into_any().unbind(),
        })
    }

    /// `x.max(...)` / `x.min(...)`: the element-wise extreme with a tensor, else the reduction.
    /// With `keepdim` only the dim overload is left, so a tensor there must be an integer.
    fn extreme_method(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: Option<&Bound<'_, PyAny>>,
        max: bool,
    ) -> PyResult<Py<PyAny>> {
        let name = if max { "max" } else { "min" };
        let (keepdim, dim_overload) = match keepdim {
            Some(k) => {
                if let Some(d) = dim {
                    crate::convert::int_param(d, name, "dim", Some(1))?;
                }
                (crate::convert::bool_param(k, name, "keepdim", Some(2))?, true)
            }
            None => (false, false),
        };
        if let Some(other) = dim.and_then(|d| d.cast::<PyTensor>().ok()).filter(|_| !dim_overload) {
            // `x.max(other)`: the element-wise maximum, as `torch.maximum`.
            let out = rustgrad_core::ops::elementwise::extremum(&self.t, &other.get().t, max).py()?;
            return Ok(wrap(py, out)?.into_any());
        }
        let dim = match dim {
            Some(d) if !d.is_none() => Some(crate::convert::int64_arg(d)?),
            _ => None,
        };
        self.reduce_extreme(py, dim, keepdim, max)
    }

    fn reduce_extreme(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool, max: bool) -> PyResult<Py<PyAny>> {
        match dim {
            None => Ok(wrap(py, reduce::extreme_all(&self.t, max).py()?)?.into_any()),
            Some(d) => {
                let (v, i) = reduce::extreme_dim(&self.t, d, keepdim, max).py()?;
                python::return_types(py, if max { "max" } else { "min" }, wrap(py, v)?, wrap(py, i)?)
            }
        }
    }
}

#[rustgrad_macros::guard]
#[pymethods]
impl PyTensor {
    /// The legacy constructor: `Tensor([1, 2])` copies data as float32, `Tensor(2, 3)` makes
    /// an uninitialised (here: zero) tensor of that shape.
    #[new]
    #[pyo3(signature = (*args))]
    fn new(py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<Self> {
        if args.is_empty() {
            return Ok(PyTensor::new_unbound(creation::zeros(&[0], rustgrad_core::dtype::default_float())));
        }
        let first = args.get_item(0)?;
        if args.len() == 1 && !first.is_instance_of::<pyo3::types::PyInt>() {
            if let Ok(t) = first.cast::<PyTensor>() {
                return Ok(PyTensor::new_unbound(t.get().t.detach()));
            }
            let t = python::call(py, "_legacy_tensor", (first,))?;
            return Ok(PyTensor::new_unbound(t.cast::<PyTensor>()?.get().t.detach()));
        }
        let shape = crate::convert::shape_arg(args)?;
        Ok(PyTensor::new_unbound(creation::zeros(&shape, rustgrad_core::dtype::default_float())))
    }

    // ----- attributes -----

    /// The same values without autograd history (a detached tensor sharing storage).
    ///
    /// Assigning ``x.data = y`` swaps in ``y``'s values and shape while keeping ``x``'s identity.
    ///
    /// https://pytorch.org/docs/stable/tensors.html#torch.Tensor.data
    #[getter]
    fn get_data(&self, py: Python<'_>) -> R {
        wrap(py, self.t.variable_data())
    }
    #[setter]
    fn set_data(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        self.t.set_data(&tensor_arg(other)?).py()
    }
    /// The gradient accumulated by ``backward()`` for this tensor, or None.
    ///
    /// Filled for leaves that require grad and for tensors that called ``retain_grad()``; assignable.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.grad.html
    #[getter]
    fn get_grad(&self, py: Python<'_>) -> PyResult<Option<Py<PyTensor>>> {
        if !self.t.is_leaf() && !self.t.retains_grad() {
            python::warn_non_leaf_grad(py)?;
        }
        wrap_opt(py, self.t.grad())
    }
    #[setter]
    fn set_grad(&self, grad: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let g = match grad {
            None => None,
            Some(g) if g.is_none() => None,
            Some(g) => match g.cast::<PyTensor>() {
                Ok(g) if g.get().t.same(&self.t) => {
                    return Err(PyRuntimeError::new_err("can't assign Variable as its own grad"))
                }
                Ok(g) => Some(g.get().t.clone()),
                Err(_) => {
                    return Err(PyTypeError::new_err(format!(
                        "assigned grad expected to be a Tensor or None but got grad of type {}",
                        crate::convert::type_name(g)
                    )))
                }
            },
        };
        self.t.set_grad(g).py()
    }
    /// The backward node that created this tensor (e.g. ``MulBackward0``), or None for a leaf.
    ///
    /// https://pytorch.org/docs/stable/tensors.html#torch.Tensor.grad_fn
    #[getter]
    fn grad_fn(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.t.check_view_history().py()?;
        self.t.grad_fn().map(|n| node_object(py, n)).transpose()
    }
    /// Whether autograd records operations on this tensor; settable on leaves.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.requires_grad.html
    #[getter]
    fn get_requires_grad(&self) -> bool {
        self.t.requires_grad()
    }
    #[setter]
    fn set_requires_grad(&self, flag: &Bound<'_, PyAny>) -> PyResult<()> {
        let flag = match flag.cast::<pyo3::types::PyBool>() {
            Ok(b) => b.is_true(),
            Err(_) => return Err(PyRuntimeError::new_err("requires_grad must be a bool")),
        };
        // The setter refuses any change on a non-leaf (`requires_grad_(True)` is allowed there).
        if flag && !self.t.is_leaf() {
            return Err(PyRuntimeError::new_err("you can only change requires_grad flags of leaf variables."));
        }
        // The attribute setter words the dtype error differently from `requires_grad_()`.
        match self.t.set_requires_grad(flag) {
            Err(rustgrad_core::Error::IntRequiresGrad) => {
                Err(PyRuntimeError::new_err("only Tensors of floating point and complex dtype can require gradients"))
            }
            other => other.py(),
        }
    }
    /// True when the tensor was not produced by a recorded operation (it has no ``grad_fn``).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.is_leaf.html
    #[getter]
    fn is_leaf(&self) -> PyResult<bool> {
        self.t.check_view_history().py()?;
        Ok(self.t.is_leaf())
    }
    /// True when ``retain_grad()`` was called on this non-leaf tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.retains_grad.html
    #[getter]
    fn retains_grad(&self) -> bool {
        self.t.retains_grad()
    }
    /// The element type (``rustgrad.float32``, ``rustgrad.int64``, ...).
    ///
    /// https://pytorch.org/docs/stable/tensors.html#torch.Tensor.dtype
    #[getter]
    fn dtype(&self, py: Python<'_>) -> Py<crate::convert::PyDType> {
        dtype_object(py, self.t.dtype())
    }
    /// The size of every dimension, as a ``rustgrad.Size`` (a tuple of ints).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.shape.html
    #[getter]
    fn shape(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        python::size(py, &self.t.shape())
    }
    /// The device holding the data: always ``device('cpu')`` here.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.device.html
    #[getter]
    fn device(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        python::cpu_device(py)
    }
    /// Whether the tensor is on a CUDA device: always False here.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.is_cuda.html
    #[getter]
    fn is_cuda(&self) -> bool {
        false
    }
    /// The number of dimensions.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.ndim.html
    #[getter]
    fn ndim(&self) -> usize {
        self.t.ndim()
    }
    #[getter]
    fn _version(&self) -> PyResult<u64> {
        if self.t.is_inference() {
            return Err(PyRuntimeError::new_err("Inference tensors do not track version counter."));
        }
        Ok(self.t.version())
    }
    /// The tensor with its dimensions reversed (the transpose of a matrix); a view.
    ///
    /// https://pytorch.org/docs/stable/tensors.html#torch.Tensor.T
    #[getter(T)]
    fn get_t(&self, py: Python<'_>) -> R {
        let nd = self.t.ndim() as i64;
        let dims: Vec<i64> = (0..nd).rev().collect();
        wrap(py, view::permute(&self.t, &dims).py()?)
    }
    /// The last two dimensions swapped (a batch of transposed matrices); a view.
    ///
    /// https://pytorch.org/docs/stable/tensors.html#torch.Tensor.mT
    #[getter]
    #[allow(non_snake_case)]
    fn mT(&self, py: Python<'_>) -> R {
        let nd = self.t.ndim();
        if nd == 1 {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "tensor.mT is only supported on matrices or batches of matrices. Got 1-D tensor.",
            ));
        }
        if nd == 0 {
            return wrap(py, view::alias_of(&self.t).py()?);
        }
        wrap(py, view::transpose(&self.t, -2, -1).py()?)
    }

    /// The shape as a ``Size``, or the size of dimension ``dim`` as an int.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.size.html
    #[pyo3(signature = (dim=None))]
    fn size(&self, py: Python<'_>, dim: Option<i64>) -> PyResult<Py<PyAny>> {
        let shape = self.t.shape();
        match dim {
            None => python::size(py, &shape),
            Some(d) => {
                let i = rustgrad_core::shape::wrap_dim(d, shape.len()).py()?;
                Ok(shape.get(i).copied().unwrap_or(1).into_pyobject(py)?.into_any().unbind())
            }
        }
    }
    /// The number of dimensions.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.dim.html
    fn dim(&self) -> usize {
        self.t.ndim()
    }
    /// The number of dimensions (alias of ``dim()``).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.ndimension.html
    fn ndimension(&self) -> usize {
        self.t.ndim()
    }
    /// The number of elements.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.numel.html
    fn numel(&self) -> usize {
        self.t.numel()
    }
    /// The number of elements (alias of ``numel()``).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.nelement.html
    fn nelement(&self) -> usize {
        self.t.numel()
    }
    /// The size of one element in bytes.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.element_size.html
    fn element_size(&self) -> usize {
        self.t.dtype().size()
    }
    /// Whether the dtype is a floating-point type.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.is_floating_point.html
    fn is_floating_point(&self) -> bool {
        self.t.dtype().is_float()
    }
    /// Whether the elements sit in memory in row-major order without gaps.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.is_contiguous.html
    fn is_contiguous(&self) -> bool {
        self.t.data().is_contiguous()
    }
    /// The step in elements between neighbours along each dimension (or along ``dim``).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.stride.html
    fn stride(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(PyTuple::new(py, self.t.data().strides.iter())?.into_any().unbind())
    }
    /// The index of the first element inside the underlying storage.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.storage_offset.html
    fn storage_offset(&self) -> usize {
        self.t.data().offset
    }
    /// The memory address of the first element.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.data_ptr.html
    fn data_ptr(&self) -> usize {
        let d = self.t.data();
        d.storage.as_ptr() as usize + d.offset * d.dtype().size()
    }
    /// The value of a one-element tensor as a Python number (float, int or bool).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.item.html
    fn item(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.item_object(py)
    }
    /// The values as (nested) Python lists of numbers; a 0-d tensor gives a number.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.tolist.html
    fn tolist(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let data = self.t.data();
        // numpy has no bfloat16; float32 holds each value exactly.
        let data = if data.dtype() == DType::BF16 { rustgrad_core::kernels::cast(&data, DType::F32) } else { data };
        let arr = to_numpy(py, &data)?;
        Ok(arr.call_method0("tolist")?.unbind())
    }
    /// numpy ufuncs on tensors give tensors (`np.sin(t)`), as in PyTorch.
    #[pyo3(signature = (array, context=None, return_scalar=false))]
    fn __array_wrap__(
        &self,
        py: Python<'_>,
        array: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
        return_scalar: bool,
    ) -> PyResult<Py<PyAny>> {
        let _ = (context, return_scalar);
        let array = py.import("numpy")?.call_method1("ascontiguousarray", (array,))?;
        Ok(wrap(py, crate::convert::from_numpy(&array)?)?.into_any())
    }
    /// numpy defers binary operators to the tensor (`np.float64(2) * t` is a Tensor).
    #[classattr]
    fn __array_priority__() -> i64 {
        1000
    }
    /// A numpy array sharing memory with this tensor.
    ///
    /// Refuses tensors that require grad unless ``force=True`` (which detaches and may copy).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.numpy.html
    #[pyo3(signature = (*, force=false))]
    fn numpy(&self, py: Python<'_>, force: bool) -> PyResult<Py<PyAny>> {
        // Allowed under no_grad, as in PyTorch (nothing can be recorded from the array).
        if !force && rustgrad_core::grad_mode::is_grad_enabled() && self.t.requires_grad() {
            return Err(crate::errors::to_py(rustgrad_core::Error::NumpyRequiresGrad));
        }
        Ok(to_numpy(py, &self.t.data())?.unbind())
    }
    #[pyo3(signature = (dtype=None, copy=None))]
    fn __array__(&self, py: Python<'_>, dtype: Option<&Bound<'_, PyAny>>, copy: Option<bool>) -> PyResult<Py<PyAny>> {
        let _ = copy;
        if rustgrad_core::grad_mode::is_grad_enabled() && self.t.requires_grad() {
            return Err(crate::errors::to_py(rustgrad_core::Error::NumpyRequiresGrad));
        }
        let arr = to_numpy(py, &self.t.data())?;
        match dtype {
            Some(d) if !d.is_none() => Ok(arr.call_method1("astype", (d,))?.unbind()),
            _ => Ok(arr.unbind()),
        }
    }
    /// A new tensor sharing storage with this one but cut from the autograd graph.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.detach.html
    fn detach(&self, py: Python<'_>) -> R {
        wrap(py, self.t.detach_noting_origin())
    }
    /// How this tensor lost its history: `(kind, site)` with kind one of "normal",
    /// "no_grad", "inference", "detach", "data" (for `autograd.explain`).
    fn _origin(&self) -> (&'static str, Option<String>) {
        use rustgrad_core::tensor::Origin;
        match self.t.origin() {
            Origin::Normal => ("normal", None),
            Origin::NotRecorded { inference, site } => {
                (if inference { "inference" } else { "no_grad" }, site.map(|s| s.to_string()))
            }
            Origin::Detached { data, site } => (if data { "data" } else { "detach" }, site.map(|s| s.to_string())),
        }
    }
    /// Cuts this tensor from the graph in place: it becomes a leaf that does not require grad.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.detach_.html
    fn detach_(slf: &Bound<'_, Self>) -> PyResult<Py<PyTensor>> {
        let t = &slf.get().t;
        // Autograd's part of detach_ does not run in inference mode, nor on inference tensors
        // (they have no autograd state): the tensor keeps its flag, as in PyTorch.
        if rustgrad_core::grad_mode::is_inference_mode_enabled() || t.is_inference() {
            return Ok(slf.clone().unbind());
        }
        if t.view_base().is_some() {
            return Err(PyRuntimeError::new_err(
                "Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel (DDP) for training, and gradient_as_bucket_view is set as True, gradients are views of DDP buckets, and hence detach_() cannot be called on these gradients. To fix this error, please refer to the Optimizer.zero_grad() function in torch/optim/optimizer.py as the solution.",
            ));
        }
        {
            let mut g = t.lock();
            g.grad_fn = None;
            g.requires_grad = false;
        }
        Ok(slf.clone().unbind())
    }
    /// Sets ``requires_grad`` in place (default True) and returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.requires_grad_.html
    #[pyo3(signature = (requires_grad=true))]
    fn requires_grad_(slf: &Bound<'_, Self>, requires_grad: bool) -> PyResult<Py<PyTensor>> {
        slf.get().t.set_requires_grad(requires_grad).py()?;
        Ok(slf.clone().unbind())
    }
    /// Asks ``backward()`` to fill ``.grad`` for this non-leaf tensor too.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.retain_grad.html
    fn retain_grad(&self) -> PyResult<()> {
        self.t.retain_grad().py()
    }
    /// Registers `hook(grad) -> Tensor | None`, called with the gradient of this tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.register_hook.html
    fn register_hook(&self, py: Python<'_>, hook: Py<PyAny>) -> PyResult<Py<PyAny>> {
        if !self.t.requires_grad() {
            return Err(PyRuntimeError::new_err("cannot register a hook on a tensor that doesn't require gradient"));
        }
        let id = self.t.register_hook(make_hook(hook));
        let target = crate::node::HookTarget::Tensor(self.t.downgrade());
        Ok(Py::new(py, crate::node::PyHookHandle { target, id })?.into_any())
    }
    /// Registers `hook(tensor)`, called after a gradient was accumulated into this leaf's `.grad`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.register_post_accumulate_grad_hook.html
    fn register_post_accumulate_grad_hook(slf: &Bound<'_, Self>, hook: Py<PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let (hook, addr) = crate::node::own_for_gc(hook);
        let call: rustgrad_core::tensor::PostAccumulateHook = Hook::owning(addr, move |leaf: &Tensor| {
            Python::attach(|py| -> PyResult<()> {
                hook.call1(py, (wrap(py, leaf.clone())?,))?;
                Ok(())
            })
            .map_err(from_py)
        });
        let id = slf.get().t.register_post_accumulate_hook(call).py()?;
        let target = crate::node::HookTarget::PostAccumulate(slf.get().t.downgrade());
        Ok(Py::new(py, crate::node::PyHookHandle { target, id })?.into_any())
    }
    #[getter]
    fn _base(&self, py: Python<'_>) -> PyResult<Option<Py<PyTensor>>> {
        wrap_opt(py, self.t.view_base())
    }
    fn _is_view(&self) -> bool {
        self.t.view_base().is_some()
    }
    /// Whether the tensor was created in inference mode.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.is_inference.html
    fn is_inference(&self) -> bool {
        self.t.is_inference()
    }
    /// Computes the gradient of this tensor with respect to the graph's leaves.
    ///
    /// gradient: the upstream gradient (needed unless the tensor has one element);
    /// retain_graph: keep the graph for another backward (defaults to create_graph);
    /// create_graph: record the backward so higher-order gradients can be taken;
    /// inputs: accumulate only into these tensors. Gradients add into ``.grad``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.backward.html
    #[pyo3(signature = (gradient=None, retain_graph=None, create_graph=None, inputs=None))]
    fn backward(
        &self,
        py: Python<'_>,
        gradient: Option<&Bound<'_, PyAny>>,
        retain_graph: Option<&Bound<'_, PyAny>>,
        create_graph: Option<&Bound<'_, PyAny>>,
        inputs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let outputs = [self.t.clone()];
        let (grads, retain_graph, create_graph) =
            crate::functions::output_grads(&outputs, gradient, retain_graph, create_graph)?;
        let inputs = match inputs {
            Some(i) if !i.is_none() => Some(crate::functions::tensor_list(i)?),
            _ => None,
        };
        if let Some(i) = &inputs {
            if i.is_empty() {
                return Err(PyRuntimeError::new_err("'inputs' argument to backward() cannot be empty."));
            }
        }
        let cycles = gil::without_gil(py, move || {
            engine::backward_reporting_cycles(&outputs, &grads, retain_graph, create_graph, inputs.as_deref())
        })
        .py()?;
        crate::functions::warn_grad_cycles(py, cycles)
    }

    // ----- in-place -----

    /// Fills the tensor with zeros in place; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.zero_.html
    fn zero_(slf: &Bound<'_, Self>) -> PyResult<Py<PyTensor>> {
        in_place_reading(&slf.get().t, Reads::FILL, "zero_", fill::zeroed)?;
        Ok(slf.clone().unbind())
    }
    /// Fills the tensor with a scalar value in place; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.fill_.html
    fn fill_(slf: &Bound<'_, Self>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
        if let Ok(v) = value.cast::<PyTensor>() {
            let v = v.get().t.clone();
            in_place(&slf.get().t, "fill_", |t| fill::filled_with_tensor(t, &v))?;
            return Ok(slf.clone().unbind());
        }
        let v = operand(value)?.item_f64().py()?;
        if value.cast::<PyTensor>().is_err() {
            // A Python number must fit the dtype; a tensor's value is converted (PyTorch).
            rustgrad_core::dtype::check_fits(v, slf.get().t.dtype()).py()?;
        }
        in_place_reading(&slf.get().t, Reads::FILL, "fill_", |t| fill::filled(t, v))?;
        Ok(slf.clone().unbind())
    }
    /// Copies the values of ``src`` (broadcast, cast to this dtype) into this tensor; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.copy_.html
    #[pyo3(signature = (src, non_blocking=false))]
    fn copy_(slf: &Bound<'_, Self>, src: &Bound<'_, PyAny>, non_blocking: bool) -> PyResult<Py<PyTensor>> {
        let _ = non_blocking;
        let s = operand(src)?;
        in_place_reading(&slf.get().t, Reads::operands(&[&s]), "copy_", |t| fill::copied(t, &s))?;
        Ok(slf.clone().unbind())
    }
    /// In-place ``add``: ``self += alpha * other``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.add_.html
    #[pyo3(signature = (other, alpha=1.0))]
    fn add_(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>, alpha: f64) -> PyResult<Py<PyTensor>> {
        arith_in_place(&slf.get().t, &operand_beside(other, &slf.get().t, false)?, Binary::Add, alpha, "add_")?;
        Ok(slf.clone().unbind())
    }
    /// In-place ``sub``: ``self -= alpha * other``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sub_.html
    #[pyo3(signature = (other, alpha=1.0))]
    fn sub_(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>, alpha: f64) -> PyResult<Py<PyTensor>> {
        arith_in_place(&slf.get().t, &operand_beside(other, &slf.get().t, false)?, Binary::Sub, alpha, "sub_")?;
        Ok(slf.clone().unbind())
    }
    /// In-place ``mul``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.mul_.html
    fn mul_(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
        arith_in_place(&slf.get().t, &operand_beside(other, &slf.get().t, false)?, Binary::Mul, 1.0, "mul_")?;
        Ok(slf.clone().unbind())
    }
    /// In-place ``div``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.div_.html
    fn div_(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
        arith_in_place(&slf.get().t, &operand_beside(other, &slf.get().t, true)?, Binary::Div, 1.0, "div_")?;
        Ok(slf.clone().unbind())
    }
    /// In-place ``pow``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.pow_.html
    fn pow_(slf: &Bound<'_, Self>, e: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
        if e.cast::<PyTensor>().is_err() && crate::convert::scalar_arg(e)?.is_none() {
            return Err(crate::convert::tensor_or_number_error("pow_", "exponent", e));
        }
        let exponent = e.cast::<PyTensor>().ok().map(|t| t.get().t.clone());
        let exponent = exponent.as_ref().map(|t| [t]);
        let reads = exponent.as_ref().map_or(Reads::TARGET, |t| Reads::operands(t));
        in_place_reading(&slf.get().t, reads, "pow_", |src| pow_any(src, e).map_err(from_py))?;
        Ok(slf.clone().unbind())
    }
    fn __iadd__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        arith_in_place(&self.t, &operand_beside(other, &self.t, false)?, Binary::Add, 1.0, "__iadd__")
    }
    fn __isub__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        arith_in_place(&self.t, &operand_beside(other, &self.t, false)?, Binary::Sub, 1.0, "__isub__")
    }
    fn __imul__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        arith_in_place(&self.t, &operand_beside(other, &self.t, false)?, Binary::Mul, 1.0, "__imul__")
    }
    fn __itruediv__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        arith_in_place(&self.t, &operand_beside(other, &self.t, true)?, Binary::Div, 1.0, "__itruediv__")
    }
    /// `x **= e` writes into `x` (views, `.data` and aliases see it), as `pow_` does.
    fn __ipow__(&self, e: &Bound<'_, PyAny>, modulo: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let _ = modulo;
        if crate::convert::scalar_arg(e)?.is_none() && e.cast::<PyTensor>().is_err() {
            return Err(PyTypeError::new_err(format!(
                "unsupported operand type(s) for **=: 'Tensor' and '{}'",
                crate::convert::type_name(e)
            )));
        }
        let exponent = e.cast::<PyTensor>().ok().map(|t| t.get().t.clone());
        let exponent = exponent.as_ref().map(|t| [t]);
        let reads = exponent.as_ref().map_or(Reads::TARGET, |t| Reads::operands(t));
        in_place_reading(&self.t, reads, "__ipow__", |src| pow_any(src, e).map_err(from_py))
    }

    // ----- operators -----

    fn __add__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        dunder(py, &self.t, other, false, |o| (arith::add)(&self.t, o))
    }
    /// `c + x` is `x.add(c)` in PyTorch: the tensor is the first edge of the node.
    fn __radd__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        dunder(py, &self.t, other, false, |o| (arith::add)(&self.t, o))
    }
    fn __sub__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        dunder(py, &self.t, other, false, |o| (arith::sub)(&self.t, o))
    }
    fn __rsub__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match try_operand_beside(other, &self.t, false)? {
            Some(o) if o.is_wrapped_number() => Ok(wrap(py, arith::rsub_scalar(&self.t, &o, 1.0).py()?)?.into_any()),
            Some(o) => Ok(wrap(py, arith::sub(&o, &self.t).py()?)?.into_any()),
            None => Ok(py.NotImplemented()),
        }
    }
    fn __mul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        dunder(py, &self.t, other, false, |o| (arith::mul)(&self.t, o))
    }
    /// `c * x` is `x.mul(c)` in PyTorch: the tensor is the first edge of the node.
    fn __rmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        dunder(py, &self.t, other, false, |o| (arith::mul)(&self.t, o))
    }
    fn __truediv__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        dunder(py, &self.t, other, true, |o| (arith::div)(&self.t, o))
    }
    fn __rtruediv__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        // PyTorch: `c / x` is `x.reciprocal() * c`
        match try_operand_beside(other, &self.t, true)? {
            Some(o) => Ok(wrap(py, arith::mul(&arith::reciprocal(&self.t).py()?, &o).py()?)?.into_any()),
            None => Ok(py.NotImplemented()),
        }
    }
    /// `@` takes tensors only (a number gives Python's TypeError, as in PyTorch).
    fn __matmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Ok(o) = other.cast::<PyTensor>() else {
            return Ok(py.NotImplemented());
        };
        let (mut a, mut b) = (self.t.clone(), o.get().t.clone());
        autocast::lower_all(&mut [&mut a, &mut b]).py()?;
        Ok(wrap(py, linalg::matmul(&a, &b).py()?)?.into_any())
    }
    fn __rmatmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Ok(o) = other.cast::<PyTensor>() else {
            return Ok(py.NotImplemented());
        };
        let (mut a, mut b) = (o.get().t.clone(), self.t.clone());
        autocast::lower_all(&mut [&mut a, &mut b]).py()?;
        Ok(wrap(py, linalg::matmul(&a, &b).py()?)?.into_any())
    }
    fn __pow__(&self, py: Python<'_>, e: &Bound<'_, PyAny>, modulo: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let _ = modulo;
        if crate::convert::scalar_arg(e)?.is_none() && e.cast::<PyTensor>().is_err() {
            return Ok(py.NotImplemented());
        }
        Ok(wrap(py, pow_any(&self.t, e)?)?.into_any())
    }
    fn __rpow__(
        &self,
        py: Python<'_>,
        base: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let _ = modulo;
        if let Some(v) = uint64_int(base) {
            // A uint64 base (note [uint64 operands]) is read in the exponent's dtype.
            let s = match self.t.dtype() {
                DType::Bool => return Err(crate::convert::uint64_promotion_error("Bool", false)),
                d if d.is_float() => rustgrad_core::Scalar::Float(v as f64),
                _ => rustgrad_core::Scalar::Int(v as i64),
            };
            return Ok(wrap(py, pow::scalar_pow(s, &self.t).py()?)?.into_any());
        }
        match crate::convert::scalar_arg(base)? {
            Some(s) => Ok(wrap(py, pow::scalar_pow(s, &self.t).py()?)?.into_any()),
            None => Ok(py.NotImplemented()),
        }
    }
    fn __neg__(&self, py: Python<'_>) -> R {
        wrap(py, arith::neg(&self.t).py()?)
    }
    fn __pos__(slf: &Bound<'_, Self>) -> Py<PyTensor> {
        slf.clone().unbind()
    }
    fn __abs__(&self, py: Python<'_>) -> R {
        wrap(py, unary::abs(&self.t).py()?)
    }
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        dunder(py, &self.t, other, false, |o| (cmp(Compare::Eq))(&self.t, o))
    }
    fn __ne__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        dunder(py, &self.t, other, false, |o| (cmp(Compare::Ne))(&self.t, o))
    }
    fn __lt__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        dunder(py, &self.t, other, false, |o| (cmp(Compare::Lt))(&self.t, o))
    }
    fn __le__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        dunder(py, &self.t, other, false, |o| (cmp(Compare::Le))(&self.t, o))
    }
    fn __gt__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        dunder(py, &self.t, other, false, |o| (cmp(Compare::Gt))(&self.t, o))
    }
    fn __ge__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        dunder(py, &self.t, other, false, |o| (cmp(Compare::Ge))(&self.t, o))
    }
    fn __hash__(slf: &Bound<'_, Self>) -> isize {
        slf.as_ptr() as isize
    }
    fn __bool__(&self) -> PyResult<bool> {
        let n = self.t.numel();
        if n != 1 {
            return Err(PyRuntimeError::new_err(if n == 0 {
                "Boolean value of Tensor with no values is ambiguous".to_string()
            } else {
                "Boolean value of Tensor with more than one value is ambiguous".to_string()
            }));
        }
        Ok(self.t.item_f64().py()? != 0.0)
    }
    fn __float__(&self, py: Python<'_>) -> PyResult<f64> {
        self.one_element()?;
        self.item_object(py)?.bind(py).extract::<f64>()
    }
    /// `int(t)`: Python's `int()` of the element (so inf raises OverflowError and NaN
    /// ValueError, and large floats convert exactly, as in PyTorch).
    fn __int__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.one_element()?;
        let item = self.item_object(py)?;
        Ok(py.get_type::<pyo3::types::PyInt>().call1((item,))?.unbind())
    }
    fn __complex__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.one_element()?;
        let item = self.item_object(py)?;
        Ok(py.get_type::<pyo3::types::PyComplex>().call1((item,))?.unbind())
    }
    /// `operator.index(t)`: a one-element integer (or bool) tensor.
    fn __index__(&self) -> PyResult<i64> {
        if self.t.dtype().is_float() || self.t.numel() != 1 {
            return Err(PyTypeError::new_err("only integer tensors of a single element can be converted to an index"));
        }
        Ok(self.t.item_f64().py()? as i64)
    }
    fn __len__(&self) -> PyResult<usize> {
        self.t.shape().first().copied().ok_or_else(|| PyTypeError::new_err("len() of a 0-d tensor"))
    }
    /// Iterates over the first dim (the rows come from `unbind(0)`); a 0-d tensor raises.
    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.t.ndim() == 0 {
            return Err(PyTypeError::new_err("iteration over a 0-d tensor"));
        }
        let rows = rustgrad_core::ops::join::unbind(&self.t, 0).py()?;
        let list = tensors_to_list(py, rows.into_iter().map(Some).collect())?;
        Ok(list.bind(py).try_iter()?.into_any().unbind())
    }
    /// `x in t`: whether any element equals `x` (a tensor or a number).
    fn __contains__(&self, element: &Bound<'_, PyAny>) -> PyResult<bool> {
        let other = match element.cast::<PyTensor>() {
            Ok(e) => e.get().t.clone(),
            Err(_) => match crate::convert::scalar_arg(element)? {
                Some(s) => s.to_tensor(),
                None => {
                    return Err(PyRuntimeError::new_err(format!(
                        "Tensor.__contains__ only supports Tensor or scalar, but you passed in a {}.",
                        element.get_type().str()?
                    )))
                }
            },
        };
        let eq = compare::compare(&other.detach(), &self.t.detach(), Compare::Eq).py()?;
        Ok(reduce::sum(&eq, None, false, Some(DType::I64)).py()?.item_f64().py()? > 0.0)
    }
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> R {
        let key = crate::tensor_ops::parse_index_for(&self.t, key, true)?;
        let mut out = match key.advanced {
            Some(indices) => rustgrad_core::ops::gather::index(&key.view, &indices).py()?,
            None => key.view,
        };
        if out.same(&self.t) {
            out = view::alias_of(&self.t).py()?;
        }
        wrap(py, out)
    }
    /// Index assignment: `copy_` into the view a basic index makes (`x[0] = 1`,
    /// `x[:, 1:] = y`: `CopySlices` in the graph, as in PyTorch), `index_put_` for tensor
    /// indices and masks.
    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut v = crate::tensor_ops::setitem_value(&self.t, value)?;
        let key = crate::tensor_ops::parse_index(&self.t, key)?;
        // A 0-d value fills (`FillBackward3`); any other is copied, even with one element.
        let zero_dim_value = v.ndim() == 0;
        // As PyTorch does, the value loses its leading size-1 dims first (`x[0] = y[None]`).
        let leading_ones = v.shape().iter().take_while(|&&n| n == 1).count();
        if leading_ones > 0 {
            let rest: Vec<i64> = v.shape()[leading_ones..].iter().map(|&n| n as i64).collect();
            v = view::view(&v, &rest).py()?;
        }
        let number = value.cast::<PyTensor>().is_err();
        match key.advanced {
            // PyTorch's special cases for a number: one mask -> masked_fill, one index -> index_fill.
            Some(indices) if number && indices.iter().flatten().count() == 1 => {
                let (at, ix) =
                    indices.iter().enumerate().find_map(|(d, i)| i.as_ref().map(|t| (d, t))).expect("one index");
                let nd = key.view.ndim();
                if ix.dtype() == DType::Bool {
                    // The mask must match the dims it covers (IndexError), as for any mask index.
                    rustgrad_core::ops::gather::expand_masks(&key.view.shape(), &indices).py()?;
                    let mut mask_shape: Vec<i64> = vec![1; nd];
                    for (k, &m) in ix.shape().iter().enumerate() {
                        if let Some(slot) = mask_shape.get_mut(at + k) {
                            *slot = m as i64;
                        }
                    }
                    let mask = if ix.ndim() + at == nd && at == 0 {
                        ix.clone()
                    } else {
                        view::reshape(ix, &mask_shape).py()?
                    };
                    let fill = v.item_f64().py()?;
                    let reads = Reads { operands: &[&mask], disjoint: &[], internal: Internal::Warn("masked_fill_") };
                    in_place_reading(&key.view, reads, "__setitem__", |t| {
                        rustgrad_core::ops::elementwise::masked_fill_inplace(t, &mask, fill)
                    })
                } else {
                    // PyTorch reshapes an index of other than one dim into a new tensor first: it
                    // is then compared by memory, not identity (an empty one overlaps nothing).
                    let reshaped;
                    let ix = if ix.ndim() == 1 {
                        ix
                    } else {
                        reshaped = ix.detach();
                        &reshaped
                    };
                    let reads = Reads { operands: &[], disjoint: &[ix], internal: Internal::Warn("index_fill_") };
                    in_place_reading(&key.view, reads, "__setitem__", |t| {
                        rustgrad_core::ops::gather::index_fill(t, &indices, &v)
                    })
                }
            }
            Some(indices) => {
                let (operands, disjoint) = index_put_reads(&indices, &v);
                let reads = Reads { operands: &operands, disjoint: &disjoint, internal: Internal::Warn("index_put_") };
                in_place_reading(&key.view, reads, "__setitem__", |t| {
                    rustgrad_core::ops::gather::index_put(t, &indices, &v, false)
                })
            }
            None if number && !v.requires_grad() => {
                let fill = v.item_f64().py()?;
                // `x[i] = number` fills: the number must fit the dtype (PyTorch's `fill_`).
                if v.dtype().is_float() {
                    rustgrad_core::dtype::check_fits(fill, key.view.dtype()).py()?;
                }
                in_place_reading(&key.view, Reads::FILL, "__setitem__", |t| fill::filled(t, fill))
            }
            // `fill_` with a 0-d tensor: the value is read once, so it may overlap the target.
            None if zero_dim_value => in_place(&key.view, "__setitem__", |t| fill::assigned(t, &v)),
            None => in_place_reading(&key.view, Reads::operands(&[&v]), "__setitem__", |t| fill::copied(t, &v)),
        }
    }
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        python::call(slf.py(), "_tensor_repr", (slf,))?.extract()
    }
    fn __format__(slf: &Bound<'_, Self>, spec: &str) -> PyResult<String> {
        let t = &slf.get().t;
        if t.ndim() == 0 {
            let item = slf.get().item_object(slf.py())?;
            return item.bind(slf.py()).call_method1("__format__", (spec,))?.extract();
        }
        Self::__repr__(slf)
    }
    fn __reduce__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        python::call(py, "_tensor_reduce", (self.numpy_copy(py)?, self.t.requires_grad())).map(|b| b.unbind())
    }

    // ----- math -----

    /// ``self + alpha * other``, broadcasting; ``other`` may be a tensor or a number.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.add.html
    #[pyo3(signature = (other, alpha=1.0))]
    fn add(&self, py: Python<'_>, other: &Bound<'_, PyAny>, alpha: f64) -> R {
        wrap(py, arith::add_scaled(&self.t, &operand_beside(other, &self.t, false)?, alpha).py()?)
    }
    /// ``self - alpha * other``, broadcasting; ``other`` may be a tensor or a number.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sub.html
    #[pyo3(signature = (other, alpha=1.0))]
    fn sub(&self, py: Python<'_>, other: &Bound<'_, PyAny>, alpha: f64) -> R {
        wrap(py, arith::sub_scaled(&self.t, &operand_beside(other, &self.t, false)?, alpha).py()?)
    }
    /// Element-wise product with a tensor or number, broadcasting.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.mul.html
    fn mul(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, (arith::mul)(&self.t, &operand_beside(other, &self.t, false)?).py()?)
    }
    /// Element-wise true division by a tensor or number, broadcasting.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.div.html
    fn div(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, (arith::div)(&self.t, &operand_beside(other, &self.t, true)?).py()?)
    }
    /// Element-wise true division (alias of ``div`` without rounding).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.true_divide.html
    fn true_divide(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, (arith::div)(&self.t, &operand_beside(other, &self.t, true)?).py()?)
    }
    /// Element-wise ``self == other`` as a bool tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.eq.html
    fn eq(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, (cmp(Compare::Eq))(&self.t, &operand_beside(other, &self.t, false)?).py()?)
    }
    /// Element-wise ``self != other`` as a bool tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.ne.html
    fn ne(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, (cmp(Compare::Ne))(&self.t, &operand_beside(other, &self.t, false)?).py()?)
    }
    /// Element-wise ``self < other`` as a bool tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.lt.html
    fn lt(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, (cmp(Compare::Lt))(&self.t, &operand_beside(other, &self.t, false)?).py()?)
    }
    /// Element-wise ``self <= other`` as a bool tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.le.html
    fn le(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, (cmp(Compare::Le))(&self.t, &operand_beside(other, &self.t, false)?).py()?)
    }
    /// Element-wise ``self > other`` as a bool tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.gt.html
    fn gt(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, (cmp(Compare::Gt))(&self.t, &operand_beside(other, &self.t, false)?).py()?)
    }
    /// Element-wise ``self >= other`` as a bool tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.ge.html
    fn ge(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, (cmp(Compare::Ge))(&self.t, &operand_beside(other, &self.t, false)?).py()?)
    }
    /// Element-wise power with a tensor or number exponent, broadcasting.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.pow.html
    fn pow(&self, py: Python<'_>, exponent: &Bound<'_, PyAny>) -> R {
        if exponent.cast::<PyTensor>().is_err() && crate::convert::scalar_arg(exponent)?.is_none() {
            return Err(crate::convert::tensor_or_number_error("pow", "exponent", exponent));
        }
        wrap(py, pow_any(&self.t, exponent)?)
    }
    /// Element-wise negation -x; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.neg.html
    fn neg(&self, py: Python<'_>) -> R {
        wrap(py, arith::neg(&self.t).py()?)
    }
    /// Element-wise reciprocal 1 / x; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.reciprocal.html
    fn reciprocal(&self, py: Python<'_>) -> R {
        wrap(py, arith::reciprocal(&self.t).py()?)
    }
    /// Element-wise exponential e**x; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.exp.html
    fn exp(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Exp).py()?)
    }
    /// Element-wise natural logarithm; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.log.html
    fn log(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Log).py()?)
    }
    /// Element-wise square root; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sqrt.html
    fn sqrt(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Sqrt).py()?)
    }
    /// Element-wise absolute value |x|; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.abs.html
    fn abs(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Abs).py()?)
    }
    /// Element-wise sine; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sin.html
    fn sin(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Sin).py()?)
    }
    /// Element-wise cosine; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.cos.html
    fn cos(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Cos).py()?)
    }
    /// Element-wise hyperbolic tangent; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.tanh.html
    fn tanh(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Tanh).py()?)
    }
    /// Element-wise logistic sigmoid 1 / (1 + exp(-x)); returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sigmoid.html
    fn sigmoid(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Sigmoid).py()?)
    }
    /// Element-wise rectified linear unit max(x, 0); returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.relu.html
    fn relu(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Relu).py()?)
    }
    /// Element-wise sign (-1, 0 or 1); returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sign.html
    fn sign(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Sign).py()?)
    }

    /// Sum of all elements, or over ``dim`` (an int or a tuple), keeping reduced dims if ``keepdim``.
    ///
    /// ``dtype`` casts the input before summing.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sum.html
    #[pyo3(signature = (dim=ReduceDims(None), keepdim=false, *, dtype=None))]
    fn sum(&self, py: Python<'_>, dim: ReduceDims<0>, keepdim: bool, dtype: Option<&Bound<'_, PyAny>>) -> R {
        let dims = dim.0;
        let dtype = dtype_arg(dtype)?;
        let t = self.t.clone();
        let n = t.numel();
        wrap(py, gil::heavy(py, n, move || reduce::sum(&t, dims.as_deref(), keepdim, dtype)).py()?)
    }
    /// Mean of all elements, or over ``dim`` (an int or a tuple), keeping reduced dims if ``keepdim``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.mean.html
    #[pyo3(signature = (dim=ReduceDims(None), keepdim=false, *, dtype=None))]
    fn mean(&self, py: Python<'_>, dim: ReduceDims<1>, keepdim: bool, dtype: Option<&Bound<'_, PyAny>>) -> R {
        let dims = dim.0;
        wrap(py, reduce::mean(&self.t, dims.as_deref(), keepdim, dtype_arg(dtype)?).py()?)
    }
    /// The largest element; with ``dim``, a ``(values, indices)`` pair along that dim; with a
    /// tensor, the element-wise maximum (as ``torch.maximum``).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.max.html
    #[pyo3(signature = (dim=None, keepdim=None))]
    fn max(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.extreme_method(py, dim, keepdim, true)
    }
    /// The smallest element; with ``dim``, a ``(values, indices)`` pair along that dim; with a
    /// tensor, the element-wise minimum (as ``torch.minimum``).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.min.html
    #[pyo3(signature = (dim=None, keepdim=None))]
    fn min(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.extreme_method(py, dim, keepdim, false)
    }
    /// The p-norm (default 2, Frobenius) of all elements or along ``dim``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.norm.html
    #[pyo3(signature = (p=None, dim=None, keepdim=false))]
    fn norm(&self, py: Python<'_>, p: Option<&Bound<'_, PyAny>>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> R {
        let p = match p {
            None => 2.0,
            Some(p) if p.is_none() => 2.0,
            Some(p) => {
                if let Ok(s) = p.extract::<String>() {
                    match s.as_str() {
                        "fro" => 2.0,
                        _ => return Err(PyRuntimeError::new_err(format!("norm: unsupported p '{s}'"))),
                    }
                } else {
                    p.extract::<f64>()?
                }
            }
        };
        let dims = dims_arg(dim)?;
        wrap(py, reduce::norm(&self.t, p, dims.as_deref(), keepdim).py()?)
    }
    /// Dot product of two 1-d tensors.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.dot.html
    fn dot(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, linalg::dot(&self.t, &tensor_arg(other)?).py()?)
    }
    /// Matrix product with numpy's broadcasting rules for 1-d and batched operands (``@``).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.matmul.html
    fn matmul(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        let (mut a, mut b) = (self.t.clone(), tensor_arg(other)?);
        autocast::lower_all(&mut [&mut a, &mut b]).py()?;
        let work = a.numel() * b.shape().last().copied().unwrap_or(1);
        wrap(py, gil::heavy(py, work, move || linalg::matmul(&a, &b)).py()?)
    }
    /// Product of two 2-d matrices.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.mm.html
    fn mm(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        let (mut a, mut b) = (self.t.clone(), tensor_arg(other)?);
        autocast::lower_all(&mut [&mut a, &mut b]).py()?;
        let work = a.numel() * b.shape().last().copied().unwrap_or(1);
        wrap(py, gil::heavy(py, work, move || linalg::mm(&a, &b)).py()?)
    }
    /// Product of a matrix and a vector.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.mv.html
    fn mv(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, linalg::mv(&self.t, &tensor_arg(other)?).py()?)
    }
    /// Batched product of two 3-d tensors of matrices.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.bmm.html
    fn bmm(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        let (mut a, mut b) = (self.t.clone(), tensor_arg(other)?);
        autocast::lower_all(&mut [&mut a, &mut b]).py()?;
        wrap(py, linalg::bmm(&a, &b).py()?)
    }

    // ----- shape -----

    /// A view with a new shape sharing this tensor's memory (one size may be -1); with a dtype, the same bytes reinterpreted.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.view.html
    #[pyo3(signature = (*shape, dtype=None))]
    fn view(&self, py: Python<'_>, shape: &Bound<'_, PyTuple>, dtype: Option<&Bound<'_, PyAny>>) -> R {
        if let (true, Some(d)) = (shape.is_empty(), dtype) {
            let d = dtype_arg(Some(d))?
                .ok_or_else(|| PyTypeError::new_err("view(): argument 'dtype' must be torch.dtype, not NoneType"))?;
            return wrap(py, view::view_dtype(&self.t, d).py()?);
        }
        if shape.len() == 1 {
            if let Ok(Some(d)) = dtype_arg(Some(&shape.get_item(0)?)) {
                // Not differentiable in PyTorch: the result shares the values, not the history.
                return wrap(py, view::view_dtype(&self.t, d).py()?);
            }
        }
        wrap(py, view::view(&self.t, &sizes_arg(shape)?).py()?)
    }
    /// The values with a new shape (one size may be -1): a view when possible, else a copy.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.reshape.html
    #[pyo3(signature = (*shape))]
    fn reshape(&self, py: Python<'_>, shape: &Bound<'_, PyTuple>) -> R {
        wrap(py, view::reshape(&self.t, &sizes_arg(shape)?).py()?)
    }
    /// ``view`` to the shape of ``other``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.view_as.html
    fn view_as(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        let s: Vec<i64> = tensor_arg(other)?.shape().iter().map(|&v| v as i64).collect();
        wrap(py, view::view(&self.t, &s).py()?)
    }
    /// ``reshape`` to the shape of ``other``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.reshape_as.html
    fn reshape_as(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        let s: Vec<i64> = tensor_arg(other)?.shape().iter().map(|&v| v as i64).collect();
        wrap(py, view::reshape(&self.t, &s).py()?)
    }
    /// Swaps dimensions ``dim0`` and ``dim1``; a view.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.transpose.html
    fn transpose(&self, py: Python<'_>, dim0: i64, dim1: i64) -> R {
        wrap(py, view::transpose(&self.t, dim0, dim1).py()?)
    }
    /// ``transpose`` in place: this tensor's dimensions ``dim0`` and ``dim1`` swap; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.transpose_.html
    fn transpose_(slf: &Bound<'_, Self>, dim0: i64, dim1: i64) -> PyResult<Py<PyTensor>> {
        view_in_place(slf, |t| view::transpose_named(t, dim0, dim1, "TransposeBackward1"))
    }
    /// ``transpose`` under NumPy's name; a view.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.swapdims.html
    fn swapdims(&self, py: Python<'_>, dim0: i64, dim1: i64) -> R {
        wrap(py, view::transpose(&self.t, dim0, dim1).py()?)
    }
    /// ``transpose`` under NumPy's name; a view.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.swapaxes.html
    fn swapaxes(&self, py: Python<'_>, axis0: i64, axis1: i64) -> R {
        wrap(py, view::transpose(&self.t, axis0, axis1).py()?)
    }
    /// ``transpose_`` under NumPy's name; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.swapdims_.html
    fn swapdims_(slf: &Bound<'_, Self>, dim0: i64, dim1: i64) -> PyResult<Py<PyTensor>> {
        view_in_place(slf, |t| view::transpose_named(t, dim0, dim1, "TransposeBackward1"))
    }
    /// ``transpose_`` under NumPy's name; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.swapaxes_.html
    fn swapaxes_(slf: &Bound<'_, Self>, axis0: i64, axis1: i64) -> PyResult<Py<PyTensor>> {
        view_in_place(slf, |t| view::transpose_named(t, axis0, axis1, "TransposeBackward1"))
    }
    /// Transpose of a tensor of at most 2 dimensions; a view.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.t.html
    fn t(&self, py: Python<'_>) -> R {
        wrap(py, view::t(&self.t).py()?)
    }
    /// A view of this tensor's storage with the given sizes, strides and storage offset.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.as_strided.html
    #[pyo3(signature = (size, stride, storage_offset=None))]
    fn as_strided(&self, py: Python<'_>, size: Vec<i64>, stride: Vec<i64>, storage_offset: Option<i64>) -> R {
        let out =
            rustgrad_core::ops::strided::as_strided(&self.t, &size, &stride, storage_offset, "AsStridedBackward0");
        wrap(py, out.py()?)
    }
    /// ``as_strided`` in place: this tensor takes the given geometry; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.as_strided_.html
    #[pyo3(signature = (size, stride, storage_offset=None))]
    fn as_strided_(
        slf: &Bound<'_, Self>,
        size: Vec<i64>,
        stride: Vec<i64>,
        storage_offset: Option<i64>,
    ) -> PyResult<Py<PyTensor>> {
        view_in_place(slf, |t| {
            rustgrad_core::ops::strided::as_strided(t, &size, &stride, storage_offset, "AsStridedBackward1")
        })
    }
    /// ``t`` in place; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.t_.html
    fn t_(slf: &Bound<'_, Self>) -> PyResult<Py<PyTensor>> {
        view_in_place(slf, |t| view::t_named(t, "TBackward1"))
    }
    /// Reorders the dimensions as listed in ``dims``; a view.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.permute.html
    #[pyo3(signature = (*dims))]
    fn permute(&self, py: Python<'_>, dims: &Bound<'_, PyTuple>) -> R {
        wrap(py, view::permute(&self.t, &crate::convert::dims_varargs(dims)?).py()?)
    }
    /// Removes dimensions of size 1 (all of them, or only ``dim``); a view.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.squeeze.html
    #[pyo3(signature = (dim=SqueezeArg(None)))]
    fn squeeze(&self, py: Python<'_>, dim: SqueezeArg) -> R {
        let t = &self.t;
        let out = match SqueezeDims::of(py, dim)? {
            SqueezeDims::All => view::squeeze_dims(t, None, "SqueezeBackward0"),
            SqueezeDims::One(d) => view::squeeze_dims(t, Some(&[d]), "SqueezeBackward1"),
            SqueezeDims::Many(ds) => view::squeeze_dims(t, Some(&ds), "SqueezeBackward2"),
        };
        wrap(py, out.py()?)
    }
    /// ``squeeze`` in place: this tensor loses the size-1 dimensions; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.squeeze_.html
    #[pyo3(signature = (dim=SqueezeArg(None)))]
    fn squeeze_(slf: &Bound<'_, Self>, dim: SqueezeArg) -> PyResult<Py<PyTensor>> {
        let dims = SqueezeDims::of(slf.py(), dim)?;
        view_in_place(slf, |t| match &dims {
            SqueezeDims::All => view::squeeze_dims(t, None, "SqueezeBackward3"),
            SqueezeDims::One(d) => view::squeeze_dims(t, Some(&[*d]), "SqueezeBackward4"),
            SqueezeDims::Many(ds) => view::squeeze_dims(t, Some(ds), "SqueezeBackward5"),
        })
    }
    /// Inserts a dimension of size 1 at ``dim``; a view.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.unsqueeze.html
    fn unsqueeze(&self, py: Python<'_>, dim: i64) -> R {
        wrap(py, view::unsqueeze(&self.t, dim).py()?)
    }
    /// ``unsqueeze`` in place; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.unsqueeze_.html
    fn unsqueeze_(slf: &Bound<'_, Self>, dim: i64) -> PyResult<Py<PyTensor>> {
        view_in_place(slf, |t| view::unsqueeze_named(t, dim, "UnsqueezeBackward1"))
    }
    /// A broadcast view to a larger shape (-1 keeps a size) without copying.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.expand.html
    #[pyo3(signature = (*sizes))]
    fn expand(&self, py: Python<'_>, sizes: &Bound<'_, PyTuple>) -> R {
        wrap(py, view::expand(&self.t, &sizes_arg(sizes)?).py()?)
    }
    /// ``expand`` to the shape of ``other``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.expand_as.html
    fn expand_as(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        let s: Vec<i64> = tensor_arg(other)?.shape().iter().map(|&v| v as i64).collect();
        wrap(py, view::expand(&self.t, &s).py()?)
    }
    /// Merges dimensions ``start_dim`` through ``end_dim`` into one.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.flatten.html
    #[pyo3(signature = (start_dim=0, end_dim=-1))]
    fn flatten(&self, py: Python<'_>, start_dim: i64, end_dim: i64) -> R {
        let shape = self.t.shape();
        if shape.is_empty() {
            return wrap(py, view::reshape(&self.t, &[1]).py()?);
        }
        let s = rustgrad_core::shape::wrap_dim(start_dim, shape.len()).py()?;
        let e = rustgrad_core::shape::wrap_dim(end_dim, shape.len()).py()?;
        if s > e {
            return Err(PyRuntimeError::new_err("flatten() has invalid args: start_dim cannot come after end_dim"));
        }
        if s == e {
            return wrap(py, self.t.clone());
        }
        let mut new: Vec<i64> = shape[..s].iter().map(|&v| v as i64).collect();
        new.push(shape[s..=e].iter().product::<usize>() as i64);
        new.extend(shape[e + 1..].iter().map(|&v| v as i64));
        wrap(py, view::reshape(&self.t, &new).py()?)
    }
    /// A copy with its own memory; differentiable (gradients flow back to the original).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.clone.html
    #[pyo3(signature = (*, memory_format=None))]
    fn clone(&self, py: Python<'_>, memory_format: Option<&Bound<'_, PyAny>>) -> R {
        let _ = memory_format;
        wrap(py, view::clone(&self.t).py()?)
    }
    /// This tensor if already contiguous, otherwise a contiguous copy.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.contiguous.html
    #[pyo3(signature = (*, memory_format=None))]
    fn contiguous(&self, py: Python<'_>, memory_format: Option<&Bound<'_, PyAny>>) -> R {
        let _ = memory_format;
        wrap(py, view::contiguous(&self.t).py()?)
    }

    // ----- dtype -----

    /// `to(dtype)`, `to(device)`, `to(other)`, `to(device, dtype)`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.to.html
    #[pyo3(signature = (*args, **kwargs))]
    fn to(&self, py: Python<'_>, args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, pyo3::types::PyDict>>) -> R {
        // PyTorch's three overloads: (device, dtype, non_blocking, copy), (dtype, non_blocking,
        // copy) and (tensor, non_blocking, copy). As its parser, a bool or float given first
        // stands for its type (`x.to(True)` is `x.to(torch.bool)`), an int for a device index.
        let invalid = || to_invalid_combination(args, kwargs);
        let is_bool = |o: &Bound<'_, PyAny>| o.is_instance_of::<pyo3::types::PyBool>();
        let mut dtype: Option<DType> = None;
        let mut flags: Vec<bool> = Vec::new();
        // Whether the next positional may still be a dtype (after a device).
        let mut dtype_next = false;
        for (i, a) in args.iter().enumerate() {
            if i == 0 {
                if let Ok(Some(d)) = dtype_arg(Some(&a)) {
                    dtype = Some(d);
                } else if let Ok(t) = a.cast::<PyTensor>() {
                    dtype = Some(t.get().t.dtype());
                } else if is_bool(&a) {
                    dtype = Some(DType::Bool);
                } else if a.is_instance_of::<pyo3::types::PyFloat>() {
                    dtype = Some(DType::F64);
                } else if a.is_none()
                    || a.is_instance_of::<pyo3::types::PyString>()
                    || a.is_instance_of::<pyo3::types::PyInt>()
                    || crate::convert::type_name(&a) == "device"
                {
                    python::check_device(py, &a)?;
                    dtype_next = true;
                } else {
                    return Err(invalid());
                }
            } else if dtype_next && i == 1 && !is_bool(&a) {
                match dtype_arg(Some(&a)) {
                    Ok(d) => dtype = d,
                    Err(_) => return Err(invalid()),
                }
            } else if is_bool(&a) {
                flags.push(a.extract()?);
            } else {
                return Err(invalid());
            }
        }
        // Flags after the target: non_blocking, then copy.
        let mut copy = flags.get(1).copied().unwrap_or(false);
        if let Some(kw) = kwargs {
            for (k, v) in kw.iter() {
                let k: String = k.extract()?;
                match k.as_str() {
                    "dtype" => match dtype_arg(Some(&v)) {
                        Ok(Some(d)) => dtype = Some(d),
                        Ok(None) => {}
                        Err(_) => return Err(invalid()),
                    },
                    "device" => {
                        if v.cast::<PyTensor>().is_ok() || v.is_instance_of::<pyo3::types::PyFloat>() {
                            return Err(invalid());
                        }
                        python::check_device(py, &v)?;
                    }
                    "copy" | "non_blocking" if !is_bool(&v) => return Err(invalid()),
                    "copy" => copy = v.extract()?,
                    "non_blocking" | "memory_format" => {}
                    _ => return Err(invalid()),
                }
            }
        }
        match dtype {
            _ if copy => wrap(py, view::to_copy(&self.t, dtype.unwrap_or(self.t.dtype())).py()?),
            Some(d) => wrap(py, view::to_dtype(&self.t, d).py()?),
            None => wrap(py, self.t.clone()),
        }
    }
    /// This tensor as float32 (self if it already is).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.float.html
    fn float(&self, py: Python<'_>) -> R {
        wrap(py, view::to_dtype(&self.t, DType::F32).py()?)
    }
    /// This tensor as float64 (self if it already is).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.double.html
    fn double(&self, py: Python<'_>) -> R {
        wrap(py, view::to_dtype(&self.t, DType::F64).py()?)
    }
    /// This tensor as int64 (self if it already is).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.long.html
    fn long(&self, py: Python<'_>) -> R {
        wrap(py, view::to_dtype(&self.t, DType::I64).py()?)
    }
    /// This tensor as bool (self if it already is).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.bool.html
    fn bool(&self, py: Python<'_>) -> R {
        wrap(py, view::to_dtype(&self.t, DType::Bool).py()?)
    }
    /// This tensor as float16 (self if it already is).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.half.html
    fn half(&self, py: Python<'_>) -> R {
        wrap(py, view::to_dtype(&self.t, DType::F16).py()?)
    }
    /// This tensor as bfloat16 (self if it already is).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.bfloat16.html
    fn bfloat16(&self, py: Python<'_>) -> R {
        wrap(py, view::to_dtype(&self.t, DType::BF16).py()?)
    }
    /// This tensor as int32 (self if it already is).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.int.html
    fn int(&self, py: Python<'_>) -> R {
        wrap(py, view::to_dtype(&self.t, DType::I32).py()?)
    }
    /// This tensor as int16 (self if it already is).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.short.html
    fn short(&self, py: Python<'_>) -> R {
        wrap(py, view::to_dtype(&self.t, DType::I16).py()?)
    }
    /// This tensor as int8 (self if it already is).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.char.html
    fn char(&self, py: Python<'_>) -> R {
        wrap(py, view::to_dtype(&self.t, DType::I8).py()?)
    }
    /// This tensor as uint8 (self if it already is).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.byte.html
    fn byte(&self, py: Python<'_>) -> R {
        wrap(py, view::to_dtype(&self.t, DType::U8).py()?)
    }
    /// This tensor cast to the dtype of ``other``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.type_as.html
    fn type_as(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, view::to_dtype(&self.t, tensor_arg(other)?.dtype()).py()?)
    }
    /// This tensor (its data already lives on the CPU).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.cpu.html
    fn cpu(slf: &Bound<'_, Self>) -> Py<PyTensor> {
        slf.clone().unbind()
    }
}

/// Runs an in-place op and records which op wrote the values and where (for the in-place error).
/// Runs an in-place view op (`transpose_`, `squeeze_`, ...) on `slf` and returns `slf`.
fn view_in_place(
    slf: &Bound<'_, PyTensor>,
    view_of: impl Fn(&Tensor) -> rustgrad_core::Result<Tensor>,
) -> PyResult<Py<PyTensor>> {
    rustgrad_core::inplace::apply_view_inplace(&slf.get().t, view_of).py()?;
    Ok(slf.clone().unbind())
}

/// The `dim` of `squeeze`: omitted or None, one int, or a sequence of ints (PyTorch's three
/// overloads, each with its own node name).
enum SqueezeDims {
    All,
    One(i64),
    Many(Vec<i64>),
}

/// `squeeze`'s `dim` as given: omitted (`SqueezeArg(None)`, the signature's default) or any
/// object, `None` included (which PyTorch's parser refuses).
pub struct SqueezeArg(Option<Py<PyAny>>);

impl<'a, 'py> FromPyObject<'a, 'py> for SqueezeArg {
    type Error = PyErr;
    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(SqueezeArg(Some(obj.to_owned().unbind())))
    }
}

impl SqueezeDims {
    fn of(py: Python<'_>, dim: SqueezeArg) -> PyResult<SqueezeDims> {
        let Some(d) = dim.0 else {
            return Ok(SqueezeDims::All);
        };
        let d = d.bind(py);
        let integer_tensor = d.cast::<PyTensor>().is_ok_and(|t| {
            let t = &t.get().t;
            t.numel() == 1 && !t.dtype().is_float() && t.dtype() != DType::Bool
        });
        let is_tensor = d.cast::<PyTensor>().is_ok();
        let one_int =
            integer_tensor || (!is_tensor && !d.is_instance_of::<pyo3::types::PyBool>() && d.extract::<i64>().is_ok());
        if integer_tensor {
            let t = &d.cast::<PyTensor>()?.get().t;
            return Ok(SqueezeDims::One(t.item_f64().py()? as i64));
        }
        if one_int {
            return Ok(SqueezeDims::One(crate::convert::int64_arg(d)?));
        }
        if !is_tensor && !d.is_instance_of::<pyo3::types::PyString>() {
            if let Ok(many) = d.extract::<Vec<i64>>() {
                return Ok(SqueezeDims::Many(many));
            }
        }
        // PyTorch's argument parser: none of the three overloads takes this argument
        let detail = crate::convert::parser_detail_name(d);
        Err(PyTypeError::new_err(format!(
            "squeeze() received an invalid combination of arguments - got ({}), but expected one of:\n \
             * ()\n      didn't match because some of the arguments have invalid types: (!{detail}!)\n \
             * (int dim)\n      didn't match because some of the arguments have invalid types: (!{detail}!)\n \
             * (tuple of ints dim)\n      didn't match because some of the arguments have invalid types: (!{detail}!)\n",
            crate::convert::parser_type_name(d)
        )))
    }
}

fn in_place(t: &Tensor, op: &'static str, compute: impl Fn(&Tensor) -> rustgrad_core::Result<Tensor>) -> PyResult<()> {
    in_place_reading(t, Reads::TARGET, op, compute)
}

/// What `index_put_(indices, values)` (not accumulating) reads, as (operands, disjoint) for
/// [`Reads`]: PyTorch writes a one-element value through one bool mask as `masked_fill_`,
/// which only refuses a mask partially overlapping the target; otherwise neither the values
/// nor any index may share memory with the target.
pub fn index_put_reads<'a>(indices: &'a [Option<Tensor>], values: &'a Tensor) -> (Vec<&'a Tensor>, Vec<&'a Tensor>) {
    let mut defined = indices.iter().flatten();
    if let (Some(mask), None) = (defined.next(), defined.next()) {
        if mask.dtype() == DType::Bool && values.numel() == 1 {
            return (vec![mask], Vec::new());
        }
    }
    let mut disjoint = vec![values];
    disjoint.extend(indices.iter().flatten());
    (Vec::new(), disjoint)
}

/// [`in_place`] for an op that also reads `reads` (checked for memory overlap with `t`).
pub fn in_place_reading(
    t: &Tensor,
    reads: Reads<'_>,
    op: &'static str,
    compute: impl Fn(&Tensor) -> rustgrad_core::Result<Tensor>,
) -> PyResult<()> {
    apply_inplace_reading(t, reads, compute).py()?;
    t.data().counter().note_write(op, rustgrad_core::sites::capture());
    Ok(())
}

/// `t (op)= alpha * other` in place: straight into the storage outside the graph (see
/// [`fast_in_place`]), else through the recorded path.
fn arith_in_place(t: &Tensor, other: &Tensor, kind: Binary, alpha: f64, op: &'static str) -> PyResult<()> {
    if fast_in_place(t, other, kind, alpha, op)? {
        return Ok(());
    }
    in_place_reading(t, Reads::operands(&[other]), op, |t| match kind {
        Binary::Add => arith::add_scaled(t, other, alpha),
        Binary::Sub => arith::sub_scaled(t, other, alpha),
        Binary::Mul => arith::mul(t, other),
        _ => arith::div(t, other),
    })
}

/// In-place arithmetic outside the graph (an optimizer step under `no_grad`) written straight
/// into the target's storage; false when the general path must run (graph recording, inference
/// tensors, dtype promotion, layouts the kernel does not take).
fn fast_in_place(t: &Tensor, other: &Tensor, kind: Binary, alpha: f64, op: &'static str) -> PyResult<bool> {
    let recording = rustgrad_core::grad_mode::is_recording() && (t.requires_grad() || other.requires_grad());
    // Under forward AD the general path gives the target its new tangent.
    if recording || rustgrad_core::forward_ad::is_open() || t.is_inference() || arith::promote(t, other) != t.dtype() {
        return Ok(false);
    }
    let (data, od) = (t.data(), other.data());
    rustgrad_core::inplace::check_operand_overlap(&data, &od).py()?;
    // Bool subtraction and fractional alphas on integers are errors: the general path raises.
    let integral = !data.dtype().is_float() && !od.dtype().is_float();
    // So are alphas the dtype cannot hold.
    if (kind == Binary::Sub && (data.dtype() == DType::Bool || od.dtype() == DType::Bool))
        || (alpha.fract() != 0.0 && integral)
        || rustgrad_core::dtype::check_fits(alpha, data.dtype()).is_err()
    {
        return Ok(false);
    }
    if !rustgrad_core::kernels::binary_into(&data, &od, kind, alpha) {
        return Ok(false);
    }
    data.counter().note_write(op, rustgrad_core::sites::capture());
    Ok(true)
}

impl PyTensor {
    fn numpy_copy(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(to_numpy(py, &self.t.data())?.call_method0("copy")?.unbind())
    }
}

/// A core gradient hook that calls a Python callable (re-attaching the GIL). The replacement
/// it returns must be a tensor of the gradient's size and dtype (PyTorch's checks).
pub fn make_hook(hook: Py<PyAny>) -> rustgrad_core::graph::GradHook {
    let (hook, addr) = crate::node::own_for_gc(hook);
    Hook::owning(addr, move |g: &Tensor| {
        Python::attach(|py| -> PyResult<Option<Tensor>> {
            let arg = wrap(py, g.clone())?;
            let r = hook.call1(py, (arg,))?;
            let r = r.bind(py);
            if r.is_none() {
                return Ok(None);
            }
            let name = || hook.bind(py).getattr("__name__").map(|n| n.to_string()).unwrap_or_else(|_| "hook".into());
            let t = match r.cast::<PyTensor>() {
                Ok(t) => t.get().t.clone(),
                Err(_) => {
                    return Err(PyTypeError::new_err(format!(
                        "expected Variable, but hook returned '{}'",
                        r.get_type().name()?
                    )))
                }
            };
            if t.shape() != g.shape() {
                return Err(PyRuntimeError::new_err(format!("hook '{}' has changed the size of value", name())));
            }
            if t.dtype() != g.dtype() {
                return Err(PyRuntimeError::new_err(format!(
                    "hook '{}' has changed the type of value (was {} got {})",
                    name(),
                    g.dtype().legacy_name(),
                    t.dtype().legacy_name()
                )));
            }
            Ok(Some(t))
        })
        .map_err(from_py)
    })
}

/// `tolist` helper for lists of tensors.
pub fn tensors_to_list(py: Python<'_>, ts: Vec<Option<Tensor>>) -> PyResult<Py<PyList>> {
    let items: Vec<Py<PyAny>> = ts
        .into_iter()
        .map(|t| match t {
            Some(t) => wrap(py, t).map(|w| w.into_any()),
            None => Ok(py.None()),
        })
        .collect::<PyResult<_>>()?;
    Ok(PyList::new(py, items)?.unbind())
}

/// PyTorch's `TypeError` for arguments no overload of `Tensor.to` takes: the types it got
/// (positional, then keywords sorted by name) and the three signatures.
fn to_invalid_combination(args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, pyo3::types::PyDict>>) -> PyErr {
    let name = |o: &Bound<'_, PyAny>| crate::convert::type_name(o);
    let positional: Vec<String> = args.iter().map(|a| name(&a)).collect();
    let mut keywords: Vec<String> =
        kwargs.map(|kw| kw.iter().map(|(k, v)| format!("{}={}", k, name(&v))).collect()).unwrap_or_default();
    keywords.sort();
    let got = if positional.is_empty() {
        keywords.iter().map(|k| format!("{k}, ")).collect::<String>()
    } else {
        positional.into_iter().chain(keywords).collect::<Vec<_>>().join(", ")
    };
    let tail = "bool non_blocking = False, bool copy = False, *, torch.memory_format memory_format = None)";
    PyTypeError::new_err(format!(
        "to() received an invalid combination of arguments - got ({got}), but expected one of:\n \
         * (torch.device device = None, torch.dtype dtype = None, {tail}\n \
         * (torch.dtype dtype, {tail}\n \
         * (Tensor tensor, {tail}\n"
    ))
}
