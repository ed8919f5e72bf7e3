//! Shape ops. Views share storage and version counter with their input; clone and dtype
//! conversion copy.

use super::reduce::sum_dims;
use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads, JvpCtx};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::{self, Shape, Strides};
use crate::tensor::Tensor;
use smallvec::{smallvec, SmallVec};

/// A view of `x` (tracked: in-place ops on it rewrite `x`'s history, Note [Views and in-place]).
fn make_view(x: &Tensor, shape: Shape, strides: Strides, offset: usize) -> Tensor {
    Tensor::new_view(x, x.data().restrided(shape, strides, offset))
}

/// Another tensor over the same elements that autograd does not treat as a view (PyTorch's
/// `_unsafe_view` of a temporary).
fn alias(x: &Tensor, shape: Shape, strides: Strides, offset: usize) -> Tensor {
    Tensor::from_data(x.data().restrided(shape, strides, offset))
}

/// `x.view(shape)`: no copy; fails if the strides do not allow it.
pub fn view(x: &Tensor, request: &[i64]) -> Result<Tensor> {
    let d = x.data();
    let new_shape = shape::infer_shape(request, d.numel())?;
    let strides = shape::view_strides(&d.shape, &d.strides, &new_shape).ok_or_else(|| {
        Error::runtime("view size is not compatible with input tensor's size and stride (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
    })?;
    let out = make_view(x, new_shape, strides, d.offset);
    record(out, &[x], |_| ViewBackward { self_shape: d.shape.clone(), name: ViewName::View })
}

/// `x[...]` / `x.view_as(x)`-like aliasing: a view of the whole tensor (`AliasBackward0`).
pub fn alias_of(x: &Tensor) -> Result<Tensor> {
    let d = x.data();
    let out = make_view(x, d.shape.clone(), d.strides.clone(), d.offset);
    record(out, &[x], |_| ViewBackward { self_shape: d.shape.clone(), name: ViewName::Alias })
}

/// `x.reshape(shape)`: a view when possible, else a copy. The view of a non-contiguous tensor
/// is PyTorch's `_reshape_alias` (`ReshapeAliasBackward0`).
pub fn reshape(x: &Tensor, request: &[i64]) -> Result<Tensor> {
    let d = x.data();
    let new_shape = shape::infer_shape(request, d.numel())?;
    if let Some(strides) = shape::view_strides(&d.shape, &d.strides, &new_shape) {
        if d.is_contiguous() {
            return view(x, request);
        }
        let out = make_view(x, new_shape, strides, d.offset);
        return record(out, &[x], |_| ViewBackward { self_shape: d.shape.clone(), name: ViewName::ReshapeAlias });
    }
    let copy = clone_contiguous(x)?;
    let cd = copy.data();
    let strides = shape::contiguous_strides(&new_shape);
    let out = alias(&copy, new_shape, strides, cd.offset);
    record(out, &[&copy], |_| ViewBackward { self_shape: cd.shape.clone(), name: ViewName::UnsafeView })
}

/// A view of a contiguous tensor recorded as PyTorch's `_unsafe_view` (`UnsafeViewBackward0`).
pub fn unsafe_view(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let x = contiguous(x)?;
    let d = x.data();
    let out = alias(&x, shape.into(), shape::contiguous_strides(shape), d.offset);
    record(out, &[&x], |_| ViewBackward { self_shape: d.shape.clone(), name: ViewName::UnsafeView })
}

/// `squeeze(dim)` recorded under another node name (matmul's in-place `squeeze_` is `SqueezeBackward4`).
pub fn squeeze_named(x: &Tensor, dim: i64, name: &'static str) -> Result<Tensor> {
    let squeezed = squeeze(&x.detach(), Some(dim))?.data();
    let out = Tensor::from_data(squeezed);
    let nd = x.ndim();
    let w = shape::wrap_dim(dim, nd)?;
    let dropped: SmallVec<[usize; 4]> = if nd > 0 && x.shape()[w] == 1 { smallvec![w] } else { SmallVec::new() };
    record(out, &[x], |_| SqueezeBackward { dropped: small_dims(&dropped), name })
}

/// Reshapes to a shape given in sizes (used by backward formulas).
pub fn reshape_to(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let request: SmallVec<[i64; 4]> = shape.iter().map(|&s| s as i64).collect();
    reshape(x, &request)
}

/// d view(x)/dx: reshape the gradient back
pub struct ViewBackward {
    self_shape: Shape,
    name: ViewName,
}

/// Which op made a view node (a byte rather than a name, so the node stays small).
#[derive(Clone, Copy)]
enum ViewName {
    View,
    Alias,
    ReshapeAlias,
    UnsafeView,
}

impl Backward for ViewBackward {
    fn name(&self) -> &'static str {
        match self.name {
            ViewName::View => "ViewBackward0",
            ViewName::Alias => "AliasBackward0",
            ViewName::ReshapeAlias => "ReshapeAliasBackward0",
            ViewName::UnsafeView => "UnsafeViewBackward0",
        }
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        if matches!(self.name, ViewName::Alias) {
            // d alias(x)/dx = 1: the gradient itself, not a view of it (so AccumulateGrad
            // copies rather than steals a gradient the caller still holds, as in PyTorch).
            return Ok(smallvec![Some(g.clone())]);
        }
        Ok(smallvec![Some(reshape_to(g, &self.self_shape)?)])
    }
}

