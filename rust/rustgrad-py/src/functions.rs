//! Module-level functions: factories, autograd entry points, grad mode, diagnostics.

use crate::convert::{dtype_arg, factory_requires_grad, operand, tensor_arg};
use crate::errors::IntoPyResult;
use crate::gil;
use crate::tensor::{tensors_to_list, wrap, PyTensor};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use rustgrad_core::dtype::default_float;
use rustgrad_core::ops::compare;
use rustgrad_core::random::Generator;
use rustgrad_core::{creation, engine, grad_mode, graph, DType, Tensor};

type R = PyResult<Py<PyTensor>>;

/// A tensor or a sequence of tensors, as a list.
pub fn tensor_list(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Tensor>> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(vec![t.get().t.clone()]);
    }
    obj.try_iter()?.map(|item| tensor_arg(&item?)).collect()
}

/// What `autograd.grad` differentiates with respect to: tensors, or gradient edges.
enum GradInputs {
    Tensors(Vec<Tensor>),
    Edges(Vec<graph::Edge>),
}

/// The `inputs` of `autograd.grad`: a tensor or a sequence of tensors and `GradientEdge`s (given
/// as `(node, output_nr)` pairs by the Python layer); PyTorch's RuntimeError for anything else.
fn grad_inputs(obj: &Bound<'_, PyAny>) -> PyResult<GradInputs> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(GradInputs::Tensors(vec![t.get().t.clone()]));
    }
    // Each item: a tensor, or an edge.
    let mut items: Vec<Result<Tensor, graph::Edge>> = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        if let Ok(t) = item.cast::<PyTensor>() {
            items.push(Ok(t.get().t.clone()));
            continue;
        }
        let edge = item.cast::<PyTuple>().ok().filter(|t| t.len() >= 2).and_then(|pair| {
            let node = pair.get_item(0).ok()?.cast::<crate::node::PyNode>().ok()?.get().node().ok()?;
            let input_nr: u32 = pair.get_item(1).ok()?.extract().ok()?;
            Some(graph::Edge { node, input_nr })
        });
        match edge {
            Some(e) => items.push(Err(e)),
            None => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                    "all inputs have to be Tensors or GradientEdges, but got {}",
                    item.get_type().name()?
                )))
            }
        }
    }
    if items.iter().all(|i| i.is_ok()) {
        return Ok(GradInputs::Tensors(items.into_iter().flatten().collect()));
    }
    let edges = items
        .into_iter()
        .map(|item| match item {
            Err(edge) => Ok(edge),
            Ok(t) => t.gradient_edge().ok_or_else(|| {
                pyo3::exceptions::PyRuntimeError::new_err("One of the differentiated Tensors does not require grad")
            }),
        })
        .collect::<PyResult<_>>()?;
    Ok(GradInputs::Edges(edges))
}

/// The gradients given to `backward`/`grad` for `outputs`, checked in PyTorch's order: a
/// tensor, None, or a sequence of those (extra gradients are ignored, as PyTorch pairs them with
/// `zip`); shapes and implicit gradients first, then the flags `retain_graph`/`create_graph` (read
/// through `__index__`), then the count. Returns the gradients and the two flags.
pub fn output_grads(
    outputs: &[Tensor],
    grads: Option<&Bound<'_, PyAny>>,
    retain_graph: Option<&Bound<'_, PyAny>>,
    create_graph: Option<&Bound<'_, PyAny>>,
) -> PyResult<(Vec<Option<Tensor>>, bool, bool)> {
    let mut gs = optional_tensor_list(grads, outputs.len())?;
    gs.truncate(outputs.len());
    engine::check_output_grads(&outputs[..gs.len()], &gs).py()?;
    let create_graph = crate::convert::engine_flag(create_graph, false)?;
    let retain_graph = crate::convert::engine_flag(retain_graph, create_graph)?;
    if gs.len() != outputs.len() {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
            "got {} tensors and {} gradients",
            outputs.len(),
            gs.len()
        )));
    }
    Ok((gs, retain_graph, create_graph))
}

