//! Storage: one flat buffer shared by every tensor that views it.
//!
//! Note [Storage aliasing]: like PyTorch's, a storage is plain memory with no lock. Tensors
//! sharing it read and write the same elements; concurrent writes to one storage from several
//! threads are a data race the user must avoid, exactly as in PyTorch and numpy. Every kernel
//! in this crate reads its inputs completely before it writes an output it allocated itself,
//! and in-place kernels compute into a fresh buffer before copying, so aliasing inputs and
//! outputs (`x.add_(x)`) is always well defined.

use crate::dtype::{DType, Element};
use crate::tensor::Version;
use std::any::Any;
use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::Arc;

/// Who frees the buffer.
enum Owner {
    /// The storage: the buffer is a `Vec` of its dtype taken apart (`ptr` and `len` are the
    /// storage's own; this is the capacity), rebuilt and dropped with the storage.
    Vec { capacity: usize },
    /// Something else (a numpy array), kept alive as long as the storage. Boxed twice so the
    /// owner takes two words, not three (every storage pays for the largest variant).
    #[allow(clippy::redundant_allocation)]
    Foreign(#[allow(dead_code)] Box<Box<dyn Any + Send + Sync>>),
    /// Another storage whose bytes this one shows as another dtype (`view(dtype)`): kept alive,
    /// and its version counter is this storage's too.
    Alias(Arc<Storage>),
    /// Another storage whose elements this one shows with a version counter of its own (`.data`,
    /// and a tensor that `set_data` moved to another storage keeping its count).
    Counted(Arc<Storage>),
    /// The storage itself: at most [`INLINE_BYTES`] of elements (0-d and one-element tensors),
    /// kept here instead of in a buffer of their own. `ptr` is unused ([`Storage::as_ptr`]).
    Inline(UnsafeCell<u64>),
}

/// Elements of at most this many bytes live inside the storage ([`Owner::Inline`]).
pub const INLINE_BYTES: usize = 8;

/// A typed, fixed-size buffer, with the version counter of its values. Its address never
/// changes while it lives: it is put in an `Arc` when made and read only from there, so elements
/// kept inside it ([`Owner::Inline`]) stay where [`Storage::as_ptr`] said they were.
///
/// The counter lives here, not in a block of its own or in every tensor, so a tensor takes one
/// allocation and a word less. A tensor that needs a counter of its own (`.data`) gets a storage
/// of its own that shows the same elements ([`Storage::with_own_counter`]); compare buffers,
/// not storages, to find aliasing ([`Storage::same_buffer`]).
pub struct Storage {
    ptr: NonNull<u8>,
    len: usize,
    dtype: DType,
    owner: Owner,
    version: Version,
}

// SAFETY: the buffer is plain data owned by `owner` (Send + Sync); see Note [Storage aliasing].
unsafe impl Send for Storage {}
unsafe impl Sync for Storage {}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Owner::Vec { capacity } = self.owner {
            crate::with_dtype!(self.dtype, T => {
                // SAFETY: `ptr`, `len` and `capacity` are those of the `Vec<T>` this storage was
                // made from (`into_storage`), and nothing else frees it.
                drop(unsafe { Vec::<T>::from_raw_parts(self.ptr.as_ptr() as *mut T, self.len, capacity) })
            })
        }
    }
}

/// A buffer that can back a storage.
pub trait IntoStorage: Element {
    /// A storage owning the values.
    fn into_storage(v: Vec<Self>) -> Storage;
}

