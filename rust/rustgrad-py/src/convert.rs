//! Conversions between Python objects and core values: dtypes, numbers, shapes, numpy arrays.

use crate::errors::IntoPyResult;
use crate::tensor::PyTensor;
use numpy::npyffi::{self, npy_intp, NPY_ARRAY_WRITEABLE, PY_ARRAY_API};
use numpy::{Element as NpElement, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyTuple};
use rustgrad_core::storage::Storage;
use rustgrad_core::{DType, Scalar, Tensor, TensorData};
use smallvec::SmallVec;
use std::sync::Arc;

/// `torch.float32` and friends: one interned object per dtype.
#[pyclass(name = "dtype", module = "rustgrad", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyDType {
    pub dtype: DType,
}

#[rustgrad_macros::guard]
#[pymethods]
impl PyDType {
    fn __repr__(&self) -> String {
        format!("torch.{}", self.dtype.name())
    }
    /// Whether this is a floating-point dtype.
    ///
    /// https://pytorch.org/docs/stable/tensor_attributes.html#torch.dtype
    #[getter]
    fn is_floating_point(&self) -> bool {
        self.dtype.is_float()
    }
    /// Whether this is a complex dtype (never: rustgrad has no complex dtypes).
    ///
    /// https://pytorch.org/docs/stable/tensor_attributes.html#torch.dtype
    #[getter]
    fn is_complex(&self) -> bool {
        false
    }
    /// Whether values of this dtype can be negative.
    ///
    /// https://pytorch.org/docs/stable/tensor_attributes.html#torch.dtype
    #[getter]
    fn is_signed(&self) -> bool {
        !matches!(self.dtype, DType::Bool | DType::U8)
    }
    /// The size of one element in bytes.
    ///
    /// https://pytorch.org/docs/stable/tensor_attributes.html#torch.dtype
    #[getter]
    fn itemsize(&self) -> usize {
        self.dtype.size()
    }
    fn __reduce__(&self) -> String {
        self.dtype.name().to_string()
    }
}

static DTYPES: PyOnceLock<[Py<PyDType>; 10]> = PyOnceLock::new();

/// The interned Python object of a dtype (so `x.dtype is torch.float32`), indexed by its code.
pub fn dtype_object(py: Python<'_>, dtype: DType) -> Py<PyDType> {
    let all = DTYPES.get_or_init(py, || {
        std::array::from_fn(|code| {
            Py::new(py, PyDType { dtype: DType::from_code(code as u8) }).expect("allocating a dtype object")
        })
    });
    all[dtype as usize].clone_ref(py)
}

/// Reads an optional `dtype=` argument: a dtype, or (as PyTorch allows) the Python types
/// `float`, `int` and `bool` for float64, int64 and bool.
pub fn dtype_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<DType>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => {
            if let Ok(d) = o.cast::<PyDType>() {
                return Ok(Some(d.get().dtype));
            }
            let py = o.py();
            if o.is(py.get_type::<PyFloat>()) {
                return Ok(Some(DType::F64));
            }
            if o.is(py.get_type::<PyInt>()) {
                return Ok(Some(DType::I64));
            }
            if o.is(py.get_type::<PyBool>()) {
                return Ok(Some(DType::Bool));
            }
            Err(PyTypeError::new_err(format!("argument 'dtype' must be torch.dtype, not {}", type_name(o))))
        }
    }
}

/// The name PyTorch's messages give the type of `obj` (`float`, `NoneType`, `torch.dtype`).
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    if obj.cast::<PyDType>().is_ok() {
        return "torch.dtype".to_string();
    }
    if obj.cast::<PyTensor>().is_ok() {
        return "Tensor".to_string();
    }
    if obj.cast::<crate::generator::PyGenerator>().is_ok() {
        return "torch._C.Generator".to_string();
    }
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
}

/// Note [Integer arguments]: `#[guard]` extracts every `i64` argument of the binding through
/// this function, so an int outside int64 raises PyTorch's `ValueError` rather than PyO3's
/// `OverflowError` (PyTorch's argument parser: "Overflow when unpacking long long").
///
/// A bool is refused, as PyTorch's parser refuses it for an int ("must be int, not bool").
pub fn int64_arg(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err("must be int, not bool"));
    }
    obj.extract::<i64>().map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(obj.py()) {
            PyValueError::new_err("Overflow when unpacking long long")
        } else {
            e
        }
    })
}

