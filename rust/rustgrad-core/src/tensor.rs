//! The tensor: a view of a storage plus its autograd state.

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::graph::{Edge, GradHook, NodeRef, WeakNodeRef};
use crate::shape::{self, Shape, Strides};
use crate::storage::{IntoStorage, Storage};
use crate::with_dtype;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The version of a storage's values, and what last wrote them in place.
///
/// One word: what last wrote the values is kept in a table beside it ([`LAST_WRITES`]), since
/// most tensors are never written in place and every tensor has a counter.
#[derive(Default)]
pub struct Version {
    /// The count in bits 0-62; bit 63 ([`NOTED`]) says the table has an entry for this counter.
    value: AtomicU64,
}

/// Bit of [`Version::value`] set once a write was noted in [`LAST_WRITES`].
const NOTED: u64 = 1 << 63;

/// Which in-place op last wrote the values behind a version counter, and where, by the
/// counter's address. An entry lives as long as its counter (removed when the counter drops).
type LastWrite = (&'static str, Option<crate::sites::Site>);
static LAST_WRITES: Mutex<Option<rustc_hash::FxHashMap<usize, LastWrite>>> = Mutex::new(None);

impl Version {
    /// A counter starting at `value`.
    pub fn starting_at(value: u64) -> Version {
        Version { value: AtomicU64::new(value & !NOTED) }
    }

    /// The current version.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed) & !NOTED
    }
    /// Records which in-place op last wrote the values, and where.
    pub fn note_write(&self, op: &'static str, site: Option<crate::sites::Site>) {
        let mut table = LAST_WRITES.lock();
        table.get_or_insert_with(Default::default).insert(self.key(), (op, site));
        self.value.fetch_or(NOTED, Ordering::Relaxed);
    }
    /// Which in-place op last wrote the values, and where, if recorded.
    pub fn last_write(&self) -> Option<(&'static str, Option<crate::sites::Site>)> {
        if self.value.load(Ordering::Relaxed) & NOTED == 0 {
            return None;
        }
        LAST_WRITES.lock().as_ref().and_then(|t| t.get(&self.key()).cloned())
    }
    fn key(&self) -> usize {
        self as *const Version as usize
    }
}

impl Drop for Version {
    fn drop(&mut self) {
        if *self.value.get_mut() & NOTED != 0 {
            if let Some(table) = LAST_WRITES.lock().as_mut() {
                table.remove(&self.key());
            }
        }
    }
}

/// Which elements of which storage a tensor shows.
#[derive(Clone)]
pub struct TensorData {
    /// The shared buffer.
    pub storage: Arc<Storage>,
    /// Size of each dimension.
    pub shape: Shape,
    /// Step in elements along each dimension.
    pub strides: Strides,
    /// Index of the first element in the storage.
    pub offset: usize,
}

impl TensorData {
    /// A contiguous tensor owning `values`.
    pub fn from_vec<T: IntoStorage>(values: Vec<T>, shape: Shape) -> Self {
        debug_assert_eq!(values.len(), shape::numel(&shape));
        let strides = shape::contiguous_strides(&shape);
        TensorData { storage: Arc::new(Storage::from_vec(values)), shape, strides, offset: 0 }
    }

    /// A tensor of one element, `value`, of `shape` (whose sizes are all 1): the fast path of
    /// element-wise kernels on 0-d and one-element operands.
    #[inline]
    pub fn one<T: IntoStorage>(value: T, shape: Shape) -> Self {
        debug_assert_eq!(shape::numel(&shape), 1);
        let strides = shape::contiguous_strides(&shape);
        TensorData { storage: Arc::new(Storage::one(value)), shape, strides, offset: 0 }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        shape::numel(&self.shape)
    }

