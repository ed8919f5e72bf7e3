//! The graph arena: backward nodes live in reusable slots, reference-counted by handles.
//!
//! Note [Arena]: slots sit in geometrically growing buckets that never move, so a slot's
//! address is stable and reading it needs no global lock. A slot's 64-bit state packs a
//! generation (high half) and a strong count (low half). A [`NodeRef`] is a strong handle;
//! when the last one goes the node is taken out, the slot's generation is bumped and the slot
//! returns to the free list. A [`WeakNodeRef`] (index + generation) upgrades only while the
//! generation matches and the count is non-zero, so a leaf can point at its `AccumulateGrad`
//! without keeping it alive.
//!
//! Note [Freeing without recursion]: dropping a node drops the handles it holds to the nodes
//! before it, which could free those, and so on down a chain of a million nodes. Instead, a
//! node freed while this thread is already freeing one is queued, and the outermost free
//! drains the queue in a loop: the depth of the Rust stack stays constant.

use crate::ops::BackwardOp;
use crate::shape::Shape;
use crate::tensor::{Tensor, TensorCell};
use crate::DType;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

const BASE_BITS: u32 = 8;
const BASE: usize = 1 << BASE_BITS;
const BUCKETS: usize = 24;
const REFS_MASK: u64 = 0xffff_ffff;

/// A gradient hook: gets the gradient and may return a replacement.
pub type GradHook = Arc<dyn Fn(&Tensor) -> crate::Result<Option<Tensor>> + Send + Sync>;

/// Where a gradient flows: input `input_nr` of `node`.
#[derive(Clone)]
pub struct Edge {
    pub node: NodeRef,
    pub input_nr: u32,
}

/// What the engine checks a gradient against before passing it along an edge.
#[derive(Clone, Debug)]
pub struct InputMeta {
    pub shape: Shape,
    pub dtype: DType,
}

/// One backward function in the graph.
pub struct Node {
    pub op: BackwardOp,
    /// For each forward input: where its gradient goes (`None` if it needs none).
    pub next: SmallVec<[Option<Edge>; 2]>,
    /// For each forward input: the shape and dtype its gradient must have.
    pub input_meta: SmallVec<[InputMeta; 2]>,
    /// For each forward output: its shape and dtype (to create zero gradients).
    pub output_meta: SmallVec<[InputMeta; 1]>,
    /// Creation order; later nodes run first when several are ready.
    pub seq: u64,
    /// Whether saved tensors were freed by a backward without `retain_graph`.
    pub released: bool,
    /// Hooks and retained gradients: rare, so kept out of line (allocated on first use), which
    /// keeps every node small.
    pub hooks: Option<Box<NodeHooks>>,
    /// The traceback of the forward call that created the node (anomaly mode), for error reports.
    pub trace: Option<Arc<str>>,
    /// Where the forward call that created the node happened, kept for nodes that save tensors.
    pub site: Option<crate::sites::Site>,
}

/// What users attach to a node (see [`Node::hooks`]).
#[derive(Default)]
pub struct NodeHooks {
    /// Hooks registered on this node's outputs through `Tensor.register_hook`: (id, output_nr, hook).
    pub tensor_hooks: Vec<(u64, u32, GradHook)>,
    /// Outputs whose tensors asked for `retain_grad()`.
    pub retained: SmallVec<[(u32, Weak<TensorCell>); 1]>,
    /// `grad_fn.register_prehook`: run with the output gradients before the node.
    pub pre_hooks: Vec<(u64, NodePreHook)>,
    /// `grad_fn.register_hook`: run with input and output gradients after the node.
    pub post_hooks: Vec<(u64, NodePostHook)>,
}

/// A node pre-hook: gets the output gradients, may return replacements.
pub type NodePreHook = Arc<dyn Fn(&[Option<Tensor>]) -> crate::Result<Option<Vec<Option<Tensor>>>> + Send + Sync>;
/// A node post-hook: gets (input gradients, output gradients), may return replacement input gradients.
pub type NodePostHook =
    Arc<dyn Fn(&[Option<Tensor>], &[Option<Tensor>]) -> crate::Result<Option<Vec<Option<Tensor>>>> + Send + Sync>;

