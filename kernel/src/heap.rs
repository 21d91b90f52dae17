//! The kernel heap: talc over the free RAM ranges carved from the memory map, wrapped in
//! `heapstats::Counting` so live bytes, peak and failures are always known.

use core::sync::atomic::{AtomicU64, Ordering};
use pvfs_kernel::heapstats::{Counting, Stats};
use pvfs_kernel::memmap::Range;
use talc::{ErrOnOom, Span, Talc, Talck};

/// Bytes given to the allocator by [`init`].
static TOTAL: AtomicU64 = AtomicU64::new(0);

#[global_allocator]
static HEAP: Counting<Talck<spin::Mutex<()>, ErrOnOom>> = Counting::new(Talc::new(ErrOnOom).lock());

/// Gives `ranges` to the allocator, up to `cap` bytes in all (0 = no cap). Returns the bytes
/// claimed.
pub fn init(ranges: &[Range], cap: u64) -> u64 {
    let mut total = 0u64;
    for r in ranges {
        let mut len = r.len();
        if cap != 0 {
            len = len.min(cap.saturating_sub(total));
        }
        // The identity map covers the first 4 GiB only.
        let end = (r.start + len).min(1 << 32);
        if end <= r.start {
            continue;
        }
        let span = Span::from_base_size(r.start as *mut u8, (end - r.start) as usize);
        // SAFETY: the range is free RAM from the memory map, with the kernel image, modules,
        // start-info structures and the first MiB carved out; it is identity-mapped and nothing
        // else uses it.
        if unsafe { HEAP.inner().lock().claim(span) }.is_ok() {
            total += end - r.start;
        }
    }
    TOTAL.store(total, Ordering::Relaxed);
    total
}

/// Bytes of RAM the heap manages (what [`init`] claimed).
pub fn total() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Current heap counters.
pub fn stats() -> Stats {
    HEAP.stats()
}
