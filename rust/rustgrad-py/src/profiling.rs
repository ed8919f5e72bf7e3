//! The binding's half of the autograd profiler: each op called from Python is a range of
//! `rustgrad_core::profiler`, named `aten::<op>` by `#[guard]` at compile time.
//!
//! Note [Profiler cost] (core): `#[guard]` writes `if flags() != 0 { begin(...) }` in front of
//! every op, one relaxed load when no profile runs; the op then runs through `errors::net`
//! exactly as before, the profiled path (`errors::net_profiled`) is out of line. The input
//! shapes and the bytes of the outputs are read through the [`W`] wrapper ("autoref
//! specialization"): `(&W(&arg)).shape_into(..)` picks [`Spec::shape_into`] for the types that
//! may hold a tensor and [`Fall::shape_into`] (nothing known: `[]`) for the rest, decided at
//! compile time for each argument.

use crate::tensor::PyTensor;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use rustgrad_core::profiler::{self, Kind, Token};
use std::borrow::Cow;

/// An argument or a result, seen by the profiler.
pub struct W<'a, T: ?Sized>(pub &'a T);

/// What the profiler reads from an op's arguments: their shapes, and the buffers they show
/// (an output showing one of them allocated nothing).
#[derive(Default)]
pub struct Inputs {
    shapes: Vec<Vec<i64>>,
    buffers: Vec<usize>,
}

/// What the profiler reads from an argument or result that may hold tensors.
pub trait Spec {
    fn shape_into(&self, inputs: &mut Inputs);
    fn out_bytes(&self, inputs: &[usize]) -> i64;
}

/// The fallback: an argument with no shape (`[]`), a result with no bytes.
pub trait Fall {
    fn shape_into(&self, inputs: &mut Inputs) {
        inputs.shapes.push(Vec::new());
    }
    fn out_bytes(&self, _inputs: &[usize]) -> i64 {
        0
    }
}

impl<T: ?Sized> Fall for &W<'_, T> {}

/// A type holding tensors.
pub trait Tensors {
    /// The shape of the first tensor, if it is one.
    fn shape(&self) -> Option<Vec<i64>>;
    /// The bytes of its tensors' buffers that are not among `inputs` (views count nothing).
    fn bytes(&self, inputs: &[usize]) -> i64;
    /// The buffer of the first tensor, if it is one.
    fn buffer(&self) -> Option<usize> {
        None
    }
}

fn shape_of(t: &PyTensor) -> Vec<i64> {
    t.t.shape().iter().map(|&d| d as i64).collect()
}

fn buffer_of(t: &PyTensor) -> usize {
    t.t.data().storage.as_ptr() as usize
}

fn fresh_bytes(t: &PyTensor, inputs: &[usize]) -> i64 {
    let data = t.t.data();
    if inputs.contains(&(data.storage.as_ptr() as usize)) {
        return 0;
    }
    (data.numel() * data.dtype().size()) as i64
}

impl Tensors for PyTensor {
    fn shape(&self) -> Option<Vec<i64>> {
        Some(shape_of(self))
    }
    fn bytes(&self, inputs: &[usize]) -> i64 {
        fresh_bytes(self, inputs)
    }
    fn buffer(&self) -> Option<usize> {
        Some(buffer_of(self))
    }
}

impl Tensors for Bound<'_, PyAny> {
    fn shape(&self) -> Option<Vec<i64>> {
        self.cast::<PyTensor>().ok().map(|t| shape_of(t.get()))
    }
    fn bytes(&self, inputs: &[usize]) -> i64 {
        if let Ok(t) = self.cast::<PyTensor>() {
            return fresh_bytes(t.get(), inputs);
        }
        if let Ok(tuple) = self.cast::<PyTuple>() {
            return tuple.iter().map(|x| x.bytes(inputs)).sum();
        }
        if let Ok(list) = self.cast::<PyList>() {
            return list.iter().map(|x| x.bytes(inputs)).sum();
        }
        0
    }
    fn buffer(&self) -> Option<usize> {
        self.cast::<PyTensor>().ok().map(|t| buffer_of(t.get()))
    }
}

impl Tensors for Bound<'_, PyTensor> {
    fn shape(&self) -> Option<Vec<i64>> {
        Some(shape_of(self.get()))
    }
    fn bytes(&self, inputs: &[usize]) -> i64 {
        fresh_bytes(self.get(), inputs)
    }
    fn buffer(&self) -> Option<usize> {
        Some(buffer_of(self.get()))
    }
}

