//! The LSTM cell's element-wise step as one op, for `nn.LSTM`'s time loop: from the gate
//! pre-activations `gates = [i | f | g | o]` (`B x 4H`) and the cell state `c` (`B x H`),
//!
//! - `c' = sigmoid(f) * c + sigmoid(i) * tanh(g)`,
//! - `h = sigmoid(o) * tanh(c')`,
//!
//! with the bits of those element-wise ops run one by one. Its backward is one pass when no graph
//! is being built, and the same formulas in differentiable ops otherwise.

use super::arith::{add, mul, rsub_scalar};
use super::join::{cat, split};
use super::unary::{sigmoid, tanh};

use crate::autograd::{any_requires_grad, attach, check_not_inference, Backward, BackwardCtx, Grads, SavedTensor};
use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::kernels::{self, sigmoid_one, tanh_one};
use crate::ops::BackwardOp;
use crate::shape::{self, Shape};
use crate::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use smallvec::smallvec;

/// `(h, c')` of one LSTM step (see the module's doc), for float32 or float64 `gates` (`B x 4H`)
/// and `c` (`B x H`) of one dtype.
pub fn lstm_cell(gates: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
    let (gs, cs) = (gates.shape(), c.shape());
    let dtype = gates.dtype();
    if gs.len() != 2 || cs.len() != 2 || gs[1] != 4 * cs[1] || gs[0] != cs[0] {
        return Err(Error::runtime(format!(
            "lstm_cell: gates of shape {} do not match a cell state of shape {}",
            shape::fmt_shape(&gs),
            shape::fmt_shape(&cs)
        )));
    }
    if !matches!(dtype, DType::F32 | DType::F64) || c.dtype() != dtype {
        return Err(Error::runtime(format!(
            "lstm_cell: expected float32 or float64 gates and cell state of one dtype, got {} and {}",
            dtype.scalar_type_name(),
            c.dtype().scalar_type_name()
        )));
    }
    let (batch, hidden) = (cs[0], cs[1]);
    let (gd, cd) = (gates.data(), c.data());
    let shape: Shape = smallvec![batch, hidden];
    let (h, c_next) = match dtype {
        DType::F64 => forward_values::<f64>(&gd, &cd, hidden, &shape),
        _ => forward_values::<f32>(&gd, &cd, hidden, &shape),
    };
    let (h, c_next) = (Tensor::from_data(h), Tensor::from_data(c_next));
    if any_requires_grad(&[gates, c]) && !gates.is_inference() && !c.is_inference() {
        let op: BackwardOp = LstmCellBackward { gates: SavedTensor::input(gates), c: SavedTensor::input(c) }.into();
        check_not_inference(&[gates, c], &op)?;
        attach(&[&h, &c_next], &[gates, c], op);
    }
    Ok((h, c_next))
}

fn forward_values<T: Float + crate::storage::IntoStorage>(
    gates: &TensorData,
    c: &TensorData,
    hidden: usize,
    shape: &Shape,
) -> (TensorData, TensorData) {
    let (g, c) = (kernels::values::<T>(gates), kernels::values::<T>(c));
    let n = c.len();
    let mut h = crate::alloc::vec_zeroed::<T>(n);
    let mut c_next = crate::alloc::vec_zeroed::<T>(n);
    if hidden > 0 {
        h.par_chunks_mut(hidden)
            .zip(c_next.par_chunks_mut(hidden))
            .zip(g.par_chunks(4 * hidden).zip(c.par_chunks(hidden)))
            .with_min_len(64)
            .for_each_init(
                || vec![T::from_f64(0.0); 5 * hidden],
                |scratch, ((h, cn), (row, c))| {
                    #[cfg(target_arch = "x86_64")]
                    if std::is_x86_feature_detected!("avx2") {
                        // SAFETY: the CPU has AVX2 (checked just above).
                        return unsafe { forward_row_avx2(row, c, h, cn, scratch) };
                    }
                    forward_row(row, c, h, cn, scratch)
                },
            );
    }
    (TensorData::from_vec(h, shape.clone()), TensorData::from_vec(c_next, shape.clone()))
}

