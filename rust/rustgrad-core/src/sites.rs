//! Where in the user's program something happened, as `file:line`: the forward call that
//! saved tensors for backward, and the last in-place write to a tensor. The in-place error
//! then says both, without re-running under anomaly mode.
//!
//! The host language knows its call stack, so the binding installs the capture function.
//!
//! In-place writes are rare, so their site is always kept. Nodes are created by every op, and
//! reading the caller's frame costs about a fifth of a small op, so node sites are kept only
//! when asked for ([`set_record_node_sites`], or anomaly mode).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static RECORD_NODE_SITES: AtomicBool = AtomicBool::new(false);

/// Turns recording of node sites on or off; returns the previous setting.
pub fn set_record_node_sites(enabled: bool) -> bool {
    RECORD_NODE_SITES.swap(enabled, Ordering::Relaxed)
}

/// The site for a new node that saves tensors, when node sites are recorded.
#[inline]
pub fn capture_for_node() -> Option<Site> {
    if RECORD_NODE_SITES.load(Ordering::Relaxed) || crate::anomaly::is_enabled() {
        capture()
    } else {
        None
    }
}

/// A source location, e.g. `train.py:42`.
pub type Site = Arc<str>;

static HOST: OnceLock<fn() -> Option<Site>> = OnceLock::new();

/// Installs the function that reports the caller's location (the first call wins).
pub fn install(capture: fn() -> Option<Site>) {
    let _ = HOST.set(capture);
}

/// The current location in the user's program, if the host can tell.
#[inline]
pub fn capture() -> Option<Site> {
    HOST.get().and_then(|f| f())
}
