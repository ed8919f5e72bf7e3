//! Rearranging ops: flip, roll, tril/triu, diagonal (a view), diag_embed, trace.
//!
//! Their forwards pick elements by position (`take`), so they work for every dtype; their
//! backwards are the same ops applied to the gradient.

use super::arith::mul;
use super::reduce::sum_dims;
use super::view::expand_to;
use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads, JvpCtx};
use crate::dtype::Element;
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::{self, Shape};
use crate::tensor::{Tensor, TensorData};
use crate::with_dtype;
use smallvec::{smallvec, SmallVec};

type Dims = SmallVec<[usize; 4]>;

/// Marks an output element that is zero rather than taken from the input.
pub(crate) const ZERO: usize = usize::MAX;

/// A new tensor of `shape` whose element `i` is `x`'s row-major element `src[i]` (zero for
/// [`ZERO`]); not recorded.
pub(crate) fn take(x: &TensorData, src: &[usize], shape: &[usize]) -> TensorData {
    with_dtype!(x.dtype(), T => {
        let v = kernels::values::<T>(x);
        let out: Vec<T> = src.iter().map(|&i| if i == ZERO { T::zero() } else { v[i] }).collect();
        TensorData::from_vec(out, shape.into())
    })
}

/// `values` (row-major) laid out as an element-wise result over `operands` is (note [Output
/// layout]): a transposed operand gives a transposed result.
pub(crate) fn layout_like(values: TensorData, operands: &[&TensorData]) -> TensorData {
    let pairs: SmallVec<[(&[usize], &[usize]); 3]> = operands.iter().map(|x| (&x.shape[..], &x.strides[..])).collect();
    let strides = shape::output_strides(&values.shape, &pairs);
    if shape::is_contiguous(&values.shape, &strides) {
        return values;
    }
    let shp = values.shape.clone();
    with_dtype!(values.dtype(), T => {
        let v = kernels::values::<T>(&values);
        let mut out = vec![T::zero(); v.len()];
        let mut i = 0;
        for_each_coord(&shp, |c| {
            let at: usize = c.iter().zip(&strides).map(|(a, b)| a * b).sum();
            out[at] = v[i];
            i += 1;
        });
        TensorData::from_vec(out, shp.clone()).restrided(shp, strides, 0)
    })
}

/// Calls `f` with the coordinates of every element of `shape`, in row-major order.
pub(crate) fn for_each_coord(shape: &[usize], mut f: impl FnMut(&[usize])) {
    let n = shape::numel(shape);
    if n == 0 {
        return;
    }
    let mut c: SmallVec<[usize; 6]> = smallvec![0; shape.len()];
    for _ in 0..n {
        f(&c);
        for d in (0..shape.len()).rev() {
            c[d] += 1;
            if c[d] < shape[d] {
                break;
            }
            c[d] = 0;
        }
    }
}

/// The row-major position of coordinates `c` in `shape`.
fn flat(shape: &[usize], c: &[usize]) -> usize {
    let mut p = 0;
    for (d, &n) in shape.iter().enumerate() {
        p = p * n + c[d];
    }
    p
}

/// Wraps `dims`, refusing repeats with PyTorch's message.
fn distinct_dims(dims: &[i64], nd: usize) -> Result<Dims> {
    let mut out = Dims::new();
    for &d in dims {
        let w = shape::wrap_dim(d, nd.max(1))?;
        if out.contains(&w) {
            return Err(Error::runtime(format!("dim {w} appears multiple times in the list of dims")));
        }
        out.push(w);
    }
    Ok(out)
}

// ----------------------------------------------------------------------------- flip

/// `x.flip(dims)`: the elements in reverse order along each of `dims`.
pub fn flip(x: &Tensor, dims: &[i64]) -> Result<Tensor> {
    let d = x.data();
    let dims = distinct_dims(dims, d.shape.len())?;
    let shp = d.shape.clone();
    let mut src = Vec::with_capacity(d.numel());
    let mut c2: SmallVec<[usize; 6]> = smallvec![0; shp.len()];
    for_each_coord(&shp, |c| {
        for k in 0..c.len() {
            c2[k] = if dims.contains(&k) { shp[k] - 1 - c[k] } else { c[k] };
        }
        src.push(flat(&shp, &c2));
    });
    let out = Tensor::from_data(layout_like(take(&d, &src, &shp), &[&d]));
    record(out, &[x], |_| FlipBackward { dims: dims.iter().map(|&k| k as i64).collect() })
}

