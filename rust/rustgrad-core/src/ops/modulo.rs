//! fmod/remainder, nan_to_num, and the fused products addmv/addr/baddbmm.

use super::arith::{add, mul, neg, promote};
use super::linalg::{bmm, mv};
use super::unary::unary;
use super::view::{sum_to, transpose, unsqueeze};
use crate::autograd::{grad0, record, untracked, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::kernels::{self, Unary};
use crate::shape::{self, Shape};
use crate::tensor::{Tensor, TensorData};
use crate::with_dtype;
use smallvec::smallvec;

// ----------------------------------------------------------------------------- fmod / remainder

/// `a % b` truncated (`fmod`) or floored (`remainder`, the sign of `b`), in f64.
#[inline]
fn mod_f64(a: f64, b: f64, floor: bool) -> f64 {
    let m = a % b;
    if floor && m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        m + b
    } else {
        m
    }
}

/// The same for integers (`None` for a zero divisor).
#[inline]
fn mod_i64(a: i64, b: i64, floor: bool) -> Option<i64> {
    if b == 0 {
        return None;
    }
    let m = a.wrapping_rem(b);
    Some(if floor && m != 0 && ((b < 0) != (m < 0)) { m + b } else { m })
}

/// `a.fmod(b)` (`floor`: `a.remainder(b)`, Python's `%`), broadcast, with PyTorch's promotion.
pub fn fmod(a: &Tensor, b: &Tensor, floor: bool) -> Result<Tensor> {
    let dtype = promote(a, b);
    if dtype == DType::Bool {
        let op = if floor { "remainder_cpu" } else { "fmod_cpu" };
        return Err(Error::NotImplemented(format!("\"{op}\" not implemented for 'Bool'")));
    }
    let (da, db) = (a.data(), b.data());
    let out_shape = shape::broadcast_shapes(&da.shape, &db.shape)?;
    let values = with_dtype!(dtype, T => mod_values::<T>(&da, &db, &out_shape, floor)?);
    let values = super::shaped::layout_like(values, &[&da, &db]);
    let scalar = b.is_wrapped_number();
    if floor && a.is_wrapped_number() {
        return no_derivative(Tensor::from_data(values), b, NoDerivative::RemainderScalarTensor);
    }
    record(Tensor::from_data(values), &[a, b], |_| FmodBackward {
        // With a number divisor the gradient passes straight through: nothing is saved.
        a: if scalar { SavedTensor::none() } else { SavedTensor::input(a) },
        b: if scalar { SavedTensor::none() } else { SavedTensor::input(b) },
        a_shape: da.shape.clone(),
        b_shape: db.shape.clone(),
        floor,
        scalar,
    })
}

fn mod_values<T: crate::storage::IntoStorage>(
    a: &TensorData,
    b: &TensorData,
    shape: &[usize],
    floor: bool,
) -> Result<TensorData> {
    let av = kernels::expand_values::<T>(a, shape);
    let bv = kernels::expand_values::<T>(b, shape);
    let out: Vec<T> = if T::DTYPE.is_float() {
        av.iter().zip(&bv).map(|(&x, &y)| T::from_f64(mod_f64(x.to_f64(), y.to_f64(), floor))).collect()
    } else {
        let mut out = Vec::with_capacity(av.len());
        for (&x, &y) in av.iter().zip(&bv) {
            let m = mod_i64(x.to_i64(), y.to_i64(), floor).ok_or_else(|| Error::runtime("ZeroDivisionError"))?;
            out.push(T::from_i64(m));
        }
        out
    };
    Ok(TensorData::from_vec(out, shape.into()))
}

