//! `F.pad` with a constant: `constant_pad_nd`. Negative pads crop. Its backward is the same op
//! with the pads negated (the gradient cropped back, or padded with zeros where the forward
//! cropped).

use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads, JvpCtx};
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::Shape;
use crate::tensor::Tensor;
use smallvec::smallvec;

/// `x` padded by `pads` (pairs `(before, after)` from the last dim backwards, as `F.pad`
/// takes them) with `value`.
pub fn constant_pad(x: &Tensor, pads: &[i64], value: f64) -> Result<Tensor> {
    let xs = x.shape();
    if pads.len() % 2 != 0 {
        return Err(Error::runtime(
            "Length of pad must be even but instead it equals ".to_string() + &pads.len().to_string(),
        ));
    }
    if pads.len() / 2 > xs.len() {
        return Err(Error::runtime(format!(
            "Length of pad should be no more than twice the number of dimensions of the input. Pad length is {} while the input has {} dimensions.",
            pads.len(),
            xs.len()
        )));
    }
    let nd = xs.len();
    let mut before = vec![0i64; nd];
    let mut after = vec![0i64; nd];
    for (i, pair) in pads.chunks(2).enumerate() {
        before[nd - 1 - i] = pair[0];
        after[nd - 1 - i] = pair[1];
    }
    let mut shape: Shape = Shape::new();
    for d in 0..nd {
        let n = xs[d] as i64 + before[d] + after[d];
        if n < 0 {
            return Err(Error::runtime(format!(
                "The input size {}, plus negative padding {} and {} resulted in a negative output size, which is invalid. Check dimension {d} of your input.",
                xs[d], before[d], after[d]
            )));
        }
        shape.push(n as usize);
    }
    crate::dtype::check_fits(value, x.dtype())?;
    let out = kernels::full(&shape, value, x.dtype());
    if shape.iter().all(|&n| n > 0) {
        // the overlap of x and the output, as views of each
        let xd = x.data();
        let (mut src_off, mut dst_off) = (xd.offset, 0usize);
        let mut region: Shape = Shape::new();
        let mut ok = true;
        for d in 0..nd {
            let skip_src = (-before[d]).max(0) as usize;
            let skip_dst = before[d].max(0) as usize;
            let len = (xs[d] as i64 - skip_src as i64 - (-after[d]).max(0)).max(0) as usize;
            ok &= len > 0;
            region.push(len);
            src_off += skip_src * xd.strides[d];
            dst_off += skip_dst * out.strides[d];
        }
        if ok {
            let src = xd.restrided(region.clone(), xd.strides.clone(), src_off);
            let dst = out.restrided(region, out.strides.clone(), dst_off);
            dst.write_from(&kernels::contiguous_copy(&src));
        }
    }
    let pads = pads.to_vec();
    record(Tensor::from_data(out), &[x], |_| ConstantPadBackward { pads })
}

/// d pad(x, p)/dx = pad(g, -p): the gradient cropped to x
pub struct ConstantPadBackward {
    pads: Vec<i64>,
}
impl Backward for ConstantPadBackward {
    fn name(&self) -> &'static str {
        "ConstantPadNdBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let negated: Vec<i64> = self.pads.iter().map(|p| -p).collect();
        Ok(smallvec![Some(constant_pad(grad0(grads)?, &negated, 0.0)?)])
    }
    // t = pad(tx) with zeros (linear)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        Some(ctx.tangent0().and_then(|t| constant_pad(t, &self.pads, 0.0)))
    }
}
