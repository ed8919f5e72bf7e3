//! var, std, prod, cumsum, and argmax/argmin (no gradient).

use super::arith::{div, mul, sub};
use super::reduce::{mean, sum_dims};
use super::unary::sqrt;
use super::view::{expand_to, unsqueeze};
use crate::autograd::{grad0, record, untracked, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::kernels::{self, Reduce};
use crate::shape::{self, Shape};
use crate::tensor::{Tensor, TensorData};
use crate::with_dtype;
use smallvec::{smallvec, SmallVec};

type Dims = SmallVec<[usize; 4]>;

fn reduce_dims(x: &Tensor, dims: Option<&[i64]>) -> Result<Dims> {
    let nd = x.ndim();
    match dims {
        Some(d) if !d.is_empty() && nd > 0 => shape::wrap_dims(d, nd),
        Some(d) if !d.is_empty() => {
            for &i in d {
                shape::wrap_dim(i, 1)?;
            }
            Ok(Dims::new())
        }
        _ => Ok((0..nd).collect()),
    }
}

/// Puts reduced dims back (size 1) into a gradient, then broadcasts it to `shape`.
fn expand_back(g: &Tensor, shape: &[usize], dims: &[usize], keepdim: bool) -> Result<Tensor> {
    expand_to(&unsqueeze_back(g, shape, dims, keepdim)?, shape)
}

/// A reduction's gradient with the reduced dims put back as size 1 (not expanded).
fn unsqueeze_back(g: &Tensor, shape: &[usize], dims: &[usize], keepdim: bool) -> Result<Tensor> {
    let mut g = g.clone();
    if !keepdim && !shape.is_empty() {
        let mut sorted: Dims = dims.into();
        sorted.sort_unstable();
        for &d in &sorted {
            g = unsqueeze(&g, d as i64)?;
        }
    }
    Ok(g)
}

/// `var(x, dims, correction, keepdim)` (`std` when `root`): `sum((x - mean)²) / (N - correction)`.
pub fn var(x: &Tensor, dims: Option<&[i64]>, correction: f64, keepdim: bool, root: bool) -> Result<Tensor> {
    if !x.dtype().is_float() {
        return Err(Error::NotImplemented("std and var only support floating point and complex dtypes".into()));
    }
    let dims_n = reduce_dims(x, dims)?;
    let shp = x.shape();
    let n: usize = dims_n.iter().map(|&d| shp[d]).product();
    let divisor = (n as f64 - correction).max(0.0);
    let out = untracked(|| {
        crate::autograd::values_in_f32_if_half([x], |[x]| {
            let idims: Vec<i64> = dims_n.iter().map(|&d| d as i64).collect();
            let centred = sub(x, &mean(x, Some(&idims), true, None)?)?;
            let v =
                div(&sum_dims(&mul(&centred, &centred)?, &dims_n, keepdim, None)?, &Tensor::wrapped_scalar(divisor))?;
            if root {
                sqrt(&v)
            } else {
                Ok(v)
            }
        })
    })?;
    record(out, &[x], |o| VarBackward {
        x: SavedTensor::input(x),
        result: if root { SavedTensor::output(o, 0) } else { SavedTensor::none() },
        dims: dims_n.clone(),
        // Over given dims of a tensor with dims PyTorch's gradient divides by the degrees of
        // freedom even when they are negative (a size-1 dim with correction 2 gives -0, not NaN).
        divisor: if dims.is_some() && !shp.is_empty() { n as f64 - correction } else { divisor },
        keepdim,
        root,
    })
}

/// d var(x)/dx = 2 (x - mean) / (N - correction); d std = d var / (2 std), 0 where std = 0
pub struct VarBackward {
    x: SavedTensor,
    result: SavedTensor,
    dims: Dims,
    divisor: f64,
    keepdim: bool,
    root: bool,
}
impl Backward for VarBackward {
    fn name(&self) -> &'static str {
        if self.root {
            "StdBackward0"
        } else {
            "VarBackward0"
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let x = self.x.unpack(ctx)?;
        let mut g = grad0(grads)?.clone();
        if self.root {
            let std = self.result.unpack(ctx)?;
            let halved = div(&g, &mul(&std, &Tensor::wrapped_scalar(2.0))?)?;
            let zero = crate::ops::compare::compare(&std, &Tensor::wrapped_scalar(0.0), kernels::Compare::Eq)?;
            g = crate::ops::compare::where_(&zero, &Tensor::wrapped_scalar(0.0), &halved)?;
        }
        let idims: Vec<i64> = self.dims.iter().map(|&d| d as i64).collect();
        let centred = sub(&x, &mean(&x, Some(&idims), true, None)?)?;
        let scale = Tensor::wrapped_scalar(2.0 / self.divisor);
        let gx = mul(&mul(&expand_back(&g, &x.shape(), &self.dims, self.keepdim)?, &centred)?, &scale)?;
        Ok(smallvec![Some(gx)])
    }
    // var: t = 2/(n - correction) sum((x - mean(x)) tx); std: t_var / (2 std) (0 where std == 0)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let formula = || {
            let (x, t) = (ctx.inputs[0], ctx.tangent0()?);
            let idims: Vec<i64> = self.dims.iter().map(|&d| d as i64).collect();
            let centred = sub(x, &mean(x, Some(&idims), true, None)?)?;
            let summed = crate::ops::reduce::sum_dims(&mul(&centred, t)?, &self.dims, self.keepdim, None)?;
            let t_var = mul(&summed, &Tensor::wrapped_scalar(2.0 / self.divisor))?;
            if !self.root {
                return Ok(t_var);
            }
            let std = ctx.out;
            let halved = div(&t_var, &mul(std, &Tensor::wrapped_scalar(2.0))?)?;
            let zero = crate::ops::compare::compare(std, &Tensor::wrapped_scalar(0.0), kernels::Compare::Eq)?;
            crate::ops::compare::where_(&zero, &Tensor::wrapped_scalar(0.0), &halved)
        };
        Some(formula())
    }
    crate::saved_tensors!(x => "self", result);
}

