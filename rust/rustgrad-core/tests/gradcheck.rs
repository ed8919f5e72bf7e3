//! gradcheck and gradgradcheck of every differentiable op of the core, on float64 inputs,
//! including broadcasting and non-contiguous inputs, plus closed-form checks of the
//! derivatives (each closed form is written in a comment next to its check).

mod common;

use common::{away, closed_form, positive, t64, uniform, values, Checks};
use rustgrad_core::engine;
use rustgrad_core::ops::{arith, compare, linalg, pow, reduce, unary, view};
use rustgrad_core::{DType, Result, Scalar, Tensor};

fn ws(v: f64) -> Tensor {
    Tensor::wrapped_scalar(v)
}

/// Sums a row-major [rows, cols] buffer over its rows (the gradient of a broadcast [cols]).
fn col_sums(v: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols).map(|j| (0..rows).map(|i| v[i * cols + j]).sum()).collect()
}

/// Sums a row-major [rows, cols] buffer over its columns (the gradient of a broadcast [rows, 1]).
fn row_sums(v: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..rows).map(|i| v[i * cols..(i + 1) * cols].iter().sum()).collect()
}

/// Row-major [n, m] x [m, p] product of plain buffers.
fn matmul_ref(a: &[f64], b: &[f64], n: usize, m: usize, p: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * p];
    for i in 0..n {
        for k in 0..m {
            for j in 0..p {
                out[i * p + j] += a[i * m + k] * b[k * p + j];
            }
        }
    }
    out
}

/// Transpose of a row-major [n, m] buffer.
fn transpose_ref(a: &[f64], n: usize, m: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            out[j * n + i] = a[i * m + j];
        }
    }
    out
}

#[test]
fn add_and_sub() {
    let mut c = Checks::new();
    let add = |x: &[Tensor]| arith::add(&x[0], &x[1]);
    c.both("add same shape", add, &[uniform(&[2, 3], 1), uniform(&[2, 3], 2)]);
    c.both("add [2,3]+[3]", add, &[uniform(&[2, 3], 3), uniform(&[3], 4)]);
    c.both("add [3]+[2,3]", add, &[uniform(&[3], 5), uniform(&[2, 3], 6)]);
    c.both("add [2,1,3]+[4,1]", add, &[uniform(&[2, 1, 3], 7), uniform(&[4, 1], 8)]);
    c.both("add 0-d+[2,3]", add, &[uniform(&[], 9), uniform(&[2, 3], 10)]);
    c.both("add x+x", |x: &[Tensor]| arith::add(&x[0], &x[0]), &[uniform(&[4], 11)]);
    c.both("add x+number", |x: &[Tensor]| arith::add(&x[0], &ws(2.5)), &[uniform(&[2, 2], 12)]);
    c.both(
        "add alpha=2.5 [3,1]+[1,4]",
        |x: &[Tensor]| arith::add_scaled(&x[0], &x[1], 2.5),
        &[uniform(&[3, 1], 13), uniform(&[1, 4], 14)],
    );
    let sub = |x: &[Tensor]| arith::sub(&x[0], &x[1]);
    c.both("sub same shape", sub, &[uniform(&[2, 3], 15), uniform(&[2, 3], 16)]);
    c.both("sub [2,3]-[2,1]", sub, &[uniform(&[2, 3], 17), uniform(&[2, 1], 18)]);
    c.both(
        "sub alpha=-0.5 [2,3]-[3]",
        |x: &[Tensor]| arith::sub_scaled(&x[0], &x[1], -0.5),
        &[uniform(&[2, 3], 19), uniform(&[3], 20)],
    );
    c.both(
        "sub alpha=3 [3]-[2,3]",
        |x: &[Tensor]| arith::sub_scaled(&x[0], &x[1], 3.0),
        &[uniform(&[3], 21), uniform(&[2, 3], 22)],
    );
    c.both("sub x-number", |x: &[Tensor]| arith::sub(&x[0], &ws(1.5)), &[uniform(&[3], 23)]);

    // d(a + alpha*b)/da = 1, d/db = alpha; a broadcast [3] operand gets the column sums of v.
    let v: Vec<f64> = values(&uniform(&[2, 3], 24));
    let sums = col_sums(&v, 2, 3);
    let (a, b) = (uniform(&[2, 3], 25), uniform(&[3], 26));
    c.custom("add alpha closed form", || {
        let expected = vec![v.clone(), sums.iter().map(|s| 2.5 * s).collect()];
        closed_form(|x| arith::add_scaled(&x[0], &x[1], 2.5), &[a.clone(), b.clone()], &v, &expected)
    });
    // d(a - alpha*b)/da = 1, d/db = -alpha
    c.custom("sub alpha closed form", || {
        let expected = vec![v.clone(), sums.iter().map(|s| 0.5 * s).collect()];
        closed_form(|x| arith::sub_scaled(&x[0], &x[1], -0.5), &[a.clone(), b.clone()], &v, &expected)
    });
    c.finish();
}

#[test]
fn rsub_scalar() {
    let mut c = Checks::new();
    c.both("rsub 2 - x", |x: &[Tensor]| arith::rsub_scalar(&x[0], &ws(2.0), 1.0), &[uniform(&[2, 3], 30)]);
    c.both("rsub 2 - 3x", |x: &[Tensor]| arith::rsub_scalar(&x[0], &ws(2.0), 3.0), &[uniform(&[2, 3], 31)]);
    c.both("rsub 0-d", |x: &[Tensor]| arith::rsub_scalar(&x[0], &ws(-1.0), 0.5), &[uniform(&[], 32)]);
    // d(c - alpha*x)/dx = -alpha
    let v = values(&uniform(&[4], 33));
    c.custom("rsub closed form", || {
        let expected = vec![v.iter().map(|g| -3.0 * g).collect()];
        closed_form(|x| arith::rsub_scalar(&x[0], &ws(2.0), 3.0), &[uniform(&[4], 34)], &v, &expected)
    });
    c.finish();
}

