//! Fused point-wise ops of several tensors, each one node as in PyTorch: lerp, addcmul, addcdiv.

use super::arith::{add, add_scaled, div, mul, neg, rsub_scalar, sub};
use super::view::sum_to;
use crate::autograd::{grad0, record, untracked, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::{require_kernel, result_type, DType, FLOATS, NUMBERS};
use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::tensor::Tensor;
use smallvec::smallvec;

fn scalar(v: f64) -> Tensor {
    Tensor::wrapped_scalar(v)
}

/// `g` summed down to `shape` (the gradient of a broadcast input).
fn reduce_to(g: Tensor, shape: &Shape) -> Result<Tensor> {
    if g.shape() == *shape {
        Ok(g)
    } else {
        sum_to(&g, shape)
    }
}

/// `x + w (end - x)`, computed from the nearer end for a number weight (exact at w = 0 and 1).
/// A number weight records `LerpBackward0`, a tensor weight `LerpBackward1`.
pub fn lerp(x: &Tensor, end: &Tensor, weight: &Tensor) -> Result<Tensor> {
    check_lerp_dtypes(x, end, weight)?;
    // Broadcasting errors name the input first (tensor a), as PyTorch's.
    let shape = crate::shape::broadcast_shapes(&x.shape(), &end.shape())?;
    crate::shape::broadcast_shapes(&shape, &weight.shape())?;
    // A bool weight (a number or a 0-d tensor) counts as 0 or 1.
    let cast;
    let weight = if weight.dtype() == DType::Bool {
        cast = if weight.is_wrapped_number() {
            scalar(weight.item_f64()?)
        } else {
            super::view::to_dtype(weight, x.dtype())?
        };
        &cast
    } else {
        weight
    };
    let out = untracked(|| {
        let same = weight.is_wrapped_number() || weight.dtype() == x.dtype();
        if weight.numel() == 1 && same && x.dtype().is_float() && x.dtype() == end.dtype() {
            return lerp_one_weight(x, end, weight.item_f64()?);
        }
        let diff = sub(end, x)?;
        if weight.numel() == 1 && weight.item_f64()? >= 0.5 {
            // end - (end - x)(1 - w)
            return sub(end, &mul(&diff, &rsub_scalar(weight, &scalar(1.0), 1.0)?)?);
        }
        add(x, &mul(weight, &diff)?)
    })?;
    let number = weight.is_wrapped_number();
    // A number weight is all a number-weight lerp needs (nothing saved: PyTorch's LerpBackward0
    // may run again after its graph is freed).
    let weight_value = if number { Some(weight.item_f64()?) } else { None };
    let saved = |t: &Tensor| if number { SavedTensor::none() } else { SavedTensor::input(t) };
    let make = |_: &Tensor| LerpBackward {
        x: saved(x),
        end: saved(end),
        weight: saved(weight),
        weight_value,
        shapes: [x.shape(), end.shape(), weight.shape()],
        number,
    };
    if number {
        record(out, &[x, end], make)
    } else {
        record(out, &[x, end, weight], make)
    }
}

/// `lerp` with one weight as PyTorch's CPU kernel computes it: in float32 for float32 and the half
/// types (float64 for float64), the weight rounded to that type, one fused multiply-add from the
/// nearer end (`x + w (end - x)` below 0.5, `end + (w - 1)(end - x)` from 0.5), then one rounding
/// to the dtype.
fn lerp_one_weight(x: &Tensor, end: &Tensor, w: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    if matches!(dtype, DType::F16 | DType::BF16) {
        let (xf, ef) = (super::view::to_dtype(x, DType::F32)?, super::view::to_dtype(end, DType::F32)?);
        return super::view::to_dtype(&lerp_one_weight(&xf, &ef, w)?, dtype);
    }
    let w = if dtype == DType::F64 { w } else { w as f32 as f64 };
    let diff = sub(end, x)?;
    if w < 0.5 {
        add_scaled(x, &diff, w)
    } else {
        add_scaled(end, &diff, w - 1.0)
    }
}

/// PyTorch's dtype rules of lerp: `end` has the input's dtype, and so does a weight tensor with
/// dimensions (a 0-d weight takes part in type promotion instead); the result must be a float
/// (a number weight does not promote an integer input: `lerp_kernel_scalar`).
fn check_lerp_dtypes(x: &Tensor, end: &Tensor, weight: &Tensor) -> Result<()> {
    let expected = |what: &str, got: DType| {
        Err(Error::runtime(format!(
            "expected dtype {} for `{what}` but got dtype {}",
            x.dtype().name_cpp(),
            got.name_cpp()
        )))
    };
    if end.dtype() != x.dtype() {
        return expected("end", end.dtype());
    }
    let number = weight.is_wrapped_number();
    if !number && weight.ndim() > 0 && weight.dtype() != x.dtype() {
        return expected("weight", weight.dtype());
    }
    let result = if number { x.dtype() } else { result_type(&[x.promotion_input(), weight.promotion_input()]) };
    let kernel = if number { "lerp_kernel_scalar" } else { "lerp_kernel_tensor" };
    require_kernel(kernel, result, FLOATS)?;
    if number {
        crate::dtype::check_fits(weight.item_f64()?, x.dtype())?;
    }
    Ok(())
}

/// d lerp/dx = 1 - w, d/dend = w, d/dw = end - x
pub struct LerpBackward {
    x: SavedTensor,
    end: SavedTensor,
    weight: SavedTensor,
    /// The weight when it is a number.
    weight_value: Option<f64>,
    shapes: [Shape; 3],
    number: bool,
}
impl Backward for LerpBackward {
    fn name(&self) -> &'static str {
        if self.number {
            "LerpBackward0"
        } else {
            "LerpBackward1"
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?.clone();
        let w = match self.weight_value {
            Some(v) => scalar(v),
            None => self.weight.unpack(ctx)?,
        };
        let gx = if ctx.needs(0) {
            Some(reduce_to(mul(&g, &rsub_scalar(&w, &scalar(1.0), 1.0)?)?, &self.shapes[0])?)
        } else {
            None
        };
        let ge = if ctx.needs(1) { Some(reduce_to(mul(&g, &w)?, &self.shapes[1])?) } else { None };
        let gw = if !self.number && ctx.needs(2) {
            let (x, e) = (self.x.unpack(ctx)?, self.end.unpack(ctx)?);
            Some(reduce_to(mul(&g, &sub(&e, &x)?)?, &self.shapes[2])?)
        } else {
            None
        };
        let mut out: Grads = smallvec![gx, ge];
        if !self.number {
            out.push(gw);
        }
        Ok(out)
    }
    fn release(&mut self) {
        [&mut self.x, &mut self.end, &mut self.weight].into_iter().for_each(SavedTensor::release);
    }
    fn saves_tensors(&self) -> bool {
        !self.number
    }
    fn retarget_outputs(&mut self, target: &Tensor) {
        [&mut self.x, &mut self.end, &mut self.weight].into_iter().for_each(|s| s.retarget_output(target));
    }
    // t = tx (1 - w) + tend w + tw (end - x)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let (x, end) = (ctx.inputs[0], ctx.inputs[1]);
        let w = match self.weight_value {
            Some(v) => scalar(v),
            None => ctx.inputs[2].clone(),
        };
        Some(ctx.sum_terms([
            ctx.tangent(0).map(|t| rsub_scalar(&w, &scalar(1.0), 1.0).and_then(|k| mul(t, &k))).transpose(),
            ctx.tangent(1).map(|t| mul(t, &w)).transpose(),
            ctx.tangent(2).map(|t| sub(end, x).and_then(|d| mul(t, &d))).transpose(),
        ]))
    }
}

