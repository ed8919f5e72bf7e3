//! The one error type of the core; the binding maps each kind onto a Python exception.

use thiserror::Error;

/// Which Python exception an error becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Runtime,
    Value,
    Type,
    Index,
}

/// Every failure of the core. Messages follow PyTorch's wording where PyTorch has one.
#[derive(Debug, Error, Clone)]
pub enum Error {
    #[error("The size of tensor a ({a}) must match the size of tensor b ({b}) at non-singleton dimension {dim}")]
    BroadcastMismatch { a: usize, b: usize, dim: usize },

    #[error("Dimension out of range (expected to be in range of [{low}, {high}], but got {got})")]
    DimOutOfRange { low: i64, high: i64, got: i64 },

    #[error("{0}")]
    Shape(String),

    #[error("{op}: expected {expected} but got {got}")]
    DType { op: &'static str, expected: String, got: String },

    #[error("element {0} of tensors does not require grad and does not have a grad_fn")]
    NoGradFn(usize),

    #[error("grad can be implicitly created only for scalar outputs")]
    ImplicitGradNonScalar,

    #[error("Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed). Saved intermediate values of the graph are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or if you need to access saved tensors after calling backward.")]
    GraphFreed,

    #[error("a leaf Variable that requires grad is being used in an in-place operation.")]
    LeafInplace,

    #[error("you can only change requires_grad flags of leaf variables. If you want to use a computed variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().")]
    NonLeafRequiresGrad,

    #[error("only Tensors of floating point dtype can require gradients")]
    IntRequiresGrad,

    #[error("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")]
    NumpyRequiresGrad,

    #[error("one of the variables needed for gradient computation has been modified by an inplace operation: [{desc}]{producer} is at version {version}; expected version {expected} instead. Hint: enable anomaly detection to find the operation that failed to compute its gradient, with torch.autograd.set_detect_anomaly(True).")]
    ModifiedInplace { desc: String, producer: String, version: u64, expected: u64 },

    #[error("{0}")]
    Runtime(String),

    #[error("{0}")]
    Value(String),

    #[error("{0}")]
    Type(String),

    #[error("{0}")]
    Index(String),

    /// An error raised by user code called from the core (a Python hook), passed through as is.
    #[error("{0}")]
    External(std::sync::Arc<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// The Python exception class this error maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::DimOutOfRange { .. } | Error::Index(_) => ErrorKind::Index,
            Error::Value(_) => ErrorKind::Value,
            Error::Type(_) => ErrorKind::Type,
            _ => ErrorKind::Runtime,
        }
    }

    pub fn runtime(msg: impl Into<String>) -> Self {
        Error::Runtime(msg.into())
    }
    pub fn shape(msg: impl Into<String>) -> Self {
        Error::Shape(msg.into())
    }
}

/// Result alias used across the core.
pub type Result<T> = std::result::Result<T, Error>;
