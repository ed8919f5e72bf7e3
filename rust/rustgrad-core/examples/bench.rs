//! Micro-benchmarks of the pure-Rust API (no criterion, to keep builds light).
//!
//! Run with `cargo run --release -p rustgrad-core --example bench`.
//! Prints one JSON line per workload; `benchmarks/run.py` collects them.
//! Optional argument: a repeat multiplier (e.g. `-- 0.2` for a quick smoke run).

use std::time::Instant;

use rustgrad_core::ops::{arith, reduce, unary};
use rustgrad_core::{engine, graph, Result, Tensor};

/// The `p`-quantile of sorted `samples`, interpolating linearly (Python's `method="inclusive"`).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos.fract());
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

fn report(workload: &str, unit: &str, samples: &mut [f64], extra: &str) {
    samples.sort_by(f64::total_cmp);
    let repeats = samples.len();
    let (median, min, max) = (quantile(samples, 0.5), samples[0], samples[repeats - 1]);
    let iqr = quantile(samples, 0.75) - quantile(samples, 0.25);
    println!(
        "{{\"framework\": \"rust\", \"workload\": \"{workload}\", \"unit\": \"{unit}\", \
         \"median\": {median:.6}, \"min\": {min:.6}, \"max\": {max:.6}, \"iqr\": {iqr:.6}, \
         \"repeats\": {repeats}{extra}}}"
    );
}

fn leaf(values: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
    let t = Tensor::from_vec(values, shape)?;
    t.set_requires_grad(true)?;
    Ok(t)
}

/// (a) forward µs per op of `c = a * b + a` on 1-element tensors requiring grad.
fn bench_forward_op(repeats: usize, iters: usize) -> Result<()> {
    let a = leaf(vec![0.5], &[1])?;
    let b = leaf(vec![1.5], &[1])?;
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = Instant::now();
        for _ in 0..iters {
            let c = arith::add(&arith::mul(&a, &b)?, &a)?;
            std::hint::black_box(c);
        }
        samples.push(start.elapsed().as_secs_f64() * 1e6 / (2 * iters) as f64);
    }
    report("forward_op", "us/op", &mut samples, &format!(", \"ops_per_repeat\": {}", 2 * iters));
    Ok(())
}

/// (b) backward µs per node of a chain of `n_ops` ops: `y = y * b + a`, repeated.
fn bench_backward_chain(repeats: usize, n_ops: usize) -> Result<()> {
    let a = leaf(vec![0.1], &[1])?;
    let b = leaf(vec![0.999], &[1])?;
    let x = leaf(vec![1.0], &[1])?;
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let mut y = x.clone();
        for _ in 0..n_ops / 2 {
            y = arith::add(&arith::mul(&y, &b)?, &a)?;
        }
        for t in [&a, &b, &x] {
            t.set_grad(None)?;
        }
        let start = Instant::now();
        engine::backward(std::slice::from_ref(&y), &[None], false, false, None)?;
        samples.push(start.elapsed().as_secs_f64() * 1e6 / n_ops as f64);
        drop(y);
    }
    // d y / d x = b^(n_ops/2), about 0.61 for 1,000 ops
    let gx = x.grad().map(|g| g.to_vec::<f32>()[0]).unwrap_or(f32::NAN);
    let expect = 0.999f32.powi((n_ops / 2) as i32);
    assert!((gx - expect).abs() <= 1e-4 * expect.abs(), "bad grad {gx} vs {expect}");
    report("backward_chain", "us/node", &mut samples, &format!(", \"nodes\": {n_ops}"));
    Ok(())
}

/// (c) forward + backward ms of `tanh(x*x + 3*x).sum()` on `n` f32 elements.
fn bench_tanh_sum(repeats: usize, n: usize) -> Result<()> {
    let values: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3 - 0.5).collect();
    let x = leaf(values, &[n])?;
    let three = Tensor::wrapped_scalar(3.0f64);
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        x.set_grad(None)?;
        let start = Instant::now();
        let s = reduce::sum(
            &unary::tanh(&arith::add(&arith::mul(&x, &x)?, &arith::mul(&three, &x)?)?)?,
            None,
            false,
            None,
        )?;
        engine::backward(std::slice::from_ref(&s), &[None], false, false, None)?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(s);
    }
    // Spot-check one gradient against (1 - t^2) (2x + 3).
    let g = x.grad().expect("x.grad").to_vec::<f32>();
    let xv = 0.123f32;
    let i = 623; // (623 % 1000) * 1e-3 - 0.5 = 0.123
    let t = (xv * xv + 3.0 * xv).tanh();
    let expect = (1.0 - t * t) * (2.0 * xv + 3.0);
    assert!((g[i] - expect).abs() < 1e-4, "bad grad {} vs {expect}", g[i]);
    report("tanh_sum_1e6", "ms", &mut samples, &format!(", \"elements\": {n}"));
    Ok(())
}

fn main() -> Result<()> {
    let scale: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let scaled = |n: usize| ((n as f64 * scale).round() as usize).max(3);
    // Warm-up (allocator, arena, page faults).
    bench_forward_op_quiet()?;
    bench_forward_op(scaled(15), 20_000)?;
    bench_backward_chain(scaled(31), 1_000)?;
    bench_tanh_sum(scaled(21), 1_000_000)?;
    eprintln!("live graph nodes at exit: {}", graph::live_nodes());
    Ok(())
}

fn bench_forward_op_quiet() -> Result<()> {
    let a = leaf(vec![0.5], &[1])?;
    let b = leaf(vec![1.5], &[1])?;
    for _ in 0..10_000 {
        std::hint::black_box(arith::add(&arith::mul(&a, &b)?, &a)?);
    }
    Ok(())
}
