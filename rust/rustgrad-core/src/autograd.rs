//! Recording ops into the graph, and what backward functions work with.

use crate::error::{Error, Result};
use crate::grad_mode::is_recording;
use crate::graph::{Metas, Node, NodeRef};
use crate::ops::BackwardOp;
use crate::shape;
use crate::tensor::{InputState, Tensor, TensorData};
use smallvec::SmallVec;

/// Gradients returned by a backward function: one per forward input (`None`: no gradient).
pub type Grads = SmallVec<[Option<Tensor>; 2]>;

/// What a backward function knows about the call.
pub struct BackwardCtx<'a> {
    /// The node being run (saved outputs are re-attached to it).
    pub node: &'a NodeRef,
    /// The node's name (the node itself is locked while it runs).
    pub name: &'static str,
    /// For each forward input: whether its gradient is wanted.
    pub needs: SmallVec<[bool; 2]>,
    /// Where the node's forward call happened (for error messages; the node is locked).
    pub site: Option<crate::sites::Site>,
}

impl BackwardCtx<'_> {
    /// Whether the gradient of forward input `input` is wanted (false past the last input).
    #[inline]
    pub fn needs(&self, input: usize) -> bool {
        self.needs.get(input).copied().unwrap_or(false)
    }
}

/// A backward function: the local chain rule of one forward op.
pub trait Backward {
    /// PyTorch's class name of the node (`MulBackward0`).
    fn name(&self) -> &'static str;
    /// Given the gradients of the outputs, the gradients of the inputs, computed with the
    /// same differentiable ops as the forward (the engine sets grad mode to `create_graph`).
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads>;
    /// Frees saved tensors after a backward without `retain_graph`.
    fn release(&mut self) {}
    /// Whether the node holds saved tensors (a freed one then refuses to run again).
    fn saves_tensors(&self) -> bool {
        false
    }
    /// After an in-place op: the saved outputs are now `target` (see [`SavedTensor::retarget_output`]).
    fn retarget_outputs(&mut self, _target: &Tensor) {}
    /// Calls `f` with each saved tensor and its PyTorch name (`self`, `other`, `result`).
    fn for_each_saved(&self, _f: &mut dyn FnMut(&'static str, &SavedTensor)) {}
    /// [`Backward::for_each_saved`] with the saved tensors writable (`register_hooks`).
    fn for_each_saved_mut(&mut self, _f: &mut dyn FnMut(&'static str, &mut SavedTensor)) {}
    /// The forward derivative (jvp): the output's tangent from the inputs' tangents, written
    /// in the same differentiable ops. `None`: the op has no formula of its own, and its
    /// tangent is derived from [`Backward::apply`] (Note [Tangents from the backward formula]).
    fn jvp(&self, _ctx: &JvpCtx) -> Option<Result<Tensor>> {
        None
    }
}

/// What a jvp formula ([`Backward::jvp`]) is given.
pub struct JvpCtx<'a> {
    /// For unpacking the node's saved tensors.
    pub backward: BackwardCtx<'a>,
    /// The op's inputs (primals), in the order the node records them.
    pub inputs: &'a [&'a Tensor],
    /// Their tangents (`None`: zero).
    pub tangents: &'a [Option<Tensor>],
    /// The op's result.
    pub out: &'a Tensor,
}

impl JvpCtx<'_> {
    /// The tangent of input `i`, if it has one.
    #[inline]
    pub fn tangent(&self, i: usize) -> Option<&Tensor> {
        self.tangents.get(i).and_then(Option::as_ref)
    }

    /// The tangent of the op's only input (zero if absent, which the caller never sees:
    /// a formula runs only when some input has a tangent).
    pub fn tangent0(&self) -> Result<&Tensor> {
        self.tangent(0).ok_or_else(|| Error::runtime("jvp: missing tangent for input 0"))
    }

    /// For an element-wise op of one input whose backward multiplies the gradient by the local
    /// derivative: that backward applied to the tangent (`t * f'(x)`).
    pub fn element_wise(&self, op: &dyn Backward) -> Result<Tensor> {
        let t = self.tangent0()?;
        let mut grads = op.apply(&self.backward, std::slice::from_ref(&Some(t.clone())))?;
        grads.swap_remove(0).ok_or_else(|| Error::runtime("jvp: the backward gave no gradient"))
    }

    /// For an element-wise op of several inputs whose backward gives each input's gradient as
    /// the output gradient times a local derivative, unreduced (in the output's shape): the sum
    /// over the inputs with a tangent of that backward applied to the tangent, broadcast.
    pub fn element_wise_each(&self, op: &dyn Backward) -> Result<Tensor> {
        let shape = self.out.shape();
        let sizes: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let terms = (0..self.inputs.len()).filter_map(|i| self.tangent(i).map(|t| (i, t)));
        self.sum_terms(terms.map(|(i, t)| {
            let t = if t.shape() == shape { t.clone() } else { crate::ops::view::expand(t, &sizes)? };
            let only_i = BackwardCtx {
                node: self.backward.node,
                name: self.backward.name,
                needs: (0..self.inputs.len()).map(|k| k == i).collect(),
                site: None,
            };
            let mut grads = op.apply(&only_i, std::slice::from_ref(&Some(t)))?;
            let term = grads.get_mut(i).and_then(Option::take);
            if term.as_ref().is_some_and(|g| g.shape() != shape) {
                return Err(Error::runtime(format!("jvp of {}: the backward reduced a gradient", self.backward.name)));
            }
            Ok(term)
        }))
    }

    /// The sum of the terms present (each one input's contribution); zeros if there is none.
    pub fn sum_terms(&self, terms: impl IntoIterator<Item = Result<Option<Tensor>>>) -> Result<Tensor> {
        let mut total: Option<Tensor> = None;
        for term in terms {
            if let Some(t) = term? {
                total = Some(match total {
                    None => t,
                    Some(sum) => crate::ops::arith::add(&sum, &t)?,
                });
            }
        }
        Ok(total.unwrap_or_else(|| crate::creation::zeros_like(self.out)))
    }
}

/// Implements [`Backward::release`], [`Backward::saves_tensors`] and the other saved-tensor
/// methods for a node whose saved state is the listed [`SavedTensor`] fields, each with the
/// name PyTorch gives it (`grad_fn._saved_self`) if that differs from the field's:
/// `saved_tensors!(a => "self", b => "other");` inside the impl.
#[macro_export]
macro_rules! saved_tensors {
    ($($field:ident $(=> $name:literal)?),+ $(,)?) => {
        fn release(&mut self) {
            $(self.$field.release();)+
        }
        fn saves_tensors(&self) -> bool {
            true
        }
        fn retarget_outputs(&mut self, target: &$crate::tensor::Tensor) {
            $(self.$field.retarget_output(target);)+
        }
        fn for_each_saved(&self, f: &mut dyn FnMut(&'static str, &$crate::autograd::SavedTensor)) {
            $(f($crate::saved_tensors!(@name $field $($name)?), &self.$field);)+
        }
        fn for_each_saved_mut(&mut self, f: &mut dyn FnMut(&'static str, &mut $crate::autograd::SavedTensor)) {
            $(f($crate::saved_tensors!(@name $field $($name)?), &mut self.$field);)+
        }
    };
    (@name $field:ident $name:literal) => { $name };
    (@name $field:ident) => { stringify!($field) };
}

/// The gradient of output 0, which a single-output op's backward always receives.
pub fn grad0(grads: &[Option<Tensor>]) -> Result<&Tensor> {
    grads.first().and_then(|g| g.as_ref()).ok_or_else(|| Error::runtime("missing gradient for output 0"))
}

/// Whether an op on these inputs must be recorded: for the graph, or for the tangent of its
/// result ([`crate::forward_ad`]).
#[inline]
pub fn any_requires_grad(inputs: &[&Tensor]) -> bool {
    (is_recording() && inputs.iter().any(|t| t.requires_grad()))
        || (crate::forward_ad::is_open() && crate::forward_ad::input_tangents(inputs).is_some())
}

/// Attaches a new node computing `make()`'s backward to `out` if any input requires grad (and
/// gives `out` a tangent if an input has one, [`crate::forward_ad`]).
#[inline]
pub fn record<B: Into<BackwardOp>>(out: Tensor, inputs: &[&Tensor], make: impl FnOnce(&Tensor) -> B) -> Result<Tensor> {
    if crate::forward_ad::is_open() {
        return crate::forward_ad::record_dual(out, inputs, move |o| make(o).into());
    }
    record_plain(out, inputs, make)
}

thread_local! {
    /// While an op's backward node is made: bit `i` set if input `i` needs a gradient.
    static NEEDED_INPUTS: std::cell::Cell<u32> = const { std::cell::Cell::new(u32::MAX) };
}

/// Whether input `i` of the op whose node is being made needs a gradient (true outside
/// [`record`], and past the 32nd input): a node saves a tensor only for the gradients that use
/// it, as PyTorch does (`(x * 2).grad_fn._saved_self` is None).
#[inline]
pub fn input_needed(i: usize) -> bool {
    i >= 32 || NEEDED_INPUTS.with(|n| (n.get() >> i) & 1 == 1)
}

/// Sets [`NEEDED_INPUTS`] until dropped.
struct NeededInputs(u32);

impl NeededInputs {
    fn set(mask: u32) -> NeededInputs {
        NeededInputs(NEEDED_INPUTS.with(|n| n.replace(mask)))
    }
}

impl Drop for NeededInputs {
    fn drop(&mut self) {
        NEEDED_INPUTS.with(|n| n.set(self.0));
    }
}

/// [`record`] without tangents.
#[inline]
pub(crate) fn record_plain<B: Into<BackwardOp>>(
    out: Tensor,
    inputs: &[&Tensor],
    make: impl FnOnce(&Tensor) -> B,
) -> Result<Tensor> {
    if !is_recording() {
        if !InBackward::active() {
            note_not_recorded(&out, inputs);
        }
        return Ok(out);
    }
    let mut out = out;
    // Note [Composite results are not views]: an op that computes its result inside
    // `untracked` (with grad mode off) may end with a reshape, leaving a view made "in no_grad
    // mode" of a private buffer. Only view ops return views, so that metadata is dropped here:
    // otherwise an in-place op on the result would be refused as on a no_grad view.
    // Only floating-point results carry a history (integer and bool tensors never require
    // grad, whatever their inputs: `int_t.copy_(x)`, `argmax`, comparisons).
    let float = match out.unique_mut() {
        Some(o) => {
            if o.view().is_some_and(|v| v.creation == crate::tensor::ViewCreation::NoGrad && !v.made_recording) {
                o.set_view(None);
            }
            o.data.dtype().is_float()
        }
        None => out.dtype().is_float(),
    };
    // One lock per input: whether it needs a gradient, where it goes, and its metadata.
    let mut metas = Metas::default();
    let states: SmallVec<[InputState; 2]> = inputs.iter().map(|t| t.input_state(&mut metas)).collect();
    if !float || states.iter().all(|s| !s.requires_grad) {
        return Ok(out);
    }
    if states.iter().any(|s| s.stale_view) {
        for t in inputs {
            t.check_view_history()?;
        }
    }
    let op = {
        // Which inputs need a gradient, for `make` to save only what those gradients use
        // ([`input_needed`]); with a dual level open every input counts (tangents use them too).
        let needed = if crate::forward_ad::is_open() {
            u32::MAX
        } else {
            states.iter().take(32).enumerate().fold(0, |m, (i, s)| m | (u32::from(s.requires_grad) << i))
        };
        let _needed = NeededInputs::set(needed);
        make(&out).into()
    };
    crate::saved_hooks::take_pending()?;
    // An op whose tensor inputs are all inference tensors is not recorded outside inference
    // mode (they carry no autograd state), as in PyTorch: `inference_t.neg()` needs no grad.
    // A copy into a fresh tensor (`clone`, `to`: `CopyBackwards`) is, as PyTorch's `copy_`.
    if states.iter().all(|s| s.is_inference)
        && !crate::grad_mode::is_inference_mode_enabled()
        && !matches!(op, BackwardOp::Copy(_))
    {
        return Ok(out);
    }
    if op.saves_tensors() && !crate::grad_mode::is_inference_mode_enabled() && states.iter().any(|s| s.is_inference) {
        return Err(Error::InferenceSaved);
    }
    match out.unique_mut() {
        // The usual case: the result is not shared yet, so it needs no locking.
        Some(o) => {
            metas.push_output(&o.data.shape, o.data.dtype());
            o.grad_fn = Some(new_node(states, metas, op));
            o.output_nr = 0;
        }
        None => attach_states(&[&out], states, metas, op),
    }
    Ok(out)
}

thread_local! {
    static IN_BACKWARD: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Marks this thread as running backward formulas: their results are gradients, not tensors
/// whose missing history `autograd.explain` would need to account for.
pub struct InBackward;

impl InBackward {
    /// Marks this thread as running backward formulas until the returned guard is dropped.
    pub fn enter() -> InBackward {
        IN_BACKWARD.with(|d| d.set(d.get() + 1));
        InBackward
    }
    /// Whether this thread is running backward formulas.
    #[inline]
    pub fn active() -> bool {
        IN_BACKWARD.with(|d| d.get() > 0)
    }
}

impl Drop for InBackward {
    fn drop(&mut self) {
        IN_BACKWARD.with(|d| d.set(d.get() - 1));
    }
}

/// Remembers that `out` lost its history to grad mode being off (for `autograd.explain`).
pub fn note_not_recorded(out: &Tensor, inputs: &[&Tensor]) {
    if inputs.iter().any(|t| t.requires_grad()) {
        let inference = crate::grad_mode::is_inference_mode_enabled();
        out.lock().set_origin(crate::tensor::Origin::NotRecorded { inference, site: crate::sites::capture() });
    }
}

/// Inference tensors cannot be saved for backward outside inference mode (PyTorch's rule).
pub fn check_not_inference(inputs: &[&Tensor], op: &BackwardOp) -> Result<()> {
    if op.saves_tensors() && !crate::grad_mode::is_inference_mode_enabled() && inputs.iter().any(|t| t.is_inference()) {
        return Err(Error::InferenceSaved);
    }
    Ok(())
}

/// Attaches one node as `grad_fn` of several outputs; an error if a pack hook failed on a
/// tensor `op` saved.
pub fn attach(outputs: &[&Tensor], inputs: &[&Tensor], op: BackwardOp) -> Result<()> {
    crate::saved_hooks::take_pending()?;
    if crate::forward_ad::is_open() {
        if let Some(tangents) = crate::forward_ad::input_tangents(inputs) {
            return crate::forward_ad::attach_dual(outputs, inputs, op, tangents);
        }
    }
    attach_plain(outputs, inputs, op);
    Ok(())
}

/// [`attach`] without tangents.
pub(crate) fn attach_plain(outputs: &[&Tensor], inputs: &[&Tensor], op: BackwardOp) {
    let mut metas = Metas::default();
    let states = inputs.iter().map(|t| t.input_state(&mut metas)).collect();
    attach_states(outputs, states, metas, op)
}

/// [`attach`] with the inputs' states already read (their shapes and dtypes in `metas`).
pub fn attach_states(outputs: &[&Tensor], inputs: SmallVec<[InputState; 2]>, mut metas: Metas, op: BackwardOp) {
    if !inputs.iter().any(|s| s.requires_grad) {
        return;
    }
    for t in outputs {
        let d = t.lock();
        metas.push_output(&d.data.shape, d.data.dtype());
    }
    let node = new_node(inputs, metas, op);
    let last = outputs.len().saturating_sub(1);
    let mut node = Some(node);
    for (i, out) in outputs.iter().enumerate() {
        let handle = if i == last { node.take().expect("one handle per output") } else { node.clone().unwrap() };
        let mut o = out.lock();
        if !o.data.dtype().is_float() {
            continue; // integer outputs (indices) never require grad
        }
        o.grad_fn = Some(handle);
        o.output_nr = i as u32;
    }
}

/// A node for `op` with edges to `inputs`; `metas` has the shapes and dtypes of its inputs and
/// outputs.
fn new_node(inputs: SmallVec<[InputState; 2]>, metas: Metas, op: BackwardOp) -> NodeRef {
    let next = inputs.into_iter().map(|s| s.edge).collect();
    NodeRef::new(Node::with_edges(op, next, metas))
}

/// Bytes of the tensors that graph nodes currently keep for their backward (a tensor saved by
/// two nodes counts twice; views count the elements they show).
pub fn saved_bytes() -> usize {
    crate::stats::total(crate::stats::Stat::SavedBytes).max(0) as usize
}

impl Drop for Saved {
    fn drop(&mut self) {
        crate::stats::add(crate::stats::Stat::SavedBytes, -(self.bytes() as isize));
        if self.code() == PACKED {
            let value = PACKED_VALUES.lock().as_mut().and_then(|m| m.remove(&self.version));
            drop(value); // outside the lock: dropping it may run foreign code
        }
    }
}

/// The forward op a backward node belongs to, as PyTorch names it in messages: `MulBackward0`
/// gives `Mul`, `MyFnBackward` gives `MyFn`, `torch::autograd::CopySlices` stays.
pub fn forward_name(node_name: &str) -> &str {
    let trimmed = node_name.trim_end_matches(|c: char| c.is_ascii_digit());
    trimmed.strip_suffix("Backward").filter(|s| !s.is_empty()).unwrap_or(node_name)
}

/// A tensor kept by a node for its backward, with the version it had when saved.
pub struct SavedTensor {
    saved: Option<Saved>,
}

struct Saved {
    /// The tensor; for a packed one ([`PACKED`]) a shared empty placeholder.
    tensor: Tensor,
    /// The version the tensor had when saved; for a packed one, its key in [`PACKED_VALUES`].
    version: u64,
    /// The bytes of the elements it shows (bits 0-47), counted in [`saved_bytes`] while it is
    /// held, and for a saved output its `output_nr + 1` (bits 48-63). Saved outputs are kept
    /// without their `grad_fn` (which is this very node) to avoid a reference cycle, and
    /// re-attached to the node when unpacked.
    bytes_and_output: u64,
}

/// What a pack hook made of one saved tensor, before it is installed ([`SavedTensor::set_packed`]).
pub struct PackedValue(Packed);

/// A tensor given to a pack hook (`saved_tensors_hooks`), with where its gradient went: the
/// unpack hook returns values only, and the tensor backward gets is given this history back.
struct Packed {
    value: Box<dyn crate::saved_hooks::PackedTensor>,
    /// The input's `grad_fn` edge, or its leaf accumulator (`leaf`); `None` for an output or a
    /// tensor that needed no gradient.
    edge: Option<crate::graph::Edge>,
    leaf: bool,
    /// For a saved output, its number.
    output_nr: Option<u32>,
}

/// Packed saved tensors by key. Note [Packed tensors live beside the node]: a node's saved
/// state is inline in its arena slot and must stay 24 bytes per saved tensor (a second kind of
/// saved value inline would make every node larger), so what a pack hook returned is kept here,
/// under a key stored in place of the version, and removed when the saved tensor is dropped.
/// Packing is rare and already calls foreign code; the lock costs nothing beside it.
static PACKED_VALUES: parking_lot::Mutex<Option<rustc_hash::FxHashMap<u64, std::sync::Arc<Packed>>>> =
    parking_lot::Mutex::new(None);
static NEXT_PACKED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The tensor a packed saved tensor keeps in place of its own.
fn placeholder() -> Tensor {
    static EMPTY: std::sync::OnceLock<Tensor> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Tensor::from_vec(Vec::<f32>::new(), &[0]).expect("an empty tensor")).clone()
}

const BYTES_MASK: u64 = (1 << 48) - 1;
/// Codes of bits 48-63 for saved inputs overwritten by the in-place op that recorded the node
/// (Note [In-place target saved as input]): a view of the target's base, whose `grad_fn` is
/// then regenerated (`AsStridedBackward0`), or the base itself (`CopySlices`).
const OVERWRITTEN_VIEW: u64 = 0xfffe;
const OVERWRITTEN_BASE: u64 = 0xffff;
/// The code of a tensor a pack hook holds (Note [Packed tensors live beside the node]).
const PACKED: u64 = 0xfffd;

impl Saved {
    fn bytes(&self) -> usize {
        (self.bytes_and_output & BYTES_MASK) as usize
    }
    fn output_nr(&self) -> Option<u32> {
        match self.bytes_and_output >> 48 {
            0 | OVERWRITTEN_VIEW | OVERWRITTEN_BASE | PACKED => None,
            nr => Some(nr as u32 - 1),
        }
    }
    fn code(&self) -> u64 {
        self.bytes_and_output >> 48
    }
    /// What a pack hook made of the tensor, if one did.
    fn packed(&self) -> Option<std::sync::Arc<Packed>> {
        if self.code() != PACKED {
            return None;
        }
        PACKED_VALUES.lock().as_ref().and_then(|m| m.get(&self.version).cloned())
    }
}

impl SavedTensor {
    /// Nothing saved (for a node that saves a tensor only in some of its variants).
    pub fn none() -> Self {
        SavedTensor { saved: None }
    }

    /// Saves a forward input.
    pub fn input(t: &Tensor) -> Self {
        Self::keep(t.clone(), None)
    }

    /// Saves a forward output (`out.grad_fn` is the node that will hold it).
    pub fn output(t: &Tensor, output_nr: u32) -> Self {
        Self::keep(t.detach(), Some(output_nr))
    }

    fn keep(tensor: Tensor, output_nr: Option<u32>) -> Self {
        // Ops that save outputs have few of them (`output_nr` fits 16 bits).
        debug_assert!(output_nr.is_none_or(|nr| nr < 0xfffd));
        let output = output_nr.map_or(0, |nr| (nr as u64 + 1).min(0xfffd));
        if let Some(hooks) = crate::saved_hooks::current() {
            match Self::pack(&*hooks, &tensor, output_nr) {
                Ok(packed) => {
                    let key = NEXT_PACKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    PACKED_VALUES.lock().get_or_insert_with(Default::default).insert(key, std::sync::Arc::new(packed));
                    let saved = Saved { tensor: placeholder(), version: key, bytes_and_output: PACKED << 48 };
                    return SavedTensor { saved: Some(saved) };
                }
                // The op that saves returns the error once its node is made; the tensor is kept
                // as is meanwhile.
                Err(e) => crate::saved_hooks::set_pending(e),
            }
        }
        let (bytes, version) = {
            let g = tensor.lock();
            ((g.data.numel() * g.data.dtype().size()).min(BYTES_MASK as usize), g.data.version())
        };
        crate::stats::add(crate::stats::Stat::SavedBytes, bytes as isize);
        SavedTensor { saved: Some(Saved { tensor, version, bytes_and_output: bytes as u64 | output << 48 }) }
    }

    /// Hands `tensor` to the pack hook in force (with grad mode off), which must not write it.
    fn pack(
        hooks: &dyn crate::saved_hooks::SavedTensorHooks,
        tensor: &Tensor,
        output_nr: Option<u32>,
    ) -> Result<Packed> {
        let version = tensor.version();
        let value = {
            let _grad_off = crate::grad_mode::GradModeGuard::new(false);
            hooks.pack(tensor)?
        };
        if tensor.version() != version {
            return Err(Error::runtime(
                "A saved tensor pack hook is modifying its input in place. Tensors provided as input to pack hook cannot be modified by in-place operations as this can lead to unexpected side-effects. Please open an issue if you need to perform in-place operations on the input to a pack hook.",
            ));
        }
        let edge = if output_nr.is_some() { None } else { tensor.gradient_edge() };
        let leaf = edge.is_some() && tensor.grad_fn().is_none();
        Ok(Packed { value, edge, leaf, output_nr })
    }

    /// `grad_fn._raw_saved_x.register_hooks(pack, unpack)`, first step: the tensor to hand to
    /// the pack hook (with no lock held, see [`SavedTensor::packed_by`]), and whether it is an
    /// output, or PyTorch's error when there is none or hooks were registered already.
    pub fn for_hooks(&self) -> Result<(Tensor, Option<u32>)> {
        let Some(saved) = self.saved.as_ref() else {
            return Err(Error::runtime("Calling register_hooks on a saved tensor whose value is None is forbidden"));
        };
        if self.is_packed() {
            return Err(Error::runtime(
                "Calling register_hooks on a saved tensor whose hooks have already been set. Hint: only one pair of hooks is allowed at a time.",
            ));
        }
        let output = saved.bytes_and_output >> 48;
        Ok((saved.tensor.clone(), (output != 0).then(|| (output - 1) as u32)))
    }

    /// Second step: `tensor` (from [`SavedTensor::for_hooks`]) given to `hooks`' pack hook.
    pub fn packed_by(
        hooks: &dyn crate::saved_hooks::SavedTensorHooks,
        tensor: &Tensor,
        output_nr: Option<u32>,
    ) -> Result<PackedValue> {
        Self::pack(hooks, tensor, output_nr).map(PackedValue)
    }

    /// Last step: this saved tensor is now held by the pack hook's value, and read through the
    /// unpack hook, as PyTorch does.
    pub fn set_packed(&mut self, packed: PackedValue) -> Result<()> {
        self.for_hooks()?;
        if let Some(saved) = &self.saved {
            crate::stats::add(crate::stats::Stat::SavedBytes, -((saved.bytes_and_output & BYTES_MASK) as isize));
        }
        let key = NEXT_PACKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        PACKED_VALUES.lock().get_or_insert_with(Default::default).insert(key, std::sync::Arc::new(packed.0));
        self.saved = Some(Saved { tensor: placeholder(), version: key, bytes_and_output: PACKED << 48 });
        Ok(())
    }

    /// Whether a pack hook holds this tensor.
    pub fn is_packed(&self) -> bool {
        self.saved.as_ref().is_some_and(|s| s.code() == PACKED)
    }

    /// Whether anything was saved here (false for a variant that saves nothing, and once freed).
    pub fn is_held(&self) -> bool {
        self.saved.is_some()
    }

    /// The address of the foreign object a pack hook's value keeps alive (0 if none).
    /// Takes no lock it would wait for (a collector calls it): 0 while the table is busy.
    pub fn packed_owned(&self) -> usize {
        match &self.saved {
            Some(s) if s.code() == PACKED => PACKED_VALUES
                .try_lock()
                .and_then(|m| m.as_ref().and_then(|m| m.get(&s.version)).map(|p| p.value.owned()))
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// The saved tensor's shape, dtype and bytes, without unpacking it (`None` if packed or
    /// freed): what `saved_tensors_report` lists.
    pub fn describe(&self) -> Option<(Vec<usize>, crate::DType, usize)> {
        match &self.saved {
            Some(s) if s.code() != PACKED => {
                let g = s.tensor.lock();
                Some((g.data.shape.to_vec(), g.data.dtype(), s.bytes()))
            }
            _ => None,
        }
    }

    /// Whether both saved the very same tensor (`x * x`), while they hold it.
    pub fn same_tensor(&self, other: &SavedTensor) -> bool {
        match (&self.saved, &other.saved) {
            (Some(a), Some(b)) if a.code() != PACKED && b.code() != PACKED => a.tensor.same(&b.tensor),
            _ => false,
        }
    }

    /// The saved tensor, checked against in-place changes since it was saved.
    pub fn unpack(&self, ctx: &BackwardCtx) -> Result<Tensor> {
        let saved = self.saved.as_ref().ok_or(Error::GraphFreed)?;
        if let Some(packed) = saved.packed() {
            return Self::unpack_packed(&packed, packed.output_nr, ctx);
        }
        let tensor = &saved.tensor;
        let now = tensor.version();
        if now != saved.version {
            let data: TensorData = tensor.data();
            // PyTorch names a bool tensor by its backend type here, the others by their legacy name.
            let kind = if data.dtype() == crate::DType::Bool { "CPUBoolType" } else { data.dtype().legacy_name() };
            let desc = format!("{kind} {}", shape::fmt_shape(&data.shape));
            let producer = match saved.output_nr() {
                Some(nr) => format!(", which is output {nr} of {},", forward_name(ctx.name)),
                None if saved.code() == OVERWRITTEN_VIEW => String::from(", which is output 0 of AsStrided,"),
                None if saved.code() == OVERWRITTEN_BASE => {
                    String::from(", which is output 0 of torch::autograd::CopySlices,")
                }
                None => match tensor.grad_fn() {
                    // The running node is locked: take its name from `ctx`.
                    Some(f) if f.ptr_eq(ctx.node) => {
                        format!(", which is output {} of {},", tensor.output_nr(), forward_name(ctx.name))
                    }
                    Some(f) => format!(", which is output {} of {},", tensor.output_nr(), forward_name(f.name())),
                    None => String::new(),
                },
            };
            let hint = if crate::anomaly::is_enabled() {
                "the backtrace further above shows the operation that failed to compute its gradient. The variable in question was changed in there or anywhere later. Good luck!"
            } else {
                "enable anomaly detection to find the operation that failed to compute its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False)."
            };
            let detail = Self::where_it_happened(ctx, &data);
            return Err(Error::ModifiedInplace { desc, producer, version: now, expected: saved.version, hint, detail });
        }
        Ok(match saved.output_nr() {
            None => tensor.clone(),
            Some(nr) => {
                let t = Tensor::from_data(tensor.data());
                {
                    let mut g = t.lock();
                    g.grad_fn = Some(ctx.node.clone());
                    g.output_nr = nr;
                }
                t
            }
        })
    }

    /// A packed tensor back from its unpack hook, given the history of the tensor that was
    /// saved. No version check: what the hooks did with the tensor is theirs to answer for.
    fn unpack_packed(packed: &Packed, output_nr: Option<u32>, ctx: &BackwardCtx) -> Result<Tensor> {
        let values = packed.value.unpack()?;
        let t = Tensor::from_data(values.data());
        {
            let mut g = t.lock();
            match (output_nr, &packed.edge) {
                (Some(nr), _) => {
                    g.grad_fn = Some(ctx.node.clone());
                    g.output_nr = nr;
                }
                (None, Some(edge)) if packed.leaf => {
                    // Gradients flow into the saved leaf's own accumulator (its `.grad`).
                    g.requires_grad = true;
                    g.extras_mut().grad_accumulator = Some(edge.node.downgrade());
                }
                (None, Some(edge)) => {
                    g.grad_fn = Some(edge.node.clone());
                    g.output_nr = edge.input_nr;
                }
                (None, None) => {}
            }
        }
        Ok(t)
    }

    /// Frees the saved tensor (after a backward without `retain_graph`).
    pub fn release(&mut self) {
        self.saved = None;
    }

    /// For an op run in place, once `target` was written and rebased onto the op's node: a saved
    /// output is now `target`, which holds the same values and whose version counter then
    /// guards it.
    ///
    /// Note [In-place target saved as input]: `y.mul_(y)` saves `y` as an input of the node that
    /// then becomes `y`'s own `grad_fn`: kept as is, `y -> node -> y` would be a reference cycle
    /// that nothing frees. The same holds for a view of the target's base (`v.mul_(v)`,
    /// `v.mul_(w)` with `w` another view of the base) and for the base itself, whose history
    /// now runs through this node too (`CopySlices`). Such a saved input was overwritten by the
    /// write, so it can never be unpacked again: only the in-place error remains to be given.
    /// It is kept without its history (no cycle), with its old version (the check fails, as in
    /// PyTorch) and what the error names as its producer: for the target itself, what it now
    /// is, an output of this node; for a view, the `AsStrided` node its `grad_fn` becomes; for
    /// the base, its `CopySlices` (naming it needs no lock on the running node).
    pub fn retarget_output(&mut self, target: &Tensor) {
        let Some(s) = &mut self.saved else { return };
        // A packed tensor is not version-checked, and its history is an input's, kept as an edge.
        let (is_output, code) = (s.output_nr().is_some(), s.code());
        let tensor = &mut s.tensor;
        if is_output {
            *tensor = target.detach();
            s.version = target.version();
            return;
        }
        if code != 0 {
            return;
        }
        let target_base = target.view_base();
        let saved_base = tensor.view_base();
        let root = |t: &Tensor, base: &Option<Tensor>| base.clone().unwrap_or_else(|| t.clone());
        if !root(target, &target_base).same(&root(tensor, &saved_base)) {
            return;
        }
        let code = if saved_base.is_some() {
            OVERWRITTEN_VIEW
        } else if tensor.same(target) {
            (target.output_nr() as u64 + 1).min(0xfffd)
        } else {
            OVERWRITTEN_BASE
        };
        *tensor = tensor.detach();
        s.bytes_and_output = (s.bytes_and_output & BYTES_MASK) | (code << 48);
    }

    /// rustgrad's addition to the in-place error: who saved the tensor where, and what
    /// modified it where.
    fn where_it_happened(ctx: &BackwardCtx, data: &TensorData) -> String {
        let saved_at = ctx.site.clone();
        let mut parts = Vec::new();
        let op = forward_name(ctx.name);
        parts.push(match saved_at {
            Some(site) => format!("The tensor was saved for backward by {op} at {site}"),
            None => format!(
                "The tensor was saved for backward by {op} (call rustgrad.autograd.record_sites(True) to see where)"
            ),
        });
        if let Some((writer, site)) = data.counter().last_write() {
            parts.push(match site {
                Some(site) => format!("then modified by {writer} at {site}"),
                None => format!("then modified by {writer}"),
            });
        }
        format!("{}.", parts.join(", "))
    }
}

/// Runs the forward of a composite op (one built from other ops) without recording its steps:
/// the op then records a single node of its own, with its own backward formula.
pub fn untracked<T>(forward: impl FnOnce() -> Result<T>) -> Result<T> {
    let _grad_off = crate::grad_mode::GradModeGuard::new(false);
    let _no_notes = InBackward::enter();
    let _no_tangents = crate::forward_ad::Suspend::enter();
    forward()
}

/// Note [16-bit floats compute in float32], for ops built from several steps: when every
/// float operand is float16 (or every one bfloat16), `values` runs on float32 copies and its
/// result is rounded once, as PyTorch's fused CPU kernels for those dtypes do; otherwise the
/// operands go straight through. Call inside [`untracked`].
pub fn values_in_f32_if_half<const N: usize>(
    operands: [&Tensor; N],
    values: impl FnOnce([&Tensor; N]) -> Result<Tensor>,
) -> Result<Tensor> {
    use crate::dtype::DType;
    let half = operands.iter().find(|t| t.dtype().is_float()).map(|t| t.dtype()).filter(|d| d.is_half());
    let Some(dtype) = half.filter(|&d| operands.iter().all(|t| !t.dtype().is_float() || t.dtype() == d)) else {
        return values(operands);
    };
    let mut wide: [Option<Tensor>; N] = std::array::from_fn(|_| None);
    for (w, t) in wide.iter_mut().zip(operands) {
        if t.dtype() == dtype {
            *w = Some(crate::ops::view::to_dtype(t, DType::F32)?);
        }
    }
    let args: [&Tensor; N] = std::array::from_fn(|i| wide[i].as_ref().unwrap_or(operands[i]));
    let out = values(args)?;
    if out.dtype() == DType::F32 {
        crate::ops::view::to_dtype(&out, dtype)
    } else {
        Ok(out)
    }
}

/// One tensor a graph keeps for backward (see [`saved_report`]).
pub struct SavedEntry {
    /// The node that saved it (`MulBackward0`).
    pub node: &'static str,
    /// PyTorch's name of the saved tensor (`self`, `other`, `result`).
    pub name: &'static str,
    /// Its shape, dtype and bytes (`None` if a pack hook holds it instead).
    pub described: Option<(Vec<usize>, crate::DType, usize)>,
    /// Where the node's forward call happened, if sites were recorded.
    pub site: Option<crate::sites::Site>,
}

/// Every tensor the graph behind `roots` keeps for backward, each node once, in the order a
/// walk from the roots meets them (iterative: graphs of any depth).
pub fn saved_report(roots: &[NodeRef]) -> Vec<SavedEntry> {
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<NodeRef> = roots.iter().filter(|n| seen.insert(n.key())).cloned().collect();
    stack.reverse();
    let mut entries = Vec::new();
    while let Some(node) = stack.pop() {
        let next: SmallVec<[NodeRef; 2]> = node.with(|n| {
            let site = n.site();
            n.op.for_each_saved(&mut |name, saved| {
                if saved.is_held() {
                    entries.push(SavedEntry { node: n.name(), name, described: saved.describe(), site: site.clone() });
                }
            });
            n.next.iter().flatten().map(|e| e.node.clone()).collect()
        });
        for child in next.into_iter().rev() {
            if seen.insert(child.key()) {
                stack.push(child);
            }
        }
    }
    entries
}
