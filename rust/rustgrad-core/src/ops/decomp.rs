//! Matrix decompositions and the ops built on them: `linalg.inv`, `det`, `slogdet`, `solve`,
//! `cholesky`, `qr`, `eigh` and `svd`.
//!
//! Forwards factor each matrix of the batch with faer, in float64; float32 results are rounded
//! once at the end. Backwards are written with matmul, transposes and these same ops, so they
//! differentiate again.

use super::arith::{add, div, mul, neg, sub};
use super::compare::where_;
use super::index::slice;
use super::join::cat;
use super::linalg::matmul;
use super::shaped::{diag_embed, diagonal, triangle};
use super::view::{contiguous, sum_to, transpose, unsqueeze};
use crate::autograd::{any_requires_grad, attach, untracked, Backward, BackwardCtx, Grads, SavedTensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::shape::{self, Shape};
use crate::tensor::Tensor;
use faer::linalg::solvers::{DenseSolveCore, PartialPivLu, SolveCore};
use faer::{Conj, Mat, MatRef, Side};
use smallvec::smallvec;

// ----------------------------------------------------------------------------------------------
// Shared checks and batch plumbing

/// Refuses inputs that are not float32/float64 matrices (PyTorch's messages, prefixed by `op`).
fn check_matrix(op: &str, x: &Tensor) -> Result<()> {
    if x.ndim() < 2 {
        return Err(Error::runtime(format!("{op}: The input tensor A must have at least 2 dimensions.")));
    }
    check_dtype(op, x.dtype())
}

fn check_dtype(op: &str, dtype: DType) -> Result<()> {
    match dtype {
        DType::F32 | DType::F64 => Ok(()),
        d if d.is_float() => Err(Error::NotImplemented(format!(
            "{op}: Low precision dtypes not supported. Got {}",
            d.scalar_type_name()
        ))),
        d => Err(Error::NotImplemented(format!(
            "{op}: Expected a floating point or complex tensor as input. Got {}",
            d.scalar_type_name()
        ))),
    }
}

/// The size of the square matrices of `x`, or PyTorch's error naming both sizes.
fn check_square(op: &str, x: &Tensor) -> Result<usize> {
    let s = x.shape();
    let (m, n) = (s[s.len() - 2], s[s.len() - 1]);
    if m != n {
        return Err(Error::runtime(format!(
            "{op}: A must be batches of square matrices, but they are {m} by {n} matrices"
        )));
    }
    Ok(n)
}

/// `(Batch element 3): ` for batched inputs, nothing for a single matrix.
fn batch_prefix(batched: bool, b: usize) -> String {
    if batched {
        format!("(Batch element {b}): ")
    } else {
        String::new()
    }
}

/// The matrices of a tensor, row-major, in float64.
struct Matrices {
    batch: Shape,
    rows: usize,
    cols: usize,
    values: Vec<f64>,
}

impl Matrices {
    fn of(x: &Tensor) -> Self {
        let s = x.shape();
        let nd = s.len();
        Matrices { batch: s[..nd - 2].into(), rows: s[nd - 2], cols: s[nd - 1], values: x.data().to_vec::<f64>() }
    }
    fn count(&self) -> usize {
        shape::numel(&self.batch)
    }
    fn mat(&self, b: usize) -> Mat<f64> {
        let (m, n) = (self.rows, self.cols);
        let s = &self.values[b * m * n..(b + 1) * m * n];
        Mat::from_fn(m, n, |i, j| s[i * n + j])
    }
}

/// Appends `m` row-major to `out`.
fn push_mat(out: &mut Vec<f64>, m: MatRef<'_, f64>) {
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            out.push(m[(i, j)]);
        }
    }
}

/// Appends the transpose of `m` row-major to `out`.
fn push_mat_t(out: &mut Vec<f64>, m: MatRef<'_, f64>) {
    push_mat(out, m.transpose())
}

/// A tensor of `dtype` (float32 or float64) holding `values`.
fn tensor_of(values: Vec<f64>, shape: &[usize], dtype: DType) -> Result<Tensor> {
    match dtype {
        DType::F32 => Tensor::from_vec(values.into_iter().map(|v| v as f32).collect::<Vec<f32>>(), shape),
        _ => Tensor::from_vec(values, shape),
    }
}

fn shape_with(batch: &[usize], tail: &[usize]) -> Shape {
    let mut s: Shape = batch.into();
    s.extend_from_slice(tail);
    s
}