/// A tensor, None, or a sequence of those.
fn optional_tensor_list(obj: Option<&Bound<'_, PyAny>>, n: usize) -> PyResult<Vec<Option<Tensor>>> {
    match obj {
        None => Ok(vec![None; n]),
        Some(o) if o.is_none() => Ok(vec![None; n]),
        Some(o) => {
            if let Ok(t) = o.cast::<PyTensor>() {
                return Ok(vec![Some(t.get().t.clone())]);
            }
            o.try_iter()?
                .map(|item| {
                    let item = item?;
                    if item.is_none() {
                        Ok(None)
                    } else {
                        tensor_arg(&item).map(Some)
                    }
                })
                .collect()
        }
    }
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (tensors, grad_tensors=None, retain_graph=None, create_graph=None, inputs=None))]
pub fn _backward(
    py: Python<'_>,
    tensors: &Bound<'_, PyAny>,
    grad_tensors: Option<&Bound<'_, PyAny>>,
    retain_graph: Option<&Bound<'_, PyAny>>,
    create_graph: Option<&Bound<'_, PyAny>>,
    inputs: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let ts = tensor_list(tensors)?;
    let (gs, retain, create_graph) = output_grads(&ts, grad_tensors, retain_graph, create_graph)?;
    let inputs = match inputs {
        Some(i) if !i.is_none() => Some(tensor_list(i)?),
        _ => None,
    };
    let cycles = gil::without_gil(py, move || {
        engine::backward_reporting_cycles(&ts, &gs, retain, create_graph, inputs.as_deref())
    })
    .py()?;
    warn_grad_cycles(py, cycles)
}

/// PyTorch's warning about `backward(create_graph=True)`, given only when a leaf's `.grad`
/// really holds a graph back to the leaf, and naming those leaves.
pub fn warn_grad_cycles(py: Python<'_>, leaves: Vec<Tensor>) -> PyResult<()> {
    if leaves.is_empty() {
        return Ok(());
    }
    let list = tensors_to_list(py, leaves.into_iter().map(Some).collect())?;
    crate::python::call(py, "_warn_grad_cycles", (list,)).map(|_| ())
}

/// Bytes held by saved tensors of live graph nodes.
#[rustgrad_macros::guard]
/// A Python number as PyTorch wraps it for a tensor argument: a 0-d tensor that promotes as a
/// number and keeps a double's precision.
#[pyfunction]
pub fn _wrapped_number(py: Python<'_>, value: &Bound<'_, PyAny>) -> R {
    match crate::convert::scalar_arg(value)? {
        Some(s) => wrap(py, s.to_tensor()),
        None => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "expected a number, got {}",
            crate::convert::parser_type_name(value)
        ))),
    }
}

/// `empty_like(t)`'s layout (note [Output layout]): the dims outermost first and the strides,
/// or `None` when it is row-major.
#[pyfunction]
pub fn _layout_like(t: &Bound<'_, PyAny>) -> PyResult<Option<(Vec<usize>, Vec<usize>)>> {
    let d = tensor_arg(t)?.data();
    let strides = rustgrad_core::shape::strides_like(&d.shape, &d.strides);
    if rustgrad_core::shape::is_contiguous(&d.shape, &strides) {
        return Ok(None);
    }
    let mut order: Vec<usize> = (0..strides.len()).collect();
    order.sort_by(|&i, &j| strides[j].cmp(&strides[i]));
    Ok(Some((order, strides.to_vec())))
}

/// A fresh tensor made in memory order (shape permuted by `_layout_like`'s order) seen with
/// `shape` and `strides`.
#[pyfunction]
pub fn _with_layout(py: Python<'_>, fresh: &Bound<'_, PyAny>, shape: Vec<usize>, strides: Vec<usize>) -> R {
    wrap(py, rustgrad_core::creation::with_layout(&tensor_arg(fresh)?, &shape, &strides).py()?)
}

#[pyfunction]
pub fn _saved_bytes() -> usize {
    rustgrad_core::autograd::saved_bytes()
}

