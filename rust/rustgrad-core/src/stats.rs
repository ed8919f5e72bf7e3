//! Process-wide counts (live graph nodes, saved bytes) kept without contended atomics.
//!
//! Every thread owns one set of counters that only it writes, with plain loads and stores
//! (no read-modify-write, which costs as much as the rest of a tiny op). Reading sums the
//! sets of every living thread plus what threads that ended left behind. A count may go
//! negative on one thread (a node created on one thread and freed on another); the sum is
//! exact.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

/// What is counted.
#[derive(Clone, Copy)]
pub(crate) enum Stat {
    LiveNodes = 0,
    SavedBytes = 1,
}

const STATS: usize = 2;

type Counts = [AtomicIsize; STATS];

/// The counters of living threads, and the totals of threads that ended.
static REGISTRY: Mutex<(Vec<Arc<Counts>>, [isize; STATS])> = Mutex::new((Vec::new(), [0; STATS]));

/// One thread's counters, registered while the thread lives (kept in the graph's thread-local,
/// so that making a node looks up one thread-local, not two).
pub(crate) struct Counters(Arc<Counts>);

impl Counters {
    /// A new thread's counters, registered so that [`total`] sums them.
    pub(crate) fn register() -> Counters {
        let counts: Arc<Counts> = Arc::new(Default::default());
        REGISTRY.lock().0.push(counts.clone());
        Counters(counts)
    }

    /// Adds `delta` to this thread's count of `stat` (only this thread writes it).
    #[inline]
    pub(crate) fn add(&self, stat: Stat, delta: isize) {
        let c = &self.0[stat as usize];
        c.store(c.load(Ordering::Relaxed) + delta, Ordering::Relaxed);
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        let mut registry = REGISTRY.lock();
        for (retired, c) in registry.1.iter_mut().zip(self.0.iter()) {
            *retired += c.load(Ordering::Relaxed);
        }
        registry.0.retain(|c| !Arc::ptr_eq(c, &self.0));
    }
}

/// Adds `delta` to this thread's count of `stat`.
#[inline]
pub(crate) fn add(stat: Stat, delta: isize) {
    if !crate::graph::count_on_this_thread(stat, delta) {
        retire(stat, delta);
    }
}

/// Counts `delta` of `stat` with the threads that ended (for a thread that is ending).
pub(crate) fn retire(stat: Stat, delta: isize) {
    REGISTRY.lock().1[stat as usize] += delta;
}

/// The sum of `stat` over all threads.
pub(crate) fn total(stat: Stat) -> isize {
    let registry = REGISTRY.lock();
    registry.1[stat as usize] + registry.0.iter().map(|c| c[stat as usize].load(Ordering::Relaxed)).sum::<isize>()
}