impl Node {
    /// A node with no edges yet, created now (its `seq` orders it after existing nodes).
    pub fn new(op: BackwardOp) -> Node {
        let site = if op.saves_tensors() { crate::sites::capture_for_node() } else { None };
        Node {
            site,
            op,
            next: SmallVec::new(),
            input_meta: SmallVec::new(),
            output_meta: SmallVec::new(),
            seq: next_seq(),
            released: false,
            hooks: None,
            trace: crate::anomaly::capture_trace(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.op.name()
    }

    /// The node's hooks, created empty on first use.
    pub fn hooks_mut(&mut self) -> &mut NodeHooks {
        self.hooks.get_or_insert_with(Default::default)
    }
}

struct Slot {
    state: AtomicU64,
    node: Mutex<Option<Node>>,
}

struct Arena {
    buckets: [OnceLock<Box<[Slot]>>; BUCKETS],
    next: AtomicU32,
    free: Mutex<Vec<u32>>,
    live: AtomicUsize,
}

static ARENA: Arena = Arena {
    buckets: [const { OnceLock::new() }; BUCKETS],
    next: AtomicU32::new(0),
    free: Mutex::new(Vec::new()),
    live: AtomicUsize::new(0),
};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Set once any node got a post-hook, so the engine can skip looking for them until then.
static ANY_POST_HOOKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The next sequence number for a new node.
pub fn next_seq() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

#[inline]
fn locate(index: u32) -> (usize, usize) {
    let i = index as usize + BASE;
    let bucket = (usize::BITS - 1 - i.leading_zeros()) as usize - BASE_BITS as usize;
    (bucket, i - (BASE << bucket))
}

#[inline]
fn slot(index: u32) -> &'static Slot {
    let (bucket, offset) = locate(index);
    // The bucket exists: `index` was handed out by `alloc`, which created it first.
    &ARENA.buckets[bucket].get().expect("arena bucket allocated before use")[offset]
}

fn alloc(node: Node) -> u32 {
    let reused = ARENA.free.lock().pop();
    let index = match reused {
        Some(i) => i,
        None => {
            let i = ARENA.next.fetch_add(1, Ordering::Relaxed);
            let (bucket, _) = locate(i);
            ARENA.buckets[bucket].get_or_init(|| {
                (0..(BASE << bucket)).map(|_| Slot { state: AtomicU64::new(0), node: Mutex::new(None) }).collect()
            });
            i
        }
    };
    let s = slot(index);
    *s.node.lock() = Some(node);
    let generation = s.state.load(Ordering::Relaxed) >> 32;
    s.state.store((generation << 32) | 1, Ordering::Release);
    ARENA.live.fetch_add(1, Ordering::Relaxed);
    index
}

thread_local! {
    static FREEING: Cell<bool> = const { Cell::new(false) };
    static PENDING: RefCell<Vec<Node>> = const { RefCell::new(Vec::new()) };
}

fn free(index: u32) {
    let s = slot(index);
    let node = s.node.lock().take();
    let generation = s.state.load(Ordering::Relaxed) >> 32;
    s.state.store(((generation + 1) & REFS_MASK) << 32, Ordering::Release);
    ARENA.free.lock().push(index);
    ARENA.live.fetch_sub(1, Ordering::Relaxed);
    let Some(node) = node else { return };
    // See Note [Freeing without recursion].
    let queued = FREEING
        .try_with(|freeing| {
            if freeing.get() {
                PENDING.with(|p| p.borrow_mut().push(node));
                None
            } else {
                freeing.set(true);
                Some(node)
            }
        })
        .unwrap_or(None);
    if let Some(first) = queued {
        drop(first);
        loop {
            let next = PENDING.with(|p| p.borrow_mut().pop());
            match next {
                Some(n) => drop(n),
                None => break,
            }
        }
        FREEING.with(|f| f.set(false));
    }
}

/// Number of graph nodes currently alive (for leak tests and `graph_stats()`).
pub fn live_nodes() -> usize {
    ARENA.live.load(Ordering::Relaxed)
}

/// The names of the nodes alive right now, with how many of each (for `assert_no_live_graphs`).
pub fn live_node_names() -> Vec<(&'static str, usize)> {
    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let allocated = ARENA.next.load(Ordering::Relaxed);
    for index in 0..allocated {
        let s = slot(index);
        if s.state.load(Ordering::Acquire) & REFS_MASK == 0 {
            continue;
        }
        if let Some(node) = s.node.lock().as_ref() {
            *counts.entry(node.name()).or_default() += 1;
        }
    }
    counts.into_iter().collect()
}

/// A strong handle to a node; the node lives while any handle does.
pub struct NodeRef {
    index: u32,
}

impl NodeRef {
    /// Puts a node into the arena.
    pub fn new(node: Node) -> NodeRef {
        NodeRef { index: alloc(node) }
    }