impl<T> Tensors for Py<T> {
    fn shape(&self) -> Option<Vec<i64>> {
        Python::attach(|py| self.bind(py).as_any().shape())
    }
    fn bytes(&self, inputs: &[usize]) -> i64 {
        Python::attach(|py| self.bind(py).as_any().bytes(inputs))
    }
    fn buffer(&self) -> Option<usize> {
        Python::attach(|py| self.bind(py).as_any().buffer())
    }
}

impl Tensors for PyRef<'_, PyTensor> {
    fn shape(&self) -> Option<Vec<i64>> {
        Some(shape_of(self))
    }
    fn bytes(&self, inputs: &[usize]) -> i64 {
        fresh_bytes(self, inputs)
    }
    fn buffer(&self) -> Option<usize> {
        Some(buffer_of(self))
    }
}

impl<T: Tensors + ?Sized> Tensors for &T {
    fn shape(&self) -> Option<Vec<i64>> {
        (**self).shape()
    }
    fn bytes(&self, inputs: &[usize]) -> i64 {
        (**self).bytes(inputs)
    }
    fn buffer(&self) -> Option<usize> {
        (**self).buffer()
    }
}

impl<T: Tensors> Tensors for Option<T> {
    fn shape(&self) -> Option<Vec<i64>> {
        self.as_ref().and_then(|t| t.shape())
    }
    fn bytes(&self, inputs: &[usize]) -> i64 {
        self.as_ref().map_or(0, |t| t.bytes(inputs))
    }
    fn buffer(&self) -> Option<usize> {
        self.as_ref().and_then(|t| t.buffer())
    }
}

impl<T: Tensors> Tensors for PyResult<T> {
    fn shape(&self) -> Option<Vec<i64>> {
        None
    }
    fn bytes(&self, inputs: &[usize]) -> i64 {
        self.as_ref().map_or(0, |t| t.bytes(inputs))
    }
}

impl<A: Tensors, B: Tensors> Tensors for (A, B) {
    fn shape(&self) -> Option<Vec<i64>> {
        None
    }
    fn bytes(&self, inputs: &[usize]) -> i64 {
        self.0.bytes(inputs) + self.1.bytes(inputs)
    }
}

impl<A: Tensors, B: Tensors, C: Tensors> Tensors for (A, B, C) {
    fn shape(&self) -> Option<Vec<i64>> {
        None
    }
    fn bytes(&self, inputs: &[usize]) -> i64 {
        self.0.bytes(inputs) + self.1.bytes(inputs) + self.2.bytes(inputs)
    }
}

impl<T: Tensors> Tensors for Vec<T> {
    fn shape(&self) -> Option<Vec<i64>> {
        None
    }
    fn bytes(&self, inputs: &[usize]) -> i64 {
        self.iter().map(|t| t.bytes(inputs)).sum()
    }
}

impl<T: Tensors + ?Sized> Spec for W<'_, T> {
    fn shape_into(&self, inputs: &mut Inputs) {
        inputs.shapes.push(self.0.shape().unwrap_or_default());
        inputs.buffers.extend(self.0.buffer());
    }
    fn out_bytes(&self, inputs: &[usize]) -> i64 {
        self.0.bytes(inputs)
    }
}

