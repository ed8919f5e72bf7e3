//! Failing ops return `Err` with PyTorch's message (and the right Python exception kind),
//! and never panic.

use rustgrad_core::creation::ones;
use rustgrad_core::ops::{arith, compare, linalg, reduce, unary, view};
use rustgrad_core::{engine, inplace, DType, Error, ErrorKind, Result, Tensor};
use std::panic::{catch_unwind, AssertUnwindSafe};

const GRAPH_FREED: &str = "Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed). Saved intermediate values of the graph are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or if you need to access saved tensors after calling backward.";

fn f64s(shape: &[usize]) -> Tensor {
    ones(shape, DType::F64)
}

fn leaf(shape: &[usize]) -> Tensor {
    let t = f64s(shape);
    t.set_requires_grad(true).unwrap();
    t
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_string()
    }
}

/// Collects every wrong outcome of a list of failing calls, then reports them all.
#[derive(Default)]
struct Expect {
    failures: Vec<String>,
    count: usize,
}

impl Expect {
    /// Runs `f`, which must return `Err` (not panic, not succeed) with exactly `message` and
    /// an error mapping to the Python exception `kind`.
    fn err<T: std::fmt::Debug>(&mut self, label: &str, f: impl FnOnce() -> Result<T>, message: &str, kind: ErrorKind) {
        self.count += 1;
        match catch_unwind(AssertUnwindSafe(f)) {
            Err(p) => self.failures.push(format!("{label}: panicked instead of returning Err: {}", panic_message(p))),
            Ok(Ok(v)) => self.failures.push(format!("{label}: succeeded with {v:?}, expected Err({message})")),
            Ok(Err(e)) => {
                if e.to_string() != message {
                    self.failures.push(format!("{label}: message\n      got:      {e}\n      expected: {message}"));
                }
                if e.kind() != kind {
                    self.failures.push(format!("{label}: error kind {:?}, expected {kind:?}", e.kind()));
                }
            }
        }
    }

    /// Runs `f`, which must succeed, and checks its result.
    fn ok<T>(
        &mut self,
        label: &str,
        f: impl FnOnce() -> Result<T>,
        check: impl FnOnce(T) -> std::result::Result<(), String>,
    ) {
        self.count += 1;
        match catch_unwind(AssertUnwindSafe(f)) {
            Err(p) => self.failures.push(format!("{label}: panicked: {}", panic_message(p))),
            Ok(Err(e)) => self.failures.push(format!("{label}: failed with Err({e}), expected success")),
            Ok(Ok(v)) => {
                if let Err(e) = check(v) {
                    self.failures.push(format!("{label}: {e}"));
                }
            }
        }
    }

    fn finish(self) {
        assert!(self.count > 0);
        assert!(
            self.failures.is_empty(),
            "{} of {} error checks failed:\n  {}",
            self.failures.len(),
            self.count,
            self.failures.join("\n  ")
        );
    }
}

use ErrorKind::{Index, NotImplemented, Runtime};

#[test]
fn broadcast_mismatch() {
    let mut e = Expect::default();
    let msg = "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1";
    e.err("add [2,3]+[4]", || arith::add(&f64s(&[2, 3]), &f64s(&[4])), msg, Runtime);
    e.err("sub [2,3]-[4]", || arith::sub(&f64s(&[2, 3]), &f64s(&[4])), msg, Runtime);
    e.err("mul [2,3]*[4]", || arith::mul(&f64s(&[2, 3]), &f64s(&[4])), msg, Runtime);
    e.err("div [2,3]/[4]", || arith::div(&f64s(&[2, 3]), &f64s(&[4])), msg, Runtime);
    e.err("pow [2,3]**[4]", || rustgrad_core::ops::pow::pow_tensor(&f64s(&[2, 3]), &f64s(&[4])), msg, Runtime);
    e.err(
        "add [2,3]+[5,1,4] (dimension counted in the broadcast shape)",
        || arith::add(&f64s(&[2, 3]), &f64s(&[5, 1, 4])),
        "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 2",
        Runtime,
    );
    e.err(
        "add [3,2]+[4,2]",
        || arith::add(&f64s(&[3, 2]), &f64s(&[4, 2])),
        "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 0",
        Runtime,
    );
    // requiring grad changes nothing: the error comes before any recording
    e.err("add with grad", || arith::add(&leaf(&[2, 3]), &leaf(&[4])), msg, Runtime);
    e.finish();
}

