//! Element types and PyTorch's type-promotion rules.

use std::fmt;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    Bool,
    I64,
    F32,
    F64,
}

/// The dtype floating-point results default to (`torch.get_default_dtype()`).
pub const DEFAULT_FLOAT: DType = DType::F32;

impl DType {
    /// The inverse of `dtype as u8`.
    pub fn from_code(code: u8) -> DType {
        match code {
            0 => DType::Bool,
            1 => DType::I64,
            2 => DType::F32,
            _ => DType::F64,
        }
    }

    /// PyTorch's name without the `torch.` prefix (`float32`, `int64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I64 => "int64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// The legacy type name used in some PyTorch messages (`torch.FloatTensor`).
    pub fn legacy_name(self) -> &'static str {
        match self {
            DType::Bool => "torch.BoolTensor",
            DType::I64 => "torch.LongTensor",
            DType::F32 => "torch.FloatTensor",
            DType::F64 => "torch.DoubleTensor",
        }
    }

    /// PyTorch's ScalarType name, used in many messages (`Float`, `Double`, `Long`, `Bool`).
    pub fn scalar_type_name(self) -> &'static str {
        match self {
            DType::Bool => "Bool",
            DType::I64 => "Long",
            DType::F32 => "Float",
            DType::F64 => "Double",
        }
    }

    /// The C++ scalar type name PyTorch uses in some messages (`float`, `double`).
    pub fn name_cpp(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I64 => "long int",
            DType::F32 => "float",
            DType::F64 => "double",
        }
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Bool => 1,
            DType::I64 | DType::F64 => 8,
            DType::F32 => 4,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The smallest type both values fit in (bool < int64 < float32 < float64).
    pub fn promote(self, other: DType) -> DType {
        self.max(other)
    }

    /// The float type an op on this type computes in (`exp` of an int tensor is float32).
    pub fn to_float(self) -> DType {
        if self.is_float() {
            self
        } else {
            DEFAULT_FLOAT
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "torch.{}", self.name())
    }
}

/// What one operand contributes to PyTorch's result-type computation.
#[derive(Clone, Copy, Debug)]
pub struct PromotionInput {
    pub dtype: DType,
    pub ndim: usize,
    /// A Python number wrapped into a 0-d tensor (`x * 2`).
    pub wrapped: bool,
}

/// PyTorch's `result_type`: tensors with dimensions win over 0-d tensors, which win over
/// Python numbers, unless the lower-priority operand is of a higher category (bool < int < float).
pub fn result_type(inputs: &[PromotionInput]) -> DType {
    let mut dim: Option<DType> = None;
    let mut zero: Option<DType> = None;
    let mut wrapped: Option<DType> = None;
    for input in inputs {
        let slot = if input.wrapped {
            &mut wrapped
        } else if input.ndim > 0 {
            &mut dim
        } else {
            &mut zero
        };
        let dtype = if input.wrapped && input.dtype.is_float() { DEFAULT_FLOAT } else { input.dtype };
        *slot = Some(slot.map_or(dtype, |d| d.promote(dtype)));
    }
    combine_categories(dim, combine_categories(zero, wrapped)).unwrap_or(DEFAULT_FLOAT)
}

fn combine_categories(higher: Option<DType>, lower: Option<DType>) -> Option<DType> {
    match (higher, lower) {
        (None, l) => l,
        (Some(h), None) => Some(h),
        (Some(h), Some(l)) => {
            if h.is_float() {
                Some(h)
            } else if h == DType::Bool || l.is_float() {
                Some(h.promote(l))
            } else {
                Some(h)
            }
        }
    }
}

/// A Rust type a tensor can hold.
pub trait Element: Copy + Send + Sync + PartialOrd + fmt::Debug + 'static {
    const DTYPE: DType;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    fn to_i64(self) -> i64;
    fn from_i64(v: i64) -> Self;
    fn to_bool(self) -> bool;
    fn from_bool(v: bool) -> Self;
    fn zero() -> Self;
    fn one() -> Self;
    /// Converts from any other element type the way PyTorch's `.to(dtype)` does.
    fn cast_from<S: Element>(v: S) -> Self {
        match Self::DTYPE {
            DType::Bool => Self::from_bool(v.to_bool()),
            DType::I64 => Self::from_i64(v.to_i64()),
            _ => Self::from_f64(v.to_f64()),
        }
    }
}

/// A float converted to int64 as PyTorch's CPU kernels do (x86's truncating conversion): NaN and
/// values outside the int64 range become `i64::MIN`, not the nearest bound.
#[inline]
pub fn float_to_i64(v: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if v.is_nan() || !(-LIMIT..LIMIT).contains(&v) {
        i64::MIN
    } else {
        v as i64
    }
}

macro_rules! impl_float_element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_i64(self) -> i64 {
                float_to_i64(self as f64)
            }
            #[inline]
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            #[inline]
            fn to_bool(self) -> bool {
                self != 0.0
            }
            #[inline]
            fn from_bool(v: bool) -> Self {
                if v {
                    1.0
                } else {
                    0.0
                }
            }
            #[inline]
            fn zero() -> Self {
                0.0
            }
            #[inline]
            fn one() -> Self {
                1.0
            }
            #[inline]
            fn cast_from<S: Element>(v: S) -> Self {
                match S::DTYPE {
                    DType::I64 => v.to_i64() as $t,
                    _ => v.to_f64() as $t,
                }
            }
        }
    };
}
impl_float_element!(f32, DType::F32);
impl_float_element!(f64, DType::F64);

