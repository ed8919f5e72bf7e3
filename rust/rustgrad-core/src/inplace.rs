//! In-place ops (`add_`, `mul_`, `-=`, `zero_`, `x[i] = v`, ...): computed out of place, then
//! written back, with the target's history rewritten as PyTorch does.
//!
//! - On a tensor that is not a view, the target's `grad_fn` becomes the op's node (the target
//!   is "rebased"); the formula sees a copy of the target's old values (PyTorch's `original_self`).
//! - On a view, the base is rebased onto a [`CopySlices`] node wrapping the op's node, and the
//!   view's own `grad_fn` is regenerated from the base (Note [Views and in-place] in tensor.rs).

use crate::autograd::{grad0, Backward, BackwardCtx, Grads};
use crate::error::{Error, Result};
use crate::grad_mode::{is_inference_mode_enabled, is_recording};
use crate::graph::{Edge, InputMeta, Metas, Node, NodeRef};
use crate::kernels;
use crate::ops::compare::where_;
use crate::ops::strided::{put, take, AsStridedBackward, Geometry, ViewGeometry};
use crate::ops::view::to_dtype;
use crate::shape;
use crate::tensor::{Tensor, TensorData, ViewCreation};
use smallvec::{smallvec, SmallVec};
use std::sync::Arc;

/// `target = compute(target)` in place, for an op that reads nothing but its target
/// (`exp_`, `x.mul_(2)`): see [`apply_inplace_reading`].
pub fn apply_inplace(target: &Tensor, compute: impl Fn(&Tensor) -> Result<Tensor>) -> Result<()> {
    apply_inplace_reading(target, Reads::TARGET, compute)
}

