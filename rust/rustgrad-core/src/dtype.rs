//! Element types and PyTorch's type-promotion rules.

use std::fmt;

/// The element type of a tensor. The discriminants are stable codes (graph metadata packs them
/// into a word), so new dtypes take new numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// `torch.bool`.
    Bool = 0,
    /// `torch.int64` (`torch.long`).
    I64 = 1,
    /// `torch.float32` (`torch.float`), the default floating-point type.
    F32 = 2,
    /// `torch.float64` (`torch.double`).
    F64 = 3,
    /// `torch.uint8`.
    U8 = 4,
    /// `torch.int8`.
    I8 = 5,
    /// `torch.int16`.
    I16 = 6,
    /// `torch.int32`.
    I32 = 7,
    /// `torch.float16` (`torch.half`).
    F16 = 8,
    /// `torch.bfloat16`.
    BF16 = 9,
}

/// Every dtype, in PyTorch's ScalarType order.
pub const ALL_DTYPES: [DType; 10] = [
    DType::U8,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::F16,
    DType::F32,
    DType::F64,
    DType::Bool,
    DType::BF16,
];

/// The dtype floating-point results default to before any `set_default_dtype` call.
pub const DEFAULT_FLOAT: DType = DType::F32;

static DEFAULT_FLOAT_CODE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(DType::F32 as u8);

/// The dtype floating-point results default to (`torch.get_default_dtype()`); process-wide, as
/// in PyTorch.
#[inline]
pub fn default_float() -> DType {
    DType::from_code(DEFAULT_FLOAT_CODE.load(std::sync::atomic::Ordering::Relaxed))
}

/// Sets the default floating-point dtype (`torch.set_default_dtype`); only float32 and float64
/// (and the half types) are accepted by the binding.
pub fn set_default_float(dtype: DType) {
    DEFAULT_FLOAT_CODE.store(dtype as u8, std::sync::atomic::Ordering::Relaxed);
}

/// How PyTorch groups dtypes for promotion and casting: a value may be written into a tensor of
/// the same or a higher category only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// `bool`.
    Bool,
    /// The integer dtypes.
    Integral,
    /// The floating-point dtypes.
    Floating,
}

impl DType {
    /// The inverse of `dtype as u8`.
    #[inline]
    pub fn from_code(code: u8) -> DType {
        match code {
            0 => DType::Bool,
            1 => DType::I64,
            2 => DType::F32,
            3 => DType::F64,
            4 => DType::U8,
            5 => DType::I8,
            6 => DType::I16,
            7 => DType::I32,
            8 => DType::F16,
            _ => DType::BF16,
        }
    }

