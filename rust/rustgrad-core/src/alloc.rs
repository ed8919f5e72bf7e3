//! Note [Fallible allocation]: tensor buffers are reserved with `try_reserve_exact` (or the
//! allocator's own null return), never with an allocation that aborts the process on failure.
//!
//! Kernels return plain values, so a failed allocation leaves them the way Rust's own capacity
//! overflow does: by unwinding, with an [`AllocFailure`] payload that says how many bytes were
//! asked for. The binding's panic net (`errors::net`) turns that payload into PyTorch's
//! `RuntimeError` ("DefaultCPUAllocator: can't allocate memory: you tried to allocate N
//! bytes..."). Nothing has been written anywhere when it unwinds: every kernel allocates its
//! output before it writes, and in-place kernels compute into a fresh buffer first.
//!
//! Sizes are checked before that, where shapes are made (`shape::checked_numel`,
//! `shape::storage_numel`): an overflowing size is an ordinary error, not an allocation.

use crate::dtype::Element;
use std::sync::OnceLock;

/// The most bytes one buffer may take: the machine's memory plus swap, read once from
/// `/proc/meminfo` (no limit where it cannot be read).
///
/// Linux's default overcommit heuristic refuses a single `malloc` larger than that, which is
/// how PyTorch's allocator fails; mimalloc reserves huge blocks without counting them against
/// memory, so the same request would succeed here and the process would be killed when the
/// pages are touched. Checking the size first gives PyTorch's error instead.
fn max_buffer_bytes() -> u128 {
    static LIMIT: OnceLock<u128> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let Ok(info) = std::fs::read_to_string("/proc/meminfo") else { return u128::MAX };
        let field = |name: &str| -> Option<u128> {
            let line = info.lines().find(|l| l.starts_with(name))?;
            line.split_whitespace().nth(1)?.parse::<u128>().ok().map(|kib| kib * 1024)
        };
        match (field("MemTotal:"), field("SwapTotal:")) {
            (Some(mem), swap) => mem + swap.unwrap_or(0),
            _ => u128::MAX,
        }
    })
}

/// Unwinds with an [`AllocFailure`] unless `n` elements of `T` may be asked for.
#[inline]
fn check<T>(n: usize) {
    if (n as u128) * (std::mem::size_of::<T>() as u128) > max_buffer_bytes() {
        fail::<T>(n);
    }
}

/// The payload of the unwind that reports a failed allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocFailure {
    /// Bytes requested (exact, even when they overflow `usize`).
    pub bytes: u128,
}

impl AllocFailure {
    /// PyTorch's message for a failed CPU allocation.
    pub fn message(&self) -> String {
        format!(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate {} bytes. Error code 12 (Cannot allocate memory)",
            self.bytes
        )
    }
}

/// Unwinds with an [`AllocFailure`] for `n` elements of `T`.
#[cold]
#[inline(never)]
fn fail<T>(n: usize) -> ! {
    let bytes = n as u128 * std::mem::size_of::<T>().max(1) as u128;
    std::panic::panic_any(AllocFailure { bytes })
}

/// An empty vector with room for exactly `n` elements.
#[inline]
pub fn vec_with_capacity<T>(n: usize) -> Vec<T> {
    check::<T>(n);
    let mut v = Vec::new();
    if v.try_reserve_exact(n).is_err() {
        fail::<T>(n);
    }
    v
}

/// `n` copies of `value`.
#[inline]
pub fn vec_filled<T: Clone>(value: T, n: usize) -> Vec<T> {
    let mut v = vec_with_capacity(n);
    v.resize(n, value);
    v
}

/// `n` zeros, from zeroed pages (as `vec![0; n]`, which cannot report failure).
pub fn vec_zeroed<T: Element>(n: usize) -> Vec<T> {
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return vec_filled(T::zero(), n);
    }
    check::<T>(n);
    let Ok(layout) = std::alloc::Layout::array::<T>(n) else { fail::<T>(n) };
    // SAFETY: the layout has a non-zero size (checked above).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) } as *mut T;
    if ptr.is_null() {
        fail::<T>(n);
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `n` elements of
    // `T`, and all-zero bytes are a valid value of every element type (f32, f64, i64, bool).
    unsafe { Vec::from_raw_parts(ptr, n, n) }
}

/// Collects an iterator of exactly `n` items into a vector reserved fallibly.
#[inline]
pub fn collect_exact<T>(n: usize, items: impl Iterator<Item = T>) -> Vec<T> {
    let mut v = vec_with_capacity(n);
    v.extend(items);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure_of(f: impl FnOnce() + std::panic::UnwindSafe) -> AllocFailure {
        let payload = std::panic::catch_unwind(f).expect_err("the allocation must fail");
        *payload.downcast_ref::<AllocFailure>().expect("an AllocFailure payload")
    }

    #[test]
    fn impossible_allocations_unwind_with_the_bytes_asked_for() {
        // 2^60 f64 = 2^63 bytes: more than any address space.
        assert!(max_buffer_bytes() > 1 << 20);
        assert_eq!(failure_of(|| drop(vec_zeroed::<f64>(1 << 60))).bytes, 1 << 63);
        assert_eq!(failure_of(|| drop(vec_with_capacity::<f32>(1 << 61))).bytes, 1 << 63);
        // Past usize: the product is still exact.
        assert_eq!(failure_of(|| drop(vec_filled(0i64, usize::MAX))).bytes, usize::MAX as u128 * 8);
        let msg = AllocFailure { bytes: 16 }.message();
        assert!(msg.contains("you tried to allocate 16 bytes"), "{msg}");
    }

    #[test]
    fn possible_allocations_hold_their_values() {
        assert_eq!(vec_zeroed::<f64>(3), vec![0.0; 3]);
        assert_eq!(vec_filled(true, 2), vec![true, true]);
        assert_eq!(collect_exact(3, 1..4i64), vec![1, 2, 3]);
        assert!(vec_zeroed::<f32>(0).is_empty());
    }
}
