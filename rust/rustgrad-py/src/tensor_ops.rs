//! Tensor methods and module functions of the ops beyond arithmetic: indexing with tensors,
//! joining and splitting, clamp/maximum/masked_fill, softmax family, var/std/prod/cumsum,
//! gather/scatter, random in-place fills, and the fused losses behind `nn.functional`.

use crate::convert::{dtype_arg, operand, tensor_arg};
use crate::errors::IntoPyResult;
use crate::tensor::{wrap, PyTensor};
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBytes, PyDict, PyEllipsis, PyList, PyRange, PySequence, PySlice, PySliceMethods, PyString, PyTuple,
};
use rustgrad_core::inplace::{Internal, Reads};
use rustgrad_core::kernels::Compare;
use rustgrad_core::ops::compare::compare;
use rustgrad_core::ops::elementwise::{self, ClampKind};
use rustgrad_core::ops::fill::Distribution;
use rustgrad_core::ops::join::{self, SplitKind};
use rustgrad_core::ops::loss::{self, Reduction};
use rustgrad_core::ops::{activation, gather, index, linalg, moments, pointwise, softmax, unary, view};
use rustgrad_core::{kernels::Unary, DType, Tensor};

type R = PyResult<Py<PyTensor>>;

/// A key item that indexes with a tensor: a Tensor (not a 0-d integer one), or a sequence
/// inside the key (a list, tuple or range), converted as PyTorch converts indexing data: ints
/// must fit int64, floats are truncated to int64, bools make a mask, strings are refused.
fn index_tensor(item: &Bound<'_, PyAny>) -> PyResult<Option<Tensor>> {
    if let Ok(t) = item.cast::<PyTensor>() {
        let t = t.get().t.clone();
        if t.ndim() == 0 && t.dtype() == DType::I64 {
            return Ok(None);
        }
        return Ok(Some(t));
    }
    if let Some(kind) = text_kind(item) {
        return Err(PyTypeError::new_err(format!("new(): invalid data type '{kind}'")));
    }
    if item.is_instance_of::<PyList>() || item.is_instance_of::<PyTuple>() || item.is_instance_of::<PyRange>() {
        let py = item.py();
        let list = if item.is_instance_of::<PyRange>() {
            PyList::new(py, item.try_iter()?.collect::<PyResult<Vec<_>>>()?)?.into_any()
        } else {
            item.clone()
        };
        let array = py.import("numpy")?.call_method1("asarray", (list.clone(),))?;
        let kind: String = array.getattr("dtype")?.getattr("kind")?.extract()?;
        let size: usize = array.getattr("size")?.extract()?;
        let array = match kind.as_str() {
            "b" => array,
            "i" => array.call_method1("astype", ("int64",))?,
            "u" | "O" => {
                check_index_data(&list)?;
                array.call_method1("astype", ("int64",))?
            }
            "f" if size == 0 => array.call_method1("astype", ("int64",))?,
            "f" => {
                let finite: bool =
                    py.import("numpy")?.call_method1("isfinite", (array.clone(),))?.call_method0("all")?.extract()?;
                if !finite {
                    return Err(pyo3::exceptions::PyRuntimeError::new_err(
                        "value cannot be converted to type int64 without overflow",
                    ));
                }
                array.call_method1("astype", ("int64",))?
            }
            "U" => return Err(PyTypeError::new_err("new(): invalid data type 'str'")),
            "S" => return Err(PyTypeError::new_err("new(): invalid data type 'bytes'")),
            _ => return Err(PyIndexError::new_err("tensors used as indices must be long, int, byte or bool tensors")),
        };
        return Ok(Some(crate::convert::from_numpy(&array)?));
    }
    Ok(None)
}

