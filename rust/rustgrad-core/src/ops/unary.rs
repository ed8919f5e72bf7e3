//! Element-wise math: exp, log, sqrt, abs, sin, cos, tanh, sigmoid, relu, sign, erf, and the
//! piecewise-constant floor, ceil and round (zero gradient).

use super::activation::{grad_op, GradKind};
use super::arith::{add, div, mul, neg, rsub_scalar};
use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::{self, Unary};
use crate::tensor::Tensor;
use smallvec::smallvec;

/// Applies `kind` element-wise and records its backward.
pub fn unary(x: &Tensor, kind: Unary) -> Result<Tensor> {
    let d = x.data();
    if d.dtype() == DType::Bool {
        if let Some(out) = bool_unary(&d, kind)? {
            return Ok(out);
        }
    }
    let out = Tensor::from_data(kernels::unary(&d, kind));
    record(out, &[x], |o| {
        let saved = if saves_result(kind) {
            SavedTensor::output(o, 0)
        } else if matches!(kind, Unary::Sign | Unary::Floor | Unary::Ceil | Unary::Round | Unary::Trunc) {
            // Piecewise constant: nothing to save (so a second backward is fine, as in PyTorch).
            SavedTensor::none()
        } else {
            SavedTensor::input(x)
        };
        UnaryBackward { kind, saved }
    })
}

/// PyTorch's rules for bool inputs (Note [Kernels per dtype]): `sign` keeps bool, the
/// integer-only kernels have no bool version. `None`: compute as usual (in float).
fn bool_unary(d: &crate::tensor::TensorData, kind: Unary) -> Result<Option<Tensor>> {
    let kernel = match kind {
        Unary::Sign => return Ok(Some(Tensor::from_data(kernels::cast_like(d, d.dtype())))),
        Unary::Relu => return Err(Error::NotImplemented("Boolean inputs not supported for relu".into())),
        Unary::Abs => "abs_cpu",
        Unary::Floor => "floor_vml_cpu",
        Unary::Ceil => "ceil_vml_cpu",
        Unary::Round => "round_vml_cpu",
        Unary::Trunc => "trunc_vml_cpu",
        _ => return Ok(None),
    };
    Err(Error::kernel_missing(kernel, DType::Bool))
}

/// `e^x`, element-wise.
pub fn exp(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Exp)
}
/// Natural logarithm, element-wise.
pub fn log(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Log)
}
/// Square root, element-wise.
pub fn sqrt(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Sqrt)
}
/// Absolute value, element-wise.
pub fn abs(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Abs)
}
/// Sine, element-wise.
pub fn sin(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Sin)
}
/// Cosine, element-wise.
pub fn cos(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Cos)
}
/// Hyperbolic tangent, element-wise.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Tanh)
}
/// Logistic sigmoid, element-wise.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Sigmoid)
}
/// `max(x, 0)`, element-wise.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Relu)
}
/// Sign (-1, 0 or 1), element-wise.
pub fn sign(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Sign)
}
/// The error function, element-wise.
pub fn erf(x: &Tensor) -> Result<Tensor> {
    unary(x, Unary::Erf)
}

fn one() -> Tensor {
    Tensor::wrapped_scalar(1i64)
}

/// Ops whose derivative is cheapest from the result save the result; the others the input.
fn saves_result(kind: Unary) -> bool {
    matches!(
        kind,
        Unary::Exp
            | Unary::Sqrt
            | Unary::Tanh
            | Unary::Sigmoid
            | Unary::Relu
            | Unary::Expm1
            | Unary::Tan
            | Unary::Rsqrt
            | Unary::Reciprocal
            | Unary::Exp2
    )
}

/// The backward of every [`Unary`] op; `saved` is the input or the result (see [`unary`]).
pub struct UnaryBackward {
    kind: Unary,
    saved: SavedTensor,
}