#[test]
fn view_size() {
    let mut e = Expect::default();
    let strided = "view size is not compatible with input tensor's size and stride (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead.";
    e.err("view of a transposed tensor", || view::view(&view::t(&f64s(&[2, 3]))?, &[6]), strided, Runtime);
    e.err(
        "view of a permuted tensor",
        || view::view(&view::permute(&f64s(&[2, 3, 4]), &[2, 0, 1])?, &[-1]),
        strided,
        Runtime,
    );
    e.err(
        "view [5] of 6 elements",
        || view::view(&f64s(&[2, 3]), &[5]),
        "shape '[5]' is invalid for input of size 6",
        Runtime,
    );
    e.err(
        "view [4,-1] of 6 elements",
        || view::view(&f64s(&[2, 3]), &[4, -1]),
        "shape '[4, -1]' is invalid for input of size 6",
        Runtime,
    );
    e.err(
        "reshape [7] of 6 elements",
        || view::reshape(&f64s(&[2, 3]), &[7]),
        "shape '[7]' is invalid for input of size 6",
        Runtime,
    );
    e.err("view [-1,-1]", || view::view(&f64s(&[2, 3]), &[-1, -1]), "only one dimension can be inferred", Runtime);
    e.err("view [-2,3]", || view::view(&f64s(&[2, 3]), &[-2, 3]), "invalid shape dimension -2", Runtime);
    e.err(
        "expand [2,3] to [2,4]",
        || view::expand(&f64s(&[2, 3]), &[2, 4]),
        "The expanded size of the tensor (4) must match the existing size (3) at non-singleton dimension 1.  Target sizes: [2, 4].  Tensor sizes: [2, 3]",
        Runtime,
    );
    e.err(
        "t of a 3-D tensor",
        || view::t(&f64s(&[2, 3, 4])),
        "t() expects a tensor with <= 2 dimensions, but self is 3D",
        Runtime,
    );
    // a view that is possible must still succeed after the failures above
    e.ok(
        "reshape of a transposed tensor copies",
        || view::reshape(&view::t(&f64s(&[2, 3]))?, &[6]),
        |t| {
            if t.shape().as_slice() == [6] {
                Ok(())
            } else {
                Err(format!("shape {:?}", t.shape().as_slice()))
            }
        },
    );
    e.finish();
}

#[test]
fn matrix_shapes() {
    let mut e = Expect::default();
    e.err(
        "mm [2,3]x[4,5]",
        || linalg::mm(&f64s(&[2, 3]), &f64s(&[4, 5])),
        "mm: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)",
        Runtime,
    );
    e.err(
        "matmul [2,3]@[4,5]",
        || linalg::matmul(&f64s(&[2, 3]), &f64s(&[4, 5])),
        "mm: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)",
        Runtime,
    );
    e.err(
        "matmul [2,3,3]@[4,5] (batch folded into rows)",
        || linalg::matmul(&f64s(&[2, 3, 3]), &f64s(&[4, 5])),
        "mm: mat1 and mat2 shapes cannot be multiplied (6x3 and 4x5)",
        Runtime,
    );
    e.err("mm of a vector", || linalg::mm(&f64s(&[3]), &f64s(&[3, 3])), "self must be a matrix", Runtime);
    e.err("mm by a vector", || linalg::mm(&f64s(&[3, 3]), &f64s(&[3])), "mat2 must be a matrix", Runtime);
    e.err("bmm of a matrix", || linalg::bmm(&f64s(&[3, 3]), &f64s(&[1, 3, 3])), "batch1 must be a 3D tensor", Runtime);
    e.err(
        "bmm [2,2,3]x[2,4,5]",
        || linalg::bmm(&f64s(&[2, 2, 3]), &f64s(&[2, 4, 5])),
        "Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [2, 4].",
        Runtime,
    );
    e.err(
        "dot of a matrix",
        || linalg::dot(&f64s(&[2, 2]), &f64s(&[4])),
        "1D tensors expected, but got 2D and 1D tensors",
        Runtime,
    );
    e.err(
        "dot [3].[4]",
        || linalg::dot(&f64s(&[3]), &f64s(&[4])),
        "inconsistent tensor size, expected tensor [3] and src [4] to have the same number of elements, but got 3 and 4 elements respectively",
        Runtime,
    );
    e.err(
        "mv [3,4]x[5]",
        || linalg::mv(&f64s(&[3, 4]), &f64s(&[5])),
        "size mismatch, got input (3), mat (3x4), vec (5)",
        Runtime,
    );
    e.err(
        "matmul of a 0-d tensor",
        || linalg::matmul(&f64s(&[]), &f64s(&[3])),
        "both arguments to matmul need to be at least 1D, but they are 0D and 1D",
        Runtime,
    );
    e.err(
        "mm float64 x float32",
        || linalg::mm(&f64s(&[2, 2]), &ones(&[2, 2], DType::F32)),
        "expected m1 and m2 to have the same dtype, but got: double != float",
        Runtime,
    );
    e.finish();
}