/// `Some("str")`/`Some("bytes")` for text, which PyTorch refuses as indexing data.
fn text_kind(item: &Bound<'_, PyAny>) -> Option<&'static str> {
    if item.is_instance_of::<PyString>() {
        Some("str")
    } else if item.is_instance_of::<PyBytes>() {
        Some("bytes")
    } else {
        None
    }
}

/// Walks nested indexing data that numpy could not type as plain integers: text is refused
/// and an int outside int64 overflows, with PyTorch's messages.
fn check_index_data(data: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Some(kind) = text_kind(data) {
        return Err(PyTypeError::new_err(format!("new(): invalid data type '{kind}'")));
    }
    if data.is_instance_of::<PyList>() || data.is_instance_of::<PyTuple>() {
        for x in data.try_iter()? {
            check_index_data(&x?)?;
        }
    } else if data.is_instance_of::<pyo3::types::PyInt>() && !data.is_instance_of::<pyo3::types::PyBool>() {
        crate::convert::int64_arg(data)?;
    }
    Ok(())
}

/// PyTorch's rule for a key that is a sequence but not a tuple: it stands for a tuple of
/// indices (`x[[0, slice(None)]]` is `x[0, :]`) when it has fewer than 32 items and one of
/// them is a tensor, a sequence (a string too), a slice, `...` or `None`; otherwise it is one
/// index (`x[[0, 1]]`).
fn sequence_as_tuple(key: &Bound<'_, PyAny>) -> bool {
    if key.cast::<PyTensor>().is_ok() {
        return false;
    }
    let Ok(seq) = key.cast::<PySequence>() else { return false };
    let Ok(n) = seq.len() else { return false };
    if n >= 32 {
        return false;
    }
    (0..n).any(|i| {
        seq.get_item(i).is_ok_and(|item| {
            item.cast::<PyTensor>().is_ok()
                || item.cast::<PySequence>().is_ok()
                || item.is_instance_of::<PySlice>()
                || item.is_instance_of::<PyEllipsis>()
                || item.is_none()
        })
    })
}

/// The value of `x[key] = value`, converted before the key is read (as in PyTorch): a
/// tensor, or a Python bool, int (which must fit int64) or float; anything else cannot be
/// assigned.
pub fn setitem_value(target: &Tensor, value: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    use pyo3::types::{PyBool, PyFloat, PyInt};
    if let Ok(t) = value.cast::<PyTensor>() {
        return Ok(t.get().t.clone());
    }
    if value.is_instance_of::<PyBool>() {
        return Ok(Tensor::wrapped_scalar(value.extract::<bool>()?));
    }
    let numpy_int = || {
        let ty = value.get_type();
        let module = ty.module().map(|m| m.to_string()).unwrap_or_default();
        let name = ty.name().map(|n| n.to_string()).unwrap_or_default();
        module == "numpy" && (name.starts_with("int") || name.starts_with("uint"))
    };
    if value.is_instance_of::<PyInt>() || numpy_int() {
        return Ok(Tensor::wrapped_scalar(crate::convert::int64_arg(value)?));
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(Tensor::wrapped_scalar(value.extract::<f64>()?));
    }
    Err(PyTypeError::new_err(format!(
        "can't assign a {} to a {}",
        qualified_type_name(value)?,
        target.dtype().legacy_name()
    )))
}

/// A Python object's type as C code names it (`list`, `numpy.float32`, `torch.dtype`).
fn qualified_type_name(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if obj.cast::<crate::convert::PyDType>().is_ok() {
        return Ok("torch.dtype".to_string());
    }
    let ty = obj.get_type();
    Ok(match ty.module().map(|m| m.to_string()) {
        Ok(m) if m != "builtins" => format!("{m}.{}", ty.name()?),
        _ => ty.name()?.to_string(),
    })
}

/// A parsed `x[key]`: the view made by its basic part (ints, slices, None, ...), and the
/// tensor indices to apply to that view afterwards (one entry per leading dim, bool masks
/// covering as many dims as they have).
pub struct IndexKey {
    pub view: Tensor,
    pub advanced: Option<Vec<Option<Tensor>>>,
}

pub fn parse_index(t: &Tensor, key: &Bound<'_, PyAny>) -> PyResult<IndexKey> {
    parse_index_for(t, key, false)
}

/// [`parse_index`] for reading (`getitem == true`) or writing. PyTorch's rule, which decides
/// the node names: a slice that keeps a whole dim (start omitted or 0, stop at or past the end,
/// step 1) is skipped, except that a lone slice key (`x[:]`, not `x[:, ]`) is always recorded
/// when reading (`SliceBackward0`).
pub fn parse_index_for(t: &Tensor, key: &Bound<'_, PyAny>, getitem: bool) -> PyResult<IndexKey> {
    let lone_slice = getitem && key.is_instance_of::<PySlice>();
    if key.is_instance_of::<pyo3::types::PyInt>() && !key.is_instance_of::<pyo3::types::PyBool>() {
        // A lone int must fit int64 before anything else is checked.
        crate::convert::int64_arg(key)?;
    }
    let items: Vec<Bound<'_, PyAny>> = match key.cast::<PyTuple>() {
        Ok(tup) => tup.iter().collect(),
        Err(_) if sequence_as_tuple(key) => {
            rustgrad_core::anomaly::warn(
                "Using a non-tuple sequence for multidimensional indexing is deprecated and will be changed in pytorch 2.9; use x[tuple(seq)] instead of x[seq]. In pytorch 2.9 this will be interpreted as tensor index, x[torch.tensor(seq)], which will result either in an error or a different result",
            );
            key.try_iter()?.collect::<PyResult<_>>()?
        }
        Err(_) => vec![key.clone()],
    };
    // PyTorch counts the dims the key indexes before converting any item: a bool or byte
    // tensor counts its dims, None, `...` and bools none, anything else one.
    let nd = t.ndim();
    let specified: usize = items
        .iter()
        .map(|item| match item.cast::<PyTensor>() {
            Ok(x) if x.get().t.dtype() == DType::Bool => x.get().t.ndim(),
            Ok(_) => 1,
            Err(_)
                if item.is_none()
                    || item.is_instance_of::<PyEllipsis>()
                    || item.is_instance_of::<pyo3::types::PyBool>() =>
            {
                0
            }
            Err(_) => 1,
        })
        .sum();
    if specified > nd {
        return Err(PyIndexError::new_err(format!("too many indices for tensor of dimension {nd}")));
    }
    // (tensor index, key item, whether the item is a lone bool: `True`, `False` or a 0-d bool
    // tensor, which PyTorch reads as a new dim of size 1 indexed by a one-element mask).
    let mut parsed: Vec<(Option<Tensor>, Bound<'_, PyAny>, bool)> = Vec::with_capacity(items.len());
    let mut consuming = 0usize;
    for item in &items {
        let mut tensor = index_tensor(item)?;
        let mut lone_bool = false;
        if item.is_instance_of::<pyo3::types::PyBool>() {
            tensor = Some(Tensor::from_vec(vec![item.extract::<bool>()?], &[1]).py()?);
            lone_bool = true;
        } else if let Some(t) = tensor.as_ref().filter(|t| t.dtype() == DType::Bool && t.ndim() == 0) {
            tensor = Some(view::reshape(&t.detach(), &[1]).py()?);
            lone_bool = true;
        }
        if lone_bool {
            // consumes the dim it adds
        } else if let Some(t) = &tensor {
            consuming += if t.dtype() == DType::Bool { t.ndim() } else { 1 };
        } else if !item.is_none() && !item.is_instance_of::<PyEllipsis>() {
            consuming += 1;
        }
        parsed.push((tensor, item.clone(), lone_bool));
    }
    if consuming > nd {
        return Err(PyIndexError::new_err(format!("too many indices for tensor of dimension {nd}")));
    }
    let mut out = t.clone();
    let mut dim: i64 = 0;
    let mut advanced: Vec<(usize, Tensor)> = Vec::new();
    for (tensor, item, lone_bool) in &parsed {
        if *lone_bool {
            out = view::unsqueeze(&out, dim).py()?;
        }
        if let Some(ix) = tensor {
            advanced.push((dim as usize, ix.clone()));
            dim += if ix.dtype() == DType::Bool { ix.ndim() as i64 } else { 1 };
        } else if item.is_none() {
            out = view::unsqueeze(&out, dim).py()?;
            dim += 1;
        } else if item.is_instance_of::<PyEllipsis>() {
            dim += (nd - consuming) as i64;
        } else if let Ok(sl) = item.cast::<PySlice>() {
            let size = out.shape()[dim as usize];
            let step: Option<i64> = sl.getattr("step")?.extract()?;
            if step.is_some_and(|s| s <= 0) {
                return Err(PyValueError::new_err("step must be greater than zero"));
            }
            let raw_start: Option<i64> = sl.getattr("start")?.extract().unwrap_or(Some(1));
            let ind = sl.indices(size as isize)?;
            let (start, stop, step) = (ind.start.max(0) as usize, ind.stop.max(0) as usize, ind.step as usize);
            // A negative stop never keeps the whole dim, even of size 0 (`empty[:-1]` is a view).
            let raw_stop: Option<i64> = sl.getattr("stop")?.extract().unwrap_or(Some(-1));
            let whole = raw_start.unwrap_or(0) == 0 && raw_stop.is_none_or(|s| s >= 0) && stop >= size && step == 1;
            if lone_slice || !whole {
                out = index::slice(&out, dim, start, stop, step).py()?;
            }
            dim += 1;
        } else if let Ok(i) = item.extract::<i64>() {
            out = index::select(&out, dim, i).py()?;
        } else if item.is_instance_of::<pyo3::types::PyInt>() {
            crate::convert::int64_arg(item)?;
        } else if let Some(kind) = text_kind(item) {
            return Err(PyTypeError::new_err(format!("new(): invalid data type '{kind}'")));
        } else {
            return Err(PyIndexError::new_err(format!(
                "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid indices (got {})",
                qualified_type_name(item)?
            )));
        }
    }
    if advanced.is_empty() {
        return Ok(IndexKey { view: out, advanced: None });
    }
    let mut list: Vec<Option<Tensor>> = Vec::new();
    let mut d = 0usize;
    for (at, ix) in advanced {
        while d < at {
            list.push(None);
            d += 1;
        }
        d += if ix.dtype() == DType::Bool { ix.ndim() } else { 1 };
        list.push(Some(ix));
    }
    Ok(IndexKey { view: out, advanced: Some(list) })
}

/// `masked_fill_` refuses a mask partially overlapping the target (the value is read once)
/// and only warns about an expanded target.
fn masked_fill_reads<'a>(mask: &'a [&'a Tensor; 1]) -> Reads<'a> {
    Reads { operands: mask, disjoint: &[], internal: Internal::Warn("masked_fill_") }
}

fn reduction(s: &str) -> PyResult<Reduction> {
    Reduction::parse(s).py()
}

fn opt_tensor(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Tensor>> {
    match obj {
        Some(o) if !o.is_none() => Ok(Some(tensor_arg(o)?)),
        _ => Ok(None),
    }
}

/// A clamp bound with its kind (int, float or bool), which decides the result's dtype.
fn bound_scalar(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<rustgrad_core::scalar::Scalar>> {
    use rustgrad_core::scalar::Scalar;
    match obj {
        Some(o) if !o.is_none() => match crate::convert::scalar_arg(o)? {
            Some(s) => Ok(Some(s)),
            None => {
                let t = operand(o)?;
                let v = t.item_f64().py()?;
                Ok(Some(match t.dtype() {
                    DType::Bool => Scalar::Bool(v != 0.0),
                    DType::I64 => Scalar::Int(v as i64),
                    _ => Scalar::Float(v),
                }))
            }
        },
        _ => Ok(None),
    }
}

/// clamp's bounds as PyTorch's two overloads read them: all tensors (`Tensor? min, Tensor? max`)
/// or all numbers, where a 0-d tensor that does not require grad passes for a number.
enum ClampBounds {
    Tensors(Option<Tensor>, Option<Tensor>),
    Numbers(Option<rustgrad_core::scalar::Scalar>, Option<rustgrad_core::scalar::Scalar>),
}

/// `clamp_min`/`clamp_max` take a bound that is not None (PyTorch has no overload for None).
fn one_bound_given(name: &str, bound: &Bound<'_, PyAny>, arg: &str) -> PyResult<()> {
    if bound.is_none() {
        return Err(PyTypeError::new_err(format!(
            "{name}() received an invalid combination of arguments - got (NoneType), but expected one of:\n \
             * (Tensor {arg})\n * (Number {arg})\n"
        )));
    }
    Ok(())
}

fn clamp_bounds(name: &str, min: Option<&Bound<'_, PyAny>>, max: Option<&Bound<'_, PyAny>>) -> PyResult<ClampBounds> {
    let (min, max) = (min.filter(|m| !m.is_none()), max.filter(|m| !m.is_none()));
    let as_tensor = |o: Option<&Bound<'_, PyAny>>| o.and_then(|m| m.cast::<PyTensor>().ok().map(|t| t.get().t.clone()));
    let (lo_t, hi_t) = (as_tensor(min), as_tensor(max));
    let numbers = usize::from(min.is_some() && lo_t.is_none()) + usize::from(max.is_some() && hi_t.is_none());
    if numbers == 0 && (lo_t.is_some() || hi_t.is_some()) {
        return Ok(ClampBounds::Tensors(lo_t, hi_t));
    }
    if [&lo_t, &hi_t].into_iter().flatten().any(|t| t.ndim() != 0 || t.requires_grad()) {
        let names = [min, max]
            .into_iter()
            .flatten()
            .map(|o| {
                if o.cast::<PyTensor>().is_ok() {
                    Ok("Tensor".to_string())
                } else {
                    Ok(o.get_type().name()?.to_string())
                }
            })
            .collect::<PyResult<Vec<_>>>()?;
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{name}() received an invalid combination of arguments - got ({}), but expected one of:\n \
             * (Tensor min = None, Tensor max = None)\n * (Number min = None, Number max = None)\n",
            names.join(", ")
        )));
    }
    Ok(ClampBounds::Numbers(bound_scalar(min)?, bound_scalar(max)?))
}

fn clamp_apply(t: &Tensor, bounds: &ClampBounds, kind: ClampKind) -> rustgrad_core::Result<Tensor> {
    match bounds {
        ClampBounds::Tensors(lo, hi) => elementwise::clamp_tensor(t, lo.as_ref(), hi.as_ref(), kind),
        ClampBounds::Numbers(lo, hi) => elementwise::clamp_scalar(t, *lo, *hi, kind),
    }
}

fn clamp_dispatch(
    t: &Tensor,
    name: &str,
    min: Option<&Bound<'_, PyAny>>,
    max: Option<&Bound<'_, PyAny>>,
    kind: ClampKind,
) -> PyResult<Tensor> {
    if let Some(bounds) = uint64_clamp_bounds(t, min, max)? {
        return clamp_apply(t, &bounds, kind).py();
    }
    clamp_apply(t, &clamp_bounds(name, min, max)?, kind).py()
}

/// clamp's number bounds when one is a uint64 (note [uint64 operands]): a float tensor or a
/// float bound reads it as a float; an integer tensor refuses a uint64 min (outside its range),
/// ignores a uint64 max (above all of it) and does not promote it with an int64 bound; a bool
/// tensor does not promote it at all. `None` when no bound is a uint64.
fn uint64_clamp_bounds(
    t: &Tensor,
    min: Option<&Bound<'_, PyAny>>,
    max: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<ClampBounds>> {
    use crate::convert::{uint64_int, uint64_promotion_error};
    use rustgrad_core::scalar::Scalar;
    let (min, max) = (min.filter(|m| !m.is_none()), max.filter(|m| !m.is_none()));
    let (lo_u, hi_u) = (min.and_then(uint64_int), max.and_then(uint64_int));
    if lo_u.is_none() && hi_u.is_none() || [min, max].into_iter().flatten().any(|b| b.cast::<PyTensor>().is_ok()) {
        return Ok(None);
    }
    if t.dtype() == DType::Bool {
        return Err(uint64_promotion_error("Bool", false));
    }
    let (lo, hi) = (
        if lo_u.is_some() { None } else { bound_scalar(min)? },
        if hi_u.is_some() { None } else { bound_scalar(max)? },
    );
    let float_bound = matches!(lo, Some(Scalar::Float(_))) || matches!(hi, Some(Scalar::Float(_)));
    if t.dtype().is_float() || float_bound {
        let as_float = |u: Option<u64>, s: Option<Scalar>| u.map(|v| Scalar::Float(v as f64)).or(s);
        return Ok(Some(ClampBounds::Numbers(as_float(lo_u, lo), as_float(hi_u, hi))));
    }
    let int_beside = |s: Option<Scalar>| matches!(s, Some(Scalar::Int(_)));
    if lo_u.is_some() && int_beside(hi) {
        return Err(uint64_promotion_error("Long", true));
    }
    if hi_u.is_some() && int_beside(lo) {
        return Err(uint64_promotion_error("Long", false));
    }
    if let Some(v) = lo_u {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
            "Clamp min value {} is outside the representable range of Long",
            rustgrad_core::scalar::fmt_double(v as f64)
        )));
    }
    // Only a uint64 max, which no int64 exceeds: clamping at int64's least value copies.
    Ok(Some(ClampBounds::Numbers(lo.or(Some(Scalar::Int(i64::MIN))), hi)))
}