/// `[(node name, count)]` of the graph nodes alive now.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _live_node_names() -> Vec<(&'static str, usize)> {
    graph::live_node_names()
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=None, allow_unused=None))]
pub fn _grad(
    py: Python<'_>,
    outputs: &Bound<'_, PyAny>,
    inputs: &Bound<'_, PyAny>,
    grad_outputs: Option<&Bound<'_, PyAny>>,
    retain_graph: Option<&Bound<'_, PyAny>>,
    create_graph: Option<&Bound<'_, PyAny>>,
    allow_unused: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyTuple>> {
    let outs = tensor_list(outputs)?;
    let ins = grad_inputs(inputs)?;
    let (gs, retain, create_graph) = output_grads(&outs, grad_outputs, retain_graph, create_graph)?;
    let allow = crate::convert::engine_flag(allow_unused, false)?;
    let result = gil::without_gil(py, move || match &ins {
        GradInputs::Tensors(ins) => engine::grad(&outs, &gs, ins, retain, create_graph, allow),
        GradInputs::Edges(edges) => engine::grad_edges(&outs, &gs, edges, retain, create_graph, allow),
    })
    .py()?;
    let list = tensors_to_list(py, result)?;
    Ok(PyTuple::new(py, list.bind(py).iter())?.unbind())
}

#[rustgrad_macros::guard]
#[pyfunction]
pub fn _set_grad_enabled(mode: bool) -> bool {
    grad_mode::set_grad_enabled(mode)
}

/// Whether gradient recording is on in this thread.
///
/// https://pytorch.org/docs/stable/generated/torch.is_grad_enabled.html
#[rustgrad_macros::guard]
#[pyfunction]
pub fn is_grad_enabled() -> bool {
    grad_mode::is_grad_enabled()
}

/// Sets this thread's inference mode; returns the previous one.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _set_inference_mode(mode: bool) -> bool {
    grad_mode::set_inference_mode(mode)
}

/// Whether inference mode is on in this thread.
///
/// https://pytorch.org/docs/stable/generated/torch.is_inference_mode_enabled.html
#[rustgrad_macros::guard]
#[pyfunction]
pub fn is_inference_mode_enabled() -> bool {
    grad_mode::is_inference_mode_enabled()
}

/// Turns anomaly mode on or off (process-wide, as in PyTorch).
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (mode, check_nan=true))]
pub fn _set_anomaly_enabled(mode: bool, check_nan: bool) {
    install_anomaly_host();
    rustgrad_core::anomaly::set_enabled(mode, check_nan);
}

/// Whether graph nodes record where their forward call happened (see `sites.rs`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _set_record_sites(mode: bool) -> bool {
    rustgrad_core::sites::set_record_node_sites(mode)
}

/// Whether anomaly detection (``autograd.detect_anomaly``) is on.
///
/// https://pytorch.org/docs/stable/autograd.html#anomaly-detection
#[rustgrad_macros::guard]
#[pyfunction]
pub fn is_anomaly_enabled() -> bool {
    rustgrad_core::anomaly::is_enabled()
}

/// Whether anomaly detection also raises on NaN gradients.
///
/// https://pytorch.org/docs/stable/autograd.html#anomaly-detection
#[rustgrad_macros::guard]
#[pyfunction]
pub fn is_anomaly_check_nan_enabled() -> bool {
    rustgrad_core::anomaly::check_nan()
}

extern "C" {
    // Part of CPython's stable ABI; pyo3-ffi leaves it out of the limited API it exposes.
    fn PyGILState_Check() -> std::ffi::c_int;
}

