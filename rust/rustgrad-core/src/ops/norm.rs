//! Normalization layers (batch, layer and group norm) and the embedding lookup. The
//! normalizations share one formula: `xhat = (x - mean) / sqrt(var + eps)` over a set of dims,
//! then a per-channel (or per-element) affine map. Their backward recomputes the statistics
//! from the saved input with the same differentiable ops, so double backward works.

use super::arith::{add, mul, sub};
use super::gather::{index_select, scatter};
use super::reduce::{mean, sum_dims};
use super::unary::unary;
use super::view::{expand_to, reshape_to, unsqueeze};
use crate::autograd::{grad0, record, untracked, Backward, BackwardCtx, Grads, SavedTensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::Unary;
use crate::shape::Shape;
use crate::tensor::Tensor;
use smallvec::{smallvec, SmallVec};

fn scalar(v: f64) -> Tensor {
    Tensor::wrapped_scalar(v)
}

/// Which normalization a node belongs to, with what its backward needs to know.
#[derive(Clone, Debug, PartialEq)]
pub enum NormKind {
    /// `batch_norm`: statistics per channel (dim 1) over every other dim; `training = false`
    /// normalizes with the running statistics instead.
    Batch {
        /// Whether the batch's own statistics were used.
        training: bool,
    },
    /// `layer_norm` over the last `dims` dims.
    Layer {
        /// How many trailing dims are normalized.
        dims: usize,
    },
    /// `group_norm`: the channels split into `groups`, statistics per sample and group.
    Group {
        /// The number of channel groups.
        groups: usize,
    },
}

/// `x` viewed so that the statistics are taken over `dims` of the view, and those dims.
fn grouped(x: &Tensor, kind: &NormKind) -> Result<(Tensor, SmallVec<[usize; 4]>)> {
    let s = x.shape();
    Ok(match kind {
        NormKind::Batch { .. } => (x.clone(), (0..s.len()).filter(|&d| d != 1).collect()),
        NormKind::Layer { dims } => (x.clone(), (s.len() - dims..s.len()).collect()),
        NormKind::Group { groups } => {
            let n = s[0];
            let rest: usize = s[1..].iter().product::<usize>() / groups.max(&1);
            (reshape_to(x, &[n, *groups, rest])?, smallvec![2])
        }
    })
}

/// The mean and `1/sqrt(var + eps)` of `x` over `dims` (kept), in differentiable ops.
fn moments(x: &Tensor, dims: &[usize], eps: f64) -> Result<(Tensor, Tensor)> {
    let dims_i: SmallVec<[i64; 4]> = dims.iter().map(|&d| d as i64).collect();
    let m = mean(x, Some(&dims_i), true, None)?;
    let d = sub(x, &m)?;
    let var = mean(&mul(&d, &d)?, Some(&dims_i), true, None)?;
    let rstd = unary(&add(&var, &scalar(eps))?, Unary::Rsqrt)?;
    Ok((m, rstd))
}

/// The shape that broadcasts a per-channel vector against `x` (`[1, C, 1, ...]`).
fn channel_shape(x: &[usize]) -> SmallVec<[usize; 6]> {
    let mut s: SmallVec<[usize; 6]> = smallvec![1; x.len()];
    if x.len() > 1 {
        s[1] = x[1];
    }
    s
}

/// `x` normalized by `kind` (with the given statistics for batch norm in eval mode), as a
/// differentiable function of `x`: `(xhat, rstd)` in `x`'s shape and the grouped shape.
fn normalized(x: &Tensor, kind: &NormKind, eps: f64, running: Option<(&Tensor, &Tensor)>) -> Result<(Tensor, Tensor)> {
    let xs = x.shape();
    if let (NormKind::Batch { training: false }, Some((rm, rv))) = (kind, running) {
        let cs = channel_shape(&xs);
        let m = reshape_to(rm, &cs)?;
        let rstd = unary(&add(&reshape_to(rv, &cs)?, &scalar(eps))?, Unary::Rsqrt)?;
        return Ok((mul(&sub(x, &m)?, &rstd)?, rstd));
    }
    let (xg, dims) = grouped(x, kind)?;
    let (m, rstd) = moments(&xg, &dims, eps)?;
    let xhat = mul(&sub(&xg, &m)?, &rstd)?;
    Ok((reshape_to(&xhat, &xs)?, rstd))
}

/// The affine parameters viewed to broadcast against `x`.
fn affine_view(p: &Tensor, xs: &[usize], kind: &NormKind) -> Result<Tensor> {
    match kind {
        NormKind::Layer { .. } => Ok(p.clone()),
        _ => reshape_to(p, &channel_shape(xs)),
    }
}

fn same_float(x: &Tensor, others: &[Option<&Tensor>]) -> Result<()> {
    if !x.dtype().is_float() {
        return Err(Error::kernel_missing("batch_norm", x.dtype()));
    }
    for t in others.iter().flatten() {
        if t.dtype() != x.dtype() && !(matches!(x.dtype(), DType::F16 | DType::BF16) && t.dtype() == DType::F32) {
            return Err(Error::runtime(format!(
                "expected scalar type {} but found {}",
                x.dtype().scalar_type_name(),
                t.dtype().scalar_type_name()
            )));
        }
    }
    Ok(())
}

/// `F.batch_norm`: in training, normalizes with the batch's statistics per channel and updates
/// the running ones in place (`r = (1 - momentum) r + momentum stat`, the variance unbiased);
/// otherwise normalizes with the running statistics.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    running_mean: Option<&Tensor>,
    running_var: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Result<Tensor> {
    let xs = x.shape();
    let channels = if xs.len() > 1 { xs[1] } else { 1 };
    for (name, t) in [("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)]
    {
        if let Some(t) = t {
            if t.numel() != channels {
                return Err(Error::runtime(format!("{name} should contain {channels} elements not {}", t.numel())));
            }
        }
    }
    same_float(x, &[weight, bias])?;
    let use_batch = training || running_mean.is_none() || running_var.is_none();
    let kind = NormKind::Batch { training: use_batch };
    let running = running_mean.zip(running_var);
    let stats = if use_batch { None } else { running.map(|(m, v)| (m.detach(), v.detach())) };
    let out = if fused::applies(&[Some(x), weight, bias]) {
        let (values, batch) = fused::forward(x, weight, bias, &kind, eps, stats.as_ref().map(|(m, v)| (m, v)));
        if let (true, Some((rm, rv)), Some((mean, var))) = (training, running, batch) {
            // r = (1 - momentum) r + momentum stat, with the variance unbiased
            let n = xs.iter().product::<usize>() / channels.max(1);
            let unbiased = |v: f64| if n > 1 { v * n as f64 / (n - 1) as f64 } else { f64::NAN };
            for (r, stat) in [(rm, mean), (rv, var.into_iter().map(unbiased).collect())] {
                let old = crate::kernels::cast(&r.data(), DType::F64).to_vec::<f64>();
                let new: Vec<f64> = old.iter().zip(&stat).map(|(o, s)| (1.0 - momentum) * o + momentum * s).collect();
                r.data().write_from(&crate::kernels::from_f64s(&new, &r.shape(), r.dtype()));
            }
        }
        Tensor::from_data(values)
    } else {
        untracked(|| {
            let (xhat, _) = normalized(x, &kind, eps, stats.as_ref().map(|(m, v)| (m, v)))?;
            let mut y = xhat;
            if let Some(w) = weight {
                y = mul(&y, &reshape_to(w, &channel_shape(&xs))?)?;
            }
            if let Some(b) = bias {
                y = add(&y, &reshape_to(b, &channel_shape(&xs))?)?;
            }
            if training {
                if let Some((rm, rv)) = running {
                    let dims: SmallVec<[i64; 4]> = (0..xs.len() as i64).filter(|&d| d != 1).collect();
                    let n = xs.iter().product::<usize>() / channels.max(1);
                    let m = mean(x, Some(&dims), false, None)?;
                    let d = sub(x, &reshape_to(&m, &channel_shape(&xs))?)?;
                    let var = super::arith::div_number(
                        &sum_dims(&mul(&d, &d)?, &dims.iter().map(|&d| d as usize).collect::<Vec<_>>(), false, None)?,
                        (n.max(2) - 1) as f64,
                    )?;
                    let var = if n == 1 { mul(&var, &scalar(f64::NAN))? } else { var };
                    for (r, stat) in [(rm, m), (rv, var)] {
                        let updated =
                            add(&mul(&r.detach(), &scalar(1.0 - momentum))?, &mul(&stat, &scalar(momentum))?)?;
                        let updated = super::view::to_dtype(&updated, r.dtype())?;
                        r.data().write_from(&crate::kernels::contiguous_copy(&updated.data()));
                    }
                }
            }
            Ok(y)
        })?
    };
    let inputs: SmallVec<[&Tensor; 3]> = [Some(x), weight, bias].into_iter().flatten().collect();
    record(out, &inputs, |_| NormBackward {
        x: SavedTensor::input(x),
        weight: weight.map(SavedTensor::input).unwrap_or_else(SavedTensor::none),
        stats: stats.map(|(m, v)| [m, v]),
        has_weight: weight.is_some(),
        has_bias: bias.is_some(),
        kind,
        eps,
    })
}

/// `F.layer_norm` over the trailing dims `normalized_shape`.
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let xs = x.shape();
    let k = normalized_shape.len();
    let fits = k <= xs.len() && xs[xs.len() - k..] == *normalized_shape;
    if !fits {
        let want: Vec<String> = normalized_shape.iter().map(|s| s.to_string()).collect();
        let got: Vec<String> = xs.iter().map(|s| s.to_string()).collect();
        return Err(Error::runtime(format!(
            "Given normalized_shape=[{}], expected input with shape [*, {}], but got input of size[{}]",
            want.join(", "),
            want.join(", "),
            got.join(", ")
        )));
    }
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if let Some(t) = t {
            if t.shape().as_slice() != normalized_shape {
                let want: Vec<String> = normalized_shape.iter().map(|s| s.to_string()).collect();
                let got: Vec<String> = t.shape().iter().map(|s| s.to_string()).collect();
                return Err(Error::runtime(format!(
                    "Expected {name} to be of same shape as normalized_shape, but got {name} of shape [{}] and normalized_shape = [{}]",
                    got.join(", "),
                    want.join(", ")
                )));
            }
        }
    }
    if !x.dtype().is_float() {
        return Err(Error::kernel_missing("LayerNormKernelImpl", x.dtype()));
    }
    affine_norm(x, weight, bias, NormKind::Layer { dims: k }, eps)
}

/// `F.group_norm` with `groups` channel groups.
pub fn group_norm(
    x: &Tensor,
    groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let xs = x.shape();
    let channels = if xs.len() > 1 { xs[1] } else { 0 };
    let dims: Vec<String> = xs.iter().map(|s| s.to_string()).collect();
    if groups == 0 || channels % groups != 0 {
        return Err(Error::runtime(format!(
            "Expected number of channels in input to be divisible by num_groups, but got input of shape [{}] and num_groups={groups}",
            dims.join(", ")
        )));
    }
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if let Some(t) = t {
            if t.ndim() != 1 || t.numel() != channels {
                let got: Vec<String> = t.shape().iter().map(|s| s.to_string()).collect();
                return Err(Error::runtime(format!(
                    "Expected {name} to be a vector of size equal to the number of channels in input, but got {name} of shape [{}] and input of shape [{}]",
                    got.join(", "),
                    dims.join(", ")
                )));
            }
        }
    }
    if !x.dtype().is_float() {
        return Err(Error::kernel_missing("GroupNormKernelImpl", x.dtype()));
    }
    affine_norm(x, weight, bias, NormKind::Group { groups }, eps)
}

