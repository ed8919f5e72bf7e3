//! Grad mode: a per-thread flag, like PyTorch's `GradMode` (c10/core/GradMode.h).

use std::cell::Cell;

thread_local! {
    /// This thread's modes, [`GRAD`] and [`INFERENCE`], in one cell: whether an op records is
    /// one thread-local read.
    static MODES: Cell<u8> = const { Cell::new(GRAD) };
}

/// Bit of [`MODES`]: grad mode is on.
const GRAD: u8 = 1;
/// Bit of [`MODES`]: inference mode is on.
const INFERENCE: u8 = 2;

/// Sets `bit` of this thread's modes to `on`; returns whether it was on.
#[inline]
fn set_mode(bit: u8, on: bool) -> bool {
    MODES.with(|m| {
        let before = m.get();
        m.set(if on { before | bit } else { before & !bit });
        before & bit != 0
    })
}

/// Whether this thread is in inference mode (tensors created now are inference tensors).
#[inline]
pub fn is_inference_mode_enabled() -> bool {
    MODES.with(|m| m.get() & INFERENCE != 0)
}

/// Whether ops on this thread record a graph: grad mode on and not in inference mode.
#[inline]
pub fn is_recording() -> bool {
    MODES.with(|m| m.get() & (GRAD | INFERENCE) == GRAD)
}

/// Sets this thread's inference mode and returns the previous one (grad mode is set apart).
pub fn set_inference_mode(enabled: bool) -> bool {
    set_mode(INFERENCE, enabled)
}

/// Whether operations on this thread record a graph.
#[inline]
pub fn is_grad_enabled() -> bool {
    MODES.with(|m| m.get() & GRAD != 0)
}

/// Sets this thread's grad mode and returns the previous one.
#[inline]
pub fn set_grad_enabled(enabled: bool) -> bool {
    set_mode(GRAD, enabled)
}

/// Sets grad mode for a scope and restores the previous mode when dropped (also on unwind).
///
/// ```
/// use rustgrad_core::{GradModeGuard, Tensor};
/// # fn main() -> rustgrad_core::Result<()> {
/// let w = Tensor::from_vec(vec![1.0f32], &[1])?;
/// w.set_requires_grad(true)?;
/// {
///     let _no_grad = GradModeGuard::new(false); // `with torch.no_grad():`
///     assert!(!(&w * 2.0)?.requires_grad());
/// }
/// assert!((&w * 2.0)?.requires_grad());
/// # Ok(())
/// # }
/// ```
pub struct GradModeGuard {
    previous: bool,
}

impl GradModeGuard {
    /// Sets grad mode to `enabled` until the guard is dropped.
    pub fn new(enabled: bool) -> Self {
        GradModeGuard { previous: set_grad_enabled(enabled) }
    }
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        set_grad_enabled(self.previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_restores_and_threads_are_independent() {
        assert!(is_grad_enabled());
        {
            let _g = GradModeGuard::new(false);
            assert!(!is_grad_enabled());
            let other = std::thread::spawn(is_grad_enabled).join().unwrap();
            assert!(other, "another thread keeps its own mode");
        }
        assert!(is_grad_enabled());
    }

    #[test]
    fn grad_and_inference_modes_are_set_apart() {
        assert!(is_recording() && !is_inference_mode_enabled());
        assert!(!set_inference_mode(true));
        assert!(is_grad_enabled() && is_inference_mode_enabled() && !is_recording());
        assert!(set_grad_enabled(false));
        assert!(set_inference_mode(false));
        assert!(!is_grad_enabled() && !is_inference_mode_enabled() && !is_recording());
        assert!(!set_grad_enabled(true));
        assert!(is_recording());
    }
}
