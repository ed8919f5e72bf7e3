//! In-place ops on views (CopySlices / AsStrided regeneration), node hooks, and inference
//! mode, from the Rust API. Values are checked against closed forms.

use rustgrad_core::graph::Hook;
use rustgrad_core::inplace::apply_inplace;
use rustgrad_core::ops::{arith, fill, index, reduce};
use rustgrad_core::{engine, grad_mode, Error, Tensor};

fn leaf(values: &[f64]) -> Tensor {
    let t = Tensor::from_vec(values.to_vec(), &[values.len()]).unwrap();
    t.set_requires_grad(true).unwrap();
    t
}

fn ws(v: f64) -> Tensor {
    Tensor::wrapped_scalar(v)
}

fn backward(y: &Tensor) {
    let s = reduce::sum(y, None, false, None).unwrap();
    engine::backward(&[s], &[None], false, false, None).unwrap();
}

#[test]
fn in_place_on_a_slice_rewrites_the_base_history() {
    // b = 2x; b[1:3] *= 3; loss = sum(b * [0, 1, 2, 3]) → dx = 2 * [0, 3, 6, 3]
    let x = leaf(&[1.0, 2.0, 3.0, 4.0]);
    let b = arith::mul(&x, &ws(2.0)).unwrap();
    let v = index::slice(&b, 0, 1, 3, 1).unwrap();
    assert_eq!(v.grad_fn().unwrap().name(), "SliceBackward0");
    apply_inplace(&v, |t| arith::mul(t, &ws(3.0))).unwrap();
    assert_eq!(b.grad_fn().unwrap().name(), "torch::autograd::CopySlices");
    assert_eq!(v.grad_fn().unwrap().name(), "AsStridedBackward0");
    assert_eq!((b.version(), v.version()), (1, 1));
    assert_eq!(b.to_vec::<f64>(), vec![2.0, 12.0, 18.0, 8.0]);
    let weights = Tensor::from_vec(vec![0.0f64, 1.0, 2.0, 3.0], &[4]).unwrap();
    backward(&arith::mul(&b, &weights).unwrap());
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![0.0, 6.0, 12.0, 6.0]);
}

#[test]
fn writing_a_grad_value_into_a_plain_tensor_gives_it_a_history() {
    // a = zeros(3); a[1] = 3z → a requires grad, d sum(a)/dz = 3
    let z = leaf(&[2.0]);
    let a = Tensor::from_vec(vec![0.0f64; 3], &[3]).unwrap();
    let slot = index::select(&a, 0, 1).unwrap();
    let value = arith::mul(&z, &ws(3.0)).unwrap();
    let value = rustgrad_core::ops::view::view(&value, &[]).unwrap();
    apply_inplace(&slot, |t| fill::copied(t, &value)).unwrap();
    assert!(a.requires_grad());
    assert_eq!(a.to_vec::<f64>(), vec![0.0, 6.0, 0.0]);
    backward(&a);
    assert_eq!(z.grad().unwrap().to_vec::<f64>(), vec![3.0]);
}

#[test]
fn view_of_a_leaf_and_views_made_without_grad_refuse_in_place_ops() {
    let x = leaf(&[1.0, 2.0]);
    let v = index::slice(&x, 0, 0, 1, 1).unwrap();
    let err = apply_inplace(&v, |t| arith::mul(t, &ws(2.0))).unwrap_err();
    assert!(matches!(err, Error::ViewOfLeafInplace), "{err}");

    let y = arith::mul(&x, &ws(1.0)).unwrap();
    let w = {
        let _off = grad_mode::GradModeGuard::new(false);
        index::slice(&y, 0, 0, 1, 1).unwrap()
    };
    assert!(w.requires_grad() && w.grad_fn().is_none());
    let err = apply_inplace(&w, |t| arith::mul(t, &ws(2.0))).unwrap_err();
    assert!(matches!(err, Error::NoGradViewInplace), "{err}");
}

#[test]
fn node_hooks_replace_gradients_in_order() {
    // y = 3x; prehook adds 1 to dL/dy, post hook doubles dL/dx → dx = 2 * 3 * (1 + 1) = 12
    let x = leaf(&[5.0]);
    let y = arith::mul(&x, &ws(3.0)).unwrap();
    let node = y.grad_fn().unwrap();
    node.add_pre_hook(Hook::new(|g: &[Option<Tensor>]| {
        Ok(Some(vec![Some(arith::add(g[0].as_ref().unwrap(), &ws(1.0))?)]))
    }));
    node.add_post_hook(Hook::new(|inputs: &[Option<Tensor>], _outputs: &[Option<Tensor>]| {
        let doubled = inputs.iter().map(|g| g.as_ref().map(|g| arith::mul(g, &ws(2.0)).unwrap())).collect();
        Ok(Some(doubled))
    }));
    backward(&y);
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![12.0]);
}