/// A `dim=` argument that may be one dim or several: `None`, an int, or a sequence of ints
/// (ints outside int64 raise as [`int64_arg`]).
pub fn dims_arg(dim: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<i64>>> {
    dims_arg_of(dim, "", "dim")
}

/// [`dims_arg`] naming the function and argument in PyTorch's error for a tensor that is not
/// one integer (`x.amax(torch.tensor([0, 1]))`: "amax(): argument 'dim' (position 1) must be
/// tuple of ints, not Tensor").
pub fn dims_arg_of(dim: Option<&Bound<'_, PyAny>>, func: &str, arg: &str) -> PyResult<Option<Vec<i64>>> {
    if let Some(t) = dim.and_then(|d| d.cast::<PyTensor>().ok()) {
        let t = &t.get().t;
        if t.ndim() != 0 || t.dtype().is_float() || t.dtype() == DType::Bool {
            let prefix = if func.is_empty() { String::new() } else { format!("{func}(): ") };
            return Err(PyTypeError::new_err(format!(
                "{prefix}argument '{arg}' (position 1) must be tuple of ints, not {}",
                parser_type_name(dim.expect("checked above"))
            )));
        }
    }
    match dim {
        None => Ok(None),
        Some(d) if d.is_none() => Ok(None),
        Some(d) if d.is_instance_of::<PyInt>() => Ok(Some(vec![int64_arg(d)?])),
        Some(d) => match d.extract::<i64>() {
            Ok(i) => Ok(Some(vec![i])),
            Err(_) => {
                let items: Vec<Bound<'_, PyAny>> = d.extract()?;
                Ok(Some(items.iter().map(int64_arg).collect::<PyResult<_>>()?))
            }
        },
    }
}

/// The `dim` of `sum`/`mean` (`FUNC` names the op in errors: 0 sum, 1 mean): omitted (the signature's default `ReduceDims(None)`: PyTorch's
/// all-elements overload, `SumBackward0`) or given, even as `None` (`Some` of the dims, empty
/// for `None`: the dim-list overload over every dim, `SumBackward1`), as PyTorch tells them.
pub struct ReduceDims<const FUNC: u8>(pub Option<Vec<i64>>);

impl<'a, 'py, const FUNC: u8> FromPyObject<'a, 'py> for ReduceDims<FUNC> {
    type Error = PyErr;
    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let func = if FUNC == 0 { "sum" } else { "mean" };
        Ok(ReduceDims(Some(dims_arg_of(Some(&obj.to_owned()), func, "dim")?.unwrap_or_default())))
    }
}

/// The name PyTorch's argument parser gives the type of `obj` in its messages: `Tensor` (or the
/// subclass's name), `float`, `NoneType`, `torch.dtype`, `numpy.ndarray`.
pub fn parser_type_name(obj: &Bound<'_, PyAny>) -> String {
    let ty = obj.get_type();
    let name = ty.name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into());
    if obj.cast::<PyTensor>().is_ok() {
        return name;
    }
    match ty.module().map(|m| m.to_string()).as_deref() {
        Ok("builtins") | Ok("__main__") | Err(_) => name,
        Ok(m) if m == "rustgrad" || m.starts_with("rustgrad.") => format!("torch.{name}"),
        Ok(m) => format!("{m}.{name}"),
    }
}

/// How PyTorch's argument parser shows a mismatched argument in "didn't match because": the
/// type, and for a list or tuple its items' types (`list of [int, str]`, `tuple of (int)`).
pub fn parser_detail_name(obj: &Bound<'_, PyAny>) -> String {
    let items = |seq: Vec<Bound<'_, PyAny>>| seq.iter().map(parser_type_name).collect::<Vec<_>>().join(", ");
    if let Ok(list) = obj.cast::<pyo3::types::PyList>() {
        return format!("list of [{}]", items(list.iter().collect()));
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return format!("tuple of ({})", items(tuple.iter().collect()));
    }
    parser_type_name(obj)
}

