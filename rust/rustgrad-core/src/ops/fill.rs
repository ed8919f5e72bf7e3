//! The values an in-place `fill_`, `zero_` or `copy_` writes, recorded so that the target's
//! new history is right: nothing of the old values flows back, and `copy_`'s source gets the
//! gradient. (Written into the target by [`crate::inplace::apply_inplace`].)

use super::view::{contiguous, expand_to, to_dtype};
use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads};
use crate::creation::{full, zeros_like};
use crate::error::Result;
use crate::tensor::Tensor;
use smallvec::smallvec;

/// `self` filled with `value` (what `self.fill_(value)` / `self.zero_()` writes).
pub fn filled(x: &Tensor, value: f64) -> Result<Tensor> {
    let d = x.data();
    let name = if value == 0.0 { "ZeroBackward0" } else { "FillBackward2" };
    record(full(&d.shape, value, d.dtype()), &[x], |_| FillBackward { name })
}

/// d fill(x)/dx = 0
pub struct FillBackward {
    name: &'static str,
}
impl Backward for FillBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(zeros_like(grad0(grads)?))])
    }
}

/// `src` broadcast to `x`'s shape and converted to its dtype (what `self.copy_(src)` writes).
pub fn copied(x: &Tensor, src: &Tensor) -> Result<Tensor> {
    let values = {
        let _off = crate::GradModeGuard::new(false);
        let shape = x.shape();
        let expanded = if src.shape() == shape { src.clone() } else { expand_to(src, &shape)? };
        contiguous(&to_dtype(&expanded, x.dtype())?)?.detach()
    };
    record(values, &[x, src], |_| CopyFromBackward)
}

/// d copy_(x, src)/dx = 0; d copy_(x, src)/dsrc = 1 (summed to src's shape and dtype by the engine)
pub struct CopyFromBackward;
impl Backward for CopyFromBackward {
    fn name(&self) -> &'static str {
        "torch::autograd::CopyBackwards"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let gx = if ctx.needs(0) { Some(zeros_like(g)) } else { None };
        let gsrc = if ctx.needs(1) { Some(g.clone()) } else { None };
        Ok(smallvec![gx, gsrc])
    }
}
