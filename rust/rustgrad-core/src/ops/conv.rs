//! Convolutions as im2col + gemm: the sliding-window pair `im2col`/`col2im` (`F.unfold`,
//! `F.fold`) and `convolution` (conv1d/2d/3d and the transposed ones). Each backward is
//! written with these same differentiable ops: the input gradient of a convolution is a
//! transposed convolution of the gradient, and the weight gradient is a product of the
//! gradient with the input's columns.

use super::linalg::bmm;
use super::reduce::sum_dims;
use super::view::{contiguous, permute, reshape_to};
use crate::autograd::{grad0, record, Backward, BackwardCtx, Grads, JvpCtx, SavedTensor};
use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::Shape;
use crate::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use smallvec::{smallvec, SmallVec};

/// Sizes per spatial dim, right-aligned in three slots (a 2-d window leaves slot 0 at size 1).
pub type Dims = [usize; 3];

/// A sliding window over the last `dims` dims of a tensor: the image size `input`, the window
/// geometry, and the number of window positions `output` per dim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// How many spatial dims (1, 2 or 3).
    pub dims: usize,
    /// The image size per dim.
    pub input: Dims,
    /// The window size per dim.
    pub kernel: Dims,
    /// The step between window positions.
    pub stride: Dims,
    /// Implicit zeros on both sides.
    pub padding: Dims,
    /// The spacing of the window's taps.
    pub dilation: Dims,
    /// The number of window positions per dim.
    pub output: Dims,
}

/// Right-aligns `v` into three slots, filling the leading ones with `fill`.
fn slots(v: &[usize], fill: usize) -> Dims {
    let mut out = [fill; 3];
    out[3 - v.len()..].copy_from_slice(v);
    out
}

impl Window {
    /// The window over `input` with the given geometry; `output` positions per dim (callers
    /// check that each is at least one).
    pub fn new(
        input: &[usize],
        kernel: &[usize],
        stride: &[usize],
        padding: &[usize],
        dilation: &[usize],
        output: &[usize],
    ) -> Window {
        Window {
            dims: input.len(),
            input: slots(input, 1),
            kernel: slots(kernel, 1),
            stride: slots(stride, 1),
            padding: slots(padding, 0),
            dilation: slots(dilation, 1),
            output: slots(output, 1),
        }
    }

    /// The number of window positions along one dim: `(in + 2p - d(k-1) - 1) / s + 1`, or a
    /// negative number when the dilated window is larger than the padded image.
    pub fn positions(input: usize, kernel: usize, stride: usize, padding: usize, dilation: usize) -> i64 {
        let span = (dilation * (kernel.max(1) - 1) + 1) as i64;
        let room = input as i64 + 2 * padding as i64 - span;
        if room < 0 {
            room
        } else {
            room / stride as i64 + 1
        }
    }

    fn kernel_len(&self) -> usize {
        self.kernel.iter().product()
    }
    fn positions_len(&self) -> usize {
        self.output.iter().product()
    }
    fn plane_len(&self) -> usize {
        self.input.iter().product()
    }
    fn spatial(&self, of: &Dims) -> SmallVec<[usize; 3]> {
        of[3 - self.dims..].iter().copied().collect()
    }
    /// A 1x1 window that visits every element once, in order (its columns are the image).
    fn is_identity(&self) -> bool {
        self.kernel == [1; 3] && self.stride == [1; 3] && self.padding == [0; 3] && self.output == self.input
    }
}

/// The positions `o` along one dim whose tap `x = o*s + t - p` lands inside `0..n`.
#[inline]
fn valid_range(n: usize, out: usize, s: usize, tap: usize, p: usize) -> (usize, usize) {
    // o*s + tap >= p  and  o*s + tap < n + p
    let lo = if p > tap { (p - tap).div_ceil(s) } else { 0 };
    let hi = if n + p > tap { (n + p - tap).div_ceil(s) } else { 0 };
    (lo.min(out), hi.min(out).max(lo.min(out)))
}

