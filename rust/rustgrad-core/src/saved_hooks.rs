//! Saved-tensor hooks (`torch.autograd.graph.saved_tensors_hooks`): while a pair of hooks is
//! active on a thread, every tensor an op saves for its backward is handed to the pack hook,
//! and the node keeps what the hook returns instead of the tensor. Backward gets the tensor
//! back from the unpack hook. Checkpointing (drop now, recompute later) and offloading
//! (`save_on_cpu`) are built on this.
//!
//! The hooks are per thread, like grad mode. A process-wide count of threads with hooks keeps
//! the usual case (no hooks anywhere) to one relaxed atomic load per saved tensor.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A pack hook: turns a tensor being saved into what the node keeps instead.
pub trait SavedTensorHooks: Send + Sync {
    /// Packs `tensor` (called with grad mode off).
    fn pack(&self, tensor: &Tensor) -> Result<Box<dyn PackedTensor>>;
}

/// What a pack hook returned, kept by a node until its backward asks for the tensor again.
pub trait PackedTensor: Send + Sync {
    /// The tensor back, from the unpack hook.
    fn unpack(&self) -> Result<Tensor>;
    /// The address of a foreign object this value keeps alive (0 if none), for collectors.
    fn owned(&self) -> usize {
        0
    }
}

/// Threads that have hooks pushed right now.
static THREADS_WITH_HOOKS: AtomicUsize = AtomicUsize::new(0);

#[derive(Default)]
struct ThreadHooks {
    /// The pushed hooks; the last one is in force.
    stack: Vec<Arc<dyn SavedTensorHooks>>,
    /// Set by `disable_saved_tensors_hooks`: the error message for pushing hooks.
    disabled: Option<String>,
    /// A pack hook's error, raised by the op that saved the tensor once its node is made.
    pending: Option<Error>,
}

thread_local! {
    static HOOKS: RefCell<ThreadHooks> = RefCell::new(ThreadHooks::default());
}

/// Makes `hooks` the ones in force on this thread, until [`pop`].
pub fn push(hooks: Arc<dyn SavedTensorHooks>) -> Result<()> {
    HOOKS.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(msg) = &h.disabled {
            return Err(Error::runtime(msg.clone()));
        }
        if h.stack.is_empty() {
            THREADS_WITH_HOOKS.fetch_add(1, Ordering::Relaxed);
        }
        h.stack.push(hooks);
        Ok(())
    })
}

/// Removes the hooks pushed last on this thread.
pub fn pop() {
    HOOKS.with(|h| {
        let mut h = h.borrow_mut();
        if h.stack.pop().is_some() && h.stack.is_empty() {
            THREADS_WITH_HOOKS.fetch_sub(1, Ordering::Relaxed);
        }
    })
}

/// Refuses hooks on this thread from now on, with `message` as the error; returns the state to
/// give back to [`restore_disabled`]. An error if hooks are in force already.
pub fn disable(message: String) -> Result<Option<String>> {
    HOOKS.with(|h| {
        let mut h = h.borrow_mut();
        if !h.stack.is_empty() {
            return Err(Error::runtime(message));
        }
        Ok(h.disabled.replace(message))
    })
}

/// Undoes [`disable`].
pub fn restore_disabled(previous: Option<String>) {
    HOOKS.with(|h| h.borrow_mut().disabled = previous)
}

/// Whether hooks are disabled on this thread, and why.
pub fn disabled_message() -> Option<String> {
    HOOKS.with(|h| h.borrow().disabled.clone())
}

/// The hooks in force on this thread, if any.
#[inline]
pub fn current() -> Option<Arc<dyn SavedTensorHooks>> {
    if THREADS_WITH_HOOKS.load(Ordering::Relaxed) == 0 {
        return None;
    }
    HOOKS.with(|h| h.borrow().stack.last().cloned())
}

/// Keeps a pack hook's error until the op that saved the tensor can return it.
pub(crate) fn set_pending(err: Error) {
    HOOKS.with(|h| {
        let mut h = h.borrow_mut();
        if h.pending.is_none() {
            h.pending = Some(err);
        }
    })
}

/// A pack hook's error from the op being recorded, if any.
#[inline]
pub fn take_pending() -> Result<()> {
    if THREADS_WITH_HOOKS.load(Ordering::Relaxed) == 0 {
        return Ok(());
    }
    match HOOKS.with(|h| h.borrow_mut().pending.take()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Doubling;
    struct Kept(Tensor);
    impl PackedTensor for Kept {
        fn unpack(&self) -> Result<Tensor> {
            Ok(self.0.clone())
        }
    }
    impl SavedTensorHooks for Doubling {
        fn pack(&self, tensor: &Tensor) -> Result<Box<dyn PackedTensor>> {
            // What backward sees is twice the saved value: d(x*y)/dx = 2y under this hook.
            let doubled = crate::ops::arith::mul_scalar(tensor, 2.0)?;
            Ok(Box::new(Kept(doubled)))
        }
    }

    #[test]
    fn backward_uses_what_the_unpack_hook_gives() {
        let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
        x.set_requires_grad(true).unwrap();
        let y = Tensor::from_vec(vec![3.0f64, 4.0], &[2]).unwrap();
        push(Arc::new(Doubling)).unwrap();
        let z = crate::ops::arith::mul(&x, &y).unwrap();
        pop();
        assert!(current().is_none());
        let loss = crate::ops::reduce::sum(&z, None, false, None).unwrap();
        crate::engine::backward(&[loss], &[], false, false, None).unwrap();
        assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![6.0, 8.0]);
    }

    #[test]
    fn disabled_hooks_refuse_pushing() {
        let previous = disable("no hooks here".into()).unwrap();
        let err = push(Arc::new(Doubling)).unwrap_err();
        assert!(err.to_string().contains("no hooks here"));
        restore_disabled(previous);
        push(Arc::new(Doubling)).unwrap();
        assert!(disable("late".into()).is_err());
        pop();
    }
}
