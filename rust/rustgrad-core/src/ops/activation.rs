//! Activations with their own nodes (leaky_relu, softplus, silu, logsigmoid), and the nodes
//! PyTorch records for the backward formula of an activation when the gradient itself is
//! differentiated (`create_graph=True`): `TanhBackwardBackward0`, `ThresholdBackwardBackward0`...
//! Each such "gradient op" takes the incoming gradient `g` and the saved tensor `s` (input or
//! result) as differentiable inputs; its own backward is again written in tensor ops.

use super::arith::{add, div, mul, neg, rsub_scalar, sub};
use super::compare::{compare, where_};
use super::reduce::sum_dims;
use super::unary::{exp, sigmoid, unary};
use crate::autograd::{grad0, record, untracked, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::error::{Error, Result};
use crate::kernels::{Compare, Unary};
use crate::tensor::Tensor;
use smallvec::{smallvec, SmallVec};

fn scalar(v: f64) -> Tensor {
    Tensor::wrapped_scalar(v)
}

fn check_float(x: &Tensor, kernel: &str) -> Result<()> {
    if !x.dtype().is_float() {
        return Err(Error::runtime(format!("\"{kernel}\" not implemented for '{}'", x.dtype().scalar_type_name())));
    }
    Ok(())
}

/// Which activation a node belongs to (with its parameters).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    /// `leaky_relu` with negative slope `slope`.
    #[allow(missing_docs)] // the fields are named in the doc above
    LeakyRelu { slope: f64 },
    /// `softplus` with `beta`, linear above `threshold`.
    #[allow(missing_docs)] // the fields are named in the doc above
    Softplus { beta: f64, threshold: f64 },
    /// `silu`.
    Silu,
    /// `logsigmoid`.
    LogSigmoid,
    /// `hardtanh` (and `relu6`): `x` clamped to `[min, max]`.
    #[allow(missing_docs)] // the fields are named in the doc above
    Hardtanh { min: f64, max: f64 },
    /// `elu`/`selu`/`celu`: `scale x` above zero, `scale alpha (exp(input_scale x) - 1)` below.
    #[allow(missing_docs)] // the fields are named in the doc above
    Elu { alpha: f64, scale: f64, input_scale: f64, celu: bool },
    /// `hardswish(x) = x relu6(x + 3) / 6`.
    Hardswish,
    /// `hardsigmoid(x) = relu6(x + 3) / 6`.
    Hardsigmoid,
    /// `mish(x) = x tanh(softplus(x))`.
    Mish,
    /// `threshold`: `x` above `threshold`, else `value`.
    #[allow(missing_docs)] // the fields are named in the doc above
    Threshold { threshold: f64, value: f64 },
    /// `softshrink`: `x - lambd` above `lambd`, `x + lambd` below `-lambd`, else 0.
    #[allow(missing_docs)] // the field is named in the doc above
    Softshrink { lambd: f64 },
    /// `hardshrink`: `x` where `|x| > lambd`, else 0.
    #[allow(missing_docs)] // the field is named in the doc above
    Hardshrink { lambd: f64 },
}

/// The activations without parameters of their own, by name, and those with scalar ones
/// (`hardtanh`, `elu`, `threshold`, the shrinks): checked for a float input first.
pub fn act(x: &Tensor, act: Act) -> Result<Tensor> {
    let kernel = match act {
        Act::LeakyRelu { .. } => "leaky_relu_cpu",
        Act::Softplus { .. } => "softplus_cpu",
        Act::Silu => "silu_cpu",
        Act::LogSigmoid => "log_sigmoid_cpu",
        Act::Hardtanh { .. } => "hardtanh_cpu",
        Act::Elu { .. } => "elu_cpu",
        Act::Hardswish => "hardswish_cpu",
        Act::Hardsigmoid => "hardsigmoid_cpu",
        Act::Mish => "mish_cpu",
        Act::Threshold { .. } => "threshold_cpu",
        Act::Softshrink { .. } => "softshrink_cpu",
        Act::Hardshrink { .. } => "hardshrink_cpu",
    };
    let int_ok = matches!(act, Act::Hardtanh { .. } | Act::Threshold { .. });
    if !(x.dtype().is_float() || int_ok && x.dtype() != crate::dtype::DType::Bool) {
        return Err(Error::runtime(format!("\"{kernel}\" not implemented for '{}'", x.dtype().scalar_type_name())));
    }
    if let Act::Hardtanh { min, max } = act {
        if min > max {
            return Err(Error::runtime("hardtanh: min_val cannot be greater than max_val"));
        }
    }
    activation(x, act)
}