/// Calls `run(from, to, start, step)` for every run of one window tap along the last dim: the
/// run covers column entries `from..to` (row-major over taps, then positions) and reads the
/// image at `start + i*step`. Entries outside every run fall into the padding.
#[inline]
fn for_each_run(w: &Window, mut run: impl FnMut(usize, usize, usize, usize)) {
    let [_, i1, i2] = w.input;
    let [o0, o1, o2] = w.output;
    let (l, mut row) = (o0 * o1 * o2, 0);
    for k0 in 0..w.kernel[0] {
        let (a_lo, a_hi) = valid_range(w.input[0], o0, w.stride[0], k0 * w.dilation[0], w.padding[0]);
        for k1 in 0..w.kernel[1] {
            let (b_lo, b_hi) = valid_range(i1, o1, w.stride[1], k1 * w.dilation[1], w.padding[1]);
            for k2 in 0..w.kernel[2] {
                let tap2 = k2 * w.dilation[2];
                let (c_lo, c_hi) = valid_range(i2, o2, w.stride[2], tap2, w.padding[2]);
                for a in a_lo..a_hi {
                    let x0 = a * w.stride[0] + k0 * w.dilation[0] - w.padding[0];
                    for b in b_lo..b_hi {
                        let x1 = b * w.stride[1] + k1 * w.dilation[1] - w.padding[1];
                        if c_lo < c_hi {
                            let col = row * l + (a * o1 + b) * o2;
                            let x2 = c_lo * w.stride[2] + tap2 - w.padding[2];
                            run(col + c_lo, col + c_hi, (x0 * i1 + x1) * i2 + x2, w.stride[2]);
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

/// The columns of one channel plane: row `t` (a window tap) holds the image value under tap
/// `t` at every window position, zero where the tap falls into the padding.
fn im2col_plane<T: Copy>(src: &[T], dst: &mut [T], w: &Window, zero: T) {
    dst.fill(zero);
    for_each_run(w, |from, to, start, step| {
        if step == 1 {
            dst[from..to].copy_from_slice(&src[start..start + (to - from)]);
        } else {
            for (i, d) in dst[from..to].iter_mut().enumerate() {
                *d = src[start + i * step];
            }
        }
    });
}

/// The adjoint of [`im2col_plane`]: adds every column entry back onto the image value it was
/// read from (`dst` starts zeroed).
fn col2im_plane<T: Float>(src: &[T], dst: &mut [T], w: &Window) {
    for_each_run(w, |from, to, start, step| {
        for (i, &v) in src[from..to].iter().enumerate() {
            let d = &mut dst[start + i * step];
            *d = *d + v;
        }
    });
}

pub(crate) use crate::kernels::Gemm;

/// Runs `f` on the values of `inputs` in the compute type of `dtype` (float32 for 16-bit
/// floats, float64 for integers), and returns its values in `dtype` with `shape`.
pub(crate) fn compute<const N: usize>(
    dtype: DType,
    inputs: [&TensorData; N],
    shape: Shape,
    f: impl ComputeFn<N>,
) -> TensorData {
    match dtype {
        // float32/float64 inputs are read in place when contiguous (no copy)
        DType::F64 => {
            let values = inputs.map(|x| kernels::values::<f64>(x));
            TensorData::from_vec(f.run::<f64>(values.each_ref().map(|v| &**v)), shape)
        }
        DType::F32 => {
            let values = inputs.map(|x| kernels::values::<f32>(x));
            TensorData::from_vec(f.run::<f32>(values.each_ref().map(|v| &**v)), shape)
        }
        DType::F16 | DType::BF16 => {
            let values = inputs.map(|x| kernels::cast(x, DType::F32).to_vec::<f32>());
            let out = TensorData::from_vec(f.run::<f32>(values.each_ref().map(|v| v.as_slice())), shape);
            kernels::cast(&out, dtype)
        }
        _ => {
            let values = inputs.map(|x| kernels::cast(x, DType::F64).to_vec::<f64>());
            let out = TensorData::from_vec(f.run::<f64>(values.each_ref().map(|v| v.as_slice())), shape);
            kernels::cast(&out, dtype)
        }
    }
}

/// A computation over the values of `N` inputs, for either gemm type.
pub(crate) trait ComputeFn<const N: usize> {
    /// The result's values from the inputs' values.
    fn run<T: Gemm>(&self, inputs: [&[T]; N]) -> Vec<T>;
}

struct Im2col<'a>(&'a Window, usize);
impl ComputeFn<1> for Im2col<'_> {
    fn run<T: Gemm>(&self, [x]: [&[T]; 1]) -> Vec<T> {
        let (w, planes) = (self.0, self.1);
        let (plane, rows) = (w.plane_len(), w.kernel_len() * w.positions_len());
        let mut out = crate::alloc::vec_zeroed::<T>(planes * rows);
        if plane > 0 && rows > 0 {
            out.par_chunks_mut(rows)
                .zip(x.par_chunks(plane))
                .for_each(|(dst, src)| im2col_plane(src, dst, w, T::from_f64(0.0)));
        }
        out
    }
}

struct Col2im<'a>(&'a Window, usize);
impl ComputeFn<1> for Col2im<'_> {
    fn run<T: Gemm>(&self, [x]: [&[T]; 1]) -> Vec<T> {
        let (w, planes) = (self.0, self.1);
        let (plane, rows) = (w.plane_len(), w.kernel_len() * w.positions_len());
        let mut out = crate::alloc::vec_zeroed::<T>(planes * plane);
        if plane > 0 && rows > 0 {
            out.par_chunks_mut(plane).zip(x.par_chunks(rows)).for_each(|(dst, src)| col2im_plane(src, dst, w));
        }
        out
    }
}

/// `F.unfold`: for `x` of shape `[N, C, *spatial]`, the `[N, C * prod(kernel), positions]`
/// columns of every window position (`w.input` must be `x`'s spatial size).
pub fn im2col(x: &Tensor, w: &Window) -> Result<Tensor> {
    let s = x.shape();
    let (n, c) = (s[0], s[1]);
    let shape: Shape = smallvec![n, c * w.kernel_len(), w.positions_len()];
    let out = Tensor::from_data(compute(x.dtype(), [&x.data()], shape, Im2col(w, n * c)));
    record(out, &[x], |_| Im2colBackward { window: w.clone(), channels: c })
}

/// `F.fold`: the adjoint of [`im2col`]; columns `[N, C * prod(kernel), positions]` summed back
/// into `[N, C, *w.input]`.
pub fn col2im(cols: &Tensor, w: &Window) -> Result<Tensor> {
    let s = cols.shape();
    let (n, c) = (s[0], s[1] / w.kernel_len().max(1));
    let mut shape: Shape = smallvec![n, c];
    shape.extend(w.spatial(&w.input));
    let out = Tensor::from_data(compute(cols.dtype(), [&cols.data()], shape, Col2im(w, n * c)));
    record(out, &[cols], |_| Col2imBackward { window: w.clone() })
}

/// d unfold(x)/dx: fold the gradient columns back (`col2im`)
pub struct Im2colBackward {
    window: Window,
    channels: usize,
}
impl Backward for Im2colBackward {
    fn name(&self) -> &'static str {
        "Im2ColBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        debug_assert_eq!(g.shape()[1], self.channels * self.window.kernel_len());
        Ok(smallvec![Some(col2im(g, &self.window)?)])
    }
}

/// d fold(c)/dc: unfold the gradient (`im2col`)
pub struct Col2imBackward {
    window: Window,
}
impl Backward for Col2imBackward {
    fn name(&self) -> &'static str {
        "Col2ImBackward0"
    }
    fn apply(&self, _ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        Ok(smallvec![Some(im2col(grad0(grads)?, &self.window)?)])
    }
}

/// The arguments of a convolution besides its tensors, one entry per spatial dim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvParams {
    /// The step between window positions.
    pub stride: Vec<usize>,
    /// Implicit zeros on both sides of each spatial dim.
    pub padding: Vec<usize>,
    /// The spacing of the kernel's taps.
    pub dilation: Vec<usize>,
    /// Whether this is a transposed convolution (the adjoint of a convolution in its input).
    pub transposed: bool,
    /// Extra size added on one side of a transposed convolution's output.
    pub output_padding: Vec<usize>,
    /// Channel groups convolved separately.
    pub groups: usize,
}