/// `target = compute(target)` in place, where `compute` also reads the tensors in `reads`.
/// After the autograd checks and before computing, the memory-overlap rules are applied
/// ([`check_overlaps`]), so they win over shape and dtype errors, as in PyTorch.
pub fn apply_inplace_reading(
    target: &Tensor,
    reads: Reads<'_>,
    compute: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<()> {
    if target.is_inference() && !is_inference_mode_enabled() {
        return Err(Error::InferenceInplace);
    }
    let recording = is_recording();
    let requires_grad = target.requires_grad();
    if recording && requires_grad {
        check_inplace(target)?;
    }
    check_overlaps(target, &reads)?;
    let source = if recording && requires_grad {
        // Same autograd identity, private copy of the values.
        let copy = Tensor::from_data(kernels::contiguous_copy(&target.data()));
        {
            let (grad_fn, output_nr) = (target.grad_fn(), target.output_nr());
            let mut c = copy.lock();
            c.grad_fn = grad_fn;
            c.output_nr = output_nr;
        }
        crate::forward_ad::copy_tangent(target, &copy);
        copy
    } else {
        target.clone()
    };
    let mut result = compute(&source)?;
    if recording && !requires_grad && result.requires_grad() {
        // The target did not require grad but another operand does (`x.mul_(w)`): the op may
        // have saved the target itself, which the write below changes. Run it again on a
        // private copy of the old values, as PyTorch saves `original_self` (rare: computed twice).
        let copy = Tensor::from_data(kernels::contiguous_copy(&target.data()));
        result = compute(&copy)?;
    }
    let rebase = recording && result.requires_grad();
    if rebase && !requires_grad {
        check_view_creation(target)?;
    }
    let tangent = crate::forward_ad::inplace_tangent(target, &result)?;
    write_result(target, &result)?;
    if let Some(update) = tangent {
        update.apply(target)?;
    }
    if rebase {
        if let Some(node) = result.grad_fn() {
            rebase_history(target, node.clone(), result.output_nr());
            // An op that saved its output (exp_, sigmoid_, ...) now saved `target`: later
            // in-place changes of it must fail the version check, as in PyTorch. One that saved
            // `target` as an input must not keep it (Note [In-place target saved as input]).
            node.with(|n| n.op.retarget_outputs(target));
        }
    }
    Ok(())
}

/// PyTorch's `check_inplace` for a target that requires grad, under grad mode.
fn check_inplace(target: &Tensor) -> Result<()> {
    check_view_creation(target)?;
    match target.view_base() {
        Some(base) if base.is_leaf() => Err(Error::ViewOfLeafInplace),
        None if target.is_leaf() => Err(Error::LeafInplace),
        _ => Ok(()),
    }
}

/// Refuses in-place ops on views whose history cannot be rewritten (PyTorch's `handle_view_on_rebase`).
fn check_view_creation(target: &Tensor) -> Result<()> {
    target.check_view_history()?;
    let creation = target.lock().view().map(|v| v.creation);
    match creation {
        Some(ViewCreation::NoGrad) if target.grad_fn().is_none() => Err(Error::NoGradViewInplace),
        Some(c @ (ViewCreation::NoGrad | ViewCreation::MultiOutput)) => {
            Err(Error::runtime(rebase_message(target, c, false).to_string()))
        }
        Some(ViewCreation::CustomFunction) => {
            let (name, output_nr) = match target.grad_fn() {
                Some(f) => (crate::autograd::forward_name(f.name()).to_string(), target.output_nr()),
                None => (String::from("a custom Function"), 0),
            };
            Err(Error::CustomFunctionViewInplace { output_nr, function: name })
        }
        _ => Ok(()),
    }
}

fn meta_of(d: &TensorData) -> InputMeta {
    InputMeta { shape: d.shape.clone(), dtype: d.dtype() }
}

/// Makes `node` (output `output_nr`) the history of `target`, or of its base if it is a view.
pub fn rebase_history(target: &Tensor, node: NodeRef, output_nr: u32) {
    let base = target.view_base();
    let Some(base) = base else {
        set_grad_fn(target, node, output_nr);
        return;
    };
    let (bd, vd) = (base.data(), target.data());
    let (fn_next, fn_meta) = node.with(|n| (n.next.clone(), n.metas.inputs()));
    let mut next: SmallVec<[Option<Edge>; 2]> = smallvec![base.gradient_edge()];
    next.extend(fn_next.into_iter().skip(1));
    let mut input_meta: SmallVec<[InputMeta; 2]> = smallvec![meta_of(&bd)];
    input_meta.extend(fn_meta.into_iter().skip(1));
    let geometry = Arc::new(ViewGeometry { base: Geometry::of(&bd), view: Geometry::of(&vd) });
    let copy_slices = NodeRef::new(Node::with_edges(
        CopySlices { op_node: node, geometry }.into(),
        next,
        Metas::new(&input_meta, [&meta_of(&bd)]),
    ));
    set_grad_fn(&base, copy_slices, 0);
    // The view's own grad_fn is regenerated on next use: the write bumped the shared version.
}

/// Sets a tensor's `grad_fn`; `retain_grad()` follows the tensor to its new node (hooks
/// registered earlier stay with the old one, as in PyTorch).
pub fn set_grad_fn(t: &Tensor, node: NodeRef, output_nr: u32) {
    let (old, retains) = {
        let mut g = t.lock();
        let old = g.grad_fn.replace(node.clone());
        g.output_nr = output_nr;
        (old, g.retains_grad)
    };
    if retains {
        let me = t.downgrade();
        if let Some(old) = old {
            old.with(|n| {
                if let Some(h) = n.extras.as_mut() {
                    h.retained.retain(|(_, w)| !w.ptr_eq(&me));
                }
            });
        }
        node.with(|n| n.extras_mut().retained.push((output_nr, me)));
    }
}

/// PyTorch's message for rewriting the history of a view created in no_grad mode or returned
/// with others by one op: `indirect` when its base (or another view of it) was the one modified.
fn rebase_message(view: &Tensor, creation: ViewCreation, indirect: bool) -> Arc<str> {
    let what = if indirect { "its base or another view of its base has been" } else { "is being" };
    let (grad_fn, nr) = {
        let g = view.lock();
        (g.grad_fn.clone(), g.output_nr)
    };
    let function = grad_fn.map(|f| (crate::autograd::forward_name(f.name()).to_string(), nr));
    let mut msg = match (&function, creation) {
        (Some((name, nr)), ViewCreation::MultiOutput) => format!("Output {nr} of {name} is a view and {what} modified inplace."),
        (Some((name, nr)), _) => format!(
            "Output {nr} of {name} is a view of a view which was created in no_grad mode and {what} modified inplace with grad mode enabled."
        ),
        (None, _) => format!("A view was created in no_grad mode and {what} modified inplace with grad mode enabled."),
    };
    msg.push_str(if creation == ViewCreation::MultiOutput {
        " This view is the output of a function that returns multiple views. Such functions do not allow the output views to be modified inplace. You should replace the inplace operation by an out-of-place one."
    } else {
        " Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify your code by moving both the view and the inplace either both inside the no_grad block (if you don't want the inplace to be tracked) or both outside (if you want the inplace to be tracked)."
    });
    msg.into()
}

/// Regenerates a view's `grad_fn` after its base (or another view of it) changed in place.
pub fn refresh_view_grad_fn(view: &Tensor) {
    let (base, version, has_fn, creation) = {
        let g = view.lock();
        match g.view() {
            Some(v) if v.attr_version != g.data.version() => {
                (v.base.clone(), g.data.version(), g.grad_fn.is_some(), v.creation)
            }
            _ => return,
        }
    };
    if !has_fn && !base.requires_grad() {
        return;
    }
    if matches!(creation, ViewCreation::NoGrad | ViewCreation::MultiOutput) {
        // PyTorch refuses to rewrite this view's history: every later use of it raises.
        let msg = rebase_message(view, creation, true);
        let mut g = view.lock();
        g.grad_fn = None;
        if let Some(v) = g.view_mut() {
            v.attr_version = version;
            v.rebase_error = Some(msg);
        }
        return;
    }
    let (bd, vd) = (base.data(), view.data());
    let geometry = Arc::new(ViewGeometry { base: Geometry::of(&bd), view: Geometry::of(&vd) });
    let node = NodeRef::new(Node::with_edges(
        AsStridedBackward { geometry, name: "AsStridedBackward0" }.into(),
        smallvec![base.gradient_edge()],
        Metas::new([&meta_of(&bd)], [&meta_of(&vd)]),
    ));
    set_grad_fn(view, node, 0);
    if let Some(v) = view.lock().view_mut() {
        v.attr_version = version;
    }
}

/// The history of a base after an in-place op on one of its views: the base's gradient, with
/// the view's elements replaced by what the op's own backward gives for its input.
pub struct CopySlices {
    /// The node of the in-place op, recorded with the view as its input 0.
    op_node: NodeRef,
    geometry: Arc<ViewGeometry>,
}

impl Backward for CopySlices {
    fn name(&self) -> &'static str {
        "torch::autograd::CopySlices"
    }
    // d base/d base_old = 1 outside the view; inside it, the op's gradient for its input
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let slice = take(g, &self.geometry)?;
        let mut res = self.op_node.with(|n| {
            let op_ctx = BackwardCtx { node: &self.op_node, name: n.name(), needs: ctx.needs.clone(), site: n.site() };
            n.op.apply(&op_ctx, &[Some(slice)])
        })?;
        let positions = self.geometry.positions()?;
        let mut mask = vec![false; shape::numel(&self.geometry.base.shape)];
        for i in positions {
            mask[i] = true;
        }
        let mask = Tensor::from_vec(mask, &self.geometry.base.shape)?;
        let inside = match res.first_mut().and_then(Option::take) {
            Some(r) => put(&to_dtype(&r, g.dtype())?, &self.geometry)?,
            None => crate::creation::zeros_like(g),
        };
        let mut out: Grads = smallvec![Some(where_(&mask, &inside, g)?)];
        out.extend(res.into_iter().skip(1));
        Ok(out)
    }
    fn release(&mut self) {
        self.op_node.with(|n| {
            n.op.release();
            self.op_node.set_released();
        });
    }
    // PyTorch's CopySlices drops the op it wraps when its graph is freed, so a second backward
    // through it fails even when that op saved nothing (`a[0] = x`).
    fn saves_tensors(&self) -> bool {
        true
    }
}