/// `leaky_relu(x) = x` for `x > 0`, else `slope x`.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    check_float(x, "leaky_relu_cpu")?;
    crate::dtype::check_fits(slope, x.dtype())?;
    activation(x, Act::LeakyRelu { slope })
}

/// `softplus(x) = log(1 + exp(beta x)) / beta`, and `x` where `beta x > threshold`.
pub fn softplus(x: &Tensor, beta: f64, threshold: f64) -> Result<Tensor> {
    check_float(x, "softplus_cpu")?;
    crate::dtype::check_fits(beta, x.dtype())?;
    crate::dtype::check_fits(threshold, x.dtype())?;
    activation(x, Act::Softplus { beta, threshold })
}

/// `silu(x) = x sigmoid(x)`.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    check_float(x, "silu_cpu")?;
    activation(x, Act::Silu)
}

/// `logsigmoid(x) = -softplus(-x)`.
pub fn logsigmoid(x: &Tensor) -> Result<Tensor> {
    check_float(x, "log_sigmoid_cpu")?;
    activation(x, Act::LogSigmoid)
}

fn activation(x: &Tensor, act: Act) -> Result<Tensor> {
    let out = untracked(|| crate::autograd::values_in_f32_if_half([x], |[x]| act_values(x, act)))?;
    record(out, &[x], |_| ActBackward { x: SavedTensor::input(x), act })
}

/// `log(1 + exp(beta x)) / beta` for `beta x <= threshold`, else `x`; computed as
/// `log1p(exp(-|beta x|)) / beta + max(x, 0)` (or `min(x, 0)` for negative beta), which never overflows.
fn softplus_values(x: &Tensor, beta: f64, threshold: f64) -> Result<Tensor> {
    let scaled = mul(x, &scalar(beta))?;
    let tail = unary(&exp(&neg(&unary(&scaled, Unary::Abs)?)?)?, Unary::Log1p)?;
    let side = super::arith::binary_values(
        x,
        &scalar(0.0),
        if beta > 0.0 { crate::kernels::Binary::Maximum } else { crate::kernels::Binary::Minimum },
        x.dtype(),
    )?;
    let soft = add(&div(&tail, &scalar(beta))?, &side)?;
    where_(&compare(&scaled, &scalar(threshold), Compare::Gt)?, x, &soft)
}

fn act_values(x: &Tensor, act: Act) -> Result<Tensor> {
    match act {
        Act::LeakyRelu { slope } => where_(&compare(x, &scalar(0.0), Compare::Gt)?, x, &mul(x, &scalar(slope))?),
        Act::Softplus { beta, threshold } => softplus_values(x, beta, threshold),
        Act::Silu => mul(x, &sigmoid(x)?),
        // min(x, 0) - log(1 + exp(-|x|)): +0 at +inf, as PyTorch's kernel gives
        Act::LogSigmoid => {
            let tail = unary(&exp(&neg(&super::unary::abs(x)?)?)?, Unary::Log1p)?;
            sub(&super::elementwise::extremum(x, &scalar(0.0), false)?, &tail)
        }
        Act::Hardtanh { min, max } => {
            let low = where_(&compare(x, &scalar(min), Compare::Lt)?, &scalar(min), x)?;
            where_(&compare(&low, &scalar(max), Compare::Gt)?, &scalar(max), &low)
        }
        Act::Elu { alpha, scale, input_scale, .. } => {
            let neg_part = mul(&unary(&mul(x, &scalar(input_scale))?, Unary::Expm1)?, &scalar(alpha * scale))?;
            where_(&compare(x, &scalar(0.0), Compare::Gt)?, &mul(x, &scalar(scale))?, &neg_part)
        }
        Act::Hardswish => {
            div(&mul(x, &act_values(&add(x, &scalar(3.0))?, Act::Hardtanh { min: 0.0, max: 6.0 })?)?, &scalar(6.0))
        }
        Act::Hardsigmoid => {
            div(&act_values(&add(x, &scalar(3.0))?, Act::Hardtanh { min: 0.0, max: 6.0 })?, &scalar(6.0))
        }
        Act::Mish => mul(x, &super::unary::tanh(&softplus_values(x, 1.0, 20.0)?)?),
        Act::Threshold { threshold, value } => where_(&compare(x, &scalar(threshold), Compare::Le)?, &scalar(value), x),
        Act::Softshrink { lambd } => {
            let above = where_(&compare(x, &scalar(lambd), Compare::Gt)?, &sub(x, &scalar(lambd))?, &scalar(0.0))?;
            where_(&compare(x, &scalar(-lambd), Compare::Lt)?, &add(x, &scalar(lambd))?, &above)
        }
        Act::Hardshrink { lambd } => {
            let inside = super::compare::logical_and(
                &compare(x, &scalar(-lambd), Compare::Ge)?,
                &compare(x, &scalar(lambd), Compare::Le)?,
            )?;
            where_(&inside, &scalar(0.0), x)
        }
    }
}

