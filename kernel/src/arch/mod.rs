//! x86_64 primitives: port I/O, CPUID, MSRs, interrupt flag, halting.

pub mod gdt;
pub mod idt;
pub mod integrity;
pub mod paging;

use core::arch::asm;

/// Writes a byte to an I/O port.
pub fn outb(port: u16, val: u8) {
    // SAFETY: port output has no memory effects; the ports used (0xE9 debug console, COM1,
    // isa-debug-exit) are harmless to write when no device is behind them.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") val, options(nomem, nostack, preserves_flags))
    };
}

/// Writes `bytes` to an I/O port with one `rep outsb`, so a hypervisor that traps the port
/// emulates one string instruction per call instead of taking one exit per byte.
pub fn outsb(port: u16, bytes: &[u8]) {
    // SAFETY: `rep outsb` reads exactly `bytes.len()` bytes upwards from `bytes.as_ptr()`
    // (the direction flag is clear, as the asm! contract guarantees), all inside the slice,
    // and writes nothing to memory; the ports used are those `outb` documents.
    unsafe {
        asm!(
            "rep outsb",
            in("dx") port,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(readonly, nostack, preserves_flags)
        )
    };
}

/// Writes a 32-bit value to an I/O port.
pub fn outl(port: u16, val: u32) {
    // SAFETY: as for `outb`.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") val, options(nomem, nostack, preserves_flags))
    };
}

/// Reads a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: port input has no memory effects; reading an absent device returns 0xFF.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// CPUID result registers.
#[derive(Debug, Clone, Copy)]
pub struct Cpuid {
    /// EAX
    pub eax: u32,
    /// EBX
    pub ebx: u32,
    /// ECX
    pub ecx: u32,
    /// EDX
    pub edx: u32,
}

/// Executes CPUID.
pub fn cpuid(leaf: u32, sub: u32) -> Cpuid {
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    Cpuid {
        eax: r.eax,
        ebx: r.ebx,
        ecx: r.ecx,
        edx: r.edx,
    }
}

/// Writes a model-specific register.
///
/// # Safety
/// The MSR and value must be valid for this CPU and must not break memory safety (e.g. the Xen
/// hypercall-page MSR must be given a page the kernel reserved for it).
pub unsafe fn wrmsr(msr: u32, val: u64) {
    // SAFETY: the caller upholds the contract above.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") val as u32, in("edx") (val >> 32) as u32, options(nostack, preserves_flags))
    };
}

/// Enables interrupts.
pub fn enable_interrupts() {
    // SAFETY: the IDT is loaded before anything calls this, so any interrupt has a handler.
    unsafe { asm!("sti", options(nomem, nostack)) };
}

/// Disables interrupts.
pub fn disable_interrupts() {
    // SAFETY: masking interrupts cannot break memory safety.
    unsafe { asm!("cli", options(nomem, nostack)) };
}

/// Runs `f` with interrupts masked, restoring the previous interrupt flag afterwards.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let flags: u64;
    // SAFETY: reading RFLAGS and masking interrupts cannot break memory safety.
    unsafe { asm!("pushfq", "pop {}", "cli", out(reg) flags, options(nomem)) };
    let r = f();
    if flags & (1 << 9) != 0 {
        enable_interrupts();
    }
    r
}

/// Halts forever with interrupts off: the last resort after shutdown failed.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: `cli; hlt` only stops this CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Reads CR2 (the faulting address). Only meaningful inside the page-fault handler: under
/// nested virtualisation in QEMU TCG, reads elsewhere can return stale values.
pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads the frame pointer of the caller's frame.
#[inline(always)]
pub fn frame_pointer() -> u64 {
    let v: u64;
    // SAFETY: copies a register.
    unsafe { asm!("mov {}, rbp", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}