/// `prod(x)` (all elements, `dim == None`) or `prod(x, dim, keepdim)`.
pub fn prod(x: &Tensor, dim: Option<i64>, keepdim: bool, dtype: Option<DType>) -> Result<Tensor> {
    let d = x.data();
    let dtype = dtype.unwrap_or(if d.dtype().is_float() { d.dtype() } else { DType::I64 });
    let dims: Dims = match dim {
        Some(i) if d.shape.is_empty() => {
            shape::wrap_dim(i, 1)?;
            Dims::new()
        }
        Some(i) => smallvec![shape::wrap_dim(i, d.shape.len())?],
        None => (0..d.shape.len()).collect(),
    };
    let keepdim = keepdim && dim.is_some();
    let out = Tensor::from_data(kernels::reduce(&d, &dims, keepdim, Reduce::Prod, dtype));
    record(out, &[x], |o| ProdBackward {
        x: SavedTensor::input(x),
        result: SavedTensor::output(o, 0),
        dims: dims.clone(),
        keepdim,
        all: dim.is_none(),
    })
}

/// d prod(x)/dx_i = prod_{j != i} x_j (= prod / x_i when no x_j is 0)
pub struct ProdBackward {
    x: SavedTensor,
    result: SavedTensor,
    dims: Dims,
    keepdim: bool,
    all: bool,
}
impl Backward for ProdBackward {
    fn name(&self) -> &'static str {
        if self.all {
            "ProdBackward0"
        } else {
            "ProdBackward1"
        }
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let (x, r) = (self.x.unpack(ctx)?, self.result.unpack(ctx)?);
        let shp = x.shape();
        if shp.is_empty() {
            // The product of one element is the element: the gradient passes through as is
            // (PyTorch's 0-d case, so under create_graph it has no node of its own).
            return Ok(smallvec![Some(grad0(grads)?.clone())]);
        }
        let g = expand_back(grad0(grads)?, &shp, &self.dims, self.keepdim)?;
        // A group of one element has no other factor: with a zero in the input, PyTorch's
        // zero-safe path passes the (reshaped) gradient through without multiplying.
        let group: usize = self.dims.iter().map(|&d| shp[d]).product();
        let zeros = x.data().to_vec::<f64>().iter().filter(|&&v| v == 0.0).count();
        let has_zero = zeros > 0;
        if zeros > 1 && self.all && !crate::grad_mode::is_grad_enabled() {
            // Every product of others has a factor 0: without create_graph PyTorch returns
            // zeros outright (NaN elsewhere does not leak in); with it, the general path below.
            return Ok(smallvec![Some(crate::creation::zeros(&shp, g.dtype()))]);
        }
        if has_zero && self.all {
            // PyTorch computes the whole product's zero-safe gradient on the flattened input,
            // then views it back (`ViewBackward0` on top, as a double backward records).
            let n = shape::numel(&shp);
            let flat_g = super::view::reshape_to(&g, &[n])?;
            let flat_grad = if n == 1 {
                flat_g
            } else {
                let flat = super::view::reshape_to(&x, &[n])?;
                mul(&flat_g, &products_of_others_differentiable(&flat, &[0])?)?
            };
            let request: SmallVec<[i64; 4]> = shp.iter().map(|&s| s as i64).collect();
            return Ok(smallvec![Some(super::view::view(&flat_grad, &request)?)]);
        }
        if has_zero && group == 1 {
            // Already the input's shape once the dim is back: no expand either.
            return Ok(smallvec![Some(unsqueeze_back(grad0(grads)?, &shp, &self.dims, self.keepdim)?)]);
        }
        let others = if has_zero {
            products_of_others_differentiable(&x, &self.dims)?
        } else {
            div(&expand_back(&r, &shp, &self.dims, self.keepdim)?, &x)?
        };
        Ok(smallvec![Some(mul(&g, &others)?)])
    }
    crate::saved_tensors!(x => "self", result);
}

