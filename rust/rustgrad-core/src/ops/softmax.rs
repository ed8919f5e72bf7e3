//! softmax, log_softmax and logsumexp, computed stably (shifted by the maximum).

use super::arith::{add, mul, sub};
use super::reduce::sum_dims;
use super::unary::{exp, log};
use super::view::{expand_to, unsqueeze};
use crate::autograd::{grad0, record, untracked, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::{self, Shape};
use crate::tensor::Tensor;
use smallvec::{smallvec, SmallVec};

type Dims = SmallVec<[usize; 4]>;

/// The maximum over `dims`, kept as size-1 dims (a zero-size dim gives 0). Not recorded: the
/// shift cancels out.
///
/// With `finite_only`, infinities become 0, so that `x - max` stays finite where a whole slice
/// is ±inf: logsumexp's rule (`logsumexp([inf, 1]) = inf`). softmax and log_softmax shift by
/// the true maximum, as PyTorch does, so a slice holding +inf or only -inf gives NaN.
fn shift(x: &Tensor, dims: &[usize], finite_only: bool) -> Result<Tensor> {
    let mut m = x.data();
    for &d in dims {
        m = if m.shape[d] == 0 {
            let mut one = m.shape.clone();
            one[d] = 1;
            kernels::full(&one, 0.0, m.dtype())
        } else {
            kernels::extreme_dim(&m, d, true, true)?.0
        };
    }
    let m = Tensor::from_data(m);
    if !finite_only {
        return Ok(m);
    }
    let finite = crate::ops::compare::compare(
        &super::unary::abs(&m)?,
        &Tensor::wrapped_scalar(f64::INFINITY),
        kernels::Compare::Ne,
    )?;
    crate::ops::compare::where_(&finite, &m, &Tensor::wrapped_scalar(0.0))
}

/// Softmax kernels exist for floats only; PyTorch names the last-dim one apart. An empty
/// integral input passes through (PyTorch returns it without running a kernel).
fn check_float(x: &Tensor, dim: i64, log: bool) -> Result<Option<Tensor>> {
    let dtype = x.dtype();
    if dtype.is_float() {
        return Ok(None);
    }
    let last = x.ndim() <= 1 || shape::wrap_dim(dim, x.ndim()).is_ok_and(|d| d + 1 == x.ndim());
    if x.numel() == 0 {
        return Ok(Some(crate::creation::zeros(&x.shape(), dtype)));
    }
    let kernel = match (log, last) {
        (false, true) => "softmax_lastdim_kernel_impl",
        (false, false) => "softmax_kernel_impl",
        (true, true) => "log_softmax_lastdim_kernel_impl",
        (true, false) => "log_softmax_kernel_impl",
    };
    Err(Error::kernel_missing(kernel, dtype))
}

fn softmax_dim(x: &Tensor, dim: i64) -> Result<usize> {
    Ok(if x.ndim() == 0 { shape::wrap_dim(dim, 1).map(|_| 0)? } else { shape::wrap_dim(dim, x.ndim())? })
}

/// `softmax(x, dim)`: `exp(x) / sum(exp(x), dim)`.
pub fn softmax(x: &Tensor, dim: i64) -> Result<Tensor> {
    let dim_i = softmax_dim(x, dim)?;
    if let Some(empty) = check_float(x, dim, false)? {
        return Ok(empty);
    }
    let dim = dim_i;
    let dims: Dims = if x.ndim() == 0 { Dims::new() } else { smallvec![dim] };
    let out = untracked(|| {
        let out = crate::autograd::values_in_f32_if_half([x], |[x]| {
            let e = exp(&sub(x, &shift(x, &dims, false)?)?)?;
            crate::ops::arith::div(&e, &sum_dims(&e, &dims, true, None)?)
        })?;
        // PyTorch's softmax kernels write a row-major result whatever the input's layout.
        crate::ops::view::contiguous(&out)
    })?;
    record(out, &[x], |o| SoftmaxBackward { y: SavedTensor::output(o, 0), dims, log: false })
}

/// `log_softmax(x, dim)`: `x - logsumexp(x, dim)`.
pub fn log_softmax(x: &Tensor, dim: i64) -> Result<Tensor> {
    let dim_i = softmax_dim(x, dim)?;
    if let Some(empty) = check_float(x, dim, true)? {
        return Ok(empty);
    }
    let dim = dim_i;
    let dims: Dims = if x.ndim() == 0 { Dims::new() } else { smallvec![dim] };
    let out = untracked(|| {
        let out = crate::autograd::values_in_f32_if_half([x], |[x]| {
            let shifted = sub(x, &shift(x, &dims, false)?)?;
            sub(&shifted, &log(&sum_dims(&exp(&shifted)?, &dims, true, None)?)?)
        })?;
        crate::ops::view::contiguous(&out)
    })?;
    record(out, &[x], |o| SoftmaxBackward { y: SavedTensor::output(o, 0), dims, log: true })
}

/// d softmax: y (g - sum(g y)); d log_softmax: g - exp(y) sum(g)
pub struct SoftmaxBackward {
    y: SavedTensor,
    dims: Dims,
    log: bool,
}
impl Backward for SoftmaxBackward {
    fn name(&self) -> &'static str {
        if self.log {
            "LogSoftmaxBackward0"
        } else {
            "SoftmaxBackward0"
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (g, y) = (grad0(grads)?, self.y.unpack(ctx)?);
        let gx = super::activation::softmax_grad(g, &y, &self.dims, self.log)?;
        Ok(smallvec![Some(gx)])
    }
    // softmax: J = diag(y) - y y^T is symmetric, so J t is the backward applied to t;
    // log_softmax: t - sum(softmax(x) t) over the dims
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        if !self.log {
            return Some(ctx.element_wise(self));
        }
        let formula = || {
            let (t, y) = (ctx.tangent0()?, self.y.unpack(&ctx.backward)?);
            let mean_t = crate::ops::reduce::sum_dims(&mul(&exp(&y)?, t)?, &self.dims, true, None)?;
            sub(t, &mean_t)
        };
        Some(formula())
    }
    crate::saved_tensors!(y => "result");
}