fn affine_norm(x: &Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>, kind: NormKind, eps: f64) -> Result<Tensor> {
    let xs = x.shape();
    let out = if fused::applies(&[Some(x), weight, bias]) {
        Tensor::from_data(fused::forward(x, weight, bias, &kind, eps, None).0)
    } else {
        untracked(|| {
            let (mut y, _) = normalized(x, &kind, eps, None)?;
            if let Some(w) = weight {
                y = mul(&y, &affine_view(w, &xs, &kind)?)?;
            }
            if let Some(b) = bias {
                y = add(&y, &affine_view(b, &xs, &kind)?)?;
            }
            Ok(y)
        })?
    };
    let inputs: SmallVec<[&Tensor; 3]> = [Some(x), weight, bias].into_iter().flatten().collect();
    record(out, &inputs, |_| NormBackward {
        x: SavedTensor::input(x),
        weight: weight.map(SavedTensor::input).unwrap_or_else(SavedTensor::none),
        stats: None,
        has_weight: weight.is_some(),
        has_bias: bias.is_some(),
        kind,
        eps,
    })
}

/// With `gh = g w` and `xhat` over the normalized dims R:
/// dx = rstd (gh - mean_R(gh) - xhat mean_R(gh xhat)) (eval batch norm: rstd gh),
/// dw = sum(g xhat), db = sum(g) over every dim the parameter is broadcast along
pub struct NormBackward {
    x: SavedTensor,
    weight: SavedTensor,
    /// Batch norm in eval mode: the running mean and variance used (detached).
    stats: Option<[Tensor; 2]>,
    has_weight: bool,
    has_bias: bool,
    kind: NormKind,
    eps: f64,
}
impl Backward for NormBackward {
    fn name(&self) -> &'static str {
        match self.kind {
            NormKind::Batch { .. } => "NativeBatchNormBackward0",
            NormKind::Layer { .. } => "NativeLayerNormBackward0",
            NormKind::Group { .. } => "NativeGroupNormBackward0",
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let x = self.x.unpack(ctx)?;
        let xs = x.shape();
        let kind = &self.kind;
        let weight = if self.has_weight { Some(self.weight.unpack(ctx)?) } else { None };
        let bias_shape: Shape = match kind {
            NormKind::Layer { dims } => xs[xs.len() - dims..].into(),
            _ => smallvec![xs[1]],
        };
        let stats = self.stats.as_ref().map(|[m, v]| (m, v));
        if !crate::autograd::any_requires_grad(&[g, &x])
            && !weight.as_ref().is_some_and(|w| crate::autograd::any_requires_grad(&[w]))
            && fused::applies(&[Some(g), Some(&x), weight.as_ref()])
        {
            // no graph to build: the fused kernel (Note [Fused normalization kernels])
            let (gx, gw, gb) = fused::backward(g, &x, weight.as_ref(), kind, self.eps, stats);
            let mut out: Grads = smallvec![ctx.needs(0).then(|| Tensor::from_data(gx))];
            let mut next = 1;
            if let Some(w) = &weight {
                let gw = gw.map(|d| {
                    Tensor::from_data(d.restrided(w.shape(), crate::shape::contiguous_strides(&w.shape()), 0))
                });
                out.push(if ctx.needs(next) { gw } else { None });
                next += 1;
            }
            if self.has_bias {
                let gb = Tensor::from_data(gb.restrided(
                    bias_shape.clone(),
                    crate::shape::contiguous_strides(&bias_shape),
                    0,
                ));
                out.push(ctx.needs(next).then_some(gb));
            }
            return Ok(out);
        }
        let (xhat, rstd) = normalized(&x, kind, self.eps, stats)?;
        // the dims a parameter is broadcast along
        let param_dims: Vec<usize> = match kind {
            NormKind::Layer { dims } => (0..xs.len() - dims).collect(),
            _ => (0..xs.len()).filter(|&d| d != 1).collect(),
        };
        let gx = if ctx.needs(0) {
            let gh = match &weight {
                Some(w) => mul(g, &affine_view(w, &xs, kind)?)?,
                None => g.clone(),
            };
            Some(if let NormKind::Batch { training: false } = kind {
                mul(&gh, &rstd)?
            } else {
                let (ghg, dims) = grouped(&gh, kind)?;
                let (xhg, _) = grouped(&xhat, kind)?;
                let dims_i: SmallVec<[i64; 4]> = dims.iter().map(|&d| d as i64).collect();
                let m1 = mean(&ghg, Some(&dims_i), true, None)?;
                let m2 = mean(&mul(&ghg, &xhg)?, Some(&dims_i), true, None)?;
                let inner = sub(&sub(&ghg, &m1)?, &mul(&xhg, &m2)?)?;
                reshape_to(&mul(&rstd, &inner)?, &xs)?
            })
        } else {
            None
        };
        let reduce_to_param = |t: &Tensor, like: &Tensor| -> Result<Tensor> {
            reshape_to(&sum_dims(t, &param_dims, false, None)?, &like.shape())
        };
        let mut out: Grads = smallvec![gx];
        let mut next = 1;
        if let Some(w) = &weight {
            out.push(if ctx.needs(next) { Some(reduce_to_param(&mul(g, &xhat)?, w)?) } else { None });
            next += 1;
        }
        if self.has_bias {
            out.push(if ctx.needs(next) {
                Some(reshape_to(&sum_dims(g, &param_dims, false, None)?, &bias_shape)?)
            } else {
                None
            });
        }
        Ok(out)
    }
    fn release(&mut self) {
        self.x.release();
        self.weight.release();
        self.stats = None;
    }
    fn saves_tensors(&self) -> bool {
        true
    }
    fn retarget_outputs(&mut self, target: &Tensor) {
        self.x.retarget_output(target);
        self.weight.retarget_output(target);
    }
}

