//! Page-aligned, zeroed heap buffers for memory shared with other domains (granted ring and
//! data pages). Identity mapping makes a page's address its guest frame number × 4096.
//! `Pages` gives no access to the bytes: shared pages are reached through a `SharedMem`
//! (`xen::granted::GrantedPages`).

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::ptr::NonNull;

/// `n` contiguous, page-aligned, zeroed pages from the heap.
#[derive(Debug)]
pub struct Pages {
    ptr: NonNull<u8>,
    n: usize,
}

// SAFETY: `Pages` owns its allocation exclusively; sending it to another context moves that
// ownership.
unsafe impl Send for Pages {}

impl Pages {
    /// Allocates `n` pages, or `None` when the heap is exhausted.
    pub fn new(n: usize) -> Option<Self> {
        let layout = Layout::from_size_align(n.checked_mul(4096)?, 4096).ok()?;
        if layout.size() == 0 {
            return None;
        }
        // SAFETY: the layout has a non-zero size (checked above).
        let p = unsafe { alloc_zeroed(layout) };
        NonNull::new(p).map(|ptr| Self { ptr, n })
    }

    /// Address of the first page.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Frame number of page `i`.
    pub fn pfn(&self, i: usize) -> u64 {
        ((self.addr() + i * 4096) >> 12) as u64
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        if self.n == 0 {
            return;
        }
        if let Ok(layout) = Layout::from_size_align(self.n * 4096, 4096) {
            // SAFETY: allocated in `new` with this same layout.
            unsafe { dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}
