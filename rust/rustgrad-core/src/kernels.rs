//! Raw compute kernels: no autograd here, only values in and values out.
//!
//! Every kernel returns a fresh contiguous buffer. Inputs that are contiguous and already of
//! the compute type are read in place; others are gathered (and converted) first.

use crate::dtype::{DType, Element, Float};
use crate::error::{Error, Result};
use crate::shape::{self, Shape, Strides};
use crate::storage::IntoStorage;
use crate::tensor::TensorData;
use crate::{with_dtype, with_float, with_int, with_single_or_double};
use smallvec::SmallVec;
use std::borrow::Cow;

/// The elements of `x` in row-major order as `T`, borrowed when possible.
pub fn values<T: Element>(x: &TensorData) -> Cow<'_, [T]> {
    // SAFETY: read-only; see Note [Storage aliasing].
    match unsafe { x.contiguous_slice::<T>() } {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(x.to_vec::<T>()),
    }
}

/// Note [Element-wise results keep a permuted layout]: as PyTorch's, the result of an
/// element-wise op has the layout note [Output layout] gives it, so `x.t().exp()` is
/// transposed too (and `reshape` of it copies). Such a result is computed row-major over views
/// of the operands whose dims are in the result's memory order (outermost first), then given
/// the result's strides: a dense operand in that order is read as one contiguous run.
fn memory_order(strides: &[usize]) -> SmallVec<[usize; 6]> {
    let mut order: SmallVec<[usize; 6]> = (0..strides.len()).collect();
    order.sort_by(|&i, &j| strides[j].cmp(&strides[i]));
    order
}

/// `x` broadcast to `shape` and its dims put in `order` (one value stays 0-d).
fn view_in_order(x: &TensorData, shape: &[usize], order: &[usize]) -> TensorData {
    if x.numel() == 1 {
        return x.restrided(Shape::new(), SmallVec::new(), x.offset);
    }
    let strides = shape::broadcast_strides(&x.shape, &x.strides, shape);
    x.restrided(order.iter().map(|&d| shape[d]).collect(), order.iter().map(|&d| strides[d]).collect(), x.offset)
}

/// The layout of an element-wise result over `operands`: `None` for row-major.
fn result_layout(shape: &[usize], operands: &[&TensorData]) -> Option<(Strides, SmallVec<[usize; 6]>)> {
    let pairs: SmallVec<[(&[usize], &[usize]); 3]> = operands.iter().map(|x| (&x.shape[..], &x.strides[..])).collect();
    let strides = shape::output_strides(shape, &pairs);
    if shape::is_contiguous(shape, &strides) {
        return None;
    }
    let order = memory_order(&strides);
    Some((strides, order))
}

/// A new contiguous tensor of `dtype` with the same values.
pub fn cast(x: &TensorData, dtype: DType) -> TensorData {
    with_dtype!(dtype, T => TensorData::from_vec(x.to_vec::<T>(), x.shape.clone()))
}

/// A copy of `x` in `dtype` laid out as `empty_like(x)` would be (PyTorch's preserve format:
/// a dense `x`'s strides, else a dense layout in its dim order).
pub fn cast_like(x: &TensorData, dtype: DType) -> TensorData {
    if x.is_contiguous() {
        // Row-major up to the strides of size-1 dims, which the copy keeps too.
        let out = cast(x, dtype);
        return if out.strides == x.strides { out } else { out.restrided(x.shape.clone(), x.strides.clone(), 0) };
    }
    let strides = shape::strides_like(&x.shape, &x.strides);
    let order = memory_order(&strides);
    cast(&view_in_order(x, &x.shape, &order), dtype).restrided(x.shape.clone(), strides, 0)
}

/// A contiguous copy (same dtype).
pub fn contiguous_copy(x: &TensorData) -> TensorData {
    cast(x, x.dtype())
}

/// Element-wise functions of one float argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    /// `-x`.
    Neg,
    /// `e^x`.
    Exp,
    /// Natural logarithm.
    Log,
    /// Square root.
    Sqrt,
    /// `|x|`.
    Abs,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Hyperbolic tangent.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `max(x, 0)`.
    Relu,
    /// -1, 0 or 1.
    Sign,
    /// `1 / x`.
    Reciprocal,
    /// The error function.
    Erf,
    /// Round down.
    Floor,
    /// Round up.
    Ceil,
    /// Round half to even.
    Round,
    /// `ln(1 + x)`.
    Log1p,
    /// `e^x - 1`.
    Expm1,
    /// Tangent.
    Tan,
    /// Arcsine.
    Asin,
    /// Arccosine.
    Acos,
    /// Arctangent.
    Atan,
    /// Hyperbolic sine.
    Sinh,
    /// Hyperbolic cosine.
    Cosh,
    /// `1 / sqrt(x)`.
    Rsqrt,
    /// Base-2 logarithm.
    Log2,
    /// Base-10 logarithm.
    Log10,
    /// `2^x`.
    Exp2,
    /// Round toward zero.
    Trunc,
}

#[inline(always)]
fn unary_one<T: Float>(kind: Unary, x: T) -> T {
    match kind {
        Unary::Neg => -x,
        Unary::Exp => x.exp(),
        Unary::Log => x.ln(),
        Unary::Sqrt => x.sqrt(),
        Unary::Abs => x.abs(),
        Unary::Sin => x.sin(),
        Unary::Cos => x.cos(),
        Unary::Tanh => x.tanh(),
        Unary::Sigmoid => T::one() / (T::one() + (-x).exp()),
        Unary::Relu => {
            if x > T::zero() || x.is_nan() {
                x
            } else {
                T::zero()
            }
        }
        // sign(nan) = 0 and sign(-0.0) = 0, as in PyTorch.
        Unary::Sign => {
            if x > T::zero() {
                T::one()
            } else if x < T::zero() {
                -T::one()
            } else {
                T::zero()
            }
        }
        Unary::Reciprocal => T::one() / x,
        Unary::Erf => T::from_f64(libm::erf(x.to_f64())),
        Unary::Floor => T::from_f64(x.to_f64().floor()),
        Unary::Ceil => T::from_f64(x.to_f64().ceil()),
        // Half-way cases go to the even neighbour, as in PyTorch (and numpy).
        Unary::Round => T::from_f64(x.to_f64().round_ties_even()),
        Unary::Log1p => T::from_f64(x.to_f64().ln_1p()),
        Unary::Expm1 => T::from_f64(x.to_f64().exp_m1()),
        Unary::Tan => T::from_f64(x.to_f64().tan()),
        Unary::Asin => T::from_f64(x.to_f64().asin()),
        Unary::Acos => T::from_f64(x.to_f64().acos()),
        Unary::Atan => T::from_f64(x.to_f64().atan()),
        Unary::Sinh => T::from_f64(x.to_f64().sinh()),
        Unary::Cosh => T::from_f64(x.to_f64().cosh()),
        Unary::Rsqrt => T::from_f64(1.0 / x.to_f64().sqrt()),
        Unary::Log2 => T::from_f64(x.to_f64().log2()),
        Unary::Log10 => T::from_f64(x.to_f64().log10()),
        Unary::Exp2 => T::from_f64(x.to_f64().exp2()),
        Unary::Trunc => T::from_f64(x.to_f64().trunc()),
    }
}

/// Element count from which element-wise kernels split their work across threads (PyTorch's
/// grain). The calling thread works too (Note [The caller works too]), so a split costs only
/// posting a helper job. Measured on the 2-core benchmark machine, one thread against two:
/// `x.add_(y)` of 100,000 float32 9.1 -> 6.9 us, of 1e6 269 -> 128 us; `tanh` of 100,000
/// 34.6 -> 19 us, of 1e6 383 -> 200 us. (With rayon's own parallel iterators the caller
/// slept while the pool worked: 200,000 float32 took 65 us on two threads, 22 on one.)
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

/// Whether a loop over `n` elements runs on rayon's pool: large enough, and more than one
/// intra-op thread allowed (`torch.set_num_threads(1)`, as in a `DataLoader` worker process,
/// keeps every kernel on the calling thread; a forked process has no pool threads).
#[inline]
pub(crate) fn parallel(n: usize) -> bool {
    n >= PARALLEL_THRESHOLD && crate::cascade::num_threads() > 1
}
/// Elements per parallel task.
const PARALLEL_CHUNK: usize = 1 << 14;

/// `out[i] = f(v[i])`: AVX2 when the CPU has it, split across threads for large inputs.
#[inline]
pub fn map_values<T: Copy + Send + Sync, U: Send>(v: &[T], f: impl Fn(T) -> U + Copy + Send + Sync) -> Vec<U> {
    let run = |src: &[T], dst: &mut [std::mem::MaybeUninit<U>]| map_into_simd(src, dst, f);
    let mut out: Vec<U> = crate::alloc::vec_with_capacity(v.len());
    let dst = &mut out.spare_capacity_mut()[..v.len()];
    if !parallel(v.len()) {
        run(v, dst);
    } else {
        crate::parallel::for_each_chunk_mut(dst, PARALLEL_CHUNK, |start, o| run(&v[start..start + o.len()], o));
    }
    // SAFETY: every element of the first `v.len()` was written above.
    unsafe { out.set_len(v.len()) };
    out
}

/// `out[i] = f(a[i], b[i])`: AVX2 when the CPU has it, split across threads for large inputs.
#[inline]
pub fn zip_values<T: Copy + Send + Sync, U: Send>(
    a: &[T],
    b: &[T],
    f: impl Fn(T, T) -> U + Copy + Send + Sync,
) -> Vec<U> {
    let run = |x: &[T], y: &[T], dst: &mut [std::mem::MaybeUninit<U>]| zip_into_simd(x, y, dst, f);
    let n = a.len().min(b.len());
    let mut out: Vec<U> = crate::alloc::vec_with_capacity(n);
    let dst = &mut out.spare_capacity_mut()[..n];
    if !parallel(n) {
        run(&a[..n], &b[..n], dst);
    } else {
        crate::parallel::for_each_chunk_mut(dst, PARALLEL_CHUNK, |start, o| {
            let end = start + o.len();
            run(&a[start..end], &b[start..end], o)
        });
    }
    // SAFETY: every element of the first `n` was written above.
    unsafe { out.set_len(n) };
    out
}