impl Element for i64 {
    const DTYPE: DType = DType::I64;
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        float_to_i64(v)
    }
    #[inline]
    fn to_i64(self) -> i64 {
        self
    }
    #[inline]
    fn from_i64(v: i64) -> Self {
        v
    }
    #[inline]
    fn to_bool(self) -> bool {
        self != 0
    }
    #[inline]
    fn from_bool(v: bool) -> Self {
        v as i64
    }
    #[inline]
    fn zero() -> Self {
        0
    }
    #[inline]
    fn one() -> Self {
        1
    }
}

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    #[inline]
    fn to_f64(self) -> f64 {
        self as i64 as f64
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    #[inline]
    fn to_i64(self) -> i64 {
        self as i64
    }
    #[inline]
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    #[inline]
    fn to_bool(self) -> bool {
        self
    }
    #[inline]
    fn from_bool(v: bool) -> Self {
        v
    }
    #[inline]
    fn zero() -> Self {
        false
    }
    #[inline]
    fn one() -> Self {
        true
    }
}

/// Floating-point elements: the math the float kernels need.
pub trait Float:
    Element
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
{
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn tanh(self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn is_nan(self) -> bool;
    /// `self * a + b` rounded once.
    fn mul_add(self, a: Self, b: Self) -> Self;
}

macro_rules! impl_float {
    ($t:ty) => {
        impl Float for $t {
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}
impl_float!(f32);
impl_float!(f64);

/// Runs `$body` with `$T` bound to the Rust type of `$dtype` (all four dtypes).
#[macro_export]
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::DType::Bool => {
                type $T = bool;
                $body
            }
        }
    };
}

/// Runs `$body` with `$T` bound to the Rust type of a float `$dtype`; other dtypes are
/// computed in the default float type by the caller, so reaching them here is a bug.
#[macro_export]
macro_rules! with_float {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            _ => {
                type $T = f32;
                $body
            }
        }
    };
}

/// Note [Kernels per dtype]: PyTorch compiles each kernel for a set of dtypes and raises
/// `NotImplementedError` ("\"abs_cpu\" not implemented for 'Bool'") for the others. rustgrad's
/// kernels are generic and would silently compute something; ops call this one check instead,
/// naming PyTorch's kernel so the message is the same.
#[inline]
pub fn require_kernel(kernel: &str, dtype: DType, supported: &[DType]) -> crate::error::Result<()> {
    if supported.contains(&dtype) {
        Ok(())
    } else {
        Err(crate::error::Error::kernel_missing(kernel, dtype))
    }
}

/// The dtypes of PyTorch's floating-point-only kernels.
pub const FLOATS: &[DType] = &[DType::F32, DType::F64];
/// The dtypes of PyTorch's kernels for every type but bool.
pub const NUMBERS: &[DType] = &[DType::I64, DType::F32, DType::F64];

/// Checks that a Python number written into a tensor of `dtype` (`fill_`, `masked_fill`,
/// `t[i] = v`, `full`) fits it, as PyTorch does: NaN, infinities and out-of-range values
/// cannot become int64, and finite values beyond float32's range cannot become float32.
pub fn check_fits(value: f64, dtype: DType) -> crate::error::Result<()> {
    // 2^63 is exactly representable; every i64 lies in [-2^63, 2^63).
    const I64_END: f64 = 9_223_372_036_854_775_808.0;
    let (fits, ctype) = match dtype {
        DType::I64 => (value.is_finite() && (-I64_END..I64_END).contains(&value), "int64_t"),
        DType::F32 => (!value.is_finite() || value.abs() <= f32::MAX as f64, "float"),
        DType::Bool | DType::F64 => (true, ""),
    };
    if fits {
        Ok(())
    } else {
        Err(crate::error::Error::runtime(format!("value cannot be converted to type {ctype} without overflow")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(dtype: DType, ndim: usize, wrapped: bool) -> PromotionInput {
        PromotionInput { dtype, ndim, wrapped }
    }

    #[test]
    fn promotion_follows_pytorch() {
        use DType::*;
        // float32 tensor * python float stays float32
        assert_eq!(result_type(&[p(F32, 1, false), p(F64, 0, true)]), F32);
        // int tensor * python float -> default float
        assert_eq!(result_type(&[p(I64, 1, false), p(F64, 0, true)]), F32);
        // int tensor * python int stays int
        assert_eq!(result_type(&[p(I64, 1, false), p(I64, 0, true)]), I64);
        // float32 tensor + float64 0-d tensor stays float32
        assert_eq!(result_type(&[p(F32, 1, false), p(F64, 0, false)]), F32);
        // int tensor + float64 0-d tensor -> float64
        assert_eq!(result_type(&[p(I64, 1, false), p(F64, 0, false)]), F64);
        // bool tensor + python int -> int64
        assert_eq!(result_type(&[p(Bool, 1, false), p(I64, 0, true)]), I64);
        assert_eq!(result_type(&[p(F32, 2, false), p(F64, 3, false)]), F64);
    }
}