fn transpose_impl(x: &Tensor, d0: i64, d1: i64, name: &'static str) -> Result<Tensor> {
    let d = x.data();
    let nd = d.shape.len();
    let (a, b) = (shape::wrap_dim(d0, nd)?, shape::wrap_dim(d1, nd)?);
    let (mut s, mut st) = (d.shape.clone(), d.strides.clone());
    if nd > 0 {
        s.swap(a, b);
        st.swap(a, b);
    }
    let out = make_view(x, s, st, d.offset);
    record(out, &[x], |_| TransposeBackward { d0: a as i64, d1: b as i64, name })
}

/// Swaps dimensions `d0` and `d1` (a view).
pub fn transpose(x: &Tensor, d0: i64, d1: i64) -> Result<Tensor> {
    transpose_impl(x, d0, d1, "TransposeBackward0")
}

/// `transpose(x, d0, d1)` recorded under another node name (`transpose_` is `TransposeBackward1`).
pub fn transpose_named(x: &Tensor, d0: i64, d1: i64, name: &'static str) -> Result<Tensor> {
    transpose_impl(x, d0, d1, name)
}

/// `x.t()`: transpose of a matrix; vectors and scalars are returned as they are.
pub fn t(x: &Tensor) -> Result<Tensor> {
    t_named(x, "TBackward0")
}

/// `t(x)` recorded under another node name (`t_` is `TBackward1`).
pub fn t_named(x: &Tensor, name: &'static str) -> Result<Tensor> {
    let nd = x.ndim();
    if nd > 2 {
        let op = if name == "TBackward1" { "t_" } else { "t" };
        return Err(Error::runtime(format!("{op}() expects a tensor with <= 2 dimensions, but self is {nd}D")));
    }
    if nd < 2 {
        return transpose_impl(x, 0, 0, name);
    }
    transpose_impl(x, 0, 1, name)
}

/// d transpose(x)/dx: transpose the gradient back
pub struct TransposeBackward {
    d0: i64,
    d1: i64,
    name: &'static str,
}
impl Backward for TransposeBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let gx = if self.name.starts_with("TBackward") { t(g)? } else { transpose(g, self.d0, self.d1)? };
        Ok(smallvec![Some(gx)])
    }
}

/// Reorders the dimensions as `dims` lists them (a view).
pub fn permute(x: &Tensor, dims: &[i64]) -> Result<Tensor> {
    let d = x.data();
    let nd = d.shape.len();
    if dims.len() != nd {
        return Err(Error::runtime(format!(
            "permute(sparse_coo): number of dimensions in the tensor input does not match the length of the desired ordering of dimensions i.e. input.dim() = {nd} is not equal to len(dims) = {}",
            dims.len()
        )));
    }
    let perm = shape::wrap_dims(dims, nd).map_err(|e| match e {
        Error::Runtime(_) => Error::runtime("permute(): duplicate dims are not allowed."),
        other => other,
    })?;
    let s: Shape = perm.iter().map(|&p| d.shape[p]).collect();
    let st: Strides = perm.iter().map(|&p| d.strides[p]).collect();
    let out = make_view(x, s, st, d.offset);
    record(out, &[x], |_| PermuteBackward { perm: perm.clone() })
}

