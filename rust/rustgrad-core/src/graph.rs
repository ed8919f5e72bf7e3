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
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

const BASE_BITS: u32 = 8;
const BASE: usize = 1 << BASE_BITS;
/// Buckets double from `BASE` slots up to `1 << MAX_BUCKET_BITS`, then stay that size, so the
/// slots allocated beyond those in use are at most one bucket's worth: 4,096 slots, about
/// 600 KB (a graph of 100,000 nodes pays for 102,144 slots, not 131,072 or 114,432).
const MAX_BUCKET_BITS: u32 = 12;
const GROWING: usize = (MAX_BUCKET_BITS - BASE_BITS + 1) as usize;
/// Slots in the growing buckets together.
const GROWING_SLOTS: usize = (BASE << GROWING) - BASE;
/// Room for 2^28 live nodes (tens of gigabytes of graph).
const BUCKETS: usize = GROWING + (1 << (28 - MAX_BUCKET_BITS));
const REFS_MASK: u64 = 0xffff_ffff;

/// A user hook: the function, and what a language binding needs to report it to its garbage
/// collector.
///
/// Note [Hooks and foreign collectors]: a binding's hook owns an object of its language (the
/// Python callable), which may refer back to the tensor the hook sits on
/// (`x.register_hook(lambda g: x * g)`): a cycle through the graph that the language's
/// collector can only break if the wrapper of `x` reports the objects it owns through the
/// graph. `owned` is the address of such an object, opaque to the core (0 when there is none);
/// the binding reads it while it holds the only handle to the tensor or node that holds the
/// hook (see [`NodeRef::is_unique`], [`Tensor::try_lock_unique`]), so reading it needs neither
/// blocking nor allocation.
pub struct Hook<F: ?Sized> {
    /// The address of a Python object the hook owns (0 if none); opaque to the core.
    pub owned: usize,
    /// The hook itself.
    pub f: F,
}

impl<F> Hook<F> {
    /// A hook that owns no foreign object.
    pub fn new(f: F) -> Arc<Hook<F>> {
        Arc::new(Hook { owned: 0, f })
    }

    /// A hook whose function keeps the foreign object at address `owned` alive.
    pub fn owning(owned: usize, f: F) -> Arc<Hook<F>> {
        Arc::new(Hook { owned, f })
    }
}

impl<F: ?Sized> std::ops::Deref for Hook<F> {
    type Target = F;
    fn deref(&self) -> &F {
        &self.f
    }
}

/// Calls `visit` with the address of each foreign object owned by `hooks`, skipping hooks
/// whose `Arc` someone else holds too (a running backward may hold a clone): only what is
/// reachable through the caller's handle alone may be reported (Note [Hooks and foreign
/// collectors]).
pub fn visit_owned<'a, F: ?Sized + 'a, E>(
    hooks: impl IntoIterator<Item = &'a Arc<Hook<F>>>,
    visit: &mut impl FnMut(usize) -> Result<(), E>,
) -> Result<(), E> {
    for h in hooks {
        if h.owned != 0 && Arc::strong_count(h) == 1 {
            visit(h.owned)?;
        }
    }
    Ok(())
}

/// A gradient hook: gets the gradient and may return a replacement.
pub type GradHook = Arc<Hook<dyn Fn(&Tensor) -> crate::Result<Option<Tensor>> + Send + Sync>>;

/// Where a gradient flows: input `input_nr` of `node`.
#[derive(Clone)]
pub struct Edge {
    /// The node that receives the gradient.
    pub node: NodeRef,
    /// Which of the node's inputs it is.
    pub input_nr: u32,
}

/// What the engine checks a gradient against before passing it along an edge.
#[derive(Clone, Debug)]
pub struct InputMeta {
    /// The shape the gradient must have.
    pub shape: Shape,
    /// The dtype the gradient must have.
    pub dtype: DType,
}