/// The caller's `file:line`, read from the running Python frame (cheap: no traceback object).
/// `None` off the GIL (engine threads) or outside any Python frame.
pub fn capture_site() -> Option<rustgrad_core::sites::Site> {
    use pyo3::ffi;
    use std::collections::HashMap;
    static CACHE: parking_lot::Mutex<Option<HashMap<(usize, i32), rustgrad_core::sites::Site>>> =
        parking_lot::Mutex::new(None);
    // SAFETY: every call below requires the GIL, which PyGILState_Check confirms this thread
    // holds; the frame and globals are borrowed for the duration of this call only.
    unsafe {
        if PyGILState_Check() == 0 {
            return None;
        }
        let frame = ffi::PyEval_GetFrame();
        if frame.is_null() {
            return None;
        }
        let line = ffi::PyFrame_GetLineNumber(frame);
        let globals = ffi::PyEval_GetGlobals();
        if globals.is_null() {
            return None;
        }
        let file = ffi::PyDict_GetItemString(globals, c"__file__".as_ptr());
        if file.is_null() {
            return None;
        }
        let key = (file as usize, line);
        let mut cache = CACHE.lock();
        let map = cache.get_or_insert_with(HashMap::new);
        if let Some(site) = map.get(&key) {
            return Some(site.clone());
        }
        let py = Python::assume_attached();
        let file_obj = Bound::from_borrowed_ptr(py, file);
        let name: String = file_obj.extract().ok()?;
        // Keep the file name object alive so its address is never reused for another name.
        std::mem::forget(file_obj.clone().unbind());
        let site: rustgrad_core::sites::Site = format!("{name}:{line}").into();
        if map.len() > 65536 {
            map.clear();
        }
        map.insert(key, site.clone());
        Some(site)
    }
}

/// Installs the host callbacks (tracebacks, warnings) the core uses; called at import.
pub fn install_anomaly_host() {
    fn capture() -> Option<String> {
        Python::attach(|py| crate::python::call(py, "_format_stack", ()).and_then(|s| s.extract::<String>()).ok())
    }
    fn warn(msg: &str) {
        Python::attach(|py| {
            if let Err(e) = crate::python::call(py, "_warn", (msg,)) {
                e.restore(py);
            }
        })
    }
    rustgrad_core::anomaly::install_host(rustgrad_core::anomaly::AnomalyHost { capture, warn });
}

/// Number of graph nodes alive in the process.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _live_nodes() -> usize {
    graph::live_nodes()
}

/// Turns this thread's use of the ops' own jvp formulas on or off (off: every tangent comes
/// from the backward formula); returns the previous setting. For tests that compare the two.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _set_jvp_formulas(enabled: bool) -> bool {
    rustgrad_core::forward_ad::set_jvp_formulas(enabled)
}

fn dt(dtype: Option<&Bound<'_, PyAny>>, default: DType) -> PyResult<DType> {
    Ok(dtype_arg(dtype)?.unwrap_or(default))
}

/// Checks the sizes a factory was given: their storage must be countable in an int64.
fn new_storage(shape: &[usize], dtype: DType) -> PyResult<()> {
    rustgrad_core::shape::storage_numel(shape, dtype.size()).py().map(|_| ())
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (shape, value, dtype=None, requires_grad=false))]
pub fn _full(
    py: Python<'_>,
    shape: Vec<usize>,
    value: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> R {
    let v = operand(value)?;
    // An int beyond int64 is a float operand (see `scalar_arg`), but it asks for an int64 tensor.
    let big_int = value.is_instance_of::<pyo3::types::PyInt>() && value.extract::<i64>().is_err();
    let default = match v.dtype() {
        DType::F64 | DType::F32 if big_int => DType::I64,
        DType::F64 | DType::F32 => default_float(),
        other => other,
    };
    let dtype = dt(dtype, default)?;
    let fill = v.item_f64().py()?;
    // Note [Integer fill values]: as PyTorch, a value an int64 cannot hold is refused rather
    // than saturated (NaN, inf, |v| >= 2**63).
    let float_out_of_range =
        v.dtype().is_float() && !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&fill);
    if dtype == DType::I64 && (big_int || float_out_of_range) {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "value cannot be converted to type int64_t without overflow",
        ));
    }
    new_storage(&shape, dtype)?;
    rustgrad_core::dtype::check_fits(fill, dtype).py()?;
    let t = creation::full(&shape, fill, dtype);
    factory_requires_grad(&t, requires_grad)?;
    wrap(py, t)
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (start, end, step, dtype))]
pub fn _arange(py: Python<'_>, start: f64, end: f64, step: f64, dtype: &Bound<'_, PyAny>) -> R {
    wrap(py, creation::arange(start, end, step, dt(Some(dtype), default_float())?).py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (start, end, steps, dtype=None))]
pub fn _linspace(py: Python<'_>, start: f64, end: f64, steps: usize, dtype: Option<&Bound<'_, PyAny>>) -> R {
    wrap(py, creation::linspace(start, end, steps, dt(dtype, default_float())?).py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (n, m=None, dtype=None))]