/// The last two dims swapped.
fn mt(x: &Tensor) -> Result<Tensor> {
    transpose(x, -2, -1)
}

/// A 0-d tensor of `x`'s dtype.
fn scalar_like(x: &Tensor, value: f64) -> Tensor {
    crate::creation::full(&[], value, x.dtype())
}

/// `x[..., None, None]`: a batch of scalars as a batch of 1x1 matrices.
fn as_matrix_scale(x: &Tensor) -> Result<Tensor> {
    unsqueeze(&unsqueeze(x, -1)?, -1)
}

/// An identity mask (bool, `n x n`) for off-diagonal formulas.
fn eye_mask(n: usize) -> Result<Tensor> {
    crate::ops::view::to_dtype(&crate::creation::eye(n, n, DType::F64)?, DType::Bool)
}

/// `x / d` off the diagonal and 0 on it (`d`'s diagonal is ignored, even where it is 0).
fn div_off_diagonal(x: &Tensor, d: &Tensor, n: usize) -> Result<Tensor> {
    let mask = eye_mask(n)?;
    let one = scalar_like(d, 1.0);
    let zero = scalar_like(x, 0.0);
    let safe = where_(&mask, &one, d)?;
    where_(&mask, &zero, &div(x, &safe)?)
}

// ----------------------------------------------------------------------------------------------
// LU: inv, det, slogdet, solve

/// An LU factorization with partial pivoting, the sign of its permutation and its first zero
/// pivot (1-based; 0 when there is none), as LAPACK's `getrf` reports it.
struct Lu {
    lu: PartialPivLu<f64>,
    perm_sign: f64,
    zero_pivot: usize,
}

fn lu_of(a: &Mat<f64>) -> Lu {
    let lu = a.partial_piv_lu();
    let n = a.nrows();
    let zero_pivot = {
        let u = lu.U();
        (0..n).find(|&i| u[(i, i)] == 0.0).map_or(0, |i| i + 1)
    };
    let perm = lu.P().arrays().0;
    let mut seen = vec![false; n];
    let mut perm_sign = 1.0;
    for start in 0..n {
        let mut len = 0;
        let mut i = start;
        while !seen[i] {
            seen[i] = true;
            i = perm[i];
            len += 1;
        }
        if len > 0 && len % 2 == 0 {
            perm_sign = -perm_sign;
        }
    }
    Lu { lu, perm_sign, zero_pivot }
}

impl Lu {
    /// `(sign, log|det|)`; a zero pivot gives a signed zero sign and `-inf`.
    fn slogdet(&self) -> (f64, f64) {
        let u = self.lu.U();
        let (mut sign, mut log) = (self.perm_sign, 0.0);
        for i in 0..u.nrows() {
            let p = u[(i, i)];
            sign *= if p > 0.0 {
                1.0
            } else if p < 0.0 {
                -1.0
            } else {
                p
            };
            log += p.abs().ln();
        }
        (sign, log)
    }
    fn det(&self) -> f64 {
        let u = self.lu.U();
        (0..u.nrows()).fold(self.perm_sign, |acc, i| acc * u[(i, i)])
    }
}

/// `linalg.inv_ex(A)`: the inverses and, per matrix, the first zero pivot (int32; 0 when
/// invertible). With `check_errors`, a singular matrix raises `LinAlgError`.
pub fn inv_ex(a: &Tensor, check_errors: bool) -> Result<(Tensor, Tensor)> {
    const OP: &str = "linalg.inv";
    check_matrix(OP, a)?;
    check_square(OP, a)?;
    let m = Matrices::of(a);
    let batched = a.ndim() > 2;
    let mut out = Vec::with_capacity(m.values.len());
    let mut info = Vec::with_capacity(m.count());
    for b in 0..m.count() {
        let lu = lu_of(&m.mat(b));
        if lu.zero_pivot > 0 && check_errors {
            return Err(Error::LinAlg(format!(
                "{OP}: {}The diagonal element {} is zero, the inversion could not be completed because the input matrix is singular.",
                batch_prefix(batched, b),
                lu.zero_pivot
            )));
        }
        info.push(lu.zero_pivot as i32);
        push_mat(&mut out, lu.lu.inverse().as_ref());
    }
    let inv = tensor_of(out, &a.shape(), a.dtype())?;
    let info = Tensor::from_vec(info, &m.batch)?;
    if any_requires_grad(&[a]) {
        attach(&[&inv, &info], &[a], InvBackward { inv: SavedTensor::output(&inv, 0) }.into())?;
    }
    Ok((inv, info))
}

