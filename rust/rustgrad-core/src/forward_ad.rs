//! Forward-mode AD (`torch.autograd.forward_ad`): a tensor may carry a tangent, and every op
//! on tensors with tangents gives its result the Jacobian-vector product of the op.
//!
//! As in PyTorch there is one dual level at a time, process-wide. Tangents belong to the level
//! that was open when they were set: each level has a new generation number, and a tangent of
//! an older generation reads as absent; leaving a level also drops them (Note [Tangents are
//! dropped at level exit]).
//!
//! An op's tangent comes from its own jvp formula ([`crate::autograd::Backward::jvp`]) where it
//! has one, written beside its backward in the same differentiable ops; otherwise from the
//! backward formula:
//!
//! Note [Tangents from the backward formula]: an op's tangent is computed from its backward
//! formula. The backward `u -> J^T u` is linear in the output gradient `u`, so differentiating
//! `<J^T u, t>` with respect to `u` gives `J t`, the tangent. Both steps use the op's own
//! differentiable backward, so every op that has a backward has a tangent, with no formula of
//! its own, and the tangent is itself differentiable (forward-over-reverse). It costs a small
//! backward through the backward formula per op, which an explicit formula saves.

use crate::autograd::{BackwardCtx, InBackward, JvpCtx};
use crate::error::{Error, Result};
use crate::grad_mode::GradModeGuard;
use crate::graph::{Node, NodeRef};
use crate::ops::BackwardOp;
use crate::tensor::Tensor;
use smallvec::SmallVec;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Whether a dual level is open (checked once per recorded op).
static OPEN: AtomicBool = AtomicBool::new(false);
/// The generation of the open level (or of the last one).
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set while a tangent is being computed: the ops of that computation get none themselves.
    static SUSPENDED: Cell<bool> = const { Cell::new(false) };
    /// Whether ops' own jvp formulas are used (else every tangent comes from the backward
    /// formula; tests compare the two).
    static FORMULAS: Cell<bool> = const { Cell::new(true) };
}

/// Turns this thread's use of the ops' own jvp formulas on or off (off: every tangent is
/// derived from the backward formula); returns the previous setting. For tests.
pub fn set_jvp_formulas(enabled: bool) -> bool {
    FORMULAS.with(|f| f.replace(enabled))
}

/// Whether a dual level is open.
#[inline]
pub fn is_open() -> bool {
    OPEN.load(Ordering::Relaxed)
}

/// Opens the dual level; returns its number (always 0: levels do not nest).
pub fn enter_level() -> Result<u64> {
    if OPEN.swap(true, Ordering::AcqRel) {
        return Err(Error::runtime("Nested forward mode AD is not supported at the moment"));
    }
    GENERATION.fetch_add(1, Ordering::AcqRel);
    Ok(0)
}

/// Closes the dual level: every tangent set in it reads as absent from now on, and is dropped
/// (Note [Tangents are dropped at level exit]).
pub fn exit_level(level: u64) -> Result<()> {
    if level != 0 || !is_open() {
        return Err(Error::runtime(
            "Trying to exit a forward AD level that was not the last one that was created. This is not supported.",
        ));
    }
    GENERATION.fetch_add(1, Ordering::AcqRel);
    OPEN.store(false, Ordering::Release);
    let holders = std::mem::take(&mut *HOLDERS.lock());
    for holder in holders.cells {
        let Some(cell) = holder.upgrade() else { continue };
        let tensor = Tensor::from_cell(cell);
        // Taken out under the lock, dropped after it: dropping a tangent can free graphs.
        let dropped = tensor.lock().extras.as_deref_mut().and_then(|e| e.tangent.take());
        drop(dropped);
    }
    Ok(())
}

// Note [Tangents are dropped at level exit]: tangents live on their tensors, and a tangent's
// graph holds the nodes of the ops that made it (and what they saved), so a tangent left on a
// tensor after its level would keep all that alive for as long as the tensor lives, and any
// path from that graph back to the tensor would be a cycle. As PyTorch does, leaving the level
// drops every tangent set in it: each tensor given a tangent is remembered (weakly) in
// `HOLDERS`, and its tangent taken away at exit. (In-place ops avoid the cycles they could make
// themselves: Note [Tangents of views].)

