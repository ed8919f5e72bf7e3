//! Which of several equal elements PyTorch's CPU kernels return is decided by the selection
//! algorithm they run, not by a tie rule: `sort(stable=False)` and `mode` run the C++ standard
//! library's introsort, `topk` its `partial_sort` (heap select) or `nth_element` (introselect),
//! and `kthvalue` a median-of-three quickselect. PyTorch's wheels are built with GCC, so the
//! algorithms here follow libstdc++'s steps (pivot choice, partition, heap layout, insertion-sort
//! cut-offs) to put equal elements where PyTorch puts them.
//!
//! Every function takes `less(a, b)`, a strict weak order, and permutes `v` in place.

/// Below this length introsort leaves a range to the final insertion sort.
const SORT_THRESHOLD: usize = 16;

/// `floor(log2(n))` for `n > 0`.
fn floor_log2(n: usize) -> usize {
    (usize::BITS - 1 - n.leading_zeros()) as usize
}

/// Moves the median of `v[a]`, `v[b]`, `v[c]` to `v[result]` (swapping it with what is there).
fn move_median_to_first<E>(
    v: &mut [E],
    result: usize,
    a: usize,
    b: usize,
    c: usize,
    less: &mut impl FnMut(&E, &E) -> bool,
) {
    let median = if less(&v[a], &v[b]) {
        if less(&v[b], &v[c]) {
            b
        } else if less(&v[a], &v[c]) {
            c
        } else {
            a
        }
    } else if less(&v[a], &v[c]) {
        a
    } else if less(&v[b], &v[c]) {
        c
    } else {
        b
    };
    v.swap(result, median);
}

/// Hoare partition of `v[lo..hi]` around the pivot at `v[pivot]` (outside the range), with no
/// bounds checks needed because the pivot's median-of-three neighbours act as sentinels.
/// Returns the first index of the upper part.
fn partition_around<E>(
    v: &mut [E],
    mut lo: usize,
    mut hi: usize,
    pivot: usize,
    less: &mut impl FnMut(&E, &E) -> bool,
) -> usize {
    loop {
        while less(&v[lo], &v[pivot]) {
            lo += 1;
        }
        hi -= 1;
        while less(&v[pivot], &v[hi]) {
            hi -= 1;
        }
        if lo >= hi {
            return lo;
        }
        v.swap(lo, hi);
        lo += 1;
    }
}

/// Picks the median of first, middle and last as the pivot, moves it to `v[lo]` and partitions
/// the rest; returns the cut.
fn partition_pivot<E>(v: &mut [E], lo: usize, hi: usize, less: &mut impl FnMut(&E, &E) -> bool) -> usize {
    let mid = lo + (hi - lo) / 2;
    move_median_to_first(v, lo, lo + 1, mid, hi - 1, less);
    partition_around(v, lo + 1, hi, lo, less)
}

// ----------------------------------------------------------------------------- binary heap
// A max-heap (by `less`) over v[base..base + len], children of i at 2i + 1 and 2i + 2.

/// Moves `value` up from `hole` towards `top` while its parent is less than it.
fn sift_up<E: Copy>(
    v: &mut [E],
    base: usize,
    mut hole: usize,
    top: usize,
    value: E,
    less: &mut impl FnMut(&E, &E) -> bool,
) {
    while hole > top {
        let parent = (hole - 1) / 2;
        if !less(&v[base + parent], &value) {
            break;
        }
        v[base + hole] = v[base + parent];
        hole = parent;
    }
    v[base + hole] = value;
}

/// Fills the hole at `hole` by walking the larger child down to a leaf, then places `value`
/// by sifting it up from there (libstdc++'s `__adjust_heap`).
fn adjust_heap<E: Copy>(
    v: &mut [E],
    base: usize,
    mut hole: usize,
    len: usize,
    value: E,
    less: &mut impl FnMut(&E, &E) -> bool,
) {
    let top = hole;
    let mut child = hole;
    while child < len.saturating_sub(1) / 2 {
        child = 2 * (child + 1);
        if less(&v[base + child], &v[base + child - 1]) {
            child -= 1;
        }
        v[base + hole] = v[base + child];
        hole = child;
    }
    if len % 2 == 0 && len >= 2 && child == (len - 2) / 2 {
        child = 2 * (child + 1);
        v[base + hole] = v[base + child - 1];
        hole = child - 1;
    }
    sift_up(v, base, hole, top, value, less);
}