/// `F.embedding`: the rows of `weight` picked by `indices` (`[*indices.shape, D]`). The row
/// `padding_idx` gets no gradient; `scale_grad_by_freq` divides each row's gradient by how
/// often its index occurs.
pub fn embedding(
    weight: &Tensor,
    indices: &Tensor,
    padding_idx: Option<usize>,
    scale_grad_by_freq: bool,
) -> Result<Tensor> {
    if !matches!(indices.dtype(), DType::I64 | DType::I32) {
        return Err(Error::runtime(format!(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got {} instead (while checking arguments for embedding)",
            indices.dtype().legacy_name()
        )));
    }
    if weight.ndim() != 2 {
        return Err(Error::runtime("'weight' must be 2-D"));
    }
    let ws = weight.shape();
    let flat = reshape_to(indices, &[indices.numel()])?;
    let picked = untracked(|| index_select(&weight.detach(), 0, &flat))?;
    let mut shape: Shape = indices.shape();
    shape.push(ws[1]);
    let out = untracked(|| reshape_to(&picked, &shape))?;
    let out = Tensor::from_data(crate::kernels::contiguous_copy(&out.data()));
    let saved = indices.clone();
    record(out, &[weight], |_| EmbeddingBackward {
        indices: SavedTensor::input(&saved),
        rows: ws[0],
        padding_idx,
        scale_grad_by_freq,
    })
}

