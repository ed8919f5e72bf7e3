//! Sampling ops that read a tensor of parameters: `multinomial` and `poisson`.
//!
//! # How PyTorch's CPU kernels draw them (found by experiment against PyTorch 2.15)
//!
//! * **`multinomial` without replacement, or with one sample per row.** One exponential
//!   variate `q` of rate 1 per element of the input, drawn in the input's memory order
//!   (`empty_like(input).exponential_()`, each `(-1) * log1p(-u)` with a 53-bit `u`,
//!   rounded to the input's dtype); the keys `p / q` are formed in the input's dtype and the
//!   `n` largest keys of each row are the samples, largest first (the "exponential race":
//!   the first arrival of independent exponential clocks of rates `p_i`).
//! * **`multinomial` with replacement and more than one sample.** Row by row: the running
//!   sum of the weights in the input's dtype, divided by the row's total (also in that
//!   dtype), then for each sample one 53-bit uniform `u` and the first category whose
//!   normalised running sum exceeds `u`.
//! * **`poisson`.** Element by element, in row-major (logical) order whatever the layout, in `f64`, see
//!   [`Generator::poisson`](crate::random::Generator::poisson).

use super::fill::{in_logical_order, ZeroGradBackward};
use crate::autograd::record;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::random::{lock, Generator};
use crate::tensor::{Tensor, TensorData};
use smallvec::smallvec;
use std::sync::Mutex;

/// Largest number of categories `multinomial` takes (PyTorch's limit).
const MAX_CATEGORIES: usize = 1 << 24;

/// `torch.multinomial(input, num_samples, replacement, generator=gen)`: int64 indices of
/// shape `(num_samples,)` or `(rows, num_samples)`, with PyTorch's checks and messages.
pub fn multinomial(input: &Tensor, num_samples: i64, replacement: bool, gen: &Mutex<Generator>) -> Result<Tensor> {
    let d = input.data();
    let shape = d.shape.clone();
    if shape.is_empty() || shape.len() > 2 {
        return Err(Error::runtime("prob_dist must be 1 or 2 dim"));
    }
    let dtype = d.dtype();
    if !dtype.is_float() {
        return Err(Error::runtime(format!(
            "multinomial only supports floating-point dtypes for input, got: {}",
            dtype.scalar_type_name()
        )));
    }
    if num_samples <= 0 {
        return Err(Error::runtime("cannot sample n_sample <= 0 samples"));
    }
    let n = num_samples as usize;
    let k = *shape.last().unwrap_or(&0);
    if !replacement && n > k {
        return Err(Error::runtime("cannot sample n_sample > prob_dist.size(-1) samples without replacement"));
    }
    if k > MAX_CATEGORIES {
        return Err(Error::runtime("number of categories cannot exceed 2^24"));
    }
    let rows = if shape.len() == 2 { shape[0] } else { 1 };
    let out_shape: Vec<usize> = if shape.len() == 2 { vec![rows, n] } else { vec![n] };
    crate::shape::storage_numel(&out_shape, std::mem::size_of::<i64>())?;
    if rows == 0 {
        return Ok(crate::creation::zeros(&out_shape, DType::I64));
    }
    // The weights in row-major order, exactly (f32 values are exact as f64).
    let weights = crate::kernels::contiguous_copy(&d).to_vec::<f64>();
    let single = dtype != DType::F64;
    let round = |x: f64| if single { x as f32 as f64 } else { x };
    let mut out = crate::alloc::vec_with_capacity(rows * n);
    if !replacement || n == 1 {
        if weights.iter().any(|&w| w.is_nan() || w < 0.0 || w.is_infinite()) {
            return Err(Error::runtime("probability tensor contains either `inf`, `nan` or element < 0"));
        }
        if weights.chunks(k.max(1)).any(|row| row.iter().sum::<f64>() <= 0.0) {
            return Err(Error::runtime("invalid multinomial distribution (sum of probabilities <= 0)"));
        }
        // One exponential per element, in the input's memory order, rounded to its dtype.
        let count = weights.len();
        let q = {
            let mut g = lock(gen);
            let v: Vec<f64> = crate::alloc::collect_exact(count, (0..count).map(|_| round(g.exponential(1.0))));
            in_logical_order(TensorData::from_vec(v, smallvec![count]), &d).to_vec::<f64>()
        };
        let mut order: Vec<usize> = Vec::with_capacity(k);
        for (row, q_row) in weights.chunks(k).zip(q.chunks(k)) {
            let keys: Vec<f64> = row.iter().zip(q_row).map(|(&p, &q)| round(p / q)).collect();
            order.clear();
            order.extend(0..k);
            // Largest key first; equal keys keep the lower index first.
            order.sort_by(|&a, &b| keys[b].partial_cmp(&keys[a]).unwrap_or(std::cmp::Ordering::Equal));
            out.extend(order[..n].iter().map(|&i| i as i64));
        }
    } else {
        let mut cumulative = vec![0.0f64; k];
        for row in weights.chunks(k) {
            let mut total = 0.0;
            for (c, &w) in cumulative.iter_mut().zip(row) {
                // NaN fails the first test, as in PyTorch.
                if w.is_nan() || w < 0.0 {
                    return Err(Error::runtime(
                        "invalid multinomial distribution (encountering probability entry < 0)",
                    ));
                }
                if w.is_infinite() {
                    return Err(Error::runtime(
                        "invalid multinomial distribution (encountering probability entry = infinity or NaN)",
                    ));
                }
                total = round(total + w);
                *c = total;
            }
            if total.is_nan() || total <= 0.0 {
                return Err(Error::runtime("invalid multinomial distribution (sum of probabilities <= 0)"));
            }
            for c in cumulative.iter_mut() {
                *c = round(*c / total);
            }
            let mut g = lock(gen);
            for _ in 0..n {
                let u = g.uniform_f64();
                let index = cumulative.partition_point(|&c| c <= u).min(k - 1);
                out.push(index as i64);
            }
        }
    }
    Tensor::from_vec(out, &out_shape)
}