/// With `s_x = sigmoid(x)`, `t_x = tanh(x)` and `dc' = dh s_o (1 - t_c'^2) + dc'_in`:
/// d/di = dc' t_g s_i (1 - s_i), d/df = dc' c s_f (1 - s_f), d/dg = dc' s_i (1 - t_g^2),
/// d/do = dh t_c' s_o (1 - s_o), d/dc = dc' s_f
pub struct LstmCellBackward {
    gates: SavedTensor,
    c: SavedTensor,
}
impl Backward for LstmCellBackward {
    fn name(&self) -> &'static str {
        "LstmCellBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (gates, c) = (self.gates.unpack(ctx)?, self.c.unpack(ctx)?);
        let zeros = || crate::creation::zeros(&c.shape(), c.dtype());
        let dh = grads.first().cloned().flatten().unwrap_or_else(zeros);
        let dc_next = grads.get(1).cloned().flatten().unwrap_or_else(zeros);
        if !any_requires_grad(&[&dh, &dc_next, &gates, &c]) && dh.dtype() == c.dtype() && dc_next.dtype() == c.dtype() {
            // no graph to build: one pass
            let (dg, dc) = match c.dtype() {
                DType::F64 => backward_values::<f64>(&gates, &c, &dh, &dc_next),
                _ => backward_values::<f32>(&gates, &c, &dh, &dc_next),
            };
            return Ok(smallvec![Some(Tensor::from_data(dg)), Some(Tensor::from_data(dc))]);
        }
        // the same formulas in differentiable ops (a `create_graph` backward)
        let parts = split(&gates, &[c.shape()[1]; 4], 1, super::join::SplitKind::Size)?;
        let (si, sf, tg, so) = (sigmoid(&parts[0])?, sigmoid(&parts[1])?, tanh(&parts[2])?, sigmoid(&parts[3])?);
        let c_new = add(&mul(&sf, &c)?, &mul(&si, &tg)?)?;
        let tc = tanh(&c_new)?;
        let one_minus = |x: &Tensor| rsub_scalar(x, &Tensor::wrapped_scalar(1.0), 1.0);
        let dcn = add(&mul(&mul(&dh, &so)?, &one_minus(&mul(&tc, &tc)?)?)?, &dc_next)?;
        let di = mul(&mul(&dcn, &tg)?, &mul(&si, &one_minus(&si)?)?)?;
        let df = mul(&mul(&dcn, &c)?, &mul(&sf, &one_minus(&sf)?)?)?;
        let dg = mul(&mul(&dcn, &si)?, &one_minus(&mul(&tg, &tg)?)?)?;
        let d_o = mul(&mul(&dh, &tc)?, &mul(&so, &one_minus(&so)?)?)?;
        let dgates = cat(&[di, df, dg, d_o], 1)?;
        let dc = mul(&dcn, &sf)?;
        Ok(smallvec![Some(dgates), Some(dc)])
    }
    crate::saved_tensors!(gates, c);
}

fn backward_values<T: Float + crate::storage::IntoStorage>(
    gates: &Tensor,
    c: &Tensor,
    dh: &Tensor,
    dc_next: &Tensor,
) -> (TensorData, TensorData) {
    let (batch, hidden) = (c.shape()[0], c.shape()[1]);
    let (gd, cd, dhd, dcd) = (gates.data(), c.data(), dh.data(), dc_next.data());
    let (g, c, dh, dcn) =
        (kernels::values::<T>(&gd), kernels::values::<T>(&cd), kernels::values::<T>(&dhd), kernels::values::<T>(&dcd));
    let mut dg = crate::alloc::vec_zeroed::<T>(batch * 4 * hidden);
    let mut dc = crate::alloc::vec_zeroed::<T>(batch * hidden);
    if hidden > 0 {
        dg.par_chunks_mut(4 * hidden)
            .zip(dc.par_chunks_mut(hidden))
            .zip(
                g.par_chunks(4 * hidden)
                    .zip(c.par_chunks(hidden).zip(dh.par_chunks(hidden).zip(dcn.par_chunks(hidden)))),
            )
            .with_min_len(64)
            .for_each_init(
                || vec![T::from_f64(0.0); 5 * hidden],
                |scratch, ((dg, dc), (row, (c, (dh, dcn))))| {
                    #[cfg(target_arch = "x86_64")]
                    if std::is_x86_feature_detected!("avx2") {
                        // SAFETY: the CPU has AVX2 (checked just above).
                        return unsafe { backward_row_avx2(row, c, dh, dcn, dg, dc, scratch) };
                    }
                    backward_row(row, c, dh, dcn, dg, dc, scratch)
                },
            );
    }
    (TensorData::from_vec(dg, smallvec![batch, 4 * hidden]), TensorData::from_vec(dc, smallvec![batch, hidden]))
}

