//! The one error type of the core; the binding maps each kind onto a Python exception.

use thiserror::Error;

/// Which Python exception an error becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `RuntimeError`.
    Runtime,
    /// `ValueError`.
    Value,
    /// `TypeError`.
    Type,
    /// `IndexError`.
    Index,
    /// A kernel missing for a dtype (Python's `NotImplementedError`, as PyTorch raises it).
    NotImplemented,
    /// A matrix the linear-algebra op cannot handle (`torch.linalg.LinAlgError`, a
    /// `RuntimeError`).
    LinAlg,
}

/// Every failure of the core. Messages follow PyTorch's wording where PyTorch has one.
#[derive(Debug, Error, Clone)]
pub enum Error {
    /// Two shapes do not broadcast: sizes `a` and `b` at dimension `dim`.
    #[error("The size of tensor a ({a}) must match the size of tensor b ({b}) at non-singleton dimension {dim}")]
    #[allow(missing_docs)] // the fields are named in the doc above
    BroadcastMismatch { a: usize, b: usize, dim: usize },

    /// A dimension index `got` outside `[low, high]`.
    #[error("Dimension out of range (expected to be in range of [{low}, {high}], but got {got})")]
    #[allow(missing_docs)] // the fields are named in the doc above
    DimOutOfRange { low: i64, high: i64, got: i64 },

    /// A shape error, with its message.
    #[error("{0}")]
    Shape(String),

