//! The values an in-place `fill_`, `zero_` or `copy_` writes, recorded so that the target's
//! new history is right: nothing of the old values flows back, and `copy_`'s source gets the
//! gradient. (Written into the target by [`crate::inplace::apply_inplace`].)

use super::view::{contiguous, expand_to, to_dtype};
use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads};
use crate::creation::{full, zeros_like};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::random::{lock, Generator};
use crate::scalar::fmt_double;
use crate::shape::{self, Shape, Strides};
use crate::tensor::{Tensor, TensorData};
use smallvec::{smallvec, SmallVec};
use std::sync::Mutex;

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

/// The distribution of an in-place random fill (`uniform_`, `normal_`, `bernoulli_`,
/// `random_`, `exponential_`, `geometric_`, `cauchy_`, `log_normal_`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)] // the fields are the arguments of the method each variant's doc names
pub enum Distribution {
    /// `uniform_(from, to)`.
    Uniform { from: f64, to: f64 },
    /// `normal_(mean, std)`.
    Normal { mean: f64, std: f64 },
    /// `bernoulli_(p)` with a number `p`.
    Bernoulli { p: f64 },
    /// `random_(from, to)` (`to: None` for `random_(from, None)`), `random_(to)` (`from` 0) or
    /// `random_()`, told apart by `form`.
    Random { from: i64, to: Option<i64>, form: RandomForm },
    /// `exponential_(lambd)`.
    Exponential { lambd: f64 },
    /// `geometric_(p)`.
    Geometric { p: f64 },
    /// `cauchy_(median, sigma)`.
    Cauchy { median: f64, sigma: f64 },
    /// `log_normal_(mean, std)`.
    LogNormal { mean: f64, std: f64 },
}

/// Which overload of `random_` was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomForm {
    /// `random_()`: the dtype's whole range of exact integers.
    Full,
    /// `random_(to)`: `[0, to)`.
    To,
    /// `random_(from, to)` or `random_(from, None)`.
    FromTo,
}

/// The largest integer `random_` draws for a floating dtype without `to` (`2^digits`; measured
/// on PyTorch 2.15, to add with those dtypes: float16 `2^11`, bfloat16 `2^8`).
fn float_digits_limit(dtype: DType) -> Option<i64> {
    match dtype {
        DType::F32 => Some(1 << 24),
        DType::F64 => Some(1 << 53),
        DType::F16 => Some(1 << 11),
        DType::BF16 => Some(1 << 8),
        _ => None,
    }
}

/// The `[min, max]` an integer dtype holds (`None` for floating dtypes). `random_()` draws
/// modulo `max + 1` (measured on PyTorch 2.15: int32 `2^31`, int16 `2^15`, int8 `2^7`, uint8
/// `2^8`, all from 32-bit draws), and `random_(from, None)` up to `max`.
fn int_bounds(dtype: DType) -> Option<(i64, i64)> {
    match dtype {
        DType::Bool => Some((0, 1)),
        DType::I64 => Some((i64::MIN, i64::MAX)),
        DType::I32 => Some((i32::MIN as i64, i32::MAX as i64)),
        DType::I16 => Some((i16::MIN as i64, i16::MAX as i64)),
        DType::I8 => Some((i8::MIN as i64, i8::MAX as i64)),
        DType::U8 => Some((0, u8::MAX as i64)),
        _ => None,
    }
}

