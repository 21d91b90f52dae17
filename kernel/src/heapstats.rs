//! Heap bookkeeping: a [`GlobalAlloc`] wrapper that counts live bytes, live allocations, the
//! peak and failures. The kernel reports these (and `data/pvfs/stats` will), so leaks show up
//! as numbers that grow.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Bytes currently allocated (as requested by callers).
    pub live_bytes: usize,
    /// Allocations currently live.
    pub live_allocs: usize,
    /// Highest `live_bytes` seen.
    pub peak_bytes: usize,
    /// Allocations ever made.
    pub total_allocs: u64,
    /// Allocations that failed.
    pub failures: u64,
}

/// Counts what passes through an inner allocator.
#[derive(Debug)]
pub struct Counting<A> {
    inner: A,
    live_bytes: AtomicUsize,
    live_allocs: AtomicUsize,
    peak_bytes: AtomicUsize,
    total_allocs: AtomicU64,
    failures: AtomicU64,
}

impl<A> Counting<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        Self {
            inner,
            live_bytes: AtomicUsize::new(0),
            live_allocs: AtomicUsize::new(0),
            peak_bytes: AtomicUsize::new(0),
            total_allocs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The wrapped allocator.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        Stats {
            live_bytes: self.live_bytes.load(Ordering::Relaxed),
            live_allocs: self.live_allocs.load(Ordering::Relaxed),
            peak_bytes: self.peak_bytes.load(Ordering::Relaxed),
            total_allocs: self.total_allocs.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }

    fn on_alloc(&self, ok: bool, size: usize) {
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.total_allocs.fetch_add(1, Ordering::Relaxed);
        self.live_allocs.fetch_add(1, Ordering::Relaxed);
        let now = self.live_bytes.fetch_add(size, Ordering::Relaxed) + size;
        self.peak_bytes.fetch_max(now, Ordering::Relaxed);
    }

    fn on_free(&self, size: usize) {
        self.live_allocs.fetch_sub(1, Ordering::Relaxed);
        self.live_bytes.fetch_sub(size, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to the inner allocator with the caller's arguments unchanged,
// so the inner allocator's guarantees carry over; the wrapper only updates atomic counters.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's (valid, non-zero-size) layout.
        let p = unsafe { self.inner.alloc(layout) };
        self.on_alloc(!p.is_null(), layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { self.inner.alloc_zeroed(layout) };
        self.on_alloc(!p.is_null(), layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` came from this allocator with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) };
        self.on_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees the realloc contract; forwarded unchanged.
        let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if p.is_null() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        } else {
            self.live_bytes.fetch_sub(layout.size(), Ordering::Relaxed);
            let now = self.live_bytes.fetch_add(new_size, Ordering::Relaxed) + new_size;
            self.peak_bytes.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    /// An allocator that fails every request, to test failure counting.
    struct Never;
    // SAFETY: never hands out memory, so there is nothing to misuse.
    unsafe impl GlobalAlloc for Never {
        unsafe fn alloc(&self, _: Layout) -> *mut u8 {
            core::ptr::null_mut()
        }
        unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
    }

    #[test]
    fn counts_live_peak_and_realloc() {
        let a = Counting::new(System);
        let l = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: a valid, non-zero-size layout.
        let p = unsafe { a.alloc(l) };
        // SAFETY: as above.
        let q = unsafe { a.alloc_zeroed(l) };
        assert_eq!(a.stats().live_bytes, 200);
        // SAFETY: `q` came from this allocator with layout `l`; 300 is a valid new size.
        let q = unsafe { a.realloc(q, l, 300) };
        assert_eq!(a.stats().live_bytes, 400);
        assert_eq!(a.stats().live_allocs, 2);
        // SAFETY: `p` came from this allocator with layout `l`.
        unsafe { a.dealloc(p, l) };
        // SAFETY: `q` was reallocated to 300 bytes with alignment 8.
        unsafe { a.dealloc(q, Layout::from_size_align(300, 8).unwrap()) };
        let s = a.stats();
        assert_eq!(
            (
                s.live_bytes,
                s.live_allocs,
                s.peak_bytes,
                s.total_allocs,
                s.failures
            ),
            (0, 0, 400, 2, 0)
        );
    }

    #[test]
    fn counts_failures_without_live_changes() {
        let a = Counting::new(Never);
        // SAFETY: valid layout; the null result is not used.
        let p = unsafe { a.alloc(Layout::from_size_align(8, 8).unwrap()) };
        assert!(p.is_null());
        assert_eq!(
            a.stats(),
            Stats {
                failures: 1,
                ..Stats::default()
            }
        );
    }
}
