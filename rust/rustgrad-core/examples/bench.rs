//! Micro-benchmarks of the pure-Rust API (no criterion, to keep builds light).
//!
//! Run with `cargo run --release -p rustgrad-core --example bench`.
//! Prints one JSON line per workload; `benchmarks/run.py` collects them.
//! Optional argument: a repeat multiplier (e.g. `-- 0.2` for a quick smoke run).
//!
//! Workloads: `forward_op`, `backward_chain`, `micrograd_mlp` (issue 5's rows 1-3, as in
//! `benchmarks/bench_python.py`) and `tanh_sum_1e6` / `tanh_sum_1e7`. Each checks its result once.

/// The allocator the Python extension uses, so the two columns compare the same core.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use rustgrad_core::inplace::apply_inplace;
use rustgrad_core::ops::{arith, reduce, unary};
use rustgrad_core::{engine, graph, GradModeGuard, Result, Tensor};

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

/// (d) forward + backward ms of `tanh(x*x + 3*x).sum()` on `n` f32 elements.
fn bench_tanh_sum(repeats: usize, n: usize, workload: &str) -> Result<()> {
    let values: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3 - 0.5).collect();
    let x = leaf(values, &[n])?;
    let three = Tensor::wrapped_scalar(3i64);
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        x.set_grad(None)?;
        let start = Instant::now();
        let s = reduce::sum(
            &unary::tanh(&arith::add(&arith::mul(&x, &x)?, &arith::mul(&x, &three)?)?)?,
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
    report(workload, "ms", &mut samples, &format!(", \"elements\": {n}"));
    Ok(())
}

// (c) micrograd's demo: an MLP 2-16-16-1 over 0-d tensors (each neuron a loop over scalars, like
// micrograd's `Value`), 100 "moons" points, hinge loss + L2 regularisation, SGD with micrograd's
// learning-rate schedule. The data and weights are drawn here (SplitMix64), not shared with Python.

const MLP_SIZES: [usize; 4] = [2, 16, 16, 1];
const MLP_ALPHA: f64 = 1e-4;

/// SplitMix64: a few lines of deterministic randomness, no dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (1.0 - self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// sklearn's `make_moons(n, noise)`: two interleaved half circles, shuffled, plus noise; y in {-1, 1}.
fn moons(n: usize, noise: f64, rng: &mut Rng) -> (Vec<[f64; 2]>, Vec<f64>) {
    let n_out = n / 2;
    let n_in = n - n_out;
    let angle = |i: usize, m: usize| std::f64::consts::PI * i as f64 / (m - 1) as f64;
    let mut points: Vec<([f64; 2], f64)> = (0..n_out)
        .map(|i| ([angle(i, n_out).cos(), angle(i, n_out).sin()], -1.0))
        .chain((0..n_in).map(|i| ([1.0 - angle(i, n_in).cos(), 0.5 - angle(i, n_in).sin()], 1.0)))
        .collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        points.swap(i, j);
    }
    let xs = points.iter().map(|(p, _)| [p[0] + noise * rng.normal(), p[1] + noise * rng.normal()]).collect();
    (xs, points.iter().map(|&(_, y)| y).collect())
}

/// Per layer, per neuron: (weights, bias), drawn as micrograd's `Neuron` does (uniform(-1, 1), bias 0).
type Weights = Vec<Vec<(Vec<f32>, f32)>>;

fn micrograd_weights(rng: &mut Rng) -> Weights {
    (0..MLP_SIZES.len() - 1)
        .map(|l| {
            (0..MLP_SIZES[l + 1])
                .map(|_| ((0..MLP_SIZES[l]).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect(), 0.0))
                .collect()
        })
        .collect()
}

struct Neuron {
    w: Vec<Tensor>,
    b: Tensor,
    nonlin: bool,
}

impl Neuron {
    /// `act = b + w0*x0 + w1*x1 + ...` (micrograd's `sum(..., self.b)`), then ReLU unless last layer.
    fn forward(&self, x: &[Tensor]) -> Result<Tensor> {
        let mut act = self.b.clone();
        for (wi, xi) in self.w.iter().zip(x) {
            act = arith::add(&act, &arith::mul(wi, xi)?)?;
        }
        if self.nonlin {
            unary::relu(&act)
        } else {
            Ok(act)
        }
    }
}

