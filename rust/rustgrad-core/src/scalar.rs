//! Python numbers as op arguments.

use crate::dtype::{DType, PromotionInput};
use crate::tensor::Tensor;

/// A number argument (`x * 2`, `x ** 0.5`), kept with its kind for type promotion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    /// A bool.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
}

impl Scalar {
    /// The number as `f64` (bools as 0 or 1).
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => b as i64 as f64,
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
        }
    }

    /// The dtype a tensor holding the number would have (bool, int64 or float64).
    pub fn dtype(self) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::Int(_) => DType::I64,
            Scalar::Float(_) => DType::F64,
        }
    }

    /// What the number contributes to type promotion (a wrapped number).
    pub fn promotion_input(self) -> PromotionInput {
        PromotionInput { dtype: self.dtype(), ndim: 0, wrapped: true }
    }

    /// The number as a wrapped 0-d tensor.
    pub fn to_tensor(self) -> Tensor {
        match self {
            Scalar::Bool(b) => Tensor::wrapped_scalar(b),
            Scalar::Int(i) => Tensor::wrapped_scalar(i),
            Scalar::Float(f) => Tensor::wrapped_scalar(f),
        }
    }

    /// `self - 1`, keeping integers integral.
    pub fn minus_one(self) -> Scalar {
        match self {
            Scalar::Bool(b) => Scalar::Int(b as i64 - 1),
            Scalar::Int(i) => Scalar::Int(i - 1),
            Scalar::Float(f) => Scalar::Float(f - 1.0),
        }
    }
}

/// A double as PyTorch's messages print it (C++ stream defaults: six significant digits,
/// `%g` style): `-1`, `0.5`, `1e+300`, `-1.23457e+08`, `nan`, `inf`.
pub fn fmt_double(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    const DIGITS: i32 = 6;
    // The decimal exponent after rounding to six significant digits decides the notation.
    let sci = format!("{:.*e}", (DIGITS - 1) as usize, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..DIGITS).contains(&exp) {
        strip_zeros(&format!("{:.*}", (DIGITS - 1 - exp) as usize, v))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip_zeros(mantissa), exp.abs())
    }
}

/// `1.500` -> `1.5`, `2.000` -> `2` (numbers without a point are left alone).
fn strip_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_double;

    #[test]
    fn doubles_print_as_cpp_streams_do() {
        let cases = [
            (-1.0, "-1"),
            (0.5, "0.5"),
            (1e300, "1e+300"),
            (-0.123456789, "-0.123457"),
            (-123456789.0, "-1.23457e+08"),
            (-1e-5, "-1e-05"),
            (1.0000001, "1"),
            (123456.0, "123456"),
            (999999.5, "1e+06"),
            (0.0001, "0.0001"),
            (3e38, "3e+38"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (v, want) in cases {
            assert_eq!(fmt_double(v), want, "{v}");
        }
    }
}