fn sizes(v: &[usize]) -> String {
    let parts: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

fn by_x(v: &[i64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("({})", parts.join(" x "))
}

/// PyTorch's checks of a convolution's arguments, in its order; returns the output's spatial size.
fn check_convolution(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, p: &ConvParams) -> Result<Vec<usize>> {
    let (xs, ws) = (x.shape(), weight.shape());
    let k = ws.len();
    if k < 3 {
        return Err(Error::runtime("weight should have at least three dimensions"));
    }
    let dims = k - 2;
    for (name, v) in [
        ("stride", &p.stride),
        ("padding", &p.padding),
        ("dilation", &p.dilation),
        ("output_padding", &p.output_padding),
    ] {
        if v.len() != dims {
            return Err(Error::runtime(format!(
                "expected {name} to be a single integer value or a list of {dims} values to match the convolution dimensions, but got {name}={}",
                sizes(v)
            )));
        }
    }
    if p.stride.contains(&0) {
        return Err(Error::runtime("non-positive stride is not supported"));
    }
    if p.dilation.contains(&0) {
        return Err(Error::runtime("dilation should be greater than zero"));
    }
    if p.groups == 0 {
        return Err(Error::runtime("non-positive groups is not supported"));
    }
    if xs.len() != k {
        return Err(Error::runtime(format!(
            "Expected {k}-dimensional input for {k}-dimensional weight {}, but got {}-dimensional input of size {} instead",
            sizes(&ws),
            xs.len(),
            sizes(&xs)
        )));
    }
    if ws[0] % p.groups != 0 {
        return Err(Error::runtime(format!(
            "Given groups={}, expected weight to be divisible by {} at dimension 0, but got weight of size {} instead",
            p.groups,
            p.groups,
            sizes(&ws)
        )));
    }
    let channels = if p.transposed { ws[0] } else { ws[1] * p.groups };
    if xs[1] != channels {
        let transposed = if p.transposed { "transposed=1, " } else { "" };
        let groups = if p.transposed { String::new() } else { format!("groups={}, ", p.groups) };
        return Err(Error::runtime(format!(
            "Given {groups}{transposed}weight of size {}, expected input{} to have {channels} channels, but got {} channels instead",
            sizes(&ws),
            sizes(&xs),
            xs[1]
        )));
    }
    let out_channels = if p.transposed { ws[1] * p.groups } else { ws[0] };
    if let Some(b) = bias {
        let bs = b.shape();
        if bs.len() != 1 || bs[0] != out_channels {
            let transposed = if p.transposed { "transposed=1, " } else { "" };
            return Err(Error::runtime(format!(
                "Given {transposed}weight of size {}, expected bias to be 1-dimensional with {out_channels} elements, but got bias of size {} instead",
                sizes(&ws),
                sizes(&bs)
            )));
        }
    }
    let spatial = &xs[2..];
    let kernel = &ws[2..];
    if !p.transposed {
        let padded: Vec<i64> = spatial.iter().zip(&p.padding).map(|(&s, &q)| (s + 2 * q) as i64).collect();
        let dilated: Vec<i64> =
            kernel.iter().zip(&p.dilation).map(|(&k, &d)| (d * (k.max(1) - 1) + 1) as i64).collect();
        if padded.iter().zip(&dilated).any(|(a, b)| a < b) {
            return Err(Error::runtime(format!(
                "Calculated padded input size per channel: {}. Kernel size: {}. Kernel size can't be greater than actual input size",
                by_x(&padded),
                by_x(&dilated)
            )));
        }
        Ok((0..dims)
            .map(|i| Window::positions(spatial[i], kernel[i], p.stride[i], p.padding[i], p.dilation[i]) as usize)
            .collect())
    } else {
        if p.output_padding.iter().enumerate().any(|(i, &o)| o >= p.stride[i] && o >= p.dilation[i]) {
            let names: &[&str] = match dims {
                1 => &["width"],
                2 => &["height", "width"],
                _ => &["depth", "height", "width"],
            };
            let mut parts = Vec::new();
            for (key, v) in [("output_padding", &p.output_padding), ("stride", &p.stride), ("dilation", &p.dilation)] {
                for (n, x) in names.iter().zip(v.iter()) {
                    parts.push(format!("{key}_{n}: {x}"));
                }
            }
            return Err(Error::runtime(format!(
                "output padding must be smaller than either stride or dilation, but got {}",
                parts.join(" ")
            )));
        }
        let out: Vec<i64> = (0..dims)
            .map(|i| {
                (spatial[i] as i64 - 1) * p.stride[i] as i64 - 2 * p.padding[i] as i64
                    + (p.dilation[i] * (kernel[i].max(1) - 1)) as i64
                    + p.output_padding[i] as i64
                    + 1
            })
            .collect();
        if out.iter().any(|&o| o <= 0) {
            let ins: Vec<i64> = spatial.iter().map(|&s| s as i64).collect();
            return Err(Error::runtime(format!(
                "Given input size per channel: {}. Calculated output size per channel: {}. Output size is too small",
                by_x(&ins),
                by_x(&out)
            )));
        }
        Ok(out.iter().map(|&o| o as usize).collect())
    }
}

struct ConvForward<'a> {
    window: &'a Window,
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    groups: usize,
    bias: bool,
}
impl ComputeFn<3> for ConvForward<'_> {
    /// Per sample: the columns of the input, then one gemm per group, then the bias.
    fn run<T: Gemm>(&self, [x, weight, bias]: [&[T]; 3]) -> Vec<T> {
        let w = self.window;
        let (kl, l, plane) = (w.kernel_len(), w.positions_len(), w.plane_len());
        let (cin, cout, g) = (self.in_channels, self.out_channels, self.groups);
        let (cin_g, cout_g) = (cin / g, cout / g);
        let mut out = crate::alloc::vec_zeroed::<T>(self.batch * cout * l);
        if out.is_empty() {
            return out;
        }
        let identity = w.is_identity();
        out.par_chunks_mut(cout * l).enumerate().for_each(|(s, dst)| {
            let image = &x[s * cin * plane..(s + 1) * cin * plane];
            let buffer: Vec<T> = if identity {
                Vec::new()
            } else {
                let mut b = vec![T::from_f64(0.0); cin * kl * l];
                if plane > 0 {
                    for (c, col) in b.chunks_mut(kl * l).enumerate() {
                        im2col_plane(&image[c * plane..(c + 1) * plane], col, w, T::from_f64(0.0));
                    }
                }
                b
            };
            let cols: &[T] = if identity { image } else { &buffer };
            for gi in 0..g {
                let rows = cin_g * kl;
                // SAFETY: the weight block is cout_g x rows, the columns rows x l, the output
                // block cout_g x l, all inside their buffers.
                unsafe {
                    T::gemm(
                        cout_g,
                        rows,
                        l,
                        weight.as_ptr().add(gi * cout_g * rows),
                        rows as isize,
                        1,
                        cols.as_ptr().add(gi * rows * l),
                        l as isize,
                        1,
                        dst.as_mut_ptr().add(gi * cout_g * l),
                        l as isize,
                    );
                }
            }
            if self.bias {
                for (co, row) in dst.chunks_mut(l).enumerate() {
                    row.iter_mut().for_each(|v| *v = *v + bias[co]);
                }
            }
        });
        out
    }
}