    /// Whether the elements are in row-major order without gaps.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        shape::is_contiguous(&self.shape, &self.strides)
    }

    /// The same elements seen through another shape/strides (a view).
    pub fn restrided(&self, shape: Shape, strides: Strides, offset: usize) -> TensorData {
        TensorData { storage: self.storage.clone(), shape, strides, offset }
    }

    /// The version counter of the values: the storage's, shared with every view and
    /// `detach()` (`.data` gets a storage of its own, [`Storage::with_own_counter`]).
    #[inline]
    pub fn counter(&self) -> &Version {
        self.storage.version()
    }

    /// The version of the values.
    pub fn version(&self) -> u64 {
        self.counter().get()
    }

    /// Marks the values as written in place.
    pub fn bump_version(&self) {
        self.counter().value.fetch_add(1, Ordering::Relaxed);
    }

    /// The elements in row-major order as a slice, if they are contiguous and of type `T`.
    ///
    /// # Safety
    /// No one may write the storage while the slice lives (Note [Storage aliasing]).
    #[inline]
    pub unsafe fn contiguous_slice<T: Element>(&self) -> Option<&[T]> {
        if T::DTYPE != self.dtype() || !self.is_contiguous() {
            return None;
        }
        let n = self.numel();
        if n == 0 {
            // A zero-size view may start anywhere, even past the end of its storage.
            return Some(&[]);
        }
        // SAFETY: dtype checked; caller guarantees no concurrent writer.
        let all = unsafe { self.storage.slice::<T>() };
        Some(&all[self.offset..self.offset + n])
    }

    /// Calls `f` with the storage offset of every element, in row-major order.
    pub fn for_each_offset(&self, mut f: impl FnMut(usize)) {
        for_each_strided(&self.shape, &self.strides, self.offset, &mut f);
    }

    /// The elements in row-major order, converted to `T`.
    pub fn to_vec<T: Element>(&self) -> Vec<T> {
        with_dtype!(self.dtype(), S => self.to_vec_from::<S, T>())
    }

    fn to_vec_from<S: Element, T: Element>(&self) -> Vec<T> {
        // SAFETY: S is the storage dtype; we only read.
        unsafe {
            if let Some(s) = self.contiguous_slice::<S>() {
                if S::DTYPE == T::DTYPE {
                    let s: &[T] = std::slice::from_raw_parts(s.as_ptr() as *const T, s.len());
                    let mut out = crate::alloc::vec_with_capacity(s.len());
                    out.extend_from_slice(s);
                    return out;
                }
                return crate::alloc::collect_exact(s.len(), s.iter().map(|&v| T::cast_from(v)));
            }
            let all = self.storage.slice::<S>();
            let n = self.numel();
            if n == 1 {
                let mut out = crate::alloc::vec_with_capacity(1);
                out.push(T::cast_from(all[self.offset]));
                return out;
            }
            let mut out = crate::alloc::vec_with_capacity(n);
            let nd = self.shape.len();
            if nd == 0 {
                self.for_each_offset(|o| out.push(T::cast_from(all[o])));
                return out;
            }
            // Row by row: a unit-stride row is one run, a broadcast (zero-stride) row one value.
            let (inner, step) = (self.shape[nd - 1], self.strides[nd - 1]);
            if inner == 0 {
                return out;
            }
            for_each_strided(&self.shape[..nd - 1], &self.strides[..nd - 1], self.offset, &mut |base| match step {
                1 => out.extend(all[base..base + inner].iter().map(|&v| T::cast_from(v))),
                0 => out.extend(std::iter::repeat_n(T::cast_from(all[base]), inner)),
                _ => out.extend((0..inner).map(|i| T::cast_from(all[base + i * step]))),
            });
            out
        }
    }

    /// The element at a flat row-major position, as f64.
    pub fn get_f64(&self, flat: usize) -> f64 {
        let mut rem = flat;
        let mut off = self.offset;
        for d in (0..self.shape.len()).rev() {
            let size = self.shape[d].max(1);
            off += (rem % size) * self.strides[d];
            rem /= size;
        }
        // SAFETY: off is inside the storage by construction of the layout.
        with_dtype!(self.dtype(), S => unsafe { self.storage.slice::<S>()[off].to_f64() })
    }

    /// Writes `values` (row-major, already of this dtype) into the viewed elements.
    pub fn write_from(&self, values: &TensorData) {
        with_dtype!(self.dtype(), T => {
            let n = self.numel();
            if n > 0 && self.is_contiguous() && !self.storage.same_buffer(&values.storage) {
                // one copy from `values` (another buffer) into the elements' run
                let src = crate::kernels::values::<T>(values);
                // SAFETY: the run `offset..offset + n` lies inside the storage (a valid
                // contiguous layout), and no slice of it is alive: `src` reads another buffer.
                let dst = unsafe { &mut self.storage.slice_mut::<T>()[self.offset..self.offset + n] };
                dst.copy_from_slice(&src[..n]);
                self.bump_version();
                return;
            }
            let src: Vec<T> = values.to_vec::<T>();
            // SAFETY: `src` is a private copy, so no slice of this storage is alive.
            let dst = unsafe { self.storage.slice_mut::<T>() };
            let mut i = 0;
            self.for_each_offset(|o| {
                dst[o] = src[i];
                i += 1;
            });
        });
        self.bump_version();
    }

    /// [`TensorData::write_from`] for a layout with repeated addresses (an expanded tensor):
    /// writes only the elements whose value differs from the current one, so an unchanged
    /// element cannot write the old value back over a changed one at the same address.
    pub fn write_changed_from(&self, values: &TensorData) {
        with_dtype!(self.dtype(), T => {
            let src: Vec<T> = values.to_vec::<T>();
            let old: Vec<T> = self.to_vec::<T>();
            // SAFETY: `src` and `old` are private copies, so no slice of this storage is alive.
            let dst = unsafe { self.storage.slice_mut::<T>() };
            let mut i = 0;
            #[allow(clippy::eq_op)]
            self.for_each_offset(|o| {
                let (new, was) = (src[i], old[i]);
                let same = new == was || (new != new && was != was);
                if !same {
                    dst[o] = new;
                }
                i += 1;
            });
        });
        self.bump_version();
    }
}