impl Distribution {
    /// The node a fill of a tensor that requires grad records.
    fn node_name(self) -> &'static str {
        match self {
            Distribution::Uniform { .. } => "UniformBackward0",
            Distribution::Normal { .. } => "NormalBackward0",
            Distribution::Bernoulli { .. } => "BernoulliBackward2",
            Distribution::Random { form: RandomForm::FromTo, .. } => "RandomBackward0",
            Distribution::Random { form: RandomForm::To, .. } => "RandomBackward1",
            Distribution::Random { form: RandomForm::Full, .. } => "RandomBackward2",
            Distribution::Exponential { .. } => "ExponentialBackward0",
            Distribution::Geometric { .. } => "GeometricBackward0",
            Distribution::Cauchy { .. } => "CauchyBackward0",
            Distribution::LogNormal { .. } => "LogNormalBackward0",
        }
    }

    /// `random_`'s draw for a target of `dtype`: `(from, range)` with `range == 0` meaning all
    /// 64 bits, or PyTorch's error for an empty or out-of-bounds range.
    fn random_range(from: i64, to: Option<i64>, form: RandomForm, dtype: DType) -> Result<(i64, u64)> {
        if form == RandomForm::Full {
            // The dtype's exact integers: [0, 2^digits] for floats, [0, max] for integers.
            let modulus = match (int_bounds(dtype), float_digits_limit(dtype)) {
                (Some((_, max)), _) => max as u64 + 1,
                (None, Some(limit)) => limit as u64 + 1,
                (None, None) => 1 << 24,
            };
            return Ok((0, modulus));
        }
        let bounds = int_bounds(dtype);
        if let Some((lo, hi)) = bounds {
            if from < lo || from > hi {
                return Err(Error::runtime(format!("from is out of bounds for {}", dtype.name_cpp())));
            }
        }
        match to {
            Some(to) => {
                if from >= to {
                    return Err(Error::runtime(format!(
                        "random_ expects 'from' to be less than 'to', but got from={from} >= to={to}"
                    )));
                }
                if let Some((lo, hi)) = bounds {
                    if to - 1 < lo || to - 1 > hi {
                        return Err(Error::runtime(format!("to - 1 is out of bounds for {}", dtype.name_cpp())));
                    }
                }
                Ok((from, (to as u64).wrapping_sub(from as u64)))
            }
            None => {
                let to_inc = match bounds {
                    Some((_, hi)) => hi,
                    None => float_digits_limit(dtype).unwrap_or(1 << 24),
                };
                if from > to_inc {
                    return Err(Error::runtime(format!(
                        "random_ expects 'from' casted to dtype to be less than or equal to 'to_inc' casted to \
                         dtype, but got from={from} > to_inc={to_inc}"
                    )));
                }
                // [i64::MIN, i64::MAX] is the whole 64-bit range (range 0 = the raw draw).
                Ok((from, (to_inc as u64).wrapping_sub(from as u64).wrapping_add(1)))
            }
        }
    }

    /// PyTorch's warnings for a `random_` range a floating dtype cannot hold exactly
    /// (`from` or `to - 1` beyond `2^digits`); empty for everything else.
    pub fn warnings(self, dtype: DType) -> Vec<String> {
        let mut out = Vec::new();
        if let (Distribution::Random { from, to, form: RandomForm::FromTo | RandomForm::To }, Some(limit)) =
            (self, float_digits_limit(dtype))
        {
            let digits = if dtype == DType::F32 { 24 } else { 53 };
            let what = dtype.name_cpp();
            let note = |name: &str| {
                format!(
                    "{name} is out of bounds [-(2^{digits}), 2^{digits}]. Due to precision limitations {what} can \
                     support discrete uniform distribution only within this range. This warning will become an \
                     error in version 1.7 release, please fix the code in advance"
                )
            };
            if !(-limit..=limit).contains(&from) {
                out.push(note("from"));
            }
            if let Some(to) = to {
                if from < to && !(-limit..=limit).contains(&(to - 1)) {
                    out.push(note("to - 1"));
                }
            }
        }
        out
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
            Distribution::Random { from, to, form } => {
                Self::random_range(from, to, form, dtype)?;
            }
            Distribution::Exponential { lambd } => {
                if lambd.is_nan() || lambd <= 0.0 {
                    return Err(Error::runtime(format!(
                        "exponential_ expects lambda > 0.0, but found lambda={}",
                        fmt_double(lambd)
                    )));
                }
                if numel > 0 && !dtype.is_float() {
                    return Err(Error::runtime(format!(
                        "Exponential distribution is a continuous probability distribution. dtype must be a \
                         floating point but you specified {}",
                        dtype.scalar_type_name()
                    )));
                }
            }
            Distribution::Geometric { p } => {
                if !(p > 0.0 && p < 1.0) {
                    return Err(Error::runtime(format!(
                        "geometric_ expects p to be in (0, 1), but got p={}",
                        fmt_double(p)
                    )));
                }
                if numel > 0 {
                    crate::dtype::require_kernel("geometric_cpu", dtype, crate::dtype::NUMBERS)?;
                }
            }
            Distribution::Cauchy { sigma, .. } => {
                if sigma.is_nan() || sigma <= 0.0 {
                    return Err(Error::runtime(format!(
                        "cauchy_ expects sigma > 0.0, but found sigma={}",
                        fmt_double(sigma)
                    )));
                }
                if !dtype.is_float() {
                    return Err(Error::runtime(format!(
                        "Cauchy distribution is a continuous probability distribution. dtype must be a floating \
                         point but you specified {}",
                        dtype.name_cpp()
                    )));
                }
            }
            Distribution::LogNormal { std, .. } => {
                if std.is_nan() || std <= 0.0 {
                    return Err(Error::runtime(format!(
                        "log_normal_ expects std > 0.0, but found std={}",
                        fmt_double(std)
                    )));
                }
                if numel > 0 {
                    crate::dtype::require_kernel("log_normal_cpu", dtype, crate::dtype::FLOATS)?;
                }
            }
        }
        Ok(())
    }

    /// `n` samples of `dtype` in the order PyTorch's CPU kernels draw them. `normal_` of a
    /// contiguous tensor of at least 16 elements transforms uniforms in blocks of 16; every
    /// other fill (and `normal_` of a non-contiguous target) draws element by element.
    fn sample(self, n: usize, dtype: DType, contiguous: bool, gen: &Mutex<Generator>) -> TensorData {
        let mut gen = lock(gen);
        let shape: Shape = smallvec![n];
        // The samplers drawn one `f64` per element, then rounded to the target's dtype.
        let per_element = |gen: &mut Generator, f: &dyn Fn(&mut Generator) -> f64| {
            let v: Vec<f64> = crate::alloc::collect_exact(n, (0..n).map(|_| f(gen)));
            crate::kernels::cast(&TensorData::from_vec(v, shape.clone()), dtype)
        };
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
                if contiguous && dtype.is_half() {
                    gen.fill_normal_reduced(&mut v, mean, std);
                } else if contiguous {
                    gen.fill_normal_f32_f64params(&mut v, mean, std);
                } else {
                    gen.fill_normal_serial_f32(&mut v, mean, std);
                }
                TensorData::from_vec(v, shape)
            }
            (Distribution::Bernoulli { p }, DType::F32) => {
                let mut v = crate::alloc::vec_zeroed::<f32>(n);
                gen.fill_bernoulli_f32(&mut v, p);
                TensorData::from_vec(v, shape)
            }
            (Distribution::Bernoulli { p }, _) => {
                // One f64 uniform per element whatever the dtype; 0/1 converts exactly.
                let mut v = crate::alloc::vec_zeroed::<f64>(n);
                gen.fill_bernoulli_f64(&mut v, p);
                crate::kernels::cast(&TensorData::from_vec(v, shape), dtype)
            }
            (Distribution::Random { from, to, form }, _) => {
                // Checked by `check` before anything is drawn.
                let (from, range) = Self::random_range(from, to, form, dtype).unwrap_or((0, 2));
                let v: Vec<i64> = if form == RandomForm::Full {
                    // random_() draws 32 bits unless the modulus needs more (int64, double),
                    // a threshold of its own (random_(from, to) switches at 2^28).
                    let wide = range > 1 << 32;
                    crate::alloc::collect_exact(
                        n,
                        (0..n).map(|_| {
                            let r = if wide { gen.random_u64() } else { gen.random_u32() as u64 };
                            (r % range) as i64
                        }),
                    )
                } else {
                    crate::alloc::collect_exact(n, (0..n).map(|_| gen.random_in(from, range)))
                };
                crate::kernels::cast(&TensorData::from_vec(v, shape), dtype)
            }
            (Distribution::Exponential { lambd }, _) => per_element(&mut gen, &|g| g.exponential(lambd)),
            (Distribution::Geometric { p }, _) => per_element(&mut gen, &|g| g.geometric(p)),
            (Distribution::Cauchy { median, sigma }, _) => per_element(&mut gen, &|g| g.cauchy(median, sigma)),
            (Distribution::LogNormal { mean, std }, _) => per_element(&mut gen, &|g| g.log_normal(mean, std)),
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
pub fn random_filled(x: &Tensor, target: &Tensor, dist: Distribution, gen: &Mutex<Generator>) -> Result<Tensor> {
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
        let drawn = dist.sample(n, d.dtype(), contiguous, gen);
        // Drawn in float32 for the 16-bit floats, then rounded.
        let drawn = if drawn.dtype() == d.dtype() { drawn } else { crate::kernels::cast(&drawn, d.dtype()) };
        in_logical_order(drawn, &d)
    };
    record(Tensor::from_data(values), &[x], |_| ZeroGradBackward { name: dist.node_name() })
}

