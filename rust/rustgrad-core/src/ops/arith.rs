//! add, sub, rsub, mul, div, neg, reciprocal.

use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::{result_type, DType};
use crate::error::{Error, Result};
use crate::kernels::{self, Binary, Unary};
use crate::tensor::Tensor;
use smallvec::smallvec;

/// The dtype `a op b` computes in, with PyTorch's promotion.
pub fn promote(a: &Tensor, b: &Tensor) -> DType {
    result_type(&[a.promotion_input(), b.promotion_input()])
}

/// Forward of a binary arithmetic op (no autograd).
pub(crate) fn binary_values(a: &Tensor, b: &Tensor, kind: Binary, dtype: DType) -> Result<Tensor> {
    Ok(Tensor::from_data(kernels::binary(&a.data(), &b.data(), kind, dtype)?))
}

/// Operands up to this many elements are read in place by [`promoted_values`].
const SMALL_KERNEL: usize = 4096;

/// Forward of a binary op in the promoted dtype (`to_float`: true division), reading each
/// operand once.
fn promoted_values(a: &Tensor, b: &Tensor, kind: Binary, to_float: bool) -> Result<Tensor> {
    // Small operands are read in place, under both locks: the kernel is shorter than a copy
    // of their layouts would be. Large ones are copied out first, so no lock is held while
    // the kernel runs.
    let dtype_of = |pa, pb| {
        let dtype = result_type(&[pa, pb]);
        if to_float {
            dtype.to_float()
        } else {
            dtype
        }
    };
    let small = Tensor::with_data_pair(a, b, |ga, gb| {
        if ga.data.numel().max(gb.data.numel()) > SMALL_KERNEL {
            return None;
        }
        Some(kernels::binary(&ga.data, &gb.data, kind, dtype_of(ga.promotion_input(), gb.promotion_input())))
    });
    if let Some(values) = small {
        return Ok(Tensor::from_data(values?));
    }
    let (da, pa) = a.data_and_promotion();
    let (db, pb) = b.data_and_promotion();
    Ok(Tensor::from_data(kernels::binary(&da, &db, kind, dtype_of(pa, pb))?))
}

fn check_bool_sub(a: &Tensor, b: &Tensor) -> Result<()> {
    match (a.dtype() == DType::Bool, b.dtype() == DType::Bool) {
        (true, true) => Err(Error::NotImplemented(
            "Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or `logical_xor()` operator instead.".into(),
        )),
        (true, false) | (false, true) => Err(Error::NotImplemented(
            "Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.".into(),
        )),
        _ => Ok(()),
    }
}

/// PyTorch refuses a fractional `alpha` when both operands are integral (bool or int64).
fn check_alpha(a: &Tensor, b: &Tensor, alpha: f64) -> Result<()> {
    if alpha.fract() != 0.0 && !a.dtype().is_float() && !b.dtype().is_float() {
        return Err(Error::runtime("For integral input tensors, argument alpha must not be a floating point number."));
    }
    Ok(())
}

/// `grad * s`, or `grad` itself when `s == 1`.
fn scaled(grad: &Tensor, s: f64) -> Result<Tensor> {
    if s == 1.0 {
        Ok(grad.clone())
    } else {
        mul(grad, &Tensor::wrapped_scalar(s))
    }
}

/// Values of `a (+|-) alpha * b` in the promoted dtype (no autograd).
fn scaled_values(a: &Tensor, b: &Tensor, alpha: f64, kind: Binary) -> Result<Tensor> {
    if alpha == 1.0 {
        return promoted_values(a, b, kind, false);
    }
    check_alpha(a, b, alpha)?;
    let dtype = promote(a, b);
    crate::dtype::check_fits(alpha, dtype)?;
    if dtype.is_float() {
        // One rounding, as PyTorch's kernel (a - alpha b is a + (-alpha) b).
        let alpha = if kind == Binary::Sub { -alpha } else { alpha };
        return Ok(Tensor::from_data(kernels::add_scaled_fused(&a.data(), &b.data(), alpha, dtype)?));
    }
    let bs = binary_values(b, &Tensor::wrapped_scalar(alpha), Binary::Mul, dtype)?;
    binary_values(a, &bs, kind, dtype)
}

/// `a + alpha * b`.
pub fn add_scaled(a: &Tensor, b: &Tensor, alpha: f64) -> Result<Tensor> {
    let out = scaled_values(a, b, alpha, Binary::Add)?;
    record(out, &[a, b], |_| AddBackward { alpha })
}

/// `a + b`, broadcasting, with PyTorch's type promotion.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    add_scaled(a, b, 1.0)
}

/// d(a + alpha*b)/da = 1, d/db = alpha
pub struct AddBackward {
    alpha: f64,
}
impl Backward for AddBackward {
    fn name(&self) -> &'static str {
        "AddBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let gb = if ctx.needs(1) { Some(scaled(g, self.alpha)?) } else { None };
        Ok(smallvec![ctx.needs(0).then(|| g.clone()), gb])
    }
    // t = ta + alpha tb
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.sum_terms([Ok(ctx.tangent(0).cloned()), ctx.tangent(1).map(|t| scaled(t, self.alpha)).transpose()]))
    }
}

