//! The backward engine.
//!
//! Note [Engine]: like PyTorch's `engine.cpp`, without recursion anywhere:
//! 1. discover the nodes reachable from the roots with an explicit stack, counting for each
//!    node the edges coming into it;
//! 2. if only some inputs are wanted (`inputs=` or `autograd.grad`), mark the nodes that lead
//!    to them (children before parents: a node's inputs always have a smaller `seq`), and
//!    count again only the edges among those;
//! 3. run nodes from a ready queue (highest `seq` first, leaf accumulators before all), each
//!    exactly once, after all gradients flowing into it have been summed in its input buffer.
//!
//! Backward formulas run with grad mode set to `create_graph`, so with `create_graph=True`
//! the gradients themselves are differentiable.

use crate::anomaly;
use crate::autograd::BackwardCtx;
use crate::autograd::Grads;
use crate::creation::ones_like;
use crate::error::{Error, Result};
use crate::grad_mode::GradModeGuard;
use crate::graph::{Edge, GradHook, Metas, Node, NodePostHook, NodePreHook, NodeRef};
use crate::ops::accumulate::accumulate;
use crate::ops::arith::add;
use crate::ops::view::{clone, sum_to, to_dtype};
use crate::ops::BackwardOp;
use crate::shape;
use crate::tensor::PostAccumulateHook;
use crate::tensor::{Tensor, TensorCell};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::collections::BinaryHeap;
use std::mem::ManuallyDrop;
use std::sync::Weak;

/// Where a gradient flows, by the engine's own index of the node (its position in discovery
/// order), read from the node's edges through [`Positions`] when the node runs.
#[derive(Clone, Copy)]
struct NextEdge {
    /// The child's position in [`States`], or [`NO_EDGE`] for an input that needs no gradient.
    key: u32,
    input_nr: u32,
}

/// The key of a [`NextEdge`] that leads nowhere.
const NO_EDGE: u32 = u32::MAX;

impl NextEdge {
    /// The edge, unless it leads nowhere.
    #[inline]
    fn get(self) -> Option<NextEdge> {
        (self.key != NO_EDGE).then_some(self)
    }
}

/// Bits of [`Info::bits`]: the count of edges still to deliver a gradient in bits 0-27 (a node
/// has fewer incoming edges than the arena has slots, 2^28), then four flags.
const DEPS_MASK: u32 = (1 << 28) - 1;
/// Receives gradients (is a target or leads to one).
const REACH: u32 = 1 << 28;
/// Already run (its handle and buffer are gone).
const DONE: u32 = 1 << 29;
/// A leaf's `AccumulateGrad`.
const ACCUMULATE: u32 = 1 << 30;
/// Has several outputs: its gradient buffer lives in [`States::buffers`].
const MULTI: u32 = 1 << 31;

/// What the engine keeps of one node while a backward runs: 16 bytes, since a million-node
/// graph holds a million of these at once. The node's edges, name, creation order and number
/// of outputs are read from the node itself when needed.
///
/// Note [The engine does not own the graph]: a node's edges never change once it is made, and
/// a node lives while any edge or handle leads to it. The engine holds a handle to every root
/// for the whole run, so each node it discovers from them stays alive until it returns. It
/// keeps their arena slots, not owning handles: two atomic operations less per node.
struct Info {
    /// The node's arena slot ([`NO_SLOT`] between its discovery and its visit, and once it
    /// has run).
    slot: u32,
    /// Dependencies and flags (see [`DEPS_MASK`]).
    bits: u32,
    /// The sum of the gradients received so far for output 0. A node with several outputs
    /// keeps its whole buffer in [`States::buffers`] instead, so every node pays for one slot.
    first: Option<Tensor>,
}

/// [`Info::slot`] of a node not visited yet, or already run.
const NO_SLOT: u32 = u32::MAX;

impl Info {
    /// A handle to the node that does not own it (Note [The engine does not own the graph]).
    #[inline]
    fn node(&self) -> ManuallyDrop<NodeRef> {
        assert_ne!(self.slot, NO_SLOT, "every node is visited before the graph runs");
        // SAFETY: the node was discovered from a root the engine holds (see the note).
        unsafe { NodeRef::unowned(self.slot) }
    }
    #[inline]
    fn deps(&self) -> u32 {
        self.bits & DEPS_MASK
    }
    #[inline]
    fn has(&self, flag: u32) -> bool {
        self.bits & flag != 0
    }
    #[inline]
    fn set(&mut self, flag: u32, on: bool) {
        if on {
            self.bits |= flag;
        } else {
            self.bits &= !flag;
        }
    }
}

/// The engine's position of each node, by arena slot, in pages of 1,024 slots allocated as
/// the graph touches them (4 bytes per slot; a hash map took about 12 per node).
#[derive(Default)]
struct Positions {
    /// Position plus one, 0 for a node not discovered.
    pages: Vec<Option<Box<[u32]>>>,
}

const POSITION_PAGE_BITS: u32 = 10;
const POSITION_PAGE: usize = 1 << POSITION_PAGE_BITS;

impl Positions {
    #[inline]
    fn get(&self, slot: u32) -> Option<u32> {
        let page = self.pages.get((slot >> POSITION_PAGE_BITS) as usize)?.as_ref()?;
        page[slot as usize & (POSITION_PAGE - 1)].checked_sub(1)
    }

