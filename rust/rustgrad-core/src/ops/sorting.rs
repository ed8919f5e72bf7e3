//! Ops that order or select values along a dim: sort/argsort, topk, kthvalue, median, mode,
//! cumprod, cummax/cummin, amax/amin, aminmax.
//!
//! Forwards run on the values along one dim (moved last); value-selecting backwards scatter
//! the gradient back to the selected positions, with the same differentiable ops.

use super::arith::{div, mul};
use super::compare::{compare, where_};
use super::gather::scatter;
use super::reduce::sum_dims;
use super::tie_order;
use super::view::{expand_to, to_dtype, transpose, unsqueeze};
use crate::autograd::{attach, grad0, record, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::kernels::{self, Compare};
use crate::shape::{self, Shape};
use crate::tensor::{Tensor, TensorData};
use crate::with_dtype;
use smallvec::{smallvec, SmallVec};
use std::cmp::Ordering;

type Dims = SmallVec<[usize; 4]>;

/// Total order with NaN above everything (PyTorch's sort order).
fn cmp_nan_last<T: Element>(a: &T, b: &T) -> Ordering {
    #[allow(clippy::eq_op)]
    match (a != a, b != b) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

#[allow(clippy::eq_op)]
fn is_nan<T: Element>(v: T) -> bool {
    v != v
}

/// The dim an op over one dim works on (a 0-d tensor counts as one element along dim 0).
fn one_dim(x: &TensorData, dim: i64) -> Result<usize> {
    if x.shape.is_empty() {
        shape::wrap_dim(dim, 1)?;
        return Ok(0);
    }
    shape::wrap_dim(dim, x.shape.len())
}

/// Runs `f` on every lane of `x` along `dim` (values as `T`, the lane's length) and writes
/// the `k` values and indices it returns into the result lanes of length `k`.
fn per_lane<T: crate::storage::IntoStorage>(
    x: &TensorData,
    dim: usize,
    k: usize,
    mut f: impl FnMut(&[T], &mut Vec<T>, &mut Vec<i64>),
) -> (TensorData, TensorData) {
    let shp: Shape = if x.shape.is_empty() { smallvec![1] } else { x.shape.clone() };
    let n = shp[dim];
    let inner: usize = shp[dim + 1..].iter().product();
    let outer: usize = shp[..dim].iter().product();
    let v = x.to_vec::<T>();
    let mut out_shape = shp.clone();
    out_shape[dim] = k;
    let total = outer * k * inner;
    let mut vals = vec![T::zero(); total];
    let mut idx = vec![0i64; total];
    let (mut lane, mut lv, mut li) = (Vec::with_capacity(n), Vec::with_capacity(k), Vec::with_capacity(k));
    for o in 0..outer {
        for i in 0..inner {
            lane.clear();
            lane.extend((0..n).map(|j| v[o * n * inner + j * inner + i]));
            lv.clear();
            li.clear();
            f(&lane, &mut lv, &mut li);
            for j in 0..k {
                let at = o * k * inner + j * inner + i;
                vals[at] = lv[j];
                idx[at] = li[j];
            }
        }
    }
    let out_shape: Shape = if x.shape.is_empty() { Shape::new() } else { out_shape };
    (TensorData::from_vec(vals, out_shape.clone()), TensorData::from_vec(idx, out_shape))
}

/// The stable order of `lane` (NaN last; `descending` reverses, NaN first).
fn order_of<T: Element>(lane: &[T], descending: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lane.len()).collect();
    if descending {
        order.sort_by(|&a, &b| cmp_nan_last(&lane[b], &lane[a]));
    } else {
        order.sort_by(|&a, &b| cmp_nan_last(&lane[a], &lane[b]));
    }
    order
}

/// Drops `dim` unless `keepdim` (0-d inputs stay 0-d).
fn squeeze_lane(t: TensorData, dim: usize, keepdim: bool) -> TensorData {
    if keepdim || t.shape.is_empty() {
        return t;
    }
    let mut s = t.shape.clone();
    let mut st = t.strides.clone();
    s.remove(dim);
    st.remove(dim);
    t.restrided(s, st, t.offset)
}

/// Attaches a value-selecting backward (`name`) to `vals`: the gradient goes to `idx`.
fn select_backward(
    x: &Tensor,
    vals: &Tensor,
    idx: &Tensor,
    dim: usize,
    keepdim: bool,
    name: &'static str,
) -> Result<()> {
    if crate::autograd::any_requires_grad(&[x]) {
        let op = SelectBackward { indices: SavedTensor::input(idx), self_shape: x.shape(), dim, keepdim, name };
        attach(&[vals], &[x], op.into())?;
    }
    Ok(())
}

/// d select(x, dim, idx)/dx: zeros with the gradient scattered to the selected indices
pub struct SelectBackward {
    indices: SavedTensor,
    self_shape: Shape,
    dim: usize,
    keepdim: bool,
    name: &'static str,
}
impl Backward for SelectBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let idx = self.indices.unpack(ctx)?;
        if self.self_shape.is_empty() {
            return Ok(smallvec![Some(g.clone())]);
        }
        let (g, idx) = if self.keepdim {
            (g.clone(), idx)
        } else {
            (unsqueeze(g, self.dim as i64)?, unsqueeze(&idx, self.dim as i64)?)
        };
        let zeros = crate::creation::zeros(&self.self_shape, g.dtype());
        Ok(smallvec![Some(scatter(&zeros, self.dim as i64, &idx, &g, false)?)])
    }
    // t = tx at the chosen indices (gather along dim)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let formula = || {
            let (t, idx) = (ctx.tangent0()?, self.indices.unpack(&ctx.backward)?);
            crate::ops::reduce::pick_along(t, &idx, self.dim, self.keepdim, &self.self_shape)
        };
        Some(formula())
    }
    crate::saved_tensors!(indices);
}

