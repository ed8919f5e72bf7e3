//! dot, mv, mm, bmm, and matmul built from them as PyTorch builds it.

use super::arith::mul;
use super::view::{expand_to, reshape_to, squeeze_named, t, transpose, unsafe_view, unsqueeze};
use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::{self, Shape};
use crate::tensor::{Tensor, TensorData};
use smallvec::smallvec;

fn same_dtype(a: &Tensor, b: &Tensor, op: &str) -> Result<DType> {
    let (da, db) = (a.dtype(), b.dtype());
    if da != db {
        return Err(Error::runtime(match op {
            "dot" => format!(
                "dot : expected both vectors to have same dtype, but found {} and {}",
                da.scalar_type_name(),
                db.scalar_type_name()
            ),
            _ => format!("expected m1 and m2 to have the same dtype, but got: {} != {}", da.name_cpp(), db.name_cpp()),
        }));
    }
    Ok(da)
}

/// The dot product of two 1-d tensors.
pub fn dot(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() != 1 || sb.len() != 1 {
        return Err(Error::runtime(format!("1D tensors expected, but got {}D and {}D tensors", sa.len(), sb.len())));
    }
    if sa[0] != sb[0] {
        return Err(Error::runtime(format!(
            "inconsistent tensor size, expected tensor [{}] and src [{}] to have the same number of elements, but got {} and {} elements respectively",
            sa[0], sb[0], sa[0], sb[0]
        )));
    }
    let dtype = same_dtype(a, b, "dot")?;
    let (da, db) = (a.data(), b.data());
    let row = da.restrided(smallvec![1, sa[0]], smallvec![0, da.strides[0]], da.offset);
    let col = db.restrided(smallvec![sb[0], 1], smallvec![db.strides[0], 0], db.offset);
    let r = kernels::matmul2d(&row, &col, dtype);
    let out = Tensor::from_data(r.restrided(Shape::new(), Shape::new(), 0));
    record(out, &[a, b], |_| DotBackward { a: SavedTensor::input(a), b: SavedTensor::input(b) })
}

/// d(a.b)/da = b, d(a.b)/db = a (times the scalar gradient)
pub struct DotBackward {
    a: SavedTensor,
    b: SavedTensor,
}
impl Backward for DotBackward {
    fn name(&self) -> &'static str {
        "DotBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let ga = if ctx.needs(0) { Some(mul(g, &self.b.unpack(ctx)?)?) } else { None };
        let gb = if ctx.needs(1) { Some(mul(g, &self.a.unpack(ctx)?)?) } else { None };
        Ok(smallvec![ga, gb])
    }
    // t = ta . b + a . tb
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        product_jvp(ctx, dot)
    }
    crate::saved_tensors!(a => "self", b => "tensor");
}

/// The tangent of a product `f(a, b)` that is linear in each operand: `f(ta, b) + f(a, tb)`.
fn product_jvp(ctx: &JvpCtx, f: fn(&Tensor, &Tensor) -> Result<Tensor>) -> Option<Result<Tensor>> {
    let (a, b) = (ctx.inputs[0], ctx.inputs[1]);
    Some(ctx.sum_terms([ctx.tangent(0).map(|t| f(t, b)).transpose(), ctx.tangent(1).map(|t| f(a, t)).transpose()]))
}

/// The product of two matrices.
///
/// ```
/// use rustgrad_core::{ops::linalg, Tensor};
/// # fn main() -> rustgrad_core::Result<()> {
/// let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2])?;
/// let eye = Tensor::from_vec(vec![1.0f64, 0.0, 0.0, 1.0], &[2, 2])?;
/// assert_eq!(linalg::mm(&a, &eye)?.to_vec::<f64>(), a.to_vec::<f64>());
/// assert!(linalg::mm(&a, &Tensor::from_vec(vec![1.0f64; 3], &[3, 1])?).is_err());
/// # Ok(())
/// # }
/// ```
pub fn mm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() != 2 {
        return Err(Error::runtime("self must be a matrix"));
    }
    if sb.len() != 2 {
        return Err(Error::runtime("mat2 must be a matrix"));
    }
    if sa[1] != sb[0] {
        return Err(Error::runtime(format!(
            "mm: mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})",
            sa[0], sa[1], sb[0], sb[1]
        )));
    }
    let dtype = same_dtype(a, b, "mm")?;
    let out = Tensor::from_data(kernels::matmul2d(&a.data(), &b.data(), dtype));
    record(out, &[a, b], |_| MmBackward {
        a: SavedTensor::input(a),
        b: SavedTensor::input(b),
        layouts: [column_major(a), column_major(b)],
    })
}