/// `x + value * t1 * t2` (`divide`: `x + value * t1 / t2`), one node (`AddcmulBackward0` /
/// `AddcdivBackward0`).
pub fn addc(x: &Tensor, t1: &Tensor, t2: &Tensor, value: f64, divide: bool) -> Result<Tensor> {
    if divide && !t1.dtype().is_float() && !t2.dtype().is_float() {
        return Err(Error::runtime(ADDCDIV_OF_INTEGERS));
    }
    // One promotion over the three operands (a 0-d float64 `x` makes the result float64 even
    // when the product alone would be float32), as PyTorch's single kernel does.
    let dtype = result_type(&[x.promotion_input(), t1.promotion_input(), t2.promotion_input()]);
    if !divide {
        require_kernel("addcmul_cpu_out", dtype, NUMBERS)?;
    }
    let out = untracked(|| {
        let cast = |t: &Tensor| if dtype.is_float() { super::view::to_dtype(t, dtype) } else { Ok(t.clone()) };
        let (t1, t2) = (cast(t1)?, cast(t2)?);
        if dtype.is_float() {
            // PyTorch's order and roundings: x + ((value * t1) op t2); the value must fit.
            crate::dtype::check_fits(value, dtype)?;
            let scaled = mul(&t1, &Tensor::wrapped_scalar(value))?;
            let product = if divide { div(&scaled, &t2)? } else { mul(&scaled, &t2)? };
            return super::arith::add(&cast(x)?, &product);
        }
        let product = if divide { div(&t1, &t2)? } else { mul(&t1, &t2)? };
        add_scaled(&cast(x)?, &product, value)
    })?;
    record(out, &[x, t1, t2], |_| AddcBackward {
        t1: SavedTensor::input(t1),
        t2: SavedTensor::input(t2),
        shapes: [x.shape(), t1.shape(), t2.shape()],
        value,
        divide,
    })
}