// ----------------------------------------------------------------------------- sort, topk

/// PyTorch's refusal of bool inputs for the ops without a bool kernel.
fn refuse_bool(d: &TensorData, message: &str) -> Result<()> {
    if d.dtype() == DType::Bool {
        return Err(Error::NotImplemented(message.into()));
    }
    Ok(())
}

/// PyTorch's sort order: NaN above everything, ascending (`descending` reverses, NaN first).
fn nan_aware_less<T: Element>(descending: bool) -> impl Fn(&T, &T) -> bool + Copy {
    move |a: &T, b: &T| {
        if descending {
            (is_nan(*a) && !is_nan(*b)) || a > b
        } else {
            (!is_nan(*a) && is_nan(*b)) || a < b
        }
    }
}

/// `x.sort(dim, descending, stable)`: (values, indices). `stable` keeps ties in their order;
/// otherwise equal values come out in the order of the C++ library's introsort, as in PyTorch.
pub fn sort(x: &Tensor, dim: i64, descending: bool, stable: bool) -> Result<(Tensor, Tensor)> {
    let d = x.data();
    let w = one_dim(&d, dim)?;
    let n = if d.shape.is_empty() { 1 } else { d.shape[w] };
    let (v, i) = with_dtype!(d.dtype(), T => per_lane::<T>(&d, w, n, |lane, lv, li| {
        if stable {
            for j in order_of(lane, descending) {
                lv.push(lane[j]);
                li.push(j as i64);
            }
        } else {
            let less = nan_aware_less::<T>(descending);
            let mut pairs: Vec<(T, i64)> = lane.iter().copied().zip(0..).collect();
            tie_order::introsort(&mut pairs, |a, b| less(&a.0, &b.0));
            lv.extend(pairs.iter().map(|p| p.0));
            li.extend(pairs.iter().map(|p| p.1));
        }
    }));
    let (v, i) = (super::shaped::layout_like(v, &[&d]), super::shaped::layout_like(i, &[&d]));
    let (v, i) = (Tensor::from_data(v), Tensor::from_data(i));
    select_backward(x, &v, &i, w, true, if stable { "SortBackward1" } else { "SortBackward0" })?;
    Ok((v, i))
}