#[test]
fn inference_tensors_are_not_recorded_nor_saved() {
    let x = leaf(&[1.0, 2.0]);
    let t = {
        let _inference = InferenceScope::new();
        let t = Tensor::from_vec(vec![3.0f64, 4.0], &[2]).unwrap();
        let y = arith::mul(&x, &t).unwrap();
        assert!(!y.requires_grad() && y.is_inference());
        t
    };
    assert!(t.is_inference());
    let err = arith::mul(&x, &t).unwrap_err();
    assert!(matches!(err, Error::InferenceSaved), "{err}");
    // add saves nothing: fine
    assert!(arith::add(&x, &t).unwrap().requires_grad());
    let err = apply_inplace(&t, |t| arith::add(t, &ws(1.0))).unwrap_err();
    assert!(matches!(err, Error::InferenceInplace), "{err}");
}

/// Inference mode for a scope (what the Python `inference_mode()` does).
struct InferenceScope {
    inference: bool,
    grad: bool,
}

impl InferenceScope {
    fn new() -> Self {
        InferenceScope { inference: grad_mode::set_inference_mode(true), grad: grad_mode::set_grad_enabled(false) }
    }
}

impl Drop for InferenceScope {
    fn drop(&mut self) {
        grad_mode::set_inference_mode(self.inference);
        grad_mode::set_grad_enabled(self.grad);
    }
}

#[test]
fn version_counters_are_shared_by_views_detach_and_dtype_views_but_not_by_dot_data() {
    // The counter lives in the storage unless a tensor needs one of its own (PyTorch's rules).
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[4]).unwrap();
    let v = index::slice(&x, 0, 1, 3, 1).unwrap();
    let d = x.detach();
    let bits = rustgrad_core::ops::view::view_dtype(&x, rustgrad_core::DType::I32).unwrap();
    let data = x.variable_data();
    let back = rustgrad_core::ops::view::view_dtype(&bits, rustgrad_core::DType::F32).unwrap();
    apply_inplace(&v, |t| arith::mul(t, &ws(2.0))).unwrap();
    assert_eq!((x.version(), v.version(), d.version(), bits.version()), (1, 1, 1, 1));
    assert_eq!(data.version(), 0, "`.data` has a counter of its own");
    apply_inplace(&data, |t| arith::add(t, &ws(1.0))).unwrap();
    assert_eq!((x.version(), data.version()), (1, 1));
    let one = Tensor::from_vec(vec![1i32], &[1]).unwrap();
    apply_inplace(&bits, |t| arith::mul(t, &one)).unwrap();
    assert_eq!((x.version(), d.version(), bits.version(), back.version()), (2, 2, 2, 2));
    assert_eq!(back.to_vec::<f32>(), x.to_vec::<f32>());
    assert_eq!(x.to_vec::<f32>(), vec![2.0, 5.0, 7.0, 5.0]);

    // `.data = other` keeps the tensor's version, and later writes count on it alone.
    let other = Tensor::from_vec(vec![9.0f32], &[1]).unwrap();
    d.set_data(&other).unwrap();
    assert_eq!((d.version(), other.version()), (2, 0));
    apply_inplace(&d, |t| arith::mul(t, &ws(2.0))).unwrap();
    assert_eq!((d.version(), other.version(), x.version()), (3, 0, 2));
    assert_eq!(other.to_vec::<f32>(), vec![18.0]);

    // `.data` shows the same buffer through a storage of its own: overlap is found by buffer.
    use rustgrad_core::inplace::{overlap, Overlap};
    let y = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4]).unwrap();
    let (head, tail) = (index::slice(&y.variable_data(), 0, 0, 3, 1).unwrap(), index::slice(&y, 0, 1, 4, 1).unwrap());
    assert!(matches!(overlap(&tail, &head), Overlap::Partial));
    assert!(matches!(overlap(&y, &y.variable_data()), Overlap::Full));
    let z = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4]).unwrap();
    assert!(matches!(overlap(&y, &z), Overlap::No));
}

#[test]
fn a_tensor_times_itself_gets_twice_its_value_once_and_its_second_derivative() {
    // y = sum(x * x): dy/dx = 2x (MulBackward computes g*x once for both edges, which the engine
    // sums), d2y/dx2 = 2.
    let x = leaf(&[0.5, -1.5, 3.0]);
    backward(&arith::mul(&x, &x).unwrap());
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![1.0, -3.0, 6.0]);

    // A non-leaf squared, through `autograd.grad` with a graph for the second derivative.
    let z = leaf(&[2.0]);
    let h = arith::mul(&z, &ws(3.0)).unwrap(); // h = 3z
    let y = reduce::sum(&arith::mul(&h, &h).unwrap(), None, false, None).unwrap(); // 9 z^2
    let dy = engine::grad(&[y], &[None], std::slice::from_ref(&z), true, true, false).unwrap()[0].clone().unwrap();
    assert_eq!(dy.to_vec::<f64>(), vec![36.0]); // 18 z
    let d2y = engine::grad(&[dy], &[None], std::slice::from_ref(&z), false, false, false).unwrap()[0].clone().unwrap();
    assert_eq!(d2y.to_vec::<f64>(), vec![18.0]);
    assert!(z.grad().is_none());
}
