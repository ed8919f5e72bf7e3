//! Comparisons (bool results, no gradient), logical and, and `where`.

use super::arith::promote;
use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::{self, Binary, Compare};
use crate::tensor::Tensor;
use smallvec::smallvec;

/// `a == b`, `a < b`, ... with broadcasting; never part of the graph.
pub fn compare(a: &Tensor, b: &Tensor, kind: Compare) -> Result<Tensor> {
    let dtype = promote(a, b);
    Ok(Tensor::from_data(kernels::compare(&a.data(), &b.data(), kind, dtype)?))
}

/// Element-wise logical and of two tensors, as a bool tensor.
pub fn logical_and(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(Tensor::from_data(kernels::binary(&a.data(), &b.data(), Binary::Mul, DType::Bool)?))
}

/// `where(cond, a, b)`: elements of `a` where `cond` holds, else of `b`.
pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if cond.dtype() != DType::Bool {
        let name = cond.dtype().scalar_type_name();
        return Err(Error::runtime(format!(
            "where expected condition to be a boolean tensor, but got a tensor with dtype {name}"
        )));
    }
    let dtype = promote(a, b);
    // A number operand is converted to the result's dtype, which it must fit.
    for t in [a, b] {
        if t.is_wrapped_number() {
            crate::dtype::check_fits(t.item_f64()?, dtype)?;
        }
    }
    let out = Tensor::from_data(kernels::select(&cond.data(), &a.data(), &b.data(), dtype)?);
    // The condition is saved with its version: modifying it in place before backward is an error.
    record(out, &[a, b], |_| WhereBackward { cond: SavedTensor::input(cond) })
}

/// d where(c, a, b)/da = [c], d/db = [not c]
pub struct WhereBackward {
    cond: SavedTensor,
}
impl Backward for WhereBackward {
    fn name(&self) -> &'static str {
        "WhereBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let cond = self.cond.unpack(ctx)?;
        let zero = Tensor::wrapped_scalar(0.0);
        let ga = if ctx.needs(0) { Some(where_(&cond, g, &zero)?) } else { None };
        let gb = if ctx.needs(1) { Some(where_(&cond, &zero, g)?) } else { None };
        Ok(smallvec![ga, gb])
    }
    // t = where(cond, ta, tb)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let formula = || {
            let cond = self.cond.unpack(&ctx.backward)?;
            let zero = Tensor::wrapped_scalar(0.0);
            let (ta, tb) = (ctx.tangent(0).unwrap_or(&zero), ctx.tangent(1).unwrap_or(&zero));
            where_(&cond, ta, tb)
        };
        Some(formula())
    }
    crate::saved_tensors!(cond);
}
