//! Note [PyTorch's float summation order]: float32 and float64 sums that print the same digits
//! as PyTorch's.
//!
//! PyTorch's CPU `sum` (and `mean`, which is the sum divided by the count) accumulates in the
//! element type itself, not in a wider one, so its result depends on the order of the
//! additions. We reproduce that order, established by experiment against PyTorch 2.15 on
//! x86-64, for the layouts that dominate real programs:
//!
//! - **Cascade** (`cascade`): values are added into a level-0 accumulator in runs of
//!   `2^p` values (`p = max(4, ceil(log2 n) / 4)`); after each run the level-0 total moves up
//!   into level 1 (and level 0 restarts at zero), and whenever the number of values seen is a
//!   multiple of `2^(p*j)`, level j moves into level j+1 too (4 levels). Values left after
//!   the last full run go to level 0; the levels are then added into level 0 in order.
//! - **Four-way cascade** (`ilp_cascade`): the sequence is read as rows of four; each of the
//!   four columns is cascaded on its own; the values after the last full row are added to
//!   column 0; then columns 1, 2 and 3 are added to column 0 in order.
//! - **A contiguous run reduced to one value** (`inner_sum`), when it holds at least one CPU
//!   32-byte vector (8 float32 or 4 float64 values, also on AVX-512 machines): each vector
//!   lane is a four-way cascade over the vectors; the values after the last whole vector are
//!   summed in order, then the lanes are added to that in lane order. A shorter run is a
//!   four-way cascade.
//! - **Columns of a row-major block reduced over its rows** (`outer_column_sum`): with at least
//!   one vector of columns, the columns in blocks of four vectors are cascaded and all the others
//!   four-way cascaded. Fewer columns than a vector: groups of four are cascaded, the rest
//!   four-way cascaded.
//! - **One output from at least 32768 values** on several threads: the values are cut into
//!   `min(threads, ceil(n / 32768))` equal chunks, each summed as above, and the chunk totals
//!   added in order.
//!
//! Other layouts (reductions over middle dims, non-contiguous inputs) keep rustgrad's own
//! order: eight float64 running sums, rounded once (more accurate, not always PyTorch's last
//! bit).

use crate::dtype::Float;

/// PyTorch's grain below which a reduction to one value stays on one thread.
const GRAIN: usize = 32768;

static THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The intra-op thread count (`torch.get_num_threads()`): the value last given to
/// [`set_num_threads`], else the size of rayon's pool. It decides how PyTorch would split a
/// large sum, so results agree with PyTorch run with as many threads.
pub fn num_threads() -> usize {
    match THREADS.load(std::sync::atomic::Ordering::Relaxed) {
        0 => rayon::current_num_threads(),
        n => n,
    }
}