/// The `k` first of `lane` in the order `less`, chosen as PyTorch's CPU topk does: a heap
/// select when `k` is small against the lane (`64 k <= n`), else an introselect of the k-th
/// followed, when `sorted`, by a sort of the ones before it.
fn topk_lane<T: Element>(lane: &[T], k: usize, less: impl Fn(&T, &T) -> bool, sorted: bool) -> Vec<(T, i64)> {
    let mut pairs: Vec<(T, i64)> = lane.iter().copied().zip(0..).collect();
    if k == 0 {
        return Vec::new();
    }
    let by_value = |a: &(T, i64), b: &(T, i64)| less(&a.0, &b.0);
    if k * 64 <= pairs.len() {
        tie_order::partial_sort(&mut pairs, k, by_value);
    } else {
        tie_order::nth_element(&mut pairs, k - 1, by_value);
        if sorted {
            tie_order::introsort(&mut pairs[..k - 1], by_value);
        }
    }
    pairs.truncate(k);
    pairs
}

/// `x.topk(k, dim, largest, sorted)`: the k largest (smallest) values and their indices.
pub fn topk(x: &Tensor, k: i64, dim: i64, largest: bool, sorted: bool) -> Result<(Tensor, Tensor)> {
    let d = x.data();
    let w = one_dim(&d, dim)?;
    let n = if d.shape.is_empty() { 1 } else { d.shape[w] };
    if k < 0 || k as usize > n {
        return Err(Error::runtime("selected index k out of range"));
    }
    refuse_bool(&d, "topk does not support bool dtypes on CPU")?;
    // A 0-d input gives its one element, for k = 0 too.
    let k = if d.shape.is_empty() { 1 } else { k as usize };
    let (v, i) = with_dtype!(d.dtype(), T => per_lane::<T>(&d, w, k, |lane, lv, li| {
        for (value, j) in topk_lane(lane, k, nan_aware_less::<T>(largest), sorted) {
            lv.push(value);
            li.push(j);
        }
    }));
    let (v, i) = (Tensor::from_data(v), Tensor::from_data(i));
    select_backward(x, &v, &i, w, true, "TopkBackward0")?;
    Ok((v, i))
}

/// Refuses a reduction over an empty dim, with PyTorch's message for `op`.
fn nonempty_dim(d: &TensorData, w: usize, op: &str) -> Result<()> {
    if !d.shape.is_empty() && d.shape[w] == 0 {
        return Err(Error::Index(format!("{op}(): Expected reduction dim {w} to have non-zero size.")));
    }
    Ok(())
}

/// `x.kthvalue(k, dim, keepdim)`: the k-th smallest value (1-based) and its index.
pub fn kthvalue(x: &Tensor, k: i64, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    let d = x.data();
    let w = one_dim(&d, dim)?;
    let n = if d.shape.is_empty() { 1 } else { d.shape[w] };
    nonempty_dim(&d, w, "kthvalue")?;
    if k < 1 || k as usize > n {
        return Err(Error::runtime(format!("kthvalue(): selected number k out of range for dimension {w}")));
    }
    if !d.shape.is_empty() {
        refuse_bool(&d, "\"kthvalue_cpu\" not implemented for 'Bool'")?;
    }
    let at = (k - 1) as usize;
    pick_native(x, &d, w, keepdim, "KthvalueBackward0", KthSmallest(at))
}

/// The index of the `.0`-th smallest (0-based, NaN greatest); PyTorch's median-of-three
/// quickselect decides which of equal values it is.
struct KthSmallest(usize);
impl LaneChooser for KthSmallest {
    fn choose<T: Element>(&self, lane: &[T]) -> usize {
        let greater = nan_aware_less::<T>(true);
        let mut pairs: Vec<(T, usize)> = lane.iter().copied().zip(0..).collect();
        tie_order::quickselect(&mut pairs, self.0, |a, b| greater(&a.0, &b.0));
        pairs[self.0].1
    }
}

/// One value per lane, chosen by `choose` (its index in the lane), with a value-selecting
/// backward named `name`.
fn pick(
    x: &Tensor,
    d: &TensorData,
    w: usize,
    keepdim: bool,
    name: &'static str,
    choose: impl Fn(&[f64]) -> usize,
) -> Result<(Tensor, Tensor)> {
    let (v, i) = with_dtype!(d.dtype(), T => per_lane::<T>(d, w, 1, |lane, lv, li| {
        let as_f64: Vec<f64> = lane.iter().map(|v| v.to_f64()).collect();
        let j = choose(&as_f64);
        lv.push(lane[j]);
        li.push(j as i64);
    }));
    let (v, i) = (Tensor::from_data(squeeze_lane(v, w, keepdim)), Tensor::from_data(squeeze_lane(i, w, keepdim)));
    select_backward(x, &v, &i, w, keepdim, name)?;
    Ok((v, i))
}

