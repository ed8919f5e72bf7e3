//! Shared helpers of the integration tests: deterministic inputs, `gradcheck`, `gradgradcheck`
//! and closed-form vector-Jacobian products.
//!
//! `gradcheck(f, x)` compares the analytic gradient of `L(x) = sum(f(x) * v)` for a fixed random
//! `v`, computed by `engine::grad`, with central finite differences
//! `(L(x + eps e_j) - L(x - eps e_j)) / (2 eps)` for every element `j` of every input.
//!
//! `gradgradcheck(f, x)` runs the same check on the first-order gradient function
//! `(x, v) -> grad(sum(f(x) * v), x, create_graph=true)`; as PyTorch's `gradgradcheck` does, the
//! grad output `v` is an input of that function too, so the backward formulas must be
//! differentiable with respect to both the forward inputs and the incoming gradient.

#![allow(dead_code)]

use rustgrad_core::engine;
use rustgrad_core::grad_mode::GradModeGuard;
use rustgrad_core::ops::{arith, reduce};
use rustgrad_core::{DType, Result, Tensor};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Finite-difference step.
pub const EPS: f64 = 1e-6;
/// Absolute tolerance of the gradient comparison.
pub const ATOL: f64 = 1e-5;
/// Relative tolerance of the gradient comparison.
pub const RTOL: f64 = 1e-5;

/// A small deterministic generator (splitmix64), independent of the core's global generator,
/// so tests running in parallel threads see the same values every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// A float64 tensor with the given values (no grad).
pub fn t64(values: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape).expect("values fill the shape")
}

/// A float64 leaf that requires grad.
pub fn leaf(values: &[f64], shape: &[usize]) -> Tensor {
    let t = t64(values, shape);
    t.set_requires_grad(true).expect("float tensors can require grad");
    t
}

/// Uniform values in [-1, 1).
pub fn uniform(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let v: Vec<f64> = (0..numel(shape)).map(|_| rng.range(-1.0, 1.0)).collect();
    t64(&v, shape)
}

/// Values with |x| in [0.2, 1.2) and a random sign: away from the kinks of abs, relu,
/// sign and the poles of 1/x.
pub fn away(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let v: Vec<f64> = (0..numel(shape))
        .map(|_| {
            let m = rng.range(0.2, 1.2);
            if rng.uniform() < 0.5 {
                -m
            } else {
                m
            }
        })
        .collect();
    t64(&v, shape)
}

/// Positive values in [0.5, 1.5) (for log, sqrt, fractional powers).
pub fn positive(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let v: Vec<f64> = (0..numel(shape)).map(|_| rng.range(0.5, 1.5)).collect();
    t64(&v, shape)
}

/// The elements of `t` in row-major order as f64.
pub fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f64>()
}

/// Whether `actual` is within `ATOL + RTOL * |expected|` of `expected` (NaN never is).
pub fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= ATOL + RTOL * expected.abs()
}

/// Panics listing every element of `actual` that is not close to `expected`.
pub fn assert_close(label: &str, actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{label}: {} values, expected {}", actual.len(), expected.len());
    let bad: Vec<String> = actual
        .iter()
        .zip(expected)
        .enumerate()
        .filter(|(_, (a, e))| !close(**a, **e))
        .map(|(i, (a, e))| format!("[{i}] got {a:.12e}, expected {e:.12e}"))
        .collect();
    assert!(bad.is_empty(), "{label}: {} of {} values differ:\n  {}", bad.len(), actual.len(), bad.join("\n  "));
}

/// A function of several tensors with several outputs.
type MultiFn<'a> = dyn Fn(&[Tensor]) -> Result<Vec<Tensor>> + 'a;

fn fmt_err(e: &rustgrad_core::Error) -> String {
    format!("Err({e})")
}

/// `sum_k sum(ys[k] * vs[k])`, recorded in the graph.
fn weighted_sum(ys: &[Tensor], vs: &[Tensor]) -> Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for (y, v) in ys.iter().zip(vs) {
        let term = reduce::sum(&arith::mul(y, v)?, None, false, None)?;
        total = Some(match total {
            None => term,
            Some(prev) => arith::add(&prev, &term)?,
        });
    }
    Ok(total.expect("at least one output"))
}