/// Groups up to this size get a differentiable product-of-others (it costs n² per group).
const DIFFERENTIABLE_OTHERS_MAX: usize = 2048;

/// For each element, the product of the other elements of its reduction group, written in
/// differentiable ops (each element sees its group with itself replaced by 1) so that double
/// backward works through zeros; large groups fall back to a prefix/suffix kernel.
fn products_of_others_differentiable(x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let shp = x.shape();
    let n: usize = dims.iter().map(|&d| shp[d]).product();
    if dims.len() != 1 && dims.len() != shp.len() || n > DIFFERENTIABLE_OTHERS_MAX {
        return Ok(Tensor::from_data(products_of_others(&x.data(), dims)));
    }
    let (flat, d) = if dims.len() == 1 { (x.clone(), dims[0]) } else { (super::view::reshape_to(x, &[n])?, 0) };
    let fs = flat.shape();
    // [.., n(i), n(j), ..] with entry (i, j) = x_j, and 1 on the diagonal.
    let mut wide: Shape = fs.clone();
    wide.insert(d, fs[d]);
    let spread = expand_to(&unsqueeze(&flat, d as i64)?, &wide)?;
    let mut eye_shape: Shape = smallvec![1; wide.len()];
    eye_shape[d] = fs[d];
    eye_shape[d + 1] = fs[d];
    let eye = crate::creation::eye(fs[d], fs[d], DType::Bool)?;
    let eye = super::view::reshape_to(&eye, &eye_shape)?;
    let replaced = crate::ops::compare::where_(&eye, &Tensor::wrapped_scalar(1.0), &spread)?;
    let others = prod(&replaced, Some(d as i64 + 1), false, None)?;
    super::view::reshape_to(&others, &shp)
}

/// For each element, the product of the other elements of its reduction group.
fn products_of_others(x: &TensorData, dims: &[usize]) -> TensorData {
    let nd = x.shape.len();
    // Reduced dims last, so each group is a contiguous run.
    let kept: Dims = (0..nd).filter(|d| !dims.contains(d)).collect();
    let mut order = kept.clone();
    order.extend(dims.iter().copied());
    let shape: Shape = order.iter().map(|&d| x.shape[d]).collect();
    let strides = order.iter().map(|&d| x.strides[d]).collect();
    let v = x.restrided(shape.clone(), strides, x.offset).to_vec::<f64>();
    let r: usize = dims.iter().map(|&d| x.shape[d]).product::<usize>().max(1);
    let mut out = vec![0.0; v.len()];
    for (group, res) in v.chunks(r).zip(out.chunks_mut(r)) {
        let mut prefix = 1.0;
        for (i, &a) in group.iter().enumerate() {
            res[i] = prefix;
            prefix *= a;
        }
        let mut suffix = 1.0;
        for (i, &a) in group.iter().enumerate().rev() {
            res[i] *= suffix;
            suffix *= a;
        }
    }
    // Back to the original dim order.
    let reordered = TensorData::from_vec(out, shape);
    let mut inverse = vec![0usize; nd];
    for (pos, &d) in order.iter().enumerate() {
        inverse[d] = pos;
    }
    let back_shape: Shape = (0..nd).map(|d| reordered.shape[inverse[d]]).collect();
    let back_strides = (0..nd).map(|d| reordered.strides[inverse[d]]).collect();
    kernels::cast(&reordered.restrided(back_shape, back_strides, 0), x.dtype())
}