/// `linalg.inv(A)`.
pub fn inv(a: &Tensor) -> Result<Tensor> {
    Ok(inv_ex(a, true)?.0)
}

/// d A⁻¹ = -A⁻¹ dA A⁻¹, so gA = -A⁻ᵀ g A⁻ᵀ
pub struct InvBackward {
    inv: SavedTensor,
}
impl Backward for InvBackward {
    fn name(&self) -> &'static str {
        "LinalgInvExBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let Some(g) = grads.first().and_then(|g| g.as_ref()) else { return Ok(smallvec![None]) };
        let inv_t = mt(&self.inv.unpack(ctx)?)?;
        Ok(smallvec![Some(neg(&matmul(&matmul(&inv_t, g)?, &inv_t)?)?)])
    }
    crate::saved_tensors!(inv);
}

/// `linalg.det(A)`.
pub fn det(a: &Tensor) -> Result<Tensor> {
    const OP: &str = "linalg.det";
    check_matrix(OP, a)?;
    check_square(OP, a)?;
    let m = Matrices::of(a);
    let values: Vec<f64> = (0..m.count()).map(|b| lu_of(&m.mat(b)).det()).collect();
    let out = tensor_of(values, &m.batch, a.dtype())?;
    if any_requires_grad(&[a]) {
        attach(&[&out], &[a], DetBackward { a: SavedTensor::input(a), det: SavedTensor::output(&out, 0) }.into())?;
    }
    Ok(out)
}

/// d det(A)/dA = det(A) A⁻ᵀ (0 for a singular A, whose det is 0)
pub struct DetBackward {
    a: SavedTensor,
    det: SavedTensor,
}
impl Backward for DetBackward {
    fn name(&self) -> &'static str {
        "LinalgDetBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let Some(g) = grads.first().and_then(|g| g.as_ref()) else { return Ok(smallvec![None]) };
        let a = self.a.unpack(ctx)?;
        let scale = as_matrix_scale(&mul(g, &self.det.unpack(ctx)?)?)?;
        let (inv, info) = inv_ex(&a, false)?;
        let inv_t = mt(&inv)?;
        let inv_t = if info.to_vec::<i64>().iter().any(|&i| i != 0) {
            // Singular matrices: their det is 0, so their gradient is 0 (not 0 * inf).
            let singular = as_matrix_scale(&super::compare::compare(
                &info,
                &Tensor::wrapped_scalar(0i64),
                crate::kernels::Compare::Ne,
            )?)?;
            where_(&singular, &scalar_like(&inv_t, 0.0), &inv_t)?
        } else {
            inv_t
        };
        Ok(smallvec![Some(mul(&scale, &inv_t)?)])
    }
    crate::saved_tensors!(a, det);
}

/// `linalg.slogdet(A)`: the sign of the determinant and the log of its absolute value.
pub fn slogdet(a: &Tensor) -> Result<(Tensor, Tensor)> {
    const OP: &str = "linalg.slogdet";
    check_matrix(OP, a)?;
    check_square(OP, a)?;
    let m = Matrices::of(a);
    let (signs, logs): (Vec<f64>, Vec<f64>) = (0..m.count()).map(|b| lu_of(&m.mat(b)).slogdet()).unzip();
    let sign = tensor_of(signs, &m.batch, a.dtype())?;
    let logabs = tensor_of(logs, &m.batch, a.dtype())?;
    if any_requires_grad(&[a]) {
        attach(&[&sign, &logabs], &[a], SlogdetBackward { a: SavedTensor::input(a) }.into())?;
    }
    Ok((sign, logabs))
}

/// d log|det A|/dA = A⁻ᵀ (the sign is piecewise constant)
pub struct SlogdetBackward {
    a: SavedTensor,
}
impl Backward for SlogdetBackward {
    fn name(&self) -> &'static str {
        "LinalgSlogdetBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let Some(g) = grads.get(1).and_then(|g| g.as_ref()) else { return Ok(smallvec![None]) };
        let a = self.a.unpack(ctx)?;
        let inv_t = mt(&inv_ex(&a, false)?.0)?;
        Ok(smallvec![Some(mul(&as_matrix_scale(g)?, &inv_t)?)])
    }
    crate::saved_tensors!(a);
}