struct Mlp {
    layers: Vec<Vec<Neuron>>,
}

impl Mlp {
    fn new(weights: &Weights) -> Result<Mlp> {
        let last = weights.len() - 1;
        let scalar = |v: f32| -> Result<Tensor> {
            let t = Tensor::scalar(v);
            t.set_requires_grad(true)?;
            Ok(t)
        };
        let layers = weights
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                layer
                    .iter()
                    .map(|(w, b)| {
                        let w = w.iter().map(|&v| scalar(v)).collect::<Result<Vec<_>>>()?;
                        Ok(Neuron { w, b: scalar(*b)?, nonlin: l < last })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Mlp { layers })
    }

    fn forward(&self, x: &[Tensor]) -> Result<Tensor> {
        let mut acts = x.to_vec();
        for layer in &self.layers {
            acts = layer.iter().map(|n| n.forward(&acts)).collect::<Result<Vec<_>>>()?;
        }
        Ok(acts.swap_remove(0))
    }

    /// Per neuron, its weights then its bias (micrograd's `parameters()` order).
    fn parameters(&self) -> Vec<Tensor> {
        let per_neuron = |n: &Neuron| n.w.iter().chain(std::iter::once(&n.b)).cloned().collect::<Vec<_>>();
        self.layers.iter().flatten().flat_map(per_neuron).collect()
    }
}

/// micrograd's demo loss: mean of relu(1 - y * score) + alpha * sum(p * p).
fn micrograd_loss(model: &Mlp, params: &[Tensor], xs: &[[f64; 2]], ys: &[f64]) -> Result<Tensor> {
    let one = Tensor::wrapped_scalar(1.0f64);
    let mut data_loss: Option<Tensor> = None;
    for (x, &y) in xs.iter().zip(ys) {
        let inputs = [Tensor::scalar(x[0] as f32), Tensor::scalar(x[1] as f32)];
        let score = model.forward(&inputs)?;
        let margin = arith::add(&arith::mul(&Tensor::wrapped_scalar(-y), &score)?, &one)?;
        let l = unary::relu(&margin)?;
        data_loss = Some(match data_loss {
            Some(acc) => arith::add(&acc, &l)?,
            None => l,
        });
    }
    let data_loss = arith::mul(&data_loss.expect("points"), &Tensor::wrapped_scalar(1.0 / xs.len() as f64))?;
    let mut reg: Option<Tensor> = None;
    for p in params {
        let sq = arith::mul(p, p)?;
        reg = Some(match reg {
            Some(acc) => arith::add(&acc, &sq)?,
            None => sq,
        });
    }
    let reg = arith::mul(&Tensor::wrapped_scalar(MLP_ALPHA), &reg.expect("parameters"))?;
    arith::add(&data_loss, &reg)
}

/// The demo's loss and its gradient (in `parameters()` order), by hand in f64.
fn micrograd_reference(xs: &[[f64; 2]], ys: &[f64], weights: &Weights) -> (f64, Vec<f64>) {
    let n = xs.len() as f64;
    let last = weights.len() - 1;
    let mut grads: Vec<Vec<(Vec<f64>, f64)>> =
        weights.iter().map(|layer| layer.iter().map(|(w, _)| (vec![0.0; w.len()], 0.0)).collect()).collect();
    let mut loss = 0.0;
    for (x, &y) in xs.iter().zip(ys) {
        // forward, keeping each layer's input and pre-activation
        let mut inputs = vec![x.to_vec()];
        let mut pre = Vec::new();
        for (l, layer) in weights.iter().enumerate() {
            let a = inputs.last().expect("input");
            let z: Vec<f64> = layer
                .iter()
                .map(|(w, b)| *b as f64 + w.iter().zip(a).map(|(&wi, &ai)| wi as f64 * ai).sum::<f64>())
                .collect();
            inputs.push(if l < last { z.iter().map(|&v| v.max(0.0)).collect() } else { z.clone() });
            pre.push(z);
        }
        let margin = 1.0 - y * pre[last][0];
        loss += margin.max(0.0) / n;
        // backward
        let mut d = vec![if margin > 0.0 { -y / n } else { 0.0 }];
        for l in (0..=last).rev() {
            if l < last {
                d = d.iter().zip(&pre[l]).map(|(&g, &z)| if z > 0.0 { g } else { 0.0 }).collect();
            }
            let mut d_in = vec![0.0; inputs[l].len()];
            for (j, (w, _)) in weights[l].iter().enumerate() {
                for (i, &wi) in w.iter().enumerate() {
                    grads[l][j].0[i] += d[j] * inputs[l][i];
                    d_in[i] += d[j] * wi as f64;
                }
                grads[l][j].1 += d[j];
            }
            d = d_in;
        }
    }
    let mut flat = Vec::new();
    for (layer, glayer) in weights.iter().zip(&grads) {
        for ((w, b), (gw, gb)) in layer.iter().zip(glayer) {
            for (&wi, &gi) in w.iter().zip(gw) {
                loss += MLP_ALPHA * (wi as f64).powi(2);
                flat.push(gi + 2.0 * MLP_ALPHA * wi as f64);
            }
            loss += MLP_ALPHA * (*b as f64).powi(2);
            flat.push(gb + 2.0 * MLP_ALPHA * *b as f64);
        }
    }
    (loss, flat)
}

/// (c) ms per step (forward, zero_grad, backward, SGD) of micrograd's demo MLP over 0-d tensors.
fn bench_micrograd_mlp(repeats: usize) -> Result<()> {
    let mut rng = Rng(1337);
    let (xs, ys) = moons(100, 0.1, &mut rng);
    let weights = micrograd_weights(&mut rng);
    let model = Mlp::new(&weights)?;
    let params = model.parameters();
    let step = |k: usize, check: bool| -> Result<()> {
        let total = micrograd_loss(&model, &params, &xs, &ys)?;
        for p in &params {
            p.set_grad(None)?;
        }
        engine::backward(std::slice::from_ref(&total), &[None], false, false, None)?;
        if check {
            let (want_loss, want) = micrograd_reference(&xs, &ys, &weights);
            let got_loss = total.item_f64()?;
            assert!((got_loss - want_loss).abs() <= 1e-5 * want_loss.abs(), "loss {got_loss} vs {want_loss}");
            for (i, (p, &w)) in params.iter().zip(&want).enumerate() {
                let g = p.grad().map(|g| g.to_vec::<f32>()[0] as f64).unwrap_or(f64::NAN);
                assert!((g - w).abs() <= 1e-6 + 1e-4 * w.abs(), "parameter {i}: grad {g} vs {w}");
            }
        }
        let lr = 1.0 - 0.9 * (k % 100) as f64 / 100.0;
        let _no_grad = GradModeGuard::new(false);
        for p in &params {
            let g = p.grad().expect("grad");
            apply_inplace(p, |src| arith::sub_scaled(src, &g, lr))?;
        }
        Ok(())
    };
    step(0, true)?; // warm-up, checked against the hand-written reference
    let mut samples = Vec::with_capacity(repeats);
    for k in 1..=repeats {
        let start = Instant::now();
        step(k, false)?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let extra = format!(", \"points\": {}, \"parameters\": {}", xs.len(), params.len());
    report("micrograd_mlp", "ms", &mut samples, &extra);
    Ok(())
}

fn main() -> Result<()> {
    let scale: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let scaled = |n: usize| ((n as f64 * scale).round() as usize).max(3);
    // Warm-up (allocator, arena, page faults).
    bench_forward_op_quiet()?;
    bench_forward_op(scaled(15), 20_000)?;
    bench_backward_chain(scaled(31), 1_000)?;
    bench_micrograd_mlp(scaled(10))?;
    bench_tanh_sum(scaled(21), 1_000_000, "tanh_sum_1e6")?;
    bench_tanh_sum(scaled(7), 10_000_000, "tanh_sum_1e7")?;
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
