//! Indexing with tensors: advanced indexing `x[idx, mask]` and its inverse `index_put`
//! (which accumulates repeated indices when asked), `gather` and `scatter`/`scatter_add`.

use super::view::sum_to;
use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::{self, Shape};
use crate::tensor::{for_each_strided, Tensor, TensorData};
use crate::with_dtype;
use smallvec::smallvec;

/// Visits every coordinate of `shape` in row-major order, without recursion.
fn for_each_coord(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut coord = vec![0usize; shape.len()];
    loop {
        f(&coord);
        let mut d = shape.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            coord[d] += 1;
            if coord[d] < shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
}

/// Where advanced indexing reads (or `index_put` writes): for each position `b` of the
/// broadcast index shape and each position `r` of the remaining dims, the element
/// `row[b] + rest[r]` of the indexed tensor.
struct IndexPlan {
    /// The broadcast shape of the index tensors.
    index_shape: Shape,
    /// Shape of the dims not indexed, in order.
    rest_shape: Shape,
    /// Where the index dims go in the result: in place of the indexed dims when those are
    /// adjacent, else first (numpy's and PyTorch's rule).
    insert_at: usize,
    row: Vec<usize>,
    rest: Vec<usize>,
}

impl IndexPlan {
    fn new(x: &TensorData, indices: &[Option<Tensor>]) -> Result<IndexPlan> {
        Self::build(x, indices, true)
    }

    /// The plan; without `check_values`, only its shapes (the index values are neither checked
    /// nor read: `index_put` checks the value's shape and dtype in between, as PyTorch does).
    fn build(x: &TensorData, indices: &[Option<Tensor>], check_values: bool) -> Result<IndexPlan> {
        Self::build_checking(x, indices, check_values, true)
    }

    /// [`IndexPlan::build`], optionally without refusing indices into a dim of size 0.
    fn build_checking(
        x: &TensorData,
        indices: &[Option<Tensor>],
        check_values: bool,
        check_empty_dims: bool,
    ) -> Result<IndexPlan> {
        let nd = x.shape.len();
        if indices.len() > nd {
            return Err(Error::Index(format!("too many indices for tensor of dimension {nd}")));
        }
        let adv: Vec<(usize, &Tensor)> =
            indices.iter().enumerate().filter_map(|(d, i)| i.as_ref().map(|t| (d, t))).collect();
        let mut index_shape = Shape::new();
        for (_, t) in &adv {
            index_shape = shape::broadcast_shapes(&index_shape, &t.shape()).map_err(|_| {
                let shapes: Vec<String> = adv.iter().map(|(_, t)| shape::fmt_shape(&t.shape())).collect();
                Error::Index(format!(
                    "shape mismatch: indexing tensors could not be broadcast together with shapes {}",
                    shapes.join(", ")
                ))
            })?;
        }
        // An index into a dim of size 0 is out of bounds whatever its values (PyTorch checks
        // this before anything about the values).
        if check_empty_dims && adv.iter().any(|&(d, t)| x.shape[d] == 0 && t.numel() > 0) {
            return Err(Error::Index("index is out of bounds for dimension with size 0".into()));
        }
        let rest_dims: Vec<usize> = (0..nd).filter(|d| indices.get(*d).is_none_or(|i| i.is_none())).collect();
        let rest_shape: Shape = rest_dims.iter().map(|&d| x.shape[d]).collect();
        // With no element to read or write, PyTorch checks no index value.
        let n = if rest_shape.contains(&0) || !check_values { 0 } else { shape::numel(&index_shape) };
        let mut row = vec![0usize; n];
        for &(d, t) in adv.iter().filter(|_| n > 0) {
            let size = x.shape[d] as i64;
            let values = kernels::expand_values::<i64>(&t.data(), &index_shape);
            for (r, &i) in row.iter_mut().zip(&values) {
                if i < -size || i >= size {
                    return Err(Error::Index(format!("index {i} is out of bounds for dimension {d} with size {size}")));
                }
                *r += (if i < 0 { i + size } else { i }) as usize * x.strides[d];
            }
        }
        let rest_strides: Shape = rest_dims.iter().map(|&d| x.strides[d]).collect();
        let mut rest = Vec::with_capacity(shape::numel(&rest_shape));
        for_each_strided(&rest_shape, &rest_strides, x.offset, &mut |o| rest.push(o));
        let first = adv.first().map_or(0, |a| a.0);
        let adjacent = adv.windows(2).all(|w| w[1].0 == w[0].0 + 1);
        Ok(IndexPlan { index_shape, rest_shape, insert_at: if adjacent { first } else { 0 }, row, rest })
    }

    /// The result's shape.
    fn out_shape(&self) -> Shape {
        let mut s: Shape = self.rest_shape[..self.insert_at].into();
        s.extend(self.index_shape.iter().copied());
        s.extend(self.rest_shape[self.insert_at..].iter().copied());
        s
    }

    /// The (b, r)-ordered layout as a view of a result-ordered contiguous buffer.
    fn as_block_order(&self, result: TensorData) -> TensorData {
        let (p, nb) = (self.insert_at, self.index_shape.len());
        let order: Vec<usize> = (p..p + nb).chain(0..p).chain(p + nb..result.shape.len()).collect();
        let shape = order.iter().map(|&d| result.shape[d]).collect();
        let strides = order.iter().map(|&d| result.strides[d]).collect();
        result.restrided(shape, strides, result.offset)
    }

    /// The block-ordered values laid out in the result's order.
    fn to_result_order(&self, block: TensorData) -> TensorData {
        let (p, nb) = (self.insert_at, self.index_shape.len());
        if p == 0 {
            return TensorData { shape: self.out_shape(), ..block };
        }
        // block dims: [B..., R_before..., R_after...] -> result [R_before, B, R_after]
        let mut order: Vec<usize> = (nb..nb + p).collect();
        order.extend(0..nb);
        order.extend(nb + p..block.shape.len());
        let mut block_shape: Shape = self.index_shape.clone();
        block_shape.extend(self.rest_shape.iter().copied());
        let block = TensorData { strides: shape::contiguous_strides(&block_shape), shape: block_shape, ..block };
        let shape = order.iter().map(|&d| block.shape[d]).collect();
        let strides = order.iter().map(|&d| block.strides[d]).collect();
        kernels::contiguous_copy(&block.restrided(shape, strides, 0))
    }
}

/// Turns bool masks into integer indices (one per masked dim) and checks index dtypes.
pub fn expand_masks(x_shape: &[usize], indices: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> {
    let mut out = Vec::with_capacity(indices.len());
    for idx in indices {
        match idx {
            Some(t) if t.dtype() == DType::Bool => {
                let ms = t.shape();
                let at = out.len();
                for (k, &m) in ms.iter().enumerate() {
                    let have = x_shape.get(at + k).copied();
                    if have != Some(m) {
                        return Err(Error::Index(format!(
                            "The shape of the mask {} at index {k} does not match the shape of the indexed tensor {} at index {}",
                            shape::fmt_shape(&ms),
                            shape::fmt_shape(x_shape),
                            at + k
                        )));
                    }
                }
                out.extend(nonzero_columns(t).into_iter().map(Some));
            }
            Some(t) if t.dtype() == DType::I64 => out.push(Some(t.clone())),
            Some(_) => {
                return Err(Error::Index("tensors used as indices must be long, int, byte or bool tensors".into()))
            }
            None => out.push(None),
        }
    }
    Ok(out)
}

/// The coordinates of a bool tensor's true elements, one int64 vector per dim.
fn nonzero_columns(mask: &Tensor) -> Vec<Tensor> {
    let d = mask.data();
    let values = d.to_vec::<bool>();
    let mut cols: Vec<Vec<i64>> = vec![Vec::new(); d.shape.len()];
    let mut i = 0;
    for_each_coord(&d.shape, |c| {
        if values[i] {
            for (col, &x) in cols.iter_mut().zip(c) {
                col.push(x as i64);
            }
        }
        i += 1;
    });
    cols.into_iter().map(|c| Tensor::from_data(kernels::from_vec(c.clone(), &[c.len()]))).collect()
}

/// `nonzero(x)`: the coordinates of the non-zero elements, shape `[n, ndim]`.
pub fn nonzero(x: &Tensor) -> Result<Tensor> {
    let mask = crate::ops::compare::compare(x, &Tensor::wrapped_scalar(0i64), kernels::Compare::Ne)?;
    let cols = nonzero_columns(&mask);
    let n = cols.first().map_or(usize::from(x.ndim() == 0 && mask.data().to_vec::<bool>()[0]), |c| c.numel());
    // Column-major, as PyTorch lays it out: one row of coordinates per dim, so the result's
    // strides are (1, n) (not a view, yet not contiguous either).
    let ndim = cols.len();
    let mut flat = Vec::with_capacity(n * ndim);
    for c in &cols {
        flat.extend(c.to_vec::<i64>());
    }
    let rows = kernels::from_vec(flat, &[ndim, n]);
    Ok(Tensor::from_data(rows.restrided(smallvec![n, ndim], smallvec![1, n], 0)))
}

/// `x[indices]`: `indices` has one entry per leading dim (`None`: the whole dim); bool masks
/// are allowed.
pub fn index(x: &Tensor, indices: &[Option<Tensor>]) -> Result<Tensor> {
    index_named(x, indices, "IndexBackward0")
}

/// `x.index_select(dim, index)` (`dim` already wrapped): [`index`] with one index at `dim`
/// (`IndexSelectBackward0`), after PyTorch's checks: the index is a vector (or 0-d) of
/// int64, its values lie in `[0, size)`, and the messages depend on the layout as in
/// PyTorch's CPU kernels.
pub fn index_select(x: &Tensor, dim: usize, index: &Tensor) -> Result<Tensor> {
    if index.ndim() > 1 {
        return Err(Error::Index("index_select(): Index is supposed to be a vector".into()));
    }
    if index.dtype() != DType::I64 {
        return Err(Error::runtime("index_select(): Expected dtype int32 or int64 for index"));
    }
    let xs = x.shape();
    let values = index.to_vec::<i64>();
    let out_of_range = || Error::Index("index out of range in self".into());
    if xs.is_empty() {
        if values.len() != 1 {
            return Err(Error::runtime(format!(
                "index_select(): Index to scalar can have only 1 value, got {} value(s)",
                values.len()
            )));
        }
        if values[0] != 0 {
            return Err(out_of_range());
        }
        // The one element, as a new tensor: d out/dx = 1
        let out = Tensor::from_data(kernels::contiguous_copy(&x.data()));
        return record(out, &[x], |_| super::view::IdentityBackward { name: "IndexSelectBackward0" });
    }
    let size = xs[dim] as i64;
    let bad = values.iter().find(|&&i| i < 0 || i >= size);
    if xs.len() > 1 && !values.is_empty() {
        let empty_self = shape::numel(&xs) == 0;
        if empty_self && size == 0 {
            return Err(Error::runtime("index_select(): self indexing axis dim should be positive"));
        }
        if let (true, Some(i)) = (empty_self || dim == 1, bad) {
            return Err(Error::runtime(format!("INDICES element is out of DATA bounds, id={i} axis_dim={size}")));
        }
    }
    if bad.is_some() {
        return Err(out_of_range());
    }
    let index = if index.ndim() == 0 { super::view::reshape(&index.detach(), &[1])? } else { index.clone() };
    let mut list: Vec<Option<Tensor>> = vec![None; dim];
    list.push(Some(index));
    index_named(x, &list, "IndexSelectBackward0")
}

pub(crate) fn index_named(x: &Tensor, indices: &[Option<Tensor>], name: &'static str) -> Result<Tensor> {
    let indices = expand_masks(&x.shape(), indices)?;
    let d = x.data();
    let plan = IndexPlan::new(&d, &indices)?;
    let block = with_dtype!(d.dtype(), T => {
        // SAFETY: read-only access to the storage.
        let all = unsafe { d.storage.slice::<T>() };
        let mut v: Vec<T> = Vec::with_capacity(plan.row.len() * plan.rest.len());
        for &r in &plan.row {
            v.extend(plan.rest.iter().map(|&o| all[r + o]));
        }
        TensorData::from_vec(v, plan.out_shape())
    });
    let out = Tensor::from_data(plan.to_result_order(block));
    record(out, &[x], |_| IndexBackward { indices: save_indices(&indices), self_shape: d.shape.clone(), name })
}

/// d x[idx]/dx: the gradient is added back at the indexed positions (repeats accumulate)
pub struct IndexBackward {
    indices: Vec<Option<SavedTensor>>,
    self_shape: Shape,
    name: &'static str,
}
impl Backward for IndexBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let indices = unpack_indices(&self.indices, ctx)?;
        let zeros = crate::creation::zeros(&self.self_shape, g.dtype());
        Ok(smallvec![Some(index_put_named(&zeros, &indices, g, true, "IndexPutImplBackward0")?)])
    }
    // t = tx[indices] (linear)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let formula = || index(ctx.tangent0()?, &unpack_indices(&self.indices, &ctx.backward)?);
        Some(formula())
    }
    fn release(&mut self) {
        self.indices.iter_mut().flatten().for_each(SavedTensor::release);
    }
    fn saves_tensors(&self) -> bool {
        true
    }
}

