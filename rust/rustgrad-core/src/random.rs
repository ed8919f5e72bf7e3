//! PyTorch-compatible CPU random number generation.
//!
//! This module reproduces, bit for bit, the numbers that PyTorch's CPU
//! generator (`at::CPUGeneratorImpl`) produces after `torch.manual_seed(s)`
//! for `torch.rand`, `torch.randn`, `torch.normal`, `torch.randint`,
//! `torch.randperm` and `Tensor.bernoulli_` (non-MKL path), in `float32` and
//! `float64`.
//!
//! # How PyTorch does it (and therefore how we do it)
//!
//! * **Engine.** A 32-bit Mersenne Twister (MT19937) seeded with the low 32
//!   bits of the 64-bit seed using the classic `1812433253` initialisation.
//!   The full 64-bit seed is remembered and reported by `initial_seed()`.
//!   The state is regenerated lazily: a countdown (`left`) reaches zero on the
//!   first draw after seeding and every 624 draws afterwards.
//! * **64-bit draws.** `random64()` is two 32-bit draws, the first one being
//!   the high half.
//! * **Uniform reals.** `float` takes the low 24 bits of one 32-bit draw,
//!   `double` the low 53 bits of one 64-bit draw; the integer is scaled by
//!   `2^-24` / `2^-53`, giving `[0, 1)`, then mapped to `[from, to)` with
//!   `x * (to - from) + from`, which GCC-built PyTorch evaluates as one fused
//!   multiply-add (as is `z * std + mean` for normals); we use `mul_add`.
//! * **Normals, serial path.** Tensors with fewer than 16 elements (and
//!   non-contiguous ones) go element by element through
//!   `normal_distribution<double>`: Box-Muller in `f64` on two uniform
//!   doubles `u1`, `u2`: `r = sqrt(-2 log1p(-u2))`, `theta = 2 pi u1`; it
//!   returns `r cos(theta)` and caches `r sin(theta)` in the generator, which
//!   the *next* serial normal draw returns without consuming random numbers.
//!   `manual_seed` clears the cache. The `f64` result is cast to the tensor's
//!   dtype. (PyTorch 1.x used `log(1 - u2)`, which differs in the last bit
//!   for a few percent of `f64` samples; we follow current PyTorch.)
//! * **Normals, vectorised path.** Contiguous tensors with at least 16
//!   elements are first filled with uniforms (one per element), then each
//!   block of 16 is transformed in place: for `j < 8`, `u1 = 1 - d[j]`,
//!   `u2 = d[j + 8]`, `d[j] = r cos(theta)`, `d[j + 8] = r sin(theta)` with
//!   `r = sqrt(-2 ln u1)`, `theta = 2 pi u2`. If the length is not a
//!   multiple of 16, the *last 16* elements are refilled with fresh uniforms
//!   and transformed again (so they overlap the last full block). This path
//!   does not touch the cached normal.
//!   For `float32`, x86-64 PyTorch builds run the AVX2 kernel, which uses
//!   the Cephes-style `log256_ps` / `sincos256_ps` polynomial approximations
//!   from `avx_mathfun.h` instead of libm (the kernel is never dispatched to
//!   AVX-512). [`Generator::fill_normal_f32`] emulates that kernel exactly in
//!   scalar code, including the fused multiply-adds that GCC forms when it
//!   compiles those intrinsics with `-mfma`. `float64` uses the plain scalar
//!   kernel with libm `log`/`cos`/`sin`.
//! * **randint.** `random_(from, to)` draws one 32-bit value per element when
//!   `to - from < 2^28`, otherwise one 64-bit value, and returns
//!   `from + value % (to - from)`.
//! * **randperm.** Fisher-Yates on `0..n`: for `i` in `0..n-1`, swap `i` with
//!   `i + random() % (n - i)` (for very large `n`, an inside-out variant with
//!   64-bit draws).
//! * **random_.** `random_(from, to)` is randint's draw into any dtype (the
//!   integer is computed in 64 bits, then converted). `random_(from, None)`
//!   takes `to` one past the dtype's largest exact integer (`2^24` for
//!   `float`, `2^53` for `double`, the maximum for integer types); from
//!   `i64::MIN` that is the whole 64-bit range, where the raw 64-bit draw is
//!   the value. `random_()` is a 32-bit draw modulo `2^24 + 1` for `float`,
//!   modulo 2 for `bool`, and a 64-bit draw modulo `2^53 + 1` for `double`,
//!   `2^63` for `int64`. (Float targets given a range beyond their exact
//!   integers, which PyTorch warns about, are not reproduced.)
//! * **Scalar samplers** (one 53-bit `double` uniform `u` per element, in the
//!   target's memory order, computed in `f64` and rounded to the dtype):
//!   `exponential_(l)` is `(-1 / l) * log1p(-u)`; `geometric_(p)` is
//!   `ceil(ln u / log1p(-p))`; `cauchy_(m, s)` is `s * tan(pi (u - 0.5)) + m`
//!   (one fused multiply-add); `log_normal_(m, s)` is `exp` of the serial
//!   Box-Muller normal above (with its cache), whatever the tensor's size.
//! * **poisson** (rates read in row-major order): below 10, the number of
//!   uniforms whose running product stays above `exp(-rate)`; from 10 on,
//!   Hormann's transformed rejection with squeeze (PTRS).
//! * **multinomial**: see `ops::sampling` (an exponential race, or a binary
//!   search of the normalised running sums).
//!
//! These were found by experiment against PyTorch 2.15 (comparing candidate
//! formulas on the raw MT19937 stream), not taken from its source.
//!
//! Results of the libm calls (`log`, `log1p`, `sin`, `cos`, `logf`, `cosf`,
//! `sinf`) come from the platform's C library, as in PyTorch; on Linux with
//! glibc they are identical.
//!
//! Verified bit for bit against PyTorch 2.15.0 (PyPI wheel, x86-64): 4M
//! `float32` and 1M `float64` `randn` values, a 3000-call mixed sequence of
//! all the operations above, and the byte image of `torch.get_rng_state()`.
//!
//! As in PyTorch, the process-wide [`default_generator`] starts from a
//! non-deterministic seed; [`Generator::default`] uses [`DEFAULT_SEED`].
//! Independent generators (`torch.Generator()`) are [`Generator`]s behind
//! their own [`Mutex`]; every drawing function takes the one to [`lock`].

use std::sync::{Mutex, MutexGuard, OnceLock};

/// Seed of a freshly constructed generator, as in `torch.Generator()`
/// (`c10::detail::default_rng_seed_val`).
pub const DEFAULT_SEED: u64 = 67280421310721;

/// Number of bytes of the serialized generator state returned by
/// [`Generator::get_state`]; the same layout and size (5056) as
/// `torch.get_rng_state()` on 64-bit little-endian platforms.
pub const STATE_SIZE: usize = 5056;

/// Mersenne Twister state length.
const MT_N: usize = 624;
/// Mersenne Twister shift length.
const MT_M: usize = 397;
const MT_MATRIX_A: u32 = 0x9908_b0df;
const MT_UPPER_MASK: u32 = 0x8000_0000;
const MT_LOWER_MASK: u32 = 0x7fff_ffff;

/// Number of elements from which PyTorch switches to the block-of-16 normal
/// kernel for contiguous tensors.
const NORMAL_BLOCK: usize = 16;

/// Byte offsets inside the serialized state (mirrors PyTorch's
/// `CPUGeneratorImplState` POD on LP64).
mod layout {
    pub const SEED: usize = 0;
    pub const LEFT: usize = 8;
    pub const SEEDED: usize = 12;
    pub const NEXT: usize = 16;
    pub const STATE: usize = 24;
    pub const NORMAL_X: usize = STATE + 8 * super::MT_N; // 5016
    pub const NORMAL_Y: usize = NORMAL_X + 8;
    pub const NORMAL_RHO: usize = NORMAL_Y + 8;
    pub const NORMAL_VALID: usize = NORMAL_RHO + 8; // 5040, then 4 bytes padding
    pub const FLOAT_SAMPLE: usize = 5048;
    pub const FLOAT_VALID: usize = 5052; // then 3 bytes padding
}