/// Visits every offset of a strided layout in row-major order without recursion.
pub fn for_each_strided(shape: &[usize], strides: &[usize], offset: usize, f: &mut impl FnMut(usize)) {
    let n = shape::numel(shape);
    if n == 0 {
        return;
    }
    let nd = shape.len();
    if nd == 0 {
        f(offset);
        return;
    }
    let inner = shape[nd - 1];
    let inner_stride = strides[nd - 1];
    let mut index: SmallVec<[usize; 6]> = SmallVec::from_elem(0, nd);
    let mut base = offset;
    loop {
        for i in 0..inner {
            f(base + i * inner_stride);
        }
        // advance the outer dimensions
        let mut d = nd - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            base += strides[d];
            if index[d] < shape[d] {
                break;
            }
            base -= strides[d] * shape[d];
            index[d] = 0;
        }
    }
}

/// The autograd half of a tensor.
pub struct TensorInner {
    /// The values.
    pub data: TensorData,
    /// Set by the user on leaves; non-leaves require grad through `grad_fn`.
    pub requires_grad: bool,
    /// The node that made this tensor (`None` for a leaf).
    pub grad_fn: Option<NodeRef>,
    /// Which output of `grad_fn` this tensor is.
    pub output_nr: u32,
    /// Whether `retain_grad()` was called.
    pub retains_grad: bool,
    /// A Python number wrapped into a 0-d tensor (affects type promotion only).
    pub wrapped_number: bool,
    /// Created under inference mode (PyTorch's inference tensors).
    pub is_inference: bool,
    /// What views, leaves that require grad, hooks and lost-history notes keep: out of line
    /// (allocated on first use), so that every other tensor stays small.
    pub extras: Option<Box<TensorExtras>>,
}

/// What few tensors have (see [`TensorInner::extras`]).
#[derive(Default)]
pub struct TensorExtras {
    /// Hooks of a leaf (`register_hook`); a non-leaf's live on its `grad_fn`.
    pub hooks: Vec<(u64, GradHook)>,
    /// Hooks run after a gradient was accumulated into this leaf's `.grad`.
    pub post_accumulate_hooks: Vec<(u64, PostAccumulateHook)>,
    /// How the tensor lost (or never had) a history, for `autograd.explain`.
    pub origin: Origin,
    /// Set when this tensor is a view of another (Note [Views and in-place]).
    pub view: Option<ViewMeta>,
    /// The leaf's `AccumulateGrad` node, while it lives.
    pub grad_accumulator: Option<WeakNodeRef>,
    /// The accumulated gradient (`.grad`).
    pub grad: Option<Tensor>,
    /// The forward-mode tangent and the dual level generation it belongs to
    /// ([`crate::forward_ad`]).
    pub tangent: Option<(u64, Tensor)>,
}

impl TensorInner {
    /// What this tensor contributes to type promotion.
    pub fn promotion_input(&self) -> crate::dtype::PromotionInput {
        crate::dtype::PromotionInput {
            dtype: self.data.dtype(),
            ndim: self.data.shape.len(),
            wrapped: self.wrapped_number,
        }
    }

    /// The tensor's extras, created empty on first use.
    pub fn extras_mut(&mut self) -> &mut TensorExtras {
        self.extras.get_or_insert_with(Default::default)
    }

    /// What this tensor remembers of its base, if it is a view.
    #[inline]
    pub fn view(&self) -> Option<&ViewMeta> {
        self.extras.as_deref().and_then(|e| e.view.as_ref())
    }

    /// [`TensorInner::view`], to change it.
    #[inline]
    pub fn view_mut(&mut self) -> Option<&mut ViewMeta> {
        self.extras.as_deref_mut().and_then(|e| e.view.as_mut())
    }

    /// Makes this tensor a view (`Some`), or no longer one.
    pub fn set_view(&mut self, view: Option<ViewMeta>) {
        if view.is_some() || self.extras.is_some() {
            self.extras_mut().view = view;
        }
    }

    /// The accumulated gradient (`.grad`), if any.
    #[inline]
    pub fn grad(&self) -> Option<&Tensor> {
        self.extras.as_deref().and_then(|e| e.grad.as_ref())
    }

    /// Sets (or clears) `.grad`, without the checks of [`Tensor::set_grad`].
    pub fn put_grad(&mut self, grad: Option<Tensor>) {
        if grad.is_some() || self.extras.is_some() {
            self.extras_mut().grad = grad;
        }
    }

    /// The leaf's `AccumulateGrad` node, if one was made (it may be gone).
    #[inline]
    fn grad_accumulator(&self) -> Option<WeakNodeRef> {
        self.extras.as_deref().and_then(|e| e.grad_accumulator)
    }

    /// The leaf hooks (`register_hook` on a leaf).
    pub fn hooks(&self) -> &[(u64, GradHook)] {
        self.extras.as_ref().map_or(&[], |e| &e.hooks)
    }

    /// The hooks run after `.grad` was updated.
    pub fn post_accumulate_hooks(&self) -> &[(u64, PostAccumulateHook)] {
        self.extras.as_ref().map_or(&[], |e| &e.post_accumulate_hooks)
    }

