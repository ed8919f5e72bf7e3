//! Pooling over 2 or 3 spatial dims (1-d pooling is 2-d pooling of an unsqueezed input, as in
//! PyTorch): max pooling with indices, average pooling, their adaptive forms, and max
//! unpooling. A window is a product of per-dim runs of input positions, so sliding and
//! adaptive windows share the kernels. Backward formulas are ops again: max pooling scatters
//! the gradient to the saved indices, and average pooling's adjoint is a differentiable op
//! whose own backward is the average pooling.

use super::conv::{compute, ComputeFn, Dims, Gemm};
use super::gather::{gather, scatter};
use super::view::reshape_to;
use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::Shape;
use crate::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use smallvec::smallvec;
use std::sync::Arc;

/// The input positions one window covers along one dim: `count` taps from `first`, `step`
/// apart, all inside the image; `full` counts the padding too (the divisor of
/// `count_include_pad`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    first: usize,
    count: usize,
    step: usize,
    full: usize,
}

/// The windows of a pooling op: per spatial dim (right-aligned in three slots), one span per
/// output position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    dims: usize,
    input: Dims,
    output: Dims,
    spans: [Vec<Span>; 3],
}

/// PyTorch's pooled size: `floor` (or `ceil`) of `(in + 2p - d(k-1) - 1) / s` plus one, where
/// a last window that would start in the right padding is dropped.
pub fn pooled_size(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    ceil_mode: bool,
) -> i64 {
    let span = (dilation * (kernel.max(1) - 1) + 1) as i64;
    let room = input as i64 + 2 * padding as i64 - span + if ceil_mode { stride as i64 - 1 } else { 0 };
    let mut out = room.div_euclid(stride as i64) + 1;
    if ceil_mode && (out - 1) * stride as i64 >= input as i64 + padding as i64 {
        out -= 1;
    }
    out
}

impl PoolGeometry {
    fn unit(input: &[usize], output: &[usize]) -> PoolGeometry {
        let mut g = PoolGeometry { dims: input.len(), input: [1; 3], output: [1; 3], spans: Default::default() };
        let off = 3 - input.len();
        g.input[off..].copy_from_slice(input);
        g.output[off..].copy_from_slice(output);
        for d in 0..off {
            g.spans[d] = vec![Span { first: 0, count: 1, step: 1, full: 1 }];
        }
        g
    }

    /// Windows of `kernel` taps `dilation` apart, `stride` apart, over the image padded by
    /// `padding` on both sides; `output` positions per dim (see [`pooled_size`]).
    pub fn sliding(
        input: &[usize],
        output: &[usize],
        kernel: &[usize],
        stride: &[usize],
        padding: &[usize],
        dilation: &[usize],
    ) -> PoolGeometry {
        let mut g = PoolGeometry::unit(input, output);
        let off = 3 - input.len();
        for i in 0..input.len() {
            let (n, k, s, p, d) =
                (input[i] as i64, kernel[i] as i64, stride[i] as i64, padding[i] as i64, dilation[i] as i64);
            g.spans[off + i] = (0..output[i] as i64)
                .map(|o| {
                    let start = o * s - p;
                    let full = ((start + k).min(n + p) - start).max(0) as usize;
                    let taps: Vec<i64> = (0..k).map(|t| start + t * d).filter(|&x| x >= 0 && x < n).collect();
                    let first = taps.first().copied().unwrap_or(0) as usize;
                    Span { first, count: taps.len(), step: d as usize, full }
                })
                .collect();
        }
        g
    }

    /// PyTorch's adaptive windows: output position `o` of `m` covers inputs
    /// `floor(o n / m) .. ceil((o + 1) n / m)`.
    pub fn adaptive(input: &[usize], output: &[usize]) -> PoolGeometry {
        let mut g = PoolGeometry::unit(input, output);
        let off = 3 - input.len();
        for i in 0..input.len() {
            let (n, m) = (input[i], output[i]);
            g.spans[off + i] = (0..m)
                .map(|o| {
                    let first = o * n / m;
                    let end = ((o + 1) * n).div_ceil(m);
                    Span { first, count: end - first, step: 1, full: end - first }
                })
                .collect();
        }
        g
    }

