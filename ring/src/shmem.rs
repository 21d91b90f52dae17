//! Access to memory shared with another domain.
//!
//! The other end may change any byte at any time, so the trait offers copies only: there is no
//! way to obtain a reference into shared memory. Implementations must bounds-check `off` and
//! return [`OutOfBounds`] rather than touch memory outside the region.

/// An access fell outside the shared region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBounds {
    /// Offset of the access.
    pub off: usize,
    /// Length of the access.
    pub len: usize,
}

/// A region of memory shared with another domain, reached by copies only.
pub trait SharedMem {
    /// Size of the region in bytes.
    fn len(&self) -> usize;
    /// True if the region is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Loads a little-endian `u32` at `off` with acquire ordering (it pairs with the other
    /// end's release store of a producer or consumer index).
    fn load_u32_acquire(&self, off: usize) -> Result<u32, OutOfBounds>;
    /// Stores a `u32` at `off` with release ordering: everything written before is visible to
    /// the other end before the new value is.
    fn store_u32_release(&self, off: usize, val: u32) -> Result<(), OutOfBounds>;
    /// Copies `dst.len()` bytes out of the region, starting at `off`.
    fn read_bytes(&self, off: usize, dst: &mut [u8]) -> Result<(), OutOfBounds>;
    /// Copies `src` into the region, starting at `off`.
    fn write_bytes(&self, off: usize, src: &[u8]) -> Result<(), OutOfBounds>;
    /// A full memory barrier (`xen_mb`): orders earlier loads and stores before later ones.
    fn full_barrier(&self);
}

/// Implements [`SharedMem`] for a type by passing every call to its field `$field`, a
/// `$inner: SharedMem` or a pointer that dereferences to one: for wrappers that add ownership or bookkeeping to a
/// region, such as grants or mappings.
#[macro_export]
macro_rules! delegate_shared_mem {
    ($ty:ty, $field:ident: $inner:ty) => {
        impl $crate::shmem::SharedMem for $ty {
            fn len(&self) -> usize {
                <$inner as $crate::shmem::SharedMem>::len(&self.$field)
            }
            fn load_u32_acquire(&self, off: usize) -> Result<u32, $crate::shmem::OutOfBounds> {
                <$inner as $crate::shmem::SharedMem>::load_u32_acquire(&self.$field, off)
            }
            fn store_u32_release(
                &self,
                off: usize,
                val: u32,
            ) -> Result<(), $crate::shmem::OutOfBounds> {
                <$inner as $crate::shmem::SharedMem>::store_u32_release(&self.$field, off, val)
            }
            fn read_bytes(
                &self,
                off: usize,
                dst: &mut [u8],
            ) -> Result<(), $crate::shmem::OutOfBounds> {
                <$inner as $crate::shmem::SharedMem>::read_bytes(&self.$field, off, dst)
            }
            fn write_bytes(
                &self,
                off: usize,
                src: &[u8],
            ) -> Result<(), $crate::shmem::OutOfBounds> {
                <$inner as $crate::shmem::SharedMem>::write_bytes(&self.$field, off, src)
            }
            fn full_barrier(&self) {
                <$inner as $crate::shmem::SharedMem>::full_barrier(&self.$field)
            }
        }
    };
}

/// Checks that `off..off+len` lies in a region of `size` bytes.
pub fn check_range(off: usize, len: usize, size: usize) -> Result<(), OutOfBounds> {
    match off.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(OutOfBounds { off, len }),
    }
}

/// Plain-memory [`SharedMem`] for host tests and fakes. Interior mutability through
/// `RefCell`, so a test can play both ends of a ring.
#[derive(Debug, Default)]
pub struct LocalMem {
    bytes: core::cell::RefCell<alloc::vec::Vec<u8>>,
}

impl LocalMem {
    /// A zeroed region of `len` bytes.
    pub fn new(len: usize) -> Self {
        Self {
            bytes: core::cell::RefCell::new(alloc::vec![0; len]),
        }
    }
}

use byteorder::ByteOrder as _;

impl SharedMem for LocalMem {
    fn len(&self) -> usize {
        self.bytes.borrow().len()
    }
    fn load_u32_acquire(&self, off: usize) -> Result<u32, OutOfBounds> {
        let mut b = [0u8; 4];
        self.read_bytes(off, &mut b)?;
        Ok(byteorder::LittleEndian::read_u32(&b))
    }
    fn store_u32_release(&self, off: usize, val: u32) -> Result<(), OutOfBounds> {
        let mut b = [0u8; 4];
        byteorder::LittleEndian::write_u32(&mut b, val);
        self.write_bytes(off, &b)
    }
    fn read_bytes(&self, off: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        let b = self.bytes.borrow();
        check_range(off, dst.len(), b.len())?;
        let src = b.get(off..off + dst.len()).ok_or(OutOfBounds {
            off,
            len: dst.len(),
        })?;
        dst.copy_from_slice(src);
        Ok(())
    }
    fn write_bytes(&self, off: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        let mut b = self.bytes.borrow_mut();
        check_range(off, src.len(), b.len())?;
        let dst = b.get_mut(off..off + src.len()).ok_or(OutOfBounds {
            off,
            len: src.len(),
        })?;
        dst.copy_from_slice(src);
        Ok(())
    }
    fn full_barrier(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_mem_bounds() {
        let m = LocalMem::new(16);
        assert!(m.write_bytes(12, &[1, 2, 3, 4]).is_ok());
        assert_eq!(
            m.write_bytes(13, &[1, 2, 3, 4]),
            Err(OutOfBounds { off: 13, len: 4 })
        );
        assert_eq!(m.load_u32_acquire(12), Ok(0x0403_0201));
        assert!(m.load_u32_acquire(usize::MAX - 1).is_err());
        assert!(check_range(usize::MAX, 2, usize::MAX).is_err());
    }
}