fn make_heap<E: Copy>(v: &mut [E], base: usize, len: usize, less: &mut impl FnMut(&E, &E) -> bool) {
    if len < 2 {
        return;
    }
    for parent in (0..=(len - 2) / 2).rev() {
        let value = v[base + parent];
        adjust_heap(v, base, parent, len, value, less);
    }
}

/// Puts the heap's top at `v[out]` and the old `v[out]` into the heap.
fn pop_heap_into<E: Copy>(v: &mut [E], base: usize, len: usize, out: usize, less: &mut impl FnMut(&E, &E) -> bool) {
    let value = v[out];
    v[out] = v[base];
    adjust_heap(v, base, 0, len, value, less);
}

/// Leaves the `mid - lo` least elements of `v[lo..hi]` in `v[lo..mid]`, as a heap.
fn heap_select<E: Copy>(v: &mut [E], lo: usize, mid: usize, hi: usize, less: &mut impl FnMut(&E, &E) -> bool) {
    make_heap(v, lo, mid - lo, less);
    for i in mid..hi {
        if less(&v[i], &v[lo]) {
            pop_heap_into(v, lo, mid - lo, i, less);
        }
    }
}

fn sort_heap<E: Copy>(v: &mut [E], lo: usize, mut hi: usize, less: &mut impl FnMut(&E, &E) -> bool) {
    while hi - lo > 1 {
        hi -= 1;
        pop_heap_into(v, lo, hi - lo, hi, less);
    }
}

/// `std::partial_sort`: the `mid` least elements of `v`, sorted, in `v[..mid]`.
pub fn partial_sort<E: Copy>(v: &mut [E], mid: usize, mut less: impl FnMut(&E, &E) -> bool) {
    partial_sort_range(v, 0, mid, v.len(), &mut less);
}

fn partial_sort_range<E: Copy>(v: &mut [E], lo: usize, mid: usize, hi: usize, less: &mut impl FnMut(&E, &E) -> bool) {
    if mid == lo {
        return;
    }
    heap_select(v, lo, mid, hi, less);
    sort_heap(v, lo, mid, less);
}

// ----------------------------------------------------------------------------- insertion sort

/// Inserts `v[i]` into the sorted run before it; something not greater must precede it.
fn insert_unguarded<E: Copy>(v: &mut [E], mut i: usize, less: &mut impl FnMut(&E, &E) -> bool) {
    let value = v[i];
    while less(&value, &v[i - 1]) {
        v[i] = v[i - 1];
        i -= 1;
    }
    v[i] = value;
}

fn insertion_sort<E: Copy>(v: &mut [E], lo: usize, hi: usize, less: &mut impl FnMut(&E, &E) -> bool) {
    for i in (lo + 1)..hi.max(lo) {
        if less(&v[i], &v[lo]) {
            v[lo..=i].rotate_right(1);
        } else {
            insert_unguarded(v, i, less);
        }
    }
}

// ----------------------------------------------------------------------------- sort, select

/// `std::sort` (introsort): quicksort down to ranges of 16, heapsort past `2 log2 n` levels,
/// then one insertion sort over everything. Not stable.
pub fn introsort<E: Copy>(v: &mut [E], mut less: impl FnMut(&E, &E) -> bool) {
    let n = v.len();
    if n == 0 {
        return;
    }
    introsort_loop(v, 0, n, 2 * floor_log2(n), &mut less);
    if n > SORT_THRESHOLD {
        insertion_sort(v, 0, SORT_THRESHOLD, &mut less);
        for i in SORT_THRESHOLD..n {
            insert_unguarded(v, i, &mut less);
        }
    } else {
        insertion_sort(v, 0, n, &mut less);
    }
}

/// Recurses on the upper part and loops on the lower one, so the depth is at most `depth`.
fn introsort_loop<E: Copy>(
    v: &mut [E],
    lo: usize,
    mut hi: usize,
    mut depth: usize,
    less: &mut impl FnMut(&E, &E) -> bool,
) {
    while hi - lo > SORT_THRESHOLD {
        if depth == 0 {
            partial_sort_range(v, lo, hi, hi, less);
            return;
        }
        depth -= 1;
        let cut = partition_pivot(v, lo, hi, less);
        introsort_loop(v, cut, hi, depth, less);
        hi = cut;
    }
}