#[test]
fn mul() {
    let mut c = Checks::new();
    let mul = |x: &[Tensor]| arith::mul(&x[0], &x[1]);
    c.both("mul same shape", mul, &[uniform(&[2, 3], 40), uniform(&[2, 3], 41)]);
    c.both("mul [2,3]*[2,1]", mul, &[uniform(&[2, 3], 42), uniform(&[2, 1], 43)]);
    c.both("mul [4,1,3]*[2,1]", mul, &[uniform(&[4, 1, 3], 44), uniform(&[2, 1], 45)]);
    c.both("mul 0-d*[2,3]", mul, &[uniform(&[], 46), uniform(&[2, 3], 47)]);
    c.both("mul x*x", |x: &[Tensor]| arith::mul(&x[0], &x[0]), &[uniform(&[5], 48)]);
    c.both("mul x*number", |x: &[Tensor]| arith::mul(&x[0], &ws(-1.5)), &[uniform(&[3], 49)]);
    // d(a*b)/da = b, d(a*b)/db = a (summed over b's broadcast rows)
    let (a, b) = (uniform(&[2, 3], 50), uniform(&[3], 51));
    let v = values(&uniform(&[2, 3], 52));
    c.custom("mul closed form", || {
        let (av, bv) = (values(&a), values(&b));
        let ga: Vec<f64> = (0..6).map(|i| v[i] * bv[i % 3]).collect();
        let prod: Vec<f64> = (0..6).map(|i| v[i] * av[i]).collect();
        closed_form(|x| arith::mul(&x[0], &x[1]), &[a.clone(), b.clone()], &v, &[ga, col_sums(&prod, 2, 3)])
    });
    // d(x*x)/dx = 2x
    let x = uniform(&[4], 53);
    let v4 = values(&uniform(&[4], 54));
    c.custom("square closed form", || {
        let e: Vec<f64> = values(&x).iter().zip(&v4).map(|(x, g)| 2.0 * x * g).collect();
        closed_form(|x| arith::mul(&x[0], &x[0]), std::slice::from_ref(&x), &v4, &[e])
    });
    c.finish();
}

#[test]
fn div() {
    let mut c = Checks::new();
    let div = |x: &[Tensor]| arith::div(&x[0], &x[1]);
    c.both("div same shape", div, &[uniform(&[2, 3], 60), away(&[2, 3], 61)]);
    c.both("div [2,3]/[3]", div, &[uniform(&[2, 3], 62), away(&[3], 63)]);
    c.both("div [3,1]/[1,2]", div, &[uniform(&[3, 1], 64), away(&[1, 2], 65)]);
    c.both("div [2,2]/0-d", div, &[uniform(&[2, 2], 66), away(&[], 67)]);
    c.both("div number/x", |x: &[Tensor]| arith::div(&ws(2.0), &x[0]), &[away(&[3], 68)]);
    c.both("div x/x", |x: &[Tensor]| arith::div(&x[0], &x[0]), &[away(&[3], 69)]);
    // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
    let (a, b) = (uniform(&[3], 70), away(&[3], 71));
    let v = values(&uniform(&[3], 72));
    c.custom("div closed form", || {
        let (av, bv) = (values(&a), values(&b));
        let ga: Vec<f64> = (0..3).map(|i| v[i] / bv[i]).collect();
        let gb: Vec<f64> = (0..3).map(|i| -v[i] * av[i] / (bv[i] * bv[i])).collect();
        closed_form(|x| arith::div(&x[0], &x[1]), &[a.clone(), b.clone()], &v, &[ga, gb])
    });
    c.finish();
}

#[test]
fn neg_and_reciprocal() {
    let mut c = Checks::new();
    c.both("neg", |x: &[Tensor]| arith::neg(&x[0]), &[uniform(&[2, 3], 80)]);
    c.both("neg 0-d", |x: &[Tensor]| arith::neg(&x[0]), &[uniform(&[], 81)]);
    c.both("reciprocal", |x: &[Tensor]| arith::reciprocal(&x[0]), &[away(&[2, 3], 82)]);
    c.both("reciprocal of transposed", |x: &[Tensor]| arith::reciprocal(&view::t(&x[0])?), &[away(&[2, 3], 83)]);
    let x = away(&[4], 84);
    let v = values(&uniform(&[4], 85));
    // d(-x)/dx = -1
    c.custom("neg closed form", || {
        closed_form(|x| arith::neg(&x[0]), std::slice::from_ref(&x), &v, &[v.iter().map(|g| -g).collect()])
    });
    // d(1/x)/dx = -1/x^2
    c.custom("reciprocal closed form", || {
        let e: Vec<f64> = values(&x).iter().zip(&v).map(|(x, g)| -g / (x * x)).collect();
        closed_form(|x| arith::reciprocal(&x[0]), std::slice::from_ref(&x), &v, &[e])
    });
    c.finish();
}

#[test]
fn pow_ops() {
    let mut c = Checks::new();
    for (i, e) in
        [Scalar::Int(2), Scalar::Int(3), Scalar::Int(-2), Scalar::Int(1), Scalar::Int(0)].into_iter().enumerate()
    {
        c.both(
            &format!("pow_scalar x^{e:?}"),
            move |x: &[Tensor]| pow::pow_scalar(&x[0], e),
            &[away(&[2, 3], 90 + i as u64)],
        );
    }
    for (i, e) in
        [Scalar::Float(0.5), Scalar::Float(-1.5), Scalar::Float(2.5), Scalar::Float(1.0 / 3.0)].into_iter().enumerate()
    {
        c.both(
            &format!("pow_scalar x^{e:?}"),
            move |x: &[Tensor]| pow::pow_scalar(&x[0], e),
            &[positive(&[2, 3], 100 + i as u64)],
        );
    }
    let pt = |x: &[Tensor]| pow::pow_tensor(&x[0], &x[1]);
    c.both("pow_tensor same shape", pt, &[positive(&[2, 3], 110), uniform(&[2, 3], 111)]);
    c.both("pow_tensor [2,3]**[3]", pt, &[positive(&[2, 3], 112), uniform(&[3], 113)]);
    c.both("pow_tensor [3]**[2,3]", pt, &[positive(&[3], 114), uniform(&[2, 3], 115)]);
    // At an exponent of exactly 0, PyTorch's formula (and the core's) masks d/da with
    // `where(b == 0, 0, g * b * a^(b-1))`, so the double backward through the mask is 0 there
    // although the first-order function's true derivative w.r.t. b is g / a: in PyTorch too,
    // only the first order is exact at that point.
    c.first("pow_tensor with a zero exponent", pt, &[positive(&[3], 116), t64(&[0.0, 1.5, -2.0], &[3])]);
    c.both("pow_tensor with small exponents", pt, &[positive(&[3], 118), t64(&[0.25, 1.5, -2.0], &[3])]);
    c.both("pow_tensor x**x", |x: &[Tensor]| pow::pow_tensor(&x[0], &x[0]), &[positive(&[4], 117)]);
    for (i, base) in [Scalar::Float(2.0), Scalar::Float(0.5), Scalar::Int(3), Scalar::Float(std::f64::consts::E)]
        .into_iter()
        .enumerate()
    {
        c.both(
            &format!("scalar_pow {base:?}^x"),
            move |x: &[Tensor]| pow::scalar_pow(base, &x[0]),
            &[uniform(&[2, 3], 120 + i as u64)],
        );
    }

    let x = positive(&[4], 130);
    let xv = values(&x);
    let v = values(&uniform(&[4], 131));
    // d(x^e)/dx = e * x^(e-1)
    for e in [2.5, -1.5, 3.0] {
        let (x, xv, v) = (x.clone(), xv.clone(), v.clone());
        c.custom(&format!("pow_scalar {e} closed form"), move || {
            let expected: Vec<f64> = xv.iter().zip(&v).map(|(x, g)| g * e * x.powf(e - 1.0)).collect();
            closed_form(move |t| pow::pow_scalar(&t[0], Scalar::Float(e)), &[x], &v, &[expected])
        });
    }
    // d(x^0)/dx = 0
    c.custom("pow_scalar 0 closed form", || {
        closed_form(|t| pow::pow_scalar(&t[0], Scalar::Int(0)), std::slice::from_ref(&x), &v, &[vec![0.0; 4]])
    });
    // d(a^b)/da = b * a^(b-1), d(a^b)/db = a^b * ln(a)
    let b = uniform(&[4], 132);
    let bv = values(&b);
    c.custom("pow_tensor closed form", || {
        let ga: Vec<f64> = (0..4).map(|i| v[i] * bv[i] * xv[i].powf(bv[i] - 1.0)).collect();
        let gb: Vec<f64> = (0..4).map(|i| v[i] * xv[i].powf(bv[i]) * xv[i].ln()).collect();
        closed_form(|t| pow::pow_tensor(&t[0], &t[1]), &[x.clone(), b.clone()], &v, &[ga, gb])
    });
    // d(c^x)/dx = c^x * ln(c)
    c.custom("scalar_pow closed form", || {
        let e: Vec<f64> = bv.iter().zip(&v).map(|(x, g)| g * 3f64.powf(*x) * 3f64.ln()).collect();
        closed_form(|t| pow::scalar_pow(Scalar::Float(3.0), &t[0]), std::slice::from_ref(&b), &v, &[e])
    });
    c.finish();
}

