//! Loss functions with PyTorch's fused backward nodes: mse_loss, nll_loss,
//! binary_cross_entropy and binary_cross_entropy_with_logits.

use super::arith::{add, div, mul, neg, sub};
use super::compare::compare;
use super::elementwise::{clamp, extremum, ClampKind};
use super::gather::scatter;
use super::reduce::{mean, sum};
use super::unary::{abs, exp, log, sigmoid};
use super::view::{reshape_to, sum_to};
use crate::autograd::{grad0, record, untracked, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::{self, Shape};
use crate::tensor::Tensor;
use smallvec::smallvec;

/// How a loss combines its per-element values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// The per-element losses.
    None,
    /// Their mean.
    Mean,
    /// Their sum.
    Sum,
}

impl Reduction {
    /// `"none"`, `"mean"` or `"sum"`; anything else is a `ValueError`.
    pub fn parse(s: &str) -> Result<Reduction> {
        match s {
            "none" => Ok(Reduction::None),
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            other => Err(Error::Value(format!("{other} is not a valid value for reduction"))),
        }
    }

    fn apply(self, per_element: &Tensor) -> Result<Tensor> {
        match self {
            Reduction::None => Ok(per_element.clone()),
            Reduction::Mean => mean(per_element, None, false, None),
            Reduction::Sum => sum(per_element, None, false, None),
        }
    }

    /// The gradient of the reduction, broadcast to the per-element `shape`.
    fn spread(self, g: &Tensor, shape: &[usize]) -> Result<Tensor> {
        match self {
            Reduction::None => Ok(g.clone()),
            Reduction::Sum => super::view::expand_to(g, shape),
            Reduction::Mean => {
                let n = shape::numel(shape) as f64;
                super::view::expand_to(&div(g, &Tensor::wrapped_scalar(n))?, shape)
            }
        }
    }
}

fn scalar(v: f64) -> Tensor {
    Tensor::wrapped_scalar(v)
}

/// `mse_loss(x, y)`: the reduced `(x - y)²`.
pub fn mse_loss(x: &Tensor, y: &Tensor, reduction: Reduction) -> Result<Tensor> {
    // The loss kernel subtracts a bool target as numbers (`-` on bools is refused elsewhere).
    let y = &if y.dtype() == crate::dtype::DType::Bool {
        super::view::to_dtype(y, x.dtype().to_float())?
    } else {
        y.clone()
    };
    let (out, shape) = untracked(|| {
        let d = sub(x, y)?;
        Ok((reduction.apply(&mul(&d, &d)?)?, d.shape()))
    })?;
    record(out, &[x, y], |_| MseLossBackward { x: SavedTensor::input(x), y: SavedTensor::input(y), shape, reduction })
}

/// d mse/dx = 2 (x - y) (/ n for the mean), d/dy = -d/dx
pub struct MseLossBackward {
    x: SavedTensor,
    y: SavedTensor,
    shape: Shape,
    reduction: Reduction,
}
impl Backward for MseLossBackward {
    fn name(&self) -> &'static str {
        "MseLossBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (x, y) = (self.x.unpack(ctx)?, self.y.unpack(ctx)?);
        let g = grad0(grads)?;
        let (r, shape) = (self.reduction, &self.shape);
        let gx = if ctx.needs(0) { Some(mse_grad(g, &x, &y, r, shape)?) } else { None };
        let gy = if ctx.needs(1) { Some(mse_grad(g, &y, &x, r, shape)?) } else { None };
        Ok(smallvec![gx, gy])
    }
    // t = reduce(2 (x - y) (tx - ty))
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let (x, y) = (ctx.inputs[0], ctx.inputs[1]);
        let formula = || {
            let dt = ctx.sum_terms([Ok(ctx.tangent(0).cloned()), ctx.tangent(1).map(neg).transpose()])?;
            let per_element = mul(&mul(&sub(x, y)?, &scalar(2.0))?, &dt)?;
            self.reduction.apply(&per_element)
        };
        Some(formula())
    }
    crate::saved_tensors!(x => "self", y => "target");
}