struct ConvTransposeForward<'a> {
    /// The window of the equivalent convolution: `input` is this op's output size and
    /// `output` its input size.
    window: &'a Window,
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    groups: usize,
    bias: bool,
}
impl ComputeFn<3> for ConvTransposeForward<'_> {
    /// Per sample: one gemm per group into columns, then the columns folded into the image.
    fn run<T: Gemm>(&self, [x, weight, bias]: [&[T]; 3]) -> Vec<T> {
        let w = self.window;
        let (kl, l, plane) = (w.kernel_len(), w.positions_len(), w.plane_len());
        let (cin, cout, g) = (self.in_channels, self.out_channels, self.groups);
        let (cin_g, cout_g) = (cin / g, cout / g);
        let mut out = crate::alloc::vec_zeroed::<T>(self.batch * cout * plane);
        if out.is_empty() {
            return out;
        }
        out.par_chunks_mut(cout * plane).enumerate().for_each(|(s, dst)| {
            let image = &x[s * cin * l..(s + 1) * cin * l];
            let mut cols = vec![T::from_f64(0.0); cout * kl * l];
            for gi in 0..g {
                let rows = cout_g * kl;
                // SAFETY: the weight block (cin_g x rows, read transposed), the input block
                // cin_g x l and the column block rows x l lie inside their buffers.
                unsafe {
                    T::gemm(
                        rows,
                        cin_g,
                        l,
                        weight.as_ptr().add(gi * cin_g * rows),
                        1,
                        rows as isize,
                        image.as_ptr().add(gi * cin_g * l),
                        l as isize,
                        1,
                        cols.as_mut_ptr().add(gi * rows * l),
                        l as isize,
                    );
                }
            }
            for (c, img) in dst.chunks_mut(plane).enumerate() {
                if l > 0 {
                    col2im_plane(&cols[c * kl * l..(c + 1) * kl * l], img, w);
                }
                if self.bias {
                    img.iter_mut().for_each(|v| *v = *v + bias[c]);
                }
            }
        });
        out
    }
}

