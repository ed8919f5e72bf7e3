//! Element-wise ops built on comparisons (clamp, maximum/minimum, masked_fill) and the GELU
//! activation.

use super::arith::{add, binary_values, mul, promote, sub};
use super::compare::{compare, logical_and, where_};
use super::unary::{erf, exp, tanh};
use super::view::sum_to;
use crate::autograd::{grad0, record, untracked, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::{Binary, Compare};
use crate::scalar::Scalar;
use crate::shape::{self, Shape};
use crate::tensor::Tensor;
use smallvec::{smallvec, SmallVec};
use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI};

fn scalar(v: f64) -> Tensor {
    Tensor::wrapped_scalar(v)
}

/// Which of `clamp`'s bounds are given, and which node PyTorch records.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClampKind {
    /// `clamp(x, min, max)`, either bound optional.
    Clamp,
    /// `clamp_min(x, min)`.
    Min,
    /// `clamp_max(x, max)`.
    Max,
}

/// `x.clamp(min, max)`: `min(max(x, lo), hi)`; NaN stays NaN.
/// Bounds given as plain `f64`: whole numbers count as integers (an int64 input stays int64).
pub fn clamp(x: &Tensor, min: Option<f64>, max: Option<f64>, kind: ClampKind) -> Result<Tensor> {
    let as_scalar = |v: f64| if v.fract() == 0.0 && v.is_finite() { Scalar::Int(v as i64) } else { Scalar::Float(v) };
    clamp_scalar(x, min.map(as_scalar), max.map(as_scalar), kind)
}

/// `clamp` with Python-number bounds: the result has the dtype PyTorch promotes the input and
/// the bounds to (an int64 input with a float bound gives float32, a bool one with an int
/// bound int64).
pub fn clamp_scalar(x: &Tensor, min: Option<Scalar>, max: Option<Scalar>, kind: ClampKind) -> Result<Tensor> {
    if min.is_none() && max.is_none() {
        return Err(Error::runtime("torch.clamp: At least one of 'min' or 'max' must not be None"));
    }
    let mut inputs: smallvec::SmallVec<[crate::dtype::PromotionInput; 3]> = smallvec::smallvec![x.promotion_input()];
    inputs.extend(min.iter().chain(max.iter()).map(|s| s.promotion_input()));
    let dtype = crate::dtype::result_type(&inputs);
    let (min, max) = (min.map(Scalar::to_f64), max.map(Scalar::to_f64));
    // The bounds are converted to the result's dtype, which they must fit.
    for bound in min.iter().chain(max.iter()) {
        crate::dtype::check_fits(*bound, dtype)?;
    }
    let mut out = x.clone();
    if let Some(lo) = min {
        out = binary_values(&out, &scalar(lo), Binary::Maximum, dtype)?;
    }
    if let Some(hi) = max {
        out = binary_values(&out, &scalar(hi), Binary::Minimum, dtype)?;
    }
    if out.same(x) {
        out = binary_values(x, &scalar(0.0), Binary::Add, dtype)?;
    }
    record(out, &[x], |_| ClampBackward { x: SavedTensor::input(x), min, max, kind })
}

/// d clamp(x, lo, hi)/dx = [lo < x < hi] (number bounds: nothing flows at a bound)
pub struct ClampBackward {
    x: SavedTensor,
    min: Option<f64>,
    max: Option<f64>,
    kind: ClampKind,
}
impl Backward for ClampBackward {
    fn name(&self) -> &'static str {
        match self.kind {
            ClampKind::Clamp => "ClampBackward1",
            ClampKind::Min => "ClampMinBackward0",
            ClampKind::Max => "ClampMaxBackward0",
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (g, x) = (grad0(grads)?, self.x.unpack(ctx)?);
        let inside = match (self.min, self.max) {
            (Some(lo), Some(hi)) => {
                logical_and(&compare(&x, &scalar(lo), Compare::Gt)?, &compare(&x, &scalar(hi), Compare::Lt)?)?
            }
            (Some(lo), None) => compare(&x, &scalar(lo), Compare::Gt)?,
            (None, Some(hi)) => compare(&x, &scalar(hi), Compare::Lt)?,
            (None, None) => unreachable!("clamp checks that a bound is given"),
        };
        Ok(smallvec![Some(where_(&inside, g, &scalar(0.0))?)])
    }
    // t = tx f'(x): the backward applied to the tangent
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.element_wise(self))
    }
    crate::saved_tensors!(x => "self");
}

