//! Faults raised on request (`pvfs.fault`), to exercise the exception and crash paths.

use crate::power;
use pvfs_kernel::cmdline::{Fault, Options};

#[inline(never)]
pub(super) fn maybe_fault(opts: &Options) {
    let Some(f) = opts.fault else { return };
    log::warn!("raising {f:?} on request (pvfs.fault)");
    match f {
        // SAFETY: deliberately raises #UD to exercise the exception path.
        Fault::InvalidOpcode => unsafe { core::arch::asm!("ud2") },
        Fault::GeneralProtection => {
            // SAFETY: a load from a non-canonical address raises #GP before touching memory.
            let v = unsafe { core::ptr::read_volatile(0x8000_0000_0000_0000u64 as *const u64) };
            log::error!("non-canonical load returned {v}");
        }
        Fault::PageFault => {
            // SAFETY: 64 GiB is outside the identity map, so the write raises #PF.
            unsafe { core::ptr::write_volatile((64u64 << 30) as *mut u64, 1) };
        }
        // SAFETY: `div` by a zero register raises #DE; the registers are declared clobbered.
        Fault::DivideError => unsafe {
            core::arch::asm!("xor edx, edx", "xor ecx, ecx", "mov eax, 1", "div ecx", out("eax") _, out("ecx") _, out("edx") _)
        },
        Fault::Panic => panic!("panic requested with pvfs.fault=panic"),
        Fault::StackOverflow => {
            let depth = recurse(0);
            log::error!("recursion returned at depth {depth}");
        }
        Fault::Tables => {
            let (idt, _) = crate::arch::idt::table();
            // SAFETY: bytes 12..16 of gate 0 are its reserved word, which the CPU ignores;
            // a volatile write there changes nothing but what the integrity check sees.
            unsafe { core::ptr::write_volatile((idt + 12) as *mut u32, 0x5EED) };
            crate::arch::integrity::check_or_stop();
            log::error!("the integrity check missed a changed IDT gate");
        }
    }
    log::error!("requested fault {f:?} did not trap");
    power::crash();
}

/// Recurses without bound, 1 KiB of stack a level (`pvfs.fault=stack`).
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 128]);
    if core::hint::black_box(depth) == u64::MAX {
        return frame[0];
    }
    recurse(depth + 1).wrapping_add(core::hint::black_box(frame[127]))
}