/// PyTorch's `TypeError` for a method taking `(Tensor exponent)` or `(Number exponent)`-style
/// overloads of one argument `arg` when `obj` is neither.
pub fn tensor_or_number_error(func: &str, arg: &str, obj: &Bound<'_, PyAny>) -> PyErr {
    let detail = parser_detail_name(obj);
    PyTypeError::new_err(format!(
        "{func}() received an invalid combination of arguments - got ({}), but expected one of:\n \
         * (Tensor {arg})\n      didn't match because some of the arguments have invalid types: (!{detail}!)\n \
         * (Number {arg})\n      didn't match because some of the arguments have invalid types: (!{detail}!)\n",
        parser_type_name(obj)
    ))
}

/// PyTorch's `TypeError` for an argument of the wrong type: "`fn`(): argument '`arg`' (position
/// `position`) must be `expected`, not `type`" (no position for a keyword-only argument).
fn wrong_type(obj: &Bound<'_, PyAny>, func: &str, arg: &str, position: Option<usize>, expected: &str) -> PyErr {
    let at = position.map(|p| format!(" (position {p})")).unwrap_or_default();
    PyTypeError::new_err(format!("{func}(): argument '{arg}'{at} must be {expected}, not {}", parser_type_name(obj)))
}

/// PyTorch's `Tensor` arguments `(name, object)` of `func`, in position order.
pub fn tensor_params<const N: usize>(func: &str, args: [(&str, &Bound<'_, PyAny>); N]) -> PyResult<[Tensor; N]> {
    let mut out: Vec<Tensor> = Vec::with_capacity(N);
    for (i, (name, obj)) in args.iter().enumerate() {
        match obj.cast::<PyTensor>() {
            Ok(t) => out.push(t.get().t.clone()),
            Err(_) => return Err(wrong_type(obj, func, name, Some(i + 1), "Tensor")),
        }
    }
    Ok(out.try_into().unwrap_or_else(|_| unreachable!("N tensors were pushed")))
}

/// PyTorch's `int` argument: a Python int (not a bool), a numpy integer, or a 0-d integer tensor;
/// outside int64, `ValueError: Overflow when unpacking long long`.
pub fn int_param(obj: &Bound<'_, PyAny>, func: &str, arg: &str, position: Option<usize>) -> PyResult<i64> {
    if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>() {
        return int64_arg(obj);
    }
    if let Ok(t) = obj.cast::<PyTensor>() {
        let t = &t.get().t;
        if t.ndim() == 0 && t.dtype() == DType::I64 {
            return t.item_f64().map(|v| v as i64).py();
        }
    } else if is_numpy_scalar(obj) {
        let name = obj.get_type().name()?.to_string();
        if name.starts_with("int") || name.starts_with("uint") {
            return int64_arg(&obj.call_method0("__index__")?);
        }
    }
    Err(wrong_type(obj, func, arg, position, "int"))
}

/// PyTorch's `Number` argument: a Python or numpy number (bools included) or a 0-d tensor.
pub fn number_param(obj: &Bound<'_, PyAny>, func: &str, arg: &str, position: Option<usize>) -> PyResult<f64> {
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(f.value());
    }
    if obj.is_instance_of::<PyInt>() {
        if obj.extract::<i64>().is_err() && obj.extract::<u64>().is_err() {
            return Err(PyOverflowError::new_err("int too big to convert"));
        }
        return obj.extract::<f64>();
    }
    if let Ok(t) = obj.cast::<PyTensor>() {
        let t = &t.get().t;
        if t.ndim() == 0 {
            return t.item_f64().py();
        }
    } else if is_numpy_scalar(obj) {
        return obj.extract::<f64>();
    }
    Err(wrong_type(obj, func, arg, position, "Number"))
}

/// PyTorch's `bool` argument: a Python or numpy bool, nothing else.
pub fn bool_param(obj: &Bound<'_, PyAny>, func: &str, arg: &str, position: Option<usize>) -> PyResult<bool> {
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(b.is_true());
    }
    if is_numpy_scalar(obj) && obj.get_type().name()? == "bool" {
        return obj.is_truthy();
    }
    Err(wrong_type(obj, func, arg, position, "bool"))
}

