//! Shapes, strides, broadcasting and dimension arithmetic.

use crate::error::{Error, Result};
use smallvec::SmallVec;

/// Sizes of each dimension.
pub type Shape = SmallVec<[usize; 4]>;
/// Element strides of each dimension.
pub type Strides = SmallVec<[usize; 4]>;

/// Number of elements of a shape (1 for a 0-d tensor).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Number of elements of a shape that was just made from sizes someone gave (a view, an
/// expansion, a broadcast): PyTorch's "numel: integer multiplication overflow" when the count
/// does not fit in an `int64`.
pub fn checked_numel(shape: &[usize]) -> Result<usize> {
    let mut n: usize = 1;
    for &s in shape {
        n = n
            .checked_mul(s)
            .filter(|&n| n <= i64::MAX as usize)
            .ok_or_else(|| Error::runtime("numel: integer multiplication overflow"))?;
    }
    Ok(n)
}

/// Number of elements of a new storage of `shape` whose elements take `itemsize` bytes:
/// PyTorch's "Storage size calculation overflowed" when elements or bytes do not fit in an
/// `int64` (a size of 0 anywhere makes the storage empty, whatever the other sizes).
pub fn storage_numel(shape: &[usize], itemsize: usize) -> Result<usize> {
    if shape.contains(&0) {
        return Ok(0);
    }
    let overflow = || Error::runtime(format!("Storage size calculation overflowed with sizes={}", fmt_shape(shape)));
    let n = checked_numel(shape).map_err(|_| overflow())?;
    n.checked_mul(itemsize).filter(|&b| b <= i64::MAX as usize).ok_or_else(overflow)?;
    Ok(n)
}

/// Row-major strides of a contiguous tensor of this shape.
#[inline]
pub fn contiguous_strides(shape: &[usize]) -> Strides {
    let mut strides: Strides = SmallVec::from_elem(0, shape.len());
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc *= shape[i].max(1);
    }
    strides
}

/// True when the elements exactly fill `numel` consecutive slots in some order of the dims
/// (PyTorch's "non-overlapping and dense"; size-1 dims do not count).
pub fn is_dense(shape: &[usize], strides: &[usize]) -> bool {
    let mut dims: SmallVec<[(usize, usize); 6]> =
        shape.iter().zip(strides).filter(|(&n, _)| n != 1).map(|(&n, &s)| (s, n)).collect();
    if dims.iter().any(|&(_, n)| n == 0) {
        return true;
    }
    dims.sort_unstable();
    let mut expected = 1;
    for (s, n) in dims {
        if s != expected {
            return false;
        }
        expected *= n;
    }
    true
}

/// Note [Output layout]: the strides PyTorch gives the result of an element-wise op on
/// `operands` (shape, strides), broadcast to `shape`. Operands that all have the result's shape
/// and are all contiguous give a contiguous result; all dense with the same strides, those
/// strides. Otherwise the dims are ordered innermost first by the operands' strides: the first
/// operand that tells two dims apart (neither broadcast, strides unequal) decides; equal
/// strides put the larger dim outside; nothing telling them apart keeps them row-major. The
/// result is dense in that order.
pub fn output_strides(shape: &[usize], operands: &[(&[usize], &[usize])]) -> Strides {
    let same_shape = operands.iter().all(|(s, _)| *s == shape);
    if same_shape && operands.iter().all(|(s, st)| is_contiguous(s, st)) {
        return contiguous_strides(shape);
    }
    if let [(s0, st0), rest @ ..] = operands {
        if same_shape && is_dense(s0, st0) && rest.iter().all(|(_, st)| st == st0) {
            return SmallVec::from_slice(st0);
        }
    }
    dense_strides_in_operand_order(shape, operands)
}

