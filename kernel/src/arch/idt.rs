//! The IDT: CPU exceptions (vectors 0–31) are reported and end the domain as crashed; the Xen
//! event-channel upcall vector is dispatched to the event code.

use super::gdt;
use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;

/// Vector Xen injects for event-channel upcalls (HVM_PARAM_CALLBACK_IRQ, type vector).
pub const UPCALL_VECTOR: u8 = 0xF3;

// Interrupt entry stubs. Each pushes an error code (a dummy 0 where the CPU pushes none) and
// its vector, then `isr_common` saves the general registers and calls `isr_dispatch` with a
// pointer to the saved frame. 22 quadwords are pushed in all, so the stack stays 16-byte
// aligned at the call.
global_asm!(
    r#"
    .macro ISR_NOERR n
    isr_\n:
        push 0
        push \n
        jmp isr_common
    .endm
    .macro ISR_ERR n
    isr_\n:
        push \n
        jmp isr_common
    .endm

    .section .text.isr, "ax"
    ISR_NOERR 0
    ISR_NOERR 1
    ISR_NOERR 2
    ISR_NOERR 3
    ISR_NOERR 4
    ISR_NOERR 5
    ISR_NOERR 6
    ISR_NOERR 7
    ISR_ERR 8
    ISR_NOERR 9
    ISR_ERR 10
    ISR_ERR 11
    ISR_ERR 12
    ISR_ERR 13
    ISR_ERR 14
    ISR_NOERR 15
    ISR_NOERR 16
    ISR_ERR 17
    ISR_NOERR 18
    ISR_NOERR 19
    ISR_NOERR 20
    ISR_ERR 21
    ISR_NOERR 22
    ISR_NOERR 23
    ISR_NOERR 24
    ISR_NOERR 25
    ISR_NOERR 26
    ISR_NOERR 27
    ISR_NOERR 28
    ISR_ERR 29
    ISR_ERR 30
    ISR_NOERR 31
    ISR_NOERR 243

isr_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call isr_dispatch
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

    .section .rodata.isr_table, "a"
    .balign 8
    .global isr_table
isr_table:
    .quad isr_0, isr_1, isr_2, isr_3, isr_4, isr_5, isr_6, isr_7
    .quad isr_8, isr_9, isr_10, isr_11, isr_12, isr_13, isr_14, isr_15
    .quad isr_16, isr_17, isr_18, isr_19, isr_20, isr_21, isr_22, isr_23
    .quad isr_24, isr_25, isr_26, isr_27, isr_28, isr_29, isr_30, isr_31
    .quad isr_243
    "#
);

/// Registers saved by `isr_common`, then what the stub and the CPU pushed.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// r15
    pub r15: u64,
    /// r14
    pub r14: u64,
    /// r13
    pub r13: u64,
    /// r12
    pub r12: u64,
    /// r11
    pub r11: u64,
    /// r10
    pub r10: u64,
    /// r9
    pub r9: u64,
    /// r8
    pub r8: u64,
    /// rbp
    pub rbp: u64,
    /// rdi
    pub rdi: u64,
    /// rsi
    pub rsi: u64,
    /// rdx
    pub rdx: u64,
    /// rcx
    pub rcx: u64,
    /// rbx
    pub rbx: u64,
    /// rax
    pub rax: u64,
    /// Vector number.
    pub vector: u64,
    /// Error code (0 when the CPU pushes none).
    pub error: u64,
    /// Faulting or return rip.
    pub rip: u64,
    /// cs
    pub cs: u64,
    /// rflags
    pub rflags: u64,
    /// rsp at the time of the interrupt.
    pub rsp: u64,
    /// ss
    pub ss: u64,
}

extern "C" {
    static isr_table: [u64; 33];
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    off_lo: u16,
    sel: u16,
    ist: u8,
    attr: u8,
    off_mid: u16,
    off_hi: u32,
    _r: u32,
}

const EMPTY: Gate = Gate {
    off_lo: 0,
    sel: 0,
    ist: 0,
    attr: 0,
    off_mid: 0,
    off_hi: 0,
    _r: 0,
};

#[repr(C, align(16))]
struct Idt(UnsafeCell<[Gate; 256]>);
// SAFETY: written once by `init` before interrupts are enabled, read only by the CPU after.
unsafe impl Sync for Idt {}
static IDT: Idt = Idt(UnsafeCell::new([EMPTY; 256]));

fn gate(handler: u64, ist: u8) -> Gate {
    Gate {
        off_lo: handler as u16,
        sel: gdt::KERNEL_CS,
        ist,
        attr: 0x8E, // present, DPL 0, 64-bit interrupt gate (interrupts off on entry)
        off_mid: (handler >> 16) as u16,
        off_hi: (handler >> 32) as u32,
        _r: 0,
    }
}

/// Fills and loads the IDT. Call once, after `gdt::init`, with interrupts off.
pub fn init() {
    // SAFETY: `isr_table` is a read-only table of 33 addresses defined in the asm above.
    let table = unsafe { &*core::ptr::addr_of!(isr_table) };
    // SAFETY: early boot, interrupts off: nothing else touches the IDT.
    let idt = unsafe { &mut *IDT.0.get() };
    for (v, &h) in table.iter().take(32).enumerate() {
        let ist = match v {
            8 => gdt::IST_DOUBLE_FAULT,
            2 | 18 => gdt::IST_NMI,
            _ => 0,
        };
        idt[v] = gate(h, ist);
    }
    idt[UPCALL_VECTOR as usize] = gate(table[32], 0);
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let p = Pointer {
        limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
        base: idt.as_ptr() as u64,
    };
    // SAFETY: the IDT is fully initialised, static, and every present gate points at a stub.
    unsafe { asm!("lidt [{}]", in(reg) &p, options(readonly, nostack, preserves_flags)) };
}

/// Address and size of the IDT, for `integrity`.
pub fn table() -> (u64, usize) {
    (IDT.0.get() as u64, core::mem::size_of::<[Gate; 256]>())
}

/// The entry stubs: the address table and the first and last stub's addresses, for
/// `integrity`.
pub fn stubs() -> (u64, usize, u64, u64) {
    // SAFETY: `isr_table` is a read-only table of 33 addresses defined in the asm above.
    let table = unsafe { &*core::ptr::addr_of!(isr_table) };
    (
        table.as_ptr() as u64,
        core::mem::size_of::<[u64; 33]>(),
        table[0],
        table[32],
    )
}

/// Human name of an exception vector.
pub fn vector_name(v: u64) -> &'static str {
    match v {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD error",
        20 => "#VE virtualization",
        21 => "#CP control protection",
        _ => "reserved",
    }
}

#[no_mangle]
extern "C" fn isr_dispatch(frame: &mut Frame) {
    if frame.vector == u64::from(UPCALL_VECTOR) {
        crate::xen::events::upcall();
        return;
    }
    // Only the page-fault handler reads CR2 (see NOTES on nested SVM under TCG).
    let cr2 = if frame.vector == 14 {
        Some(super::read_cr2())
    } else {
        None
    };
    crate::fatal::exception(frame, cr2)
}