/// `x + s` for a number `s`, as PyTorch's `add(Tensor, Scalar)` records it (`AddBackward1`, one
/// input), the form its C++ composites use (`pairwise_distance`'s `x1 - x2 + eps`).
pub fn add_scalar(x: &Tensor, s: f64) -> Result<Tensor> {
    let out = promoted_values(x, &Tensor::wrapped_scalar(s), Binary::Add, false)?;
    record(out, &[x], |_| AddScalarBackward)
}

/// d(x + s)/dx = 1
pub struct AddScalarBackward;
impl Backward for AddScalarBackward {
    fn name(&self) -> &'static str {
        "AddBackward1"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(grad0(grads)?.clone())])
    }
    // t = tx
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().cloned())
    }
}

/// `x - s` for a number `s`, as PyTorch's `sub(Tensor, Scalar)` records it (`SubBackward1`).
pub fn sub_scalar(x: &Tensor, s: f64) -> Result<Tensor> {
    check_bool_sub(x, &Tensor::wrapped_scalar(s))?;
    let out = promoted_values(x, &Tensor::wrapped_scalar(s), Binary::Sub, false)?;
    record(out, &[x], |_| SubScalarBackward)
}

/// d(x - s)/dx = 1
pub struct SubScalarBackward;
impl Backward for SubScalarBackward {
    fn name(&self) -> &'static str {
        "SubBackward1"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(grad0(grads)?.clone())])
    }
    // t = tx
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().cloned())
    }
}

/// `x * s` for a number `s`, as PyTorch's `mul(Tensor, Scalar)` records it (`MulBackward1`).
pub fn mul_scalar(x: &Tensor, s: f64) -> Result<Tensor> {
    let out = promoted_values(x, &Tensor::wrapped_scalar(s), Binary::Mul, false)?;
    record(out, &[x], |_| MulScalarBackward { s })
}

/// d(x * s)/dx = s
pub struct MulScalarBackward {
    s: f64,
}
impl Backward for MulScalarBackward {
    fn name(&self) -> &'static str {
        "MulBackward1"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(mul(grad0(grads)?, &Tensor::wrapped_scalar(self.s))?)])
    }
    // t = s tx
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().and_then(|t| mul(t, &Tensor::wrapped_scalar(self.s))))
    }
}

/// `a - alpha * b`.
pub fn sub_scaled(a: &Tensor, b: &Tensor, alpha: f64) -> Result<Tensor> {
    check_bool_sub(a, b)?;
    let out = scaled_values(a, b, alpha, Binary::Sub)?;
    record(out, &[a, b], |_| SubBackward { alpha })
}

/// `a - b`, broadcasting, with PyTorch's type promotion.
pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    sub_scaled(a, b, 1.0)
}

/// d(a - alpha*b)/da = 1, d/db = -alpha
pub struct SubBackward {
    alpha: f64,
}
impl Backward for SubBackward {
    fn name(&self) -> &'static str {
        "SubBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let gb =
            if ctx.needs(1) { Some(if self.alpha == 1.0 { neg(g)? } else { scaled(g, -self.alpha)? }) } else { None };
        Ok(smallvec![ctx.needs(0).then(|| g.clone()), gb])
    }
    // t = ta - alpha tb
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.sum_terms([Ok(ctx.tangent(0).cloned()), ctx.tangent(1).map(|t| scaled(t, -self.alpha)).transpose()]))
    }
}

/// `other - alpha * x` for a Python number `other` (`2 - x`).
pub fn rsub_scalar(x: &Tensor, other: &Tensor, alpha: f64) -> Result<Tensor> {
    check_bool_sub(x, other)?;
    if alpha != 1.0 {
        check_alpha(x, other, alpha)?;
    }
    let dtype = promote(x, other);
    let xs =
        if alpha == 1.0 { x.clone() } else { binary_values(x, &Tensor::wrapped_scalar(alpha), Binary::Mul, dtype)? };
    let out = binary_values(other, &xs, Binary::Sub, dtype)?;
    record(out, &[x], |_| RsubBackward { alpha })
}

/// d(c - alpha*x)/dx = -alpha
pub struct RsubBackward {
    alpha: f64,
}
impl Backward for RsubBackward {
    fn name(&self) -> &'static str {
        "RsubBackward1"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        Ok(smallvec![Some(if self.alpha == 1.0 { neg(g)? } else { scaled(g, -self.alpha)? })])
    }
    // t = -alpha tx
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().and_then(|t| if self.alpha == 1.0 { neg(t) } else { scaled(t, -self.alpha) }))
    }
}

/// `t` saved if input `other` of the op being recorded needs a gradient (which uses `t`).
fn saved_if_needed(t: &Tensor, other: usize) -> SavedTensor {
    if crate::autograd::input_needed(other) {
        SavedTensor::input(t)
    } else {
        SavedTensor::none()
    }
}