/// One backward function in the graph.
pub struct Node {
    /// The backward function and what it saved.
    pub op: BackwardOp,
    /// For each forward input: where its gradient goes (`None` if it needs none).
    pub next: SmallVec<[Option<Edge>; 2]>,
    /// The shape and dtype of each forward input (its gradient must have them) and of each
    /// forward output (to create zero gradients).
    pub metas: Metas,
    /// Hooks, retained gradients and where the node was created: rare, so kept out of line
    /// in one box (allocated on first use), which keeps every node small.
    pub extras: Option<Box<NodeExtras>>,
}

/// The shapes and dtypes of a node's inputs, then of its outputs, packed into one small vector
/// so that most nodes keep them without a heap allocation.
///
/// Each meta starts with a header word: dtype in bits 0-7, number of dims in bits 8-15, how
/// many of the first dims the header holds in bits 16-17, and those dims: one in bits 18-63,
/// or two in bits 18-40 and 41-63. The remaining dims follow, one word each. So a node with two
/// inputs and one output of at most two dims (each below 2^23) takes three words, inline.
#[derive(Default)]
pub struct Metas {
    words: SmallVec<[u64; 3]>,
    inputs: u16,
    outputs: u16,
}

impl Clone for Metas {
    fn clone(&self) -> Metas {
        // `from_slice` copies the words at once; a derived clone would go word by word.
        Metas { words: SmallVec::from_slice(&self.words), inputs: self.inputs, outputs: self.outputs }
    }
}

/// The header word of a meta of `shape` and `dtype`, and how many of its dims it holds.
#[inline]
fn encode_header(shape: &[usize], dtype: DType) -> (u64, usize) {
    let mut header = dtype as u64 | (shape.len() as u64) << 8;
    let inline = match *shape {
        [a, b, ..] if a < TWO_DIM_LIMIT && b < TWO_DIM_LIMIT => {
            header |= (a as u64) << DIMS_SHIFT | (b as u64) << (DIMS_SHIFT + TWO_DIM_BITS);
            2
        }
        [a, ..] if a < ONE_DIM_LIMIT => {
            header |= (a as u64) << DIMS_SHIFT;
            1
        }
        _ => 0,
    };
    (header | (inline as u64) << INLINE_SHIFT, inline)
}

const INLINE_SHIFT: u32 = 16;
const DIMS_SHIFT: u32 = 18;
const ONE_DIM_LIMIT: usize = 1 << (64 - DIMS_SHIFT);
const TWO_DIM_BITS: u32 = 23;
const TWO_DIM_LIMIT: usize = 1 << TWO_DIM_BITS;

/// A meta's header decoded: (dtype code, number of dims, dims held in the header, those dims).
#[inline]
fn decode_header(header: u64) -> (u8, usize, usize, [usize; 2]) {
    let ndim = ((header >> 8) & 0xff) as usize;
    let inline = ((header >> INLINE_SHIFT) & 0b11) as usize;
    let dims = match inline {
        1 => [(header >> DIMS_SHIFT) as usize, 0],
        2 => {
            [((header >> DIMS_SHIFT) as usize) & (TWO_DIM_LIMIT - 1), (header >> (DIMS_SHIFT + TWO_DIM_BITS)) as usize]
        }
        _ => [0, 0],
    };
    ((header & 0xff) as u8, ndim, inline, dims)
}