/// d permute(x)/dx: apply the inverse permutation
pub struct PermuteBackward {
    perm: SmallVec<[usize; 4]>,
}
impl Backward for PermuteBackward {
    fn name(&self) -> &'static str {
        "PermuteBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let mut inverse = vec![0i64; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            inverse[p] = i as i64;
        }
        Ok(smallvec![Some(permute(grad0(grads)?, &inverse)?)])
    }
}

/// `x.squeeze()` (all size-1 dims) or `x.squeeze(dim)`.
pub fn squeeze(x: &Tensor, dim: Option<i64>) -> Result<Tensor> {
    match dim {
        Some(dim) => squeeze_dims(x, Some(&[dim]), "SqueezeBackward1"),
        None => squeeze_dims(x, None, "SqueezeBackward0"),
    }
}

/// Removes the size-1 dimensions among `dims` (all of them when `None`), recorded as `name`:
/// `squeeze(dims)` is `SqueezeBackward2`, the in-place `squeeze_` forms are 3, 4 and 5.
pub fn squeeze_dims(x: &Tensor, dims: Option<&[i64]>, name: &'static str) -> Result<Tensor> {
    let d = x.data();
    let nd = d.shape.len();
    let drop: SmallVec<[usize; 4]> = match dims {
        Some(dims) => {
            let mut chosen: SmallVec<[usize; 4]> = SmallVec::new();
            for &dim in dims {
                let w = shape::wrap_dim(dim, nd)?;
                if chosen.contains(&w) {
                    return Err(Error::runtime(format!("dim {w} appears multiple times in the list of dims")));
                }
                chosen.push(w);
            }
            let mut drop: SmallVec<[usize; 4]> = chosen.into_iter().filter(|&w| w < nd && d.shape[w] == 1).collect();
            drop.sort_unstable();
            drop
        }
        None => (0..nd).filter(|&i| d.shape[i] == 1).collect(),
    };
    let s: Shape = (0..nd).filter(|i| !drop.contains(i)).map(|i| d.shape[i]).collect();
    let st: Strides = (0..nd).filter(|i| !drop.contains(i)).map(|i| d.strides[i]).collect();
    let out = make_view(x, s, st, d.offset);
    record(out, &[x], |_| SqueezeBackward { dropped: small_dims(&drop), name })
}

/// Dimension indices kept as u16 (a tensor has far fewer than 65,536 dims: each one costs a
/// word of its shape and one of its strides).
fn small_dims(dims: &[usize]) -> SmallVec<[u16; 4]> {
    dims.iter().map(|&d| d.min(u16::MAX as usize) as u16).collect()
}

/// d squeeze(x)/dx: put the size-1 dimensions back
pub struct SqueezeBackward {
    /// The dimensions the forward dropped, lowest first (as u16: the node stays small).
    dropped: SmallVec<[u16; 4]>,
    name: &'static str,
}
impl Backward for SqueezeBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let mut g = grad0(grads)?.clone();
        // put back exactly the dimensions the forward dropped, lowest first
        for &d in &self.dropped {
            g = unsqueeze(&g, d as i64)?;
        }
        Ok(smallvec![Some(g)])
    }
}

/// Inserts a dimension of size 1 at `dim` (a view).
pub fn unsqueeze(x: &Tensor, dim: i64) -> Result<Tensor> {
    unsqueeze_named(x, dim, "UnsqueezeBackward0")
}

/// `unsqueeze(x, dim)` recorded under another node name (`unsqueeze_` is `UnsqueezeBackward1`).
pub fn unsqueeze_named(x: &Tensor, dim: i64, name: &'static str) -> Result<Tensor> {
    let d = x.data();
    let nd = d.shape.len();
    let w = shape::wrap_dim(dim, nd + 1)?;
    let mut s = d.shape.clone();
    let mut st = d.strides.clone();
    let stride = if w < nd { d.strides[w] * d.shape[w] } else { 1 };
    s.insert(w, 1);
    st.insert(w, stride);
    let out = make_view(x, s, st, d.offset);
    record(out, &[x], |_| UnsqueezeBackward { dim: w as i64, name })
}

