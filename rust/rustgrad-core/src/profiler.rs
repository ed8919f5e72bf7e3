//! The autograd profiler's recorder: timed, nested ranges (ops, backward nodes, user ranges).
//!
//! Note [Profiler cost]: when no profile is running, the only cost on an op's path is one
//! relaxed load of [`STATE`]. While one runs, each range takes the thread's own buffer lock
//! (never contended: other threads only take it when the profile ends) and two clock reads.
//!
//! Every thread records into a buffer of its own, registered once in a process-wide list;
//! [`stop`] takes the finished ranges of every buffer. A range knows the range that was open
//! on its thread when it began (its parent), so nesting does not depend on timestamps.

use parking_lot::Mutex;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// A profile is running.
pub const ON: u32 = 1;
/// Input shapes are recorded.
pub const SHAPES: u32 = 2;
/// Bytes of outputs are recorded.
pub const MEMORY: u32 = 4;
/// Python stacks are recorded (by the binding).
pub const STACK: u32 = 8;

/// What is being recorded: 0 when no profile runs, else [`ON`] and the other flags.
pub static STATE: AtomicU32 = AtomicU32::new(0);
/// The running profile's number (a range begun in one profile is not ended in another).
static SESSION: AtomicU64 = AtomicU64::new(0);
/// Ids of ranges, unique across threads (0: none).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Thread numbers, as PyTorch's profiler gives them (1 for the first thread that records).
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

/// The recording flags (0 when no profile runs): the one load on the op path.
#[inline(always)]
pub fn flags() -> u32 {
    STATE.load(Ordering::Relaxed)
}

/// What a range is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An op called from Python (`aten::add`).
    Op = 0,
    /// `autograd::engine::evaluate_function: MulBackward0`.
    Evaluate = 1,
    /// A backward node's function (`MulBackward0`).
    Backward = 2,
    /// A `record_function` range.
    User = 3,
}

/// One finished range.
#[derive(Clone, Debug)]
pub struct Event {
    /// Unique among the ranges of the process.
    pub id: u64,
    /// The range open on the same thread when this one began (0: none).
    pub parent: u64,
    /// `aten::add`, `MulBackward0`, a `record_function`'s name.
    pub name: Cow<'static, str>,
    /// What it is.
    pub kind: Kind,
    /// The recording thread's number.
    pub thread: u64,
    /// Nanoseconds since the process's profiler epoch.
    pub start_ns: u64,
    /// When it ended (same clock).
    pub end_ns: u64,
    /// Input shapes (`[]` for a non-tensor argument), with [`SHAPES`].
    pub shapes: Vec<Vec<i64>>,
    /// Bytes of the outputs it allocated, with [`MEMORY`].
    pub bytes: i64,
    /// `file(line): function` frames, innermost last, with [`STACK`].
    pub stack: Vec<String>,
}

struct Buffer {
    thread: u64,
    events: Vec<(u64, Event)>,
    /// Indices in `events` of the ranges still open, innermost last.
    open: Vec<usize>,
}

type Shared = Arc<Mutex<Buffer>>;

static BUFFERS: Mutex<Vec<Shared>> = Mutex::new(Vec::new());

thread_local! {
    static LOCAL: OnceCell<Shared> = const { OnceCell::new() };
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the profiler's epoch.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// The wall-clock time (microseconds since the Unix epoch) of the profiler's epoch.
pub fn epoch_unix_us() -> f64 {
    let e = epoch();
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since.as_secs_f64() * 1e6 - e.elapsed().as_secs_f64() * 1e6
}

fn with_buffer<R>(f: impl FnOnce(&mut Buffer) -> R) -> Option<R> {
    LOCAL
        .try_with(|cell| {
            let shared = cell.get_or_init(|| {
                let b = Arc::new(Mutex::new(Buffer {
                    thread: NEXT_THREAD.fetch_add(1, Ordering::Relaxed),
                    events: Vec::new(),
                    open: Vec::new(),
                }));
                BUFFERS.lock().push(b.clone());
                b
            });
            f(&mut shared.lock())
        })
        .ok()
}

/// An open range: ended by [`end`] (or dropped unended by [`Range`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// The profile it was opened in.
    pub session: u64,
    /// Its place in the thread's buffer.
    pub index: usize,
    /// Its id ([`Event::id`]).
    pub id: u64,
}