pub fn _eye(py: Python<'_>, n: usize, m: Option<usize>, dtype: Option<&Bound<'_, PyAny>>) -> R {
    wrap(py, creation::eye(n, m.unwrap_or(n), dt(dtype, default_float())?).py()?)
}

/// A factory of random floats: sizes checked, no kernel for integers (PyTorch's message
/// names `kernel`; `rand` looks for one even for an empty tensor, `randn` does not), nothing
/// drawn for an empty tensor.
fn random_floats(
    py: Python<'_>,
    shape: &[usize],
    dtype: DType,
    kernel: &str,
    generator: &std::sync::Mutex<Generator>,
    draw: fn(&[usize], DType, &std::sync::Mutex<Generator>) -> Tensor,
) -> R {
    new_storage(shape, dtype)?;
    let empty = rustgrad_core::shape::numel(shape) == 0;
    if !empty || kernel == "check_uniform_bounds" {
        rustgrad_core::dtype::require_kernel(kernel, dtype, rustgrad_core::dtype::FLOATS).py()?;
    }
    if empty {
        return wrap(py, creation::zeros(shape, dtype));
    }
    wrap(py, draw(shape, dtype, generator))
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (shape, dtype=None, generator=None))]
pub fn _rand(
    py: Python<'_>,
    shape: Vec<usize>,
    dtype: Option<&Bound<'_, PyAny>>,
    generator: Option<&Bound<'_, PyAny>>,
) -> R {
    let gen = crate::generator::resolve(generator, "rand")?;
    random_floats(py, &shape, dt(dtype, default_float())?, "check_uniform_bounds", gen, creation::rand)
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (shape, dtype=None, generator=None))]
pub fn _randn(
    py: Python<'_>,
    shape: Vec<usize>,
    dtype: Option<&Bound<'_, PyAny>>,
    generator: Option<&Bound<'_, PyAny>>,
) -> R {
    let gen = crate::generator::resolve(generator, "randn")?;
    random_floats(py, &shape, dt(dtype, default_float())?, "normal_kernel_cpu", gen, creation::randn)
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (low, high, shape, generator=None))]
pub fn _randint(py: Python<'_>, low: i64, high: i64, shape: Vec<usize>, generator: Option<&Bound<'_, PyAny>>) -> R {
    let gen = crate::generator::resolve(generator, "randint")?;
    new_storage(&shape, DType::I64)?;
    wrap(py, creation::randint(low, high, &shape, gen).py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (n, generator=None))]
pub fn _randperm(py: Python<'_>, n: usize, generator: Option<&Bound<'_, PyAny>>) -> R {
    let gen = crate::generator::resolve(generator, "randperm")?;
    new_storage(&[n], DType::I64)?;
    let v = rustgrad_core::random::lock(gen).randperm(n);
    wrap(py, Tensor::from_vec(v, &[n]).py()?)
}

/// One draw of `torch.empty((), dtype=torch.int64).random_(generator=g)`: a 64-bit draw
/// modulo 2**63 (how a `DataLoader` seeds its shuffle and its workers).
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (generator=None))]
pub fn _random_int64(py: Python<'_>, generator: Option<&Bound<'_, PyAny>>) -> PyResult<i64> {
    if let Some(g) = generator.filter(|g| !g.is_none() && g.cast::<crate::generator::PyGenerator>().is_err()) {
        // PyTorch's error for `random_(generator=g)`.
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("generator", g)?;
        crate::tensor_ops::random_args(&PyTuple::empty(py), Some(&kwargs))?;
    }
    let gen = crate::generator::resolve(generator, "random_")?;
    let draw = rustgrad_core::random::lock(gen).random_u64();
    Ok((draw % (1u64 << 63)) as i64)
}

/// A 1-d tensor over every element of `t`'s storage (offset 0, no autograd, sharing memory and
/// the version counter): what `Tensor.storage()` reads and writes.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _storage_elements(py: Python<'_>, t: &Bound<'_, PyTensor>) -> R {
    let d = t.get().t.data();
    let all = rustgrad_core::TensorData {
        storage: d.storage.clone(),
        shape: [d.storage.len()].as_slice().into(),
        strides: [1].as_slice().into(),
        offset: 0,
    };
    wrap(py, Tensor::from_data(all))
}