/// `dst[i] = f(a[i], b[i])` for slices (the loop the compiler vectorises).
#[inline(always)]
fn zip_into<T: Copy, U, F: Fn(T, T) -> U>(a: &[T], b: &[T], dst: &mut [std::mem::MaybeUninit<U>], f: F) {
    for ((o, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        o.write(f(x, y));
    }
}

/// [`zip_into`] compiled for the widest vectors the CPU has (AVX-512, AVX2, else SSE2). Every
/// width gives the same bits: the loop's operations are the same, and none is fused.
#[inline(always)]
pub(crate) fn zip_into_simd<T: Copy, U, F: Fn(T, T) -> U>(
    a: &[T],
    b: &[T],
    dst: &mut [std::mem::MaybeUninit<U>],
    f: F,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX-512F and FMA (checked just above).
            return unsafe { zip_into_avx512(a, b, dst, f) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { zip_into_avx2(a, b, dst, f) };
        }
    }
    zip_into(a, b, dst, f)
}

/// [`map_into`] compiled for the widest vectors the CPU has (see [`zip_into_simd`]).
#[inline(always)]
pub(crate) fn map_into_simd<T: Copy, U, F: Fn(T) -> U>(src: &[T], dst: &mut [std::mem::MaybeUninit<U>], f: F) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX-512F and FMA (checked just above).
            return unsafe { map_into_avx512(src, dst, f) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { map_into_avx2(src, dst, f) };
        }
    }
    map_into(src, dst, f)
}

/// [`zip_into`] compiled for AVX2 (with FMA, which only `mul_add` uses).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn zip_into_avx2<T: Copy, U, F: Fn(T, T) -> U>(a: &[T], b: &[T], dst: &mut [std::mem::MaybeUninit<U>], f: F) {
    zip_into(a, b, dst, f)
}

/// [`zip_into`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn zip_into_avx512<T: Copy, U, F: Fn(T, T) -> U>(a: &[T], b: &[T], dst: &mut [std::mem::MaybeUninit<U>], f: F) {
    zip_into(a, b, dst, f)
}

/// `dst[i] = f(src[i])` for a slice (the loop the compiler vectorises).
#[inline(always)]
fn map_into<T: Copy, U, F: Fn(T) -> U>(src: &[T], dst: &mut [std::mem::MaybeUninit<U>], f: F) {
    for (o, &x) in dst.iter_mut().zip(src) {
        o.write(f(x));
    }
}

/// [`map_into`] compiled for AVX2 (eight lanes instead of SSE2's four; same results: only
/// `mul_add` fuses, and it rounds once on every CPU).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn map_into_avx2<T: Copy, U, F: Fn(T) -> U>(src: &[T], dst: &mut [std::mem::MaybeUninit<U>], f: F) {
    map_into(src, dst, f)
}

/// [`map_into`] compiled for AVX-512 (sixteen lanes).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn map_into_avx512<T: Copy, U, F: Fn(T) -> U>(src: &[T], dst: &mut [std::mem::MaybeUninit<U>], f: F) {
    map_into(src, dst, f)
}

/// `e^(x - n ln 2)` for `n` the multiple of ln 2 nearest `x`: `r = x - n ln 2` (ln 2 in two
/// parts), then Cephes' degree-6 polynomial, with fused products.
#[inline(always)]
fn exp_reduced(x: f32, n: f32) -> f32 {
    let r = n.mul_add(2.121_944_4e-4, (-n).mul_add(0.693_359_4, x));
    let mut y = 1.987_569_1e-4f32;
    y = y.mul_add(r, 1.398_199_9e-3);
    y = y.mul_add(r, 8.333_452e-3);
    y = y.mul_add(r, 4.166_579_6e-2);
    y = y.mul_add(r, 0.166_666_65);
    y = y.mul_add(r, 0.5);
    y.mul_add(r * r, r) + 1.0
}

/// exp for f32 without a libm call, so loops over it vectorise (Cephes' `expf`: range
/// reduction by ln 2, a degree-6 polynomial, the exponent put in with bit operations; about 1
/// ulp). Products and sums are fused (`mul_add`): one rounding each, the same bits on every
/// CPU, and one instruction where the CPU has FMA (the vector kernels enable it).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const HI: f32 = 88.722_84;
    const LO: f32 = -103.972_08;
    // max/min (not clamp) turn NaN into a bound, so `c` is finite; NaN is restored below.
    #[allow(clippy::manual_clamp)] // clamp keeps NaN, which must not reach the cast below
    let c = x.max(LO).min(HI);
    // floor without a libm call (f32::floor is one only from SSE4.1 on): truncate, then step
    // down for negative non-integers.
    let t = c.mul_add(std::f32::consts::LOG2_E, 0.5);
    // SAFETY: |t| <= 151, so it fits an i32 (and the conversion vectorises, unlike `as`).
    let truncated = unsafe { t.to_int_unchecked::<i32>() } as f32;
    let n = if truncated > t { truncated - 1.0 } else { truncated };
    let y = exp_reduced(c, n);
    // 2^n in two halves, so denormal results and n = 128 stay representable.
    // SAFETY: n is an integer in [-151, 128].
    let n: i32 = unsafe { n.to_int_unchecked() };
    let (n1, n2) = (n >> 1, n - (n >> 1));
    let out = y * f32::from_bits(((n1 + 127) << 23) as u32) * f32::from_bits(((n2 + 127) << 23) as u32);
    if x.is_nan() {
        x
    } else if x > HI {
        f32::INFINITY
    } else if x < LO {
        0.0
    } else {
        out
    }
}

/// tanh for f32 without a libm call (Cephes' `tanhf`: an odd polynomial near 0, else
/// `1 - 2 / (e^(2|x|) + 1)`; both computed and one selected, so the loop vectorises; fused
/// products as in [`exp_f32`]). The exponential is [`exp_f32`]'s, cut to what tanh needs: its
/// argument is never negative and is clamped at 20 (from 18 on, tanh rounds to 1 anyway), so
/// there is no underflow, overflow or NaN to handle, the rounding to the nearest multiple of
/// ln 2 is one fused add of 1.5 * 2^23, and 2^n is one exponent. NaN takes the polynomial side
/// (every comparison with it is false), which keeps it NaN.
#[inline(always)]
fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = (-5.704_988_7e-3f32)
        .mul_add(z, 2.063_909e-2)
        .mul_add(z, -5.373_971_6e-2)
        .mul_add(z, 0.133_314_42)
        .mul_add(z, -0.333_332_8);
    let small = (p * z).mul_add(x, x);
    let v = 2.0 * a;
    #[allow(clippy::manual_clamp)] // the comparison form is one `min` instruction
    let v = if v < 20.0 { v } else { 20.0 };
    // n = round(v / ln 2): adding 1.5 * 2^23 leaves the integer part in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let t = v.mul_add(std::f32::consts::LOG2_E, ROUND);
    let n = t - ROUND;
    let y = exp_reduced(v, n);
    // 2^n, n in [0, 29]: the low bits of `t` are n
    let e = y * f32::from_bits((t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127)) << 23);
    let large = 1.0 - 2.0 / (e + 1.0);
    // tanh is odd: the sign is x's, also for -0
    if a >= 0.625 { large } else { small }.copysign(x)
}

/// The sigmoid of one value with the bits of the element-wise `sigmoid` kernel.
#[inline(always)]
pub fn sigmoid_one<T: Float>(x: T) -> T {
    if T::DTYPE == DType::F32 {
        T::from_f64((1.0 / (1.0 + exp_f32(-(x.to_f64() as f32)))) as f64)
    } else {
        unary_one(Unary::Sigmoid, x)
    }
}

/// The tanh of one value with the bits of the element-wise `tanh` kernel.
#[inline(always)]
pub fn tanh_one<T: Float>(x: T) -> T {
    if T::DTYPE == DType::F32 {
        T::from_f64(tanh_f32(x.to_f64() as f32) as f64)
    } else {
        unary_one(Unary::Tanh, x)
    }
}

/// `kind` of one value, with the bits of [`unary_map`].
#[inline]
fn unary_value<T: Float>(kind: Unary, x: T) -> T {
    if T::DTYPE == DType::F32 && matches!(kind, Unary::Tanh | Unary::Exp | Unary::Sigmoid) {
        let x = x.to_f64() as f32;
        let y = match kind {
            Unary::Tanh => tanh_f32(x),
            Unary::Exp => exp_f32(x),
            _ => 1.0 / (1.0 + exp_f32(-x)),
        };
        return T::from_f64(y as f64);
    }
    unary_one(kind, x)
}

