//! CPU autocast (`torch.autocast('cpu')`): the per-thread state and the casts of its op lists.
//!
//! The state is one thread-local cell, like grad mode: `None` when CPU autocast is off, else the
//! lower-precision dtype (bfloat16 by default). Only the entry points of listed ops read it, so
//! every other op pays nothing. The lists are PyTorch's CPU ones, found by experiment:
//! - lower precision ([`cast_lower`]): `mm`, `matmul`, `bmm`, `addmm`, `baddbmm`, `linear`
//!   cast their float32/float16/bfloat16 inputs to the autocast dtype (float64 is left alone);
//! - float32 ([`cast_fp32`]): the losses (`mse_loss`, `l1_loss`, `nll_loss`, `cross_entropy`,
//!   `binary_cross_entropy(_with_logits)`) and `prod` (without `dtype=`) cast float16/bfloat16
//!   inputs to float32.
//!
//! A cast is `x.to(dtype)` (`ToCopyBackward0`, whose backward returns the gradient in `x`'s
//! dtype). As in PyTorch, the cast of a float32 leaf that requires grad (not a view) to the
//! lower-precision dtype is cached while grad mode is on and the cache is enabled, so every use
//! of a weight inside one region shares one `ToCopyBackward0`; the cache is emptied when the
//! outermost region exits ([`clear_cache`]).

use crate::ops::view::to_dtype;
use crate::{DType, Result, Tensor};
use std::cell::{Cell, RefCell};

thread_local! {
    static CPU_DTYPE: Cell<Option<DType>> = const { Cell::new(None) };
    static CACHE_ENABLED: Cell<bool> = const { Cell::new(true) };
    /// (source leaf, its cast): the source is held so its address cannot be reused meanwhile.
    static CACHE: RefCell<Vec<(Tensor, Tensor)>> = const { RefCell::new(Vec::new()) };
}

/// The dtype lower-precision ops cast to on this thread, `None` when CPU autocast is off.
#[inline]
pub fn cpu_dtype() -> Option<DType> {
    CPU_DTYPE.with(|c| c.get())
}

/// Turns CPU autocast on with `dtype` (or off with `None`) for this thread; returns the previous
/// state.
pub fn set_cpu_dtype(dtype: Option<DType>) -> Option<DType> {
    CPU_DTYPE.with(|c| c.replace(dtype))
}

/// Whether casts of leaves are cached on this thread (`torch.is_autocast_cache_enabled()`).
pub fn is_cache_enabled() -> bool {
    CACHE_ENABLED.with(|c| c.get())
}

/// Turns the cast cache on or off for this thread.
pub fn set_cache_enabled(enabled: bool) {
    CACHE_ENABLED.with(|c| c.set(enabled));
}

/// Empties this thread's cast cache (`torch.clear_autocast_cache()`, and the exit of the
/// outermost region).
pub fn clear_cache() {
    // Take the entries out first: dropping tensors may run hooks that read the cache.
    let entries = CACHE.with(|c| std::mem::take(&mut *c.borrow_mut()));
    drop(entries);
}

/// Whether autocast may cast `t`: a float tensor other than float64.
#[inline]
fn eligible(t: &Tensor) -> bool {
    let d = t.dtype();
    d.is_float() && d != DType::F64
}

/// `t` as a lower-precision-list op sees it under CPU autocast to `dtype`.
pub fn cast_lower(t: &Tensor, dtype: DType) -> Result<Tensor> {
    if !eligible(t) || t.dtype() == dtype {
        return Ok(t.clone());
    }
    let cacheable = t.dtype() == DType::F32
        && is_cache_enabled()
        && crate::grad_mode::is_grad_enabled()
        && t.requires_grad()
        && t.is_leaf()
        && t.view_base().is_none();
    if !cacheable {
        return to_dtype(t, dtype);
    }
    let hit =
        CACHE.with(|c| c.borrow().iter().find(|(src, cast)| src.same(t) && cast.dtype() == dtype).map(|e| e.1.clone()));
    if let Some(cast) = hit {
        return Ok(cast);
    }
    let cast = to_dtype(t, dtype)?;
    CACHE.with(|c| c.borrow_mut().push((t.clone(), cast.clone())));
    Ok(cast)
}

/// Casts every tensor of `ts` in place as a lower-precision-list op does, when CPU autocast is
/// on (one thread-local read otherwise).
#[inline]
pub fn lower_all(ts: &mut [&mut Tensor]) -> Result<()> {
    if let Some(dtype) = cpu_dtype() {
        for t in ts.iter_mut() {
            **t = cast_lower(t, dtype)?;
        }
    }
    Ok(())
}

/// `t` as a float32-list op sees it under CPU autocast: float16/bfloat16 become float32.
pub fn cast_fp32(t: &Tensor) -> Result<Tensor> {
    if cpu_dtype().is_none() || !eligible(t) {
        return Ok(t.clone());
    }
    to_dtype(t, DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(v: Vec<f32>, shape: &[usize]) -> Tensor {
        let t = Tensor::from_vec(v, shape).unwrap();
        t.set_requires_grad(true).unwrap();
        t
    }

    #[test]
    fn off_by_default_and_per_thread() {
        assert_eq!(cpu_dtype(), None);
        set_cpu_dtype(Some(DType::BF16));
        assert_eq!(std::thread::spawn(cpu_dtype).join().unwrap(), None);
        assert_eq!(set_cpu_dtype(None), Some(DType::BF16));
    }

    #[test]
    fn casts_leaves_once_and_gradients_come_back_float32() {
        let w = leaf(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        set_cpu_dtype(Some(DType::BF16));
        let (a, b) = (cast_lower(&w, DType::BF16).unwrap(), cast_lower(&w, DType::BF16).unwrap());
        assert!(a.same(&b));
        assert_eq!(a.dtype(), DType::BF16);
        assert_eq!(a.grad_fn().unwrap().name(), "ToCopyBackward0");
        let d = Tensor::from_vec(vec![1.0f64], &[1]).unwrap();
        assert_eq!(cast_lower(&d, DType::BF16).unwrap().dtype(), DType::F64);
        clear_cache();
        assert!(!cast_lower(&w, DType::BF16).unwrap().same(&a));
        set_cache_enabled(false);
        let c = cast_lower(&w, DType::BF16).unwrap();
        assert!(!cast_lower(&w, DType::BF16).unwrap().same(&c));
        set_cache_enabled(true);
        assert_eq!(cast_fp32(&a).unwrap().dtype(), DType::F32);
        set_cpu_dtype(None);
        clear_cache();
        assert_eq!(cast_fp32(&a).unwrap().dtype(), DType::BF16);
    }
}
