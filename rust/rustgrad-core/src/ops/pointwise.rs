//! Fused point-wise ops of several tensors, each one node as in PyTorch: lerp, addcmul, addcdiv.

use super::arith::{add, add_scaled, div, mul, neg, rsub_scalar, sub};
use super::view::sum_to;
use crate::autograd::{grad0, record, untracked, Backward, BackwardCtx, Grads, SavedTensor};
use crate::dtype::DType;
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
/// As PyTorch: `end` (and a weight tensor with dims) must have `x`'s dtype, a number weight
/// needs a float `x` ("lerp_kernel_scalar") and must fit its dtype; `True` weighs 1.
pub fn lerp(x: &Tensor, end: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let mismatch = |what: &str, got: DType| {
        Error::runtime(format!("expected dtype {} for `{what}` but got dtype {}", x.dtype().name_cpp(), got.name_cpp()))
    };
    if end.dtype() != x.dtype() {
        return Err(mismatch("end", end.dtype()));
    }
    let number_weight;
    let weight = if weight.is_wrapped_number() {
        crate::dtype::require_kernel("lerp_kernel_scalar", x.dtype(), crate::dtype::FLOATS)?;
        let w = weight.item_f64()?;
        crate::dtype::check_fits(w, x.dtype())?;
        if weight.dtype() == DType::Bool {
            number_weight = Tensor::wrapped_scalar(w);
            &number_weight
        } else {
            weight
        }
    } else {
        if weight.ndim() > 0 && weight.dtype() != x.dtype() {
            return Err(mismatch("weight", weight.dtype()));
        }
        weight
    };
    let out = untracked(|| {
        let diff = sub(end, x)?;
        if weight.numel() == 1 && weight.item_f64()? >= 0.5 {
            // end - (end - x)(1 - w)
            return sub(end, &mul(&diff, &rsub_scalar(weight, &scalar(1.0), 1.0)?)?);
        }
        add(x, &mul(weight, &diff)?)
    })?;
    let number = weight.is_wrapped_number();
    let make = |_: &Tensor| LerpBackward {
        x: SavedTensor::input(x),
        end: SavedTensor::input(end),
        weight: SavedTensor::input(weight),
        shapes: [x.shape(), end.shape(), weight.shape()],
        number,
    };
    if number {
        record(out, &[x, end], make)
    } else {
        record(out, &[x, end, weight], make)
    }
}

/// d lerp/dx = 1 - w, d/dend = w, d/dw = end - x
pub struct LerpBackward {
    x: SavedTensor,
    end: SavedTensor,
    weight: SavedTensor,
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
        let w = self.weight.unpack(ctx)?;
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
    crate::saved_tensors!(x, end, weight);
}

/// `x + value * t1 * t2` (`divide`: `x + value * t1 / t2`), one node (`AddcmulBackward0` /
/// `AddcdivBackward0`).
pub fn addc(x: &Tensor, t1: &Tensor, t2: &Tensor, value: f64, divide: bool) -> Result<Tensor> {
    let out = untracked(|| {
        let product = if divide { div(t1, t2)? } else { mul(t1, t2)? };
        add_scaled(x, &product, value)
    })?;
    record(out, &[x, t1, t2], |_| AddcBackward {
        t1: SavedTensor::input(t1),
        t2: SavedTensor::input(t2),
        shapes: [x.shape(), t1.shape(), t2.shape()],
        value,
        divide,
    })
}

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
    crate::saved_tensors!(t1, t2);
}
