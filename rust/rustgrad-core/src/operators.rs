//! Arithmetic operators on `&Tensor`: `&a + &b`, `&a * 2.0`, `2.0 - &a`, `-&a`.
//!
//! # Convention
//! Every operator returns [`Result<Tensor>`](crate::Result), the crate's error model: an
//! operation can fail (shapes that do not broadcast, `-` on a bool tensor, ...), and the failure
//! comes back as an `Err` carrying PyTorch's message. Use `?` between steps:
//!
//! ```
//! use rustgrad_core::Tensor;
//! # fn main() -> rustgrad_core::Result<()> {
//! let a = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?;
//! let b = Tensor::from_vec(vec![3.0f32, 4.0], &[2])?;
//! let c = (&(&a * &b)? + 1.0)?; // a * b + 1
//! assert_eq!(c.to_vec::<f32>(), vec![4.0, 9.0]);
//! let d = (2.0 / &(-&c)?)?; // 2 / -c
//! assert_eq!(d.to_vec::<f32>(), vec![-0.5, 2.0 / -9.0]);
//! # Ok(())
//! # }
//! ```
//!
//! Each operator is the op of [`crate::ops::arith`] that PyTorch's Python operator calls, so it
//! records the same backward node: `&a + &b` is [`arith::add`]
//! (`AddBackward0`), `2.0 - &a` is [`arith::rsub_scalar`]
//! (`RsubBackward1`), `2.0 / &a` is `a.reciprocal() * 2` (`MulBackward0`), as in PyTorch.
//! An `f64` operand is a wrapped number ([`Tensor::wrapped_scalar`]): like a Python number,
//! it does not widen the tensor's dtype (`float32 * 2.0` stays float32).

use crate::ops::arith;
use crate::{Result, Tensor};
use std::ops::{Add, Div, Mul, Neg, Sub};

/// `&a <op> &b`, `&a <op> f64`: the op with the tensor on the left.
macro_rules! tensor_operator {
    ($trait:ident, $method:ident, $op:path, $what:literal) => {
        #[doc = concat!("`&a ", $what, " &b`: [`", stringify!($op), "`], broadcasting; errors come back as `Err`.")]
        impl $trait<&Tensor> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                $op(self, rhs)
            }
        }
        #[doc = concat!("`&a ", $what, " x` for a number `x` (a wrapped scalar: the dtype of `a` wins).")]
        impl $trait<f64> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: f64) -> Result<Tensor> {
                $op(self, &Tensor::wrapped_scalar(rhs))
            }
        }
    };
}

tensor_operator!(Add, add, arith::add, "+");
tensor_operator!(Sub, sub, arith::sub, "-");
tensor_operator!(Mul, mul, arith::mul, "*");
tensor_operator!(Div, div, arith::div, "/");

/// `x + &a`: the tensor goes first, as PyTorch computes `x + a` as `a.add(x)`.
impl Add<&Tensor> for f64 {
    type Output = Result<Tensor>;
    fn add(self, rhs: &Tensor) -> Result<Tensor> {
        arith::add(rhs, &Tensor::wrapped_scalar(self))
    }
}

/// `x - &a`: [`arith::rsub_scalar`] (`RsubBackward1`).
impl Sub<&Tensor> for f64 {
    type Output = Result<Tensor>;
    fn sub(self, rhs: &Tensor) -> Result<Tensor> {
        arith::rsub_scalar(rhs, &Tensor::wrapped_scalar(self), 1.0)
    }
}

/// `x * &a`: the tensor goes first, as PyTorch computes `x * a` as `a.mul(x)`.
impl Mul<&Tensor> for f64 {
    type Output = Result<Tensor>;
    fn mul(self, rhs: &Tensor) -> Result<Tensor> {
        arith::mul(rhs, &Tensor::wrapped_scalar(self))
    }
}

/// `x / &a`: `a.reciprocal() * x`, as PyTorch computes it.
impl Div<&Tensor> for f64 {
    type Output = Result<Tensor>;
    fn div(self, rhs: &Tensor) -> Result<Tensor> {
        arith::mul(&arith::reciprocal(rhs)?, &Tensor::wrapped_scalar(self))
    }
}

/// `-&a`: [`arith::neg`] (an error for a bool tensor, as in PyTorch).
impl Neg for &Tensor {
    type Output = Result<Tensor>;
    fn neg(self) -> Result<Tensor> {
        arith::neg(self)
    }
}

#[cfg(test)]
mod tests {
    use crate::{engine, Tensor};

    fn leaf(v: &[f64]) -> Tensor {
        let t = Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap();
        t.set_requires_grad(true).unwrap();
        t
    }

    #[test]
    fn operators_match_the_named_ops_and_record_their_nodes() {
        let a = leaf(&[1.0, 2.0]);
        let b = leaf(&[4.0, 8.0]);
        let name = |t: &Tensor| t.grad_fn().map(|n| n.name()).unwrap_or("");
        assert_eq!((&a + &b).unwrap().to_vec::<f64>(), vec![5.0, 10.0]);
        assert_eq!(name(&(&a - &b).unwrap()), "SubBackward0");
        assert_eq!((&a * 3.0).unwrap().to_vec::<f64>(), vec![3.0, 6.0]);
        assert_eq!((3.0 - &a).unwrap().to_vec::<f64>(), vec![2.0, 1.0]);
        assert_eq!(name(&(3.0 - &a).unwrap()), "RsubBackward1");
        assert_eq!((4.0 / &b).unwrap().to_vec::<f64>(), vec![1.0, 0.5]);
        assert_eq!(name(&(4.0 / &b).unwrap()), "MulBackward0");
        assert_eq!((-&a).unwrap().to_vec::<f64>(), vec![-1.0, -2.0]);
        // d/da sum(a * b + 1 / b) = b, d/db = a - 1 / b^2
        let y = (&(&a * &b).unwrap() + &(1.0 / &b).unwrap()).unwrap();
        let s = crate::ops::reduce::sum(&y, None, false, None).unwrap();
        engine::backward(&[s], &[None], false, false, None).unwrap();
        assert_eq!(a.grad().unwrap().to_vec::<f64>(), vec![4.0, 8.0]);
        assert_eq!(b.grad().unwrap().to_vec::<f64>(), vec![1.0 - 1.0 / 16.0, 2.0 - 1.0 / 64.0]);
    }

    #[test]
    fn operators_report_errors_instead_of_panicking() {
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
        let b = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
        assert!((&a + &b).is_err());
        assert!((-&Tensor::from_vec(vec![true], &[1]).unwrap()).is_err());
        // a number does not widen float32
        assert_eq!((&a * 2.0).unwrap().dtype(), crate::DType::F32);
    }
}