/// [`pick`] with the lane in its own dtype (no rounding through f64 for int64).
fn pick_native(
    x: &Tensor,
    d: &TensorData,
    w: usize,
    keepdim: bool,
    name: &'static str,
    choose: impl LaneChooser,
) -> Result<(Tensor, Tensor)> {
    let (v, i) = with_dtype!(d.dtype(), T => per_lane::<T>(d, w, 1, |lane, lv, li| {
        let j = choose.choose(lane);
        lv.push(lane[j]);
        li.push(j as i64);
    }));
    let (v, i) = (Tensor::from_data(squeeze_lane(v, w, keepdim)), Tensor::from_data(squeeze_lane(i, w, keepdim)));
    select_backward(x, &v, &i, w, keepdim, name)?;
    Ok((v, i))
}

/// Picks one index of a lane of any element type.
trait LaneChooser {
    fn choose<T: Element>(&self, lane: &[T]) -> usize;
}

/// The lower median's index in `lane`: the first NaN if there is one.
fn median_index(lane: &[f64]) -> usize {
    if let Some(j) = lane.iter().position(|v| v.is_nan()) {
        return j;
    }
    order_of(lane, false)[(lane.len() - 1) / 2]
}

/// `x.median(dim, keepdim)`: the lower median along `dim` and its index.
pub fn median_dim(x: &Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    let d = x.data();
    let w = one_dim(&d, dim)?;
    nonempty_dim(&d, w, "median")?;
    refuse_bool(&d, "\"median_out\" not implemented for 'Bool'")?;
    pick(x, &d, w, keepdim, "MedianBackward1", median_index)
}

/// `x.mode(dim, keepdim)`: the most frequent value (the smallest of equally frequent ones)
/// and an index of it.
pub fn mode(x: &Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    let d = x.data();
    let w = one_dim(&d, dim)?;
    nonempty_dim(&d, w, "mode")?;
    pick_native(x, &d, w, keepdim, "ModeBackward0", MostFrequent)
}

/// The index of the most frequent value: PyTorch's CPU mode sorts (value, index) pairs by
/// value with the C++ library's introsort and reports the last pair of the first longest run.
struct MostFrequent;
impl LaneChooser for MostFrequent {
    fn choose<T: Element>(&self, lane: &[T]) -> usize {
        let mut pairs: Vec<(T, usize)> = lane.iter().copied().zip(0..).collect();
        tie_order::introsort(&mut pairs, |a, b| a.0 < b.0);
        let (mut best, mut best_count, mut run) = (pairs[0].1, 0usize, 0usize);
        for p in 0..pairs.len() {
            run += 1;
            if p + 1 == pairs.len() || pairs[p].0 != pairs[p + 1].0 {
                if run > best_count {
                    best_count = run;
                    best = pairs[p].1;
                }
                run = 0;
            }
        }
        best
    }
}

/// `x.median()`: the lower median of all elements (NaN if there is one).
pub fn median_all(x: &Tensor) -> Result<Tensor> {
    let d = x.data();
    refuse_bool(&d, "\"median_cpu\" not implemented for 'Bool'")?;
    let flat = kernels::contiguous_copy(&d);
    let flat = flat.restrided(smallvec![d.numel()], smallvec![1], 0);
    if d.numel() == 0 {
        let nan = kernels::full(&[], f64::NAN, d.dtype());
        return record(Tensor::from_data(nan), &[x], |o| EvenlyBackward::new(x, o, "MedianBackward0"));
    }
    let (v, _) = with_dtype!(d.dtype(), T => per_lane::<T>(&flat, 0, 1, |lane, lv, li| {
        let as_f64: Vec<f64> = lane.iter().map(|v| v.to_f64()).collect();
        let j = median_index(&as_f64);
        lv.push(lane[j]);
        li.push(j as i64);
    }));
    let out = Tensor::from_data(v.restrided(Shape::new(), SmallVec::new(), 0));
    record(out, &[x], |o| EvenlyBackward::new(x, o, "MedianBackward0"))
}