/// What `scatter`/`scatter_` write: `src` (a tensor or number) or `value=` (a number).
fn scatter_source(
    target: &Tensor,
    src: Option<&Bound<'_, PyAny>>,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<Tensor> {
    Ok(match (src, value) {
        (Some(s), _) | (_, Some(s)) if crate::convert::uint64_int(s).is_some() && !target.dtype().is_float() => {
            // A uint64 value (note [uint64 operands]) does not fit an integer target.
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "value cannot be converted to type int64_t without overflow",
            ));
        }
        (Some(s), _) if !s.is_none() => operand(s)?,
        // `value=` is a number even when given as a one-element tensor (no dtype check).
        (_, Some(v)) => match v.cast::<PyTensor>() {
            Ok(_) => bound_scalar(Some(v))?.map_or_else(|| operand(v), |s| Ok(s.to_tensor()))?,
            Err(_) => operand(v)?,
        },
        _ => return Err(PyTypeError::new_err("scatter() missing 1 required argument: 'src' or 'value'")),
    })
}

fn dims_list(dim: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<i64>>> {
    crate::convert::dims_arg(dim)
}

/// `correction` from PyTorch's `unbiased`/`correction` arguments.
fn correction_arg(unbiased: Option<bool>, correction: Option<&Bound<'_, PyAny>>) -> PyResult<f64> {
    if let Some(c) = correction {
        if !c.is_none() {
            return c.extract::<f64>();
        }
    }
    Ok(if unbiased.unwrap_or(true) { 1.0 } else { 0.0 })
}

fn tensors_out(py: Python<'_>, ts: Vec<Tensor>) -> PyResult<Py<PyTuple>> {
    let objs = ts.into_iter().map(|t| wrap(py, t)).collect::<PyResult<Vec<_>>>()?;
    Ok(PyTuple::new(py, objs)?.unbind())
}

fn split_impl(py: Python<'_>, t: &Tensor, split: &Bound<'_, PyAny>, dim: i64) -> PyResult<Py<PyTuple>> {
    if split.is_instance_of::<pyo3::types::PyBool>() {
        // A bool is neither an int nor a list of ints to PyTorch's parser.
        let why = "      didn't match because some of the arguments have invalid types: (Tensor, !bool!, !int!)\n";
        return Err(PyTypeError::new_err(format!(
            "split() received an invalid combination of arguments - got (Tensor, bool, int), but expected one of:\n \
             * (Tensor input, int split_size, int dim = 0)\n{why} * (Tensor input, tuple of ints split_size, int dim = 0)\n{why}"
        )));
    }
    let shp = t.shape();
    if shp.is_empty() {
        return Err(pyo3::exceptions::PyRuntimeError::new_err("split expects at least a 1-dimensional tensor"));
    }
    let d = rustgrad_core::shape::wrap_dim(dim, shp.len()).py()?;
    if split.is_instance_of::<pyo3::types::PyInt>() && !split.is_instance_of::<pyo3::types::PyBool>() {
        crate::convert::int64_arg(split)?; // beyond int64: PyTorch's ValueError
    }
    let outs = if let Ok(size) = split.extract::<i64>() {
        if size < 0 {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "split expects split_size be non-negative, but got split_size={size}"
            )));
        }
        join::split(t, &join::split_sizes(shp[d], size as usize, 1), dim, SplitKind::Size).py()?
    } else {
        let sizes: Vec<usize> = split.extract()?;
        join::split(t, &sizes, dim, SplitKind::Sizes).py()?
    };
    tensors_out(py, outs)
}

fn chunk_impl(py: Python<'_>, t: &Tensor, chunks: i64, dim: i64) -> PyResult<Py<PyTuple>> {
    if chunks <= 0 {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
            "chunk expects `chunks` to be greater than 0, got: {chunks}"
        )));
    }
    let shp = t.shape();
    if shp.is_empty() {
        return Err(pyo3::exceptions::PyRuntimeError::new_err("chunk expects at least a 1-dimensional tensor"));
    }
    let d = rustgrad_core::shape::wrap_dim(dim, shp.len()).py()?;
    let size = shp[d].div_ceil(chunks as usize);
    let sizes = if size == 0 { vec![0; chunks as usize] } else { join::split_sizes(shp[d], size, 1) };
    let kind = if size == 0 { SplitKind::Sizes } else { SplitKind::Size };
    tensors_out(py, join::split(t, &sizes, dim, kind).py()?)
}

/// An in-place random fill from `generator` (`None`: the default generator), drawn in the
/// target's memory order (see `fill::random_filled`).
fn random_fill(
    slf: &Bound<'_, PyTensor>,
    op: &'static str,
    dist: Distribution,
    generator: Option<&Bound<'_, PyAny>>,
) -> R {
    let gen = crate::generator::resolve(generator, op)?;
    let target = slf.get().t.clone();
    // PyTorch checks the distribution against the dtype before the target's memory overlap (but
    // after the autograd checks of a target that requires grad, which `in_place_op` makes).
    if !target.requires_grad() {
        dist.check(target.dtype(), target.numel()).py()?;
    }
    for message in dist.warnings(target.dtype()) {
        crate::python::call(slf.py(), "_warn", (message,))?;
    }
    in_place_op(slf, op, |t| rustgrad_core::ops::fill::random_filled(t, &target, dist, gen))
}

/// The overloads of `random_` as PyTorch lists them in its `TypeError`.
const RANDOM_OVERLOADS: &str = " * (*, torch.Generator generator = None)\n * (int from, int to, *, torch.Generator \
                                generator = None)\n * (int to, *, torch.Generator generator = None)\n";

/// Parses `random_(*args, **kwargs)`: `()`, `(to)`, `(from, to)` or `(from, None)`, each
/// with an optional `generator=`; ints only (PyTorch's `TypeError` otherwise).
pub(crate) fn random_args<'a, 'py>(
    args: &'a Bound<'py, PyTuple>,
    kwargs: Option<&'a Bound<'py, PyDict>>,
) -> PyResult<(Distribution, Option<Bound<'py, PyAny>>)> {
    use rustgrad_core::ops::fill::RandomForm;
    let mut values: Vec<Bound<'py, PyAny>> = args.iter().collect();
    let mut generator = None;
    let mut bad = false;
    // PyTorch's listing: positional types joined by ", ", then each keyword as ", k=type"
    // (or "k=type, " when there is no positional argument).
    let mut got: String = values.iter().map(crate::convert::type_name).collect::<Vec<_>>().join(", ");
    let positional = !values.is_empty();
    if let Some(kw) = kwargs {
        let mut from = None;
        let mut to = None;
        for (k, v) in kw.iter() {
            let key: String = k.extract()?;
            let item = format!("{key}={}", crate::convert::type_name(&v));
            got.push_str(&if positional { format!(", {item}") } else { format!("{item}, ") });
            match key.as_str() {
                "generator" if v.is_none() || v.cast::<crate::generator::PyGenerator>().is_ok() => generator = Some(v),
                "from" => from = Some(v),
                "to" => to = Some(v),
                _ => bad = true,
            }
        }
        match (from, to) {
            (Some(f), Some(t)) if values.is_empty() => values = vec![f, t],
            (None, Some(t)) if values.len() <= 1 => values.push(t),
            (None, None) => {}
            _ => bad = true,
        }
    }
    let int = |v: &Bound<'py, PyAny>| -> PyResult<Option<i64>> {
        if !v.is_instance_of::<pyo3::types::PyInt>() {
            return Ok(None);
        }
        v.extract::<i64>()
            .map(Some)
            .map_err(|_| pyo3::exceptions::PyValueError::new_err("Overflow when unpacking long long"))
    };
    let parsed = match values.len() {
        0 => Some(Distribution::Random { from: 0, to: None, form: RandomForm::Full }),
        1 => int(&values[0])?.map(|to| Distribution::Random { from: 0, to: Some(to), form: RandomForm::To }),
        2 if values[1].is_none() => {
            int(&values[0])?.map(|from| Distribution::Random { from, to: None, form: RandomForm::FromTo })
        }
        2 => match (int(&values[0])?, int(&values[1])?) {
            (Some(from), Some(to)) => Some(Distribution::Random { from, to: Some(to), form: RandomForm::FromTo }),
            _ => None,
        },
        _ => None,
    };
    match parsed {
        Some(dist) if !bad => Ok((dist, generator)),
        _ => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "random_() received an invalid combination of arguments - got ({got}), but expected one of:\n{RANDOM_OVERLOADS}"
        ))),
    }
}

