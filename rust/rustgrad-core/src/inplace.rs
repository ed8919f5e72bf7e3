//! In-place ops (`add_`, `mul_`, `-=`, `zero_`, ...): computed out of place, then written back.
//!
//! With grad mode on and a graph involved, the result's `grad_fn` becomes the target's (the
//! target is "rebased" onto the new node, as PyTorch does for non-view tensors), and the
//! formula sees a copy of the target's old values, like PyTorch's `original_self`.

use crate::error::{Error, Result};
use crate::grad_mode::is_grad_enabled;
use crate::kernels;
use crate::shape;
use crate::tensor::Tensor;

/// `target = compute(target)` in place.
pub fn apply_inplace(target: &Tensor, compute: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<()> {
    let recording = is_grad_enabled();
    let (is_leaf, requires_grad) = (target.is_leaf(), target.requires_grad());
    if recording && is_leaf && requires_grad {
        return Err(Error::LeafInplace);
    }
    let source = if recording && requires_grad {
        // Same autograd identity, private copy of the values.
        let copy = Tensor::from_data(kernels::contiguous_copy(&target.data()));
        {
            let t = target.lock();
            let mut c = copy.lock();
            c.grad_fn = t.grad_fn.clone();
            c.output_nr = t.output_nr;
        }
        copy
    } else {
        target.clone()
    };
    let result = compute(&source)?;
    write_result(target, &result)?;
    if recording {
        if let Some(f) = result.grad_fn() {
            let mut t = target.lock();
            t.grad_fn = Some(f);
            t.output_nr = result.output_nr();
        }
    }
    Ok(())
}

/// Copies `result` into `target`'s elements, checking shape and dtype as PyTorch does.
pub fn write_result(target: &Tensor, result: &Tensor) -> Result<()> {
    let td = target.data();
    let rd = result.data();
    if rd.shape != td.shape && !shape::is_expandable_to(&rd.shape, &td.shape) {
        {
            return Err(Error::runtime(format!(
                "output with shape {} doesn't match the broadcast shape {}",
                shape::fmt_shape(&td.shape),
                shape::fmt_shape(&shape::broadcast_shapes(&td.shape, &rd.shape).unwrap_or_else(|_| rd.shape.clone()))
            )));
        }
    }
    let (rt, tt) = (rd.dtype(), td.dtype());
    let can_cast = rt == tt || rt.promote(tt) == tt || (rt.is_float() && tt.is_float());
    if !can_cast {
        return Err(Error::runtime(format!(
            "result type {} can't be cast to the desired output type {}",
            rt.scalar_type_name(),
            tt.scalar_type_name()
        )));
    }
    let values = if rd.shape != td.shape {
        let strides = shape::broadcast_strides(&rd.shape, &rd.strides, &td.shape);
        rd.restrided(td.shape.clone(), strides, rd.offset)
    } else {
        rd
    };
    td.write_from(&values);
    Ok(())
}