/// d embedding/dweight: each gradient row added to the weight row its index picked
pub struct EmbeddingBackward {
    indices: SavedTensor,
    rows: usize,
    padding_idx: Option<usize>,
    scale_grad_by_freq: bool,
}
impl Backward for EmbeddingBackward {
    fn name(&self) -> &'static str {
        "EmbeddingBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let indices = self.indices.unpack(ctx)?;
        let n = indices.numel();
        let d = *g.shape().last().unwrap_or(&1);
        let flat_i = super::view::to_dtype(&reshape_to(&indices, &[n])?, DType::I64)?;
        let mut rows = reshape_to(g, &[n, d])?;
        let idx = flat_i.to_vec::<i64>();
        let mut factors: Vec<f64> = vec![1.0; n];
        if self.scale_grad_by_freq {
            let mut counts = std::collections::HashMap::new();
            for &i in &idx {
                *counts.entry(i).or_insert(0usize) += 1;
            }
            for (f, i) in factors.iter_mut().zip(&idx) {
                *f = 1.0 / counts[i] as f64;
            }
        }
        if let Some(p) = self.padding_idx {
            for (f, &i) in factors.iter_mut().zip(&idx) {
                if i == p as i64 {
                    *f = 0.0;
                }
            }
        }
        if factors.iter().any(|&f| f != 1.0) {
            let scale = Tensor::from_data(crate::kernels::from_f64s(&factors, &[n, 1], g.dtype()));
            rows = mul(&rows, &scale)?;
        }
        let index = expand_to(&unsqueeze(&flat_i, 1)?, &[n, d])?;
        let zeros = crate::creation::zeros(&[self.rows, d], g.dtype());
        Ok(smallvec![Some(scatter(&zeros, 0, &index, &rows, true)?)])
    }
    crate::saved_tensors!(indices);
}