fn in_place_op(
    slf: &Bound<'_, PyTensor>,
    op: &'static str,
    compute: impl Fn(&Tensor) -> rustgrad_core::Result<Tensor>,
) -> R {
    in_place_op_reading(slf, Reads::TARGET, op, compute)
}

/// [`in_place_op`] for an op that also reads `reads` (checked for memory overlap with the target).
fn in_place_op_reading(
    slf: &Bound<'_, PyTensor>,
    reads: Reads<'_>,
    op: &'static str,
    compute: impl Fn(&Tensor) -> rustgrad_core::Result<Tensor>,
) -> R {
    crate::tensor::in_place_reading(&slf.get().t, reads, op, compute)?;
    Ok(slf.clone().unbind())
}

#[rustgrad_macros::guard]
#[pymethods]
impl PyTensor {
    /// Limits every element to ``[min, max]`` (either bound may be omitted; tensors broadcast).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.clamp.html
    #[pyo3(signature = (min=None, max=None))]
    fn clamp(&self, py: Python<'_>, min: Option<&Bound<'_, PyAny>>, max: Option<&Bound<'_, PyAny>>) -> R {
        wrap(py, clamp_dispatch(&self.t, "clamp", min, max, ClampKind::Clamp)?)
    }
    /// Alias of ``clamp``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.clip.html
    #[pyo3(signature = (min=None, max=None))]
    fn clip(&self, py: Python<'_>, min: Option<&Bound<'_, PyAny>>, max: Option<&Bound<'_, PyAny>>) -> R {
        wrap(py, clamp_dispatch(&self.t, "clip", min, max, ClampKind::Clamp)?)
    }
    /// Limits every element from below by ``min``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.clamp_min.html
    fn clamp_min(&self, py: Python<'_>, min: &Bound<'_, PyAny>) -> R {
        one_bound_given("clamp_min", min, "min")?;
        wrap(py, clamp_dispatch(&self.t, "clamp_min", Some(min), None, ClampKind::Min)?)
    }
    /// Limits every element from above by ``max``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.clamp_max.html
    fn clamp_max(&self, py: Python<'_>, max: &Bound<'_, PyAny>) -> R {
        one_bound_given("clamp_max", max, "max")?;
        wrap(py, clamp_dispatch(&self.t, "clamp_max", None, Some(max), ClampKind::Max)?)
    }
    /// In-place ``clamp``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.clamp_.html
    #[pyo3(signature = (min=None, max=None))]
    fn clamp_(slf: &Bound<'_, Self>, min: Option<&Bound<'_, PyAny>>, max: Option<&Bound<'_, PyAny>>) -> R {
        let bounds = match uint64_clamp_bounds(&slf.get().t, min, max)? {
            Some(b) => b,
            None => clamp_bounds("clamp_", min, max)?,
        };
        // Tensor bounds are read element-wise in PyTorch: they may not partially overlap the target.
        let reads: Vec<Tensor> = [min, max]
            .into_iter()
            .flatten()
            .filter_map(|b| b.cast::<PyTensor>().ok())
            .map(|b| b.get().t.clone())
            .collect();
        let reads: Vec<&Tensor> = reads.iter().collect();
        in_place_op_reading(slf, Reads::operands(&reads), "clamp_", |t| clamp_apply(t, &bounds, ClampKind::Clamp))
    }
    /// In-place ``relu``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.relu_.html
    fn relu_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "relu_", unary::relu)
    }
    /// Element-wise maximum of two tensors (NaN propagates).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.maximum.html
    fn maximum(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, elementwise::extremum(&self.t, &tensor_arg(other)?, true).py()?)
    }
    /// Element-wise minimum of two tensors (NaN propagates).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.minimum.html
    fn minimum(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, elementwise::extremum(&self.t, &tensor_arg(other)?, false).py()?)
    }
    /// A copy with ``value`` written where the bool ``mask`` (broadcast) is True.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.masked_fill.html
    fn masked_fill(&self, py: Python<'_>, mask: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> R {
        let m = tensor_arg(mask)?;
        if let Ok(v) = value.cast::<PyTensor>() {
            return wrap(py, elementwise::masked_fill_tensor(&self.t, &m, &v.get().t).py()?);
        }
        let v = operand(value)?.item_f64().py()?;
        wrap(py, elementwise::masked_fill(&self.t, &m, v).py()?)
    }
    /// In-place ``masked_fill``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.masked_fill_.html
    fn masked_fill_(slf: &Bound<'_, Self>, mask: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> R {
        let m = tensor_arg(mask)?;
        let mask_read = [&m];
        if let Ok(v) = value.cast::<PyTensor>() {
            let v = v.get().t.clone();
            return in_place_op_reading(slf, masked_fill_reads(&mask_read), "masked_fill_", |t| {
                elementwise::masked_fill_tensor_inplace(t, &m, &v)
            });
        }
        let v = operand(value)?.item_f64().py()?;
        in_place_op_reading(slf, masked_fill_reads(&mask_read), "masked_fill_", |t| {
            elementwise::masked_fill_inplace(t, &m, v)
        })
    }
    /// Element-wise largest integer not above x (floor); returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.floor.html
    fn floor(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Floor).py()?)
    }
    /// Element-wise smallest integer not below x (ceiling); returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.ceil.html
    fn ceil(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Ceil).py()?)
    }
    /// Rounds to the nearest integer (halves to even), or to ``decimals`` decimal places.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.round.html
    #[pyo3(signature = (*, decimals=0))]
    fn round(&self, py: Python<'_>, decimals: i64) -> R {
        if decimals != 0 {
            let scale = Tensor::wrapped_scalar(10f64.powi(decimals as i32));
            let scaled = rustgrad_core::ops::arith::mul(&self.t, &scale).py()?;
            let r = unary::unary(&scaled, Unary::Round).py()?;
            return wrap(py, rustgrad_core::ops::arith::div(&r, &scale).py()?);
        }
        wrap(py, unary::unary(&self.t, Unary::Round).py()?)
    }
    /// Element-wise Gauss error function; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.erf.html
    fn erf(&self, py: Python<'_>) -> R {
        wrap(py, unary::erf(&self.t).py()?)
    }
    /// Softmax along ``dim``: ``exp(x)`` normalised to sum to one.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.softmax.html
    #[pyo3(signature = (dim, dtype=None))]
    fn softmax(&self, py: Python<'_>, dim: i64, dtype: Option<&Bound<'_, PyAny>>) -> R {
        let x = match dtype_arg(dtype)? {
            Some(d) => view::to_dtype(&self.t, d).py()?,
            None => self.t.clone(),
        };
        wrap(py, softmax::softmax(&x, dim).py()?)
    }
    /// Logarithm of the softmax along ``dim``, computed stably.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.log_softmax.html
    #[pyo3(signature = (dim, dtype=None))]
    fn log_softmax(&self, py: Python<'_>, dim: i64, dtype: Option<&Bound<'_, PyAny>>) -> R {
        let x = match dtype_arg(dtype)? {
            Some(d) => view::to_dtype(&self.t, d).py()?,
            None => self.t.clone(),
        };
        wrap(py, softmax::log_softmax(&x, dim).py()?)
    }
    /// ``log(sum(exp(x)))`` along ``dim``, computed stably.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.logsumexp.html
    #[pyo3(signature = (dim, keepdim=false))]
    fn logsumexp(&self, py: Python<'_>, dim: &Bound<'_, PyAny>, keepdim: bool) -> R {
        let dims = crate::convert::dims_arg_of(Some(dim), "logsumexp", "dim")?.unwrap_or_default();
        wrap(py, softmax::logsumexp(&self.t, &dims, keepdim).py()?)
    }
    /// Variance overall or along ``dim``; ``correction`` (default 1, Bessel's) or the legacy ``unbiased`` flag sets the divisor N - correction.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.var.html
    #[pyo3(signature = (dim=None, unbiased=None, keepdim=false, *, correction=None))]
    fn var(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        unbiased: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        correction: Option<&Bound<'_, PyAny>>,
    ) -> R {
        wrap(py, variance(&self.t, dim, unbiased, keepdim, correction, false)?)
    }
    /// Standard deviation overall or along ``dim``; ``correction``/``unbiased`` as in ``var``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.std.html
    #[pyo3(signature = (dim=None, unbiased=None, keepdim=false, *, correction=None))]
    fn std(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        unbiased: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        correction: Option<&Bound<'_, PyAny>>,
    ) -> R {
        wrap(py, variance(&self.t, dim, unbiased, keepdim, correction, true)?)
    }
    /// Product of all elements, or over ``dim``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.prod.html
    #[pyo3(signature = (dim=None, keepdim=false, *, dtype=None))]
    fn prod(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool, dtype: Option<&Bound<'_, PyAny>>) -> R {
        let dtype = dtype_arg(dtype)?;
        if rustgrad_core::autocast::cpu_dtype().is_some() {
            // On CPU autocast's float32 list (the input is cast even when a dtype is asked for).
            let x = rustgrad_core::autocast::cast_fp32(&self.t).py()?;
            return wrap(py, moments::prod(&x, dim, keepdim, dtype).py()?);
        }
        wrap(py, moments::prod(&self.t, dim, keepdim, dtype).py()?)
    }
    /// Cumulative sum along ``dim``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.cumsum.html
    #[pyo3(signature = (dim, *, dtype=None))]
    fn cumsum(&self, py: Python<'_>, dim: i64, dtype: Option<&Bound<'_, PyAny>>) -> R {
        wrap(py, moments::cumsum(&self.t, dim, dtype_arg(dtype)?, false).py()?)
    }
    /// Index of the largest element (of the flattened tensor, or along ``dim``).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.argmax.html
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn argmax(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool) -> R {
        wrap(py, moments::argextreme(&self.t, dim, keepdim, true).py()?)
    }
    /// Index of the smallest element (of the flattened tensor, or along ``dim``).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.argmin.html
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn argmin(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool) -> R {
        wrap(py, moments::argextreme(&self.t, dim, keepdim, false).py()?)
    }
    /// Picks values along ``dim`` at the positions given by the int64 ``index`` tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.gather.html
    fn gather(&self, py: Python<'_>, dim: i64, index: &Bound<'_, PyAny>) -> R {
        wrap(py, gather::gather(&self.t, dim, &tensor_arg(index)?).py()?)
    }
    /// A copy with ``src`` values (or ``value``) written along ``dim`` at ``index`` positions.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.scatter.html
    #[pyo3(signature = (dim, index, src=None, *, value=None))]
    fn scatter(
        &self,
        py: Python<'_>,
        dim: i64,
        index: &Bound<'_, PyAny>,
        src: Option<&Bound<'_, PyAny>>,
        value: Option<&Bound<'_, PyAny>>,
    ) -> R {
        let s = scatter_source(&self.t, src, value)?;
        wrap(py, gather::scatter(&self.t, dim, &tensor_arg(index)?, &s, false).py()?)
    }
    /// A copy with ``src`` values added along ``dim`` at ``index`` positions.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.scatter_add.html
    fn scatter_add(&self, py: Python<'_>, dim: i64, index: &Bound<'_, PyAny>, src: &Bound<'_, PyAny>) -> R {
        wrap(py, gather::scatter(&self.t, dim, &tensor_arg(index)?, &tensor_arg(src)?, true).py()?)
    }
    /// In-place ``scatter``: writes ``src`` (or ``value``) along ``dim`` at ``index``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.scatter_.html
    #[pyo3(signature = (dim, index, src=None, *, value=None))]
    fn scatter_(
        slf: &Bound<'_, Self>,
        dim: i64,
        index: &Bound<'_, PyAny>,
        src: Option<&Bound<'_, PyAny>>,
        value: Option<&Bound<'_, PyAny>>,
    ) -> R {
        let s = scatter_source(&slf.get().t, src, value)?;
        let index = tensor_arg(index)?;
        let disjoint: Vec<&Tensor> = if s.is_wrapped_number() { vec![&index] } else { vec![&index, &s] };
        let reads = Reads { operands: &[], disjoint: &disjoint, internal: Internal::Refuse };
        in_place_op_reading(slf, reads, "scatter_", |t| gather::scatter(t, dim, &index, &s, false))
    }
    /// In-place ``scatter_add``: adds ``src`` along ``dim`` at ``index``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.scatter_add_.html
    fn scatter_add_(slf: &Bound<'_, Self>, dim: i64, index: &Bound<'_, PyAny>, src: &Bound<'_, PyAny>) -> R {
        let (index, src) = (tensor_arg(index)?, tensor_arg(src)?);
        let disjoint = [&index, &src];
        let reads = Reads { operands: &[], disjoint: &disjoint, internal: Internal::Refuse };
        in_place_op_reading(slf, reads, "scatter_add_", |t| gather::scatter(t, dim, &index, &src, true))
    }
    /// The entries along ``dim`` at the positions in the 1-d ``index`` tensor (a copy).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.index_select.html
    fn index_select(&self, py: Python<'_>, dim: i64, index: &Bound<'_, PyAny>) -> R {
        let ix = tensor_arg(index)?;
        let nd = self.t.ndim();
        let d = rustgrad_core::shape::wrap_dim(dim, nd.max(1)).py()?;
        wrap(py, gather::index_select(&self.t, d, &ix).py()?)
    }
    /// A copy with ``values`` written at ``indices`` (a tuple of index tensors); ``accumulate`` adds instead.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.index_put.html
    #[pyo3(signature = (indices, values, accumulate=false))]
    fn index_put(&self, py: Python<'_>, indices: &Bound<'_, PyAny>, values: &Bound<'_, PyAny>, accumulate: bool) -> R {
        let (list, v) = index_put_args("index_put", indices, values)?;
        refuse_no_indices(&self.t, &list, &v)?;
        wrap(py, gather::index_put(&self.t, &list, &v, accumulate).py()?)
    }
    /// In-place ``index_put``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.index_put_.html
    #[pyo3(signature = (indices, values, accumulate=false))]
    fn index_put_(slf: &Bound<'_, Self>, indices: &Bound<'_, PyAny>, values: &Bound<'_, PyAny>, accumulate: bool) -> R {
        let (list, v) = index_put_args("index_put_", indices, values)?;
        refuse_no_indices(&slf.get().t, &list, &v)?;
        let (operands, disjoint) = if accumulate {
            // Accumulating never takes the masked_fill_ route.
            (Vec::new(), std::iter::once(&v).chain(list.iter().flatten()).collect())
        } else {
            crate::tensor::index_put_reads(&list, &v)
        };
        let reads = Reads { operands: &operands, disjoint: &disjoint, internal: Internal::Warn("index_put_") };
        in_place_op_reading(slf, reads, "index_put_", |t| gather::index_put(t, &list, &v, accumulate))
    }
    /// Indices of the non-zero elements, one row per element (shape N x ndim).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.nonzero.html
    fn nonzero(&self, py: Python<'_>) -> R {
        wrap(py, gather::nonzero(&self.t).py()?)
    }
    /// Splits along ``dim`` into chunks of ``split_size`` (an int) or of the listed sizes; views.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.split.html
    #[pyo3(signature = (split_size, dim=0))]
    fn split(&self, py: Python<'_>, split_size: &Bound<'_, PyAny>, dim: i64) -> PyResult<Py<PyTuple>> {
        split_impl(py, &self.t, split_size, dim)
    }
    /// Splits along ``dim`` into ``chunks`` nearly equal pieces; views.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.chunk.html
    #[pyo3(signature = (chunks, dim=0))]
    fn chunk(&self, py: Python<'_>, chunks: i64, dim: i64) -> PyResult<Py<PyTuple>> {
        chunk_impl(py, &self.t, chunks, dim)
    }
    /// The slices along ``dim`` as a tuple of tensors with that dim removed.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.unbind.html
    #[pyo3(signature = (dim=0))]
    fn unbind(&self, py: Python<'_>, dim: i64) -> PyResult<Py<PyTuple>> {
        tensors_out(py, join::unbind(&self.t, dim).py()?)
    }
    /// The slice at ``index`` along ``dim``, which is removed; a view.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.select.html
    fn select(&self, py: Python<'_>, dim: i64, index: i64) -> R {
        let shp = self.t.shape();
        if let Ok(d) = rustgrad_core::shape::wrap_dim(dim, shp.len()) {
            let size = shp[d] as i64;
            if index < -size || index >= size {
                return Err(PyIndexError::new_err(format!(
                    "select(): index {index} out of range for tensor of size {} at dimension {d}",
                    rustgrad_core::shape::fmt_shape(&shp)
                )));
            }
        }
        wrap(py, rustgrad_core::ops::index::select(&self.t, dim, index).py()?)
    }
    /// The slice ``start:start+length`` along ``dim``; a view.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.narrow.html
    fn narrow(&self, py: Python<'_>, dim: i64, start: &Bound<'_, PyAny>, length: i64) -> R {
        // PyTorch's overload `narrow(dim, Tensor start, length)`: a tensor start must be a 0-d
        // integer tensor; anything else is an `int` argument.
        let start = match start.cast::<PyTensor>() {
            Ok(t) if t.get().t.ndim() == 0 && t.get().t.dtype() == DType::I64 => t.get().t.item_f64().py()? as i64,
            Ok(_) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err("start must be an 0-dim integral Tensor."));
            }
            Err(_) => crate::convert::int_param(start, "narrow", "start", Some(2))?,
        };
        let shp = self.t.shape();
        if shp.is_empty() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err("narrow() cannot be applied to a 0-dim tensor."));
        }
        let d = rustgrad_core::shape::wrap_dim(dim, shp.len()).py()?;
        let size = shp[d] as i64;
        if start < -size || start > size {
            return Err(PyIndexError::new_err(format!(
                "start out of range (expected to be in range of [{}, {size}], but got {start})",
                -size
            )));
        }
        let s = if start < 0 { start + size } else { start };
        if s < 0 || length < 0 || s + length > size {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "start ({start}) + length ({length}) exceeds dimension size ({size})."
            )));
        }
        wrap(py, index::slice(&self.t, dim, s as usize, (s + length) as usize, 1).py()?)
    }
    /// Tiles the tensor ``sizes[i]`` times along each dimension (copies).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.repeat.html
    #[pyo3(signature = (*sizes))]
    fn repeat(&self, py: Python<'_>, sizes: &Bound<'_, PyTuple>) -> R {
        let sizes = crate::convert::shape_arg(sizes)?;
        wrap(py, join::repeat(&self.t, &sizes).py()?)
    }
    /// Linear interpolation ``self + weight * (end - self)``.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.lerp.html
    fn lerp(&self, py: Python<'_>, end: &Bound<'_, PyAny>, weight: &Bound<'_, PyAny>) -> R {
        wrap(py, pointwise::lerp(&self.t, &tensor_arg(end)?, &operand(weight)?).py()?)
    }
    /// In-place ``lerp``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.lerp_.html
    fn lerp_(slf: &Bound<'_, Self>, end: &Bound<'_, PyAny>, weight: &Bound<'_, PyAny>) -> R {
        let (e, w) = (tensor_arg(end)?, operand(weight)?);
        in_place_op_reading(slf, Reads::operands(&[&e, &w]), "lerp_", |t| pointwise::lerp(t, &e, &w))
    }
    /// ``self + value * tensor1 * tensor2``, element-wise.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.addcmul.html
    #[pyo3(signature = (tensor1, tensor2, *, value=1.0))]
    fn addcmul(&self, py: Python<'_>, tensor1: &Bound<'_, PyAny>, tensor2: &Bound<'_, PyAny>, value: f64) -> R {
        wrap(py, pointwise::addc(&self.t, &tensor_arg(tensor1)?, &tensor_arg(tensor2)?, value, false).py()?)
    }
    /// In-place ``addcmul``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.addcmul_.html
    #[pyo3(signature = (tensor1, tensor2, *, value=1.0))]
    fn addcmul_(slf: &Bound<'_, Self>, tensor1: &Bound<'_, PyAny>, tensor2: &Bound<'_, PyAny>, value: f64) -> R {
        let (a, b) = (tensor_arg(tensor1)?, tensor_arg(tensor2)?);
        in_place_op_reading(slf, Reads::operands(&[&a, &b]), "addcmul_", |t| pointwise::addc(t, &a, &b, value, false))
    }
    /// ``self + value * tensor1 / tensor2``, element-wise.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.addcdiv.html
    #[pyo3(signature = (tensor1, tensor2, *, value=1.0))]
    fn addcdiv(&self, py: Python<'_>, tensor1: &Bound<'_, PyAny>, tensor2: &Bound<'_, PyAny>, value: f64) -> R {
        wrap(py, pointwise::addc(&self.t, &tensor_arg(tensor1)?, &tensor_arg(tensor2)?, value, true).py()?)
    }
    /// In-place ``addcdiv``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.addcdiv_.html
    #[pyo3(signature = (tensor1, tensor2, *, value=1.0))]
    fn addcdiv_(slf: &Bound<'_, Self>, tensor1: &Bound<'_, PyAny>, tensor2: &Bound<'_, PyAny>, value: f64) -> R {
        let (a, b) = (tensor_arg(tensor1)?, tensor_arg(tensor2)?);
        in_place_op_reading(slf, Reads::operands(&[&a, &b]), "addcdiv_", |t| pointwise::addc(t, &a, &b, value, true))
    }
    /// Whether every element (over `dim`, one dim or several) is nonzero.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.all.html
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn all(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> R {
        wrap(py, truth_reduce(&self.t, crate::convert::dims_arg(dim)?, keepdim, true).py()?)
    }
    /// Whether any element (over `dim`, one dim or several) is nonzero.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.any.html
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn any(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> R {
        wrap(py, truth_reduce(&self.t, crate::convert::dims_arg(dim)?, keepdim, false).py()?)
    }
    /// Element-wise test for NaN, as a bool tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.isnan.html
    fn isnan(&self, py: Python<'_>) -> R {
        wrap(py, compare(&self.t, &self.t, Compare::Ne).py()?)
    }
    /// Element-wise test for positive or negative infinity, as a bool tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.isinf.html
    fn isinf(&self, py: Python<'_>) -> R {
        // The kernel, not the op: these work for bool inputs, which have no `abs`.
        let a = Tensor::from_data(rustgrad_core::kernels::unary(&self.t.data(), Unary::Abs));
        wrap(py, compare(&a, &Tensor::wrapped_scalar(f64::INFINITY), Compare::Eq).py()?)
    }
    /// Element-wise test for finite values (not NaN, not infinite), as a bool tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.isfinite.html
    fn isfinite(&self, py: Python<'_>) -> R {
        let a = Tensor::from_data(rustgrad_core::kernels::unary(&self.t.data(), Unary::Abs));
        // |x| < inf is false for inf and NaN alike.
        wrap(py, compare(&a, &Tensor::wrapped_scalar(f64::INFINITY), Compare::Lt).py()?)
    }
    /// True when both tensors have the same shape and equal values.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.equal.html
    fn equal(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let o = tensor_arg(other)?;
        if o.shape() != self.t.shape() {
            return Ok(false);
        }
        let same = compare(&self.t.detach(), &o.detach(), Compare::Eq).py()?;
        Ok(same.to_vec::<bool>().iter().all(|&b| b))
    }
    /// Fills `self` with uniform samples in `[from_, to)` (`generator=` optional).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.uniform_.html
    #[pyo3(signature = (from_=0.0, to=1.0, *, generator=None))]
    fn uniform_(slf: &Bound<'_, Self>, from_: f64, to: f64, generator: Option<&Bound<'_, PyAny>>) -> R {
        random_fill(slf, "uniform_", Distribution::Uniform { from: from_, to }, generator)
    }
    /// Fills `self` with normal samples of mean `mean` and standard deviation `std`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.normal_.html
    #[pyo3(signature = (mean=0.0, std=1.0, *, generator=None))]
    fn normal_(slf: &Bound<'_, Self>, mean: f64, std: f64, generator: Option<&Bound<'_, PyAny>>) -> R {
        random_fill(slf, "normal_", Distribution::Normal { mean, std }, generator)
    }
    /// Fills `self` with 1 with probability `p` (a number, default 0.5, or a tensor of
    /// probabilities broadcast to `self`), 0 otherwise.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.bernoulli_.html
    #[pyo3(signature = (p=None, *, generator=None))]
    fn bernoulli_(slf: &Bound<'_, Self>, p: Option<&Bound<'_, PyAny>>, generator: Option<&Bound<'_, PyAny>>) -> R {
        if let Some(probs) = p.and_then(|p| p.cast::<PyTensor>().ok()) {
            let gen = crate::generator::resolve(generator, "bernoulli_")?;
            let (target, probs) = (slf.get().t.clone(), probs.get().t.clone());
            let drawn = std::sync::Mutex::new(None);
            return in_place_op(slf, "bernoulli_", |t| {
                rustgrad_core::ops::fill::bernoulli_tensor_filled(t, &target, &probs, &drawn, gen)
            });
        }
        let p: f64 = p.map(|p| p.extract()).transpose()?.unwrap_or(0.5);
        random_fill(slf, "bernoulli_", Distribution::Bernoulli { p }, generator)
    }
    /// `torch.bernoulli(self)`: 1 with probability `self`, elementwise (a float `p` draws with
    /// that probability instead, like `torch.bernoulli(self, p)`).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.bernoulli.html
    #[pyo3(signature = (p=None, *, generator=None))]
    fn bernoulli(
        slf: &Bound<'_, Self>,
        p: Option<&Bound<'_, PyAny>>,
        generator: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let gen = crate::generator::resolve(generator, "bernoulli")?;
        let py = slf.py();
        match p {
            Some(p) if !p.is_none() => {
                crate::python::call(py, "_bernoulli_scalar", (slf, p, generator)).map(|b| b.unbind())
            }
            _ => Ok(wrap(py, rustgrad_core::ops::fill::bernoulli(&slf.get().t, gen).py()?)?.into_any()),
        }
    }
    /// `torch.multinomial(self, num_samples, replacement)`: int64 category indices drawn with
    /// the weights of each row of `self`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.multinomial.html
    #[pyo3(signature = (num_samples, replacement=false, *, generator=None))]
    fn multinomial(
        &self,
        py: Python<'_>,
        num_samples: i64,
        replacement: bool,
        generator: Option<&Bound<'_, PyAny>>,
    ) -> R {
        let gen = crate::generator::resolve(generator, "multinomial")?;
        wrap(py, rustgrad_core::ops::sampling::multinomial(&self.t, num_samples, replacement, gen).py()?)
    }
    /// `random_()`, `random_(to)`, `random_(from, to)`, `random_(from, None)`: integers drawn
    /// uniformly (see `Distribution::Random`).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.random_.html
    #[pyo3(signature = (*args, **kwargs))]
    fn random_(slf: &Bound<'_, Self>, args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> R {
        let (dist, generator) = random_args(args, kwargs)?;
        random_fill(slf, "random_", dist, generator.as_ref())
    }
    /// Fills `self` with exponential samples of rate `lambd`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.exponential_.html
    #[pyo3(signature = (lambd=1.0, *, generator=None))]
    fn exponential_(slf: &Bound<'_, Self>, lambd: f64, generator: Option<&Bound<'_, PyAny>>) -> R {
        random_fill(slf, "exponential_", Distribution::Exponential { lambd }, generator)
    }
    /// Fills `self` with geometric samples: the number of Bernoulli(`p`) trials up to the first
    /// success (1, 2, ...).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.geometric_.html
    #[pyo3(signature = (p, *, generator=None))]
    fn geometric_(slf: &Bound<'_, Self>, p: f64, generator: Option<&Bound<'_, PyAny>>) -> R {
        random_fill(slf, "geometric_", Distribution::Geometric { p }, generator)
    }
    /// Fills `self` with Cauchy samples of location `median` and scale `sigma`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.cauchy_.html
    #[pyo3(signature = (median=0.0, sigma=1.0, *, generator=None))]
    fn cauchy_(slf: &Bound<'_, Self>, median: f64, sigma: f64, generator: Option<&Bound<'_, PyAny>>) -> R {
        random_fill(slf, "cauchy_", Distribution::Cauchy { median, sigma }, generator)
    }
    /// Fills `self` with `exp` of normal samples of mean `mean` and standard deviation `std`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.log_normal_.html
    #[pyo3(signature = (mean=1.0, std=2.0, *, generator=None))]
    fn log_normal_(slf: &Bound<'_, Self>, mean: f64, std: f64, generator: Option<&Bound<'_, PyAny>>) -> R {
        random_fill(slf, "log_normal_", Distribution::LogNormal { mean, std }, generator)
    }
}

/// `all` (`every`) or `any` over one dim or everything, as bool.
fn truth_reduce(x: &Tensor, dims: Option<Vec<i64>>, keepdim: bool, every: bool) -> rustgrad_core::Result<Tensor> {
    let nonzero = compare(&x.detach(), &Tensor::wrapped_scalar(0i64), Compare::Ne)?;
    if dims.as_ref().is_some_and(|d| d.is_empty()) {
        // An empty dim list reduces nothing: each element on its own.
        return Ok(nonzero);
    }
    let count = rustgrad_core::ops::reduce::sum(&nonzero, dims.as_deref(), keepdim, Some(DType::I64))?;
    if every {
        let total = match &dims {
            None => x.numel(),
            Some(ds) => {
                let mut total = 1;
                for &d in ds {
                    total *= x.shape().get(rustgrad_core::shape::wrap_dim(d, x.ndim().max(1))?).copied().unwrap_or(1);
                }
                total
            }
        };
        compare(&count, &Tensor::wrapped_scalar(total as i64), Compare::Eq)
    } else {
        compare(&count, &Tensor::wrapped_scalar(0i64), Compare::Gt)
    }
}

/// Element-wise functions beyond the basic set, and the in-place forms of all of them.
#[rustgrad_macros::guard]
#[pymethods]
impl PyTensor {
    /// Element-wise log(1 + x), accurate near zero; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.log1p.html
    fn log1p(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Log1p).py()?)
    }
    /// Element-wise exp(x) - 1, accurate near zero; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.expm1.html
    fn expm1(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Expm1).py()?)
    }
    /// Element-wise tangent; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.tan.html
    fn tan(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Tan).py()?)
    }
    /// Element-wise arcsine; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.asin.html
    fn asin(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Asin).py()?)
    }
    /// Element-wise arccosine; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.acos.html
    fn acos(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Acos).py()?)
    }
    /// Element-wise arctangent; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.atan.html
    fn atan(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Atan).py()?)
    }
    /// Element-wise hyperbolic sine; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sinh.html
    fn sinh(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Sinh).py()?)
    }
    /// Element-wise hyperbolic cosine; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.cosh.html
    fn cosh(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Cosh).py()?)
    }
    /// Element-wise reciprocal square root 1 / sqrt(x); returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.rsqrt.html
    fn rsqrt(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Rsqrt).py()?)
    }
    /// Element-wise base-2 logarithm; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.log2.html
    fn log2(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Log2).py()?)
    }
    /// Element-wise base-10 logarithm; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.log10.html
    fn log10(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Log10).py()?)
    }
    /// Element-wise power of two 2**x; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.exp2.html
    fn exp2(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Exp2).py()?)
    }
    /// Element-wise integer part, rounding toward zero; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.trunc.html
    fn trunc(&self, py: Python<'_>) -> R {
        wrap(py, unary::unary(&self.t, Unary::Trunc).py()?)
    }
    /// Element-wise square x * x; returns a new tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.square.html
    fn square(&self, py: Python<'_>) -> R {
        wrap(py, rustgrad_core::ops::pow::pow_scalar(&self.t, rustgrad_core::Scalar::Int(2)).py()?)
    }
    /// In-place ``exp``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.exp_.html
    fn exp_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "exp_", |t| unary::unary(t, Unary::Exp))
    }
    /// In-place ``log``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.log_.html
    fn log_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "log_", |t| unary::unary(t, Unary::Log))
    }
    /// In-place ``sqrt``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sqrt_.html
    fn sqrt_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "sqrt_", |t| unary::unary(t, Unary::Sqrt))
    }
    /// In-place ``abs``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.abs_.html
    fn abs_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "abs_", |t| unary::unary(t, Unary::Abs))
    }
    /// In-place ``sin``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sin_.html
    fn sin_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "sin_", |t| unary::unary(t, Unary::Sin))
    }
    /// In-place ``cos``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.cos_.html
    fn cos_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "cos_", |t| unary::unary(t, Unary::Cos))
    }
    /// In-place ``tanh``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.tanh_.html
    fn tanh_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "tanh_", |t| unary::unary(t, Unary::Tanh))
    }
    /// In-place ``sigmoid``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sigmoid_.html
    fn sigmoid_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "sigmoid_", |t| unary::unary(t, Unary::Sigmoid))
    }
    /// In-place ``neg``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.neg_.html
    fn neg_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "neg_", rustgrad_core::ops::arith::neg)
    }
    /// In-place ``reciprocal``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.reciprocal_.html
    fn reciprocal_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "reciprocal_", |t| unary::unary(t, Unary::Reciprocal))
    }
    /// In-place ``sign``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sign_.html
    fn sign_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "sign_", |t| unary::unary(t, Unary::Sign))
    }
    /// In-place ``floor``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.floor_.html
    fn floor_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "floor_", |t| unary::unary(t, Unary::Floor))
    }
    /// In-place ``ceil``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.ceil_.html
    fn ceil_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "ceil_", |t| unary::unary(t, Unary::Ceil))
    }
    /// In-place ``round``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.round_.html
    fn round_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "round_", |t| unary::unary(t, Unary::Round))
    }
    /// In-place ``erf``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.erf_.html
    fn erf_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "erf_", |t| unary::unary(t, Unary::Erf))
    }
    /// In-place ``log1p``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.log1p_.html
    fn log1p_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "log1p_", |t| unary::unary(t, Unary::Log1p))
    }
    /// In-place ``expm1``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.expm1_.html
    fn expm1_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "expm1_", |t| unary::unary(t, Unary::Expm1))
    }
    /// In-place ``tan``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.tan_.html
    fn tan_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "tan_", |t| unary::unary(t, Unary::Tan))
    }
    /// In-place ``asin``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.asin_.html
    fn asin_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "asin_", |t| unary::unary(t, Unary::Asin))
    }
    /// In-place ``acos``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.acos_.html
    fn acos_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "acos_", |t| unary::unary(t, Unary::Acos))
    }
    /// In-place ``atan``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.atan_.html
    fn atan_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "atan_", |t| unary::unary(t, Unary::Atan))
    }
    /// In-place ``sinh``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sinh_.html
    fn sinh_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "sinh_", |t| unary::unary(t, Unary::Sinh))
    }
    /// In-place ``cosh``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.cosh_.html
    fn cosh_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "cosh_", |t| unary::unary(t, Unary::Cosh))
    }
    /// In-place ``rsqrt``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.rsqrt_.html
    fn rsqrt_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "rsqrt_", |t| unary::unary(t, Unary::Rsqrt))
    }
    /// In-place ``log2``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.log2_.html
    fn log2_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "log2_", |t| unary::unary(t, Unary::Log2))
    }
    /// In-place ``log10``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.log10_.html
    fn log10_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "log10_", |t| unary::unary(t, Unary::Log10))
    }
    /// In-place ``exp2``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.exp2_.html
    fn exp2_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "exp2_", |t| unary::unary(t, Unary::Exp2))
    }
    /// In-place ``trunc``; returns self.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.trunc_.html
    fn trunc_(slf: &Bound<'_, Self>) -> R {
        in_place_op(slf, "trunc_", |t| unary::unary(t, Unary::Trunc))
    }
}