/// mse_loss's backward formula for `a` (the other operand `b`), one node when differentiated
/// again (`MseLossBackwardBackward0`): `2 (a - b) spread(g)`, summed to `a`'s shape.
fn mse_grad(g: &Tensor, a: &Tensor, b: &Tensor, reduction: Reduction, shape: &Shape) -> Result<Tensor> {
    let out = untracked(|| {
        let gd = mul(&mul(&sub(a, b)?, &scalar(2.0))?, &reduction.spread(g, shape)?)?;
        sum_to(&gd, &a.shape())
    })?;
    record(out, &[g, a, b], |_| MseGradBackward {
        g: SavedTensor::input(g),
        a: SavedTensor::input(a),
        b: SavedTensor::input(b),
        shape: shape.clone(),
        reduction,
    })
}

/// d/dg = reduce(2 (a - b) gg), d/da = 2 gg spread(g), d/db = -d/da
pub struct MseGradBackward {
    g: SavedTensor,
    a: SavedTensor,
    b: SavedTensor,
    shape: Shape,
    reduction: Reduction,
}
impl Backward for MseGradBackward {
    fn name(&self) -> &'static str {
        "MseLossBackwardBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let gg = grad0(grads)?;
        let (g, a, b) = (self.g.unpack(ctx)?, self.a.unpack(ctx)?, self.b.unpack(ctx)?);
        let gg2 = mul(gg, &scalar(2.0))?;
        let dg = if ctx.needs(0) {
            let per = super::view::expand_to(&mul(&sub(&a, &b)?, &gg2)?, &self.shape)?;
            let reduced = self.reduction.apply(&per)?;
            Some(if self.reduction == Reduction::None { sum_to(&reduced, &g.shape())? } else { reduced })
        } else {
            None
        };
        let da_full = if ctx.needs(1) || ctx.needs(2) {
            Some(mul(&gg2, &self.reduction.spread(&g, &self.shape)?)?)
        } else {
            None
        };
        let da = match (&da_full, ctx.needs(1)) {
            (Some(d), true) => Some(sum_to(d, &a.shape())?),
            _ => None,
        };
        let db = match (&da_full, ctx.needs(2)) {
            (Some(d), true) => Some(sum_to(&neg(d)?, &b.shape())?),
            _ => None,
        };
        Ok(smallvec![dg, da, db])
    }
    crate::saved_tensors!(g, a, b);
}