/// A numpy scalar (`numpy.float32(1)`, `numpy.int64(2)`, `numpy.bool_(True)`).
fn is_numpy_scalar(obj: &Bound<'_, PyAny>) -> bool {
    obj.get_type().module().is_ok_and(|m| m == "numpy")
}

/// A flag of `backward`/`grad` (`retain_graph=`, `create_graph=`), read as PyTorch's engine reads
/// it: through `__index__` (`True`, `1`, a one-element integer tensor), so a float, a string or a
/// dtype raises `TypeError` ("'float' object cannot be interpreted as an integer"). Absent (or
/// `None`) gives `default`. Called after the outputs and their gradients are checked, as in PyTorch.
pub fn engine_flag(obj: Option<&Bound<'_, PyAny>>, default: bool) -> PyResult<bool> {
    match obj {
        Some(o) if !o.is_none() => {
            // An unsigned byte in PyTorch's engine binding: out of range is an OverflowError.
            let v = o.extract::<i64>().map_err(|e| {
                if e.is_instance_of::<PyOverflowError>(o.py()) {
                    PyOverflowError::new_err("Python int too large to convert to C long")
                } else {
                    e
                }
            })?;
            match v {
                ..0 => Err(PyOverflowError::new_err("unsigned byte integer is less than minimum")),
                256.. => Err(PyOverflowError::new_err("unsigned byte integer is greater than maximum")),
                _ => Ok(v != 0),
            }
        }
        _ => Ok(default),
    }
}

/// [`int64_arg`] for `Option<i64>` arguments of private functions (`None` stays `None`); the
/// `#[guard]` macro's choice, unused while no private function has one.
#[allow(dead_code)]
pub fn opt_int64_arg(obj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if obj.is_none() {
        Ok(None)
    } else {
        int64_arg(obj).map(Some)
    }
}

/// A Python number as an operand, `Ok(None)` for other types; an int is read as
/// [`int_scalar`] reads it, so one too big for any integer type raises rather than failing as
/// an unsupported type (which would let `t == 2**64` fall back to Python's identity comparison).
pub fn scalar_arg(obj: &Bound<'_, PyAny>) -> PyResult<Option<Scalar>> {
    if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>() {
        return int_scalar(obj).map(Some);
    }
    Ok(scalar_of(obj))
}

/// Note [Python ints as scalars]: PyTorch reads an int given as a number argument as an int64,
/// else as a uint64 (taken here as a float: ints in [2**63, 2**64)); anything else is an
/// `OverflowError`, "int too big to convert" above and "can't convert negative int to
/// unsigned" below.
pub fn int_scalar(obj: &Bound<'_, PyAny>) -> PyResult<Scalar> {
    if let Ok(v) = obj.extract::<i64>() {
        return Ok(Scalar::Int(v));
    }
    if let Ok(v) = obj.extract::<u64>() {
        return Ok(Scalar::Float(v as f64));
    }
    Err(PyOverflowError::new_err(if obj.lt(0)? {
        "can't convert negative int to unsigned"
    } else {
        "int too big to convert"
    }))
}

/// A Python number, if `obj` is one (bool before int: `True` is an int in Python).
pub fn scalar_of(obj: &Bound<'_, PyAny>) -> Option<Scalar> {
    if obj.is_instance_of::<PyBool>() {
        return obj.extract::<bool>().ok().map(Scalar::Bool);
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(v) = obj.extract::<i64>() {
            return Some(Scalar::Int(v));
        }
        return obj.extract::<u64>().ok().map(|v| Scalar::Float(v as f64));
    }
    if obj.is_instance_of::<PyFloat>() {
        return obj.extract::<f64>().ok().map(Scalar::Float);
    }
    // numpy scalars and other number-likes
    let name = obj.get_type().name().ok()?.to_string();
    if name.starts_with("float") {
        return obj.extract::<f64>().ok().map(Scalar::Float);
    }
    if name.starts_with("int") || name.starts_with("uint") {
        return obj.extract::<i64>().ok().map(Scalar::Int);
    }
    if name == "bool_" || name == "bool" {
        return obj.extract::<bool>().ok().map(Scalar::Bool);
    }
    None
}

