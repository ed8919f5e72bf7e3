//! The layers' functional ops (`torch.nn.functional`): convolution, sliding windows, pooling,
//! normalization, embedding, constant padding and the scalar-parameter activations. Thin
//! wrappers over `rustgrad_core::ops`; the Python layer checks PyTorch's argument rules first
//! and the large kernels release the GIL through [`gil::heavy`].

use crate::convert::tensor_arg;
use crate::errors::IntoPyResult;
use crate::gil;
use crate::tensor::{wrap, PyTensor};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rustgrad_core::ops::activation::{self, Act};
use rustgrad_core::ops::conv::{self, ConvParams, Window};
use rustgrad_core::ops::loss::{self, Reduction, RobustLoss};
use rustgrad_core::ops::pool::{self, AvgPoolKind, Divisor, MaxPoolKind, PoolGeometry};
use rustgrad_core::ops::{norm, optim, pad, rnn};
use rustgrad_core::Tensor;

type R = PyResult<Py<PyTensor>>;

fn opt(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Tensor>> {
    match obj {
        Some(o) if !o.is_none() => Ok(Some(tensor_arg(o)?)),
        _ => Ok(None),
    }
}

/// `torch.convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)`.
#[rustgrad_macros::guard]
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn _convolution(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    weight: &Bound<'_, PyAny>,
    bias: Option<&Bound<'_, PyAny>>,
    stride: Vec<usize>,
    padding: Vec<usize>,
    dilation: Vec<usize>,
    transposed: bool,
    output_padding: Vec<usize>,
    groups: usize,
) -> R {
    let (x, w, b) = (tensor_arg(input)?, tensor_arg(weight)?, opt(bias)?);
    let p = ConvParams { stride, padding, dilation, transposed, output_padding, groups };
    let work = x.numel().saturating_mul(w.numel() / w.shape().first().copied().unwrap_or(1).max(1));
    wrap(py, gil::heavy(py, work, move || conv::convolution(&x, &w, b.as_ref(), &p)).py()?)
}

/// `F.unfold` of a batched `[N, C, *spatial]` input whose window positions are `positions`.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _im2col(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    kernel: Vec<usize>,
    dilation: Vec<usize>,
    padding: Vec<usize>,
    stride: Vec<usize>,
    positions: Vec<usize>,
) -> R {
    let x = tensor_arg(input)?;
    let s = x.shape();
    let w = Window::new(&s[2..], &kernel, &stride, &padding, &dilation, &positions);
    wrap(py, gil::heavy(py, x.numel(), move || conv::im2col(&x, &w)).py()?)
}

/// `F.fold` of batched columns `[N, C*prod(kernel), L]` into `[N, C, *output_size]`.
#[rustgrad_macros::guard]
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn _col2im(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    output_size: Vec<usize>,
    kernel: Vec<usize>,
    dilation: Vec<usize>,
    padding: Vec<usize>,
    stride: Vec<usize>,
    positions: Vec<usize>,
) -> R {
    let x = tensor_arg(input)?;
    let w = Window::new(&output_size, &kernel, &stride, &padding, &dilation, &positions);
    wrap(py, gil::heavy(py, x.numel(), move || conv::col2im(&x, &w)).py()?)
}

/// Max pooling over the last 2 or 3 dims with the output size given: `(values, indices)`.
#[rustgrad_macros::guard]
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn _max_pool(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    output: Vec<usize>,
    kernel: Vec<usize>,
    stride: Vec<usize>,
    padding: Vec<usize>,
    dilation: Vec<usize>,
) -> PyResult<(Py<PyTensor>, Py<PyTensor>)> {
    let x = tensor_arg(input)?;
    let s = x.shape();
    let dims = output.len();
    let geom = PoolGeometry::sliding(&s[s.len() - dims..], &output, &kernel, &stride, &padding, &dilation);
    let kind = if dims == 3 { MaxPoolKind::Sliding3d } else { MaxPoolKind::Sliding2d };
    let (v, i) = gil::heavy(py, x.numel(), move || pool::max_pool(&x, &geom, kind)).py()?;
    Ok((wrap(py, v)?, wrap(py, i)?))
}