/// `x.clamp(min, max)` with tensor bounds (broadcast), one node: `ClampBackward0`, or
/// `ClampMinBackward1`/`ClampMaxBackward1` for `clamp_min`/`clamp_max` (`kind`).
pub fn clamp_tensor(x: &Tensor, min: Option<&Tensor>, max: Option<&Tensor>, kind: ClampKind) -> Result<Tensor> {
    if min.is_none() && max.is_none() {
        return Err(Error::runtime("torch.clamp: At least one of 'min' or 'max' must not be None"));
    }
    let mut parts: SmallVec<[crate::dtype::PromotionInput; 3]> = smallvec![x.promotion_input()];
    parts.extend([min, max].into_iter().flatten().map(|b| b.promotion_input()));
    let dtype = crate::dtype::result_type(&parts);
    let mut out = x.clone();
    if let Some(lo) = min {
        out = binary_values(&out, lo, Binary::Maximum, dtype)?;
    }
    if let Some(hi) = max {
        out = binary_values(&out, hi, Binary::Minimum, dtype)?;
    }
    let mut inputs: SmallVec<[&Tensor; 3]> = smallvec![x];
    inputs.extend(min);
    inputs.extend(max);
    record(out, &inputs, |_| ClampTensorBackward {
        x: SavedTensor::input(x),
        min: min.map(SavedTensor::input),
        max: max.map(SavedTensor::input),
        shapes: (x.shape(), min.map(|t| t.shape()), max.map(|t| t.shape())),
        kind,
    })
}

/// Tensor bounds share ties as maximum/minimum do. One bound: d max(x, lo)/dx = [x > lo] +
/// [x == lo]/2, d/dlo = [x < lo] + [x == lo]/2 (and mirrored for hi). Both, when lo <= hi:
/// d/dx = [lo < x < hi] + [x == lo]/2 + [x == hi]/2, d/dlo = [x < lo] + [lo < hi][x == lo]/2,
/// d/dhi = [x > hi] + [lo < hi][x == hi]/2; when lo > hi the result is hi: d/dhi = 1.
pub struct ClampTensorBackward {
    x: SavedTensor,
    min: Option<SavedTensor>,
    max: Option<SavedTensor>,
    shapes: (Shape, Option<Shape>, Option<Shape>),
    kind: ClampKind,
}
impl Backward for ClampTensorBackward {
    fn name(&self) -> &'static str {
        match self.kind {
            ClampKind::Clamp => "ClampBackward0",
            ClampKind::Min => "ClampMinBackward1",
            ClampKind::Max => "ClampMaxBackward1",
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (g, x) = (grad0(grads)?, self.x.unpack(ctx)?);
        let zero = scalar(0.0);
        let half = mul(g, &scalar(0.5))?;
        let lo = self.min.as_ref().map(|s| s.unpack(ctx)).transpose()?;
        let hi = self.max.as_ref().map(|s| s.unpack(ctx)).transpose()?;
        let cmp = |a: &Tensor, b: &Tensor, k: Compare| compare(a, b, k);
        let and = |a: &Tensor, b: &Tensor| logical_and(a, b);
        // gx, glo, ghi (the last two only for the bounds given)
        let (gx, glo, ghi) = match (&lo, &hi) {
            (Some(l), Some(h)) => {
                let (ordered, strict) = (cmp(l, h, Compare::Le)?, cmp(l, h, Compare::Lt)?);
                let (at_lo, at_hi) = (cmp(&x, l, Compare::Eq)?, cmp(&x, h, Compare::Eq)?);
                let inside = and(&cmp(&x, l, Compare::Gt)?, &cmp(&x, h, Compare::Lt)?)?;
                let tie_hi = where_(&at_hi, &half, &where_(&inside, g, &zero)?)?;
                let gx = where_(&ordered, &where_(&at_lo, &where_(&at_hi, g, &half)?, &tie_hi)?, &zero)?;
                let below = and(&ordered, &cmp(&x, l, Compare::Lt)?)?;
                let glo = where_(&below, g, &where_(&and(&strict, &at_lo)?, &half, &zero)?)?;
                let capped = and(&ordered, &cmp(&x, h, Compare::Le)?)?;
                let ghi = where_(&capped, &where_(&and(&strict, &at_hi)?, &half, &zero)?, g)?;
                (gx, Some(glo), Some(ghi))
            }
            (Some(b), None) | (None, Some(b)) => {
                let (x_wins, b_wins) =
                    if lo.is_some() { (Compare::Gt, Compare::Lt) } else { (Compare::Lt, Compare::Gt) };
                let tie = where_(&cmp(&x, b, Compare::Eq)?, &half, &zero)?;
                let gx = where_(&cmp(&x, b, x_wins)?, g, &tie)?;
                let gb = where_(&cmp(&x, b, b_wins)?, g, &tie)?;
                if lo.is_some() {
                    (gx, Some(gb), None)
                } else {
                    (gx, None, Some(gb))
                }
            }
            (None, None) => unreachable!("clamp checks that a bound is given"),
        };
        let mut out: Grads = smallvec![if ctx.needs(0) { Some(sum_to(&gx, &self.shapes.0)?) } else { None }];
        let mut k = 1;
        for (grad, shape) in [(glo, &self.shapes.1), (ghi, &self.shapes.2)] {
            if let (Some(grad), Some(shape)) = (grad, shape) {
                out.push(if ctx.needs(k) { Some(sum_to(&grad, shape)?) } else { None });
                k += 1;
            }
        }
        Ok(out)
    }
    fn release(&mut self) {
        self.x.release();
        self.min.iter_mut().for_each(SavedTensor::release);
        self.max.iter_mut().for_each(SavedTensor::release);
    }
    fn saves_tensors(&self) -> bool {
        true
    }
    fn retarget_outputs(&mut self, target: &Tensor) {
        self.x.retarget_output(target);
        self.min.iter_mut().for_each(|s| s.retarget_output(target));
        self.max.iter_mut().for_each(|s| s.retarget_output(target));
    }
}