/// Note [Fused normalization kernels]: the composite formulas above are the definition (and
/// what a `create_graph` backward records); for float32/float64 the forward values, and the
/// backward when no graph is being built, come from these one-pass-per-group kernels instead of
/// a dozen whole-tensor ops. Statistics accumulate in f64.
mod fused {
    use super::NormKind;
    use crate::dtype::{DType, Element, Float};
    use crate::kernels;
    use crate::tensor::{Tensor, TensorData};
    use rayon::prelude::*;

    /// Where the elements of `x` (row-major `[outer, channels, inner]`) meet their statistics
    /// and parameters.
    #[derive(Clone, Copy)]
    pub struct Layout {
        /// BN: per channel over (outer, inner); rows: per contiguous run of `row` elements.
        pub per_channel: bool,
        pub outer: usize,
        pub channels: usize,
        pub inner: usize,
        /// The length of a statistics row (row layouts).
        pub row: usize,
        /// Parameters per channel (BN, GN) or per position within the row (LN).
        pub param_per_channel: bool,
    }

    impl Layout {
        pub fn of(shape: &[usize], kind: &NormKind) -> Layout {
            let n: usize = shape.iter().product();
            let outer = shape.first().copied().unwrap_or(1);
            let channels = if shape.len() > 1 { shape[1] } else { 1 };
            let inner = shape.iter().skip(2).product();
            match kind {
                NormKind::Batch { .. } => {
                    Layout { per_channel: true, outer, channels, inner, row: 0, param_per_channel: true }
                }
                NormKind::Layer { dims } => {
                    let row: usize = shape[shape.len() - dims..].iter().product();
                    Layout {
                        per_channel: false,
                        outer: n / row.max(1),
                        channels: 1,
                        inner: row,
                        row,
                        param_per_channel: false,
                    }
                }
                NormKind::Group { groups } => {
                    let row = n.checked_div(outer * groups).unwrap_or(0);
                    Layout { per_channel: false, outer, channels, inner, row, param_per_channel: true }
                }
            }
        }
        fn groups(&self, n: usize) -> usize {
            if self.per_channel {
                self.channels
            } else {
                n.checked_div(self.row).unwrap_or(0)
            }
        }
        #[inline]
        fn param(&self, i: usize) -> usize {
            if self.param_per_channel {
                (i / self.inner.max(1)) % self.channels.max(1)
            } else {
                i % self.row.max(1)
            }
        }
        /// Calls `f(i)` for every element index of statistics group `g`.
        #[inline]
        fn for_each(&self, g: usize, mut f: impl FnMut(usize)) {
            if self.per_channel {
                for o in 0..self.outer {
                    let base = (o * self.channels + g) * self.inner;
                    for i in base..base + self.inner {
                        f(i);
                    }
                }
            } else {
                for i in g * self.row..(g + 1) * self.row {
                    f(i);
                }
            }
        }
    }