/// `std::nth_element` (introselect): `v[nth]` is what a sort would put there, nothing before
/// it is greater and nothing after it is less.
pub fn nth_element<E: Copy>(v: &mut [E], nth: usize, mut less: impl FnMut(&E, &E) -> bool) {
    let (mut lo, mut hi) = (0, v.len());
    if nth >= hi {
        return;
    }
    let mut depth = 2 * floor_log2(hi);
    while hi - lo > 3 {
        if depth == 0 {
            heap_select(v, lo, nth + 1, hi, &mut less);
            v.swap(lo, nth);
            return;
        }
        depth -= 1;
        let cut = partition_pivot(v, lo, hi, &mut less);
        if cut <= nth {
            lo = cut;
        } else {
            hi = cut;
        }
    }
    insertion_sort(v, lo, hi, &mut less);
}

/// The median-of-three quickselect of Numerical Recipes, which PyTorch's `kthvalue` runs with
/// `greater` (NaN greatest): afterwards `v[k]` is the k-th least element (0-based).
pub fn quickselect<E: Copy>(v: &mut [E], k: usize, mut greater: impl FnMut(&E, &E) -> bool) {
    if v.is_empty() {
        return;
    }
    let (mut lo, mut hi) = (0usize, v.len() - 1);
    loop {
        if hi <= lo {
            return;
        }
        if hi == lo + 1 {
            if greater(&v[lo], &v[hi]) {
                v.swap(lo, hi);
            }
            return;
        }
        // order v[lo + 1] <= v[lo] <= v[hi], the middle element first moved to lo + 1
        v.swap(lo + (hi - lo) / 2, lo + 1);
        if greater(&v[lo + 1], &v[hi]) {
            v.swap(lo + 1, hi);
        }
        if greater(&v[lo], &v[hi]) {
            v.swap(lo, hi);
        }
        if greater(&v[lo + 1], &v[lo]) {
            v.swap(lo + 1, lo);
        }
        let pivot = v[lo];
        let (mut i, mut j) = (lo + 1, hi);
        loop {
            i += 1;
            while greater(&pivot, &v[i]) {
                i += 1;
            }
            j -= 1;
            while greater(&v[j], &pivot) {
                j -= 1;
            }
            if j < i {
                break;
            }
            v.swap(i, j);
        }
        v.swap(lo, j);
        if j <= k {
            lo = i;
        }
        if j >= k {
            hi = j - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator for test inputs (xorshift).
    fn values(seed: u64, n: usize, distinct: u64) -> Vec<(u64, usize)> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|j| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % distinct, j)
            })
            .collect()
    }

    #[test]
    fn each_algorithm_orders_like_a_sort() {
        for seed in 0..200u64 {
            let n = (seed as usize * 7) % 300 + 1;
            let v = values(seed, n, 1 + seed % 9);
            let mut sorted: Vec<u64> = v.iter().map(|p| p.0).collect();
            sorted.sort();
            let mut a = v.clone();
            introsort(&mut a, |x, y| x.0 < y.0);
            assert_eq!(a.iter().map(|p| p.0).collect::<Vec<_>>(), sorted);
            let k = (seed as usize * 13) % n;
            let mut b = v.clone();
            partial_sort(&mut b, k, |x, y| x.0 < y.0);
            assert_eq!(b[..k].iter().map(|p| p.0).collect::<Vec<_>>(), sorted[..k]);
            let mut c = v.clone();
            nth_element(&mut c, k, |x, y| x.0 < y.0);
            assert_eq!(c[k].0, sorted[k]);
            assert!(c[..k].iter().all(|p| p.0 <= sorted[k]) && c[k..].iter().all(|p| p.0 >= sorted[k]));
            let mut d = v.clone();
            quickselect(&mut d, k, |x, y| x.0 > y.0);
            assert_eq!(d[k].0, sorted[k]);
            // every algorithm permutes: each index appears once
            for w in [&a, &b, &c, &d] {
                let mut idx: Vec<usize> = w.iter().map(|p| p.1).collect();
                idx.sort();
                assert!(idx.iter().enumerate().all(|(i, &j)| i == j));
            }
        }
    }

    #[test]
    fn ties_land_where_libstdcxx_puts_them() {
        // std::sort of 17 equal keys: one partition round swaps the ends inward; recorded from
        // PyTorch's sort(stable=False) of torch.zeros(17): indices below.
        let mut v: Vec<(u8, usize)> = (0..17).map(|j| (0, j)).collect();
        introsort(&mut v, |x, y| x.0 < y.0);
        let idx: Vec<usize> = v.iter().map(|p| p.1).collect();
        assert_eq!(idx, [8, 16, 15, 14, 13, 12, 11, 10, 9, 0, 7, 6, 5, 4, 3, 2, 1]);
    }
}
