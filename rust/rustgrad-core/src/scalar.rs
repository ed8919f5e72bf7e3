//! Python numbers as op arguments.

use crate::dtype::{DType, PromotionInput};
use crate::tensor::Tensor;

/// A number argument (`x * 2`, `x ** 0.5`), kept with its kind for type promotion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Scalar {
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => b as i64 as f64,
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
        }
    }

    pub fn dtype(self) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::Int(_) => DType::I64,
            Scalar::Float(_) => DType::F64,
        }
    }

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
