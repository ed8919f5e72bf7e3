//! The LSTM cell's element-wise step as one op, for `nn.LSTM`'s time loop: from the gate
//! pre-activations `gates = [i | f | g | o]` (`B x 4H`) and the cell state `c` (`B x H`),
//!
//! - `c' = sigmoid(f) * c + sigmoid(i) * tanh(g)`,
//! - `h = sigmoid(o) * tanh(c')`,
//!
//! with the bits of those element-wise ops run one by one. Its backward is one pass when no graph
//! is being built, and the same formulas in differentiable ops otherwise.

use super::arith::{add, mul, rsub_scalar};
use super::index::select;
use super::join::{cat, split, stack, unbind};
use super::linalg::{linear, mm};
use super::reduce::sum_dims;
use super::unary::{sigmoid, tanh};
use super::view::{reshape_to, transpose};

use crate::autograd::{any_requires_grad, attach, check_not_inference, Backward, BackwardCtx, Grads, SavedTensor};
use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::kernels::{self, sigmoid_one, tanh_one};
use crate::ops::BackwardOp;
use crate::shape::{self, Shape};
use crate::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use smallvec::{smallvec, SmallVec};

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
    if any_requires_grad(&[gates, c]) {
        let op: BackwardOp = LstmCellBackward { gates: SavedTensor::input(gates), c: SavedTensor::input(c) }.into();
        check_not_inference(&[gates, c], &op)?;
        attach(&[&h, &c_next], &[gates, c], op)?;
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
                    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                        // SAFETY: the CPU has AVX2 and FMA (checked just above).
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
                    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                        // SAFETY: the CPU has AVX2 and FMA (checked just above).
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

/// [`forward_row`] compiled for AVX2 (eight lanes; same results: only `mul_add` in the
/// activations fuses, and it rounds once on every CPU).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
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

/// [`backward_row`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
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

/// The weights of one direction of one LSTM layer: `w_ih` (`4H x I`), `w_hh` (`4H x H`) and
/// the optional biases (`4H`).
#[derive(Clone, Copy)]
pub struct LstmWeights<'a> {
    /// Input-to-hidden weights.
    pub w_ih: &'a Tensor,
    /// Hidden-to-hidden weights.
    pub w_hh: &'a Tensor,
    /// Input-to-hidden bias.
    pub b_ih: Option<&'a Tensor>,
    /// Hidden-to-hidden bias.
    pub b_hh: Option<&'a Tensor>,
}

/// One direction of one LSTM layer over a time-major input `x` (`T x B x I`) from the states
/// `h0`, `c0` (`B x H`): `(output, h_T, c_T)`, the output `T x B x H` in time order (`reverse`
/// runs the steps from the last to the first). One node, PyTorch's `MkldnnRnnLayerBackward0`
/// (its oneDNN layer op, which PyTorch's float32 `nn.LSTM` runs on CPU), with the inputs in its
/// order: `x, w_ih, w_hh, b_ih, b_hh, h0, c0`.
///
/// The values are those of the op-by-op loop (`linear` over all steps, then per step
/// `linear(h, w_hh, b_hh) + gates_x[t]` and [`lstm_cell`]), which it runs without a graph. The
/// backward runs the steps back in one loop and then forms each weight gradient with one matrix
/// product over all steps (Note [One weight gradient per layer]).
pub fn lstm_layer(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w: LstmWeights<'_>,
    reverse: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (xs, hs, cs) = (x.shape(), h0.shape(), c0.shape());
    let (wi, wh) = (w.w_ih.shape(), w.w_hh.shape());
    let hidden = cs.get(1).copied().unwrap_or(0);
    let fits = xs.len() == 3
        && hs.len() == 2
        && cs.len() == 2
        && hs == cs
        && hs[0] == xs[1]
        && wi.len() == 2
        && wh.len() == 2
        && wi[0] == 4 * hidden
        && wi[1] == xs[2]
        && wh[0] == 4 * hidden
        && wh[1] == hidden
        && [w.b_ih, w.b_hh].iter().flatten().all(|b| b.shape().as_slice() == [4 * hidden]);
    if !fits {
        return Err(Error::runtime(format!(
            "lstm_layer: input {}, states {} and {}, weights {} and {} do not fit one LSTM layer",
            shape::fmt_shape(&xs),
            shape::fmt_shape(&hs),
            shape::fmt_shape(&cs),
            shape::fmt_shape(&wi),
            shape::fmt_shape(&wh)
        )));
    }
    if xs[0] == 0 {
        return Err(Error::runtime("Expected sequence length to be larger than 0 in RNN"));
    }
    let dtype = x.dtype();
    let all = lstm_layer_inputs(x, h0, c0, w);
    if all.iter().any(|t| t.dtype() != dtype) || !matches!(dtype, DType::F32 | DType::F64) {
        return Err(Error::runtime("lstm_layer: expected float32 or float64 tensors of one dtype"));
    }
    let run = {
        let _no_grad = crate::grad_mode::GradModeGuard::new(false);
        let d = |t: &Tensor| t.detach();
        let plain = |t: Option<&Tensor>| t.map(Tensor::detach);
        let (b_ih, b_hh) = (plain(w.b_ih), plain(w.b_hh));
        let weights = LstmWeights { w_ih: &d(w.w_ih), w_hh: &d(w.w_hh), b_ih: b_ih.as_ref(), b_hh: b_hh.as_ref() };
        run_layer(&d(x), &d(h0), &d(c0), weights, reverse)?
    };
    let LayerRun { output, h_last, c_last, gates, c_prev, h_prev } = run;
    let refs: SmallVec<[&Tensor; 8]> = all.iter().collect();
    if any_requires_grad(&refs) {
        let op: BackwardOp = LstmLayerBackward {
            x: SavedTensor::input(x),
            w_ih: SavedTensor::input(w.w_ih),
            w_hh: SavedTensor::input(w.w_hh),
            b_ih: w.b_ih.map(SavedTensor::input),
            b_hh: w.b_hh.map(SavedTensor::input),
            h0: SavedTensor::input(h0),
            c0: SavedTensor::input(c0),
            gates: SavedTensor::input(&gates),
            c_prev: SavedTensor::input(&c_prev),
            h_prev: SavedTensor::input(&h_prev),
            reverse,
        }
        .into();
        check_not_inference(&refs, &op)?;
        attach(&[&output, &h_last, &c_last], &refs, op)?;
    }
    Ok((output, h_last, c_last))
}