    /// Whether the fused kernels apply: float32/float64 everywhere.
    pub fn applies(tensors: &[Option<&Tensor>]) -> bool {
        let mut dtype = None;
        for t in tensors.iter().flatten() {
            let d = t.dtype();
            if !matches!(d, DType::F32 | DType::F64) || dtype.is_some_and(|x| x != d) {
                return false;
            }
            dtype = Some(d);
        }
        true
    }

    fn vals<T: Float>(t: Option<&Tensor>) -> Option<Vec<T>> {
        t.map(|t| kernels::values::<T>(&t.data()).into_owned())
    }

    /// Per group: the mean and the biased variance of `x`.
    pub fn moments<T: Float>(x: &[T], l: &Layout) -> (Vec<f64>, Vec<f64>) {
        let groups = l.groups(x.len());
        (0..groups)
            .into_par_iter()
            .map(|g| {
                let (mut s, mut m) = (0.0f64, 0usize);
                l.for_each(g, |i| {
                    s += x[i].to_f64();
                    m += 1;
                });
                let mean = if m == 0 { f64::NAN } else { s / m as f64 };
                let mut q = 0.0f64;
                l.for_each(g, |i| {
                    let d = x[i].to_f64() - mean;
                    q += d * d;
                });
                (mean, if m == 0 { f64::NAN } else { q / m as f64 })
            })
            .unzip()
    }