/// Samples drawn in the memory order of the layout `d` (a flat contiguous buffer), rearranged
/// in `d`'s logical (row-major) order.
pub(crate) fn in_logical_order(flat: TensorData, d: &TensorData) -> TensorData {
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
    drawn: &Mutex<Option<TensorData>>,
    gen: &Mutex<Generator>,
) -> Result<Tensor> {
    let mut cache = drawn.lock().unwrap_or_else(|e| e.into_inner());
    let values = match cache.as_ref() {
        Some(v) => v.clone(),
        None => cache.insert(bernoulli_tensor_values(target, p, gen)?).clone(),
    };
    drop(cache);
    record(Tensor::from_data(values), &[x, p], |_| ZeroGradBackward { name: "BernoulliBackward1" })
}

/// `values` (drawn by a random function of `inputs`) recorded as the result of node `name`,
/// which passes zero gradients to `inputs` (`torch.normal` with tensor arguments:
/// `NormalBackward1`/`2`/`3`).
pub fn random_result(values: &Tensor, inputs: &[&Tensor], name: &'static str) -> Result<Tensor> {
    record(values.detach(), inputs, |_| ZeroGradBackward { name })
}

/// `values` recorded as PyTorch records a result it has no derivative for
/// (`torch.bernoulli(input, p)` with a number `p`): the node `torch::autograd::NotImplemented`,
/// whose backward raises PyTorch's error naming `op` (`aten::bernoulli`).
pub fn not_differentiable_result(values: &Tensor, inputs: &[&Tensor], op: &'static str) -> Result<Tensor> {
    record(values.detach(), inputs, |_| NotImplementedBackward { op })
}

