//! Storage: one flat buffer shared by every tensor that views it.
//!
//! Note [Storage aliasing]: like PyTorch's, a storage is plain memory with no lock. Tensors
//! sharing it read and write the same elements; concurrent writes to one storage from several
//! threads are a data race the user must avoid, exactly as in PyTorch and numpy. Every kernel
//! in this crate reads its inputs completely before it writes an output it allocated itself,
//! and in-place kernels compute into a fresh buffer before copying, so aliasing inputs and
//! outputs (`x.add_(x)`) is always well defined.

use crate::dtype::{DType, Element};
use std::any::Any;
use std::ptr::NonNull;

enum Owner {
    F32(#[allow(dead_code)] Vec<f32>),
    F64(#[allow(dead_code)] Vec<f64>),
    I64(#[allow(dead_code)] Vec<i64>),
    Bool(#[allow(dead_code)] Vec<bool>),
    U8(#[allow(dead_code)] Vec<u8>),
    I8(#[allow(dead_code)] Vec<i8>),
    I16(#[allow(dead_code)] Vec<i16>),
    I32(#[allow(dead_code)] Vec<i32>),
    F16(#[allow(dead_code)] Vec<half::f16>),
    BF16(#[allow(dead_code)] Vec<half::bf16>),
    /// Memory owned by something else (a numpy array), kept alive as long as the storage.
    Foreign(#[allow(dead_code)] Box<dyn Any + Send + Sync>),
}

/// A typed, fixed-size buffer. Its address never changes while it lives.
pub struct Storage {
    ptr: NonNull<u8>,
    len: usize,
    dtype: DType,
    _owner: Owner,
}

// SAFETY: the buffer is plain data owned by `_owner` (Send + Sync); see Note [Storage aliasing].
unsafe impl Send for Storage {}
unsafe impl Sync for Storage {}

/// A buffer that can back a storage.
pub trait IntoStorage: Element {
    fn into_storage(v: Vec<Self>) -> Storage;
}

macro_rules! impl_into_storage {
    ($t:ty, $variant:ident) => {
        impl IntoStorage for $t {
            fn into_storage(mut v: Vec<$t>) -> Storage {
                let ptr = NonNull::new(v.as_mut_ptr() as *mut u8).expect("Vec pointer is never null");
                Storage { ptr, len: v.len(), dtype: <$t as Element>::DTYPE, _owner: Owner::$variant(v) }
            }
        }
    };
}
impl_into_storage!(f32, F32);
impl_into_storage!(f64, F64);
impl_into_storage!(i64, I64);
impl_into_storage!(bool, Bool);
impl_into_storage!(u8, U8);
impl_into_storage!(i8, I8);
impl_into_storage!(i16, I16);
impl_into_storage!(i32, I32);
impl_into_storage!(half::f16, F16);
impl_into_storage!(half::bf16, BF16);

impl Storage {
    /// Takes ownership of a vector without copying.
    pub fn from_vec<T: IntoStorage>(v: Vec<T>) -> Self {
        T::into_storage(v)
    }

    /// Wraps memory owned elsewhere (zero-copy import).
    ///
    /// # Safety
    /// `ptr` must point to `len` valid, aligned elements of `dtype` that stay valid and are
    /// not freed while `owner` lives.
    pub unsafe fn from_foreign(ptr: *mut u8, len: usize, dtype: DType, owner: Box<dyn Any + Send + Sync>) -> Self {
        let ptr = NonNull::new(ptr).unwrap_or(NonNull::dangling());
        Storage { ptr, len, dtype, _owner: Owner::Foreign(owner) }
    }

    /// Whether the buffer is this storage's own (not memory lent by numpy).
    pub fn is_owned(&self) -> bool {
        !matches!(self._owner, Owner::Foreign(_))
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start of the buffer, for zero-copy export.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
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
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr() as *const T, self.len) }
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
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr() as *mut T, self.len) }
    }
}