/// `torch.convolution`: conv1d/2d/3d (`transposed = false`) and conv_transpose1d/2d/3d, with
/// stride, zero padding, dilation, output padding and groups. `x` is `[N, C, *spatial]` and
/// `weight` `[C_out, C/groups, *kernel]` (`[C, C_out/groups, *kernel]` when transposed).
pub fn convolution(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, p: &ConvParams) -> Result<Tensor> {
    let out_spatial = check_convolution(x, weight, bias, p)?;
    let dtype = x.dtype();
    for t in [Some(weight), bias].into_iter().flatten() {
        if t.dtype() != dtype {
            return Err(Error::runtime(format!(
                "expected scalar type {} but found {}",
                dtype.scalar_type_name(),
                t.dtype().scalar_type_name()
            )));
        }
    }
    if dtype == DType::Bool {
        return Err(Error::kernel_missing("slow_conv2d_cpu", dtype));
    }
    let (xs, ws) = (x.shape(), weight.shape());
    let (n, cin) = (xs[0], xs[1]);
    let spatial = &xs[2..];
    let kernel = &ws[2..];
    let out_channels = if p.transposed { ws[1] * p.groups } else { ws[0] };
    let mut shape: Shape = smallvec![n, out_channels];
    shape.extend(out_spatial.iter().copied());
    let (xd, wd) = (x.data(), weight.data());
    let bd = match bias {
        Some(b) => b.data(),
        None => kernels::cast(&TensorData::from_vec(Vec::<f32>::new(), smallvec![0]), dtype),
    };
    let values = if !p.transposed {
        let window = Window::new(spatial, kernel, &p.stride, &p.padding, &p.dilation, &out_spatial);
        let f = ConvForward {
            window: &window,
            batch: n,
            in_channels: cin,
            out_channels,
            groups: p.groups,
            bias: bias.is_some(),
        };
        compute(dtype, [&xd, &wd, &bd], shape, f)
    } else {
        let window = Window::new(&out_spatial, kernel, &p.stride, &p.padding, &p.dilation, spatial);
        let f = ConvTransposeForward {
            window: &window,
            batch: n,
            in_channels: cin,
            out_channels,
            groups: p.groups,
            bias: bias.is_some(),
        };
        compute(dtype, [&xd, &wd, &bd], shape, f)
    };
    let out = Tensor::from_data(values);
    let inputs: SmallVec<[&Tensor; 3]> = [Some(x), Some(weight), bias].into_iter().flatten().collect();
    record(out, &inputs, |_| ConvolutionBackward {
        x: SavedTensor::input(x),
        weight: SavedTensor::input(weight),
        has_bias: bias.is_some(),
        params: p.clone(),
    })
}