/// An operand of an arithmetic op: a tensor, or a number wrapped as a 0-d tensor.
pub fn operand(obj: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(t.get().t.clone());
    }
    if let Some(s) = scalar_arg(obj)? {
        return Ok(s.to_tensor());
    }
    if is_ndarray(obj) {
        return from_numpy(&obj.py().import("numpy")?.call_method1("ascontiguousarray", (obj,))?);
    }
    Err(PyTypeError::new_err(format!(
        "unsupported operand type: expected a Tensor or a number, got {}",
        obj.get_type().name()?
    )))
}

fn is_ndarray(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyUntypedArray>()
}

/// A Python int in [2**63, 2**64): PyTorch reads it as a uint64 scalar.
pub fn uint64_int(obj: &Bound<'_, PyAny>) -> Option<u64> {
    if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyBool>() || obj.extract::<i64>().is_ok() {
        return None;
    }
    obj.extract::<u64>().ok()
}

/// PyTorch's refusal to promote a uint64 scalar with a bool or int64 operand.
pub fn uint64_promotion_error(other: &str, uint64_first: bool) -> PyErr {
    let (a, b) = if uint64_first { ("UInt64", other) } else { (other, "UInt64") };
    pyo3::exceptions::PyRuntimeError::new_err(format!(
        "Promotion for uint16, uint32, uint64 types is not supported, attempted to promote {a} and {b}"
    ))
}

/// Note [uint64 operands]: the operand of a binary op beside the tensor `beside`. A Python int
/// in [2**63, 2**64) is PyTorch's uint64 scalar, converted to the op's computation dtype: it
/// wraps to int64 beside an integer tensor, stays a float beside a float tensor or when the op
/// computes in floats (`float_op`: true division), and does not promote with a bool tensor.
pub fn operand_beside(obj: &Bound<'_, PyAny>, beside: &Tensor, float_op: bool) -> PyResult<Tensor> {
    match uint64_int(obj) {
        Some(v) => uint64_operand(v, beside.dtype(), float_op),
        None => operand(obj),
    }
}

fn uint64_operand(v: u64, beside: DType, float_op: bool) -> PyResult<Tensor> {
    match beside {
        DType::Bool => Err(uint64_promotion_error("Bool", false)),
        d if d.is_float() || float_op => Ok(Scalar::Float(v as f64).to_tensor()),
        _ => Ok(Scalar::Int(v as i64).to_tensor()),
    }
}

/// [`try_operand`] read beside a tensor, as [`operand_beside`] reads it.
pub fn try_operand_beside(obj: &Bound<'_, PyAny>, beside: &Tensor, float_op: bool) -> PyResult<Option<Tensor>> {
    match uint64_int(obj) {
        Some(v) => uint64_operand(v, beside.dtype(), float_op).map(Some),
        None => try_operand(obj),
    }
}

/// Like [`operand`] but `Ok(None)` for unsupported types (binary dunders return
/// NotImplemented); an int too big for any integer type still raises.
pub fn try_operand(obj: &Bound<'_, PyAny>) -> PyResult<Option<Tensor>> {
    match operand(obj) {
        Ok(t) => Ok(Some(t)),
        Err(e) if obj.is_instance_of::<PyInt>() => Err(e),
        Err(_) => Ok(None),
    }
}

/// A tensor argument.
pub fn tensor_arg(obj: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    match obj.cast::<PyTensor>() {
        Ok(t) => Ok(t.get().t.clone()),
        Err(_) => Err(PyTypeError::new_err(format!("expected Tensor as argument, but got {}", obj.get_type().name()?))),
    }
}

/// Sizes given either as varargs (`view(2, 3)`) or as one sequence (`view((2, 3))`). None at
/// all is PyTorch's `TypeError` (`x.view()`), as is a size outside int64.
pub fn sizes_arg(args: &Bound<'_, PyTuple>) -> PyResult<SmallVec<[i64; 4]>> {
    ints_arg(args, true)
}

/// Dims given as [`sizes_arg`] takes sizes (`permute(1, 0)`), where a bool tensor is an index.
pub fn dims_varargs(args: &Bound<'_, PyTuple>) -> PyResult<SmallVec<[i64; 4]>> {
    ints_arg(args, false)
}