/// Index tensors saved with their versions (a node then refuses to run twice after its graph is
/// freed, and an index modified in place is caught, as in PyTorch).
fn save_indices(indices: &[Option<Tensor>]) -> Vec<Option<SavedTensor>> {
    indices.iter().map(|i| i.as_ref().map(SavedTensor::input)).collect()
}

fn unpack_indices(saved: &[Option<SavedTensor>], ctx: &BackwardCtx) -> Result<Vec<Option<Tensor>>> {
    saved.iter().map(|i| i.as_ref().map(|s| s.unpack(ctx)).transpose()).collect()
}

/// `base.index_put(indices, values, accumulate)`, out of place: a copy of `base` with
/// `values` (broadcast to the shape of `base[indices]`) written, or added, at the indices.
pub fn index_put(base: &Tensor, indices: &[Option<Tensor>], values: &Tensor, accumulate: bool) -> Result<Tensor> {
    index_put_named(base, indices, values, accumulate, "IndexPutBackward0")
}

/// A tensor of values must already have base's dtype (a Python number is converted, and so
/// is a 0-d value under masks only: PyTorch's masked_fill path).
fn check_index_put_dtype(base: &Tensor, indices: &[Option<Tensor>], values: &Tensor) -> Result<()> {
    let masked_scalar = values.ndim() == 0 && indices.iter().flatten().all(|i| i.dtype() == crate::dtype::DType::Bool);
    if !values.is_wrapped_number() && values.dtype() != base.dtype() && !masked_scalar {
        return Err(Error::runtime(format!(
            "Index put requires the source and destination dtypes match, got {} for the destination and {} for the source.",
            base.dtype().scalar_type_name(),
            values.dtype().scalar_type_name()
        )));
    }
    Ok(())
}