    /// PyTorch's name without the `torch.` prefix (`float32`, `int64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// The legacy type name used in some PyTorch messages (`torch.FloatTensor`).
    pub fn legacy_name(self) -> &'static str {
        match self {
            DType::Bool => "torch.BoolTensor",
            DType::U8 => "torch.ByteTensor",
            DType::I8 => "torch.CharTensor",
            DType::I16 => "torch.ShortTensor",
            DType::I32 => "torch.IntTensor",
            DType::I64 => "torch.LongTensor",
            DType::F16 => "torch.HalfTensor",
            DType::BF16 => "torch.BFloat16Tensor",
            DType::F32 => "torch.FloatTensor",
            DType::F64 => "torch.DoubleTensor",
        }
    }

    /// PyTorch's ScalarType name, used in many messages (`Float`, `Double`, `Long`, `Bool`).
    pub fn scalar_type_name(self) -> &'static str {
        match self {
            DType::Bool => "Bool",
            DType::U8 => "Byte",
            DType::I8 => "Char",
            DType::I16 => "Short",
            DType::I32 => "Int",
            DType::I64 => "Long",
            DType::F16 => "Half",
            DType::BF16 => "BFloat16",
            DType::F32 => "Float",
            DType::F64 => "Double",
        }
    }

    /// The C++ scalar type name PyTorch uses in some messages (`float`, `double`).
    pub fn name_cpp(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "unsigned char",
            DType::I8 => "signed char",
            DType::I16 => "short int",
            DType::I32 => "int",
            DType::I64 => "long int",
            DType::F16 => "c10::Half",
            DType::BF16 => "c10::BFloat16",
            DType::F32 => "float",
            DType::F64 => "double",
        }
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    /// Whether this is a floating-point dtype.
    #[inline]
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// The 16-bit floats, which PyTorch's CPU kernels compute in float32 and round once.
    #[inline]
    pub fn is_half(self) -> bool {
        matches!(self, DType::F16 | DType::BF16)
    }

    /// The integer dtypes (not bool).
    #[inline]
    pub fn is_integral(self) -> bool {
        matches!(self, DType::U8 | DType::I8 | DType::I16 | DType::I32 | DType::I64)
    }

    /// bool, integral or floating.
    #[inline]
    pub fn category(self) -> Category {
        if self == DType::Bool {
            Category::Bool
        } else if self.is_float() {
            Category::Floating
        } else {
            Category::Integral
        }
    }

    /// The dtype PyTorch computes `self op other` in: bool < integers < floats; within
    /// integers the wider wins and uint8 with a signed type needs the next signed width
    /// (`uint8 + int8` is int16); float16 with bfloat16 is float32.
    pub fn promote(self, other: DType) -> DType {
        use DType::*;
        if self == other {
            return self;
        }
        match (self.category(), other.category()) {
            (Category::Bool, _) => other,
            (_, Category::Bool) => self,
            (Category::Integral, Category::Floating) => other,
            (Category::Floating, Category::Integral) => self,
            (Category::Integral, Category::Integral) => {
                let width = |d: DType| match d {
                    U8 | I8 => 1,
                    I16 => 2,
                    I32 => 3,
                    _ => 4,
                };
                let (wa, wb) = (width(self), width(other));
                let w = if (self == U8 || other == U8) && wa == wb { 2 } else { wa.max(wb) };
                match w {
                    2 => I16,
                    3 => I32,
                    _ => I64,
                }
            }
            _ => {
                let rank = |d: DType| match d {
                    F16 | BF16 => 1,
                    F32 => 2,
                    _ => 3,
                };
                let (ra, rb) = (rank(self), rank(other));
                if ra == rb {
                    F32
                } else if ra > rb {
                    self
                } else {
                    other
                }
            }
        }
    }

    /// Whether a result of this dtype may be written into a tensor of `target` (PyTorch's
    /// `canCast`: never to a lower category).
    #[inline]
    pub fn can_cast_to(self, target: DType) -> bool {
        self.category() <= target.category()
    }

    /// The float type an op on this type computes in (`exp` of an int tensor is the default
    /// float type).
    #[inline]
    pub fn to_float(self) -> DType {
        if self.is_float() {
            self
        } else {
            default_float()
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
    /// The operand's dtype.
    pub dtype: DType,
    /// The operand's number of dimensions (0 for a number).
    pub ndim: usize,
    /// A Python number wrapped into a 0-d tensor (`x * 2`).
    pub wrapped: bool,
}

/// PyTorch's `result_type`: tensors with dimensions win over 0-d tensors, which win over
/// Python numbers, unless the lower-priority operand is of a higher category (bool < int < float).
pub fn result_type(inputs: &[PromotionInput]) -> DType {
    // The usual pairs, decided at once: two tensors of one dtype, or a float tensor and a number.
    if let [a, b] = inputs {
        match (a.wrapped, b.wrapped) {
            (false, false) if a.dtype == b.dtype => return a.dtype,
            (false, true) if a.dtype.is_float() => return a.dtype,
            (true, false) if b.dtype.is_float() => return b.dtype,
            _ => {}
        }
    }
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
        let dtype = if input.wrapped && input.dtype.is_float() { default_float() } else { input.dtype };
        *slot = Some(slot.map_or(dtype, |d| d.promote(dtype)));
    }
    combine_categories(dim, combine_categories(zero, wrapped)).unwrap_or_else(default_float)
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
    /// The [`DType`] of tensors holding this type.
    const DTYPE: DType;
    /// The value as `f64`.
    fn to_f64(self) -> f64;
    /// The `f64` converted to this type.
    fn from_f64(v: f64) -> Self;
    /// The value as `i64`.
    fn to_i64(self) -> i64;
    /// The `i64` converted to this type.
    fn from_i64(v: i64) -> Self;
    /// The value as a bool (non-zero is true).
    fn to_bool(self) -> bool;
    /// `true` as 1, `false` as 0, in this type.
    fn from_bool(v: bool) -> Self;
    /// Zero of this type.
    fn zero() -> Self;
    /// One of this type.
    fn one() -> Self;
    /// Converts from any other element type the way PyTorch's `.to(dtype)` does: integers
    /// convert exactly to wider integers and wrap into narrower ones; integers become floats
    /// with one rounding; floats truncate towards zero into integers.
    #[inline]
    fn cast_from<S: Element>(v: S) -> Self {
        match Self::DTYPE.category() {
            Category::Bool => Self::from_bool(v.to_bool()),
            Category::Integral if S::DTYPE.is_float() => Self::from_f64(v.to_f64()),
            Category::Integral => Self::from_i64(v.to_i64()),
            Category::Floating if S::DTYPE.is_integral() => Self::from_i64(v.to_i64()),
            Category::Floating => Self::from_f64(v.to_f64()),
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

/// A float converted to a 32-bit or narrower integer as x86's 32-bit truncating conversion
/// does (what PyTorch's CPU casts compile to): out-of-range values and NaN become `i32::MIN`,
/// whose low bits the narrower types keep.
#[inline]
pub fn float_to_i32(v: f64) -> i32 {
    if v.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        i32::MIN
    } else {
        v as i32
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
                if S::DTYPE.is_integral() {
                    v.to_i64() as $t
                } else {
                    v.to_f64() as $t
                }
            }
        }
    };
}
impl_float_element!(f32, DType::F32);
impl_float_element!(f64, DType::F64);