#[test]
fn unary_ops() {
    type Op = fn(&Tensor) -> Result<Tensor>;
    // (name, op, input kind: 0 uniform, 1 away from zero, 2 positive, closed-form derivative)
    let cases: [(&str, Op, u8, fn(f64) -> f64); 9] = [
        // d exp(x) = exp(x)
        ("exp", unary::exp, 0, f64::exp),
        // d ln(x) = 1/x
        ("log", unary::log, 2, |x| 1.0 / x),
        // d sqrt(x) = 1 / (2 sqrt(x))
        ("sqrt", unary::sqrt, 2, |x| 0.5 / x.sqrt()),
        // d |x| = sign(x)
        ("abs", unary::abs, 1, f64::signum),
        // d sin(x) = cos(x)
        ("sin", unary::sin, 0, f64::cos),
        // d cos(x) = -sin(x)
        ("cos", unary::cos, 0, |x| -x.sin()),
        // d tanh(x) = 1 - tanh(x)^2
        ("tanh", unary::tanh, 0, |x| 1.0 - x.tanh() * x.tanh()),
        // d sigmoid(x) = sigmoid(x) (1 - sigmoid(x))
        ("sigmoid", unary::sigmoid, 0, |x| {
            let s = 1.0 / (1.0 + (-x).exp());
            s * (1.0 - s)
        }),
        // d relu(x) = [x > 0]
        ("relu", unary::relu, 1, |x| if x > 0.0 { 1.0 } else { 0.0 }),
    ];
    let mut c = Checks::new();
    for (k, (name, op, kind, deriv)) in cases.into_iter().enumerate() {
        let make = |shape: &[usize], seed: u64| match kind {
            0 => uniform(shape, seed),
            1 => away(shape, seed),
            _ => positive(shape, seed),
        };
        let seed = 200 + 10 * k as u64;
        let scale = |t: Tensor| -> Tensor {
            // spread uniform inputs over [-2, 2] to leave the linear region of tanh/sigmoid
            if kind == 0 {
                t64(&values(&t).iter().map(|x| 2.0 * x).collect::<Vec<_>>(), &t.shape())
            } else {
                t
            }
        };
        c.both(name, move |x: &[Tensor]| op(&x[0]), &[scale(make(&[2, 3], seed))]);
        c.both(&format!("{name} 0-d"), move |x: &[Tensor]| op(&x[0]), &[scale(make(&[], seed + 1))]);
        c.both(
            &format!("{name} of transposed"),
            move |x: &[Tensor]| op(&view::t(&x[0])?),
            &[scale(make(&[3, 2], seed + 2))],
        );
        c.both(
            &format!("{name} of expanded"),
            move |x: &[Tensor]| op(&view::expand(&x[0], &[2, 3])?),
            &[scale(make(&[3], seed + 3))],
        );
        let x = scale(make(&[5], seed + 4));
        let v = values(&uniform(&[5], seed + 5));
        c.custom(&format!("{name} closed form"), move || {
            let e: Vec<f64> = values(&x).iter().zip(&v).map(|(x, g)| g * deriv(*x)).collect();
            closed_form(|t| op(&t[0]), std::slice::from_ref(&x), &v, &[e])
        });
    }
    c.finish();
}

#[test]
fn sum_and_mean() {
    let mut c = Checks::new();
    let x = uniform(&[2, 3, 4], 300);
    let sum = |dims: Option<&'static [i64]>, keepdim: bool| move |t: &[Tensor]| reduce::sum(&t[0], dims, keepdim, None);
    let mean =
        |dims: Option<&'static [i64]>, keepdim: bool| move |t: &[Tensor]| reduce::mean(&t[0], dims, keepdim, None);
    c.both("sum all", sum(None, false), std::slice::from_ref(&x));
    c.both("sum all keepdim", sum(None, true), std::slice::from_ref(&x));
    c.both("sum dims=[] (all)", sum(Some(&[]), false), std::slice::from_ref(&x));
    c.both("sum dim 1", sum(Some(&[1]), false), std::slice::from_ref(&x));
    c.both("sum dim -1 keepdim", sum(Some(&[-1]), true), std::slice::from_ref(&x));
    c.both("sum dims [0,2]", sum(Some(&[0, 2]), false), std::slice::from_ref(&x));
    c.both("sum dims [2,0] keepdim", sum(Some(&[2, 0]), true), std::slice::from_ref(&x));
    c.both("sum 0-d", sum(None, false), &[uniform(&[], 301)]);
    c.both(
        "sum of transposed dim 0",
        move |t: &[Tensor]| reduce::sum(&view::t(&t[0])?, Some(&[0]), false, None),
        &[uniform(&[3, 4], 302)],
    );
    c.both("mean all", mean(None, false), std::slice::from_ref(&x));
    c.both("mean all keepdim", mean(None, true), std::slice::from_ref(&x));
    c.both("mean dim 1", mean(Some(&[1]), false), std::slice::from_ref(&x));
    c.both("mean dim -1 keepdim", mean(Some(&[-1]), true), std::slice::from_ref(&x));
    c.both("mean dims [0,2]", mean(Some(&[0, 2]), false), std::slice::from_ref(&x));
    c.both("mean dims [0,1] keepdim", mean(Some(&[0, 1]), true), std::slice::from_ref(&x));
    c.both("mean 0-d", mean(None, false), &[uniform(&[], 303)]);

    // d sum(x, dim=1)/dx[i, j] = v[i]: the gradient is v broadcast along the reduced dim
    let x2 = uniform(&[2, 3], 304);
    let v = values(&uniform(&[2], 305));
    c.custom("sum dim closed form", || {
        let e: Vec<f64> = (0..6).map(|k| v[k / 3]).collect();
        closed_form(|t| reduce::sum(&t[0], Some(&[1]), false, None), std::slice::from_ref(&x2), &v, &[e])
    });
    // d mean(x, dim=0)/dx[i, j] = v[j] / 2
    let v3 = values(&uniform(&[3], 306));
    c.custom("mean dim closed form", || {
        let e: Vec<f64> = (0..6).map(|k| v3[k % 3] / 2.0).collect();
        closed_form(|t| reduce::mean(&t[0], Some(&[0]), false, None), std::slice::from_ref(&x2), &v3, &[e])
    });
    // d mean(x)/dx = 1/n
    c.custom("mean all closed form", || {
        closed_form(|t| reduce::mean(&t[0], None, false, None), std::slice::from_ref(&x2), &[0.6], &[vec![0.1; 6]])
    });
    c.finish();
}