/// MT19937's tempering of one state word into an output.
#[inline(always)]
fn temper(mut y: u32) -> u32 {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c_5680;
    y ^= (y << 15) & 0xefc6_0000;
    y ^ (y >> 18)
}

/// A PyTorch-compatible CPU pseudo random number generator
/// (MT19937 plus the cached Box-Muller normals of `at::CPUGeneratorImpl`).
#[derive(Clone)]
pub struct Generator {
    /// The 64-bit seed given at construction / `manual_seed`.
    seed: u64,
    /// Draws left before the state must be regenerated (1..=624).
    left: u32,
    /// Index of the next state word to temper (0..=624).
    next: u32,
    /// The Mersenne Twister state words.
    state: [u32; MT_N],
    /// Cached second output of `normal_distribution<float>`.
    next_float_normal: Option<f32>,
    /// Cached second output of `normal_distribution<double>`.
    next_double_normal: Option<f64>,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("initial_seed", &self.seed)
            .field("left", &self.left)
            .field("next", &self.next)
            .field("next_double_normal", &self.next_double_normal)
            .field("next_float_normal", &self.next_float_normal)
            .finish_non_exhaustive()
    }
}

impl Default for Generator {
    /// A generator seeded with [`DEFAULT_SEED`], like `torch.Generator()`.
    fn default() -> Self {
        Self::new(DEFAULT_SEED)
    }
}

impl Generator {
    /// Creates a generator seeded with `seed` (like
    /// `torch.Generator().manual_seed(seed)`).
    pub fn new(seed: u64) -> Self {
        let mut g = Generator {
            seed: 0,
            left: 1,
            next: 0,
            state: [0; MT_N],
            next_float_normal: None,
            next_double_normal: None,
        };
        g.manual_seed(seed);
        g
    }

    /// Re-seeds the generator and clears the cached normal samples
    /// (`torch.manual_seed` / `Generator.manual_seed`). Only the low 32 bits
    /// feed the Mersenne Twister; the full value is kept for
    /// [`initial_seed`](Self::initial_seed).
    pub fn manual_seed(&mut self, seed: u64) {
        self.next_float_normal = None;
        self.next_double_normal = None;
        self.seed = seed;
        self.state[0] = seed as u32;
        for j in 1..MT_N {
            let prev = self.state[j - 1];
            self.state[j] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(j as u32);
        }
        self.left = 1;
        self.next = 0;
    }

    /// Re-seeds the generator from a non-deterministic source and returns
    /// the new seed (`torch.seed()`).
    pub fn seed(&mut self) -> u64 {
        let s = nondeterministic_seed();
        self.manual_seed(s);
        s
    }

    /// The seed last given to [`new`](Self::new) or
    /// [`manual_seed`](Self::manual_seed) (`torch.initial_seed()`).
    pub fn initial_seed(&self) -> u64 {
        self.seed
    }

    /// Regenerates the 624 state words (the MT19937 "twist").
    fn twist(&mut self) {
        let s = &mut self.state;
        let mix = |u: u32, v: u32| {
            let m = (u & MT_UPPER_MASK) | (v & MT_LOWER_MASK);
            (m >> 1) ^ if v & 1 != 0 { MT_MATRIX_A } else { 0 }
        };
        for k in 0..MT_N - MT_M {
            s[k] = s[k + MT_M] ^ mix(s[k], s[k + 1]);
        }
        for k in MT_N - MT_M..MT_N - 1 {
            s[k] = s[k + MT_M - MT_N] ^ mix(s[k], s[k + 1]);
        }
        s[MT_N - 1] = s[MT_M - 1] ^ mix(s[MT_N - 1], s[0]);
        self.left = MT_N as u32;
        self.next = 0;
    }

    /// Next 32-bit output of the engine (`CPUGeneratorImpl::random()`).
    pub fn random_u32(&mut self) -> u32 {
        self.left -= 1;
        if self.left == 0 {
            self.twist();
        }
        let y = self.state[self.next as usize];
        self.next += 1;
        temper(y)
    }

    /// Next 64-bit output (`CPUGeneratorImpl::random64()`): two 32-bit
    /// draws, the first forming the high half.
    pub fn random_u64(&mut self) -> u64 {
        let hi = self.random_u32() as u64;
        let lo = self.random_u32() as u64;
        (hi << 32) | lo
    }

    /// One `float` uniform in `[0, 1)` from the low 24 bits of a 32-bit draw.
    #[inline]
    fn unit_f32(&mut self) -> f32 {
        (self.random_u32() & 0x00ff_ffff) as f32 * (1.0 / 16_777_216.0)
    }

