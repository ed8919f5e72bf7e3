//! `rustgrad._rustgrad`: the Python binding of rustgrad-core. The only crate with pyo3.

mod checkpoint;
mod convert;
mod errors;
mod function;
mod functions;
mod generator;
mod gil;
mod graph;
mod linalg;
mod nn_ops;
mod node;
mod ops_more;
mod profiling;
mod python;
mod tensor;
mod tensor_ops;

use pyo3::prelude::*;

/// Tensors and graph nodes are allocated and freed at a high rate: mimalloc serves them from
/// thread-local free lists and keeps large buffers mapped between steps (fewer page faults).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_t`, mimalloc.h v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// mimalloc's `mi_option_allow_thp` (its position in `mi_option_t`, mimalloc.h v3).
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Keeps freed tensor buffers committed for a second (mimalloc's default is 10 ms), so a
/// training step that follows a pause (data loading, logging) reuses them instead of
/// faulting fresh pages in.
///
/// Asks for no transparent huge pages: with them, a graph of small nodes and tensors grows the
/// resident set 2 MB at a time, and a 100,000-op chain took 378 bytes per op at its peak
/// instead of 300. The element-wise and MLP benchmarks showed no difference either way.
fn tune_allocator() {
    // SAFETY: setting an option is allowed at any time; it only changes how memory is mapped
    // and when it is purged from then on.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000);
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
    }
}

#[pymodule]
fn _rustgrad(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    tune_allocator();
    errors::install_panic_hook();
    rustgrad_core::sites::install(functions::capture_site);
    functions::install_anomaly_host();
    m.add_class::<tensor::PyTensor>()?;
    m.add_class::<convert::PyDType>()?;
    m.add_class::<node::PyNode>()?;
    m.add_class::<node::PyHookHandle>()?;
    m.add_class::<graph::PySavedTensor>()?;
    for dtype in rustgrad_core::dtype::ALL_DTYPES {
        m.add(dtype.name(), convert::dtype_object(py, dtype))?;
    }
    m.add_function(wrap_pyfunction!(functions::_backward, m)?)?;
    m.add_function(wrap_pyfunction!(profiling::_profiler_start, m)?)?;
    m.add_function(wrap_pyfunction!(profiling::_profiler_stop, m)?)?;
    m.add_function(wrap_pyfunction!(profiling::_profiler_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(profiling::_record_function_enter, m)?)?;
    m.add_function(wrap_pyfunction!(profiling::_record_function_exit, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_set_autocast_cpu, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_set_autocast_cache_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_clear_autocast_cache, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_autocast_fp32, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_layout_like, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_random_int64, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_wrapped_number, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_with_layout, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_grad, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_set_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(functions::is_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_live_nodes, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_set_jvp_formulas, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_push_saved_tensors_hooks, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_pop_saved_tensors_hooks, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_disable_saved_tensors_hooks, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_restore_saved_tensors_hooks, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_gradient_edge, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_increment_version, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_saved_tensors_report, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_leaves_behind, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_current_graph_task_id, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_will_engine_execute_node, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_enter_dual_level, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_exit_dual_level, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_make_dual, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_unpack_dual, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_dual_level_open, m)?)?;
    m.add_function(wrap_pyfunction!(graph::_set_tangent, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_set_inference_mode, m)?)?;
    m.add_function(wrap_pyfunction!(functions::is_inference_mode_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_set_anomaly_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(functions::is_anomaly_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_set_record_sites, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_saved_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_live_node_names, m)?)?;
    m.add_function(wrap_pyfunction!(functions::is_anomaly_check_nan_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(function::_function_apply, m)?)?;
    m.add_function(wrap_pyfunction!(function::_saved_tensors, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_full, m)?)?;
    m.add_function(wrap_pyfunction!(errors::_debug_panic, m)?)?;
    tensor_ops::register(m)?;
    linalg::register(m)?;
    nn_ops::register(m)?;
    m.add_function(wrap_pyfunction!(ops_more::_no_derivative, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint::_save_safetensors, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint::_load_safetensors, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_arange, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_linspace, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_eye, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_rand, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_randn, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_randint, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_randperm, m)?)?;
    m.add_function(wrap_pyfunction!(functions::initial_seed, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_set_default_dtype, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_result_type, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_storage_elements, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_get_default_dtype, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_multinomial, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_poisson, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_random_result, m)?)?;
    m.add_class::<generator::PyGenerator>()?;
    m.add("default_generator", generator::default_object(py)?)?;
    m.add_function(wrap_pyfunction!(functions::from_numpy, m)?)?;
    m.add_function(wrap_pyfunction!(functions::where_, m)?)?;
    m.add_function(wrap_pyfunction!(functions::_tensor_list, m)?)?;
    Ok(())
}