/// `var`/`std` (`root`) from PyTorch's arguments.
fn variance(
    t: &Tensor,
    dim: Option<&Bound<'_, PyAny>>,
    unbiased: Option<&Bound<'_, PyAny>>,
    keepdim: bool,
    correction: Option<&Bound<'_, PyAny>>,
    root: bool,
) -> PyResult<Tensor> {
    let (dims, unbiased) = var_args(dim, unbiased)?;
    let c = correction_arg(unbiased, correction)?;
    moments::var(t, dims.as_deref(), c, keepdim, root).py()
}

fn var_args<'py>(
    dim: Option<&Bound<'py, PyAny>>,
    unbiased: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Option<Vec<i64>>, Option<bool>)> {
    // `x.var(False)` passes `unbiased` positionally where `dim` is.
    if let Some(d) = dim {
        if d.is_instance_of::<pyo3::types::PyBool>() {
            return Ok((None, Some(d.extract()?)));
        }
    }
    let unbiased = match unbiased {
        Some(u) if !u.is_none() => Some(u.extract::<bool>()?),
        _ => None,
    };
    Ok((dims_list(dim)?, unbiased))
}

/// The arguments of `index_put`/`index_put_`, typed as PyTorch's parser types them: a tuple
/// (or list) of tensors and a tensor of values.
fn index_put_args(
    op: &str,
    indices: &Bound<'_, PyAny>,
    values: &Bound<'_, PyAny>,
) -> PyResult<(Vec<Option<Tensor>>, Tensor)> {
    let type_name = crate::convert::type_name;
    if !indices.is_instance_of::<PyTuple>() && !indices.is_instance_of::<PyList>() {
        return Err(PyTypeError::new_err(format!(
            "{op}(): argument 'indices' (position 1) must be tuple of Tensors, not {}",
            type_name(indices)
        )));
    }
    let mut list = Vec::new();
    for (i, item) in indices.try_iter()?.enumerate() {
        let item = item?;
        match item.cast::<PyTensor>() {
            Ok(t) => list.push(Some(t.get().t.clone())),
            Err(_) => {
                return Err(PyTypeError::new_err(format!(
                    "expected Tensor as element {i} in argument 0, but got {}",
                    type_name(&item)
                )))
            }
        }
    }
    let Ok(v) = values.cast::<PyTensor>() else {
        return Err(PyTypeError::new_err(format!(
            "{op}(): argument 'values' (position 2) must be Tensor, not {}",
            type_name(values)
        )));
    };
    Ok((list, v.get().t.clone()))
}

