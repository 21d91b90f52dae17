//! Checks, each time the service goes idle, that what the CPU needs to deliver an interrupt
//! is as boot left it (`pvfs_kernel::tablewatch`): the IDT gates in use, the GDT and TSS, the
//! page-table entries that map the image and the stacks, the entry stubs and the descriptor
//! registers. A change stops pvfs with a report naming the region and the word; without the
//! check, the next interrupt could triple-fault the domain with no report at all.

use core::arch::asm;
use pvfs_kernel::tablewatch::{Change, Kind, Watch};
use spin::Mutex;

use super::{gdt, idt, paging};

static WATCH: Mutex<Option<Watch>> = Mutex::new(None);

/// The reader's address of the descriptor registers (IDTR, GDTR, TR), which live in no memory.
const REGISTERS: u64 = u64::MAX - 0xFFFF;
const REGISTERS_LEN: usize = 24;
/// Bytes of code after the last entry stub: `isr_common` (about 80 bytes) with room to spare.
const COMMON_LEN: u64 = 160;

fn registers() -> [u8; REGISTERS_LEN] {
    let mut r = [0u8; REGISTERS_LEN];
    let tr: u16;
    let (idtr, gdtr) = r.split_at_mut(10);
    // SAFETY: `sidt` stores 10 bytes at `idtr`, which is 10 bytes long.
    unsafe { asm!("sidt [{}]", in(reg) idtr.as_mut_ptr(), options(nostack, preserves_flags)) };
    // SAFETY: `sgdt` stores 10 bytes at `gdtr`, which is 14 bytes long.
    unsafe { asm!("sgdt [{}]", in(reg) gdtr.as_mut_ptr(), options(nostack, preserves_flags)) };
    // SAFETY: `str` only reads the task register.
    unsafe { asm!("str {:x}", out(reg) tr, options(nomem, nostack, preserves_flags)) };
    r[20..22].copy_from_slice(&tr.to_le_bytes());
    r
}

fn read(addr: u64, buf: &mut [u8]) {
    if addr >= REGISTERS {
        let r = registers();
        let off = (addr - REGISTERS) as usize;
        let n = buf.len().min(REGISTERS_LEN.saturating_sub(off));
        buf[..n].copy_from_slice(&r[off..off + n]);
        return;
    }
    // SAFETY: every watched region is static kernel memory (tables, code, page tables) inside
    // the identity map, and `Watch` reads at most its length from its start.
    let src = unsafe { core::slice::from_raw_parts(addr as *const u8, buf.len()) };
    buf.copy_from_slice(src);
}

/// Saves the watched regions as they are now. Call once, after the tables are loaded and the
/// heap is up.
pub fn init(image: core::ops::Range<u64>) {
    let mut w = Watch::new();
    let r = &mut read;
    let (idt, _) = idt::table();
    w.add("IDT gates 0-32", idt, 33 * 16, Kind::Bytes, r);
    let upcall = u64::from(idt::UPCALL_VECTOR) * 16;
    w.add("IDT upcall gate", idt + upcall, 16, Kind::Bytes, r);
    let (gdt, gdt_len) = gdt::tables();
    w.add("GDT and TSS", gdt, gdt_len, Kind::Bytes, r);
    let (pml4, (split, split_len)) = paging::tables();
    w.add("PML4 entry 0", pml4, 8, Kind::PageTable, r);
    w.add("PDPT entries 0-3", pml4 + 4096, 32, Kind::PageTable, r);
    let first = image.start >> 21;
    let last = (image.end.saturating_sub(1)) >> 21;
    let pd = pml4 + 2 * 4096 + first * 8;
    w.add(
        "page directory entries of the image",
        pd,
        ((last - first + 1) * 8) as usize,
        Kind::PageTable,
        r,
    );
    w.add(
        "page tables of the stacks",
        split,
        split_len,
        Kind::PageTable,
        r,
    );
    let (table, table_len, stub0, stub_last) = idt::stubs();
    w.add("interrupt stub table", table, table_len, Kind::Bytes, r);
    w.add(
        "interrupt stubs",
        stub0,
        (stub_last + COMMON_LEN - stub0) as usize,
        Kind::Bytes,
        r,
    );
    w.add(
        "descriptor registers",
        REGISTERS,
        REGISTERS_LEN,
        Kind::Bytes,
        r,
    );
    log::info!(
        "integrity: watching {} bytes of interrupt-delivery state",
        w.bytes()
    );
    *WATCH.lock() = Some(w);
}

/// Compares the watched regions with what boot saved. Returns the first change, if any;
/// [`check_or_stop`] is what the idle path calls.
pub fn check() -> Option<Change> {
    WATCH.lock().as_mut().and_then(|w| w.check(&mut read))
}

/// Checks made so far.
pub fn checks() -> u64 {
    WATCH.lock().as_ref().map_or(0, |w| w.checks)
}

/// [`check`], and on a change a report and a crash: the domain cannot be trusted to take its
/// next interrupt.
pub fn check_or_stop() {
    if let Some(c) = check() {
        crate::fatal::corruption(format_args!(
            "CPU TABLES CHANGED: {} at +{:#x}: {:#018x} is now {:#018x}; the next interrupt \
             could not be delivered, stopping",
            c.name, c.offset, c.was, c.now
        ));
    }
}
