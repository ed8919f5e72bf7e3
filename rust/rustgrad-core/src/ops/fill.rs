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
    record(full(&d.shape, value, d.dtype()), &[x], |_| FillBackward { name: "FillBackward2" })
}

/// `self` filled with zeros (what `self.zero_()` writes).
pub fn zeroed(x: &Tensor) -> Result<Tensor> {
    let d = x.data();
    record(full(&d.shape, 0.0, d.dtype()), &[x], |_| FillBackward { name: "ZeroBackward0" })
}

/// What an in-place random fill writes (`values`, drawn by the caller): recorded so that no
/// gradient flows to the old values (`UniformBackward0`, `NormalBackward0`, `BernoulliBackward2`).
pub fn random_filled(x: &Tensor, values: Tensor, name: &'static str) -> Result<Tensor> {
    record(values, &[x], |_| FillBackward { name })
}

/// `self.fill_(value)` with a 0-d tensor `value`, which gets the summed gradient (`FillBackward3`).
pub fn filled_with_tensor(x: &Tensor, value: &Tensor) -> Result<Tensor> {
    if value.ndim() != 0 {
        return Err(crate::error::Error::runtime(format!(
            "fill_ only supports 0-dimension value tensor but got tensor with {} dimensions.",
            value.ndim()
        )));
    }
    copied_named(x, value, "FillBackward3")
}

/// What `self[key] = value` writes into the (whole-tensor) view: a 0-d tensor is a fill of a
/// bigger target (`FillBackward3`), anything else a copy (`CopyBackwards`).
pub fn assigned(x: &Tensor, value: &Tensor) -> Result<Tensor> {
    let name = if value.ndim() == 0 && x.ndim() != 0 { "FillBackward3" } else { "torch::autograd::CopyBackwards" };
    copied_named(x, value, name)
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
    copied_named(x, src, "torch::autograd::CopyBackwards")
}

fn copied_named(x: &Tensor, src: &Tensor, name: &'static str) -> Result<Tensor> {
    let values = {
        let _off = crate::GradModeGuard::new(false);
        let shape = x.shape();
        let expanded = if src.shape() == shape { src.clone() } else { expand_to(src, &shape)? };
        contiguous(&to_dtype(&expanded, x.dtype())?)?.detach()
    };
    record(values, &[x, src], |_| CopyFromBackward { name })
}

/// d copy_(x, src)/dx = 0; d copy_(x, src)/dsrc = 1 (also fill_ with a tensor value) (summed to src's shape and dtype by the engine)
pub struct CopyFromBackward {
    name: &'static str,
}
impl Backward for CopyFromBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let gx = if ctx.needs(0) { Some(zeros_like(g)) } else { None };
        let gsrc = if ctx.needs(1) { Some(g.clone()) } else { None };
        Ok(smallvec![gx, gsrc])
    }
}
