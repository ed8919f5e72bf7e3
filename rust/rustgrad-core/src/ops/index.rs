//! Basic indexing: `select` (an integer index) and `slice` (start:stop:step), both views.

use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads};
use crate::error::{Error, Result};
use crate::shape::{self, Shape};
use crate::tensor::Tensor;
use smallvec::smallvec;

/// A view of one position along a dimension, or of a strided range of positions.
#[derive(Clone, Copy, Debug)]
pub enum Pick {
    /// Position `index` of dimension `dim` (the dimension is removed).
    #[allow(missing_docs)] // the fields are named in the doc above
    Select { dim: usize, index: usize },
    /// `len` positions of dimension `dim` from `start`, every `step`-th.
    #[allow(missing_docs)] // the fields are named in the doc above
    Slice { dim: usize, start: usize, len: usize, step: usize },
}

fn view_of(x: &Tensor, pick: Pick) -> Tensor {
    Tensor::new_view(x, picked(x, pick))
}

/// The picked elements' layout within `x`'s storage.
fn picked(x: &Tensor, pick: Pick) -> crate::tensor::TensorData {
    let d = x.data();
    let (mut s, mut st) = (d.shape.clone(), d.strides.clone());
    let offset = match pick {
        Pick::Select { dim, index } => {
            let off = d.offset + index * d.strides[dim];
            s.remove(dim);
            st.remove(dim);
            off
        }
        Pick::Slice { dim, start, len, step } => {
            let off = d.offset + if len > 0 { start * d.strides[dim] } else { 0 };
            s[dim] = len;
            st[dim] *= step;
            off
        }
    };
    d.restrided(s, st, offset)
}

/// `x.select(dim, index)` / `x[..., index, ...]`.
pub fn select(x: &Tensor, dim: i64, index: i64) -> Result<Tensor> {
    let shp = x.shape();
    if shp.is_empty() {
        return Err(Error::Index("select() cannot be applied to a 0-dim tensor.".into()));
    }
    let dim = shape::wrap_dim(dim, shp.len())?;
    let size = shp[dim] as i64;
    if index < -size || index >= size {
        return Err(Error::Index(format!("index {index} is out of bounds for dimension {dim} with size {size}")));
    }
    let index = if index < 0 { index + size } else { index } as usize;
    let pick = Pick::Select { dim, index };
    record(view_of(x, pick), &[x], |_| PickBackward { in_shape: shp.clone(), pick })
}

/// `x[start:stop:step]` along `dim`, with bounds already normalised (Python's `slice.indices`).
pub fn slice(x: &Tensor, dim: i64, start: usize, stop: usize, step: usize) -> Result<Tensor> {
    let shp = x.shape();
    let dim = shape::wrap_dim(dim, shp.len())?;
    if step == 0 {
        return Err(Error::Value("slice step cannot be zero".into()));
    }
    let start = start.min(shp[dim]);
    let stop = stop.clamp(start, shp[dim]);
    let len = (stop - start).div_ceil(step);
    let pick = Pick::Slice { dim, start, len, step };
    record(view_of(x, pick), &[x], |_| PickBackward { in_shape: shp.clone(), pick })
}

fn apply(x: &Tensor, pick: Pick) -> Result<Tensor> {
    match pick {
        Pick::Select { dim, index } => select(x, dim as i64, index as i64),
        Pick::Slice { dim, start, len, step } => slice(x, dim as i64, start, start + len * step, step),
    }
}

/// Places `grad` at the picked positions of a zero tensor of `in_shape`.
fn scatter_into_zeros(grad: &Tensor, in_shape: &Shape, pick: Pick) -> Result<Tensor> {
    let out = crate::creation::zeros(in_shape, grad.dtype());
    picked(&out, pick).write_from(&grad.data());
    record(out, &[grad], |_| PickScatterBackward { pick })
}

/// d x[pick]/dx: the gradient lands at the picked positions, zeros elsewhere
pub struct PickBackward {
    in_shape: Shape,
    pick: Pick,
}
impl Backward for PickBackward {
    fn name(&self) -> &'static str {
        match self.pick {
            Pick::Select { .. } => "SelectBackward0",
            Pick::Slice { .. } => "SliceBackward0",
        }
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(scatter_into_zeros(grad0(grads)?, &self.in_shape, self.pick)?)])
    }
}

/// The backward of the scatter: pick the same positions again
pub struct PickScatterBackward {
    pick: Pick,
}
impl Backward for PickScatterBackward {
    fn name(&self) -> &'static str {
        match self.pick {
            Pick::Select { .. } => "SelectBackwardBackward0",
            Pick::Slice { .. } => "SliceBackwardBackward0",
        }
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(apply(grad0(grads)?, self.pick)?)])
    }
}