/// The tensors given a tangent at the open level, weakly (dead ones are pruned as it grows).
#[derive(Default)]
struct Holders {
    cells: Vec<std::sync::Weak<crate::tensor::TensorCell>>,
    /// The length after the last pruning; the list is pruned again at twice that.
    pruned_len: usize,
}

static HOLDERS: parking_lot::Mutex<Holders> = parking_lot::Mutex::new(Holders { cells: Vec::new(), pruned_len: 0 });

/// Remembers that `t` holds a tangent of the open level.
fn remember_holder(t: &Tensor) {
    let mut holders = HOLDERS.lock();
    if holders.cells.len() >= 2 * holders.pruned_len.max(1024) {
        holders.cells.retain(|w| w.strong_count() > 0);
        holders.pruned_len = holders.cells.len();
    }
    holders.cells.push(t.downgrade());
}

/// `t`'s tangent at the open level, if it has one. A view of a base with a tangent has the same
/// view of the base's current tangent (Note [Tangents of views]).
pub fn tangent(t: &Tensor) -> Option<Tensor> {
    if !is_open() {
        return None;
    }
    let generation = GENERATION.load(Ordering::Acquire);
    let (own, base) = {
        let g = t.lock();
        let own = g.extras.as_deref().and_then(|e| e.tangent.as_ref()).filter(|(gen, _)| *gen == generation);
        (own.map(|(_, t)| t.clone()), g.view().map(|v| v.base.clone()))
    };
    if let Some(base) = base {
        if let Some(of_base) = stored_tangent(&base, generation).filter(|bt| mirrors(&base, bt)) {
            if own.as_ref().is_some_and(|o| std::sync::Arc::ptr_eq(&o.data().storage, &of_base.data().storage)) {
                return own;
            }
            let _suspend = Suspend::enter();
            if let Ok(view) = same_view(&of_base, t) {
                set_tangent(t, view.clone());
                return Some(view);
            }
        }
    }
    own
}

/// The tangent stored on `t` itself at `generation`.
fn stored_tangent(t: &Tensor, generation: u64) -> Option<Tensor> {
    let g = t.lock();
    g.extras.as_deref().and_then(|e| e.tangent.as_ref()).filter(|(gen, _)| *gen == generation).map(|(_, t)| t.clone())
}

/// Gives `t` a tangent at the open level (a custom Function's `jvp` result); it must have `t`'s shape.
pub fn give(t: &Tensor, tangent: &Tensor) -> Result<()> {
    check_size(t, tangent)?;
    set_tangent(t, tangent.clone());
    Ok(())
}

/// PyTorch's error for a tangent whose shape is not its primal's.
fn check_size(primal: &Tensor, tangent: &Tensor) -> Result<()> {
    if primal.shape() != tangent.shape() {
        return Err(Error::runtime(format!(
            "Trying to set a forward gradient that has a different size than that of the original Tensor, this is not supported. Tensor is of size {} while the given forward gradient is of size {}.",
            crate::shape::fmt_shape(&primal.shape()),
            crate::shape::fmt_shape(&tangent.shape())
        )));
    }
    Ok(())
}

/// Gives `t` a tangent at the open level (also after an in-place op wrote it).
pub(crate) fn set_tangent(t: &Tensor, tangent: Tensor) {
    let generation = GENERATION.load(Ordering::Acquire);
    let previous = t.lock().extras_mut().tangent.replace((generation, tangent));
    if previous.as_ref().is_none_or(|(gen, _)| *gen != generation) {
        remember_holder(t);
    }
    drop(previous);
}

/// `make_dual(primal, tangent)`: a view of `primal` whose tangent is `tangent`.
pub fn make_dual(primal: &Tensor, tangent: &Tensor) -> Result<Tensor> {
    if !is_open() {
        return Err(Error::runtime(
            "Trying to create a dual Tensor for forward AD but no level exists, make sure to enter_dual_level() first.",
        ));
    }
    if !primal.dtype().is_float() {
        return Err(Error::Value(format!(
            "Expected primal to be floating point or complex, but got: torch.{}",
            primal.dtype().name()
        )));
    }
    if !tangent.dtype().is_float() {
        return Err(Error::Value(format!(
            "Expected tangent to be floating point or complex, but got: torch.{}",
            tangent.dtype().name()
        )));
    }
    check_size(primal, tangent)?;
    let dims: Vec<i64> = primal.shape().iter().map(|&d| d as i64).collect();
    let dual = crate::ops::view::view(primal, &dims)?;
    // Note [Tangents of views]: a tangent laid out otherwise is copied into the dual's layout.
    let expanded = {
        let d = dual.data();
        d.shape.iter().zip(&d.strides).any(|(&n, &s)| s == 0 && n > 1)
    };
    let tangent = if mirrors(&dual, tangent) || tangent.requires_grad() || expanded {
        tangent.clone()
    } else {
        let copy = zeros_mirroring(&dual)?;
        write_into(&copy, tangent)?;
        copy
    };
    set_tangent(&dual, tangent);
    Ok(dual)
}