    fn plane_in(&self) -> usize {
        self.input.iter().product()
    }
    fn plane_out(&self) -> usize {
        self.output.iter().product()
    }
    fn out_spatial(&self) -> &[usize] {
        &self.output[3 - self.dims..]
    }
    fn in_spatial(&self) -> &[usize] {
        &self.input[3 - self.dims..]
    }

    /// Calls `f(out_position, spans)` for every output position, in row-major order.
    fn for_each_window(&self, mut f: impl FnMut(usize, [&Span; 3])) {
        let mut o = 0;
        for s0 in &self.spans[0] {
            for s1 in &self.spans[1] {
                for s2 in &self.spans[2] {
                    f(o, [s0, s1, s2]);
                    o += 1;
                }
            }
        }
    }

    /// Calls `f(flat_input_position)` for every tap of the window `spans`, in row-major order.
    #[inline]
    fn for_each_tap(&self, [s0, s1, s2]: [&Span; 3], mut f: impl FnMut(usize)) {
        let [_, i1, i2] = self.input;
        for a in 0..s0.count {
            let x0 = s0.first + a * s0.step;
            for b in 0..s1.count {
                let row = (x0 * i1 + s1.first + b * s1.step) * i2 + s2.first;
                for c in 0..s2.count {
                    f(row + c * s2.step);
                }
            }
        }
    }
}

fn check_dtype(x: &Tensor, kernel: &str, allow_int: bool) -> Result<()> {
    let d = x.dtype();
    if d == DType::Bool || (!allow_int && !d.is_float()) {
        return Err(Error::kernel_missing(kernel, d));
    }
    Ok(())
}

/// Max pooling of `x` (`[*, *spatial]`, leading dims are planes) over the windows of `geom`:
/// the values and the flat index of each maximum within its plane. NaN wins, as in PyTorch.
pub fn max_pool(x: &Tensor, geom: &PoolGeometry, kind: MaxPoolKind) -> Result<(Tensor, Tensor)> {
    check_dtype(x, kind.kernel(), !matches!(kind, MaxPoolKind::Adaptive))?;
    let xs = x.shape();
    let lead = &xs[..xs.len() - geom.dims];
    let planes: usize = lead.iter().product();
    let mut shape: Shape = lead.into();
    shape.extend(geom.out_spatial().iter().copied());
    let xd = x.data();
    let (values, indices) = match x.dtype() {
        DType::F32 => {
            let (v, i) = max_windows::<f32>(&kernels::values::<f32>(&xd), geom, planes);
            (TensorData::from_vec(v, shape.clone()), i)
        }
        DType::F64 => {
            let (v, i) = max_windows::<f64>(&kernels::values::<f64>(&xd), geom, planes);
            (TensorData::from_vec(v, shape.clone()), i)
        }
        dtype => {
            let (v, i) = max_windows::<f64>(&kernels::cast(&xd, DType::F64).to_vec::<f64>(), geom, planes);
            (kernels::cast(&TensorData::from_vec(v, shape.clone()), dtype), i)
        }
    };
    let out = Tensor::from_data(values);
    let indices = Tensor::from_data(TensorData::from_vec(indices, shape));
    let saved = indices.clone();
    let dims = geom.dims;
    let out = record(out, &[x], |_| MaxPoolBackward {
        indices: SavedTensor::input(&saved),
        input_shape: xs.clone(),
        dims,
        kind,
    })?;
    Ok((out, indices))
}