#[test]
fn dim_out_of_range() {
    let mut e = Expect::default();
    let x = f64s(&[2, 3]);
    let r2 = |got: i64| format!("Dimension out of range (expected to be in range of [-2, 1], but got {got})");
    e.err("sum dim 2", || reduce::sum(&x, Some(&[2]), false, None), &r2(2), Index);
    e.err("sum dim -3", || reduce::sum(&x, Some(&[-3]), false, None), &r2(-3), Index);
    e.err("mean dim 2", || reduce::mean(&x, Some(&[2]), false, None), &r2(2), Index);
    e.err("max dim 2", || reduce::extreme_dim(&x, 2, false, true), &r2(2), Index);
    e.err("min dim -3", || reduce::extreme_dim(&x, -3, false, false), &r2(-3), Index);
    e.err("norm dim 5", || reduce::norm(&x, 2.0, Some(&[5]), false), &r2(5), Index);
    e.err("transpose 0 2", || view::transpose(&x, 0, 2), &r2(2), Index);
    e.err("squeeze dim 2", || view::squeeze(&x, Some(2)), &r2(2), Index);
    e.err("permute [0, 2]", || view::permute(&x, &[0, 2]), &r2(2), Index);
    e.err(
        "unsqueeze dim 3 (one more dim allowed)",
        || view::unsqueeze(&x, 3),
        "Dimension out of range (expected to be in range of [-3, 2], but got 3)",
        Index,
    );
    e.err(
        "sum of a 0-d tensor over dim 1",
        || reduce::sum(&f64s(&[]), Some(&[1]), false, None),
        "Dimension out of range (expected to be in range of [-1, 0], but got 1)",
        Index,
    );
    e.err(
        "sum dims repeated",
        || reduce::sum(&x, Some(&[1, -1]), false, None),
        "dim 1 appears multiple times in the list of dims",
        Runtime,
    );
    e.err("permute repeated", || view::permute(&x, &[1, 1]), "permute(): duplicate dims are not allowed.", Runtime);
    e.finish();
}