/// `x[idx] = number` for one integer index tensor: PyTorch records it as `index_fill_`.
pub fn index_fill(base: &Tensor, indices: &[Option<Tensor>], value: &Tensor) -> Result<Tensor> {
    if value.is_wrapped_number() && value.dtype().is_float() {
        crate::dtype::check_fits(value.item_f64()?, base.dtype())?;
    }
    index_put_named(base, indices, value, false, "IndexFillBackward0")
}

fn index_put_named(
    base: &Tensor,
    indices: &[Option<Tensor>],
    values: &Tensor,
    accumulate: bool,
    name: &'static str,
) -> Result<Tensor> {
    let fill = name == "IndexFillBackward0";
    let raw_indices = indices;
    let indices = expand_masks(&base.shape(), indices)?;
    let fresh = kernels::contiguous_copy(&base.data());
    if fill && fresh.numel() == 0 && indices.iter().flatten().all(|i| i.data().is_contiguous()) {
        check_single_value_fits(&IndexPlan::build_checking(&fresh, &indices, false, false)?, &fresh)?;
    }
    // PyTorch's order: the indices' shapes, the value's shape, its dtype, then the index values.
    let out_shape = IndexPlan::build(&fresh, &indices, false)?.out_shape();
    if !shape::is_expandable_to(&values.shape(), &out_shape) {
        return Err(Error::runtime(format!(
            "shape mismatch: value tensor of shape {} cannot be broadcast to indexing result of shape {}",
            shape::fmt_shape(&values.shape()),
            shape::fmt_shape(&out_shape)
        )));
    }
    if !fill {
        check_index_put_dtype(base, raw_indices, values)?;
    }
    let plan = IndexPlan::new(&fresh, &indices)?;
    let vd = values.data();
    let expanded = kernels::cast(
        &vd.restrided(out_shape.clone(), shape::broadcast_strides(&vd.shape, &vd.strides, &out_shape), vd.offset),
        fresh.dtype(),
    );
    let block = plan.as_block_order(expanded);
    with_dtype!(fresh.dtype(), T => {
        let src = block.to_vec::<T>();
        // SAFETY: `fresh` is a new private buffer and `src` a copy.
        let dst = unsafe { fresh.storage.slice_mut::<T>() };
        let mut i = 0;
        for &r in &plan.row {
            for &o in &plan.rest {
                dst[r + o] = if accumulate { <T as kernels::Arith>::apply(kernels::Binary::Add, dst[r + o], src[i]) } else { src[i] };
                i += 1;
            }
        }
    });
    let out = Tensor::from_data(fresh);
    record(out, &[base, values], |_| IndexPutBackward {
        indices: save_indices(&indices),
        values_shape: vd.shape.clone(),
        accumulate,
        name,
    })
}