/// The maximum of every window of every plane and its flat position in the plane. Like
/// PyTorch's kernel, a window starts from its first position and -inf, and NaN wins.
fn max_windows<T: Float>(values: &[T], geom: &PoolGeometry, planes: usize) -> (Vec<T>, Vec<i64>) {
    let (pin, pout) = (geom.plane_in(), geom.plane_out());
    let mut out = crate::alloc::vec_zeroed::<T>(planes * pout);
    let mut idx = crate::alloc::vec_zeroed::<i64>(planes * pout);
    if pout == 0 || pin == 0 {
        return (out, idx);
    }
    let lowest = T::from_f64(f64::NEG_INFINITY);
    out.par_chunks_mut(pout).zip(idx.par_chunks_mut(pout)).enumerate().for_each(|(p, (o, ix))| {
        let plane = &values[p * pin..(p + 1) * pin];
        geom.for_each_window(|pos, spans| {
            let mut at = None;
            let mut best = lowest;
            geom.for_each_tap(spans, |t| {
                let v = plane[t];
                if at.is_none() {
                    at = Some(t);
                }
                if v > best || v.is_nan() {
                    best = v;
                    at = Some(t);
                }
            });
            o[pos] = best;
            ix[pos] = at.unwrap_or(0) as i64;
        });
    });
    (out, idx)
}

/// Which max pooling a node belongs to (for its name and kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxPoolKind {
    /// `max_pool2d`/`max_pool1d` (sliding windows over 2 dims).
    Sliding2d,
    /// `max_pool3d`.
    Sliding3d,
    /// `adaptive_max_pool2d`/`1d`.
    Adaptive,
    /// `adaptive_max_pool3d`.
    Adaptive3d,
}
impl MaxPoolKind {
    fn kernel(self) -> &'static str {
        match self {
            MaxPoolKind::Sliding2d => "max_pool2d",
            MaxPoolKind::Sliding3d => "max_pool3d",
            MaxPoolKind::Adaptive => "adaptive_max_pool2d",
            MaxPoolKind::Adaptive3d => "adaptive_max_pool3d_cpu",
        }
    }
}

/// d maxpool/dx: each output's gradient goes to the input position of its maximum (summed
/// where windows overlap)
pub struct MaxPoolBackward {
    indices: SavedTensor,
    input_shape: Shape,
    dims: usize,
    kind: MaxPoolKind,
}
impl Backward for MaxPoolBackward {
    fn name(&self) -> &'static str {
        match self.kind {
            MaxPoolKind::Sliding2d => "MaxPool2DWithIndicesBackward0",
            MaxPoolKind::Sliding3d => "MaxPool3DWithIndicesBackward0",
            MaxPoolKind::Adaptive => "AdaptiveMaxPool2DBackward0",
            MaxPoolKind::Adaptive3d => "AdaptiveMaxPool3DBackward0",
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let indices = self.indices.unpack(ctx)?;
        if !crate::autograd::any_requires_grad(&[g]) && matches!(g.dtype(), DType::F32 | DType::F64) {
            // no graph to build: the scatter in one pass per plane
            return Ok(smallvec![Some(add_at_indices(g, &indices, &self.input_shape, self.dims))]);
        }
        Ok(smallvec![Some(scatter_to_planes(g, &indices, &self.input_shape, self.dims)?)])
    }
    // t = tx at the argmax of each window (a gather per plane)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let formula = || {
            let (t, indices) = (ctx.tangent0()?, self.indices.unpack(&ctx.backward)?);
            let (shape, out) = (&self.input_shape, indices.shape());
            let lead = shape.len() - self.dims;
            let mut flat_in: Vec<usize> = shape[..lead].to_vec();
            flat_in.push(shape[lead..].iter().product());
            let mut flat_out: Vec<usize> = out[..lead].to_vec();
            flat_out.push(out[lead..].iter().product());
            let picked = gather(&reshape_to(t, &flat_in)?, -1, &reshape_to(&indices, &flat_out)?)?;
            reshape_to(&picked, &out)
        };
        Some(formula())
    }
    crate::saved_tensors!(indices);
}