/// A dense layout of `shape` with the dims in the order the operands' strides give them
/// (note [Output layout]).
fn dense_strides_in_operand_order(shape: &[usize], operands: &[(&[usize], &[usize])]) -> Strides {
    let n = shape.len();
    // Each operand's strides over the result's dims (0 where it is broadcast).
    let aligned: SmallVec<[Strides; 3]> = operands
        .iter()
        .map(|(s, st)| {
            let lead = n - s.len().min(n);
            (0..n)
                .map(|d| match d.checked_sub(lead) {
                    Some(j) if !(s[j] == 1 && shape[d] != 1) => st[j],
                    _ => 0,
                })
                .collect()
        })
        .collect();
    // For dim `a`, now placed inside dim `b`: 1 if it belongs outside `b`, -1 if it stays
    // inside, 0 if no operand tells.
    let order_of = |a: usize, b: usize| -> i8 {
        for st in &aligned {
            let (sa, sb) = (st[a], st[b]);
            if sa == 0 || sb == 0 {
                continue;
            }
            if sa != sb {
                return if sa < sb { -1 } else { 1 };
            }
            if shape[a] > shape[b] {
                return 1;
            }
        }
        0
    };
    // Innermost first; an insertion sort that stops at the first dim known to stay inside.
    let mut perm: SmallVec<[usize; 6]> = (0..n).rev().collect();
    for i in 1..n {
        let mut moving = i;
        for j in (0..i).rev() {
            match order_of(perm[j], perm[moving]) {
                1 => {
                    perm.swap(j, moving);
                    moving = j;
                }
                -1 => break,
                _ => {}
            }
        }
    }
    let mut strides: Strides = SmallVec::from_elem(0, n);
    let mut acc = 1;
    for &d in &perm {
        strides[d] = acc;
        acc *= shape[d].max(1);
    }
    strides
}

/// The strides of `empty_like(x)` (PyTorch's preserve format): a dense `x`'s own, else a dense
/// layout in `x`'s dim order.
pub fn strides_like(shape: &[usize], strides: &[usize]) -> Strides {
    if is_dense(shape, strides) {
        return SmallVec::from_slice(strides);
    }
    dense_strides_in_operand_order(shape, &[(shape, strides)])
}

/// True when a (shape, strides) pair lays elements out row-major without gaps.
#[inline]
pub fn is_contiguous(shape: &[usize], strides: &[usize]) -> bool {
    // A tensor with no elements is contiguous whatever its strides (PyTorch's rule).
    if shape.contains(&0) {
        return true;
    }
    let mut expected = 1;
    for i in (0..shape.len()).rev() {
        if shape[i] != 1 {
            if strides[i] != expected {
                return false;
            }
            expected *= shape[i];
        }
    }
    true
}

/// `[2, 3]`, as PyTorch writes shapes in messages.
pub fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// `torch.Size([2, 3])`.
pub fn fmt_size(shape: &[usize]) -> String {
    format!("torch.Size({})", fmt_shape(shape))
}

/// Normalises a possibly negative dimension index against `ndim` dimensions
/// (a 0-d tensor accepts -1 and 0, as in PyTorch).
pub fn wrap_dim(dim: i64, ndim: usize) -> Result<usize> {
    let n = ndim.max(1) as i64;
    if dim < -n || dim >= n {
        return Err(Error::DimOutOfRange { low: -n, high: n - 1, got: dim });
    }
    Ok(if dim < 0 { (dim + n) as usize } else { dim as usize })
}

/// Normalises a list of dimensions; repeated dimensions are an error.
///
/// A 0-d tensor accepts 0 and -1, as PyTorch's do, and has no dimension to reduce: the list
/// comes back empty.
pub fn wrap_dims(dims: &[i64], ndim: usize) -> Result<SmallVec<[usize; 4]>> {
    let mut out: SmallVec<[usize; 4]> = SmallVec::new();
    for &d in dims {
        let w = wrap_dim(d, ndim)?;
        if ndim == 0 {
            continue;
        }
        if out.contains(&w) {
            return Err(Error::runtime(format!("dim {w} appears multiple times in the list of dims")));
        }
        out.push(w);
    }
    Ok(out)
}

/// The shape two operands broadcast to (numpy rules), with PyTorch's message on mismatch.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Shape> {
    if a == b {
        return Ok(a.into());
    }
    let n = a.len().max(b.len());
    let mut out: Shape = SmallVec::from_elem(0, n);
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::BroadcastMismatch { a: da, b: db, dim: i });
        };
    }
    checked_numel(&out)?;
    Ok(out)
}

/// Strides that read a tensor of `shape`/`strides` as if it had `target` shape
/// (0 along broadcast dimensions). `shape` must be broadcastable to `target`.
pub fn broadcast_strides(shape: &[usize], strides: &[usize], target: &[usize]) -> Strides {
    let n = target.len();
    let lead = n - shape.len();
    let mut out: Strides = SmallVec::from_elem(0, n);
    for i in 0..shape.len() {
        out[lead + i] = if shape[i] == 1 && target[lead + i] != 1 { 0 } else { strides[i] };
    }
    out
}

/// True if `shape` can be expanded to `target`.
pub fn is_expandable_to(shape: &[usize], target: &[usize]) -> bool {
    if shape.len() > target.len() {
        return false;
    }
    let lead = target.len() - shape.len();
    shape.iter().enumerate().all(|(i, &s)| s == target[lead + i] || s == 1)
}

