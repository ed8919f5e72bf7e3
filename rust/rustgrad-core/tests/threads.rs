//! Thread safety: grad mode is per thread, independent graphs on many threads, and several
//! threads accumulating into one shared leaf.

use rustgrad_core::ops::{arith, reduce, unary};
use rustgrad_core::{engine, is_grad_enabled, GradModeGuard, Tensor};
use std::sync::{Arc, Barrier};
use std::thread;

fn leaf(values: Vec<f64>, shape: &[usize]) -> Tensor {
    let t = Tensor::from_vec(values, shape).unwrap();
    t.set_requires_grad(true).unwrap();
    t
}

fn ws(v: f64) -> Tensor {
    Tensor::wrapped_scalar(v)
}

#[test]
fn grad_mode_is_per_thread() {
    let x = leaf(vec![1.0, 2.0], &[2]);
    // both threads hold their state at the same time: A has grad mode off, B has it on
    let barrier = Arc::new(Barrier::new(2));
    let (xa, ba) = (x.clone(), barrier.clone());
    let a = thread::spawn(move || {
        let _no_grad = GradModeGuard::new(false);
        ba.wait(); // A has turned grad mode off
        ba.wait(); // B has checked its own mode and recorded an op
        let y = arith::mul(&xa, &xa).unwrap();
        (is_grad_enabled(), y.requires_grad(), y.grad_fn().is_some())
    });
    let (xb, bb) = (x.clone(), barrier.clone());
    let b = thread::spawn(move || {
        bb.wait();
        let enabled = is_grad_enabled();
        let y = arith::mul(&xb, &xb).unwrap();
        let recorded = y.requires_grad() && y.grad_fn().is_some();
        bb.wait();
        // turning grad mode off here must not turn it back on in A (or change this test thread)
        let _no_grad = GradModeGuard::new(false);
        (enabled, recorded)
    });
    let (a_enabled, a_requires, a_recorded) = a.join().unwrap();
    let (b_enabled, b_recorded) = b.join().unwrap();
    assert!(!a_enabled, "thread A turned grad mode off");
    assert!(!a_requires && !a_recorded, "an op under no_grad in thread A must not be recorded");
    assert!(b_enabled, "thread B's grad mode must stay on while thread A's is off");
    assert!(b_recorded, "thread B must record its ops while thread A is in no_grad");
    assert!(is_grad_enabled(), "the test thread's mode is untouched");

    // and the other way round: off on this thread, a new thread starts with grad mode on
    let _no_grad = GradModeGuard::new(false);
    let x2 = x.clone();
    let recorded = thread::spawn(move || {
        let y = unary::exp(&x2).unwrap();
        is_grad_enabled() && y.grad_fn().is_some()
    })
    .join()
    .unwrap();
    assert!(recorded, "a new thread starts with grad mode on whatever its parent's mode");
    assert!(!is_grad_enabled());
}

/// f(x) = sum(k x^2 + sin(x) * x), df/dx = 2 k x + cos(x) x + sin(x)
fn independent_graph(k: f64, values: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let x = leaf(values.to_vec(), &[values.len()]);
    let sq = arith::mul(&arith::mul(&x, &x).unwrap(), &ws(k)).unwrap();
    let s = arith::mul(&unary::sin(&x).unwrap(), &x).unwrap();
    let y = reduce::sum(&arith::add(&sq, &s).unwrap(), None, false, None).unwrap();
    engine::backward(&[y], &[], false, false, None).unwrap();
    let got = x.grad().unwrap().to_vec::<f64>();
    let expected = values.iter().map(|&v| 2.0 * k * v + v.cos() * v + v.sin()).collect();
    (got, expected)
}

