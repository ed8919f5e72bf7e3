//! The values an in-place `fill_`, `zero_` or `copy_` writes, recorded so that the target's
//! new history is right: nothing of the old values flows back, and `copy_`'s source gets the
//! gradient. (Written into the target by [`crate::inplace::apply_inplace`].)

use super::view::{contiguous, expand_to, to_dtype};
use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads};
use crate::creation::{full, zeros_like};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::random::default_generator;
use crate::scalar::fmt_double;
use crate::shape::{self, Shape, Strides};
use crate::tensor::{Tensor, TensorData};
use smallvec::{smallvec, SmallVec};

/// `self` filled with `value` (what `self.fill_(value)` / `self.zero_()` writes).
pub fn filled(x: &Tensor, value: f64) -> Result<Tensor> {
    let d = x.data();
    record(full(&d.shape, value, d.dtype()), &[x], |_| ZeroGradBackward { name: "FillBackward2" })
}

/// `self` filled with zeros (what `self.zero_()` writes).
pub fn zeroed(x: &Tensor) -> Result<Tensor> {
    let d = x.data();
    record(full(&d.shape, 0.0, d.dtype()), &[x], |_| ZeroGradBackward { name: "ZeroBackward0" })
}

/// The distribution of an in-place random fill (`uniform_`, `normal_`, `bernoulli_`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    Uniform { from: f64, to: f64 },
    Normal { mean: f64, std: f64 },
    Bernoulli { p: f64 },
}

impl Distribution {
    /// The node a fill of a tensor that requires grad records.
    fn node_name(self) -> &'static str {
        match self {
            Distribution::Uniform { .. } => "UniformBackward0",
            Distribution::Normal { .. } => "NormalBackward0",
            Distribution::Bernoulli { .. } => "BernoulliBackward2",
        }
    }

    /// PyTorch's checks of the arguments against a target of `dtype` with `numel` elements, in
    /// its order; all of them come before anything is drawn. `uniform_` has no kernel for
    /// integers even when empty, `normal_` only looks for one when there is something to draw,
    /// `bernoulli_` fills every dtype.
    pub fn check(self, dtype: DType, numel: usize) -> Result<()> {
        match self {
            Distribution::Uniform { from, to } => {
                crate::dtype::require_kernel("check_uniform_bounds", dtype, crate::dtype::FLOATS)?;
                let max = if dtype == DType::F32 { f32::MAX as f64 } else { f64::MAX };
                for (value, name) in [(from, "from"), (to, "to")] {
                    // NaN is out of bounds too.
                    if value.is_nan() || value < -max || value > max {
                        return Err(Error::runtime(format!("{name} is out of bounds for {}", dtype.name_cpp())));
                    }
                }
                if from > to {
                    return Err(Error::runtime(format!(
                        "uniform_ expects to return a [from, to) range, but found from={} > to={}",
                        fmt_double(from),
                        fmt_double(to)
                    )));
                }
                if to - from > max {
                    return Err(Error::runtime(format!(
                        "uniform_ expects to-from <= std::numeric_limits<{}>::max(), but found to={} and from={} \
                         which result in to-from to exceed the limit",
                        dtype.scalar_type_name(),
                        fmt_double(to),
                        fmt_double(from)
                    )));
                }
            }
            Distribution::Normal { std, .. } => {
                if std.is_nan() || std < 0.0 {
                    return Err(Error::runtime(format!(
                        "normal expects std >= 0.0, but found std {}",
                        fmt_double(std)
                    )));
                }
                if numel > 0 {
                    crate::dtype::require_kernel("normal_kernel_cpu", dtype, crate::dtype::FLOATS)?;
                }
            }
            Distribution::Bernoulli { p } => {
                if !((0.0..=1.0).contains(&p)) {
                    return Err(Error::runtime(format!(
                        "bernoulli_ expects p to be in [0, 1], but got p={}",
                        fmt_double(p)
                    )));
                }
            }
        }
        Ok(())
    }

    /// `n` samples of `dtype` in the order PyTorch's CPU kernels draw them. `normal_` of a
    /// contiguous tensor of at least 16 elements transforms uniforms in blocks of 16; every
    /// other fill (and `normal_` of a non-contiguous target) draws element by element.
    fn sample(self, n: usize, dtype: DType, contiguous: bool) -> TensorData {
        let mut gen = default_generator().lock().unwrap_or_else(|e| e.into_inner());
        let shape: Shape = smallvec![n];
        match (self, dtype) {
            (Distribution::Uniform { from, to }, DType::F64) => {
                let mut v = crate::alloc::vec_zeroed::<f64>(n);
                gen.fill_uniform_f64(&mut v, from, to);
                TensorData::from_vec(v, shape)
            }
            (Distribution::Uniform { from, to }, _) => {
                let mut v = crate::alloc::vec_zeroed::<f32>(n);
                gen.fill_uniform_f32(&mut v, from as f32, to as f32);
                TensorData::from_vec(v, shape)
            }
            (Distribution::Normal { mean, std }, DType::F64) => {
                let mut v = crate::alloc::vec_zeroed::<f64>(n);
                if contiguous {
                    gen.fill_normal_f64(&mut v, mean, std);
                } else {
                    gen.fill_normal_serial_f64(&mut v, mean, std);
                }
                TensorData::from_vec(v, shape)
            }
            (Distribution::Normal { mean, std }, _) => {
                let mut v = crate::alloc::vec_zeroed::<f32>(n);
                if contiguous {
                    gen.fill_normal_f32_f64params(&mut v, mean, std);
                } else {
                    gen.fill_normal_serial_f32(&mut v, mean, std);
                }
                TensorData::from_vec(v, shape)
            }
            (Distribution::Bernoulli { p }, _) => {
                // One f64 uniform per element whatever the dtype; 0/1 converts exactly.
                let mut v = crate::alloc::vec_zeroed::<f64>(n);
                gen.fill_bernoulli_f64(&mut v, p);
                crate::kernels::cast(&TensorData::from_vec(v, shape), dtype)
            }
        }
    }
}

