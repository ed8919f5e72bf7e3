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
        let (b, v) = (&self.base, &self.view);
        let mut out = Vec::with_capacity(shape::numel(&v.shape));
        let outside = || Error::runtime("as_strided: the view reaches outside its base's elements");
        if shape::is_contiguous(&b.shape, &b.strides) {
            let n = shape::numel(&b.shape);
            let mut bad = false;
            crate::tensor::for_each_strided(&v.shape, &v.strides, v.offset, &mut |o| match o.checked_sub(b.offset) {
                Some(i) if i < n => out.push(i),
                _ => bad = true,
            });
            return if bad { Err(outside()) } else { Ok(out) };
        }
        // A base with any other layout: map storage positions to base indices.
        let mut index_of = std::collections::HashMap::with_capacity(shape::numel(&b.shape));
        let mut i = 0usize;
        crate::tensor::for_each_strided(&b.shape, &b.strides, b.offset, &mut |o| {
            index_of.entry(o).or_insert(i);
            i += 1;
        });
        let mut bad = false;
        crate::tensor::for_each_strided(&v.shape, &v.strides, v.offset, &mut |o| match index_of.get(&o) {
            Some(&i) => out.push(i),
            None => bad = true,
        });
        if bad {
            Err(outside())
        } else {
            Ok(out)
        }
    }
}

/// The elements the view shows, read from `x` (which has the base's shape).
pub fn take(x: &Tensor, geometry: &Arc<ViewGeometry>) -> Result<Tensor> {
    let positions = geometry.positions()?;
    let d = x.data();
    let out = with_dtype!(d.dtype(), T => {
        let values = d.to_vec::<T>();
        let picked: Vec<T> = positions.iter().map(|&i| values[i]).collect();
        Tensor::from_vec(picked, &geometry.view.shape)?
    });
    record(out, &[x], |_| AsStridedBackward { geometry: geometry.clone() })
}

/// A base-shaped tensor of zeros with `g` (view-shaped) added at the view's elements.
pub fn put(g: &Tensor, geometry: &Arc<ViewGeometry>) -> Result<Tensor> {
    let positions = geometry.positions()?;
    let d = g.data();
    let n = shape::numel(&geometry.base.shape);
    let out = with_float!(d.dtype(), T => {
        let values = d.to_vec::<T>();
        let mut base = vec![<T as crate::dtype::Element>::zero(); n];
        for (&i, &v) in positions.iter().zip(&values) {
            base[i] += v;
        }
        Tensor::from_vec(base, &geometry.base.shape)?
    });
    record(out, &[g], |_| AsStridedScatterBackward { geometry: geometry.clone() })
}

/// d as_strided(base)/d base: the gradient goes back to the elements the view shows
pub struct AsStridedBackward {
    /// The base and view geometries.
    pub geometry: Arc<ViewGeometry>,
}
impl Backward for AsStridedBackward {
    fn name(&self) -> &'static str {
        "AsStridedBackward0"
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