impl Metas {
    /// The metadata of a node's inputs and outputs.
    pub fn new<'a>(
        inputs: impl IntoIterator<Item = &'a InputMeta>,
        outputs: impl IntoIterator<Item = &'a InputMeta>,
    ) -> Metas {
        let mut m = Metas::default();
        for meta in inputs {
            m.push_input(&meta.shape, meta.dtype);
        }
        for meta in outputs {
            m.push_output(&meta.shape, meta.dtype);
        }
        m
    }

    /// Adds the next input's shape and dtype (before any output's).
    #[inline]
    pub fn push_input(&mut self, shape: &[usize], dtype: DType) {
        debug_assert_eq!(self.outputs, 0, "inputs come before outputs");
        self.push(shape, dtype);
        self.inputs += 1;
    }

    /// Adds the next output's shape and dtype.
    #[inline]
    pub fn push_output(&mut self, shape: &[usize], dtype: DType) {
        self.push(shape, dtype);
        self.outputs += 1;
    }

    fn push(&mut self, shape: &[usize], dtype: DType) {
        let (header, inline) = encode_header(shape, dtype);
        self.words.push(header);
        // Usually nothing is left (at most 2 dims); a plain loop keeps this call-free.
        for &d in &shape[inline..] {
            self.words.push(d as u64);
        }
    }

    /// Where the `k`-th meta's header is.
    #[inline]
    fn header_at(&self, k: usize) -> usize {
        let mut at = 0;
        for _ in 0..k {
            let (_, ndim, inline, _) = decode_header(self.words[at]);
            at += 1 + ndim - inline;
        }
        at
    }

    /// The `k`-th meta (inputs first, then outputs).
    fn get(&self, k: usize) -> InputMeta {
        let at = self.header_at(k);
        let (dtype, ndim, inline, dims) = decode_header(self.words[at]);
        let mut shape = Shape::with_capacity(ndim);
        shape.extend_from_slice(&dims[..inline]);
        shape.extend(self.words[at + 1..at + 1 + ndim - inline].iter().map(|&d| d as usize));
        InputMeta { shape, dtype: DType::from_code(dtype) }
    }

    /// How many forward inputs the node has.
    pub fn num_inputs(&self) -> usize {
        self.inputs as usize
    }

    /// How many forward outputs the node has.
    pub fn num_outputs(&self) -> usize {
        self.outputs as usize
    }

    /// The shape and dtype of forward input `i`.
    pub fn input(&self, i: usize) -> Option<InputMeta> {
        (i < self.num_inputs()).then(|| self.get(i))
    }

    /// The shape and dtype of forward output `i`.
    pub fn output(&self, i: usize) -> Option<InputMeta> {
        (i < self.num_outputs()).then(|| self.get(self.num_inputs() + i))
    }

    /// Whether `t` has exactly input `i`'s shape and dtype (checked without copying either).
    pub fn input_matches(&self, i: usize, t: &Tensor) -> bool {
        if i >= self.num_inputs() {
            return false;
        }
        let at = self.header_at(i);
        let g = t.lock();
        let shape = &g.data.shape;
        // The same header means the same dtype, number of dims and first dims.
        let (header, inline) = encode_header(shape, g.data.dtype());
        header == self.words[at] && shape[inline..].iter().zip(&self.words[at + 1..]).all(|(&d, &w)| d as u64 == w)
    }

    /// Every input's shape and dtype, in order.
    pub fn inputs(&self) -> SmallVec<[InputMeta; 2]> {
        (0..self.num_inputs()).map(|i| self.get(i)).collect()
    }

    /// Every output's shape and dtype, in order.
    pub fn outputs(&self) -> SmallVec<[InputMeta; 1]> {
        (0..self.num_outputs()).map(|i| self.get(self.num_inputs() + i)).collect()
    }
}

/// What few nodes have (see [`Node::extras`]): what users attach, and where it was created.
#[derive(Default)]
pub struct NodeExtras {
    /// Hooks registered on this node's outputs through `Tensor.register_hook`: (id, output_nr, hook).
    pub tensor_hooks: Vec<(u64, u32, GradHook)>,
    /// Outputs whose tensors asked for `retain_grad()`.
    pub retained: SmallVec<[(u32, Weak<TensorCell>); 1]>,
    /// `grad_fn.register_prehook`: run with the output gradients before the node.
    pub pre_hooks: Vec<(u64, NodePreHook)>,
    /// `grad_fn.register_hook`: run with input and output gradients after the node.
    pub post_hooks: Vec<(u64, NodePostHook)>,
    /// The traceback of the forward call (anomaly mode), for error reports.
    pub trace: Option<Arc<str>>,
    /// The forward call's file and line, kept for nodes that save tensors (when site
    /// recording asked for it).
    pub site: Option<crate::sites::Site>,
    /// A foreign object kept with the node (`grad_fn.metadata`, a Python dict), opaque here.
    pub metadata: Option<Arc<Hook<dyn std::any::Any + Send + Sync>>>,
}