/// `x[index] = number` into an empty tensor with contiguous indices: PyTorch writes the value
/// through a view of its storage (the flattened index dim with stride 0) before it reads the
/// index values; that view does not fit the empty storage, and PyTorch raises its storage error.
fn check_single_value_fits(plan: &IndexPlan, base: &TensorData) -> Result<()> {
    // The (contiguous) index is flattened to one dim first.
    let p = plan.insert_at;
    let mut sizes: Shape = plan.rest_shape[..p].into();
    sizes.push(shape::numel(&plan.index_shape));
    sizes.extend(plan.rest_shape[p..].iter().copied());
    if sizes.contains(&0) {
        return Ok(());
    }
    let rest_strides = shape::contiguous_strides(&plan.rest_shape);
    let strides: Vec<usize> =
        rest_strides[..p].iter().copied().chain(std::iter::once(0)).chain(rest_strides[p..].iter().copied()).collect();
    let itemsize = base.dtype().size();
    let span: usize = 1 + sizes.iter().zip(&strides).map(|(&n, &st)| (n - 1) * st).sum::<usize>();
    let (needed, available) = (span * itemsize, base.storage.len() * itemsize);
    if needed <= available {
        return Ok(());
    }
    Err(Error::runtime(format!(
        "setStorage: sizes {:?}, strides {strides:?}, storage offset 0, and itemsize {itemsize} requiring a storage size of {needed} are out of bounds for storage of size {available}",
        sizes.as_slice()
    )))
}