    fn set(&mut self, slot: u32, position: u32) {
        let page = (slot >> POSITION_PAGE_BITS) as usize;
        if self.pages.len() <= page {
            self.pages.resize_with(page + 1, || None);
        }
        let page = self.pages[page].get_or_insert_with(|| vec![0; POSITION_PAGE].into_boxed_slice());
        page[slot as usize & (POSITION_PAGE - 1)] = position + 1;
    }
}

const STATE_CHUNK_BITS: u32 = 12;
const STATE_CHUNK: usize = 1 << STATE_CHUNK_BITS;

/// The engine's per-node state, indexed by discovery order, in fixed-size chunks: growing it
/// never copies what is there (a million-node graph never holds two copies at once).
struct States {
    chunks: Vec<Vec<Info>>,
    len: usize,
    positions: Positions,
    /// The gradient buffers of nodes with several outputs (or receiving one past their last
    /// output), by position.
    buffers: FxHashMap<u32, SmallVec<[Option<Tensor>; 2]>>,
}

impl States {
    fn new() -> States {
        States { chunks: Vec::new(), len: 0, positions: Positions::default(), buffers: FxHashMap::default() }
    }

    /// The position of the node in arena slot `slot`, discovering it (with no dependencies
    /// yet) if it is new; `true` when it is.
    fn position_of(&mut self, slot: u32) -> (u32, bool) {
        if let Some(p) = self.positions.get(slot) {
            return (p, false);
        }
        if self.len % STATE_CHUNK == 0 {
            self.chunks.push(Vec::with_capacity(STATE_CHUNK));
        }
        self.chunks.last_mut().expect("a chunk was just pushed").push(Info { slot: NO_SLOT, bits: REACH, first: None });
        self.len += 1;
        let p = (self.len - 1) as u32;
        self.positions.set(slot, p);
        (p, true)
    }

    #[inline]
    fn get(&self, i: u32) -> &Info {
        &self.chunks[(i >> STATE_CHUNK_BITS) as usize][i as usize & (STATE_CHUNK - 1)]
    }