/// The node of a result without a derivative (see [`not_differentiable_result`]).
pub struct NotImplementedBackward {
    op: &'static str,
}
impl Backward for NotImplementedBackward {
    fn name(&self) -> &'static str {
        "torch::autograd::NotImplemented"
    }
    fn apply(&self, _ctx: &BackwardCtx, _grads: &[Option<Tensor>]) -> Result<Grads> {
        Err(Error::runtime(format!("derivative for {} is not implemented", self.op)))
    }
}

/// `torch.bernoulli(p, generator=gen)`: 1 with probability `p` elementwise, in `p`'s dtype and
/// layout (drawn as `empty_like(p).bernoulli_(p)`); `BernoulliBackward0` passes no gradient.
pub fn bernoulli(p: &Tensor, gen: &Mutex<Generator>) -> Result<Tensor> {
    let values = bernoulli_tensor_values(p, p, gen)?;
    record(Tensor::from_data(values), &[p], |_| ZeroGradBackward { name: "BernoulliBackward0" })
}

/// The values of `target.bernoulli_(p)`: one uniform per element, in the target's memory
/// order, of `p`'s precision (a 24-bit `float` for float32 `p`, a 53-bit `double` for
/// float64), and 1 where it is below `p`. Nothing is drawn when an argument is refused.
fn bernoulli_tensor_values(target: &Tensor, p: &Tensor, gen: &Mutex<Generator>) -> Result<TensorData> {
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
            let mut gen = lock(gen);
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
impl ZeroGradBackward {
    /// A node named `name` (as `grad_fn.name()` shows it).
    pub fn named(name: &'static str) -> Self {
        ZeroGradBackward { name }
    }
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
