//! Stack high-water mark of the boot stack (the only stack besides the small IST stacks).
//!
//! At boot the unused part of the stack is filled with a pattern; [`peak_used`] finds the
//! lowest word that no longer holds it. The figure, published in `data/pvfs/stats`, shows how
//! much of the stack is left. An overflow itself faults on the guard page below the stack
//! (`arch::paging`) and is reported by the double-fault handler.

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

/// Bytes of the boot stack used at the deepest point since [`paint`].
pub fn peak_used() -> usize {
    let bottom = top() - BOOT_STACK_SIZE;
    let mut a = bottom;
    while a < top() {
        // SAFETY: inside the boot stack, 8-aligned; volatile because the words are written
        // through stack frames the compiler does not see from here.
        if unsafe { core::ptr::read_volatile(a as *const u64) } != PAINT {
            break;
        }
        a += 8;
    }
    top() - a
}

/// Size of the boot stack.
pub const SIZE: usize = BOOT_STACK_SIZE;