    /// `op` got a dtype `got` where it expected `expected`.
    #[error("{op}: expected {expected} but got {got}")]
    #[allow(missing_docs)] // the fields are named in the doc above
    DType { op: &'static str, expected: String, got: String },

    /// `backward` on output number `.0`, which does not require grad.
    #[error("element {0} of tensors does not require grad and does not have a grad_fn")]
    NoGradFn(usize),

    /// `backward` without a gradient on an output with more than one element.
    #[error("grad can be implicitly created only for scalar outputs")]
    ImplicitGradNonScalar,

    /// A second backward through a graph whose saved tensors were freed.
    #[error("Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed). Saved intermediate values of the graph are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or if you need to access saved tensors after calling backward.")]
    GraphFreed,

    /// An in-place op on a leaf that requires grad.
    #[error("a leaf Variable that requires grad is being used in an in-place operation.")]
    LeafInplace,

    /// `requires_grad` changed on a non-leaf tensor.
    #[error("you can only change requires_grad flags of leaf variables. If you want to use a computed variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().")]
    NonLeafRequiresGrad,

    /// `requires_grad` set on a tensor that is not floating point.
    #[error("only Tensors of floating point dtype can require gradients")]
    IntRequiresGrad,

    /// `numpy()` on a tensor that requires grad.
    #[error("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")]
    NumpyRequiresGrad,

    /// A tensor saved for backward was modified in place since: `desc` names it, `producer` the node
    /// that saved it, `version`/`expected` the versions now and when saved, `hint` what to try.
    #[error("one of the variables needed for gradient computation has been modified by an inplace operation: [{desc}]{producer} is at version {version}; expected version {expected} instead. Hint: {hint}")]
    ModifiedInplace {
        /// The saved tensor, as PyTorch describes it (`[torch.FloatTensor [3]]`).
        desc: String,
        /// `, which is output 0 of MulBackward0,` when the tensor has a producer, else empty.
        producer: String,
        /// The tensor's version now.
        version: u64,
        /// The version it had when it was saved.
        expected: u64,
        /// PyTorch's hint about anomaly detection.
        hint: &'static str,
        /// rustgrad's addition (who saved the tensor where, what modified it where); kept out of
        /// the message, which stays PyTorch's, and shown as a note on the Python exception.
        detail: String,
    },

    /// A tensor created in inference mode saved for backward.
    #[error("Inference tensors cannot be saved for backward. Please do not use Tensors created in inference mode in computation tracked by autograd. To work around this, you can make a clone to get a normal tensor and use it in autograd, or use `torch.no_grad()` instead of `torch.inference_mode()`.")]
    InferenceSaved,

    /// An in-place op on an inference tensor outside inference mode.
    #[error("Inplace update to inference tensor outside InferenceMode is not allowed.You can make a clone to get a normal tensor before doing inplace update.See https://github.com/pytorch/rfcs/pull/17 for more details.")]
    InferenceInplace,

    /// `requires_grad` set on an inference tensor outside inference mode.
    #[error("Setting requires_grad=True on inference tensor outside InferenceMode is not allowed.")]
    InferenceRequiresGrad,

    /// An in-place op on a view of a leaf that requires grad.
    #[error("a view of a leaf Variable that requires grad is being used in an in-place operation.")]
    ViewOfLeafInplace,

    /// An in-place op with grad mode on, on a view created with grad mode off.
    #[error("A view was created in no_grad mode and is being modified inplace with grad mode enabled. Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify your code by moving both the view and the inplace either both inside the no_grad block (if you don't want the inplace to be tracked) or both outside (if you want the inplace to be tracked).")]
    NoGradViewInplace,

    /// An in-place op on output `output_nr` of the custom Function `function`, which is a view.
    #[error("Output {output_nr} of {function} is a view and is being modified inplace. This view was created inside a custom Function (or because an input was returned as-is) and the autograd logic to handle view+inplace would override the custom backward associated with the custom Function, leading to incorrect gradients. This behavior is forbidden. You can fix this by cloning the output of the custom Function.")]
    #[allow(missing_docs)] // the fields are named in the doc above
    CustomFunctionViewInplace { output_nr: u32, function: String },

    /// An in-place write into a tensor whose elements overlap in memory.
    #[error("unsupported operation: more than one element of the written-to tensor refers to a single memory location. Please clone() the tensor before performing the operation.")]
    InternalOverlap,

    /// An in-place write whose input partly overlaps the written tensor.
    #[error("unsupported operation: some elements of the input tensor and the written-to tensor refer to a single memory location. Please clone() the tensor before performing the operation.")]
    PartialOverlap,

    /// Anomaly detection: the backward function `name` returned NaN in output `index`.
    #[error("Function '{name}' returned nan values in its {index}th output.")]
    #[allow(missing_docs)] // the fields are named in the doc above
    NanInBackward { name: &'static str, index: usize },

    /// A `RuntimeError` with its message.
    #[error("{0}")]
    Runtime(String),

    /// A `ValueError` with its message.
    #[error("{0}")]
    Value(String),

    /// A `TypeError` with its message.
    #[error("{0}")]
    Type(String),

    /// An `IndexError` with its message.
    #[error("{0}")]
    Index(String),

    /// An op that has no kernel for this dtype (PyTorch's "\"abs_cpu\" not implemented for 'Bool'").
    #[error("{0}")]
    NotImplemented(String),

    /// A singular or non-positive-definite matrix, or a decomposition that did not converge
    /// (`torch.linalg.LinAlgError`).
    #[error("{0}")]
    LinAlg(String),

    /// An error raised by user code called from the core (a Python hook), passed through as is.
    #[error("{0}")]
    External(std::sync::Arc<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Extra explanation beyond PyTorch's message, if any (a note on the Python exception).
    pub fn note(&self) -> Option<&str> {
        match self {
            Error::ModifiedInplace { detail, .. } if !detail.is_empty() => Some(detail),
            _ => None,
        }
    }

    /// The Python exception class this error maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::DimOutOfRange { .. } | Error::Index(_) => ErrorKind::Index,
            Error::Value(_) => ErrorKind::Value,
            Error::Type(_) => ErrorKind::Type,
            Error::NotImplemented(_) => ErrorKind::NotImplemented,
            Error::LinAlg(_) => ErrorKind::LinAlg,
            _ => ErrorKind::Runtime,
        }
    }

    /// An [`Error::Runtime`] with this message.
    pub fn runtime(msg: impl Into<String>) -> Self {
        Error::Runtime(msg.into())
    }
    /// An [`Error::Shape`] with this message.
    pub fn shape(msg: impl Into<String>) -> Self {
        Error::Shape(msg.into())
    }
    /// PyTorch's message for a kernel that has no version for `dtype`:
    /// `"abs_cpu" not implemented for 'Bool'`.
    pub fn kernel_missing(kernel: &str, dtype: crate::dtype::DType) -> Self {
        Error::NotImplemented(format!("\"{kernel}\" not implemented for '{}'", dtype.scalar_type_name()))
    }
}

/// Result alias used across the core.
pub type Result<T> = std::result::Result<T, Error>;
