//! Joining and splitting: cat, stack, split (into views), unbind, repeat.

use super::index::{select, slice};
use super::reduce::sum_dims;
use super::view::{expand_to, reshape_to, unsqueeze};
use crate::autograd::{
    any_requires_grad, attach, check_not_inference, grad0, record, untracked, Backward, BackwardCtx, Grads, JvpCtx,
};
use crate::dtype::result_type;
use crate::error::{Error, Result};
use crate::kernels;
use crate::ops::BackwardOp;
use crate::shape::{self, Shape};
use crate::tensor::Tensor;
use smallvec::{smallvec, SmallVec};

/// Each input's tangent, or zeros of its shape in the output's dtype.
fn tangents_or_zeros(ctx: &JvpCtx) -> Vec<Tensor> {
    let dtype = ctx.out.dtype();
    (0..ctx.inputs.len())
        .map(|i| ctx.tangent(i).cloned().unwrap_or_else(|| crate::creation::zeros(&ctx.inputs[i].shape(), dtype)))
        .collect()
}

/// `cat(tensors, dim)`: joins along an existing dim. 1-D empty tensors are skipped (PyTorch's
/// legacy rule).
pub fn cat(tensors: &[Tensor], dim: i64) -> Result<Tensor> {
    if tensors.is_empty() {
        return Err(Error::Value("torch.cat(): expected a non-empty list of Tensors".into()));
    }
    let is_legacy_empty = |t: &Tensor| t.shape().as_slice() == [0];
    let reference = tensors.iter().find(|t| !is_legacy_empty(t)).unwrap_or(&tensors[0]).shape();
    let nd = reference.len();
    for (i, t) in tensors.iter().enumerate() {
        if t.ndim() == 0 {
            return Err(Error::runtime(format!("zero-dimensional tensor (at position {i}) cannot be concatenated")));
        }
    }
    // Only legacy empty tensors (shape [0]): PyTorch skips them all, whatever the dim.
    let dim = if tensors.iter().all(is_legacy_empty) { 0 } else { shape::wrap_dim(dim, nd.max(1))? };
    let mut out_shape = reference.clone();
    out_shape[dim] = 0;
    for (i, t) in tensors.iter().enumerate() {
        if is_legacy_empty(t) && nd != 1 {
            continue;
        }
        let s = t.shape();
        if s.len() != nd {
            return Err(Error::runtime(format!(
                "Tensors must have same number of dimensions: got {} and {}",
                nd,
                s.len()
            )));
        }
        for d in 0..nd {
            if d != dim && s[d] != reference[d] {
                return Err(Error::runtime(format!(
                    "Sizes of tensors must match except in dimension {dim}. Expected size {} but got size {} for tensor number {i} in the list.",
                    reference[d], s[d]
                )));
            }
        }
        out_shape[dim] += s[dim];
    }
    let inputs: Vec<&Tensor> = tensors.iter().collect();
    let dtype = result_type(&tensors.iter().map(|t| t.promotion_input()).collect::<Vec<_>>());
    let out = kernels::full(&out_shape, 0.0, dtype);
    let mut sizes: SmallVec<[usize; 4]> = SmallVec::new();
    let mut start = 0;
    for t in tensors {
        let n = if is_legacy_empty(t) && nd != 1 { 0 } else { t.shape()[dim] };
        sizes.push(n);
        if n > 0 {
            let mut s = out.shape.clone();
            s[dim] = n;
            let part = out.restrided(s, out.strides.clone(), out.offset + start * out.strides[dim]);
            part.write_from(&kernels::cast(&t.data(), dtype));
        }
        start += n;
    }
    let shapes: Vec<Shape> = tensors.iter().map(|t| t.shape()).collect();
    record(Tensor::from_data(out), &inputs, |_| CatBackward { dim, sizes, shapes })
}

/// d cat(xs)/dx_i: the slice of the gradient where x_i went
pub struct CatBackward {
    dim: usize,
    sizes: SmallVec<[usize; 4]>,
    shapes: Vec<Shape>,
}
impl Backward for CatBackward {
    fn name(&self) -> &'static str {
        "CatBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let mut start = 0;
        let mut out = Grads::new();
        for (i, &n) in self.sizes.iter().enumerate() {
            out.push(if !ctx.needs(i) {
                None
            } else if n == 0 && self.shapes[i].as_slice() != g.shape().as_slice() {
                Some(crate::creation::zeros(&self.shapes[i], g.dtype()))
            } else {
                Some(slice(g, self.dim as i64, start, start + n, 1)?)
            });
            start += n;
        }
        Ok(out)
    }
    // t = cat(t_i) (cat is linear; a missing tangent is zeros)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(cat(&tangents_or_zeros(ctx), self.dim as i64))
    }
}

