//! The live-node and saved-bytes counts are kept per thread and summed: a graph built on one
//! thread and freed on another, or by a thread that has ended, still leaves them exact.
//! (One test in its own binary: no other test creates nodes meanwhile.)

use rustgrad_core::autograd::saved_bytes;
use rustgrad_core::graph::live_nodes;
use rustgrad_core::ops::arith;
use rustgrad_core::Tensor;
use std::thread;

#[test]
fn counts_are_exact_across_threads() {
    let (nodes0, bytes0) = (live_nodes(), saved_bytes());
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    x.set_requires_grad(true).unwrap();
    // Built on a thread that then ends: x*x saves x twice (12 bytes each), plus an accumulator.
    let y = {
        let x = x.clone();
        thread::spawn(move || arith::mul(&x, &x).unwrap()).join().unwrap()
    };
    assert_eq!(live_nodes(), nodes0 + 2);
    assert_eq!(saved_bytes(), bytes0 + 24);
    // Freed on another thread.
    thread::spawn(move || drop(y)).join().unwrap();
    assert_eq!((live_nodes(), saved_bytes()), (nodes0, bytes0));
}