/// A node pre-hook: gets the output gradients, may return replacements.
pub type NodePreHook = Arc<Hook<dyn Fn(&[Option<Tensor>]) -> crate::Result<Option<Vec<Option<Tensor>>>> + Send + Sync>>;
/// A node post-hook: gets (input gradients, output gradients), may return replacement input gradients.
pub type NodePostHook =
    Arc<Hook<dyn Fn(&[Option<Tensor>], &[Option<Tensor>]) -> crate::Result<Option<Vec<Option<Tensor>>>> + Send + Sync>>;

impl NodeExtras {
    /// The foreign objects owned by this node's hooks (see [`visit_owned`]).
    pub fn visit_owned<E>(&self, visit: &mut impl FnMut(usize) -> Result<(), E>) -> Result<(), E> {
        visit_owned(self.tensor_hooks.iter().map(|h| &h.2), visit)?;
        visit_owned(self.metadata.iter(), visit)?;
        visit_owned(self.pre_hooks.iter().map(|h| &h.1), visit)?;
        visit_owned(self.post_hooks.iter().map(|h| &h.1), visit)
    }
}

impl Node {
    /// A node whose gradients go along `next`, one edge per forward input.
    pub fn with_edges(op: BackwardOp, next: SmallVec<[Option<Edge>; 2]>, metas: Metas) -> Node {
        Node { next, metas, ..Node::new(op) }
    }

    /// A node with no edges yet. Its creation order is given when it is put into the arena
    /// ([`NodeRef::new`], [`NodeRef::seq`]).
    pub fn new(op: BackwardOp) -> Node {
        let site = if op.saves_tensors() { crate::sites::capture_for_node() } else { None };
        let trace = crate::anomaly::capture_trace();
        let extras =
            (site.is_some() || trace.is_some()).then(|| Box::new(NodeExtras { trace, site, ..Default::default() }));
        Node { op, next: SmallVec::new(), metas: Metas::default(), extras }
    }

    /// The forward call's traceback, if anomaly mode captured it.
    pub fn trace(&self) -> Option<Arc<str>> {
        self.extras.as_ref().and_then(|o| o.trace.clone())
    }

    /// The forward call's file and line, if they were recorded.
    pub fn site(&self) -> Option<crate::sites::Site> {
        self.extras.as_ref().and_then(|o| o.site.clone())
    }

    /// The node's PyTorch name (`MulBackward0`).
    pub fn name(&self) -> &'static str {
        self.op.name()
    }

    /// The node's extras (hooks, retained gradients, creation site), created empty on first use.
    pub fn extras_mut(&mut self) -> &mut NodeExtras {
        ANY_NODE_HOOKS.store(true, Ordering::Relaxed);
        self.extras.get_or_insert_with(Default::default)
    }
}

/// Where a node lives. Its creation order is kept beside it, not in it, so the engine reads it
/// without taking the node's lock (a ready node's priority).
struct Slot {
    state: AtomicU64,
    /// The node's creation order in bits 0-62 (later nodes run first when several are ready);
    /// bit 63 ([`RELEASED`]) is set once a backward without `retain_graph` freed the saved
    /// tensors. Written when the node is put here, and for the flag under the node's lock.
    seq_and_released: AtomicU64,
    node: Mutex<Option<Node>>,
}

struct Arena {
    buckets: [OnceLock<Box<[Slot]>>; BUCKETS],
    next: AtomicU32,
    free: Mutex<Vec<u32>>,
}

static ARENA: Arena =
    Arena { buckets: [const { OnceLock::new() }; BUCKETS], next: AtomicU32::new(0), free: Mutex::new(Vec::new()) };

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Set once any node got hooks or retained gradients, so the engine can skip looking for them
/// until then.
static ANY_NODE_HOOKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether any node may have hooks or retained gradients (lock-free `false` until one did).
#[inline]
pub fn any_node_hooks() -> bool {
    ANY_NODE_HOOKS.load(Ordering::Relaxed)
}