fn unary_map<T: Float>(kind: Unary, v: &[T]) -> Vec<T> {
    if T::DTYPE == DType::F32 && matches!(kind, Unary::Tanh | Unary::Exp | Unary::Sigmoid) {
        // SAFETY: T is f32 (checked above).
        let v32: &[f32] = unsafe { std::slice::from_raw_parts(v.as_ptr() as *const f32, v.len()) };
        let out = match kind {
            Unary::Tanh => map_values(v32, tanh_f32),
            Unary::Exp => map_values(v32, exp_f32),
            _ => map_values(v32, |x| 1.0 / (1.0 + exp_f32(-x))),
        };
        let mut out = std::mem::ManuallyDrop::new(out);
        // SAFETY: same type, length and capacity.
        return unsafe { Vec::from_raw_parts(out.as_mut_ptr() as *mut T, out.len(), out.capacity()) };
    }
    // One monomorphised loop per kind, so the match is outside the hot loop.
    macro_rules! map {
        ($k:expr) => {
            map_values(v, |x| unary_one::<T>($k, x))
        };
    }
    match kind {
        Unary::Neg => map!(Unary::Neg),
        Unary::Exp => map!(Unary::Exp),
        Unary::Log => map!(Unary::Log),
        Unary::Sqrt => map!(Unary::Sqrt),
        Unary::Abs => map!(Unary::Abs),
        Unary::Sin => map!(Unary::Sin),
        Unary::Cos => map!(Unary::Cos),
        Unary::Tanh => map!(Unary::Tanh),
        Unary::Sigmoid => map!(Unary::Sigmoid),
        Unary::Relu => map!(Unary::Relu),
        Unary::Sign => map!(Unary::Sign),
        Unary::Reciprocal => map!(Unary::Reciprocal),
        Unary::Erf => map!(Unary::Erf),
        Unary::Floor => map!(Unary::Floor),
        Unary::Ceil => map!(Unary::Ceil),
        Unary::Round => map!(Unary::Round),
        Unary::Log1p => map!(Unary::Log1p),
        Unary::Expm1 => map!(Unary::Expm1),
        Unary::Tan => map!(Unary::Tan),
        Unary::Asin => map!(Unary::Asin),
        Unary::Acos => map!(Unary::Acos),
        Unary::Atan => map!(Unary::Atan),
        Unary::Sinh => map!(Unary::Sinh),
        Unary::Cosh => map!(Unary::Cosh),
        Unary::Rsqrt => map!(Unary::Rsqrt),
        Unary::Log2 => map!(Unary::Log2),
        Unary::Log10 => map!(Unary::Log10),
        Unary::Exp2 => map!(Unary::Exp2),
        Unary::Trunc => map!(Unary::Trunc),
    }
}

/// Applies a float function element-wise; integer inputs compute in the default float type,
/// except for `neg`, `abs`, `relu` and `sign`, which keep integer types as PyTorch does.
pub fn unary(x: &TensorData, kind: Unary) -> TensorData {
    unary_in_layout(x, |x| unary_rowmajor(x, kind))
}

/// Note [Element-wise results keep a permuted layout]: runs the row-major kernel `f` on `x`,
/// in the result's memory order when that is not row-major.
#[inline]
fn unary_in_layout(x: &TensorData, f: impl Fn(&TensorData) -> TensorData) -> TensorData {
    if !x.is_contiguous() {
        if let Some((strides, order)) = result_layout(&x.shape, &[x]) {
            return f(&view_in_order(x, &x.shape, &order)).restrided(x.shape.clone(), strides, 0);
        }
    }
    f(x)
}

/// [`unary`] with a row-major result.
#[allow(clippy::unnecessary_cast)] // `as i64` is a no-op only for the int64 instance
fn unary_rowmajor(x: &TensorData, kind: Unary) -> TensorData {
    let keeps_int = matches!(
        kind,
        Unary::Neg | Unary::Abs | Unary::Relu | Unary::Sign | Unary::Floor | Unary::Ceil | Unary::Round | Unary::Trunc
    );
    if keeps_int && x.dtype().is_integral() {
        return with_int!(x.dtype(), T => {
            let v = values::<T>(x);
            let out: Vec<T> = v
                .iter()
                .map(|&a| {
                    // In int64, then wrapped back: `abs(int8(-128))` stays -128, as in PyTorch.
                    let w = a as i64;
                    (match kind {
                        Unary::Neg => w.wrapping_neg(),
                        Unary::Abs => w.wrapping_abs(),
                        Unary::Relu => w.max(0),
                        Unary::Sign => w.signum(),
                        _ => w,
                    }) as T
                })
                .collect();
            TensorData::from_vec(out, x.shape.clone())
        });
    }
    let dtype = x.dtype().to_float();
    if dtype.is_half() {
        return via_f32(dtype, || unary_rowmajor(&cast(x, DType::F32), kind));
    }
    with_float!(dtype, T => {
        if x.numel() == 1 {
            return TensorData::one(unary_value::<T>(kind, first_value::<T>(x)), x.shape.clone());
        }
        let v = values::<T>(x);
        TensorData::from_vec(unary_map::<T>(kind, &v), x.shape.clone())
    })
}

/// Note [16-bit floats compute in float32]: PyTorch's CPU kernels for float16 and bfloat16
/// load each value as float32, compute the whole function there and round the result once.
/// Kernels do the same by running their float32 version on a float32 copy and rounding its
/// result to `dtype` here.
pub fn via_f32(dtype: DType, f: impl FnOnce() -> TensorData) -> TensorData {
    let out = f();
    if out.dtype() == dtype {
        out
    } else {
        cast(&out, dtype)
    }
}

/// `x ** e` for a scalar exponent, with PyTorch's exact special cases.
pub fn pow_scalar(x: &TensorData, e: f64, dtype: DType) -> TensorData {
    unary_in_layout(x, |x| pow_scalar_rowmajor(x, e, dtype))
}

/// [`pow_scalar`] with a row-major result.
#[allow(clippy::unnecessary_cast)] // `as i64` is a no-op only for the int64 instance
fn pow_scalar_rowmajor(x: &TensorData, e: f64, dtype: DType) -> TensorData {
    if dtype.is_integral() {
        return with_int!(dtype, T => {
            let v = values::<T>(x);
            let ei = e as i64;
            let out: Vec<T> = v.iter().map(|&a| ipow(a as i64, ei) as T).collect();
            TensorData::from_vec(out, x.shape.clone())
        });
    }
    if dtype.is_half() {
        return via_f32(dtype, || pow_scalar_rowmajor(x, e, DType::F32));
    }
    with_float!(dtype, T => {
        let v = values::<T>(x);
        let et = T::from_f64(e);
        let out: Vec<T> = if e == 2.0 {
            v.iter().map(|&a| a * a).collect()
        } else if e == 3.0 {
            v.iter().map(|&a| a * a * a).collect()
        } else if e == 0.5 {
            v.iter().map(|&a| a.sqrt()).collect()
        } else if e == 1.0 {
            v.to_vec()
        } else if e == -0.5 {
            // 1 / sqrt(x), as PyTorch computes it: -inf at -0
            v.iter().map(|&a| T::one() / a.sqrt()).collect()
        } else if e == -1.0 {
            v.iter().map(|&a| T::one() / a).collect()
        } else if e == -2.0 {
            v.iter().map(|&a| T::one() / (a * a)).collect()
        } else {
            v.iter().map(|&a| a.powf(et)).collect()
        };
        TensorData::from_vec(out, x.shape.clone())
    })
}

fn ipow(base: i64, exp: i64) -> i64 {
    if exp < 0 {
        return match base {
            1 => 1,
            -1 => {
                if exp % 2 == 0 {
                    1
                } else {
                    -1
                }
            }
            _ => 0,
        };
    }
    base.wrapping_pow(exp.min(u32::MAX as i64) as u32)
}

/// Element-wise functions of two arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `a^b`.
    Pow,
    /// The larger of `a` and `b` (NaN if either is).
    Maximum,
    /// The smaller of `a` and `b` (NaN if either is).
    Minimum,
}

/// Comparisons, giving bool tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
}

/// Arithmetic every dtype supports for binary kernels.
pub trait Arith: Element {
    /// `kind` applied to `a` and `b` in this type.
    fn apply(kind: Binary, a: Self, b: Self) -> Self;
}

macro_rules! impl_arith_float {
    ($t:ty) => {
        impl Arith for $t {
            #[inline(always)]
            fn apply(kind: Binary, a: Self, b: Self) -> Self {
                match kind {
                    Binary::Add => a + b,
                    Binary::Sub => a - b,
                    Binary::Mul => a * b,
                    Binary::Div => a / b,
                    Binary::Pow => a.powf(b),
                    Binary::Maximum => {
                        if a.is_nan() || a > b {
                            a
                        } else if b.is_nan() {
                            b
                        } else {
                            b
                        }
                    }
                    Binary::Minimum => {
                        if a.is_nan() || a < b {
                            a
                        } else {
                            b
                        }
                    }
                }
            }
        }
    };
}
impl_arith_float!(f32);
impl_arith_float!(f64);

macro_rules! impl_arith_int {
    ($t:ty) => {
        impl Arith for $t {
            #[inline(always)]
            fn apply(kind: Binary, a: Self, b: Self) -> Self {
                match kind {
                    Binary::Add => a.wrapping_add(b),
                    Binary::Sub => a.wrapping_sub(b),
                    Binary::Mul => a.wrapping_mul(b),
                    Binary::Div => {
                        if b == 0 {
                            0
                        } else {
                            a.wrapping_div(b)
                        }
                    }
                    // Powers wrap modulo the type's width, so the int64 power truncated agrees.
                    Binary::Pow => ipow(a as i64, b as i64) as $t,
                    Binary::Maximum => a.max(b),
                    Binary::Minimum => a.min(b),
                }
            }
        }
    };
}
impl_arith_int!(i64);
impl_arith_int!(i32);
impl_arith_int!(i16);
impl_arith_int!(i8);
impl_arith_int!(u8);

/// The 16-bit floats: each operation in float32, rounded once, as PyTorch's CPU kernels.
macro_rules! impl_arith_half {
    ($t:ty) => {
        impl Arith for $t {
            #[inline(always)]
            fn apply(kind: Binary, a: Self, b: Self) -> Self {
                <$t>::from_f32(<f32 as Arith>::apply(kind, a.to_f32(), b.to_f32()))
            }
        }
    };
}
impl_arith_half!(half::f16);
impl_arith_half!(half::bf16);

impl Arith for bool {
    #[inline(always)]
    fn apply(kind: Binary, a: Self, b: Self) -> Self {
        match kind {
            Binary::Add | Binary::Maximum => a || b,
            Binary::Mul | Binary::Minimum | Binary::Pow => a && b,
            Binary::Sub | Binary::Div => a ^ b,
        }
    }
}