/// The activations of one row of gates into `act` (`[s_i | s_f | t_g | s_o | t_c']` once `c'`
/// is known), each a simple loop the compiler vectorises.
#[inline(always)]
fn activations<T: Float>(row: &[T], act: &mut [T]) {
    let hidden = row.len() / 4;
    for (part, (a, x)) in act[..4 * hidden].chunks_mut(hidden).zip(row.chunks(hidden)).enumerate() {
        if part == 2 {
            a.iter_mut().zip(x).for_each(|(a, &x)| *a = tanh_one(x));
        } else {
            a.iter_mut().zip(x).for_each(|(a, &x)| *a = sigmoid_one(x));
        }
    }
}

/// One row of [`forward_values`].
#[inline(always)]
fn forward_row<T: Float>(row: &[T], c: &[T], h: &mut [T], cn: &mut [T], act: &mut [T]) {
    let hidden = c.len();
    activations(row, act);
    let (gates, tc) = act.split_at_mut(4 * hidden);
    let (si, rest) = gates.split_at(hidden);
    let (sf, rest) = rest.split_at(hidden);
    let (tg, so) = rest.split_at(hidden);
    for j in 0..hidden {
        // the op-by-op roundings: each product, then their sum
        cn[j] = sf[j] * c[j] + si[j] * tg[j];
    }
    for (t, &x) in tc.iter_mut().zip(cn.iter()) {
        *t = tanh_one(x);
    }
    for j in 0..hidden {
        h[j] = so[j] * tc[j];
    }
}

/// [`forward_row`] compiled for AVX2 (eight lanes; same results, nothing is fused).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn forward_row_avx2<T: Float>(row: &[T], c: &[T], h: &mut [T], cn: &mut [T], act: &mut [T]) {
    forward_row(row, c, h, cn, act)
}

/// One row of [`backward_values`].
#[inline(always)]
fn backward_row<T: Float>(row: &[T], c: &[T], dh: &[T], dcn: &[T], dg: &mut [T], dc: &mut [T], act: &mut [T]) {
    let hidden = c.len();
    let one = T::from_f64(1.0);
    activations(row, act);
    let (gates, tc) = act.split_at_mut(4 * hidden);
    let (si, rest) = gates.split_at(hidden);
    let (sf, rest) = rest.split_at(hidden);
    let (tg, so) = rest.split_at(hidden);
    for j in 0..hidden {
        tc[j] = sf[j] * c[j] + si[j] * tg[j];
    }
    for t in tc.iter_mut() {
        *t = tanh_one(*t);
    }
    let (d_i, rest) = dg.split_at_mut(hidden);
    let (d_f, rest) = rest.split_at_mut(hidden);
    let (d_g, d_o) = rest.split_at_mut(hidden);
    for j in 0..hidden {
        let total = dh[j] * so[j] * (one - tc[j] * tc[j]) + dcn[j];
        d_i[j] = total * tg[j] * (si[j] * (one - si[j]));
        d_f[j] = total * c[j] * (sf[j] * (one - sf[j]));
        d_g[j] = total * si[j] * (one - tg[j] * tg[j]);
        d_o[j] = dh[j] * tc[j] * (so[j] * (one - so[j]));
        dc[j] = total * sf[j];
    }
}

/// [`backward_row`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn backward_row_avx2<T: Float>(
    row: &[T],
    c: &[T],
    dh: &[T],
    dcn: &[T],
    dg: &mut [T],
    dc: &mut [T],
    act: &mut [T],
) {
    backward_row(row, c, dh, dcn, dg, dc, act)
}