/// `nll_loss(x, target)` for `x` of shape `[N, C]` (or `[C]`) of log-probabilities and class
/// indices `target` (`[N]` or `[]`): the reduced `-weight[t] x[i, t_i]`, skipping `ignore_index`.
/// `spatial`: the rows are the positions of a `[N, C, d1, ...]` input (`NllLoss2DBackward0`).
pub fn nll_loss(
    x: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    ignore_index: i64,
    spatial: bool,
) -> Result<Tensor> {
    let xs = x.shape();
    if target.dtype() != DType::I64 {
        return Err(Error::runtime(format!(
            "expected scalar type Long but found {}",
            target.dtype().scalar_type_name()
        )));
    }
    if xs.is_empty() || xs.len() > 2 {
        return Err(Error::Value(format!("Expected 1 or 2 dimensions (got {})", xs.len())));
    }
    let ts = target.shape();
    let (n, c) = if xs.len() == 2 { (xs[0], xs[1]) } else { (1, xs[0]) };
    if (xs.len() == 2 && ts.as_slice() != [n]) || (xs.len() == 1 && !ts.is_empty()) {
        if xs.len() == 2 && ts.len() == 1 {
            return Err(Error::Value(format!(
                "Expected input batch_size ({n}) to match target batch_size ({}).",
                ts[0]
            )));
        }
        return Err(Error::runtime(format!(
            "0D or 1D target tensor expected, multi-target not supported (got target of shape {})",
            shape::fmt_shape(&ts)
        )));
    }
    if let Some(w) = weight {
        if w.shape().as_slice() != [c] {
            return Err(Error::runtime(format!(
                "weight tensor should be defined either for all {c} classes or no classes but got weight tensor of shape: {}",
                shape::fmt_shape(&w.shape())
            )));
        }
    }
    let targets = target.to_vec::<i64>();
    let class_weight: Vec<f64> = weight.map(|w| w.to_vec::<f64>()).unwrap_or_else(|| vec![1.0; c]);
    let mut row_weight = Vec::with_capacity(n);
    let mut index = Vec::with_capacity(n);
    for &t in &targets {
        if t == ignore_index {
            row_weight.push(0.0);
            index.push(0);
            continue;
        }
        if t < 0 || t as usize >= c {
            return Err(Error::Index(format!("Target {t} is out of bounds.")));
        }
        row_weight.push(class_weight[t as usize]);
        index.push(t);
    }
    let total_weight: f64 = row_weight.iter().sum();
    // Per-row coefficients of x[i, t_i] in the loss.
    let scale = match reduction {
        Reduction::Mean => 1.0 / total_weight,
        _ => 1.0,
    };
    let dtype = x.dtype();
    let column = |values: Vec<f64>| Tensor::from_data(kernels::cast(&kernels::from_vec(values, &[n, 1]), dtype));
    let index = Tensor::from_data(kernels::from_vec(index, &[n, 1]));
    let out = untracked(|| {
        let x2 = reshape_to(x, &[n, c])?;
        // Ignored rows are left out, not multiplied by 0: their inputs may be NaN.
        let kept = Tensor::from_data(kernels::from_vec(targets.iter().map(|&t| t != ignore_index).collect(), &[n, 1]));
        let weighted = mul(&super::gather::gather(&x2, 1, &index)?, &column(row_weight.iter().map(|w| -w).collect()))?;
        let picked = crate::ops::compare::where_(&kept, &weighted, &scalar(0.0))?;
        match reduction {
            Reduction::None => reshape_to(&picked, &ts),
            Reduction::Sum => sum(&picked, None, false, None),
            // The weighted sum over the total weight: NaN for an empty or fully ignored batch.
            Reduction::Mean => div(&sum(&picked, None, false, None)?, &scalar(total_weight)),
        }
    })?;
    // An ignored row (weight 0) gets 0 even when the total weight is 0 (not 0 * inf = NaN).
    let coef = column(row_weight.iter().map(|&w| if w == 0.0 { 0.0 } else { -w * scale }).collect());
    record(out, &[x], |_| NllLossBackward {
        coef: SavedTensor::input(&coef),
        index: SavedTensor::input(&index),
        target: SavedTensor::input(target),
        weight: weight.map(SavedTensor::input),
        self_shape: xs.clone(),
        reduction,
        spatial,
    })
}

/// d nll/dx[i, c] = -weight[t_i] [c == t_i] (/ total weight for the mean)
pub struct NllLossBackward {
    coef: SavedTensor,
    index: SavedTensor,
    /// Saved for their versions only: the target or class weights modified in place are an
    /// error, as in PyTorch.
    target: SavedTensor,
    weight: Option<SavedTensor>,
    self_shape: Shape,
    reduction: Reduction,
    spatial: bool,
}
impl Backward for NllLossBackward {
    fn name(&self) -> &'static str {
        if self.spatial {
            "NllLoss2DBackward0"
        } else {
            "NllLossBackward0"
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        self.target.unpack(ctx)?;
        self.weight.as_ref().map(|w| w.unpack(ctx)).transpose()?;
        let (coef, index) = (self.coef.unpack(ctx)?, self.index.unpack(ctx)?);
        let n = index.shape()[0];
        let c = *self.self_shape.last().unwrap_or(&1);
        let g = if self.reduction == Reduction::None { reshape_to(g, &[n, 1])? } else { g.clone() };
        // Ignored rows get nothing, even a NaN gradient (PyTorch writes only the other rows).
        let ignored = crate::ops::compare::compare(&coef, &scalar(0.0), kernels::Compare::Eq)?;
        let values = crate::ops::compare::where_(&ignored, &scalar(0.0), &mul(&coef, &g)?)?;
        let zeros = crate::creation::zeros(&[n, c], values.dtype());
        let gx = scatter(&zeros, 1, &index, &values, false)?;
        Ok(smallvec![Some(reshape_to(&gx, &self.self_shape)?)])
    }
    // t = reduce(coef_i tx[i, target_i]) (linear in x; ignored rows give 0)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let formula = || {
            let (coef, index) = (self.coef.unpack(&ctx.backward)?, self.index.unpack(&ctx.backward)?);
            let n = index.shape()[0];
            let c = *self.self_shape.last().unwrap_or(&1);
            let picked = super::gather::gather(&reshape_to(ctx.tangent0()?, &[n, c])?, 1, &index)?;
            let ignored = crate::ops::compare::compare(&coef, &scalar(0.0), kernels::Compare::Eq)?;
            let values = crate::ops::compare::where_(&ignored, &scalar(0.0), &mul(&coef, &picked)?)?;
            match self.reduction {
                Reduction::None => reshape_to(&values, &ctx.out.shape()),
                Reduction::Sum | Reduction::Mean => sum(&values, None, false, None),
            }
        };
        Some(formula())
    }
    fn release(&mut self) {
        self.weight.iter_mut().for_each(SavedTensor::release);
        [&mut self.coef, &mut self.index, &mut self.target].into_iter().for_each(SavedTensor::release);
    }
    fn saves_tensors(&self) -> bool {
        true
    }
    fn retarget_outputs(&mut self, target: &Tensor) {
        self.weight.iter_mut().for_each(|w| w.retarget_output(target));
        [&mut self.coef, &mut self.index, &mut self.target].into_iter().for_each(|s| s.retarget_output(target));
    }
}

