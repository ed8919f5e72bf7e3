//! Tensor methods of the rearranging and selecting ops: flip/roll, tril/triu, diagonal family,
//! trace, sort/argsort/topk, kthvalue/median/mode, cumprod/cummax/cummin, amax/amin/aminmax.

use crate::convert::{dims_arg, dtype_arg, int_param, operand_beside, tensor_arg, try_operand_beside};
use crate::errors::IntoPyResult;
use crate::python;
use crate::tensor::{in_place_reading, wrap, PyTensor};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rustgrad_core::inplace::Reads;
use rustgrad_core::ops::modulo::{self, Fused};
use rustgrad_core::ops::{shaped, sorting};
use rustgrad_core::Tensor;

type R = PyResult<Py<PyTensor>>;

/// `torch.return_types.<name>(values, indices)` of a core result pair.
fn named_pair(py: Python<'_>, name: &str, pair: (Tensor, Tensor)) -> PyResult<Py<PyAny>> {
    python::return_types(py, name, wrap(py, pair.0)?, wrap(py, pair.1)?)
}

/// Dims given as separate ints (`x.flip(0, 1)`) or as one sequence (`x.flip((0, 1))`).
fn varargs_dims(args: &Bound<'_, PyTuple>, kw: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<i64>> {
    if let Some(k) = kw {
        return Ok(crate::convert::dims_arg_of(Some(k), "flip", "dims")?.unwrap_or_default());
    }
    if args.len() == 1 {
        crate::convert::dims_arg_of(Some(&args.get_item(0)?), "flip", "dims")?;
    }
    let items: Vec<Bound<'_, PyAny>> = match args.len() {
        1 if !args.get_item(0)?.is_instance_of::<pyo3::types::PyInt>() => args.get_item(0)?.extract()?,
        _ => args.iter().collect(),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, a)| {
            crate::convert::int64_arg(a).map_err(|e| {
                if e.is_instance_of::<pyo3::exceptions::PyValueError>(a.py()) {
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "flip(): argument 'dims' failed to unpack the object at pos {} with error \"Overflow when unpacking long long\"",
                        i + 1
                    ))
                } else {
                    e
                }
            })
        })
        .collect()
}

/// Calls `rustgrad._ops.<name>(*args, **kwargs)` (ops written in Python over other ops).
fn composite<'py>(
    py: Python<'py>,
    name: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Py<PyAny>> {
    Ok(py.import("rustgrad._ops")?.getattr(name)?.call(args, kwargs)?.unbind())
}

/// `out` recorded as the result of an op on `input` that has no derivative (`kind`: "unique" or
/// "unique_dim"): its backward raises PyTorch's error.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _no_derivative(py: Python<'_>, out: &Bound<'_, PyTensor>, input: &Bound<'_, PyTensor>, kind: &str) -> R {
    let kind = if kind == "unique_dim" { modulo::NoDerivative::UniqueDim } else { modulo::NoDerivative::Unique };
    wrap(py, modulo::no_derivative(out.get().t.clone(), &input.get().t, kind).py()?)
}

/// An `int` argument that may also be an integer tensor of one element (PyTorch converts it).
fn diagonal_arg(obj: &Bound<'_, PyAny>, func: &str) -> PyResult<i64> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        let t = &t.get().t;
        if t.numel() == 1 && !t.dtype().is_float() && t.dtype() != rustgrad_core::DType::Bool {
            return t.item_f64().map(|v| v as i64).py();
        }
    }
    int_param(obj, func, "diagonal", Some(1))
}

fn in_place(
    slf: &Bound<'_, PyTensor>,
    op: &'static str,
    compute: impl Fn(&Tensor) -> rustgrad_core::Result<Tensor>,
) -> R {
    in_place_reading(&slf.get().t, Reads::TARGET, op, compute)?;
    Ok(slf.clone().unbind())
}