    /// How the tensor lost (or never had) a history.
    pub fn origin(&self) -> Origin {
        self.extras.as_ref().map_or(Origin::Normal, |e| e.origin.clone())
    }

    /// Records how the tensor lost its history.
    pub fn set_origin(&mut self, origin: Origin) {
        self.extras_mut().origin = origin;
    }
}

/// Why a tensor has no history although it was made from tensors that had one.
#[derive(Clone, Debug, Default)]
pub enum Origin {
    /// Nothing to explain.
    #[default]
    Normal,
    /// Computed from tensors requiring grad while grad mode was off (or in inference mode).
    #[allow(missing_docs)] // the fields are named in the doc above
    NotRecorded { inference: bool, site: Option<crate::sites::Site> },
    /// Made by `detach()` (`data: false`) or `.data` (`data: true`).
    #[allow(missing_docs)] // the fields are named in the doc above
    Detached { data: bool, site: Option<crate::sites::Site> },
}

/// An op's input as the graph records it (see [`Tensor::input_state`]).
pub struct InputState {
    /// Where the input's gradient goes (`None` if it needs none).
    pub edge: Option<Edge>,
    /// Whether the input requires grad (true with no edge for a view whose base requires grad).
    pub requires_grad: bool,
    /// Whether the input is an inference tensor.
    pub is_inference: bool,
    /// A view whose history may not be used (see [`ViewMeta::rebase_error`]; the message is
    /// read from the tensor, [`Tensor::check_view_history`], so the state stays small).
    pub stale_view: bool,
}

/// A hook run with the leaf after its `.grad` was updated.
pub type PostAccumulateHook = Arc<crate::graph::Hook<dyn Fn(&Tensor) -> Result<()> + Send + Sync>>;

/// How a view was created (PyTorch's `CreationMeta`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewCreation {
    /// An ordinary view.
    Default,
    /// With grad mode off: an in-place op on it under grad mode would be ambiguous.
    NoGrad,
    /// Returned by a custom Function: an in-place op would bypass its backward.
    CustomFunction,
    /// One of several views returned by one op (`split`, `chunk`, `unbind`) under grad mode.
    MultiOutput,
}

/// What a view remembers of where it comes from.
///
/// Note [Views and in-place]: as in PyTorch, a view shares its base's storage and version
/// counter. An in-place op on a view changes the base too, so the base's history is rewritten:
/// its `grad_fn` becomes a `CopySlices` node wrapping the in-place op's node. Every view of that
/// base then has a stale `grad_fn`; it is regenerated lazily, as an `AsStridedBackward0` of the
/// base, the next time it is asked for (the version counter tells when: `attr_version`).
pub struct ViewMeta {
    /// The tensor that owns the storage (never itself a view).
    pub base: Tensor,
    /// How the view (or one it was taken from) came to be: some may not be modified in place.
    pub creation: ViewCreation,
    /// The version at which `grad_fn` was last set for this view.
    pub attr_version: u64,
    /// Set when the base changed in place but this view's history may not be rewritten (a
    /// no_grad or multi-output view): PyTorch's error, raised whenever the history is used.
    pub rebase_error: Option<Arc<str>>,
    /// Made with grad mode on (a no_grad view of a view taken with grad mode off inherits its
    /// creation; Note [Composite results are not views] drops only the others).
    pub made_recording: bool,
}

/// Shared cell behind a [`Tensor`] handle.
pub struct TensorCell {
    inner: Mutex<TensorInner>,
    /// An opaque, non-owning handle a language binding may keep here to find the one wrapper
    /// object of this tensor (PyTorch's `pyobj_slot`). 0 when there is none.
    pub binding_handle: AtomicUsize,
}

/// A tensor handle. Cloning it shares the same tensor (like a second Python reference).
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<TensorCell>);

impl Tensor {
    /// A leaf tensor showing `data`, without autograd history.
    pub fn from_data(data: TensorData) -> Tensor {
        Tensor(Arc::new(TensorCell {
            inner: Mutex::new(TensorInner {
                data,
                requires_grad: false,
                grad_fn: None,
                output_nr: 0,
                retains_grad: false,
                wrapped_number: false,
                is_inference: crate::grad_mode::is_inference_mode_enabled(),
                extras: None,
            }),
            binding_handle: AtomicUsize::new(0),
        }))
    }

    /// A view of `of` showing `data` (which must share `of`'s storage): records the base.
    pub fn new_view(of: &Tensor, data: TensorData) -> Tensor {
        let recording = crate::grad_mode::is_recording();
        let (base, parent, inference) = {
            let g = of.fresh();
            let (base, parent) = match g.view() {
                Some(v) => (v.base.clone(), v.creation),
                None => (of.clone(), ViewCreation::Default),
            };
            (base, parent, g.is_inference)
        };
        let creation = match parent {
            ViewCreation::Default if !recording => ViewCreation::NoGrad,
            other => other,
        };
        let attr_version = data.version();
        let t = Tensor::from_data(data);
        if inference {
            // A view of an inference tensor has no autograd state (it does not require grad,
            // whatever its base), as in PyTorch.
            t.lock().is_inference = true;
            return t;
        }
        {
            let mut g = t.lock();
            g.is_inference = inference;
            // A view has no flag of its own: it requires grad while its base does
            // (Note [Views share their base's requires_grad]).
            g.set_view(Some(ViewMeta { base, creation, attr_version, rebase_error: None, made_recording: recording }));
        }
        t
    }