/// Resolves a view/reshape request (with at most one -1) against `numel` elements.
pub fn infer_shape(request: &[i64], numel: usize) -> Result<Shape> {
    let mut infer_at = None;
    let mut known: usize = 1;
    for (i, &s) in request.iter().enumerate() {
        if s == -1 {
            if infer_at.is_some() {
                return Err(Error::runtime("only one dimension can be inferred"));
            }
            infer_at = Some(i);
        } else if s < 0 {
            return Err(Error::runtime(format!("invalid shape dimension {s}")));
        } else {
            // A product past int64 is saturated: it can then match no real tensor's size.
            known = known.saturating_mul(s as usize).min(i64::MAX as usize + 1);
        }
    }
    let invalid = || {
        let parts: Vec<String> = request.iter().map(|s| s.to_string()).collect();
        Error::runtime(format!("shape '[{}]' is invalid for input of size {numel}", parts.join(", ")))
    };
    let mut shape: Shape = request.iter().map(|&s| s.max(0) as usize).collect();
    match infer_at {
        Some(i) => {
            if known == 0 || numel % known != 0 {
                return Err(invalid());
            }
            shape[i] = numel / known;
        }
        None => {
            if known != numel {
                return Err(invalid());
            }
        }
    }
    Ok(shape)
}

/// Strides for viewing (`old_shape`, `old_strides`) as `new_shape` without copying, if possible
/// (PyTorch's `computeStride`): `None` when a dimension would span non-contiguous memory.
pub fn view_strides(old_shape: &[usize], old_strides: &[usize], new_shape: &[usize]) -> Option<Strides> {
    let numel = numel(old_shape);
    if numel == 0 || old_shape.is_empty() {
        return Some(contiguous_strides(new_shape));
    }
    let mut new_strides: Strides = SmallVec::from_elem(0, new_shape.len());
    let mut view_d = new_shape.len() as isize - 1;
    let mut chunk_base_stride = *old_strides.last().unwrap();
    let mut tensor_numel = 1usize;
    let mut view_numel = 1usize;
    for tensor_d in (0..old_shape.len()).rev() {
        tensor_numel *= old_shape[tensor_d];
        let chunk_end = tensor_d == 0
            || (old_shape[tensor_d - 1] != 1 && old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride);
        if chunk_end {
            while view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d as usize] == 1) {
                new_strides[view_d as usize] = view_numel * chunk_base_stride;
                view_numel *= new_shape[view_d as usize];
                view_d -= 1;
            }
            if view_numel != tensor_numel {
                return None;
            }
            if tensor_d > 0 {
                chunk_base_stride = old_strides[tensor_d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    if view_d != -1 {
        return None;
    }
    Some(new_strides)
}

/// The dimensions to sum over (and which keep their size-1 slot) to reduce `from` to `to`.
pub fn sum_to_dims(from: &[usize], to: &[usize]) -> (SmallVec<[usize; 4]>, SmallVec<[usize; 4]>) {
    let lead = from.len() - to.len();
    let leading: SmallVec<[usize; 4]> = (0..lead).collect();
    let kept: SmallVec<[usize; 4]> =
        (0..to.len()).filter(|&i| to[i] == 1 && from[lead + i] != 1).map(|i| i + lead).collect();
    (leading, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shapes(&[3, 1], &[4]).unwrap().as_slice(), &[3, 4]);
        assert_eq!(broadcast_shapes(&[], &[2, 2]).unwrap().as_slice(), &[2, 2]);
        let e = broadcast_shapes(&[3], &[4]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 0"
        );
    }

    #[test]
    fn view_inference() {
        assert_eq!(infer_shape(&[2, -1], 6).unwrap().as_slice(), &[2, 3]);
        assert_eq!(infer_shape(&[3, 5], 16).unwrap_err().to_string(), "shape '[3, 5]' is invalid for input of size 16");
        // a transposed 2x3 cannot be flattened without a copy
        assert!(view_strides(&[3, 2], &[1, 3], &[6]).is_none());
        assert_eq!(view_strides(&[2, 3], &[3, 1], &[3, 2]).unwrap().as_slice(), &[2, 1]);
        // splitting a dimension of a transposed tensor works
        assert_eq!(view_strides(&[4, 2], &[1, 4], &[2, 2, 2]).unwrap().as_slice(), &[2, 1, 4]);
    }

    #[test]
    fn dims() {
        assert_eq!(wrap_dim(-1, 3).unwrap(), 2);
        assert_eq!(
            wrap_dim(2, 2).unwrap_err().to_string(),
            "Dimension out of range (expected to be in range of [-2, 1], but got 2)"
        );
        assert_eq!(wrap_dim(0, 0).unwrap(), 0);
    }
}