/// d flip(x)/dx: flip the gradient back
pub struct FlipBackward {
    dims: SmallVec<[i64; 4]>,
}
impl Backward for FlipBackward {
    fn name(&self) -> &'static str {
        "FlipBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(flip(grad0(grads)?, &self.dims)?)])
    }
    // t = flip(tx) (linear)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().and_then(|t| flip(t, &self.dims)))
    }
}

// ----------------------------------------------------------------------------- roll

/// `x.roll(shifts, dims)`: elements shifted cyclically along `dims` (over the flattened
/// tensor, keeping its shape, when `dims` is empty).
pub fn roll(x: &Tensor, shifts: &[i64], dims: &[i64]) -> Result<Tensor> {
    if shifts.is_empty() {
        return Err(Error::runtime("`shifts` required"));
    }
    if dims.is_empty() && shifts.len() != 1 {
        return Err(Error::runtime(format!(
            "shifts and dimensions must align. shifts: {}, dims:{}",
            shifts.len(),
            dims.len()
        )));
    }
    if !dims.is_empty() && shifts.len() != dims.len() {
        return Err(Error::runtime(format!(
            "shifts and dimensions must align. shifts: {}, dims:{}",
            shifts.len(),
            dims.len()
        )));
    }
    let d = x.data();
    let shp = d.shape.clone();
    let n = d.numel();
    if let (true, Some(dim)) = (shp.is_empty(), dims.first()) {
        return Err(Error::Index(format!("Dimension specified as {dim} but tensor has no dimensions")));
    }
    if n == 0 {
        // Nothing to move: PyTorch checks no dims then.
        let out = Tensor::from_data(kernels::contiguous_copy(&d));
        return record(out, &[x], |_| RollBackward { shifts: shifts.iter().map(|s| -s).collect(), dims: dims.into() });
    }
    let mut src = Vec::with_capacity(n);
    if dims.is_empty() {
        let s = if n == 0 { 0 } else { shifts[0].rem_euclid(n as i64) as usize };
        src.extend((0..n).map(|j| (j + n - s) % n));
    } else {
        let mut per_dim: SmallVec<[usize; 6]> = smallvec![0; shp.len()];
        for (&dim, &s) in dims.iter().zip(shifts) {
            let w = shape::wrap_dim(dim, shp.len().max(1))?;
            if shp.is_empty() {
                continue;
            }
            let size = shp[w] as i64;
            if size > 0 {
                per_dim[w] = (per_dim[w] + s.rem_euclid(size) as usize) % size as usize;
            }
        }
        let mut c2: SmallVec<[usize; 6]> = smallvec![0; shp.len()];
        for_each_coord(&shp, |c| {
            for k in 0..c.len() {
                c2[k] = (c[k] + shp[k] - per_dim[k]) % shp[k];
            }
            src.push(flat(&shp, &c2));
        });
    }
    let out = Tensor::from_data(take(&d, &src, &shp));
    record(out, &[x], |_| RollBackward { shifts: shifts.iter().map(|s| -s).collect(), dims: dims.into() })
}

/// d roll(x, s)/dx: roll the gradient by -s
pub struct RollBackward {
    shifts: SmallVec<[i64; 4]>,
    dims: SmallVec<[i64; 4]>,
}
impl Backward for RollBackward {
    fn name(&self) -> &'static str {
        "RollBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(roll(grad0(grads)?, &self.shifts, &self.dims)?)])
    }
    // t = roll(tx) by the forward's shifts (the node keeps them negated, for the gradient)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let forward: SmallVec<[i64; 4]> = self.shifts.iter().map(|s| -s).collect();
        Some(ctx.tangent0().and_then(|t| roll(t, &forward, &self.dims)))
    }
}

// ----------------------------------------------------------------------------- tril / triu