    /// Marks the views an op returned several of (`split`, `unbind`) under grad mode: in-place
    /// ops on them are refused, as in PyTorch.
    pub fn mark_multi_output_view(&self) {
        if let Some(v) = self.lock().view_mut() {
            if v.creation == ViewCreation::Default {
                v.creation = ViewCreation::MultiOutput;
            }
        }
    }

    /// The error PyTorch raises when this view's history is asked for after its base changed in
    /// place (see [`ViewMeta::rebase_error`]).
    pub fn check_view_history(&self) -> Result<()> {
        match self.fresh().view().and_then(|v| v.rebase_error.clone()) {
            Some(msg) => Err(Error::runtime(msg.to_string())),
            None => Ok(()),
        }
    }

    /// Marks a view as returned by a custom Function (in-place ops on it are then refused).
    pub fn mark_custom_function_view(&self) {
        if let Some(v) = self.lock().view_mut() {
            v.creation = ViewCreation::CustomFunction;
        }
    }

    /// A contiguous tensor owning `values` with the given shape.
    /// The element type picks the dtype (`f32` gives float32, `i64` int64, `bool` bool); a
    /// length that does not match the shape is an [`Error::Value`].
    ///
    /// ```
    /// use rustgrad_core::Tensor;
    /// # fn main() -> rustgrad_core::Result<()> {
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(x.shape().as_slice(), &[2, 2]);
    /// assert_eq!(x.dtype(), rustgrad_core::DType::F32);
    /// assert!(Tensor::from_vec(vec![1i64, 2, 3], &[2, 2]).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_vec<T: IntoStorage>(values: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        if values.len() != shape::numel(shape) {
            return Err(Error::Value(format!(
                "{} values cannot fill a tensor of shape {}",
                values.len(),
                shape::fmt_shape(shape)
            )));
        }
        Ok(Tensor::from_data(TensorData::from_vec(values, shape.into())))
    }

    /// A 0-d tensor.
    ///
    /// ```
    /// let x = rustgrad_core::Tensor::scalar(2.5f64);
    /// assert_eq!((x.ndim(), x.item_f64().unwrap()), (0, 2.5));
    /// ```
    pub fn scalar<T: IntoStorage>(value: T) -> Tensor {
        Tensor::from_data(TensorData::from_vec(vec![value], Shape::new()))
    }

    /// A Python number as a 0-d tensor that promotes like a number.
    pub fn wrapped_scalar<T: IntoStorage>(value: T) -> Tensor {
        let t = Tensor::scalar(value);
        t.lock().wrapped_number = true;
        t
    }

    /// Locks the tensor's autograd state.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, TensorInner> {
        self.0.inner.lock()
    }

    /// The state of a tensor no one else holds (a result being made), without locking.
    #[inline]
    pub fn unique_mut(&mut self) -> Option<&mut TensorInner> {
        Arc::get_mut(&mut self.0).map(|cell| cell.inner.get_mut())
    }

    /// Runs `f` on the state of two tensors locked together: in address order, so two threads
    /// locking the same pair cannot deadlock, and once if they are the same tensor. `f` must
    /// not lock tensors.
    #[inline]
    pub fn with_data_pair<R>(a: &Tensor, b: &Tensor, f: impl FnOnce(&TensorInner, &TensorInner) -> R) -> R {
        if a.same(b) {
            let g = a.lock();
            return f(&g, &g);
        }
        if Arc::as_ptr(&a.0) < Arc::as_ptr(&b.0) {
            let ga = a.lock();
            let gb = b.lock();
            f(&ga, &gb)
        } else {
            let gb = b.lock();
            let ga = a.lock();
            f(&ga, &gb)
        }
    }

    /// The viewed data (cheap: two reference-count increments).
    #[inline]
    pub fn data(&self) -> TensorData {
        self.lock().data.clone()
    }

    /// The size of each dimension.
    pub fn shape(&self) -> Shape {
        self.lock().data.shape.clone()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.lock().data.dtype()
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.lock().data.shape.len()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.lock().data.numel()
    }

    /// What this tensor contributes to type promotion.
    pub fn promotion_input(&self) -> crate::dtype::PromotionInput {
        self.lock().promotion_input()
    }

    /// Whether this 0-d tensor stands for a number (`x * 2`), for type promotion.
    pub fn is_wrapped_number(&self) -> bool {
        self.lock().wrapped_number
    }

    /// Note [Views share their base's requires_grad]: as in PyTorch, a view requires grad if
    /// it has a `grad_fn`, was flagged itself, or its base requires grad now, even when the
    /// view was taken before `base.requires_grad_()` or under `no_grad`. Such a view has no
    /// edge of its own: ops on it are recorded but send it no gradient, and in-place ops on
    /// it are refused like those on a view of a leaf.
    pub fn requires_grad(&self) -> bool {
        let g = self.fresh();
        if g.requires_grad || g.grad_fn.is_some() {
            return true;
        }
        let base = match g.view() {
            Some(v) => v.base.clone(),
            None => return false,
        };
        drop(g);
        base.requires_grad()
    }

    /// Whether the tensor has no `grad_fn` (made by the user, or not requiring grad).
    pub fn is_leaf(&self) -> bool {
        self.fresh().grad_fn.is_none()
    }

    /// The node that made this tensor, or `None` for a leaf.
    pub fn grad_fn(&self) -> Option<NodeRef> {
        self.fresh().grad_fn.clone()
    }

    /// The locked state, with a view's `grad_fn` regenerated first if the base changed.
    #[inline]
    pub fn fresh(&self) -> MutexGuard<'_, TensorInner> {
        let g = self.lock();
        match g.view() {
            Some(v) if v.attr_version != g.data.version() => {
                drop(g);
                crate::inplace::refresh_view_grad_fn(self);
                self.lock()
            }
            _ => g,
        }
    }

    /// The base of a view (`t._base`).
    pub fn view_base(&self) -> Option<Tensor> {
        self.lock().view().map(|v| v.base.clone())
    }

    /// Whether the tensor was created in inference mode.
    pub fn is_inference(&self) -> bool {
        self.lock().is_inference
    }

    /// Which output of its `grad_fn` this tensor is.
    pub fn output_nr(&self) -> u32 {
        self.lock().output_nr
    }

    /// The accumulated gradient (`.grad`), if any.
    pub fn grad(&self) -> Option<Tensor> {
        self.lock().grad().cloned()
    }

    /// Whether both handles are the same tensor (not only equal values).
    pub fn same(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A weak handle that does not keep the tensor alive.
    pub fn downgrade(&self) -> std::sync::Weak<TensorCell> {
        Arc::downgrade(&self.0)
    }

    /// The state, if this handle is the only strong one and the lock is free; never blocks
    /// (for a binding's garbage collector, Note [Hooks and foreign collectors] in graph.rs).
    pub fn try_lock_unique(&self) -> Option<MutexGuard<'_, TensorInner>> {
        if Arc::strong_count(&self.0) != 1 {
            return None;
        }
        self.0.inner.try_lock()
    }

    /// The shared cell behind this handle.
    pub fn cell(&self) -> &TensorCell {
        &self.0
    }

    /// A handle to an existing cell.
    pub fn from_cell(cell: Arc<TensorCell>) -> Tensor {
        Tensor(cell)
    }

    /// Sets `.grad`, checking it fits the tensor as PyTorch does.
    pub fn set_grad(&self, grad: Option<Tensor>) -> Result<()> {
        if let Some(g) = &grad {
            if g.same(self) {
                return Err(Error::runtime("can't assign Variable as its own grad"));
            }
            let (gshape, gdtype) = (g.shape(), g.dtype());
            let d = self.data();
            if gdtype != d.dtype() {
                return Err(Error::runtime(format!(
                    "attempting to assign a gradient with dtype '{}' to a tensor with grad_dtype '{}'. The gradient must match the tensor's grad_dtype (defaults to the tensor's dtype). You can set the tensor's grad_dtype attribute with a specific dtype, or None to allow any dtype. Set grad_dtype with caution. Diverging the dtypes of a tensor and its gradient may break downstream systems that assume they match.",
                    gdtype.name_cpp(),
                    d.dtype().scalar_type_name()
                )));
            }
            if gshape != d.shape {
                return Err(Error::runtime(format!(
                    "attempting to assign a gradient of size '{}' to a tensor of size '{}'. Please ensure that the gradient and the tensor are the same size",
                    shape::fmt_shape(&gshape),
                    shape::fmt_shape(&d.shape)
                )));
            }
        }
        self.lock().put_grad(grad);
        Ok(())
    }

    /// `requires_grad_(flag)` / the `requires_grad` setter.
    ///
    /// Only floating-point leaves can require grad; anything else is an error, as in PyTorch.
    ///
    /// ```
    /// use rustgrad_core::Tensor;
    /// # fn main() -> rustgrad_core::Result<()> {
    /// let w = Tensor::from_vec(vec![0.5f32, -1.0], &[2])?;
    /// w.set_requires_grad(true)?;
    /// assert!(w.requires_grad() && w.is_leaf());
    /// assert!(Tensor::from_vec(vec![1i64], &[1])?.set_requires_grad(true).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_requires_grad(&self, flag: bool) -> Result<()> {
        let mut g = self.lock();
        if g.grad_fn.is_some() {
            if !flag {
                return Err(Error::NonLeafRequiresGrad);
            }
            return Ok(());
        }
        if flag && !g.data.dtype().is_float() {
            return Err(Error::IntRequiresGrad);
        }
        if flag && g.is_inference && !crate::grad_mode::is_inference_mode_enabled() {
            return Err(Error::InferenceRequiresGrad);
        }
        g.requires_grad = flag;
        Ok(())
    }

    /// A new tensor sharing data and version counter, outside the graph.
    pub fn detach(&self) -> Tensor {
        Tensor::from_data(self.data())
    }

    /// `detach()` as the user calls it: also remembers where, for `autograd.explain`.
    pub fn detach_noting_origin(&self) -> Tensor {
        let t = self.detach();
        if self.is_inference() {
            // The detached alias of an inference tensor is one too (PyTorch).
            t.lock().is_inference = true;
        }
        if self.requires_grad() {
            t.lock().set_origin(Origin::Detached { data: false, site: crate::sites::capture() });
        }
        t
    }

    /// `.data`: shares the elements but has its own version counter (PyTorch's `variable_data`).
    pub fn variable_data(&self) -> Tensor {
        let mut d = self.data();
        d.storage = Arc::new(Storage::with_own_counter(&d.storage, 0));
        let t = Tensor::from_data(d);
        if self.requires_grad() {
            t.lock().set_origin(Origin::Detached { data: true, site: crate::sites::capture() });
        }
        t
    }

    /// How the tensor lost (or never had) a history.
    pub fn origin(&self) -> Origin {
        self.lock().origin()
    }

    /// `.data = other`: this tensor now shows `other`'s elements (keeping its autograd state).
    pub fn set_data(&self, other: &Tensor) -> Result<()> {
        let od = other.data();
        let mut g = self.lock();
        if g.grad_fn.is_none() && g.requires_grad && !od.dtype().is_float() {
            return Err(Error::IntRequiresGrad);
        }
        // The tensor keeps its count: showing another storage, it gets a counter of its own at
        // the same value (the old storage's other tensors keep theirs).
        let storage = if Arc::ptr_eq(&g.data.storage, &od.storage) {
            od.storage
        } else {
            Arc::new(Storage::with_own_counter(&od.storage, g.data.version()))
        };
        g.data = TensorData { storage, ..od };
        Ok(())
    }

    /// Where this tensor's gradient flows: its `grad_fn`, or its leaf accumulator.
    pub fn gradient_edge(&self) -> Option<Edge> {
        let g = self.fresh();
        if let Some(f) = &g.grad_fn {
            return Some(Edge { node: f.clone(), input_nr: g.output_nr });
        }
        if !g.requires_grad {
            return None;
        }
        if let Some(node) = g.grad_accumulator().and_then(|w| w.upgrade()) {
            return Some(Edge { node, input_nr: 0 });
        }
        let meta = crate::graph::InputMeta { shape: g.data.shape.clone(), dtype: g.data.dtype() };
        drop(g);
        let node = crate::ops::accumulate::new_accumulator(self, meta);
        let mut g = self.lock();
        // Another thread may have created one meanwhile: keep theirs.
        if let Some(existing) = g.grad_accumulator().and_then(|w| w.upgrade()) {
            return Some(Edge { node: existing, input_nr: 0 });
        }
        g.extras_mut().grad_accumulator = Some(node.downgrade());
        Some(Edge { node, input_nr: 0 })
    }

    /// What recording an op needs from this input, read under one lock: where its gradient
    /// goes (`None` if it needs none) and whether it is an inference tensor. Its shape and dtype
    /// go into `metas`, the next input of the node being made.
    pub fn input_state(&self, metas: &mut crate::graph::Metas) -> InputState {
        let g = self.fresh();
        metas.push_input(&g.data.shape, g.data.dtype());
        let is_inference = g.is_inference;
        let edge = if let Some(f) = &g.grad_fn {
            Some(Edge { node: f.clone(), input_nr: g.output_nr })
        } else if !g.requires_grad {
            let (base, stale_view) = match g.view() {
                Some(v) => (Some(v.base.clone()), v.rebase_error.is_some()),
                None => (None, false),
            };
            drop(g);
            let requires_grad = base.is_some_and(|b| b.requires_grad());
            return InputState { edge: None, requires_grad, is_inference, stale_view };
        } else if let Some(node) = g.grad_accumulator().and_then(|w| w.upgrade()) {
            Some(Edge { node, input_nr: 0 })
        } else {
            // A leaf whose accumulator is gone: create one (without holding the lock).
            drop(g);
            self.gradient_edge()
        };
        InputState { requires_grad: edge.is_some(), edge, is_inference, stale_view: false }
    }

    /// The viewed data and what it contributes to type promotion, under one lock.
    #[inline]
    pub fn data_and_promotion(&self) -> (TensorData, crate::dtype::PromotionInput) {
        let g = self.lock();
        (g.data.clone(), g.promotion_input())
    }

    /// Registers a gradient hook; returns its id for removal.
    pub fn register_hook(&self, hook: GradHook) -> u64 {
        let id = next_hook_id();
        let (grad_fn, output_nr) = {
            let mut g = self.fresh();
            if g.grad_fn.is_none() {
                g.extras_mut().hooks.push((id, hook));
                return id;
            }
            (g.grad_fn.clone().unwrap(), g.output_nr)
        };
        grad_fn.with(|n| n.extras_mut().tensor_hooks.push((id, output_nr, hook)));
        id
    }

    /// Removes a hook registered by [`Tensor::register_hook`]; false if it was gone.
    pub fn remove_hook(&self, id: u64) -> bool {
        let grad_fn = {
            let mut g = self.lock();
            if let Some(e) = g.extras.as_mut() {
                let before = e.hooks.len();
                e.hooks.retain(|(i, _)| *i != id);
                if e.hooks.len() != before {
                    return true;
                }
            }
            g.grad_fn.clone()
        };
        match grad_fn {
            Some(f) => f.with(|n| {
                let Some(h) = n.extras.as_mut() else { return false };
                let before = h.tensor_hooks.len();
                h.tensor_hooks.retain(|(i, _, _)| *i != id);
                h.tensor_hooks.len() != before
            }),
            None => false,
        }
    }

    /// `register_post_accumulate_grad_hook`: `hook(leaf)` runs after `.grad` was updated.
    pub fn register_post_accumulate_hook(&self, hook: PostAccumulateHook) -> Result<u64> {
        let mut g = self.fresh();
        if g.grad_fn.is_some() {
            return Err(Error::runtime("post accumulate grad hooks cannot be registered on non-leaf tensors"));
        }
        if !g.requires_grad {
            return Err(Error::runtime("cannot register a hook on a tensor that doesn't require gradient"));
        }
        let id = next_hook_id();
        g.extras_mut().post_accumulate_hooks.push((id, hook));
        Ok(id)
    }

    /// Removes a hook registered by [`Tensor::register_post_accumulate_hook`].
    pub fn remove_post_accumulate_hook(&self, id: u64) -> bool {
        let mut g = self.lock();
        let Some(e) = g.extras.as_mut() else { return false };
        let before = e.post_accumulate_hooks.len();
        e.post_accumulate_hooks.retain(|(i, _)| *i != id);
        e.post_accumulate_hooks.len() != before
    }

    /// `retain_grad()`: keep the gradient of a non-leaf in `.grad` after backward.
    pub fn retain_grad(&self) -> Result<()> {
        let (grad_fn, output_nr) = {
            let mut g = self.fresh();
            if g.grad_fn.is_none() {
                if !g.requires_grad {
                    return Err(Error::runtime("can't retain_grad on Tensor that has requires_grad=False"));
                }
                return Ok(());
            }
            if g.retains_grad {
                return Ok(());
            }
            g.retains_grad = true;
            (g.grad_fn.clone().unwrap(), g.output_nr)
        };
        let weak = self.downgrade();
        grad_fn.with(|n| n.extras_mut().retained.push((output_nr, weak)));
        Ok(())
    }

    /// Whether `retain_grad()` was called on this tensor.
    pub fn retains_grad(&self) -> bool {
        self.lock().retains_grad
    }

    /// The version counter's value.
    pub fn version(&self) -> u64 {
        self.lock().data.version()
    }

    /// Element `i` (row-major) as f64.
    pub fn get_f64(&self, i: usize) -> f64 {
        self.data().get_f64(i)
    }

    /// All elements, converted to `T`, in row-major order.
    pub fn to_vec<T: Element>(&self) -> Vec<T> {
        self.data().to_vec::<T>()
    }

    /// The only element of a one-element tensor.
    pub fn item_f64(&self) -> Result<f64> {
        let d = self.data();
        if d.numel() != 1 {
            return Err(Error::runtime(format!("a Tensor with {} elements cannot be converted to Scalar", d.numel())));
        }
        Ok(d.get_f64(0))
    }
}

static HOOK_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique id for a hook.
pub fn next_hook_id() -> u64 {
    HOOK_ID.fetch_add(1, Ordering::Relaxed)
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.data();
        write!(f, "Tensor(shape={:?}, dtype={}, values={:?})", d.shape.as_slice(), d.dtype(), d.to_vec::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tensor_takes_one_block_of_the_160_byte_class_besides_its_storage() {
        // With Arc's two counts, 152 bytes: mimalloc serves up to 152 from its 160-byte class
        // (measured: 160 bytes already take 192).
        assert!(std::mem::size_of::<TensorCell>() <= 136, "{}", std::mem::size_of::<TensorCell>());
    }

    #[test]
    fn a_view_keeps_its_base_out_of_line_and_can_stop_being_one() {
        let base = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
        let v = Tensor::new_view(&base, base.data());
        assert!(v.view_base().is_some() && base.view_base().is_none());
        v.lock().set_view(None);
        assert!(v.view_base().is_none());
        base.lock().set_view(None); // no extras: nothing to allocate
        assert!(base.lock().extras.is_none());
    }
}