/// The value of `sum_k sum(f(x)[k] * v[k])` at `x` (with the inputs as fresh leaves).
fn objective(f: &MultiFn, xs: &[(Vec<f64>, Vec<usize>)], vs: &[Vec<f64>]) -> std::result::Result<f64, String> {
    let leaves: Vec<Tensor> = xs.iter().map(|(v, s)| leaf(v, s)).collect();
    let ys = f(&leaves).map_err(|e| fmt_err(&e))?;
    let mut total = 0.0;
    for (y, v) in ys.iter().zip(vs) {
        let yv = values(y);
        if yv.len() != v.len() {
            return Err(format!("output changed size under perturbation: {} vs {}", yv.len(), v.len()));
        }
        total += yv.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    }
    Ok(total)
}

/// The core of both checks: analytic vector-Jacobian product against central differences.
fn check_vjp(f: &MultiFn, inputs: &[Tensor], seed: u64) -> std::result::Result<(), String> {
    for (i, x) in inputs.iter().enumerate() {
        if x.dtype() != DType::F64 {
            return Err(format!("input {i} has dtype {}, gradcheck needs float64", x.dtype()));
        }
    }
    let xs: Vec<(Vec<f64>, Vec<usize>)> = inputs.iter().map(|t| (values(t), t.shape().to_vec())).collect();

    // analytic
    let leaves: Vec<Tensor> = xs.iter().map(|(v, s)| leaf(v, s)).collect();
    let ys = f(&leaves).map_err(|e| format!("evaluating the checked function failed: {}", fmt_err(&e)))?;
    let mut rng = Rng::new(seed);
    let vs: Vec<Vec<f64>> = ys.iter().map(|y| (0..y.numel()).map(|_| rng.range(-1.0, 1.0)).collect()).collect();
    for (k, y) in ys.iter().enumerate() {
        if y.dtype() != DType::F64 {
            return Err(format!("output {k} has dtype {}, expected float64", y.dtype()));
        }
    }
    let vts: Vec<Tensor> = ys.iter().zip(&vs).map(|(y, v)| t64(v, &y.shape())).collect();
    let l = weighted_sum(&ys, &vts).map_err(|e| format!("sum(f(x) * v) failed: {}", fmt_err(&e)))?;
    let analytic: Vec<Vec<f64>> = if l.requires_grad() {
        let grads = engine::grad(&[l], &[], &leaves, false, false, true)
            .map_err(|e| format!("engine::grad failed: {}", fmt_err(&e)))?;
        let mut out = Vec::new();
        for (i, (g, (xv, xshape))) in grads.iter().zip(&xs).enumerate() {
            match g {
                None => out.push(vec![0.0; xv.len()]),
                Some(g) => {
                    if g.shape().as_slice() != xshape.as_slice() {
                        return Err(format!(
                            "gradient of input {i} has shape {:?}, input has shape {:?}",
                            g.shape().as_slice(),
                            xshape
                        ));
                    }
                    if g.dtype() != DType::F64 {
                        return Err(format!("gradient of input {i} has dtype {}, expected float64", g.dtype()));
                    }
                    out.push(values(g));
                }
            }
        }
        out
    } else {
        // nothing in the output depends on a differentiable input: the gradient is zero
        xs.iter().map(|(v, _)| vec![0.0; v.len()]).collect()
    };

    // numerical
    let mut bad = Vec::new();
    for (i, grad_i) in analytic.iter().enumerate() {
        for (j, &a) in grad_i.iter().enumerate() {
            let at = |delta: f64| {
                let mut p = xs.clone();
                p[i].0[j] += delta;
                objective(f, &p, &vs)
            };
            let numeric = (at(EPS)? - at(-EPS)?) / (2.0 * EPS);
            if !close(a, numeric) {
                bad.push(format!("input {i} element {j}: analytic {a:.10e}, numerical {numeric:.10e}"));
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("{} mismatches:\n    {}", bad.len(), bad.join("\n    ")))
    }
}

fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x1000_0000_01b3))
}

/// First-order check of a single-output function.
pub fn gradcheck(
    name: &str,
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
) -> std::result::Result<(), String> {
    let multi = |x: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![f(x)?]) };
    check_vjp(&multi, inputs, seed_of(name)).map_err(|e| format!("gradcheck `{name}`: {e}"))
}