/// `f` over two contiguous value buffers broadcast to `shape` (element strides `sa`, `sb`, zero
/// along broadcast dims), in row-major order. The trailing dims that both operands walk alike
/// form one run (a whole row, or the whole tensor), so the inner loop is one of the vectorised
/// slice loops: both operands advancing, or one of them a single value for the run. Large
/// results are split into runs of rows across threads.
fn zip_broadcast_runs<T: Copy + Send + Sync, U: Send>(
    va: &[T],
    vb: &[T],
    shape: &[usize],
    sa: &[usize],
    sb: &[usize],
    f: impl Fn(T, T) -> U + Copy + Send + Sync,
) -> Vec<U> {
    let n = shape::numel(shape);
    let mut out: Vec<U> = crate::alloc::vec_with_capacity(n);
    if n == 0 {
        return out;
    }
    // The run: trailing dims merged while each operand's stride continues its run (a stride
    // of 0 continuing a broadcast run; size-1 dims merge always).
    let (mut run, mut ia, mut ib) = (1usize, 0usize, 0usize);
    let mut outer = shape.len();
    while outer > 0 {
        let d = outer - 1;
        let (size, a_step, b_step) = (shape[d], sa[d], sb[d]);
        if size == 1 {
            outer -= 1;
            continue;
        }
        if run == 1 {
            if a_step > 1 || b_step > 1 {
                break;
            }
            (run, ia, ib) = (size, a_step, b_step);
        } else {
            let continues = |step: usize, unit: usize| if unit == 0 { step == 0 } else { step == run };
            if !(continues(a_step, ia) && continues(b_step, ib)) {
                break;
            }
            run *= size;
        }
        outer -= 1;
    }
    let (outer_shape, outer_a, outer_b) = (&shape[..outer], &sa[..outer], &sb[..outer]);
    // Rows `first..first + dst.len() / run`, each the run of `f` from its two offsets.
    let fill_rows = |first: usize, dst: &mut [std::mem::MaybeUninit<U>]| {
        let mut index: SmallVec<[usize; 6]> = SmallVec::from_elem(0, outer);
        let (mut oa, mut ob) = (0usize, 0usize);
        let mut rest = first;
        for d in (0..outer).rev() {
            index[d] = rest % outer_shape[d];
            rest /= outer_shape[d];
            oa += index[d] * outer_a[d];
            ob += index[d] * outer_b[d];
        }
        for row in dst.chunks_mut(run) {
            let x = &va[oa..oa + if ia == 1 { run } else { 1 }];
            let y = &vb[ob..ob + if ib == 1 { run } else { 1 }];
            match (ia, ib) {
                (1, 1) => zip_into_simd(x, y, row, f),
                (1, 0) => map_into_simd(x, row, |v| f(v, y[0])),
                (0, 1) => map_into_simd(y, row, |v| f(x[0], v)),
                _ => row.iter_mut().for_each(|o| {
                    o.write(f(x[0], y[0]));
                }),
            }
            // the next row: an odometer over the outer dims
            let mut d = outer;
            while d > 0 {
                d -= 1;
                index[d] += 1;
                oa += outer_a[d];
                ob += outer_b[d];
                if index[d] < outer_shape[d] {
                    break;
                }
                oa -= outer_a[d] * outer_shape[d];
                ob -= outer_b[d] * outer_shape[d];
                index[d] = 0;
            }
        }
    };
    let dst = &mut out.spare_capacity_mut()[..n];
    if !parallel(n) {
        fill_rows(0, dst);
    } else {
        let rows_per_task = (PARALLEL_CHUNK / run).max(1);
        crate::parallel::for_each_chunk_mut(dst, rows_per_task * run, |start, chunk| fill_rows(start / run, chunk));
    }
    // SAFETY: every element of the first `n` was written above (the runs tile the output).
    unsafe { out.set_len(n) };
    out
}

/// [`binary_into`] of one value into one value, with the general path's arithmetic (a scaled
/// sum rounded once).
#[inline]
fn one_into<T: Float>(dst: &TensorData, src: &TensorData, kind: Binary, alpha: f64) {
    // The source is read before the destination is written: `x += x` doubles `x`.
    let s = first_value::<T>(src);
    let alpha = T::from_f64(alpha);
    // SAFETY: `offset` is the one element of dst's storage; no slice of it is alive.
    let out = unsafe { &mut dst.storage.slice_mut::<T>()[dst.offset] };
    *out = match kind {
        Binary::Add if alpha == T::one() => *out + s,
        Binary::Sub if alpha == T::one() => *out - s,
        Binary::Add => s.mul_add(alpha, *out),
        Binary::Sub => s.mul_add(-alpha, *out),
        Binary::Mul => *out * s,
        _ => *out / s,
    };
}

/// The element at `x`'s offset, read as `T` (exact for int64; used for operands that are one
/// value seen everywhere, without gathering the expanded view).
fn first_value<T: Element>(x: &TensorData) -> T {
    // SAFETY: `offset` is an element of the storage (the tensor is not empty); we only read.
    with_dtype!(x.dtype(), S => T::cast_from(unsafe { x.storage.slice::<S>()[x.offset] }))
}

/// Applies `f` to two operands broadcast together, both read as `T`.
pub fn zip_broadcast<T: Element, U: Element>(
    a: &TensorData,
    b: &TensorData,
    f: impl Fn(T, T) -> U + Send + Sync,
) -> Result<(Vec<U>, Shape)> {
    let out_shape = shape::broadcast_shapes(&a.shape, &b.shape)?;
    let n = shape::numel(&out_shape);
    // An operand that is one value seen everywhere (a number, or an expanded 0-d gradient).
    let single = |x: &TensorData| x.numel() == 1 || x.strides.iter().zip(&x.shape).all(|(&st, &sz)| st == 0 || sz == 1);
    if single(b) && n == a.numel() && n > 0 {
        let y = first_value::<T>(b);
        let va = values::<T>(a);
        return Ok((map_values(&va, |x| f(x, y)), out_shape));
    }
    if single(a) && n == b.numel() && n > 0 {
        let x = first_value::<T>(a);
        let vb = values::<T>(b);
        return Ok((map_values(&vb, |y| f(x, y)), out_shape));
    }
    let va = values::<T>(a);
    let vb = values::<T>(b);
    let out: Vec<U> = if a.shape == b.shape {
        zip_values(&va, &vb, &f)
    } else {
        let sa = shape::broadcast_strides(&a.shape, &shape::contiguous_strides(&a.shape), &out_shape);
        let sb = shape::broadcast_strides(&b.shape, &shape::contiguous_strides(&b.shape), &out_shape);
        zip_broadcast_runs(&va, &vb, &out_shape, &sa, &sb, &f)
    };
    Ok((out, out_shape))
}

/// Note [Element-wise results keep a permuted layout]: runs the row-major kernel `f` on `a`
/// and `b`, in the result's memory order when that is not row-major. Two contiguous operands
/// (the usual case) go straight to `f`.
#[inline]
fn in_layout(
    a: &TensorData,
    b: &TensorData,
    f: impl Fn(&TensorData, &TensorData) -> Result<TensorData>,
) -> Result<TensorData> {
    if !(a.is_contiguous() && b.is_contiguous()) {
        if let Ok(shape) = shape::broadcast_shapes(&a.shape, &b.shape) {
            if let Some((strides, order)) = result_layout(&shape, &[a, b]) {
                let (va, vb) = (view_in_order(a, &shape, &order), view_in_order(b, &shape, &order));
                return Ok(f(&va, &vb)?.restrided(shape, strides, 0));
            }
        }
    }
    f(a, b)
}

/// A binary arithmetic kernel computing in `dtype`.
pub fn binary(a: &TensorData, b: &TensorData, kind: Binary, dtype: DType) -> Result<TensorData> {
    if a.numel() == 1 && b.numel() == 1 {
        return Ok(binary_one(a, b, kind, dtype)); // no layout to keep
    }
    in_layout(a, b, |a, b| binary_rowmajor(a, b, kind, dtype))
}

/// [`binary`] with a row-major result whatever the operands' layouts.
pub fn binary_row_major_result(a: &TensorData, b: &TensorData, kind: Binary, dtype: DType) -> Result<TensorData> {
    binary_rowmajor(a, b, kind, dtype)
}

/// The longer of two shapes whose sizes are all 1: what they broadcast to.
fn one_element_shape(a: &TensorData, b: &TensorData) -> Shape {
    if a.shape.len() >= b.shape.len() {
        a.shape.clone()
    } else {
        b.shape.clone()
    }
}

/// [`binary`] of two one-element operands (0-d tensors, numbers): the value computed here and
/// kept inside its storage.
fn binary_one(a: &TensorData, b: &TensorData, kind: Binary, dtype: DType) -> TensorData {
    with_dtype!(dtype, T => TensorData::one(
        <T as Arith>::apply(kind, first_value::<T>(a), first_value::<T>(b)),
        one_element_shape(a, b),
    ))
}

/// [`binary`] with a row-major result.
fn binary_rowmajor(a: &TensorData, b: &TensorData, kind: Binary, dtype: DType) -> Result<TensorData> {
    if a.numel() == 1 && b.numel() == 1 {
        return Ok(binary_one(a, b, kind, dtype));
    }
    // One monomorphised loop per kind, so the match is outside the hot loop.
    macro_rules! zip {
        ($T:ty, $k:expr) => {
            zip_broadcast::<$T, $T>(a, b, |x, y| <$T as Arith>::apply($k, x, y))?
        };
    }
    with_dtype!(dtype, T => {
        let (v, s) = match kind {
            Binary::Add => zip!(T, Binary::Add),
            Binary::Sub => zip!(T, Binary::Sub),
            Binary::Mul => zip!(T, Binary::Mul),
            Binary::Div => zip!(T, Binary::Div),
            Binary::Pow => zip!(T, Binary::Pow),
            Binary::Maximum => zip!(T, Binary::Maximum),
            Binary::Minimum => zip!(T, Binary::Minimum),
        };
        Ok(TensorData::from_vec(v, s))
    })
}

/// A comparison kernel computing in `dtype`, producing bools.
pub fn compare(a: &TensorData, b: &TensorData, kind: Compare, dtype: DType) -> Result<TensorData> {
    in_layout(a, b, |a, b| compare_rowmajor(a, b, kind, dtype))
}