/// d fmod(a, b)/da = 1, d/db = -trunc(a / b) (remainder: -floor(a / b))
pub struct FmodBackward {
    a: SavedTensor,
    b: SavedTensor,
    a_shape: Shape,
    b_shape: Shape,
    floor: bool,
    /// `b` is a Python number (`FmodBackward0`: no gradient for it).
    scalar: bool,
}
impl Backward for FmodBackward {
    fn name(&self) -> &'static str {
        match (self.floor, self.scalar) {
            (false, true) => "FmodBackward0",
            (false, false) => "FmodBackward1",
            (true, true) => "RemainderBackward0",
            (true, false) => "RemainderBackward1",
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let ga = if ctx.needs(0) { Some(sum_to(g, &self.a_shape)?) } else { None };
        let gb = if !self.scalar && ctx.needs(1) {
            let (a, b) = (self.a.unpack(ctx)?, self.b.unpack(ctx)?);
            let q = unary(&super::arith::div(&a, &b)?, if self.floor { Unary::Floor } else { Unary::Trunc })?;
            Some(sum_to(&neg(&mul(g, &q)?)?, &self.b_shape)?)
        } else {
            None
        };
        Ok(smallvec![ga, gb])
    }
    fn release(&mut self) {
        self.a.release();
        self.b.release();
    }
    fn saves_tensors(&self) -> bool {
        !self.scalar
    }
    fn retarget_outputs(&mut self, _target: &Tensor) {}
}

// ----------------------------------------------------------------------------- nan_to_num

/// `x.nan_to_num(nan, posinf, neginf)`: NaN and infinities replaced (by default with 0 and the
/// dtype's largest and lowest finite values); integer and bool tensors are copied.
pub fn nan_to_num(x: &Tensor, nan: f64, posinf: Option<f64>, neginf: Option<f64>) -> Result<Tensor> {
    let d = x.data();
    let dtype = d.dtype();
    let values = with_dtype!(dtype, T => {
        let v = kernels::values::<T>(&d);
        if dtype.is_float() {
            let (max, min) = finite_range(dtype);
            let (p, n) = (posinf.unwrap_or(max), neginf.unwrap_or(min));
            let out: Vec<T> = v
                .iter()
                .map(|&e| {
                    let f = e.to_f64();
                    if f.is_nan() {
                        T::from_f64(nan)
                    } else if f == f64::INFINITY {
                        T::from_f64(p)
                    } else if f == f64::NEG_INFINITY {
                        T::from_f64(n)
                    } else {
                        e
                    }
                })
                .collect();
            TensorData::from_vec(out, d.shape.clone())
        } else {
            TensorData::from_vec(v.into_owned(), d.shape.clone())
        }
    });
    let values = super::shaped::layout_like(values, &[&d]);
    record(Tensor::from_data(values), &[x], |_| NanToNumBackward { x: SavedTensor::input(x) })
}

/// The largest finite value of a float dtype (and its negation).
fn finite_range(dtype: DType) -> (f64, f64) {
    let max = match dtype {
        DType::F16 => 65504.0,
        DType::BF16 => 3.3895313892515355e38,
        DType::F32 => f32::MAX as f64,
        _ => f64::MAX,
    };
    (max, -max)
}

/// d nan_to_num(x)/dx = 1 where x is finite, else 0
pub struct NanToNumBackward {
    x: SavedTensor,
}
impl Backward for NanToNumBackward {
    fn name(&self) -> &'static str {
        "NanToNumBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let x = self.x.unpack(ctx)?;
        let finite = Tensor::from_data(kernels::unary(&x.data(), Unary::Abs));
        let finite = super::compare::compare(&finite, &Tensor::wrapped_scalar(f64::INFINITY), kernels::Compare::Lt)?;
        let zero = Tensor::wrapped_scalar(0.0);
        Ok(smallvec![Some(super::compare::where_(&finite, g, &zero)?)])
    }
    // t = tx f'(x): the backward applied to the tangent
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.element_wise(self))
    }
    crate::saved_tensors!(x);
}

// ----------------------------------------------------------------------------- addmv / addr / baddbmm

/// Which fused product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fused {
    /// `beta * input + alpha * (mat @ vec)`
    Addmv,
    /// `beta * input + alpha * outer(vec1, vec2)`
    Addr,
    /// `beta * input + alpha * bmm(batch1, batch2)`
    Baddbmm,
}

/// `x * s` for a number `s` (the tensor itself when `s == 1`).
fn scaled(x: &Tensor, s: f64) -> Result<Tensor> {
    if s == 1.0 {
        return Ok(x.clone());
    }
    let s = if x.dtype().is_float() { Tensor::wrapped_scalar(s) } else { Tensor::wrapped_scalar(s as i64) };
    mul(x, &s)
}

/// The product of `a` and `b` for `kind` (recorded when its inputs are).
fn product(kind: Fused, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    match kind {
        Fused::Addmv => mv(a, b),
        Fused::Addr => mul(&unsqueeze(a, 1)?, &unsqueeze(b, 0)?),
        Fused::Baddbmm => bmm(a, b),
    }
}