impl<T: Element> IntoStorage for T {
    fn into_storage(v: Vec<T>) -> Storage {
        let bytes = std::mem::size_of_val(v.as_slice());
        if bytes <= INLINE_BYTES && std::mem::align_of::<T>() <= std::mem::align_of::<u64>() {
            let mut word = 0u64;
            // SAFETY: `bytes` (at most 8) bytes are read from the vector's elements and written
            // into the 8-byte word.
            unsafe { std::ptr::copy_nonoverlapping(v.as_ptr() as *const u8, &mut word as *mut u64 as *mut u8, bytes) };
            return Storage::inline(word, v.len(), T::DTYPE);
        }
        let mut v = std::mem::ManuallyDrop::new(v);
        let ptr = NonNull::new(v.as_mut_ptr() as *mut u8).expect("Vec pointer is never null");
        Storage {
            ptr,
            len: v.len(),
            dtype: T::DTYPE,
            owner: Owner::Vec { capacity: v.capacity() },
            version: Version::default(),
        }
    }
}

impl Storage {
    /// Takes ownership of a vector without copying.
    pub fn from_vec<T: IntoStorage>(v: Vec<T>) -> Self {
        T::into_storage(v)
    }

    /// A storage of the one element `value`, kept inside it when it fits (no buffer is
    /// allocated at all, not even one that is copied and freed).
    #[inline]
    pub fn one<T: IntoStorage>(value: T) -> Self {
        if std::mem::size_of::<T>() > INLINE_BYTES || std::mem::align_of::<T>() > std::mem::align_of::<u64>() {
            return T::into_storage(vec![value]);
        }
        let mut word = 0u64;
        // SAFETY: `T` takes at most 8 bytes, aligned no more than a u64's; the word holds them.
        unsafe { std::ptr::write(&mut word as *mut u64 as *mut T, value) };
        Storage::inline(word, 1, T::DTYPE)
    }

    /// A storage of `len` elements of `dtype` whose bytes are `word`'s ([`Owner::Inline`]).
    #[inline]
    fn inline(word: u64, len: usize, dtype: DType) -> Self {
        Storage {
            ptr: NonNull::dangling(),
            len,
            dtype,
            owner: Owner::Inline(UnsafeCell::new(word)),
            version: Version::default(),
        }
    }

    /// Wraps memory owned elsewhere (zero-copy import).
    ///
    /// # Safety
    /// `ptr` must point to `len` valid, aligned elements of `dtype` that stay valid and are
    /// not freed while `owner` lives.
    pub unsafe fn from_foreign(ptr: *mut u8, len: usize, dtype: DType, owner: Box<dyn Any + Send + Sync>) -> Self {
        let ptr = NonNull::new(ptr).unwrap_or(NonNull::dangling());
        Storage { ptr, len, dtype, owner: Owner::Foreign(Box::new(owner)), version: Version::default() }
    }

    /// `of`'s bytes seen as `len` elements of `dtype`, sharing its version counter.
    ///
    /// # Safety
    /// `of`'s buffer must hold at least `len` elements of `dtype`, aligned for it, and every
    /// bit pattern of those bytes must be a valid `dtype` value.
    pub unsafe fn reinterpret(of: Arc<Storage>, len: usize, dtype: DType) -> Self {
        // A reinterpretation of a reinterpretation points at the first storage: no chains.
        let of = match &of.owner {
            Owner::Alias(first) => first.clone(),
            _ => of,
        };
        let ptr = NonNull::new(of.as_ptr()).unwrap_or(NonNull::dangling());
        Storage { ptr, len, dtype, owner: Owner::Alias(of), version: Version::default() }
    }

    /// `of`'s elements with a version counter of their own, starting at `version`.
    pub fn with_own_counter(of: &Arc<Storage>, version: u64) -> Self {
        // A counted alias of a counted alias points at the first storage: its counter is unused.
        let of = match &of.owner {
            Owner::Counted(first) => first.clone(),
            _ => of.clone(),
        };
        Storage {
            ptr: NonNull::new(of.as_ptr()).unwrap_or(NonNull::dangling()),
            len: of.len,
            dtype: of.dtype,
            owner: Owner::Counted(of),
            version: Version::starting_at(version),
        }
    }