/// The values of [`scatter_to_planes`] for a float32/float64 gradient, without recording: each
/// plane's gradient values added at their plane positions in order (as PyTorch's kernel does
/// where windows overlap).
fn add_at_indices(values: &Tensor, indices: &Tensor, shape: &[usize], dims: usize) -> Tensor {
    let pin: usize = shape[shape.len() - dims..].iter().product();
    let vs = values.shape();
    let pout: usize = vs[vs.len() - dims..].iter().product();
    let (vd, id) = (values.data(), indices.data());
    let index = kernels::values::<i64>(&id);
    fn run<T: Float>(values: &[T], index: &[i64], pin: usize, pout: usize, numel: usize) -> Vec<T> {
        let mut out = crate::alloc::vec_zeroed::<T>(numel);
        if pin == 0 || pout == 0 {
            return out;
        }
        out.par_chunks_mut(pin).enumerate().for_each(|(p, plane)| {
            let (v, ix) = (&values[p * pout..(p + 1) * pout], &index[p * pout..(p + 1) * pout]);
            for (&g, &i) in v.iter().zip(ix) {
                // the indices come from the forward pass: always inside the plane
                if let Some(d) = usize::try_from(i).ok().and_then(|i| plane.get_mut(i)) {
                    *d = *d + g;
                }
            }
        });
        out
    }
    let numel: usize = shape.iter().product();
    let data = match vd.dtype() {
        DType::F64 => TensorData::from_vec(run(&kernels::values::<f64>(&vd), &index, pin, pout, numel), shape.into()),
        _ => TensorData::from_vec(run(&kernels::values::<f32>(&vd), &index, pin, pout, numel), shape.into()),
    };
    Tensor::from_data(data)
}

/// `values` added at the flat plane positions `indices` of a zero tensor of `shape` (whose
/// last `dims` dims are the plane).
fn scatter_to_planes(values: &Tensor, indices: &Tensor, shape: &[usize], dims: usize) -> Result<Tensor> {
    let vs = values.shape();
    let planes: usize = vs[..vs.len() - dims].iter().product();
    let pin: usize = shape[shape.len() - dims..].iter().product();
    let pout: usize = vs[vs.len() - dims..].iter().product();
    let flat_v = reshape_to(values, &[planes, pout])?;
    let flat_i = reshape_to(indices, &[planes, pout])?;
    let zeros = crate::creation::zeros(&[planes, pin], values.dtype());
    reshape_to(&scatter(&zeros, 1, &flat_i, &flat_v, true)?, shape)
}

/// How average pooling divides each window's sum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Divisor {
    /// By the window's size with the padding (`count_include_pad=True`).
    WithPadding,
    /// By the number of image positions in the window.
    ImageOnly,
    /// By a fixed number (`divisor_override`).
    Fixed(i64),
}

/// Which average pooling a node belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AvgPoolKind {
    /// `avg_pool2d`/`1d`.
    Sliding2d,
    /// `avg_pool3d`.
    Sliding3d,
    /// `adaptive_avg_pool2d`/`1d`.
    Adaptive2d,
    /// `adaptive_avg_pool3d`.
    Adaptive3d,
}

/// The geometry and divisor of one average pooling, shared by its node and its adjoint's.
#[derive(Debug)]
struct AvgPlan {
    geom: PoolGeometry,
    divisor: Divisor,
    kind: AvgPoolKind,
}

impl AvgPlan {
    fn divisors(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.geom.plane_out());
        self.geom.for_each_window(|_, spans| {
            out.push(match self.divisor {
                Divisor::Fixed(d) => d as f64,
                Divisor::WithPadding => spans.iter().map(|s| s.full as f64).product(),
                Divisor::ImageOnly => spans.iter().map(|s| s.count as f64).product(),
            })
        });
        out
    }
}