/// Whether a matrix is laid out column by column (a transposed contiguous matrix, like the
/// `weight.t()` of `linear`).
fn column_major(x: &Tensor) -> bool {
    let d = x.data();
    // PyTorch's test, strides only (a 1x1 matrix counts too).
    d.shape.len() == 2 && d.strides[0] == 1 && d.strides[1] == d.shape[0]
}

/// d(AB)/dA = G B^T, computed as (B G^T)^T when A is column-major so that the gradient has A's
/// layout (as PyTorch's `mm_mat1_backward` does; `.grad` of a weight then needs no copy).
fn mm_grad_a(g: &Tensor, b: &Tensor, a_column_major: bool) -> Result<Tensor> {
    if a_column_major {
        t(&mm(b, &t(g)?)?)
    } else {
        mm(g, &t(b)?)
    }
}

/// d(AB)/dB = A^T G, computed as (G^T A)^T when B is column-major (`mm_mat2_backward`).
fn mm_grad_b(g: &Tensor, a: &Tensor, b_column_major: bool) -> Result<Tensor> {
    if b_column_major {
        t(&mm(&t(g)?, a)?)
    } else {
        mm(&t(a)?, g)
    }
}

/// d(AB)/dA = G B^T, d(AB)/dB = A^T G
pub struct MmBackward {
    a: SavedTensor,
    b: SavedTensor,
    /// Whether A and B were column-major (their gradients are made in the same layout).
    layouts: [bool; 2],
}
impl Backward for MmBackward {
    fn name(&self) -> &'static str {
        "MmBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let ga = if ctx.needs(0) { Some(mm_grad_a(g, &self.b.unpack(ctx)?, self.layouts[0])?) } else { None };
        let gb = if ctx.needs(1) { Some(mm_grad_b(g, &self.a.unpack(ctx)?, self.layouts[1])?) } else { None };
        Ok(smallvec![ga, gb])
    }
    // t = tA B + A tB
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        product_jvp(ctx, mm)
    }
    crate::saved_tensors!(a => "self", b => "mat2");
}

/// The product of a matrix and a vector.
pub fn mv(a: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (sa, sv) = (a.shape(), v.shape());
    if sa.len() != 2 || sv.len() != 1 {
        return Err(Error::runtime(format!(
            "vector + matrix @ vector expected, got {}, {}, {}",
            1,
            sa.len(),
            sv.len()
        )));
    }
    if sa[1] != sv[0] {
        return Err(Error::runtime(format!(
            "size mismatch, got input ({}), mat ({}x{}), vec ({})",
            sa[0], sa[0], sa[1], sv[0]
        )));
    }
    let dtype = same_dtype(a, v, "mv")?;
    let dv = v.data();
    let col = dv.restrided(smallvec![sv[0], 1], smallvec![dv.strides[0], 0], dv.offset);
    let r = kernels::matmul2d(&a.data(), &col, dtype);
    let out = Tensor::from_data(r.restrided(smallvec![sa[0]], smallvec![1], 0));
    record(out, &[a, v], |_| MvBackward { a: SavedTensor::input(a), v: SavedTensor::input(v) })
}

/// d(Av)/dA = g v^T, d(Av)/dv = A^T g
pub struct MvBackward {
    a: SavedTensor,
    v: SavedTensor,
}
impl Backward for MvBackward {
    fn name(&self) -> &'static str {
        "MvBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let ga = if ctx.needs(0) { Some(mul(&unsqueeze(g, 1)?, &unsqueeze(&self.v.unpack(ctx)?, 0)?)?) } else { None };
        let gv = if ctx.needs(1) { Some(mv(&t(&self.a.unpack(ctx)?)?, g)?) } else { None };
        Ok(smallvec![ga, gv])
    }
    // t = tA v + A tv
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        product_jvp(ctx, mv)
    }
    crate::saved_tensors!(a => "self", v => "vec");
}