/// Copies `result` into `target`'s elements, checking shape and dtype as PyTorch does.
pub fn write_result(target: &Tensor, result: &Tensor) -> Result<()> {
    let td = target.data();
    let rd = result.data();
    if rd.shape != td.shape && !shape::is_expandable_to(&rd.shape, &td.shape) {
        return Err(Error::runtime(format!(
            "output with shape {} doesn't match the broadcast shape {}",
            shape::fmt_shape(&td.shape),
            shape::fmt_shape(&shape::broadcast_shapes(&td.shape, &rd.shape).unwrap_or_else(|_| rd.shape.clone()))
        )));
    }
    let (rt, tt) = (rd.dtype(), td.dtype());
    let can_cast = rt.can_cast_to(tt);
    if !can_cast {
        return Err(Error::runtime(format!(
            "result type {} can't be cast to the desired output type {}",
            rt.scalar_type_name(),
            tt.scalar_type_name()
        )));
    }
    let values = if rd.shape != td.shape {
        let strides = shape::broadcast_strides(&rd.shape, &rd.strides, &td.shape);
        rd.restrided(td.shape.clone(), strides, rd.offset)
    } else {
        rd
    };
    if has_internal_overlap(&td) {
        // Ops allowed on an expanded target (`fill_`, `index_put_`, ...) write only the
        // elements they change: the others would write the old value back over a new one.
        td.write_changed_from(&values);
    } else {
        td.write_from(&values);
    }
    Ok(())
}

