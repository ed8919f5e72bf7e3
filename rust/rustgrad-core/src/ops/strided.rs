//! `as_strided` between a base and one of its views: `take` reads the elements a view shows
//! out of a base-shaped tensor, `put` writes a view-shaped tensor back into a base-shaped one
//! (zeros elsewhere). Each is the other's backward. They carry the gradient between a base and
//! its views after an in-place op rewrote the base's history (Note [Views and in-place]).

use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads};
use crate::error::{Error, Result};
use crate::shape::{self, Shape, Strides};
use crate::tensor::{Tensor, TensorData};
use crate::{with_dtype, with_float};
use smallvec::smallvec;
use std::sync::Arc;

/// Where a tensor's elements sit in its storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Size of each dimension.
    pub shape: Shape,
    /// Step in elements along each dimension.
    pub strides: Strides,
    /// Index of the first element in the storage.
    pub offset: usize,
}

impl Geometry {
    /// The geometry of a tensor's data.
    pub fn of(d: &TensorData) -> Geometry {
        Geometry { shape: d.shape.clone(), strides: d.strides.clone(), offset: d.offset }
    }
}

/// A view inside a base: both geometries over the same storage.
#[derive(Clone, Debug)]
pub struct ViewGeometry {
    /// The base's geometry.
    pub base: Geometry,
    /// The view's geometry.
    pub view: Geometry,
}

impl ViewGeometry {
    /// For each element of the view (row-major), the row-major index of the same storage
    /// element in the base.
    pub fn positions(&self) -> Result<Vec<usize>> {
        self.locate()
            .into_iter()
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| Error::runtime("as_strided: the view reaches outside its base's elements"))
    }

    /// [`Self::positions`], with `None` for a view element outside the base (a user's
    /// `as_strided` may reach storage its input does not show).
    pub fn locate(&self) -> Vec<Option<usize>> {
        let (b, v) = (&self.base, &self.view);
        let mut out = Vec::with_capacity(shape::numel(&v.shape));
        if shape::is_contiguous(&b.shape, &b.strides) {
            let n = shape::numel(&b.shape);
            crate::tensor::for_each_strided(&v.shape, &v.strides, v.offset, &mut |o| {
                out.push(o.checked_sub(b.offset).filter(|&i| i < n));
            });
            return out;
        }
        // A base with any other layout: map storage positions to base indices.
        let mut index_of = std::collections::HashMap::with_capacity(shape::numel(&b.shape));
        let mut i = 0usize;
        crate::tensor::for_each_strided(&b.shape, &b.strides, b.offset, &mut |o| {
            index_of.entry(o).or_insert(i);
            i += 1;
        });
        crate::tensor::for_each_strided(&v.shape, &v.strides, v.offset, &mut |o| out.push(index_of.get(&o).copied()));
        out
    }
}

/// The elements the view shows, read from `x` (which has the base's shape).
/// Elements outside the base read as zero.
pub fn take(x: &Tensor, geometry: &Arc<ViewGeometry>) -> Result<Tensor> {
    let positions = geometry.locate();
    let d = x.data();
    let out = with_dtype!(d.dtype(), T => {
        let values = d.to_vec::<T>();
        let zero = <T as crate::dtype::Element>::zero();
        let picked: Vec<T> = positions.iter().map(|&i| i.map_or(zero, |i| values[i])).collect();
        Tensor::from_vec(picked, &geometry.view.shape)?
    });
    record(out, &[x], |_| AsStridedBackward { geometry: geometry.clone(), name: "AsStridedBackward0" })
}

/// A base-shaped tensor of zeros with `g` (view-shaped) added at the view's elements (those
/// outside the base are dropped).
pub fn put(g: &Tensor, geometry: &Arc<ViewGeometry>) -> Result<Tensor> {
    let positions = geometry.locate();
    let d = g.data();
    let n = shape::numel(&geometry.base.shape);
    let out = with_float!(d.dtype(), T => {
        let values = d.to_vec::<T>();
        let mut base = vec![<T as crate::dtype::Element>::zero(); n];
        for (&i, &v) in positions.iter().zip(&values) {
            if let Some(i) = i {
                base[i] += v;
            }
        }
        Tensor::from_vec(base, &geometry.base.shape)?
    });
    record(out, &[g], |_| AsStridedScatterBackward { geometry: geometry.clone() })
}

/// d as_strided(base)/d base: the gradient goes back to the elements the view shows
pub struct AsStridedBackward {
    /// The base and view geometries.
    pub geometry: Arc<ViewGeometry>,
    /// `AsStridedBackward0`, or `AsStridedBackward1` for the in-place `as_strided_`.
    pub name: &'static str,
}
impl Backward for AsStridedBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(put(grad0(grads)?, &self.geometry)?)])
    }
}

/// d put(g)/dg: read the view's elements of the gradient
pub struct AsStridedScatterBackward {
    geometry: Arc<ViewGeometry>,
}
impl Backward for AsStridedScatterBackward {
    fn name(&self) -> &'static str {
        "AsStridedScatterBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(take(grad0(grads)?, &self.geometry)?)])
    }
}

/// `x.as_strided(size, stride, storage_offset)`: a view of `x`'s storage with the given
/// geometry (the offset defaults to `x`'s own). Gradients reach only the elements `x` shows.
pub fn as_strided(
    x: &Tensor,
    size: &[i64],
    stride: &[i64],
    storage_offset: Option<i64>,
    name: &'static str,
) -> Result<Tensor> {
    let d = x.data();
    if size.len() != stride.len() {
        return Err(Error::runtime("mismatch in length of strides and shape"));
    }
    if let Some(&bad) = size.iter().find(|&&s| s < 0) {
        return Err(Error::runtime(format!(
            "Trying to create tensor with negative dimension {bad}: {}",
            fmt_ints(size)
        )));
    }
    if stride.iter().any(|&s| s < 0) {
        return Err(Error::runtime(format!(
            "as_strided: Negative strides are not supported at the moment, got strides: {}",
            fmt_ints(stride)
        )));
    }
    let offset = storage_offset.unwrap_or(d.offset as i64);
    if offset < 0 {
        return Err(Error::runtime(format!("Tensor: invalid storage offset {offset}")));
    }
    let shape: Shape = size.iter().map(|&s| s as usize).collect();
    let strides: Strides = stride.iter().map(|&s| s as usize).collect();
    let numel = shape::checked_numel(&shape)?;
    let itemsize = d.dtype().size() as u128;
    let needed = if numel == 0 {
        0
    } else {
        offset as u128 + 1 + shape.iter().zip(&strides).map(|(&n, &s)| (n as u128 - 1) * s as u128).sum::<u128>()
    };
    let have = d.storage.len() as u128;
    if needed > have {
        return Err(Error::runtime(format!(
            "setStorage: sizes {}, strides {}, storage offset {offset}, and itemsize {itemsize} requiring a storage size of {} are out of bounds for storage of size {}",
            fmt_ints(size),
            fmt_ints(stride),
            needed * itemsize,
            have * itemsize
        )));
    }
    let geometry = Arc::new(ViewGeometry {
        base: Geometry::of(&d),
        view: Geometry { shape: shape.clone(), strides: strides.clone(), offset: offset as usize },
    });
    let out = Tensor::new_view(x, d.restrided(shape, strides, offset as usize));
    record(out, &[x], |_| AsStridedBackward { geometry, name })
}

fn fmt_ints(v: &[i64]) -> String {
    let parts: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    format!("[{}]", parts.join(", "))
}
