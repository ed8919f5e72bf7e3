//! Graphs a million nodes deep: backward and freeing must not recurse (the test thread has the
//! default 2 MiB stack), and every node must be freed once the tensors holding it are dropped.
//!
//! `graph::live_nodes()` is process-global and the tests of one file run in parallel threads,
//! so every scenario that counts nodes runs serially inside the one test of this file.

use rustgrad_core::ops::{arith, view};
use rustgrad_core::{engine, graph, Tensor};

const N: usize = 1_000_000;

fn ws(v: f64) -> Tensor {
    Tensor::wrapped_scalar(v)
}

/// Builds a chain of `N` ops on a 1-element tensor: cycles of
/// `y * c`, `y + s`, `unsqueeze(y, 0)` (shape [1, 1]), `view(y, [1])` (shape [1]).
/// With `K = N / 4` cycles, `y = c^K x + s (c^(K-1) + ... + 1)` and `dy/dx = c^K`.
fn chain(x: &Tensor, c: f64, s: f64) -> Tensor {
    let (ct, st) = (ws(c), ws(s));
    let mut y = x.clone();
    for _ in 0..N / 4 {
        y = arith::mul(&y, &ct).expect("mul");
        y = arith::add(&y, &st).expect("add");
        y = view::unsqueeze(&y, 0).expect("unsqueeze");
        y = view::view(&y, &[1]).expect("view");
    }
    y
}

#[test]
fn million_node_chains_backprop_and_free() {
    let before = graph::live_nodes();
    let (c, s) = (1.0 + 4e-6, 1e-3);
    let k = (N / 4) as i32;

    // 1. backward through the chain; the gradient is c^K
    {
        let x = Tensor::from_vec(vec![0.75f64], &[1]).unwrap();
        x.set_requires_grad(true).unwrap();
        let y = chain(&x, c, s);
        assert!(
            graph::live_nodes() >= before + N,
            "the chain should hold at least {N} nodes, live_nodes went from {before} to {}",
            graph::live_nodes()
        );
        // forward value: the same recurrence in plain f64
        let mut expected_y = 0.75f64;
        for _ in 0..N / 4 {
            expected_y = expected_y * c + s;
        }
        let got_y = y.get_f64(0);
        assert!((got_y - expected_y).abs() <= 1e-12 * expected_y.abs(), "forward {got_y} vs {expected_y}");

        let loss = arith::mul(&y, &ws(2.0)).unwrap();
        engine::backward(&[loss], &[], false, false, None).expect("backward through a million nodes");
        let g = x.grad().expect("x.grad is set").get_f64(0);
        // d(2 y)/dx = 2 c^K
        let expected = 2.0 * c.powi(k);
        assert!((g - expected).abs() <= 1e-9 * expected, "gradient {g}, closed form 2 c^K = {expected}");

        // the same chain through engine::grad, whose result is not accumulated
        drop(y);
        let y = chain(&x, c, s);
        let gs = engine::grad(&[y], &[], std::slice::from_ref(&x), false, false, false).expect("grad");
        let g2 = gs[0].as_ref().expect("used").get_f64(0);
        assert!(
            (g2 - expected / 2.0).abs() <= 1e-9 * expected,
            "engine::grad {g2}, closed form c^K = {}",
            expected / 2.0
        );
        assert_eq!(x.grad().unwrap().get_f64(0), g, "engine::grad must not touch x.grad");
    }
    assert_eq!(graph::live_nodes(), before, "nodes left alive after backward and dropping every tensor");

    // 2. a million-node graph dropped without backward
    {
        let x = Tensor::from_vec(vec![1.5f64], &[1]).unwrap();
        x.set_requires_grad(true).unwrap();
        let y = chain(&x, c, s);
        assert!(graph::live_nodes() >= before + N);
        drop(x);
        // the chain keeps the leaf's accumulator alive, the leaf is only held by it now
        assert!(graph::live_nodes() >= before + N);
        drop(y);
    }
    assert_eq!(graph::live_nodes(), before, "nodes left alive after dropping an unused graph");

    // 3. a graph kept by an intermediate tensor only: dropping the output frees the tail,
    //    dropping the intermediate frees the rest
    {
        let x = Tensor::from_vec(vec![1.0f64], &[1]).unwrap();
        x.set_requires_grad(true).unwrap();
        let mid = chain(&x, c, s);
        let mid_nodes = graph::live_nodes() - before;
        let y = chain(&mid, c, s);
        assert!(graph::live_nodes() >= before + mid_nodes + N);
        drop(y);
        assert_eq!(graph::live_nodes(), before + mid_nodes, "dropping the output frees exactly its own part");
        drop(mid);
        drop(x);
    }
    assert_eq!(graph::live_nodes(), before, "nodes left alive after dropping a graph in two steps");
}