fn check_same_shape(x: &Tensor, y: &Tensor) -> Result<()> {
    if x.shape() != y.shape() {
        return Err(Error::Value(format!(
            "Using a target size ({}) that is different to the input size ({}) is deprecated. Please ensure they have the same size.",
            shape::fmt_size(&y.shape()),
            shape::fmt_size(&x.shape())
        )));
    }
    Ok(())
}

/// `binary_cross_entropy(p, y)`: the reduced `-w (y log p + (1 - y) log(1 - p))`, logs
/// clamped at -100 as PyTorch does.
pub fn binary_cross_entropy(p: &Tensor, y: &Tensor, weight: Option<&Tensor>, reduction: Reduction) -> Result<Tensor> {
    check_same_shape(p, y)?;
    // Element by element, the input before the target (NaN fails both checks).
    let targets = y.data().to_vec::<f64>();
    for (i, &v) in p.data().to_vec::<f64>().iter().enumerate() {
        if !(0.0..=1.0).contains(&v) {
            return Err(Error::runtime("all elements of input should be between 0 and 1"));
        }
        if !(0.0..=1.0).contains(&targets[i]) {
            return Err(Error::runtime("all elements of target should be between 0 and 1"));
        }
    }
    let out = untracked(|| {
        let log_p = clamp(&log(p)?, Some(-100.0), None, ClampKind::Clamp)?;
        let log_q = clamp(&log(&sub(&scalar(1.0), p)?)?, Some(-100.0), None, ClampKind::Clamp)?;
        let per = neg(&add(&mul(y, &log_p)?, &mul(&sub(&scalar(1.0), y)?, &log_q)?)?)?;
        let per = match weight {
            // PyTorch scales in place: the loss keeps the input's dtype.
            Some(w) => crate::ops::view::to_dtype(&mul(&per, w)?, p.dtype())?,
            None => per,
        };
        reduction.apply(&per)
    })?;
    record(out, &[p, y], |_| BceBackward {
        p: SavedTensor::input(p),
        y: SavedTensor::input(y),
        weight: weight.map(|w| w.detach()),
        reduction,
    })
}

/// d bce/dp = w (p - y) / max(p (1 - p), 1e-12); d/dy = w (log(1 - p) - log p)
pub struct BceBackward {
    p: SavedTensor,
    y: SavedTensor,
    weight: Option<Tensor>,
    reduction: Reduction,
}
impl Backward for BceBackward {
    fn name(&self) -> &'static str {
        "BinaryCrossEntropyBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (p, y) = (self.p.unpack(ctx)?, self.y.unpack(ctx)?);
        let mut g = self.reduction.spread(grad0(grads)?, &p.shape())?;
        if let Some(w) = &self.weight {
            g = mul(&g, w)?;
        }
        let gp = if ctx.needs(0) {
            let denom = clamp(&mul(&sub(&scalar(1.0), &p)?, &p)?, Some(1e-12), None, ClampKind::Clamp)?;
            Some(div(&mul(&sub(&p, &y)?, &g)?, &denom)?)
        } else {
            None
        };
        let gy = if ctx.needs(1) {
            let log_p = clamp(&log(&p)?, Some(-100.0), None, ClampKind::Clamp)?;
            let log_q = clamp(&log(&sub(&scalar(1.0), &p)?)?, Some(-100.0), None, ClampKind::Clamp)?;
            Some(mul(&sub(&log_q, &log_p)?, &g)?)
        } else {
            None
        };
        Ok(smallvec![gp, gy])
    }
    crate::saved_tensors!(p => "self", y => "target");
}