/// `x.tril(k)` (`upper`: `x.triu(k)`): the matrices of the last two dims with the elements
/// above (below) the k-th diagonal zeroed.
pub fn triangle(x: &Tensor, k: i64, upper: bool) -> Result<Tensor> {
    let d = x.data();
    let name = if upper { "triu" } else { "tril" };
    if d.shape.len() < 2 {
        return Err(Error::runtime(format!("{name}: input tensor must have at least 2 dimensions")));
    }
    let shp = d.shape.clone();
    let nd = shp.len();
    let mut src = Vec::with_capacity(d.numel());
    let mut i = 0;
    for_each_coord(&shp, |c| {
        let off = c[nd - 1] as i64 - c[nd - 2] as i64;
        let keep = if upper { off >= k } else { off <= k };
        src.push(if keep { i } else { ZERO });
        i += 1;
    });
    let out = Tensor::from_data(take(&d, &src, &shp));
    record(out, &[x], |_| TriangleBackward { k, upper })
}

/// d tril(x, k)/dx: tril of the gradient (triu likewise)
pub struct TriangleBackward {
    k: i64,
    upper: bool,
}
impl Backward for TriangleBackward {
    fn name(&self) -> &'static str {
        if self.upper {
            "TriuBackward0"
        } else {
            "TrilBackward0"
        }
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(triangle(grad0(grads)?, self.k, self.upper)?)])
    }
    // t = tril(tx) / triu(tx) (linear)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().and_then(|t| triangle(t, self.k, self.upper)))
    }
}

// ----------------------------------------------------------------------------- diagonal

/// The geometry of `diagonal(offset, dim1, dim2)` of a tensor of `shape`: the dims kept (in
/// order), the diagonal's length, and the wrapped dims.
fn diagonal_geometry(shp: &[usize], offset: i64, dim1: i64, dim2: i64) -> Result<(Dims, usize, usize, usize)> {
    let nd = shp.len();
    let (a, b) = (shape::wrap_dim(dim1, nd)?, shape::wrap_dim(dim2, nd)?);
    if a == b {
        return Err(Error::runtime(format!("diagonal dimensions cannot be identical {dim1}, {dim2}")));
    }
    let len = if offset >= 0 {
        (shp[a] as i64).min(shp[b] as i64 - offset)
    } else {
        (shp[a] as i64 + offset).min(shp[b] as i64)
    }
    .max(0) as usize;
    let kept: Dims = (0..nd).filter(|&k| k != a && k != b).collect();
    Ok((kept, len, a, b))
}

/// `x.diagonal(offset, dim1, dim2)`: a view of the diagonal, which becomes the last dim
/// (`copy`: a copy of it, as `torch.diag` of a matrix gives).
pub fn diagonal(x: &Tensor, offset: i64, dim1: i64, dim2: i64, copy: bool) -> Result<Tensor> {
    let d = x.data();
    let (kept, len, a, b) = diagonal_geometry(&d.shape, offset, dim1, dim2)?;
    let mut s: Shape = kept.iter().map(|&k| d.shape[k]).collect();
    let mut st: Shape = kept.iter().map(|&k| d.strides[k]).collect();
    s.push(len);
    st.push(d.strides[a] + d.strides[b]);
    let start = if len == 0 {
        d.offset
    } else if offset >= 0 {
        d.offset + offset as usize * d.strides[b]
    } else {
        d.offset + (-offset) as usize * d.strides[a]
    };
    let view = d.restrided(s, st, start);
    let out = if copy { Tensor::from_data(kernels::contiguous_copy(&view)) } else { Tensor::new_view(x, view) };
    let (self_shape, name) = (d.shape.clone(), if copy { "DiagonalBackward0_copy" } else { "DiagonalBackward0" });
    record(out, &[x], |_| DiagonalBackward { self_shape, offset, dim1: a as i64, dim2: b as i64, name })
}

/// d diagonal(x)/dx: the gradient placed on the diagonal of zeros
pub struct DiagonalBackward {
    self_shape: Shape,
    offset: i64,
    dim1: i64,
    dim2: i64,
    name: &'static str,
}
impl Backward for DiagonalBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let gx = embed(g, &self.self_shape, self.offset, self.dim1, self.dim2, "DiagonalBackwardBackward0")?;
        Ok(smallvec![Some(gx)])
    }
}

