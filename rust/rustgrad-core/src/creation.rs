//! Tensor factories (no graph).

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::kernels;
use crate::random::{default_generator, lock, Generator};
use crate::shape;
use crate::tensor::{Tensor, TensorData};
use std::sync::Mutex;

/// A tensor of `shape` filled with `value`, of type `dtype` (`torch.full`).
pub fn full(shape: &[usize], value: f64, dtype: DType) -> Tensor {
    Tensor::from_data(kernels::full(shape, value, dtype))
}

/// A tensor of zeros (`torch.zeros`).
pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
    full(shape, 0.0, dtype)
}

/// A tensor of ones (`torch.ones`).
pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
    full(shape, 1.0, dtype)
}

/// Zeros with the shape and dtype of `x` (`torch.zeros_like`).
pub fn zeros_like(x: &Tensor) -> Tensor {
    let d = x.data();
    zeros(&d.shape, d.dtype())
}

/// Ones with the shape and dtype of `x` (`torch.ones_like`).
pub fn ones_like(x: &Tensor) -> Tensor {
    let d = x.data();
    ones(&d.shape, d.dtype())
}

/// The values of the fresh contiguous `fresh`, made in memory order, seen with the dense
/// layout `shape`/`strides` (how `empty_like` of a permuted tensor is laid out).
pub fn with_layout(fresh: &Tensor, shape: &[usize], strides: &[usize]) -> Result<Tensor> {
    let d = fresh.data();
    if !d.is_contiguous()
        || shape.len() != strides.len()
        || shape::numel(shape) != d.numel()
        || !shape::is_dense(shape, strides)
    {
        return Err(Error::runtime(format!(
            "with_layout: {shape:?} with strides {strides:?} is not a dense layout of {:?}",
            d.shape
        )));
    }
    Ok(Tensor::from_data(d.restrided(shape.into(), strides.into(), d.offset)))
}

/// `arange(start, end, step)`; the dtype is chosen by the caller (int64 for integer args).
pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
    if !step.is_finite() {
        let shown = if step.is_nan() {
            "nan"
        } else if step > 0.0 {
            "inf"
        } else {
            "-inf"
        };
        return Err(Error::runtime(format!("step must be finite but got {shown}")));
    }
    if step == 0.0 {
        return Err(Error::runtime("step must be nonzero"));
    }
    if (step > 0.0 && start > end) || (step < 0.0 && start < end) {
        return Err(Error::runtime("upper bound and larger bound inconsistent with step sign"));
    }
    let count = ((end - start) / step).ceil();
    if !count.is_finite() || count >= i64::MAX as f64 {
        let show = |v: f64| if v.is_nan() { "nan".to_string() } else { v.to_string() };
        return Err(Error::runtime(format!("unsupported range: {} -> {}", show(start), show(end))));
    }
    let n = count.max(0.0) as usize;
    shape::storage_numel(&[n], dtype.size())?;
    let values = match dtype {
        DType::F32 => TensorData::from_vec(
            arange_values(start, step, n, 8, |v| v as f32 as f64, |v| v as f32),
            [n].as_slice().into(),
        ),
        DType::F64 => TensorData::from_vec(arange_values(start, step, n, 4, |v| v, |v| v), [n].as_slice().into()),
        _ => crate::with_dtype!(dtype, T => {
            TensorData::from_vec(crate::alloc::collect_exact(n, (0..n).map(|i| T::from_f64(start + i as f64 * step))), [n].as_slice().into())
        }),
    };
    Ok(Tensor::from_data(values))
}

/// Note [arange in PyTorch's order]: PyTorch's float kernel fills 32-byte vectors (8 float32
/// or 4 float64 values) two at a time: each vector's first value is `start + step * idx`
/// (one fused multiply-add in float64) rounded to the dtype, and lane `i` is
/// `first + i * step`, fused and rounded again. The values after the last pair of vectors are
/// `start + step * idx`, fused and rounded once. So `arange(-3, 3.1, 0.1)[30]` is -2.4e-08,
/// not 0.
fn arange_values<T>(
    start: f64,
    step: f64,
    n: usize,
    lanes: usize,
    round: impl Fn(f64) -> f64,
    to: impl Fn(f64) -> T,
) -> Vec<T> {
    let mut out = crate::alloc::vec_with_capacity(n);
    let paired = n / (2 * lanes) * (2 * lanes);
    for idx in (0..paired).step_by(lanes) {
        let first = round(step.mul_add(idx as f64, start));
        for i in 0..lanes {
            out.push(to((i as f64).mul_add(step, first)));
        }
    }
    for idx in paired..n {
        out.push(to(step.mul_add(idx as f64, start)));
    }
    out
}