    #[inline]
    fn get_mut(&mut self, i: u32) -> &mut Info {
        &mut self.chunks[(i >> STATE_CHUNK_BITS) as usize][i as usize & (STATE_CHUNK - 1)]
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Info> {
        self.chunks.iter_mut().flatten()
    }

    /// The node's edges, by position (every child of a discovered node is discovered).
    fn edges(&self, node: &NodeRef) -> SmallVec<[NextEdge; 2]> {
        node.with(|n| self.edges_of(n))
    }

    /// [`States::edges`] of a node already locked.
    fn edges_of(&self, n: &Node) -> SmallVec<[NextEdge; 2]> {
        n.next
            .iter()
            .map(|e| match e.as_ref().and_then(|e| Some((self.positions.get(e.node.index())?, e.input_nr))) {
                Some((key, input_nr)) => NextEdge { key, input_nr },
                None => NextEdge { key: NO_EDGE, input_nr: 0 },
            })
            .collect()
    }

    /// Adds `g` to the gradient node `i` has received for its output `output`.
    fn add_grad(&mut self, i: u32, output: usize, g: Tensor) -> Result<()> {
        let info = self.get_mut(i);
        if output == 0 && !info.has(MULTI) {
            return add_into(&mut info.first, g);
        }
        let buffer = self.buffers.entry(i).or_default();
        if buffer.len() <= output {
            buffer.resize(output + 1, None);
        }
        add_into(&mut buffer[output], g)
    }

    /// Takes node `i`'s summed gradients, one per output (`None` where none came).
    fn take_grads(&mut self, i: u32) -> SmallVec<[Option<Tensor>; 1]> {
        let info = self.get_mut(i);
        let outputs = if info.has(MULTI) { info.node().with(|n| n.metas.num_outputs()).max(1) } else { 1 };
        let mut grads: SmallVec<[Option<Tensor>; 1]> = smallvec::smallvec![info.first.take()];
        if outputs > 1 {
            grads.resize(outputs, None);
        }
        // Most graphs have no node with several outputs: skip the lookup then.
        if let Some(rest) = (!self.buffers.is_empty()).then(|| self.buffers.remove(&i)).flatten() {
            if grads.len() < rest.len() {
                grads.resize(rest.len(), None);
            }
            for (k, g) in rest.into_iter().enumerate() {
                if g.is_some() {
                    grads[k] = g;
                }
            }
        }
        grads
    }

    /// Whether node `i` will receive gradients (false once it has run).
    #[inline]
    fn reaches(&self, i: u32) -> bool {
        self.get(i).bits & (REACH | DONE) == REACH
    }
}

/// A backward run in progress on this thread (runs nest: a hook may call backward): its id,
/// and what decides which nodes it runs. The entry holds the roots, and with them the whole
/// graph, until the run ends (Note [The engine does not own the graph]).
struct TaskEntry {
    id: u64,
    roots: SmallVec<[NodeRef; 1]>,
    targets: Option<Vec<NodeRef>>,
}

thread_local! {
    static RUNNING: std::cell::RefCell<Vec<TaskEntry>> = const { std::cell::RefCell::new(Vec::new()) };
}

static NEXT_TASK_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Registers a run for [`current_task_id`] and [`will_execute`] while it lives.
struct RunningTask;

impl RunningTask {
    fn enter(roots: SmallVec<[NodeRef; 1]>, targets: Option<Vec<NodeRef>>) -> RunningTask {
        let id = NEXT_TASK_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RUNNING.with(|r| r.borrow_mut().push(TaskEntry { id, roots, targets }));
        RunningTask
    }
}

impl Drop for RunningTask {
    fn drop(&mut self) {
        let entry = RUNNING.with(|r| r.borrow_mut().pop());
        drop(entry); // the roots go after the borrow ends: freeing the graph may run code
    }
}

/// The id of the innermost backward running on this thread (`torch._C._current_graph_task_id`).
pub fn current_task_id() -> Option<u64> {
    RUNNING.with(|r| r.borrow().last().map(|t| t.id))
}

/// Whether the innermost backward running on this thread runs (or ran) `node`: reachable from
/// its roots and, for `autograd.grad`, on a path to one of its inputs. `None` outside backward.
pub fn will_execute(node: &NodeRef) -> Option<bool> {
    let (roots, targets) = RUNNING.with(|r| {
        let r = r.borrow();
        let task = r.last()?;
        Some((task.roots.clone(), task.targets.clone()))
    })?;
    // Every node reachable from the roots, each with its children, in discovery order.
    let mut index: rustc_hash::FxHashMap<u32, usize> = rustc_hash::FxHashMap::default();
    let mut nodes: Vec<(NodeRef, SmallVec<[NodeRef; 2]>)> = Vec::new();
    let mut stack: Vec<NodeRef> = roots.into_iter().collect();
    while let Some(n) = stack.pop() {
        if index.contains_key(&n.index()) {
            continue;
        }
        let children: SmallVec<[NodeRef; 2]> = n.with(|x| x.next.iter().flatten().map(|e| e.node.clone()).collect());
        stack.extend(children.iter().cloned());
        index.insert(n.index(), nodes.len());
        nodes.push((n, children));
    }
    let Some(&at) = index.get(&node.index()) else { return Some(false) };
    let Some(targets) = targets else { return Some(true) };
    // With targets: does `node` reach one of them? (Iterative search from `node`.)
    let wanted: rustc_hash::FxHashSet<u32> = targets.iter().map(|t| t.index()).collect();
    let mut seen = rustc_hash::FxHashSet::default();
    let mut stack = vec![at];
    while let Some(i) = stack.pop() {
        let (n, children) = &nodes[i];
        if wanted.contains(&n.index()) {
            return Some(true);
        }
        if seen.insert(i) {
            stack.extend(children.iter().filter_map(|c| index.get(&c.index()).copied()));
        }
    }
    Some(false)
}

/// Targets of a partial backward: (node key, input_nr, slot in the result).
type Captures = Vec<(u32, u32, usize)>;

/// `torch.autograd.backward`: accumulates into the leaves' `.grad` (or only `inputs`').
///
/// `grad_tensors[i]` is the gradient of `tensors[i]` (`None`: ones, for a one-element output);
/// `retain_graph` keeps the saved tensors for another backward; `create_graph` records the
/// backward itself so that the gradients can be differentiated again.
///
/// ```
/// use rustgrad_core::{engine, ops::reduce, Tensor};
/// # fn main() -> rustgrad_core::Result<()> {
/// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3])?;
/// x.set_requires_grad(true)?;
/// let y = reduce::sum(&(&x * &x)?, None, false, None)?; // y = sum(x^2)
/// engine::backward(&[y], &[None], false, false, None)?;
/// assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![2.0, 4.0, 6.0]); // dy/dx = 2x
/// # Ok(())
/// # }
/// ```
pub fn backward(
    tensors: &[Tensor],
    grad_tensors: &[Option<Tensor>],
    retain_graph: bool,
    create_graph: bool,
    inputs: Option<&[Tensor]>,
) -> Result<()> {
    backward_reporting_cycles(tensors, grad_tensors, retain_graph, create_graph, inputs).map(|_| ())
}

/// [`backward`], returning the leaves whose `.grad` now holds a graph leading back to the leaf
/// itself (with `create_graph=True`): a reference cycle that keeps both alive until `.grad` is reset.
pub fn backward_reporting_cycles(
    tensors: &[Tensor],
    grad_tensors: &[Option<Tensor>],
    retain_graph: bool,
    create_graph: bool,
    inputs: Option<&[Tensor]>,
) -> Result<Vec<Tensor>> {
    let roots = make_roots(tensors, grad_tensors)?;
    let leaves_before = if create_graph { leaves_reached(&roots) } else { Vec::new() };
    match inputs {
        None => {
            run(roots, None, true, retain_graph, create_graph)?;
        }
        Some(inputs) => {
            // Non-leaf inputs get their gradient in `.grad`, as PyTorch does (it retains it).
            for t in inputs {
                if !t.is_leaf() {
                    t.retain_grad()?;
                }
            }
            let edges = input_edges(inputs)?;
            run(roots, Some(&edges), true, retain_graph, create_graph)?;
        }
    }
    Ok(leaves_before.into_iter().filter(grad_refers_to_leaf).collect())
}

/// The leaves whose accumulators a backward from `roots` reaches.
fn leaves_reached(roots: &[(Edge, Tensor)]) -> Vec<Tensor> {
    leaves_from(roots.iter().map(|(e, _)| e.node.clone()).collect())
}

/// The leaves that require grad behind `tensors`: what a backward from them would accumulate
/// into (a leaf among `tensors` counts itself).
pub fn leaves_behind(tensors: &[Tensor]) -> Vec<Tensor> {
    let mut starts = Vec::new();
    let mut leaves = Vec::new();
    for t in tensors {
        match t.grad_fn() {
            Some(f) => starts.push(f),
            None if t.requires_grad() => leaves.push(t.clone()),
            None => {}
        }
    }
    leaves.extend(leaves_from(starts));
    leaves
}

fn leaves_from(mut stack: Vec<NodeRef>) -> Vec<Tensor> {
    let mut seen = rustc_hash::FxHashSet::default();
    let mut leaves = Vec::new();
    while let Some(node) = stack.pop() {
        if !seen.insert(node.index()) {
            continue;
        }
        node.with(|n| {
            if let BackwardOp::AccumulateGrad(a) = &n.op {
                leaves.push(a.leaf.clone());
            }
            stack.extend(n.next.iter().flatten().map(|e| e.node.clone()));
        });
    }
    leaves
}

/// Whether the graph behind `leaf.grad` reaches `leaf` itself.
fn grad_refers_to_leaf(leaf: &Tensor) -> bool {
    let Some(start) = leaf.grad().and_then(|g| g.grad_fn()) else { return false };
    let mut seen = rustc_hash::FxHashSet::default();
    let mut stack = vec![start];
    while let Some(node) = stack.pop() {
        if !seen.insert(node.index()) {
            continue;
        }
        let found = node.with(|n| {
            if let BackwardOp::AccumulateGrad(a) = &n.op {
                return a.leaf.same(leaf);
            }
            stack.extend(n.next.iter().flatten().map(|e| e.node.clone()));
            false
        });
        if found {
            return true;
        }
    }
    false
}

/// `torch.autograd.grad`: returns the gradients of `outputs` with respect to `inputs`.
///
/// Leaves' `.grad` are left alone. With `create_graph`, the returned gradients have a history,
/// so a second call gives second derivatives.
///
/// ```
/// use rustgrad_core::{engine, ops::unary, Tensor};
/// # fn main() -> rustgrad_core::Result<()> {
/// let x = Tensor::scalar(0.5f64);
/// x.set_requires_grad(true)?;
/// let y = unary::sin(&x)?;
/// let dy = engine::grad(&[y], &[None], &[x.clone()], false, true, false)?[0].clone().unwrap();
/// assert!((dy.item_f64()? - 0.5f64.cos()).abs() < 1e-12); // cos(x)
/// let d2y = engine::grad(&[dy], &[None], &[x.clone()], false, false, false)?[0].clone().unwrap();
/// assert!((d2y.item_f64()? + 0.5f64.sin()).abs() < 1e-12); // -sin(x)
/// assert!(x.grad().is_none());
/// # Ok(())
/// # }
/// ```
pub fn grad(
    outputs: &[Tensor],
    grad_outputs: &[Option<Tensor>],
    inputs: &[Tensor],
    retain_graph: bool,
    create_graph: bool,
    allow_unused: bool,
) -> Result<Vec<Option<Tensor>>> {
    if inputs.is_empty() {
        return Err(Error::runtime("`inputs` argument to `grad()` cannot be empty."));
    }
    let roots = make_roots(outputs, grad_outputs)?;
    for t in inputs {
        if !t.requires_grad() {
            return Err(Error::runtime("One of the differentiated Tensors does not require grad"));
        }
    }
    let edges = input_edges(inputs)?;
    grad_from_roots(roots, &edges, retain_graph, create_graph, allow_unused)
}

/// `autograd.grad` with respect to gradient edges (`GradientEdge`): the gradient flowing into
/// input `input_nr` of each edge's node, whatever tensor it came from.
pub fn grad_edges(
    outputs: &[Tensor],
    grad_outputs: &[Option<Tensor>],
    edges: &[Edge],
    retain_graph: bool,
    create_graph: bool,
    allow_unused: bool,
) -> Result<Vec<Option<Tensor>>> {
    if edges.is_empty() {
        return Err(Error::runtime("`inputs` argument to `grad()` cannot be empty."));
    }
    let roots = make_roots(outputs, grad_outputs)?;
    grad_from_roots(roots, edges, retain_graph, create_graph, allow_unused)
}

fn grad_from_roots(
    roots: Vec<(Edge, Tensor)>,
    edges: &[Edge],
    retain_graph: bool,
    create_graph: bool,
    allow_unused: bool,
) -> Result<Vec<Option<Tensor>>> {
    let captured = run(roots, Some(edges), false, retain_graph, create_graph)?;
    if !allow_unused {
        if let Some(i) = captured.iter().position(|g| g.is_none()) {
            return Err(Error::runtime(format!(
                "The differentiated Tensor at index {i} appears to not have been used in the graph. Set allow_unused=True if this is the desired behavior."
            )));
        }
    }
    Ok(captured)
}

fn input_edges(inputs: &[Tensor]) -> Result<Vec<Edge>> {
    inputs
        .iter()
        .map(|t| {
            t.gradient_edge().ok_or_else(|| Error::runtime("One of the differentiated Tensors does not require grad"))
        })
        .collect()
}

/// The checks PyTorch makes of outputs and their gradients before it reads any other argument of
/// `backward`/`grad`: each gradient has its output's shape, and an implicit gradient (ones) is
/// only for a one-element output that requires grad. An empty `grads` means implicit gradients
/// for all outputs; otherwise outputs and gradients are paired as far as both go (the count is
/// checked later, [`check_grad_count`]).
pub fn check_output_grads(tensors: &[Tensor], grads: &[Option<Tensor>]) -> Result<()> {
    for (i, t) in tensors.iter().enumerate() {
        let given = match grads.get(i) {
            Some(g) => g.as_ref(),
            None if grads.is_empty() => None,
            None => break,
        };
        match given {
            Some(g) => {
                let (gs, ts) = (g.shape(), t.shape());
                if gs != ts {
                    return Err(Error::runtime(format!(
                        "Mismatch in shape: grad_output[{i}] has a shape of {} and output[{i}] has a shape of {}.",
                        shape::fmt_size(&gs),
                        shape::fmt_size(&ts)
                    )));
                }
            }
            None if t.requires_grad() && t.numel() != 1 => return Err(Error::ImplicitGradNonScalar),
            None => {}
        }
    }
    Ok(())
}

/// As many gradients as outputs (or none: implicit gradients).
pub fn check_grad_count(tensors: &[Tensor], grads: &[Option<Tensor>]) -> Result<()> {
    if !grads.is_empty() && grads.len() != tensors.len() {
        return Err(Error::runtime(format!("got {} tensors and {} gradients", tensors.len(), grads.len())));
    }
    Ok(())
}

/// Pairs each output with the gradient flowing into it (ones for a one-element output).
fn make_roots(tensors: &[Tensor], grads: &[Option<Tensor>]) -> Result<Vec<(Edge, Tensor)>> {
    check_output_grads(tensors, grads)?;
    check_grad_count(tensors, grads)?;
    let mut roots = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let g = match grads.get(i).cloned().flatten() {
            // The gradient takes the output's dtype (PyTorch's `validate_outputs`), so a
            // leaf's `.grad` always has the leaf's dtype.
            Some(g) if g.dtype() != t.dtype() && t.dtype().is_float() => to_dtype(&g, t.dtype())?,
            Some(g) => g,
            None => ones_like(t),
        };
        if !t.requires_grad() {
            return Err(Error::NoGradFn(i));
        }
        let edge = t.gradient_edge().ok_or(Error::NoGradFn(i))?;
        roots.push((edge, g));
    }
    Ok(roots)
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Ready {
    priority: u64,
    key: u32,
}

fn run(
    roots: Vec<(Edge, Tensor)>,
    targets: Option<&[Edge]>,
    accumulate_grads: bool,
    keep_graph: bool,
    create_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    let _mode = GradModeGuard::new(create_graph);
    let _backward = crate::autograd::InBackward::enter();

    // 1. discovery: each node gets the next position when first seen, and counts the edges
    //    coming into it (all nodes run unless only some inputs are wanted, step 2)
    let mut infos = States::new();
    let mut root_positions: Vec<u32> = Vec::with_capacity(roots.len());
    // Held until the run ends: they keep the whole graph alive (Note [The engine does not own
    // the graph]), even if a hook gives a root tensor a new history meanwhile.
    // (The running task's entry holds them: see [`RunningTask`].)
    let _task = RunningTask::enter(
        roots.iter().map(|(edge, _)| edge.node.clone()).collect(),
        targets.map(|t| t.iter().map(|e| e.node.clone()).collect()),
    );
    // Note [Discovery stops below the targets]: a node's inputs are always older than the node
    // (smaller `seq`), so a node older than every target cannot lead to one. With targets
    // (`autograd.grad`), such nodes get a position (an edge comes into them) but are not
    // explored: their edges are never read, their locks never taken. Besides saving the walk,
    // this matters for forward mode, whose tangents run a small `grad` while an outer backward
    // holds the lock of the node it is running (Note [Tangents from the backward formula]).
    let oldest_target = targets.and_then(|t| t.iter().map(|e| e.node.seq()).min());
    {
        let mut stack: Vec<(u32, u32)> = Vec::new();
        for (edge, _) in &roots {
            let (p, new) = infos.position_of(edge.node.index());
            root_positions.push(p);
            if new {
                stack.push((p, edge.node.index()));
            }
            while let Some((p, slot)) = stack.pop() {
                // SAFETY: reached from a held root through edges (see the note).
                let node = unsafe { NodeRef::unowned(slot) };
                let mut too_many = false;
                let flags = node.with(|n| {
                    for e in n.next.iter().flatten() {
                        let (child, new) = infos.position_of(e.node.index());
                        let child_info = infos.get_mut(child);
                        too_many |= child_info.deps() == DEPS_MASK;
                        child_info.bits += u32::from(!too_many);
                        if new && oldest_target.is_none_or(|oldest| e.node.seq() >= oldest) {
                            stack.push((child, e.node.index()));
                        }
                    }
                    let accumulate = if matches!(n.op, BackwardOp::AccumulateGrad(_)) { ACCUMULATE } else { 0 };
                    let multi = if n.metas.num_outputs() > 1 { MULTI } else { 0 };
                    accumulate | multi
                });
                if too_many {
                    return Err(Error::runtime(format!(
                        "backward: a node of the graph has more than {DEPS_MASK} incoming edges"
                    )));
                }
                let info = infos.get_mut(p);
                info.bits |= flags;
                info.slot = slot;
            }
        }
    }
    let target_positions: Option<Vec<Option<u32>>> =
        targets.map(|t| t.iter().map(|e| infos.positions.get(e.node.index())).collect());

    // 2. which nodes must receive gradients, and the edges among them
    let mut captures: Captures = Vec::new();
    if let Some(positions) = &target_positions {
        for info in infos.iter_mut() {
            info.bits &= !(REACH | DEPS_MASK);
        }
        for (slot, (e, key)) in targets.unwrap_or_default().iter().zip(positions).enumerate() {
            let Some(key) = *key else { continue };
            captures.push((key, e.input_nr, slot));
            infos.get_mut(key).set(REACH, true);
        }
        // children before parents: a node's inputs always have a smaller `seq`
        // Unexplored nodes (no slot: Note [Discovery stops below the targets]) lead nowhere.
        let explored = |k: u32| infos.get(k).slot != NO_SLOT;
        let mut order: Vec<(u64, u32)> =
            (0..infos.len as u32).map(|k| (if explored(k) { infos.get(k).node().seq() } else { 0 }, k)).collect();
        order.sort_unstable();
        let edges: Vec<SmallVec<[NextEdge; 2]>> = order
            .iter()
            .map(|&(_, key)| if explored(key) { infos.edges(&infos.get(key).node()) } else { SmallVec::new() })
            .collect();
        for (&(_, key), next) in order.iter().zip(&edges) {
            if next.iter().filter_map(|e| e.get()).any(|e| infos.get(e.key).has(REACH)) {
                infos.get_mut(key).set(REACH, true);
            }
        }
        for (&(_, key), next) in order.iter().zip(&edges) {
            if !infos.get(key).has(REACH) {
                continue;
            }
            for e in next.iter().filter_map(|e| e.get()) {
                let child = infos.get_mut(e.key);
                if child.has(REACH) {
                    child.bits += 1;
                }
            }
        }
    }
    let is_target = |key: u32| captures.iter().any(|c| c.0 == key);

    // 3. run
    let mut captured: Vec<Option<Tensor>> = vec![None; targets.map_or(0, |t| t.len())];
    for ((edge, g), key) in roots.into_iter().zip(root_positions) {
        infos.add_grad(key, edge.input_nr as usize, g)?;
    }
    let mut ready: BinaryHeap<Ready> = BinaryHeap::new();
    for key in 0..infos.len as u32 {
        let info = infos.get(key);
        if info.has(REACH) && info.deps() == 0 {
            ready.push(Ready { priority: priority(info), key });
        }
    }
    while let Some(Ready { key, .. }) = ready.pop() {
        let mut grads = infos.take_grads(key);
        let node = {
            // Nothing reads a node's slot once it has run.
            let info = infos.get_mut(key);
            info.set(DONE, true);
            let node = info.node();
            info.slot = NO_SLOT;
            node
        };
        let is_accumulate = infos.get(key).has(ACCUMULATE);
        // Note [Profiler cost]: one relaxed load when no profile runs.
        let _evaluate = crate::profiler::Range::new(crate::profiler::Kind::Evaluate, || {
            format!("autograd::engine::evaluate_function: {}", node.name()).into()
        });
        run_pre_hooks(&node, is_accumulate, &mut grads)?;

        if targets.is_some() && is_target(key) {
            for &(k, input_nr, slot) in &captures {
                if k == key {
                    if let Some(g) = grads.get(input_nr as usize).cloned().flatten() {
                        captured[slot] = Some(g);
                    }
                }
            }
        }

        if is_accumulate {
            let wanted = targets.is_none() || (accumulate_grads && is_target(key));
            if wanted {
                // Moved out (not cloned) unless a post hook still needs it: the engine's
                // handle is then the only one, so AccumulateGrad may steal it as PyTorch does.
                let g = if node.has_post_hooks() {
                    grads.first().cloned().flatten()
                } else {
                    grads.first_mut().and_then(Option::take)
                };
                if let Some(g) = g {
                    let leaf = node.with(|n| match &n.op {
                        BackwardOp::AccumulateGrad(a) => Some(a.leaf.clone()),
                        _ => None,
                    });
                    // A leaf detached (`detach_()`, `requires_grad_(False)`) after the graph
                    // was recorded gets nothing, as in PyTorch.
                    if let Some(leaf) = leaf.filter(|l| l.requires_grad()) {
                        accumulate(&leaf, g)?;
                        let hooks: Vec<PostAccumulateHook> =
                            leaf.lock().post_accumulate_hooks().iter().map(|(_, h)| h.clone()).collect();
                        for hook in hooks {
                            hook(&leaf)?;
                        }
                    }
                    run_post_hooks(&node, SmallVec::new(), &grads)?;
                }
            }
            continue;
        }

        // The edges and what they need are read under the lock the node runs under.
        let mut next: SmallVec<[NextEdge; 2]> = SmallVec::new();
        let plan = |n: &Node| {
            next = infos.edges_of(n);
            let needs: SmallVec<[bool; 2]> =
                next.iter().map(|e| e.get().is_some_and(|e| infos.reaches(e.key))).collect();
            (needs.contains(&true) && grads.iter().any(|g| g.is_some())).then_some(needs)
        };
        let called = call_node(&node, plan, &grads, keep_graph).inspect_err(|_| {
            if anomaly::is_enabled() {
                let (name, trace) = node.with(|n| (n.name(), n.trace()));
                anomaly::report_error(name, trace.as_deref());
            }
        })?;
        let mut outputs: SmallVec<[Option<Tensor>; 2]> = match called {
            Some(outputs) if !node.has_post_hooks() => outputs,
            Some(outputs) => run_post_hooks(&node, outputs, &grads)?,
            None => SmallVec::new(),
        };
        drop(grads);

        for (i, edge) in next.iter().enumerate() {
            let Some(edge) = edge.get() else { continue };
            let ck = edge.key;
            if !infos.reaches(ck) {
                continue;
            }
            if let Some(g) = outputs.get_mut(i).and_then(Option::take) {
                infos.add_grad(ck, edge.input_nr as usize, g)?;
            }
            let child = infos.get_mut(ck);
            child.bits -= 1;
            if child.deps() == 0 {
                ready.push(Ready { priority: priority(child), key: ck });
            }
        }
    }
    Ok(captured)
}

/// The order in which ready nodes run: leaf accumulators first, then the latest created.
fn priority(info: &Info) -> u64 {
    if info.has(ACCUMULATE) {
        u64::MAX
    } else {
        info.node().seq()
    }
}

/// Sums gradients arriving at the same input of a node.
fn add_into(slot: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    *slot = Some(match slot.take() {
        None => g,
        Some(prev) => {
            // In place when no one else can see the buffer's tensor and nothing records the
            // sum (PyTorch's InputBuffer does the same).
            let in_place = !crate::grad_mode::is_grad_enabled()
                && std::sync::Arc::strong_count(&prev.0) == 1
                && Tensor::with_data_pair(&prev, &g, |p, g| {
                    let d = &p.data;
                    std::sync::Arc::strong_count(&d.storage) == 1
                        && d.storage.is_owned()
                        && d.offset == 0
                        && d.numel() == d.storage.len()
                        && d.dtype() == g.data.dtype()
                        && crate::kernels::binary_into(d, &g.data, crate::kernels::Binary::Add, 1.0)
                });
            if in_place {
                prev
            } else {
                add(&prev, &g)?
            }
        }
    });
    Ok(())
}

/// Runs, in PyTorch's order, the hooks that see a node's incoming gradients: hooks registered
/// on the tensors it produced (or on its leaf), retained gradients, then the node's pre-hooks.
/// No node lock is held while user code runs.
fn run_pre_hooks(node: &NodeRef, is_accumulate: bool, grads: &mut SmallVec<[Option<Tensor>; 1]>) -> Result<()> {
    if !is_accumulate && !crate::graph::any_node_hooks() {
        return Ok(());
    }
    type Retained = SmallVec<[(u32, Weak<TensorCell>); 1]>;
    let (name, mut hooks, retained, pre_hooks, leaf): (_, Vec<(u32, GradHook)>, Retained, Vec<NodePreHook>, _) = node
        .with(|n| {
            let h = n.extras.as_deref();
            (
                n.name(),
                h.map(|h| h.tensor_hooks.iter().map(|(_, nr, f)| (*nr, f.clone())).collect()).unwrap_or_default(),
                h.map(|h| h.retained.clone()).unwrap_or_default(),
                h.map(|h| h.pre_hooks.iter().map(|(_, f)| f.clone()).collect()).unwrap_or_default(),
                match &n.op {
                    BackwardOp::AccumulateGrad(a) => Some(a.leaf.clone()),
                    _ => None,
                },
            )
        });
    if let Some(leaf) = leaf {
        hooks.extend(leaf.lock().hooks().iter().map(|(_, h)| (0, h.clone())));
    }
    for (nr, hook) in hooks {
        if let Some(Some(g)) = grads.get(nr as usize) {
            if let Some(replacement) = hook(g)? {
                grads[nr as usize] = Some(replacement);
            }
        }
    }
    for (nr, weak) in retained {
        if let (Some(cell), Some(Some(g))) = (weak.upgrade(), grads.get(nr as usize)) {
            let t = Tensor::from_cell(cell);
            let current = t.grad();
            let updated = match current {
                None => clone(g)?,
                Some(cur) => add(&cur, g)?,
            };
            t.lock().put_grad(Some(updated));
        }
    }
    for hook in pre_hooks {
        if let Some(replacement) = hook(grads)? {
            check_hook_count(name, "pre", replacement.len(), grads.len())?;
            *grads = replacement.into_iter().collect();
        }
    }
    Ok(())
}

/// Runs the node's post-hooks on (input gradients, output gradients); they may replace the former.
fn run_post_hooks(
    node: &NodeRef,
    mut outputs: SmallVec<[Option<Tensor>; 2]>,
    grads: &[Option<Tensor>],
) -> Result<SmallVec<[Option<Tensor>; 2]>> {
    if !node.has_post_hooks() {
        return Ok(outputs);
    }
    let hooks: Vec<NodePostHook> = node
        .with(|n| n.extras.as_ref().map(|h| h.post_hooks.iter().map(|(_, f)| f.clone()).collect()).unwrap_or_default());
    for hook in hooks {
        if let Some(replacement) = hook(&outputs, grads)? {
            check_hook_count(node.name(), "post", replacement.len(), outputs.len())?;
            outputs = replacement.into_iter().collect();
        }
    }
    Ok(outputs)
}

fn check_hook_count(name: &str, kind: &str, got: usize, expected: usize) -> Result<()> {
    if got != expected {
        return Err(Error::runtime(format!(
            "{kind}-hook of {name} returned an incorrect number of values (got {got}, but expected {expected})"
        )));
    }
    Ok(())
}

/// Runs the node if `plan` (given the locked node) says which inputs need gradients, and fits
/// the gradients to the inputs; `None` when `plan` skipped it.
fn call_node(
    node: &NodeRef,
    plan: impl FnOnce(&Node) -> Option<SmallVec<[bool; 2]>>,
    grads: &SmallVec<[Option<Tensor>; 1]>,
    keep_graph: bool,
) -> Result<Option<SmallVec<[Option<Tensor>; 2]>>> {
    let mut range = crate::profiler::Range::new(crate::profiler::Kind::Backward, || node.name().into());
    let Some((out, metas, name)) = apply_planned(node, plan, grads, keep_graph)? else {
        return Ok(None);
    };
    if range.is_recording() && crate::profiler::flags() & crate::profiler::MEMORY != 0 {
        // A gradient passed through unchanged (AddBackward0) allocated nothing.
        let incoming: SmallVec<[*mut u8; 2]> = grads.iter().flatten().map(|g| g.data().storage.as_ptr()).collect();
        range.set_bytes(crate::profiler::bytes_of(
            out.iter().flatten().filter(|g| !incoming.contains(&g.data().storage.as_ptr())),
        ));
    }
    drop(range);
    if anomaly::is_enabled() && anomaly::check_nan() {
        for (index, g) in out.iter().enumerate() {
            if let Some(g) = g {
                if g.dtype().is_float() && g.to_vec::<f64>().iter().any(|v| v.is_nan()) {
                    return Err(Error::NanInBackward { name, index });
                }
            }
        }
    }
    // Gradients of broadcast inputs are summed back to the input's shape, and converted to
    // its dtype (PyTorch's `validate_outputs`).
    let mut out = out;
    for (i, g) in out.iter_mut().enumerate() {
        let Some(t) = g.as_ref() else { continue };
        if metas.input_matches(i, t) {
            continue;
        }
        if let Some(meta) = metas.input(i) {
            let ts = t.shape();
            let mut fixed = t.clone();
            if ts != meta.shape {
                if !shape::is_expandable_to(&meta.shape, &ts) {
                    return Err(Error::runtime(format!(
                        "Function {name} returned an invalid gradient at index {i} - got {} but expected shape compatible with {}",
                        shape::fmt_shape(&ts),
                        shape::fmt_shape(&meta.shape)
                    )));
                }
                fixed = sum_to(&fixed, &meta.shape)?;
            }
            if fixed.dtype() != meta.dtype {
                fixed = to_dtype(&fixed, meta.dtype)?;
            }
            *g = Some(fixed);
        }
    }
    Ok(Some(out))
}

/// Runs a node's backward function on its output gradients (missing ones become zeros).
/// Built-in ops run under the node's lock; custom ones, which may call back into the library
/// (even into this very node), without it. Returns the input gradients, what they must match
/// and the node's name.
pub fn apply_node(
    node_ref: &NodeRef,
    needs: SmallVec<[bool; 2]>,
    grads: &[Option<Tensor>],
    keep_graph: bool,
) -> Result<(Grads, Metas, &'static str)> {
    Ok(apply_planned(node_ref, |_| Some(needs), grads, keep_graph)?.expect("the plan always runs the node"))
}

/// [`apply_node`] with `needs` from `plan`, called on the node under the same lock (`None`:
/// nothing to run).
fn apply_planned(
    node_ref: &NodeRef,
    plan: impl FnOnce(&Node) -> Option<SmallVec<[bool; 2]>>,
    grads: &[Option<Tensor>],
    keep_graph: bool,
) -> Result<Option<(Grads, Metas, &'static str)>> {
    let mut guard = node_ref.lock();
    let node = guard.as_mut().expect("live node");
    let Some(needs) = plan(node) else {
        return Ok(None);
    };
    let name = node.name();
    let ctx = BackwardCtx { node: node_ref, name, needs, site: node.site() };
    if node_ref.released() && node.op.saves_tensors() {
        return Err(Error::GraphFreed);
    }
    // Outputs without a gradient get zeros, so formulas always see every output's gradient.
    // (Usually every output has one: then `grads` is passed as it is.)
    let filled: SmallVec<[Option<Tensor>; 1]> = if grads.iter().all(Option::is_some) {
        SmallVec::new()
    } else {
        grads
            .iter()
            .enumerate()
            .map(|(i, g)| g.clone().or_else(|| node.metas.output(i).map(|m| crate::creation::zeros(&m.shape, m.dtype))))
            .collect()
    };
    let all: &[Option<Tensor>] = if filled.is_empty() { grads } else { &filled };
    let metas = node.metas.clone();
    if let BackwardOp::Custom(custom) = &node.op {
        let custom = custom.clone();
        drop(guard);
        let out = if custom.materialize_grads() { custom.apply(&ctx, all)? } else { custom.apply(&ctx, grads)? };
        if !keep_graph {
            custom.release_saved();
            node_ref.set_released();
        }
        return Ok(Some((out, metas, name)));
    }
    let out = node.op.apply(&ctx, all)?;
    if !keep_graph {
        node.op.release();
        node_ref.set_released();
    }
    Ok(Some((out, metas, name)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_engine_keeps_16_bytes_per_node() {
        assert!(std::mem::size_of::<super::Info>() <= 16, "{}", std::mem::size_of::<super::Info>());
    }
}