/// The 16-bit floats: stored as `half`'s types; every conversion goes through float32, as
/// PyTorch's `c10::Half`/`c10::BFloat16` do (so a float64 value is rounded twice).
macro_rules! impl_half_element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline]
            fn to_f64(self) -> f64 {
                self.to_f32() as f64
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                <$t>::from_f32(v as f32)
            }
            #[inline]
            fn to_i64(self) -> i64 {
                float_to_i64(self.to_f32() as f64)
            }
            #[inline]
            fn from_i64(v: i64) -> Self {
                <$t>::from_f32(v as f32)
            }
            #[inline]
            fn to_bool(self) -> bool {
                self.to_f32() != 0.0
            }
            #[inline]
            fn from_bool(v: bool) -> Self {
                if v {
                    <$t>::ONE
                } else {
                    <$t>::ZERO
                }
            }
            #[inline]
            fn zero() -> Self {
                <$t>::ZERO
            }
            #[inline]
            fn one() -> Self {
                <$t>::ONE
            }
        }
    };
}
impl_half_element!(half::f16, DType::F16);
impl_half_element!(half::bf16, DType::BF16);

macro_rules! impl_int_element {
    ($t:ty, $d:expr, $from_float:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                let convert: fn(f64) -> $t = $from_float;
                convert(v)
            }
            #[inline]
            fn to_i64(self) -> i64 {
                self as i64
            }
            #[inline]
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            #[inline]
            fn to_bool(self) -> bool {
                self != 0
            }
            #[inline]
            fn from_bool(v: bool) -> Self {
                v as $t
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
    };
}
impl_int_element!(i64, DType::I64, float_to_i64);
impl_int_element!(i32, DType::I32, float_to_i32);
impl_int_element!(i16, DType::I16, |v| float_to_i32(v) as i16);
impl_int_element!(i8, DType::I8, |v| float_to_i32(v) as i8);
// uint8 from a float goes through x86's 64-bit conversion, the signed types through 32 bits.
impl_int_element!(u8, DType::U8, |v| float_to_i64(v) as u8);

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
    /// `e^x`.
    fn exp(self) -> Self;
    /// The natural logarithm.
    fn ln(self) -> Self;
    /// The square root.
    fn sqrt(self) -> Self;
    /// The absolute value.
    fn abs(self) -> Self;
    /// The sine.
    fn sin(self) -> Self;
    /// The cosine.
    fn cos(self) -> Self;
    /// The hyperbolic tangent.
    fn tanh(self) -> Self;
    /// `self^e`.
    fn powf(self, e: Self) -> Self;
    /// Whether the value is NaN.
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

/// The 16-bit floats compute each function in float32 and round the result once. Kernels that
/// chain several steps route these dtypes through float32 as a whole (see `kernels::via_f32`),
/// so this per-step form is only the fallback of generic code.
macro_rules! impl_half_float {
    ($t:ty) => {
        impl Float for $t {
            #[inline]
            fn exp(self) -> Self {
                <$t>::from_f32(self.to_f32().exp())
            }
            #[inline]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::from_f32(self.to_f32().mul_add(a.to_f32(), b.to_f32()))
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::from_f32(self.to_f32().ln())
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::from_f32(self.to_f32().sqrt())
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::from_f32(self.to_f32().abs())
            }
            #[inline]
            fn sin(self) -> Self {
                <$t>::from_f32(self.to_f32().sin())
            }
            #[inline]
            fn cos(self) -> Self {
                <$t>::from_f32(self.to_f32().cos())
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::from_f32(self.to_f32().tanh())
            }
            #[inline]
            fn powf(self, e: Self) -> Self {
                <$t>::from_f32(self.to_f32().powf(e.to_f32()))
            }
            #[inline]
            fn is_nan(self) -> bool {
                self.to_f32().is_nan()
            }
        }
    };
}
impl_half_float!(half::f16);
impl_half_float!(half::bf16);

