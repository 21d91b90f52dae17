//! The long-mode GDT with a TSS whose interrupt stacks (IST) catch double faults and NMIs on a
//! known-good stack, so a stack overflow is reported instead of triple-faulting. The stacks
//! themselves are in `.stacks` (boot/src/lib.rs), each above an unmapped guard page.

use core::arch::asm;
use core::cell::UnsafeCell;
use core::mem::size_of;

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// IST slot (1-based) for double faults.
pub const IST_DOUBLE_FAULT: u8 = 1;
/// IST slot for NMIs and machine checks.
pub const IST_NMI: u8 = 2;

#[repr(C, packed(4))]
struct Tss {
    _r0: u32,
    rsp: [u64; 3],
    _r1: u64,
    ist: [u64; 7],
    _r2: u64,
    _r3: u16,
    iomap_base: u16,
}

struct Tables {
    gdt: [u64; 5],
    tss: Tss,
}

extern "C" {
    static df_stack_top: u8;
    static nmi_stack_top: u8;
}

struct Shared(UnsafeCell<Tables>);
// SAFETY: the tables are written once by `init` on the boot CPU before interrupts are
// enabled, and only read by the CPU afterwards.
unsafe impl Sync for Shared {}

static TABLES: Shared = Shared(UnsafeCell::new(Tables {
    gdt: [0; 5],
    tss: Tss {
        _r0: 0,
        rsp: [0; 3],
        _r1: 0,
        ist: [0; 7],
        _r2: 0,
        _r3: 0,
        iomap_base: size_of::<Tss>() as u16,
    },
}));

/// Address and size of the GDT and TSS, for `integrity`.
pub fn tables() -> (u64, usize) {
    (TABLES.0.get() as u64, size_of::<Tables>())
}

#[repr(C, packed)]
struct Pointer {
    limit: u16,
    base: u64,
}

/// Loads the GDT and the TSS. Call once, early, with interrupts off.
pub fn init() {
    let t = TABLES.0.get();
    // SAFETY: single-threaded early boot, interrupts off: nothing else accesses TABLES.
    let t = unsafe { &mut *t };
    t.tss.ist[usize::from(IST_DOUBLE_FAULT - 1)] = core::ptr::addr_of!(df_stack_top) as u64;
    t.tss.ist[usize::from(IST_NMI - 1)] = core::ptr::addr_of!(nmi_stack_top) as u64;
    let base = core::ptr::addr_of!(t.tss) as u64;
    let limit = (size_of::<Tss>() - 1) as u64;
    t.gdt = [
        0,
        0x00AF_9A00_0000_FFFF, // 0x08 code
        0x00CF_9200_0000_FFFF, // 0x10 data
        // 0x18 TSS (16 bytes): available 64-bit TSS, present.
        (limit & 0xFFFF)
            | ((base & 0xFF_FFFF) << 16)
            | (0x89 << 40)
            | (((limit >> 16) & 0xF) << 48)
            | (((base >> 24) & 0xFF) << 56),
        base >> 32,
    ];
    let ptr = Pointer {
        limit: (size_of::<[u64; 5]>() - 1) as u16,
        base: t.gdt.as_ptr() as u64,
    };
    // SAFETY: the GDT keeps the selectors in use (0x08 code, 0x10 data) at the same values as
    // the boot GDT, so reloading it and the task register keeps the CPU state valid.
    unsafe {
        asm!(
            "lgdt [{p}]",
            "push 0x08",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov {s:x}, 0x18",
            "ltr {s:x}",
            p = in(reg) &ptr,
            tmp = out(reg) _,
            s = out(reg) _,
        )
    };
}