/// d median(x)/dx: the gradient shared evenly by the elements equal to the result
pub struct EvenlyBackward {
    x: SavedTensor,
    result: SavedTensor,
    name: &'static str,
}
impl EvenlyBackward {
    fn new(x: &Tensor, out: &Tensor, name: &'static str) -> Self {
        EvenlyBackward { x: SavedTensor::input(x), result: SavedTensor::output(out, 0), name }
    }
}
impl Backward for EvenlyBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let x = self.x.unpack(ctx)?;
        let r = self.result.unpack(ctx)?;
        let hit = if r.item_f64()?.is_nan() { compare(&x, &x, Compare::Ne)? } else { compare(&x, &r, Compare::Eq)? };
        let mask = to_dtype(&hit, g.dtype())?;
        let count = sum_dims(&mask, &(0..mask.ndim()).collect::<Dims>(), false, None)?;
        Ok(smallvec![Some(mul(&mask, &div(g, &count)?)?)])
    }
    crate::saved_tensors!(x, result);
}

// ----------------------------------------------------------------------------- cummax / cummin

/// `x.cummax(dim)` (`max == false`: `cummin`): running extremes and the index of the last
/// element equal to each (a NaN, once seen, stays).
pub fn cumextreme(x: &Tensor, dim: i64, max: bool) -> Result<(Tensor, Tensor)> {
    let d = x.data();
    let w = one_dim(&d, dim)?;
    let n = if d.shape.is_empty() { 1 } else { d.shape[w] };
    let (v, i) = with_dtype!(d.dtype(), T => per_lane::<T>(&d, w, n, |lane, lv, li| {
        let mut best = 0usize;
        for j in 0..lane.len() {
            let (c, b) = (lane[j], lane[best]);
            let better = if is_nan(b) { is_nan(c) } else if is_nan(c) { true } else if max { c >= b } else { c <= b };
            if better {
                best = j;
            }
            lv.push(lane[best]);
            li.push(best as i64);
        }
    }));
    let (v, i) = (Tensor::from_data(v), Tensor::from_data(i));
    if crate::autograd::any_requires_grad(&[x]) {
        let op = CumextremeBackward { indices: SavedTensor::input(&i), self_shape: d.shape.clone(), dim: w, max };
        attach(&[&v], &[x], op.into())?;
    }
    Ok((v, i))
}

/// d cummax(x)/dx: each output's gradient added at the index it came from
pub struct CumextremeBackward {
    indices: SavedTensor,
    self_shape: Shape,
    dim: usize,
    max: bool,
}
impl Backward for CumextremeBackward {
    fn name(&self) -> &'static str {
        if self.max {
            "CummaxBackward0"
        } else {
            "CumminBackward0"
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        if self.self_shape.is_empty() {
            return Ok(smallvec![Some(g.clone())]);
        }
        let idx = self.indices.unpack(ctx)?;
        let zeros = crate::creation::zeros(&self.self_shape, g.dtype());
        Ok(smallvec![Some(scatter(&zeros, self.dim as i64, &idx, g, true)?)])
    }
    crate::saved_tensors!(indices);
}

// ----------------------------------------------------------------------------- cumprod

/// `x.cumprod(dim, dtype)`: running products along `dim`.
pub fn cumprod(x: &Tensor, dim: i64, dtype: Option<DType>) -> Result<Tensor> {
    let d = x.data();
    let w = one_dim(&d, dim)?;
    let dtype = dtype.unwrap_or(if d.dtype().is_float() { d.dtype() } else { DType::I64 });
    let n = if d.shape.is_empty() { 1 } else { d.shape[w] };
    let src = kernels::cast(&d, dtype);
    // Floats accumulate in f64 and round each output (PyTorch's CPU accumulate type), integers
    // multiply in int64 with wraparound.
    let (v, _) = with_dtype!(dtype, T => per_lane::<T>(&src, w, n, |lane, lv, li| {
        let (mut acc, mut iacc) = (1f64, 1i64);
        for &c in lane {
            if dtype.is_float() {
                acc *= c.to_f64();
                lv.push(T::from_f64(acc));
            } else {
                iacc = iacc.wrapping_mul(c.to_i64());
                lv.push(T::from_i64(iacc));
            }
            li.push(0);
        }
    }));
    let out = Tensor::from_data(v);
    record(out, &[x], |o| CumprodBackward {
        x: SavedTensor::input(x),
        result: SavedTensor::output(o, 0),
        dim: w,
        in_dtype: d.dtype(),
    })
}