/// `maximum(a, b)` (`max == true`) or `minimum(a, b)`, broadcast; NaN wins.
pub fn extremum(a: &Tensor, b: &Tensor, max: bool) -> Result<Tensor> {
    let dtype = promote(a, b);
    let out = binary_values(a, b, if max { Binary::Maximum } else { Binary::Minimum }, dtype)?;
    record(out, &[a, b], |_| ExtremumBackward { a: SavedTensor::input(a), b: SavedTensor::input(b), max })
}

/// d max(a, b)/da = [a > b] + [a == b]/2 (ties share the gradient), and symmetrically for b
pub struct ExtremumBackward {
    a: SavedTensor,
    b: SavedTensor,
    max: bool,
}
impl Backward for ExtremumBackward {
    fn name(&self) -> &'static str {
        if self.max {
            "MaximumBackward0"
        } else {
            "MinimumBackward0"
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let (a, b) = (self.a.unpack(ctx)?, self.b.unpack(ctx)?);
        // Ties share g; the losing side gets 0 (masked_fill, as PyTorch records it).
        let shared = where_(&compare(&a, &b, Compare::Eq)?, &crate::ops::arith::div(g, &scalar(2.0))?, g)?;
        let (a_loses, b_loses) = if self.max { (Compare::Lt, Compare::Gt) } else { (Compare::Gt, Compare::Lt) };
        let ga = if ctx.needs(0) {
            Some(sum_to(&masked_fill(&shared, &compare(&a, &b, a_loses)?, 0.0)?, &a.shape())?)
        } else {
            None
        };
        let gb = if ctx.needs(1) {
            Some(sum_to(&masked_fill(&shared, &compare(&a, &b, b_loses)?, 0.0)?, &b.shape())?)
        } else {
            None
        };
        Ok(smallvec![ga, gb])
    }
    crate::saved_tensors!(a => "self", b => "other");
}

/// `x.masked_fill(mask, value)`: `value` where `mask` holds; `x` and `mask` broadcast
/// together (the result may be bigger than `x`).
pub fn masked_fill(x: &Tensor, mask: &Tensor, value: f64) -> Result<Tensor> {
    masked_fill_impl(x, mask, value, None, false)
}

/// The values `x.masked_fill_(mask, value)` writes into `x`: the mask must broadcast to `x`'s
/// shape.
pub fn masked_fill_inplace(x: &Tensor, mask: &Tensor, value: f64) -> Result<Tensor> {
    masked_fill_impl(x, mask, value, None, true)
}

/// `x.masked_fill(mask, value)` with a 0-d tensor `value`, which gets a gradient too
/// (`MaskedFillBackward1`).
pub fn masked_fill_tensor(x: &Tensor, mask: &Tensor, value: &Tensor) -> Result<Tensor> {
    masked_fill_tensor_impl(x, mask, value, false)
}

/// [`masked_fill_tensor`] for `masked_fill_` (see [`masked_fill_inplace`]).
pub fn masked_fill_tensor_inplace(x: &Tensor, mask: &Tensor, value: &Tensor) -> Result<Tensor> {
    masked_fill_tensor_impl(x, mask, value, true)
}