#[test]
fn max_and_min() {
    let mut c = Checks::new();
    let x2 = uniform(&[3, 4], 310);
    let x3 = uniform(&[2, 3, 4], 311);
    for (max, label) in [(true, "max"), (false, "min")] {
        let ed =
            move |dim: i64, keepdim: bool| move |t: &[Tensor]| Ok(reduce::extreme_dim(&t[0], dim, keepdim, max)?.0);
        c.both(&format!("{label} dim 1"), ed(1, false), std::slice::from_ref(&x2));
        c.both(&format!("{label} dim 0 keepdim"), ed(0, true), std::slice::from_ref(&x2));
        c.both(&format!("{label} dim -1 3-D"), ed(-1, false), std::slice::from_ref(&x3));
        c.both(&format!("{label} dim 1 3-D keepdim"), ed(1, true), std::slice::from_ref(&x3));
        c.both(&format!("{label} dim 0 1-D"), ed(0, false), &[uniform(&[5], 312)]);
        c.both(
            &format!("{label} dim 0 of transposed"),
            move |t: &[Tensor]| Ok(reduce::extreme_dim(&view::t(&t[0])?, 0, false, max)?.0),
            std::slice::from_ref(&x2),
        );
        c.both(&format!("{label} all"), move |t: &[Tensor]| reduce::extreme_all(&t[0], max), std::slice::from_ref(&x3));
        c.both(&format!("{label} all 0-d"), move |t: &[Tensor]| reduce::extreme_all(&t[0], max), &[uniform(&[], 313)]);
    }
    // d max(x, dim=1)/dx = one-hot of the argmax in each row, times v
    let xv = values(&x2);
    let v = values(&uniform(&[3], 314));
    c.custom("max dim closed form", || {
        let mut e = vec![0.0; 12];
        for i in 0..3 {
            let row = &xv[i * 4..i * 4 + 4];
            let j = (0..4).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            e[i * 4 + j] = v[i];
        }
        closed_form(|t| Ok(reduce::extreme_dim(&t[0], 1, false, true)?.0), std::slice::from_ref(&x2), &v, &[e])
    });
    // d min(x)/dx = one-hot of the (unique) argmin
    c.custom("min all closed form", || {
        let j = (0..12).fold(0, |b, j| if xv[j] < xv[b] { j } else { b });
        let mut e = vec![0.0; 12];
        e[j] = 0.7;
        closed_form(|t| reduce::extreme_all(&t[0], false), std::slice::from_ref(&x2), &[0.7], &[e])
    });
    // ties share the gradient evenly: d max([1, 3, 3])/dx = [0, 1/2, 1/2]
    c.custom("max all tie closed form", || {
        closed_form(
            |t| reduce::extreme_all(&t[0], true),
            &[t64(&[1.0, 3.0, 3.0], &[3])],
            &[1.0],
            &[vec![0.0, 0.5, 0.5]],
        )
    });
    c.finish();
}

#[test]
fn vector_norm() {
    let mut c = Checks::new();
    for p in [1.0, 2.0, 3.0] {
        let n = move |dims: Option<&'static [i64]>, keepdim: bool| {
            move |t: &[Tensor]| reduce::norm(&t[0], p, dims, keepdim)
        };
        let x = away(&[3, 4], 320 + p as u64);
        c.both(&format!("norm p={p} all"), n(None, false), std::slice::from_ref(&x));
        c.both(&format!("norm p={p} dim 1"), n(Some(&[1]), false), std::slice::from_ref(&x));
        c.both(&format!("norm p={p} dim 0 keepdim"), n(Some(&[0]), true), std::slice::from_ref(&x));
        c.both(&format!("norm p={p} dim -1 keepdim"), n(Some(&[-1]), true), std::slice::from_ref(&x));
        c.both(&format!("norm p={p} 1-D"), n(None, false), &[away(&[5], 330 + p as u64)]);
        c.both(&format!("norm p={p} 3-D dims [0,2]"), n(Some(&[0, 2]), false), &[away(&[2, 3, 2], 340 + p as u64)]);
    }
    let x = away(&[4], 350);
    let xv = values(&x);
    // d ||x||_2/dx = x / ||x||_2
    c.custom("norm p=2 closed form", || {
        let r = xv.iter().map(|x| x * x).sum::<f64>().sqrt();
        closed_form(
            |t| reduce::norm(&t[0], 2.0, None, false),
            std::slice::from_ref(&x),
            &[1.5],
            &[xv.iter().map(|x| 1.5 * x / r).collect()],
        )
    });
    // d ||x||_1/dx = sign(x)
    c.custom("norm p=1 closed form", || {
        closed_form(
            |t| reduce::norm(&t[0], 1.0, None, false),
            std::slice::from_ref(&x),
            &[1.0],
            &[xv.iter().map(|x| x.signum()).collect()],
        )
    });
    // d ||x||_3/dx = x |x| / ||x||_3^2
    c.custom("norm p=3 closed form", || {
        let r = xv.iter().map(|x| x.abs().powi(3)).sum::<f64>().cbrt();
        closed_form(
            |t| reduce::norm(&t[0], 3.0, None, false),
            std::slice::from_ref(&x),
            &[1.0],
            &[xv.iter().map(|x| x * x.abs() / (r * r)).collect()],
        )
    });
    c.finish();
}