/// Whether `b` is a (batch of) vector(s) for `A X = B`: 1-D, or one dim less than `A` with
/// `A`'s leading sizes.
fn solve_vector_case(a: &Tensor, b: &Tensor) -> bool {
    let (sa, sb) = (a.shape(), b.shape());
    sb.len() == 1 || (sb.len() + 1 == sa.len() && sb[..] == sa[..sa.len() - 1])
}

/// `linalg.solve(A, B, left)`: `X` with `A X = B` (or `X A = B` when `left` is false).
pub fn solve(a: &Tensor, b: &Tensor, left: bool) -> Result<Tensor> {
    const OP: &str = "linalg.solve";
    check_matrix(OP, a)?;
    check_square(OP, a)?;
    if a.dtype() != b.dtype() {
        return Err(Error::runtime(format!(
            "{OP}: Expected A and B to have the same dtype, but found A of type {} and B of type {} instead",
            a.dtype().scalar_type_name(),
            b.dtype().scalar_type_name()
        )));
    }
    let vector = solve_vector_case(a, b);
    let x = untracked(|| solve_values(a, b, left, vector))?;
    if any_requires_grad(&[a, b]) {
        let op = SolveBackward { a: SavedTensor::input(a), x: SavedTensor::output(&x, 0), left, vector };
        attach(&[&x], &[a, b], op.into())?;
    }
    Ok(x)
}

/// The forward of [`solve`], with grad mode off.
fn solve_values(a: &Tensor, b: &Tensor, left: bool, vector: bool) -> Result<Tensor> {
    if !left {
        // X A = B  <=>  Aᵀ Xᵀ = Bᵀ.
        let bt = if vector { b.clone() } else { mt(b)? };
        let xt = solve_values(&mt(a)?, &bt, true, vector)?;
        return if vector { Ok(xt) } else { contiguous(&mt(&xt)?) };
    }
    let bm = if vector { unsqueeze(b, -1)? } else { b.clone() };
    let (sa, sb) = (a.shape(), bm.shape());
    let n = sa[sa.len() - 1];
    if sb.len() < 2 || sb[sb.len() - 2] != n {
        let (r, c) = if sb.len() >= 2 { (sb[sb.len() - 2], sb[sb.len() - 1]) } else { (sb[0], 1) };
        return Err(Error::runtime(format!(
            "linalg.solve: Incompatible shapes of A and B for the equation AX = B ({n}x{n} and {r}x{c})"
        )));
    }
    let k = sb[sb.len() - 1];
    let batch = shape::broadcast_shapes(&sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
    let ea = super::view::expand_to(a, &shape_with(&batch, &[n, n]))?;
    let eb = super::view::expand_to(&bm, &shape_with(&batch, &[n, k]))?;
    let (ma, mb) = (Matrices::of(&ea), Matrices::of(&eb));
    let batched = !batch.is_empty();
    let mut out = Vec::with_capacity(mb.values.len());
    for i in 0..ma.count() {
        let lu = lu_of(&ma.mat(i));
        if lu.zero_pivot > 0 {
            return Err(Error::LinAlg(format!(
                "torch.linalg.solve: {}The solver failed because the input matrix is singular.",
                batch_prefix(batched, i)
            )));
        }
        let mut rhs = mb.mat(i);
        lu.lu.solve_in_place_with_conj(Conj::No, rhs.as_mut());
        push_mat(&mut out, rhs.as_ref());
    }
    let mut out_shape = shape_with(&batch, &[n, k]);
    if vector {
        out_shape.pop();
    }
    tensor_of(out, &out_shape, a.dtype())
}

/// X = A⁻¹B: gB = A⁻ᵀ g, gA = -gB Xᵀ; X = B A⁻¹: gB = g A⁻ᵀ, gA = -Xᵀ gB
pub struct SolveBackward {
    a: SavedTensor,
    x: SavedTensor,
    left: bool,
    vector: bool,
}
impl Backward for SolveBackward {
    fn name(&self) -> &'static str {
        "LinalgSolveExBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let Some(g) = grads.first().and_then(|g| g.as_ref()) else { return Ok(smallvec![None, None]) };
        let a = self.a.unpack(ctx)?;
        let x = self.x.unpack(ctx)?;
        let gb = solve(&mt(&a)?, g, self.left)?;
        let ga = if ctx.needs(0) {
            let as_col = |t: &Tensor, dim| if self.vector { unsqueeze(t, dim) } else { Ok(t.clone()) };
            let ga = if self.left {
                neg(&matmul(&as_col(&gb, -1)?, &mt(&as_col(&x, -1)?)?)?)?
            } else {
                neg(&matmul(&mt(&as_col(&x, -2)?)?, &as_col(&gb, -2)?)?)?
            };
            Some(sum_to(&ga, &a.shape())?)
        } else {
            None
        };
        // B may have been broadcast against A's batch dims.
        let gb = if ctx.needs(1) { Some(gb) } else { None };
        Ok(smallvec![ga, gb])
    }
    crate::saved_tensors!(a, x);
}