const ADDCDIV_OF_INTEGERS: &str = "Integer division with addcdiv is no longer supported, and in a future  \
release addcdiv will perform a true division of tensor1 and tensor2. The historic addcdiv behavior can be implemented \
as (input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype) for integer inputs and as (input + value * \
tensor1 / tensor2) for float inputs. The future addcdiv behavior is just the latter implementation: (input + value * \
tensor1 / tensor2), for all dtypes.";

/// addcmul: d/dx = 1, d/dt1 = v t2, d/dt2 = v t1; addcdiv: d/dt1 = v / t2, d/dt2 = -v t1 / t2^2
pub struct AddcBackward {
    t1: SavedTensor,
    t2: SavedTensor,
    shapes: [Shape; 3],
    value: f64,
    divide: bool,
}
impl Backward for AddcBackward {
    fn name(&self) -> &'static str {
        if self.divide {
            "AddcdivBackward0"
        } else {
            "AddcmulBackward0"
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?.clone();
        let gx = if ctx.needs(0) { Some(reduce_to(g.clone(), &self.shapes[0])?) } else { None };
        let (t1, t2) = (self.t1.unpack(ctx)?, self.t2.unpack(ctx)?);
        let gv = mul(&g, &scalar(self.value))?;
        let g1 = if ctx.needs(1) {
            let t = if self.divide { div(&gv, &t2)? } else { mul(&gv, &t2)? };
            Some(reduce_to(t, &self.shapes[1])?)
        } else {
            None
        };
        let g2 = if ctx.needs(2) {
            let t = if self.divide { neg(&div(&mul(&gv, &t1)?, &mul(&t2, &t2)?)?)? } else { mul(&gv, &t1)? };
            Some(reduce_to(t, &self.shapes[2])?)
        } else {
            None
        };
        Ok(smallvec![gx, g1, g2])
    }
    crate::saved_tensors!(t1 => "tensor1", t2 => "tensor2");
    // addcmul: t = tx + v (t1' t2 + t1 t2'); addcdiv: t = tx + v (t1' / t2 - t1 t2' / t2^2)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let (t1, t2, v) = (ctx.inputs[1], ctx.inputs[2], scalar(self.value));
        let first = |t: &Tensor| if self.divide { div(t, t2) } else { mul(t, t2) };
        let second = |t: &Tensor| {
            if self.divide {
                neg(&div(&mul(t1, t)?, &mul(t2, t2)?)?)
            } else {
                mul(t1, t)
            }
        };
        Some(ctx.sum_terms([
            Ok(ctx.tangent(0).cloned()),
            ctx.tangent(1).map(|t| first(t).and_then(|x| mul(&x, &v))).transpose(),
            ctx.tangent(2).map(|t| second(t).and_then(|x| mul(&x, &v))).transpose(),
        ]))
    }
}