/// d unsqueeze(x)/dx: squeeze the dimension away
pub struct UnsqueezeBackward {
    dim: i64,
    name: &'static str,
}
impl Backward for UnsqueezeBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(squeeze(grad0(grads)?, Some(self.dim))?)])
    }
}

/// `x.expand(sizes)`; -1 keeps a size. A broadcast view with stride 0.
pub fn expand(x: &Tensor, sizes: &[i64]) -> Result<Tensor> {
    let d = x.data();
    let nd = d.shape.len();
    if sizes.len() < nd {
        return Err(Error::runtime(format!(
            "expand({}{{{}}}, size={}): the number of sizes provided ({}) must be greater or equal to the number of dimensions in the tensor ({nd})",
            d.dtype().legacy_name(),
            shape::fmt_shape(&d.shape),
            fmt_i64s(sizes),
            sizes.len()
        )));
    }
    let lead = sizes.len() - nd;
    let mut s = Shape::new();
    let mut st = Strides::new();
    for (i, &want) in sizes.iter().enumerate() {
        if i < lead {
            if want < 0 {
                return Err(Error::runtime(format!(
                    "The expanded size of the tensor (-1) isn't allowed in a leading, non-existing dimension {i}"
                )));
            }
            s.push(want as usize);
            st.push(0);
            continue;
        }
        let have = d.shape[i - lead];
        let target = if want == -1 { have } else { want as usize };
        if have == target {
            s.push(have);
            st.push(d.strides[i - lead]);
        } else if have == 1 {
            s.push(target);
            st.push(0);
        } else {
            return Err(Error::runtime(format!(
                "The expanded size of the tensor ({target}) must match the existing size ({have}) at non-singleton dimension {i}.  Target sizes: {}.  Tensor sizes: {}",
                fmt_i64s(sizes),
                shape::fmt_shape(&d.shape)
            )));
        }
    }
    shape::checked_numel(&s)?;
    let out = make_view(x, s, st, d.offset);
    record(out, &[x], |_| ExpandBackward { self_shape: d.shape.clone() })
}

fn fmt_i64s(v: &[i64]) -> String {
    let parts: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// Expands to a shape given in sizes.
pub fn expand_to(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let sizes: SmallVec<[i64; 4]> = shape.iter().map(|&s| s as i64).collect();
    expand(x, &sizes)
}

/// d expand(x)/dx: sum the gradient over the broadcast dimensions
pub struct ExpandBackward {
    self_shape: Shape,
}
impl Backward for ExpandBackward {
    fn name(&self) -> &'static str {
        "ExpandBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(sum_to(grad0(grads)?, &self.self_shape)?)])
    }
}

/// Sums `x` down to `shape` (the reverse of broadcasting).
pub fn sum_to(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let xs = x.shape();
    if xs.as_slice() == shape {
        return Ok(x.clone());
    }
    let (leading, kept) = shape::sum_to_dims(&xs, shape);
    if !leading.is_empty() && crate::grad_mode::is_recording() && x.requires_grad() {
        // Differentiable result (create_graph): one sum over every reduced dim, then a view to
        // the target shape, so that the graph has PyTorch's nodes (`SumBackward1`, `ViewBackward0`;
        // a 0-d target is a plain `sum()`, `SumBackward0`).
        if shape.is_empty() {
            return super::reduce::sum(x, None, false, None);
        }
        let mut all: SmallVec<[usize; 4]> = leading.iter().chain(kept.iter()).copied().collect();
        all.sort_unstable();
        let summed = sum_dims(x, &all, true, None)?;
        let request: SmallVec<[i64; 4]> = shape.iter().map(|&s| s as i64).collect();
        return view(&summed, &request);
    }
    let mut out = x.clone();
    if !kept.is_empty() {
        out = sum_dims(&out, &kept, true, None)?;
    }
    if !leading.is_empty() {
        out = sum_dims(&out, &leading, false, None)?;
    }
    if out.shape().as_slice() != shape {
        out = reshape_to(&out, shape)?;
    }
    Ok(out)
}

