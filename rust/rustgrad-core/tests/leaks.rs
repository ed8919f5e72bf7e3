//! Graphs that must free themselves: no reference cycle through saved tensors, and hooks that
//! tell a binding's collector what they own (issue 11).

use rustgrad_core::graph::{visit_owned, GradHook, Hook};
use rustgrad_core::inplace::apply_inplace;
use rustgrad_core::ops::{arith, reduce, view};
use rustgrad_core::{engine, Error, Tensor};

fn leaf(values: &[f64]) -> Tensor {
    let t = Tensor::from_vec(values.to_vec(), &[values.len()]).unwrap();
    t.set_requires_grad(true).unwrap();
    t
}

#[test]
fn inplace_op_with_its_target_as_operand_leaves_no_cycle() {
    // y.mul_(y): MulBackward saves y, then becomes y's grad_fn. Once y is dropped, nothing
    // may keep y (or its graph) alive.
    let a = leaf(&[1.0, 2.0]);
    let y = arith::mul(&a, &Tensor::wrapped_scalar(1.0)).unwrap();
    apply_inplace(&y, |s| arith::mul(s, &y)).unwrap();
    let node = y.grad_fn().unwrap().downgrade();
    let weak_y = y.downgrade();
    // Backward still refuses: the saved operand was overwritten (as in PyTorch).
    let s = reduce::sum(&y, None, false, None).unwrap();
    let err = engine::backward(std::slice::from_ref(&s), &[None], false, false, None).unwrap_err();
    assert!(matches!(err, Error::ModifiedInplace { .. }), "{err}");
    assert!(err.to_string().contains("which is output 0 of Mul, is at version 1; expected version 0"), "{err}");
    drop((s, y));
    assert!(weak_y.upgrade().is_none(), "the in-place target is kept alive by its own grad_fn");
    assert!(node.upgrade().is_none(), "the in-place node is kept alive");
}

#[test]
fn inplace_op_that_saves_an_operand_other_than_its_target_still_differentiates() {
    // y = 1·a; y.mul_(b) → d(sum y)/da = b, d/db = a
    let a = leaf(&[1.0, 2.0]);
    let b = leaf(&[3.0, 5.0]);
    let y = arith::mul(&a, &Tensor::wrapped_scalar(1.0)).unwrap();
    apply_inplace(&y, |s| arith::mul(s, &b)).unwrap();
    let s = reduce::sum(&y, None, false, None).unwrap();
    engine::backward(&[s], &[None], false, false, None).unwrap();
    assert_eq!(a.grad().unwrap().to_vec::<f64>(), vec![3.0, 5.0]);
    assert_eq!(b.grad().unwrap().to_vec::<f64>(), vec![1.0, 2.0]);
}

#[test]
fn hooks_report_what_they_own_only_while_unshared() {
    let owning: GradHook = Hook::owning(0x1234, |_: &Tensor| Ok(None));
    let plain: GradHook = Hook::new(|_: &Tensor| Ok(None));
    let hooks = [owning.clone(), plain];
    let collect = |hooks: &[GradHook]| {
        let mut seen = Vec::new();
        visit_owned(hooks.iter(), &mut |addr: usize| -> Result<(), ()> {
            seen.push(addr);
            Ok(())
        })
        .unwrap();
        seen
    };
    // `owning` is shared with the local clone: not reported.
    assert!(collect(&hooks).is_empty());
    drop(owning);
    let seen = collect(&hooks);
    assert_eq!(seen, vec![0x1234]);
}

#[test]
fn inplace_op_on_a_view_with_its_base_as_operand_leaves_no_cycle_and_does_not_hang() {
    // v = b.view(2); v.mul_(b): b's history becomes CopySlices over the Mul node that saved b.
    // Backward refuses (b was overwritten) naming CopySlices, without locking the running node.
    let a = leaf(&[1.0, 2.0]);
    let b = arith::mul(&a, &Tensor::wrapped_scalar(1.0)).unwrap();
    let v = view::view(&b, &[2]).unwrap();
    apply_inplace(&v, |s| arith::mul(s, &b)).unwrap();
    let weak_b = b.downgrade();
    let node = b.grad_fn().unwrap().downgrade();
    let s = reduce::sum(&b, None, false, None).unwrap();
    let err = engine::backward(std::slice::from_ref(&s), &[None], false, false, None).unwrap_err();
    assert!(err.to_string().contains("which is output 0 of torch::autograd::CopySlices, is at version 1"), "{err}");
    drop((s, v, b));
    assert!(weak_b.upgrade().is_none(), "the base is kept alive through its own history");
    assert!(node.upgrade().is_none(), "the CopySlices node is kept alive");
}