    /// Whether the two storages show the same buffer as the same dtype (one may be the other,
    /// or a `.data` alias of it).
    pub fn same_buffer(&self, other: &Storage) -> bool {
        std::ptr::eq(self, other) || (self.as_ptr() == other.as_ptr() && self.dtype == other.dtype && self.len > 0)
    }

    /// The version counter of the values (shared with the storage this one reinterprets).
    #[inline]
    pub fn version(&self) -> &Version {
        match &self.owner {
            Owner::Alias(of) => of.version(),
            _ => &self.version,
        }
    }

    /// Whether the buffer is this storage's own (not memory lent by numpy).
    pub fn is_owned(&self) -> bool {
        matches!(self.owner, Owner::Vec { .. } | Owner::Inline(_))
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the storage holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start of the buffer, for zero-copy export.
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        match &self.owner {
            // The storage's address is stable: it lives in an `Arc` from its creation on.
            Owner::Inline(word) => word.get() as *mut u8,
            _ => self.ptr.as_ptr(),
        }
    }

    /// The elements as a slice.
    ///
    /// # Safety
    /// `T` must be the storage's dtype, and no one may write the storage while the slice lives
    /// (see Note [Storage aliasing]).
    #[inline]
    pub unsafe fn slice<T: Element>(&self) -> &[T] {
        debug_assert_eq!(T::DTYPE, self.dtype);
        if self.len == 0 {
            return &[];
        }
        // SAFETY: guaranteed by the caller and by construction (ptr/len describe the buffer).
        unsafe { std::slice::from_raw_parts(self.as_ptr() as *const T, self.len) }
    }

    /// The elements as a mutable slice.
    ///
    /// # Safety
    /// As for [`Storage::slice`], and no other slice of this storage may be alive.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice_mut<T: Element>(&self) -> &mut [T] {
        debug_assert_eq!(T::DTYPE, self.dtype);
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts_mut(self.as_ptr() as *mut T, self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the storage's elements lie inside the storage itself.
    fn inline(s: &Arc<Storage>) -> bool {
        let (start, p) = (Arc::as_ptr(s) as usize, s.as_ptr() as usize);
        p >= start && p + INLINE_BYTES <= start + std::mem::size_of::<Storage>()
    }

    #[test]
    fn up_to_eight_bytes_of_elements_live_in_the_storage() {
        let one = Arc::new(Storage::from_vec(vec![1.5f64]));
        let two = Arc::new(Storage::from_vec(vec![1.0f32, 2.0]));
        let three = Arc::new(Storage::from_vec(vec![1.0f32, 2.0, 3.0]));
        let flags = Arc::new(Storage::from_vec(vec![true, false, true]));
        let made_inside = Arc::new(Storage::one(-3i64));
        assert!(inline(&one) && inline(&two) && inline(&flags) && inline(&made_inside) && !inline(&three));
        // SAFETY: read as its own dtype.
        assert_eq!(unsafe { made_inside.slice::<i64>() }, &[-3]);
        // SAFETY: each storage is read and written as its own dtype, one slice at a time.
        unsafe {
            assert_eq!(two.slice::<f32>(), &[1.0, 2.0]);
            assert_eq!(flags.slice::<bool>(), &[true, false, true]);
            one.slice_mut::<f64>()[0] = 2.5;
        }
        // A `.data` alias and a dtype view show the same element, wherever it lives.
        let alias = Storage::with_own_counter(&one, 0);
        assert!(alias.same_buffer(&one) && !alias.same_buffer(&two));
        // SAFETY: 8 bytes of an f64 are a valid i64.
        let bits = unsafe { Storage::reinterpret(one.clone(), 1, DType::I64) };
        // SAFETY: read-only slices of the right dtypes.
        unsafe {
            assert_eq!(alias.slice::<f64>(), &[2.5]);
            assert_eq!(bits.slice::<i64>(), &[2.5f64.to_bits() as i64]);
        }
    }
}
