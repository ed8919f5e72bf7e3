//! The float32 exp, tanh and sigmoid kernels (polynomials with fused products, not libm) stay
//! within 1, 1 and 2 ulp of the correctly rounded value over their whole useful range, and
//! keep the sign of zero, NaN and the limits at infinity.

use rustgrad_core::ops::unary;
use rustgrad_core::{Result, Tensor};

type Kernel = fn(&Tensor) -> Result<Tensor>;

fn worst_ulp(kernel: Kernel, exact: fn(f64) -> f64, xs: &[f32]) -> (i64, f32) {
    let t = Tensor::from_vec(xs.to_vec(), &[xs.len()]).unwrap();
    let got = kernel(&t).unwrap().to_vec::<f32>();
    let mut worst = (0, 0.0);
    for (&x, &y) in xs.iter().zip(&got) {
        let want = exact(x as f64) as f32;
        let ulps = (want.to_bits() as i64 - y.to_bits() as i64).abs();
        if ulps > worst.0 {
            worst = (ulps, x);
        }
    }
    worst
}

#[test]
fn exp_tanh_sigmoid_are_within_two_ulp() {
    let n = 2_000_000;
    // a dense sweep of [-110, 90] (both exp limits, tanh's saturation) and of [0, 1) near zero
    let xs: Vec<f32> = (0..n)
        .map(|i| -110.0 + 200.0 * i as f32 / n as f32)
        .chain((0..200_000).map(|i| i as f32 * 5e-6))
        .chain((0..200_000).map(|i| -(i as f32) * 5e-6))
        .collect();
    let cases: [(&str, Kernel, fn(f64) -> f64, i64); 3] = [
        ("exp", unary::exp, f64::exp, 1),
        ("tanh", unary::tanh, f64::tanh, 1),
        // below -88.72 exp(-x) overflows and sigmoid is 0, as in PyTorch
        ("sigmoid", unary::sigmoid, |x| if x < -88.72284 { 0.0 } else { 1.0 / (1.0 + (-x).exp()) }, 2),
    ];
    for (name, kernel, exact, bound) in cases {
        let (ulps, at) = worst_ulp(kernel, exact, &xs);
        assert!(ulps <= bound, "{name}: {ulps} ulp at x = {at}");
    }
    for (name, kernel) in [("exp", unary::exp as Kernel), ("tanh", unary::tanh), ("sigmoid", unary::sigmoid)] {
        let special = Tensor::from_vec(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY], &[3]).unwrap();
        let out = kernel(&special).unwrap().to_vec::<f32>();
        assert!(out[0].is_nan(), "{name}(nan)");
        let want: [f32; 2] = match name {
            "exp" => [f32::INFINITY, 0.0],
            "tanh" => [1.0, -1.0],
            _ => [1.0, 0.0],
        };
        assert_eq!(&out[1..], &want, "{name}(+-inf)");
    }
}