/// `unpack_dual(t)`: a view of `t` without tangent, and `t`'s tangent.
pub fn unpack_dual(t: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
    let tangent = tangent(t);
    let primal = {
        let _suspend = Suspend::enter();
        crate::ops::view::alias_of(t)?
    };
    Ok((primal, tangent))
}

/// Gives `copy` (a private copy of `target`'s values made by an in-place op) `target`'s tangent.
pub(crate) fn copy_tangent(target: &Tensor, copy: &Tensor) {
    if let Some(t) = tangent(target) {
        set_tangent(copy, t);
    }
}

/// How an in-place op changes its target's tangent, applied once the values are written.
pub(crate) enum TangentUpdate {
    /// The target gets this tangent (a tensor that is not a view); its views see it.
    Replace(Tensor),
    /// The target is a view of a base with a tangent: the base gets a new tangent, its old one
    /// with the view's elements replaced by `new`.
    IntoBase { base: Tensor, new: Tensor },
    /// The target is a view with a tangent of its own (a dual made by `make_dual`, or a view
    /// of one) and a base without: `new` is written into that tangent, as PyTorch does.
    Into { old: Tensor, new: Tensor },
}

impl TangentUpdate {
    pub(crate) fn apply(self, target: &Tensor) -> Result<()> {
        match self {
            TangentUpdate::Replace(t) => set_tangent(target, t),
            TangentUpdate::Into { old, new } => write_into(&old, &new)?,
            TangentUpdate::IntoBase { base, new } => {
                // A fresh tensor, written into: nothing saved it, so its graph (the old tangent's
                // and `new`'s) cannot lead back to it.
                let updated = zeros_mirroring(&base)?;
                if let Some(old) = stored_tangent(&base, GENERATION.load(Ordering::Acquire)) {
                    write_into(&updated, &old)?;
                }
                write_into(&same_view(&updated, target)?, &new)?;
                set_tangent(&base, updated);
            }
        }
        Ok(())
    }
}

/// For an in-place op about to write `result` into `target`: how `target`'s tangent changes.
/// New values that do not depend on a tangent (`fill_`, `zero_`, `copy_` of a plain tensor)
/// have tangent zero, so a target with a tangent never keeps its old one.
pub(crate) fn inplace_tangent(target: &Tensor, result: &Tensor) -> Result<Option<TangentUpdate>> {
    if !is_open() {
        return Ok(None);
    }
    let old = tangent(target);
    let new = match tangent(result) {
        Some(t) => t,
        None if old.is_some() => crate::creation::zeros_like(target),
        None => return Ok(None),
    };
    let Some(base) = target.view_base() else {
        return Ok(Some(TangentUpdate::Replace(new)));
    };
    let generation = GENERATION.load(Ordering::Acquire);
    let base_has_tangent = stored_tangent(&base, generation).is_some_and(|bt| mirrors(&base, &bt));
    match old {
        Some(old) if !base_has_tangent => {
            if mirrors(target, &old) && old.dtype() == new.dtype() {
                Ok(Some(TangentUpdate::Into { old, new }))
            } else {
                Err(Error::NotImplemented(String::from(
                    "Trying to use forward AD with an in-place op on a view whose tangent is laid out differently from it, which is not supported.",
                )))
            }
        }
        _ => Ok(Some(TangentUpdate::IntoBase { base, new })),
    }
}