/// d index_put(b, idx, v)/db = 1 off the indices (everywhere if accumulating);
/// d/dv = the gradient at the indices, summed over broadcasting
pub struct IndexPutBackward {
    indices: Vec<Option<SavedTensor>>,
    values_shape: Shape,
    accumulate: bool,
    /// `IndexPutBackward0`, `IndexFillBackward0` (`x[i] = number`) or `IndexPutImplBackward0`
    /// (index's backward under create_graph, PyTorch's in-place `_index_put_impl_`).
    name: &'static str,
}
impl Backward for IndexPutBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let indices = unpack_indices(&self.indices, ctx)?;
        let gb = match (ctx.needs(0), self.accumulate) {
            (false, _) => None,
            (true, true) => Some(g.clone()),
            (true, false) => Some(index_put(g, &indices, &Tensor::wrapped_scalar(0.0), false)?),
        };
        let gv = if ctx.needs(1) { Some(sum_to(&index(g, &indices)?, &self.values_shape)?) } else { None };
        Ok(smallvec![gb, gv])
    }
    fn release(&mut self) {
        self.indices.iter_mut().flatten().for_each(SavedTensor::release);
    }
    fn saves_tensors(&self) -> bool {
        true
    }
}

/// For each element of `index`, the offset it addresses in a tensor of `shape`/`strides`:
/// its own coordinates, with the coordinate along `dim` replaced by the index value.
/// Negative indices are out of bounds (no wrapping, as in PyTorch); an empty index gives none.
fn gather_offsets(shape: &[usize], strides: &[usize], offset: usize, dim: usize, index: &Tensor) -> Result<Vec<usize>> {
    let id = index.data();
    if id.numel() == 0 {
        return Ok(Vec::new());
    }
    let values = id.to_vec::<i64>();
    let size = shape[dim] as i64;
    let mut out = Vec::with_capacity(values.len());
    let mut k = 0;
    let mut err = None;
    for_each_coord(&id.shape, |c| {
        let i = values[k];
        k += 1;
        if i < 0 || i >= size {
            err.get_or_insert(Error::runtime(format!(
                "index {i} is out of bounds for dimension {dim} with size {size}"
            )));
            return;
        }
        let i = i as usize;
        let mut o = offset;
        for (d, (&cd, &st)) in c.iter().zip(strides).enumerate() {
            o += if d == dim { i } else { cd } * st;
        }
        out.push(o);
    });
    err.map_or(Ok(out), Err)
}