/// [`compare`] with a row-major result.
#[allow(clippy::bool_comparison)]
fn compare_rowmajor(a: &TensorData, b: &TensorData, kind: Compare, dtype: DType) -> Result<TensorData> {
    with_dtype!(dtype, T => {
        let (v, s) = match kind {
            Compare::Eq => zip_broadcast::<T, bool>(a, b, |x, y| x == y)?,
            Compare::Ne => zip_broadcast::<T, bool>(a, b, |x, y| x != y)?,
            Compare::Lt => zip_broadcast::<T, bool>(a, b, |x, y| x < y)?,
            Compare::Le => zip_broadcast::<T, bool>(a, b, |x, y| x <= y)?,
            Compare::Gt => zip_broadcast::<T, bool>(a, b, |x, y| x > y)?,
            Compare::Ge => zip_broadcast::<T, bool>(a, b, |x, y| x >= y)?,
        };
        Ok(TensorData::from_vec(v, s))
    })
}

/// An activation's backward formula that runs as one fused kernel ([`activation_backward`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusedGrad {
    /// ReLU's (PyTorch's `threshold_backward` at 0): `g` where `s > 0`, else `+0` (a NaN `s`
    /// passes `g` on); `s` = relu's result.
    Threshold,
    /// `g (1 - s^2)`; `s` = tanh's result.
    Tanh,
    /// `g (1 - s) s`; `s` = sigmoid's result.
    Sigmoid,
}

/// `kind`'s formula at one gradient value `gv` and saved value `sv`.
#[inline(always)]
fn fused_grad<T: Float>(kind: FusedGrad, gv: T, sv: T) -> T {
    let (zero, one) = (T::from_f64(0.0), T::from_f64(1.0));
    match kind {
        FusedGrad::Threshold => {
            if sv <= zero {
                zero
            } else {
                gv
            }
        }
        FusedGrad::Tanh => gv * (one - sv * sv),
        FusedGrad::Sigmoid => gv * (one - sv) * sv,
    }
}

/// `kind`'s formula over the gradient `g` and the saved `s` (one float dtype, broadcast) in one
/// pass, rounded after each operation as the separate ops would round it.
pub fn activation_backward(g: &TensorData, s: &TensorData, kind: FusedGrad) -> Result<TensorData> {
    if g.numel() == 1 && s.numel() == 1 {
        return with_float!(g.dtype(), T => {
            let value = fused_grad(kind, first_value::<T>(g), first_value::<T>(s));
            Ok(TensorData::one(value, one_element_shape(g, s)))
        });
    }
    in_layout(g, s, |g, s| {
        with_float!(g.dtype(), T => {
            // One monomorphised loop per kind, so the match is outside the hot loop.
            let (v, shape) = match kind {
                FusedGrad::Threshold => zip_broadcast::<T, T>(g, s, |gv, sv| fused_grad(FusedGrad::Threshold, gv, sv))?,
                FusedGrad::Tanh => zip_broadcast::<T, T>(g, s, |gv, sv| fused_grad(FusedGrad::Tanh, gv, sv))?,
                FusedGrad::Sigmoid => zip_broadcast::<T, T>(g, s, |gv, sv| fused_grad(FusedGrad::Sigmoid, gv, sv))?,
            };
            Ok(TensorData::from_vec(v, shape))
        })
    })
}

/// One operand of [`select`]: all its values (shaped as the result), or one value for all.
#[derive(Clone, Copy)]
enum Operand<'a, T> {
    All(&'a [T]),
    One(T),
}

/// `x` as an operand of [`select`]: its `values` when it has all of the result's, else its one value.
fn operand<'a, T: Element>(x: &TensorData, values: Option<&'a [T]>) -> Operand<'a, T> {
    match values {
        Some(v) => Operand::All(v),
        None => Operand::One(first_value::<T>(x)),
    }
}

/// `where(cond, a, b)` over a contiguous condition of the result's shape and operands that are
/// either of that shape or a single value: one vectorised pass, split across threads when large.
fn select_values<T: Copy + Send + Sync>(cond: &[bool], a: Operand<'_, T>, b: Operand<'_, T>) -> Vec<T> {
    let n = cond.len();
    let run = |start: usize, dst: &mut [std::mem::MaybeUninit<T>]| {
        let c = &cond[start..start + dst.len()];
        let pick = |i: usize, x: T, y: T| if c[i] { x } else { y };
        match (a, b) {
            (Operand::All(x), Operand::All(y)) => {
                let (x, y) = (&x[start..start + dst.len()], &y[start..start + dst.len()]);
                dst.iter_mut().enumerate().for_each(|(i, o)| {
                    o.write(pick(i, x[i], y[i]));
                });
            }
            (Operand::One(x), Operand::All(y)) => {
                let y = &y[start..start + dst.len()];
                dst.iter_mut().enumerate().for_each(|(i, o)| {
                    o.write(pick(i, x, y[i]));
                });
            }
            (Operand::All(x), Operand::One(y)) => {
                let x = &x[start..start + dst.len()];
                dst.iter_mut().enumerate().for_each(|(i, o)| {
                    o.write(pick(i, x[i], y));
                });
            }
            (Operand::One(x), Operand::One(y)) => dst.iter_mut().enumerate().for_each(|(i, o)| {
                o.write(pick(i, x, y));
            }),
        }
    };
    let mut out: Vec<T> = crate::alloc::vec_with_capacity(n);
    let dst = &mut out.spare_capacity_mut()[..n];
    if parallel(n) {
        crate::parallel::for_each_chunk_mut(dst, PARALLEL_CHUNK, run);
    } else {
        run(0, dst);
    }
    // SAFETY: every element of the first `n` was written above.
    unsafe { out.set_len(n) };
    out
}

/// `where(cond, a, b)` with broadcasting of all three.
pub fn select(cond: &TensorData, a: &TensorData, b: &TensorData, dtype: DType) -> Result<TensorData> {
    let ab = shape::broadcast_shapes(&a.shape, &b.shape)?;
    let out_shape = shape::broadcast_shapes(&cond.shape, &ab)?;
    if !(cond.is_contiguous() && a.is_contiguous() && b.is_contiguous()) {
        if let Some((strides, order)) = result_layout(&out_shape, &[cond, a, b]) {
            let view = |x: &TensorData| view_in_order(x, &out_shape, &order);
            return Ok(select(&view(cond), &view(a), &view(b), dtype)?.restrided(out_shape, strides, 0));
        }
    }
    // One value seen everywhere (a number, or an expanded 0-d tensor).
    let single = |x: &TensorData| x.numel() == 1 || x.strides.iter().zip(&x.shape).all(|(&st, &sz)| st == 0 || sz == 1);
    let n = shape::numel(&out_shape);
    let fits = |x: &TensorData| x.numel() == n && x.is_contiguous() || single(x) && x.numel() > 0;
    if cond.shape == out_shape && cond.is_contiguous() && fits(a) && fits(b) && n > 0 {
        let c = values::<bool>(cond);
        let full = |x: &TensorData| x.numel() == n && x.is_contiguous();
        return Ok(with_dtype!(dtype, T => {
            let (va, vb) = (full(a).then(|| values::<T>(a)), full(b).then(|| values::<T>(b)));
            TensorData::from_vec(select_values(&c, operand(a, va.as_deref()), operand(b, vb.as_deref())), out_shape)
        }));
    }
    let c = expand_values::<bool>(cond, &out_shape);
    with_dtype!(dtype, T => {
        let va = expand_values::<T>(a, &out_shape);
        let vb = expand_values::<T>(b, &out_shape);
        let out: Vec<T> = crate::alloc::collect_exact(c.len(), c.iter().zip(va.iter().zip(vb.iter())).map(|(&k, (&x, &y))| if k { x } else { y }));
        Ok(TensorData::from_vec(out, out_shape))
    })
}

/// The values of `x` broadcast to `target`, materialised.
pub fn expand_values<T: Element>(x: &TensorData, target: &[usize]) -> Vec<T> {
    let strides = shape::broadcast_strides(&x.shape, &x.strides, target);
    x.restrided(target.into(), strides, x.offset).to_vec::<T>()
}

/// What a reduction computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// The sum.
    Sum,
    /// The mean.
    Mean,
    /// The product.
    Prod,
}

/// Reorders `x` so the reduced dimensions come last, returning (values, kept shape, reduced size).
fn split_reduced<T: Element>(x: &TensorData, dims: &[usize]) -> (Vec<T>, Shape, usize) {
    let nd = x.shape.len();
    let kept: SmallVec<[usize; 4]> = (0..nd).filter(|d| !dims.contains(d)).collect();
    let mut order: SmallVec<[usize; 4]> = kept.clone();
    order.extend(dims.iter().copied());
    let shape: Shape = order.iter().map(|&d| x.shape[d]).collect();
    let strides = order.iter().map(|&d| x.strides[d]).collect();
    let v = x.restrided(shape, strides, x.offset).to_vec::<T>();
    let kept_shape: Shape = kept.iter().map(|&d| x.shape[d]).collect();
    let r: usize = dims.iter().map(|&d| x.shape[d]).product();
    (v, kept_shape, r)
}

/// The output shape of a reduction over `dims`.
pub fn reduced_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Shape {
    (0..shape.len()).filter_map(|d| if dims.contains(&d) { keepdim.then_some(1) } else { Some(shape[d]) }).collect()
}

/// Sum, mean or product over `dims` (all if empty and `all`), in `dtype`.
pub fn reduce(x: &TensorData, dims: &[usize], keepdim: bool, kind: Reduce, dtype: DType) -> TensorData {
    let out_shape = reduced_shape(&x.shape, dims, keepdim);
    if matches!(kind, Reduce::Sum | Reduce::Mean) && x.dtype() == dtype && matches!(dtype, DType::F32 | DType::F64) {
        if let Some(plan) = SumPlan::of(x, dims) {
            // the plans read a contiguous `x` in place
            let r: usize = dims.iter().map(|&d| x.shape[d]).product();
            return with_single_or_double!(dtype, T => {
                TensorData::from_vec(plan.sums::<T>(&values::<T>(x), r, kind), out_shape)
            });
        }
    }
    with_dtype!(dtype, T => {
        let (v, _kept, r) = split_reduced::<T>(x, dims);
        let groups = v.len().checked_div(r).unwrap_or_else(|| shape::numel(&out_shape));
        let mut out: Vec<T> = Vec::with_capacity(groups);
        for g in 0..groups {
            let chunk = if r == 0 { &v[0..0] } else { &v[g * r..(g + 1) * r] };
            out.push(reduce_chunk(chunk, kind));
        }
        TensorData::from_vec(out, out_shape)
    })
}