// Note [Tangents of views]: as in PyTorch, a view's tangent is the same view of its base's
// tangent, so an in-place op on either is seen by both. It is looked up when asked for
// ([`tangent`]): the view of the base's current tangent, taken with `as_strided` at the view's
// geometry (and kept on the view until the base's tangent changes). This needs a tangent laid
// out as its primal is (same strides and offset in a storage of the same length): `make_dual`
// copies a tangent that is not into that layout, and an op's output (fresh and contiguous)
// gets a contiguous tangent.
//
// In-place ops never write into a tangent that a formula may have saved: a tensor that is not a
// view gets its new tangent as a replacement, and a view's base gets a new tangent, a fresh
// copy of its old one with the view's elements written. Writing into the old tangent in place
// would give it a history leading, through the new tangent's formula (which may have saved a
// view of it, as `t * w` saves `t`), back to itself: a reference cycle never freed. Only a dual
// (and its views), whose base has no tangent, has `new` written into its own tangent, the one
// given to `make_dual`, as in PyTorch.

/// Whether `tangent` lays its elements out exactly as `primal` does.
fn mirrors(primal: &Tensor, tangent: &Tensor) -> bool {
    let (p, t) = (primal.data(), tangent.data());
    p.shape == t.shape
        && p.strides == t.strides
        && p.offset == t.offset
        && p.storage.len() == t.storage.len()
        && p.dtype() == t.dtype()
}

/// `like`'s geometry (sizes, strides, offset) on `tangent`'s storage.
fn same_view(tangent: &Tensor, like: &Tensor) -> Result<Tensor> {
    let d = like.data();
    let size: Vec<i64> = d.shape.iter().map(|&s| s as i64).collect();
    let stride: Vec<i64> = d.strides.iter().map(|&s| s as i64).collect();
    crate::ops::strided::as_strided(tangent, &size, &stride, Some(d.offset as i64), "AsStridedBackward0")
}

/// Zeros laid out as `primal` is (a storage of the same length seen through its geometry).
fn zeros_mirroring(primal: &Tensor) -> Result<Tensor> {
    let (len, dtype, plain) = {
        let d = primal.data();
        (d.storage.len(), d.dtype(), d.offset == 0 && d.is_contiguous() && d.storage.len() == d.numel())
    };
    if plain {
        return Ok(crate::creation::zeros_like(primal));
    }
    let storage = crate::creation::zeros(&[len], dtype);
    same_view(&storage, primal)
}

/// `dst.copy_(src)` for tangents: differentiable, without tangents of its own.
fn write_into(dst: &Tensor, src: &Tensor) -> Result<()> {
    let _suspend = Suspend::enter();
    crate::inplace::apply_inplace_reading(dst, crate::inplace::Reads::operands(&[src]), |t| {
        crate::ops::fill::copied(t, src)
    })
}

/// The tangent of a view `out` of an input with a tangent laid out as that input: the same view
/// of the input's tangent (Note [Tangents of views]).
fn view_of_input_tangent(out: &Tensor, inputs: &[&Tensor], tangents: &[Option<Tensor>]) -> Result<Option<Tensor>> {
    if out.view_base().is_none() {
        return Ok(None);
    }
    let storage = out.data().storage.clone();
    for (input, t) in inputs.iter().zip(tangents) {
        let Some(t) = t else { continue };
        let same = std::sync::Arc::ptr_eq(&input.data().storage, &storage);
        if same && input.dtype() == out.dtype() && mirrors(input, t) {
            return same_view(t, out).map(Some);
        }
    }
    Ok(None)
}

/// Marks this thread as computing a tangent (see [`SUSPENDED`]); composite ops also run their
/// steps under it (their own node gives the tangent).
pub(crate) struct Suspend(bool);

impl Suspend {
    pub(crate) fn enter() -> Suspend {
        Suspend(SUSPENDED.with(|s| s.replace(true)))
    }
}

impl Drop for Suspend {
    fn drop(&mut self) {
        SUSPENDED.with(|s| s.set(self.0));
    }
}

/// The tangents of `inputs` if any has one (and this thread is not computing a tangent).
pub(crate) fn input_tangents(inputs: &[&Tensor]) -> Option<SmallVec<[Option<Tensor>; 2]>> {
    if SUSPENDED.with(|s| s.get()) {
        return None;
    }
    let tangents: SmallVec<[Option<Tensor>; 2]> = inputs.iter().map(|t| tangent(t)).collect();
    tangents.iter().any(Option::is_some).then_some(tangents)
}

/// Gives `out` (the result of the op whose backward node is `node`, on `inputs` with
/// `tangents`) its tangent (Note [Tangents from the backward formula]).
pub(crate) fn give_tangent(
    node: &NodeRef,
    out: &Tensor,
    inputs: &[&Tensor],
    tangents: &[Option<Tensor>],
) -> Result<()> {
    give_tangents(node, &[out], inputs, tangents)
}