/// Average pooling of `x` (`[*, *spatial]`) over the windows of `geom`.
pub fn avg_pool(x: &Tensor, geom: &PoolGeometry, divisor: Divisor, kind: AvgPoolKind) -> Result<Tensor> {
    let adaptive = matches!(kind, AvgPoolKind::Adaptive2d | AvgPoolKind::Adaptive3d);
    let kernel = match kind {
        AvgPoolKind::Sliding2d => "avg_pool2d",
        AvgPoolKind::Sliding3d => "avg_pool3d",
        AvgPoolKind::Adaptive2d => "adaptive_avg_pool2d",
        AvgPoolKind::Adaptive3d => "adaptive_avg_pool3d_cpu",
    };
    check_dtype(x, kernel, !adaptive)?;
    avg_map(x, &Arc::new(AvgPlan { geom: geom.clone(), divisor, kind }), false)
}

/// The average pooling (`adjoint = false`: `[*, in] -> [*, out]`) or its adjoint (`[*, out] ->
/// [*, in]`: each output's value divided by its divisor, added to its window's positions).
fn avg_map(x: &Tensor, plan: &Arc<AvgPlan>, adjoint: bool) -> Result<Tensor> {
    let geom = &plan.geom;
    let xs = x.shape();
    let lead = &xs[..xs.len() - geom.dims];
    let planes: usize = lead.iter().product();
    let (pin, pout) = (geom.plane_in(), geom.plane_out());
    let (from, to) = if adjoint { (pout, pin) } else { (pin, pout) };
    let mut shape: Shape = lead.into();
    shape.extend(if adjoint { geom.in_spatial() } else { geom.out_spatial() }.iter().copied());
    let run = AvgRun { plan, adjoint, planes, from, to };
    let values = compute(x.dtype(), [&x.data()], shape, run);
    let out = Tensor::from_data(values);
    record(out, &[x], |_| AvgPoolBackward { plan: plan.clone(), adjoint })
}

struct AvgRun<'a> {
    plan: &'a AvgPlan,
    adjoint: bool,
    planes: usize,
    from: usize,
    to: usize,
}
impl ComputeFn<1> for AvgRun<'_> {
    /// Sums in the compute type, as PyTorch's kernel accumulates in its `opmath` type.
    fn run<T: Gemm>(&self, [x]: [&[T]; 1]) -> Vec<T> {
        let (from, to) = (self.from, self.to);
        let geom = &self.plan.geom;
        let divisors: Vec<T> = self.plan.divisors().into_iter().map(T::from_f64).collect();
        let mut out = crate::alloc::vec_zeroed::<T>(self.planes * to);
        if from > 0 && to > 0 {
            out.par_chunks_mut(to).enumerate().for_each(|(p, o)| {
                let plane = &x[p * from..(p + 1) * from];
                geom.for_each_window(|pos, spans| {
                    if self.adjoint {
                        let share = plane[pos] / divisors[pos];
                        geom.for_each_tap(spans, |t| o[t] = o[t] + share);
                    } else {
                        let mut sum = T::from_f64(0.0);
                        geom.for_each_tap(spans, |t| sum = sum + plane[t]);
                        o[pos] = sum / divisors[pos];
                    }
                });
            });
        }
        out
    }
}

/// d avgpool/dx: the adjoint map (each window's gradient divided by its divisor and spread
/// over the window); the adjoint's own derivative is the pooling again
pub struct AvgPoolBackward {
    plan: Arc<AvgPlan>,
    adjoint: bool,
}
impl Backward for AvgPoolBackward {
    fn name(&self) -> &'static str {
        match (self.plan.kind, self.adjoint) {
            (AvgPoolKind::Sliding2d, false) => "AvgPool2DBackward0",
            (AvgPoolKind::Sliding3d, false) => "AvgPool3DBackward0",
            (AvgPoolKind::Adaptive2d, false) => "AdaptiveAvgPool2DBackward0",
            (AvgPoolKind::Adaptive3d, false) => "AdaptiveAvgPool3DBackward0",
            (AvgPoolKind::Sliding2d, true) => "AvgPool2DBackwardBackward0",
            (AvgPoolKind::Sliding3d, true) => "AvgPool3DBackwardBackward0",
            (AvgPoolKind::Adaptive2d, true) => "AdaptiveAvgPool2DBackwardBackward0",
            (AvgPoolKind::Adaptive3d, true) => "AdaptiveAvgPool3DBackwardBackward0",
        }
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(avg_map(grad0(grads)?, &self.plan, !self.adjoint)?)])
    }
    // t = the same average of tx (linear)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().and_then(|t| avg_map(t, &self.plan, self.adjoint)))
    }
}