/// Note [PyTorch's float summation order] (see `cascade`): which of its layouts a float sum
/// over `dims` of `x` is, with the reduced values of each output contiguous and outputs in order
/// (as `split_reduced` gives them).
#[derive(Clone, Copy)]
enum SumPlan {
    /// The reduced dims are the trailing ones: each output sums a contiguous run.
    Inner,
    /// The reduced dims lead and the kept ones trail: each output sums one column.
    Outer { cols: usize },
}

impl SumPlan {
    fn of(x: &TensorData, dims: &[usize]) -> Option<SumPlan> {
        if !x.is_contiguous() || x.numel() == 0 {
            return None;
        }
        // Size-1 dims do not change the order (PyTorch drops them).
        let reduced: SmallVec<[bool; 6]> =
            (0..x.shape.len()).filter(|&d| x.shape[d] != 1).map(|d| dims.contains(&d)).collect();
        let first_reduced = reduced.iter().position(|&r| r).unwrap_or(reduced.len());
        if reduced[first_reduced..].iter().all(|&r| r) {
            return Some(SumPlan::Inner);
        }
        let first_kept = reduced.iter().position(|&r| !r).unwrap_or(reduced.len());
        if reduced[first_kept..].iter().all(|&r| !r) {
            let cols = (0..x.shape.len()).filter(|d| !dims.contains(d)).map(|d| x.shape[d]).product();
            return Some(SumPlan::Outer { cols });
        }
        None
    }

    /// The sums (or means) over `r` reduced values each of the contiguous values `v` of `x`, in
    /// PyTorch's order.
    fn sums<T: Float>(self, v: &[T], r: usize, kind: Reduce) -> Vec<T> {
        let groups = v.len() / r;
        let finish = |s: T| if kind == Reduce::Mean { s / T::from_f64(r as f64) } else { s };
        if let SumPlan::Outer { cols } = self {
            let mut out = crate::cascade::outer_sums(v, cols);
            out.iter_mut().for_each(|s| *s = finish(*s));
            return out;
        }
        if groups == 1 {
            return vec![finish(crate::cascade::inner_sum(v, crate::cascade::num_threads()))];
        }
        // One output per row; rows are summed independently, so a split changes no bits.
        let mut out: Vec<T> = crate::alloc::vec_with_capacity(groups);
        let dst = &mut out.spare_capacity_mut()[..groups];
        let fill = |first: usize, dst: &mut [std::mem::MaybeUninit<T>]| {
            for (i, o) in dst.iter_mut().enumerate() {
                let g = first + i;
                o.write(finish(crate::cascade::row_sum(&v[g * r..(g + 1) * r])));
            }
        };
        if parallel(v.len()) {
            crate::parallel::for_each_chunk_mut(dst, (PARALLEL_CHUNK / r).max(1), fill);
        } else {
            fill(0, dst);
        }
        // SAFETY: every one of the `groups` outputs was written above.
        unsafe { out.set_len(groups) };
        out
    }
}

/// The sum of `v` in f64, with eight running partial sums (so the loop vectorises), split into
/// fixed chunks summed in order for large inputs (so the result does not depend on scheduling).
fn sum_f64<T: Element>(v: &[T]) -> f64 {
    fn lanes<T: Element>(v: &[T]) -> f64 {
        let mut acc = [0f64; 8];
        let mut it = v.chunks_exact(8);
        for c in &mut it {
            for i in 0..8 {
                acc[i] += c[i].to_f64();
            }
        }
        let tail: f64 = it.remainder().iter().map(|x| x.to_f64()).sum();
        acc.iter().sum::<f64>() + tail
    }
    if !parallel(v.len()) {
        return lanes(v);
    }
    let partial = crate::parallel::map_parts(v.len().div_ceil(PARALLEL_CHUNK), |part| {
        lanes(&v[part * PARALLEL_CHUNK..v.len().min((part + 1) * PARALLEL_CHUNK)])
    });
    partial.iter().sum()
}

fn reduce_chunk<T: Element>(chunk: &[T], kind: Reduce) -> T {
    match T::DTYPE.is_float() {
        true => {
            let v = match kind {
                Reduce::Sum | Reduce::Mean => sum_f64(chunk),
                // float16/bfloat16: PyTorch's CPU kernel rounds each partial product to the dtype
                // (checked up to 20 factors; its vectorized order for longer runs is not reproduced).
                Reduce::Prod if matches!(T::DTYPE, DType::F16 | DType::BF16) => {
                    chunk.iter().fold(1.0f64, |acc, x| T::from_f64(acc * x.to_f64()).to_f64())
                }
                Reduce::Prod => chunk.iter().map(|x| x.to_f64()).product::<f64>(),
            };
            let v = if kind == Reduce::Mean { v / chunk.len() as f64 } else { v };
            T::from_f64(v)
        }
        _ => {
            let v = match kind {
                Reduce::Sum | Reduce::Mean => chunk.iter().fold(0i64, |a, x| a.wrapping_add(x.to_i64())),
                Reduce::Prod => chunk.iter().fold(1i64, |a, x| a.wrapping_mul(x.to_i64())),
            };
            T::from_i64(v)
        }
    }
}

/// Max or min over one dimension: (values, int64 indices of the first extreme; NaN wins).
pub fn extreme_dim(x: &TensorData, dim: usize, keepdim: bool, max: bool) -> Result<(TensorData, TensorData)> {
    if x.shape.get(dim).copied().unwrap_or(1) == 0 {
        return Err(Error::Index(format!(
            "{}(): Expected reduction dim {dim} to have non-zero size.",
            if max { "max" } else { "min" }
        )));
    }
    let dims = [dim];
    let dims: &[usize] = if x.shape.is_empty() { &[] } else { &dims };
    let out_shape = reduced_shape(&x.shape, dims, keepdim);
    with_dtype!(x.dtype(), T => {
        let (v, _kept, r) = split_reduced::<T>(x, dims);
        let r = r.max(1);
        let groups = v.len() / r;
        let mut vals: Vec<T> = Vec::with_capacity(groups);
        let mut idx: Vec<i64> = Vec::with_capacity(groups);
        for g in 0..groups {
            let (i, val) = extreme_of(&v[g * r..(g + 1) * r], max);
            vals.push(val);
            idx.push(i as i64);
        }
        Ok((TensorData::from_vec(vals, out_shape.clone()), TensorData::from_vec(idx, out_shape)))
    })
}

fn extreme_of<T: Element>(chunk: &[T], max: bool) -> (usize, T) {
    let mut best = 0;
    for (i, &v) in chunk.iter().enumerate() {
        #[allow(clippy::eq_op)]
        let is_nan = v != v;
        if is_nan {
            return (i, v);
        }
        let better = if max { v > chunk[best] } else { v < chunk[best] };
        if better {
            best = i;
        }
    }
    (best, chunk[best])
}

/// Max or min over all elements.
pub fn extreme_all(x: &TensorData, max: bool) -> Result<TensorData> {
    if x.numel() == 0 {
        return Err(Error::runtime(format!(
            "{}(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the 'dim' argument.",
            if max { "max" } else { "min" }
        )));
    }
    with_dtype!(x.dtype(), T => {
        let v = values::<T>(x);
        let (_, val) = extreme_of(&v, max);
        Ok(TensorData::from_vec(vec![val], Shape::new()))
    })
}

/// `c = a @ b` for 2-D operands of one float or int dtype, any strides.
pub fn matmul2d(a: &TensorData, b: &TensorData, dtype: DType) -> TensorData {
    let (m, k) = (a.shape[0], a.shape[1]);
    let n = b.shape[1];
    let mut out_shape = Shape::new();
    out_shape.push(m);
    out_shape.push(n);
    // Note [Small matmuls in PyTorch's order]
    let small = is_small_matmul(m, k, n);
    match dtype {
        DType::F16 | DType::BF16 => via_f32(dtype, || matmul2d(a, b, DType::F32)),
        DType::F32 if !small => TensorData::from_vec(gemm_values::<f32>(a, b, m, k, n), out_shape),
        DType::F64 if !small => TensorData::from_vec(gemm_values::<f64>(a, b, m, k, n), out_shape),
        _ => with_dtype!(dtype, T => {
            let va = a.to_vec::<T>();
            let vb = b.to_vec::<T>();
            let mut out = crate::alloc::vec_zeroed::<T>(m * n);
            for i in 0..m {
                for p in 0..k {
                    let x = va[i * k + p];
                    for j in 0..n {
                        out[i * n + j] = <T as Arith>::apply(Binary::Add, out[i * n + j], <T as Arith>::apply(Binary::Mul, x, vb[p * n + j]));
                    }
                }
            }
            TensorData::from_vec(out, out_shape)
        }),
    }
}

/// Products of at least this many multiply-adds run on rayon's pool: smaller ones lose more to
/// waking the workers and splitting than they gain (measured on the 2-core machine: an LSTM's
/// 1024x32x256 weight gradient takes 186 us on two threads, 139 us on one).
const PARALLEL_GEMM_MIN_FLOPS: usize = 1 << 24;

/// From a quarter of [`PARALLEL_GEMM_MIN_FLOPS`], products with an inner size of at least this
/// run on rayon's pool too: each thread then has enough work per packed panel (an LSTM step's
/// 32x256x1024 gate product: 2-layer LSTM step 75 -> 65 ms on the 2-core machine).
const PARALLEL_GEMM_MIN_INNER: usize = 128;