/// Set once any node got a post-hook, so the engine can skip looking for them until then.
static ANY_POST_HOOKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Bit of a slot's `seq_and_released` that says the node's saved tensors were freed.
const RELEASED: u64 = 1 << 63;

/// The next sequence number for a new node.
pub fn next_seq() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

#[inline]
fn locate(index: u32) -> (usize, usize) {
    let index = index as usize;
    if index >= GROWING_SLOTS {
        let past = index - GROWING_SLOTS;
        return (GROWING + (past >> MAX_BUCKET_BITS), past & ((1 << MAX_BUCKET_BITS) - 1));
    }
    let i = index + BASE;
    let bucket = (usize::BITS - 1 - i.leading_zeros()) as usize - BASE_BITS as usize;
    (bucket, i - (BASE << bucket))
}

#[inline]
fn slot(index: u32) -> &'static Slot {
    let (bucket, offset) = locate(index);
    // The bucket exists: `index` was handed out by `alloc`, which created it first.
    &ARENA.buckets[bucket].get().expect("arena bucket allocated before use")[offset]
}

/// What the graph keeps per thread, in one thread-local, so that making or freeing a node
/// looks it up once.
struct ThreadGraph {
    /// This thread's share of the process-wide counts (live nodes, saved bytes).
    counters: crate::stats::Counters,
    /// Free slots, so allocating and freeing nodes takes no global lock. Above
    /// `LOCAL_FREE_MAX` half of them go back to the shared list; a thread that ends returns
    /// all of its own.
    free: RefCell<Vec<u32>>,
    /// Set while this thread frees a node (Note [Freeing without recursion]).
    freeing: Cell<bool>,
    /// The nodes freed meanwhile, waiting their turn.
    pending: RefCell<Vec<Node>>,
}

const LOCAL_FREE_MAX: usize = 4096;
const LOCAL_FREE_REFILL: usize = 256;

impl Drop for ThreadGraph {
    fn drop(&mut self) {
        ARENA.free.lock().append(self.free.get_mut());
    }
}

thread_local! {
    static THREAD_GRAPH: ThreadGraph = ThreadGraph {
        counters: crate::stats::Counters::register(),
        free: RefCell::new(Vec::new()),
        freeing: Cell::new(false),
        pending: RefCell::new(Vec::new()),
    };
}

/// Adds `delta` to this thread's count of `stat`; false once the thread is ending.
#[inline]
pub(crate) fn count_on_this_thread(stat: crate::stats::Stat, delta: isize) -> bool {
    THREAD_GRAPH.try_with(|t| t.counters.add(stat, delta)).is_ok()
}

/// A free slot from this thread's list, refilled from the shared one when empty.
fn pop_free(t: &ThreadGraph) -> Option<u32> {
    let mut local = t.free.borrow_mut();
    if let Some(i) = local.pop() {
        return Some(i);
    }
    let mut shared = ARENA.free.lock();
    let take = shared.len().min(LOCAL_FREE_REFILL);
    let start = shared.len() - take;
    local.extend(shared.drain(start..));
    local.pop()
}

fn push_free(t: &ThreadGraph, index: u32) {
    let mut local = t.free.borrow_mut();
    local.push(index);
    if local.len() > LOCAL_FREE_MAX {
        let half = local.len() / 2;
        ARENA.free.lock().extend(local.drain(..half));
    }
}