/// A copy in `x`'s layout (PyTorch's preserve format: a transposed `x` gives a transposed
/// copy). Of an inference tensor outside inference mode it is recorded as PyTorch records it,
/// as a fresh tensor's `copy_` (`CopyBackwards`).
pub fn clone(x: &Tensor) -> Result<Tensor> {
    let d = x.data();
    recorded_clone(x, kernels::cast_like(&d, d.dtype()))
}

/// `clone(memory_format=torch.contiguous_format)`: a row-major copy (what `reshape` copies to).
pub fn clone_contiguous(x: &Tensor) -> Result<Tensor> {
    recorded_clone(x, kernels::contiguous_copy(&x.data()))
}

/// `clone` with `out` holding the copied values.
fn recorded_clone(x: &Tensor, out: crate::tensor::TensorData) -> Result<Tensor> {
    let out = Tensor::from_data(out);
    if x.is_inference() && !crate::grad_mode::is_inference_mode_enabled() {
        return record(out, &[x], |_| CopyBackward);
    }
    record(out, &[x], |_| IdentityBackward { name: "CloneBackward0" })
}

/// A contiguous copy recorded as PyTorch's `new_empty_strided().copy_()` (`CopyBackwards`),
/// which is what gradient accumulation stores under grad mode.
pub fn copy_of(x: &Tensor) -> Result<Tensor> {
    let out = Tensor::from_data(kernels::contiguous_copy(&x.data()));
    record(out, &[x], |_| CopyBackward)
}

/// d copy(x)/dx = 1
pub struct CopyBackward;
impl Backward for CopyBackward {
    fn name(&self) -> &'static str {
        "torch::autograd::CopyBackwards"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(grad0(grads)?.clone())])
    }
    // t = tx
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().cloned())
    }
}

/// `x` itself if contiguous, else a contiguous copy.
pub fn contiguous(x: &Tensor) -> Result<Tensor> {
    let d = x.data();
    // An empty tensor counts as contiguous whatever its strides (PyTorch's rule).
    if d.numel() == 0 || d.is_contiguous() {
        Ok(x.clone())
    } else {
        drop(d);
        clone_contiguous(x)
    }
}

/// d out/dx = 1 for ops whose output is a copy of the input's values, under their PyTorch
/// name: `CloneBackward0` (clone), `IndexSelectBackward0` (index_select of a 0-d tensor).
pub struct IdentityBackward {
    /// The PyTorch name of the node.
    pub name: &'static str,
}
impl Backward for IdentityBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(grad0(grads)?.clone())])
    }
    // t = tx
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().cloned())
    }
}

/// `x.to(dtype)`: `x` itself when the dtype already matches.
pub fn to_dtype(x: &Tensor, dtype: DType) -> Result<Tensor> {
    if x.dtype() == dtype {
        return Ok(x.clone());
    }
    to_copy(x, dtype)
}

/// `x.to(dtype, copy=True)`: always a new tensor (`ToCopyBackward0`), even in the same dtype.
pub fn to_copy(x: &Tensor, dtype: DType) -> Result<Tensor> {
    let d = x.data();
    let out = Tensor::from_data(kernels::cast_like(&d, dtype));
    if !dtype.is_float() {
        return Ok(out);
    }
    if x.is_inference() && !crate::grad_mode::is_inference_mode_enabled() {
        return record(out, &[x], |_| CopyBackward);
    }
    record(out, &[x], |_| ToCopyBackward { self_dtype: d.dtype() })
}

/// d to(x)/dx: convert the gradient back
pub struct ToCopyBackward {
    self_dtype: DType,
}
impl Backward for ToCopyBackward {
    fn name(&self) -> &'static str {
        "ToCopyBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(to_dtype(grad0(grads)?, self.self_dtype)?)])
    }
    // t = tx in the result's dtype
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().and_then(|t| to_copy(t, ctx.out.dtype())))
    }
}