/// d cumprod(x)_j/dx_i = [i <= j] prod_{k <= j, k != i} x_k; without zeros that is
/// out_j / x_i, so grad_x = rev_cumsum(g * out) / x
pub struct CumprodBackward {
    x: SavedTensor,
    result: SavedTensor,
    dim: usize,
    in_dtype: DType,
}
impl Backward for CumprodBackward {
    fn name(&self) -> &'static str {
        "CumprodBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        use super::moments::cumsum;
        let g = grad0(grads)?;
        let x = self.x.unpack(ctx)?;
        if x.ndim() == 0 || x.numel() == 0 {
            return Ok(smallvec![Some(to_dtype(g, self.in_dtype)?)]);
        }
        let xf = to_dtype(&x, g.dtype())?;
        let has_zero = xf.data().to_vec::<f64>().contains(&0.0);
        let gx = if !has_zero {
            let out = self.result.unpack(ctx)?;
            div(&cumsum(&mul(g, &out)?, self.dim as i64, None, true)?, &xf)?
        } else {
            // Lanes with zeros: for each i, the cumprod of x with x_i replaced by 1, masked to j >= i.
            let last = x.ndim() as i64 - 1;
            let xt = transpose(&xf, self.dim as i64, last)?;
            let gt = transpose(g, self.dim as i64, last)?;
            let n = xt.shape()[last as usize];
            let eye = crate::creation::eye(n, n, xf.dtype())?; // [i, j]
            let xi = unsqueeze(&xt, -2)?; // [..., 1, n]
            let one = Tensor::wrapped_scalar(1.0);
            let replaced = where_(&to_dtype(&eye, DType::Bool)?, &one, &xi)?; // [..., n(i), n(j)]
            let c = cumprod(&replaced, -1, None)?;
            let upper = super::shaped::triangle(&crate::creation::ones(&[n, n], xf.dtype()), 0, true)?;
            let terms = mul(&mul(&c, &upper)?, &unsqueeze(&gt, -2)?)?;
            let gi = sum_dims(&terms, &[terms.ndim() - 1], false, None)?;
            transpose(&gi, self.dim as i64, last)?
        };
        Ok(smallvec![Some(gx)])
    }
    crate::saved_tensors!(x, result);
}

// ----------------------------------------------------------------------------- amax / amin

/// Max (min) over `dims` (all if empty) without indices; NaN propagates.
fn extreme_over(d: &TensorData, dims: &[usize], keepdim: bool, max: bool) -> Result<TensorData> {
    let mut t = d.clone();
    if dims.is_empty() {
        return Ok(kernels::contiguous_copy(d));
    }
    let mut sorted: Dims = dims.into();
    sorted.sort_unstable();
    for &dim in sorted.iter().rev() {
        t = kernels::extreme_dim(&t, dim, keepdim, max)?.0;
    }
    Ok(t)
}

/// The dims of an `amax`-like reduction: wrapped, distinct, non-empty sizes.
fn amax_dims(d: &TensorData, dims: &[i64], op: &str) -> Result<Dims> {
    let nd = d.shape.len();
    let mut out = Dims::new();
    for &dim in dims {
        let w = shape::wrap_dim(dim, nd.max(1))?;
        if out.contains(&w) {
            return Err(Error::runtime(format!("dim {w} appears multiple times in the list of dims")));
        }
        out.push(w);
    }
    if nd == 0 {
        return Ok(Dims::new());
    }
    if out.is_empty() {
        if d.numel() == 0 {
            return Err(Error::runtime(format!(
                "{op}(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the 'dim' argument."
            )));
        }
        return Ok((0..nd).collect());
    }
    for &w in &out {
        if d.shape[w] == 0 {
            return Err(Error::Index(format!("{op}(): Expected reduction dim {w} to have non-zero size.")));
        }
    }
    Ok(out)
}