#[inline]
fn alloc(node: Node) -> u32 {
    let reused = THREAD_GRAPH.try_with(|t| {
        t.counters.add(crate::stats::Stat::LiveNodes, 1);
        pop_free(t)
    });
    let reused = reused.unwrap_or_else(|_| {
        // This thread is ending: its list is gone.
        crate::stats::retire(crate::stats::Stat::LiveNodes, 1);
        ARENA.free.lock().pop()
    });
    let index = match reused {
        Some(i) => i,
        None => {
            let i = ARENA.next.fetch_add(1, Ordering::Relaxed);
            let (bucket, _) = locate(i);
            let size = BASE << bucket.min(GROWING - 1);
            ARENA.buckets[bucket].get_or_init(|| {
                (0..size)
                    .map(|_| Slot {
                        state: AtomicU64::new(0),
                        seq_and_released: AtomicU64::new(0),
                        node: Mutex::new(None),
                    })
                    .collect()
            });
            i
        }
    };
    let s = slot(index);
    s.seq_and_released.store(next_seq() & !RELEASED, Ordering::Relaxed);
    *s.node.lock() = Some(node);
    let generation = s.state.load(Ordering::Relaxed) >> 32;
    s.state.store((generation << 32) | 1, Ordering::Release);
    index
}

fn free(index: u32) {
    let s = slot(index);
    let mut node = s.node.lock().take();
    let generation = s.state.load(Ordering::Relaxed) >> 32;
    s.state.store(((generation + 1) & REFS_MASK) << 32, Ordering::Release);
    let on_thread = THREAD_GRAPH.try_with(|t| {
        push_free(t, index);
        t.counters.add(crate::stats::Stat::LiveNodes, -1);
        let Some(node) = node.take() else { return };
        // See Note [Freeing without recursion]. The node is moved only when it must wait its
        // turn. No borrow of the thread's lists is held while a node drops: that frees more.
        if t.freeing.replace(true) {
            t.pending.borrow_mut().push(node);
            return;
        }
        drop(node);
        loop {
            let next = t.pending.borrow_mut().pop();
            match next {
                Some(n) => drop(n),
                None => break,
            }
        }
        t.freeing.set(false);
    });
    if on_thread.is_err() {
        // This thread is ending: its lists are gone, and the node is dropped at once.
        ARENA.free.lock().push(index);
        crate::stats::retire(crate::stats::Stat::LiveNodes, -1);
        drop(node);
    }
}

/// Number of graph nodes currently alive (for leak tests and `graph_stats()`).
pub fn live_nodes() -> usize {
    crate::stats::total(crate::stats::Stat::LiveNodes).max(0) as usize
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
    /// The slot index plus one, so that `Option<NodeRef>` (and an optional edge) costs no
    /// more than the handle.
    slot_plus_one: NonZeroU32,
}

impl NodeRef {
    /// Puts a node into the arena.
    #[inline]
    pub fn new(node: Node) -> NodeRef {
        NodeRef::from_index(alloc(node))
    }

    /// A handle to the node in slot `index` that is not one of its owners: dropping it does
    /// nothing (cloning it makes an owner).
    ///
    /// # Safety
    /// The node in slot `index` must stay alive while the handle is used: an owner must
    /// outlive it (the engine holds the roots of the graph it runs, Note [The engine does not
    /// own the graph] in engine.rs).
    #[inline]
    pub(crate) unsafe fn unowned(index: u32) -> std::mem::ManuallyDrop<NodeRef> {
        std::mem::ManuallyDrop::new(NodeRef::from_index(index))
    }

    #[inline]
    fn from_index(index: u32) -> NodeRef {
        NodeRef { slot_plus_one: NonZeroU32::new(index + 1).expect("slot indices stay below u32::MAX") }
    }

    /// The node's slot index (stable for the node's lifetime).
    #[inline]
    pub fn index(&self) -> u32 {
        self.slot_plus_one.get() - 1
    }

    /// Creation order: a node's inputs were created before it, so they have smaller numbers.
    /// Read without the node's lock.
    #[inline]
    pub fn seq(&self) -> u64 {
        slot(self.index()).seq_and_released.load(Ordering::Relaxed) & !RELEASED
    }

    /// Whether a backward without `retain_graph` freed the saved tensors.
    #[inline]
    pub fn released(&self) -> bool {
        slot(self.index()).seq_and_released.load(Ordering::Relaxed) & RELEASED != 0
    }

    /// Records that the saved tensors were freed.
    pub fn set_released(&self) {
        slot(self.index()).seq_and_released.fetch_or(RELEASED, Ordering::Relaxed);
    }