/// PyTorch's `result_type` of two operands, tensors or numbers (numbers count as wrapped).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _result_type(
    py: Python<'_>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
) -> PyResult<Py<crate::convert::PyDType>> {
    let (a, b) = (crate::convert::operand(a)?, crate::convert::operand(b)?);
    Ok(crate::convert::dtype_object(py, rustgrad_core::ops::arith::promote(&a, &b)))
}

/// Sets the intra-op thread count the kernels follow (`torch.set_num_threads`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _set_num_threads(n: usize) {
    rustgrad_core::cascade::set_num_threads(n);
}

/// The intra-op thread count (`torch.get_num_threads`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _get_num_threads() -> usize {
    rustgrad_core::cascade::num_threads()
}

/// Sets the process-wide default float dtype (`torch.set_default_dtype`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _set_default_dtype(dtype: &Bound<'_, PyAny>) -> PyResult<()> {
    let Ok(d) = dtype.cast::<crate::convert::PyDType>() else {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "invalid dtype object: only floating-point types are supported as the default type",
        ));
    };
    let d = d.get().dtype;
    if !d.is_float() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "only floating-point types are supported as the default type",
        ));
    }
    rustgrad_core::dtype::set_default_float(d);
    Ok(())
}

/// The default float dtype (`torch.get_default_dtype`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _get_default_dtype(py: Python<'_>) -> Py<crate::convert::PyDType> {
    crate::convert::dtype_object(py, default_float())
}

/// `torch.multinomial(input, num_samples, replacement, generator=g)` (arguments checked by
/// the Python wrapper).
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (input, num_samples, replacement=false, generator=None))]
pub fn _multinomial(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    num_samples: i64,
    replacement: bool,
    generator: Option<&Bound<'_, PyAny>>,
) -> R {
    let gen = crate::generator::resolve(generator, "multinomial")?;
    let t = tensor_arg(input)?;
    wrap(py, rustgrad_core::ops::sampling::multinomial(&t, num_samples, replacement, gen).py()?)
}

/// `values` recorded as the result of `torch.normal` with tensor arguments `inputs` (node
/// `name`, one of `NormalBackward1`/`2`/`3`; zero gradients, as in PyTorch), or of
/// `torch.bernoulli(input, p)` (`name` `aten::bernoulli`: PyTorch's node without a derivative).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _random_result(py: Python<'_>, values: &Bound<'_, PyAny>, inputs: Vec<Bound<'_, PyAny>>, name: &str) -> R {
    let inputs: Vec<Tensor> = inputs.iter().map(tensor_arg).collect::<PyResult<_>>()?;
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let values = tensor_arg(values)?;
    let name: &'static str = match name {
        "NormalBackward1" => "NormalBackward1",
        "NormalBackward2" => "NormalBackward2",
        "NormalBackward3" => "NormalBackward3",
        "aten::bernoulli" => {
            return wrap(
                py,
                rustgrad_core::ops::fill::not_differentiable_result(&values, &refs, "aten::bernoulli").py()?,
            )
        }
        other => return Err(pyo3::exceptions::PyValueError::new_err(format!("unknown random node {other}"))),
    };
    wrap(py, rustgrad_core::ops::fill::random_result(&values, &refs, name).py()?)
}

/// `torch.poisson(input, generator=g)`.
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (input, generator=None))]
pub fn _poisson(py: Python<'_>, input: &Bound<'_, PyAny>, generator: Option<&Bound<'_, PyAny>>) -> R {
    let gen = crate::generator::resolve(generator, "poisson")?;
    let t = tensor_arg(input)?;
    wrap(py, rustgrad_core::ops::sampling::poisson(&t, gen).py()?)
}

/// The seed the default random generator was last seeded with.
///
/// https://pytorch.org/docs/stable/generated/torch.initial_seed.html
#[rustgrad_macros::guard]
#[pyfunction]
pub fn initial_seed() -> u64 {
    rustgrad_core::random::default_generator().lock().unwrap_or_else(|e| e.into_inner()).initial_seed()
}