/// `x, w_ih, w_hh, [b_ih, b_hh,] h0, c0`: the layer op's inputs in PyTorch's order.
fn lstm_layer_inputs(x: &Tensor, h0: &Tensor, c0: &Tensor, w: LstmWeights<'_>) -> SmallVec<[Tensor; 8]> {
    let mut all: SmallVec<[Tensor; 8]> = smallvec![x.clone(), w.w_ih.clone(), w.w_hh.clone()];
    all.extend(w.b_ih.cloned());
    all.extend(w.b_hh.cloned());
    all.push(h0.clone());
    all.push(c0.clone());
    all
}

/// What the forward of [`lstm_layer`] computes and its backward needs, each `T x ...` in time
/// order: the gate pre-activations (`T x B x 4H`) and the states each step started from.
struct LayerRun {
    output: Tensor,
    h_last: Tensor,
    c_last: Tensor,
    gates: Tensor,
    c_prev: Tensor,
    h_prev: Tensor,
}

/// The op-by-op forward of one layer direction (see [`lstm_layer`]); recorded under grad mode.
fn run_layer(x: &Tensor, h0: &Tensor, c0: &Tensor, w: LstmWeights<'_>, reverse: bool) -> Result<LayerRun> {
    let steps = x.shape()[0];
    let gates_x = unbind(&linear(x, w.w_ih, w.b_ih)?, 0)?;
    let (mut h, mut c) = (h0.clone(), c0.clone());
    let empty = || Vec::with_capacity(steps);
    let (mut outputs, mut gates, mut c_prev, mut h_prev) = (empty(), empty(), empty(), empty());
    let order: Vec<usize> = if reverse { (0..steps).rev().collect() } else { (0..steps).collect() };
    for &t in &order {
        let step_gates = add(&linear(&h, w.w_hh, w.b_hh)?, &gates_x[t])?;
        let (h_next, c_next) = lstm_cell(&step_gates, &c)?;
        gates.push(step_gates);
        c_prev.push(std::mem::replace(&mut c, c_next));
        h_prev.push(std::mem::replace(&mut h, h_next.clone()));
        outputs.push(h_next);
    }
    if reverse {
        for v in [&mut outputs, &mut gates, &mut c_prev, &mut h_prev] {
            v.reverse();
        }
    }
    Ok(LayerRun {
        output: stack(&outputs, 0)?,
        h_last: h,
        c_last: c,
        gates: stack(&gates, 0)?,
        c_prev: stack(&c_prev, 0)?,
        h_prev: stack(&h_prev, 0)?,
    })
}