/// Runs `$body` with `$T` bound to the Rust type of `$dtype` (every dtype).
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
            $crate::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::DType::I8 => {
                type $T = i8;
                $body
            }
            $crate::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::DType::F16 => {
                type $T = $crate::half::f16;
                $body
            }
            $crate::DType::BF16 => {
                type $T = $crate::half::bf16;
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
            $crate::DType::F16 => {
                type $T = $crate::half::f16;
                $body
            }
            $crate::DType::BF16 => {
                type $T = $crate::half::bf16;
                $body
            }
            _ => {
                type $T = f32;
                $body
            }
        }
    };
}

/// Runs `$body` with `$T` bound to the Rust type of an integral `$dtype` (int64 for others,
/// which callers rule out first).
#[macro_export]
macro_rules! with_int {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::DType::I8 => {
                type $T = i8;
                $body
            }
            $crate::DType::U8 => {
                type $T = u8;
                $body
            }
            _ => {
                type $T = i64;
                $body
            }
        }
    };
}

/// Runs `$body` with `$T` bound to `f64` for float64 and `f32` otherwise: for fast paths the
/// caller has limited to float32 and float64.
#[macro_export]
macro_rules! with_single_or_double {
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
pub const FLOATS: &[DType] = &[DType::F32, DType::F64, DType::F16, DType::BF16];
/// The dtypes of PyTorch's kernels for every type but bool.
pub const NUMBERS: &[DType] =
    &[DType::U8, DType::I8, DType::I16, DType::I32, DType::I64, DType::F32, DType::F64, DType::F16, DType::BF16];

/// Checks that a Python number written into a tensor of `dtype` (`fill_`, `masked_fill`,
/// `t[i] = v`, `full`) fits it, as PyTorch does: NaN, infinities and out-of-range values
/// cannot become int64, and finite values beyond float32's range cannot become float32.
pub fn check_fits(value: f64, dtype: DType) -> crate::error::Result<()> {
    // A signed integer type of `bits` holds [-2^(bits-1), 2^(bits-1)) after truncation.
    let signed = |bits: i32| {
        let end = 2f64.powi(bits - 1);
        value.is_finite() && value >= -end && value < end
    };
    let (fits, ctype) = match dtype {
        DType::I64 => (signed(64), "int64_t"),
        DType::I32 => (signed(32), "int"),
        DType::I16 => (signed(16), "int16_t"),
        DType::I8 => (signed(8), "int8_t"),
        // uint8 also takes the negative whole numbers down to -255 (they wrap).
        DType::U8 => (
            value.is_finite() && value < 256.0 && (value >= 0.0 || (value.fract() == 0.0 && value >= -255.0)),
            "uint8_t",
        ),
        DType::F32 => (!value.is_finite() || value.abs() <= f32::MAX as f64, "float"),
        DType::F16 => (!value.is_finite() || value.abs() <= half::f16::MAX.to_f64(), "c10::Half"),
        DType::BF16 => (!value.is_finite() || value.abs() <= half::bf16::MAX.to_f64(), "c10::BFloat16"),
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

    #[test]
    fn narrow_types_promote_as_pytorch() {
        use DType::*;
        assert_eq!(U8.promote(I8), I16);
        assert_eq!(I8.promote(U8), I16);
        assert_eq!(U8.promote(I16), I16);
        assert_eq!(U8.promote(I32), I32);
        assert_eq!(I16.promote(I64), I64);
        assert_eq!(F16.promote(BF16), F32);
        assert_eq!(BF16.promote(I64), BF16);
        assert_eq!(Bool.promote(U8), U8);
        assert_eq!(F16.promote(F64), F64);
        // a 0-d float16 wins over an int32 tensor; a 0-d int64 does not widen int8
        assert_eq!(result_type(&[p(I32, 1, false), p(F16, 0, false)]), F16);
        assert_eq!(result_type(&[p(I8, 1, false), p(I64, 0, false)]), I8);
        assert!(I32.can_cast_to(U8) && !F16.can_cast_to(I64) && !I8.can_cast_to(Bool));
    }

    #[test]
    fn casts_wrap_and_truncate_as_pytorch() {
        assert_eq!(i8::cast_from(300.0f64), 44);
        assert_eq!(u8::cast_from(-1.0f64), 255);
        assert_eq!(u8::cast_from(5_000_000_001.0f64), 1);
        assert_eq!(i8::cast_from(5_000_000_001.0f64), 0);
        assert_eq!(i32::cast_from(1e10f64), i32::MIN);
        assert_eq!(i8::cast_from(300i64), 44);
        assert_eq!(half::f16::cast_from(0.1f64).to_f64(), 0.0999755859375);
        assert_eq!(half::bf16::cast_from(0.1f64).to_f64(), 0.10009765625);
        assert!(check_fits(-129.0, DType::U8).is_ok() && check_fits(-0.5, DType::U8).is_err());
        assert!(check_fits(127.99, DType::I8).is_ok() && check_fits(128.0, DType::I8).is_err());
    }
}