/// PyTorch's `index_put` with no index tensors fails inside its kernel: values that do not
/// broadcast get the shape-mismatch error, others one of two internal errors.
fn refuse_no_indices(base: &Tensor, list: &[Option<Tensor>], values: &Tensor) -> PyResult<()> {
    if !list.is_empty() {
        return Ok(());
    }
    let (vs, bs) = (values.shape(), base.shape());
    let message = if rustgrad_core::shape::broadcast_shapes(&vs, &bs).map_or(true, |s| s[..] != bs[..]) {
        format!(
            "shape mismatch: value tensor of shape {} cannot be broadcast to indexing result of shape {}",
            rustgrad_core::shape::fmt_shape(&vs),
            rustgrad_core::shape::fmt_shape(&bs)
        )
    } else if values.numel() <= 1 {
        "sym_strides() called on an undefined Tensor".to_string()
    } else {
        "ntensor >= 3 INTERNAL ASSERT FAILED at \"/__w/pytorch/pytorch/aten/src/ATen/native/cpu/IndexKernelUtils.h\":8, \
         please report a bug to PyTorch. "
            .to_string()
    };
    Err(pyo3::exceptions::PyRuntimeError::new_err(message))
}

fn tensor_seq(obj: &Bound<'_, PyAny>, op: &str) -> PyResult<Vec<Tensor>> {
    if obj.cast::<PyTensor>().is_ok() {
        return Err(PyTypeError::new_err(format!(
            "{op}(): argument 'tensors' (position 1) must be tuple of Tensors, not Tensor"
        )));
    }
    obj.try_iter()?.map(|i| tensor_arg(&i?)).collect()
}