impl Backward for UnaryBackward {
    fn name(&self) -> &'static str {
        match self.kind {
            Unary::Neg => "NegBackward0",
            Unary::Exp => "ExpBackward0",
            Unary::Log => "LogBackward0",
            Unary::Sqrt => "SqrtBackward0",
            Unary::Abs => "AbsBackward0",
            Unary::Sin => "SinBackward0",
            Unary::Cos => "CosBackward0",
            Unary::Tanh => "TanhBackward0",
            Unary::Sigmoid => "SigmoidBackward0",
            Unary::Relu => "ReluBackward0",
            Unary::Sign => "SignBackward0",
            Unary::Reciprocal => "ReciprocalBackward0",
            Unary::Erf => "ErfBackward0",
            Unary::Floor => "FloorBackward0",
            Unary::Ceil => "CeilBackward0",
            Unary::Round => "RoundBackward0",
            Unary::Log1p => "Log1PBackward0",
            Unary::Expm1 => "Expm1Backward0",
            Unary::Tan => "TanBackward0",
            Unary::Asin => "AsinBackward0",
            Unary::Acos => "AcosBackward0",
            Unary::Atan => "AtanBackward0",
            Unary::Sinh => "SinhBackward0",
            Unary::Cosh => "CoshBackward0",
            Unary::Rsqrt => "RsqrtBackward0",
            Unary::Log2 => "Log2Backward0",
            Unary::Log10 => "Log10Backward0",
            Unary::Exp2 => "Exp2Backward0",
            Unary::Trunc => "TruncBackward0",
        }
    }

    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        if !self.saves_tensors() {
            // d sign(x) = d floor(x) = ... = 0
            return Ok(smallvec![Some(crate::creation::zeros_like(g))]);
        }
        let s = self.saved.unpack(ctx)?;
        let gx = match self.kind {
            // d exp(x) = exp(x)
            Unary::Exp => mul(g, &s)?,
            // d ln(x) = 1/x
            Unary::Log => div(g, &s)?,
            // d sqrt(x) = 1 / (2 sqrt(x))
            Unary::Sqrt => div(g, &mul(&s, &Tensor::wrapped_scalar(2i64))?)?,
            // d |x| = sign(x)
            Unary::Abs => mul(g, &sign(&s)?)?,
            // d sin(x) = cos(x)
            Unary::Sin => mul(g, &cos(&s)?)?,
            // d cos(x) = -sin(x)
            Unary::Cos => mul(g, &neg(&sin(&s)?)?)?,
            // d tanh(x) = 1 - tanh(x)^2
            Unary::Tanh => grad_op(g, &s, GradKind::Tanh)?,
            // d sigmoid(x) = sigmoid(x) (1 - sigmoid(x))
            // (recorded as one node, `SigmoidBackwardBackward0`, when differentiated again)
            Unary::Sigmoid => grad_op(g, &s, GradKind::Sigmoid)?,
            // d relu(x) = [relu(x) > 0] (`ThresholdBackwardBackward0`)
            Unary::Relu => grad_op(g, &s, GradKind::Threshold)?,
            // d erf(x) = 2/sqrt(pi) exp(-x^2)
            Unary::Erf => {
                let bell = exp(&neg(&mul(&s, &s)?)?)?;
                mul(g, &mul(&bell, &Tensor::wrapped_scalar(std::f64::consts::FRAC_2_SQRT_PI))?)?
            }
            // d sign(x) = d floor(x) = d ceil(x) = d round(x) = d trunc(x) = 0 (almost everywhere)
            Unary::Sign | Unary::Floor | Unary::Ceil | Unary::Round | Unary::Trunc => crate::creation::zeros_like(g),
            // d log(1 + x) = 1/(1 + x)
            Unary::Log1p => div(g, &add(&s, &one())?)?,
            // d (exp(x) - 1) = exp(x) = result + 1
            Unary::Expm1 => mul(g, &add(&s, &one())?)?,
            // d tan(x) = 1 + tan(x)^2
            Unary::Tan => mul(g, &add(&mul(&s, &s)?, &one())?)?,
            // d asin(x) = 1/sqrt(1 - x^2); d acos(x) = -1/sqrt(1 - x^2)
            Unary::Asin => mul(g, &unary(&rsub_scalar(&mul(&s, &s)?, &one(), 1.0)?, Unary::Rsqrt)?)?,
            Unary::Acos => mul(g, &neg(&unary(&rsub_scalar(&mul(&s, &s)?, &one(), 1.0)?, Unary::Rsqrt)?)?)?,
            // d atan(x) = 1/(1 + x^2)
            Unary::Atan => div(g, &add(&mul(&s, &s)?, &one())?)?,
            // d sinh(x) = cosh(x); d cosh(x) = sinh(x)
            Unary::Sinh => mul(g, &unary(&s, Unary::Cosh)?)?,
            Unary::Cosh => mul(g, &unary(&s, Unary::Sinh)?)?,
            // d x^(-1/2) = -1/2 x^(-3/2) = -1/2 result^3
            Unary::Rsqrt => mul(g, &mul(&mul(&mul(&s, &s)?, &s)?, &Tensor::wrapped_scalar(-0.5))?)?,
            // d log2(x) = 1/(x ln 2); d log10(x) = 1/(x ln 10)
            Unary::Log2 => div(g, &mul(&s, &Tensor::wrapped_scalar(std::f64::consts::LN_2))?)?,
            Unary::Log10 => div(g, &mul(&s, &Tensor::wrapped_scalar(std::f64::consts::LN_10))?)?,
            // d 2^x = 2^x ln 2
            Unary::Exp2 => mul(g, &mul(&s, &Tensor::wrapped_scalar(std::f64::consts::LN_2))?)?,
            Unary::Neg => neg(g)?,
            Unary::Reciprocal => mul(&neg(g)?, &mul(&s, &s)?)?,
        };
        Ok(smallvec![Some(gx)])
    }

    // t = tx f'(x): the backward applied to the tangent
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.element_wise(self))
    }

    fn release(&mut self) {
        self.saved.release();
    }
    fn retarget_outputs(&mut self, target: &Tensor) {
        self.saved.retarget_output(target);
    }
    fn saves_tensors(&self) -> bool {
        !matches!(self.kind, Unary::Sign | Unary::Floor | Unary::Ceil | Unary::Round | Unary::Trunc)
    }
    fn for_each_saved(&self, f: &mut dyn FnMut(&'static str, &SavedTensor)) {
        if self.saves_tensors() {
            f(if saves_result(self.kind) { "result" } else { "self" }, &self.saved);
        }
    }
    fn for_each_saved_mut(&mut self, f: &mut dyn FnMut(&'static str, &mut SavedTensor)) {
        if self.saves_tensors() {
            f(if saves_result(self.kind) { "result" } else { "self" }, &mut self.saved);
        }
    }
}