/// The backward of [`lstm_layer`]: the steps back in time through [`lstm_cell`]'s derivative,
/// `dh_{t-1} = dgates_t w_hh` (d (h w_hh^T)/dh), then for all steps at once
/// `dx = dgates w_ih`, `dw_ih = dgates^T x`, `dw_hh = dgates^T h_prev`, `db = sum_rows dgates`.
///
/// Note [One weight gradient per layer]: the op-by-op loop forms a `4H x H` weight gradient at
/// every step and adds it to the last; here the gate gradients of all steps are kept
/// (`T x B x 4H`) and each weight gradient is one matrix product with an inner size of `T * B`,
/// as PyTorch's layer ops do. Under `create_graph` the layer is run again op by op from the
/// saved inputs and differentiated through, so every derivative stays differentiable.
pub struct LstmLayerBackward {
    x: SavedTensor,
    w_ih: SavedTensor,
    w_hh: SavedTensor,
    b_ih: Option<SavedTensor>,
    b_hh: Option<SavedTensor>,
    h0: SavedTensor,
    c0: SavedTensor,
    gates: SavedTensor,
    c_prev: SavedTensor,
    h_prev: SavedTensor,
    reverse: bool,
}

impl Backward for LstmLayerBackward {
    fn name(&self) -> &'static str {
        "MkldnnRnnLayerBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let x = self.x.unpack(ctx)?;
        let (w_ih, w_hh) = (self.w_ih.unpack(ctx)?, self.w_hh.unpack(ctx)?);
        let b_ih = self.b_ih.as_ref().map(|b| b.unpack(ctx)).transpose()?;
        let b_hh = self.b_hh.as_ref().map(|b| b.unpack(ctx)).transpose()?;
        let (h0, c0) = (self.h0.unpack(ctx)?, self.c0.unpack(ctx)?);
        let weights = LstmWeights { w_ih: &w_ih, w_hh: &w_hh, b_ih: b_ih.as_ref(), b_hh: b_hh.as_ref() };
        let inputs = lstm_layer_inputs(&x, &h0, &c0, weights);
        let grads_given: SmallVec<[&Tensor; 3]> = grads.iter().flatten().collect();
        if crate::grad_mode::is_recording()
            && (grads_given.iter().any(|g| g.requires_grad()) || inputs.iter().any(Tensor::requires_grad))
        {
            return self.differentiable_backward(ctx, &inputs, weights, grads);
        }
        let (gates, c_prev, h_prev) = (self.gates.unpack(ctx)?, self.c_prev.unpack(ctx)?, self.h_prev.unpack(ctx)?);
        let (steps, batch, hidden) = (x.shape()[0], h0.shape()[0], h0.shape()[1]);
        let dtype = x.dtype();
        let zeros = || crate::creation::zeros(&[batch, hidden], dtype);
        let grad_out = grads.first().cloned().flatten();
        let mut dh = grads.get(1).cloned().flatten().unwrap_or_else(zeros);
        let mut dc = grads.get(2).cloned().flatten().unwrap_or_else(zeros);
        let w_hh_plain = w_hh.detach();
        let mut dgates: Vec<Tensor> = vec![zeros(); steps];
        let order: Vec<usize> = if self.reverse { (0..steps).collect() } else { (0..steps).rev().collect() };
        for t in order {
            if let Some(g) = &grad_out {
                dh = add(&dh, &select(g, 0, t as i64)?)?;
            }
            let step_gates = select(&gates, 0, t as i64)?;
            let step_c = select(&c_prev, 0, t as i64)?;
            let (dg, dc_prev) = match dtype {
                DType::F64 => backward_values::<f64>(&step_gates, &step_c, &dh, &dc),
                _ => backward_values::<f32>(&step_gates, &step_c, &dh, &dc),
            };
            let dg = Tensor::from_data(dg);
            dh = mm(&dg, &w_hh_plain)?;
            dc = Tensor::from_data(dc_prev);
            dgates[t] = dg;
        }
        // Note [One weight gradient per layer]
        let dgates = stack(&dgates, 0)?;
        let rows = steps * batch;
        let flat = reshape_to(&dgates, &[rows, 4 * hidden])?;
        let flat_t = transpose(&flat, 0, 1)?;
        let input_size = x.shape()[2];
        let mut out: Grads = SmallVec::new();
        out.push(if ctx.needs(0) {
            Some(reshape_to(&mm(&flat, &w_ih.detach())?, &[steps, batch, input_size])?)
        } else {
            None
        });
        out.push(if ctx.needs(1) { Some(mm(&flat_t, &reshape_to(&x.detach(), &[rows, input_size])?)?) } else { None });
        out.push(if ctx.needs(2) { Some(mm(&flat_t, &reshape_to(&h_prev, &[rows, hidden])?)?) } else { None });
        let biases = usize::from(b_ih.is_some()) + usize::from(b_hh.is_some());
        if biases > 0 {
            let db = sum_dims(&flat, &[0], false, None)?;
            for k in 0..biases {
                out.push(if ctx.needs(3 + k) { Some(db.clone()) } else { None });
            }
        }
        out.push(if ctx.needs(3 + biases) { Some(dh) } else { None });
        out.push(if ctx.needs(4 + biases) { Some(dc) } else { None });
        Ok(out)
    }
    fn release(&mut self) {
        for saved in [&mut self.x, &mut self.w_ih, &mut self.w_hh, &mut self.h0, &mut self.c0] {
            saved.release();
        }
        for saved in [&mut self.gates, &mut self.c_prev, &mut self.h_prev] {
            saved.release();
        }
        self.b_ih.iter_mut().chain(self.b_hh.iter_mut()).for_each(SavedTensor::release);
    }
    fn saves_tensors(&self) -> bool {
        true
    }
}