#[test]
fn dot_mm_mv_bmm() {
    let mut c = Checks::new();
    c.both("dot", |x: &[Tensor]| linalg::dot(&x[0], &x[1]), &[uniform(&[4], 400), uniform(&[4], 401)]);
    c.both("dot x.x", |x: &[Tensor]| linalg::dot(&x[0], &x[0]), &[uniform(&[4], 402)]);
    c.both("mm", |x: &[Tensor]| linalg::mm(&x[0], &x[1]), &[uniform(&[2, 3], 403), uniform(&[3, 4], 404)]);
    c.both(
        "mm of transposed inputs",
        |x: &[Tensor]| linalg::mm(&view::t(&x[0])?, &view::t(&x[1])?),
        &[uniform(&[3, 2], 405), uniform(&[4, 3], 406)],
    );
    c.both("mm x x^T", |x: &[Tensor]| linalg::mm(&x[0], &view::t(&x[0])?), &[uniform(&[2, 3], 407)]);
    c.both("mv", |x: &[Tensor]| linalg::mv(&x[0], &x[1]), &[uniform(&[3, 4], 408), uniform(&[4], 409)]);
    c.both(
        "mv of transposed",
        |x: &[Tensor]| linalg::mv(&view::t(&x[0])?, &x[1]),
        &[uniform(&[4, 3], 410), uniform(&[4], 411)],
    );
    c.both("bmm", |x: &[Tensor]| linalg::bmm(&x[0], &x[1]), &[uniform(&[2, 3, 4], 412), uniform(&[2, 4, 2], 413)]);
    c.both(
        "bmm of transposed",
        |x: &[Tensor]| linalg::bmm(&view::transpose(&x[0], 1, 2)?, &x[1]),
        &[uniform(&[2, 4, 3], 414), uniform(&[2, 4, 2], 415)],
    );

    // d(a.b)/da = b, d(a.b)/db = a
    let (a, b) = (uniform(&[4], 416), uniform(&[4], 417));
    c.custom("dot closed form", || {
        let e = vec![values(&b).iter().map(|x| 2.0 * x).collect(), values(&a).iter().map(|x| 2.0 * x).collect()];
        closed_form(|t| linalg::dot(&t[0], &t[1]), &[a.clone(), b.clone()], &[2.0], &e)
    });
    // d sum((AB) * G)/dA = G B^T, d/dB = A^T G
    let (am, bm) = (uniform(&[2, 3], 418), uniform(&[3, 4], 419));
    let g = values(&uniform(&[2, 4], 420));
    c.custom("mm closed form", || {
        let (av, bv) = (values(&am), values(&bm));
        let ga = matmul_ref(&g, &transpose_ref(&bv, 3, 4), 2, 4, 3);
        let gb = matmul_ref(&transpose_ref(&av, 2, 3), &g, 3, 2, 4);
        closed_form(|t| linalg::mm(&t[0], &t[1]), &[am.clone(), bm.clone()], &g, &[ga, gb])
    });
    // d sum((Av) * g)/dA = g v^T, d/dv = A^T g
    let (ma, vv) = (uniform(&[3, 4], 421), uniform(&[4], 422));
    let g3 = values(&uniform(&[3], 423));
    c.custom("mv closed form", || {
        let (av, v) = (values(&ma), values(&vv));
        let ga = matmul_ref(&g3, &v, 3, 1, 4);
        let gv = matmul_ref(&transpose_ref(&av, 3, 4), &g3, 4, 3, 1);
        closed_form(|t| linalg::mv(&t[0], &t[1]), &[ma.clone(), vv.clone()], &g3, &[ga, gv])
    });
    c.finish();
}

#[test]
fn matmul_dispatch() {
    let mut c = Checks::new();
    let mm = |x: &[Tensor]| linalg::matmul(&x[0], &x[1]);
    let cases: &[(&str, &[usize], &[usize])] = &[
        ("1-D @ 1-D (dot)", &[4], &[4]),
        ("2-D @ 1-D (mv)", &[3, 4], &[4]),
        ("1-D @ 2-D", &[4], &[4, 5]),
        ("2-D @ 2-D (mm)", &[3, 4], &[4, 5]),
        ("3-D @ 1-D (folded mv)", &[2, 3, 4], &[4]),
        ("4-D @ 1-D (folded mv)", &[2, 2, 3, 4], &[4]),
        ("3-D @ 2-D (folded mm)", &[2, 3, 4], &[4, 5]),
        ("4-D @ 2-D (folded mm)", &[2, 2, 3, 4], &[4, 2]),
        ("1-D @ 3-D", &[4], &[2, 4, 5]),
        ("2-D @ 3-D", &[3, 4], &[2, 4, 5]),
        ("3-D @ 3-D (bmm)", &[2, 3, 4], &[2, 4, 5]),
        ("3-D @ 3-D batch 1 broadcast", &[1, 3, 4], &[2, 4, 5]),
        ("3-D @ 3-D batch broadcast other side", &[2, 3, 4], &[1, 4, 5]),
        ("4-D @ 3-D batch broadcast", &[2, 1, 3, 4], &[3, 4, 2]),
        ("3-D @ 4-D batch broadcast", &[3, 2, 4], &[2, 1, 4, 3]),
        ("2-D @ 4-D", &[2, 4], &[2, 2, 4, 3]),
    ];
    for (i, (name, sa, sb)) in cases.iter().enumerate() {
        c.both(&format!("matmul {name}"), mm, &[uniform(sa, 500 + 2 * i as u64), uniform(sb, 501 + 2 * i as u64)]);
    }
    c.both(
        "matmul 3-D @ 2-D of non-contiguous inputs",
        |x: &[Tensor]| linalg::matmul(&view::transpose(&x[0], 1, 2)?, &view::t(&x[1])?),
        &[uniform(&[2, 4, 3], 540), uniform(&[5, 4], 541)],
    );
    c.both(
        "matmul 4-D @ 3-D with permuted input",
        |x: &[Tensor]| linalg::matmul(&view::permute(&x[0], &[1, 0, 2, 3])?, &x[1]),
        &[uniform(&[1, 2, 3, 4], 542), uniform(&[3, 4, 2], 543)],
    );
    c.both("matmul x @ x", |x: &[Tensor]| linalg::matmul(&x[0], &x[0]), &[uniform(&[2, 3, 3], 544)]);

    // a batch-broadcast matmul equals the per-batch products: check the gradient of the
    // broadcast operand is the sum over the batches it was broadcast to,
    // d sum((A B_k) * G_k)/dA = sum_k G_k B_k^T
    let (a, b) = (uniform(&[3, 4], 545), uniform(&[2, 4, 5], 546));
    let g = values(&uniform(&[2, 3, 5], 547));
    c.custom("matmul broadcast closed form", || {
        let bv = values(&b);
        let mut ga = vec![0.0; 12];
        let mut gb = Vec::new();
        for k in 0..2 {
            let bk = &bv[k * 20..(k + 1) * 20];
            let gk = &g[k * 15..(k + 1) * 15];
            for (s, t) in ga.iter_mut().zip(matmul_ref(gk, &transpose_ref(bk, 4, 5), 3, 5, 4)) {
                *s += t;
            }
            gb.extend(matmul_ref(&transpose_ref(&values(&a), 3, 4), gk, 4, 3, 5));
        }
        closed_form(|t| linalg::matmul(&t[0], &t[1]), &[a.clone(), b.clone()], &g, &[ga, gb])
    });
    c.finish();
}