/// `stack(tensors, dim)`: joins along a new dim.
pub fn stack(tensors: &[Tensor], dim: i64) -> Result<Tensor> {
    if tensors.is_empty() {
        return Err(Error::runtime("stack expects a non-empty TensorList"));
    }
    let first = tensors[0].shape();
    for (i, t) in tensors.iter().enumerate().skip(1) {
        if t.shape() != first {
            return Err(Error::runtime(format!(
                "stack expects each tensor to be equal size, but got {} at entry 0 and {} at entry {i}",
                shape::fmt_shape(&first),
                shape::fmt_shape(&t.shape())
            )));
        }
    }
    let dim = shape::wrap_dim(dim, first.len() + 1)?;
    let out = untracked(|| {
        let parts = tensors.iter().map(|t| unsqueeze(t, dim as i64)).collect::<Result<Vec<_>>>()?;
        cat(&parts, dim as i64)
    })?;
    let inputs: Vec<&Tensor> = tensors.iter().collect();
    record(out, &inputs, |_| StackBackward { dim, n: tensors.len() })
}

/// d stack(xs)/dx_i = the gradient's i-th entry along the new dim
pub struct StackBackward {
    dim: usize,
    n: usize,
}
impl Backward for StackBackward {
    fn name(&self) -> &'static str {
        "StackBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        (0..self.n)
            .map(|i| if ctx.needs(i) { select(g, self.dim as i64, i as i64).map(Some) } else { Ok(None) })
            .collect()
    }
    // t = stack(t_i) (stack is linear; a missing tangent is zeros)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(stack(&tangents_or_zeros(ctx), self.dim as i64))
    }
}

/// How `split` was asked to cut (it decides the node's name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitKind {
    /// One chunk size (`split(2)`): `SplitBackward0`.
    Size,
    /// A list of sizes (`split([1, 2])`): `SplitWithSizesBackward0`.
    Sizes,
}

/// `x.split(size)` / `x.split([sizes])`: views of consecutive pieces along `dim`.
pub fn split(x: &Tensor, sizes: &[usize], dim: i64, kind: SplitKind) -> Result<Vec<Tensor>> {
    let shp = x.shape();
    if shp.is_empty() {
        return Err(Error::runtime("split expects at least a 1-dimensional tensor"));
    }
    let dim = shape::wrap_dim(dim, shp.len())?;
    let total: usize = sizes.iter().sum();
    if total != shp[dim] {
        let list: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
        return Err(Error::runtime(format!(
            "split_with_sizes expects split_sizes to sum exactly to {} (input tensor's size at dimension {dim}), but got split_sizes=[{}]",
            shp[dim],
            list.join(", ")
        )));
    }
    let d = x.data();
    let mut start = 0;
    let mut outs = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let mut s = d.shape.clone();
        s[dim] = n;
        let offset = d.offset + if n > 0 { start * d.strides[dim] } else { 0 };
        outs.push(Tensor::new_view(x, d.restrided(s, d.strides.clone(), offset)));
        start += n;
    }
    if crate::grad_mode::is_recording() {
        outs.iter().for_each(Tensor::mark_multi_output_view);
    }
    // Views of an inference tensor have no autograd state (PyTorch).
    if any_requires_grad(&[x]) && !x.is_inference() {
        let op: BackwardOp = SplitBackward { dim, sizes: sizes.into(), self_shape: shp.clone(), kind }.into();
        check_not_inference(&[x], &op)?;
        let refs: Vec<&Tensor> = outs.iter().collect();
        attach(&refs, &[x], op)?;
    }
    Ok(outs)
}

/// The sizes `x.split(size, dim)` cuts into (the last piece may be smaller).
pub fn split_sizes(len: usize, size: usize, n_if_empty: usize) -> Vec<usize> {
    if size == 0 {
        return vec![0; n_if_empty.max(1)];
    }
    let mut out = vec![size; len / size];
    if len % size != 0 || len == 0 {
        out.push(len % size);
    }
    out
}

/// d split(x)/dx: the pieces' gradients joined again (zeros for pieces without one)
pub struct SplitBackward {
    dim: usize,
    sizes: SmallVec<[usize; 4]>,
    self_shape: Shape,
    kind: SplitKind,
}
impl Backward for SplitBackward {
    fn name(&self) -> &'static str {
        match self.kind {
            SplitKind::Size => "SplitBackward0",
            SplitKind::Sizes => "SplitWithSizesBackward0",
        }
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(join_pieces(grads, &self.self_shape, self.dim, &self.sizes, false)?)])
    }
}