/// The window a convolution with `p` slides over an image of size `image` (its positions are
/// the convolution's output, or the transposed convolution's input).
fn window_of(image: &[usize], kernel: &[usize], positions: &[usize], p: &ConvParams) -> Window {
    Window::new(image, kernel, &p.stride, &p.padding, &p.dilation, positions)
}

/// The weight gradient `sum_n G[n] cols[n]^T` per group, as `[G, rows_g, cols_g]` from
/// `a` = `[N, G*A, L]` and `b` = `[N, G*B, L]`: the batch is folded into the product.
fn grouped_outer(a: &Tensor, b: &Tensor, groups: usize) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    let (n, l) = (sa[0], sa[2]);
    let (ra, rb) = (sa[1] / groups, sb[1] / groups);
    // [N, G, A, L] -> [G, A, N, L] -> [G, A, N*L]
    let fold = |t: &Tensor, r: usize| -> Result<Tensor> {
        let t = reshape_to(t, &[n, groups, r, l])?;
        let t = contiguous(&permute(&t, &[1, 2, 0, 3])?)?;
        reshape_to(&t, &[groups, r, n * l])
    };
    let (fa, fb) = (fold(a, ra)?, fold(b, rb)?);
    bmm(&fa, &super::view::transpose(&fb, 1, 2)?)
}