/// The batched product of two 3-d tensors.
pub fn bmm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() != 3 {
        return Err(Error::runtime("batch1 must be a 3D tensor"));
    }
    if sb.len() != 3 {
        return Err(Error::runtime("batch2 must be a 3D tensor"));
    }
    if sa[0] != sb[0] || sa[2] != sb[1] {
        return Err(Error::runtime(format!(
            "Expected size for first two dimensions of batch2 tensor to be: [{}, {}] but got: [{}, {}].",
            sa[0], sa[2], sb[0], sb[1]
        )));
    }
    let dtype = same_dtype(a, b, "bmm")?;
    let (da, db) = (a.data(), b.data());
    let (n, m, p) = (sa[1], sa[2], sb[2]);
    let mut out: Vec<TensorData> = Vec::with_capacity(sa[0]);
    for i in 0..sa[0] {
        let ai = da.restrided(smallvec![n, m], smallvec![da.strides[1], da.strides[2]], da.offset + i * da.strides[0]);
        let bi = db.restrided(smallvec![m, p], smallvec![db.strides[1], db.strides[2]], db.offset + i * db.strides[0]);
        out.push(kernels::matmul2d(&ai, &bi, dtype));
    }
    let joined = crate::with_dtype!(dtype, T => {
        let mut all: Vec<T> = Vec::with_capacity(sa[0] * n * p);
        for o in &out {
            all.extend_from_slice(&kernels::values::<T>(o));
        }
        TensorData::from_vec(all, smallvec![sa[0], n, p])
    });
    let out = Tensor::from_data(joined);
    record(out, &[a, b], |_| BmmBackward { a: SavedTensor::input(a), b: SavedTensor::input(b) })
}

/// d(AB)/dA = G B^T, d(AB)/dB = A^T G, per batch
pub struct BmmBackward {
    a: SavedTensor,
    b: SavedTensor,
}
impl Backward for BmmBackward {
    fn name(&self) -> &'static str {
        "BmmBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let ga = if ctx.needs(0) { Some(bmm(g, &transpose(&self.b.unpack(ctx)?, 1, 2)?)?) } else { None };
        let gb = if ctx.needs(1) { Some(bmm(&transpose(&self.a.unpack(ctx)?, 1, 2)?, g)?) } else { None };
        Ok(smallvec![ga, gb])
    }
    // t = tA B + A tB, per batch
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        product_jvp(ctx, bmm)
    }
    crate::saved_tensors!(a => "self", b => "mat2");
}