/// What an in-place op reads besides its target, for PyTorch's memory-overlap rules.
#[derive(Clone, Copy)]
pub struct Reads<'a> {
    /// Tensors read element by element as the result is written (the operands of `add_`,
    /// `copy_`'s source, `masked_fill_`'s mask): sharing memory with the target is refused
    /// unless they see exactly the target's elements in the same layout ("partial overlap").
    pub operands: &'a [&'a Tensor],
    /// Tensors that may not share any memory with the target (`index_put_`'s values and
    /// indices, `index_fill_`'s index).
    pub disjoint: &'a [&'a Tensor],
    /// How a target with internal overlap (two elements at one address: an expanded tensor) is treated.
    pub internal: Internal,
}

/// The treatment of a target with internal overlap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Internal {
    /// Refused (element-wise ops, `copy_`, random fills).
    Refuse,
    /// Allowed (`fill_` and `zero_` with a number).
    Allow,
    /// Allowed with PyTorch's deprecation warning naming the op (`index_put_`, `masked_fill_`, `index_fill_`).
    Warn(&'static str),
}

impl<'a> Reads<'a> {
    /// Reads nothing but the target, which must not overlap itself.
    pub const TARGET: Reads<'static> = Reads { operands: &[], disjoint: &[], internal: Internal::Refuse };
    /// A fill with a number (`fill_`, `zero_`, `x[i] = 1`): allowed on an expanded target.
    pub const FILL: Reads<'static> = Reads { operands: &[], disjoint: &[], internal: Internal::Allow };

    /// Element-wise operands (TensorIterator's rule).
    pub fn operands(operands: &'a [&'a Tensor]) -> Self {
        Reads { operands, disjoint: &[], internal: Internal::Refuse }
    }
}