// ----------------------------------------------------------------------------------------------
// Cholesky

/// `linalg.cholesky_ex(A, upper)`: the Cholesky factor (lower, or its transpose when `upper`)
/// and, per matrix, the order of the first leading minor that is not positive-definite.
pub fn cholesky_ex(a: &Tensor, upper: bool, check_errors: bool) -> Result<(Tensor, Tensor)> {
    const OP: &str = "linalg.cholesky";
    check_matrix(OP, a)?;
    let n = check_square(OP, a)?;
    let m = Matrices::of(a);
    let batched = a.ndim() > 2;
    let mut out = Vec::with_capacity(m.values.len());
    let mut info = Vec::with_capacity(m.count());
    for b in 0..m.count() {
        match m.mat(b).llt(Side::Lower) {
            Ok(llt) => {
                info.push(0i32);
                let l = llt.L();
                // faer leaves the strict upper triangle alone: write zeros there ourselves.
                let lower = Mat::from_fn(n, n, |i, j| if i >= j { l[(i, j)] } else { 0.0 });
                if upper {
                    push_mat_t(&mut out, lower.as_ref());
                } else {
                    push_mat(&mut out, lower.as_ref());
                }
            }
            Err(err) => {
                let order = match err {
                    faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index } => index + 1,
                };
                if check_errors {
                    return Err(Error::LinAlg(format!(
                        "{OP}: {}The factorization could not be completed because the input is not positive-definite (the leading minor of order {order} is not positive-definite).",
                        batch_prefix(batched, b)
                    )));
                }
                info.push(order as i32);
                out.extend(std::iter::repeat_n(0.0, n * n));
            }
        }
    }
    let l = tensor_of(out, &a.shape(), a.dtype())?;
    let info = Tensor::from_vec(info, &m.batch)?;
    if any_requires_grad(&[a]) {
        attach(&[&l, &info], &[a], CholeskyBackward { l: SavedTensor::output(&l, 0), upper }.into())?;
    }
    Ok((l, info))
}

/// A = L Lᵀ: gA = sym(L⁻ᵀ Φ(Lᵀ gL) L⁻¹), Φ = lower triangle with the diagonal halved
pub struct CholeskyBackward {
    l: SavedTensor,
    upper: bool,
}
impl Backward for CholeskyBackward {
    fn name(&self) -> &'static str {
        "LinalgCholeskyExBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let Some(g) = grads.first().and_then(|g| g.as_ref()) else { return Ok(smallvec![None]) };
        let l = self.l.unpack(ctx)?;
        let (l, gl) = if self.upper { (mt(&l)?, mt(g)?) } else { (l, g.clone()) };
        let p = matmul(&mt(&l)?, &gl)?;
        let half_diag = mul(&diag_embed(&diagonal(&p, 0, -2, -1, false)?, 0, -2, -1)?, &scalar_like(&p, 0.5))?;
        let phi = sub(&triangle(&p, 0, false)?, &half_diag)?;
        let l_inv = inv(&l)?;
        let s = matmul(&matmul(&mt(&l_inv)?, &phi)?, &l_inv)?;
        let ga = mul(&add(&s, &mt(&s)?)?, &scalar_like(&s, 0.5))?;
        Ok(smallvec![Some(ga)])
    }
    crate::saved_tensors!(l);
}

// ----------------------------------------------------------------------------------------------
// QR

/// What `linalg.qr` returns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum QrMode {
    /// Q is `m x k`, R is `k x n` (k = min(m, n)).
    Reduced,
    /// Q is `m x m`, R is `m x n`.
    Complete,
    /// Only R (`k x n`); Q is empty.
    R,
}