/// `a @ b` with numpy semantics, dispatched to dot/mv/mm/bmm as PyTorch does, so the graph
/// has PyTorch's nodes.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    let (d1, d2) = (sa.len(), sb.len());
    if d1 == 0 || d2 == 0 {
        return Err(Error::runtime(format!(
            "both arguments to matmul need to be at least 1D, but they are {d1}D and {d2}D"
        )));
    }
    match (d1, d2) {
        (1, 1) => dot(a, b),
        (2, 1) => mv(a, b),
        (1, 2) => squeeze_named(&mm(&unsqueeze(a, 0)?, b)?, 0, "SqueezeBackward4"),
        (2, 2) => mm(a, b),
        // PyTorch folds `b` instead when `a` needs its gradient: (b^T a^T)^T, copied back to
        // contiguous (`CloneBackward0`).
        (2, _) if a.requires_grad() && sa[1] == sb[d2 - 2] => {
            let r = matmul(&super::view::transpose(b, -1, -2)?, &super::view::t(a)?)?;
            super::view::contiguous(&super::view::transpose(&r, -1, -2)?)
        }
        (_, 1) | (_, 2) if d1 >= 3 => {
            let k = sa[d1 - 1];
            if sb[0] != k {
                return Err(Error::runtime(format!(
                    "mm: mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})",
                    shape::numel(&sa[..d1 - 1]),
                    k,
                    sb[0],
                    if d2 == 2 { sb[1] } else { 1 }
                )));
            }
            let folded = reshape_to(a, &[shape::numel(&sa[..d1 - 1]), k])?;
            let mut out_shape: Shape = sa[..d1 - 1].into();
            let r = if d2 == 2 {
                out_shape.push(sb[1]);
                mm(&folded, b)?
            } else {
                mv(&folded, b)?
            };
            unsafe_view(&r, &out_shape)
        }
        _ => {
            // Batched: broadcast the batch dims, fold them into one, bmm, unfold.
            let (n, m1) = if d1 >= 2 { (sa[d1 - 2], sa[d1 - 1]) } else { (1, sa[0]) };
            let (m2, p) = if d2 >= 2 { (sb[d2 - 2], sb[d2 - 1]) } else { (sb[0], 1) };
            let ba: &[usize] = if d1 > 2 { &sa[..d1 - 2] } else { &[] };
            let bb: &[usize] = if d2 > 2 { &sb[..d2 - 2] } else { &[] };
            let batch = shape::broadcast_shapes(ba, bb)?;
            let nb = shape::numel(&batch);
            if m1 != m2 {
                return Err(Error::runtime(format!(
                    "Expected size for first two dimensions of batch2 tensor to be: [{nb}, {m1}] but got: [{nb}, {m2}]."
                )));
            }
            let a3 = if d1 == 1 { unsqueeze(a, 0)? } else { a.clone() };
            let b3 = if d2 == 1 { unsqueeze(b, 1)? } else { b.clone() };
            let mut ea: Shape = batch.clone();
            ea.extend([n, m1]);
            let mut eb: Shape = batch.clone();
            eb.extend([m2, p]);
            let a3 = reshape_to(&expand_to(&a3, &ea)?, &[nb, n, m1])?;
            let b3 = reshape_to(&expand_to(&b3, &eb)?, &[nb, m2, p])?;
            let r = bmm(&a3, &b3)?;
            let mut out_shape: Shape = batch;
            if d1 > 1 {
                out_shape.push(n);
            }
            if d2 > 1 {
                out_shape.push(p);
            }
            unsafe_view(&r, &out_shape)
        }
    }
}

/// The values of `bias + a @ b` in one gemm pass (bias written first, the product added onto
/// it) for float32/float64 matrices whose sizes agree and whose bias broadcasts to the result;
/// `None` when `addmm` must take its general path (which also reports bad shapes).
fn fused_addmm(bias: &Tensor, a: &Tensor, b: &Tensor) -> Option<TensorData> {
    let (sa, sb, sbias) = (a.shape(), b.shape(), bias.shape());
    let dtype = a.dtype();
    if !matches!(dtype, crate::dtype::DType::F32 | crate::dtype::DType::F64)
        || sa.len() != 2
        || sb.len() != 2
        || sa[1] != sb[0]
        || sbias.len() > 2
        || !shape::is_expandable_to(&sbias, &[sa[0], sb[1]])
    {
        return None;
    }
    kernels::addmm2d(&bias.data(), &a.data(), &b.data(), dtype)
}

/// `addmm(bias, a, b)`: `bias + a @ b`, bias broadcast (what `linear` records).
pub fn addmm(bias: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    for (name, t) in [("mat1", a), ("self", bias)] {
        if t.dtype() != b.dtype() {
            return Err(Error::runtime(format!(
                "{name} and mat2 must have the same dtype, but got {} and {}",
                t.dtype().scalar_type_name(),
                b.dtype().scalar_type_name()
            )));
        }
    }
    // 16-bit floats: the product stays in float32 until the bias is added, then rounds once.
    let dtype = a.dtype();
    if let Some(out) = fused_addmm(bias, a, b) {
        return record(Tensor::from_data(out), &[bias, a, b], |_| AddmmBackward {
            bias_shape: bias.shape(),
            a: SavedTensor::input(a),
            b: SavedTensor::input(b),
            layouts: [column_major(a), column_major(b)],
        });
    }
    let half = dtype.is_half() && b.dtype() == dtype && bias.dtype() == dtype;
    let wide = |t: &Tensor| if half { crate::ops::view::to_dtype(t, crate::dtype::DType::F32) } else { Ok(t.clone()) };
    let product = crate::autograd::untracked(|| mm(&wide(a)?, &wide(b)?))?;
    let out_shape = product.shape();
    if !shape::is_expandable_to(&bias.shape(), &out_shape) {
        return Err(Error::runtime(format!(
            "The expanded size of the tensor ({}) must match the existing size ({}) at non-singleton dimension 1.  Target sizes: {}.  Tensor sizes: {}",
            out_shape[1],
            bias.shape().last().copied().unwrap_or(1),
            shape::fmt_shape(&out_shape),
            shape::fmt_shape(&bias.shape())
        )));
    }
    let out = crate::autograd::untracked(|| {
        let sum = crate::ops::arith::add(&product, &wide(bias)?)?;
        if half {
            crate::ops::view::to_dtype(&sum, dtype)
        } else {
            Ok(sum)
        }
    })?;
    record(out, &[bias, a, b], |_| AddmmBackward {
        bias_shape: bias.shape(),
        a: SavedTensor::input(a),
        b: SavedTensor::input(b),
        layouts: [column_major(a), column_major(b)],
    })
}