/// Note [Fused weight gradient]: the weight gradient `sum_n rows[n] cols(image[n])^T` per
/// group, computed sample by sample (columns of one sample at a time) and summed, when no graph
/// is being built; with `create_graph` the same product is recorded from `im2col` and `bmm`.
struct WeightGrad<'a> {
    window: &'a Window,
    batch: usize,
    row_channels: usize,
    image_channels: usize,
    groups: usize,
}
impl ComputeFn<2> for WeightGrad<'_> {
    fn run<T: Gemm>(&self, [rows, image]: [&[T]; 2]) -> Vec<T> {
        let w = self.window;
        let (kl, l, plane) = (w.kernel_len(), w.positions_len(), w.plane_len());
        let g = self.groups;
        let (ra, rb) = (self.row_channels / g, self.image_channels / g * kl);
        let size = g * ra * rb;
        let zero = T::from_f64(0.0);
        let per_sample = |s: usize, acc: &mut Vec<T>, cols: &mut Vec<T>, part: &mut Vec<T>| {
            let img = &image[s * self.image_channels * plane..(s + 1) * self.image_channels * plane];
            if plane > 0 {
                for (c, col) in cols.chunks_mut(kl * l).enumerate() {
                    im2col_plane(&img[c * plane..(c + 1) * plane], col, w, zero);
                }
            }
            let a = &rows[s * self.row_channels * l..(s + 1) * self.row_channels * l];
            for gi in 0..g {
                // SAFETY: the row block (ra x l), the transposed column block (l x rb) and the
                // output block (ra x rb) lie inside their buffers.
                unsafe {
                    T::gemm(
                        ra,
                        l,
                        rb,
                        a.as_ptr().add(gi * ra * l),
                        l as isize,
                        1,
                        cols.as_ptr().add(gi * rb * l),
                        1,
                        l as isize,
                        part.as_mut_ptr().add(gi * ra * rb),
                        rb as isize,
                    );
                }
            }
            for (x, y) in acc.iter_mut().zip(part.iter()) {
                *x = *x + *y;
            }
        };
        // One run of consecutive samples per thread, summed in sample order, and the runs' sums
        // added in run order: the bits are the same whichever thread runs which part (a
        // work-stealing fold would group the samples differently from call to call).
        let parts = self.batch.min(crate::cascade::num_threads()).max(1);
        let per_part = self.batch.div_ceil(parts);
        let sums = crate::parallel::map_parts(parts, |p| {
            let (mut acc, mut cols, mut part) =
                (vec![zero; size], vec![zero; self.image_channels * kl * l], vec![zero; size]);
            for s in p * per_part..((p + 1) * per_part).min(self.batch) {
                per_sample(s, &mut acc, &mut cols, &mut part);
            }
            acc
        });
        let mut sums = sums.into_iter();
        let mut total = sums.next().unwrap_or_else(|| vec![zero; size]);
        for sum in sums {
            for (x, y) in total.iter_mut().zip(sum) {
                *x = *x + y;
            }
        }
        total
    }
}