/// `linspace(start, end, steps)`, computed as PyTorch does: from both ends toward the middle,
/// each value one fused multiply-add (`start + step i` or `end - step (steps - 1 - i)`), float32
/// in float32.
pub fn linspace(start: f64, end: f64, steps: usize, dtype: DType) -> Result<Tensor> {
    shape::storage_numel(&[steps], dtype.size())?;
    if steps > 0 {
        crate::dtype::check_fits(start, dtype)?;
        crate::dtype::check_fits(end, dtype)?;
    }
    let half = steps / 2;
    let data = if dtype == DType::F32 {
        let (s, e) = (start as f32, end as f32);
        let step = if steps > 1 { (e - s) / (steps - 1) as f32 } else { 0.0 };
        let v = crate::alloc::collect_exact(
            steps,
            (0..steps).map(|i| {
                if i < half || steps == 1 {
                    step.mul_add(i as f32, s)
                } else {
                    (-step).mul_add((steps - 1 - i) as f32, e)
                }
            }),
        );
        TensorData::from_vec(v, [steps].as_slice().into())
    } else {
        let step = if steps > 1 { (end - start) / (steps - 1) as f64 } else { 0.0 };
        let value = |i: usize| {
            if i < half || steps == 1 {
                step.mul_add(i as f64, start)
            } else {
                (-step).mul_add((steps - 1 - i) as f64, end)
            }
        };
        crate::with_dtype!(dtype, T => TensorData::from_vec(crate::alloc::collect_exact(steps, (0..steps).map(|i| T::from_f64(value(i)))), [steps].as_slice().into()))
    };
    Ok(Tensor::from_data(data))
}

/// An `n` x `m` matrix with ones on the diagonal (`torch.eye`).
pub fn eye(n: usize, m: usize, dtype: DType) -> Result<Tensor> {
    shape::checked_numel(&[n, m])?;
    shape::storage_numel(&[n, m], dtype.size())?;
    let values = crate::with_dtype!(dtype, T => {
        let mut values = crate::alloc::vec_zeroed::<T>(n * m);
        for i in 0..n.min(m) {
            values[i * m + i] = T::one();
        }
        TensorData::from_vec(values, [n, m].as_slice().into())
    });
    Ok(Tensor::from_data(values))
}

/// Uniform samples in [0, 1) from `gen` (`torch.rand`; the default generator is
/// [`default_generator`]).
pub fn rand(shape: &[usize], dtype: DType, gen: &Mutex<Generator>) -> Tensor {
    let n = shape::numel(shape);
    let mut gen = lock(gen);
    match dtype {
        DType::F64 => {
            let mut v = crate::alloc::vec_zeroed::<f64>(n);
            gen.fill_uniform_f64(&mut v, 0.0, 1.0);
            Tensor::from_data(TensorData::from_vec(v, shape.into()))
        }
        _ => {
            let mut v = crate::alloc::vec_zeroed::<f32>(n);
            gen.fill_uniform_f32(&mut v, 0.0, 1.0);
            Tensor::from_data(kernels::via_f32(dtype, || TensorData::from_vec(v, shape.into())))
        }
    }
}

/// Standard normal samples from `gen` (`torch.randn`).
pub fn randn(shape: &[usize], dtype: DType, gen: &Mutex<Generator>) -> Tensor {
    let n = shape::numel(shape);
    let mut gen = lock(gen);
    match dtype {
        DType::F64 => {
            let mut v = crate::alloc::vec_zeroed::<f64>(n);
            gen.fill_normal_f64(&mut v, 0.0, 1.0);
            Tensor::from_data(TensorData::from_vec(v, shape.into()))
        }
        _ => {
            let mut v = crate::alloc::vec_zeroed::<f32>(n);
            if dtype.is_half() {
                gen.fill_normal_reduced(&mut v, 0.0, 1.0);
            } else {
                gen.fill_normal_f32(&mut v, 0.0, 1.0);
            }
            Tensor::from_data(kernels::via_f32(dtype, || TensorData::from_vec(v, shape.into())))
        }
    }
}

/// Integers uniform in [low, high) from `gen` (`torch.randint`).
pub fn randint(low: i64, high: i64, shape: &[usize], gen: &Mutex<Generator>) -> Result<Tensor> {
    if low >= high {
        return Err(Error::runtime(format!(
            "random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )));
    }
    let mut v = crate::alloc::vec_zeroed::<i64>(shape::numel(shape));
    lock(gen).fill_randint_i64(&mut v, low, high);
    Ok(Tensor::from_data(TensorData::from_vec(v, shape.into())))
}

/// Seeds the default generator (`torch.manual_seed`).
pub fn manual_seed(seed: u64) {
    default_generator().lock().unwrap_or_else(|e| e.into_inner()).manual_seed(seed);
}