/// log(1 + exp(-|x|)) + max(-x, 0) = log(1 + exp(-x)), without overflow
fn softplus_neg(x: &Tensor) -> Result<Tensor> {
    let tail = log(&add(&exp(&neg(&abs(x)?)?)?, &scalar(1.0))?)?;
    add(&tail, &extremum(&neg(x)?, &scalar(0.0), true)?)
}

/// `binary_cross_entropy_with_logits(x, y)`: bce of `sigmoid(x)`, computed stably;
/// `pos_weight` scales the positive term.
pub fn binary_cross_entropy_with_logits(
    x: &Tensor,
    y: &Tensor,
    weight: Option<&Tensor>,
    pos_weight: Option<&Tensor>,
    reduction: Reduction,
) -> Result<Tensor> {
    check_same_shape(x, y)?;
    let out = untracked(|| {
        let lin = mul(&sub(&scalar(1.0), y)?, x)?;
        let sp = softplus_neg(x)?;
        let per = match pos_weight {
            // (1 - y) x + (1 + (pw - 1) y) log(1 + exp(-x))
            Some(pw) => add(&lin, &mul(&add(&mul(&sub(pw, &scalar(1.0))?, y)?, &scalar(1.0))?, &sp)?)?,
            None => add(&lin, &sp)?,
        };
        let per = match weight {
            Some(w) => mul(&per, w)?,
            None => per,
        };
        // PyTorch accumulates the loss in place into `1 - y`: it has the target's dtype.
        let per = crate::ops::view::to_dtype(&per, y.dtype())?;
        reduction.apply(&per)
    })?;
    record(out, &[x, y], |_| BceLogitsBackward {
        x: SavedTensor::input(x),
        y: SavedTensor::input(y),
        weight: weight.map(|w| w.detach()),
        pos_weight: pos_weight.map(|w| w.detach()),
        reduction,
    })
}

/// d/dx = (pw y + 1 - y) σ(x) - pw y  (σ(x) - y without pos_weight);
/// d/dy = log σ(-x) - pw log σ(x)  (-x without pos_weight)
pub struct BceLogitsBackward {
    x: SavedTensor,
    y: SavedTensor,
    weight: Option<Tensor>,
    pos_weight: Option<Tensor>,
    reduction: Reduction,
}
impl Backward for BceLogitsBackward {
    fn name(&self) -> &'static str {
        "BinaryCrossEntropyWithLogitsBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (x, y) = (self.x.unpack(ctx)?, self.y.unpack(ctx)?);
        // The mean's division by the element count comes last (`DivBackward1`, as in PyTorch).
        let mean = self.reduction == Reduction::Mean;
        let spread = if mean { Reduction::Sum } else { self.reduction };
        let mut g = spread.spread(grad0(grads)?, &x.shape())?;
        let finish = |t: Tensor| -> Result<Tensor> {
            if mean {
                super::arith::div_number(&t, x.numel() as f64)
            } else {
                Ok(t)
            }
        };
        if let Some(w) = &self.weight {
            g = mul(&g, w)?;
        }
        let gx = if ctx.needs(0) {
            let s = sigmoid(&x)?;
            let d = match &self.pos_weight {
                Some(pw) => {
                    let t = mul(pw, &y)?;
                    sub(&mul(&sub(&add(&t, &scalar(1.0))?, &y)?, &s)?, &t)?
                }
                None => sub(&s, &y)?,
            };
            Some(finish(mul(&d, &g)?)?)
        } else {
            None
        };
        let gy = if ctx.needs(1) {
            let d = match &self.pos_weight {
                // log σ(x) = -softplus(-x)
                Some(pw) => sub(&mul(pw, &softplus_neg(&x)?)?, &softplus_neg(&neg(&x)?)?)?,
                None => neg(&x)?,
            };
            Some(finish(mul(&d, &g)?)?)
        } else {
            None
        };
        Ok(smallvec![gx, gy])
    }
    crate::saved_tensors!(x => "self", y => "target");
}

