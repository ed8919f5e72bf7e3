//! rustgrad-core: reverse-mode automatic differentiation with PyTorch's semantics, in pure Rust.
//!
//! - [`Tensor`]: a view of a shared [`storage::Storage`] plus autograd state.
//! - [`graph`]: the arena of backward nodes, freed without recursion.
//! - [`engine`]: `backward` and `grad`.
//! - [`ops`]: forward + backward of every op.
//! - Operators `+ - * /` and unary `-` on `&Tensor` (see [`operators`]), returning [`Result`].

#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// Notes and derivative comments use brackets as text (`Note [Engine]`, Iverson brackets like
// `[x > 0]`), and a few link to private helpers (shown with `--document-private-items`).
#![allow(rustdoc::broken_intra_doc_links, rustdoc::private_intra_doc_links)]

pub mod alloc;
pub mod anomaly;
pub mod autocast;
pub mod autograd;
pub mod cascade;
pub mod checkpoint;
pub mod creation;
pub mod dtype;
pub mod engine;
pub mod error;
pub mod forward_ad;
pub mod grad_mode;
pub mod graph;
pub mod inplace;
pub mod kernels;
pub mod operators;
pub mod ops;
pub mod parallel;
pub mod profiler;
pub mod random;
pub mod saved_hooks;
pub mod scalar;
pub mod shape;
pub mod sites;
mod stats;
pub mod storage;
pub mod tensor;

pub use dtype::DType;
pub use error::{Error, ErrorKind, Result};
pub use grad_mode::{is_grad_enabled, set_grad_enabled, GradModeGuard};
pub use half;
pub use scalar::Scalar;
pub use tensor::{Tensor, TensorData};