/// The size of `shape` at `d`, a 0-d shape having size 1 at every dim (PyTorch's
/// `ensure_nonempty_size`); `None` past the dims of another shape.
fn nonempty_size(shape: &[usize], d: usize) -> Option<usize> {
    if shape.is_empty() {
        Some(1)
    } else {
        shape.get(d).copied()
    }
}

/// `gather`'s checks in PyTorch's order (the dim is wrapped by the caller): an empty index
/// skips them all; then the index dtype, its number of dims and its sizes.
fn check_gather_args(x: &Tensor, dim: usize, index: &Tensor) -> Result<()> {
    let (xs, is) = (x.shape(), index.shape());
    if shape::numel(&is) == 0 {
        return Ok(());
    }
    if index.dtype() != DType::I64 {
        return Err(Error::runtime("gather(): Expected dtype int32/int64 for index"));
    }
    if xs.len().max(1) != is.len().max(1) {
        return Err(Error::runtime("Index tensor must have the same number of dimensions as input tensor"));
    }
    for d in 0..is.len() {
        if d != dim && nonempty_size(&xs, d).is_some_and(|s| is[d] > s) {
            return Err(Error::runtime(format!(
                "Size does not match at dimension {d} expected index {} to be no larger than self {} apart from dimension {dim}",
                shape::fmt_shape(&is),
                shape::fmt_shape(&xs)
            )));
        }
    }
    Ok(())
}

/// `scatter`/`scatter_add`'s checks after the dtypes (an empty index skips them), in
/// PyTorch's order: the index dtype, its number of dims against self's, its sizes against
/// self's (but at `dim`) and then src's (reading a dim src lacks is an IndexError), its number
/// of dims against src's, and only then the size error. PyTorch names `scatter` for both ops.
fn check_scatter_args(x: &Tensor, dim: usize, index: &Tensor, src: Option<&Tensor>) -> Result<()> {
    let (xs, is) = (x.shape(), index.shape());
    if index.dtype() != DType::I64 {
        return Err(Error::runtime("scatter(): Expected dtype int32/int64 for index"));
    }
    if xs.len().max(1) != is.len().max(1) {
        return Err(Error::runtime("Index tensor must have the same number of dimensions as self tensor"));
    }
    let dims = xs.len().max(1);
    let index_size = |d: usize| nonempty_size(&is, d).unwrap_or(1);
    let mut wrong = (0..dims).any(|d| d != dim && nonempty_size(&xs, d).is_some_and(|s| index_size(d) > s));
    if let (false, Some(src)) = (wrong, src) {
        let ss = src.shape();
        for d in 0..dims {
            // PyTorch reads src's size at every dim of self: a missing one is out of range.
            let Some(size) = nonempty_size(&ss, d) else {
                let n = ss.len().max(1) as i64;
                return Err(Error::DimOutOfRange { low: -n, high: n - 1, got: d as i64 });
            };
            if index_size(d) > size {
                wrong = true;
                break;
            }
        }
    }
    if let Some(src) = src {
        if src.ndim().max(1) != is.len().max(1) {
            return Err(Error::runtime("Index tensor must have the same number of dimensions as src tensor"));
        }
    }
    if wrong {
        let mut msg = format!(
            "Expected index {} to be no larger than self {} apart from dimension {dim}",
            shape::fmt_shape(&is),
            shape::fmt_shape(&xs)
        );
        if let Some(src) = src {
            msg += &format!(" and to be no larger size than src {}", shape::fmt_shape(&src.shape()));
        }
        return Err(Error::runtime(msg));
    }
    Ok(())
}