#[rustgrad_macros::guard]
#[pymethods]
impl PyTensor {
    /// Reverses the order of elements along the given dims (`torch.flip`).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.flip.html
    #[pyo3(signature = (*dims, **kwargs))]
    fn flip(&self, py: Python<'_>, dims: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> R {
        let kw = kwargs.map(|k| k.get_item("dims")).transpose()?.flatten();
        if dims.is_empty() && kw.is_none() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "flip() missing 1 required positional arguments: \"dims\"",
            ));
        }
        wrap(py, shaped::flip(&self.t, &varargs_dims(dims, kw.as_ref())?).py()?)
    }
    /// Flips a tensor of 2 or more dims left to right (dim 1).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.fliplr.html
    fn fliplr(&self, py: Python<'_>) -> R {
        if self.t.ndim() < 2 {
            return Err(pyo3::exceptions::PyRuntimeError::new_err("Input must be >= 2-d."));
        }
        wrap(py, shaped::flip(&self.t, &[1]).py()?)
    }
    /// Flips a tensor up to down (dim 0).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.flipud.html
    fn flipud(&self, py: Python<'_>) -> R {
        if self.t.ndim() < 1 {
            return Err(pyo3::exceptions::PyRuntimeError::new_err("Input must be >= 1-d."));
        }
        wrap(py, shaped::flip(&self.t, &[0]).py()?)
    }
    /// Shifts elements cyclically along `dims` (over the flattened tensor when `dims` is None).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.roll.html
    #[pyo3(signature = (shifts, dims=None))]
    fn roll(&self, py: Python<'_>, shifts: &Bound<'_, PyAny>, dims: Option<&Bound<'_, PyAny>>) -> R {
        let shifts = dims_arg(Some(shifts))?.unwrap_or_default();
        let dims = dims_arg(dims)?.unwrap_or_default();
        wrap(py, shaped::roll(&self.t, &shifts, &dims).py()?)
    }
    /// The lower triangle of the last two dims (elements above the `diagonal`-th diagonal zeroed).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.tril.html
    #[pyo3(signature = (diagonal=None))]
    fn tril(&self, py: Python<'_>, diagonal: Option<&Bound<'_, PyAny>>) -> R {
        let k = diagonal.map(|d| diagonal_arg(d, "tril")).transpose()?.unwrap_or(0);
        wrap(py, shaped::triangle(&self.t, k, false).py()?)
    }
    /// The upper triangle of the last two dims (elements below the `diagonal`-th diagonal zeroed).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.triu.html
    #[pyo3(signature = (diagonal=None))]
    fn triu(&self, py: Python<'_>, diagonal: Option<&Bound<'_, PyAny>>) -> R {
        let k = diagonal.map(|d| diagonal_arg(d, "triu")).transpose()?.unwrap_or(0);
        wrap(py, shaped::triangle(&self.t, k, true).py()?)
    }
    /// In-place `tril`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.tril_.html
    #[pyo3(signature = (diagonal=None))]
    fn tril_(slf: &Bound<'_, Self>, diagonal: Option<&Bound<'_, PyAny>>) -> R {
        let k = diagonal.map(|d| diagonal_arg(d, "tril_")).transpose()?.unwrap_or(0);
        in_place(slf, "tril_", |t| shaped::triangle(t, k, false))
    }
    /// In-place `triu`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.triu_.html
    #[pyo3(signature = (diagonal=None))]
    fn triu_(slf: &Bound<'_, Self>, diagonal: Option<&Bound<'_, PyAny>>) -> R {
        let k = diagonal.map(|d| diagonal_arg(d, "triu_")).transpose()?.unwrap_or(0);
        in_place(slf, "triu_", |t| shaped::triangle(t, k, true))
    }
    /// A view of the diagonal `offset` over `dim1`, `dim2`, which becomes the last dim.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.diagonal.html
    #[pyo3(signature = (offset=0, dim1=0, dim2=1))]
    fn diagonal(&self, py: Python<'_>, offset: i64, dim1: i64, dim2: i64) -> R {
        wrap(py, shaped::diagonal(&self.t, offset, dim1, dim2, false).py()?)
    }
    /// A matrix with this vector on its `diagonal`-th diagonal, or the diagonal of this matrix.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.diag.html
    #[pyo3(signature = (diagonal=0))]
    fn diag(&self, py: Python<'_>, diagonal: i64) -> R {
        wrap(py, shaped::diag(&self.t, diagonal).py()?)
    }
    /// Matrices (over `dim1`, `dim2`) with the last dim of this tensor on their diagonal `offset`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.diag_embed.html
    #[pyo3(signature = (offset=0, dim1=-2, dim2=-1))]
    fn diag_embed(&self, py: Python<'_>, offset: i64, dim1: i64, dim2: i64) -> R {
        wrap(py, shaped::diag_embed(&self.t, offset, dim1, dim2).py()?)
    }
    /// The sum of the main diagonal of a matrix.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.trace.html
    fn trace(&self, py: Python<'_>) -> R {
        wrap(py, shaped::trace(&self.t).py()?)
    }
    /// Sorts along `dim`: `torch.return_types.sort(values, indices)`; NaN is largest; `stable=True` keeps ties in their order.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.sort.html
    #[pyo3(signature = (dim=-1, descending=false, *, stable=false))]
    fn sort(&self, py: Python<'_>, dim: i64, descending: bool, stable: bool) -> PyResult<Py<PyAny>> {
        named_pair(py, "sort", sorting::sort(&self.t, dim, descending, stable).py()?)
    }
    /// The indices that sort the tensor along `dim`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.argsort.html
    #[pyo3(signature = (dim=-1, descending=false, *, stable=false))]
    fn argsort(&self, py: Python<'_>, dim: i64, descending: bool, stable: bool) -> R {
        wrap(py, sorting::sort(&self.t.detach(), dim, descending, stable).py()?.1)
    }
    /// The `k` largest (or smallest) values along `dim` and their indices.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.topk.html
    #[pyo3(signature = (k, dim=-1, largest=true, sorted=true))]
    fn topk(&self, py: Python<'_>, k: i64, dim: i64, largest: bool, sorted: bool) -> PyResult<Py<PyAny>> {
        named_pair(py, "topk", sorting::topk(&self.t, k, dim, largest, sorted).py()?)
    }
    /// The `k`-th smallest value along `dim` and its index.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.kthvalue.html
    #[pyo3(signature = (k, dim=-1, keepdim=false))]
    fn kthvalue(&self, py: Python<'_>, k: i64, dim: i64, keepdim: bool) -> PyResult<Py<PyAny>> {
        named_pair(py, "kthvalue", sorting::kthvalue(&self.t, k, dim, keepdim).py()?)
    }
    /// The lower median of all elements, or along `dim` (values, indices).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.median.html
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn median(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool) -> PyResult<Py<PyAny>> {
        match dim {
            None => Ok(wrap(py, sorting::median_all(&self.t).py()?)?.into_any()),
            Some(d) => named_pair(py, "median", sorting::median_dim(&self.t, d, keepdim).py()?),
        }
    }
    /// The most frequent value along `dim` (the smallest of equally frequent ones) and its last index.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.mode.html
    #[pyo3(signature = (dim=-1, keepdim=false))]
    fn mode(&self, py: Python<'_>, dim: i64, keepdim: bool) -> PyResult<Py<PyAny>> {
        named_pair(py, "mode", sorting::mode(&self.t, dim, keepdim).py()?)
    }
    /// Running products along `dim`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.cumprod.html
    #[pyo3(signature = (dim, *, dtype=None))]
    fn cumprod(&self, py: Python<'_>, dim: i64, dtype: Option<&Bound<'_, PyAny>>) -> R {
        wrap(py, sorting::cumprod(&self.t, dim, dtype_arg(dtype)?).py()?)
    }
    /// Running maxima along `dim` and their indices.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.cummax.html
    fn cummax(&self, py: Python<'_>, dim: i64) -> PyResult<Py<PyAny>> {
        named_pair(py, "cummax", sorting::cumextreme(&self.t, dim, true).py()?)
    }
    /// Running minima along `dim` and their indices.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.cummin.html
    fn cummin(&self, py: Python<'_>, dim: i64) -> PyResult<Py<PyAny>> {
        named_pair(py, "cummin", sorting::cumextreme(&self.t, dim, false).py()?)
    }
    /// The maximum over `dim` (all dims when None); the gradient is shared evenly by ties.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.amax.html
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn amax(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> R {
        let dims = crate::convert::dims_arg_of(dim, "amax", "dim")?.unwrap_or_default();
        wrap(py, sorting::amax(&self.t, &dims, keepdim, true).py()?)
    }
    /// The minimum over `dim` (all dims when None); the gradient is shared evenly by ties.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.amin.html
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn amin(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> R {
        let dims = crate::convert::dims_arg_of(dim, "amin", "dim")?.unwrap_or_default();
        wrap(py, sorting::amax(&self.t, &dims, keepdim, false).py()?)
    }
    /// `torch.return_types.aminmax(min, max)` over `dim` or over all elements.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.aminmax.html
    #[pyo3(signature = (*, dim=None, keepdim=false))]
    fn aminmax(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool) -> PyResult<Py<PyAny>> {
        let (lo, hi) = sorting::aminmax(&self.t, dim, keepdim).py()?;
        python::return_types(py, "aminmax", wrap(py, lo)?, wrap(py, hi)?)
    }
    /// A tensor of zeros with this tensor's dtype (unless `dtype=` is given).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.new_zeros.html
    #[pyo3(signature = (*size, **kwargs))]
    fn new_zeros(
        slf: &Bound<'_, Self>,
        size: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        new_factory(slf, "zeros", size, kwargs)
    }
    /// A tensor of ones with this tensor's dtype (unless `dtype=` is given).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.new_ones.html
    #[pyo3(signature = (*size, **kwargs))]
    fn new_ones(
        slf: &Bound<'_, Self>,
        size: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        new_factory(slf, "ones", size, kwargs)
    }
    /// An uninitialised tensor (here zeros) with this tensor's dtype (unless `dtype=` is given).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.new_empty.html
    #[pyo3(signature = (*size, **kwargs))]
    fn new_empty(
        slf: &Bound<'_, Self>,
        size: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        new_factory(slf, "empty", size, kwargs)
    }
    /// A tensor filled with `fill_value`, with this tensor's dtype (unless `dtype=` is given).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.new_full.html
    #[pyo3(signature = (*args, **kwargs))]
    fn new_full(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        new_factory(slf, "full", args, kwargs)
    }
    /// A new tensor from `data`, with this tensor's dtype (unless `dtype=` is given).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.new_tensor.html
    #[pyo3(signature = (*args, **kwargs))]
    fn new_tensor(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        new_factory(slf, "tensor", args, kwargs)
    }
    /// Repeats the tensor `dims` times per dim (leading ones added when `dims` is shorter).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.tile.html
    #[pyo3(signature = (*dims))]
    fn tile(slf: &Bound<'_, Self>, dims: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        composite(slf.py(), "tile", (slf, dims), None)
    }
    /// The outer product with the vector `vec2`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.outer.html
    fn outer(slf: &Bound<'_, Self>, vec2: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        composite(slf.py(), "outer", (slf, vec2), None)
    }
    /// Alias of `outer`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.ger.html
    fn ger(slf: &Bound<'_, Self>, vec2: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        composite(slf.py(), "outer", (slf, vec2), None)
    }
    /// The number of non-zero elements over `dim` (all when None).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.count_nonzero.html
    #[pyo3(signature = (dim=None))]
    fn count_nonzero(slf: &Bound<'_, Self>, dim: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        composite(slf.py(), "count_nonzero", (slf, dim), None)
    }
    /// Element-wise `|self - other| <= atol + rtol * |other|`, as a bool tensor.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.isclose.html
    #[pyo3(signature = (other, rtol=1e-05, atol=1e-08, equal_nan=false))]
    fn isclose(
        slf: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        rtol: f64,
        atol: f64,
        equal_nan: bool,
    ) -> PyResult<Py<PyAny>> {
        composite(slf.py(), "isclose", (slf, other, rtol, atol, equal_nan), None)
    }
    /// The remainder of the division, with the sign of the dividend (C's `fmod`).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.fmod.html
    fn fmod(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, modulo::fmod(&self.t, &operand_beside(other, &self.t, false)?, false).py()?)
    }
    /// The remainder of the division, with the sign of the divisor (Python's `%`).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.remainder.html
    fn remainder(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> R {
        wrap(py, modulo::fmod(&self.t, &operand_beside(other, &self.t, false)?, true).py()?)
    }
    /// In-place `fmod`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.fmod_.html
    fn fmod_(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> R {
        let o = operand_beside(other, &slf.get().t, false)?;
        in_place_reading(&slf.get().t, Reads::operands(&[&o]), "fmod_", |t| modulo::fmod(t, &o, false))?;
        Ok(slf.clone().unbind())
    }
    /// In-place `remainder`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.remainder_.html
    fn remainder_(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> R {
        let o = operand_beside(other, &slf.get().t, false)?;
        in_place_reading(&slf.get().t, Reads::operands(&[&o]), "remainder_", |t| modulo::fmod(t, &o, true))?;
        Ok(slf.clone().unbind())
    }
    fn __mod__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match try_operand_beside(other, &self.t, false)? {
            Some(o) => Ok(wrap(py, modulo::fmod(&self.t, &o, true).py()?)?.into_any()),
            None => Ok(py.NotImplemented()),
        }
    }
    fn __rmod__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match try_operand_beside(other, &self.t, false)? {
            Some(o) => Ok(wrap(py, modulo::fmod(&o, &self.t, true).py()?)?.into_any()),
            None => Ok(py.NotImplemented()),
        }
    }
    fn __imod__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        let o = operand_beside(other, &self.t, false)?;
        in_place_reading(&self.t, Reads::operands(&[&o]), "remainder_", |t| modulo::fmod(t, &o, true))
    }
    /// NaN and infinities replaced (by default with 0 and the dtype's largest finite values).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.nan_to_num.html
    #[pyo3(signature = (nan=0.0, posinf=None, neginf=None))]
    fn nan_to_num(&self, py: Python<'_>, nan: f64, posinf: Option<f64>, neginf: Option<f64>) -> R {
        wrap(py, modulo::nan_to_num(&self.t, nan, posinf, neginf).py()?)
    }
    /// In-place `nan_to_num`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.nan_to_num_.html
    #[pyo3(signature = (nan=0.0, posinf=None, neginf=None))]
    fn nan_to_num_(slf: &Bound<'_, Self>, nan: f64, posinf: Option<f64>, neginf: Option<f64>) -> R {
        in_place(slf, "nan_to_num_", |t| modulo::nan_to_num(t, nan, posinf, neginf))
    }
    /// In-place `clip` (alias of `clamp_`).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.clip_.html
    #[pyo3(signature = (min=None, max=None))]
    fn clip_(
        slf: &Bound<'_, Self>,
        min: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        Ok(slf.call_method1("clamp_", (min, max))?.unbind())
    }
    /// `beta * self + alpha * (mat @ vec)`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.addmv.html
    #[pyo3(signature = (mat, vec, *, beta=1.0, alpha=1.0))]
    fn addmv(&self, py: Python<'_>, mat: &Bound<'_, PyAny>, vec: &Bound<'_, PyAny>, beta: f64, alpha: f64) -> R {
        wrap(py, modulo::fused(Fused::Addmv, &self.t, &tensor_arg(mat)?, &tensor_arg(vec)?, beta, alpha).py()?)
    }
    /// `beta * self + alpha * outer(vec1, vec2)`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.addr.html
    #[pyo3(signature = (vec1, vec2, *, beta=1.0, alpha=1.0))]
    fn addr(&self, py: Python<'_>, vec1: &Bound<'_, PyAny>, vec2: &Bound<'_, PyAny>, beta: f64, alpha: f64) -> R {
        wrap(py, modulo::fused(Fused::Addr, &self.t, &tensor_arg(vec1)?, &tensor_arg(vec2)?, beta, alpha).py()?)
    }
    /// `beta * self + alpha * bmm(batch1, batch2)`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.baddbmm.html
    #[pyo3(signature = (batch1, batch2, *, beta=1.0, alpha=1.0))]
    fn baddbmm(
        &self,
        py: Python<'_>,
        batch1: &Bound<'_, PyAny>,
        batch2: &Bound<'_, PyAny>,
        beta: f64,
        alpha: f64,
    ) -> R {
        let (mut input, mut a, mut b) = (self.t.clone(), tensor_arg(batch1)?, tensor_arg(batch2)?);
        rustgrad_core::autocast::lower_all(&mut [&mut input, &mut a, &mut b]).py()?;
        wrap(py, modulo::fused(Fused::Baddbmm, &input, &a, &b, beta, alpha).py()?)
    }
    /// In-place `addmv`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.addmv_.html
    #[pyo3(signature = (mat, vec, *, beta=1.0, alpha=1.0))]
    fn addmv_(slf: &Bound<'_, Self>, mat: &Bound<'_, PyAny>, vec: &Bound<'_, PyAny>, beta: f64, alpha: f64) -> R {
        let (a, b) = (tensor_arg(mat)?, tensor_arg(vec)?);
        in_place_reading(&slf.get().t, Reads::operands(&[&a, &b]), "addmv_", |t| {
            modulo::fused(Fused::Addmv, t, &a, &b, beta, alpha)
        })?;
        Ok(slf.clone().unbind())
    }
    /// In-place `addr`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.addr_.html
    #[pyo3(signature = (vec1, vec2, *, beta=1.0, alpha=1.0))]
    fn addr_(slf: &Bound<'_, Self>, vec1: &Bound<'_, PyAny>, vec2: &Bound<'_, PyAny>, beta: f64, alpha: f64) -> R {
        let (a, b) = (tensor_arg(vec1)?, tensor_arg(vec2)?);
        in_place_reading(&slf.get().t, Reads::operands(&[&a, &b]), "addr_", |t| {
            modulo::fused(Fused::Addr, t, &a, &b, beta, alpha)
        })?;
        Ok(slf.clone().unbind())
    }
    /// In-place `baddbmm`.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.baddbmm_.html
    #[pyo3(signature = (batch1, batch2, *, beta=1.0, alpha=1.0))]
    fn baddbmm_(
        slf: &Bound<'_, Self>,
        batch1: &Bound<'_, PyAny>,
        batch2: &Bound<'_, PyAny>,
        beta: f64,
        alpha: f64,
    ) -> R {
        let (a, b) = (tensor_arg(batch1)?, tensor_arg(batch2)?);
        in_place_reading(&slf.get().t, Reads::operands(&[&a, &b]), "baddbmm_", |t| {
            modulo::fused(Fused::Baddbmm, t, &a, &b, beta, alpha)
        })?;
        Ok(slf.clone().unbind())
    }
    /// A histogram of `bins` equal bins over `[min, max]` (the data's range when both are 0).
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.histc.html
    #[pyo3(signature = (bins=100, min=0.0, max=0.0))]
    fn histc(slf: &Bound<'_, Self>, bins: i64, min: f64, max: f64) -> PyResult<Py<PyAny>> {
        composite(slf.py(), "histc", (slf, bins, min, max), None)
    }
    /// The sorted distinct values, with the inverse indices and counts when asked for.
    ///
    /// https://pytorch.org/docs/stable/generated/torch.Tensor.unique.html
    #[pyo3(signature = (sorted=true, return_inverse=false, return_counts=false, dim=None))]
    fn unique(
        slf: &Bound<'_, Self>,
        sorted: bool,
        return_inverse: bool,
        return_counts: bool,
        dim: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        composite(slf.py(), "unique", (slf, sorted, return_inverse, return_counts, dim), None)
    }
}

/// `new_zeros`/`new_ones`/`new_empty`/`new_full`/`new_tensor`: the Python `new_factory` helper
/// makes a `kind` tensor with `t`'s dtype unless the keywords say otherwise.
fn new_factory(
    t: &Bound<'_, PyTensor>,
    kind: &str,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let py = t.py();
    composite(py, "new_factory", (kind, t, args, kwargs.cloned().unwrap_or_else(|| PyDict::new(py))), None)
}
