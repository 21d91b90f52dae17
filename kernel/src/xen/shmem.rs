//! [`SharedMem`] over identity-mapped pages shared with another domain: volatile accesses
//! only, never a Rust reference into the page.

use core::sync::atomic::{fence, Ordering};
use pvfs_ring::shmem::{check_range, OutOfBounds, SharedMem};

/// A run of pages shared with another domain.
#[derive(Debug)]
pub struct PageMem {
    base: usize,
    len: usize,
}

impl PageMem {
    /// Wraps `len` bytes at `base`.
    ///
    /// # Safety
    /// `base..base+len` must be mapped for the life of the value and must not be used as
    /// ordinary Rust memory by anything else.
    pub unsafe fn new(base: usize, len: usize) -> Self {
        Self { base, len }
    }
}

impl SharedMem for PageMem {
    fn len(&self) -> usize {
        self.len
    }

    fn load_u32_acquire(&self, off: usize) -> Result<u32, OutOfBounds> {
        check_range(off, 4, self.len)?;
        if !off.is_multiple_of(4) {
            return Err(OutOfBounds { off, len: 4 });
        }
        // SAFETY: in range and aligned (checked above); the page is mapped (constructor
        // contract). Volatile: the other domain may write it at any time.
        let v = unsafe { core::ptr::read_volatile((self.base + off) as *const u32) };
        fence(Ordering::Acquire);
        Ok(v)
    }

    fn store_u32_release(&self, off: usize, val: u32) -> Result<(), OutOfBounds> {
        check_range(off, 4, self.len)?;
        if !off.is_multiple_of(4) {
            return Err(OutOfBounds { off, len: 4 });
        }
        fence(Ordering::Release);
        // SAFETY: as for the load.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u32, val) };
        Ok(())
    }

    fn read_bytes(&self, off: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        check_range(off, dst.len(), self.len)?;
        let src = self.base + off;
        let mut i = 0;
        // Bytes up to 8-byte alignment of the source, then whole words, then the tail.
        while i < dst.len() && !(src + i).is_multiple_of(8) {
            // SAFETY: `off + i < off + dst.len() <= len`, checked above.
            dst[i] = unsafe { core::ptr::read_volatile((src + i) as *const u8) };
            i += 1;
        }
        while i + 8 <= dst.len() {
            // SAFETY: in range (checked above) and 8-aligned (loop condition above).
            let w = unsafe { core::ptr::read_volatile((src + i) as *const u64) };
            dst[i..i + 8].copy_from_slice(&w.to_ne_bytes());
            i += 8;
        }
        while i < dst.len() {
            // SAFETY: in range, checked above.
            dst[i] = unsafe { core::ptr::read_volatile((src + i) as *const u8) };
            i += 1;
        }
        Ok(())
    }

    fn write_bytes(&self, off: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        check_range(off, src.len(), self.len)?;
        let dst = self.base + off;
        let mut i = 0;
        while i < src.len() && !(dst + i).is_multiple_of(8) {
            // SAFETY: `off + i < off + src.len() <= len`, checked above.
            unsafe { core::ptr::write_volatile((dst + i) as *mut u8, src[i]) };
            i += 1;
        }
        while i + 8 <= src.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&src[i..i + 8]);
            // SAFETY: in range (checked above) and 8-aligned (loop condition above).
            unsafe { core::ptr::write_volatile((dst + i) as *mut u64, u64::from_ne_bytes(w)) };
            i += 8;
        }
        while i < src.len() {
            // SAFETY: in range, checked above.
            unsafe { core::ptr::write_volatile((dst + i) as *mut u8, src[i]) };
            i += 1;
        }
        Ok(())
    }

    fn full_barrier(&self) {
        fence(Ordering::SeqCst);
    }
}
