//! `torch.Generator`: an independent CPU random number generator (PyTorch's MT19937 stream,
//! see `rustgrad_core::random`), or the process-wide default one (`torch.default_generator`).
//! Every random function takes one as `generator=`; [`resolve`] turns that argument into the
//! generator to lock.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyInt};
use rustgrad_core::random::{default_generator, lock, Generator, STATE_SIZE};
use std::sync::Mutex;

/// Where a generator's state lives.
enum Slot {
    /// The process-wide default generator (shared with the core's own draws).
    Default,
    /// A generator of its own.
    Own(Box<Mutex<Generator>>),
}

/// `torch.Generator(device='cpu')`.
#[pyclass(name = "Generator", module = "rustgrad", frozen, weakref)]
pub struct PyGenerator {
    slot: Slot,
}

impl PyGenerator {
    /// The generator to lock for drawing.
    pub fn mutex(&self) -> &Mutex<Generator> {
        match &self.slot {
            Slot::Default => default_generator(),
            Slot::Own(m) => m,
        }
    }
}

static DEFAULT: PyOnceLock<Py<PyGenerator>> = PyOnceLock::new();

/// The one Python object of the default generator (`torch.default_generator`).
pub fn default_object(py: Python<'_>) -> PyResult<Py<PyGenerator>> {
    Ok(DEFAULT.get_or_try_init(py, || Py::new(py, PyGenerator { slot: Slot::Default }))?.clone_ref(py))
}

/// The generator a `generator=` argument names: the default one for `None` (or no argument),
/// else a `torch.Generator`; anything else raises PyTorch's `TypeError` naming `fname`.
pub fn resolve<'a>(generator: Option<&'a Bound<'_, PyAny>>, fname: &str) -> PyResult<&'a Mutex<Generator>> {
    match generator {
        None => Ok(default_generator()),
        Some(g) if g.is_none() => Ok(default_generator()),
        Some(g) => match g.cast::<PyGenerator>() {
            Ok(g) => Ok(g.get().mutex()),
            Err(_) => Err(PyTypeError::new_err(format!(
                "{fname}(): argument 'generator' must be torch.Generator, not {}",
                crate::convert::type_name(g)
            ))),
        },
    }
}

/// A seed as `Generator.manual_seed` reads it: a Python int in [-2^63, 2^64), negative
/// values wrapping to 64 bits.
pub fn seed_arg(seed: &Bound<'_, PyAny>) -> PyResult<u64> {
    let ty = seed.get_type();
    let module = ty.module().map(|m| m.to_string()).unwrap_or_default();
    if !seed.is_instance_of::<PyInt>() || seed.is_instance_of::<pyo3::types::PyBool>() {
        // PyTorch refuses numpy integers with a TypeError of their own, anything else naming
        // its type (module-qualified outside the builtins, `Tensor` for a tensor).
        if module == "numpy" && seed.hasattr("__index__")? {
            return Err(PyTypeError::new_err("an integer is required"));
        }
        let name = if module == "builtins" || seed.cast::<crate::tensor::PyTensor>().is_ok() {
            crate::convert::type_name(seed)
        } else {
            format!("{module}.{}", ty.name()?)
        };
        return Err(PyRuntimeError::new_err(format!("manual_seed expected a long, but got {name}")));
    }
    if let Ok(v) = seed.extract::<u64>() {
        return Ok(v);
    }
    match seed.extract::<i64>() {
        Ok(v) => Ok(v as u64),
        Err(_) => Err(PyValueError::new_err("Overflow when unpacking long long")),
    }
}

#[pymethods]
impl PyGenerator {
    /// A new CPU generator seeded with PyTorch's default seed (67280421310721).
    #[rustgrad_macros::guard]
    #[new]
    #[pyo3(signature = (device=None))]
    fn new(py: Python<'_>, device: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        if let Some(d) = device {
            crate::python::check_generator_device(py, d)?;
        }
        Ok(PyGenerator { slot: Slot::Own(Box::new(Mutex::new(Generator::default()))) })
    }

    /// Seeds the generator with `seed` (an int; negative seeds wrap to 64 bits) and returns it.
    #[rustgrad_macros::guard]
    fn manual_seed<'py>(slf: &Bound<'py, Self>, seed: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let seed = seed_arg(seed)?;
        lock(slf.get().mutex()).manual_seed(seed);
        Ok(slf.clone())
    }

    /// Seeds the generator from a non-deterministic source and returns the seed.
    #[rustgrad_macros::guard]
    fn seed(&self) -> u64 {
        lock(self.mutex()).seed()
    }

    /// The seed the generator was last seeded with.
    #[rustgrad_macros::guard]
    fn initial_seed(&self) -> u64 {
        lock(self.mutex()).initial_seed()
    }

    /// The generator's state as a tensor of 5056 bytes, in the layout of PyTorch's
    /// `Generator.get_state()` (so states move between the two libraries).
    #[rustgrad_macros::guard]
    fn get_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let state = lock(self.mutex()).get_state();
        crate::python::call(py, "_rng_state_tensor", (PyBytes::new(py, &state),))
    }

    /// Restores a state from `get_state` (or from PyTorch's `get_state()`) and returns the
    /// generator; an invalid state raises and leaves the generator unchanged.
    #[rustgrad_macros::guard]
    fn set_state<'py>(slf: &Bound<'py, Self>, new_state: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let bytes = crate::python::call(slf.py(), "_rng_state_bytes", (new_state,))?;
        let bytes: Vec<u8> = bytes.extract()?;
        if bytes.len() != STATE_SIZE {
            return Err(PyRuntimeError::new_err(format!(
                "Expected a CPUGeneratorImplState of size {STATE_SIZE} but found the input RNG state size to be {}",
                bytes.len()
            )));
        }
        lock(slf.get().mutex()).set_state(&bytes).map_err(PyRuntimeError::new_err)?;
        Ok(slf.clone())
    }

    /// A new generator with a copy of this one's state.
    #[rustgrad_macros::guard]
    fn clone_state(&self, py: Python<'_>) -> PyResult<Py<PyGenerator>> {
        let copy = lock(self.mutex()).clone();
        Py::new(py, PyGenerator { slot: Slot::Own(Box::new(Mutex::new(copy))) })
    }

    /// The generator's device (always the CPU).
    #[getter]
    fn device(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        crate::python::cpu_device(py)
    }

    /// Pickling (and `copy.deepcopy`), as PyTorch's: `(Generator, (device,), (seed, None, state))`;
    /// the copy is an independent generator with the same state.
    #[rustgrad_macros::guard]
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
        let py = slf.py();
        let seed = lock(slf.get().mutex()).initial_seed();
        let state = slf.get().get_state(py)?;
        let cls = py.get_type::<PyGenerator>();
        let device = crate::python::cpu_device(py)?;
        let args = pyo3::types::PyTuple::new(py, [device])?;
        let setstate = (seed, py.None(), state).into_pyobject(py)?;
        pyo3::types::PyTuple::new(py, [cls.into_any(), args.into_any(), setstate.into_any()])
    }

    /// Restores a pickled `(seed, offset, state)` triple (see `__reduce__`).
    #[rustgrad_macros::guard]
    fn __setstate__(slf: &Bound<'_, Self>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = state.get_item(2)?;
        PyGenerator::set_state(slf, &bytes)?;
        Ok(())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        format!("<torch._C.Generator object at {:#x}>", slf.as_ptr() as usize)
    }
}