/// PyTorch's checks and messages for the fused products.
fn check_fused(kind: Fused, input: &Tensor, a: &Tensor, b: &Tensor) -> Result<Shape> {
    let (is, as_, bs) = (input.shape(), a.shape(), b.shape());
    let (di, da, db) = (input.dtype(), a.dtype(), b.dtype());
    match kind {
        Fused::Addmv => {
            if as_.len() != 2 || bs.len() != 1 {
                return Err(Error::runtime(format!(
                    "vector + matrix @ vector expected, got {}, {}, {}",
                    is.len(),
                    as_.len(),
                    bs.len()
                )));
            }
            if as_[1] != bs[0] || !(is.len() <= 1 && (is.is_empty() || is[0] == as_[0] || is[0] == 1)) {
                return Err(Error::runtime(format!(
                    "size mismatch, got input ({}), mat ({}x{}), vec ({})",
                    is.first().copied().unwrap_or(1),
                    as_[0],
                    as_[1],
                    bs[0]
                )));
            }
            if di != da || da != db {
                return Err(Error::runtime(format!(
                    "addmv input tensors must have the same dtype, but got {}, {}, and {}",
                    di.scalar_type_name(),
                    da.scalar_type_name(),
                    db.scalar_type_name()
                )));
            }
            Ok(smallvec![as_[0]])
        }
        Fused::Addr => {
            if as_.len() != 1 {
                return Err(Error::runtime(format!("addr: Expected 1-D argument vec1, but got {}-D", as_.len())));
            }
            if bs.len() != 1 {
                return Err(Error::runtime(format!("addr: Expected 1-D argument vec2, but got {}-D", bs.len())));
            }
            Ok(smallvec![as_[0], bs[0]])
        }
        Fused::Baddbmm => {
            if as_.len() != 3 {
                return Err(Error::runtime("batch1 must be a 3D tensor"));
            }
            if bs.len() != 3 {
                return Err(Error::runtime("batch2 must be a 3D tensor"));
            }
            if di != da || da != db {
                return Err(Error::runtime(format!(
                    "Input dtypes must be the same, got: input {}, batch1: {}, batch2: {}",
                    di.name_cpp(),
                    da.name_cpp(),
                    db.name_cpp()
                )));
            }
            Ok(smallvec![as_[0], as_[1], bs[2]])
        }
    }
}

/// `input.addmv(mat, vec, beta, alpha)` and friends (see [`Fused`]). With `beta == 0` the
/// input's values are ignored (NaN included), as in PyTorch.
pub fn fused(kind: Fused, input: &Tensor, a: &Tensor, b: &Tensor, beta: f64, alpha: f64) -> Result<Tensor> {
    let out_shape = check_fused(kind, input, a, b)?;
    let is = input.shape();
    if !shape::is_expandable_to(&is, &out_shape) {
        let sizes: Vec<i64> = out_shape.iter().map(|&s| s as i64).collect();
        super::view::expand(&input.detach(), &sizes)?; // PyTorch's expand message
    }
    let values = untracked(|| {
        // 16-bit floats compute in float32 and round once at the end, as PyTorch's CPU kernels.
        let half = |t: &Tensor| {
            let d = t.dtype();
            if d.is_float() && d.size() == 2 {
                super::view::to_dtype(&t.detach(), DType::F32)
            } else {
                Ok(t.detach())
            }
        };
        let p = if kind == Fused::Addr {
            // addr rounds as its element formula is written: beta * self + (alpha * vec1) * vec2.
            product(kind, &scaled(&a.detach(), alpha)?, &b.detach())?
        } else {
            scaled(&product(kind, &half(a)?, &half(b)?)?, alpha)?
        };
        let i = if kind == Fused::Addr { input.detach() } else { half(input)? };
        let r = if beta == 0.0 { p } else { add(&scaled(&i, beta)?, &p)? };
        let out_dtype = crate::dtype::result_type(&[input.promotion_input(), a.promotion_input(), b.promotion_input()]);
        if r.dtype() != out_dtype {
            super::view::to_dtype(&r, out_dtype)
        } else {
            Ok(r)
        }
    })?;
    let out = Tensor::from_data(values.data());
    record(out, &[input, a, b], |_| FusedBackward {
        a: SavedTensor::input(a),
        b: SavedTensor::input(b),
        input_shape: is.clone(),
        beta,
        alpha,
        kind,
    })
}

