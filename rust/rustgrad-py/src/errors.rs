//! The one place core errors become Python exceptions.

use pyo3::exceptions::{PyIndexError, PyNotImplementedError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::PyErr;
use rustgrad_core::{Error, ErrorKind};

// `torch.linalg.LinAlgError`: a `RuntimeError` raised for singular or non-positive-definite
// matrices and decompositions that do not converge.
pyo3::create_exception!(torch._C, _LinAlgError, pyo3::exceptions::PyRuntimeError);
pub use _LinAlgError as LinAlgError;

/// Maps a core error onto the Python exception PyTorch raises for it.
pub fn to_py(err: Error) -> PyErr {
    if let Error::External(inner) = &err {
        if let Some(py_err) = inner.downcast_ref::<PyErr>() {
            return pyo3::Python::attach(|py| py_err.clone_ref(py));
        }
    }
    let msg = err.to_string();
    let py_err = match err.kind() {
        ErrorKind::Runtime => PyRuntimeError::new_err(msg),
        ErrorKind::Value => PyValueError::new_err(msg),
        ErrorKind::Type => PyTypeError::new_err(msg),
        ErrorKind::Index => PyIndexError::new_err(msg),
        ErrorKind::NotImplemented => PyNotImplementedError::new_err(msg),
        ErrorKind::LinAlg => LinAlgError::new_err(msg),
    };
    if let Some(note) = err.note() {
        // PEP 678 notes: shown under the traceback, while str(exception) stays PyTorch's message.
        pyo3::Python::attach(|py| {
            use pyo3::types::PyAnyMethods;
            let value = py_err.value(py);
            let notes = pyo3::types::PyList::new(py, [note]).ok();
            if let Some(notes) = notes {
                let _ = value.setattr("__notes__", notes);
            }
        });
    }
    py_err
}

/// Wraps a Python exception raised by a hook so it can travel through the core.
pub fn from_py(err: PyErr) -> Error {
    Error::External(std::sync::Arc::new(err))
}

/// `?`-friendly conversion of core results.
pub trait IntoPyResult<T> {
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for rustgrad_core::Result<T> {
    #[inline]
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}

/// Note [Panic net]: every function Python can call (`#[guard]` above each `#[pymethods]`
/// block and `#[pyfunction]`) runs inside this one `catch_unwind`. A panic is a bug in
/// rustgrad; it must not reach Python as PyO3's `PanicException`, which derives from
/// `BaseException` and escapes `except Exception`. It becomes a `RuntimeError` that names the
/// op, the panic's message and where in the source it happened. Unwinding costs nothing
/// until a panic actually happens.
#[inline]
pub fn net<T: Netted>(op: &'static str, body: impl FnOnce() -> T) -> T {
    NET_DEPTH.with(|d| d.set(d.get() + 1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    NET_DEPTH.with(|d| d.set(d.get() - 1));
    match result {
        Ok(out) => out,
        Err(payload) => T::from_panic(op, payload),
    }
}

/// [`net`] for an op while a profile runs: `token` is its profiler range, closed when the
/// body returns, with the bytes of the result read by `bytes`. Out of line, so that the path
/// without a profile is [`net`] alone (Note [Profiler cost] in rustgrad-core).
#[cold]
#[inline(never)]
pub fn net_profiled<T: Netted>(
    op: &'static str,
    token: rustgrad_core::profiler::Token,
    bytes: impl FnOnce(&T, &[usize]) -> i64,
    body: impl FnOnce() -> T,
) -> T {
    let out = net(op, body);
    crate::profiling::end(token, &out, bytes);
    out
}

/// What a guarded function returns when its body panicked.
pub trait Netted {
    fn from_panic(op: &'static str, payload: Box<dyn std::any::Any + Send>) -> Self;
}

impl<T> Netted for pyo3::PyResult<T> {
    fn from_panic(op: &'static str, payload: Box<dyn std::any::Any + Send>) -> Self {
        if let Some(failure) = payload.downcast_ref::<rustgrad_core::alloc::AllocFailure>() {
            // Note [Fallible allocation]: not a bug, the memory PyTorch would have failed to get.
            PANIC_PLACE.with(|p| p.borrow_mut().take());
            return Err(PyRuntimeError::new_err(failure.message()));
        }
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let place = PANIC_PLACE.with(|p| p.borrow_mut().take()).map(|p| format!(" (at {p})")).unwrap_or_default();
        Err(PyRuntimeError::new_err(format!(
            "{op}: internal error in rustgrad: {what}{place}. This is a bug; please report it with the code that raised it."
        )))
    }
}

/// Functions that cannot fail return plain values; a panic in one is passed on unchanged.
macro_rules! netted_plain {
    ($($t:ty),* $(,)?) => {$(
        impl Netted for $t {
            fn from_panic(_op: &'static str, payload: Box<dyn std::any::Any + Send>) -> Self {
                std::panic::resume_unwind(payload)
            }
        }
    )*};
}
netted_plain!(bool, usize, isize, i64, u64, f64, String, &'static str);

/// The same for plain generic values.
macro_rules! netted_plain_generic {
    ($($t:ty => [$($g:ident),*]),* $(,)?) => {$(
        impl<$($g),*> Netted for $t {
            fn from_panic(_op: &'static str, payload: Box<dyn std::any::Any + Send>) -> Self {
                std::panic::resume_unwind(payload)
            }
        }
    )*};
}
netted_plain_generic!(Vec<T> => [T], Option<T> => [T], pyo3::Py<T> => [T], (A, B) => [A, B]);

thread_local! {
    /// Where the last panic on this thread happened, for the net's message.
    static PANIC_PLACE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    /// How many guarded calls this thread is inside (nested calls re-enter through Python).
    static NET_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Records where a panic inside the net happens, for its message, instead of printing a report
/// to stderr (the exception says it all). Panics elsewhere, and every panic when
/// `RUST_BACKTRACE` is set, still go to the hook that was there before.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    let verbose = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
    std::panic::set_hook(Box::new(move |info| {
        let place = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
        PANIC_PLACE.with(|p| *p.borrow_mut() = place);
        let expected = info.payload().is::<rustgrad_core::alloc::AllocFailure>();
        if !expected && (verbose || NET_DEPTH.with(|d| d.get()) == 0) {
            previous(info);
        }
    }));
}

/// Panics on purpose, so tests can prove the net turns a panic into a `RuntimeError`.
#[rustgrad_macros::guard]
#[pyo3::pyfunction]
pub fn _debug_panic(message: String) -> pyo3::PyResult<()> {
    panic!("{message}");
}