/// Average pooling over the last 2 or 3 dims with the output size given.
#[rustgrad_macros::guard]
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn _avg_pool(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    output: Vec<usize>,
    kernel: Vec<usize>,
    stride: Vec<usize>,
    padding: Vec<usize>,
    count_include_pad: bool,
    divisor_override: Option<i64>,
) -> R {
    let x = tensor_arg(input)?;
    let s = x.shape();
    let dims = output.len();
    let ones = vec![1; dims];
    let geom = PoolGeometry::sliding(&s[s.len() - dims..], &output, &kernel, &stride, &padding, &ones);
    let divisor = match divisor_override {
        Some(d) => Divisor::Fixed(d),
        None if count_include_pad => Divisor::WithPadding,
        None => Divisor::ImageOnly,
    };
    let kind = if dims == 3 { AvgPoolKind::Sliding3d } else { AvgPoolKind::Sliding2d };
    wrap(py, gil::heavy(py, x.numel(), move || pool::avg_pool(&x, &geom, divisor, kind)).py()?)
}

/// Adaptive pooling over the last 2 or 3 dims: `(values, indices)` for max, `(values, None)` for average.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _adaptive_pool(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    output: Vec<usize>,
    max: bool,
) -> PyResult<(Py<PyTensor>, Option<Py<PyTensor>>)> {
    let x = tensor_arg(input)?;
    let s = x.shape();
    let dims = output.len();
    let geom = PoolGeometry::adaptive(&s[s.len() - dims..], &output);
    if max {
        let kind = if dims == 3 { MaxPoolKind::Adaptive3d } else { MaxPoolKind::Adaptive };
        let (v, i) = gil::heavy(py, x.numel(), move || pool::max_pool(&x, &geom, kind)).py()?;
        Ok((wrap(py, v)?, Some(wrap(py, i)?)))
    } else {
        let kind = if dims == 3 { AvgPoolKind::Adaptive3d } else { AvgPoolKind::Adaptive2d };
        let v = gil::heavy(py, x.numel(), move || pool::avg_pool(&x, &geom, Divisor::ImageOnly, kind)).py()?;
        Ok((wrap(py, v)?, None))
    }
}

/// `max_unpool2d/3d`: values placed at their indices in planes of `output` size.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _max_unpool(py: Python<'_>, input: &Bound<'_, PyAny>, indices: &Bound<'_, PyAny>, output: Vec<usize>) -> R {
    let (x, i) = (tensor_arg(input)?, tensor_arg(indices)?);
    wrap(py, pool::max_unpool(&x, &i, &output).py()?)
}

/// `F.batch_norm` (updates the running statistics in place when training).
#[rustgrad_macros::guard]
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn _batch_norm(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    running_mean: Option<&Bound<'_, PyAny>>,
    running_var: Option<&Bound<'_, PyAny>>,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> R {
    let x = tensor_arg(input)?;
    let (rm, rv, w, b) = (opt(running_mean)?, opt(running_var)?, opt(weight)?, opt(bias)?);
    let out = gil::heavy(py, x.numel(), move || {
        norm::batch_norm(&x, w.as_ref(), b.as_ref(), rm.as_ref(), rv.as_ref(), training, momentum, eps)
    });
    wrap(py, out.py()?)
}

/// `F.layer_norm` over the trailing `normalized_shape`.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _layer_norm(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    normalized_shape: Vec<usize>,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    eps: f64,
) -> R {
    let x = tensor_arg(input)?;
    let (w, b) = (opt(weight)?, opt(bias)?);
    let out = gil::heavy(py, x.numel(), move || norm::layer_norm(&x, &normalized_shape, w.as_ref(), b.as_ref(), eps));
    wrap(py, out.py()?)
}

/// `F.group_norm` with `num_groups` groups of channels.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _group_norm(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    num_groups: usize,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    eps: f64,
) -> R {
    let x = tensor_arg(input)?;
    let (w, b) = (opt(weight)?, opt(bias)?);
    let out = gil::heavy(py, x.numel(), move || norm::group_norm(&x, num_groups, w.as_ref(), b.as_ref(), eps));
    wrap(py, out.py()?)
}

/// `F.embedding`'s lookup (`padding_idx` already made non-negative).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _embedding(
    py: Python<'_>,
    weight: &Bound<'_, PyAny>,
    indices: &Bound<'_, PyAny>,
    padding_idx: Option<usize>,
    scale_grad_by_freq: bool,
) -> R {
    let (w, i) = (tensor_arg(weight)?, tensor_arg(indices)?);
    wrap(py, norm::embedding(&w, &i, padding_idx, scale_grad_by_freq).py()?)
}