/// The gradients of pieces along `dim` joined into one (missing ones are zeros); `stacked`:
/// the pieces were selected (unbind), not sliced.
fn join_pieces(
    grads: &[Option<Tensor>],
    self_shape: &[usize],
    dim: usize,
    sizes: &[usize],
    stacked: bool,
) -> Result<Tensor> {
    let dtype = grads.iter().flatten().next().map(|g| g.dtype()).unwrap_or(crate::DType::F32);
    let pieces = grads
        .iter()
        .zip(sizes)
        .map(|(g, &n)| match g {
            Some(g) => Ok(g.clone()),
            None => {
                let mut s: Shape = self_shape.into();
                if stacked {
                    s.remove(dim);
                } else {
                    s[dim] = n;
                }
                Ok(crate::creation::zeros(&s, dtype))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    if stacked {
        stack(&pieces, dim as i64)
    } else {
        cat(&pieces, dim as i64)
    }
}

/// `x.unbind(dim)`: the entries along `dim`, as views.
pub fn unbind(x: &Tensor, dim: i64) -> Result<Vec<Tensor>> {
    let shp = x.shape();
    if shp.is_empty() {
        return Err(Error::Index("Dimension specified as 0 but tensor has no dimensions".into()));
    }
    let dim = shape::wrap_dim(dim, shp.len())?;
    let d = x.data();
    let mut s = d.shape.clone();
    s.remove(dim);
    let mut st = d.strides.clone();
    st.remove(dim);
    let outs: Vec<Tensor> = (0..shp[dim])
        .map(|i| Tensor::new_view(x, d.restrided(s.clone(), st.clone(), d.offset + i * d.strides[dim])))
        .collect();
    if crate::grad_mode::is_recording() {
        outs.iter().for_each(Tensor::mark_multi_output_view);
    }
    if any_requires_grad(&[x]) && !outs.is_empty() && !x.is_inference() {
        let op: BackwardOp = UnbindBackward { dim, self_shape: shp.clone() }.into();
        check_not_inference(&[x], &op)?;
        let refs: Vec<&Tensor> = outs.iter().collect();
        attach(&refs, &[x], op)?;
    }
    Ok(outs)
}

/// d unbind(x)/dx: the entries' gradients stacked again
pub struct UnbindBackward {
    dim: usize,
    self_shape: Shape,
}
impl Backward for UnbindBackward {
    fn name(&self) -> &'static str {
        "UnbindBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let sizes = vec![1; self.self_shape[self.dim]];
        Ok(smallvec![Some(join_pieces(grads, &self.self_shape, self.dim, &sizes, true)?)])
    }
}

/// `x.repeat(repeats)`: tiles `x` `repeats[d]` times along each dim (leading dims added).
pub fn repeat(x: &Tensor, repeats: &[usize]) -> Result<Tensor> {
    let shp = x.shape();
    if repeats.len() < shp.len() {
        return Err(Error::runtime(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor",
        ));
    }
    let padded: Shape = std::iter::repeat_n(1, repeats.len() - shp.len()).chain(shp.iter().copied()).collect();
    let (interleaved, tiled, out_shape) = repeat_shapes(&padded, repeats);
    let out = untracked(|| {
        let spread = reshape_to(&super::view::contiguous(x)?, &interleaved)?;
        // Always a copy, even when every repeat is 1 (the result never aliases `x`).
        reshape_to(&super::view::clone_contiguous(&expand_to(&spread, &tiled)?)?, &out_shape)
    })?;
    record(out, &[x], |_| RepeatBackward { self_shape: shp.clone(), padded, repeats: repeats.into() })
}

/// ([1, p0, 1, p1, ..], [r0, p0, r1, p1, ..], [r0 p0, r1 p1, ..])
fn repeat_shapes(padded: &[usize], repeats: &[usize]) -> (Shape, Shape, Shape) {
    let interleaved = padded.iter().flat_map(|&p| [1, p]).collect();
    let tiled = padded.iter().zip(repeats).flat_map(|(&p, &r)| [r, p]).collect();
    let out = padded.iter().zip(repeats).map(|(&p, &r)| p * r).collect();
    (interleaved, tiled, out)
}

/// d repeat(x)/dx: the gradient summed over all the tiles
pub struct RepeatBackward {
    self_shape: Shape,
    padded: Shape,
    repeats: Shape,
}
impl Backward for RepeatBackward {
    fn name(&self) -> &'static str {
        "RepeatBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let (_, tiled, _) = repeat_shapes(&self.padded, &self.repeats);
        let tile_dims: SmallVec<[usize; 4]> = (0..self.padded.len()).map(|d| 2 * d).collect();
        let summed = sum_dims(&reshape_to(g, &tiled)?, &tile_dims, false, None)?;
        Ok(smallvec![Some(reshape_to(&summed, &self.self_shape)?)])
    }
    // t = repeat(tx) (repeat is linear)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().and_then(|t| repeat(t, &self.repeats)))
    }
}