    /// `(x - mean) rstd w + b` per element, with per-group `mean` and `rstd`.
    fn affine<T: Float>(x: &[T], l: &Layout, mean: &[f64], rstd: &[f64], w: Option<&[T]>, b: Option<&[T]>) -> Vec<T> {
        let mut out = crate::alloc::vec_zeroed::<T>(x.len());
        let groups = l.groups(x.len());
        let ptr = SendPtr(out.as_mut_ptr());
        (0..groups).into_par_iter().for_each(|g| {
            let p = ptr;
            l.for_each(g, |i| {
                let k = l.param(i);
                let mut v = (x[i].to_f64() - mean[g]) * rstd[g];
                if let Some(w) = w {
                    v *= w[k].to_f64();
                }
                if let Some(b) = b {
                    v += b[k].to_f64();
                }
                // SAFETY: every element belongs to exactly one group, so writes never overlap.
                unsafe { *p.0.add(i) = T::from_f64(v) };
            });
        });
        out
    }

    #[derive(Clone, Copy)]
    struct SendPtr<T>(*mut T);
    // SAFETY: used only for disjoint writes from the groups of one call.
    unsafe impl<T> Send for SendPtr<T> {}
    // SAFETY: as above.
    unsafe impl<T> Sync for SendPtr<T> {}

    /// The normalized and affine-mapped values; `stats` overrides the batch statistics (batch
    /// norm in eval mode: running mean and variance). Also returns the batch moments.
    pub fn forward(
        x: &Tensor,
        w: Option<&Tensor>,
        b: Option<&Tensor>,
        kind: &NormKind,
        eps: f64,
        stats: Option<(&Tensor, &Tensor)>,
    ) -> (TensorData, Option<(Vec<f64>, Vec<f64>)>) {
        let l = Layout::of(&x.shape(), kind);
        crate::with_single_or_double!(x.dtype(), T => {
            let xd = x.data();
            let xv = kernels::values::<T>(&xd);
            let (wv, bv) = (vals::<T>(w), vals::<T>(b));
            let (mean, rstd, batch) = match stats {
                Some((m, v)) => {
                    let m = kernels::cast(&m.data(), DType::F64).to_vec::<f64>();
                    let r: Vec<f64> = kernels::cast(&v.data(), DType::F64).to_vec::<f64>().iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
                    (m, r, None)
                }
                None => {
                    let (m, v) = moments(&xv, &l);
                    let r: Vec<f64> = v.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
                    (m.clone(), r, Some((m, v)))
                }
            };
            let out = affine(&xv, &l, &mean, &rstd, wv.as_deref(), bv.as_deref());
            (TensorData::from_vec(out, x.shape()), batch)
        })
    }