/// 1 where `x` is strictly between `lo` and `hi`, else 0 (a mask in x's dtype).
fn inside(x: &Tensor, lo: f64, hi: f64) -> Result<Tensor> {
    let above = compare(x, &scalar(lo), Compare::Gt)?;
    let below = compare(x, &scalar(hi), Compare::Lt)?;
    where_(&super::compare::logical_and(&above, &below)?, &scalar(1.0), &scalar(0.0))
}

/// The local slope of each activation, as a differentiable function of `x`.
fn slope(x: &Tensor, act: Act) -> Result<Tensor> {
    match act {
        // d leaky_relu = 1 (x > 0), slope (x <= 0)
        Act::LeakyRelu { slope } => where_(&compare(x, &scalar(0.0), Compare::Gt)?, &scalar(1.0), &scalar(slope)),
        // d softplus = sigmoid(beta x) (beta x <= threshold), 1 above
        Act::Softplus { beta, threshold } => {
            let scaled = mul(x, &scalar(beta))?;
            where_(&compare(&scaled, &scalar(threshold), Compare::Gt)?, &scalar(1.0), &sigmoid(&scaled)?)
        }
        // d silu = s (1 + x (1 - s)), s = sigmoid(x)
        Act::Silu => {
            let s = sigmoid(x)?;
            mul(&s, &add(&mul(x, &rsub_scalar(&s, &scalar(1.0), 1.0)?)?, &scalar(1.0))?)
        }
        // d logsigmoid = sigmoid(-x)
        Act::LogSigmoid => sigmoid(&neg(x)?),
        // d hardtanh = 1 inside (min, max), 0 outside
        Act::Hardtanh { min, max } => inside(x, min, max),
        // d elu = scale (x > 0), scale alpha input_scale exp(input_scale x) (x <= 0)
        Act::Elu { alpha, scale, input_scale, .. } => {
            let below = mul(&exp(&mul(x, &scalar(input_scale))?)?, &scalar(alpha * scale * input_scale))?;
            where_(&compare(x, &scalar(0.0), Compare::Gt)?, &scalar(scale), &below)
        }
        // d hardswish = 0 (x < -3), x/3 + 1/2 (x <= 3), 1 above
        Act::Hardswish => {
            let mid = add(&div(x, &scalar(3.0))?, &scalar(0.5))?;
            let upper = where_(&compare(x, &scalar(3.0), Compare::Le)?, &mid, &scalar(1.0))?;
            where_(&compare(x, &scalar(-3.0), Compare::Lt)?, &scalar(0.0), &upper)
        }
        // d hardsigmoid = 1/6 inside (-3, 3), 0 outside
        Act::Hardsigmoid => div(&inside(x, -3.0, 3.0)?, &scalar(6.0)),
        // d mish = tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2), sp = softplus(x)
        Act::Mish => {
            let t = super::unary::tanh(&activation(x, Act::Softplus { beta: 1.0, threshold: 20.0 })?)?;
            let sech2 = rsub_scalar(&mul(&t, &t)?, &scalar(1.0), 1.0)?;
            add(&t, &mul(&mul(x, &sigmoid(x)?)?, &sech2)?)
        }
        // d threshold = 1 (x > threshold), 0 otherwise
        Act::Threshold { threshold, .. } => {
            where_(&compare(x, &scalar(threshold), Compare::Le)?, &scalar(0.0), &scalar(1.0))
        }
        // d softshrink = d hardshrink = 1 where |x| > lambd, else 0
        Act::Softshrink { lambd } | Act::Hardshrink { lambd } => {
            let inner = inside(x, -lambd, lambd)?;
            rsub_scalar(&inner, &scalar(1.0), 1.0)
        }
    }
}

