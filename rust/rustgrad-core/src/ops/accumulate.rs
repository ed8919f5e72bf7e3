//! AccumulateGrad: the sink at every leaf that requires grad.

use super::arith::add;
use super::view::copy_of;
use crate::autograd::{grad0, Backward, BackwardCtx, Grads};
use crate::error::Result;
use crate::grad_mode::is_grad_enabled;
use crate::graph::{InputMeta, Metas, Node, NodeRef};
use crate::kernels;
use crate::tensor::Tensor;
use smallvec::SmallVec;
use std::sync::Arc;

/// Adds incoming gradients into `leaf.grad`. Holds the leaf; the leaf holds it only weakly.
pub struct AccumulateGrad {
    /// The leaf whose `.grad` receives the gradients.
    pub leaf: Tensor,
}

/// Creates the accumulator node of a leaf.
pub fn new_accumulator(leaf: &Tensor, meta: InputMeta) -> NodeRef {
    NodeRef::new(Node::with_edges(
        AccumulateGrad { leaf: leaf.clone() }.into(),
        SmallVec::new(),
        Metas::new([], [&meta]),
    ))
}

impl Backward for AccumulateGrad {
    fn name(&self) -> &'static str {
        "torch::autograd::AccumulateGrad"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        // A graph recorded before `leaf.detach_()` / `leaf.requires_grad_(False)` still reaches
        // this node: the leaf no longer wants a gradient (PyTorch skips it too).
        if !self.leaf.requires_grad() {
            return Ok(SmallVec::new());
        }
        accumulate(&self.leaf, grad0(grads)?.clone())?;
        Ok(SmallVec::new())
    }
}

static ACCUMULATE_STRIPES: [parking_lot::Mutex<()>; 64] = [const { parking_lot::Mutex::new(()) }; 64];

/// Whether `t` can become `.grad` as is: PyTorch's rule, no one else holds this handle and its
/// layout is the one `.grad` gets (contiguous). Its storage may be shared (a view of the
/// `gradient` passed to `backward`): later accumulations then write through it, as in PyTorch.
/// A zero stride, even on a dim of size 1, marks an expanded view (`sum`'s backward of a 0-d
/// gradient): PyTorch copies those.
pub(crate) fn can_steal(t: &Tensor) -> bool {
    Arc::strong_count(&t.0) == 1 && {
        let g = t.lock();
        g.data.is_contiguous() && g.data.strides.iter().all(|&s| s != 0)
    }
}

/// `leaf.grad += new_grad`, as PyTorch's AccumulateGrad does it: with grad mode off the first
/// gradient is stored (stolen when no one else holds it, else copied) and later ones are added
/// in place; with grad mode on (`create_graph`) everything is out of place and recorded.
pub fn accumulate(leaf: &Tensor, new_grad: Tensor) -> Result<()> {
    // Several threads' backward passes may reach one leaf at once: serialise read-add-write
    // per leaf, or contributions could be lost.
    let stripe = (Arc::as_ptr(&leaf.0) as usize >> 4) % ACCUMULATE_STRIPES.len();
    let _serial = ACCUMULATE_STRIPES[stripe].lock();
    let current = leaf.grad();
    let grad_mode = is_grad_enabled();
    let updated = match current {
        None => {
            if grad_mode {
                copy_of(&new_grad)?
            } else if can_steal(&new_grad) {
                new_grad.detach()
            } else {
                Tensor::from_data(kernels::contiguous_copy(&new_grad.data()))
            }
        }
        Some(cur) => {
            if grad_mode {
                add(&cur, &new_grad)?
            } else {
                // `.grad += new` is an in-place update: refused on an inference tensor outside
                // inference mode (PyTorch raises too, after writing; here it stays unchanged).
                if cur.is_inference() && !crate::grad_mode::is_inference_mode_enabled() {
                    return Err(crate::error::Error::InferenceInplace);
                }
                let cd = cur.data();
                // `.grad += new` straight into the existing buffer when the layouts allow it.
                if cd.dtype() == new_grad.dtype()
                    && kernels::binary_into(&cd, &new_grad.data(), kernels::Binary::Add, 1.0)
                {
                    leaf.lock().put_grad(Some(cur));
                    return Ok(());
                }
                let sum = kernels::binary(&cd, &new_grad.data(), kernels::Binary::Add, cd.dtype())?;
                if sum.shape == cd.shape {
                    cd.write_from(&sum);
                    cur
                } else {
                    Tensor::from_data(sum)
                }
            }
        }
    };
    leaf.lock().put_grad(Some(updated));
    Ok(())
}