/// d(c + AB)/dc = 1 (summed over broadcasting), d/dA = G B^T, d/dB = A^T G
pub struct AddmmBackward {
    bias_shape: Shape,
    a: SavedTensor,
    b: SavedTensor,
    layouts: [bool; 2],
}
impl Backward for AddmmBackward {
    fn name(&self) -> &'static str {
        "AddmmBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let gc = if ctx.needs(0) { Some(crate::ops::view::sum_to(g, &self.bias_shape)?) } else { None };
        let ga = if ctx.needs(1) { Some(mm_grad_a(g, &self.b.unpack(ctx)?, self.layouts[0])?) } else { None };
        let gb = if ctx.needs(2) { Some(mm_grad_b(g, &self.a.unpack(ctx)?, self.layouts[1])?) } else { None };
        Ok(smallvec![gc, ga, gb])
    }
    // t = tc + tA B + A tB
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let (a, b) = (ctx.inputs[1], ctx.inputs[2]);
        Some(ctx.sum_terms([
            Ok(ctx.tangent(0).cloned()),
            ctx.tangent(1).map(|t| mm(t, b)).transpose(),
            ctx.tangent(2).map(|t| mm(a, t)).transpose(),
        ]))
    }
    crate::saved_tensors!(a => "mat1", b => "mat2");
}

/// `linear(x, w, bias)`: `x @ w^T + bias`, recorded as PyTorch does (addmm or mm on 2-D input;
/// other ranks are folded to 2-D and viewed back).
pub fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let xs = x.shape();
    if xs.is_empty() || w.ndim() != 2 {
        let wt = t(w)?;
        let out = matmul(x, &wt)?;
        return match bias {
            Some(b) => crate::ops::arith::add(&out, b),
            None => Ok(out),
        };
    }
    let wt = t(w)?;
    let k = xs[xs.len() - 1];
    if k != w.shape()[1] {
        return Err(Error::runtime(format!(
            "mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})",
            shape::numel(&xs[..xs.len() - 1]),
            k,
            w.shape()[1],
            w.shape()[0]
        )));
    }
    if xs.len() == 1 && bias.is_none() {
        // A vector without bias is PyTorch's `matmul` (`SqueezeBackward4`).
        return matmul(x, &wt);
    }
    if xs.len() == 2 {
        return match bias {
            Some(b) => addmm(b, x, &wt),
            None => mm(x, &wt),
        };
    }
    if let Some(b) = bias.filter(|b| b.ndim() != 1 || !x.data().is_contiguous()) {
        // PyTorch folds the batch dims into one addmm only for a contiguous input and a 1-d
        // bias; otherwise it is matmul, then the bias added (`AddBackward0`).
        return crate::ops::arith::add(&matmul(x, &wt)?, b);
    }
    let folded = reshape_to(x, &[shape::numel(&xs[..xs.len() - 1]), k])?;
    let out = match bias {
        Some(b) => addmm(b, &folded, &wt)?,
        None => mm(&folded, &wt)?,
    };
    let mut out_shape: Shape = xs[..xs.len() - 1].into();
    out_shape.push(w.shape()[0]);
    unsafe_view(&out, &out_shape)
}