/// d act(x)/dx = [`slope`]; silu records the product directly, the others a gradient op.
pub struct ActBackward {
    x: SavedTensor,
    act: Act,
}
impl Backward for ActBackward {
    fn name(&self) -> &'static str {
        match self.act {
            Act::LeakyRelu { .. } => "LeakyReluBackward0",
            Act::Softplus { .. } => "SoftplusBackward0",
            Act::Silu => "SiluBackward0",
            Act::LogSigmoid => "LogSigmoidBackward0",
            Act::Hardtanh { .. } => "HardtanhBackward0",
            Act::Elu { celu: false, .. } => "EluBackward0",
            Act::Elu { celu: true, .. } => "CeluBackward0",
            Act::Hardswish => "HardswishBackward0",
            Act::Hardsigmoid => "HardsigmoidBackward0",
            Act::Mish => "MishBackward0",
            Act::Threshold { .. } => "ThresholdBackward0",
            Act::Softshrink { .. } => "SoftshrinkBackward0",
            Act::Hardshrink { .. } => "HardshrinkBackward0",
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (g, x) = (grad0(grads)?, self.x.unpack(ctx)?);
        let gx = match self.act {
            Act::Silu => mul(g, &slope(&x, Act::Silu)?)?,
            Act::LeakyRelu { slope } => grad_op(g, &x, GradKind::LeakyRelu { slope })?,
            Act::Softplus { beta, threshold } => grad_op(g, &x, GradKind::Softplus { beta, threshold })?,
            Act::LogSigmoid => grad_op(g, &x, GradKind::LogSigmoid)?,
            other => mul(g, &slope(&x, other)?)?,
        };
        Ok(smallvec![Some(gx)])
    }
    // t = tx f'(x): the backward applied to the tangent
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.element_wise(self))
    }
    crate::saved_tensors!(x => "self");
}

/// The backward formula of an op, recorded as one node (PyTorch's `*_backward` functions).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GradKind {
    /// `g (1 - y^2)`, `s` = tanh's result.
    Tanh,
    /// `g y (1 - y)`, `s` = sigmoid's result.
    Sigmoid,
    /// `g [y > 0]`, `s` = relu's result.
    Threshold,
    /// `g slope(x)`, `s` = the input.
    LeakyRelu {
        /// The negative slope.
        slope: f64,
    },
    /// `g sigmoid(beta x)` below the threshold, `g` above it; `s` = the input.
    Softplus {
        /// Softplus's `beta`.
        beta: f64,
        /// Above `beta x > threshold` softplus is linear.
        threshold: f64,
    },
    /// `g sigmoid(-x)`, `s` = the input.
    LogSigmoid,
    /// `g gelu'(x)`, `s` = the input.
    Gelu {
        /// Whether gelu used the tanh approximation.
        tanh: bool,
    },
}

type Dims = SmallVec<[usize; 4]>;

/// `kind`'s backward formula applied to the gradient `g` and the saved tensor `s`, recorded as
/// its own node when either requires grad (a `create_graph` backward).
pub fn grad_op(g: &Tensor, s: &Tensor, kind: GradKind) -> Result<Tensor> {
    let out = untracked(|| crate::autograd::values_in_f32_if_half([g, s], |[g, s]| grad_op_values(g, s, kind)))?;
    record(out, &[g, s], |_| GradOpBackward { g: SavedTensor::input(g), s: SavedTensor::input(s), kind })
}