/// `x.amax(dims, keepdim)` (`max == false`: `amin`).
pub fn amax(x: &Tensor, dims: &[i64], keepdim: bool, max: bool) -> Result<Tensor> {
    let d = x.data();
    let w = amax_dims(&d, dims, if max { "amax" } else { "amin" })?;
    let out = Tensor::from_data(extreme_over(&d, &w, keepdim, max)?);
    record(out, &[x], |o| AmaxBackward {
        x: SavedTensor::input(x),
        result: SavedTensor::output(o, 0),
        dims: w.clone(),
        keepdim,
        max,
    })
}

/// The gradient of an amax/amin result `r` over `dims`: shared evenly by the elements equal to it.
fn amax_grad(g: &Tensor, x: &Tensor, r: &Tensor, dims: &[usize], keepdim: bool) -> Result<Tensor> {
    let shp = x.shape();
    let (mut g, mut r) = (g.clone(), r.clone());
    if !keepdim {
        let mut sorted: Dims = dims.into();
        sorted.sort_unstable();
        for &dim in &sorted {
            g = unsqueeze(&g, dim as i64)?;
            r = unsqueeze(&r, dim as i64)?;
        }
    }
    let mask = to_dtype(&compare(x, &r, Compare::Eq)?, g.dtype())?;
    let count = sum_dims(&mask, dims, true, None)?;
    mul(&expand_to(&div(&g, &count)?, &shp)?, &mask)
}

/// d amax(x)/dx: the gradient shared evenly by the maximal elements
pub struct AmaxBackward {
    x: SavedTensor,
    result: SavedTensor,
    dims: Dims,
    keepdim: bool,
    max: bool,
}
impl Backward for AmaxBackward {
    fn name(&self) -> &'static str {
        if self.max {
            "AmaxBackward0"
        } else {
            "AminBackward0"
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let x = self.x.unpack(ctx)?;
        let r = self.result.unpack(ctx)?;
        Ok(smallvec![Some(amax_grad(grad0(grads)?, &x, &r, &self.dims, self.keepdim)?)])
    }
    crate::saved_tensors!(x, result);
}

/// `x.aminmax(dim, keepdim)`: (min, max) over `dim`, or over everything.
pub fn aminmax(x: &Tensor, dim: Option<i64>, keepdim: bool) -> Result<(Tensor, Tensor)> {
    let d = x.data();
    let nd = d.shape.len();
    let dims: Dims = match dim {
        Some(dim) => {
            let w = shape::wrap_dim(dim, nd.max(1))?;
            if nd > 0 && d.shape[w] == 0 {
                return Err(Error::Index(format!("aminmax: Expected reduction dim {w} to have non-zero size.")));
            }
            if nd == 0 {
                Dims::new()
            } else {
                smallvec![w]
            }
        }
        None => {
            if d.numel() == 0 {
                return Err(Error::runtime(
                    "aminmax(): cannot compute aminmax over an empty dimension as the operation has no identity.",
                ));
            }
            (0..nd).collect()
        }
    };
    let lo = Tensor::from_data(extreme_over(&d, &dims, keepdim, false)?);
    let hi = Tensor::from_data(extreme_over(&d, &dims, keepdim, true)?);
    if crate::autograd::any_requires_grad(&[x]) {
        let op = AminmaxBackward {
            x: SavedTensor::input(x),
            min: SavedTensor::output(&lo, 0),
            max: SavedTensor::output(&hi, 1),
            dims,
            keepdim,
        };
        attach(&[&lo, &hi], &[x], op.into())?;
    }
    Ok((lo, hi))
}

/// d aminmax(x)/dx: amin's gradient plus amax's
pub struct AminmaxBackward {
    x: SavedTensor,
    min: SavedTensor,
    max: SavedTensor,
    dims: Dims,
    keepdim: bool,
}
impl Backward for AminmaxBackward {
    fn name(&self) -> &'static str {
        "AminmaxBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let x = self.x.unpack(ctx)?;
        let mut total: Option<Tensor> = None;
        for (g, r) in grads.iter().zip([&self.min, &self.max]) {
            if let Some(g) = g {
                let part = amax_grad(g, &x, &r.unpack(ctx)?, &self.dims, self.keepdim)?;
                total = Some(match total {
                    Some(t) => super::arith::add(&t, &part)?,
                    None => part,
                });
            }
        }
        Ok(smallvec![total])
    }
    crate::saved_tensors!(x, min, max);
}