/// Which robust regression loss a node computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RobustLoss {
    /// `smooth_l1_loss`: `0.5 d² / beta` where `|d| < beta`, else `|d| - 0.5 beta`.
    SmoothL1 {
        /// The switch point (and the quadratic part's scale).
        beta: f64,
    },
    /// `huber_loss`: `0.5 d²` where `|d| < delta`, else `delta (|d| - 0.5 delta)`.
    Huber {
        /// The switch point.
        delta: f64,
    },
}

impl RobustLoss {
    fn switch(self) -> f64 {
        match self {
            RobustLoss::SmoothL1 { beta } => beta,
            RobustLoss::Huber { delta } => delta,
        }
    }

    /// The per-element loss of the differences `d`.
    fn values(self, d: &Tensor) -> Result<Tensor> {
        let z = abs(d)?;
        let inner = compare(&z, &scalar(self.switch()), crate::kernels::Compare::Lt)?;
        let (quad, lin) = match self {
            RobustLoss::SmoothL1 { beta } => {
                (div(&mul(&mul(&z, &z)?, &scalar(0.5))?, &scalar(beta))?, sub(&z, &scalar(0.5 * beta))?)
            }
            RobustLoss::Huber { delta } => {
                (mul(&mul(&z, &z)?, &scalar(0.5))?, mul(&sub(&z, &scalar(0.5 * delta))?, &scalar(delta))?)
            }
        };
        super::compare::where_(&inner, &quad, &lin)
    }

    /// d loss/d d: `d / beta` (smooth L1) or `d` (Huber) inside, the clamped sign outside.
    fn slope(self, d: &Tensor) -> Result<Tensor> {
        let t = self.switch();
        let inner = compare(&abs(d)?, &scalar(t), crate::kernels::Compare::Lt)?;
        let sign = super::unary::sign(d)?;
        match self {
            RobustLoss::SmoothL1 { beta } => super::compare::where_(&inner, &div(d, &scalar(beta))?, &sign),
            RobustLoss::Huber { delta } => super::compare::where_(&inner, d, &mul(&sign, &scalar(delta))?),
        }
    }
}

/// `smooth_l1_loss`/`huber_loss` of `x` against `y`, reduced.
pub fn robust_loss(x: &Tensor, y: &Tensor, kind: RobustLoss, reduction: Reduction) -> Result<Tensor> {
    let (out, shape) = untracked(|| {
        let d = sub(x, y)?;
        Ok((reduction.apply(&kind.values(&d)?)?, d.shape()))
    })?;
    record(out, &[x, y], |_| RobustLossBackward {
        x: SavedTensor::input(x),
        y: SavedTensor::input(y),
        shape,
        reduction,
        kind,
    })
}

/// d/dx = slope(x - y) spread(g), d/dy = -d/dx
pub struct RobustLossBackward {
    x: SavedTensor,
    y: SavedTensor,
    shape: Shape,
    reduction: Reduction,
    kind: RobustLoss,
}
impl Backward for RobustLossBackward {
    fn name(&self) -> &'static str {
        match self.kind {
            RobustLoss::SmoothL1 { .. } => "SmoothL1LossBackward0",
            RobustLoss::Huber { .. } => "HuberLossBackward0",
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (x, y) = (self.x.unpack(ctx)?, self.y.unpack(ctx)?);
        let g = self.reduction.spread(grad0(grads)?, &self.shape)?;
        let gd = mul(&self.kind.slope(&sub(&x, &y)?)?, &g)?;
        let gx = if ctx.needs(0) { Some(sum_to(&gd, &x.shape())?) } else { None };
        let gy = if ctx.needs(1) { Some(sum_to(&neg(&gd)?, &y.shape())?) } else { None };
        Ok(smallvec![gx, gy])
    }
    crate::saved_tensors!(x, y);
}