/// `x.view(dtype)`: the same bytes read as another dtype (not differentiable: the result has no
/// history). With a different element size the last dim, which must be contiguous, shrinks or
/// grows by the size ratio, as in PyTorch. The result shares `x`'s memory, except for a view as
/// bool of another dtype, which is a copy with every nonzero byte read as `true` (a Rust `bool`
/// must be 0 or 1), and a view whose address is not aligned for the new dtype.
#[allow(clippy::unnecessary_cast)] // `as *mut u8` is a no-op only for the uint8 instance
pub fn view_dtype(x: &Tensor, dtype: DType) -> Result<Tensor> {
    let d = x.data();
    let (old, new) = (d.dtype().size(), dtype.size());
    if d.dtype() == dtype {
        return Ok(x.detach());
    }
    // PyTorch's message: "<what> to view Float as Bool (different element sizes)[, but got <n>]".
    let fail = |what: String, got: Option<usize>| {
        let (from, to) = (d.dtype().scalar_type_name(), dtype.scalar_type_name());
        let got = got.map(|g| format!(", but got {g}")).unwrap_or_default();
        Error::runtime(format!("{what} to view {from} as {to} (different element sizes){got}"))
    };
    let (mut shape, mut strides, mut offset) = (d.shape.clone(), d.strides.clone(), d.offset);
    if old != new {
        let nd = shape.len();
        if nd == 0 {
            return Err(fail("self.dim() cannot be 0".into(), None));
        }
        let last_stride = || fail("self.stride(-1) must be 1".into(), Some(strides[nd - 1]));
        if strides[nd - 1] != 1 && old > new {
            return Err(last_stride());
        }
        if old > new {
            let r = old / new;
            shape[nd - 1] *= r;
            for s in strides.iter_mut().take(nd - 1) {
                *s *= r;
            }
            offset *= r;
        } else {
            let r = new / old;
            let but = |what: String, got: usize| fail(format!("{what} must be divisible by {r}"), Some(got));
            // Growing elements: the last size is checked before the last stride.
            if shape[nd - 1] % r != 0 {
                return Err(but("self.size(-1)".into(), shape[nd - 1]));
            }
            if strides[nd - 1] != 1 {
                return Err(last_stride());
            }
            if offset % r != 0 {
                return Err(but("self.storage_offset()".into(), offset));
            }
            for (i, s) in strides.iter().enumerate().take(nd - 1) {
                if s % r != 0 {
                    return Err(but(format!("self.stride({i})"), *s));
                }
            }
            shape[nd - 1] /= r;
            for s in strides.iter_mut().take(nd - 1) {
                *s /= r;
            }
            offset /= r;
        }
    }
    let bytes = d.storage.len() * old;
    let base = d.storage.as_ptr();
    let aligned = (base as usize) % new == 0;
    let storage = if dtype != DType::Bool && aligned {
        // SAFETY: the new storage covers the same bytes (whole elements of the new dtype, the
        // address aligned for it), every bit pattern is a valid f32/f64/i64, and the owner (the
        // old storage) keeps the memory alive.
        unsafe { crate::storage::Storage::reinterpret(d.storage.clone(), bytes / new, dtype) }
    } else {
        // SAFETY: reading the storage's own bytes; see Note [Storage aliasing].
        let raw: &[u8] = if bytes == 0 { &[] } else { unsafe { std::slice::from_raw_parts(base, bytes) } };
        crate::with_dtype!(dtype, T => {
            let n = bytes / new;
            let mut v: Vec<T> = crate::alloc::vec_zeroed::<T>(n);
            if dtype == DType::Bool {
                // SAFETY: T is bool here; 0 and 1 are its only valid bytes.
                let out = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, n) };
                for (o, &b) in out.iter_mut().zip(raw) {
                    *o = (b != 0) as u8;
                }
            } else {
                // SAFETY: `v` holds exactly `n * new` bytes and any bit pattern is valid.
                unsafe { std::ptr::copy_nonoverlapping(raw.as_ptr(), v.as_mut_ptr() as *mut u8, n * new) };
            }
            crate::storage::Storage::from_vec(v)
        })
    };
    let data = crate::tensor::TensorData { storage: std::sync::Arc::new(storage), shape, strides, offset };
    Ok(Tensor::from_data(data))
}