/// `a * b`, broadcasting, with PyTorch's type promotion.
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out = promoted_values(a, b, Binary::Mul, false)?;
    // Each operand is saved only for the other's gradient, as in PyTorch (`(x * 2).grad_fn._saved_self`
    // is None): saving `x` there would also make `x` and a later in-place write into it a cycle.
    record(out, &[a, b], |_| MulBackward { a: saved_if_needed(a, 1), b: saved_if_needed(b, 0) })
}

/// d(a*b)/da = b, d(a*b)/db = a
pub struct MulBackward {
    a: SavedTensor,
    b: SavedTensor,
}
impl Backward for MulBackward {
    fn name(&self) -> &'static str {
        "MulBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        if ctx.needs(0) && ctx.needs(1) && self.a.same_tensor(&self.b) {
            // x * x: both gradients are g * x, computed once (both edges lead to x).
            let gx = mul(g, &self.a.unpack(ctx)?)?;
            return Ok(smallvec![Some(gx.clone()), Some(gx)]);
        }
        let ga = if ctx.needs(0) { Some(mul(g, &self.b.unpack(ctx)?)?) } else { None };
        let gb = if ctx.needs(1) { Some(mul(g, &self.a.unpack(ctx)?)?) } else { None };
        Ok(smallvec![ga, gb])
    }
    // t = ta b + a tb
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let (a, b) = (ctx.inputs[0], ctx.inputs[1]);
        Some(
            ctx.sum_terms([
                ctx.tangent(0).map(|t| mul(t, b)).transpose(),
                ctx.tangent(1).map(|t| mul(a, t)).transpose(),
            ]),
        )
    }
    crate::saved_tensors!(a => "self", b => "other");
}

/// True division: integer inputs give the default float type.
pub fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out = promoted_values(a, b, Binary::Div, true)?;
    record(out, &[a, b], |_| DivBackward { a: saved_if_needed(a, 1), b: SavedTensor::input(b) })
}

/// d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
pub struct DivBackward {
    a: SavedTensor,
    b: SavedTensor,
}
impl Backward for DivBackward {
    fn name(&self) -> &'static str {
        "DivBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let b = self.b.unpack(ctx)?;
        let ga = if ctx.needs(0) { Some(div(g, &b)?) } else { None };
        let gb = if ctx.needs(1) {
            let a = self.a.unpack(ctx)?;
            Some(mul(&neg(g)?, &div(&div(&a, &b)?, &b)?)?)
        } else {
            None
        };
        Ok(smallvec![ga, gb])
    }
    // t = (ta - tb a/b) / b = (ta - tb out) / b
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let (b, out) = (ctx.inputs[1], ctx.out);
        let numerator = ctx.sum_terms([
            Ok(ctx.tangent(0).cloned()),
            ctx.tangent(1).map(|t| mul(t, out).and_then(|x| neg(&x))).transpose(),
        ]);
        Some(numerator.and_then(|n| div(&n, b)))
    }
    crate::saved_tensors!(a => "self", b => "other");
}

/// `-x` (an error for a bool tensor).
pub fn neg(x: &Tensor) -> Result<Tensor> {
    if x.dtype() == DType::Bool {
        return Err(Error::NotImplemented(
            "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.".into(),
        ));
    }
    let out = Tensor::from_data(kernels::unary(&x.data(), Unary::Neg));
    record(out, &[x], |_| NegBackward)
}

/// d(-x)/dx = -1
pub struct NegBackward;
impl Backward for NegBackward {
    fn name(&self) -> &'static str {
        "NegBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(neg(grad0(grads)?)?)])
    }
    // t = -tx
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().and_then(neg))
    }
}

/// `1 / x`.
pub fn reciprocal(x: &Tensor) -> Result<Tensor> {
    let out = Tensor::from_data(kernels::unary(&x.data(), Unary::Reciprocal));
    record(out, &[x], |o| ReciprocalBackward { result: SavedTensor::output(o, 0) })
}

/// d(1/x)/dx = -1/x^2 = -result^2
pub struct ReciprocalBackward {
    result: SavedTensor,
}
impl Backward for ReciprocalBackward {
    fn name(&self) -> &'static str {
        "ReciprocalBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let r = self.result.unpack(ctx)?;
        Ok(smallvec![Some(mul(&neg(grad0(grads)?)?, &mul(&r, &r)?)?)])
    }
    // t = -tx / x^2 = -tx out^2
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.element_wise(self))
    }
    crate::saved_tensors!(result);
}

/// `x / divisor` for a number known to the caller's code (PyTorch's internal `div(Scalar)`,
/// `DivBackward1`), e.g. a loss divided by its element count.
pub fn div_number(x: &Tensor, divisor: f64) -> Result<Tensor> {
    let out = promoted_values(x, &Tensor::wrapped_scalar(divisor), Binary::Div, true)?;
    record(out, &[x], |_| DivNumberBackward { divisor })
}

/// d(x/c)/dx = 1/c
pub struct DivNumberBackward {
    divisor: f64,
}
impl Backward for DivNumberBackward {
    fn name(&self) -> &'static str {
        "DivBackward1"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(div_number(grad0(grads)?, self.divisor)?)])
    }
    // t = tx / c
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().and_then(|t| div_number(t, self.divisor)))
    }
}