#[test]
fn view_ops() {
    let mut c = Checks::new();
    let x = uniform(&[2, 3, 4], 600);
    c.both("view [6,4]", |t: &[Tensor]| view::view(&t[0], &[6, 4]), std::slice::from_ref(&x));
    c.both("view [-1]", |t: &[Tensor]| view::view(&t[0], &[-1]), std::slice::from_ref(&x));
    c.both("view [4,-1,2]", |t: &[Tensor]| view::view(&t[0], &[4, -1, 2]), std::slice::from_ref(&x));
    c.both(
        "view splitting a dim of a transposed tensor",
        |t: &[Tensor]| view::view(&view::t(&t[0])?, &[2, 2, 2]),
        &[uniform(&[2, 4], 601)],
    );
    c.both("reshape contiguous", |t: &[Tensor]| view::reshape(&t[0], &[3, 8]), std::slice::from_ref(&x));
    c.both(
        "reshape non-contiguous (transposed)",
        |t: &[Tensor]| view::reshape(&view::transpose(&t[0], 0, 1)?, &[-1]),
        std::slice::from_ref(&x),
    );
    c.both(
        "reshape non-contiguous (permuted)",
        |t: &[Tensor]| view::reshape(&view::permute(&t[0], &[2, 0, 1])?, &[4, 6]),
        std::slice::from_ref(&x),
    );
    c.both(
        "reshape expanded",
        |t: &[Tensor]| view::reshape(&view::expand(&t[0], &[2, 3, 4])?, &[6, 4]),
        &[uniform(&[3, 1], 602)],
    );
    c.both("transpose 0 2", |t: &[Tensor]| view::transpose(&t[0], 0, 2), std::slice::from_ref(&x));
    c.both("transpose -1 -2", |t: &[Tensor]| view::transpose(&t[0], -1, -2), std::slice::from_ref(&x));
    c.both("transpose 1 1", |t: &[Tensor]| view::transpose(&t[0], 1, 1), std::slice::from_ref(&x));
    c.both("t 2-D", |t: &[Tensor]| view::t(&t[0]), &[uniform(&[2, 3], 603)]);
    c.both("t 1-D", |t: &[Tensor]| view::t(&t[0]), &[uniform(&[3], 604)]);
    c.both("t 0-D", |t: &[Tensor]| view::t(&t[0]), &[uniform(&[], 605)]);
    c.both("permute [2,0,1]", |t: &[Tensor]| view::permute(&t[0], &[2, 0, 1]), std::slice::from_ref(&x));
    c.both("permute [-1,-3,-2]", |t: &[Tensor]| view::permute(&t[0], &[-1, -3, -2]), std::slice::from_ref(&x));
    let y = uniform(&[2, 1, 3, 1], 606);
    c.both("squeeze all", |t: &[Tensor]| view::squeeze(&t[0], None), std::slice::from_ref(&y));
    c.both("squeeze dim 1", |t: &[Tensor]| view::squeeze(&t[0], Some(1)), std::slice::from_ref(&y));
    c.both("squeeze dim -1", |t: &[Tensor]| view::squeeze(&t[0], Some(-1)), std::slice::from_ref(&y));
    c.both("squeeze dim 0 (not size 1)", |t: &[Tensor]| view::squeeze(&t[0], Some(0)), std::slice::from_ref(&y));
    c.both("squeeze all of [1,1]", |t: &[Tensor]| view::squeeze(&t[0], None), &[uniform(&[1, 1], 607)]);
    c.both("unsqueeze 0", |t: &[Tensor]| view::unsqueeze(&t[0], 0), &[uniform(&[2, 3], 608)]);
    c.both("unsqueeze -1", |t: &[Tensor]| view::unsqueeze(&t[0], -1), &[uniform(&[2, 3], 609)]);
    c.both("unsqueeze 1", |t: &[Tensor]| view::unsqueeze(&t[0], 1), &[uniform(&[2, 3], 610)]);
    c.both("unsqueeze 0-d", |t: &[Tensor]| view::unsqueeze(&t[0], 0), &[uniform(&[], 611)]);
    c.both("unsqueeze of transposed", |t: &[Tensor]| view::unsqueeze(&view::t(&t[0])?, 1), &[uniform(&[2, 3], 612)]);
    c.both("expand [3,1]->[2,3,4]", |t: &[Tensor]| view::expand(&t[0], &[2, 3, 4]), &[uniform(&[3, 1], 613)]);
    c.both("expand [1]->[5]", |t: &[Tensor]| view::expand(&t[0], &[5]), &[uniform(&[1], 614)]);
    c.both("expand [3,1]->[-1,4]", |t: &[Tensor]| view::expand(&t[0], &[-1, 4]), &[uniform(&[3, 1], 615)]);
    c.both("expand 0-d->[2,2]", |t: &[Tensor]| view::expand(&t[0], &[2, 2]), &[uniform(&[], 616)]);
    c.both("expand same shape", |t: &[Tensor]| view::expand(&t[0], &[2, 3]), &[uniform(&[2, 3], 617)]);
    c.both("clone", |t: &[Tensor]| view::clone(&t[0]), std::slice::from_ref(&x));
    c.both("clone of transposed", |t: &[Tensor]| view::clone(&view::t(&t[0])?), &[uniform(&[2, 3], 618)]);
    c.both("contiguous of transposed", |t: &[Tensor]| view::contiguous(&view::t(&t[0])?), &[uniform(&[2, 3], 619)]);
    c.both("sum_to [2,3,4]->[3,1]", |t: &[Tensor]| view::sum_to(&t[0], &[3, 1]), std::slice::from_ref(&x));

    // d expand(x)/dx: the gradient summed over the broadcast dims; [3,1]->[3,4]: row sums
    let e = uniform(&[3, 1], 620);
    let v = values(&uniform(&[3, 4], 621));
    c.custom("expand closed form", || {
        closed_form(|t| view::expand(&t[0], &[3, 4]), std::slice::from_ref(&e), &v, &[row_sums(&v, 3, 4)])
    });
    // d transpose(x)/dx: the gradient transposed back
    let m = uniform(&[2, 3], 622);
    let g = values(&uniform(&[3, 2], 623));
    c.custom("transpose closed form", || {
        closed_form(|t| view::t(&t[0]), std::slice::from_ref(&m), &g, &[transpose_ref(&g, 3, 2)])
    });
    // d reshape(x)/dx: the gradient reshaped back (same row-major order for a contiguous x)
    c.custom("reshape closed form", || {
        closed_form(|t| view::reshape(&t[0], &[3, 2]), std::slice::from_ref(&m), &g, std::slice::from_ref(&g))
    });
    c.finish();
}

