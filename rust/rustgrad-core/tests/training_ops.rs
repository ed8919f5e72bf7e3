//! gradcheck and gradgradcheck of the ops added for training (indexing with tensors, joins and
//! splits, clamp/maximum/masked_fill, softmax family, moments, gather/scatter, the fused losses),
//! plus closed forms of the ones whose values are easy to state.

mod common;

use common::{assert_close, away, positive, t64, uniform, values, Checks};
use rustgrad_core::ops::elementwise::{self, ClampKind};
use rustgrad_core::ops::join::{self, SplitKind};
use rustgrad_core::ops::loss::{self, Reduction};
use rustgrad_core::ops::{arith, gather, linalg, moments, reduce, softmax};
use rustgrad_core::{engine, Tensor};

fn long(values: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

fn mask(values: &[bool], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

#[test]
fn indexing_with_tensors() {
    let mut c = Checks::new();
    let rows = long(&[2, 0, 2, 1], &[4]);
    c.both("x[rows] (repeats)", |x: &[Tensor]| gather::index(&x[0], &[Some(rows.clone())]), &[uniform(&[3, 4], 1)]);
    let (i, j) = (long(&[0, 2], &[2, 1]), long(&[1, 3, 0], &[3]));
    c.both(
        "x[i, j] broadcast",
        |x: &[Tensor]| gather::index(&x[0], &[Some(i.clone()), Some(j.clone())]),
        &[uniform(&[3, 4], 2)],
    );
    let k = long(&[1, 0], &[2]);
    c.both(
        "x[i, :, k] non-adjacent",
        |x: &[Tensor]| gather::index(&x[0], &[Some(k.clone()), None, Some(k.clone())]),
        &[uniform(&[2, 3, 2], 3)],
    );
    let m = mask(&[true, false, true, true, false, true], &[2, 3]);
    c.both("x[mask]", |x: &[Tensor]| gather::index(&x[0], &[Some(m.clone())]), &[uniform(&[2, 3, 2], 4)]);
    c.both(
        "index_put accumulate",
        |x: &[Tensor]| gather::index_put(&x[0], &[Some(rows.clone())], &x[1], true),
        &[uniform(&[3, 2], 5), uniform(&[4, 2], 6)],
    );
    c.both(
        "index_put broadcast value",
        |x: &[Tensor]| gather::index_put(&x[0], &[None, Some(long(&[0, 2], &[2]))], &x[1], false),
        &[uniform(&[3, 4], 7), uniform(&[1], 8)],
    );
    c.finish();
}

#[test]
fn repeated_indices_accumulate() {
    // d sum(x[[2, 0, 2]]) / dx = [1, 0, 2]
    let x = common::leaf(&[1.0, 2.0, 3.0], &[3]);
    let picked = gather::index(&x, &[Some(long(&[2, 0, 2], &[3]))]).unwrap();
    assert_close("picked", &values(&picked), &[3.0, 1.0, 3.0]);
    engine::backward(&[reduce::sum(&picked, None, false, None).unwrap()], &[None], false, false, None).unwrap();
    assert_close("grad", &values(&x.grad().unwrap()), &[1.0, 0.0, 2.0]);
}

#[test]
fn joins_and_splits() {
    let mut c = Checks::new();
    c.both("cat dim 1", |x: &[Tensor]| join::cat(&x[..2], 1), &[uniform(&[2, 3], 10), uniform(&[2, 1], 11)]);
    c.both("stack dim -1", |x: &[Tensor]| join::stack(&x[..2], -1), &[uniform(&[2, 3], 12), uniform(&[2, 3], 13)]);
    c.both(
        "split [1, 3] then mix",
        |x: &[Tensor]| {
            let parts = join::split(&x[0], &[1, 3], 1, SplitKind::Sizes)?;
            arith::mul(&reduce::sum(&parts[0], None, false, None)?, &parts[1])
        },
        &[uniform(&[2, 4], 14)],
    );
    c.both(
        "unbind, one piece unused",
        |x: &[Tensor]| {
            let rows = join::unbind(&x[0], 0)?;
            arith::mul(&rows[0], &rows[2])
        },
        &[uniform(&[3, 2], 15)],
    );
    c.both("repeat [2, 1, 3]", |x: &[Tensor]| join::repeat(&x[0], &[2, 1, 3]), &[uniform(&[2, 2], 16)]);
    c.finish();
}

#[test]
fn elementwise_and_softmax_family() {
    let mut c = Checks::new();
    c.both(
        "clamp",
        |x: &[Tensor]| elementwise::clamp(&x[0], Some(-0.3), Some(0.4), ClampKind::Clamp),
        &[away(&[3, 3], 20)],
    );
    c.both(
        "maximum bcast",
        |x: &[Tensor]| elementwise::extremum(&x[0], &x[1], true),
        &[uniform(&[2, 3], 21), uniform(&[3], 22)],
    );
    c.both(
        "minimum",
        |x: &[Tensor]| elementwise::extremum(&x[0], &x[1], false),
        &[uniform(&[4], 23), uniform(&[4], 24)],
    );
    let m = mask(&[true, false, false], &[3]);
    c.both("masked_fill", |x: &[Tensor]| elementwise::masked_fill(&x[0], &m, 2.0), &[uniform(&[2, 3], 25)]);
    c.both("gelu", |x: &[Tensor]| elementwise::gelu(&x[0], false), &[uniform(&[5], 26)]);
    c.both("gelu tanh", |x: &[Tensor]| elementwise::gelu(&x[0], true), &[uniform(&[5], 27)]);
    c.both("softmax", |x: &[Tensor]| softmax::softmax(&x[0], 1), &[uniform(&[2, 4], 28)]);
    c.both("log_softmax", |x: &[Tensor]| softmax::log_softmax(&x[0], 0), &[uniform(&[3, 2], 29)]);
    c.both("logsumexp", |x: &[Tensor]| softmax::logsumexp(&x[0], &[0, 2], false), &[uniform(&[2, 3, 2], 30)]);
    c.finish();
}

#[test]
fn moments_and_gather() {
    let mut c = Checks::new();
    c.both("var dim", |x: &[Tensor]| moments::var(&x[0], Some(&[1]), 1.0, false, false), &[uniform(&[3, 4], 40)]);
    c.both("std all", |x: &[Tensor]| moments::var(&x[0], None, 0.0, false, true), &[uniform(&[3, 4], 41)]);
    c.both("prod all", |x: &[Tensor]| moments::prod(&x[0], None, false, None), &[positive(&[2, 3], 42)]);
    c.both("prod dim keepdim", |x: &[Tensor]| moments::prod(&x[0], Some(0), true, None), &[uniform(&[3, 2], 43)]);
    c.both(
        "prod through a zero",
        |x: &[Tensor]| moments::prod(&x[0], None, false, None),
        &[t64(&[0.0, 2.0, -1.5, 0.5], &[4])],
    );
    c.both("cumsum", |x: &[Tensor]| moments::cumsum(&x[0], 1, None, false), &[uniform(&[2, 4], 44)]);
    let idx = long(&[0, 2, 2, 1, 0, 0], &[2, 3]);
    c.both("gather", |x: &[Tensor]| gather::gather(&x[0], 1, &idx), &[uniform(&[2, 3], 45)]);
    c.both(
        "scatter_add",
        |x: &[Tensor]| gather::scatter(&x[0], 1, &idx, &x[1], true),
        &[uniform(&[2, 3], 46), uniform(&[2, 3], 47)],
    );
    c.both(
        "addmm",
        |x: &[Tensor]| linalg::addmm(&x[0], &x[1], &x[2]),
        &[uniform(&[3], 48), uniform(&[2, 4], 49), uniform(&[4, 3], 50)],
    );
    c.finish();
}

#[test]
fn losses() {
    let mut c = Checks::new();
    c.both(
        "mse mean",
        |x: &[Tensor]| loss::mse_loss(&x[0], &x[1], Reduction::Mean),
        &[uniform(&[2, 3], 60), uniform(&[2, 3], 61)],
    );
    let target = long(&[2, -100, 0], &[3]);
    let weight = t64(&[0.5, 1.0, 2.0], &[3]);
    c.both(
        "nll weight ignore_index",
        |x: &[Tensor]| loss::nll_loss(&x[0], &target, Some(&weight), Reduction::Mean, -100, false),
        &[uniform(&[3, 3], 62)],
    );
    c.both(
        "nll none",
        |x: &[Tensor]| loss::nll_loss(&x[0], &long(&[1, 0], &[2]), None, Reduction::None, -100, false),
        &[uniform(&[2, 3], 63)],
    );
    let p = t64(&[0.2, 0.7, 0.9, 0.4], &[4]);
    c.both(
        "bce",
        |x: &[Tensor]| loss::binary_cross_entropy(&x[0], &x[1], None, Reduction::Sum),
        // targets inside (0, 1), as BCE requires
        &[p.clone(), t64(&[0.3, 0.6, 0.1, 0.8], &[4])],
    );
    let pw = t64(&[2.0, 0.5, 1.0, 3.0], &[4]);
    c.both(
        "bce with logits, pos_weight",
        |x: &[Tensor]| loss::binary_cross_entropy_with_logits(&x[0], &x[1], None, Some(&pw), Reduction::Mean),
        &[uniform(&[4], 65), p],
    );
    c.finish();
}

#[test]
fn loss_closed_forms() {
    // nll of log-probabilities [[ln .2, ln .8]], target 1: -ln .8
    let x = t64(&[0.2f64.ln(), 0.8f64.ln()], &[1, 2]);
    let l = loss::nll_loss(&x, &long(&[1], &[1]), None, Reduction::Mean, -100, false).unwrap();
    assert_close("nll", &values(&l), &[-(0.8f64.ln())]);
    // softmax([0, ln 3]) = [1/4, 3/4]
    let s = softmax::softmax(&t64(&[0.0, 3f64.ln()], &[2]), 0).unwrap();
    assert_close("softmax", &values(&s), &[0.25, 0.75]);
    // var([1, 2, 3, 4]) = 5/3 (unbiased), std = sqrt(5/4) (biased)
    let v = moments::var(&t64(&[1.0, 2.0, 3.0, 4.0], &[4]), None, 1.0, false, false).unwrap();
    assert_close("var", &values(&v), &[5.0 / 3.0]);
    let s = moments::var(&t64(&[1.0, 2.0, 3.0, 4.0], &[4]), None, 0.0, false, true).unwrap();
    assert_close("std", &values(&s), &[1.25f64.sqrt()]);
}