    /// One `double` uniform in `[0, 1)` from the low 53 bits of a 64-bit
    /// draw.
    #[inline]
    fn unit_f64(&mut self) -> f64 {
        (self.random_u64() & ((1u64 << 53) - 1)) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Fills `out` with uniform samples in `[low, high)` as `torch.rand`
    /// (`low = 0`, `high = 1`) and `Tensor.uniform_(low, high)` do for
    /// `float32`; one 32-bit draw per element, in order.
    pub fn fill_uniform_f32(&mut self, out: &mut [f32], low: f32, high: f32) {
        let range = high - low;
        for v in out.iter_mut() {
            *v = mul_add_f32(self.unit_f32(), range, low);
        }
    }

    /// Fills `out` with uniform samples in `[low, high)` as `torch.rand` and
    /// `Tensor.uniform_(low, high)` do for `float64`; one 64-bit draw per
    /// element, in order.
    pub fn fill_uniform_f64(&mut self, out: &mut [f64], low: f64, high: f64) {
        let range = high - low;
        for v in out.iter_mut() {
            *v = mul_add_f64(self.unit_f64(), range, low);
        }
    }

    /// One sample of PyTorch's scalar `normal_distribution<double>`
    /// (Box-Muller with the second value cached in the generator). This is
    /// the per-element path PyTorch uses for tensors with fewer than 16
    /// elements or non-contiguous tensors (elements visited in the order
    /// PyTorch's `TensorIterator` visits them).
    pub fn normal_f64(&mut self, mean: f64, std: f64) -> f64 {
        if let Some(z) = self.next_double_normal.take() {
            return mul_add_f64(z, std, mean);
        }
        let u1 = self.unit_f64();
        let u2 = self.unit_f64();
        let r = (-2.0 * (-u2).ln_1p()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u1;
        self.next_double_normal = Some(r * theta.sin());
        mul_add_f64(r * theta.cos(), std, mean)
    }

    /// Fills `out` element by element with [`normal_f64`](Self::normal_f64)
    /// cast to `f32` (PyTorch's serial normal path for `float32`).
    pub fn fill_normal_serial_f32(&mut self, out: &mut [f32], mean: f64, std: f64) {
        for v in out.iter_mut() {
            *v = self.normal_f64(mean, std) as f32;
        }
    }

    /// Fills `out` element by element with [`normal_f64`](Self::normal_f64)
    /// (PyTorch's serial normal path for `float64`).
    pub fn fill_normal_serial_f64(&mut self, out: &mut [f64], mean: f64, std: f64) {
        for v in out.iter_mut() {
            *v = self.normal_f64(mean, std);
        }
    }

    /// `torch.randn` / `Tensor.normal_(mean, std)` on a contiguous `float32`
    /// tensor of `out.len()` elements (x86-64 AVX2 kernel for 16 or more
    /// elements, serial `f64` Box-Muller below that).
    pub fn fill_normal_f32(&mut self, out: &mut [f32], mean: f32, std: f32) {
        self.fill_normal_f32_f64params(out, mean as f64, std as f64);
    }

    /// Like [`fill_normal_f32`](Self::fill_normal_f32) but takes `mean` and
    /// `std` as `f64`, the way PyTorch receives them from Python; the serial
    /// path (fewer than 16 elements) computes with the `f64` values, the
    /// block path with them rounded to `f32`.
    pub fn fill_normal_f32_f64params(&mut self, out: &mut [f32], mean: f64, std: f64) {
        if out.len() < NORMAL_BLOCK {
            self.fill_normal_serial_f32(out, mean, std);
            return;
        }
        let (mean, std) = (mean as f32, std as f32);
        self.fill_normal_blocks_f32(out, |blk| avx2_normal_block(blk, mean, std));
    }

    /// `Tensor.normal_` on a contiguous `float32` tensor as PyTorch builds
    /// *without* the AVX2 kernel compute it (e.g. aarch64 / Apple silicon,
    /// or `ATEN_CPU_CAPABILITY=default` on x86-64): the block path uses libm
    /// `logf`/`cosf`/`sinf`. Below 16 elements it equals
    /// [`fill_normal_f32_f64params`](Self::fill_normal_f32_f64params).
    pub fn fill_normal_f32_generic(&mut self, out: &mut [f32], mean: f64, std: f64) {
        if out.len() < NORMAL_BLOCK {
            self.fill_normal_serial_f32(out, mean, std);
            return;
        }
        let (mean, std) = (mean as f32, std as f32);
        self.fill_normal_blocks_f32(out, |blk| scalar_normal_block_f32(blk, mean, std));
    }

    /// `Tensor.normal_` / `torch.randn` for `float16`/`bfloat16`: computed in `float32` as
    /// [`fill_normal_f32_f64params`](Self::fill_normal_f32_f64params), except that PyTorch's
    /// reduced-precision kernel draws the first uniforms only for the whole blocks of 16, so
    /// the redrawn tail block starts one draw per leftover element earlier.
    pub fn fill_normal_reduced(&mut self, out: &mut [f32], mean: f64, std: f64) {
        if out.len() < NORMAL_BLOCK {
            self.fill_normal_serial_f32(out, mean, std);
            return;
        }
        let (mean, std) = (mean as f32, std as f32);
        let whole = out.len() - out.len() % NORMAL_BLOCK;
        self.fill_normal_blocks_f32_drawing(out, whole, |blk| avx2_normal_block(blk, mean, std));
    }

    /// Shared driver of the block-of-16 normal kernels for `f32`.
    fn fill_normal_blocks_f32(&mut self, out: &mut [f32], block: impl Fn(&mut [f32])) {
        let n = out.len();
        self.fill_normal_blocks_f32_drawing(out, n, block)
    }

    /// [`fill_normal_blocks_f32`](Self::fill_normal_blocks_f32), drawing the first uniforms
    /// for the first `first_draws` elements only.
    fn fill_normal_blocks_f32_drawing(&mut self, out: &mut [f32], first_draws: usize, block: impl Fn(&mut [f32])) {
        let n = out.len();
        debug_assert!(n >= NORMAL_BLOCK);
        for v in out[..first_draws].iter_mut() {
            *v = self.unit_f32();
        }
        for chunk in out.chunks_exact_mut(NORMAL_BLOCK) {
            block(chunk);
        }
        if n % NORMAL_BLOCK != 0 {
            // PyTorch redraws the last 16 elements and transforms them again.
            let tail = &mut out[n - NORMAL_BLOCK..];
            for v in tail.iter_mut() {
                *v = self.unit_f32();
            }
            block(tail);
        }
    }

    /// `torch.randn` / `Tensor.normal_(mean, std)` on a contiguous `float64`
    /// tensor of `out.len()` elements.
    pub fn fill_normal_f64(&mut self, out: &mut [f64], mean: f64, std: f64) {
        let n = out.len();
        if n < NORMAL_BLOCK {
            self.fill_normal_serial_f64(out, mean, std);
            return;
        }
        for v in out.iter_mut() {
            *v = self.unit_f64();
        }
        for chunk in out.chunks_exact_mut(NORMAL_BLOCK) {
            scalar_normal_block_f64(chunk, mean, std);
        }
        if n % NORMAL_BLOCK != 0 {
            let tail = &mut out[n - NORMAL_BLOCK..];
            for v in tail.iter_mut() {
                *v = self.unit_f64();
            }
            scalar_normal_block_f64(tail, mean, std);
        }
    }

    /// `torch.randint(low, high, size)` / `Tensor.random_(low, high)` for an
    /// `int64` tensor: each element is `low + r % (high - low)`, with `r` a
    /// 32-bit draw when `high - low < 2^28` and a 64-bit draw otherwise
    /// (the threshold of current open-source PyTorch, verified against 2.15;
    /// older releases such as 1.13 switched at `2^32`).
    ///
    /// Callers must ensure `low < high` (PyTorch raises an error otherwise);
    /// this is checked only in debug builds, and with `low >= high` release
    /// builds treat the range as the wrapped difference (or, for an empty
    /// range, fill with `low`).
    pub fn fill_randint_i64(&mut self, out: &mut [i64], low: i64, high: i64) {
        debug_assert!(low < high, "randint expects low < high, got {low} >= {high}");
        let range = (high as u64).wrapping_sub(low as u64);
        if range == 0 {
            out.fill(low);
            return;
        }
        if range >= 1 << 28 {
            for v in out.iter_mut() {
                *v = (self.random_u64() % range).wrapping_add(low as u64) as i64;
            }
        } else {
            for v in out.iter_mut() {
                *v = (self.random_u32() as u64 % range).wrapping_add(low as u64) as i64;
            }
        }
    }

    /// `torch.randperm(n)`: a random permutation of `0..n`.
    pub fn randperm(&mut self, n: usize) -> Vec<i64> {
        let n64 = n as u64;
        if n64 < (u32::MAX / 20) as u64 {
            let mut p: Vec<i64> = (0..n as i64).collect();
            for i in 0..n.saturating_sub(1) {
                let z = (self.random_u32() as u64 % (n64 - i as u64)) as usize;
                p.swap(i, i + z);
            }
            p
        } else {
            // Inside-out Fisher-Yates with 64-bit draws, as PyTorch does for
            // huge n.
            let mut p = crate::alloc::vec_zeroed::<i64>(n);
            for i in 0..n {
                let z = (self.random_u64() % (i as u64 + 1)) as usize;
                p[i] = p[z];
                p[z] = i as i64;
            }
            p
        }
    }

    /// `Tensor.bernoulli_(p)` with a scalar `p` on PyTorch's default
    /// (non-MKL) path: element `i` is `1.0` when a fresh `f64` uniform is
    /// below `p`, else `0.0`. PyTorch builds with MKL running on Intel CPUs
    /// use MKL's own stream instead and cannot be matched.
    pub fn fill_bernoulli_f32(&mut self, out: &mut [f32], p: f64) {
        self.fill_bernoulli(out, p, 1.0, 0.0);
    }

    /// `f64` version of [`fill_bernoulli_f32`](Self::fill_bernoulli_f32).
    pub fn fill_bernoulli_f64(&mut self, out: &mut [f64], p: f64) {
        self.fill_bernoulli(out, p, 1.0, 0.0);
    }

    /// `out[i] = one` when the `i`-th 53-bit uniform `u` is below `p` (a `p` in `[0, 1]`), else
    /// `zero`. The draws between two regenerations of the state are read straight from the
    /// state words (tempered in a loop the compiler vectorises), and `u < p` is tested as
    /// `x < ceil(p * 2^53)` on the 53-bit integer `x` behind `u = x * 2^-53`: the same outcome,
    /// since both scalings by `2^53` are exact.
    fn fill_bernoulli<T: Copy>(&mut self, out: &mut [T], p: f64, one: T, zero: T) {
        let threshold = (p * 9_007_199_254_740_992.0).ceil() as u64;
        let mut done = 0;
        while done < out.len() {
            // draws possible before the next regeneration (which the draw that makes `left`
            // zero triggers)
            let pairs = ((self.left as usize).saturating_sub(1) / 2).min(out.len() - done);
            if pairs == 0 {
                out[done] = if self.unit_f64() < p { one } else { zero };
                done += 1;
                continue;
            }
            let start = self.next as usize;
            let words = &self.state[start..start + 2 * pairs];
            for (o, w) in out[done..done + pairs].iter_mut().zip(words.chunks_exact(2)) {
                let x = ((temper(w[0]) as u64 & 0x1f_ffff) << 32) | temper(w[1]) as u64;
                *o = if x < threshold { one } else { zero };
            }
            self.next += 2 * pairs as u32;
            self.left -= 2 * pairs as u32;
            done += pairs;
        }
    }

    /// One `double` uniform in `[0, 1)` (53 bits of one 64-bit draw), the
    /// `uniform_real_distribution<double>(0, 1)` every scalar sampler below
    /// starts from.
    pub fn uniform_f64(&mut self) -> f64 {
        self.unit_f64()
    }

    /// One `Tensor.exponential_(lambd)` sample: `(-1 / lambd) * log1p(-u)`
    /// with `u` a 53-bit uniform, in `f64` whatever the dtype.
    pub fn exponential(&mut self, lambd: f64) -> f64 {
        (-1.0 / lambd) * (-self.unit_f64()).ln_1p()
    }

    /// One `Tensor.geometric_(p)` sample: `ceil(ln(u) / log1p(-p))`.
    pub fn geometric(&mut self, p: f64) -> f64 {
        (self.unit_f64().ln() / (-p).ln_1p()).ceil()
    }

    /// One `Tensor.cauchy_(median, sigma)` sample:
    /// `sigma * tan(pi * (u - 0.5)) + median`, one fused multiply-add.
    pub fn cauchy(&mut self, median: f64, sigma: f64) -> f64 {
        let t = (std::f64::consts::PI * (self.unit_f64() - 0.5)).tan();
        mul_add_f64(sigma, t, median)
    }

    /// One `Tensor.log_normal_(mean, std)` sample: `exp` of the serial
    /// Box-Muller normal (with its cached second value), whatever the size.
    pub fn log_normal(&mut self, mean: f64, std: f64) -> f64 {
        self.normal_f64(mean, std).exp()
    }

    /// One integer in `[from, from + range)` as `random_(from, to)` draws it:
    /// a 32-bit draw when `range < 2^28`, else a 64-bit one, reduced modulo
    /// `range`; `range == 0` stands for the full 64-bit range (the raw draw, `from` ignored).
    pub fn random_in(&mut self, from: i64, range: u64) -> i64 {
        let r = if range == 0 {
            // The whole 64-bit range: the raw draw, as is.
            return self.random_u64() as i64;
        } else if range >= 1 << 28 {
            self.random_u64() % range
        } else {
            self.random_u32() as u64 % range
        };
        r.wrapping_add(from as u64) as i64
    }

    /// One `torch.poisson` sample of rate `lambda` (`lambda >= 0`), from
    /// 53-bit uniforms. Below 10: count the uniforms whose running product
    /// stays above `exp(-lambda)`. From 10 on: Hormann's transformed
    /// rejection with squeeze (PTRS, 1993), two uniforms per attempt.
    pub fn poisson(&mut self, lambda: f64) -> f64 {
        if lambda <= 0.0 {
            return 0.0;
        }
        if lambda < 10.0 {
            let limit = (-lambda).exp();
            let mut count = 0.0;
            let mut product = 1.0;
            loop {
                product *= self.unit_f64();
                if product > limit {
                    count += 1.0;
                } else {
                    return count;
                }
            }
        }
        let sqrt_lambda = lambda.sqrt();
        let ln_lambda = lambda.ln();
        let b = 0.931 + 2.53 * sqrt_lambda;
        let a = -0.059 + 0.02483 * b;
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let v_r = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.unit_f64() - 0.5;
            let v = self.unit_f64();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
            if us >= 0.07 && v <= v_r {
                return k;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            let lhs = v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln();
            if lhs <= -lambda + k * ln_lambda - ln_gamma(k + 1.0) {
                return k;
            }
        }
    }

    /// Serializes the full generator state (engine and cached normals) in
    /// the byte layout of `torch.get_rng_state()` (5056 bytes, little
    /// endian), so states can be exchanged with PyTorch.
    pub fn get_state(&self) -> Vec<u8> {
        let mut b = vec![0u8; STATE_SIZE];
        put(&mut b, layout::SEED, &self.seed.to_le_bytes());
        put(&mut b, layout::LEFT, &(self.left as i32).to_le_bytes());
        put(&mut b, layout::SEEDED, &1i32.to_le_bytes());
        put(&mut b, layout::NEXT, &(self.next as u64).to_le_bytes());
        for (k, w) in self.state.iter().enumerate() {
            put(&mut b, layout::STATE + 8 * k, &(*w as u64).to_le_bytes());
        }
        if let Some(y) = self.next_double_normal {
            put(&mut b, layout::NORMAL_Y, &y.to_le_bytes());
            put(&mut b, layout::NORMAL_VALID, &1i32.to_le_bytes());
        }
        if let Some(x) = self.next_float_normal {
            put(&mut b, layout::FLOAT_SAMPLE, &x.to_le_bytes());
            b[layout::FLOAT_VALID] = 1;
        }
        b
    }

    /// Restores a state produced by [`get_state`](Self::get_state) or by
    /// `torch.get_rng_state()`. Fails, leaving the generator unchanged, if
    /// the size or the engine fields are invalid.
    pub fn set_state(&mut self, state: &[u8]) -> Result<(), String> {
        if state.len() != STATE_SIZE {
            return Err(format!("expected a generator state of {STATE_SIZE} bytes, got {}", state.len()));
        }
        let seed = u64::from_le_bytes(take::<8>(state, layout::SEED));
        let left = i32::from_le_bytes(take::<4>(state, layout::LEFT));
        let seeded = i32::from_le_bytes(take::<4>(state, layout::SEEDED));
        let next = u64::from_le_bytes(take::<8>(state, layout::NEXT)) as u32;
        // PyTorch checks seeded, 0 < left <= 624 and next <= 624; we also
        // require that the remaining draws stay inside the state array.
        if seeded == 0
            || left <= 0
            || left as usize > MT_N
            || next as usize > MT_N
            || left as usize + next as usize > MT_N + 1
        {
            return Err("Invalid mt19937 state".to_string());
        }
        let mut words = [0u32; MT_N];
        for (k, w) in words.iter_mut().enumerate() {
            *w = u64::from_le_bytes(take::<8>(state, layout::STATE + 8 * k)) as u32;
        }
        let double_valid = i32::from_le_bytes(take::<4>(state, layout::NORMAL_VALID)) != 0;
        let float_valid = state[layout::FLOAT_VALID] != 0;
        self.seed = seed;
        self.left = left as u32;
        self.next = next;
        self.state = words;
        self.next_double_normal = double_valid.then(|| f64::from_le_bytes(take::<8>(state, layout::NORMAL_Y)));
        self.next_float_normal = float_valid.then(|| f32::from_le_bytes(take::<4>(state, layout::FLOAT_SAMPLE)));
        Ok(())
    }
}

/// `ln |Gamma(x)|` from the C library (glibc's `lgamma_r`, as PyTorch's
/// `std::lgamma`), or the `libm` crate's port where there is no glibc.
fn ln_gamma(x: f64) -> f64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn lgamma_r(x: f64, sign: *mut i32) -> f64;
        }
        let mut sign = 0i32;
        // SAFETY: lgamma_r is a pure, reentrant libm function writing only `sign`.
        unsafe { lgamma_r(x, &mut sign) }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        libm::lgamma_r(x).0
    }
}