#[test]
fn backward_errors() {
    let mut e = Expect::default();
    // backward of a tensor outside any graph
    e.err(
        "backward of a tensor that does not require grad",
        || engine::backward(&[f64s(&[])], &[], false, false, None),
        "element 0 of tensors does not require grad and does not have a grad_fn",
        Runtime,
    );
    e.err(
        "backward of the second of two tensors",
        || {
            let x = leaf(&[]);
            engine::backward(&[unary::exp(&x)?, f64s(&[])], &[], false, false, None)
        },
        "element 1 of tensors does not require grad and does not have a grad_fn",
        Runtime,
    );
    e.err(
        "backward of a result computed under no_grad",
        || {
            let x = leaf(&[]);
            let y = {
                let _g = rustgrad_core::GradModeGuard::new(false);
                unary::exp(&x)?
            };
            engine::backward(&[y], &[], false, false, None)
        },
        "element 0 of tensors does not require grad and does not have a grad_fn",
        Runtime,
    );
    // implicit gradient of a non-scalar
    e.err(
        "backward of a non-scalar without a gradient",
        || engine::backward(&[arith::mul(&leaf(&[2, 3]), &f64s(&[2, 3]))?], &[], false, false, None),
        "grad can be implicitly created only for scalar outputs",
        Runtime,
    );
    e.err(
        "autograd.grad of a non-scalar without a gradient",
        || {
            let x = leaf(&[3]);
            engine::grad(&[unary::exp(&x)?], &[], &[x], false, false, false)
        },
        "grad can be implicitly created only for scalar outputs",
        Runtime,
    );
    e.ok(
        "backward of a one-element non-scalar is implicit",
        || {
            let x = leaf(&[1, 1]);
            engine::backward(&[unary::exp(&x)?], &[], false, false, None)?;
            Ok(x)
        },
        |x| match x.grad() {
            Some(g) if (g.get_f64(0) - 1f64.exp()).abs() < 1e-12 => Ok(()),
            g => Err(format!("x.grad = {g:?}, expected [[e]]")),
        },
    );
    e.err(
        "gradient of the wrong shape",
        || engine::backward(&[unary::exp(&leaf(&[3]))?], &[Some(f64s(&[2]))], false, false, None),
        "Mismatch in shape: grad_output[0] has a shape of torch.Size([2]) and output[0] has a shape of torch.Size([3]).",
        Runtime,
    );
    // autograd.grad with respect to tensors outside the graph
    e.err(
        "grad w.r.t. a tensor that does not require grad",
        || {
            let x = leaf(&[]);
            engine::grad(&[unary::exp(&x)?], &[], &[f64s(&[])], false, false, false)
        },
        "One of the differentiated Tensors does not require grad",
        Runtime,
    );
    e.err(
        "grad w.r.t. an unused tensor",
        || {
            let (x, unused) = (leaf(&[]), leaf(&[]));
            engine::grad(&[unary::exp(&x)?], &[], &[x, unused], false, false, false)
        },
        // current PyTorch names the index (older versions said "One of the differentiated Tensors")
        "The differentiated Tensor at index 1 appears to not have been used in the graph. Set allow_unused=True if this is the desired behavior.",
        Runtime,
    );
    e.finish();
}

#[test]
fn backward_twice() {
    let mut e = Expect::default();
    e.err(
        "backward twice through mul",
        || {
            let x = leaf(&[3]);
            let y = reduce::sum(&arith::mul(&x, &x)?, None, false, None)?;
            engine::backward(std::slice::from_ref(&y), &[], false, false, None)?;
            engine::backward(&[y], &[], false, false, None)
        },
        GRAPH_FREED,
        Runtime,
    );
    e.err(
        "autograd.grad twice through exp (saved output)",
        || {
            let x = leaf(&[3]);
            let y = reduce::sum(&unary::exp(&x)?, None, false, None)?;
            engine::grad(std::slice::from_ref(&y), &[], std::slice::from_ref(&x), false, false, false)?;
            engine::grad(&[y], &[], &[x], false, false, false)
        },
        GRAPH_FREED,
        Runtime,
    );
    e.err(
        "backward through a freed subgraph from a new output",
        || {
            let x = leaf(&[3]);
            let h = unary::sin(&x)?;
            engine::backward(&[reduce::sum(&h, None, false, None)?], &[], false, false, None)?;
            // a new op on top of the freed sin node
            engine::backward(&[reduce::mean(&h, None, false, None)?], &[], false, false, None)
        },
        GRAPH_FREED,
        Runtime,
    );
    e.ok(
        "backward twice with retain_graph accumulates twice",
        || {
            let x = leaf(&[3]);
            let y = reduce::sum(&arith::mul(&x, &x)?, None, false, None)?;
            engine::backward(std::slice::from_ref(&y), &[], true, false, None)?;
            engine::backward(&[y], &[], false, false, None)?;
            Ok(x)
        },
        // d sum(x^2)/dx = 2x = 2, twice
        |x| match x.grad().map(|g| g.to_vec::<f64>()) {
            Some(g) if g == [4.0, 4.0, 4.0] => Ok(()),
            g => Err(format!("x.grad = {g:?}, expected [4, 4, 4]")),
        },
    );
    // as in PyTorch, a graph without saved tensors can be run again
    e.ok(
        "backward twice through ops that save nothing",
        || {
            let x = leaf(&[3]);
            let y = reduce::sum(&arith::add(&x, &Tensor::wrapped_scalar(1.0))?, None, false, None)?;
            engine::backward(std::slice::from_ref(&y), &[], false, false, None)?;
            engine::backward(&[y], &[], false, false, None)?;
            Ok(x)
        },
        |x| match x.grad().map(|g| g.to_vec::<f64>()) {
            Some(g) if g == [2.0, 2.0, 2.0] => Ok(()),
            g => Err(format!("x.grad = {g:?}, expected [2, 2, 2]")),
        },
    );
    e.finish();
}