/// The gradients of `convolution`:
/// d/dx = conv_transpose(g, W) (for a transposed one: conv(g, W)),
/// d/dW = sum_n g[n] unfold(x)[n]^T (transposed: sum_n x[n] unfold(g)[n]^T),
/// d/db = g summed over every dim but the channels
pub struct ConvolutionBackward {
    x: SavedTensor,
    weight: SavedTensor,
    has_bias: bool,
    params: ConvParams,
}
impl Backward for ConvolutionBackward {
    fn name(&self) -> &'static str {
        "ConvolutionBackward0"
    }
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
        let g = grad0(grads)?;
        let (x, weight) = (self.x.unpack(ctx)?, self.weight.unpack(ctx)?);
        let p = &self.params;
        let (xs, ws, gs) = (x.shape(), weight.shape(), g.shape());
        let kernel = &ws[2..];
        let dims = kernel.len();
        let gx = if ctx.needs(0) {
            let mut q = p.clone();
            q.transposed = !p.transposed;
            if !p.transposed {
                // the transposed convolution's output padding restores x's exact size
                q.output_padding = (0..dims)
                    .map(|i| {
                        let made = (gs[2 + i] - 1) * p.stride[i] + p.dilation[i] * (kernel[i] - 1) + 1;
                        xs[2 + i] + 2 * p.padding[i] - made
                    })
                    .collect();
            } else {
                q.output_padding = vec![0; dims];
            }
            Some(convolution(g, &weight, None, &q)?)
        } else {
            None
        };
        let gw = if ctx.needs(1)
            && !crate::autograd::any_requires_grad(&[g, &x])
            && matches!(x.dtype(), DType::F32 | DType::F64)
        {
            // no graph to build: one fused pass per sample (Note [Fused weight gradient])
            let (rows, image, window) = if !p.transposed {
                (g.clone(), x.clone(), window_of(&xs[2..], kernel, &gs[2..], p))
            } else {
                (x.clone(), g.clone(), window_of(&gs[2..], kernel, &xs[2..], p))
            };
            let (rs, is) = (rows.shape(), image.shape());
            let f = WeightGrad {
                window: &window,
                batch: xs[0],
                row_channels: rs[1],
                image_channels: is[1],
                groups: p.groups,
            };
            let values = compute(x.dtype(), [&rows.data(), &image.data()], ws.clone(), f);
            Some(Tensor::from_data(values))
        } else if ctx.needs(1) {
            let n = xs[0];
            let grouped = if !p.transposed {
                let cols = im2col(&x, &window_of(&xs[2..], kernel, &gs[2..], p))?;
                let l = cols.shape()[2];
                grouped_outer(&reshape_to(g, &[n, gs[1], l])?, &cols, p.groups)?
            } else {
                let cols = im2col(g, &window_of(&gs[2..], kernel, &xs[2..], p))?;
                let l = cols.shape()[2];
                grouped_outer(&reshape_to(&x, &[n, xs[1], l])?, &cols, p.groups)?
            };
            Some(reshape_to(&grouped, &ws)?)
        } else {
            None
        };
        let mut out: Grads = smallvec![gx, gw];
        if self.has_bias {
            out.push(if ctx.needs(2) {
                let dims: Vec<usize> = (0..gs.len()).filter(|&d| d != 1).collect();
                Some(sum_dims(g, &dims, false, None)?)
            } else {
                None
            });
        }
        Ok(out)
    }
    // t = conv(tx, W) + conv(x, tW) + tb (bilinear in x and W, linear in b)
    fn jvp(&self, ctx: &JvpCtx) -> Option<Result<Tensor>> {
        let (x, weight) = (ctx.inputs[0], ctx.inputs[1]);
        let bias_tangent = if self.has_bias { ctx.tangent(2) } else { None };
        let formula = || {
            let bias_alone = match (ctx.tangent(0), bias_tangent) {
                (None, Some(tb)) => {
                    let mut shape = vec![1i64; ctx.out.ndim()];
                    shape[1] = -1;
                    Some(super::view::reshape(tb, &shape)?)
                }
                _ => None,
            };
            ctx.sum_terms([
                ctx.tangent(0).map(|t| convolution(t, weight, bias_tangent, &self.params)).transpose(),
                ctx.tangent(1).map(|t| convolution(x, t, None, &self.params)).transpose(),
                Ok(bias_alone),
            ])
        };
        Some(formula())
    }
    crate::saved_tensors!(x => "input", weight);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv1d_matches_a_direct_sum() -> Result<()> {
        // x = [1, 2, 3, 4], w = [1, -1], padding 1: out[i] = sum_t w[t] x[i + t - 1]
        let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[1, 1, 4])?;
        let w = Tensor::from_vec(vec![1.0f64, -1.0], &[1, 1, 2])?;
        let p = ConvParams {
            stride: vec![1],
            padding: vec![1],
            dilation: vec![1],
            transposed: false,
            output_padding: vec![0],
            groups: 1,
        };
        let out = convolution(&x, &w, None, &p)?;
        assert_eq!(out.shape().as_slice(), &[1, 1, 5]);
        assert_eq!(out.to_vec::<f64>(), vec![-1.0, -1.0, -1.0, -1.0, 4.0]);
        Ok(())
    }

    #[test]
    fn fold_is_the_adjoint_of_unfold() -> Result<()> {
        // <unfold(x), y> = <x, fold(y)> for any x, y
        let w = Window::new(&[3, 4], &[2, 2], &[1, 2], &[1, 0], &[1, 1], &[4, 2]);
        let x: Vec<f64> = (0..12).map(|i| (i as f64).sin()).collect();
        let y: Vec<f64> = (0..32).map(|i| (i as f64 * 0.7).cos()).collect();
        let ux = im2col(&Tensor::from_vec(x.clone(), &[1, 1, 3, 4])?, &w)?.to_vec::<f64>();
        let fy = col2im(&Tensor::from_vec(y.clone(), &[1, 4, 8])?, &w)?.to_vec::<f64>();
        let lhs: f64 = ux.iter().zip(&y).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(&fy).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-12);
        Ok(())
    }
}