/// `torch.poisson(rates, generator=gen)`: one sample per rate (in the rates' memory order),
/// in the rates' dtype; the result's node (`PoissonBackward0`) passes no gradient.
pub fn poisson(rates: &Tensor, gen: &Mutex<Generator>) -> Result<Tensor> {
    let d = rates.data();
    crate::dtype::require_kernel("poisson_cpu", d.dtype(), crate::dtype::FLOATS)?;
    // Row-major (logical) order, whatever the layout.
    let rates_flat = crate::kernels::contiguous_copy(&d).to_vec::<f64>();
    if rates_flat.iter().any(|&l| l.is_nan() || l < 0.0) {
        return Err(Error::runtime("invalid Poisson rate, expected rate to be non-negative"));
    }
    let drawn: Vec<f64> = {
        let mut g = lock(gen);
        rates_flat.iter().map(|&l| g.poisson(l)).collect()
    };
    let values = TensorData::from_vec(drawn, d.shape.clone());
    let values = crate::kernels::cast(&values, d.dtype());
    record(Tensor::from_data(values), &[rates], |_| ZeroGradBackward::named("PoissonBackward0"))
}

#[cfg(test)]
mod tests {
    //! Expected values from PyTorch 2.15.0 (`torch.multinomial(..., generator=G(16))`).
    use super::*;

    fn draw(values: Vec<f32>, shape: &[usize], n: i64, replacement: bool) -> Result<Vec<i64>> {
        let t = Tensor::from_vec(values, shape)?;
        Ok(multinomial(&t, n, replacement, &Mutex::new(Generator::new(16)))?.to_vec::<i64>())
    }

    #[test]
    fn multinomial_matches_pytorch() {
        assert_eq!(draw(vec![0.1, 0.2, 0.3, 0.4], &[4], 3, false).unwrap(), [3, 1, 0]);
        assert_eq!(
            draw(vec![0.1, 0.2, 0.7, 1.0, 1.0, 1.0], &[2, 3], 6, true).unwrap(),
            [2, 2, 2, 2, 2, 2, 1, 0, 0, 0, 1, 2]
        );
        // One sample with replacement takes the without-replacement path.
        assert_eq!(draw(vec![1., 2., 3., 4., 4., 3., 2., 1.], &[2, 4], 1, true).unwrap(), [3, 2]);
    }

    #[test]
    fn multinomial_refuses_bad_input() {
        let msg = |r: Result<Vec<i64>>| r.unwrap_err().to_string();
        assert!(msg(draw(vec![0.5, -0.1], &[2], 1, false)).contains("element < 0"));
        assert!(msg(draw(vec![0.0, 0.0], &[2], 2, true)).contains("sum of probabilities <= 0"));
        assert!(msg(draw(vec![0.5, 0.5], &[2], 3, false)).contains("without replacement"));
        assert!(msg(draw(vec![0.5, 0.5], &[2], 0, false)).contains("n_sample <= 0"));
        assert!(msg(draw(vec![f32::NAN, 0.5], &[2], 2, true)).contains("entry < 0"));
        assert!(msg(draw(vec![f32::INFINITY, 0.5], &[2], 2, true)).contains("infinity or NaN"));
    }
}