/// `logsumexp(x, dims, keepdim)`: `log(sum(exp(x), dims))`, computed stably.
pub fn logsumexp(x: &Tensor, dims: &[i64], keepdim: bool) -> Result<Tensor> {
    let nd = x.ndim();
    if dims.is_empty() && nd > 0 {
        // No dim reduces all of them; PyTorch then writes the kept-dims result into a 0-d output,
        // which only works with keepdim.
        if !keepdim {
            return Err(Error::runtime(format!(
                "output with shape [] doesn't match the broadcast shape {}",
                shape::fmt_shape(&vec![1; nd])
            )));
        }
        let all: Vec<i64> = (0..nd as i64).collect();
        return logsumexp(x, &all, keepdim);
    }
    let dims: Dims = shape::wrap_dims(dims, nd)?;
    let x_float;
    let x = if x.dtype().is_float() {
        x
    } else {
        x_float = super::view::to_dtype(x, crate::dtype::DType::F32)?;
        &x_float
    };
    let out = untracked(|| {
        let m = shift(x, &dims, true)?;
        let s = log(&sum_dims(&exp(&sub(x, &m)?)?, &dims, true, None)?)?;
        let r = add(&s, &m)?;
        if keepdim {
            Ok(r)
        } else {
            super::view::reshape_to(&r, &kernels::reduced_shape(&x.shape(), &dims, false))
        }
    })?;
    record(out, &[x], |o| LogsumexpBackward {
        x: SavedTensor::input(x),
        result: SavedTensor::output(o, 0),
        self_shape: x.shape(),
        dims: dims.clone(),
        keepdim,
    })
}

/// d logsumexp(x)/dx = exp(x - logsumexp(x)) = softmax(x)
pub struct LogsumexpBackward {
    x: SavedTensor,
    result: SavedTensor,
    self_shape: Shape,
    dims: Dims,
    keepdim: bool,
}
impl Backward for LogsumexpBackward {
    fn name(&self) -> &'static str {
        "LogsumexpBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (mut g, mut r) = (grad0(grads)?.clone(), self.result.unpack(ctx)?);
        if !self.keepdim && !self.self_shape.is_empty() {
            let mut sorted = self.dims.clone();
            sorted.sort_unstable();
            for &d in &sorted {
                g = unsqueeze(&g, d as i64)?;
                r = unsqueeze(&r, d as i64)?;
            }
        }
        let x = self.x.unpack(ctx)?;
        let gx = mul(&expand_to(&g, &self.self_shape)?, &exp(&sub(&x, &r)?)?)?;
        Ok(smallvec![Some(gx)])
    }
    // t = sum(softmax(x) tx) over the dims, softmax(x) = exp(x - result)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let formula = || {
            let (t, x, r) = (ctx.tangent0()?, ctx.inputs[0], ctx.out);
            let r = if self.keepdim || self.self_shape.is_empty() {
                r.clone()
            } else {
                let mut r = r.clone();
                let mut sorted = self.dims.clone();
                sorted.sort_unstable();
                for &d in &sorted {
                    r = unsqueeze(&r, d as i64)?;
                }
                r
            };
            let weights = exp(&sub(x, &r)?)?;
            crate::ops::reduce::sum_dims(&mul(&weights, t)?, &self.dims, self.keepdim, None)
        };
        Some(formula())
    }
    crate::saved_tensors!(x => "self", result);
}