/// `linalg.qr(A, mode)`: Householder QR as LAPACK computes it (R's diagonal may be negative).
pub fn qr(a: &Tensor, mode: QrMode) -> Result<(Tensor, Tensor)> {
    const OP: &str = "linalg.qr";
    check_matrix(OP, a)?;
    let m = Matrices::of(a);
    let (rows, cols) = (m.rows, m.cols);
    let k = rows.min(cols);
    let (mut qs, mut rs) = (Vec::new(), Vec::new());
    for b in 0..m.count() {
        let f = m.mat(b).qr();
        match mode {
            QrMode::Complete => {
                push_mat(&mut qs, f.compute_Q().as_ref());
                // R is m x n: the k x n factor above zero rows.
                push_mat(&mut rs, f.thin_R());
                rs.extend(std::iter::repeat_n(0.0, (rows - k) * cols));
            }
            QrMode::Reduced | QrMode::R => {
                if mode == QrMode::Reduced {
                    push_mat(&mut qs, f.compute_thin_Q().as_ref());
                }
                push_mat(&mut rs, f.thin_R());
            }
        }
    }
    let (q_shape, r_shape): (Shape, Shape) = match mode {
        QrMode::Reduced => (shape_with(&m.batch, &[rows, k]), shape_with(&m.batch, &[k, cols])),
        QrMode::Complete => (shape_with(&m.batch, &[rows, rows]), shape_with(&m.batch, &[rows, cols])),
        QrMode::R => (smallvec![0], shape_with(&m.batch, &[k, cols])),
    };
    let q = tensor_of(qs, &q_shape, a.dtype())?;
    let r = tensor_of(rs, &r_shape, a.dtype())?;
    if any_requires_grad(&[a]) {
        let op = QrBackward { q: SavedTensor::output(&q, 0), r: SavedTensor::output(&r, 1), mode, rows, cols };
        attach(&[&q, &r], &[a], op.into())?;
    }
    Ok((q, r))
}

/// A = QR with m >= n: gA = Q (gR + tril(Qᵀ gQ - gQᵀ Q + R gRᵀ - gR Rᵀ) R⁻ᵀ) + (gQ - Q Qᵀ gQ) R⁻ᵀ
fn qr_grad_tall(q: &Tensor, r: &Tensor, gq: &Tensor, gr: &Tensor) -> Result<Tensor> {
    let qdq = matmul(&mt(q)?, gq)?;
    let rdr = matmul(r, &mt(gr)?)?;
    let skew = add(&sub(&qdq, &mt(&qdq)?)?, &sub(&rdr, &mt(&rdr)?)?)?;
    let r_inv_t = mt(&inv(r)?)?;
    let grad_a = matmul(q, &add(gr, &matmul(&triangle(&skew, 0, false)?, &r_inv_t)?)?)?;
    let grad_b = matmul(&sub(gq, &matmul(q, &qdq)?)?, &r_inv_t)?;
    add(&grad_a, &grad_b)
}

/// See [`qr`]; m < n splits A = [X Y] with X square: X = Q U, Y = Q V
pub struct QrBackward {
    q: SavedTensor,
    r: SavedTensor,
    mode: QrMode,
    rows: usize,
    cols: usize,
}
impl Backward for QrBackward {
    fn name(&self) -> &'static str {
        "LinalgQrBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        if self.mode == QrMode::R {
            return Err(Error::runtime("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. Please use linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr."));
        }
        if self.mode == QrMode::Complete && self.rows > self.cols {
            return Err(Error::runtime(
                "The QR decomposition is not differentiable when mode='complete' and nrows > ncols.",
            ));
        }
        let q = self.q.unpack(ctx)?;
        let r = self.r.unpack(ctx)?;
        let gq = grads.first().cloned().flatten().unwrap_or(crate::creation::zeros_like(&q));
        let gr = grads.get(1).cloned().flatten().unwrap_or(crate::creation::zeros_like(&r));
        let (m, n) = (self.rows, self.cols);
        if m >= n {
            return Ok(smallvec![Some(qr_grad_tall(&q, &r, &gq, &gr)?)]);
        }
        // dY = Q gV;  dX = tall gradient of (Q, U) with gQ + Y gVᵀ and gU
        let u = slice(&r, -1, 0, m, 1)?;
        let v = slice(&r, -1, m, n, 1)?;
        let gu = slice(&gr, -1, 0, m, 1)?;
        let gv = slice(&gr, -1, m, n, 1)?;
        let y = matmul(&q, &v)?;
        let dx = qr_grad_tall(&q, &u, &add(&gq, &matmul(&y, &mt(&gv)?)?)?, &gu)?;
        let dy = matmul(&q, &gv)?;
        Ok(smallvec![Some(cat(&[dx, dy], -1)?)])
    }
    crate::saved_tensors!(q, r);
}