fn masked_fill_tensor_impl(x: &Tensor, mask: &Tensor, value: &Tensor, inplace: bool) -> Result<Tensor> {
    if !inplace {
        shape::broadcast_shapes(&mask.shape(), &x.shape())?;
    }
    if value.ndim() != 0 {
        return Err(Error::runtime(format!(
            "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with {} dimension(s).",
            value.ndim()
        )));
    }
    masked_fill_impl(x, mask, value.item_f64()?, Some(value), inplace)
}

/// The out-of-place form broadcasts `mask` and `x` first (PyTorch's `expand_outplace(mask,
/// self)`, whose error names the mask as tensor a); the in-place form checks the mask against
/// `x` after the dtype.
fn masked_fill_impl(
    x: &Tensor,
    mask: &Tensor,
    value: f64,
    value_tensor: Option<&Tensor>,
    inplace: bool,
) -> Result<Tensor> {
    let xs = x.shape();
    let ms = mask.shape();
    if !inplace {
        shape::broadcast_shapes(&ms, &xs)?;
    }
    if mask.dtype() != DType::Bool {
        return Err(Error::runtime(format!(
            "masked_fill_ only supports boolean masks, but got mask with dtype {}",
            mask.dtype().name_cpp()
        )));
    }
    crate::dtype::check_fits(value, x.dtype())?;
    let out_shape = shape::broadcast_shapes(&xs, &ms)?;
    if inplace && out_shape != xs {
        return Err(Error::runtime(format!(
            "output with shape {} doesn't match the broadcast shape {}",
            shape::fmt_shape(&xs),
            shape::fmt_shape(&out_shape)
        )));
    }
    let out = Tensor::from_data(crate::kernels::select(
        &mask.data(),
        &Tensor::wrapped_scalar(value).data(),
        &x.data(),
        x.dtype(),
    )?);
    let make = |_: &Tensor| MaskedFillBackward {
        mask: SavedTensor::input(mask),
        self_shape: xs.clone(),
        value_tensor: value_tensor.is_some(),
    };
    match value_tensor {
        Some(v) => record(out, &[x, v], make),
        None => record(out, &[x], make),
    }
}

/// d masked_fill(x, m, v)/dx = [not m]; d/dv = sum of the gradient where m holds
pub struct MaskedFillBackward {
    mask: SavedTensor,
    self_shape: Shape,
    value_tensor: bool,
}
impl Backward for MaskedFillBackward {
    fn name(&self) -> &'static str {
        if self.value_tensor {
            "MaskedFillBackward1"
        } else {
            "MaskedFillBackward0"
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g0 = grad0(grads)?;
        let mask = self.mask.unpack(ctx)?;
        let g = where_(&mask, &scalar(0.0), g0)?;
        let gv = if ctx.needs(1) {
            let picked = where_(&mask, g0, &scalar(0.0))?;
            Some(crate::ops::reduce::sum(&picked, None, false, None)?)
        } else {
            None
        };
        Ok(smallvec![Some(sum_to(&g, &self.self_shape)?), gv])
    }
    // t = where(mask, t_value (0 for a number), tx)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let formula = || {
            let mask = self.mask.unpack(&ctx.backward)?;
            let zero = scalar(0.0);
            where_(&mask, ctx.tangent(1).unwrap_or(&zero), ctx.tangent(0).unwrap_or(&zero))
        };
        Some(formula())
    }
    crate::saved_tensors!(mask);
}

/// GELU: `x Φ(x)` (`tanh == false`), or its tanh approximation
/// `x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
pub fn gelu(x: &Tensor, tanh_approx: bool) -> Result<Tensor> {
    if !x.dtype().is_float() {
        return Err(Error::kernel_missing("GeluKernelImpl", x.dtype()));
    }
    let out = untracked(|| {
        crate::autograd::values_in_f32_if_half(
            [x],
            |[x]| if tanh_approx { gelu_tanh_values(x) } else { gelu_erf_values(x) },
        )
    })?;
    record(out, &[x], |_| GeluBackward { x: SavedTensor::input(x), tanh_approx })
}

const SQRT_2_OVER_PI: f64 = FRAC_2_SQRT_PI * FRAC_1_SQRT_2;
const GELU_CUBIC: f64 = 0.044715;

/// Φ(x) = (1 + erf(x/√2)) / 2
fn normal_cdf(x: &Tensor) -> Result<Tensor> {
    mul(&add(&erf(&mul(x, &scalar(FRAC_1_SQRT_2))?)?, &scalar(1.0))?, &scalar(0.5))
}