impl LstmLayerBackward {
    /// The `create_graph` backward: the layer run again op by op from the saved inputs, then
    /// differentiated with the engine, building the graph of every derivative.
    fn differentiable_backward(
        &self,
        ctx: &BackwardCtx,
        inputs: &[Tensor],
        weights: LstmWeights<'_>,
        grads: &[Option<Tensor>],
    ) -> Result<Grads> {
        let n = inputs.len();
        // Views standing in for the inputs: the engine stops at them (their gradients are the
        // inputs'), while the derivatives it builds still reach the inputs through them.
        let _grad = crate::grad_mode::GradModeGuard::new(true);
        let stand_ins: Vec<Tensor> = inputs.iter().map(crate::ops::view::alias_of).collect::<Result<_>>()?;
        let (x, rest) = stand_ins.split_first().expect("lstm_layer has inputs");
        let (w_ih, w_hh) = (&rest[0], &rest[1]);
        let mut k = 2;
        let mut bias = |present: bool| {
            present.then(|| {
                k += 1;
                rest[k - 1].clone()
            })
        };
        let (b_ih, b_hh) = (bias(weights.b_ih.is_some()), bias(weights.b_hh.is_some()));
        let (h0, c0) = (&stand_ins[n - 2], &stand_ins[n - 1]);
        let w = LstmWeights { w_ih, w_hh, b_ih: b_ih.as_ref(), b_hh: b_hh.as_ref() };
        // under grad mode, the same ops record a graph (each step an `lstm_cell` node)
        let run = run_layer(x, h0, c0, w, self.reverse)?;
        let rerun = [run.output, run.h_last, run.c_last];
        let mut outputs = Vec::new();
        let mut grad_outputs = Vec::new();
        for (o, g) in rerun.iter().zip(grads) {
            if let Some(g) = g {
                outputs.push(o.clone());
                grad_outputs.push(Some(g.clone()));
            }
        }
        let wanted: Vec<usize> = (0..n).filter(|&i| ctx.needs(i)).collect();
        let targets: Vec<Tensor> = wanted.iter().map(|&i| stand_ins[i].clone()).collect();
        let mut out: Grads = smallvec![None; n];
        if outputs.is_empty() || targets.is_empty() {
            return Ok(out);
        }
        // retained: the derivatives built here reach through the rerun graph
        let found = crate::engine::grad(&outputs, &grad_outputs, &targets, true, true, true)?;
        for (&i, g) in wanted.iter().zip(found) {
            out[i] = g;
        }
        Ok(out)
    }
}

/// `nn.utils.rnn.pack_padded_sequence`'s data: from a padded batch (`T x B x *`, or `B x T x *`
/// with `batch_first`) of sequences with the given `lengths` (checked, decreasing), the rows of
/// every time step of the sequences still running at it, step after step (`N x *`). Recorded
/// as PyTorch's `PackPaddedSequenceBackward0` (its gradient goes back to those rows, zeros at
/// the padding).
pub fn pack_padded(input: &Tensor, lengths: &[usize], batch_first: bool) -> Result<Tensor> {
    let shape = input.shape();
    let (time_dim, batch_dim) = if batch_first { (1, 0) } else { (0, 1) };
    let longest = lengths.first().copied().unwrap_or(0);
    if shape.len() < 2 || shape[batch_dim] != lengths.len() || longest > shape[time_dim] {
        return Err(Error::runtime(format!(
            "pack_padded_sequence: lengths {lengths:?} do not fit a padded batch of shape {}",
            shape::fmt_shape(&shape)
        )));
    }
    let (mut times, mut batches) = (Vec::new(), Vec::new());
    for t in 0..longest {
        for (b, _) in lengths.iter().enumerate().take_while(|(_, &len)| len > t) {
            times.push(t as i64);
            batches.push(b as i64);
        }
    }
    let n = times.len();
    let (times, batches) = (Tensor::from_vec(times, &[n])?, Tensor::from_vec(batches, &[n])?);
    let indices = if batch_first { [Some(batches), Some(times)] } else { [Some(times), Some(batches)] };
    super::gather::index_named(input, &indices, "PackPaddedSequenceBackward0")
}