// ----------------------------------------------------------------------------------------------
// Symmetric eigendecomposition

/// `linalg.eigh(A, UPLO)`: eigenvalues in ascending order and orthonormal eigenvectors (as
/// columns) of the symmetric matrices whose lower (`upper` false) or upper triangle `A` holds.
pub fn eigh(a: &Tensor, upper: bool) -> Result<(Tensor, Tensor)> {
    const OP: &str = "linalg.eigh";
    check_matrix(OP, a)?;
    let n = check_square(OP, a)?;
    let m = Matrices::of(a);
    let (mut ls, mut vs) = (Vec::with_capacity(m.count() * n), Vec::with_capacity(m.values.len()));
    for b in 0..m.count() {
        let side = if upper { Side::Upper } else { Side::Lower };
        let e = m.mat(b).self_adjoint_eigen(side).map_err(|_| {
            Error::LinAlg(format!("{OP}: {}The algorithm failed to converge.", batch_prefix(a.ndim() > 2, b)))
        })?;
        let s = e.S();
        ls.extend((0..n).map(|i| s[i]));
        push_mat(&mut vs, e.U());
    }
    let l = tensor_of(ls, &shape_with(&m.batch, &[n]), a.dtype())?;
    let v = tensor_of(vs, &a.shape(), a.dtype())?;
    if any_requires_grad(&[a]) {
        let op = EighBackward { l: SavedTensor::output(&l, 0), v: SavedTensor::output(&v, 1), n };
        attach(&[&l, &v], &[a], op.into())?;
    }
    Ok((l, v))
}

/// A = V diag(λ) Vᵀ: gA = V (diag(gλ) + (Vᵀ gV) / (λⱼ - λᵢ) off the diagonal) Vᵀ
pub struct EighBackward {
    l: SavedTensor,
    v: SavedTensor,
    n: usize,
}
impl Backward for EighBackward {
    fn name(&self) -> &'static str {
        "LinalgEighBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (gl, gv) = (grads.first().cloned().flatten(), grads.get(1).cloned().flatten());
        if gl.is_none() && gv.is_none() {
            return Ok(smallvec![None]);
        }
        let v = self.v.unpack(ctx)?;
        let mut inner: Option<Tensor> = gl.as_ref().map(|g| diag_embed(g, 0, -2, -1)).transpose()?;
        if let Some(gv) = &gv {
            let l = self.l.unpack(ctx)?;
            let gaps = sub(&unsqueeze(&l, -2)?, &unsqueeze(&l, -1)?)?;
            let term = div_off_diagonal(&matmul(&mt(&v)?, gv)?, &gaps, self.n)?;
            inner = Some(match inner {
                Some(i) => add(&i, &term)?,
                None => term,
            });
        }
        let inner = inner.expect("one of the gradients is present");
        Ok(smallvec![Some(matmul(&matmul(&v, &inner)?, &mt(&v)?)?)])
    }
    crate::saved_tensors!(l, v);
}

// ----------------------------------------------------------------------------------------------
// SVD

/// `linalg.svd(A, full_matrices)`: `U`, the singular values in descending order, and `Vh`.
pub fn svd(a: &Tensor, full_matrices: bool) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "linalg.svd";
    check_matrix(OP, a)?;
    let m = Matrices::of(a);
    let (rows, cols) = (m.rows, m.cols);
    let k = rows.min(cols);
    let (mut us, mut ss, mut vhs) = (Vec::new(), Vec::with_capacity(m.count() * k), Vec::new());
    for b in 0..m.count() {
        let mat = m.mat(b);
        let f = if full_matrices { mat.svd() } else { mat.thin_svd() };
        let f = f.map_err(|_| {
            Error::LinAlg(format!(
                "{OP}: {}The algorithm failed to converge because the input matrix is ill-conditioned or has too many repeated singular values (error code: {}).",
                batch_prefix(a.ndim() > 2, b),
                k.saturating_sub(1)
            ))
        })?;
        let s = f.S();
        ss.extend((0..k).map(|i| s[i]));
        push_mat(&mut us, f.U());
        push_mat_t(&mut vhs, f.V());
    }
    let (uc, vr) = if full_matrices { (rows, cols) } else { (k, k) };
    let u = tensor_of(us, &shape_with(&m.batch, &[rows, uc]), a.dtype())?;
    let s = tensor_of(ss, &shape_with(&m.batch, &[k]), a.dtype())?;
    let vh = tensor_of(vhs, &shape_with(&m.batch, &[vr, cols]), a.dtype())?;
    if any_requires_grad(&[a]) {
        let op = SvdBackward {
            u: SavedTensor::output(&u, 0),
            s: SavedTensor::output(&s, 1),
            vh: SavedTensor::output(&vh, 2),
            rows,
            cols,
        };
        attach(&[&u, &s, &vh], &[a], op.into())?;
    }
    Ok((u, s, vh))
}

