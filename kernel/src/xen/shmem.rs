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
        if off % 4 != 0 {
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
        if off % 4 != 0 {
            return Err(OutOfBounds { off, len: 4 });
        }
        fence(Ordering::Release);
        // SAFETY: as for the load.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u32, val) };
        Ok(())
    }

    fn read_bytes(&self, off: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        check_range(off, dst.len(), self.len)?;
        let src = (self.base + off) as *const u8;
        for (i, d) in dst.iter_mut().enumerate() {
            // SAFETY: `off + i < off + dst.len() <= len`, checked above.
            *d = unsafe { core::ptr::read_volatile(src.add(i)) };
        }
        Ok(())
    }

    fn write_bytes(&self, off: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        check_range(off, src.len(), self.len)?;
        let dst = (self.base + off) as *mut u8;
        for (i, &b) in src.iter().enumerate() {
            // SAFETY: as for `read_bytes`.
            unsafe { core::ptr::write_volatile(dst.add(i), b) };
        }
        Ok(())
    }

    fn full_barrier(&self) {
        fence(Ordering::SeqCst);
    }
}