/// A float type of the blocked gemm behind every float matrix product: the `gemm` crate, with
/// its AVX-512 kernels where the CPU has them (chosen at run time).
pub(crate) trait Gemm: Float {
    /// `c = a @ b` (`m x k` times `k x n`) with any element strides (zero and negative
    /// included), `c` (row stride `rsc`, unit column stride) overwritten. Large products run on
    /// rayon's pool unless the caller is already one of its workers.
    ///
    /// # Safety
    /// The pointers must address matrices of the given sizes and strides, and `c` must not
    /// overlap `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        c: *mut Self,
        rsc: isize,
    ) {
        // SAFETY: the caller's contract
        unsafe { Self::gemm_into(m, k, n, a, rsa, csa, b, rsb, csb, c, rsc, false) }
    }

    /// [`Gemm::gemm`], adding the product to `c`'s values when `accumulate` (`c += a @ b`).
    ///
    /// # Safety
    /// As [`Gemm::gemm`]; with `accumulate`, `c` must hold initialised values.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_into(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        c: *mut Self,
        rsc: isize,
        accumulate: bool,
    ) {
        if m == 0 || n == 0 || (k == 0 && accumulate) {
            return;
        }
        // SAFETY: the caller's contract
        unsafe {
            if k == 0 {
                for i in 0..m {
                    std::ptr::write_bytes(c.offset(i as isize * rsc), 0, n);
                }
                return;
            }
            if rsb == 1 && csb != 1 && m <= SWAPPED_GEMM_MAX_ROWS && n >= 2 * m {
                // Note [Few rows times a column-major matrix]: `x @ w.t()` with few rows of `x`
                // (linear's forward) is slow in the crate's kernels, which repack all of `w`
                // for few uses of it; the transposed product `w @ x.t()` is fast. It goes to a
                // scratch buffer, then into `c` transposed.
                let mut scratch: Vec<Self> = crate::alloc::vec_with_capacity(m * n);
                gemm_crate_call(n, k, m, b, csb, rsb, a, csa, rsa, scratch.as_mut_ptr(), m as isize, false);
                scratch.set_len(m * n);
                transpose_into(&scratch, n, m, c, rsc, accumulate);
                return;
            }
            gemm_crate_call(m, k, n, a, rsa, csa, b, rsb, csb, c, rsc, accumulate);
        }
    }
}
impl Gemm for f32 {}
impl Gemm for f64 {}

/// Row counts up to which [`Gemm::gemm_into`] computes a product with a column-major right
/// operand transposed (Note [Few rows times a column-major matrix]).
const SWAPPED_GEMM_MAX_ROWS: usize = 128;

/// `c (+)= src^T` for a row-major `rows x cols` `src` and a `cols x rows` `c` of row stride
/// `rsc`, in square tiles so that both sides are read and written in cache lines.
///
/// # Safety
/// `c` must address a `cols x rows` matrix of row stride `rsc` (initialised when `accumulate`).
unsafe fn transpose_into<T: Float>(src: &[T], rows: usize, cols: usize, c: *mut T, rsc: isize, accumulate: bool) {
    const TILE: usize = 16;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for j in c0..(c0 + TILE).min(cols) {
                // SAFETY: row j of c has `rows` elements (the caller's contract)
                let dst = unsafe { c.offset(j as isize * rsc) };
                for i in r0..(r0 + TILE).min(rows) {
                    let v = src[i * cols + j];
                    // SAFETY: as above
                    unsafe { *dst.add(i) = if accumulate { *dst.add(i) + v } else { v } };
                }
            }
        }
    }
}

/// One call of the `gemm` crate for [`Gemm::gemm_into`] (sizes and strides as there), on rayon's
/// pool for large products unless the caller is already one of its workers.
///
/// # Safety
/// As [`Gemm::gemm_into`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_crate_call<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    rsb: isize,
    csb: isize,
    c: *mut T,
    rsc: isize,
    accumulate: bool,
) {
    // The pointers travel as addresses so the parts can cross into the pool (the caller keeps
    // them valid until this returns).
    let (a, b, c) = (a as isize, b as isize, c as isize);
    let flops = m.saturating_mul(k).saturating_mul(n);
    let large =
        flops >= PARALLEL_GEMM_MIN_FLOPS || (flops >= PARALLEL_GEMM_MIN_FLOPS / 4 && k >= PARALLEL_GEMM_MIN_INNER);
    let threads = crate::cascade::num_threads();
    if !(large && rayon::current_thread_index().is_none() && threads > 1) {
        // SAFETY: the caller's contract
        unsafe { gemm_crate_call_serial::<T>(m, k, n, a, rsa, csa, b, rsb, csb, c, rsc, accumulate) };
        return;
    }
    // Note [Splitting a product across threads]: the output is cut into one block of rows (or
    // of columns) per thread, each a whole one-thread product, so the pool is entered once and
    // every element is summed exactly as on one thread. The side cut is the one whose operand
    // each thread then packs in full for itself, the smaller: rows when `b` (k x n) is the
    // larger operand, else columns. (The crate's own rayon split synchronises its threads at
    // every packed panel: slower on two cores than one thread for an MLP's 64x784x256.)
    let split_rows = m >= n;
    let (len, align) = if split_rows { (m, 8) } else { (n, 16) };
    let parts = threads.min(len.div_ceil(align)).max(1);
    if parts == 1 {
        // SAFETY: the caller's contract
        unsafe { gemm_crate_call_serial::<T>(m, k, n, a, rsa, csa, b, rsb, csb, c, rsc, accumulate) };
        return;
    }
    let chunk = len.div_ceil(parts).div_ceil(align) * align;
    let size = std::mem::size_of::<T>() as isize;
    crate::parallel::for_each_part(len.div_ceil(chunk), |p| {
        let start = p * chunk;
        let count = chunk.min(len - start);
        let s = start as isize;
        // The part's block: rows of `a` and `c`, or columns of `b` and `c`.
        let (rows, cols, a_at, b_at, c_at) = if split_rows {
            (count, n, a + s * rsa * size, b, c + s * rsc * size)
        } else {
            (m, count, a, b + s * csb * size, c + s * size)
        };
        // SAFETY: each part is a disjoint block of `c` and reads the matching block of `a`
        // (or `b`), inside the caller's matrices.
        unsafe { gemm_crate_call_serial::<T>(rows, k, cols, a_at, rsa, csa, b_at, rsb, csb, c_at, rsc, accumulate) };
    });
}

/// One single-threaded call of the `gemm` crate (the arguments of [`gemm_crate_call`], with
/// the matrices as addresses). The crate's argument order: sizes m, n, k, then each matrix as
/// (pointer, column stride, row stride), then `c = alpha * c + beta * (a @ b)`, with `c` read
/// only when `read_dst`.
///
/// # Safety
/// As [`Gemm::gemm_into`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_crate_call_serial<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    a: isize,
    rsa: isize,
    csa: isize,
    b: isize,
    rsb: isize,
    csb: isize,
    c: isize,
    rsc: isize,
    accumulate: bool,
) {
    // SAFETY: the caller's contract
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c as *mut T,
            1,
            rsc,
            accumulate,
            a as *const T,
            csa,
            rsa,
            b as *const T,
            csb,
            rsb,
            T::from_f64(1.0),
            T::from_f64(1.0),
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// `bias + a @ b` for 2-D float32/float64 operands of any strides, as `addmm` computes it: the
/// bias (broadcast to the `m x n` result) written first and the product accumulated onto it by
/// the gemm, one pass over the output. `None` for the small products that [`matmul2d`] sums in
/// PyTorch's own order, and for other dtypes.
pub fn addmm2d(bias: &TensorData, a: &TensorData, b: &TensorData, dtype: DType) -> Option<TensorData> {
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1]);
    if is_small_matmul(m, k, n) || a.dtype() != dtype || b.dtype() != dtype || bias.dtype() != dtype {
        return None;
    }
    let out_shape: Shape = [m, n].into_iter().collect();
    let strides = shape::broadcast_strides(&bias.shape, &shape::contiguous_strides(&bias.shape), &out_shape);
    fn run<T: Gemm + Element>(bias: &TensorData, a: &TensorData, b: &TensorData, strides: &[usize]) -> Vec<T> {
        let (m, n) = (a.shape[0], b.shape[1]);
        let bias = values::<T>(bias);
        let (row_step, col_step) = (strides[0], strides[1]);
        let mut out: Vec<T> = crate::alloc::vec_with_capacity(m * n);
        for i in 0..m {
            let start = i * row_step;
            if col_step == 1 {
                out.extend_from_slice(&bias[start..start + n]);
            } else {
                out.extend((0..n).map(|j| bias[start + j * col_step]));
            }
        }
        // SAFETY: `out` is a private, initialised m*n buffer.
        unsafe { gemm_matrices(a, b, out.as_mut_ptr(), true) };
        out
    }
    match dtype {
        DType::F32 => Some(TensorData::from_vec(run::<f32>(bias, a, b, &strides), out_shape)),
        DType::F64 => Some(TensorData::from_vec(run::<f64>(bias, a, b, &strides), out_shape)),
        _ => None,
    }
}

/// `out = a @ b` (`out += a @ b` when `accumulate`) for 2-D matrices of dtype `T` with any
/// strides, `out` row-major.
///
/// # Safety
/// `a` and `b` must be of dtype `T`, and `out` must address `a.shape[0] * b.shape[1]` writable
/// elements (initialised when `accumulate`) that overlap neither.
unsafe fn gemm_matrices<T: Gemm>(a: &TensorData, b: &TensorData, out: *mut T, accumulate: bool) {
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1]);
    // SAFETY: read-only views of storages of dtype T (the caller's contract); strides and sizes
    // come from valid layouts.
    unsafe {
        let pa = (a.storage.as_ptr() as *const T).add(a.offset);
        let pb = (b.storage.as_ptr() as *const T).add(b.offset);
        let (rsa, csa) = (a.strides[0] as isize, a.strides[1] as isize);
        let (rsb, csb) = (b.strides[0] as isize, b.strides[1] as isize);
        T::gemm_into(m, k, n, pa, rsa, csa, pb, rsb, csb, out, n as isize, accumulate);
    }
}

