//! The last words of the kernel: exception reports and panics. Both print what happened (the
//! vector or message, the registers, a frame-pointer backtrace) and then end the domain as
//! crashed (under Xen) or exit QEMU with a failure code. The kernel never hangs silently.

use crate::arch::idt::{vector_name, Frame};
use crate::kprint;
use core::sync::atomic::{AtomicBool, Ordering};

static IN_FATAL: AtomicBool = AtomicBool::new(false);

extern "C" {
    static __kernel_start: u8;
}

/// Prints up to 24 return addresses by walking the rbp chain from `rbp`.
pub fn backtrace(mut rbp: u64) {
    let lo = core::ptr::addr_of!(__kernel_start) as u64;
    let hi = 1u64 << 32; // the identity map ends at 4 GiB
    kprint!("stack:\n");
    for i in 0..24 {
        if rbp < lo || !rbp.is_multiple_of(8) || rbp.saturating_add(16) > hi {
            break;
        }
        // SAFETY: rbp is 8-aligned and inside the identity-mapped range checked above, so
        // the load reads mapped memory; the value is only printed or compared.
        let next = unsafe { core::ptr::read_volatile(rbp as *const u64) };
        // SAFETY: as above, for the word after it (rbp + 16 <= 4 GiB was checked).
        let ret = unsafe { core::ptr::read_volatile((rbp + 8) as *const u64) };
        if ret == 0 {
            break;
        }
        kprint!("  #{i:<2} {ret:#018x}\n");
        if next <= rbp {
            break;
        }
        rbp = next;
    }
}

fn enter() {
    crate::arch::disable_interrupts();
    if IN_FATAL.swap(true, Ordering::SeqCst) {
        // A fault while reporting a fault: stop reporting and just go.
        kprint!("pvfs: nested fatal error, shutting down (crash)\n");
        crate::power::crash();
    }
}

/// Reports state found corrupted (`msg`) with a backtrace of the caller, and crashes the
/// domain.
pub fn corruption(msg: core::fmt::Arguments<'_>) -> ! {
    enter();
    kprint!("\npvfs: {msg}\n");
    backtrace(crate::arch::frame_pointer());
    kprint!("pvfs: fatal corruption, shutting down (crash)\n");
    crate::power::crash()
}

/// Reports a CPU exception and crashes the domain.
pub fn exception(f: &Frame, cr2: Option<u64>) -> ! {
    enter();
    kprint!(
        "\npvfs: EXCEPTION {} (vector {})\n",
        vector_name(f.vector),
        f.vector
    );
    kprint!(
        "  rip={:#018x} error code={:#x} cs={:#x} rflags={:#x}\n",
        f.rip,
        f.error,
        f.cs,
        f.rflags
    );
    if let Some(a) = cr2 {
        kprint!("  cr2={a:#018x} (faulting address)\n");
    }
    kprint!(
        "  rsp={:#018x} rbp={:#018x} rax={:#018x} rbx={:#018x}\n",
        f.rsp,
        f.rbp,
        f.rax,
        f.rbx
    );
    kprint!(
        "  rcx={:#018x} rdx={:#018x} rsi={:#018x} rdi={:#018x}\n",
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi
    );
    kprint!(
        "  r8={:#018x} r9={:#018x} r10={:#018x} r11={:#018x}\n",
        f.r8,
        f.r9,
        f.r10,
        f.r11
    );
    kprint!(
        "  r12={:#018x} r13={:#018x} r14={:#018x} r15={:#018x}\n",
        f.r12,
        f.r13,
        f.r14,
        f.r15
    );
    if let Some(s) = crate::arch::paging::overflowed_stack(f.rsp) {
        kprint!(
            "  STACK OVERFLOW: rsp is at the guard page of the {} ({} bytes, guard at {:#x})\n",
            s.name,
            s.size,
            s.guard
        );
    }
    kprint!("  #0  {:#018x} (faulting instruction)\n", f.rip);
    backtrace(f.rbp);
    kprint!("pvfs: fatal exception, shutting down (crash)\n");
    crate::power::crash()
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    enter();
    kprint!("\npvfs: PANIC: {}\n", info.message());
    if let Some(l) = info.location() {
        kprint!("  at {}:{}:{}\n", l.file(), l.line(), l.column());
    }
    backtrace(crate::arch::frame_pointer());
    kprint!("pvfs: fatal panic, shutting down (crash)\n");
    crate::power::crash()
}
