//! The ops. Each file holds a family of ops: forward (shape rule + kernel call), the backward
//! node with its saved state right beside it, written in the same differentiable ops, and the
//! derivative as a comment. A new backward node adds one line to `backward_ops!` below.

use crate::autograd::{Backward, BackwardCtx, Grads};
use crate::error::Result;
use crate::tensor::Tensor;

pub mod accumulate;
pub mod activation;
pub mod arith;
pub mod compare;
pub mod conv;
pub mod decomp;
pub mod elementwise;
pub mod fill;
pub mod gather;
pub mod index;
pub mod join;
pub mod linalg;
pub mod loss;
pub mod modulo;
pub mod moments;
pub mod norm;
pub mod optim;
pub mod pad;
pub mod pointwise;
pub mod pool;
pub mod pow;
pub mod reduce;
pub mod rnn;
pub mod sampling;
pub mod shaped;
pub mod softmax;
pub mod sorting;
pub mod strided;
mod tie_order;
pub mod unary;
pub mod view;

macro_rules! backward_ops {
    ($($variant:ident($ty:ty)),* $(,)?; boxed: $($bvariant:ident($bty:ty)),* $(,)?) => {
        /// Every kind of backward node, stored inline in the arena slot (no box per node); the
        /// few with large state are boxed so that every node stays small.
        pub enum BackwardOp {
            $(#[doc = concat!("A `", stringify!($ty), "` node.")] $variant($ty),)*
            $(#[doc = concat!("A `", stringify!($bty), "` node (boxed: its state is large).")] $bvariant(Box<$bty>),)*
            /// A node defined outside the core (a Python `autograd.Function`). Shared, so the
            /// engine can run it without holding the node's lock (it may call back into us).
            Custom(std::sync::Arc<dyn CustomBackward>),
        }

        impl BackwardOp {
            /// The node's PyTorch name (`MulBackward0`).
            pub fn name(&self) -> &'static str {
                match self { $(Self::$variant(op) => op.name(),)* $(Self::$bvariant(op) => op.name(),)* Self::Custom(op) => op.name() }
            }
            /// Computes the input gradients from the output gradients `grads`.
            pub fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads> {
                match self { $(Self::$variant(op) => op.apply(ctx, grads),)* $(Self::$bvariant(op) => op.apply(ctx, grads),)* Self::Custom(op) => op.apply(ctx, grads) }
            }
            /// The op's own jvp formula, if it has one ([`Backward::jvp`]).
            pub fn jvp(&self, ctx: &crate::autograd::JvpCtx) -> Option<Result<Tensor>> {
                match self { $(Self::$variant(op) => op.jvp(ctx),)* $(Self::$bvariant(op) => op.jvp(ctx),)* Self::Custom(_) => None }
            }
            /// Frees the saved tensors.
            pub fn release(&mut self) {
                match self { $(Self::$variant(op) => op.release(),)* $(Self::$bvariant(op) => op.release(),)* Self::Custom(op) => op.release_saved() }
            }
            /// Whether the node saved tensors for backward.
            pub fn saves_tensors(&self) -> bool {
                match self { $(Self::$variant(op) => op.saves_tensors(),)* $(Self::$bvariant(op) => op.saves_tensors(),)* Self::Custom(op) => op.saves_tensors() }
            }
            /// Points saved references to the node's output at `target` (used when an in-place op
            /// rebases a view's history).
            pub fn retarget_outputs(&mut self, target: &Tensor) {
                match self { $(Self::$variant(op) => op.retarget_outputs(target),)* $(Self::$bvariant(op) => op.retarget_outputs(target),)* Self::Custom(_) => {} }
            }
            /// Calls `f` with each tensor the node saved and its PyTorch name.
            pub fn for_each_saved(&self, f: &mut dyn FnMut(&'static str, &crate::autograd::SavedTensor)) {
                match self { $(Self::$variant(op) => op.for_each_saved(f),)* $(Self::$bvariant(op) => op.for_each_saved(f),)* Self::Custom(op) => op.for_each_saved(f) }
            }
            /// [`Self::for_each_saved`] with the saved tensors writable.
            pub fn for_each_saved_mut(&mut self, f: &mut dyn FnMut(&'static str, &mut crate::autograd::SavedTensor)) {
                match self { $(Self::$variant(op) => op.for_each_saved_mut(f),)* $(Self::$bvariant(op) => op.for_each_saved_mut(f),)* Self::Custom(op) => op.for_each_saved_mut(f) }
            }
        }

        $(impl From<$ty> for BackwardOp {
            #[inline]
            fn from(op: $ty) -> Self { Self::$variant(op) }
        })*
        $(impl From<$bty> for BackwardOp {
            #[inline]
            fn from(op: $bty) -> Self { Self::$bvariant(Box::new(op)) }
        })*
    };
}

/// A backward function implemented outside the core. Its state is shared (`&self`), since
/// it runs without the node's lock held.
pub trait CustomBackward: Send + Sync {
    /// The node's name as PyTorch shows it.
    fn name(&self) -> &'static str;
    /// For the binding that defined it, to find its own type again.
    fn as_any(&self) -> &dyn std::any::Any;
    /// Computes the input gradients from the output gradients `grads`.
    fn apply(&self, ctx: &BackwardCtx, grads: &[Option<Tensor>]) -> Result<Grads>;
    /// Frees saved state after a backward without `retain_graph`.
    fn release_saved(&self);
    /// Whether the function saved tensors for backward.
    fn saves_tensors(&self) -> bool;
    /// Calls `f` with each tensor the function saved.
    fn for_each_saved(&self, _f: &mut dyn FnMut(&'static str, &crate::autograd::SavedTensor)) {}
    /// [`CustomBackward::for_each_saved`] with the saved tensors writable.
    fn for_each_saved_mut(&self, _f: &mut dyn FnMut(&'static str, &mut crate::autograd::SavedTensor)) {}
    /// Whether missing output gradients are passed as zeros (else as `None`).
    fn materialize_grads(&self) -> bool {
        true
    }
}

backward_ops! {
    AccumulateGrad(accumulate::AccumulateGrad),
    Add(arith::AddBackward),
    AddScalar(arith::AddScalarBackward),
    SubScalar(arith::SubScalarBackward),
    MulScalar(arith::MulScalarBackward),
    Sub(arith::SubBackward),
    Rsub(arith::RsubBackward),
    Mul(arith::MulBackward),
    Div(arith::DivBackward),
    DivNumber(arith::DivNumberBackward),
    Neg(arith::NegBackward),
    Reciprocal(arith::ReciprocalBackward),
    PowScalar(pow::PowScalarBackward),
    Unary(unary::UnaryBackward),
    Where(compare::WhereBackward),
    Dot(linalg::DotBackward),
    Mv(linalg::MvBackward),
    Bmm(linalg::BmmBackward),
    PickScatter(index::PickScatterBackward),
    View(view::ViewBackward),
    Transpose(view::TransposeBackward),
    Permute(view::PermuteBackward),
    Squeeze(view::SqueezeBackward),
    Unsqueeze(view::UnsqueezeBackward),
    Expand(view::ExpandBackward),
    Identity(view::IdentityBackward),
    Copy(view::CopyBackward),
    ToCopy(view::ToCopyBackward),
    CopyFrom(fill::CopyFromBackward),
    ZeroGrad(fill::ZeroGradBackward),
    NotImplemented(fill::NotImplementedBackward),
    Cumsum(moments::CumsumBackward),
    Triangle(shaped::TriangleBackward),
    ;
    boxed:
    ExtremeAll(reduce::ExtremeAllBackward),
    Mm(linalg::MmBackward),
    Extremum(elementwise::ExtremumBackward),
    PowTensor(pow::PowTensorBackward),
    ScalarPow(pow::ScalarPowBackward),
    Pick(index::PickBackward),
    Sum(reduce::SumBackward),
    Mean(reduce::MeanBackward),
    ExtremeDim(reduce::ExtremeDimBackward),
    Norm(reduce::NormBackward),
    LstmCell(rnn::LstmCellBackward),
    LstmLayer(rnn::LstmLayerBackward),
    AsStrided(strided::AsStridedBackward),
    AsStridedScatter(strided::AsStridedScatterBackward),
    CopySlices(crate::inplace::CopySlices),
    Clamp(elementwise::ClampBackward),
    ClampTensor(elementwise::ClampTensorBackward),
    MaskedFill(elementwise::MaskedFillBackward),
    Gelu(elementwise::GeluBackward),
    Softmax(softmax::SoftmaxBackward),
    Logsumexp(softmax::LogsumexpBackward),
    Var(moments::VarBackward),
    Prod(moments::ProdBackward),
    Index(gather::IndexBackward),
    IndexPut(gather::IndexPutBackward),
    Gather(gather::GatherBackward),
    Scatter(gather::ScatterBackward),
    Cat(join::CatBackward),
    Stack(join::StackBackward),
    Split(join::SplitBackward),
    Unbind(join::UnbindBackward),
    Repeat(join::RepeatBackward),
    Addmm(linalg::AddmmBackward),
    MseLoss(loss::MseLossBackward),
    MseGrad(loss::MseGradBackward),
    NllLoss(loss::NllLossBackward),
    Bce(loss::BceBackward),
    BceLogits(loss::BceLogitsBackward),
    Act(activation::ActBackward),
    Lerp(pointwise::LerpBackward),
    Addc(pointwise::AddcBackward),
    GradOp(activation::GradOpBackward),
    SoftmaxGrad(activation::SoftmaxGradBackward),
    Flip(shaped::FlipBackward),
    Roll(shaped::RollBackward),
    Diagonal(shaped::DiagonalBackward),
    DiagEmbed(shaped::DiagEmbedBackward),
    Trace(shaped::TraceBackward),
    Select(sorting::SelectBackward),
    Evenly(sorting::EvenlyBackward),
    Cumextreme(sorting::CumextremeBackward),
    Cumprod(sorting::CumprodBackward),
    Amax(sorting::AmaxBackward),
    Aminmax(sorting::AminmaxBackward),
    Fmod(modulo::FmodBackward),
    NanToNum(modulo::NanToNumBackward),
    Fused(modulo::FusedBackward),
    NoDerivative(modulo::NoDerivativeBackward),
    Inv(decomp::InvBackward),
    Det(decomp::DetBackward),
    Slogdet(decomp::SlogdetBackward),
    Solve(decomp::SolveBackward),
    Cholesky(decomp::CholeskyBackward),
    Qr(decomp::QrBackward),
    Eigh(decomp::EighBackward),
    Svd(decomp::SvdBackward),
    Im2col(conv::Im2colBackward),
    Col2im(conv::Col2imBackward),
    Convolution(conv::ConvolutionBackward),
    MaxPool(pool::MaxPoolBackward),
    AvgPool(pool::AvgPoolBackward),
    MaxUnpool(pool::MaxUnpoolBackward),
    Norm2(norm::NormBackward),
    Embedding(norm::EmbeddingBackward),
    ConstantPad(pad::ConstantPadBackward),
    RobustLoss(loss::RobustLossBackward),
}