    /// Identity: (slot, generation).
    pub fn key(&self) -> (u32, u32) {
        (self.index(), (slot(self.index()).state.load(Ordering::Relaxed) >> 32) as u32)
    }

    /// Locks the node. Never hold it across user code (hooks) or while locking another node.
    pub fn lock(&self) -> MutexGuard<'_, Option<Node>> {
        slot(self.index()).node.lock()
    }

    /// Whether this is the only handle to the node (so nothing can reach the node but through
    /// its holder; weak handles upgrade only while a strong one exists).
    #[inline]
    pub fn is_unique(&self) -> bool {
        slot(self.index()).state.load(Ordering::Acquire) & REFS_MASK == 1
    }

    /// Runs `f` on the node if its lock is free, without waiting (for a garbage collector's
    /// traversal, which must never block).
    pub fn try_with<R>(&self, f: impl FnOnce(&Node) -> R) -> Option<R> {
        let guard = slot(self.index()).node.try_lock()?;
        guard.as_ref().map(f)
    }

    /// Runs `f` on the locked node.
    pub fn with<R>(&self, f: impl FnOnce(&mut Node) -> R) -> R {
        let mut guard = self.lock();
        f(guard.as_mut().expect("a node with a live handle is never empty"))
    }

    /// The node's PyTorch name (`MulBackward0`).
    pub fn name(&self) -> &'static str {
        self.with(|n| n.name())
    }

    /// `grad_fn.register_prehook(hook)`; returns the hook's id.
    pub fn add_pre_hook(&self, hook: NodePreHook) -> u64 {
        let id = crate::tensor::next_hook_id();
        self.with(|n| n.extras_mut().pre_hooks.push((id, hook)));
        id
    }

    /// `grad_fn.register_hook(hook)`; returns the hook's id.
    pub fn add_post_hook(&self, hook: NodePostHook) -> u64 {
        let id = crate::tensor::next_hook_id();
        self.with(|n| n.extras_mut().post_hooks.push((id, hook)));
        ANY_POST_HOOKS.store(true, Ordering::Relaxed);
        id
    }

    /// Whether the node may have post-hooks (lock-free `false` until any node got one).
    #[inline]
    pub fn has_post_hooks(&self) -> bool {
        ANY_POST_HOOKS.load(Ordering::Relaxed)
            && self.with(|n| n.extras.as_ref().is_some_and(|h| !h.post_hooks.is_empty()))
    }

    /// Removes a pre- or post-hook by id; false if it was gone.
    pub fn remove_hook(&self, id: u64) -> bool {
        self.with(|n| {
            let Some(h) = n.extras.as_mut() else { return false };
            let before = h.pre_hooks.len() + h.post_hooks.len();
            h.pre_hooks.retain(|(i, _)| *i != id);
            h.post_hooks.retain(|(i, _)| *i != id);
            h.pre_hooks.len() + h.post_hooks.len() != before
        })
    }

    /// A weak handle that does not keep the node alive.
    pub fn downgrade(&self) -> WeakNodeRef {
        WeakNodeRef {
            slot_plus_one: self.slot_plus_one,
            generation: (slot(self.index()).state.load(Ordering::Relaxed) >> 32) as u32,
        }
    }

    /// Whether both handles name the same node.
    pub fn ptr_eq(&self, other: &NodeRef) -> bool {
        self.index() == other.index()
    }
}

impl Clone for NodeRef {
    fn clone(&self) -> Self {
        slot(self.index()).state.fetch_add(1, Ordering::Relaxed);
        NodeRef { slot_plus_one: self.slot_plus_one }
    }
}

impl Drop for NodeRef {
    fn drop(&mut self) {
        let prev = slot(self.index()).state.fetch_sub(1, Ordering::AcqRel);
        if prev & REFS_MASK == 1 {
            free(self.index());
        }
    }
}

impl std::fmt::Debug for NodeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeRef({})", self.index())
    }
}