/// d/dinput = beta * g (summed to its shape); addmv: d/dmat = alpha * outer(g, vec),
/// d/dvec = alpha * mat^T g; addr: d/dv1 = alpha * g v2, d/dv2 = alpha * g^T v1;
/// baddbmm: d/db1 = alpha * g b2^T, d/db2 = alpha * b1^T g
pub struct FusedBackward {
    a: SavedTensor,
    b: SavedTensor,
    input_shape: Shape,
    beta: f64,
    alpha: f64,
    kind: Fused,
}
impl Backward for FusedBackward {
    fn name(&self) -> &'static str {
        match self.kind {
            Fused::Addmv => "AddmvBackward0",
            Fused::Addr => "AddrBackward0",
            Fused::Baddbmm => "BaddbmmBackward0",
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let gi = if ctx.needs(0) { Some(sum_to(&scaled(g, self.beta)?, &self.input_shape)?) } else { None };
        let (ga, gb) = match self.kind {
            Fused::Addmv => {
                let ga = if ctx.needs(1) {
                    let v = self.b.unpack(ctx)?;
                    Some(scaled(&mul(&unsqueeze(g, 1)?, &unsqueeze(&v, 0)?)?, self.alpha)?)
                } else {
                    None
                };
                let gb = if ctx.needs(2) {
                    Some(scaled(&mv(&transpose(&self.a.unpack(ctx)?, 0, 1)?, g)?, self.alpha)?)
                } else {
                    None
                };
                (ga, gb)
            }
            Fused::Addr => {
                let ga = if ctx.needs(1) { Some(scaled(&mv(g, &self.b.unpack(ctx)?)?, self.alpha)?) } else { None };
                let gb = if ctx.needs(2) {
                    Some(scaled(&mv(&transpose(g, 0, 1)?, &self.a.unpack(ctx)?)?, self.alpha)?)
                } else {
                    None
                };
                (ga, gb)
            }
            Fused::Baddbmm => {
                let ga = if ctx.needs(1) {
                    Some(scaled(&bmm(g, &transpose(&self.b.unpack(ctx)?, 1, 2)?)?, self.alpha)?)
                } else {
                    None
                };
                let gb = if ctx.needs(2) {
                    Some(scaled(&bmm(&transpose(&self.a.unpack(ctx)?, 1, 2)?, g)?, self.alpha)?)
                } else {
                    None
                };
                (ga, gb)
            }
        };
        Ok(smallvec![gi, ga, gb])
    }
    crate::saved_tensors!(a, b);
}

// ----------------------------------------------------------------------------- no derivative

/// An op whose derivative PyTorch does not implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoDerivative {
    /// `torch.unique` over all elements (`_unique2`).
    Unique,
    /// `torch.unique(dim=...)`.
    UniqueDim,
    /// `number % tensor`.
    RemainderScalarTensor,
}

/// Records `out` = op(`x`) with a node whose backward raises PyTorch's error.
pub fn no_derivative(out: Tensor, x: &Tensor, kind: NoDerivative) -> Result<Tensor> {
    record(out, &[x], |_| NoDerivativeBackward { kind })
}

/// d op(x)/dx: not implemented (backward raises, as in PyTorch)
pub struct NoDerivativeBackward {
    kind: NoDerivative,
}
impl Backward for NoDerivativeBackward {
    fn name(&self) -> &'static str {
        match self.kind {
            NoDerivative::Unique => "Unique2Backward0",
            NoDerivative::UniqueDim => "UniqueDimBackward0",
            NoDerivative::RemainderScalarTensor => "NotImplemented",
        }
    }
    fn apply(&self, _ctx: &BackwardCtx, _grads: &[Option<Tensor>]) -> Result<Grads> {
        Err(match self.kind {
            NoDerivative::Unique => Error::NotImplemented("the derivative for '_unique2' is not implemented.".into()),
            NoDerivative::UniqueDim => {
                Error::NotImplemented("the derivative for 'unique_dim' is not implemented.".into())
            }
            NoDerivative::RemainderScalarTensor => Error::runtime("derivative for aten::remainder is not implemented"),
        })
    }
}