fn ints_arg(args: &Bound<'_, PyTuple>, sizes: bool) -> PyResult<SmallVec<[i64; 4]>> {
    if args.is_empty() {
        return Err(PyTypeError::new_err("missing 1 required positional arguments: \"size\""));
    }
    if args.len() == 1 {
        let first = args.get_item(0)?;
        if !first.is_instance_of::<PyInt>() && first.cast::<PyTensor>().is_err() {
            if let Ok(seq) = first.try_iter() {
                let items: Vec<Bound<'_, PyAny>> = seq.collect::<PyResult<_>>()?;
                return items.iter().enumerate().map(|(i, a)| size_item(a, i, sizes)).collect();
            }
        }
    }
    args.iter().enumerate().map(|(i, a)| size_item(&a, i, sizes)).collect()
}

/// PyTorch's message for a one-element bool tensor given as a size.
const BOOL_SIZE: &str = "Expected scalar.isIntegral( false) to be true, but got false.  (Could this error message be \
                         improved?  If so, please report an enhancement request to PyTorch.)";

/// One size of [`sizes_arg`], with PyTorch's messages for a wrong type or an overflow.
fn size_item(a: &Bound<'_, PyAny>, i: usize, size: bool) -> PyResult<i64> {
    if let (true, Ok(t)) = (size, a.cast::<PyTensor>()) {
        let t = &t.get().t;
        if t.dtype() == DType::Bool && t.numel() == 1 {
            return Err(PyRuntimeError::new_err(BOOL_SIZE));
        }
    }
    match a.extract::<i64>() {
        Ok(v) if !a.is_instance_of::<PyBool>() => Ok(v),
        Err(e) if e.is_instance_of::<PyOverflowError>(a.py()) => Err(PyTypeError::new_err(format!(
            "argument 'size' failed to unpack the object at pos {} with error \"Overflow when unpacking long long\"",
            i + 1
        ))),
        _ => Err(PyTypeError::new_err(format!(
            "expected a sequence of integers or integer varargs, but got {}",
            type_name(a)
        ))),
    }
}

/// Non-negative sizes for factories.
pub fn shape_arg(args: &Bound<'_, PyTuple>) -> PyResult<SmallVec<[usize; 4]>> {
    sizes_arg(args)?
        .into_iter()
        .map(|s| {
            if s < 0 {
                Err(PyRuntimeError::new_err(format!("Trying to create tensor with negative dimension {s}: {:?}", s)))
            } else {
                Ok(s as usize)
            }
        })
        .collect()
}

/// Keeps a storage alive while numpy uses its memory.
#[pyclass(frozen)]
pub struct StorageOwner {
    _storage: Arc<Storage>,
}

/// numpy's type number for a dtype; bfloat16 has none (PyTorch's `TypeError`).
fn np_type_num(dtype: DType) -> PyResult<std::os::raw::c_int> {
    Ok((match dtype {
        DType::F32 => npyffi::NPY_TYPES::NPY_FLOAT,
        DType::F64 => npyffi::NPY_TYPES::NPY_DOUBLE,
        DType::F16 => npyffi::NPY_TYPES::NPY_HALF,
        DType::I64 => npyffi::NPY_TYPES::NPY_LONGLONG,
        DType::I32 => npyffi::NPY_TYPES::NPY_INT,
        DType::I16 => npyffi::NPY_TYPES::NPY_SHORT,
        DType::I8 => npyffi::NPY_TYPES::NPY_BYTE,
        DType::U8 => npyffi::NPY_TYPES::NPY_UBYTE,
        DType::Bool => npyffi::NPY_TYPES::NPY_BOOL,
        DType::BF16 => return Err(PyTypeError::new_err("Got unsupported ScalarType BFloat16")),
    }) as std::os::raw::c_int)
}