/// A handle that does not keep its node alive.
#[derive(Clone, Copy, Debug)]
pub struct WeakNodeRef {
    /// The slot index plus one (`Option<WeakNodeRef>` then costs no more than the handle).
    slot_plus_one: NonZeroU32,
    generation: u32,
}

impl WeakNodeRef {
    /// A strong handle if the node is still alive.
    pub fn upgrade(&self) -> Option<NodeRef> {
        let index = self.slot_plus_one.get() - 1;
        let s = slot(index);
        let mut state = s.state.load(Ordering::Acquire);
        loop {
            if (state >> 32) as u32 != self.generation || state & REFS_MASK == 0 {
                return None;
            }
            match s.state.compare_exchange_weak(state, state + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(NodeRef::from_index(index)),
                Err(actual) => state = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_index_has_its_own_slot_in_a_bucket_of_the_right_size() {
        let mut next = (0usize, 0usize);
        for index in 0..(GROWING_SLOTS as u32 + 3 * (1 << MAX_BUCKET_BITS) + 5) {
            let (bucket, offset) = super::locate(index);
            assert_eq!((bucket, offset), next, "index {index}");
            let size = super::BASE << bucket.min(super::GROWING - 1);
            assert!(offset < size);
            next = if offset + 1 == size { (bucket + 1, 0) } else { (bucket, offset + 1) };
        }
        let (last, _) = super::locate(u32::MAX >> 4);
        assert!(last < super::BUCKETS);
    }

    use super::*;

    #[test]
    fn metas_round_trip() {
        let meta = |shape: &[usize], dtype| InputMeta { shape: shape.into(), dtype };
        let inputs = [meta(&[], DType::F32), meta(&[1], DType::F64), meta(&[64, 784, 3], DType::I64)];
        let outputs = [
            meta(&[1 << 50, 2], DType::Bool),
            meta(&[0], DType::F32),
            meta(&[(1 << 23) - 1, 1 << 23, 5], DType::F32),
            meta(&[3, (1 << 23) - 1], DType::F16),
            meta(&[usize::MAX], DType::F64),
        ];
        let m = Metas::new(&inputs, &outputs);
        assert_eq!((m.num_inputs(), m.num_outputs()), (3, 5));
        for (i, want) in inputs.iter().enumerate() {
            let got = m.input(i).unwrap();
            assert_eq!((got.shape, got.dtype), (want.shape.clone(), want.dtype));
        }
        for (i, want) in outputs.iter().enumerate() {
            let got = m.output(i).unwrap();
            assert_eq!((got.shape, got.dtype), (want.shape.clone(), want.dtype));
        }
        assert!(m.input(3).is_none() && m.output(5).is_none());
        let t = Tensor::from_vec(vec![0.0f64], &[1]).unwrap();
        assert!(m.input_matches(1, &t) && !m.input_matches(0, &t) && !m.input_matches(2, &t));
        let wide = Tensor::from_vec(vec![0i64; 64 * 784 * 3], &[64, 784, 3]).unwrap();
        assert!(m.input_matches(2, &wide) && !m.input_matches(1, &wide));
        let other = Tensor::from_vec(vec![0i64; 64 * 784 * 3], &[64, 3, 784]).unwrap();
        assert!(!m.input_matches(2, &other));
    }

    #[test]
    fn a_node_of_two_inputs_of_two_dims_fits_in_128_bytes_without_a_heap_block() {
        assert!(std::mem::size_of::<Node>() <= 128, "{}", std::mem::size_of::<Node>());
        assert!(std::mem::size_of::<Slot>() <= 152, "{}", std::mem::size_of::<Slot>());
        let meta = |shape: &[usize]| InputMeta { shape: shape.into(), dtype: DType::F32 };
        let m = Metas::new(&[meta(&[64, 784]), meta(&[784, 256])], &[meta(&[64, 256])]);
        assert!(!m.words.spilled());
    }

    #[test]
    fn buckets_are_contiguous() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(255), (0, 255));
        assert_eq!(locate(256), (1, 0));
        assert_eq!(locate(256 + 511), (1, 511));
        assert_eq!(locate(256 + 512), (2, 0));
    }
}
