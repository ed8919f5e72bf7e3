//! Splitting one kernel's work across threads, with the calling thread doing its share.
//!
//! Note [The caller works too]: a rayon parallel iterator entered from a thread outside the pool
//! hands all of its work to the pool's workers and puts the caller to sleep until they finish,
//! so a call pays a worker's wake-up and then its own (measured on the 2-core benchmark machine:
//! `x.add_(y)` of 200,000 float32 took 22 us on one thread and 65 us on two). Here the work is
//! cut into numbered parts, in one contiguous block per thread. The caller posts one helper job
//! per extra thread to rayon's pool and starts on its block at once; every thread takes the next
//! unclaimed part of its block, then of the others', until none is left.
//! The caller then waits only for parts a helper has already claimed, and these are running: a
//! helper that wakes late finds nothing to do and returns without touching the caller's data.
//! So a call is never slower than one thread by more than posting the jobs, however long the
//! workers take to wake (and in a process forked without its pool threads, the caller simply
//! does every part itself).
//!
//! Every part is computed the same way whichever thread runs it, and results are combined in
//! part order, so values do not depend on the split.

use smallvec::SmallVec;
use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The state one call shares with its helpers. `body` borrows the caller's stack: it is read
/// only after claiming a part, and the caller does not return before every part is done.
struct Job {
    /// One contiguous block of parts per thread, each with its next unclaimed part and its end.
    blocks: SmallVec<[(AtomicUsize, usize); 4]>,
    done: AtomicUsize,
    body: *const (dyn Fn(usize) + Sync),
    panic: parking_lot::Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `body` points to a `Sync` closure that outlives every dereference (see `Job`).
unsafe impl Send for Job {}
// SAFETY: as above; the other fields are atomics and a mutex.
unsafe impl Sync for Job {}

impl Job {
    /// Runs the parts of block `own` in order, then whatever the other blocks have left; a panic
    /// in a part is kept for the caller. (Thread `t` starting on block `t` keeps each thread
    /// on the same share of a buffer from one call to the next, in its own core's cache, as a
    /// static split does; taking from other blocks covers a helper that is late.)
    fn work(&self, own: usize) {
        let threads = self.blocks.len();
        for b in (own..threads).chain(0..own) {
            let (next, end) = &self.blocks[b];
            loop {
                let part = next.fetch_add(1, Ordering::Relaxed);
                if part >= *end {
                    break;
                }
                // SAFETY: the part was just claimed, so the caller still waits for it (see `Job`).
                let body = unsafe { &*self.body };
                if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(part))) {
                    self.panic.lock().get_or_insert(payload);
                }
                self.done.fetch_add(1, Ordering::Release);
            }
        }
    }
}

/// Runs `body(0)`, ..., `body(parts - 1)`, each exactly once, on the calling thread and up to
/// [`crate::cascade::num_threads`]` - 1` helpers from rayon's pool (see Note [The caller works
/// too]). Inside a pool worker, or with one thread, the parts run in order on this thread.
pub fn for_each_part(parts: usize, body: impl Fn(usize) + Sync) {
    let helpers = crate::cascade::num_threads().saturating_sub(1).min(parts.saturating_sub(1));
    if helpers == 0 || rayon::current_thread_index().is_some() {
        (0..parts).for_each(body);
        return;
    }
    let body: &(dyn Fn(usize) + Sync) = &body;
    // SAFETY: only the lifetime is erased; see `Job` for why no use outlives `body`.
    let body: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(body) };
    let threads = helpers + 1;
    let start = |t: usize| parts * t / threads;
    let job = Arc::new(Job {
        blocks: (0..threads).map(|t| (AtomicUsize::new(start(t)), start(t + 1))).collect(),
        done: AtomicUsize::new(0),
        body,
        panic: parking_lot::Mutex::new(None),
    });
    for helper in 1..threads {
        let job = job.clone();
        crate::cascade::spawn_in_pool(move || job.work(helper));
    }
    job.work(0);
    // Every part is claimed; wait for the ones still running on helpers.
    let mut spins = 0u32;
    while job.done.load(Ordering::Acquire) < parts {
        if spins < 1 << 12 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    let panicked = job.panic.lock().take();
    if let Some(payload) = panicked {
        std::panic::resume_unwind(payload);
    }
}

/// `f(start, chunk)` for consecutive chunks of `dst` of `chunk_len` elements (the last may be
/// shorter), `start` being the chunk's first index, split as [`for_each_part`] splits.
pub fn for_each_chunk_mut<U: Send>(dst: &mut [U], chunk_len: usize, f: impl Fn(usize, &mut [U]) + Sync) {
    let chunk_len = chunk_len.max(1);
    let len = dst.len();
    let base = dst.as_mut_ptr() as usize;
    for_each_part(len.div_ceil(chunk_len), |part| {
        let start = part * chunk_len;
        let count = chunk_len.min(len - start);
        // SAFETY: each part is claimed once, so the chunks handed out are disjoint pieces of
        // `dst`, which stays borrowed until every part is done.
        let chunk = unsafe { std::slice::from_raw_parts_mut((base as *mut U).add(start), count) };
        f(start, chunk)
    });
}

/// `[f(0), ..., f(parts - 1)]`, computed as [`for_each_part`] splits, in part order.
pub fn map_parts<R: Send>(parts: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let mut out: Vec<std::mem::MaybeUninit<R>> = Vec::with_capacity(parts);
    // SAFETY: `MaybeUninit` needs no initialisation.
    unsafe { out.set_len(parts) };
    for_each_chunk_mut(&mut out, 1, |part, slot| {
        slot[0].write(f(part));
    });
    // SAFETY: every slot was written above (a panic would have unwound before this point,
    // leaking the written values, never reading unwritten ones).
    out.into_iter().map(|slot| unsafe { slot.assume_init() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_and_results_keep_part_order() {
        for parts in [0, 1, 2, 3, 17, 1000] {
            let seen: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            for_each_part(parts, |p| {
                seen[p].fetch_add(1, Ordering::Relaxed);
            });
            assert!(seen.iter().all(|s| s.load(Ordering::Relaxed) == 1), "parts = {parts}");
            assert_eq!(map_parts(parts, |p| p * p), (0..parts).map(|p| p * p).collect::<Vec<_>>());
        }
    }

    #[test]
    fn chunks_tile_the_output() {
        let mut v = vec![0usize; 10_007];
        for_each_chunk_mut(&mut v, 64, |start, chunk| {
            chunk.iter_mut().enumerate().for_each(|(i, x)| *x = start + i);
        });
        assert!(v.iter().enumerate().all(|(i, &x)| i == x));
    }

    #[test]
    fn a_panicking_part_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| {
            for_each_part(64, |p| {
                if p == 5 {
                    std::panic::panic_any("part five");
                }
            })
        });
        assert_eq!(caught.err().and_then(|payload| payload.downcast_ref::<&str>().copied()), Some("part five"));
    }
}