/// A tensor sharing memory with a numpy array (same dtype, same shape; writes show in both).
///
/// https://pytorch.org/docs/stable/generated/torch.from_numpy.html
#[rustgrad_macros::guard]
#[pyfunction]
pub fn from_numpy(py: Python<'_>, array: &Bound<'_, PyAny>) -> R {
    wrap(py, crate::convert::from_numpy(array)?)
}

/// Element-wise choice: ``input`` where ``condition`` is True, else ``other`` (broadcasting);
/// with only a condition, the indices of its non-zero elements.
///
/// https://pytorch.org/docs/stable/generated/torch.where.html
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(name = "where")]
pub fn where_(py: Python<'_>, condition: &Bound<'_, PyAny>, input: &Bound<'_, PyAny>, other: &Bound<'_, PyAny>) -> R {
    where_uint64_rule(input, other, true)?;
    where_uint64_rule(other, input, false)?;
    wrap(py, compare::where_(&tensor_arg(condition)?, &operand(input)?, &operand(other)?).py()?)
}

/// PyTorch reads a Python int in [2**63, 2**64) given to `where` as a uint64, which an integer
/// result cannot hold and which does not promote with int64 or bool (a float result is fine).
fn where_uint64_rule(value: &Bound<'_, PyAny>, beside: &Bound<'_, PyAny>, first: bool) -> PyResult<()> {
    use crate::convert::{uint64_int, uint64_promotion_error};
    use pyo3::types::{PyBool, PyInt};
    if uint64_int(value).is_none() {
        return Ok(());
    }
    if let Ok(t) = beside.cast::<PyTensor>() {
        return match t.get().t.dtype() {
            DType::I64 => Err(pyo3::exceptions::PyRuntimeError::new_err(
                "value cannot be converted to type int64_t without overflow",
            )),
            DType::Bool => Err(uint64_promotion_error("Bool", false)),
            _ => Ok(()),
        };
    }
    if beside.is_instance_of::<PyInt>() && !beside.is_instance_of::<PyBool>() {
        return Err(uint64_promotion_error("Long", first));
    }
    Ok(())
}

/// `torch.autograd.backward`'s list of leaves reached: used by tests of the engine.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _tensor_list(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Py<PyList>> {
    tensors_to_list(py, tensor_list(obj)?.into_iter().map(Some).collect())
}

/// Turns CPU autocast on with `dtype` (off with `None`) for this thread: the state the ops of
/// its lists read (`torch.autocast('cpu')` regions set it).
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (dtype=None))]
pub fn _set_autocast_cpu(dtype: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    rustgrad_core::autocast::set_cpu_dtype(dtype_arg(dtype)?);
    Ok(())
}

/// Turns CPU autocast's cast cache on or off for this thread.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _set_autocast_cache_enabled(enabled: bool) {
    rustgrad_core::autocast::set_cache_enabled(enabled);
}

/// Empties this thread's CPU autocast cast cache.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _clear_autocast_cache() {
    rustgrad_core::autocast::clear_cache();
}

/// The arguments as an op of CPU autocast's float32 list sees them: float16/bfloat16 tensors
/// cast to float32 (`ToCopyBackward0`), anything else as given; the same tuple when autocast
/// is off.
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (*args))]
pub fn _autocast_fp32<'py>(py: Python<'py>, args: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyTuple>> {
    if rustgrad_core::autocast::cpu_dtype().is_none() {
        return Ok(args.clone());
    }
    let mut out: Vec<Bound<'py, PyAny>> = Vec::with_capacity(args.len());
    for item in args.iter() {
        let cast = match item.cast::<PyTensor>() {
            Ok(t) => {
                let c = rustgrad_core::autocast::cast_fp32(&t.get().t).py()?;
                if c.same(&t.get().t) {
                    None
                } else {
                    Some(wrap(py, c)?.into_bound(py).into_any())
                }
            }
            Err(_) => None,
        };
        out.push(cast.unwrap_or(item));
    }
    PyTuple::new(py, out)
}