/// Zeros of `shape` with `x` written on the diagonal `(offset, dim1, dim2)`, whose shape `x`
/// must have; recorded under `name`.
fn embed(x: &Tensor, out_shape: &[usize], offset: i64, dim1: i64, dim2: i64, name: &'static str) -> Result<Tensor> {
    let xd = x.data();
    let out = kernels::full(out_shape, 0.0, xd.dtype());
    let (kept, len, a, b) = diagonal_geometry(out_shape, offset, dim1, dim2)?;
    let mut s: Shape = kept.iter().map(|&k| out.shape[k]).collect();
    let mut st: Shape = kept.iter().map(|&k| out.strides[k]).collect();
    s.push(len);
    st.push(out.strides[a] + out.strides[b]);
    let start = if len == 0 {
        0
    } else if offset >= 0 {
        offset as usize * out.strides[b]
    } else {
        (-offset) as usize * out.strides[a]
    };
    if s != xd.shape {
        return Err(Error::runtime(format!(
            "diagonal of shape {} cannot hold a tensor of shape {}",
            shape::fmt_size(&s),
            shape::fmt_size(&xd.shape)
        )));
    }
    out.restrided(s, st, start).write_from(&kernels::contiguous_copy(&xd));
    let out = Tensor::from_data(out);
    record(out, &[x], |_| DiagEmbedBackward { offset, dim1: a as i64, dim2: b as i64, name })
}

/// `x.diag_embed(offset, dim1, dim2)`: each row of the last dim of `x` becomes the diagonal
/// of a new matrix over `dim1`, `dim2` of the result.
pub fn diag_embed(x: &Tensor, offset: i64, dim1: i64, dim2: i64) -> Result<Tensor> {
    let xs = x.shape();
    let nd = xs.len() + 1;
    let (a, b) = (shape::wrap_dim(dim1, nd)?, shape::wrap_dim(dim2, nd)?);
    if a == b {
        return Err(Error::runtime(format!("diagonal dimensions cannot be identical {dim1}, {dim2}")));
    }
    let n = xs.last().copied().unwrap_or(1) + offset.unsigned_abs() as usize;
    let mut rest = xs.iter().take(xs.len().saturating_sub(1)).copied();
    let out_shape: Shape = (0..nd).map(|k| if k == a || k == b { n } else { rest.next().unwrap_or(1) }).collect();
    let x = if xs.is_empty() { super::view::unsqueeze(x, 0)? } else { x.clone() };
    embed(&x, &out_shape, offset, a as i64, b as i64, "DiagEmbedBackward0")
}

/// d diag_embed(x)/dx: the diagonal of the gradient
pub struct DiagEmbedBackward {
    offset: i64,
    dim1: i64,
    dim2: i64,
    name: &'static str,
}
impl Backward for DiagEmbedBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(diagonal(grad0(grads)?, self.offset, self.dim1, self.dim2, false)?)])
    }
}

/// `torch.diag(x, k)`: a matrix with the vector `x` on its k-th diagonal, or the k-th diagonal
/// (a copy) of the matrix `x`.
pub fn diag(x: &Tensor, k: i64) -> Result<Tensor> {
    match x.ndim() {
        1 => diag_embed(x, k, 0, 1),
        2 => diagonal(x, k, 0, 1, true),
        n => Err(Error::runtime(format!("diag(): Supports 1D or 2D tensors. Got {n}D"))),
    }
}

// ----------------------------------------------------------------------------- trace

/// `x.trace()`: the sum of the main diagonal of a matrix.
pub fn trace(x: &Tensor) -> Result<Tensor> {
    let xs = x.shape();
    if x.dtype() == crate::dtype::DType::Bool {
        return Err(Error::NotImplemented("\"trace\" not implemented for 'Bool'".into()));
    }
    if xs.len() != 2 {
        return Err(Error::runtime(format!("trace: expected a matrix, but got tensor with dim {}", xs.len())));
    }
    let out = sum_dims(&diagonal(&x.detach(), 0, 0, 1, false)?, &[0], false, None)?;
    let out = Tensor::from_data(out.data());
    record(out, &[x], |_| TraceBackward { self_shape: xs.clone() })
}

/// d trace(x)/dx = I (the identity of x's shape), times the gradient
pub struct TraceBackward {
    self_shape: Shape,
}
impl Backward for TraceBackward {
    fn name(&self) -> &'static str {
        "TraceBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let eye = crate::creation::eye(self.self_shape[0], self.self_shape[1], g.dtype())?;
        Ok(smallvec![Some(mul(&expand_to(g, &self.self_shape)?, &eye)?)])
    }
    // t = trace(tx) (linear)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().and_then(trace))
    }
}
