//! The pvfs kernel: a PVH unikernel that runs as a Xen service domain.
//!
//! Boot path: `boot/` enters long mode and calls [`pvfs_kernel_main`] with the physical address
//! of `hvm_start_info`. The kernel loads its GDT and IDT, reads the start info and command
//! line, builds the heap from the memory map, and then either
//! - under Xen: installs the hypercall page, maps shared_info, routes event-channel upcalls,
//!   connects the PV console and xenstore, publishes `data/pvfs/status = ready`, and serves; or
//! - under plain QEMU: runs the boot self-test and exits through `isa-debug-exit`.
//!
//! This is the only crate (with `boot/`) that holds unsafe code; every unsafe block carries a
//! `SAFETY:` comment. Platform-independent logic lives in the library half (`lib.rs`) and is
//! tested on the host.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("pvfs-kernel runs only as a PVH guest; build it with `cargo xtask build`");
    std::process::exit(2);
}

#[cfg(target_os = "none")]
extern crate alloc;
#[cfg(target_os = "none")]
use pvfs_boot as _;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod blkfront;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod fatal;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod p9back;
#[cfg(target_os = "none")]
mod pages;
#[cfg(target_os = "none")]
mod power;
#[cfg(target_os = "none")]
mod run;
#[cfg(target_os = "none")]
mod stack;
#[cfg(target_os = "none")]
mod volume;
#[cfg(target_os = "none")]
mod xen;

/// Kernel entry from `boot/` (64-bit, identity-mapped, on the boot stack).
#[cfg(target_os = "none")]
#[no_mangle]
pub extern "C" fn pvfs_kernel_main(start_info: u64) -> ! {
    run::main(start_info)
}
