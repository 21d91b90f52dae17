//! Guard pages below every stack. The boot code identity-maps 4 GiB with 2 MiB pages; this
//! replaces the large pages that hold the stacks (`.stacks`, boot/src/lib.rs) by page tables
//! with the guard page below each stack left unmapped. A stack that overflows then faults on
//! its guard page; the CPU cannot push the page-fault frame there either, so it raises a
//! double fault, which runs on its own interrupt stack and reports the overflow
//! (`fatal::exception`).

use core::cell::UnsafeCell;
use pvfs_boot::{BOOT_STACK_SIZE, GUARD_SIZE, IST_STACK_SIZE};
use pvfs_kernel::guards::{self, ENTRIES, LARGE};

extern "C" {
    static boot_pml4: u8;
    static boot_pd: u8;
    static boot_stack_guard: u8;
    static df_stack_guard: u8;
    static nmi_stack_guard: u8;
}

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

/// Page tables for the large pages that hold stacks: the stacks and their guards span 336 KiB,
/// so at most two large pages.
struct SplitTables(UnsafeCell<[Table; 2]>);
// SAFETY: written once by `install_guards` during single-threaded early boot, with
// interrupts off; afterwards only the MMU reads them.
unsafe impl Sync for SplitTables {}

#[link_section = ".bss.pagetables"]
static SPLIT: SplitTables =
    SplitTables(UnsafeCell::new([Table([0; ENTRIES]), Table([0; ENTRIES])]));

/// Where the boot page tables are (the PML4, then the PDPT one page above it and the four
/// directories one page above that, contiguous in `.bss.pagetables`), and the address and
/// size of the tables that split the stacks' large pages, for `integrity`.
pub fn tables() -> (u64, (u64, usize)) {
    (
        core::ptr::addr_of!(boot_pml4) as u64,
        (SPLIT.0.get() as u64, core::mem::size_of::<[Table; 2]>()),
    )
}

/// A stack of the kernel: its name, the address of its guard page and its size.
#[derive(Debug, Clone, Copy)]
pub struct StackInfo {
    /// What the stack is for.
    pub name: &'static str,
    /// First byte of the unmapped guard page below it.
    pub guard: u64,
    /// Bytes of stack above the guard.
    pub size: u64,
}

/// The kernel's stacks, lowest first.
pub fn stacks() -> [StackInfo; 3] {
    [
        StackInfo {
            name: "boot stack",
            guard: core::ptr::addr_of!(boot_stack_guard) as u64,
            size: BOOT_STACK_SIZE as u64,
        },
        StackInfo {
            name: "double-fault stack",
            guard: core::ptr::addr_of!(df_stack_guard) as u64,
            size: IST_STACK_SIZE as u64,
        },
        StackInfo {
            name: "NMI stack",
            guard: core::ptr::addr_of!(nmi_stack_guard) as u64,
            size: IST_STACK_SIZE as u64,
        },
    ]
}

/// The stack whose guard page (or the page just above it) holds `addr`: a stack pointer
/// there at a fault means that stack overflowed.
pub fn overflowed_stack(addr: u64) -> Option<StackInfo> {
    stacks()
        .into_iter()
        .find(|s| addr >= s.guard && addr < s.guard + GUARD_SIZE as u64 + guards::PAGE)
}

/// Unmaps the guard page below every stack. Call once, early, with interrupts off, on the
/// boot stack.
pub fn install_guards() -> Result<(), guards::SplitError> {
    let pages = stacks().map(|s| s.guard);
    let bases = guards::large_pages(&pages);
    let pd = core::ptr::addr_of!(boot_pd) as u64;
    let tables = SPLIT.0.get();
    for (i, &base) in bases.iter().enumerate() {
        if i >= 2 {
            return Err(guards::SplitError::GuardOutside(base));
        }
        let inside: heapless::Vec<u64, 3> = pages
            .iter()
            .copied()
            .filter(|&g| g & !(LARGE - 1) == base)
            .collect();
        let entry = (pd + (base >> 21) * 8) as *mut u64;
        // SAFETY: boot_pd is the 2048-entry directory of the identity map of the first 4 GiB
        // (boot/src/lib.rs), and the stacks lie below 4 GiB, so `entry` is inside it.
        let pde = unsafe { core::ptr::read_volatile(entry) };
        let pt = guards::split(pde, base, &inside)?;
        // SAFETY: early boot, interrupts off: nothing else uses SPLIT; `i < 2` was checked.
        let table = unsafe { &mut (*tables)[i] };
        table.0 = pt;
        let pt_addr = table.0.as_ptr() as u64;
        // SAFETY: `entry` is the directory entry found above. The new table maps the same
        // frames with the same attributes, less the guard pages, which nothing uses, so the
        // code and the stack running now stay mapped. Present | writable, as the boot
        // tables' upper levels are.
        unsafe { core::ptr::write_volatile(entry, pt_addr | 0x3) };
    }
    // SAFETY: reloading CR3 with its own value flushes the TLB, so the large-page
    // translations of the split ranges go; the tables it points to are unchanged.
    unsafe {
        core::arch::asm!(
            "mov {t}, cr3",
            "mov cr3, {t}",
            t = out(reg) _,
            options(nostack, preserves_flags)
        )
    };
    Ok(())
}