    /// The node's slot index (stable for the node's lifetime).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Identity: (slot, generation).
    pub fn key(&self) -> (u32, u32) {
        (self.index, (slot(self.index).state.load(Ordering::Relaxed) >> 32) as u32)
    }

    /// Locks the node. Never hold it across user code (hooks) or while locking another node.
    pub fn lock(&self) -> MutexGuard<'_, Option<Node>> {
        slot(self.index).node.lock()
    }

    /// Runs `f` on the locked node.
    pub fn with<R>(&self, f: impl FnOnce(&mut Node) -> R) -> R {
        let mut guard = self.lock();
        f(guard.as_mut().expect("a node with a live handle is never empty"))
    }

    pub fn name(&self) -> &'static str {
        self.with(|n| n.name())
    }

    /// `grad_fn.register_prehook(hook)`; returns the hook's id.
    pub fn add_pre_hook(&self, hook: NodePreHook) -> u64 {
        let id = crate::tensor::next_hook_id();
        self.with(|n| n.hooks_mut().pre_hooks.push((id, hook)));
        id
    }

    /// `grad_fn.register_hook(hook)`; returns the hook's id.
    pub fn add_post_hook(&self, hook: NodePostHook) -> u64 {
        let id = crate::tensor::next_hook_id();
        self.with(|n| n.hooks_mut().post_hooks.push((id, hook)));
        ANY_POST_HOOKS.store(true, Ordering::Relaxed);
        id
    }

    /// Whether the node may have post-hooks (lock-free `false` until any node got one).
    #[inline]
    pub fn has_post_hooks(&self) -> bool {
        ANY_POST_HOOKS.load(Ordering::Relaxed)
            && self.with(|n| n.hooks.as_ref().is_some_and(|h| !h.post_hooks.is_empty()))
    }

    /// Removes a pre- or post-hook by id; false if it was gone.
    pub fn remove_hook(&self, id: u64) -> bool {
        self.with(|n| {
            let Some(h) = n.hooks.as_mut() else { return false };
            let before = h.pre_hooks.len() + h.post_hooks.len();
            h.pre_hooks.retain(|(i, _)| *i != id);
            h.post_hooks.retain(|(i, _)| *i != id);
            h.pre_hooks.len() + h.post_hooks.len() != before
        })
    }

    pub fn downgrade(&self) -> WeakNodeRef {
        WeakNodeRef { index: self.index, generation: (slot(self.index).state.load(Ordering::Relaxed) >> 32) as u32 }
    }

    pub fn ptr_eq(&self, other: &NodeRef) -> bool {
        self.index == other.index
    }
}

impl Clone for NodeRef {
    fn clone(&self) -> Self {
        slot(self.index).state.fetch_add(1, Ordering::Relaxed);
        NodeRef { index: self.index }
    }
}

impl Drop for NodeRef {
    fn drop(&mut self) {
        let prev = slot(self.index).state.fetch_sub(1, Ordering::AcqRel);
        if prev & REFS_MASK == 1 {
            free(self.index);
        }
    }
}

impl std::fmt::Debug for NodeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeRef({})", self.index)
    }
}

/// A handle that does not keep its node alive.
#[derive(Clone, Copy, Debug)]
pub struct WeakNodeRef {
    index: u32,
    generation: u32,
}

impl WeakNodeRef {
    /// A strong handle if the node is still alive.
    pub fn upgrade(&self) -> Option<NodeRef> {
        let s = slot(self.index);
        let mut state = s.state.load(Ordering::Acquire);
        loop {
            if (state >> 32) as u32 != self.generation || state & REFS_MASK == 0 {
                return None;
            }
            match s.state.compare_exchange_weak(state, state + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(NodeRef { index: self.index }),
                Err(actual) => state = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(255), (0, 255));
        assert_eq!(locate(256), (1, 0));
        assert_eq!(locate(256 + 511), (1, 511));
        assert_eq!(locate(256 + 512), (2, 0));
    }
}