#[test]
fn to_dtype() {
    let mut c = Checks::new();
    c.both("to_dtype f64->f64 (no-op)", |t: &[Tensor]| view::to_dtype(&t[0], DType::F64), &[uniform(&[2, 3], 700)]);
    c.both(
        "to_dtype f64->f64 of transposed",
        |t: &[Tensor]| view::to_dtype(&view::t(&t[0])?, DType::F64),
        &[uniform(&[2, 3], 701)],
    );
    // f32 -> f64: d to(x)/dx = 1, converted back to float32. Finite differences are
    // meaningless in float32, so this is a closed-form check of first and second order:
    // L = sum(to_f64(x) * v)       => dL/dx = v as float32;
    // M = sum(dL/dx * w)            => dM/dv = w as float64 (the gradient is linear in v).
    c.custom("to_dtype f32->f64 first and second order", || {
        let xs: Vec<f32> = vec![0.5, -1.25, 2.0, 0.75];
        let x = Tensor::from_vec(xs.clone(), &[4]).map_err(|e| e.to_string())?;
        x.set_requires_grad(true).map_err(|e| e.to_string())?;
        let vv = [0.25, -0.5, 1.5, 2.0];
        let v = common::leaf(&vv, &[4]);
        let run = || -> Result<(Tensor, Vec<Option<Tensor>>)> {
            let y = view::to_dtype(&x, DType::F64)?;
            if y.dtype() != DType::F64 {
                return Err(rustgrad_core::Error::runtime("forward is not float64"));
            }
            let l = reduce::sum(&arith::mul(&y, &v)?, None, false, None)?;
            let g = engine::grad(&[l], &[], std::slice::from_ref(&x), true, true, false)?;
            let gx = g[0].clone().expect("used");
            let w = Tensor::from_vec(vec![1.0f32, 2.0, -1.0, 0.5], &[4])?;
            let m = reduce::sum(&arith::mul(&gx, &w)?, None, false, None)?;
            let gv = engine::grad(&[m], &[], std::slice::from_ref(&v), false, false, false)?;
            Ok((gx, gv))
        };
        let (gx, gv) = run().map_err(|e| e.to_string())?;
        if gx.dtype() != DType::F32 {
            return Err(format!("gradient of the float32 input has dtype {}", gx.dtype()));
        }
        if values(&gx) != vv {
            return Err(format!("dL/dx = {:?}, expected {vv:?}", values(&gx)));
        }
        let gv = gv[0].clone().ok_or("dM/dv is None")?;
        if gv.dtype() != DType::F64 || values(&gv) != [1.0, 2.0, -1.0, 0.5] {
            return Err(format!("dM/dv = {gv:?}, expected float64 [1, 2, -1, 0.5]"));
        }
        Ok(())
    });
    c.finish();
}

#[test]
fn where_op() {
    let mut c = Checks::new();
    let cond = |vals: &[bool], shape: &[usize]| Tensor::from_vec(vals.to_vec(), shape).expect("cond");
    let c23 = cond(&[true, false, true, false, false, true], &[2, 3]);
    let c3 = cond(&[false, true, true], &[3]);
    let c21 = cond(&[true, false], &[2, 1]);
    {
        let k = c23.clone();
        c.both(
            "where same shape",
            move |t: &[Tensor]| compare::where_(&k, &t[0], &t[1]),
            &[uniform(&[2, 3], 800), uniform(&[2, 3], 801)],
        );
    }
    {
        let k = c3.clone();
        c.both(
            "where cond [3], a [2,3], b [1]",
            move |t: &[Tensor]| compare::where_(&k, &t[0], &t[1]),
            &[uniform(&[2, 3], 802), uniform(&[1], 803)],
        );
    }
    {
        let k = c21.clone();
        c.both(
            "where cond [2,1], a [3], b 0-d",
            move |t: &[Tensor]| compare::where_(&k, &t[0], &t[1]),
            &[uniform(&[3], 804), uniform(&[], 805)],
        );
    }
    {
        let k = c23.clone();
        c.both("where a, number", move |t: &[Tensor]| compare::where_(&k, &t[0], &ws(0.5)), &[uniform(&[2, 3], 806)]);
    }
    {
        let k = c3.clone();
        c.both(
            "where number, b [2,3]",
            move |t: &[Tensor]| compare::where_(&k, &ws(-2.0), &t[0]),
            &[uniform(&[2, 3], 807)],
        );
    }
    {
        // a mask computed from the input itself (the comparison has no gradient)
        c.both(
            "where(x > 0, x, 2x)",
            |t: &[Tensor]| {
                let mask = compare::compare(&t[0], &ws(0.0), rustgrad_core::kernels::Compare::Gt)?;
                compare::where_(&mask, &t[0], &arith::mul(&t[0], &ws(2.0))?)
            },
            &[away(&[2, 3], 808)],
        );
    }
    // d where(c, a, b)/da = v [c], d/db = v [not c], summed over broadcast dims:
    // cond [3] broadcast over a [2,3]; b [1] gets the sum of v where not c
    let v = values(&uniform(&[2, 3], 809));
    let (a, b) = (uniform(&[2, 3], 810), uniform(&[1], 811));
    c.custom("where closed form", || {
        let mask = [false, true, true];
        let ga: Vec<f64> = (0..6).map(|i| if mask[i % 3] { v[i] } else { 0.0 }).collect();
        let gb = vec![(0..6).filter(|i| !mask[i % 3]).map(|i| v[i]).sum()];
        let k = c3.clone();
        closed_form(move |t| compare::where_(&k, &t[0], &t[1]), &[a.clone(), b.clone()], &v, &[ga, gb])
    });
    c.finish();
}