/// Joins a sequence of tensors along an existing dimension ``dim`` (default 0).
///
/// https://pytorch.org/docs/stable/generated/torch.cat.html
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (tensors, dim=0))]
pub fn cat(py: Python<'_>, tensors: &Bound<'_, PyAny>, dim: i64) -> R {
    wrap(py, join::cat(&tensor_seq(tensors, "cat")?, dim).py()?)
}

/// Joins a sequence of same-shaped tensors along a new dimension ``dim`` (default 0).
///
/// https://pytorch.org/docs/stable/generated/torch.stack.html
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (tensors, dim=0))]
pub fn stack(py: Python<'_>, tensors: &Bound<'_, PyAny>, dim: i64) -> R {
    wrap(py, join::stack(&tensor_seq(tensors, "stack")?, dim).py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (input, weight, bias=None))]
pub fn _linear(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    weight: &Bound<'_, PyAny>,
    bias: Option<&Bound<'_, PyAny>>,
) -> R {
    let (mut x, mut w, mut b) = (tensor_arg(input)?, tensor_arg(weight)?, opt_tensor(bias)?);
    match b.as_mut() {
        Some(b) => rustgrad_core::autocast::lower_all(&mut [&mut x, &mut w, b]).py()?,
        None => rustgrad_core::autocast::lower_all(&mut [&mut x, &mut w]).py()?,
    }
    let work = x.numel() * w.shape().first().copied().unwrap_or(1);
    wrap(py, crate::gil::heavy(py, work, move || linalg::linear(&x, &w, b.as_ref())).py()?)
}