/// Second-order check: gradcheck of `(x, v) -> grad(sum(f(x) * v), x, create_graph=true)`.
pub fn gradgradcheck(
    name: &str,
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
) -> std::result::Result<(), String> {
    let n = inputs.len();
    let out_shape = {
        let _no_grad = GradModeGuard::new(false);
        f(inputs).map_err(|e| format!("gradgradcheck `{name}`: forward failed: {}", fmt_err(&e)))?.shape().to_vec()
    };
    let v = uniform(&out_shape, seed_of(name) ^ 0x5eed);
    let mut all = inputs.to_vec();
    all.push(v);
    let first_order = |xv: &[Tensor]| -> Result<Vec<Tensor>> {
        let (x, v) = xv.split_at(n);
        let y = f(x)?;
        let l = reduce::sum(&arith::mul(&y, &v[0])?, None, false, None)?;
        let grads = engine::grad(&[l], &[], x, true, true, true)?;
        Ok(grads
            .into_iter()
            .zip(x)
            .map(|(g, xi)| g.unwrap_or_else(|| rustgrad_core::creation::zeros_like(xi)))
            .collect())
    };
    check_vjp(&first_order, &all, seed_of(name).rotate_left(17)).map_err(|e| format!("gradgradcheck `{name}`: {e}"))
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_string()
    }
}

/// Runs many checks, collecting every failure (and panic) instead of stopping at the first.
#[derive(Default)]
pub struct Checks {
    failures: Vec<String>,
    count: usize,
}

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&mut self, name: &str, r: std::thread::Result<std::result::Result<(), String>>) {
        self.count += 1;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.failures.push(e),
            Err(p) => self.failures.push(format!("`{name}` panicked: {}", panic_message(p))),
        }
    }

    /// gradcheck only.
    pub fn first(&mut self, name: &str, f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) {
        let r = catch_unwind(AssertUnwindSafe(|| gradcheck(name, &f, inputs)));
        self.record(name, r);
    }

    /// gradcheck and gradgradcheck.
    pub fn both(&mut self, name: &str, f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) {
        let r = catch_unwind(AssertUnwindSafe(|| gradcheck(name, &f, inputs)));
        self.record(name, r);
        let r = catch_unwind(AssertUnwindSafe(|| gradgradcheck(name, &f, inputs)));
        self.record(name, r);
    }

    /// Any other assertion, as a closure returning a description of the failure.
    pub fn custom(&mut self, name: &str, check: impl FnOnce() -> std::result::Result<(), String>) {
        let r = catch_unwind(AssertUnwindSafe(check)).map(|r| r.map_err(|e| format!("`{name}`: {e}")));
        self.record(name, r);
    }

    /// Panics listing every failed check.
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} checks failed:\n  {}",
            self.failures.len(),
            self.count,
            self.failures.join("\n  ")
        );
        assert!(self.count > 0, "no checks ran");
    }
}

/// The gradients of `sum(f(x) * v)` with respect to every input (zeros for unused inputs),
/// as flat f64 vectors. `v` has `f(x)`'s shape.
pub fn vjp(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    v: &[f64],
) -> std::result::Result<Vec<Vec<f64>>, String> {
    let leaves: Vec<Tensor> = inputs.iter().map(|t| leaf(&values(t), &t.shape())).collect();
    let y = f(&leaves).map_err(|e| format!("forward failed: {e}"))?;
    let vt = t64(v, &y.shape());
    let l =
        reduce::sum(&arith::mul(&y, &vt).map_err(|e| e.to_string())?, None, false, None).map_err(|e| e.to_string())?;
    let grads =
        engine::grad(&[l], &[], &leaves, false, false, true).map_err(|e| format!("engine::grad failed: {e}"))?;
    let mut out = Vec::new();
    for (g, x) in grads.iter().zip(inputs) {
        match g {
            None => out.push(vec![0.0; x.numel()]),
            Some(g) => {
                if g.shape() != x.shape() {
                    return Err(format!(
                        "gradient shape {:?} != input shape {:?}",
                        g.shape().as_slice(),
                        x.shape().as_slice()
                    ));
                }
                out.push(values(g));
            }
        }
    }
    Ok(out)
}

/// Compares `vjp(f, inputs, v)` with `expected[i]` (closed forms), as a `Checks::custom` body.
pub fn closed_form(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    v: &[f64],
    expected: &[Vec<f64>],
) -> std::result::Result<(), String> {
    let got = vjp(f, inputs, v)?;
    let mut bad = Vec::new();
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        if g.len() != e.len() {
            bad.push(format!("input {i}: {} values, expected {}", g.len(), e.len()));
            continue;
        }
        for (j, (a, b)) in g.iter().zip(e).enumerate() {
            if !close(*a, *b) {
                bad.push(format!("input {i} element {j}: got {a:.10e}, closed form {b:.10e}"));
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join("; "))
    }
}