fn gelu_erf_values(x: &Tensor) -> Result<Tensor> {
    let out = mul(x, &normal_cdf(x)?)?;
    // PyTorch's vectorised float32 kernel gives NaN at +inf (where x Φ(x) is inf); one element,
    // or a double, takes its scalar path, which gives inf.
    if x.dtype() != crate::dtype::DType::F32 || x.numel() <= 1 {
        return Ok(out);
    }
    let at_inf = crate::ops::compare::compare(x, &scalar(f64::INFINITY), crate::kernels::Compare::Eq)?;
    crate::ops::compare::where_(&at_inf, &scalar(f64::NAN), &out)
}

/// tanh(√(2/π) (x + 0.044715 x³))
fn gelu_inner_tanh(x: &Tensor) -> Result<Tensor> {
    let cube = mul(&mul(x, x)?, x)?;
    tanh(&mul(&add(x, &mul(&cube, &scalar(GELU_CUBIC))?)?, &scalar(SQRT_2_OVER_PI))?)
}

fn gelu_tanh_values(x: &Tensor) -> Result<Tensor> {
    mul(&mul(x, &scalar(0.5))?, &add(&gelu_inner_tanh(x)?, &scalar(1.0))?)
}

/// d gelu(x) = Φ(x) + x φ(x); tanh form: (1 + t)/2 + x/2 (1 - t²) √(2/π) (1 + 3·0.044715 x²)
pub struct GeluBackward {
    x: SavedTensor,
    tanh_approx: bool,
}
impl Backward for GeluBackward {
    fn name(&self) -> &'static str {
        "GeluBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (g, x) = (grad0(grads)?, self.x.unpack(ctx)?);
        let kind = super::activation::GradKind::Gelu { tanh: self.tanh_approx };
        Ok(smallvec![Some(super::activation::grad_op(g, &x, kind)?)])
    }
    // t = tx f'(x): the backward applied to the tangent
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.element_wise(self))
    }
    crate::saved_tensors!(x => "self");
}

/// The slope of GELU at `x` (see [`GeluBackward`]).
pub(crate) fn gelu_slope(x: &Tensor, tanh_approx: bool) -> Result<Tensor> {
    if tanh_approx {
        let t = gelu_inner_tanh(x)?;
        let left = mul(&add(&t, &scalar(1.0))?, &scalar(0.5))?;
        let sech2 = sub(&scalar(1.0), &mul(&t, &t)?)?;
        let inner = mul(&add(&mul(&mul(x, x)?, &scalar(3.0 * GELU_CUBIC))?, &scalar(1.0))?, &scalar(SQRT_2_OVER_PI))?;
        add(&left, &mul(&mul(&mul(x, &scalar(0.5))?, &sech2)?, &inner)?)
    } else {
        // φ(x) = exp(-x²/2) / √(2π)
        let density = mul(&exp(&mul(&mul(x, x)?, &scalar(-0.5))?)?, &scalar(FRAC_2_SQRT_PI * FRAC_1_SQRT_2 * 0.5))?;
        add(&normal_cdf(x)?, &mul(x, &density)?)
    }
}

/// The derivative of [`gelu_slope`]: φ(x) (2 - x²) for the erf form; for the tanh form
/// (1 - t²) (u' - x t u'² + 3·0.044715·√(2/π) x²), u' = √(2/π) (1 + 3·0.044715 x²).
pub(crate) fn gelu_curvature(x: &Tensor, tanh_approx: bool) -> Result<Tensor> {
    if tanh_approx {
        let t = gelu_inner_tanh(x)?;
        let sech2 = sub(&scalar(1.0), &mul(&t, &t)?)?;
        let x2 = mul(x, x)?;
        let du = mul(&add(&mul(&x2, &scalar(3.0 * GELU_CUBIC))?, &scalar(1.0))?, &scalar(SQRT_2_OVER_PI))?;
        let bend = mul(&mul(&mul(x, &t)?, &du)?, &du)?;
        let tail = mul(&x2, &scalar(3.0 * GELU_CUBIC * SQRT_2_OVER_PI))?;
        mul(&sech2, &add(&sub(&du, &bend)?, &tail)?)
    } else {
        let density = mul(&exp(&mul(&mul(x, x)?, &scalar(-0.5))?)?, &scalar(FRAC_2_SQRT_PI * FRAC_1_SQRT_2 * 0.5))?;
        mul(&density, &sub(&scalar(2.0), &mul(x, x)?)?)
    }
}