/// What `target.uniform_()` / `normal_()` / `bernoulli_()` writes, recorded so that no gradient
/// flows to the old values. `x` is what the in-place machinery computes on (a private copy
/// when the target requires grad); `target` is the tensor being written, whose layout decides
/// the draw order: PyTorch fills elements in memory order (dims by decreasing stride), so a
/// transposed or sliced target gets its numbers in another order than a contiguous one.
/// Nothing is drawn when the arguments, the dtype or the layout (two elements at one address)
/// are refused.
pub fn random_filled(x: &Tensor, target: &Tensor, dist: Distribution) -> Result<Tensor> {
    let d = target.data();
    let n = d.numel();
    dist.check(d.dtype(), n)?;
    if n > 0 && d.shape.iter().zip(&d.strides).any(|(&size, &stride)| stride == 0 && size > 1) {
        return Err(Error::InternalOverlap);
    }
    let values = if n == 0 {
        // Nothing to draw (an empty integer tensor may take a normal_).
        crate::creation::zeros(&d.shape, d.dtype()).data()
    } else {
        let contiguous = d.is_contiguous();
        let drawn = dist.sample(n, d.dtype(), contiguous);
        // Drawn in float32 for the 16-bit floats, then rounded.
        let drawn = if drawn.dtype() == d.dtype() { drawn } else { crate::kernels::cast(&drawn, d.dtype()) };
        in_logical_order(drawn, &d)
    };
    record(Tensor::from_data(values), &[x], |_| ZeroGradBackward { name: dist.node_name() })
}

/// Samples drawn in the memory order of the layout `d` (a flat contiguous buffer), rearranged
/// in `d`'s logical (row-major) order.
fn in_logical_order(flat: TensorData, d: &TensorData) -> TensorData {
    if d.is_contiguous() {
        return flat.restrided(d.shape.clone(), shape::contiguous_strides(&d.shape), 0);
    }
    // Dims of size > 1 from the outermost in memory to the innermost (stable for ties).
    let mut order: SmallVec<[usize; 4]> = (0..d.shape.len()).filter(|&i| d.shape[i] > 1).collect();
    order.sort_by(|&a, &b| d.strides[b].cmp(&d.strides[a]));
    // Where each element of the target sits in the memory-ordered samples.
    let mut strides: Strides = smallvec![0; d.shape.len()];
    let mut step = 1;
    for &dim in order.iter().rev() {
        strides[dim] = step;
        step *= d.shape[dim];
    }
    crate::kernels::contiguous_copy(&flat.restrided(d.shape.clone(), strides, 0))
}

/// What `target.bernoulli_(p)` with a tensor `p` (broadcast to the target) writes (see
/// [`bernoulli_tensor_values`]), recorded on `x` and `p`, which get zero gradients
/// (`BernoulliBackward1`). `drawn` keeps the values of a first call, so that the in-place
/// machinery computing twice (a `p` that requires grad) draws only once.
pub fn bernoulli_tensor_filled(
    x: &Tensor,
    target: &Tensor,
    p: &Tensor,
    drawn: &std::sync::Mutex<Option<TensorData>>,
) -> Result<Tensor> {
    let mut cache = drawn.lock().unwrap_or_else(|e| e.into_inner());
    let values = match cache.as_ref() {
        Some(v) => v.clone(),
        None => cache.insert(bernoulli_tensor_values(target, p)?).clone(),
    };
    drop(cache);
    record(Tensor::from_data(values), &[x, p], |_| ZeroGradBackward { name: "BernoulliBackward1" })
}