/// `cumsum(x, dim)` (`reverse`: sums from the end, which is cumsum's backward).
pub fn cumsum(x: &Tensor, dim: i64, dtype: Option<DType>, reverse: bool) -> Result<Tensor> {
    let d = x.data();
    let dim =
        if d.shape.is_empty() { shape::wrap_dim(dim, 1).map(|_| 0)? } else { shape::wrap_dim(dim, d.shape.len())? };
    let dtype = dtype.unwrap_or(if d.dtype().is_float() { d.dtype() } else { DType::I64 });
    let out = Tensor::from_data(cumsum_values(&d, dim, dtype, reverse));
    record(out, &[x], |_| CumsumBackward { dim, reverse })
}

fn cumsum_values(x: &TensorData, dim: usize, dtype: DType, reverse: bool) -> TensorData {
    if matches!(dtype, DType::F16 | DType::BF16) {
        // PyTorch accumulates float16/bfloat16 in float32 and rounds each output once.
        return kernels::cast(&cumsum_values(&kernels::cast(x, DType::F32), dim, DType::F32, reverse), dtype);
    }
    with_dtype!(dtype, T => {
        let mut v: Vec<T> = x.to_vec::<T>();
        if !x.shape.is_empty() && !v.is_empty() {
            let n = x.shape[dim];
            let inner: usize = x.shape[dim + 1..].iter().product();
            let outer = v.len() / (n * inner).max(1);
            for o in 0..outer {
                for i in 0..inner {
                    let at = |k: usize| o * n * inner + k * inner + i;
                    let order: Box<dyn Iterator<Item = usize>> = if reverse { Box::new((0..n).rev()) } else { Box::new(0..n) };
                    let mut acc = T::zero();
                    for k in order {
                        acc = <T as kernels::Arith>::apply(kernels::Binary::Add, acc, v[at(k)]);
                        v[at(k)] = acc;
                    }
                }
            }
        }
        TensorData::from_vec(v, x.shape.clone())
    })
}

/// d cumsum(x)_j/dx_i = [i <= j]: the gradient is summed from the end
pub struct CumsumBackward {
    dim: usize,
    reverse: bool,
}
impl Backward for CumsumBackward {
    fn name(&self) -> &'static str {
        "CumsumBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(cumsum(grad0(grads)?, self.dim as i64, None, !self.reverse)?)])
    }
    // t = cumsum(tx) (cumsum is linear)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().and_then(|t| cumsum(t, self.dim as i64, None, self.reverse)))
    }
}

/// `argmax`/`argmin` over one dim, or over the flattened tensor (`dim == None`).
pub fn argextreme(x: &Tensor, dim: Option<i64>, keepdim: bool, max: bool) -> Result<Tensor> {
    let d = x.data();
    let name = if max { "argmax" } else { "argmin" };
    if d.dtype() == crate::dtype::DType::Bool {
        return Err(Error::NotImplemented(format!("{name}(): does not support bool input")));
    }
    if d.numel() == 0 && (dim.is_none() || d.shape.is_empty()) {
        return Err(Error::Index(format!("{name}(): Expected reduction dim to be specified for input.numel() == 0.")));
    }
    match dim {
        None => {
            let flat = kernels::contiguous_copy(&d);
            let flat = flat.restrided(smallvec![d.numel()], smallvec![1], 0);
            let (_, idx) = kernels::extreme_dim(&flat, 0, false, max)?;
            let idx = Tensor::from_data(idx);
            if keepdim {
                let ones: Vec<i64> = vec![1; d.shape.len()];
                super::view::reshape(&idx, &ones)
            } else {
                Ok(idx)
            }
        }
        Some(i) => {
            let w =
                if d.shape.is_empty() { shape::wrap_dim(i, 1).map(|_| 0)? } else { shape::wrap_dim(i, d.shape.len())? };
            if !d.shape.is_empty() && d.shape[w] == 0 {
                return Err(Error::Index(format!("{name}(): Expected reduction dim {w} to have non-zero size.")));
            }
            Ok(Tensor::from_data(kernels::extreme_dim(&d, w, keepdim, max)?.1))
        }
    }
}