fn grad_op_values(g: &Tensor, s: &Tensor, kind: GradKind) -> Result<Tensor> {
    use crate::kernels::FusedGrad;
    let fused = match kind {
        GradKind::Threshold => Some(FusedGrad::Threshold),
        GradKind::Tanh => Some(FusedGrad::Tanh),
        GradKind::Sigmoid => Some(FusedGrad::Sigmoid),
        _ => None,
    };
    if let Some(fused) = fused {
        let (gd, sd) = (g.data(), s.data());
        if gd.dtype() == sd.dtype() && gd.dtype().is_float() {
            return Ok(Tensor::from_data(crate::kernels::activation_backward(&gd, &sd, fused)?));
        }
    }
    // The same formulas as ops, for operands of two dtypes or integral ones.
    match kind {
        GradKind::Tanh => mul(g, &rsub_scalar(&mul(s, s)?, &scalar(1.0), 1.0)?),
        GradKind::Sigmoid => mul(&mul(g, &rsub_scalar(s, &scalar(1.0), 1.0)?)?, s),
        // g where relu(x) > 0, else 0: a NaN result passes g on, a masked g is +0 (PyTorch's
        // threshold_backward).
        GradKind::Threshold => {
            let stopped = compare(s, &scalar(0.0), Compare::Le)?;
            crate::ops::compare::where_(&stopped, &scalar(0.0), g)
        }
        GradKind::LeakyRelu { slope: k } => mul(g, &slope(s, Act::LeakyRelu { slope: k })?),
        GradKind::Softplus { beta, threshold } => mul(g, &slope(s, Act::Softplus { beta, threshold })?),
        GradKind::LogSigmoid => mul(g, &slope(s, Act::LogSigmoid)?),
        GradKind::Gelu { tanh } => mul(g, &super::elementwise::gelu_slope(s, tanh)?),
    }
}

/// Double backward: d/dg = the slope; d/ds from the formula (zero for the piecewise-linear ones)
pub struct GradOpBackward {
    g: SavedTensor,
    s: SavedTensor,
    kind: GradKind,
}
impl Backward for GradOpBackward {
    fn name(&self) -> &'static str {
        match self.kind {
            GradKind::Tanh => "TanhBackwardBackward0",
            GradKind::Sigmoid => "SigmoidBackwardBackward0",
            GradKind::Threshold => "ThresholdBackwardBackward0",
            GradKind::LeakyRelu { .. } => "LeakyReluBackwardBackward0",
            GradKind::Softplus { .. } => "SoftplusBackwardBackward0",
            GradKind::LogSigmoid => "LogSigmoidBackwardBackward0",
            GradKind::Gelu { .. } => "GeluBackwardBackward0",
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let gg = grad0(grads)?;
        let (g, s) = (self.g.unpack(ctx)?, self.s.unpack(ctx)?);
        let one = scalar(1.0);
        // d/dg: the formula is linear in g
        let gg_g = if ctx.needs(0) { Some(grad_op(gg, &s, self.kind)?) } else { None };
        let gg_s = if ctx.needs(1) {
            let t = match self.kind {
                // d/dy g (1 - y^2) = -2 g y
                GradKind::Tanh => mul(&mul(gg, &g)?, &mul(&s, &scalar(-2.0))?)?,
                // d/dy g y (1 - y) = g (1 - 2y)
                GradKind::Sigmoid => mul(&mul(gg, &g)?, &rsub_scalar(&mul(&s, &scalar(2.0))?, &one, 1.0)?)?,
                // d/dx softplus' slope = beta sigmoid(beta x) (1 - sigmoid(beta x)) below the threshold
                GradKind::Softplus { beta, threshold } => {
                    let scaled = mul(&s, &scalar(beta))?;
                    let sg = sigmoid(&scaled)?;
                    let curve = mul(&mul(&sg, &rsub_scalar(&sg, &one, 1.0)?)?, &scalar(beta))?;
                    let curve = where_(&compare(&scaled, &scalar(threshold), Compare::Gt)?, &scalar(0.0), &curve)?;
                    mul(&mul(gg, &g)?, &curve)?
                }
                // d/dx sigmoid(-x) = -sigmoid(-x) (1 - sigmoid(-x))
                GradKind::LogSigmoid => {
                    let sg = sigmoid(&neg(&s)?)?;
                    neg(&mul(&mul(gg, &g)?, &mul(&sg, &rsub_scalar(&sg, &one, 1.0)?)?)?)?
                }
                // d/dx g gelu'(x) = g gelu''(x)
                GradKind::Gelu { tanh } => mul(&mul(gg, &g)?, &super::elementwise::gelu_curvature(&s, tanh)?)?,
                GradKind::Threshold | GradKind::LeakyRelu { .. } => crate::creation::zeros_like(&s),
            };
            Some(sum_to_shape(t, &s)?)
        } else {
            None
        };
        Ok(smallvec![gg_g.map(|t| sum_to_shape(t, &g)).transpose()?, gg_s])
    }
    crate::saved_tensors!(g, s);
}