    /// The first-order gradients of input, weight and bias (see `NormBackward`), without a graph.
    pub fn backward(
        g: &Tensor,
        x: &Tensor,
        w: Option<&Tensor>,
        kind: &NormKind,
        eps: f64,
        stats: Option<(&Tensor, &Tensor)>,
    ) -> (TensorData, Option<TensorData>, TensorData) {
        let l = Layout::of(&x.shape(), kind);
        let n = x.numel();
        crate::with_single_or_double!(x.dtype(), T => {
            let (xd, gd) = (x.data(), g.data());
            let xv = kernels::values::<T>(&xd);
            let gv = kernels::values::<T>(&gd);
            let wv = vals::<T>(w);
            let frozen = stats.is_some();
            let (mean, rstd): (Vec<f64>, Vec<f64>) = match stats {
                Some((m, v)) => (
                    kernels::cast(&m.data(), DType::F64).to_vec::<f64>(),
                    kernels::cast(&v.data(), DType::F64).to_vec::<f64>().iter().map(|v| 1.0 / (v + eps).sqrt()).collect(),
                ),
                None => {
                    let (m, v) = moments(&xv, &l);
                    (m, v.iter().map(|v| 1.0 / (v + eps).sqrt()).collect())
                }
            };
            let groups = l.groups(n);
            let nparams = if l.param_per_channel { l.channels } else { l.row };
            let mut gx = crate::alloc::vec_zeroed::<T>(n);
            let ptr = SendPtr(gx.as_mut_ptr());
            (0..groups).into_par_iter().for_each(|grp| {
                let p = ptr;
                let (mut a, mut bsum, mut m) = (0.0f64, 0.0f64, 0usize);
                if !frozen {
                    l.for_each(grp, |i| {
                        let gh = gv[i].to_f64() * wv.as_ref().map_or(1.0, |w| w[l.param(i)].to_f64());
                        let xhat = (xv[i].to_f64() - mean[grp]) * rstd[grp];
                        a += gh;
                        bsum += gh * xhat;
                        m += 1;
                    });
                }
                let m = m.max(1) as f64;
                l.for_each(grp, |i| {
                    let gh = gv[i].to_f64() * wv.as_ref().map_or(1.0, |w| w[l.param(i)].to_f64());
                    let v = if frozen {
                        gh * rstd[grp]
                    } else {
                        let xhat = (xv[i].to_f64() - mean[grp]) * rstd[grp];
                        rstd[grp] * (gh - a / m - xhat * bsum / m)
                    };
                    // SAFETY: groups partition the elements, so writes never overlap.
                    unsafe { *p.0.add(i) = T::from_f64(v) };
                });
            });
            let mut gw = vec![0.0f64; nparams];
            let mut gb = vec![0.0f64; nparams];
            for grp in 0..groups {
                l.for_each(grp, |i| {
                    let k = l.param(i);
                    let xhat = (xv[i].to_f64() - mean[grp]) * rstd[grp];
                    gw[k] += gv[i].to_f64() * xhat;
                    gb[k] += gv[i].to_f64();
                });
            }
            let pshape: crate::shape::Shape = smallvec::smallvec![nparams];
            let to = |v: Vec<f64>| TensorData::from_vec(v.into_iter().map(T::from_f64).collect::<Vec<T>>(), pshape.clone());
            (TensorData::from_vec(gx, x.shape()), wv.is_some().then(|| to(gw.clone())), to(gb))
        })
    }
}