/// Writes `bytes` at `offset` of `buf`.
fn put(buf: &mut [u8], offset: usize, bytes: &[u8]) {
    buf[offset..offset + bytes.len()].copy_from_slice(bytes);
}

/// Reads `K` bytes at `offset` of `buf` (the caller has checked the length).
fn take<const K: usize>(buf: &[u8], offset: usize) -> [u8; K] {
    let mut a = [0u8; K];
    a.copy_from_slice(&buf[offset..offset + K]);
    a
}

/// `a * b + c` as PyTorch's x86-64 builds evaluate `x * (to - from) + from`
/// and `z * std + mean`: GCC contracts them into one fused multiply-add.
#[inline]
fn mul_add_f32(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

/// `f64` counterpart of [`mul_add_f32`].
#[inline]
fn mul_add_f64(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

/// PyTorch's scalar `normal_fill_16` for `f64`: Box-Muller on 16 uniforms
/// in place (first half feeds the radius, second half the angle).
fn scalar_normal_block_f64(d: &mut [f64], mean: f64, std: f64) {
    for j in 0..NORMAL_BLOCK / 2 {
        let u1 = 1.0 - d[j];
        let u2 = d[j + 8];
        let radius = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        d[j] = mul_add_f64(radius * theta.cos(), std, mean);
        d[j + 8] = mul_add_f64(radius * theta.sin(), std, mean);
    }
}

/// PyTorch's scalar `normal_fill_16` for `f32` (builds without AVX2): libm
/// single-precision functions; the angle is formed in `f64` and rounded.
fn scalar_normal_block_f32(d: &mut [f32], mean: f32, std: f32) {
    for j in 0..NORMAL_BLOCK / 2 {
        let u1 = 1.0 - d[j];
        let u2 = d[j + 8];
        let radius = (-2.0 * u1.ln()).sqrt();
        let theta = (2.0 * std::f64::consts::PI * u2 as f64) as f32;
        d[j] = mul_add_f32(radius * theta.cos(), std, mean);
        d[j + 8] = mul_add_f32(radius * theta.sin(), std, mean);
    }
}

/// Scalar emulation of PyTorch's `normal_fill_16_AVX2`, lane by lane.
fn avx2_normal_block(d: &mut [f32], mean: f32, std: f32) {
    // _mm256_set1_ps(2.0f * c10::pi<double>): the product is a double,
    // rounded once to float.
    let two_pi = (2.0 * std::f64::consts::PI) as f32;
    for j in 0..NORMAL_BLOCK / 2 {
        let u1 = 1.0 - d[j];
        let u2 = d[j + 8];
        let radius = (-2.0 * cephes_logf(u1)).sqrt();
        let (sin_t, cos_t) = cephes_sincosf(two_pi * u2);
        d[j] = (radius * cos_t).mul_add(std, mean);
        d[j + 8] = (radius * sin_t).mul_add(std, mean);
    }
}

// Constants of avx_mathfun.h (Cephes). They are written there as C double
// literals converted to float, hence the `as f32` on f64 literals (the same
// double rounding; a few literals are shortened to the digits that still
// denote the same f64).
const SQRTHF: f32 = std::f64::consts::FRAC_1_SQRT_2 as f32;
const LOG_P: [f32; 9] = [
    7.037_683_629_2E-2_f64 as f32,
    -1.151_461_031_0E-1_f64 as f32,
    1.167_699_874_0E-1_f64 as f32,
    -1.242_014_084_6E-1_f64 as f32,
    1.424_932_278_7E-1_f64 as f32,
    -1.666_805_766_5E-1_f64 as f32,
    2.000_071_476_5E-1_f64 as f32,
    -2.499_999_399_3E-1_f64 as f32,
    3.333_333_117_4E-1_f64 as f32,
];
const LOG_Q1: f32 = -2.121_944_40e-4_f64 as f32;
const LOG_Q2: f32 = 0.693_359_375_f64 as f32;
const MINUS_DP1: f32 = -0.785_156_25_f64 as f32;
const MINUS_DP2: f32 = -2.418_756_484_985_351_6e-4_f64 as f32;
const MINUS_DP3: f32 = -3.774_894_977_445_941e-8_f64 as f32;
const SINCOF: [f32; 3] =
    [-1.951_529_589_1E-4_f64 as f32, 8.332_160_873_6E-3_f64 as f32, -1.666_665_461_1E-1_f64 as f32];
const COSCOF: [f32; 3] = [
    2.443_315_711_809_948E-005_f64 as f32,
    -1.388_731_625_493_765E-003_f64 as f32,
    4.166_664_568_298_827E-002_f64 as f32,
];
const FOPI: f32 = 1.273_239_544_735_16_f64 as f32;

/// One lane of `log256_ps` from `avx_mathfun.h`, with the multiply-adds
/// that GCC fuses (`-ffp-contract=fast`, `-mfma`) evaluated as FMAs.
fn cephes_logf(x: f32) -> f32 {
    let invalid = x <= 0.0;
    // _mm256_max_ps(x, min_norm) returns the second operand unless x is
    // strictly greater.
    let min_norm = f32::from_bits(0x0080_0000);
    let x = if x > min_norm { x } else { min_norm };
    let bits = x.to_bits();
    let mut e = ((bits >> 23) as i32).wrapping_sub(0x7f) as f32;
    let mut m = f32::from_bits((bits & !0x7f80_0000) | 0.5f32.to_bits());
    e += 1.0;
    let below = m < SQRTHF;
    let tmp = if below { m } else { 0.0 };
    m -= 1.0;
    e -= if below { 1.0 } else { 0.0 };
    m += tmp;
    let z = m * m;
    let mut y = LOG_P[0];
    for &p in &LOG_P[1..] {
        y = y.mul_add(m, p);
    }
    y *= m;
    let t = e * LOG_Q1;
    y = y.mul_add(z, t);
    y = (-z).mul_add(0.5, y);
    m += y;
    m = e.mul_add(LOG_Q2, m);
    if invalid {
        f32::from_bits(u32::MAX)
    } else {
        m
    }
}

/// `_mm256_cvttps_epi32` for one lane: truncation, with the "integer
/// indefinite" value for NaN and out-of-range inputs.
fn cvtt_f32_i32(v: f32) -> i32 {
    if !(-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        i32::MIN
    } else {
        v as i32
    }
}

/// One lane of `sincos256_ps` from `avx_mathfun.h`, returning
/// `(sin x, cos x)`, with GCC's FMA contractions.
fn cephes_sincosf(x: f32) -> (f32, f32) {
    let xb = x.to_bits();
    let mut sign_sin = xb & 0x8000_0000;
    let ax = f32::from_bits(xb & 0x7fff_ffff);
    let mut j = cvtt_f32_i32(ax * FOPI);
    j = j.wrapping_add(1) & !1;
    let yj = j as f32;
    let swap_sign_sin = ((j & 4) as u32) << 29;
    let sin_poly_here = (j & 2) == 0;
    let sign_cos = ((!j.wrapping_sub(2) & 4) as u32) << 29;
    sign_sin ^= swap_sign_sin;

    // Extended precision modular arithmetic: x - j * (pi / 4).
    let mut r = yj.mul_add(MINUS_DP1, ax);
    r = yj.mul_add(MINUS_DP2, r);
    r = yj.mul_add(MINUS_DP3, r);

    let z = r * r;
    let mut c = COSCOF[0].mul_add(z, COSCOF[1]);
    c = c.mul_add(z, COSCOF[2]);
    c *= z;
    let half_z = z * 0.5;
    c = c.mul_add(z, -half_z);
    c += 1.0;

    let mut s = SINCOF[0].mul_add(z, SINCOF[1]);
    s = s.mul_add(z, SINCOF[2]);
    s *= z;
    s = s.mul_add(r, r);

    // Blend exactly like the intrinsics (masking to +0.0 and adding).
    let ysin2 = if sin_poly_here { s } else { 0.0 };
    let ysin1 = if sin_poly_here { 0.0 } else { c };
    let s_rest = s - ysin2;
    let c_rest = c - ysin1;
    let sin_v = ysin1 + ysin2;
    let cos_v = c_rest + s_rest;
    (f32::from_bits(sin_v.to_bits() ^ sign_sin), f32::from_bits(cos_v.to_bits() ^ sign_cos))
}

/// A 64-bit seed from `/dev/urandom`, falling back to std's randomly keyed
/// hasher mixed with the clock and process id.
fn nondeterministic_seed() -> u64 {
    use std::io::Read;
    let mut buf = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(&mut buf).is_ok() {
            return u64::from_le_bytes(buf);
        }
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.write_u32(std::process::id());
    h.finish()
}

/// The process-wide default generator (like `torch.default_generator`),
/// behind a [`std::sync::Mutex`]. As in PyTorch it starts from a
/// non-deterministic seed; call `manual_seed` for reproducible results.
pub fn default_generator() -> &'static Mutex<Generator> {
    static DEFAULT: OnceLock<Mutex<Generator>> = OnceLock::new();
    DEFAULT.get_or_init(|| Mutex::new(Generator::new(nondeterministic_seed())))
}

/// Locks `gen` for drawing (a poisoned lock is recovered: the state is always valid).
pub fn lock(gen: &Mutex<Generator>) -> MutexGuard<'_, Generator> {
    gen.lock().unwrap_or_else(|e| e.into_inner())
}