/// How two tensors' elements share memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Overlap {
    /// No element in common (or different storages, or one is empty).
    No,
    /// The same elements, seen the same way.
    Full,
    /// Some elements in common, or the same ones seen differently.
    Partial,
    /// Too hard to tell cheaply (one of them has gaps or repeats): treated as no overlap, as in PyTorch.
    TooHard,
}

/// PyTorch's `get_overlap_status`: compares storages first (the common, cheap case), then, for
/// two dense layouts of one storage, the address ranges and strides.
pub fn overlap(a: &Tensor, b: &Tensor) -> Overlap {
    // A tensor overlaps itself fully, even empty (PyTorch's order); other empty tensors do not.
    if a.same(b) {
        return Overlap::Full;
    }
    Tensor::with_data_pair(a, b, |ga, gb| data_overlap(&ga.data, &gb.data))
}

fn data_overlap(a: &TensorData, b: &TensorData) -> Overlap {
    if !a.storage.same_buffer(&b.storage) {
        return Overlap::No;
    }
    let (na, nb) = (a.numel(), b.numel());
    if na == 0 || nb == 0 {
        return Overlap::No;
    }
    if !is_non_overlapping_and_dense(&a.shape, &a.strides) || !is_non_overlapping_and_dense(&b.shape, &b.strides) {
        return Overlap::TooHard;
    }
    // A dense layout covers exactly `numel` consecutive elements from its offset.
    let (a_end, b_end) = (a.offset + na, b.offset + nb);
    if a.offset == b.offset && a_end == b_end {
        return if a.strides == b.strides { Overlap::Full } else { Overlap::Partial };
    }
    if a.offset < b_end && b.offset < a_end {
        Overlap::Partial
    } else {
        Overlap::No
    }
}

/// Whether the elements fill a block of memory exactly once in some order of the dims (dims of
/// size 0 or 1 do not count).
pub fn is_non_overlapping_and_dense(shape: &[usize], strides: &[usize]) -> bool {
    let mut dims: SmallVec<[(usize, usize); 6]> =
        shape.iter().zip(strides).filter(|(&n, _)| n > 1).map(|(&n, &s)| (s, n)).collect();
    dims.sort_unstable();
    let mut expected = 1usize;
    for (stride, size) in dims {
        if stride != expected {
            return false;
        }
        expected *= size;
    }
    true
}

/// Two elements at one address (a stride-0 dim of size > 1); an empty tensor has none.
pub fn has_internal_overlap(d: &TensorData) -> bool {
    d.shape.iter().zip(&d.strides).any(|(&n, &s)| s == 0 && n > 1) && d.numel() > 0
}

/// [`check_overlaps`] for an element-wise op with one operand, on data already read.
pub fn check_operand_overlap(target: &TensorData, operand: &TensorData) -> Result<()> {
    if has_internal_overlap(target) {
        return Err(Error::InternalOverlap);
    }
    if data_overlap(target, operand) == Overlap::Partial {
        return Err(Error::PartialOverlap);
    }
    Ok(())
}

/// PyTorch's overlap rules for an in-place write into `target` that reads `reads`: the
/// target may not overlap itself (per [`Internal`]), an operand may not partially overlap it,
/// and a "disjoint" input may not share any element with it.
pub fn check_overlaps(target: &Tensor, reads: &Reads<'_>) -> Result<()> {
    if reads.internal != Internal::Allow {
        let internal = has_internal_overlap(&target.lock().data);
        match reads.internal {
            _ if !internal => {}
            Internal::Refuse => return Err(Error::InternalOverlap),
            Internal::Warn(op) => crate::anomaly::warn(&format!(
                "Use of {op} on expanded tensors is deprecated. Please clone() the tensor before performing this operation. This also applies to advanced indexing e.g. {}",
                if op == "index_put_" { "tensor[indices] = tensor" } else { "tensor[mask] = scalar" }
            )),
            Internal::Allow => {}
        }
    }
    for input in reads.operands {
        if overlap(target, input) == Overlap::Partial {
            return Err(Error::PartialOverlap);
        }
    }
    for input in reads.disjoint {
        if matches!(overlap(target, input), Overlap::Partial | Overlap::Full) {
            return Err(Error::PartialOverlap);
        }
    }
    Ok(())
}