/// Opens a range named `name` on this thread, if a profile runs.
pub fn begin(name: Cow<'static, str>, kind: Kind, shapes: Vec<Vec<i64>>, stack: Vec<String>) -> Option<Token> {
    if flags() & ON == 0 {
        return None;
    }
    let session = SESSION.load(Ordering::Relaxed);
    with_buffer(|b| {
        let parent = b.open.last().map_or(0, |&i| b.events[i].1.id);
        let index = b.events.len();
        let start_ns = now_ns();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        b.events.push((
            session,
            Event { id, parent, name, kind, thread: b.thread, start_ns, end_ns: 0, shapes, bytes: 0, stack },
        ));
        b.open.push(index);
        Token { session, index, id }
    })
}

/// Closes the range `token` opened (and any still open inside it), `bytes` its outputs' size.
pub fn end(token: Token, bytes: i64) {
    let end_ns = now_ns();
    with_buffer(|b| {
        let Some(pos) = b.open.iter().rposition(|&i| i == token.index) else { return };
        if b.events[token.index].1.id != token.id {
            return;
        }
        b.open.truncate(pos);
        if let Some((session, e)) = b.events.get_mut(token.index) {
            if *session == token.session {
                e.end_ns = end_ns.max(e.start_ns);
                e.bytes = bytes;
            }
        }
    });
}

/// A range closed when dropped (so early returns close it too).
pub struct Range {
    token: Option<Token>,
    bytes: i64,
}

impl Range {
    /// Opens a range named by `name()` if a profile runs (`name` is not called otherwise).
    #[inline]
    pub fn new(kind: Kind, name: impl FnOnce() -> Cow<'static, str>) -> Range {
        let token = if flags() & ON != 0 { begin(name(), kind, Vec::new(), Vec::new()) } else { None };
        Range { token, bytes: 0 }
    }

    /// Whether it records.
    pub fn is_recording(&self) -> bool {
        self.token.is_some()
    }

    /// Sets the bytes recorded when it closes.
    pub fn set_bytes(&mut self, bytes: i64) {
        self.bytes = bytes;
    }
}

impl Drop for Range {
    fn drop(&mut self) {
        if let Some(t) = self.token.take() {
            end(t, self.bytes);
        }
    }
}

/// Starts a profile recording what `flags` says ([`ON`] is added); fails if one runs already.
pub fn start(flags: u32) -> std::result::Result<(), &'static str> {
    epoch();
    let mut buffers = BUFFERS.lock();
    if STATE.load(Ordering::Relaxed) & ON != 0 {
        return Err("Profiler is already enabled on this thread");
    }
    for b in buffers.iter() {
        let mut b = b.lock();
        b.events.clear();
        b.open.clear();
    }
    buffers.retain(|b| Arc::strong_count(b) > 1);
    SESSION.fetch_add(1, Ordering::Relaxed);
    STATE.store(flags | ON, Ordering::SeqCst);
    Ok(())
}

/// Ends the profile and returns its finished ranges, by start time.
pub fn stop() -> Vec<Event> {
    let buffers = BUFFERS.lock();
    STATE.store(0, Ordering::SeqCst);
    let session = SESSION.load(Ordering::Relaxed);
    let mut out = Vec::new();
    for b in buffers.iter() {
        let mut b = b.lock();
        out.extend(b.events.drain(..).filter(|(s, e)| *s == session && e.end_ns != 0).map(|(_, e)| e));
        b.open.clear();
    }
    out.sort_by_key(|e| (e.start_ns, e.id));
    out
}

/// Total bytes of a set of tensors (the memory column of a backward node).
pub fn bytes_of<'a>(tensors: impl IntoIterator<Item = &'a crate::Tensor>) -> i64 {
    tensors.into_iter().map(|t| (t.numel() * t.dtype().size()) as i64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn ranges_nest_and_only_record_while_on() {
        assert!(Range::new(Kind::User, || Cow::Borrowed("off")).token.is_none());
        start(0).unwrap();
        {
            let _outer = Range::new(Kind::User, || Cow::Borrowed("outer"));
            let _inner = Range::new(Kind::Op, || Cow::Borrowed("aten::add"));
        }
        // Other tests may run ops on their threads meanwhile: only this test's ranges count.
        let events: Vec<Event> = stop().into_iter().filter(|e| e.name == "outer" || e.name == "aten::add").collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].name, "outer");
        assert_eq!(events[1].parent, events[0].id);
        assert!(events[0].start_ns <= events[1].start_ns && events[1].end_ns <= events[0].end_ns);
    }
}