/// Sets the intra-op thread count (`torch.set_num_threads`): the parallel kernels then run on
/// that many threads (see [`in_pool`]).
pub fn set_num_threads(n: usize) {
    THREADS.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// The pool of the size last set, once it differs from rayon's global pool.
static POOL: parking_lot::Mutex<Option<(usize, std::sync::Arc<rayon::ThreadPool>)>> = parking_lot::const_mutex(None);

/// The pool of [`num_threads`] threads when `set_num_threads` chose a size other than rayon's
/// global pool's (built once per size); `None` for the global pool, or when it cannot be built.
fn sized_pool() -> Option<std::sync::Arc<rayon::ThreadPool>> {
    let n = THREADS.load(std::sync::atomic::Ordering::Relaxed);
    if n == 0 || n == rayon::current_num_threads() {
        return None;
    }
    let mut slot = POOL.lock();
    match &*slot {
        Some((size, pool)) if *size == n => Some(pool.clone()),
        _ => {
            let pool = std::sync::Arc::new(rayon::ThreadPoolBuilder::new().num_threads(n).build().ok()?);
            *slot = Some((n, pool.clone()));
            Some(pool)
        }
    }
}

/// Runs `f`, whose rayon parallel iterators then use [`num_threads`] threads: rayon's global
/// pool until `set_num_threads` chooses another size, then a pool of that size.
pub fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match sized_pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// Posts `job` to the pool [`in_pool`] would run on (the helpers of [`crate::parallel`]).
pub fn spawn_in_pool(job: impl FnOnce() + Send + 'static) {
    match sized_pool() {
        Some(pool) => pool.spawn(job),
        None => rayon::spawn(job),
    }
}

/// How many values of `elem_size` bytes one of PyTorch's CPU reduction vectors holds: its sum
/// kernel works on 32-byte vectors (8 float32 values) even on AVX-512 machines.
pub fn vector_lanes(elem_size: usize) -> usize {
    32 / elem_size
}

/// The cascade of a sequence of `n` values read through `at`.
fn cascade<T: Float>(n: usize, at: impl Fn(usize) -> T) -> T {
    const LEVELS: usize = 4;
    let ceil_log2 = if n <= 2 { 1 } else { usize::BITS - (n - 1).leading_zeros() } as usize;
    let power = (ceil_log2 / LEVELS).max(4);
    let step = 1usize << power;
    let mask = step - 1;
    let mut acc = [T::zero(); LEVELS];
    let mut i = 0;
    while i + step <= n {
        for _ in 0..step {
            acc[0] = acc[0] + at(i);
            i += 1;
        }
        for j in 1..LEVELS {
            acc[j] = acc[j] + acc[j - 1];
            acc[j - 1] = T::zero();
            if i & (mask << (j * power)) != 0 {
                break;
            }
        }
    }
    while i < n {
        acc[0] = acc[0] + at(i);
        i += 1;
    }
    for j in 1..LEVELS {
        acc[0] = acc[0] + acc[j];
    }
    acc[0]
}

/// The four-way cascade of `n` values read through `at`.
fn ilp_cascade<T: Float>(n: usize, at: impl Fn(usize) -> T) -> T {
    let rows = n / 4;
    let mut partial = [T::zero(); 4];
    for (k, p) in partial.iter_mut().enumerate() {
        *p = cascade(rows, |i| at(4 * i + k));
    }
    for i in rows * 4..n {
        partial[0] = partial[0] + at(i);
    }
    partial[0] + partial[1] + partial[2] + partial[3]
}

/// The sum of one contiguous run, in PyTorch's order (one thread).
///
/// Lane `l`'s four-way cascade reads vector `4i + k` as column `k * lanes + l` of a row-major
/// block `4 * lanes` wide, so all of them run side by side in one pass over the values
/// ([`cascade_columns`]); the result is the same as cascading each lane on its own.
fn inner_sum_serial<T: Float>(v: &[T], lanes: usize) -> T {
    let n = v.len();
    if n < lanes {
        return ilp_cascade(n, |i| v[i]);
    }
    let vectors = n / lanes;
    let rows = vectors / 4;
    let width = 4 * lanes;
    // width <= 64 (four vectors of at most 16 lanes); an array, not a SmallVec: building one
    // and moving it into place copied its whole inline buffer on every call.
    let mut columns = [T::zero(); 64];
    let columns = &mut columns[..width];
    cascade_columns(&v[..rows * width], rows, width, 0, columns);
    let mut total = T::zero();
    for &x in &v[vectors * lanes..] {
        total = total + x;
    }
    for lane in 0..lanes {
        let mut first = columns[lane];
        for i in rows * 4..vectors {
            first = first + v[i * lanes + lane];
        }
        total = total + (first + columns[lanes + lane] + columns[2 * lanes + lane] + columns[3 * lanes + lane]);
    }
    total
}

/// The sum of a contiguous run reduced to a single output, in PyTorch's order on `threads`
/// threads: equal chunks summed at once on the pool, their totals added in order.
pub fn inner_sum<T: Float>(v: &[T], threads: usize) -> T {
    let lanes = vector_lanes(std::mem::size_of::<T>());
    let n = v.len();
    if n < GRAIN || threads <= 1 {
        return inner_sum_serial(v, lanes);
    }
    let tasks = threads.min(n.div_ceil(GRAIN));
    let chunk = n.div_ceil(tasks);
    let totals = crate::parallel::map_parts(n.div_ceil(chunk), |part| {
        inner_sum_serial(&v[part * chunk..n.min((part + 1) * chunk)], lanes)
    });
    totals.into_iter().fold(T::zero(), |total, part| total + part)
}

/// The sum of a contiguous run that is one of several outputs (a reduction of the last dims).
pub fn row_sum<T: Float>(v: &[T]) -> T {
    inner_sum_serial(v, vector_lanes(std::mem::size_of::<T>()))
}

/// The sum of column `j` of a row-major block of `cols` columns reduced over its rows;
/// `column` holds that column's values top to bottom (the reference for [`outer_sums`]).
#[cfg(test)]
fn outer_column_sum<T: Float>(column: &[T], j: usize, cols: usize) -> T {
    let lanes = vector_lanes(std::mem::size_of::<T>());
    let n = column.len();
    let plain = || cascade(n, |i| column[i]);
    let four_way = || ilp_cascade(n, |i| column[i]);
    if cols >= lanes {
        // Blocks of four vectors; then single vectors and the leftover columns, one by one.
        let quad_end = cols / (4 * lanes) * (4 * lanes);
        return if j < quad_end { plain() } else { four_way() };
    }
    // Fewer columns than a vector: groups of four, then the leftover columns one by one.
    if j < cols / 4 * 4 {
        plain()
    } else {
        four_way()
    }
}

/// The column sums of a row-major `rows x cols` block `v` (a reduction of its leading dims), in
/// PyTorch's order: the same as [`outer_column_sum`] on each column, without gathering the
/// columns. The plainly cascaded columns run side by side, so each step of the cascade adds a
/// contiguous slice of a row (a loop the compiler vectorises); the few four-way columns read
/// their values down the column.
pub fn outer_sums<T: Float>(v: &[T], cols: usize) -> Vec<T> {
    let lanes = vector_lanes(std::mem::size_of::<T>());
    let rows = v.len().checked_div(cols).unwrap_or(0);
    let plain_end = if cols >= lanes { cols / (4 * lanes) * (4 * lanes) } else { cols / 4 * 4 };
    let mut out = vec![T::zero(); cols];
    const BLOCK: usize = 64;
    // Blocks of columns are independent, so a split across threads changes no bits.
    let blocks = |j0: usize, out: &mut [T]| {
        for (k, part) in out.chunks_mut(BLOCK).enumerate() {
            cascade_columns(v, rows, cols, j0 + k * BLOCK, part);
        }
    };
    if crate::kernels::parallel(v.len()) && plain_end > BLOCK {
        crate::parallel::for_each_chunk_mut(&mut out[..plain_end], BLOCK, blocks);
    } else {
        blocks(0, &mut out[..plain_end]);
    }
    for (j, o) in out.iter_mut().enumerate().skip(plain_end) {
        *o = ilp_cascade(rows, |i| v[i * cols + j]);
    }
    out
}

/// [`cascade`] of columns `j0..j0 + out.len()` of a row-major `rows x cols` block at once, one
/// accumulator per column and level.
fn cascade_columns<T: Float>(v: &[T], rows: usize, cols: usize, j0: usize, out: &mut [T]) {
    const LEVELS: usize = 4;
    let width = out.len();
    let n = rows;
    let ceil_log2 = if n <= 2 { 1 } else { usize::BITS - (n - 1).leading_zeros() } as usize;
    let power = (ceil_log2 / LEVELS).max(4);
    let step = 1usize << power;
    let mask = step - 1;
    // On the stack for every width used here (up to 64 columns): `row_sum` calls this once per
    // row. A plain array: a SmallVec of this size was built and then moved (a 1 KB copy per row).
    const MAX_WIDTH: usize = 64;
    let mut on_stack = [T::zero(); LEVELS * MAX_WIDTH];
    let mut on_heap = Vec::new();
    let acc: &mut [T] = if width <= MAX_WIDTH {
        &mut on_stack[..LEVELS * width]
    } else {
        on_heap.resize(LEVELS * width, T::zero());
        &mut on_heap
    };
    let add_row = |acc: &mut [T], i: usize| {
        let row = &v[i * cols + j0..i * cols + j0 + width];
        for (a, &x) in acc[..width].iter_mut().zip(row) {
            *a = *a + x;
        }
    };
    let mut i = 0;
    while i + step <= n {
        for _ in 0..step {
            add_row(acc, i);
            i += 1;
        }
        for j in 1..LEVELS {
            let (lower, upper) = acc.split_at_mut(j * width);
            for (up, low) in upper[..width].iter_mut().zip(&mut lower[(j - 1) * width..]) {
                *up = *up + *low;
                *low = T::zero();
            }
            if i & (mask << (j * power)) != 0 {
                break;
            }
        }
    }
    while i < n {
        add_row(acc, i);
        i += 1;
    }
    for (c, o) in out.iter_mut().enumerate() {
        let mut total = acc[c];
        for j in 1..LEVELS {
            total = total + acc[j * width + c];
        }
        *o = total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cascade_adds_every_value() {
        for n in [0usize, 1, 5, 16, 17, 100, 1000, 5000] {
            let v: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let want = (n * n.saturating_sub(1) / 2) as f64;
            assert_eq!(cascade(n, |i| v[i]), want);
            assert_eq!(ilp_cascade(n, |i| v[i]), want);
            assert_eq!(inner_sum(&v, 2), want);
            assert_eq!(outer_column_sum(&v, 3, 40), want);
        }
    }

    #[test]
    fn outer_sums_match_the_column_by_column_reference() {
        for (rows, cols) in [(1usize, 1usize), (3, 5), (17, 8), (100, 33), (1000, 70), (4099, 130), (70, 1024)] {
            let v: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919) % 1013) as f32 * 0.013 - 6.1).collect();
            let sums = outer_sums(&v, cols);
            for j in 0..cols {
                let column: Vec<f32> = (0..rows).map(|i| v[i * cols + j]).collect();
                assert_eq!(sums[j].to_bits(), outer_column_sum(&column, j, cols).to_bits(), "{rows}x{cols} column {j}");
            }
        }
    }

    /// Each lane's four-way cascade on its own, then the tail and the lanes in order (the
    /// definition [`inner_sum_serial`] computes in one pass).
    fn inner_sum_lane_by_lane<T: Float>(v: &[T], lanes: usize) -> T {
        let n = v.len();
        if n < lanes {
            return ilp_cascade(n, |i| v[i]);
        }
        let vectors = n / lanes;
        let mut total = T::zero();
        for &x in &v[vectors * lanes..] {
            total = total + x;
        }
        for lane in 0..lanes {
            total = total + ilp_cascade(vectors, |i| v[i * lanes + lane]);
        }
        total
    }

    #[test]
    fn one_pass_inner_sum_matches_the_lane_by_lane_definition() {
        for n in [0usize, 3, 8, 31, 32, 33, 37, 255, 1000, 4099, 65_537, 300_001] {
            let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1013) as f32 * 0.013 - 6.1).collect();
            assert_eq!(inner_sum_serial(&v, 8).to_bits(), inner_sum_lane_by_lane(&v, 8).to_bits(), "f32 n={n}");
            let w: Vec<f64> = v.iter().map(|&x| x as f64 * 1.1).collect();
            assert_eq!(inner_sum_serial(&w, 4).to_bits(), inner_sum_lane_by_lane(&w, 4).to_bits(), "f64 n={n}");
        }
    }

    #[test]
    fn float32_sums_round_as_pytorch() {
        // torch.full((1000,), 0.1).sum() prints tensor(100.0000): 100.00000762939453
        let v = vec![0.1f32; 1000];
        assert_eq!(inner_sum(&v, 2) as f64, 100.00000762939453);
        assert_eq!(inner_sum(&[0.1f32; 7], 2), 0.70000005f32);
    }
}