/// `x.gather(dim, index)`: `out[i][j] = x[i][index[i][j]]` (for `dim == 1`).
pub fn gather(x: &Tensor, dim: i64, index: &Tensor) -> Result<Tensor> {
    let dim = shape::wrap_dim(dim, x.ndim().max(1))?;
    check_gather_args(x, dim, index)?;
    let d = x.data();
    let (shp, strides): (Shape, Shape) =
        if d.shape.is_empty() { (smallvec![1], smallvec![1]) } else { (d.shape.clone(), d.strides.clone()) };
    let offsets = gather_offsets(&shp, &strides, d.offset, dim, index)?;
    let out = with_dtype!(d.dtype(), T => {
        // SAFETY: read-only access to the storage.
        let all = unsafe { d.storage.slice::<T>() };
        TensorData::from_vec(offsets.iter().map(|&o| all[o]).collect::<Vec<T>>(), index.shape())
    });
    record(Tensor::from_data(out), &[x], |_| GatherBackward {
        self_shape: d.shape.clone(),
        dim,
        index: SavedTensor::input(index),
    })
}

/// d gather(x, dim, idx)/dx: the gradient is added back at the gathered positions
pub struct GatherBackward {
    self_shape: Shape,
    dim: usize,
    index: SavedTensor,
}
impl Backward for GatherBackward {
    fn name(&self) -> &'static str {
        "GatherBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let index = self.index.unpack(ctx)?;
        let zeros = crate::creation::zeros(&self.self_shape, g.dtype());
        Ok(smallvec![Some(scatter(&zeros, self.dim as i64, &index, g, true)?)])
    }
    // t = gather(tx) with the same index (linear)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let formula = || gather(ctx.tangent0()?, self.dim as i64, &self.index.unpack(&ctx.backward)?);
        Some(formula())
    }
    crate::saved_tensors!(index);
}