#[test]
fn grad_state_errors() {
    let mut e = Expect::default();
    e.err(
        "int64 tensor requires grad",
        || Tensor::from_vec(vec![1i64, 2], &[2])?.set_requires_grad(true),
        "only Tensors of floating point dtype can require gradients",
        Runtime,
    );
    e.err(
        "requires_grad=False on a non-leaf",
        || unary::exp(&leaf(&[2]))?.set_requires_grad(false),
        "you can only change requires_grad flags of leaf variables. If you want to use a computed variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().",
        Runtime,
    );
    e.err(
        "in-place op on a leaf that requires grad",
        || {
            let x = leaf(&[2]);
            inplace::apply_inplace(&x, |s| arith::add(s, &Tensor::wrapped_scalar(1.0)))
        },
        "a leaf Variable that requires grad is being used in an in-place operation.",
        Runtime,
    );
    e.err(
        "saved output modified in place",
        || {
            let x = leaf(&[3]);
            let y = unary::exp(&x)?;
            inplace::apply_inplace(&y, |s| arith::add(s, &Tensor::wrapped_scalar(1.0)))?;
            engine::backward(&[reduce::sum(&y, None, false, None)?], &[], false, false, None)
        },
        "one of the variables needed for gradient computation has been modified by an inplace operation: [torch.DoubleTensor [3]], which is output 0 of Exp, is at version 1; expected version 0 instead. Hint: enable anomaly detection to find the operation that failed to compute its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).",
        Runtime,
    );
    e.err(
        "mean of an int64 tensor",
        || reduce::mean(&Tensor::from_vec(vec![1i64, 2], &[2])?, None, false, None),
        "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: Long",
        NotImplemented,
    );
    e.err(
        "abs of a bool tensor",
        || rustgrad_core::ops::unary::abs(&Tensor::from_vec(vec![true, false], &[2])?),
        "\"abs_cpu\" not implemented for 'Bool'",
        NotImplemented,
    );
    e.finish();
}

#[test]
fn where_condition_dtype() {
    let mut e = Expect::default();
    // PyTorch prints the condition's ScalarType (`Double`, `Float`, `Long`), not `float64`
    e.err(
        "where with a float64 condition",
        || compare::where_(&f64s(&[2]), &f64s(&[2]), &f64s(&[2])),
        "where expected condition to be a boolean tensor, but got a tensor with dtype Double",
        Runtime,
    );
    e.err(
        "where with an int64 condition",
        || compare::where_(&Tensor::from_vec(vec![1i64, 0], &[2])?, &f64s(&[2]), &f64s(&[2])),
        "where expected condition to be a boolean tensor, but got a tensor with dtype Long",
        Runtime,
    );
    e.finish();
}

/// The error values themselves: `kind()` maps to the Python exception PyTorch raises.
#[test]
fn error_kinds() {
    assert_eq!(Error::DimOutOfRange { low: -1, high: 0, got: 3 }.kind(), ErrorKind::Index);
    assert_eq!(Error::BroadcastMismatch { a: 2, b: 3, dim: 0 }.kind(), ErrorKind::Runtime);
    assert_eq!(Error::GraphFreed.kind(), ErrorKind::Runtime);
    assert_eq!(Error::kernel_missing("pow", rustgrad_core::DType::Bool).kind(), ErrorKind::NotImplemented);
    assert_eq!(Error::ImplicitGradNonScalar.kind(), ErrorKind::Runtime);
    assert_eq!(Error::NoGradFn(0).kind(), ErrorKind::Runtime);
    assert_eq!(Error::Value("v".into()).kind(), ErrorKind::Value);
    assert_eq!(Error::Type("t".into()).kind(), ErrorKind::Type);
}