/// `max_unpool2d/3d`: `x`'s values placed at the flat plane positions `indices` of a zero
/// tensor whose spatial size is `out_spatial`.
pub fn max_unpool(x: &Tensor, indices: &Tensor, out_spatial: &[usize]) -> Result<Tensor> {
    let xs = x.shape();
    let dims = out_spatial.len();
    let plane_out: usize = out_spatial.iter().product();
    let by_x: Vec<String> = out_spatial.iter().map(|s| s.to_string()).collect();
    for i in indices.to_vec::<i64>() {
        if i < 0 || i as usize >= plane_out {
            return Err(Error::runtime(format!(
                "Found an invalid max index: {i} (output volumes are of size {})",
                by_x.join("x")
            )));
        }
    }
    let mut shape: Shape = xs[..xs.len() - dims].into();
    shape.extend(out_spatial.iter().copied());
    let lead: usize = xs[..xs.len() - dims].iter().product();
    let pin: usize = xs[xs.len() - dims..].iter().product();
    let out = crate::autograd::untracked(|| {
        let zeros = crate::creation::zeros(&[lead, plane_out], x.dtype());
        let v = reshape_to(&x.detach(), &[lead, pin])?;
        let i = reshape_to(indices, &[lead, pin])?;
        reshape_to(&scatter(&zeros, 1, &i, &v, false)?, &shape)
    })?;
    let out = Tensor::from_data(kernels::contiguous_copy(&out.data()));
    let saved = indices.clone();
    record(out, &[x], |_| MaxUnpoolBackward { indices: SavedTensor::input(&saved), input_shape: xs.clone(), dims })
}

/// d unpool/dx: the gradient read back at the indices
pub struct MaxUnpoolBackward {
    indices: SavedTensor,
    input_shape: Shape,
    dims: usize,
}
impl Backward for MaxUnpoolBackward {
    fn name(&self) -> &'static str {
        if self.dims == 3 {
            "MaxUnpool3DBackward0"
        } else {
            "MaxUnpool2DBackward0"
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let indices = self.indices.unpack(ctx)?;
        let s = &self.input_shape;
        let gs = g.shape();
        let lead: usize = s[..s.len() - self.dims].iter().product();
        let pin: usize = s[s.len() - self.dims..].iter().product();
        let pout: usize = gs[gs.len() - self.dims..].iter().product();
        let flat_g = reshape_to(g, &[lead, pout])?;
        let flat_i = reshape_to(&indices, &[lead, pin])?;
        Ok(smallvec![Some(reshape_to(&gather(&flat_g, 1, &flat_i)?, s)?)])
    }
    crate::saved_tensors!(indices);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_pool_takes_the_window_maximum_and_its_index() -> Result<()> {
        let x = Tensor::from_vec(vec![1.0f64, 5.0, 2.0, 0.0, 3.0, 4.0, 9.0, 7.0, 8.0], &[1, 1, 3, 3])?;
        let geom = PoolGeometry::sliding(&[3, 3], &[1, 1], &[2, 2], &[2, 2], &[0, 0], &[1, 1]);
        let (v, i) = max_pool(&x, &geom, MaxPoolKind::Sliding2d)?;
        assert_eq!(v.to_vec::<f64>(), vec![5.0]);
        assert_eq!(i.to_vec::<i64>(), vec![1]);
        Ok(())
    }

    #[test]
    fn ceil_mode_drops_a_window_that_starts_in_the_padding() {
        assert_eq!(pooled_size(5, 2, 2, 0, 1, false), 2);
        assert_eq!(pooled_size(5, 2, 2, 0, 1, true), 3);
        assert_eq!(pooled_size(4, 2, 2, 1, 1, true), 3);
    }
}