/// A numpy array viewing the tensor's elements (no copy; writes are seen by both).
pub fn to_numpy<'py>(py: Python<'py>, data: &TensorData) -> PyResult<Bound<'py, PyAny>> {
    let type_num = np_type_num(data.dtype())?;
    let item = data.dtype().size() as npy_intp;
    let mut dims: Vec<npy_intp> = data.shape.iter().map(|&s| s as npy_intp).collect();
    let mut strides: Vec<npy_intp> = data.strides.iter().map(|&s| s as npy_intp * item).collect();
    let owner = Bound::new(py, StorageOwner { _storage: data.storage.clone() })?;
    // SAFETY: the pointer, dims and strides describe memory inside the storage, which the
    // base object (StorageOwner) keeps alive for as long as the array lives.
    unsafe {
        let descr = PY_ARRAY_API.PyArray_DescrFromType(py, type_num);
        let ptr = if data.storage.is_empty() {
            std::ptr::null_mut()
        } else {
            data.storage.as_ptr().add(data.offset * item as usize)
        };
        let arr = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            descr,
            dims.len() as std::os::raw::c_int,
            dims.as_mut_ptr(),
            strides.as_mut_ptr(),
            ptr as *mut std::os::raw::c_void,
            NPY_ARRAY_WRITEABLE,
            std::ptr::null_mut(),
        );
        if arr.is_null() {
            return Err(PyErr::fetch(py));
        }
        let owner_ptr = owner.into_ptr();
        if PY_ARRAY_API.PyArray_SetBaseObject(py, arr as *mut npyffi::PyArrayObject, owner_ptr) < 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(Bound::from_owned_ptr(py, arr))
    }
}

struct NumpyOwner(#[allow(dead_code)] Py<PyAny>);

/// A tensor sharing a numpy array's memory (`torch.from_numpy`).
pub fn from_numpy(array: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let arr = array.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected np.ndarray (got {})",
            array.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))
    })?;
    let py = array.py();
    let descr = arr.dtype();
    let known = [
        (f32::get_dtype(py), DType::F32),
        (f64::get_dtype(py), DType::F64),
        (half::f16::get_dtype(py), DType::F16),
        (i64::get_dtype(py), DType::I64),
        (i32::get_dtype(py), DType::I32),
        (i16::get_dtype(py), DType::I16),
        (i8::get_dtype(py), DType::I8),
        (u8::get_dtype(py), DType::U8),
        (bool::get_dtype(py), DType::Bool),
    ];
    let Some(dtype) = known.iter().find(|(d, _)| descr.is_equiv_to(d)).map(|&(_, t)| t) else {
        let type_name = descr.typeobj().name().map(|n| n.to_string()).unwrap_or_default();
        return Err(PyTypeError::new_err(format!(
            "can't convert np.ndarray of type numpy.{type_name}. The only supported types are: float64, float32, float16, complex64, complex128, int64, int32, int16, int8, uint64, uint32, uint16, uint8, and bool."
        )));
    };
    let item = dtype.size() as isize;
    let shape: SmallVec<[usize; 4]> = arr.shape().iter().copied().collect();
    let mut strides: SmallVec<[usize; 4]> = SmallVec::new();
    for &s in arr.strides() {
        if s < 0 {
            return Err(PyValueError::new_err(
                "At least one stride in the given numpy array is negative, and tensors with negative strides are not currently supported. (You can probably work around this by making a copy of your array  with array.copy().) ",
            ));
        }
        if s % item != 0 {
            return Err(PyValueError::new_err("given numpy array strides not a multiple of the element byte size. Copy the numpy array to reallocate the memory."));
        }
        strides.push((s / item) as usize);
    }
    let numel: usize = shape.iter().product();
    let span = if numel == 0 { 0 } else { 1 + shape.iter().zip(&strides).map(|(&n, &s)| (n - 1) * s).sum::<usize>() };
    // SAFETY: the array's data pointer addresses `span` elements of `dtype`, kept alive by the
    // owner (a reference to the array itself).
    let data_ptr = unsafe { (*(arr.as_ptr() as *mut npyffi::PyArrayObject)).fields.data as *mut u8 };
    let storage = unsafe { Storage::from_foreign(data_ptr, span, dtype, Box::new(NumpyOwner(array.clone().unbind()))) };
    Ok(Tensor::from_data(TensorData { storage: Arc::new(storage), shape, strides, offset: 0 }))
}

/// Checks and applies `requires_grad=` of a factory.
pub fn factory_requires_grad(t: &Tensor, requires_grad: bool) -> PyResult<()> {
    if requires_grad {
        if !t.dtype().is_float() {
            return Err(PyRuntimeError::new_err(
                "Only Tensors of floating point and complex dtype can require gradients",
            ));
        }
        t.set_requires_grad(true).py()?;
    }
    Ok(())
}