/// ``input + mat1 @ mat2`` for 2-d ``mat1`` and ``mat2``.
///
/// https://pytorch.org/docs/stable/generated/torch.addmm.html
#[rustgrad_macros::guard]
#[pyfunction]
pub fn addmm(py: Python<'_>, input: &Bound<'_, PyAny>, mat1: &Bound<'_, PyAny>, mat2: &Bound<'_, PyAny>) -> R {
    let [mut input, mut mat1, mut mat2] =
        crate::convert::tensor_params("addmm", [("input", input), ("mat1", mat1), ("mat2", mat2)])?;
    rustgrad_core::autocast::lower_all(&mut [&mut input, &mut mat1, &mut mat2]).py()?;
    wrap(py, linalg::addmm(&input, &mat1, &mat2).py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
pub fn _gelu(py: Python<'_>, input: &Bound<'_, PyAny>, approximate: &str) -> R {
    let tanh = match approximate {
        "none" => false,
        "tanh" => true,
        other => {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "approximate argument must be either none or tanh., got {other}"
            )))
        }
    };
    wrap(py, elementwise::gelu(&tensor_arg(input)?, tanh).py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
pub fn _div_number(py: Python<'_>, input: &Bound<'_, PyAny>, divisor: f64) -> R {
    wrap(py, rustgrad_core::ops::arith::div_number(&tensor_arg(input)?, divisor).py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
pub fn _leaky_relu(py: Python<'_>, input: &Bound<'_, PyAny>, negative_slope: f64) -> R {
    wrap(py, activation::leaky_relu(&tensor_arg(input)?, negative_slope).py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
pub fn _softplus(py: Python<'_>, input: &Bound<'_, PyAny>, beta: f64, threshold: f64) -> R {
    wrap(py, activation::softplus(&tensor_arg(input)?, beta, threshold).py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
pub fn _silu(py: Python<'_>, input: &Bound<'_, PyAny>) -> R {
    wrap(py, activation::silu(&tensor_arg(input)?).py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
pub fn _logsigmoid(py: Python<'_>, input: &Bound<'_, PyAny>) -> R {
    wrap(py, activation::logsigmoid(&tensor_arg(input)?).py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
pub fn _mse_loss(py: Python<'_>, input: &Bound<'_, PyAny>, target: &Bound<'_, PyAny>, reduction_: &str) -> R {
    wrap(py, loss::mse_loss(&tensor_arg(input)?, &tensor_arg(target)?, reduction(reduction_)?).py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (input, target, weight, reduction_, ignore_index, spatial=false))]
pub fn _nll_loss(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    reduction_: &str,
    ignore_index: i64,
    spatial: bool,
) -> R {
    let w = opt_tensor(weight)?;
    let (x, t) = (tensor_arg(input)?, tensor_arg(target)?);
    let out = loss::nll_loss(&x, &t, w.as_ref(), reduction(reduction_)?, ignore_index, spatial);
    wrap(py, out.py()?)
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (input, target, weight, reduction_))]
pub fn _binary_cross_entropy(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    reduction_: &str,
) -> R {
    let w = opt_tensor(weight)?;
    wrap(
        py,
        loss::binary_cross_entropy(&tensor_arg(input)?, &tensor_arg(target)?, w.as_ref(), reduction(reduction_)?)
            .py()?,
    )
}

#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (input, target, weight, pos_weight, reduction_))]
pub fn _binary_cross_entropy_with_logits(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    pos_weight: Option<&Bound<'_, PyAny>>,
    reduction_: &str,
) -> R {
    let (w, pw) = (opt_tensor(weight)?, opt_tensor(pos_weight)?);
    let out = loss::binary_cross_entropy_with_logits(
        &tensor_arg(input)?,
        &tensor_arg(target)?,
        w.as_ref(),
        pw.as_ref(),
        reduction(reduction_)?,
    );
    wrap(py, out.py()?)
}

/// Registers this file's module functions.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cat, m)?)?;
    m.add_function(wrap_pyfunction!(stack, m)?)?;
    m.add_function(wrap_pyfunction!(addmm, m)?)?;
    m.add_function(wrap_pyfunction!(_linear, m)?)?;
    m.add_function(wrap_pyfunction!(_gelu, m)?)?;
    m.add_function(wrap_pyfunction!(_leaky_relu, m)?)?;
    m.add_function(wrap_pyfunction!(_div_number, m)?)?;
    m.add_function(wrap_pyfunction!(_softplus, m)?)?;
    m.add_function(wrap_pyfunction!(_silu, m)?)?;
    m.add_function(wrap_pyfunction!(_logsigmoid, m)?)?;
    m.add_function(wrap_pyfunction!(_mse_loss, m)?)?;
    m.add_function(wrap_pyfunction!(_nll_loss, m)?)?;
    m.add_function(wrap_pyfunction!(_binary_cross_entropy, m)?)?;
    m.add_function(wrap_pyfunction!(_binary_cross_entropy_with_logits, m)?)?;
    Ok(())
}
