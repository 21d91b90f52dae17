//! Stack high-water mark of the boot stack (the only stack besides the small IST stacks).
//!
//! At boot the unused part of the stack is filled with a pattern; [`peak_used`] finds the
//! lowest word that no longer holds it. The figure, published in `data/pvfs/stats`, shows how
//! much of the stack is left. An overflow itself faults on the guard page below the stack
//! (`arch::paging`) and is reported by the double-fault handler.

use core::sync::atomic::{AtomicUsize, Ordering};
use pvfs_boot::BOOT_STACK_SIZE;

const PAINT: u64 = 0x5354_4143_4b5f_5041; // "AP_KCATS" in memory

extern "C" {
    static boot_stack_top: u8;
}

fn top() -> usize {
    // Only the address of the linker-placed symbol is taken, never its contents.
    core::ptr::addr_of!(boot_stack_top) as usize
}

fn current_sp() -> usize {
    let sp: usize;
    // SAFETY: reads the stack pointer register only.
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    sp
}

/// Fills the unused stack below the caller with the pattern. Call once, early.
pub fn paint() {
    let bottom = top() - BOOT_STACK_SIZE;
    // Leave the words just below this frame alone (this function's callees use them).
    let end = current_sp().saturating_sub(512) & !7;
    let mut a = bottom;
    while a < end {
        // SAFETY: `bottom..end` is the boot stack's unused part: below the stack pointer, and
        // the kernel runs without a red zone, so nothing lives there; it is identity-mapped
        // .bss (boot/src/lib.rs).
        unsafe { core::ptr::write_volatile(a as *mut u64, PAINT) };
        a += 8;
    }
}

/// Lowest address of the boot stack that may have been written since it was last painted (0
/// until [`measure`] first runs: anything below the stack pointer may be).
static FLOOR: AtomicUsize = AtomicUsize::new(0);
/// The deepest use [`measure`] has seen, in bytes from the top of the stack.
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn read_word(a: usize) -> u64 {
    // SAFETY: callers pass 8-aligned addresses inside the boot stack (identity-mapped .stacks,
    // boot/src/lib.rs); volatile because the words are written through stack frames the
    // compiler does not see from here.
    unsafe { core::ptr::read_volatile(a as *const u64) }
}

/// The lowest word below `top` that no longer holds the pattern, scanning up from the bottom.
fn scan_from_bottom() -> usize {
    let bottom = top() - BOOT_STACK_SIZE;
    let mut a = bottom;
    while a < top() && read_word(a) == PAINT {
        a += 8;
    }
    top() - a
}

/// Bytes of the boot stack used at the deepest point since [`paint`].
pub fn peak_used() -> usize {
    PEAK.load(Ordering::Relaxed).max(scan_from_bottom())
}

/// Runs `f` and returns, with its result, the deepest point of the boot stack (in bytes from
/// its top) that `f` reached, interrupts taken meanwhile included. The stack below the
/// caller is painted first (only what earlier calls dirtied), and scanned down afterwards
/// until 4 KiB in a row still hold the pattern; a frame that leaves more than that unwritten
/// above deeper frames hides them from this figure, though not from [`peak_used`]'s scan.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let bottom = top() - BOOT_STACK_SIZE;
    let start = (current_sp() & !7).saturating_sub(256).max(bottom);
    let mut floor = FLOOR.load(Ordering::Relaxed);
    if floor == 0 {
        // First call: keep the deepest use of the boot before painting over it.
        PEAK.fetch_max(scan_from_bottom(), Ordering::Relaxed);
        floor = bottom;
    }
    let mut a = floor.max(bottom);
    while a < start {
        // SAFETY: `a` is inside the boot stack and below `start`, which is 256 bytes below
        // this function's stack pointer: no live frame is there (the kernel has no red zone;
        // an interrupt's frame below the stack pointer is gone once it returns, and this loop
        // calls nothing). Identity-mapped .stacks (boot/src/lib.rs).
        unsafe { core::ptr::write_volatile(a as *mut u64, PAINT) };
        a += 8;
    }
    let r = f();
    let low = pvfs_kernel::stackuse::deepest(start, bottom, 512, PAINT, read_word);
    FLOOR.store(low.min(start), Ordering::Relaxed);
    let used = top() - low;
    PEAK.fetch_max(used, Ordering::Relaxed);
    (r, used)
}

/// Size of the boot stack.
pub const SIZE: usize = BOOT_STACK_SIZE;