thread_local! {
    /// The input buffers of the ops open on this thread (by range id), innermost last (with
    /// memory only).
    static OPEN_INPUTS: std::cell::RefCell<Vec<(u64, Vec<usize>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Opens the range of the op `name` (`aten::add`); `inputs` gives its input shapes. Called by
/// `#[guard]` only when a profile runs.
#[cold]
#[inline(never)]
pub fn begin(name: &'static str, inputs: impl FnOnce(&mut Inputs)) -> Option<Token> {
    let flags = profiler::flags();
    let mut seen = Inputs::default();
    if flags & (profiler::SHAPES | profiler::MEMORY) != 0 {
        inputs(&mut seen);
    }
    if flags & profiler::SHAPES == 0 {
        seen.shapes.clear();
    }
    let stack = if flags & profiler::STACK != 0 { python_stack() } else { Vec::new() };
    let token = profiler::begin(Cow::Borrowed(name), Kind::Op, seen.shapes, stack);
    if let Some(t) = token.filter(|_| flags & profiler::MEMORY != 0) {
        OPEN_INPUTS.with(|o| o.borrow_mut().push((t.id, seen.buffers)));
    }
    token
}

/// Closes an op's range; `bytes` reads the bytes of its result when memory is recorded.
#[cold]
#[inline(never)]
pub fn end<T>(token: Token, out: &T, bytes: impl FnOnce(&T, &[usize]) -> i64) {
    // Entries of ranges never ended (a profile stopped inside an op) have larger ids: dropped.
    let inputs = OPEN_INPUTS.with(|o| {
        let mut open = o.borrow_mut();
        while let Some(&(id, _)) = open.last() {
            if id < token.id {
                break;
            }
            let (id, buffers) = open.pop().expect("an entry");
            if id == token.id {
                return Some(buffers);
            }
        }
        None
    });
    let b = match inputs {
        Some(inputs) if profiler::flags() & profiler::MEMORY != 0 => bytes(out, &inputs),
        _ => 0,
    };
    profiler::end(token, b);
}

/// The Python frames of the caller, outermost first, as `file(line): function`, without
/// rustgrad's own files.
fn python_stack() -> Vec<String> {
    Python::attach(|py| {
        let mut frames = Vec::new();
        let Ok(sys) = py.import("sys") else { return frames };
        let Ok(mut frame) = sys.call_method1("_getframe", (0,)) else { return frames };
        let package = std::path::MAIN_SEPARATOR.to_string() + "rustgrad" + std::path::MAIN_SEPARATOR_STR;
        while !frame.is_none() {
            let code = frame.getattr("f_code");
            let line = frame.getattr("f_lineno").and_then(|l| l.extract::<i64>()).unwrap_or(0);
            if let Ok(code) = code {
                let file: String = code.getattr("co_filename").and_then(|f| f.extract()).unwrap_or_default();
                let func: String = code.getattr("co_name").and_then(|f| f.extract()).unwrap_or_default();
                if !file.contains(&package) {
                    frames.push(format!("{file}({line}): {func}"));
                }
            }
            frame = match frame.getattr("f_back") {
                Ok(f) => f,
                Err(_) => break,
            };
        }
        frames.reverse();
        frames
    })
}

/// Starts a profile: `record_shapes`, `profile_memory`, `with_stack`; returns the clock's
/// reading (ns) at its start.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _profiler_start(record_shapes: bool, profile_memory: bool, with_stack: bool) -> PyResult<u64> {
    let mut flags = 0;
    if record_shapes {
        flags |= profiler::SHAPES;
    }
    if profile_memory {
        flags |= profiler::MEMORY;
    }
    if with_stack {
        flags |= profiler::STACK;
    }
    profiler::start(flags).map_err(PyRuntimeError::new_err)?;
    Ok(profiler::now_ns())
}

/// One recorded range: (id, parent id, name, kind, thread, start ns, end ns, input shapes,
/// bytes, stack).
type EventRow = (u64, u64, String, u8, u64, u64, u64, Vec<Vec<i64>>, i64, Vec<String>);

/// Ends the profile; returns its ranges by start time and the Unix time (us) of the clock's zero.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _profiler_stop() -> PyResult<(Vec<EventRow>, f64)> {
    let rows = profiler::stop()
        .into_iter()
        .map(|e| {
            (
                e.id,
                e.parent,
                e.name.into_owned(),
                e.kind as u8,
                e.thread,
                e.start_ns,
                e.end_ns,
                e.shapes,
                e.bytes,
                e.stack,
            )
        })
        .collect();
    Ok((rows, profiler::epoch_unix_us()))
}

/// Whether a profile runs.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _profiler_enabled() -> bool {
    profiler::flags() & profiler::ON != 0
}

/// Opens a `record_function` range; returns its handle (None when no profile runs).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _record_function_enter(name: String) -> PyResult<Option<(u64, usize, u64)>> {
    let stack = if profiler::flags() & profiler::STACK != 0 { python_stack() } else { Vec::new() };
    let token = profiler::begin(Cow::Owned(name), Kind::User, Vec::new(), stack);
    Ok(token.map(|t| (t.session, t.index, t.id)))
}

/// Closes a `record_function` range.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _record_function_exit(handle: Option<(u64, usize, u64)>) -> PyResult<()> {
    if let Some((session, index, id)) = handle {
        profiler::end(Token { session, index, id }, 0);
    }
    Ok(())
}