/// An in-place view op (`transpose_`, `t_`, `squeeze_`, `unsqueeze_`): `target` itself now
/// shows its elements through the geometry of `view_of(target)`, and under grad mode its
/// `grad_fn` becomes that view's node (recorded by `view_of` under the in-place name, such as
/// `TransposeBackward1`). The values do not move, yet the version is bumped, as in PyTorch.
/// A view stays a view of the same base; any other tensor stays a non-view. Errors (a bad
/// dimension, a leaf that requires grad) leave `target` unchanged.
pub fn apply_view_inplace(target: &Tensor, view_of: impl Fn(&Tensor) -> Result<Tensor>) -> Result<()> {
    if target.is_inference() && !is_inference_mode_enabled() {
        return Err(Error::InferenceInplace);
    }
    let recording = is_recording();
    if recording && target.requires_grad() {
        check_inplace(target)?;
    }
    let result = view_of(target)?;
    let tangent = crate::forward_ad::tangent(&result);
    let (data, grad_fn, output_nr) = {
        let r = result.lock();
        (r.data.clone(), r.grad_fn.clone(), r.output_nr)
    };
    {
        let mut g = target.lock();
        g.data = data;
        g.data.bump_version();
        let version = g.data.version();
        // The new geometry is the view's own now: it needs no regenerated grad_fn.
        if let Some(v) = g.view_mut() {
            v.attr_version = version;
        }
    }
    if let (true, Some(node)) = (recording, grad_fn) {
        set_grad_fn(target, node, output_nr);
    }
    if let Some(t) = tangent {
        crate::forward_ad::set_tangent(target, t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{index, view};

    #[test]
    fn dense_layouts() {
        assert!(is_non_overlapping_and_dense(&[2, 3], &[3, 1]));
        assert!(is_non_overlapping_and_dense(&[2, 3], &[1, 2]));
        assert!(is_non_overlapping_and_dense(&[1, 3], &[99, 1]));
        assert!(!is_non_overlapping_and_dense(&[3], &[2]));
        assert!(!is_non_overlapping_and_dense(&[4], &[0]));
    }

    #[test]
    fn overlap_status() {
        let x = Tensor::from_vec(vec![0.0f32; 8], &[8]).unwrap();
        let head = index::slice(&x, 0, 0, 4, 1).unwrap();
        let tail = index::slice(&x, 0, 4, 8, 1).unwrap();
        let mid = index::slice(&x, 0, 2, 6, 1).unwrap();
        let every_other = index::slice(&x, 0, 0, 8, 2).unwrap();
        let other = Tensor::from_vec(vec![0.0f32; 8], &[8]).unwrap();
        assert_eq!(overlap(&x, &x), Overlap::Full);
        assert_eq!(overlap(&x, &view::view(&x, &[8]).unwrap()), Overlap::Full);
        assert_eq!(overlap(&x, &view::view(&x, &[2, 4]).unwrap()), Overlap::Partial);
        assert_eq!(overlap(&head, &tail), Overlap::No);
        assert_eq!(overlap(&head, &mid), Overlap::Partial);
        assert_eq!(overlap(&head, &every_other), Overlap::TooHard);
        assert_eq!(overlap(&x, &other), Overlap::No);
        assert!(check_overlaps(&head, &Reads::operands(&[&mid])).is_err());
        assert!(check_overlaps(&head, &Reads::operands(&[&head])).is_ok());
        let disjoint = Reads { operands: &[], disjoint: &[&head], internal: Internal::Refuse };
        assert!(check_overlaps(&head, &disjoint).is_err());
    }
}