/// Re-seeds the default generator (`torch.manual_seed(seed)`).
pub fn manual_seed(seed: u64) {
    default_generator().lock().unwrap_or_else(|e| e.into_inner()).manual_seed(seed);
}

#[cfg(test)]
mod tests {
    //! Expected values were produced by PyTorch 2.15.0 (PyPI wheel, x86-64,
    //! CPU capability AVX512) and are compared bit for bit; the comments give
    //! the values as PyTorch prints them.
    use super::*;

    fn seeded(seed: u64) -> Generator {
        Generator::new(seed)
    }

    fn assert_bits_f32(got: &[f32], expected: &[u32]) {
        let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, expected, "f32 bit patterns differ");
    }

    fn assert_bits_f64(got: &[f64], expected: &[u64]) {
        let got: Vec<u64> = got.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, expected, "f64 bit patterns differ");
    }

    fn randn_f32(g: &mut Generator, n: usize) -> Vec<f32> {
        let mut v = vec![0.0; n];
        g.fill_normal_f32(&mut v, 0.0, 1.0);
        v
    }

    fn randn_f64(g: &mut Generator, n: usize) -> Vec<f64> {
        let mut v = vec![0.0; n];
        g.fill_normal_f64(&mut v, 0.0, 1.0);
        v
    }

    #[test]
    fn mt19937_reference_output() {
        // The C++ standard requires the 10000th output of a default
        // (seed 5489) mt19937 to be 4123659995.
        let mut g = seeded(5489);
        let mut last = 0;
        for _ in 0..10_000 {
            last = g.random_u32();
        }
        assert_eq!(last, 4_123_659_995);
    }

    #[test]
    fn random_u64_is_two_draws_high_first() {
        let mut a = seeded(0);
        let mut b = seeded(0);
        let hi = a.random_u32() as u64;
        let lo = a.random_u32() as u64;
        assert_eq!(b.random_u64(), (hi << 32) | lo);
        // 2357136044 is the first output of mt19937 seeded with 0.
        assert_eq!(hi, 2_357_136_044);
    }

    #[test]
    fn seeds_and_default() {
        assert_eq!(DEFAULT_SEED, 67_280_421_310_721);
        let mut g = Generator::default();
        assert_eq!(g.initial_seed(), DEFAULT_SEED);
        let mut v = [0.0f32; 2];
        g.fill_uniform_f32(&mut v, 0.0, 1.0);
        assert_bits_f32(&v, &[0x3e88daec, 0x3f5f5e04]);
        // Only the low 32 bits feed the engine; the full seed is reported.
        let mut g = seeded(123_456_789_012_345);
        assert_eq!(g.initial_seed(), 123_456_789_012_345);
        let mut v = [0.0f32; 3];
        g.fill_uniform_f32(&mut v, 0.0, 1.0);
        assert_bits_f32(&v, &[0x3dc68010, 0x3f7cd8af, 0x3d666170]);
        g.manual_seed(7);
        assert_eq!(g.initial_seed(), 7);
    }

    #[test]
    fn rand_float32() {
        // manual_seed(0); rand(1) -> 0.4963
        let mut g = seeded(0);
        let mut v = [0.0f32; 1];
        g.fill_uniform_f32(&mut v, 0.0, 1.0);
        assert_bits_f32(&v, &[0x3efe1558]);
        assert!((v[0] - 0.4963).abs() < 5e-5);
        // manual_seed(0); rand(5) -> 0.4963 0.7682 0.0885 0.1320 0.3074
        let mut g = seeded(0);
        let mut v = [0.0f32; 5];
        g.fill_uniform_f32(&mut v, 0.0, 1.0);
        assert_bits_f32(&v, &[0x3efe1558, 0x3f44aa2f, 0x3db533a8, 0x3e073300, 0x3e9d6686]);
    }

    #[test]
    fn rand_float64() {
        // manual_seed(0); rand(3, dtype=float64)
        let mut g = seeded(0);
        let mut v = [0.0f64; 3];
        g.fill_uniform_f64(&mut v, 0.0, 1.0);
        assert_eq!(v, [0.9700530018065531, 0.707819864399788, 0.45938294312745087]);
    }

    #[test]
    fn uniform_with_bounds() {
        // manual_seed(0); empty(6).uniform_(-2.5, 3.1)
        // -> 0.2790 1.8020 -2.0045 -1.7606 -0.7784 1.0508
        let mut g = seeded(0);
        let mut v = [0.0f32; 6];
        g.fill_uniform_f32(&mut v, -2.5, 3.1);
        assert_bits_f32(&v, &[0x3e8eddeb, 0x3fe6a950, 0xc0004a29, 0xbfe15c4d, 0xbf474756, 0x3f8681f1]);
        let mut g = seeded(0);
        let mut v = [0.0f64; 4];
        g.fill_uniform_f64(&mut v, -2.5, 3.1);
        assert_bits_f64(&v, &[0x4007755807acee41, 0x3ff76bb05d2b707f, 0x3fb292466f9b5247, 0x40053fdefc747c5c]);
    }

    #[test]
    fn randn_small_uses_serial_box_muller() {
        // manual_seed(0); randn(1) -> 1.5410
        let mut g = seeded(0);
        assert_bits_f32(&randn_f32(&mut g, 1), &[0x3fc53f5c]);
        // manual_seed(0); randn(2, 3)
        // -> [[1.5410, -0.2934, -2.1788], [0.5684, -1.0845, -1.3986]]
        let mut g = seeded(0);
        let v = randn_f32(&mut g, 6);
        assert_bits_f32(&v, &[0x3fc53f5c, 0xbe963c50, 0xc00b7149, 0x3f1184b6, 0xbf8ad1a1, 0xbfb3052d]);
        let printed = [1.5410f32, -0.2934, -2.1788, 0.5684, -1.0845, -1.3986];
        for (a, b) in v.iter().zip(printed) {
            assert!((a - b).abs() < 5e-5);
        }
    }

    #[test]
    fn randn_caches_second_sample() {
        // manual_seed(42); randn(1) -> 0.3367; randn(1) -> 0.1288
        let mut g = seeded(42);
        assert_bits_f32(&randn_f32(&mut g, 1), &[0x3eac62ae]);
        assert_bits_f32(&randn_f32(&mut g, 1), &[0x3e03e69d]);
        // The cache is shared between dtypes: manual_seed(0); randn(1);
        // randn(1, dtype=float64) -> -0.2934289057609464.
        let mut g = seeded(0);
        assert_bits_f32(&randn_f32(&mut g, 1), &[0x3fc53f5c]);
        assert_bits_f64(&randn_f64(&mut g, 1), &[0xbfd2c78a087c6fea]);
        // manual_seed clears it.
        let mut g = seeded(0);
        randn_f32(&mut g, 1);
        g.manual_seed(0);
        assert_bits_f32(&randn_f32(&mut g, 1), &[0x3fc53f5c]);
    }

    #[test]
    fn randn_4x4_block_path() {
        // manual_seed(6); x = randn(4, 4); y = randn(4, 4)
        let mut g = seeded(6);
        let x = randn_f32(&mut g, 16);
        let y = randn_f32(&mut g, 16);
        assert_bits_f32(
            &x,
            &[
                0xbf9b0c07, 0x3f215f2e, 0xbfbc53b0, 0xbfaae7cd, 0xbefab59e, 0x3e06e769, 0x3ea8b3d7, 0x3ea721be,
                0xbef60ac0, 0x3f8d345a, 0x40231ab9, 0x3e99ece1, 0xbf0b1059, 0xbf8ac4c1, 0x3fbb09cd, 0xbfd06001,
            ],
        );
        assert_bits_f32(
            &y,
            &[
                0xbfbd72f6, 0xbf881287, 0x3eb9dd06, 0x3ecc86f0, 0x3e152753, 0xbf3c06ba, 0xbf7cbcc8, 0x3fecf4bf,
                0xbfabff79, 0x3f5a80bc, 0x3f61920d, 0xbf26f5f0, 0x3f14ba62, 0x3eb65022, 0x3c8372ec, 0x3ecdc02c,
            ],
        );
        let printed_x = [
            -1.2113f32, 0.6304, -1.4713, -1.3352, -0.4897, 0.1317, 0.3295, 0.3264, -0.4806, 1.1032, 2.5485, 0.3006,
            -0.5432, -1.0841, 1.4612, -1.6279,
        ];
        let printed_y = [
            -1.4801f32, -1.0631, 0.3630, 0.3995, 0.1457, -0.7345, -0.9873, 1.8512, -1.3437, 0.8535, 0.8811, -0.6522,
            0.5810, 0.3561, 0.0160, 0.4019,
        ];
        for (a, b) in x.iter().chain(&y).zip(printed_x.iter().chain(&printed_y)) {
            assert!((a - b).abs() < 5e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn randn_tail_is_recomputed() {
        // manual_seed(0); randn(17)
        let mut g = seeded(0);
        assert_bits_f32(
            &randn_f32(&mut g, 17),
            &[
                0xbf901b85, 0xbfd91446, 0x3f111004, 0x3f4b235d, 0x3f194d8b, 0xbfc70d5b, 0xbeaec6ca, 0x3fed2f4e,
                0x3eefaa55, 0xbf15e32b, 0xbe318eeb, 0x3e3be1a4, 0x3fb1d6c0, 0x3fcb0d00, 0x3f72409c, 0xbf57fb33,
                0x3f6e8c30,
            ],
        );
    }

    #[test]
    fn normal_with_mean_and_std() {
        // manual_seed(0); empty(20).normal_(0.3, 1.7)
        let mut g = seeded(0);
        let mut v = vec![0.0f32; 20];
        g.fill_normal_f32_f64params(&mut v, 0.3, 1.7);
        assert_bits_f32(
            &v,
            &[
                0xbfce952f, 0xbfd45a85, 0xbe0101d8, 0xbee00c52, 0x3fa8b51d, 0xc015fe8e, 0xbe8f8524, 0x405cce9c,
                0x3f8c41fe, 0x3d029de2, 0x4030452e, 0x3f4095b0, 0x402a5cf0, 0x403fcb0d, 0x3ff45085, 0xbf912f1f,
                0x3ff12a5c, 0x401c2e22, 0x406d5786, 0x3ec85f63,
            ],
        );
        // manual_seed(0); empty(5, dtype=float64).normal_(0.3, 1.7)
        let mut g = seeded(0);
        let mut v = vec![0.0f64; 5];
        g.fill_normal_f64(&mut v, 0.3, 1.7);
        assert_bits_f64(
            &v,
            &[0x40075b8834758818, 0xbfc9733bb673e2e8, 0xc00b3b45eab59952, 0x3ff442e6924e79e4, 0xbff8b2f22b66fedc],
        );
    }

    #[test]
    fn randn_float64() {
        // manual_seed(0); randn(5, dtype=float64) (serial path)
        let mut g = seeded(0);
        assert_eq!(
            randn_f64(&mut g, 5),
            [1.5409961082440433, -0.2934289057609464, -2.1787893820745574, 0.5684312772806678, -1.084522342424021]
        );
        // manual_seed(0); randn(17, dtype=float64) (block path with tail)
        let mut g = seeded(0);
        assert_bits_f64(
            &randn_f64(&mut g, 17),
            &[
                0xc0027bb92e9262dc,
                0xbfe443c91ccf2402,
                0xbff42cbf54f08f8e,
                0xbfe7432edfaba107,
                0xbf9471a3c0e2f22a,
                0x3fcaeb1b572b6a04,
                0x3fc6ae2402b7b62b,
                0xbfea9389d082941d,
                0x3fce8e503666016d,
                0xbfcf101e358981ad,
                0xbfe8bc82256d975b,
                0xbff985dd0627b1f0,
                0xbfe5fbef2bc4be3b,
                0x3ff7cf270386ca66,
                0xbfdcb2d8340fb171,
                0xbfec8318cc163de5,
                0x3fe5986ed8e63e98,
            ],
        );
    }

    #[test]
    fn randint_values() {
        // manual_seed(0); randint(0, 10, (10,)); randint(-5, 5, (5,));
        // randint(0, 2**40, (3,)); randint(0, 2**31, (3,))
        let mut g = seeded(0);
        let mut a = [0i64; 10];
        g.fill_randint_i64(&mut a, 0, 10);
        assert_eq!(a, [4, 9, 3, 0, 3, 9, 7, 3, 7, 3]);
        let mut b = [0i64; 5];
        g.fill_randint_i64(&mut b, -5, 5);
        assert_eq!(b, [-4, 1, 1, 4, 3]);
        let mut c = [0i64; 3];
        g.fill_randint_i64(&mut c, 0, 1 << 40);
        assert_eq!(c, [931851835992, 602942290234, 832329121254]);
        let mut d = [0i64; 3];
        g.fill_randint_i64(&mut d, 0, 1 << 31);
        assert_eq!(d, [124102743, 292249176, 1827923621]);
        // Extreme bounds do not overflow.
        let mut e = [0i64; 4];
        g.fill_randint_i64(&mut e, i64::MIN, i64::MAX);
        assert!(e.iter().all(|&x| x < i64::MAX));
    }

    #[test]
    fn randperm_values() {
        // manual_seed(0); randperm(10); randperm(5)
        let mut g = seeded(0);
        assert_eq!(g.randperm(10), [4, 1, 7, 5, 3, 9, 0, 8, 6, 2]);
        assert_eq!(g.randperm(5), [3, 2, 4, 0, 1]);
        assert!(g.randperm(0).is_empty());
        assert_eq!(g.randperm(1), [0]);
    }

    #[test]
    fn bernoulli_fill_matches_one_draw_at_a_time() {
        for p in [0.0, 1e-300, 0.1, 0.3, 0.5, 0.999_999, 1.0] {
            for (skip, n) in [(0usize, 1usize), (0, 700), (1, 1000), (3, 623), (623, 2000)] {
                let (mut fast, mut slow) = (seeded(7), seeded(7));
                for _ in 0..skip {
                    fast.random_u32();
                    slow.random_u32();
                }
                let mut got = vec![0.0f64; n];
                fast.fill_bernoulli_f64(&mut got, p);
                let want: Vec<f64> = (0..n).map(|_| if slow.unit_f64() < p { 1.0 } else { 0.0 }).collect();
                assert_eq!(got, want, "p={p} skip={skip} n={n}");
                assert_eq!(fast.random_u32(), slow.random_u32());
            }
        }
    }

    #[test]
    fn bernoulli_values() {
        // manual_seed(0); empty(10).bernoulli_(0.3) (non-MKL path)
        let mut g = seeded(0);
        let mut v = [0.0f32; 10];
        g.fill_bernoulli_f32(&mut v, 0.3);
        assert_eq!(v, [0., 0., 0., 0., 0., 0., 1., 0., 0., 1.]);
    }

    #[test]
    fn scalar_samplers() {
        // empty(5, dtype=float64).exponential_(0.25, generator=G(12))
        let mut g = seeded(12);
        let e: Vec<f64> = (0..5).map(|_| g.exponential(0.25)).collect();
        assert_eq!(
            e,
            [5.171213780684221, 3.888994440518558, 1.2542315438639289, 0.4137533551813666, 7.575799033011068]
        );
        // empty(6).geometric_(0.2, generator=G(13))
        let mut g = seeded(13);
        let geo: Vec<f64> = (0..6).map(|_| g.geometric(0.2)).collect();
        assert_eq!(geo, [2.0, 4.0, 10.0, 1.0, 1.0, 2.0]);
        // empty(5, dtype=float64).cauchy_(0.3, 0.7, generator=G(14))
        let mut g = seeded(14);
        let c: Vec<f64> = (0..5).map(|_| g.cauchy(0.3, 0.7)).collect();
        assert_eq!(
            c,
            [0.4243454038649423, 0.17107221304846038, 0.618443326339372, 0.25629365015592503, -0.08716318261778885]
        );
        // empty(5, dtype=float64).log_normal_(0.1, 0.5, generator=G(15))
        let mut g = seeded(15);
        let l: Vec<f64> = (0..5).map(|_| g.log_normal(0.1, 0.5)).collect();
        assert_eq!(
            l,
            [0.7766061340371018, 1.5481479068651416, 0.8414073988657718, 1.7425705808545926, 1.8853201829217294]
        );
    }

    #[test]
    fn random_in_ranges() {
        // empty(3, dtype=int64).random_(-2**63, None, generator=G(11)): the raw 64-bit draws.
        let mut g = seeded(11);
        let full: Vec<i64> = (0..3).map(|_| g.random_in(i64::MIN, 0)).collect();
        assert_eq!(full, [3325388913236545215, 359254775711865947, 8544873655684927415]);
        // random_(5, None): range 2^63 - 5 from 5.
        let mut g = seeded(11);
        let from5: Vec<i64> = (0..3).map(|_| g.random_in(5, (1u64 << 63) - 5)).collect();
        assert_eq!(from5, [3325388913236545220, 359254775711865952, 8544873655684927420]);
        // random_(-50, 2**40): a 64-bit draw per element.
        let mut g = seeded(11);
        let big: Vec<i64> = (0..4).map(|_| g.random_in(-50, (1u64 << 40) + 50)).collect();
        assert_eq!(big, [657272150767, 346435998657, 348337495323, 59204811168]);
        // float32 random_(): a 32-bit draw modulo 2^24 + 1.
        let mut g = seeded(10);
        let f: Vec<i64> = (0..5).map(|_| g.random_in(0, (1 << 24) + 1)).collect();
        assert_eq!(f, [7685188, 8100913, 5242847, 10318225, 3589278]);
    }

    #[test]
    fn poisson_small_and_large_rates() {
        // poisson(tensor([0, 0.5, 3, 9.99, 10, 25, 300, 1e5]), generator=G(18))
        let mut g = seeded(18);
        let rates = [0.0, 0.5, 3.0, 9.99, 10.0, 25.0, 300.0, 1e5];
        let x: Vec<f64> = rates.iter().map(|&l| g.poisson(l as f32 as f64)).collect();
        assert_eq!(x, [0.0, 1.0, 3.0, 17.0, 8.0, 16.0, 314.0, 99842.0]);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn state_matches_torch_layout() {
        // manual_seed(0); randn(1); get_rng_state()
        let mut g = seeded(0);
        randn_f32(&mut g, 1);
        let s = g.get_state();
        assert_eq!(s.len(), STATE_SIZE);
        assert_eq!(hex(&s[..32]), "00000000000000006d020000010000000400000000000000120da19100000000");
        assert_eq!(
            hex(&s[5016..]),
            "0000000000000000ea6f7c088ac7d2bf00000000000000000100000000000000\
             0000000000000000"
        );
        // set_rng_state(s); randn(3) -> -0.2934 (cached), -2.1788, 0.5684
        let mut h = seeded(1234);
        h.set_state(&s).unwrap();
        assert_bits_f32(&randn_f32(&mut h, 3), &[0xbe963c50, 0xc00b7149, 0x3f1184b6]);
        assert_eq!(h.initial_seed(), 0);
    }

    #[test]
    fn state_round_trip_and_validation() {
        let mut g = seeded(99);
        let mut skip = vec![0.0f32; 700];
        g.fill_uniform_f32(&mut skip, 0.0, 1.0);
        randn_f64(&mut g, 3);
        let s = g.get_state();
        let mut h = Generator::default();
        h.set_state(&s).unwrap();
        assert_eq!(randn_f64(&mut g, 40), randn_f64(&mut h, 40));
        assert_eq!(g.random_u64(), h.random_u64());

        let mut bad = s.clone();
        bad.pop();
        assert!(h.set_state(&bad).is_err());
        let mut bad = s.clone();
        bad[8..12].copy_from_slice(&0i32.to_le_bytes()); // left = 0
        assert!(h.set_state(&bad).is_err());
        let mut bad = s.clone();
        bad[12..16].copy_from_slice(&0i32.to_le_bytes()); // not seeded
        assert!(h.set_state(&bad).is_err());
        let mut bad = s;
        bad[16..24].copy_from_slice(&625u64.to_le_bytes()); // next out of range
        assert!(h.set_state(&bad).is_err());
    }

    #[test]
    fn generic_kernel_agrees_on_small_tensors() {
        let mut a = seeded(3);
        let mut b = seeded(3);
        let mut x = vec![0.0f32; 9];
        let mut y = vec![0.0f32; 9];
        a.fill_normal_f32_f64params(&mut x, 0.0, 1.0);
        b.fill_normal_f32_generic(&mut y, 0.0, 1.0);
        assert_eq!(x, y);
        // On large tensors both kernels agree to within float rounding.
        let mut x = vec![0.0f32; 333];
        let mut y = vec![0.0f32; 333];
        a.fill_normal_f32(&mut x, 0.0, 1.0);
        b.fill_normal_f32_generic(&mut y, 0.0, 1.0);
        for (p, q) in x.iter().zip(&y) {
            assert!((p - q).abs() <= 1e-5 * (1.0 + p.abs()), "{p} vs {q}");
        }
    }

    #[test]
    fn default_generator_is_shared() {
        manual_seed(0);
        let mut g = default_generator().lock().unwrap();
        g.manual_seed(0);
        assert_eq!(g.initial_seed(), 0);
        assert_eq!(g.random_u32(), 2_357_136_044);
    }
}