/// `F.pad(input, pad, mode='constant', value)`.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _constant_pad(py: Python<'_>, input: &Bound<'_, PyAny>, pad: Vec<i64>, value: f64) -> R {
    wrap(py, pad::constant_pad(&tensor_arg(input)?, &pad, value).py()?)
}

/// `F.pairwise_distance(x1, x2, p, eps, keepdim)` (`rustgrad_core::ops::reduce::pairwise_distance`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _pairwise_distance(
    py: Python<'_>,
    x1: &Bound<'_, PyAny>,
    x2: &Bound<'_, PyAny>,
    p: f64,
    eps: f64,
    keepdim: bool,
) -> R {
    let (a, b) = (tensor_arg(x1)?, tensor_arg(x2)?);
    wrap(py, rustgrad_core::ops::reduce::pairwise_distance(&a, &b, p, eps, keepdim).py()?)
}

/// `x + s`, `x - s` or `x * s` for a number `s` (`kind` "add", "sub" or "mul"), recorded as
/// PyTorch's Scalar overloads are (`AddBackward1`, `SubBackward1`, `MulBackward1`), as its C++
/// composites (losses, distances) record them.
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _scalar_op(py: Python<'_>, input: &Bound<'_, PyAny>, s: f64, kind: &str) -> R {
    use rustgrad_core::ops::arith;
    let x = tensor_arg(input)?;
    let out = match kind {
        "add" => arith::add_scalar(&x, s),
        "sub" => arith::sub_scalar(&x, s),
        "mul" => arith::mul_scalar(&x, s),
        other => return Err(PyValueError::new_err(format!("_scalar_op: unknown kind {other:?}"))),
    };
    wrap(py, out.py()?)
}

/// `pack_padded_sequence`'s packed data (`rustgrad_core::ops::rnn::pack_padded`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _pack_padded(py: Python<'_>, input: &Bound<'_, PyAny>, lengths: Vec<usize>, batch_first: bool) -> R {
    wrap(py, rnn::pack_padded(&tensor_arg(input)?, &lengths, batch_first).py()?)
}

/// An activation with scalar parameters, by PyTorch's function name.
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (input, name, a=0.0, b=0.0, c=0.0))]
pub fn _activation(py: Python<'_>, input: &Bound<'_, PyAny>, name: &str, a: f64, b: f64, c: f64) -> R {
    let kind = match name {
        "hardtanh" => Act::Hardtanh { min: a, max: b },
        "elu" => Act::Elu { alpha: a, scale: b, input_scale: c, celu: false },
        "celu" => Act::Elu { alpha: a, scale: 1.0, input_scale: 1.0 / a, celu: true },
        "hardswish" => Act::Hardswish,
        "hardsigmoid" => Act::Hardsigmoid,
        "mish" => Act::Mish,
        "threshold" => Act::Threshold { threshold: a, value: b },
        "softshrink" => Act::Softshrink { lambd: a },
        "hardshrink" => Act::Hardshrink { lambd: a },
        other => return Err(PyValueError::new_err(format!("unknown activation {other}"))),
    };
    wrap(py, activation::act(&tensor_arg(input)?, kind).py()?)
}

/// `smooth_l1_loss` (`kind="smooth_l1"`, `param` = beta) or `huber_loss` (`param` = delta).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _robust_loss(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    kind: &str,
    param: f64,
    reduction: &str,
) -> R {
    let kind = if kind == "huber" { RobustLoss::Huber { delta: param } } else { RobustLoss::SmoothL1 { beta: param } };
    let reduction = Reduction::parse(reduction).py()?;
    wrap(py, loss::robust_loss(&tensor_arg(input)?, &tensor_arg(target)?, kind, reduction).py()?)
}

/// One fused `optim.Adam` update of `param` and its state in place (PyTorch's single-tensor
/// arithmetic); `False`, with nothing written, when the tensors do not qualify (see
/// `rustgrad_core::ops::optim::adam_step`).
#[rustgrad_macros::guard]
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn _adam_step(
    py: Python<'_>,
    param: PyRef<'_, PyTensor>,
    grad: PyRef<'_, PyTensor>,
    exp_avg: PyRef<'_, PyTensor>,
    exp_avg_sq: PyRef<'_, PyTensor>,
    lerp_weight: f64,
    beta2: f64,
    square_weight: f64,
    bias_correction2_sqrt: f64,
    eps: f64,
    step_value: f64,
) -> PyResult<bool> {
    let h = optim::AdamStep { lerp_weight, beta2, square_weight, bias_correction2_sqrt, eps, step_value };
    let (p, g, m, v) = (param.t.clone(), grad.t.clone(), exp_avg.t.clone(), exp_avg_sq.t.clone());
    let numel = p.numel();
    Ok(gil::heavy(py, numel, move || optim::adam_step(&p, &g, &m, &v, h)))
}