/// [`give_tangent`] for the outputs of an op with several (integer outputs get none).
pub(crate) fn give_tangents(
    node: &NodeRef,
    outs: &[&Tensor],
    inputs: &[&Tensor],
    tangents: &[Option<Tensor>],
) -> Result<()> {
    let _suspend = Suspend::enter();
    if let [out] = outs {
        if let Some(t) = view_of_input_tangent(out, inputs, tangents)? {
            set_tangent(out, t);
            return Ok(());
        }
    }
    // The tangent keeps a graph when something could differentiate it.
    let grad_enabled = crate::grad_mode::is_grad_enabled();
    let create_graph = grad_enabled
        && (tangents.iter().flatten().any(Tensor::requires_grad) || inputs.iter().any(|t| t.requires_grad()));
    if let [out] = outs {
        if out.dtype().is_float() && out.view_base().is_none() && FORMULAS.with(Cell::get) {
            let explicit = {
                let _grad = GradModeGuard::new(create_graph);
                let _formulas = InBackward::enter();
                let converted = in_input_dtypes(inputs, tangents)?;
                let tangents = converted.as_deref().unwrap_or(tangents);
                node.with(|n| {
                    let backward =
                        BackwardCtx { node, name: n.name(), needs: inputs.iter().map(|_| true).collect(), site: None };
                    n.op.jvp(&JvpCtx { backward, inputs, tangents, out })
                })
            };
            if let Some(tangent) = explicit {
                let tangent = laid_out_as(tangent?, out)?;
                return finish_tangent(out, tangent, tangents, grad_enabled);
            }
        }
    }
    let _grad_on = GradModeGuard::new(true);
    let _formulas = InBackward::enter();
    let mut us: Vec<Tensor> = Vec::new();
    let mut grads_out: SmallVec<[Option<Tensor>; 2]> = SmallVec::new();
    for out in outs {
        if out.dtype().is_float() {
            let u = crate::creation::zeros_like(out);
            u.set_requires_grad(true)?;
            grads_out.push(Some(u.clone()));
            us.push(u);
        } else {
            grads_out.push(None);
        }
    }
    let pulled = node.with(|n| {
        let ctx =
            BackwardCtx { node, name: n.name(), needs: tangents.iter().map(Option::is_some).collect(), site: None };
        n.op.apply(&ctx, &grads_out)
    })?;
    let mut outputs = Vec::new();
    let mut along = Vec::new();
    for ((g, t), input) in pulled.into_iter().zip(tangents).zip(inputs) {
        if let (Some(g), Some(t)) = (g, t) {
            if g.requires_grad() {
                // Backward formulas may leave a broadcast input's gradient unreduced (the
                // engine reduces it): reduce it here.
                let shape = input.shape();
                let g = if g.shape() != shape { crate::ops::view::sum_to(&g, &shape)? } else { g };
                along.push(Some(if t.dtype() == g.dtype() {
                    t.clone()
                } else {
                    crate::ops::view::to_dtype(t, g.dtype())?
                }));
                outputs.push(g);
            }
        }
    }
    let mut found = if outputs.is_empty() {
        vec![None; us.len()]
    } else {
        crate::engine::grad(&outputs, &along, &us, false, create_graph, true)?
    }
    .into_iter();
    for out in outs.iter().filter(|o| o.dtype().is_float()) {
        let tangent = match found.next().flatten() {
            Some(t) if create_graph => t,
            Some(t) => t.detach(),
            None => crate::creation::zeros_like(out),
        };
        finish_tangent(out, tangent, tangents, grad_enabled)?;
    }
    Ok(())
}