/// The values of `target.bernoulli_(p)`: one uniform per element, in the target's memory
/// order, of `p`'s precision (a 24-bit `float` for float32 `p`, a 53-bit `double` for
/// float64), and 1 where it is below `p`. Nothing is drawn when an argument is refused.
fn bernoulli_tensor_values(target: &Tensor, p: &Tensor) -> Result<TensorData> {
    let d = target.data();
    let n = d.numel();
    let values = if n == 0 {
        crate::creation::zeros(&d.shape, d.dtype()).data()
    } else {
        let probs = {
            let _off = crate::GradModeGuard::new(false);
            super::view::expand_to(p, &d.shape)?
        };
        crate::dtype::require_kernel("bernoulli_tensor_cpu_p_", p.dtype(), crate::dtype::FLOATS)?;
        let probs = probs.data().to_vec::<f64>();
        if probs.iter().any(|&q| !(0.0..=1.0).contains(&q)) {
            return Err(Error::runtime(
                "Expected p_in >= 0 && p_in <= 1 to be true, but got false.  (Could this error message be improved?  \
                 If so, please report an enhancement request to PyTorch.)",
            ));
        }
        if d.shape.iter().zip(&d.strides).any(|(&size, &stride)| stride == 0 && size > 1) {
            return Err(Error::InternalOverlap);
        }
        let uniforms = {
            let mut gen = default_generator().lock().unwrap_or_else(|e| e.into_inner());
            if p.dtype() == DType::F64 {
                let mut v = crate::alloc::vec_zeroed::<f64>(n);
                gen.fill_uniform_f64(&mut v, 0.0, 1.0);
                TensorData::from_vec(v, smallvec![n])
            } else {
                let mut v = crate::alloc::vec_zeroed::<f32>(n);
                gen.fill_uniform_f32(&mut v, 0.0, 1.0);
                TensorData::from_vec(v, smallvec![n])
            }
        };
        // Uniforms and p compare in p's precision; f32 values are exact as f64.
        let u = in_logical_order(uniforms, &d).to_vec::<f64>();
        let ones: Vec<f64> = u.iter().zip(&probs).map(|(&u, &q)| if u < q { 1.0 } else { 0.0 }).collect();
        crate::kernels::cast(&TensorData::from_vec(ones, d.shape.clone()), d.dtype())
    };
    Ok(values)
}

/// Nothing flows back to any input: d fill(x)/dx = 0 (`fill_`, `zero_`, random fills, and a
/// random fill whose arguments are tensors).
pub struct ZeroGradBackward {
    name: &'static str,
}
impl Backward for ZeroGradBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        Ok((0..ctx.needs.len()).map(|i| ctx.needs(i).then(|| zeros_like(g))).collect())
    }
}

/// `self.fill_(value)` with a 0-d tensor `value`, which gets the summed gradient (`FillBackward3`).
pub fn filled_with_tensor(x: &Tensor, value: &Tensor) -> Result<Tensor> {
    if value.ndim() != 0 {
        return Err(crate::error::Error::runtime(format!(
            "fill_ only supports 0-dimension value tensor but got tensor with {} dimensions.",
            value.ndim()
        )));
    }
    copied_named(x, value, "FillBackward3")
}

/// What `self[key] = value` writes into the (whole-tensor) view: a 0-d tensor is a fill of a
/// bigger target (`FillBackward3`), anything else a copy (`CopyBackwards`).
pub fn assigned(x: &Tensor, value: &Tensor) -> Result<Tensor> {
    let name = if value.ndim() == 0 && x.ndim() != 0 { "FillBackward3" } else { "torch::autograd::CopyBackwards" };
    copied_named(x, value, name)
}

/// `src` broadcast to `x`'s shape and converted to its dtype (what `self.copy_(src)` writes).
pub fn copied(x: &Tensor, src: &Tensor) -> Result<Tensor> {
    copied_named(x, src, "torch::autograd::CopyBackwards")
}

fn copied_named(x: &Tensor, src: &Tensor, name: &'static str) -> Result<Tensor> {
    let values = {
        let _off = crate::GradModeGuard::new(false);
        let shape = x.shape();
        let expanded = if src.shape() == shape { src.clone() } else { expand_to(src, &shape)? };
        contiguous(&to_dtype(&expanded, x.dtype())?)?.detach()
    };
    record(values, &[x, src], |_| CopyFromBackward { name })
}

/// d copy_(x, src)/dx = 0; d copy_(x, src)/dsrc = 1 (also fill_ with a tensor value) (summed to src's shape and dtype by the engine)
pub struct CopyFromBackward {
    name: &'static str,
}
impl Backward for CopyFromBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let gx = if ctx.needs(0) { Some(zeros_like(g)) } else { None };
        let gsrc = if ctx.needs(1) { Some(g.clone()) } else { None };
        Ok(smallvec![gx, gsrc])
    }
}