fn sum_to_shape(t: Tensor, like: &Tensor) -> Result<Tensor> {
    let shape = like.shape();
    if t.shape() == shape {
        Ok(t)
    } else {
        super::view::sum_to(&t, &shape)
    }
}

/// softmax / log_softmax's backward formula as one node (`SoftmaxBackwardDataBackward0`):
/// softmax: `y (g - sum(g y))`; log_softmax: `g - exp(y) sum(g)`.
pub fn softmax_grad(g: &Tensor, y: &Tensor, dims: &[usize], log: bool) -> Result<Tensor> {
    let out =
        untracked(|| crate::autograd::values_in_f32_if_half([g, y], |[g, y]| softmax_grad_values(g, y, dims, log)))?;
    let dims: Dims = dims.iter().copied().collect();
    record(out, &[g, y], |_| SoftmaxGradBackward { g: SavedTensor::input(g), y: SavedTensor::input(y), dims, log })
}

fn softmax_grad_values(g: &Tensor, y: &Tensor, dims: &[usize], log: bool) -> Result<Tensor> {
    if log {
        sub(g, &mul(&exp(y)?, &sum_dims(g, dims, true, None)?)?)
    } else {
        mul(y, &sub(g, &sum_dims(&mul(g, y)?, dims, true, None)?)?)
    }
}

/// softmax: d/dg = y (gg - sum(gg y)), d/dy = gg (g - sum(g y)) - g sum(gg y);
/// log_softmax: d/dg = gg - sum(gg exp(y)), d/dy = -gg exp(y) sum(g)
pub struct SoftmaxGradBackward {
    g: SavedTensor,
    y: SavedTensor,
    dims: Dims,
    log: bool,
}
impl Backward for SoftmaxGradBackward {
    fn name(&self) -> &'static str {
        if self.log {
            "LogSoftmaxBackwardDataBackward0"
        } else {
            "SoftmaxBackwardDataBackward0"
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let gg = grad0(grads)?;
        let (g, y) = (self.g.unpack(ctx)?, self.y.unpack(ctx)?);
        let d = &self.dims[..];
        let (dg, dy) = if self.log {
            let e = exp(&y)?;
            let dg = if ctx.needs(0) { Some(sub(gg, &sum_dims(&mul(gg, &e)?, d, true, None)?)?) } else { None };
            let dy = if ctx.needs(1) { Some(neg(&mul(&mul(gg, &e)?, &sum_dims(&g, d, true, None)?)?)?) } else { None };
            (dg, dy)
        } else {
            let dg = if ctx.needs(0) { Some(softmax_grad(gg, &y, d, false)?) } else { None };
            let dy = if ctx.needs(1) {
                let s = sum_dims(&mul(&g, &y)?, d, true, None)?;
                let sgg = sum_dims(&mul(gg, &y)?, d, true, None)?;
                Some(sub(&mul(gg, &sub(&g, &s)?)?, &mul(&g, &sgg)?)?)
            } else {
                None
            };
            (dg, dy)
        };
        Ok(smallvec![dg, dy])
    }
    crate::saved_tensors!(g, y);
}