#[test]
fn composites() {
    let mut c = Checks::new();
    // an input reaching the output through several paths
    c.both(
        "x*x + sin(x)*x - x/(1+x^2)",
        |t: &[Tensor]| {
            let x = &t[0];
            let a = arith::mul(x, x)?;
            let b = arith::mul(&unary::sin(x)?, x)?;
            let d = arith::div(x, &arith::add(&ws(1.0), &a)?)?;
            arith::sub(&arith::add(&a, &b)?, &d)
        },
        &[uniform(&[2, 3], 900)],
    );
    // a two-layer perceptron with a mean-squared-error-like loss
    c.both(
        "mlp",
        |t: &[Tensor]| {
            let (x, w1, b1, w2) = (&t[0], &t[1], &t[2], &t[3]);
            let h = unary::tanh(&arith::add(&linalg::matmul(x, w1)?, b1)?)?;
            let o = linalg::matmul(&h, w2)?;
            reduce::mean(&pow::pow_scalar(&arith::sub(&o, &ws(0.5))?, Scalar::Int(2))?, None, false, None)
        },
        &[uniform(&[4, 3], 901), uniform(&[3, 5], 902), uniform(&[5], 903), uniform(&[5, 2], 904)],
    );
    // softmax-like normalisation with a reduction over a dim and broadcasting back
    c.both(
        "exp(x) / sum(exp(x), dim=1, keepdim)",
        |t: &[Tensor]| {
            let e = unary::exp(&t[0])?;
            arith::div(&e, &reduce::sum(&e, Some(&[1]), true, None)?)
        },
        &[uniform(&[3, 4], 905)],
    );
    // log-sum-exp with the max subtracted
    c.both(
        "logsumexp",
        |t: &[Tensor]| {
            let m = reduce::extreme_dim(&t[0], 1, true, true)?.0;
            let s = reduce::sum(&unary::exp(&arith::sub(&t[0], &m)?)?, Some(&[1]), false, None)?;
            arith::add(&unary::log(&s)?, &view::squeeze(&m, Some(1))?)
        },
        &[uniform(&[3, 4], 906)],
    );
    // normalised vectors: x / ||x|| per row, through views
    c.both(
        "row normalise",
        |t: &[Tensor]| {
            let n = reduce::norm(&t[0], 2.0, Some(&[1]), false)?;
            arith::div(&t[0], &view::unsqueeze(&n, 1)?)
        },
        &[away(&[3, 4], 907)],
    );
    // sigmoid(relu(x) * sqrt(y)) with broadcasting
    c.both(
        "sigmoid(relu(x) * sqrt(y))",
        |t: &[Tensor]| unary::sigmoid(&arith::mul(&unary::relu(&t[0])?, &unary::sqrt(&t[1])?)?),
        &[away(&[2, 3], 908), positive(&[3], 909)],
    );
    c.finish();
}

/// Second derivatives in closed form: the gradient of `sum(grad(sum(f(x) * v), x) * w)`.
fn second_order(
    f: impl Fn(&Tensor) -> Result<Tensor>,
    xv: &[f64],
    v: &[f64],
    w: &[f64],
) -> std::result::Result<Vec<f64>, String> {
    let x = common::leaf(xv, &[xv.len()]);
    let run = || -> Result<Vec<f64>> {
        let y = f(&x)?;
        let l = reduce::sum(&arith::mul(&y, &t64(v, &[v.len()]))?, None, false, None)?;
        let g = engine::grad(&[l], &[], std::slice::from_ref(&x), true, true, false)?[0].clone().expect("used");
        let m = reduce::sum(&arith::mul(&g, &t64(w, &[w.len()]))?, None, false, None)?;
        let h = engine::grad(&[m], &[], std::slice::from_ref(&x), false, false, false)?[0].clone().expect("used");
        Ok(values(&h))
    };
    run().map_err(|e| e.to_string())
}

#[test]
fn second_order_closed_forms() {
    type Op = fn(&Tensor) -> Result<Tensor>;
    let cases: [(&str, Op, fn(f64) -> f64); 8] = [
        // d^2 exp(x) = exp(x)
        ("exp", unary::exp, f64::exp),
        // d^2 sin(x) = -sin(x)
        ("sin", unary::sin, |x| -x.sin()),
        // d^2 cos(x) = -cos(x)
        ("cos", unary::cos, |x| -x.cos()),
        // d^2 ln(x) = -1/x^2
        ("log", unary::log, |x| -1.0 / (x * x)),
        // d^2 sqrt(x) = -1 / (4 x^(3/2))
        ("sqrt", unary::sqrt, |x| -0.25 / x.powf(1.5)),
        // d^2 tanh(x) = -2 tanh(x) (1 - tanh(x)^2)
        ("tanh", unary::tanh, |x| -2.0 * x.tanh() * (1.0 - x.tanh() * x.tanh())),
        // d^2 sigmoid(x) = s (1 - s) (1 - 2 s)
        ("sigmoid", unary::sigmoid, |x| {
            let s = 1.0 / (1.0 + (-x).exp());
            s * (1.0 - s) * (1.0 - 2.0 * s)
        }),
        // d^2 (1/x) = 2 / x^3
        ("reciprocal", arith::reciprocal, |x| 2.0 / (x * x * x)),
    ];
    let mut c = Checks::new();
    let xv = values(&positive(&[4], 950));
    let v = values(&uniform(&[4], 951));
    let w = values(&uniform(&[4], 952));
    for (name, op, d2) in cases {
        c.custom(&format!("{name} second derivative"), || {
            let got = second_order(op, &xv, &v, &w)?;
            let e: Vec<f64> = (0..4).map(|i| v[i] * w[i] * d2(xv[i])).collect();
            common::assert_close(name, &got, &e);
            Ok(())
        });
    }
    // d^2 x^3 = 6x
    c.custom("pow_scalar 3 second derivative", || {
        let got = second_order(|x| pow::pow_scalar(x, Scalar::Int(3)), &xv, &v, &w)?;
        common::assert_close("x^3", &got, &(0..4).map(|i| v[i] * w[i] * 6.0 * xv[i]).collect::<Vec<_>>());
        Ok(())
    });
    // mixed second derivative of sum((AB) * V): with gA = V B^T, d sum(gA * W)/dB = W^T V
    c.custom("mm mixed second derivative", || {
        let (a, b) = (
            common::leaf(&values(&uniform(&[2, 3], 953)), &[2, 3]),
            common::leaf(&values(&uniform(&[3, 4], 954)), &[3, 4]),
        );
        let (vv, wv) = (values(&uniform(&[2, 4], 955)), values(&uniform(&[2, 3], 956)));
        let run = || -> Result<Vec<f64>> {
            let l = reduce::sum(&arith::mul(&linalg::mm(&a, &b)?, &t64(&vv, &[2, 4]))?, None, false, None)?;
            let ga = engine::grad(&[l], &[], std::slice::from_ref(&a), true, true, false)?[0].clone().expect("used");
            let m = reduce::sum(&arith::mul(&ga, &t64(&wv, &[2, 3]))?, None, false, None)?;
            let gb = engine::grad(&[m], &[], std::slice::from_ref(&b), false, false, false)?[0].clone().expect("used");
            Ok(values(&gb))
        };
        let got = run().map_err(|e| e.to_string())?;
        common::assert_close("W^T V", &got, &matmul_ref(&transpose_ref(&wv, 2, 3), &vv, 3, 2, 4));
        Ok(())
    });
    c.finish();
}