/// Note [Small matmuls in PyTorch's order]: for k up to 7 and either all sizes up to 7 or fewer
/// than 96 multiply-adds, PyTorch's CPU BLAS sums each dot product in order of k without fused
/// multiply-adds (except matrix-vector products of at least 4 rows and 5 columns); the plain
/// loop of [`matmul2d`] reproduces its float rounding bit for bit. Larger products go to the
/// blocked gemm.
fn is_small_matmul(m: usize, k: usize, n: usize) -> bool {
    k <= 7 && (m <= 7 && n <= 7 || m * k * n < 96) && !(n == 1 && m >= 4 && k >= 5)
}

/// `a @ b` for 2-D float operands of any strides (cast to `T` first when their dtype differs).
fn gemm_values<T: Gemm + Element>(a: &TensorData, b: &TensorData, m: usize, k: usize, n: usize) -> Vec<T> {
    if m == 0 || n == 0 || k == 0 {
        return crate::alloc::vec_zeroed::<T>(m * n);
    }
    // not zeroed first: the gemm writes every element
    let mut out: Vec<T> = crate::alloc::vec_with_capacity(m * n);
    let a = if a.dtype() == T::DTYPE { Cow::Borrowed(a) } else { Cow::Owned(cast(a, T::DTYPE)) };
    let b = if b.dtype() == T::DTYPE { Cow::Borrowed(b) } else { Cow::Owned(cast(b, T::DTYPE)) };
    // SAFETY: `out` is a private buffer of m*n elements, which the gemm writes all of (k > 0).
    unsafe {
        gemm_matrices(&a, &b, out.as_mut_ptr(), false);
        out.set_len(m * n);
    }
    out
}

/// Fills a new tensor of `shape` with one value.
pub fn full(shape: &[usize], value: f64, dtype: DType) -> TensorData {
    let n = shape::numel(shape);
    with_dtype!(dtype, T => {
        let values = if value == 0.0 { crate::alloc::vec_zeroed::<T>(n) } else { crate::alloc::vec_filled(T::from_f64(value), n) };
        TensorData::from_vec(values, shape.into())
    })
}

/// A contiguous tensor from values of any element type, stored as `dtype`.
pub fn from_f64s(values: &[f64], shape: &[usize], dtype: DType) -> TensorData {
    with_dtype!(dtype, T => TensorData::from_vec(crate::alloc::collect_exact(values.len(), values.iter().map(|&v| T::from_f64(v))), shape.into()))
}

/// Keeps `IntoStorage` in scope for callers of `TensorData::from_vec` through this module.
pub fn from_vec<T: IntoStorage>(values: Vec<T>, shape: &[usize]) -> TensorData {
    TensorData::from_vec(values, shape.into())
}

/// `a + alpha * b` in the float `dtype`, rounded once per element (a fused multiply-add), as
/// PyTorch's `add(alpha=)` kernel computes it; broadcasting, and the layout rule of [`binary`].
pub fn add_scaled_fused(a: &TensorData, b: &TensorData, alpha: f64, dtype: DType) -> Result<TensorData> {
    in_layout(a, b, |a, b| {
        with_float!(dtype, T => {
            let alpha = T::from_f64(alpha);
            if a.shape == b.shape {
                let mut out = a.to_vec::<T>();
                fused_add_into(&mut out, &values::<T>(b), alpha);
                return Ok(TensorData::from_vec(out, a.shape.clone()));
            }
            let (v, s) = zip_broadcast::<T, T>(a, b, move |x, y| y.mul_add(alpha, x))?;
            Ok(TensorData::from_vec(v, s))
        })
    })
}

/// `out[i] += src[i] * alpha` rounded once per element (a fused multiply-add), with the CPU's
/// FMA instructions when it has them.
fn fused_add_into<T: Float>(out: &mut [T], src: &[T], alpha: T) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports FMA, checked just above.
        unsafe { fused_add_into_fma(out, src, alpha) };
        return;
    }
    fused_add_loop(out, src, alpha);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn fused_add_into_fma<T: Float>(out: &mut [T], src: &[T], alpha: T) {
    fused_add_loop(out, src, alpha);
}

#[inline(always)]
fn fused_add_loop<T: Float>(out: &mut [T], src: &[T], alpha: T) {
    for (o, &s) in out.iter_mut().zip(src) {
        *o = s.mul_add(alpha, *o);
    }
}

/// `dst = dst (op) alpha * src` written straight into `dst`'s storage, for in-place arithmetic
/// outside the graph (an optimizer step). Returns false, doing nothing, when this fast path does
/// not apply: `dst` not a contiguous float tensor, `src` not broadcastable to it, or `src` a
/// different view of the same storage.
pub fn binary_into(dst: &TensorData, src: &TensorData, kind: Binary, alpha: f64) -> bool {
    let dtype = dst.dtype();
    // One value into one value (a gradient summed in backward, a 0-d parameter's update): no
    // layout to work out. A source of more dims than `dst` would broadcast to a larger shape.
    if dst.numel() == 1
        && src.numel() == 1
        && src.shape.len() <= dst.shape.len()
        && matches!(kind, Binary::Add | Binary::Sub | Binary::Mul | Binary::Div)
    {
        match dtype {
            DType::F32 => one_into::<f32>(dst, src, kind, alpha),
            DType::F64 => one_into::<f64>(dst, src, kind, alpha),
            _ => return false,
        }
        dst.bump_version();
        return true;
    }
    if !dtype.is_float() || dtype.is_half() || !dst.is_contiguous() || !shape::is_expandable_to(&src.shape, &dst.shape)
    {
        return false;
    }
    if !matches!(kind, Binary::Add | Binary::Sub | Binary::Mul | Binary::Div) {
        return false;
    }
    let same_storage = dst.storage.same_buffer(&src.storage);
    if same_storage && !(src.offset == dst.offset && src.shape == dst.shape && src.strides == dst.strides) {
        return false;
    }
    let n = dst.numel();
    if n == 0 {
        // Nothing to write, but it still counts as a write (PyTorch bumps the version too).
        dst.bump_version();
        return true;
    }
    with_single_or_double!(dtype, T => {
        // `src` as values of dst's shape: borrowed if contiguous and not aliasing, else gathered.
        let values: Vec<T>;
        let src_values: &[T] = if src.shape == dst.shape && src.dtype() == dtype && !same_storage {
            match unsafe { src.contiguous_slice::<T>() } {
                Some(s) => s,
                None => {
                    values = src.to_vec::<T>();
                    &values
                }
            }
        } else {
            values = expand_values::<T>(src, &dst.shape);
            &values
        };
        let alpha = alpha as T;
        // SAFETY: `dst` is contiguous and `src_values` does not alias it (same-storage sources
        // were copied above).
        let out = unsafe { &mut dst.storage.slice_mut::<T>()[dst.offset..dst.offset + n] };
        macro_rules! apply {
            ($f:expr) => {{
                let f = $f;
                if parallel(n) {
                    crate::parallel::for_each_chunk_mut(out, PARALLEL_CHUNK, |start, o| {
                        o.iter_mut().zip(&src_values[start..]).for_each(|(o, &s)| *o = f(*o, s))
                    });
                } else {
                    out.iter_mut().zip(src_values).for_each(|(o, &s)| *o = f(*o, s));
                }
            }};
        }
        match kind {
            Binary::Add if alpha == 1.0 => apply!(|a: T, b: T| a + b),
            Binary::Sub if alpha == 1.0 => apply!(|a: T, b: T| a - b),
            Binary::Add | Binary::Sub => {
                // a ± alpha * b with one rounding, as PyTorch's `add(alpha=)` kernel computes it.
                let alpha = if kind == Binary::Sub { -alpha } else { alpha };
                if parallel(n) {
                    crate::parallel::for_each_chunk_mut(out, PARALLEL_CHUNK, |start, o| {
                        fused_add_into(o, &src_values[start..start + o.len()], alpha)
                    });
                } else {
                    fused_add_into(out, src_values, alpha);
                }
            }
            Binary::Mul => apply!(|a: T, b: T| a * b),
            _ => apply!(|a: T, b: T| a / b),
        }
    });
    dst.bump_version();
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    #[test]
    fn one_value_into_one_value_reads_before_it_writes_and_bumps_the_version() {
        let x = Tensor::from_vec(vec![1.5f32], &[1]).unwrap();
        let d = x.data();
        assert!(binary_into(&d, &d, Binary::Add, 1.0)); // x += x
        assert_eq!((x.to_vec::<f32>(), d.version()), (vec![3.0], 1));
        let two = Tensor::scalar(2.0f64); // a 0-d float64 source, cast to float32
        for (kind, want) in [(Binary::Sub, 1.0f32), (Binary::Mul, 2.0), (Binary::Div, 1.0)] {
            assert!(binary_into(&d, &two.data(), kind, 1.0));
            assert_eq!(x.to_vec::<f32>(), vec![want]);
        }
        assert_eq!(d.version(), 4);
        // A source of more dims would broadcast `x` to [1, 1]. A scaled sum is rounded once.
        let wide = Tensor::from_vec(vec![1.0f32], &[1, 1]).unwrap();
        assert!(!binary_into(&d, &wide.data(), Binary::Add, 1.0));
        let y = Tensor::from_vec(vec![1.0f64], &[]).unwrap();
        assert!(binary_into(&y.data(), &y.data(), Binary::Add, 0.5));
        assert_eq!(y.to_vec::<f64>(), vec![1.5]);
        let (z, w) = (Tensor::scalar(0.1f32), Tensor::scalar(0.7f32));
        assert!(binary_into(&z.data(), &w.data(), Binary::Sub, 3.0));
        assert_eq!(z.to_vec::<f32>(), vec![0.7f32.mul_add(-3.0, 0.1)]);
        // Integers are not written in place.
        let i = Tensor::from_vec(vec![3i64], &[1]).unwrap();
        assert!(!binary_into(&i.data(), &i.data(), Binary::Add, 1.0));
        assert_eq!((x.to_vec::<f32>(), d.version()), (vec![1.0], 4));
    }
}