/// The tangents in their inputs' dtypes, if one is not (`None`: all are).
fn in_input_dtypes(inputs: &[&Tensor], tangents: &[Option<Tensor>]) -> Result<Option<Vec<Option<Tensor>>>> {
    let differs = |(input, t): (&&Tensor, &Option<Tensor>)| {
        t.as_ref().is_some_and(|t| input.dtype().is_float() && t.dtype() != input.dtype())
    };
    if !inputs.iter().zip(tangents).any(differs) {
        return Ok(None);
    }
    let converted = inputs
        .iter()
        .zip(tangents)
        .map(|(input, t)| match t {
            Some(t) if input.dtype().is_float() && t.dtype() != input.dtype() => {
                crate::ops::view::to_dtype(t, input.dtype()).map(Some)
            }
            t => Ok(t.clone()),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(converted))
}

/// An explicit formula's tangent in `out`'s dtype, shape and layout (a formula may leave it
/// broadcast, or in a tangent's wider dtype).
fn laid_out_as(tangent: Tensor, out: &Tensor) -> Result<Tensor> {
    let tangent =
        if tangent.dtype() == out.dtype() { tangent } else { crate::ops::view::to_dtype(&tangent, out.dtype())? };
    let shape = out.shape();
    let tangent = if tangent.shape() == shape {
        tangent
    } else {
        let sizes: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        crate::ops::view::expand(&tangent, &sizes)?
    };
    if mirrors(out, &tangent) {
        Ok(tangent)
    } else {
        crate::ops::view::clone_contiguous(&tangent)
    }
}

/// Gives `out` its new `tangent`.
fn finish_tangent(out: &Tensor, tangent: Tensor, tangents: &[Option<Tensor>], grad_enabled: bool) -> Result<()> {
    // A tangent passed through unchanged (`clone`'s is its input's) is copied: an in-place op on
    // the output writes into its tangent, which must not change the input's.
    let shares_input =
        tangents.iter().flatten().any(|t| std::sync::Arc::ptr_eq(&t.data().storage, &tangent.data().storage));
    let tangent = if shares_input { crate::ops::view::clone_contiguous(&tangent)? } else { tangent };
    let tangent = if grad_enabled && out.requires_grad() && !tangent.requires_grad() && out.view_base().is_none() {
        joined_to(&tangent, out)?
    } else {
        tangent
    };
    set_tangent(out, tangent);
    Ok(())
}

/// `tangent + 0` where the zero is a sum over no elements of `out`: the same values, now part
/// of `out`'s graph. PyTorch's tangent of an output that requires grad requires grad too (its
/// formulas mention the primals even where their terms vanish, as in `d * 2`), and
/// differentiating it gives zeros rather than an error; an empty sum keeps infinities in `out`
/// from turning the tangent into NaN, as `0 * out` would.
fn joined_to(tangent: &Tensor, out: &Tensor) -> Result<Tensor> {
    let flat = crate::ops::view::reshape(out, &[-1])?;
    let nothing = crate::ops::index::slice(&flat, 0, 0, 0, 1)?;
    let zero = crate::ops::reduce::sum(&nothing, None, false, None)?;
    crate::ops::arith::add(tangent, &zero)
}

/// [`crate::autograd::attach`] while an input has a tangent: attaches the node as usual if the
/// op is recorded, then gives the outputs their tangents.
pub(crate) fn attach_dual(
    outputs: &[&Tensor],
    inputs: &[&Tensor],
    op: BackwardOp,
    tangents: SmallVec<[Option<Tensor>; 2]>,
) -> Result<()> {
    let recorded = crate::grad_mode::is_recording() && inputs.iter().any(|t| t.requires_grad());
    let node = if recorded {
        crate::autograd::attach_plain(outputs, inputs, op);
        outputs.iter().find_map(|o| o.grad_fn())
    } else {
        Some(NodeRef::new(Node::new(op)))
    };
    let Some(node) = node else { return Ok(()) };
    give_tangents(&node, outputs, inputs, &tangents)
}

/// [`crate::autograd::record`] while a dual level is open: records as usual, then gives the
/// result its tangent if an input has one.
pub(crate) fn record_dual(out: Tensor, inputs: &[&Tensor], make: impl FnOnce(&Tensor) -> BackwardOp) -> Result<Tensor> {
    let Some(tangents) = input_tangents(inputs).filter(|_| out.dtype().is_float()) else {
        return crate::autograd::record_plain(out, inputs, make);
    };
    let mut make = Some(make);
    let out = crate::autograd::record_plain(out, inputs, |o| (make.take().expect("made once"))(o))?;
    // The node recorded for the graph if there is one, else one made for the tangent alone.
    let node = match (make.take(), out.grad_fn()) {
        (None, Some(node)) => node,
        (Some(make), _) => NodeRef::new(Node::new(make(&out))),
        (None, None) => {
            return Err(Error::NotImplemented(String::from(
                "Trying to use forward AD with an op on inference tensors, which is not supported.",
            )))
        }
    };
    give_tangent(&node, &out, inputs, &tangents)?;
    Ok(out)
}