#[test]
fn independent_graphs_on_eight_threads() {
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                let mut failures = Vec::new();
                for iter in 0..200 {
                    let k = t as f64 + 1.0;
                    let values: Vec<f64> = (0..16).map(|i| ((t * 31 + iter * 7 + i) % 23) as f64 / 7.0 - 1.5).collect();
                    let (got, expected) = independent_graph(k, &values);
                    for (g, e) in got.iter().zip(&expected) {
                        if (g - e).abs() > 1e-12 * (1.0 + e.abs()) {
                            failures.push(format!("thread {t} iteration {iter}: got {g}, expected {e}"));
                        }
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = handles.into_iter().flat_map(|h| h.join().expect("thread panicked")).collect();
    assert!(failures.is_empty(), "{} wrong gradients, first: {:?}", failures.len(), &failures[..failures.len().min(5)]);
}

/// Threads x iterations backward passes into one leaf: `.grad` must be the sum of all of them.
#[test]
fn shared_leaf_accumulates_every_contribution() {
    const THREADS: usize = 4;
    const ITERS: usize = 200;
    // large enough that the read-add-write of `.grad` takes long and passes overlap
    const SIZE: usize = 1 << 16;
    let w = leaf((0..SIZE).map(|i| i as f64 / SIZE as f64).collect(), &[SIZE]);
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (w, barrier) = (w.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..ITERS {
                    // d sum(w * (t + 1))/dw = t + 1
                    let y = reduce::sum(&arith::mul(&w, &ws(t as f64 + 1.0)).unwrap(), None, false, None).unwrap();
                    engine::backward(&[y], &[], false, false, None).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread panicked");
    }
    // every contribution is an integer, so the expected sum is exact in f64
    let expected = (ITERS * (1..=THREADS).sum::<usize>()) as f64;
    let got = w.grad().expect("w.grad is set").to_vec::<f64>();
    let wrong: Vec<(usize, f64)> = got.iter().copied().enumerate().filter(|&(_, g)| g != expected).collect();
    assert!(
        wrong.is_empty(),
        "lost updates: {THREADS} threads x {ITERS} backward passes into one leaf should give {expected} everywhere, \
         {} of {SIZE} elements differ, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

/// A graph shared by several threads (PyTorch allows concurrent backward through a shared
/// graph with retain_graph=True): every thread's pass reaches the leaf.
#[test]
fn concurrent_backward_through_a_shared_graph() {
    const THREADS: usize = 4;
    const ITERS: usize = 200;
    const SIZE: usize = 1 << 14;
    let xs: Vec<f64> = (0..SIZE).map(|i| (i % 97) as f64 / 97.0 - 0.5).collect();
    let x = leaf(xs.clone(), &[SIZE]);
    // shared part: h = exp(x) * x; d sum(h)/dx = exp(x) (1 + x)
    let h = arith::mul(&unary::exp(&x).unwrap(), &x).unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (h, barrier) = (h.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..ITERS {
                    let y = reduce::sum(&h, None, false, None).unwrap();
                    engine::backward(&[y], &[], true, false, None).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread panicked");
    }
    let n = (THREADS * ITERS) as f64;
    let got = x.grad().expect("x.grad is set").to_vec::<f64>();
    let wrong = xs
        .iter()
        .zip(&got)
        .filter(|&(v, g)| (g - n * v.exp() * (1.0 + v)).abs() > 1e-9 * (1.0 + (n * v.exp() * (1.0 + v)).abs()))
        .count();
    assert_eq!(
        wrong, 0,
        "shared graph: {wrong} of {SIZE} gradient elements differ from n exp(x) (1 + x) (lost updates?)"
    );
}

/// engine::grad on many threads over one shared leaf returns each thread's own gradient and
/// leaves `.grad` alone.
#[test]
fn concurrent_autograd_grad_on_a_shared_leaf() {
    let x = leaf(vec![1.0, 2.0, 3.0], &[3]);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let x = x.clone();
            thread::spawn(move || {
                let k = t as f64 + 1.0;
                let mut worst = 0.0f64;
                for _ in 0..100 {
                    // d sum(k x^3)/dx = 3 k x^2
                    let y = reduce::sum(
                        &arith::mul(
                            &rustgrad_core::ops::pow::pow_scalar(&x, rustgrad_core::Scalar::Int(3)).unwrap(),
                            &ws(k),
                        )
                        .unwrap(),
                        None,
                        false,
                        None,
                    )
                    .unwrap();
                    let g = engine::grad(&[y], &[], std::slice::from_ref(&x), false, false, false).unwrap();
                    let g = g[0].as_ref().unwrap().to_vec::<f64>();
                    for (gi, xi) in g.iter().zip([1.0, 2.0, 3.0]) {
                        worst = worst.max((gi - 3.0 * k * xi * xi).abs());
                    }
                }
                worst
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let worst = h.join().expect("thread panicked");
        assert!(worst <= 1e-12, "thread {t}: gradient off by {worst}");
    }
    assert!(x.grad().is_none(), "engine::grad must not accumulate into .grad");
}

#[test]
fn kernels_split_across_threads_give_the_bits_of_one_thread() {
    // Large enough for the parallel paths (2^15 elements and more): each row sum must equal
    // the sum of that row alone, and each element of a map the value of that element alone.
    let (rows, cols) = (2000usize, 300usize);
    let values: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919) % 1013) as f32 * 0.013 - 6.1).collect();
    let x = Tensor::from_vec(values.clone(), &[rows, cols]).unwrap();
    let row_sums = reduce::sum_dims(&x, &[1], false, None).unwrap().to_vec::<f32>();
    for (r, got) in row_sums.iter().enumerate() {
        let row = Tensor::from_vec(values[r * cols..(r + 1) * cols].to_vec(), &[cols]).unwrap();
        let alone = reduce::sum_dims(&row, &[0], false, None).unwrap().to_vec::<f32>()[0];
        assert_eq!(got.to_bits(), alone.to_bits(), "row {r}");
    }
    let tanh = unary::tanh(&x).unwrap().to_vec::<f32>();
    for i in (0..values.len()).step_by(997) {
        let one = Tensor::from_vec(vec![values[i]], &[1]).unwrap();
        assert_eq!(tanh[i].to_bits(), unary::tanh(&one).unwrap().to_vec::<f32>()[0].to_bits(), "tanh at {i}");
    }
}

#[test]
fn a_convolution_weight_gradient_has_the_same_bits_on_every_call() {
    // Samples are summed in runs per thread, and the runs in order: no work-stealing grouping.
    use rustgrad_core::ops::conv::{convolution, ConvParams};
    let n = 64 * 14 * 14;
    let values: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 3.0).collect();
    let x = Tensor::from_vec(values, &[64, 1, 14, 14]).unwrap();
    let w =
        Tensor::from_vec((0..16 * 9).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<f32>>(), &[16, 1, 3, 3]).unwrap();
    w.set_requires_grad(true).unwrap();
    let params = ConvParams {
        stride: vec![2, 2],
        padding: vec![1, 1],
        dilation: vec![1, 1],
        transposed: false,
        output_padding: vec![0, 0],
        groups: 1,
    };
    let weight_grad = || {
        w.set_grad(None).unwrap();
        let y = convolution(&x, &w, None, &params).unwrap();
        let s = reduce::sum(&arith::mul(&y, &y).unwrap(), None, false, None).unwrap();
        engine::backward(&[s], &[None], false, false, None).unwrap();
        w.grad().unwrap().to_vec::<f32>().iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
    };
    let first = weight_grad();
    for _ in 0..40 {
        assert_eq!(weight_grad(), first);
    }
}