/// One LSTM step's element-wise part: `(h, c')` from the gate pre-activations and the cell
/// state (`rustgrad_core::ops::rnn::lstm_cell`).
#[rustgrad_macros::guard]
#[pyfunction]
pub fn _lstm_cell(
    py: Python<'_>,
    gates: &Bound<'_, PyAny>,
    c: &Bound<'_, PyAny>,
) -> PyResult<(Py<PyTensor>, Py<PyTensor>)> {
    let (g, c) = (tensor_arg(gates)?, tensor_arg(c)?);
    let (h, c) = gil::heavy(py, g.numel(), move || rnn::lstm_cell(&g, &c)).py()?;
    Ok((wrap(py, h)?, wrap(py, c)?))
}

/// One direction of one LSTM layer over a time-major input: `(output, h_n, c_n)`
/// (`rustgrad_core::ops::rnn::lstm_layer`, PyTorch's `MkldnnRnnLayerBackward0`).
#[rustgrad_macros::guard]
#[pyfunction]
#[pyo3(signature = (input, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse))]
#[allow(clippy::too_many_arguments)]
pub fn _lstm_layer(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    h0: &Bound<'_, PyAny>,
    c0: &Bound<'_, PyAny>,
    w_ih: &Bound<'_, PyAny>,
    w_hh: &Bound<'_, PyAny>,
    b_ih: Option<&Bound<'_, PyAny>>,
    b_hh: Option<&Bound<'_, PyAny>>,
    reverse: bool,
) -> PyResult<(Py<PyTensor>, Py<PyTensor>, Py<PyTensor>)> {
    let (x, h0, c0) = (tensor_arg(input)?, tensor_arg(h0)?, tensor_arg(c0)?);
    let (w_ih, w_hh) = (tensor_arg(w_ih)?, tensor_arg(w_hh)?);
    let b_ih = b_ih.filter(|b| !b.is_none()).map(tensor_arg).transpose()?;
    let b_hh = b_hh.filter(|b| !b.is_none()).map(tensor_arg).transpose()?;
    let work = x.numel() * w_ih.shape().first().copied().unwrap_or(0);
    let (out, h, c) = gil::heavy(py, work, move || {
        let weights = rnn::LstmWeights { w_ih: &w_ih, w_hh: &w_hh, b_ih: b_ih.as_ref(), b_hh: b_hh.as_ref() };
        rnn::lstm_layer(&x, &h0, &c0, weights, reverse)
    })
    .py()?;
    Ok((wrap(py, out)?, wrap(py, h)?, wrap(py, c)?))
}

/// Registers this file's module functions.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_convolution, m)?)?;
    m.add_function(wrap_pyfunction!(_lstm_layer, m)?)?;
    m.add_function(wrap_pyfunction!(_pairwise_distance, m)?)?;
    m.add_function(wrap_pyfunction!(_pack_padded, m)?)?;
    m.add_function(wrap_pyfunction!(_scalar_op, m)?)?;
    m.add_function(wrap_pyfunction!(_im2col, m)?)?;
    m.add_function(wrap_pyfunction!(_col2im, m)?)?;
    m.add_function(wrap_pyfunction!(_max_pool, m)?)?;
    m.add_function(wrap_pyfunction!(_avg_pool, m)?)?;
    m.add_function(wrap_pyfunction!(_adaptive_pool, m)?)?;
    m.add_function(wrap_pyfunction!(_max_unpool, m)?)?;
    m.add_function(wrap_pyfunction!(_batch_norm, m)?)?;
    m.add_function(wrap_pyfunction!(_layer_norm, m)?)?;
    m.add_function(wrap_pyfunction!(_group_norm, m)?)?;
    m.add_function(wrap_pyfunction!(_embedding, m)?)?;
    m.add_function(wrap_pyfunction!(_constant_pad, m)?)?;
    m.add_function(wrap_pyfunction!(_activation, m)?)?;
    m.add_function(wrap_pyfunction!(_robust_loss, m)?)?;
    m.add_function(wrap_pyfunction!(_adam_step, m)?)?;
    m.add_function(wrap_pyfunction!(_lstm_cell, m)?)?;
    Ok(())
}
