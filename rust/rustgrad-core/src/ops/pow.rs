//! pow: tensor ** number (PowBackward0), tensor ** tensor (PowBackward1), number ** tensor (PowBackward2).

use super::arith::{mul, promote, sub};
use super::compare::{compare, logical_and, where_};
use super::unary::log;
use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::{result_type, DType};
use crate::error::Result;
use crate::kernels::{self, Binary, Compare};
use crate::scalar::Scalar;
use crate::tensor::Tensor;
use smallvec::smallvec;

/// `x ** e` for a Python number `e`.
pub fn pow_scalar(x: &Tensor, e: Scalar) -> Result<Tensor> {
    let dtype = result_type(&[x.promotion_input(), e.promotion_input()]);
    if dtype.is_integral() && matches!(e, Scalar::Int(n) if n < 0) {
        return Err(crate::error::Error::runtime("Integers to negative integer powers are not allowed."));
    }
    if dtype == DType::Bool {
        // bool ** bool stays bool (PyTorch): `x ** True` is `x`, `x ** False` is all true.
        let d = x.data();
        let out = if e.to_f64() != 0.0 { kernels::cast_like(&d, dtype) } else { kernels::full(&d.shape, 1.0, dtype) };
        return Ok(Tensor::from_data(out));
    }
    let out = Tensor::from_data(kernels::pow_scalar(&x.data(), e.to_f64(), dtype));
    record(out, &[x], |_| PowScalarBackward { x: SavedTensor::input(x), e })
}

/// d(x^e)/dx = e * x^(e-1)
pub struct PowScalarBackward {
    x: SavedTensor,
    e: Scalar,
}
impl Backward for PowScalarBackward {
    fn name(&self) -> &'static str {
        "PowBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let x = self.x.unpack(ctx)?;
        if self.e.to_f64() == 0.0 {
            return Ok(smallvec![Some(crate::creation::zeros_like(&x))]);
        }
        let em1 = self.e.minus_one();
        let local = mul(&self.e.to_tensor(), &pow_scalar(&x, em1)?)?;
        Ok(smallvec![Some(mul(g, &local)?)])
    }
    // t = tx f'(x): the backward applied to the tangent
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.element_wise(self))
    }
    crate::saved_tensors!(x => "self");
}

/// `a ** b` for two tensors.
pub fn pow_tensor(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let dtype = promote(a, b);
    crate::dtype::require_kernel("pow", dtype, crate::dtype::NUMBERS)?;
    let out = Tensor::from_data(kernels::binary(&a.data(), &b.data(), Binary::Pow, dtype)?);
    record(out, &[a, b], |o| PowTensorBackward {
        a: SavedTensor::input(a),
        b: SavedTensor::input(b),
        result: SavedTensor::output(o, 0),
    })
}

/// d(a^b)/da = b * a^(b-1) (0 where b == 0); d(a^b)/db = a^b * ln(a) (0 where a == 0 and b >= 0)
pub struct PowTensorBackward {
    a: SavedTensor,
    b: SavedTensor,
    result: SavedTensor,
}
impl Backward for PowTensorBackward {
    fn name(&self) -> &'static str {
        "PowBackward1"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let a = self.a.unpack(ctx)?;
        let b = self.b.unpack(ctx)?;
        let zero = Tensor::wrapped_scalar(0.0);
        let ga = if ctx.needs(0) {
            let bm1 = sub(&b, &Tensor::wrapped_scalar(1i64))?;
            let local = mul(&b, &pow_tensor(&a, &bm1)?)?;
            let full = mul(g, &local)?;
            Some(where_(&compare(&b, &zero, Compare::Eq)?, &zero, &full)?)
        } else {
            None
        };
        let gb = if ctx.needs(1) {
            let r = self.result.unpack(ctx)?;
            let cond = logical_and(&compare(&a, &zero, Compare::Eq)?, &compare(&b, &zero, Compare::Ge)?)?;
            let local = where_(&cond, &zero, &mul(&r, &log(&a)?)?)?;
            Some(mul(g, &local)?)
        } else {
            None
        };
        Ok(smallvec![ga, gb])
    }
    // t = ta b a^(b-1) + tb a^b ln(a): the backward applied to each tangent (element-wise, with
    // the same zeros where b == 0, and where a == 0 and b >= 0)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.element_wise_each(self))
    }
    crate::saved_tensors!(a => "self", b => "exponent", result);
}

/// `base ** x` for a Python number `base`.
pub fn scalar_pow(base: Scalar, x: &Tensor) -> Result<Tensor> {
    let bt = base.to_tensor();
    let dtype = promote(&bt, x);
    crate::dtype::require_kernel("pow", dtype, crate::dtype::NUMBERS)?;
    // Row-major whatever x's layout (PyTorch's `number ** tensor` does not keep it).
    let out = Tensor::from_data(kernels::binary_row_major_result(&bt.data(), &x.data(), Binary::Pow, dtype)?);
    record(out, &[x], |o| ScalarPowBackward { base, x: SavedTensor::input(x), result: SavedTensor::output(o, 0) })
}

/// d(c^x)/dx = c^x * ln(c) (0 where c == 0 and x >= 0)
pub struct ScalarPowBackward {
    base: Scalar,
    x: SavedTensor,
    result: SavedTensor,
}
impl Backward for ScalarPowBackward {
    fn name(&self) -> &'static str {
        "PowBackward2"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let r = self.result.unpack(ctx)?;
        let b = self.base.to_f64();
        let local = mul(&r, &Tensor::wrapped_scalar(b.ln()))?;
        let local = if b == 0.0 {
            let x = self.x.unpack(ctx)?;
            where_(&compare(&x, &Tensor::wrapped_scalar(0.0), Compare::Ge)?, &Tensor::wrapped_scalar(0.0), &local)?
        } else {
            local
        };
        Ok(smallvec![Some(mul(g, &local)?)])
    }
    // t = tx f'(x): the backward applied to the tangent
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.element_wise(self))
    }
    crate::saved_tensors!(x => "exponent", result);
}