/// `base.scatter(dim, index, src)` (`accumulate`: `scatter_add`), out of place.
pub fn scatter(base: &Tensor, dim: i64, index: &Tensor, src: &Tensor, accumulate: bool) -> Result<Tensor> {
    let src_is_scalar = src.is_wrapped_number();
    // PyTorch's order: the dim, the dtypes (PyTorch names `scatter` for both ops), then,
    // unless the index is empty, the index itself.
    let dim = shape::wrap_dim(dim, base.ndim().max(1))?;
    if !src_is_scalar && src.dtype() != base.dtype() {
        return Err(Error::runtime("scatter(): Expected self.dtype to be equal to src.dtype"));
    }
    let empty = index.numel() == 0;
    if !empty {
        check_scatter_args(base, dim, index, (!src_is_scalar).then_some(src))?;
    }
    if src_is_scalar {
        crate::dtype::check_fits(src.item_f64()?, base.dtype())?;
    }
    let fresh = kernels::contiguous_copy(&base.data());
    let (shp, strides): (Shape, Shape) = if fresh.shape.is_empty() {
        (smallvec![1], smallvec![1])
    } else {
        (fresh.shape.clone(), fresh.strides.clone())
    };
    let dst_offsets = gather_offsets(&shp, &strides, 0, dim, index)?;
    let sd = src.data();
    let src_values: TensorData = if empty {
        kernels::full(&[0], 0.0, fresh.dtype())
    } else if src_is_scalar {
        kernels::full(&index.shape(), sd.get_f64(0), fresh.dtype())
    } else {
        // The elements of `src` at the index's coordinates.
        let is = index.shape();
        let st: Shape = if sd.shape.is_empty() { smallvec![1; is.len()] } else { sd.strides.clone() };
        kernels::cast(&sd.restrided(is, st, sd.offset), fresh.dtype())
    };
    with_dtype!(fresh.dtype(), T => {
        let v = src_values.to_vec::<T>();
        // SAFETY: `fresh` is a new private buffer.
        let dst = unsafe { fresh.storage.slice_mut::<T>() };
        for (&o, &x) in dst_offsets.iter().zip(&v) {
            dst[o] = if accumulate { <T as kernels::Arith>::apply(kernels::Binary::Add, dst[o], x) } else { x };
        }
    });
    let out = Tensor::from_data(fresh);
    let inputs: &[&Tensor] = if src_is_scalar { &[base] } else { &[base, src] };
    // scatter_add needs the index only for src's gradient: PyTorch saves it only then.
    let keeps_index = !accumulate || (!src_is_scalar && src.requires_grad());
    record(out, inputs, |_| ScatterBackward {
        dim,
        index: if keeps_index { SavedTensor::input(index) } else { SavedTensor::none() },
        keeps_index,
        src_shape: sd.shape.clone(),
        accumulate,
        value: src_is_scalar,
    })
}

/// d scatter_add(b, dim, idx, s)/db = 1, d/ds = gather(g, dim, idx);
/// scatter overwrites, so d/db is 0 at the written positions
pub struct ScatterBackward {
    dim: usize,
    index: SavedTensor,
    src_shape: Shape,
    accumulate: bool,
    /// Scattering a number (`scatter(dim, index, value=v)`, `ScatterBackward1`).
    value: bool,
    /// Whether `index` was saved (not for scatter_add into a src without gradient).
    keeps_index: bool,
}
impl Backward for ScatterBackward {
    fn name(&self) -> &'static str {
        match (self.accumulate, self.value) {
            (true, _) => "ScatterAddBackward0",
            (false, true) => "ScatterBackward1",
            (false, false) => "ScatterBackward0",
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        if self.accumulate && !ctx.needs(1) {
            return Ok(smallvec![ctx.needs(0).then(|| g.clone()), None]);
        }
        let index = self.index.unpack(ctx)?;
        let gb = match (ctx.needs(0), self.accumulate) {
            (false, _) => None,
            (true, true) => Some(g.clone()),
            (true, false) => Some(scatter(g, self.dim as i64, &index, &Tensor::wrapped_scalar(0.0), false)?),
        };
        let gs = if ctx.needs(1) {
            let picked = gather(g, self.dim as i64, &index)?;
            Some(if picked.shape() == self.src_shape { picked } else { pad_to(&picked, &self.src_shape)? })
        } else {
            None
        };
        Ok(smallvec![gb, gs])
    }
    fn release(&mut self) {
        self.index.release();
    }
    fn saves_tensors(&self) -> bool {
        self.keeps_index
    }
    fn retarget_outputs(&mut self, _target: &Tensor) {}
}

/// `small` placed at the start of a zero tensor of `shape` (src bigger than the index).
fn pad_to(small: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let s = small.shape();
    let indices: Vec<Option<Tensor>> = s
        .iter()
        .map(|&n| Some(Tensor::from_data(kernels::from_vec((0..n as i64).collect::<Vec<_>>(), &[n]))))
        .collect();
    // Open grid: index k gets shape [1,..,n_k,..,1] so they broadcast to `s`.
    let grid: Vec<Option<Tensor>> = indices
        .into_iter()
        .enumerate()
        .map(|(k, t)| {
            let mut gs: Vec<i64> = vec![1; s.len()];
            gs[k] = s[k] as i64;
            t.map(|t| super::view::reshape(&t, &gs)).transpose()
        })
        .collect::<Result<_>>()?;
    index_put(&crate::creation::zeros(shape, small.dtype()), &grid, small, false)
}