/// A = U S Vᵀ: gA = U [(F∘(UᵀgU − gUᵀU)) S + diag(gS) + S (F∘(VᵀgV − gVᵀV))] Vᵀ
/// + (I − UUᵀ) gU S⁻¹ Vᵀ + U S⁻¹ gVᵀ (I − VVᵀ), with Fᵢⱼ = 1/(sⱼ² − sᵢ²)
pub struct SvdBackward {
    u: SavedTensor,
    s: SavedTensor,
    vh: SavedTensor,
    rows: usize,
    cols: usize,
}
impl Backward for SvdBackward {
    fn name(&self) -> &'static str {
        "LinalgSvdBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (m, n) = (self.rows, self.cols);
        let k = m.min(n);
        let g = |i: usize| grads.get(i).cloned().flatten();
        let (gu, gs, gvh) = (g(0), g(1), g(2));
        if gu.is_none() && gs.is_none() && gvh.is_none() {
            return Ok(smallvec![None]);
        }
        // With full matrices, only the first k columns of U (rows of Vh) matter.
        let narrow = |t: Tensor, dim: i64| -> Result<Tensor> {
            if t.shape()[(t.ndim() as i64 + dim) as usize] > k {
                slice(&t, dim, 0, k, 1)
            } else {
                Ok(t)
            }
        };
        let u = narrow(self.u.unpack(ctx)?, -1)?;
        let s = self.s.unpack(ctx)?;
        let v = mt(&narrow(self.vh.unpack(ctx)?, -2)?)?;
        let gu = gu.map(|t| narrow(t, -1)).transpose()?;
        let gv = gvh.map(|t| narrow(t, -2).and_then(|t| mt(&t))).transpose()?;
        let mut inner: Option<Tensor> = gs.as_ref().map(|gs| diag_embed(gs, 0, -2, -1)).transpose()?;
        let accumulate = |inner: Option<Tensor>, term: Tensor| -> Result<Option<Tensor>> {
            Ok(Some(match inner {
                Some(i) => add(&i, &term)?,
                None => term,
            }))
        };
        let s_row = unsqueeze(&s, -2)?; // scales columns: X S
        let s_col = unsqueeze(&s, -1)?; // scales rows: S X
        let mut outer: Option<Tensor> = None;
        if gu.is_some() || gv.is_some() {
            let s2 = mul(&s, &s)?;
            let gaps = sub(&unsqueeze(&s2, -2)?, &unsqueeze(&s2, -1)?)?;
            if let Some(gu) = &gu {
                let utgu = matmul(&mt(&u)?, gu)?;
                let j = div_off_diagonal(&sub(&utgu, &mt(&utgu)?)?, &gaps, k)?;
                inner = accumulate(inner, mul(&j, &s_row)?)?;
                if m > k {
                    // (I − UUᵀ) gU S⁻¹ Vᵀ
                    let proj = sub(gu, &matmul(&u, &utgu)?)?;
                    outer = accumulate(outer, matmul(&div(&proj, &s_row)?, &mt(&v)?)?)?;
                }
            }
            if let Some(gv) = &gv {
                let vtgv = matmul(&mt(&v)?, gv)?;
                let kk = div_off_diagonal(&sub(&vtgv, &mt(&vtgv)?)?, &gaps, k)?;
                inner = accumulate(inner, mul(&s_col, &kk)?)?;
                if n > k {
                    // U S⁻¹ gVᵀ (I − VVᵀ)
                    let proj = sub(&mt(gv)?, &matmul(&mt(&vtgv)?, &mt(&v)?)?)?;
                    outer = accumulate(outer, matmul(&u, &div(&proj, &s_col)?)?)?;
                }
            }
        }
        let inner = inner.expect("one of the gradients is present");
        let mut ga = matmul(&matmul(&u, &inner)?, &mt(&v)?)?;
        if let Some(o) = outer {
            ga = add(&ga, &o)?;
        }
        Ok(smallvec![Some(ga)])
    }
    crate::saved_tensors!(u, s, vh);
}
